/* Crash recovery by the core (rp_runner_recover, src/runner.c) against the
 * scripted provider, without an engine: the decision table as a whole.  An
 * unfinished recycle as the audit log tells it (its strategy, order and the
 * recycle.step names announced before the crash, the replacement a step
 * line named) and what the engine shows now (the old workload there or not,
 * running or not, renamed NAME-reaper-old or not; the replacement found or
 * not, running or not) decide whether it is finished, undone or left
 * alone.  Each test asserts the looks taken before anything is decided
 * (nothing on disk yet), the exact operations that act, in order, each
 * preceded by its own recycle.step line on disk with "recovery": true, and
 * what is reported (action, ok, the workload now running, retry).  A stop
 * announced before the crash may still be under way in the engine: it is
 * asked for again, and answered, before anything is started.  A real loop,
 * a real audit log in a temporary directory, the runner's windows made
 * short; every test ends with the loop closing clean and the log an intact
 * chain. */
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
#define GRACE_MS 10000

struct fx {
  char dir[64];
  char *log;
  uv_loop_t loop;
  struct rp_audit *audit;
  struct tp tp;
  struct rp_runner_env env;

  /* The unfinished recycle, as the audit log tells it. */
  enum rp_strategy strategy;
  bool start_first;
  int64_t health_timeout_ms;
  const char *steps;   /* space-separated step names; NULL: not known */
  const char *repl_id; /* the replacement a step line named, or NULL */

  const char *refuse_step; /* append returns -1 for this step's line */

  /* What recovery reported. */
  int ended;
  char *id, *name, *action, *replacement, *detail;
  bool ok, retry;
};

/* --- the fixture ---------------------------------------------------------- */

static int
fx_append(void *ctx, const char *event, json_t *fields, rp_audit_cb cb,
          void *arg)
{
  struct fx *f = ctx;
  const char *step = json_string_value(json_object_get(fields, "step"));
  if (f->refuse_step && step && strcmp(step, f->refuse_step) == 0)
    return -1;
  return rp_audit_append(f->audit, &f->loop, event, fields, cb, arg);
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
  snprintf(f->dir, sizeof(f->dir), "/tmp/test_runner_recover.XXXXXX");
  if (!mkdtemp(f->dir))
    return -1;
  f->log = rp_xasprintf("%s/audit.jsonl", f->dir);
  uv_loop_init(&f->loop);
  cleanup_error struct rp_error *err = NULL;
  if (rp_audit_open(f->log, &f->audit, NULL, &err) != 0)
    return -1;
  tp_init(&f->tp, &f->loop, f->log);
  f->env = (struct rp_runner_env){
      .loop = &f->loop,
      .append = fx_append,
      .ctx = f,
      .survive_ms = SURVIVE_MS,
      .restored_ms = RESTORED_MS,
      .audit_retry_ms = AUDIT_RETRY_MS,
  };
  f->strategy = RP_STRATEGY_RECREATE;
  f->health_timeout_ms = 5000;
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
  free(f->id);
  free(f->name);
  free(f->action);
  free(f->replacement);
  free(f->detail);
  free(f);
  return 0;
}

static char *
dup_or_null(const char *s)
{
  return s ? rp_xstrdup(s) : NULL;
}

static void
recovered_cb(void *arg, const struct rp_recovery *r)
{
  struct fx *f = arg;
  f->ended++;
  f->id = dup_or_null(r->id);
  f->name = dup_or_null(r->name);
  f->action = dup_or_null(r->action);
  f->replacement = dup_or_null(r->replacement_id);
  f->detail = dup_or_null(r->detail);
  f->ok = r->ok;
  f->retry = r->retry;
}

/* The steps announced, as the log's scan gives them (new reference). */
static json_t *
steps_of(const char *s)
{
  if (!s)
    return NULL;
  json_t *a = json_array();
  cleanup_free char *copy = rp_xstrdup(s);
  char *save = NULL;
  for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save))
    json_array_append_new(a, json_string(w));
  return a;
}

/* Starts the recovery of the recycle of old-1 ("web") and runs the loop
 * until nothing is left.  The item and base are borrowed for the call only:
 * they are freed before the loop runs. */
static int
start(struct fx *f, struct rp_error **err)
{
  json_t *steps = steps_of(f->steps);
  char *id = rp_xstrdup("old-1"), *name = rp_xstrdup("web");
  char *repl = dup_or_null(f->repl_id);
  struct rp_unfinished item = {
      .id = id,
      .name = name,
      .strategy = f->strategy,
      .grace_ms = GRACE_MS,
      .health_timeout_ms = f->health_timeout_ms,
      .start_first = f->start_first,
      .steps = steps,
      .replacement_id = repl,
  };
  json_t *base = json_pack("{s:s, s:s, s:s, s:s}", "provider", "local", "kind",
                           "container", "id", id, "name", name);
  int rc =
      rp_runner_recover(&f->env, &f->tp.p, &item, base, recovered_cb, f, err);
  json_decref(steps);
  json_decref(base);
  free(id);
  free(name);
  free(repl);
  return rc;
}

