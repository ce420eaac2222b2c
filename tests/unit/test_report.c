/* reaper report over real audit logs: logs written with rp_audit_append_sync
 * (a real chain, the times of now) with known ages, lateness and durations,
 * and logs chained here line by line with chosen times for the cadence and
 * the time bounds.  Asserts the exact medians, p95, overstayers, the lists,
 * the CSV text, the JSON, and the SVG's bars. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "report.h"
#include "util.h"

struct fx {
  char dir[64];
  char path[128];
};

static int
setup(void **state)
{
  struct fx *f = rp_xcalloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/test_report.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/audit.jsonl", f->dir);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fx *f = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

/* --- writing logs ----------------------------------------------------------
 */

/* The fields every recycle.* line has. */
static json_t *
wl(const char *policy, const char *name, const char *id, double age,
   double max_age)
{
  json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "provider", "local", "kind",
                        "container", "id", id, "name", name);
  json_object_set_new(o, "policy", policy ? json_string(policy) : json_null());
  json_object_set_new(o, "started_at", json_string("2026-11-30T00:00:00Z"));
  json_object_set_new(o, "age_s", json_integer((json_int_t)age));
  json_object_set_new(o, "max_age_s", json_integer((json_int_t)max_age));
  /* The tasks' lines name their service, as a provider that knows it
   * writes them (the report guesses from the name otherwise). */
  if (strncmp(name, "batch.", 6) == 0)
    json_object_set_new(o, "service", json_string("batch"));
  return o;
}

static void
append(struct rp_audit *a, const char *event, json_t *fields)
{
  struct rp_error *err = NULL;
  int rc = rp_audit_append_sync(a, event, fields, &err);
  if (rc != 0)
    fail_msg("append %s: %s", event, err->message);
  json_decref(fields);
}

static void
begin(struct rp_audit *a, const char *policy, const char *name, const char *id,
      double age, double max_age, double lateness)
{
  json_t *f = wl(policy, name, id, age, max_age);
  json_object_set_new(f, "strategy", json_string("recreate"));
  json_object_set_new(f, "lateness_s", json_real(lateness));
  append(a, "recycle.begin", f);
}

static void
done(struct rp_audit *a, const char *policy, const char *name, const char *id,
     double age, double max_age, double duration)
{
  json_t *f = wl(policy, name, id, age, max_age);
  json_object_set_new(f, "replacement_id", json_string("r"));
  json_object_set_new(f, "duration_s", json_real(duration));
  append(a, "recycle.done", f);
}

static void
failed(struct rp_audit *a, const char *policy, const char *name, const char *id,
       double age, double max_age, const char *error, bool rolled_back)
{
  json_t *f = wl(policy, name, id, age, max_age);
  json_object_set_new(f, "error", json_string(error));
  json_object_set_new(f, "rolled_back", json_boolean(rolled_back));
  json_object_set_new(f, "duration_s", json_real(0.5));
  append(a, "recycle.failed", f);
}

static void
recovered(struct rp_audit *a, const char *name, const char *id, double age,
          int64_t begun_ms, const char *action, bool ok)
{
  json_t *f = wl("batch", name, id, age, 3600);
  char ts[40];
  json_object_set_new(f, "begun_at",
                      json_string(rp_format_time_ms(begun_ms, ts, sizeof(ts))));
  json_object_set_new(f, "action", json_string(action));
  json_object_set_new(f, "replacement_id", json_null());
  json_object_set_new(f, "detail", json_string("test"));
  json_object_set_new(f, "ok", json_boolean(ok));
  append(a, "recycle.recovered", f);
}

#define TASK1 "batch.1.abcdefghijklmnopqrstuvwxy"
#define TASK2 "batch.2.0123456789abcdefghijklmno"
#define TASK3 "batch.3.zyxwvutsrqponmlkjihgfedcb"

/* Two policies with known figures (worked out in the comments of
 * test_figures), written by the audit module itself. */
