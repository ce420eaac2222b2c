#!/usr/bin/env bash
# Helpers for the integration tests: each test is a bash script that sources
# this file, runs against the private engine at $DOCKER_HOST and exits
# non-zero on the first failed assertion.
set -euo pipefail
# A pipe's last grep counts (grep -c >/dev/null) rather than quits at the
# first match (grep -q): under pipefail, a writer still writing when grep -q
# has gone dies of SIGPIPE and fails the pipeline (test_package and
# test_audit_trail failed so in CI).
T=$(mktemp -d /tmp/rpt.XXXXXX)
TEST_LABEL="reaper-test=$$"
# Where reaper reaches the engine: the engine itself, or a stand-in of a
# newer one in front of it (tests/integration/run.sh --suite standin-*).
# The tests' own docker commands always go to $DOCKER_HOST.
REAPER_ENDPOINT=${REAPER_ENDPOINT:-$DOCKER_HOST}
# The API prefix reaper speaks there, for tests that make its calls by hand.
API_PREFIX=${API_PREFIX:-/v1.41}
# The engine behind $DOCKER_HOST: docker, or podman (its Docker-compatible
# API), for the few tests that must say where the engines differ.
ENGINE_KIND=${ENGINE_KIND:-docker}
# Host ports the tests publish: suites that run side by side get their own.
PORT_BASE=${PORT_BASE:-18000}
REAPER_PID=

# free_port: a loopback port nothing listens on, for a listener of the
# test's own, below the kernel's range of ephemeral ports (32768 on): a
# port from that range may be the local end of any connection on the
# machine, which ss -l does not show, and bind fails with EADDRINUSE.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    ss -Hltn "sport = :$p" | grep -c >/dev/null . || { echo "$p"; return; }
  done
}

log() { printf '[%s] %s\n' "$(date +%T.%N | cut -c1-12)" "$*"; }

fail() {
  log "FAIL: $*"
  if [ -f "$T/reaper.log" ]; then
    echo "--- reaper's log (last 80 lines):"
    tail -n 80 "$T/reaper.log"
  fi
  if [ -f "$T/audit.jsonl" ]; then
    echo "--- audit log:"
    cat "$T/audit.jsonl"
  fi
  if [ -f "$T/proxy.log" ]; then # the fault tests' proxy (tests/lib/faults.sh)
    echo "--- fault proxy's log (last 40 lines):"
    tail -n 40 "$T/proxy.log"
  fi
  exit 1
}

# on_exit COMMAND: run at exit before the standard cleanup.
EXTRA_CLEANUP=()
on_exit() { EXTRA_CLEANUP+=("$1"); }

cleanup() {
  local rc=$?
  local c
  for c in "${EXTRA_CLEANUP[@]}"; do eval "$c" || true; done
  if [ -n "$REAPER_PID" ] && kill -0 "$REAPER_PID" 2>/dev/null; then
    kill -9 "$REAPER_PID" 2>/dev/null || true
  fi
  docker ps -aq --filter "label=$TEST_LABEL" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker ps -aq --filter "label=reaper-test-aux=$$" | xargs -r docker rm -f >/dev/null 2>&1 || true
  for n in $(docker network ls -q --filter "label=$TEST_LABEL"); do docker network rm "$n" >/dev/null 2>&1 || true; done
  for v in $(docker volume ls -q --filter "label=$TEST_LABEL"); do docker volume rm "$v" >/dev/null 2>&1 || true; done
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT

# wait_for SECONDS DESCRIPTION COMMAND...: polls until COMMAND succeeds.
# TEST_TIME_SCALE multiplies every wait (tests/valgrind.sh: the agent under
# memcheck is 20 to 50 times slower); the default is 1.
wait_for() {
  local secs=$(($1 * ${TEST_TIME_SCALE:-1})) what=$2
  shift 2
  local end=$(($(date +%s%N) / 1000000 + secs * 1000))
  until "$@" >/dev/null 2>&1; do
    [ $(($(date +%s%N) / 1000000)) -lt $end ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.2
  done
}

assert_eq() { # EXPECTED ACTUAL WHAT
  [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# config FILE-CONTENT on stdin; writes $T/config.yaml with the audit log in $T.
config() {
  cat >"$T/config.yaml"
}

# Containers made by the tests carry $TEST_LABEL so that cleanup finds them.
run() { # NAME [docker run options...] IMAGE [CMD...]
  local name=$1
  shift
  docker run -d --name "$name" -l "$TEST_LABEL" "$@" >/dev/null
}

cid() { docker inspect -f '{{.Id}}' "$1"; }
# names_matching ERE [ps options]: the names of containers (all, or as the
# options say) that match ^ERE, one a line.  Not `--filter name=`, whose
# regular expression sees "/name" on Docker and "name" on Podman.
names_matching() {
  local re=$1
  shift
  docker ps -a --format '{{.Names}}' "$@" | grep -E "^($re)" || true
}
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
started_at() { docker inspect -f '{{.State.StartedAt}}' "$1"; }

start_reaper() { # ARGS... (after `run -c $T/config.yaml`)
  "$REAPER" run -c "$T/config.yaml" "$@" >>"$T/reaper.log" 2>&1 &
  REAPER_PID=$!
}

# Runs one pass (`run --once`) and returns its exit status.
reaper_once() { # ARGS...
  local rc=0
  "$REAPER" run -c "$T/config.yaml" --once "$@" >>"$T/reaper.log" 2>&1 || rc=$?
  return $rc
}

stop_reaper() { # expects exit 0 after SIGTERM
  [ -n "$REAPER_PID" ] || return 0
  kill -TERM "$REAPER_PID"
  local rc=0
  wait "$REAPER_PID" || rc=$?
  REAPER_PID=
  assert_eq 0 "$rc" "reaper's exit status after SIGTERM"
}

# events EVENT: the audit lines of that event, one JSON object per line.
audit_events() { jq -c --arg e "$1" 'select(.event == $e)' "$T/audit.jsonl"; }
audit_count() { audit_events "$1" | wc -l; }
# audit_any EVENT PREDICATE [jq options...]: some line of EVENT satisfies
# the jq PREDICATE (jq 1.6's -e looks only at the last input: slurp).
audit_any() {
  local e=$1 pred=$2
  shift 2
  jq -s -e --arg e "$e" "$@" "any(.[] | select(.event == \$e); $pred)" "$T/audit.jsonl" >/dev/null
}

verify_audit() {
  "$REAPER" verify "$T/audit.jsonl" >/dev/null 2>"$T/verify.err" || {
    cat "$T/verify.err"
    fail "reaper verify rejected the audit log"
  }
}

# A default test configuration: every container labelled with $TEST_LABEL,
# max age $1 (default 2s), strategy $2 (default recreate), more YAML lines
# for the policy on stdin (optional).
simple_config() {
  local age=${1:-2s} strategy=${2:-recreate} extra=""
  [ -t 0 ] || extra=$(cat)
  config <<YAML
agent:
  listen: ""
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
    max_age: $age
    grace: ${GRACE:-2s}
    strategy: $strategy
    health_timeout: 20s
$extra
YAML
}