static void
recover(struct fx *f)
{
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(start(f, &err), 0);
  assert_int_equal(f->ended, 0); /* never under the caller */
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->ended, 1);
  assert_string_equal(f->id, "old-1");
  assert_string_equal(f->name, "web");
}

static bool
is_look(const struct tp_call *c)
{
  return c->op == TP_PROBE || c->op == TP_FIND;
}

static bool
acts(const struct tp_call *c)
{
  return !is_look(c) && c->op != TP_WATCH && c->op != TP_UNWATCH &&
         c->op != TP_PREPARE && c->op != TP_RELEASE;
}

static const char *
event_of(const json_t *line)
{
  const char *e = json_string_value(json_object_get(line, "event"));
  return e ? e : "";
}

/* The looks recovery took before deciding (the calls up to the first other
 * one), each with nothing on disk yet. */
static void
check_looks(struct fx *f, const char *looks)
{
  cleanup_free char *out = rp_xstrdup("");
  for (size_t i = 0; i < f->tp.n_calls && is_look(&f->tp.calls[i]); i++) {
    const struct tp_call *c = &f->tp.calls[i];
    assert_int_equal(c->audit_lines, 0);
    char *n =
        rp_xasprintf("%s%s%s(%s%s%s)", out, *out ? " " : "", tp_op_name(c->op),
                     c->id, c->arg[0] ? "," : "", c->arg);
    free(out);
    out = n;
  }
  assert_string_equal(out, looks);
}

/* The operations that act, in order, and the recycle.step lines on disk:
 * the log holds step lines only (recycle.recovered is the recycler's), each
 * with "recovery": true and the recycle's members; each act was asked for
 * when its own line (naming its target) was the last on disk. */
static void
check_acts(struct fx *f, const char *trace, const char *steps)
{
  cleanup_free char *t = tp_trace(&f->tp, false);
  assert_string_equal(t, trace);
  cleanup_free char *s = tp_audit_steps(f->log);
  assert_string_equal(s, steps);
  cleanup_json json_t *lines = tp_audit_lines(f->log);
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l)
  {
    assert_string_equal(event_of(l), "recycle.step");
    assert_true(json_is_true(json_object_get(l, "recovery")));
    assert_string_equal(json_string_value(json_object_get(l, "provider")),
                        "local");
    assert_string_equal(json_string_value(json_object_get(l, "id")), "old-1");
    assert_string_equal(json_string_value(json_object_get(l, "name")), "web");
  }
  size_t k = 0;
  for (size_t c = 0; c < f->tp.n_calls; c++) {
    const struct tp_call *call = &f->tp.calls[c];
    if (!acts(call))
      continue;
    assert_true(k < json_array_size(lines));
    assert_int_equal(call->audit_lines, k + 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(lines, k), "target")),
        call->id);
    k++;
  }
  assert_int_equal(k, json_array_size(lines));
}

static void
check_result(struct fx *f, const char *action, bool ok, const char *replacement)
{
  assert_string_equal(f->action, action);
  assert_int_equal(f->ok, ok);
  if (replacement)
    assert_string_equal(f->replacement, replacement);
  else
    assert_null(f->replacement);
  assert_false(f->retry);
  assert_non_null(f->detail);
}

/* Every test ends here: recovery prepares nothing and makes nothing; the
 * provider got back every watch and owes no answer; the loop closes clean
 * and the log on disk is an intact chain. */
static void
end(struct fx *f)
{
  assert_null(f->tp.first);
  assert_false(f->tp.overflow);
  assert_int_equal(f->tp.pending, 0);
  assert_int_equal(f->tp.watching, 0);
  assert_int_equal(f->tp.count[TP_PREPARE], 0);
  assert_int_equal(f->tp.count[TP_RELEASE], 0);
  assert_int_equal(f->tp.count[TP_CREATE], 0);
  rp_audit_close(f->audit);
  f->audit = NULL;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  const char *paths[] = {f->log};
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_verify(paths, 1, NULL, NULL, &err), 0);
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

/* The index of the nth call of op on id, or -1. */
static int
call_on(const struct tp *t, enum tp_op op, const char *id, int nth)
{
  int seen = 0;
  for (size_t i = 0; i < t->n_calls; i++)
    if (t->calls[i].op == op && strcmp(t->calls[i].id, id) == 0 &&
        ++seen == nth)
      return (int)i;
  return -1;
}

/* The replacement_id the step line of `step` carried, or NULL. */
static const char *
line_replacement(json_t *lines, const char *step)
{
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l)
  {
    if (strcmp(json_string_value(json_object_get(l, "step")) ?: "", step) == 0)
      return json_string_value(json_object_get(l, "replacement_id"));
  }
  fail_msg("no %s line", step);
  return NULL;
}

