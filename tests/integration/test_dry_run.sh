#!/usr/bin/env bash
# --dry-run: every decision audited as recycle.planned, nothing changed.
source "$(dirname "$0")/lib.sh"
run d1$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
run d2$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
ids=$(cid d1$$)$(cid d2$$) s1=$(started_at d1$$)
simple_config 1s recreate
sleep 1.5
reaper_once --dry-run || fail "run --once --dry-run exited non-zero"
assert_eq "$ids" "$(cid d1$$)$(cid d2$$)" "containers unchanged"
assert_eq "$s1" "$(started_at d1$$)" "d1 not restarted"
assert_eq 2 "$(audit_count recycle.planned)" "recycle.planned lines"
assert_eq 0 "$(audit_count recycle.begin)" "recycle.begin lines"
audit_any agent.start '.dry_run == true' || fail "agent.start does not say dry run"
# The agent in dry-run mode plans each workload once, not at every tick.
start_reaper --dry-run
wait_for 30 "the second run's plans" sh -c '[ "$(jq -c "select(.event == \"recycle.planned\")" "$0" | wc -l)" -ge 4 ]' "$T/audit.jsonl"
sleep 3 # ticks that must not plan them again
stop_reaper
assert_eq 4 "$(audit_count recycle.planned)" "recycle.planned lines after a second run"
verify_audit
log "dry run changed nothing"
