#include "agent.h"

#include <signal.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/resource.h>
#include <string.h>

#include "audit.h"
#include "content.h"
#include "http_client.h"
#include "idset.h"
#include "label_keys.h"
#include "log.h"
#include "notify.h"
#include "plan.h"
#include "policy.h"
#include "provider.h"
#include "recovery.h"
#include "runner.h"
#include "recycle.h"
#include "registry_auth.h"
#include "schedule.h"
#include "service.h"
#include "status.h"
#include "tracker.h"
#include "util.h"

/* How long a stop waits for recycles in flight beyond their own bounds. */
#define STOP_MARGIN_MS 15000

struct agent {
  uv_loop_t loop;
  /* owned: the warnings already logged, "provider/name\nwarning" -> how
   * many lists in a row missed that name: a bad label is said once per
   * workload, not again for its replacement, nor for the old container
   * renamed during a recycle; forgotten once three lists missed the name
   * (one may fall between a recycle's rename and create). */
  json_t *warned;
  struct rp_agent_options opt;
  struct rp_config *config;          /* owned: the live configuration */
  struct rp_config *provider_config; /* owned when != config: what the
                                        providers were made from */
  struct rp_audit *audit;            /* owned; NULL in plan mode */
  struct rp_http *http;              /* owned */
  struct rp_provider *providers;     /* owned array */
  size_t n_providers;
  bool *listed;         /* owned: per provider, the first full list arrived */
  bool *up;             /* owned: per provider, connected */
  bool *recovering;     /* owned: per provider, crash recovery not done yet */
  bool *recovery_waits; /* owned: per provider, recovery waits for the
                           recycles in flight on it to end */
  /* owned: the label keys the configuration reads (the providers borrow
   * it), and per provider, the lists still to come before what it tracks
   * has the keys a reload added (no recycle there until then) */
  struct rp_label_keys *label_keys;
  int *relabel;
  json_t *unfinished; /* owned: provider -> recycle.begin lines never ended */
  char **down_reason; /* owned strings: why a provider is down */
  struct rp_tracker *tracker;
  struct rp_schedule *schedule;
  struct rp_recycler *recycler;
  struct rp_status *status; /* owned: the HTTP listener, or NULL */
  /* owned until the stop frees it (NULL from then on): what content each
   * image reference has (fresh content) */
  struct rp_content *content;
  json_t *image_lines; /* owned until fed to content: the log's image.* */
  /* owned until the stop closes it (NULL from then on, and in plan mode):
   * notifications and the advance notices of recycles */
  struct rp_notifier *notify;
  /* owned until the stop closes it; NULL in plan mode: systemd's notify
   * protocol (READY=1, STATUS=, the watchdog) */
  struct rp_service *service;
  uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
  uv_timer_t resync_timer;
  uv_timer_t stop_timer;
  uv_timer_t retry_timer; /* audit retry while the log is failed */
  bool ready;             /* every provider listed once */
  int64_t pass_ms;        /* --once: what is due by then is this pass's work */
  bool stopping;          /* no new work */
  bool reloading;         /* a reload's file is being read (thread pool) */
  bool reload_again;      /* SIGHUP meanwhile: reload once more after it */
  size_t providers_stopping;
  bool providers_stopping_started;
  int exit_code;
  uint64_t http_sent_at_close; /* rp_http_sent once the client is gone */
  char *fatal;                 /* owned: why plan/once could not finish */
};

/* --- decisions ---------------------------------------------------------- */

/* The advance notice of e's recycle (its policy's notify_before) follows
 * its decision.  Only a running agent gives notice: a --once pass keeps no
 * memory of the notices it sent, and would send them again each run. */
static void
feed_notice(struct agent *a, const struct rp_entry *e)
{
  if (!a->notify)
    return;
  if (e->state != RP_ENTRY_WAITING || !e->d.policy || e->d.excluded ||
      a->opt.mode != RP_AGENT_RUN) {
    rp_notify_upcoming_remove(a->notify, e->w->provider, e->w->id);
    return;
  }
  struct rp_notify_upcoming u = {
      .provider = e->w->provider,
      .kind = e->w->kind,
      .id = e->w->id,
      .name = e->w->name,
      .policy = e->d.policy->name,
      .started_ms = e->w->started_ms,
      .due_ms = e->d.due_ms, /* a retry is no new notice */
      .max_age_ms = e->d.max_age_ms,
      .before_ms = e->d.policy->notify_before_ms,
  };
  rp_notify_upcoming_set(a->notify, &u);
}

static void
redecide(struct agent *a, struct rp_entry *e)
{
  /* The last warning, to warn again only when it changes. */
  cleanup_free char *old_warning = e->d.warning;
  e->d.warning = NULL;
  rp_policy_decide(a->config, e->w, &e->d);
  /* Fresh content may bring the deadline forward (a newer digest, old
   * content); the recycler reads e->content for what to create from. */
  if (a->content)
    rp_content_judge(a->content, e, rp_wall_ms());
  if (e->d.warning &&
      (!old_warning || strcmp(e->d.warning, old_warning) != 0) &&
      e->state != RP_ENTRY_RECYCLING) {
    cleanup_free char *key =
        rp_xasprintf("%s/%s\n%s", e->w->provider, e->w->name, e->d.warning);
    if (!json_object_get(a->warned, key))
      rp_warn("%s", e->d.warning);
    json_object_set_new(a->warned, key, json_integer(0));
  }
  if (e->state == RP_ENTRY_RECYCLING || e->state == RP_ENTRY_DUE)
    return; /* the recycler has it; it looks again when it is done */
  if (!e->d.policy || e->d.excluded ||
      (e->handled_start_ms && e->handled_start_ms == e->w->started_ms)) {
    e->state =
        e->state == RP_ENTRY_PLANNED && e->handled_start_ms == e->w->started_ms
            ? RP_ENTRY_PLANNED
            : RP_ENTRY_IDLE;
    rp_schedule_remove(a->schedule, e);
    feed_notice(a, e);
    return;
  }
  /* A pending retry keeps its later time, whatever happened meanwhile. */
  e->due_ms =
      e->failures && e->retry_ms > e->d.due_ms ? e->retry_ms : e->d.due_ms;
  e->state = RP_ENTRY_WAITING;
  rp_schedule_set(a->schedule, e);
  feed_notice(a, e);
}

static bool
same_labels(const json_t *x, const json_t *y)
{
  return json_equal((json_t *)(uintptr_t)x, (json_t *)(uintptr_t)y);
}

/* A workload as its provider reports it now: the tracker's entry takes *wp
 * when it is new or changed (*wp is then NULL; the caller frees what is
 * left), so that a list's workloads are the tracker's, never copied. */
