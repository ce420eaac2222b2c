/* Prometheus metrics: counters and histograms as recycles end, gauges from
 * the tracked workloads, label escaping, and the whole exposition checked
 * by Prometheus' own promtool when it is installed (Debian's prometheus
 * package; tests/integration/test_http.sh checks with it for sure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "util.h"

#define NOW_MS INT64_C(1800000000000)

static char *
render(const struct rp_metrics *m, const struct rp_metrics_view *v)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  rp_metrics_write(m, v, f);
  fclose(f);
  return buf;
}

/* The value of the sample whose line starts with `series ` (exactly). */
static const char *
sample(const char *text, const char *series)
{
  static char val[64];
  size_t n = strlen(series);
  for (const char *l = text; l && *l;
       l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, series, n) == 0 && l[n] == ' ') {
      snprintf(val, sizeof(val), "%.*s", (int)strcspn(l + n + 1, "\n"),
               l + n + 1);
      return val;
    }
  }
  return NULL;
}

static void
test_label_escaping(void **state)
{
  (void)state;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  rp_metrics_write_label_value(f, "a\"b\\c\nd é");
  fclose(f);
  assert_string_equal(buf, "a\\\"b\\\\c\\nd é");
  free(buf);
}

static void
test_recycle_counters_and_histograms(void **state)
{
  (void)state;
  struct rp_metrics *m = rp_metrics_new();
  rp_metrics_recycle_began(m, "web", 0.05);
  rp_metrics_recycle_began(m, "web", 42);
  rp_metrics_recycle_ended(m, "web", RP_METRICS_DONE, 0.8);
  rp_metrics_recycle_ended(m, "web", RP_METRICS_DONE, 7);
  rp_metrics_recycle_ended(m, "web", RP_METRICS_ROLLED_BACK, 700);
  rp_metrics_recycle_ended(m, NULL, RP_METRICS_RECOVERED, -1);
  rp_metrics_recycle_ended(m, "batch", RP_METRICS_PLANNED, -1);
  struct rp_metrics_view v = {.now_ms = NOW_MS};
  char *t = render(m, &v);

  assert_string_equal(
      sample(t, "reaper_recycles_total{policy=\"web\",outcome=\"done\"}"), "2");
  assert_string_equal(
      sample(t,
             "reaper_recycles_total{policy=\"web\",outcome=\"rolled_back\"}"),
      "1");
  /* Every outcome has a series once the policy has one, at 0. */
  assert_string_equal(
      sample(t, "reaper_recycles_total{policy=\"web\",outcome=\"failed\"}"),
      "0");
  assert_string_equal(
      sample(t, "reaper_recycles_total{policy=\"\",outcome=\"recovered\"}"),
      "1");
  assert_string_equal(
      sample(t, "reaper_recycles_total{policy=\"batch\",outcome=\"planned\"}"),
      "1");
  /* Buckets are cumulative; unknown durations are not observed. */
  assert_string_equal(
      sample(t, "reaper_recycle_duration_seconds_bucket{policy=\"web\",le="
                "\"1\"}"),
      "1");
  assert_string_equal(
      sample(t, "reaper_recycle_duration_seconds_bucket{policy=\"web\",le="
                "\"10\"}"),
      "2");
  assert_string_equal(
      sample(t, "reaper_recycle_duration_seconds_bucket{policy=\"web\",le="
                "\"600\"}"),
      "2");
  assert_string_equal(
      sample(t, "reaper_recycle_duration_seconds_bucket{policy=\"web\",le="
                "\"+Inf\"}"),
      "3");
  assert_string_equal(
      sample(t, "reaper_recycle_duration_seconds_sum{policy=\"web\"}"),
      "707.8");
  assert_string_equal(
      sample(t, "reaper_recycle_duration_seconds_count{policy=\"batch\"}"),
      "0");
  assert_string_equal(
      sample(t, "reaper_recycle_lateness_seconds_bucket{policy=\"web\",le="
                "\"0.1\"}"),
      "1");
  assert_string_equal(
      sample(t, "reaper_recycle_lateness_seconds_bucket{policy=\"web\",le="
                "\"60\"}"),
      "2");
  assert_string_equal(
      sample(t, "reaper_recycle_lateness_seconds_count{policy=\"web\"}"), "2");
  free(t);
  rp_metrics_free(m);
}

