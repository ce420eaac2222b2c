#!/usr/bin/env bash
# A container whose network namespace another container shares
# (network_mode container:NAME) is not recreated out from under it: the
# recycle is refused with a clear reason, and both keep running.
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
assert_eq 1 "$rc" "run --once exit status"
assert_eq "$host_id" "$(cid host$$)" "host$$ kept"
running host$$ && running side$$ || fail "a container stopped"
audit_any recycle.failed '.id == $id and .rolled_back == true and (.error | test("side'$$'.*network_mode container"))' --arg id "$host_id" || fail "the refusal does not name the dependent"
verify_audit
log "refused to recreate host$$ under side$$"
