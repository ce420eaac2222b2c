/* The swarm provider's table of functions: the services and nodes of a
 * whole Docker Swarm, through one of its managers.  Services are renewed by
 * Swarm itself (a forced update under their own update configuration);
 * nodes are drained, replaced by an action of the operator's (a cloud
 * command) and removed.  One agent per cluster acts: the one holding the
 * lease (lease.c). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "swarm/swarm.h"
#include "util.h"

static enum rp_strategy
default_strategy(enum rp_kind kind)
{
  return kind == RP_KIND_NODE ? RP_STRATEGY_DRAIN_REPLACE
                              : RP_STRATEGY_FORCE_UPDATE;
}

/* Services: Swarm replaces the tasks under the service's own update
 * configuration (its order, parallelism, failure action): a policy's order,
 * pull and drain do not apply.  Nodes: drained, replaced by the policy's
 * replace command, removed. */
static const struct rp_capability caps[] = {
    {.kind = RP_KIND_SERVICE,
     .strategies = RP_STRATEGY_BIT(RP_STRATEGY_FORCE_UPDATE),
     /* a new digest of the service's image, by a service update */
     .fresh_content = true},
    {.kind = RP_KIND_NODE,
     .strategies = RP_STRATEGY_BIT(RP_STRATEGY_DRAIN_REPLACE),
     .replace = true},
};

int
rp_swarm_call(struct rp_swarm *s, const char *method, const char *path,
              const json_t *body, int64_t timeout_ms, rp_dockerapi_cb cb,
              void *arg, struct rp_error **err)
{
  return rp_dockerapi_call(&s->api, method, path, body, timeout_ms, cb, arg,
                           err);
}

/* reaper's own container, when it runs in one (as the docker provider
 * finds it): the engine bind-mounts /etc/hostname and friends from
 * .../containers/<id>/. */
/* This agent's name in the lease: readable (host and pid) and unique (a
 * restarted agent is a new holder, so that it never mistakes an old lease
 * for one it still holds). */
static char *
make_holder(void)
{
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  unsigned char r[6] = {0};
  if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
    int64_t t = rp_mono_ms() ^ rp_wall_ms();
    memcpy(r, &t, sizeof(r));
  }
  return rp_xasprintf("%s/%d/%02x%02x%02x%02x%02x%02x", host[0] ? host : "?",
                      (int)getpid(), r[0], r[1], r[2], r[3], r[4], r[5]);
}

static int
init(struct rp_provider *p, struct rp_error **err)
{
  struct rp_swarm *s = rp_xcalloc(1, sizeof(*s));
  s->p = p;
  if (rp_dockerapi_init(&s->api, p, p->cfg ? p->cfg->endpoint : NULL,
                        rp_provider_config_option(p->cfg, "api_version"),
                        err) != 0) {
    free(s);
    return -1;
  }
  s->local = s->api.ep.unix_socket != NULL;
  s->holder = make_holder();
  s->self_container = rp_dockerapi_self_container_id(NULL);
  p->ctx = s;
  return 0;
}

static int
start(struct rp_provider *p, struct rp_error **err)
{
  struct rp_swarm *s = p->ctx;
  rp_swarm_lease_init(s);
  return rp_swarm_track_start(s, err);
}

static void
resync(struct rp_provider *p)
{
  rp_swarm_track_resync(p->ctx);
}

/* --- the runner's operations: services' in service.c, nodes' in node.c */

static int
prepare(struct rp_provider *p, const struct rp_workload *w,
        const struct rp_recycle_spec *spec, rp_prepared_cb cb, void *arg,
        struct rp_error **err)
{
  struct rp_swarm *s = p->ctx;
  if (s->stopping)
    return rp_error_set(err, RP_ECANCELED, "provider %s is stopping", p->name);
  if (rp_swarm_plan_find(s, w->id))
    return rp_error_set(err, RP_ECONFLICT,
                        "provider %s: %s is being recycled already", p->name,
                        w->name);
  if (w->kind == RP_KIND_SERVICE && spec->strategy == RP_STRATEGY_FORCE_UPDATE)
    return rp_swarm_service_prepare(s, w, spec, cb, arg, err);
  if (w->kind == RP_KIND_NODE && spec->strategy == RP_STRATEGY_DRAIN_REPLACE)
    return rp_swarm_node_prepare(s, w, spec, cb, arg, err);
  return rp_error_set(err, RP_ECONFIG,
                      "provider %s: strategy %s does not apply to a %s "
                      "(services: force-update; nodes: drain-replace)",
                      p->name, rp_strategy_name(spec->strategy),
                      rp_kind_name(w->kind));
}

static void
release(struct rp_provider *p, void *plan)
{
  struct rp_swarm *s = p->ctx;
  struct rp_swarm_plan *pl = plan;
  if (pl && pl->kind == RP_KIND_SERVICE)
    rp_swarm_service_release(s, pl);
  else if (pl)
    rp_swarm_node_release(s, pl);
  /* The recycle that prepare began has ended. */
  rp_swarm_recycle_ended(s);
}

static struct rp_swarm_plan *
plan_of(struct rp_provider *p, const char *id, enum rp_kind kind,
        struct rp_error **err)
{
  struct rp_swarm_plan *pl = rp_swarm_plan_find(p->ctx, id);
  if (!pl || pl->kind != kind)
    rp_error_set(err, EINVAL, "provider %s: no recycle of %s %s in flight",
                 p->name, rp_kind_name(kind), id);
  return pl && pl->kind == kind ? pl : NULL;
}

