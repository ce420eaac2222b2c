/* Whether reaper may trust a file: the one rule for every file that
 * decides what it does or proves what it did.
 *
 * The configuration decides what reaper stops, the audit log is its proof,
 * the signing key and the listener's token are secrets, the TLS key
 * speaks for it to an engine.  Whoever can change one of them, or replace
 * it, has reaper's power.  So a file is refused when a user other than
 * root and reaper's own (its effective uid) could:
 *
 *   - the file is owned by another user;
 *   - the file is writable by its group or by others;
 *   - a directory on its path (each one, symbolic links followed and the
 *     directories holding the links checked too) is owned by another user,
 *     or is writable by its group or others without the sticky bit (in a
 *     sticky directory such as /tmp nobody else may rename or remove
 *     reaper's file);
 *   - for a secret: the file is readable by its group or others.
 *
 * A refusal names the file, the rule and the fix. */
#ifndef RP_FILE_TRUST_H
#define RP_FILE_TRUST_H

#include "error.h"

enum {
  /* Readable by reaper's user alone (root may read anything anyway). */
  RP_TRUST_SECRET = 1 << 0,
  /* A file that does not exist yet is fine (its directories are checked:
   * reaper will create it there). */
  RP_TRUST_ABSENT_OK = 1 << 1,
  /* The path itself must not be a symbolic link (the audit log: it is
   * opened with O_NOFOLLOW, and a link is refused with this message
   * rather than a bare ELOOP). */
  RP_TRUST_NO_SYMLINK = 1 << 2,
};

/* Checks path by the rules above; what names it in the message
 * ("configuration", "listen token file"...; NULL when the caller names it
 * in a prefix).  Returns 0, or -1 with *err (RP_ECONFIG):
 * "WHAT PATH: RULE (DETAIL): FIX". */
int rp_file_trust_check(const char *path, const char *what, unsigned flags,
                        struct rp_error **err);

#endif
