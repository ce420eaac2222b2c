#!/usr/bin/env bash
# Tracking follows the engine: a container restarted by someone else is
# young again (its deadline moves); one started while the agent runs is
# tracked; one removed is forgotten; the engine's own restart is survived.
source "$(dirname "$0")/lib.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
run ev1$$ reaper-test/sleeper:1 sh -c "$loop"
simple_config 6s recreate
start_reaper
wait_for 10 "the first list" grep -q "workloads" "$T/reaper.log"
# Restarted by someone else at ~4 s: without the event it would be recycled
# at 6 s; with it, not before 4+6 s.
sleep 4
docker restart -t 1 ev1$$ >/dev/null
restarted=$(date +%s)
run ev2$$ reaper-test/sleeper:1 sh -c "$loop"
ev2_id=$(cid ev2$$)
wait_for 20 "ev2$$ recycled (tracked from its start event)" audit_any recycle.begin '.id == $id' --arg id "$ev2_id"
begin_ev1=$(jq -r 'select(.event == "recycle.begin" and .name == "ev1'$$'") | .ts' "$T/audit.jsonl" | head -1)
if [ -n "$begin_ev1" ]; then
  t=$(date -d "$begin_ev1" +%s)
  [ "$t" -ge $((restarted + 5)) ] || fail "ev1$$ was recycled $((t - restarted))s after its restart: its age was not reset"
fi
stop_reaper
verify_audit
log "restart reset the age; a new container was tracked from its event"
