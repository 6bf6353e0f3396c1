#!/usr/bin/env bash
# Set up a development/operator checkout: a virtualenv with poactl and its dev tools,
# geth v1.13.15 built from the Go module proxy into .tools/bin, Azurite and solc-js, and
# Debian's haproxy, prometheus, chromium and cloud-init. Idempotent: each
# step is skipped when its result is already there and current.
set -euo pipefail

GETH_VERSION=1.13.15
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
tools="$root/.tools/bin"
say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# 1. Python >= 3.11 and the virtualenv.
python=${PYTHON:-python3}
command -v "$python" >/dev/null || die "no $python on PATH; install Python 3.11 or newer"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$python" --version) is too old; poactl needs Python 3.11 or newer (set PYTHON=...)"
if [ ! -x "$venv/bin/python" ]; then
  say "creating virtualenv in .venv"
  "$python" -m venv "$venv"
fi

# 2. poactl with its dev extras, reinstalled only when pyproject.toml changed.
stamp="$venv/.poactl-installed"
want=$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing poactl and its dev tools into .venv (a minute on a fresh machine)"
  log="$venv/pip-install.log"
  if ! { "$venv/bin/python" -m pip install --upgrade pip \
         && "$venv/bin/python" -m pip install --progress-bar off -e "$root[dev]"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "pip install failed (full log: $log); check that PyPI is reachable"
  fi
  echo "$want" > "$stamp"
else
  say "poactl already installed in .venv"
fi

# 3. geth, pinned: the last release that seals Clique blocks.
geth="$tools/geth"
geth_version() { "$geth" version 2>/dev/null | sed -n 's/^Version: //p' || true; }
if [ -x "$geth" ] && [[ $(geth_version) == "$GETH_VERSION"* ]]; then
  say "geth $GETH_VERSION already built in .tools/bin"
else
  command -v go >/dev/null || die "Go is needed to build geth $GETH_VERSION; install Go 1.21+ and rerun"
  say "building geth $GETH_VERSION from the Go module proxy (about a minute; more on a cold cache)"
  mkdir -p "$tools"
  # -checklinkname=0: a geth dependency links runtime internals that newer Go refuses.
  GOBIN="$tools" CGO_ENABLED=0 GOFLAGS=-mod=mod \
    go install -ldflags=-checklinkname=0 "github.com/ethereum/go-ethereum/cmd/geth@v$GETH_VERSION"
fi
[[ $(geth_version) == "$GETH_VERSION"* ]] \
  || die "$geth is not geth $GETH_VERSION but '$(geth_version)'; delete it and rerun"
# 3b. Toxiproxy, pinned: the WAN links (latency, bandwidth) of the lab and the fault suite.
TOXIPROXY_VERSION=2.12.0
toxiproxy="$tools/toxiproxy-server"
if [ -x "$toxiproxy" ] && [[ $("$toxiproxy" -version 2>/dev/null) == *"$TOXIPROXY_VERSION"* ]]; then
  say "toxiproxy $TOXIPROXY_VERSION already built in .tools/bin"
else
  command -v go >/dev/null || die "Go is needed to build toxiproxy $TOXIPROXY_VERSION; install Go 1.21+ and rerun"
  say "building toxiproxy $TOXIPROXY_VERSION from the Go module proxy"
  gobin=$(mktemp -d)
  GOBIN="$gobin" CGO_ENABLED=0 GOFLAGS=-mod=mod go install \
    -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@v$TOXIPROXY_VERSION"
  mkdir -p "$tools"
  mv "$gobin/server" "$toxiproxy" && rmdir "$gobin"
fi

# 4. Node tools (Azurite, solc-js, ethers) into .tools/node, again only when their list changed.
node_dir="$root/.tools/node"
want_node=$(sha256sum "$root/scripts/tools/package.json" | cut -d' ' -f1)
if [ "$(cat "$node_dir/.installed" 2>/dev/null)" != "$want_node" ]; then
  command -v npm >/dev/null || die "npm is needed for Azurite and solc; install Node.js 18+ and rerun"
  say "installing Azurite, solc-js and ethers into .tools/node (npm)"
  mkdir -p "$node_dir"
  cp "$root/scripts/tools/package.json" "$node_dir/package.json"
  if ! npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error \
       >"$node_dir/npm-install.log" 2>&1; then
    tail -n 30 "$node_dir/npm-install.log" >&2
    die "npm install failed (log: $node_dir/npm-install.log); check that the npm registry is reachable"
  fi
  echo "$want_node" > "$node_dir/.installed"
else
  say "Azurite, solc-js and ethers already installed in .tools/node"
fi

# 5. Debian's packages: HAProxy (each bank's load balancer), and what the monitoring
#    set-up is checked with: Prometheus (prometheus, promtool) and Chromium (the monitor
#    page's browser test, driven by Playwright).
debian_packages=()
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || debian_packages+=(haproxy)
command -v prometheus >/dev/null && command -v promtool >/dev/null || debian_packages+=(prometheus)
[ -x /usr/bin/chromium ] || debian_packages+=(chromium)
# cloud-init checks the Azure template's custom data (`cloud-init schema`); the marker
# file keeps the package from acting on this machine's boots.
command -v cloud-init >/dev/null || debian_packages+=(cloud-init)
command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || debian_packages+=(iptables)  # the lab's partitions
if [ ${#debian_packages[@]} -gt 0 ]; then
  command -v apt-get >/dev/null \
    || die "missing ${debian_packages[*]} and no apt-get: install them with your package manager"
  [ "$(id -u)" = 0 ] \
    || die "missing ${debian_packages[*]}: run 'sudo apt-get install ${debian_packages[*]}' once"
  say "installing ${debian_packages[*]} (apt-get; a minute or two on a fresh machine)"
  if [[ " ${debian_packages[*]} " == *" cloud-init "* ]]; then
    mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
  fi
  apt_log="$root/.tools/apt-install.log"
  mkdir -p "$root/.tools"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         "${debian_packages[@]}"; } >"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2
    die "apt-get install ${debian_packages[*]} failed (log: $apt_log)"
  fi
else
  say "haproxy, prometheus, chromium and cloud-init already installed"
fi

say "ready: $("$venv/bin/poactl" --version), geth $GETH_VERSION at .tools/bin/geth"
