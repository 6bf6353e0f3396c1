"""The banks' monitors on a running consortium, checked against the chain, in Debian's
Chromium (Playwright) and in Debian's Prometheus.

One consortium for the module: bank-a with one identity and a spare, bank-b with one
identity; heartbeats every 2 s, so a node turns late after 4 s and silent after 10 s.
`poactl up` starts one monitor per bank. Tests run in file order; the last ones kill a
node.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from eth_account import Account

from orchestrator.geth.client import http_web3
from orchestrator.local import monitors
from orchestrator.local.consortium import LocalConsortium
from orchestrator.network.names import tx_key_name
from tests.helpers.chain import wait_until_all_reach
from tests.helpers.consortium import running_consortium
from tests.helpers.ports import ports_yaml
from tests.helpers.services import browser, prometheus
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]

# Alerts that mean a fault on this healthy consortium. ValidatorMissingTurns is left out:
# on a loaded machine a validator does miss turns (its identity sealed a few blocks late
# at start-up, or the other signer won a race), and the monitor rightly says so.
FAULTS = {"ChainStalled", "NodeSilent", "Fork"}


@pytest.fixture(scope="module")
def running(geth: str) -> Iterator[LocalConsortium]:
    text = (
        f"{ports_yaml(4)}\n"
        "members:\n"
        "  bank-a: {validators: 1, spares: 1}\n"
        "  bank-b: {validators: 1, spares: 0}\n"
        "supervision: {heartbeat_seconds: 2}\n"
    )
    with running_consortium(geth, text) as local:
        yield local


def monitor_url(local: LocalConsortium, member: str = "bank-a") -> str:
    rows = {r.member: r for r in monitors.rows(local.layout, local.load())}
    assert rows[member].running, rows
    return rows[member].url


def state(local: LocalConsortium) -> dict[str, Any]:
    answer: dict[str, Any] = requests.get(monitor_url(local) + "api/state", timeout=5).json()
    return answer


def send_transfers(local: LocalConsortium, count: int) -> list[str]:
    """`count` plain transfers from bank-a's transaction account, through its node."""
    consortium = local.load()
    key = local.vault("bank-a").get_secret(tx_key_name("bank-a"))
    assert key is not None
    account = Account.from_key(key.value)
    w3 = http_web3(consortium.node("bank-a-1").rpc_url)
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    hashes = []
    for i in range(count):
        tx = {
            "to": "0x" + "11" * 20, "value": 1, "gas": 21000, "maxFeePerGas": 20 * 10**9,
            "maxPriorityFeePerGas": 10**9, "nonce": nonce + i, "type": 2,
            "chainId": consortium.settings.chain_id,
        }  # fmt: skip
        signed = account.sign_transaction(tx)
        hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction).hex())
    for h in hashes:
        w3.eth.wait_for_transaction_receipt(h, timeout=60)
    return hashes


def chain_tx_per_minute(local: LocalConsortium, since: float) -> dict[int, int]:
    w3 = http_web3(local.load().node("bank-b-1").rpc_url)
    counts: dict[int, int] = {}
    for n in range(w3.eth.block_number, -1, -1):
        block = w3.eth.get_block(n)
        if block["timestamp"] < since:
            break
        minute = block["timestamp"] // 60 * 60
        counts[minute] = counts.get(minute, 0) + len(block["transactions"])
    return counts


def test_up_and_status_name_each_banks_monitor(running: LocalConsortium) -> None:
    report = running.status().as_dict()
    assert [m["member"] for m in report["monitors"]] == ["bank-a", "bank-b"]
    assert all(m["running"] for m in report["monitors"])
    for m in report["monitors"]:
        assert requests.get(m["url"] + "healthz", timeout=5).text == "ok\n"


