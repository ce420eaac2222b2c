/* What docker tracking knows per container (providers/docker/known.c):
 * found after the table has grown and after others were forgotten; a
 * stopped container keeps its reference, one without is forgotten; a list
 * keeps only the containers it names; references of the same text are one
 * string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "docker/known.h"

static const char *
id_of(int i)
{
  static char id[65];
  snprintf(id, sizeof(id), "%064x", i);
  return id;
}

static bool
keep_even(void *arg, const char *id)
{
  (void)arg;
  unsigned v = 0;
  sscanf(id + 56, "%x", &v);
  return v % 2 == 0;
}

static void
test_known(void **state)
{
  (void)state;
  struct rp_docker_known_table t = {0};
  assert_null(rp_docker_known_find(&t, id_of(1)));
  for (int i = 0; i < 3000; i++) {
    struct rp_docker_known *k = rp_docker_known_add(&t, id_of(i));
    assert_non_null(k);
    k->running = true;
    k->started_ms = i;
    if (i % 3 == 0)
      rp_docker_known_set_ref(&t, k, i % 6 ? "nginx:1.25" : "redis:7");
  }
  assert_int_equal(t.count, 3000);
  /* The same container: its slot, not a new one. */
  assert_int_equal(rp_docker_known_add(&t, id_of(7))->started_ms, 7);
  assert_int_equal(t.count, 3000);
  /* One string per reference text. */
  assert_ptr_equal(rp_docker_known_find(&t, id_of(3))->ref,
                   rp_docker_known_find(&t, id_of(9))->ref);
  assert_string_equal(
      json_string_value(rp_docker_known_find(&t, id_of(6))->ref), "redis:7");
  /* Stopped: no longer running; kept for its reference, else forgotten. */
  assert_true(rp_docker_known_stopped(&t, id_of(3)));
  assert_false(rp_docker_known_stopped(&t, id_of(3)));
  assert_false(rp_docker_known_find(&t, id_of(3))->running);
  assert_true(rp_docker_known_stopped(&t, id_of(4)));
  assert_null(rp_docker_known_find(&t, id_of(4)));
  assert_int_equal(t.count, 2999);
  /* Found past a forgotten slot; a forgotten one can come back. */
  for (int i = 0; i < 3000; i++)
    if (i != 4)
      assert_non_null(rp_docker_known_find(&t, id_of(i)));
  assert_non_null(rp_docker_known_add(&t, id_of(4)));
  rp_docker_known_keep_only(&t, keep_even, NULL);
  assert_int_equal(t.count, 1500);
  for (int i = 0; i < 3000; i++)
    assert_int_equal(rp_docker_known_find(&t, id_of(i)) != NULL, i % 2 == 0);
  /* An id longer than any engine's is refused, not cut. */
  char longer[80];
  memset(longer, 'a', 70);
  longer[70] = 0;
  assert_null(rp_docker_known_add(&t, longer));
  rp_docker_known_keep_only(&t, keep_even, NULL);
  assert_int_equal(rp_docker_known_find(&t, id_of(2))->started_ms, 2);
  rp_docker_known_clear(&t);
  assert_null(rp_docker_known_find(&t, id_of(2)));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
