#!/usr/bin/env python3
"""A SIMULATED Docker Engine, for the scale benchmark only.

This machine cannot run 10,000 containers, so bench_scale.sh points reaper at
this simulation instead: it answers the read-only calls that tracking makes,
in the shape Docker Engine 29.0 (API 1.52) gives them, for N running
containers that exist nowhere but here.  It is not a test double for
correctness (the integration tests use real engines); it exists to measure
what reaper costs at a scale no real engine here reaches: memory after the
first list, CPU for the list and the plan, requests per container, and the
cost of idling.

Served on a unix socket, HTTP/1.1 with keep-alive, as dockerd does:

  GET /_ping                        "OK", Api-Version: 1.52
  GET /version                      Docker Engine 29.0.0, API 1.44 .. 1.52
  GET /vX.Y/containers/json         the N containers (filters: is-task -> [])
  GET /vX.Y/containers/{id}/json    one container's inspect (~5 KiB)
  GET /vX.Y/images/{id}/json        one image's inspect (with LABELs)
  GET /vX.Y/events                  a quiet stream: headers, then nothing
  GET /_sim/stats                   what was asked, by kind (not counted)

Containers are made up deterministically: ids are sha256("sim-container-I"),
names sim-00000.., 20 images whose OCI labels the containers carry too (as a
real engine merges an image's labels into its containers'), compose-style
labels of their own (as docker compose sets them), start times spread over
the last two days.  Every answer is about as large as a real engine's, in
compact JSON as Go writes it: a list item about 2.0 KiB (a list of 10,000
about 19 MiB, over reaper's former 16 MiB cap on an answer; --lean, with
only three labels of their own, 1.6 KiB and 15.7 MiB), an inspect about
5.4 KiB.

  tests/bench/sim_engine.py --socket PATH [--containers N] [--lean]
"""

import argparse
import hashlib
import json
import os
import signal
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

API_MIN, API_MAX = "1.44", "1.52"
N_IMAGES = 20


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def iso(ts):
    # RFC 3339 with nanoseconds, as the engine writes StartedAt.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + \
        ".%09dZ" % int((ts % 1) * 1e9)


