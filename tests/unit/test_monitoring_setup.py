"""The production monitoring set-up, checked by the real tools: Debian's `promtool` reads
the alert rules and unit-tests each alert on synthetic series, checks a generated
Prometheus configuration; the Grafana dashboard is a valid model that asks only for
metrics poactl (or geth) exports, through a datasource variable."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.agent.endpoint import AgentMetrics
from orchestrator.monitor.history import Block, Heartbeat, History
from orchestrator.monitor.metrics import exposition
from orchestrator.monitor.prometheus import RULES, prometheus_config
from orchestrator.monitor.view import Settings, snapshot

DASHBOARD = (
    Path(__file__).resolve().parents[2] / "orchestrator" / "monitor" / "grafana-dashboard.json"
)
# geth 1.13's own series the dashboard uses (tests/integration/test_monitor.py reads them
# from a real geth's /debug/metrics/prometheus)
GETH_METRICS = {"chain_head_block", "txpool_pending", "p2p_peers"}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: run scripts/setup.sh (Debian package 'prometheus')")
    return subprocess.run([found, *args], capture_output=True, text=True, cwd=cwd, check=False)


def test_the_alert_rules_load(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.rules.yml"
    rules.write_bytes(RULES.read_bytes())
    out = promtool("check", "rules", str(rules))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 10 rules found" in out.stdout


RULE_TESTS = """
rule_files: [alerts.rules.yml]
evaluation_interval: 5s
tests:
  - interval: 5s
    input_series:
      - series: 'poactl_monitor_node_status{node="bank-a-2",member="bank-a",status="late"}'
        values: '0 1 1 0 0 0'
      - series: 'poactl_monitor_node_status{node="bank-a-2",member="bank-a",status="silent"}'
        values: '0 0 0 1 1 1'
      - series: 'poactl_monitor_alert{alert="ChainStalled"}'
        values: '0 0 1 1 1 1'
      - series: 'poactl_monitor_missed_turns{validator="0xabc",member="bank-b"}'
        values: '0 1 2 3 3 3'
      - series: 'poactl_monitor_fork_heights'
        values: '0 0 1 1 1 1'
      - series: 'poactl_monitor_reorg_depth_max'
        values: '0 0 0 0 0 0'
      - series: 'poactl_monitor_node_lag_blocks{node="bank-a-1",member="bank-a"}'
        values: '0 2 40 41 42 43'
      - series: 'poactl_monitor_index_lag_blocks'
        values: '0 9 9 9 9 9 9 9 9'
      - series: 'poactl_monitor_index_refused'
        values: '0 0 1 1 1 1'
    alert_rule_test:
      - eval_time: 5s
        alertname: NodeLate
        exp_alerts:
          - exp_labels: {severity: warning, node: bank-a-2, member: bank-a, status: late}
            exp_annotations: {summary: "bank-a-2 (bank-a) missed two heartbeats"}
      - eval_time: 15s
        alertname: NodeLate
        exp_alerts: []
      - eval_time: 15s
        alertname: NodeSilent
        exp_alerts:
          - exp_labels: {severity: critical, node: bank-a-2, member: bank-a, status: silent}
            exp_annotations:
              summary: "bank-a-2 (bank-a) sends no heartbeat"
              description: "Five heartbeat intervals without one: its agent or VM is down."
      - eval_time: 15s
        alertname: ChainStalled
        exp_alerts: []
      - eval_time: 25s
        alertname: ChainStalled
        exp_alerts:
          - exp_labels: {severity: critical, alert: ChainStalled}
            exp_annotations:
              summary: "No new block for 1: see poactl_monitor_head_age_seconds"
              description: "The chain's head has not moved for more than five block periods."
      - eval_time: 15s
        alertname: ValidatorMissingTurns
        exp_alerts:
          - exp_labels: {severity: warning, validator: "0xabc", member: bank-b}
            exp_annotations:
              summary: "Validator 0xabc (bank-b) missed 3 turns in 10 minutes"
              description: >-
                Another signer sealed the blocks it was in turn for: its node is down,
                fenced or behind.
      - eval_time: 5s
        alertname: NodeBehind
        exp_alerts: []
      - eval_time: 20s
        alertname: NodeBehind
        exp_alerts:
          - exp_labels: {severity: warning, node: bank-a-1, member: bank-a}
            exp_annotations:
              summary: "bank-a-1 (bank-a) is 42 blocks behind the chain's head"
              description: >-
                Its head does not keep up with the other nodes': its agent takes it out
                of the balancer and recovers it (peers again, then a geth restart).
      - eval_time: 25s
        alertname: Fork
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations:
              summary: "Nodes disagree on the chain (or it reorganised more than one block)"
      - eval_time: 25s
        alertname: ReadIndexBehind
        exp_alerts: []
      - eval_time: 35s
        alertname: ReadIndexBehind
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: "The bank's read index is 9 blocks behind its node"
              description: >-
                Credit reads fall back to the node meanwhile (slower as the chain grows);
                see `poactl status` and the index's log.
      - eval_time: 5s
        alertname: ReadIndexRefused
        exp_alerts: []
      - eval_time: 10s
        alertname: ReadIndexRefused
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations:
              summary: >-
                The bank's read index refused a registry log that does not match its state word
              description: >-
                It stopped filling at that block; its /v1/status names the log. Follow another
                node of the bank, or rebuild it (`poactl index --rebuild`).
