/* Recycling one container, step by step, each step one API call on the
 * loop.  The plan of steps depends on the strategy:
 *
 *   recreate, stop-first:  inspect, list, MAC, image, build, rename old,
 *                          create, connect, drain, stop old, start, wait
 *                          ready, remove old
 *   recreate, start-first: inspect, list, MAC, image, build, rename old,
 *                          create, connect, start, wait ready, drain, stop
 *                          old, remove old
 *   restart:               inspect, drain, restart, wait ready
 *   stop:                  inspect, drain, stop
 *   remove:                inspect, drain, stop, remove
 *
 * The old container is renamed NAME-reaper-old (so the replacement can take
 * NAME) and is removed only once its replacement runs (and is healthy, when
 * it has a health check), never with its volumes.  When the replacement
 * fails, the steps taken are undone in reverse: the replacement removed,
 * the old container renamed back and started again if it was running. */
#include <stdio.h>
#include <string.h>

#include "docker.h"
#include "log.h"
#include "util.h"

/* A replacement without a health check must stay up this long. */
#define SETTLE_MS 1500
#define POLL_MS 250
/* Drain output kept for the audit line. */
#define DRAIN_OUTPUT_MAX 2048
/* On top of the grace period, for the engine's own work. */
#define STOP_SLACK_MS 30000

enum step {
  S_INSPECT,
  S_LIST_ALL,
  S_MAC,
  S_IMAGE,
  S_BUILD,
  S_DRAIN,
  S_STOP_OLD,
  S_RENAME_OLD,
  S_CREATE,
  S_CONNECT,
  S_START_NEW,
  S_WAIT_READY,
  S_REMOVE_OLD,
  S_RESTART,
  S_DONE,
};

struct rc {
  struct rp_docker *d; /* borrowed */
  rp_recycle_cb cb;
  void *arg;
  enum rp_strategy strategy;
  bool want_start_first;
  bool pull;
  int64_t grace_ms, health_timeout_ms, drain_timeout_ms;
  char **drain; /* owned argv or NULL */

  enum step plan[16];
  size_t n_plan, pc;

  char *id;           /* owned: the old container */
  char *name;         /* owned: its name */
  int64_t started_ms; /* the start the core found due */
  char *old_name;     /* owned: NAME-reaper-old */
  json_t *inspect;    /* owned: the old container, before anything */
  json_t *image;      /* owned: the image to create from */
  char *image_ref;    /* owned: what create is given, NULL = old image ID */
  json_t *id_names;   /* owned: container id -> name */
  /* owned: the MAC address the user configured ("" none), NULL until the
   * MAC step */
  char *configured_mac;
  json_t *body;       /* owned: the create request */
  json_t *extra_nets; /* owned: networks to connect after create */
  size_t next_net;
  char *new_id; /* owned */
  bool was_running, renamed, stopped, created;
  bool start_first;

  /* waiting for the replacement (or the restarted container) */
  uv_timer_t timer;
  int64_t ready_deadline;
  int64_t running_since;
  char *ready_id; /* borrowed: new_id or id */

  char *exec_id;          /* owned: the drain hook's exec */
  json_t *details;        /* owned: what goes to the audit line */
  struct rp_error *error; /* owned: the failure being rolled back */
  bool rollback_ok;
  int rollback_step;
};

static void advance(struct rc *rc);
static void fail(struct rc *rc, const struct rp_error *err, const char *what);
static void rollback(struct rc *rc);

/* --- finishing ---------------------------------------------------------- */

static void
rc_free(struct rc *rc)
{
  if (rc->drain)
    for (char **a = rc->drain; *a; a++)
      free(*a);
  free(rc->drain);
  free(rc->id);
  free(rc->name);
  free(rc->old_name);
  json_decref(rc->inspect);
  json_decref(rc->image);
  free(rc->image_ref);
  free(rc->configured_mac);
  json_decref(rc->id_names);
  json_decref(rc->body);
  json_decref(rc->extra_nets);
  free(rc->new_id);
  free(rc->exec_id);
  json_decref(rc->details);
  rp_error_free(rc->error);
  free(rc);
}

static void
timer_closed_cb(uv_handle_t *h)
{
  struct rc *rc = h->data;
  struct rp_docker *d = rc->d;
  rc_free(rc);
  d->recycles_in_flight--;
  rp_docker_check_stopped(d);
}

/* Reports the outcome and frees rc once its timer is closed. */
static void
finish(struct rc *rc, int status, bool rolled_back)
{
  struct rp_recycle_result res = {
      .replacement_id = status != 0                            ? NULL
                        : rc->strategy == RP_STRATEGY_RECREATE ? rc->new_id
                        : rc->strategy == RP_STRATEGY_RESTART  ? rc->id
                                                               : NULL,
      .rolled_back = rolled_back,
      .details = json_object_size(rc->details) ? rc->details : NULL,
  };
  rc->cb(rc->arg, status, &res, status == 0 ? NULL : rc->error);
  uv_close((uv_handle_t *)&rc->timer, timer_closed_cb);
}

/* --- API calls ---------------------------------------------------------- */

typedef void (*step_ok_fn)(struct rc *rc, const struct rp_dockerapi_reply *r);