#define SEQ(...)                                                               \
  (const struct rp_probe[]){__VA_ARGS__},                                      \
      sizeof((const struct rp_probe[]){__VA_ARGS__}) / sizeof(struct rp_probe)

/* Made and never started. */
#define CREATED                                                                \
  ((struct rp_probe){.exists = true, .exit_code = 0, .status = "created"})

/* What the engine shows of the old workload (its name: tp_name). */
static void
old_is(struct fx *f, const char *name, const struct rp_probe *states, size_t n)
{
  if (name)
    tp_name(&f->tp, "old-1", name);
  tp_probes(&f->tp, "old-1", states, n);
}

#define RENAMED "web-reaper-old"

/* --- recreate, stop-first -------------------------------------------------*/

/* Reaper died right after recycle.begin: nothing had happened in the
 * engine, so nothing is done (it is due again). */
static void
test_after_begin_nothing_to_do(void **state)
{
  struct fx *f = *state;
  f->steps = "";
  old_is(f, "web", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) find(old-1,web)");
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_NONE, true, NULL);
  assert_non_null(strstr(f->detail, "had not begun"));
  end(f);
}

/* The rename was announced and had not landed: the same. */
static void
test_rename_announced_not_landed(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old";
  old_is(f, "web", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) find(old-1,web)");
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_NONE, true, NULL);
  end(f);
}

/* Renamed, nothing made yet: the name goes back; it never stopped, so
 * nothing starts. */
static void
test_after_rename_old(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) find(old-1,web)");
  check_acts(f, "rename(old-1,web)", "undo-rename-old");
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  assert_string_equal(tp_name_of(&f->tp, "old-1"), "web");
  assert_int_equal(f->tp.count[TP_STOP], 0);
  assert_int_equal(f->tp.count[TP_START], 0);
  end(f);
}

/* The replacement was made (the provider finds it by its mark) and never
 * started: it goes, then the name comes back. */
static void
test_after_create_replacement_exists(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  f->tp.found = "new-1";
  tp_probes(&f->tp, "new-1", SEQ(CREATED));
  recover(f);
  check_looks(f, "probe(old-1) find(old-1,web) probe(new-1)");
  check_acts(f, "remove(new-1) rename(old-1,web)",
             "undo-remove-replacement undo-rename-old");
  /* Nothing of a failed replacement is worth a grace. */
  assert_int_equal(f->tp.calls[tp_find(&f->tp, TP_REMOVE, 1)].grace_ms, 0);
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  assert_string_equal(tp_name_of(&f->tp, "old-1"), "web");
  assert_int_equal(f->tp.count[TP_STOP] + f->tp.count[TP_START], 0);
  end(f);
}

/* The create was announced and never made anything. */
static void
test_after_create_no_replacement(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) find(old-1,web)");
  check_acts(f, "rename(old-1,web)", "undo-rename-old");
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  end(f);
}

/* The old one's stop was announced and it still runs: its stop may be under
 * way in the engine.  The replacement goes on: the stop is asked for again
 * and answered before anything starts, then the replacement starts, is
 * ready, survives, and the old one goes.  The replacement is the one the
 * log named (no search). */
static void
test_after_stop_old_announced_stop_under_way(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(CREATED, TP_RUNNING));
  f->tp.delay_ms[TP_STOP] = 50; /* a stop takes its time */
  recover(f);
  check_looks(f, "probe(old-1) probe(new-1)");
  check_acts(f, "stop(old-1) start(new-1) remove(old-1)",
             "stop-old start-new remove-old");
  int stop = tp_find(&f->tp, TP_STOP, 1), st = tp_find(&f->tp, TP_START, 1);
  assert_true(stop < st);
  assert_int_equal(f->tp.calls[st].pending, 0); /* the stop had landed */
  assert_int_equal(f->tp.calls[stop].grace_ms, GRACE_MS);
  assert_int_equal(f->tp.calls[tp_find(&f->tp, TP_REMOVE, 1)].grace_ms,
                   GRACE_MS);
  /* Ready, then survival: the replacement looked at before the old one
   * went. */
  assert_true(
      probes_between(&f->tp, st, tp_find(&f->tp, TP_REMOVE, 1), "new-1") >= 2);
  cleanup_json json_t *lines = tp_audit_lines(f->log);
  assert_string_equal(line_replacement(lines, "stop-old"), "new-1");
  assert_string_equal(line_replacement(lines, "start-new"), "new-1");
  check_result(f, RP_RECOVERY_FINISHED, true, "new-1");
  end(f);
}

/* The stop had landed: the same way on (asking again costs nothing). */
static void
test_after_stop_old_announced_old_stopped(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_EXITED));
  tp_probes(&f->tp, "new-1", SEQ(CREATED, TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) probe(new-1)");
  check_acts(f, "stop(old-1) start(new-1) remove(old-1)",
             "stop-old start-new remove-old");
  check_result(f, RP_RECOVERY_FINISHED, true, "new-1");
  end(f);
}

