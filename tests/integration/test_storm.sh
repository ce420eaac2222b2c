#!/usr/bin/env bash
# The storm (issue 15): two dozen containers recycling over and over while
# reaper is killed with SIGKILL at random moments, not at chosen steps, and
# the engine is restarted once in the middle.  Afterwards, once a last
# reaper has recovered what the killed ones left: every name runs exactly
# once, with its configuration, and nothing of reaper's temporary work is
# left; the audit log verifies.
#
#   STORM_SECONDS  how long the storm lasts (default 90; longer by hand)
#   STORM_SEED     the seed of its random moments (printed; give it to replay
#                  the same kill times)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../lib/engine.sh"
seconds=${STORM_SECONDS:-90}
seed=${STORM_SEED:-$(( $(date +%s%N) % 32768 ))}
RANDOM=$seed
log "storm: ${seconds}s, seed $seed (STORM_SEED=$seed replays its kill times)"

n=24
names=()
for i in $(seq 1 $n); do
  name=st$i-$$
  names+=("$name")
  # Some take a while over their SIGTERM: a stop a killed reaper asked for
  # then lands after it died.
  if [ $((i % 3)) = 0 ]; then
    cmd='trap "sleep 2; exit 0" TERM; while :; do sleep 0.2; done'
  else
    cmd='trap "exit 0" TERM; while :; do sleep 0.2; done'
  fi
  # unless-stopped: back after the engine restart, as production containers
  # are; a container reaper stopped stays stopped.
  run "$name" --restart unless-stopped -e KEEP="v$i" -l keep="l$i" -l storm=$$ \
    reaper-test/sleeper:1 sh -c "$cmd"
done

policy() { # MAX_AGE
  config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl, resync: 2s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: storm, match: { labels: { storm: "$$" } }, max_age: $1, grace: 5s,
      health_timeout: 10s, max_unavailable: 6 }
YAML
}
policy 3s

kills=0
restarted=false
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
  "$REAPER" run -c "$T/config.yaml" >>"$T/reaper.log" 2>&1 &
  pid=$!
  # 0.3 s to 9 s: at any moment of a recycle (one takes about 3 s), of
  # recovery (as long), of the start; some recycles finish between kills.
  sleep "$((RANDOM % 9)).$((RANDOM % 10 + 3))"
  kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
  wait "$pid" 2>/dev/null || true # 137: killed, as meant
  if ! $restarted && [ $SECONDS -ge $((end - seconds / 2)) ]; then
    log "engine restart, $kills kills in"
    engine_restart || fail "dockerd did not come back"
    restarted=true
  fi
done
log "storm over: $kills kills, $(audit_count recycle.done) recycles done, $(audit_count recycle.recovered) recoveries"

# A last reaper that recycles nothing more: it only recovers.
policy 1h
start_reaper
wait_for 60 "every unfinished recycle recovered" sh -c '
  jq -rs "[.[] | select(.event | test(\"^recycle\\\\.(begin|done|failed|recovered)$\"))]
          | group_by(.id) | map(select(.[-1].event == \"recycle.begin\")) | length" "$0" | grep -cx >/dev/null 0' "$T/audit.jsonl"
sleep 3
stop_reaper

lost=0
for i in $(seq 1 $n); do
  name=${names[$((i - 1))]}
  count=$(names_matching "$name" | wc -l)
  if [ "$count" != 1 ] || ! running "$name"; then
    log "LOST $name: $count containers named $name*: $(docker ps -a --filter name="$name" --format '{{.Names}} {{.Status}}' | tr '\n' ';')"
    lost=$((lost + 1))
    continue
  fi
  assert_eq "KEEP=v$i" "$(docker inspect "$name" | jq -r '.[0].Config.Env[] | select(startswith("KEEP="))')" "$name: env kept"
  assert_eq "l$i" "$(docker inspect -f '{{index .Config.Labels "keep"}}' "$name")" "$name: label kept"
  assert_eq unless-stopped "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$name")" "$name: restart policy kept"
done
[ "$lost" = 0 ] || fail "$lost of $n names do not run exactly once (seed $seed)"
left=$(docker ps -aq --filter name=reaper-old | wc -l)
[ "$left" = 0 ] || fail "$left -reaper-old containers left behind (seed $seed)"
assert_eq $n "$(docker ps -q --filter label=storm=$$ | wc -l)" "running containers of the storm"
! grep -qE 'Sanitizer|runtime error' "$T/reaper.log" || fail "sanitizer report in reaper's log"
verify_audit
log "storm figures: seed $seed, $n containers, $kills kills, 1 engine restart, $(audit_count recycle.done) recycles done, $(audit_count recycle.failed) failed, $(audit_count recycle.recovered) recoveries ($(audit_events recycle.recovered | jq -r .action | sort | uniq -c | tr -s ' ' | tr '\n' ',')), $n of $n names intact"
