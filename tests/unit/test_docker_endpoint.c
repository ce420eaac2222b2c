/* DOCKER_HOST and friends, read as the docker CLI reads them.  Each test
 * sets the environment it needs and unsets the rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docker/docker.h"
#include "error.h"
#include "http_client.h"
#include "util.h"

static char certdir[64];

static void
touch(const char *dir, const char *name)
{
  char path[160];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("-----BEGIN CERTIFICATE-----\n", f);
  fclose(f);
}

static void
rm(const char *dir, const char *name)
{
  char path[160];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  unlink(path);
}

static int
setup(void **state)
{
  unsetenv("DOCKER_HOST");
  unsetenv("DOCKER_TLS_VERIFY");
  unsetenv("DOCKER_CERT_PATH");
  snprintf(certdir, sizeof(certdir), "/tmp/rp-certs-XXXXXX");
  assert_non_null(mkdtemp(certdir));
  return 0;
}

static int
teardown(void **state)
{
  rm(certdir, "ca.pem");
  rm(certdir, "cert.pem");
  rm(certdir, "key.pem");
  rmdir(certdir);
  return 0;
}

static void
parse_ok(const char *spec, struct rp_http_endpoint *ep)
{
  struct rp_error *err = NULL;
  *ep = (struct rp_http_endpoint){0};
  if (rp_dockerapi_endpoint_parse(spec, ep, &err) < 0)
    fail_msg("%s: %s", spec ? spec : "(null)", err->message);
  assert_null(err);
}

/* Returns the message (owned) of the error parsing spec. */
static char *
parse_fails(const char *spec)
{
  struct rp_error *err = NULL;
  struct rp_http_endpoint ep = {0};
  if (rp_dockerapi_endpoint_parse(spec, &ep, &err) == 0)
    fail_msg("%s: parsed as %s", spec, ep.base_url);
  assert_non_null(err);
  assert_int_equal(err->code, RP_ECONFIG);
  assert_null(ep.base_url);
  char *msg = rp_xstrdup(err->message);
  rp_error_free(err);
  return msg;
}

