#!/usr/bin/env bash
# npm dependencies, installed when missing or when package.json / package-lock.json changed.
# `npm install` rather than `npm ci`: npm 11 here writes locks that `npm ci` then rejects for
# other platforms' optional packages; install still follows the lock's versions.
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"
stamp="node_modules/.sessionflow-lock-hash"
deps_hash() { cat package.json package-lock.json | sha256sum | cut -d' ' -f1; }
if [ "$(cat "$stamp" 2>/dev/null)" != "$(deps_hash)" ]; then
  log "installing npm dependencies"
  npm install --no-audit --no-fund --loglevel=error >/dev/null
  deps_hash >"$stamp"
fi
