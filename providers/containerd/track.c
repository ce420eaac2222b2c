/* Tracking: Version (a ping), then the Events/Subscribe stream, then a full
 * list (Containers.List and Tasks.List in every namespace), then the events
 * keep it current; a periodic re-list catches what the stream missed.  A
 * workload is a container whose task runs (or is paused).
 *
 * containerd's API has no task start time.  The task's process has one:
 * field 22 of /proc/PID/stat, in clock ticks after boot, plus btime from
 * /proc/stat (reaper must share the host's PID namespace; otherwise the
 * time of the /tasks/start event, or failing that the time reaper first saw
 * the task, stands in: never earlier than the truth, so never an early
 * recycle).  A task is looked at again only when an event says it started,
 * or when a re-list finds another pid than the one known. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "containerd.h"
#include "log.h"
#include "util.h"
#include "watch.h"

#define VERSION_TIMEOUT_MS 10000

/* The events the tracker acts on.  containerd ORs the filters. */
static const char *const event_topics[] = {
    "/tasks/start",       "/tasks/exit",        "/tasks/delete",
    "/containers/delete", "/containers/update", NULL,
};

struct rp_ctrd_track {
  struct rp_ctrd *c;      /* borrowed: owns this */
  struct rp_watch *watch; /* owned: connect, stream, list, reconnect */
  /* owned: workload id -> {"started": ms, "pid": n} of what was reported
   * running, so that a re-list keeps known start times */
  json_t *known;
  bool warned_proc; /* said once that /proc gives no start times */
};

static bool
stopping(const struct rp_ctrd_track *t)
{
  return rp_watch_stopping(t->watch);
}

static void
call_started(struct rp_ctrd_track *t)
{
  rp_watch_call_started(t->watch);
}

static void
call_done(struct rp_ctrd_track *t)
{
  rp_watch_call_ended(t->watch);
}

/* --- start times --------------------------------------------------------- */

long long
rp_ctrd_stat_starttime(const char *stat, size_t len)
{
  /* "PID (COMM) STATE PPID ...": COMM may hold anything, ')' included. */
  const char *end = stat + len;
  const char *p = end;
  while (p > stat && p[-1] != ')')
    p--;
  if (p == stat)
    return -1;
  /* p is after the last ')': field 3 (state) comes next; 22 is 19 on. */
  int field = 2;
  while (p < end && field < 22) {
    while (p < end && *p == ' ')
      p++;
    if (p >= end)
      return -1;
    field++;
    if (field == 22)
      break;
    while (p < end && *p != ' ')
      p++;
  }
  if (field != 22 || p >= end || *p < '0' || *p > '9')
    return -1;
  long long v = 0;
  while (p < end && *p >= '0' && *p <= '9') {
    if (v > (LLONG_MAX - 9) / 10)
      return -1;
    v = v * 10 + (*p++ - '0');
  }
  return v;
}

static ssize_t
read_small(const char *path, char *buf, size_t len)
{
  cleanup_fclose FILE *f = fopen(path, "re");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, len - 1, f);
  if (ferror(f))
    return -1;
  buf[n] = '\0';
  return (ssize_t)n;
}

static int64_t
boot_time_s(const char *proc)
{
  char path[256], buf[16384];
  snprintf(path, sizeof(path), "%s/stat", proc);
  if (read_small(path, buf, sizeof(buf)) < 0)
    return -1;
  const char *p = strstr(buf, "\nbtime ");
  if (!p)
    return -1;
  long long v = strtoll(p + 7, NULL, 10);
  return v > 0 ? v : -1;
}

int64_t
rp_ctrd_process_start_ms(const char *proc, uint32_t pid)
{
  char path[256], buf[1024];
  if (pid == 0)
    return -1;
  snprintf(path, sizeof(path), "%s/%" PRIu32 "/stat", proc, pid);
  ssize_t n = read_small(path, buf, sizeof(buf));
  if (n <= 0)
    return -1;
  long long ticks = rp_ctrd_stat_starttime(buf, (size_t)n);
  long hz = sysconf(_SC_CLK_TCK);
  int64_t btime = boot_time_s(proc);
  if (ticks < 0 || hz <= 0 || btime < 0)
    return -1;
  return btime * 1000 + (int64_t)(ticks * 1000 / hz);
}