static void
upsert(struct agent *a, struct rp_provider *p, struct rp_workload **wp)
{
  struct rp_workload *w = *wp;
  struct rp_entry *e = rp_tracker_find(a->tracker, p->name, w->id);
  if (!e && rp_recycler_busy_with(a->recycler, p->name, w->id)) {
    /* A stale report of a workload whose recycle is still going (it left
     * the tracker when the engine said it went): never a second recycle of
     * it; the recycle's end, or the next list, says what is true. */
    return;
  }
  if (!e) {
    *wp = NULL;
    if (strcmp(w->provider, p->name) != 0) {
      free(w->provider);
      w->provider = rp_xstrdup(p->name);
    }
    e = rp_tracker_add(a->tracker, p, w);
    redecide(a, e);
    return;
  }
  bool changed =
      e->w->started_ms != w->started_ms || strcmp(e->w->name, w->name) != 0 ||
      !same_labels(e->w->labels, w->labels) ||
      (e->w->protected_reason == NULL) != (w->protected_reason == NULL) ||
      !rp_workload_image_equal(&e->w->image, &w->image);
  if (!changed)
    return;
  if (e->w->started_ms != w->started_ms && e->state != RP_ENTRY_RECYCLING) {
    e->failures = 0; /* it started anew: a new life */
    e->retry_ms = 0;
  }
  *wp = NULL;
  if (strcmp(w->provider, p->name) != 0) {
    free(w->provider);
    w->provider = rp_xstrdup(p->name);
  }
  rp_workload_free(e->w);
  e->w = w;
  redecide(a, e);
}

static void
forget(struct agent *a, struct rp_entry *e)
{
  if (a->content)
    rp_content_release(a->content, e);
  rp_tracker_unlink(a->tracker, e);
  rp_notify_upcoming_remove(a->notify, e->w->provider, e->w->id);
  if (!rp_recycler_forget(a->recycler, e))
    rp_entry_free(e);
}

/* --- provider hooks ----------------------------------------------------- */

static size_t
provider_index(struct agent *a, struct rp_provider *p)
{
  return (size_t)(p - a->providers);
}

/* systemd's STATUS= line: which providers are up, and whether crash
 * recovery is done (what `systemctl status` shows beside READY=1). */
static char *
service_status(struct agent *a)
{
  size_t up = 0, recovering = 0;
  for (size_t i = 0; i < a->n_providers; i++) {
    up += a->up[i];
    recovering += a->recovering[i];
  }
  cleanup_free char *down = rp_xstrdup("");
  for (size_t i = 0; i < a->n_providers; i++) {
    if (a->up[i])
      continue;
    char *d =
        rp_xasprintf("%s%s%s", down, *down ? ", " : "", a->providers[i].name);
    free(down);
    down = d;
  }
  return rp_xasprintf("%zu of %zu providers up%s%s; crash recovery %s", up,
                      a->n_providers, *down ? ", down: " : "", down,
                      recovering ? "pending" : "done");
}

static void
update_service_status(struct agent *a)
{
  if (!a->service || a->stopping)
    return;
  cleanup_free char *st = service_status(a);
  rp_service_status(a->service, st);
}

static void check_ready(struct agent *a);
static void redecide_cb(void *arg, struct rp_entry *e);
static void start_recovery(struct agent *a, struct rp_provider *p);
static void stop_agent(struct agent *a, int exit_code);

/* --- crash recovery ----------------------------------------------------- */

/* Whether p's unfinished recycles are put right after a crash (by the
 * core's runner, with the provider's operations). */
static bool
recovers(const struct rp_provider *p)
{
  return rp_runner_recovers(p);
}

static void redecide_provider(struct agent *a, struct rp_provider *p);

/* The recovery of p's unfinished recycles has ended; err: one could not
 * even be looked at, and it is tried again. */
static void
recovery_done(struct agent *a, struct rp_provider *p,
              const struct rp_error *err)
{
  size_t i = provider_index(a, p);
  if (err) {
    /* Not knowing what a crash left behind, acting could make it worse:
     * this provider's workloads wait, and recovery is tried again. */
    rp_err("provider %s: crash recovery failed, acting on nothing of it: %s",
           p->name, err->message);
    if (a->opt.mode != RP_AGENT_RUN) {
      free(a->fatal);
      a->fatal = rp_xasprintf("provider %s: crash recovery failed: %s", p->name,
                              err->message);
      stop_agent(a, 1);
      return;
    }
    /* The next list starts recovery again: the periodic resync makes it
     * (never at once: a recovery that keeps failing must not spin). */
    a->listed[i] = false;
    return;
  }
  a->recovering[i] = false;
  /* What the log named is settled. */
  json_object_del(a->unfinished, p->name);
  if (p->ops->resync)
    p->ops->resync(p);
  redecide_provider(a, p);
  check_ready(a);
  update_service_status(a);
}

/* The core's recovery of one provider: every item at once, each ending in
 * its recycle.recovered line; done when the last has. */
struct core_recovery {
  struct agent *a;
  struct rp_provider *p;
  size_t pending;
  char *first_error; /* the first reason to try again */
};

static void
core_recovery_item_done(void *arg, json_t *begin, const struct rp_error *retry)
{
  struct core_recovery *cr = arg;
  if (retry && !cr->first_error) {
    cr->first_error = rp_xstrdup(retry->message);
  } else if (begin && !retry) {
    /* Put right and written: not to be recovered again. */
    json_t *list = json_object_get(cr->a->unfinished, cr->p->name);
    size_t i;
    json_t *l;
    json_array_foreach(list, i, l) if (l == begin)
    {
      json_array_remove(list, i);
      break;
    }
  }
  if (--cr->pending > 0)
    return;
  struct rp_error *e = NULL;
  if (cr->first_error)
    rp_error_set(&e, RP_EENGINE, "%s", cr->first_error);
  recovery_done(cr->a, cr->p, e);
  rp_error_free(e);
  free(cr->first_error);
  free(cr);
}

/* The runner finishes or undoes each unfinished recycle of p with p's
 * operations. */
