"""Peers: each node publishes its enode; every agent reads the others' to peer with them.

Static peering only (no discovery): the enodes in the bank's store and in the other
banks' published data are the whole peer list. A record is keyed by the (member, node)
of its path, `enodes/<member>/<node>.json`: two banks may both have a `node-1`, and a
bank's publication speaks only for its own nodes. A record whose own `member` or `node`
disagrees with its path, or a malformed one, is reported and skipped, never fatal, so
one bad blob cannot keep a consortium from peering.
"""

from __future__ import annotations

import json
import re

from orchestrator.boundaries import Store
from orchestrator.network.names import enode_blob, node_of

ENODE = re.compile(r"^enode://[0-9a-f]{128}@[0-9A-Za-z.:\[\]-]+:\d{1,5}$")


def publish_enode(store: Store, node: str, member: str, enode: str) -> None:
    body = json.dumps({"node": node, "member": member, "enode": enode}, sort_keys=True)
    current = store.read(enode_blob(member, node))
    if current is None or current.data != body.encode():
        store.write(enode_blob(member, node), body.encode())


def read_enodes(store: Store) -> tuple[dict[tuple[str, str], str], list[str]]:
    """(member, node) -> enode for every well-formed enode blob, and a problem line per
    bad one."""
    enodes: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    for name in store.list("enodes/"):
        key = node_of(name, "enodes")
        if key is None:
            problems.append(f"{name}: not an enode record's name (enodes/<member>/<node>.json)")
            continue
        blob = store.read(name)
        if blob is None:
            continue
        try:
            doc = json.loads(blob.data)
            node, enode, member = str(doc["node"]), str(doc["enode"]), str(doc["member"])
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{name}: not an enode record ({type(e).__name__})")
            continue
        if (member, node) != key:
            problems.append(
                f"{name}: names {member[:40]!r}/{node[:40]!r}, not its path's {key[0]}/{key[1]}"
            )
            continue
        if not ENODE.match(enode):
            problems.append(f"{name}: malformed enode URL {enode[:80]!r}")
            continue
        enodes[key] = enode
    return enodes, problems
