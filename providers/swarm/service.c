/* force-update, as operations for the core's recycle runner (src/runner.c
 * orders them: prepare, update, then probe until settled).  Swarm itself
 * replaces every task of a service, under the service's own UpdateConfig
 * (parallelism, delay, order start-first or stop-first, failure action,
 * rollback), when TaskTemplate.ForceUpdate changes.
 *   prepare  reads the service and its running tasks; refuses a service
 *            whose update someone else started and that still runs.  For
 *            crash recovery (spec.recovery) it refuses nothing, says
 *            whether the service has an update (under way or done), and
 *            probe then follows that update
 *   pull     fresh content: the image the update will set (its reference
 *            pinned to the new digest, as swarm pins it at create), and the
 *            credentials the nodes pull it with (X-Registry-Auth)
 *   update   sends its WHOLE spec back with ForceUpdate + 1 and the version
 *            read (a stale version fails, "update out of sequence": read
 *            again and sent again, up to three times)
 *   probe    UpdateStatus: pending while updating; completed -> settled
 *            (with the tasks after); rollback_completed -> reverted;
 *            paused, rollback_paused -> an error
 * within a time derived from the UpdateConfig and the policy's
 * health_timeout (the plan's settle_ms). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "image_ref.h"
#include "log.h"
#include "swarm/swarm.h"
#include "util.h"

#define MAX_ATTEMPTS 3

struct svc_plan {
  struct rp_swarm_plan base; /* first: the plan is found by its id */
  int64_t health_timeout_ms;
  json_t *service;      /* owned: the service as read before the update */
  char *before_started; /* owned: UpdateStatus.StartedAt before, or NULL */
  json_t *tasks_before; /* owned: running task ids before */
  json_t *sent;         /* owned: {force_update, version, warnings} sent */
  char *image; /* owned: fresh content, the ContainerSpec.Image to set, or
                  NULL (the service keeps its image) */
  char *auth;  /* owned secret: X-Registry-Auth for it, or NULL */
  enum rp_swarm_update state; /* as last seen */
  bool recovery;              /* prepared for crash recovery */
  char *acted;                /* owned: recovery's rp_prepared.acted */
};

static void
plan_free(struct rp_swarm *s, struct svc_plan *v)
{
  rp_swarm_plan_remove(s, &v->base);
  json_decref(v->service);
  free(v->before_started);
  json_decref(v->tasks_before);
  json_decref(v->sent);
  free(v->acted);
  free(v->image);
  rp_registry_secret_free(v->auth);
  free(v);
}

void
rp_swarm_service_release(struct rp_swarm *s, struct rp_swarm_plan *pl)
{
  plan_free(s, (struct svc_plan *)pl);
}

