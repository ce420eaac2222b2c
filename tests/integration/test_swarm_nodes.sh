#!/usr/bin/env bash
# Nodes on a real three-node swarm (tests/lib/swarm.sh), strategy
# drain-replace:
#  1. a worker past its age (its own reaper.max-age label) is drained, its
#     tasks land on the other nodes, the replace action (a script that
#     records its argv and environment, then stops the node's engine as
#     terminating the machine would) runs once, without a shell and with
#     only PATH and the node's REAPER_NODE_* in its environment, and the
#     node is removed from the swarm once down;
#  2. a machine that comes back under the same hostname is a new node; when
#     its replace action fails, the drain is undone: availability active
#     again, its labels as they were, reaper's mark gone (rolled_back true);
#  3. the last active node is never drained;
#  4. an agent stopped while a replaced node has yet to go down leaves it
#     drained, marked as replaced (never drained or replaced again), and
#     the next agent to hold the lease removes it once it is down;
#  5. an agent killed right after the drain (the runner's crash point
#     after-cordon, in test builds): the next start undoes the drain as the
#     audit log names it (recycle.recovered, rolled-back): availability and
#     labels as they were, reaper's mark gone.
source "$(dirname "$0")/lib.sh"
# shellcheck source=../lib/swarm.sh
source "$(dirname "$0")/../lib/swarm.sh"

if ! why=$(swarm_supported); then
  log "SKIP: this machine cannot run a swarm of network namespaces: $why"
  exit 0
fi
on_exit swarm_stop
swarm_start 3 || fail "could not start the swarm"
M=$(swarm_sock 0)

api() { curl -fsS --unix-socket "$SWARM_DIR/n0/docker.sock" "http://localhost/v1.41$1"; }
node_json() { api "/nodes/$1"; }
# Nodes of web's running tasks, one per line.
web_nodes() {
  local f
  f=$(jq -rn '{service: ["web"], "desired-state": ["running"]} | @uri')
  api "/tasks?filters=$f" | jq -r '.[] | select(.Status.State == "running") | .NodeID'
}
web_running() { [ "$(web_nodes | wc -l)" = "$1" ]; }

sdocker 0 service create -d -q --name web --replicas 4 --stop-grace-period 1s \
  reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while sleep 1; do :; done' >/dev/null 2>&1
wait_for 60 "web's 4 tasks running" web_running 4
n2=$(swarm_node_id 2)
on_n2=$(web_nodes | grep -c "^$n2\$" || true)
[ "$on_n2" -ge 1 ] || fail "no task of web on node2 to move (spread: $(web_nodes | sort | uniq -c))"

# The replace action.  It is run as an argv: "eu central" stays one word.
cat >"$T/replace.sh" <<SCRIPT
#!/bin/sh
n=\$(ls $T/ | grep -c '^replace\.[0-9]*\.env\$')
n=\$((n + 1))
printf '%s\n' "\$@" >$T/replace.\$n.argv
env >$T/replace.\$n.env
if [ -f $T/fail ]; then
  echo "cannot terminate \$REAPER_NODE_HOSTNAME"
  exit 3
fi
if [ -f $T/keep-up ]; then
  echo "terminating \$REAPER_NODE_HOSTNAME (later)"
  exit 0
