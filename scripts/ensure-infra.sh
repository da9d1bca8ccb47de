#!/usr/bin/env bash
# Everything the system runs on, installed and started when missing: npm dependencies, Docker
# and the session images, the Temporal dev server, the registry, and the database with its
# migrations. With --for-tests also what only tests and benchmarks use: their own Temporal
# namespace, the sshd binaries, the PXE lab's packages, Chromium and a second Docker engine
# (a second compute node). With --cluster the Temporal server on PostgreSQL and its Web UI
# instead of the dev server (scripts/up.sh --cluster).
# Usage: ensure-infra.sh [--for-tests] [--cluster] DATABASE
source "$(dirname "$0")/lib.sh"
for_tests=false cluster=false
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --for-tests) for_tests=true ;;
    --cluster) cluster=true ;;
    *) die "unknown option $1" ;;
  esac
  shift
done
database="${1:?usage: ensure-infra.sh [--for-tests] DATABASE}"

"$SF_ROOT/scripts/ensure-node-modules.sh"
"$SF_ROOT/scripts/ensure-docker.sh"
"$SF_ROOT/scripts/build-images.sh"
if $cluster; then "$SF_ROOT/scripts/start-temporal-cluster.sh"
elif $for_tests; then "$SF_ROOT/scripts/start-temporal.sh" "$TEMPORAL_TEST_NAMESPACE"
else "$SF_ROOT/scripts/start-temporal.sh"; fi
"$SF_ROOT/scripts/ensure-registry.sh"
"$SF_ROOT/scripts/push-images.sh"
if $for_tests; then
  "$SF_ROOT/scripts/ensure-sshd.sh"
  "$SF_ROOT/scripts/ensure-pxe-lab.sh"
  "$SF_ROOT/scripts/ensure-chromium.sh"
  "$SF_ROOT/scripts/ensure-node-engine.sh" sf-node-b
fi
"$SF_ROOT/scripts/ensure-database.sh" "$database"
