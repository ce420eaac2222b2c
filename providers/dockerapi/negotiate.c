/* Which API version to speak.  As the Go client does: GET /_ping, whose
 * API-Version header is the engine's newest, then min(that, the newest
 * reaper is written for).  And better: GET /version tells the engine's
 * oldest (MinAPIVersion; no header carries it), so that an engine that
 * refuses what reaper would speak is said so at once, in one line that
 * names both sides, instead of a 400 on every call (Engine 29.0 to 29.2
 * refuse everything below 1.44).  A pin (api_version, DOCKER_API_VERSION)
 * is spoken as it is, as the docker CLI does; the engine's range is still
 * read, for that line.  Done again on every reconnect: engines are
 * upgraded in place. */
#include "dockerapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define PING_TIMEOUT_MS 10000

static const struct rp_dockerapi_engine engines[] = {
    {.name = "Docker Engine",
     .shows_fixed_addresses = true,
     .endpoint_mac_always = false,
     .swarm = true},
    /* ENGINE-API-VERSIONS.md section 5, and what Podman 4.3 was seen to do
     * here: IPAMConfig and Config.MacAddress are null in inspect whatever
     * was configured; create applies EndpointSettings.MacAddress at 1.41. */
    {.name = "Podman Engine",
     .shows_fixed_addresses = false,
     .endpoint_mac_always = true,
     .swarm = false,
     /* Seen here: GET /containers/json leaves a paused container out;
      * filters={"status":["running","paused"]} lists both (Docker also
      * takes that filter, but it would leave out its restarting ones). */
     .list_hides_paused = true},
};

struct negotiation {
  struct rp_dockerapi *api; /* borrowed */
  void (*cb)(void *arg, const struct rp_error *err);
  void *arg;
  char header[32]; /* the API-Version header's value */
};

int
rp_dockerapi_init(struct rp_dockerapi *api, struct rp_provider *p,
                  const char *endpoint, const char *pin, struct rp_error **err)
{
  memset(api, 0, sizeof(*api));
  api->p = p;
  api->kind = &engines[0];
  const char *by = "api_version";
  if (!pin || !*pin) {
    pin = getenv("DOCKER_API_VERSION");
    by = "DOCKER_API_VERSION";
  }
  if (pin && *pin) {
    char why[128];
    if (!rp_dockerapi_pin_valid(pin, why, sizeof(why)))
      return rp_error_set(err, RP_ECONFIG, "%s: %s", by, why);
    rp_dockerapi_parse_version(pin, &api->pinned);
    api->pinned_by = by;
  }
  return rp_dockerapi_endpoint_parse(endpoint, &api->ep, err);
}

void
rp_dockerapi_clear(struct rp_dockerapi *api)
{
  rp_http_endpoint_clear(&api->ep);
  api->v = NULL;
}

static void
version_name(int v, char *buf, size_t len)
{
  snprintf(buf, len, "%d.%d", v / 1000, v % 1000);
}

char *
rp_dockerapi_refusal(const struct rp_dockerapi *api)
{
  char lo[16], hi[16], own[16];
  const char *engine = api->engine[0] ? api->engine : "the engine";
  int speaks = api->pinned ? api->pinned : RP_DOCKERAPI_NEWEST;
  version_name(api->engine_min, lo, sizeof(lo));
  version_name(api->engine_max, hi, sizeof(hi));
  version_name(speaks, own, sizeof(own));
  cleanup_free char *range =
      api->engine_min && api->engine_max
          ? rp_xasprintf("accepts API %s to %s", lo, hi)
      : api->engine_max ? rp_xasprintf("speaks API %s at most", hi)
                        : rp_xstrdup("did not say which API versions it "
                                     "accepts");
  cleanup_free char *mine =
      api->pinned
          ? rp_xasprintf("reaper speaks %s (pinned by %s)", own, api->pinned_by)
          : rp_xasprintf("reaper speaks 1.41 to %s", own);
  return rp_xasprintf("%s %s; %s", engine, range, mine);
}

char *
rp_dockerapi_explain(const struct rp_dockerapi *api, const struct rp_error *err)
{
  if (!err)
    return rp_xstrdup("unknown error");
  if (err->code != RP_EVERSION)
    return rp_xstrdup(err->message);
  if (strncmp(err->message, "API version ", 12) == 0)
    return rp_xstrdup(err->message); /* already the line */
  cleanup_free char *line = rp_dockerapi_refusal(api);
  /* "400 Bad Request: client version ...": the engine's own words. */
  const char *words = strstr(err->message, "client version ");
  return rp_xasprintf("API version refused: %s (the engine: %s)", line,
                      words ? words : err->message);
}

