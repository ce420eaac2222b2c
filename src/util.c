#include "util.h"

#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <uv.h>

static void
oom(size_t n)
{
  fprintf(stderr, "reaper: out of memory allocating %zu bytes\n", n);
  abort();
}

void *
rp_xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (!p)
    oom(n);
  return p;
}

void *
rp_xcalloc(size_t n, size_t size)
{
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    oom(n * size);
  return p;
}

void *
rp_xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (!q)
    oom(n);
  return q;
}

char *
rp_xstrdup(const char *s)
{
  char *p = strdup(s ? s : "");
  if (!p)
    oom(strlen(s));
  return p;
}

char *
rp_xstrndup(const char *s, size_t n)
{
  char *p = strndup(s, n);
  if (!p)
    oom(n);
  return p;
}

char *
rp_xasprintf(const char *fmt, ...)
{
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    oom(0);
  return s;
}

int64_t
rp_wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
rp_add_sat(int64_t a, int64_t b)
{
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

uint64_t
rp_hash_more(uint64_t h, const char *s)
{
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

int64_t
rp_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
rp_format_time_ms(int64_t ms, char *buf, size_t len)
{
  time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = (int)(ms - (int64_t)secs * 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

int
rp_parse_time_ms(const char *s, int64_t *out_ms)
{
  if (!s)
    return -1;
  /* sscanf's %d also takes signs and spaces ("2026-11-24T23: 9:18Z",
   * "T-1:00:00"): the digits are checked first. */
  static const char shape[] = "dddd-dd-ddTdd:dd:dd";
  for (size_t i = 0; i < sizeof(shape) - 1; i++)
    if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
      return -1;
  int y, mo, d, h, mi, sec, n = 0;
  if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) !=
          6 ||
      n != 19)
    return -1;
  const char *p = s + n;
  int64_t frac_ms = 0;
  if (*p == '.') {
    p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
      if (digits < 3)
        frac_ms = frac_ms * 10 + (*p - '0');
      digits++;
      p++;
    }
    if (digits == 0)
      return -1;
    for (; digits < 3; digits++)
      frac_ms *= 10;
  }
  int64_t offset_s = 0;
  if (*p == 'Z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    /* Exactly "+HH:MM": sscanf would also take "+1:2" and leave p past
     * the end of the string. */
    if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
        p[3] != ':' || !isdigit((unsigned char)p[4]) ||
        !isdigit((unsigned char)p[5]))
      return -1;
    int oh = (p[1] - '0') * 10 + (p[2] - '0');
    int om = (p[4] - '0') * 10 + (p[5] - '0');
    if (oh > 23 || om > 59)
      return -1;
    offset_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    return -1;
  }
  if (*p != '\0')
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return -1;
  struct tm tm = {.tm_year = y - 1900,
                  .tm_mon = mo - 1,
                  .tm_mday = d,
                  .tm_hour = h,
                  .tm_min = mi,
                  .tm_sec = sec};
  /* Go's zero time (0001-01-01T00:00:00Z) means never started; so does
   * any instant before the epoch.  Decided on the instant, not the year:
   * "1971-01-01T00:00:00+23:59" is in 1970 and must read back the same
   * once written in UTC. */
  if (y < 1970) {
    *out_ms = 0;
    return 0;
  }
  time_t t = timegm(&tm);
  int64_t ms = ((int64_t)t - offset_s) * 1000 + frac_ms;
  *out_ms = ms > 0 ? ms : 0;
  return 0;
}

char *
rp_format_duration(int64_t ms, char *buf, size_t len)
{
  static const struct {
    const char *unit;
    int64_t ms;
  } units[] = {
      {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
  size_t off = 0;
  buf[0] = '\0';
  if (ms < 0) {
    off += (size_t)snprintf(buf, len, "-");
    ms = -ms;
  }
  if (ms == 0) {
    snprintf(buf + off, len - off, "0s");
    return buf;
  }
  for (size_t i = 0; i < RP_ARRAY_LEN(units) && off < len; i++) {
    if (ms >= units[i].ms) {
      int64_t n = ms / units[i].ms;
      ms -= n * units[i].ms;
      off += (size_t)snprintf(buf + off, len - off, "%lld%s", (long long)n,
                              units[i].unit);
    }
  }
  return buf;
}

char *
rp_url_escape(const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  char *out = rp_xmalloc(3 * n + 1), *o = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
        (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
        *p == '~') {
      *o++ = (char)*p;
    } else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  return out;
}

#ifdef REAPER_CRASHPOINTS
void
rp_crashpoint(const char *name)
{
  const char *at = getenv("REAPER_CRASH_AT");
  if (at && strcmp(at, name) == 0) {
    fprintf(stderr, "reaper: crash point %s: killing myself\n", name);
    raise(SIGKILL);
  }
}

static void
crash_soon_cb(uv_timer_t *t)
{
  rp_crashpoint(t->data);
}

void
rp_crashpoint_soon(struct uv_loop_s *loop, const char *name)
{
  const char *at = getenv("REAPER_CRASH_AT");
  if (!at || strcmp(at, name) != 0)
    return;
  static uv_timer_t timer; /* one crash per process */
  uv_timer_init(loop, &timer);
  timer.data = (void *)(uintptr_t)name;
  uv_timer_start(&timer, crash_soon_cb, 300, 0);
  uv_unref((uv_handle_t *)&timer);
}
#endif
