/* The recycle runner (src/runner.c) against the scripted provider, without
 * an engine: the exact order of the operations of every sequence, each act
 * preceded by its own recycle.step line on disk; readiness and survival;
 * the provider's read-only preparation first, then recycle.begin on disk,
 * then the acts; a preparation that refuses ends before any recycle.begin;
 * rollback at every failing step, undone in reverse (an old workload the
 * engine removed when it stopped made again from the preparation's plan),
 * and "rolled back" only of an old workload that stays up; the audit log
 * failing before recycle.begin or a step (nothing acts) and while undoing
 * (the undo waits, then goes on); cancellation at the provider's stop.  A real
 * loop, a real audit log in a temporary directory, and the runner's windows
 * made short through rp_runner_env.  Every test ends with the loop closing
 * clean. */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "audit.h"
#include "runner.h"
#include "scripted_provider.h"
#include "util.h"

#define SURVIVE_MS 150
#define RESTORED_MS 150
#define AUDIT_RETRY_MS 20

static const char *const drain_argv[] = {"/bin/drain", NULL};
static const char *const replace_argv[] = {"/bin/replace-node", NULL};

struct fx {
  char dir[64];
  char *log;
  uv_loop_t loop;
  struct rp_audit *audit;
  struct tp tp;
  struct rp_runner_env env;
  struct rp_recycle_spec spec;

  /* The audit log as the test scripts it.  A line is named by its step (a
   * recycle.step line) or else by its event ("recycle.begin"). */
  const char *fault_step;  /* the first write of this step's line fails */
  bool faulted;            /* ...and has */
  const char *refuse_step; /* append returns -1 for this step's line */
  const char *heal_step;   /* the log is brought back before this try */
  int heal_try;            /* (1-based) of heal_step's line */
  int tries;               /* appends of heal_step's line */

  /* The provider's stop, once the recycle asked for this operation. */
  uv_timer_t stop_timer;
  bool stop_at_set;
  enum tp_op stop_at;

  /* What the runner's callback said. */
  int ended;
  int64_t ready_mono_ms, done_mono_ms; /* the result's, and when it came */
  int status;
  bool rolled_back;
  char *replacement;
  char *error;
  int error_code;
  json_t *details;
};

/* --- the fixture ---------------------------------------------------------- */

static int
fx_append(void *ctx, const char *event, json_t *fields, rp_audit_cb cb,
          void *arg)
{
  struct fx *f = ctx;
  const char *step = json_string_value(json_object_get(fields, "step"));
  step = step ? step : event;
  if (f->refuse_step && strcmp(step, f->refuse_step) == 0)
    return -1;
  if (f->heal_step && strcmp(step, f->heal_step) == 0 &&
      ++f->tries == f->heal_try) {
    /* As the agent's retry timer does: the disk works again, the log is
     * reopened (audit.resumed); appends made until then still fail. */
    rp_audit_inject_fault(f->audit, 0, 0, false);
    assert_int_equal(rp_audit_retry(f->audit, &f->loop, NULL, NULL), 0);
  }
  if (f->fault_step && !f->faulted && strcmp(step, f->fault_step) == 0) {
    f->faulted = true;
    rp_audit_inject_fault(f->audit, EIO, 0, false);
  }
  return rp_audit_append(f->audit, &f->loop, event, fields, cb, arg);
}

static void
stop_cb(uv_timer_t *t)
{
  struct fx *f = t->data;
  tp_stop(&f->tp);
}

/* The provider stops right after the call (not under it). */
static void
stop_at_cb(struct tp *t, const struct tp_call *c, void *arg)
{
  struct fx *f = arg;
  (void)t;
  if (f->stop_at_set && c->op == f->stop_at)
    uv_timer_start(&f->stop_timer, stop_cb, 0, 0);
}

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static int
setup(void **state)
{
  struct fx *f = rp_xcalloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/test_runner.XXXXXX");
  if (!mkdtemp(f->dir))
    return -1;
  f->log = rp_xasprintf("%s/audit.jsonl", f->dir);
  uv_loop_init(&f->loop);
  cleanup_error struct rp_error *err = NULL;
  if (rp_audit_open(f->log, &f->audit, NULL, &err) != 0)
    return -1;
  tp_init(&f->tp, &f->loop, f->log);
  f->tp.on_call = stop_at_cb;
  f->tp.on_call_arg = f;
  f->env = (struct rp_runner_env){
      .loop = &f->loop,
      .append = fx_append,
      .ctx = f,
      .survive_ms = SURVIVE_MS,
      .restored_ms = RESTORED_MS,
      .audit_retry_ms = AUDIT_RETRY_MS,
  };
  f->spec = (struct rp_recycle_spec){
      .strategy = RP_STRATEGY_RECREATE,
      .order = RP_ORDER_STOP_FIRST,
      .grace_ms = 10000,
      .health_timeout_ms = 5000,
      .drain_argv = drain_argv,
      .drain_timeout_ms = 3000,
  };
  uv_timer_init(&f->loop, &f->stop_timer);
  f->stop_timer.data = f;
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fx *f = *state;
  if (f->audit) /* a test that failed half-way */
    rp_audit_close(f->audit);
  tp_clear(&f->tp);
  nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(f->log);
  free(f->replacement);
  free(f->error);
  json_decref(f->details);
  free(f);
  return 0;
}

static void
done_cb(void *arg, int status, const struct rp_recycle_result *res,
        const struct rp_error *err)
{
  struct fx *f = arg;
  f->ended++;
  f->status = status;
  f->ready_mono_ms = res ? res->ready_mono_ms : 0;
  f->done_mono_ms = rp_mono_ms();
  f->rolled_back = res && res->rolled_back;
  free(f->replacement);
  f->replacement =
      res && res->replacement_id ? rp_xstrdup(res->replacement_id) : NULL;
  free(f->error);
  f->error = err && err->message ? rp_xstrdup(err->message) : NULL;
  f->error_code = err ? err->code : 0;
  json_decref(f->details);
  f->details = res && res->details ? json_deep_copy(res->details) : NULL;
  uv_timer_stop(&f->stop_timer);
}

/* What every line of a recycle carries (new reference). */
static json_t *
base_of(enum rp_kind kind, const char *id, const char *name)
{
  return json_pack("{s:s, s:s, s:s, s:s}", "provider", "local", "kind",
                   rp_kind_name(kind), "id", id, "name", name);
}

