#!/usr/bin/env bash
# The machine's PostgreSQL: create the database when missing, then apply migrations.
# Usage: ensure-database.sh [database-name]   (default: $PGDATABASE, sessionflow)
source "$(dirname "$0")/lib.sh"
db="${1:-$PGDATABASE}"

pg_up() { psql -d postgres -Atqc 'SELECT 1'; }
if ! pg_up >/dev/null 2>&1; then
  command -v pg_ctlcluster >/dev/null || apt_ensure postgresql
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  wait_for "PostgreSQL" 30 pg_up
fi

if [ "$(psql -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
  log "creating database $db"
  createdb "$db"
fi

DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$db" \
  node "$SF_ROOT/node_modules/node-pg-migrate/bin/node-pg-migrate.js" up \
    --migrations-dir "$SF_ROOT/db/migrations" --migrations-table pgmigrations --verbose false >"$SF_RUN/migrate-$db.log" 2>&1 \
  || { cat "$SF_RUN/migrate-$db.log" >&2; die "migrations failed on $db"; }
log "database $db migrated"
