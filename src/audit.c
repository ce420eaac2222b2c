/* Writing the audit log.
 *
 * Chain state.  The log keeps two positions (struct pos): the head (what
 * the next append chains to: last seq and hash assigned, the file size and
 * lines since the last checkpoint once the queued lines are written) and
 * the durable line (the last line whose write and fsync succeeded).
 * Appends render their lines at once, advancing the head, so lines are
 * chained in call order; the queue then writes them one at a time.  When a
 * write or fsync fails, the log fails closed: the head rolls back to the
 * durable line and the epoch changes, so every line rendered on top of the
 * failed one (queued behind it, with a now meaningless prev) is dropped with
 * RP_EAUDIT instead of written.  Nothing is written until a retry succeeds,
 * and the retry chains to the durable line: no seq is skipped and no prev
 * forks.
 *
 * Checkpoints and rotation are decided where lines are chained, at render
 * time, so they take their place in the chain like any line: an append
 * whose line finds the file due for rotation queues a rotation job first
 * (the "rotate" checkpoint, the rename, the new file), then its line; a
 * line that completes checkpoint_every lines carries the "interval"
 * checkpoint in the same write.  A failed rotation fails the log like a
 * failed write, keeping what it got done: when the rename happened, the
 * durable line is the last of the part and the retry begins the new file.
 *
 * Bytes after the durable line.  A failed write may still have put bytes in
 * the file: part of the line (a short write then an error), or all of it
 * (the fsync failed).  They are not known durable and the chain went on
 * without them, so the retry records them as open does a torn tail: a "\n"
 * if they do not end with one, then an audit.torn line with their offset,
 * length and SHA-256, chained to the durable line, then audit.resumed.
 * audit_verify.c explains how verify accepts that shape and nothing else.
 *
 * Threads.  Only the loop thread touches struct rp_audit, except that the
 * one job in flight on the threadpool reads the immutable path, options and
 * key, the test fault, the syslog sink (used by nothing else meanwhile) and
 * the snapshot the loop thread put in the job before queueing it
 * (uv_queue_work orders those writes before the work runs).  The blocking
 * functions run the same jobs inline, and only while none is queued. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "file_trust.h"
#include "util.h"

#define ZERO_HASH                                                              \
  "0000000000000000000000000000000000000000000000000000000000000000"
#define HASH_HEAD ",\"hash\":\""
#define TAIL_BLOCK (64 * 1024)
/* How far back from the end open looks for the last intact line behind a
 * torn tail before refusing the log. */
#define MAX_TAIL ((uint64_t)8 * RP_AUDIT_MAX_LINE)
#define DAY_S 86400
/* Syslog daemons cut long messages anyway (rsyslog at 8 KiB by default). */
#define SYSLOG_MAX 8192
#define SYSLOG_WAIT_MS 100

/* A place in the chain and in the current file. */
struct pos {
  uint64_t seq;      /* of the last line; 0 in a new log */
  char hash[65];     /* its hash; 64 zeros in a new log */
  uint64_t end;      /* size of the current file after it */
  uint64_t since_cp; /* lines after the last checkpoint */
  int64_t day;       /* UTC day of the current file's first line; -1 while
                        the file is empty */
};

enum job_kind {
  JOB_WRITE,  /* write buf, then fsync */
  JOB_ROTATE, /* write buf (the "rotate" checkpoint, may be empty), rename
                 the file to a part, begin a new one */
  JOB_RETRY,  /* record stray bytes, write audit.resumed */
  JOB_SKIP,   /* write nothing; deliver err (NULL: success) */
};

struct job {
  uv_work_t work;     /* work.data = this job */
  struct rp_audit *a; /* borrowed: the log outlives its jobs */
  uv_loop_t *loop;    /* borrowed; NULL for a blocking call */
  enum job_kind kind;
  uint64_t epoch;
  rp_audit_cb cb;
  void *arg;
  /* JOB_WRITE, JOB_ROTATE */
  char *buf; /* owned: lines with their newlines */
  size_t len;
  unsigned checkpoints; /* in buf */
  struct pos after;     /* the head after this job (end: projected) */
  time_t now;           /* JOB_ROTATE: names the part */
  int fd;               /* borrowed from the log when started */
  /* JOB_RETRY: a snapshot taken when started */
  struct pos snap;
  bool snap_new_file;
  uint64_t failed_writes;
  char *last_error; /* owned */
  /* results */
  uint64_t end;         /* file size after the write */
  bool wrote;           /* JOB_ROTATE: buf is durable in the old file */
  char *part;           /* owned: JOB_ROTATE: the old file's new name */
  int new_fd;           /* owned until handed to the log */
  int new_lock_fd;      /* owned until handed to the log */
  struct pos done;      /* JOB_RETRY */
  struct rp_error *err; /* owned */
  struct job *next;
};

struct fault {
  int err; /* 0: no fault */
  size_t partial;
  bool at_fsync;
  bool partial_done;
};

/* The syslog copy: a datagram socket used by the writer alone. */
struct sink {
  char *path;       /* owned; NULL: no copy */
  int fd;           /* owned; -1 until connected */
  uint64_t dropped; /* atomic: read on the loop thread */
};

