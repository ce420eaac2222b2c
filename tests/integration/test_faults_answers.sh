#!/usr/bin/env bash
# Bad answers from the engine, through tests/lib/faultproxy.py in front of
# the real dockerd: a container list or an inspect that is not JSON, cut in
# half (cleanly or by a dropped connection) or JSON of the wrong shape (an
# object for a list, a container without Id, StartedAt garbage).  reaper
# says what is wrong, keeps what it knew (no tracked container vanishes, none
# appears), reconnects when the first list is bad, learns the truth at the
# next resync, recycles when due and only once, and does not crash.
source "$(dirname "$0")/lib.sh"
FP="$(cd "$(dirname "$0")/../lib" && pwd)/faultproxy.py"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'

PY=/usr/bin/python3 # Debian's: an interpreter manager's shim may take seconds
[ -x "$PY" ] || PY=python3
"$PY" "$FP" serve --listen "$T/p.sock" --upstream "${REAPER_ENDPOINT#unix://}" \
  --control "$T/faults.json" --log "$T/proxy.log" 2>>"$T/proxy.err" &
PROXY_PID=$!
on_exit 'kill $PROXY_PID 2>/dev/null'
wait_for 10 "the fault proxy's socket" test -S "$T/p.sock"
# fault JSON: the proxy's faults from now on (the file is replaced whole).
fault() {
  jq -e . <<<"$1" >/dev/null || fail "bad fault JSON: $1"
  printf '%s\n' "$1" >"$T/faults.json.tmp" && mv "$T/faults.json.tmp" "$T/faults.json"
}
# applied FAULT N: the proxy has broken N answers with FAULT.
applied() { [ "$(grep -c -- "-> $1\$" "$T/proxy.log")" -ge "$2" ]; }
# The number of workloads reaper tracks (SIGUSR1 logs it).
workloads() {
  local n
  n=$(grep -c ' stats: ' "$T/reaper.log" || true)
  kill -USR1 "$REAPER_PID"
  wait_for 10 "reaper's stats line" sh -c "[ \$(grep -c ' stats: ' '$T/reaper.log') -gt $n ]"
  grep ' stats: ' "$T/reaper.log" | tail -n 1 | sed -E 's/.*workloads=([0-9]+).*/\1/'
}
no_sanitizer_report() {
  ! grep -qE 'Sanitizer|runtime error' "$T/reaper.log" || fail "sanitizer report in reaper's log"
}

# --network none: this engine (--bridge=none) cannot rename a restarted
# container of the default network mode ("sandbox not found").
run a$$ --network none -l reaper.max-age=40s reaper-test/sleeper:1 sh -c "$loop"
run b$$ reaper-test/sleeper:1 sh -c "$loop"
run c$$ reaper-test/sleeper:1 sh -c "$loop"
a_id=$(cid a$$)
b_id=$(cid b$$)
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "unix://$T/p.sock" } ]
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1h, jitter: 0%, grace: 2s, health_timeout: 20s }
YAML

LIST='GET /v[0-9.]+/containers/json$'
log "1. a bad first list"
# 1. The first list is not JSON, twice: the provider is not up, reaper says
# why and tries again.
fault '{"rules": [{"match": "'"$LIST"'", "fault": "nonjson", "count": 2}]}'
start_reaper
wait_for 20 "the first good list" grep -q "workloads" "$T/reaper.log"
grep -q "provider local (docker) unreachable: list containers: the answer is not JSON" "$T/reaper.log" ||
  fail "a list that is not JSON was not reported"
applied nonjson 2 || fail "the proxy did not break two lists"

log "2. a restart whose inspect is garbage"
# 2. a$$ restarted while its inspect answers garbage: its new start is
# learned at the next resync (checked at the end: it is recycled 40 s after
# its restart, once, with the restart's start time).
fault '{"rules": [{"match": "GET /v[0-9.]+/containers/'"$a_id"'/json", "fault": "shape", "shape": "started_garbage", "count": 1}]}'
docker restart -t 1 a$$ >/dev/null
a_start=$(started_at a$$)
wait_for 10 "the proxy to break a$$'s inspect" grep -q "containers/$a_id/json -> shape" "$T/proxy.log"
wait_for 10 "a$$ inspected again" sh -c "grep -A1000 'containers/$a_id/json -> shape' '$T/proxy.log' | grep -c >/dev/null 'containers/$a_id/json -> pass'"
sleep 0.5
n=$(workloads)
[ "$n" -ge 3 ] || fail "reaper tracks $n workloads, a$$, b$$ and c$$ at least were expected"

