#!/usr/bin/env bash
# Fetch the Lowkey Vault emulator (a Spring Boot jar on Maven Central) into .tools/lowkey
# for the vault contract tests (tests/services/lowkey_vault.py). Idempotent: does nothing
# when the pinned jar is already there.
#
# Pinned to 3.4.33, the last release whose app runs on Java 17 (4.x needs Java 21,
# 5.x and later Java 25). Not fatal when it cannot be fetched: the vault tests then run
# against the built-in Key Vault emulator and skip the Lowkey ones, saying why.
set -euo pipefail

LOWKEY_VERSION=${LOWKEY_VERSION:-3.4.33}  # keep in step with tests/services/lowkey_vault.py
ARTIFACT="com.github.nagyesta.lowkey-vault:lowkey-vault-app:$LOWKEY_VERSION:jar"
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
NEEDS_JAVA=17

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/.tools/lowkey"
jar="$dir/lowkey-vault-app-$LOWKEY_VERSION.jar"
say() { printf '[setup] %s\n' "$*"; }
skip() { say "Lowkey Vault $LOWKEY_VERSION not installed: $*; the vault tests use the built-in Key Vault emulator"; exit 0; }

if [ -s "$jar" ]; then
  say "Lowkey Vault $LOWKEY_VERSION already in .tools/lowkey"
  exit 0
fi

command -v java >/dev/null || skip "no java on PATH (it needs Java $NEEDS_JAVA+)"
command -v mvn >/dev/null || skip "no mvn on PATH (Maven fetches it from Maven Central)"
java_major=$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1)
[ "${java_major:-0}" -ge "$NEEDS_JAVA" ] || skip "java is version ${java_major:-unknown}, it needs $NEEDS_JAVA+"

mkdir -p "$dir"
log="$dir/mvn.log"
# -U: ask again even if an earlier attempt found nothing (Maven caches misses for a day).
if ! (cd "$dir" && mvn -B -q -U "$DEPENDENCY_PLUGIN:copy" -Dartifact="$ARTIFACT" \
        -DoutputDirectory="$dir" -Dmdep.stripClassifier=true) >"$log" 2>&1; then
  skip "Maven Central did not provide $ARTIFACT (log: ${log#"$root"/})"
fi
[ -s "$jar" ] || skip "Maven reported success but $jar is missing (log: ${log#"$root"/})"

# A jar built for a newer Java than ours would fail at start-up: say so now.
jdk_spec=$(unzip -p "$jar" META-INF/MANIFEST.MF 2>/dev/null | tr -d '\r' | sed -n 's/^Build-Jdk-Spec: *//p')
if [ -n "$jdk_spec" ] && [ "$jdk_spec" -gt "$java_major" ]; then
  rm -f "$jar"
  skip "release $LOWKEY_VERSION needs Java $jdk_spec, this machine has $java_major"
fi
say "fetched Lowkey Vault $LOWKEY_VERSION from Maven Central into .tools/lowkey"
