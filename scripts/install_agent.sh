#!/usr/bin/env bash
# Install the poactl agent on a validator VM: what the VM extension (or cloud-init) runs
# at boot. Idempotent: a second run with the same arguments changes nothing.
#
#   install_agent.sh --source PATH --member NAME --node NAME --vault-url URL \
#     --storage-account-url URL [--container NAME] [--publish-container NAME]
#     [--consortium-data MEMBER=URL]... [--host ADDRESS] [--rpc-host ADDRESS]
#     [--peer-network CIDR] [--role validator|rpc]
#     [--consortium FILE] [--runtime docker|process] [--image IMAGE] [--p2p-port N]
#     [--http-port N] [--authrpc-port N] [--health-port N] [--state-dir DIR] [--user NAME]
#     [--wheelhouse DIR] [--python PYTHON] [--prefix DIR] [--index [--index-port N]]
#     [--client-id ID] [--advertise ADDRESS:PORT] [--shared-from MEMBER]
#     [--health-host ADDRESS] [--data-port N] [--monitor-port N]
#
# It installs poactl into its own virtualenv (/opt/poactl/venv), writes
# /etc/poactl/agent.yaml (mode 0640) from the arguments (and /etc/poactl/consortium.yaml
# from --consortium, the consortium's agreed settings), installs the systemd unit
# /etc/systemd/system/poactl-agent.service (`poactl agent`, hardened, restarted on
# failure) and, on a real root with systemd running, creates the service user and runs
# `systemctl daemon-reload && systemctl enable --now poactl-agent`. With --prefix other
# than / it writes everything under that staging root and only prints what it would run.
# Files are replaced only when their content changes (sha256), so mtimes stay put.
# --index also runs the bank's read index of the credit registry on this VM: it writes
# /etc/poactl/index.yaml (this node's JSON-RPC, the bank's store, --index-port, default
# 8945, on --rpc-host) and poactl-index.service (written here: a VM downloads this script alone).
# In Azure (infra/azure, boot.py): --client-id names the VM's managed identity
# (AZURE_CLIENT_ID for every unit), --data-port adds poactl-data.service (the bank's
# consortium data, served read-only from --publish-container), --monitor-port adds
# poactl-monitor.service and /etc/poactl/monitor.yaml.
set -euo pipefail

say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,29s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

prefix=/ source= member= node= vault_url= account_url= container=poactl host=127.0.0.1
publish_container= consortium_data=()
peer_network=127.0.0.0/8 rpc_host=
role=validator consortium= runtime=docker image= state_dir=/var/lib/poactl user=poactl
wheelhouse= python=python3 p2p_port=30303 http_port=8545 authrpc_port=8651 health_port=8745
client_id= advertise= shared_from= health_host= data_port= monitor_port=
index=false index_port=8945
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --index) index=true; shift ;;
    --index-port)
      [ $# -ge 2 ] && [ -n "$2" ] || die "$1: needs a value"
      index_port=$2; shift 2 ;;
    --consortium-data)
      [ $# -ge 2 ] && [ -n "$2" ] || die "$1: needs a value"
      consortium_data+=("$2"); shift 2 ;;
    --publish-container)
      [ $# -ge 2 ] && [ -n "$2" ] || die "$1: needs a value"
      publish_container=$2; shift 2 ;;
    --prefix|--source|--member|--node|--vault-url|--storage-account-url|--container|\
    --host|--role|--consortium|--runtime|--image|--state-dir|--user|--wheelhouse|--python|\
    --p2p-port|--http-port|--authrpc-port|--health-port|--peer-network|--rpc-host|\
    --client-id|--advertise|--shared-from|--health-host|--data-port|--monitor-port)
      [ $# -ge 2 ] && [ -n "$2" ] || die "$1: needs a value"
      case "$1" in
        --prefix) prefix=$2 ;; --source) source=$2 ;; --member) member=$2 ;;
        --node) node=$2 ;; --vault-url) vault_url=$2 ;;
        --storage-account-url) account_url=$2 ;; --container) container=$2 ;;
        --host) host=$2 ;; --role) role=$2 ;; --consortium) consortium=$2 ;;
        --runtime) runtime=$2 ;; --image) image=$2 ;; --state-dir) state_dir=$2 ;;
        --user) user=$2 ;; --wheelhouse) wheelhouse=$2 ;; --python) python=$2 ;;
        --p2p-port) p2p_port=$2 ;; --http-port) http_port=$2 ;;
        --authrpc-port) authrpc_port=$2 ;; --health-port) health_port=$2 ;;
        --peer-network) peer_network=$2 ;; --rpc-host) rpc_host=$2 ;;
        --client-id) client_id=$2 ;; --advertise) advertise=$2 ;;
        --shared-from) shared_from=$2 ;; --health-host) health_host=$2 ;;
        --data-port) data_port=$2 ;; --monitor-port) monitor_port=$2 ;;
      esac
      shift 2 ;;
    *) die "$1: unknown argument (see --help)" ;;
  esac
