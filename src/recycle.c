#include "recycle.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "child.h"
#include "content.h"
#include "freshness.h"
#include "image_ref.h"
#include "log.h"
#include "policy.h"
#include "runner.h"
#include "strv.h"
#include "util.h"

/* The verify gate's output kept for the audit line. */
#define GATE_OUTPUT_MAX 4096

/* A failed recycle is retried after 15 s, then 30 s, 1 min... at most every
 * 15 min: a broken workload is not hammered, and is not forgotten. */
#define RETRY_BASE_MS 15000
#define RETRY_MAX_MS (15 * 60 * 1000)

/* One recycle in flight. */
struct op {
  struct rp_recycler *r; /* borrowed */
  struct rp_entry *e;    /* borrowed from the tracker, or owned once gone */
  char *policy;          /* owned copy: the config may be reloaded */
  json_t *base;          /* owned: the members every line of it carries */
  char **drain;          /* owned argv or NULL */
  char **replace;        /* owned argv copy or NULL */
  int64_t begin_mono_ms;
  int64_t started_ms; /* the start of the life this recycle ends */
  json_t *begin;      /* owned: what recycle.begin says, until it is sent */
  /* Fresh content: what it runs, and (moves) the newer digest the
   * replacement is made from.  Owned copies; NULL when not known. */
  bool moves;
  bool keeps; /* it runs o->digest of its reference: made from that again */
  char *content_key;
  char *image_ref; /* the reference as the workload was created */
  char *digest, *platform_digest;
  char *new_digest, *new_platform_digest;
  int64_t birth_ms;
  struct rp_child *gate; /* the verify gate in flight, or NULL */
  /* Another recycle's gate is running on the same digest: this one waits
   * for its verdict (the gate runs once per digest). */
  bool awaits_gate;
  /* Owned: the entry's last refusal, taken while this recycle runs: given
   * back if it is refused too (a reason already said is not said again),
   * dropped if it went past its preparation (a later refusal is news). */
  char *refused;
  /* The replacement, once a step line named it: owned, NULL until then.
   * The engine lists it beside the old workload while the recycle goes,
   * and the budget must not count one workload twice. */
  char *replacement_id;
  struct op *next;
};

struct rp_recycler {
  uv_loop_t *loop;                /* borrowed */
  struct rp_audit *audit;         /* borrowed */
  struct rp_tracker *tracker;     /* borrowed */
  struct rp_schedule *schedule;   /* borrowed */
  const struct rp_config *config; /* borrowed, the live one */
  bool dry_run;
  bool draining;
  bool pumping, pump_again; /* pump is not re-entered from a callback */
  struct rp_entry **due;    /* owned array, entries borrowed */
  size_t n_due, cap_due;
  struct op *ops; /* owned list of recycles in flight */
  size_t n_ops;
  size_t n_recovering; /* crash recoveries run by the core, in flight */
  struct rp_recycler_stats stats;
  void (*idle_cb)(void *arg);
  void *idle_arg;
  void (*change_cb)(void *arg);
  void *change_arg;
  bool (*gate)(void *arg, const struct rp_entry *e);
  void *gate_arg;
  void (*unsettled_cb)(void *arg, struct rp_entry *e, json_t *begin);
  void *unsettled_arg;
  void (*audit_cb)(void *arg, const char *event, json_t *fields);
  void *audit_arg;
  struct rp_content *content; /* borrowed, may be NULL */
  void (*redecide)(void *arg, struct rp_entry *e);
  void *redecide_arg;
};

void
rp_recycler_set_content(struct rp_recycler *r, struct rp_content *c,
                        void (*redecide)(void *arg, struct rp_entry *e),
                        void *arg)
{
  r->content = c;
  r->redecide = redecide;
  r->redecide_arg = arg;
}

void
rp_recycler_on_audit(struct rp_recycler *r,
                     void (*cb)(void *arg, const char *event, json_t *fields),
                     void *arg)
{
  r->audit_cb = cb;
  r->audit_arg = arg;
}

/* Every recycle.* line goes through here: to the log, and to whoever
 * watches (metrics, the status page). */
static int
append(struct rp_recycler *r, const char *event, json_t *fields, rp_audit_cb cb,
       void *arg)
{
  if (r->audit_cb)
    r->audit_cb(r->audit_arg, event, fields);
  return rp_audit_append(r->audit, r->loop, event, fields, cb, arg);
}

void
rp_recycler_on_unsettled(struct rp_recycler *r,
                         void (*cb)(void *arg, struct rp_entry *e,
                                    json_t *begin),
                         void *arg)
{
  r->unsettled_cb = cb;
  r->unsettled_arg = arg;
}

void
rp_recycler_set_gate(struct rp_recycler *r,
                     bool (*gate)(void *arg, const struct rp_entry *e),
                     void *arg)
{
  r->gate = gate;
  r->gate_arg = arg;
}

static void audit_logged_cb(void *arg, struct rp_error *err);

