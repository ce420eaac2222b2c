/* Rendering audit lines (audit_writer.h): the object serialized once in
 * its order (ts, seq, event, the fields, prev), hashed as it is, and the
 * hash member spliced in before its closing brace; checkpoints signed over
 * the message audit.h describes.  A line is chained as it is rendered:
 * appends on the loop thread, in call order; a retry's lines in its job,
 * from the durable line (audit.c). */
#include <string.h>

#include "audit_writer.h"
#include "util.h"

#define HASH_HEAD ",\"hash\":\""
#define DAY_S 86400

static const char *const reserved[] = {"ts", "seq", "event", "prev", "hash"};

int
rp_audit_check_fields(json_t *fields, struct rp_error **err)
{
  if (!fields)
    return 0;
  if (!json_is_object(fields))
    return rp_error_set(err, EINVAL, "audit fields are not a JSON object");
  for (size_t i = 0; i < RP_ARRAY_LEN(reserved); i++)
    if (json_object_get(fields, reserved[i]))
      return rp_error_set(err, EINVAL, "audit field \"%s\" is reserved",
                          reserved[i]);
  return 0;
}

int64_t
rp_audit_day_of(time_t s)
{
  return s >= 0 ? (int64_t)s / DAY_S : ((int64_t)s - DAY_S + 1) / DAY_S;
}

/* ts as lines carry it: RFC 3339 UTC with nanoseconds. */
static void
format_ts(const struct timespec *now, char ts[48])
{
  struct tm tm;
  gmtime_r(&now->tv_sec, &tm);
  snprintf(ts, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (long)now->tv_nsec);
}

/* Renders one line (with its newline, owned) chained to prev with the
 * given seq, and its hash. */
static int
render(const char *event, json_t *fields, const char *ts, uint64_t seq,
       const char *prev, char **out, size_t *out_len, char hash[65],
       struct rp_error **err)
{
  if (rp_audit_check_fields(fields, err) != 0)
    return -1;
  cleanup_json json_t *o = json_object();
  json_t *ev = json_string(event);
  if (!ev)
    return rp_error_set(err, EINVAL, "audit event name is not UTF-8");
  json_object_set_new(o, "ts", json_string(ts));
  json_object_set_new(o, "seq", json_integer((json_int_t)seq));
  json_object_set_new(o, "event", ev);
  const char *key;
  json_t *v;
  json_object_foreach(fields, key, v) json_object_set(o, key, v);
  json_object_set_new(o, "prev", json_string(prev));
  cleanup_free char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                           JSON_REAL_PRECISION(12));
  if (!s)
    return rp_error_set(err, EINVAL, "cannot serialize audit event %s", event);
  size_t n = strlen(s);
  size_t len = n - 1 + strlen(HASH_HEAD) + 64 + 2;
  if (len > RP_AUDIT_MAX_LINE)
    return rp_error_set(err, E2BIG,
                        "audit event %s: line of %zu bytes exceeds %d", event,
                        len, RP_AUDIT_MAX_LINE);
  rp_audit_sha256_hex(s, n, hash);
  char *line = rp_xmalloc(len + 2);
  memcpy(line, s, n - 1);
  snprintf(line + n - 1, len + 2 - (n - 1), HASH_HEAD "%s\"}\n", hash);
  *out = line;
  *out_len = len + 1;
  return 0;
}

/* Appends the line rendered at *h to buf and advances *h past it.  A job
 * holds a few lines, each capped by rp_audit_render. */
static int
put(struct rp_audit_pos *h, const struct timespec *now, const char *line,
    size_t n, const char hash[65], bool checkpoint, struct rp_buf *buf,
    struct rp_error **err)
{
  if (rp_buf_add(buf, line, n) != 0)
    return rp_error_set(err, E2BIG, "audit lines of one write over %zu bytes",
                        buf->max);
  h->seq++;
  memcpy(h->hash, hash, 65);
  h->since_cp = checkpoint ? 0 : h->since_cp + 1;
  if (h->day < 0)
    h->day = rp_audit_day_of(now->tv_sec);
  h->end += n;
  return 0;
}

int
rp_audit_put_line(struct rp_audit_pos *h, const struct timespec *now,
                  const char *event, json_t *fields, struct rp_buf *buf,
                  struct rp_error **err)
{
  char ts[48];
  format_ts(now, ts);
  cleanup_free char *line = NULL;
  size_t n;
  char hash[65];
  if (render(event, fields, ts, h->seq + 1, h->hash, &line, &n, hash, err) != 0)
    return -1;
  return put(h, now, line, n, hash, false, buf, err);
}

int
rp_audit_put_checkpoint(const struct rp_audit *a, struct rp_audit_pos *h,
                        const struct timespec *now, const char *reason,
                        struct rp_buf *buf, struct rp_error **err)
{
  char ts[48];
  format_ts(now, ts);
  const char *id = rp_audit_key_id(a->key);
  size_t mlen;
  cleanup_free char *msg = rp_audit_checkpoint_message(
      h->seq + 1, h->hash, ts, reason, a->file, id, &mlen);
  char sig[RP_AUDIT_SIG_LEN + 1];
  rp_audit_key_sign(a->key, msg, mlen, sig);
  cleanup_json json_t *f = json_pack("{s:s, s:s, s:s, s:s}", "reason", reason,
                                     "file", a->file, "key_id", id, "sig", sig);
  cleanup_free char *line = NULL;
  size_t n;
  char hash[65];
  if (render("audit.checkpoint", f, ts, h->seq + 1, h->hash, &line, &n, hash,
             err) != 0)
    return -1;
  return put(h, now, line, n, hash, true, buf, err);
}
