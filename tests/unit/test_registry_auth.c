/* Registry credentials as the docker CLI reads config.json, the
 * WWW-Authenticate challenges registries send (Docker Hub's, GHCR's,
 * distribution's silly and htpasswd ones), token answers and realm URLs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "registry_auth.h"
#include "util.h"

/* base64("alice:s3cr:et") and base64("bob:hunter2"). */
#define ALICE "YWxpY2U6czNjcjpldA=="
#define BOB "Ym9iOmh1bnRlcjI="

static struct rp_registry_auth *
parse_ok(const char *json)
{
  struct rp_registry_auth *a = NULL;
  cleanup_error struct rp_error *err = NULL;
  if (rp_registry_auth_parse(json, strlen(json), "config.json", &a, &err) != 0)
    fail_msg("%s: %s", json, err->message);
  return a;
}

static void
assert_cred(const struct rp_registry_auth *a, const char *domain,
            const char *user, const char *pass)
{
  const struct rp_registry_cred *c = rp_registry_auth_find(a, domain);
  if (user == NULL) {
    if (c)
      fail_msg("%s: expected no credentials, got user %s", domain, c->username);
    return;
  }
  if (c == NULL)
    fail_msg("%s: no credentials found", domain);
  assert_string_equal(c->username, user);
  assert_string_equal(c->password, pass);
}

static void
test_config_auths(void **state)
{
  (void)state;
  struct rp_registry_auth *a =
      parse_ok("{\"auths\":{"
               "\"https://index.docker.io/v1/\":{\"auth\":\"" ALICE "\"},"
               "\"127.0.0.1:5000\":{\"auth\":\"" BOB "\"},"
               "\"https://ghcr.io/v2/\":{\"auth\":\"" ALICE "\"},"
               "\"quay.io\":{\"username\":\"carol\",\"password\":\"pw\"},"
               "\"registry.example.com\":{},"
               "\"helper.example.com\":{\"auth\":\"\"}"
               "}}");
  /* The password is everything after the first colon. */
  assert_cred(a, "docker.io", "alice", "s3cr:et");
  assert_cred(a, "127.0.0.1:5000", "bob", "hunter2");
  /* A key written as a URL matches its host (docker's ConvertToHostname). */
  assert_cred(a, "ghcr.io", "alice", "s3cr:et");
  assert_cred(a, "quay.io", "carol", "pw");
  /* Empty entries (a credential helper's placeholders) are anonymous. */
  assert_cred(a, "registry.example.com", NULL, NULL);
  assert_cred(a, "helper.example.com", NULL, NULL);
  assert_cred(a, "127.0.0.1:5001", NULL, NULL);
  assert_cred(a, "127.0.0.1", NULL, NULL);
  assert_int_equal(rp_registry_auth_count(a), 4);
  assert_false(rp_registry_auth_has_helpers(a));
  rp_registry_auth_free(a);

  /* Docker Hub is found by its own key only, as the CLI does. */
  a = parse_ok("{\"auths\":{\"docker.io\":{\"auth\":\"" ALICE "\"},"
               "\"index.docker.io\":{\"auth\":\"" ALICE "\"}}}");
  assert_cred(a, "docker.io", NULL, NULL);
  rp_registry_auth_free(a);

  /* The exact key wins over a URL-written one. */
  a = parse_ok("{\"auths\":{\"http://h:1/v2/\":{\"auth\":\"" ALICE "\"},"
               "\"h:1\":{\"auth\":\"" BOB "\"}}}");
  assert_cred(a, "h:1", "bob", "hunter2");
  rp_registry_auth_free(a);

  a = parse_ok("{}");
  assert_cred(a, "docker.io", NULL, NULL);
  assert_int_equal(rp_registry_auth_count(a), 0);
  rp_registry_auth_free(a);
  assert_null(rp_registry_auth_find(NULL, "docker.io"));
  rp_registry_auth_free(NULL);
}

