/* Policy decisions: matching, exclusions, label overrides, jitter, deadlines
 * with windows and hard ceilings, budgets and drain hooks.  Configurations
 * are built by hand, independent of the YAML parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy.h"
#include "util.h"

/* A writable string with the lifetime of the enclosing block. */
#define S(x) ((char[]){x})

#define MIN_MS INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

static int64_t
utc(int y, int mo, int d, int h, int mi)
{
  struct tm tm = {.tm_year = y - 1900,
                  .tm_mon = mo - 1,
                  .tm_mday = d,
                  .tm_hour = h,
                  .tm_min = mi};
  return (int64_t)timegm(&tm) * 1000;
}

static struct rp_policy
policy(char *name, int64_t max_age_ms)
{
  return (struct rp_policy){
      .name = name, .match_kind = -1, .max_age_ms = max_age_ms};
}

/* A container of provider "local" with labels given as key, value pairs
 * ending in NULL. */
static struct rp_workload *
workload(const char *id, const char *name, int64_t started_ms, ...)
{
  struct rp_workload *w =
      rp_workload_new("local", RP_KIND_CONTAINER, id, name, started_ms);
  va_list ap;
  va_start(ap, started_ms);
  const char *k;
  while ((k = va_arg(ap, const char *))) {
    const char *v = va_arg(ap, const char *);
    json_object_set_new(w->labels, k, json_string(v));
  }
  va_end(ap);
  return w;
}

static void
free_workload(struct rp_workload **w)
{
  rp_workload_free(*w);
}
#define cleanup_workload __attribute__((cleanup(free_workload)))

static void
test_first_match_wins(void **state)
{
  struct rp_label_match web[] = {{S("tier"), S("web")}};
  struct rp_policy ps[2] = {policy(S("web"), 2 * HOUR_MS),
                            policy(S("rest"), DAY_MS)};
  ps[0].match_labels = web;
  ps[0].n_match_labels = 1;
  struct rp_config c = {.policies = ps, .n_policies = 2};

  cleanup_workload struct rp_workload *w =
      workload("a1", "web-1", 0, "tier", "web", NULL);
  cleanup_workload struct rp_workload *db =
      workload("a2", "db-1", 0, "tier", "db", NULL);
  cleanup_decision struct rp_decision d = {0};
  rp_policy_decide(&c, w, &d);
  assert_ptr_equal(d.policy, &ps[0]);
  assert_false(d.excluded);
  assert_null(d.reason);
  assert_null(d.warning);
  rp_policy_decide(&c, db, &d);
  assert_ptr_equal(d.policy, &ps[1]);

  /* The catch-all first takes everything. */
  struct rp_policy swapped[2] = {ps[1], ps[0]};
  c.policies = swapped;
  rp_policy_decide(&c, w, &d);
  assert_ptr_equal(d.policy, &swapped[0]);
}