fi
i=\${REAPER_NODE_HOSTNAME#node}
kill "\$(cat $SWARM_DIR/n\$i/pid)"
echo "terminated \$REAPER_NODE_HOSTNAME"
SCRIPT
chmod +x "$T/replace.sh"

config <<YAML
agent:
  listen: ""
  audit_log: $T/audit.jsonl
  resync: 5s
providers:
  - name: cluster
    type: swarm
    endpoint: $M
policies:
  - name: nodes
    match: { provider: cluster, kind: node }
    max_age: 1d
    strategy: drain-replace
    drain_timeout: 30s
    replace: [$T/replace.sh, --region, "eu central"]
YAML

# --- 1. drained, replaced, removed ---------------------------------------
sdocker 0 node update --label-add reaper.max-age=3s --label-add keep=me "$n2" >/dev/null
sleep 3
reaper_once || fail "run --once exited non-zero"

sdocker 0 node ls -q | grep -c >/dev/null "^$n2\$" && fail "node2 ($n2) is still in the swarm"
wait_for 30 "web's 4 tasks running again" web_running 4
web_nodes | grep -c >/dev/null "^$n2\$" && fail "a task of web still runs on node2"
[ -f "$T/replace.1.env" ] || fail "the replace action did not run"
[ -f "$T/replace.2.env" ] && fail "the replace action ran more than once"
assert_eq "$(printf -- '--region\neu central')" "$(cat "$T/replace.1.argv")" "the replace action's argv"
env_of() { sed -n "s/^$1=//p" "$T/replace.1.env"; }
assert_eq "$n2" "$(env_of REAPER_NODE_ID)" "REAPER_NODE_ID"
assert_eq node2 "$(env_of REAPER_NODE_HOSTNAME)" "REAPER_NODE_HOSTNAME"
assert_eq 192.168.213.12 "$(env_of REAPER_NODE_ADDR)" "REAPER_NODE_ADDR"
assert_eq worker "$(env_of REAPER_NODE_ROLE)" "REAPER_NODE_ROLE"
[ -n "$(env_of PATH)" ] || fail "no PATH for the replace action"
# Nothing of reaper's own environment leaks into it.
[ -z "$(env_of DOCKER_HOST)$(env_of HOME)$(env_of REAPER)" ] ||
  fail "the replace action saw reaper's environment: $(cat "$T/replace.1.env")"
audit_any recycle.done '.kind == "node" and .id == $id and .name == "node2" and .strategy == "drain-replace" and .removed == true and .replace.exit_status == 0 and (.replace.output | test("terminated node2")) and .tasks_at_drain >= 1 and .availability_before == "active"' --arg id "$n2" ||
  fail "no recycle.done for node2 with the replace action's outcome"
log "ok: node2 drained ($on_n2 tasks moved), replaced and removed"

# --- 2. a new machine, same hostname; its replace action fails -------------
swarm_node_add 2 || fail "could not add a new node2"
n2b=$(swarm_node_id 2)
[ -n "$n2b" ] && [ "$n2b" != "$n2" ] || fail "the new node2 has the old id $n2"
sdocker 0 node update --label-add reaper.max-age=3s --label-add keep=me "$n2b" >/dev/null
touch "$T/fail"
sleep 3
reaper_once && fail "run --once succeeded though the replace action failed"
[ -f "$T/replace.2.env" ] || fail "the replace action did not run for the new node2"
assert_eq "REAPER_NODE_ID=$n2b" "$(grep '^REAPER_NODE_ID=' "$T/replace.2.env")" "the new node's id"
spec=$(node_json "$n2b" | jq -c .Spec)
assert_eq active "$(jq -r .Availability <<<"$spec")" "availability after the failed replacement"
assert_eq '{"keep":"me","reaper.max-age":"3s"}' "$(jq -cS .Labels <<<"$spec")" "labels after the rollback"
audit_any recycle.failed '.kind == "node" and .id == $id and .rolled_back == true and (.error | test("exit status 3")) and (.replace.output | test("cannot terminate node2"))' --arg id "$n2b" ||
  fail "no recycle.failed, rolled back, for the new node2"
log "ok: a failed replace action undid the drain"

# --- 3. never the last active node ------------------------------------------
n1=$(swarm_node_id 1)
n0=$(swarm_node_id 0)
sdocker 0 node update --availability drain "$n1" >/dev/null
sdocker 0 node update --availability drain "$n0" >/dev/null
rm -f "$T/fail"
before=$(audit_count recycle.failed)
reaper_once && fail "run --once succeeded though node2 is the last active node"
[ -f "$T/replace.3.env" ] && fail "the replace action ran for the last active node"
assert_eq active "$(node_json "$n2b" | jq -r .Spec.Availability)" "the last active node's availability"
audit_any recycle.failed '.id == $id and .rolled_back == true and (.error | test("last active"))' --arg id "$n2b" ||
  fail "no refusal of the last active node in the audit log"
[ "$(audit_count recycle.failed)" -gt "$before" ] || fail "no new recycle.failed line"
verify_audit
log "ok: the last active node is never drained"

# --- 4. stopped while the replaced node has yet to go down ------------------
sdocker 0 node update --availability active "$n1" >/dev/null
sdocker 0 node update --availability active "$n0" >/dev/null
touch "$T/keep-up"
# Short bounds, so that the stop waits little before cancelling.
config <<YAML
agent:
  listen: ""
  audit_log: $T/audit.jsonl
  resync: 3s
providers:
  - name: cluster
    type: swarm
    endpoint: $M
policies:
  - name: nodes
    match: { provider: cluster, kind: node }
    max_age: 1d
    grace: 1s
    health_timeout: 2s
    strategy: drain-replace
    drain_timeout: 5s
    replace: [$T/replace.sh]
  - name: services
    match: { provider: cluster, kind: service }
    max_age: 1h
    grace: 1s
    health_timeout: 5s
    drain_timeout: 1s
YAML
start_reaper
wait_for 60 "the replace action of node2" grep -q "node2: replace action done" "$T/reaper.log"
sleep 1
t0=$SECONDS
stop_reaper
[ $((SECONDS - t0)) -lt 60 ] || fail "the stop took $((SECONDS - t0))s"
audit_any recycle.failed '.id == $id and .rolled_back == false and (.error | test("stays drained"))' --arg id "$n2b" ||
  fail "no recycle.failed saying node2 stays drained"
mark=$(node_json "$n2b" | jq -r '.Spec.Labels["reaper.recycle"]')
assert_eq drain "$(node_json "$n2b" | jq -r .Spec.Availability)" "node2's availability after the stop"
jq -e .replaced_at <<<"$mark" >/dev/null || fail "the mark does not say the replace action ran: $mark"
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" 2>/dev/null
jq -e --arg id "$n2b" '.[] | select(.id == $id) | .excluded and (.reason | test("replace action has run"))' "$T/plan.json" >/dev/null ||
  fail "node2 is not left alone after its replace action: $(cat "$T/plan.json")"

# Another agent, with work due (web), takes the lease; node2's machine
# goes; the agent removes the node.
sdocker 0 service update -d --label-add reaper.max-age=3s web >/dev/null 2>&1
start_reaper
swarm_node_kill 2
gone() { ! sdocker 0 node ls -q | grep -c >/dev/null "^$n2b\$"; }
wait_for 60 "the replaced node2 removed once down" gone
grep -q "node2 ($n2b) was left drained by another agent and is down: removed it" "$T/reaper.log" ||
  fail "the agent did not say it removed node2"
stop_reaper
[ -f "$T/replace.4.env" ] && fail "the replace action ran again"
verify_audit
log "ok: a stop after the replace action leaves the node to be removed once down"

# --- 5. killed right after the drain ----------------------------------------
# (The crash points exist only in test builds, -DREAPER_CRASHPOINTS=ON.)
sdocker 0 service update -d --label-rm reaper.max-age web >/dev/null 2>&1
sdocker 0 node update --label-add reaper.max-age=3s --label-add keep=me "$n1" >/dev/null
rc=0
REAPER_CRASH_AT=after-cordon "$REAPER" run -c "$T/config.yaml" --once >>"$T/reaper.log" 2>&1 || rc=$?
assert_eq 137 "$rc" "exit status of the run killed after the drain"
assert_eq drain "$(node_json "$n1" | jq -r .Spec.Availability)" "node1's availability after the crash"
node_json "$n1" | jq -e '.Spec.Labels["reaper.recycle"]' >/dev/null || fail "no mark on node1 after the crash"
# No longer due: what the next start does is recovery alone.
sdocker 0 node update --label-rm reaper.max-age "$n1" >/dev/null
reaper_once || fail "the run after the crash failed"
spec=$(node_json "$n1" | jq -c .Spec)
assert_eq active "$(jq -r .Availability <<<"$spec")" "node1's availability after recovery"
assert_eq '{"keep":"me"}' "$(jq -cS .Labels <<<"$spec")" "node1's labels after recovery"
audit_any recycle.recovered '.kind == "node" and .id == $id and .action == "rolled-back" and .ok == true' --arg id "$n1" ||
  fail "no recycle.recovered (rolled-back) for node1"
[ -f "$T/replace.4.env" ] && fail "a replace action ran for node1"
verify_audit
log "ok: a crash after the drain is undone at the next start"