/* The log named no replacement (the create's line comes before its id):
 * the provider finds it. */
static void
test_after_stop_old_replacement_found(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  old_is(f, RENAMED, SEQ(TP_EXITED));
  f->tp.found = "new-1";
  tp_probes(&f->tp, "new-1", SEQ(CREATED, TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) find(old-1,web) probe(new-1)");
  check_acts(f, "stop(old-1) start(new-1) remove(old-1)",
             "stop-old start-new remove-old");
  check_result(f, RP_RECOVERY_FINISHED, true, "new-1");
  end(f);
}

static void
test_after_start_new(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old start-new";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_EXITED));
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) probe(new-1)");
  check_acts(f, "stop(old-1) start(new-1) remove(old-1)",
             "stop-old start-new remove-old");
  check_result(f, RP_RECOVERY_FINISHED, true, "new-1");
  end(f);
}

/* The old one's remove had landed: the replacement is all there is; it is
 * started (again) and must be ready and stay up. */
static void
test_after_remove_old_old_gone(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old start-new remove-old";
  f->repl_id = "new-1";
  old_is(f, NULL, SEQ(TP_GONE));
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) probe(new-1)");
  check_acts(f, "start(new-1)", "start-new");
  assert_true(probes_between(&f->tp, tp_find(&f->tp, TP_START, 1),
                             (int)f->tp.n_calls, "new-1") >= 2);
  check_result(f, RP_RECOVERY_FINISHED, true, "new-1");
  end(f);
}

/* The remove was announced and had not landed: the way on again. */
static void
test_after_remove_old_announced_old_there(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old start-new remove-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_EXITED));
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING));
  recover(f);
  check_acts(f, "stop(old-1) start(new-1) remove(old-1)",
             "stop-old start-new remove-old");
  check_result(f, RP_RECOVERY_FINISHED, true, "new-1");
  end(f);
}

/* --- recreate, start-first ------------------------------------------------*/

/* The replacement was started while the old one served, and the old one's
 * stop was never asked for: undone, the old one never stopped. */
static void
test_start_first_after_start_new(void **state)
{
  struct fx *f = *state;
  f->start_first = true;
  f->steps = "rename-old create start-new";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) probe(new-1)");
  check_acts(f, "remove(new-1) rename(old-1,web)",
             "undo-remove-replacement undo-rename-old");
  assert_int_equal(f->tp.count[TP_STOP], 0);
  assert_int_equal(f->tp.count[TP_START], 0);
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  assert_string_equal(tp_name_of(&f->tp, "old-1"), "web");
  end(f);
}

/* The old one's stop was announced: on, in start-first order (the
 * replacement started, ready and surviving before the old one's stop is
 * asked for again). */
static void
test_start_first_after_stop_old_announced(void **state)
{
  struct fx *f = *state;
  f->start_first = true;
  f->steps = "rename-old create start-new stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) probe(new-1)");
  check_acts(f, "start(new-1) stop(old-1) remove(old-1)",
             "start-new stop-old remove-old");
  assert_true(probes_between(&f->tp, tp_find(&f->tp, TP_START, 1),
                             tp_find(&f->tp, TP_STOP, 1), "new-1") >= 2);
  check_result(f, RP_RECOVERY_FINISHED, true, "new-1");
  end(f);
}

/* --- going on fails
 * ---------------------------------------------------------*/

/* The old one's stop, asked for again, answered: the replacement cannot
 * start.  Undone: the replacement goes, the name comes back, the old one
 * (stopped, the stop landed) starts again and is seen to stay up. */
static void
test_forward_replacement_fails_to_start(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(CREATED));
  tp_fail(&f->tp, TP_START, 1, RP_EENGINE, "port is already allocated");
  recover(f);
  check_acts(f,
             "stop(old-1) start(new-1) remove(new-1) rename(old-1,web) "
             "start(old-1)",
             "stop-old start-new undo-remove-replacement undo-rename-old "
             "undo-start-old");
  int restart = call_on(&f->tp, TP_START, "old-1", 1);
  assert_int_equal(f->tp.calls[restart].pending, 0);
  assert_true(probes_between(&f->tp, restart, (int)f->tp.n_calls, "old-1") >=
              1);
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  assert_string_equal(tp_name_of(&f->tp, "old-1"), "web");
  end(f);
}

/* The replacement dies in its survival window: undone the same way. */
static void
test_forward_replacement_dies_in_survival_window(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(CREATED, TP_RUNNING, TP_EXITED));
  recover(f);
  check_acts(f,
             "stop(old-1) start(new-1) remove(new-1) rename(old-1,web) "
             "start(old-1)",
             "stop-old start-new undo-remove-replacement undo-rename-old "
             "undo-start-old");
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  assert_non_null(strstr(f->detail, "rolled back"));
  end(f);
}

