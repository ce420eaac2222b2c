/* The recycler (src/recycle.c) with the tracker, the schedule, the policy's
 * decisions and the runner, against the scripted provider: budgets (a number
 * and a percentage of the matched workloads), the due queue (hard-expired
 * first, then the most overdue), a window that holds a recycle back until
 * its hard expiry, retries with backoff that doubles and is capped,
 * refusals (recycle.refused once per reason, looked at again after 15 min,
 * no recycle.begin), a workload gone before or during its recycle, drain at
 * stop (no new recycles, those in flight finish) and the provider
 * cancelling at stop, dry runs (recycle.planned, no operation), and failing
 * closed when the audit log cannot be written.  Both ways a recycle goes:
 * through the runner (the provider's preparation first, then
 * recycle.begin) and, for the providers that still order their own steps,
 * recycle.begin first, then the provider's recycle.  A real loop and audit
 * log; every test ends with the loop closing clean. */
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
#include "config.h"
#include "policy.h"
#include "recycle.h"
#include "strv.h"
#include "schedule.h"
#include "scripted_provider.h"
#include "tracker.h"
#include "util.h"

#define MIN_MS (60 * 1000)

/* Every policy stops its workloads: the shortest sequence (drain, stop),
 * with no survival window to wait for. */
static const char config_fmt[] =
    "providers:\n"
    "  - name: local\n"
    "    type: docker\n"
    "policies:\n"
    "  - name: pair\n"
    "    match: { name: \"pair-*\" }\n"
    "    max_age: 1h\n"
    "    strategy: stop\n"
    "    max_unavailable: 2\n"
    "  - name: quarter\n"
    "    match: { name: \"quarter-*\" }\n"
    "    max_age: 1h\n"
    "    strategy: stop\n"
    "    max_unavailable: 25%%\n"
    "  - name: one\n"
    "    match: { name: \"one-*\" }\n"
    "    max_age: 1h\n"
    "    hard_max_age: 70m\n"
    "    strategy: stop\n"
    "    max_unavailable: 1\n"
    "  - name: win\n"
    "    match: { name: \"win-*\" }\n"
    "    max_age: 1h\n"
    "    hard_max_age: 2h\n"
    "    strategy: stop\n"
    "    max_unavailable: 5\n"
    "    window: { start: \"%02d:%02d\", end: \"%02d:%02d\" }\n"
    "  - name: thirty\n"
    "    match: { name: \"rc-*\" }\n"
    "    max_age: 1h\n"
    "    strategy: recreate\n"
    "    survive: 0s\n"
    "    max_unavailable: 30%%\n";

struct fx {
  char dir[64];
  char *log;
  uv_loop_t loop;
  struct rp_audit *audit;
  struct rp_config *config;
  struct rp_tracker *tracker;
  struct rp_schedule *schedule;
  struct rp_recycler *rec;
  struct tp tp;
  uv_timer_t tick; /* wakes uv_run(UV_RUN_ONCE) while a test waits */
  uv_timer_t soon; /* runs `later` after the current callback */
  void (*later)(struct fx *f);

  /* What the recycler's lines said, as they went to the log. */
  int in_flight, max_in_flight;
  int begun, done, failed, planned, refused;
  int idle; /* rp_recycler_drain's idle_cb */
  bool gate_closed;
  const char *victim; /* the workload that goes away (by id) */
  bool healed;
};

/* --- the fixture ---------------------------------------------------------- */

static void
observe_cb(void *arg, const char *event, json_t *fields)
{
  struct fx *f = arg;
  if (strcmp(event, "recycle.begin") == 0) {
    f->begun++;
    if (++f->in_flight > f->max_in_flight)
      f->max_in_flight = f->in_flight;
  } else if (strcmp(event, "recycle.done") == 0) {
    f->done++;
    f->in_flight--;
    /* A stop has no replacement, so no time to one; a recreate's
     * replacement was ready. */
    if (json_is_null(json_object_get(fields, "replacement_id")) ||
        !json_object_get(fields, "replacement_id"))
      assert_null(json_object_get(fields, "ready_s"));
    else
      assert_non_null(json_object_get(fields, "ready_s"));
    assert_non_null(json_object_get(fields, "duration_s"));
  } else if (strcmp(event, "recycle.failed") == 0) {
    f->failed++;
    f->in_flight--;
  } else if (strcmp(event, "recycle.planned") == 0) {
    f->planned++;
  } else if (strcmp(event, "recycle.refused") == 0) {
    f->refused++;
  }
}

static bool
gate_cb(void *arg, const struct rp_entry *e)
{
  struct fx *f = arg;
  (void)e;
  return !f->gate_closed;
}

static void
due_cb(void *arg, struct rp_entry *e, int64_t now_ms)
{
  struct fx *f = arg;
  rp_recycler_offer(f->rec, e, now_ms);
}