struct rp_audit {
  char *path;  /* owned */
  char *file;  /* owned: base name of path, as checkpoints name it */
  int fd;      /* owned: O_WRONLY|O_APPEND, the writer */
  int lock_fd; /* owned: O_RDONLY, holds the flock and reads back bytes */
  struct pos durable;
  struct pos head;
  bool new_file; /* the current file was renamed to a part; the retry
                    begins the new one */
  bool failed;
  char *fail_reason; /* owned, NULL while healthy */
  uint64_t write_errors;
  uint64_t epoch;
  struct job *q_head, *q_tail; /* owned: queued jobs, q_head in flight if
                                  busy */
  bool busy;
  bool closing;
  bool draining;   /* rp_audit_close is running the loop */
  int dispatching; /* inside a callback */
  struct fault fault;
  struct rp_audit_key *key; /* owned; NULL: no checkpoints */
  uint64_t every;
  uint64_t rotate_size;
  bool rotate_daily;
  struct sink syslog;
  uint64_t checkpoints, rotations;
};

/* Hands a descriptor out of a cleanup_close local. */
static int
steal_fd(int *fd)
{
  int f = *fd;
  *fd = -1;
  return f;
}

/* --- syslog copy -------------------------------------------------------- */

static void
sink_close(struct sink *s)
{
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
}

static int
sink_connect(struct sink *s)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(s->path) >= sizeof(sa.sun_path))
    return -1;
  memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
  s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s->fd < 0)
    return -1;
  if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    sink_close(s);
    return -1;
  }
  return 0;
}

/* Sends one message; false when it cannot: no socket, or a full one that
 * does not drain within SYSLOG_WAIT_MS. */
static bool
sink_send(struct sink *s, const char *msg, size_t len)
{
  bool waited = false;
  for (int reconnects = 0; reconnects < 2;) {
    if (s->fd < 0 && sink_connect(s) != 0)
      return false;
    ssize_t n = send(s->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0)
      return true;
    if (errno == EINTR)
      continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && !waited) {
      struct pollfd p = {.fd = s->fd, .events = POLLOUT};
      waited = true;
      if (poll(&p, 1, SYSLOG_WAIT_MS) > 0)
        continue;
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return false;
    /* The daemon restarted or its socket went: connect once more. */
    sink_close(s);
    reconnects++;
  }
  return false;
}

/* Copies every line of buf (lines end with "\n"; empty ones are the
 * terminators of torn bytes) as one message each, RFC 3164 style as
 * syslog(3) sends them. */
static void
sink_copy(struct sink *s, const char *buf, size_t len)
{
  if (!s->path)
    return;
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  char date[32];
  strftime(date, sizeof(date), "%b %e %H:%M:%S", &tm);
  char head[96];
  int hn = snprintf(head, sizeof(head),
                    "<%d>%s reaper[%d]: ", LOG_AUTHPRIV | LOG_INFO, date,
                    (int)getpid());
  if (hn < 0 || (size_t)hn >= sizeof(head))
    return;
  for (const char *p = buf, *end = buf + len; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n > 0) {
      char msg[sizeof(head) + SYSLOG_MAX + 64];
      size_t take = n > SYSLOG_MAX ? SYSLOG_MAX : n;
      memcpy(msg, head, (size_t)hn);
      memcpy(msg + hn, p, take);
      size_t m = (size_t)hn + take;
      if (take < n)
        m += (size_t)snprintf(msg + m, sizeof(msg) - m,
                              " [cut: %zu bytes, whole in the audit log]", n);
      if (!sink_send(s, msg, m))
        __atomic_fetch_add(&s->dropped, 1, __ATOMIC_RELAXED);
    }
    p += n + 1;
  }
}

/* --- rendering ---------------------------------------------------------- */

static const char *const reserved[] = {"ts", "seq", "event", "prev", "hash"};

static int
check_fields(json_t *fields, struct rp_error **err)
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

static int64_t
day_of(time_t s)
{
  return s >= 0 ? (int64_t)s / DAY_S : ((int64_t)s - DAY_S + 1) / DAY_S;
}

static void
format_ts(const struct timespec *now, char ts[48])
{
  struct tm tm;
  gmtime_r(&now->tv_sec, &tm);
  snprintf(ts, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (long)now->tv_nsec);
}

/* Renders one line (with its newline) chained to prev with the given seq:
 * the object is serialized once, hashed as it is, and the hash member is
 * spliced in before its closing brace. */