/* --- workloads ----------------------------------------------------------- */

static json_t *
labels_json(const Rpctrd__Container *ct)
{
  json_t *o = json_object();
  for (size_t i = 0; ct && i < ct->n_labels; i++)
    if (ct->labels[i]->key && ct->labels[i]->value)
      json_object_set_new(o, ct->labels[i]->key,
                          json_string(ct->labels[i]->value));
  return o;
}

static bool
is_running(int status)
{
  return status == RPCTRD__TASK_STATUS__RUNNING ||
         status == RPCTRD__TASK_STATUS__PAUSED ||
         status == RPCTRD__TASK_STATUS__PAUSING;
}

/* The start time of a running task: what is known for the same pid, else
 * its process's, else the hint (an event's time), else now. */
static int64_t
start_time(struct rp_ctrd_track *t, const char *wid, uint32_t pid,
           int64_t hint_ms)
{
  json_t *k = json_object_get(t->known, wid);
  if (k && json_integer_value(json_object_get(k, "pid")) == (json_int_t)pid)
    return json_integer_value(json_object_get(k, "started"));
  int64_t ms = rp_ctrd_process_start_ms("/proc", pid);
  if (ms > 0)
    return ms;
  if (!t->warned_proc) {
    t->warned_proc = true;
    rp_warn("provider %s: cannot read the start time of task process %" PRIu32
            " in /proc (is reaper in the host's PID namespace?): ages count "
            "from when reaper saw the task start",
            t->c->p->name, pid);
  }
  return hint_ms > 0 ? hint_ms : rp_wall_ms();
}

static struct rp_workload *
make_workload(struct rp_ctrd_track *t, const char *wid, const char *cid,
              json_t *labels, int64_t started_ms)
{
  struct rp_workload *w =
      rp_workload_new(t->c->p->name, RP_KIND_CONTAINER, wid, cid, started_ms);
  json_object_update(w->labels, labels);
  return w;
}

static void
report_gone(struct rp_ctrd_track *t, const char *wid)
{
  if (!json_object_get(t->known, wid))
    return;
  rp_debug("provider %s: %s no longer runs", t->c->p->name, wid);
  json_object_del(t->known, wid);
  t->c->p->hooks.removed(t->c->p->hooks.core, t->c->p, wid);
}

static void
remember(struct rp_ctrd_track *t, const char *wid, uint32_t pid,
         int64_t started)
{
  json_object_set_new(t->known, wid,
                      json_pack("{s:I, s:I}", "pid", (json_int_t)pid, "started",
                                (json_int_t)started));
}

/* --- one container, for events ------------------------------------------- */

struct refresh {
  struct rp_ctrd_track *t;
  char ns[80];
  char *cid;       /* owned */
  char *wid;       /* owned */
  int64_t hint_ms; /* the event's time */
  json_t *labels;  /* owned, once the container is read */
};

static void
refresh_free(struct refresh *r)
{
  free(r->cid);
  free(r->wid);
  if (r->labels)
    json_decref(r->labels);
  free(r);
}

