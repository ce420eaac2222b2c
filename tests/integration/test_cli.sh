#!/usr/bin/env bash
# The command line as users meet it: --help on every command, exit codes
# 0/1/2, check-config on the embedded default and on every example, a bad
# file answered with FILE:LINE:COL and exit 2, verify on an intact and on a
# tampered log.  (No engine needed.)
source "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
code() { local rc=0; "$@" >"$T/out" 2>"$T/err" || rc=$?; echo $rc; }

for c in run plan check-config report verify resolve-image version; do
  assert_eq 0 "$(code "$REAPER" $c --help)" "reaper $c --help"
  grep -q "Usage: reaper $c" "$T/out" || fail "reaper $c --help does not say its usage"
done
assert_eq 0 "$(code "$REAPER" --help)" "reaper --help"
assert_eq 2 "$(code "$REAPER")" "reaper without a command"
assert_eq 2 "$(code "$REAPER" frobnicate)" "an unknown command"
assert_eq 2 "$(code "$REAPER" run --bogus)" "an unknown option"
assert_eq 2 "$(code "$REAPER" resolve-image)" "resolve-image without a reference"
assert_eq 2 "$(code "$REAPER" resolve-image --platform amd64 busybox)" "resolve-image with a platform without OS"
assert_eq 0 "$(code "$REAPER" version)" "version"
grep -qE '^reaper [0-9]+\.[0-9]+\.[0-9]+' "$T/out" || fail "version prints no version"

assert_eq 0 "$(code "$REAPER" check-config)" "check-config on the embedded default"
for f in "$top"/config/examples/*.yaml; do
  assert_eq 0 "$(code "$REAPER" check-config -c "$f")" "check-config $(basename "$f")"
done
printf 'agent:\n  resync: 10x\nproviders:\n  - { name: l, type: docker }\npolicies:\n  - { name: p, max_age: 1h }\n' >"$T/bad.yaml"
assert_eq 2 "$(code "$REAPER" check-config -c "$T/bad.yaml")" "check-config on a bad file"
grep -q "bad.yaml:2:11: " "$T/err" || fail "the error does not name FILE:LINE:COL: $(cat "$T/err")"
assert_eq 2 "$(code "$REAPER" run -c "$T/bad.yaml")" "run on a bad file"
assert_eq 2 "$(code "$REAPER" check-config -c "$T/missing.yaml")" "a missing file"
grep -q "missing.yaml: cannot read" "$T/err" || fail "a missing file is not named"
cp "$top/config/examples/minimal.yaml" "$T/open.yaml" && chmod 666 "$T/open.yaml"
assert_eq 2 "$(code "$REAPER" check-config -c "$T/open.yaml")" "a file others may write"
assert_eq 0 "$(code "$REAPER" check-config --allow-insecure-config -c "$T/open.yaml")" "insisting"

# verify: an intact log (written by a real one-pass run against nothing
# reachable is not possible; write one with the agent's own dry run on an
# empty engine instead).
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies: [ { name: p, match: { labels: { none-has-this: "x" } }, max_age: 1h } ]
YAML
for _ in 1 2 3; do reaper_once --dry-run || fail "run --once"; done
assert_eq 0 "$(code "$REAPER" verify "$T/audit.jsonl")" "verify on an intact log"
grep -q "^ok: 6 lines" "$T/out" || fail "verify does not count the lines: $(cat "$T/out")"
sed '3s/"dry_run":true/"dry_run":false/' "$T/audit.jsonl" >"$T/edited.jsonl"
assert_eq 1 "$(code "$REAPER" verify "$T/edited.jsonl")" "verify on an edited log"
grep -q "edited.jsonl:3: " "$T/err" || fail "verify does not name line 3: $(cat "$T/err")"
sed '4d' "$T/audit.jsonl" >"$T/deleted.jsonl"
assert_eq 1 "$(code "$REAPER" verify "$T/deleted.jsonl")" "verify with a line deleted"
grep -q "deleted.jsonl:4: " "$T/err" || fail "verify does not name line 4: $(cat "$T/err")"
assert_eq 1 "$(code "$REAPER" verify "$T/nothing.jsonl")" "verify on a missing log"
log "command line: help, exit codes, check-config, verify"
