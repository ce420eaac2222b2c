/* force-update: Swarm itself replaces every task of a service, under the
 * service's own UpdateConfig (parallelism, delay, order start-first or
 * stop-first, failure action, rollback), when TaskTemplate.ForceUpdate
 * changes.  reaper reads the service, sends its WHOLE spec back with
 * ForceUpdate + 1 and the version it read (a stale version fails: "update
 * out of sequence", and the read is done again), then follows
 * UpdateStatus until the update ends:
 *   completed           -> done
 *   paused              -> failed (the update stopped part-way)
 *   rollback_completed  -> failed, rolled back (swarm restored the tasks)
 *   rollback_paused     -> failed
 * within a time derived from the UpdateConfig and the policy's
 * health_timeout.  An update that someone else started and that is still
 * running is not interfered with: the recycle fails, nothing changed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "swarm/swarm.h"
#include "util.h"

#define POLL_MS 1000
#define MAX_ATTEMPTS 3

struct svc {
  struct rp_swarm *s; /* borrowed */
  rp_recycle_cb cb;
  void *arg;
  char *id;   /* owned */
  char *name; /* owned */
  int64_t health_timeout_ms;
  int attempts;
  json_t *service;      /* owned: the service as read before the update */
  char *before_started; /* owned: UpdateStatus.StartedAt before, or NULL */
  json_t *tasks_before; /* owned: running task ids before */
  json_t *details;      /* owned: for the audit line */
  int64_t deadline;     /* monotonic ms */
  enum rp_swarm_update state;
  uv_timer_t timer;
  struct rp_error *error; /* owned: why it failed */
  bool rolled_back;
  struct rp_swarm_job job;
  bool cancelled; /* the provider is stopping */
  bool sent;      /* the update has been sent */
};

static void read_service(struct svc *v);

static void
svc_free(struct svc *v)
{
  free(v->id);
  free(v->name);
  json_decref(v->service);
  free(v->before_started);
  json_decref(v->tasks_before);
  json_decref(v->details);
  rp_error_free(v->error);
  free(v);
}

static void
closed_cb(uv_handle_t *h)
{
  struct svc *v = h->data;
  struct rp_swarm *s = v->s;
  svc_free(v);
  rp_swarm_recycle_ended(s);
}

static void
finish(struct svc *v, int status)
{
  json_object_set_new(v->details, "update_state",
                      json_string(rp_swarm_update_name(v->state)));
  struct rp_recycle_result res = {
      .replacement_id = status == 0 ? v->id : NULL,
      .rolled_back = status != 0 && v->rolled_back,
      .details = v->details,
  };
  rp_swarm_job_remove(v->s, &v->job);
  v->cb(v->arg, status, &res, status == 0 ? NULL : v->error);
  uv_close((uv_handle_t *)&v->timer, closed_cb);
}

static void fail(struct svc *v, bool rolled_back, int code, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));

static void
fail(struct svc *v, bool rolled_back, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&v->error, code, fmt, ap);
  va_end(ap);
  v->rolled_back = rolled_back;
  finish(v, -1);
}

typedef void (*step_fn)(struct svc *v, const struct rp_dockerapi_reply *r,
                        const struct rp_error *err);

struct pending {
  struct svc *v;
  step_fn fn;
};

static void
pending_cb(void *arg, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  struct pending pd = *(struct pending *)arg;
  free(arg);
  pd.fn(pd.v, r, err);
}

/* One call; fn runs with its answer or error (also when it cannot start). */
static void
api(struct svc *v, const char *method, const char *path, const json_t *body,
    step_fn fn)
{
  struct pending *pd = rp_xcalloc(1, sizeof(*pd));
  *pd = (struct pending){.v = v, .fn = fn};
  cleanup_error struct rp_error *err = NULL;
  if (rp_swarm_call(v->s, method, path, body, 0, pending_cb, pd, &err) != 0) {
    free(pd);
    struct rp_dockerapi_reply none = {0};
    fn(v, &none, err);
  }
}

static char *
tasks_path(const char *service_id)
{
  cleanup_json json_t *f = json_pack("{s:[s], s:[s]}", "service", service_id,
                                     "desired-state", "running");
  cleanup_free char *fs = json_dumps(f, JSON_COMPACT);
  cleanup_free char *esc = rp_url_escape(fs);
  return rp_xasprintf("/tasks?filters=%s", esc);
}

static json_t *
running_ids(json_t *tasks, const char *service_id)
{
  cleanup_json json_t *groups = rp_swarm_group_tasks(tasks);
  json_t *ids = json_object_get(json_object_get(groups, service_id), "tasks");
  return ids ? json_incref(ids) : json_array();
}

/* --- the end: the tasks now ---------------------------------------------- */

