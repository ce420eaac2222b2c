/* The containerd provider's table of functions: containers with running
 * tasks in the configured namespaces of one containerd, through its gRPC
 * API (containerd 1.6 and later). */
#include "containerd.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "log.h"
#include "strv.h"
#include "util.h"

/* containerd's own limit on identifiers (namespaces/validate.go). */
#define MAX_IDENTIFIER 76

static enum rp_strategy
default_strategy(enum rp_kind kind)
{
  (void)kind;
  /* recreate, not restart: a restarted task runs on the same snapshot and
   * keeps whatever was written into it; a recreated one starts from a
   * fresh snapshot of the image. */
  return RP_STRATEGY_RECREATE;
}

/* recreate gives the container a fresh snapshot in place (same id): no
 * replacement runs beside the old task, so there is no start-first; and
 * no pull (the image's layers as they are in containerd's store). */
static const struct rp_capability caps[] = {
    {.kind = RP_KIND_CONTAINER,
     .strategies = RP_STRATEGY_BIT(RP_STRATEGY_RECREATE) |
                   RP_STRATEGY_BIT(RP_STRATEGY_RESTART) |
                   RP_STRATEGY_BIT(RP_STRATEGY_STOP) |
                   RP_STRATEGY_BIT(RP_STRATEGY_REMOVE),
     .start_first = false,
     .pull = false,
     .drain = true,
     .replace = false},
};

int
rp_ctrd_endpoint_parse(const char *endpoint, struct rp_http_endpoint *ep,
                       struct rp_error **err)
{
  const char *spec =
      endpoint && *endpoint ? endpoint : RP_CTRD_DEFAULT_ENDPOINT;
  const char *path = spec;
  if (strncmp(spec, "unix://", 7) == 0)
    path = spec + 7;
  else if (strstr(spec, "://"))
    return rp_error_set(err, RP_ECONFIG,
                        "endpoint %s: containerd is reached through its unix "
                        "socket: unix:///run/containerd/containerd.sock",
                        spec);
  if (path[0] != '/')
    return rp_error_set(err, RP_ECONFIG,
                        "endpoint %s: the socket path must be absolute "
                        "(unix:///path)",
                        spec);
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return rp_error_set(err, RP_ECONFIG,
                        "endpoint %s: the socket path is over %zu bytes", spec,
                        sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
  *ep = (struct rp_http_endpoint){
      /* A host name of its own: libcurl groups connections by host name,
       * and one shared with the docker provider's "localhost" let an
       * HTTP/1.1 request of docker's wait behind containerd's HTTP/2
       * connections (libcurl 7.88).  Over a unix socket the name is never
       * resolved; it is only the :authority containerd ignores. */
      .base_url = rp_xstrdup("http://containerd"),
      .unix_socket = rp_xstrdup(path),
      .http2_prior_knowledge = true,
      /* A connection per call: see rp_http_endpoint.  A local socket makes
       * that cheap. */
      .own_connection = true,
  };
  return 0;
}

static bool
valid_identifier(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > MAX_IDENTIFIER || !isalnum((unsigned char)s[0]))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' &&
        s[i] != '-')
      return false;
  return true;
}

int
rp_ctrd_namespaces(char *const *cfg, bool allow_kubernetes, char ***out,
                   struct rp_error **err)
{
  char def[] = "default";
  char *const fallback[] = {def, NULL};
  char *const *in = cfg && cfg[0] ? cfg : fallback;
  size_t n = rp_strv_len(in);
  cleanup_strv char **v = rp_xcalloc(n + 1, sizeof(*v));
  for (size_t i = 0; i < n; i++) {
    const char *ns = in[i];
    if (!valid_identifier(ns)) {
      return rp_error_set(err, RP_ECONFIG,
                          "namespaces: \"%s\" is not a containerd namespace "
                          "(a letter or digit, then letters, digits, '_', "
                          "'.' or '-', at most %d)",
                          ns, MAX_IDENTIFIER);
    }
    if (strcmp(ns, RP_CTRD_K8S_NAMESPACE) == 0 && !allow_kubernetes) {
      return rp_error_set(err, RP_ECONFIG,
                          "namespaces: %s belongs to the kubelet, which "
                          "recreates its pods' containers itself and would "
                          "fight reaper over them; recycle pods through "
                          "Kubernetes, or set allow_kubernetes: true if you "
                          "really mean it",
                          ns);
    }
    if (rp_strv_contains(v, ns))
      return rp_error_set(err, RP_ECONFIG, "namespaces: \"%s\" is listed twice",
                          ns);
    v[i] = rp_xstrdup(ns);
  }
  *out = RP_STEAL(v);
  return 0;
}

