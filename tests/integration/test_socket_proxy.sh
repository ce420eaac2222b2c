#!/usr/bin/env bash
# reaper behind a Docker socket proxy that allows only the requests it makes
# (HAProxy from Debian's packages, configured as contrib/socket-proxy.cfg,
# the file contrib/docs/socket-proxy.md explains): it tracks containers,
# from its list and from the event stream, and recycles them (recreate, with
# a drain hook and a second network to connect) through the proxy; requests
# outside the list are refused with 403, and none of reaper's own is.
source "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
command -v haproxy >/dev/null || fail "haproxy is not installed (contrib/install-deps.sh --test)"

PROXY=$T/proxy.sock
HAPROXY_PID=
stop_haproxy() { # a soft stop (SIGUSR1) logs the sessions still open
  [ -n "$HAPROXY_PID" ] || return 0
  kill -USR1 "$HAPROXY_PID" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$HAPROXY_PID" 2>/dev/null || break; sleep 0.25; done
  kill "$HAPROXY_PID" 2>/dev/null || true
  wait "$HAPROXY_PID" 2>/dev/null || true
  HAPROXY_PID=
}
on_exit stop_haproxy
REAPER_PROXY_SOCKET=$PROXY DOCKER_SOCKET=${REAPER_ENDPOINT#unix://} \
  haproxy -db -f "$top/contrib/socket-proxy.cfg" >"$T/haproxy.log" 2>&1 &
HAPROXY_PID=$!
px() { # METHOD PATH: the proxy's HTTP status for that request
  curl -s -o "$T/px.body" -w '%{http_code}' --unix-socket "$PROXY" -X "$1" "http://localhost$2"
}
wait_for 10 "the proxy answers /_ping" curl -fsS --unix-socket "$PROXY" http://localhost/_ping
log "haproxy $(haproxy -v | head -1 | cut -d' ' -f3) listens on $PROXY"

# Two networks: the replacement is created on one and connected to the other.
docker network create --label "$TEST_LABEL" rpt-pxa$$ >/dev/null
docker network create --label "$TEST_LABEL" rpt-pxb$$ >/dev/null
run early$$ --network rpt-pxa$$ --network-alias early-a reaper-test/sleeper:1 \
  sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
docker network connect --alias early-b rpt-pxb$$ early$$
early_id=$(cid early$$)

# --- refused: what reaper never asks for ---------------------------------------
assert_eq 403 "$(px GET $API_PREFIX/volumes)" "GET /volumes through the proxy"
jq -e '.message | test("socket proxy")' "$T/px.body" >/dev/null || fail "the 403 is not the engine's JSON error format: $(cat "$T/px.body")"
assert_eq 403 "$(px POST $API_PREFIX/containers/prune)" "POST /containers/prune"
assert_eq 403 "$(px POST "$API_PREFIX/containers/$early_id/kill")" "POST /containers/ID/kill"
assert_eq 403 "$(px POST "$API_PREFIX/containers/$early_id/pause")" "POST /containers/ID/pause"
assert_eq 403 "$(px GET "$API_PREFIX/containers/$early_id/logs?stdout=1")" "GET /containers/ID/logs"
assert_eq 403 "$(px GET "$API_PREFIX/containers/$early_id/archive?path=/etc")" "GET /containers/ID/archive"
assert_eq 403 "$(px DELETE "$API_PREFIX/containers/$early_id?force=1&v=1")" "DELETE /containers/ID?v=1 (the volumes too)"
assert_eq 403 "$(px POST "$API_PREFIX/images/create?fromSrc=-")" "POST /images/create?fromSrc (an import)"
assert_eq 403 "$(px POST $API_PREFIX/swarm/init)" "POST /swarm/init"
assert_eq 403 "$(px GET $API_PREFIX/secrets)" "GET /secrets"
assert_eq 403 "$(px POST $API_PREFIX/build)" "POST /build"
assert_eq 403 "$(px DELETE $API_PREFIX/networks/rpt-pxa$$)" "DELETE /networks/NAME"
# By name instead of ID: reaper acts on containers by their full ID only.
assert_eq 403 "$(px POST $API_PREFIX/containers/early$$/stop)" "POST /containers/NAME/stop"
running early$$ || fail "a refused request reached the engine: early$$ is not running"
# ... and allowed: the calls reaper makes.
assert_eq 200 "$(px GET $API_PREFIX/containers/json)" "GET /containers/json"
assert_eq 200 "$(px GET "$API_PREFIX/containers/$early_id/json")" "GET /containers/ID/json"
assert_eq 200 "$(px GET $API_PREFIX/images/reaper-test%2Fsleeper%3A1/json)" "GET /images/NAME/json"

# --- tracked and recycled through the proxy --------------------------------------
config <<YAML
agent:
  listen: ""
  audit_log: $T/audit.jsonl
  resync: 1h
providers:
  - name: local
    type: docker
    endpoint: unix://$PROXY
policies:
  - name: test
    match:
      labels: { reaper-test: "$$" }
    max_age: 4s
    grace: 2s
    strategy: recreate
    order: start-first
    max_unavailable: 2
    health_timeout: 20s
    drain: [/bin/sh, -c, "echo drained-through-the-proxy"]
    drain_timeout: 5s
exclude:
  labels: { reaper.replaces: "*" }
YAML
start_reaper
wait_for 20 "reaper listed early$$" grep -q 'provider local (docker): 1 workloads' "$T/reaper.log"
# Started after the list: found through the event stream (and an inspect),
# since the next re-list is an hour away.
run late$$ --network rpt-pxa$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
docker network connect rpt-pxb$$ late$$
late_id=$(cid late$$)
done_count() { [ "$(audit_count recycle.done)" -ge "$1" ]; }
wait_for 60 "both recycled" done_count 2
stop_reaper

for n in early$$ late$$; do
  running "$n" || fail "$n is not running after its recycle"
  nets=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$n")
  assert_eq "rpt-pxa$$ rpt-pxb$$ " "$nets" "$n's networks after the recycle"
done
[ "$(cid early$$)" != "$early_id" ] || fail "early$$ was not replaced"
[ "$(cid late$$)" != "$late_id" ] || fail "late$$ was not replaced"
docker inspect -f '{{json .NetworkSettings.Networks}}' early$$ | jq -e --arg n "rpt-pxb$$" '.[$n].Aliases | index("early-b")' >/dev/null ||
  fail "early$$ lost its alias on the connected network"
for id in "$early_id" "$late_id"; do
  audit_any recycle.done '.id == $id and .drain.exit_code == 0 and (.drain.output | test("drained-through-the-proxy"))' --arg id "$id" ||
    fail "recycle of $id: no drain hook in its recycle.done"
done
assert_eq 0 "$(audit_count recycle.failed)" "recycle.failed lines"
verify_audit

# --- reaper's requests, in the proxy's log ------------------------------------
# HAProxy logs a request when it ends, and notices that the event stream's
# client has gone only when it next has an event to forward: make one.
docker rm "$(docker create -l "$TEST_LABEL" reaper-test/sleeper:1)" >/dev/null
wait_for 10 "the event stream's end in the proxy's log" grep -q ' GET /v1\.[0-9]*/events' "$T/haproxy.log"
stop_haproxy
grep -q '{reaper/' "$T/haproxy.log" || { cat "$T/haproxy.log"; fail "no request of reaper's in the proxy's log"; }
refused=$(grep '{reaper/' "$T/haproxy.log" | awk '$1 == 403' || true)
[ -z "$refused" ] || fail "the proxy refused requests of reaper's: $refused"
! grep -q 'socket proxy' "$T/reaper.log" || fail "reaper's log shows a refusal by the proxy"
# Each of the calls a recycle with a drain hook and a network makes went
# through (the list in contrib/docs/socket-proxy.md).  The second network
# is connected after create below API 1.44; from 1.44 create takes both.
connect='POST /v1\.[0-9]+/networks/rpt-pxb[0-9]+/connect'
minor=${API_PREFIX#/v1.}
[ "$minor" -ge 44 ] && connect='POST /v1\.[0-9]+/containers/create\?name='
for call in 'GET /_ping' 'GET /version' 'GET /v1\.[0-9]+/containers/json' 'GET /v1\.[0-9]+/events' \
  'GET /v1\.[0-9]+/containers/[0-9a-f]{64}/json' 'GET /v1\.[0-9]+/containers/json\?all=1' \
  'GET /v1\.[0-9]+/images/[^ ]+/json' 'POST /v1\.[0-9]+/containers/create\?name=' \
  "$connect" 'POST /v1\.[0-9]+/containers/[0-9a-f]{64}/rename\?name=' \
  'POST /v1\.[0-9]+/containers/[0-9a-f]{64}/start' 'POST /v1\.[0-9]+/containers/[0-9a-f]{64}/exec' \
  'POST /v1\.[0-9]+/exec/[0-9a-f]{64}/start' 'GET /v1\.[0-9]+/exec/[0-9a-f]{64}/json' \
  'POST /v1\.[0-9]+/containers/[0-9a-f]{64}/stop\?t=' 'DELETE /v1\.[0-9]+/containers/[0-9a-f]{64}'; do
  grep -E "^[23][0-9][0-9] $call" "$T/haproxy.log" | grep -c >/dev/null '{reaper/' ||
    { cat "$T/haproxy.log"; fail "no successful '$call' of reaper's in the proxy's log (above)"; }
done
log "tracked and recycled 2 containers through the proxy: $(grep -c '{reaper/' "$T/haproxy.log") requests, none refused; 14 requests outside the list refused"