static void
make_recycler(struct fx *f, bool dry_run)
{
  rp_recycler_free(f->rec);
  f->rec =
      rp_recycler_new(&f->loop, f->audit, f->tracker, f->schedule, dry_run);
  rp_recycler_set_config(f->rec, f->config);
  rp_recycler_on_audit(f->rec, observe_cb, f);
  rp_recycler_set_gate(f->rec, gate_cb, f);
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
  snprintf(f->dir, sizeof(f->dir), "/tmp/test_recycler.XXXXXX");
  if (!mkdtemp(f->dir))
    return -1;
  f->log = rp_xasprintf("%s/audit.jsonl", f->dir);
  uv_loop_init(&f->loop);
  cleanup_error struct rp_error *err = NULL;
  if (rp_audit_open(f->log, &f->audit, NULL, &err) != 0)
    return -1;
  /* A window that is closed now: one minute, six hours from now (UTC). */
  int64_t now_min = rp_wall_ms() / MIN_MS % (24 * 60);
  int start = (int)((now_min + 6 * 60) % (24 * 60));
  int end = (start + 1) % (24 * 60);
  char yaml[sizeof(config_fmt) + 16];
  snprintf(yaml, sizeof(yaml), config_fmt, start / 60, start % 60, end / 60,
           end % 60);
  if (rp_config_parse("recycler.yaml", yaml, strlen(yaml), &f->config, &err) !=
      0) {
    fprintf(stderr, "%s\n", err->message);
    return -1;
  }
  f->tracker = rp_tracker_new();
  f->schedule = rp_schedule_new(&f->loop, due_cb, f);
  tp_init(&f->tp, &f->loop, f->log);
  make_recycler(f, false);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_init(&f->loop, &f->soon);
  f->soon.data = f;
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fx *f = *state;
  if (f->audit) { /* a test that failed half-way */
    rp_recycler_free(f->rec);
    rp_audit_close(f->audit);
  }
  rp_tracker_free(f->tracker);
  rp_config_free(f->config);
  tp_clear(&f->tp);
  nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(f->log);
  free(f);
  return 0;
}

static void
tick_cb(uv_timer_t *t)
{
  (void)t;
}

/* Runs the loop until cond holds (at most 10 s). */
#define RUN_UNTIL(f, cond)                                                     \
  do {                                                                         \
    int64_t end_ = rp_mono_ms() + 10000;                                       \
    uv_timer_start(&(f)->tick, tick_cb, 10, 10);                               \
    while (!(cond)) {                                                          \
      assert_true(rp_mono_ms() < end_);                                        \
      uv_run(&(f)->loop, UV_RUN_ONCE);                                         \
    }                                                                          \
    uv_timer_stop(&(f)->tick);                                                 \
  } while (0)

static void
soon_cb(uv_timer_t *t)
{
  struct fx *f = t->data;
  void (*later)(struct fx *) = f->later;
  f->later = NULL;
  if (later)
    later(f);
}

/* Runs later(f) from the loop, once the current callback has returned. */
static void
do_soon(struct fx *f, void (*later)(struct fx *f))
{
  f->later = later;
  uv_timer_start(&f->soon, soon_cb, 0, 0);
}

/* Every test ends here: nothing in flight, the schedule and the recycler
 * gone, the log closed, the loop closes clean; the provider got back every
 * plan and watch and owes no answer; the log is an intact chain. */
static void
end(struct fx *f)
{
  RUN_UNTIL(f, rp_recycler_in_flight(f->rec) == 0);
  assert_null(f->tp.first);
  assert_false(f->tp.overflow);
  rp_schedule_close(f->schedule);
  f->schedule = NULL;
  uv_close((uv_handle_t *)&f->tick, NULL);
  uv_close((uv_handle_t *)&f->soon, NULL);
  rp_recycler_free(f->rec);
  f->rec = NULL;
  rp_audit_close(f->audit);
  f->audit = NULL;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  assert_int_equal(f->tp.pending, 0);
  assert_int_equal(f->tp.watching, 0);
  assert_int_equal(f->tp.plans, 0);
  assert_int_equal(f->tp.count[TP_RELEASE], f->tp.prepared);
  const char *paths[] = {f->log};
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_verify(paths, 1, NULL, NULL, &err), 0);
}

/* A workload named (and id'd) name that started age_min minutes ago, with
 * its policy's decision; reaper.max-age=max_age when not NULL. */
static struct rp_entry *
add(struct fx *f, const char *name, int64_t age_min, const char *max_age)
{
  struct rp_workload *w = rp_workload_new(
      "local", RP_KIND_CONTAINER, name, name, rp_wall_ms() - age_min * MIN_MS);
  if (max_age)
    json_object_set_new(w->labels, "reaper.max-age", json_string(max_age));
  struct rp_entry *e = rp_tracker_add(f->tracker, &f->tp.p, w);
  rp_policy_decide(f->config, e->w, &e->d);
  assert_non_null(e->d.policy);
  e->state = RP_ENTRY_WAITING;
  e->due_ms = e->d.due_ms;
  return e;
}

static void
offer(struct fx *f, struct rp_entry *e)
{
  rp_recycler_offer(f->rec, e, rp_wall_ms());
}

/* The ids of the workloads prepared, in order, joined by spaces (owned). */
static char *
prepared_order(const struct tp *t)
{
  char *out = rp_xstrdup("");
  for (size_t i = 0; i < t->n_calls; i++) {
    if (t->calls[i].op != TP_PREPARE)
      continue;
    char *n = rp_xasprintf("%s%s%s", out, *out ? " " : "", t->calls[i].id);
    free(out);
    out = n;
  }
  return out;
}

