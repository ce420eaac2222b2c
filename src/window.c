/* Maintenance windows, evaluated in the window's IANA time zone.
 *
 * Time zones.  We read a zone's TZif file (RFC 8536) once, on its first use,
 * and keep the parsed table for the life of the process, so that every later
 * conversion is arithmetic: no blocking I/O on the loop.  The configuration
 * loader calls rp_window_check_tz() for every window, which pays that first
 * read at load time and rejects unknown zones with an error.
 *
 * We chose this over setenv("TZ") + tzset() + localtime_r()/mktime(): glibc
 * re-reads the zone file whenever TZ changes (twice per call when we restore
 * the previous value), and setenv() races with getenv() in other threads
 * (libuv's thread pool and curl's resolver call getaddrinfo(), which reads
 * the environment).  mktime() also leaves ambiguous and nonexistent local
 * times to tm_isdst guesses, where we need exact rules.
 *
 * Limits: an update of the tzdata package is seen after a restart; leap
 * second ("right/") zones are read as if they had none; a zone with two
 * transitions less than a day apart around a window boundary may resolve
 * that boundary to the wrong side (no current zone has such transitions). */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "util.h"

#define DAY_S 86400
/* Zone files are a few KiB; anything bigger is not one. */
#define TZIF_MAX_BYTES (1024 * 1024)
/* Past year 9999 we do not evaluate windows: the arithmetic below stays far
 * from overflow and such deadlines mean "never" anyway. */
#define WINDOW_LIMIT_MS INT64_C(253402300799999)

/* One transition rule of a POSIX TZ string (the TZif footer): on which day of
 * a year, and at which local time (seconds, may be negative or > 24h). */
struct tz_date {
  char kind; /* 'J': Julian 1..365 without Feb 29; 'D': 0..365; 'M' */
  int day;   /* J and D: the number; M: weekday 0..6 */
  int week;  /* M: 1..5, 5 = last */
  int month; /* M: 1..12 */
  int32_t secs;
};

/* The footer rule, used for instants after the last transition. */
struct tz_rule {
  int32_t std_off; /* UT offsets in seconds, east positive */
  int32_t dst_off;
  bool has_dst;
  struct tz_date start, end;
};

struct tz_zone {
  struct tz_zone *next; /* owned: the cache is a short list */
  char *name;           /* owned */
  char *error;          /* owned: why loading failed, NULL when loaded */
  int64_t *trans;       /* owned: n_trans ascending transition instants (s) */
  uint8_t *trans_type;  /* owned: n_trans indexes into type_off */
  size_t n_trans;
  int32_t *type_off; /* owned: n_types UT offsets (s, east positive) */
  size_t n_types;
  bool has_rule;
  struct tz_rule rule;
};

static pthread_mutex_t zones_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz_zone *zones; /* owned, never freed: the process's zones */