struct pending {
  struct rc *rc;
  step_ok_fn ok;    /* on success */
  const char *what; /* for errors: "stop old container" */
  bool tolerant;    /* rollback: errors are noted, the caller goes on */
  void (*then)(struct rc *rc, const struct rp_error *err); /* tolerant */
  /* tolerant, with the reply (NULL on error) */
  void (*then_reply)(struct rc *rc, const struct rp_dockerapi_reply *r,
                     const struct rp_error *err);
};

static void
pending_cb(void *arg, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  struct pending pd = *(struct pending *)arg;
  free(arg);
  if (pd.tolerant) {
    if (pd.then_reply)
      pd.then_reply(pd.rc, err ? NULL : r, err);
    else
      pd.then(pd.rc, err);
    return;
  }
  if (err) {
    fail(pd.rc, err, pd.what);
    return;
  }
  pd.ok(pd.rc, r);
}

static void
api(struct rc *rc, const char *method, const char *path, const json_t *body,
    int64_t timeout_ms, const char *what, step_ok_fn ok)
{
  struct pending *pd = rp_xcalloc(1, sizeof(*pd));
  *pd = (struct pending){.rc = rc, .ok = ok, .what = what};
  cleanup_error struct rp_error *err = NULL;
  if (rp_dockerapi_call(&rc->d->api, method, path, body, timeout_ms, pending_cb,
                        pd, &err) != 0) {
    free(pd);
    fail(rc, err, what);
  }
}

/* For rollback steps: whatever happens, `then` runs with the error. */
static void
api_tolerant(struct rc *rc, const char *method, const char *path,
             int64_t timeout_ms,
             void (*then)(struct rc *rc, const struct rp_error *err))
{
  struct pending *pd = rp_xcalloc(1, sizeof(*pd));
  *pd = (struct pending){.rc = rc, .tolerant = true, .then = then};
  cleanup_error struct rp_error *err = NULL;
  if (rp_dockerapi_call(&rc->d->api, method, path, NULL, timeout_ms, pending_cb,
                        pd, &err) != 0) {
    free(pd);
    then(rc, err);
  }
}

static void
ok_advance(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  (void)r;
  advance(rc);
}

static int64_t
stop_timeout_ms(const struct rc *rc)
{
  return rc->grace_ms + STOP_SLACK_MS;
}

static char *
stop_path(const struct rc *rc, const char *id)
{
  /* ?t= is whole seconds; round a sub-second grace up. */
  return rp_xasprintf("/containers/%s/stop?t=%lld", id,
                      (long long)((rc->grace_ms + 999) / 1000));
}

/* --- steps -------------------------------------------------------------- */

static void
inspected(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  if (!json_is_object(r->body) ||
      !json_is_object(json_object_get(r->body, "Config"))) {
    struct rp_error e = {.code = RP_EPROTO};
    char msg[] = "the engine's answer is not a container";
    e.message = msg;
    fail(rc, &e, "inspect");
    return;
  }
  json_t *state = json_object_get(r->body, "State");
  /* The core found this container due while it ran since started_ms; by
   * now (an answer that came late, an event not yet read) it may have
   * stopped or started again.  Recycling it then would start a container
   * someone stopped, or cut a new life short: do nothing, say why. */
  int64_t started = 0;
  const char *changed = NULL;
  if (!json_is_true(json_object_get(state, "Running")) ||
      json_is_true(json_object_get(state, "Restarting")))
    changed = "it is no longer running";
  else if (rc->started_ms > 0 &&
           (rp_parse_time_ms(
                json_string_value(json_object_get(state, "StartedAt")),
                &started) != 0 ||
            started != rc->started_ms))
    changed = "it started again since it was found due";
  if (changed) {
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_ECONFLICT, "%s: nothing done", changed);
    fail(rc, e, "inspect");
    rp_error_free(e);
    return;
  }
  rc->inspect = json_incref(r->body);
  rc->was_running = true;
  const char *name = json_string_value(json_object_get(r->body, "Name"));
  if (name) {
    free(rc->name);
    rc->name = rp_xstrdup(name[0] == '/' ? name + 1 : name);
  }
  advance(rc);
}

static void
step_inspect(struct rc *rc)
{
  cleanup_free char *path = rp_xasprintf("/containers/%s/json", rc->id);
  api(rc, "GET", path, NULL, 0, "inspect", inspected);
}

/* Every container's name by id (full and short), to rewrite references; and
 * a refusal when another container shares this one's network namespace. */
static void
listed_all(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  rc->id_names = json_object();
  cleanup_json json_t *dependents = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(r->body, i, c)
  {
    const char *id = json_string_value(json_object_get(c, "Id"));
    const char *name =
        json_string_value(json_array_get(json_object_get(c, "Names"), 0));
    if (!id || !name)
      continue;
    if (name[0] == '/')
      name++;
    json_object_set_new(rc->id_names, id, json_string(name));
    if (strlen(id) >= 12) {
      char short_id[13];
      memcpy(short_id, id, 12);
      short_id[12] = '\0';
      json_object_set_new(rc->id_names, short_id, json_string(name));
    }
    const char *mode = json_string_value(
        json_object_get(json_object_get(c, "HostConfig"), "NetworkMode"));
    if (mode && strncmp(mode, "container:", 10) == 0 &&
        strcmp(id, rc->id) != 0) {
      const char *target = mode + 10;
      if (strcmp(target, rc->id) == 0 || strcmp(target, rc->name) == 0 ||
          (strlen(target) >= 12 &&
           strncmp(rc->id, target, strlen(target)) == 0))
        json_array_append_new(dependents, json_string(name));
    }
  }
  if (json_array_size(dependents) > 0) {
    cleanup_free char *names = json_dumps(dependents, JSON_COMPACT);
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_ECONFLICT,
                 "refused: %s share this container's network namespace "
                 "(network_mode container:%s) and would lose their network; "
                 "recycle them together with it, or exclude it",
                 names, rc->name);
    fail(rc, e, "check dependents");
    rp_error_free(e);
    return;
  }
  advance(rc);
}

