/* Programs that reaper runs on the host: notification commands, a host's
 * drain and replace actions, a node's replace action.  One runner for
 * all of them, so that what a child gets is decided in one place:
 *
 *   - an argv, run without a shell, in its own session (its process group
 *     is what a timeout ends), in "/";
 *   - only the environment it is given (plus a default PATH when that names
 *     none), never reaper's own;
 *   - no descriptor of reaper's but 0, 1 and 2: stdin is the given bytes or
 *     /dev/null, stdout and stderr one pipe; everything else reaper holds
 *     (the engines' sockets, the audit log, the listener) is closed in the
 *     child before it runs, whether or not it was close-on-exec;
 *   - every signal at its default disposition and none blocked;
 *   - a timeout: SIGTERM to its process group, SIGKILL a while later;
 *   - its output, stdout and stderr together, kept up to a hard cap (more is
 *     read and dropped, so the program never blocks on a full pipe).
 *
 * Runs on the loop and never blocks it but for the spawn itself. */
#ifndef RP_CHILD_H
#define RP_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"

/* What a child's PATH is when its environment names none. */
#define RP_CHILD_DEFAULT_PATH                                                  \
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* After a timeout's SIGTERM, how long before SIGKILL when the options say
 * nothing. */
#define RP_CHILD_KILL_AFTER_MS 5000

struct rp_child_options {
  /* NULL-terminated; argv[0] is a path, or a name looked up in the PATH of
   * env.  Copied: the caller may free it once rp_child_run returns. */
  char *const *argv;
  /* "NAME=VALUE" strings, NULL-terminated, or NULL: the child's whole
   * environment.  PATH=RP_CHILD_DEFAULT_PATH is added when none is given.
   * Copied. */
  char *const *env;
  /* Bytes for its stdin (copied), then end of file; NULL: /dev/null.  A
   * program may exit without reading them: the process must ignore SIGPIPE
   * (the agent does). */
  const char *input;
  size_t input_len;
  /* > 0: after this long its process group gets SIGTERM, and SIGKILL
   * kill_after_ms later (0: RP_CHILD_KILL_AFTER_MS).  0: no timeout. */
  int64_t timeout_ms;
  int64_t kill_after_ms;
  /* Output bytes kept, stdout and stderr together. */
  size_t max_output;
};

struct rp_child_result {
  /* A negative errno when the program could not be started (ENOENT: not
   * found, EACCES: not executable...); nothing below is then set. */
  int spawn_error;
  int64_t exit_code; /* when it exited by itself (term_signal 0) */
  int term_signal;   /* the signal that ended it, or 0 */
  bool timed_out;    /* it ran past timeout_ms and was signalled */
  bool killed;       /* rp_child_kill ended it */
  /* stdout and stderr together, NUL-terminated, borrowed for the callback.
   * Bytes other than printable ASCII, newline and tab are '?', so that the
   * text can go into a log or an audit line as it is. */
  const char *output;
  size_t output_len;
  bool truncated; /* more than max_output came (and was dropped) */
  int64_t duration_ms;
};

/* Runs once, after the process has exited (or could not start) and every
 * handle of the child is closed: the caller may free anything then. */
typedef void (*rp_child_cb)(void *arg, const struct rp_child_result *r);

struct rp_child;

/* Starts o->argv.  Returns 0, and cb runs exactly once later (a program
 * that cannot be started is reported there, as spawn_error).  Returns -1
 * with *err, and cb never runs, when argv is empty or no pipe can be made.
 * *out (may be NULL) is the child, valid until cb runs. */
int rp_child_run(uv_loop_t *loop, const struct rp_child_options *o,
                 rp_child_cb cb, void *arg, struct rp_child **out,
                 struct rp_error **err);

/* Ends the child and whatever it started (SIGKILL to its process group) if
 * it still runs; cb still runs once, with killed set. */
void rp_child_kill(struct rp_child *c);

/* The child's process id (its process group's too); 0 when it did not
 * start. */
int rp_child_pid(const struct rp_child *c);

/* "exit 0", "exit 3", "killed by SIGTERM", "timed out after 30s (killed)",
 * "killed", "could not start: no such file or directory", into buf;
 * returns buf. */
const char *rp_child_describe(const struct rp_child_result *r,
                              int64_t timeout_ms, char *buf, size_t len);

#endif
