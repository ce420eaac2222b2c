#!/usr/bin/env bash
# Load: a fleet of running containers on one private engine, another process
# creating and removing containers all the while, and reaper recycling the
# ones that expire under a budget.  Prints figures, asserts no timing.
# Run by hand (tests/run.sh does not run it); see tests/bench/README.md.
#
#   tests/bench/bench_churn.sh [--quick] [--duration SECS] [--containers N]
#        [--expire N] [--burst N] [--burst-pool N] [--budget PCT|N]
#        [--churn PER-SEC] [--churn-start FRACTION] [--parallel N]
#        [--resync SECS] [--tolerance SECS] [--no-build]
#
# 1. builds reaper (RelWithDebInfo, build-bench/) unless REAPER=path is
#    given, starts a private dockerd at $ENGINE_DIR (default /tmp/rp-churn);
# 2. the fleet: N running containers (1000), in two policies: "burst" (the
#    first --burst-pool of them, 100) and "fleet" (the rest), both with
#    max_unavailable --budget (10%) and jitter 0.  Most carry no
#    reaper.max-age label (max_age 1d: never due).  --expire of the fleet's
#    (250) get a reaper.max-age that puts their deadlines evenly over the
#    run, and --burst of the burst pool's (40) one that makes them all due
#    at the same second, half-way through: more than the burst policy's
#    budget, so they queue behind it.  Replacements are excluded from the
#    policies (reaper.replaces), so each container is recycled once;
# 3. reaper runs for --duration seconds (3600; --quick 600) while the churn
#    process creates containers (--churn per second, 10; a --churn-start
#    fraction of them, 0.05, also started; a started one lives 10 to 60 s,
#    a created one 2 to 20 s) in a policy of their own that never makes
#    them due, and removes them, logging every call.  An event recorder
#    keeps the engine's own container events (create, start, die,
#    destroy) for the reconciliation;
# 4. every minute: reaper's VmRSS and its SIGUSR1 stats line;
# 5. at the end the churn process removes what it has left, reaper
#    finishes its recycles in flight and stops, and the audit log, the churn
#    log, the engine's events and the engine's final state are reconciled:
#      - every expiring container was recycled, no earlier than its deadline
#        and no later than its deadline plus the time its policy's budget
#        was full meanwhile (plus --tolerance, 1 s);
#      - none twice: one recycle.done per (id, started_at), no two recycles
#        of one container at once, none of a replacement or churn container;
#      - none lost: every container destroyed during the run was the old
#        half of a recycle.done, removed by the churn process (its log),
#        or a replacement removed by a rollback; at the end every fleet name
#        is exactly one running container, and nothing is left stopped;
#      - memory: RSS after the initial list and every minute after, and
#        the heap in use (malloc's bytes handed out, the stats line's
#        heap_kib): flat means the heap in use does not grow; RSS growing
#        beside a flat heap is the allocator's fragmentation, reported.
# Output: the summary on stdout and in tests/artifacts/bench_churn.txt; the
# logs, the audit log, the churn log and the engine's events in
# tests/artifacts/bench_churn/ (git-ignored).  Everything it started
# (reaper, the churn process, containers, the engine) goes on exit, Ctrl-C
# included.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

N=1000
DURATION=3600
EXPIRE=250
BURST=40
BURST_POOL=100
BUDGET=10%
CHURN=10
CHURN_START=0.05
PARALLEL=2
RESYNC=60
TOLERANCE=1
BUILD=1
[ -n "${REAPER:-}" ] && BUILD=0 # a given binary is used as it is
usage() {
  sed -n '7,10p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}
while [ $# -gt 0 ]; do
  case $1 in
  --quick) DURATION=600 ;;
  --duration) DURATION=$2; shift ;;
  --containers) N=$2; shift ;;
  --expire) EXPIRE=$2; shift ;;
  --burst) BURST=$2; shift ;;
  --burst-pool) BURST_POOL=$2; shift ;;
  --budget) BUDGET=$2; shift ;;
  --churn) CHURN=$2; shift ;;
  --churn-start) CHURN_START=$2; shift ;;
  --parallel) PARALLEL=$2; shift ;;
  --resync) RESYNC=$2; shift ;;
  --tolerance) TOLERANCE=$2; shift ;;
  --no-build) BUILD=0 ;;
  -h | --help) usage 0 ;;
  *) echo "bench: unknown argument $1" >&2; usage ;;
  esac
  shift
