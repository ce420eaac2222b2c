/* Crash recovery for the swarm provider: what a recycle that reaper did not
 * live to finish left in the cluster, put right.  The unfinished recycles
 * come from this agent's own audit log, so the agent that began them is
 * dead: whatever its mark says, the work is ours to finish.
 *
 *   node, gone from the swarm             -> finished (it was removed)
 *   node with reaper's mark, down         -> finished: removed now
 *   node with reaper's mark, still up     -> rolled back: availability and
 *                                            role restored, mark removed
 *                                            (as the runner's uncordon
 *                                            undoes a drain)
 *   ...whose replace action ran           -> none: the lease holder
 *     (the mark says replaced_at)            removes it once it is down
 *   node without the mark                 -> none (the drain was never
 *                                            written, or someone undid it)
 *   service                               -> swarm carries a forced update
 *                                            on by itself: finished when
 *                                            it is updating or completed,
 *                                            none otherwise (its state said)
 * Items are done one after the other; a failed step reports that item as
 * not put right and goes on. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "swarm/swarm.h"
#include "util.h"

struct recover {
  struct rp_swarm *s; /* borrowed */
  rp_recover_item_cb item_cb;
  void (*done_cb)(void *arg, const struct rp_error *err);
  void *arg;
  json_t *items; /* owned: [{id, name, node}] */
  size_t next;
};

static void work_next(struct recover *rv);

static json_t *
item(struct recover *rv)
{
  return json_array_get(rv->items, rv->next);
}

