#!/usr/bin/env bash
# pull: true recreates from a freshly pulled image; without it, the same
# image id is kept even when the tag has moved.  A real registry (Debian's
# docker-registry) on loopback serves the images.
source "$(dirname "$0")/lib.sh"
command -v docker-registry >/dev/null || fail "docker-registry is not installed (apt-get install docker-registry)"
port=$((PORT_BASE + 740)) # the suite's own ports (lib.sh)
mkdir -p "$T/registry"
cat >"$T/registry.yml" <<YAML
version: 0.1
storage: { filesystem: { rootdirectory: $T/registry } }
http: { addr: 127.0.0.1:$port }
log: { level: error }
YAML
docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
reg=$!
on_exit "kill $reg"
wait_for 10 "the registry" curl -fsS "http://127.0.0.1:$port/v2/"
img=127.0.0.1:$port/rpt/app:1
docker tag reaper-test/sleeper:1 "$img"
docker push -q "$img" >/dev/null || fail "push v1"
v1=$(docker image inspect -f '{{.Id}}' "$img")
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
run pulled$$ -l pull=yes "$img" sh -c "$loop"
run pinned$$ -l pull=no "$img" sh -c "$loop"
# A new version under the same tag, in the registry only.
printf 'FROM %s\nLABEL version=2\n' "$img" | DOCKER_BUILDKIT=0 docker build -q -t "$img" - >/dev/null
docker push -q "$img" >/dev/null || fail "push v2"
v2=$(docker image inspect -f '{{.Id}}' "$img")
[ "$v1" != "$v2" ] || fail "v2 is not a new image"
docker tag "$v1" "$img"   # the local tag points back at v1: only a pull brings v2
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: pull, match: { labels: { pull: "yes", reaper-test: "$$" } }, max_age: 1s, grace: 2s, pull: true }
  - { name: pin, match: { labels: { pull: "no", reaper-test: "$$" } }, max_age: 1s, grace: 2s }
YAML
sleep 1.2
reaper_once || fail "run --once exited non-zero"
assert_eq "$v2" "$(docker inspect -f '{{.Image}}' pulled$$)" "pulled$$ runs the pulled image"
assert_eq "$v1" "$(docker inspect -f '{{.Image}}' pinned$$)" "pinned$$ runs the same image as before"
audit_any recycle.done '.name == "pulled'$$'" and .image_id == $v2 and .previous_image_id == $v1 and .reason == "max_age" and .image == $img' --arg v2 "$v2" --arg v1 "$v1" --arg img "$img" || fail "the pull is not audited"
verify_audit
log "pull: true took the new image; without it the image id stayed"
