/* The trail that cannot be quietly rewritten: signed checkpoints (checked
 * here with libcrypto directly, not only by verify), every tampering that
 * verify --key must catch, rotation that carries the chain across files
 * (also after a crash between the rename and the new file), crash recovery
 * over rotated parts, the syslog copy on a socket of the test's own, and
 * the configuration keys.  Every test works in its own mkdtemp directory. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit.h"
#include "config.h"
#include "recovery.h"
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
  snprintf(d->path, sizeof(d->path), "/tmp/test_trail.XXXXXX");
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
slurp(const char *path)
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
  return buf;
}

/* The lines of a file, each with its newline. */
struct lines {
  char **v;
  size_t n;
};

static struct lines
split(const char *path)
{
  cleanup_free char *all = slurp(path);
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
join(const char *path, const struct lines *ls, size_t from, size_t to)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (size_t i = from; i < to; i++)
    fputs(ls->v[i], f);
  fclose(f);
}

static void
lines_free(struct lines *ls)
{
  for (size_t i = 0; i < ls->n; i++)
    free(ls->v[i]);
  free(ls->v);
  ls->v = NULL;
  ls->n = 0;
}

static void
lines_drop(struct lines *ls, size_t i)
{
  free(ls->v[i]);
  memmove(ls->v + i, ls->v + i + 1, (ls->n - i - 1) * sizeof(char *));
  ls->n--;
}

static json_t *
parse(const char *line)
{
  json_t *o = json_loads(line, 0, NULL);
  assert_non_null(o);
  return o;
}

static const char *
str(json_t *o, const char *key)
{
  const char *s = json_string_value(json_object_get(o, key));
  assert_non_null(s);
  return s;
}

static void
sha256_hex(const void *p, size_t n, char hex[65])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
  for (unsigned i = 0; i < len; i++)
    sprintf(hex + 2 * i, "%02x", md[i]);
}

/* What an attacker without the key can do: give a line a new seq and prev
 * and recompute its hash (written without the code under test). */
static char *
relink(const char *line, uint64_t seq, const char *prev)
{
  const char *s = strstr(line, "\"seq\":");
  assert_non_null(s);
  const char *after_seq = s + 6 + strspn(s + 6, "0123456789");
  const char *p = strstr(line, ",\"prev\":\"");
  assert_non_null(p);
  cleanup_free char *body = rp_xasprintf(
      "%.*s\"seq\":%llu%.*s,\"prev\":\"%s\"}", (int)(s - line), line,
      (unsigned long long)seq, (int)(p - after_seq), after_seq, prev);
  char hex[65];
  sha256_hex(body, strlen(body), hex);
  return rp_xasprintf("%.*s,\"hash\":\"%s\"}\n", (int)strlen(body) - 1, body,
                      hex);
}

/* Re-chains lines [from, n) onto the line before from (seq and prev). */
static void
rechain(struct lines *ls, size_t from)
{
  char prev[65];
  uint64_t seq = 0;
  memset(prev, '0', 64);
  prev[64] = '\0';
  if (from > 0) {
    cleanup_json json_t *o = parse(ls->v[from - 1]);
    memcpy(prev, str(o, "hash"), 65);
    seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
  }
  for (size_t i = from; i < ls->n; i++) {
    char *l = relink(ls->v[i], ++seq, prev);
    free(ls->v[i]);
    ls->v[i] = l;
    cleanup_json json_t *o = parse(l);
    memcpy(prev, str(o, "hash"), 65);
  }
}

/* An Ed25519 key pair made with libcrypto: NAME.key (mode) and NAME.pub. */
struct key {
  char *priv, *pub; /* owned paths */
  char id[17];      /* computed here, independently */
  EVP_PKEY *pkey;   /* owned */
};

static struct key
keygen(void **state, const char *name, mode_t mode)
{
  struct key k = {0};
  k.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  assert_non_null(k.pkey);
  cleanup_free char *pn = rp_xasprintf("%s.key", name);
  cleanup_free char *qn = rp_xasprintf("%s.pub", name);
  k.priv = in_dir(state, pn);
  k.pub = in_dir(state, qn);
  FILE *f = fopen(k.priv, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_PrivateKey(f, k.pkey, NULL, NULL, 0, NULL, NULL),
                   1);
  fclose(f);
  assert_int_equal(chmod(k.priv, mode), 0);
  f = fopen(k.pub, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_PUBKEY(f, k.pkey), 1);
  fclose(f);
  unsigned char raw[32];
  size_t n = sizeof(raw);
  assert_int_equal(EVP_PKEY_get_raw_public_key(k.pkey, raw, &n), 1);
  char hex[65];
  sha256_hex(raw, n, hex);
  memcpy(k.id, hex, 16);
  k.id[16] = '\0';
  return k;
}

static void
key_free(struct key *k)
{
  free(k->priv);
  free(k->pub);
  EVP_PKEY_free(k->pkey);
}

/* Checks a checkpoint's signature with libcrypto, building the signed bytes
 * from audit.h's description. */
static bool
signature_ok(EVP_PKEY *pkey, json_t *cp)
{
  cleanup_free char *msg = rp_xasprintf(
      "reaper audit.checkpoint v1\nseq=%lld\nprev=%s\nts=%s\nreason=%s\n"
      "file=%s\nkey_id=%s\n",
      (long long)json_integer_value(json_object_get(cp, "seq")),
      str(cp, "prev"), str(cp, "ts"), str(cp, "reason"), str(cp, "file"),
      str(cp, "key_id"));
  unsigned char sig[66];
  if (EVP_DecodeBlock(sig, (const unsigned char *)str(cp, "sig"), 88) != 66)
    return false;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey), 1);
  int rc =
      EVP_DigestVerify(ctx, sig, 64, (const unsigned char *)msg, strlen(msg));
  EVP_MD_CTX_free(ctx);
  return rc == 1;
}

