/* The audit log: JSON Lines, append-only, hash-chained, fsync'd before the
 * action a line announces is taken.
 *
 * Line format (SPEC.md): a JSON object whose first members are
 *   "ts" (RFC 3339 UTC with nanoseconds), "seq", "event",
 * then the event's own fields, then "prev" and, last, "hash".
 * hash = hex SHA-256 of the exact bytes of the line without its newline and
 * with the member `,"hash":"<64 hex>"` taken out.  prev = the previous line's
 * hash, 64 zeros on the first line of a new log.
 *
 * A torn tail (a half-written last line after a crash) is never rewritten:
 * on open it is terminated with a newline and the next line is an
 * `audit.torn` event that records the torn bytes' offset, length and
 * SHA-256, chained to the last intact line.  verify accepts exactly that
 * shape and names it in its report.  The same happens when a failed write
 * left bytes behind (a short write, or a write whose fsync failed): the
 * retry that brings the log back records them with `audit.torn` before its
 * own `audit.resumed` line.  The opening comment of audit.c has the
 * details. */
#ifndef RP_AUDIT_H
#define RP_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "error.h"

struct rp_audit;

/* The longest line (without its newline) that is written or accepted. */
#define RP_AUDIT_MAX_LINE (1024 * 1024)

/* Opens or creates (mode 0600, parent directories 0700) the log at path and
 * reads its tail to continue seq and chain; only the tail is read, however
 * long the log.  The log is locked (flock) against a second writer.  A torn
 * tail is terminated and recorded (audit.torn, see above) and *warning
 * (owned, may be NULL) says so.  A last complete line that is not an intact
 * audit line is refused with RP_ETAMPER "FILE:LINE: reason": the chain is
 * never continued from garbage.  Blocking: call before the loop runs. */
int rp_audit_open(const char *path, struct rp_audit **out, char **warning,
                  struct rp_error **err);

/* Appends one event and returns once it is written and fsync'd.  `fields`
 * (borrowed; may be NULL) are the event's members, in their order; they
 * must not use ts, seq, event, prev or hash.  Blocking: for the CLI, for
 * agent.start/stop, and for tests.  It never interleaves with asynchronous
 * appends: while any is queued or in flight it refuses with EBUSY (run the
 * loop until their callbacks have run).  On a failed log it refuses with
 * RP_EAUDIT; a failed write fails the log as rp_audit_append's do. */
int rp_audit_append_sync(struct rp_audit *a, const char *event, json_t *fields,
                         struct rp_error **err);

/* err is NULL when the line is durable on disk; otherwise the line was not
 * (or not surely) written, and the action it announces must not be taken.
 * err is borrowed: it is freed when the callback returns. */
typedef void (*rp_audit_cb)(void *arg, struct rp_error *err);

/* Appends without blocking the loop: ts, seq and prev are assigned and the
 * line rendered now, in call order, on the loop thread; the write and its
 * fsync run on libuv's threadpool, one at a time in call order, and cb
 * (may be NULL) runs on the loop, always after this function returned.
 * Fail closed: once a write or its fsync fails the log is failed; that line
 * and every line queued behind it or appended later gets RP_EAUDIT and is
 * not written, and seq/prev roll back to the last durable line, until
 * rp_audit_retry succeeds.  Returns -1 (cb never runs) only for invalid
 * arguments: NULL a, loop or event, fields not an object or using a
 * reserved member, a line over RP_AUDIT_MAX_LINE, or a closed log. */
int rp_audit_append(struct rp_audit *a, uv_loop_t *loop, const char *event,
                    json_t *fields, rp_audit_cb cb, void *arg);

/* Brings a failed log back, in the queue like an append: reopens the file,
 * records whatever a failed write left after the last durable line as an
 * audit.torn line (terminating a partial line with a newline first), then
 * writes an `audit.resumed` line (`failed_writes`, `error`), both chained to
 * the last durable line, and fsyncs.  cb (may be NULL) gets NULL when the
 * log is writable again (at once when it was not failed) and RP_EAUDIT when
 * not.  Appends made while the log is failed, even after this call, get
 * RP_EAUDIT: append again once cb reports success.  Returns -1 (cb never
 * runs) only for invalid arguments. */
int rp_audit_retry(struct rp_audit *a, uv_loop_t *loop, rp_audit_cb cb,
                   void *arg);
/* The same, blocking (for the CLI and tests); EBUSY while asynchronous
 * appends are queued. */
int rp_audit_retry_sync(struct rp_audit *a, struct rp_error **err);

/* Whether the last write succeeded (false from a failed write until a
 * successful retry). */
bool rp_audit_healthy(const struct rp_audit *a);
/* Number of failed writes (retries included) since open. */
uint64_t rp_audit_write_errors(const struct rp_audit *a);
/* The next sequence number and the last hash assigned (queued lines
 * included; after a failure, those of the last durable line). */
