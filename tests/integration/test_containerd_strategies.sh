#!/usr/bin/env bash
# containerd: each strategy on a real containerd that the test starts.
#   recreate  same container (id, labels, image, snapshot key), a new task,
#             a fresh rootfs: a file written inside is gone
#   restart   a new task on the same snapshot: the file is still there;
#             its drain hook (label reaper.drain) ran inside it first
#   stop      no task any more, the container stays
#   remove    neither task nor container, nor its snapshot
# Each is audited begin, its steps, then done, with kind container and id
# NS/NAME.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/containerd.sh"
on_exit ctrd_stop
ctrd_start || fail "containerd did not start"
ctrd_import || fail "could not import the test image"

loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
ctrd_run rc$$ --label s=recreate --label tier=web -- sh -c "$loop"
ctrd_run rs$$ --label s=restart --label 'reaper.drain=["/bin/sh", "-c", "echo drained-by-reaper; touch /drained"]' -- sh -c "$loop"
ctrd_run st$$ --label s=stop -- sh -c "$loop"
ctrd_run rm$$ --label s=remove -- sh -c "$loop"
for c in rc$$ rs$$; do
  ctrd_exec $c sh -c 'echo written-inside >/evil' || fail "could not write into $c"
done
rc_pid=$(ctrd_pid rc$$) rs_pid=$(ctrd_pid rs$$)
rc_info=$(ctr_ containers info rc$$)

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers:
  - { name: ctr, type: containerd, endpoint: "unix://$CTRD_SOCK", namespaces: [$CTRD_NS] }
policies:
  - { name: c, match: { labels: { s: recreate, reaper-test: "$$" } }, max_age: 1s, grace: 3s, health_timeout: 10s }
  - { name: r, match: { labels: { s: restart, reaper-test: "$$" } }, max_age: 1s, grace: 3s, strategy: restart, health_timeout: 10s }
  - { name: s, match: { labels: { s: stop, reaper-test: "$$" } }, max_age: 1s, grace: 3s, strategy: stop }
  - { name: m, match: { labels: { s: remove, reaper-test: "$$" } }, max_age: 1s, grace: 3s, strategy: remove }
YAML
sleep 1.5
reaper_once || fail "run --once exited non-zero"

# recreate: same container, new task, fresh rootfs.
ctrd_running rc$$ || fail "recreated rc$$ has no running task"
[ "$(ctrd_pid rc$$)" != "$rc_pid" ] || fail "rc$$ still runs its old task"
assert_eq "" "$(ctrd_exec rc$$ cat /evil 2>/dev/null || true)" "a file written in rc$$ before recreate"
rc_after=$(ctr_ containers info rc$$)
for f in .ID .Labels .Image .Snapshotter .SnapshotKey .Runtime.Name .Spec; do
  assert_eq "$(jq -cS "$f" <<<"$rc_info")" "$(jq -cS "$f" <<<"$rc_after")" "rc$$ $f after recreate"
done
# restart: same snapshot, so what was written is still there.
ctrd_running rs$$ || fail "restarted rs$$ has no running task"
[ "$(ctrd_pid rs$$)" != "$rs_pid" ] || fail "rs$$ still runs its old task"
assert_eq written-inside "$(ctrd_exec rs$$ cat /evil)" "a file written in rs$$ before restart"
# Its drain hook (label reaper.drain) ran inside it before the stop.
ctrd_exec rs$$ test -e /drained || fail "rs$$'s drain hook did not run inside it"
audit_any recycle.done '.policy == "r" and .drain.exit_code == 0 and (.drain.output | contains("drained-by-reaper")) and .drain.argv[0] == "/bin/sh"' ||
  fail "rs$$'s drain hook is not in its recycle.done line"
# stop: the container stays without a task.
assert_eq "" "$(ctrd_status st$$)" "st$$'s task after stop"
ctr_ containers info st$$ >/dev/null || fail "stop removed the container st$$"
# remove: nothing left, snapshot included.
ctr_ containers info rm$$ >/dev/null 2>&1 && fail "remove left the container rm$$"
ctr_ snapshots ls | awk '{print $1}' | grep -cx >/dev/null "rm$$" && fail "remove left the snapshot of rm$$"

# The runner's steps, each announced (recycle.step) before it acts: recreate
# in place (the container keeps its id: no rename, no second container).
steps() { audit_events recycle.step | jq -r --arg id "$CTRD_NS/$1" 'select(.id == $id) | .step' | paste -sd' '; }
assert_eq "stop-old reset start" "$(steps rc$$)" "rc$$'s steps (recreate)"
assert_eq "drain restart" "$(steps rs$$)" "rs$$'s steps (restart)"
assert_eq "stop-old" "$(steps st$$)" "st$$'s steps (stop)"
assert_eq "stop-old remove-old" "$(steps rm$$)" "rm$$'s steps (remove)"
for p in c r s m; do
  assert_eq 1 "$(audit_events recycle.begin | jq -c "select(.policy == \"$p\")" | wc -l)" "recycle.begin of policy $p"
  assert_eq 1 "$(audit_events recycle.done | jq -c "select(.policy == \"$p\")" | wc -l)" "recycle.done of policy $p"
done
audit_any recycle.begin '.policy == "c" and .id == $id and .name == $n and .kind == "container" and .provider == "ctr" and .strategy == "recreate"' \
  --arg id "$CTRD_NS/rc$$" --arg n "rc$$" || fail "recycle.begin fields of rc$$"
audit_any recycle.done '.policy == "c" and .replacement_id == $id and .new_pid == ($pid | tonumber) and .snapshot.key == $n and (.snapshot.parent | startswith("sha256:"))' \
  --arg id "$CTRD_NS/rc$$" --arg n "rc$$" --arg pid "$(ctrd_pid rc$$)" || fail "recycle.done details of rc$$"
audit_any recycle.done '.policy == "r" and .replacement_id == $id' --arg id "$CTRD_NS/rs$$" || fail "restart's replacement is itself"
audit_any recycle.done '.policy == "m" and .replacement_id == null' || fail "remove has no replacement"
# Its process traps SIGTERM: stopped in time, not killed.
audit_any recycle.done '.policy == "c" and .stop_signal == "SIGTERM" and (.killed | not) and .exit_status == 0' || fail "rc$$ was not stopped by SIGTERM"
verify_audit
log "containerd: recreate gives a fresh rootfs, restart keeps it, stop and remove behave"
