#!/usr/bin/env bash
# Crash recovery on bad answers, through tests/lib/faultproxy.py in front of
# the real dockerd: a recycle left half done (the old container renamed
# NAME-reaper-old beside its running replacement, as a crash leaves it),
# and the answer recovery looks at the old container in is first JSON of
# the wrong shape, then not JSON.  Recovery must not decide on such an
# answer (the old container would look gone): it fails, says why, writes
# nothing, reaper acts on nothing of that provider, and the next attempt
# finishes the recycle.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/faults.sh"

# What a crash between "start the replacement" and "remove the old one"
# leaves: reaper killed there (a crash point, in the test build), so that
# the audit log shows the recycle begun and never ended.  Recovery looks at
# the old container (an inspect) before it decides: that answer is first
# of the wrong shape (a list), then not JSON.
run w$$ reaper-test/sleeper:1 sh -c "$loop"
old_id=$(cid w$$)
policy_age() {
  config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "unix://$T/p.sock" } ]
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: $1, grace: 1s }
YAML
}
policy_age 1s
sleep 1.5
rc=0
REAPER_CRASH_AT=after-start-new "$REAPER" run -c "$T/config.yaml" --once >>"$T/reaper.log" 2>&1 || rc=$?
assert_eq 137 "$rc" "the crashed run's exit status (SIGKILL)"
new_id=$(cid w$$)
[ "$new_id" != "$old_id" ] || fail "no replacement was started before the crash"
assert_eq "/w$$-reaper-old" "$(docker inspect -f '{{.Name}}' "$old_id")" "the old container's name after the crash"
policy_age 1h
OLD="GET /v[0-9.]+/containers/$old_id/json"
fault '{"rules": [{"match": "'"$OLD"'", "fault": "shape", "shape": "object", "count": 1},
                  {"match": "'"$OLD"'", "fault": "nonjson", "count": 1}]}'
start_reaper
wait_for 30 "the recycle finished by recovery" audit_any recycle.recovered '.id == $id and .ok' --arg id "$old_id"
for why in "the answer has no State" "not JSON"; do
  grep -q "crash recovery failed, acting on nothing of it: .*$why" "$T/reaper.log" ||
    fail "no failed recovery saying '$why'"
done
# Recovery decided only once, on a good list.
assert_eq 1 "$(audit_count recycle.recovered)" "recycle.recovered lines"
audit_any recycle.recovered '.action == "finished" and .replacement_id == $new' --arg new "$new_id" ||
  fail "recovery did not finish the recycle with the running replacement"
wait_for 10 "the old container removed" sh -c "! docker inspect $old_id >/dev/null 2>&1"
assert_eq "$new_id" "$(cid w$$)" "the container named w$$"
assert_eq 1 "$(docker ps -q --filter "name=^/w$$" | wc -l)" "containers named w$$*"
kill -0 "$REAPER_PID" || fail "reaper died"
stop_reaper
no_sanitizer_report
verify_audit
grep -E "WARN|ERROR|recover" "$T/reaper.log" | cut -c1-200
log "recovery refused two bad answers and finished the recycle on the third"