static struct rp_audit *
open_opts(const char *path, const struct rp_audit_options *o, char **warning)
{
  struct rp_audit *a = NULL;
  cleanup_error struct rp_error *err = NULL;
  if (rp_audit_open_opts(path, o, &a, warning, &err) != 0)
    fail_msg("open %s: %s", path, err->message);
  return a;
}

static void
append_n(struct rp_audit *a, const char *event, int n)
{
  for (int i = 0; i < n; i++) {
    cleanup_json json_t *f =
        json_pack("{s:i, s:s}", "i", i, "pad",
                  "padding so that a line is a little over 100 bytes");
    cleanup_error struct rp_error *err = NULL;
    if (rp_audit_append_sync(a, event, f, &err) != 0)
      fail_msg("append %d: %s", i, err->message);
  }
}

static void
seal(struct rp_audit *a)
{
  cleanup_error struct rp_error *err = NULL;
  if (rp_audit_seal_sync(a, &err) != 0)
    fail_msg("seal: %s", err->message);
}

/* A signed, sealed log of n lines at path with a checkpoint every `every`. */
static void
signed_log(const char *path, const struct key *k, uint64_t every, int n)
{
  struct rp_audit_options o = {.signing_key = k->priv,
                               .checkpoint_every = every};
  struct rp_audit *a = open_opts(path, &o, NULL);
  append_n(a, "x", n);
  seal(a);
  rp_audit_close(a);
}

static int
verify_keys(const char *const *paths, size_t n, const char *const *keys,
            size_t n_keys, bool allow, struct rp_audit_verify_result *res,
            struct rp_error **err)
{
  struct rp_audit_verify_options o = {
      .keys = keys, .n_keys = n_keys, .allow_unsigned_tail = allow};
  return rp_audit_verify_with(paths, n, &o, res, err);
}

/* verify --key must fail with RP_ETAMPER and exactly this message. */
static void
verify_key_fails(const char *const *paths, size_t n, const char *key,
                 const char *want)
{
  struct rp_audit_verify_result res;
  cleanup_error struct rp_error *err = NULL;
  int rc = verify_keys(paths, n, &key, 1, false, &res, &err);
  rp_audit_verify_result_clear(&res);
  if (rc == 0)
    fail_msg("verify passed, want \"%s\"", want);
  if (err->code != RP_ETAMPER || strcmp(err->message, want) != 0)
    fail_msg("verify: got %d \"%s\", want \"%s\"", err->code, err->message,
             want);
}

static void
verify_key_ok(const char *const *paths, size_t n, const char *key,
              uint64_t checkpoints)
{
  struct rp_audit_verify_result res;
  cleanup_error struct rp_error *err = NULL;
  if (verify_keys(paths, n, &key, 1, false, &res, &err) != 0)
    fail_msg("verify --key: %s", err->message);
  assert_int_equal(res.checkpoints, checkpoints);
  assert_true(res.sealed);
  assert_int_equal(res.unsigned_tail, 0);
  rp_audit_verify_result_clear(&res);
}

/* --- signed checkpoints ------------------------------------------------- */

static void
test_checkpoints_every_n_and_at_stop(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0600);
  signed_log(path, &k, 5, 12);
  /* 5 lines, checkpoint, 5 lines, checkpoint, 2 lines, stop checkpoint. */
  struct lines ls = split(path);
  assert_int_equal(ls.n, 15);
  const char *want[] = {"interval", "interval", "stop"};
  size_t at[] = {5, 11, 14}, c = 0;
  for (size_t i = 0; i < ls.n; i++) {
    cleanup_json json_t *o = parse(ls.v[i]);
    if (strcmp(str(o, "event"), "audit.checkpoint") != 0)
      continue;
    assert_true(c < 3);
    assert_int_equal(i, at[c]);
    assert_string_equal(str(o, "reason"), want[c]);
    assert_string_equal(str(o, "file"), "audit.jsonl");
    assert_string_equal(str(o, "key_id"), k.id);
    /* It signs the line before it: its prev is that line's hash. */
    cleanup_json json_t *before = parse(ls.v[i - 1]);
    assert_string_equal(str(o, "prev"), str(before, "hash"));
    assert_true(signature_ok(k.pkey, o));
    c++;
  }
  assert_int_equal(c, 3);
  const char *p = path;
  verify_key_ok(&p, 1, k.pub, 3);
  /* A private key file works for verify too (its public half). */
  verify_key_ok(&p, 1, k.priv, 3);
  lines_free(&ls);
  key_free(&k);
}

