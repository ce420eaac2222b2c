/* The recycle runner (see runner.h for the sequences).  One struct run per
 * recycle; every transition happens in a callback of a provider operation,
 * of the audit log or of the run's own timer, never under the caller. */
#include "runner.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* How often a wait looks when the engine says nothing: at first soon (a
 * replacement is usually running within a few hundred ms), then less. */
#define POLL_FIRST_MS 100
#define POLL_MAX_MS 1000
/* How long a restored old workload must stay up to be called rolled back. */
#define ROLLBACK_SURVIVE_MS 1500
/* When the audit log cannot take an undoing step's line: try again. */
#define AUDIT_RETRY_MS 1000

enum step {
  ST_RENAME_OLD,
  ST_CREATE,
  ST_DRAIN,
  ST_STOP_OLD,
  ST_START_NEW,
  ST_READY,
  ST_SURVIVE,
  ST_REMOVE_OLD,
  ST_RESTART,
  ST_RESET,      /* in place: a fresh filesystem */
  ST_START_SAME, /* in place: the workload itself again */
  ST_UPDATE,     /* force-update */
  ST_SETTLED,    /* force-update: the engine's update done */
  ST_CORDON,     /* drain-replace: out of service */
  ST_DRAINED,    /* drain-replace: emptied */
  ST_REPLACE,    /* drain-replace: the replace command */
  ST_GONE,       /* drain-replace: the replaced workload went */
  ST_PULL,       /* fresh content: the digest to run, fetched and named */
};

/* ST_PULL is skipped unless the recycle moves to new content. */
static const enum step recreate_stop_first[] = {
    ST_PULL,      ST_RENAME_OLD, ST_CREATE,  ST_DRAIN,     ST_STOP_OLD,
    ST_START_NEW, ST_READY,      ST_SURVIVE, ST_REMOVE_OLD};
/* The survival window before the old one stops: it still serves, so the
 * window costs nothing, and a replacement that dies at once never costs
 * the old one a stop. */
static const enum step recreate_start_first[] = {
    ST_PULL,    ST_RENAME_OLD, ST_CREATE,   ST_START_NEW, ST_READY,
    ST_SURVIVE, ST_DRAIN,      ST_STOP_OLD, ST_REMOVE_OLD};
static const enum step restart_steps[] = {ST_DRAIN, ST_RESTART, ST_READY,
                                          ST_SURVIVE};
static const enum step stop_steps[] = {ST_DRAIN, ST_STOP_OLD};
static const enum step remove_steps[] = {ST_DRAIN, ST_STOP_OLD, ST_REMOVE_OLD};
static const enum step recreate_in_place[] = {
    ST_PULL,       ST_DRAIN, ST_STOP_OLD, ST_RESET,
    ST_START_SAME, ST_READY, ST_SURVIVE};
static const enum step force_update_steps[] = {ST_PULL, ST_UPDATE, ST_SETTLED};
static const enum step drain_replace_steps[] = {
    ST_CORDON, ST_DRAINED, ST_DRAIN, ST_REPLACE, ST_GONE, ST_REMOVE_OLD};

/* What a wait looks for. */
enum wait {
  W_NONE,
  W_READY,    /* running, and healthy with a health check */
  W_SURVIVE,  /* still so when the window ends */
  W_RESTORED, /* the restored old workload: up, and staying up */
  W_SETTLED,  /* the engine's work done (probe no longer pending) */
  W_GONE,     /* the replaced workload no longer there, or down */
};

/* The undoing steps, in this order. */
enum undo {
  U_UNCORDON,
  U_REMOVE_NEW,
  U_RENAME_BACK,
  U_LAND_STOP,
  U_START_OLD,
  U_CHECK_OLD,
  U_END,
};

struct run {
  struct rp_runner_env env;
  struct rp_provider *p; /* borrowed */
  rp_recycle_cb cb;
  void *arg;

  enum rp_strategy strategy;
  bool want_start_first;
  int64_t grace_ms, health_timeout_ms, drain_timeout_ms;
  int64_t survive_ms; /* the survival window */
  char **drain;       /* owned argv or NULL */

  char *id;        /* owned: the workload recycled */
  char *name;      /* owned: its name */
  char *old_name;  /* owned: NAME + RP_RUNNER_OLD_SUFFIX */
  char *new_id;    /* owned: the replacement, once created */
  json_t *base;    /* owned: the members every audit line carries */
  json_t *begin;   /* owned: what recycle.begin says, or NULL */
  json_t *details; /* owned: what recycle.done/failed adds */
  json_t *steps;   /* owned: the steps announced, in order */
  void *plan;      /* the provider's, released at the end */
  bool prepared;   /* prepare was accepted: release is owed once */
  /* A reference to the provider's details, read again at the end. */
  json_t *pdetails;

  const enum step *prog;
  size_t n, pc;
  enum step at; /* the step running, or the last */
  bool running_before, renamed, created, stopped_old, started_new;
  /* A stop of the old workload was asked for and not seen to end (it
   * failed, or reaper died meanwhile): the engine may still carry it out
   * after the old one was started again. */
  bool stop_unsettled;
  bool survived;         /* the replacement lasted its survival window */
  int64_t ready_mono_ms; /* when it was seen ready (0: not yet) */
  /* Nothing to go back to (crash recovery found the old one gone): a
   * failure keeps the replacement as it is. */
  bool keep_replacement;
  bool in_place, reset_done, cordoned, replaced;
  /* The engine removed the old workload when it stopped (it ran with
   * auto-remove): undoing makes it again from the preparation's plan. */
  bool old_gone;
  char *restored_id;  /* owned: the old workload made again */
  bool replace_final; /* a replace command that ran is never undone */
  /* Fresh content: what to pull (owned copies), or NULL. */
  char *image_ref, *image_digest;
  struct rp_registry_cred cred; /* owned strings; NULL: anonymous */
  char **replace;               /* owned argv or NULL */
  int64_t settle_ms;            /* how long the engine's own work may take */

  /* waits */
  uv_timer_t timer;
  enum wait wait;
  const char *wait_id; /* borrowed: new_id or id */
  int64_t deadline_mono, until_mono;
  int64_t poll_ms;
  void *watch; /* the provider's handle, or NULL */
  bool probing, woke;
  bool reverted; /* the engine undid the change itself */

  struct recovery *rec; /* owned: crash recovery's, or NULL */

  /* failure */
  struct rp_error *error; /* owned */
  bool undoing;
  enum undo undo;
  bool undo_ok;
  bool finished;
};

