#!/usr/bin/env bash
# PXE session figures (test/bench/pxe.ts); nothing here asserts on time. The PXE lab's
# software first (tgt, dhcpd, tftpd-hpa, sshd), then the platform bench runner with our bench.
source "$(dirname "$0")/lib.sh"
"$SF_ROOT/scripts/ensure-pxe-lab.sh"
"$SF_ROOT/scripts/ensure-sshd.sh"
BENCH=pxe exec "$SF_ROOT/scripts/bench.sh" "$@"
