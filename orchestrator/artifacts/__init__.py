"""The compiled contracts (CreditRegistry, Governance): where their artifacts live, how
they are written and loaded.

`scripts/build_contracts.py` compiles `contracts/<Name>.sol` with solc-js using
`SOLC_SETTINGS` and writes `<Name>.json` beside this module through `artifact_json`; the
credit SDK, governance and the genesis builder read them back with `load_artifact`, so the
package works without node or solc installed. The storage layout is kept because the
genesis writes Governance's founding state straight into storage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTRACTS = ("CreditRegistry", "Governance")
ARTIFACT_DIR = Path(__file__).resolve().parent
# Clique in geth 1.13 has no Shanghai: london means no PUSH0 in the bytecode.
SOLC_SETTINGS: dict[str, Any] = {
    "evmVersion": "london",
    "optimizer": {"enabled": True, "runs": 200},
}


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # creation code, 0x-prefixed
    deployed_bytecode: str  # runtime code, 0x-prefixed
    solc_version: str
    settings: dict[str, Any]
    source_sha256: str
    storage_layout: dict[str, Any]  # solc's storageLayout: {"storage": [...], "types": {...}}


def artifact_json(
    *,
    name: str,
    source_sha256: str,
    solc_version: str,
    abi: list[dict[str, Any]],
    bytecode: str,
    deployed_bytecode: str,
    storage_layout: dict[str, Any],
) -> str:
    """The artifact file's text: sorted keys, stable bytes for review and for `--check`."""
    doc = {
        "contractName": name,
        "source": f"contracts/{name}.sol",
        "sourceSha256": source_sha256,
        "compiler": {"solc": solc_version, "settings": SOLC_SETTINGS},
        "abi": abi,
        "bytecode": "0x" + bytecode.removeprefix("0x"),
        "deployedBytecode": "0x" + deployed_bytecode.removeprefix("0x"),
        "storageLayout": _without_ast_ids(storage_layout),
    }
    return json.dumps(doc, sort_keys=True, indent=1) + "\n"


def load_artifact(name: str = "CreditRegistry") -> Artifact:
    doc = json.loads((ARTIFACT_DIR / f"{name}.json").read_text())
    return Artifact(
        name=doc["contractName"],
        abi=doc["abi"],
        bytecode=doc["bytecode"],
        deployed_bytecode=doc["deployedBytecode"],
        solc_version=doc["compiler"]["solc"],
        settings=doc["compiler"]["settings"],
        source_sha256=doc["sourceSha256"],
        storage_layout=doc["storageLayout"],
    )


def _without_ast_ids(layout: dict[str, Any]) -> dict[str, Any]:
    """solc's layout without its AST ids, so an unrelated source edit keeps it stable."""
    return {
        "storage": [{k: v for k, v in e.items() if k != "astId"} for e in layout["storage"]],
        "types": {
            name: {
                **t,
                **({"members": [{k: v for k, v in m.items() if k != "astId"} for m in t["members"]]}
                   if "members" in t else {}),
            }
            for name, t in (layout.get("types") or {}).items()
        },
    }  # fmt: skip
