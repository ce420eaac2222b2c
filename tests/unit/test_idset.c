/* Sets of ids (src/idset.c): members are copies, added once, found after
 * the table has grown many times; anything else is not a member. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "idset.h"

static void
test_members(void **state)
{
  (void)state;
  struct rp_idset s;
  rp_idset_init(&s, 1);
  char id[80];
  for (int i = 0; i < 5000; i++) {
    snprintf(id, sizeof(id), "%064d", i * 3);
    rp_idset_add(&s, id);
  }
  /* Copies: the caller's buffer is reused above. */
  for (int i = 0; i < 15000; i++) {
    snprintf(id, sizeof(id), "%064d", i);
    assert_int_equal(rp_idset_has(&s, id), i % 3 == 0);
  }
  assert_int_equal(s.count, 5000);
  rp_idset_add(
      &s, "0000000000000000000000000000000000000000000000000000000000000000");
  assert_int_equal(s.count, 5000);
  assert_false(rp_idset_has(&s, ""));
  rp_idset_add(&s, "");
  assert_true(rp_idset_has(&s, ""));
  rp_idset_clear(&s);
  assert_false(rp_idset_has(&s, "x"));
  rp_idset_clear(&s);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_members),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
