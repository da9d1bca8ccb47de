#!/usr/bin/env bash
# Stops the api and the worker; with --all also Temporal, the registry and the Docker daemons
# this project started (the main one, and the tests' second engine sf-node-b). Data (Temporal's
# SQLite file, PostgreSQL, images) is kept.
# --cluster: cluster mode's api processes, workers and proxy instead (with --all also its
# Temporal server and Web UI; the shared registry and Docker stay up for the default mode).
source "$(dirname "$0")/lib.sh"
cluster=false all=false
for arg in "$@"; do
  case "$arg" in
    --cluster) cluster=true ;;
    --all) all=true ;;
    *) die "unknown argument $arg (usage: down.sh [--cluster] [--all])" ;;
  esac
done
if $cluster; then
  for pidfile in "$SF_RUN"/nginx-*.pid "$SF_RUN"/cluster-api-*.pid "$SF_RUN"/cluster-worker-*.pid; do
    [ -e "$pidfile" ] && stop_daemon "$(basename "$pidfile" .pid)"
  done
  if $all; then
    stop_daemon "temporal-ui-$CLUSTER_TEMPORAL_UI_PORT"
    stop_daemon "temporal-server-$CLUSTER_TEMPORAL_PORT"
  fi
  log "cluster mode stopped"
  exit 0
fi
stop_daemon api
stop_daemon worker
if $all; then
  stop_daemon "temporal-$TEMPORAL_PORT"
  stop_daemon "registry-$REGISTRY_PORT"
  stop_daemon "registry-$AUTH_REGISTRY_PORT"
  stop_daemon sf-node-b
  stop_daemon dockerd
fi
log "stopped"