struct rp_recycler *
rp_recycler_new(uv_loop_t *loop, struct rp_audit *audit,
                struct rp_tracker *tracker, struct rp_schedule *schedule,
                bool dry_run)
{
  struct rp_recycler *r = rp_xcalloc(1, sizeof(*r));
  r->loop = loop;
  r->audit = audit;
  r->tracker = tracker;
  r->schedule = schedule;
  r->dry_run = dry_run;
  return r;
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

static char **
argv_dup(char *const *argv)
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
op_free(struct op *o)
{
  if (!o)
    return;
  free(o->policy);
  free(o->refused);
  free(o->replacement_id);
  if (o->base)
    json_decref(o->base);
  argv_free(o->drain);
  argv_free(o->replace);
  if (o->begin)
    json_decref(o->begin);
  free(o->content_key);
  free(o->image_ref);
  free(o->digest);
  free(o->platform_digest);
  free(o->new_digest);
  free(o->new_platform_digest);
  free(o);
}

void
rp_recycler_free(struct rp_recycler *r)
{
  if (!r)
    return;
  /* Recycles still in flight at this point were cancelled by their
   * providers' stop; only entries that were already gone are ours. */
  struct op *o = r->ops;
  while (o) {
    struct op *next = o->next;
    if (o->e->gone)
      rp_entry_free(o->e);
    op_free(o);
    o = next;
  }
  free(r->due);
  free(r);
}

void
rp_recycler_set_config(struct rp_recycler *r, const struct rp_config *config)
{
  r->config = config;
}

void
rp_recycler_on_change(struct rp_recycler *r, void (*cb)(void *arg), void *arg)
{
  r->change_cb = cb;
  r->change_arg = arg;
}

enum rp_strategy
rp_recycle_strategy(const struct rp_policy *p, const struct rp_entry *e)
{
  if (p->strategy_set)
    return p->strategy;
  if (e->provider->ops->default_strategy)
    return e->provider->ops->default_strategy(e->w->kind);
  return RP_STRATEGY_RECREATE;
}

json_t *
rp_recycle_audit_fields(const struct rp_entry *e, int64_t now_ms)
{
  char started[40];
  rp_format_time_ms(e->w->started_ms, started, sizeof(started));
  const struct rp_policy *p = e->d.policy;
  json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:I, s:I}", "provider",
                        e->w->provider, "kind", rp_kind_name(e->w->kind), "id",
                        e->w->id, "name", e->w->name, "policy",
                        p ? p->name : NULL, "started_at", started, "age_s",
                        (json_int_t)((now_ms - e->w->started_ms) / 1000),
                        "max_age_s", (json_int_t)(e->d.max_age_ms / 1000));
  if (e->w->service)
    json_object_set_new(f, "service", json_string(e->w->service));
  json_object_set_new(f, "reason",
                      json_string(rp_due_reason_name(e->d.due_reason)));
  /* The reference, as docker normalizes it (the report matches it with
   * image.seen's). */
  const char *ref = e->w->image.ref;
  if (e->content.reference) {
    json_object_set_new(f, "image", json_string(e->content.reference));
  } else if (ref && strncmp(ref, "sha256:", 7) != 0) {
    struct rp_image_ref parsed = {0};
    cleanup_error struct rp_error *err = NULL;
    if (rp_image_ref_parse(ref, &parsed, &err) == 0) {
      cleanup_free char *canon = rp_image_ref_format(&parsed);
      json_object_set_new(f, "image", json_string(canon));
      rp_image_ref_clear(&parsed);
    }
  }
  return f;
}

static void
notify_change(struct rp_recycler *r)
{
  if (r->change_cb)
    r->change_cb(r->change_arg);
  if (r->idle_cb && r->n_ops == 0 && r->n_recovering == 0) {
    void (*cb)(void *) = r->idle_cb;
    r->idle_cb = NULL;
    cb(r->idle_arg);
  }
}

static void
due_remove(struct rp_recycler *r, struct rp_entry *e)
{
  for (size_t i = 0; i < r->n_due; i++) {
    if (r->due[i] == e) {
      memmove(&r->due[i], &r->due[i + 1], (r->n_due - i - 1) * sizeof(e));
      r->n_due--;
      return;
    }
  }
}

/* After a failure: back to the schedule, later each time. */
static void
retry_later(struct rp_recycler *r, struct rp_entry *e)
{
  int64_t delay = RETRY_BASE_MS;
  for (int i = 1; i < e->failures && delay < RETRY_MAX_MS; i++)
    delay *= 2;
  if (delay > RETRY_MAX_MS)
    delay = RETRY_MAX_MS;
  e->state = RP_ENTRY_WAITING;
  e->retry_ms = rp_wall_ms() + delay;
  e->due_ms = e->retry_ms;
  rp_schedule_set(r->schedule, e);
}

/* The workload started anew while its recycle was going (a restart did it,
 * or someone else): that new life has its own deadline, already decided. */
static void
new_life(struct rp_recycler *r, struct rp_entry *e)
{
  e->failures = 0;
  e->retry_ms = 0;
  if (!e->d.policy || e->d.excluded) {
    e->state = RP_ENTRY_IDLE;
    return;
  }
  e->state = RP_ENTRY_WAITING;
  e->due_ms = e->d.due_ms;
  rp_schedule_set(r->schedule, e);
}

static void
audit_logged_cb(void *arg, struct rp_error *err)
{
  const char *what = arg;
  if (err)
    rp_err("audit: could not write %s: %s", what, err->message);
}

/* Nothing was done, and why: recycle.refused once per reason (the entry
 * remembers the last one), then the entry waits long before it is looked at
 * again (a refusal is not a failure to retry every few seconds; the reason
 * may go away meanwhile: a dependency removed, an image allowed). */
static void
refused(struct rp_recycler *r, struct rp_entry *e, json_t *base,
        const char *reason, const char *by, json_t *extra)
{
  if (!e->refused || strcmp(e->refused, reason) != 0) {
    cleanup_json json_t *f = json_deep_copy(base);
    /* "reason" is why it was due (every recycle line has it); the words
     * of the refusal are its detail. */
    json_object_set_new(f, "detail", json_string(reason));
    json_object_set_new(f, "refused_by", json_string(by));
    if (extra)
      json_object_update(f, extra);
    rp_log(RP_LOG_WARN, "not recycling %s %s (%s): %s",
           rp_kind_name(e->w->kind), e->w->name, e->w->id, reason);
    append(r, "recycle.refused", f, audit_logged_cb,
           (void *)(uintptr_t) "recycle.refused");
    free(e->refused);
    e->refused = rp_xstrdup(reason);
    r->stats.refused++;
  }
  if (e->gone || r->draining) {
    e->state = RP_ENTRY_WAITING;
    return;
  }
  e->state = RP_ENTRY_WAITING;
  e->retry_ms = rp_wall_ms() + RETRY_MAX_MS;
  e->due_ms = e->retry_ms;
  rp_schedule_set(r->schedule, e);
}

