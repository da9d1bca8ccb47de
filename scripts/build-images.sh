#!/usr/bin/env bash
# Session images, built locally (no registry is reachable): debootstrap → docker import, one per
# recipe in images/*/recipe.env (base → $BASE_IMAGE; the others name their IMAGE). A recipe's
# folder may hold a setup.sh, run as root in a chroot of the new root before it is packed.
# Cached twice: the image in Docker, and its root-filesystem tarball in SF_HOME/images, so a
# wiped Docker store is refilled in seconds rather than re-bootstrapped. An image whose label
# matches its recipe's hash is skipped.
source "$(dirname "$0")/lib.sh"

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

build_image() {
  local recipe="$1" name IMAGE="" SUITE VARIANT INCLUDE CMD="python3" PUSH=""
  name="$(basename "$(dirname "$recipe")")"
  # shellcheck source=/dev/null
  source "$recipe"
  local image="${IMAGE:-$BASE_IMAGE}"
  local setup; setup="$(dirname "$recipe")/setup.sh"
  local recipe_hash; recipe_hash="$(cat "$recipe" "$([ -f "$setup" ] && echo "$setup" || echo /dev/null)" | sha256sum | cut -c1-16)"
  local cache="$SF_HOME/images/$name-$recipe_hash.tar"

  local current; current="$(docker image inspect "$image" --format '{{index .Config.Labels "org.sessionflow.recipe"}}' 2>/dev/null || true)"
  if [ "$current" = "$recipe_hash" ]; then
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
  docker import \
    --change "LABEL org.sessionflow.recipe=$recipe_hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    --change "CMD [\"$CMD\"]" \
    "$cache" "$image" >/dev/null
  log "image $image ready"
}

for recipe in "$SF_ROOT"/images/*/recipe.env; do
  build_image "$recipe"
done