static void
start_recovery(struct agent *a, struct rp_provider *p)
{
  size_t pi = provider_index(a, p);
  if (rp_recycler_in_flight_on(a->recycler, p) > 0) {
    /* Recovery must not race a recycle that is still going: it would take
     * that recycle's work for unfinished.  The recycler's change callback
     * starts it once they have ended. */
    a->recovery_waits[pi] = true;
    return;
  }
  a->recovery_waits[pi] = false;
  json_t *begins = json_object_get(a->unfinished, p->name);
  size_t n = json_array_size(begins);
  if (n)
    rp_warn("provider %s: %zu recycles were unfinished when reaper last "
            "stopped: recovering",
            p->name, n);
  struct core_recovery *cr = rp_xcalloc(1, sizeof(*cr));
  cr->a = a;
  cr->p = p;
  cr->pending = 1; /* this loop's own, released below */
  for (size_t k = 0; k < n; k++) {
    json_t *l = json_array_get(begins, k);
    const char *policy = json_string_value(json_object_get(l, "policy"));
    const struct rp_policy *pol =
        policy ? rp_config_policy(a->config, policy) : NULL;
    int st =
        rp_strategy_parse(json_string_value(json_object_get(l, "strategy")));
    int kind = rp_kind_parse(json_string_value(json_object_get(l, "kind")));
    const char *order = json_string_value(json_object_get(l, "order"));
    struct rp_unfinished item = {
        .id = json_string_value(json_object_get(l, "id")),
        .name = json_string_value(json_object_get(l, "name")),
        .kind = kind < 0 ? RP_KIND_CONTAINER : (enum rp_kind)kind,
        .strategy = st < 0 ? RP_STRATEGY_RECREATE : (enum rp_strategy)st,
        .grace_ms = pol ? pol->grace_ms : 30000,
        .health_timeout_ms = pol ? pol->health_timeout_ms : 60000,
        .start_first = order && strcmp(order, "start-first") == 0,
        .steps = json_object_get(l, "steps"),
        .replacement_id =
            json_string_value(json_object_get(l, "replacement_id")),
    };
    if (!item.id)
      continue;
    cleanup_error struct rp_error *err = NULL;
    cr->pending++;
    if (rp_recycler_recover(a->recycler, p, &item, l, core_recovery_item_done,
                            cr, &err) != 0) {
      cr->pending--;
      if (!cr->first_error)
        cr->first_error = rp_xstrdup(err ? err->message : "?");
    }
  }
  core_recovery_item_done(cr, NULL, NULL);
}

struct sweep {
  struct agent *a;
  const char *provider;
  const struct rp_idset *seen; /* ids in the new list */
};

static void
sweep_cb(void *arg, struct rp_entry *e)
{
  struct sweep *s = arg;
  if (strcmp(e->w->provider, s->provider) == 0 &&
      !rp_idset_has(s->seen, e->w->id))
    forget(s->a, e);
}

/* After a full list of provider `name`: its warnings about workloads it
 * has not listed for a while are forgotten. */
static void
forget_warnings(struct agent *a, const char *name, struct rp_workload **items,
                size_t n)
{
  cleanup_json json_t *listed = json_object();
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *k = rp_xasprintf("%s/%s\n", name, items[i]->name);
    json_object_set_new(listed, k, json_true());
  }
  size_t plen = strlen(name);
  const char *key;
  json_t *v;
  void *tmp;
  json_object_foreach_safe(a->warned, tmp, key, v)
  {
    const char *nl = strchr(key, '\n');
    if (!nl || strncmp(key, name, plen) != 0 || key[plen] != '/')
      continue;
    cleanup_free char *prefix = rp_xstrndup(key, (size_t)(nl - key) + 1);
    json_int_t misses =
        json_object_get(listed, prefix) ? 0 : json_integer_value(v) + 1;
    if (misses >= 3)
      json_object_del(a->warned, key);
    else
      json_integer_set(v, misses);
  }
}

static void
hook_listed(void *core, struct rp_provider *p, struct rp_workload **items,
            size_t n)
{
  struct agent *a = core;
  /* What the list says of names and ids, before the tracker takes its
   * workloads (a warning about a listed name is kept whichever comes
   * first: a decision's warning sets its count to 0, as being listed
   * does). */
  forget_warnings(a, p->name, items, n);
  struct rp_idset seen;
  rp_idset_init(&seen, n);
  for (size_t i = 0; i < n; i++)
    rp_idset_add(&seen, items[i]->id);
  for (size_t i = 0; i < n; i++)
    upsert(a, p, &items[i]);
  struct sweep s = {a, p->name, &seen};
  rp_tracker_foreach(a->tracker, sweep_cb, &s);
  rp_idset_clear(&seen);
  size_t i = provider_index(a, p);
  if (a->relabel[i] > 0) {
    if (--a->relabel[i] > 0 && p->ops->resync)
      /* That list may have begun before the reload: one more that cannot
       * have (asked now, it runs after this one). */
      p->ops->resync(p);
    else
      rp_recycler_pump(a->recycler); /* what waited for it may go */
  }
  if (!a->listed[i]) {
    a->listed[i] = true;
    rp_info("provider %s (%s): %zu workloads", p->name, p->ops->type, n);
    if (a->recovering[i])
      start_recovery(a, p);
  }
  check_ready(a);
}

static void
hook_upsert(void *core, struct rp_provider *p, const struct rp_workload *w)
{
  struct rp_workload *c = rp_workload_dup(w);
  upsert(core, p, &c);
  rp_workload_free(c);
}

static void
hook_removed(void *core, struct rp_provider *p, const char *id)
{
  struct agent *a = core;
  struct rp_entry *e = rp_tracker_find(a->tracker, p->name, id);
  if (e)
    forget(a, e);
}

static void stop_agent(struct agent *a, int exit_code);

static void
hook_state(void *core, struct rp_provider *p, bool up, const char *reason)
{
  struct agent *a = core;
  size_t i = provider_index(a, p);
  if (up && !a->up[i])
    rp_info("provider %s (%s) connected", p->name, p->ops->type);
  else if (!up && (a->up[i] || !a->down_reason[i] ||
                   strcmp(a->down_reason[i], reason ? reason : "") != 0))
    rp_err("provider %s (%s) unreachable: %s", p->name, p->ops->type,
           reason ? reason : "unknown reason");
  if (!up && a->up[i] && recovers(p) && a->opt.mode == RP_AGENT_RUN &&
      !a->stopping) {
    /* The engine went away, perhaps in the middle of a recycle (an engine
     * restart kills its containers): once it is back, recovery looks for
     * reaper's unfinished work again before anything else is done. */
    a->recovering[i] = true;
    a->listed[i] = false;
  }
  a->up[i] = up;
  if (up)
    rp_recycler_pump(a->recycler); /* e.g. it may act again */
  free(a->down_reason[i]);
  a->down_reason[i] = up ? NULL : rp_xstrdup(reason ? reason : "");
  update_service_status(a);
  if (!up && a->opt.mode != RP_AGENT_RUN && !a->stopping) {
    /* plan and --once answer now rather than wait for an engine. */
    free(a->fatal);
    a->fatal = rp_xasprintf("provider %s (%s) unreachable: %s", p->name,
                            p->ops->type, reason ? reason : "unknown reason");
    stop_agent(a, 1);
  }
}

/* --- schedule and recycles ---------------------------------------------- */

