/* A growable buffer with a hard cap (buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* The first allocation: most buffers hold a line or a small body. */
#define FIRST_CAP 256

void
rp_buf_init(struct rp_buf *b, size_t max)
{
  *b = (struct rp_buf){.max = max};
}

/* Room for len + n bytes and the NUL; the caller checked the cap. */
static void
grow(struct rp_buf *b, size_t n)
{
  size_t need = b->len + n + 1;
  if (need <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : FIRST_CAP;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  if (b->max < SIZE_MAX && cap > b->max + 1)
    cap = b->max + 1;
  b->p = rp_xrealloc(b->p, cap);
  b->cap = cap;
}

int
rp_buf_add(struct rp_buf *b, const void *data, size_t n)
{
  if (n > b->max - b->len)
    return -1;
  grow(b, n);
  if (n)
    memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

int
rp_buf_vaddf(struct rp_buf *b, const char *fmt, va_list ap)
{
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  if (n < 0 || (size_t)n > b->max - b->len) {
    va_end(again);
    return -1;
  }
  grow(b, (size_t)n);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
  va_end(again);
  b->len += (size_t)n;
  return 0;
}

int
rp_buf_addf(struct rp_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = rp_buf_vaddf(b, fmt, ap);
  va_end(ap);
  return rc;
}

size_t
rp_buf_room(const struct rp_buf *b)
{
  return b->max - b->len;
}

const char *
rp_buf_str(const struct rp_buf *b)
{
  return b->p ? b->p : "";
}

void
rp_buf_reset(struct rp_buf *b)
{
  b->len = 0;
  if (b->p)
    b->p[0] = '\0';
}

void
rp_buf_free(struct rp_buf *b)
{
  free(b->p);
  rp_buf_init(b, b->max);
}

char *
rp_buf_take(struct rp_buf *b)
{
  char *p = b->p;
  rp_buf_init(b, b->max);
  return p;
}
