#!/usr/bin/env bash
# reaper killed (SIGKILL) at every step of a recycle, in both orders: the
# next start finds the unfinished recycle in the audit log and the engine,
# finishes it or rolls it back (recycle.recovered), and afterwards exactly
# one container of that name runs, with its configuration, nothing of
# reaper's temporary work is left, and the log verifies.  The crash points
# exist only in test builds (-DREAPER_CRASHPOINTS=ON).
source "$(dirname "$0")/lib.sh"
"$REAPER" version >/dev/null
points="after-begin after-rename-old after-create after-stop-old after-start-new after-remove-old"
n=0
for order in stop-first start-first; do
  for point in $points; do
    n=$((n + 1))
    name=cr$n-$$
    run $name -e KEEP=me -l keep=label reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
    old_id=$(cid $name)
    rm -f "$T/audit.jsonl"
    config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: test, match: { name: "$name" }, max_age: 1s, grace: 2s, order: $order, health_timeout: 10s }
YAML
    sleep 1.2
    rc=0
    REAPER_CRASH_AT=$point "$REAPER" run -c "$T/config.yaml" --once >>"$T/reaper.log" 2>&1 || rc=$?
    assert_eq 137 "$rc" "$order/$point: exit status of the crashed run (SIGKILL)"
    assert_eq 1 "$(audit_count recycle.begin)" "$order/$point: begun before the crash"
    assert_eq 0 "$(audit_count recycle.done)" "$order/$point: not done before the crash"
    reaper_once || fail "$order/$point: the run after the crash failed"
    audit_any recycle.recovered '.id == $id and .ok == true' --arg id "$old_id" ||
      fail "$order/$point: no successful recycle.recovered for $old_id"
    wait_for 10 "$name running" running $name
    assert_eq 1 "$(names_matching "$name" | wc -l)" "$order/$point: containers named $name*"
    assert_eq KEEP=me "$(docker inspect -f '{{range .Config.Env}}{{if eq . "KEEP=me"}}{{.}}{{end}}{{end}}' $name)" "$order/$point: env kept"
    assert_eq label "$(docker inspect -f '{{index .Config.Labels "keep"}}' $name)" "$order/$point: label kept"
    verify_audit
    action=$(audit_events recycle.recovered | jq -r .action | head -1)
    log "$order/$point: recovered ($action)"
    docker rm -f $name >/dev/null
  done
done
[ -z "$(docker ps -aq --filter name=reaper-old)" ] || fail "a -reaper-old container was left behind"
