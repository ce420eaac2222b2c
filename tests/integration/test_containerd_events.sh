#!/usr/bin/env bash
# containerd: tracking follows the events.  A task restarted by someone
# else (ctr task kill, rm, start) is young again: its recycle moves to
# max_age after the restart, not after its first start; a container started
# while the agent runs is tracked from its /tasks/start event.  The re-list
# is an hour away, so only the event stream can tell.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/containerd.sh"
on_exit ctrd_stop
ctrd_start || fail "containerd did not start"
ctrd_import || fail "could not import the test image"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
ctrd_run ev1$$ -- sh -c "$loop"

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 1h }
providers:
  - { name: ctr, type: containerd, endpoint: "unix://$CTRD_SOCK", namespaces: [$CTRD_NS] }
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 12s, grace: 2s, health_timeout: 10s }
YAML
start_reaper
wait_for 10 "the first list" grep -q "workloads" "$T/reaper.log"
sleep 2
before=$(date +%s)
ctr_ task kill -s SIGKILL ev1$$
wait_for 10 "ev1$$ stopped" sh -c "[ \"\$(ctr -a '$CTRD_SOCK' -n '$CTRD_NS' task ls | awk '\$1 == \"ev1$$\" {print \$3}')\" = STOPPED ]"
ctr_ task rm ev1$$ >/dev/null
ctr_ task start -d --null-io ev1$$ >/dev/null
ctrd_running ev1$$ || fail "ev1$$ did not start again"
ctrd_run ev2$$ -- sh -c "$loop"

wait_for 40 "ev1$$ recycled" audit_any recycle.begin '.id == $id' --arg id "$CTRD_NS/ev1$$"
begin=$(audit_events recycle.begin | jq -r --arg id "$CTRD_NS/ev1$$" 'select(.id == $id) | .ts' | head -1)
t=$(date -d "$begin" +%s)
[ "$t" -ge $((before + 11)) ] || fail "ev1$$ was recycled $((t - before))s after its restart: its age was not reset"
audit_any recycle.begin '.id == $id and .age_s < 15' --arg id "$CTRD_NS/ev1$$" || fail "ev1$$'s age at recycle is not counted from its restart"
wait_for 30 "ev2$$ recycled (tracked from its start event)" audit_any recycle.begin '.id == $id' --arg id "$CTRD_NS/ev2$$"
wait_for 20 "ev2$$ recycle done" audit_any recycle.done '.id == $id' --arg id "$CTRD_NS/ev2$$"
stop_reaper
assert_eq 2 "$(audit_count recycle.done)" "recycle.done lines"
assert_eq 0 "$(audit_count recycle.failed)" "recycle.failed lines"
verify_audit
log "containerd: a restart by someone else reset the age; a new task was tracked from its event"
