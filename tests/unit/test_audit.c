/* The audit log: line format and chain, reopening, every kind of tampering
 * that verify must name, torn tails, asynchronous appends on a real loop,
 * and failing closed with a retry that leaves no gap.  Every test works in
 * its own mkdtemp directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "audit.h"
#include "util.h"

/* --- helpers ------------------------------------------------------------ */

struct dir {
  char path[64];
};

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static int
setup(void **state)
{
  struct dir *d = rp_xcalloc(1, sizeof(*d));
  snprintf(d->path, sizeof(d->path), "/tmp/test_audit.XXXXXX");
  if (!mkdtemp(d->path))
    return -1;
  *state = d;
  return 0;
}

static int
teardown(void **state)
{
  struct dir *d = *state;
  nftw(d->path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(d);
  return 0;
}

static char *
in_dir(void **state, const char *name)
{
  struct dir *d = *state;
  return rp_xasprintf("%s/%s", d->path, name);
}

static char *
slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = rp_xmalloc((size_t)n + 1);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  if (len)
    *len = (size_t)n;
  return buf;
}

static void
spit(const char *path, const char *data, size_t len, const char *mode)
{
  FILE *f = fopen(path, mode);
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static off_t
file_size(const char *path)
{
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return st.st_size;
}

/* The lines of a file, each with its newline; *n of them. */
struct lines {
  char **v;
  size_t n;
};

static struct lines
split(const char *path)
{
  cleanup_free char *all = slurp(path, NULL);
  struct lines ls = {0};
  for (char *p = all; *p;) {
    char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
    ls.v = rp_xrealloc(ls.v, (ls.n + 1) * sizeof(char *));
    ls.v[ls.n++] = rp_xstrndup(p, n);
    p += n;
  }
  return ls;
}

static void
join(const char *path, const struct lines *ls)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (size_t i = 0; i < ls->n; i++)
    fputs(ls->v[i], f);
  fclose(f);
}

static void
lines_free(struct lines *ls)
{
  for (size_t i = 0; i < ls->n; i++)
    free(ls->v[i]);
  free(ls->v);
}

static void
sha256_hex(const char *p, size_t n, char hex[65])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
  for (unsigned i = 0; i < len; i++)
    sprintf(hex + 2 * i, "%02x", md[i]);
}

/* A well-formed line built without the code under test: body is the JSON
 * object without hash; the hash member goes before its closing brace. */
static char *
forge(const char *body)
{
  char hex[65];
  size_t n = strlen(body);
  sha256_hex(body, n, hex);
  return rp_xasprintf("%.*s,\"hash\":\"%s\"}\n", (int)n - 1, body, hex);
}

/* The value of a string member in a line, found textually. */
static char *
member(const char *line, const char *key)
{
  cleanup_free char *pat = rp_xasprintf("\"%s\":\"", key);
  const char *p = strstr(line, pat);
  assert_non_null(p);
  p += strlen(pat);
  return rp_xstrndup(p, strcspn(p, "\""));
}

static struct rp_audit *
open_ok(const char *path, char **warning)
{
  struct rp_audit *a = NULL;
  cleanup_error struct rp_error *err = NULL;
  int rc = rp_audit_open(path, &a, warning, &err);
  if (rc != 0)
    fail_msg("open %s: %s", path, err->message);
  return a;
}

static void
append_ok(struct rp_audit *a, int i)
{
  cleanup_json json_t *f = json_pack("{s:i, s:s, s:s}", "i", i, "name", "web-1",
                                     "kind", "container");
  cleanup_error struct rp_error *err = NULL;
  if (rp_audit_append_sync(a, "recycle.begin", f, &err) != 0)
    fail_msg("append %d: %s", i, err->message);
}

/* A closed log of n lines at path. */
static void
make_log(const char *path, int n)
{
  struct rp_audit *a = open_ok(path, NULL);
  for (int i = 0; i < n; i++)
    append_ok(a, i);
  rp_audit_close(a);
}

static void
verify_ok(const char *const *paths, size_t n, uint64_t lines, uint64_t skipped)
{
  struct rp_audit_verify_result res;
  cleanup_error struct rp_error *err = NULL;
  int rc = rp_audit_verify_detail(paths, n, NULL, &res, &err);
  if (rc != 0)
    fail_msg("verify: %s", err->message);
  assert_int_equal(res.lines, lines);
  assert_int_equal(res.skipped, skipped);
  if (skipped == 0)
    assert_null(res.notes);
  rp_audit_verify_result_clear(&res);
}

/* Verify must fail with RP_ETAMPER and exactly this message. */
static void
verify_fails(const char *path, const char *want)
{
  cleanup_error struct rp_error *err = NULL;
  uint64_t lines = 0;
  assert_int_equal(rp_audit_verify(&path, 1, NULL, &lines, &err), -1);
  assert_non_null(err);
  if (err->code != RP_ETAMPER || strcmp(err->message, want) != 0)
    fail_msg("verify: got %d \"%s\", want \"%s\"", err->code, err->message,
             want);
}

/* --- format and chain --------------------------------------------------- */