static void
test_truncation_caught(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  cleanup_free char *cut = in_dir(state, "cut.jsonl");
  struct key k = keygen(state, "k", 0600);
  signed_log(path, &k, 5, 12);
  struct lines ls = split(path);
  const char *p = cut;

  /* Cut right after an interval checkpoint (line 12): signed, but not the
   * end of a run. */
  join(cut, &ls, 0, 12);
  cleanup_free char *w1 = rp_xasprintf(
      "%s:12: the log ends at a checkpoint written while the agent ran "
      "(reason interval), not at its stop: lines after it may have been cut "
      "off, or its agent crashed or still runs (--allow-unsigned-tail "
      "accepts a live log)",
      cut);
  verify_key_fails(&p, 1, k.pub, w1);

  /* Cut between checkpoints: the lines after the last one are named. */
  join(cut, &ls, 0, 14);
  cleanup_free char *w2 = rp_xasprintf(
      "%s:13: 2 lines after the last signed checkpoint (%s:12) are not "
      "signed: the log was cut after it, or its agent crashed or still runs "
      "(--allow-unsigned-tail accepts a live log)",
      cut, cut);
  verify_key_fails(&p, 1, k.pub, w2);

  /* A live log: accepted with --allow-unsigned-tail, counted and noted. */
  struct rp_audit_verify_result res;
  cleanup_error struct rp_error *err = NULL;
  const char *key = k.pub;
  assert_int_equal(verify_keys(&p, 1, &key, 1, true, &res, &err), 0);
  assert_int_equal(res.unsigned_tail, 2);
  assert_int_equal(res.checkpoints, 2);
  assert_false(res.sealed);
  assert_non_null(res.notes);
  assert_non_null(strstr(res.notes, "(allowed: --allow-unsigned-tail)"));
  rp_audit_verify_result_clear(&res);

  /* Without a key the chain alone cannot tell: that is what keys add. */
  assert_int_equal(rp_audit_verify(&p, 1, NULL, NULL, NULL), 0);

  /* Nothing left at all. */
  join(cut, &ls, 0, 0);
  cleanup_free char *w3 = rp_xasprintf(
      "%s: no lines, so no signed checkpoint (--allow-unsigned-tail accepts "
      "a live log)",
      cut);
  verify_key_fails(&p, 1, k.pub, w3);
  lines_free(&ls);
  key_free(&k);
}

static void
test_last_checkpoint_removed(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0600);
  signed_log(path, &k, 5, 12);
  struct lines ls = split(path);
  lines_drop(&ls, ls.n - 1); /* the stop checkpoint */
  join(path, &ls, 0, ls.n);
  const char *p = path;
  cleanup_free char *want = rp_xasprintf(
      "%s:13: 2 lines after the last signed checkpoint (%s:12) are not "
      "signed: the log was cut after it, or its agent crashed or still runs "
      "(--allow-unsigned-tail accepts a live log)",
      path, path);
  verify_key_fails(&p, 1, k.pub, want);
  lines_free(&ls);
  key_free(&k);
}

static void
test_rewritten_chain_caught(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0600);
  signed_log(path, &k, 5, 12);
  /* Line 3 says something else, and every hash from there on is
   * recomputed, checkpoints included: the chain holds... */
  struct lines ls = split(path);
  char *l3 = ls.v[2];
  char *hit = strstr(l3, "\"i\":2,");
  assert_non_null(hit);
  hit[4] = '7';
  rechain(&ls, 2);
  join(path, &ls, 0, ls.n);
  const char *p = path;
  assert_int_equal(rp_audit_verify(&p, 1, NULL, NULL, NULL), 0);
  /* ...but the first checkpoint after line 3 no longer verifies. */
  cleanup_free char *want = rp_xasprintf(
      "%s:6: audit.checkpoint signature does not verify with key %s: the "
      "log up to here is not what was signed",
      path, k.id);
  verify_key_fails(&p, 1, k.pub, want);

  /* Taking the checkpoints out and re-chaining leaves nothing signed. */
  for (size_t i = ls.n; i-- > 0;)
    if (strstr(ls.v[i], "\"event\":\"audit.checkpoint\""))
      lines_drop(&ls, i);
  rechain(&ls, 0);
  join(path, &ls, 0, ls.n);
  assert_int_equal(rp_audit_verify(&p, 1, NULL, NULL, NULL), 0);
  cleanup_free char *want2 = rp_xasprintf(
      "%s:1: 12 lines and no signed checkpoint (signing was off when "
      "written, or the checkpoints were taken out) (--allow-unsigned-tail "
      "accepts a live log)",
      path);
  verify_key_fails(&p, 1, k.pub, want2);
  lines_free(&ls);
  key_free(&k);
}

