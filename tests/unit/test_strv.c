/* String arrays (src/strv.c): a copy is deep and keeps NULL apart from an
 * empty list, equality is by content and order, a JSON array converts both
 * ways and anything but an array of strings is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "strv.h"
#include "util.h"

static void
test_dup_len_free(void **state)
{
  (void)state;
  char a[] = "/bin/sh", b[] = "-c", c[] = "echo hi";
  char *const v[] = {a, b, c, NULL};
  cleanup_strv char **d = rp_strv_dup(v);
  assert_int_equal(rp_strv_len(d), 3);
  assert_true(rp_strv_equal(v, d));
  /* Deep: the copy does not change with the original. */
  assert_ptr_not_equal(d[0], a);
  a[0] = 'X';
  assert_string_equal(d[0], "/bin/sh");
  assert_false(rp_strv_equal(v, d));
  /* NULL stays NULL; an empty list stays an empty list. */
  assert_null(rp_strv_dup(NULL));
  assert_int_equal(rp_strv_len(NULL), 0);
  char *const none[] = {NULL};
  cleanup_strv char **e = rp_strv_dup(none);
  assert_non_null(e);
  assert_null(e[0]);
  rp_strv_free(NULL);
}

static void
test_equal_contains_push(void **state)
{
  (void)state;
  char x[] = "x", y[] = "y";
  char *const xy[] = {x, y, NULL}, *const yx[] = {y, x, NULL};
  char *const xo[] = {x, NULL}, *const empty[] = {NULL};
  assert_false(rp_strv_equal(xy, yx)); /* order counts */
  assert_false(rp_strv_equal(xy, xo)); /* a prefix is not equal */
  assert_false(rp_strv_equal(xo, xy));
  assert_true(rp_strv_equal(NULL, NULL));
  assert_false(rp_strv_equal(NULL, empty)); /* left out is not empty */
  assert_true(rp_strv_equal(empty, empty));
  assert_true(rp_strv_contains(xy, "y"));
  assert_false(rp_strv_contains(xy, "z"));
  assert_false(rp_strv_contains(xy, NULL));
  assert_false(rp_strv_contains(NULL, "x"));
  cleanup_strv char **v = NULL;
  rp_strv_push(&v, "a");
  rp_strv_push(&v, "b");
  assert_int_equal(rp_strv_len(v), 2);
  assert_string_equal(v[0], "a");
  assert_string_equal(v[1], "b");
  assert_null(v[2]);
}

static void
test_json(void **state)
{
  (void)state;
  cleanup_json json_t *a = json_loads("[\"/bin/true\", \"--x\", \"\"]", 0, 0);
  cleanup_strv char **v = rp_strv_from_json(a);
  assert_int_equal(rp_strv_len(v), 3);
  assert_string_equal(v[1], "--x");
  assert_string_equal(v[2], "");
  cleanup_json json_t *back = rp_strv_to_json(v);
  assert_true(json_equal(a, back));
  /* Not an array, or not strings only: refused. */
  cleanup_json json_t *obj = json_loads("{\"a\": 1}", 0, 0);
  cleanup_json json_t *mixed = json_loads("[\"a\", 1]", 0, 0);
  cleanup_json json_t *empty = json_array();
  assert_null(rp_strv_from_json(obj));
  assert_null(rp_strv_from_json(mixed));
  assert_null(rp_strv_from_json(NULL));
  cleanup_strv char **e = rp_strv_from_json(empty);
  assert_non_null(e);
  assert_null(e[0]);
  cleanup_json json_t *none = rp_strv_to_json(NULL);
  assert_int_equal(json_array_size(none), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dup_len_free),
      cmocka_unit_test(test_equal_contains_push),
      cmocka_unit_test(test_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
