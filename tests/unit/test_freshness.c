/* Fresh content's pure decisions: content age (first seen, a plausible
 * Created), settle, the update and image_age deadlines and their place
 * beside max_age (the earliest wins, in the window, never past
 * hard_max_age), whether a recycle moves to the new digest, and quarantine
 * counting.  Every time is given: nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "freshness.h"
#include "policy.h"
#include "util.h"

#define S_MS INT64_C(1000)
#define MIN_MS (60 * S_MS)
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

/* 2026-11-30 12:00 UTC, a Monday. */
#define NOW utc(2026, 11, 30, 12, 0)

static struct rp_policy
fresh_policy(void)
{
  return (struct rp_policy){
      .name = (char[]){"web"},
      .match_kind = -1,
      .max_age_ms = 2 * HOUR_MS,
      .update = true,
      .update_check_ms = 5 * MIN_MS,
      .update_max_failures = 1,
  };
}

/* A decision as rp_policy_decide makes it for a workload started at
 * `started` under p (no jitter, no label). */
static struct rp_decision
decided(const struct rp_policy *p, int64_t started)
{
  struct rp_decision d = {.policy = p, .max_age_ms = p->max_age_ms};
  d.deadline_ms = started + p->max_age_ms;
  d.due_ms = rp_window_next_open(&p->window, d.deadline_ms);
  d.due_reason = RP_DUE_MAX_AGE;
  if (p->hard_max_age_ms) {
    d.hard_ms = started + p->hard_max_age_ms;
    if (d.deadline_ms > d.hard_ms) {
      d.deadline_ms = d.hard_ms;
      d.due_reason = RP_DUE_HARD_MAX_AGE;
    }
    if (d.due_ms > d.hard_ms) {
      d.due_ms = d.hard_ms;
      d.due_reason = RP_DUE_HARD_MAX_AGE;
    }
  }
  return d;
}

static struct rp_content_facts
known(int64_t first_seen, int64_t created)
{
  return (struct rp_content_facts){.state = RP_CONTENT_KNOWN,
                                   .first_seen_ms = first_seen,
                                   .created_ms = created};
}

/* --- content age ----------------------------------------------------------*/

static void
test_birth(void **state)
{
  (void)state;
  int64_t seen = NOW - 3 * DAY_MS;
  /* Created earlier than first seen and plausible: it counts. */
  assert_int_equal(rp_content_birth_ms(seen, NOW - 10 * DAY_MS, NOW),
                   NOW - 10 * DAY_MS);
  /* Created later than first seen (rebuilt with the same digest? a clock
   * ahead): the earliest is first seen. */
  assert_int_equal(rp_content_birth_ms(seen, NOW - DAY_MS, NOW), seen);
  /* Reproducible builds: 1970 is not plausible. */
  assert_int_equal(rp_content_birth_ms(seen, 0, NOW), seen);
  assert_int_equal(rp_content_birth_ms(seen, 1000, NOW), seen);
  assert_int_equal(rp_content_birth_ms(seen, utc(2012, 12, 31, 23, 0), NOW),
                   seen);
  /* From the future: not plausible. */
  assert_int_equal(rp_content_birth_ms(seen, NOW + MIN_MS, NOW), seen);
  /* Only one known. */
  assert_int_equal(rp_content_birth_ms(0, NOW - 5 * DAY_MS, NOW),
                   NOW - 5 * DAY_MS);
  assert_int_equal(rp_content_birth_ms(0, 1000, NOW), 0);
  assert_int_equal(rp_content_birth_ms(0, 0, NOW), 0);
  assert_int_equal(rp_content_birth_ms(0, utc(2013, 6, 1, 0, 0), NOW),
                   utc(2013, 6, 1, 0, 0));
}

/* --- update and settle ---------------------------------------------------- */

static void
test_no_newer_nothing_due(void **state)
{
  (void)state;
  struct rp_policy p = fresh_policy();
  p.max_image_age_ms = DAY_MS;
  struct rp_content_facts f = known(NOW - 30 * DAY_MS, 0);
  struct rp_freshness fr;
  rp_freshness_decide(&p, &f, NOW, &fr);
  assert_int_equal(fr.newer, RP_NEWER_NONE);
  assert_true(fr.update_ms == RP_FRESHNESS_NEVER);
  /* Old content, but nothing newer to run: a recycle would leave it as
   * old, so it is not due for its age. */
  assert_true(fr.image_age_ms == RP_FRESHNESS_NEVER);
  assert_int_equal(fr.birth_ms, NOW - 30 * DAY_MS);
  struct rp_decision d = decided(&p, NOW - HOUR_MS);
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.deadline_ms, NOW + HOUR_MS);
  assert_int_equal(d.due_reason, RP_DUE_MAX_AGE);
}

