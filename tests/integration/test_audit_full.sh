#!/usr/bin/env bash
# Fail closed: when the audit log cannot be written, a due container is not
# touched and reaper says so; once the log can be written again reaper
# resumes by itself, and the log verifies.  Writes are made to fail the way
# a full disk fails them, exactly from a given byte on: the agent's file
# size limit (RLIMIT_FSIZE, set from outside with prlimit) is lowered to the
# log's current size, then raised again.
source "$(dirname "$0")/lib.sh"
mkdir -p "$T/auditfs"
run full$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
old_id=$(cid full$$)
config <<YAML
agent: { listen: "", audit_log: $T/auditfs/audit.jsonl, resync: 1s }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 6s, grace: 2s }
YAML
# Its log goes through a pipe: the file size limit must not hit it too.
"$REAPER" run -c "$T/config.yaml" > >(cat >>"$T/reaper.log") 2>&1 &
REAPER_PID=$!
wait_for 15 "the first list" grep -q "workloads" "$T/reaper.log"
size=$(stat -c %s "$T/auditfs/audit.jsonl")
prlimit --pid "$REAPER_PID" --fsize="$size:unlimited" || fail "prlimit"
sleep 9   # the container is due by now
assert_eq "$old_id" "$(cid full$$)" "the container, while the log cannot be written"
running full$$ || fail "full$$ was stopped while the log could not be written"
grep -qE "audit log (not writable|.*cannot be written)" "$T/reaper.log" || fail "reaper did not say the log cannot be written"
# Writable again: reaper resumes by itself.
assert_eq "$size" "$(stat -c %s "$T/auditfs/audit.jsonl")" "the log's size while it cannot be written"
prlimit --pid "$REAPER_PID" --fsize=unlimited:unlimited || fail "prlimit back"
wait_for 60 "full$$ recycled once the log can be written" sh -c "[ \"\$(docker inspect -f '{{.Id}}' full$$ 2>/dev/null)\" != '$old_id' ]"
wait_for 10 "recycle.done" grep -q '"recycle.done"' "$T/auditfs/audit.jsonl"
stop_reaper
cp "$T/auditfs/audit.jsonl" "$T/audit.jsonl"
verify_audit
grep -E "audit" "$T/reaper.log" | head -8
jq -c '{seq, event, name, error}' "$T/audit.jsonl"
log "no action while the log could not be written; resumed by itself"
