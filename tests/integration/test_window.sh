#!/usr/bin/env bash
# A maintenance window holds a due recycle back until it opens (plan says
# when); past hard_max_age the window no longer holds it.
source "$(dirname "$0")/lib.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
run soft$$ -l kind=soft reaper-test/sleeper:1 sh -c "$loop"
run hard$$ -l kind=hard reaper-test/sleeper:1 sh -c "$loop"
soft_id=$(cid soft$$)
# A window that opens in two hours (UTC), every day, for one hour.
open_h=$(date -u -d '+2 hours' +%H) close_h=$(date -u -d '+3 hours' +%H)
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - name: soft
    match: { labels: { kind: soft, reaper-test: "$$" } }
    max_age: 1s
    window: { days: [mon, tue, wed, thu, fri, sat, sun], start: "$open_h:00", end: "$close_h:00", tz: UTC }
  - name: hard
    match: { labels: { kind: hard, reaper-test: "$$" } }
    max_age: 1s
    hard_max_age: 15s
    grace: 2s
    window: { days: [mon, tue, wed, thu, fri, sat, sun], start: "$open_h:00", end: "$close_h:00", tz: UTC }
YAML
sleep 1.5
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" || fail "plan failed"
want=$(date -u -d '+2 hours' +%Y-%m-%dT%H):00:00.000Z
assert_eq "$want" "$(jq -r '.[] | select(.name == "soft'$$'") | .due' "$T/plan.json")" "soft's recycle moves to the window's opening"
reaper_once || fail "run --once (window closed) failed"
assert_eq 0 "$(audit_count recycle.begin)" "recycles while the window is closed, before hard_max_age"
# Wait until hard$$ is past its ceiling (15 s after its start).
hard_start=$(date -d "$(started_at hard$$)" +%s)
while [ "$(date +%s)" -le $((hard_start + 16)) ]; do sleep 0.5; done
reaper_once || fail "run --once (past hard_max_age) failed"
assert_eq 1 "$(audit_count recycle.begin)" "recycles once hard_max_age passed"
assert_eq hard$$ "$(audit_events recycle.begin | jq -r .name)" "the hard-expired one"
assert_eq "$soft_id" "$(cid soft$$)" "soft$$ untouched"
verify_audit
log "the window held soft$$ back; hard_max_age overrode it for hard$$"
