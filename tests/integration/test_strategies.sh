#!/usr/bin/env bash
# restart, stop and remove, each from its own policy: restart keeps the
# container (same id, new start), stop leaves it stopped, remove removes it;
# each is audited begin then done.
source "$(dirname "$0")/lib.sh"

run rs$$ -l s=restart reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
run st$$ -l s=stop reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
run rm$$ -l s=remove reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
rs_id=$(cid rs$$) st_id=$(cid st$$) rm_id=$(cid rm$$)
rs_started=$(started_at rs$$)

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: r, match: { labels: { s: restart, reaper-test: "$$" } }, max_age: 1s, grace: 2s, strategy: restart, health_timeout: 10s }
  - { name: s, match: { labels: { s: stop, reaper-test: "$$" } }, max_age: 1s, grace: 2s, strategy: stop }
  - { name: m, match: { labels: { s: remove, reaper-test: "$$" } }, max_age: 1s, grace: 2s, strategy: remove }
YAML
sleep 1.5
reaper_once || fail "run --once exited non-zero"

assert_eq "$rs_id" "$(cid rs$$)" "restart keeps the container"
running rs$$ || fail "restarted container is not running"
[ "$(started_at rs$$)" != "$rs_started" ] || fail "restart did not restart (StartedAt unchanged)"
assert_eq false "$(docker inspect -f '{{.State.Running}}' st$$)" "stopped container's state"
assert_eq "$st_id" "$(cid st$$)" "stop keeps the container"
docker inspect rm$$ >/dev/null 2>&1 && fail "remove left the container"

for p in r s m; do
  assert_eq 1 "$(audit_events recycle.begin | jq -c "select(.policy == \"$p\")" | wc -l)" "recycle.begin of policy $p"
  assert_eq 1 "$(audit_events recycle.done | jq -c "select(.policy == \"$p\")" | wc -l)" "recycle.done of policy $p"
done
assert_eq restart "$(audit_events recycle.begin | jq -r 'select(.policy == "r") | .strategy')" "strategy in audit"
assert_eq "$rs_id" "$(audit_events recycle.done | jq -r 'select(.policy == "r") | .replacement_id')" "restart's replacement is itself"
assert_eq null "$(audit_events recycle.done | jq -r 'select(.policy == "m") | .replacement_id')" "remove has no replacement"
verify_audit
log "restart, stop and remove behave"
