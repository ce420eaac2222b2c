/* Maintenance windows: inside/outside, next opening, crossing midnight, and
 * the DST changes of 2026 in Europe/Berlin and America/New_York, checked
 * against exact UTC instants and against glibc's localtime_r(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "policy.h"
#include "util.h"

enum {
  SUN = 1 << 0,
  MON = 1 << 1,
  TUE = 1 << 2,
  WED = 1 << 3,
  THU = 1 << 4,
  FRI = 1 << 5,
  SAT = 1 << 6,
  WEEKDAYS = MON | TUE | WED | THU | FRI,
  EVERY_DAY = 0x7f,
};

static char tz_berlin[] = "Europe/Berlin";
static char tz_new_york[] = "America/New_York";

/* Milliseconds since the Epoch of a UTC date and time. */
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

static struct rp_window
window(uint8_t days, int start_h, int start_m, int end_h, int end_m, char *tz)
{
  return (struct rp_window){.set = true,
                            .days = days,
                            .start_min = start_h * 60 + start_m,
                            .end_min = end_h * 60 + end_m,
                            .tz = tz};
}

/* Compares instants as readable text, so that a failure says which. */
static void
assert_instant(int64_t got, int64_t want)
{
  char g[40], w[40];
  rp_format_time_ms(got, g, sizeof(g));
  rp_format_time_ms(want, w, sizeof(w));
  assert_string_equal(g, w);
}

static void
test_unset_window_is_always_open(void **state)
{
  struct rp_window w = {.set = false};
  int64_t t = utc(2026, 3, 29, 1, 30);
  assert_true(rp_window_contains(&w, t));
  assert_true(rp_window_contains(NULL, t));
  assert_int_equal(rp_window_next_open(&w, t), t);
  assert_int_equal(rp_window_next_open(NULL, t), t);
}

static void
test_utc_weekdays(void **state)
{
  struct rp_window w = window(WEEKDAYS, 9, 0, 17, 0, NULL);
  int64_t wed_noon = utc(2026, 6, 10, 12, 0); /* a Wednesday */
  assert_true(rp_window_contains(&w, wed_noon));
  assert_int_equal(rp_window_next_open(&w, wed_noon), wed_noon);
  /* The start is inside, the end is not. */
  assert_true(rp_window_contains(&w, utc(2026, 6, 10, 9, 0)));
  assert_false(rp_window_contains(&w, utc(2026, 6, 10, 9, 0) - 1));
  assert_true(rp_window_contains(&w, utc(2026, 6, 10, 17, 0) - 1));
  assert_false(rp_window_contains(&w, utc(2026, 6, 10, 17, 0)));
  assert_instant(rp_window_next_open(&w, utc(2026, 6, 10, 17, 0)),
                 utc(2026, 6, 11, 9, 0));
  assert_instant(rp_window_next_open(&w, utc(2026, 6, 10, 8, 59)),
                 utc(2026, 6, 10, 9, 0));
  /* Saturday and Sunday are not listed: Monday. */
  assert_false(rp_window_contains(&w, utc(2026, 6, 13, 10, 0)));
  assert_instant(rp_window_next_open(&w, utc(2026, 6, 13, 10, 0)),
                 utc(2026, 6, 15, 9, 0));
  assert_instant(rp_window_next_open(&w, utc(2026, 6, 12, 17, 30)),
                 utc(2026, 6, 15, 9, 0));
  /* "UTC" by name is the same as no zone. */
  char utc_name[] = "UTC";
  struct rp_window wu = window(WEEKDAYS, 9, 0, 17, 0, utc_name);
  assert_instant(rp_window_next_open(&wu, utc(2026, 6, 13, 10, 0)),
                 utc(2026, 6, 15, 9, 0));
}

