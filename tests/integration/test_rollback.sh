#!/usr/bin/env bash
# A replacement that cannot be created (a bind mount whose source is gone)
# or that exits at once is rolled back: the old container runs again under
# its own name, nothing else is left behind, and the failure is audited with
# rolled_back: true.
source "$(dirname "$0")/lib.sh"

# 1. cannot be created: the bind mount's source disappears after the start
# (a dangling symlink takes its place: podman would create a missing one).
mkdir -p "$T/gone"
run cc$$ -l case=create --mount "type=bind,source=$T/gone,target=/gone" \
  reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
# 2. exits at once (stop-first): it needs /cfg/ok or a /ok that its first
# run left in its own filesystem; /cfg/ok goes away, so a fresh container
# exits with 3 while the old one, restarted, still finds its /ok.
mkdir -p "$T/cfg" && touch "$T/cfg/ok"
run ex$$ -l case=exit -v "$T/cfg:/cfg" \
  reaper-test/sleeper:1 sh -c 'test -f /cfg/ok || test -f /ok || exit 3; touch /ok; trap "exit 0" TERM; while :; do sleep 0.2; done'
# 3. the same with start-first: the old one never stops.  On podman, without
# a network: there reaper keeps a networked container's addresses (podman
# does not say which were fixed), and start-first falls back (README).
sf_net=()
[ "$ENGINE_KIND" = podman ] && sf_net=(--network none)
run sf$$ -l case=exit -l order=start-first -v "$T/cfg:/cfg" "${sf_net[@]}" \
  reaper-test/sleeper:1 sh -c 'test -f /cfg/ok || test -f /ok || exit 3; touch /ok; trap "exit 0" TERM; while :; do sleep 0.2; done'
sf_started=$(started_at sf$$)
cc_id=$(cid cc$$) ex_id=$(cid ex$$) sf_id=$(cid sf$$)
rmdir "$T/gone" && ln -s "$T/nowhere" "$T/gone"
rm "$T/cfg/ok"

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: sf, match: { labels: { order: start-first, reaper-test: "$$" } }, max_age: 1s, grace: 2s, order: start-first, health_timeout: 10s }
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1s, grace: 2s, max_unavailable: 2, health_timeout: 10s }
YAML
sleep 1.5
rc=0; reaper_once || rc=$?
assert_eq 1 "$rc" "run --once exit status when recycles failed"

for c in cc$$ ex$$ sf$$; do
  running $c || fail "$c is not running after the rollback"
  [ "$(names_matching "$c\$" | wc -l)" = 1 ] || fail "more than one $c"
done
assert_eq "$cc_id" "$(cid cc$$)" "cc keeps its container"
assert_eq "$ex_id" "$(cid ex$$)" "ex keeps its container"
assert_eq "$sf_id" "$(cid sf$$)" "sf keeps its container"
assert_eq "$sf_started" "$(started_at sf$$)" "start-first never stopped the old container"
[ -z "$(docker ps -aq --filter name=reaper-old)" ] || fail "a -reaper-old container was left behind"
[ "$(docker ps -aq --filter label=reaper.replaces | wc -l)" = 0 ] || fail "a failed replacement was left behind"

assert_eq 3 "$(audit_count recycle.failed)" "recycle.failed lines"
audit_any recycle.failed '.rolled_back != true' && fail "a failure was not rolled back"
audit_any recycle.failed '.id == $id and (.error | test("create"))' --arg id "$cc_id" || fail "cc's error does not say create failed"
for id in "$ex_id" "$sf_id"; do
  audit_any recycle.failed '.id == $id and (.error | test("exit code 3"))' --arg id "$id" || fail "$id's error does not say it exited with 3"
done
assert_eq 0 "$(audit_count recycle.done)" "recycle.done lines"
verify_audit
log "both failures rolled back"