/* The replacement is not healthy within the policy's health timeout (the
 * log's, not a default): undone. */
static void
test_forward_not_ready_within_policy_timeout(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  f->health_timeout_ms = 300;
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(CREATED, TP_STARTING));
  uint64_t t0 = uv_hrtime();
  recover(f);
  uint64_t took_ms = (uv_hrtime() - t0) / 1000000;
  assert_true(took_ms >= 300);
  assert_true(took_ms < 30000); /* the default would be 60 s */
  check_acts(f,
             "stop(old-1) start(new-1) remove(new-1) rename(old-1,web) "
             "start(old-1)",
             "stop-old start-new undo-remove-replacement undo-rename-old "
             "undo-start-old");
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  end(f);
}

/* The old one's stop, asked for again, fails (it may still land): undone,
 * and the stop is asked for once more and answered before the old one is
 * started. */
static void
test_forward_stop_fails_stop_landed_before_start(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(CREATED));
  tp_fail(&f->tp, TP_STOP, 1, RP_EENGINE, "timeout");
  recover(f);
  check_acts(f,
             "stop(old-1) remove(new-1) rename(old-1,web) stop(old-1) "
             "start(old-1)",
             "stop-old undo-remove-replacement undo-rename-old "
             "undo-land-stop undo-start-old");
  assert_int_equal(f->tp.count[TP_START], 1); /* the replacement never */
  int st = call_on(&f->tp, TP_START, "old-1", 1);
  assert_true(call_on(&f->tp, TP_STOP, "old-1", 2) < st);
  assert_int_equal(f->tp.calls[st].pending, 0);
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  end(f);
}

/* Start-first: the replacement is not ready.  The old one's stop announced
 * before the crash may still land: undone, and that stop is asked for
 * again and answered before the old one is started. */
static void
test_start_first_forward_fails_stop_landed(void **state)
{
  struct fx *f = *state;
  f->start_first = true;
  f->steps = "rename-old create start-new stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING, TP_UNHEALTHY));
  recover(f);
  check_acts(f,
             "start(new-1) remove(new-1) rename(old-1,web) stop(old-1) "
             "start(old-1)",
             "start-new undo-remove-replacement undo-rename-old "
             "undo-land-stop undo-start-old");
  int st = call_on(&f->tp, TP_START, "old-1", 1);
  assert_true(call_on(&f->tp, TP_STOP, "old-1", 1) < st);
  assert_int_equal(f->tp.calls[st].pending, 0);
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  end(f);
}

/* The audit log cannot take the first step's line: that step never acts,
 * and the recycle is undone (each undoing step on disk before it acts). */
static void
test_audit_refuses_a_step_nothing_acts(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  f->refuse_step = "stop-old";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(CREATED));
  recover(f);
  check_acts(f, "remove(new-1) rename(old-1,web) stop(old-1) start(old-1)",
             "undo-remove-replacement undo-rename-old undo-land-stop "
             "undo-start-old");
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  end(f);
}

/* The old one is gone and the replacement cannot start: nothing to go back
 * to, so the replacement is kept as it is, and that is not put right. */
static void
test_old_gone_replacement_fails_is_kept(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old start-new remove-old";
  f->repl_id = "new-1";
  old_is(f, NULL, SEQ(TP_GONE));
  tp_probes(&f->tp, "new-1", SEQ(TP_EXITED));
  tp_fail(&f->tp, TP_START, 1, RP_EENGINE, "exec format error");
  recover(f);
  check_acts(f, "start(new-1)", "start-new");
  assert_int_equal(f->tp.count[TP_REMOVE], 0);
  check_result(f, RP_RECOVERY_FINISHED, false, NULL);
  assert_non_null(strstr(f->detail, "left as it is"));
  end(f);
}

/* Once the replacement lasted its survival window nothing is undone: the
 * old one's remove failing leaves it stopped, and says so. */
static void
test_forward_remove_old_fails_after_survival(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old start-new";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_EXITED));
  tp_probes(&f->tp, "new-1", SEQ(TP_RUNNING));
  tp_fail(&f->tp, TP_REMOVE, 1, RP_EENGINE, "device busy");
  recover(f);
  check_acts(f, "stop(old-1) start(new-1) remove(old-1)",
             "stop-old start-new remove-old");
  assert_string_equal(f->action, RP_RECOVERY_FINISHED);
  assert_false(f->ok);
  assert_false(f->retry);
  assert_non_null(strstr(f->detail, "the old one remains as " RENAMED));
  end(f);
}

/* --- undoing, and what it must come to
 * ---------------------------------------*/

/* The stop was announced and the replacement is gone (the log named it):
 * undone: the name back, the stop landed, the old one started and seen to
 * stay up. */
