#!/usr/bin/env bash
# OpenSSH server and client binaries for the tests' own sshd instances (each test starts one on
# a loopback port with its own keys; nothing listens on :22). The package's service is not
# started: there is no init system here, and the tests run their own.
source "$(dirname "$0")/lib.sh"
command -v /usr/sbin/sshd >/dev/null && command -v ssh-keygen >/dev/null || apt_ensure openssh-server openssh-client
# sshd refuses to start without its privilege-separation directory.
mkdir -p /run/sshd