/* The lines of one event in the log, in order (new reference). */
static json_t *
lines_of(const char *log, const char *event)
{
  cleanup_json json_t *all = tp_audit_lines(log);
  json_t *out = json_array();
  size_t i;
  json_t *l;
  json_array_foreach(all, i, l)
  {
    const char *ev = json_string_value(json_object_get(l, "event"));
    if (ev && strcmp(ev, event) == 0)
      json_array_append(out, l);
  }
  return out;
}

static const char *
str_of(const json_t *o, const char *key)
{
  return json_string_value(json_object_get(o, key));
}

/* --- budgets -------------------------------------------------------------- */

static void
test_budget_number(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 30;
  struct rp_entry *e[5];
  for (int i = 0; i < 5; i++) {
    char name[16];
    snprintf(name, sizeof(name), "pair-%d", i);
    e[i] = add(f, name, 61, NULL);
  }
  for (int i = 0; i < 5; i++)
    offer(f, e[i]);
  /* max_unavailable: 2: two go, three wait their turn. */
  assert_int_equal(rp_recycler_in_flight(f->rec), 2);
  assert_int_equal(rp_recycler_waiting(f->rec), 3);
  RUN_UNTIL(f, f->done == 5);
  assert_int_equal(f->max_in_flight, 2);
  assert_int_equal(f->tp.count[TP_STOP], 5);
  assert_int_equal(rp_recycler_stats(f->rec)->done, 5);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(e[i]->state, RP_ENTRY_IDLE);
    /* Not acted on again until it starts anew. */
    assert_int_equal(e[i]->handled_start_ms, e[i]->w->started_ms);
  }
  end(f);
}

static void
test_budget_percent(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 30;
  struct rp_entry *e[9];
  for (int i = 0; i < 9; i++) {
    char name[16];
    snprintf(name, sizeof(name), "quarter-%d", i);
    e[i] = add(f, name, 61, NULL);
  }
  /* Workloads of another policy count for theirs only. */
  for (int i = 0; i < 4; i++) {
    char name[16];
    snprintf(name, sizeof(name), "pair-%d", i);
    add(f, name, 10, NULL);
  }
  for (int i = 0; i < 9; i++)
    offer(f, e[i]);
  /* 25% of the 9 it matches, rounded up: 3. */
  assert_int_equal(rp_recycler_in_flight(f->rec), 3);
  RUN_UNTIL(f, f->done == 9);
  assert_int_equal(f->max_in_flight, 3);
  end(f);
}

/* As the engine's events: a replacement the recycle started is listed at
 * once, beside the old workload (which goes only when its removal's event
 * comes, here never), and matches the same policy. */
static void
list_replacement_at_start(struct tp *t, const struct tp_call *c, void *arg)
{
  struct fx *f = arg;
  (void)t;
  if (c->op != TP_START || strncmp(c->id, "new-", 4) != 0)
    return;
  struct rp_workload *w = rp_workload_new("local", RP_KIND_CONTAINER, c->id,
                                          "rc-replacement", rp_wall_ms());
  struct rp_entry *e = rp_tracker_add(f->tracker, &f->tp.p, w);
  rp_policy_decide(f->config, e->w, &e->d);
  assert_string_equal(e->d.policy->name, "thirty");
  e->state = RP_ENTRY_WAITING;
}

/* A percentage counts workloads, not what the engine lists mid-recycle:
 * ten recreated at 30% never have more than three in flight, though the
 * engine shows a replacement beside each old one (13 containers: 30% of
 * them, rounded up, would let a fourth go). */
static void
test_budget_percent_counts_a_replacement_once(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 20;
  f->tp.delay_ms[TP_START] = 20;
  f->tp.on_call = list_replacement_at_start;
  f->tp.on_call_arg = f;
  struct rp_entry *e[10];
  for (int i = 0; i < 10; i++) {
    char name[16];
    snprintf(name, sizeof(name), "rc-%d", i);
    e[i] = add(f, name, 61 + i, NULL);
  }
  for (int i = 0; i < 10; i++)
    offer(f, e[i]);
  assert_int_equal(rp_recycler_in_flight(f->rec), 3);
  RUN_UNTIL(f, f->done + f->failed == 10);
  assert_int_equal(f->done, 10);
  assert_int_equal(f->tp.created, 10);
  assert_int_equal(f->max_in_flight, 3);
  end(f);
}

/* A workload that depends on another (a namespace it shares, a link, the
 * volumes it takes) is never recycled at the same time as that one: it
 * waits, and the budget goes to the next one meanwhile. */
