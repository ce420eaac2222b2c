/* Reading the audit log: checking one line on its own, verifying the chain
 * of whole files, and iterating over their events.
 *
 * Files are streamed line by line through one buffer, so a log of any size
 * is checked in constant memory; a line longer than RP_AUDIT_MAX_LINE is
 * reported, never buffered whole.
 *
 * Torn bytes.  A crash mid-write leaves a fragment at the end of the log; a
 * failed write may leave a fragment or even a complete line that was never
 * known durable.  The writer never rewrites them: it terminates a fragment
 * with "\n" and writes an audit.torn line whose offset and length span
 * exactly those bytes (the terminator excluded), whose sha256 is theirs and
 * whose prev/seq continue the chain from the line that ended at offset.
 * verify recognises that shape: when a line breaks the chain, the break is
 * held back (not yet reported) while the rest of the file is read; an
 * audit.torn line whose span starts at a line boundary at or before the
 * break, ends where it starts itself (or one byte earlier, the terminator),
 * hashes to its sha256 and chains to the line before the span acknowledges
 * the break.  Anything else reports the first break.  Because the span may
 * begin a few lines back (a complete line whose fsync failed, earlier failed
 * retries), the chain state at the start of each recent line is kept in a
 * small ring.
 *
 * Checkpoints.  With keys, a checkpoint enters the chain only when its
 * signature verifies; the chain state records the last one (where, which
 * reason, how many lines came after it), so that a torn acknowledgement
 * that rolls the chain back rolls that back too, and the end of the last
 * file is judged from it (audit.h, rp_audit_verify_with). */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "util.h"

#define BLOCK (64 * 1024)
/* Line starts whose chain state verify remembers; the span an audit.torn
 * line acknowledges starts at most this many lines back. */
#define RING 256
/* Notes kept in a verify result; more are counted, not kept. */
#define MAX_NOTES 100
/* What they may say at the most: each names a file and a line or two. */
#define NOTES_MAX_BYTES ((size_t)1 << 20)

/* `,"hash":"` + 64 hex digits + `"}` */
#define HASH_HEAD ",\"hash\":\""
#define HASH_HEAD_LEN (sizeof(HASH_HEAD) - 1)
#define HASH_SUFFIX_LEN (HASH_HEAD_LEN + 64 + 2)

/* --- SHA-256 ------------------------------------------------------------ */

static void
crypto_failed(void)
{
  /* EVP fails only when it cannot allocate: treated as memory exhaustion,
   * as rp_xmalloc does. */
  fprintf(stderr, "reaper: libcrypto SHA-256 failed (out of memory?)\n");
  abort();
}

static void
to_hex(const unsigned char *md, size_t n, char *hex)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[2 * n] = '\0';
}

static void
md_ctx_freep(EVP_MD_CTX **c)
{
  EVP_MD_CTX_free(*c);
}

void
rp_audit_sha256_hex(const void *p, size_t n, char hex[65])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
    crypto_failed();
  to_hex(md, mdlen, hex);
}