static void
test_stop_announced_replacement_gone_undone(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_EXITED, TP_RUNNING));
  tp_probes(&f->tp, "new-1", SEQ(TP_GONE));
  recover(f);
  check_looks(f, "probe(old-1) probe(new-1)");
  check_acts(f, "rename(old-1,web) stop(old-1) start(old-1)",
             "undo-rename-old undo-land-stop undo-start-old");
  int st = tp_find(&f->tp, TP_START, 1);
  assert_int_equal(f->tp.calls[st].pending, 0);
  assert_true(probes_between(&f->tp, st, (int)f->tp.n_calls, "old-1") >= 1);
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  end(f);
}

/* ...and the restored old workload does not stay up: not put right. */
static void
test_restored_does_not_stay_up(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_EXITED, TP_RUNNING, TP_EXITED));
  tp_probes(&f->tp, "new-1", SEQ(TP_GONE));
  recover(f);
  check_acts(f, "rename(old-1,web) stop(old-1) start(old-1)",
             "undo-rename-old undo-land-stop undo-start-old");
  check_result(f, RP_RECOVERY_ROLLED_BACK, false, NULL);
  assert_non_null(strstr(f->detail, "did not stay up"));
  end(f);
}

/* Going on failed, and the old one started again does not stay up. */
static void
test_forward_fails_and_restored_does_not_stay_up(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_RUNNING, TP_EXITED));
  tp_probes(&f->tp, "new-1", SEQ(CREATED));
  tp_fail(&f->tp, TP_START, 1, RP_EENGINE, "port is already allocated");
  recover(f);
  check_acts(f,
             "stop(old-1) start(new-1) remove(new-1) rename(old-1,web) "
             "start(old-1)",
             "stop-old start-new undo-remove-replacement undo-rename-old "
             "undo-start-old");
  assert_false(f->ok);
  assert_null(f->replacement);
  assert_false(f->retry);
  assert_non_null(strstr(f->detail, "did not stay up"));
  end(f);
}

/* An undoing step fails: not put right, and the reason is said. */
static void
test_undo_step_fails_says_why(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_fail(&f->tp, TP_RENAME, 1, RP_EENGINE, "name web is in use");
  recover(f);
  check_acts(f, "rename(old-1,web)", "undo-rename-old");
  check_result(f, RP_RECOVERY_ROLLED_BACK, false, NULL);
  assert_non_null(strstr(f->detail, "not put right"));
  assert_non_null(strstr(f->detail, "name web is in use"));
  assert_string_equal(tp_name_of(&f->tp, "old-1"), RENAMED);
  end(f);
}

/* --- nothing to go by -----------------------------------------------------*/

static void
test_neither_exists(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  old_is(f, NULL, SEQ(TP_GONE));
  recover(f);
  check_looks(f, "probe(old-1) find(old-1,web)");
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_NONE, false, NULL);
  assert_non_null(strstr(f->detail, "neither"));
  end(f);
}

static void
test_neither_exists_replacement_named(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, NULL, SEQ(TP_GONE));
  tp_probes(&f->tp, "new-1", SEQ(TP_GONE));
  recover(f);
  check_looks(f, "probe(old-1) probe(new-1)");
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_NONE, false, NULL);
  end(f);
}

/* An answer recovery cannot read: nothing is decided, acted on or written;
 * it is tried again later. */
static void
check_retry(struct fx *f, const char *looks, const char *why)
{
  check_looks(f, looks);
  check_acts(f, "", "");
  assert_true(f->retry);
  assert_false(f->ok);
  assert_string_equal(f->action, RP_RECOVERY_NONE);
  assert_null(f->replacement);
  assert_non_null(strstr(f->detail, why));
  cleanup_json json_t *lines = tp_audit_lines(f->log);
  assert_int_equal(json_array_size(lines), 0);
}

static void
test_unreadable_probe_of_old_retries(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  tp_fail(&f->tp, TP_PROBE, 1, RP_EENGINE, "invalid JSON in the answer");
  recover(f);
  check_retry(f, "probe(old-1)", "invalid JSON in the answer");
  end(f);
}

static void
test_unreadable_probe_of_replacement_retries(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create stop-old";
  f->repl_id = "new-1";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_fail(&f->tp, TP_PROBE, 2, RP_EENGINE, "invalid JSON in the answer");
  recover(f);
  check_retry(f, "probe(old-1) probe(new-1)", "invalid JSON in the answer");
  end(f);
}

static void
test_find_replacement_fails_retries(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_fail(&f->tp, TP_FIND, 1, RP_EENGINE, "truncated list");
  recover(f);
  check_retry(f, "probe(old-1) find(old-1,web)", "truncated list");
  end(f);
}

static void
test_find_replacement_cannot_start_retries(void **state)
{
  struct fx *f = *state;
  f->steps = "rename-old create";
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  tp_refuse(&f->tp, TP_FIND, 1, "engine unreachable");
  recover(f);
  check_retry(f, "probe(old-1) find(old-1,web)", "engine unreachable");
  end(f);
}

