/* Crash recovery for the containerd provider: the recycles the audit log
 * says began and never ended are taken up again, one after the other, from
 * where the container is (rp_ctrd_resume):
 *
 *   its task runs                -> none: the recycle had not stopped it, or
 *                                   had already started the new one
 *   task stopped, or no task     -> finished: the rest of the strategy's
 *                                   steps (recreate: the snapshot removed if
 *                                   it is still there, a fresh one prepared,
 *                                   a task created and started; restart: a
 *                                   task on the snapshot; stop: the stopped
 *                                   task deleted; remove: container and
 *                                   snapshot deleted)
 *   no container                 -> finished for remove; not ok otherwise
 *
 * Nothing of reaper's work is marked in containerd itself: a container
 * keeps its id through a recycle, so the audit log's id is all it takes. */
#include <stdio.h>
#include <string.h>

#include "containerd.h"
#include "log.h"
#include "util.h"

struct recover {
  struct rp_ctrd *c; /* borrowed */
  rp_recover_item_cb item_cb;
  void (*done_cb)(void *arg, const struct rp_error *err);
  void *arg;
  json_t *items; /* owned: [{id, name, strategy, grace_ms}] */
  size_t next;
};

static void recover_next(struct recover *rv);

static void
report(struct recover *rv, json_t *it, const char *action, bool ok,
       const char *detail)
{
  struct rp_recovery r = {
      .id = json_string_value(json_object_get(it, "id")),
      .name = json_string_value(json_object_get(it, "name")),
      .action = action,
      .replacement_id = ok && strcmp(action, RP_RECOVERY_FINISHED) == 0
                            ? json_string_value(json_object_get(it, "id"))
                            : NULL,
      .detail = detail,
      .ok = ok,
  };
  rv->item_cb(rv->arg, &r);
}

static void
resumed_cb(void *arg, int status, const struct rp_recycle_result *res,
           const struct rp_error *err)
{
  struct recover *rv = arg;
  json_t *it = json_array_get(rv->items, rv->next - 1);
  int strategy = (int)json_integer_value(json_object_get(it, "strategy"));
  const char *sname = rp_strategy_name((enum rp_strategy)strategy);
  (void)res;
  if (status == 1) {
    report(rv, it, RP_RECOVERY_NONE, true,
           "its task runs: nothing was left half done");
  } else if (status == 0) {
    cleanup_free char *d =
        rp_xasprintf("the %s was finished from where it stopped", sname);
    report(rv, it, RP_RECOVERY_FINISHED, true, d);
  } else if (err && err->code == RP_ENOTFOUND &&
             strategy == RP_STRATEGY_REMOVE) {
    report(rv, it, RP_RECOVERY_FINISHED, true,
           "the container is gone, as remove asked");
  } else {
    cleanup_free char *d =
        rp_xasprintf("could not finish the %s: %s", sname,
                     err && err->message ? err->message : "unknown error");
    report(rv, it, RP_RECOVERY_NONE, false, d);
  }
  recover_next(rv);
}

static void
recover_next(struct recover *rv)
{
  while (rv->next < json_array_size(rv->items)) {
    json_t *it = json_array_get(rv->items, rv->next++);
    const char *id = json_string_value(json_object_get(it, "id"));
    int strategy = (int)json_integer_value(json_object_get(it, "strategy"));
    cleanup_error struct rp_error *err = NULL;
    if (rp_ctrd_resume(rv->c, id ? id : "", (enum rp_strategy)strategy,
                       json_integer_value(json_object_get(it, "grace_ms")),
                       resumed_cb, rv, &err) == 0)
      return;
    cleanup_free char *d = rp_xasprintf("could not start: %s", err->message);
    report(rv, it, RP_RECOVERY_NONE, false, d);
  }
  void (*done)(void *, const struct rp_error *) = rv->done_cb;
  void *arg = rv->arg;
  json_decref(rv->items);
  free(rv);
  done(arg, NULL);
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
    void (*done)(void *, const struct rp_error *) = rv->done_cb;
    void *a = rv->arg;
    json_decref(rv->items);
    free(rv);
    done(a, err);
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
  return 0;
}
