#!/usr/bin/env bash
# The PXE lab's real software from Debian: tgt (userspace iSCSI target; this kernel has no
# LIO), ISC dhcpd, tftpd-hpa and a TFTP client, qemu with Debian's iPXE ROM, qemu-img, nasm (the
# e2e test's boot sector). The packages' own services must not keep running: tests start their
# own daemons inside network namespaces they create, and no dhcpd may answer on a real interface.
source "$(dirname "$0")/lib.sh"
apt_ensure tgt isc-dhcp-server tftpd-hpa tftp-hpa qemu-system-x86 ipxe-qemu qemu-utils nasm iproute2 bridge-utils
# A package's postinst may have started its daemon with the default configuration; stop only
# those (identified by the pid files Debian's init scripts write), never a test's own daemons.
for pidfile in /run/dhcp-server/dhcpd.pid /run/tftpd-hpa.pid /run/tgtd.pid; do
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
done
