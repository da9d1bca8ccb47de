#!/usr/bin/env bash
# Re-records test/replay/histories from real runs (see scripts/record-histories.ts).
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"
"$SF_ROOT/scripts/ensure-infra.sh" --for-tests "${PGDATABASE}_test"
export TEMPORAL_NAMESPACE="$TEMPORAL_TEST_NAMESPACE"
npm run --silent build >"$SF_RUN/build.log" 2>&1 || { cat "$SF_RUN/build.log" >&2; die "build failed"; }
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${PGDATABASE}_test" LOG_LEVEL=warn node dist/scripts/record-histories.js
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${PGDATABASE}_test" LOG_LEVEL=warn SESSIONFLOW_INSTANCE="${SESSIONFLOW_INSTANCE:-test-${PGDATABASE}_test}" node dist/scripts/record-sandbox-histories.js
npx --no-install tsc -p tsconfig.bench.json >>"$SF_RUN/build.log" 2>&1 || { cat "$SF_RUN/build.log" >&2; die "build failed"; }
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${PGDATABASE}_test" LOG_LEVEL=warn node dist/scripts/record-pxe-histories.js
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${PGDATABASE}_test" LOG_LEVEL=warn node dist/scripts/record-execution-histories.js
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${PGDATABASE}_test" LOG_LEVEL=warn node dist/scripts/record-terminal-histories.js
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${PGDATABASE}_test" LOG_LEVEL=warn node dist/scripts/record-retention-histories.js
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${PGDATABASE}_test" LOG_LEVEL=warn SESSIONFLOW_INSTANCE="${SESSIONFLOW_INSTANCE:-test-${PGDATABASE}_test}" COMPUTE_SECRETS_KEY="${COMPUTE_SECRETS_KEY:-$(head -c 32 /dev/urandom | base64)}" node dist/scripts/record-compute-histories.js
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${PGDATABASE}_test" LOG_LEVEL=warn SESSIONFLOW_INSTANCE="${SESSIONFLOW_INSTANCE:-test-${PGDATABASE}_test}" COMPUTE_SECRETS_KEY="${COMPUTE_SECRETS_KEY:-$(head -c 32 /dev/urandom | base64)}" node dist/scripts/record-commit-histories.js
