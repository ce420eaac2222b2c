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
 * The consistent file is also reopened by the writer (rp_audit_open, as
 * at every start of the agent), which appends one line.
 *
 * Properties (audit.h): verify accepts without skipping anything exactly
 * the files that are one straight chain (checked here independently, line
 * by line); a break names "FILE:LINE:" within the file; read sees every
 * line, as an object or as a bad line; the writer opens every log that
 * verifies (or whose only flaw is a torn tail, which it records), keeps
 * the old bytes, and what it appends verifies; it never adds a break. */
#include "fuzz.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

/* The number of the last complete line that passes rp_audit_line_parse on
 * its own (0 when none does). */
static uint64_t
last_intact_line(const char *p, size_t size)
{
  uint64_t line = 0, last = 0;
  size_t start = 0;
  const char *nl;
  while (start < size && (nl = memchr(p + start, '\n', size - start))) {
    size_t len = (size_t)(nl - (p + start));
    struct rp_audit_line l;
    cleanup_free char *reason = NULL;
    line++;
    if (len <= RP_AUDIT_MAX_LINE &&
        rp_audit_line_parse(p + start, len, &l, &reason) == 0) {
      last = line;
      rp_audit_line_clear(&l);
    }
    start += len + 1;
  }
  return last;
}

static int
read_line_cb(void *arg, const json_t *line)
{
  uint64_t *n = arg;
  RP_FUZZ_CHECK(json_is_object(line));
  (*n)++;
  return 0;
}

/* A file holding the bytes, for the readers that take a path. */
struct memfile {
  int fd;
  char path[40];
};

static void
memfile_open(struct memfile *m, const char *data, size_t size)
{
  m->fd = memfd_create("fuzz-audit", MFD_CLOEXEC);
  RP_FUZZ_CHECK(m->fd >= 0);
  RP_FUZZ_CHECK(write(m->fd, data, size) == (ssize_t)size);
  snprintf(m->path, sizeof(m->path), "/proc/self/fd/%d", m->fd);
}

/* What verify said of one file. */
struct verdict {
  int rc;
  uint64_t lines, skipped;
  uint64_t break_line; /* when rc is -1 */
};

/* rp_audit_verify_detail on path, holding `total` lines, and what its
 * answer promises. */
static struct verdict
verify_path(const char *path, uint64_t total)
{
  const char *const paths[] = {path};
  struct rp_audit_verify_result res;
  cleanup_error struct rp_error *err = NULL;
  struct verdict v = {.rc = rp_audit_verify_detail(paths, 1, NULL, &res, &err)};
  v.lines = res.lines;
  v.skipped = res.skipped;
  if (v.rc == 0) {
    RP_FUZZ_CHECK(err == NULL);
    RP_FUZZ_CHECK(res.lines + res.skipped == total);
    RP_FUZZ_CHECK((res.skipped == 0) == (res.notes == NULL));
  } else {
    int end = 0;
    RP_FUZZ_CHECK(v.rc == -1 && err && err->code == RP_ETAMPER);
    RP_FUZZ_CHECK(strncmp(err->message, path, strlen(path)) == 0);
    RP_FUZZ_CHECK(sscanf(err->message + strlen(path), ":%" SCNu64 ": %n",
                         &v.break_line, &end) == 1 &&
                  end > 0);
    RP_FUZZ_CHECK(v.break_line >= 1 && v.break_line <= total);
  }
  rp_audit_verify_result_clear(&res);
  return v;
}

static struct verdict
verify_bytes(const char *data, size_t size)
{
  struct memfile m;
  memfile_open(&m, data, size);
  struct verdict v = verify_path(m.path, count_lines(data, size));
  close(m.fd);
  return v;
}

/* The log as it came: verify (against the independent straight-chain
 * check) and read, which does not look at hashes. */
static void
check_raw(const char *data, size_t size)
{
  struct memfile m;
  memfile_open(&m, data, size);
  uint64_t total = count_lines(data, size);
  struct verdict v = verify_path(m.path, total);
  RP_FUZZ_CHECK((v.rc == 0 && v.skipped == 0) == straight_chain(data, size));

  uint64_t seen = 0, bad_lines = 0;
  cleanup_error struct rp_error *err = NULL;
  RP_FUZZ_CHECK(rp_audit_read(m.path, read_line_cb, &seen, &bad_lines, &err) ==
                0);
  RP_FUZZ_CHECK(seen + bad_lines == total);
  close(m.fd);
}

static char work_dir_path[64];

static void
remove_work_dir(void)
{
  rmdir(work_dir_path);
}