def test_transactions_per_minute_match_the_chain(running: LocalConsortium) -> None:
    started = time.time()
    send_transfers(running, 12)
    wait_until_all_reach(running, "bank-a-1")  # the chain is read from bank-b's node
    head = http_web3(running.load().node("bank-b-1").rpc_url).eth.block_number
    wait_for(lambda: (state(running)["chain"]["head"] or 0) >= head, 20, "the monitor to catch up")
    shown = {p["minute"]: p["txs"] for p in state(running)["tx_per_minute"]}
    on_chain = chain_tx_per_minute(running, started - 120)
    assert sum(on_chain.values()) >= 12
    for minute, txs in on_chain.items():
        assert shown.get(minute) == txs, (minute, txs, shown.get(minute))


def test_nodes_validators_and_leases_match_the_consortium(running: LocalConsortium) -> None:
    s = state(running)
    nodes = {n["name"]: n for n in s["nodes"]}
    assert sorted(nodes) == ["bank-a-1", "bank-a-2", "bank-b-1"]
    statuses = {name: (n["status"], n["reported_last_30_min"]) for name, n in nodes.items()}
    assert set(statuses.values()) == {("reporting", True)}, statuses
    network = running.network()
    assert network is not None
    assert sorted(v["address"] for v in s["validators"]) == sorted(network.all_signers)
    sealed = {v["address"]: v["last_sealed_block"] for v in s["validators"]}
    assert all(sealed.values()), sealed
    holders = {(r["member"], r["lease"]): (r["holder"], r["source"]) for r in s["leases"]}
    # bank-a's monitor reads its own leases; bank-b's leases never leave bank-b, so it
    # shows what bank-b's published heartbeats claim.
    assert holders[("bank-b", "identity-0")] == ("bank-b-1", "heartbeat")
    assert holders[("bank-a", "leader")][1] == "lease" and holders[("bank-a", "leader")][0]
    # The mean block time is the chain's own (blocks 1..head; block 0 is stamped when the
    # network was created), and never under the period. A young chain on a loaded machine
    # may have waited out a fork at block 1, so no upper bound is asserted here.
    head = s["chain"]["head"]
    wait_until_all_reach(running, "bank-a-1")  # the monitor follows bank-a's node
    w3 = http_web3(running.load().node("bank-b-1").rpc_url)
    first, last = (w3.eth.get_block(n)["timestamp"] for n in (1, head))
    assert s["chain"]["block_time_seconds"] == pytest.approx((last - first) / (head - 1))
    assert s["chain"]["block_time_seconds"] >= 2.0
    assert not s["forks"]["split_heights"]
    assert not FAULTS & {a["name"] for a in s["alerts"]}, s["alerts"]


def test_geth_serves_its_own_metrics(running: LocalConsortium) -> None:
    node = running.load().node("bank-b-1")
    text = requests.get(
        f"http://127.0.0.1:{node.metrics_port}/debug/metrics/prometheus", timeout=5
    ).text
    for name in ("chain_head_block", "txpool_pending", "p2p_peers"):
        assert f"\n{name} " in text or text.startswith(f"{name} "), name