static void
test_rewrite_after_a_checkpoint_caught(void **state)
{
  /* The same from line 8 on, keeping the first checkpoint (line 6) as it
   * is and dropping the later ones: what follows it is unsigned. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0600);
  signed_log(path, &k, 5, 12);
  struct lines ls = split(path);
  for (size_t i = ls.n; i-- > 7;)
    if (strstr(ls.v[i], "\"event\":\"audit.checkpoint\""))
      lines_drop(&ls, i);
  rechain(&ls, 7);
  join(path, &ls, 0, ls.n);
  const char *p = path;
  assert_int_equal(rp_audit_verify(&p, 1, NULL, NULL, NULL), 0);
  cleanup_free char *want = rp_xasprintf(
      "%s:7: 7 lines after the last signed checkpoint (%s:6) are not "
      "signed: the log was cut after it, or its agent crashed or still runs "
      "(--allow-unsigned-tail accepts a live log)",
      path, path);
  verify_key_fails(&p, 1, k.pub, want);
  lines_free(&ls);
  key_free(&k);
}

static void
test_other_key(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0600);
  struct key other = keygen(state, "other", 0600);
  signed_log(path, &k, 5, 12);
  const char *p = path;
  cleanup_free char *want = rp_xasprintf(
      "%s:6: audit.checkpoint signed by key %s, not by the key given (%s)",
      path, k.id, other.id);
  verify_key_fails(&p, 1, other.pub, want);
  /* Keys used in turn: each checkpoint is checked with the one it names. */
  const char *both[] = {other.pub, k.pub};
  struct rp_audit_verify_result res;
  assert_int_equal(verify_keys(&p, 1, both, 2, false, &res, NULL), 0);
  assert_int_equal(res.checkpoints, 3);
  rp_audit_verify_result_clear(&res);

  /* A checkpoint signed with another key that claims this key's id. */
  struct lines ls = split(path);
  cleanup_json json_t *cp = parse(ls.v[5]);
  const char *ts = str(cp, "ts"), *prev = str(cp, "prev");
  cleanup_free char *msg = rp_xasprintf(
      "reaper audit.checkpoint v1\nseq=6\nprev=%s\nts=%s\nreason=interval\n"
      "file=audit.jsonl\nkey_id=%s\n",
      prev, ts, k.id);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t n = sizeof(sig);
  assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, other.pkey), 1);
  assert_int_equal(
      EVP_DigestSign(ctx, sig, &n, (const unsigned char *)msg, strlen(msg)), 1);
  EVP_MD_CTX_free(ctx);
  char b64[100];
  EVP_EncodeBlock((unsigned char *)b64, sig, 64);
  char *at = strstr(ls.v[5], "\"sig\":\"");
  assert_non_null(at);
  memcpy(at + 7, b64, 88);
  rechain(&ls, 5);
  join(path, &ls, 0, ls.n);
  cleanup_free char *want2 = rp_xasprintf(
      "%s:6: audit.checkpoint signature does not verify with key %s: the "
      "log up to here is not what was signed",
      path, k.id);
  verify_key_fails(&p, 1, k.pub, want2);
  lines_free(&ls);
  key_free(&k);
  key_free(&other);
}

static void
test_signing_key_refused(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0640);
  struct rp_audit_options o = {.signing_key = k.priv};
  struct rp_audit *a = NULL;
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_open_opts(path, &o, &a, NULL, &err), -1);
  assert_int_equal(err->code, RP_ECONFIG);
  cleanup_free char *want = rp_xasprintf(
      "audit signing key: %s: a secret readable by its group or others "
      "(mode 0640): chmod 600 %s",
      k.priv, k.priv);
  assert_string_equal(err->message, want);
  assert_int_equal(access(path, F_OK), -1); /* nothing touched */

  /* Not a key, and a key of another kind. */
  cleanup_free char *junk = in_dir(state, "junk.key");
  FILE *f = fopen(junk, "w");
  fputs("not a key\n", f);
  fclose(f);
  chmod(junk, 0600);
  o.signing_key = junk;
  cleanup_error struct rp_error *err2 = NULL;
  assert_int_equal(rp_audit_open_opts(path, &o, &a, NULL, &err2), -1);
  assert_non_null(strstr(err2->message, "not an unencrypted PEM private key"));
  EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  cleanup_free char *eck = in_dir(state, "ec.key");
  f = fopen(eck, "w");
  PEM_write_PrivateKey(f, ec, NULL, NULL, 0, NULL, NULL);
  fclose(f);
  chmod(eck, 0600);
  EVP_PKEY_free(ec);
  o.signing_key = eck;
  cleanup_error struct rp_error *err3 = NULL;
  assert_int_equal(rp_audit_open_opts(path, &o, &a, NULL, &err3), -1);
  assert_non_null(strstr(err3->message, "not an Ed25519 key"));
  assert_int_equal(access(path, F_OK), -1);
  key_free(&k);
}

static void
test_crash_then_restart(void **state)
{
  /* A run that ends without its stop checkpoint (killed): the next run is
   * warned, its checkpoints vouch for those lines, verify says so. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0600);
  struct rp_audit_options o = {.signing_key = k.priv, .checkpoint_every = 5};
  struct rp_audit *a = open_opts(path, &o, NULL);
  append_n(a, "agent.start", 1);
  append_n(a, "x", 6); /* a checkpoint after line 5, then 2 lines */
  rp_audit_close(a);
  cleanup_free char *warning = NULL;
  a = open_opts(path, &o, &warning);
  assert_non_null(warning);
  assert_non_null(strstr(warning, "does not end with a signed checkpoint"));
  append_n(a, "agent.start", 1);
  append_n(a, "x", 1);
  seal(a);
  rp_audit_close(a);
  const char *p = path, *key = k.pub;
  struct rp_audit_verify_result res;
  cleanup_error struct rp_error *err = NULL;
  if (verify_keys(&p, 1, &key, 1, false, &res, &err) != 0)
    fail_msg("verify: %s", err->message);
  assert_true(res.sealed);
  cleanup_free char *note = rp_xasprintf(
      "%s:9: agent.start after 2 lines that no checkpoint of their own run "
      "signed (from %s:7; that run did not stop cleanly): only a later "
      "checkpoint vouches for them\n",
      path, path);
  assert_string_equal(res.notes, note);
  rp_audit_verify_result_clear(&res);
  key_free(&k);
}

struct counter {
  int done, failed;
};

static void
count_cb(void *arg, struct rp_error *err)
{
  struct counter *c = arg;
  if (err)
    c->failed++;
  else
    c->done++;
}

