#!/usr/bin/env bash
# The verify gate: a new digest that the policy's verify command refuses
# never runs (recycle.refused refused_by verify, with the command's exit
# status and output; the old containers keep running, untouched), the gate
# runs once per digest however many workloads wait for it, and a later
# digest that it accepts is rolled out.  The gate runs without a shell, with
# REAPER_IMAGE, REAPER_IMAGE_DIGEST and REAPER_WORKLOAD in its environment
# and nothing of reaper's own.
source "$(dirname "$0")/lib.sh"
lib=$(cd "$(dirname "$0")/../lib" && pwd)
source "$lib/registry.sh"
source "$lib/fresh.sh"
port=$(fresh_port 4)
reg=127.0.0.1:$port
registry_start "$T/reg" "$port"
img=$reg/rpt/gated:1

# The gate: lets through the digests listed in $T/allow, says why not.
cat >"$T/gate.sh" <<SH
#!/bin/sh
echo "\$REAPER_IMAGE \$REAPER_IMAGE_DIGEST \$REAPER_WORKLOAD \${HOME:-nohome}" >>"$T/gate.log"
if grep -qx "\$REAPER_IMAGE_DIGEST" "$T/allow"; then exit 0; fi
echo "digest \$REAPER_IMAGE_DIGEST is not signed by the release key"
exit 3
SH
chmod +x "$T/gate.sh"
: >"$T/allow"

d1=$(push_version "$img" 1) || fail "push v1"
v1=$(image_id "$img")
run g1$$ -l gated=yes "$img"
run g2$$ -l gated=yes "$img"
id1=$(cid g1$$) id2=$(cid g2$$)
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - name: gated
    match: { labels: { gated: "yes", reaper-test: "$$" } }
    max_age: 1h
    grace: 1s
    max_unavailable: 2
    update: { check: 1s }
    verify: [$T/gate.sh]
    verify_timeout: 20s
YAML
start_reaper
wait_for 20 "the first check" grep -q '"image.seen"' "$T/audit.jsonl"

# v2: refused.
d2=$(stage_version "$reg" rpt/gated 2) || fail "stage v2"
promote "$reg" rpt/gated 1 "$d2" || fail "promote v2"
wait_for 30 "the refusal" audit_any recycle.refused '.refused_by == "verify"'
sleep 4 # more checks: the verdict stands, the gate is not run again
audit_any recycle.refused '.refused_by == "verify" and .reason == "update" and .digest == $d and .exit_status == 3 and (.output | test("not signed by the release key")) and .image == $r' \
  --arg d "$d2" --arg r "$img" || fail "the refusal does not say what the gate said"
assert_eq 1 "$(grep -c "$d2" "$T/gate.log")" "gate runs for v2 (two workloads waited for it)"
assert_eq 0 "$(audit_count recycle.begin)" "recycles begun for a refused digest"
assert_eq "$id1" "$(cid g1$$)" "g1 is the same container"
assert_eq "$id2" "$(cid g2$$)" "g2 is the same container"
assert_eq "$v1" "$(runs_image g1$$)" "g1 runs v1"
running g1$$ && running g2$$ || fail "the old containers do not run"
grep -q "^$img $d2 g[12]$$ nohome\$" "$T/gate.log" || fail "the gate's environment: $(cat "$T/gate.log")"
log "v2 refused by the gate, once; the old containers untouched"

# v3: accepted and rolled out.
d3=$(stage_version "$reg" rpt/gated 3) || fail "stage v3"
echo "$d3" >>"$T/allow"
promote "$reg" rpt/gated 1 "$d3" || fail "promote v3"
wait_for 60 "v3 everywhere" bash -c "[ \$(jq -c 'select(.event == \"recycle.done\" and .image_digest == \"$d3\")' $T/audit.jsonl | wc -l) -ge 2 ]"
assert_eq 1 "$(grep -c "$d3" "$T/gate.log")" "gate runs for v3"
assert_eq 1 "$(grep -c "$d2" "$T/gate.log")" "gate runs for v2, in the end"
for n in g1$$ g2$$; do
  audit_any recycle.done '.name == $n and .reason == "update" and .image_digest == $d3 and .previous_image_digest == $d1' \
    --arg n "$n" --arg d3 "$d3" --arg d1 "$d1" || fail "$n's rollout to v3"
done
[ "$(image_id "${img%:*}@$d3")" = "$(runs_image g1$$)" ] || fail "g1 does not run v3"
stop_reaper
verify_audit
log "a later digest that the gate accepts is rolled out"