static void
task_got_cb(void *arg, const uint8_t *msg, size_t len,
            const struct rp_error *err)
{
  struct refresh *r = arg;
  struct rp_ctrd_track *t = r->t;
  if (!stopping(t)) {
    Rpctrd__GetTaskResponse *resp =
        err ? NULL : rpctrd__get_task_response__unpack(NULL, len, msg);
    if (err && err->code != RP_ENOTFOUND) {
      rp_warn("provider %s: %s: %s", t->c->p->name, r->wid, err->message);
    } else if (resp && resp->process && is_running(resp->process->status)) {
      uint32_t pid = resp->process->pid;
      int64_t started = start_time(t, r->wid, pid, r->hint_ms);
      remember(t, r->wid, pid, started);
      char ts[40];
      rp_debug("provider %s: %s runs, pid %u, since %s", t->c->p->name, r->wid,
               pid, rp_format_time_ms(started, ts, sizeof(ts)));
      struct rp_workload *w =
          make_workload(t, r->wid, r->cid, r->labels, started);
      t->c->p->hooks.upsert(t->c->p->hooks.core, t->c->p, w);
      rp_workload_free(w);
    } else {
      rp_debug("provider %s: %s: task %s", t->c->p->name, r->wid,
               resp && resp->process ? "not running" : "gone");
      report_gone(t, r->wid);
    }
    if (resp)
      rpctrd__get_task_response__free_unpacked(resp, NULL);
  }
  refresh_free(r);
  call_done(t);
}

static void
container_got_cb(void *arg, const uint8_t *msg, size_t len,
                 const struct rp_error *err)
{
  struct refresh *r = arg;
  struct rp_ctrd_track *t = r->t;
  call_done(t);
  if (stopping(t)) {
    refresh_free(r);
    return;
  }
  Rpctrd__GetContainerResponse *resp =
      err ? NULL : rpctrd__get_container_response__unpack(NULL, len, msg);
  if (!resp || !resp->container) {
    if (err && err->code != RP_ENOTFOUND)
      rp_warn("provider %s: %s: %s", t->c->p->name, r->wid, err->message);
    else
      report_gone(t, r->wid);
    if (resp)
      rpctrd__get_container_response__free_unpacked(resp, NULL);
    refresh_free(r);
    return;
  }
  r->labels = labels_json(resp->container);
  rpctrd__get_container_response__free_unpacked(resp, NULL);
  Rpctrd__GetTaskRequest req;
  rpctrd__get_task_request__init(&req);
  req.container_id = r->cid;
  cleanup_error struct rp_error *cerr = NULL;
  if (rp_ctrd_call(t->c, r->ns, RP_CTRD_TASKS "Get", &req.base, 0, task_got_cb,
                   r, &cerr) != 0) {
    rp_warn("provider %s: %s: %s", t->c->p->name, r->wid, cerr->message);
    refresh_free(r);
    return;
  }
  call_started(t);
}

/* Looks at one container again and reports what it finds. */
static void
refresh(struct rp_ctrd_track *t, const char *ns, const char *cid,
        int64_t hint_ms)
{
  struct refresh *r = rp_xcalloc(1, sizeof(*r));
  r->t = t;
  snprintf(r->ns, sizeof(r->ns), "%s", ns);
  r->cid = rp_xstrdup(cid);
  r->wid = rp_xasprintf("%s/%s", ns, cid);
  r->hint_ms = hint_ms;
  Rpctrd__GetContainerRequest req;
  rpctrd__get_container_request__init(&req);
  req.id = r->cid;
  cleanup_error struct rp_error *err = NULL;
  if (rp_ctrd_call(t->c, ns, RP_CTRD_CONTAINERS "Get", &req.base, 0,
                   container_got_cb, r, &err) != 0) {
    rp_warn("provider %s: %s: %s", t->c->p->name, r->wid, err->message);
    refresh_free(r);
    return;
  }
  call_started(t);
}

/* --- events -------------------------------------------------------------- */

static bool
watched(const struct rp_ctrd_track *t, const char *ns)
{
  for (char **n = t->c->namespaces; ns && *n; n++)
    if (strcmp(*n, ns) == 0)
      return true;
  return false;
}

static bool
type_is(const char *type_url, const char *name)
{
  /* "containerd.events.TaskStart", perhaps with a "types.../" prefix: the
   * message's own name is what follows the last '.' or '/'. */
  const char *t = type_url + strlen(type_url);
  while (t > type_url && t[-1] != '.' && t[-1] != '/')
    t--;
  return strcmp(t, name) == 0;
}