static void
test_update_due_at_once_without_settle(void **state)
{
  (void)state;
  struct rp_policy p = fresh_policy();
  struct rp_content_facts f = known(NOW - DAY_MS, 0);
  f.newer = true;
  f.newer_seen_ms = NOW - MIN_MS;
  struct rp_freshness fr;
  rp_freshness_decide(&p, &f, NOW, &fr);
  assert_int_equal(fr.newer, RP_NEWER_READY);
  assert_int_equal(fr.update_ms, NOW - MIN_MS);
  struct rp_decision d = decided(&p, NOW - 10 * MIN_MS);
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.due_reason, RP_DUE_UPDATE);
  assert_int_equal(d.deadline_ms, NOW - MIN_MS);
  assert_int_equal(d.due_ms, NOW - MIN_MS);
}

static void
test_settle_holds_back(void **state)
{
  (void)state;
  struct rp_policy p = fresh_policy();
  p.update_settle_ms = HOUR_MS;
  struct rp_content_facts f = known(NOW - DAY_MS, 0);
  f.newer = true;
  f.newer_seen_ms = NOW - 10 * MIN_MS;
  struct rp_freshness fr;
  rp_freshness_decide(&p, &f, NOW, &fr);
  assert_int_equal(fr.newer, RP_NEWER_SETTLING);
  assert_int_equal(fr.newer_ready_ms, NOW + 50 * MIN_MS);
  assert_int_equal(fr.update_ms, NOW + 50 * MIN_MS);
  /* Its max age comes later: the update deadline wins, in 50 min. */
  struct rp_decision d = decided(&p, NOW - HOUR_MS);
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.due_reason, RP_DUE_UPDATE);
  assert_int_equal(d.due_ms, NOW + 50 * MIN_MS);
  /* Its max age comes first: max_age wins (and the recycle may still move,
   * see test_moves; settling here, it does not). */
  d = decided(&p, NOW - 110 * MIN_MS);
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.due_reason, RP_DUE_MAX_AGE);
  assert_int_equal(d.due_ms, NOW + 10 * MIN_MS);
  /* Exactly settled: ready. */
  rp_freshness_decide(&p, &f, NOW + 50 * MIN_MS, &fr);
  assert_int_equal(fr.newer, RP_NEWER_READY);
}

static void
test_quarantined_or_refused_never_due(void **state)
{
  (void)state;
  struct rp_policy p = fresh_policy();
  p.max_image_age_ms = HOUR_MS;
  struct rp_content_facts f = known(NOW - DAY_MS, 0);
  f.newer = true;
  f.newer_seen_ms = NOW - HOUR_MS;
  f.newer_quarantined = true;
  struct rp_freshness fr;
  rp_freshness_decide(&p, &f, NOW, &fr);
  assert_int_equal(fr.newer, RP_NEWER_QUARANTINED);
  assert_true(fr.update_ms == RP_FRESHNESS_NEVER);
  assert_true(fr.image_age_ms == RP_FRESHNESS_NEVER);
  assert_false(rp_freshness_moves(&p, RP_DUE_MAX_AGE, &fr));
  f.newer_quarantined = false;
  f.newer_refused = true;
  rp_freshness_decide(&p, &f, NOW, &fr);
  assert_int_equal(fr.newer, RP_NEWER_REFUSED);
  assert_true(fr.update_ms == RP_FRESHNESS_NEVER);
  assert_false(rp_freshness_moves(&p, RP_DUE_MAX_AGE, &fr));
  struct rp_decision d = decided(&p, NOW - HOUR_MS);
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.due_reason, RP_DUE_MAX_AGE);
}

