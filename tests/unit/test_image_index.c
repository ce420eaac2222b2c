/* The manifest an engine runs from a multi-platform index: BuildKit's OCI
 * index with attestation manifests, a Docker manifest list with arm
 * variants (tests/unit/data/registry, see its README), platforms as engines
 * report them, the order of fallbacks, and digests. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "image_index.h"
#include "util.h"

#define DATA TEST_DATA_DIR "/registry/"

static char *
slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = rp_xmalloc(1 << 16);
  *len = fread(buf, 1, (1 << 16) - 1, f);
  buf[*len] = '\0';
  fclose(f);
  return buf;
}

/* The digest of a short name, as the fixtures hold them. */
static char *
named(const char *name)
{
  char d[RP_DIGEST_SHA256_LEN];
  rp_image_digest_sha256(name, strlen(name), d);
  return rp_xstrdup(d);
}

/* Selects in FILE for PLATFORM and checks the entry is NAME (NULL: no
 * entry, ENOEXEC). */
static void
expect(const char *file, const char *platform, const char *name)
{
  size_t len;
  cleanup_free char *json = slurp(file, &len);
  struct rp_platform p;
  assert_int_equal(rp_platform_parse(platform, &p, NULL), 0);
  cleanup_free char *digest = NULL;
  cleanup_error struct rp_error *err = NULL;
  int rc = rp_image_index_select(json, len, &p, &digest, &err);
  if (name == NULL) {
    if (rc == 0)
      fail_msg("%s: %s chose %s, expected none", file, platform, digest);
    assert_int_equal(err->code, ENOEXEC);
    return;
  }
  if (rc != 0)
    fail_msg("%s: %s: %s", file, platform, err->message);
  cleanup_free char *want = named(name);
  if (strcmp(want, digest) != 0)
    fail_msg("%s: %s chose %s, expected the entry %s", file, platform, digest,
             name);
}

static void
test_oci_index_with_attestations(void **state)
{
  (void)state;
  const char *f = DATA "oci-index-buildx.json";
  expect(f, "linux/amd64", "amd64");
  expect(f, "linux/x86_64", "amd64");
  expect(f, "linux/arm64", "arm64");
  expect(f, "linux/arm64/v8", "arm64");
  expect(f, "linux/aarch64", "arm64");
  /* amd64/v3 runs amd64 (v1). */
  expect(f, "linux/amd64/v3", "amd64");
  expect(f, "linux/arm/v7", NULL);
  expect(f, "linux/ppc64le", NULL);
  expect(f, "windows/amd64", NULL);
  /* What is not there is said, attestations not counted as platforms. */
  size_t len;
  cleanup_free char *json = slurp(f, &len);
  struct rp_platform p;
  assert_int_equal(rp_platform_parse("linux/s390x", &p, NULL), 0);
  cleanup_free char *digest = NULL;
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_image_index_select(json, len, &p, &digest, &err), -1);
  assert_string_equal(err->message, "no manifest for linux/s390x in the index "
                                    "(linux/amd64, linux/arm64)");
}

static void
test_docker_list_arm_variants(void **state)
{
  (void)state;
  const char *f = DATA "docker-list-arm.json";
  expect(f, "linux/amd64", "amd64");
  expect(f, "linux/arm/v7", "arm-v7");
  expect(f, "linux/arm", "arm-v7"); /* arm without variant is v7 */
  expect(f, "linux/armhf", "arm-v7");
  expect(f, "linux/arm/v6", "arm-v6");
  expect(f, "linux/armel", "arm-v6");
  expect(f, "linux/arm/v5", "arm-v5");
  /* 32-bit arm v8 has no entry of its own: the best below it. */
  expect(f, "linux/arm/v8", "arm-v7");
  expect(f, "linux/arm64", "arm64-v8");
  expect(f, "linux/386", "i386");
  expect(f, "linux/i386", "i386");
  expect(f, "linux/ppc64le", "ppc64le");
  expect(f, "linux/s390x", "s390x");
  expect(f, "linux/riscv64", NULL);
}

static void
select_inline(const char *json, const char *platform, char **digest,
              struct rp_error **err, int want_rc)
{
  struct rp_platform p;
  assert_int_equal(rp_platform_parse(platform, &p, NULL), 0);
  int rc = rp_image_index_select(json, strlen(json), &p, digest, err);
  if (rc != want_rc)
    fail_msg("%s in %s: rc %d (%s)", platform, json, rc,
             *err ? (*err)->message : "no error");
}

