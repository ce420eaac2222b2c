#!/usr/bin/env bash
# A self-contained demo: reaper recycles a few containers on a private Docker
# engine of its own (its socket under /tmp/reaper-demo; never the engine at
# /var/run/docker.sock), while you watch them being replaced under the same
# names.  Then the audit log, its verification, and what was kept: a named
# volume's file, the published port, the excluded container.  Everything is
# removed at the end.  Needs root (for dockerd); installs what it needs.
#   contrib/demo.sh [--duration SECONDS] [--keep]
#   contrib/demo.sh --stop         stops an engine left running by --keep
# REAPER=/path/to/reaper uses that binary; REAPER_BUILD_DIR overrides build/.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
export ENGINE_DIR=/tmp/reaper-demo
D=$ENGINE_DIR
LABEL=reaper-demo=1
duration=60
keep=0
stop_only=0

usage() {
  cat <<'EOF'
Usage: contrib/demo.sh [--duration SECONDS] [--keep] | --stop
Starts a private Docker engine (socket under /tmp/reaper-demo), four
containers, and reaper with a max age of 20 s; shows the containers being
replaced, the audit log and its verification; then removes everything.

  --duration SECONDS  how long reaper runs (default 60, at least 20)
  --keep              leave the engine and containers running afterwards
  --stop              stop an engine left running by --keep, remove its state
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
  --duration)
    [ $# -ge 2 ] || {
      usage >&2
      exit 2
    }
    duration=$2
    shift 2
    ;;
  --duration=*)
    duration=${1#*=}
    shift
    ;;
  --keep)
    keep=1
    shift
    ;;
  --stop)
    stop_only=1
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    echo "demo: unknown option '$1'" >&2
    usage >&2
    exit 2
    ;;
  esac
done
if ! [[ $duration =~ ^[0-9]+$ ]] || [ "$duration" -lt 20 ]; then
  echo "demo: --duration wants a number of seconds, at least 20 (got '$duration')" >&2
  exit 2
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    echo "demo: a private dockerd needs root: running again with sudo" >&2
    exec sudo --preserve-env=REAPER,REAPER_BUILD_DIR "$0" "$@"
  fi
  echo "demo: needs root (it starts a private dockerd), and sudo is not installed: run it as root" >&2
  exit 1
fi

# --- presentation ----------------------------------------------------------
if [ -t 1 ]; then
  B=$'\e[1m' DIM=$'\e[2m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
  B='' DIM='' G='' R='' N=''
fi
# shellcheck source=lib/demo-output.sh
source "$top/contrib/lib/demo-output.sh"
# Aligns tab-separated columns (column(1) is not on a minimal Debian).
table() {
  awk -F'\t' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
                 if (NF > nf) nf = NF; n = NR }
    END { for (r = 1; r <= n; r++) { line = ""
            for (i = 1; i <= nf; i++) line = line sprintf(i < nf ? "%-" w[i] "s  " : "%s", c[r, i])
            sub(/ +$/, "", line); print line } }'
}

# The engine helpers (engine_start, engine_build_images, engine_stop).
# shellcheck source=SCRIPTDIR/../tests/lib/engine.sh
source "$top/tests/lib/engine.sh"
unset DOCKER_CONTEXT # DOCKER_HOST below must win over a user's context

if [ "$stop_only" = 1 ]; then
  export DOCKER_HOST="unix://$D/docker.sock"
  engine_stop || true # it was written for scripts without set -e
  echo "demo: the demo engine under $D is stopped and removed"
  exit 0
fi

REAPER_PID=
TAIL_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$REAPER_PID" ] && kill -0 "$REAPER_PID" 2>/dev/null; then
    kill -TERM "$REAPER_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$REAPER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$REAPER_PID" 2>/dev/null || true
  fi
  [ -z "$TAIL_PID" ] || kill "$TAIL_PID" 2>/dev/null || true
  if [ "$keep" = 1 ] && [ "$rc" = 0 ]; then
    return
  fi
  printf '\n%s== Cleaning up%s\n' "$B" "$N"
  if engine_ping; then
    docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker network ls -q --filter "label=$LABEL" | xargs -r docker network rm >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=$LABEL" | xargs -r docker volume rm >/dev/null 2>&1 || true
  fi
  engine_stop >/dev/null 2>&1 || true
  note "containers, network, volume and the private engine removed"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. what the demo needs --------------------------------------------------