static void
test_match_fields(void **state)
{
  cleanup_workload struct rp_workload *w =
      workload("a1", "web-1", 0, "tier", "web", "team", "shop", NULL);
  struct rp_policy p = policy(S("p"), HOUR_MS);
  assert_true(rp_policy_matches(&p, w)); /* an empty match takes all */

  p.match_provider = S("local");
  assert_true(rp_policy_matches(&p, w));
  p.match_provider = S("cluster");
  assert_false(rp_policy_matches(&p, w));
  p.match_provider = NULL;

  p.match_kind = RP_KIND_CONTAINER;
  assert_true(rp_policy_matches(&p, w));
  p.match_kind = RP_KIND_SERVICE;
  assert_false(rp_policy_matches(&p, w));
  p.match_kind = -1;

  p.match_name = S("web-*");
  assert_true(rp_policy_matches(&p, w));
  p.match_name = S("api-*");
  assert_false(rp_policy_matches(&p, w));
  p.match_name = S("web-[0-9]");
  assert_true(rp_policy_matches(&p, w));
  p.match_name = NULL;

  /* Labels: every one must match; "*" means present. */
  struct rp_label_match both[] = {{S("tier"), S("web")}, {S("team"), S("*")}};
  p.match_labels = both;
  p.n_match_labels = 2;
  assert_true(rp_policy_matches(&p, w));
  struct rp_label_match wrong[] = {{S("tier"), S("web")},
                                   {S("team"), S("ops")}};
  p.match_labels = wrong;
  assert_false(rp_policy_matches(&p, w));
  struct rp_label_match absent[] = {{S("owner"), S("*")}};
  p.match_labels = absent;
  p.n_match_labels = 1;
  assert_false(rp_policy_matches(&p, w));
  json_object_set_new(w->labels, "owner", json_string(""));
  assert_true(rp_policy_matches(&p, w));

  /* Every set field at once. */
  cleanup_workload struct rp_workload *svc =
      rp_workload_new("cluster", RP_KIND_SERVICE, "s1", "web/api", 0);
  json_object_set_new(svc->labels, "tier", json_string("web"));
  struct rp_label_match tier[] = {{S("tier"), S("*")}};
  struct rp_policy all = policy(S("all"), HOUR_MS);
  all.match_provider = S("cluster");
  all.match_kind = RP_KIND_SERVICE;
  all.match_labels = tier;
  all.n_match_labels = 1;
  all.match_name = S("web*"); /* names are not paths: "*" crosses "/" */
  assert_true(rp_policy_matches(&all, svc));
  assert_false(rp_policy_matches(&all, w));

  assert_true(rp_labels_match(NULL, 0, w->labels));
  assert_false(rp_labels_match(tier, 1, NULL));
}

static void
test_no_policy_matches(void **state)
{
  struct rp_policy ps[1] = {policy(S("svc"), HOUR_MS)};
  ps[0].match_kind = RP_KIND_SERVICE;
  struct rp_config c = {.policies = ps, .n_policies = 1};
  cleanup_workload struct rp_workload *w = workload("a1", "web-1", 0, NULL);
  cleanup_decision struct rp_decision d = {0};
  rp_policy_decide(&c, w, &d);
  assert_null(d.policy);
  assert_false(d.excluded);
  assert_string_equal(d.reason, "no policy matches");

  struct rp_config empty = {0};
  rp_policy_decide(&empty, w, &d);
  assert_null(d.policy);
  assert_string_equal(d.reason, "no policy matches");
}