static void
due_cb(void *arg, struct rp_entry *e, int64_t now_ms)
{
  struct agent *a = arg;
  if (a->stopping || a->opt.mode == RP_AGENT_PLAN ||
      a->recovering[provider_index(a, e->provider)] ||
      (a->opt.mode == RP_AGENT_ONCE &&
       (!a->ready || e->due_ms > a->pass_ms || e->handled_start_ms))) {
    /* Out of the schedule: not this run's work.  A --once pass recycles a
     * workload at most once: one recycled (or planned) in it already is
     * left for the next pass, even when its new life is already due (a
     * service whose tasks the pass renewed, with a short max age, on a
     * slow engine: fresh-Debian CI saw test_swarm_services' web updated
     * twice in one pass). */
    e->state = RP_ENTRY_WAITING;
    return;
  }
  rp_recycler_offer(a->recycler, e, now_ms);
}

static void
once_check(struct agent *a)
{
  if (a->opt.mode != RP_AGENT_ONCE || !a->ready || a->stopping)
    return;
  if (!rp_recycler_idle(a->recycler))
    return;
  if (rp_schedule_next_ms(a->schedule) <= a->pass_ms)
    return; /* more of this pass is due: the timer is about to fire */
  const struct rp_recycler_stats *st = rp_recycler_stats(a->recycler);
  rp_info("one pass done: %llu recycled, %llu failed, %llu planned",
          (unsigned long long)st->done, (unsigned long long)st->failed,
          (unsigned long long)st->planned);
  stop_agent(a, st->failed ? 1 : 0);
}

/* Never act on a half-known state: a provider that is down, or whose crash
 * recovery has not run, gets no recycle. */
static bool
gate_cb(void *arg, const struct rp_entry *e)
{
  struct agent *a = arg;
  size_t i = provider_index(a, e->provider);
  return a->up[i] && !a->recovering[i] && a->relabel[i] == 0 &&
         (!a->content || rp_content_checked(a->content, e));
}

/* A recycle failed half-way: the provider's recovery puts right what it
 * left (an old container beside its running replacement, say) once nothing
 * else is in flight on that provider. */
static void
unsettled_cb(void *arg, struct rp_entry *e, json_t *begin)
{
  struct agent *a = arg;
  size_t i = provider_index(a, e->provider);
  if (!recovers(e->provider) || a->opt.mode != RP_AGENT_RUN || a->stopping)
    return;
  /* The audit log shows it begun and not put right: recovery takes it as
   * it takes those a crash left (and nothing the log does not name). */
  if (!a->unfinished)
    a->unfinished = json_object();
  json_t *list = json_object_get(a->unfinished, e->provider->name);
  if (!list) {
    list = json_array();
    json_object_set_new(a->unfinished, e->provider->name, list);
  }
  json_array_append_new(list, json_deep_copy(begin));
  if (a->recovering[i])
    return;
  rp_warn("provider %s: a failed recycle left work unfinished: recovering",
          e->provider->name);
  a->recovering[i] = true;
  a->recovery_waits[i] = true; /* started by the change callback */
}

static void
recycler_change_cb(void *arg)
{
  struct agent *a = arg;
  for (size_t i = 0; i < a->n_providers; i++)
    if (a->recovery_waits[i] && !a->stopping &&
        rp_recycler_in_flight_on(a->recycler, &a->providers[i]) == 0)
      start_recovery(a, &a->providers[i]);
  once_check(a);
}

static void
once_timer_cb(uv_timer_t *t)
{
  once_check(t->data);
}

static json_t *status_providers_cb(void *ctx);

static void
check_ready(struct agent *a)
{
  if (a->ready)
    return;
  for (size_t i = 0; i < a->n_providers; i++)
    if (!a->listed[i] || a->recovering[i])
      return;
  /* What the tags name is known (or asked for and failed) before a first
   * decision acts on it, or plan shows it. */
  if (a->content && !rp_content_ready(a->content))
    return;
  a->ready = true;
  if (a->opt.mode == RP_AGENT_PLAN) {
    size_t n;
    cleanup_free struct rp_entry **v =
        rp_tracker_snapshot(a->tracker, rp_plan_cmp, &n);
    int64_t now = rp_wall_ms();
    if (!a->opt.json) {
      cleanup_json json_t *providers = status_providers_cb(a);
      rp_plan_print_providers(stdout, providers);
    }
    rp_plan_print(stdout, v, n, now, a->opt.json);
    if (!a->opt.json)
      rp_plan_print_forecast(stdout, a->config, v, n, now);
    fflush(stdout);
    stop_agent(a, 0);
    return;
  }
  if (a->opt.mode == RP_AGENT_ONCE) {
    /* The pass covers what is due now; the schedule hands it over at
     * once, and the check after it sees the recycles in flight. */
    a->pass_ms = rp_wall_ms();
    /* What came due before every provider had listed was held back. */
    rp_tracker_foreach(a->tracker, redecide_cb, a);
    rp_schedule_kick(a->schedule);
    a->stop_timer.data = a;
    uv_timer_start(&a->stop_timer, once_timer_cb, 50, 0);
  }
}

/* --- fresh content ---------------------------------------------------- */

static void
content_logged_cb(void *arg, struct rp_error *err)
{
  const char *what = arg;
  if (err)
    rp_err("audit: could not write %s: %s", what, err->message);
}

static int
content_append_cb(void *ctx, const char *event, json_t *fields)
{
  struct agent *a = ctx;
  rp_notify_event(a->notify, event, fields);
  return rp_audit_append(a->audit, &a->loop, event, fields, content_logged_cb,
                         (void *)(uintptr_t)event);
}

struct content_changed {
  struct agent *a;
  const char *key;
};

static void
content_changed_one_cb(void *arg, struct rp_entry *e)
{
  struct content_changed *cc = arg;
  if (e->content.key && strcmp(e->content.key, cc->key) == 0)
    redecide(cc->a, e);
}

/* What a reference names, or what is known of it, changed: its workloads
 * are decided again (a newer digest brings deadlines forward, a quarantine
 * or a refusal takes them back). */
static void
content_changed_cb(void *ctx, const char *key)
{
  struct agent *a = ctx;
  struct content_changed cc = {a, key};
  rp_tracker_foreach(a->tracker, content_changed_one_cb, &cc);
  rp_recycler_pump(a->recycler);
}

static void
content_ready_cb(void *ctx)
{
  struct agent *a = ctx;
  check_ready(a);
  rp_recycler_pump(a->recycler);
}

static json_t *
status_content_cb(void *ctx)
{
  struct agent *a = ctx;
  return a->content ? rp_content_stats(a->content) : NULL;
}

/* Registry credentials as the docker CLI reads them: a file that cannot be
 * read is said, and the registries are asked anonymously. */
static struct rp_registry_auth *
load_registry_auth(void)
{
  struct rp_registry_auth *auth = NULL;
  cleanup_error struct rp_error *err = NULL;
  if (rp_registry_auth_load(NULL, &auth, &err) != 0) {
    rp_warn("registry credentials: %s; registries are asked anonymously",
            err->message);
    return NULL;
  }
  return auth;
}

