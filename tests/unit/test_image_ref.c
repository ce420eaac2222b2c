/* Image references as docker reads them: the cases of
 * distribution/reference's normalize_test.go and reference_test.go that
 * matter to reaper, plus the ones that decide which host is asked and how
 * (docker.io's API host, plain HTTP for loopback only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "image_ref.h"
#include "util.h"

#define D64                                                                    \
  "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct good {
  const char *in;
  const char *domain, *path, *tag, *digest;
  const char *canonical;
};

static const struct good goods[] = {
    {"busybox", "docker.io", "library/busybox", "latest", NULL,
     "docker.io/library/busybox:latest"},
    {"busybox:1.36", "docker.io", "library/busybox", "1.36", NULL,
     "docker.io/library/busybox:1.36"},
    {"library/busybox", "docker.io", "library/busybox", "latest", NULL, NULL},
    {"docker.io/busybox", "docker.io", "library/busybox", "latest", NULL, NULL},
    {"docker.io/library/busybox:musl", "docker.io", "library/busybox", "musl",
     NULL, NULL},
    {"index.docker.io/busybox:1", "docker.io", "library/busybox", "1", NULL,
     "docker.io/library/busybox:1"},
    {"index.docker.io/org/app", "docker.io", "org/app", "latest", NULL, NULL},
    {"org/app", "docker.io", "org/app", "latest", NULL,
     "docker.io/org/app:latest"},
    {"org/sub/app:v1", "docker.io", "org/sub/app", "v1", NULL, NULL},
    {"localhost/app", "localhost", "app", "latest", NULL,
     "localhost/app:latest"},
    {"localhost:5000/app:2", "localhost:5000", "app", "2", NULL, NULL},
    /* No slash: the first component is not a host; ":5000" is a tag. */
    {"localhost:5000", "docker.io", "library/localhost", "5000", NULL, NULL},
    {"127.0.0.1:5000/rpt/app:1", "127.0.0.1:5000", "rpt/app", "1", NULL,
     "127.0.0.1:5000/rpt/app:1"},
    {"ghcr.io/org/app@" D64, "ghcr.io", "org/app", NULL, D64,
     "ghcr.io/org/app@" D64},
    {"ghcr.io/org/app:1.0@" D64, "ghcr.io", "org/app", "1.0", D64,
     "ghcr.io/org/app:1.0@" D64},
    {"busybox@" D64, "docker.io", "library/busybox", NULL, D64, NULL},
    {"[::1]:5000/app", "[::1]:5000", "app", "latest", NULL, NULL},
    {"[2001:db8::1]/app:x", "[2001:db8::1]", "app", "x", NULL, NULL},
    /* An upper-case first component can only be a host. */
    {"Foo/bar", "Foo", "bar", "latest", NULL, NULL},
    {"my-registry.example.com:443/a/b_c/d__e/f-g--h:Tag_1.2-x",
     "my-registry.example.com:443", "a/b_c/d__e/f-g--h", "Tag_1.2-x", NULL,
     NULL},
    {"a.b", "docker.io", "library/a.b", "latest", NULL, NULL},
    {"a.b/c", "a.b", "c", "latest", NULL, NULL},
    {"quay.io/prometheus/node-exporter:v1.8.1", "quay.io",
     "prometheus/node-exporter", "v1.8.1", NULL, NULL},
    {"registry.example.com/app:_x", "registry.example.com", "app", "_x", NULL,
     NULL},
    {"a/b@sha512:"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
     "docker.io", "a/b", NULL,
     "sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
     NULL},
};

static void
assert_str_or_null(const char *want, const char *got, const char *in)
{
  if (want == NULL && got == NULL)
    return;
  if (want == NULL || got == NULL || strcmp(want, got) != 0)
    fail_msg("%s: expected '%s', got '%s'", in, want ? want : "(null)",
             got ? got : "(null)");
}

static void
test_good(void **state)
{
  (void)state;
  for (size_t i = 0; i < RP_ARRAY_LEN(goods); i++) {
    const struct good *g = &goods[i];
    struct rp_image_ref ref;
    cleanup_error struct rp_error *err = NULL;
    if (rp_image_ref_parse(g->in, &ref, &err) != 0)
      fail_msg("%s: refused: %s", g->in, err->message);
    assert_str_or_null(g->domain, ref.domain, g->in);
    assert_str_or_null(g->path, ref.path, g->in);
    assert_str_or_null(g->tag, ref.tag, g->in);
    assert_str_or_null(g->digest, ref.digest, g->in);
    cleanup_free char *canon = rp_image_ref_format(&ref);
    if (g->canonical)
      assert_str_or_null(g->canonical, canon, g->in);
    /* The canonical form reads back as the same reference. */
    struct rp_image_ref again;
    assert_int_equal(rp_image_ref_parse(canon, &again, NULL), 0);
    assert_str_or_null(ref.domain, again.domain, canon);
    assert_str_or_null(ref.path, again.path, canon);
    assert_str_or_null(ref.tag, again.tag, canon);
    assert_str_or_null(ref.digest, again.digest, canon);
    rp_image_ref_clear(&again);
    rp_image_ref_clear(&ref);
  }
}

struct bad {
  const char *in;
  const char *why; /* a part of the message */
};