int
rp_audit_sha256_range(int fd, uint64_t off, uint64_t len, char hex[65])
{
  __attribute__((cleanup(md_ctx_freep))) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
    crypto_failed();
  cleanup_free char *buf = rp_xmalloc(BLOCK);
  while (len > 0) {
    size_t want = len < BLOCK ? (size_t)len : BLOCK;
    ssize_t n = pread(fd, buf, want, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      return -EIO; /* the file is shorter than the span */
    if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
      crypto_failed();
    off += (uint64_t)n;
    len -= (uint64_t)n;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
    crypto_failed();
  to_hex(md, mdlen, hex);
  return 0;
}

/* --- one line ----------------------------------------------------------- */

static bool
is_hex64(const char *s)
{
  if (!s || strlen(s) != 64)
    return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return false;
  return true;
}

static int bad(char **reason, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
bad(char **reason, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(reason, fmt, ap) < 0)
    *reason = rp_xstrdup("(out of memory)");
  va_end(ap);
  return -1;
}

static bool
get_uint(json_t *obj, const char *key, uint64_t min, uint64_t *out)
{
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      (uint64_t)json_integer_value(v) < min)
    return false;
  *out = (uint64_t)json_integer_value(v);
  return true;
}

int
rp_audit_line_parse(const char *line, size_t len, struct rp_audit_line *out,
                    char **reason)
{
  memset(out, 0, sizeof(*out));
  json_error_t jerr;
  cleanup_json json_t *obj =
      json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!obj)
    return bad(reason, "not JSON: %s", jerr.text);
  if (!json_is_object(obj))
    return bad(reason, "not a JSON object");

  json_t *ts = json_object_get(obj, "ts");
  int64_t ms;
  if (!json_is_string(ts) || rp_parse_time_ms(json_string_value(ts), &ms))
    return bad(reason, "missing or invalid \"ts\"");
  if (!get_uint(obj, "seq", 1, &out->seq))
    return bad(reason, "missing or invalid \"seq\"");
  json_t *event = json_object_get(obj, "event");
  if (!json_is_string(event) || json_string_length(event) == 0)
    return bad(reason, "missing or invalid \"event\"");
  const char *prev = json_string_value(json_object_get(obj, "prev"));
  if (!is_hex64(prev))
    return bad(reason, "missing \"prev\" or not 64 lowercase hex digits");
  const char *hash = json_string_value(json_object_get(obj, "hash"));
  if (!is_hex64(hash))
    return bad(reason, "missing \"hash\" or not 64 lowercase hex digits");

  /* The hash covers the bytes as written: cut the member out textually. */
  const char *tail = line + len - HASH_SUFFIX_LEN;
  if (len < HASH_SUFFIX_LEN + 1 ||
      memcmp(tail, HASH_HEAD, HASH_HEAD_LEN) != 0 ||
      memcmp(tail + HASH_HEAD_LEN, hash, 64) != 0 ||
      memcmp(tail + HASH_HEAD_LEN + 64, "\"}", 2) != 0)
    return bad(reason, "\"hash\" is not the last member");
  __attribute__((cleanup(md_ctx_freep))) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
      EVP_DigestUpdate(ctx, line, len - HASH_SUFFIX_LEN) != 1 ||
      EVP_DigestUpdate(ctx, "}", 1) != 1 ||
      EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
    crypto_failed();
  char want[65];
  to_hex(md, mdlen, want);
  if (strcmp(want, hash) != 0)
    return bad(reason, "hash mismatch");

  out->event = json_string_value(event);
  memcpy(out->prev, prev, 65);
  memcpy(out->hash, hash, 65);
  if (strcmp(out->event, "audit.torn") == 0) {
    const char *sha = json_string_value(json_object_get(obj, "sha256"));
    if (!get_uint(obj, "offset", 0, &out->torn_offset) ||
        !get_uint(obj, "length", 1, &out->torn_length) || !is_hex64(sha))
      return bad(reason, "audit.torn without a valid offset, length and "
                         "sha256");
    out->torn = true;
    memcpy(out->torn_sha256, sha, 65);
  }
  out->obj = RP_STEAL(obj);
  return 0;
}

void
rp_audit_line_clear(struct rp_audit_line *l)
{
  if (l && l->obj)
    json_decref(l->obj);
  if (l)
    memset(l, 0, sizeof(*l));
}

static void
line_clearp(struct rp_audit_line *l)
{
  rp_audit_line_clear(l);
}

/* --- streaming lines ---------------------------------------------------- */

struct reader {
  int fd;    /* borrowed */
  char *buf; /* owned; holds the file bytes [off, off + len) */
  size_t cap, pos, len;
  uint64_t off;
  bool eof;
};

struct line {
  const char *p;   /* into the reader's buffer until the next call; NULL
                      when too_long */
  size_t len;      /* without the newline */
  uint64_t offset; /* in the file */
  bool has_nl;
  bool too_long;
};

