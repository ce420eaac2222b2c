#!/usr/bin/env bash
# What a tag names now, asked of a real registry (Debian's docker-registry,
# distribution 2.8.2) with `reaper resolve-image`: the tag's digest is the
# one `docker inspect` lists in RepoDigests, a new push under the same tag
# changes it, and in a multi-platform index only a change of the engine's
# platform's manifest changes the platform digest (an index that gains
# another platform does not; attestation manifests are never chosen).  Then
# the same registry behind `auth: silly` with a token endpoint of the
# test's own: the credentials of a config.json the test writes, one token
# for two resolves of a repository, refusals (wrong password, anonymous)
# counted as unauthorized, and no secret in any output; and behind
# `auth: htpasswd` (a Basic challenge).  A registry that is
# down or never answers fails fast with its outcome.
source "$(dirname "$0")/lib.sh"
lib=$(cd "$(dirname "$0")/../lib" && pwd)
source "$lib/registry.sh"
command -v docker-registry >/dev/null || fail "docker-registry is not installed (apt-get install docker-registry)"
base=$((PORT_BASE + 720)) # the suite's own ports (lib.sh)
pa=$base pb=$((base + 1)) pt=$((base + 2)) pdown=$((base + 3)) pc=$((base + 4))
A=127.0.0.1:$pa
B=127.0.0.1:$pb
C=127.0.0.1:$pc
DOCKER_V2=application/vnd.docker.distribution.manifest.v2+json
DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_INDEX=application/vnd.oci.image.index.v1+json

# resolve CONFIG_DIR ARGS...: reaper resolve-image with DOCKER_CONFIG set;
# its stdout in $T/out, stderr in $T/err; returns its exit status.
resolve() {
  local cfg=$1 rc=0
  shift
  DOCKER_CONFIG=$cfg "$REAPER" resolve-image "$@" >"$T/out" 2>"$T/err" || rc=$?
  cat "$T/out" "$T/err" >>"$T/all-output"
  return $rc
}
got() { sed -n "${1}p" "$T/out" | jq -r ".$2"; } # LINE FIELD
resolve_ok() { resolve "$@" || fail "resolve-image $*: $(cat "$T/err")"; }
resolve_fails() { # OUTCOME CONFIG_DIR ARGS...
  local want=$1 rc=0
  shift
  resolve "$@" || rc=$?
  assert_eq 1 "$rc" "exit status of resolve-image ${*:2}"
  assert_eq "$want" "$(got 1 outcome)" "outcome of resolve-image ${*:2}"
}
ms() { echo $(($(date +%s%N) / 1000000)); }
mkdir -p "$T/nocreds"

# --- (a) no auth -------------------------------------------------------------
registry_start "$T/ra" "$pa" "$T/storage"
repo_digest() { # IMAGE: its RepoDigest in registry A
  docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$1" |
    sed -n "s|^$A/rpt/app@||p" | head -n 1
}
docker tag reaper-test/sleeper:1 "$A/rpt/app:1"
docker push -q "$A/rpt/app:1" >/dev/null || fail "push v1"
d1=$(repo_digest "$A/rpt/app:1")
[ -n "$d1" ] || fail "no RepoDigest after the push of v1"
id1=$(docker image inspect -f '{{.Id}}' "$A/rpt/app:1")
resolve_ok "$T/nocreds" --platform linux/amd64 "$A/rpt/app:1"
assert_eq "$A/rpt/app:1" "$(got 1 reference)" "reference"
assert_eq "$d1" "$(got 1 digest)" "the tag's digest is RepoDigests' after the push"
assert_eq "$d1" "$(got 1 platform_digest)" "a single image is its platform's manifest"
assert_eq false "$(got 1 index)" "a single image is no index"
assert_eq "$DOCKER_V2" "$(got 1 media_type)" "media type of a pushed image"
assert_eq linux/amd64 "$(got 1 platform)" "platform"

# A second version under the same tag.
printf 'FROM %s\nLABEL version=2\n' "$A/rpt/app:1" |
  DOCKER_BUILDKIT=0 docker build -q -t "$A/rpt/app:1" - >/dev/null || fail "build v2"