static void
finish(struct rp_recycler *r, struct op *o)
{
  for (struct op **pp = &r->ops; *pp; pp = &(*pp)->next) {
    if (*pp == o) {
      *pp = o->next;
      break;
    }
  }
  r->n_ops--;
  if (o->e->gone)
    rp_entry_free(o->e);
  op_free(o);
  rp_recycler_pump(r);
  notify_change(r);
}

/* Whether a failed step is the new content's own failure (it did not
 * start, become healthy or stay up), not one on the way (a pull, a
 * rename, a create refused for its configuration). */
static bool
content_failure(const char *step)
{
  /* (settled: a service's update, which its engine failed or rolled
   * back) */
  return step && (strcmp(step, "start-new") == 0 ||
                  strcmp(step, "ready") == 0 || strcmp(step, "survive") == 0 ||
                  strcmp(step, "start") == 0 || strcmp(step, "settled") == 0);
}

static void decide_again(struct rp_recycler *r, struct rp_entry *e);

static void
recycle_cb(void *arg, int status, const struct rp_recycle_result *res,
           const struct rp_error *err)
{
  struct op *o = arg;
  struct rp_recycler *r = o->r;
  struct rp_entry *e = o->e;
  double secs = (double)(rp_mono_ms() - o->begin_mono_ms) / 1000.0;
  cleanup_json json_t *f = json_deep_copy(o->base);
  /* The names of the life that was recycled (the tracker may already know
   * the workload by another: renamed NAME-reaper-old, say). */
  const char *name = json_string_value(json_object_get(o->base, "name"));
  bool restarted = !e->gone && e->w->started_ms != o->started_ms;
  const char *event;
  if (status != 0 && err && err->code == RP_EREFUSED) {
    free(e->refused);
    e->refused = RP_STEAL(o->refused);
    refused(r, e, o->base, err->message, "provider", NULL);
    if (restarted && !r->draining)
      new_life(r, e);
    finish(r, o);
    return;
  }
  if (status == 0) {
    event = "recycle.done";
    json_object_set_new(f, "replacement_id",
                        res && res->replacement_id
                            ? json_string(res->replacement_id)
                            : json_null());
    json_object_set_new(f, "duration_s", json_real(round(secs * 1000) / 1000));
    if (res && res->ready_mono_ms > 0) {
      double ready = (double)(res->ready_mono_ms - o->begin_mono_ms) / 1000.0;
      json_object_set_new(f, "ready_s", json_real(round(ready * 1000) / 1000));
    }
    r->stats.done++;
    e->failures = 0;
    e->retry_ms = 0;
    e->handled_start_ms = o->started_ms;
    e->state = RP_ENTRY_IDLE;
    /* What the replacement runs, and ran before (manifest digests, as
     * RepoDigests lists them), and how old the old content was. */
    const char *now_runs = o->moves ? o->new_digest : o->digest;
    json_object_set_new(f, "image_digest",
                        now_runs ? json_string(now_runs) : json_null());
    json_object_set_new(f, "previous_image_digest",
                        o->digest ? json_string(o->digest) : json_null());
    if (o->birth_ms > 0)
      json_object_set_new(
          f, "content_age_s",
          json_integer((json_int_t)((rp_wall_ms() - o->birth_ms) / 1000)));
    rp_log(RP_LOG_INFO, "recycled %s %s (%s) in %.1fs%s%s",
           rp_kind_name(e->w->kind), name, o->e->w->id, secs,
           res && res->replacement_id ? ", replacement " : "",
           res && res->replacement_id ? res->replacement_id : "");
  } else {
    event = "recycle.failed";
    bool rolled_back = res ? res->rolled_back : false;
    json_object_set_new(
        f, "error",
        json_string(err && err->message ? err->message : "unknown error"));
    json_object_set_new(f, "rolled_back", json_boolean(rolled_back));
    json_object_set_new(f, "duration_s", json_real(round(secs * 1000) / 1000));
    if (o->moves)
      json_object_set_new(f, "image_digest", json_string(o->new_digest));
    r->stats.failed++;
    if (rolled_back)
      r->stats.rolled_back++;
    e->failures++;
    rp_log(RP_LOG_ERROR, "recycle of %s %s (%s) failed%s: %s",
           rp_kind_name(e->w->kind), name, e->w->id,
           rolled_back ? " and was rolled back" : "",
           err && err->message ? err->message : "unknown error");
  }
  if (res && res->details) {
    const char *k;
    json_t *v;
    json_object_foreach(res->details, k, v)
    {
      if (!json_object_get(f, k))
        json_object_set(f, k, v);
    }
  }
  append(r, event, f, audit_logged_cb, (void *)(uintptr_t)event);
  bool content_failed = status != 0 && o->moves && res && res->rolled_back &&
                        content_failure(res->failed_step);
  if (status != 0 && !(res && res->rolled_back) && r->unsettled_cb) {
    /* What recovery goes by: the steps taken, and the order. */
    cleanup_json json_t *begin = json_deep_copy(o->base);
    if (res && res->steps)
      json_object_set_new(begin, "steps", json_deep_copy(res->steps));
    json_t *order =
        res && res->details ? json_object_get(res->details, "order") : NULL;
    if (order)
      json_object_set(begin, "order", order);
    r->unsettled_cb(r->unsettled_arg, e, begin);
  }
  if (restarted && !r->draining)
    new_life(r, e);
  else if (status != 0 && !e->gone && !r->draining)
    retry_later(r, e);
  else if (status != 0)
    e->state = RP_ENTRY_WAITING;
  if (content_failed && r->content) {
    /* The new content did not start, or not become healthy, or not stay
     * up: one failure of that digest (a quarantine at max_failures). */
    const struct rp_policy *p =
        r->config ? rp_config_policy(r->config, o->policy) : NULL;
    rp_content_rollout_failed(r->content, o->content_key, p, o->new_digest,
                              o->new_platform_digest,
                              err && err->message ? err->message : "failed");
    if (!r->draining && e->state == RP_ENTRY_WAITING)
      decide_again(r, e);
  }
  finish(r, o);
}

