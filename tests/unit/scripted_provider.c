/* The scripted provider (see scripted_provider.h). */
#include "scripted_provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util.h"

/* What create's plan holds: the workload it replaces. */
struct tp_plan {
  char id[64];
};

struct tp_answer {
  uv_timer_t timer;
  struct tp *t;
  enum tp_op op;
  void *cb; /* the operation's own callback type, by op */
  void *arg;
  struct rp_error *err; /* owned, NULL: success */
  char new_id[64];      /* create */
  struct tp_plan *plan; /* prepare: handed to the core on success */
  struct rp_probe st;   /* probe */
  char id[64];          /* rename: the workload renamed... */
  char name[64];        /* ...and its new name */
  bool delivered;
  struct tp_answer *next;
};

struct tp_watch {
  char id[64];
  void (*cb)(void *arg);
  void *arg;
  bool poked; /* in this round of tp_poke */
  struct tp_watch *next;
};

static const char *const op_names[TP__COUNT] = {
    [TP_PREPARE] = "prepare", [TP_RELEASE] = "release",
    [TP_RENAME] = "rename",   [TP_CREATE] = "create",
    [TP_START] = "start",     [TP_STOP] = "stop",
    [TP_REMOVE] = "remove",   [TP_RESTART] = "restart",
    [TP_DRAIN] = "drain",     [TP_PROBE] = "probe",
    [TP_RESET] = "reset",     [TP_UPDATE] = "update",
    [TP_CORDON] = "cordon",   [TP_UNCORDON] = "uncordon",
    [TP_REPLACE] = "replace", [TP_WATCH] = "watch",
    [TP_UNWATCH] = "unwatch", [TP_FIND] = "find",
};

const char *
tp_op_name(enum tp_op op)
{
  return op < TP__COUNT ? op_names[op] : "?";
}

static void
protocol(struct tp *t, const char *what)
{
  if (!t->first)
    t->first = what;
}

/* --- the audit log as it is on disk ---------------------------------------*/

static size_t
count_lines(const char *path)
{
  if (!path)
    return 0;
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = 0;
  int c;
  while ((c = getc(f)) != EOF)
    n += c == '\n';
  fclose(f);
  return n;
}

json_t *
tp_audit_lines(const char *path)
{
  json_t *all = json_array();
  FILE *f = fopen(path, "r");
  if (!f)
    return all;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    json_t *o = json_loads(line, 0, NULL);
    json_array_append_new(all, o ? o : json_null());
  }
  free(line);
  fclose(f);
  return all;
}

char *
tp_audit_steps(const char *path)
{
  cleanup_json json_t *all = tp_audit_lines(path);
  char *out = rp_xstrdup("");
  size_t i;
  json_t *l;
  json_array_foreach(all, i, l)
  {
    if (strcmp(json_string_value(json_object_get(l, "event")) ?: "",
               "recycle.step") != 0)
      continue;
    char *n =
        rp_xasprintf("%s%s%s", out, *out ? " " : "",
                     json_string_value(json_object_get(l, "step")) ?: "?");
    free(out);
    out = n;
  }
  return out;
}

/* --- calls and answers ---------------------------------------------------- */

static struct tp_call *
record(struct tp *t, enum tp_op op, const char *id, const char *arg,
       int64_t grace_ms)
{
  t->count[op]++;
  if (t->n_calls == TP_MAX_CALLS) {
    t->overflow = true;
    return NULL;
  }
  struct tp_call *c = &t->calls[t->n_calls++];
  memset(c, 0, sizeof(*c));
  c->op = op;
  snprintf(c->id, sizeof(c->id), "%s", id ? id : "");
  snprintf(c->arg, sizeof(c->arg), "%s", arg ? arg : "");
  c->grace_ms = grace_ms;
  c->audit_lines = count_lines(t->audit_log);
  c->pending = t->pending;
  if (t->on_call)
    t->on_call(t, c, t->on_call_arg);
  return c;
}

static bool
nth_set(unsigned mask, int n)
{
  return n >= 1 && n <= 32 && (mask & (1u << (n - 1)));
}

/* Whether this call (the latest of op) is scripted to return -1. */
static bool
refused(struct tp *t, enum tp_op op, struct tp_call *c, struct rp_error **err)
{
  if (t->stopping) {
    if (c)
      c->refused = true;
    rp_error_set(err, RP_ECANCELED, "provider %s is stopping", t->p.name);
    return true;
  }
  if (!nth_set(t->refuse_mask[op], t->count[op]))
    return false;
  if (c)
    c->refused = true;
  rp_error_set(err, EIO, "%s",
               t->fail_msg[op] ? t->fail_msg[op] : "cannot start");
  return true;
}

