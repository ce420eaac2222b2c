/* Torn bytes in the audit log (audit_writer.h): bytes after the last
 * durable line that are not known durable, left by a crash mid-write (a
 * fragment at the end, found by open) or by a failed write (a fragment or
 * whole lines, found by the retry).  They are never rewritten: a "\n"
 * terminates them when they lack one, and an audit.torn line records their
 * offset, length and SHA-256, chained to the last intact line.
 * audit_verify.c explains how verify accepts that shape and nothing else. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "audit_writer.h"
#include "util.h"

int
rp_audit_put_torn(struct rp_audit *a, uint64_t from, uint64_t size,
                  const struct rp_audit_pos *d, struct rp_buf *buf,
                  struct rp_audit_pos *next, struct rp_error **err)
{
  uint64_t n = size - from;
  char sha[65];
  int rc = rp_audit_sha256_range(a->lock_fd, from, n, sha);
  if (rc < 0)
    return rp_error_set(err, RP_EAUDIT, "read back %s: %s", a->path,
                        strerror(-rc));
  char last = '\n';
  if (pread(a->lock_fd, &last, 1, (off_t)(size - 1)) != 1)
    return rp_error_set(err, RP_EAUDIT, "read back %s: %s", a->path,
                        strerror(errno ? errno : EIO));
  cleanup_json json_t *f =
      json_pack("{s:I, s:I, s:s}", "offset", (json_int_t)from, "length",
                (json_int_t)n, "sha256", sha);
  *next = *d;
  next->end = size;
  if (last != '\n') {
    if (rp_buf_add(buf, "\n", 1) != 0)
      return rp_error_set(err, E2BIG, "audit lines of one write over %zu bytes",
                          buf->max);
    next->end++;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return rp_audit_put_line(next, &now, "audit.torn", f, buf, err);
}

int
rp_audit_torn_from(struct rp_audit_tail *t, int64_t nl, uint64_t *from,
                   struct rp_audit_pos *d, struct rp_error **err)
{
  uint64_t f = (uint64_t)(nl + 1);
  while (f > 0) {
    int64_t start;
    int rc = rp_audit_tail_rfind_nl(t, f - 1, &start);
    if (rc < 0)
      return rp_audit_tail_error(t, rc, err);
    rc = rp_audit_tail_line(t, (uint64_t)(start + 1), f - 1, d, err);
    if (rc < 0)
      return -1;
    if (rc == 0)
      break;
    f = (uint64_t)(start + 1);
  }
  *from = f;
  return 0;
}