int
rp_ctrd_event_decode(const uint8_t *msg, size_t len, struct rp_ctrd_event *out)
{
  memset(out, 0, sizeof(*out));
  Rpctrd__Envelope *env = rpctrd__envelope__unpack(NULL, len, msg);
  if (!env)
    return -1;
  if (env->timestamp)
    out->ts_ms =
        env->timestamp->seconds * 1000 + env->timestamp->nanos / 1000000;
  snprintf(out->ns, sizeof(out->ns), "%s",
           env->namespace_ ? env->namespace_ : "");
  const char *topic = env->topic ? env->topic : "";
  const char *type =
      env->event && env->event->type_url ? env->event->type_url : "";
  ProtobufCBinaryData v =
      env->event ? env->event->value : (ProtobufCBinaryData){0};
  const char *cid = NULL;
  if (strcmp(topic, "/tasks/start") == 0 && type_is(type, "TaskStart")) {
    Rpctrd__TaskStart *e = rpctrd__task_start__unpack(NULL, v.len, v.data);
    if (e && e->container_id && e->container_id[0]) {
      out->kind = RP_CTRD_EVENT_START;
      cid = e->container_id;
      out->pid = e->pid;
    }
    if (e) {
      snprintf(out->container_id, sizeof(out->container_id), "%s",
               cid ? cid : "");
      rpctrd__task_start__free_unpacked(e, NULL);
    }
  } else if (strcmp(topic, "/tasks/exit") == 0 && type_is(type, "TaskExit")) {
    Rpctrd__TaskExit *e = rpctrd__task_exit__unpack(NULL, v.len, v.data);
    /* Only the task's own process: an exec'd one exiting changes nothing. */
    if (e && e->container_id && e->container_id[0] &&
        (!e->id || !e->id[0] || strcmp(e->container_id, e->id) == 0)) {
      out->kind = RP_CTRD_EVENT_GONE;
      cid = e->container_id;
      out->pid = e->pid;
    }
    if (e) {
      snprintf(out->container_id, sizeof(out->container_id), "%s",
               cid ? cid : "");
      rpctrd__task_exit__free_unpacked(e, NULL);
    }
  } else if (strcmp(topic, "/tasks/delete") == 0 &&
             type_is(type, "TaskDelete")) {
    Rpctrd__TaskDelete *e = rpctrd__task_delete__unpack(NULL, v.len, v.data);
    if (e && e->container_id && e->container_id[0] &&
        (!e->id || !e->id[0] || strcmp(e->id, e->container_id) == 0)) {
      out->kind = RP_CTRD_EVENT_GONE;
      cid = e->container_id;
      out->pid = e->pid;
    }
    if (e) {
      snprintf(out->container_id, sizeof(out->container_id), "%s",
               cid ? cid : "");
      rpctrd__task_delete__free_unpacked(e, NULL);
    }
  } else if ((strcmp(topic, "/containers/delete") == 0 &&
              type_is(type, "ContainerDelete")) ||
             (strcmp(topic, "/containers/update") == 0 &&
              type_is(type, "ContainerUpdate"))) {
    Rpctrd__ContainerEvent *e =
        rpctrd__container_event__unpack(NULL, v.len, v.data);
    if (e && e->id && e->id[0]) {
      out->kind = topic[12] == 'd' ? RP_CTRD_EVENT_GONE : RP_CTRD_EVENT_CHANGED;
      cid = e->id;
    }
    if (e) {
      snprintf(out->container_id, sizeof(out->container_id), "%s",
               cid ? cid : "");
      rpctrd__container_event__free_unpacked(e, NULL);
    }
  }
  snprintf(out->topic, sizeof(out->topic), "%s", topic);
  rpctrd__envelope__free_unpacked(env, NULL);
  return 0;
}