int
rp_ctrd_split_id(const char *id, char *ns, size_t ns_len,
                 const char **container_id)
{
  const char *slash = id ? strchr(id, '/') : NULL;
  if (!slash || slash == id || !slash[1] || (size_t)(slash - id) >= ns_len)
    return -1;
  memcpy(ns, id, (size_t)(slash - id));
  ns[slash - id] = '\0';
  *container_id = slash + 1;
  return 0;
}

/* The settings only a containerd provider takes. */
static const struct rp_provider_option options[] = {
    {.key = "namespaces", .type = RP_OPTION_STRINGS},
    {.key = "allow_kubernetes", .type = RP_OPTION_BOOL},
    {.key = NULL},
};

static int
init(struct rp_provider *p, struct rp_error **err)
{
  struct rp_ctrd *c = rp_xcalloc(1, sizeof(*c));
  c->p = p;
  json_t *list = rp_provider_config_value(p->cfg, "namespaces");
  cleanup_free char **namespaces =
      rp_xcalloc(json_array_size(list) + 1, sizeof(char *));
  for (size_t i = 0; i < json_array_size(list); i++)
    namespaces[i] =
        (char *)(uintptr_t)json_string_value(json_array_get(list, i));
  if (rp_ctrd_endpoint_parse(p->cfg ? p->cfg->endpoint : NULL, &c->ep, err) !=
          0 ||
      rp_ctrd_namespaces(namespaces,
                         rp_provider_config_flag(p->cfg, "allow_kubernetes"),
                         &c->namespaces, err) != 0) {
    rp_http_endpoint_clear(&c->ep);
    free(c);
    return -1;
  }
  p->ctx = c;
  return 0;
}

static int
start(struct rp_provider *p, struct rp_error **err)
{
  return rp_ctrd_track_start(p->ctx, err);
}

static void
resync(struct rp_provider *p)
{
  rp_ctrd_track_resync(p->ctx);
}

static int
recover(struct rp_provider *p, const struct rp_unfinished *items, size_t n,
        rp_recover_item_cb item_cb,
        void (*done_cb)(void *arg, const struct rp_error *err), void *arg,
        struct rp_error **err)
{
  return rp_ctrd_recover(p->ctx, items, n, item_cb, done_cb, arg, err);
}

void
rp_ctrd_check_stopped(struct rp_ctrd *c)
{
  if (c->stop_cb && c->recycles_in_flight == 0 && rp_ctrd_track_idle(c)) {
    void (*cb)(void *) = c->stop_cb;
    c->stop_cb = NULL;
    cb(c->stop_arg);
  }
}

static void
stop(struct rp_provider *p, void (*done_cb)(void *arg), void *arg)
{
  struct rp_ctrd *c = p->ctx;
  c->stopping = true;
  c->stop_cb = done_cb;
  c->stop_arg = arg;
  /* Recycles in flight finish (each call is bounded by a timeout; the
   * operations of a prepared recycle still run), so a stop never leaves a
   * container without its task half way. */
  rp_ctrd_track_stop(c);
  rp_ctrd_check_stopped(c);
}

static void
destroy(struct rp_provider *p)
{
  struct rp_ctrd *c = p->ctx;
  if (!c)
    return;
  rp_ctrd_track_free(c);
  rp_http_endpoint_clear(&c->ep);
  rp_strv_free(c->namespaces);
  free(c);
  p->ctx = NULL;
}

const struct rp_provider_ops rp_provider_containerd = {
    .type = "containerd",
    .default_strategy = default_strategy,
    .options = options,
    .caps = caps,
    .n_caps = sizeof(caps) / sizeof(caps[0]),
    .init = init,
    .start = start,
    .resync = resync,
    .prepare = rp_ctrd_op_prepare,
    .release = rp_ctrd_op_release,
    .start_workload = rp_ctrd_op_start,
    .stop_workload = rp_ctrd_op_stop,
    .remove = rp_ctrd_op_remove,
    .restart = rp_ctrd_op_restart,
    .reset = rp_ctrd_op_reset,
    .drain = rp_ctrd_op_drain,
    .probe = rp_ctrd_op_probe,
    /* No watch: the runner looks by itself (track.c's events are the
     * tracker's). */
    .recover = recover,
    .stop = stop,
    .destroy = destroy,
};
