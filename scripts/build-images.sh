#!/usr/bin/env bash
# Session images, built locally (no registry is reachable): debootstrap → docker import, one per
# recipe in images/*/recipe.env (base → $BASE_IMAGE; the others name their IMAGE). A recipe's
# folder may hold a setup.sh, run as root in a chroot of the new root before it is packed.
# Cached twice: the image in Docker, and its root-filesystem tarball in SF_HOME/images, so a
# wiped Docker store is refilled in seconds rather than re-bootstrapped. An image whose label
# matches its recipe's hash is skipped.
# Every image also gets the files of images/shared, added when it is imported, with their hash
# in a label of its own: changing them re-imports (never re-bootstraps), and a checkout from
# before they existed still finds its recipe label and takes the image as current rather than
# importing it back without them. Today that is the statx shim (images/shared/statx-no-automount.c).
source "$(dirname "$0")/lib.sh"

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
statx_shim="$SF_ROOT/images/shared/statx-no-automount.c"

# The files every image gets on top of its rootfs, laid out under $1. Compiled with the host's
# gcc: the host is bookworm like the images, so the shim needs no newer glibc than theirs.
shared_files() {
  local root="$1"
  command -v gcc >/dev/null || apt_ensure gcc libc6-dev
  install -d -m 0755 "$root/usr/local/lib/sessionflow" "$root/etc"
  gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$root/usr/local/lib/sessionflow/statx-no-automount.so" "$statx_shim"
  chmod 0644 "$root/usr/local/lib/sessionflow/statx-no-automount.so"
  printf '%s\n' /usr/local/lib/sessionflow/statx-no-automount.so >"$root/etc/ld.so.preload"
  chmod 0644 "$root/etc/ld.so.preload"
}

build_image() {
  local recipe="$1" name IMAGE="" SUITE VARIANT INCLUDE CMD="python3" PUSH=""
  name="$(basename "$(dirname "$recipe")")"
  # shellcheck source=/dev/null
  source "$recipe"
  local image="${IMAGE:-$BASE_IMAGE}"
  local setup; setup="$(dirname "$recipe")/setup.sh"
  local recipe_hash; recipe_hash="$(cat "$recipe" "$([ -f "$setup" ] && echo "$setup" || echo /dev/null)" | sha256sum | cut -c1-16)"
  local shared_hash; shared_hash="$(sha256sum <"$statx_shim" | cut -c1-16)"
  local cache="$SF_HOME/images/$name-$recipe_hash.tar"

  local current; current="$(docker image inspect "$image" --format '{{index .Config.Labels "org.sessionflow.recipe"}} {{index .Config.Labels "org.sessionflow.shared"}}' 2>/dev/null || true)"
  if [ "$current" = "$recipe_hash $shared_hash" ]; then
    log "image $image is current"
    return 0
  fi

  if [ ! -s "$cache" ]; then
    command -v debootstrap >/dev/null || apt_ensure debootstrap
    local rootfs; rootfs="$(mktemp -d "$SF_HOME/rootfs.XXXXXX")"
    log "debootstrapping $SUITE for $image ($VARIANT, +$INCLUDE) — a minute or two, once"
    if ! debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$rootfs" "$mirror" >"$SF_RUN/debootstrap-$name.log" 2>&1; then
      rm -rf "$rootfs"
      die "debootstrap failed, see $SF_RUN/debootstrap-$name.log"
    fi
    if [ -f "$setup" ] && ! chroot "$rootfs" /bin/sh -s <"$setup" >>"$SF_RUN/debootstrap-$name.log" 2>&1; then
      rm -rf "$rootfs"
      die "$setup failed, see $SF_RUN/debootstrap-$name.log"
    fi
    # apt caches and docs are dead weight in a session image.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
    mkdir -p "$SF_HOME/images"
    tar -C "$rootfs" -c . >"$cache.partial"
    mv "$cache.partial" "$cache"
    rm -rf "$rootfs"
  fi

  log "importing $image"
  local shared; shared="$(mktemp -d "$SF_HOME/shared.XXXXXX")"
  shared_files "$shared"
  # A copy of the cached rootfs with the shared files appended (the cache stays the bare rootfs).
  if ! { cp "$cache" "$shared/rootfs.tar" \
    && tar -r -f "$shared/rootfs.tar" -C "$shared" --owner=0 --group=0 --numeric-owner ./usr/local/lib/sessionflow ./etc/ld.so.preload \
    && docker import \
      --change "LABEL org.sessionflow.recipe=$recipe_hash org.sessionflow.shared=$shared_hash" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
      --change "CMD [\"$CMD\"]" \
      "$shared/rootfs.tar" "$image" >/dev/null; }; then
    rm -rf "$shared"
    die "importing $image failed"
  fi
  rm -rf "$shared"
  log "image $image ready"
}

for recipe in "$SF_ROOT"/images/*/recipe.env; do
  build_image "$recipe"
done
