#!/usr/bin/env bash
# The docker provider's benchmark: prints figures, asserts no timing.
# Run by hand (tests/run.sh does not run it); see tests/bench/README.md.
#
#   tests/bench/bench_docker.sh [--quick] [--idle SECS] [--containers N]
#        [--max-age DUR|auto] [--jitter PCT] [--spacing SECS]
#        [--resync SECS] [--parallel N] [--nice N] [--no-build] [--perf-trace]
#
# 1. builds reaper (RelWithDebInfo, build-bench/), starts a private dockerd
#    at $ENGINE_DIR (default /tmp/rp-bench) and the test images, creates N
#    sleeper containers labelled for the policy;
# 2. lateness: `reaper run` with max_age and jitter that spread the N
#    deadlines over minutes, max_unavailable N (nothing queues behind the
#    budget: this measures the scheduler), strategy recreate, grace 1s; once
#    every original container has its recycle.done, the audit log gives the
#    lateness of each recycle.begin against its deadline, and the durations
#    (replacements are excluded from the policy: one recycle per original);
# 3. idle cost: a second `reaper run` tracks the N containers with nothing
#    due (max_age 1d) over an idle window (300 s, --quick 60): RSS and CPU
#    from /proc and from the SIGUSR1 stats line;
# 4. requests at steady state: api_requests of the stats line at both ends
#    of the window, against the resyncs that fell in it;
# 5. prints a summary and writes it to tests/artifacts/bench_docker.txt, the
#    logs and audit logs to tests/artifacts/bench_docker/.
# Everything it started (reaper, containers, the engine) goes on exit,
# Ctrl-C included.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

N=200
IDLE=300
RESYNC=60
MAX_AGE=auto
JITTER=60%
SPACING=1.5
PARALLEL=2
BUILD=1
PERF_TRACE=0
NICE=0
PERF_PID=
[ -n "${REAPER:-}" ] && BUILD=0 # a given binary is used as it is
usage() {
  sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}
while [ $# -gt 0 ]; do
  case $1 in
  --quick) IDLE=60 ;;
  --idle) IDLE=$2; shift ;;
  --containers) N=$2; shift ;;
  --max-age) MAX_AGE=$2; shift ;;
  --jitter) JITTER=$2; shift ;;
  --spacing) SPACING=$2; shift ;;
  --resync) RESYNC=$2; shift ;;
  --parallel) PARALLEL=$2; shift ;;
  --no-build) BUILD=0 ;;
  --perf-trace) PERF_TRACE=1 ;;
  --nice) NICE=$2; shift ;;
  -h | --help) usage 0 ;;
  *) echo "bench: unknown argument $1" >&2; usage ;;
  esac
  shift