static void
test_config_helpers(void **state)
{
  (void)state;
  struct rp_registry_auth *a =
      parse_ok("{\"auths\":{\"ghcr.io\":{}},\"credsStore\":\"desktop\"}");
  assert_true(rp_registry_auth_has_helpers(a));
  assert_cred(a, "ghcr.io", NULL, NULL);
  rp_registry_auth_free(a);
  a = parse_ok("{\"credHelpers\":{\"gcr.io\":\"gcloud\"}}");
  assert_true(rp_registry_auth_has_helpers(a));
  rp_registry_auth_free(a);
}

static void
test_config_bad(void **state)
{
  (void)state;
  struct {
    const char *json, *why;
  } bad[] = {
      {"", "config.json:"},
      {"{\"auths\":", "config.json:1:"},
      {"[]", "not a JSON object"},
      {"{\"auths\":[]}", "auths is not an object"},
      {"{\"auths\":{\"h\":1}}", "auths[\"h\"] is not an object"},
      /* Not base64, and base64 without a colon. */
      {"{\"auths\":{\"h\":{\"auth\":\"!!!!\"}}}", "auths[\"h\"].auth"},
      {"{\"auths\":{\"h\":{\"auth\":\"YWxpY2U=\"}}}", "auths[\"h\"].auth"},
      {"{\"auths\":{\"h\":{\"auth\":\"YWxpY2U6cHc\"}}}", "auths[\"h\"].auth"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    struct rp_registry_auth *a = NULL;
    cleanup_error struct rp_error *err = NULL;
    if (rp_registry_auth_parse(bad[i].json, strlen(bad[i].json), "config.json",
                               &a, &err) == 0)
      fail_msg("%s was accepted", bad[i].json);
    assert_int_equal(err->code, RP_ECONFIG);
    if (strstr(err->message, bad[i].why) == NULL)
      fail_msg("%s: '%s' does not say '%s'", bad[i].json, err->message,
               bad[i].why);
    assert_null(a);
  }
  /* A bad entry's message names its key, never its secret. */
  struct rp_registry_auth *a = NULL;
  cleanup_error struct rp_error *err = NULL;
  const char *j = "{\"auths\":{\"h\":{\"auth\":\"c2VjcmV0LXZhbHVl\"}}}";
  assert_int_equal(rp_registry_auth_parse(j, strlen(j), "x", &a, &err), -1);
  assert_null(strstr(err->message, "c2VjcmV0"));
  assert_null(strstr(err->message, "secret-value"));
}

static void
test_config_files(void **state)
{
  (void)state;
  char dir[] = "/tmp/rp-auth.XXXXXX";
  assert_non_null(mkdtemp(dir));
  cleanup_free char *path = rp_xasprintf("%s/config.json", dir);
  const char *old = getenv("DOCKER_CONFIG");
  cleanup_free char *saved = old ? rp_xstrdup(old) : NULL;
  setenv("DOCKER_CONFIG", dir, 1);
  cleanup_free char *def = rp_registry_auth_default_path();
  assert_string_equal(def, path);

  /* No file: no credentials, no error. */
  struct rp_registry_auth *a = NULL;
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_registry_auth_load(NULL, &a, &err), 0);
  assert_int_equal(rp_registry_auth_count(a), 0);
  rp_registry_auth_free(a);

  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"" BOB "\"}}}", f);
  fclose(f);
  assert_int_equal(rp_registry_auth_load(NULL, &a, &err), 0);
  assert_cred(a, "127.0.0.1:5000", "bob", "hunter2");
  rp_registry_auth_free(a);

  f = fopen(path, "w");
  fputs("{\"auths\":", f);
  fclose(f);
  assert_int_equal(rp_registry_auth_load(path, &a, &err), -1);
  assert_non_null(strstr(err->message, path));
  rp_error_free(err);
  err = NULL;

  /* A directory in its place is refused. */
  unlink(path);
  assert_int_equal(mkdir(path, 0700), 0);
  assert_int_equal(rp_registry_auth_load(path, &a, &err), -1);
  rmdir(path);
  rmdir(dir);

  unsetenv("DOCKER_CONFIG");
  setenv("HOME", "/home/someone", 1);
  cleanup_free char *home = rp_registry_auth_default_path();
  assert_string_equal(home, "/home/someone/.docker/config.json");
  if (saved)
    setenv("DOCKER_CONFIG", saved, 1);
}