done

# -- check every argument before touching anything ----------------------------------
# (the rules of orchestrator/agent/settings.py, so the agent accepts what is written here)
[ -n "$source" ] || die "--source: missing (a poactl wheel, or the poactl source directory)"
[ -n "$member" ] || die "--member: missing (this bank's member name, e.g. bank-a)"
[ -n "$node" ] || die "--node: missing (this VM's node name, e.g. bank-a-1)"
[ -n "$vault_url" ] || die "--vault-url: missing (e.g. https://bank-a-kv.vault.azure.net)"
[ -n "$account_url" ] || die "--storage-account-url: missing (e.g. https://bankadata.blob.core.windows.net)"
[[ $member =~ ^[a-z][a-z0-9-]{0,30}[a-z0-9]$ ]] \
  || die "--member: '$member' is not a member name (2-32 lowercase letters, digits, '-'; a letter first)"
[[ $node =~ ^[a-z][a-z0-9-]{0,40}[a-z0-9]$ ]] \
  || die "--node: '$node' is not a node name (2-42 lowercase letters, digits, '-'; a letter first)"
url_re='^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$'
[[ $vault_url =~ $url_re ]] || die "--vault-url: '$vault_url' is not an https:// URL"
[[ $account_url =~ $url_re ]] || die "--storage-account-url: '$account_url' is not an https:// URL"
{ [[ $container =~ ^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$ ]] && [[ $container != *--* ]]; } \
  || die "--container: '$container' is not a blob container name (3-63 lowercase letters, digits, single '-')"
if [ -n "$publish_container" ]; then
  { [[ $publish_container =~ ^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$ ]] && [[ $publish_container != *--* ]]; } \
    || die "--publish-container: '$publish_container' is not a blob container name"
  [ "$publish_container" != "$container" ] \
    || die "--publish-container: must differ from --container (the other banks may read it; leases stay private)"