static void
test_async_checkpoints_and_rotation(void **state)
{
  /* Checkpoints and rotations decided at render time land in call order
   * on the threadpool too. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0600);
  struct rp_audit_options o = {
      .signing_key = k.priv, .checkpoint_every = 3, .rotate_size = 1024};
  struct rp_audit *a = open_opts(path, &o, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct counter c = {0};
  for (int i = 0; i < 40; i++) {
    cleanup_json json_t *f = json_pack("{s:i, s:s}", "i", i, "pad",
                                       "a line of a little over 100 bytes");
    assert_int_equal(rp_audit_append(a, &loop, "x", f, count_cb, &c), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(c.done, 40);
  assert_true(rp_audit_rotations(a) >= 3);
  seal(a);
  uint64_t cps = rp_audit_checkpoints(a), rotations = rp_audit_rotations(a);
  rp_audit_close(a);
  assert_int_equal(uv_loop_close(&loop), 0);
  char **files = NULL;
  size_t n = 0;
  assert_int_equal(rp_audit_files(path, &files, &n, NULL), 0);
  assert_int_equal(n, rotations + 1);
  verify_key_ok((const char *const *)files, n, k.pub, cps);
  /* Each part but the live file ends with its "rotate" checkpoint. */
  for (size_t i = 0; i + 1 < n; i++) {
    struct lines ls = split(files[i]);
    assert_non_null(strstr(ls.v[ls.n - 1], "\"reason\":\"rotate\""));
    lines_free(&ls);
  }
  rp_audit_files_free(files);
  key_free(&k);
}

static void
test_failed_checkpoint_write_rolls_back(void **state)
{
  /* The write carrying a line and its checkpoint fails at fsync (the
   * bytes are in the file); the retry acknowledges them as torn and the
   * checkpoint count rolls back with the chain. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0600);
  struct rp_audit_options o = {.signing_key = k.priv, .checkpoint_every = 3};
  struct rp_audit *a = open_opts(path, &o, NULL);
  append_n(a, "x", 2);
  rp_audit_inject_fault(a, EIO, 0, true);
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_append_sync(a, "x", NULL, &err), -1);
  assert_int_equal(err->code, RP_EAUDIT);
  rp_audit_inject_fault(a, 0, 0, false);
  assert_int_equal(rp_audit_next_seq(a), 3);
  assert_int_equal(rp_audit_retry_sync(a, NULL), 0);
  append_n(a, "x", 3);
  seal(a);
  rp_audit_close(a);
  const char *p = path, *key = k.pub;
  struct rp_audit_verify_result res;
  cleanup_error struct rp_error *verr = NULL;
  if (verify_keys(&p, 1, &key, 1, false, &res, &verr) != 0)
    fail_msg("verify: %s", verr->message);
  assert_int_equal(res.skipped, 2); /* the line and its checkpoint */
  assert_true(res.sealed);
  rp_audit_verify_result_clear(&res);
  key_free(&k);
}

/* --- rotation ----------------------------------------------------------- */

static void
test_rotation_three_files(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit_options o = {.rotate_size = 1024};
  struct rp_audit *a = open_opts(path, &o, NULL);
  append_n(a, "x", 25); /* ~270 bytes a line: 4 a part */
  uint64_t rotations = rp_audit_rotations(a);
  assert_true(rotations >= 3);
  rp_audit_close(a);
  char **files = NULL;
  size_t n = 0;
  assert_int_equal(rp_audit_files(path, &files, &n, NULL), 0);
  assert_int_equal(n, rotations + 1);
  assert_string_equal(files[n - 1], path);
  struct dir *d = *state;
  char prev[65];
  memset(prev, '0', 64);
  prev[64] = '\0';
  uint64_t seq = 0, first_seq[64] = {0}, last_seq[64] = {0};
  assert_true(n <= 64);
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    assert_int_equal(stat(files[i], &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* PATH.YYYYMMDDTHHMMSSZ[.N], closed by the line that reached the size:
     * never beyond it by more than that line. */
    if (i + 1 < n) {
      const char *base = strrchr(files[i], '/') + 1;
      assert_true(rp_audit_is_part("audit.jsonl", base));
      assert_int_equal(strncmp(files[i], d->path, strlen(d->path)), 0);
      assert_true(st.st_size >= 1024 && st.st_size < 1024 + 300);
    }
    /* The chain goes on across files: seq continues, and the first prev
     * of a part is the last hash of the one before. */
    struct lines ls = split(files[i]);
    assert_true(ls.n > 0);
    for (size_t j = 0; j < ls.n; j++) {
      cleanup_json json_t *l = parse(ls.v[j]);
      assert_int_equal(json_integer_value(json_object_get(l, "seq")), ++seq);
      assert_string_equal(str(l, "prev"), prev);
      memcpy(prev, str(l, "hash"), 65);
      if (j == 0)
        first_seq[i] = seq;
      last_seq[i] = seq;
    }
    lines_free(&ls);
  }
  assert_int_equal(seq, 25);
  uint64_t lines = 0;
  assert_int_equal(
      rp_audit_verify((const char *const *)files, n, NULL, &lines, NULL), 0);
  assert_int_equal(lines, 25);
  /* Out of order, or with a part left out, it does not verify. */
  const char *swapped[] = {files[1], files[0], files[2]};
  assert_int_equal(rp_audit_verify(swapped, 3, NULL, NULL, NULL), -1);
  const char *gap[] = {files[0], files[2]};
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_audit_verify(gap, 2, NULL, NULL, &err), -1);
  cleanup_free char *want = rp_xasprintf(
      "%s:1: seq jumps from %llu to %llu", files[2],
      (unsigned long long)last_seq[0], (unsigned long long)first_seq[2]);
  assert_string_equal(err->message, want);

  /* Reopened, the chain continues in the live file. */
  a = open_opts(path, &o, NULL);
  assert_int_equal(rp_audit_next_seq(a), 26);
  rp_audit_close(a);
  rp_audit_files_free(files);
}

