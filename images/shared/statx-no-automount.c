/*
 * Preloaded into every session image (/etc/ld.so.preload) because Debian bookworm's runsc
 * (gVisor 20221219) answers EINVAL to statx() and fstatat() whenever the flags hold
 * AT_NO_AUTOMOUNT, and coreutils passes that flag: under gVisor `ls /` and `stat /` fail with
 * "Invalid argument". A container has no automount points, so the flag changes nothing there;
 * dropping it before the real call is harmless under runc too.
 *
 * Remove it (this file, its lines in scripts/build-images.sh, the note in docs/operations.md)
 * once runsc is a release that ignores the flag itself (gVisor did so in 2023): check with
 * `docker run --rm --runtime=runsc sessionflow/base:bookworm ls /` on an image without it.
 *
 * Static binaries and programs that make the syscall themselves do not go through it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>

typedef int statx_fn(int, const char *, int, unsigned int, struct statx *);
typedef int fstatat_fn(int, const char *, struct stat *, int);
typedef int fstatat64_fn(int, const char *, struct stat64 *, int);

/* Resolved on first use: a constructor may run after another library's first stat. */
static void *next(const char *name, void **slot) {
  void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!fn) {
    fn = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
  }
  return fn;
}

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  static void *real;
  return ((statx_fn *)next("statx", &real))(dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}

int fstatat(int dirfd, const char *path, struct stat *buf, int flags) {
  static void *real;
  return ((fstatat_fn *)next("fstatat", &real))(dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}

/* glibc's 64-bit-offset name of the same call (an alias of fstatat on 64-bit systems). */
int fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags) {
  static void *real;
  return ((fstatat64_fn *)next("fstatat64", &real))(dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}