static void
test_exclusions(void **state)
{
  struct rp_policy ps[1] = {policy(S("all"), HOUR_MS)};
  struct rp_label_match ex[] = {{S("tier"), S("db")}, {S("pinned"), S("*")}};
  struct rp_config c = {.policies = ps,
                        .n_policies = 1,
                        .exclude_labels = ex,
                        .n_exclude_labels = 2};
  cleanup_decision struct rp_decision d = {0};

  /* The provider's protection comes first. */
  cleanup_workload struct rp_workload *self =
      workload("r1", "reaper", 0, "reaper.exclude", "false", NULL);
  self->protected_reason = rp_xstrdup("reaper's own container");
  rp_policy_decide(&c, self, &d);
  assert_true(d.excluded);
  assert_null(d.policy);
  assert_string_equal(d.reason, "reaper's own container");
  /* A reason is cut at its cap, as a warning is. */
  char long_reason[400];
  memset(long_reason, 'r', sizeof(long_reason) - 1);
  long_reason[sizeof(long_reason) - 1] = '\0';
  free(self->protected_reason);
  self->protected_reason = rp_xstrdup(long_reason);
  rp_policy_decide(&c, self, &d);
  assert_int_equal(strlen(d.reason), RP_DECISION_REASON_MAX - 1);
  assert_memory_equal(d.reason, long_reason, RP_DECISION_REASON_MAX - 1);

  cleanup_workload struct rp_workload *db =
      workload("d1", "db-1", 0, "tier", "db", NULL);
  rp_policy_decide(&c, db, &d);
  assert_true(d.excluded);
  assert_null(d.policy);
  assert_string_equal(d.reason, "exclude.labels tier=db");

  /* Any one exclude label is enough. */
  cleanup_workload struct rp_workload *pinned =
      workload("p1", "web-9", 0, "tier", "web", "pinned", "yes", NULL);
  rp_policy_decide(&c, pinned, &d);
  assert_true(d.excluded);
  assert_string_equal(d.reason, "exclude.labels pinned=*");

  cleanup_workload struct rp_workload *opt_out =
      workload("o1", "web-2", 0, "reaper.exclude", "true", NULL);
  rp_policy_decide(&c, opt_out, &d);
  assert_true(d.excluded);
  assert_null(d.policy);
  assert_string_equal(d.reason, "label reaper.exclude=true");
  assert_null(d.warning);

  cleanup_workload struct rp_workload *opt_in =
      workload("o2", "web-3", 0, "reaper.exclude", "false", NULL);
  rp_policy_decide(&c, opt_in, &d);
  assert_false(d.excluded);
  assert_ptr_equal(d.policy, &ps[0]);
  assert_null(d.warning);

  /* The operator may take the opt-out away: then it is a warning. */
  c.deny_workload_opt_out = true;
  rp_policy_decide(&c, opt_out, &d);
  assert_false(d.excluded);
  assert_ptr_equal(d.policy, &ps[0]);
  assert_string_equal(d.warning,
                      "container local/web-2: label reaper.exclude=true "
                      "refused: workloads may not opt out "
                      "(exclude.workload_opt_out: false)");
  /* ...while the operator's own exclude labels still hold. */
  rp_policy_decide(&c, db, &d);
  assert_true(d.excluded);
  c.deny_workload_opt_out = false;

  /* Anything else is a bad label: a warning, and not excluded. */
  cleanup_workload struct rp_workload *bad =
      workload("o3", "web-4", 0, "reaper.exclude", "yes", NULL);
  rp_policy_decide(&c, bad, &d);
  assert_false(d.excluded);
  assert_ptr_equal(d.policy, &ps[0]);
  assert_string_equal(
      d.warning,
      "container local/web-4: label reaper.exclude=\"yes\" is neither true "
      "nor false; ignored");
}

static void
test_policy_label(void **state)
{
  struct rp_policy ps[2] = {policy(S("web"), 2 * HOUR_MS),
                            policy(S("batch"), DAY_MS)};
  ps[1].match_kind = RP_KIND_SERVICE; /* would never match a container */
  struct rp_config c = {.policies = ps, .n_policies = 2};
  cleanup_decision struct rp_decision d = {0};

  /* A policy written for others (its match refuses the workload) is not
   * the workload's to pick: a longer life would be one label away. */
  cleanup_workload struct rp_workload *w =
      workload("a1", "web-1", 0, "reaper.policy", "batch", NULL);
  rp_policy_decide(&c, w, &d);
  assert_ptr_equal(d.policy, &ps[0]);
  assert_int_equal(d.max_age_ms, 2 * HOUR_MS);
  assert_string_equal(d.warning,
                      "container local/web-1: label reaper.policy=\"batch\" "
                      "refused: that policy's match does not accept this "
                      "workload and it is not selectable; matching instead");

  /* Unless the operator made it selectable. */
  ps[1].selectable = true;
  rp_policy_decide(&c, w, &d);
  assert_ptr_equal(d.policy, &ps[1]);
  assert_int_equal(d.max_age_ms, DAY_MS);
  assert_null(d.warning);
  ps[1].selectable = false;

  /* A policy that accepts the workload, though not the first to: fine. */
  struct rp_policy ps2[2] = {policy(S("web"), 2 * HOUR_MS),
                             policy(S("short"), HOUR_MS)};
  struct rp_config c2 = {.policies = ps2, .n_policies = 2};
  cleanup_workload struct rp_workload *s2 =
      workload("a3", "web-3", 0, "reaper.policy", "short", NULL);
  rp_policy_decide(&c2, s2, &d);
  assert_ptr_equal(d.policy, &ps2[1]);
  assert_null(d.warning);

  cleanup_workload struct rp_workload *unknown =
      workload("a2", "web-2", 0, "reaper.policy", "nightly", NULL);
  rp_policy_decide(&c, unknown, &d);
  assert_ptr_equal(d.policy, &ps[0]);
  assert_string_equal(d.warning,
                      "container local/web-2: label reaper.policy=\"nightly\" "
                      "names no policy; matching instead");
}