static int
render(const char *event, json_t *fields, const char *ts, uint64_t seq,
       const char *prev, char **out, size_t *out_len, char hash[65],
       struct rp_error **err)
{
  if (check_fields(fields, err) != 0)
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

static void
buf_add(char **buf, size_t *len, const char *p, size_t n)
{
  *buf = rp_xrealloc(*buf, *len + n);
  memcpy(*buf + *len, p, n);
  *len += n;
}

/* Appends to buf the line that event takes at *h, advancing *h. */
static int
put_line(struct pos *h, const struct timespec *now, const char *event,
         json_t *fields, char **buf, size_t *len, struct rp_error **err)
{
  char ts[48];
  format_ts(now, ts);
  cleanup_free char *line = NULL;
  size_t n;
  char hash[65];
  if (render(event, fields, ts, h->seq + 1, h->hash, &line, &n, hash, err))
    return -1;
  buf_add(buf, len, line, n);
  h->seq++;
  memcpy(h->hash, hash, 65);
  h->since_cp++;
  if (h->day < 0)
    h->day = day_of(now->tv_sec);
  h->end += n;
  return 0;
}

/* Appends to buf the checkpoint signed at *h (see audit.h), advancing *h. */
static int
put_checkpoint(const struct rp_audit *a, struct pos *h,
               const struct timespec *now, const char *reason, char **buf,
               size_t *len, struct rp_error **err)
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
             err))
    return -1;
  buf_add(buf, len, line, n);
  h->seq++;
  memcpy(h->hash, hash, 65);
  h->since_cp = 0;
  if (h->day < 0)
    h->day = day_of(now->tv_sec);
  h->end += n;
  return 0;
}

/* --- writing ------------------------------------------------------------ */

static int
write_fail(const struct rp_audit *a, const char *what, int e,
           struct rp_error **err)
{
  /* O_NOFOLLOW's answer, in words. */
  if (e == ELOOP)
    return rp_error_set(err, RP_EAUDIT,
                        "%s %s: a symbolic link: reaper never writes its log "
                        "through a link",
                        what, a->path);
  return rp_error_set(err, RP_EAUDIT, "%s %s: %s", what, a->path, strerror(e));
}

/* Writes buf in one write loop and fsyncs: the only way bytes reach the
 * log; then copies the lines to syslog.  *end is the file size after the
 * write.  Runs on the threadpool for asynchronous appends. */
static int
write_all(struct rp_audit *a, int fd, const char *buf, size_t len,
          uint64_t *end, struct rp_error **err)
{
  struct fault *f = &a->fault;
  size_t done = 0;
  if (f->err && !f->at_fsync) {
    if (!f->partial_done && f->partial > 0) {
      ssize_t n = write(fd, buf, f->partial < len ? f->partial : len);
      (void)n; /* the simulated failure below is what the caller sees */
    }
    f->partial_done = true;
    return write_fail(a, "write", f->err, err);
  }
  while (done < len) {
    ssize_t n = write(fd, buf + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return write_fail(a, "write", errno, err);
    if (n == 0)
      return write_fail(a, "write", EIO, err);
    done += (size_t)n;
  }
  if (f->err && f->at_fsync)
    return write_fail(a, "fsync", f->err, err);
  if (fdatasync(fd) != 0)
    return write_fail(a, "fsync", errno, err);
  off_t pos = lseek(fd, 0, SEEK_CUR);
  struct stat st;
  if (pos < 0 && fstat(fd, &st) == 0)
    pos = st.st_size;
  if (pos < 0)
    return write_fail(a, "seek", errno, err);
  *end = (uint64_t)pos;
  sink_copy(&a->syslog, buf, len);
  return 0;
}

/* Renders the audit.torn line for the bytes [from, size) of the log, with
 * the "\n" that terminates them first when they lack one. */
static int
render_torn(struct rp_audit *a, uint64_t from, uint64_t size,
            const struct pos *d, char **out, size_t *out_len, char hash[65],
            struct rp_error **err)
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
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  char ts[48];
  format_ts(&now, ts);
  cleanup_free char *line = NULL;
  size_t len;
  if (render("audit.torn", f, ts, d->seq + 1, d->hash, &line, &len, hash, err))
    return -1;
  bool nl = last != '\n';
  char *buf = rp_xmalloc(len + 1);
  if (nl)
    buf[0] = '\n';
  memcpy(buf + nl, line, len);
  *out = buf;
  *out_len = len + nl;
  return 0;
}

/* Begins the file at the log's path after its old file became a part:
 * creates it (with excl it must not exist; without, an empty file is taken
 * over, since a failed rotation may have created it), locks it and makes
 * its directory entry durable. */
