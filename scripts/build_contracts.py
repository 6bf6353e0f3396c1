#!/usr/bin/env python3
"""Compile contracts/ with solc-js (npm `solc`, pinned in scripts/tools/package.json) and
write the artifacts the credit SDK loads: orchestrator/artifacts/<Name>.json.

The artifact holds the ABI, creation and runtime bytecode, the solc version, the compiler
settings and the SHA-256 of the source; it is committed, so the package works without
node. tests/unit/test_credit_artifact.py fails when the source changed and the artifact
was not rebuilt. Run with the venv's Python from anywhere:

    .venv/bin/python scripts/build_contracts.py          # rebuild the artifacts
    .venv/bin/python scripts/build_contracts.py --check  # exit 1 if an artifact is stale
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.artifacts import (  # noqa: E402
    ARTIFACT_DIR,
    CONTRACTS,
    SOLC_SETTINGS,
    artifact_json,
)

SOLC_JS = ROOT / ".tools" / "node" / "node_modules" / "solc"

# Reads standard JSON on stdin, writes {"version": ..., "output": <solc's JSON>} on stdout.
_NODE_COMPILE = """
const solc = require(process.argv[1]);
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const output = JSON.parse(solc.compile(input));
  process.stdout.write(JSON.stringify({ version: solc.version(), output }));
});
"""


def compile_sources(sources: dict[str, str]) -> tuple[str, dict[str, object]]:
    node = shutil.which("node")
    if node is None or not SOLC_JS.is_dir():
        sys.exit("build_contracts: needs node and solc-js in .tools/node; run scripts/setup.sh")
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            **SOLC_SETTINGS,
            "outputSelection": {
                "*": {
                    "*": [
                        "abi",
                        "evm.bytecode.object",
                        "evm.deployedBytecode.object",
                        "storageLayout",
                    ]
                }
            },
        },
    }
    proc = subprocess.run(
        [node, "-e", _NODE_COMPILE, str(SOLC_JS)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        sys.exit(f"build_contracts: solc-js failed:\n{proc.stderr}")
    result = json.loads(proc.stdout)
    output: dict[str, object] = result["output"]
    problems = output.get("errors", [])
    assert isinstance(problems, list)
    for problem in problems:
        print(problem["formattedMessage"], file=sys.stderr)
    if any(p["severity"] == "error" for p in problems):
        sys.exit("build_contracts: compilation failed")
    return str(result["version"]), output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args()

    sources = {
        f"{name}.sol": (ROOT / "contracts" / f"{name}.sol").read_text() for name in CONTRACTS
    }
    version, output = compile_sources(sources)
    contracts = output["contracts"]
    assert isinstance(contracts, dict)
    stale = []
    for name in CONTRACTS:
        file_name = f"{name}.sol"
        compiled = contracts[file_name][name]
        text = artifact_json(
            name=name,
            source_sha256=hashlib.sha256(sources[file_name].encode()).hexdigest(),
            solc_version=version,
            abi=compiled["abi"],
            bytecode=compiled["evm"]["bytecode"]["object"],
            deployed_bytecode=compiled["evm"]["deployedBytecode"]["object"],
            storage_layout=compiled["storageLayout"],
        )
        target = ARTIFACT_DIR / f"{name}.json"
        current = target.read_text() if target.exists() else None
        if args.check:
            if current != text:
                stale.append(name)
            continue
        if current == text:
            print(f"{target.relative_to(ROOT)}: up to date (solc {version})")
        else:
            target.write_text(text)
            size = len(compiled["evm"]["deployedBytecode"]["object"]) // 2
            print(f"{target.relative_to(ROOT)}: written (solc {version}, runtime {size} bytes)")
    if stale:
        print(
            f"stale artifacts: {', '.join(stale)}; run scripts/build_contracts.py", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
