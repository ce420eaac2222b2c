"""A strict stand-in for a newer Docker Engine, for the fault proxy.

Only dockerd 20.10 (API 1.41) installs on Debian 12, and the engines users
run speak up to API 1.52 (Engine 29) and refuse what reaper spoke before.
This module makes the fault proxy (faultproxy.py serve --standin ENGINE)
answer as such an engine does, in front of the real dockerd:

- its version range: /_ping's Api-Version header is the engine's newest;
  GET /version reports ApiVersion, MinAPIVersion and the engine's version; a
  versioned path outside the range gets the engine's own 400;
- every versioned request is forwarded as /v1.41/... (the real engine does
  the work), its body translated into what 20.10 takes;
- answers in that version's shape: inspect, list, events, image inspect,
  services;
- strictness beyond the engine: a create or connect field that the version
  would drop SILENTLY is refused with a 400 that names the rule, so that a
  client relying on it fails in the tests instead of losing configuration
  in production.

Every rule cites the line of ../shared/ENGINE-API-VERSIONS.md it comes from
as [V:LINE].  It is not a fake engine: every container, network and event is
the real dockerd's; only the shape of the conversation is the newer one's.
"""

import json
import re

# Engine release -> (oldest API, newest API) it serves [V:85-91].
PROFILES = {
    "25.0": ((1, 24), (1, 44)),
    "26.0": ((1, 24), (1, 45)),
    "27.0": ((1, 24), (1, 46)),
    "27.2": ((1, 24), (1, 47)),
    "28.0": ((1, 24), (1, 48)),
    "28.1": ((1, 24), (1, 49)),
    "28.2": ((1, 24), (1, 50)),
    "28.3": ((1, 24), (1, 51)),
    "29.0": ((1, 44), (1, 52)),
}
UPSTREAM = "/v1.41"
VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)?$")
CONTAINER_PATH = re.compile(r"^/containers/([^/?]+)/json$")
IMAGE_PATH = re.compile(r"^/images/(.+)/json$")
SERVICE_PATH = re.compile(r"^/services(/[^/?]+)?$")
SERVICE_UPDATE = re.compile(r"^/services/[^/?]+/update$")
CONNECT_PATH = re.compile(r"^/networks/([^/?]+)/connect$")

# Top-level NetworkSettings members gone at 1.52 [V:64]; of them, those
# Engine 29 puts back below 1.52, from the bridge network [V:67].
NS_GONE_152 = ["Bridge", "HairpinMode", "LinkLocalIPv6Address",
               "LinkLocalIPv6PrefixLen", "SecondaryIPAddresses",
               "SecondaryIPv6Addresses", "EndpointID", "Gateway",
               "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress",
               "IPPrefixLen", "IPv6Gateway", "MacAddress"]
NS_MISSING_ON_29 = ["Bridge", "HairpinMode", "LinkLocalIPv6Address",
                    "LinkLocalIPv6PrefixLen", "SecondaryIPAddresses",
                    "SecondaryIPv6Addresses"]
# Image Config members that only containers have, gone at 1.50 [V:53].
IMAGE_CONTAINER_ONLY = ["Hostname", "Domainname", "AttachStdin",
                        "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                        "StdinOnce", "Image", "NetworkDisabled", "MacAddress",
                        "StopTimeout"]
# Omitted from image inspect at 1.52 when empty [V:72].
IMAGE_CONFIG_OMIT_EMPTY = ["Cmd", "Entrypoint", "Env", "Labels", "OnBuild",
                           "User", "Volumes", "WorkingDir"]
IMAGE_OMIT_EMPTY = ["Parent", "Comment", "DockerVersion", "Author"]


class Refusal(Exception):
    """A request the engine (or the stand-in's strictness) refuses."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def vname(v):
    return f"{v[0]}.{v[1]}"


def compact(doc):
    """JSON as Go's encoder writes it: no spaces."""
    return json.dumps(doc, separators=(",", ":")).encode()


def empty(v):
    return v is None or v == "" or v == [] or v == {}


