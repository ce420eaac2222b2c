/* The host provider's table of functions: one workload of kind host, the
 * machine reaper runs on, started when it booted.  Its only strategy is
 * drain-replace (host.h says how it goes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "host/host.h"
#include "log.h"
#include "util.h"

#define REPLACE_TIMEOUT_MS (10 * 60 * 1000)
/* Output kept for the audit line, per program. */
#define OUTPUT_MAX 4096

struct rp_host {
  struct rp_provider *p; /* borrowed */
  char *id;              /* owned: machine id (or hostname) */
  char *name;            /* owned: hostname */
  int64_t boot_ms;
  char boot_id[40];
  char *marker;     /* owned: the once-per-boot marker's path */
  char **env;       /* owned, NULL-terminated: what drain and replace get */
  uv_timer_t defer; /* the first report runs from the loop, not inside the
                       core's call */
  bool list_pending;
  bool timer_inited;
  struct hplan *plan; /* the recycle in flight, or NULL */
  int in_flight;      /* recycles */
  bool stopping;
  bool timer_closed;
  void (*stop_cb)(void *arg);
  void *stop_arg;
};

/* The one recycle in flight (a host is one workload), from prepare to
 * release: what its operations share. */
struct hplan {
  struct rp_host *h; /* borrowed */
  uv_timer_t timer;  /* prepare calls back from the loop; freed when closed */
  rp_prepared_cb prepared_cb;
  void *prepared_arg;
  char *drain_error; /* owned: why the drain could not start, or NULL */
  char *acted;       /* owned: crash recovery's rp_prepared.acted, or NULL */
};

static char **
argv_dup(const char *const *argv)
{
  if (!argv)
    return NULL;
  size_t n = 0;
  while (argv[n])
    n++;
  char **c = rp_xcalloc(n + 1, sizeof(*c));
  for (size_t i = 0; i < n; i++)
    c[i] = rp_xstrdup(argv[i]);
  return c;
}

static void
argv_free(char **argv)
{
  if (!argv)
    return;
  for (char **a = argv; *a; a++)
    free(*a);
  free(argv);
}

static json_t *
argv_json(char *const *argv)
{
  json_t *a = json_array();
  for (; argv && *argv; argv++)
    json_array_append_new(a, json_string(*argv));
  return a;
}

static enum rp_strategy
default_strategy(enum rp_kind kind)
{
  (void)kind;
  return RP_STRATEGY_DRAIN_REPLACE;
}

/* The machine reaper runs on: the policy's drain, then its replace command,
 * both run here. */
static const struct rp_capability caps[] = {
    {.kind = RP_KIND_HOST,
     .strategies = RP_STRATEGY_BIT(RP_STRATEGY_DRAIN_REPLACE),
     .drain = true,
     .replace = true},
};

/* --- the workload -------------------------------------------------------- */

static void
report(struct rp_host *h)
{
  struct rp_provider *p = h->p;
  struct rp_workload *w =
      rp_workload_new(p->name, RP_KIND_HOST, h->id, h->name, h->boot_ms);
  if (rp_host_marker_exists(h->marker))
    w->protected_reason = rp_xasprintf(
        "the replace action already ran in this boot (%s)", h->marker);
  struct rp_workload *v[] = {w};
  p->hooks.listed(p->hooks.core, p, v, 1);
  rp_workload_free(v[0]); /* NULL when the core took it */
}

static void
maybe_stopped(struct rp_host *h)
{
  if (h->stop_cb && h->in_flight == 0 && h->timer_closed) {
    void (*cb)(void *) = h->stop_cb;
    h->stop_cb = NULL;
    cb(h->stop_arg);
  }
}

static void
defer_cb(uv_timer_t *t)
{
  struct rp_host *h = t->data;
  if (h->stopping)
    return;
  if (h->list_pending) {
    h->list_pending = false;
    report(h);
    h->p->hooks.state(h->p->hooks.core, h->p, true, NULL);
  }
}

static void
defer(struct rp_host *h)
{
  if (!h->stopping && h->timer_inited)
    uv_timer_start(&h->defer, defer_cb, 0, 0);
}

/* --- ops ----------------------------------------------------------------- */