static void
test_dependents_wait_for_what_they_depend_on(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 30;
  struct rp_entry *a = add(f, "pair-a", 63, NULL);
  struct rp_entry *b = add(f, "pair-b", 62, NULL);
  struct rp_entry *c = add(f, "pair-c", 61, NULL);
  rp_strv_push(&b->w->depends_on, "pair-a"); /* by name */
  offer(f, a);
  offer(f, b);
  offer(f, c);
  /* max_unavailable 2: a and c go; b waits for a. */
  assert_int_equal(rp_recycler_in_flight(f->rec), 2);
  assert_int_equal(rp_recycler_waiting(f->rec), 1);
  assert_int_equal(b->state, RP_ENTRY_DUE);
  RUN_UNTIL(f, f->done == 3);
  cleanup_free char *order = prepared_order(&f->tp);
  assert_string_equal(order, "pair-a pair-c pair-b");
  /* b was prepared only after a's last act (its release, bookkeeping, may
   * come later). */
  int last_a = -1, first_b = -1;
  for (size_t i = 0; i < f->tp.n_calls; i++) {
    enum tp_op op = f->tp.calls[i].op;
    if (strcmp(f->tp.calls[i].id, "pair-a") == 0 && op != TP_RELEASE &&
        op != TP_UNWATCH)
      last_a = (int)i;
    if (first_b < 0 && strcmp(f->tp.calls[i].id, "pair-b") == 0)
      first_b = (int)i;
  }
  assert_true(last_a >= 0 && first_b > last_a);
  end(f);
}

/* --- the due queue, windows ---------------------------------------------- */

static void
test_hard_expired_first_then_most_overdue(void **state)
{
  struct fx *f = *state;
  int64_t now = rp_wall_ms();
  /* Policy one: max_age 1h, hard_max_age 70m, one at a time. */
  struct rp_entry *c = add(f, "one-c", 61, NULL);  /* due 1m ago */
  struct rp_entry *a = add(f, "one-a", 50, "10m"); /* due 40m ago */
  struct rp_entry *d = add(f, "one-d", 50, "30m"); /* due 20m ago */
  struct rp_entry *b = add(f, "one-b", 75, NULL);  /* due 15m ago, hard */
  assert_true(b->d.hard_ms <= now && a->d.hard_ms > now && d->d.hard_ms > now);
  assert_true(a->d.due_ms < d->d.due_ms && d->d.due_ms < b->d.due_ms);
  offer(f, c); /* goes at once; the others queue behind it */
  offer(f, a);
  offer(f, d);
  offer(f, b);
  assert_int_equal(rp_recycler_waiting(f->rec), 3);
  RUN_UNTIL(f, f->done == 4);
  cleanup_free char *order = prepared_order(&f->tp);
  assert_string_equal(order, "one-c one-b one-a one-d");
  end(f);
  cleanup_json json_t *begins = lines_of(f->log, "recycle.begin");
  assert_string_equal(str_of(json_array_get(begins, 1), "name"), "one-b");
}

/* A window holds a due recycle back, until the workload's hard expiry. */
static void
test_window_holds_back_until_hard_expiry(void **state)
{
  struct fx *f = *state;
  int64_t now = rp_wall_ms();
  /* Policy win: max_age 1h, hard_max_age 2h, a window closed now. */
  struct rp_entry *held = add(f, "win-held", 90, NULL);
  struct rp_entry *hard = add(f, "win-hard", 150, NULL);
  /* Past its deadline, held back by the window (which opens in about six
   * hours) until its hard expiry, in half an hour. */
  assert_true(held->d.deadline_ms < now);
  assert_int_equal(held->d.due_ms, held->d.hard_ms);
  assert_true(held->d.due_ms > now + 29 * MIN_MS);
  assert_int_equal(hard->d.due_ms, hard->d.hard_ms);
  assert_true(hard->d.due_ms < now);
  rp_schedule_set(f->schedule, held);
  rp_schedule_set(f->schedule, hard);
  RUN_UNTIL(f, f->done == 1);
  cleanup_free char *order = prepared_order(&f->tp);
  assert_string_equal(order, "win-hard");
  assert_int_equal(held->state, RP_ENTRY_WAITING);
  assert_int_equal(rp_schedule_count(f->schedule), 1);
  assert_int_equal(rp_schedule_next_ms(f->schedule), held->d.due_ms);
  end(f);
}

/* --- retries -------------------------------------------------------------- */

static void
test_retry_backoff_doubles_and_caps(void **state)
{
  struct fx *f = *state;
  tp_fail(&f->tp, TP_STOP, 0, RP_EENGINE, "cannot kill");
  struct rp_entry *e = add(f, "one-x", 61, NULL);
  static const int64_t want_s[] = {15, 30, 60, 120, 240, 480, 900, 900};
  for (int k = 1; k <= 8; k++) {
    rp_schedule_remove(f->schedule, e); /* as the schedule does when due */
    int64_t before = rp_wall_ms();
    offer(f, e);
    RUN_UNTIL(f, f->failed == k);
    int64_t after = rp_wall_ms();
    int64_t delay = want_s[k - 1] * 1000;
    assert_int_equal(e->failures, k);
    assert_int_equal(e->state, RP_ENTRY_WAITING);
    assert_true(e->retry_ms >= before + delay);
    assert_true(e->retry_ms <= after + delay);
    assert_int_equal(e->due_ms, e->retry_ms);
    assert_int_equal(rp_schedule_next_ms(f->schedule), e->retry_ms);
  }
  /* The next attempt succeeds: the slate is clean. */
  f->tp.fail_mask[TP_STOP] = 0;
  rp_schedule_remove(f->schedule, e);
  offer(f, e);
  RUN_UNTIL(f, f->done == 1);
  assert_int_equal(e->failures, 0);
  assert_int_equal(e->retry_ms, 0);
  assert_int_equal(e->state, RP_ENTRY_IDLE);
  assert_int_equal(e->heap_index, RP_NOT_QUEUED);
  end(f);
  /* Each attempt after the first says which it is. */
  cleanup_json json_t *begins = lines_of(f->log, "recycle.begin");
  assert_int_equal(json_array_size(begins), 9);
  assert_null(json_object_get(json_array_get(begins, 0), "attempt"));
  for (size_t i = 1; i < 9; i++)
    assert_int_equal(json_integer_value(
                         json_object_get(json_array_get(begins, i), "attempt")),
                     (json_int_t)i + 1);
  cleanup_json json_t *fails = lines_of(f->log, "recycle.failed");
  assert_int_equal(json_array_size(fails), 8);
  assert_non_null(
      strstr(str_of(json_array_get(fails, 0), "error"), "cannot kill"));
}