static void
reader_init(struct reader *r, int fd)
{
  memset(r, 0, sizeof(*r));
  r->fd = fd;
  /* Room for a longest line and one more block after it. */
  r->cap = RP_AUDIT_MAX_LINE + 1 + BLOCK;
  r->buf = rp_xmalloc(r->cap);
}

static void
reader_free(struct reader *r)
{
  free(r->buf);
  r->buf = NULL;
}

/* Moves the unread bytes to the front and reads more.  0 or -errno. */
static int
reader_fill(struct reader *r)
{
  if (r->pos > 0) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->off += r->pos;
    r->len -= r->pos;
    r->pos = 0;
  }
  ssize_t n;
  do {
    n = read(r->fd, r->buf + r->len, r->cap - r->len);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  if (n == 0)
    r->eof = true;
  r->len += (size_t)n;
  return 0;
}

/* Skips the rest of a line too long to hold, counting it into l->len. */
static int
reader_skip_long(struct reader *r, struct line *l)
{
  l->p = NULL;
  l->too_long = true;
  l->offset = r->off + r->pos;
  l->len = r->len - r->pos;
  r->pos = r->len;
  for (;;) {
    int rc = reader_fill(r);
    if (rc < 0)
      return rc;
    if (r->eof)
      return 1;
    char *nl = memchr(r->buf, '\n', r->len);
    if (nl) {
      l->len += (size_t)(nl - r->buf);
      l->has_nl = true;
      r->pos = (size_t)(nl - r->buf) + 1;
      return 1;
    }
    l->len += r->len;
    r->pos = r->len;
  }
}

/* 1 with the next line in *l, 0 at the end of the file, or -errno. */
static int
reader_next(struct reader *r, struct line *l)
{
  memset(l, 0, sizeof(*l));
  size_t scanned = 0; /* bytes after pos known to hold no newline */
  for (;;) {
    char *start = r->buf + r->pos;
    char *nl = memchr(start + scanned, '\n', r->len - r->pos - scanned);
    if (nl) {
      l->p = start;
      l->len = (size_t)(nl - start);
      l->offset = r->off + r->pos;
      l->has_nl = true;
      l->too_long = l->len > RP_AUDIT_MAX_LINE;
      r->pos += l->len + 1;
      return 1;
    }
    scanned = r->len - r->pos;
    if (r->eof) {
      if (scanned == 0)
        return 0;
      l->p = start;
      l->len = scanned;
      l->offset = r->off + r->pos;
      l->too_long = l->len > RP_AUDIT_MAX_LINE;
      r->pos = r->len;
      return 1;
    }
    if (scanned > RP_AUDIT_MAX_LINE)
      return reader_skip_long(r, l);
    int rc = reader_fill(r);
    if (rc < 0)
      return rc;
  }
}

/* --- verify ------------------------------------------------------------- */

/* The chain as far as it has been verified. */
struct chain {
  uint64_t seq;   /* of the last line; 0 before the first */
  char hash[65];  /* of the last line; 64 zeros before the first */
  uint64_t count; /* lines in the chain */
  size_t file;    /* index of the file holding the last line */
  uint64_t line;  /* its line number there; 0 before the first */
  /* With keys: the last signed checkpoint, and what came after it. */
  uint64_t checkpoints; /* that verified */
  uint64_t cp_count;    /* lines in the chain up to the last one */
  size_t cp_file;
  uint64_t cp_line;
  char cp_reason[16];
  size_t unsigned_file; /* the first line after it */
  uint64_t unsigned_line;
};

/* What verify was asked, for every file. */
struct vctx {
  const char *const *paths;   /* borrowed */
  struct rp_audit_key **keys; /* owned array */
  size_t n_keys;
  struct notes *ns; /* borrowed */
};

/* The chain state at the start of one line. */
struct mark {
  uint64_t offset;
  uint64_t line;
  struct chain state;
};

struct notes {
  struct rp_buf text; /* "FILE:LINE: ..." lines, each ending with "\n" */
  unsigned n;
};