static void
test_max_age_label(void **state)
{
  struct rp_policy ps[1] = {policy(S("web"), 2 * HOUR_MS)};
  struct rp_config c = {.policies = ps, .n_policies = 1};
  const int64_t start = utc(2026, 6, 10, 8, 0);
  cleanup_decision struct rp_decision d = {0};

  cleanup_workload struct rp_workload *w =
      workload("a1", "web-1", start, "reaper.max-age", "1h30m", NULL);
  rp_policy_decide(&c, w, &d);
  assert_int_equal(d.max_age_ms, 90 * MIN_MS);
  assert_int_equal(d.deadline_ms, start + 90 * MIN_MS);
  assert_null(d.warning);

  static const char *const bad[] = {"abc", "0", "-5m", "1.5h", "", "90"};
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    cleanup_workload struct rp_workload *b =
        workload("b1", "web-2", start, "reaper.max-age", bad[i], NULL);
    rp_policy_decide(&c, b, &d);
    assert_int_equal(d.max_age_ms, 2 * HOUR_MS);
    assert_int_equal(d.deadline_ms, start + 2 * HOUR_MS);
    cleanup_free char *want = rp_xasprintf(
        "container local/web-2: label reaper.max-age=\"%s\": ", bad[i]);
    assert_memory_equal(d.warning, want, strlen(want));
    assert_non_null(strstr(d.warning, "; ignored"));
  }

  /* Longer than the policy's: refused without a ceiling (a label may not
   * move a deadline years out)... */
  cleanup_workload struct rp_workload *long_ =
      workload("c1", "web-3", start, "reaper.max-age", "1000d", NULL);
  rp_policy_decide(&c, long_, &d);
  assert_int_equal(d.max_age_ms, 2 * HOUR_MS);
  assert_int_equal(d.deadline_ms, start + 2 * HOUR_MS);
  assert_string_equal(d.warning,
                      "container local/web-3: label reaper.max-age=\"1000d\" "
                      "refused: a label may lengthen max_age only up to "
                      "hard_max_age, which policy web does not set");
  /* ...and cut to the ceiling with one. */
  ps[0].hard_max_age_ms = 6 * HOUR_MS;
  rp_policy_decide(&c, long_, &d);
  assert_int_equal(d.max_age_ms, 6 * HOUR_MS);
  assert_int_equal(d.deadline_ms, start + 6 * HOUR_MS);
  assert_string_equal(d.warning, "container local/web-3: label "
                                 "reaper.max-age=\"1000d\" cut to "
                                 "hard_max_age 6h");
  /* Within the ceiling: as asked, no warning. */
  cleanup_workload struct rp_workload *within =
      workload("c2", "web-4", start, "reaper.max-age", "4h", NULL);
  rp_policy_decide(&c, within, &d);
  assert_int_equal(d.max_age_ms, 4 * HOUR_MS);
  assert_null(d.warning);
}

static void
test_warnings_accumulate_and_are_sanitized(void **state)
{
  struct rp_policy ps[1] = {policy(S("web"), 2 * HOUR_MS)};
  struct rp_config c = {.policies = ps, .n_policies = 1};
  cleanup_workload struct rp_workload *w =
      workload("a1", "web-1", 0, "reaper.exclude", "maybe", "reaper.policy",
               "x\ny", "reaper.max-age", "soon", NULL);
  cleanup_decision struct rp_decision d = {0};
  rp_policy_decide(&c, w, &d);
  assert_ptr_equal(d.policy, &ps[0]);
  assert_non_null(strstr(d.warning, "reaper.exclude=\"maybe\""));
  assert_non_null(strstr(d.warning, "; container local/web-1: label "
                                    "reaper.policy=\"x?y\""));
  /* The buffer is full by now; the third warning is cut, not overflowed. */
  assert_true(strlen(d.warning) < RP_DECISION_WARNING_MAX);
  assert_null(strchr(d.warning, '\n'));

  /* A long value is cut with an ellipsis. */
  char long_value[300];
  memset(long_value, 'z', sizeof(long_value) - 1);
  long_value[sizeof(long_value) - 1] = '\0';
  cleanup_workload struct rp_workload *l =
      workload("a2", "web-2", 0, "reaper.exclude", long_value, NULL);
  rp_policy_decide(&c, l, &d);
  assert_non_null(strstr(d.warning, "zzz...\" is neither"));
}

