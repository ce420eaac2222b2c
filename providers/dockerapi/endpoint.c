/* DOCKER_HOST, read the way the docker CLI reads it (docker/cli's
 * cli/flags and docker/client's ParseHostURL):
 *   unix:///path           the engine's socket
 *   tcp://host[:port][/p]  plain HTTP on 2375, or HTTPS on 2376 when
 *                          DOCKER_TLS_VERIFY is non-empty, with ca.pem,
 *                          cert.pem and key.pem from DOCKER_CERT_PATH
 *                          (default ~/.docker)
 *   http://, https://      as written
 * The CLI's rules kept here: a missing ca.pem is an error, a missing
 * cert.pem and key.pem together mean "no client certificate". */
#include "dockerapi.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define DEFAULT_HOST "unix:///var/run/docker.sock"

static bool
env_set(const char *name)
{
  const char *v = getenv(name);
  return v && *v;
}

static char *
cert_dir(void)
{
  const char *dir = getenv("DOCKER_CERT_PATH");
  if (dir && *dir)
    return rp_xstrdup(dir);
  const char *home = getenv("HOME");
  if (home == NULL || *home == '\0') {
    struct passwd *pw = getpwuid(getuid());
    home = pw ? pw->pw_dir : "/";
  }
  return rp_xasprintf("%s/.docker", home);
}

/* ca.pem is required; cert.pem and key.pem go together or not at all. */
static int
tls_files(const char *where, struct rp_http_endpoint *ep, struct rp_error **err)
{
  cleanup_free char *dir = cert_dir();
  cleanup_free char *ca = rp_xasprintf("%s/ca.pem", dir);
  cleanup_free char *cert = rp_xasprintf("%s/cert.pem", dir);
  cleanup_free char *key = rp_xasprintf("%s/key.pem", dir);

  if (access(ca, R_OK) != 0)
    return rp_error_set(err, RP_ECONFIG,
                        "%s: DOCKER_TLS_VERIFY is set but %s cannot be read: "
                        "%s (set DOCKER_CERT_PATH)",
                        where, ca, strerror(errno));
  bool have_cert = access(cert, R_OK) == 0;
  bool have_key = access(key, R_OK) == 0;
  if (have_cert != have_key)
    return rp_error_set(err, RP_ECONFIG, "%s: %s without %s", where,
                        have_cert ? cert : key, have_cert ? key : cert);
  ep->ca_file = RP_STEAL(ca);
  if (have_cert) {
    ep->cert_file = RP_STEAL(cert);
    ep->key_file = RP_STEAL(key);
  }
  return 0;
}

static int
parse_port(const char *s, size_t len, unsigned *port)
{
  unsigned v = 0;
  if (len == 0 || len > 5)
    return -1;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0 || v > 65535)
    return -1;
  *port = v;
  return 0;
}

/* host[:port][/path] after "tcp://", "http://" or "https://". */
static int
parse_network(const char *where, const char *scheme, const char *rest,
              struct rp_http_endpoint *ep, struct rp_error **err)
{
  bool is_tcp = strcmp(scheme, "tcp") == 0;
  bool tls =
      strcmp(scheme, "https") == 0 || (is_tcp && env_set("DOCKER_TLS_VERIFY"));
  const char *slash = strchr(rest, '/');
  size_t auth_len = slash ? (size_t)(slash - rest) : strlen(rest);
  const char *path = slash ? slash : "";
  size_t path_len = strlen(path);
  const char *host = rest;
  size_t host_len;
  const char *port_s = NULL;
  size_t port_len = 0;
  unsigned port = 0;