static void advance(struct run *r);
static void fail(struct run *r, const struct rp_error *err, const char *what);
static void undo_next(struct run *r);
static void undo_failed(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
struct recovery;
static void recovery_free(struct recovery *rc);

bool
rp_runner_handles(const struct rp_provider *p)
{
  return p && p->ops && p->ops->prepare;
}

static const char *
step_name(enum step s)
{
  switch (s) {
  case ST_RENAME_OLD:
    return "rename-old";
  case ST_CREATE:
    return "create";
  case ST_DRAIN:
    return "drain";
  case ST_STOP_OLD:
    return "stop-old";
  case ST_START_NEW:
    return "start-new";
  case ST_READY:
    return "ready";
  case ST_SURVIVE:
    return "survive";
  case ST_REMOVE_OLD:
    return "remove-old";
  case ST_RESTART:
    return "restart";
  case ST_RESET:
    return "reset";
  case ST_START_SAME:
    return "start";
  case ST_UPDATE:
    return "update";
  case ST_SETTLED:
    return "settled";
  case ST_CORDON:
    return "cordon";
  case ST_DRAINED:
    return "drained";
  case ST_REPLACE:
    return "replace";
  case ST_GONE:
    return "gone";
  case ST_PULL:
    return "pull";
  }
  return "?";
}

/* --- the end ------------------------------------------------------------ */

static void
run_free(struct run *r)
{
  if (r->prepared && r->p->ops->release)
    r->p->ops->release(r->p, r->plan);
  if (r->drain)
    for (char **a = r->drain; *a; a++)
      free(*a);
  free(r->drain);
  if (r->replace)
    for (char **a = r->replace; *a; a++)
      free(*a);
  free(r->replace);
  free(r->id);
  free(r->name);
  free(r->old_name);
  free(r->new_id);
  free(r->restored_id);
  free(r->image_ref);
  free(r->image_digest);
  free(r->cred.username);
  rp_registry_secret_free(r->cred.password);
  json_decref(r->base);
  json_decref(r->begin);
  json_decref(r->details);
  json_decref(r->steps);
  json_decref(r->pdetails);
  if (r->rec)
    recovery_free(r->rec);
  rp_error_free(r->error);
  free(r);
}

static void
timer_closed_cb(uv_handle_t *h)
{
  run_free(h->data);
}

static void
stop_watching(struct run *r)
{
  uv_timer_stop(&r->timer);
  if (r->watch && r->p->ops->unwatch)
    r->p->ops->unwatch(r->p, r->watch);
  r->watch = NULL;
  r->wait = W_NONE;
}

static void
finish(struct run *r, int status, bool rolled_back)
{
  if (r->finished)
    return;
  r->finished = true;
  stop_watching(r);
  const char *replacement = NULL;
  /* A restarted workload, a service renewed by a forced update and a
   * workload recreated in place are their own replacement. */
  if (status == 0 && r->strategy == RP_STRATEGY_RECREATE)
    replacement = r->in_place ? r->id : r->new_id;
  else if (status == 0 && (r->strategy == RP_STRATEGY_RESTART ||
                           r->strategy == RP_STRATEGY_FORCE_UPDATE))
    replacement = r->id;
  /* What the provider learnt since prepare (a stop that had to kill, a new
   * task's pid). */
  if (r->pdetails)
    json_object_update(r->details, r->pdetails);
  struct rp_recycle_result res = {
      .replacement_id = (char *)(uintptr_t)replacement,
      .rolled_back = rolled_back,
      .failed_step = status == 0 ? NULL : step_name(r->at),
      .details = r->details,
      .steps = r->steps,
      .ready_mono_ms = r->ready_mono_ms,
  };
  r->cb(r->arg, status, &res, status == 0 ? NULL : r->error);
  uv_close((uv_handle_t *)&r->timer, timer_closed_cb);
}

/* --- the audit line before each act -------------------------------------- */

typedef void (*act_fn)(struct run *r);
static void do_pull(struct run *r);

struct announce {
  struct run *r;
  act_fn act;
  json_t *fields; /* owned: kept to try again while undoing */
  const char *what;
};

static void announce_retry_cb(uv_timer_t *t);
static void announce_write(struct announce *a);

static void
announced_cb(void *arg, struct rp_error *err)
{
  struct announce *a = arg;
  struct run *r = a->r;
  if (err && r->undoing) {
    /* Nothing acts before its line is on disk, undoing included: wait for
     * the log (the agent works on reopening it), then go on. */
    rp_err("audit: could not write the undoing step %s of %s: %s; trying "
           "again",
           a->what, r->name, err->message);
    r->timer.data = a;
    uv_timer_start(&r->timer, announce_retry_cb,
                   (uint64_t)(r->env.audit_retry_ms > 0 ? r->env.audit_retry_ms
                                                        : AUDIT_RETRY_MS),
                   0);
    return;
  }
  act_fn act = a->act;
  json_decref(a->fields);
  free(a);
  r->timer.data = r;
  if (err) {
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EAUDIT, "audit log not writable: %s", err->message);
    fail(r, e, "announce the next step");
    rp_error_free(e);
    return;
  }
  act(r);
}

static void
announce_retry_cb(uv_timer_t *t)
{
  announce_write(t->data);
}

static void
announce_write(struct announce *a)
{
  if (a->r->env.append(a->r->env.ctx, "recycle.step", a->fields, announced_cb,
                       a) != 0) {
    char msg[] = "audit append refused";
    struct rp_error bad = {.code = RP_EAUDIT, .message = msg};
    announced_cb(a, &bad);
  }
}

/* Writes recycle.step {step, target, ...} then runs act. */
static void
announce(struct run *r, const char *step, const char *target, act_fn act)
{
  struct announce *a = rp_xcalloc(1, sizeof(*a));
  a->r = r;
  a->act = act;
  a->what = step;
  a->fields = json_deep_copy(r->base);
  json_array_append_new(r->steps, json_string(step));
  json_object_set_new(a->fields, "step", json_string(step));
  json_object_set_new(a->fields, "target", json_string(target));
  if (act == do_pull && r->image_digest)
    json_object_set_new(a->fields, "image_digest",
                        json_string(r->image_digest));
  if (r->new_id)
    json_object_set_new(a->fields, "replacement_id", json_string(r->new_id));
  announce_write(a);
}

/* --- operations' callbacks ------------------------------------------------ */

static void
op_done(struct run *r, const struct rp_error *err, const char *what,
        const char *crashpoint)
{
  if (err) {
    fail(r, err, what);
    return;
  }
  if (crashpoint)
    RP_CRASHPOINT(crashpoint);
  advance(r);
}

/* An operation that could not even start fails its step at once; the
 * failure is handled after the current call returns (a zero timer). */
static void
failed_now_cb(uv_timer_t *t)
{
  struct run *r = t->data;
  struct rp_error *e = r->error;
  r->error = NULL;
  fail(r, e, step_name(r->at));
  rp_error_free(e);
}

static void
cannot_start(struct run *r, struct rp_error *err)
{
  rp_error_free(r->error);
  r->error = err ? rp_error_dup(err) : NULL;
  if (!r->error)
    rp_error_set(&r->error, EIO, "the operation could not start");
  r->timer.data = r;
  uv_timer_start(&r->timer, failed_now_cb, 0, 0);
}

static void
renamed_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (!err)
    r->renamed = true;
  op_done(r, err, "rename old", "after-rename-old");
}