/* The recycle in flight of (provider, id), or NULL. */
static struct op *
op_of(const struct rp_recycler *r, const char *provider, const char *id)
{
  for (struct op *o = r->ops; o && provider && id; o = o->next)
    if (strcmp(o->e->w->id, id) == 0 &&
        strcmp(o->e->w->provider, provider) == 0)
      return o;
  return NULL;
}

/* The runner's audit lines go the way of every recycle.* line; the
 * replacement a step line names is remembered for the budget.  The op is
 * found by the line's own members: it may be gone by the time the runner's
 * last line is written. */
static int
runner_append(void *ctx, const char *event, json_t *fields, rp_audit_cb cb,
              void *arg)
{
  struct rp_recycler *r = ctx;
  const char *replacement =
      json_string_value(json_object_get(fields, "replacement_id"));
  struct op *o =
      replacement
          ? op_of(r, json_string_value(json_object_get(fields, "provider")),
                  json_string_value(json_object_get(fields, "id")))
          : NULL;
  if (o && (!o->replacement_id || strcmp(o->replacement_id, replacement))) {
    free(o->replacement_id);
    o->replacement_id = rp_xstrdup(replacement);
  }
  return append(r, event, fields, cb, arg);
}

/* What the policy asks of this recycle (pointers into o and the policy). */
static struct rp_recycle_spec
spec_of(const struct op *o)
{
  const struct rp_entry *e = o->e;
  const struct rp_policy *p = e->d.policy;
  return (struct rp_recycle_spec){
      .strategy = rp_recycle_strategy(p, e),
      .order = p->order,
      .grace_ms = p->grace_ms,
      .health_timeout_ms = p->health_timeout_ms,
      .survive_ms = p->survive_ms,
      .drain_argv = (const char *const *)o->drain,
      .drain_timeout_ms = p->drain_timeout_ms,
      .policy = o->policy,
      .replace_argv = (const char *const *)o->replace,
  };
}

static void
planned_cb(void *arg, struct rp_error *err)
{
  (void)arg;
  if (err)
    rp_err("audit: could not write recycle.planned: %s", err->message);
}

/* The runner (or the provider's own recycle) takes it from here: the
 * begin line is o->begin. */
static void
launch(struct rp_recycler *r, struct op *o)
{
  struct rp_entry *e = o->e;
  cleanup_json json_t *begin = o->begin;
  o->begin = NULL;
  /* The runner reads first (the provider's preparation, which may refuse),
   * then writes recycle.begin, then acts. */
  struct rp_runner_env env = {
      .loop = r->loop, .append = runner_append, .ctx = r};
  struct rp_recycle_spec spec = spec_of(o);
  if (r->content && (o->moves || o->keeps)) {
    /* Into the new digest; or back into the one it runs, by its name:
     * another recycle's pull may have moved the name on this engine (to a
     * digest since quarantined, say), and the replacement must run the same
     * content and still be made from its reference. */
    spec.image_ref = o->image_ref;
    spec.image_digest = o->moves ? o->new_digest : o->digest;
    spec.image_cred = rp_content_cred(r->content, o->image_ref);
  }
  cleanup_error struct rp_error *perr = NULL;
  if (rp_runner_start(&env, e->provider, e->w, &spec, o->base, begin,
                      recycle_cb, o, &perr) != 0) {
    struct rp_recycle_result res = {.rolled_back = true};
    recycle_cb(o, -1, &res, perr);
  }
}

/* The entry is decided again by its owner (or, without one, waits for
 * its next deadline as it was). */
static void
decide_again(struct rp_recycler *r, struct rp_entry *e)
{
  if (e->gone)
    return;
  if (e->state == RP_ENTRY_DUE || e->state == RP_ENTRY_RECYCLING)
    e->state = RP_ENTRY_WAITING;
  if (r->redecide)
    r->redecide(r->redecide_arg, e);
}

/* It was due for its content (update, image_age), and what made it due went
 * away since it was decided: the new digest was quarantined (said, as
 * nothing is done), refused by the verify gate (said when the gate ran), or
 * replaced by another.  Decided again: its other deadlines stand. */
static void
content_gone(struct rp_recycler *r, struct rp_entry *e, json_t *base)
{
  const struct rp_content_view *cv = &e->content;
  if (cv->fr.newer == RP_NEWER_QUARANTINED && cv->newer_digest) {
    cleanup_free char *why =
        rp_xasprintf("its tag's new digest %s is quarantined (replacements "
                     "into it failed): it keeps its content",
                     cv->newer_digest);
    cleanup_json json_t *extra = json_pack("{s:s}", "digest", cv->newer_digest);
    refused(r, e, base, why, "quarantine", extra);
  }
  decide_again(r, e);
}

/* The gate's verdict (passed, in words: how) for one recycle waiting on it:
 * it goes on, or is refused, nothing done. */