step "Preparing: packages, reaper, a private Docker engine"
bash "$top/contrib/install-deps.sh" --test 2>&1 | indent ||
  die "could not install the packages the demo needs (see above)"
if [ -n "${REAPER:-}" ]; then
  [ -x "$REAPER" ] || die "REAPER=$REAPER is not an executable"
else
  build=${REAPER_BUILD_DIR:-$top/build}
  if [ ! -f "$build/CMakeCache.txt" ]; then
    note "configuring a build in $build"
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$D.cmake.log" 2>&1 || {
      indent <"$D.cmake.log"
      die "cmake could not configure the build"
    }
    rm -f "$D.cmake.log"
  fi
  cmake --build "$build" --target reaper -j"$(nproc)" >"$D.build.log" 2>&1 || {
    tail -n 30 "$D.build.log" | indent
    die "the build failed"
  }
  rm -f "$D.build.log"
  REAPER=$build/reaper
fi
ok "reaper: $REAPER ($("$REAPER" version))"

engine_start || die "the private dockerd did not start (its log: $D/dockerd.log)"
ok "private engine: DOCKER_HOST=$DOCKER_HOST ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
engine_build_images || die "could not build the demo images (FROM scratch with busybox)"
# The web image: busybox httpd serving /srv, healthy while it answers.  The
# check is lenient so that a busy machine does not fail it.
if ! docker image inspect reaper-demo/web:1 >/dev/null 2>&1; then
  ctx=$(mktemp -d)
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM reaper-test/sleeper:1
HEALTHCHECK --interval=1s --timeout=5s --retries=3 CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /srv & wait"]
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -q -t reaper-demo/web:1 "$ctx" >/dev/null 2>"$D/build.err" || {
    indent <"$D/build.err"
    die "could not build the demo's web image"
  }
  rm -rf "$ctx"
fi
ok "images: reaper-test/sleeper:1 and reaper-demo/web:1 (busybox, built here: no registry needed)"

# A previous --keep run may have left its containers: start afresh.
docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null 2>&1 || true
docker network ls -q --filter "label=$LABEL" | xargs -r docker network rm >/dev/null 2>&1 || true
docker volume ls -q --filter "label=$LABEL" | xargs -r docker volume rm >/dev/null 2>&1 || true
rm -f "$D/audit.jsonl" "$D/reaper.log"

# --- 2. the workloads ----------------------------------------------------------
step "Starting four containers"
port=
for p in $(seq 18080 18099); do
  ss -Htln "sport = :$p" 2>/dev/null | grep -q . || {
    port=$p
    break
  }
done
[ -n "$port" ] || die "no free port between 18080 and 18099 on 127.0.0.1"

docker network create --label "$LABEL" demo-net >/dev/null
docker volume create --label "$LABEL" demo-data >/dev/null
written=$(date -u +%FT%TZ)
docker run --rm -l "$LABEL" -v demo-data:/srv reaper-test/sleeper:1 \
  sh -c "echo 'hello from the demo-data volume, written $written' >/srv/index.html"

# PID 1 is a shell that exits on SIGTERM: a stop takes milliseconds, not
# the whole grace period.
loop_cmd='trap "exit 0" TERM; while true; do sleep 1; done'
run() { # NAME [docker run options...]
  local name=$1
  shift
  docker run -d --name "$name" -l "$LABEL" -l app=demo "$@" >/dev/null
}
run web-1 -l tier=web --network demo-net --network-alias web \
  -v demo-data:/srv -p "127.0.0.1:$port:8080" reaper-demo/web:1
run web-2 -l tier=web --network demo-net --network-alias web \
  -v demo-data:/srv:ro reaper-demo/web:1
run worker -l tier=worker --network demo-net reaper-test/sleeper:1 sh -c "$loop_cmd"
run db -l tier=db -l reaper.exclude=true --network demo-net \
  reaper-test/sleeper:1 sh -c "$loop_cmd"
