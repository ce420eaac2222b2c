#!/usr/bin/env bash
# API version negotiation against engines newer than the test bed's, through
# stand-ins (tests/lib/standin.py) in front of the private dockerd:
#  1. pinned to 1.41 (api_version) in front of Engine 29.0's floor of 1.44:
#     plan fails with one line naming what the engine accepts and what
#     reaper speaks; run says it once, backs off (a handful of requests, not
#     a storm), and makes no versioned call;
#  2. DOCKER_API_VERSION pins it the same way for a provider without one;
#  3. unpinned, it speaks 1.52 there and works;
#  4. an api_version reaper cannot speak is a configuration error with its
#     place;
#  5. an engine upgraded in place (28.0 -> 29.0 behind the same socket):
#     reaper negotiates again when it reconnects, 1.48 then 1.52.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/standin.sh"
on_exit standin_stop
UPSTREAM=${DOCKER_HOST#unix://}
SI=$T/si.sock
standin_start 29.0 "$UPSTREAM" "$SI" || fail "the stand-in did not start"
run web$$ reaper-test/sleeper:1

write_config() { # [api_version]
  cat >"$T/config.yaml" <<YAML
agent: { listen: "${LISTEN:-}", audit_log: $T/audit.jsonl }
providers:
  - name: local
    type: docker
    endpoint: unix://$SI
${1:+    api_version: "$1"}
policies: [ { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1h } ]
YAML
}
REFUSAL='API version refused: Docker Engine 29.0.0-standin accepts API 1.44 to 1.52; reaper speaks 1.41 (pinned by api_version)'

# 1. plan: exit 1 and the one line.
write_config 1.41
rc=0
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.out" 2>"$T/plan.err" || rc=$?
cat "$T/plan.err"
assert_eq 1 "$rc" "plan's exit status when the engine refuses the pinned version"
grep -qF "reaper plan: provider local (docker) unreachable: $REFUSAL" "$T/plan.err" ||
  fail "plan does not say the refusal in one line"
# run: said once; a few negotiations, backing off; no versioned request.
: >"$SI.log"
start_reaper
sleep 8
kill -TERM "$REAPER_PID"; wait "$REAPER_PID" || true; REAPER_PID=
assert_eq 1 "$(grep -cF "$REFUSAL" "$T/reaper.log")" "times the refusal is logged in 8 s"
pings=$(grep -c 'GET /_ping ' "$SI.log")
log "negotiations in 8 s: $pings"
[ "$pings" -ge 3 ] && [ "$pings" -le 6 ] || fail "$pings negotiations in 8 s: expected 3 to 6 (backing off 0.5, 1, 2, 4 s)"
grep -E 'GET /v[0-9]' "$SI.log" && fail "a versioned request was made although the version is refused"

# 2. DOCKER_API_VERSION, honoured when the provider pins none.
write_config
rc=0
DOCKER_API_VERSION=1.41 "$REAPER" plan -c "$T/config.yaml" >/dev/null 2>"$T/plan.err" || rc=$?
assert_eq 1 "$rc" "plan's exit status with DOCKER_API_VERSION=1.41"
grep -qF "reaper speaks 1.41 (pinned by DOCKER_API_VERSION)" "$T/plan.err" || { cat "$T/plan.err"; fail "DOCKER_API_VERSION not named"; }
# The provider's own setting wins over the environment.
write_config 1.48
DOCKER_API_VERSION=1.41 "$REAPER" plan -c "$T/config.yaml" >"$T/plan.out" 2>"$T/plan.err" || { cat "$T/plan.err"; fail "plan pinned to 1.48 failed"; }
grep -qE '^local +docker +Docker Engine 29\.0\.0-standin +1\.48 \(pinned by api_version; engine accepts 1\.44 to 1\.52\)' "$T/plan.out" ||
  { cat "$T/plan.out"; fail "plan does not show 1.48 pinned"; }

# 3. unpinned: 1.52, and the container is there.
write_config
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.out" 2>"$T/plan.err" || { cat "$T/plan.err"; fail "plan failed"; }
grep -qE '^local +docker +Docker Engine 29\.0\.0-standin +1\.52 \(negotiated; engine accepts 1\.44 to 1\.52\)' "$T/plan.out" ||
  { cat "$T/plan.out"; fail "plan does not show 1.52 negotiated"; }
grep -qE "^local +container +web$$ " "$T/plan.out" || fail "web$$ is not in the plan"

# 4. a version reaper does not speak: the file's place.
write_config 1.53
rc=0
"$REAPER" check-config -c "$T/config.yaml" 2>"$T/check.err" || rc=$?
assert_eq 2 "$rc" "check-config's exit status for api_version 1.53"
grep -qE "config.yaml:6:[0-9]+: providers\[0\]\.api_version: API 1\.53 is not one reaper speaks \(1\.41 to 1\.52\)" "$T/check.err" ||
  { cat "$T/check.err"; fail "check-config does not name the place"; }

# 5. upgraded in place: 28.0 (1.48) then 29.0 (1.52) behind one socket.
standin_stop
standin_start 28.0 "$UPSTREAM" "$SI" || fail "the 28.0 stand-in did not start"
PORT=$(free_port)
LISTEN=127.0.0.1:$PORT write_config
start_reaper
wait_for 20 "reaper to speak 1.48 to Engine 28.0" sh -c "[ \"\$(curl -fsS --max-time 5 http://127.0.0.1:$PORT/status | jq -r '.providers[0].api_version')\" = 1.48 ]"
standin_stop
standin_start 29.0 "$UPSTREAM" "$SI" || fail "the 29.0 stand-in did not start"
wait_for 40 "reaper to speak 1.52 to Engine 29.0 after reconnecting" sh -c "[ \"\$(curl -fsS --max-time 5 http://127.0.0.1:$PORT/status | jq -r '.providers[0].api_version')\" = 1.52 ]"
assert_eq "Docker Engine 29.0.0-standin" "$(curl -fsS --max-time 5 "http://127.0.0.1:$PORT/status" | jq -r '.providers[0].engine')" "engine after the upgrade"
stop_reaper
log "refusal said once in one line; pins honoured; 1.52 negotiated; renegotiated after an upgrade in place"
