#!/usr/bin/env bash
# Smoke test of the bring-up command: run scripts/up.sh, then prove the system works through
# HTTP exactly as a user would — /readyz, a self-check that passes, the workflow listed in
# Temporal by its search attribute, a Python execution served by the Docker executor, and a
# compute session on the worker's own node. Leaves the system running (scripts/down.sh stops it).
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"
scripts/up.sh >/dev/null
api="http://127.0.0.1:${PORT:-8080}"
key="$(cat "$SF_HOME/admin.key")"

curl -fsS "$api/readyz" >/dev/null || die "smoke: /readyz is not 200: $(curl -s "$api/readyz")"
curl -fsS -o /dev/null "http://127.0.0.1:$TEMPORAL_UI_PORT/" || die "smoke: the Temporal Web UI does not answer on :$TEMPORAL_UI_PORT"

id="$(curl -fsS -XPOST -H "Authorization: Bearer $key" "$api/api/v1/admin/self-check" | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')"
status=RUNNING
for _ in $(seq 1 150); do
  report="$(curl -fsS -H "Authorization: Bearer $key" "$api/api/v1/admin/self-check/$id")"
  status="$(node -pe 'JSON.parse(process.argv[1]).status' "$report")"
  [ "$status" = RUNNING ] || break
  sleep 0.2
done
[ "$status" = PASSED ] || die "smoke: self-check ended $status: $report"

listed=""
for _ in $(seq 1 50); do
  listed="$("$TEMPORAL_BIN" workflow list --address "127.0.0.1:$TEMPORAL_PORT" --query "SessionKind='self-check' AND WorkflowId='self-check/$id'" --output json)"
  grep -q "self-check/$id" <<<"$listed" && break
  sleep 0.2
done
grep -q "self-check/$id" <<<"$listed" || die "smoke: temporal workflow list does not show self-check/$id"
headers="$(mktemp)"
executed="$(curl -sS -D "$headers" -XPOST -H "Authorization: Bearer $key" -H 'content-type: application/json' \
  -d '{"language":"python","version":"3","files":[{"content":"print(6 * 7)"}]}' "$api/api/v2/execute")" || die "smoke: /api/v2/execute did not answer"
if ! head -1 "$headers" | grep -q ' 200'; then
  # What CI shows is all anyone gets to see of a failed run: the answer and the logs behind it.
  echo "$(head -1 "$headers") $executed" >&2
  tail -n 40 "$SF_RUN/api.log" "$SF_RUN/worker.log" >&2 || true
  die "smoke: /api/v2/execute failed"
fi
[ "$(node -pe 'JSON.parse(process.argv[1]).run.stdout' "$executed")" = 42 ] || die "smoke: execution answered $executed"
grep -qi '^x-sessionflow-executor: docker' "$headers" || die "smoke: the execution was not served by the docker executor: $(cat "$headers")"
rm -f "$headers"

# A compute session on the worker's own node, as the README's tour starts one, then destroyed.
session="$(curl -sS -XPOST -H "Authorization: Bearer $key" -H 'content-type: application/json' \
  -d '{"image":"python:3.11","resources":{"cpu":"0.5","memory":"256M"}}' "$api/api/v1/sessions")" || die "smoke: POST /api/v1/sessions did not answer"
[ "$(node -pe 'JSON.parse(process.argv[1]).status' "$session")" = RUNNING ] || {
  tail -n 40 "$SF_RUN/api.log" "$SF_RUN/worker.log" >&2 || true
  die "smoke: the compute session is not RUNNING: $session"
}
session_id="$(node -pe 'JSON.parse(process.argv[1]).id' "$session")"
curl -fsS -o /dev/null -XDELETE -H "Authorization: Bearer $key" "$api/api/v1/sessions/$session_id" || die "smoke: the compute session $session_id could not be destroyed"
log "smoke: up, ready, self-check $id PASSED and listed by SessionKind, print(6 * 7) executed in a container, compute session $session_id RUNNING and destroyed"
