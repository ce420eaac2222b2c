#!/usr/bin/env python3
"""A fault injector in front of a real dockerd, for the integration tests.

It listens on its own unix socket and forwards HTTP/1.1 to the engine's
socket, streaming (the /events stream lives for hours), and breaks answers
on request.  It is not a fake engine: every answer starts as the engine's.

  faultproxy.py serve --listen SOCK --upstream SOCK --control FILE --log FILE
                      [--standin ENGINE]
  faultproxy.py set FILE JSON        writes the control file atomically

With --standin ENGINE (25.0 ... 29.0), the proxy also stands in for that
newer engine in front of the real dockerd: its API range, its refusals, its
shapes (tests/lib/standin.py); faults apply on top.

The control file holds the faults, re-read whenever it changes:

  {"fault": "delay", "ms": 1500}                  one rule for every request
  {"rules": [{"match": "GET /v[0-9.]+/containers/json", "fault": "nonjson",
              "count": 1}, ...]}                  the first rule that matches

"match" is a regular expression searched in "METHOD PATH?QUERY" (default:
everything); "count" limits how many requests the rule breaks (default: all;
counts start again when the file changes).  Faults:

  pass          forward as is
  delay         wait "ms" before answering (the answer tells of the moment
                the engine gave it)
  stall         wait "ms" before forwarding the request (the answer tells of
                the moment it is sent)
  drop          close the connection without forwarding the request
  drop_reply    forward the request (the engine acts), close without answering
  truncate      send the head and half of the body, then close (the framing
                promised more: a transport error for the client)
  halfjson      a complete answer whose body is the first half of the engine's
  nonjson       a complete answer whose body is not JSON
  shape         a complete answer whose JSON has the wrong shape: "shape" is
                object (a list becomes an object, an object a list), no_id
                (drop "Id" from the object or from list item "index", default
                every item), started_garbage (State.StartedAt = "garbage")
  cut_line      streams: send half of the next line, then close mid-chunk
  end_line      streams: send half of the next line, then end the stream
                cleanly (terminating chunk) as if the engine had
                (both apply to a stream already open: they are looked at for
                every line that passes; "line" is a regular expression the
                line must match, default any)
  refuse        not per request: remove the socket file and close every
                connection (the engine is gone) for "seconds", then listen
                again; applied once per change of the control file

The log gets one line per request with the fault applied, so that tests can
check what the client asked (e.g. the since= of a reconnected /events).
Pure standard library; one thread per connection."""

import argparse
import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin import Refusal, Standin  # noqa: E402

CHUNK = 65536


class Control:
    """The control file, re-read when it changes, and the rules' counters."""

    def __init__(self, path, log):
        self.path = path
        self.log = log
        self.lock = threading.Lock()
        self.stamp = None
        self.rules = []
        self.used = []
        self.version = 0

    def _reload(self):
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self.stamp:
            return
        self.stamp = stamp
        doc = {}
        if stamp is not None:
            try:
                with open(self.path) as f:
                    doc = json.load(f)
            except (OSError, ValueError) as e:
                self.log.write(f"control file unreadable ({e}): passing")
                doc = {}
        rules = doc.get("rules", [doc] if "fault" in doc else [])
        self.rules = rules
        self.used = [0] * len(rules)
        self.version += 1
        self.log.write(f"control: {json.dumps(doc)}")

    def snapshot(self):
        """The rules and their version, for the refuse watcher."""
        with self.lock:
            self._reload()
            return self.version, list(self.rules)

    def pick(self, request_line, line=None):
        """The rule for one request (a dict), consuming its count; with a
        line, the stream rule (cut_line, end_line) for that line, or None."""
        stream_faults = ("cut_line", "end_line")
        with self.lock:
            self._reload()
            for i, r in enumerate(self.rules):
                fault = r.get("fault")
                if fault == "refuse" or (fault in stream_faults) != \
                        (line is not None):
                    continue
                if not re.search(r.get("match", ""), request_line):
                    continue
                if line is not None and not re.search(
                        r.get("line", ""), line.decode("utf-8", "replace")):
                    continue
                if "count" in r and self.used[i] >= r["count"]:
                    continue
                self.used[i] += 1
                return r
        return None if line is not None else {"fault": "pass"}


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, msg):
        with self.lock:
            self.f.write(f"{time.time():.3f} {msg}\n")


