/* Image references (a container's image string: a workload's, so
 * untrusted) through rp_image_ref_parse.  Besides not crashing, what parses
 * is what distribution's grammar allows and reads back the ref_same from its
 * canonical form; a failure is RP_EPROTO with a printable message and an
 * empty reference. */
#include "fuzz.h"

#include <ctype.h>
#include <string.h>

#include "error.h"
#include "image_ref.h"
#include "util.h"

static bool
ref_same(const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void
ref_check(const struct rp_image_ref *ref)
{
  RP_FUZZ_CHECK(ref->domain && ref->domain[0]);
  RP_FUZZ_CHECK(ref->path && ref->path[0]);
  RP_FUZZ_CHECK(ref->tag || ref->digest);
  RP_FUZZ_CHECK(strlen(ref->domain) + 1 + strlen(ref->path) <=
                RP_IMAGE_NAME_MAX);
  RP_FUZZ_CHECK(strcmp(ref->domain, "index.docker.io") != 0);
  for (const char *c = ref->path; *c; c++)
    RP_FUZZ_CHECK(islower((unsigned char)*c) || isdigit((unsigned char)*c) ||
                  strchr("._-/", *c));
  RP_FUZZ_CHECK(ref->path[0] != '/' && !strstr(ref->path, "//"));
  if (strcmp(ref->domain, "docker.io") == 0)
    RP_FUZZ_CHECK(strchr(ref->path, '/') != NULL);
  if (ref->tag)
    RP_FUZZ_CHECK(strlen(ref->tag) <= RP_IMAGE_TAG_MAX && ref->tag[0] &&
                  !strchr(ref->tag, ':') && !strchr(ref->tag, '@'));
  if (ref->digest)
    RP_FUZZ_CHECK(rp_image_digest_valid(ref->digest));
  RP_FUZZ_CHECK(rp_image_ref_api_host(ref->domain) != NULL);
  (void)rp_image_ref_plain_http(ref->domain);
  cleanup_free char *url = rp_image_ref_registry_url(ref->domain);
  RP_FUZZ_CHECK(strncmp(url, "http://", 7) == 0 ||
                strncmp(url, "https://", 8) == 0);

  /* The canonical form is a reference of its own, the ref_same one. */
  cleanup_free char *canon = rp_image_ref_format(ref);
  struct rp_image_ref again;
  cleanup_error struct rp_error *err = NULL;
  RP_FUZZ_CHECK(rp_image_ref_parse(canon, &again, &err) == 0);
  RP_FUZZ_CHECK(ref_same(ref->domain, again.domain));
  RP_FUZZ_CHECK(ref_same(ref->path, again.path));
  RP_FUZZ_CHECK(ref_same(ref->tag, again.tag));
  RP_FUZZ_CHECK(ref_same(ref->digest, again.digest));
  cleanup_free char *canon2 = rp_image_ref_format(&again);
  RP_FUZZ_CHECK(strcmp(canon, canon2) == 0);
  rp_image_ref_clear(&again);
}

int
rp_fuzz_image_ref_run(const uint8_t *data, size_t size)
{
  cleanup_free char *s = rp_xstrndup((const char *)data, size);
  struct rp_image_ref ref;
  cleanup_error struct rp_error *err = NULL;
  if (rp_image_ref_parse(s, &ref, &err) != 0) {
    RP_FUZZ_CHECK(err && err->code == RP_EPROTO && err->message);
    for (const char *c = err->message; *c; c++)
      RP_FUZZ_CHECK(*c >= 0x20 && *c < 0x7f);
    RP_FUZZ_CHECK(!ref.domain && !ref.path && !ref.tag && !ref.digest);
    return 0;
  }
  ref_check(&ref);
  rp_image_ref_clear(&ref);
  return 0;
}

#ifndef RP_FUZZ_NO_MAIN
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return rp_fuzz_image_ref_run(data, size);
}
#endif
