/* Writing the audit log.
 *
 * Chain state.  The log keeps two positions: the head (next seq and last
 * hash assigned, what the next append chains to) and the durable line (the
 * last line whose write and fsync succeeded, and the file size after it).
 * Appends render their line at once, advancing the head, so lines are
 * chained in call order; the queue then writes them one at a time.  When a
 * write or fsync fails, the log fails closed: the head rolls back to the
 * durable line and the epoch changes, so every line rendered on top of the
 * failed one (queued behind it, with a now meaningless prev) is dropped with
 * RP_EAUDIT instead of written.  Nothing is written until a retry succeeds,
 * and the retry chains to the durable line: no seq is skipped and no prev
 * forks.
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
 * one job in flight on the threadpool reads the immutable path, the test
 * fault and the snapshot the loop thread put in the job before queueing it
 * (uv_queue_work orders those writes before the work runs). */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define ZERO_HASH                                                              \
  "0000000000000000000000000000000000000000000000000000000000000000"
#define HASH_HEAD ",\"hash\":\""
#define TAIL_BLOCK (64 * 1024)
/* How far back from the end open looks for the last intact line behind a
 * torn tail before refusing the log. */
#define MAX_TAIL ((uint64_t)8 * RP_AUDIT_MAX_LINE)

struct durable {
  uint64_t seq;  /* of the last durable line; 0 in a new log */
  char hash[65]; /* its hash; 64 zeros in a new log */
  uint64_t end;  /* file size after it */
};

enum job_kind {
  JOB_WRITE, /* write buf, then fsync */
  JOB_RETRY, /* record stray bytes, write audit.resumed */
  JOB_SKIP,  /* write nothing; deliver err (NULL: success) */
};

struct job {
  uv_work_t work;     /* work.data = this job */
  struct rp_audit *a; /* borrowed: the log outlives its jobs */
  uv_loop_t *loop;    /* borrowed */
  enum job_kind kind;
  uint64_t epoch;
  rp_audit_cb cb;
  void *arg;
  /* JOB_WRITE */
  char *buf; /* owned: the line with its newline */
  size_t len;
  uint64_t seq;
  char hash[65];
  int fd; /* borrowed from the log when queued */
  /* JOB_RETRY: a snapshot taken when queued, and what it produced */
  struct durable snap;
  uint64_t failed_writes;
  char *last_error; /* owned */
  int new_fd;       /* owned until handed to the log */
  /* results */
  struct durable done;
  struct rp_error *err; /* owned */
  struct job *next;
};

struct fault {
  int err; /* 0: no fault */
  size_t partial;
  bool at_fsync;
  bool partial_done;
};

struct rp_audit {
  char *path;  /* owned */
  int fd;      /* owned: O_WRONLY|O_APPEND, the writer */
  int lock_fd; /* owned: O_RDONLY, holds the flock and reads back bytes */
  struct durable durable;
  uint64_t next_seq;
  char last_hash[65];
  bool failed;
  char *fail_reason; /* owned, NULL while healthy */
  uint64_t write_errors;
  uint64_t epoch;
  struct job *head, *tail; /* owned: queued jobs, head in flight if busy */
  bool busy;
  bool closing;
  bool draining;   /* rp_audit_close is running the loop */
  int dispatching; /* inside a callback */
  struct fault fault;
};

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

/* Renders one line (with its newline) chained to prev with the given seq:
 * the object is serialized once, hashed as it is, and the hash member is
 * spliced in before its closing brace. */
static int
render(const char *event, json_t *fields, uint64_t seq, const char *prev,
       char **out, size_t *out_len, char hash[65], struct rp_error **err)
{
  if (check_fields(fields, err) != 0)
    return -1;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm tm;
  gmtime_r(&now.tv_sec, &tm);
  char ts[64];
  snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, (long)now.tv_nsec);

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

/* --- writing ------------------------------------------------------------ */

static int
write_fail(const struct rp_audit *a, const char *what, int e,
           struct rp_error **err)
{
  return rp_error_set(err, RP_EAUDIT, "%s %s: %s", what, a->path, strerror(e));
}

/* Writes buf in one write loop and fsyncs: the only way bytes reach the
 * log.  *end is the file size after the write.  Runs on the threadpool for
 * asynchronous appends. */
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
  return 0;
}

/* Renders the audit.torn line for the bytes [from, size) of the log, with
 * the "\n" that terminates them first when they lack one. */
