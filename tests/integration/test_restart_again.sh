#!/usr/bin/env bash
# A workload recycled with `restart` keeps its id and starts a new life: that
# life is recycled again at its own max age (the recycle that restarted it
# must not mark the new life as handled).
source "$(dirname "$0")/lib.sh"
run again$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
id=$(cid again$$)
simple_config 3s restart
start_reaper
wait_for 40 "two restarts of again$$" sh -c "[ \"\$(grep -c '\"recycle.done\"' '$T/audit.jsonl')\" -ge 2 ]"
stop_reaper
assert_eq 1 "$(audit_events recycle.done | jq -r .id | sort -u | wc -l)" "one container id throughout"
assert_eq "$id" "$(audit_events recycle.done | jq -r .id | sort -u)" "the id"
lives=$(audit_events recycle.begin | jq -r .started_at | sort -u | wc -l)
begins=$(audit_count recycle.begin)
assert_eq "$begins" "$lives" "one recycle per life"
verify_audit
log "restarted $begins times, once per life"
