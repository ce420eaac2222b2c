/* Times and durations from outside: RFC 3339 timestamps (the engine's
 * State.StartedAt, the audit log's ts) and configuration durations.
 * Besides not crashing, what parses must be what it claims: a timestamp
 * has RFC 3339's shape and formats back to the same instant, a duration
 * formats back to a string that parses to the same value. */
#include "fuzz.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "config.h"
#include "util.h"

/* 9999-01-01T00:00:00Z: later instants need a five-digit year, which
 * RFC 3339 cannot write. */
#define LAST_WRITABLE_MS INT64_C(253370764800000)

/* "YYYY-MM-DDTHH:MM:SS", then an optional fraction ".D+", then "Z" or
 * "+HH:MM" / "-HH:MM": RFC 3339's date-time (T and Z in either case). */
static bool
is_rfc3339(const char *s)
{
  static const char shape[] = "dddd-dd-ddTdd:dd:dd";
  for (size_t i = 0; i < sizeof(shape) - 1; i++) {
    if (shape[i] == 'd'   ? !isdigit((unsigned char)s[i])
        : shape[i] == 'T' ? s[i] != 'T' && s[i] != 't'
                          : s[i] != shape[i])
      return false;
  }
  const char *p = s + sizeof(shape) - 1;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      return false;
    while (isdigit((unsigned char)*p))
      p++;
  }
  if (*p == 'Z' || *p == 'z')
    return p[1] == '\0';
  if (*p != '+' && *p != '-')
    return false;
  return isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
         p[3] == ':' && isdigit((unsigned char)p[4]) &&
         isdigit((unsigned char)p[5]) && p[6] == '\0';
}

static void
check_time(const char *s)
{
  int64_t ms = -1;
  if (rp_parse_time_ms(s, &ms) != 0)
    return;
  RP_FUZZ_CHECK(is_rfc3339(s));
  RP_FUZZ_CHECK(ms >= 0);
  if (ms == 0 || ms >= LAST_WRITABLE_MS)
    return; /* Go's zero time, or beyond what a string can say */
  char buf[64];
  int64_t again = -1;
  rp_format_time_ms(ms, buf, sizeof(buf));
  RP_FUZZ_CHECK(rp_parse_time_ms(buf, &again) == 0);
  RP_FUZZ_CHECK(again == ms);
}

static void
check_duration(const char *s)
{
  int64_t ms = -1;
  const char *why = NULL;
  if (rp_duration_parse(s, &ms, &why) != 0) {
    RP_FUZZ_CHECK(why != NULL && why[0] != '\0');
    return;
  }
  RP_FUZZ_CHECK(ms >= 0);
  char buf[64];
  int64_t again = -1;
  rp_format_duration(ms, buf, sizeof(buf));
  RP_FUZZ_CHECK(rp_duration_parse(buf, &again, NULL) == 0);
  RP_FUZZ_CHECK(again == ms);
}

int
rp_fuzz_time_run(const uint8_t *data, size_t size)
{
  /* Both take C strings: the input up to its first NUL. */
  cleanup_free char *s = rp_xstrndup((const char *)data, size);
  check_time(s);
  check_duration(s);
  return 0;
}

#ifndef RP_FUZZ_NO_MAIN
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return rp_fuzz_time_run(data, size);
}
#endif