struct fixture {
  struct rp_policy web, odd;
  struct rp_workload *w[5];
  struct rp_entry e[5];
  struct rp_entry *v[5];
};

static void
fixture_init(struct fixture *f)
{
  memset(f, 0, sizeof(*f));
  f->web.name = (char *)(uintptr_t) "web";
  f->odd.name = (char *)(uintptr_t) "odd \"policy\"\\";
  static const struct {
    const char *provider;
    enum rp_kind kind;
    int64_t age_s;
    int policy; /* 0 none, 1 web, 2 odd */
    enum rp_entry_state state;
    int64_t due_in_s;
  } spec[5] = {
      {"local", RP_KIND_CONTAINER, 30, 1, RP_ENTRY_WAITING, 7000},
      {"local", RP_KIND_CONTAINER, 4000, 1, RP_ENTRY_WAITING, 3000},
      {"local", RP_KIND_CONTAINER, 7300, 1, RP_ENTRY_RECYCLING, -100},
      {"we\"ird\\prov\nider", RP_KIND_SERVICE, 200000, 2, RP_ENTRY_DUE, -5},
      {"local", RP_KIND_CONTAINER, 90000, 0, RP_ENTRY_IDLE, 0},
  };
  for (int i = 0; i < 5; i++) {
    f->w[i] = rp_workload_new(spec[i].provider, spec[i].kind, "id", "name",
                              NOW_MS - spec[i].age_s * 1000);
    f->e[i].w = f->w[i];
    f->e[i].state = spec[i].state;
    f->e[i].d.policy = spec[i].policy == 1   ? &f->web
                       : spec[i].policy == 2 ? &f->odd
                                             : NULL;
    f->e[i].d.due_ms = NOW_MS + spec[i].due_in_s * 1000;
    f->e[i].due_ms = f->e[i].d.due_ms;
    f->v[i] = &f->e[i];
  }
}

static void
fixture_clear(struct fixture *f)
{
  for (int i = 0; i < 5; i++)
    rp_workload_free(f->w[i]);
}

