/* Notifications: the events filter, the JSON a sink receives, the advance
 * notices (recycle.upcoming: times, once per life of a workload), and
 * delivery to real sinks on a real loop: commands run by /bin/sh, and
 * webhooks POSTed to a small HTTP peer served by the same loop.  Sinks are
 * made from YAML by the real configuration parser.  Every test that runs
 * the loop ends by checking that it closes with nothing left open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "metrics.h"
#include "notify.h"
#include "plan.h"
#include "policy.h"
#include "tracker.h"
#include "util.h"

#define MIN_MS INT64_C(60000)

/* ---- helpers ---- */

static struct rp_config *
config_from(const char *notify_yaml)
{
  cleanup_free char *yaml =
      rp_xasprintf("agent: { listen: \"\" }\n"
                   "providers: [{ name: local, type: docker }]\n"
                   "policies: [{ name: p, max_age: 1h }]\n"
                   "%s",
                   notify_yaml);
  struct rp_config *c = NULL;
  struct rp_error *err = NULL;
  int rc = rp_config_parse("test.yaml", yaml, strlen(yaml), &c, &err);
  if (rc != 0)
    fail_msg("config: %s", err->message);
  return c;
}

/* Every event the notifier was given, as its body. */
struct tap {
  json_t *events; /* owned array */
};

static void
tap_cb(void *arg, const char *event, json_t *body)
{
  struct tap *t = arg;
  (void)event;
  json_array_append_new(t->events, json_deep_copy(body));
}

static json_t *
tap_get(struct tap *t, size_t i)
{
  return json_array_get(t->events, i);
}

