"""When is a freshly started local consortium ready? Every validator identity is held
and has sealed a block after `up` first saw the chain, and no node lags (the one
assessment, `orchestrator.geth.lag`: within MAX_LAG_BLOCKS of the head, past the
genesis). An agent that dies on the way ends the wait at once, with its last log lines.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping

from orchestrator.agent import status
from orchestrator.agent.status import AgentState, AgentStatus
from orchestrator.config import Consortium
from orchestrator.errors import WaitTimeout
from orchestrator.geth.ipc import ipc_probe
from orchestrator.geth.lag import Head, assess
from orchestrator.local.layout import StateLayout
from orchestrator.logs import log_tail
from orchestrator.network.create import NetworkInfo


def wait_until_ready(
    layout: StateLayout,
    consortium: Consortium,
    network_of: Callable[[], NetworkInfo | None],
    started: Mapping[str, subprocess.Popen[bytes]],
    *,
    deadline: float,
    t0: float,
    on_progress: Callable[[str], None] = lambda _line: None,
) -> tuple[int, dict[str, int]]:
    """Wait until every identity is held and has sealed a block after we first see
    the chain, and no node lags (`lagging_nodes`). `on_progress`
    hears each new state: how many nodes answer, which signers sealed."""
    network: NetworkInfo | None = None
    sealed: dict[str, int] = {}  # signer -> first block seen sealed by it
    baseline: int | None = None
    checked = 0
    last = "waiting for the agents to publish the network"
    tell = _changes_only(on_progress)
    while True:
        tell(last)
        _raise_if_agent_died(layout, started, t0)
        if network is None:
            network = network_of()
        if network is not None:
            wanted = {a.lower(): a for a in network.all_signers}
            for node in consortium.nodes:
                ipc = layout.node(node.name).ipc
                head = ipc_probe(ipc, "eth_blockNumber", [], timeout=2.0)
                if head is None:
                    continue
                head_n = int(head, 16)
                if baseline is None:
                    baseline = checked = head_n
                while checked < head_n:
                    signer = ipc_probe(ipc, "clique_getSigner", [hex(checked + 1)], timeout=2.0)
                    if signer is None:
                        break
                    checked += 1
                    if str(signer).lower() in wanted:
                        sealed.setdefault(wanted[str(signer).lower()], checked)
                break
            missing = sorted(set(wanted.values()) - set(sealed))
            lagging = [] if missing else lagging_nodes(layout, consortium)
            if baseline is not None:
                up = sum(layout.node(n.name).ipc.exists() for n in consortium.nodes)
                last = (
                    f"{up}/{len(consortium.nodes)} nodes up, head {checked}, "
                    f"{len(sealed)}/{len(wanted)} signers sealed since "
                    f"block {baseline}"
                    + (f"; waiting for: {', '.join(missing)}" if missing else "")
                    + (f"; catching up: {', '.join(lagging)}" if lagging else "")
                )
            if baseline is not None and not missing and not lagging:
                return checked, sealed
        if time.monotonic() > deadline:
            raise WaitTimeout(
                "the consortium did not become ready in time",
                elapsed=time.monotonic() - t0,
                last_state=last,
                log_tail=[
                    f"[{n}] {line}"
                    for n in started
                    for line in log_tail(layout.node(n).agent_log, 3)
                ],
                obj=str(layout.root),
                hint="see each node's agent.log and geth.log under nodes/<name>/; "
                "a slow machine may need a longer --timeout",
            )
        time.sleep(0.25)


def _changes_only(on_progress: Callable[[str], None]) -> Callable[[str], None]:
    told: list[str] = []

    def tell(line: str) -> None:
        if told[-1:] != [line]:
            told.append(line)
            on_progress(line)

    return tell


def lagging_nodes(layout: StateLayout, consortium: Consortium) -> list[str]:
    """Nodes that do not answer, or that lag behind the others (`geth.lag.assess`: more
    than MAX_LAG_BLOCKS behind the highest, or still at the genesis while the chain has
    moved: such a node has not synced once, and with its parent blocks unknown it cannot
    import the blocks peers broadcast until geth's next sync round, every 10 s with few
    peers, so it would fall behind)."""
    now, period = time.time(), consortium.settings.block_period
    heads: dict[str, Head] = {}
    for n in consortium.nodes:
        answer = ipc_probe(layout.node(n.name).ipc, "eth_blockNumber", [], timeout=2.0)
        if isinstance(answer, str):
            heads[n.name] = Head(int(answer, 16), now, source=n.name)
    return [
        n.name
        for n in consortium.nodes
        if n.name not in heads
        or assess(
            heads[n.name],
            [h for name, h in heads.items() if name != n.name],
            now=now,
            period=period,
        ).lagging
    ]


def _raise_if_agent_died(
    layout: StateLayout, started: Mapping[str, subprocess.Popen[bytes]], t0: float
) -> None:
    for name, process in started.items():
        paths = layout.node(name)
        record = status.read(paths.agent_status, AgentStatus)
        if (record and record.state is AgentState.FATAL) or process.poll() is not None:
            raise WaitTimeout(
                f"the agent of {name} exited: "
                + ((record and record.message) or f"exit code {process.poll()}"),
                elapsed=time.monotonic() - t0,
                last_state="FATAL",
                log_tail=log_tail(paths.agent_log, 10),
                obj=name,
                hint=f"read {paths.agent_log} and {paths.geth_log}",
            )