static void
answer_closed_cb(uv_handle_t *h)
{
  struct tp_answer *a = h->data;
  rp_error_free(a->err);
  free(a->plan);
  free(a);
}

static void
deliver_cb(uv_timer_t *timer)
{
  struct tp_answer *a = timer->data;
  struct tp *t = a->t;
  for (struct tp_answer **pp = &t->answers; *pp; pp = &(*pp)->next) {
    if (*pp == a) {
      *pp = a->next;
      break;
    }
  }
  t->pending--;
  a->delivered = true;
  const struct rp_error *err = a->err;
  switch (a->op) {
  case TP_PREPARE: {
    rp_prepared_cb cb = (rp_prepared_cb)a->cb;
    if (err) {
      cb(a->arg, NULL, err);
      break;
    }
    struct rp_prepared pr = {
        .plan = a->plan,
        .name = t->name,
        .running = t->running,
        .clash = t->clash,
        .in_place = t->in_place,
        .details = t->details,
    };
    a->plan = NULL; /* the core's now, until release */
    t->plans++;
    cb(a->arg, &pr, NULL);
    break;
  }
  case TP_CREATE:
    ((rp_created_cb)a->cb)(a->arg, err ? NULL : a->new_id, err);
    break;
  case TP_PROBE:
    ((rp_probe_cb)a->cb)(a->arg, err ? NULL : &a->st, err);
    break;
  case TP_FIND:
    ((rp_created_cb)a->cb)(a->arg, err || !a->new_id[0] ? NULL : a->new_id,
                           err);
    break;
  case TP_RENAME:
    if (!err)
      tp_name(t, a->id, a->name);
    ((rp_op_cb)a->cb)(a->arg, err);
    break;
  case TP_DRAIN: {
    cleanup_json json_t *o =
        err ? json_pack("{s:i, s:s}", "exit_code", 1, "error", err->message)
            : json_pack("{s:i, s:s}", "exit_code", 0, "output", "drained");
    ((rp_drained_cb)a->cb)(a->arg, o);
    break;
  }
  case TP_REPLACE: {
    cleanup_json json_t *o = json_pack("{s:i}", "exit_code", err ? 1 : 0);
    ((rp_replaced_cb)a->cb)(a->arg, o, err);
    break;
  }
  default:
    ((rp_op_cb)a->cb)(a->arg, err);
    break;
  }
  uv_close((uv_handle_t *)&a->timer, answer_closed_cb);
}

/* Schedules the answer to the latest call of op. */
static struct tp_answer *
answer(struct tp *t, enum tp_op op, void *cb, void *arg)
{
  struct tp_answer *a = rp_xcalloc(1, sizeof(*a));
  a->t = t;
  a->op = op;
  a->cb = cb;
  a->arg = arg;
  if (nth_set(t->fail_mask[op], t->count[op]))
    rp_error_set(&a->err, t->fail_code[op] ? t->fail_code[op] : RP_EENGINE,
                 "%s", t->fail_msg[op] ? t->fail_msg[op] : "scripted failure");
  uv_timer_init(t->loop, &a->timer);
  a->timer.data = a;
  uv_timer_start(&a->timer, deliver_cb, (uint64_t)t->delay_ms[op], 0);
  a->next = t->answers;
  t->answers = a;
  t->pending++;
  return a;
}

static struct tp *
of(struct rp_provider *p)
{
  return p->ctx;
}

/* --- the operations ------------------------------------------------------- */

static int
op_prepare(struct rp_provider *p, const struct rp_workload *w,
           const struct rp_recycle_spec *spec, rp_prepared_cb cb, void *arg,
           struct rp_error **err)
{
  struct tp *t = of(p);
  struct tp_call *c = record(t, TP_PREPARE, w->id, NULL, spec->grace_ms);
  if (refused(t, TP_PREPARE, c, err))
    return -1;
  struct tp_answer *a = answer(t, TP_PREPARE, (void *)cb, arg);
  a->plan = rp_xcalloc(1, sizeof(*a->plan));
  snprintf(a->plan->id, sizeof(a->plan->id), "%s", w->id);
  t->prepared++;
  return 0;
}

