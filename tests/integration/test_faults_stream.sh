#!/usr/bin/env bash
# The /events stream cut in the middle of a line, through
# tests/lib/faultproxy.py in front of the real dockerd: once by a dropped
# connection (the chunk cut short), once by a clean end right after half a
# line.  The half line is never taken for an event; reaper says the stream
# broke, reconnects, asks for the events since the last one it read
# (since=), and the engine's replay tells it what it missed: a restart (its
# new start time is the one recycled on) and a new container (tracked and
# recycled when due).  Once each, no crash, a verifiable log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/faults.sh"
# connected N: reaper has said N times that the provider is connected.
connected() { [ "$(grep -c "provider local (docker) connected" "$T/reaper.log")" -ge "$1" ]; }
# since_of N: the since= of the Nth /events request (empty if none).
since_of() { grep -E "GET /v[0-9.]+/events" "$T/proxy.log" | sed -n "$1p" | sed -nE 's/.*since=([0-9.]+).*/\1/p'; }

# --network none: this engine (--bridge=none) cannot rename a restarted
# container of the default network mode ("sandbox not found").
run s$$ --network none -l reaper.max-age=20s reaper-test/sleeper:1 sh -c "$loop"
s_id=$(cid s$$)
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 60s }
providers: [ { name: local, type: docker, endpoint: "unix://$T/p.sock" } ]
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1h, jitter: 0%, grace: 2s, health_timeout: 20s }
YAML
t0=$(date +%s)
start_reaper -v
wait_for 20 "the first list" grep -q "workloads" "$T/reaper.log"
# An event read whole, so that a reconnect has a since= to ask from.
run z$$ --network none reaper-test/sleeper:1 sh -c "$loop"
z_id=$(cid z$$)
wait_for 10 "z$$'s start event" grep -q "event start ${z_id:0:12}" "$T/reaper.log"

log "1. cut mid-line (connection dropped) in s$$'s die event"
fault '{"rules": [{"match": "GET /v[0-9.]+/events", "fault": "cut_line", "line": "\"Action\":\"die\".*\"name\":\"s'$$'\"", "count": 1}]}'
docker restart -t 1 s$$ >/dev/null
s_start=$(started_at s$$)
wait_for 10 "the proxy to cut the stream" grep -q "cut_line: sent" "$T/proxy.log"
wait_for 10 "reaper to say the stream broke" grep -q "unreachable: GET /v[0-9.]*/events.*transfer closed" "$T/reaper.log"
wait_for 20 "reaper to reconnect" connected 2
since=$(since_of 2)
[ -n "$since" ] || fail "the reconnected /events request has no since="
die_ns=$(docker events --since "$t0" --until "$(($(date +%s) + 2))" --filter "container=$s_id" \
  --filter event=die --format '{{.TimeNano}}' | tail -n 1)
[ -n "$die_ns" ] || fail "no die event of s$$ in the engine"
[ "${since%.*}" -le $((die_ns / 1000000000)) ] || fail "since=$since is after the cut event ($die_ns)"
wait_for 10 "the replayed die and start of s$$" sh -c "
  awk -v n=1 '/unreachable/ { k++ } k >= n' '$T/reaper.log' | grep -c >/dev/null 'event die ${s_id:0:12}' &&
  awk -v n=1 '/unreachable/ { k++ } k >= n' '$T/reaper.log' | grep -c >/dev/null 'event start ${s_id:0:12}'"
grep -q "event stream: not JSON" "$T/reaper.log" && fail "the half line was parsed"

log "2. a clean end right after half of y$$'s start event"
fault '{"rules": [{"match": "GET /v[0-9.]+/events", "fault": "end_line", "line": "\"Action\":\"start\".*\"name\":\"y'$$'\"", "count": 1}]}'
run y$$ --network none -l reaper.max-age=15s reaper-test/sleeper:1 sh -c "$loop"
y_id=$(cid y$$)
wait_for 10 "the proxy to end the stream" grep -q "end_line: sent" "$T/proxy.log"
wait_for 10 "reaper to say the stream ended" grep -q "unreachable: the event stream ended" "$T/reaper.log"
wait_for 20 "reaper to reconnect" connected 3
[ -n "$(since_of 3)" ] || fail "the second reconnect's /events request has no since="
wait_for 10 "the replayed start of y$$" sh -c "
  awk -v n=2 '/unreachable/ { k++ } k >= n' '$T/reaper.log' | grep -c >/dev/null 'event start ${y_id:0:12}'"
# The half line reached the consumer as the stream's last line: it must be
# refused, not read.
grep -q "event stream: not JSON.*line ignored" "$T/reaper.log" ||
  fail "the half line at the end of the stream was not refused"
fault '{"fault": "pass"}'

log "3. both recycled when due, once, on their true start"
wait_for 40 "s$$ and y$$ recycled" sh -c "
  grep '\"recycle.done\"' '$T/audit.jsonl' | grep -c >/dev/null '$s_id' &&
  grep '\"recycle.done\"' '$T/audit.jsonl' | grep -c >/dev/null '$y_id'"
begin_started=$(audit_events recycle.begin | jq -r --arg id "$s_id" 'select(.id == $id) | .started_at')
assert_eq "${s_start:0:23}" "${begin_started:0:23}" "s$$'s started_at in recycle.begin (its restart)"
audit_any recycle.begin '.id == $id and .age_s >= 20' --arg id "$s_id" || fail "s$$ was recycled before its max age"
audit_any recycle.begin '.id == $id' --arg id "$z_id" && fail "z$$ (1h) was recycled"
dups=$(jq -r 'select(.event == "recycle.begin") | "\(.id) \(.started_at)"' "$T/audit.jsonl" | sort | uniq -d)
[ -z "$dups" ] || fail "recycled twice for one start: $dups"
kill -0 "$REAPER_PID" || fail "reaper died"
stop_reaper
no_sanitizer_report
verify_audit
grep -E "WARN|ERROR" "$T/reaper.log" | cut -c1-200
grep -E "GET /v[0-9.]+/events|cut_line|end_line" "$T/proxy.log" | cut -c1-200
log "the stream cut twice mid-line: reconnected with since=, the missed events replayed"