log "3. bad lists at resync"
# 3. Resyncs whose list is bad: nothing vanishes, the failure is named.
for f in '"fault": "nonjson"' '"fault": "halfjson"' '"fault": "truncate"' \
  '"fault": "shape", "shape": "object"' '"fault": "shape", "shape": "no_id", "index": 0'; do
  name=$(jq -r .fault <<<"{$f}")
  before=$(grep -c -- "-> $name\$" "$T/proxy.log" || true)
  fault '{"rules": [{"match": "'"$LIST"'", '"$f"', "count": 1}]}'
  wait_for 15 "the proxy to break a list ($f)" applied "$name" $((before + 1))
  sleep 0.3
  assert_eq "$n" "$(workloads)" "workloads tracked after a bad list ($f)"
done
for why in "the answer is not JSON" "transfer closed with" "the answer is not a list" \
  "item 0 has no container Id"; do
  grep -q "resync failed, keeping what was known: list containers: .*$why" "$T/reaper.log" ||
    fail "no resync failure saying '$why'"
done

log "4. bad inspects of an event"
# 4. An event whose inspect answer is bad (b$$ renamed): b$$ stays tracked,
# a warning names the container and what was wrong.  The resync that looks
# at b$$ again may be the one to get the bad answer: the same must hold.
k=0
for f in '"fault": "nonjson"' '"fault": "halfjson"' '"fault": "truncate"' \
  '"fault": "shape", "shape": "object"' '"fault": "shape", "shape": "no_id"' \
  '"fault": "shape", "shape": "started_garbage"'; do
  k=$((k + 1))
  name=$(jq -r .fault <<<"{$f}")
  before=$(grep -c -- "-> $name\$" "$T/proxy.log" || true)
  fault '{"rules": [{"match": "GET /v[0-9.]+/containers/'"$b_id"'/json", '"$f"', "count": 1}]}'
  docker rename "$b_id" "b$$-$k"
  wait_for 15 "the proxy to break b$$'s inspect ($f)" applied "$name" $((before + 1))
  sleep 0.3
  assert_eq "$n" "$(workloads)" "workloads tracked after a bad inspect ($f)"
done
for why in "the answer is not JSON" "transfer closed with" "not a JSON object" \
  "no container Id" "StartedAt of a running container is not a time"; do
  grep -q "inspect ${b_id:0:12}: .*$why" "$T/reaper.log" ||
    fail "no inspect warning saying '$why'"
done
fault '{"fault": "pass"}'

log "5. a$$ recycled when due, once"
wait_for 45 "a$$ recycled" audit_any recycle.done '.id == $id' --arg id "$a_id"
begin_started=$(audit_events recycle.begin | jq -r --arg id "$a_id" 'select(.id == $id) | .started_at')
assert_eq "${a_start:0:23}" "${begin_started:0:23}" "a$$'s started_at in recycle.begin (its restart)"
audit_any recycle.begin '.id == $id and .age_s >= 40' --arg id "$a_id" || fail "a$$ was recycled before its max age"
audit_any recycle.begin '.id != $id' --arg id "$a_id" && fail "another container than a$$ was recycled"
dups=$(jq -r 'select(.event == "recycle.begin") | "\(.id) \(.started_at)"' "$T/audit.jsonl" | sort | uniq -d)
[ -z "$dups" ] || fail "recycled twice for one start: $dups"
kill -0 "$REAPER_PID" || fail "reaper died"
stop_reaper
no_sanitizer_report
verify_audit
grep -E "WARN|ERROR" "$T/reaper.log" | cut -c1-220
log "bad answers named, nothing vanished, a$$ recycled once on its true age"