static void
op_release(struct rp_provider *p, void *plan)
{
  struct tp *t = of(p);
  struct tp_plan *pl = plan;
  record(t, TP_RELEASE, pl ? pl->id : NULL, NULL, 0);
  if (pl) {
    t->plans--;
    free(pl);
  }
  if (t->count[TP_RELEASE] > t->prepared)
    protocol(t, "release without a prepare");
}

static int
op_rename(struct rp_provider *p, const char *id, const char *name, rp_op_cb cb,
          void *arg, struct rp_error **err)
{
  struct tp *t = of(p);
  struct tp_call *c = record(t, TP_RENAME, id, name, 0);
  if (refused(t, TP_RENAME, c, err))
    return -1;
  struct tp_answer *a = answer(t, TP_RENAME, (void *)cb, arg);
  snprintf(a->id, sizeof(a->id), "%s", id);
  snprintf(a->name, sizeof(a->name), "%s", name);
  return 0;
}

static int
op_create(struct rp_provider *p, void *plan, rp_created_cb cb, void *arg,
          struct rp_error **err)
{
  struct tp *t = of(p);
  struct tp_plan *pl = plan;
  if (!pl)
    protocol(t, "create without a plan");
  char new_id[64];
  snprintf(new_id, sizeof(new_id), "new-%d", t->created + 1);
  struct tp_call *c = record(t, TP_CREATE, pl ? pl->id : NULL, new_id, 0);
  if (refused(t, TP_CREATE, c, err))
    return -1;
  struct tp_answer *a = answer(t, TP_CREATE, (void *)cb, arg);
  if (!a->err)
    t->created++;
  snprintf(a->new_id, sizeof(a->new_id), "%s", new_id);
  return 0;
}

/* start, stop, remove, restart: an id, maybe a grace, an rp_op_cb. */
static int
simple(struct rp_provider *p, enum tp_op op, const char *id, int64_t grace_ms,
       rp_op_cb cb, void *arg, struct rp_error **err)
{
  struct tp *t = of(p);
  if (!id)
    protocol(t, "an operation without an id");
  struct tp_call *c = record(t, op, id, NULL, grace_ms);
  if (refused(t, op, c, err))
    return -1;
  answer(t, op, (void *)cb, arg);
  return 0;
}

static int
op_start(struct rp_provider *p, const char *id, rp_op_cb cb, void *arg,
         struct rp_error **err)
{
  return simple(p, TP_START, id, 0, cb, arg, err);
}

static int
op_stop(struct rp_provider *p, const char *id, int64_t grace_ms, rp_op_cb cb,
        void *arg, struct rp_error **err)
{
  return simple(p, TP_STOP, id, grace_ms, cb, arg, err);
}

static int
op_remove(struct rp_provider *p, const char *id, int64_t grace_ms, rp_op_cb cb,
          void *arg, struct rp_error **err)
{
  return simple(p, TP_REMOVE, id, grace_ms, cb, arg, err);
}

static int
op_restart(struct rp_provider *p, const char *id, int64_t grace_ms, rp_op_cb cb,
           void *arg, struct rp_error **err)
{
  return simple(p, TP_RESTART, id, grace_ms, cb, arg, err);
}

static int
op_reset(struct rp_provider *p, const char *id, void *plan, rp_op_cb cb,
         void *arg, struct rp_error **err)
{
  if (!plan)
    protocol(of(p), "reset without a plan");
  return simple(p, TP_RESET, id, 0, cb, arg, err);
}

static int
op_update(struct rp_provider *p, const char *id, void *plan, rp_op_cb cb,
          void *arg, struct rp_error **err)
{
  if (!plan)
    protocol(of(p), "update without a plan");
  return simple(p, TP_UPDATE, id, 0, cb, arg, err);
}

static int
op_cordon(struct rp_provider *p, const char *id, void *plan, rp_op_cb cb,
          void *arg, struct rp_error **err)
{
  return simple(p, TP_CORDON, id, 0, cb, arg, err);
}

static int
op_uncordon(struct rp_provider *p, const char *id, void *plan, rp_op_cb cb,
            void *arg, struct rp_error **err)
{
  return simple(p, TP_UNCORDON, id, 0, cb, arg, err);
}