"""


def test_each_alert_fires_on_its_series_and_only_then(tmp_path: Path) -> None:
    (tmp_path / "alerts.rules.yml").write_bytes(RULES.read_bytes())
    (tmp_path / "tests.yml").write_text(RULE_TESTS)
    out = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_a_generated_prometheus_configuration_is_valid(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.rules.yml"
    rules.write_bytes(RULES.read_bytes())
    config = tmp_path / "prometheus.yml"
    config.write_text(
        prometheus_config(
            monitors=["127.0.0.1:8845"],
            agents=["127.0.0.1:8745", "127.0.0.1:8746"],
            geths=["127.0.0.1:6060"],
            rules_file=rules,
            indexes=["127.0.0.1:8945"],
        )
    )
    out = promtool("check", "config", str(config))
    assert out.returncode == 0, out.stdout + out.stderr


def _exported_names(tmp_path: Path) -> set[str]:
    signer = "0x" + "ab" * 20
    settings = Settings(
        member="bank-a", heartbeat_seconds=10, block_period=2, signers={"bank-a": [signer]}
    )
    history = History(tmp_path / "h.sqlite")
    now = time.time()
    beat = Heartbeat("bank-a-1", now, "bank-a", "SEALING", 2, "0x2", 1, True, None)
    history.add_heartbeats([beat])
    history.add_blocks([Block(n, f"0x{n}", f"0x{n - 1}", int(now) - 4 + 2 * n, 0, signer, True)
                        for n in (1, 2)])  # fmt: skip
    monitor = exposition(lambda: snapshot(history, settings)).decode()
    agent = AgentMetrics()
    agent.signer_answered("signed", 0.01)
    text = monitor + agent.exposition().decode()
    return {m.group(1) for m in re.finditer(r"^# TYPE (\w+) ", text, re.MULTILINE)}


def test_the_grafana_dashboard_asks_only_for_exported_metrics(tmp_path: Path) -> None:
    model = json.loads(DASHBOARD.read_text())
    assert model["schemaVersion"] >= 36 and model["title"] and model["uid"]
    (variable,) = model["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == (
        "datasource", "prometheus", "DS_PROMETHEUS",
    )  # fmt: skip
    known = _exported_names(tmp_path) | GETH_METRICS
    histograms = {f"{n}_bucket" for n in known}
    titles = set()
    for panel in model["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        titles.add(panel["title"])
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
            names = set(re.findall(r"\b([a-z_]+(?:_[a-z]+)+)\b(?=\{|\s|\)|$|\[)", target["expr"]))
            names -= {"histogram_quantile", "sum", "rate", "by"}
            unknown = {n for n in names if n not in known | histograms}
            assert not unknown, (panel["title"], unknown)
    for panel in ("Transactions per minute", "Node status", "Forks and reorgs", "Active alerts"):
        assert panel in titles