static void
test_across_midnight(void **state)
{
  /* Friday 22:00 to Saturday 04:00: the day listed is the day it opens. */
  struct rp_window w = window(FRI, 22, 0, 4, 0, NULL);
  assert_true(rp_window_contains(&w, utc(2026, 6, 12, 22, 0)));
  assert_true(rp_window_contains(&w, utc(2026, 6, 13, 2, 0)));
  assert_false(rp_window_contains(&w, utc(2026, 6, 13, 4, 0)));
  /* Thursday night is not Friday night, Friday morning is Thursday's. */
  assert_false(rp_window_contains(&w, utc(2026, 6, 11, 23, 0)));
  assert_false(rp_window_contains(&w, utc(2026, 6, 12, 2, 0)));
  assert_instant(rp_window_next_open(&w, utc(2026, 6, 11, 23, 0)),
                 utc(2026, 6, 12, 22, 0));
  assert_instant(rp_window_next_open(&w, utc(2026, 6, 12, 22, 0) - 1),
                 utc(2026, 6, 12, 22, 0));
  assert_instant(rp_window_next_open(&w, utc(2026, 6, 13, 4, 0)),
                 utc(2026, 6, 19, 22, 0));
  int64_t sat_3am = utc(2026, 6, 13, 3, 0);
  assert_int_equal(rp_window_next_open(&w, sat_3am), sat_3am);
}

static void
test_berlin_weekdays_around_spring_forward(void **state)
{
  /* 09:00 local is 08:00Z in winter (CET, +1) and 07:00Z in summer (CEST,
   * +2); Berlin moves its clocks on Sunday 2026-03-29. */
  struct rp_window w = window(WEEKDAYS, 9, 0, 17, 0, tz_berlin);
  assert_true(rp_window_contains(&w, utc(2026, 3, 27, 8, 0)));
  assert_false(rp_window_contains(&w, utc(2026, 3, 27, 8, 0) - 1));
  assert_true(rp_window_contains(&w, utc(2026, 3, 27, 16, 0) - 1));
  assert_false(rp_window_contains(&w, utc(2026, 3, 27, 16, 0)));
  assert_instant(rp_window_next_open(&w, utc(2026, 3, 27, 6, 0)),
                 utc(2026, 3, 27, 8, 0));
  /* Friday after hours: Monday 09:00 CEST. */
  assert_instant(rp_window_next_open(&w, utc(2026, 3, 27, 16, 30)),
                 utc(2026, 3, 30, 7, 0));
  assert_true(rp_window_contains(&w, utc(2026, 3, 30, 7, 0)));
  assert_false(rp_window_contains(&w, utc(2026, 3, 30, 15, 0)));
}

static void
test_berlin_spring_forward_gap(void **state)
{
  /* 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z; 02:30 never
   * happens, so the window opens at the first instant after it, 01:00Z. */
  struct rp_window w = window(EVERY_DAY, 2, 30, 4, 0, tz_berlin);
  assert_instant(rp_window_next_open(&w, utc(2026, 3, 29, 0, 0)),
                 utc(2026, 3, 29, 1, 0));
  assert_false(rp_window_contains(&w, utc(2026, 3, 29, 1, 0) - 1));
  assert_true(rp_window_contains(&w, utc(2026, 3, 29, 1, 0)));
  assert_true(rp_window_contains(&w, utc(2026, 3, 29, 2, 0) - 1));
  assert_false(rp_window_contains(&w, utc(2026, 3, 29, 2, 0)));
  /* The day before and the day after, in CET and CEST. */
  assert_instant(rp_window_next_open(&w, utc(2026, 3, 28, 0, 0)),
                 utc(2026, 3, 28, 1, 30));
  assert_instant(rp_window_next_open(&w, utc(2026, 3, 29, 2, 0)),
                 utc(2026, 3, 30, 0, 30));

  /* A window entirely inside the gap does not open that day: Sunday
   * 02:00-02:30 next opens a week later. */
  struct rp_window gap = window(SUN, 2, 0, 2, 30, tz_berlin);
  assert_instant(rp_window_next_open(&gap, utc(2026, 3, 28, 12, 0)),
                 utc(2026, 4, 5, 0, 0));
  assert_false(rp_window_contains(&gap, utc(2026, 3, 29, 1, 0)));

  /* Saturday 22:00 to Sunday 04:00 is five hours long that night. */
  struct rp_window night = window(SAT, 22, 0, 4, 0, tz_berlin);
  assert_instant(rp_window_next_open(&night, utc(2026, 3, 28, 20, 0)),
                 utc(2026, 3, 28, 21, 0));
  assert_true(rp_window_contains(&night, utc(2026, 3, 29, 2, 0) - 1));
  assert_false(rp_window_contains(&night, utc(2026, 3, 29, 2, 0)));
}