static int
init(struct rp_provider *p, struct rp_error **err)
{
  struct rp_host *h = rp_xcalloc(1, sizeof(*h));
  h->p = p;
  if (p->cfg && p->cfg->endpoint) {
    free(h);
    return rp_error_set(err, RP_ECONFIG,
                        "a host provider takes no endpoint: it is the machine "
                        "reaper runs on");
  }
  if (rp_host_identity("/etc/machine-id", &h->id, &h->name, err) != 0 ||
      rp_host_boot_time_ms("/proc", &h->boot_ms, err) != 0 ||
      rp_host_boot_id("/proc", h->boot_id, sizeof(h->boot_id), err) != 0) {
    free(h->id);
    free(h->name);
    free(h);
    return -1;
  }
  const char *dir = getenv("REAPER_STATE_DIR");
  h->marker =
      rp_host_marker_path(dir && *dir ? dir : RP_HOST_STATE_DIR, h->boot_id);
  char boot[40];
  rp_format_time_ms(h->boot_ms, boot, sizeof(boot));
  h->env = rp_xcalloc(5, sizeof(char *));
  h->env[0] = rp_xstrdup("PATH=" RP_HOST_PATH);
  h->env[1] = rp_xasprintf("REAPER_HOST_ID=%s", h->id);
  h->env[2] = rp_xasprintf("REAPER_HOST_NAME=%s", h->name);
  h->env[3] = rp_xasprintf("REAPER_BOOT_TIME=%s", boot);
  p->ctx = h;
  return 0;
}

static int
start(struct rp_provider *p, struct rp_error **err)
{
  (void)err;
  struct rp_host *h = p->ctx;
  rp_info("provider %s: host %s (%s), booted %llds ago", p->name, h->name,
          h->id, (long long)((rp_wall_ms() - h->boot_ms) / 1000));
  uv_timer_init(p->loop, &h->defer);
  h->defer.data = h;
  h->timer_inited = true;
  h->list_pending = true;
  defer(h);
  return 0;
}

static void
resync(struct rp_provider *p)
{
  struct rp_host *h = p->ctx;
  if (!h->stopping && !h->list_pending)
    report(h);
}

/* --- the runner's operations: prepare, drain, replace, release ----------- */

static json_t *
run_json(char *const *argv, const struct rp_child_result *res,
         int64_t timeout_ms)
{
  char what[160];
  rp_child_describe(res, timeout_ms, what, sizeof(what));
  json_t *o = json_pack("{s:o, s:s, s:f}", "argv", argv_json(argv), "result",
                        what, "duration_s", (double)res->duration_ms / 1000);
  if (!res->spawn_error && !res->timed_out && !res->term_signal)
    json_object_set_new(o, "exit_code", json_integer(res->exit_code));
  json_object_set_new(o, "output", json_string(res->output ? res->output : ""));
  if (res->truncated)
    json_object_set_new(o, "output_truncated", json_true());
  return o;
}

/* Drain and replace run as child.h says: argv, h->env alone, no
 * descriptor of reaper's, SIGTERM to the group at the timeout and SIGKILL
 * 5 s later. */
static int
run(struct rp_host *h, char *const *argv, int64_t timeout_ms, rp_child_cb cb,
    void *arg, struct rp_error **err)
{
  struct rp_child_options o = {
      .argv = argv,
      .env = h->env,
      .timeout_ms = timeout_ms,
      .max_output = OUTPUT_MAX,
  };
  return rp_child_run(h->p->loop, &o, cb, arg, NULL, err);
}

static bool
run_ok(const struct rp_child_result *res)
{
  return !res->spawn_error && !res->timed_out && !res->term_signal &&
         res->exit_code == 0;
}

static void
prepared_cb(uv_timer_t *t)
{
  struct hplan *pl = t->data;
  /* A replace action that ran is final, failed or not: the marker keeps
   * it from running again in this boot, so nothing is undone after it. */
  struct rp_prepared pr = {
      .plan = pl,
      .name = pl->h->name,
      .running = true,
      .replace_final = true,
      .acted = pl->acted,
  };
  pl->prepared_cb(pl->prepared_arg, &pr, NULL);
}