/* What recycle.begin adds, as the recycler's does (new reference). */
static json_t *
begin_of(enum rp_kind kind, const char *id, const char *name)
{
  json_t *b = base_of(kind, id, name);
  json_object_set_new(b, "lateness_s", json_real(12.5));
  return b;
}

/* Recycles one workload, with the loop run until nothing is left. */
static void
run(struct fx *f, enum rp_kind kind, const char *id, const char *name)
{
  struct rp_workload *w =
      rp_workload_new("local", kind, id, name, rp_wall_ms() - 3600 * 1000);
  cleanup_json json_t *base = base_of(kind, id, name);
  cleanup_json json_t *begin = begin_of(kind, id, name);
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_runner_start(&f->env, &f->tp.p, w, &f->spec, base, begin,
                                   done_cb, f, &err),
                   0);
  rp_workload_free(w);           /* borrowed for the call only */
  assert_int_equal(f->ended, 0); /* never under the caller */
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->ended, 1);
}

static void
run_container(struct fx *f)
{
  run(f, RP_KIND_CONTAINER, "old-1", "web");
}

static bool
acts(const struct tp_call *c)
{
  return c->op != TP_PREPARE && c->op != TP_RELEASE && c->op != TP_PROBE &&
         c->op != TP_WATCH && c->op != TP_UNWATCH;
}

static const char *
event_of(const json_t *line)
{
  const char *e = json_string_value(json_object_get(line, "event"));
  return e ? e : "";
}

/* The number of recycle.begin lines on disk.  The provider's preparation
 * came first, with nothing on disk yet (it only reads); recycle.begin, when
 * there is one, is the first line and the only one that says what begin
 * adds (lateness_s); nothing acted before it was on disk. */
static int
check_begin(struct fx *f)
{
  assert_true(f->tp.n_calls > 0);
  assert_int_equal(f->tp.calls[0].op, TP_PREPARE);
  assert_int_equal(f->tp.calls[0].audit_lines, 0);
  cleanup_json json_t *lines = tp_audit_lines(f->log);
  int begins = 0;
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l)
  {
    bool begin = strcmp(event_of(l), "recycle.begin") == 0;
    assert_int_equal(json_object_get(l, "lateness_s") != NULL, begin);
    if (!begin)
      continue;
    begins++;
    assert_int_equal(i, 0);
    assert_string_equal(json_string_value(json_object_get(l, "provider")),
                        "local");
    assert_non_null(json_object_get(l, "id"));
    assert_null(json_object_get(l, "step"));
  }
  assert_true(begins <= 1);
  for (size_t k = 0; k < f->tp.n_calls; k++)
    if (acts(&f->tp.calls[k])) {
      assert_int_equal(begins, 1);
      assert_true(f->tp.calls[k].audit_lines >= 1);
    }
  return begins;
}

/* Every test ends here: the preparation came first and recycle.begin
 * before any act; the provider got back every plan and watch and owes no
 * answer, the loop closes clean, and the log on disk is an intact chain,
 * whatever failed. */
static void
end(struct fx *f)
{
  check_begin(f);
  assert_null(f->tp.first);
  assert_false(f->tp.overflow);
  assert_int_equal(f->tp.pending, 0);
  assert_int_equal(f->tp.watching, 0);
  assert_int_equal(f->tp.plans, 0);
  assert_int_equal(f->tp.count[TP_PREPARE], 1);
  assert_int_equal(f->tp.count[TP_RELEASE], f->tp.prepared);
  uv_close((uv_handle_t *)&f->stop_timer, NULL);
  rp_audit_close(f->audit);
  f->audit = NULL;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  const char *paths[] = {f->log};
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_verify(paths, 1, NULL, NULL, &err), 0);
}

/* The operations that act, in order, and the recycle.step lines on disk,
 * in order; and each act was asked for when its own step line (naming its
 * target) was the last line on disk: every act preceded by its line, one
 * line per act. */
static void
check_acts(struct fx *f, const char *trace, const char *steps)
{
  cleanup_free char *t = tp_trace(&f->tp, false);
  assert_string_equal(t, trace);
  cleanup_free char *s = tp_audit_steps(f->log);
  assert_string_equal(s, steps);
  cleanup_json json_t *lines = tp_audit_lines(f->log);
  size_t k = 0, n = json_array_size(lines);
  for (size_t i = 0; i < f->tp.n_calls; i++) {
    const struct tp_call *c = &f->tp.calls[i];
    if (!acts(c))
      continue;
    while (k < n &&
           strcmp(event_of(json_array_get(lines, k)), "recycle.step") != 0)
      k++;
    assert_true(k < n);
    assert_int_equal(c->audit_lines, k + 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(lines, k), "target")),
        c->id);
    k++;
  }
  for (; k < n; k++)
    assert_string_not_equal(event_of(json_array_get(lines, k)), "recycle.step");
}

/* Probes of id among calls [from, to). */
static int
probes_between(const struct tp *t, int from, int to, const char *id)
{
  int n = 0;
  for (int i = from; i < to; i++)
    n += t->calls[i].op == TP_PROBE && strcmp(t->calls[i].id, id) == 0;
  return n;
}

static int
probes_of(const struct tp *t, const char *id)
{
  return probes_between(t, 0, (int)t->n_calls, id);
}

static const char *
detail(const struct fx *f, const char *key)
{
  return json_string_value(json_object_get(f->details, key));
}

#define SEQ(...)                                                               \
  (const struct rp_probe[]){__VA_ARGS__},                                      \
      sizeof((const struct rp_probe[]){__VA_ARGS__}) / sizeof(struct rp_probe)

/* --- the sequences ---------------------------------------------------------*/

