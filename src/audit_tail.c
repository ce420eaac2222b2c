/* A file's end read backwards (audit_writer.h): in blocks that double, so
 * that however long the log only its tail is read, and a long tail costs
 * O(n) copying; bounded by RP_AUDIT_MAX_TAIL, past which there is no intact
 * line to continue from. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "audit_writer.h"
#include "util.h"

#define TAIL_BLOCK (64 * 1024)

int
rp_audit_tail_rfind_nl(struct rp_audit_tail *t, uint64_t before, int64_t *nl)
{
  uint64_t p = before;
  for (;;) {
    if (p > t->base) {
      char *hit = memrchr(t->buf, '\n', (size_t)(p - t->base));
      if (hit) {
        *nl = (int64_t)(t->base + (uint64_t)(hit - t->buf));
        return 0;
      }
      p = t->base;
    }
    if (t->base == 0) {
      *nl = -1;
      return 0;
    }
    uint64_t have = t->size - t->base;
    if (have >= RP_AUDIT_MAX_TAIL)
      return -EFBIG;
    /* Double what is loaded, so a long tail costs O(n) copying. */
    uint64_t add = have > TAIL_BLOCK ? have : TAIL_BLOCK;
    if (add > t->base)
      add = t->base;
    uint64_t base = t->base - add;
    char *buf = rp_xmalloc((size_t)(t->size - base));
    for (uint64_t done = 0; done < add;) {
      ssize_t n =
          pread(t->fd, buf + done, (size_t)(add - done), (off_t)(base + done));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        int e = n < 0 ? errno : EIO;
        free(buf);
        return -e;
      }
      done += (uint64_t)n;
    }
    if (have)
      memcpy(buf + add, t->buf, (size_t)have);
    free(t->buf);
    t->buf = buf;
    t->base = base;
  }
}

/* Line number of the line starting at offset `at` (only for messages about
 * a refused log, so reading the whole file does not matter). */
static uint64_t
line_number(int fd, uint64_t at)
{
  char buf[TAIL_BLOCK];
  uint64_t lines = 1;
  for (uint64_t off = 0; off < at;) {
    size_t want = at - off < sizeof(buf) ? (size_t)(at - off) : sizeof(buf);
    ssize_t n = pread(fd, buf, want, (off_t)off);
    if (n <= 0)
      break;
    for (ssize_t i = 0; i < n; i++)
      lines += buf[i] == '\n';
    off += (uint64_t)n;
  }
  return lines;
}

static int
refuse_line(const struct rp_audit_tail *t, uint64_t at, const char *reason,
            struct rp_error **err)
{
  return rp_error_set(err, RP_ETAMPER,
                      "%s:%" PRIu64 ": %s: refusing to continue the chain "
                      "from it (run reaper verify)",
                      t->path, line_number(t->fd, at), reason);
}

int
rp_audit_tail_error(const struct rp_audit_tail *t, int rc,
                    struct rp_error **err)
{
  if (rc == -EFBIG)
    return rp_error_set(err, RP_ETAMPER,
                        "%s: no intact line in its last %" PRIu64
                        " bytes: refusing to continue the chain",
                        t->path, RP_AUDIT_MAX_TAIL);
  return rp_error_set(err, -rc, "read %s: %s", t->path, strerror(-rc));
}

int
rp_audit_tail_line(struct rp_audit_tail *t, uint64_t start, uint64_t end,
                   struct rp_audit_pos *d, struct rp_error **err)
{
  if (end - start > RP_AUDIT_MAX_LINE)
    return refuse_line(t, start, "line longer than 1 MiB", err);
  const char *p = t->buf + (start - t->base);
  size_t len = (size_t)(end - start);
  cleanup_free char *reason = NULL;
  struct rp_audit_line l;
  if (rp_audit_line_parse(p, len, &l, &reason) == 0) {
    d->seq = l.seq;
    memcpy(d->hash, l.hash, 65);
    d->end = end + 1;
    snprintf(t->last_event, sizeof(t->last_event), "%s", l.event);
    rp_audit_line_clear(&l);
    return 0;
  }
  cleanup_json json_t *j = json_loadb(p, len, 0, NULL);
  if (!j)
    return 1;
  return refuse_line(t, start, reason, err);
}

int
rp_audit_tail_last_line(struct rp_audit_tail *t, struct rp_audit_pos *d,
                        struct rp_error **err)
{
  int64_t nl, start;
  int rc = rp_audit_tail_rfind_nl(t, t->size, &nl);
  if (rc == 0 && (uint64_t)(nl + 1) != t->size)
    return rp_error_set(err, RP_ETAMPER,
                        "%s: does not end with a complete line: refusing to "
                        "continue the chain from it (run reaper verify)",
                        t->path);
  if (rc == 0)
    rc = rp_audit_tail_rfind_nl(t, (uint64_t)nl, &start);
  if (rc < 0)
    return rp_audit_tail_error(t, rc, err);
  rc = rp_audit_tail_line(t, (uint64_t)(start + 1), (uint64_t)nl, d, err);
  if (rc == 1)
    return refuse_line(t, (uint64_t)(start + 1), "not JSON", err);
  return rc;
}