done
for v in "$N" "$DURATION" "$PARALLEL" "$RESYNC" "$BURST_POOL"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench: '$v' is not a positive whole number" >&2; exit 2; }
done
for v in "$EXPIRE" "$BURST"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "bench: '$v' is not a whole number" >&2; exit 2; }
done
[[ $BUDGET =~ ^[1-9][0-9]*%?$ ]] || { echo "bench: --budget wants N or N%" >&2; exit 2; }
[[ $CHURN =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench: --churn wants a rate per second" >&2; exit 2; }
[[ $CHURN_START =~ ^(0(\.[0-9]+)?|1(\.0*)?)$ ]] || { echo "bench: --churn-start wants 0 to 1" >&2; exit 2; }
[[ $TOLERANCE =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench: --tolerance wants seconds" >&2; exit 2; }
[ "$BURST_POOL" -lt "$N" ] || { echo "bench: --burst-pool must be smaller than --containers" >&2; exit 2; }
[ "$BURST" -le "$BURST_POOL" ] || { echo "bench: --burst is more than the burst pool" >&2; exit 2; }
[ "$EXPIRE" -le $((N - BURST_POOL)) ] || { echo "bench: --expire is more than the fleet" >&2; exit 2; }
[ "$DURATION" -ge 240 ] || { echo "bench: --duration must be at least 240 s" >&2; exit 2; }
for tool in jq curl docker dockerd cmake python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done

export ENGINE_DIR=${ENGINE_DIR:-/tmp/rp-churn}
BUILD_DIR=$top/build-bench
REAPER=${REAPER:-$BUILD_DIR/reaper}
ART=$top/tests/artifacts
OUT=$ART/bench_churn
W=$(mktemp -d /tmp/rp-churn-run.XXXXXX)
LABEL_KEY=reaper-churn
RUN_ID=$$
REAPER_PID=
CHURN_PID=
EVENTS_PID=
# shellcheck source-path=SCRIPTDIR source=../lib/engine.sh
source "$top/tests/lib/engine.sh"
SOCK=$ENGINE_DIR/docker.sock

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "bench: $*"; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

stop_pid() { # PID SECONDS: SIGTERM, then SIGKILL past that bound
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $2 * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$CHURN_PID" ] && { log "stopping the churn process"; stop_pid "$CHURN_PID" 120; }
  [ -n "$REAPER_PID" ] && { log "stopping reaper (pid $REAPER_PID)"; stop_pid "$REAPER_PID" 60; }
  [ -n "$EVENTS_PID" ] && stop_pid "$EVENTS_PID" 5
  if engine_ping; then
    log "removing the containers and stopping the engine at $ENGINE_DIR"
    docker ps -aq --filter "label=$LABEL_KEY" | xargs -r docker rm -f >/dev/null 2>&1 || true
  fi
  engine_stop >/dev/null 2>&1 || true
  if [ -d "$W" ]; then
    rm -rf "$OUT"
    mkdir -p "$OUT"
    cp -f "$W"/*.log "$W"/*.jsonl "$W"/*.json "$W"/*.yaml "$W"/*.txt "$W"/*.tsv "$OUT"/ 2>/dev/null || true
    rm -rf "$W"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# The stats line that SIGUSR1 asks for, as key=value pairs.
stats() {
  local f=$W/reaper.log before
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
proc_kib() { # FIELD PID: VmRSS or VmHWM in KiB
  awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"
}
load1() { cut -d' ' -f1 /proc/loadavg; }

# One row of rss.tsv: seconds since reaper's start, VmRSS, VmHWM, load and
# the stats line's figures.
sample() { # LABEL
  local s now
  s=$(stats)
  now=$(now_ms)
  printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" $(((now - T_START_MS) / 1000)) \
    "$(proc_kib VmRSS "$REAPER_PID")" "$(proc_kib VmHWM "$REAPER_PID")" "$(load1)" \
    "$(field workloads "$s")" "$(field due "$s")" "$(field in_flight "$s")" \
    "$(field recycled "$s")" "$(field failed "$s")" "$(field api_requests "$s")" \
    "$(($(field cpu_user_ms "$s") + $(field cpu_sys_ms "$s")))" "$(field heap_kib "$s")" >>"$W/rss.tsv"
  tail -n 1 "$W/rss.tsv"
}

# --- the helper: fleet creation, churn, reconciliation (Python, stdlib) ------

cat >"$W/helper.py" <<'PY'
import calendar, heapq, http.client, json, math, os, queue, random, signal
import socket, statistics, sys, threading, time

SLEEPER = ["sh", "-c", 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done']


class UnixConn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(120)
        s.connect(self.path)
        self.sock = s


class Engine:
    """Engine API calls over the unix socket, one kept-alive connection per
    thread."""

    def __init__(self, sock, api="/v1.41"):
        self.sock, self.api, self.tls = sock, api, threading.local()

    def call(self, method, path, body=None):
        for attempt in (0, 1):
            c = getattr(self.tls, "conn", None)
            if c is None:
                c = self.tls.conn = UnixConn(self.sock)
            try:
                data = json.dumps(body).encode() if body is not None else None
                hdr = {"Content-Type": "application/json"} if data else {}
                c.request(method, self.api + path, body=data, headers=hdr)
                r = c.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException) as e:
                c.close()
                self.tls.conn = None
                if attempt:
                    return 0, str(e).encode()


def text(raw):
    return raw[:300].decode("utf-8", "replace")


def run_parallel(n, fn, items):
    q = queue.Queue()
    for it in items:
        q.put(it)
    errors = []

    def work():
        while True:
            try:
                it = q.get_nowait()
            except queue.Empty:
                return
            try:
                fn(it)
            except Exception as e:
                errors.append(repr(e))

    ts = [threading.Thread(target=work) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        sys.exit("fleet: " + errors[0])


def fleet(args):
    """Creates and starts the fleet; prints the planned reaper start time.
    The containers that never expire come first: how fast they go tells how
    long the expiring ones will take, and their deadlines are set relative
    to a start time that leaves room for it."""
    (sock, out, prefix, key, run, n, pool, expire, burst, duration,
     parallel) = args
    n, pool, expire, burst = int(n), int(pool), int(expire), int(burst)
    duration, parallel = int(duration), int(parallel)
    eng = Engine(sock)
    lock = threading.Lock()
    outf = open(out, "w", buffering=1)

    def create(spec):
        name, role, target = spec
        labels = {key: run, key + ".role": role}
        max_age = None
        if target is not None:
            max_age = max(1, round(target - time.time()))
            labels["reaper.max-age"] = "%ds" % max_age
        st, raw = eng.call("POST", "/containers/create?name=" + name,
                           {"Image": "reaper-test/sleeper:1", "Cmd": SLEEPER,
                            "Labels": labels,
                            "HostConfig": {"NetworkMode": "none"}})
        if st != 201:
            raise RuntimeError("create %s: %d %s" % (name, st, text(raw)))
        cid = json.loads(raw)["Id"]
        st, raw = eng.call("POST", "/containers/%s/start" % cid)
        if st not in (204, 304):
            raise RuntimeError("start %s: %d %s" % (name, st, text(raw)))
        rec = {"name": name, "id": cid, "policy": role, "max_age_s": max_age,
               "target": target}
        if target is not None:
            st, raw = eng.call("GET", "/containers/%s/json" % cid)
            rec["started_at"] = json.loads(raw)["State"]["StartedAt"]
        with lock:
            outf.write(json.dumps(rec) + "\n")

    names = ["%s-%04d" % (prefix, i) for i in range(n)]
    # The burst pool is names[:pool], the fleet the rest; the expiring ones
    # are the last of each, created last.
    plain = [(nm, "burst", None) for nm in names[:pool - burst]] + \
            [(nm, "fleet", None) for nm in names[pool:n - expire]]
    t0 = time.time()
    run_parallel(parallel, create, plain)
    per = (time.time() - t0) / max(1, len(plain))
    left = expire + burst
    # reaper starts once all are created (with a margin for a slower end);
    # the first deadline comes 60 s after its start (the list, the
    # inspects), the last 90 s before the end, the burst half-way.
    t_start = time.time() + left * per * 1.3 + 30
    span = duration - 150
    fleet_targets = [t_start + 60 + span * i / max(1, expire - 1) for i in range(expire)] \
        if expire > 1 else [t_start + 60] * expire
    t_burst = t_start + duration / 2
    exp = [(nm, "burst", t_burst) for nm in names[pool - burst:pool]] + \
          [(nm, "fleet", tg) for nm, tg in zip(names[n - expire:], fleet_targets)]
    exp.sort(key=lambda s: s[2])
    run_parallel(parallel, create, exp)
    print("%.3f %.3f %.3f" % (t_start, per, time.time() - t0))


def churn(args):
    """Creates containers at a rate, starts a fraction of them, removes each
    after a random life; logs every call.  SIGTERM: stop creating, finish
    what is queued, remove every churn container left."""
    sock, log_path, prefix, labels, rate, start_frac, threads = args
    labels, rate = json.loads(labels), float(rate)
    start_frac, threads = float(start_frac), int(threads)
    eng = Engine(sock)
    log_lock = threading.Lock()
    logf = open(log_path, "a", buffering=1)

    def log(**kv):
        kv["t"] = time.time()
        with log_lock:
            logf.write(json.dumps(kv) + "\n")

    jobs, removals, rem_lock = queue.Queue(), [], threading.Lock()
    live, live_lock, stop = {}, threading.Lock(), threading.Event()

    def do_create(name, started, life):
        st, raw = eng.call("POST", "/containers/create?name=" + name,
                           {"Image": "reaper-test/sleeper:1", "Cmd": SLEEPER,
                            "Labels": labels,
                            "HostConfig": {"NetworkMode": "none"}})
        if st != 201:
            log(op="create", name=name, ok=False, status=st, err=text(raw))
            return
        cid = json.loads(raw)["Id"]
        with live_lock:
            live[cid] = name
        log(op="create", name=name, id=cid, ok=True)
        if started:
            st, raw = eng.call("POST", "/containers/%s/start" % cid)
            ok = st in (204, 304)
            log(op="start", name=name, id=cid, ok=ok, status=st,
                **({} if ok else {"err": text(raw)}))
        with rem_lock:
            heapq.heappush(removals, (time.time() + life, cid, name))

    def do_remove(cid, name, final=False):
        st, raw = eng.call("DELETE", "/containers/%s?force=1" % cid)
        if st in (204, 404):
            with live_lock:
                live.pop(cid, None)
        log(op="remove", name=name, id=cid, ok=st == 204, status=st,
            final=final, **({} if st == 204 else {"err": text(raw)}))

    def worker():
        while True:
            job = jobs.get()
            if job is None:
                return
            if stop.is_set() and job[0] is do_create:
                continue  # stopping: no new containers
            try:
                job[0](*job[1:])
            except Exception as e:  # a worker never dies silently
                log(op="error", err=repr(e))

    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    skipped, count, next_t = 0, 0, time.time()
    log(op="begin", rate=rate, start_frac=start_frac)
    while not stop.is_set():
        now = time.time()
        with rem_lock:
            while removals and removals[0][0] <= now:
                _, cid, name = heapq.heappop(removals)
                jobs.put((do_remove, cid, name))
        if now >= next_t:
            next_t += 1.0 / rate
            # A backlog means the engine is slower than the rate: the rate
            # achieved is reported; the queue does not grow without bound.
            if jobs.qsize() > threads * 4:
                skipped += 1
            else:
                count += 1
                started = random.random() < start_frac
                life = random.uniform(10, 60) if started else random.uniform(2, 20)
                jobs.put((do_create, "%s-%06d" % (prefix, count), started, life))
        stop.wait(max(0.0, min(next_t - time.time(), 0.05)))
    log(op="stopping", queued=jobs.qsize())
    for _ in pool:
        jobs.put(None)
    for t in pool:
        t.join()
    with live_lock:
        left = list(live.items())
    for cid, name in left:
        do_remove(cid, name, final=True)
    log(op="end", skipped=skipped, attempted=count)


def ts_of(s):
    """RFC 3339 (any fraction, Z) to epoch seconds."""
    if s is None:
        return None
    base, _, frac = s.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + \
        (float("0." + frac) if frac else 0.0)


def jsonl(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by the end of the recorder
    return out


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[max(0, math.ceil(len(v) * p) - 1)]


def fmt(x, f="%.2f"):
    return "-" if x is None else f % x


def analyze(args):
    (wdir, n, pool, budget, tol, t_start, t_end, key) = args
    n, pool, tol = int(n), int(pool), float(tol)
    t_start, t_end = float(t_start), float(t_end)
    fleet = jsonl(os.path.join(wdir, "fleet.jsonl"))
    audit = jsonl(os.path.join(wdir, "audit.jsonl"))
    churn = jsonl(os.path.join(wdir, "churn.jsonl"))
    events = jsonl(os.path.join(wdir, "events.jsonl"))
    final = json.load(open(os.path.join(wdir, "final.json")))
    rss = [l.rstrip("\n").split("\t") for l in open(os.path.join(wdir, "rss.tsv"))]
    size = {"fleet": n - pool, "burst": pool}
    percent = budget.endswith("%")
    bval = int(budget.rstrip("%"))
    problems = []
    out = []

    by_id = {f["id"]: f for f in fleet}
    names = {f["name"] for f in fleet}
    # --- the recycles ---------------------------------------------------
    rec = [a for a in audit if a.get("event", "").startswith("recycle.")]
    for a in rec:
        a["t"] = ts_of(a["ts"])
    begins = [a for a in rec if a["event"] == "recycle.begin"]
    dones = [a for a in rec if a["event"] == "recycle.done"]
    fails = [a for a in rec if a["event"] == "recycle.failed"]
    other = [a for a in rec if a["event"] not in
             ("recycle.begin", "recycle.done", "recycle.failed")]
    # Intervals of each attempt: begin to the next done/failed of its id.
    open_, intervals, overlaps = {}, [], 0
    for a in rec:
        if a["event"] == "recycle.begin":
            if a["id"] in open_:
                overlaps += 1
            open_[a["id"]] = a
        elif a["event"] in ("recycle.done", "recycle.failed"):
            b = open_.pop(a["id"], None)
            if b:
                intervals.append((b["policy"], b["t"], a["t"], a["event"]))
    for b in open_.values():
        intervals.append((b["policy"], b["t"], float("inf"), "open"))
        problems.append("recycle of %s (%s) never ended" % (b["name"], b["id"][:12]))
    done_t = {}
    for a in dones:
        done_t.setdefault(a["policy"], []).append(a["t"])

    def in_flight(policy, t):
        return sum(1 for p, s, e, _ in intervals if p == policy and s <= t < e)

    def limit(policy, t, busy):
        if not percent:
            return bval
        # A percentage of what the policy matches: the fleet less what was
        # replaced (replacements are excluded), less what is being
        # recycled at the most (an old container in flight may already be
        # gone from the tracker).
        m = size[policy] - sum(1 for x in done_t.get(policy, []) if x <= t) - busy
        return max(1, (bval * max(0, m) + 99) // 100)

    def full_time(policy, t0, t1):
        """How long, within [t0, t1), the policy's budget was all taken."""
        pts = sorted({t0, t1} | {x for p, s, e, _ in intervals if p == policy
                                 for x in (s, e) if t0 < x < t1})
        full = 0.0
        for a, b in zip(pts, pts[1:]):
            busy = in_flight(policy, a)
            if busy >= limit(policy, a, busy):
                full += b - a
        return full

    first, seen_key = [], set()
    for b in begins:
        k = (b["id"], b["started_at"])
        if b.get("attempt") is None and k not in seen_key:
            first.append(b)
        seen_key.add(k)
    lat, waits, unexplained, early, bad_deadline = [], [], [], [], 0
    worst = None
    # A deadline that passed before reaper started (the fleet took longer
    # to create than planned) measures the set-up, not reaper: such begins
    # are counted apart, with how long after the agent's start they came.
    t_agent = next((ts_of(a["ts"]) for a in audit if a.get("event") == "agent.start"), None)
    before_start = []
    for b in first:
        d = ts_of(b["deadline"])
        if t_agent is not None and d < t_agent:
            before_start.append(b["t"] - t_agent)
            continue
        # jitter 0: the deadline is the start plus the max age, exactly.
        if abs(ts_of(b["started_at"]) + b["max_age_s"] - d) > 0.0015:
            bad_deadline += 1
        f = by_id.get(b["id"])
        if f and f.get("max_age_s") is not None and b["max_age_s"] != f["max_age_s"]:
            bad_deadline += 1
        late = b["t"] - d
        w = full_time(b["policy"], d, b["t"]) if late > 0 else 0.0
        lat.append(late)
        waits.append(w)
        u = late - w
        unexplained.append(u)
        if late < -0.01:
            early.append(b)
        if u > tol:
            problems.append("%s (%s): began %.3f s after its deadline, %.3f s of "
                            "it with a full budget" % (b["name"], b["id"][:12], late, w))
        if worst is None or u > worst[0]:
            worst = (u, b["name"], late, w)
    for b in early:
        problems.append("%s began %.3f s before its deadline" %
                        (b["name"], ts_of(b["deadline"]) - b["t"]))
    if bad_deadline:
        problems.append("%d begins whose deadline is not started_at + max_age" % bad_deadline)
    # Every container of the fleet that expired during the run was recycled.
    began = {b["id"] for b in begins}
    expiring = [f for f in fleet if f.get("max_age_s") is not None]
    due = [f for f in expiring if ts_of(f["started_at"]) + f["max_age_s"] <= t_end]
    missed = [f for f in due if f["id"] not in began]
    for f in missed:
        problems.append("%s was due at %s and never recycled" % (f["name"], f["started_at"]))
    # A recycle of something that was never due.
    not_expiring = [b for b in begins if b["id"] not in by_id or
                    by_id[b["id"]].get("max_age_s") is None]
    for b in not_expiring:
        problems.append("recycled %s (%s), which was not due" % (b["name"], b["id"][:12]))
    # --- none twice -------------------------------------------------------
    per_key = {}
    for a in dones:
        per_key[(a["id"], a["started_at"])] = per_key.get((a["id"], a["started_at"]), 0) + 1
    twice = sum(1 for v in per_key.values() if v > 1)
    if twice:
        problems.append("%d containers recycled twice (one (id, started_at), "
                        "two recycle.done)" % twice)
    if overlaps:
        problems.append("%d overlapping recycles of one container" % overlaps)
    retries = sum(1 for b in begins if b.get("attempt") is not None)
    # --- none lost ----------------------------------------------------------
    done_old = {a["id"]: a for a in dones}
    failed_ids = {a["id"] for a in fails}
    churn_created = {c["id"]: c for c in churn if c.get("op") == "create" and c.get("ok")}
    churn_removed = {c["id"] for c in churn if c.get("op") == "remove" and c.get("status") == 204}
    churn_404 = [c for c in churn if c.get("op") == "remove" and c.get("status") == 404]
    for c in churn_404:
        problems.append("churn container %s was gone before the churn process removed it" % c["name"])
    churn_bad = [c for c in churn if c.get("op") in ("remove", "error") and
                 not c.get("ok") and c.get("status") != 404]
    destroyed = {}
    starts = died = 0
    for e in events:
        act = e.get("Action") or e.get("status")
        if e.get("Type") != "container":
            continue
        if act == "start":
            starts += 1
        elif act == "die":
            died += 1
        elif act == "destroy":
            destroyed[e["Actor"]["ID"]] = e["Actor"].get("Attributes", {})
    why = {"recycled": 0, "churn": 0, "rollback": 0}
    lost = []
    for cid, attrs in destroyed.items():
        if cid in done_old:
            why["recycled"] += 1
        elif cid in churn_removed:
            why["churn"] += 1
        elif attrs.get("reaper.replaces") in failed_ids:
            why["rollback"] += 1
        elif attrs.get(key) is not None:
            lost.append((cid, attrs.get("name")))
    for cid, nm in lost:
        problems.append("LOST: %s (%s) was removed, neither recycled nor by "
                        "the churn process" % (nm, cid[:12]))
    kept_old = [i for i in done_old if i not in destroyed]
    for i in kept_old:
        problems.append("recycled %s, but the old container was not removed" % i[:12])
    ours = [c for c in final if (c.get("Labels") or {}).get(key) is not None]
    fin_names = {}
    for c in ours:
        nm = c["Names"][0].lstrip("/")
        fin_names.setdefault(nm, []).append(c)
    for nm in sorted(names):
        cs = fin_names.get(nm, [])
        if len(cs) != 1 or cs[0]["State"] != "running":
            problems.append("at the end, %s is %s" % (nm, ", ".join(c["State"] for c in cs) or "gone"))
    leftovers = [nm for nm in fin_names if nm not in names]
    for nm in leftovers:
        problems.append("left over at the end: %s (%s)" % (nm, fin_names[nm][0]["State"]))
    unreplaced = [a for a in dones if a.get("replacement_id") not in
                  {c["Id"] for c in ours}]
    for a in unreplaced:
        problems.append("the replacement of %s is not there at the end" % a["name"])
    # --- churn ------------------------------------------------------------
    cb = [c for c in churn if c.get("op") == "begin"]
    ce = [c for c in churn if c.get("op") == "end"]
    c_t0 = cb[0]["t"] if cb else t_start
    c_stop = next((c["t"] for c in churn if c.get("op") == "stopping"), t_end)
    c_span = max(1e-9, c_stop - c_t0)
    c_in = [c for c in churn if c.get("t", 0) <= c_stop]
    creates = sum(1 for c in c_in if c.get("op") == "create" and c.get("ok"))
    cstarts = sum(1 for c in c_in if c.get("op") == "start" and c.get("ok"))
    removes = sum(1 for c in c_in if c.get("op") == "remove" and c.get("ok"))
    c_err = sum(1 for c in churn if c.get("ok") is False)
    churn_left = [i for i in churn_created if i not in churn_removed]
    for i in churn_left:
        if i not in destroyed:
            problems.append("churn container %s is still there" % i[:12])
    # --- memory -------------------------------------------------------------
    rows = [(r[0], int(r[1]), int(r[2]), int(r[3]), r[4], r[5], r[6], r[7],
             r[8], r[9], r[10], r[11],
             int(r[12]) if len(r) > 12 and r[12].lstrip("-").isdigit() else -1)
            for r in rss]
    start_row = next(r for r in rows if r[0] == "start")
    mins = [r for r in rows if r[0] == "minute"]
    end_row = next((r for r in rows if r[0] == "end"), mins[-1] if mins else start_row)
    # Warm-up: the first tenth of the run (at least 2 minutes) fills the
    # allocator's arenas; flat means no growth from there to the end.
    warm = max(120, (t_end - t_start) / 10)
    after = [r for r in mins if r[1] >= warm] or mins
    ref = after[0] if after else start_row
    growth = end_row[2] - ref[2]
    half = [r for r in mins if r[1] >= (t_end - t_start) / 2]
    slope = None
    if len(half) >= 3:
        xs, ys = [r[1] / 3600 for r in half], [r[2] for r in half]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else None
    rss_flat = growth <= 1024 and (slope is None or slope <= 1024)
    # The heap in use (the stats line's heap_kib, -1 where the C library
    # does not say): what a leak or an unbounded structure would grow.
    # Samples swing with the recycles in flight at that instant, so the
    # trend is judged on the medians of the first and the last third after
    # the warm-up.
    heaps = [r for r in after if r[12] >= 0]
    heap_flat, heap_growth = None, None
    if len(heaps) >= 3:
        third = max(1, len(heaps) // 3)
        h0 = statistics.median(r[12] for r in heaps[:third])
        h1 = statistics.median(r[12] for r in heaps[-third:])
        heap_growth = h1 - h0
        heap_flat = heap_growth <= 512
    flat = heap_flat if heap_flat is not None else rss_flat
    if not flat:
        problems.append("memory grew: heap in use %s KiB, RSS %+d KiB from %d s to the end "
                        "(%s KiB/h over the second half)" % (
                            fmt(heap_growth, "%+.0f"), growth, ref[1], fmt(slope, "%.0f")))
    # --- summary --------------------------------------------------------------
    mib = lambda k: "%.1f" % (k / 1024)
    loads = [float(r[4]) for r in mins]
    by_pol = {}
    for b in first:
        by_pol.setdefault(b["policy"], []).append(b)
    out.append("reaper churn bench (docker, %d containers, %d s, budget %s, "
               "host load %.1f avg / %.1f max)" % (
                   n, round(t_end - t_start), budget,
                   statistics.fmean(loads) if loads else 0, max(loads) if loads else 0))
    out.append("recycled: %d of %d due (%d begins, %d done, %d failed, %d retries); "
               "missed: %d; early: %d" % (
                   len({b["id"] for b in first} & {f["id"] for f in due}), len(due),
                   len(begins), len(dones), len(fails), retries, len(missed), len(early)))
    queued = [w for w in waits if w > 0]
    out.append("within deadline + budget queueing (tolerance %.1f s): %s; lateness "
               "median %s s, p95 %s s, max %s s; queued behind a full budget: %d, "
               "up to %s s; lateness beyond the queueing: p95 %s s, max %s s%s" % (
                   tol, "ok" if not any(u > tol for u in unexplained) and not early
                   and not missed else "MISSED",
                   fmt(pct(lat, .5), "%.3f"), fmt(pct(lat, .95), "%.3f"),
                   fmt(max(lat) if lat else None, "%.3f"), len(queued),
                   fmt(max(queued) if queued else None, "%.1f"),
                   fmt(pct(unexplained, .95), "%.3f"),
                   fmt(max(unexplained) if unexplained else None, "%.3f"),
                   " (%s)" % worst[1] if worst else ""))
    if before_start:
        out.append("  due before reaper started (the fleet's creation overran; not in the "
                   "figures above): %d, begun at most %.3f s after the agent's start" % (
                       len(before_start), max(before_start)))
    for p, bs in sorted(by_pol.items()):
        ls = [b["t"] - ts_of(b["deadline"]) for b in bs]
        ws = [full_time(p, ts_of(b["deadline"]), b["t"]) for b in bs]
        out.append("  policy %s (%d containers): %d recycled, lateness median %s s, max %s s; "
                   "waited behind the budget: %d, max %s s" % (
                       p, size.get(p, 0), len(bs), fmt(pct(ls, .5), "%.3f"),
                       fmt(max(ls), "%.3f"), sum(1 for w in ws if w > 0),
                       fmt(max(ws) if ws else None, "%.1f")))
    peak = {}
    for p in size:
        pts = sorted({s for q, s, e, _ in intervals if q == p})
        peak[p] = max((in_flight(p, t) for t in pts), default=0)
    out.append("  recycles in flight at once: %s" % ", ".join(
        "%s %d" % (p, peak[p]) for p in sorted(peak)))
    out.append("none twice: %s (one recycle.done per (id, started_at): %d twice; "
               "overlapping recycles: %d; recycles of what was not due: %d)" % (
                   "ok" if not twice and not overlaps and not not_expiring else "MISSED",
                   twice, overlaps, len(not_expiring)))
    out.append("none lost: %s (%d containers destroyed during the run: %d old halves "
               "of a recycle, %d by the churn process, %d replacements of a rollback, "
               "%d LOST; at the end %d of %d fleet names run once, %d left over, "
               "%d churn containers left)" % (
                   "ok" if not lost and not kept_old and not leftovers and not unreplaced
                   and all(len(fin_names.get(x, [])) == 1 for x in names) else "MISSED",
                   len(destroyed), why["recycled"], why["churn"], why["rollback"], len(lost),
                   sum(1 for x in names if len(fin_names.get(x, [])) == 1 and
                       fin_names[x][0]["State"] == "running"), len(names), len(leftovers),
                   len([i for i in churn_left if i not in destroyed])))
    out.append("churn: %.1f containers created per second (%d), %.2f started per second, "
               "%.1f removed per second, over %d s; %d calls failed, %d creates skipped "
               "(engine backlog)" % (
                   creates / c_span, creates, cstarts / c_span, removes / c_span,
                   round(c_span), c_err, ce[0]["skipped"] if ce else -1))
    out.append("memory: RSS %s MiB after the initial list, %s MiB after %d s, peak %s MiB; "
               "%+d KiB from %d s to the end (%s KiB/h over the second half)%s" % (
                   mib(start_row[2]), mib(end_row[2]), end_row[1], mib(end_row[3]),
                   growth, ref[1], fmt(slope, "%+.0f"),
                   "" if rss_flat or not heap_flat else ", the allocator's (the heap in use is flat)"))
    if heap_growth is not None:
        out.append("  heap in use: %s KiB median over the first third after %d s, %+.0f KiB by "
                   "the last third: %s" % (
                       fmt(statistics.median(r[12] for r in heaps[:max(1, len(heaps) // 3)]), "%.0f"),
                       ref[1], heap_growth, "flat" if heap_flat else "GROWING"))
        out.append("  heap in use each minute (KiB): " + " ".join(str(r[12]) for r in mins))
    out.append("  RSS each minute (MiB): " + " ".join(mib(r[2]) for r in mins))
    out.append("  tracked workloads each minute: " + " ".join(r[5] for r in mins))
    out.append("  engine events during the run: %d starts, %d dies, %d destroys; reaper made "
               "%s API requests and used %.1f s of CPU" % (
                   starts, died, len(destroyed), end_row[10], int(end_row[11]) / 1000))
    if other:
        out.append("  other recycle events: " + ", ".join(sorted({a["event"] for a in other})))
    if churn_bad:
        out.append("  churn calls that failed: %d, e.g. %s" % (len(churn_bad), churn_bad[0].get("err")))
    fails_by = {}
    for a in fails:
        fails_by[a.get("error", "")[:160]] = fails_by.get(a.get("error", "")[:160], 0) + 1
    for e, c in sorted(fails_by.items(), key=lambda x: -x[1])[:5]:
        out.append("  failed x%d: %s" % (c, e))
    out.append("verdict: %s" % ("ok" if not problems else "%d problems" % len(problems)))
    for p in problems[:40]:
        out.append("  - " + p)
    if len(problems) > 40:
        out.append("  - ... and %d more" % (len(problems) - 40))
    print("\n".join(out))


if __name__ == "__main__":
    {"fleet": fleet, "churn": churn, "analyze": analyze}[sys.argv[1]](sys.argv[2:])
PY

write_config() {
  cat >"$W/reaper.yaml" <<YAML
agent:
  listen: ""
  audit_log: $W/audit.jsonl
  resync: ${RESYNC}s
providers:
  - name: local
    type: docker
    endpoint: unix://$SOCK
policies:
  - name: burst
    match:
      labels: { $LABEL_KEY: "$RUN_ID", $LABEL_KEY.role: burst }
    max_age: 1d
    jitter: 0%
    grace: 1s
    strategy: recreate
    max_unavailable: $BUDGET
    health_timeout: 60s
  - name: fleet
    match:
      labels: { $LABEL_KEY: "$RUN_ID", $LABEL_KEY.role: fleet }
    max_age: 1d
    jitter: 0%
    grace: 1s
    strategy: recreate
    max_unavailable: $BUDGET
    health_timeout: 60s
  - name: churn
    match:
      labels: { $LABEL_KEY: "$RUN_ID", $LABEL_KEY.role: churn }
    max_age: 1d
    jitter: 0%
    grace: 1s
    strategy: recreate
    max_unavailable: 1
# Each container is recycled once: its replacement is left alone.
exclude:
  labels: { reaper.replaces: "*" }
YAML
}

# --- 1. build, engine, images -----------------------------------------------------

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

# --- 2. the fleet -------------------------------------------------------------------

log "creating $N containers, $PARALLEL at a time ($EXPIRE + $BURST of them expire during the run)"
write_config
"$REAPER" check-config -c "$W/reaper.yaml" >/dev/null || die "the configuration is not valid"
read -r T_START per create_s < <(python3 "$W/helper.py" fleet "$SOCK" "$W/fleet.jsonl" \
  "rpc$RUN_ID" "$LABEL_KEY" "$RUN_ID" "$N" "$BURST_POOL" "$EXPIRE" "$BURST" \
  "$DURATION" "$PARALLEL" 2>"$W/fleet.err") || { cat "$W/fleet.err" >&2; die "could not create the fleet"; }
[ "$(wc -l <"$W/fleet.jsonl")" -eq "$N" ] || die "created $(wc -l <"$W/fleet.jsonl") containers, not $N"
log "created $N containers in ${create_s%.*} s ($per s each)"

# The engine's own record of what happened to every container: the
# reconciliation's ground truth (reaper's audit log and the churn log are
# checked against it).
curl -sN --unix-socket "$SOCK" \
  "http://localhost/v1.41/events?filters=$(jq -rn '{type: ["container"]} | tojson | @uri')" \
  >"$W/events.jsonl" 2>/dev/null &
EVENTS_PID=$!

now=$(date +%s.%N)
wait_s=$(awk -v a="$T_START" -v b="$now" 'BEGIN { printf "%.3f", a - b }')
if awk -v w="$wait_s" 'BEGIN { exit !(w > 0) }'; then
  log "reaper starts in $wait_s s (the first deadline is 60 s after its start)"
  sleep "$wait_s"
else
  log "warning: creating the fleet took ${wait_s#-} s longer than planned: the first deadlines may pass before reaper has listed"
fi

# --- 3. the run ---------------------------------------------------------------------

T_START_MS=$(now_ms)
"$REAPER" run -c "$W/reaper.yaml" >>"$W/reaper.log" 2>&1 &
REAPER_PID=$!
end=$(($(now_ms) + 180000))
until grep -qE "provider local \(docker\): [0-9]+ workloads" "$W/reaper.log"; do
  kill -0 "$REAPER_PID" 2>/dev/null || { tail -n 20 "$W/reaper.log" >&2; die "reaper exited"; }
  [ "$(now_ms)" -lt "$end" ] || die "reaper did not list the containers within 180 s"
  sleep 0.2
done
: >"$W/rss.tsv"
log "reaper listed: $(grep -oE 'provider local \(docker\): [0-9]+ workloads' "$W/reaper.log" | head -1); RSS $(sample start | cut -f3) KiB"

python3 "$W/helper.py" churn "$SOCK" "$W/churn.jsonl" "rpc$RUN_ID-churn" \
  "{\"$LABEL_KEY\": \"$RUN_ID\", \"$LABEL_KEY.role\": \"churn\"}" "$CHURN" "$CHURN_START" 4 \
  2>"$W/churn.err" &
CHURN_PID=$!
log "churn: $CHURN containers a second, a fraction $CHURN_START of them started; the run lasts $DURATION s"

T_END_MS=$((T_START_MS + DURATION * 1000))
minute=1
while :; do
  next=$((T_START_MS + minute * 60000))
  [ "$next" -le "$T_END_MS" ] || break
  sleep "$(awk -v d=$((next - $(now_ms))) 'BEGIN { printf "%.3f", (d > 0 ? d / 1000 : 0) }')"
  kill -0 "$REAPER_PID" 2>/dev/null || { tail -n 20 "$W/reaper.log" >&2; die "reaper exited"; }
  kill -0 "$CHURN_PID" 2>/dev/null || { cat "$W/churn.err" >&2; die "the churn process exited"; }
  IFS=$'\t' read -r _ el rss _ ld wl du fl rc fa _ _ < <(sample minute)
  log "minute $minute: RSS $rss KiB, $wl tracked, $du due, $fl in flight, $rc recycled, $fa failed, load $ld"
  minute=$((minute + 1))
done
sleep "$(awk -v d=$((T_END_MS - $(now_ms))) 'BEGIN { printf "%.3f", (d > 0 ? d / 1000 : 0) }')"
IFS=$'\t' read -r _ el rss _ < <(sample end)
log "end of the run after $el s: RSS $rss KiB; stopping the churn process"
T_END_S=$(awk -v m="$(now_ms)" 'BEGIN { printf "%.3f", m / 1000 }')

stop_pid "$CHURN_PID" 180
CHURN_PID=
# The recycles in flight finish before reaper stops: what they leave is part
# of the reconciliation.
end=$(($(now_ms) + 300000))
while :; do
  s=$(stats)
  [ "$(field in_flight "$s")" = 0 ] && [ "$(field due "$s")" = 0 ] && break
  [ "$(now_ms)" -lt "$end" ] || { log "warning: recycles still in flight after 300 s"; break; }
  sleep 2
done
stop_pid "$REAPER_PID" 120
REAPER_PID=
sleep 1
stop_pid "$EVENTS_PID" 5
EVENTS_PID=
curl -s --unix-socket "$SOCK" "http://localhost/v1.41/containers/json?all=1" >"$W/final.json"

# --- 4. reconciliation and summary --------------------------------------------------

python3 "$W/helper.py" analyze "$W" "$N" "$BURST_POOL" "$BUDGET" "$TOLERANCE" \
  "$(awk -v m="$T_START_MS" 'BEGIN { printf "%.3f", m / 1000 }')" "$T_END_S" "$LABEL_KEY" \
  >"$W/summary.txt" || die "the analysis failed"
sed -i "1s/(docker, /(docker $DOCKERD_VERSION, $(nproc) cores, /" "$W/summary.txt"
mkdir -p "$ART"
cp "$W/summary.txt" "$ART/bench_churn.txt"
echo
cat "$W/summary.txt"
echo
echo "(also in tests/artifacts/bench_churn.txt; logs, audit log, churn log and engine events in tests/artifacts/bench_churn/)"
