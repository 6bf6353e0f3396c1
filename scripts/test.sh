#!/usr/bin/env bash
# Set up, then run the whole test suite on real geth. Extra arguments go to pytest
# (e.g. `scripts/test.sh -m "not slow"` or `scripts/test.sh tests/unit`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
exec .venv/bin/pytest "$@"