/* The decision, once both answers (or the ping's alone) are in. */
static int
decide(struct rp_dockerapi *api, struct rp_error **err)
{
  int want = api->pinned;
  if (!want) {
    want = api->engine_max < RP_DOCKERAPI_NEWEST ? api->engine_max
                                                 : RP_DOCKERAPI_NEWEST;
    if (want < RP_DOCKERAPI_OLDEST) {
      cleanup_free char *why = rp_dockerapi_refusal(api);
      return rp_error_set(err, RP_EVERSION,
                          "API version: the engine is too old: %s", why);
    }
  }
  if ((api->engine_min && want < api->engine_min) ||
      (api->pinned && api->engine_max && want > api->engine_max)) {
    cleanup_free char *why = rp_dockerapi_refusal(api);
    return rp_error_set(err, RP_EVERSION, "API version refused: %s", why);
  }
  api->v = rp_dockerapi_version(want);
  snprintf(api->prefix, sizeof(api->prefix), "/v%s", api->v->name);
  return 0;
}

static void
finish(struct negotiation *n, const struct rp_error *err)
{
  cleanup_error struct rp_error *e = NULL;
  if (!err && decide(n->api, &e) < 0)
    err = e;
  n->cb(n->arg, err);
  free(n);
}

/* "Docker Engine 29.0.0" from GET /version: its first component's name
 * and version (podman names itself there), else the top-level Version. */
static void
read_identity(struct rp_dockerapi *api, json_t *v)
{
  json_t *c0 = json_array_get(json_object_get(v, "Components"), 0);
  const char *name = json_string_value(json_object_get(c0, "Name"));
  const char *ver = json_string_value(json_object_get(c0, "Version"));
  if (!name || !ver) {
    name = NULL;
    ver = json_string_value(json_object_get(v, "Version"));
  }
  /* Docker calls its component just "Engine". */
  if (!name || strcmp(name, "Engine") == 0)
    name = "Docker Engine";
  api->kind = &engines[0];
  for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]); i++)
    if (strcmp(engines[i].name, name) == 0)
      api->kind = &engines[i];
  if (ver)
    snprintf(api->engine, sizeof(api->engine), "%s %s", name, ver);
  int min;
  if (rp_dockerapi_parse_version(
          json_string_value(json_object_get(v, "MinAPIVersion")), &min) == 0)
    api->engine_min = min;
}

static void
version_cb(void *arg, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  struct negotiation *n = arg;
  /* Not fatal: the range is then the ping's alone, and a version the
   * engine refuses is still said clearly at the first call. */
  if (!err && json_is_object(r->body))
    read_identity(n->api, r->body);
  finish(n, NULL);
}

static void
ping_header_cb(void *arg, const char *line, size_t len)
{
  struct negotiation *n = arg;
  static const char name[] = "API-Version:";
  size_t k = sizeof(name) - 1;

  /* Header names are case-insensitive: podman sends "Api-Version". */
  if (len <= k || strncasecmp(line, name, k) != 0)
    return;
  line += k;
  len -= k;
  while (len > 0 && (*line == ' ' || *line == '\t')) {
    line++;
    len--;
  }
  while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' ||
                     line[len - 1] == '\r' || line[len - 1] == '\n'))
    len--;
  if (len >= sizeof(n->header))
    len = sizeof(n->header) - 1;
  memcpy(n->header, line, len);
  n->header[len] = '\0';
}

static void
ping_done_cb(void *arg, const struct rp_http_response *resp,
             const struct rp_error *err)
{
  struct negotiation *n = arg;
  struct rp_dockerapi *api = n->api;
  cleanup_error struct rp_error *e = NULL;

  if (err) {
    finish(n, err);
    return;
  }
  if (resp->status != 200) {
    rp_error_set(&e, RP_EENGINE, "GET /_ping: %ld %.*s", resp->status,
                 (int)(resp->body_len < 200 ? resp->body_len : 200),
                 resp->body ? resp->body : "");
    finish(n, e);
    return;
  }
  int max;
  if (n->header[0] == '\0') {
    rp_error_set(&e, RP_EPROTO,
                 "GET /_ping: no API-Version header (not a Docker engine?)");
  } else if (rp_dockerapi_parse_version(n->header, &max) < 0) {
    rp_error_set(&e, RP_EPROTO, "GET /_ping: API-Version \"%s\": %s", n->header,
                 "not MAJOR.MINOR");
  }
  if (e) {
    finish(n, e);
    return;
  }
  api->engine_max = max;
  /* Unversioned: never refused, whatever the engine's range. */
  if (rp_dockerapi_call_plain(api, "GET", "/version", PING_TIMEOUT_MS,
                              version_cb, n, NULL) < 0)
    finish(n, NULL);
}