static void
tasks_after(struct svc *v, const struct rp_dockerapi_reply *r,
            const struct rp_error *err)
{
  if (!err) {
    cleanup_json json_t *after = running_ids(r->body, v->id);
    size_t replaced = 0, i, k;
    json_t *a, *b;
    json_array_foreach(v->tasks_before, i, b)
    {
      bool still = false;
      json_array_foreach(after, k, a)
      {
        if (json_equal(a, b))
          still = true;
      }
      if (!still)
        replaced++;
    }
    json_object_set(v->details, "tasks_after", after);
    json_object_set_new(v->details, "tasks_replaced", json_integer(replaced));
  }
  rp_info("provider %s: service %s: update completed", v->s->p->name, v->name);
  finish(v, 0);
}

/* --- following UpdateStatus ---------------------------------------------- */

static void cancelled_now(struct svc *v);

static void
poll_timer_cb(uv_timer_t *t)
{
  struct svc *v = t->data;
  if (v->cancelled) {
    cancelled_now(v);
    return;
  }
  read_service(v);
}

/* Swarm goes on with an update whoever follows it: a stopping agent says
 * where it was and leaves. */
static void
cancelled_now(struct svc *v)
{
  if (v->sent)
    fail(v, false, RP_ECANCELED,
         "reaper stopped while swarm was updating the service (%s): swarm "
         "carries the update on",
         rp_swarm_update_name(v->state));
  else
    fail(v, true, RP_ECANCELED, "reaper stopped before the update was sent");
}

static void
poll_later(struct svc *v)
{
  if (v->cancelled) {
    cancelled_now(v);
    return;
  }
  uv_timer_start(&v->timer, poll_timer_cb, POLL_MS, 0);
}

static void
cancel_cb(struct rp_swarm_job *job)
{
  struct svc *v = (struct svc *)((char *)job - offsetof(struct svc, job));
  v->cancelled = true;
  /* Waiting: the stop takes effect at once, but from the loop, not under
   * the caller (its callback must not run inside stop()).  Otherwise a
   * call is in flight: its step ends at poll_later. */
  if (uv_is_active((uv_handle_t *)&v->timer))
    uv_timer_start(&v->timer, poll_timer_cb, 0, 0);
}

static void
polled(struct svc *v, const struct rp_dockerapi_reply *r,
       const struct rp_error *err)
{
  if (err && err->code == RP_ENOTFOUND) {
    fail(v, false, RP_ENOTFOUND, "the service was removed during its update");
    return;
  }
  if (!err) {
    v->state = rp_swarm_update_progress(r->body, v->before_started);
    const char *msg = json_string_value(
        json_object_get(json_object_get(r->body, "UpdateStatus"), "Message"));
    if (v->state != RP_SWARM_UPDATE_PENDING && msg)
      json_object_set_new(v->details, "update_message", json_string(msg));
    switch (v->state) {
    case RP_SWARM_UPDATE_COMPLETED: {
      cleanup_free char *path = tasks_path(v->id);
      api(v, "GET", path, NULL, tasks_after);
      return;
    }
    case RP_SWARM_UPDATE_PAUSED:
      fail(v, false, RP_EENGINE, "swarm paused the update: %s",
           msg ? msg : "no message");
      return;
    case RP_SWARM_UPDATE_ROLLBACK_COMPLETED:
      fail(v, true, RP_EENGINE, "swarm rolled the update back: %s",
           msg ? msg : "no message");
      return;
    case RP_SWARM_UPDATE_ROLLBACK_PAUSED:
      fail(v, false, RP_EENGINE, "swarm paused the rollback of the update: %s",
           msg ? msg : "no message");
      return;
    default:
      break;
    }
  } else {
    /* A manager may be briefly unreachable during an update: keep asking
     * until the deadline. */
    rp_warn("provider %s: service %s: reading its update status: %s",
            v->s->p->name, v->name, err->message);
  }
  if (rp_mono_ms() >= v->deadline) {
    fail(v, false, RP_ETIMEOUT,
         "the update is still %s after %llds (swarm goes on with it)",
         rp_swarm_update_name(v->state),
         (long long)json_integer_value(
             json_object_get(v->details, "timeout_s")));
    return;
  }
  poll_later(v);
}

static void
read_service(struct svc *v)
{
  cleanup_free char *esc = rp_url_escape(v->id);
  cleanup_free char *path = rp_xasprintf("/services/%s", esc);
  api(v, "GET", path, NULL, polled);
}

/* --- the update ---------------------------------------------------------- */

static void inspect(struct svc *v);