docker push -q "$A/rpt/app:1" >/dev/null || fail "push v2"
d2=$(repo_digest "$A/rpt/app:1")
id2=$(docker image inspect -f '{{.Id}}' "$A/rpt/app:1")
[ -n "$d2" ] && [ "$d2" != "$d1" ] || fail "v2 has no digest of its own ($d2)"
resolve_ok "$T/nocreds" --platform linux/amd64 "$A/rpt/app:1"
assert_eq "$d2" "$(got 1 digest)" "the tag's digest after the second push"
assert_eq "$d2" "$(got 1 platform_digest)" "the platform digest after the second push"
log "a tag resolves to what RepoDigests says, and moves with a push"

resolve_fails not_found "$T/nocreds" "$A/rpt/app:nope"
grep -q '404' "$T/err" || fail "the 404 is not said: $(cat "$T/err")"
resolve_fails not_found "$T/nocreds" "$A/rpt/none:1"
rc=0
resolve "$T/nocreds" "$A/rpt/App:1" || rc=$?
assert_eq 2 "$rc" "exit status for a reference docker refuses"
grep -q 'must be lowercase' "$T/err" || fail "the bad reference is not explained: $(cat "$T/err")"

# Down: refused at once.  Hanging: the timeout, not longer.
t0=$(ms)
resolve_fails unreachable "$T/nocreds" "127.0.0.1:$pdown/rpt/app:1"
[ $(($(ms) - t0)) -lt 5000 ] || fail "a registry that is down took $(($(ms) - t0)) ms"
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); time.sleep(120)' "$pdown" &
hang=$!
on_exit "kill $hang 2>/dev/null"
wait_for 10 "the silent listener" bash -c "exec 3<>/dev/tcp/127.0.0.1/$pdown"
t0=$(ms)
resolve_fails timeout "$T/nocreds" --timeout 1s "127.0.0.1:$pdown/rpt/app:1"
el=$(($(ms) - t0))
[ "$el" -ge 900 ] && [ "$el" -lt 5000 ] || fail "a registry that never answers took $el ms with --timeout 1s"
kill "$hang"
log "unknown tags, a registry down or silent: outcomes not_found, unreachable, timeout"

# --- multi-platform content, pushed by hand ---------------------------------
registry_get "$A" rpt/app "$d2" "$DOCKER_V2" >"$T/m-amd64.json" || fail "get v2's manifest"
assert_eq "$d2" "$(sha256_of "$T/m-amd64.json")" "v2's manifest bytes"
registry_get "$A" rpt/app "$d1" "$DOCKER_V2" >"$T/m-amd64-v1.json" || fail "get v1's manifest"
layers=$(jq -c .layers "$T/m-amd64.json")
# image ARCH: a manifest of its own (a config naming ARCH, v2's layers),
# pushed by digest; prints the digest.
image() {
  local arch=$1 cfg
  printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}' \
    "$arch" >"$T/cfg-$arch.json"
  cfg=$(registry_blob "$A" rpt/app "$T/cfg-$arch.json") || return 1
  jq -n --arg cfg "$cfg" --argjson size "$(stat -c %s "$T/cfg-$arch.json")" \
    --argjson layers "$layers" --arg mt "$DOCKER_V2" \
    '{schemaVersion: 2, mediaType: $mt, config: {mediaType:
      "application/vnd.docker.container.image.v1+json", size: $size,
      digest: $cfg}, layers: $layers}' >"$T/m-$arch.json"
  registry_manifest "$A" rpt/app "$(sha256_of "$T/m-$arch.json")" "$DOCKER_V2" "$T/m-$arch.json"
}
arm64=$(image arm64) || fail "push the arm64 manifest"
s390x=$(image s390x) || fail "push the s390x manifest"
armv6=$(image armv6) || fail "push the arm/v6 manifest"
armv7=$(image armv7) || fail "push the arm/v7 manifest"
# An attestation manifest as BuildKit pushes one: an in-toto layer.
printf '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[]}' >"$T/intoto.json"
intoto=$(registry_blob "$A" rpt/app "$T/intoto.json") || fail "push the in-toto blob"
printf '{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
  "$intoto" >"$T/cfg-att.json"
