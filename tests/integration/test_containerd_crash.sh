#!/usr/bin/env bash
# containerd: reaper killed (SIGKILL) at every step of a recreate.  The next
# start finds the unfinished recycle in the audit log, takes it up from
# where the container is (recycle.recovered, ok), and afterwards the
# container runs a task again, with its labels, on a fresh rootfs: what was
# written into it before is gone whatever the step.  The points are the
# runner's after each step of the in-place recreate (stop-old, reset,
# start) and the provider's inside those steps (after the task stopped and
# before it is deleted, after the old snapshot is removed and before a fresh
# one is prepared, after the new task is created and before it starts).
# They exist only in test builds (-DREAPER_CRASHPOINTS=ON).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/containerd.sh"
on_exit ctrd_stop
ctrd_start || fail "containerd did not start"
ctrd_import || fail "could not import the test image"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
points="after-begin ctrd-after-stop after-stop-old ctrd-after-remove-snapshot after-reset ctrd-after-create-task after-start"
n=0
for point in $points; do
  n=$((n + 1))
  name=cc$n-$$
  ctrd_run $name --label keep=label -- sh -c "$loop"
  ctrd_exec $name sh -c 'echo written-inside >/evil' || fail "$point: could not write into $name"
  rm -f "$T/audit.jsonl"
  config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers:
  - { name: ctr, type: containerd, endpoint: "unix://$CTRD_SOCK", namespaces: [$CTRD_NS] }
policies:
  - { name: test, match: { name: "$name" }, max_age: 1s, grace: 3s, health_timeout: 10s }
YAML
  sleep 1.2
  rc=0
  REAPER_CRASH_AT=$point "$REAPER" run -c "$T/config.yaml" --once >>"$T/reaper.log" 2>&1 || rc=$?
  assert_eq 137 "$rc" "$point: exit status of the crashed run (SIGKILL)"
  assert_eq 1 "$(audit_count recycle.begin)" "$point: begun before the crash"
  assert_eq 0 "$(audit_count recycle.done)" "$point: not done before the crash"
  reaper_once || fail "$point: the run after the crash failed"
  audit_any recycle.recovered '.id == $id and .ok == true' --arg id "$CTRD_NS/$name" ||
    fail "$point: no successful recycle.recovered for $name"
  wait_for 10 "$name running" ctrd_running $name
  assert_eq "" "$(ctrd_exec $name cat /evil 2>/dev/null || true)" "$point: a file written before the recycle"
  assert_eq label "$(ctr_ containers info $name | jq -r '.Labels.keep')" "$point: label kept"
  verify_audit
  # Before the stop and after the new task started, its task runs: nothing
  # to finish (the first is then recycled in the same run); in between the
  # recycle is finished.
  case $point in
  after-begin | after-start) want=none ;;
  *) want=finished ;;
  esac
  action=$(audit_events recycle.recovered | jq -r .action | head -1)
  assert_eq "$want" "$action" "$point: what recovery did"
  log "$point: recovered ($action)"
  ctr_ task kill -s SIGKILL $name >/dev/null 2>&1 || true
done
