/* The syntaxes of single configuration values; see config_values.h. */
#include "config_values.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static const char *const strategy_names[RP_STRATEGY__COUNT] = {
    [RP_STRATEGY_RECREATE] = "recreate",
    [RP_STRATEGY_RESTART] = "restart",
    [RP_STRATEGY_STOP] = "stop",
    [RP_STRATEGY_REMOVE] = "remove",
    [RP_STRATEGY_FORCE_UPDATE] = "force-update",
    [RP_STRATEGY_DRAIN_REPLACE] = "drain-replace",
};

const char *
rp_strategy_name(enum rp_strategy s)
{
  if ((int)s < 0 || s >= RP_STRATEGY__COUNT)
    return NULL;
  return strategy_names[s];
}

int
rp_strategy_parse(const char *name)
{
  for (int i = 0; name && i < RP_STRATEGY__COUNT; i++)
    if (strcmp(name, strategy_names[i]) == 0)
      return i;
  return -1;
}

/* Units from the largest down: a duration names each at most once, in
 * this order ("1h30m", never "30m1h" or "1h1h"), so every duration has one
 * spelling and a doubled unit is caught as the typo it usually is. */
static const struct {
  const char *name;
  int64_t ms;
} units[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};

int
rp_duration_parse(const char *s, int64_t *out_ms, const char **why)
{
  const char *dummy;
  if (why == NULL)
    why = &dummy;
  if (s == NULL || *s == '\0') {
    *why = "empty";
    return -1;
  }
  if (*s == '-') {
    *why = "negative durations are not allowed";
    return -1;
  }
  /* Zero needs no unit: it means the same in all of them. */
  if (strcmp(s, "0") == 0) {
    *out_ms = 0;
    return 0;
  }
  int64_t total = 0;
  size_t next_unit = 0; /* index of the largest unit still allowed */
  const char *p = s;
  while (*p) {
    if (!isdigit((unsigned char)*p)) {
      *why = "expected a number followed by a unit, as in 90s, 30m, 2h or "
             "1h30m";
      return -1;
    }
    int64_t n = 0;
    for (; isdigit((unsigned char)*p); p++) {
      int digit = *p - '0';
      if (n > (INT64_MAX - digit) / 10) {
        *why = "too large";
        return -1;
      }
      n = n * 10 + digit;
    }
    if (*p == '.' || *p == ',') {
      *why = "fractions are not allowed: write 1h30m rather than 1.5h";
      return -1;
    }
    if (*p == '\0') {
      *why = "missing unit: write ms, s, m, h or d after the number";
      return -1;
    }
    size_t u;
    size_t ulen = 0;
    for (u = 0; u < RP_ARRAY_LEN(units); u++) {
      ulen = strlen(units[u].name);
      /* "m" must not swallow the "m" of "ms". */
      if (strncmp(p, units[u].name, ulen) == 0 &&
          !(ulen == 1 && p[0] == 'm' && p[1] == 's'))
        break;
    }
    if (u == RP_ARRAY_LEN(units)) {
      *why = "unknown unit: use ms, s, m, h or d";
      return -1;
    }
    if (u < next_unit) {
      *why = "units must go from largest to smallest, each at most once, as "
             "in 1h30m";
      return -1;
    }
    if (n > (INT64_MAX - total) / units[u].ms) {
      *why = "too large";
      return -1;
    }
    total += n * units[u].ms;
    next_unit = u + 1;
    p += ulen;
  }
  *out_ms = total;
  return 0;
}