attcfg=$(registry_blob "$A" rpt/app "$T/cfg-att.json") || fail "push the attestation config"
jq -n --arg cfg "$attcfg" --argjson cs "$(stat -c %s "$T/cfg-att.json")" \
  --arg l "$intoto" --argjson ls "$(stat -c %s "$T/intoto.json")" --arg mt "$OCI_MANIFEST" \
  '{schemaVersion: 2, mediaType: $mt,
    config: {mediaType: "application/vnd.oci.image.config.v1+json", size: $cs, digest: $cfg},
    layers: [{mediaType: "application/vnd.in-toto+json", size: $ls, digest: $l,
              annotations: {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}]}' >"$T/m-att.json"
att=$(registry_manifest "$A" rpt/app "$(sha256_of "$T/m-att.json")" "$OCI_MANIFEST" "$T/m-att.json") ||
  fail "push the attestation manifest"

entry() { # DIGEST MANIFEST_FILE ARCH [VARIANT]
  jq -n --arg d "$1" --argjson s "$(stat -c %s "$2")" --arg mt "$(jq -r .mediaType "$2")" \
    --arg a "$3" --arg v "${4:-}" \
    '{mediaType: $mt, digest: $d, size: $s,
      platform: ({architecture: $a, os: "linux"} + (if $v == "" then {} else {variant: $v} end))}'
}
att_entry() { # DIGEST_IT_ATTESTS
  jq -n --arg d "$att" --argjson s "$(stat -c %s "$T/m-att.json")" --arg ref "$1" --arg mt "$OCI_MANIFEST" \
    '{mediaType: $mt, digest: $d, size: $s,
      annotations: {"vnd.docker.reference.digest": $ref, "vnd.docker.reference.type": "attestation-manifest"},
      platform: {architecture: "unknown", os: "unknown"}}'
}
push_index() { # TYPE TAG ENTRY_JSON...: prints the index's digest
  local type=$1 tag=$2
  shift 2
  printf '%s\n' "$@" | jq -s --arg mt "$type" '{schemaVersion: 2, mediaType: $mt, manifests: .}' >"$T/index-$tag.json"
  registry_manifest "$A" rpt/app "$tag" "$type" "$T/index-$tag.json"
}

# An index: the attestation first, then amd64 (v2) and arm64.
i1=$(push_index "$OCI_INDEX" multi "$(att_entry "$d2")" "$(entry "$d2" "$T/m-amd64.json" amd64)" \
  "$(entry "$arm64" "$T/m-arm64.json" arm64 v8)") || fail "push the index"
resolve_ok "$T/nocreds" --platform linux/amd64 "$A/rpt/app:multi"
assert_eq "$i1" "$(got 1 digest)" "the tag's digest is the index's"
assert_eq true "$(got 1 index)" "an index is said to be one"
assert_eq "$OCI_INDEX" "$(got 1 media_type)" "the index's media type"
assert_eq "$d2" "$(got 1 platform_digest)" "linux/amd64 is v2's manifest, not the attestation"
resolve_ok "$T/nocreds" --platform linux/arm64 "$A/rpt/app:multi"
assert_eq "$arm64" "$(got 1 platform_digest)" "linux/arm64's manifest"
resolve_fails no_platform "$T/nocreds" --platform linux/arm/v7 "$A/rpt/app:multi"
grep -q 'linux/amd64, linux/arm64)' "$T/err" || fail "the platforms there are not named: $(cat "$T/err")"
# By digest: the index, whatever a tag says.
resolve_ok "$T/nocreds" --platform linux/amd64 "$A/rpt/app@$i1" "$A/rpt/app:nope@$d1"
assert_eq "$i1" "$(got 1 digest)" "an index asked by digest"
assert_eq "$d2" "$(got 1 platform_digest)" "an index asked by digest: the platform's manifest"
assert_eq "$d1" "$(got 2 digest)" "tag@digest is the digest"