class Closed(Exception):
    """A peer closed its side where the protocol wanted more."""


class Reader:
    """Buffered reads from a socket: lines, exact sizes, whatever comes."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _more(self):
        data = self.sock.recv(CHUNK)
        if not data:
            raise Closed()
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def some(self):
        """Whatever is buffered or arrives next; b"" at the end."""
        if not self.buf:
            try:
                self._more()
            except Closed:
                return b""
        data, self.buf = self.buf, b""
        return data

    def head(self):
        """A start line and its headers: (start line, [(name, value)])."""
        start = self.line()
        while start == b"":  # tolerate stray CRLF between messages
            start = self.line()
        headers = []
        while True:
            line = self.line()
            if line == b"":
                return start.decode("latin-1"), headers
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))


def header(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def render(start, headers):
    return (start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) +
            "\r\n").encode("latin-1")


def reshape(body, shape, index=None):
    """The engine's JSON in a shape the client does not expect."""
    doc = json.loads(body)
    if shape == "object":
        doc = {"items": doc} if isinstance(doc, list) else [doc]
    elif shape == "no_id":
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                if index is None or i == index:
                    item.pop("Id", None)
        else:
            doc.pop("Id", None)
    elif shape == "started_garbage":
        doc.setdefault("State", {})["StartedAt"] = "garbage"
    else:
        raise ValueError(f"unknown shape {shape}")
    return json.dumps(doc).encode()