static void
test_chain_of_1000_lines(void **state)
{
  cleanup_free char *path = in_dir(state, "new/dir/audit.jsonl");
  make_log(path, 1000);
  const char *p = path;
  verify_ok(&p, 1, 1000, 0);

  /* Created 0600 in new directories 0700, whatever the umask allows. */
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  cleanup_free char *dir = in_dir(state, "new/dir");
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0700);

  /* Each line checked here independently of the code under test: member
   * order, nanosecond UTC time, seq from 1, prev chaining, and the hash of
   * the bytes with the hash member cut out. */
  struct lines ls = split(path);
  assert_int_equal(ls.n, 1000);
  char prev[65];
  memset(prev, '0', 64);
  prev[64] = '\0';
  for (size_t i = 0; i < ls.n; i++) {
    const char *l = ls.v[i];
    size_t n = strlen(l);
    assert_true(n > 80 && l[n - 1] == '\n');
    assert_memory_equal(l, "{\"ts\":\"", 7);
    /* 2026-11-30T03:06:43.123456789Z */
    const char *ts = l + 7;
    assert_true(ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' &&
                ts[29] == 'Z' && ts[30] == '"');
    for (int k = 20; k < 29; k++)
      assert_true(ts[k] >= '0' && ts[k] <= '9');
    cleanup_free char *seq = rp_xasprintf(
        "\",\"seq\":%zu,\"event\":\"recycle.begin\",\"i\":%zu,"
        "\"name\":\"web-1\",\"kind\":\"container\",\"prev\":\"%s\","
        "\"hash\":\"",
        i + 1, i, prev);
    assert_memory_equal(ts + 30, seq, strlen(seq));
    cleanup_free char *hash = member(l, "hash");
    assert_int_equal(strlen(hash), 64);
    /* hashed bytes: everything before ,"hash":"…" then "}" */
    size_t cut = n - 1 - (9 + 64 + 2);
    cleanup_free char *body = rp_xasprintf("%.*s}", (int)cut, l);
    char want[65];
    sha256_hex(body, strlen(body), want);
    assert_string_equal(hash, want);
    memcpy(prev, hash, 65);
  }
  lines_free(&ls);
}

static void
test_fields_keep_order_and_utf8(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit *a = open_ok(path, NULL);
  cleanup_json json_t *f = json_object();
  json_object_set_new(f, "name", json_string("wéb-ü"));
  json_object_set_new(f, "z", json_integer(1));
  json_object_set_new(f, "a", json_real(2.5));
  json_object_set_new(f, "ok", json_true());
  assert_int_equal(rp_audit_append_sync(a, "x.y", f, NULL), 0);
  rp_audit_close(a);
  cleanup_free char *all = slurp(path, NULL);
  assert_non_null(strstr(all, "\"seq\":1,\"event\":\"x.y\",\"name\":"
                              "\"wéb-ü\",\"z\":1,\"a\":2.5,\"ok\":true,"
                              "\"prev\":\"0000"));
  const char *p = path;
  verify_ok(&p, 1, 1, 0);
}

static void
test_reopen_continues(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  make_log(path, 10);
  struct lines ls = split(path);
  cleanup_free char *last = member(ls.v[9], "hash");
  lines_free(&ls);

  char *warning = NULL;
  struct rp_audit *a = open_ok(path, &warning);
  assert_null(warning);
  assert_int_equal(rp_audit_next_seq(a), 11);
  assert_string_equal(rp_audit_last_hash(a), last);
  for (int i = 0; i < 5; i++)
    append_ok(a, i);
  rp_audit_close(a);
  const char *p = path;
  verify_ok(&p, 1, 15, 0);

  /* An empty file is a new log. */
  cleanup_free char *empty = in_dir(state, "empty.jsonl");
  spit(empty, "", 0, "wb");
  a = open_ok(empty, NULL);
  assert_int_equal(rp_audit_next_seq(a), 1);
  rp_audit_close(a);
}

static void
test_second_writer_refused(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit *a = open_ok(path, NULL);
  struct rp_audit *b = NULL;
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_open(path, &b, NULL, &err), -1);
  assert_null(b);
  assert_int_equal(err->code, EBUSY);
  rp_audit_close(a);
}

/* --- tampering ---------------------------------------------------------- */

/* A fresh 10-line log at path, returned as lines to edit. */
static struct lines
fresh(const char *path)
{
  unlink(path);
  make_log(path, 10);
  return split(path);
}

