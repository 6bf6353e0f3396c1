#!/usr/bin/env bash
# Podman as the Docker API on this machine (no Docker Engine here; DESIGN.md).
#
#   scripts/setup_podman.sh          install podman + runc if missing, write the repo-local
#                                    podman config, start the API service if it is not
#                                    answering, print DOCKER_HOST=unix://... on the last line
#   scripts/setup_podman.sh --stop   stop the API service this script started (by its pid)
#   scripts/setup_podman.sh --env    print the environment a podman CLI call needs
#
# Nothing under /etc is touched: podman reads its config from CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF, both under .tools/podman/, and so do its images and containers.
# Idempotent and fast when already done (one socket ping). Containers use host networking
# (bridge networks do not pass traffic on this machine); TESTCONTAINERS_RYUK_DISABLED=true.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/.tools/podman"
sock="$dir/podman.sock"
pidfile="$dir/service.pid"
logfile="$dir/service.log"
say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

export CONTAINERS_CONF="$dir/containers.conf"
export CONTAINERS_STORAGE_CONF="$dir/storage.conf"

answering() { curl -fsS --max-time 2 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; }

our_pid() {  # the recorded service pid, if that process is still our podman service
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] || return 1
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"system service"* ]] && echo "$pid"
}

case "${1:-}" in
  --stop)
    if pid=$(our_pid); then
      say "stopping the podman API service (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    else
      say "no podman API service of ours is running"
    fi
    rm -f "$pidfile"
    exit 0
    ;;
  --env)
    printf 'export CONTAINERS_CONF=%q CONTAINERS_STORAGE_CONF=%q DOCKER_HOST=%q\n' \
      "$CONTAINERS_CONF" "$CONTAINERS_STORAGE_CONF" "unix://$sock"
    printf 'export TESTCONTAINERS_RYUK_DISABLED=true\n'
    exit 0
    ;;
  "") ;;
  *) die "unknown argument '$1' (use no argument, --stop or --env)" ;;
esac

# 1. podman and runc from Debian, only when missing. The package lists are refreshed
#    only when apt does not know the packages yet.
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  command -v apt-get >/dev/null || die "podman is missing and there is no apt-get; install podman and runc"
  [ "$(id -u)" = 0 ] || die "podman is missing; run this once as root (it runs apt-get install podman runc)"
  policy=$(apt-cache policy podman runc 2>/dev/null || true)
  if [ "$(grep -c 'Candidate: [0-9]' <<<"$policy")" != 2 ]; then
    say "apt-get update (podman is not in the package lists yet)"
    apt-get update -qq >/dev/null
  fi
  say "installing podman and runc (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc \
    >"$root/.tools/podman-apt.log" 2>&1 || { tail -n 20 "$root/.tools/podman-apt.log" >&2; die "apt-get install podman runc failed"; }
fi

# 2. Repo-local config: runc (crun is not installed), no default ulimits (the sandbox refuses
#    raising them), cgroupfs (no systemd here), logs in files that the Docker API can
#    follow, and images/containers stored under .tools/podman.
mkdir -p "$dir"
write_if_changed() {  # path content
  if [ "$(cat "$1" 2>/dev/null)" != "$2" ]; then
    printf '%s\n' "$2" >"$1"
    say "wrote ${1#"$root"/}"
  fi
}
write_if_changed "$CONTAINERS_CONF" '# Written by scripts/setup_podman.sh; read through CONTAINERS_CONF.
[containers]
default_ulimits = []
log_driver = "k8s-file"
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'
write_if_changed "$CONTAINERS_STORAGE_CONF" "# Written by scripts/setup_podman.sh; read through CONTAINERS_STORAGE_CONF.
[storage]
driver = \"vfs\"
graphroot = \"$dir/storage\"
runroot = \"$dir/run\""

# 3. The Docker-compatible API on a socket in the repo, started only when not answering.
if answering; then
  say "podman API already answering on ${sock#"$root"/}"
else
  if pid=$(our_pid); then
    say "podman API service pid $pid is not answering; restarting it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$sock" "$pidfile"
  say "starting the podman API service on ${sock#"$root"/} (log: ${logfile#"$root"/})"
  setsid podman system service --time=0 "unix://$sock" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 100); do answering && break; sleep 0.1; done
  answering || { tail -n 20 "$logfile" >&2; die "the podman API did not answer on $sock within 10 s"; }
  say "podman API answering (pid $(cat "$pidfile"))"
fi
echo "DOCKER_HOST=unix://$sock"
