#!/usr/bin/env bash
# Fresh content and its registries: update.settle holds a new digest back
# (plan says until when), a registry behind token auth (distribution's
# `auth: silly` and a token endpoint of the test's own) is asked with the
# credentials of DOCKER_CONFIG's config.json, by reaper and, for the pull,
# by the engine (X-Registry-Auth); and registries that are down change
# nothing: they are logged once, counted in /metrics, and the workloads keep
# running as they were.
source "$(dirname "$0")/lib.sh"
lib=$(cd "$(dirname "$0")/../lib" && pwd)
source "$lib/registry.sh"
source "$lib/fresh.sh"
pa=$(fresh_port 12)
pb=$((pa + 1)) pt=$((pa + 2)) listen=$((pa + 3))
A=127.0.0.1:$pa B=127.0.0.1:$pb
registry_start "$T/ra" "$pa" "$T/storage"
python3 "$lib/token_server.py" "$pt" alice 's3cr:et' "$T/tokens.log" &
tok=$!
on_exit "kill $tok 2>/dev/null"
wait_for 10 "the token endpoint" curl -s -o /dev/null "http://127.0.0.1:$pt/token"
registry_start "$T/rb" "$pb" "$T/storage" \
  "auth: { silly: { realm: \"http://127.0.0.1:$pt/token\", service: reaper-test } }"

d1=$(push_version "$A/rpt/app:1" 1) || fail "push v1"
v1=$(image_id "$A/rpt/app:1")
run settle$$ -l fresh=settle "$A/rpt/app:1"
# The engine reaches B with the credentials docker login wrote.
export DOCKER_CONFIG=$T/docker
mkdir -p "$DOCKER_CONFIG"
echo 's3cr:et' | docker login -u alice --password-stdin "$B" >/dev/null 2>&1 || fail "docker login to B"
jq -e --arg b "$B" '.auths[$b].auth' "$DOCKER_CONFIG/config.json" >/dev/null || fail "docker login wrote no credentials"
docker pull -q "$B/rpt/app:1" >/dev/null || fail "pull from B with the token flow"
run token$$ -l fresh=token "$B/rpt/app:1"
config <<YAML
agent: { listen: "127.0.0.1:$listen", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - name: settle
    match: { labels: { fresh: settle, reaper-test: "$$" } }
    max_age: 2h
    grace: 1s
    update: { check: 1s, settle: 1h }
  - name: token
    match: { labels: { fresh: token, reaper-test: "$$" } }
    max_age: 1h
    grace: 1s
    update: { check: 1s }
YAML
: >"$T/tokens.log"
start_reaper # DOCKER_CONFIG: the same config.json
wait_for 20 "both references checked" bash -c "[ \$(grep -c '\"image.seen\"' $T/audit.jsonl) -ge 2 ]"
jq -e 'select(.ok and .user == "alice" and .scope == "repository:rpt/app:pull")' "$T/tokens.log" >/dev/null ||
  fail "reaper asked no token with the credentials: $(cat "$T/tokens.log")"

# v2: B's workload moves (token flow, the engine's pull authenticated);
# A's settles for an hour.
# v2 staged and forgotten by the engine before it is promoted under the
# tag: nothing on the engine moves while B's rollout runs (it begins at the
# next check, and its pull asks its own token).
: >"$T/tokens.log"
d2=$(stage_version "$A" rpt/app 2) || fail "stage v2"
v2=$(image_id "$A/rpt/app:stage")
forget_locally "$A/rpt/app:stage" "$v2"
promote "$A" rpt/app 1 "$d2" || fail "promote v2"
wait_for 60 "token's rollout" audit_any recycle.done '.name == $n and .image_digest == $d' --arg n token$$ --arg d "$d2"
audit_any recycle.done '.name == $n and .pulled and .reason == "update" and .image == $r' --arg n token$$ --arg r "$B/rpt/app:1" ||
  fail "the engine did not pull v2 from B"
assert_eq "$v2" "$(runs_image token$$)" "token runs v2"
assert_eq "$B/rpt/app:1" "$(config_image token$$)" "token's image"
# reaper's own token is still good (expires_in 300): this one is the
# engine's, for its pull.
[ "$(jq -s '[.[] | select(.ok and .user == "alice")] | length' "$T/tokens.log")" -ge 1 ] ||
  fail "the engine's pull did not get a token with the credentials: $(cat "$T/tokens.log")"
log "a registry behind token auth: resolved and pulled with config.json's credentials"

sleep 3
assert_eq "$v1" "$(runs_image settle$$)" "settle still runs v1"
! audit_any recycle.begin '.name == $n' --arg n settle$$ || fail "settle was recycled before its digest settled"
seen=$(jq -rs --arg d "$d2" --arg r "$A/rpt/app:1" '[.[] | select(.event == "image.seen" and .digest == $d and .reference == $r)][0].ts' "$T/audit.jsonl")
until_want=$(date -u -d "@$(($(date -d "$seen" +%s) + 3600))" +%Y-%m-%dT%H:%M:%S)
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan.json" || fail "plan"
jq -e --arg n settle$$ --arg d "$d2" --arg u "$until_want" '.[] | select(.name == $n) |
  .image.newer.digest == $d and .image.newer.state == "settling" and (.image.newer.until | startswith($u)) and .due_reason == "update"' \
  "$T/plan.json" >/dev/null || fail "plan does not say v2 settles until $until_want: $(jq -c --arg n settle$$ '.[] | select(.name == $n)' "$T/plan.json")"
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.txt" || fail "plan (text)"
grep "settle$$" "$T/plan.txt" | grep -c >/dev/null "settling until $until_want" || fail "plan's table: $(grep "settle$$" "$T/plan.txt")"
log "update.settle holds v2 back until $until_want"

# Both registries down: nothing changes.
metric() { curl -fsS "http://127.0.0.1:$listen/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
before=$(metric 'reaper_registry_resolves_total{outcome="unreachable"}')
ids=$(docker ps -q --filter "label=reaper-test=$$" | sort)
pkill -f "docker-registry serve $T/ra/registry.yml" || true
pkill -f "docker-registry serve $T/rb/registry.yml" || true
sleep 6
after=$(metric 'reaper_registry_resolves_total{outcome="unreachable"}')
[ "$((after - before))" -ge 6 ] || fail "unreachable resolves counted: $before -> $after"
assert_eq "$ids" "$(docker ps -q --filter "label=reaper-test=$$" | sort)" "the containers while the registries are down"
assert_eq 1 "$(grep -c "image $A/rpt/app:1: cannot learn what the tag names (unreachable)" "$T/reaper.log")" "lines about A being down"
assert_eq 1 "$(grep -c "image $B/rpt/app:1: cannot learn what the tag names (unreachable)" "$T/reaper.log")" "lines about B being down"
curl -fsS "http://127.0.0.1:$listen/healthz" >/dev/null || fail "a registry down made the agent unhealthy"
"$REAPER" plan -c "$T/config.yaml" --json >"$T/plan2.json" || fail "plan with the registries down"
jq -e --arg n settle$$ '.[] | select(.name == $n) | .image.newer.state == "settling" and (.image.note | test("registry"))' "$T/plan2.json" >/dev/null ||
  fail "plan with the registry down: $(jq -c --arg n settle$$ '.[] | select(.name == $n) | .image' "$T/plan2.json")"
stop_reaper
verify_audit
log "registries down: $((after - before)) unreachable resolves counted in 6 s, one line each, nothing changed"
