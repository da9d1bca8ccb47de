#!/usr/bin/env bash
# Brings the whole system up on this machine, installing whatever is missing:
# Docker engine + base image, Temporal dev server + Web UI, registry, PostgreSQL schema,
# then (re)starts the worker and the api and prints the URLs and an admin key.
#
# --cluster [--workers N] [--apis M]: the production topology instead (docs/production.md): the
# Temporal server on PostgreSQL with its standalone Web UI, N workers (default 2), M api
# processes (default 2) and nginx in front of them on one port. Its own database
# ($CLUSTER_DATABASE) and instance name, so it can run beside the default mode.
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"

cluster=false workers=2 apis=2
while (( $# > 0 )); do
  case "$1" in
    --cluster) cluster=true ;;
    --workers) workers="${2:?--workers needs a number}"; shift ;;
    --apis) apis="${2:?--apis needs a number}"; shift ;;
    *) die "unknown argument $1 (usage: up.sh [--cluster [--workers N] [--apis M]])" ;;
  esac
  shift
done
[[ "$workers" =~ ^[1-9][0-9]?$ && "$apis" =~ ^[1-9][0-9]?$ ]] || die "--workers and --apis take a number from 1 to 99"

if $cluster; then
  database="$CLUSTER_DATABASE"
  "$SF_ROOT/scripts/ensure-infra.sh" --cluster "$database"
  temporal_port="$CLUSTER_TEMPORAL_PORT" ui_port="$CLUSTER_TEMPORAL_UI_PORT"
  export SESSIONFLOW_INSTANCE="${SESSIONFLOW_INSTANCE:-cluster}"
else
  database="$PGDATABASE"
  "$SF_ROOT/scripts/ensure-infra.sh" "$database"
  temporal_port="$TEMPORAL_PORT" ui_port="$TEMPORAL_UI_PORT"
fi

ensure_jemalloc
log "building"
npm run --silent build >"$SF_RUN/build.log" 2>&1 || { cat "$SF_RUN/build.log" >&2; die "build failed"; }

export DATABASE_URL="${DATABASE_URL:-postgres://$PGUSER@$PGHOST:$PGPORT/$database}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:$temporal_port}"
export TEMPORAL_UI_URL="${TEMPORAL_UI_URL:-http://127.0.0.1:$ui_port}"
export REGISTRY_ADDRESS="${REGISTRY_ADDRESS:-127.0.0.1:$REGISTRY_PORT}"
export BASE_IMAGE HOST="${HOST:-127.0.0.1}"
# Terminal host credentials are sealed with this key: one per machine, kept 0600 in SF_HOME.
[ -n "${TERMINAL_CREDENTIALS_KEY:-}" ] || [ -s "$SF_HOME/terminal-credentials.key" ] || (umask 077; head -c 32 /dev/urandom | base64 >"$SF_HOME/terminal-credentials.key")
export TERMINAL_CREDENTIALS_KEY="${TERMINAL_CREDENTIALS_KEY:-$(cat "$SF_HOME/terminal-credentials.key")}"
# Compute sessions' secret_env and cluster SSH keys are sealed with this one, kept the same way.
[ -n "${COMPUTE_SECRETS_KEY:-}" ] || [ -s "$SF_HOME/compute-secrets.key" ] || (umask 077; head -c 32 /dev/urandom | base64 >"$SF_HOME/compute-secrets.key")
export COMPUTE_SECRETS_KEY="${COMPUTE_SECRETS_KEY:-$(cat "$SF_HOME/compute-secrets.key")}"

ready() { curl -fsS -o /dev/null "$1/readyz"; }

