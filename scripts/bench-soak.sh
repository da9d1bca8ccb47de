#!/usr/bin/env bash
# The soak benchmark (npm run bench -- --soak): brings the default mode up (scripts/up.sh) and
# runs SOAK_MINUTES (10) of mixed traffic over every kind against its api and worker, printing
# their resident memory over time (test/bench/soak.ts). Its users, SSH host and PXE lab are
# made in the default mode's database for the run (the lab's rows are removed after).
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"
"$SF_ROOT/scripts/ensure-sshd.sh"
"$SF_ROOT/scripts/ensure-pxe-lab.sh"
"$SF_ROOT/scripts/up.sh" >/dev/null
npx --no-install tsc -p tsconfig.bench.json >>"$SF_RUN/build.log" 2>&1 || { cat "$SF_RUN/build.log" >&2; die "build failed"; }
SF_RUN="$SF_RUN" DEV_URL="http://127.0.0.1:${PORT:-8080}" DEV_ADMIN_KEY_FILE="$SF_HOME/admin.key" \
  DATABASE_URL="${DATABASE_URL:-postgres://$PGUSER@$PGHOST:$PGPORT/$PGDATABASE}" \
  node dist/test/bench/soak.js "$@"
