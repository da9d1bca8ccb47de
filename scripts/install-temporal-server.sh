#!/usr/bin/env bash
# The multi-service Temporal server, its schema tool and the standalone Web UI, built from their
# Go modules at pinned versions (no prebuilt binary can be downloaded here): what cluster mode
# runs instead of the dev server. The UI's binary is also called `server`, so each gets its own
# GOBIN and is copied to its own name. Skipped when already built (about 4 minutes on 2 cores).
source "$(dirname "$0")/lib.sh"

stamp="$SF_BIN/temporal-server.version"
want="$TEMPORAL_SERVER_VERSION ui $TEMPORAL_UI_SERVER_VERSION"
if [ -x "$TEMPORAL_SERVER_BIN" ] && [ -x "$TEMPORAL_SQL_TOOL_BIN" ] && [ -x "$TEMPORAL_UI_BIN" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || die "Go is needed to build the Temporal server"
export PATH="$PATH:/usr/local/go/bin"
build() {
  local module="$1" name="$2" gobin
  gobin="$(mktemp -d)"
  log "building $module (once)"
  GOBIN="$gobin" GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install "$module" || die "go install $module failed"
  install -m 0755 "$gobin/$(basename "${module%@*}")" "$name"
  rm -rf "$gobin"
}
build "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" "$TEMPORAL_SERVER_BIN"
build "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" "$TEMPORAL_SQL_TOOL_BIN"
build "github.com/temporalio/ui-server/v2/cmd/server@$TEMPORAL_UI_SERVER_VERSION" "$TEMPORAL_UI_BIN"
echo "$want" >"$stamp"
log "Temporal server $TEMPORAL_SERVER_VERSION and Web UI $TEMPORAL_UI_SERVER_VERSION built into $SF_BIN"
