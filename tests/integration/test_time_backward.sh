#!/usr/bin/env bash
# The wall clock jumps 15 s backward under a running agent (libfaketime on
# reaper alone; timers stay on the real monotonic clock).  Deadlines are in
# wall time: b$$ (max age 20 s, timer armed before the jump) is not recycled
# before its deadline on the clock as it now reads, 15 s later in real time
# than planned, and the schedule does not stall: it is recycled then.  n$$,
# started after the jump, has a start time in the future of reaper's clock:
# it is recycled once reaper's clock says it is 10 s old, not before.
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
# begun_real NAME: the real time (ms) at which NAME's recycle began; the
# audit log's times are reaper's, 15 s behind.
begun_real() { echo $(($(ms "$(audit_events recycle.begin | jq -r --arg n "$1" 'select(.name == $n) | .ts')") + 15000)); }

run b$$ reaper-test/sleeper:1 sh -c "$loop"
b_start=$(ms "$(started_at b$$)")
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 5s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: replaced, match: { labels: { reaper-test: "$$", reaper.replaces: "*" } }, max_age: 1d }
  - { name: b, match: { name: "b$$" }, max_age: 20s, jitter: 0%, grace: 1s, health_timeout: 20s }
  - { name: n, match: { name: "n$$" }, max_age: 10s, jitter: 0%, grace: 1s, health_timeout: 20s }
YAML
clock "+0"
start_faked
wait_for 20 "the first list" grep -q "workloads" "$T/reaper.log"
sleep 1

log "the wall clock jumps 15 s backward"
clock "-15"
run n$$ reaper-test/sleeper:1 sh -c "$loop"
n_start=$(ms "$(started_at n$$)")
# b$$'s deadline by the real clock passes; by reaper's it is 15 s away.
while [ $(($(date +%s%3N) - b_start)) -lt 31000 ]; do sleep 0.5; done
audit_any recycle.begin '.name == "b'$$'"' && fail "b$$ recycled on its deadline by the real clock"
wait_for 30 "b$$ and n$$ recycled" sh -c "[ \$(grep -c '\"recycle.done\"' '$T/audit.jsonl') -ge 2 ]"
stop_reaper

b_late=$(($(begun_real b$$) - b_start - 35000))
n_late=$(($(begun_real n$$) - n_start - 25000))
[ "$b_late" -ge -1000 ] || fail "b$$ recycled $((-b_late)) ms before its deadline on reaper's clock"
[ "$b_late" -le 5000 ] || fail "b$$ recycled $b_late ms after its deadline: the schedule stalled"
[ "$n_late" -ge -1000 ] || fail "n$$ recycled $((-n_late)) ms before its deadline on reaper's clock"
[ "$n_late" -le 5000 ] || fail "n$$ recycled $n_late ms after its deadline: the schedule stalled"
audit_any recycle.begin '(.ts | sub("\\.[0-9]+Z$"; "Z") | fromdate) < (.deadline | sub("\\.[0-9]+Z$"; "Z") | fromdate)' &&
  fail "a recycle began before the deadline it names"
audit_any recycle.begin '.age_s < .max_age_s' && fail "a recycle's age is below its max age"
assert_eq 2 "$(audit_count recycle.begin)" "recycles begun"
assert_eq 0 "$(audit_count recycle.failed)" "recycles failed"
verify_audit
jq -c 'select(.event | startswith("recycle")) | {ts, event, name, started_at, deadline, age_s}' "$T/audit.jsonl"
log "15 s back: b$$ recycled ${b_late} ms and n$$ ${n_late} ms after their deadlines on reaper's clock"