def upstream_call(path_sock, method, target, body):
    """One request of the stand-in's own to the engine, on a connection of
    its own: (status, body)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path_sock)
    try:
        data = json.dumps(body).encode() if body is not None else b""
        head = [("Host", "docker"), ("Connection", "close"),
                ("Content-Length", str(len(data)))]
        if body is not None:
            head.append(("Content-Type", "application/json"))
        s.sendall(render(f"{method} {target} HTTP/1.1", head) + data)
        rd = Reader(s)
        start, headers = rd.head()
        status = int(start.split(" ")[1])
        if (header(headers, "Transfer-Encoding") or "").lower() == "chunked":
            out = Proxy.read_chunked(rd)
        elif header(headers, "Content-Length") is not None:
            out = rd.exact(int(header(headers, "Content-Length")))
        else:
            out = b""
        return status, out
    finally:
        s.close()


class Proxy:
    def __init__(self, listen, upstream, control, log, standin=None):
        self.listen_path = listen
        self.upstream = upstream
        self.standin = standin
        self.log = log
        self.control = control
        self.conns = set()  # every open socket, closed when refusing
        self.lock = threading.Lock()
        self.listener = None

    # --- listening and refusing ---

    def open_listener(self):
        try:
            os.unlink(self.listen_path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.listen_path + ".new")
        os.chmod(self.listen_path + ".new", 0o660)
        s.listen(64)
        # Appears at once, complete: clients never find a socket file that
        # does not accept yet.
        os.rename(self.listen_path + ".new", self.listen_path)
        self.listener = s
        threading.Thread(target=self.accept_loop, args=(s,),
                         daemon=True).start()
        self.log.write(f"listening on {self.listen_path}")

    def accept_loop(self, s):
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return  # closed by refuse
            self.track(conn)
            threading.Thread(target=self.serve, args=(conn,),
                             daemon=True).start()

    def refuse(self, seconds):
        self.log.write(f"refusing for {seconds}s: socket removed")
        s, self.listener = self.listener, None
        try:
            os.unlink(self.listen_path)
        except FileNotFoundError:
            pass
        if s:
            s.shutdown(socket.SHUT_RDWR)
            s.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:  # the engine is gone: so are its connections
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        time.sleep(seconds)
        self.open_listener()

    def watch(self):
        """Applies refuse rules, once per version of the control file."""
        done = 0
        while True:
            version, rules = self.control.snapshot()
            if version != done:
                done = version
                for r in rules:
                    if r.get("fault") == "refuse":
                        self.refuse(float(r.get("seconds", 10)))
            time.sleep(0.1)

    def track(self, s):
        with self.lock:
            self.conns.add(s)

    def untrack(self, s):
        with self.lock:
            self.conns.discard(s)
        try:
            s.close()
        except OSError:
            pass

    # --- one client connection ---

    def serve(self, client):
        up = None
        try:
            rd = Reader(client)
            while True:
                try:
                    start, headers = rd.head()
                except Closed:
                    return
                n = int(header(headers, "Content-Length") or 0)
                body = rd.exact(n) if n else b""
                method, target = start.split(" ")[:2]
                rule = self.control.pick(f"{method} {target}")
                fault = rule.get("fault", "pass")
                self.log.write(f"{method} {target} -> {fault}")
                if fault == "drop":
                    return
                if fault == "stall":
                    time.sleep(float(rule.get("ms", 1000)) / 1000)
                route = None
                if self.standin:
                    try:
                        version, path, query = self.standin.route(target)
                        body, follow = self.standin.request(
                            method, version, path, body)
                    except Refusal as r:
                        self.log.write(f"standin refused: {r.message}")
                        self.refuse_request(client, r)
                        continue
                    route = (version, path, follow)
                    target = self.standin.upstream_target(version, path,
                                                          query)
                    start = f"{method} {target} " + start.split(" ", 2)[2]
                    headers = [(k, v) for k, v in headers
                               if k.lower() != "content-length"]
                    if body or method in ("POST", "PUT"):
                        headers.append(("Content-Length", str(len(body))))
                if up is None:
                    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    up.connect(self.upstream)
                    self.track(up)
                    urd = Reader(up)
                up.sendall(render(start, headers) + body)
                keep = self.answer(client, urd, f"{method} {target}", rule,
                                   route)
                if not keep:
                    return
        except (Closed, OSError):
            return
        finally:
            self.untrack(client)
            if up is not None:
                self.untrack(up)

    def refuse_request(self, client, r):
        body = json.dumps({"message": r.message}).encode() + b"\n"
        headers = self.standin.headers([
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body)))])
        client.sendall(render(f"HTTP/1.1 {r.status} Bad Request", headers) +
                       body)

    def follow_up(self, route, status, body):
        """After a create the stand-in split: the other networks, connected
        as the newer engine would have at create; on a failure the
        container is removed and the failure is the answer, as an engine
        that refuses a create leaves nothing behind."""
        version, path, follow = route
        if not follow or status != 201:
            return status, body
        cid = json.loads(body).get("Id")
        for method, target, payload in follow:
            payload = dict(payload, Container=cid)
            st, out = upstream_call(self.upstream, method, target, payload)
            self.log.write(f"standin: {method} {target} -> {st}")
            if st >= 300:
                upstream_call(self.upstream, "DELETE",
                              f"/v1.41/containers/{cid}?force=1", None)
                return st, out
        return status, body

    def answer(self, client, urd, request_line, rule, route=None):
        """Relays one response with its fault; False: close the connection."""
        method = request_line.split(" ")[0]
        fault = rule.get("fault", "pass")
        start, headers = urd.head()
        status = int(start.split(" ")[1])
        if self.standin:
            headers = self.standin.headers(headers)
        if fault == "delay":
            time.sleep(float(rule.get("ms", 1000)) / 1000)
        if fault == "drop_reply":
            return False
        chunked = (header(headers, "Transfer-Encoding") or "").lower() == \
            "chunked"
        length = header(headers, "Content-Length")
        if status == 101 or header(headers, "Upgrade"):
            # A hijacked connection (exec attach): a byte pipe from here on.
            client.sendall(render(start, headers))
            self.pipe(client, urd)
            return False
        if method == "HEAD" or status in (204, 304) or status < 200:
            client.sendall(render(start, headers))
            return True
        streaming = route is None or route[1] == "/events"
        if chunked and fault in ("pass", "delay", "stall") and streaming:
            return self.relay_chunked(client, urd, start, headers,
                                      request_line, route)
        if length is None and not chunked:
            # Delimited by the close (a raw stream): relay until it ends.
            client.sendall(render(start, headers))
            while True:
                data = urd.some()
                if not data:
                    return False
                client.sendall(data)
        body = self.read_chunked(urd) if chunked else urd.exact(int(length))
        headers = [(k, v) for k, v in headers
                   if k.lower() not in ("content-length", "transfer-encoding")]
        if route is not None:
            new_status, body = self.follow_up(route, status, body)
            if new_status != status:
                start = f"HTTP/1.1 {new_status} Error"
                status = new_status
            body = self.standin.answer(method, route[0], route[1], status,
                                       body)
        if fault == "truncate":
            headers.append(("Content-Length", str(len(body))))
            client.sendall(render(start, headers) + body[:len(body) // 2])
            return False
        if fault == "halfjson":
            body = body[:len(body) // 2]
        elif fault == "nonjson":
            body = b"<html><body>502 upstream hiccup</body></html>\n"
        elif fault == "shape":
            body = reshape(body, rule.get("shape", "object"),
                           rule.get("index"))
        headers.append(("Content-Length", str(len(body))))
        client.sendall(render(start, headers) + body)
        return (header(headers, "Connection") or "").lower() != "close"

    @staticmethod
    def read_chunked(urd):
        body = b""
        while True:
            size = int(urd.line().split(b";")[0], 16)
            if size == 0:
                while urd.line() != b"":  # trailers
                    pass
                return body
            body += urd.exact(size)
            urd.exact(2)

    def relay_chunked(self, client, urd, start, headers, request_line,
                      route=None):
        """Chunk by chunk as they come (the /events stream), cutting a line
        when a stream rule says so; the stand-in reshapes each line."""
        client.sendall(render(start, headers))
        while True:
            size = int(urd.line().split(b";")[0], 16)
            if size == 0:
                while urd.line() != b"":
                    pass
                client.sendall(b"0\r\n\r\n")
                return True
            data = urd.exact(size)
            urd.exact(2)
            if route is not None:
                data = b"".join(self.standin.event_line(route[0], line)
                                for line in data.splitlines(keepends=True))
            # A chunk usually holds one event line; look at each line.
            sent = b""
            for line in data.splitlines(keepends=True):
                cut = self.control.pick(request_line, line) \
                    if line.strip() else None
                if cut:
                    half = line[:max(1, len(line.rstrip(b"\r\n")) // 2)]
                    out = sent + half
                    client.sendall(b"%x\r\n%s\r\n" % (len(out), out))
                    self.log.write(f"{cut['fault']}: sent {half!r}")
                    if cut["fault"] == "end_line":
                        client.sendall(b"0\r\n\r\n")
                    return False
                sent += line
            client.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    @staticmethod
    def pipe(client, urd):
        def down():
            while True:
                data = urd.some()
                if not data:
                    break
                client.sendall(data)
            client.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=down, daemon=True)
        t.start()
        while True:
            data = client.recv(CHUNK)
            if not data:
                break
            urd.sock.sendall(data)
        t.join()


def write_control(path, text):
    json.loads(text)  # refuse to write what the proxy could not read
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", required=True)
    s.add_argument("--upstream", required=True)
    s.add_argument("--control", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--standin", help="stand in for this Engine release "
                   "(25.0 ... 29.0) in front of dockerd 20.10")
    w = sub.add_parser("set")
    w.add_argument("control")
    w.add_argument("json")
    a = ap.parse_args()
    if a.cmd == "set":
        write_control(a.control, a.json)
        return
    log = Log(a.log)
    standin = Standin(a.standin) if a.standin else None
    proxy = Proxy(a.listen, a.upstream, Control(a.control, log), log,
                  standin)
    proxy.open_listener()
    try:
        proxy.watch()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            os.unlink(a.listen)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    sys.exit(main())