/* A directory for the writer's files, made once per process. */
static const char *
work_dir(void)
{
  char *dir = work_dir_path;
  if (dir[0] == '\0') {
    /* tmpfs when there is one: the writer fsyncs every line. */
    snprintf(dir, sizeof(work_dir_path), "%s/rp-fuzz-audit.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    RP_FUZZ_CHECK(mkdtemp(dir) != NULL);
    atexit(remove_work_dir);
  }
  return dir;
}

/* The writer reopening the log (a restart, after a crash or not): it
 * continues the chain from the last intact line, records a torn tail, or
 * refuses (RP_ETAMPER "FILE:LINE:"); what it appends never breaks the
 * chain.  `before` is verify's answer for the file, `intact_prefix` for
 * its complete lines when it ends in a torn tail. */
static void
check_reopen(const char *data, size_t size, struct verdict before,
             const struct verdict *intact_prefix)
{
  cleanup_free char *path = rp_xasprintf("%s/audit.jsonl", work_dir());
  {
    cleanup_close int fd =
        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    RP_FUZZ_CHECK(fd >= 0 && write(fd, data, size) == (ssize_t)size);
  }
  struct rp_audit *a = NULL;
  cleanup_free char *warning = NULL;
  cleanup_error struct rp_error *err = NULL;
  bool must_open = before.rc == 0 || (intact_prefix && intact_prefix->rc == 0);
  if (rp_audit_open(path, &a, &warning, &err) != 0) {
    RP_FUZZ_CHECK(!must_open);
    RP_FUZZ_CHECK(err && err->message);
    if (err->code == RP_ETAMPER)
      RP_FUZZ_CHECK(strncmp(err->message, path, strlen(path)) == 0 &&
                    err->message[strlen(path)] == ':');
    unlink(path);
    return;
  }
  bool torn = size > 0 && data[size - 1] != '\n';
  RP_FUZZ_CHECK((warning != NULL) == torn);
  RP_FUZZ_CHECK(rp_audit_append_sync(a, "agent.start", NULL, NULL) == 0);
  rp_audit_close(a);

  size_t after_size = 0;
  cleanup_free char *after = NULL;
  {
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    RP_FUZZ_CHECK(fd >= 0 && fstat(fd, &st) == 0);
    after_size = (size_t)st.st_size;
    after = rp_xmalloc(after_size + 1);
    RP_FUZZ_CHECK(read(fd, after, after_size) == (ssize_t)after_size);
  }
  unlink(path);
  /* The old bytes are kept as they were. */
  RP_FUZZ_CHECK(after_size > size && memcmp(after, data, size) == 0);
  struct verdict v = verify_bytes(after, after_size);
  if (before.rc == 0) {
    RP_FUZZ_CHECK(v.rc == 0 && v.lines == before.lines + 1 &&
                  v.skipped == before.skipped);
  } else if (torn && intact_prefix->rc == 0) {
    /* The fragment is skipped, acknowledged by audit.torn. */
    RP_FUZZ_CHECK(v.rc == 0 && v.lines == intact_prefix->lines + 2 &&
                  v.skipped == intact_prefix->skipped + 1);
  } else if (v.rc == 0) {
    /* Broken before, intact now: only if the writer's audit.torn took in
     * the break, which it does for the complete lines after the last
     * intact one (fragments that earlier opens terminated). */
    RP_FUZZ_CHECK(torn && before.break_line > last_intact_line(data, size));
  } else {
    /* Still broken, and never in what was appended. */
    RP_FUZZ_CHECK(v.break_line <= count_lines(data, size));
  }
}

/* The log made consistent: verify, the plain verify, and a writer that
 * reopens it. */
static void
check_consistent(const char *data, size_t size)
{
  struct memfile m;
  memfile_open(&m, data, size);
  struct verdict v = verify_path(m.path, count_lines(data, size));
  RP_FUZZ_CHECK((v.rc == 0 && v.skipped == 0) == straight_chain(data, size));
  uint64_t lines = 0;
  const char *const paths[] = {m.path};
  RP_FUZZ_CHECK(rp_audit_verify(paths, 1, NULL, &lines, NULL) == v.rc);
  RP_FUZZ_CHECK(lines == v.lines);
  close(m.fd);

  bool torn = size > 0 && data[size - 1] != '\n';
  struct verdict prefix = {.rc = -1};
  if (torn) {
    const char *nl = memrchr(data, '\n', size);
    prefix = verify_bytes(data, nl ? (size_t)(nl - data) + 1 : 0);
  }
  check_reopen(data, size, v, torn ? &prefix : NULL);
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

  check_raw(text, size);
  cleanup_free char *fixed = rp_xmalloc(size + 1);
  memcpy(fixed, data, size);
  make_consistent(fixed, size);
  check_consistent(fixed, size);
  return 0;
}

#ifndef RP_FUZZ_NO_MAIN
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return rp_fuzz_audit_verify_run(data, size);
}
#endif