int
rp_config_bool_parse(const char *s, bool *out, const char **why)
{
  static const char *const yes[] = {"true", "True", "TRUE"};
  static const char *const no[] = {"false", "False", "FALSE"};
  *why = "";
  for (size_t i = 0; i < RP_ARRAY_LEN(yes); i++) {
    if (strcmp(s, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcmp(s, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  static const char *const yaml11[] = {"yes", "no", "on", "off", "y", "n"};
  for (size_t i = 0; i < RP_ARRAY_LEN(yaml11); i++)
    if (strcasecmp(s, yaml11[i]) == 0)
      *why = " (YAML 1.1's yes/no/on/off are not booleans here: write true "
             "or false)";
  return -1;
}

int
rp_config_int_parse(const char *s, long *out)
{
  size_t n = strlen(s);
  if (n == 0 || n > 9 || strspn(s, "0123456789") != n)
    return -1;
  *out = strtol(s, NULL, 10);
  return 0;
}

/* Digits with an optional fraction ("12", "2.5"), no sign, no exponent:
 * strtod would also take " 1e1", "inf" and hex. */
static int
parse_decimal(const char *s, size_t len, double *out)
{
  size_t i = 0, digits = 0;
  while (i < len && isdigit((unsigned char)s[i])) {
    i++;
    digits++;
  }
  if (i < len && s[i] == '.') {
    i++;
    while (i < len && isdigit((unsigned char)s[i])) {
      i++;
      digits++;
    }
  }
  if (i != len || digits == 0 || len > 32)
    return -1;
  char buf[40];
  memcpy(buf, s, len);
  buf[len] = '\0';
  *out = strtod(buf, NULL);
  return 0;
}

int
rp_config_jitter_parse(const char *s, double *out, const char **why)
{
  size_t len = strlen(s);
  double v;
  if (strcmp(s, "0") == 0) {
    *out = 0;
    return 0;
  }
  if (len == 0 || s[len - 1] != '%') {
    *why = "write jitter as a percentage of max_age, e.g. 10%";
    return -1;
  }
  if (s[0] == '-' || parse_decimal(s, len - 1, &v) < 0) {
    *why = "expected a percentage between 0% and 100%, e.g. 10%";
    return -1;
  }
  if (v > 100) {
    *why = "cannot be over 100%";
    return -1;
  }
  *out = v / 100;
  return 0;
}

int
rp_config_budget_parse(const char *s, struct rp_budget *out, const char **why)
{
  size_t len = strlen(s);
  bool percent = len > 0 && s[len - 1] == '%';
  char buf[16];
  long v;
  if (len == 0 || len >= sizeof(buf)) {
    *why = "expected a number like 2 or a percentage like 25%";
    return -1;
  }
  memcpy(buf, s, len - percent);
  buf[len - percent] = '\0';
  if (rp_config_int_parse(buf, &v) < 0) {
    *why = "expected a whole number like 2 or a percentage like 25%";
    return -1;
  }
  if (percent && (v < 1 || v > 100)) {
    *why = "a percentage must be between 1% and 100%";
    return -1;
  }
  if (!percent && v < 1) {
    *why = "must be at least 1 (0 would never recycle anything)";
    return -1;
  }
  out->value = (int)v;
  out->percent = percent;
  return 0;
}

const char *const rp_config_day_names[] = {
    "sun",    "mon",      "tue",      "wed",     "thu",       "fri",
    "sat",    "sunday",   "monday",   "tuesday", "wednesday", "thursday",
    "friday", "saturday", "weekdays", "weekend", NULL};

int
rp_config_day_parse(const char *s, uint8_t *bits)
{
  for (int i = 0; i < 14; i++) {
    if (strcasecmp(s, rp_config_day_names[i]) == 0) {
      *bits = (uint8_t)(1u << (i % 7));
      return 0;
    }
  }
  if (strcasecmp(s, "weekdays") == 0) {
    *bits = 0x3e; /* Monday..Friday */
    return 0;
  }
  if (strcasecmp(s, "weekend") == 0) {
    *bits = 0x41; /* Saturday and Sunday */
    return 0;
  }
  return -1;
}

int
rp_config_hhmm_parse(const char *s, int *out_min)
{
  size_t len = strlen(s);
  const char *colon = strchr(s, ':');
  if (colon == NULL || (colon - s != 1 && colon - s != 2) ||
      len != (size_t)(colon - s) + 3 || !isdigit((unsigned char)s[0]) ||
      !isdigit((unsigned char)colon[-1]) || !isdigit((unsigned char)colon[1]) ||
      !isdigit((unsigned char)colon[2]))
    return -1;
  int h = atoi(s), m = atoi(colon + 1);
  if (h > 23 || m > 59)
    return -1;
  *out_min = h * 60 + m;
  return 0;
}

int
rp_config_zone_check(const char *s, const char **why)
{
  if (*s == '/' || strstr(s, "..") != NULL ||
      strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789/_+-") != strlen(s)) {
    *why = "expected an IANA name like Europe/Berlin or UTC";
    return -1;
  }
  /* glibc knows UTC without the database; machines without tzdata (slim
   * containers) can still say so. */
  if (strcmp(s, "UTC") == 0)
    return 0;
  const char *dir = getenv("TZDIR");
  if (dir == NULL || *dir == '\0')
    dir = "/usr/share/zoneinfo";
  cleanup_free char *path = rp_xasprintf("%s/%s", dir, s);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  char magic[4];
  if (fd < 0) {
    *why = errno == ENOENT || errno == ENOTDIR
               ? "no such zone in the time zone database"
               : "cannot read it from the time zone database";
    return -1;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
      read(fd, magic, sizeof(magic)) != (ssize_t)sizeof(magic) ||
      memcmp(magic, "TZif", 4) != 0) {
    *why = "not a zone in the time zone database";
    return -1;
  }
  return 0;
}

/* Every event in SPEC.md's audit log, and recycle.upcoming: the advance
 * notice a policy's notify_before asks for. */
const char *const rp_config_events[] = {
    "recycle.begin",     "recycle.done",      "recycle.failed",
    "recycle.planned",   "recycle.recovered", "recycle.refused",
    "recycle.step",      "recycle.upcoming",  "image.seen",
    "image.quarantined", "agent.start",       "agent.stop",
    "config.reload",     "audit.checkpoint",  NULL};

bool
rp_config_event_known(const char *s)
{
  if (strcmp(s, "*") == 0)
    return true;
  size_t len = strlen(s);
  bool prefix = len > 2 && strcmp(s + len - 2, ".*") == 0;
  for (size_t i = 0; rp_config_events[i]; i++) {
    const char *e = rp_config_events[i];
    if (strcmp(s, e) == 0)
      return true;
    if (prefix && strncmp(s, e, len - 1) == 0)
      return true; /* "recycle.*" against "recycle.begin" */
  }
  return false;
}

char *
rp_config_join_list(const char *const *list)
{
  size_t len = 1;
  for (size_t i = 0; list[i]; i++)
    len += strlen(list[i]) + 2;
  char *s = rp_xmalloc(len);
  s[0] = '\0';
  for (size_t i = 0; list[i]; i++) {
    if (i > 0)
      strcat(s, ", ");
    strcat(s, list[i]);
  }
  return s;
}

/* Names are short; longer input is not a typo of any of them. */
#define MAX_SUGGEST_LEN 48

size_t
rp_config_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > MAX_SUGGEST_LEN || lb > MAX_SUGGEST_LEN)
    return SIZE_MAX;
  size_t d[MAX_SUGGEST_LEN + 1][MAX_SUGGEST_LEN + 1];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++) {
    for (size_t j = 1; j <= lb; j++) {
      int ca = tolower((unsigned char)a[i - 1]);
      int cb = tolower((unsigned char)b[j - 1]);
      size_t best = d[i - 1][j - 1] + (ca != cb);
      if (d[i - 1][j] + 1 < best)
        best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
      /* A swap of two neighbours ("stpo") is one typo, not two. */
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
          tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  }
  return d[la][lb];
}

const char *
rp_config_suggest(const char *s, const char *const *known)
{
  /* One edit in short words, two in longer ones: "tz" -> "t" is no
   * suggestion worth making, "max-age" -> "max_age" is. */
  size_t limit = strlen(s) <= 4 ? 1 : 2;
  const char *best = NULL;
  size_t best_d = SIZE_MAX;
  for (size_t i = 0; known[i]; i++) {
    size_t d = rp_config_distance(s, known[i]);
    if (d < best_d) {
      best_d = d;
      best = known[i];
    }
  }
  return best_d <= limit ? best : NULL;
}