static void
step_list_all(struct rc *rc)
{
  api(rc, "GET", "/containers/json?all=1", NULL, 0, "list containers",
      listed_all);
}

/* The MAC address the user configured for the main network.  Inspect shows
 * it as Config.MacAddress below API 1.52, and from 1.52 shows only the
 * address in use, generated or not: it is then read at 1.51, which every
 * engine that speaks 1.52 accepts (Engine 29: 1.44 and newer).  Should an
 * engine one day refuse 1.51 too, the address in use is kept: a generated
 * one copied costs only start-first (it falls back), a configured one lost
 * would lose the user's configuration. */
static const char *
main_network_mac(const json_t *inspect)
{
  json_t *nets = json_object_get(
      json_object_get((json_t *)(uintptr_t)inspect, "NetworkSettings"),
      "Networks");
  const char *primary = rp_docker_primary_network(inspect);
  const char *mac = json_string_value(json_object_get(
      json_object_get(nets, primary ? primary : ""), "MacAddress"));
  return mac ? mac : "";
}

static void
mac_read(struct rc *rc, const struct rp_dockerapi_reply *r,
         const struct rp_error *err)
{
  const char *mac = NULL;
  if (!err && r && json_is_object(r->body))
    mac = json_string_value(
        json_object_get(json_object_get(r->body, "Config"), "MacAddress"));
  if (!mac) {
    mac = main_network_mac(rc->inspect);
    json_object_set_new(rc->details, "mac_address",
                        json_string("not known at this API version: the "
                                    "address in use is kept"));
  }
  rc->configured_mac = rp_xstrdup(mac);
  advance(rc);
}

static void
step_mac(struct rc *rc)
{
  const struct rp_dockerapi *api = &rc->d->api;
  const struct rp_dockerapi_version *v =
      api->v ? api->v : rp_dockerapi_version(RP_DOCKERAPI_OLDEST);
  if (!api->kind->shows_fixed_addresses) {
    /* Whether it was fixed cannot be known: it is kept. */
    rc->configured_mac = rp_xstrdup(main_network_mac(rc->inspect));
    advance(rc);
    return;
  }
  if (v->inspect_configured_mac) {
    const char *mac = json_string_value(
        json_object_get(json_object_get(rc->inspect, "Config"), "MacAddress"));
    rc->configured_mac = rp_xstrdup(mac ? mac : "");
    advance(rc);
    return;
  }
  const struct rp_dockerapi_version *older =
      rp_dockerapi_version(RP_DOCKERAPI_V(1, 51));
  if (api->engine_min && api->engine_min > older->number) {
    mac_read(rc, NULL, NULL);
    return;
  }
  cleanup_free char *path = rp_xasprintf("/containers/%s/json", rc->id);
  struct pending *pd = rp_xcalloc(1, sizeof(*pd));
  *pd = (struct pending){.rc = rc, .tolerant = true, .then_reply = mac_read};
  cleanup_error struct rp_error *err = NULL;
  if (rp_dockerapi_call_at(&rc->d->api, older, "GET", path, NULL, 0, pending_cb,
                           pd, &err) != 0) {
    free(pd);
    mac_read(rc, NULL, err);
  }
}

/* rc->image is always the image the OLD container ran: the body builder
 * compares the old configuration with that image's defaults. */
static void
image_inspected(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  rc->image = json_incref(r->body);
  advance(rc);
}

static void inspect_image(struct rc *rc, const char *ref);

/* After a pull: the replacement is created from the pulled image's id. */
static void
pulled_inspected(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  const char *id = json_string_value(json_object_get(r->body, "Id"));
  const char *old = json_string_value(json_object_get(rc->inspect, "Image"));
  if (id) {
    free(rc->image_ref);
    rc->image_ref = rp_xstrdup(id);
    json_object_set_new(rc->details, "image", json_string(id));
    if (old && strcmp(old, id) != 0)
      json_object_set_new(rc->details, "previous_image", json_string(old));
  }
  inspect_image(rc, old ? old : id ? id : "");
}

static void
inspect_image(struct rc *rc, const char *ref)
{
  cleanup_free char *esc = rp_url_escape(ref);
  cleanup_free char *path = rp_xasprintf("/images/%s/json", esc);
  api(rc, "GET", path, NULL, 0, "inspect image", image_inspected);
}

static void
pulled(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  /* The pull answers 200 and reports failure in its progress stream. */
  /* "error" and (from API 1.48 the only one not deprecated) "errorDetail";
   * Engine 29 still sends both. */
  const char *p = r->raw ? strstr(r->raw, "\"error\"") : NULL;
  if (!p && r->raw)
    p = strstr(r->raw, "\"errorDetail\"");
  if (p) {
    cleanup_free char *msg = rp_xstrndup(p, strcspn(p, "\n"));
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EENGINE, "%s", msg);
    fail(rc, e, "pull image");
    rp_error_free(e);
    return;
  }
  const char *ref = json_string_value(
      json_object_get(json_object_get(rc->inspect, "Config"), "Image"));
  cleanup_free char *esc = rp_url_escape(ref ? ref : "");
  cleanup_free char *path = rp_xasprintf("/images/%s/json", esc);
  api(rc, "GET", path, NULL, 0, "inspect pulled image", pulled_inspected);
}

