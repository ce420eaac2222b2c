#!/usr/bin/env bash
# Fresh content, end to end: a new digest pushed under the tag two running
# containers were created from reaches them long before their max age, one
# at a time (max_unavailable 1), inside the policy's window; the replacement
# is pulled by digest and created from the user's reference (docker ps still
# shows the name); the audit log says why (reason update), what ran before
# and after, and when the digest was first seen (image.seen), which a
# restart of reaper remembers.  An unchanged tag costs one request per
# check.
source "$(dirname "$0")/lib.sh"
lib=$(cd "$(dirname "$0")/../lib" && pwd)
source "$lib/registry.sh"
source "$lib/fresh.sh"
port=$(fresh_port 0)
listen=$(($(fresh_port 0) + 1))
reg=127.0.0.1:$port
registry_start "$T/reg" "$port"
img=$reg/rpt/app:1

d1=$(push_version "$img" 1) || fail "push v1"
v1=$(image_id "$img")
run a$$ -l fresh=yes "$img"
run b$$ -l fresh=yes "$img"
run pinned$$ -l fresh=no "$img"

# A window that holds now (UTC), for the next half hour.
from=$(date -u -d '-2 min' +%H:%M)
to=$(date -u -d '+30 min' +%H:%M)
config <<YAML
agent: { listen: "127.0.0.1:$listen", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - name: web
    match: { labels: { fresh: "yes", reaper-test: "$$" } }
    max_age: 1h
    grace: 1s
    max_unavailable: 1
    window: { start: "$from", end: "$to" }
    update: { check: 1s }
  - name: pin
    match: { labels: { fresh: "no", reaper-test: "$$" } }
    max_age: 1h
YAML
"$REAPER" check-config -c "$T/config.yaml" || fail "the configuration is refused"
start_reaper
wait_for 20 "the first check" grep -q "image.seen" "$T/audit.jsonl"
audit_any image.seen '.reference == $r and .digest == $d and .source == "workload" and .previous_digest == null' \
  --arg r "$img" --arg d "$d1" || fail "the running digest is not seen as a workload's"

# Nothing new: one HEAD per check, and no recycle.
metric() { curl -fsS "http://127.0.0.1:$listen/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
wait_for 10 "the metrics" metric 'reaper_registry_resolves_total{outcome="ok"}'
r0=$(metric 'reaper_registry_requests_total')
sleep 5
r1=$(metric 'reaper_registry_requests_total')
checks=$(((r1 - r0)))
[ "$checks" -ge 3 ] && [ "$checks" -le 7 ] || fail "requests in 5 s of 1 s checks of an unchanged tag: $checks"
log "an unchanged tag: $checks requests in 5 s (one HEAD per 1 s check)"
[ "$(audit_count recycle.begin)" = 0 ] || fail "something was recycled with nothing new"

# v2 under the same tag, in the registry only (the engine must pull it):
# staged under another tag and forgotten by the engine, then promoted, so
# that reaper cannot see it before the engine has forgotten it (a push
# under the tag itself raced with the rollout, which pulled v2 back).
d2=$(stage_version "$reg" rpt/app 2) || fail "stage v2"
v2=$(image_id "$reg/rpt/app:stage")
[ "$d1" != "$d2" ] || fail "v2 has v1's digest"
forget_locally "$reg/rpt/app:stage" "$v2"
! docker image inspect "${img%:*}@$d2" >/dev/null 2>&1 || fail "v2 is still on the engine"
promote "$reg" rpt/app 1 "$d2" || fail "promote v2"
pushed=$(date +%s%N)
wait_for 60 "two recycle.done" bash -c "[ \$(jq -c 'select(.event == \"recycle.done\")' $T/audit.jsonl | wc -l) -ge 2 ]"
rolled=$(date +%s%N)
assert_eq "$v2" "$(runs_image a$$)" "a runs v2"
assert_eq "$v2" "$(runs_image b$$)" "b runs v2"
log "push to rollout of both: $(((rolled - pushed) / 1000000)) ms"
assert_eq "$img" "$(config_image a$$)" "a's image as docker ps shows it"
assert_eq "$img" "$(docker ps --filter name=b$$ --format '{{.Image}}')" "docker ps of b"
assert_eq "$v1" "$(runs_image pinned$$)" "a policy without update keeps its content"

audit_any image.seen '.reference == $r and .digest == $d and .previous_digest == $p and .new_content and .source == "registry" and .platform_digest == $d' \
  --arg r "$img" --arg d "$d2" --arg p "$d1" || fail "no image.seen for v2"
for n in a$$ b$$; do
  audit_any recycle.done '.name == $n and .reason == "update" and .image == $r and .image_digest == $d2 and .previous_image_digest == $d1 and .age_s < 3600 and (.content_age_s | type) == "number"' \
    --arg n "$n" --arg r "$img" --arg d2 "$d2" --arg d1 "$d1" || fail "$n's recycle.done"
  audit_any recycle.step '.name == $n and .step == "pull" and .image_digest == $d2' --arg n "$n" --arg d2 "$d2" ||
    fail "$n's pull is not announced"
done
audit_jq -e --arg v2 "$v2" --arg v1 "$v1" '[.[] | select(.event == "recycle.done")] |
  (.[0] | .pulled and .image_id == $v2 and .previous_image_id == $v1) and (.[1].pulled | not)' >/dev/null ||
  fail "the first rollout did not pull v2, or the second pulled it again"
# One at a time: the second began after the first was done.
audit_jq -e '[.[] | select(.event == "recycle.begin" or .event == "recycle.done") | .event] == ["recycle.begin", "recycle.done", "recycle.begin", "recycle.done"]' >/dev/null ||
  fail "the two recycles overlapped (max_unavailable 1)"
[ "$(audit_count recycle.begin)" = 2 ] || fail "more than two recycles"
seen_ms=$(audit_jq -r --arg d "$d2" '[.[] | select(.event == "image.seen" and .digest == $d)][0].ts')
done_ts=$(audit_jq -r '[.[] | select(.event == "recycle.done")] | last | .ts')
log "first seen $seen_ms, last rollout done $done_ts"

# A restart: the digests are known, and none is seen again.
stop_reaper
seen_before=$(audit_count image.seen)
start_reaper
wait_for 20 "the agent's second start" grep -q '"mode":"run"' "$T/audit.jsonl"
sleep 4
stop_reaper
assert_eq "$seen_before" "$(audit_count image.seen)" "image.seen lines after a restart"
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" || fail "plan"
jq -e --arg n a$$ --arg d "$d2" --arg s "$seen_ms" '.[] | select(.name == $n) | .image.digest == $d and .image.first_seen[0:23] == $s[0:23]' "$T/plan.json" >/dev/null ||
  fail "plan does not show a's digest first seen at $seen_ms: $(jq -c --arg n a$$ '.[] | select(.name == $n) | .image' "$T/plan.json")"
[ "$(audit_count recycle.begin)" = 2 ] || fail "a restart recycled again"
verify_audit
log "a new digest rolled out before max_age, one at a time, in the window; image.seen survives a restart"