static void
gate_verdict(struct op *o, const struct rp_child_result *res, bool passed,
             const char *how)
{
  struct rp_recycler *r = o->r;
  struct rp_entry *e = o->e;
  const struct rp_policy *p =
      r->config ? rp_config_policy(r->config, o->policy) : NULL;
  if (res->killed || e->gone || r->draining || !p) {
    /* Stopping, or the workload went: nothing done. */
    if (!e->gone) {
      e->state = RP_ENTRY_WAITING;
      free(e->refused);
      e->refused = RP_STEAL(o->refused);
    }
    r->stats.started--;
    finish(r, o);
    return;
  }
  if (passed) {
    launch(r, o);
    return;
  }
  cleanup_free char *why =
      rp_xasprintf("the verify gate refused %s (%s)", o->new_digest, how);
  cleanup_json json_t *extra = json_pack(
      "{s:s, s:s, s:s, s:o}", "digest", o->new_digest, "gate", how, "output",
      res->output ? res->output : "", "gate_argv", rp_strv_to_json(p->verify));
  if (res->spawn_error == 0 && !res->timed_out && res->term_signal == 0)
    json_object_set_new(extra, "exit_status", json_integer(res->exit_code));
  else
    json_object_set_new(extra, "exit_status", json_null());
  if (res->truncated)
    json_object_set_new(extra, "output_truncated", json_true());
  free(e->refused);
  e->refused = RP_STEAL(o->refused);
  refused(r, e, o->base, why, "verify", extra);
  r->stats.started--;
  decide_again(r, e);
  finish(r, o);
}

/* The verify gate's verdict on the digest o moves to: for o, and for the
 * recycles that waited on it. */
static void
gate_done_cb(void *arg, const struct rp_child_result *res)
{
  struct op *o = arg;
  struct rp_recycler *r = o->r;
  o->gate = NULL;
  const struct rp_policy *p =
      r->config ? rp_config_policy(r->config, o->policy) : NULL;
  bool passed = res->spawn_error == 0 && !res->timed_out && !res->killed &&
                res->term_signal == 0 && res->exit_code == 0;
  char how[160];
  rp_child_describe(res, p ? p->verify_timeout_ms : 0, how, sizeof(how));
  if (!res->killed && p && r->content) {
    rp_content_set_verdict(r->content, o->content_key, p->verify, o->new_digest,
                           passed);
    if (passed)
      rp_info("verify gate: %s@%s passed (%s)", o->image_ref, o->new_digest,
              how);
    else
      rp_warn("verify gate: %s@%s refused (%s): workloads keep their content",
              o->image_ref, o->new_digest, how);
  }
  /* Those waiting first gathered: finishing one changes the list. */
  size_t n = 0;
  for (struct op *w = r->ops; w; w = w->next)
    n += w->awaits_gate;
  cleanup_free struct op **waiting = rp_xcalloc(n + 1, sizeof(*waiting));
  size_t k = 0;
  for (struct op *w = r->ops; w; w = w->next)
    if (w->awaits_gate && strcmp(w->new_digest, o->new_digest) == 0 &&
        strcmp(w->policy, o->policy) == 0) {
      w->awaits_gate = false;
      waiting[k++] = w;
    }
  gate_verdict(o, res, passed, how);
  for (size_t i = 0; i < k; i++)
    gate_verdict(waiting[i], res, passed, how);
}

/* A gate running on digest for policy, other than o's. */
static bool
gate_running(const struct rp_recycler *r, const struct op *o)
{
  for (const struct op *x = r->ops; x; x = x->next)
    if (x != o && x->gate && strcmp(x->new_digest, o->new_digest) == 0 &&
        strcmp(x->policy, o->policy) == 0)
      return true;
  return false;
}

/* Runs the policy's verify gate on o's new digest: argv, no shell, the
 * digest in its environment. */
static int
gate_start(struct rp_recycler *r, struct op *o, const struct rp_policy *p)
{
  struct rp_entry *e = o->e;
  cleanup_free char *name = NULL;
  struct rp_image_ref parsed = {0};
  cleanup_error struct rp_error *err = NULL;
  const char *canon = e->content.reference;
  if (canon && rp_image_ref_parse(canon, &parsed, &err) == 0) {
    name = rp_image_ref_name(&parsed);
    rp_image_ref_clear(&parsed);
  }
  cleanup_free char *e_ref =
      rp_xasprintf("REAPER_IMAGE=%s", canon ? canon : "");
  cleanup_free char *e_name =
      rp_xasprintf("REAPER_IMAGE_NAME=%s", name ? name : "");
  cleanup_free char *e_dig =
      rp_xasprintf("REAPER_IMAGE_DIGEST=%s", o->new_digest);
  cleanup_free char *e_pd =
      rp_xasprintf("REAPER_IMAGE_PLATFORM_DIGEST=%s",
                   o->new_platform_digest ? o->new_platform_digest : "");
  cleanup_free char *e_w = rp_xasprintf("REAPER_WORKLOAD=%s", e->w->name);
  cleanup_free char *e_p = rp_xasprintf("REAPER_POLICY=%s", p->name);
  char *env[] = {e_ref, e_name, e_dig, e_pd, e_w, e_p, NULL};
  struct rp_child_options co = {
      .argv = p->verify,
      .env = env,
      .timeout_ms = p->verify_timeout_ms,
      .max_output = GATE_OUTPUT_MAX,
  };
  rp_info("verify gate: %s@%.19s, before %s moves to it", canon ? canon : "?",
          o->new_digest, e->w->name);
  if (rp_child_run(r->loop, &co, gate_done_cb, o, &o->gate, &err) != 0) {
    rp_err("verify gate: cannot run: %s", err->message);
    return -1;
  }
  return 0;
}

