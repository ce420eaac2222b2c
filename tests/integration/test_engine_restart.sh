#!/usr/bin/env bash
# dockerd restarted under a running reaper, once while idle and once in the
# middle of a recycle: reaper says the engine is gone, reconnects with
# backoff, resyncs, puts right what the interrupted recycle left (the old
# container renamed, a replacement half made), never recycles a container
# twice for one life, and keeps a verifiable log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/engine.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
slow='trap "sleep 4; exit 0" TERM; while :; do sleep 0.2; done'
run keep$$ --restart always -l role=keep reaper-test/sleeper:1 sh -c "$loop"
run slow$$ --restart always -l role=slow reaper-test/sleeper:1 sh -c "$slow"
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: slow, match: { labels: { role: slow, reaper-test: "$$" } }, max_age: 3s, grace: 10s, health_timeout: 10s }
  - { name: keep, match: { labels: { role: keep, reaper-test: "$$" } }, max_age: 1h }
YAML
start_reaper
wait_for 15 "the first list" grep -q "workloads" "$T/reaper.log"

# 1. Idle: the engine goes away and comes back.
engine_restart || fail "dockerd did not come back"
wait_for 30 "reaper to say the engine went away" grep -q "unreachable" "$T/reaper.log"
wait_for 30 "reaper to reconnect" sh -c "grep -c 'provider local (docker) connected' '$T/reaper.log' | grep -cv >/dev/null '^1\$'"
kill -0 "$REAPER_PID" || fail "reaper died with the engine"

# 2. In the middle of a recycle: slow$$ takes 4 s to stop.
wait_for 30 "slow$$'s recycle to begin" grep -q '"recycle.begin".*slow'$$ "$T/audit.jsonl"
sleep 1.5
engine_restart || fail "dockerd did not come back (2)"
# Afterwards: exactly one slow$$ runs, nothing temporary is left, and
# every begun recycle ended (done, failed or recovered).
wait_for 60 "one slow$$ running, no -reaper-old" sh -c "
  [ \"\$(docker ps -q --filter name='^/slow$$\$' | wc -l)\" = 1 ] &&
  [ -z \"\$(docker ps -aq --filter name=reaper-old)\" ]"
wait_for 30 "every begun recycle to end" sh -c "
  b=\$(grep -c '\"recycle.begin\"' '$T/audit.jsonl');
  e=\$(grep -cE '\"recycle.(done|failed)\"' '$T/audit.jsonl');
  [ \"\$b\" = \"\$e\" ]"
kill -0 "$REAPER_PID" || fail "reaper died"
# keep$$ was never recycled (1h), whatever the engine did.
audit_any recycle.begin '.name == "keep'$$'"' && fail "keep$$ was recycled"
# No container was recycled twice for the same start.
dups=$(jq -r 'select(.event == "recycle.begin") | "\(.id) \(.started_at)"' "$T/audit.jsonl" | sort | uniq -d)
[ -z "$dups" ] || fail "recycled twice for one life: $dups"
stop_reaper
verify_audit
grep -E "unreachable|connected|recover" "$T/reaper.log" | head -20
jq -c 'select(.event | startswith("recycle")) | {event, name, action, error, rolled_back, detail}' "$T/audit.jsonl"
log "survived two engine restarts, one mid-recycle"
