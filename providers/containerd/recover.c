/* Crash recovery for the containerd provider: the recycles the audit log
 * says began and never ended are taken up again, one after the other.  Each
 * is prepared again (ops.c: what the container and its task are now) and
 * finished from there through the same operations the runner uses:
 *
 *   its task runs                -> none: the recycle had not stopped it, or
 *                                   had already started the new one
 *   task stopped, or no task     -> finished: the rest of the strategy
 *                                   (recreate: stop, reset, start, the task
 *                                   up a while; restart: stop, start, the
 *                                   task up a while; stop: stop; remove:
 *                                   remove), where stop only deletes a task
 *                                   that no longer runs and reset prepares a
 *                                   fresh snapshot whether or not a crash
 *                                   left the old one removed
 *   no container                 -> finished for remove; not ok otherwise
 *
 * Nothing of reaper's work is marked in containerd itself: a container
 * keeps its id through a recycle, so the audit log's id is all it takes.
 * This is not a second runner: no drain (the task is down), no audit lines
 * of steps, no rollback (there is nothing left to go back to). */
#include <stdio.h>
#include <string.h>

#include "containerd.h"
#include "log.h"
#include "util.h"

/* The task recovery started must stay up this long, within READY_MS. */
#define SETTLE_MS 1500
#define POLL_MS 250
#define READY_MS 60000

enum act { A_STOP, A_RESET, A_START, A_SETTLE, A_REMOVE };

struct recover {
  struct rp_ctrd *c; /* borrowed */
  rp_recover_item_cb item_cb;
  void (*done_cb)(void *arg, const struct rp_error *err);
  void *arg;
  json_t *items; /* owned: [{id, name, strategy, grace_ms}] */
  size_t next;

  /* the item in hand */
  json_t *it; /* borrowed from items */
  enum rp_strategy strategy;
  int64_t grace_ms;
  bool prepared; /* release is owed */
  void *plan;    /* the prepared plan, or NULL */
  const enum act *acts;
  size_t n_acts, pc;
  uv_timer_t timer;
  int64_t deadline, running_since;
  struct rp_error *error; /* owned: why recovery ends in failure */
};

static void recover_next(struct recover *rv);
static void act_next(struct recover *rv);

static void
report(struct recover *rv, const char *action, bool ok, const char *detail)
{
  const char *id = json_string_value(json_object_get(rv->it, "id"));
  struct rp_recovery r = {
      .id = id,
      .name = json_string_value(json_object_get(rv->it, "name")),
      .action = action,
      .replacement_id =
          ok && strcmp(action, RP_RECOVERY_FINISHED) == 0 ? id : NULL,
      .detail = detail,
      .ok = ok,
  };
  rv->item_cb(rv->arg, &r);
}

/* The item is over: reported, its plan released. */
static void
item_end(struct recover *rv, const char *action, bool ok, const char *detail)
{
  report(rv, action, ok, detail);
  if (rv->prepared)
    rp_ctrd_op_release(rv->c->p, rv->plan);
  rv->prepared = false;
  rv->plan = NULL;
  recover_next(rv);
}

static void
item_failed(struct recover *rv, const struct rp_error *err)
{
  cleanup_free char *d = rp_xasprintf(
      "could not finish the %s: %s", rp_strategy_name(rv->strategy),
      err && err->message ? err->message : "unknown error");
  item_end(rv, RP_RECOVERY_NONE, false, d);
}

/* --- the task up a while -------------------------------------------------- */

static void settle_look(struct recover *rv);

static void
settle_timer_cb(uv_timer_t *t)
{
  settle_look(t->data);
}

