/* The docker provider's table of functions: plain containers of one Docker
 * Engine (or anything that speaks its API, such as Podman). */
#include "docker.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

static enum rp_strategy
default_strategy(enum rp_kind kind)
{
  (void)kind;
  /* recreate, not restart: a restarted container keeps whatever was
   * written into its filesystem; a recreated one starts from the image. */
  return RP_STRATEGY_RECREATE;
}

static const struct rp_capability caps[] = {
    {.kind = RP_KIND_CONTAINER,
     .strategies = RP_STRATEGY_BIT(RP_STRATEGY_RECREATE) |
                   RP_STRATEGY_BIT(RP_STRATEGY_RESTART) |
                   RP_STRATEGY_BIT(RP_STRATEGY_STOP) |
                   RP_STRATEGY_BIT(RP_STRATEGY_REMOVE),
     .start_first = true,
     .pull = true,
     .fresh_content = true,
     .drain = true,
     .replace = false},
};

/* reaper's own container, when it runs in one: the container id appears in
 * the paths of the files the engine bind-mounts into it (/etc/hostname,
 * /etc/hosts, /etc/resolv.conf live under .../containers/<id>/). */
static int
init(struct rp_provider *p, struct rp_error **err)
{
  struct rp_docker *d = rp_xcalloc(1, sizeof(*d));
  d->p = p;
  if (rp_dockerapi_init(&d->api, p, p->cfg ? p->cfg->endpoint : NULL,
                        rp_provider_config_option(p->cfg, "api_version"),
                        err) != 0) {
    free(d);
    return -1;
  }
  /* Said once the engine's list shows it (track.c): reaper may run in a
   * container of another engine than the one it watches. */
  d->self_id = rp_dockerapi_self_container_id(NULL);
  p->ctx = d;
  return 0;
}

static int
start(struct rp_provider *p, struct rp_error **err)
{
  return rp_docker_track_start(p->ctx, err);
}

static void
resync(struct rp_provider *p)
{
  rp_docker_track_resync(p->ctx);
}

const char *
rp_docker_own_name(const json_t *names)
{
  size_t i;
  json_t *v;
  json_array_foreach(names, i, v)
  {
    const char *n = json_string_value(v);
    if (n && n[0] == '/')
      n++;
    if (n && *n && !strchr(n, '/'))
      return n;
  }
  return NULL;
}

static void
maybe_stopped(struct rp_docker *d)
{
  if (d->stop_cb && d->recycles_in_flight == 0 && rp_docker_track_idle(d)) {
    void (*cb)(void *) = d->stop_cb;
    d->stop_cb = NULL;
    cb(d->stop_arg);
  }
}

void
rp_docker_check_stopped(struct rp_docker *d)
{
  maybe_stopped(d);
}

static void
stop(struct rp_provider *p, void (*done_cb)(void *arg), void *arg)
{
  struct rp_docker *d = p->ctx;
  d->stopping = true;
  d->stop_cb = done_cb;
  d->stop_arg = arg;
  /* Recycles in flight finish (their steps are bounded by timeouts), so a
   * stop never leaves a container half-replaced. */
  rp_docker_track_stop(d);
  maybe_stopped(d);
}

static json_t *
describe(struct rp_provider *p)
{
  struct rp_docker *d = p->ctx;
  return d ? rp_dockerapi_describe(&d->api) : NULL;
}

static void
destroy(struct rp_provider *p)
{
  struct rp_docker *d = p->ctx;
  if (!d)
    return;
  rp_docker_track_free(d);
  rp_dockerapi_clear(&d->api);
  free(d->self_id);
  free(d);
  p->ctx = NULL;
}

const struct rp_provider_ops rp_provider_docker = {
    .type = "docker",
    .default_strategy = default_strategy,
    .caps = caps,
    .n_caps = sizeof(caps) / sizeof(caps[0]),
    .options = rp_dockerapi_options,
    .option_valid = rp_dockerapi_option_valid,
    .init = init,
    .start = start,
    .resync = resync,
    .prepare = rp_docker_op_prepare,
    .release = rp_docker_op_release,
    .rename = rp_docker_op_rename,
    .create = rp_docker_op_create,
    .start_workload = rp_docker_op_start,
    .stop_workload = rp_docker_op_stop,
    .remove = rp_docker_op_remove,
    .restart = rp_docker_op_restart,
    .drain = rp_docker_op_drain,
    .probe = rp_docker_op_probe,
    .pull = rp_docker_op_pull,
    .find_replacement = rp_docker_op_find_replacement,
    .watch = rp_docker_op_watch,
    .unwatch = rp_docker_op_unwatch,
    .describe = describe,
    .stop = stop,
    .destroy = destroy,
};