# The engine agrees: a pull by tag lists the index's digest in RepoDigests
# and runs the amd64 entry (v2's image).
if [ "$(docker version -f '{{.Server.Arch}}')" = amd64 ]; then
  docker pull -q "$A/rpt/app:multi" >/dev/null || fail "the engine cannot pull the index"
  docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$A/rpt/app:multi" |
    grep -qx "$A/rpt/app@$i1" || fail "RepoDigests after the pull does not list $i1"
  assert_eq "$id2" "$(docker image inspect -f '{{.Id}}' "$A/rpt/app:multi")" "the image the engine pulled"
  resolve_ok "$T/nocreds" "$A/rpt/app:multi"
  assert_eq "$d2" "$(got 1 platform_digest)" "the platform of this machine, by default"
  log "the engine's pull agrees: RepoDigests $i1, image $id2"
fi

# Twice in one run: the second costs one HEAD (the choice is remembered).
resolve_ok "$T/nocreds" --stats --platform linux/amd64 "$A/rpt/app:multi" "$A/rpt/app:multi"
assert_eq "$(sed -n 1p "$T/out")" "$(sed -n 2p "$T/out")" "two resolves of one tag"
assert_eq 3 "$(got 3 stats.requests)" "requests for two resolves (HEAD, GET index, HEAD)"
assert_eq 1 "$(got 3 stats.index_cached)" "index choices remembered"
assert_eq 2 "$(got 3 stats.outcomes.ok)" "ok outcomes counted"

# Another platform added: a new index, the same manifest for amd64.
i2=$(push_index "$OCI_INDEX" multi "$(entry "$d2" "$T/m-amd64.json" amd64)" \
  "$(entry "$arm64" "$T/m-arm64.json" arm64 v8)" "$(entry "$s390x" "$T/m-s390x.json" s390x)" \
  "$(att_entry "$d2")") || fail "push the index with s390x"
[ "$i2" != "$i1" ] || fail "the second index has the first one's digest"
resolve_ok "$T/nocreds" --platform linux/amd64 "$A/rpt/app:multi"
assert_eq "$i2" "$(got 1 digest)" "the tag's digest after a platform was added"
assert_eq "$d2" "$(got 1 platform_digest)" "amd64's manifest after another platform was added"
# The amd64 entry changes (back to v1's manifest): new content for amd64.
i3=$(push_index "$OCI_INDEX" multi "$(entry "$d1" "$T/m-amd64-v1.json" amd64)" \
  "$(entry "$arm64" "$T/m-arm64.json" arm64 v8)" "$(entry "$s390x" "$T/m-s390x.json" s390x)" \
  "$(att_entry "$d1")") || fail "push the index with a new amd64 entry"
resolve_ok "$T/nocreds" --platform linux/amd64 "$A/rpt/app:multi" "$A/rpt/app:multi"
assert_eq "$i3" "$(got 1 digest)" "the tag's digest after amd64 changed"
assert_eq "$d1" "$(got 1 platform_digest)" "amd64's new manifest"
resolve_ok "$T/nocreds" --platform linux/arm64 "$A/rpt/app:multi"
assert_eq "$arm64" "$(got 1 platform_digest)" "arm64's manifest, unchanged"
log "an index: the platform digest moves only when the platform's entry does"

# A Docker manifest list with arm variants.
push_index "$DOCKER_LIST" arm "$(entry "$d2" "$T/m-amd64.json" amd64)" \
  "$(entry "$armv6" "$T/m-armv6.json" arm v6)" "$(entry "$armv7" "$T/m-armv7.json" arm v7)" \
  "$(entry "$arm64" "$T/m-arm64.json" arm64 v8)" >/dev/null || fail "push the manifest list"