/* --- refusals ------------------------------------------------------------ */

/* Offers e once more (as the schedule does when it is due again) and runs
 * until nothing is in flight; then e waits 15 min, no failure counted. */
static void
offer_refused(struct fx *f, struct rp_entry *e)
{
  rp_schedule_remove(f->schedule, e);
  int64_t before = rp_wall_ms();
  offer(f, e);
  RUN_UNTIL(f, rp_recycler_in_flight(f->rec) == 0);
  int64_t after = rp_wall_ms();
  assert_int_equal(e->state, RP_ENTRY_WAITING);
  assert_int_equal(e->failures, 0);
  assert_true(e->retry_ms >= before + 15 * MIN_MS);
  assert_true(e->retry_ms <= after + 15 * MIN_MS);
  assert_int_equal(e->due_ms, e->retry_ms);
  assert_int_equal(rp_schedule_next_ms(f->schedule), e->retry_ms);
}

/* The provider's preparation refuses: no recycle.begin, no failure, no
 * act; recycle.refused once per reason (not again while the reason stays
 * the same, again when it changes), and after a recycle that went past its
 * preparation, a refusal is news again. */
static void
test_refused_at_preparation_once_per_reason(void **state)
{
  struct fx *f = *state;
  static const char a[] = "[\"sidecar-a\"] share its network namespace";
  static const char b[] = "[\"sidecar-b\"] share its network namespace";
  static const char *const reasons[] = {a, a, b, b, a};
  tp_fail(&f->tp, TP_PREPARE, 0, RP_EREFUSED, reasons[0]);
  struct rp_entry *e = add(f, "one-x", 61, NULL);
  static const int said[] = {1, 1, 2, 2, 3};
  for (size_t k = 0; k < RP_ARRAY_LEN(reasons); k++) {
    f->tp.fail_msg[TP_PREPARE] = reasons[k];
    offer_refused(f, e);
    assert_int_equal(f->refused, said[k]);
    assert_string_equal(e->refused, reasons[k]);
  }
  assert_int_equal(f->begun + f->done + f->failed, 0);
  assert_int_equal(rp_recycler_stats(f->rec)->refused, 3);
  assert_int_equal(rp_recycler_stats(f->rec)->failed, 0);
  /* Prepared and released each time, nothing else. */
  assert_int_equal(f->tp.count[TP_PREPARE], 5);
  assert_int_equal(f->tp.n_calls, 10);
  /* The reason goes away: the recycle is done; the same reason after that
   * is said again. */
  f->tp.fail_mask[TP_PREPARE] = 0;
  rp_schedule_remove(f->schedule, e);
  offer(f, e);
  RUN_UNTIL(f, f->done == 1);
  assert_null(e->refused);
  tp_fail(&f->tp, TP_PREPARE, 0, RP_EREFUSED, reasons[0]);
  offer_refused(f, e);
  assert_int_equal(f->refused, 4);
  end(f);
  cleanup_json json_t *refusals = lines_of(f->log, "recycle.refused");
  assert_int_equal(json_array_size(refusals), 4);
  static const char *const logged[] = {reasons[0], reasons[2], reasons[4],
                                       reasons[0]};
  for (size_t i = 0; i < 4; i++) {
    json_t *l = json_array_get(refusals, i);
    /* The words are the refusal's detail; reason is why it was due. */
    assert_string_equal(str_of(l, "detail"), logged[i]);
    assert_string_equal(str_of(l, "reason"), "max_age");
    assert_string_equal(str_of(l, "refused_by"), "provider");
    assert_string_equal(str_of(l, "name"), "one-x");
    assert_string_equal(str_of(l, "policy"), "one");
    assert_string_equal(str_of(l, "strategy"), "stop");
  }
  /* Only the recycle that was done began. */
  cleanup_json json_t *begins = lines_of(f->log, "recycle.begin");
  assert_int_equal(json_array_size(begins), 1);
  cleanup_json json_t *fails = lines_of(f->log, "recycle.failed");
  assert_int_equal(json_array_size(fails), 0);
}

