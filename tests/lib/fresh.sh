#!/usr/bin/env bash
# What the fresh-content tests share: versions of a test image pushed under
# one tag of a real registry (tests/lib/registry.sh) on loopback, and what
# the engine and the audit log say of them.  Source after lib.sh and
# registry.sh.

command -v docker-registry >/dev/null || fail "docker-registry is not installed (apt-get install docker-registry)"

# fresh_port SLOT: a host port of this test's own, PORT_BASE + 500 to 599
# (slots 0 to 19 of 5 ports each): the suites that run side by side have
# PORT_BASEs of their own, and a suite runs its tests one at a time.
fresh_port() {
  echo $((PORT_BASE + 500 + $1 * 5))
}

# push_version IMAGE VERSION [DOCKERFILE_LINES]: builds a new image FROM
# reaper-test/sleeper:1 (a LABEL version=VERSION, and the lines given),
# pushes it under IMAGE (REGISTRY/REPO:TAG), and prints its digest (as
# RepoDigests lists it).  The local tag then still names it.
push_version() {
  local img=$1 version=$2 extra=${3:-}
  # The test's own label: an image built by an earlier test of the same
  # engine from the same lines would otherwise come back from the build
  # cache with that test's tags and users (its id the same).
  printf 'FROM reaper-test/sleeper:1\nLABEL version=%s reaper-test.build=%s\n%s\n' "$version" "$$" "$extra" |
    DOCKER_BUILDKIT=0 docker build -q -t "$img" - >/dev/null || return 1
  docker push -q "$img" >/dev/null || return 1
  if [ "${ENGINE_KIND:-docker}" = podman ]; then
    # Podman's push converts the manifest and leaves RepoDigests with its
    # local one: the registry's digest comes with a pull, as it does for
    # the images containers run in practice.
    docker image rm -f "$img" >/dev/null 2>&1 || true
    docker pull -q "$img" >/dev/null || return 1
  fi
  repo_digest_of "$img"
}

# repo_digest_of IMAGE: the digest RepoDigests lists for IMAGE's repository.
repo_digest_of() {
  local img=$1 repo=${1%:*}
  docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$img" |
    sed -n "s|^$repo@||p" | head -n 1
}

image_id() { docker image inspect -f '{{.Id}}' "$1"; }
runs_image() { docker inspect -f '{{.Image}}' "$1"; }
config_image() { docker inspect -f '{{.Config.Image}}' "$1"; }

# forget_locally IMAGE ID: the engine forgets image ID (the tag is moved
# back to what it named before, or dropped), so that only a pull brings it.
forget_locally() {
  local out
  out=$(docker image rm -f "$2" 2>&1) || log "docker image rm -f $2: $out"
}

# audit_jq FILTER: jq over the whole audit log (slurped).
audit_jq() { jq -s "$@" "$T/audit.jsonl"; }

# stage_version REGISTRY REPO VERSION [DOCKERFILE_LINES]: builds a version
# as push_version does and pushes it under REPO:stage only; prints its
# digest.  promote then moves the real tag to it: the digest is known
# before anyone can see it under the tag.
stage_version() {
  local reg=$1 repo=$2 version=$3 extra=${4:-}
  push_version "$reg/$repo:stage" "$version" "$extra"
}

# promote REGISTRY REPO TAG DIGEST: PUTs the manifest DIGEST under TAG (the
# same bytes: the same digest), as a CI pipeline's promotion does.
promote() {
  local reg=$1 repo=$2 tag=$3 digest=$4 f
  f=$(mktemp)
  registry_get "$reg" "$repo" "$digest" application/vnd.docker.distribution.manifest.v2+json >"$f" || return 1
  registry_manifest "$reg" "$repo" "$tag" application/vnd.docker.distribution.manifest.v2+json "$f" >/dev/null
  rm -f "$f"
}