static void report(struct recover *rv, const char *action, bool ok,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
report(struct recover *rv, const char *action, bool ok, const char *fmt, ...)
{
  json_t *it = item(rv);
  va_list ap;
  va_start(ap, fmt);
  char detail[512];
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  struct rp_recovery r = {
      .id = json_string_value(json_object_get(it, "id")),
      .name = json_string_value(json_object_get(it, "name")),
      .action = action,
      .replacement_id = NULL,
      .detail = detail,
      .ok = ok,
  };
  rv->item_cb(rv->arg, &r);
  rv->next++;
  work_next(rv);
}

static void
finish(struct recover *rv)
{
  struct rp_swarm *s = rv->s;
  rv->done_cb(rv->arg, NULL);
  json_decref(rv->items);
  free(rv);
  rp_swarm_recycle_ended(s);
}

static int
call(struct recover *rv, const char *method, const char *path,
     const json_t *body, rp_dockerapi_cb cb)
{
  cleanup_error struct rp_error *err = NULL;
  if (rp_swarm_call(rv->s, method, path, body, 0, cb, rv, &err) == 0)
    return 0;
  report(rv, RP_RECOVERY_NONE, false, "%s %s: %s", method, path, err->message);
  return -1;
}

/* --- nodes -------------------------------------------------------------- */

static void
node_removed_cb(void *arg, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct recover *rv = arg;
  (void)r;
  if (err && err->code != RP_ENOTFOUND)
    report(rv, RP_RECOVERY_NONE, false,
           "the node was drained and is down, but removing it failed: %s",
           err->message);
  else
    report(rv, RP_RECOVERY_FINISHED, true,
           "the node was drained and is down (replaced): removed it from the "
           "swarm");
}

static void
node_restored_cb(void *arg, const struct rp_dockerapi_reply *r,
                 const struct rp_error *err)
{
  struct recover *rv = arg;
  (void)r;
  if (err)
    report(rv, RP_RECOVERY_NONE, false,
           "the node is still drained by reaper and restoring it failed: %s",
           err->message);
  else
    report(rv, RP_RECOVERY_ROLLED_BACK, true,
           "the node was drained and still up: its availability is restored "
           "and reaper's mark removed");
}

static void
node_read_cb(void *arg, const struct rp_dockerapi_reply *r,
             const struct rp_error *err)
{
  struct recover *rv = arg;
  const char *id = json_string_value(json_object_get(item(rv), "id"));
  if (err && err->code == RP_ENOTFOUND) {
    report(rv, RP_RECOVERY_FINISHED, true,
           "the node is no longer in the swarm: it was replaced and removed");
    return;
  }
  if (err) {
    report(rv, RP_RECOVERY_NONE, false, "read the node: %s", err->message);
    return;
  }
  json_t *spec = json_object_get(r->body, "Spec");
  cleanup_json json_t *mark = rp_swarm_node_mark(r->body);
  const char *state = json_string_value(
      json_object_get(json_object_get(r->body, "Status"), "State"));
  if (!mark) {
    report(rv, RP_RECOVERY_NONE, true,
           "the node carries no drain of reaper's (availability %s): nothing "
           "to do",
           json_string_value(json_object_get(spec, "Availability"))
               ? json_string_value(json_object_get(spec, "Availability"))
               : "unknown");
    return;
  }
  cleanup_free char *esc = rp_url_escape(id);
  if (state && strcmp(state, "down") == 0) {
    cleanup_free char *path = rp_xasprintf("/nodes/%s?force=1", esc);
    call(rv, "DELETE", path, NULL, node_removed_cb);
    return;
  }
  if (json_object_get(mark, "replaced_at")) {
    report(rv, RP_RECOVERY_NONE, true,
           "the replace action ran, and the node is not down yet: the agent "
           "that holds the lease removes it once it is");
    return;
  }
  /* Undone as the recycle's uncordon undoes it, from what the mark says. */
  cleanup_json json_t *new_spec =
      rp_swarm_node_undrained_spec(r->body, NULL, NULL);
  cleanup_free char *path =
      rp_xasprintf("/nodes/%s/update?version=%lld", esc,
                   (long long)json_integer_value(json_object_get(
                       json_object_get(r->body, "Version"), "Index")));
  call(rv, "POST", path, new_spec, node_restored_cb);
}

/* --- services ----------------------------------------------------------- */

static void
service_read_cb(void *arg, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct recover *rv = arg;
  if (err && err->code == RP_ENOTFOUND) {
    report(rv, RP_RECOVERY_NONE, true, "the service is gone");
    return;
  }
  if (err) {
    report(rv, RP_RECOVERY_NONE, false, "read the service: %s", err->message);
    return;
  }
  enum rp_swarm_update u = rp_swarm_update_progress(r->body, NULL);
  if (u == RP_SWARM_UPDATE_UPDATING || u == RP_SWARM_UPDATE_COMPLETED)
    report(rv, RP_RECOVERY_FINISHED, true,
           "swarm carries the forced update on by itself (update %s)",
           rp_swarm_update_name(u));
  else
    report(rv, RP_RECOVERY_NONE, true,
           "the service's update is %s: nothing for reaper to do",
           rp_swarm_update_name(u));
}

static void
work_next(struct recover *rv)
{
  if (rv->next >= json_array_size(rv->items)) {
    finish(rv);
    return;
  }
  json_t *it = item(rv);
  cleanup_free char *esc =
      rp_url_escape(json_string_value(json_object_get(it, "id")));
  bool node = json_is_true(json_object_get(it, "node"));
  cleanup_free char *path =
      rp_xasprintf("/%s/%s", node ? "nodes" : "services", esc);
  call(rv, "GET", path, NULL, node ? node_read_cb : service_read_cb);
}

int
rp_swarm_recover(struct rp_swarm *s, const struct rp_unfinished *items,
                 size_t n, rp_recover_item_cb item_cb,
                 void (*done_cb)(void *arg, const struct rp_error *err),
                 void *arg, struct rp_error **err)
{
  (void)err;
  struct recover *rv = rp_xcalloc(1, sizeof(*rv));
  rv->s = s;
  rv->item_cb = item_cb;
  rv->done_cb = done_cb;
  rv->arg = arg;
  rv->items = json_array();
  for (size_t i = 0; i < n; i++) {
    if (!items[i].id)
      continue;
    json_array_append_new(
        rv->items,
        json_pack("{s:s, s:s, s:b}", "id", items[i].id, "name",
                  items[i].name ? items[i].name : items[i].id, "node",
                  items[i].strategy == RP_STRATEGY_DRAIN_REPLACE));
  }
  if (json_array_size(rv->items))
    rp_info("provider %s: recovery: %zu unfinished recycles to put right",
            s->p->name, json_array_size(rv->items));
  s->recycles_in_flight++;
  work_next(rv);
  return 0;
}

/* --- marks left by another agent ----------------------------------------- */

/* An agent that held the lease may have died (or stopped) in the middle of
 * a drain: its mark stays on the node (and holds back every later drain of
 * its policy).  The agent that holds the lease puts such nodes right, when
 * it takes the lease and at every re-list: one that is down was replaced,
 * and is removed; one that is up gets its availability back (and is
 * recycled again in its turn), unless the mark says that its replace
 * action ran (replaced_at): that machine is going away. */
struct sweep {
  struct rp_swarm *s; /* borrowed */
  int pending;
};

struct sweep_one {
  struct sweep *sw;
  char id[80];
  char host[80];
  bool removing;
};

static void
sweep_release(struct sweep *sw)
{
  if (--sw->pending > 0)
    return;
  struct rp_swarm *s = sw->s;
  free(sw);
  s->sweeping = false;
  struct rp_provider *p = s->p;
  if (!s->stopping && rp_swarm_track_up(s))
    p->hooks.state(p->hooks.core, p, true, NULL);
  rp_swarm_recycle_ended(s);
}

static void
sweep_done_cb(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct sweep_one *so = arg;
  (void)r;
  const char *pn = so->sw->s->p->name;
  if (err)
    rp_err("provider %s: node %s (%s), left drained by another agent: %s "
           "failed: %s",
           pn, so->host, so->id, so->removing ? "removing it" : "restoring it",
           err->message);
  else if (so->removing)
    rp_warn("provider %s: node %s (%s) was left drained by another agent and "
            "is down: removed it from the swarm",
            pn, so->host, so->id);
  else
    rp_warn("provider %s: node %s (%s) was left drained by another agent "
            "that no longer holds the lease: its availability is restored",
            pn, so->host, so->id);
  struct sweep *sw = so->sw;
  free(so);
  sweep_release(sw);
}

static void
sweep_node(struct sweep *sw, json_t *node)
{
  struct rp_swarm *s = sw->s;
  const char *id = json_string_value(json_object_get(node, "ID"));
  cleanup_json json_t *mark = rp_swarm_node_mark(node);
  if (!id || !mark)
    return;
  const char *holder = json_string_value(json_object_get(mark, "holder"));
  if (holder && strcmp(holder, s->holder) == 0)
    return; /* ours: a recycle of this agent's, in flight */
  const char *state = json_string_value(
      json_object_get(json_object_get(node, "Status"), "State"));
  const char *host = json_string_value(
      json_object_get(json_object_get(node, "Description"), "Hostname"));
  bool down = state && strcmp(state, "down") == 0;
  if (!down && json_object_get(mark, "replaced_at"))
    return; /* its machine is going away: removed once it is down */
  struct sweep_one *so = rp_xcalloc(1, sizeof(*so));
  so->sw = sw;
  snprintf(so->id, sizeof(so->id), "%s", id);
  snprintf(so->host, sizeof(so->host), "%s", host ? host : "?");
  cleanup_free char *esc = rp_url_escape(id);
  cleanup_free char *path = NULL;
  cleanup_json json_t *body = NULL;
  const char *method = "POST";
  if (down) {
    so->removing = true;
    method = "DELETE";
    path = rp_xasprintf("/nodes/%s?force=1", esc);
  } else {
    body = rp_swarm_node_undrained_spec(node, NULL, NULL);
    path = rp_xasprintf("/nodes/%s/update?version=%lld", esc,
                        (long long)json_integer_value(json_object_get(
                            json_object_get(node, "Version"), "Index")));
  }
  cleanup_error struct rp_error *err = NULL;
  sw->pending++;
  if (rp_swarm_call(s, method, path, body, 0, sweep_done_cb, so, &err) != 0) {
    rp_err("provider %s: node %s: %s", s->p->name, so->id, err->message);
    free(so);
    sw->pending--;
  }
}

static void
sweep_listed_cb(void *arg, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct sweep *sw = arg;
  if (err) {
    rp_warn("provider %s: looking for drains left by other agents: %s",
            sw->s->p->name, err->message);
  } else if (!sw->s->stopping) {
    size_t i;
    json_t *n;
    json_array_foreach(r->body, i, n)
    {
      sweep_node(sw, n);
    }
  }
  sweep_release(sw);
}

void
rp_swarm_sweep_marks(struct rp_swarm *s)
{
  if (s->stopping || s->sweeping)
    return;
  struct sweep *sw = rp_xcalloc(1, sizeof(*sw));
  sw->s = s;
  sw->pending = 1;
  s->sweeping = true;
  s->recycles_in_flight++;
  cleanup_error struct rp_error *err = NULL;
  if (rp_swarm_call(s, "GET", "/nodes", NULL, 0, sweep_listed_cb, sw, &err) !=
      0) {
    rp_warn("provider %s: looking for drains left by other agents: %s",
            s->p->name, err->message);
    sweep_release(sw);
  }
}
