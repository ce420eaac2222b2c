#!/usr/bin/env bash
# The drain hook runs inside the container before it stops (label
# reaper.drain, or the policy's drain), with its exit status and output in
# the audit line; a failing hook does not stop the recycle.
source "$(dirname "$0")/lib.sh"
docker volume create --label "$TEST_LABEL" rpt-drain$$ >/dev/null
run dl$$ -v rpt-drain$$:/shared -l 'reaper.drain=echo drained-by-label; date +%s > /shared/drained' \
  reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
run dp$$ -l use=policy reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
run df$$ -l 'reaper.drain=["/bin/sh", "-c", "echo failing >&2; exit 7"]' \
  reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
dl_id=$(cid dl$$) dp_id=$(cid dp$$) df_id=$(cid df$$)
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - name: policy-hook
    match: { labels: { use: policy, reaper-test: "$$" } }
    max_age: 1s
    grace: 2s
    drain: [/bin/echo, from-policy]
    drain_timeout: 5s
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1s, grace: 2s, max_unavailable: 3, drain_timeout: 5s }
YAML
sleep 1.5
reaper_once || fail "run --once exited non-zero"
docker run --rm -v rpt-drain$$:/shared reaper-test/sleeper:1 test -s /shared/drained || fail "the label's hook did not run in the container"
audit_any recycle.done '.id == $id and .drain.exit_code == 0 and (.drain.output | test("drained-by-label")) and .drain.argv[0] == "/bin/sh"' --arg id "$dl_id" || fail "label hook not audited"
audit_any recycle.done '.id == $id and .drain.exit_code == 0 and (.drain.output | test("from-policy")) and .drain.argv == ["/bin/echo", "from-policy"]' --arg id "$dp_id" || fail "policy hook not audited"
audit_any recycle.done '.id == $id and .drain.exit_code == 7 and (.drain.output | test("failing"))' --arg id "$df_id" || fail "failing hook not audited with its status"
verify_audit
log "drain hooks ran and were audited"
