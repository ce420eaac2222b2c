#!/usr/bin/env bash
# One agent per cluster acts (a lease in the swarm's own state, the labels
# of the never-scheduled service reaper-lease): two agents watch the same
# three-node swarm; a service comes due again and again (reaper.max-age 6s);
# exactly one agent recycles it while the other only tracks.  The leader is
# then killed (SIGKILL: it cannot give the lease up) and the other takes
# over once the lease has lapsed, and puts right a drain that a dead agent
# left behind.  The new leader, stopped with SIGTERM, gives the lease up.
source "$(dirname "$0")/lib.sh"
# shellcheck source=../lib/swarm.sh
source "$(dirname "$0")/../lib/swarm.sh"

fail() {
  log "FAIL: $*"
  local a
  for a in a b; do
    echo "--- agent $a's log (last 60 lines):"
    tail -n 60 "$T/$a.log" 2>/dev/null
    echo "--- agent $a's audit log:"
    cat "$T/$a.jsonl" 2>/dev/null
  done
  exit 1
}

if ! why=$(swarm_supported); then
  log "SKIP: this machine cannot run a swarm of network namespaces: $why"
  exit 0
fi
on_exit swarm_stop
swarm_start 3 || fail "could not start the swarm"
M=$(swarm_sock 0)

sdocker 0 service create -d -q --name often --replicas 1 --stop-grace-period 1s \
  --update-monitor 1s -l reaper.max-age=6s \
  reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while sleep 1; do :; done' >/dev/null 2>&1

declare -A PID
start_agent() { # NAME
  cat >"$T/$1.yaml" <<YAML
agent:
  listen: ""
  audit_log: $T/$1.jsonl
  resync: 3s
providers:
  - name: cluster
    type: swarm
    endpoint: $M
policies:
  - name: services
    match: { kind: service }
    max_age: 1h
    health_timeout: 20s
YAML
  "$REAPER" run -c "$T/$1.yaml" >>"$T/$1.log" 2>&1 &
  PID[$1]=$!
  on_exit "kill -9 ${PID[$1]} 2>/dev/null"
}
begins() { jq -c 'select(.event == "recycle.begin")' "$T/$1.jsonl" 2>/dev/null | wc -l; }
dones() { jq -c 'select(.event == "recycle.done")' "$T/$1.jsonl" 2>/dev/null | wc -l; }
lease_holder() {
  sdocker 0 service inspect reaper-lease -f '{{index .Spec.Labels "reaper.lease.holder"}}' 2>/dev/null
}

start_agent a
sleep 1
start_agent b

some_done() { [ $(($(dones a) + $(dones b))) -ge 2 ]; }
wait_for 90 "two recycles of the service by either agent" some_done
if [ "$(begins a)" -gt 0 ]; then leader=a follower=b; else leader=b follower=a; fi
assert_eq 0 "$(begins $follower)" "recycles begun by the follower ($follower)"
grep -q "holds the cluster's lease: it acts" "$T/$leader.log" || fail "the leader never said it holds the lease"
grep -q "holds the cluster's lease (until" "$T/$follower.log" || fail "the follower never said who holds the lease"
holder=$(lease_holder)
[[ $holder == */${PID[$leader]}/* ]] || fail "the lease names '$holder', not agent $leader (pid ${PID[$leader]})"
log "agent $leader leads ($holder), agent $follower follows"

# An agent that died in the middle of a drain left its mark on node1: the
# next agent to take the lease puts the node right.
n1=$(swarm_node_id 1)
sdocker 0 node update --availability drain --label-add keep=me --label-add \
  'reaper.recycle={"holder":"gone/1/000000000000","availability":"active","role":"worker","since":"2026-11-30T00:00:00.000Z"}' \
  "$n1" >/dev/null

# The leader dies without a word; the follower takes over once the lease
# (15 s) lapses, by the engine's clock.
kill -9 "${PID[$leader]}"
wait "${PID[$leader]}" 2>/dev/null || true
killed_at=$SECONDS
assert_eq 0 "$(begins $follower)" "recycles begun by the follower while the leader lived"
follower_acted() { [ "$(dones $follower)" -ge 1 ]; }
wait_for 90 "agent $follower to take over and recycle" follower_acted
grep -q "holds the cluster's lease: it acts" "$T/$follower.log" || fail "the follower never took the lease"
[[ $(lease_holder) == */${PID[$follower]}/* ]] || fail "the lease does not name agent $follower"
log "agent $follower took over $((SECONDS - killed_at))s after the leader was killed"
node1_restored() {
  [ "$(sdocker 0 node inspect "$n1" -f '{{.Spec.Availability}} {{json .Spec.Labels}}')" = 'active {"keep":"me"}' ]
}
wait_for 10 "node1's drain, left by a dead agent, undone" node1_restored
grep -q "node1 ($n1) was left drained by another agent" "$T/$follower.log" ||
  fail "the new leader did not say it undid the dead agent's drain"

# A clean stop gives the lease up at once.
kill -TERM "${PID[$follower]}"
rc=0
wait "${PID[$follower]}" || rc=$?
assert_eq 0 "$rc" "the new leader's exit status after SIGTERM"
assert_eq "" "$(lease_holder)" "the lease's holder after a clean stop"
grep -q "gave up the cluster's lease" "$T/$follower.log" || fail "the stopped leader did not say it gave the lease up"
"$REAPER" verify "$T/$follower.jsonl" >/dev/null || fail "agent $follower's audit log does not verify"
log "ok: one agent acts; the other takes over when it dies"