static void
assert_contains(const char *s, const char *part)
{
  if (strstr(s, part) == NULL)
    fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

static void
test_default_is_the_local_socket(void **state)
{
  struct rp_http_endpoint ep;
  parse_ok(NULL, &ep);
  assert_string_equal(ep.unix_socket, "/var/run/docker.sock");
  assert_string_equal(ep.base_url, "http://localhost");
  assert_null(ep.ca_file);
  rp_http_endpoint_clear(&ep);

  /* An empty DOCKER_HOST is unset, as for the CLI. */
  setenv("DOCKER_HOST", "", 1);
  parse_ok("", &ep);
  assert_string_equal(ep.unix_socket, "/var/run/docker.sock");
  rp_http_endpoint_clear(&ep);
}

static void
test_docker_host_is_honoured(void **state)
{
  struct rp_http_endpoint ep;
  setenv("DOCKER_HOST", "unix:///tmp/e/docker.sock", 1);
  parse_ok(NULL, &ep);
  assert_string_equal(ep.unix_socket, "/tmp/e/docker.sock");
  assert_string_equal(ep.base_url, "http://localhost");
  rp_http_endpoint_clear(&ep);

  setenv("DOCKER_HOST", "tcp://10.0.0.5:2375", 1);
  parse_ok("", &ep);
  assert_null(ep.unix_socket);
  assert_string_equal(ep.base_url, "http://10.0.0.5:2375");
  rp_http_endpoint_clear(&ep);

  /* An endpoint given explicitly wins over DOCKER_HOST. */
  parse_ok("unix:///run/other.sock", &ep);
  assert_string_equal(ep.unix_socket, "/run/other.sock");
  rp_http_endpoint_clear(&ep);

  /* Errors say where the value came from. */
  setenv("DOCKER_HOST", "bogus", 1);
  char *msg = parse_fails(NULL);
  assert_contains(msg, "DOCKER_HOST bogus: ");
  free(msg);
}

static void
test_tcp_forms(void **state)
{
  struct rp_http_endpoint ep;
  parse_ok("tcp://engine.example:2375", &ep);
  assert_string_equal(ep.base_url, "http://engine.example:2375");
  assert_false(ep.verify_peer);
  rp_http_endpoint_clear(&ep);

  parse_ok("tcp://engine.example", &ep);
  assert_string_equal(ep.base_url, "http://engine.example:2375");
  rp_http_endpoint_clear(&ep);

  parse_ok("tcp://[::1]:12375", &ep);
  assert_string_equal(ep.base_url, "http://[::1]:12375");
  rp_http_endpoint_clear(&ep);

  parse_ok("tcp://[fd00::2]", &ep);
  assert_string_equal(ep.base_url, "http://[fd00::2]:2375");
  rp_http_endpoint_clear(&ep);

  parse_ok("tcp://:2375", &ep);
  assert_string_equal(ep.base_url, "http://localhost:2375");
  rp_http_endpoint_clear(&ep);

  /* A base path (a proxy in front of the engine), trailing slash dropped. */
  parse_ok("tcp://proxy:8080/docker/", &ep);
  assert_string_equal(ep.base_url, "http://proxy:8080/docker");
  rp_http_endpoint_clear(&ep);
}

static void
test_http_and_https_as_written(void **state)
{
  struct rp_http_endpoint ep;
  parse_ok("http://engine:8080", &ep);
  assert_string_equal(ep.base_url, "http://engine:8080");
  assert_false(ep.verify_peer);
  rp_http_endpoint_clear(&ep);

  parse_ok("https://engine.example", &ep);
  assert_string_equal(ep.base_url, "https://engine.example");
  assert_true(ep.verify_peer);
  assert_null(ep.ca_file); /* the system's CAs */
  rp_http_endpoint_clear(&ep);
}

static void
test_tls_verify(void **state)
{
  struct rp_http_endpoint ep;
  char want[160];

  setenv("DOCKER_TLS_VERIFY", "1", 1);
  setenv("DOCKER_CERT_PATH", certdir, 1);
  touch(certdir, "ca.pem");
  touch(certdir, "cert.pem");
  touch(certdir, "key.pem");

  parse_ok("tcp://engine.example", &ep);
  assert_string_equal(ep.base_url, "https://engine.example:2376");
  assert_true(ep.verify_peer);
  snprintf(want, sizeof(want), "%s/ca.pem", certdir);
  assert_string_equal(ep.ca_file, want);
  snprintf(want, sizeof(want), "%s/cert.pem", certdir);
  assert_string_equal(ep.cert_file, want);
  snprintf(want, sizeof(want), "%s/key.pem", certdir);
  assert_string_equal(ep.key_file, want);
  rp_http_endpoint_clear(&ep);

  /* An explicit port stays. */
  parse_ok("tcp://engine.example:2375", &ep);
  assert_string_equal(ep.base_url, "https://engine.example:2375");
  rp_http_endpoint_clear(&ep);

  /* Without a client certificate: server verification only. */
  rm(certdir, "cert.pem");
  rm(certdir, "key.pem");
  parse_ok("tcp://engine.example", &ep);
  assert_non_null(ep.ca_file);
  assert_null(ep.cert_file);
  assert_null(ep.key_file);
  rp_http_endpoint_clear(&ep);

  /* Half a key pair is an error. */
  touch(certdir, "cert.pem");
  char *msg = parse_fails("tcp://engine.example");
  assert_contains(msg, "cert.pem without ");
  assert_contains(msg, "key.pem");
  free(msg);

  /* The CA is required. */
  rm(certdir, "ca.pem");
  msg = parse_fails("tcp://engine.example");
  assert_contains(msg, "DOCKER_TLS_VERIFY is set but ");
  assert_contains(msg, "ca.pem cannot be read");
  free(msg);

  /* A unix socket ignores TLS, as the CLI does. */
  parse_ok("unix:///var/run/docker.sock", &ep);
  assert_null(ep.ca_file);
  assert_false(ep.verify_peer);
  rp_http_endpoint_clear(&ep);
}

static void
test_tls_verify_defaults_to_home_docker(void **state)
{
  struct rp_http_endpoint ep;
  char dotdocker[128], want[192];
  const char *old_home = getenv("HOME");
  char *saved = old_home ? rp_xstrdup(old_home) : NULL;

  snprintf(dotdocker, sizeof(dotdocker), "%s/.docker", certdir);
  assert_int_equal(mkdir(dotdocker, 0700), 0);
  touch(dotdocker, "ca.pem");
  setenv("HOME", certdir, 1);
  setenv("DOCKER_TLS_VERIFY", "1", 1);
  parse_ok("tcp://h", &ep);
  snprintf(want, sizeof(want), "%s/ca.pem", dotdocker);
  assert_string_equal(ep.ca_file, want);
  rp_http_endpoint_clear(&ep);

  rm(dotdocker, "ca.pem");
  rmdir(dotdocker);
  if (saved)
    setenv("HOME", saved, 1);
  free(saved);
}

static void
test_unsupported_and_garbage(void **state)
{
  char *msg;

  msg = parse_fails("npipe:////./pipe/docker_engine");
  assert_contains(msg, "npipe:// is a Windows named pipe");
  free(msg);

  msg = parse_fails("ssh://me@host");
  assert_contains(msg, "ssh:// is not supported");
  free(msg);

  msg = parse_fails("fd://");
  assert_contains(msg, "unsupported scheme \"fd\"");
  free(msg);

  msg = parse_fails("/var/run/docker.sock");
  assert_contains(msg, "endpoint /var/run/docker.sock: not an address");
  free(msg);

  msg = parse_fails("unix://relative.sock");
  assert_contains(msg, "must be absolute");
  free(msg);

  msg = parse_fails("unix://");
  assert_contains(msg, "must be absolute");
  free(msg);

  char longpath[200] = "unix:///";
  memset(longpath + 8, 'a', 150);
  longpath[158] = '\0';
  msg = parse_fails(longpath);
  assert_contains(msg, "socket path is over 107 bytes");
  free(msg);

  msg = parse_fails("tcp://host:notaport");
  assert_contains(msg, "invalid port \"notaport\"");
  free(msg);

  msg = parse_fails("tcp://host:70000");
  assert_contains(msg, "invalid port");
  free(msg);

  msg = parse_fails("tcp://::1:2375");
  assert_contains(msg, "brackets");
  free(msg);

  msg = parse_fails("tcp://[::1");
  assert_contains(msg, "unterminated");
  free(msg);

  msg = parse_fails("tcp://user@host:2375");
  assert_contains(msg, "not supported");
  free(msg);
}

static void
test_failure_leaves_ep_alone(void **state)
{
  struct rp_http_endpoint ep;
  struct rp_error *err = NULL;
  parse_ok("unix:///a.sock", &ep);
  assert_int_equal(rp_dockerapi_endpoint_parse("ssh://x", &ep, &err), -1);
  assert_string_equal(ep.unix_socket, "/a.sock");
  rp_error_free(err);
  rp_http_endpoint_clear(&ep);
  assert_null(ep.unix_socket);
  assert_null(ep.base_url);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
  const struct CMUnitTest tests[] = {
      T(test_default_is_the_local_socket),
      T(test_docker_host_is_honoured),
      T(test_tcp_forms),
      T(test_http_and_https_as_written),
      T(test_tls_verify),
      T(test_tls_verify_defaults_to_home_docker),
      T(test_unsupported_and_garbage),
      T(test_failure_leaves_ep_alone),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