static void note_add(struct notes *ns, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note_add(struct notes *ns, const char *fmt, ...)
{
  if (++ns->n > MAX_NOTES)
    return;
  va_list ap;
  va_start(ap, fmt);
  int rc = rp_buf_vaddf(&ns->text, fmt, ap);
  va_end(ap);
  if (rc == 0)
    rp_buf_add(&ns->text, "\n", 1);
}

struct file_ctx {
  const char *path;
  size_t index;
  int fd;
  struct mark ring[RING];
  uint64_t n_marks;
};

static int
chain_check(const struct file_ctx *f, const struct chain *c,
            const struct rp_audit_line *l, const char *const *paths,
            char **reason)
{
  uint64_t want = c->seq + 1;
  if (l->seq != want) {
    if (c->count == 0)
      return bad(reason,
                 "seq is %" PRIu64 " on the first line of the log, "
                 "not 1",
                 l->seq);
    return bad(reason, "seq %s from %" PRIu64 " to %" PRIu64,
               l->seq > want ? "jumps" : "goes back", c->seq, l->seq);
  }
  if (strcmp(l->prev, c->hash) != 0) {
    if (c->count == 0)
      return bad(reason, "prev is not 64 zeros on the first line of the log");
    if (c->file == f->index)
      return bad(reason, "prev does not match line %" PRIu64 "'s hash",
                 c->line);
    return bad(reason, "prev does not match the hash of the last line of %s",
               paths[c->file]);
  }
  return 0;
}

/* With keys: a checkpoint must be well formed, by a key given, and its
 * signature must verify (the bytes it signs are in audit.h). */
static int
checkpoint_check(const struct vctx *vx, const struct rp_audit_line *l,
                 char **reason)
{
  if (vx->n_keys == 0 || strcmp(l->event, "audit.checkpoint") != 0)
    return 0;
  const char *why = json_string_value(json_object_get(l->obj, "reason"));
  const char *file = json_string_value(json_object_get(l->obj, "file"));
  const char *id = json_string_value(json_object_get(l->obj, "key_id"));
  const char *sig = json_string_value(json_object_get(l->obj, "sig"));
  const char *ts = json_string_value(json_object_get(l->obj, "ts"));
  if (!why || (strcmp(why, "interval") != 0 && strcmp(why, "rotate") != 0 &&
               strcmp(why, "stop") != 0))
    return bad(reason, "audit.checkpoint without a valid \"reason\" "
                       "(interval, rotate or stop)");
  if (!file || !id || !sig || strlen(id) != RP_AUDIT_KEY_ID_LEN)
    return bad(reason, "audit.checkpoint without a valid file, key_id and "
                       "sig");
  const struct rp_audit_key *k = NULL;
  for (size_t i = 0; i < vx->n_keys && !k; i++)
    if (strcmp(rp_audit_key_id(vx->keys[i]), id) == 0)
      k = vx->keys[i];
  if (!k) {
    cleanup_free char *ids = rp_xstrdup(rp_audit_key_id(vx->keys[0]));
    for (size_t i = 1; i < vx->n_keys; i++) {
      char *more = rp_xasprintf("%s, %s", ids, rp_audit_key_id(vx->keys[i]));
      free(ids);
      ids = more;
    }
    return bad(reason, "audit.checkpoint signed by key %s, not by %s (%s)", id,
               vx->n_keys == 1 ? "the key given" : "any key given", ids);
  }
  size_t len;
  cleanup_free char *msg =
      rp_audit_checkpoint_message(l->seq, l->prev, ts, why, file, id, &len);
  if (!rp_audit_key_verify(k, msg, len, sig))
    return bad(reason,
               "audit.checkpoint signature does not verify with key %s: the "
               "log up to here is not what was signed",
               id);
  return 0;
}

/* Takes the line l (line_no of the file f) into the chain. */
static void
chain_accept(const struct vctx *vx, const struct file_ctx *f, struct chain *c,
             const struct rp_audit_line *l, uint64_t line_no)
{
  if (vx->n_keys) {
    if (c->count == c->cp_count) {
      c->unsigned_file = f->index;
      c->unsigned_line = line_no;
    }
    if (strcmp(l->event, "agent.start") == 0 && c->count > c->cp_count)
      note_add(vx->ns,
               "%s:%" PRIu64 ": agent.start after %" PRIu64
               " lines that no checkpoint of their own run signed (from "
               "%s:%" PRIu64 "; that run did not stop cleanly): only a "
               "later checkpoint vouches for them",
               f->path, line_no, c->count - c->cp_count,
               vx->paths[c->unsigned_file], c->unsigned_line);
  }
  c->seq = l->seq;
  memcpy(c->hash, l->hash, 65);
  c->count++;
  c->file = f->index;
  c->line = line_no;
  if (vx->n_keys && strcmp(l->event, "audit.checkpoint") == 0) {
    c->checkpoints++;
    c->cp_count = c->count;
    c->cp_file = f->index;
    c->cp_line = line_no;
    snprintf(c->cp_reason, sizeof(c->cp_reason), "%s",
             json_string_value(json_object_get(l->obj, "reason")));
  }
}

/* Whether the audit.torn line l, starting at offset `at`, acknowledges the
 * bytes before it (see the top of this file).  `limit` is the offset of the
 * held-back break (the span must cover it), or `at`. */
static int
torn_ack(const struct vctx *vx, struct file_ctx *f, struct chain *c,
         const struct rp_audit_line *l, uint64_t at, uint64_t limit,
         uint64_t line_no, char **reason)
{
  uint64_t o = l->torn_offset, n = l->torn_length;
  const struct mark *m = NULL;
  uint64_t kept = f->n_marks < RING ? f->n_marks : RING;
  for (uint64_t i = 0; i < kept && !m; i++) {
    const struct mark *k = &f->ring[(f->n_marks - 1 - i) % RING];
    if (k->offset == o && o <= limit && o < at)
      m = k;
  }
  if (!m)
    return bad(reason,
               "audit.torn offset %" PRIu64 " is not the start of "
               "a line before it",
               o);
  if (o + n != at) {
    char last = '\n';
    if (o + n + 1 != at || pread(f->fd, &last, 1, (off_t)(o + n - 1)) != 1 ||
        last == '\n')
      return bad(reason,
                 "audit.torn length %" PRIu64 " at offset %" PRIu64
                 " does not end where it starts",
                 n, o);
  }
  char sha[65];
  int rc = rp_audit_sha256_range(f->fd, o, n, sha);
  if (rc < 0)
    return bad(reason, "read the bytes audit.torn records: %s", strerror(-rc));
  if (strcmp(sha, l->torn_sha256) != 0)
    return bad(reason,
               "audit.torn sha256 does not match the %" PRIu64
               " bytes at offset %" PRIu64,
               n, o);
  if (l->seq != m->state.seq + 1)
    return bad(reason,
               "audit.torn seq %" PRIu64 " does not follow seq %" PRIu64
               " before offset %" PRIu64,
               l->seq, m->state.seq, o);
  if (strcmp(l->prev, m->state.hash) != 0)
    return bad(reason,
               "audit.torn prev does not match the hash of the line "
               "before offset %" PRIu64,
               o);
  note_add(vx->ns,
           "%s:%" PRIu64 ": audit.torn acknowledges lines %" PRIu64 "-%" PRIu64
           " (%" PRIu64 " bytes at offset %" PRIu64
           ") as never durable; skipped",
           f->path, line_no, m->line, line_no - 1, n, o);
  *c = m->state;
  chain_accept(vx, f, c, l, line_no);
  return 0;
}

static int
verify_file(const struct vctx *vx, size_t index, struct chain *c,
            uint64_t *total, struct rp_error **err)
{
  const char *const *paths = vx->paths;
  const char *path = paths[index];
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return rp_error_set(err, errno, "open %s: %s", path, strerror(errno));
  cleanup_free struct file_ctx *f = rp_xcalloc(1, sizeof(*f));
  f->path = path;
  f->index = index;
  f->fd = fd;
  struct reader r;
  reader_init(&r, fd);
  cleanup_free char *held = NULL; /* the first break, held back */
  uint64_t held_at = 0;
  uint64_t line_no = 0;
  int result = 0;
  for (;;) {
    struct line l;
    int rc = reader_next(&r, &l);
    if (rc < 0) {
      result = rp_error_set(err, -rc, "read %s: %s", path, strerror(-rc));
      break;
    }
    if (rc == 0)
      break;
    line_no++;
    (*total)++;
    if (!held)
      f->ring[f->n_marks++ % RING] =
          (struct mark){.offset = l.offset, .line = line_no, .state = *c};
    cleanup_free char *reason = NULL;
    __attribute__((cleanup(line_clearp))) struct rp_audit_line pl = {0};
    if (l.too_long)
      bad(&reason, "line longer than %d bytes", RP_AUDIT_MAX_LINE);
    else if (!l.has_nl)
      bad(&reason, "torn last line: no newline at the end of the file");
    else if (rp_audit_line_parse(l.p, l.len, &pl, &reason) == 0) {
      if (pl.torn) {
        if (torn_ack(vx, f, c, &pl, l.offset, held ? held_at : l.offset,
                     line_no, &reason) == 0) {
          free(held);
          held = NULL;
        }
      } else if (!held) {
        if (chain_check(f, c, &pl, paths, &reason) == 0 &&
            checkpoint_check(vx, &pl, &reason) == 0)
          chain_accept(vx, f, c, &pl, line_no);
      }
    }
    if (reason && !held) {
      held = rp_xasprintf("%s:%" PRIu64 ": %s", path, line_no, reason);
      held_at = l.offset;
    }
  }
  reader_free(&r);
  if (result == 0 && held)
    result = rp_error_set(err, RP_ETAMPER, "%s", held);
  return result;
}

/* With keys, the log must end with the checkpoint of a stop (audit.h). */
static int
end_check(const struct vctx *vx, size_t n_paths, const struct chain *c,
          bool allow, struct rp_audit_verify_result *res, struct rp_error **err)
{
  const char *const *paths = vx->paths;
  cleanup_free char *m = NULL;
  if (c->count == 0)
    m = rp_xasprintf("%s: no lines, so no signed checkpoint",
                     paths[n_paths - 1]);
  else if (c->checkpoints == 0)
    m = rp_xasprintf("%s:1: %" PRIu64
                     " line%s and no signed checkpoint (signing was off when "
                     "written, or the checkpoints were taken out)",
                     paths[0], c->count, c->count == 1 ? "" : "s");
  else if (c->count > c->cp_count)
    m = rp_xasprintf("%s:%" PRIu64 ": %" PRIu64
                     " line%s after the last signed checkpoint (%s:%" PRIu64
                     ") %s not signed: the log was cut after it, or its "
                     "agent crashed or still runs",
                     paths[c->unsigned_file], c->unsigned_line,
                     c->count - c->cp_count,
                     c->count - c->cp_count == 1 ? "" : "s", paths[c->cp_file],
                     c->cp_line, c->count - c->cp_count == 1 ? "is" : "are");
  else if (strcmp(c->cp_reason, "stop") != 0)
    m = rp_xasprintf("%s:%" PRIu64
                     ": the log ends at a checkpoint written while the agent "
                     "ran (reason %s), not at its stop: lines after it may "
                     "have been cut off, or its agent crashed or still runs",
                     paths[c->cp_file], c->cp_line, c->cp_reason);
  res->unsigned_tail = c->count - c->cp_count;
  res->sealed = m == NULL;
  if (!m)
    return 0;
  if (allow) {
    note_add(vx->ns, "%s (allowed: --allow-unsigned-tail)", m);
    return 0;
  }
  return rp_error_set(err, RP_ETAMPER,
                      "%s (--allow-unsigned-tail accepts a live log)", m);
}

int
rp_audit_verify_with(const char *const *paths, size_t n_paths,
                     const struct rp_audit_verify_options *opt,
                     struct rp_audit_verify_result *res, struct rp_error **err)
{
  memset(res, 0, sizeof(*res));
  if (n_paths == 0)
    return rp_error_set(err, RP_ECONFIG, "verify: no audit log given");
  struct notes ns = {.text = {.max = NOTES_MAX_BYTES}};
  struct vctx vx = {.paths = paths, .ns = &ns};
  size_t n_keys = opt ? opt->n_keys : 0;
  vx.keys = rp_xcalloc(n_keys + 1, sizeof(*vx.keys));
  int rc = 0;
  for (size_t i = 0; i < n_keys && rc == 0; i++) {
    rc = rp_audit_key_load(opt->keys[i], false, &vx.keys[i], err);
    if (rc == 0)
      vx.n_keys++;
    else
      rp_error_prefix(err, "verify --key");
  }
  struct chain c = {.seq = 0};
  memset(c.hash, '0', 64);
  c.hash[64] = '\0';
  uint64_t total = 0;
  for (size_t i = 0; i < n_paths && rc == 0; i++)
    rc = verify_file(&vx, i, &c, &total, err);
  if (rc == 0 && vx.n_keys)
    rc = end_check(&vx, n_paths, &c, opt->allow_unsigned_tail, res, err);
  if (ns.n > MAX_NOTES)
    rp_buf_addf(&ns.text, "(%u more notes)\n", ns.n - MAX_NOTES);
  for (size_t i = 0; i < vx.n_keys; i++)
    rp_audit_key_free(vx.keys[i]);
  free(vx.keys);
  res->lines = c.count;
  res->skipped = total - c.count;
  res->checkpoints = c.checkpoints;
  res->notes = rp_buf_take(&ns.text);
  return rc;
}

int
rp_audit_verify_detail(const char *const *paths, size_t n_paths,
                       const char *pubkey_path,
                       struct rp_audit_verify_result *res,
                       struct rp_error **err)
{
  struct rp_audit_verify_options opt = {.keys = &pubkey_path,
                                        .n_keys = pubkey_path ? 1 : 0};
  return rp_audit_verify_with(paths, n_paths, &opt, res, err);
}

void
rp_audit_verify_result_clear(struct rp_audit_verify_result *res)
{
  if (!res)
    return;
  free(res->notes);
  memset(res, 0, sizeof(*res));
}

int
rp_audit_verify(const char *const *paths, size_t n_paths,
                const char *pubkey_path, uint64_t *lines_out,
                struct rp_error **err)
{
  struct rp_audit_verify_result res;
  int rc = rp_audit_verify_detail(paths, n_paths, pubkey_path, &res, err);
  if (lines_out)
    *lines_out = res.lines;
  rp_audit_verify_result_clear(&res);
  return rc;
}

/* --- read --------------------------------------------------------------- */

int
rp_audit_read(const char *path, rp_audit_each_cb cb, void *arg,
              uint64_t *bad_lines, struct rp_error **err)
{
  if (bad_lines)
    *bad_lines = 0;
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return rp_error_set(err, errno, "open %s: %s", path, strerror(errno));
  struct reader r;
  reader_init(&r, fd);
  int result = 0;
  for (;;) {
    struct line l;
    int rc = reader_next(&r, &l);
    if (rc < 0) {
      result = rp_error_set(err, -rc, "read %s: %s", path, strerror(-rc));
      break;
    }
    if (rc == 0)
      break;
    cleanup_json json_t *obj =
        l.too_long ? NULL
                   : json_loadb(l.p, l.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(obj)) {
      if (bad_lines)
        (*bad_lines)++;
      continue;
    }
    result = cb(arg, obj);
    if (result != 0)
      break;
  }
  reader_free(&r);
  return result;
}
