#!/usr/bin/env bash
# Services on a real three-node swarm (tests/lib/swarm.sh): a replicated
# service past its age (its own reaper.max-age label) gets every task
# replaced by Swarm under its own UpdateConfig (start-first: never fewer
# running replicas than it asks for), a global service too; a young service
# and one labelled reaper.exclude=true are left alone.  Checked in the
# cluster (new task ids, UpdateStatus completed, ForceUpdate + 1) and in the
# audit log (kind service, the update's state, the tasks before and after).
# A service whose networks were given the way API 1.41 clients did
# (ServiceSpec.Networks, deprecated at 1.44) keeps them and its update
# configuration when reaper writes its spec back, at 1.41 or (with STANDIN,
# tests/integration/run.sh --suite standin-29.0) at 1.52 through a stand-in
# of Engine 29, which folds them into TaskTemplate.Networks and refuses a
# spec that would lose them.
# Reaper killed right after a service's update was sent (the runner's crash
# point after-update, in test builds): the next start follows swarm's
# update until it completes and says so (recycle.recovered, finished),
# without sending a second one.
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
if [ -n "${STANDIN:-}" ]; then
  source "$(dirname "$0")/../lib/standin.sh"
  on_exit standin_stop
  standin_start "$STANDIN" "$SWARM_DIR/n0/docker.sock" "$T/si.sock" || fail "the stand-in did not start"
  M=unix://$T/si.sock
fi

api() { curl -fsS --unix-socket "$SWARM_DIR/n0/docker.sock" "http://localhost/v1.41$1"; }
# Task ids of a service that run now.
running_tasks() {
  local f
  f=$(jq -rn --arg s "$1" '{service: [$s], "desired-state": ["running"]} | @uri')
  api "/tasks?filters=$f" | jq -r '[.[] | select(.Status.State == "running") | .ID] | sort | .[]'
}
# How many tasks of a service have a container running (whatever their
# desired state).
running_count() {
  local f
  f=$(jq -rn --arg s "$1" '{service: [$s]} | @uri')
  api "/tasks?filters=$f" | jq '[.[] | select(.Status.State == "running")] | length'
}

CMD=(sh -c 'trap "exit 0" TERM; while sleep 1; do :; done')
svc() { # NAME [service create options...]
  local name=$1
  shift
  sdocker 0 service create -d -q --name "$name" --stop-grace-period 1s \
    --update-monitor 1s "$@" reaper-test/sleeper:1 "${CMD[@]}" >/dev/null 2>&1
}
svc web --replicas 3 --update-order start-first --update-parallelism 1 \
  -l reaper.max-age=4s -l tier=web
svc everywhere --mode global -l reaper.max-age=4s
svc young --replicas 1
svc pinned --replicas 1 -l reaper.max-age=1s -l reaper.exclude=true
sdocker 0 network create -d overlay --label "$TEST_LABEL" rpt-ov$$ >/dev/null || fail "overlay network"
ov_id=$(sdocker 0 network inspect -f '{{.ID}}' rpt-ov$$)
# As an API 1.41 client writes it: Networks at the top of the spec.
jq -n --arg ov "$ov_id" --arg loop "${CMD[2]}" '{Name: "netted", Labels: {"reaper.max-age": "4s"},
  TaskTemplate: {ContainerSpec: {Image: "reaper-test/sleeper:1", Command: ["sh", "-c", $loop],
    StopGracePeriod: 1000000000}},
  Mode: {Replicated: {Replicas: 1}}, Networks: [{Target: $ov, Aliases: ["nt"]}],
  UpdateConfig: {Parallelism: 1, Order: "stop-first", Monitor: 1000000000, FailureAction: "rollback"}}' >"$T/netted.json"
curl -fsS --unix-socket "$SWARM_DIR/n0/docker.sock" -H 'Content-Type: application/json' \
  -d @"$T/netted.json" http://localhost/v1.41/services/create >/dev/null || fail "create netted"
