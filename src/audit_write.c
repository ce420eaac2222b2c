/* The file work of the audit log's jobs (audit_writer.h): on libuv's
 * threadpool for asynchronous appends, inline for the blocking functions.
 * Every byte that reaches the log goes through rp_audit_write_all, which
 * returns once it is fsync'd; a rotation begins the new file here and a
 * retry reopens the old one, each checked to be the file the log holds.
 *
 * Threads.  The one job in flight reads the log's immutable path, options
 * and key, the test fault and the syslog copy (used by nothing else
 * meanwhile) and what the loop thread put in the job before queueing it
 * (uv_queue_work orders those writes before the work runs); its results go
 * into the job, applied to the log on the loop thread (audit.c). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_writer.h"
#include "util.h"

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

int
rp_audit_write_all(struct rp_audit *a, int fd, const char *buf, size_t len,
                   uint64_t *end, struct rp_error **err)
{
  struct rp_audit_fault *f = &a->fault;
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
  rp_audit_syslog_copy(&a->syslog, buf, len);
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
  *fd_out = RP_STEAL_FD(fd);
  *lock_out = RP_STEAL_FD(lock);
  return 0;
}

/* Reopens the log's file for the retry: it must still be the file the log
 * holds locked, and hold at least the durable line d.  *size is its size. */
static int
reopen(struct rp_audit *a, const struct rp_audit_pos *d, int *fd_out,
       uint64_t *size, struct rp_error **err)
{
  cleanup_close int fd =
      open(a->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
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
  *size = (uint64_t)st.st_size;
  if (*size < d->end)
    return rp_error_set(err, RP_EAUDIT,
                        "%s shrank from %" PRIu64 " to %" PRIu64
                        " bytes since its last durable line",
                        a->path, d->end, *size);
  *fd_out = RP_STEAL_FD(fd);
  return 0;
}

/* The rotation (see audit.h): the checkpoint that closes the old file, the
 * rename, the new file.  What got done is in the job for the loop thread. */
static void
rotate(struct rp_audit_job *j)
{
  struct rp_audit *a = j->a;
  if (j->buf.len > 0) {
    if (rp_audit_write_all(a, j->fd, j->buf.p, j->buf.len, &j->end, &j->err) !=
        0)
      return;
    j->wrote = true;
  }
  if (rp_audit_rename_part(a->path, j->now, &j->part, &j->err) != 0)
    return;
  RP_CRASHPOINT("audit.rotate.renamed");
  begin_file(a, true, &j->new_fd, &j->new_lock_fd, &j->err);
}

/* The retry (see audit.c): reopens the log (or begins the new file a
 * failed rotation did not), records any bytes after the durable line
 * j->snap (audit_torn.c), writes audit.resumed.  On success j->new_fd is
 * the new writer, j->new_lock_fd the new lock (or -1: the old one holds)
 * and j->done the new durable line. */
static void
retry(struct rp_audit_job *j)
{
  struct rp_audit *a = j->a;
  const struct rp_audit_pos *d = &j->snap;
  cleanup_close int fd = -1;
  cleanup_close int lock = -1;
  uint64_t size = 0;
  if (j->snap_new_file) {
    if (begin_file(a, false, &fd, &lock, &j->err) != 0)
      return;
  } else if (reopen(a, d, &fd, &size, &j->err) != 0) {
    return;
  }
  cleanup_buf struct rp_buf buf = {.max = RP_AUDIT_JOB_MAX};
  struct rp_audit_pos next = *d;
  if (size > d->end &&
      rp_audit_put_torn(a, d->end, size, d, &buf, &next, &j->err) != 0)
    return;
  cleanup_json json_t *f =
      json_pack("{s:I, s:s}", "failed_writes", (json_int_t)j->failed_writes,
                "error", j->last_error ? j->last_error : "");
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (rp_audit_put_line(&next, &now, "audit.resumed", f, &buf, &j->err) != 0 ||
      rp_audit_write_all(a, fd, buf.p, buf.len, &next.end, &j->err) != 0)
    return;
  j->done = next;
  j->new_fd = RP_STEAL_FD(fd);
  j->new_lock_fd = RP_STEAL_FD(lock);
}

void
rp_audit_job_work(struct rp_audit_job *j)
{
  switch (j->kind) {
  case RP_AUDIT_JOB_WRITE:
    rp_audit_write_all(j->a, j->fd, j->buf.p, j->buf.len, &j->end, &j->err);
    break;
  case RP_AUDIT_JOB_ROTATE:
    rotate(j);
    break;
  case RP_AUDIT_JOB_RETRY:
    retry(j);
    break;
  case RP_AUDIT_JOB_SKIP:
    break;
  }
}