static int
start_content(struct agent *a)
{
  struct rp_content_env env = {
      .loop = &a->loop,
      .http = a->http,
      .append = a->audit ? content_append_cb : NULL,
      .changed = content_changed_cb,
      .ready = content_ready_cb,
      .ctx = a,
  };
  a->content = rp_content_new(&env);
  rp_recycler_set_content(a->recycler, a->content, redecide_cb, a);
  rp_content_set_auth(a->content, load_registry_auth());
  size_t i;
  json_t *line;
  json_array_foreach(a->image_lines, i, line)
  {
    rp_content_load(a->content, line);
  }
  json_decref(a->image_lines);
  a->image_lines = NULL;
  return 0;
}

/* --- audit -------------------------------------------------------------- */

static void audit_retry_cb(uv_timer_t *t);

static void
audit_retry_done_cb(void *arg, struct rp_error *err)
{
  struct agent *a = arg;
  if (err) {
    uv_timer_start(&a->retry_timer, audit_retry_cb, 5000, 0);
    return;
  }
  rp_info("audit log writable again: resuming");
  rp_recycler_pump(a->recycler);
}

static void
audit_retry_cb(uv_timer_t *t)
{
  struct agent *a = t->data;
  if (a->stopping || rp_audit_healthy(a->audit))
    return;
  rp_audit_retry(a->audit, &a->loop, audit_retry_done_cb, a);
}

static void
watch_audit_cb(uv_timer_t *t)
{
  struct agent *a = t->data;
  if (a->audit && !rp_audit_healthy(a->audit) &&
      !uv_is_active((uv_handle_t *)&a->retry_timer)) {
    rp_err("audit log %s cannot be written: no recycle until it can",
           rp_audit_path(a->audit));
    uv_timer_start(&a->retry_timer, audit_retry_cb, 5000, 0);
  }
  for (size_t i = 0; i < a->n_providers; i++)
    if (a->providers[i].ops->resync &&
        (a->listed[i] || (a->up[i] && a->recovering[i])))
      a->providers[i].ops->resync(&a->providers[i]);
}

/* --- reload ------------------------------------------------------------- */

static void
audit_logged_cb(void *arg, struct rp_error *err)
{
  (void)arg;
  if (err)
    rp_err("audit: could not write config.reload: %s", err->message);
}

static bool
same_providers(const struct rp_config *x, const struct rp_config *y)
{
  if (x->n_providers != y->n_providers)
    return false;
  for (size_t i = 0; i < x->n_providers; i++) {
    const struct rp_provider_config *p = &x->providers[i],
                                    *q = &y->providers[i];
    if (strcmp(p->name, q->name) || strcmp(p->type, q->type) ||
        (p->endpoint == NULL) != (q->endpoint == NULL) ||
        (p->endpoint && strcmp(p->endpoint, q->endpoint)))
      return false;
  }
  return true;
}

static void
redecide_cb(void *arg, struct rp_entry *e)
{
  redecide(arg, e);
}

struct redecide_one {
  struct agent *a;
  struct rp_provider *p;
};

static void
redecide_provider_cb(void *arg, struct rp_entry *e)
{
  struct redecide_one *r = arg;
  if (e->provider == r->p)
    redecide(r->a, e);
}

static void
redecide_provider(struct agent *a, struct rp_provider *p)
{
  struct redecide_one r = {a, p};
  rp_tracker_foreach(a->tracker, redecide_provider_cb, &r);
}

static void
reload_rejected(struct agent *a, const struct rp_error *err)
{
  rp_err("reload rejected, keeping the running configuration: %s",
         err->message);
  cleanup_json json_t *f =
      json_pack("{s:s, s:s, s:s}", "path", a->config->path, "result",
                "rejected", "error", err->message);
  if (a->audit)
    rp_audit_append(a->audit, &a->loop, "config.reload", f, audit_logged_cb,
                    NULL);
  rp_notify_event(a->notify, "config.reload", f);
}

/* The providers keep the labels c reads from their next lists on.  When c
 * reads a key the last lists left out, what is tracked may lack a label
 * that decides (an exclude label, say): nothing is recycled on a provider
 * until it has listed again. */
static void
relabel(struct agent *a, const struct rp_config *c)
{
  struct rp_label_keys *k = rp_label_keys_of(c);
  bool adds = rp_label_keys_adds(a->label_keys, k);
  rp_label_keys_free(a->label_keys);
  a->label_keys = k;
  for (size_t i = 0; i < a->n_providers; i++) {
    struct rp_provider *p = &a->providers[i];
    p->label_keys = k;
    if (!adds || !p->ops->resync)
      continue;
    a->relabel[i] = 2;
    p->ops->resync(p);
  }
  if (adds)
    rp_info("reload: the configuration reads labels it did not; each "
            "provider lists again before it recycles");
}

/* c (owned) becomes the live configuration. */
static void
reload_apply(struct agent *a, struct rp_config *c)
{
  if (!same_providers(a->provider_config ? a->provider_config : a->config, c))
    rp_warn("reload: provider changes take effect at the next start; "
            "policies are applied now");
  /* The providers keep the configuration they were made from. */
  struct rp_config *old = a->config;
  if (!a->provider_config)
    a->provider_config = old;
  else
    rp_config_free(old);
  a->config = c;
  relabel(a, c);
  rp_recycler_set_config(a->recycler, c);
  /* Before the decisions: they feed the notices of the new sinks. */
  rp_notify_set_config(a->notify, c);
  rp_tracker_foreach(a->tracker, redecide_cb, a);
  rp_info("configuration reloaded from %s: %zu policies", c->path,
          c->n_policies);
  cleanup_json json_t *f =
      json_pack("{s:s, s:s, s:i}", "path", c->path, "result", "applied",
                "policies", (int)c->n_policies);
  if (a->audit)
    rp_audit_append(a->audit, &a->loop, "config.reload", f, audit_logged_cb,
                    NULL);
  rp_notify_event(a->notify, "config.reload", f);
  rp_recycler_pump(a->recycler);
}

/* A reload reads and parses the file on libuv's thread pool: a large
 * configuration (100,000 keys: a few hundred ms) must not hold the loop,
 * its deadlines and its listener meanwhile.  Only the result is applied on
 * the loop.  Loading touches nothing shared but the time zone cache, which
 * has its own lock. */
struct reload_job {
  uv_work_t req;
  struct agent *a;      /* borrowed */
  char *path;           /* owned; NULL: the embedded default */
  bool check_trust;     /* the file's permissions are checked too */
  struct rp_config *c;  /* owned: what was loaded */
  struct rp_error *err; /* owned: why not */
  /* owned: registry credentials, read again (docker login may have
   * changed them) */
  struct rp_registry_auth *auth;
  bool auth_failed;
};