static int
on_event(void *arg, const uint8_t *msg, size_t len)
{
  struct rp_ctrd_track *t = arg;
  struct rp_ctrd_event ev;
  if (rp_ctrd_event_decode(msg, len, &ev) != 0) {
    rp_warn("provider %s: an event that does not decode, ignored",
            t->c->p->name);
    return 0;
  }
  if (!watched(t, ev.ns) || ev.kind == RP_CTRD_EVENT_OTHER)
    return 0;
  rp_debug("provider %s: event %s %s/%s", t->c->p->name, ev.topic, ev.ns,
           ev.container_id);
  cleanup_free char *wid = rp_xasprintf("%s/%s", ev.ns, ev.container_id);
  rp_watch_touch(t->watch, wid, NULL); /* looked at again after a list */
  switch (ev.kind) {
  case RP_CTRD_EVENT_START:
    refresh(t, ev.ns, ev.container_id, ev.ts_ms);
    break;
  case RP_CTRD_EVENT_GONE:
    report_gone(t, wid);
    break;
  case RP_CTRD_EVENT_CHANGED:
    if (json_object_get(t->known, wid))
      refresh(t, ev.ns, ev.container_id, 0); /* its labels may have changed */
    break;
  case RP_CTRD_EVENT_OTHER:
    break;
  }
  return 0;
}

static void
stream_done_cb(void *arg, const struct rp_error *err)
{
  struct rp_ctrd_track *t = arg;
  rp_watch_stream_ended(t->watch, err ? err->message : NULL);
}

/* The watch's stream op. */
static int
start_stream(void *ctx, struct rp_http_xfer **xfer, struct rp_error **err)
{
  struct rp_ctrd_track *t = ctx;
  /* Filters are ORed; the comma inside one ANDs: only the topics reaper
   * acts on, in the namespaces it watches (a Kubernetes node's k8s.io is
   * busy, and none of reaper's business unless configured). */
  size_t n_ns = 0;
  while (t->c->namespaces[n_ns])
    n_ns++;
  size_t n_topics = RP_ARRAY_LEN(event_topics) - 1, n = n_ns * n_topics;
  cleanup_free char **filters = rp_xcalloc(n + 1, sizeof(*filters));
  for (size_t i = 0; i < n_ns; i++)
    for (size_t k = 0; k < n_topics; k++)
      filters[i * n_topics + k] =
          rp_xasprintf("namespace==\"%s\",topic==\"%s\"", t->c->namespaces[i],
                       event_topics[k]);
  Rpctrd__SubscribeRequest req;
  rpctrd__subscribe_request__init(&req);
  req.n_filters = n;
  req.filters = filters;
  int rc = rp_ctrd_stream(t->c, NULL, RP_CTRD_EVENTS "Subscribe", &req.base, 0,
                          on_event, stream_done_cb, t, xfer, err);
  for (size_t i = 0; i < n; i++)
    free(filters[i]);
  return rc;
}

/* --- list ---------------------------------------------------------------- */

/* One list in progress: Containers.List and Tasks.List in each namespace. */
struct listing {
  struct rp_ctrd_track *t;
  int pending;
  bool failed;
  char *error;        /* owned */
  json_t *containers; /* owned: wid -> labels */
  json_t *tasks;      /* owned: wid -> pid of a running task */
};

struct ns_call {
  struct listing *l;
  char ns[80];
};

static void
listing_free(struct listing *l)
{
  json_decref(l->containers);
  json_decref(l->tasks);
  free(l->error);
  free(l);
}