static const char *
str_of(json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

static json_int_t
int_of(json_t *o, const char *k)
{
  return json_integer_value(json_object_get(o, k));
}

static json_int_t
stat_of(struct rp_notifier *n, const char *sink, const char *what)
{
  cleanup_json json_t *st = rp_notify_stats(n);
  size_t i;
  json_t *s;
  json_array_foreach(st, i, s)
  {
    if (strcmp(str_of(s, "sink"), sink) == 0)
      return int_of(s, what);
  }
  return -1;
}

static void
wake_cb(uv_timer_t *t)
{
  (void)t;
}

/* Runs the loop until cond holds or timeout_ms pass; returns cond. */
static bool
run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg, int64_t timeout_ms)
{
  uv_timer_t wake;
  uv_timer_init(loop, &wake);
  uv_timer_start(&wake, wake_cb, 10, 10);
  int64_t end = rp_mono_ms() + timeout_ms;
  bool ok;
  while (!(ok = cond(arg)) && rp_mono_ms() < end)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&wake, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

/* Closes the notifier and checks that the loop then closes cleanly. */
static void
close_and_check(uv_loop_t *loop, struct rp_notifier *n)
{
  rp_notify_close(n);
  int64_t end = rp_mono_ms() + 10000;
  while (uv_run(loop, UV_RUN_ONCE) != 0 && rp_mono_ms() < end)
    ;
  assert_int_equal(uv_loop_close(loop), 0);
}

static char *
slurp(const char *path)
{
  cleanup_fclose FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char *buf = NULL;
  size_t cap = 0;
  ssize_t n = getdelim(&buf, &cap, '\0', f);
  if (n < 0) {
    free(buf);
    return rp_xstrdup("");
  }
  return buf;
}

/* ---- filter and body ---- */

/* An owned NULL-terminated list of the arguments (up to the NULL), as the
 * configuration holds events. */
static char **
strv(const char *first, ...)
{
  char **v = rp_xcalloc(16, sizeof(*v));
  va_list ap;
  va_start(ap, first);
  size_t i = 0;
  for (const char *s = first; s && i < 15; s = va_arg(ap, const char *))
    v[i++] = rp_xstrdup(s);
  va_end(ap);
  return v;
}

static void
strv_free(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static void
test_filter_default(void **state)
{
  (void)state;
  /* No events: list: every recycle.* event, the advance notice included,
   * and nothing else. */
  const char *yes[] = {"recycle.begin",     "recycle.done",
                       "recycle.failed",    "recycle.planned",
                       "recycle.recovered", "recycle.upcoming"};
  for (size_t i = 0; i < RP_ARRAY_LEN(yes); i++)
    assert_true(rp_notify_matches(NULL, yes[i]));
  assert_false(rp_notify_matches(NULL, "agent.start"));
  assert_false(rp_notify_matches(NULL, "config.reload"));
  assert_false(rp_notify_matches(NULL, "audit.checkpoint"));
  assert_false(rp_notify_matches(NULL, NULL));
  /* The runner's per-step lines are the audit trail's, not a sink's. */
  assert_false(rp_notify_matches(NULL, "recycle.step"));
}

static void
test_filter_lists(void **state)
{
  (void)state;
  char **only_failed = strv("recycle.failed", NULL);
  assert_true(rp_notify_matches(only_failed, "recycle.failed"));
  assert_false(rp_notify_matches(only_failed, "recycle.done"));
  assert_false(rp_notify_matches(only_failed, "recycle.upcoming"));
  assert_false(rp_notify_matches(only_failed, "recycle.failedX"));

  char **prefix = strv("agent.*", "recycle.upcoming", NULL);
  assert_true(rp_notify_matches(prefix, "agent.start"));
  assert_true(rp_notify_matches(prefix, "agent.stop"));
  assert_true(rp_notify_matches(prefix, "recycle.upcoming"));
  assert_false(rp_notify_matches(prefix, "recycle.begin"));
  assert_false(rp_notify_matches(prefix, "agentX.start"));
  assert_false(rp_notify_matches(prefix, "agent"));

  char **all = strv("*", NULL);
  assert_true(rp_notify_matches(all, "config.reload"));
  assert_true(rp_notify_matches(all, "recycle.done"));

  /* recycle.step only when named: "*" and "recycle.*" leave it out. */
  assert_false(rp_notify_matches(all, "recycle.step"));
  char **recycles = strv("recycle.*", NULL);
  assert_true(rp_notify_matches(recycles, "recycle.failed"));
  assert_false(rp_notify_matches(recycles, "recycle.step"));
  char **steps = strv("recycle.step", NULL);
  assert_true(rp_notify_matches(steps, "recycle.step"));
  strv_free(recycles);
  strv_free(steps);

  char **none = strv(NULL);
  assert_false(rp_notify_matches(none, "recycle.done"));
  strv_free(only_failed);
  strv_free(prefix);
  strv_free(all);
  strv_free(none);
}

static void
test_body(void **state)
{
  (void)state;
  cleanup_json json_t *fields = json_pack(
      "{s:s, s:s, s:I, s:s, s:s}", "provider", "local", "name", "web-1",
      "age_s", (json_int_t)7201, "event", "forged", "ts", "forged");
  /* 2026-11-24T23:09:18.123Z */
  cleanup_json json_t *b =
      rp_notify_body("recycle.done", fields, INT64_C(1795561758123));
  cleanup_free char *text = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
  assert_string_equal(text, "{\"event\":\"recycle.done\","
                            "\"ts\":\"2026-11-24T23:09:18.123Z\","
                            "\"provider\":\"local\",\"name\":\"web-1\","
                            "\"age_s\":7201}");
  cleanup_json json_t *bare = rp_notify_body("agent.stop", NULL, 0);
  assert_int_equal(json_object_size(bare), 2);
  assert_string_equal(str_of(bare, "event"), "agent.stop");
}

/* ---- advance notices ---- */

static struct rp_notify_upcoming
upcoming(const char *id, int64_t started, int64_t due, int64_t before)
{
  return (struct rp_notify_upcoming){
      .provider = "local",
      .kind = RP_KIND_CONTAINER,
      .id = id,
      .name = id,
      .policy = "web",
      .started_ms = started,
      .due_ms = due,
      .max_age_ms = due - started,
      .before_ms = before,
  };
}

struct notices {
  uv_loop_t loop;
  struct rp_notifier *n;
  struct tap tap;
};

static int
notices_setup(void **state)
{
  struct notices *w = rp_xcalloc(1, sizeof(*w));
  uv_loop_init(&w->loop);
  w->n = rp_notify_new(&w->loop, NULL, false);
  w->tap.events = json_array();
  rp_notify_set_tap(w->n, tap_cb, &w->tap);
  *state = w;
  return 0;
}

static int
notices_teardown(void **state)
{
  struct notices *w = *state;
  close_and_check(&w->loop, w->n);
  json_decref(w->tap.events);
  free(w);
  return 0;
}

static void
test_upcoming_times(void **state)
{
  struct notices *w = *state;
  const int64_t t0 = INT64_C(1795561758000);
  struct rp_notify_upcoming a =
      upcoming("a", t0, t0 + 60 * MIN_MS, 40 * MIN_MS);
  struct rp_notify_upcoming b = upcoming("b", t0, t0 + 30 * MIN_MS, 5 * MIN_MS);
  struct rp_notify_upcoming c =
      upcoming("c", t0, t0 + 20 * MIN_MS, 15 * MIN_MS);
  rp_notify_upcoming_set(w->n, &a);
  rp_notify_upcoming_set(w->n, &b);
  rp_notify_upcoming_set(w->n, &c);
  assert_int_equal(rp_notify_upcoming_count(w->n), 3);
  /* Notices at due - before: c at 5m, a at 20m, b at 25m. */
  assert_int_equal(rp_notify_upcoming_next_ms(w->n), t0 + 5 * MIN_MS);

  rp_notify_tick(w->n, t0 + 5 * MIN_MS - 1);
  assert_int_equal(json_array_size(w->tap.events), 0);
  rp_notify_tick(w->n, t0 + 5 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 1);
  json_t *e = tap_get(&w->tap, 0);
  assert_string_equal(str_of(e, "event"), "recycle.upcoming");
  assert_string_equal(str_of(e, "provider"), "local");
  assert_string_equal(str_of(e, "kind"), "container");
  assert_string_equal(str_of(e, "id"), "c");
  assert_string_equal(str_of(e, "name"), "c");
  assert_string_equal(str_of(e, "policy"), "web");
  assert_string_equal(str_of(e, "due"), "2026-11-24T23:29:18.000Z");
  assert_string_equal(str_of(e, "started_at"), "2026-11-24T23:09:18.000Z");
  assert_int_equal(int_of(e, "max_age_s"), 20 * 60);
  assert_int_equal(int_of(e, "age_s"), 5 * 60);
  assert_int_equal(int_of(e, "due_in_s"), 15 * 60);
  assert_int_equal(int_of(e, "notify_before_s"), 15 * 60);
  assert_null(json_object_get(e, "dry_run"));
  assert_int_equal(rp_notify_upcoming_next_ms(w->n), t0 + 20 * MIN_MS);

  /* A late tick sends everything due, earliest first. */
  rp_notify_tick(w->n, t0 + 28 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 3);
  assert_string_equal(str_of(tap_get(&w->tap, 1), "id"), "a");
  assert_string_equal(str_of(tap_get(&w->tap, 2), "id"), "b");
  assert_int_equal(int_of(tap_get(&w->tap, 2), "due_in_s"), 2 * 60);
  assert_int_equal(rp_notify_upcoming_next_ms(w->n), INT64_MAX);
  /* Sent notices are remembered (once per life), not pending. */
  assert_int_equal(rp_notify_upcoming_count(w->n), 3);
}

static void
test_upcoming_once_per_life(void **state)
{
  struct notices *w = *state;
  const int64_t t0 = INT64_C(1795561758000);
  struct rp_notify_upcoming a =
      upcoming("a", t0, t0 + 60 * MIN_MS, 10 * MIN_MS);
  rp_notify_upcoming_set(w->n, &a);
  rp_notify_tick(w->n, t0 + 50 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 1);

  /* The same decision again (a re-list, a reload): nothing more. */
  rp_notify_upcoming_set(w->n, &a);
  rp_notify_tick(w->n, t0 + 51 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 1);
  assert_int_equal(rp_notify_upcoming_next_ms(w->n), INT64_MAX);

  /* A reload that moves the due time by under a minute: still nothing. */
  a.due_ms += 50 * 1000;
  rp_notify_upcoming_set(w->n, &a);
  rp_notify_tick(w->n, t0 + 52 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 1);

  /* Moved by more than a minute: the last notice is wrong, a new one goes
   * at the new time. */
  a.due_ms = t0 + 70 * MIN_MS;
  rp_notify_upcoming_set(w->n, &a);
  assert_int_equal(rp_notify_upcoming_next_ms(w->n), t0 + 60 * MIN_MS);
  rp_notify_tick(w->n, t0 + 59 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 1);
  rp_notify_tick(w->n, t0 + 60 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 2);
  assert_string_equal(str_of(tap_get(&w->tap, 1), "due"),
                      "2026-11-25T00:19:18.000Z");

  /* A new life (it started again): a new notice. */
  struct rp_notify_upcoming a2 =
      upcoming("a", t0 + 80 * MIN_MS, t0 + 140 * MIN_MS, 10 * MIN_MS);
  rp_notify_upcoming_set(w->n, &a2);
  assert_int_equal(rp_notify_upcoming_next_ms(w->n), t0 + 130 * MIN_MS);
  rp_notify_tick(w->n, t0 + 130 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 3);
  assert_int_equal(int_of(tap_get(&w->tap, 2), "age_s"), 50 * 60);
  assert_int_equal(rp_notify_upcoming_count(w->n), 1);
}

static void
test_upcoming_late_and_removed(void **state)
{
  struct notices *w = *state;
  const int64_t t0 = INT64_C(1795561758000);
  /* Seen first inside its notice period: sent at the next tick. */
  struct rp_notify_upcoming a =
      upcoming("a", t0, t0 + 60 * MIN_MS, 10 * MIN_MS);
  /* Seen first when already due: no advance notice, its recycle begins. */
  struct rp_notify_upcoming b =
      upcoming("b", t0, t0 + 30 * MIN_MS, 10 * MIN_MS);
  /* Gone before its notice. */
  struct rp_notify_upcoming c =
      upcoming("c", t0, t0 + 90 * MIN_MS, 10 * MIN_MS);
  /* Its policy stopped asking for notices. */
  struct rp_notify_upcoming d =
      upcoming("d", t0, t0 + 90 * MIN_MS, 10 * MIN_MS);
  rp_notify_upcoming_set(w->n, &a);
  rp_notify_upcoming_set(w->n, &b);
  rp_notify_upcoming_set(w->n, &c);
  rp_notify_upcoming_set(w->n, &d);
  rp_notify_upcoming_remove(w->n, "local", "c");
  rp_notify_upcoming_remove(w->n, "other", "d"); /* another provider's d */
  d.before_ms = 0;
  rp_notify_upcoming_set(w->n, &d);
  assert_int_equal(rp_notify_upcoming_count(w->n), 2);

  rp_notify_tick(w->n, t0 + 55 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 1);
  json_t *e = tap_get(&w->tap, 0);
  assert_string_equal(str_of(e, "id"), "a");
  assert_int_equal(int_of(e, "due_in_s"), 5 * 60);
  rp_notify_tick(w->n, t0 + 100 * MIN_MS);
  assert_int_equal(json_array_size(w->tap.events), 1);
  assert_int_equal(rp_notify_upcoming_next_ms(w->n), INT64_MAX);
}

static void
test_upcoming_many(void **state)
{
  struct notices *w = *state;
  const int64_t t0 = INT64_C(1795561758000);
  /* Enough to grow the hash and the heap; notices in a scrambled order
   * come out in time order. */
  enum { N = 500 };
  for (int i = 0; i < N; i++) {
    char id[16];
    snprintf(id, sizeof(id), "w%d", i);
    int64_t due = t0 + MIN_MS * (10 + (i * 7919) % N);
    struct rp_notify_upcoming u = upcoming(id, t0, due, 5 * MIN_MS);
    rp_notify_upcoming_set(w->n, &u);
  }
  for (int i = 0; i < N; i += 2) {
    char id[16];
    snprintf(id, sizeof(id), "w%d", i);
    rp_notify_upcoming_remove(w->n, "local", id);
  }
  assert_int_equal(rp_notify_upcoming_count(w->n), N / 2);
  int64_t last = 0;
  for (int64_t t = t0; t <= t0 + MIN_MS * (N + 10); t += MIN_MS) {
    size_t before = json_array_size(w->tap.events);
    rp_notify_tick(w->n, t);
    for (size_t k = before; k < json_array_size(w->tap.events); k++) {
      int64_t due;
      assert_int_equal(
          rp_parse_time_ms(str_of(tap_get(&w->tap, k), "due"), &due), 0);
      assert_true(due >= last);
      assert_true(due - 5 * MIN_MS <= t);
      last = due;
    }
  }
  assert_int_equal(json_array_size(w->tap.events), N / 2);
}

static void
test_upcoming_dry_run(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct rp_notifier *n = rp_notify_new(&loop, NULL, true);
  struct tap t = {json_array()};
  rp_notify_set_tap(n, tap_cb, &t);
  const int64_t t0 = INT64_C(1795561758000);
  struct rp_notify_upcoming a =
      upcoming("a", t0, t0 + 60 * MIN_MS, 10 * MIN_MS);
  rp_notify_upcoming_set(n, &a);
  rp_notify_tick(n, t0 + 50 * MIN_MS);
  assert_int_equal(json_array_size(t.events), 1);
  assert_true(json_is_true(json_object_get(tap_get(&t, 0), "dry_run")));
  close_and_check(&loop, n);
  json_decref(t.events);
}

/* ---- delivery: commands ---- */

struct world {
  uv_loop_t loop;
  struct rp_notifier *n;
  char dir[64];
};

static int
world_setup(void **state)
{
  struct world *w = rp_xcalloc(1, sizeof(*w));
  uv_loop_init(&w->loop);
  snprintf(w->dir, sizeof(w->dir), "/tmp/rp-notify.XXXXXX");
  assert_non_null(mkdtemp(w->dir));
  *state = w;
  return 0;
}

static int
world_teardown(void **state)
{
  struct world *w = *state;
  cleanup_free char *cmd = rp_xasprintf("rm -rf %s", w->dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", w->dir);
  free(w);
  return 0;
}

struct wait_stat {
  struct rp_notifier *n;
  const char *sink, *what;
  json_int_t want;
};

static bool
stat_reached(void *arg)
{
  struct wait_stat *ws = arg;
  return stat_of(ws->n, ws->sink, ws->what) >= ws->want;
}

static bool
wait_stat(struct world *w, const char *sink, const char *what, json_int_t want,
          int64_t timeout_ms)
{
  struct wait_stat ws = {w->n, sink, what, want};
  return run_until(&w->loop, stat_reached, &ws, timeout_ms);
}

static void
test_command_gets_json_on_stdin(void **state)
{
  struct world *w = *state;
  cleanup_free char *yaml = rp_xasprintf(
      "notify:\n"
      "  - command: [/bin/sh, -c, 'cat > %s/in; printf %%s \"$REAPER_EVENT\" "
      "> %s/env; env | grep -v -e ^PWD= -e ^SHLVL= -e ^_= | sort > %s/all']\n"
      "    events: [recycle.done]\n",
      w->dir, w->dir, w->dir);
  struct rp_config *c = config_from(yaml);
  w->n = rp_notify_new(&w->loop, c, false);
  rp_config_free(c); /* the notifier keeps its own copy */
  cleanup_json json_t *f = json_pack("{s:s, s:s, s:s}", "provider", "local",
                                     "name", "web-1", "replacement_id", "r2");
  rp_notify_event(w->n, "recycle.begin", f); /* filtered out */
  rp_notify_event(w->n, "recycle.done", f);
  assert_true(wait_stat(w, "command[0]", "sent", 1, 5000));
  assert_int_equal(stat_of(w->n, "command[0]", "failed"), 0);

  cleanup_free char *in_path = rp_xasprintf("%s/in", w->dir);
  cleanup_free char *in = slurp(in_path);
  assert_non_null(in);
  json_error_t jerr;
  cleanup_json json_t *got = json_loads(in, 0, &jerr);
  assert_non_null(got);
  assert_string_equal(str_of(got, "event"), "recycle.done");
  assert_string_equal(str_of(got, "name"), "web-1");
  assert_string_equal(str_of(got, "replacement_id"), "r2");
  assert_non_null(str_of(got, "ts"));
  cleanup_free char *env_path = rp_xasprintf("%s/env", w->dir);
  cleanup_free char *env = slurp(env_path);
  assert_string_equal(env, "recycle.done");
  /* A minimal environment: nothing of reaper's own leaks to the program. */
  cleanup_free char *all_path = rp_xasprintf("%s/all", w->dir);
  cleanup_free char *all = slurp(all_path);
  assert_string_equal(
      all, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
           "REAPER_EVENT=recycle.done\n");
  close_and_check(&w->loop, w->n);
}

static void
test_command_retries_then_fails(void **state)
{
  struct world *w = *state;
  cleanup_free char *yaml = rp_xasprintf(
      "notify:\n"
      "  - command: [/bin/sh, -c, 'echo attempt >> %s/count; exit 3']\n"
      "    retries: 2\n"
      "  - command: [/nonexistent/program]\n",
      w->dir);
  struct rp_config *c = config_from(yaml);
  w->n = rp_notify_new(&w->loop, c, false);
  rp_config_free(c);
  rp_notify_set_limits(w->n, &(struct rp_notify_limits){.backoff_ms = 20});
  rp_notify_event(w->n, "recycle.failed", NULL);
  assert_true(wait_stat(w, "command[0]", "failed", 1, 5000));
  assert_int_equal(stat_of(w->n, "command[0]", "retried"), 2);
  assert_int_equal(stat_of(w->n, "command[0]", "sent"), 0);
  cleanup_free char *p = rp_xasprintf("%s/count", w->dir);
  cleanup_free char *count = slurp(p);
  assert_string_equal(count, "attempt\nattempt\nattempt\n");
  /* A program that does not exist is not tried again. */
  assert_true(wait_stat(w, "command[1]", "failed", 1, 5000));
  assert_int_equal(stat_of(w->n, "command[1]", "retried"), 0);
  close_and_check(&w->loop, w->n);
}

static void
test_command_timeout(void **state)
{
  struct world *w = *state;
  struct rp_config *c = config_from("notify:\n"
                                    "  - command: [/bin/sleep, '30']\n"
                                    "    timeout: 200ms\n"
                                    "    retries: 0\n");
  w->n = rp_notify_new(&w->loop, c, false);
  rp_config_free(c);
  int64_t t = rp_mono_ms();
  rp_notify_event(w->n, "recycle.begin", NULL);
  assert_true(wait_stat(w, "command[0]", "failed", 1, 5000));
  assert_true(rp_mono_ms() - t < 3000);
  close_and_check(&w->loop, w->n);
}

/* A receiver that never keeps up: the queue keeps the newest, drops the
 * oldest, and a stop neither waits for it beyond the flush bound nor
 * loses count. */
static void
test_queue_bound_and_stop(void **state)
{
  struct world *w = *state;
  struct rp_config *c = config_from("notify:\n"
                                    "  - command: [/bin/sleep, '30']\n"
                                    "    retries: 0\n");
  w->n = rp_notify_new(&w->loop, c, false);
  rp_config_free(c);
  rp_notify_set_limits(
      w->n, &(struct rp_notify_limits){.queue_max = 3, .flush_ms = 300});
  rp_notify_event(w->n, "recycle.begin", NULL);
  uv_run(&w->loop, UV_RUN_NOWAIT); /* the first one is in flight */
  for (int i = 1; i < 10; i++)
    rp_notify_event(w->n, "recycle.begin", NULL);
  /* One in flight (sleeping), three waiting, six dropped. */
  assert_int_equal(stat_of(w->n, "command[0]", "dropped"), 6);
  assert_int_equal(stat_of(w->n, "command[0]", "sent"), 0);
  int64_t t = rp_mono_ms();
  close_and_check(&w->loop, w->n);
  /* The flush bound, then the kill: not the program's 30 s. */
  assert_true(rp_mono_ms() - t < 3000);
}

/* ---- delivery: webhooks ---- */

/* A small HTTP/1.1 peer on loopback: it reads one request per connection
 * (headers and a Content-Length body), records it, and answers with the
 * next status of its script (200 once the script is used up). */
struct peer {
  uv_tcp_t server;
  int port;
  int statuses[8];
  size_t n_statuses, next_status;
  json_t *bodies;  /* owned array of the bodies received */
  json_t *headers; /* owned array of X-Reaper-Event values */
};

struct pconn {
  uv_tcp_t tcp;
  struct peer *p;
  char buf[16384];
  size_t len;
  bool answered;
  uv_write_t wr;
  char answer[128];
};

static void
pconn_closed_cb(uv_handle_t *h)
{
  free(h->data);
}

static void
peer_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  struct pconn *c = h->data;
  (void)suggested;
  buf->base = c->buf + c->len;
  buf->len = sizeof(c->buf) - 1 - c->len;
}

static void
peer_written_cb(uv_write_t *req, int status)
{
  (void)status;
  struct pconn *c = req->data;
  uv_close((uv_handle_t *)&c->tcp, pconn_closed_cb);
}

static void
peer_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
  struct pconn *c = st->data;
  (void)buf;
  if (n < 0) {
    if (!c->answered)
      uv_close((uv_handle_t *)&c->tcp, pconn_closed_cb);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  char *end = strstr(c->buf, "\r\n\r\n");
  if (!end || c->answered)
    return;
  const char *cl = strcasestr(c->buf, "\r\nContent-Length:");
  size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
  if (c->len < (size_t)(end + 4 - c->buf) + want)
    return;
  struct peer *p = c->p;
  json_array_append_new(p->bodies, json_stringn(end + 4, want));
  const char *ev = strcasestr(c->buf, "\r\nX-Reaper-Event: ");
  json_array_append_new(p->headers,
                        ev ? json_stringn(ev + 18, strcspn(ev + 18, "\r"))
                           : json_null());
  int status =
      p->next_status < p->n_statuses ? p->statuses[p->next_status++] : 200;
  c->answered = true;
  uv_read_stop(st);
  snprintf(c->answer, sizeof(c->answer),
           "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
           "ok",
           status);
  uv_buf_t b = uv_buf_init(c->answer, (unsigned)strlen(c->answer));
  c->wr.data = c;
  uv_write(&c->wr, st, &b, 1, peer_written_cb);
}

static void
peer_conn_cb(uv_stream_t *server, int status)
{
  struct peer *p = server->data;
  if (status < 0)
    return;
  struct pconn *c = rp_xcalloc(1, sizeof(*c));
  c->p = p;
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, pconn_closed_cb);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, peer_alloc_cb, peer_read_cb);
}