static void
by_name_cb(struct rc *rc, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  const char *id = json_string_value(json_object_get(rc->inspect, "Image"));
  const char *ref = json_string_value(
      json_object_get(json_object_get(rc->inspect, "Config"), "Image"));
  if (!err && r && json_is_object(r->body) && id &&
      json_equal(json_object_get(r->body, "Id"),
                 json_object_get(rc->inspect, "Image"))) {
    rc->image = json_incref(r->body);
    free(rc->image_ref);
    rc->image_ref = rp_xstrdup(ref);
    advance(rc);
    return;
  }
  /* The name moved to another image (or is gone): keep the exact image. */
  inspect_image(rc, id ? id : ref);
}

static void
step_image(struct rc *rc)
{
  const char *ref = json_string_value(
      json_object_get(json_object_get(rc->inspect, "Config"), "Image"));
  if (rc->pull && ref && strncmp(ref, "sha256:", 7) != 0) {
    cleanup_free char *esc = rp_url_escape(ref);
    cleanup_free char *path = rp_xasprintf("/images/create?fromImage=%s", esc);
    api(rc, "POST", path, NULL, 10 * 60 * 1000, "pull image", pulled);
    return;
  }
  /* Without a pull, the replacement runs the very image the old one ran.
   * It is created by name (so `docker ps` and a later pull still know the
   * name) only while the name still points at that image. */
  const char *id = json_string_value(json_object_get(rc->inspect, "Image"));
  if (ref && id && strncmp(ref, "sha256:", 7) != 0) {
    cleanup_free char *esc = rp_url_escape(ref);
    cleanup_free char *path = rp_xasprintf("/images/%s/json", esc);
    struct pending *pd = rp_xcalloc(1, sizeof(*pd));
    *pd =
        (struct pending){.rc = rc, .tolerant = true, .then_reply = by_name_cb};
    cleanup_error struct rp_error *err = NULL;
    if (rp_dockerapi_call(&rc->d->api, "GET", path, NULL, 0, pending_cb, pd,
                          &err) == 0)
      return;
    free(pd);
  }
  inspect_image(rc, id ? id : ref ? ref : "");
}

static void
add_steps(struct rc *rc, const enum step *steps, size_t n)
{
  for (size_t i = 0; i < n && rc->n_plan < RP_ARRAY_LEN(rc->plan); i++)
    rc->plan[rc->n_plan++] = steps[i];
}

static void
step_build(struct rc *rc)
{
  cleanup_json json_t *labels =
      json_pack("{s:s}", RP_DOCKER_LABEL_REPLACES, rc->id);
  const struct rp_dockerapi *api = &rc->d->api;
  const struct rp_dockerapi_version *v =
      api->v ? api->v : rp_dockerapi_version(RP_DOCKERAPI_OLDEST);
  struct rp_docker_create_opts opts = {
      .image = rc->image_ref,
      .id_names = rc->id_names,
      .extra_labels = labels,
      .version = v,
      .configured_mac = rc->configured_mac,
      /* Engine 25 (API 1.44) and newer, when spoken to below 1.45. */
      .hostname_alias_added = v->inspect_aliases_add_short_id &&
                              api->engine_max >= RP_DOCKERAPI_V(1, 44),
      .keep_addresses_in_use = !api->kind->shows_fixed_addresses,
      .endpoint_mac_always = api->kind->endpoint_mac_always,
  };
  cleanup_error struct rp_error *err = NULL;
  if (rp_docker_create_body(rc->inspect, rc->image, &opts, &rc->body,
                            &rc->extra_nets, &err) != 0) {
    fail(rc, err, "build the replacement's configuration");
    return;
  }
  /* Start-first needs the old container's fixed resources free while both
   * run: host ports, static addresses and a user-set MAC address clash. */
  const char *why = rp_docker_body_clashes(rc->body, rc->extra_nets);
  rc->start_first = rc->want_start_first && !why;
  if (rc->want_start_first && why) {
    rp_info("provider %s: %s: start-first falls back to stop-first: %s",
            rc->d->p->name, rc->name, why);
    json_object_set_new(rc->details, "order_fallback", json_string(why));
  }
  json_object_set_new(
      rc->details, "order",
      json_string(rc->start_first ? "start-first" : "stop-first"));
  static const enum step start_first[] = {S_RENAME_OLD, S_CREATE,     S_CONNECT,
                                          S_START_NEW,  S_WAIT_READY, S_DRAIN,
                                          S_STOP_OLD,   S_REMOVE_OLD, S_DONE};
  /* Stop-first still creates (and connects) the replacement before the old
   * container stops: whatever makes a create fail (a bind mount whose
   * source is gone, an image that is missing) then fails while the old
   * container still runs. */
  static const enum step stop_first[] = {
      S_RENAME_OLD, S_CREATE,     S_CONNECT,    S_DRAIN, S_STOP_OLD,
      S_START_NEW,  S_WAIT_READY, S_REMOVE_OLD, S_DONE};
  if (rc->start_first)
    add_steps(rc, start_first, RP_ARRAY_LEN(start_first));
  else
    add_steps(rc, stop_first, RP_ARRAY_LEN(stop_first));
  advance(rc);
}

