/* The host provider's internals, shared by its files:
 *   host.c   the ops table: one workload of kind host (the machine reaper
 *            runs on, started at boot), the operations of drain-replace
 *            for the core's recycle runner (prepare, drain, replace,
 *            release), crash recovery
 *   facts.c  what the machine says about itself (boot time, boot id,
 *            machine id, hostname) and the once-per-boot marker
 *
 * drain-replace on a host, as src/runner.c orders it (a host has no cordon,
 * no probe and no remove: those steps are skipped):
 *   1. prepare: refuse when the replace action already ran in this boot (a
 * marker file named after the boot id, in the state directory)
 *   2. drain: the policy's `drain` argv, if any, run as src/child.h runs
 *      every program (no shell, a minimal environment, no descriptor of
 *      reaper's) within drain_timeout (then SIGTERM, SIGKILL 5 s later);
 *      it is for stopping the machine's work gracefully (for instance
 *      `[/usr/local/lib/reaper/drain-host]` or a `docker stop` of every
 *      container).  A drain that cannot start fails the recycle and
 *      nothing else happens (replace refuses, before the marker); one that
 *      fails or times out is recorded and
 *      the replacement goes ahead (the host is past its age), as a swarm
 *      node's drain does
 *   3. replace: the marker is created (0600, O_EXCL, fsync'd) BEFORE the
 *      action: a crash or a second reaper can never run it twice in one
 *      boot (the crash point host-after-marker is between the two); then
 *      the policy's `replace` argv run without a shell, with a
 *      minimal environment (PATH, REAPER_HOST_ID, REAPER_HOST_NAME,
 *      REAPER_BOOT_TIME), its output (both streams) kept for the audit
 *      line.  A zero exit is done; anything else failed (not undone:
 *      prepare says replace_final, since the marker stays and the action
 *      does not run again in this boot). */
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

#endif