static void
write_fixture(const char *path)
{
  struct rp_audit *a = NULL;
  struct rp_error *err = NULL;
  char *warning = NULL;
  if (rp_audit_open(path, &a, &warning, &err) != 0)
    fail_msg("open: %s", err->message);
  append(a, "agent.start", json_pack("{s:s}", "version", "test"));
  /* web, max age 2h */
  begin(a, "web", "web-1", "a1", 6000, 7200, 0.5);
  done(a, "web", "web-1", "a1", 6000, 7200, 1);
  begin(a, "web", "web-2", "a2", 6600, 7200, 1);
  done(a, "web", "web-2", "a2", 6600, 7200, 2);
  begin(a, "web", "proj_api_1", "a3", 7000, 7200, 1.5);
  done(a, "web", "proj_api_1", "a3", 7000, 7200, 3);
  begin(a, "web", "/web-3", "a4", 7050, 7200, 2);
  failed(a, "web", "/web-3", "a4", 7050, 7200, "create: 409 name in use", true);
  begin(a, "web", "/web-3", "a4", 7100, 7200, 10);
  done(a, "web", "/web-3", "a4", 7100, 7200, 4);
  begin(a, "web", "web-9", "a9", 7200, 7200, 3);
  failed(a, "web", "web-9", "a9", 7200, 7200, "health check timed out", false);
  begin(a, "web", "web-4", "a8", 7200, 7200, 4);
  failed(a, "web", "web-4", "a8", 7200, 7200,
         "workload gone before the recycle", true);
  /* batch, max age 1h */
  begin(a, "batch", TASK1, "b1", 3500, 3600, 0.25);
  done(a, "batch", TASK1, "b1", 3500, 3600, 10);
  begin(a, "batch", TASK2, "b2", 4000, 3600, 100);
  done(a, "batch", TASK2, "b2", 4000, 3600, 5); /* lived 4005: overstayed */
  begin(a, "batch", "batch-x", "b3", 3890, 3600, 50);
  done(a, "batch", "batch-x", "b3", 3890, 3600, 5); /* 295s over: within */
  append(a, "recycle.planned", wl("batch", TASK3, "b4", 3700, 3600));
  /* Finished by crash recovery 1000 s after it began: lived about 4000 s. */
  recovered(a, "cron-7", "b5", 3000, rp_wall_ms() - 1000 * 1000, "finished",
            true);
  recovered(a, "cron-8", "b6", 3000, rp_wall_ms() - 10 * 1000, "rolled-back",
            true);
  begin(a, "batch", "batch-y", "b7", 3650, 3600, 1); /* never ended */
  rp_audit_close(a);
  free(warning);
}

/* Chains lines with chosen times, as the audit module would write them. */
struct chain {
  FILE *f;
  char prev[65];
  uint64_t seq;
};

static void
chain_open(struct chain *c, const char *path)
{
  c->f = fopen(path, "w");
  assert_non_null(c->f);
  memset(c->prev, '0', 64);
  c->prev[64] = '\0';
  c->seq = 0;
}

static void
chain_line(struct chain *c, const char *ts, const char *event, json_t *fields)
{
  json_t *o = json_pack("{s:s, s:I, s:s}", "ts", ts, "seq",
                        (json_int_t)++c->seq, "event", event);
  const char *k;
  json_t *v;
  json_object_foreach(fields, k, v) json_object_set(o, k, v);
  json_object_set_new(o, "prev", json_string(c->prev));
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  size_t n = strlen(s);
  char hash[65];
  rp_audit_sha256_hex(s, n, hash);
  fprintf(c->f, "%.*s,\"hash\":\"%s\"}\n", (int)(n - 1), s, hash);
  memcpy(c->prev, hash, sizeof(hash));
  free(s);
  json_decref(o);
  json_decref(fields);
}

static json_t *
done_fields(const char *policy, const char *name, const char *id, double age,
            double max_age, double duration)
{
  json_t *f = wl(policy, name, id, age, max_age);
  json_object_set_new(f, "duration_s", json_real(duration));
  return f;
}

/* Three hours of recycles: 10:10 and 10:20 (a), 11:05 (b), 12:59:59 (a). */
static void
write_cadence(const char *path)
{
  struct chain c;
  chain_open(&c, path);
  chain_line(&c, "2026-11-30T10:00:00.000000000Z", "agent.start",
             json_object());
  chain_line(&c, "2026-11-30T10:10:00.000000000Z", "recycle.done",
             done_fields("a", "web-1", "c1", 3000, 3600, 2));
  chain_line(&c, "2026-11-30T10:20:00.000000000Z", "recycle.done",
             done_fields("a", "web-2", "c2", 3300, 3600, 4));
  chain_line(&c, "2026-11-30T11:05:00.000000000Z", "recycle.done",
             done_fields("b", "odd,\"name\"", "c3", 100, 200, 1));
  chain_line(&c, "2026-11-30T12:59:59.000000000Z", "recycle.done",
             done_fields("a", "web-1", "c4", 3450, 3600, 3));
  chain_line(&c, "2026-11-30T13:00:00.000000000Z", "agent.stop", json_object());
  fclose(c.f);
}

/* --- reading figures back ------------------------------------------------- */

static struct rp_report *
build(const char *path, const struct rp_report_options *opt)
{
  struct rp_report *r = NULL;
  struct rp_error *err = NULL;
  const char *paths[] = {path};
  if (rp_report_build(paths, 1, opt, &r, &err) != 0)
    fail_msg("report: %s", err->message);
  return r;
}

static json_t *
find_group(json_t *arr, const char *name)
{
  size_t i;
  json_t *g;
  json_array_foreach(arr, i, g)
  {
    if (strcmp(json_string_value(json_object_get(g, "name")), name) == 0)
      return g;
  }
  fail_msg("no group %s", name);
  return NULL;
}

static json_t *
find_id(json_t *arr, const char *id)
{
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o)
  {
    if (strcmp(json_string_value(json_object_get(o, "id")), id) == 0)
      return o;
  }
  return NULL;
}

static void
assert_fig(json_t *g, const char *key, double want)
{
  json_t *v = json_object_get(g, key);
  if (!json_is_number(v))
    fail_msg("%s: not a number", key);
  if (fabs(json_number_value(v) - want) > 1e-9)
    fail_msg("%s: want %.6f, got %.6f", key, want, json_number_value(v));
}

