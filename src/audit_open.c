/* Opening the audit log (audit.h, rp_audit_open_opts): the signing key, the
 * file's trust, the file created or opened and locked, and the chain state
 * recovered from its end: its last line when it ends cleanly; behind a torn
 * tail, the last intact line, the torn bytes terminated and recorded
 * (audit_torn.c); in an empty file, the last line of the last rotated part.
 * Only the tail is read (audit_tail.c), however long the log.  Blocking:
 * before the loop runs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_writer.h"
#include "file_trust.h"
#include "util.h"

/* The most the warnings of one open may say. */
#define WARNINGS_MAX (64 * 1024)

/* Creates the missing parent directories of path, mode 0700, each made
 * durable in its own parent. */
static int
make_parents(const char *path, struct rp_error **err)
{
  cleanup_free char *p = rp_xstrdup(path);
  for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
    if (s[-1] == '/')
      continue;
    *s = '\0';
    if (mkdir(p, 0700) == 0) {
      cleanup_free char *parent = rp_audit_dir_of(p);
      if (rp_audit_fsync_dir(parent, err) != 0)
        return -1;
    } else if (errno != EEXIST) {
      return rp_error_set(err, errno, "create directory %s: %s", p,
                          strerror(errno));
    }
    *s = '/';
  }
  return 0;
}

static void warn_add(struct rp_buf *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Adds to the warnings of open ("; " between them). */
static void
warn_add(struct rp_buf *w, const char *fmt, ...)
{
  if (w->len)
    rp_buf_add(w, "; ", 2);
  va_list ap;
  va_start(ap, fmt);
  rp_buf_vaddf(w, fmt, ap);
  va_end(ap);
}

/* The chain state at the start of the log's file when it holds no intact
 * line: the last line of the last rotated part (a crash came between a
 * rotation and the new file's first line), or a new log's. */
static int
carry_from_parts(struct rp_audit *a, struct rp_audit_pos *d, char **last_event,
                 struct rp_buf *warning, struct rp_error **err)
{
  *d = (struct rp_audit_pos){
      .seq = 0, .hash = RP_AUDIT_ZERO_HASH, .end = 0, .day = -1};
  char **files = NULL;
  size_t n = 0;
  if (rp_audit_files(a->path, &files, &n, err) != 0)
    return -1;
  const char *part = NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(files[i], a->path) != 0)
      part = files[i];
  int rc = 0;
  if (part) {
    struct rp_audit_tail t = {.path = part};
    t.fd = open(part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (t.fd < 0 || fstat(t.fd, &st) != 0) {
      rc = rp_error_set(err, errno, "open %s: %s", part,
                        errno == ELOOP ? "a symbolic link: reaper never reads "
                                         "its log's parts through a link"
                                       : strerror(errno));
    } else {
      t.size = t.base = (uint64_t)st.st_size;
      rc = rp_audit_tail_last_line(&t, d, err);
      d->end = 0;
      if (rc == 0) {
        *last_event = rp_xstrdup(t.last_event);
        warn_add(warning,
                 "%s holds no complete line: continuing the chain from the "
                 "last rotated part, %s (seq %" PRIu64
                 "; a crash during a rotation?)",
                 a->path, part, d->seq);
      }
    }
    if (t.fd >= 0)
      close(t.fd);
    free(t.buf);
  }
  rp_audit_files_free(files);
  return rc;
}

/* The UTC day of the file's first line (its ts comes first), for daily
 * rotation; today when it cannot be read. */
static int64_t
first_line_day(int fd, const struct timespec *now)
{
  static const char pre[] = "{\"ts\":\"";
  char buf[64];
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n > (ssize_t)strlen(pre) && memcmp(buf, pre, strlen(pre)) == 0) {
    buf[n] = '\0';
    char *q = strchr(buf + strlen(pre), '"');
    int64_t ms;
    if (q) {
      *q = '\0';
      if (rp_parse_time_ms(buf + strlen(pre), &ms) == 0 && ms > 0)
        return rp_audit_day_of((time_t)(ms / 1000));
    }
  }
  return rp_audit_day_of(now->tv_sec);
}

/* Reads the end of the log to find the durable line; terminates and records
 * a torn tail.  *warning says what was found, *last_event (owned) the event
 * of the last line. */
static int
find_durable(struct rp_audit *a, char **last_event, struct rp_buf *warning,
             struct rp_error **err)
{
  struct stat st;
  if (fstat(a->lock_fd, &st) != 0)
    return rp_error_set(err, errno, "stat %s: %s", a->path, strerror(errno));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct rp_audit_pos d = {
      .seq = 0, .hash = RP_AUDIT_ZERO_HASH, .end = 0, .day = -1};
  if (st.st_size == 0) {
    if (carry_from_parts(a, &d, last_event, warning, err) != 0)
      return -1;
    rp_audit_set_durable(a, &d);
    return 0;
  }
  struct rp_audit_tail t = {.path = a->path,
                            .fd = a->lock_fd,
                            .size = (uint64_t)st.st_size,
                            .base = (uint64_t)st.st_size};
  int64_t nl;
  int rc = rp_audit_tail_rfind_nl(&t, t.size, &nl);
  if (rc < 0) {
    free(t.buf);
    return rp_audit_tail_error(&t, rc, err);
  }
  if ((uint64_t)(nl + 1) == t.size) {
    /* A clean end: continue from the last line, which must be intact. */
    rc = rp_audit_tail_last_line(&t, &d, err);
    free(t.buf);
    if (rc != 0)
      return -1;
    *last_event = rp_xstrdup(t.last_event);
    d.day = first_line_day(a->lock_fd, &now);
    rp_audit_set_durable(a, &d);
    return 0;
  }
  /* A torn tail: its bytes are kept, terminated and recorded. */
  uint64_t from;
  rc = rp_audit_torn_from(&t, nl, &from, &d, err);
  free(t.buf);
  if (rc != 0)
    return -1;
  if (from == 0 && carry_from_parts(a, &d, last_event, warning, err) != 0)
    return -1;
  d.end = from;
  d.day = first_line_day(a->lock_fd, &now);
  cleanup_buf struct rp_buf buf = {.max = RP_AUDIT_JOB_MAX};
  struct rp_audit_pos torn;
  if (rp_audit_put_torn(a, from, t.size, &d, &buf, &torn, err) != 0)
    return -1;
  if (rp_audit_write_all(a, a->fd, buf.p, buf.len, &torn.end, err) != 0)
    return rp_error_prefix(err, "terminate torn tail");
  rp_audit_set_durable(a, &torn);
  free(*last_event);
  *last_event = rp_xstrdup("audit.torn");
  warn_add(warning,
           "torn tail: %" PRIu64 " bytes at offset %" PRIu64
           " after the last intact line (seq %" PRIu64
           ") did not end with a newline (a write cut short by a crash?); "
           "kept, terminated and recorded as audit.torn seq %" PRIu64,
           t.size - from, from, d.seq, torn.seq);
  return 0;
}

