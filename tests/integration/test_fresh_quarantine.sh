#!/usr/bin/env bash
# Guardrails on a bad change: a new digest whose replacement fails its
# health check is rolled back, and after one failure (update.max_failures
# 1) that digest is quarantined for its reference (image.quarantined):
# the next workload waiting for it keeps its old content
# (recycle.refused refused_by quarantine), plan and /metrics say so, and a
# max-age recycle goes on with the content that works.  A newer digest
# lifts the quarantine.
source "$(dirname "$0")/lib.sh"
lib=$(cd "$(dirname "$0")/../lib" && pwd)
source "$lib/registry.sh"
source "$lib/fresh.sh"
port=$(fresh_port 8)
listen=$((port + 1))
reg=127.0.0.1:$port
registry_start "$T/reg" "$port"
img=$reg/rpt/guarded:1
healthy='HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["/bin/true"]'
broken='HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["/bin/false"]'

d1=$(push_version "$img" 1 "$healthy") || fail "push v1"
v1=$(image_id "$img")
run q1$$ -l guarded=yes "$img"
run q2$$ -l guarded=yes -l reaper.max-age=40s "$img"
wait_for 20 "v1 healthy" bash -c "[ \"\$(docker inspect -f '{{.State.Health.Status}}' q2$$)\" = healthy ]"
id2=$(cid q2$$)
config <<YAML
agent: { listen: "127.0.0.1:$listen", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - name: guarded
    match: { labels: { guarded: "yes", reaper-test: "$$" } }
    max_age: 1h
    grace: 1s
    health_timeout: 15s
    # The old container serves until the new one is healthy: a broken
    # digest never costs it a stop.  (It also keeps clear of a dockerd
    # 20.10 bug: a container renamed while stopped, then started, cannot
    # be renamed again, "sandbox ... not found".)
    order: start-first
    max_unavailable: 1
    update: { check: 1s, max_failures: 1 }
YAML
start_reaper
wait_for 20 "the first check" grep -q '"image.seen"' "$T/audit.jsonl"

# v2 staged under another tag, then promoted in the registry: the engine's
# own tag keeps naming v1 throughout (moving it back after a push raced
# with reaper's rollout, which creates the replacement from that tag).
d2=$(stage_version "$reg" rpt/guarded 2 "$broken") || fail "stage v2"
promote "$reg" rpt/guarded 1 "$d2" || fail "promote v2"
wait_for 60 "the quarantine" audit_any image.quarantined '.digest == $d' --arg d "$d2"
audit_any recycle.refused '.name == $n and .refused_by == "quarantine" and .reason == "update" and .digest == $d' --arg n "$(
  [ "$(audit_jq -r '[.[] | select(.event == "recycle.failed")] | first | .name')" = q1$$ ] && echo q2$$ || echo q1$$)" --arg d "$d2" ||
  fail "the workload that waited for the quarantined digest is not said to keep its content"
audit_any image.quarantined '.reference == $r and .digest == $d and .platform_digest == $d and .policy == "guarded" and .failures == 1 and (.error | test("unhealthy"))' \
  --arg r "$img" --arg d "$d2" || fail "the quarantine line"
first=$(audit_jq -r '[.[] | select(.event == "recycle.failed")] | first | .name')
other=q2$$
[ "$first" = q2$$ ] && other=q1$$
audit_any recycle.failed '.name == $n and .reason == "update" and .rolled_back and .image_digest == $d' --arg n "$first" --arg d "$d2" ||
  fail "the failed rollout"
! audit_any recycle.step '.name == $n and .step == "stop-old"' --arg n "$first" || fail "the old container was stopped for a broken digest"
assert_eq "$v1" "$(runs_image q1$$)" "q1 runs v1 after the rollback"
assert_eq "$v1" "$(runs_image q2$$)" "q2 runs v1"
sleep 3
assert_eq 1 "$(audit_jq '[.[] | select(.event == "recycle.begin" and .reason == "update")] | length')" "rollouts tried into the quarantined digest"
! audit_any recycle.begin '.name == $n and .reason == "update"' --arg n "$other" || fail "$other was moved to the quarantined digest"
metric() { curl -fsS "http://127.0.0.1:$listen/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
assert_eq 1 "$(metric reaper_quarantined_images)" "reaper_quarantined_images"
assert_eq 2 "$(metric 'reaper_outdated_workloads{policy="guarded"}')" "reaper_outdated_workloads"
curl -fsS "http://127.0.0.1:$listen/status" >"$T/status.json"
jq -e --arg d "$d2" '.images.quarantined | any(.digest == $d)' "$T/status.json" >/dev/null || fail "/status does not list the quarantine"
jq -e --arg n q1$$ '.workloads[] | select(.name == $n) | .image.newer.state == "quarantined"' "$T/status.json" >/dev/null ||
  fail "/status does not say q1's newer digest is quarantined"
curl -fsS "http://127.0.0.1:$listen/" | grep -c >/dev/null 'quarantined' || fail "the page does not say quarantined"
log "$first failed its health check on v2 and was rolled back; v2 quarantined; $other kept v1"

# q2's own max age (40 s, its label): recycled, with the content that works.
wait_for 60 "q2's max-age recycle" audit_any recycle.done '.name == $n and .reason == "label"' --arg n q2$$
audit_any recycle.done '.name == $n and .reason == "label" and .image_digest == $d1' --arg n q2$$ --arg d1 "$d1" ||
  fail "q2's max-age recycle did not keep v1"
[ "$id2" != "$(cid q2$$)" ] || fail "q2 was not recycled"
assert_eq "$v1" "$(runs_image q2$$)" "q2 runs v1 after its max-age recycle"
log "a max-age recycle kept the content that works"

# v3 (healthy) lifts it: both move.
d3=$(push_version "$img" 3 "$healthy") || fail "push v3"
wait_for 90 "v3 everywhere" bash -c "[ \$(jq -c 'select(.event == \"recycle.done\" and .image_digest == \"$d3\")' $T/audit.jsonl | wc -l) -ge 2 ]"
stop_reaper
verify_audit
log "a newer digest lifted the quarantine"
