#!/usr/bin/env bash
# What is Podman's own, through the docker provider (the podman suite of
# tests/integration/run.sh runs this against a private Podman 4.3):
#  - plan names the engine and the API version it negotiated;
#  - tracking follows podman's events: a rename (no oldName in it) and a
#    removal ("remove", where Docker says "destroy");
#  - a recreate keeps the addresses a container has (podman's inspect does
#    not say which were fixed: a static IP and a MAC set at create), and
#    start-first therefore falls back to stop-first, saying why; a container
#    without a network is recycled start-first;
#  - a container that podman generated a systemd unit for is noted in plan,
#    and still recycled (a label never exempts a workload);
#  - a swarm provider on podman fails, saying that podman has no swarm.
source "$(dirname "$0")/lib.sh"
[ "$ENGINE_KIND" = podman ] || fail "run me against podman (tests/integration/run.sh --suite podman)"
SOCK=${DOCKER_HOST#unix://}
api() { curl -fsS --unix-socket "$SOCK" "http://localhost/v1.41$1"; }
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'

docker network create --label "$TEST_LABEL" --subnet 172.30.7.0/24 rpt-pm$$ >/dev/null
# A static IP and a MAC address, set at create as a client of the API does
# (the docker CLI's --mac-address needs API 1.44 for a network's MAC).
jq -n --arg loop "$loop" --arg t "$$" --arg net "rpt-pm$$" '{
  Image: "reaper-test/sleeper:1", Cmd: ["sh", "-c", $loop],
  Labels: {"reaper-test": $t, case: "fixed", PODMAN_SYSTEMD_UNIT: "container-fixed.service"},
  HostConfig: {NetworkMode: $net},
  NetworkingConfig: {EndpointsConfig: {($net): {
    IPAMConfig: {IPv4Address: "172.30.7.20"}, MacAddress: "02:00:00:00:70:20"}}}}' >"$T/create.json"
curl -fsS --unix-socket "$SOCK" -H 'Content-Type: application/json' -d @"$T/create.json" \
  "http://localhost/v1.41/containers/create?name=fixed$$" >/dev/null || fail "create fixed$$"
docker start fixed$$ >/dev/null
run alone$$ -l case=alone --network none reaper-test/sleeper:1 sh -c "$loop"
run tmp$$ -l case=tmp -l reaper.exclude=true reaper-test/sleeper:1 sh -c "$loop"
fixed_id=$(cid fixed$$) alone_id=$(cid alone$$)
assert_eq "172.30.7.20 02:00:00:00:70:20" \
  "$(api "/containers/fixed$$/json" | jq -r ".NetworkSettings.Networks[\"rpt-pm$$\"] | \"\(.IPAddress) \(.MacAddress)\"")" \
  "fixed$$'s addresses"

# 1. plan: the engine and the version; the systemd unit noted.
simple_config 1h recreate <<'YAML'
    order: start-first
YAML
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.txt" 2>"$T/plan.err" || { cat "$T/plan.err"; fail "plan failed"; }
cat "$T/plan.txt"
grep -qE '^local +docker +Podman Engine 4\.[0-9.]+ +1\.41 \(negotiated' "$T/plan.txt" ||
  fail "plan does not name Podman and API 1.41"
grep -E "^local +container +fixed$$ " "$T/plan.txt" | grep -c >/dev/null 'note: systemd unit container-fixed.service runs it' ||
  fail "plan does not note fixed$$'s systemd unit"
grep -E "^local +container +fixed$$ " "$T/plan.txt" | grep -c >/dev/null 'recreate at' ||
  fail "the systemd unit's label exempted fixed$$"

# 2. tracking: a rename and a removal, as podman reports them.
PORT=$(free_port)
sed -i "s|^  listen: \"\"|  listen: 127.0.0.1:$PORT|" "$T/config.yaml"
start_reaper
status() { curl -fsS --max-time 5 "http://127.0.0.1:$PORT/status"; }
tracked() { status | jq -e --arg n "$1" '.workloads | any(.name == $n)' >/dev/null; }
wait_for 30 "reaper to track tmp$$" tracked tmp$$
docker rename tmp$$ moved$$
wait_for 10 "the rename to reach reaper" tracked moved$$
tracked tmp$$ && fail "the old name tmp$$ is still tracked"
docker rm -f moved$$ >/dev/null
wait_for 10 "the removal to reach reaper" sh -c "! curl -fsS --max-time 5 http://127.0.0.1:$PORT/status | jq -e '.workloads | any(.name == \"moved$$\")'"
stop_reaper

# 3. recycles: fixed$$ keeps its addresses (stop-first, saying why);
# alone$$ (no network) goes start-first.
simple_config 2s recreate <<'YAML'
    order: start-first
    max_unavailable: 2
YAML
sleep 2
reaper_once || fail "run --once exited non-zero"
new_fixed=$(cid fixed$$) new_alone=$(cid alone$$)
[ "$new_fixed" != "$fixed_id" ] || fail "fixed$$ was not recycled"
[ "$new_alone" != "$alone_id" ] || fail "alone$$ was not recycled"
running fixed$$ && running alone$$ || fail "a replacement is not running"
assert_eq "172.30.7.20 02:00:00:00:70:20" \
  "$(api "/containers/fixed$$/json" | jq -r ".NetworkSettings.Networks[\"rpt-pm$$\"] | \"\(.IPAddress) \(.MacAddress)\"")" \
  "fixed$$'s addresses after the recycle"
assert_eq container-fixed.service "$(docker inspect -f '{{index .Config.Labels "PODMAN_SYSTEMD_UNIT"}}' fixed$$)" \
  "fixed$$'s label"
audit_any recycle.done '.id == $id and .order == "stop-first" and (.order_fallback | test("static IP"))' \
  --arg id "$fixed_id" || fail "fixed$$'s fallback to stop-first not audited"
audit_any recycle.done '.id == $id and .order == "start-first"' --arg id "$alone_id" ||
  fail "alone$$ was not recycled start-first"
[ -z "$(docker ps -aq --filter name=reaper-old)" ] || fail "a -reaper-old container was left behind"
verify_audit

# 4. a swarm provider on podman: a clear error, not a crash.
cat >"$T/swarm.yaml" <<YAML
agent: { listen: "", audit_log: $T/swarm-audit.jsonl }
providers: [ { name: cluster, type: swarm, endpoint: "$REAPER_ENDPOINT" } ]
policies: [ { name: s, match: { kind: service }, max_age: 1h } ]
YAML
rc=0
"$REAPER" plan -c "$T/swarm.yaml" >"$T/swarm.out" 2>"$T/swarm.err" || rc=$?
cat "$T/swarm.err"
assert_eq 1 "$rc" "plan's exit status with a swarm provider on podman"
grep -q "(Podman Engine 4.*) is not part of a swarm.*podman has no swarm" "$T/swarm.err" ||
  fail "plan's error does not say podman has no swarm"
log "podman: engine named, rename and removal followed, addresses kept, start-first without a network, swarm refused"