static void
list_finish(struct listing *l)
{
  struct rp_ctrd_track *t = l->t;
  if (stopping(t) || l->failed) {
    cleanup_free char *why = l->error ? RP_STEAL(l->error) : NULL;
    listing_free(l);
    rp_watch_list_failed(t->watch, why);
    return;
  }
  size_t n = json_object_size(l->tasks), i = 0;
  cleanup_free struct rp_workload **v = rp_xcalloc(n + 1, sizeof(*v));
  cleanup_json json_t *fresh = json_object();
  const char *wid;
  json_t *pid;
  json_object_foreach(l->tasks, wid, pid)
  {
    json_t *labels = json_object_get(l->containers, wid);
    if (!labels)
      continue; /* a task whose container the list did not have */
    const char *cid = strchr(wid, '/') + 1;
    uint32_t p = (uint32_t)json_integer_value(pid);
    int64_t started = start_time(t, wid, p, 0);
    v[i++] = make_workload(t, wid, cid, labels, started);
    json_object_set_new(fresh, wid,
                        json_pack("{s:I, s:I}", "pid", (json_int_t)p, "started",
                                  (json_int_t)started));
  }
  json_object_clear(t->known);
  json_object_update(t->known, fresh);
  listing_free(l);
  rp_watch_listed(t->watch, v, i);
  for (size_t k = 0; k < i; k++)
    rp_workload_free(v[k]);
}

/* The watch's recheck op: an event came during the list. */
static void
recheck(void *ctx, const char *wid, const char *what)
{
  (void)what;
  char ns[80];
  const char *cid;
  if (rp_ctrd_split_id(wid, ns, sizeof(ns), &cid) == 0)
    refresh(ctx, ns, cid, 0);
}

static void
ns_call_done(struct ns_call *nc, const char *what, const struct rp_error *err)
{
  struct listing *l = nc->l;
  if (err && !l->failed) {
    l->failed = true;
    l->error = rp_xasprintf("namespace %s: %s: %s", nc->ns, what, err->message);
  }
  free(nc);
  call_done(l->t);
  if (--l->pending == 0)
    list_finish(l);
}

static void
containers_listed_cb(void *arg, const uint8_t *msg, size_t len,
                     const struct rp_error *err)
{
  struct ns_call *nc = arg;
  struct listing *l = nc->l;
  Rpctrd__ListContainersResponse *r =
      err ? NULL : rpctrd__list_containers_response__unpack(NULL, len, msg);
  struct rp_error *e = NULL;
  if (!err && !r)
    rp_error_set(&e, RP_EPROTO, "the answer does not decode");
  for (size_t i = 0; r && i < r->n_containers; i++) {
    Rpctrd__Container *ct = r->containers[i];
    if (!ct->id || !ct->id[0])
      continue;
    cleanup_free char *wid = rp_xasprintf("%s/%s", nc->ns, ct->id);
    json_object_set_new(l->containers, wid, labels_json(ct));
  }
  if (r)
    rpctrd__list_containers_response__free_unpacked(r, NULL);
  ns_call_done(nc, "list containers", err ? err : e);
  rp_error_free(e);
}

static void
tasks_listed_cb(void *arg, const uint8_t *msg, size_t len,
                const struct rp_error *err)
{
  struct ns_call *nc = arg;
  struct listing *l = nc->l;
  Rpctrd__ListTasksResponse *r =
      err ? NULL : rpctrd__list_tasks_response__unpack(NULL, len, msg);
  struct rp_error *e = NULL;
  if (!err && !r)
    rp_error_set(&e, RP_EPROTO, "the answer does not decode");
  for (size_t i = 0; r && i < r->n_tasks; i++) {
    Rpctrd__Process *pr = r->tasks[i];
    /* Tasks.List lists init processes, whose id is the container's
     * (containerd 1.6 sets only id, not container_id). */
    const char *cid =
        pr->container_id && pr->container_id[0] ? pr->container_id : pr->id;
    if (!cid || !cid[0] || !is_running(pr->status))
      continue;
    cleanup_free char *wid = rp_xasprintf("%s/%s", nc->ns, cid);
    json_object_set_new(l->tasks, wid, json_integer(pr->pid));
  }
  if (r)
    rpctrd__list_tasks_response__free_unpacked(r, NULL);
  ns_call_done(nc, "list tasks", err ? err : e);
  rp_error_free(e);
}