static void
settle_probed(void *arg, const struct rp_probe *st, const struct rp_error *err)
{
  struct recover *rv = arg;
  if (err) {
    item_failed(rv, err);
    return;
  }
  int64_t now = rp_mono_ms();
  struct rp_error *e = NULL;
  if (!st->exists) {
    rp_error_set(&e, RP_EENGINE, "the new task is gone");
  } else if (st->running) {
    if (!rv->running_since)
      rv->running_since = now;
    if (now - rv->running_since >= SETTLE_MS) {
      act_next(rv);
      return;
    }
  } else if (st->status && strcmp(st->status, "stopped") == 0) {
    rp_error_set(&e, RP_EENGINE, "the new task exited with status %d",
                 st->exit_code);
  }
  if (!e && now >= rv->deadline)
    rp_error_set(&e, RP_ETIMEOUT, "the new task is not running within %ds",
                 READY_MS / 1000);
  if (e) {
    item_failed(rv, e);
    rp_error_free(e);
    return;
  }
  uv_timer_start(&rv->timer, settle_timer_cb, POLL_MS, 0);
}

static void
settle_look(struct recover *rv)
{
  const char *id = json_string_value(json_object_get(rv->it, "id"));
  cleanup_error struct rp_error *err = NULL;
  if (rp_ctrd_op_probe(rv->c->p, id, settle_probed, rv, &err) != 0)
    item_failed(rv, err);
}

/* --- the rest of the strategy --------------------------------------------- */

static void
acted_cb(void *arg, const struct rp_error *err)
{
  struct recover *rv = arg;
  if (err) {
    item_failed(rv, err);
    return;
  }
  act_next(rv);
}

static void
act_next(struct recover *rv)
{
  if (rv->pc >= rv->n_acts) {
    cleanup_free char *d =
        rp_xasprintf("the %s was finished from where it stopped",
                     rp_strategy_name(rv->strategy));
    item_end(rv, RP_RECOVERY_FINISHED, true, d);
    return;
  }
  struct rp_provider *p = rv->c->p;
  const char *id = json_string_value(json_object_get(rv->it, "id"));
  cleanup_error struct rp_error *err = NULL;
  int rc = 0;
  switch (rv->acts[rv->pc++]) {
  case A_STOP:
    rc = rp_ctrd_op_stop(p, id, rv->grace_ms, acted_cb, rv, &err);
    break;
  case A_RESET:
    rc = rp_ctrd_op_reset(p, id, rv->plan, acted_cb, rv, &err);
    break;
  case A_START:
    rc = rp_ctrd_op_start(p, id, acted_cb, rv, &err);
    break;
  case A_REMOVE:
    rc = rp_ctrd_op_remove(p, id, rv->grace_ms, acted_cb, rv, &err);
    break;
  case A_SETTLE:
    rv->deadline = rp_mono_ms() + READY_MS;
    rv->running_since = 0;
    uv_timer_start(&rv->timer, settle_timer_cb, POLL_MS, 0);
    return;
  }
  if (rc != 0)
    item_failed(rv, err);
}

static void
prepared_cb(void *arg, const struct rp_prepared *pr, const struct rp_error *err)
{
  static const enum act recreate[] = {A_STOP, A_RESET, A_START, A_SETTLE};
  static const enum act restart[] = {A_STOP, A_START, A_SETTLE};
  static const enum act stop[] = {A_STOP};
  static const enum act remove[] = {A_REMOVE};
  struct recover *rv = arg;
  if (err && err->code == RP_ENOTFOUND && rv->strategy == RP_STRATEGY_REMOVE) {
    item_end(rv, RP_RECOVERY_FINISHED, true,
             "the container is gone, as remove asked");
    return;
  }
  if (err) {
    item_failed(rv, err);
    return;
  }
  rv->plan = pr->plan;
  if (pr->running) {
    item_end(rv, RP_RECOVERY_NONE, true,
             "its task runs: nothing was left half done");
    return;
  }
  switch (rv->strategy) {
  case RP_STRATEGY_RECREATE:
    rv->acts = recreate;
    rv->n_acts = RP_ARRAY_LEN(recreate);
    break;
  case RP_STRATEGY_RESTART:
    rv->acts = restart;
    rv->n_acts = RP_ARRAY_LEN(restart);
    break;
  case RP_STRATEGY_STOP:
    rv->acts = stop;
    rv->n_acts = RP_ARRAY_LEN(stop);
    break;
  default:
    rv->acts = remove;
    rv->n_acts = RP_ARRAY_LEN(remove);
    break;
  }
  rv->pc = 0;
  act_next(rv);
}

