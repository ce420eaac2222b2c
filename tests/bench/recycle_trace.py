#!/usr/bin/env python3
"""Reads `strace -f -ttt -T -s 160 -e trace=sendto,recvfrom,fdatasync,epoll_wait`
of a reaper agent during one recycle (bench_recycle.sh --trace) and prints,
with times from recycle.begin, what reaper did: each API request (method,
path, status, how long the engine took to answer), each audit fdatasync, the
loop's sleeps of 100 ms or more, and the engine's events as reaper read them.

    recycle_trace.py STRACE_FILE BEGIN_EPOCH_NS
"""
import re
import sys

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+) (.*)$")
CALL = re.compile(r"^(\w+)\((.*)\)\s+= (-?\d+).*<(\d+\.\d+)>$")
UNFINISHED = re.compile(r"^(\w+)\((.*) <unfinished \.\.\.>$")
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)\)\s+= (-?\d+).*<(\d+\.\d+)>$")
REQUEST = re.compile(r'^(\d+), "(GET|POST|DELETE|PUT|HEAD) (\S+) HTTP/1\.1')
RESPONSE = re.compile(r'^(\d+), "HTTP/1\.1 (\d+)')
EVENT = re.compile(r'\\"status\\":\\"(\w+)\\",\\"id\\":\\"([0-9a-f]{12})')
EPOLL_TIMEOUT = re.compile(r", (-?\d+)$")


def calls(path):
    """(pid, start, name, args, duration) of each finished call."""
    pending = {}
    with open(path, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, t, rest = int(m.group(1)), float(m.group(2)), m.group(3)
            u = UNFINISHED.match(rest)
            if u:
                pending[pid] = (t, u.group(1), u.group(2))
                continue
            r = RESUMED.match(rest)
            if r and pid in pending:
                t0, name, args = pending.pop(pid)
                yield pid, t0, name, args + r.group(2), float(r.group(4))
                continue
            c = CALL.match(rest)
            if c:
                yield pid, t, c.group(1), c.group(2), float(c.group(4))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    begin = float(sys.argv[2]) / 1e9
    rows = []
    asked = {}  # fd -> (time, method, path)
    loop_pid = None
    for pid, t, name, args, dur in calls(sys.argv[1]):
        if loop_pid is None and name in ("epoll_wait", "sendto"):
            loop_pid = pid  # the first traced call of the loop thread
        if name == "sendto":
            m = REQUEST.match(args)
            if m:
                path = re.sub(r"^/v1\.\d+", "", m.group(3))
                path = re.sub(r"[0-9a-f]{64}", lambda x: x.group(0)[:12], path)
                asked[m.group(1)] = (t, m.group(2), path)
        elif name == "recvfrom":
            m = RESPONSE.match(args)
            if m and m.group(1) in asked:
                t0, method, path = asked.pop(m.group(1))
                rows.append((t0, f"{method} {path} -> {m.group(2)} in {(t - t0) * 1000:.1f} ms"))
            for action, who in EVENT.findall(args):
                rows.append((t, f"event read: {action} {who}"))
        elif name == "fdatasync":
            rows.append((t, f"fdatasync (audit log, thread {pid}) {dur * 1000:.1f} ms"))
        elif name == "epoll_wait" and pid == loop_pid and dur >= 0.1:
            m = EPOLL_TIMEOUT.search(args)
            rows.append((t, f"loop sleeps {dur * 1000:.0f} ms (timeout {m.group(1) if m else '?'} ms)"))
    rows.sort()
    shown = [r for r in rows if r[0] >= begin - 0.05]
    if not shown:
        sys.exit("no traced call after recycle.begin")
    for t, what in shown:
        print(f"  {(t - begin) * 1000:+9.1f} ms  {what}")


if __name__ == "__main__":
    main()
