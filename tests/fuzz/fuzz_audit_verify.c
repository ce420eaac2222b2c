/* The audit log's readers on any bytes: rp_audit_line_parse on the input
 * as one line, rp_audit_verify and rp_audit_read on a file holding it.
 *
 * A mutated line almost never keeps a valid SHA-256, so a file that only
 * went through the mutator stops verify at its first line.  To reach the
 * chain logic (seq, prev, torn tails acknowledged by audit.torn) the file
 * is verified a second time after make_consistent() rewrote what a writer
 * would have computed: each line's hash, each prev that named an earlier
 * line's hash, each audit.torn line's sha256.  Everything else (seq, the
 * order of members, offsets, lengths, torn bytes) stays as the fuzzer
 * made it.
 *
 * Properties (audit.h): verify accepts without skipping anything exactly
 * the files that are one straight chain (checked here independently, line
 * by line); a break names "FILE:LINE:" within the file; read sees every
 * line, as an object or as a bad line. */
#include "fuzz.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audit.h"
#include "util.h"

#define HASH_HEAD ",\"hash\":\""
#define HASH_HEAD_LEN (sizeof(HASH_HEAD) - 1)
/* `,"hash":"` + 64 hex digits + `"}` */
#define HASH_SUFFIX_LEN (HASH_HEAD_LEN + 64 + 2)

