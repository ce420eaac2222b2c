#!/usr/bin/env bash
# Fresh content and what a tag names for the engine's platform: a container
# created from a multi-platform index runs the index's manifest for its
# platform; an index that only gains another platform is new content for
# nobody here (image.seen with new_content false, nothing due); one whose
# entry for this platform changes is rolled out, pulled by the index's
# digest.  And max_image_age: content older than it is due (reason
# image_age) once a newer digest exists, counted from the image's Created;
# content as old with nothing newer is only shown as such.
source "$(dirname "$0")/lib.sh"
lib=$(cd "$(dirname "$0")/../lib" && pwd)
source "$lib/registry.sh"
source "$lib/fresh.sh"
[ "$(docker version -f '{{.Server.Arch}}')" = amd64 ] || { log "SKIP: the indexes here are built for an amd64 engine"; exit 0; }
port=$(fresh_port 16)
A=127.0.0.1:$port
registry_start "$T/ra" "$port"
DOCKER_V2=application/vnd.docker.distribution.manifest.v2+json
OCI_INDEX=application/vnd.oci.image.index.v1+json

# Two versions' manifests, and manifests for other platforms (v2's layers,
# a config naming the architecture).
dv1=$(push_version "$A/rpt/multi:v1" 1) || fail "push v1"
dv2=$(push_version "$A/rpt/multi:v2" 2) || fail "push v2"
v1=$(image_id "$A/rpt/multi:v1") v2=$(image_id "$A/rpt/multi:v2")
registry_get "$A" rpt/multi "$dv1" "$DOCKER_V2" >"$T/m-v1.json" || fail "get v1's manifest"
registry_get "$A" rpt/multi "$dv2" "$DOCKER_V2" >"$T/m-v2.json" || fail "get v2's manifest"
layers=$(jq -c .layers "$T/m-v2.json")
other() { # ARCH: a manifest for ARCH, pushed; prints its digest
  printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}' "$1" >"$T/cfg-$1.json"
  local cfg
  cfg=$(registry_blob "$A" rpt/multi "$T/cfg-$1.json") || return 1
  jq -n --arg cfg "$cfg" --argjson size "$(stat -c %s "$T/cfg-$1.json")" --argjson layers "$layers" --arg mt "$DOCKER_V2" \
    '{schemaVersion: 2, mediaType: $mt, config: {mediaType: "application/vnd.docker.container.image.v1+json",
      size: $size, digest: $cfg}, layers: $layers}' >"$T/m-$1.json"
  registry_manifest "$A" rpt/multi "$(sha256_of "$T/m-$1.json")" "$DOCKER_V2" "$T/m-$1.json"
}
arm64=$(other arm64) || fail "push arm64"
s390x=$(other s390x) || fail "push s390x"
entry() { # DIGEST FILE ARCH
  jq -n --arg d "$1" --argjson s "$(stat -c %s "$2")" --arg mt "$DOCKER_V2" --arg a "$3" \
    '{mediaType: $mt, digest: $d, size: $s, platform: {architecture: $a, os: "linux"}}'
}
index() { # NAME ENTRY...: pushes an index under tag 1; prints its digest
  local name=$1
  shift
  printf '%s\n' "$@" | jq -s --arg mt "$OCI_INDEX" '{schemaVersion: 2, mediaType: $mt, manifests: .}' >"$T/index-$name.json"
  registry_manifest "$A" rpt/multi 1 "$OCI_INDEX" "$T/index-$name.json"
}
i1=$(index i1 "$(entry "$arm64" "$T/m-arm64.json" arm64)" "$(entry "$dv1" "$T/m-v1.json" amd64)") || fail "push i1"
docker pull -q "$A/rpt/multi:1" >/dev/null || fail "the engine cannot pull i1"
assert_eq "$v1" "$(image_id "$A/rpt/multi:1")" "the engine's choice in i1"
run multi$$ -l fresh=multi "$A/rpt/multi:1"
id=$(cid multi$$)

# Content that is old: v1 of another repository, with a v2 beside it; and
# one that is as old with nothing newer.
da1=$(push_version "$A/rpt/aged:1" a1) || fail "push aged v1"
va1=$(image_id "$A/rpt/aged:1")
run aged$$ -l fresh=aged "$A/rpt/aged:1"
push_version "$A/rpt/solo:1" s1 >/dev/null || fail "push solo"
run solo$$ -l fresh=aged "$A/rpt/solo:1"
da2=$(push_version "$A/rpt/aged:1" a2) || fail "push aged v2"
docker tag "$va1" "$A/rpt/aged:1"
sleep 5 # v1's Created is now more than max_image_age ago

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - name: multi
    match: { labels: { fresh: multi, reaper-test: "$$" } }
    max_age: 1h
    grace: 1s
    update: { check: 1s }
  - name: aged
    match: { labels: { fresh: aged, reaper-test: "$$" } }
    max_age: 1h
    grace: 1s
    max_image_age: 4s