/* The drain hook: exec'd inside the container; its outcome is recorded and
 * never stops the recycle (a preStop hook that fails still ends in a
 * stop). */
static void drain_record(struct rc *rc, const char *key, json_t *value);

static void
drain_inspected(void *arg, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct rc *rc = arg;
  if (err)
    drain_record(rc, "error", json_string(err->message));
  else
    drain_record(rc, "exit_code",
                 json_incref(json_object_get(r->body, "ExitCode")));
  advance(rc);
}

/* The exec stream multiplexes stdout and stderr in frames of an 8-byte
 * header (stream, 0, 0, 0, big-endian length) and the bytes. */
static json_t *
demux_output(const char *raw, size_t len)
{
  char out[DRAIN_OUTPUT_MAX + 1];
  size_t n = 0, i = 0;
  while (i + 8 <= len && n < DRAIN_OUTPUT_MAX) {
    const unsigned char *h = (const unsigned char *)raw + i;
    size_t flen = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 |
                  (size_t)h[7];
    if (h[0] > 2 || h[1] || h[2] || h[3]) { /* not multiplexed: raw text */
      n = 0;
      i = 0;
      for (; i < len && n < DRAIN_OUTPUT_MAX; i++)
        out[n++] = raw[i];
      break;
    }
    i += 8;
    for (size_t k = 0; k < flen && i < len && n < DRAIN_OUTPUT_MAX; k++)
      out[n++] = raw[i++];
  }
  out[n] = '\0';
  /* Keep it valid UTF-8 for the audit line. */
  for (size_t k = 0; k < n; k++)
    if ((unsigned char)out[k] >= 0x80 ||
        (out[k] < 0x20 && out[k] != '\n' && out[k] != '\t'))
      out[k] = '?';
  return json_stringn(out, n);
}

static void
drain_started(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct rc *rc = arg;
  if (err && err->code == RP_ETIMEOUT)
    drain_record(rc, "timed_out", json_true());
  else if (err)
    drain_record(rc, "error", json_string(err->message));
  else if (r->raw)
    drain_record(rc, "output", demux_output(r->raw, r->raw_len));
  cleanup_free char *path = rp_xasprintf("/exec/%s/json", rc->exec_id);
  cleanup_error struct rp_error *cerr = NULL;
  if (rp_dockerapi_call(&rc->d->api, "GET", path, NULL, 0, drain_inspected, rc,
                        &cerr) != 0) {
    drain_record(rc, "error", json_string(cerr->message));
    advance(rc);
  }
}

static void
drain_created(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct rc *rc = arg;
  const char *id =
      err ? NULL : json_string_value(json_object_get(r->body, "Id"));
  if (!id) {
    drain_record(rc, "error",
                 json_string(err ? err->message : "exec create: no Id"));
    advance(rc);
    return;
  }
  rc->exec_id = rp_xstrdup(id);
  cleanup_free char *path = rp_xasprintf("/exec/%s/start", id);
  cleanup_json json_t *body = json_pack("{s:b, s:b}", "Detach", 0, "Tty", 0);
  cleanup_error struct rp_error *cerr = NULL;
  if (rp_dockerapi_call(&rc->d->api, "POST", path, body, rc->drain_timeout_ms,
                        drain_started, rc, &cerr) != 0) {
    drain_record(rc, "error", json_string(cerr->message));
    advance(rc);
  }
}

static void
drain_record(struct rc *rc, const char *key, json_t *value)
{
  json_t *drain = json_object_get(rc->details, "drain");
  if (!drain) {
    drain = json_object();
    json_t *argv = json_array();
    for (char **a = rc->drain; a && *a; a++)
      json_array_append_new(argv, json_string(*a));
    json_object_set_new(drain, "argv", argv);
    json_object_set_new(rc->details, "drain", drain);
  }
  json_object_set_new(drain, key, value ? value : json_null());
}

static void
step_drain(struct rc *rc)
{
  if (!rc->drain || !rc->was_running) {
    advance(rc);
    return;
  }
  rp_info("provider %s: %s: running the drain hook", rc->d->p->name, rc->name);
  json_t *argv = json_array();
  for (char **a = rc->drain; *a; a++)
    json_array_append_new(argv, json_string(*a));
  cleanup_json json_t *body = json_pack("{s:b, s:b, s:o}", "AttachStdout", 1,
                                        "AttachStderr", 1, "Cmd", argv);
  cleanup_free char *path = rp_xasprintf("/containers/%s/exec", rc->id);
  cleanup_error struct rp_error *err = NULL;
  if (rp_dockerapi_call(&rc->d->api, "POST", path, body, 0, drain_created, rc,
                        &err) != 0) {
    drain_record(rc, "error", json_string(err->message));
    advance(rc);
  }
}

static void
stopped_old(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  (void)r;
  rc->stopped = true;
  RP_CRASHPOINT("docker-after-stop-old");
  advance(rc);
}

static void
step_stop_old(struct rc *rc)
{
  if (!rc->was_running && rc->strategy != RP_STRATEGY_RECREATE) {
    advance(rc);
    return;
  }
  cleanup_free char *path = stop_path(rc, rc->id);
  api(rc, "POST", path, NULL, stop_timeout_ms(rc), "stop old container",
      stopped_old);
}