static void
updated(struct svc *v, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  if (err) {
    if (strstr(err->message, "out of sequence") &&
        ++v->attempts < MAX_ATTEMPTS) {
      /* Someone changed the service between our read and our write. */
      inspect(v);
      return;
    }
    fail(v, true, err->code, "update: %s", err->message);
    return;
  }
  json_t *warnings = json_object_get(r->body, "Warnings");
  if (json_array_size(warnings))
    json_object_set(v->details, "warnings", warnings);
  RP_CRASHPOINT("swarm-after-force-update");
  v->state = RP_SWARM_UPDATE_PENDING;
  poll_later(v);
}

static void
tasks_before(struct svc *v, const struct rp_dockerapi_reply *r,
             const struct rp_error *err)
{
  if (err) {
    fail(v, true, err->code, "list its tasks: %s", err->message);
    return;
  }
  json_decref(v->tasks_before);
  v->tasks_before = running_ids(r->body, v->id);
  json_object_set(v->details, "tasks_before", v->tasks_before);
  int64_t timeout = rp_swarm_update_timeout_ms(
      v->service, json_array_size(v->tasks_before), v->health_timeout_ms);
  json_object_set_new(v->details, "timeout_s", json_integer(timeout / 1000));
  v->deadline = rp_mono_ms() + timeout;

  json_t *spec = json_object_get(v->service, "Spec");
  json_t *tt = json_object_get(spec, "TaskTemplate");
  json_int_t version = json_integer_value(
      json_object_get(json_object_get(v->service, "Version"), "Index"));
  if (!json_is_object(tt)) {
    fail(v, true, RP_EPROTO, "the service has no TaskTemplate");
    return;
  }
  cleanup_json json_t *new_spec = json_deep_copy(spec);
  json_t *ntt = json_object_get(new_spec, "TaskTemplate");
  json_int_t force = json_integer_value(json_object_get(tt, "ForceUpdate"));
  json_object_set_new(ntt, "ForceUpdate", json_integer(force + 1));
  json_object_set_new(v->details, "force_update", json_integer(force + 1));
  json_object_set_new(v->details, "version", json_integer(version));
  cleanup_free char *esc = rp_url_escape(v->id);
  cleanup_free char *path =
      rp_xasprintf("/services/%s/update?version=%lld", esc, (long long)version);
  if (v->cancelled) {
    cancelled_now(v);
    return;
  }
  v->sent = true;
  rp_info("provider %s: service %s: forcing an update of its %zu tasks "
          "(ForceUpdate %lld)",
          v->s->p->name, v->name, json_array_size(v->tasks_before),
          (long long)(force + 1));
  api(v, "POST", path, new_spec, updated);
}

static void
inspected(struct svc *v, const struct rp_dockerapi_reply *r,
          const struct rp_error *err)
{
  if (err) {
    fail(v, true, err->code, "read the service: %s", err->message);
    return;
  }
  if (!json_is_object(json_object_get(r->body, "Spec")) ||
      !json_is_integer(
          json_object_get(json_object_get(r->body, "Version"), "Index"))) {
    fail(v, true, RP_EPROTO, "read the service: no Spec or Version");
    return;
  }
  json_t *us = json_object_get(r->body, "UpdateStatus");
  const char *state = json_string_value(json_object_get(us, "State"));
  if (state && (strcmp(state, "updating") == 0 ||
                strcmp(state, "rollback_started") == 0)) {
    fail(v, true, RP_ECONFLICT,
         "an update of the service is in progress (%s): not interfering",
         state);
    return;
  }
  json_decref(v->service);
  v->service = json_incref(r->body);
  free(v->before_started);
  const char *started = json_string_value(json_object_get(us, "StartedAt"));
  v->before_started = started ? rp_xstrdup(started) : NULL;
  cleanup_free char *path = tasks_path(v->id);
  api(v, "GET", path, NULL, tasks_before);
}

static void
inspect(struct svc *v)
{
  cleanup_free char *esc = rp_url_escape(v->id);
  cleanup_free char *path = rp_xasprintf("/services/%s", esc);
  api(v, "GET", path, NULL, inspected);
}

int
rp_swarm_recycle_service(struct rp_swarm *s, const struct rp_workload *w,
                         const struct rp_recycle_spec *spec, rp_recycle_cb cb,
                         void *arg, struct rp_error **err)
{
  (void)err;
  struct svc *v = rp_xcalloc(1, sizeof(*v));
  v->s = s;
  v->cb = cb;
  v->arg = arg;
  v->id = rp_xstrdup(w->id);
  v->name = rp_xstrdup(w->name);
  v->health_timeout_ms = spec->health_timeout_ms;
  v->details = json_object();
  v->tasks_before = json_array();
  uv_timer_init(s->p->loop, &v->timer);
  v->timer.data = v;
  v->job.cancel = cancel_cb;
  rp_swarm_job_add(s, &v->job);
  s->recycles_in_flight++;
  inspect(v);
  return 0;
}