if $cluster; then
  # Processes of an earlier bring-up with more of them than asked for now are stopped too.
  for pidfile in "$SF_RUN"/cluster-worker-*.pid "$SF_RUN"/cluster-api-*.pid; do
    [ -e "$pidfile" ] && stop_daemon "$(basename "$pidfile" .pid)"
  done
  api_ports=()
  for i in $(seq 1 "$workers"); do
    # One engine, one compute node: the first worker is it, the others run workflows and activities.
    COMPUTE_NODE_ENABLED="$([ "$i" = 1 ] && echo true || echo false)" LD_PRELOAD="$JEMALLOC" start_daemon "cluster-worker-$i" node dist/workers/main.js
  done
  for i in $(seq 1 "$apis"); do
    api_port=$((CLUSTER_PROXY_PORT + i))
    api_ports+=("$api_port")
    PORT="$api_port" LD_PRELOAD="$JEMALLOC" start_daemon "cluster-api-$i" node dist/api/main.js
  done
  for api_port in "${api_ports[@]}"; do wait_for "api on :$api_port (see $SF_RUN/cluster-api-*.log)" 60 ready "http://$HOST:$api_port"; done
  for i in $(seq 1 "$workers"); do daemon_running "cluster-worker-$i" || die "worker $i exited, see $SF_RUN/cluster-worker-$i.log"; done
  "$SF_ROOT/scripts/start-proxy.sh" "$CLUSTER_PROXY_PORT" "${api_ports[@]}"
  api_url="http://127.0.0.1:$CLUSTER_PROXY_PORT"
  key_file="$SF_HOME/admin-cluster.key"
  processes="$workers workers, $apis api processes on :${api_ports[0]}…:${api_ports[-1]} behind nginx"
  logs="$SF_RUN/{cluster-api-*,cluster-worker-*,temporal-server-$temporal_port,temporal-ui-$ui_port}.log"
  stop="scripts/down.sh --cluster   (--all also stops the Temporal server and its Web UI)"
else
  export PORT="${PORT:-8080}"
  stop_daemon worker
  stop_daemon api
  LD_PRELOAD="$JEMALLOC" start_daemon worker node dist/workers/main.js
  LD_PRELOAD="$JEMALLOC" start_daemon api node dist/api/main.js
  api_url="http://$HOST:$PORT"
  wait_for "api /readyz" 60 ready "$api_url" || true
  daemon_running worker || die "worker exited, see $SF_RUN/worker.log"
  key_file="$SF_HOME/admin.key"
  processes="one worker, one api"
  logs="$SF_RUN/{api,worker,temporal-$temporal_port,registry-$REGISTRY_PORT,dockerd}.log"
  stop="scripts/down.sh   (--all also stops Temporal, the registry and dockerd)"
fi

# One admin key for local use, kept in SF_HOME (0600) and re-created if the database lost it
# (or it was revoked or expired).
key_valid() {
  [ -s "$key_file" ] || return 1
  local hash; hash="$(tr -d '\n' <"$key_file" | sha256sum | cut -d' ' -f1)"
  [ "$(psql -d "$database" -Atqc "SELECT 1 FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = '$hash' AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND u.disabled_at IS NULL AND u.role = 'admin'")" = 1 ]
}
if ! key_valid; then
  (umask 077; node dist/scripts/create-api-key.js --name admin --role admin --label local-admin >"$key_file")
fi

if $cluster; then
  # What tests and benchmarks of cluster mode need to find it (scripts/test-cluster.sh, bench-cluster.sh).
  api_urls="$(printf 'http://127.0.0.1:%s,' "${api_ports[@]}")"
  cat >"$SF_RUN/cluster.env" <<ENV
export CLUSTER_URL=$api_url CLUSTER_API_URLS=${api_urls%,} CLUSTER_ADMIN_KEY_FILE=$key_file
export CLUSTER_TEMPORAL_ADDRESS=127.0.0.1:$temporal_port CLUSTER_DATABASE_URL=$DATABASE_URL SF_RUN=$SF_RUN
ENV
fi

cat <<INFO

  sessionflow is up ($processes)
  api          $api_url        (OpenAPI: $api_url/openapi.json, metrics: $api_url/metrics)
  Temporal UI  http://127.0.0.1:$ui_port   (gRPC 127.0.0.1:$temporal_port)
  registry     http://127.0.0.1:$REGISTRY_PORT
  logs         $logs
  admin key    $(cat "$key_file")   (also in $key_file)

  try:  curl -s -XPOST -H "Authorization: Bearer \$(cat $key_file)" $api_url/api/v1/admin/self-check
  stop: $stop

INFO
