#!/usr/bin/env bash
# containerd: a restart of containerd while reaper runs is survived.  The
# provider goes down, reconnects (version, event stream, list), keeps the
# task's age (its start time comes from its process, which the restart
# does not touch), and the task is recycled once, when due: no duplicate,
# no failure.  (containerd takes a while to stop, and reaper's reconnects
# back off up to 30 s: the task may well come due while containerd is
# down, and is then recycled as soon as it is back.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/containerd.sh"
on_exit ctrd_stop
ctrd_start || fail "containerd did not start"
ctrd_import || fail "could not import the test image"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
ctrd_run rs1$$ -- sh -c "$loop"
first_pid=$(ctrd_pid rs1$$)

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 3s }
providers:
  - { name: ctr, type: containerd, endpoint: "unix://$CTRD_SOCK", namespaces: [$CTRD_NS] }
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 14s, grace: 2s, health_timeout: 10s }
YAML
start_reaper
wait_for 10 "the first list" grep -q "ctr (containerd): 1 workloads" "$T/reaper.log"
started=$(date +%s)

ctrd_stop_daemon
wait_for 15 "reaper to notice containerd is gone" grep -q "ctr (containerd) unreachable" "$T/reaper.log"
ctrd_running rs1$$ 2>/dev/null && fail "ctr still answers with containerd stopped"
sleep 1
ctrd_start || fail "containerd did not start again"
assert_eq "$first_pid" "$(ctrd_pid rs1$$)" "the task's pid across the containerd restart"
wait_for 70 "reaper to reconnect" sh -c "grep -c 'ctr (containerd) connected' '$T/reaper.log' | grep -cx >/dev/null 2"
kill -0 "$REAPER_PID" || fail "reaper died with containerd"

wait_for 40 "rs1$$ recycled" audit_any recycle.done '.id == $id' --arg id "$CTRD_NS/rs1$$"
# Its age was kept: counted from its start before the containerd restart,
# not from the reconnect.
st=$(audit_events recycle.begin | jq -r .started_at | head -1)
[ "$(date -d "$st" +%s)" -le "$started" ] || fail "rs1$$'s start became $st after the reconnect (first list at $(date -d @"$started" +%T))"
audit_any recycle.begin '.age_s >= 14' || fail "rs1$$ was recycled before its max age"
# Several resyncs later, still one recycle.
sleep 8
stop_reaper
assert_eq 1 "$(audit_count recycle.begin)" "recycle.begin lines"
assert_eq 1 "$(audit_count recycle.done)" "recycle.done lines"
assert_eq 0 "$(audit_count recycle.failed)" "recycle.failed lines"
ctrd_running rs1$$ || fail "rs1$$ is not running after its recycle"
verify_audit
log "containerd restarted under reaper: reconnected, one recycle, on time"