static void
assert_fig_null(json_t *g, const char *key)
{
  if (!json_is_null(json_object_get(g, key)))
    fail_msg("%s: want null", key);
}

/* Not inlined: GCC's -Wdangling-pointer then takes pointers into the
 * returned text for pointers to the local that open_memstream fills. */
__attribute__((noinline)) static char *
slurp_stream(void (*fn)(const struct rp_report *, FILE *),
             const struct rp_report *r)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  fn(r, m);
  fclose(m);
  return buf;
}

static void
csv_to(const struct rp_report *r, FILE *f)
{
  assert_int_equal(rp_report_write_csv(r, f, NULL), 0);
}
static void
text_to(const struct rp_report *r, FILE *f)
{
  assert_int_equal(rp_report_write_text(r, f, NULL), 0);
}
static void
svg_to(const struct rp_report *r, FILE *f)
{
  assert_int_equal(rp_report_write_svg(r, f, NULL), 0);
}

/* --- tests ------------------------------------------------------------------
 */

static void
test_figures(void **state)
{
  struct fx *f = *state;
  write_fixture(f->path);
  struct rp_report *r = build(f->path, NULL);
  assert_null(rp_report_chain_problem(r));
  assert_int_equal(rp_report_bad_lines(r), 0);
  json_t *j = rp_report_json(r);

  /* web: done ages 6000 6600 7000 7100 of 7200; durations 1 2 3 4;
   * lateness of every begin 0.5 1 1.5 2 10 3 4. */
  json_t *web = find_group(json_object_get(j, "policies"), "web");
  assert_fig(web, "recycles", 4);
  assert_fig(web, "failures", 3);
  assert_fig(web, "rolled_back", 2);
  assert_fig(web, "planned", 0);
  assert_fig(web, "max_age_min_s", 7200);
  assert_fig(web, "max_age_max_s", 7200);
  assert_fig(web, "age_p50_s", 6800);
  assert_fig(web, "age_p95_s", 7085);       /* 7000 + 0.85 * 100 */
  assert_fig(web, "age_ratio_p50", 0.9444); /* 6800 / 7200 */
  assert_fig(web, "age_ratio_p95", 0.984);  /* 7085 / 7200 */
  assert_fig(web, "longest_s", 7100);
  assert_string_equal(
      json_string_value(json_object_get(web, "longest_workload")), "/web-3");
  assert_fig(web, "lateness_p50_s", 2);
  assert_fig(web, "lateness_p95_s", 8.2); /* 4 + 0.7 * 6 */
  assert_fig(web, "lateness_worst_s", 10);
  assert_fig(web, "duration_p50_s", 2.5);
  assert_fig(web, "duration_p95_s", 3.85);

  /* batch: done ages 3500 3890 4000 of 3600; durations 10 5 5; lateness
   * 0.25 100 50 1. */
  json_t *batch = find_group(json_object_get(j, "policies"), "batch");
  assert_fig(batch, "recycles", 3);
  assert_fig(batch, "failures", 0);
  assert_fig(batch, "planned", 1);
  assert_fig(batch, "recovered", 2);
  assert_fig(batch, "age_p50_s", 3890);
  assert_fig(batch, "age_p95_s", 3989);
  assert_fig(batch, "age_ratio_p50", 1.0806);
  assert_fig(batch, "age_ratio_p95", 1.1081);
  assert_fig(batch, "lateness_p50_s", 25.5);
  assert_fig(batch, "lateness_p95_s", 92.5);
  assert_fig(batch, "lateness_worst_s", 100);
  assert_fig(batch, "duration_p50_s", 5);
  assert_fig(batch, "duration_p95_s", 9.5);

  json_t *all = json_object_get(j, "overall");
  assert_fig(all, "recycles", 7);
  assert_fig(all, "failures", 3);
  assert_fig(all, "rolled_back", 2);
  assert_fig(all, "planned", 1);
  assert_fig(all, "recovered", 2);
  assert_fig(all, "max_age_min_s", 3600);
  assert_fig(all, "max_age_max_s", 7200);
  assert_fig(all, "age_p50_s", 6000);
  assert_fig(all, "age_p95_s", 7070);
  assert_fig(all, "longest_s", 7100);
  assert_fig(all, "lateness_p50_s", 2);
  assert_fig(all, "lateness_p95_s", 75);
  assert_fig(all, "duration_p50_s", 4);
  assert_fig(all, "duration_p95_s", 8.5);

  /* Services: replicas and tasks grouped, each name once. */
  json_t *svc = json_object_get(j, "services");
  assert_int_equal(json_array_size(svc), 6);
  static const char *const names[] = {"batch", "batch-x",  "batch-y",
                                      "cron",  "proj_api", "web"};
  for (size_t i = 0; i < RP_ARRAY_LEN(names); i++)
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(svc, i), "name")),
        names[i]);
  json_t *sweb = find_group(svc, "web");
  assert_string_equal(json_string_value(json_object_get(sweb, "provider")),
                      "local");
  assert_fig(sweb, "recycles", 3);
  assert_fig(sweb, "failures", 3);
  assert_fig(sweb, "age_p50_s", 6600);
  json_t *sbatch = find_group(svc, "batch");
  assert_fig(sbatch, "recycles", 2);
  assert_fig(sbatch, "planned", 1);

  /* The auditor's lists. */
  json_t *over = json_object_get(j, "overstayed");
  assert_int_equal(json_array_size(over), 2);
  json_t *b2 = find_id(over, "b2");
  assert_non_null(b2);
  assert_string_equal(json_string_value(json_object_get(b2, "name")), TASK2);
  assert_string_equal(json_string_value(json_object_get(b2, "policy")),
                      "batch");
  assert_fig(b2, "max_age_s", 3600);
  assert_fig(b2, "age_s", 4000);
  assert_fig(b2, "lived_s", 4005);
  assert_fig(b2, "overstay_s", 405);
  json_t *b5 = find_id(over, "b5");
  assert_non_null(b5);
  assert_string_equal(json_string_value(json_object_get(b5, "ended")),
                      "recovered");
  double lived = json_number_value(json_object_get(b5, "lived_s"));
  assert_true(lived >= 4000 && lived < 4010);
  assert_null(find_id(over, "b3")); /* 295 s over: within 5m */

  json_t *open = json_object_get(j, "not_recycled");
  assert_int_equal(json_array_size(open), 3);
  json_t *a9 = find_id(open, "a9");
  assert_non_null(a9);
  assert_string_equal(json_string_value(json_object_get(a9, "state")),
                      "failed");
  assert_string_equal(json_string_value(json_object_get(a9, "detail")),
                      "health check timed out");
  json_t *b6 = find_id(open, "b6");
  assert_non_null(b6);
  assert_string_equal(json_string_value(json_object_get(b6, "state")),
                      "rolled back after a crash");
  json_t *b7 = find_id(open, "b7");
  assert_non_null(b7);
  assert_string_equal(json_string_value(json_object_get(b7, "state")),
                      "unfinished");
  assert_null(find_id(open, "a4")); /* failed, then recycled */
  assert_null(find_id(open, "a8")); /* gone */
  assert_null(find_id(open, "b5")); /* finished by recovery */

  json_decref(j);
  rp_report_free(r);
}

