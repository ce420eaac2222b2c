/* The string index (src/strmap.c): every key found with its value after
 * the table grew many times, keys that share a prefix or differ only in
 * length kept apart, a second add refused with the first value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "strmap.h"
#include "util.h"

static void
test_many_keys(void **state)
{
  (void)state;
  enum { N = 20000 };
  char **keys = rp_xcalloc(N, sizeof(*keys));
  struct rp_strmap m = {0};
  for (size_t i = 0; i < N; i++) {
    keys[i] = rp_xasprintf("key-%zu", i);
    assert_true(rp_strmap_add(&m, keys[i], strlen(keys[i]), i, NULL));
  }
  assert_int_equal(m.n, N);
  assert_true(m.cap >= 2 * N);
  for (size_t i = 0; i < N; i++) {
    size_t v = SIZE_MAX;
    assert_true(rp_strmap_get(&m, keys[i], strlen(keys[i]), &v));
    assert_int_equal(v, i);
  }
  /* Again: refused, and the first value is said. */
  size_t old = 0;
  assert_false(rp_strmap_add(&m, "key-777", 7, 1, &old));
  assert_int_equal(old, 777);
  assert_int_equal(m.n, N);
  /* Not there: a prefix, a longer key, a key cut by its length. */
  assert_false(rp_strmap_get(&m, "key-", 4, NULL));
  assert_false(rp_strmap_get(&m, "key-200000", 10, NULL));
  assert_true(rp_strmap_get(&m, "key-12345", 5, NULL)); /* "key-1" */
  assert_false(rp_strmap_get(&m, "", 0, NULL));
  rp_strmap_clear(&m);
  assert_false(rp_strmap_get(&m, "key-1", 5, NULL));
  for (size_t i = 0; i < N; i++)
    free(keys[i]);
  free(keys);
}

static void
test_empty_key_and_bytes(void **state)
{
  (void)state;
  struct rp_strmap m = {0};
  assert_true(rp_strmap_add(&m, "", 0, 1, NULL));
  assert_true(rp_strmap_add(&m, "a\0b", 3, 2, NULL));
  assert_true(rp_strmap_add(&m, "a", 1, 3, NULL));
  size_t v = 0;
  assert_true(rp_strmap_get(&m, "a\0b", 3, &v));
  assert_int_equal(v, 2);
  assert_true(rp_strmap_get(&m, "", 0, &v));
  assert_int_equal(v, 1);
  rp_strmap_clear(&m);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_many_keys),
      cmocka_unit_test(test_empty_key_and_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
