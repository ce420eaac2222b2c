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
 * own `audit.resumed` line.  The opening comments of audit.c and
 * audit_torn.c have the details (audit_writer.h lists the writer's files).
 *
 * Signed checkpoints (agent.audit_signing_key).  With an Ed25519 private
 * key, the log writes an `audit.checkpoint` line after every
 * checkpoint_every lines, before a rotation renames the file, and when the
 * agent stops (rp_audit_seal_sync, after agent.stop).  Its members, after
 * ts, seq and event:
 *   "reason"  "interval" | "rotate" | "stop"
 *   "file"    the base name of the log's configured path ("audit.jsonl"),
 *             whichever part the line ends up in
 *   "key_id"  the first 16 hex digits of the SHA-256 of the raw 32-byte
 *             public key
 *   "sig"     base64 of the 64-byte Ed25519 signature of these bytes:
 *               "reaper audit.checkpoint v1\n"
 *               "seq=<seq>\n" "prev=<prev>\n" "ts=<ts>\n"
 *               "reason=<reason>\n" "file=<file>\n" "key_id=<key_id>\n"
 *             (the checkpoint's own seq, prev and ts as they appear in it)
 * then prev and hash as on every line.  prev is the hash of the line before
 * it, which chains every line before, so one signature vouches for the
 * whole log up to it, across rotated parts: seq is global, so it also pins
 * the checkpoint's place in the log whichever file holds it.  Anyone can
 * recompute hashes; only the key holder can sign, so a chain rewritten from
 * some line on fails the signature of every checkpoint after that line, and
 * taking those checkpoints out leaves lines that no checkpoint signs.  verify
 * with keys therefore also demands that the log END with the checkpoint
 * written at stop (see rp_audit_verify_with).  openssl can check a
 * checkpoint without reaper (README.md, "The audit log").
 *
 * Rotation (agent.audit_rotate_size, agent.audit_rotate: daily).  When the
 * file has reached the size, or the next line falls on a later UTC day than
 * the file's first line, the next append first closes the file (with a
 * "rotate" checkpoint when signing), renames it to PATH.YYYYMMDDTHHMMSSZ
 * (the UTC time of the rotation; PATH.YYYYMMDDTHHMMSSZ.N when that name is
 * taken), begins a new empty file at PATH and writes its line there: seq
 * and prev continue, so the new file's first prev is the last hash of the
 * part before it.  This runs on the writer in order with the appends.  A
 * crash between the rename and the first complete line of the new file
 * leaves PATH missing, empty or holding only a torn fragment; open then
 * continues the chain from the last line of the last part (rp_audit_files
 * orders them).
 *
 * Syslog copy (agent.audit_syslog).  After a write and its fsync, the
 * writer sends every line it wrote, as it is, to the syslog socket
 * (/dev/log; journald reads it where it runs), facility LOG_AUTHPRIV (an
 * audit trail: on classic syslog it lands in the restricted auth.log),
 * severity info, ident "reaper".  Never blocking: a send that would block
 * for more than 100 ms, or that finds no socket, is dropped and counted
 * (rp_audit_syslog_dropped); the chain never depends on it.  Lines longer
 * than 8 KiB are cut, saying so. */
#ifndef RP_AUDIT_H
#define RP_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "error.h"

struct rp_audit;

/* The longest line (without its newline) that is written or accepted. */
#define RP_AUDIT_MAX_LINE (1024 * 1024)
/* Lines between signed checkpoints when the options say 0. */
#define RP_AUDIT_CHECKPOINT_EVERY 1000
/* Where syslog(3) sends its messages. */
#define RP_AUDIT_SYSLOG_PATH "/dev/log"

/* What a log does besides appending; all members optional (zero: off). */
struct rp_audit_options {
  /* borrowed: path of an Ed25519 private key (PEM, as `openssl genpkey
   * -algorithm ed25519` writes it), readable by its owner alone; NULL: no
   * checkpoints */
  const char *signing_key;
  uint64_t checkpoint_every; /* lines between checkpoints; 0: the default */
  uint64_t rotate_size;      /* bytes; 0: no rotation by size */
  bool rotate_daily;         /* a new file for the first line of a UTC day */
  /* borrowed: the syslog socket to copy lines to (RP_AUDIT_SYSLOG_PATH;
   * tests give their own); NULL: no copy */
  const char *syslog_path;
};

/* Opens or creates (mode 0600, parent directories 0700) the log at path and
 * reads its tail to continue seq and chain; only the tail is read, however
 * long the log.  The log is locked (flock) against a second writer.  A torn
 * tail is terminated and recorded (audit.torn, see above) and *warning
 * (owned, may be NULL) says so.  A last complete line that is not an intact
 * audit line is refused with RP_ETAMPER "FILE:LINE: reason": the chain is
 * never continued from garbage.  Blocking: call before the loop runs. */
int rp_audit_open(const char *path, struct rp_audit **out, char **warning,
                  struct rp_error **err);
/* rp_audit_open with options (opt may be NULL).  The signing key is loaded
 * first: a missing, unreadable, non-Ed25519 or encrypted key, or one whose
 * file grants any permission to group or others, is refused with
 * RP_ECONFIG and no file is touched.  When PATH is missing or holds no
 * complete line while rotated parts exist, the chain continues from the
 * last part's last line (which must be intact), and *warning says so.  With
 * a key, a log whose last line is not a checkpoint (a crash, a cut) is
 * continued too, and *warning says its unsigned lines will be vouched for
 * only by this run's checkpoints (verify --key names them). */
int rp_audit_open_opts(const char *path, const struct rp_audit_options *opt,
                       struct rp_audit **out, char **warning,
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

/* Ends a run: with a signing key, appends the "stop" checkpoint (blocking,
 * like rp_audit_append_sync, whose errors it shares); without one, does
 * nothing and returns 0.  The agent calls it right after agent.stop. */
int rp_audit_seal_sync(struct rp_audit *a, struct rp_error **err);

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
/* Lines the syslog copy dropped (no socket, or it would block). */
uint64_t rp_audit_syslog_dropped(const struct rp_audit *a);
/* Signed checkpoints and rotations written since open. */
uint64_t rp_audit_checkpoints(const struct rp_audit *a);
uint64_t rp_audit_rotations(const struct rp_audit *a);

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
 * chain across files: give its parts oldest first, as rp_audit_files lists
 * them).  Returns 0 when intact.  On a break returns -1 with err->code
 * RP_ETAMPER and a message "FILE:LINE: reason" naming the first line that
 * breaks the chain; on an unreadable file, -1 with the errno.  With
 * pubkey_path, also checks signed checkpoints as rp_audit_verify_with does
 * with that one key.  *lines_out (may be NULL) counts the lines in the
 * chain. */
int rp_audit_verify(const char *const *paths, size_t n_paths,
                    const char *pubkey_path, uint64_t *lines_out,
                    struct rp_error **err);

/* What rp_audit_verify_detail found besides the verdict. */
struct rp_audit_verify_result {
  uint64_t lines;   /* lines in the chain */
  uint64_t skipped; /* lines an audit.torn line acknowledged as not durable */
  /* With keys: */
  uint64_t checkpoints;   /* checkpoints whose signature verified */
  uint64_t unsigned_tail; /* lines after the last checkpoint */
  bool sealed;            /* the log ends with the checkpoint of a stop */
  char *notes; /* owned, NULL if none: "FILE:LINE: ..." lines, each ending
                  with "\n": acknowledged torn bytes, lines that a run
                  which did not stop cleanly left to a later run's
                  checkpoint, and what --allow-unsigned-tail let pass */
};
/* rp_audit_verify that also reports acknowledged torn bytes.  *res is
 * filled on success and failure; free it with rp_audit_verify_result_clear.
 */
int rp_audit_verify_detail(const char *const *paths, size_t n_paths,
                           const char *pubkey_path,
                           struct rp_audit_verify_result *res,
                           struct rp_error **err);
void rp_audit_verify_result_clear(struct rp_audit_verify_result *res);

struct rp_audit_verify_options {
  /* borrowed: public keys (PEM; a private key file works too), each
   * checkpoint checked with the one its key_id names; none: the chain only,
   * checkpoints are not looked at */
  const char *const *keys;
  size_t n_keys;
  /* Accept a log that does not end with a stop checkpoint (a live log, or
   * one whose agent crashed) with a note instead of a failure. */
  bool allow_unsigned_tail;
};

/* verify with keys (opt may be NULL: chain only).  With keys, on top of the
 * chain: every audit.checkpoint in the chain must carry a valid reason,
 * file, key_id and sig; its key_id must be one of the keys given ("signed
 * by key X, not by the key given (Y)"); its signature must verify.  And the
 * log must end with a "stop" checkpoint, else -1 (RP_ETAMPER):
 * - "FILE:LINE: N lines after the last signed checkpoint (FILE:LINE) are
 *   not signed: ..." naming the first unsigned line;
 * - "FILE:1: N lines and no signed checkpoint: ..." (also for an empty
 *   log: "FILE: no lines, so no signed checkpoint");
 * - "FILE:LINE: the log ends at a checkpoint written while the agent ran
 *   (reason R), not at its stop: ..." naming that checkpoint.
 * The log of an agent that still runs (or crashed) ends like that, so
 * allow_unsigned_tail turns exactly these three into notes and returns 0:
 * an auditor checking a live log accepts up to checkpoint_every unsigned
 * lines, and gets the exact count.  An agent.start that finds lines after
 * the last checkpoint (the run before did not stop cleanly) is a note: those
 * lines are vouched for only by a later run's checkpoint. */
int rp_audit_verify_with(const char *const *paths, size_t n_paths,
                         const struct rp_audit_verify_options *opt,
                         struct rp_audit_verify_result *res,
                         struct rp_error **err);

/* The files of the log at path, oldest first: its rotated parts
 * (PATH.YYYYMMDDTHHMMSSZ[.N], ordered by the seq of their first line, by
 * name when it cannot be read), then path itself when it exists.  *out
 * (an owned strv, strv.h; free with rp_audit_files_free, which is
 * rp_strv_free) may be empty;
 * *n_out (may be NULL) counts it.  Fails only when the directory cannot be
 * read (a missing directory is an empty list). */
int rp_audit_files(const char *path, char ***out, size_t *n_out,
                   struct rp_error **err);
void rp_audit_files_free(char **files);

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

/* --- Shared by the writer (audit_writer.h) and audit_verify.c; not for
 * other modules. --- */

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

/* An Ed25519 key (audit_sign.c). */
struct rp_audit_key;
#define RP_AUDIT_KEY_ID_LEN 16
#define RP_AUDIT_SIG_LEN 88 /* base64 of 64 bytes */
/* Loads a PEM key.  signing: a private key whose file grants no permission
 * to group or others; otherwise a public key or a private key (its public
 * half is used).  Errors are RP_ECONFIG naming the file. */
int rp_audit_key_load(const char *path, bool signing, struct rp_audit_key **out,
                      struct rp_error **err);
void rp_audit_key_free(struct rp_audit_key *k);
const char *rp_audit_key_id(const struct rp_audit_key *k);
/* The bytes a checkpoint signs (see the top of this file); owned. */
char *rp_audit_checkpoint_message(uint64_t seq, const char *prev,
                                  const char *ts, const char *reason,
                                  const char *file, const char *key_id,
                                  size_t *len);
/* sig = base64 signature of msg.  Aborts if libcrypto cannot allocate. */
void rp_audit_key_sign(const struct rp_audit_key *k, const char *msg,
                       size_t len, char sig[RP_AUDIT_SIG_LEN + 1]);
bool rp_audit_key_verify(const struct rp_audit_key *k, const char *msg,
                         size_t len, const char *sig);

/* Rotated parts (audit_rotate.c). */
/* Whether name (a directory entry) is a part of the log whose base name is
 * base. */
bool rp_audit_is_part(const char *base, const char *name);
/* Renames path to the first free part name for the time t and makes the
 * rename durable (fsync of the directory).  *part (owned) is the new name,
 * also when only the fsync failed. */
int rp_audit_rename_part(const char *path, time_t t, char **part,
                         struct rp_error **err);
/* The directory part of path ("." when there is none); owned. */
char *rp_audit_dir_of(const char *path);
int rp_audit_fsync_dir(const char *dir, struct rp_error **err);

#endif