def test_the_page_shows_what_the_api_says(running: LocalConsortium) -> None:
    url = monitor_url(running)
    with browser() as chromium:
        page = chromium.new_page()
        started = time.monotonic()
        page.goto(url)
        page.wait_for_selector("#nodes tbody tr")
        loaded = time.monotonic() - started
        s = state(running)
        page.wait_for_function(
            "head => Number(document.getElementById('head').textContent) >= head",
            arg=s["chain"]["head"],
        )
        names = page.locator("#nodes tbody tr td:first-child").all_inner_texts()
        assert sorted(names) == sorted(n["name"] for n in s["nodes"])
        # The chain itself, per minute, up to its head now; then the page once it shows
        # that head: every minute before the head's own has all its blocks on both.
        w3 = http_web3(running.load().node("bank-b-1").rpc_url)
        head = w3.eth.get_block("latest")
        on_chain = chain_tx_per_minute(running, time.time() - 3600)
        page.wait_for_function(
            "head => Number(document.getElementById('head').textContent) >= head",
            arg=head["number"],
        )
        txs_of = "rs => rs.map(r => [Number(r.dataset.minute), Number(r.dataset.txs)])"
        bars = dict(page.locator("#tx-chart rect").evaluate_all(txs_of))
        assert len(bars) == len(s["tx_per_minute"]) == 61
        for minute, txs in on_chain.items():
            if minute < head["timestamp"] // 60 * 60:
                assert bars[minute] == txs, (minute, bars[minute], txs)
        assert sum(on_chain.values()) >= 12  # the transfers of the test before
        shown = page.locator("#validators tbody tr td:nth-child(2)").all_inner_texts()
        assert sorted(shown) == sorted(v["address"] for v in s["validators"])
        # The page lists the API's alerts (see FAULTS for the ones barred here).
        shown_alerts: list[str] = []

        def alerts_agree() -> bool:
            shown_alerts[:] = page.locator("#alerts [data-alert]").evaluate_all(
                "as => as.map(a => a.dataset.alert)"
            )
            return sorted(shown_alerts) == sorted(a["name"] for a in state(running)["alerts"])

        wait_for(alerts_agree, 10, "the page's alerts to match the API's")
        assert not FAULTS & set(shown_alerts), shown_alerts
        if not shown_alerts:
            assert page.inner_text("#alerts") == "none"
        assert loaded < 5.0  # generous here; the benchmark measures the first load


def test_a_killed_node_turns_late_then_silent_and_the_alert_fires(
    running: LocalConsortium,
) -> None:
    consortium = running.load()
    bank_a = monitor_url(running).removeprefix("http://").rstrip("/")
    agents = [f"127.0.0.1:{n.health_port}" for n in consortium.nodes]
    geths = [f"127.0.0.1:{n.metrics_port}" for n in consortium.nodes]
    victim = "bank-a-2"  # the spare: the chain goes on without it
    paths = running.layout.node(victim)
    pids = [
        json.loads(paths.agent_status.read_text())["pid"],
        json.loads(paths.status.read_text())["geth_pid"],
    ]
    with prometheus(monitors=[bank_a], agents=agents, geths=geths) as prom, browser() as chromium:
        wait_for(lambda: prom.query('up{job="poactl-monitor"} == 1'), 20, "Prometheus to scrape")
        page = chromium.new_page()
        page.goto(monitor_url(running))
        status = f"#nodes tbody tr:has(td:text-is('{victim}')) [data-status]"
        page.wait_for_selector(f"{status}[data-status='reporting']")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        page.wait_for_selector(f"{status}[data-status='late']", timeout=15_000)
        page.wait_for_selector(f"{status}[data-status='silent']", timeout=20_000)
        page.wait_for_selector("#alerts [data-alert='NodeSilent']", timeout=10_000)

        def firing() -> bool:
            return any(
                a["labels"].get("alertname") == "NodeSilent"
                and a["labels"].get("node") == victim
                and a["state"] == "firing"
                for a in prom.alerts()
            )

        wait_for(firing, 30, "Prometheus to fire NodeSilent for the killed node")
    api = {n["name"]: n for n in state(running)["nodes"]}
    assert api[victim]["status"] == "silent"


def test_a_restarted_monitor_keeps_its_history(running: LocalConsortium) -> None:
    before = state(running)["chain"]["blocks_last_hour"]
    assert running.stop_monitors() == ["bank-a", "bank-b"]
    assert running.start_monitors() == ["bank-a", "bank-b"]
    wait_for(lambda: _answers(monitor_url(running)), 20, "the monitor to serve again")
    after = state(running)
    assert after["chain"]["blocks_last_hour"] >= before
    assert any(n["name"] == "bank-a-2" for n in after["nodes"])  # remembered, though silent


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "healthz", timeout=1).ok
    except requests.RequestException:
        return False
