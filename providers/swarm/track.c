/* Tracking: one list at start, then the /events stream (types service and
 * node), plus the periodic re-list the core asks for.  A list is three
 * calls whatever the size of the cluster: every service, every task meant
 * to run (grouped by service here: a service's age is its oldest running
 * task's), every node.  An event makes the one service (two calls: it and
 * its running tasks) or node it names be read again; events that come in
 * bursts (a rolling update) are gathered for a moment first.  Task starts
 * raise no service event: a task that swarm replaced on its own is seen at
 * the next re-list. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "swarm/swarm.h"
#include "util.h"
#include "watch.h"

#define GATHER_MS 250
#define EVENT_FILTER "{\"type\":[\"service\",\"node\"]}"
#define RUNNING_FILTER "{\"desired-state\":[\"running\"]}"

struct rp_swarm_track {
  struct rp_swarm *s;     /* borrowed: owns this */
  struct rp_watch *watch; /* owned: connect, stream, list, reconnect */
  uv_timer_t gather; /* events gathered before their reads; closed on stop */
  bool gather_closed;
  char since[40];   /* the last event's time, "sec.nanos" */
  json_t *reported; /* owned: id -> kind name of what the core was given */
  json_t *dirty;    /* owned: id -> "service" | "node", to read again */
};

static void flush_dirty(struct rp_swarm_track *t);

static const char *
pname(const struct rp_swarm_track *t)
{
  return t->s->p->name;
}

static bool
stopping(const struct rp_swarm_track *t)
{
  return rp_watch_stopping(t->watch);
}

static void
call_done(struct rp_swarm_track *t)
{
  rp_watch_call_ended(t->watch);
}

static int
call(struct rp_swarm_track *t, const char *path, rp_dockerapi_cb cb, void *arg,
     struct rp_error **err)
{
  if (rp_swarm_call(t->s, "GET", path, NULL, 0, cb, arg, err) != 0)
    return -1;
  rp_watch_call_started(t->watch);
  return 0;
}

bool
rp_swarm_track_up(const struct rp_swarm *s)
{
  return s->track && rp_watch_up(s->track->watch);
}

/* --- reporting ---------------------------------------------------------- */

static void
report_upsert(struct rp_swarm_track *t, struct rp_workload *w)
{
  struct rp_provider *p = t->s->p;
  json_object_set_new(t->reported, w->id, json_string(rp_kind_name(w->kind)));
  p->hooks.upsert(p->hooks.core, p, w);
}

static void
report_removed(struct rp_swarm_track *t, const char *id)
{
  struct rp_provider *p = t->s->p;
  if (!json_object_get(t->reported, id))
    return;
  json_object_del(t->reported, id);
  p->hooks.removed(p->hooks.core, p, id);
}

static const char *
self_node(const struct rp_swarm_track *t)
{
  /* Through a unix socket, the manager is the machine reaper runs on. */
  return t->s->local ? t->s->node_id : NULL;
}

/* --- reading one service or node again ---------------------------------- */

struct refresh {
  struct rp_swarm_track *t;
  char id[80];
  bool is_node;
  json_t *obj;   /* owned: the service or node */
  json_t *tasks; /* owned: a service's running tasks */
  int pending;
  bool gone;
  bool failed;
};

static void
refresh_finish(struct refresh *r)
{
  struct rp_swarm_track *t = r->t;
  if (!stopping(t) && !r->failed) {
    struct rp_workload *w = NULL;
    if (!r->gone && r->is_node) {
      w = rp_swarm_node_workload(pname(t), r->obj, self_node(t));
    } else if (!r->gone) {
      cleanup_json json_t *groups = rp_swarm_group_tasks(r->tasks);
      w = rp_swarm_service_workload(
          pname(t), r->obj, json_object_get(groups, r->id), t->s->self_service);
    }
    if (w)
      report_upsert(t, w);
    else
      report_removed(t, r->id);
    rp_workload_free(w);
  }
  json_decref(r->obj);
  json_decref(r->tasks);
  free(r);
}

