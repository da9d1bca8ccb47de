#!/usr/bin/env bash
# Stops the api and the worker; with --all also Temporal, the registry and the Docker daemons
# this project started (the main one, and the tests' second engine sf-node-b). Data (Temporal's SQLite file, PostgreSQL, images) is kept.
source "$(dirname "$0")/lib.sh"
stop_daemon api
stop_daemon worker
if [ "${1:-}" = "--all" ]; then
  stop_daemon "temporal-$TEMPORAL_PORT"
  stop_daemon "registry-$REGISTRY_PORT"
  stop_daemon "registry-$AUTH_REGISTRY_PORT"
  stop_daemon sf-node-b
  stop_daemon dockerd
fi
log "stopped"