static void
test_recreate_stop_first(void **state)
{
  struct fx *f = *state;
  run_container(f);
  assert_int_equal(f->status, 0);
  assert_string_equal(f->replacement, "new-1");
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(old-1)",
             "rename-old create drain stop-old start-new remove-old");
  assert_string_equal(detail(f, "order"), "stop-first");
  json_t *drain = json_object_get(f->details, "drain");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(drain, "argv"), 0)),
      "/bin/drain");
  assert_int_equal(json_integer_value(json_object_get(drain, "exit_code")), 0);
  /* The policy's grace for the old one; readiness and survival looked at
   * the replacement only, after it started and before the old one went. */
  assert_int_equal(f->tp.calls[tp_find(&f->tp, TP_STOP, 1)].grace_ms, 10000);
  assert_int_equal(f->tp.calls[tp_find(&f->tp, TP_REMOVE, 1)].grace_ms, 10000);
  assert_int_equal(probes_of(&f->tp, "old-1"), 0);
  assert_true(probes_between(&f->tp, tp_find(&f->tp, TP_START, 1),
                             tp_find(&f->tp, TP_REMOVE, 1), "new-1") >= 2);
  /* recycle.begin, then one step line per act, each carrying the
   * recycle's members, and the replacement once there is one. */
  assert_int_equal(check_begin(f), 1);
  cleanup_json json_t *lines = tp_audit_lines(f->log);
  assert_int_equal(json_array_size(lines), 7);
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l)
  {
    assert_string_equal(json_string_value(json_object_get(l, "name")), "web");
    assert_string_equal(json_string_value(json_object_get(l, "id")), "old-1");
    if (i == 0)
      continue; /* recycle.begin (check_begin) */
    assert_string_equal(event_of(l), "recycle.step");
    json_t *rid = json_object_get(l, "replacement_id");
    if (i < 3)
      assert_null(rid);
    else
      assert_string_equal(json_string_value(rid), "new-1");
  }
  end(f);
}

static void
test_recreate_start_first(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  run_container(f);
  assert_int_equal(f->status, 0);
  assert_string_equal(f->replacement, "new-1");
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) start(new-1) "
             "drain(old-1,/bin/drain) stop(old-1) remove(old-1)",
             "rename-old create start-new drain stop-old remove-old");
  assert_string_equal(detail(f, "order"), "start-first");
  assert_null(detail(f, "order_fallback"));
  /* Readiness, then the survival window, both while the old one still
   * serves: the two waits on the replacement (each watched, then
   * unwatched) lie between its start and the old one's drain; after the
   * old one's stop nothing is waited for. */
  int start = tp_find(&f->tp, TP_START, 1);
  int drain = tp_find(&f->tp, TP_DRAIN, 1);
  assert_true(start < tp_find(&f->tp, TP_WATCH, 1));
  assert_true(tp_find(&f->tp, TP_UNWATCH, 2) < drain);
  assert_int_equal(tp_find(&f->tp, TP_WATCH, 3), -1);
  assert_true(probes_between(&f->tp, tp_find(&f->tp, TP_WATCH, 2),
                             tp_find(&f->tp, TP_UNWATCH, 2), "new-1") >= 1);
  assert_int_equal(probes_between(&f->tp, drain, (int)f->tp.n_calls, "new-1"),
                   0);
  assert_int_equal(probes_of(&f->tp, "old-1"), 0);
  end(f);
}

static void
test_start_first_falls_back_on_a_clash(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  f->tp.clash = "host port 8080 is published";
  run_container(f);
  assert_int_equal(f->status, 0);
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(old-1)",
             "rename-old create drain stop-old start-new remove-old");
  assert_string_equal(detail(f, "order"), "stop-first");
  assert_string_equal(detail(f, "order_fallback"),
                      "host port 8080 is published");
  end(f);
}

static void
test_recreate_in_place(void **state)
{
  struct fx *f = *state;
  f->tp.in_place = true;
  run_container(f);
  assert_int_equal(f->status, 0);
  check_acts(f, "drain(old-1,/bin/drain) stop(old-1) reset(old-1) start(old-1)",
             "drain stop-old reset start");
  assert_string_equal(detail(f, "order"), "stop-first");
  /* The workload keeps its id: it is its own replacement, as a restart's. */
  assert_string_equal(f->replacement, "old-1");
  assert_true(probes_between(&f->tp, tp_find(&f->tp, TP_START, 1),
                             (int)f->tp.n_calls, "old-1") >= 2);
  end(f);
}

static void
test_restart(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_RESTART;
  run_container(f);
  assert_int_equal(f->status, 0);
  assert_string_equal(f->replacement, "old-1");
  check_acts(f, "drain(old-1,/bin/drain) restart(old-1)", "drain restart");
  assert_int_equal(f->tp.calls[tp_find(&f->tp, TP_RESTART, 1)].grace_ms, 10000);
  /* Ready, then the survival window: at least two looks. */
  assert_true(probes_of(&f->tp, "old-1") >= 2);
  end(f);
}

static void
test_stop(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_STOP;
  run_container(f);
  assert_int_equal(f->status, 0);
  assert_null(f->replacement);
  check_acts(f, "drain(old-1,/bin/drain) stop(old-1)", "drain stop-old");
  assert_int_equal(probes_of(&f->tp, "old-1"), 0);
  end(f);
}

static void
test_remove(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_REMOVE;
  run_container(f);
  assert_int_equal(f->status, 0);
  assert_null(f->replacement);
  check_acts(f, "drain(old-1,/bin/drain) stop(old-1) remove(old-1)",
             "drain stop-old remove-old");
  end(f);
}

/* A workload that is not running is neither drained nor stopped. */
static void
test_remove_of_a_stopped_workload(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_REMOVE;
  f->tp.running = false;
  run_container(f);
  assert_int_equal(f->status, 0);
  check_acts(f, "remove(old-1)", "remove-old");
  end(f);
}

static void
test_force_update(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_FORCE_UPDATE;
  tp_probes(&f->tp, "svc-1", SEQ(TP_PENDING, TP_PENDING, TP_RUNNING));
  run(f, RP_KIND_SERVICE, "svc-1", "api");
  assert_int_equal(f->status, 0);
  /* A service renewed by its update is its own replacement. */
  assert_string_equal(f->replacement, "svc-1");
  check_acts(f, "update(svc-1)", "update");
  /* Done when the engine says its update is: the third look. */
  assert_int_equal(probes_of(&f->tp, "svc-1"), 3);
  end(f);
}

/* The engine's own failure action rolled the update back. */
static void
test_force_update_reverted(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_FORCE_UPDATE;
  tp_probes(&f->tp, "svc-1", SEQ(TP_PENDING, TP_REVERTED));
  run(f, RP_KIND_SERVICE, "svc-1", "api");
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_non_null(strstr(f->error, "the engine undid it"));
  check_acts(f, "update(svc-1)", "update");
  end(f);
}

