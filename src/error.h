/* Errors that carry their place and cause up to the user.
 *
 * A fallible function returns 0 on success or a negative value on failure
 * and, on failure, fills *err (when err is not NULL) with a code and a
 * message.  Callers add context with rp_error_prefix() on the way up, so the
 * user reads "docker: recreate web-1: create: 409 name in use".  Only main.c
 * and agent.c print errors; library code never exits. */
#ifndef RP_ERROR_H
#define RP_ERROR_H

#include <stdarg.h>

/* Error codes beyond errno values.  Positive errno values (ENOENT, EIO...)
 * are used as they are. */
enum {
  RP_ECONFIG = 1000, /* configuration or usage error: exit 2 */
  RP_EENGINE,        /* an engine answered with an error */
  RP_ENOTFOUND,      /* the engine says the object does not exist */
  RP_ECONFLICT,      /* the engine says the name or version is taken */
  RP_EPROTO,         /* an answer we could not understand */
  RP_ECANCELED,      /* the operation was cancelled (shutdown) */
  RP_ETIMEOUT,       /* the operation ran out of time */
  RP_EAUDIT,         /* the audit log cannot be written: act on nothing */
  RP_ETAMPER,        /* verify found a broken chain */
  RP_EVERSION,       /* the engine refuses the API version spoken */
  RP_EREFUSED,       /* reaper refuses to act, and says why (nothing done) */
};

struct rp_error {
  int code;
  char *message; /* owned */
};

/* Sets *err (if err is not NULL and *err is NULL) and returns -1.  Usage:
 * `return rp_error_set(err, EIO, "open %s: %s", path, strerror(errno));` */
int rp_error_set(struct rp_error **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int rp_error_setv(struct rp_error **err, int code, const char *fmt, va_list ap);

/* Prepends "context: " to the message of *err (if any); returns -1 so it
 * can end a failing path: `return rp_error_prefix(err, "load %s", path);` */
int rp_error_prefix(struct rp_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Accepts NULL. */
void rp_error_free(struct rp_error *e);

/* A copy of e (NULL for NULL). */
struct rp_error *rp_error_dup(const struct rp_error *e);

static inline void
rp_error_freep(struct rp_error **e)
{
  rp_error_free(*e);
}
#define cleanup_error __attribute__((cleanup(rp_error_freep)))

#endif
