/* The capped buffer (src/buf.c): it grows past its first allocation, is
 * always a C string, refuses an append that would pass its cap without
 * changing what it holds, and hands its bytes out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "buf.h"
#include "util.h"

static void
test_grows_to_the_cap(void **state)
{
  (void)state;
  struct rp_buf b;
  rp_buf_init(&b, 10000);
  assert_string_equal(rp_buf_str(&b), "");
  for (int i = 0; i < 1000; i++)
    assert_int_equal(rp_buf_add(&b, "0123456789", 10), 0);
  assert_int_equal(b.len, 10000);
  assert_int_equal(strlen(rp_buf_str(&b)), 10000);
  assert_int_equal(rp_buf_room(&b), 0);
  /* Never more than the cap and its NUL. */
  assert_true(b.cap <= 10001);
  /* Full: one more byte is refused and nothing changes. */
  assert_int_equal(rp_buf_add(&b, "x", 1), -1);
  assert_int_equal(b.len, 10000);
  assert_int_equal(rp_buf_add(&b, "", 0), 0);
  assert_int_equal(rp_buf_addf(&b, "%d", 1), -1);
  rp_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_string_equal(rp_buf_str(&b), "");
  assert_int_equal(rp_buf_room(&b), 10000);
  rp_buf_free(&b);
  assert_null(b.p);
  assert_int_equal(b.max, 10000);
}

static void
test_refused_keeps_the_bytes(void **state)
{
  (void)state;
  struct rp_buf b;
  rp_buf_init(&b, 8);
  assert_int_equal(rp_buf_add(&b, "abcde", 5), 0);
  assert_int_equal(rp_buf_add(&b, "fghi", 4), -1);
  assert_string_equal(rp_buf_str(&b), "abcde");
  assert_int_equal(rp_buf_addf(&b, "%s-%d", "x", 12), -1); /* 4 bytes */
  assert_int_equal(rp_buf_addf(&b, "%s%d", "x", 12), 0);   /* 3 bytes */
  assert_string_equal(rp_buf_str(&b), "abcdex12");
  char *s = rp_buf_take(&b);
  assert_string_equal(s, "abcdex12");
  free(s);
  assert_int_equal(b.len, 0);
  assert_null(rp_buf_take(&b)); /* nothing appended since */
}

static void
test_binary(void **state)
{
  (void)state;
  struct rp_buf b;
  rp_buf_init(&b, SIZE_MAX);
  const char bytes[] = {'a', '\0', 'b'};
  assert_int_equal(rp_buf_add(&b, bytes, 3), 0);
  assert_int_equal(b.len, 3);
  assert_memory_equal(b.p, bytes, 3);
  assert_int_equal(b.p[3], '\0');
  rp_buf_free(&b);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grows_to_the_cap),
      cmocka_unit_test(test_refused_keeps_the_bytes),
      cmocka_unit_test(test_binary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
