#!/usr/bin/env bash
# One plan for every engine: with a docker, a containerd and a host provider
# configured, `reaper plan` lists the Docker container, the containerd task
# and the machine itself in one table (and in --json), each with its kind,
# policy, start and the action it would get; nothing is changed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/containerd.sh"
on_exit ctrd_stop
ctrd_start || fail "containerd did not start"
ctrd_import || fail "could not import the test image"
run dk$$ -l tier=web reaper-test/sleeper:1
ctrd_run ct$$ --label tier=web
dk_id=$(cid dk$$)
ct_pid=$(ctrd_pid ct$$)
export REAPER_STATE_DIR=$T/state

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers:
  - { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" }
  - { name: ctr, type: containerd, endpoint: "unix://$CTRD_SOCK", namespaces: [$CTRD_NS] }
  - { name: self, type: host }
policies:
  - { name: web, match: { labels: { tier: web, reaper-test: "$$" } }, max_age: 1h }
  - { name: hosts, match: { kind: host }, max_age: 30d, strategy: drain-replace, replace: [/bin/true] }
YAML
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.txt" 2>"$T/plan.err" || { cat "$T/plan.err"; fail "plan exited non-zero"; }
cat "$T/plan.txt"
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" 2>>"$T/plan.err" || fail "plan --json exited non-zero"

# The table: one header, and a row per engine.
grep -q "^PROVIDER.*KIND.*NAME.*POLICY.*STARTED.*ACTION" "$T/plan.txt" || fail "no workload table header"
grep -qE "^local +docker +Docker Engine [0-9]" "$T/plan.txt" || fail "the providers table does not name the docker engine"
grep -E "^local +container +dk$$ +web .*recreate at" "$T/plan.txt" >/dev/null || fail "the docker container is not in the table"
grep -E "^ctr +container +ct$$ +web .*recreate at" "$T/plan.txt" >/dev/null || fail "the containerd task is not in the table"
grep -E "^self +host +$(hostname) +hosts .*drain-replace at" "$T/plan.txt" >/dev/null || fail "the host is not in the table"

# The same in JSON, with ids and start times from each engine.
jq -e --arg id "$dk_id" 'any(.[]; .provider == "local" and .kind == "container" and .id == $id and .policy == "web")' "$T/plan.json" >/dev/null || fail "docker container in --json"
jq -e --arg id "$CTRD_NS/ct$$" 'any(.[]; .provider == "ctr" and .kind == "container" and .id == $id and .name == "ct'$$'" and .policy == "web" and .strategy == "recreate" and .age_s < 60)' "$T/plan.json" >/dev/null || fail "containerd task in --json"
boot=$(awk '/^btime/ {print $2}' /proc/stat)
jq -e --arg b "$(date -u -d @"$boot" +%Y-%m-%dT%H:%M:%S)" 'any(.[]; .provider == "self" and .kind == "host" and .policy == "hosts" and .strategy == "drain-replace" and (.started_at | startswith($b)))' "$T/plan.json" >/dev/null || fail "host in --json (started at boot)"

# A plan changes nothing.
assert_eq "$ct_pid" "$(ctrd_pid ct$$)" "the containerd task after plan"
assert_eq "$dk_id" "$(cid dk$$)" "the docker container after plan"
[ ! -e "$T/audit.jsonl" ] || [ "$(audit_count recycle.begin)" = 0 ] || fail "plan began a recycle"

# The kubelet's namespace is refused at start, clearly, unless allowed.
sed -i "s/namespaces: \[$CTRD_NS\]/namespaces: [$CTRD_NS, k8s.io]/" "$T/config.yaml"
rc=0
"$REAPER" plan -c "$T/config.yaml" >/dev/null 2>"$T/k8s.err" || rc=$?
assert_eq 2 "$rc" "plan's exit status with namespace k8s.io"
grep -q "k8s.io belongs to the kubelet.*allow_kubernetes: true" "$T/k8s.err" || { cat "$T/k8s.err"; fail "no clear refusal of k8s.io"; }
sed -i "s/namespaces: \[$CTRD_NS, k8s.io\]/namespaces: [$CTRD_NS, k8s.io], allow_kubernetes: true/" "$T/config.yaml"
"$REAPER" plan -c "$T/config.yaml" >/dev/null 2>"$T/k8s.err" || { cat "$T/k8s.err"; fail "k8s.io refused although allowed"; }
log "plan lists docker, containerd and the host in one table; k8s.io only when allowed"
