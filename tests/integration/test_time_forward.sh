#!/usr/bin/env bash
# The wall clock jumps 2 h forward under a running agent (libfaketime on
# reaper alone; timers stay on the real monotonic clock): the engine's
# StartedAt is then 2 h older than it was, as on a host whose clock jumped
# or that slept.  Every deadline is looked at again within the schedule's
# longest sleep (30 s); the four containers now an hour overdue are
# recycled under the budget (max_unavailable 1: never two at once), oldest
# first; one whose max age is 3 h is left alone.
source "$(dirname "$0")/lib.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
# LD_PRELOAD does not mix with ASan: a build without sanitizers.
REAPER=${REAPER_PLAIN:-$REAPER}
if ldd "$REAPER" 2>/dev/null | grep -c >/dev/null libasan; then
  REAPER=$(cd "$(dirname "$REAPER")/.." && pwd)/build/reaper
fi
[ -x "$REAPER" ] || fail "no reaper built without sanitizers ($REAPER): set REAPER_PLAIN"
FT_LIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
[ -n "$FT_LIB" ] || fail "libfaketime is not installed (apt-get install faketime)"
# clock OFFSET: reaper's wall clock from now on is the real one + OFFSET.
clock() { printf '%s\n' "$1" >"$T/clock.tmp" && mv "$T/clock.tmp" "$T/clock"; }
start_faked() {
  LD_PRELOAD=$FT_LIB FAKETIME_TIMESTAMP_FILE=$T/clock FAKETIME_NO_CACHE=1 \
    FAKETIME_DONT_FAKE_MONOTONIC=1 "$REAPER" run -c "$T/config.yaml" "$@" >>"$T/reaper.log" 2>&1 &
  REAPER_PID=$!
}
ms() { date -d "$1" +%s%3N; }

for i in 1 2 3 4; do
  run o$i-$$ reaper-test/sleeper:1 sh -c "$loop"
  sleep 1.1 # distinct start times: the order is checked
done
run y$$ reaper-test/sleeper:1 sh -c "$loop"
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 5s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  # Replacements start on the engine's clock, 2 h behind reaper's: left alone.
  - { name: replaced, match: { labels: { reaper-test: "$$", reaper.replaces: "*" } }, max_age: 1d }
  - { name: young, match: { name: "y$$" }, max_age: 3h }
  - { name: old, match: { labels: { reaper-test: "$$" } }, max_age: 1h, jitter: 0%, grace: 1s, max_unavailable: 1, health_timeout: 20s }
YAML
clock "+0"
start_faked
wait_for 20 "the first list" grep -q "workloads" "$T/reaper.log"
sleep 2
assert_eq 0 "$(audit_count recycle.begin)" "recycles before the jump"

log "the wall clock jumps 2 h forward"
clock "+2h"
jump_ms=$(date +%s%3N)
wait_for 75 "four recycles done" sh -c "[ \$(grep -c '\"recycle.done\"' '$T/audit.jsonl') -ge 4 ]"
sleep 3 # anything else that would (wrongly) follow
stop_reaper

assert_eq 4 "$(audit_count recycle.begin)" "recycles begun"
assert_eq 0 "$(audit_count recycle.failed)" "recycles failed"
# Noticed within the schedule's longest sleep (30 s) and a margin.  The
# audit log's times are reaper's: 2 h ahead.
first=$(audit_events recycle.begin | head -n 1 | jq -r .ts)
late=$(($(ms "$first") - 7200000 - jump_ms))
[ "$late" -le 33000 ] || fail "the first recycle began ${late} ms after the jump"
# Oldest first.
assert_eq "o1-$$ o2-$$ o3-$$ o4-$$" "$(audit_events recycle.begin | jq -r .name | xargs)" "order of the recycles"
sorted=$(audit_events recycle.begin | jq -r .started_at | sort -c && echo yes)
assert_eq yes "$sorted" "started_at ascending"
audit_any recycle.begin '.age_s < 7200' && fail "a recycle's age is not the jumped one"
# Under the budget: never two in flight.
max=$(jq -s '[.[] | select(.event | test("^recycle\\.(begin|done|failed)$"))
  | if .event == "recycle.begin" then 1 else -1 end]
  | reduce .[] as $d ({n: 0, max: 0}; .n += $d | .max = ([.max, .n] | max)) | .max' "$T/audit.jsonl")
assert_eq 1 "$max" "recycles in flight at once"
audit_any recycle.begin '.name == "y'$$'"' && fail "y$$ (max age 3 h) was recycled"
verify_audit
jq -c 'select(.event | startswith("recycle")) | {ts, event, name, started_at, age_s}' "$T/audit.jsonl"
log "2 h jump: overdue ones recycled oldest first, one at a time, first after ${late} ms"