note "web-1   tier=web, alias 'web' on demo-net, volume demo-data at /srv, port 127.0.0.1:$port"
note "web-2   tier=web, alias 'web' on demo-net, the same volume read-only"
note "worker  tier=worker"
note "db      tier=db, labelled reaper.exclude=true: reaper must never touch it"
declare -A first_id
for c in web-1 web-2 worker db; do first_id[$c]=$(docker inspect -f '{{.Id}}' "$c"); done
db_started=$(docker inspect -f '{{.State.StartedAt}}' db)
ok "web-1 serves: $(curl -fsS --max-time 5 "http://127.0.0.1:$port/")"

# --- 3. the configuration --------------------------------------------------------
step "reaper's configuration ($D/config.yaml)"
cat >"$D/config.yaml" <<YAML
# Written by contrib/demo.sh: everything here is short so that you can
# watch it happen; a real deployment uses hours or days.
agent:
  listen: ""                      # no status listener for the demo
  audit_log: $D/audit.jsonl
  resync: 10s
providers:
  - name: demo
    type: docker
    endpoint: $DOCKER_HOST
policies:                         # first match wins
  - name: web                     # the web pair: never both down at once
    match: { labels: { app: demo, tier: web } }
    max_age: 20s
    jitter: 25%                   # each one leaves 15-20 s after its start
    grace: 2s
    strategy: recreate
    order: start-first            # the replacement runs before the old one stops
    max_unavailable: 1
    health_timeout: 20s           # ... and must be healthy first
  - name: others
    match: { labels: { app: demo } }
    max_age: 20s
    jitter: 25%
    grace: 2s
    strategy: recreate
    max_unavailable: 1
exclude:
  labels: { reaper.exclude: "true" }
YAML
sed -n '/^agent:/,$p' "$D/config.yaml" | indent
"$REAPER" check-config -c "$D/config.yaml" | indent

# --- 4. before ------------------------------------------------------------------
step "reaper plan: what reaper sees, and what it will do"
"$REAPER" plan -c "$D/config.yaml" | indent

# --- 5. run ---------------------------------------------------------------------
step "reaper run, for $duration s (its log is prefixed 'reaper|')"
"$REAPER" run -c "$D/config.yaml" >"$D/reaper.log" 2>&1 &
REAPER_PID=$!
tail -n +1 -F --pid="$REAPER_PID" "$D/reaper.log" 2>/dev/null | sed -u "s/^/   ${DIM}reaper|${N} /" &
TAIL_PID=$!