static void
do_rename_old(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->rename(r->p, r->id, r->old_name, renamed_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
created_cb(void *arg, const char *id, const struct rp_error *err)
{
  struct run *r = arg;
  if (!err && id) {
    r->created = true;
    r->new_id = rp_xstrdup(id);
  }
  op_done(r, err, "create replacement", "after-create");
}

static void
do_create(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->create(r->p, r->plan, created_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
pulled_cb(void *arg, json_t *details, const struct rp_error *err)
{
  struct run *r = arg;
  if (details)
    json_object_update(r->details, details);
  op_done(r, err, "pull", "after-pull");
}

static void
do_pull(struct run *r)
{
  struct rp_recycle_spec spec = {
      .strategy = r->strategy,
      .image_ref = r->image_ref,
      .image_digest = r->image_digest,
      .image_cred = r->cred.username ? &r->cred : NULL,
  };
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->pull(r->p, r->plan, &spec, pulled_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
drained_cb(void *arg, json_t *outcome)
{
  struct run *r = arg;
  json_t *d = json_object();
  json_t *argv = json_array();
  for (char **a = r->drain; a && *a; a++)
    json_array_append_new(argv, json_string(*a));
  json_object_set_new(d, "argv", argv);
  if (outcome)
    json_object_update(d, outcome);
  json_object_set_new(r->details, "drain", d);
  advance(r);
}

static void
do_drain(struct run *r)
{
  rp_info("%s: running the drain hook", r->name);
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->drain(r->p, r->id, (const char *const *)r->drain,
                       r->drain_timeout_ms, drained_cb, r, &err) != 0) {
    /* A drain hook that cannot run never holds the recycle back. */
    cleanup_json json_t *o =
        json_pack("{s:s}", "error", err ? err->message : "could not start");
    drained_cb(r, o);
  }
}

static void
stopped_old_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (!err) {
    r->stopped_old = true;
    r->stop_unsettled = false;
  }
  op_done(r, err, "stop old", "after-stop-old");
}

static void
do_stop_old(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  r->stop_unsettled = true;
  if (r->p->ops->stop_workload(r->p, r->id, r->grace_ms, stopped_old_cb, r,
                               &err) != 0)
    cannot_start(r, err);
  else
    RP_CRASHPOINT_SOON(r->env.loop, "while-stop-old");
}

static void
started_new_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (!err)
    r->started_new = true;
  op_done(r, err, "start replacement", "after-start-new");
}

static void
do_start_new(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->start_workload(r->p, r->new_id, started_new_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
removed_old_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (!err && r->strategy == RP_STRATEGY_DRAIN_REPLACE)
    json_object_set_new(r->details, "removed", json_true());
  op_done(r, err, "remove old", "after-remove-old");
}

static void
do_remove_old(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->remove(r->p, r->id, r->grace_ms, removed_old_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
restarted_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (!err)
    r->stopped_old = true; /* it went down, and up again */
  op_done(r, err, "restart", "after-restart");
}

static void
do_restart(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->restart(r->p, r->id, r->grace_ms, restarted_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
reset_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (!err)
    r->reset_done = true;
  op_done(r, err, "reset", "after-reset");
}

static void
do_reset(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->reset(r->p, r->id, r->plan, reset_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
started_same_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  op_done(r, err, "start", "after-start");
}

static void
do_start_same(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->start_workload(r->p, r->id, started_same_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
updated_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  op_done(r, err, "update", "after-update");
}

static void
do_update(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->update(r->p, r->id, r->plan, updated_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
cordoned_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (!err)
    r->cordoned = true;
  op_done(r, err, "cordon", "after-cordon");
}

static void
do_cordon(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->cordon(r->p, r->id, r->plan, cordoned_cb, r, &err) != 0)
    cannot_start(r, err);
}

static void
replaced_cb(void *arg, json_t *outcome, const struct rp_error *err)
{
  struct run *r = arg;
  json_t *d = json_object();
  json_t *argv = json_array();
  for (char **a = r->replace; a && *a; a++)
    json_array_append_new(argv, json_string(*a));
  json_object_set_new(d, "argv", argv);
  if (outcome)
    json_object_update(d, outcome);
  json_object_set_new(r->details, "replace", d);
  if (!err || r->replace_final)
    r->replaced = true;
  op_done(r, err, "replace", "after-replace");
}

static void
do_replace(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->replace(r->p, r->id, r->plan, (const char *const *)r->replace,
                         r->drain_timeout_ms, replaced_cb, r, &err) != 0)
    cannot_start(r, err);
}

/* --- waits: readiness, survival --------------------------------------------*/

static void probe_now(struct run *r);

static void
poll_cb(uv_timer_t *t)
{
  probe_now(t->data);
}

static void
woke_cb(void *arg)
{
  struct run *r = arg;
  if (r->wait == W_NONE)
    return;
  if (r->probing) {
    r->woke = true; /* look again as soon as this look is back */
    return;
  }
  uv_timer_stop(&r->timer);
  probe_now(r);
}

static void
next_look(struct run *r)
{
  int64_t now = rp_mono_ms();
  int64_t end = r->wait == W_SURVIVE || r->wait == W_RESTORED
                    ? r->until_mono
                    : r->deadline_mono;
  int64_t delay = r->poll_ms;
  if (end - now < delay)
    delay = end > now ? end - now : 0;
  r->poll_ms = r->poll_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : r->poll_ms * 2;
  r->timer.data = r;
  uv_timer_start(&r->timer, poll_cb, (uint64_t)delay, 0);
}

static void wait_failed(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
wait_failed(struct run *r, const char *fmt, ...)
{
  enum wait w = r->wait;
  stop_watching(r);
  struct rp_error *e = NULL;
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&e, RP_EENGINE, fmt, ap);
  va_end(ap);
  if (w == W_RESTORED) {
    undo_failed(r,
                "rollback failed: the old %s did not stay up after its "
                "restart (%s)",
                "workload", e->message);
    rp_error_free(e);
    undo_next(r);
    return;
  }
  fail(r, e,
       w == W_SURVIVE ? "replacement did not stay up"
       : w == W_READY ? "replacement not ready"
                      : step_name(r->at)); /* settled, drained, gone */
  rp_error_free(e);
}

static void
probed_cb(void *arg, const struct rp_probe *st, const struct rp_error *err)
{
  struct run *r = arg;
  r->probing = false;
  if (r->wait == W_NONE)
    return;
  if (st && st->details)
    json_object_update(r->details, st->details);
  int64_t now = rp_mono_ms();
  if (err) {
    wait_failed(r, "%s", err->message);
    return;
  }
  if (r->wait == W_GONE) {
    if (!st->exists || (!st->running && !st->pending)) {
      stop_watching(r);
      advance(r);
      return;
    }
    if (now >= r->deadline_mono) {
      wait_failed(r, "still there %llds after its replace command",
                  (long long)(r->settle_ms / 1000));
      return;
    }
    next_look(r);
    return;
  }
  if (st->reverted) {
    r->reverted = true;
    wait_failed(r, "the engine undid it (%s)", st->status ? st->status : "?");
    return;
  }
  if (r->wait == W_SETTLED && !st->exists &&
      r->strategy == RP_STRATEGY_FORCE_UPDATE) {
    wait_failed(r, "it is gone"); /* not settled: no service was updated */
    return;
  }
  if (r->wait == W_SETTLED && !st->pending) {
    stop_watching(r);
    advance(r);
    return;
  }
  if (r->wait == W_SETTLED) {
    if (now >= r->deadline_mono) {
      wait_failed(r, "not done within %llds (%s)",
                  (long long)(r->settle_ms / 1000),
                  st->status ? st->status : "?");
      return;
    }
    if (r->woke) {
      r->woke = false;
      probe_now(r);
      return;
    }
    next_look(r);
    return;
  }
  if (!st->exists) {
    if (st->exited)
      wait_failed(r, "it exited (exit code %d) and is gone", st->exit_code);
    else
      wait_failed(r, "it is gone");
    return;
  }
  if (!st->running) {
    wait_failed(r, "it is %s (exit code %d)",
                st->status ? st->status : "not running", st->exit_code);
    return;
  }
  /* A replacement the engine restarted behind our back is failing, even if
   * it runs at this moment. */
  if (st->restarts > 0 && r->wait_id == r->new_id) {
    wait_failed(r, "it restarted %d times", st->restarts);
    return;
  }
  if (st->health == RP_HEALTH_UNHEALTHY) {
    wait_failed(r, "its health check says unhealthy");
    return;
  }
  bool ready = st->health == RP_HEALTH_NONE || st->health == RP_HEALTH_HEALTHY;
  if (r->wait == W_READY && ready) {
    r->ready_mono_ms = now;
    if (st->health == RP_HEALTH_HEALTHY)
      json_object_set_new(r->details, "health", json_string("healthy"));
    stop_watching(r);
    advance(r);
    return;
  }
  if ((r->wait == W_SURVIVE || r->wait == W_RESTORED) && now >= r->until_mono) {
    enum wait w = r->wait;
    stop_watching(r);
    if (w == W_RESTORED) {
      undo_next(r);
    } else {
      r->survived = true;
      advance(r);
    }
    return;
  }
  if (r->wait == W_READY && now >= r->deadline_mono) {
    wait_failed(r, "not %s within %llds",
                st->health == RP_HEALTH_STARTING ? "healthy" : "running",
                (long long)(r->health_timeout_ms / 1000));
    return;
  }
  if (r->woke) {
    r->woke = false;
    probe_now(r);
    return;
  }
  next_look(r);
}

static void
probe_now(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  r->probing = true;
  if (r->p->ops->probe(r->p, r->wait_id, probed_cb, r, &err) != 0) {
    r->probing = false;
    wait_failed(r, "cannot look at it: %s", err ? err->message : "?");
  }
}

static void
start_wait(struct run *r, enum wait w, const char *id, int64_t span_ms)
{
  r->wait = w;
  r->wait_id = id;
  r->poll_ms = POLL_FIRST_MS;
  r->woke = false;
  int64_t now = rp_mono_ms();
  r->deadline_mono = now + span_ms;
  r->until_mono = now + span_ms;
  if (r->p->ops->watch)
    r->watch = r->p->ops->watch(r->p, id, woke_cb, r);
  probe_now(r);
}

/* --- the sequence ----------------------------------------------------------*/

static void
advance(struct run *r)
{
  while (r->pc < r->n) {
    enum step s = r->prog[r->pc++];
    r->at = s;
    switch (s) {
    case ST_PULL:
      if (!r->image_digest || !r->p->ops->pull)
        continue;
      announce(r, step_name(s), r->id, do_pull);
      return;
    case ST_RENAME_OLD:
      announce(r, step_name(s), r->id, do_rename_old);
      return;
    case ST_CREATE:
      announce(r, step_name(s), r->id, do_create);
      return;
    case ST_DRAIN:
      if (!r->drain || !r->running_before || !r->p->ops->drain)
        continue;
      announce(r, step_name(s), r->id, do_drain);
      return;
    case ST_STOP_OLD:
      if (!r->running_before)
        continue;
      announce(r, step_name(s), r->id, do_stop_old);
      return;
    case ST_START_NEW:
      announce(r, step_name(s), r->new_id, do_start_new);
      return;
    case ST_READY:
      start_wait(r, W_READY, r->new_id ? r->new_id : r->id,
                 r->health_timeout_ms);
      return;
    case ST_SURVIVE:
      start_wait(r, W_SURVIVE, r->new_id ? r->new_id : r->id,
                 r->env.survive_ms > 0 ? r->env.survive_ms : r->survive_ms);
      return;
    case ST_REMOVE_OLD:
      if (!r->p->ops->remove)
        continue;
      announce(r, step_name(s), r->id, do_remove_old);
      return;
    case ST_RESTART:
      announce(r, step_name(s), r->id, do_restart);
      return;
    case ST_RESET:
      announce(r, step_name(s), r->id, do_reset);
      return;
    case ST_START_SAME:
      announce(r, step_name(s), r->id, do_start_same);
      return;
    case ST_UPDATE:
      announce(r, step_name(s), r->id, do_update);
      return;
    case ST_SETTLED:
      start_wait(r, W_SETTLED, r->id, r->settle_ms);
      return;
    case ST_CORDON:
      if (!r->p->ops->cordon)
        continue;
      announce(r, step_name(s), r->id, do_cordon);
      return;
    case ST_DRAINED:
      if (!r->cordoned || !r->p->ops->probe)
        continue;
      start_wait(r, W_SETTLED, r->id, r->settle_ms);
      return;
    case ST_REPLACE:
      if (!r->replace) {
        struct rp_error *e = NULL;
        rp_error_set(&e, EINVAL, "the policy has no replace command");
        fail(r, e, "replace");
        rp_error_free(e);
        return;
      }
      announce(r, step_name(s), r->id, do_replace);
      return;
    case ST_GONE:
      if (!r->p->ops->probe)
        continue;
      start_wait(r, W_GONE, r->id, r->settle_ms);
      return;
    }
  }
  finish(r, 0, false);
}

/* --- failure and undoing ---------------------------------------------------*/

/* Says why undoing failed, before the failure that started it; crash
 * recovery undoes with no failure before (r->error NULL), and the reason
 * is all the error says. */
static void
undo_failed(struct run *r, const char *fmt, ...)
{
  struct rp_error *why = NULL;
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&why, RP_EENGINE, fmt, ap);
  va_end(ap);
  r->undo_ok = false;
  if (!r->error) {
    r->error = why;
    return;
  }
  rp_error_prefix(&r->error, "%s", why->message);
  rp_error_free(why);
}

static void
undone_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (err) {
    undo_failed(r, "rollback failed (%s)", err->message);
    rp_err("%s: an undoing step failed: %s", r->name, err->message);
  }
  undo_next(r);
}

static void
do_remove_new(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  /* grace 0: the replacement failed; nothing of it is worth a grace. */
  if (r->p->ops->remove(r->p, r->new_id, 0, undone_cb, r, &err) != 0)
    undone_cb(r, err);
}

static void
renamed_back_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (err && err->code == RP_ENOTFOUND && r->stopped_old) {
    /* Gone since it stopped: the engine removed it (auto-remove). */
    r->old_gone = true;
    undo_next(r);
    return;
  }
  undone_cb(r, err);
}

static void
do_rename_back(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->rename(r->p, r->id, r->name, renamed_back_cb, r, &err) != 0)
    undone_cb(r, err);
}

static void
landed_cb(void *arg, const struct rp_error *err)
{
  struct run *r = arg;
  if (!err) {
    r->stopped_old = true;
    r->stop_unsettled = false;
  }
  undone_cb(r, err);
}

/* The engine answers a stop only once the workload is down: a stop asked
 * for again returns when one still under way has landed, so that the start
 * that follows is the last word. */
static void
do_land_stop(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->stop_workload(r->p, r->id, r->grace_ms, landed_cb, r, &err) !=
      0)
    undone_cb(r, err);
}

static void
do_start_old(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->start_workload(r->p, r->restored_id ? r->restored_id : r->id,
                                undone_cb, r, &err) != 0)
    undone_cb(r, err);
}

static void
recreated_old_cb(void *arg, const char *id, const struct rp_error *err)
{
  struct run *r = arg;
  if (err) {
    undone_cb(r, err);
    return;
  }
  r->restored_id = rp_xstrdup(id);
  /* Started as the old one would have been. */
  announce(r, "undo-start-old", r->restored_id, do_start_old);
}

static void
do_recreate_old(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->create(r->p, r->plan, recreated_old_cb, r, &err) != 0)
    undone_cb(r, err);
}

