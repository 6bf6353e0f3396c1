"""A new consortium's state: node keys, validator keystores, genesis, `geth init`.

Everything here writes into a layout the caller chose (a staging directory that
`LocalConsortium` renames into place once it is complete), so a failure never leaves a
half-made consortium behind.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from genesis import CliqueSpec, InvalidGenesisSpec, build_genesis, canonical_json
from orchestrator.config import Consortium
from orchestrator.errors import ConfigError, NodeError
from orchestrator.geth import geth_config_toml
from orchestrator.keys import create_node_key, create_validator_key, enode_url
from orchestrator.layout import NodePaths, StateLayout
from orchestrator.statefile import write_json_atomic


def create_state(layout: StateLayout, consortium: Consortium, geth: str) -> None:
    """Write a complete new state into `layout` (the caller renames it into place)."""
    s = consortium.settings
    signers: dict[str, str] = {}
    enodes: dict[str, str] = {}
    for node in consortium.nodes:
        paths = layout.node(node.name)
        create_node_key(paths.nodekey)
        enodes[node.name] = enode_url(paths.nodekey, "127.0.0.1", node.p2p_port)
        if node.is_validator:
            signers[node.name] = create_validator_key(paths.keystore, paths.password)
    try:
        genesis = build_genesis(
            CliqueSpec(
                chain_id=s.chain_id,
                signers=list(signers.values()),
                period=s.block_period,
                epoch=s.epoch,
                gas_limit=s.gas_limit,
            )
        )
    except InvalidGenesisSpec as e:
        raise ConfigError(str(e), obj=consortium.source) from e
    layout.genesis.write_bytes(canonical_json(genesis))
    for node in consortium.nodes:
        paths = layout.node(node.name)
        peers = [e for name, e in enodes.items() if name != node.name]
        paths.geth_config.write_text(geth_config_toml(node.p2p_port, peers))
        _geth_init(geth, paths, layout.genesis, node.name)
    write_json_atomic(
        layout.network,
        {
            "version": 1,
            "chain_id": s.chain_id,
            "nodes": [
                {
                    "name": n.name,
                    "member": n.member,
                    "role": n.role,
                    "enode": enodes[n.name],
                    "signer": signers.get(n.name),
                    "rpc_url": n.rpc_url,
                }
                for n in consortium.nodes
            ],
        },
    )
    layout.config.write_text(consortium.canonical())


def _geth_init(geth: str, paths: NodePaths, genesis: Path, name: str) -> None:
    result = subprocess.run(
        [geth, "--datadir", str(paths.datadir), "init", str(genesis)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise NodeError(
            "`geth init` failed: " + " | ".join(result.stderr.strip().splitlines()[-3:]),
            obj=name,
            hint="check the genesis settings in the consortium file",
        )