static void
start(struct rp_recycler *r, struct rp_entry *e, int64_t now)
{
  const struct rp_policy *p = e->d.policy;
  /* What it runs and may run, as of now (a verdict or a quarantine may
   * have come since it was decided); it is recycled for the reason it was
   * found due. */
  enum rp_due_reason reason = e->offered_for;
  if (r->content)
    rp_content_judge(r->content, e, now);
  bool for_content = reason == RP_DUE_UPDATE || reason == RP_DUE_IMAGE_AGE;
  if (!for_content && e->d.due_ms > now) {
    /* Decided again while it waited for the budget (a reload, its
     * content): not due any more. */
    decide_again(r, e);
    return;
  }
  e->d.due_reason = reason;
  cleanup_json json_t *base = rp_recycle_audit_fields(e, now);
  enum rp_strategy strategy = rp_recycle_strategy(p, e);
  json_object_set_new(base, "strategy",
                      json_string(rp_strategy_name(strategy)));
  char due[40];
  rp_format_time_ms(e->d.due_ms, due, sizeof(due));
  json_object_set_new(base, "deadline", json_string(due));

  if (e->w->refusal) {
    refused(r, e, base, e->w->refusal, "provider", NULL);
    return;
  }
  /* Into new content: a recreate or a service's update, by a provider that
   * can fetch it, when
   * the policy moves and the digest may be rolled out (settled, neither
   * quarantined nor refused). */
  const struct rp_content_view *cv = &e->content;
  bool moves = r->content && cv->newer_digest &&
               (strategy == RP_STRATEGY_RECREATE ||
                strategy == RP_STRATEGY_FORCE_UPDATE) &&
               e->provider->ops->pull && rp_freshness_moves(p, reason, &cv->fr);
  enum rp_verdict verdict =
      moves && p->verify
          ? rp_content_verdict(r->content, p->verify, cv->newer_digest)
          : RP_VERDICT_PASSED;
  if (verdict == RP_VERDICT_REFUSED)
    moves = false;
  if (for_content && !moves) {
    content_gone(r, e, base);
    return;
  }
  if (r->dry_run) {
    json_object_set_new(base, "lateness_s",
                        json_real(round((double)(now - e->d.due_ms)) / 1000));
    if (moves)
      json_object_set_new(base, "image_digest", json_string(cv->newer_digest));
    rp_log(RP_LOG_INFO, "dry run: would recycle %s %s (%s), policy %s, with %s",
           rp_kind_name(e->w->kind), e->w->name, e->w->id, p->name,
           rp_strategy_name(strategy));
    append(r, "recycle.planned", base, planned_cb, NULL);
    e->state = RP_ENTRY_PLANNED;
    e->handled_start_ms = e->w->started_ms;
    r->stats.planned++;
    return;
  }

  struct op *o = rp_xcalloc(1, sizeof(*o));
  o->r = r;
  o->e = e;
  o->refused = RP_STEAL(e->refused);
  o->policy = rp_xstrdup(p->name);
  o->base = json_incref(base);
  char warning[200] = "";
  o->drain = rp_policy_drain_argv(e->w, p, warning, sizeof(warning));
  if (warning[0])
    rp_warn("%s", warning);
  o->replace = argv_dup(p->replace);
  o->begin_mono_ms = rp_mono_ms();
  o->started_ms = e->w->started_ms;
  o->moves = moves;
  o->keeps = !moves && r->content && cv->digest && cv->reference &&
             strategy == RP_STRATEGY_RECREATE && e->provider->ops->pull &&
             e->w->image.ref;
  o->content_key = cv->key ? rp_xstrdup(cv->key) : NULL;
  o->image_ref = e->w->image.ref ? rp_xstrdup(e->w->image.ref) : NULL;
  o->digest = cv->digest ? rp_xstrdup(cv->digest) : NULL;
  o->platform_digest =
      cv->platform_digest ? rp_xstrdup(cv->platform_digest) : NULL;
  if (moves) {
    o->new_digest = rp_xstrdup(cv->newer_digest);
    o->new_platform_digest = cv->newer_platform_digest
                                 ? rp_xstrdup(cv->newer_platform_digest)
                                 : NULL;
  }
  o->birth_ms = cv->fr.birth_ms;
  o->next = r->ops;
  r->ops = o;
  r->n_ops++;
  r->stats.started++;
  e->state = RP_ENTRY_RECYCLING;

  o->begin = json_deep_copy(base);
  json_object_set_new(o->begin, "lateness_s",
                      json_real(round((double)(now - e->d.due_ms)) / 1000));
  if (e->failures)
    json_object_set_new(o->begin, "attempt", json_integer(e->failures + 1));
  if (moves)
    json_object_set_new(o->begin, "image_digest", json_string(o->new_digest));
  rp_log(RP_LOG_INFO,
         "recycling %s %s (%s), policy %s, age %llds, with %s (%s)%s%.19s",
         rp_kind_name(e->w->kind), e->w->name, e->w->id, p->name,
         (long long)((now - e->w->started_ms) / 1000),
         rp_strategy_name(strategy), rp_due_reason_name(reason),
         moves ? ", into " : "", moves ? o->new_digest : "");
  /* The gate comes before recycle.begin: a refusal means nothing was
   * done.  Once per digest (and gate): a verdict is remembered. */
  if (moves && p->verify && verdict == RP_VERDICT_NONE) {
    if (gate_running(r, o)) {
      o->awaits_gate = true;
      return;
    }
    if (gate_start(r, o, p) == 0)
      return;
    /* A gate that cannot even run lets nothing through. */
    struct rp_child_result res = {.spawn_error = -EIO};
    gate_done_cb(o, &res);
    return;
  }
  launch(r, o);
}

void
rp_recycler_offer(struct rp_recycler *r, struct rp_entry *e, int64_t now_ms)
{
  (void)now_ms;
  if (e->state == RP_ENTRY_DUE || e->state == RP_ENTRY_RECYCLING)
    return;
  e->state = RP_ENTRY_DUE;
  e->offered_for = e->d.due_reason;
  if (r->n_due == r->cap_due) {
    r->cap_due = r->cap_due ? r->cap_due * 2 : 16;
    r->due = rp_xrealloc(r->due, r->cap_due * sizeof(*r->due));
  }
  r->due[r->n_due++] = e;
  rp_recycler_pump(r);
}

