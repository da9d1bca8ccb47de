#!/usr/bin/env bash
# Everything the system runs on, installed and started when missing: npm dependencies, Docker
# and the session images, the Temporal dev server, the registry, and the database with its
# migrations. With --for-tests also what only tests and benchmarks use: their own Temporal
# namespace, the sshd binaries, the PXE lab's packages, Chromium and a second Docker engine
# (a second compute node).
# Usage: ensure-infra.sh [--for-tests] DATABASE
source "$(dirname "$0")/lib.sh"
for_tests=false
if [ "${1:-}" = "--for-tests" ]; then for_tests=true; shift; fi
database="${1:?usage: ensure-infra.sh [--for-tests] DATABASE}"

"$SF_ROOT/scripts/ensure-node-modules.sh"
"$SF_ROOT/scripts/ensure-docker.sh"
"$SF_ROOT/scripts/build-images.sh"
if $for_tests; then "$SF_ROOT/scripts/start-temporal.sh" "$TEMPORAL_TEST_NAMESPACE"; else "$SF_ROOT/scripts/start-temporal.sh"; fi
"$SF_ROOT/scripts/ensure-registry.sh"
"$SF_ROOT/scripts/push-images.sh"
if $for_tests; then
  "$SF_ROOT/scripts/ensure-sshd.sh"
  "$SF_ROOT/scripts/ensure-pxe-lab.sh"
  "$SF_ROOT/scripts/ensure-chromium.sh"
  "$SF_ROOT/scripts/ensure-node-engine.sh" sf-node-b
fi
"$SF_ROOT/scripts/ensure-database.sh" "$database"
