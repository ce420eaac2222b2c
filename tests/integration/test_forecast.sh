#!/usr/bin/env bash
# The forward-looking view against the private engine: four containers whose
# max ages (reaper.max-age labels) put one due within the hour, one within
# the day, one later and one past its max age.  `reaper plan` prints the
# counts per policy after its table (a policy with no workload shows zeros);
# a running agent (dry run, so the overdue one stays) shows the same in
# /metrics (reaper_due_workloads, reaper_most_overdue_seconds, promtool
# accepts them), in /status' forecast and in the page's table; the most
# overdue seconds match the overdue container's age from the engine.
source "$(dirname "$0")/lib.sh"

for tool in curl jq; do
  command -v "$tool" >/dev/null ||
    fail "$tool is not installed (contrib/install-deps.sh --test installs it)"
done

PORT=$(free_port)
URL=http://127.0.0.1:$PORT

run hour$$ -l reaper.max-age=30m reaper-test/sleeper:1
run day$$ -l reaper.max-age=5h reaper-test/sleeper:1
run later$$ -l reaper.max-age=3d reaper-test/sleeper:1
run old$$ -l reaper.max-age=2s reaper-test/sleeper:1

config <<YAML
agent:
  listen: 127.0.0.1:$PORT
  audit_log: $T/audit.jsonl
  resync: 5s
providers:
  - name: local
    type: docker
    endpoint: $REAPER_ENDPOINT
policies:
  - name: test
    match:
      labels: { reaper-test: "$$" }
    max_age: 2h
    hard_max_age: 4d   # the labels may lengthen it up to this
    jitter: 0
    strategy: recreate
  - name: idle
    match:
      labels: { nothing: here }
    max_age: 1h
YAML

# How long old$$ has lived past its 2 s, by the engine's clock of its start.
overdue_now() {
  local s
  s=$(date -d "$(started_at old$$)" +%s.%N)
  python3 -c "import time; print(time.time() - $s - 2)"
}
secs() { # "1m5s" or "7s" -> seconds
  python3 -c "
import re, sys
t = sys.argv[1]; n = 0
for v, u in re.findall(r'(\d+)(d|h|ms|m|s)', t):
    n += int(v) * {'d': 86400, 'h': 3600, 'm': 60, 's': 1, 'ms': 0.001}[u]
print(n)" "$1"
}
sleep 4 # old$$ is then a few seconds past its max age

# 1. plan: nothing acted on, so old$$ is due now and counts as due.
over_before=$(overdue_now)
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.txt" 2>"$T/plan.err" || {
  cat "$T/plan.err"
  fail "reaper plan failed"
}
over_after=$(overdue_now)
cat "$T/plan.txt"
summary() { awk -v p="$1" 'f && $1 == p; /^POLICY +WORKLOADS/ {f = 1}' "$T/plan.txt"; }
read -r _ workloads due1h due1d over name <<<"$(summary test)"
assert_eq 4 "$workloads" "plan: workloads of policy test"
assert_eq 2 "$due1h" "plan: due within 1h (hour$$ and the overdue old$$)"
assert_eq 3 "$due1d" "plan: due within 1d (hour$$, day$$, old$$)"
assert_eq "(old$$)" "$name" "plan: the most overdue workload"
# Between what the engine's start time gives before and after plan ran
# (plan shows whole seconds).
python3 -c "import sys; sys.exit(0 if $over_before - 1 <= $(secs "$over") <= $over_after else 1)" ||
  fail "plan: most overdue $over, the engine says ${over_before}s to ${over_after}s"
assert_eq "0 0 0 -" "$(summary idle | awk '{print $2, $3, $4, $5}')" "plan: the policy without workloads"

# 2. the agent, dry run: old$$ is planned (no longer due) and still lives
# past its max age.
start_reaper --dry-run
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
ready() { [ "$(http_code "$URL/readyz")" = 200 ]; }
wait_for 30 "$URL/readyz" ready
planned() { [ "$(audit_count recycle.planned)" -ge 1 ]; }
wait_for 20 "old$$ planned" planned
audit_any recycle.planned ".name == \"old$$\"" || fail "the planned recycle is not old$$'s"

over_before=$(overdue_now)
curl -fsS --max-time 5 "$URL/metrics" >"$T/metrics.txt" || fail "GET /metrics failed"
over_after=$(overdue_now)
grep -E '^reaper_(due_workloads|most_overdue_seconds)' "$T/metrics.txt"
if command -v promtool >/dev/null; then
  promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 || {
    cat "$T/promtool.out"
    fail "promtool check metrics rejected /metrics"
  }
fi
m() { awk -v k="$1" '$1 == k {print $2}' "$T/metrics.txt"; }
assert_eq 1 "$(m 'reaper_due_workloads{policy="test",within="1h"}')" "metrics: due within 1h"
assert_eq 2 "$(m 'reaper_due_workloads{policy="test",within="1d"}')" "metrics: due within 1d"
assert_eq 0 "$(m 'reaper_due_workloads{policy="idle",within="1h"}')" "metrics: idle policy, 1h"
assert_eq 0 "$(m 'reaper_due_workloads{policy="idle",within="1d"}')" "metrics: idle policy, 1d"
assert_eq 0 "$(m 'reaper_most_overdue_seconds{policy="idle"}')" "metrics: idle policy, most overdue"
over=$(m 'reaper_most_overdue_seconds{policy="test"}')
python3 -c "import sys; sys.exit(0 if $over_before <= $over <= $over_after else 1)" ||
  fail "metrics: most overdue ${over}s, the engine says ${over_before}s to ${over_after}s"
# Bounded cardinality: no series names a workload.
! grep -E '^reaper_(due_workloads|most_overdue_seconds)' "$T/metrics.txt" | grep -c >/dev/null "$$" ||
  fail "a forecast series names a workload"

over_before=$(overdue_now)
curl -fsS --max-time 5 "$URL/status" >"$T/status.json" || fail "GET /status failed"
over_after=$(overdue_now)
jq -e --arg n "old$$" '.forecast | any(.policy == "test" and .workloads == 4 and .due_1h == 1
  and .due_1d == 2 and .most_overdue_name == $n)' "$T/status.json" >/dev/null ||
  fail "/status forecast: $(jq -c .forecast "$T/status.json")"
# Whole seconds there: between what the engine's start time gives before
# and after the request (a fixed floor depended on how fast the agent came
# up: 3 s on a fresh machine, where 4 was assumed).
over=$(jq '.forecast[] | select(.policy == "test") | .most_overdue_s' "$T/status.json")
python3 -c "import sys; sys.exit(0 if $over_before - 1 <= $over <= $over_after else 1)" ||
  fail "/status: most overdue ${over}s, the engine says ${over_before}s to ${over_after}s"
jq -e '.forecast | any(.policy == "idle" and .workloads == 0 and .most_overdue_s == 0)' \
  "$T/status.json" >/dev/null || fail "/status forecast lacks the idle policy"

curl -fsS --max-time 5 "$URL/" >"$T/page.html" || fail "GET / failed"
grep -q "Coming up" "$T/page.html" || fail "the page has no forecast table"
grep -o '<section><h2>Coming up.*</section>' "$T/page.html" | sed 's/<\/section>.*//' >"$T/coming.html"
grep -q "old$$" "$T/coming.html" || fail "the page's forecast does not name the most overdue"
grep -q "<td>4</td><td>1</td><td>2</td>" "$T/coming.html" ||
  fail "the page's forecast counts: $(cat "$T/coming.html")"

stop_reaper
verify_audit
log "ok"
