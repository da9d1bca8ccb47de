#!/usr/bin/env bash
# A second Docker engine beside the main one, for a second compute node on one machine (tests,
# benchmarks): its own socket /run/<name>.sock, data root /var/lib/<name>, exec root
# /run/<name>, pid file and configuration /etc/<name>/daemon.json, no iptables rules of its own
# (see the two below), user-defined networks from 10.222.0.0/16 so they never overlap the main
# engine's. Its default bridge is one of its own, `<name>0` (10.222.255.1/24, no route out):
# `--bridge=none` would be simpler, but at start dockerd then deletes the interface docker0
# (meant to clean up its own old bridge), which on a shared host is the main engine's.
# - the same OCI runtimes as the main engine (ensure-runsc.sh writes them into this engine's
#   own configuration file) and the main engine's insecure registries, so it pulls from the
#   loopback registry like the main one;
# - its own containerd namespaces, so it never sees the main engine's containers even if both
#   end up on one containerd;
# - idempotent: an engine already answering on the socket is left running (its runtimes are
#   reloaded by ensure-runsc.sh when they change).
# Usage: ensure-node-engine.sh [name]   (default sf-node-b)
source "$(dirname "$0")/lib.sh"

name="${1:-sf-node-b}"
[[ "$name" =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "engine name '$name': lowercase letters, digits and -"
socket="/run/$name.sock"
config_dir="/etc/$name"
config="$config_dir/daemon.json"
main_config="${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}"
exec_root="/run/$name"
pidfile="$exec_root/dockerd.pid"
pool="10.222.0.0/16"
bridge="${name//-/}"; bridge="${bridge:0:14}0"
bridge_address="10.222.255.1/24"
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"

engine() { docker -H "unix://$socket" "$@"; }
engine_up() { engine version --format '{{.Server.Version}}'; }

# The main engine's registry settings, carried over; every key this script passes as a flag is
# left out (dockerd refuses a setting given both ways).
$sudo mkdir -p "$config_dir"
merged="$(node - "$main_config" "$config" <<'JS'
const fs = require('node:fs');
const [mainFile, file] = process.argv.slice(2);
const read = (path) => (fs.existsSync(path) && fs.readFileSync(path, 'utf8').trim() ? JSON.parse(fs.readFileSync(path, 'utf8')) : {});
const main = read(mainFile);
const current = read(file);
const wanted = { ...current };
for (const key of ['insecure-registries', 'registry-mirrors']) if (main[key]) wanted[key] = main[key];
if (JSON.stringify(current) !== JSON.stringify(wanted)) process.stdout.write(JSON.stringify(wanted, null, 2));
JS
)" || die "could not read $main_config or $config"
if [ -n "$merged" ]; then
  printf '%s\n' "$merged" | $sudo tee "$config.sessionflow-new" >/dev/null
  $sudo mv "$config.sessionflow-new" "$config"
fi
[ -s "$config" ] || echo '{}' | $sudo tee "$config" >/dev/null

# Runtimes (runsc, and runsc-hostinet for containers on networks) into this engine's file; a running
# engine is reloaded by it, a stopped one reads them when it starts below.
DOCKER_DAEMON_JSON="$config" DOCKER_PIDFILE="$pidfile" DOCKER_HOST="unix://$socket" \
  "$SF_ROOT/scripts/ensure-runsc.sh" || log "warning: runsc is not registered with $name; its containers will run under runc"

if ! engine_up >/dev/null 2>&1; then
  command -v dockerd >/dev/null || apt_ensure docker.io
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    $sudo ip link add "$bridge" type bridge
    $sudo ip addr add "$bridge_address" dev "$bridge"
    $sudo ip link set "$bridge" up
  fi
  log "starting a second Docker engine $name ($socket)"
  $sudo mkdir -p "/var/lib/$name" "$exec_root"
  start_daemon "$name" $sudo dockerd \
    --config-file "$config" \
    --host "unix://$socket" \
    --data-root "/var/lib/$name" \
    --exec-root "$exec_root" \
    --pidfile "$pidfile" \
    --containerd-namespace "$name" \
    --containerd-plugins-namespace "$name-plugins" \
    --bridge "$bridge" --iptables=false --ip-forward=false --ip-masq=false \
    --default-address-pool "base=$pool,size=24"
  wait_for "dockerd $name" 60 engine_up
fi

# With --iptables=false nothing opens or closes this engine's networks, and the main engine's
# FORWARD policy (DROP, with bridged traffic passing through iptables) would cut its containers
# off from each other; nothing would keep them from the host's own listeners either. So:
# traffic bridged inside one of its networks passes, and nothing from its pool reaches the host.
# (A container has no route to another network's subnet, so two sessions' networks stay apart.)
ensure_rule() { $sudo iptables -C "$@" 2>/dev/null || $sudo iptables -I "$@"; }
ensure_rule FORWARD -s "$pool" -d "$pool" -m physdev --physdev-is-bridged -j ACCEPT
ensure_rule INPUT -s "$pool" -j DROP
log "docker engine $name $(engine_up) ready on $socket (runtimes: $(engine info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}'))"
