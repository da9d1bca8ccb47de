# Runs inside the debootstrapped root (chroot, as root) before it is imported.
set -eu
# Kernels run as `work` (1000:1000): user code and the bootstrap script never run as root.
groupadd --gid 1000 work
useradd --uid 1000 --gid 1000 --create-home --home-dir /home/work --shell /bin/bash work
# Host keys made here would be shared by every kernel of every session: each kernel makes its
# own at start instead (activities/compute/kernelInit.ts), and runs sshd as `work`.
rm -f /etc/ssh/ssh_host_*
mkdir -p /run/sshd
