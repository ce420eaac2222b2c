#!/usr/bin/env bash
# Large configurations: prints figures, asserts no timing.  Run by hand
# (tests/run.sh does not run it); see tests/bench/README.md.
#
#   tests/bench/bench_config.sh [--keys N]
#
# 1. writes three files of N keys (100,000): N labels in one mapping
#    (exclude.labels), N/5 policies of five keys each, and the labels file
#    with its first key repeated at the end (the duplicate is found last);
# 2. times `reaper check-config` on each (the best of three runs);
# 3. starts `reaper run` on the labels file (its docker provider points at
#    a socket nobody serves: the agent only retries it), asks /healthz
#    back to back, sends SIGHUP and reports the longest answer around the
#    reload: how long the reload held the loop.
# Uses build/reaper (REAPER=path for another); the listener on 127.0.0.1
# port 18690 (BENCH_PORT to change).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
N=100000
while [ $# -gt 0 ]; do
  case $1 in
  --keys)
    N=$2
    shift
    ;;
  *)
    echo "usage: $0 [--keys N]" >&2
    exit 2
    ;;
  esac
  shift
done
REAPER=${REAPER:-$top/build/reaper}
PORT=${BENCH_PORT:-18690}
[ -x "$REAPER" ] || {
  echo "bench_config: $REAPER is not built (cmake -S . -B build && cmake --build build)" >&2
  exit 1
}
command -v python3 >/dev/null || {
  echo "bench_config: needs python3" >&2
  exit 1
}
T=$(mktemp -d /tmp/rp-bench-config.XXXXXX)
AGENT=
cleanup() {
  [ -z "$AGENT" ] || kill "$AGENT" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

python3 - "$T" "$N" "$PORT" <<'PY'
import sys
d, n, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
head = (f"agent:\n  listen: 127.0.0.1:{port}\n  audit_log: {d}/audit.jsonl\n"
        f"providers:\n  - name: local\n    type: docker\n"
        f"    endpoint: unix://{d}/nobody.sock\n")
with open(f"{d}/labels.yaml", "w") as f:
    f.write(head + "policies:\n  - name: all\n    max_age: 1d\n"
            "exclude:\n  labels:\n")
    for i in range(n):
        f.write(f"    example.com/label-{i}: value-{i}\n")
with open(f"{d}/duplicate.yaml", "w") as f:
    f.write(open(f"{d}/labels.yaml").read())
    f.write("    example.com/label-0: again\n")
with open(f"{d}/policies.yaml", "w") as f:
    f.write(head + "policies:\n")
    for i in range(n // 5):
        f.write(f"  - name: policy-{i}\n    match:\n      provider: local\n"
                f"      labels: {{ app: a{i} }}\n    max_age: {i % 20 + 1}h\n")
PY
chmod 600 "$T"/*.yaml

best_of_3() { # FILE: seconds of the fastest check-config
  local best= t s e
  for _ in 1 2 3; do
    s=$(date +%s%N)
    "$REAPER" check-config -c "$1" >/dev/null 2>&1 || true
    e=$(date +%s%N)
    t=$(((e - s) / 1000000))
    [ -n "$best" ] && [ "$best" -le "$t" ] || best=$t
  done
  printf '%d.%03d' $((best / 1000)) $((best % 1000))
}

echo "reaper check-config, $N keys (best of 3):"
printf '  %-44s %s s\n' "$N labels in one mapping" "$(best_of_3 "$T/labels.yaml")"
printf '  %-44s %s s\n' "$((N / 5)) policies of 5 keys" "$(best_of_3 "$T/policies.yaml")"
printf '  %-44s %s s\n' "the same labels, a duplicate key at the end" "$(best_of_3 "$T/duplicate.yaml")"
"$REAPER" check-config -c "$T/duplicate.yaml" 2>&1 | sed 's/^/  (/; s/$/)/' | cut -c1-120 || true

"$REAPER" run -c "$T/labels.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!
python3 - "$PORT" "$AGENT" <<'PY'
import http.client, os, signal, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
def ask():
    t = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/healthz")
    c.getresponse().read()
    c.close()
    return time.monotonic() - t
end = time.monotonic() + 60
while True:
    try:
        ask()
        break
    except OSError:
        if time.monotonic() > end:
            sys.exit("bench_config: the agent never answered on /healthz")
        time.sleep(0.1)
quiet = [ask() for _ in range(50)]
os.kill(pid, signal.SIGHUP)
t0 = time.monotonic()
around = []
while time.monotonic() - t0 < 3:
    around.append(ask())
print("reload of the labels file (SIGHUP):")
print(f"  /healthz before: median {sorted(quiet)[len(quiet)//2]*1000:.1f} ms; "
      f"longest answer in the 3 s after SIGHUP: {max(around)*1000:.0f} ms "
      f"({len(around)} answers)")
PY
grep -o 'configuration reloaded.*' "$T/agent.log" | head -n1 | sed 's/^/  agent: /'