static int
render_torn(struct rp_audit *a, uint64_t from, uint64_t size,
            const struct durable *d, char **out, size_t *out_len, char hash[65],
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
  cleanup_free char *line = NULL;
  size_t len;
  if (render("audit.torn", f, d->seq + 1, d->hash, &line, &len, hash, err))
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

/* The retry (see the top of this file): reopens the log, records any bytes
 * after the durable line d, writes audit.resumed.  On success *new_fd is the
 * new writer and *done the new durable line. */
static int
retry_write(struct rp_audit *a, const struct durable *d, uint64_t failed_writes,
            const char *last_error, int *new_fd, struct durable *done,
            struct rp_error **err)
{
  cleanup_close int fd = open(a->path, O_WRONLY | O_APPEND | O_CLOEXEC);
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
  uint64_t size = (uint64_t)st.st_size;
  if (size < d->end)
    return rp_error_set(err, RP_EAUDIT,
                        "%s shrank from %" PRIu64 " to %" PRIu64
                        " bytes since its last durable line",
                        a->path, d->end, size);
  cleanup_free char *torn = NULL;
  size_t torn_len = 0;
  struct durable next = *d;
  if (size > d->end) {
    if (render_torn(a, d->end, size, d, &torn, &torn_len, next.hash, err))
      return -1;
    next.seq++;
  }
  cleanup_json json_t *f =
      json_pack("{s:I, s:s}", "failed_writes", (json_int_t)failed_writes,
                "error", last_error ? last_error : "");
  cleanup_free char *line = NULL;
  size_t len;
  if (render("audit.resumed", f, next.seq + 1, next.hash, &line, &len,
             next.hash, err))
    return -1;
  next.seq++;
  cleanup_free char *buf = rp_xmalloc(torn_len + len);
  if (torn)
    memcpy(buf, torn, torn_len);
  memcpy(buf + torn_len, line, len);
  if (write_all(a, fd, buf, torn_len + len, &next.end, err) != 0)
    return -1;
  *done = next;
  *new_fd = fd;
  fd = -1;
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
  a->next_seq = a->durable.seq + 1;
  memcpy(a->last_hash, a->durable.hash, 65);
}

static void
set_durable(struct rp_audit *a, const struct durable *d)
{
  a->durable = *d;
  a->next_seq = d->seq + 1;
  memcpy(a->last_hash, d->hash, 65);
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

/* --- the queue ---------------------------------------------------------- */

static void
job_free(struct job *j)
{
  if (!j)
    return;
  free(j->buf);
  free(j->last_error);
  if (j->new_fd >= 0)
    close(j->new_fd);
  rp_error_free(j->err);
  free(j);
}

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
  return j;
}

static void
work_cb(uv_work_t *w)
{
  struct job *j = w->data;
  switch (j->kind) {
  case JOB_WRITE:
    write_all(j->a, j->fd, j->buf, j->len, &j->done.end, &j->err);
    break;
  case JOB_RETRY:
    retry_write(j->a, &j->snap, j->failed_writes, j->last_error, &j->new_fd,
                &j->done, &j->err);
    break;
  case JOB_SKIP:
    break;
  }
}

static void after_work_cb(uv_work_t *w, int status);

/* Starts the job at the head of the queue unless one is in flight.  What a
 * job does is decided here, when it is its turn, from the state the jobs
 * before it left. */
static void
pump(struct rp_audit *a)
{
  if (a->busy || !a->head)
    return;
  struct job *j = a->head;
  if (j->kind == JOB_WRITE && (a->failed || j->epoch != a->epoch)) {
    j->kind = JOB_SKIP;
    j->err = failed_error(a);
  } else if (j->kind == JOB_RETRY && !a->failed) {
    j->kind = JOB_SKIP; /* nothing to retry: success */
  } else if (j->kind == JOB_RETRY) {
    j->snap = a->durable;
    j->failed_writes = a->write_errors;
    j->last_error = rp_xstrdup(a->fail_reason ? a->fail_reason : "");
  }
  j->fd = a->fd;
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
  free(a->fail_reason);
  free(a->path);
  free(a);
}

static void
after_work_cb(uv_work_t *w, int status)
{
  struct job *j = w->data;
  struct rp_audit *a = j->a;
  a->busy = false;
  a->head = j->next;
  if (!a->head)
    a->tail = NULL;
  if (status != 0 && !j->err && j->kind != JOB_SKIP)
    rp_error_set(&j->err, RP_EAUDIT, "write %s: %s", a->path,
                 uv_strerror(status));
  switch (j->kind) {
  case JOB_WRITE:
    if (j->err) {
      fail_log(a, j->err);
    } else {
      a->durable.seq = j->seq;
      memcpy(a->durable.hash, j->hash, 65);
      a->durable.end = j->done.end;
    }
    break;
  case JOB_RETRY:
    if (j->err) {
      fail_log(a, j->err);
    } else {
      close(a->fd);
      a->fd = j->new_fd;
      j->new_fd = -1;
      a->failed = false;
      free(a->fail_reason);
      a->fail_reason = NULL;
      set_durable(a, &j->done);
    }
    break;
  case JOB_SKIP:
    break;
  }
  pump(a);
  a->dispatching++;
  if (j->cb)
    j->cb(j->arg, j->err);
  a->dispatching--;
  job_free(j);
  if (a->closing && !a->draining && !a->dispatching && !a->head)
    audit_free(a);
}

static void
enqueue(struct rp_audit *a, struct job *j)
{
  if (a->tail)
    a->tail->next = j;
  else
    a->head = j;
  a->tail = j;
  pump(a);
}

int
rp_audit_append(struct rp_audit *a, uv_loop_t *loop, const char *event,
                json_t *fields, rp_audit_cb cb, void *arg)
{
  if (!a || !loop || !event || !*event || a->closing)
    return -1;
  cleanup_error struct rp_error *e = NULL;
  if (check_fields(fields, &e) != 0)
    return -1;
  struct job *j = job_new(a, loop, JOB_WRITE, cb, arg);
  if (a->failed) {
    j->kind = JOB_SKIP;
    j->err = failed_error(a);
  } else {
    if (render(event, fields, a->next_seq, a->last_hash, &j->buf, &j->len,
               j->hash, &e) != 0) {
      job_free(j);
      return -1;
    }
    j->seq = a->next_seq++;
    memcpy(a->last_hash, j->hash, 65);
  }
  enqueue(a, j);
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
  if (a->head)
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

int
rp_audit_append_sync(struct rp_audit *a, const char *event, json_t *fields,
                     struct rp_error **err)
{
  if (sync_allowed(a, "audit append", err) != 0)
    return -1;
  if (!event || !*event)
    return rp_error_set(err, EINVAL, "audit append: no event name");
  if (a->failed) {
    cleanup_error struct rp_error *e = failed_error(a);
    pass_error(err, &e);
    return -1;
  }
  cleanup_free char *buf = NULL;
  size_t len;
  struct durable d;
  if (render(event, fields, a->next_seq, a->last_hash, &buf, &len, d.hash,
             err) != 0)
    return -1;
  d.seq = a->next_seq;
  cleanup_error struct rp_error *e = NULL;
  if (write_all(a, a->fd, buf, len, &d.end, &e) != 0) {
    fail_log(a, e);
    pass_error(err, &e);
    return -1;
  }
  set_durable(a, &d);
  return 0;
}

int
rp_audit_retry_sync(struct rp_audit *a, struct rp_error **err)
{
  if (sync_allowed(a, "audit retry", err) != 0)
    return -1;
  if (!a->failed)
    return 0;
  int fd = -1;
  struct durable d;
  cleanup_error struct rp_error *e = NULL;
  if (retry_write(a, &a->durable, a->write_errors, a->fail_reason, &fd, &d,
                  &e) != 0) {
    fail_log(a, e);
    pass_error(err, &e);
    return -1;
  }
  close(a->fd);
  a->fd = fd;
  a->failed = false;
  free(a->fail_reason);
  a->fail_reason = NULL;
  set_durable(a, &d);
  return 0;
}

/* --- opening ------------------------------------------------------------ */

static int
fsync_dir(const char *dir, struct rp_error **err)
{
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0)
    return rp_error_set(err, errno, "fsync directory %s: %s", dir,
                        strerror(errno));
  return 0;
}

/* The directory part of path ("." when there is none). */
static char *
dir_of(const char *path)
{
  const char *slash = strrchr(path, '/');
  if (!slash)
    return rp_xstrdup(".");
  if (slash == path)
    return rp_xstrdup("/");
  return rp_xstrndup(path, (size_t)(slash - path));
}

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
      cleanup_free char *parent = dir_of(p);
      if (fsync_dir(parent, err) != 0)
        return -1;
    } else if (errno != EEXIST) {
      return rp_error_set(err, errno, "create directory %s: %s", p,
                          strerror(errno));
    }
    *s = '/';
  }
  return 0;
}