/* The first look cannot even start: rp_runner_recover fails, its callback
 * never runs. */
static void
test_probe_cannot_start(void **state)
{
  struct fx *f = *state;
  f->steps = "";
  tp_refuse(&f->tp, TP_PROBE, 1, "cannot look");
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(start(f, &err), -1);
  assert_non_null(err);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->ended, 0);
  check_acts(f, "", "");
  end(f);
}

/* A provider without find_replacement is not recovered by the core. */
static void
test_needs_find_replacement(void **state)
{
  struct fx *f = *state;
  assert_true(rp_runner_recovers(&f->tp.p));
  struct rp_provider_ops ops = *f->tp.p.ops;
  ops.find_replacement = NULL;
  const struct rp_provider_ops *was = f->tp.p.ops;
  f->tp.p.ops = &ops;
  assert_false(rp_runner_recovers(&f->tp.p));
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(start(f, &err), -1);
  assert_int_equal(err->code, ENOTSUP);
  f->tp.p.ops = was;
  assert_int_equal(f->tp.n_calls, 0);
  end(f);
}

/* --- steps not known ------------------------------------------------------*/

/* A recycle whose steps are not known (it failed in this run): a stop may
 * have been asked for.  With a replacement there, it goes on. */
static void
test_steps_unknown_goes_on(void **state)
{
  struct fx *f = *state;
  f->steps = NULL;
  old_is(f, RENAMED, SEQ(TP_RUNNING));
  f->tp.found = "new-1";
  tp_probes(&f->tp, "new-1", SEQ(CREATED, TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) find(old-1,web) probe(new-1)");
  check_acts(f, "stop(old-1) start(new-1) remove(old-1)",
             "stop-old start-new remove-old");
  check_result(f, RP_RECOVERY_FINISHED, true, "new-1");
  end(f);
}

/* Without one, the old one, though it runs under its name, may have a stop
 * on its way: the stop is landed and it is started again, and seen to stay
 * up. */
static void
test_steps_unknown_lands_a_stop(void **state)
{
  struct fx *f = *state;
  f->steps = NULL;
  old_is(f, "web", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1) find(old-1,web)");
  check_acts(f, "stop(old-1) start(old-1)", "undo-land-stop undo-start-old");
  int st = tp_find(&f->tp, TP_START, 1);
  assert_int_equal(f->tp.calls[st].pending, 0);
  assert_true(probes_between(&f->tp, st, (int)f->tp.n_calls, "old-1") >= 1);
  assert_int_equal(f->tp.count[TP_RENAME], 0);
  check_result(f, RP_RECOVERY_ROLLED_BACK, true, "old-1");
  end(f);
}

/* --- restart
 * ----------------------------------------------------------------*/

/* The restart was announced: whatever it came to, a stop is landed and the
 * workload started, and it must stay up.  No replacement is looked for. */
static void
test_restart_announced(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_RESTART;
  f->steps = "drain restart";
  old_is(f, "web", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1)");
  check_acts(f, "stop(old-1) start(old-1)", "undo-land-stop undo-start-old");
  assert_int_equal(f->tp.calls[tp_find(&f->tp, TP_STOP, 1)].grace_ms, GRACE_MS);
  int st = tp_find(&f->tp, TP_START, 1);
  assert_int_equal(f->tp.calls[st].pending, 0);
  assert_true(probes_between(&f->tp, st, (int)f->tp.n_calls, "old-1") >= 1);
  check_result(f, RP_RECOVERY_FINISHED, true, "old-1");
  end(f);
}

/* Not announced yet: no stop; started (a no-op on one that runs) and seen
 * to stay up. */
static void
test_restart_not_announced(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_RESTART;
  f->steps = "drain";
  old_is(f, "web", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1)");
  check_acts(f, "start(old-1)", "undo-start-old");
  check_result(f, RP_RECOVERY_FINISHED, true, "old-1");
  end(f);
}

static void
test_restart_does_not_stay_up(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_RESTART;
  f->steps = "restart";
  old_is(f, "web", SEQ(TP_RUNNING, TP_EXITED));
  recover(f);
  check_acts(f, "stop(old-1) start(old-1)", "undo-land-stop undo-start-old");
  check_result(f, RP_RECOVERY_FINISHED, false, NULL);
  assert_non_null(strstr(f->detail, "did not stay up"));
  end(f);
}

/* Gone: nothing to do, and nothing runs. */
static void
test_restart_gone(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_RESTART;
  f->steps = "restart";
  old_is(f, NULL, SEQ(TP_GONE));
  recover(f);
  check_looks(f, "probe(old-1)");
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_FINISHED, true, NULL);
  assert_non_null(strstr(f->detail, "gone"));
  end(f);
}

/* --- stop, remove
 * -----------------------------------------------------------*/

