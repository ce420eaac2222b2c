/* The host provider's internals, shared by its files:
 *   host.c   the ops table: one workload of kind host (the machine reaper
 *            runs on, started at boot), drain-replace, crash recovery
 *   facts.c  what the machine says about itself (boot time, boot id,
 *            machine id, hostname) and the once-per-boot marker
 *   run.c    a program run without a shell on the loop, its output kept
 *
 * drain-replace on a host:
 *   1. refuse when the replace action already ran in this boot (a marker
 *      file named after the boot id, in the state directory)
 *   2. drain: the policy's `drain` argv, if any, run without a shell within
 *      drain_timeout; it is for stopping the machine's work gracefully (for
 *      instance `[/usr/local/lib/reaper/drain-host]` or a `docker stop` of
 *      every container).  A drain that cannot start fails the recycle and
 *      nothing else happens; one that fails or times out is recorded and
 *      the replacement goes ahead (the host is past its age), as a swarm
 *      node's drain does
 *   3. the marker is created (0600, O_EXCL, fsync'd) BEFORE the action:
 *      a crash or a second reaper can never run it twice in one boot
 *   4. replace: the policy's `replace` argv run without a shell, with a
 *      minimal environment (PATH, REAPER_HOST_ID, REAPER_HOST_NAME,
 *      REAPER_BOOT_TIME), its output (both streams) kept for the audit
 *      line.  A zero exit is done; anything else failed (not undone: the
 *      marker stays, so it does not run again in this boot). */
#ifndef RP_HOST_H
#define RP_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"
#include "provider.h"

/* Where the marker lives unless $REAPER_STATE_DIR says otherwise. */
#define RP_HOST_STATE_DIR "/var/lib/reaper"
#define RP_HOST_PATH                                                           \
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Boot time in ms since the Epoch, from "btime N" in PROC/stat ("/proc"
 * in the agent).  -1 with err when unreadable. */
int rp_host_boot_time_ms(const char *proc, int64_t *out, struct rp_error **err);
/* The boot id (PROC/sys/kernel/random/boot_id), a UUID, into buf (at least
 * 37 bytes).  -1 with err when unreadable or not a UUID. */
int rp_host_boot_id(const char *proc, char *buf, size_t len,
                    struct rp_error **err);
/* The machine's id: the first line of machine_id_path (/etc/machine-id)
 * when it is 32 hex digits, else the hostname; and its name, the hostname.
 * Owned results. */
int rp_host_identity(const char *machine_id_path, char **id, char **name,
                     struct rp_error **err);

/* DIR/host-replace.BOOT_ID.  Owned. */
char *rp_host_marker_path(const char *dir, const char *boot_id);
/* Creates the marker (and its directory, 0700) exclusively, mode 0600, with
 * content, fsync'd with its directory.  An existing marker is RP_ECONFLICT;
 * other failures carry errno.  Nothing blocks for long: one small file. */
int rp_host_marker_create(const char *path, const char *content,
                          struct rp_error **err);
bool rp_host_marker_exists(const char *path);

/* One program run without a shell. */
struct rp_host_run_result {
  int spawn_error;   /* a libuv error (negative) when it could not start */
  int64_t exit_code; /* when it exited */
  int term_signal;   /* when a signal ended it (0: none) */
  bool timed_out;    /* killed (its whole process group) at the timeout */
  /* stdout and stderr together, borrowed in the cb; bytes other than
   * printable ASCII, newline and tab are '?' */
  const char *output;
  bool truncated; /* more than max_output came */
  int64_t duration_ms;
};
typedef void (*rp_host_run_cb)(void *arg, const struct rp_host_run_result *r);

/* Runs argv (argv[0] a path or a name looked up in env's PATH) with env
 * (NULL-terminated "K=V"), stdin /dev/null, stdout and stderr into one
 * buffer of at most max_output bytes, in its own session, cwd "/".  After
 * timeout_ms its process group gets SIGKILL.  cb runs exactly once, after
 * every handle is closed.  Returns -1 (cb never runs) only when argv is
 * empty or a pipe cannot be made. */
int rp_host_run(uv_loop_t *loop, char *const *argv, char *const *env,
                int64_t timeout_ms, size_t max_output, rp_host_run_cb cb,
                void *arg, struct rp_error **err);

/* "exit 0", "exit 3", "killed by SIGTERM", "timed out after 30s (killed)",
 * "could not start: no such file or directory"; into buf, returns buf. */
const char *rp_host_run_describe(const struct rp_host_run_result *r,
                                 int64_t timeout_ms, char *buf, size_t len);

#endif
