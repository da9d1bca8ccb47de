# Namespaces and search attributes on a running Temporal server, the dev server's or the
# cluster's. Sourced after lib.sh, with `address` (host:port) set.

# Keep in step with domain/shared/searchAttributes.ts (a unit test compares them).
SEARCH_ATTRIBUTES=(SessionKind SessionStatus SessionDetail OwnerId SessionName ChatId MachineMac Runtime)

temporal_up() { "$TEMPORAL_BIN" operator cluster health --address "$address" --command-timeout 2s; }

namespace_exists() { "$TEMPORAL_BIN" operator namespace describe -n "$1" --address "$address" >/dev/null 2>&1; }

# Closed test workflows need not outlive a day. A create that loses a race with another
# bring-up fails, yet leaves the namespace there: that is success too.
ensure_namespace() {
  local namespace="$1" retention="${2:-24h}"
  namespace_exists "$namespace" && return 0
  log "creating Temporal namespace $namespace"
  "$TEMPORAL_BIN" operator namespace create -n "$namespace" --retention "$retention" --address "$address" >/dev/null 2>&1 \
    || namespace_exists "$namespace" || die "could not create the Temporal namespace $namespace"
}

search_attributes() { "$TEMPORAL_BIN" operator search-attribute list --namespace "$1" --address "$address" --output json; }

missing_search_attributes() {
  local known
  known="$(search_attributes "$1")" || return 1
  for attribute in "${SEARCH_ATTRIBUTES[@]}"; do grep -q "\"$attribute\"" <<<"$known" || echo "$attribute"; done
}

all_search_attributes() { local missing; missing="$(missing_search_attributes "$1")" && [ -z "$missing" ]; }

# The dev server registers --search-attribute only when it creates its database: a database
# from before an attribute was added, or a namespace created since, gets them here. One
# attribute per call: server 1.29.1 adds only the first name of a call to a new namespace. A
# create that races another bring-up's fails; the list afterwards is the judge.
ensure_search_attributes() {
  local namespace="$1" missing
  # A namespace just created is unknown to the frontend for a few seconds.
  wait_for "Temporal namespace $namespace" 30 search_attributes "$namespace"
  missing="$(missing_search_attributes "$namespace")"
  [ -z "$missing" ] && return 0
  log "registering search attributes in $namespace: ${missing//$'\n'/ }"
  for attribute in $missing; do
    "$TEMPORAL_BIN" operator search-attribute create --namespace "$namespace" --address "$address" --type Keyword --name "$attribute" >/dev/null 2>&1 || true
  done
  wait_for "search attributes in $namespace" 30 all_search_attributes "$namespace"
}

# ensure_namespaces NAMESPACE... — each exists and has every search attribute.
ensure_namespaces() {
  for namespace in "$@"; do
    ensure_namespace "$namespace"
    ensure_search_attributes "$namespace"
  done
}
