#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static bool log_json;
static enum rp_log_level log_min = RP_LOG_INFO;
static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const level_json[] = {"debug", "info", "warn", "error"};

void
rp_log_setup(bool json, enum rp_log_level min_level)
{
  log_json = json;
  log_min = min_level;
}

static void
emit(enum rp_log_level level, json_t *fields, const char *fmt, va_list ap)
{
  if (level < log_min)
    return;
  cleanup_free char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    return;
  char ts[40];
  rp_format_time_ms(rp_wall_ms(), ts, sizeof(ts));
  if (log_json) {
    cleanup_json json_t *o = json_pack("{s:s,s:s,s:s}", "ts", ts, "level",
                                       level_json[level], "msg", msg);
    if (fields)
      json_object_update(o, fields);
    cleanup_free char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (line)
      fprintf(stderr, "%s\n", line);
  } else {
    fprintf(stderr, "%s %-5s %s", ts, level_names[level], msg);
    const char *key;
    json_t *v;
    json_object_foreach(fields, key, v)
    {
      cleanup_free char *s =
          json_is_string(v) ? rp_xstrdup(json_string_value(v))
                            : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
      fprintf(stderr, " %s=%s", key, s ? s : "?");
    }
    fputc('\n', stderr);
  }
  fflush(stderr);
}

void
rp_log(enum rp_log_level level, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  emit(level, NULL, fmt, ap);
  va_end(ap);
}

void
rp_log_fields(enum rp_log_level level, json_t *fields, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  emit(level, fields, fmt, ap);
  va_end(ap);
}
