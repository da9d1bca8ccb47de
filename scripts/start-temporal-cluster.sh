#!/usr/bin/env bash
# Cluster mode's Temporal: the multi-service server (frontend, history, matching, worker in one
# process) on this machine's PostgreSQL, with the schema created and upgraded by
# temporal-sql-tool, the default namespace and our search attributes registered, and the
# standalone Web UI on 127.0.0.1. Idempotent: what is up stays up, what is missing is made.
# Configuration: deploy/temporal/ (the compose stack reads the same files).
source "$(dirname "$0")/lib.sh"
"$SF_ROOT/scripts/install-temporal.sh"   # its CLI registers namespaces and checks health
"$SF_ROOT/scripts/install-temporal-server.sh"
address="127.0.0.1:$CLUSTER_TEMPORAL_PORT"
source "$SF_ROOT/scripts/temporal-namespaces.sh"

temporal_db="${CLUSTER_DATABASE}_temporal"
visibility_db="${CLUSTER_DATABASE}_temporal_visibility"
export TEMPORAL_DB="$temporal_db" TEMPORAL_VISIBILITY_DB="$visibility_db"
export TEMPORAL_DB_HOST="$PGHOST" TEMPORAL_DB_PORT="$PGPORT" TEMPORAL_DB_USER="$PGUSER" TEMPORAL_DB_PASSWORD="${PGPASSWORD:-}"
export TEMPORAL_PORT="$CLUSTER_TEMPORAL_PORT" TEMPORAL_MEMBERSHIP_PORT="${CLUSTER_TEMPORAL_MEMBERSHIP_PORT:-6333}"
export TEMPORAL_METRICS_PORT="${CLUSTER_TEMPORAL_METRICS_PORT:-8033}"
export TEMPORAL_DYNAMIC_CONFIG="$SF_ROOT/deploy/temporal/dynamicconfig.yaml"

sql_log="$SF_RUN/temporal-sql-tool.log"
sql_tool() {
  "$TEMPORAL_SQL_TOOL_BIN" --plugin postgres12 --endpoint "$PGHOST" --port "$PGPORT" --user "$PGUSER" --password "${PGPASSWORD:-}" "$@" >>"$sql_log" 2>&1 \
    || die "temporal-sql-tool $* failed, see $sql_log"
}

# Schema: made when missing, upgraded to the server's version otherwise (both are no-ops when current).
schema_dir="$(cd "$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")" && pwd)/go.temporal.io/server@$TEMPORAL_SERVER_VERSION/schema/postgresql/v12"
[ -d "$schema_dir" ] || PATH="$PATH:/usr/local/go/bin" go mod download "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" >/dev/null 2>&1
[ -d "$schema_dir" ] || die "Temporal's schema files are missing: $schema_dir"
for pair in "$temporal_db:temporal" "$visibility_db:visibility"; do
  db="${pair%%:*}" schema="${pair##*:}"
  if [ "$(psql -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    log "creating Temporal's database $db"
    sql_tool --database "$db" create-database
  fi
  if [ "$(psql -d "$db" -Atqc "SELECT to_regclass('schema_version') IS NOT NULL")" != t ]; then
    sql_tool --database "$db" setup-schema -v 0.0
  fi
  sql_tool --database "$db" update-schema -d "$schema_dir/$schema/versioned"
done

server="temporal-server-$CLUSTER_TEMPORAL_PORT"
if temporal_up >/dev/null 2>&1; then
  log "Temporal server already running on :$CLUSTER_TEMPORAL_PORT"
else
  log "starting the Temporal server on :$CLUSTER_TEMPORAL_PORT (PostgreSQL $temporal_db)"
  start_daemon "$server" "$TEMPORAL_SERVER_BIN" --root "$SF_ROOT" --config deploy/temporal --env sessionflow --allow-no-auth start
  wait_for "the Temporal server (see $SF_RUN/$server.log)" 120 temporal_up
fi
ensure_namespaces default

ui="temporal-ui-$CLUSTER_TEMPORAL_UI_PORT"
ui_up() { curl -fs -o /dev/null "http://127.0.0.1:$CLUSTER_TEMPORAL_UI_PORT/"; }
if ! ui_up; then
  log "starting the Temporal Web UI on 127.0.0.1:$CLUSTER_TEMPORAL_UI_PORT"
  export TEMPORAL_UI_PORT="$CLUSTER_TEMPORAL_UI_PORT" TEMPORAL_GRPC_ADDRESS="$address"
  start_daemon "$ui" "$TEMPORAL_UI_BIN" --root "$SF_ROOT" --config deploy/temporal-ui --env sessionflow start
  wait_for "the Temporal Web UI (see $SF_RUN/$ui.log)" 60 ui_up
fi
log "Temporal cluster ready: grpc $address, Web UI http://127.0.0.1:$CLUSTER_TEMPORAL_UI_PORT"