resolve_ok "$T/nocreds" --platform linux/arm/v7 "$A/rpt/app:arm"
assert_eq "$DOCKER_LIST" "$(got 1 media_type)" "a manifest list's media type"
assert_eq "$armv7" "$(got 1 platform_digest)" "linux/arm/v7"
resolve_ok "$T/nocreds" --platform linux/arm/v6 "$A/rpt/app:arm"
assert_eq "$armv6" "$(got 1 platform_digest)" "linux/arm/v6"
resolve_ok "$T/nocreds" --platform linux/arm/v8 "$A/rpt/app:arm"
assert_eq "$armv7" "$(got 1 platform_digest)" "32-bit arm/v8 runs arm/v7"
resolve_fails no_platform "$T/nocreds" --platform linux/arm/v5 "$A/rpt/app:arm"
log "a manifest list with arm variants: v7, v6, and v8 falling back to v7"

# --- (b) the same content behind a Bearer challenge -------------------------
python3 "$lib/token_server.py" "$pt" alice 's3cr:et' "$T/tokens.log" &
tok=$!
on_exit "kill $tok"
wait_for 10 "the token endpoint" curl -s -o /dev/null "http://127.0.0.1:$pt/token"
: >"$T/tokens.log"
registry_start "$T/rb" "$pb" "$T/storage" \
  "auth: { silly: { realm: \"http://127.0.0.1:$pt/token\", service: reaper-test } }"
curl -sI "http://$B/v2/rpt/app/manifests/multi" | tr -d '\r' >"$T/challenge"
grep -q '^HTTP/[0-9.]* 401' "$T/challenge" || fail "registry B does not challenge: $(cat "$T/challenge")"
grep -qi "^www-authenticate: Bearer realm=\"http://127.0.0.1:$pt/token\"" "$T/challenge" ||
  fail "registry B's challenge: $(cat "$T/challenge")"

docker_config() { # DIR JSON
  mkdir -p "$1"
  printf '%s\n' "$2" >"$1/config.json"
}
good=$(printf 'alice:s3cr:et' | base64)
docker_config "$T/creds" "{\"auths\":{\"$B\":{\"auth\":\"$good\"},\"https://index.docker.io/v1/\":{\"auth\":\"$(printf 'hub:other' | base64)\"}}}"
resolve_ok "$T/creds" --stats --platform linux/amd64 "$B/rpt/app:multi" "$B/rpt/app:1"
assert_eq "$i3" "$(got 1 digest)" "the index through the token flow"
assert_eq "$d1" "$(got 1 platform_digest)" "amd64's manifest through the token flow"
assert_eq "$d2" "$(got 2 digest)" "the second tag of the repository"
assert_eq 1 "$(got 3 stats.token_requests)" "tokens asked for two resolves of one repository"
assert_eq 1 "$(got 3 stats.token_reused)" "token reused"
assert_eq 1 "$(wc -l <"$T/tokens.log")" "requests at the token endpoint"
jq -e --arg s "repository:rpt/app:pull" \
  'select(.ok and .auth == "basic" and .user == "alice" and .account == "alice"
          and .service == "reaper-test" and .scope == $s)' "$T/tokens.log" >/dev/null ||
  fail "the token request: $(cat "$T/tokens.log")"
log "Bearer: config.json's credentials at the token endpoint, one token for two resolves"

# A key written as a URL, as older docker logins did.
docker_config "$T/urlkey" "{\"auths\":{\"http://$B/v2/\":{\"auth\":\"$good\"}}}"
resolve_ok "$T/urlkey" --platform linux/amd64 "$B/rpt/app:1"
assert_eq "$d2" "$(got 1 digest)" "credentials under a URL key"

# Refusals: a wrong password, and nobody.
docker_config "$T/wrong" "{\"auths\":{\"$B\":{\"auth\":\"$(printf 'alice:n0pe-w0rd' | base64)\"}}}"
: >"$T/tokens.log"
resolve_fails unauthorized "$T/wrong" "$B/rpt/app:1"
grep -q 'refused the credentials config.json has' "$T/err" || fail "the refusal is not explained: $(cat "$T/err")"
jq -e 'select(.ok == false and .user == "alice")' "$T/tokens.log" >/dev/null || fail "the wrong password was not sent: $(cat "$T/tokens.log")"
resolve_fails unauthorized "$T/nocreds" "$B/rpt/app:1"
grep -q 'anonymous' "$T/err" || fail "the anonymous refusal is not explained: $(cat "$T/err")"
jq -e 'select(.ok == false and .auth == "none")' "$T/tokens.log" >/dev/null || fail "no anonymous token request: $(cat "$T/tokens.log")"

