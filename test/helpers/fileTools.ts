/**
 * coreutils and findutils on the usual files, as a shell script for any session container. Under
 * Debian's runsc these fail without the image's statx shim (images/shared/statx-no-automount.c):
 * `ls` and `stat` pass AT_NO_AUTOMOUNT, which that gVisor answers with EINVAL.
 */
export const fileToolsScript = [
  'set -e',
  'cd "$(mktemp -d)"',
  'ls -la / >/dev/null',
  'stat -c %n /',
  'mkdir -p tree/sub && echo data > tree/sub/file',
  'cp -a tree copy',
  'cat copy/sub/file',
  'du -s copy >/dev/null',
  'find / -maxdepth 1 -name etc',
].join('\n');

/** What fileToolsScript prints when every tool worked. */
export const fileToolsOutput = '/\ndata\n/etc\n';
