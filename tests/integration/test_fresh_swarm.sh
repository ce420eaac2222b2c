#!/usr/bin/env bash
# Fresh content for swarm services: swarm pins a service's image to the
# digest it resolved at create ("REF@sha256:..."); a new digest pushed under
# the service's tag makes it due (reason update), and reaper rolls it out
# through one service update (the image pinned to the new digest, with
# ForceUpdate + 1: Swarm replaces the tasks under the service's own update
# configuration).  A digest whose tasks fail their health check is rolled
# back by Swarm (its failure action) and quarantined; the service keeps the
# content that works.  A one-node swarm (tests/lib/swarm.sh), whose node
# and the registry share a network namespace (so that both reaper and the
# node reach it on 127.0.0.1, as insecure loopback registries are).
source "$(dirname "$0")/lib.sh"
# shellcheck source=../lib/swarm.sh
source "$(dirname "$0")/../lib/swarm.sh"
lib=$(cd "$(dirname "$0")/../lib" && pwd)
source "$lib/registry.sh"
source "$lib/fresh.sh"

if ! why=$(swarm_supported); then
  log "SKIP: this machine cannot run a swarm of network namespaces: $why"
  exit 0
fi
on_exit swarm_stop
swarm_start 1 || fail "could not start the swarm"
NS=/var/run/netns/${SWARM_TAG}n0
innet() { nsenter --net="$NS" "$@"; }
port=$(fresh_port 18)
REG=127.0.0.1:$port
mkdir -p "$T/registry"
cat >"$T/registry.yml" <<YAML
version: 0.1
storage: { filesystem: { rootdirectory: $T/registry } }
http: { addr: $REG }
log: { level: error }
YAML
# nsenter itself, not innet: $! must be the process that becomes the
# registry (a function in the background is a subshell, and killing it
# would leave the registry running after the test).
nsenter --net="$NS" docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
regpid=$!
on_exit "kill $regpid 2>/dev/null"
wait_for 10 "the registry" innet curl -fsS "http://$REG/v2/"

IMG=$REG/rpt/svc:1
# push VERSION [DOCKERFILE_LINES]: built and pushed on the node; its digest.
spush() {
  printf 'FROM reaper-test/sleeper:1\nLABEL version=%s\n%s\n' "$1" "${2:-}" |
    DOCKER_BUILDKIT=0 sdocker 0 build -q -t "$IMG" - >/dev/null 2>&1 || return 1
  sdocker 0 push -q "$IMG" >/dev/null || return 1
  sdocker 0 image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$IMG" | sed -n "s|^${IMG%:*}@||p" | head -n 1
}
healthy='HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["/bin/true"]'
broken='HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["/bin/false"]'
d1=$(spush 1 "$healthy") || fail "push v1"
sdocker 0 service create -d -q --name svc$$ --replicas 2 --stop-grace-period 1s \
  --update-monitor 3s --update-failure-action rollback --update-parallelism 1 \
  --update-order start-first "$IMG" sh -c 'trap "exit 0" TERM; while sleep 1; do :; done' >/dev/null ||
  fail "service create"
api() { curl -fsS --unix-socket "$SWARM_DIR/n0/docker.sock" "http://localhost/v1.41$1"; }
spec_image() { api /services/svc$$ | jq -r .Spec.TaskTemplate.ContainerSpec.Image; }
assert_eq "$IMG@$d1" "$(spec_image)" "swarm pinned the service to v1"
running() { [ "$(api "/tasks?filters=$(jq -rn --arg s svc$$ '{service: [$s], "desired-state": ["running"]} | @uri')" |
  jq '[.[] | select(.Status.State == "running")] | length')" = 2 ]; }
wait_for 60 "svc's tasks running" running

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: cluster, type: swarm, endpoint: "$(swarm_sock 0)" } ]
policies:
  - name: services
    match: { provider: cluster, kind: service }
    max_age: 1h
    health_timeout: 30s
    update: { check: 1s, max_failures: 1 }
YAML
# reaper in the node's network namespace: the registry is its 127.0.0.1 too.
nsenter --net="$NS" -F "$REAPER" run -c "$T/config.yaml" >>"$T/reaper.log" 2>&1 &
REAPER_PID=$!
wait_for 30 "v1 seen" audit_any image.seen '.digest == $d and .source == "workload"' --arg d "$d1"

# v2: rolled out by a service update.
d2=$(spush 2 "$healthy") || fail "push v2"
wait_for 90 "svc on v2" audit_any recycle.done '.kind == "service" and .image_digest == $d' --arg d "$d2"
audit_any recycle.done '.kind == "service" and .reason == "update" and .previous_image_digest == $d1 and .image == $r and .service_image == ($r + "@" + $d2)' \
  --arg d1 "$d1" --arg d2 "$d2" --arg r "$IMG" || fail "svc's recycle.done: $(audit_events recycle.done)"
audit_any recycle.step '.kind == "service" and .step == "pull" and .image_digest == $d' --arg d "$d2" || fail "no pull step"
assert_eq "$IMG@$d2" "$(spec_image)" "svc's image after the update"
assert_eq completed "$(api /services/svc$$ | jq -r .UpdateStatus.State)" "svc's UpdateStatus"
log "a new digest rolled out to a service by its update"

# v3: its tasks never become healthy; Swarm rolls the update back.
d3=$(spush 3 "$broken") || fail "push v3"
wait_for 120 "v3's quarantine" audit_any image.quarantined '.digest == $d' --arg d "$d3"
audit_any recycle.failed '.kind == "service" and .reason == "update" and .image_digest == $d and .rolled_back' --arg d "$d3" ||
  fail "the failed update: $(audit_events recycle.failed)"
wait_for 60 "svc back on v2" bash -c "[ \"\$(curl -fsS --unix-socket $SWARM_DIR/n0/docker.sock http://localhost/v1.41/services/svc$$ | jq -r .Spec.TaskTemplate.ContainerSpec.Image)\" = \"$IMG@$d2\" ]"
sleep 4
assert_eq 1 "$(audit_jq --arg d "$d3" '[.[] | select(.event == "recycle.begin" and .image_digest == $d)] | length')" "updates tried into v3"
kill -TERM "$REAPER_PID"
rc=0; wait "$REAPER_PID" || rc=$?
[ "$rc" = 0 ] || { tail -n 60 "$T/reaper.log"; fail "reaper's exit status: $rc"; }
REAPER_PID=
verify_audit
log "a digest Swarm rolled back was quarantined; the service kept v2"