static int
prepare(struct rp_provider *p, const struct rp_workload *w,
        const struct rp_recycle_spec *spec, rp_prepared_cb cb, void *arg,
        struct rp_error **err)
{
  struct rp_host *h = p->ctx;
  if (h->stopping)
    return rp_error_set(err, RP_ECANCELED, "provider %s is stopping", p->name);
  if (w->kind != RP_KIND_HOST || strcmp(w->id, h->id) != 0)
    return rp_error_set(err, EINVAL, "provider %s: %s is not this host",
                        p->name, w->id);
  if (spec->strategy != RP_STRATEGY_DRAIN_REPLACE)
    return rp_error_set(err, RP_ECONFIG,
                        "provider %s: strategy %s does not apply to a host; "
                        "give hosts a policy of their own (match: {kind: "
                        "host}, strategy: drain-replace, replace: [...])",
                        p->name, rp_strategy_name(spec->strategy));
  if (!spec->recovery && (!spec->replace_argv || !spec->replace_argv[0]))
    return rp_error_set(err, RP_ECONFIG,
                        "provider %s: the policy has no replace action: say "
                        "what replaces this host (replace: [/usr/local/lib/"
                        "reaper/reboot.sh, --local])",
                        p->name);
  bool marked = rp_host_marker_exists(h->marker);
  if (marked && !spec->recovery)
    return rp_error_set(err, RP_ECONFLICT,
                        "provider %s: the replace action already ran in this "
                        "boot (marker %s): not again",
                        p->name, h->marker);
  if (h->plan)
    return rp_error_set(err, RP_ECONFLICT,
                        "provider %s: the host is being recycled already",
                        p->name);
  struct hplan *pl = rp_xcalloc(1, sizeof(*pl));
  pl->h = h;
  pl->prepared_cb = cb;
  pl->prepared_arg = arg;
  /* Crash recovery: the marker is made before the action runs, so without
   * it the action never ran in this boot. */
  if (spec->recovery && marked)
    pl->acted = rp_xasprintf("the once-per-boot marker %s says its replace "
                             "action started in this boot",
                             h->marker);
  uv_timer_init(p->loop, &pl->timer);
  pl->timer.data = pl;
  uv_timer_start(&pl->timer, prepared_cb, 0, 0);
  h->plan = pl;
  h->in_flight++;
  return 0;
}

static void
plan_closed_cb(uv_handle_t *t)
{
  struct hplan *pl = t->data;
  struct rp_host *h = pl->h;
  free(pl->drain_error);
  free(pl->acted);
  free(pl);
  h->in_flight--;
  /* The marker now protects the host until it boots again. */
  if (!h->stopping && !h->list_pending)
    report(h);
  maybe_stopped(h);
}

static void
release(struct rp_provider *p, void *plan)
{
  struct rp_host *h = p->ctx;
  struct hplan *pl = plan ? plan : h->plan;
  if (!pl)
    return;
  h->plan = NULL;
  uv_close((uv_handle_t *)&pl->timer, plan_closed_cb);
}

struct hrun {
  struct rp_host *h;
  struct hplan *pl;
  char **argv; /* owned */
  int64_t timeout_ms;
  rp_drained_cb drained_cb;
  rp_replaced_cb replaced_cb;
  void *arg;
};

static void
hrun_free(struct hrun *hr)
{
  argv_free(hr->argv);
  free(hr);
}

static void
drained_cb(void *arg, const struct rp_child_result *res)
{
  struct hrun *hr = arg;
  char what[160];
  rp_child_describe(res, hr->timeout_ms, what, sizeof(what));
  if (res->spawn_error) {
    /* A drain that is not there is a configuration to fix, not a reason
     * to replace a host whose work was never stopped: replace refuses. */
    hr->pl->drain_error = rp_xasprintf("drain %s: %s", hr->argv[0], what);
  } else if (!run_ok(res)) {
    rp_warn("provider %s: host %s: drain %s: %s; replacing all the same",
            hr->h->p->name, hr->h->name, hr->argv[0], what);
  }
  cleanup_json json_t *outcome = run_json(hr->argv, res, hr->timeout_ms);
  hr->drained_cb(hr->arg, outcome);
  hrun_free(hr);
}

static int
drain(struct rp_provider *p, const char *id, const char *const *argv,
      int64_t timeout_ms, rp_drained_cb cb, void *arg, struct rp_error **err)
{
  struct rp_host *h = p->ctx;
  struct hplan *pl = h->plan;
  int rc = 0;
  if (!pl || strcmp(id, h->id) != 0)
    return rp_error_set(err, EINVAL, "provider %s: no recycle of %s in flight",
                        p->name, id);
  if (h->stopping)
    rc = rp_error_set(err, RP_ECANCELED, "provider %s is stopping", p->name);
  struct hrun *hr = rp_xcalloc(1, sizeof(*hr));
  *hr = (struct hrun){.h = h,
                      .pl = pl,
                      .argv = argv_dup(argv),
                      .timeout_ms = timeout_ms,
                      .drained_cb = cb,
                      .arg = arg};
  if (rc == 0) {
    rp_info("provider %s: host %s: draining with %s", p->name, h->name,
            argv[0]);
    rc = run(h, hr->argv, timeout_ms, drained_cb, hr, err);
  }
  if (rc != 0) {
    /* The runner goes on to replace, which this refuses. */
    pl->drain_error = rp_xasprintf("drain %s: could not start: %s", argv[0],
                                   *err ? (*err)->message : "?");
    hrun_free(hr);
    return -1;
  }
  return 0;
}