uint64_t rp_audit_next_seq(const struct rp_audit *a);
const char *rp_audit_last_hash(const struct rp_audit *a);
const char *rp_audit_path(const struct rp_audit *a);

/* Closes and frees; accepts NULL.  No append is accepted after it.  Queued
 * writes are not dropped:
 * - called outside the loop (before or after uv_run, as the agent does), it
 *   runs the loop (UV_RUN_ONCE) until the queued writes' callbacks have run,
 *   then frees: it must not be called from a callback of that loop while
 *   writes are queued, since uv_run is not reentrant;
 * - called from one of this log's own callbacks, it returns at once and the
 *   log is freed after the last queued callback. */
void rp_audit_close(struct rp_audit *a);

/* Test hook: makes this log's writes fail like a failing disk, from the
 * next write on, until called again with fail_errno 0.  The first failing
 * write first writes `partial` bytes of its buffer for real (a short write
 * followed by an error); with at_fsync the write goes through and the fsync
 * fails instead.  Only for tests: set it while no write is in flight. */
void rp_audit_inject_fault(struct rp_audit *a, int fail_errno, size_t partial,
                           bool at_fsync);

/* verify: checks one or more files in order (a rotated log continues its
 * chain across files).  Returns 0 when intact.  On a break returns -1 with
 * err->code RP_ETAMPER and a message "FILE:LINE: reason" naming the first
 * line that breaks the chain; on an unreadable file, -1 with the errno;
 * with pubkey_path (not supported yet), -1 with RP_ECONFIG.  *lines_out
 * (may be NULL) counts the lines in the chain. */
int rp_audit_verify(const char *const *paths, size_t n_paths,
                    const char *pubkey_path, uint64_t *lines_out,
                    struct rp_error **err);

/* What rp_audit_verify_detail found besides the verdict. */
struct rp_audit_verify_result {
  uint64_t lines;   /* lines in the chain */
  uint64_t skipped; /* lines an audit.torn line acknowledged as not durable */
  char *notes;      /* owned, NULL if none: "FILE:LINE: ..." lines, each
                       ending with "\n", about acknowledged torn bytes */
};
/* rp_audit_verify that also reports acknowledged torn bytes.  *res is
 * filled on success and failure; free it with rp_audit_verify_result_clear.
 */
int rp_audit_verify_detail(const char *const *paths, size_t n_paths,
                           const char *pubkey_path,
                           struct rp_audit_verify_result *res,
                           struct rp_error **err);
void rp_audit_verify_result_clear(struct rp_audit_verify_result *res);

/* Iterates over the events of a log in order, calling cb with each parsed
 * line (borrowed).  Lines that do not parse as a JSON object (a torn
 * fragment among them) or are longer than RP_AUDIT_MAX_LINE are skipped and
 * counted in *bad_lines (may be NULL).  The chain is not checked (that is
 * rp_audit_verify's job), so a line that an audit.torn line later
 * acknowledged as not durable is passed on too.  cb returns 0 to go on; a
 * nonzero return stops the iteration and is returned.  For report and crash
 * recovery. */
typedef int (*rp_audit_each_cb)(void *arg, const json_t *line);
int rp_audit_read(const char *path, rp_audit_each_cb cb, void *arg,
                  uint64_t *bad_lines, struct rp_error **err);

/* --- Shared by audit.c and audit_verify.c; not for other modules. --- */

/* One line that passed rp_audit_line_parse. */
struct rp_audit_line {
  json_t *obj;       /* owned */
  const char *event; /* borrowed from obj */
  uint64_t seq;
  char prev[65];
  char hash[65];
  /* For an audit.torn line: the bytes it acknowledges. */
  bool torn;
  uint64_t torn_offset, torn_length;
  char torn_sha256[65];
};

/* Checks one line (without its newline) on its own: a JSON object with ts,
 * seq, event, prev and hash, hash last and equal to the SHA-256 of the
 * line's bytes without it.  Returns 0 and fills *out (clear it with
 * rp_audit_line_clear), or -1 with *reason (owned) set. */
int rp_audit_line_parse(const char *line, size_t len, struct rp_audit_line *out,
                        char **reason);
void rp_audit_line_clear(struct rp_audit_line *l);

/* SHA-256 (lowercase hex) of the bytes [off, off+len) of fd, read with
 * pread.  Returns 0 or a negative errno (-EIO when the file is shorter). */
int rp_audit_sha256_range(int fd, uint64_t off, uint64_t len, char hex[65]);

/* hex = lowercase hex SHA-256 of the n bytes at p. */
void rp_audit_sha256_hex(const void *p, size_t n, char hex[65]);

#endif