static void
test_tolerance(void **state)
{
  struct fx *f = *state;
  write_fixture(f->path);
  struct rp_report_options opt;
  rp_report_options_init(&opt);
  opt.tolerance_ms = 0;
  struct rp_report *r = build(f->path, &opt);
  json_t *j = rp_report_json(r);
  json_t *over = json_object_get(j, "overstayed");
  assert_int_equal(json_array_size(over), 3);
  assert_non_null(find_id(over, "b3"));
  assert_fig(find_id(over, "b3"), "overstay_s", 295);
  json_decref(j);
  rp_report_free(r);

  opt.tolerance_ms = 10 * 60 * 1000;
  r = build(f->path, &opt);
  j = rp_report_json(r);
  assert_int_equal(json_array_size(json_object_get(j, "overstayed")), 0);
  json_decref(j);
  rp_report_free(r);
}

static void
test_text(void **state)
{
  struct fx *f = *state;
  write_fixture(f->path);
  struct rp_report *r = build(f->path, NULL);
  char *t = slurp_stream(text_to, r);
  assert_non_null(strstr(t, "Chain: intact\n"));
  assert_non_null(strstr(t, "\nLived longer than max age + 5m: 2\n"));
  assert_non_null(strstr(t, TASK2));
  assert_non_null(strstr(t, "cron-7"));
  assert_non_null(strstr(
      t, "\nRecycle failed or unfinished, not recycled later in the log: 3\n"));
  assert_non_null(strstr(t, "health check timed out"));
  /* A row of the counts table, as people read it. */
  assert_non_null(strstr(t, "policy   web      "));
  /* Every row of the counts table has the heading's columns: each row
   * begins with its scope. */
  assert_non_null(strstr(t, "  RECOVERED  REFUSED  "));
  const char *counts = strstr(t, "\nRecycles\n");
  const char *end = strstr(counts, "\n\n");
  size_t rows = 0;
  for (const char *l = strchr(counts + 1, '\n') + 1; l < end;
       l = strchr(l, '\n') + 1, rows++)
    if (rows > 0 && strncmp(l, "policy ", 7) && strncmp(l, "service ", 8) &&
        strncmp(l, "overall ", 8))
      fail_msg("counts row %zu: %.40s", rows, l);
  assert_int_equal(rows, 1 + 2 + 6 + 1); /* heading, policies, services */
  free(t);
  rp_report_free(r);

  /* No recycle at all: the lists say "none". */
  struct chain c;
  chain_open(&c, f->path);
  chain_line(&c, "2026-11-30T10:00:00.000000000Z", "agent.start",
             json_object());
  fclose(c.f);
  r = build(f->path, NULL);
  t = slurp_stream(text_to, r);
  assert_non_null(strstr(t, "\nLived longer than max age + 5m: none\n"));
  assert_non_null(strstr(
      t,
      "\nRecycle failed or unfinished, not recycled later in the log: none\n"));
  free(t);
  rp_report_free(r);
}

