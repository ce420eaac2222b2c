#!/usr/bin/env bash
# Containers that depend on one another, as people run them (issue 15):
#
#   host$$   its network namespace shared by side$$ (--network container:)
#   pidh$$   its PID namespace shared by pids$$ (--pid container:)
#   ipch$$   --ipc shareable, its IPC namespace joined by ipcs$$
#   db$$     linked to by app$$ (--link db$$:database, the legacy link)
#   data$$   its volumes used by user$$ (--volumes-from)
#
# Recreating a container whose namespace another one shares, or that
# another one links to, would leave that other one without its network, kill
# its processes (PID), or keep it on a namespace or an address that is gone:
# such a recycle is refused when reaper first sees the dependency, with a
# reason that names the dependent and how it depends, shown by `plan`,
# written once as recycle.refused (nothing begun, not a failure), and both
# keep running.  The dependents themselves, and both sides of --volumes-from
# (the volumes outlive a recreate), are recycled, with the dependency kept
# by name.
source "$(dirname "$0")/lib.sh"
docker network create --label "$TEST_LABEL" rpt-dep$$ >/dev/null
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
run host$$ -l role=target --network rpt-dep$$ reaper-test/sleeper:1 sh -c "$loop"
run side$$ -l role=dependent --network container:host$$ reaper-test/sleeper:1 sh -c "$loop"
run pidh$$ -l role=target reaper-test/sleeper:1 sh -c "$loop"
run pids$$ -l role=dependent --pid container:pidh$$ reaper-test/sleeper:1 sh -c "$loop"
run ipch$$ -l role=target --ipc shareable reaper-test/sleeper:1 sh -c "$loop"
run ipcs$$ -l role=dependent --ipc container:ipch$$ reaper-test/sleeper:1 sh -c "$loop"
run db$$ -l role=target reaper-test/sleeper:1 sh -c "$loop"
run app$$ -l role=dependent --link db$$:database reaper-test/sleeper:1 sh -c "$loop"
run data$$ -l role=volumes -v /shared reaper-test/sleeper:1 sh -c "echo kept >/shared/f; $loop"
run user$$ -l role=volumes --volumes-from data$$ reaper-test/sleeper:1 sh -c "$loop"
declare -A id
for c in host side pidh pids ipch ipcs db app data user; do id[$c]=$(cid $c$$); done

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1s, grace: 2s, max_unavailable: 10 }
YAML
sleep 1.5

# plan: each target refused, with its dependent and how.
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" 2>"$T/plan.err" || fail "plan failed: $(cat "$T/plan.err")"
refusal() { jq -r --arg n "$1" '.[] | select(.name == $n) | .refused // empty' "$T/plan.json"; }
expect_refused() { # NAME DEPENDENT HOW
  local why
  why=$(refusal "$1")
  [[ $why == *"$2"*"$3"* ]] || fail "plan: $1 is not refused naming $2 and $3: '$why' ($(jq -c --arg n "$1" '.[] | select(.name == $n)' "$T/plan.json"))"
}
expect_refused host$$ side$$ "network namespace"
expect_refused pidh$$ pids$$ "PID namespace"
expect_refused ipch$$ ipcs$$ "IPC namespace"
expect_refused db$$ app$$ "link"
for c in side pids ipcs app data user; do
  [ -z "$(refusal $c$$)" ] || fail "plan refuses $c$$: $(refusal $c$$)"
done

rc=0
reaper_once || rc=$?
assert_eq 0 "$rc" "run --once exit status (a refusal is no failure)"
for c in host pidh ipch db; do
  assert_eq "${id[$c]}" "$(cid $c$$)" "$c$$ kept"
  audit_any recycle.refused '.id == $id and .refused_by == "provider"' --arg id "${id[$c]}" ||
    fail "no recycle.refused for $c$$"
done
assert_eq 4 "$(audit_count recycle.refused)" "recycle.refused lines"
assert_eq 0 "$(audit_count recycle.failed)" "recycle.failed lines"
# The dependents and the volumes' two sides were recycled, their dependency
# kept by name.
for c in side pids ipcs app data user; do
  [ "$(cid $c$$)" != "${id[$c]}" ] || fail "$c$$ was not recycled"
  running $c$$ || fail "$c$$ is not running after its recycle"
done
for c in host side pidh pids ipch ipcs db app data user; do
  running $c$$ || fail "$c$$ is not running"
done
# (The engine keeps a container: mode as the id it named.)
assert_eq "container:${id[host]}" "$(docker inspect -f '{{.HostConfig.NetworkMode}}' side$$)" "side$$'s network mode"
assert_eq "container:${id[pidh]}" "$(docker inspect -f '{{.HostConfig.PidMode}}' pids$$)" "pids$$'s PID mode"
assert_eq "container:${id[ipch]}" "$(docker inspect -f '{{.HostConfig.IpcMode}}' ipcs$$)" "ipcs$$'s IPC mode"
docker inspect -f '{{json .HostConfig.Links}}' app$$ | grep -c >/dev/null "db$$:/app$$/database" || fail "app$$'s link: $(docker inspect -f '{{json .HostConfig.Links}}' app$$)"
assert_eq "[\"data$$\"]" "$(docker inspect -f '{{json .HostConfig.VolumesFrom}}' user$$)" "user$$'s volumes-from"
assert_eq kept "$(docker exec user$$ cat /shared/f)" "the shared volume's data, seen by user$$"
assert_eq kept "$(docker exec data$$ cat /shared/f)" "the shared volume's data, seen by data$$"
# The dependents really share the namespaces of the containers kept.
assert_eq "$(docker exec host$$ cat /proc/net/dev | wc -l)" "$(docker exec side$$ cat /proc/net/dev | wc -l)" "side$$ in host$$'s network namespace"
docker exec pids$$ ps | grep -c >/dev/null 'sleep' || fail "pids$$ does not see pidh$$'s processes"

# A running agent says it once, not at every look.
start_reaper
sleep 6
stop_reaper
assert_eq 8 "$(audit_count recycle.refused)" "recycle.refused lines (one per target per agent run)"
verify_audit
log "refused host, pidh, ipch and db under their dependents; recycled the dependents and both sides of --volumes-from"
