/* What a registry (or whatever answers in its place) and a config.json may
 * say, through every parser of registry_auth.c and image_index.c: a
 * WWW-Authenticate value, a token answer, a realm URL, an index to choose
 * in, a manifest body, a config.json.  Besides not crashing: a challenge is
 * Basic or Bearer and a Bearer one has a realm fit for a URL; a token fits
 * in a header; a realm URL splits into an http(s) base and a path; a chosen
 * manifest has a valid digest and failures say which kind; credentials
 * found have a user and a password. */
#include "fuzz.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "image_index.h"
#include "image_ref.h"
#include "registry_auth.h"
#include "util.h"

static void
answers_challenge(const uint8_t *data, size_t size)
{
  struct rp_registry_challenge c;
  if (rp_registry_challenge_parse((const char *)data, size, &c) != 0) {
    RP_FUZZ_CHECK(c.scheme == RP_REGISTRY_SCHEME_NONE && !c.realm);
    return;
  }
  RP_FUZZ_CHECK(c.scheme == RP_REGISTRY_SCHEME_BASIC ||
                c.scheme == RP_REGISTRY_SCHEME_BEARER);
  if (c.scheme == RP_REGISTRY_SCHEME_BEARER) {
    RP_FUZZ_CHECK(c.realm && c.realm[0]);
    for (const char *p = c.realm; *p; p++)
      RP_FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
  }
  rp_registry_challenge_clear(&c);
}

static void
answers_token(const uint8_t *data, size_t size)
{
  char *token = NULL;
  int64_t expires = 0;
  cleanup_error struct rp_error *err = NULL;
  if (rp_registry_token_parse((const char *)data, size, &token, &expires,
                              &err) != 0) {
    RP_FUZZ_CHECK(err && err->code == RP_EPROTO && token == NULL);
    return;
  }
  RP_FUZZ_CHECK(token && token[0]);
  for (const char *p = token; *p; p++)
    RP_FUZZ_CHECK((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f);
  RP_FUZZ_CHECK(expires >= 60 && expires <= 365 * 86400);
  rp_registry_secret_free(token);
}

static void
answers_url(const char *s)
{
  char *base = NULL, *path = NULL;
  if (rp_registry_split_url(s, &base, &path) != 0) {
    RP_FUZZ_CHECK(!base && !path);
    return;
  }
  RP_FUZZ_CHECK(strncasecmp(base, "http://", 7) == 0 ||
                strncasecmp(base, "https://", 8) == 0);
  RP_FUZZ_CHECK(path[0] == '/' && !strchr(base + 8, '/') && !strchr(base, '@'));
  free(base);
  free(path);
}

static void
answers_index(const uint8_t *data, size_t size)
{
  static const char *platforms[] = {"linux/amd64", "linux/arm/v7",
                                    "linux/arm64"};
  for (size_t i = 0; i < RP_ARRAY_LEN(platforms); i++) {
    struct rp_platform p;
    RP_FUZZ_CHECK(rp_platform_parse(platforms[i], &p, NULL) == 0);
    char *digest = NULL;
    cleanup_error struct rp_error *err = NULL;
    if (rp_image_index_select((const char *)data, size, &p, &digest, &err) !=
        0) {
      RP_FUZZ_CHECK(err && (err->code == RP_EPROTO || err->code == ENOEXEC));
      RP_FUZZ_CHECK(digest == NULL);
      continue;
    }
    RP_FUZZ_CHECK(rp_image_digest_valid(digest));
    free(digest);
  }
  char *mt = NULL;
  enum rp_manifest_kind k =
      rp_manifest_kind_of_body((const char *)data, size, &mt);
  RP_FUZZ_CHECK(k == RP_MANIFEST_UNKNOWN || k == RP_MANIFEST_IMAGE ||
                k == RP_MANIFEST_INDEX);
  free(mt);
}

static void
answers_config(const uint8_t *data, size_t size)
{
  struct rp_registry_auth *a = NULL;
  cleanup_error struct rp_error *err = NULL;
  if (rp_registry_auth_parse((const char *)data, size, "config.json", &a,
                             &err) != 0) {
    RP_FUZZ_CHECK(err && err->code == RP_ECONFIG && a == NULL);
    return;
  }
  static const char *domains[] = {"docker.io", "127.0.0.1:5000", "ghcr.io",
                                  "h"};
  for (size_t i = 0; i < RP_ARRAY_LEN(domains); i++) {
    const struct rp_registry_cred *c = rp_registry_auth_find(a, domains[i]);
    if (c == NULL)
      continue;
    RP_FUZZ_CHECK(c->username && c->password);
    char *basic = rp_registry_basic_credentials(c);
    RP_FUZZ_CHECK(strncmp(basic, "Basic ", 6) == 0);
    rp_registry_secret_free(basic);
  }
  (void)rp_registry_auth_count(a);
  (void)rp_registry_auth_has_helpers(a);
  rp_registry_auth_free(a);
}

int
rp_fuzz_registry_answers_run(const uint8_t *data, size_t size)
{
  answers_challenge(data, size);
  answers_token(data, size);
  answers_index(data, size);
  answers_config(data, size);
  cleanup_free char *s = rp_xstrndup((const char *)data, size);
  answers_url(s);
  return 0;
}

#ifndef RP_FUZZ_NO_MAIN
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return rp_fuzz_registry_answers_run(data, size);
}
#endif
