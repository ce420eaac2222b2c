#!/usr/bin/env bash
# Tracking keeps only the labels the configuration reads (and reaper.*): a
# reload that reads a new key makes reaper list again before it recycles.
# hold$$ carries hold=yes from the start, but the first configuration never
# names that key; the reload excludes hold=yes and gives every container a
# max age of 1s, and adds a policy for tier=web.  hold$$ must never be
# recycled (had reaper acted on what it tracked before listing again, it
# would have been: nothing said it was excluded), web$$ must be, under
# the new policy that only its tier label selects, and go$$ as well.
source "$(dirname "$0")/lib.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
compose=(-l com.docker.compose.project=shop -l com.docker.compose.service=api
  -l com.docker.compose.config-hash=0123456789abcdef -l com.docker.compose.oneoff=False)
run hold$$ -l hold=yes "${compose[@]}" reaper-test/sleeper:1 sh -c "$loop"
run web$$ -l tier=web "${compose[@]}" reaper-test/sleeper:1 sh -c "$loop"
run go$$ "${compose[@]}" reaper-test/sleeper:1 sh -c "$loop"
hold_id=$(cid hold$$)
write_config() { # MAX_AGE [extra top-level YAML]
  config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 1h }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
$2
policies:
  - { name: web, match: { labels: { tier: web } }, max_age: ${3:-1d}, grace: 2s, strategy: recreate }
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: $1, grace: 2s, strategy: recreate }
YAML
}
# First: neither hold nor tier is read (the web policy is not there yet).
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 1h }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1d, grace: 2s, strategy: recreate }
YAML
start_reaper
wait_for 15 "the first list" grep -c "3 workloads" "$T/reaper.log"
sleep 1.5
write_config 1s 'exclude: { labels: { hold: "yes" } }' 1s
kill -HUP "$REAPER_PID"
wait_for 10 "the reload" grep -c "each provider lists again" "$T/reaper.log"
wait_for 30 "go$$ recycled" audit_any recycle.done '.name == $n' --arg n "go$$"
wait_for 30 "web$$ recycled" audit_any recycle.done '.name == $n' --arg n "web$$"
audit_any recycle.begin '.name == $n and .policy == "web"' --arg n "web$$" ||
  fail "web$$ was not recycled under the web policy (its tier label was not read)"
sleep 2
audit_any recycle.begin '.name == $n' --arg n "hold$$" && fail "hold$$ (hold=yes, excluded by the reload) was recycled"
[ "$(cid hold$$)" = "$hold_id" ] || fail "hold$$ was replaced"
stop_reaper
verify_audit
log "a reload that reads new labels lists again before it acts"