static void
reload_work_cb(uv_work_t *req)
{
  struct reload_job *j = req->data;
  int rc = 0;
  if (j->path && j->check_trust)
    rc = rp_config_check_permissions(j->path, &j->err);
  if (rc == 0)
    rc = j->path ? rp_config_load_file(j->path, &j->c, &j->err)
                 : rp_config_load_default(&j->c, &j->err);
  if (rc == 0) {
    struct rp_error *aerr = NULL;
    j->auth_failed = rp_registry_auth_load(NULL, &j->auth, &aerr) != 0;
    if (aerr)
      rp_warn("registry credentials: %s; registries are asked anonymously",
              aerr->message);
    rp_error_free(aerr);
  }
}

static void reload(struct agent *a);

static void
reload_done_cb(uv_work_t *req, int status)
{
  struct reload_job *j = req->data;
  struct agent *a = j->a;
  a->reloading = false;
  if (a->stopping || status != 0) {
    rp_config_free(j->c);
  } else if (j->err) {
    reload_rejected(a, j->err);
  } else {
    if (a->content)
      rp_content_set_auth(a->content, RP_STEAL(j->auth));
    reload_apply(a, j->c);
  }
  rp_registry_auth_free(j->auth);
  /* systemd heard of the reload (RELOADING=1) when it began: now of its
   * end, be the new file applied or rejected. */
  if (!a->stopping) {
    cleanup_free char *st = a->service ? service_status(a) : NULL;
    rp_service_ready(a->service, st);
  }
  rp_error_free(j->err);
  free(j->path);
  free(j);
  /* A SIGHUP that came meanwhile: the file may have changed since. */
  if (a->reload_again && !a->stopping) {
    a->reload_again = false;
    reload(a);
  }
}

static void
reload(struct agent *a)
{
  if (a->reloading) {
    a->reload_again = true;
    return;
  }
  struct reload_job *j = rp_xcalloc(1, sizeof(*j));
  j->req.data = j;
  j->a = a;
  j->path = a->opt.config_path ? rp_xstrdup(a->opt.config_path) : NULL;
  j->check_trust = !a->opt.allow_insecure_config;
  a->reloading = true;
  rp_service_reloading(a->service);
  if (uv_queue_work(&a->loop, &j->req, reload_work_cb, reload_done_cb) != 0) {
    /* Never with a work callback given; on the loop all the same. */
    reload_work_cb(&j->req);
    reload_done_cb(&j->req, 0);
  }
}

/* --- start and stop ----------------------------------------------------- */

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* The members of agent.stop: its audit line and its notification. */
static json_t *
stop_fields(struct agent *a)
{
  const struct rp_recycler_stats *st = rp_recycler_stats(a->recycler);
  return json_pack("{s:i, s:I, s:I, s:I}", "exit_code", a->exit_code,
                   "recycled", (json_int_t)st->done, "failed",
                   (json_int_t)st->failed, "planned", (json_int_t)st->planned);
}

static void
provider_stopped_cb(void *arg)
{
  struct agent *a = arg;
  if (--a->providers_stopping > 0)
    return;
  if (a->notify) {
    /* The last notifications get a bounded moment to go out (the loop
     * runs until the notifier has closed). */
    cleanup_json json_t *f = stop_fields(a);
    rp_notify_event(a->notify, "agent.stop", f);
    rp_notify_close(a->notify);
    a->notify = NULL;
  }
  rp_schedule_close(a->schedule);
  a->schedule = NULL;
  rp_recycler_set_content(a->recycler, NULL, NULL, NULL);
  rp_content_free(a->content);
  a->content = NULL;
  a->http_sent_at_close = rp_http_sent(a->http);
  rp_http_close(a->http);
  rp_status_close(a->status);
  a->status = NULL;
  a->http = NULL;
  rp_service_close(a->service);
  a->service = NULL;
  uv_close((uv_handle_t *)&a->sig_term, NULL);
  uv_close((uv_handle_t *)&a->sig_int, NULL);
  uv_close((uv_handle_t *)&a->sig_hup, NULL);
  uv_close((uv_handle_t *)&a->sig_usr1, NULL);
  uv_close((uv_handle_t *)&a->resync_timer, NULL);
  uv_close((uv_handle_t *)&a->stop_timer, NULL);
  uv_close((uv_handle_t *)&a->retry_timer, NULL);
}

static void
stop_providers(void *arg)
{
  struct agent *a = arg;
  /* Reached once: when the recycler is idle, or when the stop's wait ran
   * out (and a recycle cancelled later must not stop them again). */
  if (a->providers_stopping_started)
    return;
  a->providers_stopping_started = true;
  uv_timer_stop(&a->stop_timer);
  a->providers_stopping = a->n_providers + 1;
  for (size_t i = 0; i < a->n_providers; i++) {
    struct rp_provider *p = &a->providers[i];
    if (p->ctx && p->ops->stop)
      p->ops->stop(p, provider_stopped_cb, a);
    else
      provider_stopped_cb(a);
  }
  provider_stopped_cb(a);
}

static void
stop_timeout_cb(uv_timer_t *t)
{
  struct agent *a = t->data;
  rp_warn("stop: %zu recycles still in flight after the wait; cancelling "
          "them",
          rp_recycler_in_flight(a->recycler));
  stop_providers(a);
}

static int64_t
stop_bound_ms(const struct rp_config *c)
{
  int64_t worst = 0;
  for (size_t i = 0; i < c->n_policies; i++) {
    const struct rp_policy *p = &c->policies[i];
    int64_t b = p->grace_ms + p->health_timeout_ms + p->drain_timeout_ms;
    if (b > worst)
      worst = b;
  }
  return worst + STOP_MARGIN_MS;
}

static void
stop_agent(struct agent *a, int exit_code)
{
  if (a->stopping)
    return;
  a->stopping = true;
  a->exit_code = exit_code;
  uv_timer_stop(&a->resync_timer);
  uv_timer_stop(&a->retry_timer);
  size_t busy = rp_recycler_in_flight(a->recycler);
  if (a->service) {
    /* The watchdog keeps pinging while recycles in flight finish. */
    cleanup_free char *st =
        rp_xasprintf("stopping: %zu recycles in flight", busy);
    rp_service_stopping(a->service, st);
  }
  if (busy) {
    rp_info("stopping: waiting for %zu recycles in flight", busy);
    a->stop_timer.data = a;
    uv_timer_start(&a->stop_timer, stop_timeout_cb,
                   (uint64_t)stop_bound_ms(a->config), 0);
  } else {
    uv_timer_stop(&a->stop_timer);
  }
  rp_recycler_drain(a->recycler, stop_providers, a);
}

/* SIGUSR1: one log line with the agent's vital figures, for people and for
 * the benchmark (tests/bench). */
static void
log_stats(struct agent *a)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long rss_kib = 0;
  cleanup_fclose FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %ld kB", &rss_kib) == 1)
      break;
  /* What malloc has handed out and not had back: unlike RSS, it falls when
   * memory is freed, so a growing figure here is a leak or an unbounded
   * structure, and RSS growing beside a flat one is the heap's
   * fragmentation. */
  long heap_kib = -1;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  struct mallinfo2 mi = mallinfo2();
  heap_kib = (long)((mi.uordblks + mi.hblkhd) / 1024);