static void
test_basic_credentials(void **state)
{
  (void)state;
  char user[] = "alice", pass[] = "s3cr:et";
  struct rp_registry_cred c = {.username = user, .password = pass};
  char *h = rp_registry_basic_credentials(&c);
  assert_string_equal(h, "Basic " ALICE);
  rp_registry_secret_free(h);
  rp_registry_secret_free(NULL);
}

struct challenge_case {
  const char *value;
  enum rp_registry_scheme scheme;
  const char *realm, *service, *scope;
};

static void
assert_opt(const char *want, const char *got, const char *what)
{
  if (want == NULL) {
    if (got)
      fail_msg("%s: expected none, got '%s'", what, got);
    return;
  }
  if (got == NULL || strcmp(want, got) != 0)
    fail_msg("%s: expected '%s', got '%s'", what, want, got ? got : "(none)");
}

static void
test_challenges(void **state)
{
  (void)state;
  const struct challenge_case cases[] = {
      /* Docker Hub. */
      {"Bearer realm=\"https://auth.docker.io/token\",service=\"registry."
       "docker.io\",scope=\"repository:library/busybox:pull\"",
       RP_REGISTRY_SCHEME_BEARER, "https://auth.docker.io/token",
       "registry.docker.io", "repository:library/busybox:pull"},
      /* distribution's silly and token controllers. */
      {"Bearer realm=\"http://127.0.0.1:18802/token\",service=\"reaper-test\","
       "scope=\"repository:rpt/app:pull\"",
       RP_REGISTRY_SCHEME_BEARER, "http://127.0.0.1:18802/token", "reaper-test",
       "repository:rpt/app:pull"},
      /* htpasswd. */
      {"Basic realm=\"Registry Realm\"", RP_REGISTRY_SCHEME_BASIC,
       "Registry Realm", NULL, NULL},
      /* Spaces, case, unquoted values, unknown parameters. */
      {"  bearer  Realm = https://r.example/t?a=1 , SERVICE=\"s\" , "
       "error=\"invalid_token\"",
       RP_REGISTRY_SCHEME_BEARER, "https://r.example/t?a=1", "s", NULL},
      /* Escapes inside a quoted string. */
      {"Bearer realm=\"https://r/\\\"x\\\\\",scope=\"a b\"",
       RP_REGISTRY_SCHEME_BEARER, "https://r/\"x\\", NULL, "a b"},
      /* Several challenges: Bearer wins whatever the order. */
      {"Basic realm=\"b\", Bearer realm=\"https://t\",service=\"s\"",
       RP_REGISTRY_SCHEME_BEARER, "https://t", "s", NULL},
      {"Negotiate abc==, Basic realm=\"b\"", RP_REGISTRY_SCHEME_BASIC, "b",
       NULL, NULL},
      /* A Bearer without a realm is no use: the Basic one then. */
      {"Bearer service=\"s\", Basic realm=\"b\"", RP_REGISTRY_SCHEME_BASIC, "b",
       NULL, NULL},
      {"Basic", RP_REGISTRY_SCHEME_BASIC, NULL, NULL, NULL},
      /* The first of a repeated parameter counts. */
      {"Bearer realm=\"https://a\",realm=\"https://b\"",
       RP_REGISTRY_SCHEME_BEARER, "https://a", NULL, NULL},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(cases); i++) {
    struct rp_registry_challenge c;
    const char *v = cases[i].value;
    if (rp_registry_challenge_parse(v, strlen(v), &c) != 0)
      fail_msg("%s: not parsed", v);
    assert_int_equal(c.scheme, cases[i].scheme);
    assert_opt(cases[i].realm, c.realm, v);
    assert_opt(cases[i].service, c.service, v);
    assert_opt(cases[i].scope, c.scope, v);
    rp_registry_challenge_clear(&c);
  }
  const char *none[] = {"",
                        "Negotiate",
                        "Digest realm=\"x\", nonce=\"y\"",
                        "Bearer",
                        "Bearer service=\"s\"",
                        "Bearer realm=\"\"",
                        "Bearer realm=\"https://x\r\nInjected: 1\"",
                        ",,, ="};
  for (size_t i = 0; i < RP_ARRAY_LEN(none); i++) {
    struct rp_registry_challenge c;
    if (rp_registry_challenge_parse(none[i], strlen(none[i]), &c) == 0)
      fail_msg("'%s' was taken as a challenge", none[i]);
    assert_int_equal(c.scheme, RP_REGISTRY_SCHEME_NONE);
    assert_null(c.realm);
  }
  /* Length, not NUL, ends the value. */
  struct rp_registry_challenge c;
  const char *v = "Bearer realm=\"https://a\"XXXX";
  assert_int_equal(rp_registry_challenge_parse(v, strlen(v) - 4, &c), 0);
  assert_string_equal(c.realm, "https://a");
  rp_registry_challenge_clear(&c);
}

