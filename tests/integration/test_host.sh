#!/usr/bin/env bash
# The host provider: the machine past a (short) max age is drained, then
# replaced by the policy's action: both argvs run without a shell, drain
# first, with only PATH and the host's facts in their environment; the
# action runs once, audited before it runs (recycle.begin, then its output
# in recycle.done); a second reaper in the same boot does not run it again.
# The marker lives in $REAPER_STATE_DIR, never the machine's /var/lib/reaper.
source "$(dirname "$0")/lib.sh"
export REAPER_STATE_DIR=$T/state
export SECRET_FROM_REAPERS_ENV=must-not-leak

cat >"$T/drain" <<'SH'
#!/bin/sh
echo "drain $(date +%s.%N) $*" >>"$(dirname "$0")/calls"
echo "stopped the local work"
SH
cat >"$T/replace" <<'SH'
#!/bin/sh
echo "replace $(date +%s.%N) $#:$1:$2" >>"$(dirname "$0")/calls"
env >"$(dirname "$0")/replace.env"
echo "replacing $REAPER_HOST_NAME"
SH
chmod +x "$T/drain" "$T/replace"

config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers:
  - { name: self, type: host }
policies:
  - name: hosts
    match: { kind: host }
    max_age: 1s
    strategy: drain-replace
    drain: [$T/drain, --gently]
    drain_timeout: 20s
    replace: [$T/replace, --terminate, "with space; \$(no shell)"]
YAML
reaper_once || fail "run --once exited non-zero"

# Drain, then the action, once, with its argv as given (no shell).
[ -f "$T/calls" ] || fail "neither drain nor replace ran"
cat "$T/calls"
assert_eq 2 "$(wc -l <"$T/calls")" "programs run"
assert_eq drain "$(sed -n 1p "$T/calls" | cut -d' ' -f1)" "first program"
assert_eq "--gently" "$(sed -n 1p "$T/calls" | cut -d' ' -f3-)" "drain's arguments"
assert_eq replace "$(sed -n 2p "$T/calls" | cut -d' ' -f1)" "second program"
assert_eq '2:--terminate:with space; $(no shell)' "$(sed -n 2p "$T/calls" | cut -d' ' -f3-)" "replace's arguments"

# Its environment: PATH and the host's facts, nothing of reaper's own.
host=$(hostname)
id=$(tr -d '\n' </etc/machine-id 2>/dev/null || true)
[[ $id =~ ^[0-9a-f]{32}$ ]] || id=$host
boot=$(awk '/^btime/ {print $2}' /proc/stat)
grep -qx "REAPER_HOST_ID=$id" "$T/replace.env" || fail "REAPER_HOST_ID is not $id"
grep -qx "REAPER_HOST_NAME=$host" "$T/replace.env" || fail "REAPER_HOST_NAME is not $host"
grep -qx "REAPER_BOOT_TIME=$(date -u -d @"$boot" +%Y-%m-%dT%H:%M:%S).000Z" "$T/replace.env" || fail "REAPER_BOOT_TIME is not the boot time"
grep -q '^PATH=/usr/local/sbin:' "$T/replace.env" || fail "PATH is not the minimal one"
for v in SECRET_FROM_REAPERS_ENV DOCKER_HOST HOME REAPER_STATE_DIR; do
  grep -q "^$v=" "$T/replace.env" && fail "$v leaked into the replace action's environment"
done

# Audited: begin before the action ran, done with both outputs.
assert_eq 1 "$(audit_count recycle.begin)" "recycle.begin lines"
assert_eq 1 "$(audit_count recycle.done)" "recycle.done lines"
audit_any recycle.begin '.kind == "host" and .provider == "self" and .id == $id and .name == $n and .policy == "hosts" and .strategy == "drain-replace"' \
  --arg id "$id" --arg n "$host" || fail "recycle.begin fields"
begin=$(audit_events recycle.begin | jq -r .ts)
ran=$(sed -n 2p "$T/calls" | cut -d' ' -f2)
[ "$(date -d "$begin" +%s.%N)" \< "$ran" ] || fail "recycle.begin ($begin) was not written before the action ran ($ran)"
audit_any recycle.done '.replace.exit_code == 0 and (.replace.output | contains("replacing")) and .replace.argv[1] == "--terminate" and (.drain.output | contains("stopped the local work")) and .drain.result == "exit 0"' \
  || fail "recycle.done details (drain and replace outputs)"

# The once-per-boot marker, 0600, named after this boot.
bid=$(cat /proc/sys/kernel/random/boot_id)
[ -f "$T/state/host-replace.$bid" ] || fail "no marker for boot $bid"
assert_eq 600 "$(stat -c %a "$T/state/host-replace.$bid")" "marker's mode"

# A second reaper in the same boot: the host is past its age, but the
# action never runs twice.
reaper_once || fail "the second run --once exited non-zero"
assert_eq 2 "$(wc -l <"$T/calls")" "programs run after a second reaper"
assert_eq 1 "$(audit_count recycle.begin)" "recycle.begin lines after a second reaper"
"$REAPER" plan -c "$T/config.yaml" | grep -E "^self +host .*already ran in this boot" >/dev/null || fail "plan does not say the action already ran"
verify_audit
log "host: drained, replaced once with the right environment, audited; not again in this boot"