static void
test_tampering_is_named(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  cleanup_free char *want = NULL;
#define WANT(line, reason)                                                     \
  (free(want), want = rp_xasprintf("%s:%d: %s", path, line, reason))

  /* One byte of a field. */
  struct lines ls = fresh(path);
  char *w = strstr(ls.v[4], "web-1");
  w[0] = 'W';
  join(path, &ls);
  verify_fails(path, WANT(5, "hash mismatch"));
  lines_free(&ls);

  /* One digit of the hash. */
  ls = fresh(path);
  char *h = strstr(ls.v[4], "\"hash\":\"") + 8;
  h[10] = h[10] == 'a' ? 'b' : 'a';
  join(path, &ls);
  verify_fails(path, WANT(5, "hash mismatch"));
  lines_free(&ls);

  /* A middle line deleted. */
  ls = fresh(path);
  free(ls.v[4]);
  memmove(&ls.v[4], &ls.v[5], 5 * sizeof(char *));
  ls.n--;
  join(path, &ls);
  verify_fails(path, WANT(5, "seq jumps from 4 to 6"));
  lines_free(&ls);

  /* The first line deleted. */
  ls = fresh(path);
  free(ls.v[0]);
  memmove(&ls.v[0], &ls.v[1], 9 * sizeof(char *));
  ls.n--;
  join(path, &ls);
  verify_fails(path, WANT(1, "seq is 2 on the first line of the log, not 1"));
  lines_free(&ls);

  /* A line inserted: well-formed and chained to line 4, so the original
   * line 5 after it is the break. */
  ls = fresh(path);
  cleanup_free char *h4 = member(ls.v[3], "hash");
  cleanup_free char *body = rp_xasprintf(
      "{\"ts\":\"2026-11-30T03:06:43.123456789Z\",\"seq\":5,\"event\":"
      "\"recycle.done\",\"prev\":\"%s\"}",
      h4);
  ls.v = rp_xrealloc(ls.v, 11 * sizeof(char *));
  memmove(&ls.v[5], &ls.v[4], 6 * sizeof(char *));
  ls.v[4] = forge(body);
  ls.n++;
  join(path, &ls);
  verify_fails(path, WANT(6, "seq goes back from 5 to 5"));
  lines_free(&ls);

  /* A line inserted that does not parse. */
  ls = fresh(path);
  ls.v = rp_xrealloc(ls.v, 11 * sizeof(char *));
  memmove(&ls.v[5], &ls.v[4], 6 * sizeof(char *));
  ls.v[4] = rp_xstrdup("{\"ts\":\n");
  ls.n++;
  join(path, &ls);
  cleanup_error struct rp_error *err = NULL;
  const char *p = path;
  assert_int_equal(rp_audit_verify(&p, 1, NULL, NULL, &err), -1);
  assert_int_equal(err->code, RP_ETAMPER);
  WANT(5, "not JSON");
  assert_memory_equal(err->message, want, strlen(want));
  lines_free(&ls);

  /* A line forged with a correct hash but the wrong prev. */
  ls = fresh(path);
  cleanup_free char *h3 = member(ls.v[2], "hash");
  cleanup_free char *body2 = rp_xasprintf(
      "{\"ts\":\"2026-11-30T03:06:43.123456789Z\",\"seq\":5,\"event\":"
      "\"recycle.done\",\"prev\":\"%s\"}",
      h3);
  free(ls.v[4]);
  ls.v[4] = forge(body2);
  join(path, &ls);
  verify_fails(path, WANT(5, "prev does not match line 4's hash"));
  lines_free(&ls);

  /* Two lines swapped. */
  ls = fresh(path);
  char *t = ls.v[4];
  ls.v[4] = ls.v[5];
  ls.v[5] = t;
  join(path, &ls);
  verify_fails(path, WANT(5, "seq jumps from 4 to 6"));
  lines_free(&ls);

  /* A line duplicated. */
  ls = fresh(path);
  ls.v = rp_xrealloc(ls.v, 11 * sizeof(char *));
  memmove(&ls.v[5], &ls.v[4], 6 * sizeof(char *));
  ls.v[4] = rp_xstrdup(ls.v[5]);
  ls.n++;
  join(path, &ls);
  verify_fails(path, WANT(6, "seq goes back from 5 to 5"));
  lines_free(&ls);

  /* The hash moved away from the end. */
  ls = fresh(path);
  cleanup_free char *h5 = member(ls.v[4], "hash");
  free(ls.v[4]);
  cleanup_free char *body3 =
      rp_xasprintf("{\"ts\":\"2026-11-30T03:06:43Z\",\"seq\":5,\"event\":"
                   "\"e\",\"hash\":\"%s\",\"prev\":\"%s\"}\n",
                   h5, h5);
  ls.v[4] = rp_xstrdup(body3);
  join(path, &ls);
  verify_fails(path, WANT(5, "\"hash\" is not the last member"));
  lines_free(&ls);

  /* The last line torn (cut short, no newline). */
  ls = fresh(path);
  ls.v[9][strlen(ls.v[9]) / 2] = '\0';
  join(path, &ls);
  verify_fails(path,
               WANT(10, "torn last line: no newline at the end of the file"));
  lines_free(&ls);
#undef WANT
}

static void
test_rotation_continues_chain(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  cleanup_free char *one = in_dir(state, "audit.1.jsonl");
  cleanup_free char *two = in_dir(state, "audit.2.jsonl");
  struct lines ls = fresh(path);
  struct lines a = {ls.v, 6}, b = {ls.v + 6, 4};
  join(one, &a);
  join(two, &b);
  const char *both[] = {one, two};
  verify_ok(both, 2, 10, 0);
  const char *reversed[] = {two, one};
  cleanup_free char *want =
      rp_xasprintf("%s:1: seq is 7 on the first line of the log, not 1", two);
  verify_fails(reversed[0], want);
  /* A line lost at the file boundary is named in the second file. */
  free(ls.v[6]);
  struct lines c = {ls.v + 7, 3};
  join(two, &c);
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_verify(both, 2, NULL, NULL, &err), -1);
  cleanup_free char *want2 = rp_xasprintf("%s:1: seq jumps from 6 to 8", two);
  assert_string_equal(err->message, want2);
  ls.v[6] = NULL;
  lines_free(&ls);
}

