#!/usr/bin/env bash
# Scale on one engine: reaper against a SIMULATED Docker Engine of 10,000
# running containers (tests/bench/sim_engine.py: this machine cannot run that
# many; the simulation answers the read-only calls tracking makes, in
# Engine 29.0's shape).  Prints figures, asserts no timing.  Run by hand
# (tests/run.sh does not run it); see tests/bench/README.md.
#
#   tests/bench/bench_scale.sh [--containers N] [--idle SECS] [--lean]
#        [--resync DUR] [--no-build]
#
# 1. `reaper plan` against the simulation: CPU (user+sys), peak RSS, and the
#    requests it made, per container;
# 2. `reaper run`: as soon as it has logged the first list ("N workloads"),
#    its SIGUSR1 stats line (rss_kib, heap_kib, CPU, api_requests) and
#    /proc/PID/status: RSS after the first list, CPU for the list and the
#    plan, requests per container; then, once the engine has had no request
#    for 3 s (what the first list leaves to do; crash recovery, which the
#    core's runner does, asks nothing when the audit log holds no
#    unfinished recycle, as here), RSS and the peak (VmHWM) so far;
# 3. idle: over the next SECS (60), CPU and requests (the resync, every 60 s
#    by default, falls in the window once: one list, and no inspect when
#    nothing changed; --resync 1h leaves the stream alone), and RSS at the
#    end.
# --lean makes the simulation's containers carry fewer labels (a list under
# 16 MiB, which builds before the streamed list could read).
# Output on stdout and in tests/artifacts/bench_scale.txt; logs in
# tests/artifacts/bench_scale/ (git-ignored).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

N=10000
IDLE=60
RESYNC=60s
LEAN=
BUILD=1
[ -n "${REAPER:-}" ] && BUILD=0
usage() {
  sed -n '8,9p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}
while [ $# -gt 0 ]; do
  case $1 in
  --containers) N=$2; shift ;;
  --idle) IDLE=$2; shift ;;
  --lean) LEAN=--lean ;;
  --resync) RESYNC=$2; shift ;;
  --no-build) BUILD=0 ;;
  -h | --help) usage 0 ;;
  *) echo "bench: unknown argument $1" >&2; usage ;;
  esac
  shift
done
for v in "$N" "$IDLE"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench: '$v' is not a positive whole number" >&2; exit 2; }
done
for tool in python3 curl jq cmake /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done

