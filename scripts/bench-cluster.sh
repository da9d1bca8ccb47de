#!/usr/bin/env bash
# The cluster-mode benchmark (npm run bench:cluster): brings cluster mode up (two workers, two
# api processes behind nginx, the Temporal server on PostgreSQL) and the default mode beside it
# for the dev server's figure, then measures both from outside (test/bench/cluster.ts).
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"
"$SF_ROOT/scripts/up.sh" >/dev/null
"$SF_ROOT/scripts/up.sh" --cluster --workers 2 --apis 2 >/dev/null
npx --no-install tsc -p tsconfig.bench.json >>"$SF_RUN/build.log" 2>&1 || { cat "$SF_RUN/build.log" >&2; die "build failed"; }
source "$SF_RUN/cluster.env"
DEV_URL="http://127.0.0.1:${PORT:-8080}" DEV_ADMIN_KEY_FILE="$SF_HOME/admin.key" \
  node dist/test/bench/cluster.js "$@"