static void
test_gauges_from_workloads(void **state)
{
  (void)state;
  struct fixture f;
  fixture_init(&f);
  json_t *providers = json_pack(
      "[{s:s, s:s, s:b}, {s:s, s:s, s:b}]", "name", "local", "type", "docker",
      "up", 1, "name", "we\"ird\\prov\nider", "type", "swarm", "up", 0);
  struct rp_metrics *m = rp_metrics_new();
  struct rp_metrics_view v = {.entries = f.v,
                              .n_entries = 5,
                              .providers = providers,
                              .ready = true,
                              .has_api_requests = true,
                              .api_requests = 1234,
                              .now_ms = NOW_MS};
  char *t = render(m, &v);
  assert_string_equal(sample(t, "reaper_workloads{provider=\"local\",kind="
                                "\"container\",policy=\"web\"}"),
                      "3");
  assert_string_equal(sample(t, "reaper_workloads{provider=\"local\",kind="
                                "\"container\",policy=\"\"}"),
                      "1");
  assert_string_equal(
      sample(t, "reaper_workloads{provider=\"we\\\"ird\\\\prov\\nider\","
                "kind=\"service\",policy=\"odd \\\"policy\\\"\\\\\"}"),
      "1");
  /* Ages 30 s, 4000 s, 7300 s, 200000 s, 90000 s. */
  assert_string_equal(
      sample(t, "reaper_workload_age_seconds_bucket{le=\"60\"}"), "1");
  assert_string_equal(
      sample(t, "reaper_workload_age_seconds_bucket{le=\"7200\"}"), "2");
  assert_string_equal(
      sample(t, "reaper_workload_age_seconds_bucket{le=\"86400\"}"), "3");
  assert_string_equal(
      sample(t, "reaper_workload_age_seconds_bucket{le=\"172800\"}"), "4");
  assert_string_equal(
      sample(t, "reaper_workload_age_seconds_bucket{le=\"+Inf\"}"), "5");
  assert_string_equal(sample(t, "reaper_workload_age_seconds_count"), "5");
  /* The earliest due time of what waits or is due: the DUE one, 5 s ago;
   * neither the one being recycled nor the idle one counts. */
  assert_string_equal(sample(t, "reaper_next_deadline_timestamp_seconds"),
                      "1799999995");
  assert_string_equal(sample(t, "reaper_recycles_in_flight"), "1");
  assert_string_equal(sample(t, "reaper_recycles_waiting"), "1");
  assert_string_equal(
      sample(t, "reaper_provider_up{provider=\"local\",type=\"docker\"}"), "1");
  assert_string_equal(sample(t, "reaper_provider_up{provider=\"we\\\"ird\\\\"
                                "prov\\nider\",type=\"swarm\"}"),
                      "0");
  assert_string_equal(sample(t, "reaper_api_requests_total"), "1234");
  assert_string_equal(sample(t, "reaper_ready"), "1");
  assert_string_equal(sample(t, "reaper_audit_healthy"), "1");
  assert_non_null(
      sample(t, "reaper_build_info{version=\"" REAPER_VERSION "\"}"));
  /* Every family has its HELP and TYPE. */
  static const char *const families[] = {
      "reaper_workloads",
      "reaper_workload_age_seconds",
      "reaper_next_deadline_timestamp_seconds",
      "reaper_recycles_in_flight",
      "reaper_recycles_total",
      "reaper_recycle_duration_seconds",
      "reaper_recycle_lateness_seconds",
      "reaper_provider_up",
      "reaper_audit_write_errors_total",
      "reaper_api_requests_total",
      "reaper_build_info"};
  for (size_t i = 0; i < RP_ARRAY_LEN(families); i++) {
    char want[128];
    snprintf(want, sizeof(want), "# TYPE %s ", families[i]);
    assert_non_null(strstr(t, want));
    snprintf(want, sizeof(want), "# HELP %s ", families[i]);
    assert_non_null(strstr(t, want));
  }
  free(t);

  /* Nothing scheduled: no deadline sample (but its HELP and TYPE). */
  v.n_entries = 0;
  t = render(m, &v);
  assert_null(sample(t, "reaper_next_deadline_timestamp_seconds"));
  assert_non_null(strstr(t, "# TYPE reaper_next_deadline_timestamp_seconds"));
  free(t);
  rp_metrics_free(m);
  json_decref(providers);
  fixture_clear(&f);
}

/* Runs promtool check metrics on text; returns its exit status, or -1
 * when promtool is not installed. */
static int
promtool_check(const char *text)
{
  if (system("command -v promtool >/dev/null 2>&1") != 0)
    return -1;
  FILE *p = popen("promtool check metrics", "w");
  assert_non_null(p);
  fputs(text, p);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void
test_promtool_accepts_the_exposition(void **state)
{
  (void)state;
  struct fixture f;
  fixture_init(&f);
  json_t *providers =
      json_pack("[{s:s, s:s, s:b}]", "name", "we\"ird\\prov\nider", "type",
                "swarm", "up", 0);
  struct rp_metrics *m = rp_metrics_new();
  rp_metrics_recycle_began(m, "odd \"policy\"\\", 3);
  rp_metrics_recycle_ended(m, "odd \"policy\"\\", RP_METRICS_FAILED, 2);
  rp_metrics_recycle_ended(m, "web", RP_METRICS_DONE, 2);
  rp_metrics_connection_rejected(m);
  struct rp_metrics_view v = {.entries = f.v,
                              .n_entries = 5,
                              .providers = providers,
                              .has_api_requests = true,
                              .api_requests = 7,
                              .now_ms = NOW_MS};
  char *t = render(m, &v);
  int rc = promtool_check(t);
  if (rc == -1) {
    free(t);
    rp_metrics_free(m);
    json_decref(providers);
    fixture_clear(&f);
    skip();
  }
  assert_int_equal(rc, 0);
  /* And it does catch a broken exposition. */
  assert_int_not_equal(promtool_check("reaper_x{a=\"b} 1\n"), 0);
  free(t);
  rp_metrics_free(m);
  json_decref(providers);
  fixture_clear(&f);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_label_escaping),
      cmocka_unit_test(test_recycle_counters_and_histograms),
      cmocka_unit_test(test_gauges_from_workloads),
      cmocka_unit_test(test_promtool_accepts_the_exposition),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