nets_of() { api /services/netted | jq -c '[(.Spec.Networks // []), (.Spec.TaskTemplate.Networks // [])] | add | map({Target, Aliases})'; }
nets_before=$(nets_of)
upd_before=$(api /services/netted | jq -c .Spec.UpdateConfig)
assert_eq "[{\"Target\":\"$ov_id\",\"Aliases\":[\"nt\"]}]" "$nets_before" "netted's networks before"

all_running() {
  [ "$(running_count web)" = 3 ] && [ "$(running_count everywhere)" = 3 ] &&
    [ "$(running_count young)" = 1 ] && [ "$(running_count pinned)" = 1 ] &&
    [ "$(running_count netted)" = 1 ]
}
wait_for 60 "every service's tasks running" all_running
web_before=$(running_tasks web)
glob_before=$(running_tasks everywhere)
young_before=$(running_tasks young)
pinned_before=$(running_tasks pinned)
force_before=$(api /services/web | jq .Spec.TaskTemplate.ForceUpdate)

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
  - name: services
    match: { provider: cluster, kind: service }
    max_age: 1h
    health_timeout: 20s
YAML

# The plan shows services (and nodes) with their kind.
sleep 4
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" 2>>"$T/reaper.log" || fail "plan failed"
jq -e '[.[] | select(.kind == "service")] | length == 5' "$T/plan.json" >/dev/null ||
  fail "plan does not list the five services: $(cat "$T/plan.json")"
jq -e '[.[] | select(.kind == "node")] | length == 3' "$T/plan.json" >/dev/null ||
  fail "plan does not list the three nodes"

# While reaper runs, count web's running replicas: start-first never goes
# below the three it asks for.
(
  while :; do
    running_count web 2>/dev/null || true
    sleep 0.1
  done
) >"$T/web-count" &
watcher=$!
on_exit "kill $watcher 2>/dev/null"

reaper_once || fail "run --once exited non-zero"
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null || true

# In the cluster: every task of web and of the global service is new.
web_after=$(running_tasks web)
glob_after=$(running_tasks everywhere)
[ "$(wc -l <<<"$web_after")" = 3 ] || fail "web runs $(wc -l <<<"$web_after") tasks, not 3"
[ -z "$(comm -12 <(echo "$web_before") <(echo "$web_after"))" ] ||
  fail "web kept tasks: before $web_before, after $web_after"
[ -z "$(comm -12 <(echo "$glob_before") <(echo "$glob_after"))" ] ||
  fail "the global service kept tasks"
assert_eq "$young_before" "$(running_tasks young)" "the young service's tasks"
assert_eq "$pinned_before" "$(running_tasks pinned)" "the excluded service's tasks"
assert_eq completed "$(api /services/web | jq -r .UpdateStatus.State)" "web's UpdateStatus"
assert_eq $((force_before + 1)) "$(api /services/web | jq .Spec.TaskTemplate.ForceUpdate)" "web's ForceUpdate"
# Its spec is otherwise what it was: labels, update order.
assert_eq start-first "$(api /services/web | jq -r .Spec.UpdateConfig.Order)" "web's update order"
assert_eq web "$(api /services/web | jq -r '.Spec.Labels.tier')" "web's labels"
min=$(sort -n "$T/web-count" | head -n1)
[ -n "$min" ] && [ "$min" -ge 3 ] || fail "web ran only $min replicas at one moment during its update"
log "web's running replicas during the update: min $min, max $(sort -n "$T/web-count" | tail -n1)"

# In the audit log.
web_id=$(api /services/web | jq -r .ID)
audit_any recycle.done '.kind == "service" and .name == "web" and .id == $id and .strategy == "force-update" and .update_state == "completed" and .tasks_replaced == 3 and .provider == "cluster" and .policy == "services" and .max_age_s == 4' --arg id "$web_id" ||
  fail "no recycle.done for web with its update's outcome"