/* A refusal the provider said when it reported the workload (a paused
 * container): the provider is not even asked; once per reason too. */
static void
test_refused_at_tracking_once_per_reason(void **state)
{
  struct fx *f = *state;
  struct rp_entry *e = add(f, "one-x", 61, NULL);
  e->w->refusal = rp_xstrdup("it is paused");
  offer_refused(f, e);
  offer_refused(f, e);
  assert_int_equal(f->refused, 1);
  free(e->w->refusal);
  e->w->refusal = rp_xstrdup("it is paused by another agent");
  offer_refused(f, e);
  assert_int_equal(f->refused, 2);
  assert_int_equal(f->tp.n_calls, 0);
  assert_int_equal(f->begun, 0);
  end(f);
  cleanup_json json_t *refusals = lines_of(f->log, "recycle.refused");
  assert_int_equal(json_array_size(refusals), 2);
  assert_string_equal(str_of(json_array_get(refusals, 0), "detail"),
                      "it is paused");
  assert_string_equal(str_of(json_array_get(refusals, 1), "detail"),
                      "it is paused by another agent");
  assert_string_equal(str_of(json_array_get(refusals, 1), "reason"), "max_age");
}

/* --- a workload gone ------------------------------------------------------ */

static void
forget_victim(struct fx *f)
{
  struct rp_entry *e = rp_tracker_find(f->tracker, "local", f->victim);
  assert_non_null(e);
  rp_tracker_unlink(f->tracker, e);
  /* Being recycled: the recycler keeps it until the recycle ends. */
  assert_true(rp_recycler_forget(f->rec, e));
  assert_true(rp_recycler_busy_with(f->rec, "local", f->victim));
}

static void
forget_at_stop(struct tp *t, const struct tp_call *c, void *arg)
{
  struct fx *f = arg;
  (void)t;
  if (c->op == TP_STOP && strcmp(c->id, f->victim) == 0)
    do_soon(f, forget_victim);
}

static void
test_gone_mid_recycle(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 50;
  f->victim = "pair-1";
  f->tp.on_call = forget_at_stop;
  f->tp.on_call_arg = f;
  offer(f, add(f, "pair-1", 61, NULL));
  RUN_UNTIL(f, f->done + f->failed == 1);
  assert_int_equal(f->done, 1);
  assert_int_equal(rp_tracker_count(f->tracker), 0);
  assert_int_equal(rp_schedule_count(f->schedule), 0);
  assert_false(rp_recycler_busy_with(f->rec, "local", "pair-1"));
  end(f); /* ASan: the recycler freed the entry, once */
}

/* Gone, and its stop failed for it: no retry of what is not there. */
static void
test_gone_mid_recycle_and_failed(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 50;
  tp_fail(&f->tp, TP_STOP, 1, RP_ENOTFOUND, "no such container");
  f->victim = "pair-1";
  f->tp.on_call = forget_at_stop;
  f->tp.on_call_arg = f;
  offer(f, add(f, "pair-1", 61, NULL));
  RUN_UNTIL(f, f->done + f->failed == 1);
  assert_int_equal(f->failed, 1);
  assert_int_equal(rp_schedule_count(f->schedule), 0);
  assert_int_equal(rp_recycler_in_flight(f->rec), 0);
  end(f);
}

/* Gone while its preparation was under way: the preparation, which reads
 * what the engine says now, finds it gone; nothing is done, not even a
 * recycle.begin; recycle.failed says so (rolled back); no retry of what is
 * not there, and the recycler frees the entry once. */
static void
test_gone_before_the_recycle(void **state)
{
  struct fx *f = *state;
  f->victim = "pair-1";
  tp_fail(&f->tp, TP_PREPARE, 1, RP_ENOTFOUND, "no such container: pair-1");
  offer(f, add(f, "pair-1", 61, NULL));
  assert_int_equal(f->tp.count[TP_PREPARE], 1); /* not answered yet */
  forget_victim(f);
  RUN_UNTIL(f, f->failed == 1);
  assert_int_equal(f->tp.n_calls, 2); /* prepare, release: nothing acted */
  assert_int_equal(f->begun, 0);
  assert_int_equal(rp_schedule_count(f->schedule), 0);
  assert_false(rp_recycler_busy_with(f->rec, "local", "pair-1"));
  end(f); /* ASan: the recycler freed the entry, once */
  cleanup_json json_t *fails = lines_of(f->log, "recycle.failed");
  assert_int_equal(json_array_size(fails), 1);
  assert_string_equal(str_of(json_array_get(fails, 0), "error"),
                      "prepare: no such container: pair-1");
  assert_true(
      json_is_true(json_object_get(json_array_get(fails, 0), "rolled_back")));
  cleanup_json json_t *begins = lines_of(f->log, "recycle.begin");
  assert_int_equal(json_array_size(begins), 0);
}

/* Gone while it waited for its policy's budget: it leaves the queue, and
 * the caller frees it. */
