#!/usr/bin/env bash
# reaper report over the audit log of a real run: two policies, three
# containers recycled; the figures, the policy and service names, no
# overstayer; then a log edited to make one container overstay: the report
# names it and warns that the chain does not verify.  The SVG is valid XML
# and its bars add up to the recycles.
source "$(dirname "$0")/lib.sh"
command -v xmllint >/dev/null || fail "xmllint is not installed (apt-get install libxml2-utils)"
cmd='trap "exit 0" TERM; while :; do sleep 0.2; done'
run rweb$$-1 -l tier=web reaper-test/sleeper:1 sh -c "$cmd"
run rweb$$-2 -l tier=web reaper-test/sleeper:1 sh -c "$cmd"
run rbatch$$_1 reaper-test/sleeper:1 sh -c "$cmd"
batch_id=$(cid rbatch$$_1)
config <<YAML
agent:
  listen: ""
  audit_log: $T/audit.jsonl
providers:
  - name: local
    type: docker
    endpoint: $REAPER_ENDPOINT
policies:
  - name: web
    match:
      labels: { reaper-test: "$$", tier: web }
    max_age: 1s
    grace: 2s
    strategy: recreate
    health_timeout: 20s
  - name: batch
    match:
      labels: { reaper-test: "$$" }
    max_age: 1s
    grace: 2s
    strategy: recreate
    health_timeout: 20s
YAML
sleep 1.5
reaper_once || fail "run --once exited non-zero"
assert_eq 3 "$(audit_count recycle.done)" "recycle.done lines"
verify_audit

# --- the report of an intact log
rc=0
"$REAPER" report --json "$T/audit.jsonl" >"$T/r.json" 2>"$T/r.err" || rc=$?
assert_eq 0 "$rc" "report's exit status"
assert_eq "" "$(cat "$T/r.err")" "report's stderr on an intact log"
q() { jq -r "$1" "$T/r.json"; }
assert_eq true "$(q .chain.intact)" "chain intact"
assert_eq 3 "$(q .overall.recycles)" "overall recycles"
assert_eq 0 "$(q .overall.failures)" "overall failures"
assert_eq "batch web" "$(q '[.policies[].name] | join(" ")')" "policies"
assert_eq 2 "$(q '.policies[] | select(.name == "web") | .recycles')" "web recycles"
assert_eq 1 "$(q '.policies[] | select(.name == "batch") | .recycles')" "batch recycles"
assert_eq "rbatch$$ rweb$$" "$(q '[.services[].name] | join(" ")')" "services"
assert_eq 2 "$(q ".services[] | select(.name == \"rweb$$\") | .recycles")" "rweb$$ recycles"
assert_eq 1 "$(q .overall.max_age_max_s)" "max age"
q ".overall.age_p50_s >= 1 and .overall.age_p50_s < 300" | grep -cx >/dev/null true ||
  fail "median age at recycle $(q .overall.age_p50_s) is not between 1 s and 5 min"
q '.overall.duration_p95_s > 0 and .overall.lateness_worst_s >= 0' | grep -cx >/dev/null true ||
  fail "durations or lateness missing: $(q .overall)"
q '.overall.per_hour > 0' | grep -cx >/dev/null true || fail "no cadence: $(q .overall)"
assert_eq 0 "$(q '.overstayed | length')" "overstayers"
assert_eq 0 "$(q '.not_recycled | length')" "workloads not recycled"
# Fresh content: every recycle counted under one reason (unstated when the
# agent wrote none); a locally built image has no new digest.
assert_eq 3 "$(q '[.overall | .reason_max_age, .reason_hard_max_age, .reason_update, .reason_image_age,
  .reason_label, .reason_pull, .reason_other, .reason_unstated] | add')" "recycles by reason"
assert_eq 0 "$(q .patch_latency.overall.digests)" "new digests of a local image"
assert_eq null "$(q .patch_latency.overall.median_s)" "patch latency without a new digest"

"$REAPER" report "$T/audit.jsonl" >"$T/r.txt" || fail "text report failed"
grep -q '^Lived longer than max age + 5m: none$' "$T/r.txt" || { cat "$T/r.txt"; fail "text: no 'none' for overstayers"; }
grep -q '^Recycle failed or unfinished, not recycled later in the log: none$' "$T/r.txt" ||
  fail "text: no 'none' for workloads not recycled"
grep -Eq "^policy +web +2 +0 " "$T/r.txt" || { cat "$T/r.txt"; fail "text: no row for policy web"; }

