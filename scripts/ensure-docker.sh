#!/usr/bin/env bash
# Docker engine: Debian's docker.io, started here when no daemon answers, with gVisor (runsc)
# registered as a runtime (ensure-runsc.sh: before the start, or a reload of a running engine).
source "$(dirname "$0")/lib.sh"

docker_up() { docker version --format '{{.Server.Version}}'; }

# Without gVisor the system still runs (CONTAINER_RUNTIME=auto falls back to runc, and says so).
"$SF_ROOT/scripts/ensure-runsc.sh" || log "warning: runsc is not registered; containers will run under runc"
if ! docker_up >/dev/null 2>&1; then
  command -v dockerd >/dev/null || apt_ensure docker.io
  log "starting dockerd"
  start_daemon dockerd dockerd --host unix:///var/run/docker.sock
  wait_for "dockerd" 60 docker_up
fi
log "docker $(docker_up) ready"