/* The end of the log, read backwards in blocks: buf holds [base, size). */
struct tail {
  int fd; /* borrowed */
  uint64_t size;
  uint64_t base;
  char *buf; /* owned */
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
refuse_line(struct rp_audit *a, uint64_t at, const char *reason,
            struct rp_error **err)
{
  return rp_error_set(err, RP_ETAMPER,
                      "%s:%" PRIu64 ": %s: refusing to continue the chain "
                      "from it (run reaper verify)",
                      a->path, line_number(a->lock_fd, at), reason);
}

static int
tail_error(struct rp_audit *a, int rc, struct rp_error **err)
{
  if (rc == -EFBIG)
    return rp_error_set(err, RP_ETAMPER,
                        "%s: no intact line in its last %" PRIu64
                        " bytes: refusing to continue the chain",
                        a->path, MAX_TAIL);
  return rp_error_set(err, -rc, "read %s: %s", a->path, strerror(-rc));
}

/* Checks the complete line [start, end) (end at its "\n").  0 and *d when it
 * is intact; 1 when it is not JSON at all (a fragment an earlier open
 * terminated); -1 with *err otherwise. */
static int
tail_line(struct rp_audit *a, struct tail *t, uint64_t start, uint64_t end,
          struct durable *d, struct rp_error **err)
{
  if (end - start > RP_AUDIT_MAX_LINE)
    return refuse_line(a, start, "line longer than 1 MiB", err);
  const char *p = t->buf + (start - t->base);
  size_t len = (size_t)(end - start);
  cleanup_free char *reason = NULL;
  struct rp_audit_line l;
  if (rp_audit_line_parse(p, len, &l, &reason) == 0) {
    d->seq = l.seq;
    memcpy(d->hash, l.hash, 65);
    d->end = end + 1;
    rp_audit_line_clear(&l);
    return 0;
  }
  cleanup_json json_t *j = json_loadb(p, len, 0, NULL);
  if (!j)
    return 1;
  return refuse_line(a, start, reason, err);
}

/* Reads the end of the log to find the durable line; terminates and records
 * a torn tail.  *warning says what was found. */
static int
read_tail(struct rp_audit *a, char **warning, struct rp_error **err)
{
  struct stat st;
  if (fstat(a->lock_fd, &st) != 0)
    return rp_error_set(err, errno, "stat %s: %s", a->path, strerror(errno));
  struct durable d = {.seq = 0, .hash = ZERO_HASH, .end = 0};
  if (st.st_size == 0) {
    set_durable(a, &d);
    return 0;
  }
  struct tail t = {.fd = a->lock_fd,
                   .size = (uint64_t)st.st_size,
                   .base = (uint64_t)st.st_size};
  int64_t nl;
  int rc = tail_rfind_nl(&t, t.size, &nl);
  if (rc < 0) {
    free(t.buf);
    return tail_error(a, rc, err);
  }
  if ((uint64_t)(nl + 1) == t.size) {
    /* A clean end: continue from the last line, which must be intact. */
    int64_t start;
    rc = tail_rfind_nl(&t, (uint64_t)nl, &start);
    if (rc < 0) {
      free(t.buf);
      return tail_error(a, rc, err);
    }
    rc = tail_line(a, &t, (uint64_t)(start + 1), (uint64_t)nl, &d, err);
    free(t.buf);
    if (rc == 1)
      return refuse_line(a, (uint64_t)(start + 1), "not JSON", err);
    if (rc < 0)
      return -1;
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
      return tail_error(a, rc, err);
    }
    rc = tail_line(a, &t, (uint64_t)(start + 1), from - 1, &d, err);
    if (rc < 0) {
      free(t.buf);
      return -1;
    }
    if (rc == 0)
      break;
    from = (uint64_t)(start + 1);
  }
  free(t.buf);
  if (from == 0)
    d = (struct durable){.seq = 0, .hash = ZERO_HASH, .end = 0};
  d.end = from;
  cleanup_free char *buf = NULL;
  size_t len;
  struct durable torn = d;
  if (render_torn(a, from, t.size, &d, &buf, &len, torn.hash, err) != 0)
    return -1;
  torn.seq = d.seq + 1;
  if (write_all(a, a->fd, buf, len, &torn.end, err) != 0)
    return rp_error_prefix(err, "terminate torn tail");
  set_durable(a, &torn);
  if (warning)
    *warning = rp_xasprintf(
        "torn tail: %" PRIu64 " bytes at offset %" PRIu64
        " after the last intact line (seq %" PRIu64
        ") did not end with a newline (a write cut short by a crash?); "
        "kept, terminated and recorded as audit.torn seq %" PRIu64,
        t.size - from, from, d.seq, torn.seq);
  return 0;
}

int
rp_audit_open(const char *path, struct rp_audit **out, char **warning,
              struct rp_error **err)
{
  *out = NULL;
  if (warning)
    *warning = NULL;
  if (!path || !*path)
    return rp_error_set(err, RP_ECONFIG, "audit log: no path");
  if (make_parents(path, err) != 0)
    return -1;
  struct rp_audit *a = rp_xcalloc(1, sizeof(*a));
  a->path = rp_xstrdup(path);
  a->lock_fd = -1;
  bool created = true;
  a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (a->fd < 0 && errno == EEXIST) {
    created = false;
    a->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
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
  a->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
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
    cleanup_free char *dir = dir_of(path);
    if (fsync_dir(dir, err) != 0)
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
  while (a->head)
    uv_run(a->head->loop, UV_RUN_ONCE);
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
  return a ? a->next_seq : 0;
}

const char *
rp_audit_last_hash(const struct rp_audit *a)
{
  return a ? a->last_hash : NULL;
}

const char *
rp_audit_path(const struct rp_audit *a)
{
  return a ? a->path : NULL;
}