"$REAPER" report --csv "$T/audit.jsonl" >"$T/r.csv" || fail "csv report failed"
assert_eq 6 "$(wc -l <"$T/r.csv")" "csv rows (heading, 2 policies, 2 services, overall)"
head -1 "$T/r.csv" | grep -c >/dev/null ',per_day,longest_workload,content_age_p50_s,.*,patch_latency_p50_s,patch_latency_worst_s.$' ||
  { head -1 "$T/r.csv"; fail "csv: heading without the fresh content columns after longest_workload"; }
grep -q $'^policy,web,,2,0,0,0,0,0,1,1,' "$T/r.csv" || { cat "$T/r.csv"; fail "csv: policy web row"; }

"$REAPER" report --svg "$T/r.svg" "$T/audit.jsonl" >/dev/null || fail "svg report failed"
xmllint --noout "$T/r.svg" || fail "the SVG is not well-formed XML"
bars=$(grep -o 'data-count="[0-9]*"' "$T/r.svg" | grep -o '[0-9]*' | awk '{ s += $1 } END { print s + 0 }')
assert_eq 3 "$bars" "recycles in the SVG's bars"
grep -q 'class="bar" data-policy="web"' "$T/r.svg" || fail "no bar for policy web"
grep -q 'class="bar" data-policy="batch"' "$T/r.svg" || fail "no bar for policy batch"
grep -q 'class="maxage"' "$T/r.svg" || fail "no max age line"
if [ -n "${ARTIFACTS:-}" ]; then
  cp "$T/r.svg" "$ARTIFACTS/test_report.svg"
  cp "$T/audit.jsonl" "$ARTIFACTS/test_report.audit.jsonl"
fi

# --- an edited log: the batch container lived 100000 s
line=$(grep -n '"event":"recycle.done"' "$T/audit.jsonl" | grep "\"id\":\"$batch_id\"" | cut -d: -f1)
[ -n "$line" ] || fail "no recycle.done line for $batch_id"
sed -i "${line}s/\"age_s\":[0-9]*/\"age_s\":100000/" "$T/audit.jsonl"
rc=0
"$REAPER" report --json "$T/audit.jsonl" >"$T/r.json" 2>"$T/r.err" || rc=$?
assert_eq 0 "$rc" "report's exit status on a broken chain"
grep -q "does not verify: $T/audit.jsonl:$line:" "$T/r.err" || { cat "$T/r.err"; fail "stderr does not name line $line"; }
assert_eq false "$(q .chain.intact)" "chain intact after the edit"
assert_eq 1 "$(q '.overstayed | length')" "overstayers after the edit"
assert_eq "rbatch$$_1 $batch_id batch 1 100000" \
  "$(q '.overstayed[0] | "\(.name) \(.id) \(.policy) \(.max_age_s) \(.age_s)"')" "the overstayer"
"$REAPER" report "$T/audit.jsonl" >"$T/r.txt" 2>/dev/null || fail "text report failed"
grep -q '^Lived longer than max age + 5m: 1$' "$T/r.txt" || { cat "$T/r.txt"; fail "text: overstayer count"; }
grep -E "^local +rbatch$$_1 +${batch_id:0:12} +batch " "$T/r.txt" >/dev/null || { cat "$T/r.txt"; fail "text: overstayer row"; }
"$REAPER" report --tolerance 2d "$T/audit.jsonl" >"$T/r.txt" 2>/dev/null || fail "report --tolerance failed"
grep -q '^Lived longer than max age + 2d: none$' "$T/r.txt" || fail "--tolerance 2d still lists the overstayer"

# --- time bounds and exit codes
"$REAPER" report --json --since -1h "$T/audit.jsonl" >"$T/r.json" 2>/dev/null || fail "--since -1h failed"
assert_eq 3 "$(q .overall.recycles)" "recycles in the last hour"
"$REAPER" report --json --until 2000-01-01 "$T/audit.jsonl" >"$T/r.json" 2>/dev/null || fail "--until 2000-01-01 failed"
assert_eq 0 "$(q .overall.recycles)" "recycles before 2000"
rc=0; "$REAPER" report "$T/missing.jsonl" >/dev/null 2>&1 || rc=$?
assert_eq 1 "$rc" "exit status for a log that cannot be read"
rc=0; "$REAPER" report --since yesterday "$T/audit.jsonl" >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "exit status for a bad --since"
rc=0; "$REAPER" report >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "exit status without a log"
log "report: 3 recycles in 2 policies, the edited overstayer named"