static void
refresh_cb(void *arg, const struct rp_dockerapi_reply *rep,
           const struct rp_error *err, bool tasks)
{
  struct refresh *r = arg;
  struct rp_swarm_track *t = r->t;
  if (err && err->code == RP_ENOTFOUND && !tasks) {
    r->gone = true;
  } else if (err) {
    r->failed = true;
    if (!stopping(t))
      rp_warn("provider %s: read %s %s: %s", pname(t),
              r->is_node ? "node" : "service", r->id, err->message);
  } else if (tasks) {
    r->tasks = json_incref(rep->body);
  } else {
    r->obj = json_incref(rep->body);
  }
  if (--r->pending == 0)
    refresh_finish(r);
  call_done(t);
}

static void
refresh_obj_cb(void *arg, const struct rp_dockerapi_reply *rep,
               const struct rp_error *err)
{
  refresh_cb(arg, rep, err, false);
}

static void
refresh_tasks_cb(void *arg, const struct rp_dockerapi_reply *rep,
                 const struct rp_error *err)
{
  refresh_cb(arg, rep, err, true);
}

static void
refresh(struct rp_swarm_track *t, const char *id, bool is_node)
{
  struct refresh *r = rp_xcalloc(1, sizeof(*r));
  r->t = t;
  r->is_node = is_node;
  snprintf(r->id, sizeof(r->id), "%s", id);
  cleanup_free char *esc = rp_url_escape(id);
  cleanup_free char *path =
      rp_xasprintf("/%s/%s", is_node ? "nodes" : "services", esc);
  cleanup_free char *tpath = NULL;
  if (!is_node) {
    cleanup_json json_t *f =
        json_pack("{s:[s], s:[s]}", "service", id, "desired-state", "running");
    cleanup_free char *fs = json_dumps(f, JSON_COMPACT);
    cleanup_free char *fesc = rp_url_escape(fs);
    tpath = rp_xasprintf("/tasks?filters=%s", fesc);
  }
  /* One reference for this function, one per call started. */
  r->pending = 1;
  cleanup_error struct rp_error *err = NULL;
  if (call(t, path, refresh_obj_cb, r, &err) == 0)
    r->pending++;
  else
    r->failed = true;
  if (tpath && !r->failed) {
    if (call(t, tpath, refresh_tasks_cb, r, &err) == 0)
      r->pending++;
    else
      r->failed = true;
  }
  if (err)
    rp_warn("provider %s: read %s: %s", pname(t), id, err->message);
  if (--r->pending == 0)
    refresh_finish(r);
}

static void
gather_cb(uv_timer_t *timer)
{
  flush_dirty(timer->data);
}

static void
flush_dirty(struct rp_swarm_track *t)
{
  if (stopping(t) || rp_watch_listing(t->watch))
    return; /* after a list, its own flush comes */
  void *tmp;
  const char *id;
  json_t *kind;
  json_object_foreach_safe(t->dirty, tmp, id, kind)
  {
    refresh(t, id, strcmp(json_string_value(kind), "node") == 0);
    json_object_del(t->dirty, id);
  }
}

/* --- events ------------------------------------------------------------- */

