#!/usr/bin/env bash
# start-first: the replacement runs (and is healthy, with a health check)
# before the old container stops; with a published host port it falls back
# to stop-first, as two containers cannot hold the same port.
source "$(dirname "$0")/lib.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
run hc$$ -l case=health reaper-test/health:1 sh -c "$loop"
run port$$ -l case=port -p 127.0.0.1:$((PORT_BASE + 482)):8080 reaper-test/sleeper:1 sh -c "$loop"
hc_id=$(cid hc$$) port_id=$(cid port$$)
wait_for 20 "hc$$ healthy" sh -c "[ \"\$(docker inspect -f '{{.State.Health.Status}}' hc$$)\" = healthy ]"

simple_config 1s recreate <<'YAML'
    order: start-first
    max_unavailable: 2
YAML
sleep 1
# Watch the engine's events while the agent works: the order of start and
# die shows whether the replacement ran before the old one stopped.
docker events --filter type=container --format '{{.Action}} {{.Actor.Attributes.name}} {{.ID}}' >"$T/events.txt" &
ev=$!
sleep 0.5
reaper_once || fail "run --once exited non-zero"
sleep 0.5
kill $ev 2>/dev/null || true
cat "$T/events.txt"

new_hc=$(cid hc$$)
[ "$new_hc" != "$hc_id" ] || fail "hc$$ not replaced"
assert_eq healthy "$(docker inspect -f '{{.State.Health.Status}}' hc$$)" "replacement health"
# start-first: the new container started before the old one died.
start_line=$(grep -n "^start hc$$ $new_hc" "$T/events.txt" | head -1 | cut -d: -f1)
die_line=$(grep -n "^die .* $hc_id" "$T/events.txt" | head -1 | cut -d: -f1)
[ -n "$start_line" ] && [ -n "$die_line" ] || fail "events missing (start $start_line, die $die_line)"
[ "$start_line" -lt "$die_line" ] || fail "start-first: the old one died before the new one started"
# The old one was stopped only once the new one was healthy.
health_line=$(grep -n "^health_status: healthy hc$$ $new_hc" "$T/events.txt" | head -1 | cut -d: -f1)
[ -n "$health_line" ] && [ "$health_line" -lt "$die_line" ] || fail "the old one stopped before the new one was healthy"
audit_any recycle.done '.id == $id and .order == "start-first" and .health == "healthy"' --arg id "$hc_id" || fail "audit of hc lacks order/health"

new_port=$(cid port$$)
[ "$new_port" != "$port_id" ] || fail "port$$ not replaced"
audit_any recycle.done '.id == $id and .order == "stop-first" and (.order_fallback | test("host port"))' --arg id "$port_id" || fail "port's fallback not audited"
running port$$ || fail "port$$ not running"
verify_audit
log "start-first waited for health; port clash fell back to stop-first"