/* The service went away in the middle of its update: that is no recycle
 * done. */
static void
test_force_update_service_gone(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_FORCE_UPDATE;
  tp_probes(&f->tp, "svc-1", SEQ(TP_PENDING, TP_GONE));
  run(f, RP_KIND_SERVICE, "svc-1", "api");
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "it is gone"));
  check_acts(f, "update(svc-1)", "update");
  end(f);
}

static void
test_drain_replace(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_DRAIN_REPLACE;
  f->spec.replace_argv = replace_argv;
  /* Emptied on the second look, gone after its replace command. */
  tp_probes(&f->tp, "node-1", SEQ(TP_PENDING, TP_RUNNING, TP_GONE));
  run(f, RP_KIND_NODE, "node-1", "worker-1");
  assert_int_equal(f->status, 0);
  check_acts(f,
             "cordon(node-1) drain(node-1,/bin/drain) "
             "replace(node-1,/bin/replace-node) remove(node-1)",
             "cordon drain replace remove-old");
  assert_int_equal(probes_of(&f->tp, "node-1"), 3);
  json_t *rep = json_object_get(f->details, "replace");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(rep, "argv"), 0)),
      "/bin/replace-node");
  end(f);
}

static void
test_drain_replace_command_fails_uncordons(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_DRAIN_REPLACE;
  f->spec.replace_argv = replace_argv;
  tp_probes(&f->tp, "node-1", SEQ(TP_RUNNING));
  tp_fail(&f->tp, TP_REPLACE, 1, RP_EENGINE, "exit status 3");
  run(f, RP_KIND_NODE, "node-1", "worker-1");
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  check_acts(f,
             "cordon(node-1) drain(node-1,/bin/drain) "
             "replace(node-1,/bin/replace-node) uncordon(node-1)",
             "cordon drain replace undo-cordon");
  end(f);
}

/* Once the replace command ran, nothing is undone: the node is being
 * replaced, and the failure says so. */
static void
test_drain_replace_never_gone(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_DRAIN_REPLACE;
  f->spec.replace_argv = replace_argv;
  f->spec.health_timeout_ms = 200; /* the engine's work: health + drain */
  f->spec.drain_timeout_ms = 100;
  tp_probes(&f->tp, "node-1", SEQ(TP_RUNNING));
  run(f, RP_KIND_NODE, "node-1", "worker-1");
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "after the replace command ran"));
  check_acts(f,
             "cordon(node-1) drain(node-1,/bin/drain) "
             "replace(node-1,/bin/replace-node)",
             "cordon drain replace");
  end(f);
}

/* --- readiness and survival ------------------------------------------------*/

/* The looks of the readiness wait: the first wait (watched, looked at,
 * unwatched) after the replacement's start. */
static int
ready_looks(struct fx *f)
{
  int start = tp_find(&f->tp, TP_START, 1);
  int from = tp_find(&f->tp, TP_WATCH, 1);
  int to = tp_find(&f->tp, TP_UNWATCH, 1);
  assert_true(start >= 0 && from > start && to > from);
  assert_string_equal(f->tp.calls[from].id, "new-1");
  return probes_between(&f->tp, from, to, "new-1");
}

static void
test_ready_at_once_without_health_check(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  run_container(f);
  assert_int_equal(f->status, 0);
  /* Running, no health check: ready on the first look (no fixed settle). */
  assert_int_equal(ready_looks(f), 1);
  assert_null(detail(f, "health"));
  /* The time it was ready is told apart from the survival window that
   * follows it (recycle.done's ready_s against duration_s). */
  assert_true(f->ready_mono_ms > 0);
  assert_true(f->done_mono_ms - f->ready_mono_ms >= SURVIVE_MS);
  end(f);
}

/* The policy's survival window (spec.survive_ms) holds the old workload
 * that long once the replacement is ready, not the default's 2 s. */
static void
test_policy_survival_window(void **state)
{
  struct fx *f = *state;
  f->env.survive_ms = 0; /* no test override: the spec decides */
  f->spec.order = RP_ORDER_START_FIRST;
  f->spec.survive_ms = 300;
  run_container(f);
  assert_int_equal(f->status, 0);
  assert_true(f->ready_mono_ms > 0);
  int64_t held = f->done_mono_ms - f->ready_mono_ms;
  assert_true(held >= 300);
  assert_true(held < RP_RUNNER_SURVIVE_MS);
  end(f);
}

static void
test_ready_once_healthy(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  tp_probes(&f->tp, "new-1", SEQ(TP_STARTING, TP_STARTING, TP_HEALTHY));
  run_container(f);
  assert_int_equal(f->status, 0);
  assert_int_equal(ready_looks(f), 3);
  assert_string_equal(detail(f, "health"), "healthy");
  end(f);
}

static void
test_unhealthy_fails(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  tp_probes(&f->tp, "new-1", SEQ(TP_STARTING, TP_UNHEALTHY));
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_non_null(strstr(f->error, "replacement not ready"));
  assert_non_null(strstr(f->error, "unhealthy"));
  assert_int_equal(f->ready_mono_ms, 0); /* never ready */
  /* The old one never stopped: the replacement goes, the name comes back,
   * and nothing needs to start again. */
  assert_true(f->rolled_back);
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) start(new-1) "
             "remove(new-1) rename(old-1,web)",
             "rename-old create start-new undo-remove-replacement "
             "undo-rename-old");
  /* A failed replacement gets no grace. */
  assert_int_equal(f->tp.calls[tp_find(&f->tp, TP_REMOVE, 1)].grace_ms, 0);
  end(f);
}

static void
test_not_ready_within_health_timeout(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  f->spec.health_timeout_ms = 300;
  tp_probes(&f->tp, "new-1", SEQ(TP_STARTING));
  int64_t t0 = rp_mono_ms();
  run_container(f);
  assert_true(rp_mono_ms() - t0 >= 300);
  assert_int_equal(f->status, -1);
  assert_non_null(strstr(f->error, "not healthy within"));
  assert_true(f->rolled_back);
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) start(new-1) "
             "remove(new-1) rename(old-1,web)",
             "rename-old create start-new undo-remove-replacement "
             "undo-rename-old");
  end(f);
}