#define ENTRY(mt, dig, plat, extra)                                            \
  "{\"mediaType\":\"" mt "\",\"digest\":\"" dig "\"" extra                     \
  ",\"platform\":" plat "}"
#define OCI_M "application/vnd.oci.image.manifest.v1+json"
#define DA                                                                     \
  "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB                                                                     \
  "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC                                                                     \
  "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static void
test_fallbacks_and_order(void **state)
{
  (void)state;
  struct {
    const char *json, *platform, *want;
  } cases[] = {
      /* The exact platform beats a fallback listed before it. */
      {"{\"manifests\":[" ENTRY(OCI_M, DA,
                                "{\"os\":\"linux\",\"architecture\":"
                                "\"arm\",\"variant\":\"v6\"}",
                                "") "," ENTRY(OCI_M, DB,
                                              "{\"os\":\"linux\","
                                              "\"architecture\":\"arm\","
                                              "\"variant\":\"v7\"}",
                                              "") "]}",
       "linux/arm/v7", DB},
      /* Without v7: v6 before v5, whatever the order in the index. */
      {"{\"manifests\":[" ENTRY(OCI_M, DA,
                                "{\"os\":\"linux\",\"architecture\":"
                                "\"arm\",\"variant\":\"v5\"}",
                                "") "," ENTRY(OCI_M, DB,
                                              "{\"os\":\"linux\","
                                              "\"architecture\":\"arm\","
                                              "\"variant\":\"v6\"}",
                                              "") "]}",
       "linux/arm/v7", DB},
      /* amd64/v3: v2 before plain amd64, plain amd64 before 386. */
      {"{\"manifests\":[" ENTRY(OCI_M, DA,
                                "{\"os\":\"linux\",\"architecture\":"
                                "\"amd64\"}",
                                "") "," ENTRY(OCI_M, DB,
                                              "{\"os\":\"linux\","
                                              "\"architecture\":\"amd64\","
                                              "\"variant\":\"v2\"}",
                                              "") "]}",
       "linux/amd64/v3", DB},
      {"{\"manifests\":[" ENTRY(OCI_M, DA,
                                "{\"os\":\"linux\",\"architecture\":"
                                "\"386\"}",
                                "") "," ENTRY(OCI_M, DB,
                                              "{\"os\":\"linux\","
                                              "\"architecture\":\"amd64\"}",
                                              "") "]}",
       "linux/amd64", DB},
      /* Only 386 there: an amd64 engine runs it. */
      {"{\"manifests\":[" ENTRY(OCI_M, DA,
                                "{\"os\":\"linux\",\"architecture\":"
                                "\"386\"}",
                                "") "]}",
       "linux/amd64", DA},
      /* But amd64/v2 alone is too new for plain amd64. */
      {"{\"manifests\":[" ENTRY(OCI_M, DA,
                                "{\"os\":\"linux\",\"architecture\":"
                                "\"amd64\",\"variant\":\"v2\"}",
                                "") "]}",
       "linux/amd64", NULL},
      /* Two entries for one platform: the first, as the engine. */
      {"{\"manifests\":[" ENTRY(OCI_M, DA,
                                "{\"os\":\"linux\",\"architecture\":"
                                "\"amd64\"}",
                                "") "," ENTRY(OCI_M, DB,
                                              "{\"os\":\"linux\","
                                              "\"architecture\":\"amd64\"}",
                                              "") "]}",
       "linux/amd64", DA},
      /* An attestation that claims a platform is still skipped. */
      {"{\"manifests\":[" ENTRY(
           OCI_M, DC, "{\"os\":\"linux\",\"architecture\":\"amd64\"}",
           ",\"annotations\":{\"vnd.docker.reference.type\":"
           "\"attestation-manifest\"}") "," ENTRY(OCI_M, DA,
                                                  "{\"os\":\"linux\","
                                                  "\"architecture\":"
                                                  "\"amd64\"}",
                                                  "") "]}",
       "linux/amd64", DA},
      /* A nested index is not an image the engine runs. */
      {"{\"manifests\":[" ENTRY("application/vnd.oci.image.index.v1+json", DC,
                                "{\"os\":\"linux\",\"architecture\":"
                                "\"amd64\"}",
                                "") "," ENTRY(OCI_M, DA,
                                              "{\"os\":\"linux\","
                                              "\"architecture\":\"amd64\"}",
                                              "") "]}",
       "linux/amd64", DA},
      /* Case and arm64's v8 are normalized on both sides. */
      {"{\"manifests\":[" ENTRY(OCI_M, DA,
                                "{\"os\":\"Linux\",\"architecture\":"
                                "\"AArch64\",\"variant\":\"8\"}",
                                "") "]}",
       "linux/arm64", DA},
      /* An arm64 engine runs 32-bit arm when there is nothing else. */
      {"{\"manifests\":[" ENTRY(OCI_M, DA,
                                "{\"os\":\"linux\",\"architecture\":"
                                "\"arm\",\"variant\":\"v7\"}",
                                "") "]}",
       "linux/arm64", DA},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(cases); i++) {
    cleanup_free char *digest = NULL;
    cleanup_error struct rp_error *err = NULL;
    select_inline(cases[i].json, cases[i].platform, &digest, &err,
                  cases[i].want ? 0 : -1);
    if (cases[i].want)
      assert_string_equal(digest, cases[i].want);
    else
      assert_int_equal(err->code, ENOEXEC);
  }
}

