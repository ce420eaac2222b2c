#!/usr/bin/env bash
# The host provider when things go wrong: a drain that cannot start stops
# the recycle before the action (no marker: it may run later); a replace
# action that fails is said in words with its output and is not run again
# in this boot; a policy that would recreate a host is refused.
source "$(dirname "$0")/lib.sh"
cat >"$T/replace" <<'SH'
#!/bin/sh
echo "replace" >>"$(dirname "$0")/calls"
echo "cloud API said no" >&2
exit 3
SH
chmod +x "$T/replace"
bid=$(cat /proc/sys/kernel/random/boot_id)

# A pass with a failed recycle exits 1.
once_fails() {
  local rc=0
  reaper_once || rc=$?
  assert_eq 1 "$rc" "run --once's exit status after a failed recycle"
}

host_config() { # STATE-DIR EXTRA-POLICY-LINES
  export REAPER_STATE_DIR=$1
  config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers:
  - { name: self, type: host }
policies:
  - name: hosts
    match: { kind: host }
    max_age: 1s
$2
YAML
}

# 1. The drain program is not there: nothing else happens.
host_config "$T/s1" "    strategy: drain-replace
    drain: [$T/no-such-drain]
    replace: [$T/replace]"
once_fails
[ -f "$T/calls" ] && fail "the replace action ran although the drain could not start"
[ -e "$T/s1/host-replace.$bid" ] && fail "a marker was left although the action never ran"
audit_any recycle.failed '.kind == "host" and .rolled_back == true and (.error | contains("could not start")) and (.error | contains("no-such-drain"))' \
  || fail "recycle.failed for a drain that cannot start"

# 2. The action fails: said with its exit and output, not run again.
host_config "$T/s2" "    strategy: drain-replace
    replace: [$T/replace]"
once_fails
assert_eq 1 "$(wc -l <"$T/calls")" "replace runs"
audit_any recycle.failed '.rolled_back == false and (.error | contains("exit 3")) and (.error | contains("cloud API said no")) and .replace.exit_code == 3' \
  || fail "recycle.failed for a failing action"
[ -e "$T/s2/host-replace.$bid" ] || fail "no marker after the action ran"
reaper_once || fail "the second run --once exited non-zero (the host is left alone)"
assert_eq 1 "$(wc -l <"$T/calls")" "replace runs after a second reaper"

# 3. A host is never recreated: refused, nothing run.
host_config "$T/s3" "    strategy: recreate
    replace: [$T/replace]"
rc=0
reaper_once || rc=$?
assert_eq 1 "$(wc -l <"$T/calls")" "replace runs after a recreate policy"
if grep -q "does not apply to a host" "$T/reaper.log"; then
  # Refused by the provider at recycle time: audited as failed, nothing done.
  assert_eq 1 "$rc" "run --once's exit status after a refused recycle"
  audit_any recycle.failed '.kind == "host" and .strategy == "recreate" and .rolled_back == true' ||
    fail "the refused recycle of the host is not audited"
else
  # Or refused by the configuration check before anything ran.
  assert_eq 2 "$rc" "run --once's exit status with a recreate policy for a host"
fi

# 4. reaper dies between the marker and the action (test builds only): the
# next reaper says what it found (recycle.recovered, finished: the marker
# says the action may have started) and never runs the action again.
# (The crash points exist only in test builds, -DREAPER_CRASHPOINTS=ON.)
host_config "$T/s4" "    strategy: drain-replace
    replace: [$T/replace]"
rc=0
REAPER_CRASH_AT=host-after-marker "$REAPER" run -c "$T/config.yaml" --once >>"$T/reaper.log" 2>&1 || rc=$?
assert_eq 137 "$rc" "exit status of the run killed after the marker"
[ -e "$T/s4/host-replace.$bid" ] || fail "no marker before the action"
reaper_once || fail "the run after the crash failed"
audit_any recycle.recovered '.kind == "host" and .action == "finished" and .ok == true and (.detail | contains("marker"))' ||
  fail "no recycle.recovered for the host after the crash"
assert_eq 1 "$(wc -l <"$T/calls")" "replace runs after the crash"
verify_audit
log "host: failures said, nothing run twice, no recreate of a host"