/* Renames path as a rotation would, as if the agent died right after. */
static char *
rotate_by_hand(const char *path, time_t t)
{
  char *part = NULL;
  cleanup_error struct rp_error *err = NULL;
  if (rp_audit_rename_part(path, t, &part, &err) != 0)
    fail_msg("rename: %s", err->message);
  return part;
}

static void
test_crash_between_rename_and_new_file(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct key k = keygen(state, "k", 0600);
  struct rp_audit_options o = {.signing_key = k.priv, .checkpoint_every = 4};
  struct rp_audit *a = open_opts(path, &o, NULL);
  append_n(a, "x", 6);
  rp_audit_close(a);
  /* The old file renamed, no new file: open continues from the part. */
  cleanup_free char *p1 = rotate_by_hand(path, 1700000000);
  cleanup_free char *warning = NULL;
  a = open_opts(path, &o, &warning);
  assert_non_null(warning);
  assert_non_null(strstr(warning, "holds no complete line: continuing the "
                                  "chain from the last rotated part"));
  assert_non_null(strstr(warning, p1));
  assert_int_equal(rp_audit_next_seq(a), 8); /* 6 lines + a checkpoint */
  append_n(a, "x", 2);
  rp_audit_close(a);
  /* Again, this time the new file was created (empty) before the crash. */
  cleanup_free char *p2 = rotate_by_hand(path, 1700000001);
  FILE *f = fopen(path, "w");
  fclose(f);
  a = open_opts(path, &o, NULL);
  assert_int_equal(rp_audit_next_seq(a), 10);
  append_n(a, "x", 1);
  rp_audit_close(a);
  /* And this time the first line of the new file was torn. */
  cleanup_free char *p3 = rotate_by_hand(path, 1700000002);
  f = fopen(path, "w");
  fputs("{\"ts\":\"2026-11-30T00:00:00.000000000Z\",\"seq\":11,\"ev", f);
  fclose(f);
  cleanup_free char *warning2 = NULL;
  a = open_opts(path, &o, &warning2);
  assert_non_null(strstr(warning2, "torn tail"));
  append_n(a, "x", 1);
  seal(a);
  rp_audit_close(a);
  const char *all[] = {p1, p2, p3, path};
  struct rp_audit_verify_result res;
  const char *key = k.pub;
  cleanup_error struct rp_error *err = NULL;
  if (verify_keys(all, 4, &key, 1, false, &res, &err) != 0)
    fail_msg("verify: %s", err->message);
  assert_int_equal(res.skipped, 1); /* the torn fragment */
  assert_true(res.sealed);
  rp_audit_verify_result_clear(&res);
  /* rp_audit_files finds them in that order. */
  char **files = NULL;
  size_t n = 0;
  assert_int_equal(rp_audit_files(path, &files, &n, NULL), 0);
  assert_int_equal(n, 4);
  for (size_t i = 0; i < 4; i++)
    assert_string_equal(files[i], all[i]);
  rp_audit_files_free(files);
  key_free(&k);
}

static void
test_parts_ordered_by_seq_not_name(void **state)
{
  /* The clock went back between two rotations: the later part has the
   * earlier name.  The chain's order is seq's. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit *a = open_opts(path, NULL, NULL);
  append_n(a, "x", 2);
  rp_audit_close(a);
  cleanup_free char *first = rotate_by_hand(path, 1800000000);
  a = open_opts(path, NULL, NULL);
  append_n(a, "x", 2);
  rp_audit_close(a);
  cleanup_free char *second = rotate_by_hand(path, 1700000000);
  assert_true(strcmp(second, first) < 0);
  /* Another rotation in the same second gets a suffix. */
  a = open_opts(path, NULL, NULL);
  append_n(a, "x", 2);
  rp_audit_close(a);
  cleanup_free char *third = rotate_by_hand(path, 1700000000);
  cleanup_free char *want3 = rp_xasprintf("%s.20231114T221320Z.1", path);
  assert_string_equal(third, want3);
  char **files = NULL;
  size_t n = 0;
  assert_int_equal(rp_audit_files(path, &files, &n, NULL), 0);
  assert_int_equal(n, 3); /* no live file: a crash right after a rename */
  assert_string_equal(files[0], first);
  assert_string_equal(files[1], second);
  assert_string_equal(files[2], third);
  assert_int_equal(
      rp_audit_verify((const char *const *)files, n, NULL, NULL, NULL), 0);
  rp_audit_files_free(files);
  /* Not parts: other logs, other suffixes. */
  assert_false(rp_audit_is_part("audit.jsonl", "audit.jsonl"));
  assert_false(rp_audit_is_part("audit.jsonl", "audit.jsonl.1"));
  assert_false(rp_audit_is_part("audit.jsonl", "audit.jsonl.20231114T221320"));
  assert_false(
      rp_audit_is_part("audit.jsonl", "audit.jsonl.20231114T221320Z."));
  assert_false(rp_audit_is_part("audit", "audit.jsonl.20231114T221320Z"));
  assert_true(rp_audit_is_part("audit.jsonl", "audit.jsonl.20231114T221320Z"));
}