static void
test_cadence_csv(void **state)
{
  struct fx *f = *state;
  write_cadence(f->path);
  struct rp_report *r = build(f->path, NULL);
  assert_null(rp_report_chain_problem(r));
  char *csv = slurp_stream(csv_to, r);
  /* Lines of a reaper before fresh content: the new columns (after
   * longest_workload) are empty or 0, and every recycle's reason is
   * unstated. */
#define OLD(n) ",,,0,0,0,0,0,0,0," #n ",0,0,0,0,0,0,0,0,0,,\r\n"
#define OLD_SVC(n) ",,,0,0,0,0,0,0,0," #n ",0,0,0,0,,0,0,0,0,,\r\n"
  assert_string_equal(
      csv,
      "scope,name,provider,recycles,failures,rolled_back,planned,recovered,"
      "refused,max_age_min_s,max_age_max_s,age_p50_s,age_p95_s,age_ratio_p50,"
      "age_ratio_p95,longest_s,lateness_p50_s,lateness_p95_s,lateness_worst_"
      "s,duration_p50_s,duration_p95_s,per_hour,per_day,longest_workload,"
      "content_age_p50_s,content_age_worst_s,reason_max_age,reason_hard_max_"
      "age,reason_update,reason_image_age,reason_label,reason_pull,reason_"
      "other,reason_unstated,refused_verify,refused_quarantine,refused_"
      "provider,refused_other,quarantined,digests,digests_rolled_out,digests_"
      "pending,digests_superseded,patch_latency_p50_s,patch_latency_worst_s\r\n"
      "policy,a,,3,0,0,0,0,0,3600,3600,3300,3435,0.9167,0.9542,3450,,,,3,3.9,1,"
      "24,web-1" OLD(
          3) "policy,b,,1,0,0,0,0,0,200,200,100,100,0.5,0.5,100,,,,"
             "1,1,0.333,8,\"odd,\"\"name\"\"\"" OLD(
                 1) "service,\"odd,\"\"name\"\"\","
                    "local,1,0,0,0,0,0,200,200,100,100,0.5,0.5,100,,,,1,1,0."
                    "333,8,\"odd,"
                    "\"\"name\"\"\"" OLD_SVC(
                        1) "service,web,local,3,0,0,0,0,0,3600,3600,"
                           "3300,3435,0.9167,0.9542,3450,,,,3,3.9,1,24,web-"
                           "1" OLD_SVC(3) "overall,,,"
                                          "4,0,0,0,0,0,200,3600,3150,3427.5,0."
                                          "875,0.9521,3450,,,,2.5,3.85,1.333,"
                                          "32,web-1" OLD(4));
#undef OLD
#undef OLD_SVC
  free(csv);

  json_t *j = rp_report_json(r);
  json_t *span = json_object_get(j, "span");
  assert_string_equal(json_string_value(json_object_get(span, "from")),
                      "2026-11-30T10:00:00.000Z");
  assert_string_equal(json_string_value(json_object_get(span, "to")),
                      "2026-11-30T13:00:00.000Z");
  assert_fig(span, "seconds", 3 * 3600);
  assert_fig(json_object_get(j, "overall"), "per_hour", 1.333);
  assert_fig_null(json_object_get(j, "overall"), "lateness_p50_s");
  json_decref(j);
  rp_report_free(r);
}

/* The bars of the SVG, and that it is well-formed XML: every tag closed in
 * order, attributes quoted, & only in entities. */
static void
assert_well_formed(const char *svg)
{
  const char *stack[64];
  size_t depth = 0, roots = 0;
  const char *p = svg;
  if (strncmp(p, "<?xml ", 6) == 0)
    p = strstr(p, "?>") + 2;
  while ((p = strchr(p, '<')) != NULL) {
    if (p[1] == '/') {
      assert_true(depth > 0);
      const char *open = stack[--depth];
      size_t n = strcspn(open, " />");
      if (strncmp(p + 2, open, n) != 0 || p[2 + n] != '>')
        fail_msg("</%.*s> closes <%.*s>", (int)strcspn(p + 2, ">"), p + 2,
                 (int)n, open);
      p += 2 + n + 1;
      continue;
    }
    const char *end = p + 1;
    char quote = 0;
    for (; *end && (quote || *end != '>'); end++) {
      if (quote && *end == quote)
        quote = 0;
      else if (!quote && *end == '=') {
        assert_true(end[1] == '"' || end[1] == '\'');
        quote = end[1];
        end++;
      } else if (quote && *end == '<')
        fail_msg("'<' inside an attribute");
    }
    assert_int_equal(*end, '>');
    if (depth == 0)
      roots++;
    if (end[-1] != '/') {
      assert_true(depth < RP_ARRAY_LEN(stack));
      stack[depth++] = p + 1;
    }
    p = end + 1;
  }
  assert_int_equal(depth, 0);
  assert_int_equal(roots, 1);
  for (p = svg; (p = strchr(p, '&')) != NULL; p++)
    if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) &&
        strncmp(p, "&gt;", 4) && strncmp(p, "&quot;", 6) &&
        strncmp(p, "&apos;", 6))
      fail_msg("bare & at %.20s", p);
}

