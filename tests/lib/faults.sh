# Sourced by the fault tests after lib.sh: starts tests/lib/faultproxy.py in
# front of the private dockerd (reaper is pointed at unix://$T/p.sock) and
# gives them fault JSON (the proxy's faults from then on) and
# no_sanitizer_report.  The proxy is stopped when the test exits.
FP="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/faultproxy.py"
PY=/usr/bin/python3 # Debian's: an interpreter manager's shim may take seconds
[ -x "$PY" ] || PY=python3
# shellcheck disable=SC2034 # used by the tests that source this
loop='trap "exit 0" TERM; while :; do sleep 0.2; done'

"$PY" "$FP" serve --listen "$T/p.sock" --upstream "${REAPER_ENDPOINT#unix://}" \
  --control "$T/faults.json" --log "$T/proxy.log" 2>>"$T/proxy.err" &
PROXY_PID=$!
on_exit 'kill $PROXY_PID 2>/dev/null'
wait_for 10 "the fault proxy's socket" test -S "$T/p.sock"
# fault JSON: the proxy's faults from now on (the file is replaced whole).
fault() {
  jq -e . <<<"$1" >/dev/null || fail "bad fault JSON: $1"
  printf '%s\n' "$1" >"$T/faults.json.tmp" && mv "$T/faults.json.tmp" "$T/faults.json"
}
no_sanitizer_report() {
  ! grep -qE 'Sanitizer|runtime error' "$T/reaper.log" || fail "sanitizer report in reaper's log"
}