/* A replacement the engine restarted behind our back is failing. */
static void
test_replacement_restarting_fails(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  struct rp_probe restarted = TP_RUNNING;
  restarted.restarts = 1;
  tp_probes(&f->tp, "new-1", SEQ(restarted));
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_non_null(strstr(f->error, "restarted 1 times"));
  assert_true(f->rolled_back);
  end(f);
}

/* Ready, then dead within the survival window: the old one, stopped but
 * kept, comes back under its name. */
static void
test_dies_in_survival_window_rolls_back(void **state)
{
  struct fx *f = *state;
  /* Death is seen on the second look, 100 ms in: a window long enough that
   * a slow machine still makes the first look inside it. */
  f->env.survive_ms = 1000;
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING, TP_RUNNING, TP_EXITED));
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_non_null(strstr(f->error, "replacement did not stay up"));
  assert_non_null(strstr(f->error, "exit code 137"));
  assert_true(f->rolled_back);
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(new-1) "
             "rename(old-1,web) start(old-1)",
             "rename-old create drain stop-old start-new "
             "undo-remove-replacement undo-rename-old undo-start-old");
  /* "Rolled back" was said after looking at the restored one. */
  assert_true(probes_between(&f->tp, tp_find(&f->tp, TP_START, 2),
                             (int)f->tp.n_calls, "old-1") >= 1);
  end(f);
}

/* Ready, then gone within the survival window after exiting (made with
 * --rm, the engine removed it at once): rolled back, and the error says the
 * exit code its die event gave, which no inspect could read any more. */
static void
test_gone_after_exit_in_survival_window_says_why(void **state)
{
  struct fx *f = *state;
  f->env.survive_ms = 1000;
  struct rp_probe gone = TP_GONE;
  gone.exited = true;
  gone.exit_code = 3;
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING, TP_RUNNING, gone));
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_non_null(strstr(f->error, "replacement did not stay up"));
  assert_non_null(strstr(f->error, "it exited (exit code 3) and is gone"));
  assert_true(f->rolled_back);
  end(f);
}

/* A replacement that cannot even be looked at is not ready. */
static void
test_probe_cannot_start(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  tp_refuse(&f->tp, TP_PROBE, 1, NULL);
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_non_null(strstr(f->error, "cannot look at it"));
  assert_true(f->rolled_back);
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) start(new-1) "
             "remove(new-1) rename(old-1,web)",
             "rename-old create start-new undo-remove-replacement "
             "undo-rename-old");
  end(f);
}

/* The name prepare finds now is the one renamed and given back. */
static void
test_prepared_name_wins(void **state)
{
  struct fx *f = *state;
  f->tp.name = "web-2";
  tp_fail(&f->tp, TP_CREATE, 1, RP_EENGINE, "no such image");
  run_container(f);
  check_acts(f,
             "rename(old-1,web-2-reaper-old) create(old-1,new-1) "
             "rename(old-1,web-2)",
             "rename-old create undo-rename-old");
  end(f);
}

/* --- rollback at every failing step ---------------------------------------*/

static void
test_rename_fails(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_RENAME, 1, RP_ECONFLICT, "name in use");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_string_equal(f->error, "rename old: name in use");
  assert_int_equal(f->error_code, RP_ECONFLICT);
  check_acts(f, "rename(old-1,web-reaper-old)", "rename-old");
  end(f);
}

static void
test_create_fails(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_CREATE, 1, RP_EENGINE, "no such image");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_non_null(strstr(f->error, "create replacement: no such image"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "rename(old-1,web)",
             "rename-old create undo-rename-old");
  end(f);
}

/* An operation that cannot even start fails its step like one that
 * failed. */
static void
test_create_cannot_start(void **state)
{
  struct fx *f = *state;
  tp_refuse(&f->tp, TP_CREATE, 1, "no connection");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_non_null(strstr(f->error, "no connection"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "rename(old-1,web)",
             "rename-old create undo-rename-old");
  assert_true(f->tp.calls[tp_find(&f->tp, TP_CREATE, 1)].refused);
  end(f);
}

static void
test_stop_fails(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_STOP, 1, RP_EENGINE, "cannot kill: permission denied");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_non_null(strstr(f->error, "stop old: cannot kill"));
  /* The failed stop is asked for again (it lands, or is seen not to be
   * under way) before the old one is started: its start is the last
   * word. */
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) remove(new-1) "
             "rename(old-1,web) stop(old-1) start(old-1)",
             "rename-old create drain stop-old undo-remove-replacement "
             "undo-rename-old undo-land-stop undo-start-old");
  /* The old one (running, as the probe says) was looked at before "rolled
   * back" was said. */
  assert_true(probes_of(&f->tp, "old-1") >= 1);
  assert_true(f->rolled_back);
  end(f);
}

/* A stop that failed may still have landed: an old workload found down is
 * no rollback. */
static void
test_stop_fails_but_old_is_down(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_STOP, 1, RP_ETIMEOUT, "timed out");
  tp_probes(&f->tp, "old-1", SEQ(TP_EXITED));
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "rollback failed"));
  end(f);
}

static void
test_start_fails(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_START, 1, RP_EENGINE, "port already allocated");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_non_null(strstr(f->error, "start replacement: port already"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(new-1) "
             "rename(old-1,web) start(old-1)",
             "rename-old create drain stop-old start-new "
             "undo-remove-replacement undo-rename-old undo-start-old");
  assert_true(probes_between(&f->tp, tp_find(&f->tp, TP_START, 2),
                             (int)f->tp.n_calls, "old-1") >= 1);
  end(f);
}

/* The old one restarted but did not stay up: no rollback to speak of. */
static void
test_start_fails_and_old_does_not_stay_up(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_START, 1, RP_EENGINE, "port already allocated");
  tp_probes(&f->tp, "old-1", SEQ(TP_RUNNING, TP_EXITED));
  f->env.restored_ms = 1000; /* as above: the first look inside it */
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "did not stay up after its restart"));
  assert_non_null(strstr(f->error, "port already allocated"));
  end(f);
}

