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
 * shape and names it in its report. */
#ifndef RP_AUDIT_H
#define RP_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "error.h"

struct rp_audit;

/* Opens or creates (mode 0600, parent directories 0700) the log at path and
 * reads its tail to continue seq and chain.  *warning (owned, may be NULL)
 * says what was found, e.g. a torn tail.  Blocking: call before the loop
 * runs. */
int rp_audit_open(const char *path, struct rp_audit **out, char **warning,
                  struct rp_error **err);

/* Appends one event and returns once it is written and fsync'd.  `fields`
 * (borrowed; may be NULL) are the event's members, in their order; they
 * must not use ts, seq, event, prev or hash.  Blocking: for the CLI, for
 * agent.start/stop, and for tests. */
int rp_audit_append_sync(struct rp_audit *a, const char *event,
                         json_t *fields, struct rp_error **err);

/* err is NULL when the line is durable on disk; otherwise the line was not
 * (or not surely) written, and the action it announces must not be taken. */
typedef void (*rp_audit_cb)(void *arg, struct rp_error *err);

/* Appends without blocking the loop: the line is chained now, in call order,
 * written and fsync'd on libuv's threadpool, and cb runs on the loop.
 * Writes happen one at a time in call order.  Once a write fails the log is
 * failed (fail closed): every append gets RP_EAUDIT until a retry of the
 * failed write succeeds (rp_audit_retry).  Returns -1 (cb never runs) only
 * for invalid arguments. */
int rp_audit_append(struct rp_audit *a, uv_loop_t *loop, const char *event,
                    json_t *fields, rp_audit_cb cb, void *arg);

/* Whether the last write succeeded. */
bool rp_audit_healthy(const struct rp_audit *a);
/* Number of failed writes since open. */
uint64_t rp_audit_write_errors(const struct rp_audit *a);
/* The next sequence number and the last hash (for status and tests). */
uint64_t rp_audit_next_seq(const struct rp_audit *a);
const char *rp_audit_last_hash(const struct rp_audit *a);
const char *rp_audit_path(const struct rp_audit *a);

/* Flushes what is queued (blocking) and frees.  Accepts NULL. */
void rp_audit_close(struct rp_audit *a);

/* verify: checks one or more files in order (a rotated log continues its
 * chain across files).  Returns 0 when intact.  On a break returns -1 with
 * err->code RP_ETAMPER and a message "FILE:LINE: reason"; on an unreadable
 * file, -1 with another code.  *lines_out counts lines checked. */
int rp_audit_verify(const char *const *paths, size_t n_paths,
                    const char *pubkey_path, uint64_t *lines_out,
                    struct rp_error **err);

/* Iterates over the events of a log in order, calling cb with each parsed
 * line (borrowed).  Lines that do not parse are skipped and counted in
 * *bad_lines.  For report and crash recovery. */
typedef int (*rp_audit_each_cb)(void *arg, const json_t *line);
int rp_audit_read(const char *path, rp_audit_each_cb cb, void *arg,
                  uint64_t *bad_lines, struct rp_error **err);

#endif
