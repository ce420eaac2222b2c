#!/usr/bin/env bash
# Tracking follows the engine: a container restarted by someone else is
# young again (its deadline moves); one started while the agent runs is
# tracked from its start event and recycled when due.
source "$(dirname "$0")/lib.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
run ev1$$ reaper-test/sleeper:1 sh -c "$loop"
ev1_id=$(cid ev1$$)
simple_config 12s recreate
start_reaper
wait_for 10 "the first list" grep -q "workloads" "$T/reaper.log"
# Restarted by someone else ~3 s after its start: without the event it
# would be recycled 12 s after its first start; with it, not before 12 s
# after the restart.
sleep 2
before=$(date +%s)
docker restart -t 1 ev1$$ >/dev/null
run ev2$$ reaper-test/sleeper:1 sh -c "$loop"
ev2_id=$(cid ev2$$)
wait_for 40 "ev1$$ recycled" audit_any recycle.begin '.id == $id' --arg id "$ev1_id"
begin=$(jq -r 'select(.event == "recycle.begin" and .id == "'"$ev1_id"'") | .ts' "$T/audit.jsonl" | head -1)
t=$(date -d "$begin" +%s)
[ "$t" -ge $((before + 11)) ] || fail "ev1$$ was recycled $((t - before))s after its restart began: its age was not reset"
audit_any recycle.begin '.id == $id and .age_s < 14' --arg id "$ev1_id" || fail "ev1$$'s age at recycle is not counted from its restart"
wait_for 30 "ev2$$ recycled (tracked from its start event)" audit_any recycle.begin '.id == $id' --arg id "$ev2_id"
stop_reaper
verify_audit
log "a restart reset the age; a new container was tracked from its event"
