#!/usr/bin/env bash
# Benchmarks print figures; nothing here asserts on time. Needs the system's infrastructure
# (it runs the same ensure steps as the tests).
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"
# npm run bench -- --cluster / --soak: cluster mode's figures, memory under mixed traffic (own bring-ups).
if [ "${1:-}" = "--cluster" ]; then shift; exec "$SF_ROOT/scripts/bench-cluster.sh" "$@"; fi
if [ "${1:-}" = "--soak" ]; then shift; exec "$SF_ROOT/scripts/bench-soak.sh" "$@"; fi
"$SF_ROOT/scripts/ensure-infra.sh" --for-tests "${PGDATABASE}_test"
export TEMPORAL_NAMESPACE="$TEMPORAL_TEST_NAMESPACE"
npm run --silent build >"$SF_RUN/build.log" 2>&1 && npx --no-install tsc -p tsconfig.bench.json >>"$SF_RUN/build.log" 2>&1 || { cat "$SF_RUN/build.log" >&2; die "build failed"; }
# BENCH picks the benchmark (test/bench/<name>.ts): platform by default, execute for bench:execute.
# Containers a benchmark makes carry an instance label of their own.
# A throwaway key for compute secrets (service tokens, session key pairs), as the tests have.
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/${PGDATABASE}_test" LOG_LEVEL=silent SESSIONFLOW_INSTANCE="${SESSIONFLOW_INSTANCE:-bench-$PGDATABASE}" \
  COMPUTE_SECRETS_KEY="${COMPUTE_SECRETS_KEY:-$(head -c 32 /dev/urandom | base64)}" \
  node "dist/test/bench/${BENCH:-platform}.js" "$@"
