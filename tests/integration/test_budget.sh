#!/usr/bin/env bash
# max_unavailable holds: ten expired containers, a budget of 3 (30%), never
# more than 3 recycles in flight at once, and all ten recycled in the end.
source "$(dirname "$0")/lib.sh"
for i in $(seq 1 10); do
  run b$i-$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
done
simple_config 1s recreate <<'YAML'
    max_unavailable: 30%
YAML
sleep 1.5
reaper_once || fail "run --once exited non-zero"
assert_eq 10 "$(audit_count recycle.begin)" "recycle.begin lines"
assert_eq 10 "$(audit_count recycle.done)" "recycle.done lines"
# In the audit log's order: in flight = begins - ends, at every line.
max=$(jq -s '[foreach .[] as $l (0; if $l.event == "recycle.begin" then . + 1 elif ($l.event == "recycle.done" or $l.event == "recycle.failed") then . - 1 else . end)] | max' "$T/audit.jsonl")
assert_eq 3 "$max" "most recycles in flight at once"
for i in $(seq 1 10); do running b$i-$$ || fail "b$i-$$ not running"; done
# Each recycled exactly once.
assert_eq 10 "$(audit_events recycle.begin | jq -r .id | sort -u | wc -l)" "distinct containers begun"
verify_audit
log "budget held at $max"
