#!/usr/bin/env bash
# A slow engine and lost answers, through tests/lib/faultproxy.py in front
# of the real dockerd:
#   - a /_ping that answers after reaper's timeout: said, retried;
#   - every answer 700 ms late during a whole recycle: it completes;
#   - the answer to "create the replacement" lost after the engine made it
#     (libcurl sends it again: the engine says the name is taken): the
#     recycle fails, its leftovers are put right by recovery (one container
#     of that name, nothing renamed left), and the retry succeeds;
#   - the inspect that starts a recycle reaches the engine only after the
#     container was stopped by someone: nothing is done (no replacement
#     started in its place).
# No recycle completes twice for one start, no crash, a verifiable log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/faults.sh"
ended() { # EVENT ID: the audit log has a line of EVENT for ID
  grep "\"$1\"" "$T/audit.jsonl" 2>/dev/null | grep -c >/dev/null "$2"
}
named() { docker ps -q --filter "name=^/$1\$" | wc -l; }

run d$$ reaper-test/sleeper:1 sh -c "$loop"
run e$$ reaper-test/sleeper:1 sh -c "$loop"
run f$$ reaper-test/sleeper:1 sh -c "$loop"
d_id=$(cid d$$)
e_id=$(cid e$$)
f_id=$(cid f$$)
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 5s }
providers: [ { name: local, type: docker, endpoint: "unix://$T/p.sock" } ]
policies:
  # Replacements (they keep the name) are left alone.
  - { name: replaced, match: { labels: { reaper-test: "$$", reaper.replaces: "*" } }, max_age: 1h }
  - { name: d, match: { name: "d$$" }, max_age: 16s, jitter: 0%, grace: 2s, health_timeout: 20s }
  - { name: e, match: { name: "e$$" }, max_age: 34s, jitter: 0%, grace: 2s, health_timeout: 20s }
  - { name: f, match: { name: "f$$" }, max_age: 50s, jitter: 0%, grace: 2s, health_timeout: 20s }
YAML

log "1. a /_ping slower than reaper's timeout"
fault '{"rules": [{"match": "GET /_ping", "fault": "delay", "ms": 12000, "count": 1}]}'
start_reaper
wait_for 25 "the first list" grep -q "workloads" "$T/reaper.log"
grep -q "unreachable: GET /_ping: Timeout was reached" "$T/reaper.log" || fail "the ping timeout was not said"

log "2. every answer 700 ms late while d$$ is recycled"
fault '{"fault": "delay", "ms": 700}'
wait_for 40 "d$$'s recycle to end" sh -c "grep -E '\"recycle.(done|failed)\"' '$T/audit.jsonl' | grep -c >/dev/null '$d_id'"
fault '{"fault": "pass"}'
ended recycle.done "$d_id" || fail "d$$'s recycle failed with slow answers"
[ "$(grep -c 'delay$' "$T/proxy.log")" -ge 10 ] || fail "the proxy delayed only $(grep -c 'delay$' "$T/proxy.log") answers"

log "3. the answer to e$$'s create lost"
# With it already, the rule of step 4: f$$'s deadline may come while e$$'s
# retry is still under way on a busy machine.
fault '{"rules": [{"match": "POST /v[0-9.]+/containers/create\\?name=e'$$'$", "fault": "drop_reply", "count": 1},
  {"match": "GET /v[0-9.]+/containers/'"$f_id"'/json$", "fault": "stall", "ms": 10000, "count": 1}]}'
wait_for 30 "e$$'s recycle to fail" ended recycle.failed "$e_id"
wait_for 20 "recovery of what it left" ended recycle.recovered "$e_id"
wait_for 40 "e$$ recycled on retry" ended recycle.done "$e_id"
assert_eq 1 "$(named e$$)" "running containers named e$$"
[ -z "$(docker ps -aq --filter name=e$$-reaper-old)" ] || fail "e$$'s old container is left renamed"
audit_any recycle.failed '.id == $id and (.error | test("create replacement: "))' --arg id "$e_id" ||
  fail "the failed create is not in the audit log"
# libcurl sent the create again on a fresh connection (its answer to a
# reused connection that died): the engine saw two creates.
assert_eq "drop_reply pass" "$(grep -E "POST /v[0-9.]+/containers/create\?name=e$$ " "$T/proxy.log" | head -n 2 | awk '{ printf "%s%s", s, $NF; s = " " }')" \
  "the first two creates of e$$"

log "4. f$$ stopped while the inspect that starts its recycle is held"
# The first inspect of f$$ since step 3 began (its recycle's preparation,
# which reads before recycle.begin is written) is held 10 s: long enough
# for the stop below to finish first on a busy machine, well within
# reaper's 30 s request timeout.
wait_for 40 "f$$'s recycle to be prepared (its inspect held)" grep -qE "GET /v[0-9.]+/containers/$f_id/json -> stall" "$T/proxy.log"
docker stop -t 1 f$$ >/dev/null
wait_for 30 "f$$'s recycle to end" sh -c "grep -E '\"recycle.(done|failed)\"' '$T/audit.jsonl' | grep -c >/dev/null '$f_id'"
audit_any recycle.failed '.id == $id and (.error | test("no longer running: nothing done")) and .rolled_back' --arg id "$f_id" ||
  { grep "$f_id" "$T/proxy.log" | tail -n 20; false; } ||
  fail "f$$'s recycle did not stop at 'no longer running'"
assert_eq 0 "$(named f$$)" "running containers named f$$ (someone stopped it)"
assert_eq false "$(docker inspect -f '{{.State.Running}}' "$f_id")" "f$$ running"
fault '{"fault": "pass"}'

dups=$(jq -r 'select(.event == "recycle.done") | "\(.id) \(.started_at)"' "$T/audit.jsonl" | sort | uniq -d)
[ -z "$dups" ] || fail "recycled twice for one start: $dups"
kill -0 "$REAPER_PID" || fail "reaper died"
stop_reaper
no_sanitizer_report
verify_audit
grep -E "WARN|ERROR" "$T/reaper.log" | cut -c1-220
jq -c 'select(.event | startswith("recycle")) | {event, name, error, action, detail}' "$T/audit.jsonl" | cut -c1-220
log "slow answers waited for, a lost answer put right, a stopped container left alone"