fi
data_yaml=""
for entry in "${consortium_data[@]}"; do
  data_member=${entry%%=*} data_url=${entry#*=}
  [[ $entry == *=* && $data_member =~ ^[a-z][a-z0-9-]{0,30}[a-z0-9]$ ]] \
    || die "--consortium-data: '$entry' is not MEMBER=URL"
  [ "$data_member" != "$member" ] || die "--consortium-data: '$data_member' is this bank (it reads its own store)"
  [[ $data_url =~ ^https?://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/-]+(\?[A-Za-z0-9._~%=\&:+-]*)?$ ]] \
    || die "--consortium-data: '$data_url' is not an http(s):// container URL (a member's data endpoint, or a read-only SAS URL)"
  data_yaml+=$'\n'"    $data_member: \"$data_url\""
done
[ -z "$data_yaml" ] || data_yaml=$'\n'"  consortium_data:$data_yaml"
if [ -n "$shared_from" ]; then
  printf '%s\n' "${consortium_data[@]}" | grep -q "^$shared_from=" \
    || die "--shared-from: '$shared_from' is not one of the --consortium-data members (the member joined from)"
  data_yaml+=$'\n'"  shared_from: \"$shared_from\""
fi
monitor_store="  kind: azure"$'\n'"  account_url: \"$account_url\""$'\n'"  container: \"$container\"$data_yaml"
[ -z "$publish_container" ] \
  || data_yaml=$'\n'"  publish:"$'\n'"    kind: azure"$'\n'"    account_url: \"$account_url\""$'\n'"    container: \"$publish_container\"$data_yaml"
[[ $host =~ ^[A-Za-z0-9.:-]+$ ]] || die "--host: '$host' is not an address (this VM's address its peers reach)"
rpc_host=${rpc_host:-$host}
[[ $rpc_host =~ ^[A-Za-z0-9.:-]+$ ]] || die "--rpc-host: '$rpc_host' is not an address (where JSON-RPC listens for the balancer)"
[[ $peer_network =~ ^[0-9A-Fa-f.:]+/[0-9]{1,3}$ ]] || die "--peer-network: '$peer_network' is not a CIDR (the members' node network, e.g. 10.0.0.0/8)"
case "$role" in validator|rpc) ;; *) die "--role: '$role' is not validator or rpc" ;; esac
[ -z "$client_id" ] || [[ $client_id =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]] \
  || die "--client-id: '$client_id' is not a managed identity's client id (a GUID)"
[ -z "$advertise" ] || [[ $advertise =~ ^[0-9.]+:[0-9]{1,5}$ ]] \
  || die "--advertise: '$advertise' is not ADDRESS:PORT (where other banks reach this node's p2p)"
[ -z "$health_host" ] || [[ $health_host =~ ^[A-Za-z0-9.:-]+$ ]] \
  || die "--health-host: '$health_host' is not an address (where /health listens)"
[ -z "$data_port" ] || [ -n "$publish_container" ] \
  || die "--data-port: serves the bank's publication; give --publish-container too"
for port_arg in p2p_port http_port authrpc_port health_port data_port monitor_port index_port; do
  port=${!port_arg}
  [ -n "$port" ] || continue
  [[ $port =~ ^[0-9]{4,5}$ ]] && [ "$port" -ge 1024 ] && [ "$port" -le 65535 ] \
    || die "--${port_arg//_/-}: '$port' is not a port in 1024..65535"
done
[ -z "$consortium" ] || [ -f "$consortium" ] || die "--consortium: '$consortium' is not a file"
case "$runtime" in
  docker) image=${image:-ethereum/client-go:v1.13.15} ;;
  process) [ -z "$image" ] || die "--image: only for --runtime docker (the process runtime runs a geth binary)" ;;
  *) die "--runtime: '$runtime' is not docker or process" ;;