static void
do_uncordon(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (r->p->ops->uncordon(r->p, r->id, r->plan, undone_cb, r, &err) != 0)
    undone_cb(r, err);
}

static void
undo_next(struct run *r)
{
  switch (r->undo++) {
  case U_UNCORDON:
    if (r->cordoned && r->p->ops->uncordon) {
      announce(r, "undo-cordon", r->id, do_uncordon);
      return;
    }
    undo_next(r);
    return;
  case U_REMOVE_NEW:
    if (r->created) {
      announce(r, "undo-remove-replacement", r->new_id, do_remove_new);
      return;
    }
    undo_next(r);
    return;
  case U_RENAME_BACK:
    if (r->renamed) {
      announce(r, "undo-rename-old", r->id, do_rename_back);
      return;
    }
    undo_next(r);
    return;
  case U_LAND_STOP:
    if (r->stop_unsettled && !r->old_gone && r->running_before &&
        !r->reset_done) {
      announce(r, "undo-land-stop", r->id, do_land_stop);
      return;
    }
    undo_next(r);
    return;
  case U_START_OLD:
    if (r->old_gone && r->plan && r->p->ops->create) {
      /* What the preparation kept makes it again: the same configuration,
       * under its name. */
      announce(r, "undo-recreate-old", r->id, do_recreate_old);
      return;
    }
    if (r->old_gone) {
      undo_failed(r, "rollback failed: the old one is gone (the engine "
                     "removed it when it stopped)");
      r->undo = U_END;
      undo_next(r);
      return;
    }
    /* Started again when it was stopped, or may have been (a stop that
     * could not be seen to land). */
    if ((r->stopped_old || r->stop_unsettled) && r->running_before &&
        !r->reset_done) {
      announce(r, "undo-start-old", r->id, do_start_old);
      return;
    }
    r->undo = U_END; /* nothing restarted: nothing to check */
    undo_next(r);
    return;
  case U_CHECK_OLD:
    if (!r->p->ops->probe || r->strategy == RP_STRATEGY_DRAIN_REPLACE) {
      undo_next(r);
      return;
    }
    /* "Rolled back" is only said of an old workload that stays up: a stop
     * asked for before may still land, and the engine restores what it
     * restores. */
    start_wait(r, W_RESTORED, r->restored_id ? r->restored_id : r->id,
               r->env.restored_ms > 0 ? r->env.restored_ms
                                      : ROLLBACK_SURVIVE_MS);
    return;
  default:
    free(r->new_id);
    r->new_id = NULL;
    finish(r, -1, r->undo_ok);
    return;
  }
}

static void
fail(struct run *r, const struct rp_error *err, const char *what)
{
  stop_watching(r);
  if (!r->error) {
    r->error = rp_error_dup(err);
    rp_error_prefix(&r->error, "%s", what);
  }
  if (r->undoing)
    return;
  /* Past the point where the replacement runs and lasted, nothing is
   * undone: the replacement stays, and what is left of the old one is
   * said. */
  if (r->keep_replacement) {
    rp_error_prefix(&r->error,
                    "the old one is gone: the replacement %.12s is left as "
                    "it is",
                    r->new_id ? r->new_id : "?");
    finish(r, -1, false);
    return;
  }
  if (r->strategy == RP_STRATEGY_RECREATE && !r->in_place && r->survived) {
    rp_error_prefix(
        &r->error, "the replacement %.12s runs; the old one remains as %s",
        r->new_id ? r->new_id : "?", r->renamed ? r->old_name : r->id);
    finish(r, -1, false);
    return;
  }
  if (r->strategy == RP_STRATEGY_FORCE_UPDATE) {
    /* The engine's own failure action decides; reverted when it undid it.
     * An update the engine did not take changed nothing. */
    finish(r, -1, r->reverted || r->at == ST_UPDATE);
    return;
  }
  if (r->strategy == RP_STRATEGY_DRAIN_REPLACE && r->replaced) {
    rp_error_prefix(&r->error, "after the replace command ran");
    finish(r, -1, false);
    return;
  }
  if (r->in_place && r->reset_done) {
    /* Its old filesystem is gone, by design: nothing to go back to; crash
     * recovery finishes it. */
    rp_error_prefix(&r->error,
                    "%s is left without a running task after its "
                    "fresh filesystem was made",
                    r->name);
    finish(r, -1, false);
    return;
  }
  if (r->strategy != RP_STRATEGY_RECREATE &&
      r->strategy != RP_STRATEGY_DRAIN_REPLACE) {
    /* restart, stop, remove: nothing was replaced. */
    finish(r, -1, !r->stopped_old);
    return;
  }
  r->undoing = true;
  r->undo_ok = true;
  r->undo = U_UNCORDON;
  undo_next(r);
}

