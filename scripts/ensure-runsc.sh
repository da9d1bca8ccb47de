#!/usr/bin/env bash
# gVisor for the containers that hold user code: Debian's runsc, registered with the Docker
# engine as the runtime `runsc` (CONTAINER_RUNTIME=auto, the default, then uses it).
# - installs runsc when missing;
# - merges the runtime into /etc/docker/daemon.json (DOCKER_DAEMON_JSON), keeping every other
#   key and runtime there; rewrites the file only when our entry changes;
# - a running engine that does not list it yet reloads its configuration (SIGHUP: `runtimes`
#   is live-reloadable, running containers are not touched); an engine not running yet reads
#   it when it starts (ensure-docker.sh starts it after this script).
# Every container sessionflow makes for executions and sandboxes has NetworkMode none, and runsc
# refuses to start one in a network-less namespace unless told --network=none: so the entry
# carries that argument. Compute kernels of a cluster talk to each other over a private network:
# they run under a second entry, `runsc-hostinet` (--network=host: gVisor passes socket calls to
# the kernel inside the container's own network namespace). gVisor's own network stack would be
# better, but this runsc (2022-12-19) takes every namespace on kernels ≥ 6.x for the root one
# (it looks for /proc/sys/net/core/rmem_default, which every namespace has now) and refuses.
source "$(dirname "$0")/lib.sh"

daemon_json="${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}"
# The engine the scripts start (ensure-docker.sh) and systemd's both write their pid here.
docker_pidfile="${DOCKER_PIDFILE:-/var/run/docker.pid}"
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"

apt_ensure runsc
runsc_path="$(command -v runsc)" || die "runsc is installed but not on PATH"

# Prints the merged file, or nothing when our entry is already as wanted. A file that is not
# valid JSON is the operator's to fix: refused rather than overwritten.
merged="$(node - "$daemon_json" "$runsc_path" <<'JS'
const fs = require('node:fs');
const [file, path] = process.argv.slice(2);
const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
let config;
try {
  config = text.trim() ? JSON.parse(text) : {};
} catch (err) {
  console.error(`${file} is not valid JSON (${err.message}): fix it, then run this again`);
  process.exit(2);
}
const current = config.runtimes?.runsc;
const args = current?.runtimeArgs ?? [];
// An entry already there keeps its own arguments; it only gains the one our containers need.
const wanted = { ...current, path, runtimeArgs: args.includes('--network=none') ? args : [...args, '--network=none'] };
const currentNet = config.runtimes?.['runsc-hostinet'];
const wantedNet = { ...currentNet, path, runtimeArgs: [...(currentNet?.runtimeArgs ?? []).filter((arg) => !arg.startsWith('--network=')), '--network=host'] };
if (JSON.stringify(current) === JSON.stringify(wanted) && JSON.stringify(currentNet) === JSON.stringify(wantedNet)) process.exit(0);
config.runtimes = { ...config.runtimes, runsc: wanted, 'runsc-hostinet': wantedNet };
process.stdout.write(JSON.stringify(config, null, 2));
JS
)" || die "could not merge the runsc runtime into $daemon_json"

if [ -n "$merged" ]; then
  log "registering runsc ($runsc_path, --network=none) and runsc-hostinet (--network=host) in $daemon_json"
  $sudo mkdir -p "$(dirname "$daemon_json")"
  printf '%s\n' "$merged" | $sudo tee "$daemon_json.sessionflow-new" >/dev/null
  $sudo mv "$daemon_json.sessionflow-new" "$daemon_json"
fi

engine_has_runsc() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep '"runsc"' | grep -q '"runsc-hostinet"'; }

if docker version >/dev/null 2>&1 && { [ -n "$merged" ] || ! engine_has_runsc; }; then
  [ -s "$docker_pidfile" ] || die "dockerd runs but $docker_pidfile is missing: reload it yourself (kill -HUP <pid>)"
  log "reloading dockerd's configuration (SIGHUP)"
  $sudo kill -HUP "$(cat "$docker_pidfile")"
  wait_for "dockerd listing the runsc runtime (is $daemon_json the file it reads?)" 30 engine_has_runsc
fi
docker version >/dev/null 2>&1 && log "runsc $(runsc --version 2>/dev/null | head -1 | awk '{print $NF}') registered with the Docker engine"
exit 0