static int
read_tail(struct rp_audit *a, struct rp_buf *warning, struct rp_error **err)
{
  cleanup_free char *last_event = NULL;
  if (find_durable(a, &last_event, warning, err) != 0)
    return -1;
  if (a->key && a->durable.seq > 0 &&
      (!last_event || strcmp(last_event, "audit.checkpoint") != 0))
    warn_add(warning,
             "the log does not end with a signed checkpoint (the agent "
             "crashed or was killed, or the log was cut): the lines after "
             "the last one are vouched for only by this run's checkpoints, "
             "and reaper verify --key names them");
  return 0;
}

int
rp_audit_open(const char *path, struct rp_audit **out, char **warning,
              struct rp_error **err)
{
  return rp_audit_open_opts(path, NULL, out, warning, err);
}

int
rp_audit_open_opts(const char *path, const struct rp_audit_options *opt,
                   struct rp_audit **out, char **warning, struct rp_error **err)
{
  *out = NULL;
  if (warning)
    *warning = NULL;
  if (!path || !*path)
    return rp_error_set(err, RP_ECONFIG, "audit log: no path");
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (!*base)
    return rp_error_set(err, RP_ECONFIG, "audit log %s: not a file name", path);
  struct rp_audit_options o = opt ? *opt : (struct rp_audit_options){0};
  struct rp_audit_key *key = NULL;
  if (o.signing_key) {
    if (rp_audit_key_load(o.signing_key, true, &key, err) != 0)
      return rp_error_prefix(err, "audit signing key");
    cleanup_json json_t *name = json_string(base);
    if (!name) {
      rp_audit_key_free(key);
      return rp_error_set(err, RP_ECONFIG,
                          "audit log %s: checkpoints name the file, and its "
                          "name is not UTF-8",
                          path);
    }
  }
  /* The log is the proof of what reaper did: nobody but root and reaper's
   * user may be able to change or replace it, and it is never written
   * through a symbolic link (which could point anywhere). */
  if (make_parents(path, err) != 0 ||
      rp_file_trust_check(path, "audit log",
                          RP_TRUST_ABSENT_OK | RP_TRUST_NO_SYMLINK, err) != 0) {
    rp_audit_key_free(key);
    return -1;
  }
  struct rp_audit *a = rp_xcalloc(1, sizeof(*a));
  a->path = rp_xstrdup(path);
  a->file = rp_xstrdup(base);
  a->lock_fd = -1;
  a->key = key;
  a->every =
      o.checkpoint_every ? o.checkpoint_every : RP_AUDIT_CHECKPOINT_EVERY;
  a->rotate_size = o.rotate_size;
  a->rotate_daily = o.rotate_daily;
  a->syslog.fd = -1;
  a->syslog.path = o.syslog_path ? rp_xstrdup(o.syslog_path) : NULL;
  bool created = true;
  a->fd = open(path,
               O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
               0600);
  if (a->fd < 0 && errno == EEXIST) {
    created = false;
    a->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  }
  int rc = -1;
  struct stat st;
  cleanup_buf struct rp_buf w = {.max = WARNINGS_MAX};
  if (a->fd < 0) {
    rp_error_set(err, errno, "open %s: %s", path, strerror(errno));
    goto out;
  }
  if (created && fchmod(a->fd, 0600) != 0) { /* whatever the umask */
    rp_error_set(err, errno, "chmod %s: %s", path, strerror(errno));
    goto out;
  }
  if (fstat(a->fd, &st) != 0) {
    rp_error_set(err, errno, "stat %s: %s", path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rp_error_set(err, EINVAL, "%s: not a regular file", path);
    goto out;
  }
  a->lock_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (a->lock_fd < 0) {
    rp_error_set(err, errno, "open %s: %s", path, strerror(errno));
    goto out;
  }
  if (flock(a->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    rp_error_set(err, errno == EWOULDBLOCK ? EBUSY : errno, "lock %s: %s", path,
                 errno == EWOULDBLOCK ? "in use by another writer"
                                      : strerror(errno));
    goto out;
  }
  /* A new file exists for sure only once its directory entry is durable. */
  if (created || st.st_size == 0) {
    cleanup_free char *dir = rp_audit_dir_of(path);
    if (rp_audit_fsync_dir(dir, err) != 0)
      goto out;
  }
  rc = read_tail(a, &w, err);
  if (warning)
    *warning = rp_buf_take(&w);
  if (rc != 0)
    goto out;
  *out = RP_STEAL(a);
out:
  if (a)
    rp_audit_release(a);
  return rc;
}