static void
test_berlin_fall_back(void **state)
{
  /* 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z, so 02:30 happens at
   * 00:30Z and again at 01:30Z; the window opens at the first. */
  struct rp_window w = window(SUN, 2, 30, 4, 0, tz_berlin);
  assert_instant(rp_window_next_open(&w, utc(2026, 10, 24, 22, 0)),
                 utc(2026, 10, 25, 0, 30));
  assert_false(rp_window_contains(&w, utc(2026, 10, 25, 0, 30) - 1));
  assert_true(rp_window_contains(&w, utc(2026, 10, 25, 0, 30)));
  assert_true(rp_window_contains(&w, utc(2026, 10, 25, 1, 30)));
  /* 04:00 CET is 03:00Z. */
  assert_true(rp_window_contains(&w, utc(2026, 10, 25, 3, 0) - 1));
  assert_false(rp_window_contains(&w, utc(2026, 10, 25, 3, 0)));

  struct rp_window day = window(WEEKDAYS, 9, 0, 17, 0, tz_berlin);
  /* Friday 17:00 CEST is 15:00Z; Monday 09:00 CET is 08:00Z. */
  assert_instant(rp_window_next_open(&day, utc(2026, 10, 23, 15, 0)),
                 utc(2026, 10, 26, 8, 0));
  assert_true(rp_window_contains(&day, utc(2026, 10, 23, 7, 0)));
  assert_true(rp_window_contains(&day, utc(2026, 10, 26, 16, 0) - 1));
  assert_false(rp_window_contains(&day, utc(2026, 10, 26, 16, 0)));
}

static void
test_new_york(void **state)
{
  /* 2026-03-08 (EST -5 to EDT -4) and 2026-11-01 (back to EST). */
  struct rp_window w = window(WEEKDAYS, 9, 0, 17, 0, tz_new_york);
  assert_true(rp_window_contains(&w, utc(2026, 3, 6, 14, 0)));
  assert_false(rp_window_contains(&w, utc(2026, 3, 6, 14, 0) - 1));
  assert_instant(rp_window_next_open(&w, utc(2026, 3, 6, 23, 0)),
                 utc(2026, 3, 9, 13, 0));
  assert_instant(rp_window_next_open(&w, utc(2026, 10, 30, 22, 0)),
                 utc(2026, 11, 2, 14, 0));
  /* 02:30 does not exist on 2026-03-08: 03:00 EDT, 07:00Z. */
  struct rp_window gap = window(SUN, 2, 30, 5, 0, tz_new_york);
  assert_instant(rp_window_next_open(&gap, utc(2026, 3, 8, 0, 0)),
                 utc(2026, 3, 8, 7, 0));
  /* 01:30 happens twice on 2026-11-01: 05:30Z (EDT), then 06:30Z. */
  struct rp_window twice = window(SUN, 1, 30, 5, 0, tz_new_york);
  assert_instant(rp_window_next_open(&twice, utc(2026, 11, 1, 0, 0)),
                 utc(2026, 11, 1, 5, 30));
}

