#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int
rp_error_setv(struct rp_error **err, int code, const char *fmt, va_list ap)
{
  if (err == NULL || *err != NULL)
    return -1;
  struct rp_error *e = rp_xcalloc(1, sizeof(*e));
  e->code = code;
  if (vasprintf(&e->message, fmt, ap) < 0)
    e->message = rp_xstrdup("(out of memory formatting an error)");
  *err = e;
  return -1;
}

int
rp_error_set(struct rp_error **err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(err, code, fmt, ap);
  va_end(ap);
  return -1;
}

int
rp_error_prefix(struct rp_error **err, const char *fmt, ...)
{
  if (err == NULL || *err == NULL)
    return -1;
  char *prefix = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&prefix, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -1;
  char *joined = NULL;
  if (asprintf(&joined, "%s: %s", prefix, (*err)->message) >= 0) {
    free((*err)->message);
    (*err)->message = joined;
  }
  free(prefix);
  return -1;
}

void
rp_error_free(struct rp_error *e)
{
  if (e == NULL)
    return;
  free(e->message);
  free(e);
}

struct rp_error *
rp_error_dup(const struct rp_error *e)
{
  if (e == NULL)
    return NULL;
  struct rp_error *c = rp_xcalloc(1, sizeof(*c));
  c->code = e->code;
  c->message = rp_xstrdup(e->message ? e->message : "");
  return c;
}