/* --- the start ---------------------------------------------------------- */

static void
begun_cb(void *arg, struct rp_error *err)
{
  struct run *r = arg;
  if (err) {
    /* Fail closed: the announcement is not on disk, so nothing is done. */
    rp_error_free(r->error);
    r->error = NULL;
    rp_error_set(&r->error, RP_EAUDIT, "audit log not writable: %s",
                 err->message);
    finish(r, -1, true);
    return;
  }
  RP_CRASHPOINT("after-begin");
  advance(r);
}

static void
begin_write(struct run *r)
{
  cleanup_json json_t *f = json_deep_copy(r->begin ? r->begin : r->base);
  /* The order chosen (start-first may have fallen back): crash recovery
   * reads it. */
  json_t *order = json_object_get(r->details, "order");
  if (order)
    json_object_set(f, "order", order);
  if (r->env.append(r->env.ctx, "recycle.begin", f, begun_cb, r) != 0) {
    char msg[] = "audit append refused";
    struct rp_error bad = {.code = RP_EAUDIT, .message = msg};
    begun_cb(r, &bad);
  }
}

static void begin_write(struct run *r);

static void
prepared_cb(void *arg, const struct rp_prepared *pr, const struct rp_error *err)
{
  struct run *r = arg;
  if (err) {
    r->at = ST_RENAME_OLD;
    if (!r->error) {
      r->error = rp_error_dup(err);
      /* A refusal keeps its words: they are its reason. */
      if (err->code != RP_EREFUSED)
        rp_error_prefix(&r->error, "prepare");
    }
    finish(r, -1, true); /* nothing was done */
    return;
  }
  r->plan = pr->plan;
  r->running_before = pr->running;
  if (pr->name && strcmp(pr->name, r->name) != 0) {
    /* Renamed since it was last seen: the audit lines say the name it has
     * now, the one crash recovery will look for. */
    free(r->name);
    r->name = rp_xstrdup(pr->name);
    json_object_set_new(r->base, "name", json_string(r->name));
    if (r->begin)
      json_object_set_new(r->begin, "name", json_string(r->name));
  }
  if (pr->details) {
    json_object_update(r->details, pr->details);
    r->pdetails = json_incref(pr->details);
  }
  r->in_place = pr->in_place;
  if (pr->settle_ms > 0)
    r->settle_ms = pr->settle_ms;
  r->replace_final = pr->replace_final;
  switch (r->strategy) {
  case RP_STRATEGY_RECREATE: {
    if (pr->in_place) {
      json_object_set_new(r->details, "order", json_string("stop-first"));
      r->prog = recreate_in_place;
      r->n = RP_ARRAY_LEN(recreate_in_place);
      break;
    }
    bool start_first = r->want_start_first && !pr->clash;
    if (r->want_start_first && pr->clash) {
      rp_info("%s: start-first falls back to stop-first: %s", r->name,
              pr->clash);
      json_object_set_new(r->details, "order_fallback", json_string(pr->clash));
    }
    json_object_set_new(
        r->details, "order",
        json_string(start_first ? "start-first" : "stop-first"));
    r->prog = start_first ? recreate_start_first : recreate_stop_first;
    r->n = start_first ? RP_ARRAY_LEN(recreate_start_first)
                       : RP_ARRAY_LEN(recreate_stop_first);
    free(r->old_name);
    r->old_name = rp_xasprintf("%s%s", r->name, RP_RUNNER_OLD_SUFFIX);
    break;
  }
  case RP_STRATEGY_RESTART:
    r->prog = restart_steps;
    r->n = RP_ARRAY_LEN(restart_steps);
    break;
  case RP_STRATEGY_STOP:
    r->prog = stop_steps;
    r->n = RP_ARRAY_LEN(stop_steps);
    break;
  case RP_STRATEGY_REMOVE:
    r->prog = remove_steps;
    r->n = RP_ARRAY_LEN(remove_steps);
    break;
  case RP_STRATEGY_FORCE_UPDATE:
    r->prog = force_update_steps;
    r->n = RP_ARRAY_LEN(force_update_steps);
    break;
  case RP_STRATEGY_DRAIN_REPLACE:
    r->prog = drain_replace_steps;
    r->n = RP_ARRAY_LEN(drain_replace_steps);
    break;
  default: {
    struct rp_error *e = NULL;
    rp_error_set(&e, ENOTSUP, "strategy %s is not one for this workload",
                 rp_strategy_name(r->strategy));
    r->error = e;
    finish(r, -1, true);
    return;
  }
  }
  begin_write(r);
}

int
rp_runner_start(const struct rp_runner_env *env, struct rp_provider *p,
                const struct rp_workload *w, const struct rp_recycle_spec *spec,
                const json_t *base, const json_t *begin, rp_recycle_cb cb,
                void *arg, struct rp_error **err)
{
  if (!rp_runner_handles(p))
    return rp_error_set(err, ENOTSUP, "provider %s offers no operations",
                        p && p->ops ? p->ops->type : "?");
  struct run *r = rp_xcalloc(1, sizeof(*r));
  r->env = *env;
  r->p = p;
  r->cb = cb;
  r->arg = arg;
  r->strategy = spec->strategy;
  r->want_start_first = spec->order == RP_ORDER_START_FIRST;
  r->grace_ms = spec->grace_ms;
  r->health_timeout_ms = spec->health_timeout_ms;
  r->survive_ms = spec->survive_ms;
  r->drain_timeout_ms = spec->drain_timeout_ms;
  /* The engine's own work (a service update, a node's drain, a replaced
   * machine going away) is given the policy's health and drain time. */
  r->settle_ms = spec->health_timeout_ms + spec->drain_timeout_ms;
  if (spec->replace_argv) {
    size_t n = 0;
    while (spec->replace_argv[n])
      n++;
    r->replace = rp_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
      r->replace[i] = rp_xstrdup(spec->replace_argv[i]);
  }
  if (spec->drain_argv) {
    size_t n = 0;
    while (spec->drain_argv[n])
      n++;
    r->drain = rp_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
      r->drain[i] = rp_xstrdup(spec->drain_argv[i]);
  }
  if (spec->image_digest && spec->image_ref) {
    r->image_ref = rp_xstrdup(spec->image_ref);
    r->image_digest = rp_xstrdup(spec->image_digest);
    if (spec->image_cred && spec->image_cred->username) {
      r->cred.username = rp_xstrdup(spec->image_cred->username);
      r->cred.password = rp_xstrdup(
          spec->image_cred->password ? spec->image_cred->password : "");
    }
  }
  r->id = rp_xstrdup(w->id);
  r->name = rp_xstrdup(w->name);
  r->base = json_deep_copy(base);
  r->begin = begin ? json_deep_copy(begin) : NULL;
  r->details = json_object();
  r->steps = json_array();
  uv_timer_init(env->loop, &r->timer);
  r->timer.data = r;
  if (p->ops->prepare(p, w, spec, prepared_cb, r, err) != 0) {
    r->finished = true;
    uv_close((uv_handle_t *)&r->timer, timer_closed_cb);
    return -1;
  }
  r->prepared = true;
  return 0;
}