static void
recover_free_cb(uv_handle_t *h)
{
  struct recover *rv = h->data;
  void (*done)(void *, const struct rp_error *) = rv->done_cb;
  void *arg = rv->arg;
  struct rp_error *e = rv->error;
  json_decref(rv->items);
  free(rv);
  done(arg, e);
  rp_error_free(e);
}

static void
recover_next(struct recover *rv)
{
  while (rv->next < json_array_size(rv->items)) {
    rv->it = json_array_get(rv->items, rv->next++);
    const char *id = json_string_value(json_object_get(rv->it, "id"));
    const char *name = json_string_value(json_object_get(rv->it, "name"));
    rv->strategy = (enum rp_strategy)json_integer_value(
        json_object_get(rv->it, "strategy"));
    rv->grace_ms = json_integer_value(json_object_get(rv->it, "grace_ms"));
    struct rp_workload w = {
        .id = (char *)(uintptr_t)(id ? id : ""),
        .name = (char *)(uintptr_t)(name ? name : ""),
    };
    struct rp_recycle_spec spec = {
        .strategy = rv->strategy,
        .grace_ms = rv->grace_ms,
    };
    cleanup_error struct rp_error *err = NULL;
    if (rp_ctrd_op_prepare(rv->c->p, &w, &spec, prepared_cb, rv, &err) == 0) {
      rv->prepared = true;
      return;
    }
    cleanup_free char *d = rp_xasprintf("could not start: %s", err->message);
    report(rv, RP_RECOVERY_NONE, false, d);
  }
  uv_close((uv_handle_t *)&rv->timer, recover_free_cb);
}

static void
started_cb(void *arg, const uint8_t *msg, size_t len,
           const struct rp_error *err)
{
  struct recover *rv = arg;
  (void)msg;
  (void)len;
  if (err) {
    /* Not knowing the engine's state, nothing is assumed: the core tries
     * again after the next list. */
    rv->error = rp_error_dup(err);
    rv->next = json_array_size(rv->items);
    uv_close((uv_handle_t *)&rv->timer, recover_free_cb);
    return;
  }
  recover_next(rv);
}

int
rp_ctrd_recover(struct rp_ctrd *c, const struct rp_unfinished *items, size_t n,
                rp_recover_item_cb item_cb,
                void (*done_cb)(void *arg, const struct rp_error *err),
                void *arg, struct rp_error **err)
{
  if (c->stopping)
    return rp_error_set(err, RP_ECANCELED, "provider %s is stopping",
                        c->p->name);
  struct recover *rv = rp_xcalloc(1, sizeof(*rv));
  rv->c = c;
  rv->item_cb = item_cb;
  rv->done_cb = done_cb;
  rv->arg = arg;
  rv->items = json_array();
  for (size_t i = 0; i < n; i++) {
    if (items[i].id)
      rp_warn("provider %s: finishing the recycle of %s that reaper left "
              "unfinished",
              c->p->name, items[i].id);
    json_array_append_new(rv->items,
                          json_pack("{s:s?, s:s?, s:i, s:I}", "id", items[i].id,
                                    "name", items[i].name, "strategy",
                                    (int)items[i].strategy, "grace_ms",
                                    (json_int_t)items[i].grace_ms));
  }
  /* A first call to containerd puts the work on the loop: done_cb never
   * runs inside this call, even with nothing to do. */
  Rpctrd__Empty req;
  rpctrd__empty__init(&req);
  if (rp_ctrd_call(c, NULL, RP_CTRD_VERSION, &req.base, 0, started_cb, rv,
                   err) != 0) {
    json_decref(rv->items);
    free(rv);
    return -1;
  }
  uv_timer_init(c->p->loop, &rv->timer);
  rv->timer.data = rv;
  return 0;
}
