/* The label keys the core reads (src/label_keys.c): its configuration's
 * match and exclude keys, each once, and every reaper.* key; a key is
 * looked up by its bytes (not terminated, as a list's text has it); a
 * configuration that reads a key another did not is told apart (a reload
 * that needs a new list). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "label_keys.h"
#include "util.h"

static struct rp_config *
parse(const char *yaml)
{
  struct rp_config *c = NULL;
  cleanup_error struct rp_error *err = NULL;
  if (rp_config_parse("keys.yaml", yaml, strlen(yaml), &c, &err) != 0)
    fail_msg("%s", err->message);
  return c;
}

static const char base[] =
    "providers: [ { name: local, type: docker } ]\n"
    "exclude: { labels: { keep: \"yes\", reaper.exclude: \"true\" } }\n"
    "policies:\n"
    "  - { name: web, match: { labels: { tier: web, team: \"*\" } }, max_age: "
    "1h }\n"
    "  - { name: db, match: { labels: { tier: db } }, max_age: 1h }\n"
    "  - { name: rest, max_age: 2h }\n";

static bool
want(const struct rp_label_keys *k, const char *key)
{
  return rp_label_keys_want(k, key, strlen(key));
}

static void
test_keys_of_a_config(void **state)
{
  (void)state;
  struct rp_config *c = parse(base);
  struct rp_label_keys *k = rp_label_keys_of(c);
  /* keep, team, tier: sorted, tier once; reaper.exclude is read anyway. */
  assert_int_equal(k->n, 3);
  assert_string_equal(k->keys[0], "keep");
  assert_string_equal(k->keys[1], "team");
  assert_string_equal(k->keys[2], "tier");
  assert_true(want(k, "tier"));
  assert_true(want(k, "keep"));
  assert_true(want(k, "reaper.max-age"));
  assert_true(want(k, "reaper.anything"));
  assert_false(want(k, "reaper")); /* the prefix is "reaper." */
  assert_false(want(k, "com.docker.compose.config-hash"));
  assert_false(want(k, "tie"));
  assert_false(want(k, "tiers"));
  assert_false(want(k, ""));
  /* By its bytes: "tier" inside a longer text, not terminated. */
  const char text[] = "tierless";
  assert_true(rp_label_keys_want(k, text, 4));
  assert_false(rp_label_keys_want(k, text, 5));
  /* A NUL inside the bytes is no key of the configuration's. */
  assert_false(rp_label_keys_want(k, "tier\0x", 6));
  /* No set: every key. */
  assert_true(want(NULL, "com.docker.compose.config-hash"));
  rp_label_keys_free(k);
  rp_config_free(c);
}

static void
test_a_reload_that_reads_more(void **state)
{
  (void)state;
  struct rp_config *c = parse(base);
  struct rp_config *fewer =
      parse("providers: [ { name: local, type: docker } ]\n"
            "policies:\n"
            "  - { name: web, match: { labels: { tier: web } }, max_age: 1h }\n"
            "  - { name: pinned, match: { labels: { reaper.pin: \"x\" } }, "
            "max_age: 1h }\n");
  struct rp_label_keys *k = rp_label_keys_of(c);
  struct rp_label_keys *f = rp_label_keys_of(fewer);
  assert_int_equal(f->n, 1);              /* reaper.pin: read anyway */
  assert_false(rp_label_keys_adds(k, f)); /* tier was read already */
  assert_true(rp_label_keys_adds(f, k));  /* keep and team were not */
  assert_false(rp_label_keys_adds(k, k));
  assert_true(rp_label_keys_adds(k, NULL)); /* every key */
  assert_false(rp_label_keys_adds(NULL, k));
  rp_label_keys_free(k);
  rp_label_keys_free(f);
  rp_config_free(c);
  rp_config_free(fewer);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_of_a_config),
      cmocka_unit_test(test_a_reload_that_reads_more),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
