/* A growable buffer with a hard cap, as curl's dynbuf
 * (docs/internals/DYNBUF.md): every buffer filled from outside (a body, a
 * stream's lines, a blob, a file) says at its start how much it may ever
 * hold, and an append that would pass that fails instead of growing.
 *
 * The bytes are always followed by a NUL (not counted in len), so a buffer
 * of text is a C string as it is.  Memory is doubled as it grows (at most
 * max + 1 bytes), kept by rp_buf_reset and freed by rp_buf_free.
 * `struct rp_buf b = {.max = N};` is the same as rp_buf_init(&b, N). */
#ifndef RP_BUF_H
#define RP_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct rp_buf {
  char *p;    /* owned; NULL until the first append */
  size_t len; /* bytes held, without the NUL */
  size_t cap; /* bytes allocated */
  size_t max; /* the most len may ever be */
};

/* An empty buffer that holds at most max bytes. */
void rp_buf_init(struct rp_buf *b, size_t max);

/* Appends n bytes.  0, or -1 when len would pass max: then nothing is
 * appended and the buffer is as it was. */
int rp_buf_add(struct rp_buf *b, const void *data, size_t n);

/* Appends formatted text; 0, or -1 as rp_buf_add (nothing appended). */
int rp_buf_addf(struct rp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int rp_buf_vaddf(struct rp_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* How many more bytes fit. */
size_t rp_buf_room(const struct rp_buf *b);

/* The bytes as a string: "" (static) before the first append. */
const char *rp_buf_str(const struct rp_buf *b);

/* Empties the buffer and keeps its memory for the next bytes. */
void rp_buf_reset(struct rp_buf *b);

/* Frees the memory: the buffer is empty, with the same max. */
void rp_buf_free(struct rp_buf *b);

/* Hands the bytes out (owned, NUL-terminated; NULL when nothing was ever
 * appended) and leaves the buffer empty. */
char *rp_buf_take(struct rp_buf *b);

static inline void
rp_buf_freep(struct rp_buf *b)
{
  rp_buf_free(b);
}
#define cleanup_buf __attribute__((cleanup(rp_buf_freep)))

#endif