static void
test_daily_rotation(void **state)
{
  /* A file whose first line is from yesterday is rotated before the
   * first line of today; one from today is not. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit *a = open_opts(path, NULL, NULL);
  append_n(a, "x", 3);
  rp_audit_close(a);
  struct lines ls = split(path);
  time_t y = time(NULL) - 86400;
  struct tm tm;
  gmtime_r(&y, &tm);
  char ts[40];
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S.000000000Z", &tm);
  for (size_t i = 0; i < ls.n; i++)
    memcpy(ls.v[i] + 7, ts, 30);
  rechain(&ls, 0);
  join(path, &ls, 0, ls.n);
  struct rp_audit_options o = {.rotate_daily = true};
  a = open_opts(path, &o, NULL);
  append_n(a, "x", 2);
  assert_int_equal(rp_audit_rotations(a), 1);
  rp_audit_close(a);
  a = open_opts(path, &o, NULL);
  append_n(a, "x", 1);
  assert_int_equal(rp_audit_rotations(a), 0);
  rp_audit_close(a);
  char **files = NULL;
  size_t n = 0;
  assert_int_equal(rp_audit_files(path, &files, &n, NULL), 0);
  assert_int_equal(n, 2);
  struct lines old = split(files[0]), cur = split(files[1]);
  assert_int_equal(old.n, 3);
  assert_int_equal(cur.n, 3);
  assert_int_equal(
      rp_audit_verify((const char *const *)files, n, NULL, NULL, NULL), 0);
  lines_free(&old);
  lines_free(&cur);
  lines_free(&ls);
  rp_audit_files_free(files);
}

static void
test_recovery_reads_rotated_parts(void **state)
{
  /* A recycle began in a part that was rotated since; its end never came.
   * Another began and ended across the rotation. */
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  struct rp_audit_options o = {.rotate_size = 1024};
  struct rp_audit *a = open_opts(path, &o, NULL);
  cleanup_json json_t *b1 =
      json_pack("{s:s, s:s}", "provider", "local", "id", "aaa");
  cleanup_json json_t *b2 =
      json_pack("{s:s, s:s}", "provider", "local", "id", "bbb");
  assert_int_equal(rp_audit_append_sync(a, "recycle.begin", b1, NULL), 0);
  assert_int_equal(rp_audit_append_sync(a, "recycle.begin", b2, NULL), 0);
  append_n(a, "x", 12);
  assert_int_equal(rp_audit_append_sync(a, "recycle.done", b2, NULL), 0);
  assert_true(rp_audit_rotations(a) >= 1);
  rp_audit_close(a);
  json_t *open = NULL;
  assert_int_equal(rp_recovery_scan(path, &open, NULL), 0);
  json_t *arr = json_object_get(open, "local");
  assert_int_equal(json_array_size(arr), 1);
  assert_string_equal(str(json_array_get(arr, 0), "id"), "aaa");
  json_decref(open);
  /* The same when the live file is gone (a crash right after a rename). */
  cleanup_free char *part = rotate_by_hand(path, 1700000000);
  assert_int_equal(rp_recovery_scan(path, &open, NULL), 0);
  assert_int_equal(json_array_size(json_object_get(open, "local")), 1);
  json_decref(open);
}

/* --- syslog ------------------------------------------------------------- */