esac
[ -z "$image" ] || [[ $image =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]] || die "--image: '$image' is not an image reference"
[[ $state_dir =~ ^/[A-Za-z0-9._/-]+$ ]] || die "--state-dir: '$state_dir' is not an absolute path"
[[ $user =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "--user: '$user' is not a user name"
[[ $prefix == /* ]] || die "--prefix: '$prefix' is not an absolute path"
[ -e "$source" ] || die "--source: '$source' does not exist"
if [ -d "$source" ]; then
  [ -f "$source/pyproject.toml" ] || die "--source: '$source' has no pyproject.toml"
elif [[ $source != *.whl ]]; then
  die "--source: '$source' is neither a wheel (.whl) nor a source directory"
fi
[ -z "$wheelhouse" ] || [ -d "$wheelhouse" ] || die "--wheelhouse: '$wheelhouse' is not a directory"
command -v "$python" >/dev/null || die "--python: '$python' not found (poactl needs Python 3.11+)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "--python: $("$python" --version 2>&1) is too old; poactl needs Python 3.11+"

root=${prefix%/}  # "" for /
real=false
[ -z "$root" ] && real=true
venv=/opt/poactl/venv
config=/etc/poactl/agent.yaml
consortium_file=/etc/poactl/consortium.yaml
unit=/etc/systemd/system/poactl-agent.service
monitor_config=/etc/poactl/monitor.yaml
index_config=/etc/poactl/index.yaml
units=(poactl-agent)
changed=0
$real || say "staging root $prefix: users and systemd are left alone"

# -- 1. the virtualenv with poactl --------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -d "$source" ]; then
  # Build from a copy of what the package is made of (pip would write build/ and
  # *.egg-info into the source tree), and fingerprint exactly that.
  mkdir "$work/src"
  for part in pyproject.toml README.md LICENSE orchestrator genesis; do
    [ -e "$source/$part" ] && cp -r "$source/$part" "$work/src/"
  done
  find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
  install_from="$work/src"
  fingerprint=$(cd "$work/src" && find . -type f -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
else
  install_from=$source
  fingerprint=$(sha256sum "$source" | cut -d' ' -f1)
fi
pip_args=()
[ -n "$wheelhouse" ] && pip_args=(--no-index --find-links "$wheelhouse")
stamp_want="$fingerprint python=$("$python" -c 'import sys; print(sys.version.split()[0])') ${pip_args[*]}"
stamp="$root$venv/.poactl-source"
if [ -x "$root$venv/bin/python" ] && "$root$venv/bin/python" -c '' 2>/dev/null \
   && [ -x "$root$venv/bin/poactl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$stamp_want" ]; then
  say "$venv: poactl unchanged (source sha256 ${fingerprint:0:12})"
else
  if ! [ -x "$root$venv/bin/python" ] || ! "$root$venv/bin/python" -c '' 2>/dev/null; then
    say "$venv: creating the virtualenv"
    rm -rf "$root$venv"
    mkdir -p "$(dirname "$root$venv")"
    "$python" -m venv "$root$venv" || die "$python -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
  fi
  say "$venv: installing poactl from $source"
  log="$work/pip.log"
  if ! { "$root$venv/bin/python" -m pip uninstall -q -y poactl \
         && "$root$venv/bin/python" -m pip install -q --disable-pip-version-check \
              "${pip_args[@]}" "$install_from"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "pip install of poactl failed (PyPI unreachable? use --wheelhouse DIR)"
  fi
  echo "$stamp_want" >"$stamp"
  changed=$((changed + 1))
fi

# -- 2. files from the arguments -----------------------------------------------------
install_file() {  # DEST MODE GROUP, content on stdin; replaced only when it differs
  local dest=$1 mode=$2 group=$3 target="$root$1" tmp
  mkdir -p "$(dirname "$target")"
  tmp=$(mktemp "$(dirname "$target")/.poactl-install.XXXXXX")
  cat >"$tmp"
  if [ -f "$target" ] && [ "$(sha256sum <"$tmp")" = "$(sha256sum <"$target")" ] \
     && [ "$(stat -c %a "$target")" = "${mode#0}" ]; then
    rm -f "$tmp"
    say "$dest: unchanged"
    return 0
  fi
  chmod "$mode" "$tmp"
  if $real && [ -n "$group" ] && getent group "$group" >/dev/null; then chgrp "$group" "$tmp"; fi
  mv -f "$tmp" "$target"
  say "$dest: written"
  changed=$((changed + 1))
}

runtime_yaml="  kind: $runtime"
[ "$runtime" = docker ] && runtime_yaml+=$'\n'"  image: \"$image\""
agent_extra=""
[ -z "$advertise" ] || agent_extra+=$'\n'"advertise: \"$advertise\""
[ -z "$health_host" ] || agent_extra+=$'\n'"health_host: \"$health_host\""
if [ -n "$consortium" ]; then
  install_file "$consortium_file" 0644 "" <"$consortium"
elif [ ! -f "$root$consortium_file" ]; then
  say "note: $consortium_file is not there yet; the agent needs it (pass --consortium FILE)"
fi
install_file "$config" 0640 "$user" <<EOF
# Written by install_agent.sh; rerun it to change (edits here are overwritten).
# The keys are documented in orchestrator/agent.example.yaml.
member: "$member"
node: "$node"
role: $role
state_dir: "$state_dir"
consortium_file: "$consortium_file"
host: "$host"$agent_extra
peer_network: "$peer_network"
rpc_host: "$rpc_host"
ports:
  p2p: $p2p_port
  http: $http_port
  authrpc: $authrpc_port
  health: $health_port
runtime:
$runtime_yaml
vault:
  kind: azure
  url: "$vault_url"
store:
  kind: azure
  account_url: "$account_url"
  container: "$container"$data_yaml
EOF

docker_lines=""
[ "$runtime" = docker ] && docker_lines=$'\n'"SupplementaryGroups=docker"
identity_line=""
[ -z "$client_id" ] || identity_line=$'\n'"Environment=AZURE_CLIENT_ID=$client_id"
install_file "$unit" 0644 "" <<EOF
# Written by install_agent.sh; rerun it to change.
[Unit]
Description=poactl agent: this VM's geth node of the consortium
Wants=network-online.target
After=network-online.target docker.service
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=simple
User=$user
Group=$user$docker_lines
ExecStart=$venv/bin/poactl agent --config $config
Restart=on-failure
RestartSec=10
# The agent stops geth with SIGINT and waits up to 30 s before it kills it.
TimeoutStopSec=60
WorkingDirectory=$state_dir
Environment=PYTHONUNBUFFERED=1$identity_line
UMask=0027
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=$state_dir
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
CapabilityBoundingSet=
AmbientCapabilities=

[Install]
WantedBy=multi-user.target
EOF

service_unit() {  # NAME DESCRIPTION EXECSTART: a hardened unit for another poactl service
  install_file "/etc/systemd/system/$1.service" 0644 "" <<EOF
# Written by install_agent.sh; rerun it to change.
[Unit]
Description=$2
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=$user
Group=$user
ExecStart=$3
Restart=on-failure
RestartSec=10
WorkingDirectory=$state_dir
Environment=PYTHONUNBUFFERED=1$identity_line
UMask=0027
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=$state_dir
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
CapabilityBoundingSet=
AmbientCapabilities=

[Install]
WantedBy=multi-user.target
EOF
  units+=("$1")
}
if [ -n "$data_port" ]; then
  service_unit poactl-data "poactl: this bank's consortium data, served read-only" \
    "$venv/bin/poactl serve-data --config $config --port $data_port"
fi
if [ -n "$monitor_port" ]; then
  install_file "$monitor_config" 0640 "$user" <<EOF
# Written by install_agent.sh; rerun it to change. Keys: orchestrator/monitor/settings.py.
member: "$member"
host: "$host"
port: $monitor_port
rpc_url: "http://$rpc_host:$http_port"
state_dir: "$state_dir/monitor"
consortium_file: "$consortium_file"
store:
$monitor_store
EOF
  service_unit poactl-monitor "poactl: this bank's monitor" \
    "$venv/bin/poactl monitor --config $monitor_config"
fi
if $index; then  # the bank's read index: this node's logs, the bank's store (no publishing)
  index_data=""
  for entry in "${consortium_data[@]}"; do
    index_data+=$'\n'"    ${entry%%=*}: \"${entry#*=}\""
  done
  [ -z "$index_data" ] || index_data=$'\n'"  consortium_data:$index_data"
  install_file "$index_config" 0640 "$user" <<EOF
# Written by install_agent.sh --index; rerun it to change (edits here are overwritten).
# The keys are documented in orchestrator/index/settings.py.
member: "$member"
host: "$rpc_host"
port: $index_port
rpc_urls: ["http://$rpc_host:$http_port"]
state_dir: "$state_dir/index"
store:
  kind: azure
  account_url: "$account_url"
  container: "$container"$index_data
EOF
  service_unit poactl-index "poactl: this bank's read index of the credit registry" \
    "$venv/bin/poactl index --config $index_config"
fi

# -- 3. the service user, the state directory and systemd ---------------------------
if $real; then
  if ! getent passwd "$user" >/dev/null; then
    say "creating system user $user"
    useradd --system --user-group --home-dir "$state_dir" --no-create-home \
      --shell /usr/sbin/nologin "$user"
    changed=$((changed + 1))
  fi
  if [ "$runtime" = docker ] && getent group docker >/dev/null \
     && ! id -nG "$user" | tr ' ' '\n' | grep -qx docker; then
    say "adding $user to the docker group (it starts geth containers)"
    usermod -aG docker "$user"
    changed=$((changed + 1))
  fi
  chgrp "$user" "$config"
  [ -z "$monitor_port" ] || chgrp "$user" "$monitor_config"
  if $index; then chgrp "$user" "$index_config"; fi
  if [ ! -d "$state_dir" ]; then
    install -d -m 0750 -o "$user" -g "$user" "$state_dir"
    changed=$((changed + 1))
  fi
else
  mkdir -p "$root$state_dir"
  say "would run: useradd --system --user-group --home-dir $state_dir --no-create-home --shell /usr/sbin/nologin $user"
  [ "$runtime" = docker ] && say "would run: usermod -aG docker $user"
  say "would run: install -d -m 0750 -o $user -g $user $state_dir"
fi

enable="systemctl daemon-reload && systemctl enable --now ${units[*]}"
if $real && [ -d /run/systemd/system ]; then
  if [ "$changed" -gt 0 ]; then
    say "running: $enable (and a restart, to pick up the changes)"
    systemctl daemon-reload
    systemctl enable --now "${units[@]}"
    systemctl restart "${units[@]}"
  else
    systemctl enable --now "${units[@]}"  # a no-op when enabled and running
  fi
else
  $real && say "systemd is not running here"
  say "would run: $enable"
fi

if [ "$changed" -eq 0 ]; then
  say "nothing changed"
else
  say "done: $changed change(s)"
fi