static void
test_not_known_never_due(void **state)
{
  (void)state;
  struct rp_policy p = fresh_policy();
  p.max_image_age_ms = HOUR_MS;
  static const enum rp_content_state states[] = {
      RP_CONTENT_NONE, RP_CONTENT_LOCAL, RP_CONTENT_PINNED, RP_CONTENT_UNKNOWN};
  for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
    struct rp_content_facts f = {.state = states[i],
                                 .created_ms = NOW - 30 * DAY_MS,
                                 .newer = true,
                                 .newer_seen_ms = NOW - DAY_MS};
    struct rp_freshness fr;
    rp_freshness_decide(&p, &f, NOW, &fr);
    assert_int_equal(fr.newer, RP_NEWER_NONE);
    assert_true(fr.update_ms == RP_FRESHNESS_NEVER);
    assert_true(fr.image_age_ms == RP_FRESHNESS_NEVER);
  }
}

/* --- image_age ------------------------------------------------------------ */

static void
test_image_age(void **state)
{
  (void)state;
  struct rp_policy p = fresh_policy();
  p.update = false; /* max_image_age alone */
  p.max_image_age_ms = 30 * DAY_MS;
  /* Built 40 days ago (Created), first seen 10 days ago; a newer digest
   * seen yesterday: due since 10 days ago's birth + 30 d = 10 days ago, but
   * not before the newer digest was seen. */
  struct rp_content_facts f = known(NOW - 10 * DAY_MS, NOW - 40 * DAY_MS);
  f.newer = true;
  f.newer_seen_ms = NOW - DAY_MS;
  struct rp_freshness fr;
  rp_freshness_decide(&p, &f, NOW, &fr);
  assert_int_equal(fr.birth_ms, NOW - 40 * DAY_MS);
  assert_true(fr.update_ms == RP_FRESHNESS_NEVER); /* no update: */
  assert_int_equal(fr.image_age_ms, NOW - DAY_MS);
  struct rp_decision d = decided(&p, NOW - HOUR_MS);
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.due_reason, RP_DUE_IMAGE_AGE);
  assert_int_equal(d.due_ms, NOW - DAY_MS);
  assert_true(rp_freshness_moves(&p, RP_DUE_IMAGE_AGE, &fr));
  /* A max-age recycle of a policy that neither follows its tag nor pulls
   * keeps the content. */
  assert_false(rp_freshness_moves(&p, RP_DUE_MAX_AGE, &fr));

  /* Created in 1970 (reproducible): the age runs from first seen, 10
   * days: due in 20 days, unless max_age comes first. */
  f = known(NOW - 10 * DAY_MS, 1000);
  f.newer = true;
  f.newer_seen_ms = NOW - DAY_MS;
  rp_freshness_decide(&p, &f, NOW, &fr);
  assert_int_equal(fr.birth_ms, NOW - 10 * DAY_MS);
  assert_int_equal(fr.image_age_ms, NOW + 20 * DAY_MS);
  d = decided(&p, NOW - HOUR_MS);
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.due_reason, RP_DUE_MAX_AGE);

  /* Old content whose newer digest settles: due when it has settled. */
  p.update_settle_ms = 2 * DAY_MS;
  f = known(NOW - 40 * DAY_MS, 0);
  f.newer = true;
  f.newer_seen_ms = NOW - DAY_MS;
  rp_freshness_decide(&p, &f, NOW, &fr);
  assert_int_equal(fr.image_age_ms, NOW + DAY_MS);
}

/* --- the earliest, in the window, under the ceiling ---------------------- */

static void
test_window_and_ceiling(void **state)
{
  (void)state;
  struct rp_policy p = fresh_policy();
  p.max_age_ms = 7 * DAY_MS;
  p.hard_max_age_ms = 8 * DAY_MS;
  /* Weekdays 09:00-17:00 UTC. */
  p.window = (struct rp_window){
      .set = true, .days = 0x3e, .start_min = 9 * 60, .end_min = 17 * 60};
  struct rp_content_facts f = known(NOW - DAY_MS, 0);
  f.newer = true;
  /* Seen Monday 20:00: the window holds the rollout to Tuesday 09:00. */
  f.newer_seen_ms = utc(2026, 11, 30, 20, 0);
  struct rp_freshness fr;
  rp_freshness_decide(&p, &f, utc(2026, 11, 30, 21, 0), &fr);
  struct rp_decision d = decided(&p, NOW - HOUR_MS);
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.due_reason, RP_DUE_UPDATE);
  assert_int_equal(d.deadline_ms, utc(2026, 11, 30, 20, 0));
  assert_int_equal(d.due_ms, utc(2026, 12, 1, 9, 0));
  /* A workload whose ceiling comes before the window opens: the ceiling,
   * for the update as for its max age. */
  p.hard_max_age_ms = p.max_age_ms;
  d = decided(&p, utc(2026, 11, 23, 22, 0)); /* hard: Mon 30th 22:00 */
  assert_int_equal(d.due_reason, RP_DUE_HARD_MAX_AGE);
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.due_reason, RP_DUE_HARD_MAX_AGE);
  assert_int_equal(d.due_ms, utc(2026, 11, 30, 22, 0));
}

