#!/usr/bin/env bash
# A container whose network namespace another container shares
# (network_mode container:NAME) is not recreated out from under it: the
# recycle is refused (recycle.refused, nothing begun, not a failure) with a
# reason that names the dependent, once, and both keep running.
source "$(dirname "$0")/lib.sh"
docker network create --label "$TEST_LABEL" rpt-dep$$ >/dev/null
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
run host$$ -l role=netns --network rpt-dep$$ reaper-test/sleeper:1 sh -c "$loop"
run side$$ --network container:host$$ reaper-test/sleeper:1 sh -c "$loop"
host_id=$(cid host$$) side_id=$(cid side$$)
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: test, match: { labels: { role: netns, reaper-test: "$$" } }, max_age: 1s, grace: 2s }
YAML
sleep 1.5
rc=0; reaper_once || rc=$?
assert_eq 0 "$rc" "run --once exit status (a refusal is no failure)"
assert_eq "$host_id" "$(cid host$$)" "host$$ kept"
running host$$ && running side$$ || fail "a container stopped"
audit_any recycle.refused '.id == $id and .refused_by == "provider" and (.detail | test("side'$$'.*network_mode container"))' --arg id "$host_id" ||
  fail "the refusal does not name the dependent"
assert_eq 0 "$(audit_count recycle.begin)" "recycle.begin lines (nothing begun)"
assert_eq 0 "$(audit_count recycle.failed)" "recycle.failed lines"
# A running agent says it once, not at every look.
start_reaper
sleep 6
stop_reaper
assert_eq 2 "$(audit_count recycle.refused)" "recycle.refused lines (one per agent run)"
assert_eq "$host_id" "$(cid host$$)" "host$$ kept"
verify_audit
log "refused to recreate host$$ under side$$"
