#!/usr/bin/env bash
# Never touched: reaper.exclude=true, a container no policy matches, a
# stopped container; reaper.policy picks a policy by name and reaper.max-age
# overrides the age (a bad value is ignored with a warning, never fatal).
# (Swarm's task containers are told by the engine, not by their labels:
# test_trust and test_swarm_agents.)
source "$(dirname "$0")/lib.sh"
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'
run ex$$ -l reaper.exclude=true reaper-test/sleeper:1 sh -c "$loop"
run young$$ -l reaper.max-age=1h reaper-test/sleeper:1 sh -c "$loop"
run badlabel$$ -l reaper.max-age=soon reaper-test/sleeper:1 sh -c "$loop"
run bypolicy$$ -l reaper.policy=never reaper-test/sleeper:1 sh -c "$loop"
docker run -d --name other$$ -l reaper-test-aux=$$ reaper-test/sleeper:1 sh -c "$loop" >/dev/null   # no test label: no policy
run stopped$$ reaper-test/sleeper:1 true
ids_before=$(docker ps -aq --no-trunc | sort)

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: never, match: { name: "nothing-is-called-this" }, max_age: 1d, selectable: true }
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1s, hard_max_age: 2h, grace: 2s, strategy: recreate }
YAML
sleep 1.5
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.txt" 2>"$T/plan.err" || fail "plan failed: $(cat "$T/plan.err")"
cat "$T/plan.txt"
grep -E "ex$$ .*excluded" "$T/plan.txt" >/dev/null || fail "plan does not show ex$$ excluded"
grep -E "other$$ .*untouched" "$T/plan.txt" >/dev/null || fail "plan does not show other$$ untouched"
grep -E "container +bypolicy$$ +never " "$T/plan.txt" >/dev/null || fail "reaper.policy=never not applied"
grep "stopped$$" "$T/plan.txt" && fail "a stopped container is in the plan"
grep -q 'reaper.max-age="soon"' "$T/plan.err" || fail "no warning for the bad reaper.max-age label"

reaper_once || fail "run --once failed"
docker rm -f other$$ >/dev/null
# Only badlabel (bad override ignored: policy max_age 1s applies) was due.
assert_eq 1 "$(audit_count recycle.begin)" "recycle.begin lines"
assert_eq badlabel$$ "$(audit_events recycle.begin | jq -r .name)" "the one recycled"
for c in ex$$ young$$ bypolicy$$ stopped$$; do
  grep -q "$(cid $c)" <<<"$ids_before" || fail "$c was replaced"
done
verify_audit
log "exclusions hold"