static void
test_jitter_exact_and_stable(void **state)
{
  /* SHA-256("local\0abc123"): its top 53 bits as a fraction are
   * 0.6455517048438885, times 10% of 2h. */
  assert_int_equal(rp_policy_jitter_ms("local", "abc123", 2 * HOUR_MS, 0.1),
                   464797);
  assert_int_equal(rp_policy_jitter_ms("local", "3f2a9c0d1e", DAY_MS, 0.25),
                   558627);
  assert_int_equal(rp_policy_jitter_ms("local", "abc123", 2 * HOUR_MS, 0.1),
                   464797);
  /* The provider is part of the draw, and so is the boundary. */
  assert_int_not_equal(rp_policy_jitter_ms("other", "abc123", DAY_MS, 1),
                       rp_policy_jitter_ms("local", "abc123", DAY_MS, 1));
  assert_int_not_equal(rp_policy_jitter_ms("ab", "c", DAY_MS, 1),
                       rp_policy_jitter_ms("a", "bc", DAY_MS, 1));
  assert_int_equal(rp_policy_jitter_ms("local", "abc123", DAY_MS, 0), 0);
  assert_int_equal(rp_policy_jitter_ms("local", "abc123", 0, 0.5), 0);
  /* Over 100% is read as 100%. */
  assert_int_equal(rp_policy_jitter_ms("local", "abc123", 1000000, 3),
                   rp_policy_jitter_ms("local", "abc123", 1000000, 1));
}

static void
test_jitter_bounds_and_distribution(void **state)
{
  enum { IDS = 10000, BUCKETS = 20 };
  const int64_t max_age = 2 * HOUR_MS;
  const double jitter = 0.1;
  const int64_t range = (int64_t)(jitter * (double)max_age);
  int counts[BUCKETS] = {0};
  for (int i = 0; i < IDS; i++) {
    char id[32];
    snprintf(id, sizeof(id), "container-%05d", i);
    int64_t j = rp_policy_jitter_ms("local", id, max_age, jitter);
    assert_true(j >= 0 && j <= range);
    int b = (int)(j * BUCKETS / (range + 1));
    counts[b]++;
  }
  /* Chi-square with 19 degrees of freedom: 43.8 is its 0.1% tail. */
  double expected = (double)IDS / BUCKETS, chi2 = 0;
  for (int b = 0; b < BUCKETS; b++)
    chi2 += (counts[b] - expected) * (counts[b] - expected) / expected;
  if (chi2 > 43.8)
    fail_msg("jitter is not uniform: chi-square %.1f over %d buckets", chi2,
             BUCKETS);
}

static void
test_deadline_exact(void **state)
{
  struct rp_policy ps[1] = {policy(S("web"), 2 * HOUR_MS)};
  ps[0].jitter = 0.1;
  struct rp_config c = {.policies = ps, .n_policies = 1};
  const int64_t start = utc(2026, 6, 10, 8, 0);
  cleanup_workload struct rp_workload *w =
      workload("abc123", "web-1", start, NULL);
  cleanup_decision struct rp_decision d = {0};
  rp_policy_decide(&c, w, &d);
  assert_int_equal(d.max_age_ms, 2 * HOUR_MS);
  assert_int_equal(d.jitter_ms, 464797);
  assert_int_equal(d.deadline_ms, start + 2 * HOUR_MS - 464797);
  assert_int_equal(d.due_ms, d.deadline_ms);
  assert_int_equal(d.hard_ms, 0);

  /* The label's max_age is what the jitter is a fraction of (a longer one,
   * up to the ceiling). */
  ps[0].hard_max_age_ms = 2 * DAY_MS;
  json_object_set_new(w->labels, "reaper.max-age", json_string("1d"));
  rp_policy_decide(&c, w, &d);
  int64_t j = rp_policy_jitter_ms("local", "abc123", DAY_MS, 0.1);
  assert_int_equal(d.jitter_ms, j);
  assert_int_equal(d.deadline_ms, start + DAY_MS - j);
}

