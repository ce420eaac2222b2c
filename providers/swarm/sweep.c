/* The swarm provider's own cleanup, which is no recycle's recovery: drains
 * that another agent (or an earlier run of this one) left on nodes, which no
 * audit log of this agent names.  Crash recovery of this agent's own
 * unfinished recycles is the core's (src/runner.c, with node.c's
 * operations). */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "swarm/swarm.h"
#include "util.h"

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