static void
test_verify_line_length(void **state)
{
  /* Long lines are fine (no 4 KiB limit)... */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit *a = open_ok(path, NULL);
  append_ok(a, 0);
  size_t big = 300 * 1024;
  char *s = rp_xmalloc(big + 1);
  memset(s, 'x', big);
  s[big] = '\0';
  cleanup_json json_t *f = json_pack("{s:s}", "blob", s);
  free(s);
  assert_int_equal(rp_audit_append_sync(a, "big", f, NULL), 0);
  append_ok(a, 2);
  /* ...up to 1 MiB: a longer one is refused, and nothing is written. */
  cleanup_json json_t *huge = json_object();
  s = rp_xmalloc(RP_AUDIT_MAX_LINE + 1);
  memset(s, 'y', RP_AUDIT_MAX_LINE);
  s[RP_AUDIT_MAX_LINE] = '\0';
  json_object_set_new(huge, "blob", json_string(s));
  free(s);
  off_t before = file_size(path);
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_append_sync(a, "huge", huge, &err), -1);
  assert_int_equal(err->code, E2BIG);
  assert_int_equal(file_size(path), before);
  assert_true(rp_audit_healthy(a));
  rp_audit_close(a);
  const char *p = path;
  verify_ok(&p, 1, 3, 0);

  /* verify reports a line over 1 MiB as bad rather than buffering it. */
  struct lines ls = split(path);
  size_t n = RP_AUDIT_MAX_LINE + 10;
  char *longline = rp_xmalloc(n + 2);
  memset(longline, 'z', n);
  longline[n] = '\n';
  longline[n + 1] = '\0';
  free(ls.v[1]);
  ls.v[1] = longline;
  join(path, &ls);
  lines_free(&ls);
  cleanup_free char *want =
      rp_xasprintf("%s:2: line longer than %d bytes", path, RP_AUDIT_MAX_LINE);
  verify_fails(path, want);
}

static void
test_verify_arguments(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  make_log(path, 2);
  const char *p = path;
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_verify(&p, 1, "/etc/reaper/audit.pub", NULL, &err),
                   -1);
  /* A key that cannot be read is a usage error naming it. */
  assert_int_equal(err->code, RP_ECONFIG);
  assert_non_null(strstr(err->message, "/etc/reaper/audit.pub: "));
  cleanup_error struct rp_error *err2 = NULL;
  assert_int_equal(rp_audit_verify(&p, 0, NULL, NULL, &err2), -1);
  assert_int_equal(err2->code, RP_ECONFIG);
  cleanup_error struct rp_error *err3 = NULL;
  cleanup_free char *missing = in_dir(state, "missing.jsonl");
  const char *m = missing;
  assert_int_equal(rp_audit_verify(&m, 1, NULL, NULL, &err3), -1);
  assert_int_equal(err3->code, ENOENT);
}

/* --- torn tails --------------------------------------------------------- */

static void
test_torn_tail_on_open(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  make_log(path, 10);
  /* Half of a line, as a crash mid-write leaves it. */
  struct lines ls = split(path);
  size_t half = strlen(ls.v[9]) / 2;
  spit(path, ls.v[9], half, "ab");
  lines_free(&ls);
  size_t before_len;
  cleanup_free char *before = slurp(path, &before_len);
  cleanup_free char *want = rp_xasprintf(
      "%s:11: torn last line: no newline at the end of the file", path);
  verify_fails(path, want);

  cleanup_free char *warning = NULL;
  struct rp_audit *a = open_ok(path, &warning);
  assert_non_null(warning);
  assert_non_null(strstr(warning, "torn tail"));
  assert_int_equal(rp_audit_next_seq(a), 12);
  for (int i = 0; i < 3; i++)
    append_ok(a, i);
  rp_audit_close(a);

  /* The torn bytes are kept as they were, only terminated. */
  size_t after_len;
  cleanup_free char *after = slurp(path, &after_len);
  assert_true(after_len > before_len);
  assert_memory_equal(after, before, before_len);
  assert_int_equal(after[before_len], '\n');

  /* The audit.torn line records them exactly, chained to line 10. */
  ls = split(path);
  assert_int_equal(ls.n, 15);
  const char *torn = ls.v[11];
  assert_non_null(strstr(torn, "\"seq\":11,\"event\":\"audit.torn\""));
  cleanup_free char *fields =
      rp_xasprintf("\"offset\":%zu,\"length\":%zu", before_len - half, half);
  assert_non_null(strstr(torn, fields));
  char sha[65];
  sha256_hex(before + before_len - half, half, sha);
  cleanup_free char *got_sha = member(torn, "sha256");
  assert_string_equal(got_sha, sha);
  cleanup_free char *h10 = member(ls.v[9], "hash");
  cleanup_free char *prev = member(torn, "prev");
  assert_string_equal(prev, h10);
  lines_free(&ls);

  struct rp_audit_verify_result res;
  const char *p = path;
  assert_int_equal(rp_audit_verify_detail(&p, 1, NULL, &res, NULL), 0);
  assert_int_equal(res.lines, 14);
  assert_int_equal(res.skipped, 1);
  assert_non_null(res.notes);
  cleanup_free char *note = rp_xasprintf(
      "%s:12: audit.torn acknowledges lines 11-11 (%zu bytes at offset %zu)",
      path, half, before_len - half);
  assert_non_null(strstr(res.notes, note));
  rp_audit_verify_result_clear(&res);
}

static void
test_torn_ack_must_match(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  make_log(path, 5);
  spit(path, "{\"ts\":\"2026", 11, "ab");
  rp_audit_close(open_ok(path, NULL));
  const char *p = path;
  verify_ok(&p, 1, 6, 1);
  /* Change one byte of the acknowledged fragment: the audit.torn line no
   * longer matches, and the fragment is the break. */
  struct lines ls = split(path);
  ls.v[5][3] = 'X';
  join(path, &ls);
  lines_free(&ls);
  cleanup_free char *want = rp_xasprintf("%s:6: not JSON", path);
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_verify(&p, 1, NULL, NULL, &err), -1);
  assert_memory_equal(err->message, want, strlen(want));
}