static void
test_gone_while_waiting(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 30;
  struct rp_entry *a = add(f, "one-a", 62, NULL);
  struct rp_entry *b = add(f, "one-b", 61, NULL);
  offer(f, a);
  offer(f, b);
  assert_int_equal(rp_recycler_waiting(f->rec), 1);
  rp_tracker_unlink(f->tracker, b);
  assert_false(rp_recycler_forget(f->rec, b));
  rp_entry_free(b);
  assert_int_equal(rp_recycler_waiting(f->rec), 0);
  RUN_UNTIL(f, f->done == 1);
  cleanup_free char *order = prepared_order(&f->tp);
  assert_string_equal(order, "one-a");
  end(f);
}

/* --- stopping ------------------------------------------------------------- */

static void
idle_cb(void *arg)
{
  struct fx *f = arg;
  f->idle++;
}

static void
drain_now(struct fx *f)
{
  rp_recycler_drain(f->rec, idle_cb, f);
  assert_int_equal(f->idle, 0); /* one is in flight */
}

static void
drain_at_first_stop(struct tp *t, const struct tp_call *c, void *arg)
{
  struct fx *f = arg;
  if (c->op == TP_STOP && t->count[TP_STOP] == 1)
    do_soon(f, drain_now);
}

/* Stopping: the recycle in flight finishes, the due ones never start. */
static void
test_drain_at_stop(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 50;
  f->tp.on_call = drain_at_first_stop;
  f->tp.on_call_arg = f;
  struct rp_entry *a = add(f, "one-a", 63, NULL);
  struct rp_entry *b = add(f, "one-b", 62, NULL);
  struct rp_entry *c = add(f, "one-c", 61, NULL);
  offer(f, a);
  offer(f, b);
  offer(f, c);
  RUN_UNTIL(f, f->idle == 1);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->tp.count[TP_PREPARE], 1);
  assert_int_equal(a->state, RP_ENTRY_IDLE);
  assert_int_equal(b->state, RP_ENTRY_WAITING);
  assert_int_equal(c->state, RP_ENTRY_WAITING);
  assert_int_equal(rp_recycler_waiting(f->rec), 0);
  rp_recycler_pump(f->rec); /* nothing starts any more */
  assert_int_equal(rp_recycler_in_flight(f->rec), 0);
  end(f);
  assert_int_equal(f->idle, 1);
  assert_int_equal(f->tp.count[TP_PREPARE], 1);
}

/* Stopping while a recycle's preparation is under way: that recycle is in
 * flight (its provider was asked), so it goes on as any in flight does,
 * recycle.begin once the preparation is back, and finishes; the due one
 * behind it never starts. */
static void
test_drain_while_preparing(void **state)
{
  struct fx *f = *state;
  struct rp_entry *a = add(f, "one-a", 62, NULL);
  struct rp_entry *b = add(f, "one-b", 61, NULL);
  offer(f, a);
  offer(f, b);
  assert_int_equal(f->tp.count[TP_PREPARE], 1); /* a's, not answered yet */
  assert_int_equal(f->begun, 0);
  rp_recycler_drain(f->rec, idle_cb, f);
  assert_int_equal(f->idle, 0);
  RUN_UNTIL(f, f->idle == 1);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->tp.count[TP_PREPARE], 1);
  assert_int_equal(f->tp.count[TP_STOP], 1);
  assert_int_equal(a->state, RP_ENTRY_IDLE);
  assert_int_equal(b->state, RP_ENTRY_WAITING);
  assert_int_equal(rp_schedule_count(f->schedule), 0);
  end(f);
  cleanup_json json_t *begins = lines_of(f->log, "recycle.begin");
  assert_int_equal(json_array_size(begins), 1);
  assert_string_equal(str_of(json_array_get(begins, 0), "name"), "one-a");
}

static void
drain_and_cancel(struct fx *f)
{
  rp_recycler_drain(f->rec, idle_cb, f);
  /* The agent's wait ran out: its providers stop, cancelling. */
  tp_stop(&f->tp);
}

static void
cancel_at_first_stop(struct tp *t, const struct tp_call *c, void *arg)
{
  struct fx *f = arg;
  if (c->op == TP_STOP && t->count[TP_STOP] == 1)
    do_soon(f, drain_and_cancel);
}

/* The provider stops under a recycle in flight: it ends, failed, once; no
 * retry is scheduled for an agent that stops. */
static void
test_cancelled_at_stop(void **state)
{
  struct fx *f = *state;
  f->tp.delay_ms[TP_STOP] = 60000;
  f->tp.on_call = cancel_at_first_stop;
  f->tp.on_call_arg = f;
  struct rp_entry *a = add(f, "one-a", 62, NULL);
  struct rp_entry *b = add(f, "one-b", 61, NULL);
  offer(f, a);
  offer(f, b);
  RUN_UNTIL(f, f->idle == 1);
  assert_int_equal(f->failed, 1);
  assert_int_equal(f->tp.count[TP_PREPARE], 1);
  assert_int_equal(a->state, RP_ENTRY_WAITING);
  assert_int_equal(rp_schedule_count(f->schedule), 0);
  end(f);
  cleanup_json json_t *fails = lines_of(f->log, "recycle.failed");
  assert_non_null(strstr(str_of(json_array_get(fails, 0), "error"),
                         "provider local is stopping"));
}

/* --- dry run -------------------------------------------------------------- */

