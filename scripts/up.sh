#!/usr/bin/env bash
# The main job on a fresh machine: set up, bring up the default local consortium
# (two banks, four Clique signers, a block every 2 s) and show its status.
# Extra arguments go to `poactl up` (e.g. --state-dir DIR, --config FILE).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
"$root/.venv/bin/poactl" up "$@"
state_args=()
for ((i = 1; i <= $#; i++)); do
  if [ "${!i}" = "--state-dir" ]; then j=$((i + 1)); state_args=(--state-dir "${!j}"); fi
done
"$root/.venv/bin/poactl" status "${state_args[@]}"
