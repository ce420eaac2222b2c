#!/usr/bin/env python3
"""Where the lateness of each recycle.begin went, from a --perf-trace run.

    tests/bench/lateness_breakdown.py [DIR] [MIN_MS]

DIR holds lateness.jsonl (the audit log), lateness.perf-trace.txt (`perf trace
-T` of reaper) and clocks.txt (CLOCK_MONOTONIC and the wall clock, read
together); it defaults to tests/artifacts/bench_docker.  For every begin at
least MIN_MS late (default 20), the lateness is split into:

  armed-late  the loop's last epoll_wait was set to end after the deadline
  slack       its overshoot that the kernel's timer slack explains: epoll
              timeouts are rounded up by 0.1% of their length, at most 100 ms
              (select_estimate_accuracy in fs/select.c)
  wake-delay  the rest of the overshoot: runnable but not running (a busy host)
  loop-work   from that epoll_wait's return to the begin's log line: work done
              on the loop thread first (other callbacks, parsing replies)

The parts add up to the lateness give or take the clocks' alignment (~1 ms).
"""
import bisect
import datetime
import json
import re
import statistics
import sys

art = sys.argv[1] if len(sys.argv) > 1 else "tests/artifacts/bench_docker"
min_ms = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0

mono0, wall0 = map(float, open(f"{art}/clocks.txt").read().split())
offset = wall0 - mono0  # wall = perf's clock (CLOCK_MONOTONIC) + offset


def wall(rfc3339):
    base, _, frac = rfc3339.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() + float("0." + (frac or "0"))


line_re = re.compile(r"^\s*(\d+\.\d+) \(\s*([\d.]+) ms\): (?:\S+/\d+ )?(\w+)\((.*)\)\s+= (\S+)")
waits = []   # (start, end, timeout_s, events)
writes = []  # start of each write to stderr (reaper's log)
for line in open(f"{art}/lateness.perf-trace.txt", errors="replace"):
    m = line_re.match(line)
    if not m:
        continue
    start = float(m.group(1)) / 1000 + offset
    dur = float(m.group(2)) / 1000
    name, args, ret = m.group(3), m.group(4), m.group(5)
    if name == "epoll_wait":
        t = re.search(r"timeout: (-?\d+)", args)
        if t:
            waits.append((start, start + dur, int(t.group(1)) / 1000, int(ret) if ret.isdigit() else 0))
    elif name == "write" and args.startswith("fd: 2"):
        writes.append(start)
waits.sort(key=lambda w: w[1])
wait_ends = [w[1] for w in waits]
writes.sort()

rows = []
for line in open(f"{art}/lateness.jsonl"):
    if '"recycle.begin"' not in line:
        continue
    b = json.loads(line)
    late_ms = b["lateness_s"] * 1000
    deadline, ts = wall(b["deadline"]), wall(b["ts"])
    # The begin's log line is written just before the audit line's ts is taken.
    i = bisect.bisect_right(writes, ts + 0.002) - 1
    if i < 0:
        continue
    logged = writes[i]
    j = bisect.bisect_right(wait_ends, logged) - 1
    if j < 0:
        continue
    start, end, timeout, events = waits[j]
    armed = start + timeout
    armed_late = max(0.0, min(armed, end) - deadline)
    overshoot = max(0.0, end - max(armed, deadline)) if events == 0 else 0.0
    slack = min(overshoot, min(timeout / 1000, 0.1))
    wake = overshoot - slack
    work = max(0.0, logged - max(end, deadline))
    rows.append((late_ms, armed_late * 1000, slack * 1000, wake * 1000, work * 1000,
                 timeout, events, b["name"]))

print(f"{len(rows)} begins matched to reaper's syscalls")
print(f"{'late':>6} {'armed-late':>10} {'slack':>6} {'wake-delay':>10} {'loop-work':>9}   "
      f"(ms)  last epoll_wait: timeout, events  name")
for r in sorted(rows, reverse=True):
    if r[0] < min_ms:
        break
    print(f"{r[0]:6.0f} {r[1]:10.1f} {r[2]:6.1f} {r[3]:10.1f} {r[4]:9.1f}   "
          f"      {r[5]:8.3f} s, {r[6]}  {r[7]}")
if rows:
    for k, name in ((2, "slack"), (3, "wake-delay"), (4, "loop-work")):
        v = [r[k] for r in rows]
        print(f"{name}: median {statistics.median(v):.1f} ms, "
              f"p95 {sorted(v)[max(0, int(len(v) * 0.95 + 0.999) - 1)]:.1f} ms, max {max(v):.1f} ms")
