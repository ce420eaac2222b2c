#!/usr/bin/env python3
"""A registry token endpoint of the tests' own, for distribution's
`auth: silly` (which challenges with a Bearer realm and then accepts any
token): it stands where auth.docker.io stands for Docker Hub, so that a
client's whole challenge, token, retry flow runs against a real registry.

    token_server.py PORT USER PASSWORD LOG

GET /token?service=S&scope=S[&account=A] answers 200
{"token": ..., "expires_in": 300} when the request carries
`Authorization: Basic base64(USER:PASSWORD)`, and 401 otherwise (anonymous
or wrong credentials).  Every request appends one JSON line to LOG:
{"ok", "auth" ("basic", "none" or "other"), "user" (the Basic user, never
the password), "service", "scope", "account", "path"}.  Listens on
127.0.0.1 only.
"""
import base64
import json
import secrets
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, USER, PASSWORD, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass  # the LOG file says what the tests need

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        header = self.headers.get("Authorization", "")
        auth, user, ok = "none", None, False
        if header.startswith("Basic "):
            auth = "basic"
            try:
                plain = base64.b64decode(header[6:], validate=True).decode()
                user, _, password = plain.partition(":")
                ok = user == USER and password == PASSWORD
            except (ValueError, UnicodeDecodeError):
                ok = False
        elif header:
            auth = "other"
        ok = ok and url.path == "/token"
        with open(LOG, "a") as f:
            f.write(json.dumps({
                "ok": ok, "auth": auth, "user": user, "path": url.path,
                "service": q.get("service", [None])[0],
                "scope": q.get("scope", [None])[0],
                "account": q.get("account", [None])[0],
            }) + "\n")
        if not ok:
            body = b'{"details":"incorrect username or password"}'
            self.send_response(401)
        else:
            body = json.dumps({"token": secrets.token_hex(24),
                               "expires_in": 300}).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
