#!/usr/bin/env bash
# systemd's notify protocol as a Type=notify unit with WatchdogSec= sees it,
# on a datagram socket of the test's own as NOTIFY_SOCKET:
#  - READY=1 once the agent's own machinery is up, also when no engine is
#    reachable (STATUS= says the provider is down), and no WATCHDOG=1 when
#    WATCHDOG_PID names another process;
#  - against the private dockerd: STATUS= says the provider is up and crash
#    recovery done; WATCHDOG=1 about every half of WATCHDOG_USEC;
#  - SIGHUP: RELOADING=1 with MONOTONIC_USEC on CLOCK_MONOTONIC (as systemd
#    253 wants), then READY=1;
#  - SIGTERM: STOPPING=1, exit 0, and no ping after the exit.
# The unit itself (contrib/reaper.service) is checked by test_man.sh.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

# The manager's side: every datagram with its arrival on CLOCK_MONOTONIC
# (microseconds), newlines shown as '|'.
cat >"$T/listen.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
while True:
    d = s.recv(65536).decode()
    out.write("%d\t%s\n" % (time.monotonic_ns() // 1000, d.replace("\n", "|")))
PY
python3 "$T/listen.py" "$T/notify.sock" "$T/msgs" &
LISTENER=$!
on_exit "kill $LISTENER"
wait_for 10 "the notify socket" test -S "$T/notify.sock"

msgs_after() { awk -F'\t' -v n="$1" 'NR > n' "$T/msgs"; }
count() { grep -c . "$T/msgs" 2>/dev/null || echo 0; }
has_after() { msgs_after "$1" | grep -cE >/dev/null "$2"; }

start_notified() { # WATCHDOG_USEC [WATCHDOG_PID]
  env NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC="$1" ${2:+WATCHDOG_PID=$2} \
    "$REAPER" run -c "$T/config.yaml" >>"$T/reaper.log" 2>&1 &
  REAPER_PID=$!
}

# --- no engine reachable -------------------------------------------------------
config <<YAML
agent:
  listen: ""
  audit_log: $T/audit.jsonl
providers:
  - name: local
    type: docker
    endpoint: unix://$T/no-engine.sock
policies:
  - name: test
    max_age: 1h
YAML
# WATCHDOG_PID names PID 1: the watchdog is another process's, not reaper's.
start_notified 400000 1
wait_for 15 "READY=1 without an engine" has_after 0 '^[0-9]+	READY=1'
grep -P '\tREADY=1\|STATUS=0 of 1 providers up, down: local; crash recovery pending$' "$T/msgs" >/dev/null ||
  fail "READY's STATUS without an engine: $(cat "$T/msgs")"
grep -q 'provider local (docker) unreachable' "$T/reaper.log" || fail "the engine was reachable?"
sleep 1.5
if grep -q 'WATCHDOG=1' "$T/msgs"; then fail "WATCHDOG=1 for another process's watchdog"; fi
n=$(count)
stop_reaper
wait_for 5 "STOPPING=1" has_after "$n" 'STOPPING=1'
log "no engine: $(tr '\n' ' ' <"$T/msgs")"

# --- the private dockerd ---------------------------------------------------------
: >"$T/msgs"
simple_config 1h
run box reaper-test/sleeper:1
start_notified 1000000
wait_for 20 "READY=1" has_after 0 'READY=1'
wait_for 20 "STATUS: the provider up and recovery done" \
  grep -qP '(READY=1\||\t)STATUS=1 of 1 providers up; crash recovery done$' "$T/msgs"
sleep 3.2
# WATCHDOG=1 every ~500 ms: the gaps between pings, in ms.
grep -P '\tWATCHDOG=1$' "$T/msgs" | cut -f1 | awk 'NR > 1 { print int(($1 - p) / 1000) } { p = $1 }' >"$T/gaps"
pings=$(grep -cP '\tWATCHDOG=1$' "$T/msgs")
log "watchdog: $pings pings, gaps (ms): $(tr '\n' ' ' <"$T/gaps")"
[ "$pings" -ge 5 ] || fail "only $pings WATCHDOG=1 in 3.2 s with WATCHDOG_USEC=1s"
awk '{ s += $1; if ($1 < 250 || $1 > 1000) bad++ } END { m = s / NR; exit !(m >= 400 && m <= 700 && !bad) }' "$T/gaps" ||
  fail "WATCHDOG=1 not at about half of WATCHDOG_USEC (500 ms): $(tr '\n' ' ' <"$T/gaps")"

# SIGHUP: RELOADING=1 with MONOTONIC_USEC near the listener's own clock, then READY=1.
n=$(count)
kill -HUP "$REAPER_PID"
wait_for 10 "READY=1 after the reload" has_after "$n" 'READY=1'
msgs_after "$n" | grep -v 'WATCHDOG=1$' >"$T/reload"
cat "$T/reload"
head -n 1 "$T/reload" | grep -cP >/dev/null '\tRELOADING=1\|MONOTONIC_USEC=[0-9]+$' || fail "the reload did not begin with RELOADING=1 and MONOTONIC_USEC"
sed -n 2p "$T/reload" | grep -cP >/dev/null '\tREADY=1(\|STATUS=.*)?$' || fail "the reload did not end with READY=1"
read -r at mono < <(head -n 1 "$T/reload" | sed -E 's/^([0-9]+)\t.*MONOTONIC_USEC=([0-9]+)$/\1 \2/')
skew=$((at - mono))
log "MONOTONIC_USEC $mono, received at $at (CLOCK_MONOTONIC): ${skew} us later"
[ "$skew" -ge 0 ] && [ "$skew" -lt 2000000 ] || fail "MONOTONIC_USEC is not the time of the reload on CLOCK_MONOTONIC"
grep -q '"event":"config.reload"' "$T/audit.jsonl" || fail "the reload was not audited"

# SIGTERM: STOPPING=1, exit 0, and the pings end with the agent.
n=$(count)
stop_reaper
wait_for 5 "STOPPING=1" has_after "$n" 'STOPPING=1'
n=$(count)
sleep 1.2
if has_after "$n" 'WATCHDOG=1'; then fail "WATCHDOG=1 after the exit"; fi
running box || fail "the container was touched"
log "ok"