static int
on_event_line(void *arg, const char *line, size_t len)
{
  struct rp_swarm_track *t = arg;
  json_error_t jerr;
  cleanup_json json_t *ev = json_loadb(line, len, 0, &jerr);
  if (!json_is_object(ev)) {
    rp_warn("provider %s: event stream: not JSON (%s), line ignored", pname(t),
            jerr.text);
    return 0;
  }
  json_t *tn = json_object_get(ev, "timeNano");
  if (json_is_integer(tn)) {
    json_int_t ns = json_integer_value(tn);
    snprintf(t->since, sizeof(t->since), "%lld.%09lld",
             (long long)(ns / 1000000000), (long long)(ns % 1000000000));
  }
  const char *type = json_string_value(json_object_get(ev, "Type"));
  const char *action = json_string_value(json_object_get(ev, "Action"));
  json_t *actor = json_object_get(ev, "Actor");
  const char *id = json_string_value(json_object_get(actor, "ID"));
  const char *name = json_string_value(
      json_object_get(json_object_get(actor, "Attributes"), "name"));
  if (!type || !action || !id || !*id || strlen(id) > 64)
    return 0;
  bool is_node = strcmp(type, "node") == 0;
  if (!is_node && strcmp(type, "service") != 0)
    return 0;
  if (!is_node && name && strcmp(name, RP_SWARM_LEASE_SERVICE) == 0)
    return 0; /* the lease's renewals: nothing to track */
  rp_debug("provider %s: event %s %s %s", pname(t), type, action, id);
  json_object_set_new(t->dirty, id, json_string(is_node ? "node" : "service"));
  if (!rp_watch_listing(t->watch) && !uv_is_active((uv_handle_t *)&t->gather))
    uv_timer_start(&t->gather, gather_cb, GATHER_MS, 0);
  return 0;
}

static void
stream_done_cb(void *arg, const struct rp_error *err)
{
  struct rp_swarm_track *t = arg;
  cleanup_free char *why = err ? rp_dockerapi_explain(&t->s->api, err) : NULL;
  rp_watch_stream_ended(t->watch, why);
}

/* The watch's stream op. */
static int
start_stream(void *ctx, struct rp_http_xfer **xfer, struct rp_error **err)
{
  struct rp_swarm_track *t = ctx;
  cleanup_free char *filters = rp_url_escape(EVENT_FILTER);
  cleanup_free char *path =
      t->since[0]
          ? rp_xasprintf("/events?filters=%s&since=%s", filters, t->since)
          : rp_xasprintf("/events?filters=%s", filters);
  return rp_dockerapi_stream(&t->s->api, path, on_event_line, stream_done_cb, t,
                             xfer, err);
}

/* --- list --------------------------------------------------------------- */

struct listing {
  struct rp_swarm_track *t;
  json_t *services, *tasks, *nodes; /* owned answers */
  int pending;
  char *error; /* owned: the first failure */
};

static void
listing_free(struct listing *l)
{
  json_decref(l->services);
  json_decref(l->tasks);
  json_decref(l->nodes);
  free(l->error);
  free(l);
}

static void
list_finish(struct listing *l)
{
  struct rp_swarm_track *t = l->t;
  if (stopping(t) || l->error) {
    cleanup_free char *why = l->error ? RP_STEAL(l->error) : NULL;
    listing_free(l);
    rp_watch_list_failed(t->watch, why);
    return;
  }
  cleanup_json json_t *groups = rp_swarm_group_tasks(l->tasks);
  size_t n = json_array_size(l->services) + json_array_size(l->nodes), k = 0;
  cleanup_free struct rp_workload **v = rp_xcalloc(n + 1, sizeof(*v));
  size_t i;
  json_t *o;
  json_array_foreach(l->services, i, o)
  {
    const char *id = json_string_value(json_object_get(o, "ID"));
    struct rp_workload *w = rp_swarm_service_workload(
        pname(t), o, id ? json_object_get(groups, id) : NULL,
        t->s->self_service);
    if (w)
      v[k++] = w;
  }
  json_array_foreach(l->nodes, i, o)
  {
    struct rp_workload *w = rp_swarm_node_workload(pname(t), o, self_node(t));
    if (w)
      v[k++] = w;
  }
  json_object_clear(t->reported);
  for (i = 0; i < k; i++)
    json_object_set_new(t->reported, v[i]->id,
                        json_string(rp_kind_name(v[i]->kind)));
  listing_free(l);
  rp_watch_listed(t->watch, v, k);
  for (i = 0; i < k; i++)
    rp_workload_free(v[i]);
}

/* The watch's after_list op. */
static void
after_list(void *ctx, bool ok)
{
  struct rp_swarm_track *t = ctx;
  if (!ok)
    return; /* what is dirty is read at the next event or list */
  /* Events that came in during the list may be older or newer than it. */
  flush_dirty(t);
  if (rp_swarm_lease_holding(t->s))
    rp_swarm_sweep_marks(t->s);
}