# Credential helpers are not run, and that is said once.
docker_config "$T/helper" "{\"auths\":{\"$B\":{}},\"credsStore\":\"secretservice\"}"
resolve "$T/helper" "$B/rpt/app:1" "$B/rpt/app:multi" || true
assert_eq unauthorized "$(got 1 outcome)" "with a credential helper only"
assert_eq 1 "$(grep -c 'credential helpers (credsStore secretservice)' "$T/err")" "warnings about credsStore"

log "refusals are unauthorized and explained; credsStore said once"

# --- (c) the same content behind a Basic challenge (htpasswd, bcrypt) -------
python3 -W ignore -c 'import crypt, sys
print("carol:" + crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))' 'pa55:word' >"$T/htpasswd" ||
  fail "python3 cannot write a bcrypt htpasswd (its crypt module)"
registry_start "$T/rc" "$pc" "$T/storage" \
  "auth: { htpasswd: { realm: \"Registry Realm\", path: $T/htpasswd } }"
curl -sI "http://$C/v2/" | tr -d '\r' | grep -ci >/dev/null '^www-authenticate: Basic realm="Registry Realm"' ||
  fail "registry C does not ask for Basic credentials"
basic=$(printf 'carol:pa55:word' | base64)
docker_config "$T/basic" "{\"auths\":{\"$C\":{\"auth\":\"$basic\"}}}"
resolve_ok "$T/basic" --stats --platform linux/amd64 "$C/rpt/app:multi" "$C/rpt/app:1"
assert_eq "$i3" "$(got 1 digest)" "the index behind Basic"
assert_eq "$d1" "$(got 1 platform_digest)" "amd64's manifest behind Basic"
assert_eq "$d2" "$(got 2 digest)" "the second tag behind Basic"
assert_eq 0 "$(got 3 stats.token_requests)" "no token for Basic"
assert_eq 1 "$(got 3 stats.token_reused)" "Basic credentials remembered for the repository"
assert_eq 4 "$(got 3 stats.requests)" "requests (401, HEAD, GET index; HEAD)"
resolve_fails unauthorized "$T/nocreds" "$C/rpt/app:1"
grep -q 'config.json has none for' "$T/err" || fail "no credentials is not said: $(cat "$T/err")"
docker_config "$T/basicwrong" "{\"auths\":{\"$C\":{\"auth\":\"$(printf 'carol:n0pe-w0rd' | base64)\"}}}"
resolve_fails unauthorized "$T/basicwrong" "$C/rpt/app:1"
grep -q 'with the credentials config.json has' "$T/err" || fail "the refusal is not explained: $(cat "$T/err")"
log "Basic: config.json's credentials, remembered; none or wrong ones are unauthorized"

# No secret anywhere, debug lines included.
resolve_ok "$T/creds" -v --platform linux/amd64 "$B/rpt/app:multi"
grep -q 'DEBUG registry: GET http://127.0.0.1:[0-9]* (token)' "$T/err" || fail "no debug lines: $(cat "$T/err")"
resolve_ok "$T/basic" -v --platform linux/amd64 "$C/rpt/app:multi"
for secret in 's3cr:et' "$good" 'n0pe-w0rd' "$(printf 'alice:n0pe-w0rd' | base64)" 'pa55:word' "$basic" \
  "$(printf 'carol:n0pe-w0rd' | base64)" 'Bearer ' 'Basic '; do
  if grep -qF -- "$secret" "$T/all-output"; then
    fail "a secret ($secret) is in resolve-image's output"
  fi
done
log "no secret in any output, debug lines included"
