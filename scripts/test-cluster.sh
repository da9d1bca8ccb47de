#!/usr/bin/env bash
# The scenarios of every kind against cluster mode (part of .ci/run): brings it up with two
# workers and two api processes behind nginx (scripts/up.sh --cluster, which builds the
# Temporal server and Web UI the first time), runs test/cluster/ against it from outside, and
# stops its workers, api processes and proxy afterwards (the Temporal server stays up).
# Extra arguments go to jest.
source "$(dirname "$0")/lib.sh"
cd "$SF_ROOT"
"$SF_ROOT/scripts/ensure-sshd.sh"      # the terminal scenario's SSH host
"$SF_ROOT/scripts/ensure-pxe-lab.sh"   # the PXE scenario's boot server (tgtd, in.tftpd)
"$SF_ROOT/scripts/up.sh" --cluster --workers 2 --apis 2 >/dev/null
source "$SF_RUN/cluster.env"
status=0
LOG_LEVEL=silent npx --no-install jest -c jest.cluster.config.js "$@" || status=$?
if (( status != 0 )); then
  # What CI shows is all anyone gets to see of a failed run: the processes' last words.
  tail -n 30 "$SF_RUN"/cluster-api-*.log "$SF_RUN"/cluster-worker-*.log >&2 || true
fi
"$SF_ROOT/scripts/down.sh" --cluster
exit "$status"