static void
test_window_and_hard_max_age(void **state)
{
  struct rp_policy ps[1] = {policy(S("web"), 2 * HOUR_MS)};
  ps[0].window = (struct rp_window){.set = true,
                                    .days = 0x3e, /* Monday to Friday */
                                    .start_min = 9 * 60,
                                    .end_min = 17 * 60,
                                    .tz = S("Europe/Berlin")};
  struct rp_config c = {.policies = ps, .n_policies = 1};
  /* Started Friday 2026-03-27 14:00Z: due at 16:00Z, 17:00 CET, as the
   * window closes, so Monday 09:00 CEST (07:00Z) after the DST change. */
  const int64_t start = utc(2026, 3, 27, 14, 0);
  cleanup_workload struct rp_workload *w = workload("a1", "web-1", start, NULL);
  cleanup_decision struct rp_decision d = {0};
  rp_policy_decide(&c, w, &d);
  assert_int_equal(d.deadline_ms, utc(2026, 3, 27, 16, 0));
  assert_int_equal(d.due_ms, utc(2026, 3, 30, 7, 0));
  assert_int_equal(d.hard_ms, 0);

  /* A 6h ceiling: the window no longer holds it back past 20:00Z. */
  ps[0].hard_max_age_ms = 6 * HOUR_MS;
  rp_policy_decide(&c, w, &d);
  assert_int_equal(d.hard_ms, utc(2026, 3, 27, 20, 0));
  assert_int_equal(d.due_ms, utc(2026, 3, 27, 20, 0));

  /* A ceiling below max_age (the configuration refuses one, a label may not
   * make one): it is still the latest moment, for the deadline too. */
  ps[0].hard_max_age_ms = HOUR_MS;
  rp_policy_decide(&c, w, &d);
  assert_int_equal(d.hard_ms, utc(2026, 3, 27, 15, 0));
  assert_int_equal(d.deadline_ms, utc(2026, 3, 27, 15, 0));
  assert_int_equal(d.due_ms, utc(2026, 3, 27, 15, 0));

  /* A ceiling after the window opens changes nothing. */
  ps[0].hard_max_age_ms = 4 * DAY_MS;
  rp_policy_decide(&c, w, &d);
  assert_int_equal(d.hard_ms, utc(2026, 3, 31, 14, 0));
  assert_int_equal(d.due_ms, utc(2026, 3, 30, 7, 0));

  /* Due inside the window: due is the deadline. */
  cleanup_workload struct rp_workload *early =
      workload("a2", "web-2", utc(2026, 3, 27, 8, 0), NULL);
  rp_policy_decide(&c, early, &d);
  assert_int_equal(d.due_ms, utc(2026, 3, 27, 10, 0));
}

static void
test_budget(void **state)
{
  struct rp_budget one = {1, false}, three = {3, false};
  assert_int_equal(rp_budget_limit(&one, 50), 1);
  assert_int_equal(rp_budget_limit(&three, 50), 3);
  assert_int_equal(rp_budget_limit(&three, 1), 3);
  struct rp_budget p25 = {25, true}, p10 = {10, true}, p100 = {100, true};
  struct rp_budget p33 = {33, true}, p0 = {0, true}, zero = {0, false};
  assert_int_equal(rp_budget_limit(&p25, 10), 3);
  assert_int_equal(rp_budget_limit(&p10, 5), 1);
  assert_int_equal(rp_budget_limit(&p10, 20), 2);
  assert_int_equal(rp_budget_limit(&p10, 21), 3);
  assert_int_equal(rp_budget_limit(&p33, 10), 4);
  assert_int_equal(rp_budget_limit(&p100, 7), 7);
  /* At least one, whatever the numbers. */
  assert_int_equal(rp_budget_limit(&p25, 0), 1);
  assert_int_equal(rp_budget_limit(&p0, 10), 1);
  assert_int_equal(rp_budget_limit(&zero, 10), 1);
  assert_int_equal(rp_budget_limit(NULL, 10), 1);
}

