#!/usr/bin/env bash
# The Temporal CLI (dev server + Web UI) built from its Go module at a pinned version: no
# prebuilt binary can be downloaded here. v1.6+ carry a `replace` directive that `go install`
# refuses; v1.5.1 (server 1.29.1, UI 2.42.1) does not. Skipped when already built.
source "$(dirname "$0")/lib.sh"

stamp="$SF_BIN/temporal.version"
if [ -x "$TEMPORAL_BIN" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$TEMPORAL_VERSION" ]; then
  exit 0
fi
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || die "Go is needed to build the Temporal CLI"
export PATH="$PATH:/usr/local/go/bin"
log "building the Temporal CLI $TEMPORAL_VERSION from source (several minutes, once)"
GOBIN="$SF_BIN" GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_VERSION" \
  || die "go install github.com/temporalio/cli/cmd/temporal@$TEMPORAL_VERSION failed"
echo "$TEMPORAL_VERSION" >"$stamp"
log "$("$TEMPORAL_BIN" --version)"