static void
test_bad(void **state)
{
  (void)state;
  char long_tag[160], long_name[300];
  snprintf(long_tag, sizeof(long_tag), "busybox:%0129d", 0);
  memset(long_name, 'a', sizeof(long_name));
  memcpy(long_name, "example.com/", 12);
  long_name[sizeof(long_name) - 1] = '\0';
  const struct bad bads[] = {
      {"", "empty"},
      {"Busybox", "must be lowercase"},
      {"docker.io/Library/busybox", "must be lowercase"},
      {"example.com/App:1", "must be lowercase"},
      {"busybox:", "tag"},
      {"busybox:-x", "tag"},
      {"busybox:.x", "tag"},
      {long_tag, "tag"},
      {"busybox@sha256:abc", "digest"},
      {"busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef"
       "0123456789abcdef",
       "digest"},
      {"busybox@md5:0123456789abcdef0123456789abcdef", "digest"},
      {"busybox@", "digest"},
      {"busybox@" D64 "@" D64, "digest"},
      {"a//b", "repository path"},
      {"a/b/", "repository path"},
      {"/a", "repository path"},
      {"-a/b", "repository path"},
      {"a___b", "repository path"},
      {"a_.b", "repository path"},
      {"a..b", "repository path"},
      {"a-", "repository path"},
      {"a b", "repository path"},
      {"example.com/a b", "repository path"},
      {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
       "image id"},
      {"host:port:x/app", "registry host"},
      {"example.com:/app", "registry host"},
      {"-example.com/app", "registry host"},
      {"exa_mple.com/app", "registry host"},
      {"[::1/app", "registry host"},
      {"[]/app", "repository path"}, /* not host-like: docker.io */
      {"example.com/app:tag:x", "tag"},
      {long_name, "longer than 255"},
      {"a/b\n", "repository path"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(bads); i++) {
    struct rp_image_ref ref;
    cleanup_error struct rp_error *err = NULL;
    if (rp_image_ref_parse(bads[i].in, &ref, &err) == 0)
      fail_msg("'%s' was accepted", bads[i].in);
    assert_int_equal(err->code, RP_EPROTO);
    if (strstr(err->message, bads[i].why) == NULL)
      fail_msg("'%s': message '%s' does not say '%s'", bads[i].in, err->message,
               bads[i].why);
    /* Nothing unprintable goes into a message. */
    for (const char *c = err->message; *c; c++)
      assert_true(*c >= 0x20 && *c < 0x7f);
    assert_null(ref.domain);
    assert_null(ref.path);
  }
}

static void
test_name_and_manifest_ref(void **state)
{
  (void)state;
  struct rp_image_ref ref;
  assert_int_equal(rp_image_ref_parse("busybox", &ref, NULL), 0);
  cleanup_free char *name = rp_image_ref_name(&ref);
  assert_string_equal(name, "docker.io/library/busybox");
  assert_string_equal(rp_image_ref_manifest_ref(&ref), "latest");
  rp_image_ref_clear(&ref);
  /* Docker pulls by digest when there is one, whatever the tag. */
  assert_int_equal(rp_image_ref_parse("app:1@" D64, &ref, NULL), 0);
  assert_string_equal(rp_image_ref_manifest_ref(&ref), D64);
  struct rp_image_ref copy;
  rp_image_ref_copy(&copy, &ref);
  rp_image_ref_clear(&ref);
  assert_string_equal(copy.tag, "1");
  assert_string_equal(copy.digest, D64);
  rp_image_ref_clear(&copy);
  rp_image_ref_clear(NULL);
}

static void
test_hosts(void **state)
{
  (void)state;
  assert_string_equal(rp_image_ref_api_host("docker.io"),
                      "registry-1.docker.io");
  assert_string_equal(rp_image_ref_api_host("ghcr.io"), "ghcr.io");
  const char *plain[] = {"localhost", "localhost:5000", "LOCALHOST:1",
                         "127.0.0.1", "127.0.0.1:5000", "127.255.3.4:80",
                         "[::1]",     "[::1]:5000"};
  for (size_t i = 0; i < RP_ARRAY_LEN(plain); i++)
    if (!rp_image_ref_plain_http(plain[i]))
      fail_msg("%s should be plain HTTP", plain[i]);
  const char *tls[] = {"docker.io",
                       "ghcr.io",
                       "128.0.0.1",
                       "10.0.0.1:5000",
                       "localhost.example.com",
                       "127.example.com",
                       "[::2]:5000",
                       "1.127.0.0",
                       "127.0.0.1.nip.io:5000"};
  for (size_t i = 0; i < RP_ARRAY_LEN(tls); i++)
    if (rp_image_ref_plain_http(tls[i]))
      fail_msg("%s should be HTTPS", tls[i]);
  cleanup_free char *hub = rp_image_ref_registry_url("docker.io");
  assert_string_equal(hub, "https://registry-1.docker.io");
  cleanup_free char *local = rp_image_ref_registry_url("127.0.0.1:5000");
  assert_string_equal(local, "http://127.0.0.1:5000");
}

static void
test_digest_valid(void **state)
{
  (void)state;
  assert_true(rp_image_digest_valid(D64));
  assert_false(rp_image_digest_valid(NULL));
  assert_false(rp_image_digest_valid(""));
  assert_false(rp_image_digest_valid("sha256:"));
  assert_false(rp_image_digest_valid(D64 "0"));
  assert_false(rp_image_digest_valid("SHA256:0123456789abcdef0123456789abcdef"
                                     "0123456789abcdef0123456789abcdef"));
  assert_false(rp_image_digest_valid("sha384:0123456789abcdef0123456789abcdef"
                                     "0123456789abcdef0123456789abcdef"));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good),
      cmocka_unit_test(test_bad),
      cmocka_unit_test(test_name_and_manifest_ref),
      cmocka_unit_test(test_hosts),
      cmocka_unit_test(test_digest_valid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