static void
assert_argv(char **got, const char *const *want)
{
  assert_non_null(got);
  size_t i = 0;
  for (; want[i]; i++) {
    assert_non_null(got[i]);
    assert_string_equal(got[i], want[i]);
  }
  assert_null(got[i]);
}

static void
test_drain_argv(void **state)
{
  char *pdrain[] = {S("/usr/bin/drain"), S("--soft"), NULL};
  struct rp_policy p = policy(S("web"), HOUR_MS);
  p.drain = pdrain;
  char warn[200];

  cleanup_workload struct rp_workload *plain = workload("a", "w", 0, NULL);
  char **argv = rp_policy_drain_argv(plain, &p, warn, sizeof(warn));
  assert_argv(argv, (const char *[]){"/usr/bin/drain", "--soft", NULL});
  assert_ptr_not_equal(argv, pdrain); /* a copy the caller owns */
  assert_string_equal(warn, "");
  rp_policy_argv_free(argv);
  assert_null(rp_policy_drain_argv(plain, NULL, warn, sizeof(warn)));
  struct rp_policy nodrain = policy(S("x"), HOUR_MS);
  assert_null(rp_policy_drain_argv(plain, &nodrain, warn, sizeof(warn)));

  cleanup_workload struct rp_workload *json = workload(
      "a", "w", 0, "reaper.drain", "[\"/bin/kill\", \"-USR1\", \"1\"]", NULL);
  argv = rp_policy_drain_argv(json, &p, warn, sizeof(warn));
  assert_argv(argv, (const char *[]){"/bin/kill", "-USR1", "1", NULL});
  assert_string_equal(warn, "");
  rp_policy_argv_free(argv);

  static const char *const shell[] = {
      "kill -USR1 1", "[ -f /run/app.pid ] && kill $(cat /run/app.pid)",
      "{\"not\": \"an array\"}", "\"quoted\""};
  for (size_t i = 0; i < RP_ARRAY_LEN(shell); i++) {
    cleanup_workload struct rp_workload *sh =
        workload("a", "w", 0, "reaper.drain", shell[i], NULL);
    argv = rp_policy_drain_argv(sh, &p, warn, sizeof(warn));
    assert_argv(argv, (const char *[]){"/bin/sh", "-c", shell[i], NULL});
    assert_string_equal(warn, "");
    rp_policy_argv_free(argv);
  }

  static const char *const bad[] = {"[]", "[\"/bin/kill\", 1]", "[null]",
                                    "[\"\"]", ""};
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    cleanup_workload struct rp_workload *b =
        workload("a", "web-7", 0, "reaper.drain", bad[i], NULL);
    argv = rp_policy_drain_argv(b, &p, warn, sizeof(warn));
    assert_argv(argv, (const char *[]){"/usr/bin/drain", "--soft", NULL});
    assert_non_null(strstr(warn, "container local/web-7: label reaper.drain"));
    assert_non_null(strstr(warn, "ignored"));
    rp_policy_argv_free(argv);
  }
  rp_policy_argv_free(NULL);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_match_wins),
      cmocka_unit_test(test_match_fields),
      cmocka_unit_test(test_no_policy_matches),
      cmocka_unit_test(test_exclusions),
      cmocka_unit_test(test_policy_label),
      cmocka_unit_test(test_max_age_label),
      cmocka_unit_test(test_warnings_accumulate_and_are_sanitized),
      cmocka_unit_test(test_jitter_exact_and_stable),
      cmocka_unit_test(test_jitter_bounds_and_distribution),
      cmocka_unit_test(test_deadline_exact),
      cmocka_unit_test(test_window_and_hard_max_age),
      cmocka_unit_test(test_budget),
      cmocka_unit_test(test_drain_argv),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