#endif
  const struct rp_recycler_stats *st = rp_recycler_stats(a->recycler);
  rp_info("stats: workloads=%zu scheduled=%zu due=%zu in_flight=%zu "
          "recycled=%llu failed=%llu planned=%llu api_requests=%llu "
          "rss_kib=%ld cpu_user_ms=%lld cpu_sys_ms=%lld heap_kib=%ld",
          rp_tracker_count(a->tracker),
          a->schedule ? rp_schedule_count(a->schedule) : 0,
          rp_recycler_waiting(a->recycler), rp_recycler_in_flight(a->recycler),
          (unsigned long long)st->done, (unsigned long long)st->failed,
          (unsigned long long)st->planned,
          (unsigned long long)(a->http ? rp_http_sent(a->http)
                                       : a->http_sent_at_close),
          rss_kib,
          (long long)ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000,
          (long long)ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000,
          heap_kib);
}

static void
signal_cb(uv_signal_t *s, int signum)
{
  struct agent *a = s->data;
  if (signum == SIGUSR1) {
    log_stats(a);
    return;
  }
  if (signum == SIGHUP) {
    if (!a->stopping)
      reload(a);
    return;
  }
  if (a->stopping) {
    rp_warn("%s again: still waiting for recycles in flight",
            strsignal(signum));
    return;
  }
  rp_info("%s: finishing recycles in flight, then stopping", strsignal(signum));
  stop_agent(a, 0);
}

/* --- the status surface ------------------------------------------------ */

static json_t *
status_providers_cb(void *ctx)
{
  struct agent *a = ctx;
  json_t *arr = json_array();
  for (size_t i = 0; i < a->n_providers; i++) {
    struct rp_provider *p = &a->providers[i];
    json_t *o = json_pack("{s:s, s:s, s:b, s:b}", "name", p->name, "type",
                          p->ops ? p->ops->type : "?", "up", a->up[i],
                          "recovering", a->recovering[i]);
    if (!a->up[i])
      json_object_set_new(o, "reason",
                          json_string(a->down_reason[i] ? a->down_reason[i]
                                                        : "not connected yet"));
    if (p->ops && p->ops->describe && p->ctx) {
      json_t *d = p->ops->describe(p);
      if (d)
        json_object_update(o, d);
      json_decref(d);
    }
    json_array_append_new(arr, o);
  }
  return arr;
}

static bool
status_ready_cb(void *ctx)
{
  return ((struct agent *)ctx)->ready;
}

static uint64_t
status_api_cb(void *ctx)
{
  struct agent *a = ctx;
  return a->http ? rp_http_sent(a->http) : a->http_sent_at_close;
}

static const struct rp_config *
status_config_cb(void *ctx)
{
  return ((struct agent *)ctx)->config;
}

static json_t *
status_notifications_cb(void *ctx)
{
  struct agent *a = ctx;
  return a->notify ? rp_notify_stats(a->notify) : NULL;
}

/* Every recycle.* audit line, as it is written: to the status surface (its
 * metrics and recent recycles) and to the notifier. */
static void
audit_observed_cb(void *arg, const char *event, json_t *fields)
{
  struct agent *a = arg;
  rp_status_record(a->status, event, fields);
  rp_notify_event(a->notify, event, fields);
}

static int
start_status(struct agent *a, struct rp_error **err)
{
  const struct rp_config *c = a->config;
  if (a->opt.mode == RP_AGENT_PLAN || !c->listen || !c->listen[0])
    return 0;
  struct rp_status_source src = {
      .ctx = a,
      .tracker = a->tracker,
      .audit = a->audit,
      .providers = status_providers_cb,
      .ready = status_ready_cb,
      .api_requests = status_api_cb,
      .config = status_config_cb,
      .notifications = status_notifications_cb,
      .content = status_content_cb,
  };
  if (rp_status_start(&a->loop, c->listen, c->listen_names,
                      c->listen_token_file, &src, &a->status, err) != 0)
    return rp_error_prefix(err, "%s: agent.listen", c->path);
  rp_info("status, metrics and health on http://%s/ (port %d)", c->listen,
          rp_status_port(a->status));
  return 0;
}

static int
start_providers(struct agent *a, struct rp_error **err)
{
  const struct rp_config *c = a->config;
  a->n_providers = c->n_providers;
  a->providers = rp_xcalloc(c->n_providers, sizeof(*a->providers));
  a->listed = rp_xcalloc(c->n_providers, sizeof(bool));
  a->up = rp_xcalloc(c->n_providers, sizeof(bool));
  a->down_reason = rp_xcalloc(c->n_providers, sizeof(char *));
  a->recovering = rp_xcalloc(c->n_providers, sizeof(bool));
  a->recovery_waits = rp_xcalloc(c->n_providers, sizeof(bool));
  a->relabel = rp_xcalloc(c->n_providers, sizeof(int));
  a->label_keys = rp_label_keys_of(c);
  for (size_t i = 0; i < c->n_providers; i++) {
    struct rp_provider *p = &a->providers[i];
    const struct rp_provider_config *pc = &c->providers[i];
    p->ops = rp_provider_lookup(pc->type);
    p->cfg = pc;
    p->name = rp_xstrdup(pc->name);
    p->loop = &a->loop;
    p->http = a->http;
    p->label_keys = a->label_keys;
    p->hooks = (struct rp_provider_hooks){
        .core = a,
        .listed = hook_listed,
        .upsert = hook_upsert,
        .removed = hook_removed,
        .state = hook_state,
    };
    if (!p->ops || !p->ops->init || !p->ops->start)
      return rp_error_set(err, RP_ECONFIG,
                          "%s:%d:%d: provider %s: type %s is not available "
                          "in this build yet",
                          c->path, pc->mark.line, pc->mark.col, pc->name,
                          pc->type);
    if (p->ops->init(p, err) != 0)
      return rp_error_prefix(err, "provider %s", pc->name);
    a->recovering[i] = recovers(p) && a->opt.mode != RP_AGENT_PLAN;
  }
  for (size_t i = 0; i < a->n_providers; i++) {
    struct rp_provider *p = &a->providers[i];
    if (p->ops->start(p, err) != 0)
      return rp_error_prefix(err, "provider %s", p->name);
  }
  return 0;
}