static void
test_ready_fails(void **state)
{
  struct fx *f = *state;
  tp_probes(&f->tp, "new-1", SEQ(TP_EXITED));
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_non_null(strstr(f->error, "replacement not ready: it is exited"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(new-1) "
             "rename(old-1,web) start(old-1)",
             "rename-old create drain stop-old start-new "
             "undo-remove-replacement undo-rename-old undo-start-old");
  end(f);
}

/* After the survival window the replacement stays, whatever happens to the
 * old one's removal: nothing is undone, and the failure says where the old
 * one is. */
static void
test_remove_fails_keeps_the_replacement(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_REMOVE, 1, RP_EENGINE, "device or resource busy");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "the replacement new-1 runs; the old one "
                                   "remains as web-reaper-old"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(old-1)",
             "rename-old create drain stop-old start-new remove-old");
  end(f);
}

/* Start-first: once the replacement is ready and lasted its survival
 * window, an old one that will not stop leaves both running, and nothing
 * is undone. */
static void
test_start_first_stop_fails_keeps_the_replacement(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  tp_fail(&f->tp, TP_STOP, 1, RP_EENGINE, "cannot kill");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "the replacement new-1 runs"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) start(new-1) "
             "drain(old-1,/bin/drain) stop(old-1)",
             "rename-old create start-new drain stop-old");
  end(f);
}

/* Start-first: the replacement was ready, then died within its survival
 * window, which comes before the old one stops: the old one, never drained
 * nor stopped, keeps serving and gets its name back; nothing needs to start
 * again. */
static void
test_start_first_survive_fails_old_never_stops(void **state)
{
  struct fx *f = *state;
  f->spec.order = RP_ORDER_START_FIRST;
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING, TP_EXITED));
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_non_null(strstr(f->error, "replacement did not stay up"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) start(new-1) "
             "remove(new-1) rename(old-1,web)",
             "rename-old create start-new undo-remove-replacement "
             "undo-rename-old");
  assert_int_equal(f->tp.count[TP_STOP], 0);
  assert_int_equal(f->tp.count[TP_DRAIN], 0);
  end(f);
}

/* An undoing step that fails: the others still run, and it is no rollback. */
static void
test_undo_step_fails(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_START, 1, RP_EENGINE, "port already allocated");
  tp_fail(&f->tp, TP_REMOVE, 1, RP_EENGINE, "removal in progress");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "rollback failed (removal in progress)"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(new-1) "
             "rename(old-1,web) start(old-1)",
             "rename-old create drain stop-old start-new "
             "undo-remove-replacement undo-rename-old undo-start-old");
  end(f);
}

/* The old workload ran with auto-remove: the engine removed it when it
 * stopped, so when the replacement fails its name cannot be given back
 * (not found).  Undoing makes it again from the preparation's plan, under
 * its own name (undo-recreate-old), starts what was made (undo-start-old,
 * naming the new id), and looks at that one, not at the id that is gone,
 * before saying rolled back. */
static void
script_auto_removed_old(struct fx *f)
{
  tp_fail(&f->tp, TP_START, 1, RP_EENGINE, "port already allocated");
  tp_fail(&f->tp, TP_RENAME, 2, RP_ENOTFOUND, "no such container: old-1");
}

static void
test_auto_removed_old_made_again(void **state)
{
  struct fx *f = *state;
  script_auto_removed_old(f);
  tp_probes(&f->tp, "old-1", SEQ(TP_GONE));
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_non_null(strstr(f->error, "start replacement: port already"));
  assert_null(strstr(f->error, "rollback failed"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(new-1) "
             "rename(old-1,web) create(old-1,new-2) start(new-2)",
             "rename-old create drain stop-old start-new "
             "undo-remove-replacement undo-rename-old undo-recreate-old "
             "undo-start-old");
  /* Made from the same plan as the replacement (the old one's): create's
   * plan names old-1 both times. */
  assert_string_equal(f->tp.calls[tp_find(&f->tp, TP_CREATE, 2)].id, "old-1");
  /* The restored one is new-2; old-1 is gone and never looked at. */
  assert_true(probes_between(&f->tp, tp_find(&f->tp, TP_START, 2),
                             (int)f->tp.n_calls, "new-2") >= 1);
  assert_int_equal(probes_of(&f->tp, "old-1"), 0);
  end(f);
}

/* ...and the one made again does not stay up: no rollback to speak of. */
static void
test_auto_removed_old_made_again_does_not_stay_up(void **state)
{
  struct fx *f = *state;
  script_auto_removed_old(f);
  tp_probes(&f->tp, "new-2", SEQ(TP_RUNNING, TP_EXITED));
  f->env.restored_ms = 1000; /* the second look inside it */
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "did not stay up after its restart"));
  cleanup_free char *s = tp_audit_steps(f->log);
  assert_non_null(strstr(s, "undo-recreate-old undo-start-old"));
  end(f);
}

/* ...and it cannot be made again: the rollback failed, and says so. */
static void
test_auto_removed_old_cannot_be_made_again(void **state)
{
  struct fx *f = *state;
  script_auto_removed_old(f);
  tp_fail(&f->tp, TP_CREATE, 2, RP_ECONFLICT, "name web in use");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "rollback failed (name web in use)"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(new-1) "
             "rename(old-1,web) create(old-1,new-2)",
             "rename-old create drain stop-old start-new "
             "undo-remove-replacement undo-rename-old undo-recreate-old");
  end(f);
}

/* A name not found before the old one stopped is no auto-remove: nothing
 * is made again, and the rollback failed. */
static void
test_rename_back_not_found_before_stop(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_CREATE, 1, RP_EENGINE, "no such image");
  tp_fail(&f->tp, TP_RENAME, 2, RP_ENOTFOUND, "no such container: old-1");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "rollback failed (no such container"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "rename(old-1,web)",
             "rename-old create undo-rename-old");
  end(f);
}

/* In place: a reset that fails restarts the workload as it was; once its
 * fresh filesystem is made there is nothing to go back to. */
static void
test_in_place_reset_fails(void **state)
{
  struct fx *f = *state;
  f->tp.in_place = true;
  tp_fail(&f->tp, TP_RESET, 1, RP_EENGINE, "snapshot busy");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  check_acts(f, "drain(old-1,/bin/drain) stop(old-1) reset(old-1) start(old-1)",
             "drain stop-old reset undo-start-old");
  end(f);
}

static void
test_in_place_start_fails_after_reset(void **state)
{
  struct fx *f = *state;
  f->tp.in_place = true;
  tp_fail(&f->tp, TP_START, 1, RP_EENGINE, "exec format error");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "fresh filesystem"));
  check_acts(f, "drain(old-1,/bin/drain) stop(old-1) reset(old-1) start(old-1)",
             "drain stop-old reset start");
  end(f);
}