/* The stop was announced: it is asked for again (it lands). */
static void
test_stop_announced(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_STOP;
  f->steps = "drain stop-old";
  old_is(f, "web", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1)");
  check_acts(f, "stop(old-1)", "stop-old");
  assert_int_equal(f->tp.calls[tp_find(&f->tp, TP_STOP, 1)].grace_ms, GRACE_MS);
  check_result(f, RP_RECOVERY_FINISHED, true, NULL);
  end(f);
}

/* Not announced, and it runs: untouched, due again. */
static void
test_stop_not_announced(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_STOP;
  f->steps = "drain";
  old_is(f, "web", SEQ(TP_RUNNING));
  recover(f);
  check_looks(f, "probe(old-1)");
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_NONE, true, NULL);
  assert_non_null(strstr(f->detail, "due again"));
  end(f);
}

static void
test_stop_steps_unknown(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_STOP;
  f->steps = NULL;
  old_is(f, "web", SEQ(TP_RUNNING));
  recover(f);
  check_acts(f, "stop(old-1)", "stop-old");
  check_result(f, RP_RECOVERY_FINISHED, true, NULL);
  end(f);
}

static void
test_stop_gone(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_STOP;
  f->steps = "stop-old";
  old_is(f, NULL, SEQ(TP_GONE));
  recover(f);
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_FINISHED, true, NULL);
  end(f);
}

/* Stopped, its remove never asked for: stopped again, then removed. */
static void
test_remove_after_stop(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_REMOVE;
  f->steps = "drain stop-old";
  old_is(f, "web", SEQ(TP_EXITED));
  recover(f);
  check_looks(f, "probe(old-1)");
  check_acts(f, "stop(old-1) remove(old-1)", "stop-old remove-old");
  assert_int_equal(f->tp.calls[tp_find(&f->tp, TP_REMOVE, 1)].grace_ms,
                   GRACE_MS);
  check_result(f, RP_RECOVERY_FINISHED, true, NULL);
  end(f);
}

static void
test_remove_landed(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_REMOVE;
  f->steps = "drain stop-old remove-old";
  old_is(f, NULL, SEQ(TP_GONE));
  recover(f);
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_FINISHED, true, NULL);
  end(f);
}

static void
test_remove_not_announced(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_REMOVE;
  f->steps = "";
  old_is(f, "web", SEQ(TP_RUNNING));
  recover(f);
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_NONE, true, NULL);
  end(f);
}

/* A strategy the core does not recover (the engine's own work): said, not
 * guessed at. */
static void
test_force_update_not_recovered_by_core(void **state)
{
  struct fx *f = *state;
  f->strategy = RP_STRATEGY_FORCE_UPDATE;
  f->steps = "update";
  recover(f);
  check_looks(f, "probe(old-1)");
  check_acts(f, "", "");
  check_result(f, RP_RECOVERY_NONE, false, NULL);
  end(f);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_after_begin_nothing_to_do),
      T(test_rename_announced_not_landed),
      T(test_after_rename_old),
      T(test_after_create_replacement_exists),
      T(test_after_create_no_replacement),
      T(test_after_stop_old_announced_stop_under_way),
      T(test_after_stop_old_announced_old_stopped),
      T(test_after_stop_old_replacement_found),
      T(test_after_start_new),
      T(test_after_remove_old_old_gone),
      T(test_after_remove_old_announced_old_there),
      T(test_start_first_after_start_new),
      T(test_start_first_after_stop_old_announced),
      T(test_forward_replacement_fails_to_start),
      T(test_forward_replacement_dies_in_survival_window),
      T(test_forward_not_ready_within_policy_timeout),
      T(test_forward_stop_fails_stop_landed_before_start),
      T(test_start_first_forward_fails_stop_landed),
      T(test_audit_refuses_a_step_nothing_acts),
      T(test_old_gone_replacement_fails_is_kept),
      T(test_forward_remove_old_fails_after_survival),
      T(test_stop_announced_replacement_gone_undone),
      T(test_restored_does_not_stay_up),
      T(test_forward_fails_and_restored_does_not_stay_up),
      T(test_undo_step_fails_says_why),
      T(test_neither_exists),
      T(test_neither_exists_replacement_named),
      T(test_unreadable_probe_of_old_retries),
      T(test_unreadable_probe_of_replacement_retries),
      T(test_find_replacement_fails_retries),
      T(test_find_replacement_cannot_start_retries),
      T(test_probe_cannot_start),
      T(test_needs_find_replacement),
      T(test_steps_unknown_goes_on),
      T(test_steps_unknown_lands_a_stop),
      T(test_restart_announced),
      T(test_restart_not_announced),
      T(test_restart_does_not_stay_up),
      T(test_restart_gone),
      T(test_stop_announced),
      T(test_stop_not_announced),
      T(test_stop_steps_unknown),
      T(test_stop_gone),
      T(test_remove_after_stop),
      T(test_remove_landed),
      T(test_remove_not_announced),
      T(test_force_update_not_recovered_by_core),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