static int
op_drain(struct rp_provider *p, const char *id, const char *const *argv,
         int64_t timeout_ms, rp_drained_cb cb, void *arg, struct rp_error **err)
{
  struct tp *t = of(p);
  struct tp_call *c =
      record(t, TP_DRAIN, id, argv && argv[0] ? argv[0] : NULL, timeout_ms);
  if (refused(t, TP_DRAIN, c, err))
    return -1;
  answer(t, TP_DRAIN, (void *)cb, arg);
  return 0;
}

static int
op_replace(struct rp_provider *p, const char *id, void *plan,
           const char *const *argv, int64_t timeout_ms, rp_replaced_cb cb,
           void *arg, struct rp_error **err)
{
  struct tp *t = of(p);
  struct tp_call *c =
      record(t, TP_REPLACE, id, argv && argv[0] ? argv[0] : NULL, timeout_ms);
  if (refused(t, TP_REPLACE, c, err))
    return -1;
  answer(t, TP_REPLACE, (void *)cb, arg);
  return 0;
}

static int
op_probe(struct rp_provider *p, const char *id, rp_probe_cb cb, void *arg,
         struct rp_error **err)
{
  struct tp *t = of(p);
  struct tp_call *c = record(t, TP_PROBE, id, NULL, 0);
  /* A look is not refused at stop: the docker provider's is not. */
  if (nth_set(t->refuse_mask[TP_PROBE], t->count[TP_PROBE])) {
    if (c)
      c->refused = true;
    return rp_error_set(err, EIO, "cannot look");
  }
  struct tp_answer *a = answer(t, TP_PROBE, (void *)cb, arg);
  a->st = TP_RUNNING;
  for (size_t i = 0; i < t->n_probes; i++) {
    if (strcmp(t->probes[i].id, id) != 0)
      continue;
    size_t at = t->probes[i].at < t->probes[i].n ? t->probes[i].at++
                                                 : t->probes[i].n - 1;
    a->st = t->probes[i].v[at];
  }
  if (a->st.exists && !a->st.name)
    a->st.name = tp_name_of(t, id);
  return 0;
}

static int
op_find(struct rp_provider *p, const char *old_id, const char *name,
        rp_created_cb cb, void *arg, struct rp_error **err)
{
  struct tp *t = of(p);
  struct tp_call *c = record(t, TP_FIND, old_id, name, 0);
  if (refused(t, TP_FIND, c, err))
    return -1;
  struct tp_answer *a = answer(t, TP_FIND, (void *)cb, arg);
  snprintf(a->new_id, sizeof(a->new_id), "%s", t->found ? t->found : "");
  return 0;
}

static void *
op_watch(struct rp_provider *p, const char *id, void (*cb)(void *arg),
         void *arg)
{
  struct tp *t = of(p);
  record(t, TP_WATCH, id, NULL, 0);
  struct tp_watch *w = rp_xcalloc(1, sizeof(*w));
  snprintf(w->id, sizeof(w->id), "%s", id);
  w->cb = cb;
  w->arg = arg;
  w->next = t->watches;
  t->watches = w;
  t->watching++;
  return w;
}

static void
op_unwatch(struct rp_provider *p, void *handle)
{
  struct tp *t = of(p);
  struct tp_watch *w = handle;
  record(t, TP_UNWATCH, w->id, NULL, 0);
  for (struct tp_watch **pp = &t->watches; *pp; pp = &(*pp)->next) {
    if (*pp == w) {
      *pp = w->next;
      t->watching--;
      free(w);
      return;
    }
  }
  protocol(t, "unwatch of a handle not watching");
}

static enum rp_strategy
default_strategy(enum rp_kind kind)
{
  return kind == RP_KIND_SERVICE ? RP_STRATEGY_FORCE_UPDATE
         : kind == RP_KIND_NODE  ? RP_STRATEGY_DRAIN_REPLACE
                                 : RP_STRATEGY_RECREATE;
}

static const struct rp_provider_ops tp_ops = {
    .type = "scripted",
    .default_strategy = default_strategy,
    .prepare = op_prepare,
    .release = op_release,
    .rename = op_rename,
    .create = op_create,
    .start_workload = op_start,
    .stop_workload = op_stop,
    .remove = op_remove,
    .restart = op_restart,
    .drain = op_drain,
    .probe = op_probe,
    .find_replacement = op_find,
    .reset = op_reset,
    .update = op_update,
    .cordon = op_cordon,
    .uncordon = op_uncordon,
    .replace = op_replace,
    .watch = op_watch,
    .unwatch = op_unwatch,
};

