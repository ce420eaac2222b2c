#!/usr/bin/env bash
# One container's recycle by reaper against the engine's own replacement of
# the same container: prints figures, asserts no timing.  Run by hand
# (tests/run.sh does not run it); see tests/bench/README.md.
#
#   tests/bench/bench_recycle.sh [RUNS] [--grace SECS] [--max-age SECS] [--plain] [--trace]
#
# RUNS (default 10) counted runs of each, after one warm-up of each.
# --plain: the containers have --network none, no volume and no port.
# REAPER=path overrides the binary (default build/reaper, built if missing);
# ENGINE_DIR the private engine's directory (default /tmp/rp-bench-recycle);
# BENCH_PORT the first of the two host ports published (default 19900).
#
# On one private dockerd, two containers of the same kind: PID 1 a shell
# that exits on SIGTERM (no health check), on a user network, with a named
# volume and a port published on 127.0.0.1 (--plain: none of them, to
# see what they cost the engine's start).  Turn by turn:
#  (b) reaper (`reaper run`, policy: that container's label only, recreate,
#      stop-first, grace GRACE, max_age MAX_AGE, jitter 0) recycles one; its
#      replacement carries the same label, so it is due MAX_AGE later;
#  (a) once that recycle is done, the engine replaces the other one:
#      `docker stop -t GRACE; docker rm; docker run -d` with the same options.
# Figures, from the engine's own events (`docker events`, timeNano) and
# reaper's audit log:
#  - whole, up to the replacement running: (a) from the moment before
#    `docker stop` to the new container's `start` event; (b) from
#    recycle.begin's ts to the replacement's `start` event;
#  - downtime: the old container's `die` event to the new one's `start`;
#  - reaper's own duration_s (recycle.begin to recycle.done), which also
#    holds the readiness wait, the survival window (the old container kept,
#    stopped, until the replacement has stayed up) and the removal of the
#    old container; and its ready_s (recycle.begin to the replacement seen
#    running and ready), both from recycle.done;
#  - the steps in between, from the events (rename, create, kill, die, stop,
#    start, destroy), as medians.
# --trace also follows reaper with strace during one more recycle and prints
# every API request it made, the audit fsyncs and the timer waits, with their
# times from recycle.begin (strace slows each system call: its times are for
# finding where the time goes, not figures).
# Writes the summary to tests/artifacts/bench_recycle.txt and the raw data
# (events, audit log, reaper's log, per-run rows) to
# tests/artifacts/bench_recycle/.  Everything it started goes on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

RUNS=10
WARMUP=1
GRACE=10
MAX_AGE=10
TRACE=0
PLAIN=0
usage() {
  sed -n '6,12p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}
while [ $# -gt 0 ]; do
  case $1 in
  --grace) GRACE=$2; shift ;;
  --max-age) MAX_AGE=$2; shift ;;
  --trace) TRACE=1 ;;
  --plain) PLAIN=1 ;;
  -h | --help) usage 0 ;;
  [0-9]*) RUNS=$1 ;;
  *) echo "bench: unknown argument $1" >&2; usage ;;
  esac
  shift
done
for v in "$RUNS" "$GRACE" "$MAX_AGE"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench: '$v' is not a positive whole number" >&2; exit 2; }
done
# (a) runs between two of reaper's recycles: it needs a few seconds.
[ "$MAX_AGE" -ge 6 ] || { echo "bench: --max-age must be at least 6 (seconds)" >&2; exit 2; }
tools="jq curl docker dockerd"
[ "$TRACE" = 0 ] || tools="$tools strace python3"
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done

export ENGINE_DIR=${ENGINE_DIR:-/tmp/rp-bench-recycle}
REAPER=${REAPER:-$top/build/reaper}
PORT=${BENCH_PORT:-19900}
ART=$top/tests/artifacts
OUT=$ART/bench_recycle
W=$(mktemp -d /tmp/rp-bench-recycle-run.XXXXXX)
LABEL_KEY=reaper-bench-recycle
NET=rpbr-net
NAME_A=rpbr-engine
NAME_B=rpbr-reaper
IMAGE=reaper-test/sleeper:1
REAPER_PID=
EVENTS_PID=
STRACE_PID=
# shellcheck source-path=SCRIPTDIR source=../lib/engine.sh
source "$top/tests/lib/engine.sh"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "bench: $*"; exit 1; }
now_ns() { date +%s%N; }
load1() { cut -d' ' -f1 /proc/loadavg; }

