#!/usr/bin/env bash
# Images that nodes pull (recipes with PUSH=true, e.g. the compute kernel image) go to the local
# registry as 127.0.0.1:$REGISTRY_PORT/<IMAGE>. Skipped when the registry already holds the tag
# and the image pushed last time (its id, kept in SF_HOME/images) is the current one; pushing
# again sends only the layers the registry lacks.
source "$(dirname "$0")/lib.sh"

registry="127.0.0.1:$REGISTRY_PORT"

push_image() {
  local recipe="$1" IMAGE="" PUSH=""
  # shellcheck source=/dev/null
  source "$recipe"
  [ "$PUSH" = true ] || return 0
  local reference="$registry/$IMAGE" repository="${IMAGE%:*}" tag="${IMAGE##*:}"
  local id; id="$(docker image inspect "$IMAGE" --format '{{.Id}}')" || die "image $IMAGE is missing: run scripts/build-images.sh"
  local marker; marker="$SF_HOME/images/pushed-$REGISTRY_PORT-${IMAGE//[\/:]/_}"
  if [ "$(cat "$marker" 2>/dev/null)" = "$id" ] \
    && curl -fsS -o /dev/null -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$registry/v2/$repository/manifests/$tag"; then
    log "image $reference is current"
    return 0
  fi
  log "pushing $reference"
  docker tag "$IMAGE" "$reference"
  docker push --quiet "$reference" >/dev/null
  printf '%s\n' "$id" >"$marker"
  log "image $reference pushed"
}

for recipe in "$SF_ROOT"/images/*/recipe.env; do
  push_image "$recipe"
done
