#!/usr/bin/env bash
# Containers as people run them, by their lifecycle flags (issue 15):
#  - --rm (AutoRemove): the engine deletes it the moment it stops; it is
#    recycled all the same (the replacement runs with --rm too), and when
#    its replacement fails, the old one is made again from the kept
#    configuration (nothing to rename back: it is gone) and runs;
#  - paused: never recycled (its frozen state may be evidence), refused
#    once with the reason, shown in plan, and left paused; unpaused, it is
#    recycled;
#  - a restart policy is kept across the recycle;
#  - created and never started: not a workload, never touched.
source "$(dirname "$0")/lib.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'

run rm$$ --rm -l case=rm reaper-test/sleeper:1 sh -c "$loop"
mkdir -p "$T/cfg"
# A one-shot breaker: the first start that finds /cfg/break takes it and
# exits with 3 (the replacement); a start after that runs (the old one, made
# again: its own filesystem went with it, so the breaker lives outside).
run rmfail$$ --rm -l case=rmfail -v "$T/cfg:/cfg" reaper-test/sleeper:1 \
  sh -c 'if [ -f /cfg/break ]; then rm /cfg/break; exit 3; fi; trap "exit 0" TERM; while :; do sleep 0.2; done'
run paused$$ -l case=paused reaper-test/sleeper:1 sh -c "$loop"
docker pause paused$$ >/dev/null
run always$$ -l case=always --restart always reaper-test/sleeper:1 sh -c "$loop"
docker create --name created$$ -l "$TEST_LABEL" reaper-test/sleeper:1 >/dev/null
rm_id=$(cid rm$$) rmfail_id=$(cid rmfail$$) paused_id=$(cid paused$$)
always_id=$(cid always$$) created_id=$(cid created$$)
touch "$T/cfg/break"

simple_config 1s recreate <<'YAML'
    max_unavailable: 5
YAML
sleep 1.5
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.txt" 2>"$T/plan.err" || { cat "$T/plan.err"; fail "plan failed"; }
cat "$T/plan.txt"
grep -E "^local +container +paused$$ .*refused: it is paused" "$T/plan.txt" >/dev/null ||
  fail "plan does not show paused$$ refused"
grep -q "created$$" "$T/plan.txt" && fail "a container never started is in the plan"

rc=0
reaper_once || rc=$?

# --rm: recycled; the replacement keeps --rm; the old one is gone.
new_rm=$(cid rm$$)
[ "$new_rm" != "$rm_id" ] || fail "rm$$ was not recycled"
running rm$$ || fail "rm$$ is not running"
assert_eq true "$(docker inspect -f '{{.HostConfig.AutoRemove}}' rm$$)" "rm$$'s AutoRemove"
docker inspect "$rm_id" >/dev/null 2>&1 && fail "rm$$'s old container is still there"
audit_any recycle.done '.id == $id' --arg id "$rm_id" || fail "no recycle.done for rm$$"

# --rm whose replacement fails: made again from the kept configuration.
running rmfail$$ || fail "rmfail$$ is not running after the rollback"
assert_eq 1 "$(names_matching "rmfail$$\$" | wc -l)" "containers named rmfail$$"
docker inspect "$rmfail_id" >/dev/null 2>&1 && fail "rmfail$$'s old container survived its stop (--rm)"
# Why it failed: the replacement exited 3, and being --rm it was removed at
# once; reaper says the exit code its die event gave.  Podman may write
# that event after its inspect already says the container is gone (its
# events go through a file): there, "it is gone" is all that can be said.
why='exit code 3'
[ "$ENGINE_KIND" = podman ] && why='exit code 3|it is gone'
audit_any recycle.failed '.id == $id and .rolled_back == true and (.error | test($why))' --arg id "$rmfail_id" --arg why "$why" ||
  fail "rmfail$$'s failure was not rolled back, or its error does not say why ($why)"
audit_any recycle.step '.id == $id and .step == "undo-recreate-old"' --arg id "$rmfail_id" ||
  fail "rmfail$$ was not made again from its configuration"
assert_eq true "$(docker inspect -f '{{.HostConfig.AutoRemove}}' rmfail$$)" "rmfail$$'s AutoRemove after the rollback"
[ -z "$(docker ps -aq --filter name=reaper-old)" ] || fail "a -reaper-old container was left behind"
assert_eq 1 "$rc" "run --once's exit status (rmfail$$ failed)"

# paused: refused once, left paused, nothing begun.
assert_eq "$paused_id" "$(cid paused$$)" "paused$$'s container"
assert_eq paused "$(docker inspect -f '{{.State.Status}}' paused$$)" "paused$$'s state"
audit_any recycle.refused '.id == $id and (.detail | test("paused"))' --arg id "$paused_id" ||
  fail "no recycle.refused for paused$$"
audit_any recycle.begin '.id == $id' --arg id "$paused_id" && fail "a recycle of paused$$ began"

# restart policy kept.
[ "$(cid always$$)" != "$always_id" ] || fail "always$$ was not recycled"
assert_eq always "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' always$$)" "always$$'s restart policy"

# created, never started: untouched.
assert_eq created "$(docker inspect -f '{{.State.Status}}' "$created_id")" "created$$'s state"

# Unpaused, paused$$ is recycled like any other.
docker unpause paused$$ >/dev/null
sleep 1
reaper_once || true
[ "$(cid paused$$)" != "$paused_id" ] || fail "paused$$ was not recycled once unpaused"
verify_audit
log "--rm recycled and restored from its configuration; paused refused and left; restart policy kept"
