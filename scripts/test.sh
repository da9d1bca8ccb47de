#!/usr/bin/env bash
# The full suite on real infrastructure, installing whatever is missing first:
# lint (determinism rules) and type check, then jest's unit, workflows, replay,
# integration and e2e projects against Temporal, PostgreSQL, Docker and the registry.
# Extra arguments go to jest (e.g. scripts/test.sh --selectProjects unit).
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"

test_db="${PGDATABASE}_test"
"$SF_ROOT/scripts/ensure-infra.sh" --for-tests "$test_db"

log "lint and type check"
npx --no-install eslint --max-warnings 0 .
npx --no-install tsc -p tsconfig.json

export DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$test_db"
export TEMPORAL_ADDRESS="127.0.0.1:$TEMPORAL_PORT"
# The tests' own namespace (made by ensure-infra.sh): the default one stays the user's.
export TEMPORAL_NAMESPACE="$TEMPORAL_TEST_NAMESPACE"
export REGISTRY_ADDRESS="127.0.0.1:$REGISTRY_PORT"
export TEMPORAL_BIN BASE_IMAGE LOG_LEVEL="${LOG_LEVEL:-silent}"
# The second compute node's engine (ensure-node-engine.sh), and a throwaway key for compute secrets.
export NODE_B_DOCKER_SOCKET="${NODE_B_DOCKER_SOCKET:-/run/sf-node-b.sock}"
# The registry that requires credentials (ensure-registry.sh), for converting with and without them.
export AUTH_REGISTRY_ADDRESS="127.0.0.1:$AUTH_REGISTRY_PORT" AUTH_REGISTRY_USER
AUTH_REGISTRY_PASSWORD="$(cat "$AUTH_REGISTRY_PASSWORD_FILE")"
export AUTH_REGISTRY_PASSWORD
export COMPUTE_SECRETS_KEY="${COMPUTE_SECRETS_KEY:-$(head -c 32 /dev/urandom | base64)}"
# Containers made by this run are labelled with it; reconcilers under test touch only these.
export SESSIONFLOW_INSTANCE="${SESSIONFLOW_INSTANCE:-test-$test_db}"
log "jest"
npx --no-install jest "$@"