/* A dry run plans every due workload (recycle.planned), budget or not, and
 * asks nothing of the provider, even when they are let go together (after
 * the gate opened, say). */
static void
test_dry_run_plans_and_calls_nothing(void **state)
{
  struct fx *f = *state;
  make_recycler(f, true);
  struct rp_entry *e[3] = {add(f, "one-a", 63, NULL), add(f, "one-b", 62, NULL),
                           add(f, "one-c", 61, NULL)};
  f->gate_closed = true;
  for (int i = 0; i < 3; i++)
    offer(f, e[i]);
  assert_int_equal(rp_recycler_waiting(f->rec), 3);
  f->gate_closed = false;
  rp_recycler_pump(f->rec);
  RUN_UNTIL(f, f->planned == 3);
  assert_int_equal(rp_recycler_waiting(f->rec), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(e[i]->state, RP_ENTRY_PLANNED);
    assert_int_equal(e[i]->handled_start_ms, e[i]->w->started_ms);
  }
  assert_int_equal(rp_recycler_stats(f->rec)->planned, 3);
  assert_int_equal(rp_recycler_stats(f->rec)->started, 0);
  end(f);
  assert_int_equal(f->tp.n_calls, 0);
  cleanup_json json_t *plans = lines_of(f->log, "recycle.planned");
  assert_int_equal(json_array_size(plans), 3);
  json_t *p = json_array_get(plans, 0);
  assert_string_equal(str_of(p, "strategy"), "stop");
  assert_string_equal(str_of(p, "policy"), "one");
  assert_non_null(json_object_get(p, "lateness_s"));
  cleanup_json json_t *begins = lines_of(f->log, "recycle.begin");
  assert_int_equal(json_array_size(begins), 0);
}

/* --- the audit log -------------------------------------------------------- */

static void
healed_cb(void *arg, struct rp_error *err)
{
  struct fx *f = arg;
  assert_null(err);
  f->healed = true;
}

/* The audit log cannot be written: the recycle whose recycle.begin failed
 * does nothing after its preparation, which only read (and is retried
 * later); nothing else starts while the log is failed; once it is back,
 * due work goes. */
static void
test_fails_closed_without_audit(void **state)
{
  struct fx *f = *state;
  struct rp_entry *a = add(f, "pair-a", 61, NULL);
  struct rp_entry *b = add(f, "pair-b", 61, NULL);
  rp_audit_inject_fault(f->audit, EIO, 0, false);
  offer(f, a);
  RUN_UNTIL(f,
            !rp_audit_healthy(f->audit) && rp_recycler_in_flight(f->rec) == 0);
  /* Prepared (read only) and released: nothing acted. */
  assert_int_equal(f->tp.n_calls, 2);
  assert_int_equal(f->tp.calls[0].op, TP_PREPARE);
  assert_int_equal(f->tp.calls[1].op, TP_RELEASE);
  assert_int_equal(a->state, RP_ENTRY_WAITING);
  assert_true(a->due_ms > rp_wall_ms()); /* later */
  assert_int_equal(rp_schedule_next_ms(f->schedule), a->due_ms);
  int begun = f->begun;
  offer(f, b);
  assert_int_equal(f->begun, begun); /* not even tried */
  assert_int_equal(rp_recycler_waiting(f->rec), 1);
  assert_int_equal(rp_recycler_in_flight(f->rec), 0);
  /* The disk works again; the agent reopens the log, then pumps. */
  rp_audit_inject_fault(f->audit, 0, 0, false);
  assert_int_equal(rp_audit_retry(f->audit, &f->loop, healed_cb, f), 0);
  RUN_UNTIL(f, f->healed);
  rp_recycler_pump(f->rec);
  RUN_UNTIL(f, f->done == 1);
  cleanup_free char *order = prepared_order(&f->tp);
  assert_string_equal(order, "pair-a pair-b");
  end(f);
  /* On disk: the log came back, then b's recycle; a's begin never was. */
  cleanup_json json_t *all = tp_audit_lines(f->log);
  assert_string_equal(str_of(json_array_get(all, 0), "event"), "audit.resumed");
  cleanup_json json_t *begins = lines_of(f->log, "recycle.begin");
  assert_int_equal(json_array_size(begins), 1);
  assert_string_equal(str_of(json_array_get(begins, 0), "name"), "pair-b");
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_budget_number),
      T(test_budget_percent),
      T(test_budget_percent_counts_a_replacement_once),
      T(test_dependents_wait_for_what_they_depend_on),
      T(test_hard_expired_first_then_most_overdue),
      T(test_window_holds_back_until_hard_expiry),
      T(test_retry_backoff_doubles_and_caps),
      T(test_gone_mid_recycle),
      T(test_gone_mid_recycle_and_failed),
      T(test_refused_at_preparation_once_per_reason),
      T(test_refused_at_tracking_once_per_reason),
      T(test_gone_before_the_recycle),
      T(test_gone_while_waiting),
      T(test_drain_at_stop),
      T(test_drain_while_preparing),
      T(test_cancelled_at_stop),
      T(test_dry_run_plans_and_calls_nothing),
      T(test_fails_closed_without_audit),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