static void
test_bad_indexes(void **state)
{
  (void)state;
  const char *bad[] = {
      "",
      "not json",
      "[]",
      "{\"schemaVersion\":2,\"layers\":[]}",
      "{\"manifests\":{}}",
      /* The chosen entry's digest is not a digest. */
      "{\"manifests\":[" ENTRY(OCI_M, "sha256:xyz",
                               "{\"os\":\"linux\",\"architecture\":\"amd64\"}",
                               "") "]}",
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    cleanup_free char *digest = NULL;
    cleanup_error struct rp_error *err = NULL;
    select_inline(bad[i], "linux/amd64", &digest, &err, -1);
    assert_int_equal(err->code, RP_EPROTO);
    assert_null(digest);
  }
  /* Nothing for the platform is ENOEXEC, not a bad answer. */
  cleanup_free char *digest = NULL;
  cleanup_error struct rp_error *err = NULL;
  select_inline("{\"manifests\":[]}", "linux/amd64", &digest, &err, -1);
  assert_int_equal(err->code, ENOEXEC);
  assert_non_null(strstr(err->message, "no platforms"));
}

static void
test_kinds(void **state)
{
  (void)state;
  assert_int_equal(rp_manifest_kind_of(RP_MT_OCI_INDEX), RP_MANIFEST_INDEX);
  assert_int_equal(rp_manifest_kind_of(RP_MT_DOCKER_LIST), RP_MANIFEST_INDEX);
  assert_int_equal(rp_manifest_kind_of(RP_MT_OCI_MANIFEST), RP_MANIFEST_IMAGE);
  assert_int_equal(rp_manifest_kind_of(RP_MT_DOCKER_MANIFEST),
                   RP_MANIFEST_IMAGE);
  assert_int_equal(
      rp_manifest_kind_of(
          " Application/VND.oci.image.index.v1+json; charset=utf-8"),
      RP_MANIFEST_INDEX);
  assert_int_equal(rp_manifest_kind_of(
                       "application/vnd.docker.distribution.manifest.v1+json"),
                   RP_MANIFEST_UNKNOWN);
  assert_int_equal(rp_manifest_kind_of("application/json"),
                   RP_MANIFEST_UNKNOWN);
  assert_int_equal(rp_manifest_kind_of(NULL), RP_MANIFEST_UNKNOWN);
  /* An OCI index and manifest may leave mediaType out. */
  const char *idx = "{\"schemaVersion\":2,\"manifests\":[]}";
  const char *img = "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}";
  const char *v1 = "{\"mediaType\":\"application/vnd.docker.distribution."
                   "manifest.v1+prettyjws\",\"layers\":[]}";
  char *mt = NULL;
  assert_int_equal(rp_manifest_kind_of_body(idx, strlen(idx), &mt),
                   RP_MANIFEST_INDEX);
  assert_null(mt);
  assert_int_equal(rp_manifest_kind_of_body(img, strlen(img), NULL),
                   RP_MANIFEST_IMAGE);
  assert_int_equal(rp_manifest_kind_of_body(v1, strlen(v1), &mt),
                   RP_MANIFEST_UNKNOWN);
  assert_string_equal(mt, "application/vnd.docker.distribution.manifest."
                          "v1+prettyjws");
  free(mt);
  assert_int_equal(rp_manifest_kind_of_body("{", 1, NULL), RP_MANIFEST_UNKNOWN);
}