static void
list_part(struct listing *l, const struct rp_dockerapi_reply *r,
          const struct rp_error *err, json_t **slot, const char *what)
{
  struct rp_swarm_track *t = l->t;
  if (!l->error && err && err->code == RP_EVERSION)
    l->error = rp_dockerapi_explain(&t->s->api, err);
  else if (!l->error && (err || !json_is_array(r->body)))
    l->error = rp_xasprintf("list %s: %s", what,
                            err ? err->message : "the answer is not a list");
  else if (!err)
    *slot = json_incref(r->body);
  if (--l->pending == 0)
    list_finish(l);
  call_done(t);
}

static void
list_services_cb(void *arg, const struct rp_dockerapi_reply *r,
                 const struct rp_error *err)
{
  struct listing *l = arg;
  list_part(l, r, err, &l->services, "services");
}

static void
list_tasks_cb(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct listing *l = arg;
  list_part(l, r, err, &l->tasks, "tasks");
}

static void
list_nodes_cb(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct listing *l = arg;
  list_part(l, r, err, &l->nodes, "nodes");
}

/* The watch's list op. */
static void
list_all(void *ctx)
{
  struct rp_swarm_track *t = ctx;
  struct listing *l = rp_xcalloc(1, sizeof(*l));
  l->t = t;
  cleanup_free char *tfilter = rp_url_escape(RUNNING_FILTER);
  cleanup_free char *tpath = rp_xasprintf("/tasks?filters=%s", tfilter);
  struct {
    const char *path;
    rp_dockerapi_cb cb;
  } parts[] = {
      {"/services", list_services_cb},
      {tpath, list_tasks_cb},
      {"/nodes", list_nodes_cb},
  };
  l->pending = 1;
  for (size_t i = 0; i < RP_ARRAY_LEN(parts) && !l->error; i++) {
    cleanup_error struct rp_error *err = NULL;
    if (call(t, parts[i].path, parts[i].cb, l, &err) == 0)
      l->pending++;
    else
      l->error = rp_xstrdup(err->message);
  }
  if (--l->pending == 0)
    list_finish(l);
}

/* --- connect ------------------------------------------------------------ */

/* The service reaper's own container belongs to, when it runs as a task
 * (e.g. the cluster agent as a one-replica service): never force-updated
 * by itself. */
static void
self_inspected_cb(void *arg, const struct rp_dockerapi_reply *r,
                  const struct rp_error *err)
{
  struct rp_swarm_track *t = arg;
  call_done(t);
  if (stopping(t))
    return;
  const char *svc = NULL;
  if (!err)
    svc = json_string_value(json_object_get(
        json_object_get(json_object_get(r->body, "Config"), "Labels"),
        "com.docker.swarm.service.id"));
  if (svc) {
    free(t->s->self_service);
    t->s->self_service = rp_xstrdup(svc);
    rp_info("provider %s: reaper runs as a task of service %s, which it "
            "never updates",
            pname(t), svc);
  }
  rp_watch_connected(t->watch, NULL);
}

/* Whether the engine is a swarm manager (the one thing this provider can
 * watch), and what it says of the cluster. */