static char *
service_path(const char *id)
{
  cleanup_free char *esc = rp_url_escape(id);
  return rp_xasprintf("/services/%s", esc);
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

/* The service as read (`GET /services/{id}`): kept when it can be updated;
 * else the reason it cannot, as an error. */
static int
take_service(struct svc_plan *v, json_t *service, struct rp_error **err)
{
  if (!json_is_object(json_object_get(service, "Spec")) ||
      !json_is_integer(
          json_object_get(json_object_get(service, "Version"), "Index")))
    return rp_error_set(err, RP_EPROTO, "read the service: no Spec or Version");
  json_t *us = json_object_get(service, "UpdateStatus");
  const char *state = json_string_value(json_object_get(us, "State"));
  const char *started = json_string_value(json_object_get(us, "StartedAt"));
  json_decref(v->service);
  v->service = json_incref(service);
  free(v->before_started);
  v->before_started = NULL;
  if (v->recovery) {
    /* The update the recycle asked for is the one the service has now, if
     * any: probe follows it (before_started NULL). */
    free(v->acted);
    v->acted = state ? rp_xasprintf("swarm's update of the service is %s "
                                    "(started %s)",
                                    state, started ? started : "?")
                     : NULL;
    return 0;
  }
  if (state && (strcmp(state, "updating") == 0 ||
                strcmp(state, "rollback_started") == 0))
    return rp_error_set(err, RP_ECONFLICT,
                        "an update of the service is in progress (%s): not "
                        "interfering",
                        state);
  v->before_started = started ? rp_xstrdup(started) : NULL;
  return 0;
}

/* --- prepare: the service and its tasks, read only ------------------------ */

struct prep {
  struct rp_swarm *s;
  struct svc_plan *v;
  rp_prepared_cb cb;
  void *arg;
};

static void
prep_end(struct prep *pp, const struct rp_error *err)
{
  struct svc_plan *v = pp->v;
  if (err) {
    plan_free(pp->s, v);
    pp->cb(pp->arg, NULL, err);
    free(pp);
    return;
  }
  json_t *tt =
      json_object_get(json_object_get(v->service, "Spec"), "TaskTemplate");
  json_int_t force = json_integer_value(json_object_get(tt, "ForceUpdate"));
  int64_t timeout = rp_swarm_update_timeout_ms(
      v->service, json_array_size(v->tasks_before), v->health_timeout_ms);
  cleanup_json json_t *details = json_pack(
      "{s:O, s:I, s:I, s:I}", "tasks_before", v->tasks_before, "timeout_s",
      (json_int_t)(timeout / 1000), "force_update", force + 1, "version",
      json_integer_value(
          json_object_get(json_object_get(v->service, "Version"), "Index")));
  struct rp_prepared pr = {
      .plan = v,
      .name = v->base.name,
      .running = true,
      .details = details,
      .settle_ms = timeout,
      .acted = v->acted,
  };
  pp->cb(pp->arg, &pr, NULL);
  free(pp);
}

static void
prep_tasks_cb(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct prep *pp = arg;
  if (err) {
    struct rp_error *e = rp_error_dup(err);
    rp_error_prefix(&e, "list its tasks");
    prep_end(pp, e);
    rp_error_free(e);
    return;
  }
  json_decref(pp->v->tasks_before);
  pp->v->tasks_before = running_ids(r->body, pp->v->base.id);
  prep_end(pp, NULL);
}

static void
prep_service_cb(void *arg, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct prep *pp = arg;
  cleanup_error struct rp_error *e = err ? rp_error_dup(err) : NULL;
  if (e)
    rp_error_prefix(&e, "read the service");
  else
    take_service(pp->v, r->body, &e);
  if (!e) {
    cleanup_free char *path = tasks_path(pp->v->base.id);
    if (rp_swarm_call(pp->s, "GET", path, NULL, 0, prep_tasks_cb, pp, &e) == 0)
      return;
  }
  prep_end(pp, e);
}

int
rp_swarm_service_prepare(struct rp_swarm *s, const struct rp_workload *w,
                         const struct rp_recycle_spec *spec, rp_prepared_cb cb,
                         void *arg, struct rp_error **err)
{
  struct svc_plan *v = rp_xcalloc(1, sizeof(*v));
  v->health_timeout_ms = spec->health_timeout_ms;
  v->recovery = spec->recovery;
  v->tasks_before = json_array();
  v->state = RP_SWARM_UPDATE_PENDING;
  struct prep *pp = rp_xcalloc(1, sizeof(*pp));
  *pp = (struct prep){.s = s, .v = v, .cb = cb, .arg = arg};
  rp_swarm_plan_add(s, &v->base, RP_KIND_SERVICE, w);
  cleanup_free char *path = service_path(w->id);
  if (rp_swarm_call(s, "GET", path, NULL, 0, prep_service_cb, pp, err) != 0) {
    plan_free(s, v);
    free(pp);
    s->recycles_in_flight--; /* no release will come */
    return -1;
  }
  return 0;
}

/* --- update: the whole spec, ForceUpdate + 1 ------------------------------ */

struct upd {
  struct rp_swarm *s;
  struct svc_plan *v;
  rp_op_cb cb;
  void *arg;
  int attempts;
};

static void upd_send(struct upd *u);

static void
upd_end(struct upd *u, const struct rp_error *err)
{
  u->cb(u->arg, err);
  free(u);
}

static void
upd_reread_cb(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct upd *u = arg;
  cleanup_error struct rp_error *e = err ? rp_error_dup(err) : NULL;
  if (e)
    rp_error_prefix(&e, "read the service again");
  else if (take_service(u->v, r->body, &e) == 0) {
    upd_send(u);
    return;
  }
  upd_end(u, e);
}

static void
upd_sent_cb(void *arg, const struct rp_dockerapi_reply *r,
            const struct rp_error *err)
{
  struct upd *u = arg;
  if (err && strstr(err->message, "out of sequence") &&
      ++u->attempts < MAX_ATTEMPTS) {
    /* Someone changed the service between our read and our write. */
    cleanup_free char *path = service_path(u->v->base.id);
    cleanup_error struct rp_error *e = NULL;
    if (rp_swarm_call(u->s, "GET", path, NULL, 0, upd_reread_cb, u, &e) != 0)
      upd_end(u, e);
    return;
  }
  if (!err) {
    json_t *warnings = json_object_get(r->body, "Warnings");
    if (json_array_size(warnings))
      json_object_set(u->v->sent, "warnings", warnings);
  }
  upd_end(u, err);
}

static void
upd_send(struct upd *u)
{
  struct svc_plan *v = u->v;
  json_t *spec = json_object_get(v->service, "Spec");
  json_t *tt = json_object_get(spec, "TaskTemplate");
  json_int_t version = json_integer_value(
      json_object_get(json_object_get(v->service, "Version"), "Index"));
  cleanup_error struct rp_error *e = NULL;
  if (!json_is_object(tt)) {
    rp_error_set(&e, RP_EPROTO, "the service has no TaskTemplate");
    upd_end(u, e);
    return;
  }
  cleanup_json json_t *new_spec = json_deep_copy(spec);
  json_int_t force = json_integer_value(json_object_get(tt, "ForceUpdate"));
  json_object_set_new(json_object_get(new_spec, "TaskTemplate"), "ForceUpdate",
                      json_integer(force + 1));
  if (v->image) {
    json_t *cs = json_object_get(json_object_get(new_spec, "TaskTemplate"),
                                 "ContainerSpec");
    if (!json_is_object(cs)) {
      rp_error_set(&e, RP_EPROTO, "the service has no ContainerSpec");
      upd_end(u, e);
      return;
    }
    json_object_set_new(cs, "Image", json_string(v->image));
  }
  json_decref(v->sent);
  v->sent =
      json_pack("{s:I, s:I}", "force_update", force + 1, "version", version);
  if (v->image)
    json_object_set_new(v->sent, "image", json_string(v->image));
  cleanup_free char *esc = rp_url_escape(v->base.id);
  cleanup_free char *path =
      rp_xasprintf("/services/%s/update?version=%lld", esc, (long long)version);
  rp_info("provider %s: service %s: forcing an update of its %zu tasks "
          "(ForceUpdate %lld)",
          u->s->p->name, v->base.name, json_array_size(v->tasks_before),
          (long long)(force + 1));
  cleanup_free char *header =
      v->auth ? rp_xasprintf("X-Registry-Auth: %s", v->auth) : NULL;
  const char *headers[] = {"Content-Type: application/json", header, NULL};
  int rc =
      header
          ? rp_dockerapi_call_headers(&u->s->api, "POST", path, new_spec,
                                      headers, 0, upd_sent_cb, u, &e)
          : rp_swarm_call(u->s, "POST", path, new_spec, 0, upd_sent_cb, u, &e);
  rp_registry_secret_free(RP_STEAL(header));
  if (rc != 0)
    upd_end(u, e);
}

/* --- pull: what the update will run ----------------------------------------*/

struct pull {
  rp_pulled_cb cb;
  void *arg;
  char *image; /* owned */
};

static void
pull_done(void *arg)
{
  struct pull *pl = arg;
  cleanup_json json_t *details = json_pack("{s:s}", "service_image", pl->image);
  pl->cb(pl->arg, details, NULL);
  free(pl->image);
  free(pl);
}

int
rp_swarm_op_pull(struct rp_provider *p, void *plan,
                 const struct rp_recycle_spec *spec, rp_pulled_cb cb, void *arg,
                 struct rp_error **err)
{
  struct rp_swarm *s = p->ctx;
  struct svc_plan *v = plan;
  if (!v || v->base.kind != RP_KIND_SERVICE || !spec->image_ref ||
      !spec->image_digest)
    return rp_error_set(err, EINVAL, "no service update was prepared");
  /* The reference as the service was created, without the digest swarm
   * pinned, then the new one. */
  const char *ref = spec->image_ref;
  const char *at = strchr(ref, '@');
  free(v->image);
  v->image = rp_xasprintf("%.*s@%s", (int)(at ? at - ref : (int)strlen(ref)),
                          ref, spec->image_digest);
  rp_registry_secret_free(v->auth);
  v->auth = NULL;
  if (spec->image_cred && spec->image_cred->username) {
    struct rp_image_ref parsed = {0};
    cleanup_error struct rp_error *e = NULL;
    if (rp_image_ref_parse(v->image, &parsed, &e) == 0) {
      v->auth = rp_dockerapi_registry_auth(spec->image_cred, parsed.domain);
      rp_image_ref_clear(&parsed);
    }
  }
  struct pull *pl = rp_xcalloc(1, sizeof(*pl));
  *pl = (struct pull){.cb = cb, .arg = arg, .image = rp_xstrdup(v->image)};
  /* From the loop: cb never runs under this call. */
  rp_swarm_later(s, 0, pull_done, pl);
  return 0;
}

static void
upd_start(void *arg)
{
  struct upd *u = arg;
  if (u->s->stopping) {
    cleanup_error struct rp_error *e = NULL;
    rp_error_set(&e, RP_ECANCELED, "reaper stopped before the update was sent");
    upd_end(u, e);
    return;
  }
  upd_send(u);
}

int
rp_swarm_op_update(struct rp_provider *p, const char *id, void *plan,
                   rp_op_cb cb, void *arg, struct rp_error **err)
{
  struct rp_swarm *s = p->ctx;
  struct svc_plan *v = plan;
  if (s->stopping)
    return rp_error_set(err, RP_ECANCELED,
                        "reaper stopped before the update was sent");
  if (!v || v->base.kind != RP_KIND_SERVICE || strcmp(v->base.id, id) != 0)
    return rp_error_set(err, EINVAL, "no service update was prepared");
  if (!rp_swarm_lease_holding(s))
    return rp_error_set(err, RP_ECANCELED,
                        "this agent no longer holds the cluster's lease: not "
                        "updating");
  struct upd *u = rp_xcalloc(1, sizeof(*u));
  *u = (struct upd){.s = s, .v = v, .cb = cb, .arg = arg};
  /* From the loop: cb never runs under this call. */
  rp_swarm_later(s, 0, upd_start, u);
  return 0;
}

/* --- probe: how far the update is ------------------------------------------*/

struct look {
  struct rp_swarm *s;
  struct svc_plan *v;
  rp_probe_cb cb;
  void *arg;
  json_t *details; /* owned */
};

static void
look_end(struct look *l, struct rp_probe *st, const struct rp_error *err)
{
  st->exists = true;
  st->running = true;
  st->details = l->details;
  l->cb(l->arg, st, err);
  json_decref(l->details);
  free(l);
}

static void look_failed(struct look *l, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
look_failed(struct look *l, int code, const char *fmt, ...)
{
  cleanup_error struct rp_error *e = NULL;
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&e, code, fmt, ap);
  va_end(ap);
  struct rp_probe st = {.status = rp_swarm_update_name(l->v->state)};
  look_end(l, &st, e);
}

static void
look_tasks_cb(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct look *l = arg;
  if (!err) {
    cleanup_json json_t *after = running_ids(r->body, l->v->base.id);
    size_t replaced = 0, i, k;
    json_t *a, *b;
    json_array_foreach(l->v->tasks_before, i, b)
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
    json_object_set(l->details, "tasks_after", after);
    json_object_set_new(l->details, "tasks_replaced", json_integer(replaced));
  }
  rp_info("provider %s: service %s: update completed", l->s->p->name,
          l->v->base.name);
  struct rp_probe st = {.status = "completed"};
  look_end(l, &st, NULL);
}

static void
look_service_cb(void *arg, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct look *l = arg;
  struct svc_plan *v = l->v;
  if (err && err->code == RP_ENOTFOUND) {
    look_failed(l, RP_ENOTFOUND, "the service was removed during its update");
    return;
  }
  if (err) {
    /* A manager may be briefly unreachable during an update: the runner
     * keeps looking until its deadline. */
    rp_warn("provider %s: service %s: reading its update status: %s",
            l->s->p->name, v->base.name, err->message);
    struct rp_probe st = {.pending = true, .status = "unreadable"};
    look_end(l, &st, NULL);
    return;
  }
  v->state = rp_swarm_update_progress(r->body, v->before_started);
  const char *msg = json_string_value(
      json_object_get(json_object_get(r->body, "UpdateStatus"), "Message"));
  json_object_set_new(l->details, "update_state",
                      json_string(rp_swarm_update_name(v->state)));
  if (v->state != RP_SWARM_UPDATE_PENDING && msg)
    json_object_set_new(l->details, "update_message", json_string(msg));
  switch (v->state) {
  case RP_SWARM_UPDATE_COMPLETED: {
    cleanup_free char *path = tasks_path(v->base.id);
    cleanup_error struct rp_error *e = NULL;
    if (rp_swarm_call(l->s, "GET", path, NULL, 0, look_tasks_cb, l, &e) != 0)
      look_tasks_cb(l, NULL, e);
    return;
  }
  case RP_SWARM_UPDATE_PAUSED:
    look_failed(l, RP_EENGINE, "swarm paused the update: %s",
                msg ? msg : "no message");
    return;
  case RP_SWARM_UPDATE_ROLLBACK_COMPLETED: {
    cleanup_free char *why = rp_xasprintf("swarm rolled the update back: %s",
                                          msg ? msg : "no message");
    struct rp_probe st = {.reverted = true, .status = why};
    look_end(l, &st, NULL);
    return;
  }
  case RP_SWARM_UPDATE_ROLLBACK_PAUSED:
    look_failed(l, RP_EENGINE, "swarm paused the rollback of the update: %s",
                msg ? msg : "no message");
    return;
  default: {
    struct rp_probe st = {.pending = true,
                          .status = rp_swarm_update_name(v->state)};
    look_end(l, &st, NULL);
    return;
  }
  }
}

/* Swarm goes on with an update whoever follows it: a stopping agent says
 * where it was and leaves. */
static void
look_stopping(void *arg)
{
  struct look *l = arg;
  look_failed(l, RP_ECANCELED,
              "reaper stopped while swarm was updating the service (%s): "
              "swarm carries the update on",
              rp_swarm_update_name(l->v->state));
}

int
rp_swarm_service_probe(struct rp_swarm *s, struct rp_swarm_plan *pl,
                       rp_probe_cb cb, void *arg, struct rp_error **err)
{
  struct svc_plan *v = (struct svc_plan *)pl;
  struct look *l = rp_xcalloc(1, sizeof(*l));
  *l = (struct look){.s = s, .v = v, .cb = cb, .arg = arg};
  l->details = v->sent ? json_deep_copy(v->sent) : json_object();
  if (s->stopping) {
    rp_swarm_later(s, 0, look_stopping, l);
    return 0;
  }
  cleanup_free char *path = service_path(v->base.id);
  if (rp_swarm_call(s, "GET", path, NULL, 0, look_service_cb, l, err) != 0) {
    json_decref(l->details);
    free(l);
    return -1;
  }
  return 0;
}