static void
renamed_old(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  (void)r;
  rc->renamed = true;
  RP_CRASHPOINT("docker-after-rename");
  advance(rc);
}

static void
step_rename_old(struct rc *rc)
{
  rc->old_name = rp_xasprintf("%s%s", rc->name, RP_DOCKER_OLD_SUFFIX);
  cleanup_free char *esc = rp_url_escape(rc->old_name);
  cleanup_free char *path =
      rp_xasprintf("/containers/%s/rename?name=%s", rc->id, esc);
  api(rc, "POST", path, NULL, 0, "rename old container", renamed_old);
}

static void
created(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  const char *id = json_string_value(json_object_get(r->body, "Id"));
  if (!id) {
    struct rp_error e = {.code = RP_EPROTO};
    char msg[] = "the engine's answer has no Id";
    e.message = msg;
    fail(rc, &e, "create replacement");
    return;
  }
  rc->new_id = rp_xstrdup(id);
  rc->created = true;
  RP_CRASHPOINT("docker-after-create");
  advance(rc);
}

static void
step_create(struct rc *rc)
{
  cleanup_free char *esc = rp_url_escape(rc->name);
  cleanup_free char *path = rp_xasprintf("/containers/create?name=%s", esc);
  api(rc, "POST", path, rc->body, 0, "create replacement", created);
}

static void
connected(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  (void)r;
  rc->next_net++;
  rc->pc--; /* again, for the next network */
  advance(rc);
}

static void
step_connect(struct rc *rc)
{
  json_t *net = json_array_get(rc->extra_nets, rc->next_net);
  if (!net) {
    advance(rc);
    return;
  }
  cleanup_free char *esc =
      rp_url_escape(json_string_value(json_object_get(net, "name")));
  cleanup_free char *path = rp_xasprintf("/networks/%s/connect", esc);
  json_t *config = json_object_get(net, "config");
  cleanup_json json_t *body =
      json_pack("{s:s, s:O}", "Container", rc->new_id, "EndpointConfig",
                config ? config : json_object());
  api(rc, "POST", path, body, 0, "connect network", connected);
}

static void
started_new(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  (void)r;
  RP_CRASHPOINT("docker-after-start");
  advance(rc);
}

static void
step_start_new(struct rc *rc)
{
  cleanup_free char *path = rp_xasprintf("/containers/%s/start", rc->new_id);
  api(rc, "POST", path, NULL, 0, "start replacement", started_new);
}

/* Waiting: poll inspect until running and healthy (with a health check) or
 * running for SETTLE_MS (without), within health_timeout. */
static void poll_ready(struct rc *rc);

static void
poll_timer_cb(uv_timer_t *t)
{
  poll_ready(t->data);
}

static void
ready_inspected(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  json_t *state = json_object_get(r->body, "State");
  const char *status = json_string_value(json_object_get(state, "Status"));
  json_int_t restarts =
      json_integer_value(json_object_get(r->body, "RestartCount"));
  int64_t now = rp_mono_ms();
  struct rp_error *e = NULL;
  if (!json_is_true(json_object_get(state, "Running")) ||
      json_is_true(json_object_get(state, "Restarting"))) {
    rp_error_set(
        &e, RP_EENGINE, "it is %s (exit code %lld%s%s)",
        status ? status : "not running",
        (long long)json_integer_value(json_object_get(state, "ExitCode")),
        json_string_length(json_object_get(state, "Error")) ? ": " : "",
        json_string_value(json_object_get(state, "Error"))
            ? json_string_value(json_object_get(state, "Error"))
            : "");
  } else if (restarts > 0 && rc->ready_id == rc->new_id) {
    rp_error_set(&e, RP_EENGINE, "it restarted %lld times",
                 (long long)restarts);
  } else {
    json_t *health = json_object_get(state, "Health");
    const char *hs = json_string_value(json_object_get(health, "Status"));
    /* An empty status (podman) or none means no health check. */
    if (hs && !*hs)
      hs = NULL;
    if (hs && strcmp(hs, "healthy") == 0) {
      json_object_set_new(rc->details, "health", json_string("healthy"));
      advance(rc);
      return;
    }
    if (hs && strcmp(hs, "unhealthy") == 0) {
      rp_error_set(&e, RP_EENGINE, "its health check says unhealthy");
    } else if (!hs) {
      if (!rc->running_since)
        rc->running_since = now;
      if (now - rc->running_since >= SETTLE_MS) {
        advance(rc);
        return;
      }
    }
  }
  if (!e && now >= rc->ready_deadline)
    rp_error_set(&e, RP_ETIMEOUT, "not %s within %llds",
                 json_string_length(json_object_get(
                     json_object_get(state, "Health"), "Status"))
                     ? "healthy"
                     : "running",
                 (long long)(rc->health_timeout_ms / 1000));
  if (e) {
    fail(rc, e, "replacement not ready");
    rp_error_free(e);
    return;
  }
  uv_timer_start(&rc->timer, poll_timer_cb, POLL_MS, 0);
}

static void
poll_ready(struct rc *rc)
{
  cleanup_free char *path = rp_xasprintf("/containers/%s/json", rc->ready_id);
  api(rc, "GET", path, NULL, 0, "inspect replacement", ready_inspected);
}

static void
step_wait_ready(struct rc *rc)
{
  rc->ready_id = rc->new_id ? rc->new_id : rc->id;
  rc->ready_deadline = rp_mono_ms() + rc->health_timeout_ms;
  rc->running_since = 0;
  uv_timer_start(&rc->timer, poll_timer_cb, POLL_MS, 0);
}