/* --- the script ------------------------------------------------------------*/

void
tp_init(struct tp *t, uv_loop_t *loop, const char *audit_log)
{
  memset(t, 0, sizeof(*t));
  t->loop = loop;
  t->audit_log = audit_log;
  t->running = true;
  t->p.ops = &tp_ops;
  t->p.ctx = t;
  t->p.name = rp_xstrdup("local");
  t->p.loop = loop;
}

void
tp_clear(struct tp *t)
{
  while (t->watches) {
    struct tp_watch *w = t->watches;
    t->watches = w->next;
    free(w);
  }
  free(t->p.name);
  t->p.name = NULL;
}

void
tp_fail(struct tp *t, enum tp_op op, int nth, int code, const char *msg)
{
  t->fail_mask[op] |= nth == 0 ? ~0u : 1u << (nth - 1);
  t->fail_code[op] = code;
  t->fail_msg[op] = msg;
}

void
tp_refuse(struct tp *t, enum tp_op op, int nth, const char *msg)
{
  t->refuse_mask[op] |= nth == 0 ? ~0u : 1u << (nth - 1);
  t->fail_msg[op] = msg;
}

void
tp_probes(struct tp *t, const char *id, const struct rp_probe *states, size_t n)
{
  if (t->n_probes == TP_MAX_PROBED || n == 0 || n > TP_MAX_STATES) {
    protocol(t, "tp_probes: too many scripts or states");
    return;
  }
  size_t i = t->n_probes++;
  snprintf(t->probes[i].id, sizeof(t->probes[i].id), "%s", id);
  memcpy(t->probes[i].v, states, n * sizeof(*states));
  t->probes[i].n = n;
  t->probes[i].at = 0;
}

void
tp_name(struct tp *t, const char *id, const char *name)
{
  size_t i = 0;
  while (i < t->n_names && strcmp(t->names[i].id, id) != 0)
    i++;
  if (i == TP_MAX_PROBED) {
    protocol(t, "tp_name: too many names");
    return;
  }
  if (i == t->n_names)
    t->n_names++;
  snprintf(t->names[i].id, sizeof(t->names[i].id), "%s", id);
  snprintf(t->names[i].name, sizeof(t->names[i].name), "%s", name);
}

const char *
tp_name_of(const struct tp *t, const char *id)
{
  for (size_t i = 0; i < t->n_names; i++)
    if (strcmp(t->names[i].id, id) == 0)
      return t->names[i].name;
  return NULL;
}

void
tp_stop(struct tp *t)
{
  t->stopping = true;
  for (struct tp_answer *a = t->answers; a; a = a->next) {
    rp_error_free(a->err);
    a->err = NULL;
    rp_error_set(&a->err, RP_ECANCELED, "provider %s is stopping", t->p.name);
    uv_timer_start(&a->timer, deliver_cb, 0, 0);
  }
}

void
tp_poke(struct tp *t, const char *id)
{
  /* A watcher may unwatch itself from its callback: look the list up again
   * after each. */
  for (bool again = true; again;) {
    again = false;
    for (struct tp_watch *w = t->watches; w; w = w->next) {
      if (strcmp(w->id, id) != 0 || w->poked)
        continue;
      w->poked = true;
      w->cb(w->arg);
      again = true;
      break;
    }
  }
  for (struct tp_watch *w = t->watches; w; w = w->next)
    w->poked = false;
}

/* --- reading what happened -------------------------------------------------*/

char *
tp_trace(const struct tp *t, bool with_probes)
{
  char *out = rp_xstrdup("");
  for (size_t i = 0; i < t->n_calls; i++) {
    const struct tp_call *c = &t->calls[i];
    if (c->op == TP_PREPARE || c->op == TP_RELEASE || c->op == TP_WATCH ||
        c->op == TP_UNWATCH ||
        ((c->op == TP_PROBE || c->op == TP_FIND) && !with_probes))
      continue;
    char *n =
        rp_xasprintf("%s%s%s(%s%s%s)", out, *out ? " " : "", tp_op_name(c->op),
                     c->id, c->arg[0] ? "," : "", c->arg);
    free(out);
    out = n;
  }
  return out;
}

int
tp_find(const struct tp *t, enum tp_op op, int nth)
{
  int seen = 0;
  for (size_t i = 0; i < t->n_calls; i++)
    if (t->calls[i].op == op && ++seen == nth)
      return (int)i;
  return -1;
}
