#!/usr/bin/env bash
# A real registry for the tests: Debian's docker-registry (distribution
# 2.8.2) on 127.0.0.1, with a configuration of its own, and what a test
# needs to put content into it by hand (blobs, manifests, indexes) with
# curl, as a client that pushes multi-platform images does.  Source it after
# lib.sh (it uses on_exit and wait_for).

# registry_start DIR PORT [STORAGE [AUTH_YAML]]: starts a registry serving
# STORAGE (default DIR/storage; two registries may share one), with AUTH_YAML
# lines (an `auth:` block) when given, and waits until /v2/ answers (200,
# or 401 with auth).  Stopped at the test's exit.
registry_start() {
  local dir=$1 port=$2 storage=${3:-$1/storage} auth=${4:-}
  mkdir -p "$dir" "$storage"
  # A registry already there (another suite's, a leftover) would answer for
  # this one: the test would push to and read from it.
  ! registry_up "$port" || fail "127.0.0.1:$port already answers as a registry"
  {
    echo "version: 0.1"
    echo "storage: { filesystem: { rootdirectory: $storage } }"
    echo "http: { addr: 127.0.0.1:$port }"
    echo "log: { level: error }"
    [ -z "$auth" ] || printf '%s\n' "$auth"
  } >"$dir/registry.yml"
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  local pid=$!
  on_exit "kill $pid"
  wait_for 10 "the registry on 127.0.0.1:$port" registry_up "$port"
}

registry_up() { # PORT
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/") || return 1
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

sha256_of() { # FILE -> sha256:HEX
  printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"
}

# registry_blob HOST:PORT REPO FILE: uploads FILE as a blob (monolithic
# upload: POST, then PUT with the digest); prints its digest.
registry_blob() {
  local reg=$1 repo=$2 file=$3 digest loc sep
  digest=$(sha256_of "$file")
  loc=$(curl -fsS -X POST -D - -o /dev/null "http://$reg/v2/$repo/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p') || return 1
  case $loc in http*) ;; *) loc=http://$reg$loc ;; esac
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$file" "$loc${sep}digest=$digest" -o /dev/null || return 1
  echo "$digest"
}

# registry_manifest HOST:PORT REPO REF MEDIA_TYPE FILE: PUTs FILE as a
# manifest under REF (a tag, or its own digest); prints its digest.
registry_manifest() {
  local reg=$1 repo=$2 ref=$3 type=$4 file=$5
  curl -fsS -X PUT -H "Content-Type: $type" --data-binary @"$file" \
    "http://$reg/v2/$repo/manifests/$ref" -o /dev/null || return 1
  sha256_of "$file"
}

# registry_get HOST:PORT REPO REF ACCEPT: the manifest's bytes on stdout.
registry_get() {
  curl -fsS -H "Accept: $4" "http://$1/v2/$2/manifests/$3"
}
