"""Hostile inputs from outside a bank: a peer that announces bad blocks, and consortium
data that is garbage or another network's.

The peer is `tests/faults/hostile/` (Go, built from go-ethereum v1.13.15's own rlpx, eth
and clique packages: the simplest real way to put a crafted block on the wire, since no
maintained Python devp2p stack exists and stock geth will not seal for a non-signer). It
runs on another bank's application host, dials a sealing node directly and announces one
block on the node's head: sealed by a key that is not a signer, by the signer that sealed
the head (a compromised key, signing out of turn too often), or stamped an hour ahead.
The node must import none of them (the checker never sees the block on any node), drop
the peer for the first two, and the chain must go on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from orchestrator.lab import netns
from orchestrator.network.names import validator_key_name
from tests.faults.checker import ipc_call
from tests.faults.harness import FaultLab
from tests.faults.verdict import Outcome, Trial, judge

SOURCE = Path(__file__).with_name("hostile")
ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".tools" / "bin" / "poactl-hostile-peer"
KINDS = ("stranger", "recent", "future")


def build_peer() -> Path:
    """The hostile peer, built once per source version (go build, module proxy)."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(SOURCE.iterdir()))).hexdigest()
    stamp = BINARY.with_suffix(".sha256")
    if BINARY.exists() and stamp.exists() and stamp.read_text() == digest:
        return BINARY
    if shutil.which("go") is None:
        raise RuntimeError("Go is needed to build the hostile peer (tests/faults/hostile)")
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["go", "build", "-ldflags=-checklinkname=0", "-o", str(BINARY), "."],
        cwd=SOURCE, check=True, capture_output=True,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
    )  # fmt: skip
    stamp.write_text(digest)
    return BINARY


def announce(fl: FaultLab, kind: str, *, victim: str, from_host: str) -> dict[str, object]:
    """Run the peer against `victim` from `from_host`; its report (block, dropped?)."""
    c = fl.where(victim)
    ipc = c.layout.node(victim).ipc
    pubkey = str(ipc_call(ipc, "admin_nodeInfo", [])["enode"]).split("@")[0]  # enode://<key>
    spec = c.load().node(victim)
    address = fl.lab.plan.host(victim).address
    argv = [str(build_peer()), "-enode", f"{pubkey}@{address}:{spec.p2p_port}",
            "-kind", kind, "-period", str(c.load().settings.block_period)]  # fmt: skip
    if kind == "recent":
        head = ipc_call(ipc, "eth_getBlockByNumber", ["latest", False])
        argv += ["-key", _key_of(fl, _signer_of(fl, head["hash"]))]
    with netns.inside(fl.lab.plan.host(from_host).ns):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the hostile peer failed: {done.stderr.strip()}")
    report: dict[str, object] = json.loads(done.stdout)
    return report


def _signer_of(fl: FaultLab, block_hash: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for b in fl.checker.blocks():
            if b.hash == block_hash:
                return b.signer
        time.sleep(0.2)
    raise RuntimeError(f"the checker has not seen {block_hash}")


def _key_of(fl: FaultLab, signer: str) -> str:
    """A validator's key from its bank's vault (the attacker stole it)."""
    for _, node in fl.nodes():
        record = fl.agent(node.name)
        if record and record.identity and record.identity.signer.lower() == signer.lower():
            vault = fl.where(node.name).vault(node.member)
            key = vault.get_secret(validator_key_name(node.member, record.identity.index))
            assert key is not None
            return key.value.removeprefix("0x")
    raise RuntimeError(f"no live agent holds {signer}")


def hostile_peer(fl: FaultLab, kind: str) -> tuple[Outcome, dict[str, object]]:
    """One bad block of `kind` to a sealing node of bank-a, from bank-b's application host;
    the outcome and the peer's report, with `imported`: whether any node took the block."""
    fl.wait_healthy()
    victim, _ = fl.sealer("bank-a")
    t = Trial(time.monotonic(), bank="bank-a")
    report = announce(fl, kind, victim=victim, from_host="bank-b-app")
    t.t_heal = time.monotonic()
    t.resume_s = fl.first_block_after(t.t_heal, timeout=60)
    imported = any(b.hash == report["hash"] for b in fl.checker.blocks())
    on_victim = ipc_call(fl.ipc_paths()[victim], "eth_getBlockByHash", [report["hash"], False])
    report["imported"] = imported or on_victim is not None
    t.extra["peer dropped (1 = yes)"] = 1.0 if report["dropped"] else 0.0
    t.extra["imported (1 = yes)"] = 1.0 if report["imported"] else 0.0
    t.t_end = time.monotonic()
    return judge(fl, f"hostile peer: block {_LABELS[kind]}", [t], since=t.t_fault), report


def hostile_peers(fl: FaultLab) -> list[tuple[Outcome, dict[str, object]]]:
    return [hostile_peer(fl, kind) for kind in KINDS]


_LABELS = {
    "stranger": "sealed by a non-signer",
    "recent": "by a signer out of turn too often",
    "future": "stamped an hour ahead",
}