static void
test_tokens(void **state)
{
  (void)state;
  struct {
    const char *json, *token;
    int64_t expires;
  } good[] = {
      {"{\"token\":\"abc.def\",\"access_token\":\"x\",\"expires_in\":300,"
       "\"issued_at\":\"2026-12-07T00:00:00Z\"}",
       "abc.def", 300},
      {"{\"access_token\":\"tok\"}", "tok", 60},
      {"{\"token\":\"\",\"access_token\":\"tok\",\"expires_in\":10}", "tok",
       60},
      {"{\"token\":\"t\",\"expires_in\":3600.5}", "t", 3600},
      {"{\"token\":\"t\",\"expires_in\":\"300\"}", "t", 60},
      {"{\"token\":\"t\",\"expires_in\":1e300}", "t", 365 * 86400},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(good); i++) {
    char *tok = NULL;
    int64_t exp = 0;
    cleanup_error struct rp_error *err = NULL;
    if (rp_registry_token_parse(good[i].json, strlen(good[i].json), &tok, &exp,
                                &err) != 0)
      fail_msg("%s: %s", good[i].json, err->message);
    assert_string_equal(tok, good[i].token);
    assert_int_equal(exp, good[i].expires);
    rp_registry_secret_free(tok);
  }
  const char *bad[] = {"",
                       "[]",
                       "{}",
                       "{\"token\":\"\"}",
                       "{\"token\":5}",
                       "{\"token\":\"a b\"}",
                       "{\"token\":\"a\\r\\nX-Injected: 1\"}",
                       "{\"token\":\"caf\\u00e9\"}"};
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    char *tok = NULL;
    int64_t exp = 0;
    cleanup_error struct rp_error *err = NULL;
    if (rp_registry_token_parse(bad[i], strlen(bad[i]), &tok, &exp, &err) == 0)
      fail_msg("%s was accepted", bad[i]);
    assert_int_equal(err->code, RP_EPROTO);
    assert_null(tok);
  }
}

static void
test_split_url(void **state)
{
  (void)state;
  struct {
    const char *url, *base, *path;
  } good[] = {
      {"https://auth.docker.io/token", "https://auth.docker.io", "/token"},
      {"http://127.0.0.1:18802/token?x=1", "http://127.0.0.1:18802",
       "/token?x=1"},
      {"https://h", "https://h", "/"},
      {"https://h?q", "https://h", "/?q"},
      {"HTTPS://h/a#frag", "HTTPS://h", "/a"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(good); i++) {
    char *base, *path;
    assert_int_equal(rp_registry_split_url(good[i].url, &base, &path), 0);
    assert_string_equal(base, good[i].base);
    assert_string_equal(path, good[i].path);
    free(base);
    free(path);
  }
  const char *bad[] = {"",
                       "ftp://h/x",
                       "https://",
                       "https:///x",
                       "https://u:p@h/x",
                       "https://h/a b",
                       "https://h/\r\n",
                       "/token",
                       "Registry Realm"};
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    char *base, *path;
    if (rp_registry_split_url(bad[i], &base, &path) == 0)
      fail_msg("'%s' was accepted", bad[i]);
    assert_null(base);
    assert_null(path);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_auths),
      cmocka_unit_test(test_config_helpers),
      cmocka_unit_test(test_config_bad),
      cmocka_unit_test(test_config_files),
      cmocka_unit_test(test_basic_credentials),
      cmocka_unit_test(test_challenges),
      cmocka_unit_test(test_tokens),
      cmocka_unit_test(test_split_url),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