static void
test_torn_fragments_and_whole_file(void **state)
{
  /* Two fragments: a crash also cut the write that terminated the first. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  make_log(path, 3);
  const char frag[] = "{\"ts\":\"2026-11-30T03:06:43.1\n{\"ts\":\"2026-11-30T";
  spit(path, frag, strlen(frag), "ab");
  cleanup_free char *warning = NULL;
  struct rp_audit *a = open_ok(path, &warning);
  assert_non_null(warning);
  assert_int_equal(rp_audit_next_seq(a), 5);
  append_ok(a, 0);
  rp_audit_close(a);
  const char *p = path;
  verify_ok(&p, 1, 5, 2);

  /* A log that is nothing but a fragment: the first write never finished. */
  cleanup_free char *only = in_dir(state, "only.jsonl");
  spit(only, "{\"ts\":\"20", 9, "wb");
  free(warning);
  warning = NULL;
  a = open_ok(only, &warning);
  assert_non_null(warning);
  assert_int_equal(rp_audit_next_seq(a), 2);
  append_ok(a, 0);
  rp_audit_close(a);
  struct lines ls = split(only);
  assert_non_null(strstr(ls.v[1], "\"seq\":1,\"event\":\"audit.torn\","
                                  "\"offset\":0,\"length\":9"));
  lines_free(&ls);
  p = only;
  verify_ok(&p, 1, 2, 1);
}

static void
test_open_refuses_a_bad_last_line(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  make_log(path, 3);
  spit(path, "garbage\n", 8, "ab");
  struct rp_audit *a = NULL;
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_open(path, &a, NULL, &err), -1);
  assert_null(a);
  assert_int_equal(err->code, RP_ETAMPER);
  cleanup_free char *want = rp_xasprintf("%s:4: ", path);
  assert_memory_equal(err->message, want, strlen(want));

  /* An edited last line, with or without a torn tail after it. */
  struct lines ls = fresh(path);
  strstr(ls.v[9], "web-1")[0] = 'X';
  join(path, &ls);
  lines_free(&ls);
  cleanup_error struct rp_error *err2 = NULL;
  assert_int_equal(rp_audit_open(path, &a, NULL, &err2), -1);
  cleanup_free char *want2 = rp_xasprintf("%s:10: hash mismatch", path);
  assert_memory_equal(err2->message, want2, strlen(want2));
  spit(path, "{\"ts\"", 5, "ab");
  off_t size = file_size(path);
  cleanup_error struct rp_error *err3 = NULL;
  assert_int_equal(rp_audit_open(path, &a, NULL, &err3), -1);
  assert_memory_equal(err3->message, want2, strlen(want2));
  assert_int_equal(file_size(path), size); /* nothing appended */
}

/* --- asynchronous appends ----------------------------------------------- */

struct rec {
  int order[256];
  int codes[256];
  int n;
};

struct call {
  struct rec *rec;
  int index;
};

static void
record_cb(void *arg, struct rp_error *err)
{
  struct call *c = arg;
  c->rec->order[c->rec->n] = c->index;
  c->rec->codes[c->rec->n] = err ? err->code : 0;
  c->rec->n++;
}

static int
queue(struct rp_audit *a, uv_loop_t *loop, struct call *c)
{
  cleanup_json json_t *f = json_pack("{s:i}", "i", c->index);
  return rp_audit_append(a, loop, "recycle.begin", f, record_cb, c);
}

static int
seq_cb(void *arg, const json_t *line)
{
  uint64_t *next = arg;
  json_t *l = (json_t *)(uintptr_t)line; /* jansson takes non-const */
  assert_int_equal(json_integer_value(json_object_get(l, "seq")), *next);
  (*next)++;
  return 0;
}

static void
test_async_order(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct rp_audit *a = open_ok(path, NULL);
  struct rec rec = {0};
  struct call calls[100];
  for (int i = 0; i < 100; i++) {
    calls[i] = (struct call){&rec, i};
    assert_int_equal(queue(a, &loop, &calls[i]), 0);
  }
  /* Chained now, in call order; no callback before the loop runs. */
  assert_int_equal(rp_audit_next_seq(a), 101);
  assert_int_equal(rec.n, 0);
  /* A blocking append would interleave with them: refused. */
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_append_sync(a, "agent.stop", NULL, &err), -1);
  assert_int_equal(err->code, EBUSY);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(rec.n, 100);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(rec.order[i], i);
    assert_int_equal(rec.codes[i], 0);
  }
  assert_int_equal(rp_audit_append_sync(a, "agent.stop", NULL, NULL), 0);
  rp_audit_close(a);
  assert_int_equal(uv_loop_close(&loop), 0);
  const char *p = path;
  verify_ok(&p, 1, 101, 0);
  /* The i field follows seq: lines were written in call order. */
  struct lines ls = split(path);
  for (int i = 0; i < 100; i++) {
    cleanup_free char *s = rp_xasprintf("\"seq\":%d,\"event\":\"recycle."
                                        "begin\",\"i\":%d,",
                                        i + 1, i);
    assert_non_null(strstr(ls.v[i], s));
  }
  lines_free(&ls);

  /* Invalid arguments: -1, and the callback never runs. */
  a = open_ok(path, NULL);
  assert_int_equal(uv_loop_init(&loop), 0);
  struct call c = {&rec, 0};
  rec.n = 0;
  cleanup_json json_t *bad = json_pack("{s:i}", "seq", 3);
  assert_int_equal(rp_audit_append(a, &loop, "e", bad, record_cb, &c), -1);
  cleanup_json json_t *arr = json_array();
  assert_int_equal(rp_audit_append(a, &loop, "e", arr, record_cb, &c), -1);
  assert_int_equal(rp_audit_append(a, &loop, NULL, NULL, record_cb, &c), -1);
  assert_int_equal(rp_audit_append(NULL, &loop, "e", NULL, record_cb, &c), -1);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(rec.n, 0);
  assert_int_equal(rp_audit_next_seq(a), 102);
  rp_audit_close(a);
  assert_int_equal(uv_loop_close(&loop), 0);
  uint64_t next = 1, bad_lines = 7;
  assert_int_equal(rp_audit_read(path, seq_cb, &next, &bad_lines, NULL), 0);
  assert_int_equal(next, 102);
  assert_int_equal(bad_lines, 0);
}