  if (memchr(rest, '@', auth_len) || strpbrk(rest, "?#"))
    return rp_error_set(err, RP_ECONFIG,
                        "%s: user names, queries and fragments are not "
                        "supported",
                        where);
  if (auth_len > 0 && rest[0] == '[') {
    const char *close = memchr(rest, ']', auth_len);
    if (close == NULL)
      return rp_error_set(err, RP_ECONFIG, "%s: unterminated [IPv6 address]",
                          where);
    host_len = (size_t)(close - rest) + 1;
    if (host_len < auth_len) {
      if (close[1] != ':')
        return rp_error_set(err, RP_ECONFIG,
                            "%s: expected :PORT after the IPv6 address", where);
      port_s = close + 2;
      port_len = auth_len - host_len - 1;
    }
  } else {
    const char *colon = memchr(rest, ':', auth_len);
    host_len = colon ? (size_t)(colon - rest) : auth_len;
    if (colon) {
      port_s = colon + 1;
      port_len = auth_len - host_len - 1;
      if (memchr(port_s, ':', port_len))
        return rp_error_set(err, RP_ECONFIG,
                            "%s: an IPv6 address needs brackets: "
                            "tcp://[::1]:2375",
                            where);
    }
  }
  if (port_s && parse_port(port_s, port_len, &port) < 0)
    return rp_error_set(err, RP_ECONFIG, "%s: invalid port \"%.*s\"", where,
                        (int)port_len, port_s);
  if (port == 0 && is_tcp)
    port = tls ? 2376 : 2375;
  /* tcp://:2375 is the local engine, as Go dials it. */
  if (host_len == 0) {
    host = "localhost";
    host_len = strlen(host);
  }
  while (path_len > 0 && path[path_len - 1] == '/')
    path_len--;

  char portbuf[8] = "";
  if (port)
    snprintf(portbuf, sizeof(portbuf), ":%u", port);
  ep->base_url =
      rp_xasprintf("%s://%.*s%s%.*s", tls ? "https" : "http", (int)host_len,
                   host, portbuf, (int)path_len, path);
  if (tls) {
    ep->verify_peer = true;
    if (env_set("DOCKER_TLS_VERIFY") && tls_files(where, ep, err) < 0)
      return -1;
  }
  return 0;
}

int
rp_dockerapi_endpoint_parse(const char *endpoint, struct rp_http_endpoint *ep,
                            struct rp_error **err)
{
  const char *spec = endpoint;
  const char *source = "endpoint";
  struct rp_http_endpoint out = {0};

  if (spec == NULL || *spec == '\0') {
    spec = getenv("DOCKER_HOST");
    source = "DOCKER_HOST";
  }
  if (spec == NULL || *spec == '\0') {
    spec = DEFAULT_HOST;
    source = "endpoint";
  }
  cleanup_free char *where = rp_xasprintf("%s %s", source, spec);

  const char *sep = strstr(spec, "://");
  if (sep == NULL)
    return rp_error_set(err, RP_ECONFIG,
                        "%s: not an address: expected unix:///path or "
                        "tcp://host:port",
                        where);
  cleanup_free char *scheme = rp_xstrndup(spec, (size_t)(sep - spec));
  const char *rest = sep + 3;

  if (strcmp(scheme, "unix") == 0) {
    if (rest[0] != '/')
      return rp_error_set(err, RP_ECONFIG,
                          "%s: the socket path must be absolute "
                          "(unix:///path)",
                          where);
    if (strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path))
      return rp_error_set(err, RP_ECONFIG,
                          "%s: the socket path is over %zu bytes", where,
                          sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    out.unix_socket = rp_xstrdup(rest);
    out.base_url = rp_xstrdup("http://localhost");
  } else if (strcmp(scheme, "tcp") == 0 || strcmp(scheme, "http") == 0 ||
             strcmp(scheme, "https") == 0) {
    if (parse_network(where, scheme, rest, &out, err) < 0) {
      rp_http_endpoint_clear(&out);
      return -1;
    }
  } else if (strcmp(scheme, "npipe") == 0) {
    return rp_error_set(err, RP_ECONFIG,
                        "%s: npipe:// is a Windows named pipe; on Linux use "
                        "unix:///path or tcp://host:port",
                        where);
  } else if (strcmp(scheme, "ssh") == 0) {
    return rp_error_set(err, RP_ECONFIG,
                        "%s: ssh:// is not supported; forward the engine's "
                        "socket (ssh -nNT -L /run/remote-docker.sock:/var/"
                        "run/docker.sock HOST) and use "
                        "unix:///run/remote-docker.sock",
                        where);
  } else {
    return rp_error_set(err, RP_ECONFIG,
                        "%s: unsupported scheme \"%s\": expected unix:// or "
                        "tcp://",
                        where, scheme);
  }
  *ep = out;
  return 0;
}