/* The watch's list op. */
static void
list_all(void *ctx)
{
  struct rp_ctrd_track *t = ctx;
  struct listing *l = rp_xcalloc(1, sizeof(*l));
  l->t = t;
  l->containers = json_object();
  l->tasks = json_object();
  l->pending = 1; /* held until every call is started */
  for (char **ns = t->c->namespaces; *ns && !l->failed; ns++) {
    for (int which = 0; which < 2 && !l->failed; which++) {
      struct ns_call *nc = rp_xcalloc(1, sizeof(*nc));
      nc->l = l;
      snprintf(nc->ns, sizeof(nc->ns), "%s", *ns);
      cleanup_error struct rp_error *err = NULL;
      int rc;
      if (which == 0) {
        Rpctrd__ListContainersRequest req;
        rpctrd__list_containers_request__init(&req);
        rc = rp_ctrd_call(t->c, *ns, RP_CTRD_CONTAINERS "List", &req.base, 0,
                          containers_listed_cb, nc, &err);
      } else {
        Rpctrd__ListTasksRequest req;
        rpctrd__list_tasks_request__init(&req);
        rc = rp_ctrd_call(t->c, *ns, RP_CTRD_TASKS "List", &req.base, 0,
                          tasks_listed_cb, nc, &err);
      }
      if (rc != 0) {
        l->failed = true;
        l->error = rp_xstrdup(err->message);
        free(nc);
        break;
      }
      call_started(t);
      l->pending++;
    }
  }
  if (--l->pending == 0)
    list_finish(l);
}

/* --- connect ------------------------------------------------------------- */

static void
version_cb(void *arg, const uint8_t *msg, size_t len,
           const struct rp_error *err)
{
  struct rp_ctrd_track *t = arg;
  call_done(t);
  if (stopping(t))
    return;
  if (err) {
    rp_watch_connected(t->watch, err->message);
    return;
  }
  Rpctrd__VersionResponse *v = rpctrd__version_response__unpack(NULL, len, msg);
  if (v) {
    rp_debug("provider %s: containerd %s (%s)", t->c->p->name,
             v->version ? v->version : "?", v->revision ? v->revision : "?");
    rpctrd__version_response__free_unpacked(v, NULL);
  }
  rp_watch_connected(t->watch, NULL);
}

/* The watch's connect op: Version, as a ping. */
static int
connect_engine(void *ctx, struct rp_error **err)
{
  struct rp_ctrd_track *t = ctx;
  Rpctrd__Empty req;
  rpctrd__empty__init(&req);
  if (rp_ctrd_call(t->c, NULL, RP_CTRD_VERSION, &req.base, VERSION_TIMEOUT_MS,
                   version_cb, t, err) != 0)
    return -1;
  call_started(t);
  return 0;
}

static void
check_stopped(void *ctx)
{
  struct rp_ctrd_track *t = ctx;
  rp_ctrd_check_stopped(t->c);
}

static const struct rp_watch_ops watch_ops = {
    .connect = connect_engine,
    .stream = start_stream,
    .list = list_all,
    .recheck = recheck,
    .check_stopped = check_stopped,
};

int
rp_ctrd_track_start(struct rp_ctrd *c, struct rp_error **err)
{
  (void)err;
  struct rp_ctrd_track *t = rp_xcalloc(1, sizeof(*t));
  t->c = c;
  t->known = json_object();
  t->watch = rp_watch_new(c->p, &watch_ops, t);
  c->track = t;
  rp_watch_start(t->watch);
  return 0;
}

void
rp_ctrd_track_resync(struct rp_ctrd *c)
{
  if (c->track)
    rp_watch_resync(c->track->watch);
}

void
rp_ctrd_track_stop(struct rp_ctrd *c)
{
  if (c->track)
    rp_watch_stop(c->track->watch);
}

bool
rp_ctrd_track_idle(const struct rp_ctrd *c)
{
  return !c->track || rp_watch_idle(c->track->watch);
}

void
rp_ctrd_track_free(struct rp_ctrd *c)
{
  struct rp_ctrd_track *t = c->track;
  if (!t)
    return;
  json_decref(t->known);
  rp_watch_free(t->watch);
  free(t);
  c->track = NULL;
}