/* restart, stop, remove replace nothing: a failure before the workload went
 * down left it in place; after, it did not. */
static void
test_restart_fails(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_RESTART;
  tp_fail(&f->tp, TP_RESTART, 1, RP_EENGINE, "no such container");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  check_acts(f, "drain(old-1,/bin/drain) restart(old-1)", "drain restart");
  end(f);
}

static void
test_restart_not_ready(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_RESTART;
  tp_probes(&f->tp, "old-1", SEQ(TP_EXITED));
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "not ready"));
  end(f);
}

/* A drain hook that fails, or cannot run at all, never holds the recycle
 * back. */
static void
test_drain_failure_does_not_hold_back(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_STOP;
  tp_refuse(&f->tp, TP_DRAIN, 1, "no shell in the image");
  run_container(f);
  assert_int_equal(f->status, 0);
  check_acts(f, "drain(old-1,/bin/drain) stop(old-1)", "drain stop-old");
  json_t *drain = json_object_get(f->details, "drain");
  assert_string_equal(json_string_value(json_object_get(drain, "error")),
                      "no shell in the image");
  end(f);
}

/* The provider's details from its preparation are in the result, with what
 * its operations added to them since (read again when the recycle ends). */
static void
add_detail_at_stop(struct tp *t, const struct tp_call *c, void *arg)
{
  (void)arg;
  if (c->op == TP_STOP)
    json_object_set_new(t->details, "killed", json_true());
}

static void
test_provider_details_read_again_at_end(void **state)
{
  struct fx *f = *state;
  f->spec.strategy = RP_STRATEGY_STOP;
  cleanup_json json_t *details = json_pack("{s:i}", "pid", 4242);
  f->tp.details = details;
  f->tp.on_call = add_detail_at_stop;
  run_container(f);
  assert_int_equal(f->status, 0);
  assert_int_equal(json_integer_value(json_object_get(f->details, "pid")),
                   4242);
  assert_true(json_is_true(json_object_get(f->details, "killed")));
  /* The runner's own details are kept beside them. */
  assert_non_null(json_object_get(f->details, "drain"));
  end(f);
}

/* --- the audit log ---------------------------------------------------------*/

/* recycle.begin cannot be written (fail closed): the preparation, which
 * only read, is all that happened; nothing acts, and the plan goes back. */
static void
test_audit_fails_at_begin(void **state)
{
  struct fx *f = *state;
  f->fault_step = "recycle.begin";
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_int_equal(f->error_code, RP_EAUDIT);
  assert_non_null(strstr(f->error, "audit log not writable"));
  assert_true(f->rolled_back);
  check_acts(f, "", "");
  assert_int_equal(check_begin(f), 0);
  assert_false(rp_audit_healthy(f->audit));
  assert_int_equal(f->tp.count[TP_RELEASE], 1);
  end(f);
}

/* The same when the append of recycle.begin cannot even be tried. */
static void
test_audit_append_refused_at_begin(void **state)
{
  struct fx *f = *state;
  f->refuse_step = "recycle.begin";
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_int_equal(f->error_code, RP_EAUDIT);
  assert_true(f->rolled_back);
  check_acts(f, "", "");
  assert_int_equal(check_begin(f), 0);
  assert_int_equal(f->tp.count[TP_RELEASE], 1);
  end(f);
}

/* recycle.begin is on disk, the first step's line cannot be written:
 * nothing acts at all. */
static void
test_audit_fails_before_first_step(void **state)
{
  struct fx *f = *state;
  f->fault_step = "rename-old";
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_int_equal(f->error_code, RP_EAUDIT);
  assert_true(f->rolled_back);
  check_acts(f, "", "");
  assert_int_equal(check_begin(f), 1);
  assert_false(rp_audit_healthy(f->audit));
  end(f);
}

/* The line before the old one's stop cannot be written: the stop is never
 * asked for; the undo waits for the log (trying again), and once it is back
 * undoes what was done, each undoing step on disk before it acts. */
static void
test_audit_fails_before_a_step_and_undo_waits(void **state)
{
  struct fx *f = *state;
  f->fault_step = "stop-old";
  f->heal_step = "undo-remove-replacement";
  f->heal_try = 3;
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_int_equal(f->error_code, RP_EAUDIT);
  assert_non_null(strstr(f->error, "audit log not writable"));
  assert_true(f->rolled_back);
  /* Tried while the log was failed, then once more after it came back. */
  assert_int_equal(f->tries, 4);
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) remove(new-1) rename(old-1,web)",
             "rename-old create drain undo-remove-replacement "
             "undo-rename-old");
  /* The undo acted only after the log came back. */
  cleanup_json json_t *lines = tp_audit_lines(f->log);
  size_t resumed = 0;
  for (size_t i = 0; i < json_array_size(lines); i++)
    if (strcmp(event_of(json_array_get(lines, i)), "audit.resumed") == 0)
      resumed = i + 1;
  assert_true(resumed > 0);
  assert_true(f->tp.calls[tp_find(&f->tp, TP_REMOVE, 1)].audit_lines > resumed);
  end(f);
}

/* An append that cannot even be tried: the same, and the undo goes on at
 * once (the log itself is fine). */
static void
test_audit_append_refused(void **state)
{
  struct fx *f = *state;
  f->refuse_step = "create";
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_int_equal(f->error_code, RP_EAUDIT);
  assert_true(f->rolled_back);
  check_acts(f, "rename(old-1,web-reaper-old) rename(old-1,web)",
             "rename-old undo-rename-old");
  end(f);
}

/* The log fails while undoing: the undoing step waits for it. */
static void
test_audit_fails_while_undoing(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_START, 1, RP_EENGINE, "port already allocated");
  f->fault_step = "undo-remove-replacement";
  f->heal_step = "undo-remove-replacement";
  f->heal_try = 3;
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_int_equal(f->tries, 4);
  assert_non_null(strstr(f->error, "port already allocated"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) start(new-1) remove(new-1) "
             "rename(old-1,web) start(old-1)",
             "rename-old create drain stop-old start-new "
             "undo-remove-replacement undo-rename-old undo-start-old");
  end(f);
}

