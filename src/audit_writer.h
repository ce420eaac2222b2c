/* The audit log's writer, as its files share it; not for other modules,
 * which use audit.h.
 *
 *   audit.c         the writer on the loop thread: chain state, the queue
 *                   of jobs, failing closed, appends and retries (and their
 *                   blocking forms), close
 *   audit_write.c   a job's blocking file work, on the threadpool: every
 *                   byte that reaches the log, fsync'd; the rotation's new
 *                   file; the retry's reopened file
 *   audit_render.c  lines: rendered, hashed and chained; checkpoints signed
 *   audit_open.c    open: the file, its lock, and the chain state recovered
 *                   from its end (or from the last rotated part)
 *   audit_tail.c    a file's end read backwards, to its last intact line
 *   audit_torn.c    torn bytes: where they begin, and the audit.torn line
 *                   that records them
 *   audit_syslog.c  the copy of every line to syslog
 * (audit_rotate.c names and renames the parts, audit_sign.c holds the key,
 * audit_verify.c reads logs: audit.h.) */
#ifndef RP_AUDIT_WRITER_H
#define RP_AUDIT_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "audit.h"
#include "buf.h"
#include "error.h"

#define RP_AUDIT_ZERO_HASH                                                     \
  "0000000000000000000000000000000000000000000000000000000000000000"

struct rp_audit_job;

/* A place in the chain and in the current file. */
struct rp_audit_pos {
  uint64_t seq;      /* of the last line; 0 in a new log */
  char hash[65];     /* its hash; 64 zeros in a new log */
  uint64_t end;      /* size of the current file after it */
  uint64_t since_cp; /* lines after the last checkpoint */
  int64_t day;       /* UTC day of the current file's first line; -1 while
                        the file is empty */
};

/* The test hook of rp_audit_inject_fault. */
struct rp_audit_fault {
  int err; /* 0: no fault */
  size_t partial;
  bool at_fsync;
  bool partial_done;
};

/* The syslog copy: a datagram socket used by the writer alone. */
struct rp_audit_syslog {
  char *path;       /* owned; NULL: no copy */
  int fd;           /* owned; -1 until connected */
  uint64_t dropped; /* atomic: read on the loop thread */
};

struct rp_audit {
  char *path;  /* owned */
  char *file;  /* owned: base name of path, as checkpoints name it */
  int fd;      /* owned: O_WRONLY|O_APPEND, the writer */
  int lock_fd; /* owned: O_RDONLY, holds the flock and reads back bytes */
  struct rp_audit_pos durable;
  struct rp_audit_pos head;
  bool new_file; /* the current file was renamed to a part; the retry
                    begins the new one */
  bool failed;
  char *fail_reason; /* owned, NULL while healthy */
  uint64_t write_errors;
  uint64_t epoch;
  struct rp_audit_job *q_head, *q_tail; /* owned: queued jobs, q_head in
                                           flight if busy */
  bool busy;
  bool closing;
  bool draining;   /* rp_audit_close is running the loop */
  int dispatching; /* inside a callback */
  struct rp_audit_fault fault;
  struct rp_audit_key *key; /* owned; NULL: no checkpoints */
  uint64_t every;
  uint64_t rotate_size;
  bool rotate_daily;
  struct rp_audit_syslog syslog;
  uint64_t checkpoints, rotations;
};

enum rp_audit_job_kind {
  RP_AUDIT_JOB_WRITE,  /* write buf, then fsync */
  RP_AUDIT_JOB_ROTATE, /* write buf (the "rotate" checkpoint, may be empty),
                          rename the file to a part, begin a new one */
  RP_AUDIT_JOB_RETRY,  /* record stray bytes, write audit.resumed */
  RP_AUDIT_JOB_SKIP,   /* write nothing; deliver err (NULL: success) */
};

/* One unit of the writer's queue: staged on the loop thread (audit.c), its
 * file work done on the threadpool (audit_write.c), its result applied on
 * the loop thread. */
struct rp_audit_job {
  uv_work_t work;     /* work.data = this job */
  struct rp_audit *a; /* borrowed: the log outlives its jobs */
  uv_loop_t *loop;    /* borrowed; NULL for a blocking call */
  enum rp_audit_job_kind kind;
  uint64_t epoch;
  rp_audit_cb cb;
  void *arg;
  /* WRITE, ROTATE */
  struct rp_buf buf;         /* lines with their newlines */
  unsigned checkpoints;      /* in buf */
  struct rp_audit_pos after; /* the head after this job (end: projected) */
  time_t now;                /* ROTATE: names the part */
  int fd;                    /* borrowed from the log when started */
  /* RETRY: a snapshot taken when started */
  struct rp_audit_pos snap;
  bool snap_new_file;
  uint64_t failed_writes;
  char *last_error; /* owned */
  /* results */
  uint64_t end;             /* file size after the write */
  bool wrote;               /* ROTATE: buf is durable in the old file */
  char *part;               /* owned: ROTATE: the old file's new name */
  int new_fd;               /* owned until handed to the log */
  int new_lock_fd;          /* owned until handed to the log */
  struct rp_audit_pos done; /* RETRY */
  struct rp_error *err;     /* owned */
  struct rp_audit_job *next;
};