static int64_t
floor_div(int64_t a, int64_t b)
{
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t
floor_mod(int64_t a, int64_t b)
{
  return a - floor_div(a, b) * b;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = floor_div(y, 400);
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int64_t
year_of_days(int64_t z)
{
  z += 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int m = (int)(mp < 10 ? mp + 3 : mp - 9);
  return yoe + era * 400 + (m <= 2);
}

static bool
is_leap(int64_t y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* 0 = Sunday, as struct tm; 1970-01-01 was a Thursday. */
static int
weekday_of_days(int64_t days)
{
  return (int)floor_mod(days + 4, 7);
}

/* The day (since the Epoch) on which a footer rule falls in year y. */
static int64_t
rule_day(const struct tz_date *r, int64_t y)
{
  int64_t jan1 = days_from_civil(y, 1, 1);
  switch (r->kind) {
  case 'J':
    return jan1 + r->day - 1 + (is_leap(y) && r->day >= 60);
  case 'D':
    return jan1 + r->day;
  default: {
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int len = mdays[r->month - 1] + (r->month == 2 && is_leap(y));
    int64_t first = days_from_civil(y, r->month, 1);
    int d = 1 + (int)floor_mod(r->day - weekday_of_days(first), 7) +
            (r->week - 1) * 7;
    while (d > len)
      d -= 7;
    return first + d - 1;
  }
  }
}

static int32_t
rule_offset(const struct tz_rule *r, int64_t t)
{
  if (!r->has_dst)
    return r->std_off;
  /* The rule's year is the local (standard time) year of t; rules never
   * put a transition close enough to New Year for the choice to matter,
   * except all-year DST ("0/0,J365/25"), which this choice gets right. */
  int64_t y = year_of_days(floor_div(t + r->std_off, DAY_S));
  /* A start time is written in standard time, an end time in DST. */
  int64_t s = rule_day(&r->start, y) * DAY_S + r->start.secs - r->std_off;
  int64_t e = rule_day(&r->end, y) * DAY_S + r->end.secs - r->dst_off;
  if (s < e)
    return (t >= s && t < e) ? r->dst_off : r->std_off;
  /* Southern hemisphere: DST spans New Year. */
  return (t >= e && t < s) ? r->std_off : r->dst_off;
}

/* The UT offset in force at instant t (seconds).  NULL is UTC. */
static int32_t
zone_offset(const struct tz_zone *z, int64_t t)
{
  if (!z)
    return 0;
  if (z->n_trans == 0 || t >= z->trans[z->n_trans - 1]) {
    if (z->has_rule)
      return rule_offset(&z->rule, t);
    if (z->n_trans == 0)
      return z->type_off[0];
    return z->type_off[z->trans_type[z->n_trans - 1]];
  }
  if (t < z->trans[0])
    return z->type_off[0]; /* RFC 8536: type 0 before the first transition */
  size_t lo = 0, hi = z->n_trans - 1; /* trans[lo] <= t < trans[hi] */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (z->trans[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  return z->type_off[z->trans_type[lo]];
}

/* The instant at which the local wall clock (seconds since the Epoch, read
 * as if UTC) first shows `local`; when it never does (a spring-forward gap),
 * the first instant after, which is the transition itself. */
static int64_t
local_to_utc(const struct tz_zone *z, int64_t local)
{
  int32_t cand[3] = {zone_offset(z, local - DAY_S), zone_offset(z, local),
                     zone_offset(z, local + DAY_S)};
  int32_t lo_off = cand[0], hi_off = cand[0];
  bool found = false;
  int64_t best = 0;
  for (size_t i = 0; i < RP_ARRAY_LEN(cand); i++) {
    int64_t t = local - cand[i];
    if (zone_offset(z, t) == cand[i] && (!found || t < best)) {
      best = t; /* the smallest is the first occurrence on fall-back */
      found = true;
    }
    lo_off = cand[i] < lo_off ? cand[i] : lo_off;
    hi_off = cand[i] > hi_off ? cand[i] : hi_off;
  }
  if (found)
    return best;
  /* A gap: the clock jumps from before `local` to after it somewhere in
   * [local - hi_off, local - lo_off].  Find the jump. */
  int64_t lo = local - hi_off, hi = local - lo_off;
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    if (mid + zone_offset(z, mid) >= local)
      hi = mid;
    else
      lo = mid;
  }
  return hi;
}

/* --- TZif and POSIX TZ strings --- */

static const char *
parse_num(const char *s, int min, int max, int *out)
{
  if (*s < '0' || *s > '9')
    return NULL;
  int v = 0;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (*s++ - '0');
    if (v > max)
      return NULL;
  }
  if (v < min)
    return NULL;
  *out = v;
  return s;
}

/* [+-]hh[:mm[:ss]] into seconds; max_h is 24 for offsets and 167 for rule
 * times (RFC 8536 extension). */
static const char *
parse_hms(const char *s, int max_h, int32_t *out)
{
  int sign = 1, h, m = 0, sec = 0;
  if (*s == '+' || *s == '-')
    sign = *s++ == '-' ? -1 : 1;
  if (!(s = parse_num(s, 0, max_h, &h)))
    return NULL;
  if (*s == ':' && !(s = parse_num(s + 1, 0, 59, &m)))
    return NULL;
  if (*s == ':' && !(s = parse_num(s + 1, 0, 59, &sec)))
    return NULL;
  *out = sign * (h * 3600 + m * 60 + sec);
  return s;
}

static const char *
parse_tz_name(const char *s)
{
  const char *start = s;
  if (*s == '<') {
    while (*s && *s != '>')
      s++;
    return *s == '>' && s - start >= 4 ? s + 1 : NULL;
  }
  while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
    s++;
  return s - start >= 3 ? s : NULL;
}

static const char *
parse_tz_date(const char *s, struct tz_date *d)
{
  if (*s == 'J') {
    d->kind = 'J';
    s = parse_num(s + 1, 1, 365, &d->day);
  } else if (*s == 'M') {
    d->kind = 'M';
    if (!(s = parse_num(s + 1, 1, 12, &d->month)) || *s != '.' ||
        !(s = parse_num(s + 1, 1, 5, &d->week)) || *s != '.')
      return NULL;
    s = parse_num(s + 1, 0, 6, &d->day);
  } else {
    d->kind = 'D';
    s = parse_num(s, 0, 365, &d->day);
  }
  if (!s)
    return NULL;
  d->secs = 2 * 3600;
  if (*s == '/')
    s = parse_hms(s + 1, 167, &d->secs);
  return s;
}

/* Parses a POSIX TZ string as TZif footers write them ("CET-1CEST,M3.5.0,
 * M10.5.0/3"). */
static int
parse_posix_tz(const char *s, struct tz_rule *r)
{
  int32_t off;
  memset(r, 0, sizeof(*r));
  if (!(s = parse_tz_name(s)) || !(s = parse_hms(s, 24, &off)))
    return -1;
  r->std_off = -off; /* POSIX offsets are west positive */
  if (*s == '\0')
    return 0;
  if (!(s = parse_tz_name(s)))
    return -1;
  r->has_dst = true;
  r->dst_off = r->std_off + 3600;
  if (*s && *s != ',') {
    if (!(s = parse_hms(s, 24, &off)))
      return -1;
    r->dst_off = -off;
  }
  if (*s == '\0') {
    /* POSIX leaves the default rule to the implementation; glibc and tzcode
     * use the US rule. */
    r->start = (struct tz_date){'M', 0, 2, 3, 7200};
    r->end = (struct tz_date){'M', 0, 1, 11, 7200};
    return 0;
  }
  if (*s != ',' || !(s = parse_tz_date(s + 1, &r->start)) || *s != ',' ||
      !(s = parse_tz_date(s + 1, &r->end)))
    return -1;
  return *s == '\0' ? 0 : -1;
}

static uint32_t
be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static int64_t
be64(const unsigned char *p)
{
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_header {
  char version;
  size_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int
parse_tzif_header(const unsigned char *p, size_t len, struct tzif_header *h)
{
  if (len < 44 || memcmp(p, "TZif", 4) != 0)
    return -1;
  h->version = (char)p[4];
  h->isutcnt = be32(p + 20);
  h->isstdcnt = be32(p + 24);
  h->leapcnt = be32(p + 28);
  h->timecnt = be32(p + 32);
  h->typecnt = be32(p + 36);
  h->charcnt = be32(p + 40);
  return 0;
}

static size_t
tzif_block_len(const struct tzif_header *h, size_t time_size)
{
  /* Counts are 32-bit, so this cannot overflow a 64-bit size_t. */
  return h->timecnt * time_size + h->timecnt + h->typecnt * 6 + h->charcnt +
         h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

/* Fills z's tables from a TZif file's bytes; returns NULL or why not. */
static const char *
parse_tzif(const unsigned char *buf, size_t len, struct tz_zone *z)
{
  struct tzif_header h;
  size_t time_size = 4;
  const unsigned char *p = buf, *end = buf + len;

  if (parse_tzif_header(p, len, &h) < 0)
    return "not a TZif file";
  if (h.version >= '2') {
    /* Skip the 32-bit block: the 64-bit one follows with its header. */
    size_t skip = 44 + tzif_block_len(&h, 4);
    if (skip > len || parse_tzif_header(p + skip, len - skip, &h) < 0)
      return "truncated TZif file";
    p += skip;
    time_size = 8;
  }
  p += 44;
  if (h.typecnt == 0 || h.typecnt > 256 ||
      tzif_block_len(&h, time_size) > (size_t)(end - p))
    return "truncated or malformed TZif file";

  z->n_trans = h.timecnt;
  z->n_types = h.typecnt;
  z->trans = rp_xcalloc(h.timecnt + 1, sizeof(*z->trans));
  z->trans_type = rp_xcalloc(h.timecnt + 1, sizeof(*z->trans_type));
  z->type_off = rp_xcalloc(h.typecnt, sizeof(*z->type_off));
  for (size_t i = 0; i < h.timecnt; i++, p += time_size) {
    z->trans[i] = time_size == 8 ? be64(p) : (int32_t)be32(p);
    if (i > 0 && z->trans[i] <= z->trans[i - 1])
      return "transitions out of order";
  }
  for (size_t i = 0; i < h.timecnt; i++) {
    z->trans_type[i] = *p++;
    if (z->trans_type[i] >= h.typecnt)
      return "transition to an unknown type";
  }
  for (size_t i = 0; i < h.typecnt; i++, p += 6) {
    int32_t off = (int32_t)be32(p);
    if (off < -25 * 3600 || off > 26 * 3600)
      return "UT offset out of range";
    z->type_off[i] = off;
  }
  p += h.charcnt + h.leapcnt * (time_size + 4) + h.isstdcnt + h.isutcnt;

  if (time_size == 8 && p < end && *p == '\n') {
    const unsigned char *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
    if (!nl)
      return "unterminated TZ string footer";
    if (nl > p + 1) {
      cleanup_free char *footer =
          rp_xstrndup((const char *)p + 1, (size_t)(nl - p - 1));
      if (parse_posix_tz(footer, &z->rule) < 0)
        return "unsupported TZ string footer";
      z->has_rule = true;
    }
  }
  return NULL;
}

/* IANA names only: no absolute paths, no way out of the zoneinfo directory. */
static bool
tz_name_ok(const char *name)
{
  size_t len = strlen(name);
  if (len == 0 || len > 255 || name[0] == '/' || name[0] == '.')
    return false;
  for (const char *s = name; *s; s++) {
    bool ok = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || strchr("/_+-.", *s);
    if (!ok || (s[0] == '.' && s[1] == '.') || (s[0] == '/' && s[1] == '.'))
      return false;
  }
  return true;
}

/* Names that mean UTC even on a machine without tzdata. */
static bool
tz_is_utc(const char *name)
{
  static const char *const utc[] = {"UTC", "Etc/UTC", "GMT",  "Etc/GMT",
                                    "UCT", "Etc/UCT", "Zulu", "Etc/Zulu"};
  for (size_t i = 0; i < RP_ARRAY_LEN(utc); i++)
    if (strcmp(name, utc[i]) == 0)
      return true;
  return false;
}

static void
load_zone(struct tz_zone *z)
{
  const char *dir = getenv("TZDIR");
  if (!dir || !*dir)
    dir = "/usr/share/zoneinfo";
  if (!tz_name_ok(z->name)) {
    z->error = rp_xstrdup("not an IANA time zone name");
    return;
  }
  cleanup_free char *path = rp_xasprintf("%s/%s", dir, z->name);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    z->error =
        rp_xasprintf("unknown time zone (%s: %s)", path, strerror(errno));
    return;
  }
  if (!S_ISREG(st.st_mode) || st.st_size > TZIF_MAX_BYTES) {
    z->error = rp_xasprintf("unknown time zone (%s: not a zone file)", path);
    return;
  }
  size_t len = (size_t)st.st_size, got = 0;
  cleanup_free unsigned char *buf = rp_xmalloc(len ? len : 1);
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      z->error = rp_xasprintf("read %s: %s", path,
                              n < 0 ? strerror(errno) : "short read");
      return;
    }
    got += (size_t)n;
  }
  const char *why = parse_tzif(buf, len, z);
  if (why)
    z->error = rp_xasprintf("%s: %s", path, why);
}

/* The cached zone for a name, loading it on first use.  A zone that could
 * not be loaded stays cached with its error, so that a bad name costs one
 * attempt, not one per call. */
static const struct tz_zone *
zone_lookup(const char *name)
{
  pthread_mutex_lock(&zones_lock);
  struct tz_zone *z;
  for (z = zones; z; z = z->next)
    if (strcmp(z->name, name) == 0)
      break;
  if (!z) {
    z = rp_xcalloc(1, sizeof(*z));
    z->name = rp_xstrdup(name);
    load_zone(z);
    z->next = zones;
    zones = z;
  }
  pthread_mutex_unlock(&zones_lock);
  return z;
}

/* The zone to compute in: NULL (UTC) for no name, a UTC name, or a zone that
 * failed to load (the configuration loader has rejected those already). */
static const struct tz_zone *
zone_for(const char *name)
{
  if (!name || tz_is_utc(name))
    return NULL;
  const struct tz_zone *z = zone_lookup(name);
  return z->error ? NULL : z;
}

int
rp_window_check_tz(const char *tz, struct rp_error **err)
{
  if (!tz || tz_is_utc(tz))
    return 0;
  const struct tz_zone *z = zone_lookup(tz);
  if (z->error)
    return rp_error_set(err, RP_ECONFIG, "time zone %s: %s", tz, z->error);
  return 0;
}

/* --- windows --- */

static bool
day_listed(const struct rp_window *w, int64_t day)
{
  /* No day at all could never open: the loader fills every day when the
   * configuration lists none, and we read an empty set the same way. */
  return w->days == 0 || (w->days >> weekday_of_days(day) & 1);
}

/* The window that opens on local day `day`, in UTC seconds; false when it
 * is empty that day (it lies entirely inside a spring-forward gap). */
static bool
window_on(const struct tz_zone *z, const struct rp_window *w, int64_t day,
          int64_t *open, int64_t *close)
{
  int64_t midnight = day * DAY_S;
  int64_t end_min =
      w->end_min <= w->start_min ? w->end_min + 24 * 60 : w->end_min;
  *open = local_to_utc(z, midnight + (int64_t)w->start_min * 60);
  *close = local_to_utc(z, midnight + end_min * 60);
  return *open < *close;
}

static int64_t
local_day(const struct tz_zone *z, int64_t t_s)
{
  return floor_div(t_s + zone_offset(z, t_s), DAY_S);
}

bool
rp_window_contains(const struct rp_window *w, int64_t t_ms)
{
  if (!w || !w->set || t_ms > WINDOW_LIMIT_MS || t_ms < -WINDOW_LIMIT_MS)
    return true;
  const struct tz_zone *z = zone_for(w->tz);
  int64_t today = local_day(z, floor_div(t_ms, 1000));
  /* A window may have opened the day before (it crosses midnight) or, with
   * a fall-back at midnight, the local date may lag: look around. */
  for (int64_t d = today - 2; d <= today + 1; d++) {
    int64_t open, close;
    if (day_listed(w, d) && window_on(z, w, d, &open, &close) &&
        open * 1000 <= t_ms && t_ms < close * 1000)
      return true;
  }
  return false;
}

int64_t
rp_window_next_open(const struct rp_window *w, int64_t t_ms)
{
  if (rp_window_contains(w, t_ms))
    return t_ms;
  const struct tz_zone *z = zone_for(w->tz);
  int64_t today = local_day(z, floor_div(t_ms, 1000));
  /* Openings grow with the day, so the first one at or after t is the
   * answer.  Nine days ahead covers a weekly window whose only day this
   * week falls into a spring-forward gap. */
  for (int64_t d = today - 2; d <= today + 9; d++) {
    int64_t open, close;
    if (day_listed(w, d) && window_on(z, w, d, &open, &close) &&
        open * 1000 >= t_ms)
      return open * 1000;
  }
  /* Unreachable with a valid window; never hold a recycle back forever. */
  return t_ms;
}