BUILD_DIR=$top/build-bench
REAPER=${REAPER:-$BUILD_DIR/reaper}
ART=$top/tests/artifacts/bench_scale
mkdir -p "$ART"
T=$(mktemp -d /tmp/rp-bench-scale.XXXXXX)
SIM_PID= REAPER_PID=
cleanup() {
  [ -n "$REAPER_PID" ] && kill "$REAPER_PID" 2>/dev/null && wait "$REAPER_PID" 2>/dev/null
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$BUILD" = 1 ]; then
  echo "bench: building reaper (RelWithDebInfo, $BUILD_DIR)" >&2
  cmake -S "$top" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target reaper >/dev/null
fi

SOCK=$T/sim.sock
python3 "$here/sim_engine.py" --socket "$SOCK" --containers "$N" $LEAN \
  >"$ART/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 300); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { cat "$ART/sim.log" >&2; echo "bench: the simulation did not start" >&2; exit 1; }
sim() { curl -s --unix-socket "$SOCK" "http://sim$1"; }
sim_total() { sim /_sim/stats | jq '[.[]] | add // 0'; }
sim_kind() { sim /_sim/stats | jq --arg k "$1" '.[$k] // 0'; }
list_bytes=$(sed -n 's/.*list \([0-9]*\) bytes.*/\1/p' "$ART/sim.log")

cat >"$T/config.yaml" <<EOF
agent:
  listen: ""
  audit_log: $T/state/audit.jsonl
  resync: $RESYNC
providers:
  - name: sim
    type: docker
    endpoint: unix://$SOCK
policies:
  - name: web
    match: { labels: { tier: web } }
    max_age: 7d
  - name: default
    max_age: 7d
EOF
mkdir -m 700 "$T/state"

# --- 1. plan ---------------------------------------------------------------
echo "bench: reaper plan against $N simulated containers" >&2
before=$(sim_total)
/usr/bin/time -f '%e %U %S %M' -o "$T/plan.time" \
  "$REAPER" plan -c "$T/config.yaml" >"$ART/plan.txt" 2>"$ART/plan.log" ||
  { tail -5 "$ART/plan.log" >&2; echo "bench: reaper plan failed" >&2; exit 1; }
read -r plan_wall plan_user plan_sys plan_maxrss <"$T/plan.time"
plan_requests=$(($(sim_total) - before))
plan_rows=$(grep -c ' container ' "$ART/plan.txt" || true)

# --- 2. run: the first list ------------------------------------------------
echo "bench: reaper run: the first list" >&2
before=$(sim_total)
inspects_before=$(sim_kind inspect)
t0=$(date +%s.%N)
"$REAPER" run -c "$T/config.yaml" >"$ART/run.log" 2>&1 &
REAPER_PID=$!
for _ in $(seq 1200); do
  grep -q "provider sim (docker): [0-9]* workloads" "$ART/run.log" && break
  kill -0 "$REAPER_PID" 2>/dev/null || { tail -5 "$ART/run.log" >&2; echo "bench: reaper exited" >&2; exit 1; }
  sleep 0.1
done
t1=$(date +%s.%N)
listed=$(sed -n 's/.*provider sim (docker): \([0-9]*\) workloads.*/\1/p' "$ART/run.log" | head -1)
[ -n "$listed" ] || { echo "bench: no first list within 120 s" >&2; exit 1; }

stats() { # prints the stats line after a SIGUSR1
  local n
  n=$(grep -c 'stats:' "$ART/run.log" || true)
  kill -USR1 "$REAPER_PID"
  for _ in $(seq 50); do
    [ "$(grep -c 'stats:' "$ART/run.log" || true)" -gt "$n" ] && break
    sleep 0.1
  done
  grep 'stats:' "$ART/run.log" | tail -1
}
field() { sed -n "s/.* $1=\([0-9-]*\).*/\1/p" <<<"$2"; }
proc() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$REAPER_PID/status"; }
s1=$(stats)
rss1=$(proc VmRSS)
hwm1=$(proc VmHWM)
run_requests=$(($(sim_total) - before))
run_inspects=$(($(sim_kind inspect) - inspects_before))
cpu1=$(($(field cpu_user_ms "$s1") + $(field cpu_sys_ms "$s1")))
req1=$(field api_requests "$s1")
# Whatever follows the first list (crash recovery, when the audit log has
# unfinished recycles): wait until the engine hears nothing for 3 s.
quiet() {
  local n m
  n=$(sim_total)
  for _ in $(seq 60); do
    sleep 3
    m=$(sim_total)
    [ "$m" = "$n" ] && return 0
    n=$m
  done
}
quiet
s_settled=$(stats)
rss_settled=$(proc VmRSS)
hwm_settled=$(proc VmHWM)
settle_requests=$(($(sim_total) - before))
cpu_settled=$(($(field cpu_user_ms "$s_settled") + $(field cpu_sys_ms "$s_settled")))
req_settled=$(field api_requests "$s_settled")

# --- 3. idle ---------------------------------------------------------------
echo "bench: reaper run: idle for $IDLE s" >&2
lists_before=$(sim_kind list)
inspects_before=$(sim_kind inspect)
before=$(sim_total)
sleep "$IDLE"
s2=$(stats)
rss2=$(proc VmRSS)
idle_requests=$(($(sim_total) - before))
idle_lists=$(($(sim_kind list) - lists_before))
idle_inspects=$(($(sim_kind inspect) - inspects_before))
cpu2=$(($(field cpu_user_ms "$s2") + $(field cpu_sys_ms "$s2")))
req2=$(field api_requests "$s2")
hwm2=$(proc VmHWM)

kib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a / b }'; }
{
  echo "reaper against a SIMULATED Docker Engine (tests/bench/sim_engine.py), $N running containers"
  echo "list answer: $(awk -v b="$list_bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }')${LEAN:+ (--lean)}; resync every $RESYNC"
  echo
  echo "reaper plan:                $plan_rows rows; CPU $(awk -v u="$plan_user" -v s="$plan_sys" 'BEGIN { printf "%.2f s (user %.2f, sys %.2f)", u + s, u, s }'), wall ${plan_wall} s, peak RSS $(kib "$plan_maxrss")"
  echo "                            requests $plan_requests: $(per "$plan_requests" "$N") per container"
  echo "reaper run, first list:     $listed workloads in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", b - a }')"
  echo "  RSS after the first list: $(kib "$rss1") (stats: rss $(kib "$(field rss_kib "$s1")"), heap $(kib "$(field heap_kib "$s1")")); peak $(kib "$hwm1")"
  echo "  CPU for the list + plan:  $(awk -v c="$cpu1" 'BEGIN { printf "%.2f s", c / 1000 }')"
  echo "  requests:                 $run_requests ($req1 by reaper's count), $run_inspects inspects: $(per "$run_requests" "$N") per container"
  echo "then until quiet for 3 s:   requests $((settle_requests - run_requests)), CPU $(awk -v c="$((cpu_settled - cpu1))" 'BEGIN { printf "%.2f s", c / 1000 }'); RSS $(kib "$rss_settled") (heap $(kib "$(field heap_kib "$s_settled")")), peak so far $(kib "$hwm_settled")"
  echo "idle, $IDLE s:                  CPU $(awk -v c="$((cpu2 - cpu_settled))" -v w="$IDLE" 'BEGIN { printf "%.3f s (%.3f %% of a core)", c / 1000, c / 10 / w }'), requests $idle_requests ($((req2 - req_settled)) by reaper's count): $idle_lists resync lists, $idle_inspects inspects"
  echo "  RSS after it:             $(kib "$rss2") (heap $(kib "$(field heap_kib "$s2")")), peak $(kib "$hwm2")"
} | tee "$top/tests/artifacts/bench_scale.txt"
