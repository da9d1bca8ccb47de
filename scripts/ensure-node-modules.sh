#!/usr/bin/env bash
# npm dependencies, installed when missing or when package-lock.json changed since.
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"
stamp="node_modules/.sessionflow-lock-hash"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" >"$stamp"
fi