audit_any recycle.done '.name == "web" and (.tasks_after | sort) == $after' --argjson after "$(jq -Rn '[inputs] | sort' <<<"$web_after")" ||
  fail "the audit line's tasks_after are not web's tasks"
audit_any recycle.done '.name == "everywhere" and .update_state == "completed"' ||
  fail "no recycle.done for the global service"
# netted: renewed, its networks and update configuration as they were.
audit_any recycle.done '.name == "netted" and .update_state == "completed"' ||
  fail "no recycle.done for netted"
assert_eq "$nets_before" "$(nets_of)" "netted's networks after reaper wrote its spec back"
assert_eq "$upd_before" "$(api /services/netted | jq -c .Spec.UpdateConfig)" "netted's update configuration"
jq -e '.Order == "stop-first" and .FailureAction == "rollback"' <<<"$upd_before" >/dev/null ||
  fail "netted's update configuration was not as created: $upd_before"
assert_eq 3 "$(audit_count recycle.begin)" "recycle.begin lines (web, everywhere and netted only)"
if [ -n "${STANDIN:-}" ]; then
  n=$(grep -cE "POST $API_PREFIX/services/[^ ]+/update" "$T/si.sock.log" || true)
  [ "$n" -ge 3 ] || fail "$n service updates at $API_PREFIX through the stand-in, not 3"
  log "service updates written at $API_PREFIX through Engine $STANDIN's stand-in: $n"
fi
audit_any recycle.begin '.name == "young" or .name == "pinned"' && fail "a young or excluded service was recycled"
verify_audit
log "ok: services renewed by swarm under their own update configuration"

# --- killed right after the update was sent ---------------------------------
# (The crash points exist only in test builds, -DREAPER_CRASHPOINTS=ON.)
mv "$T/audit.jsonl" "$T/audit-renewals.jsonl"
svc late --replicas 1
late_running() { [ "$(running_count late)" = 1 ]; }
wait_for 60 "late's task running" late_running
late_before=$(running_tasks late)
late_force=$(api /services/late | jq .Spec.TaskTemplate.ForceUpdate)
late_config() { # MAX-AGE
  config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers:
  - { name: cluster, type: swarm, endpoint: $M }
policies:
  - { name: late, match: { provider: cluster, kind: service, name: late }, max_age: $1, grace: 1s, health_timeout: 20s }
YAML
}
late_config 1s
sleep 2
rc=0
REAPER_CRASH_AT=after-update "$REAPER" run -c "$T/config.yaml" --once >>"$T/reaper.log" 2>&1 || rc=$?
assert_eq 137 "$rc" "exit status of the run killed after the update was sent"
assert_eq $((late_force + 1)) "$(api /services/late | jq .Spec.TaskTemplate.ForceUpdate)" "late's ForceUpdate after the crash"
assert_eq 1 "$(audit_count recycle.begin)" "recycle.begin lines before the crash"
assert_eq 0 "$(audit_count recycle.done)" "recycle.done lines before the crash"
# No longer due: what the next start does is recovery alone.
late_config 1h
reaper_once || fail "the run after the crash failed"
late_id=$(api /services/late | jq -r .ID)
audit_any recycle.recovered '.kind == "service" and .id == $id and .action == "finished" and .ok == true and .replacement_id == $id and (.detail | test("update of the service"))' --arg id "$late_id" ||
  fail "no recycle.recovered (finished) for late: $(audit_events recycle.recovered)"
assert_eq completed "$(api /services/late | jq -r .UpdateStatus.State)" "late's UpdateStatus after recovery"
assert_eq $((late_force + 1)) "$(api /services/late | jq .Spec.TaskTemplate.ForceUpdate)" "late's ForceUpdate after recovery (one update)"
[ "$(running_tasks late)" != "$late_before" ] || fail "late still runs its old task"
assert_eq 0 "$(audit_events recycle.step | jq -s '[.[] | select(.recovery == true)] | length')" "steps announced by recovery (it only waits)"
verify_audit
log "ok: a crash after the update was sent: recovery followed swarm's update to its end"