/* A datagram socket of the test's own, standing in for /dev/log. */
static int
syslog_socket(const char *path)
{
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

/* The next datagram (NUL-terminated), or NULL when there is none. */
static char *
next_datagram(int fd)
{
  char *buf = rp_xmalloc(65536);
  ssize_t n = recv(fd, buf, 65535, MSG_DONTWAIT);
  if (n < 0) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* "<86>Nov 30 06:13:23 reaper[PID]: " + the line exactly. */
static void
assert_copy(const char *msg, const char *line)
{
  assert_non_null(msg);
  assert_memory_equal(msg, "<86>", 4); /* LOG_AUTHPRIV | LOG_INFO */
  cleanup_free char *tag = rp_xasprintf(" reaper[%d]: ", (int)getpid());
  const char *t = strstr(msg, tag);
  assert_non_null(t);
  assert_int_equal(t - msg, 4 + 15); /* "Mmm dd hh:mm:ss" */
  size_t n = strlen(line) - 1;       /* without its newline */
  assert_int_equal(strlen(t + strlen(tag)), n);
  assert_memory_equal(t + strlen(tag), line, n);
}

static void
test_syslog_copy(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  cleanup_free char *sock = in_dir(state, "log.sock");
  cleanup_close int fd = syslog_socket(sock);
  struct key k = keygen(state, "k", 0600);
  struct rp_audit_options o = {
      .signing_key = k.priv, .checkpoint_every = 2, .syslog_path = sock};
  struct rp_audit *a = open_opts(path, &o, NULL);
  append_n(a, "x", 3); /* 3 lines and a checkpoint */
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct counter c = {0};
  assert_int_equal(rp_audit_append(a, &loop, "y", NULL, count_cb, &c), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(c.done, 1);
  seal(a);
  assert_int_equal(rp_audit_syslog_dropped(a), 0);
  rp_audit_close(a);
  assert_int_equal(uv_loop_close(&loop), 0);
  /* Every line, in order, as it is in the file. */
  struct lines ls = split(path);
  assert_int_equal(ls.n, 7);
  for (size_t i = 0; i < ls.n; i++) {
    cleanup_free char *m = next_datagram(fd);
    assert_copy(m, ls.v[i]);
  }
  assert_null(next_datagram(fd));
  lines_free(&ls);
  key_free(&k);
}

static void
test_syslog_never_blocks_or_breaks_the_log(void **state)
{
  cleanup_free char *path = in_dir(state, "audit.jsonl");
  cleanup_free char *sock = in_dir(state, "log.sock");
  /* No socket there: lines are written, copies dropped and counted. */
  struct rp_audit_options o = {.syslog_path = sock};
  struct rp_audit *a = open_opts(path, &o, NULL);
  append_n(a, "x", 3);
  assert_int_equal(rp_audit_syslog_dropped(a), 3);
  rp_audit_close(a);
  /* A socket nobody reads fills up (max_dgram_qlen): each copy waits at
   * most 100 ms, then is dropped; the log goes on. */
  cleanup_close int fd = syslog_socket(sock);
  a = open_opts(path, &o, NULL);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  append_n(a, "x", 20);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  uint64_t dropped = rp_audit_syslog_dropped(a);
  assert_true(dropped > 0 && dropped < 20);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  assert_true(s < (double)dropped * 0.1 + 2);
  /* A line longer than 8 KiB is cut, saying so. */
  for (char *m; (m = next_datagram(fd));)
    free(m);
  char *big = rp_xmalloc(20001);
  memset(big, 'b', 20000);
  big[20000] = '\0';
  cleanup_json json_t *f = json_pack("{s:s}", "blob", big);
  free(big);
  assert_int_equal(rp_audit_append_sync(a, "big", f, NULL), 0);
  rp_audit_close(a);
  cleanup_free char *m = next_datagram(fd);
  assert_non_null(m);
  assert_non_null(strstr(m, " [cut: 20"));
  assert_non_null(strstr(m, " bytes, whole in the audit log]"));
  const char *p = path;
  assert_int_equal(rp_audit_verify(&p, 1, NULL, NULL, NULL), 0);
}

/* --- configuration ------------------------------------------------------ */

#define CFG_TAIL                                                               \
  "providers:\n  - name: local\n    type: docker\n"                            \
  "policies:\n  - name: web\n    max_age: 2h\n"

static struct rp_config *
config_ok(const char *agent)
{
  cleanup_free char *text = rp_xasprintf("agent:\n%s" CFG_TAIL, agent);
  struct rp_config *c = NULL;
  cleanup_error struct rp_error *err = NULL;
  if (rp_config_parse("t.yaml", text, strlen(text), &c, &err) != 0)
    fail_msg("config: %s", err->message);
  return c;
}

static void
config_fails(const char *agent, const char *want)
{
  cleanup_free char *text = rp_xasprintf("agent:\n%s" CFG_TAIL, agent);
  struct rp_config *c = NULL;
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_config_parse("t.yaml", text, strlen(text), &c, &err), -1);
  if (strncmp(err->message, want, strlen(want)) != 0)
    fail_msg("got \"%s\", want \"%s...\"", err->message, want);
}

static void
test_config_keys(void **state)
{
  (void)state;
  struct rp_config *c = config_ok("  listen: \"\"\n");
  assert_int_equal(c->audit_rotate_size, 0);
  assert_false(c->audit_rotate_daily);
  assert_false(c->audit_syslog);
  assert_int_equal(c->audit_checkpoint_every, 1000);
  rp_config_free(c);
  c = config_ok("  audit_rotate_size: 100MiB\n  audit_rotate: daily\n"
                "  audit_syslog: true\n  audit_checkpoint_every: 50\n");
  assert_int_equal(c->audit_rotate_size, 100 * 1024 * 1024);
  assert_true(c->audit_rotate_daily);
  assert_true(c->audit_syslog);
  assert_int_equal(c->audit_checkpoint_every, 50);
  rp_config_free(c);
  c = config_ok("  audit_rotate_size: 2KB\n  audit_rotate: never\n");
  assert_int_equal(c->audit_rotate_size, 2000);
  assert_false(c->audit_rotate_daily);
  rp_config_free(c);
  c = config_ok("  audit_rotate_size: 4096\n");
  assert_int_equal(c->audit_rotate_size, 4096);
  rp_config_free(c);
  config_fails("  audit_rotate_size: 512\n",
               "t.yaml:2:22: agent.audit_rotate_size: 512 is too small: at "
               "least 1KiB");
  config_fails("  audit_rotate_size: 10 MiB\n",
               "t.yaml:2:22: agent.audit_rotate_size: expected a size like "
               "100MiB (B, KB, KiB, MB, MiB, GB, GiB, TB, TiB), got '10 MiB'");
  config_fails("  audit_rotate_size: 99999999999TiB\n",
               "t.yaml:2:22: agent.audit_rotate_size: expected a size like "
               "100MiB (B, KB, KiB, MB, MiB, GB, GiB, TB, TiB), got "
               "'99999999999TiB'");
  config_fails("  audit_rotate: weekly\n",
               "t.yaml:2:17: agent.audit_rotate: expected daily or never, got "
               "'weekly'");
  config_fails("  audit_syslog: yes\n",
               "t.yaml:2:17: agent.audit_syslog: expected true or false, got "
               "'yes'");
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_checkpoints_every_n_and_at_stop),
      T(test_truncation_caught),
      T(test_last_checkpoint_removed),
      T(test_rewritten_chain_caught),
      T(test_rewrite_after_a_checkpoint_caught),
      T(test_other_key),
      T(test_signing_key_refused),
      T(test_crash_then_restart),
      T(test_async_checkpoints_and_rotation),
      T(test_failed_checkpoint_write_rolls_back),
      T(test_rotation_three_files),
      T(test_crash_between_rename_and_new_file),
      T(test_parts_ordered_by_seq_not_name),
      T(test_daily_rotation),
      T(test_recovery_reads_rotated_parts),
      T(test_syslog_copy),
      T(test_syslog_never_blocks_or_breaks_the_log),
      T(test_config_keys),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