/* The most bytes one job writes: a line and its checkpoint, or torn bytes'
 * terminator, their audit.torn line and audit.resumed. */
#define RP_AUDIT_JOB_MAX (3 * ((size_t)RP_AUDIT_MAX_LINE + 1) + 1)

/* audit.c */
/* The durable line and the head are both d. */
void rp_audit_set_durable(struct rp_audit *a, const struct rp_audit_pos *d);
/* Closes the files and frees a, without waiting for anything. */
void rp_audit_release(struct rp_audit *a);

/* audit_write.c */
/* The blocking part of a job: on the threadpool, or inline for the
 * blocking functions. */
void rp_audit_job_work(struct rp_audit_job *j);
/* Writes buf in one write loop and fsyncs: the only way bytes reach the
 * log; then copies the lines to syslog.  *end is the file size after the
 * write.  RP_EAUDIT errors. */
int rp_audit_write_all(struct rp_audit *a, int fd, const char *buf, size_t len,
                       uint64_t *end, struct rp_error **err);

/* audit_render.c */
int64_t rp_audit_day_of(time_t s);
/* fields: NULL or an object without a reserved member (EINVAL). */
int rp_audit_check_fields(json_t *fields, struct rp_error **err);
/* Appends to buf the line that event takes at *h, advancing *h. */
int rp_audit_put_line(struct rp_audit_pos *h, const struct timespec *now,
                      const char *event, json_t *fields, struct rp_buf *buf,
                      struct rp_error **err);
/* Appends to buf the checkpoint signed at *h (see audit.h), advancing *h. */
int rp_audit_put_checkpoint(const struct rp_audit *a, struct rp_audit_pos *h,
                            const struct timespec *now, const char *reason,
                            struct rp_buf *buf, struct rp_error **err);

/* audit_torn.c */
/* Appends to buf the "\n" that terminates the bytes [from, size) of the log
 * when they lack one, then the audit.torn line that records them (read
 * back through a->lock_fd), chained to d; *next is d advanced past both. */
int rp_audit_put_torn(struct rp_audit *a, uint64_t from, uint64_t size,
                      const struct rp_audit_pos *d, struct rp_buf *buf,
                      struct rp_audit_pos *next, struct rp_error **err);
struct rp_audit_tail;
/* The file of t ends without a newline after nl (the offset of its last
 * "\n", or -1).  *from is where its torn bytes begin: after the last intact
 * line, with the fragments before it that a crash left between an open's
 * "\n" and its audit.torn line; *d is that line's chain state (untouched
 * when no line is intact: *from is 0 then). */
int rp_audit_torn_from(struct rp_audit_tail *t, int64_t nl, uint64_t *from,
                       struct rp_audit_pos *d, struct rp_error **err);

/* audit_tail.c */
/* The end of a file, read backwards in blocks: buf holds [base, size). */
struct rp_audit_tail {
  const char *path; /* borrowed */
  int fd;           /* borrowed */
  uint64_t size;
  uint64_t base;
  char *buf;           /* owned */
  char last_event[32]; /* of the last line rp_audit_tail_line found intact */
};
/* Finds the last "\n" before offset `before`: *nl is its offset, or -1
 * when there is none.  0, or a negative errno (-EFBIG past
 * RP_AUDIT_MAX_TAIL). */
#define RP_AUDIT_MAX_TAIL ((uint64_t)8 * RP_AUDIT_MAX_LINE)
int rp_audit_tail_rfind_nl(struct rp_audit_tail *t, uint64_t before,
                           int64_t *nl);
/* An error of rp_audit_tail_rfind_nl in words, naming the file. */
int rp_audit_tail_error(const struct rp_audit_tail *t, int rc,
                        struct rp_error **err);
/* Checks the complete line [start, end) (end at its "\n").  0 and *d when it
 * is intact; 1 when it is not JSON at all (a fragment an earlier open
 * terminated); -1 with *err (RP_ETAMPER "FILE:LINE: ...") otherwise. */
int rp_audit_tail_line(struct rp_audit_tail *t, uint64_t start, uint64_t end,
                       struct rp_audit_pos *d, struct rp_error **err);
/* The last line of a file that must end cleanly (a rotated part, or a log
 * that does). */
int rp_audit_tail_last_line(struct rp_audit_tail *t, struct rp_audit_pos *d,
                            struct rp_error **err);

/* audit_syslog.c */
/* Copies every line of buf (lines end with "\n"; empty ones are the
 * terminators of torn bytes) as one message each: never blocking for more
 * than 100 ms, a message that cannot go is counted in s->dropped. */
void rp_audit_syslog_copy(struct rp_audit_syslog *s, const char *buf,
                          size_t len);
void rp_audit_syslog_close(struct rp_audit_syslog *s);

#endif