/* --- cancellation at stop --------------------------------------------------*/

/* The provider stops while the old one's stop is under way: the stop is
 * cancelled, and the undoing steps, announced, cannot run: the recycle ends
 * once, not rolled back (recovery is told), and nothing is left open. */
static void
test_cancelled_at_provider_stop(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 60000;
  f->stop_at_set = true;
  f->stop_at = TP_STOP;
  int64_t t0 = rp_mono_ms();
  run_container(f);
  assert_true(rp_mono_ms() - t0 < 30000);
  assert_int_equal(f->status, -1);
  assert_false(f->rolled_back);
  assert_non_null(strstr(f->error, "provider local is stopping"));
  assert_non_null(strstr(f->error, "rollback failed"));
  check_acts(f,
             "rename(old-1,web-reaper-old) create(old-1,new-1) "
             "drain(old-1,/bin/drain) stop(old-1) remove(new-1) "
             "rename(old-1,web) stop(old-1) start(old-1)",
             "rename-old create drain stop-old undo-remove-replacement "
             "undo-rename-old undo-land-stop undo-start-old");
  assert_false(f->tp.calls[tp_find(&f->tp, TP_STOP, 1)].refused);
  assert_true(f->tp.calls[tp_find(&f->tp, TP_REMOVE, 1)].refused);
  assert_true(f->tp.calls[tp_find(&f->tp, TP_RENAME, 2)].refused);
  end(f);
}

/* prepare fails: nothing was done, not even recycle.begin (the recycler's
 * recycle.failed says so), and release is still owed. */
static void
test_prepare_fails(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_PREPARE, 1, RP_ENOTFOUND, "no such container");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_true(f->rolled_back);
  assert_string_equal(f->error, "prepare: no such container");
  assert_int_equal(f->error_code, RP_ENOTFOUND);
  check_acts(f, "", "");
  cleanup_json json_t *lines = tp_audit_lines(f->log);
  assert_int_equal(json_array_size(lines), 0);
  assert_int_equal(f->tp.count[TP_RELEASE], 1);
  end(f);
}

/* The preparation refuses (a reason not to recycle, e.g. another workload
 * shares this one's network namespace): the recycle ends with RP_EREFUSED
 * and the reason in its own words, before any recycle.begin: the log holds
 * nothing of it (the recycler says recycle.refused), nothing acted, and
 * the plan goes back. */
static void
test_prepare_refused(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_PREPARE, 1, RP_EREFUSED,
          "[\"sidecar\"] share this container's network namespace");
  run_container(f);
  assert_int_equal(f->status, -1);
  assert_int_equal(f->error_code, RP_EREFUSED);
  assert_string_equal(f->error,
                      "[\"sidecar\"] share this container's network namespace");
  assert_true(f->rolled_back);
  assert_null(f->replacement);
  check_acts(f, "", "");
  assert_int_equal(check_begin(f), 0);
  cleanup_json json_t *lines = tp_audit_lines(f->log);
  assert_int_equal(json_array_size(lines), 0);
  assert_int_equal(f->tp.n_calls, 2); /* prepare, release */
  assert_int_equal(f->tp.count[TP_RELEASE], 1);
  end(f);
}

/* prepare cannot start: rp_runner_start fails, the callback never runs. */
static void
test_prepare_cannot_start(void **state)
{
  struct fx *f = *state;
  tp_refuse(&f->tp, TP_PREPARE, 1, "engine unreachable");
  struct rp_workload *w =
      rp_workload_new("local", RP_KIND_CONTAINER, "old-1", "web", rp_wall_ms());
  cleanup_json json_t *base = json_object();
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_runner_start(&f->env, &f->tp.p, w, &f->spec, base, NULL,
                                   done_cb, f, &err),
                   -1);
  assert_non_null(err);
  assert_string_equal(err->message, "engine unreachable");
  rp_workload_free(w);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->ended, 0);
  assert_int_equal(f->tp.count[TP_RELEASE], 0);
  end(f);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_recreate_stop_first),
      T(test_recreate_start_first),
      T(test_start_first_falls_back_on_a_clash),
      T(test_recreate_in_place),
      T(test_restart),
      T(test_stop),
      T(test_remove),
      T(test_remove_of_a_stopped_workload),
      T(test_force_update),
      T(test_force_update_reverted),
      T(test_force_update_service_gone),
      T(test_drain_replace),
      T(test_drain_replace_command_fails_uncordons),
      T(test_drain_replace_never_gone),
      T(test_ready_at_once_without_health_check),
      T(test_policy_survival_window),
      T(test_ready_once_healthy),
      T(test_unhealthy_fails),
      T(test_not_ready_within_health_timeout),
      T(test_replacement_restarting_fails),
      T(test_dies_in_survival_window_rolls_back),
      T(test_gone_after_exit_in_survival_window_says_why),
      T(test_probe_cannot_start),
      T(test_prepared_name_wins),
      T(test_rename_fails),
      T(test_create_fails),
      T(test_create_cannot_start),
      T(test_stop_fails),
      T(test_stop_fails_but_old_is_down),
      T(test_start_fails),
      T(test_start_fails_and_old_does_not_stay_up),
      T(test_ready_fails),
      T(test_remove_fails_keeps_the_replacement),
      T(test_start_first_stop_fails_keeps_the_replacement),
      T(test_start_first_survive_fails_old_never_stops),
      T(test_undo_step_fails),
      T(test_auto_removed_old_made_again),
      T(test_auto_removed_old_made_again_does_not_stay_up),
      T(test_auto_removed_old_cannot_be_made_again),
      T(test_rename_back_not_found_before_stop),
      T(test_in_place_reset_fails),
      T(test_in_place_start_fails_after_reset),
      T(test_restart_fails),
      T(test_restart_not_ready),
      T(test_drain_failure_does_not_hold_back),
      T(test_provider_details_read_again_at_end),
      T(test_audit_fails_at_begin),
      T(test_audit_append_refused_at_begin),
      T(test_audit_fails_before_first_step),
      T(test_audit_fails_before_a_step_and_undo_waits),
      T(test_audit_append_refused),
      T(test_audit_fails_while_undoing),
      T(test_cancelled_at_provider_stop),
      T(test_prepare_fails),
      T(test_prepare_refused),
      T(test_prepare_cannot_start),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