# Every container of the demo: name, id, age, state, and how many times
# reaper has replaced a container of that name so far.
show_containers() {
  local recycled='{}'
  [ -s "$D/audit.jsonl" ] && recycled=$(jq -s 'map(select(.event == "recycle.done")) | group_by(.name) | map({(.[0].name): length}) | add // {}' "$D/audit.jsonl")
  # A container can go between the listing and the inspect: inspect prints
  # the others and fails, which is fine here.
  { docker ps -aq --filter "label=$LABEL" | xargs -r docker inspect 2>/dev/null || true; } |
    jq -r --argjson n "$recycled" '
      sort_by(.Name) | .[] |
      (.Name | ltrimstr("/")) as $name |
      [$name, .Id[:12],
       (if .State.Status == "created" then "-"
        else "\(now - (.State.StartedAt | sub("\\.[0-9]+"; "") | fromdateiso8601) | floor)s" end),
       (.State.Status + (if .State.Health then " (\(.State.Health.Status))" else "" end)),
       ($n[$name] // 0 | tostring)] | @tsv' |
    (printf 'NAME\tID\tAGE\tSTATE\tREPLACED\n' && cat) | table | indent
}
start=$(date +%s)
for ((tick = 0; ; tick += 10)); do
  [ "$tick" -le "$duration" ] || tick=$duration
  # Ticks on the clock, so that printing does not make them drift.
  while [ $(($(date +%s) - start)) -lt "$tick" ]; do sleep 0.2; done
  printf '%s   --- after %2d s ---------------------------------------------%s\n' "$B" "$tick" "$N"
  show_containers
  kill -0 "$REAPER_PID" 2>/dev/null || die "reaper exited early (its log is above)"
  [ "$tick" -lt "$duration" ] || break
done

note "sending SIGTERM: reaper finishes any recycle in flight, then exits"
kill -TERM "$REAPER_PID"
rc=0
wait "$REAPER_PID" || rc=$?
REAPER_PID=
wait "$TAIL_PID" 2>/dev/null || true # it ends after reaper's last line
TAIL_PID=
[ "$rc" = 0 ] || die "reaper exited with status $rc after SIGTERM (expected 0)"
ok "reaper exited with status 0"

# --- 6. after -------------------------------------------------------------------
step "reaper plan, after: the same names, new containers, new deadlines"
note "(reaper is stopped now: what is past its deadline says 'now')"
"$REAPER" plan -c "$D/config.yaml" | indent

step "The audit log ($D/audit.jsonl)"
note "one JSON object a line, each chained to the previous one by its hash:"
jq -r '[.seq, .ts[11:19], .event, (.name // ""), (.id // "")[:12],
        (if .replacement_id then "-> " + .replacement_id[:12] else "" end),
        (if .duration_s then "in \(.duration_s * 10 | round / 10) s" else "" end)] | @tsv' \
  "$D/audit.jsonl" | table | indent
note ""
note "a whole recycle.done line, pretty-printed:"
jq 'select(.event == "recycle.done")' "$D/audit.jsonl" | jq -s '.[0]' | indent
done_n=$(jq -s 'map(select(.event == "recycle.done")) | length' "$D/audit.jsonl")
failed_n=$(jq -s 'map(select(.event == "recycle.failed")) | length' "$D/audit.jsonl")
[ "$done_n" -gt 0 ] || die "no recycle.done in the audit log: nothing was recycled"
ok "$done_n recycles done, $failed_n failed"

step "reaper verify: is the chain intact?"
"$REAPER" verify "$D/audit.jsonl" 2>&1 | indent || die "reaper verify rejected the audit log"
note "(change one byte of any line and verify names that line)"

# --- 7. what was kept -------------------------------------------------------------
step "What survived the recycles"
for c in web-1 web-2 worker; do
  now_id=$(docker inspect -f '{{.Id}}' "$c" 2>/dev/null) || die "$c is gone"
  [ "$now_id" != "${first_id[$c]}" ] || die "$c was never replaced (still ${now_id:0:12})"
  n=$(jq -s --arg n "$c" 'map(select(.event == "recycle.done" and .name == $n)) | length' "$D/audit.jsonl")
  ok "$c: ${first_id[$c]:0:12} -> ${now_id:0:12}, same name, replaced $n times, $(docker inspect -f '{{.State.Status}}' "$c")"
done
page=$(docker exec web-1 cat /srv/index.html) || die "web-1 lost its volume's file"
ok "the file in volume demo-data: \"$page\""
served=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/") || die "the published port 127.0.0.1:$port no longer answers"
ok "and 127.0.0.1:$port (published by web-1) still serves it"
aliases=$(docker inspect -f '{{json (index .NetworkSettings.Networks "demo-net").Aliases}}' web-2)
jq -e 'index("web")' <<<"$aliases" >/dev/null || die "web-2 lost its network alias 'web' ($aliases)"
ok "web-2 still answers to the alias 'web' on demo-net"
if [ "$(docker inspect -f '{{.Id}}' db)" != "${first_id[db]}" ] ||
  [ "$(docker inspect -f '{{.State.StartedAt}}' db)" != "$db_started" ]; then
  die "the excluded container db was touched"
fi
touched=$(jq -s --arg id "${first_id[db]}" 'map(select(.id == $id)) | length' "$D/audit.jsonl")
[ "$touched" = 0 ] || die "the audit log names the excluded container db"
ok "db (reaper.exclude=true): the same container, never restarted, never in the audit log"
[ "$served" = "$page" ] || note "(the page served and the file differ: '$served')"

if [ "$keep" = 1 ]; then
  step "The demo engine is still running (--keep)"
  cat <<EOF | indent
export DOCKER_HOST=$DOCKER_HOST
docker ps
$REAPER plan -c $D/config.yaml
$REAPER run -c $D/config.yaml    # Ctrl-C stops it
$top/contrib/demo.sh --stop    # stops the engine and removes everything
EOF
else
  printf '\n%sDone.%s Run it again with --keep to play with the engine afterwards.\n' "$B" "$N"
fi