static void
assert_platform(const struct rp_platform *p, const char *want)
{
  char buf[100];
  assert_string_equal(rp_platform_format(p, buf, sizeof(buf)), want);
}

static void
test_platforms(void **state)
{
  (void)state;
  struct {
    const char *in, *want;
  } good[] = {
      {"linux/amd64", "linux/amd64"},     {"linux/x86_64", "linux/amd64"},
      {"linux/amd64/v1", "linux/amd64"},  {"linux/amd64/v3", "linux/amd64/v3"},
      {"linux/arm", "linux/arm/v7"},      {"linux/arm/7", "linux/arm/v7"},
      {"linux/arm/6", "linux/arm/v6"},    {"linux/arm64/v8", "linux/arm64"},
      {"linux/aarch64", "linux/arm64"},   {"linux/arm64/9", "linux/arm64/v9"},
      {"Linux/AMD64", "linux/amd64"},     {"macos/arm64", "darwin/arm64"},
      {"windows/amd64", "windows/amd64"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(good); i++) {
    struct rp_platform p;
    cleanup_error struct rp_error *err = NULL;
    if (rp_platform_parse(good[i].in, &p, &err) != 0)
      fail_msg("%s: %s", good[i].in, err->message);
    assert_platform(&p, good[i].want);
  }
  const char *bad[] = {"",
                       "linux",
                       "linux/",
                       "/amd64",
                       "linux//v7",
                       "a/b/c/d",
                       "linux/am d64",
                       "linux/amd64/",
                       "linux/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    struct rp_platform p;
    cleanup_error struct rp_error *err = NULL;
    if (rp_platform_parse(bad[i], &p, &err) == 0)
      fail_msg("'%s' was accepted", bad[i]);
    assert_int_equal(err->code, RP_ECONFIG);
  }
  /* What engines report: Go's names (/version) or uname's (/info). */
  struct {
    const char *os, *arch, *variant, *want;
  } engines[] = {
      {"linux", "amd64", NULL, "linux/amd64"},
      {"linux", "x86_64", NULL, "linux/amd64"},
      {"linux", "aarch64", NULL, "linux/arm64"},
      {"linux", "arm64", "v8", "linux/arm64"},
      {"linux", "armv7l", NULL, "linux/arm/v7"},
      {"linux", "armv6l", NULL, "linux/arm/v6"},
      {"linux", "arm", NULL, "linux/arm/v7"},
      {"linux", "arm", "v6", "linux/arm/v6"},
      {"linux", "i686", NULL, "linux/386"},
      {"Linux", "S390X", NULL, "linux/s390x"},
      {NULL, "ppc64le", NULL, "linux/ppc64le"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(engines); i++) {
    struct rp_platform p;
    rp_platform_from_engine(engines[i].os, engines[i].arch, engines[i].variant,
                            &p);
    assert_platform(&p, engines[i].want);
  }
  struct rp_platform host;
  rp_platform_host(&host);
  assert_string_equal(host.os, "linux");
  assert_true(host.arch[0] != '\0');
}

static void
test_digests(void **state)
{
  (void)state;
  char d[RP_DIGEST_SHA256_LEN];
  rp_image_digest_sha256("", 0, d);
  assert_string_equal(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b"
                         "934ca495991b7852b855");
  rp_image_digest_sha256("abc", 3, d);
  assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a39617"
                         "7a9cb410ff61f20015ad");
  /* A fixture's digest, as sha256sum gives it. */
  size_t len;
  cleanup_free char *json = slurp(DATA "docker-list-arm.json", &len);
  rp_image_digest_sha256(json, len, d);
  assert_true(rp_image_digest_matches(d, json, len));
  assert_false(rp_image_digest_matches(d, json, len - 1));
  assert_false(rp_image_digest_matches(NULL, json, len));
  assert_false(rp_image_digest_matches(
      "sha512:0000000000000000000000000000000000000000000000000000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000",
      json, len));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_oci_index_with_attestations),
      cmocka_unit_test(test_docker_list_arm_variants),
      cmocka_unit_test(test_fallbacks_and_order),
      cmocka_unit_test(test_bad_indexes),
      cmocka_unit_test(test_kinds),
      cmocka_unit_test(test_platforms),
      cmocka_unit_test(test_digests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
