#!/usr/bin/env bash
# Session images, built locally (no registry is reachable): debootstrap → docker import.
# Cached twice: the image in Docker, and its root-filesystem tarball in SF_HOME/images, so a
# wiped Docker store is refilled in seconds rather than re-bootstrapped.
source "$(dirname "$0")/lib.sh"

recipe="$SF_ROOT/images/base/recipe.env"
# shellcheck source=/dev/null
source "$recipe"
recipe_hash="$(sha256sum "$recipe" | cut -c1-16)"
cache="$SF_HOME/images/base-$recipe_hash.tar"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

current="$(docker image inspect "$BASE_IMAGE" --format '{{index .Config.Labels "org.sessionflow.recipe"}}' 2>/dev/null || true)"
if [ "$current" = "$recipe_hash" ]; then
  log "image $BASE_IMAGE is current"
  exit 0
fi

if [ ! -s "$cache" ]; then
  command -v debootstrap >/dev/null || apt_ensure debootstrap
  rootfs="$(mktemp -d "$SF_HOME/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrapping $SUITE ($VARIANT, +$INCLUDE) — about a minute, once"
  debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$rootfs" "$mirror" >"$SF_RUN/debootstrap.log" 2>&1 \
    || die "debootstrap failed, see $SF_RUN/debootstrap.log"
  # apt caches and docs are dead weight in a session image.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  mkdir -p "$SF_HOME/images"
  tar -C "$rootfs" -c . >"$cache.partial"
  mv "$cache.partial" "$cache"
fi

log "importing $BASE_IMAGE"
docker import \
  --change "LABEL org.sessionflow.recipe=$recipe_hash" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$cache" "$BASE_IMAGE" >/dev/null
log "image $BASE_IMAGE ready"
