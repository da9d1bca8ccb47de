#!/usr/bin/env bash
# A container registry on loopback (Debian's docker-registry), deletes enabled so tests can
# clean up what they push.
source "$(dirname "$0")/lib.sh"

registry_up() { curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/"; }
registry_up 2>/dev/null && { log "registry already running on :$REGISTRY_PORT"; exit 0; }

command -v docker-registry >/dev/null || apt_ensure docker-registry
config="$SF_HOME/registry-$REGISTRY_PORT.yml"
mkdir -p "$SF_HOME/registry-$REGISTRY_PORT"
cat >"$config" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $SF_HOME/registry-$REGISTRY_PORT
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  headers:
    X-Content-Type-Options: [nosniff]
YAML
log "starting registry on 127.0.0.1:$REGISTRY_PORT"
start_daemon "registry-$REGISTRY_PORT" docker-registry serve "$config"
wait_for "registry" 30 registry_up