static int
begin_file(struct rp_audit *a, bool excl, int *fd_out, int *lock_out,
           struct rp_error **err)
{
  cleanup_close int fd = open(a->path,
                              O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
                                  O_NOFOLLOW | (excl ? O_EXCL : 0),
                              0600);
  if (fd < 0)
    return write_fail(a, "create", errno, err);
  if (fchmod(fd, 0600) != 0)
    return write_fail(a, "chmod", errno, err);
  cleanup_close int lock = open(a->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (lock < 0)
    return write_fail(a, "open", errno, err);
  if (flock(lock, LOCK_EX | LOCK_NB) != 0)
    return rp_error_set(err, RP_EAUDIT, "lock %s: %s", a->path,
                        errno == EWOULDBLOCK ? "in use by another writer"
                                             : strerror(errno));
  struct stat st, ls;
  if (fstat(fd, &st) != 0 || fstat(lock, &ls) != 0)
    return write_fail(a, "stat", errno, err);
  if (st.st_dev != ls.st_dev || st.st_ino != ls.st_ino)
    return rp_error_set(err, RP_EAUDIT, "%s changed while it was opened",
                        a->path);
  if (st.st_size != 0)
    return rp_error_set(err, RP_EAUDIT,
                        "%s already holds %lld bytes that this log did not "
                        "write: not continuing the chain in it",
                        a->path, (long long)st.st_size);
  cleanup_free char *dir = rp_audit_dir_of(a->path);
  if (rp_audit_fsync_dir(dir, err) != 0)
    return -1;
  RP_CRASHPOINT("audit.rotate.created");
  *fd_out = steal_fd(&fd);
  *lock_out = steal_fd(&lock);
  return 0;
}

/* The rotation (see audit.h): the checkpoint that closes the old file, the
 * rename, the new file.  What got done is in the job for job_complete. */
static void
rotate_work(struct job *j)
{
  struct rp_audit *a = j->a;
  if (j->len > 0) {
    if (write_all(a, j->fd, j->buf, j->len, &j->end, &j->err) != 0)
      return;
    j->wrote = true;
  }
  if (rp_audit_rename_part(a->path, j->now, &j->part, &j->err) != 0)
    return;
  RP_CRASHPOINT("audit.rotate.renamed");
  begin_file(a, true, &j->new_fd, &j->new_lock_fd, &j->err);
}

/* The retry (see the top of this file): reopens the log (or begins the new
 * file a failed rotation did not), records any bytes after the durable line
 * d, writes audit.resumed.  On success *new_fd is the new writer, *new_lock
 * the new lock (or -1: the old one holds) and *done the new durable line. */
static int
retry_write(struct rp_audit *a, const struct pos *d, bool new_file,
            uint64_t failed_writes, const char *last_error, int *new_fd,
            int *new_lock, struct pos *done, struct rp_error **err)
{
  cleanup_close int fd = -1;
  cleanup_close int lock = -1;
  uint64_t size = 0;
  if (new_file) {
    if (begin_file(a, false, &fd, &lock, err) != 0)
      return -1;
  } else {
    fd = open(a->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
      return write_fail(a, "reopen", errno, err);
    struct stat st, locked;
    if (fstat(fd, &st) != 0 || fstat(a->lock_fd, &locked) != 0)
      return write_fail(a, "stat", errno, err);
    if (st.st_dev != locked.st_dev || st.st_ino != locked.st_ino)
      return rp_error_set(err, RP_EAUDIT,
                          "%s is no longer the file opened (moved or "
                          "deleted?): not continuing its chain elsewhere",
                          a->path);
    size = (uint64_t)st.st_size;
    if (size < d->end)
      return rp_error_set(err, RP_EAUDIT,
                          "%s shrank from %" PRIu64 " to %" PRIu64
                          " bytes since its last durable line",
                          a->path, d->end, size);
  }
  cleanup_free char *buf = NULL;
  size_t len = 0;
  struct pos next = *d;
  if (size > d->end) {
    cleanup_free char *torn = NULL;
    size_t torn_len;
    if (render_torn(a, d->end, size, d, &torn, &torn_len, next.hash, err))
      return -1;
    buf_add(&buf, &len, torn, torn_len);
    next.seq++;
    next.since_cp++;
  }
  cleanup_json json_t *f =
      json_pack("{s:I, s:s}", "failed_writes", (json_int_t)failed_writes,
                "error", last_error ? last_error : "");
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (put_line(&next, &now, "audit.resumed", f, &buf, &len, err) != 0)
    return -1;
  if (write_all(a, fd, buf, len, &next.end, err) != 0)
    return -1;
  *done = next;
  *new_fd = steal_fd(&fd);
  *new_lock = steal_fd(&lock);
  return 0;
}

/* --- failing closed ----------------------------------------------------- */

/* A write failed: count it, fail the log and roll the head back to the
 * durable line; lines rendered on top of the old head carry the old epoch
 * and are dropped. */
static void
fail_log(struct rp_audit *a, const struct rp_error *e)
{
  a->write_errors++;
  a->failed = true;
  a->epoch++;
  free(a->fail_reason);
  a->fail_reason = rp_xstrdup(e && e->message ? e->message : "unknown error");
  a->head = a->durable;
}

static void
set_durable(struct rp_audit *a, const struct pos *d)
{
  a->durable = *d;
  a->head = *d;
}

static struct rp_error *
failed_error(const struct rp_audit *a)
{
  struct rp_error *e = NULL;
  rp_error_set(&e, RP_EAUDIT,
               "audit log %s cannot be written (%s): line not written", a->path,
               a->fail_reason ? a->fail_reason : "failed");
  return e;
}

static void
swap_fd(int *fd, int *new_fd)
{
  if (*new_fd < 0)
    return;
  if (*fd >= 0)
    close(*fd);
  *fd = *new_fd;
  *new_fd = -1;
}

/* --- jobs --------------------------------------------------------------- */

static void
job_free(struct job *j)
{
  if (!j)
    return;
  free(j->buf);
  free(j->last_error);
  free(j->part);
  if (j->new_fd >= 0)
    close(j->new_fd);
  if (j->new_lock_fd >= 0)
    close(j->new_lock_fd);
  rp_error_free(j->err);
  free(j);
}

static void
job_freep(struct job **j)
{
  job_free(*j);
}
#define cleanup_job __attribute__((cleanup(job_freep)))

static struct job *
job_new(struct rp_audit *a, uv_loop_t *loop, enum job_kind kind, rp_audit_cb cb,
        void *arg)
{
  struct job *j = rp_xcalloc(1, sizeof(*j));
  j->work.data = j;
  j->a = a;
  j->loop = loop;
  j->kind = kind;
  j->epoch = a->epoch;
  j->cb = cb;
  j->arg = arg;
  j->fd = -1;
  j->new_fd = -1;
  j->new_lock_fd = -1;
  return j;
}

/* The blocking part of a job: on the threadpool, or inline for the
 * blocking functions. */
static void
job_work(struct job *j)
{
  switch (j->kind) {
  case JOB_WRITE:
    write_all(j->a, j->fd, j->buf, j->len, &j->end, &j->err);
    break;
  case JOB_ROTATE:
    rotate_work(j);
    break;
  case JOB_RETRY:
    retry_write(j->a, &j->snap, j->snap_new_file, j->failed_writes,
                j->last_error, &j->new_fd, &j->new_lock_fd, &j->done, &j->err);
    break;
  case JOB_SKIP:
    break;
  }
}

/* What a job did, applied to the log (on the loop thread). */
static void
job_complete(struct rp_audit *a, struct job *j)
{
  switch (j->kind) {
  case JOB_WRITE:
    if (j->err) {
      fail_log(a, j->err);
      break;
    }
    a->durable = j->after;
    a->durable.end = j->end;
    a->checkpoints += j->checkpoints;
    break;
  case JOB_ROTATE:
    if (j->wrote) { /* the old file is closed by its checkpoint */
      a->durable.seq = j->after.seq;
      memcpy(a->durable.hash, j->after.hash, 65);
      a->durable.since_cp = j->after.since_cp;
      a->durable.end = j->end;
      a->checkpoints += j->checkpoints;
    }
    if (j->part) { /* whatever comes next goes into a new file */
      a->new_file = true;
      a->durable.end = 0;
      a->durable.day = -1;
      a->rotations++;
    }
    if (j->new_fd >= 0) {
      swap_fd(&a->fd, &j->new_fd);
      swap_fd(&a->lock_fd, &j->new_lock_fd);
      a->new_file = false;
    }
    if (j->err)
      fail_log(a, j->err);
    else
      a->durable = j->after;
    break;
  case JOB_RETRY:
    if (j->err) {
      fail_log(a, j->err);
      break;
    }
    swap_fd(&a->fd, &j->new_fd);
    swap_fd(&a->lock_fd, &j->new_lock_fd);
    a->new_file = false;
    a->failed = false;
    free(a->fail_reason);
    a->fail_reason = NULL;
    set_durable(a, &j->done);
    break;
  case JOB_SKIP:
    break;
  }
}

/* Decides what the job at the head of the queue does, from the state the
 * jobs before it left. */
static void
job_start(struct rp_audit *a, struct job *j)
{
  if ((j->kind == JOB_WRITE || j->kind == JOB_ROTATE) &&
      (a->failed || j->epoch != a->epoch)) {
    j->kind = JOB_SKIP;
    j->err = failed_error(a);
  } else if (j->kind == JOB_RETRY && !a->failed) {
    j->kind = JOB_SKIP; /* nothing to retry: success */
  } else if (j->kind == JOB_RETRY) {
    j->snap = a->durable;
    j->snap_new_file = a->new_file;
    j->failed_writes = a->write_errors;
    j->last_error = rp_xstrdup(a->fail_reason ? a->fail_reason : "");
  }
  j->fd = a->fd;
}

/* --- the queue ---------------------------------------------------------- */

static void
work_cb(uv_work_t *w)
{
  job_work(w->data);
}

static void after_work_cb(uv_work_t *w, int status);

/* Starts the job at the head of the queue unless one is in flight. */
static void
pump(struct rp_audit *a)
{
  if (a->busy || !a->q_head)
    return;
  struct job *j = a->q_head;
  job_start(a, j);
  a->busy = true;
  /* uv_queue_work fails only without a work callback. */
  if (uv_queue_work(j->loop, &j->work, work_cb, after_work_cb) != 0) {
    fprintf(stderr, "reaper: uv_queue_work failed for the audit log\n");
    abort();
  }
}

static void
audit_free(struct rp_audit *a)
{
  if (a->fd >= 0)
    close(a->fd);
  if (a->lock_fd >= 0)
    close(a->lock_fd); /* releases the flock */
  sink_close(&a->syslog);
  free(a->syslog.path);
  rp_audit_key_free(a->key);
  free(a->fail_reason);
  free(a->file);
  free(a->path);
  free(a);
}

static void
after_work_cb(uv_work_t *w, int status)
{
  struct job *j = w->data;
  struct rp_audit *a = j->a;
  a->busy = false;
  a->q_head = j->next;
  if (!a->q_head)
    a->q_tail = NULL;
  if (status != 0 && !j->err && j->kind != JOB_SKIP)
    rp_error_set(&j->err, RP_EAUDIT, "write %s: %s", a->path,
                 uv_strerror(status));
  job_complete(a, j);
  pump(a);
  a->dispatching++;
  if (j->cb)
    j->cb(j->arg, j->err);
  a->dispatching--;
  job_free(j);
  if (a->closing && !a->draining && !a->dispatching && !a->q_head)
    audit_free(a);
}

static void
enqueue(struct rp_audit *a, struct job *j)
{
  if (a->q_tail)
    a->q_tail->next = j;
  else
    a->q_head = j;
  a->q_tail = j;
  pump(a);
}

/* --- staging an append -------------------------------------------------- */

static bool
rotation_due(const struct rp_audit *a, const struct pos *h,
             const struct timespec *now)
{
  if (h->end == 0)
    return false; /* an empty file is never rotated */
  if (a->rotate_size && h->end >= a->rotate_size)
    return true;
  return a->rotate_daily && h->day >= 0 && day_of(now->tv_sec) > h->day;
}

/* Renders what appending event takes, advancing the head: *rot (NULL when
 * none is due) rotates the file first; *wr writes the line, with the
 * checkpoint that follows it when one is due.  On error nothing changed. */
static int
stage(struct rp_audit *a, uv_loop_t *loop, const char *event, json_t *fields,
      rp_audit_cb cb, void *arg, struct job **rot, struct job **wr,
      struct rp_error **err)
{
  *rot = *wr = NULL;
  if (check_fields(fields, err) != 0)
    return -1;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct pos h = a->head;
  cleanup_job struct job *r = NULL;
  if (rotation_due(a, &h, &now)) {
    r = job_new(a, loop, JOB_ROTATE, NULL, NULL);
    r->now = now.tv_sec;
    if (a->key) {
      if (put_checkpoint(a, &h, &now, "rotate", &r->buf, &r->len, err) != 0)
        return -1;
      r->checkpoints = 1;
    }
    h.end = 0;
    h.day = -1;
    r->after = h;
  }
  cleanup_job struct job *w = job_new(a, loop, JOB_WRITE, cb, arg);
  if (put_line(&h, &now, event, fields, &w->buf, &w->len, err) != 0)
    return -1;
  if (a->key && h.since_cp >= a->every) {
    if (put_checkpoint(a, &h, &now, "interval", &w->buf, &w->len, err) != 0)
      return -1;
    w->checkpoints = 1;
  }
  w->after = h;
  a->head = h;
  *rot = RP_STEAL(r);
  *wr = RP_STEAL(w);
  return 0;
}

int
rp_audit_append(struct rp_audit *a, uv_loop_t *loop, const char *event,
                json_t *fields, rp_audit_cb cb, void *arg)
{
  if (!a || !loop || !event || !*event || a->closing)
    return -1;
  cleanup_error struct rp_error *e = NULL;
  if (a->failed) {
    if (check_fields(fields, &e) != 0)
      return -1;
    struct job *j = job_new(a, loop, JOB_SKIP, cb, arg);
    j->err = failed_error(a);
    enqueue(a, j);
    return 0;
  }
  struct job *r, *w;
  if (stage(a, loop, event, fields, cb, arg, &r, &w, &e) != 0)
    return -1;
  if (r)
    enqueue(a, r);
  enqueue(a, w);
  return 0;
}

int
rp_audit_retry(struct rp_audit *a, uv_loop_t *loop, rp_audit_cb cb, void *arg)
{
  if (!a || !loop || a->closing)
    return -1;
  enqueue(a, job_new(a, loop, JOB_RETRY, cb, arg));
  return 0;
}

/* --- blocking ----------------------------------------------------------- */

static int
sync_allowed(struct rp_audit *a, const char *what, struct rp_error **err)
{
  if (!a)
    return rp_error_set(err, EINVAL, "%s: no audit log", what);
  if (a->closing)
    return rp_error_set(err, EINVAL, "%s %s: the log is closed", what, a->path);
  if (a->q_head)
    return rp_error_set(err, EBUSY,
                        "%s %s: asynchronous appends are still queued; a "
                        "blocking write now would interleave with them",
                        what, a->path);
  return 0;
}

static void
pass_error(struct rp_error **err, struct rp_error **e)
{
  if (err && !*err)
    *err = RP_STEAL(*e);
}

/* Runs a job inline, as the queue would. */
static int
run_sync(struct rp_audit *a, struct job *j, struct rp_error **err)
{
  job_start(a, j);
  job_work(j);
  job_complete(a, j);
  if (j->err) {
    pass_error(err, &j->err);
    return -1;
  }
  return 0;
}

static int
refuse_failed(struct rp_audit *a, struct rp_error **err)
{
  cleanup_error struct rp_error *e = failed_error(a);
  pass_error(err, &e);
  return -1;
}

int
rp_audit_append_sync(struct rp_audit *a, const char *event, json_t *fields,
                     struct rp_error **err)
{
  if (sync_allowed(a, "audit append", err) != 0)
    return -1;
  if (!event || !*event)
    return rp_error_set(err, EINVAL, "audit append: no event name");
  if (a->failed)
    return refuse_failed(a, err);
  cleanup_job struct job *r = NULL;
  cleanup_job struct job *w = NULL;
  if (stage(a, NULL, event, fields, NULL, NULL, &r, &w, err) != 0)
    return -1;
  if (r && run_sync(a, r, err) != 0)
    return -1;
  return run_sync(a, w, err);
}

int
rp_audit_seal_sync(struct rp_audit *a, struct rp_error **err)
{
  if (sync_allowed(a, "audit seal", err) != 0)
    return -1;
  if (!a->key)
    return 0;
  if (a->failed)
    return refuse_failed(a, err);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct pos h = a->head;
  cleanup_job struct job *w = job_new(a, NULL, JOB_WRITE, NULL, NULL);
  if (put_checkpoint(a, &h, &now, "stop", &w->buf, &w->len, err) != 0)
    return -1;
  w->checkpoints = 1;
  w->after = h;
  a->head = h;
  return run_sync(a, w, err);
}

int
rp_audit_retry_sync(struct rp_audit *a, struct rp_error **err)
{
  if (sync_allowed(a, "audit retry", err) != 0)
    return -1;
  if (!a->failed)
    return 0;
  cleanup_job struct job *j = job_new(a, NULL, JOB_RETRY, NULL, NULL);
  return run_sync(a, j, err);
}

/* --- opening ------------------------------------------------------------ */

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

static void warn_add(char **warning, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Adds to the warnings of open ("; " between them). */
static void
warn_add(char **warning, const char *fmt, ...)
{
  if (!warning)
    return;
  cleanup_free char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0)
    s = NULL;
  va_end(ap);
  if (!s)
    return;
  char *joined = *warning ? rp_xasprintf("%s; %s", *warning, s) : RP_STEAL(s);
  free(*warning);
  *warning = joined;
}

/* The end of a file, read backwards in blocks: buf holds [base, size). */
struct tail {
  const char *path; /* borrowed */
  int fd;           /* borrowed */
  uint64_t size;
  uint64_t base;
  char *buf;           /* owned */
  char last_event[32]; /* of the last line tail_line found intact */
};

/* Finds the last "\n" before offset `before`: *nl is its offset, or -1
 * when there is none.  0, or a negative errno (-EFBIG past MAX_TAIL). */
static int
tail_rfind_nl(struct tail *t, uint64_t before, int64_t *nl)
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
    if (have >= MAX_TAIL)
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
refuse_line(const struct tail *t, uint64_t at, const char *reason,
            struct rp_error **err)
{
  return rp_error_set(err, RP_ETAMPER,
                      "%s:%" PRIu64 ": %s: refusing to continue the chain "
                      "from it (run reaper verify)",
                      t->path, line_number(t->fd, at), reason);
}

static int
tail_error(const struct tail *t, int rc, struct rp_error **err)
{
  if (rc == -EFBIG)
    return rp_error_set(err, RP_ETAMPER,
                        "%s: no intact line in its last %" PRIu64
                        " bytes: refusing to continue the chain",
                        t->path, MAX_TAIL);
  return rp_error_set(err, -rc, "read %s: %s", t->path, strerror(-rc));
}

/* Checks the complete line [start, end) (end at its "\n").  0 and *d when it
 * is intact; 1 when it is not JSON at all (a fragment an earlier open
 * terminated); -1 with *err otherwise. */
static int
tail_line(struct tail *t, uint64_t start, uint64_t end, struct pos *d,
          struct rp_error **err)
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

/* The last line of a file that must end cleanly (a rotated part). */
static int
last_line(struct tail *t, struct pos *d, struct rp_error **err)
{
  int64_t nl, start;
  int rc = tail_rfind_nl(t, t->size, &nl);
  if (rc == 0 && (uint64_t)(nl + 1) != t->size)
    return rp_error_set(err, RP_ETAMPER,
                        "%s: does not end with a complete line: refusing to "
                        "continue the chain from it (run reaper verify)",
                        t->path);
  if (rc == 0)
    rc = tail_rfind_nl(t, (uint64_t)nl, &start);
  if (rc < 0)
    return tail_error(t, rc, err);
  rc = tail_line(t, (uint64_t)(start + 1), (uint64_t)nl, d, err);
  if (rc == 1)
    return refuse_line(t, (uint64_t)(start + 1), "not JSON", err);
  return rc;
}

/* The chain state at the start of the log's file when it holds no intact
 * line: the last line of the last rotated part (a crash came between a
 * rotation and the new file's first line), or a new log's. */
static int
carry_from_parts(struct rp_audit *a, struct pos *d, char **last_event,
                 char **warning, struct rp_error **err)
{
  *d = (struct pos){.seq = 0, .hash = ZERO_HASH, .end = 0, .day = -1};
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
    struct tail t = {.path = part};
    t.fd = open(part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (t.fd < 0 || fstat(t.fd, &st) != 0) {
      rc = rp_error_set(err, errno, "open %s: %s", part,
                        errno == ELOOP ? "a symbolic link: reaper never reads "
                                         "its log's parts through a link"
                                       : strerror(errno));
    } else {
      t.size = t.base = (uint64_t)st.st_size;
      rc = last_line(&t, d, err);
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
        return day_of((time_t)(ms / 1000));
    }
  }
  return day_of(now->tv_sec);
}

/* Reads the end of the log to find the durable line; terminates and records
 * a torn tail.  *warning says what was found, *last_event (owned) the event
 * of the last line. */
static int
find_durable(struct rp_audit *a, char **last_event, char **warning,
             struct rp_error **err)
{
  struct stat st;
  if (fstat(a->lock_fd, &st) != 0)
    return rp_error_set(err, errno, "stat %s: %s", a->path, strerror(errno));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct pos d = {.seq = 0, .hash = ZERO_HASH, .end = 0, .day = -1};
  if (st.st_size == 0) {
    if (carry_from_parts(a, &d, last_event, warning, err) != 0)
      return -1;
    set_durable(a, &d);
    return 0;
  }
  struct tail t = {.path = a->path,
                   .fd = a->lock_fd,
                   .size = (uint64_t)st.st_size,
                   .base = (uint64_t)st.st_size};
  int64_t nl;
  int rc = tail_rfind_nl(&t, t.size, &nl);
  if (rc < 0) {
    free(t.buf);
    return tail_error(&t, rc, err);
  }
  if ((uint64_t)(nl + 1) == t.size) {
    /* A clean end: continue from the last line, which must be intact. */
    rc = last_line(&t, &d, err);
    free(t.buf);
    if (rc != 0)
      return -1;
    *last_event = rp_xstrdup(t.last_event);
    d.day = first_line_day(a->lock_fd, &now);
    set_durable(a, &d);
    return 0;
  }
  /* A torn tail.  Its span starts after the last intact line: normally
   * just the fragment, but earlier fragments that a crash left between an
   * open's "\n" and its audit.torn line belong to it too. */
  uint64_t from = (uint64_t)(nl + 1);
  while (from > 0) {
    int64_t start;
    rc = tail_rfind_nl(&t, from - 1, &start);
    if (rc < 0) {
      free(t.buf);
      return tail_error(&t, rc, err);
    }
    rc = tail_line(&t, (uint64_t)(start + 1), from - 1, &d, err);
    if (rc < 0) {
      free(t.buf);
      return -1;
    }
    if (rc == 0)
      break;
    from = (uint64_t)(start + 1);
  }
  free(t.buf);
  if (from == 0 && carry_from_parts(a, &d, last_event, warning, err) != 0)
    return -1;
  d.end = from;
  d.day = first_line_day(a->lock_fd, &now);
  cleanup_free char *buf = NULL;
  size_t len;
  struct pos torn = d;
  if (render_torn(a, from, t.size, &d, &buf, &len, torn.hash, err) != 0)
    return -1;
  torn.seq = d.seq + 1;
  torn.since_cp = d.since_cp + 1;
  if (write_all(a, a->fd, buf, len, &torn.end, err) != 0)
    return rp_error_prefix(err, "terminate torn tail");
  set_durable(a, &torn);
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
read_tail(struct rp_audit *a, char **warning, struct rp_error **err)
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
  if (read_tail(a, warning, err) != 0)
    goto out;
  *out = RP_STEAL(a);
  rc = 0;
out:
  if (a)
    audit_free(a);
  return rc;
}

/* --- the rest ----------------------------------------------------------- */

void
rp_audit_close(struct rp_audit *a)
{
  if (!a)
    return;
  a->closing = true;
  if (a->dispatching)
    return; /* after_work_cb frees it once the queue is empty */
  a->draining = true;
  while (a->q_head)
    uv_run(a->q_head->loop, UV_RUN_ONCE);
  audit_free(a);
}

void
rp_audit_inject_fault(struct rp_audit *a, int fail_errno, size_t partial,
                      bool at_fsync)
{
  a->fault = (struct fault){
      .err = fail_errno, .partial = partial, .at_fsync = at_fsync};
}

bool
rp_audit_healthy(const struct rp_audit *a)
{
  return a && !a->failed;
}

uint64_t
rp_audit_write_errors(const struct rp_audit *a)
{
  return a ? a->write_errors : 0;
}

uint64_t
rp_audit_next_seq(const struct rp_audit *a)
{
  return a ? a->head.seq + 1 : 0;
}

const char *
rp_audit_last_hash(const struct rp_audit *a)
{
  return a ? a->head.hash : NULL;
}

const char *
rp_audit_path(const struct rp_audit *a)
{
  return a ? a->path : NULL;
}

uint64_t
rp_audit_syslog_dropped(const struct rp_audit *a)
{
  return a ? __atomic_load_n(&a->syslog.dropped, __ATOMIC_RELAXED) : 0;
}

uint64_t
rp_audit_checkpoints(const struct rp_audit *a)
{
  return a ? a->checkpoints : 0;
}

uint64_t
rp_audit_rotations(const struct rp_audit *a)
{
  return a ? a->rotations : 0;
}
