/* Writing the audit log: the writer on the loop thread (audit_writer.h
 * names the files that do the rest).
 *
 * Chain state.  The log keeps two positions (struct rp_audit_pos): the
 * head (what the next append chains to: last seq and hash assigned, the
 * file size and lines since the last checkpoint once the queued lines are
 * written) and the durable line (the last line whose write and fsync
 * succeeded).  Appends render their lines at once (audit_render.c),
 * advancing the head, so lines are chained in call order; the queue then
 * has them written one job at a time (audit_write.c).  When a write or
 * fsync fails, the log fails closed: the head rolls back to the durable
 * line and the epoch changes, so every line rendered on top of the failed
 * one (queued behind it, with a now meaningless prev) is dropped with
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
 * without them, so the retry records them as open does a torn tail
 * (audit_torn.c), then writes audit.resumed.
 *
 * Threads.  Only the loop thread touches struct rp_audit, except for the
 * one job in flight on the threadpool (see audit_write.c).  The blocking
 * functions run the same jobs inline, and only while none is queued. */
#include "audit.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "audit_writer.h"
#include "util.h"

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

void
rp_audit_set_durable(struct rp_audit *a, const struct rp_audit_pos *d)
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
job_free(struct rp_audit_job *j)
{
  if (!j)
    return;
  rp_buf_free(&j->buf);
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
job_freep(struct rp_audit_job **j)
{
  job_free(*j);
}
#define cleanup_job __attribute__((cleanup(job_freep)))

static struct rp_audit_job *
job_new(struct rp_audit *a, uv_loop_t *loop, enum rp_audit_job_kind kind,
        rp_audit_cb cb, void *arg)
{
  struct rp_audit_job *j = rp_xcalloc(1, sizeof(*j));
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
  rp_buf_init(&j->buf, RP_AUDIT_JOB_MAX);
  return j;
}

/* What a job did, applied to the log (on the loop thread). */
static void
job_complete(struct rp_audit *a, struct rp_audit_job *j)
{
  switch (j->kind) {
  case RP_AUDIT_JOB_WRITE:
    if (j->err) {
      fail_log(a, j->err);
      break;
    }
    a->durable = j->after;
    a->durable.end = j->end;
    a->checkpoints += j->checkpoints;
    break;
  case RP_AUDIT_JOB_ROTATE:
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
  case RP_AUDIT_JOB_RETRY:
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
    rp_audit_set_durable(a, &j->done);
    break;
  case RP_AUDIT_JOB_SKIP:
    break;
  }
}

/* Decides what the job at the head of the queue does, from the state the
 * jobs before it left. */
static void
job_start(struct rp_audit *a, struct rp_audit_job *j)
{
  if ((j->kind == RP_AUDIT_JOB_WRITE || j->kind == RP_AUDIT_JOB_ROTATE) &&
      (a->failed || j->epoch != a->epoch)) {
    j->kind = RP_AUDIT_JOB_SKIP;
    j->err = failed_error(a);
  } else if (j->kind == RP_AUDIT_JOB_RETRY && !a->failed) {
    j->kind = RP_AUDIT_JOB_SKIP; /* nothing to retry: success */
  } else if (j->kind == RP_AUDIT_JOB_RETRY) {
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
  rp_audit_job_work(w->data);
}

static void after_work_cb(uv_work_t *w, int status);

/* Starts the job at the head of the queue unless one is in flight. */
static void
pump(struct rp_audit *a)
{
  if (a->busy || !a->q_head)
    return;
  struct rp_audit_job *j = a->q_head;
  job_start(a, j);
  a->busy = true;
  /* uv_queue_work fails only without a work callback. */
  if (uv_queue_work(j->loop, &j->work, work_cb, after_work_cb) != 0) {
    fprintf(stderr, "reaper: uv_queue_work failed for the audit log\n");
    abort();
  }
}

void
rp_audit_release(struct rp_audit *a)
{
  if (a->fd >= 0)
    close(a->fd);
  if (a->lock_fd >= 0)
    close(a->lock_fd); /* releases the flock */
  rp_audit_syslog_close(&a->syslog);
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
  struct rp_audit_job *j = w->data;
  struct rp_audit *a = j->a;
  a->busy = false;
  a->q_head = j->next;
  if (!a->q_head)
    a->q_tail = NULL;
  if (status != 0 && !j->err && j->kind != RP_AUDIT_JOB_SKIP)
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
    rp_audit_release(a);
}

static void
enqueue(struct rp_audit *a, struct rp_audit_job *j)
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
rotation_due(const struct rp_audit *a, const struct rp_audit_pos *h,
             const struct timespec *now)
{
  if (h->end == 0)
    return false; /* an empty file is never rotated */
  if (a->rotate_size && h->end >= a->rotate_size)
    return true;
  return a->rotate_daily && h->day >= 0 &&
         rp_audit_day_of(now->tv_sec) > h->day;
}

/* Renders what appending event takes, advancing the head: *rot (NULL when
 * none is due) rotates the file first; *wr writes the line, with the
 * checkpoint that follows it when one is due.  On error nothing changed. */
static int
stage(struct rp_audit *a, uv_loop_t *loop, const char *event, json_t *fields,
      rp_audit_cb cb, void *arg, struct rp_audit_job **rot,
      struct rp_audit_job **wr, struct rp_error **err)
{
  *rot = *wr = NULL;
  if (rp_audit_check_fields(fields, err) != 0)
    return -1;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct rp_audit_pos h = a->head;
  cleanup_job struct rp_audit_job *r = NULL;
  if (rotation_due(a, &h, &now)) {
    r = job_new(a, loop, RP_AUDIT_JOB_ROTATE, NULL, NULL);
    r->now = now.tv_sec;
    if (a->key) {
      if (rp_audit_put_checkpoint(a, &h, &now, "rotate", &r->buf, err) != 0)
        return -1;
      r->checkpoints = 1;
    }
    h.end = 0;
    h.day = -1;
    r->after = h;
  }
  cleanup_job struct rp_audit_job *w =
      job_new(a, loop, RP_AUDIT_JOB_WRITE, cb, arg);
  if (rp_audit_put_line(&h, &now, event, fields, &w->buf, err) != 0)
    return -1;
  if (a->key && h.since_cp >= a->every) {
    if (rp_audit_put_checkpoint(a, &h, &now, "interval", &w->buf, err) != 0)
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
    if (rp_audit_check_fields(fields, &e) != 0)
      return -1;
    struct rp_audit_job *j = job_new(a, loop, RP_AUDIT_JOB_SKIP, cb, arg);
    j->err = failed_error(a);
    enqueue(a, j);
    return 0;
  }
  struct rp_audit_job *r, *w;
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
  enqueue(a, job_new(a, loop, RP_AUDIT_JOB_RETRY, cb, arg));
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
run_sync(struct rp_audit *a, struct rp_audit_job *j, struct rp_error **err)
{
  job_start(a, j);
  rp_audit_job_work(j);
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
  cleanup_job struct rp_audit_job *r = NULL;
  cleanup_job struct rp_audit_job *w = NULL;
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
  struct rp_audit_pos h = a->head;
  cleanup_job struct rp_audit_job *w =
      job_new(a, NULL, RP_AUDIT_JOB_WRITE, NULL, NULL);
  if (rp_audit_put_checkpoint(a, &h, &now, "stop", &w->buf, err) != 0)
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
  cleanup_job struct rp_audit_job *j =
      job_new(a, NULL, RP_AUDIT_JOB_RETRY, NULL, NULL);
  return run_sync(a, j, err);
}

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
  rp_audit_release(a);
}

void
rp_audit_inject_fault(struct rp_audit *a, int fail_errno, size_t partial,
                      bool at_fsync)
{
  a->fault = (struct rp_audit_fault){
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
