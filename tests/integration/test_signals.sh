#!/usr/bin/env bash
# SIGTERM in the middle of a recycle: the recycle finishes (nothing lost),
# agent.stop is written, exit 0.  SIGHUP with a broken file: the old
# configuration stays (and the rejection is audited); with a good file the
# new policy applies at once.
source "$(dirname "$0")/lib.sh"
# A container that takes ~3 s to stop: the recycle is in flight for a while.
run slow$$ reaper-test/sleeper:1 sh -c 'trap "sleep 3; exit 0" TERM; while :; do sleep 0.2; done'
slow_id=$(cid slow$$)
GRACE=10s simple_config 1s recreate
sleep 1.2
start_reaper
wait_for 10 "the recycle to begin" grep -q recycle.begin "$T/audit.jsonl"
sleep 0.5
kill -TERM "$REAPER_PID"
rc=0; wait "$REAPER_PID" || rc=$?; REAPER_PID=
assert_eq 0 "$rc" "exit status after SIGTERM"
assert_eq 1 "$(audit_count recycle.done)" "the recycle in flight finished"
assert_eq 1 "$(audit_count agent.stop)" "agent.stop lines"
[ "$(tail -n1 "$T/audit.jsonl" | jq -r .event)" = agent.stop ] || fail "agent.stop is not the last line"
running slow$$ || fail "slow$$ is not running"
[ "$(cid slow$$)" != "$slow_id" ] || fail "slow$$ was not replaced"
[ "$(docker ps -aq --filter label=reaper-test=$$ | wc -l)" = 1 ] || fail "not exactly one container left"
verify_audit

# SIGHUP: a broken file keeps the old policy.
: >"$T/reaper.log"
run young$$ -l reaper.max-age=1h reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
# A label lengthens max_age only up to the policy's hard_max_age.
simple_config 1d recreate <<<"    hard_max_age: 2d"
start_reaper
wait_for 10 "the agent to list" grep -q "workloads" "$T/reaper.log"
cp "$T/config.yaml" "$T/good.yaml"
sed 's/max_age: 1d/max_age: -5m/' "$T/good.yaml" >"$T/config.yaml"
bad_line=$(grep -n 'max_age: -5m' "$T/config.yaml" | cut -d: -f1)
kill -HUP "$REAPER_PID"
wait_for 5 "the reload to be rejected" grep -q "reload rejected" "$T/reaper.log"
grep -q "config.yaml:$bad_line:14" "$T/reaper.log" || fail "the rejection does not name FILE:LINE:COL"
# The log line may come before the audit line is on disk (the audit
# writer fsyncs off the loop): waited for, not raced.
wait_for 5 "the rejected reload in the audit log" audit_any config.reload '.result == "rejected"'
kill -0 "$REAPER_PID" || fail "reaper died on a bad reload"
# Nothing was recycled under the broken file (young is 1h by label, the
# others 1d by policy).
assert_eq 0 "$(jq -s '[.[] | select(.event == "recycle.begin" and .name != "slow'$$'")] | length' "$T/audit.jsonl")" "recycles after the bad reload"
# A good file: max age 1s applies at once, but the label still says 1h.
sed 's/max_age: 1d/max_age: 1s/' "$T/good.yaml" >"$T/config.yaml"
run now$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
now_id=$(cid now$$)
kill -HUP "$REAPER_PID"
wait_for 15 "now$$ recycled after the reload" audit_any recycle.done '.id == $id' --arg id "$now_id"
audit_any config.reload '.result == "applied"' || fail "applied reload not audited"
audit_any recycle.begin '.name == "young'$$'"' && fail "young$$ (reaper.max-age=1h) was recycled"
stop_reaper
verify_audit
log "SIGTERM finished the recycle in flight; SIGHUP kept the old config on a bad file"
