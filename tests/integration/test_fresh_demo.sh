#!/usr/bin/env bash
# contrib/fresh-content-demo.sh, run as the README shows it, on this run's
# engine: a signed release rolled out, an unsigned one refused at the gate,
# a broken one quarantined, and `reaper report` printed.
source "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
REAPER=$REAPER "$top/contrib/fresh-content-demo.sh" --use-engine --ports $((PORT_BASE + 700))-$((PORT_BASE + 709)) >"$T/demo.out" 2>&1 || {
  cat "$T/demo.out"
  fail "the demo failed"
}
cat "$T/demo.out"
grep -q "both containers run v2" "$T/demo.out" || fail "no rollout"
grep -q "refused_by verify, exit 1: no valid signature" "$T/demo.out" || fail "no refusal"
grep -q "quarantined: sha256:" "$T/demo.out" || fail "no quarantine"
grep -q "ok: .* chain intact" "$T/demo.out" || fail "the log did not verify"
log "the demo walked through a rollout, a refusal and a quarantine"