stop_pid() { # PID SIGNAL SECONDS: the signal, then SIGKILL past that bound
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -"$2" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $3 * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$STRACE_PID" INT 5
  stop_pid "$REAPER_PID" TERM 30
  stop_pid "$EVENTS_PID" TERM 2
  if engine_ping; then
    docker rm -f "$NAME_A" "$NAME_B" >/dev/null 2>&1 || true
  fi
  engine_stop >/dev/null 2>&1 || true
  if [ -d "$W" ]; then
    rm -rf "$OUT"
    mkdir -p "$OUT"
    cp -f "$W"/* "$OUT"/ 2>/dev/null || true
    rm -rf "$W"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# PID 1 a shell that waits on a background sleep: SIGTERM ends it at once
# (a `sleep 0.1` loop would add up to 100 ms to every stop, at random).
run_container() { # NAME PORT VOLUME [LABEL]: prints the new container's id
  local opts=(--network "$NET" -v "$3:/data" -p "127.0.0.1:$2:8080")
  [ "$PLAIN" = 0 ] || opts=(--network none)
  docker run -d --name "$1" "${opts[@]}" ${4:+-l "$4"} "$IMAGE" \
    sh -c 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'
}

# wait_event ID ACTION SECONDS: until the engine's event is in the file.
wait_event() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    jq -n -e --arg id "$1" --arg a "$2" 'any(inputs; .id == $id and .Action == $a)' \
      "$W/events.jsonl" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "no '$2' event of ${1:0:12} within $3 s"
}

# ends_in_audit: recycle.done and recycle.failed lines so far.
ends_in_audit() {
  { grep -cE '"event": ?"recycle\.(done|failed)"' "$W/audit.jsonl" 2>/dev/null || true; } | head -n 1
}

# --- engine, images, containers, reaper ------------------------------------

if [ ! -x "$REAPER" ]; then
  [ "$REAPER" = "$top/build/reaper" ] || die "$REAPER is not an executable"
  log "building reaper (RelWithDebInfo) in $top/build"
  { cmake -S "$top" -B "$top/build" -DREAPER_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$top/build" --target reaper -j"$(nproc)"; } >"$W/build.log" 2>&1 ||
    { tail -n 40 "$W/build.log" >&2; die "the build failed"; }
fi

log "starting the private engine at $ENGINE_DIR"
engine_start || die "the engine did not start"
engine_build_images || die "could not build the test images"
DOCKERD_VERSION=$(docker version -f '{{.Server.Version}}' 2>/dev/null || echo unknown)
docker rm -f "$NAME_A" "$NAME_B" >/dev/null 2>&1 || true
docker network inspect "$NET" >/dev/null 2>&1 || docker network create "$NET" >/dev/null
docker volume create rpbr-vol-a >/dev/null
docker volume create rpbr-vol-b >/dev/null

docker events --format '{{json .}}' >"$W/events.jsonl" 2>"$W/events.err" &
EVENTS_PID=$!
sleep 0.5

run_container "$NAME_A" "$PORT" rpbr-vol-a >/dev/null
run_container "$NAME_B" $((PORT + 1)) rpbr-vol-b "$LABEL_KEY=$$" >/dev/null

cat >"$W/reaper.yaml" <<YAML
agent:
  listen: ""
  audit_log: $W/audit.jsonl
  resync: 1h
providers:
  - name: local
    type: docker
    endpoint: $DOCKER_HOST
policies:
  - name: bench
    match:
      labels: { $LABEL_KEY: "$$" }
    max_age: ${MAX_AGE}s
    jitter: 0%
    grace: ${GRACE}s
    strategy: recreate
    order: stop-first
    max_unavailable: 1
    health_timeout: 60s
YAML
"$REAPER" check-config -c "$W/reaper.yaml" >/dev/null
"$REAPER" run -c "$W/reaper.yaml" >>"$W/reaper.log" 2>&1 &
REAPER_PID=$!
total=$((WARMUP + RUNS + TRACE))
log "reaper $($REAPER version 2>/dev/null | head -n 1) (pid $REAPER_PID); dockerd $DOCKERD_VERSION;" \
  "$total turns of (b) then (a), one every ${MAX_AGE} s (the first $WARMUP not counted$([ "$TRACE" = 0 ] || echo ", the last under strace"))"

# --- the turns -----------------------------------------------------------------

: >"$W/engine_runs.tsv"
: >"$W/load.txt"
for ((turn = 0; turn < total; turn++)); do
  if [ "$TRACE" = 1 ] && [ "$turn" = $((total - 1)) ]; then
    # Attached while reaper is idle, a few seconds before the deadline.
    strace -f -ttt -T -s 160 -e trace=sendto,recvfrom,fdatasync,epoll_wait \
      -o "$W/strace.txt" -p "$REAPER_PID" 2>"$W/strace.err" &
    STRACE_PID=$!
  fi
  # (b): reaper's recycle, on its deadline.
  end=$(($(date +%s) + MAX_AGE + 90))
  until [ "$(ends_in_audit)" -gt "$turn" ]; do
    kill -0 "$REAPER_PID" 2>/dev/null || { tail -n 20 "$W/reaper.log" >&2; die "reaper exited; its log is above"; }
    [ "$(date +%s)" -lt "$end" ] || die "no recycle.done within $((MAX_AGE + 90)) s (turn $turn)"
    sleep 0.1
  done
  load1 >>"$W/load.txt"
  last=$(grep -E '"event": ?"recycle\.(done|failed)"' "$W/audit.jsonl" | sed -n "$((turn + 1))p")
  [ "$(jq -r .event <<<"$last")" = recycle.done ] || die "reaper's recycle failed: $last"
  wait_event "$(jq -r .replacement_id <<<"$last")" start 10
  if [ -n "$STRACE_PID" ]; then
    stop_pid "$STRACE_PID" INT 5
    STRACE_PID=
    break
  fi
  sleep 1 # the done line's fsync, the tracker's inspect of the replacement

  # (a): the engine's own replacement of the other container.
  old=$(docker inspect -f '{{.Id}}' "$NAME_A")
  t0=$(now_ns)
  docker stop -t "$GRACE" "$NAME_A" >/dev/null
  docker rm "$NAME_A" >/dev/null
  new=$(run_container "$NAME_A" "$PORT" rpbr-vol-a)
  t1=$(now_ns)
  wait_event "$new" start 10
  printf '%s\t%s\t%s\t%s\t%s\n' "$turn" "$t0" "$t1" "$old" "$new" >>"$W/engine_runs.tsv"
  log "turn $turn: reaper $(jq -r .duration_s <<<"$last") s (begin to done), engine $(((t1 - t0) / 1000000)) ms (stop; rm; run -d); load $(load1)"
done

stop_pid "$REAPER_PID" TERM 30
REAPER_PID=
sleep 0.5
stop_pid "$EVENTS_PID" TERM 2
EVENTS_PID=

# --- figures ---------------------------------------------------------------------

# Per container id, the first time (ns) of each of its events; network
# events are the network's, with the container in Actor.Attributes.
jq -s '
  reduce .[] as $e ({};
    ($e.Actor.Attributes.container // $e.id // $e.Actor.ID) as $id
    | (if $e.Type == "network" then "net_" + $e.Action else $e.Action end) as $a
    | if $id == null or .[$id][$a] != null then . else .[$id][$a] = $e.timeNano end)' \
  "$W/events.jsonl" >"$W/by_id.json"

JQ_LIB='
def ms_of(t): t | capture("^(?<s>[^.Z]+)(\\.(?<f>[0-9]+))?Z$")
  | ((.s + "Z") | fromdateiso8601) * 1000 + ("0." + (.f // "0") | tonumber) * 1000;
def median: sort | if length == 0 then null
  elif length % 2 == 1 then .[(length - 1) / 2]
  else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def s(a; b): if a == null or b == null then null else (b - a) / 1e6 | round / 1000 end;
'
# (b): every recycle's row, in seconds.
jq -s -r --slurpfile ev "$W/by_id.json" --argjson warm "$WARMUP" --argjson runs "$RUNS" \
  --argjson trace "$TRACE" "$JQ_LIB"'
  $ev[0] as $e
  | [.[] | select(.event == "recycle.begin")] as $begins
  | [.[] | select(.event == "recycle.done")] as $dones
  | range(0; $dones | length) as $i
  | $dones[$i] as $d
  | ($begins | map(select(.id == $d.id)) | .[0]) as $b
  | (ms_of($b.ts) * 1e6) as $b_ns
  | $e[$d.id] as $o | $e[$d.replacement_id] as $n
  | [$i, (if $i < $warm then "warmup" elif $i < $warm + $runs then "run" elif $trace == 1 then "trace" else "extra" end),
     s($b_ns; $n.start), s($o.die; $n.start), $d.duration_s,
     s($b_ns; $o.rename), s($o.rename; $n.create), s($n.create; $o.kill),
     s($o.kill; $o.die), s($o.die; $o.stop), s($o.stop; $n.start),
     s($n.start; $o.destroy), s($o.destroy; ms_of($d.ts) * 1e6), $b_ns, $d.ready_s]
  | map(if . == null then "-" else . end) | @tsv' "$W/audit.jsonl" >"$W/reaper_runs.tsv"
# (a): every run's row, in seconds.
jq -R -r --slurpfile ev "$W/by_id.json" --argjson warm "$WARMUP" "$JQ_LIB"'
  $ev[0] as $e | split("\t") as [$i, $t0, $t1, $old, $new]
  | ($i | tonumber) as $i | ($t0 | tonumber) as $t0 | ($t1 | tonumber) as $t1
  | $e[$old] as $o | $e[$new] as $n
  | [$i, (if $i < $warm then "warmup" else "run" end),
     s($t0; $n.start), s($o.die; $n.start), s($t0; $t1),
     s($t0; $o.kill), s($o.kill; $o.die), s($o.die; $o.stop), s($o.stop; $o.destroy),
     s($o.destroy; $n.create), s($n.create; $n.start), s($n.start; $t1), $t0]
  | map(if . == null then "-" else . end) | @tsv' "$W/engine_runs.tsv" >"$W/engine_rows.tsv"

# An (a) run that reached into the next recycle would disturb both: counted apart.
overlaps=$(awk -F'\t' 'NR == FNR { if ($2 == "run") t1[$1] = $13 + $5 * 1e9; next }
  ($1 - 1) in t1 && $14 < t1[$1 - 1] { n++ } END { print n + 0 }' "$W/engine_rows.tsv" "$W/reaper_runs.tsv")

# stat FILE COLUMN: "median (min to max)" over the counted runs.
stat() {
  jq -R -s -r --argjson c "$2" "$JQ_LIB"'
    [split("\n")[] | select(length > 0) | split("\t") | select(.[1] == "run")
     | .[$c - 1] | select(. != "-") | tonumber] as $v
    | if ($v | length) == 0 then "-"
      else "\($v | median | . * 1000 | round / 1000) (\($v | min) to \($v | max))" end' "$1"
}
med() { stat "$1" "$2" | cut -d' ' -f1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
# pair_ratio REAPER-COLUMN ENGINE-COLUMN: the median, over the turns, of
# reaper's figure over the engine's of the same turn (a few seconds apart,
# so the host's load weighs on both alike).
pair_ratio() {
  awk -F'\t' -v r="$1" -v e="$2" 'NR == FNR { if ($2 == "run") a[$1] = $e; next }
    $2 == "run" && ($1 in a) && a[$1] != "-" && a[$1] > 0 && $r != "-" { print $r / a[$1] }' \
    "$W/engine_rows.tsv" "$W/reaper_runs.tsv" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
row() { printf '  %-44s %-27s %-27s %s\n' "$@"; }

counted=$(awk -F'\t' '$2 == "run"' "$W/reaper_runs.tsv" | wc -l)
load_avg=$(awk '{ s += $1; if ($1 > m) m = $1 } END { if (NR) printf "%.1f (max %.1f)", s / NR, m }' "$W/load.txt")
whole_a=$(med "$W/engine_rows.tsv" 3) whole_b=$(med "$W/reaper_runs.tsv" 3)
down_a=$(med "$W/engine_rows.tsv" 4) down_b=$(med "$W/reaper_runs.tsv" 4)
{
  echo "reaper recycle bench: $counted runs of each (after $WARMUP warm-up), $(date -u +%Y-%m-%d), dockerd ${DOCKERD_VERSION%%+*}, $(nproc) cores, load $load_avg"
  if [ "$PLAIN" = 0 ]; then kind="a user network, a volume, a port on 127.0.0.1"; else kind="--network none, no volume, no port (--plain)"; fi
  echo "one container: PID 1 exits on SIGTERM, no health check, $kind; grace ${GRACE}s; reaper: recreate, stop-first"
  echo "seconds, median (min to max):"
  row "" "engine: stop; rm; run -d" "reaper: recycle" "reaper/engine: of the medians, median of each turn's"
  row "whole, up to the replacement's start event" "$(stat "$W/engine_rows.tsv" 3)" "$(stat "$W/reaper_runs.tsv" 3)" "$(ratio "$whole_b" "$whole_a"), $(pair_ratio 3 3)"
  row "downtime: old die -> new start" "$(stat "$W/engine_rows.tsv" 4)" "$(stat "$W/reaper_runs.tsv" 4)" "$(ratio "$down_b" "$down_a"), $(pair_ratio 4 4)"
  row "to the end: last CLI returns / duration_s" "$(stat "$W/engine_rows.tsv" 5)" "$(stat "$W/reaper_runs.tsv" 5)" "$(ratio "$(med "$W/reaper_runs.tsv" 5)" "$(med "$W/engine_rows.tsv" 5)"), $(pair_ratio 5 5)"
  row "duration_s against the engine's whole" "" "" "$(ratio "$(med "$W/reaper_runs.tsv" 5)" "$whole_a"), $(pair_ratio 5 3)"
  row "ready_s (begin to the replacement ready)" "" "$(stat "$W/reaper_runs.tsv" 15)" "$(ratio "$(med "$W/reaper_runs.tsv" 15)" "$whole_a"), $(pair_ratio 15 3) (against the engine's whole)"
  echo "targets (issue 14), as ratios of the medians: whole within 1.5x the engine's: up to the start event $(ratio "$whole_b" "$whole_a")," \
    "up to recycle.done $(ratio "$(med "$W/reaper_runs.tsv" 5)" "$whole_a") (want <= 1.50); downtime below the engine's: $(ratio "$down_b" "$down_a") (want < 1)"
  echo "steps, medians (from the engine's events; 'begin' is recycle.begin's ts, 't0' the moment before docker stop):"
  echo "  engine:  t0 -> kill $(med "$W/engine_rows.tsv" 6) | kill -> die $(med "$W/engine_rows.tsv" 7) | die -> stop $(med "$W/engine_rows.tsv" 8) |" \
    "stop -> destroy $(med "$W/engine_rows.tsv" 9) | destroy -> create $(med "$W/engine_rows.tsv" 10) | create -> start $(med "$W/engine_rows.tsv" 11) | start -> run returns $(med "$W/engine_rows.tsv" 12)"
  echo "  reaper:  begin -> rename $(med "$W/reaper_runs.tsv" 6) | rename -> create $(med "$W/reaper_runs.tsv" 7) | create -> kill $(med "$W/reaper_runs.tsv" 8) |" \
    "kill -> die $(med "$W/reaper_runs.tsv" 9) | die -> stop $(med "$W/reaper_runs.tsv" 10) | stop -> start $(med "$W/reaper_runs.tsv" 11) |" \
    "start -> destroy $(med "$W/reaper_runs.tsv" 12) | destroy -> recycle.done $(med "$W/reaper_runs.tsv" 13)"
  echo "(a) runs that reached into the next recycle: $overlaps"
} >"$W/summary.txt"

if [ "$TRACE" = 1 ]; then
  b_ns=$(awk -F'\t' '$2 == "trace" { printf "%s", $14 }' "$W/reaper_runs.tsv")
  python3 "$here/recycle_trace.py" "$W/strace.txt" "$b_ns" >"$W/trace.txt" ||
    log "could not read the strace output"
  { echo; echo "one more recycle under strace (slower; times from recycle.begin):"; cat "$W/trace.txt"; } >>"$W/summary.txt"
fi

mkdir -p "$ART"
cp "$W/summary.txt" "$ART/bench_recycle.txt"
echo
cat "$W/summary.txt"
echo
echo "(also in tests/artifacts/bench_recycle.txt; the events, the audit log and per-run rows in tests/artifacts/bench_recycle/)"