/* --- crash recovery ---------------------------------------------------------
 * A recycle the audit log says began and never ended (reaper died in it, or
 * a failure left it half undone): what is left of it in the engine is
 * looked at, and it is finished or undone with the same operations, each
 * acting step announced as in a recycle.  The looks: the workload probed
 * (and, for a recreate beside it, its replacement found and probed), or,
 * for a provider whose operations act only on a preparation's plan
 * (ops->recover_by_prepare), the workload prepared again, reading only
 * (spec.recovery), which also says what the engine shows of the recycle's
 * own work (a node's drain, an act that is never undone).  The rules, by
 * strategy (recovery_decide):
 *
 *   recreate beside, restart, stop, remove: once the old workload's stop
 *     was asked for, the recycle goes on (the old one is going down
 *     anyway); before that, the old one gets its name back and runs, or,
 *     running untouched, is left alone (due again).  A stop asked for
 *     before the crash may land after it (the engine finishes a stop that
 *     its client abandoned), so it is asked for again, which returns once it
 *     has landed, before anything is started again; what is started must
 *     stay up.
 *   recreate in place: the same, the rest being stop, reset, start; once
 *     its start was announced and it runs, nothing was left half done.
 *   force-update: an update announced and taken by the engine is the
 *     engine's to carry on: waited for until settled (probe no longer
 *     pending), and reported as the engine ended it.
 *   drain-replace: once the replace command ran (the provider's fact, or
 *     announced and the workload since went down) nothing is undone: a
 *     workload that is down is removed, one still up goes by itself; before
 *     that, a drain is undone (uncordon). */

struct recovery {
  rp_recover_item_cb cb;
  void *arg;
  json_t *steps;   /* owned: what the log announced, or NULL */
  char *repl_id;   /* owned: the replacement the log named, or NULL */
  char *acted;     /* owned: rp_prepared.acted, or NULL */
  char found[512]; /* what was found, for the detail */
  const char *action;
  bool undo_only; /* it was only undone (the old one given back) */
  bool retry;     /* it could not look: nothing decided */
  bool old_exists, old_running, old_renamed, new_exists, new_running;
  bool cordoned; /* rp_prepared.cordoned */
};

static bool
announced(const struct recovery *rc, const char *step)
{
  size_t i;
  json_t *v;
  json_array_foreach(rc->steps, i, v)
  {
    const char *s = json_string_value(v);
    if (s && strcmp(s, step) == 0)
      return true;
  }
  return false;
}

static void
recovery_free(struct recovery *rc)
{
  json_decref(rc->steps);
  free(rc->repl_id);
  free(rc->acted);
  free(rc);
}

/* What "finished" and "rolled back" mean, in words, by strategy. */
static const char *
finished_words(const struct run *r)
{
  if (r->strategy == RP_STRATEGY_RECREATE)
    return r->in_place ? "finished: it runs on a fresh filesystem"
                       : "finished: the replacement runs";
  return "finished";
}

static const char *
rolled_back_words(const struct run *r)
{
  switch (r->strategy) {
  case RP_STRATEGY_FORCE_UPDATE:
    return "rolled back by the engine";
  case RP_STRATEGY_DRAIN_REPLACE:
    return "rolled back: its drain is undone";
  default:
    return r->in_place ? "rolled back: it runs again"
                       : "rolled back: the old one runs under its name";
  }
}

/* finish() of a recovery: what was found and done, for recycle.recovered. */
static void
recovered_cb(void *arg, int status, const struct rp_recycle_result *res,
             const struct rp_error *err)
{
  struct run *r = arg;
  struct recovery *rc = r->rec;
  const char *action = rc->action;
  const char *now_running = NULL;
  bool ok;
  if (rc->undo_only) {
    /* The old one given back its running state: so only if it stays up. */
    ok = res && res->rolled_back;
    now_running = ok ? (r->restored_id ? r->restored_id : r->id) : NULL;
  } else if (status == 0) {
    ok = true;
    /* Nothing found, nothing runs: a restarted workload that is gone is no
     * replacement of itself; and nothing done, nothing replaced. */
    if ((rc->old_exists || rc->new_exists) &&
        strcmp(action, RP_RECOVERY_NONE) != 0)
      now_running = res ? res->replacement_id : NULL;
  } else if (res && res->rolled_back) {
    /* Going on failed, and was undone (or the engine undid it): the old one
     * runs again. */
    action = RP_RECOVERY_ROLLED_BACK;
    ok = true;
    now_running = r->id;
  } else {
    ok = false;
  }
  cleanup_free char *detail = rp_xasprintf(
      "%s%s%s%s%s", rc->found, *rc->found ? "; " : "",
      !ok                                            ? "not put right"
      : strcmp(action, RP_RECOVERY_NONE) == 0        ? "nothing to do"
      : strcmp(action, RP_RECOVERY_ROLLED_BACK) == 0 ? rolled_back_words(r)
                                                     : finished_words(r),
      err && !ok ? ": " : "", err && !ok ? err->message : "");
  struct rp_recovery out = {
      .id = r->id,
      .name = r->name,
      .action = action,
      .replacement_id = now_running,
      .detail = rc->retry && err ? err->message : detail,
      .ok = ok,
      .retry = rc->retry,
  };
  rc->cb(rc->arg, &out);
}

/* Ends a recovery that had nothing to do, or could not look. */
static void
recovery_end_now(struct run *r, const char *action, bool ok, const char *why)
{
  if (!ok) {
    rp_error_free(r->error);
    r->error = NULL;
    rp_error_set(&r->error, RP_EENGINE, "%s", why);
    r->rec->action = action;
    finish(r, -1, false);
    return;
  }
  r->rec->action = action;
  snprintf(r->rec->found + strlen(r->rec->found),
           sizeof(r->rec->found) - strlen(r->rec->found), "; %s", why);
  finish(r, 0, false);
}

/* Runs prog from its start as a recycle would. */
static void
recovery_run(struct run *r, const enum step *prog, size_t n)
{
  r->prog = prog;
  r->n = n;
  r->pc = 0;
  r->rec->action = RP_RECOVERY_FINISHED;
  advance(r);
}

/* Gives the old workload back its name and a running state (or lifts its
 * drain), through the undoing steps from `from`. */
static void
recovery_undo(struct run *r, const char *action, enum undo from)
{
  r->rec->action = action;
  r->rec->undo_only = true;
  r->undoing = true;
  r->undo_ok = true;
  r->undo = from;
  undo_next(r);
}

/* Whether the provider offers an operation (have) that the recovery chosen
 * needs: false, and the recovery ended as not put right, when it does
 * not. */
static bool
recovery_can(struct run *r, bool have, const char *op)
{
  if (have)
    return true;
  cleanup_free char *why =
      rp_xasprintf("provider type %s cannot %s, which this recovery needs",
                   r->p->ops->type, op);
  recovery_end_now(r, RP_RECOVERY_NONE, false, why);
  return false;
}

static const enum step recover_forward_stop_first[] = {
    ST_STOP_OLD, ST_START_NEW, ST_READY, ST_SURVIVE, ST_REMOVE_OLD};
static const enum step recover_forward_start_first[] = {
    ST_START_NEW, ST_READY, ST_SURVIVE, ST_STOP_OLD, ST_REMOVE_OLD};
static const enum step recover_replacement_only[] = {ST_START_NEW, ST_READY,
                                                     ST_SURVIVE};
static const enum step recover_in_place[] = {
    ST_STOP_OLD, ST_RESET, ST_START_SAME, ST_READY, ST_SURVIVE};
static const enum step recover_stop[] = {ST_STOP_OLD};
static const enum step recover_remove[] = {ST_STOP_OLD, ST_REMOVE_OLD};
static const enum step recover_settle[] = {ST_SETTLED};
static const enum step recover_remove_replaced[] = {ST_REMOVE_OLD};

/* What was found, in words, for the detail. */
static void
recovery_found(struct run *r)
{
  struct recovery *rc = r->rec;
  bool engine_work = r->strategy == RP_STRATEGY_FORCE_UPDATE ||
                     r->strategy == RP_STRATEGY_DRAIN_REPLACE;
  size_t n = sizeof(rc->found);
  snprintf(rc->found, n, "found: %s%s%s", r->name,
           !rc->old_exists   ? " gone"
           : rc->old_renamed ? " renamed"
                             : "",
           !rc->old_exists   ? ""
           : rc->old_running ? (engine_work ? " and up" : " and running")
                             : (engine_work ? " and down" : " and stopped"));
  size_t used = strlen(rc->found);
  if (r->strategy == RP_STRATEGY_RECREATE && !r->in_place)
    used +=
        (size_t)snprintf(rc->found + used, n - used, ", %s%s",
                         rc->new_exists ? "its replacement " : "no replacement",
                         !rc->new_exists   ? ""
                         : rc->new_running ? "running"
                                           : "not running");
  if (used < n && rc->cordoned)
    used += (size_t)snprintf(rc->found + used, n - used,
                             ", out of service by a recycle's drain");
  if (used < n && rc->acted)
    snprintf(rc->found + used, n - used, "; %s", rc->acted);
}