static void
replaced_cb(void *arg, const struct rp_child_result *res)
{
  struct hrun *hr = arg;
  struct rp_host *h = hr->h;
  char what[160];
  rp_child_describe(res, REPLACE_TIMEOUT_MS, what, sizeof(what));
  cleanup_json json_t *outcome = run_json(hr->argv, res, REPLACE_TIMEOUT_MS);
  json_object_set_new(outcome, "marker", json_string(h->marker));
  cleanup_error struct rp_error *err = NULL;
  if (!run_ok(res)) {
    /* The first line of its output says the most. */
    const char *out = res->output ? res->output : "";
    int first = (int)strcspn(out, "\n");
    rp_error_set(&err, RP_EENGINE,
                 "replace action %s: %s%s%.*s (it does not run again in this "
                 "boot: %s)",
                 hr->argv[0], what, first ? ": " : "", first, out, h->marker);
  } else {
    rp_info("provider %s: the replace action for host %s succeeded", h->p->name,
            h->name);
  }
  hr->replaced_cb(hr->arg, outcome, err);
  hrun_free(hr);
}

/* The marker is created BEFORE the action runs: a crash or a second reaper
 * can never run it twice in one boot. */
static int
replace(struct rp_provider *p, const char *id, void *plan,
        const char *const *argv, int64_t timeout_ms, rp_replaced_cb cb,
        void *arg, struct rp_error **err)
{
  (void)timeout_ms; /* the action's own bound: REPLACE_TIMEOUT_MS */
  struct rp_host *h = p->ctx;
  struct hplan *pl = plan;
  if (!pl || pl != h->plan || strcmp(id, h->id) != 0)
    return rp_error_set(err, EINVAL, "provider %s: no recycle of %s in flight",
                        p->name, id);
  if (h->stopping)
    return rp_error_set(err, RP_ECANCELED,
                        "agent stopping after the drain: replace action not "
                        "run");
  if (pl->drain_error)
    return rp_error_set(err, RP_ECONFIG, "%s", pl->drain_error);
  struct hrun *hr = rp_xcalloc(1, sizeof(*hr));
  *hr = (struct hrun){
      .h = h, .pl = pl, .argv = argv_dup(argv), .replaced_cb = cb, .arg = arg};
  char ts[40];
  rp_format_time_ms(rp_wall_ms(), ts, sizeof(ts));
  cleanup_json json_t *m = json_pack(
      "{s:s, s:s, s:s, s:o, s:i}", "boot_id", h->boot_id, "host_id", h->id,
      "at", ts, "argv", argv_json(hr->argv), "pid", (int)getpid());
  cleanup_free char *content = json_dumps(m, JSON_COMPACT);
  cleanup_error struct rp_error *merr = NULL;
  if (rp_host_marker_create(h->marker, content, &merr) != 0) {
    hrun_free(hr);
    return rp_error_set(err, merr->code,
                        "replace action not run: once-per-boot marker: %s",
                        merr->message);
  }
  RP_CRASHPOINT("host-after-marker");
  rp_warn("provider %s: host %s: running the replace action %s", p->name,
          h->name, argv[0]);
  if (run(h, hr->argv, REPLACE_TIMEOUT_MS, replaced_cb, hr, err) != 0) {
    hrun_free(hr);
    return -1;
  }
  return 0;
}

static void
timer_closed_cb(uv_handle_t *t)
{
  struct rp_host *h = t->data;
  h->timer_closed = true;
  maybe_stopped(h);
}

static void
stop(struct rp_provider *p, void (*done_cb)(void *arg), void *arg)
{
  struct rp_host *h = p->ctx;
  h->stopping = true;
  h->stop_cb = done_cb;
  h->stop_arg = arg;
  /* A recycle in flight finishes: its programs are bounded by timeouts. */
  if (h->timer_inited)
    uv_close((uv_handle_t *)&h->defer, timer_closed_cb);
  else
    h->timer_closed = true;
  maybe_stopped(h);
}

static void
destroy(struct rp_provider *p)
{
  struct rp_host *h = p->ctx;
  if (!h)
    return;
  free(h->id);
  free(h->name);
  free(h->marker);
  argv_free(h->env);
  free(h);
  p->ctx = NULL;
}

const struct rp_provider_ops rp_provider_host = {
    .type = "host",
    .default_strategy = default_strategy,
    .caps = caps,
    .n_caps = sizeof(caps) / sizeof(caps[0]),
    .init = init,
    .start = start,
    .resync = resync,
    .prepare = prepare,
    .release = release,
    .drain = drain,
    .replace = replace,
    /* No probe: crash recovery prepares the host again, whose marker says
     * whether its replace action ran. */
    .recover_by_prepare = true,
    .stop = stop,
    .destroy = destroy,
};