bool
rp_recycler_forget(struct rp_recycler *r, struct rp_entry *e)
{
  if (e->state == RP_ENTRY_DUE)
    due_remove(r, e);
  rp_schedule_remove(r->schedule, e);
  if (e->state == RP_ENTRY_RECYCLING) {
    e->gone = true;
    return true;
  }
  return false;
}

/* Hard-expired first (past hard_max_age), then the most overdue, then the
 * oldest: after an outage the workloads that are most past their limits go
 * first. */
static int64_t cmp_now;
static int
due_cmp(const void *a, const void *b)
{
  const struct rp_entry *x = *(struct rp_entry *const *)a;
  const struct rp_entry *y = *(struct rp_entry *const *)b;
  bool hx = x->d.hard_ms && x->d.hard_ms <= cmp_now;
  bool hy = y->d.hard_ms && y->d.hard_ms <= cmp_now;
  if (hx != hy)
    return hx ? -1 : 1;
  if (x->d.due_ms != y->d.due_ms)
    return x->d.due_ms < y->d.due_ms ? -1 : 1;
  if (x->w->started_ms != y->w->started_ms)
    return x->w->started_ms < y->w->started_ms ? -1 : 1;
  return strcmp(x->w->id, y->w->id);
}

struct count_ctx {
  const struct rp_config *c;
  int *matched;
};

/* The index of the policy whose budget e counts for, or -1: none, or a
 * life a recycle ended (a removed container the engine's event has not
 * taken away yet, a stopped one), which is not a workload any more; its
 * replacement, if any, is. */
static int
counted_policy(const struct rp_config *c, const struct rp_entry *e)
{
  const struct rp_policy *p = e->d.policy;
  if (!p || e->d.excluded || p < c->policies ||
      p >= c->policies + c->n_policies)
    return -1;
  if (e->state == RP_ENTRY_IDLE && e->handled_start_ms &&
      e->handled_start_ms == e->w->started_ms)
    return -1;
  return (int)(p - c->policies);
}

static void
count_cb(void *arg, struct rp_entry *e)
{
  struct count_ctx *cc = arg;
  int pi = counted_policy(cc->c, e);
  if (pi >= 0)
    cc->matched[pi]++;
}

/* How many workloads each policy has, the denominator of a percentage
 * budget: one per workload however the engine shows it mid-recycle.  A
 * replacement listed beside its old self is the same workload, and a
 * workload being recycled counts even when its old self has gone. */
static void
count_matched(struct rp_recycler *r, int *matched)
{
  struct count_ctx cc = {r->config, matched};
  rp_tracker_foreach(r->tracker, count_cb, &cc);
  for (struct op *o = r->ops; o; o = o->next) {
    if (o->e->gone) {
      int pi = counted_policy(r->config, o->e);
      if (pi >= 0)
        matched[pi]++;
    }
    if (!o->replacement_id)
      continue;
    struct rp_entry *n =
        rp_tracker_find(r->tracker, o->e->w->provider, o->replacement_id);
    int pi = n && n != o->e ? counted_policy(r->config, n) : -1;
    if (pi >= 0)
      matched[pi]--;
  }
}

static void pump_once(struct rp_recycler *r);

void
rp_recycler_pump(struct rp_recycler *r)
{
  if (r->pumping) {
    r->pump_again = true;
    return;
  }
  r->pumping = true;
  do {
    r->pump_again = false;
    pump_once(r);
  } while (r->pump_again);
  r->pumping = false;
}

/* Whether a workload depends on b (by id or name): b needs it as it is. */
static bool
depends(const struct rp_workload *a, const struct rp_workload *b)
{
  return a->depends_on && (rp_strv_contains(a->depends_on, b->id) ||
                           rp_strv_contains(a->depends_on, b->name));
}

/* Whether e's recycle must wait for one in flight: one of the two depends
 * on the other (a namespace, a link, volumes), and recreating both at once
 * would make one from the other half-replaced.  They go one after the
 * other, dependents after what they depend on as the queue has them. */
static bool
entangled(const struct rp_recycler *r, const struct rp_entry *e)
{
  for (const struct op *o = r->ops; o; o = o->next)
    if (o->e != e && o->e->provider == e->provider &&
        (depends(e->w, o->e->w) || depends(o->e->w, e->w)))
      return true;
  return false;
}

static void
pump_once(struct rp_recycler *r)
{
  if (r->draining || r->n_due == 0 || !r->config)
    return;
  if (!rp_audit_healthy(r->audit))
    return; /* fail closed: rp_audit_retry brings us back */
  const struct rp_config *c = r->config;
  cleanup_free int *matched = rp_xcalloc(c->n_policies + 1, sizeof(int));
  cleanup_free int *busy = rp_xcalloc(c->n_policies + 1, sizeof(int));
  count_matched(r, matched);
  for (struct op *o = r->ops; o; o = o->next) {
    const struct rp_policy *p = rp_config_policy(c, o->policy);
    if (p)
      busy[p - c->policies]++;
  }
  int64_t now = rp_wall_ms();
  cmp_now = now;
  qsort(r->due, r->n_due, sizeof(*r->due), due_cmp);
  size_t kept = 0;
  for (size_t i = 0; i < r->n_due; i++) {
    struct rp_entry *e = r->due[i];
    const struct rp_policy *p = e->d.policy;
    if (!p || e->d.excluded) { /* the config changed under it */
      e->state = RP_ENTRY_IDLE;
      continue;
    }
    size_t pi = (size_t)(p - c->policies);
    int limit = rp_budget_limit(&p->max_unavailable, matched[pi]);
    bool may_act = (!e->provider->ops->may_act ||
                    e->provider->ops->may_act(e->provider)) &&
                   (!r->gate || r->gate(r->gate_arg, e));
    if (busy[pi] >= limit || r->draining || !may_act ||
        (!r->dry_run && entangled(r, e))) {
      r->due[kept++] = e;
      continue;
    }
    if (!r->dry_run) /* a plan makes nothing unavailable */
      busy[pi]++;
    start(r, e, now);
  }
  r->n_due = kept;
}