static void
test_check_tz(void **state)
{
  struct rp_error *err = NULL;
  assert_int_equal(rp_window_check_tz(NULL, &err), 0);
  assert_int_equal(rp_window_check_tz("UTC", &err), 0);
  assert_int_equal(rp_window_check_tz("Europe/Berlin", &err), 0);
  assert_null(err);

  assert_int_equal(rp_window_check_tz("Europe/Berln", &err), -1);
  assert_non_null(err);
  assert_int_equal(err->code, RP_ECONFIG);
  assert_non_null(strstr(err->message, "Europe/Berln"));
  assert_non_null(strstr(err->message, "No such file"));
  rp_error_free(err);
  err = NULL;

  /* No way out of the zoneinfo directory. */
  assert_int_equal(rp_window_check_tz("../../etc/passwd", &err), -1);
  assert_non_null(strstr(err->message, "not an IANA time zone name"));
  rp_error_free(err);
  err = NULL;
  assert_int_equal(rp_window_check_tz("/etc/localtime", &err), -1);
  rp_error_free(err);
  err = NULL;
  /* A directory is not a zone. */
  assert_int_equal(rp_window_check_tz("Europe", &err), -1);
  rp_error_free(err);
  err = NULL;

  /* An unknown zone computes as UTC rather than never opening. */
  char bad[] = "Europe/Berln";
  struct rp_window w = window(WEEKDAYS, 9, 0, 17, 0, bad);
  assert_instant(rp_window_next_open(&w, utc(2026, 6, 13, 10, 0)),
                 utc(2026, 6, 15, 9, 0));
}

static void
put_be32(FILE *f, uint32_t v)
{
  unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
  fwrite(b, 1, 4, f);
}

/* A TZif v2 file without transitions: only its footer rule says when DST
 * begins and ends, as in the "slim" files other distributions ship. */
static void
write_footer_only_zone(const char *path, const char *footer)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (int block = 0; block < 2; block++) {
    fwrite("TZif2", 1, 5, f);
    fwrite("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 1, 15, f);
    uint32_t counts[6] = {0, 0, 0, 0, 1, 4}; /* one type, "CET\0" */
    for (int i = 0; i < 6; i++)
      put_be32(f, counts[i]);
    put_be32(f, 3600);
    fwrite("\0\0CET", 1, 6, f); /* isdst 0, desigidx 0, then the chars */
  }
  fprintf(f, "\n%s\n", footer);
  fclose(f);
}

