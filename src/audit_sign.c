/* Signed checkpoints: Ed25519 keys through libcrypto, their ids, and the
 * bytes a checkpoint signs (audit.h has the format).
 *
 * Ed25519 signs the message itself (no separate digest), which is what
 * EVP_DigestSign does for it with a NULL digest; `openssl pkeyutl -rawin`
 * checks the same signature, so an auditor needs no reaper to verify. */
#include "audit.h"
#include "file_trust.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "util.h"

#define SIG_BYTES 64
#define RAW_KEY_BYTES 32

struct rp_audit_key {
  EVP_PKEY *pkey; /* owned */
  char id[RP_AUDIT_KEY_ID_LEN + 1];
};

static void
crypto_failed(const char *what)
{
  /* Only allocation makes these fail with a valid key: treated as memory
   * exhaustion, as rp_xmalloc does. */
  fprintf(stderr, "reaper: libcrypto %s failed (out of memory?)\n", what);
  abort();
}

static void
md_ctx_freep(EVP_MD_CTX **c)
{
  EVP_MD_CTX_free(*c);
}

static void
pkey_freep(EVP_PKEY **k)
{
  EVP_PKEY_free(*k);
}

/* A passphrase is never asked for (the agent has no terminal): an
 * encrypted key fails to load. */
static int
no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
  (void)buf, (void)size, (void)rwflag, (void)u;
  return -1;
}

static int
key_error(struct rp_error **err, const char *path, const char *what)
{
  ERR_clear_error();
  return rp_error_set(err, RP_ECONFIG, "%s: %s", path, what);
}

int
rp_audit_key_load(const char *path, bool signing, struct rp_audit_key **out,
                  struct rp_error **err)
{
  *out = NULL;
  /* Whoever can read the private key can sign a rewritten log; whoever
   * can replace it can make reaper sign with a key of theirs. */
  if (signing && rp_file_trust_check(path, NULL, RP_TRUST_SECRET, err) != 0)
    return -1;
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return rp_error_set(err, RP_ECONFIG, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0)
    return rp_error_set(err, RP_ECONFIG, "%s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return rp_error_set(err, RP_ECONFIG, "%s: not a regular file", path);
  cleanup_fclose FILE *f = fdopen(fd, "r");
  if (!f)
    return rp_error_set(err, RP_ECONFIG, "%s: %s", path, strerror(errno));
  fd = -1; /* the FILE owns it now */
  __attribute__((cleanup(pkey_freep))) EVP_PKEY *pkey =
      PEM_read_PrivateKey(f, NULL, no_passphrase_cb, NULL);
  if (!pkey && signing)
    return key_error(err, path,
                     "not an unencrypted PEM private key (make one with "
                     "`openssl genpkey -algorithm ed25519 -out KEY`)");
  if (!pkey) {
    ERR_clear_error();
    rewind(f);
    pkey = PEM_read_PUBKEY(f, NULL, no_passphrase_cb, NULL);
    if (!pkey)
      return key_error(err, path,
                       "not a PEM public key (`openssl pkey -in KEY -pubout "
                       "-out PUB` makes one)");
  }
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519)
    return key_error(err, path, "not an Ed25519 key");
  unsigned char raw[RAW_KEY_BYTES];
  size_t raw_len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(pkey, raw, &raw_len) != 1 ||
      raw_len != RAW_KEY_BYTES)
    return key_error(err, path, "cannot read its public key");
  struct rp_audit_key *k = rp_xcalloc(1, sizeof(*k));
  char hex[65];
  rp_audit_sha256_hex(raw, raw_len, hex);
  memcpy(k->id, hex, RP_AUDIT_KEY_ID_LEN);
  k->id[RP_AUDIT_KEY_ID_LEN] = '\0';
  k->pkey = RP_STEAL(pkey);
  *out = k;
  return 0;
}

void
rp_audit_key_free(struct rp_audit_key *k)
{
  if (!k)
    return;
  EVP_PKEY_free(k->pkey);
  free(k);
}

const char *
rp_audit_key_id(const struct rp_audit_key *k)
{
  return k ? k->id : NULL;
}

char *
rp_audit_checkpoint_message(uint64_t seq, const char *prev, const char *ts,
                            const char *reason, const char *file,
                            const char *key_id, size_t *len)
{
  char *m =
      rp_xasprintf("reaper audit.checkpoint v1\n"
                   "seq=%llu\nprev=%s\nts=%s\nreason=%s\nfile=%s\n"
                   "key_id=%s\n",
                   (unsigned long long)seq, prev, ts, reason, file, key_id);
  *len = strlen(m);
  return m;
}

void
rp_audit_key_sign(const struct rp_audit_key *k, const char *msg, size_t len,
                  char sig[RP_AUDIT_SIG_LEN + 1])
{
  __attribute__((cleanup(md_ctx_freep))) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char raw[SIG_BYTES];
  size_t raw_len = sizeof(raw);
  if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
      EVP_DigestSign(ctx, raw, &raw_len, (const unsigned char *)msg, len) !=
          1 ||
      raw_len != SIG_BYTES)
    crypto_failed("Ed25519 signing");
  EVP_EncodeBlock((unsigned char *)sig, raw, SIG_BYTES);
  sig[RP_AUDIT_SIG_LEN] = '\0';
}

bool
rp_audit_key_verify(const struct rp_audit_key *k, const char *msg, size_t len,
                    const char *sig)
{
  /* 64 bytes are 88 base64 characters ending in "=="; EVP_DecodeBlock
   * counts the padding as two zero bytes. */
  if (!sig || strlen(sig) != RP_AUDIT_SIG_LEN ||
      strcmp(sig + RP_AUDIT_SIG_LEN - 2, "==") != 0)
    return false;
  unsigned char raw[SIG_BYTES + 3];
  if (EVP_DecodeBlock(raw, (const unsigned char *)sig, RP_AUDIT_SIG_LEN) !=
      SIG_BYTES + 2) {
    ERR_clear_error();
    return false;
  }
  __attribute__((cleanup(md_ctx_freep))) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1)
    crypto_failed("Ed25519 verification");
  bool ok = EVP_DigestVerify(ctx, raw, SIG_BYTES, (const unsigned char *)msg,
                             len) == 1;
  ERR_clear_error();
  return ok;
}