static void
agent_free(struct agent *a)
{
  for (size_t i = 0; i < a->n_providers; i++) {
    struct rp_provider *p = &a->providers[i];
    if (p->ctx && p->ops->destroy)
      p->ops->destroy(p);
    free(p->name);
    free(a->down_reason[i]);
  }
  free(a->providers);
  free(a->listed);
  free(a->up);
  free(a->down_reason);
  free(a->recovering);
  free(a->recovery_waits);
  free(a->relabel);
  rp_label_keys_free(a->label_keys);
  if (a->unfinished)
    json_decref(a->unfinished);
  if (a->image_lines)
    json_decref(a->image_lines);
  rp_content_free(a->content);
  rp_recycler_free(a->recycler);
  rp_tracker_free(a->tracker);
  json_decref(a->warned);
  rp_audit_close(a->audit);
  if (a->provider_config != a->config)
    rp_config_free(a->provider_config);
  rp_config_free(a->config);
  free(a->fatal);
}

int
rp_agent_run(struct rp_config *config, const struct rp_agent_options *opt,
             struct rp_error **err)
{
  struct agent a_storage = {0}, *a = &a_storage;
  a->opt = *opt;
  a->config = config;
  bool dry_run = opt->dry_run || config->dry_run;
  int rc = 1;
  cleanup_json json_t *start_fields = NULL;

  if (opt->mode != RP_AGENT_PLAN) {
    cleanup_free char *warning = NULL;
    struct rp_audit_options aopt = {
        .signing_key = config->audit_signing_key,
        .checkpoint_every = (uint64_t)config->audit_checkpoint_every,
        .rotate_size = (uint64_t)config->audit_rotate_size,
        .rotate_daily = config->audit_rotate_daily,
        .syslog_path = config->audit_syslog ? RP_AUDIT_SYSLOG_PATH : NULL,
    };
    if (rp_audit_open_opts(config->audit_log, &aopt, &a->audit, &warning,
                           err) != 0) {
      rp_error_prefix(err, "audit log");
      rp_config_free(config);
      return 1;
    }
    if (warning)
      rp_warn("audit log %s: %s", config->audit_log, warning);
    if (rp_recovery_scan_images(config->audit_log, &a->unfinished,
                                &a->image_lines, err) != 0) {
      agent_free(a);
      return 1;
    }
    start_fields = json_pack("{s:s, s:s, s:s, s:b, s:i}", "version",
                             REAPER_VERSION, "config", config->path, "mode",
                             opt->mode == RP_AGENT_ONCE ? "once" : "run",
                             "dry_run", dry_run, "pid", (int)getpid());
    if (rp_audit_append_sync(a->audit, "agent.start", start_fields, err) != 0) {
      rp_error_prefix(err, "audit log");
      agent_free(a);
      return 1;
    }
  }

  if (opt->mode == RP_AGENT_PLAN) {
    /* plan writes nothing, but shows what the log says of images (first
     * seen, quarantines): read, never opened for writing. */
    cleanup_json json_t *unused = NULL;
    cleanup_error struct rp_error *perr = NULL;
    if (rp_recovery_scan_images(config->audit_log, &unused, &a->image_lines,
                                &perr) != 0)
      rp_debug("plan: the audit log is not read: %s", perr->message);
  }

  uv_loop_init(&a->loop);
  a->tracker = rp_tracker_new();
  a->warned = json_object();
  a->schedule = rp_schedule_new(&a->loop, due_cb, a);
  a->recycler =
      rp_recycler_new(&a->loop, a->audit, a->tracker, a->schedule, dry_run);
  rp_recycler_set_config(a->recycler, config);
  rp_recycler_on_change(a->recycler, recycler_change_cb, a);
  rp_recycler_set_gate(a->recycler, gate_cb, a);
  rp_recycler_on_unsettled(a->recycler, unsettled_cb, a);
  rp_recycler_on_audit(a->recycler, audit_observed_cb, a);
  if (opt->mode != RP_AGENT_PLAN) {
    a->notify = rp_notify_new(&a->loop, config, dry_run);
    rp_notify_event(a->notify, "agent.start", start_fields);
    a->service = rp_service_new(&a->loop);
  }
  uv_timer_init(&a->loop, &a->resync_timer);
  uv_timer_init(&a->loop, &a->stop_timer);
  uv_timer_init(&a->loop, &a->retry_timer);
  a->resync_timer.data = a->stop_timer.data = a->retry_timer.data = a;
  uv_signal_init(&a->loop, &a->sig_term);
  uv_signal_init(&a->loop, &a->sig_int);
  uv_signal_init(&a->loop, &a->sig_hup);
  uv_signal_init(&a->loop, &a->sig_usr1);
  a->sig_term.data = a->sig_int.data = a->sig_hup.data = a->sig_usr1.data = a;
  uv_signal_start(&a->sig_term, signal_cb, SIGTERM);
  uv_signal_start(&a->sig_int, signal_cb, SIGINT);
  uv_signal_start(&a->sig_hup, signal_cb, SIGHUP);
  uv_signal_start(&a->sig_usr1, signal_cb, SIGUSR1);
  signal(SIGPIPE, SIG_IGN);
  /* A write past the file size limit fails with EFBIG, as a full disk
   * fails it, instead of killing the agent: the audit log fails closed. */
  signal(SIGXFSZ, SIG_IGN);

  if (rp_http_new(&a->loop, &a->http, err) != 0 || start_content(a) != 0 ||
      start_status(a, err) != 0 || start_providers(a, err) != 0) {
    stop_agent(a, 1);
  } else {
    uv_timer_start(&a->resync_timer, watch_audit_cb,
                   (uint64_t)config->resync_ms, (uint64_t)config->resync_ms);
    if (opt->mode != RP_AGENT_PLAN)
      rp_info("reaper %s: %zu providers, %zu policies, audit log %s%s",
              REAPER_VERSION, a->n_providers, config->n_policies,
              config->audit_log, dry_run ? ", dry run" : "");
    /* Ready: the configuration, the audit log and the listener are up and
     * the providers started; engines that are not reachable yet are
     * retried, and STATUS= says which are up. */
    if (a->service) {
      cleanup_free char *st = service_status(a);
      rp_service_ready(a->service, st);
    }
  }
  uv_run(&a->loop, UV_RUN_DEFAULT);
  rc = a->exit_code;
  if (opt->mode != RP_AGENT_PLAN)
    log_stats(a);
  if (a->fatal && err && !*err)
    rp_error_set(err, EIO, "%s", a->fatal);

  if (a->audit && rp_audit_healthy(a->audit)) {
    cleanup_json json_t *f = stop_fields(a);
    cleanup_error struct rp_error *aerr = NULL;
    if (rp_audit_append_sync(a->audit, "agent.stop", f, &aerr) != 0 ||
        rp_audit_seal_sync(a->audit, &aerr) != 0)
      rp_err("audit: could not write agent.stop and its checkpoint: %s",
             aerr->message);
  }
  /* Anything still open (it should not be) is closed so the loop can go. */
  uv_walk(&a->loop, close_walk_cb, NULL);
  uv_run(&a->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&a->loop) != 0)
    rp_warn("event loop closed with handles still open");
  agent_free(a);
  return rc;
}