/* A stop of the old workload asked for before (or not known not to be):
 * it may still land, and is asked for again before anything starts. */
static void
recovery_note_stop(struct run *r, bool stop_asked)
{
  struct recovery *rc = r->rec;
  if (stop_asked && rc->old_exists) {
    r->stop_unsettled = true;
    r->stopped_old = !rc->old_running;
  }
}

static void
recovery_decide_beside(struct run *r, bool stop_asked)
{
  struct recovery *rc = r->rec;
  if (!rc->old_exists && !rc->new_exists) {
    recovery_end_now(r, RP_RECOVERY_NONE, false,
                     "neither the workload nor a replacement exists");
    return;
  }
  if (!recovery_can(r, r->p->ops->rename, "rename") ||
      !recovery_can(r, r->p->ops->start_workload, "start") ||
      !recovery_can(r, r->p->ops->stop_workload, "stop") ||
      !recovery_can(r, r->p->ops->remove, "remove") ||
      !recovery_can(r, r->p->ops->probe, "probe"))
    return;
  r->created = rc->new_exists;
  if (rc->new_exists)
    r->new_id = rp_xstrdup(rc->repl_id);
  if (!rc->old_exists) {
    /* The old one went (auto-remove, or the remove had landed): the
     * replacement is all there is. */
    r->running_before = false;
    r->keep_replacement = true;
    recovery_run(r, recover_replacement_only,
                 RP_ARRAY_LEN(recover_replacement_only));
    return;
  }
  if (rc->new_exists && stop_asked) {
    if (r->want_start_first)
      recovery_run(r, recover_forward_start_first,
                   RP_ARRAY_LEN(recover_forward_start_first));
    else
      recovery_run(r, recover_forward_stop_first,
                   RP_ARRAY_LEN(recover_forward_stop_first));
    return;
  }
  if (!rc->new_exists && !rc->old_renamed && rc->old_running && !stop_asked) {
    recovery_end_now(r, RP_RECOVERY_NONE, true,
                     "the recycle had not begun in the engine");
    return;
  }
  if (!rc->old_running)
    r->stopped_old = true;
  recovery_undo(r, RP_RECOVERY_ROLLED_BACK, U_UNCORDON);
}

/* The workload keeps its id: stop, reset, start (rp_prepared.in_place). */
static void
recovery_decide_in_place(struct run *r, bool stop_asked)
{
  struct recovery *rc = r->rec;
  if (!recovery_can(r, r->p->ops->reset, "reset") ||
      !recovery_can(r, r->p->ops->start_workload, "start") ||
      !recovery_can(r, r->p->ops->stop_workload, "stop") ||
      !recovery_can(r, r->p->ops->probe, "probe"))
    return;
  if (rc->old_running && rc->steps && announced(rc, "start")) {
    recovery_end_now(r, RP_RECOVERY_NONE, true,
                     "its start on a fresh filesystem was asked for, and it "
                     "runs: nothing was left half done");
    return;
  }
  if (rc->old_running && !stop_asked) {
    recovery_end_now(r, RP_RECOVERY_NONE, true,
                     "the recycle had not begun in the engine");
    return;
  }
  if (stop_asked) {
    /* Whatever the reset and start had come to: the rest again, from a
     * stop that lands (a no-op on one that is down). */
    recovery_run(r, recover_in_place, RP_ARRAY_LEN(recover_in_place));
    return;
  }
  /* Down, nothing of the recycle done: started again (after a stop that
   * clears what a dead task left), and it must stay up. */
  r->stopped_old = true;
  r->stop_unsettled = true;
  recovery_undo(r, RP_RECOVERY_ROLLED_BACK, U_LAND_STOP);
}

static void
recovery_decide_update(struct run *r)
{
  struct recovery *rc = r->rec;
  if (!rc->old_exists) {
    recovery_end_now(r, RP_RECOVERY_NONE, true, "it is gone");
    return;
  }
  if (rc->steps && !announced(rc, "update")) {
    recovery_end_now(r, RP_RECOVERY_NONE, true,
                     "its update had not been asked for: it is due again");
    return;
  }
  if (!rc->acted) {
    recovery_end_now(r, RP_RECOVERY_NONE, true,
                     "the engine shows no update of it: it is due again");
    return;
  }
  /* The engine carries its update on by itself: waited for, and reported
   * as it ended (done, or undone by the engine). */
  recovery_run(r, recover_settle, RP_ARRAY_LEN(recover_settle));
}

static void
recovery_decide_drain_replace(struct run *r)
{
  struct recovery *rc = r->rec;
  if (!rc->old_exists) {
    recovery_end_now(r, RP_RECOVERY_FINISHED, true, "it is gone");
    return;
  }
  /* A workload that went down after its replace command was asked for went
   * as the command meant, whatever the provider could note of it. */
  bool replaced = rc->acted || (announced(rc, "replace") && !rc->old_running);
  /* Never undone from here on, should the remove fail. */
  r->replaced = replaced;
  if (replaced && !rc->old_running) {
    if (!recovery_can(r, r->p->ops->remove, "remove"))
      return;
    recovery_run(r, recover_remove_replaced,
                 RP_ARRAY_LEN(recover_remove_replaced));
    return;
  }
  if (replaced) {
    recovery_end_now(r, RP_RECOVERY_FINISHED, true,
                     "its replace command ran: nothing is undone, and it "
                     "goes by itself");
    return;
  }
  if (!rc->cordoned) {
    recovery_end_now(r, RP_RECOVERY_NONE, true,
                     "its replace command had not run, and no drain of it is "
                     "left to undo: it is due again");
    return;
  }
  if (!recovery_can(r, r->p->ops->uncordon, "uncordon"))
    return;
  r->cordoned = true;
  recovery_undo(r, RP_RECOVERY_ROLLED_BACK, U_UNCORDON);
}

static void
recovery_decide(struct run *r)
{
  struct recovery *rc = r->rec;
  recovery_found(r);
  r->running_before = true; /* only running workloads are recycled */
  r->renamed = rc->old_renamed;
  /* Unknown steps (a failure in this run left it): a stop may have been
   * asked for. */
  bool stop_asked = !rc->steps || announced(rc, "stop-old") ||
                    announced(rc, "restart") || announced(rc, "remove-old") ||
                    announced(rc, "reset") || announced(rc, "start");
  switch (r->strategy) {
  case RP_STRATEGY_RECREATE:
    recovery_note_stop(r, stop_asked);
    if (r->in_place)
      recovery_decide_in_place(r, stop_asked);
    else
      recovery_decide_beside(r, stop_asked);
    return;
  case RP_STRATEGY_RESTART:
    if (!rc->old_exists) {
      recovery_end_now(r, RP_RECOVERY_FINISHED, true, "it is gone");
      return;
    }
    if (!stop_asked && rc->old_running) {
      recovery_end_now(r, RP_RECOVERY_NONE, true,
                       "it runs untouched, and is due again");
      return;
    }
    if (!recovery_can(r, r->p->ops->start_workload, "start") ||
        !recovery_can(r, r->p->ops->stop_workload, "stop"))
      return;
    /* Up again and staying up, whatever the restart had come to: a stop
     * landed first (a no-op on one that is down). */
    r->stopped_old = true;
    r->stop_unsettled = true;
    recovery_undo(r, RP_RECOVERY_FINISHED, U_LAND_STOP);
    return;
  case RP_STRATEGY_STOP:
  case RP_STRATEGY_REMOVE:
    recovery_note_stop(r, stop_asked);
    if (!rc->old_exists) {
      recovery_end_now(r, RP_RECOVERY_FINISHED, true, "it is gone");
      return;
    }
    if (!stop_asked && rc->old_running) {
      recovery_end_now(r, RP_RECOVERY_NONE, true,
                       "it runs untouched, and is due again");
      return;
    }
    if (!recovery_can(r, r->p->ops->stop_workload, "stop"))
      return;
    if (r->strategy == RP_STRATEGY_STOP)
      recovery_run(r, recover_stop, RP_ARRAY_LEN(recover_stop));
    else if (recovery_can(r, r->p->ops->remove, "remove"))
      recovery_run(r, recover_remove, RP_ARRAY_LEN(recover_remove));
    return;
  case RP_STRATEGY_FORCE_UPDATE:
  case RP_STRATEGY_DRAIN_REPLACE:
    /* What the engine shows of its own work is the preparation's to say. */
    if (!r->p->ops->recover_by_prepare) {
      recovery_end_now(r, RP_RECOVERY_NONE, false,
                       "only a provider that recovers by its preparation can "
                       "say what the engine did of this strategy");
      return;
    }
    if (r->strategy == RP_STRATEGY_FORCE_UPDATE)
      recovery_decide_update(r);
    else
      recovery_decide_drain_replace(r);
    return;
  default:
    recovery_end_now(r, RP_RECOVERY_NONE, false,
                     "the core does not recover this strategy");
    return;
  }
}