static bool
hex64_at(const char *p, const char *end)
{
  if (end - p < 64)
    return false;
  for (int i = 0; i < 64; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
      return false;
  return true;
}

/* Where a member `"key":"<64 hex>"` holds its digits in [p, end), or NULL. */
static char *
hex_member(char *p, char *end, const char *key)
{
  char head[32];
  int n = snprintf(head, sizeof(head), "\"%s\":\"", key);
  char *at = memmem(p, (size_t)(end - p), head, (size_t)n);
  if (!at || !hex64_at(at + n, end))
    return NULL;
  return at + n;
}

/* The hash a writer would give the line [p, p + len) that ends with the
 * hash member. */
static void
line_hash(const char *p, size_t len, char hex[65])
{
  size_t keep = len - HASH_SUFFIX_LEN;
  cleanup_free char *buf = rp_xmalloc(keep + 1);
  memcpy(buf, p, keep);
  buf[keep] = '}';
  rp_audit_sha256_hex(buf, keep + 1, hex);
}

static void
make_consistent(char *buf, size_t size)
{
  /* Each line's hash as written -> as rewritten. */
  cleanup_json json_t *renamed = json_object();
  size_t start = 0;
  while (start < size) {
    char *line = buf + start;
    char *nl = memchr(line, '\n', size - start);
    char *end = nl ? nl : buf + size;
    size_t len = (size_t)(end - line);

    char *prev = hex_member(line, end, "prev");
    if (prev) {
      char old[65];
      memcpy(old, prev, 64);
      old[64] = '\0';
      const char *now = json_string_value(json_object_get(renamed, old));
      if (now)
        memcpy(prev, now, 64);
    }

    char *sha = hex_member(line, end, "sha256");
    if (sha && memmem(line, len, "\"audit.torn\"", 12)) {
      cleanup_json json_t *obj = json_loadb(line, len, 0, NULL);
      json_int_t off = json_integer_value(json_object_get(obj, "offset"));
      json_int_t n = json_integer_value(json_object_get(obj, "length"));
      if (off >= 0 && n >= 0 && (uint64_t)off + (uint64_t)n <= start) {
        char hex[65];
        rp_audit_sha256_hex(buf + off, (size_t)n, hex);
        memcpy(sha, hex, 64);
      }
    }

    if (len >= HASH_SUFFIX_LEN &&
        memcmp(end - HASH_SUFFIX_LEN, HASH_HEAD, HASH_HEAD_LEN) == 0 &&
        hex64_at(end - 66, end) && memcmp(end - 2, "\"}", 2) == 0) {
      char *hash = end - 66, old[65], hex[65];
      memcpy(old, hash, 64);
      old[64] = '\0';
      line_hash(line, len, hex);
      memcpy(hash, hex, 64);
      json_object_set_new(renamed, old, json_string(hex));
    }
    start += len + 1;
  }
}

/* Lines in the file: every "\n" ends one, and unterminated bytes at the end
 * make one more. */
static uint64_t
count_lines(const char *p, size_t size)
{
  uint64_t n = 0;
  for (size_t i = 0; i < size; i++)
    n += p[i] == '\n';
  return n + (size > 0 && p[size - 1] != '\n');
}

/* Whether the file is one chain from its first line, with no audit.torn
 * line and no torn tail: what verify must accept as it is. */
static bool
straight_chain(const char *p, size_t size)
{
  if (size > 0 && p[size - 1] != '\n')
    return false;
  char prev[65];
  memset(prev, '0', 64);
  prev[64] = '\0';
  uint64_t seq = 0;
  size_t start = 0;
  while (start < size) {
    const char *nl = memchr(p + start, '\n', size - start);
    size_t len = (size_t)(nl - (p + start));
    struct rp_audit_line l;
    cleanup_free char *reason = NULL;
    bool ok = len <= RP_AUDIT_MAX_LINE &&
              rp_audit_line_parse(p + start, len, &l, &reason) == 0;
    if (ok) {
      ok = !l.torn && l.seq == seq + 1 && strcmp(l.prev, prev) == 0;
      seq = l.seq;
      memcpy(prev, l.hash, 65);
      rp_audit_line_clear(&l);
    }
    if (!ok)
      return false;
    start += len + 1;
  }
  return true;
}

static int
read_line_cb(void *arg, const json_t *line)
{
  uint64_t *n = arg;
  RP_FUZZ_CHECK(json_is_object(line));
  (*n)++;
  return 0;
}

/* Each reader allocates a buffer for the longest line (1 MiB), which ASan
 * makes slow: each pass runs what it can reach, verify_detail always, read
 * on the file as it came (it does not look at hashes), the plain verify on
 * the consistent one. */
static void
check_file(const char *data, size_t size, bool consistent)
{
  cleanup_close int fd = memfd_create("fuzz-audit", MFD_CLOEXEC);
  RP_FUZZ_CHECK(fd >= 0);
  RP_FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
  char path[40];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  const char *const paths[] = {path};
  uint64_t total = count_lines(data, size);

  struct rp_audit_verify_result res;
  cleanup_error struct rp_error *err = NULL;
  int rc = rp_audit_verify_detail(paths, 1, NULL, &res, &err);
  if (rc == 0) {
    RP_FUZZ_CHECK(err == NULL);
    RP_FUZZ_CHECK(res.lines + res.skipped == total);
    RP_FUZZ_CHECK((res.skipped == 0) == (res.notes == NULL));
  } else {
    uint64_t at = 0;
    int end = 0;
    RP_FUZZ_CHECK(rc == -1 && err && err->code == RP_ETAMPER);
    RP_FUZZ_CHECK(strncmp(err->message, path, strlen(path)) == 0);
    RP_FUZZ_CHECK(sscanf(err->message + strlen(path), ":%" SCNu64 ": %n", &at,
                         &end) == 1 &&
                  end > 0);
    RP_FUZZ_CHECK(at >= 1 && at <= total);
  }
  RP_FUZZ_CHECK((rc == 0 && res.skipped == 0) == straight_chain(data, size));
  uint64_t res_lines = res.lines;
  rp_audit_verify_result_clear(&res);

  if (consistent) {
    /* The plain verify agrees. */
    uint64_t lines = 0;
    RP_FUZZ_CHECK(rp_audit_verify(paths, 1, NULL, &lines, NULL) == rc);
    RP_FUZZ_CHECK(lines == res_lines);
    return;
  }
  uint64_t seen = 0, bad_lines = 0;
  cleanup_error struct rp_error *rerr = NULL;
  RP_FUZZ_CHECK(rp_audit_read(path, read_line_cb, &seen, &bad_lines, &rerr) ==
                0);
  RP_FUZZ_CHECK(seen + bad_lines == total);
}

int
rp_fuzz_audit_verify_run(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;

  /* The input as one line (not NUL-terminated: len must be honoured). */
  struct rp_audit_line l;
  char *reason = NULL;
  if (rp_audit_line_parse(text, size, &l, &reason) == 0) {
    RP_FUZZ_CHECK(reason == NULL && json_is_object(l.obj));
    RP_FUZZ_CHECK(l.seq >= 1 && l.event && l.event[0]);
    RP_FUZZ_CHECK(l.torn == (strcmp(l.event, "audit.torn") == 0));
    RP_FUZZ_CHECK(size >= HASH_SUFFIX_LEN);
    char hex[65];
    line_hash(text, size, hex);
    RP_FUZZ_CHECK(strcmp(hex, l.hash) == 0);
    rp_audit_line_clear(&l);
  } else {
    RP_FUZZ_CHECK(reason != NULL);
    free(reason);
  }

  check_file(text, size, false);
  cleanup_free char *fixed = rp_xmalloc(size + 1);
  memcpy(fixed, data, size);
  make_consistent(fixed, size);
  if (memcmp(fixed, data, size) != 0)
    check_file(fixed, size, true);
  return 0;
}

#ifndef RP_FUZZ_NO_MAIN
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return rp_fuzz_audit_verify_run(data, size);
}
#endif