static void
peer_start(uv_loop_t *loop, struct peer *p)
{
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(loop, &p->server);
  p->server.data = p;
  assert_int_equal(uv_tcp_bind(&p->server, (struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&p->server, 16, peer_conn_cb), 0);
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  uv_tcp_getsockname(&p->server, (struct sockaddr *)&ss, &len);
  p->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  p->bodies = json_array();
  p->headers = json_array();
}

static void
peer_stop(struct peer *p)
{
  uv_close((uv_handle_t *)&p->server, NULL);
  json_decref(p->bodies);
  json_decref(p->headers);
}

static void
test_webhook_posts_json(void **state)
{
  struct world *w = *state;
  struct peer p = {0};
  peer_start(&w->loop, &p);
  cleanup_free char *yaml =
      rp_xasprintf("notify:\n"
                   "  - webhook: http://127.0.0.1:%d/hook/secret-token\n"
                   "  - webhook: http://127.0.0.1:%d/only-failures\n"
                   "    events: [recycle.failed]\n",
                   p.port, p.port);
  struct rp_config *c = config_from(yaml);
  w->n = rp_notify_new(&w->loop, c, false);
  rp_config_free(c);
  cleanup_json json_t *f =
      json_pack("{s:s, s:s, s:I}", "provider", "local", "name", "web-1",
                "max_age_s", (json_int_t)7200);
  rp_notify_event(w->n, "recycle.begin", f);
  rp_notify_event(w->n, "recycle.done", f);
  rp_notify_event(w->n, "agent.start", f); /* not in the default filter */
  assert_true(wait_stat(w, "webhook[0]", "sent", 2, 5000));
  assert_int_equal(stat_of(w->n, "webhook[1]", "sent"), 0);
  assert_int_equal(json_array_size(p.bodies), 2);
  /* In order, one at a time. */
  const char *events[] = {"recycle.begin", "recycle.done"};
  for (size_t i = 0; i < 2; i++) {
    cleanup_json json_t *b =
        json_loads(json_string_value(json_array_get(p.bodies, i)), 0, NULL);
    assert_non_null(b);
    assert_string_equal(str_of(b, "event"), events[i]);
    assert_string_equal(str_of(b, "name"), "web-1");
    assert_int_equal(int_of(b, "max_age_s"), 7200);
    assert_string_equal(json_string_value(json_array_get(p.headers, i)),
                        events[i]);
  }
  peer_stop(&p);
  close_and_check(&w->loop, w->n);
}

static void
test_webhook_retries(void **state)
{
  struct world *w = *state;
  /* 503 and 429 are worth another try; 400 is not. */
  struct peer p = {.statuses = {503, 429, 200, 400}, .n_statuses = 4};
  peer_start(&w->loop, &p);
  cleanup_free char *yaml =
      rp_xasprintf("notify:\n"
                   "  - webhook: http://127.0.0.1:%d/\n"
                   "    retries: 3\n"
                   "  - webhook: http://127.0.0.1:1/down\n"
                   "    retries: 1\n"
                   "    timeout: 2s\n",
                   p.port);
  struct rp_config *c = config_from(yaml);
  w->n = rp_notify_new(&w->loop, c, false);
  rp_config_free(c);
  rp_notify_set_limits(w->n, &(struct rp_notify_limits){.backoff_ms = 20});
  rp_notify_event(w->n, "recycle.begin", NULL);
  assert_true(wait_stat(w, "webhook[0]", "sent", 1, 5000));
  assert_int_equal(stat_of(w->n, "webhook[0]", "retried"), 2);
  rp_notify_event(w->n, "recycle.failed", NULL);
  assert_true(wait_stat(w, "webhook[0]", "failed", 1, 5000));
  assert_int_equal(stat_of(w->n, "webhook[0]", "retried"), 2);
  assert_int_equal(json_array_size(p.bodies), 4);
  /* Nothing listens on port 1: refused, tried again, given up. */
  assert_true(wait_stat(w, "webhook[1]", "failed", 2, 5000));
  assert_int_equal(stat_of(w->n, "webhook[1]", "retried"), 2);
  assert_int_equal(stat_of(w->n, "webhook[1]", "sent"), 0);
  peer_stop(&p);
  close_and_check(&w->loop, w->n);
}

/* A reload keeps a sink whose entry did not change (its counts go on) and
 * starts anew one whose entry did. */
static void
test_reload(void **state)
{
  struct world *w = *state;
  struct peer p = {0};
  peer_start(&w->loop, &p);
  cleanup_free char *y1 = rp_xasprintf("notify:\n"
                                       "  - webhook: http://127.0.0.1:%d/a\n"
                                       "  - webhook: http://127.0.0.1:%d/b\n",
                                       p.port, p.port);
  cleanup_free char *y2 = rp_xasprintf("notify:\n"
                                       "  - webhook: http://127.0.0.1:%d/a\n"
                                       "  - webhook: http://127.0.0.1:%d/b\n"
                                       "    events: [recycle.failed]\n"
                                       "  - command: [/bin/true]\n",
                                       p.port, p.port);
  struct rp_config *c1 = config_from(y1), *c2 = config_from(y2);
  w->n = rp_notify_new(&w->loop, c1, false);
  rp_notify_event(w->n, "recycle.done", NULL);
  assert_true(wait_stat(w, "webhook[1]", "sent", 1, 5000));
  assert_true(wait_stat(w, "webhook[0]", "sent", 1, 5000));
  rp_notify_set_config(w->n, c2);
  rp_notify_event(w->n, "recycle.done", NULL);
  assert_true(wait_stat(w, "webhook[0]", "sent", 2, 5000));
  assert_true(wait_stat(w, "command[2]", "sent", 1, 5000));
  /* webhook[1] now takes failures only. */
  assert_int_equal(stat_of(w->n, "webhook[1]", "sent"), 1);
  rp_notify_event(w->n, "recycle.failed", NULL);
  assert_true(wait_stat(w, "webhook[1]", "sent", 2, 5000));
  rp_config_free(c1);
  rp_config_free(c2);
  peer_stop(&p);
  close_and_check(&w->loop, w->n);
}

/* ---- the forward-looking view (plan.c, metrics.c) ----
 *
 * It counts from the same due times as the notices: workloads decided by
 * the real policy code, in the states the agent gives them. */

#define HOUR_MS (60 * MIN_MS)

struct fc {
  struct rp_config *c;
  struct rp_entry *e[8];
  size_t n;
};

static struct rp_entry *
fc_add(struct fc *f, const char *name, int64_t started_ms, const char *max_age,
       enum rp_entry_state state)
{
  struct rp_entry *e = rp_xcalloc(1, sizeof(*e));
  e->w = rp_workload_new("local", RP_KIND_CONTAINER, name, name, started_ms);
  json_object_set_new(e->w->labels, "tier", json_string("web"));
  if (max_age)
    json_object_set_new(e->w->labels, "reaper.max-age", json_string(max_age));
  rp_policy_decide(f->c, e->w, &e->d);
  e->state = state;
  e->due_ms = e->d.due_ms;
  e->heap_index = RP_NOT_QUEUED;
  f->e[f->n++] = e;
  return e;
}

static void
fc_free(struct fc *f)
{
  for (size_t i = 0; i < f->n; i++)
    rp_entry_free(f->e[i]);
  rp_config_free(f->c);
}

static struct rp_config *
fc_config(void)
{
  static const char yaml[] = "agent: { listen: \"\" }\n"
                             "providers: [{ name: local, type: docker }]\n"
                             "policies:\n"
                             "  - { name: web, max_age: 2h, jitter: 0,\n"
                             "      hard_max_age: 4d,\n"
                             "      match: { labels: { tier: web } } }\n"
                             "  - { name: idle, max_age: 1h,\n"
                             "      match: { labels: { tier: none } } }\n";
  struct rp_config *c = NULL;
  struct rp_error *err = NULL;
  if (rp_config_parse("fc.yaml", yaml, strlen(yaml), &c, &err) != 0)
    fail_msg("config: %s", err->message);
  return c;
}

static void
test_forecast(void **state)
{
  (void)state;
  const int64_t now = INT64_C(1795561758000);
  struct fc f = {.c = fc_config()};
  /* Due in 30 min, in 5 h, in 3 d; 10 s past its max age (due, waiting for
   * the budget); 20 min past and being recycled (not "due": under way, but
   * still past its max age); recycled and waiting to go (not counted);
   * due in 50 min but with a retry pending in 2 h (counts at the retry). */
  fc_add(&f, "soon", now - 90 * MIN_MS, NULL, RP_ENTRY_WAITING);
  fc_add(&f, "today", now, "5h", RP_ENTRY_WAITING);
  fc_add(&f, "later", now, "3d", RP_ENTRY_WAITING);
  fc_add(&f, "late", now - 2 * HOUR_MS - 10000, NULL, RP_ENTRY_DUE);
  fc_add(&f, "going", now - 2 * HOUR_MS - 20 * MIN_MS, NULL,
         RP_ENTRY_RECYCLING);
  struct rp_entry *done =
      fc_add(&f, "done", now - 5 * HOUR_MS, NULL, RP_ENTRY_IDLE);
  done->handled_start_ms = done->w->started_ms;
  struct rp_entry *retry =
      fc_add(&f, "retry", now - 70 * MIN_MS, NULL, RP_ENTRY_WAITING);
  retry->failures = 1;
  retry->due_ms = retry->retry_ms = now + 2 * HOUR_MS;

  size_t n;
  struct rp_plan_forecast *rows = rp_plan_forecast(f.c, f.e, f.n, now, &n);
  /* Every policy of the configuration, in its order, even without
   * workloads. */
  assert_int_equal(n, 2);
  assert_string_equal(rows[0].policy, "web");
  assert_int_equal(rows[0].workloads, 6);
  assert_int_equal(rows[0].due_1h, 2); /* soon, late */
  assert_int_equal(rows[0].due_1d, 4); /* and today, retry */
  assert_int_equal(rows[0].most_overdue_ms, 20 * MIN_MS);
  assert_string_equal(rows[0].most_overdue->w->name, "going");
  assert_string_equal(rows[1].policy, "idle");
  assert_int_equal(rows[1].workloads, 0);
  assert_int_equal(rows[1].due_1d, 0);
  assert_int_equal(rows[1].most_overdue_ms, 0);
  assert_null(rows[1].most_overdue);
  free(rows);

  cleanup_json json_t *j = rp_plan_forecast_json(f.c, f.e, f.n, now);
  assert_int_equal(json_array_size(j), 2);
  json_t *web = json_array_get(j, 0);
  assert_int_equal(int_of(web, "due_1h"), 2);
  assert_int_equal(int_of(web, "due_1d"), 4);
  assert_int_equal(int_of(web, "most_overdue_s"), 20 * 60);
  assert_string_equal(str_of(web, "most_overdue_name"), "going");
  assert_null(json_object_get(json_array_get(j, 1), "most_overdue_name"));

  /* The table plan prints after its own. */
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  rp_plan_print_forecast(out, f.c, f.e, f.n, now);
  fclose(out);
  assert_non_null(strstr(buf, "POLICY       WORKLOADS  DUE IN 1H  DUE IN 1D  "
                              "MOST OVERDUE\n"
                              "web                  6          2          4  "
                              "20m (going)\n"
                              "idle                 0          0          0  "
                              "-\n"));
  free(buf);

  /* The metrics: one series per policy and window, none per workload. */
  struct rp_metrics *m = rp_metrics_new();
  cleanup_json json_t *notes =
      json_pack("[{s:s, s:i, s:i, s:i, s:i}]", "sink", "webhook[0]", "sent", 5,
                "failed", 1, "dropped", 0, "retried", 2);
  struct rp_metrics_view v = {.entries = f.e,
                              .n_entries = f.n,
                              .now_ms = now,
                              .config = f.c,
                              .notifications = notes};
  buf = NULL;
  out = open_memstream(&buf, &len);
  rp_metrics_write(m, &v, out);
  fclose(out);
  const char *want[] = {
      "reaper_due_workloads{policy=\"web\",within=\"1h\"} 2\n",
      "reaper_due_workloads{policy=\"web\",within=\"1d\"} 4\n",
      "reaper_due_workloads{policy=\"idle\",within=\"1h\"} 0\n",
      "reaper_due_workloads{policy=\"idle\",within=\"1d\"} 0\n",
      "reaper_most_overdue_seconds{policy=\"web\"} 1200\n",
      "reaper_most_overdue_seconds{policy=\"idle\"} 0\n",
      "reaper_notifications_total{sink=\"webhook[0]\",outcome=\"sent\"} 5\n",
      "reaper_notifications_total{sink=\"webhook[0]\",outcome=\"failed\"} 1\n",
      "reaper_notifications_total{sink=\"webhook[0]\",outcome=\"dropped\"} "
      "0\n",
      "reaper_notifications_total{sink=\"webhook[0]\",outcome=\"retried\"} "
      "2\n",
      "# TYPE reaper_due_workloads gauge\n",
      "# TYPE reaper_most_overdue_seconds gauge\n",
      "# TYPE reaper_notifications_total counter\n",
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(want); i++)
    if (!strstr(buf, want[i]))
      fail_msg("metrics lack %s", want[i]);
  assert_null(strstr(buf, "going\""));
  free(buf);
  rp_metrics_free(m);
  fc_free(&f);
}

int
main(void)
{
  /* As the agent does: a command that does not read its stdin must not
   * kill us. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_filter_default),
      cmocka_unit_test(test_filter_lists),
      cmocka_unit_test(test_body),
      cmocka_unit_test_setup_teardown(test_upcoming_times, notices_setup,
                                      notices_teardown),
      cmocka_unit_test_setup_teardown(test_upcoming_once_per_life,
                                      notices_setup, notices_teardown),
      cmocka_unit_test_setup_teardown(test_upcoming_late_and_removed,
                                      notices_setup, notices_teardown),
      cmocka_unit_test_setup_teardown(test_upcoming_many, notices_setup,
                                      notices_teardown),
      cmocka_unit_test(test_upcoming_dry_run),
      cmocka_unit_test_setup_teardown(test_command_gets_json_on_stdin,
                                      world_setup, world_teardown),
      cmocka_unit_test_setup_teardown(test_command_retries_then_fails,
                                      world_setup, world_teardown),
      cmocka_unit_test_setup_teardown(test_command_timeout, world_setup,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_queue_bound_and_stop, world_setup,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_webhook_posts_json, world_setup,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_webhook_retries, world_setup,
                                      world_teardown),
      cmocka_unit_test_setup_teardown(test_reload, world_setup, world_teardown),
      cmocka_unit_test(test_forecast),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