static size_t
count(const char *hay, const char *needle)
{
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

static void
test_svg(void **state)
{
  struct fx *f = *state;
  write_cadence(f->path);
  struct rp_report *r = build(f->path, NULL);
  char *svg = slurp_stream(svg_to, r);
  assert_well_formed(svg);
  assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
  assert_non_null(strstr(svg, "Recycles per hour"));
  /* One bar per (policy, hour) with recycles: 10:00 a 2, 11:00 b 1,
   * 12:00 a 1; none at 13:00. */
  assert_int_equal(count(svg, "class=\"bar\""), 3);
  assert_non_null(strstr(svg, "data-policy=\"a\" data-bin=\"2026-11-30T10:00:"
                              "00Z\" data-count=\"2\""));
  assert_non_null(strstr(svg, "data-policy=\"b\" data-bin=\"2026-11-30T11:00:"
                              "00Z\" data-count=\"1\""));
  assert_non_null(strstr(svg, "data-policy=\"a\" data-bin=\"2026-11-30T12:00:"
                              "00Z\" data-count=\"1\""));
  /* The box plot: one box per policy, and the line at max age. */
  assert_int_equal(count(svg, "<g class=\"box\""), 2);
  assert_non_null(strstr(svg, "data-policy=\"a\" data-n=\"3\" data-min=\"0."
                              "8333\" data-median=\"0.9167\""));
  assert_int_equal(count(svg, "class=\"maxage\""), 1);
  /* The name with XML specials is escaped, never raw. */
  assert_null(strstr(svg, "odd,\"name\""));
  free(svg);
  rp_report_free(r);

  /* Over three days: bars per day. */
  struct chain c;
  chain_open(&c, f->path);
  chain_line(&c, "2026-11-25T08:00:00.000000000Z", "agent.start",
             json_object());
  chain_line(&c, "2026-11-25T09:00:00.000000000Z", "recycle.done",
             done_fields("p<&>", "x-1", "d1", 10, 20, 1));
  chain_line(&c, "2026-11-25T19:00:00.000000000Z", "recycle.done",
             done_fields("p<&>", "x-1", "d2", 10, 20, 1));
  chain_line(&c, "2026-11-29T23:00:00.000000000Z", "recycle.done",
             done_fields("p<&>", "x-1", "d3", 30, 20, 1));
  fclose(c.f);
  r = build(f->path, NULL);
  svg = slurp_stream(svg_to, r);
  assert_well_formed(svg);
  assert_non_null(strstr(svg, "Recycles per day"));
  assert_int_equal(count(svg, "class=\"bar\""), 2);
  assert_non_null(strstr(svg, "data-policy=\"p&lt;&amp;&gt;\" "
                              "data-bin=\"2026-11-25T00:00:00Z\" "
                              "data-count=\"2\""));
  assert_non_null(strstr(svg, "data-bin=\"2026-11-29T00:00:00Z\" "
                              "data-count=\"1\""));
  /* Lived 31 s of 20: overstayed, but within the default tolerance. */
  assert_non_null(strstr(svg, "none lived longer than max age + 5m"));
  free(svg);
  rp_report_free(r);
}

static void
test_since_until(void **state)
{
  struct fx *f = *state;
  write_cadence(f->path);
  struct rp_report_options opt;
  rp_report_options_init(&opt);
  assert_int_equal(rp_report_parse_time("2026-11-30T10:15:00Z", 0, false,
                                        &opt.since_ms, NULL),
                   0);
  assert_int_equal(rp_report_parse_time("2026-11-30T12:00:00Z", 0, true,
                                        &opt.until_ms, NULL),
                   0);
  struct rp_report *r = build(f->path, &opt);
  json_t *j = rp_report_json(r);
  assert_fig(j, "lines", 2);
  json_t *all = json_object_get(j, "overall");
  assert_fig(all, "recycles", 2);
  assert_fig(all, "per_hour", 2.667); /* 2 in 45 minutes */
  assert_string_equal(json_string_value(json_object_get(j, "since")),
                      "2026-11-30T10:15:00.000Z");
  json_decref(j);
  rp_report_free(r);

  /* A date for --until takes the whole day. */
  rp_report_options_init(&opt);
  assert_int_equal(
      rp_report_parse_time("2026-11-30", 0, true, &opt.until_ms, NULL), 0);
  r = build(f->path, &opt);
  j = rp_report_json(r);
  assert_fig(json_object_get(j, "overall"), "recycles", 4);
  json_decref(j);
  rp_report_free(r);

  /* Nothing in the bounds: a report of nothing, not an error. */
  rp_report_options_init(&opt);
  opt.since_ms = 0;
  opt.until_ms = 1000;
  r = build(f->path, &opt);
  j = rp_report_json(r);
  assert_fig(j, "lines", 0);
  assert_true(json_is_null(json_object_get(j, "span")));
  assert_fig_null(json_object_get(j, "overall"), "per_hour");
  char *svg = slurp_stream(svg_to, r);
  assert_well_formed(svg);
  assert_non_null(strstr(svg, "no recycles in this span"));
  free(svg);
  json_decref(j);
  rp_report_free(r);
}

static void
test_parse_time(void **state)
{
  (void)state;
  const int64_t now = 1796126400000; /* 2026-12-01T12:00:00Z */
  int64_t t = 0;
  struct rp_error *err = NULL;
  assert_int_equal(rp_report_parse_time("-24h", now, false, &t, NULL), 0);
  assert_int_equal(t, now - 86400000);
  assert_int_equal(rp_report_parse_time("-7d", now, false, &t, NULL), 0);
  assert_int_equal(t, now - 7 * 86400000LL);
  assert_int_equal(rp_report_parse_time("-1h30m", now, false, &t, NULL), 0);
  assert_int_equal(t, now - 5400000);
  assert_int_equal(rp_report_parse_time("now", now, false, &t, NULL), 0);
  assert_int_equal(t, now);
  assert_int_equal(rp_report_parse_time("2026-11-30", now, false, &t, NULL), 0);
  assert_int_equal(t, 1795996800000); /* 2026-11-30T00:00:00Z */
  assert_int_equal(rp_report_parse_time("2026-11-30", now, true, &t, NULL), 0);
  assert_int_equal(t, 1796083200000);
  assert_int_equal(
      rp_report_parse_time("2026-11-30T12:00:00+01:00", now, false, &t, NULL),
      0);
  assert_int_equal(t, 1795996800000 + 11 * 3600000);
  static const char *const bad[] = {
      "yesterday", "-24",  "24h", "2026-13-01", "2026-11-30T25:00:00Z",
      "",          "-1.5h"};
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    assert_int_equal(rp_report_parse_time(bad[i], now, false, &t, &err), -1);
    assert_int_equal(err->code, RP_ECONFIG);
    rp_error_free(err);
    err = NULL;
  }
}

