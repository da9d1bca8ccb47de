#!/usr/bin/env bash
# Container registries on loopback (Debian's docker-registry), deletes enabled so tests can
# clean up what they push: the open one every node pulls from (REGISTRY_PORT), and a second
# one that requires htpasswd auth (AUTH_REGISTRY_PORT; user AUTH_REGISTRY_USER, a bcrypt entry
# of a password made once and kept in AUTH_REGISTRY_PASSWORD_FILE). Engines reach registries on
# 127.0.0.1 without TLS.
source "$(dirname "$0")/lib.sh"

registry_up() { curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/" | grep -qE '^(200|401)$'; }

# ensure_registry PORT [HTPASSWD_FILE]
ensure_registry() {
  local port="$1" htpasswd="${2:-}"
  registry_up "$port" 2>/dev/null && { log "registry already running on :$port"; return 0; }
  local config="$SF_HOME/registry-$port.yml"
  mkdir -p "$SF_HOME/registry-$port"
  local auth=""
  [ -n "$htpasswd" ] && auth="auth:
  htpasswd:
    realm: sessionflow-registry-$port
    path: $htpasswd"
  cat >"$config" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $SF_HOME/registry-$port
  delete:
    enabled: true
$auth
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
YAML
  log "starting registry on 127.0.0.1:$port${htpasswd:+ (htpasswd auth)}"
  start_daemon "registry-$port" docker-registry serve "$config"
  wait_for "registry :$port" 30 registry_up "$port"
}

command -v docker-registry >/dev/null || apt_ensure docker-registry
ensure_registry "$REGISTRY_PORT"

command -v htpasswd >/dev/null || apt_ensure apache2-utils
htpasswd_file="$SF_HOME/registry-$AUTH_REGISTRY_PORT.htpasswd"
[ -s "$AUTH_REGISTRY_PASSWORD_FILE" ] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$AUTH_REGISTRY_PASSWORD_FILE"; chmod 600 "$AUTH_REGISTRY_PASSWORD_FILE"; rm -f "$htpasswd_file"; }
[ -s "$htpasswd_file" ] || htpasswd -B -b -c "$htpasswd_file" "$AUTH_REGISTRY_USER" "$(cat "$AUTH_REGISTRY_PASSWORD_FILE")" 2>/dev/null
ensure_registry "$AUTH_REGISTRY_PORT" "$htpasswd_file"
