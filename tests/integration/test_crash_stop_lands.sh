#!/usr/bin/env bash
# The stop that lands after the restore (issue 15): reaper asks the engine to
# stop the old container and is killed (SIGKILL) 300 ms later, while the
# container is still shutting down (it takes 4 s over its SIGTERM).  The
# engine finishes that stop after its client is gone.  The next start must
# not call the recycle put right while that stop is still to land: the
# workload ends running, and stays running after the stop has landed.
#
#   1. the replacement works: recovery goes on (the old one was going down):
#      it asks for the stop again (which returns once the first has landed),
#      starts the replacement, and removes the old one;
#   2. the replacement fails at once: recovery undoes it: the old container,
#      down by then, gets its name back and is started again, and stays up.
# The crash point exists only in test builds (-DREAPER_CRASHPOINTS=ON).
source "$(dirname "$0")/lib.sh"
mkdir -p "$T/cfg"
slow_stop='trap "sleep 4; exit 0" TERM; if [ -f /cfg/break ] && [ "$(cat /cfg/break)" != "$HOSTNAME" ]; then exit 3; fi; while :; do sleep 0.2; done'

crash_while_stopping() { # NAME
  config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: test, match: { name: "$1" }, max_age: 1s, grace: 20s, health_timeout: 10s }
YAML
  sleep 1.2
  local rc=0
  REAPER_CRASH_AT=while-stop-old "$REAPER" run -c "$T/config.yaml" --once >>"$T/reaper.log" 2>&1 || rc=$?
  assert_eq 137 "$rc" "$1: the crashed run's exit status (SIGKILL)"
  audit_any recycle.step '.name == $n and .step == "stop-old"' --arg n "$1" || fail "$1: no stop-old announced before the crash"
  # The crash came while the stop was under way: the old one still runs
  # (Docker says running, Podman says stopping).
  case $(docker inspect -f '{{.State.Status}}' "$1-reaper-old") in
  running | stopping) ;;
  *) fail "$1: the old container is $(docker inspect -f '{{.State.Status}}' "$1-reaper-old") at the crash (the stop was not under way)" ;;
  esac
}

# Stays up, as the only container of its name, for `secs` after recovery:
# past the moment the abandoned stop landed.
stays_up() { # NAME SECS
  local i
  for i in $(seq "$2"); do
    running "$1" || fail "$1 is not running ${i}s after recovery: $(docker ps -a --filter name="$1" --format '{{.Names}} {{.Status}}')"
    sleep 1
  done
  assert_eq 1 "$(names_matching "$1" | wc -l)" "containers named $1*"
}

log "1. the replacement works: recovery finishes the recycle"
run ok$$ -v "$T/cfg:/cfg" reaper-test/sleeper:1 sh -c "$slow_stop"
old_id=$(cid ok$$)
crash_while_stopping ok$$
reaper_once || fail "the run after the crash failed"
audit_any recycle.recovered '.id == $id and .ok and .action == "finished"' --arg id "$old_id" ||
  fail "ok$$: the recycle was not finished by recovery: $(audit_events recycle.recovered)"
# The stop was asked for again, and landed, before the replacement started.
steps=$(jq -r --arg id "$old_id" 'select(.event == "recycle.step" and .id == $id and .recovery) | .step' "$T/audit.jsonl" | tr '\n' ' ')
assert_eq "stop-old start-new remove-old " "$steps" "ok$$: recovery's steps"
[ "$(cid ok$$)" != "$old_id" ] || fail "ok$$: the old container still holds the name"
docker inspect "$old_id" >/dev/null 2>&1 && fail "ok$$: the old container was not removed"
stays_up ok$$ 6
verify_audit
docker rm -f ok$$ >/dev/null

log "2. the replacement fails: recovery gives the old container back, after its stop landed"
rm -f "$T/audit.jsonl"
run bad$$ -v "$T/cfg:/cfg" reaper-test/sleeper:1 sh -c "$slow_stop"
old_id=$(cid bad$$)
# Every container but this one (its hostname is its short id) exits 3.
docker inspect -f '{{.Config.Hostname}}' bad$$ >"$T/cfg/break"
crash_while_stopping bad$$
rc=0
reaper_once || rc=$?
audit_any recycle.recovered '.id == $id and .ok and .action == "rolled-back"' --arg id "$old_id" ||
  fail "bad$$: not rolled back by recovery: $(audit_events recycle.recovered)"
steps=$(jq -r --arg id "$old_id" 'select(.event == "recycle.step" and .id == $id and .recovery) | .step' "$T/audit.jsonl" | tr '\n' ' ')
assert_eq "stop-old start-new undo-remove-replacement undo-rename-old undo-start-old " "$steps" "bad$$: recovery's steps"
assert_eq "$old_id" "$(cid bad$$)" "bad$$: the container named bad$$"
stays_up bad$$ 6
[ -z "$(docker ps -aq --filter name=reaper-old)" ] || fail "a -reaper-old container was left behind"
verify_audit
log "a stop abandoned by a killed reaper landed before recovery's start, both ways"