static void
test_footer_rule_zone(void **state)
{
  char dir[] = "/tmp/reaper-test-tz-XXXXXX";
  assert_non_null(mkdtemp(dir));
  cleanup_free char *sub = rp_xasprintf("%s/Test", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  cleanup_free char *path = rp_xasprintf("%s/Test/Slim", dir);
  write_footer_only_zone(path, "CET-1CEST,M3.5.0,M10.5.0/3");
  cleanup_free char *south = rp_xasprintf("%s/Test/South", dir);
  /* Sydney's rule: DST spans New Year. */
  write_footer_only_zone(south, "AEST-10AEDT,M10.1.0,M4.1.0/3");

  const char *old = getenv("TZDIR");
  cleanup_free char *saved = old ? rp_xstrdup(old) : NULL;
  setenv("TZDIR", dir, 1);
  struct rp_error *err = NULL;
  assert_int_equal(rp_window_check_tz("Test/Slim", &err), 0);
  assert_int_equal(rp_window_check_tz("Test/South", &err), 0);
  if (saved)
    setenv("TZDIR", saved, 1);
  else
    unsetenv("TZDIR");
  unlink(path);
  unlink(south);
  rmdir(sub);
  rmdir(dir);

  /* Cached after the check: the file is gone and the zone still works. */
  char slim[] = "Test/Slim";
  struct rp_window w = window(EVERY_DAY, 2, 30, 4, 0, slim);
  assert_instant(rp_window_next_open(&w, utc(2026, 3, 29, 0, 0)),
                 utc(2026, 3, 29, 1, 0));
  assert_instant(rp_window_next_open(&w, utc(2026, 10, 24, 22, 0)),
                 utc(2026, 10, 25, 0, 30));
  assert_instant(rp_window_next_open(&w, utc(2026, 1, 15, 0, 0)),
                 utc(2026, 1, 15, 1, 30));
  char s[] = "Test/South";
  struct rp_window ws = window(EVERY_DAY, 12, 0, 13, 0, s);
  /* Noon is 01:00Z in January (AEDT, +11) and 02:00Z in July (+10). */
  assert_instant(rp_window_next_open(&ws, utc(2026, 1, 14, 20, 0)),
                 utc(2026, 1, 15, 1, 0));
  assert_instant(rp_window_next_open(&ws, utc(2026, 7, 14, 20, 0)),
                 utc(2026, 7, 15, 2, 0));
}

/* glibc's view: whether local time t in the current TZ is inside w, by the
 * wall clock.  Valid for windows whose edges avoid the hours in which
 * clocks change (there our rules for gaps and repeats take over). */
static bool
oracle_contains(const struct rp_window *w, int64_t t_ms)
{
  time_t t = (time_t)(t_ms / 1000);
  struct tm tm;
  localtime_r(&t, &tm);
  int m = tm.tm_hour * 60 + tm.tm_min;
  bool today = w->days >> tm.tm_wday & 1;
  bool yesterday = w->days >> ((tm.tm_wday + 6) % 7) & 1;
  if (w->start_min < w->end_min)
    return today && m >= w->start_min && m < w->end_min;
  return (today && m >= w->start_min) || (yesterday && m < w->end_min);
}

static void
test_against_glibc(void **state)
{
  static char zone_names[][32] = {
      "Europe/Berlin", "America/New_York", "Australia/Sydney",
      "Asia/Kolkata",  "America/St_Johns", "Pacific/Chatham",
      "Europe/Dublin", "America/Santiago", "Etc/GMT+5",
  };
  const char *old = getenv("TZ");
  cleanup_free char *saved = old ? rp_xstrdup(old) : NULL;
  /* Now, and past 2037, where fat zone files end and footer rules apply. */
  const int64_t eras[] = {utc(2025, 12, 20, 0, 0), utc(2049, 12, 20, 0, 0)};
  size_t checked = 0;

  for (size_t z = 0; z < RP_ARRAY_LEN(zone_names); z++) {
    setenv("TZ", zone_names[z], 1);
    tzset();
    struct rp_window ws[] = {
        window(WEEKDAYS, 9, 0, 17, 0, zone_names[z]),
        window(SAT | SUN, 22, 0, 4, 0, zone_names[z]),
        window(TUE, 17, 15, 23, 45, zone_names[z]),
    };
    for (size_t e = 0; e < RP_ARRAY_LEN(eras); e++) {
      for (size_t i = 0; i < RP_ARRAY_LEN(ws); i++) {
        /* Thirteen months every 17 minutes and 7 seconds. */
        for (int64_t t = eras[e]; t < eras[e] + 395 * 86400000LL;
             t += 1027000) {
          bool want = oracle_contains(&ws[i], t);
          if (rp_window_contains(&ws[i], t) != want) {
            char buf[40];
            fail_msg("%s window %zu at %s: want %d", zone_names[z], i,
                     rp_format_time_ms(t, buf, sizeof(buf)), want);
          }
          checked++;
        }
        /* Next openings: open at the answer, closed just before it, and
         * closed all the way from t (checked every 7 minutes). */
        for (int64_t t = eras[e]; t < eras[e] + 395 * 86400000LL;
             t += 3 * 86400000LL + 7 * 3600000 + 17000) {
          int64_t open = rp_window_next_open(&ws[i], t);
          assert_true(open >= t);
          assert_true(oracle_contains(&ws[i], open));
          if (open == t)
            continue;
          assert_false(oracle_contains(&ws[i], open - 1000));
          for (int64_t u = t; u < open; u += 7 * 60000)
            assert_false(oracle_contains(&ws[i], u));
        }
      }
    }
  }
  if (saved)
    setenv("TZ", saved, 1);
  else
    unsetenv("TZ");
  tzset();
  assert_true(checked > 1000000);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unset_window_is_always_open),
      cmocka_unit_test(test_utc_weekdays),
      cmocka_unit_test(test_across_midnight),
      cmocka_unit_test(test_berlin_weekdays_around_spring_forward),
      cmocka_unit_test(test_berlin_spring_forward_gap),
      cmocka_unit_test(test_berlin_fall_back),
      cmocka_unit_test(test_new_york),
      cmocka_unit_test(test_check_tz),
      cmocka_unit_test(test_footer_rule_zone),
      cmocka_unit_test(test_against_glibc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
