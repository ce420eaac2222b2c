/* The listener's bearer token (bearer.h). */
#include "bearer.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "file_trust.h"
#include "util.h"

#define TOKEN_MAX 4096

int
rp_bearer_load(const char *path, struct rp_bearer *out, struct rp_error **err)
{
  /* Whoever can read the token can read the agent's state; whoever can
   * replace it can lock its operators out.  A missing file is said by the
   * open below. */
  if (access(path, F_OK) == 0 &&
      rp_file_trust_check(path, "listen token file", RP_TRUST_SECRET, err) != 0)
    return -1;
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return rp_error_set(err, errno == ENOENT ? RP_ECONFIG : errno,
                        "listen token file %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0)
    return rp_error_set(err, errno, "listen token file %s: %s", path,
                        strerror(errno));
  if (!S_ISREG(st.st_mode))
    return rp_error_set(err, RP_ECONFIG,
                        "listen token file %s: not a regular file", path);
  char buf[TOKEN_MAX + 2];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return rp_error_set(err, errno, "listen token file %s: %s", path,
                          strerror(errno));
    if (r == 0)
      break;
    n += (size_t)r;
    if (n == sizeof(buf) - 1)
      break;
  }
  buf[n] = '\0';
  char *b = buf, *e = buf + n;
  while (b < e && strchr(" \t\r\n", *b))
    b++;
  while (e > b && strchr(" \t\r\n", e[-1]))
    e--;
  int rc = 0;
  if (e - b > TOKEN_MAX)
    rc = rp_error_set(err, RP_ECONFIG,
                      "listen token file %s: longer than %d bytes", path,
                      TOKEN_MAX);
  else if (e == b)
    rc = rp_error_set(err, RP_ECONFIG, "listen token file %s: empty", path);
  for (const char *p = b; rc == 0 && p < e; p++)
    if (*p < 0x21 || *p > 0x7e)
      rc = rp_error_set(err, RP_ECONFIG,
                        "listen token file %s: the token must be one word "
                        "of printable ASCII",
                        path);
  if (rc == 0)
    SHA256((const unsigned char *)b, (size_t)(e - b), out->sha);
  explicit_bzero(buf, sizeof(buf));
  return rc;
}

bool
rp_bearer_matches(const struct rp_bearer *b, const char *authorization)
{
  const char *v = authorization;
  if (!v)
    return false;
  while (*v == ' ' || *v == '\t')
    v++;
  if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
    return false;
  v += 6;
  while (*v == ' ' || *v == '\t')
    v++;
  size_t n = strlen(v);
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  unsigned char sha[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)v, n, sha);
  return CRYPTO_memcmp(sha, b->sha, sizeof(sha)) == 0;
}

void
rp_bearer_clear(struct rp_bearer *b)
{
  explicit_bzero(b->sha, sizeof(b->sha));
}