static void
test_excluded_untouched(void **state)
{
  (void)state;
  struct rp_policy p = fresh_policy();
  struct rp_content_facts f = known(NOW - DAY_MS, 0);
  f.newer = true;
  f.newer_seen_ms = NOW - DAY_MS;
  struct rp_freshness fr;
  rp_freshness_decide(&p, &f, NOW, &fr);
  struct rp_decision d = {.excluded = true, .deadline_ms = 0, .due_ms = 0};
  rp_freshness_apply(&d, &fr);
  assert_int_equal(d.due_ms, 0);
  struct rp_decision none = {0};
  rp_freshness_apply(&none, &fr);
  assert_int_equal(none.due_ms, 0);
}

/* --- moving, quarantines ------------------------------------------------- */

static void
test_moves(void **state)
{
  (void)state;
  struct rp_freshness ready = {.newer = RP_NEWER_READY};
  struct rp_freshness settling = {.newer = RP_NEWER_SETTLING};
  struct rp_policy p = fresh_policy();
  assert_true(rp_freshness_moves(&p, RP_DUE_UPDATE, &ready));
  /* update: a max-age recycle takes the newer digest too. */
  assert_true(rp_freshness_moves(&p, RP_DUE_MAX_AGE, &ready));
  assert_false(rp_freshness_moves(&p, RP_DUE_MAX_AGE, &settling));
  /* pull: true passes the same settle. */
  p.update = false;
  p.pull = true;
  assert_true(rp_freshness_moves(&p, RP_DUE_HARD_MAX_AGE, &ready));
  assert_false(rp_freshness_moves(&p, RP_DUE_HARD_MAX_AGE, &settling));
  /* Neither: the content it runs. */
  p.pull = false;
  assert_false(rp_freshness_moves(&p, RP_DUE_LABEL, &ready));
  assert_false(rp_freshness_moves(NULL, RP_DUE_UPDATE, &ready));
}

static void
test_quarantine_counting(void **state)
{
  (void)state;
  assert_false(rp_freshness_quarantines(0, 1, false));
  assert_true(rp_freshness_quarantines(1, 1, false));
  assert_false(rp_freshness_quarantines(1, 3, false));
  assert_false(rp_freshness_quarantines(2, 3, false));
  assert_true(rp_freshness_quarantines(3, 3, false));
  assert_true(rp_freshness_quarantines(4, 3, false));
  /* update.allow: never. */
  assert_false(rp_freshness_quarantines(10, 1, true));
  /* A policy without a number: the default, one. */
  assert_true(rp_freshness_quarantines(1, 0, false));
}

static void
test_names(void **state)
{
  (void)state;
  assert_string_equal(rp_due_reason_name(RP_DUE_MAX_AGE), "max_age");
  assert_string_equal(rp_due_reason_name(RP_DUE_HARD_MAX_AGE), "hard_max_age");
  assert_string_equal(rp_due_reason_name(RP_DUE_LABEL), "label");
  assert_string_equal(rp_due_reason_name(RP_DUE_UPDATE), "update");
  assert_string_equal(rp_due_reason_name(RP_DUE_IMAGE_AGE), "image_age");
  assert_string_equal(rp_newer_state_name(RP_NEWER_SETTLING), "settling");
  assert_string_equal(rp_newer_state_name(RP_NEWER_QUARANTINED), "quarantined");
  assert_string_equal(rp_content_state_name(RP_CONTENT_LOCAL), "local");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_birth),
      cmocka_unit_test(test_no_newer_nothing_due),
      cmocka_unit_test(test_update_due_at_once_without_settle),
      cmocka_unit_test(test_settle_holds_back),
      cmocka_unit_test(test_quarantined_or_refused_never_due),
      cmocka_unit_test(test_not_known_never_due),
      cmocka_unit_test(test_image_age),
      cmocka_unit_test(test_window_and_ceiling),
      cmocka_unit_test(test_excluded_untouched),
      cmocka_unit_test(test_moves),
      cmocka_unit_test(test_quarantine_counting),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