static void
removed_old(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  (void)r;
  RP_CRASHPOINT("docker-after-remove-old");
  advance(rc);
}

static void
stopped_again(struct rc *rc, const struct rp_dockerapi_reply *r)
{
  (void)r;
  /* Never ?v=1: the replacement uses the same volumes. */
  cleanup_free char *path = rp_xasprintf("/containers/%s?force=1", rc->id);
  api(rc, "DELETE", path, NULL, stop_timeout_ms(rc), "remove old container",
      removed_old);
}

/* The old container runs again (someone restarted it meanwhile): stop it
 * again, gracefully, before it goes. */
static void
remove_refused(struct rc *rc, const struct rp_dockerapi_reply *r,
               const struct rp_error *err)
{
  if (!err) {
    removed_old(rc, r);
    return;
  }
  if (err->code != RP_ECONFLICT) {
    fail(rc, err, "remove old container");
    return;
  }
  rp_warn("provider %s: %s: the old container runs again; stopping it again",
          rc->d->p->name, rc->name);
  cleanup_free char *path = stop_path(rc, rc->id);
  api(rc, "POST", path, NULL, stop_timeout_ms(rc), "stop old container again",
      stopped_again);
}

static void
step_remove_old(struct rc *rc)
{
  /* Never ?v=1: the replacement uses the same volumes. */
  cleanup_free char *path = rp_xasprintf("/containers/%s", rc->id);
  struct pending *pd = rp_xcalloc(1, sizeof(*pd));
  *pd = (struct pending){
      .rc = rc, .tolerant = true, .then_reply = remove_refused};
  cleanup_error struct rp_error *err = NULL;
  if (rp_dockerapi_call(&rc->d->api, "DELETE", path, NULL, stop_timeout_ms(rc),
                        pending_cb, pd, &err) != 0) {
    free(pd);
    fail(rc, err, "remove old container");
  }
}

static void
step_restart(struct rc *rc)
{
  cleanup_free char *path =
      rp_xasprintf("/containers/%s/restart?t=%lld", rc->id,
                   (long long)((rc->grace_ms + 999) / 1000));
  api(rc, "POST", path, NULL, stop_timeout_ms(rc), "restart", ok_advance);
}

static void
advance(struct rc *rc)
{
  if (rc->pc >= rc->n_plan) {
    finish(rc, 0, false);
    return;
  }
  enum step s = rc->plan[rc->pc++];
  switch (s) {
  case S_INSPECT:
    step_inspect(rc);
    break;
  case S_MAC:
    step_mac(rc);
    break;
  case S_LIST_ALL:
    step_list_all(rc);
    break;
  case S_IMAGE:
    step_image(rc);
    break;
  case S_BUILD:
    step_build(rc);
    break;
  case S_DRAIN:
    step_drain(rc);
    break;
  case S_STOP_OLD:
    step_stop_old(rc);
    break;
  case S_RENAME_OLD:
    step_rename_old(rc);
    break;
  case S_CREATE:
    step_create(rc);
    break;
  case S_CONNECT:
    step_connect(rc);
    break;
  case S_START_NEW:
    step_start_new(rc);
    break;
  case S_WAIT_READY:
    step_wait_ready(rc);
    break;
  case S_REMOVE_OLD:
    step_remove_old(rc);
    break;
  case S_RESTART:
    step_restart(rc);
    break;
  case S_DONE:
    finish(rc, 0, false);
    break;
  }
}

/* --- failure and rollback ----------------------------------------------- */

static void
fail(struct rc *rc, const struct rp_error *err, const char *what)
{
  enum step at = rc->pc ? rc->plan[rc->pc - 1] : S_INSPECT;
  if (!rc->error) {
    rc->error = rp_error_dup(err);
    rp_error_prefix(&rc->error, "%s", what);
  }
  /* Past the point where the replacement runs, nothing is undone: the
   * replacement stays, and what is left of the old one is said. */
  if (rc->strategy == RP_STRATEGY_RECREATE &&
      (at == S_REMOVE_OLD || (rc->start_first && (at == S_STOP_OLD)))) {
    rp_error_prefix(&rc->error,
                    "the replacement %.12s runs; the old container remains "
                    "as %s",
                    rc->new_id, rc->old_name ? rc->old_name : rc->id);
    finish(rc, -1, false);
    return;
  }
  if (rc->strategy != RP_STRATEGY_RECREATE) {
    /* restart, stop, remove: nothing was replaced. */
    finish(rc, -1, !rc->stopped);
    return;
  }
  rc->rollback_ok = true;
  rc->rollback_step = 0;
  rollback(rc);
}

static void
rollback_step_done(struct rc *rc, const struct rp_error *err)
{
  if (err) {
    rc->rollback_ok = false;
    rp_error_prefix(&rc->error, "rollback failed (%s)", err->message);
    rp_err("provider %s: %s: rollback step failed: %s", rc->d->p->name,
           rc->name, err->message);
  }
  rollback(rc);
}

