/* Every input the fuzzers were seeded with (tests/fuzz/corpus/<target>/)
 * and every input that once crashed a target (tests/fuzz/regressions/
 * <target>/), run through the very code of the target, so that a fixed
 * crash stays fixed under ctest and ASan.  A target aborts on a violated
 * property: that fails this test too. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define RP_FUZZ_NO_MAIN
#include "../fuzz/fuzz.h"
#include "../fuzz/fuzz_audit_verify.c"
#include "../fuzz/fuzz_config.c"
#include "../fuzz/fuzz_docker_inspect.c"
#include "../fuzz/fuzz_event_lines.c"
#include "../fuzz/fuzz_json_scan.c"
#include "../fuzz/fuzz_image_ref.c"
#include "../fuzz/fuzz_registry_answers.c"
#include "../fuzz/fuzz_time.c"

#define FUZZ_DIR TEST_DATA_DIR "/../../fuzz"

static uint8_t *
slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      buf = rp_xrealloc(buf, cap);
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    if (got == 0)
      break;
    n += got;
  }
  assert_int_equal(ferror(f), 0);
  fclose(f);
  *len = n;
  /* An exact-size copy, so that ASan sees a read past the input. */
  uint8_t *exact = rp_xmalloc(n ? n : 1);
  memcpy(exact, buf, n);
  free(buf);
  return exact;
}

/* Runs every file of FUZZ_DIR/kind/target; returns how many. */
static size_t
run_dir(const char *kind, const char *target,
        int (*run)(const uint8_t *, size_t))
{
  cleanup_free char *dir = rp_xasprintf("%s/%s/%s", FUZZ_DIR, kind, target);
  DIR *d = opendir(dir);
  if (d == NULL)
    return 0;
  size_t count = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    cleanup_free char *path = rp_xasprintf("%s/%s", dir, e->d_name);
    size_t len;
    cleanup_free uint8_t *data = slurp(path, &len);
    print_message("  %s/%s/%s (%zu bytes)\n", kind, target, e->d_name, len);
    assert_int_equal(run(data, len), 0);
    count++;
  }
  closedir(d);
  return count;
}

static void
run_target(const char *target, int (*run)(const uint8_t *, size_t))
{
  /* A target without seeds would pass here without running anything. */
  assert_true(run_dir("corpus", target, run) > 0);
  run_dir("regressions", target, run);
}

static void
test_config(void **state)
{
  (void)state;
  run_target("config", rp_fuzz_config_run);
}

static void
test_audit_verify(void **state)
{
  (void)state;
  run_target("audit_verify", rp_fuzz_audit_verify_run);
}

static void
test_docker_inspect(void **state)
{
  (void)state;
  run_target("docker_inspect", rp_fuzz_docker_inspect_run);
}

static void
test_event_lines(void **state)
{
  (void)state;
  run_target("event_lines", rp_fuzz_event_lines_run);
}

static void
test_json_scan(void **state)
{
  (void)state;
  run_target("json_scan", rp_fuzz_json_scan_run);
}

static void
test_time(void **state)
{
  (void)state;
  run_target("time", rp_fuzz_time_run);
}

static void
test_image_ref(void **state)
{
  (void)state;
  run_target("image_ref", rp_fuzz_image_ref_run);
}

static void
test_registry_answers(void **state)
{
  (void)state;
  run_target("registry_answers", rp_fuzz_registry_answers_run);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_audit_verify),
      cmocka_unit_test(test_docker_inspect),
      cmocka_unit_test(test_event_lines),
      cmocka_unit_test(test_json_scan),
      cmocka_unit_test(test_time),
      cmocka_unit_test(test_image_ref),
      cmocka_unit_test(test_registry_answers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