YAML
start_reaper
wait_for 20 "i1 seen" audit_any image.seen '.digest == $d' --arg d "$i1"
audit_any image.seen '.reference == $r and .digest == $d and .platform == "linux/amd64" and .platform_digest == $p and .source == "workload"' \
  --arg r "$A/rpt/multi:1" --arg d "$i1" --arg p "$dv1" || fail "i1 is not seen as amd64's v1"

# max_image_age: aged moves to a2 (reason image_age); solo has nothing newer.
wait_for 30 "aged's recycle" audit_any recycle.done '.name == $n' --arg n aged$$
audit_any recycle.done '.name == $n and .reason == "image_age" and .image_digest == $d2 and .previous_image_digest == $d1 and .content_age_s >= 4' \
  --arg n aged$$ --arg d2 "$da2" --arg d1 "$da1" || fail "aged's recycle: $(audit_events recycle.done)"
! audit_any recycle.begin '.name == $n' --arg n solo$$ || fail "solo was recycled with nothing newer to run"
log "max_image_age: content past it moved to the newer digest (reason image_age)"

# i2: another platform only.
i2=$(index i2 "$(entry "$arm64" "$T/m-arm64.json" arm64)" "$(entry "$dv1" "$T/m-v1.json" amd64)" \
  "$(entry "$s390x" "$T/m-s390x.json" s390x)") || fail "push i2"
wait_for 20 "i2 seen" audit_any image.seen '.digest == $d' --arg d "$i2"
audit_any image.seen '.digest == $d and .previous_digest == $p and .new_content == false and .platform_digest == $pd and .source == "registry"' \
  --arg d "$i2" --arg p "$i1" --arg pd "$dv1" || fail "i2 is not seen as the same content for amd64"
sleep 3
! audit_any recycle.begin '.name == $n' --arg n multi$$ || fail "an index that only gained a platform made multi due"
assert_eq "$id" "$(cid multi$$)" "multi's container"
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" || fail "plan"
jq -e --arg n multi$$ --arg p "$dv1" '.[] | select(.name == $n) | .image.platform_digest == $p and (.image | has("newer") | not)' "$T/plan.json" >/dev/null ||
  fail "plan says a newer digest waits: $(jq -c --arg n multi$$ '.[] | select(.name == $n) | .image' "$T/plan.json")"
jq -e --arg n solo$$ '.[] | select(.name == $n) | .image.content_age_s >= 4 and (.image | has("newer") | not)' "$T/plan.json" >/dev/null ||
  fail "plan on solo: $(jq -c --arg n solo$$ '.[] | select(.name == $n) | .image' "$T/plan.json")"
log "an index that only gained a platform: new_content false, nothing due"

# i3: amd64's entry is v2.
docker image rm -f "$v2" >/dev/null 2>&1 || true
i3=$(index i3 "$(entry "$arm64" "$T/m-arm64.json" arm64)" "$(entry "$dv2" "$T/m-v2.json" amd64)" \
  "$(entry "$s390x" "$T/m-s390x.json" s390x)") || fail "push i3"
wait_for 60 "multi's rollout" audit_any recycle.done '.name == $n' --arg n multi$$
# (Podman lists both the index's digest and the manifest's in RepoDigests:
# the content is the same; and it may keep v2's layers, making the pull a
# lookup.)
audit_any recycle.done '.name == $n and .reason == "update" and .image_digest == $i3 and
  (.previous_image_digest == $i1 or ($podman and .previous_image_digest == $dv1)) and (.pulled or $podman)' \
  --arg n multi$$ --arg i3 "$i3" --arg i1 "$i1" --arg dv1 "$dv1" --argjson podman "$([ "$ENGINE_KIND" = podman ] && echo true || echo false)" ||
  fail "multi's rollout: $(audit_events recycle.done)"
audit_any image.seen '.digest == $d and .new_content and .platform_digest == $p' --arg d "$i3" --arg p "$dv2" || fail "i3's image.seen"
assert_eq "$v2" "$(runs_image multi$$)" "multi runs amd64's v2"
assert_eq "$A/rpt/multi:1" "$(config_image multi$$)" "multi's image"
stop_reaper
verify_audit
log "an index whose amd64 entry changed: rolled out, by the index's digest"
