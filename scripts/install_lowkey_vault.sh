#!/usr/bin/env bash
# Placeholder: fetches the Lowkey Vault emulator jar into .tools/lowkey (being written).
exit 0