static void
recovery_failed_look(struct run *r, const char *what,
                     const struct rp_error *err)
{
  cleanup_free char *why =
      rp_xasprintf("could not look at %s: %s", what, err ? err->message : "?");
  r->rec->retry = true;
  recovery_end_now(r, RP_RECOVERY_NONE, false, why);
}

static void
recovery_new_probed_cb(void *arg, const struct rp_probe *st,
                       const struct rp_error *err)
{
  struct run *r = arg;
  if (err) {
    recovery_failed_look(r, "the replacement", err);
    return;
  }
  r->rec->new_exists = st->exists;
  r->rec->new_running = st->exists && st->running;
  recovery_decide(r);
}

static void
recovery_look_new(struct run *r)
{
  cleanup_error struct rp_error *err = NULL;
  if (!r->rec->repl_id || !r->p->ops->probe) {
    recovery_decide(r);
    return;
  }
  if (r->p->ops->probe(r->p, r->rec->repl_id, recovery_new_probed_cb, r,
                       &err) != 0)
    recovery_failed_look(r, "the replacement", err);
}

static void
recovery_found_cb(void *arg, const char *id, const struct rp_error *err)
{
  struct run *r = arg;
  if (err) {
    recovery_failed_look(r, "the replacement", err);
    return;
  }
  if (id)
    r->rec->repl_id = rp_xstrdup(id);
  recovery_look_new(r);
}

/* The old workload looked at: a recreate beside it looks for its
 * replacement too. */
static void
recovery_looked_old(struct run *r)
{
  struct recovery *rc = r->rec;
  if (r->strategy != RP_STRATEGY_RECREATE || r->in_place) {
    recovery_decide(r);
    return;
  }
  /* The replacement the log named, or the one the provider marked. */
  if (rc->repl_id || !r->p->ops->find_replacement) {
    recovery_look_new(r);
    return;
  }
  cleanup_error struct rp_error *e = NULL;
  if (r->p->ops->find_replacement(r->p, r->id, r->name, recovery_found_cb, r,
                                  &e) != 0)
    recovery_failed_look(r, "the replacement", e);
}

static void
recovery_old_probed_cb(void *arg, const struct rp_probe *st,
                       const struct rp_error *err)
{
  struct run *r = arg;
  if (err) {
    recovery_failed_look(r, "the workload", err);
    return;
  }
  struct recovery *rc = r->rec;
  rc->old_exists = st->exists;
  rc->old_running = st->exists && st->running;
  rc->old_renamed =
      st->exists && st->name && strcmp(st->name, r->old_name) == 0;
  recovery_looked_old(r);
}

/* A preparation that refuses would refuse again: said, not tried again. */
static bool
refusal(const struct rp_error *err)
{
  return err->code == RP_EREFUSED || err->code == RP_ECONFLICT ||
         err->code == RP_ECONFIG || err->code == EINVAL || err->code == ENOTSUP;
}

static void
recovery_prepared_cb(void *arg, const struct rp_prepared *pr,
                     const struct rp_error *err)
{
  struct run *r = arg;
  struct recovery *rc = r->rec;
  if (err && err->code != RP_ENOTFOUND) {
    if (!refusal(err)) {
      recovery_failed_look(r, "the workload", err);
      return;
    }
    cleanup_free char *why =
        rp_xasprintf("its preparation refused: %s", err->message);
    recovery_end_now(r, RP_RECOVERY_NONE, false, why);
    return;
  }
  if (!err) {
    r->plan = pr->plan;
    rc->old_exists = true;
    rc->old_running = pr->running;
    rc->old_renamed = pr->name && strcmp(pr->name, r->old_name) == 0;
    rc->cordoned = pr->cordoned;
    rc->acted = pr->acted ? rp_xstrdup(pr->acted) : NULL;
    r->in_place = pr->in_place;
    r->replace_final = pr->replace_final;
    if (pr->settle_ms > 0)
      r->settle_ms = pr->settle_ms;
    if (pr->details) {
      json_object_update(r->details, pr->details);
      r->pdetails = json_incref(pr->details);
    }
  }
  recovery_looked_old(r);
}

/* The first look by a preparation (ops->recover_by_prepare). */
static int
recovery_prepare(struct run *r, enum rp_kind kind, struct rp_error **err)
{
  struct rp_workload *w = rp_workload_new(r->p->name, kind, r->id, r->name, 0);
  struct rp_recycle_spec spec = {
      .strategy = r->strategy,
      .order = r->want_start_first ? RP_ORDER_START_FIRST : RP_ORDER_STOP_FIRST,
      .grace_ms = r->grace_ms,
      .health_timeout_ms = r->health_timeout_ms,
      .recovery = true,
  };
  int rc = r->p->ops->prepare(r->p, w, &spec, recovery_prepared_cb, r, err);
  rp_workload_free(w);
  if (rc == 0)
    r->prepared = true;
  return rc;
}

bool
rp_runner_recovers(const struct rp_provider *p)
{
  return rp_runner_handles(p) && (p->ops->recover_by_prepare || p->ops->probe);
}

int
rp_runner_recover(const struct rp_runner_env *env, struct rp_provider *p,
                  const struct rp_unfinished *item, const json_t *base,
                  rp_recover_item_cb cb, void *arg, struct rp_error **err)
{
  if (!rp_runner_recovers(p))
    return rp_error_set(err, ENOTSUP,
                        "provider %s offers no recovery by the "
                        "core",
                        p && p->ops ? p->ops->type : "?");
  struct run *r = rp_xcalloc(1, sizeof(*r));
  r->env = *env;
  r->p = p;
  r->cb = recovered_cb;
  r->arg = r;
  r->strategy = item->strategy;
  r->want_start_first = item->start_first;
  r->grace_ms = item->grace_ms;
  r->health_timeout_ms =
      item->health_timeout_ms > 0 ? item->health_timeout_ms : 60000;
  r->survive_ms = RP_RUNNER_SURVIVE_MS; /* the policy's is not in the log */
  /* The engine's own work, unless the preparation knows better. */
  r->settle_ms = r->health_timeout_ms;
  r->id = rp_xstrdup(item->id);
  r->name = rp_xstrdup(item->name ? item->name : item->id);
  r->old_name = rp_xasprintf("%s%s", r->name, RP_RUNNER_OLD_SUFFIX);
  r->base = json_deep_copy(base);
  json_object_set_new(r->base, "recovery", json_true());
  r->details = json_object();
  r->steps = json_array();
  r->rec = rp_xcalloc(1, sizeof(*r->rec));
  r->rec->cb = cb;
  r->rec->arg = arg;
  r->rec->steps = item->steps ? json_deep_copy(item->steps) : NULL;
  r->rec->repl_id =
      item->replacement_id ? rp_xstrdup(item->replacement_id) : NULL;
  r->rec->action = RP_RECOVERY_NONE;
  uv_timer_init(env->loop, &r->timer);
  r->timer.data = r;
  int rc = p->ops->recover_by_prepare
               ? recovery_prepare(r, item->kind, err)
               : p->ops->probe(p, r->id, recovery_old_probed_cb, r, err);
  if (rc != 0) {
    r->finished = true;
    uv_close((uv_handle_t *)&r->timer, timer_closed_cb);
    return -1;
  }
  return 0;
}