static void
info_cb(void *arg, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  struct rp_swarm_track *t = arg;
  struct rp_swarm *s = t->s;
  call_done(t);
  if (stopping(t))
    return;
  if (err) {
    rp_watch_connected(t->watch, err->message);
    return;
  }
  json_t *sw = json_object_get(r->body, "Swarm");
  const char *state = json_string_value(json_object_get(sw, "LocalNodeState"));
  const char *node = json_string_value(json_object_get(sw, "NodeID"));
  if (!state || strcmp(state, "active") != 0 || !node) {
    const char *engine = t->s->api.engine[0] ? t->s->api.engine : "";
    cleanup_free char *why = rp_xasprintf(
        "the engine%s%s%s is not part of a swarm (LocalNodeState %s)%s",
        *engine ? " (" : "", engine, *engine ? ")" : "",
        state ? state : "unknown",
        strncmp(engine, "Podman", 6) == 0 ? ": podman has no swarm" : "");
    rp_watch_connected(t->watch, why);
    return;
  }
  if (!json_is_true(json_object_get(sw, "ControlAvailable"))) {
    rp_watch_connected(t->watch, "the engine is a swarm worker, not a manager: "
                                 "point the swarm provider at a manager");
    return;
  }
  free(s->node_id);
  s->node_id = rp_xstrdup(node);
  int64_t engine_ms = 0;
  if (rp_parse_time_ms(
          json_string_value(json_object_get(r->body, "SystemTime")),
          &engine_ms) == 0 &&
      engine_ms > 0)
    s->clock_offset_ms = engine_ms - rp_wall_ms();
  if (s->self_container && s->local && !s->self_service) {
    cleanup_free char *path =
        rp_xasprintf("/containers/%s/json", s->self_container);
    cleanup_error struct rp_error *cerr = NULL;
    if (call(t, path, self_inspected_cb, t, &cerr) == 0)
      return;
  }
  rp_watch_connected(t->watch, NULL);
}

static void
ping_cb(void *arg, const struct rp_error *err)
{
  struct rp_swarm_track *t = arg;
  call_done(t);
  if (stopping(t))
    return;
  if (err) {
    rp_watch_connected(t->watch, err->message);
    return;
  }
  cleanup_error struct rp_error *ierr = NULL;
  if (call(t, "/info", info_cb, t, &ierr) != 0)
    rp_watch_connected(t->watch, ierr->message);
}

/* The watch's connect op: the version negotiation, then GET /info. */
static int
connect_engine(void *ctx, struct rp_error **err)
{
  struct rp_swarm_track *t = ctx;
  if (rp_dockerapi_negotiate(&t->s->api, ping_cb, t, err) != 0)
    return -1;
  rp_watch_call_started(t->watch);
  return 0;
}

static void
check_stopped(void *ctx)
{
  struct rp_swarm_track *t = ctx;
  rp_swarm_check_stopped(t->s);
}

static const struct rp_watch_ops watch_ops = {
    .connect = connect_engine,
    .stream = start_stream,
    .list = list_all,
    .after_list = after_list,
    .check_stopped = check_stopped,
};

int
rp_swarm_track_start(struct rp_swarm *s, struct rp_error **err)
{
  (void)err;
  struct rp_swarm_track *t = rp_xcalloc(1, sizeof(*t));
  t->s = s;
  t->reported = json_object();
  t->dirty = json_object();
  t->watch = rp_watch_new(s->p, &watch_ops, t);
  uv_timer_init(s->p->loop, &t->gather);
  t->gather.data = t;
  s->track = t;
  rp_watch_start(t->watch);
  return 0;
}

void
rp_swarm_track_resync(struct rp_swarm *s)
{
  if (s->track)
    rp_watch_resync(s->track->watch);
}

static void
gather_closed_cb(uv_handle_t *h)
{
  struct rp_swarm_track *t = h->data;
  t->gather_closed = true;
  rp_swarm_check_stopped(t->s);
}

void
rp_swarm_track_stop(struct rp_swarm *s)
{
  struct rp_swarm_track *t = s->track;
  if (!t || stopping(t))
    return;
  rp_watch_stop(t->watch);
  uv_close((uv_handle_t *)&t->gather, gather_closed_cb);
}

bool
rp_swarm_track_idle(const struct rp_swarm *s)
{
  const struct rp_swarm_track *t = s->track;
  return !t || (rp_watch_idle(t->watch) && t->gather_closed);
}

void
rp_swarm_track_free(struct rp_swarm *s)
{
  struct rp_swarm_track *t = s->track;
  if (!t)
    return;
  json_decref(t->reported);
  json_decref(t->dirty);
  rp_watch_free(t->watch);
  free(t);
  s->track = NULL;
}