static void
test_close_drains_the_queue(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct rp_audit *a = open_ok(path, NULL);
  struct rec rec = {0};
  struct call calls[10];
  for (int i = 0; i < 10; i++) {
    calls[i] = (struct call){&rec, i};
    assert_int_equal(queue(a, &loop, &calls[i]), 0);
  }
  rp_audit_close(a); /* outside the loop: runs it until the queue is done */
  assert_int_equal(rec.n, 10);
  for (int i = 0; i < 10; i++)
    assert_int_equal(rec.codes[i], 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  const char *p = path;
  verify_ok(&p, 1, 10, 0);
}

struct closer {
  struct rp_audit *a;
  uv_loop_t *loop;
  struct rec rec;
};

static void
close_in_cb(void *arg, struct rp_error *err)
{
  struct closer *c = arg;
  c->rec.codes[c->rec.n++] = err ? err->code : 0;
  if (c->rec.n == 1) {
    rp_audit_close(c->a); /* from its own callback: deferred */
    assert_int_equal(rp_audit_append(c->a, c->loop, "late", NULL, NULL, NULL),
                     -1);
  }
}

static void
test_close_from_a_callback(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct closer c = {.a = open_ok(path, NULL), .loop = &loop};
  for (int i = 0; i < 5; i++)
    assert_int_equal(rp_audit_append(c.a, &loop, "e", NULL, close_in_cb, &c),
                     0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(c.rec.n, 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(c.rec.codes[i], 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  const char *p = path;
  verify_ok(&p, 1, 5, 0);
}

/* --- failing closed ----------------------------------------------------- */

/* The log's writer descriptor, found the way an operator would (by its
 * target and its O_APPEND write-only flags), not through a hook. */
static int
writer_fd(const char *path)
{
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int found = -1;
  struct dirent *e;
  while ((e = readdir(d)) && found < 0) {
    int fd = atoi(e->d_name);
    char link[512], target[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
      continue;
    target[n] = '\0';
    if (strcmp(target, path) != 0)
      continue;
    int flags = fcntl(fd, F_GETFL);
    if ((flags & O_ACCMODE) == O_WRONLY && (flags & O_APPEND))
      found = fd;
  }
  closedir(d);
  return found;
}

static void
test_fail_closed_and_retry(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit *a = open_ok(path, NULL);
  for (int i = 0; i < 5; i++)
    append_ok(a, i);
  cleanup_free char *h5 = rp_xstrdup(rp_audit_last_hash(a));
  off_t size = file_size(path);

  /* The disk goes away under the writer: its descriptor now refuses
   * writes (EBADF), for real. */
  int fd = writer_fd(path);
  assert_true(fd >= 0);
  int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_true(ro >= 0);
  assert_int_equal(dup2(ro, fd), fd);
  close(ro);

  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct rec rec = {0};
  struct call calls[20];
  for (int i = 0; i < 10; i++) {
    calls[i] = (struct call){&rec, i};
    assert_int_equal(queue(a, &loop, &calls[i]), 0);
  }
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(rec.n, 10);
  for (int i = 0; i < 10; i++) {
    assert_int_equal(rec.order[i], i);
    assert_int_equal(rec.codes[i], RP_EAUDIT);
  }
  assert_false(rp_audit_healthy(a));
  assert_int_equal(rp_audit_write_errors(a), 1); /* the others never ran */
  assert_int_equal(file_size(path), size);
  /* Rolled back to the last durable line. */
  assert_int_equal(rp_audit_next_seq(a), 6);
  assert_string_equal(rp_audit_last_hash(a), h5);

  /* Later appends fail too, blocking or not. */
  calls[10] = (struct call){&rec, 10};
  assert_int_equal(queue(a, &loop, &calls[10]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(rec.codes[10], RP_EAUDIT);
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_append_sync(a, "agent.stop", NULL, &err), -1);
  assert_int_equal(err->code, RP_EAUDIT);
  assert_int_equal(file_size(path), size);

  /* The retry reopens the file and writes again. */
  calls[11] = (struct call){&rec, 11};
  assert_int_equal(rp_audit_retry(a, &loop, record_cb, &calls[11]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(rec.n, 12);
  assert_int_equal(rec.codes[11], 0);
  assert_true(rp_audit_healthy(a));
  for (int i = 12; i < 15; i++) {
    calls[i] = (struct call){&rec, i};
    assert_int_equal(queue(a, &loop, &calls[i]), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 12; i < 15; i++)
    assert_int_equal(rec.codes[i], 0);
  rp_audit_close(a);
  assert_int_equal(uv_loop_close(&loop), 0);

  /* No gap, no fork: 5 lines, audit.resumed, 3 lines. */
  const char *p = path;
  verify_ok(&p, 1, 9, 0);
  uint64_t next = 1;
  assert_int_equal(rp_audit_read(path, seq_cb, &next, NULL, NULL), 0);
  assert_int_equal(next, 10);
  struct lines ls = split(path);
  assert_non_null(strstr(ls.v[5], "\"seq\":6,\"event\":\"audit.resumed\","
                                  "\"failed_writes\":1,\"error\":\"write "));
  cleanup_free char *prev = member(ls.v[5], "prev");
  assert_string_equal(prev, h5);
  lines_free(&ls);
}

struct heal {
  struct rp_audit *a;
  struct rec rec;
};

static void
heal_cb(void *arg, struct rp_error *err)
{
  struct heal *h = arg;
  h->rec.codes[h->rec.n++] = err ? err->code : 0;
  if (h->rec.n == 1)
    rp_audit_inject_fault(h->a, 0, 0, false); /* the disk is back */
}

static void
test_lines_chained_before_a_failure_are_dropped(void **state)
{
  /* Queue: w1 w2 retry w3.  w1 fails; w2 and w3 were chained on top of w1
   * when appended, so even though the retry succeeds before w3's turn, w3
   * must not be written: its prev would fork the chain. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct heal h = {.a = open_ok(path, NULL)};
  append_ok(h.a, 0);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  rp_audit_inject_fault(h.a, EIO, 0, false);
  assert_int_equal(rp_audit_append(h.a, &loop, "w1", NULL, heal_cb, &h), 0);
  assert_int_equal(rp_audit_append(h.a, &loop, "w2", NULL, heal_cb, &h), 0);
  assert_int_equal(rp_audit_retry(h.a, &loop, heal_cb, &h), 0);
  assert_int_equal(rp_audit_append(h.a, &loop, "w3", NULL, heal_cb, &h), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(h.rec.n, 4);
  assert_int_equal(h.rec.codes[0], RP_EAUDIT);
  assert_int_equal(h.rec.codes[1], RP_EAUDIT);
  assert_int_equal(h.rec.codes[2], 0);
  assert_int_equal(h.rec.codes[3], RP_EAUDIT);
  assert_true(rp_audit_healthy(h.a));
  assert_int_equal(rp_audit_next_seq(h.a), 3); /* line 1, audit.resumed */
  assert_int_equal(rp_audit_append(h.a, &loop, "w4", NULL, heal_cb, &h), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(h.rec.codes[4], 0);
  rp_audit_close(h.a);
  assert_int_equal(uv_loop_close(&loop), 0);
  const char *p = path;
  verify_ok(&p, 1, 3, 0);
  cleanup_free char *all = slurp(path, NULL);
  assert_null(strstr(all, "\"w3\""));
  assert_non_null(strstr(all, "\"seq\":3,\"event\":\"w4\""));
}

static void
test_short_write_then_retry(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit *a = open_ok(path, NULL);
  for (int i = 0; i < 5; i++)
    append_ok(a, i);
  off_t size = file_size(path);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct rec rec = {0};
  struct call calls[4];

  /* 30 bytes reach the file, then ENOSPC. */
  rp_audit_inject_fault(a, ENOSPC, 30, false);
  calls[0] = (struct call){&rec, 0};
  calls[1] = (struct call){&rec, 1};
  assert_int_equal(queue(a, &loop, &calls[0]), 0);
  assert_int_equal(queue(a, &loop, &calls[1]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(rec.codes[0], RP_EAUDIT);
  assert_int_equal(rec.codes[1], RP_EAUDIT);
  assert_int_equal(file_size(path), size + 30);

  /* A retry while the disk is still full fails, and is counted. */
  calls[2] = (struct call){&rec, 2};
  assert_int_equal(rp_audit_retry(a, &loop, record_cb, &calls[2]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(rec.codes[2], RP_EAUDIT);
  assert_int_equal(rp_audit_write_errors(a), 2);
  assert_false(rp_audit_healthy(a));

  rp_audit_inject_fault(a, 0, 0, false);
  calls[3] = (struct call){&rec, 3};
  assert_int_equal(rp_audit_retry(a, &loop, record_cb, &calls[3]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(rec.codes[3], 0);
  assert_int_equal(rp_audit_next_seq(a), 8); /* torn 6, resumed 7 */
  append_ok(a, 8);
  rp_audit_close(a);
  assert_int_equal(uv_loop_close(&loop), 0);

  /* The fragment is kept and terminated; audit.torn names it exactly. */
  struct lines ls = split(path);
  assert_int_equal(ls.n, 9);
  assert_int_equal(strlen(ls.v[5]), 31);
  cleanup_free char *f = rp_xasprintf(
      "\"seq\":6,\"event\":\"audit.torn\",\"offset\":%lld,\"length\":30",
      (long long)size);
  assert_non_null(strstr(ls.v[6], f));
  assert_non_null(strstr(ls.v[7], "\"seq\":7,\"event\":\"audit.resumed\","
                                  "\"failed_writes\":2,"));
  lines_free(&ls);
  const char *p = path;
  verify_ok(&p, 1, 8, 1);
}

static void
test_failed_fsync_then_retry(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit *a = open_ok(path, NULL);
  for (int i = 0; i < 5; i++)
    append_ok(a, i);
  off_t size = file_size(path);

  /* The whole line is written but its fsync fails: not durable. */
  rp_audit_inject_fault(a, EIO, 0, true);
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_append_sync(a, "recycle.begin", NULL, &err), -1);
  assert_int_equal(err->code, RP_EAUDIT);
  assert_non_null(strstr(err->message, "fsync"));
  assert_true(file_size(path) > size);
  assert_int_equal(rp_audit_next_seq(a), 6);

  rp_audit_inject_fault(a, 0, 0, false);
  assert_int_equal(rp_audit_retry_sync(a, NULL), 0);
  assert_int_equal(rp_audit_retry_sync(a, NULL), 0); /* healthy: no-op */
  append_ok(a, 9);
  rp_audit_close(a);

  /* The complete line stays, with seq 6 chained to line 5; audit.torn seq 6
   * chained to line 5 too acknowledges it, so there is no fork. */
  struct lines ls = split(path);
  assert_int_equal(ls.n, 9);
  assert_non_null(strstr(ls.v[5], "\"seq\":6,\"event\":\"recycle.begin\""));
  assert_non_null(strstr(ls.v[6], "\"seq\":6,\"event\":\"audit.torn\""));
  lines_free(&ls);
  struct rp_audit_verify_result res;
  const char *p = path;
  assert_int_equal(rp_audit_verify_detail(&p, 1, NULL, &res, NULL), 0);
  assert_int_equal(res.lines, 8);
  assert_int_equal(res.skipped, 1);
  cleanup_free char *note =
      rp_xasprintf("%s:7: audit.torn acknowledges lines 6-6", path);
  assert_non_null(strstr(res.notes, note));
  rp_audit_verify_result_clear(&res);
}

static void
test_repeated_failed_fsyncs(void **state)
{
  /* A line and then a whole retry are written but never fsync'd: the retry
   * that finally works acknowledges all of it, back to line 3. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit *a = open_ok(path, NULL);
  for (int i = 0; i < 3; i++)
    append_ok(a, i);
  rp_audit_inject_fault(a, EIO, 0, true);
  assert_int_equal(rp_audit_append_sync(a, "w1", NULL, NULL), -1);
  assert_int_equal(rp_audit_retry_sync(a, NULL), -1);
  assert_int_equal(rp_audit_write_errors(a), 2);
  rp_audit_inject_fault(a, 0, 0, false);
  assert_int_equal(rp_audit_retry_sync(a, NULL), 0);
  append_ok(a, 9);
  rp_audit_close(a);
  struct lines ls = split(path);
  assert_int_equal(ls.n, 9);
  const char *want[] = {"\"seq\":4,\"event\":\"w1\"",
                        "\"seq\":4,\"event\":\"audit.torn\"",
                        "\"seq\":5,\"event\":\"audit.resumed\"",
                        "\"seq\":4,\"event\":\"audit.torn\"",
                        "\"seq\":5,\"event\":\"audit.resumed\"",
                        "\"seq\":6,\"event\":\"recycle.begin\""};
  for (size_t i = 0; i < RP_ARRAY_LEN(want); i++)
    assert_non_null(strstr(ls.v[3 + i], want[i]));
  lines_free(&ls);
  const char *p = path;
  verify_ok(&p, 1, 6, 3);
}

static void
test_read_skips_bad_lines(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  make_log(path, 4);
  spit(path, "{\"ts\":", 6, "ab");
  rp_audit_close(open_ok(path, NULL)); /* terminated, audit.torn */
  spit(path, "[1]\n", 4, "ab");        /* JSON, not an object */
  uint64_t next = 1, bad = 0;
  /* audit.torn is seq 5, right after line 4. */
  assert_int_equal(rp_audit_read(path, seq_cb, &next, &bad, NULL), 0);
  assert_int_equal(next, 6);
  assert_int_equal(bad, 2);
}

static int
stop_cb(void *arg, const json_t *line)
{
  int *n = arg;
  (void)line;
  return ++*n == 3 ? 42 : 0;
}

static void
test_read_stops_when_asked(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  make_log(path, 10);
  int n = 0;
  assert_int_equal(rp_audit_read(path, stop_cb, &n, NULL, NULL), 42);
  assert_int_equal(n, 3);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_chain_of_1000_lines),
      T(test_fields_keep_order_and_utf8),
      T(test_reopen_continues),
      T(test_second_writer_refused),
      T(test_tampering_is_named),
      T(test_rotation_continues_chain),
      T(test_verify_line_length),
      T(test_verify_arguments),
      T(test_torn_tail_on_open),
      T(test_torn_ack_must_match),
      T(test_torn_fragments_and_whole_file),
      T(test_open_refuses_a_bad_last_line),
      T(test_async_order),
      T(test_close_drains_the_queue),
      T(test_close_from_a_callback),
      T(test_fail_closed_and_retry),
      T(test_lines_chained_before_a_failure_are_dropped),
      T(test_short_write_then_retry),
      T(test_failed_fsync_then_retry),
      T(test_repeated_failed_fsyncs),
      T(test_read_skips_bad_lines),
      T(test_read_stops_when_asked),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