static int
probe(struct rp_provider *p, const char *id, rp_probe_cb cb, void *arg,
      struct rp_error **err)
{
  struct rp_swarm_plan *pl = rp_swarm_plan_find(p->ctx, id);
  if (pl && pl->kind == RP_KIND_SERVICE)
    return rp_swarm_service_probe(p->ctx, pl, cb, arg, err);
  if (!(pl = plan_of(p, id, RP_KIND_NODE, err)))
    return -1;
  return rp_swarm_node_probe(p->ctx, pl, cb, arg, err);
}

static int
remove_node(struct rp_provider *p, const char *id, int64_t grace_ms,
            rp_op_cb cb, void *arg, struct rp_error **err)
{
  (void)grace_ms; /* a node is removed once it is down */
  struct rp_swarm_plan *pl = plan_of(p, id, RP_KIND_NODE, err);
  if (!pl)
    return -1;
  return rp_swarm_node_remove(p->ctx, pl, cb, arg, err);
}

void
rp_swarm_plan_add(struct rp_swarm *s, struct rp_swarm_plan *pl,
                  enum rp_kind kind, const struct rp_workload *w)
{
  pl->kind = kind;
  pl->id = rp_xstrdup(w->id);
  pl->name = rp_xstrdup(w->name);
  pl->next = s->plans;
  s->plans = pl;
  s->recycles_in_flight++;
}

void
rp_swarm_plan_remove(struct rp_swarm *s, struct rp_swarm_plan *pl)
{
  for (struct rp_swarm_plan **pp = &s->plans; *pp; pp = &(*pp)->next) {
    if (*pp == pl) {
      *pp = pl->next;
      break;
    }
  }
  free(pl->id);
  free(pl->name);
}

struct rp_swarm_plan *
rp_swarm_plan_find(struct rp_swarm *s, const char *id)
{
  for (struct rp_swarm_plan *pl = s->plans; pl; pl = pl->next)
    if (strcmp(pl->id, id) == 0)
      return pl;
  return NULL;
}

struct later {
  uv_timer_t timer;
  void (*fn)(void *arg);
  void *arg;
};

static void
later_closed_cb(uv_handle_t *h)
{
  free(h->data);
}

static void
later_cb(uv_timer_t *t)
{
  struct later *l = t->data;
  void (*fn)(void *) = l->fn;
  void *arg = l->arg;
  uv_close((uv_handle_t *)&l->timer, later_closed_cb);
  fn(arg);
}

void
rp_swarm_later(struct rp_swarm *s, int64_t ms, void (*fn)(void *arg), void *arg)
{
  struct later *l = rp_xcalloc(1, sizeof(*l));
  l->fn = fn;
  l->arg = arg;
  uv_timer_init(s->p->loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, later_cb, (uint64_t)(ms > 0 ? ms : 0), 0);
}

static bool
may_act(struct rp_provider *p)
{
  return rp_swarm_lease_held(p->ctx);
}

void
rp_swarm_check_stopped(struct rp_swarm *s)
{
  if (s->stop_cb && s->recycles_in_flight == 0 && rp_swarm_track_idle(s) &&
      rp_swarm_lease_idle(s)) {
    void (*cb)(void *) = s->stop_cb;
    s->stop_cb = NULL;
    cb(s->stop_arg);
  }
}

void
rp_swarm_recycle_ended(struct rp_swarm *s)
{
  s->recycles_in_flight--;
  if (s->stopping && s->recycles_in_flight == 0)
    rp_swarm_lease_stop(s);
  rp_swarm_check_stopped(s);
}

static void
stop(struct rp_provider *p, void (*done_cb)(void *arg), void *arg)
{
  struct rp_swarm *s = p->ctx;
  s->stopping = true;
  s->stop_cb = done_cb;
  s->stop_arg = arg;
  /* The core stops a provider once its recycles have had their time: what
   * is still in flight ends as soon as it safely can, at the runner's next
   * look (probe fails, saying so) or operation (refused): a drain is undone;
   * a forced update is left to swarm; a replace action that runs is waited
   * for.  The lease is given up once nothing is in flight, so that another
   * agent can take over at once. */
  size_t n = 0;
  for (struct rp_swarm_plan *pl = s->plans; pl; pl = pl->next)
    n++;
  if (n)
    rp_warn("provider %s: stopping: cancelling %zu recycles in flight", p->name,
            n);
  rp_swarm_track_stop(s);
  if (s->recycles_in_flight == 0)
    rp_swarm_lease_stop(s);
  rp_swarm_check_stopped(s);
}

static json_t *
describe(struct rp_provider *p)
{
  struct rp_swarm *s = p->ctx;
  return s ? rp_dockerapi_describe(&s->api) : NULL;
}

static void
destroy(struct rp_provider *p)
{
  struct rp_swarm *s = p->ctx;
  if (!s)
    return;
  rp_swarm_track_free(s);
  rp_swarm_lease_free(s);
  rp_dockerapi_clear(&s->api);
  free(s->node_id);
  free(s->holder);
  free(s->self_container);
  free(s->self_service);
  free(s);
  p->ctx = NULL;
}

const struct rp_provider_ops rp_provider_swarm = {
    .type = "swarm",
    .default_strategy = default_strategy,
    .caps = caps,
    .n_caps = sizeof(caps) / sizeof(caps[0]),
    .options = rp_dockerapi_options,
    .option_valid = rp_dockerapi_option_valid,
    .init = init,
    .start = start,
    .resync = resync,
    .prepare = prepare,
    .release = release,
    .update = rp_swarm_op_update,
    .pull = rp_swarm_op_pull,
    .cordon = rp_swarm_op_cordon,
    .uncordon = rp_swarm_op_uncordon,
    .replace = rp_swarm_op_replace,
    .remove = remove_node,
    .probe = probe,
    .recover_by_prepare = true,
    .may_act = may_act,
    .describe = describe,
    .stop = stop,
    .destroy = destroy,
};