static void
rollback_checked(struct rc *rc, const struct rp_dockerapi_reply *r,
                 const struct rp_error *err)
{
  json_t *state = r ? json_object_get(r->body, "State") : NULL;
  if (err || !json_is_true(json_object_get(state, "Running")) ||
      json_is_true(json_object_get(state, "Restarting"))) {
    rc->rollback_ok = false;
    rp_error_prefix(
        &rc->error,
        "rollback failed: the old container did not stay up after its "
        "restart (%s, exit code %lld)",
        err ? err->message
        : json_string_value(json_object_get(state, "Status"))
            ? json_string_value(json_object_get(state, "Status"))
            : "unknown state",
        (long long)json_integer_value(json_object_get(state, "ExitCode")));
  }
  rollback(rc);
}

static void
rollback_check_cb(uv_timer_t *t)
{
  struct rc *rc = t->data;
  cleanup_free char *path = rp_xasprintf("/containers/%s/json", rc->id);
  struct pending *pd = rp_xcalloc(1, sizeof(*pd));
  *pd = (struct pending){
      .rc = rc, .tolerant = true, .then_reply = rollback_checked};
  cleanup_error struct rp_error *err = NULL;
  if (rp_dockerapi_call(&rc->d->api, "GET", path, NULL, 0, pending_cb, pd,
                        &err) != 0) {
    free(pd);
    rollback_checked(rc, NULL, err);
  }
}

/* Undoes, in reverse, what the failed recycle did: remove the replacement,
 * give the old container its name back, start it again. */
static void
rollback(struct rc *rc)
{
  switch (rc->rollback_step++) {
  case 0:
    if (rc->created) {
      cleanup_free char *path =
          rp_xasprintf("/containers/%s?force=1", rc->new_id);
      api_tolerant(rc, "DELETE", path, 0, rollback_step_done);
      return;
    }
    rollback(rc);
    return;
  case 1:
    if (rc->renamed) {
      cleanup_free char *esc = rp_url_escape(rc->name);
      cleanup_free char *path =
          rp_xasprintf("/containers/%s/rename?name=%s", rc->id, esc);
      api_tolerant(rc, "POST", path, 0, rollback_step_done);
      return;
    }
    rollback(rc);
    return;
  case 2:
    if (rc->stopped && rc->was_running) {
      cleanup_free char *path = rp_xasprintf("/containers/%s/start", rc->id);
      api_tolerant(rc, "POST", path, 0, rollback_step_done);
      return;
    }
    rc->rollback_step = 4; /* nothing restarted: nothing to check */
    rollback(rc);
    return;
  case 3:
    /* "Rolled back" is only said of an old container that stays up. */
    uv_timer_start(&rc->timer, rollback_check_cb, SETTLE_MS, 0);
    return;
  default:
    free(rc->new_id);
    rc->new_id = NULL;
    finish(rc, -1, rc->rollback_ok);
    return;
  }
}

/* --- entry -------------------------------------------------------------- */

int
rp_docker_recycle(struct rp_docker *d, const struct rp_workload *w,
                  const struct rp_recycle_spec *spec, rp_recycle_cb cb,
                  void *arg, struct rp_error **err)
{
  if (d->stopping)
    return rp_error_set(err, RP_ECANCELED, "provider %s is stopping",
                        d->p->name);
  static const enum step recreate[] = {S_INSPECT, S_LIST_ALL, S_MAC, S_IMAGE,
                                       S_BUILD};
  static const enum step restart[] = {S_INSPECT, S_DRAIN, S_RESTART,
                                      S_WAIT_READY, S_DONE};
  static const enum step stop[] = {S_INSPECT, S_DRAIN, S_STOP_OLD, S_DONE};
  static const enum step remove[] = {S_INSPECT, S_DRAIN, S_STOP_OLD,
                                     S_REMOVE_OLD, S_DONE};
  struct rc *rc = rp_xcalloc(1, sizeof(*rc));
  rc->d = d;
  rc->cb = cb;
  rc->arg = arg;
  rc->strategy = spec->strategy;
  rc->want_start_first = spec->order == RP_ORDER_START_FIRST;
  rc->pull = spec->pull;
  rc->grace_ms = spec->grace_ms;
  rc->health_timeout_ms = spec->health_timeout_ms;
  rc->drain_timeout_ms = spec->drain_timeout_ms;
  if (spec->drain_argv) {
    size_t n = 0;
    while (spec->drain_argv[n])
      n++;
    rc->drain = rp_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
      rc->drain[i] = rp_xstrdup(spec->drain_argv[i]);
  }
  rc->id = rp_xstrdup(w->id);
  rc->name = rp_xstrdup(w->name);
  rc->started_ms = w->started_ms;
  rc->details = json_object();
  switch (spec->strategy) {
  case RP_STRATEGY_RECREATE:
    add_steps(rc, recreate, RP_ARRAY_LEN(recreate));
    break;
  case RP_STRATEGY_RESTART:
    add_steps(rc, restart, RP_ARRAY_LEN(restart));
    break;
  case RP_STRATEGY_STOP:
    add_steps(rc, stop, RP_ARRAY_LEN(stop));
    break;
  case RP_STRATEGY_REMOVE:
    add_steps(rc, remove, RP_ARRAY_LEN(remove));
    break;
  default:
    rc_free(rc);
    return rp_error_set(err, RP_ECONFIG,
                        "provider %s: strategy %s does not apply to "
                        "containers",
                        d->p->name, rp_strategy_name(spec->strategy));
  }
  uv_timer_init(d->p->loop, &rc->timer);
  rc->timer.data = rc;
  d->recycles_in_flight++;
  advance(rc);
  return 0;
}
