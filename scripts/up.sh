#!/usr/bin/env bash
# Brings the whole system up on this machine, installing whatever is missing:
# Docker engine + base image, Temporal dev server + Web UI, registry, PostgreSQL schema,
# then (re)starts the worker and the api and prints the URLs and an admin key.
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"

"$SF_ROOT/scripts/ensure-infra.sh" "$PGDATABASE"

log "building"
npm run --silent build >"$SF_RUN/build.log" 2>&1 || { cat "$SF_RUN/build.log" >&2; die "build failed"; }

export DATABASE_URL="${DATABASE_URL:-postgres://$PGUSER@$PGHOST:$PGPORT/$PGDATABASE}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"
export TEMPORAL_UI_URL="${TEMPORAL_UI_URL:-http://127.0.0.1:$TEMPORAL_UI_PORT}"
export REGISTRY_ADDRESS="${REGISTRY_ADDRESS:-127.0.0.1:$REGISTRY_PORT}"
export BASE_IMAGE PORT="${PORT:-8080}" HOST="${HOST:-127.0.0.1}"
# Terminal host credentials are sealed with this key: one per machine, kept 0600 in SF_HOME.
[ -n "${TERMINAL_CREDENTIALS_KEY:-}" ] || [ -s "$SF_HOME/terminal-credentials.key" ] || (umask 077; head -c 32 /dev/urandom | base64 >"$SF_HOME/terminal-credentials.key")
export TERMINAL_CREDENTIALS_KEY="${TERMINAL_CREDENTIALS_KEY:-$(cat "$SF_HOME/terminal-credentials.key")}"
# Compute sessions' secret_env is sealed with this one.
[ -n "${COMPUTE_SECRETS_KEY:-}" ] || [ -s "$SF_HOME/compute-secrets.key" ] || (umask 077; head -c 32 /dev/urandom | base64 >"$SF_HOME/compute-secrets.key")
export COMPUTE_SECRETS_KEY="${COMPUTE_SECRETS_KEY:-$(cat "$SF_HOME/compute-secrets.key")}"

stop_daemon worker
stop_daemon api
start_daemon worker node dist/workers/main.js
start_daemon api node dist/api/main.js
api_url="http://$HOST:$PORT"
ready() { curl -fsS -o /dev/null "$api_url/readyz"; }
wait_for "api /readyz" 60 ready || true
daemon_running worker || die "worker exited, see $SF_RUN/worker.log"

# One admin key for local use, kept in SF_HOME (0600) and re-created if the database lost it
# (or it was revoked or expired).
key_file="$SF_HOME/admin.key"
key_valid() {
  [ -s "$key_file" ] || return 1
  local hash; hash="$(tr -d '\n' <"$key_file" | sha256sum | cut -d' ' -f1)"
  [ "$(psql -d "$PGDATABASE" -Atqc "SELECT 1 FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = '$hash' AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND u.disabled_at IS NULL AND u.role = 'admin'")" = 1 ]
}
if ! key_valid; then
  (umask 077; node dist/scripts/create-api-key.js --name admin --role admin --label local-admin >"$key_file")
fi

cat <<INFO

  sessionflow is up
  api          $api_url        (OpenAPI: $api_url/openapi.json, metrics: $api_url/metrics)
  Temporal UI  http://127.0.0.1:$TEMPORAL_UI_PORT   (gRPC 127.0.0.1:$TEMPORAL_PORT)
  registry     http://127.0.0.1:$REGISTRY_PORT
  logs         $SF_RUN/{api,worker,temporal-$TEMPORAL_PORT,registry-$REGISTRY_PORT,dockerd}.log
  admin key    $(cat "$key_file")   (also in $key_file)

  try:  curl -s -XPOST -H "Authorization: Bearer \$(cat $key_file)" $api_url/api/v1/admin/self-check
  stop: scripts/down.sh   (--all also stops Temporal, the registry and dockerd)

INFO
