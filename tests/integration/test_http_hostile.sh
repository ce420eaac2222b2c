#!/usr/bin/env bash
# The status listener under hostile clients, with a real agent: 100 clients
# that send their request a byte a second (and come back when cut off) hold
# no place /healthz needs (it answers within 1 s, every time, for 12 s);
# a connection refused because the listener is full reads a 503 and a clean
# end, not a reset; a Host that names another site (DNS rebinding) is
# refused with 421; a listener beyond loopback without a token is warned
# about at start.  Port 18601 (this test's range is 18600-18699).
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is not installed"
PORT=18601
config <<YAML
agent:
  listen: 0.0.0.0:$PORT
  audit_log: $T/audit.jsonl
providers:
  - name: local
    type: docker
    endpoint: $DOCKER_HOST
policies:
  - name: test
    match: { labels: { reaper-test: "$$" } }
    max_age: 1d
YAML
start_reaper
URL=http://127.0.0.1:$PORT
wait_for 30 "/healthz to say ok" sh -c "curl -fsS --max-time 2 $URL/healthz | grep -cx >/dev/null ok"

# Beyond loopback and no token: said at start, with what to do.
grep -q "WARN .*status listener on 0.0.0.0:$PORT is reachable beyond this machine and has no token.*agent.listen_token_file" "$T/reaper.log" ||
  fail "no warning about a listener beyond loopback without a token"

# DNS rebinding: the attacker's name in Host is refused, whatever the path;
# the listener's address, localhost and the machine's name are fine.
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
assert_eq 421 "$(code -H 'Host: rebind.attacker.example' "$URL/status")" "/status with a foreign Host"
assert_eq 421 "$(code -H 'Host: rebind.attacker.example:18601' "$URL/healthz")" "/healthz with a foreign Host"
assert_eq 200 "$(code "$URL/status")" "/status by address"
assert_eq 200 "$(code -H "Host: localhost:$PORT" "$URL/status")" "/status as localhost"
assert_eq 200 "$(code -H "Host: $(hostname)" "$URL/status")" "/status by the machine's name"

cat >"$T/hostile.py" <<'PY'
import socket, sys, threading, time
port, mode = int(sys.argv[1]), sys.argv[2]

def healthz():
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except ConnectionResetError:
        return time.monotonic() - t, "reset"
    finally:
        s.close()
    return time.monotonic() - t, data.split(b" ")[1].decode() if data else "none"

if mode == "slow":
    # 100 clients, a byte a second each; cut off, they come back at once.
    req = b"GET /status HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 64 + b"\r\n\r\n"
    stop = time.monotonic() + 12
    cuts = [0]
    def slow():
        while time.monotonic() < stop:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.settimeout(1)
                for i in range(len(req)):
                    if time.monotonic() >= stop:
                        break
                    s.send(req[i:i + 1])
                    try:
                        s.recv(4096)  # an answer (408) or the end: cut off
                        cuts[0] += 1
                        break
                    except socket.timeout:
                        pass  # a second has passed: the next byte
                s.close()
            except OSError:
                time.sleep(0.05)
    threads = [threading.Thread(target=slow, daemon=True) for _ in range(100)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # all 100 connected and dripping
    lat, codes = [], []
    while time.monotonic() < stop:
        d, c = healthz()
        lat.append(d)
        codes.append(c)
        time.sleep(0.25)
    lat.sort()
    print("healthz %d asks: median %.0f ms, p95 %.0f ms, max %.0f ms; statuses %s; slow clients cut off %d times"
          % (len(lat), lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95)] * 1000,
             lat[-1] * 1000, ",".join(sorted(set(codes))), cuts[0]))
    sys.exit(0 if max(lat) < 1.0 and set(codes) == {"200"} else 1)

if mode == "full":
    # Fill every place with quiet connections (younger than the 1 s after
    # which a quiet one gives way), then ask: refused, and it must read the
    # 503 whole and a clean end, although its request was already sent.
    quiet = []
    for _ in range(300):
        quiet.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data, end = b"", "eof"
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except ConnectionResetError:
        end = "reset"
    for q in quiet:
        q.close()
    print("refused: %r ... then %s" % (data[:40], end))
    sys.exit(0 if data.startswith(b"HTTP/1.1 503 ") and end == "eof" else 1)
PY
python3 "$T/hostile.py" "$PORT" slow >"$T/slow.out" 2>&1 || fail "/healthz under 100 slow clients: $(cat "$T/slow.out")"
log "$(cat "$T/slow.out")"
python3 "$T/hostile.py" "$PORT" full >"$T/full.out" 2>&1 || fail "a refused connection: $(cat "$T/full.out")"
log "$(cat "$T/full.out")"
wait_for 10 "the listener to serve again" sh -c "curl -fsS --max-time 2 $URL/healthz | grep -cx >/dev/null ok"
curl -fsS "$URL/metrics" | grep -c >/dev/null '^reaper_http_rejected_connections_total [1-9]' ||
  fail "refused connections are not counted"
stop_reaper
log "ok"