static void
test_service_name(void **state)
{
  (void)state;
  static const struct {
    const char *kind, *name, *want;
  } cases[] = {
      {"container", "web-1", "web"},
      {"container", "web-12", "web"},
      {"container", "/web-3", "web"},
      {"container", "project-web-1", "project-web"},
      {"container", "project_web_1", "project_web"},
      {"container", "web", "web"},
      {"container", "eager_turing", "eager_turing"},
      {"container", "web-", "web-"},
      {"container", "-1", "-1"},
      {"container", "123", "123"},
      {"container", "web-a1", "web-a1"},
      /* No engine's naming is known here: a provider that knows a
       * workload's service says so in its audit lines. */
      {"container", "web.1.abcdefghijklmnopqrstuvwxy",
       "web.1.abcdefghijklmnopqrstuvwxy"},
      {"container", "api.v2.production", "api.v2.production"},
      {"container", "web.3", "web.3"},
      {"service", "web-1", "web-1"},
      {"node", "worker-2", "worker-2"},
      {"host", "host-7", "host-7"},
      {NULL, "db_2", "db"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(cases); i++) {
    char *got = rp_report_service_name(cases[i].kind, cases[i].name, "ID");
    if (strcmp(got, cases[i].want) != 0)
      fail_msg("%s %s: want %s, got %s", cases[i].kind, cases[i].name,
               cases[i].want, got);
    free(got);
  }
  char *got = rp_report_service_name("container", "", "0123abc");
  assert_string_equal(got, "0123abc");
  free(got);
}

static void
test_percentile(void **state)
{
  (void)state;
  float one[] = {7};
  float four[] = {1, 2, 3, 4};
  assert_true(rp_report_percentile(one, 1, 0.5) == 7);
  assert_true(rp_report_percentile(one, 1, 0.95) == 7);
  assert_true(rp_report_percentile(four, 4, 0.5) == 2.5);
  assert_true(fabs(rp_report_percentile(four, 4, 0.95) - 3.85) < 1e-9);
  assert_true(rp_report_percentile(four, 4, 1) == 4);
  assert_true(rp_report_percentile(four, 4, 0) == 1);
  assert_true(isnan(rp_report_percentile(four, 0, 0.5)));
}

/* An edited line breaks the chain: the report names it and goes on, with
 * what the line now says. */
static void
test_tampered(void **state)
{
  struct fx *f = *state;
  write_fixture(f->path);
  char *buf = NULL;
  size_t len = 0;
  FILE *in = fopen(f->path, "r");
  assert_non_null(in);
  char line[4096];
  FILE *m = open_memstream(&buf, &len);
  while (fgets(line, sizeof(line), in)) {
    char *p = strstr(line, "\"id\":\"a1\"");
    char *age = p ? strstr(p, "\"age_s\":6000,") : NULL;
    if (age && strstr(line, "recycle.done"))
      memcpy(age, "\"age_s\":9000,", 13);
    fputs(line, m);
  }
  fclose(in);
  fclose(m);
  FILE *out = fopen(f->path, "w");
  fwrite(buf, 1, len, out);
  fclose(out);
  free(buf);

  struct rp_report *r = build(f->path, NULL);
  const char *problem = rp_report_chain_problem(r);
  assert_non_null(problem);
  char want[200];
  snprintf(want, sizeof(want), "%s:3:", f->path);
  if (strncmp(problem, want, strlen(want)) != 0)
    fail_msg("chain problem '%s' does not name line 3", problem);
  json_t *j = rp_report_json(r);
  assert_false(
      json_is_true(json_object_get(json_object_get(j, "chain"), "intact")));
  json_t *over = json_object_get(j, "overstayed");
  assert_int_equal(json_array_size(over), 3);
  assert_fig(find_id(over, "a1"), "overstay_s", 1801);
  json_decref(j);
  char *t = slurp_stream(text_to, r);
  assert_non_null(strstr(t, "Chain: DOES NOT VERIFY"));
  free(t);
  rp_report_free(r);
}

static void
test_rotated_and_unreadable(void **state)
{
  struct fx *f = *state;
  /* Two parts of one chain: the second continues the first's hashes. */
  char second[160];
  snprintf(second, sizeof(second), "%s/audit.jsonl.2", f->dir);
  struct chain c;
  chain_open(&c, f->path);
  chain_line(&c, "2026-11-30T10:00:00.000000000Z", "recycle.done",
             done_fields("a", "w-1", "e1", 100, 200, 1));
  fclose(c.f);
  c.f = fopen(second, "w");
  chain_line(&c, "2026-11-30T11:00:00.000000000Z", "recycle.done",
             done_fields("a", "w-2", "e2", 150, 200, 2));
  fclose(c.f);
  const char *paths[] = {f->path, second};
  struct rp_report *r = NULL;
  struct rp_error *err = NULL;
  assert_int_equal(rp_report_build(paths, 2, NULL, &r, &err), 0);
  assert_null(rp_report_chain_problem(r));
  json_t *j = rp_report_json(r);
  assert_fig(json_object_get(j, "overall"), "recycles", 2);
  assert_fig(json_object_get(j, "overall"), "age_p50_s", 125);
  assert_fig(json_object_get(j, "overall"), "per_hour", 2);
  json_decref(j);
  rp_report_free(r);

  /* In the wrong order the chain breaks at the first line of the second. */
  const char *swapped[] = {second, f->path};
  assert_int_equal(rp_report_build(swapped, 2, NULL, &r, &err), 0);
  assert_non_null(rp_report_chain_problem(r));
  rp_report_free(r);

  char missing[160];
  snprintf(missing, sizeof(missing), "%s/nope.jsonl", f->dir);
  const char *bad[] = {f->path, missing};
  assert_int_equal(rp_report_build(bad, 2, NULL, &r, &err), -1);
  assert_int_equal(err->code, ENOENT);
  assert_non_null(strstr(err->message, missing));
  rp_error_free(err);
}

/* A line that is not JSON (a torn fragment) is skipped and counted. */
static void
test_bad_lines(void **state)
{
  struct fx *f = *state;
  write_cadence(f->path);
  FILE *a = fopen(f->path, "a");
  fputs("{\"ts\":\"2026-11-30T13:0\n", a);
  fclose(a);
  struct rp_report *r = build(f->path, NULL);
  assert_int_equal(rp_report_bad_lines(r), 1);
  assert_non_null(rp_report_chain_problem(r));
  json_t *j = rp_report_json(r);
  assert_fig(json_object_get(j, "overall"), "recycles", 4);
  json_decref(j);
  rp_report_free(r);
}

/* A log the real agent wrote (tests/integration/test_report.sh, saved as
 * it was): three containers recycled under two policies. */
static void
test_agent_log(void **state)
{
  (void)state;
  struct rp_report *r = build(TEST_DATA_DIR "/report/agent-run.jsonl", NULL);
  assert_null(rp_report_chain_problem(r));
  json_t *j = rp_report_json(r);
  assert_fig(j, "lines", 8);
  json_t *all = json_object_get(j, "overall");
  assert_fig(all, "recycles", 3);
  assert_fig(all, "failures", 0);
  assert_fig(all, "max_age_max_s", 1);
  assert_fig(all, "age_p50_s", 11);
  assert_fig(all, "longest_s", 15);
  assert_fig(all, "lateness_worst_s", 14.849);
  json_t *web = find_group(json_object_get(j, "policies"), "web");
  assert_fig(web, "recycles", 2);
  assert_fig(web, "lateness_p50_s", 12.92);
  assert_fig(find_group(json_object_get(j, "policies"), "batch"), "recycles",
             1);
  assert_fig(find_group(json_object_get(j, "services"), "rweb11085"),
             "recycles", 2);
  assert_fig(find_group(json_object_get(j, "services"), "rbatch11085"),
             "recycles", 1);
  assert_int_equal(json_array_size(json_object_get(j, "overstayed")), 0);
  assert_int_equal(json_array_size(json_object_get(j, "not_recycled")), 0);
  json_decref(j);
  rp_report_free(r);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_figures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tolerance, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cadence_csv, setup, teardown),
      cmocka_unit_test_setup_teardown(test_svg, setup, teardown),
      cmocka_unit_test_setup_teardown(test_since_until, setup, teardown),
      cmocka_unit_test(test_parse_time),
      cmocka_unit_test(test_service_name),
      cmocka_unit_test(test_percentile),
      cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotated_and_unreadable, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_lines, setup, teardown),
      cmocka_unit_test(test_agent_log),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
