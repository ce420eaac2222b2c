/* Small helpers every module uses: ownership-visible cleanup attributes,
 * allocation that aborts on exhaustion, and clocks. */
#ifndef RP_UTIL_H
#define RP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

/* Memory exhaustion is not an error reaper can report usefully: abort with a
 * message rather than limp on with half-built state. */
void *rp_xmalloc(size_t n);
void *rp_xcalloc(size_t n, size_t size);
void *rp_xrealloc(void *p, size_t n);
char *rp_xstrdup(const char *s);
char *rp_xstrndup(const char *s, size_t n);
char *rp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void
rp_freep(void *p)
{
  free(*(void **)p);
}
static inline void
rp_json_decrefp(json_t **j)
{
  if (*j)
    json_decref(*j);
}
static inline void
rp_fclosep(FILE **f)
{
  if (*f)
    fclose(*f);
}
static inline void
rp_closep(int *fd)
{
  if (*fd >= 0)
    close(*fd);
}
#define cleanup_free __attribute__((cleanup(rp_freep)))
#define cleanup_json __attribute__((cleanup(rp_json_decrefp)))
#define cleanup_fclose __attribute__((cleanup(rp_fclosep)))
#define cleanup_close __attribute__((cleanup(rp_closep)))

/* Hand ownership out of a cleanup-attributed local: `*out = steal(p);` */
#define RP_STEAL(p)                                                            \
  ({                                                                           \
    __typeof__(p) stolen_ = (p);                                               \
    (p) = NULL;                                                                \
    stolen_;                                                                   \
  })

/* Hand a descriptor out of a cleanup_close local: `*out = RP_STEAL_FD(fd);` */
#define RP_STEAL_FD(fd)                                                        \
  ({                                                                           \
    int stolen_fd_ = (fd);                                                     \
    (fd) = -1;                                                                 \
    stolen_fd_;                                                                \
  })

/* Test builds (-DREAPER_CRASHPOINTS=ON) die here with SIGKILL when the
 * environment variable REAPER_CRASH_AT names this point: the crash-safety
 * tests kill reaper at every step of a recycle.  Nothing in other builds. */
#ifdef REAPER_CRASHPOINTS
void rp_crashpoint(const char *name);
#define RP_CRASHPOINT(name) rp_crashpoint(name)
/* The same, a moment (300 ms) after an action was asked for: reaper dies
 * while the engine carries it out (a stop under way). */
struct uv_loop_s;
void rp_crashpoint_soon(struct uv_loop_s *loop, const char *name);
#define RP_CRASHPOINT_SOON(loop, name) rp_crashpoint_soon(loop, name)
#else
#define RP_CRASHPOINT(name) ((void)0)
#define RP_CRASHPOINT_SOON(loop, name) ((void)(loop))
#endif

#define RP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* a + b, held at INT64_MAX or INT64_MIN instead of overflowing (a deadline
 * far in the future stays far in the future). */
int64_t rp_add_sat(int64_t a, int64_t b);

/* FNV-1a over s, going on from h (RP_HASH_INIT to begin): the hash tables'
 * (ids are the engine's random hex, so no table needs a keyed hash). */
#define RP_HASH_INIT 1469598103934665603ULL
uint64_t rp_hash_more(uint64_t h, const char *s);

/* Wall-clock time in milliseconds since the Epoch (deadlines live here). */
int64_t rp_wall_ms(void);
/* Monotonic time in milliseconds (timers and elapsed time live here). */
int64_t rp_mono_ms(void);

/* Formats ms since the Epoch as RFC 3339 UTC ("2026-11-24T23:09:18.123Z")
 * into buf (at least 32 bytes); returns buf. */
char *rp_format_time_ms(int64_t ms, char *buf, size_t len);
/* Parses RFC 3339 (any fraction, Z or +hh:mm); Go's zero time and anything
 * before 1971 give 0.  Returns 0 or -1. */
int rp_parse_time_ms(const char *s, int64_t *out_ms);

/* Percent-encodes everything but RFC 3986's unreserved characters, for a
 * query parameter.  Owned result. */
char *rp_url_escape(const char *s);

/* Formats a duration in milliseconds the way the configuration writes it
 * ("1h30m", "500ms", "2d3h"). */
char *rp_format_duration(int64_t ms, char *buf, size_t len);

#endif