done
for v in "$N" "$IDLE" "$RESYNC" "$PARALLEL"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench: '$v' is not a positive whole number" >&2; exit 2; }
done
[[ $JITTER =~ ^([1-9]|[1-8][0-9]|90)%$ ]] || { echo "bench: --jitter wants 1% to 90%" >&2; exit 2; }
[[ $NICE =~ ^-?[0-9]+$ ]] || { echo "bench: --nice wants a number" >&2; exit 2; }
[[ $SPACING =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench: --spacing wants seconds" >&2; exit 2; }
tools="jq curl docker dockerd cmake"
[ "$PERF_TRACE" = 0 ] || tools="$tools perf python3"
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done

export ENGINE_DIR=${ENGINE_DIR:-/tmp/rp-bench}
BUILD_DIR=$top/build-bench
REAPER=${REAPER:-$BUILD_DIR/reaper}
ART=$top/tests/artifacts
OUT=$ART/bench_docker
W=$(mktemp -d /tmp/rp-bench-run.XXXXXX)
LABEL_KEY=reaper-bench
LABEL="$LABEL_KEY=$$"
REAPER_PID=
HZ=$(getconf CLK_TCK)
# shellcheck source-path=SCRIPTDIR source=../lib/engine.sh
source "$top/tests/lib/engine.sh"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "bench: $*"; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
calc() { awk "BEGIN { $1 }" </dev/null; } # calc 'printf "%.1f", 1/3'

stop_reaper() { # SECONDS: SIGTERM, then SIGKILL past that bound
  [ -n "$REAPER_PID" ] || return 0
  local pid=$REAPER_PID i
  REAPER_PID=
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $1 * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$PERF_PID" ] && { kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null || true; }
  [ -n "$REAPER_PID" ] && log "stopping reaper (pid $REAPER_PID)"
  stop_reaper 10
  if engine_ping; then
    log "removing the containers and stopping the engine at $ENGINE_DIR"
    docker ps -aq --filter "label=$LABEL_KEY" | xargs -r docker rm -f >/dev/null 2>&1 || true
  fi
  engine_stop >/dev/null 2>&1 || true
  if [ -d "$W" ]; then
    rm -rf "$OUT"
    mkdir -p "$OUT"
    cp -f "$W"/*.log "$W"/*.jsonl "$W"/*.yaml "$W"/*.txt "$OUT"/ 2>/dev/null || true
    rm -rf "$W"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# --- helpers -------------------------------------------------------------------

start_reaper() { # NAME: runs $W/NAME.yaml, logs to $W/NAME.log
  # --nice: with a higher priority the run-queue wait of a busy host mostly
  # goes, and what remains of the lateness is reaper's own.
  nice -n "$NICE" "$REAPER" run -c "$W/$1.yaml" >>"$W/$1.log" 2>&1 &
  REAPER_PID=$!
}

wait_log() { # FILE REGEX SECONDS
  local end=$(($(now_ms) + $3 * 1000))
  until grep -qE "$2" "$1" 2>/dev/null; do
    kill -0 "$REAPER_PID" 2>/dev/null || { tail -n 20 "$1" >&2; die "reaper exited; its log is above"; }
    [ "$(now_ms)" -lt "$end" ] || { tail -n 20 "$1" >&2; die "no '$2' in $1 within $3 s"; }
    sleep 0.2
  done
}

# stats NAME: asks for the SIGUSR1 stats line and prints its key=value pairs.
stats() {
  local f=$W/$1.log before
  before=$(grep -c ' stats: ' "$f" || true)
  kill -USR1 "$REAPER_PID"
  local end=$(($(now_ms) + 10000))
  until [ "$(grep -c ' stats: ' "$f" || true)" -gt "$before" ]; do
    [ "$(now_ms)" -lt "$end" ] || die "no stats line after SIGUSR1"
    sleep 0.05
  done
  grep ' stats: ' "$f" | tail -n 1 | sed 's/.* stats: //'
}
field() { # KEY STATS-LINE
  tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}
proc_cpu_ticks() { # utime + stime of PID (fields 14 and 15; the comm may hold spaces)
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
proc_kib() { # FIELD PID: VmRSS or VmHWM in KiB
  awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"
}
load1() { cut -d' ' -f1 /proc/loadavg; }

sleeper() { # NAME...: one container per name, labelled for the policy
  # PID 1 waits on a background sleep, so SIGTERM ends it at once rather
  # than after the sleep: a stop costs the engine's work, not the grace.
  printf '%s\n' "$@" | xargs -P "$PARALLEL" -I{} docker run -d --name {} --network none \
    -l "$LABEL" reaper-test/sleeper:1 \
    sh -c 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'
}

write_config() { # NAME MAX_AGE JITTER MAX_UNAVAILABLE [EXTRA-YAML]
  cat >"$W/$1.yaml" <<YAML
agent:
  listen: ""
  audit_log: $W/$1.jsonl
  resync: ${RESYNC}s
providers:
  - name: local
    type: docker
    endpoint: $DOCKER_HOST
policies:
  - name: bench
    match:
      labels: { $LABEL_KEY: "$$" }
    max_age: $2
    jitter: $3
    grace: 1s
    strategy: recreate
    max_unavailable: $4
    health_timeout: 30s
${5:-}
YAML
}

duration_s() { # 1h30m -> 5400
  local rest=$1 total=0 n u
  while [[ $rest =~ ^([0-9]+)(s|m|h|d)(.*)$ ]]; do
    n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]} rest=${BASH_REMATCH[3]}
    case $u in
    s) total=$((total + n)) ;; m) total=$((total + n * 60)) ;;
    h) total=$((total + n * 3600)) ;; d) total=$((total + n * 86400)) ;;
    esac
  done
  { [ -z "$rest" ] && [ "$total" -gt 0 ]; } || die "--max-age: '$1' is not a duration like 3m or 1h30m"
  echo "$total"
}

# jq: percentiles by nearest rank; RFC 3339 (with a fraction) to epoch ms.
JQ_LIB='
def pct(p): if length == 0 then null
  else sort | .[([(length * p | ceil) - 1, 0] | max)] end;
def ms_of(t): t | capture("^(?<s>[^.Z]+)(\\.(?<f>[0-9]+))?Z$")
  | ((.s + "Z") | fromdateiso8601) * 1000 + ("0." + (.f // "0") | tonumber) * 1000;
def abs: if . < 0 then -. else . end;
'
fmt() { # PRINTF-FORMAT VALUE: "-" stays "-"
  if [ "$2" = - ]; then echo -; else calc "printf \"$1\", $2"; fi
}

# --- 1. build, engine, images, containers -------------------------------------

if [ "$BUILD" = 1 ]; then
  log "building reaper (RelWithDebInfo) in $BUILD_DIR"
  cmake -S "$top" -B "$BUILD_DIR" -DREAPER_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >"$W/build.log" 2>&1 || { cat "$W/build.log" >&2; die "cmake failed"; }
  cmake --build "$BUILD_DIR" --target reaper -j"$(nproc)" >>"$W/build.log" 2>&1 ||
    { tail -n 40 "$W/build.log" >&2; die "the build failed (retry, or --no-build)"; }
fi
[ -x "$REAPER" ] || die "$REAPER is not built"

log "starting the private engine at $ENGINE_DIR"
engine_start || die "the engine did not start"
engine_build_images || die "could not build the test images"
docker ps -aq --filter "label=$LABEL_KEY" | xargs -r docker rm -f >/dev/null
DOCKERD_VERSION=$(docker version -f '{{.Server.Version}}' 2>/dev/null || echo unknown)
CORES=$(nproc)

# A few at a time: a 2-core host whose engine starts dozens of containers at
# once spends seconds per start and times API calls out, which would measure
# the engine's backlog instead of reaper.
log "creating $N containers, $PARALLEL at a time"
t_create=$(now_ms)
mapfile -t names < <(seq -f "rpb$$-%03g" 0 $((N - 1)))
sleeper "${names[@]}" >"$W/orig.ids" 2>"$W/create.err" ||
  { cat "$W/create.err" >&2; die "could not create the containers"; }
t_created=$(now_ms)
sort -o "$W/orig.ids" "$W/orig.ids"
[ "$(wc -l <"$W/orig.ids")" -eq "$N" ] || die "created $(wc -l <"$W/orig.ids") containers, not $N"
create_s=$(((t_created - t_create) / 1000))
log "created $N containers in $create_s s"

# --- 2. lateness -------------------------------------------------------------------

# deadline = start + max_age - U(0, jitter * max_age).  auto picks the
# smallest max_age (at least 3 minutes) whose earliest deadline falls 40 s
# after reaper starts (time to list and inspect N containers) and whose
# jitter spreads the deadlines SPACING seconds apart on average.
j=${JITTER%\%}
if [ "$MAX_AGE" = auto ]; then
  max_age_s=$(calc "a = 180; b = ($create_s + 40) / (1 - $j / 100); c = $N * $SPACING / ($j / 100);
    if (b > a) a = b; if (c > a) a = c; printf \"%d\", int((a + 9) / 10) * 10")
else
  max_age_s=$(duration_s "$MAX_AGE")
  early=$(calc "printf \"%d\", $max_age_s * (1 - $j / 100) - $create_s")
  [ "$early" -ge 30 ] || log "warning: the earliest deadlines may pass before reaper has listed the containers (a larger --max-age avoids it)"
fi
spread_s=$(calc "printf \"%d\", $max_age_s * $j / 100 + $create_s")
# The replacements carry reaper.replaces: excluding them keeps the phase to
# one recycle per original container.  The budget is the number N, not
# 100%: a percentage counts the workloads the policy matches now, and the
# excluded replacements leave that base one by one, so that near the end
# 100% of what is left would hold deadlines back behind recycles in flight.
write_config lateness "${max_age_s}s" "$JITTER" "$N" 'exclude:
  labels: { reaper.replaces: "*" }'
log "lateness: reaper recycles $N containers, max_age ${max_age_s}s, jitter $JITTER: deadlines over ~$spread_s s"
start_reaper lateness
wait_log "$W/lateness.log" "provider local \\(docker\\): $N workloads" 120
read -r _ rd0 sl0 <"/proc/$REAPER_PID/schedstat"
phase_pid=$REAPER_PID
if [ "$PERF_TRACE" = 1 ]; then
  # Every syscall of reaper's loop thread with perf's clock (CLOCK_MONOTONIC
  # here), and both clocks read together to line it up with the audit log.
  # It perturbs the figures a little: for finding a cause, not for numbers.
  perf trace -T --sched -p "$REAPER_PID" -o "$W/lateness.perf-trace.txt" 2>"$W/perf.log" &
  PERF_PID=$!
  python3 -c 'import time; print(time.clock_gettime(time.CLOCK_MONOTONIC), time.time())' >"$W/clocks.txt"
fi

bound_ms=$((t_created + (max_age_s + 180) * 1000))
done_orig=0
last_report=0
: >"$W/load.txt"
while :; do
  # (a line being written as jq reads it is a parse error: count again)
  done_orig=$({ jq -r 'select(.event == "recycle.done") | .id' "$W/lateness.jsonl" 2>/dev/null || true; } |
    sort -u | comm -12 - "$W/orig.ids" | wc -l)
  [ "$done_orig" -ge "$N" ] && break
  kill -0 "$REAPER_PID" 2>/dev/null || { tail -n 20 "$W/lateness.log" >&2; die "reaper exited"; }
  if [ "$(now_ms)" -ge "$bound_ms" ]; then
    log "time bound reached with $done_orig of $N recycled"
    break
  fi
  if [ $(($(now_ms) - last_report)) -ge 30000 ]; then
    log "recycled $done_orig of $N (load $(load1))"
    last_report=$(now_ms)
  fi
  load1 >>"$W/load.txt"
  sleep 1
done
read -r _ rd1 sl1 <"/proc/$phase_pid/schedstat"
if [ -n "$PERF_PID" ]; then
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=
fi
s_late=$(stats lateness)
log "$done_orig of $N recycled; stopping reaper (stats: $s_late)"
stop_reaper 60
load_avg=$(awk '{ s += $1; if ($1 > m) m = $1 } END { printf "%.1f (max %.1f)", s / NR, m }' "$W/load.txt")
runq_ms=$(calc "d = $sl1 - $sl0; if (d > 0) printf \"%.2f\", ($rd1 - $rd0) / d / 1e6; else print \"-\"")

# First attempts: begins of a container seen for the first time, not retries.
# Anything else (retries, a container re-tracked after a failed recycle)
# counts apart; two begins of one container without an end between them are
# overlapping recycles, which must never happen.
jq -s -r "$JQ_LIB"'
  reduce .[] as $x ({seen: {}, fly: {}, first: [], other: [], overlap: 0, dur: [], failed: 0};
    if $x.event == "recycle.begin" then
      (if (.fly[$x.id] // 0) > 0 then .overlap += 1 else . end)
      | (if $x.attempt == null and (.seen[$x.id] | not) then .first += [$x] else .other += [$x] end)
      | .seen[$x.id] = true | .fly[$x.id] = (.fly[$x.id] // 0) + 1
    elif $x.event == "recycle.done" then
      .dur += [$x.duration_s] | .fly[$x.id] = (.fly[$x.id] // 1) - 1
    elif $x.event == "recycle.failed" then
      .failed += 1 | .fly[$x.id] = (.fly[$x.id] // 1) - 1
    else . end)
  | (.first | map(.lateness_s * 1000)) as $l
  | (.first | map(ms_of(.ts) - ms_of(.deadline))) as $re
  | [(.first | length), ($l | pct(0.5)), ($l | pct(0.95)), ($l | max),
     ($re | pct(0.5)), ($re | pct(0.95)), ($re | max),
     ([range(0; $l | length) as $i | $re[$i] - $l[$i] | abs] | max),
     (.other | length), (.other | map(.lateness_s * 1000) | max), .overlap,
     (.dur | length), (.dur | pct(0.5)), (.dur | pct(0.95)), (.dur | max), .failed]
  | map(if . == null then "-" else . end) | @tsv' "$W/lateness.jsonl" >"$W/lateness.tsv"
read -r n_first lat_med lat_p95 lat_max re_med re_p95 re_max re_diff \
  n_other other_max n_overlap n_done dur_med dur_p95 dur_max n_failed <"$W/lateness.tsv"

# --- 3. idle cost and 4. requests at steady state -----------------------------

have=$(docker ps -q --filter "label=$LABEL" | wc -l)
if [ "$have" -lt "$N" ]; then
  log "topping up: $have running, $N wanted"
  mapfile -t more < <(seq -f "rpb$$-x%03g" 0 $((N - have - 1)))
  sleeper "${more[@]}" >/dev/null
  have=$(docker ps -q --filter "label=$LABEL" | wc -l)
fi
write_config idle 1d 10% 100%
log "idle: reaper tracks $have young containers (max_age 1d), resync ${RESYNC}s, window $IDLE s"
t_start=$(now_ms)
start_reaper idle
wait_log "$W/idle.log" "provider local \\(docker\\): $have workloads" 120
# The window opens half a resync period after the start, so it holds
# exactly IDLE/RESYNC resync ticks (for a multiple), none at its edges.
settle_ms=$((t_start + RESYNC * 500 - $(now_ms)))
[ "$settle_ms" -le 0 ] || sleep "$(calc "printf \"%.3f\", $settle_ms / 1000")"
pid=$REAPER_PID
t0=$(now_ms)
s0=$(stats idle)
cpu0=$(proc_cpu_ticks "$pid")
sleep "$IDLE"
t1=$(now_ms)
s1=$(stats idle)
cpu1=$(proc_cpu_ticks "$pid")
rss_kib=$(proc_kib VmRSS "$pid")
hwm_kib=$(proc_kib VmHWM "$pid")
log "idle window done: from '$s0' to '$s1'"
stop_reaper 30
window_s=$(calc "printf \"%.1f\", ($t1 - $t0) / 1000")
resyncs=$(((t1 - t_start) / (RESYNC * 1000) - (t0 - t_start) / (RESYNC * 1000)))
req=$(($(field api_requests "$s1") - $(field api_requests "$s0")))
cpu_proc_pct=$(calc "printf \"%.3f\", $((cpu1 - cpu0)) / $HZ / $window_s * 100")
cpu_stats_ms=$(($(field cpu_user_ms "$s1") + $(field cpu_sys_ms "$s1") -
  $(field cpu_user_ms "$s0") - $(field cpu_sys_ms "$s0")))
cpu_stats_pct=$(calc "printf \"%.3f\", $cpu_stats_ms / 1000 / $window_s * 100")
rss_mib=$(calc "printf \"%.1f\", $rss_kib / 1024")
hwm_mib=$(calc "printf \"%.1f\", $hwm_kib / 1024")
stats_rss_mib=$(calc "printf \"%.1f\", $(field rss_kib "$s1") / 1024")
per_hour=$(calc "printf \"%.0f\", $req * 3600 / $window_s")
per_ctr_hour=$(calc "printf \"%.2f\", $req * 3600 / $window_s / $have")
beyond=$((req - resyncs))
beyond_per_ctr_hour=$(calc "printf \"%.2f\", $beyond * 3600 / $window_s / $have")
list_per_hour=$((3600 / RESYNC))
per_resync=-
[ "$resyncs" -eq 0 ] || per_resync=$(calc "printf \"%.2g\", $req / $resyncs")

# --- 5. summary ---------------------------------------------------------------------

verdict() { if [ "$1" = 1 ]; then echo ok; else echo MISSED; fi; }
lat_ok=0
[ "$lat_max" = - ] || lat_ok=$(calc "print ($lat_max < 100 ? 1 : 0)")
rss_ok=$(calc "print ($rss_kib < 16 * 1024 ? 1 : 0)")
req_ok=$([ "$beyond" -le 0 ] && echo 1 || echo 0)
{
  echo "reaper bench (docker, $N containers, dockerd ${DOCKERD_VERSION%%+*}, $CORES cores, load ${load_avg%% *}$([ "$NICE" = 0 ] || echo ", reaper at nice $NICE"))"
  echo "lateness of recycle.begin vs deadline: median $(fmt %.0f "$lat_med") ms, p95 $(fmt %.0f "$lat_p95") ms, worst $(fmt %.0f "$lat_max") ms (floor: worst < 100 ms: $(verdict "$lat_ok"))"
  echo "recycle duration (recreate): median $(fmt %.1f "$dur_med") s, p95 $(fmt %.1f "$dur_p95") s"
  echo "idle: RSS $rss_mib MiB (floor < 16 MiB: $(verdict "$rss_ok")), CPU $cpu_proc_pct % of a core over $window_s s"
  echo "API requests at steady state: $per_hour per hour in all = $per_ctr_hour per container per hour ($per_resync request per resync, $beyond_per_ctr_hour per container per hour beyond it: $(verdict "$req_ok"))"
  echo "details:"
  echo "  lateness over the $n_first first attempts ($done_orig of $N recycled; max_age ${max_age_s}s, jitter $JITTER, deadlines over ~$spread_s s, max_unavailable $N); recomputed as ts - deadline: median $(fmt %.1f "$re_med") ms, p95 $(fmt %.1f "$re_p95") ms, worst $(fmt %.1f "$re_max") ms (within $(fmt %.1f "$re_diff") ms of lateness_s)"
  echo "  other begins (retries, re-tracked after a failure): $n_other, worst lateness $(fmt %.0f "$other_max") ms; overlapping recycles of one container: $n_overlap"
  echo "  recycles: $n_done done, $n_failed failed; duration worst $(fmt %.1f "$dur_max") s (grace 1s; a replacement must stay up 1.5 s)"
  echo "  host during the phase: 1-min load average $load_avg; reaper waited $runq_ms ms on the run queue per time slice (/proc/PID/schedstat)"
  echo "  after the lateness phase's recycles: RSS $(calc "printf \"%.1f\", $(field rss_kib "$s_late") / 1024") MiB, CPU $(($(field cpu_user_ms "$s_late") + $(field cpu_sys_ms "$s_late"))) ms for $(field recycled "$s_late") recycles and $(field api_requests "$s_late") API requests"
  echo "  idle: RSS peak $hwm_mib MiB, stats line $stats_rss_mib MiB; CPU from the stats line $cpu_stats_pct % ($cpu_stats_ms ms)"
  echo "  requests: $req in $window_s s with $resyncs resyncs every ${RESYNC}s: $resyncs lists = $list_per_hour per hour = $(calc "printf \"%.2f\", $list_per_hour / $have") per container per hour; $req - $resyncs = $beyond other requests (inspects; the event stream is one request, made at start)"
} >"$W/summary.txt"
mkdir -p "$ART"
cp "$W/summary.txt" "$ART/bench_docker.txt"
echo
cat "$W/summary.txt"
echo
echo "(also in tests/artifacts/bench_docker.txt; logs and audit logs in tests/artifacts/bench_docker/)"
