#!/usr/bin/env bash
# The engine's socket gone for 20 s (tests/lib/faultproxy.py removes its
# socket file and drops every connection, as a dead dockerd would), then
# every connection dropped without an answer: reaper says the provider is
# down and why (its log, /healthz), acts on nothing meanwhile (a container that comes due waits),
# retries with a backoff that doubles, and once the engine answers again it
# lists, tracks what started meanwhile, and recycles what is due, once each.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/faults.sh"
# connected N: reaper has said N times that the provider is connected.
connected() { [ "$(grep -c "provider local (docker) connected" "$T/reaper.log")" -ge "$1" ]; }
begins() { grep -c '"recycle.begin"' "$T/audit.jsonl" || true; }
# health CODE [TEXT]: /healthz answers CODE (and its body has TEXT).
health() {
  local port
  port=$(sed -nE 's/.*status, metrics and health on .*\(port ([0-9]+)\).*/\1/p' "$T/reaper.log" | tail -n 1)
  curl -s -o "$T/health.out" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/healthz" >"$T/health.code" || true
  [ "$(cat "$T/health.code")" = "$1" ] && grep -q -- "${2:-}" "$T/health.out"
}

run p$$ reaper-test/sleeper:1 sh -c "$loop"
run q$$ -l reaper.max-age=20s reaper-test/sleeper:1 sh -c "$loop"
q_id=$(cid q$$)
config <<YAML
agent: { listen: "127.0.0.1:0", audit_log: $T/audit.jsonl, resync: 5s }
providers: [ { name: local, type: docker, endpoint: "unix://$T/p.sock" } ]
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1h, jitter: 0%, grace: 2s, health_timeout: 20s }
YAML
start_reaper
wait_for 20 "the first list" grep -q "workloads" "$T/reaper.log"
wait_for 10 "/healthz to say ok" health 200 ok

log "1. the socket is gone for 20 s"
fault '{"fault": "refuse", "seconds": 20}'
wait_for 5 "the socket to go" test ! -S "$T/p.sock"
wait_for 10 "reaper to say the engine is unreachable" grep -q "provider local (docker) unreachable" "$T/reaper.log"
# q$$ comes due in the outage; n$$ starts in it.
run n$$ -l reaper.max-age=12s reaper-test/sleeper:1 sh -c "$loop"
n_id=$(cid n$$)
wait_for 10 "/healthz to name the missing socket" health 503 "provider local (docker): .*$T/p.sock: No such file or directory"
wait_for 30 "the socket to come back" test -S "$T/p.sock"
back=$(date +%s%N)
assert_eq 0 "$(begins)" "recycles begun while the engine could not be reached"
grep -q "unreachable: .*connect to $T/p.sock: No such file or directory" "$T/reaper.log" ||
  fail "reaper did not say that the socket is gone"
# Its next try comes at most 16 s after the socket is back (the backoff by
# then); the reconnect itself goes through two Python proxies here (this
# one, and the stand-in's), slow on a loaded CI host: 30 s in all.
wait_for 30 "reaper to reconnect (backoff at most 16 s by now)" connected 2
wait_for 10 "/healthz to say ok again" health 200 ok
wait_for 30 "q$$ and n$$ recycled" sh -c "
  grep '\"recycle.done\"' '$T/audit.jsonl' | grep -c >/dev/null '$q_id' &&
  grep '\"recycle.done\"' '$T/audit.jsonl' | grep -c >/dev/null '$n_id'"
q_begin=$(date -d "$(audit_events recycle.begin | jq -r --arg id "$q_id" 'select(.id == $id) | .ts')" +%s%N)
[ "$q_begin" -ge "$back" ] || fail "q$$ was recycled before the engine came back"
audit_any recycle.begin '.id == $id and .age_s >= 12' --arg id "$n_id" || fail "n$$ was recycled before its max age"

log "2. every connection dropped without an answer for 9 s"
fault '{"rules": [{"fault": "refuse", "seconds": 0.1}, {"fault": "drop"}]}'
wait_for 5 "/healthz to say the engine answers nothing" health 503 "provider local (docker): .*Server returned nothing"
sleep 8
fault '{"fault": "pass"}'
wait_for 25 "reaper to reconnect after the drops" connected 3
grep -q "unreachable: GET /_ping: .*Server returned nothing" "$T/reaper.log" ||
  fail "reaper did not say that the engine answered nothing"
# The retries, from the proxy's log: each wait at least 1.5 times the last.
mapfile -t at < <(grep "GET /_ping -> drop" "$T/proxy.log" | cut -d' ' -f1)
[ ${#at[@]} -ge 4 ] || fail "only ${#at[@]} retries in 9 s"
[ ${#at[@]} -le 6 ] || fail "${#at[@]} retries in 9 s: no backoff"
for ((k = 2; k < ${#at[@]}; k++)); do
  awk -v a="${at[k - 2]}" -v b="${at[k - 1]}" -v c="${at[k]}" 'BEGIN { exit !(c - b >= 1.5 * (b - a)) }' ||
    fail "retry $k came $(awk -v b="${at[k - 1]}" -v c="${at[k]}" 'BEGIN { print c - b }')s after the one before: no backoff (${at[*]})"
done

dups=$(jq -r 'select(.event == "recycle.begin") | "\(.id) \(.started_at)"' "$T/audit.jsonl" | sort | uniq -d)
[ -z "$dups" ] || fail "recycled twice for one start: $dups"
audit_any recycle.begin '.name == "p'$$'"' && fail "p$$ (1h) was recycled"
kill -0 "$REAPER_PID" || fail "reaper died"
stop_reaper
no_sanitizer_report
verify_audit
grep -E "WARN|ERROR|connected" "$T/reaper.log" | cut -c1-200
log "socket gone 20 s, then answers dropped: down, no action, backoff, resync, one recycle each"