void
rp_recycler_drain(struct rp_recycler *r, void (*idle_cb)(void *arg), void *arg)
{
  r->draining = true;
  /* A verify gate still running has decided nothing: it is ended, and its
   * recycle with it (nothing was done). */
  for (struct op *o = r->ops; o; o = o->next)
    if (o->gate)
      rp_child_kill(o->gate);
  for (size_t i = 0; i < r->n_due; i++)
    r->due[i]->state = RP_ENTRY_WAITING;
  r->n_due = 0;
  r->idle_cb = idle_cb;
  r->idle_arg = arg;
  if (r->n_ops == 0 && r->n_recovering == 0)
    notify_change(r);
}

bool
rp_recycler_idle(const struct rp_recycler *r)
{
  return r->n_ops == 0 && r->n_due == 0 && r->n_recovering == 0;
}

size_t
rp_recycler_in_flight(const struct rp_recycler *r)
{
  return r->n_ops;
}

bool
rp_recycler_busy_with(const struct rp_recycler *r, const char *provider,
                      const char *id)
{
  return op_of(r, provider, id) != NULL;
}

size_t
rp_recycler_in_flight_on(const struct rp_recycler *r,
                         const struct rp_provider *p)
{
  size_t n = 0;
  for (const struct op *o = r->ops; o; o = o->next)
    if (o->e->provider == p)
      n++;
  return n;
}

size_t
rp_recycler_waiting(const struct rp_recycler *r)
{
  return r->n_due;
}

const struct rp_recycler_stats *
rp_recycler_stats(const struct rp_recycler *r)
{
  return &r->stats;
}

/* --- crash recovery by the core ------------------------------------------ */

struct recovery_op {
  struct rp_recycler *r;
  char *provider;
  json_t *begin; /* owned: the recycle.begin line */
  rp_recycler_recovered_cb done;
  void *arg;
};

/* Writes recycle.recovered for what the core's crash recovery did, with the
 * members of the recycle.begin line that was never ended (borrowed). */
static void
recovered_write(struct rp_recycler *r, const char *provider, json_t *begin,
                const struct rp_recovery *rec)
{
  static const char *const keep[] = {
      "kind",  "id",        "name",     "policy", "started_at",
      "age_s", "max_age_s", "strategy", "reason", "image"};
  cleanup_json json_t *f = json_object();
  json_object_set_new(f, "provider", json_string(provider));
  for (size_t i = 0; i < RP_ARRAY_LEN(keep); i++) {
    json_t *v = json_object_get(begin, keep[i]);
    if (v)
      json_object_set(f, keep[i], v);
  }
  json_object_set(f, "begun_at", json_object_get(begin, "ts"));
  json_object_set_new(f, "action", json_string(rec->action));
  json_object_set_new(f, "replacement_id",
                      rec->replacement_id ? json_string(rec->replacement_id)
                                          : json_null());
  json_object_set_new(f, "detail", json_string(rec->detail ? rec->detail : ""));
  json_object_set_new(f, "ok", json_boolean(rec->ok));
  if (rec->ok)
    rp_warn("recovered the unfinished recycle of %s (%.12s): %s: %s",
            rec->name ? rec->name : "?", rec->id, rec->action,
            rec->detail ? rec->detail : "");
  else
    rp_err("could not recover the unfinished recycle of %s (%.12s): %s",
           rec->name ? rec->name : "?", rec->id,
           rec->detail ? rec->detail : "");
  append(r, "recycle.recovered", f, audit_logged_cb,
         (void *)(uintptr_t) "recycle.recovered");
}

static void
core_recovered_cb(void *arg, const struct rp_recovery *rec)
{
  struct recovery_op *ro = arg;
  struct rp_recycler *r = ro->r;
  struct rp_error *retry = NULL;
  if (rec->retry)
    rp_error_set(&retry, RP_EENGINE, "%s", rec->detail ? rec->detail : "?");
  else
    recovered_write(r, ro->provider, ro->begin, rec);
  r->n_recovering--;
  if (ro->done)
    ro->done(ro->arg, ro->begin, retry);
  rp_error_free(retry);
  free(ro->provider);
  json_decref(ro->begin);
  free(ro);
  notify_change(r);
}

int
rp_recycler_recover(struct rp_recycler *r, struct rp_provider *p,
                    const struct rp_unfinished *item, json_t *begin,
                    rp_recycler_recovered_cb done, void *arg,
                    struct rp_error **err)
{
  static const char *const keep[] = {
      "provider", "kind",      "id",       "name",    "policy", "started_at",
      "age_s",    "max_age_s", "strategy", "service", "reason", "image"};
  cleanup_json json_t *base = json_object();
  for (size_t i = 0; i < RP_ARRAY_LEN(keep); i++) {
    json_t *v = begin ? json_object_get(begin, keep[i]) : NULL;
    if (v)
      json_object_set(base, keep[i], v);
  }
  json_object_set_new(base, "provider", json_string(p->name));
  struct recovery_op *ro = rp_xcalloc(1, sizeof(*ro));
  ro->r = r;
  ro->provider = rp_xstrdup(p->name);
  ro->begin = json_incref(begin);
  ro->done = done;
  ro->arg = arg;
  struct rp_runner_env env = {
      .loop = r->loop, .append = runner_append, .ctx = r};
  if (rp_runner_recover(&env, p, item, base, core_recovered_cb, ro, err) != 0) {
    free(ro->provider);
    json_decref(ro->begin);
    free(ro);
    return -1;
  }
  r->n_recovering++;
  return 0;
}