def human(seconds):
    # go-units HumanDuration, as the list's Status says it.
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return "%d seconds" % s
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return "%d minutes" % m
    h = int(s / 3600 + 0.5)  # as Go rounds, not Python
    if h == 1:
        return "About an hour"
    if h < 48:
        return "%d hours" % h
    return "%d days" % (s // 86400)


class Sim:
    def __init__(self, n, now, lean=False):
        self.lean = lean
        self.images = []
        for i in range(N_IMAGES):
            self.images.append({
                "id": "sha256:" + sha("sim-image-%d" % i),
                "ref": "registry.example.com/team%d/app%d:1.%d" % (i % 4, i, i),
                "labels": {
                    "org.opencontainers.image.source":
                        "https://git.example.com/team%d/app%d" % (i % 4, i),
                    "org.opencontainers.image.revision": sha("rev-%d" % i)[:40],
                    "org.opencontainers.image.version": "1.%d.0" % i,
                    "org.opencontainers.image.title": "app%d" % i,
                },
            })
        self.containers = []
        self.by_id = {}
        for i in range(n):
            img = self.images[i % N_IMAGES]
            started = now - 3600 - (i * 7919 % 172800)  # 1 h to 49 h ago
            c = {
                "id": sha("sim-container-%d" % i),
                "name": "sim-%05d" % i,
                "image": img,
                "started": started,
                "created": started - 5,
                "project": "proj%d" % (i % 50),
                "service": "svc%d" % (i % 200),
                "pid": 10000 + i,
                "ip": "10.%d.%d.%d" % (1 + i // 65025, (i // 255) % 255, 1 + i % 255),
            }
            self.containers.append(c)
            self.by_id[c["id"]] = c
        self.lock = threading.Lock()
        self.counts = {}
        self.list_body = None
        # Inspect answers are made once, up front: a real engine answers in
        # well under a millisecond, and a simulation slower than that would
        # make reaper wait (and wake) more than a real engine does.
        self.inspect_body = {
            c["id"]: json.dumps(self.inspect(c), separators=(",", ":")).encode()
            for c in self.containers}

    def count(self, kind):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def labels(self, c):
        labels = dict(c["image"]["labels"])
        if self.lean:
            labels.update({
                "com.docker.compose.project": c["project"],
                "com.docker.compose.service": c["service"],
                "tier": "web" if int(c["id"][:2], 16) % 2 else "worker",
            })
            return labels
        labels.update({
            "com.docker.compose.project": c["project"],
            "com.docker.compose.service": c["service"],
            "com.docker.compose.container-number": "1",
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.version": "2.29.7",
            "com.docker.compose.config-hash": sha("cfg-" + c["name"]),
            "com.docker.compose.project.working_dir": "/srv/" + c["project"],
            "com.docker.compose.image": c["image"]["id"],
            "tier": "web" if int(c["id"][:2], 16) % 2 else "worker",
        })
        return labels

    def network(self, c):
        return {
            "IPAMConfig": None,
            "Links": None,
            "Aliases": [c["service"], c["name"]],
            "MacAddress": "02:42:0a:%02x:%02x:%02x" % tuple(
                int(x) for x in c["ip"].split(".")[1:]),
            "DriverOpts": None,
            "GwPriority": 0,
            "NetworkID": sha("net-" + c["project"]),
            "EndpointID": sha("ep-" + c["id"]),
            "Gateway": "10.0.0.1",
            "IPAddress": c["ip"],
            "IPPrefixLen": 8,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": [c["name"], c["id"][:12], c["service"]],
        }

    def list_item(self, c, now):
        net = c["project"] + "_default"
        return {
            "Id": c["id"],
            "Names": ["/" + c["name"]],
            "Image": c["image"]["ref"],
            "ImageID": c["image"]["id"],
            "ImageManifestDescriptor": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + sha("manifest-" + c["image"]["id"]),
                "size": 1234,
            },
            "Command": "/usr/local/bin/entrypoint.sh serve --port 8080",
            "Created": int(c["created"]),
            "Ports": [{"PrivatePort": 8080, "Type": "tcp"}],
            "Labels": self.labels(c),
            "State": "running",
            "Status": "Up " + human(now - c["started"]),
            "HostConfig": {"NetworkMode": net},
            "NetworkSettings": {"Networks": {net: self.network(c)}},
            "Mounts": [{
                "Type": "volume",
                "Name": c["project"] + "_data",
                "Source": "/var/lib/docker/volumes/%s_data/_data" % c["project"],
                "Destination": "/data",
                "Driver": "local",
                "Mode": "z",
                "RW": True,
                "Propagation": "",
            }],
        }

    def make_list(self):
        now = time.time()
        self.list_body = json.dumps(
            [self.list_item(c, now) for c in self.containers],
            separators=(",", ":")).encode()

    def inspect(self, c):
        net = c["project"] + "_default"
        labels = self.labels(c)
        return {
            "Id": c["id"],
            "Created": iso(c["created"]),
            "Path": "/usr/local/bin/entrypoint.sh",
            "Args": ["serve", "--port", "8080"],
            "State": {
                "Status": "running", "Running": True, "Paused": False,
                "Restarting": False, "OOMKilled": False, "Dead": False,
                "Pid": c["pid"],
                "ExitCode": 0, "Error": "",
                "StartedAt": iso(c["started"]),
                "FinishedAt": "0001-01-01T00:00:00Z",
            },
            "Image": c["image"]["id"],
            "ResolvConfPath": "/var/lib/docker/containers/%s/resolv.conf" % c["id"],
            "HostnamePath": "/var/lib/docker/containers/%s/hostname" % c["id"],
            "HostsPath": "/var/lib/docker/containers/%s/hosts" % c["id"],
            "LogPath": "/var/lib/docker/containers/%s/%s-json.log" % (c["id"], c["id"]),
            "Name": "/" + c["name"],
            "RestartCount": 0,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "docker-default",
            "ExecIDs": None,
            "HostConfig": {
                "Binds": None, "ContainerIDFile": "",
                "LogConfig": {"Type": "json-file", "Config": {}},
                "NetworkMode": net,
                "PortBindings": {},
                "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None,
                "ConsoleSize": [0, 0], "CapAdd": None, "CapDrop": None,
                "CgroupnsMode": "private", "Dns": [], "DnsOptions": [],
                "DnsSearch": [], "ExtraHosts": [], "GroupAdd": None,
                "IpcMode": "private", "Cgroup": "", "Links": None,
                "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
                "PublishAllPorts": False, "ReadonlyRootfs": False,
                "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
                "ShmSize": 67108864, "Runtime": "runc", "Isolation": "",
                "CpuShares": 0, "Memory": 268435456, "NanoCpus": 500000000,
                "CgroupParent": "", "BlkioWeight": 0,
                "BlkioWeightDevice": None, "BlkioDeviceReadBps": None,
                "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
                "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0,
                "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
                "CpusetCpus": "", "CpusetMems": "", "Devices": None,
                "DeviceCgroupRules": None, "DeviceRequests": None,
                "MemoryReservation": 0, "MemorySwap": 536870912,
                "MemorySwappiness": None, "OomKillDisable": False,
                "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
                "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
                "Mounts": [{"Type": "volume", "Source": c["project"] + "_data",
                            "Target": "/data", "VolumeOptions": {}}],
                "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore",
                                "/proc/keys", "/proc/latency_stats",
                                "/proc/timer_list", "/proc/timer_stats",
                                "/proc/sched_debug", "/proc/scsi",
                                "/sys/firmware", "/sys/devices/virtual/powercap"],
                "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq",
                                  "/proc/sys", "/proc/sysrq-trigger"],
            },
            "GraphDriver": {
                "Data": {
                    "LowerDir": "/var/lib/docker/overlay2/%s-init/diff" % sha("l" + c["id"]),
                    "MergedDir": "/var/lib/docker/overlay2/%s/merged" % sha("l" + c["id"]),
                    "UpperDir": "/var/lib/docker/overlay2/%s/diff" % sha("l" + c["id"]),
                    "WorkDir": "/var/lib/docker/overlay2/%s/work" % sha("l" + c["id"]),
                },
                "Name": "overlay2",
            },
            "Mounts": [{
                "Type": "volume", "Name": c["project"] + "_data",
                "Source": "/var/lib/docker/volumes/%s_data/_data" % c["project"],
                "Destination": "/data", "Driver": "local", "Mode": "z",
                "RW": True, "Propagation": "",
            }],
            "Config": {
                "Hostname": c["id"][:12], "Domainname": "", "User": "app",
                "AttachStdin": False, "AttachStdout": False,
                "AttachStderr": False,
                "ExposedPorts": {"8080/tcp": {}},
                "Tty": False, "OpenStdin": False, "StdinOnce": False,
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "APP_ENV=production", "APP_PORT=8080",
                        "APP_NAME=" + c["service"]],
                "Cmd": ["serve", "--port", "8080"],
                "Healthcheck": {"Test": ["CMD", "/usr/local/bin/healthcheck"],
                                "Interval": 30000000000, "Timeout": 5000000000,
                                "Retries": 3},
                "Image": c["image"]["ref"],
                "Volumes": {"/data": {}},
                "WorkingDir": "/srv/app",
                "Entrypoint": ["/usr/local/bin/entrypoint.sh"],
                "OnBuild": None,
                "Labels": labels,
                "StopSignal": "SIGTERM",
            },
            "NetworkSettings": {
                "SandboxID": sha("sb-" + c["id"]),
                "SandboxKey": "/var/run/docker/netns/" + sha("sb-" + c["id"])[:12],
                "Ports": {"8080/tcp": None},
                "Networks": {net: self.network(c)},
            },
        }

    def image(self, iid):
        for img in self.images:
            if img["id"] == iid:
                return {
                    "Id": img["id"],
                    "RepoTags": [img["ref"]],
                    "RepoDigests": [img["ref"].split(":")[0] + "@sha256:" +
                                    sha("manifest-" + img["id"])],
                    "Created": "2026-01-01T00:00:00Z",
                    "Config": {
                        "User": "app",
                        "ExposedPorts": {"8080/tcp": {}},
                        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                        "Entrypoint": ["/usr/local/bin/entrypoint.sh"],
                        "Cmd": ["serve"],
                        "WorkingDir": "/srv/app",
                        "Labels": img["labels"],
                    },
                    "Architecture": "amd64", "Os": "linux", "Size": 123456789,
                    "RootFS": {"Type": "layers", "Layers": [sha("layer")]},
                }
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim = None  # set in main

    def log_message(self, *args):
        pass

    def address_string(self):
        return "unix"

    def send_json(self, obj=None, status=200, body=None):
        if body is None:
            body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", API_MAX)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def not_found(self, what):
        self.send_json({"message": "No such %s" % what}, 404)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        sim = self.sim
        url = urlsplit(self.path)
        path = url.path
        if path == "/_sim/stats":
            with sim.lock:
                body = json.dumps(sim.counts).encode()
            return self.send_json(body=body)
        if path.startswith("/v1."):
            path = path[path.index("/", 1):]
        if path == "/_ping":
            sim.count("ping")
            body = b"OK"
            self.send_response(200)
            self.send_header("Api-Version", API_MAX)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if path == "/version":
            sim.count("version")
            return self.send_json({
                "Platform": {"Name": "Docker Engine - Community (simulated)"},
                "Components": [{"Name": "Engine", "Version": "29.0.0",
                                "Details": {"ApiVersion": API_MAX,
                                            "MinAPIVersion": API_MIN}}],
                "Version": "29.0.0", "ApiVersion": API_MAX,
                "MinAPIVersion": API_MIN, "Os": "linux", "Arch": "amd64",
            })
        if path == "/containers/json":
            q = parse_qs(url.query)
            if "filters" in q and "is-task" in q["filters"][0]:
                sim.count("list_tasks")
                return self.send_json([])
            sim.count("list")
            sim.make_list()  # Status ("Up 3 hours") moves with time
            return self.send_json(body=sim.list_body)
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "containers" and parts[3] == "json":
            sim.count("inspect")
            body = sim.inspect_body.get(unquote(parts[2]))
            if body is None:
                return self.not_found("container: " + parts[2])
            return self.send_json(body=body)
        if path.startswith("/images/") and path.endswith("/json"):
            sim.count("image")
            img = sim.image(unquote(path[len("/images/"):-len("/json")]))
            if not img:
                return self.not_found("image")
            return self.send_json(img)
        if path == "/events":
            sim.count("events")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Api-Version", API_MAX)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            # Quiet: nothing happens on a simulated engine.  The stream
            # stays open until the client goes.
            self.connection.settimeout(None)
            try:
                while self.connection.recv(4096):
                    pass
            except OSError:
                pass
            self.close_connection = True
            return
        sim.count("other")
        self.send_json({"message": "page not found (simulation)"}, 404)


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    # dockerd listens with Go's default backlog (the kernel's somaxconn); a
    # unix socket whose backlog is full refuses at once.
    request_queue_size = 4096


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--containers", type=int, default=10000)
    ap.add_argument("--lean", action="store_true",
                    help="fewer labels: a list of 15.7 MiB for 10,000")
    args = ap.parse_args()
    Handler.sim = Sim(args.containers, time.time(), args.lean)
    Handler.sim.make_list()
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    srv = Server(args.socket, Handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print("sim_engine: %d simulated containers, list %d bytes, on %s" %
          (args.containers, len(Handler.sim.list_body), args.socket),
          flush=True)
    try:
        srv.serve_forever()
    finally:
        os.unlink(args.socket)


if __name__ == "__main__":
    main()
