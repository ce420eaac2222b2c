/* The /events stream's line splitting (rp_dockerapi_line_splitter_*, what
 * rp_docker_stream runs on every chunk libcurl hands it), fed the input in
 * chunks whose boundaries the input chooses.  The lines delivered must be
 * exactly the input split at "\n", each without one trailing "\r", empty
 * ones left out, wherever the chunks end; a line over the limit ends the
 * stream with an error after the lines before it; a consumer that asks to
 * stop gets nothing more.
 *
 * Input: byte 0 the line limit (0: the real 1 MiB, else 1..255 bytes, to
 * reach the limit), byte 1 the index of the line whose callback asks to
 * stop (255: never), bytes 2-3 the seed of the chunk sizes, then the
 * stream. */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "docker/docker.h"
#include "util.h"

#define HEADER_LEN 4
#define NEVER 255

struct expected {
  const char **line; /* owned array; lines borrowed from the input */
  size_t *len;       /* owned array */
  size_t n;
  bool too_long; /* a line over the limit follows the n lines */
};

struct consumer {
  const struct expected *want;
  size_t seen;
  size_t stop_at;
};

/* The input split the simple way, all at once. */
static void
expect_lines(const char *p, size_t size, size_t max_line, struct expected *e)
{
  memset(e, 0, sizeof(*e));
  e->line = rp_xcalloc(size + 1, sizeof(*e->line));
  e->len = rp_xcalloc(size + 1, sizeof(*e->len));
  size_t start = 0;
  while (start < size) {
    const char *nl = memchr(p + start, '\n', size - start);
    size_t raw = nl ? (size_t)(nl - (p + start)) : size - start;
    if (raw > max_line) {
      e->too_long = true;
      return;
    }
    size_t len = raw;
    if (len > 0 && p[start + len - 1] == '\r')
      len--;
    if (len > 0) {
      e->line[e->n] = p + start;
      e->len[e->n] = len;
      e->n++;
    }
    start += raw + 1;
  }
}

static int
line_cb(void *arg, const char *line, size_t len)
{
  struct consumer *c = arg;
  RP_FUZZ_CHECK(c->seen < c->want->n);
  RP_FUZZ_CHECK(len == c->want->len[c->seen]);
  RP_FUZZ_CHECK(memcmp(line, c->want->line[c->seen], len) == 0);
  return c->seen++ == c->stop_at;
}

/* xorshift32: chunk sizes that the fuzzer steers through the seed. */
static uint32_t
next_random(uint32_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

int
rp_fuzz_event_lines_run(const uint8_t *data, size_t size)
{
  if (size < HEADER_LEN)
    return 0;
  size_t max_line = data[0] ? data[0] : (size_t)1 << 20;
  size_t stop_at = data[1] == NEVER ? SIZE_MAX : data[1];
  uint32_t seed = (uint32_t)data[2] << 8 | data[3] | 0x10000u;
  const char *p = (const char *)data + HEADER_LEN;
  size -= HEADER_LEN;

  struct expected want;
  expect_lines(p, size, max_line, &want);
  struct consumer c = {.want = &want, .stop_at = stop_at};
  struct rp_dockerapi_line_splitter ls;
  rp_dockerapi_line_splitter_init(&ls, data[0] ? max_line : 0);
  RP_FUZZ_CHECK(ls.max_line == max_line);

  int rc = 0;
  size_t off = 0;
  while (off < size && rc == 0) {
    uint32_t r = next_random(&seed);
    /* Mostly small chunks, some empty, now and then a larger one. */
    size_t n = (r >> 8) % 4 ? r % 9 : r % 300;
    if (n > size - off)
      n = size - off;
    /* A chunk of its own, so that reading past it is caught. */
    cleanup_free char *chunk = rp_xmalloc(n ? n : 1);
    memcpy(chunk, p + off, n);
    rc = rp_dockerapi_line_splitter_feed(&ls, chunk, n, line_cb, &c);
    off += n;
  }
  if (rc == 0)
    rc = rp_dockerapi_line_splitter_end(&ls, line_cb, &c);
  rp_dockerapi_line_splitter_clear(&ls);

  if (rc == 1) {
    RP_FUZZ_CHECK(c.seen == stop_at + 1);
  } else if (rc == -1) {
    RP_FUZZ_CHECK(want.too_long && c.seen == want.n);
  } else {
    RP_FUZZ_CHECK(rc == 0 && !want.too_long && c.seen == want.n);
    RP_FUZZ_CHECK(stop_at >= want.n);
  }
  free(want.line);
  free(want.len);
  return 0;
}

#ifndef RP_FUZZ_NO_MAIN
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return rp_fuzz_event_lines_run(data, size);
}
#endif