int
rp_dockerapi_negotiate(struct rp_dockerapi *api,
                       void (*cb)(void *arg, const struct rp_error *err),
                       void *arg, struct rp_error **err)
{
  if (!api->p || !api->p->http || !api->ep.base_url)
    return rp_error_set(err, RP_EPROTO, "GET /_ping: the client is not set up");
  struct negotiation *n = rp_xcalloc(1, sizeof(*n));
  n->api = api;
  n->cb = cb;
  n->arg = arg;
  /* What the last negotiation learned is stale once the engine may have
   * been replaced. */
  api->engine_min = api->engine_max = 0;
  api->engine[0] = '\0';
  api->kind = &engines[0];
  struct rp_http_request req = {
      .method = "GET",
      .path = "/_ping",
      .timeout_ms = PING_TIMEOUT_MS,
      .max_body = 4096,
      .on_header = ping_header_cb,
  };
  if (rp_http_send(api->p->http, &api->ep, &req, ping_done_cb, n, NULL) < 0) {
    free(n);
    return rp_error_set(err, EIO, "GET /_ping: cannot start the request");
  }
  return 0;
}

json_t *
rp_dockerapi_describe(const struct rp_dockerapi *api)
{
  if (!api->engine_max && !api->engine[0])
    return NULL;
  json_t *o = json_object();
  if (api->engine[0])
    json_object_set_new(o, "engine", json_string(api->engine));
  if (api->v)
    json_object_set_new(o, "api_version", json_string(api->v->name));
  char lo[16], hi[16];
  version_name(api->engine_min, lo, sizeof(lo));
  version_name(api->engine_max, hi, sizeof(hi));
  cleanup_free char *range =
      api->engine_min ? rp_xasprintf("engine accepts %s to %s", lo, hi)
                      : rp_xasprintf("engine speaks up to %s", hi);
  cleanup_free char *how =
      api->pinned ? rp_xasprintf("pinned by %s; %s", api->pinned_by, range)
                  : rp_xasprintf("negotiated; %s", range);
  json_object_set_new(o, "api", json_string(how));
  return o;
}

/* The 64-hex id right after `marker` in s, when all that follows it is
 * `tail`. */
static char *
id_after(const char *s, const char *marker, const char *tail)
{
  const char *p = strstr(s, marker);
  if (!p)
    return NULL;
  p += strlen(marker);
  for (size_t i = 0; i < 64; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
      return NULL;
  if (strcmp(p + 64, tail) != 0)
    return NULL;
  return rp_xstrndup(p, 64);
}

char *
rp_dockerapi_self_container_id(const char *mountinfo_path)
{
  static const char *const points[] = {"/etc/hostname", "/etc/hosts",
                                       "/etc/resolv.conf"};
  cleanup_fclose FILE *f =
      fopen(mountinfo_path ? mountinfo_path : "/proc/self/mountinfo", "r");
  if (!f)
    return NULL;
  char line[4096];
  while (fgets(line, sizeof(line), f)) {
    /* ID PARENT MAJ:MIN ROOT MOUNT-POINT ... */
    char root[2048], point[1024];
    if (sscanf(line, "%*s %*s %*s %2047s %1023s", root, point) != 2)
      continue;
    const char *file = NULL;
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
      if (strcmp(point, points[i]) == 0)
        file = points[i] + 5; /* "hostname", "hosts", "resolv.conf" */
    if (!file)
      continue;
    char docker_tail[64], podman_tail[64];
    snprintf(docker_tail, sizeof(docker_tail), "/%s", file);
    snprintf(podman_tail, sizeof(podman_tail), "/userdata/%s", file);
    char *id = id_after(root, "/containers/", docker_tail);
    if (!id)
      id = id_after(root, "/overlay-containers/", podman_tail);
    if (id)
      return id;
  }
  return NULL;
}