class Standin:
    def __init__(self, engine):
        if engine not in PROFILES:
            raise ValueError(f"unknown engine {engine}: {sorted(PROFILES)}")
        self.engine = engine
        self.min, self.max = PROFILES[engine]
        self.version_string = f"{engine}.0-standin"

    # --- the version in the path ------------------------------------------

    def route(self, target):
        """(version, path, query) of a request target; version None when
        unversioned (it then runs at the newest [V:107]).  Raises Refusal
        for a version outside the range, with the engine's words [V:104-106]."""
        path, _, query = target.partition("?")
        m = VERSIONED.match(path)
        if not m:
            return None, path, query
        v = (int(m.group(1)), int(m.group(2)))
        if v < self.min:
            raise Refusal(400, f"client version {vname(v)} is too old. "
                          f"Minimum supported API version is "
                          f"{vname(self.min)}, please upgrade your client to "
                          f"a newer version")
        if v > self.max:
            raise Refusal(400, f"client version {vname(v)} is too new. "
                          f"Maximum supported API version is "
                          f"{vname(self.max)}")
        return v, m.group(3) or "/", query

    def upstream_target(self, version, path, query):
        if version is None:
            return path + ("?" + query if query else "")
        return UPSTREAM + path + ("?" + query if query else "")

    def headers(self, headers):
        """The engine's own headers on every answer [V:106, V:111]."""
        out = [(k, v) for k, v in headers
               if k.lower() not in ("api-version", "server")]
        out.append(("Api-Version", vname(self.max)))
        out.append(("Server", f"Docker/{self.version_string} (linux)"))
        return out

    # --- requests ------------------------------------------------------------

    def request(self, method, version, path, body):
        """The body to forward (bytes), and a list of follow-up calls
        (method, path, body) to make upstream after a success (the networks
        that 20.10 cannot take at create).  Raises Refusal."""
        if version is None or method != "POST":
            return body, []
        if path == "/containers/create":
            return self.create(version, body)
        m = CONNECT_PATH.match(path)
        if m:
            return self.connect(version, body), []
        if SERVICE_UPDATE.match(path) or path == "/services/create":
            return self.service_write(version, body), []
        return body, []

    def strict(self, rule, line):
        raise Refusal(400, f"stand-in for Engine {self.engine}: {rule} "
                      f"[ENGINE-API-VERSIONS.md:{line}]")

    def create(self, v, raw):
        doc = json.loads(raw or b"{}")
        hc = doc.get("HostConfig") or {}
        nets = ((doc.get("NetworkingConfig") or {}).get("EndpointsConfig")
                or {})
        if len(nets) > 1 and v < (1, 44):
            # [V:24]: the engine's own 400.
            raise Refusal(400, "Container cannot be created with multiple "
                          "network endpoints: " + ", ".join(sorted(nets)))
        if v >= (1, 42) and "KernelMemory" in hc:
            self.strict(f"HostConfig.KernelMemory was removed at 1.42 and is "
                        f"ignored at {vname(v)}", 12)
        if v < (1, 43) and not empty(hc.get("Annotations")):
            self.strict(f"HostConfig.Annotations is dropped below 1.43", 17)
        if v >= (1, 52) and "KernelMemoryTCP" in hc:
            self.strict("HostConfig.KernelMemoryTCP was removed at 1.52", 61)
        if v < (1, 44) and "StartInterval" in (doc.get("Healthcheck") or {}):
            self.strict("Healthcheck.StartInterval is not known below 1.44",
                        27)
        if v >= (1, 48):
            for key in (hc.get("Sysctls") or {}):
                if ".eth0." in key or key.endswith(".eth0"):
                    raise Refusal(400, f"interface specific sysctl setting "
                                  f"\"{key}\" must be supplied using driver "
                                  f"option 'com.docker.network.endpoint."
                                  f"sysctls'")  # [V:40]
        mode = hc.get("NetworkMode") or ""
        primary = mode if mode in nets else (sorted(nets)[0] if nets else None)
        config_mac = doc.get("MacAddress") or ""
        for name, es in nets.items():
            es = es or {}
            if "DNSNames" in es:
                self.strict("EndpointSettings.DNSNames is an answer, not a "
                            "create field", 25)
            if "GwPriority" in es and v < (1, 48):
                self.strict(f"GwPriority is reset to 0 at create below 1.48 "
                            f"(asked at {vname(v)})", 46)
            mac = es.get("MacAddress") or ""
            if mac and v < (1, 44):
                self.strict(f"EndpointSettings.MacAddress is discarded below "
                            f"1.44 (network {name})", 21)
            if mac and name != primary:
                self.strict(f"a MAC address on network {name}, not the main "
                            f"one: this stand-in forwards it only for the "
                            f"main network", 20)
        if v >= (1, 52) and "MacAddress" in doc:
            self.strict("Config.MacAddress is not read at 1.52 (the MAC "
                        "address would be lost)", 60)
        if primary and (1, 44) <= v < (1, 52):
            endpoint_mac = (nets[primary] or {}).get("MacAddress") or ""
            if config_mac and endpoint_mac and config_mac != endpoint_mac:
                # [V:22]: the engine's own 400.
                raise Refusal(400, "the container-wide MAC address must match "
                              "the endpoint-specific MAC address for the main "
                              "network, or be left empty")
        # Into 20.10's shape: the main network's MAC as Config.MacAddress,
        # one network at create, the others connected after it.
        follow = []
        if primary:
            endpoint_mac = (nets[primary] or {}).pop("MacAddress", "") or ""
            if endpoint_mac:
                doc["MacAddress"] = endpoint_mac
            for es in nets.values():
                if es:
                    es.pop("GwPriority", None)
            for name in sorted(nets):
                if name != primary:
                    follow.append(("POST", f"{UPSTREAM}/networks/{name}/"
                                   "connect", {"EndpointConfig": nets[name]}))
            doc["NetworkingConfig"]["EndpointsConfig"] = {
                primary: nets[primary]}
        return compact(doc), follow

    def connect(self, v, raw):
        doc = json.loads(raw or b"{}")
        es = doc.get("EndpointConfig") or {}
        if es.get("MacAddress") and v < (1, 54):
            self.strict(f"the MAC address on connect is dropped below 1.54 "
                        f"(asked at {vname(v)})", 23)
        if "GwPriority" in es:
            if v < (1, 48):
                self.strict("GwPriority on connect is not known below 1.48",
                            46)
            es.pop("GwPriority")
        return compact(doc)

    def service_write(self, v, raw):
        doc = json.loads(raw or b"{}")
        task_nets = (doc.get("TaskTemplate") or {}).get("Networks")
        if self.engine.startswith("29") and not empty(doc.get("Networks")) \
                and (v >= (1, 44) or not empty(task_nets)):
            # [V:76]: Engine 29 honours ServiceSpec.Networks only below 1.44
            # and only without TaskTemplate.Networks; else it is ignored.
            self.strict("ServiceSpec.Networks is ignored (use TaskTemplate."
                        "Networks): the service would lose its networks", 76)
        return raw

    # --- answers -------------------------------------------------------------

    def answer(self, method, version, path, status, body):
        """The body of a buffered answer in the version's shape."""
        v = version or self.max
        if status >= 300 or not body:
            return body
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        if path == "/version" and version is None:
            doc["ApiVersion"] = vname(self.max)
            doc["MinAPIVersion"] = vname(self.min)
            doc["Version"] = self.version_string
            for c in doc.get("Components") or []:
                if c.get("Name") == "Engine":
                    c["Version"] = self.version_string
                    details = c.setdefault("Details", {})
                    details["ApiVersion"] = vname(self.max)
                    details["MinAPIVersion"] = vname(self.min)
        elif method == "GET" and CONTAINER_PATH.match(path):
            self.inspect(v, doc)
        elif method == "GET" and path == "/containers/json":
            for c in doc:
                self.list_item(v, c)
        elif method == "GET" and IMAGE_PATH.match(path):
            self.image(v, doc)
        elif method == "GET" and SERVICE_PATH.match(path):
            for s in (doc if isinstance(doc, list) else [doc]):
                self.service(s)
        else:
            return body
        return compact(doc)

    def inspect(self, v, doc):
        cfg = doc.get("Config") or {}
        hc = doc.get("HostConfig") or {}
        ns = doc.get("NetworkSettings") or {}
        cid = doc.get("Id", "")
        short = cid[:12]
        name = (doc.get("Name") or "").lstrip("/")
        hostname = cfg.get("Hostname") or ""
        if v >= (1, 42):
            hc.pop("KernelMemory", None)  # [V:12]
        if v >= (1, 52):
            hc.pop("KernelMemoryTCP", None)  # [V:61]
        for net, es in (ns.get("Networks") or {}).items():
            if es is None:
                continue
            user_defined = net not in ("bridge", "host", "none")
            aliases = [a for a in (es.get("Aliases") or [])
                       if a not in (short,)]
            if v < (1, 45) and user_defined:
                # [V:34]: added below 1.45; the hostname on Engine 25+.
                extra = [short]
                if self.max >= (1, 44) and hostname:
                    extra.append(hostname)
                for a in extra:
                    if a not in aliases:
                        aliases.append(a)
            es["Aliases"] = aliases or None
            if v >= (1, 44):
                # [V:25]
                dns = [name, short] + [a for a in aliases if a not in
                                       (name, short)]
                es["DNSNames"] = dns if user_defined else None
            if v >= (1, 48):
                es.setdefault("GwPriority", 0)  # [V:46]
        for k in NS_MISSING_ON_29 if self.engine.startswith("29") else []:
            ns.pop(k, None)  # [V:67]
        if v >= (1, 52):
            for k in NS_GONE_152:
                ns.pop(k, None)  # [V:64]
            cfg.pop("MacAddress", None)  # [V:65]
            if empty(cfg.get("OnBuild")):
                cfg.pop("OnBuild", None)  # [V:65]

    def list_item(self, v, c):
        if v >= (1, 52):
            # [V:68], from the Status text 20.10 writes.
            status = c.get("Status") or ""
            health = "none"
            if "(healthy)" in status:
                health = "healthy"
            elif "(unhealthy)" in status:
                health = "unhealthy"
            elif "(health: starting)" in status:
                health = "starting"
            c["Health"] = {"Status": health, "FailingStreak": 0}
        if v >= (1, 48):
            for es in ((c.get("NetworkSettings") or {}).get("Networks")
                       or {}).values():
                if es is not None:
                    es.setdefault("GwPriority", 0)  # [V:46]

    def image(self, v, doc):
        cfg = doc.get("Config") or {}
        if v >= (1, 44):
            doc.pop("VirtualSize", None)  # [V:30]
        if v >= (1, 45):
            doc.pop("Container", None)  # [V:35]
            doc.pop("ContainerConfig", None)
        if v >= (1, 50):
            for k in IMAGE_CONTAINER_ONLY:
                cfg.pop(k, None)  # [V:53]
        if v >= (1, 52):
            for k in IMAGE_CONFIG_OMIT_EMPTY:
                if empty(cfg.get(k)):
                    cfg.pop(k, None)  # [V:72]
            for k in IMAGE_OMIT_EMPTY:
                if empty(doc.get(k)):
                    doc.pop(k, None)

    def service(self, s):
        if not self.engine.startswith("29"):
            return
        spec = s.get("Spec") or {}
        nets = spec.pop("Networks", None)
        tt = spec.setdefault("TaskTemplate", {})
        if nets and empty(tt.get("Networks")):
            tt["Networks"] = nets  # [V:76]: folded on GET at every version

    def event_line(self, version, line):
        """One line of /events in the version's shape."""
        v = version or self.max
        if v < (1, 52):
            return line
        try:
            ev = json.loads(line)
        except ValueError:
            return line
        for k in ("status", "id", "from"):
            ev.pop(k, None)  # [V:70]
        end = b"\r\n" if line.endswith(b"\r\n") else \
            b"\n" if line.endswith(b"\n") else b""
        return compact(ev) + end
