#!/usr/bin/env bash
# A workload cannot escape rotation from inside (issue 13; SPEC, "Labels"):
#  - labels its image declares (LABEL in the Dockerfile) are the image
#    author's word: reaper.exclude=true and reaper.max-age=1000d from the
#    image change nothing;
#  - reaper.max-age on the container shortens freely, lengthens only up to
#    hard_max_age (never without one), and a refusal is said once and shown
#    in plan;
#  - reaper.policy picks only a policy whose match accepts the workload, or
#    one the operator marked selectable;
#  - reaper.exclude=true is honoured unless exclude.workload_opt_out: false;
#  - a plain container with a forged com.docker.swarm.task.id label is not
#    taken for a swarm task (the engine says whether it is one);
#  - a container someone named x-reaper-old is an ordinary container: no
#    "recovery" of a recycle that never happened, and it is recycled.
source "$(dirname "$0")/lib.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'

# An image whose author tries to exempt it and lengthen its life.
ctx=$T/img
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM reaper-test/sleeper:1
LABEL reaper.exclude=true reaper.max-age=1000d tier=web
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "reaper-test/escape:$$" "$ctx" >/dev/null || fail "build the escaping image"
on_exit "docker rmi -f reaper-test/escape:$$ >/dev/null 2>&1"

run img$$ "reaper-test/escape:$$" sh -c "$loop"                     # the image's labels only
run long$$ -l reaper.max-age=1000d reaper-test/sleeper:1 sh -c "$loop"
run short$$ -l reaper.max-age=30m reaper-test/sleeper:1 sh -c "$loop"
run pick$$ -l reaper.policy=forever reaper-test/sleeper:1 sh -c "$loop"
run sel$$ -l reaper.policy=slow reaper-test/sleeper:1 sh -c "$loop"
run opt$$ -l reaper.exclude=true reaper-test/sleeper:1 sh -c "$loop"
run forged$$ -l com.docker.swarm.task.id=0123456789abcdefghijklmno reaper-test/sleeper:1 sh -c "$loop"
run x$$-reaper-old reaper-test/sleeper:1 sh -c "$loop"

plan_config() { # [exclude block]
  config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: forever, match: { kind: service }, max_age: 1000d }
  - { name: slow, match: { kind: service }, max_age: 3h, selectable: true }
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1h }
${1:-}
YAML
}
plan_config
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" 2>"$T/plan.err" || { cat "$T/plan.err"; fail "plan failed"; }
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.txt" 2>>"$T/plan.err"
cat "$T/plan.txt"
row() { jq -c --arg n "$1" '.[] | select(.name == $n)' "$T/plan.json"; }
field() { row "$1" | jq -r ".$2 | if . == null then empty else . end"; }

# The image's labels: not excluded, the policy's max age, no warning.
assert_eq false "$(field img$$ excluded)" "img$$ excluded by its image's label"
assert_eq test "$(field img$$ policy)" "img$$'s policy"
assert_eq 3600 "$(field img$$ max_age_s)" "img$$'s max age (its image says 1000d)"
assert_eq "" "$(field img$$ warning)" "img$$'s warning"

# reaper.max-age: refused without a ceiling, said in plan; shortening works.
assert_eq 3600 "$(field long$$ max_age_s)" "long$$'s max age"
field long$$ warning | grep -c >/dev/null 'reaper.max-age="1000d" refused: a label may lengthen max_age only up to hard_max_age' ||
  fail "plan does not say why long$$'s label was refused: $(row long$$)"
grep -E "^local +container +long$$ " "$T/plan.txt" | grep -c >/dev/null "warning: .*refused" || fail "plan's table does not show long$$'s refusal"
assert_eq 1800 "$(field short$$ max_age_s)" "short$$'s max age"

# reaper.policy: a policy written for services is not the container's to
# pick; a selectable one is.
assert_eq test "$(field pick$$ policy)" "pick$$'s policy"
field pick$$ warning | grep -c >/dev/null 'reaper.policy="forever" refused' || fail "no refusal for pick$$: $(row pick$$)"
assert_eq slow "$(field sel$$ policy)" "sel$$'s policy (selectable)"

# reaper.exclude=true: the workload's own opt-out is honoured by default.
assert_eq true "$(field opt$$ excluded)" "opt$$ excluded by its own label"

# A forged swarm task label: a plain container, recycled like any.
assert_eq false "$(field forged$$ excluded)" "forged$$ taken for a swarm task"
assert_eq test "$(field forged$$ policy)" "forged$$'s policy"
field forged$$ note | grep -c >/dev/null "not a swarm task" || fail "plan does not note forged$$'s label: $(row forged$$)"

# A name is not a fact: x-reaper-old is an ordinary container.
assert_eq false "$(field x$$-reaper-old excluded)" "x$$-reaper-old excluded by its name"
assert_eq test "$(field x$$-reaper-old policy)" "x$$-reaper-old's policy"

# The operator takes the opt-out away.
plan_config "exclude: { workload_opt_out: false }"
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" 2>>"$T/plan.err" || fail "plan failed"
assert_eq false "$(field opt$$ excluded)" "opt$$ excluded although workload_opt_out is false"
field opt$$ warning | grep -c >/dev/null "workloads may not opt out" || fail "no warning for opt$$: $(row opt$$)"

# The agent: each refusal logged once (resyncs every 2 s), no "recovery" of
# x-reaper-old; then they are recycled at their (short) age.
plan_config
sed -i 's/max_age: 1h }/max_age: 6s, grace: 1s, max_unavailable: 10 }/' "$T/config.yaml"
start_reaper
recycled_all() {
  local c
  for c in img$$ forged$$ x$$-reaper-old; do
    audit_any recycle.done '.name == $n' --arg n "$c" || return 1
  done
}
wait_for 60 "img$$, forged$$ and x$$-reaper-old to be recycled" recycled_all
sleep 5 # a few resyncs more
stop_reaper
assert_eq 0 "$(audit_count recycle.recovered)" "recycle.recovered lines"
assert_eq 1 "$(grep -c 'long'$$': label reaper.max-age="1000d" refused' "$T/reaper.log")" "times long$$'s refusal is logged"
audit_any recycle.begin '.name == "opt'$$'"' && fail "opt$$ was recycled although it opted out"
running img$$ && running forged$$ && running x$$-reaper-old || fail "a recycled container is not running"
verify_audit
log "image labels ignored, max-age and policy labels bounded, opt-out, forged task label and name ignored"
