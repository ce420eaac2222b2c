/* Stepping over JSON (src/json_scan.c): values of every kind are stepped
 * over exactly and malformed ones refused; a member is found as jansson
 * would (last duplicate wins, names decoded); an array of objects split in
 * chunks cut at every byte gives the same elements as jansson, and its
 * errors are named.  The fuzz target json_scan checks the same against
 * jansson on arbitrary input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "json_scan.h"
#include "util.h"

static void
skips(const char *text, size_t want_end)
{
  size_t pos = 0;
  int rc = rp_json_skip(text, strlen(text), &pos);
  if (rc != 0)
    fail_msg("not stepped over: %s", text);
  assert_int_equal(pos, want_end);
}

static void
refused(const char *text)
{
  size_t pos = 0;
  if (rp_json_skip(text, strlen(text), &pos) == 0)
    fail_msg("stepped over, but it is not JSON: %s (to %zu)", text, pos);
  assert_int_equal(pos, 0);
}

static void
test_skip(void **state)
{
  (void)state;
  skips("0", 1);
  skips("  -12.5e+3 ,", 10);
  skips("true]", 4);
  skips("null", 4);
  skips("\"a\\\"b\\u00e9\\n\"x", 14);
  skips("{}", 2);
  skips("[]", 2);
  skips("{\"a\": [1, {\"b\": null}, \"]\"], \"c\": {}} tail", 37);
  skips(" [ [ [ ] ] ] ", 12);
  refused("");
  refused("   ");
  refused("01");
  refused("1.");
  refused("-");
  refused("1e");
  refused("tru");
  refused("truex");
  refused("nul");
  refused("\"abc");
  refused("\"a\\x\"");
  refused("\"a\\u12g4\"");
  refused("\"tab\there\"");
  refused("{\"a\" 1}");
  refused("{\"a\": 1,}");
  refused("{1: 2}");
  refused("[1 2]");
  refused("[1,]");
  refused("[}");
  refused("{]");
  refused("{\"a\": [}");
  refused("[[[");
  /* Nesting as deep as jansson takes, not deeper. */
  size_t n = RP_JSON_MAX_DEPTH;
  cleanup_free char *deep = rp_xmalloc(2 * n + 2);
  memset(deep, '[', n);
  memset(deep + n, ']', n);
  deep[2 * n] = '\0';
  skips(deep, 2 * n);
  cleanup_free char *deeper = rp_xmalloc(2 * n + 4);
  memset(deeper, '[', n + 1);
  memset(deeper + n + 1, ']', n + 1);
  deeper[2 * n + 2] = '\0';
  refused(deeper);
}

static void
member_is(const char *doc, const char *key, const char *want)
{
  struct rp_json_slice v = {0};
  int rc = rp_json_member(doc, strlen(doc), key, &v);
  if (!want) {
    assert_int_equal(rc, 0);
    return;
  }
  assert_int_equal(rc, 1);
  assert_int_equal(v.n, strlen(want));
  assert_memory_equal(v.p, want, v.n);
}

static void
test_member(void **state)
{
  (void)state;
  const char *doc =
      " {\"Id\": \"abc\", \"State\": {\"Running\": true, \"Id\": 1},"
      " \"Config\": {\"Labels\": {\"a\": \"b\"}}, \"Empty\": {}, \"N\": "
      "-1.5e2}\n";
  member_is(doc, "Id", "\"abc\"");
  member_is(doc, "State", "{\"Running\": true, \"Id\": 1}");
  member_is(doc, "Config", "{\"Labels\": {\"a\": \"b\"}}");
  member_is(doc, "Empty", "{}");
  member_is(doc, "N", "-1.5e2");
  member_is(doc, "Running", NULL); /* not at the top */
  member_is(doc, "id", NULL);      /* names are exact */
  member_is("{}", "Id", NULL);
  /* The last of two wins, as in jansson; names are decoded. */
  member_is("{\"Id\": 1, \"Id\": 2}", "Id", "2");
  member_is("{\"\\u0049d\": 3}", "Id", "3");
  member_is("{\"I\\u0000d\": 3}", "Id", NULL);
  struct rp_json_slice v;
  const char *bad[] = {
      "[1]",          "\"Id\"",          "{\"Id\": 1",    "{\"Id\": 1} x",
      "{\"Id\": 1,}", "{\"Id\": [1, 2}", "<html></html>", "",
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++)
    if (rp_json_member(bad[i], strlen(bad[i]), "Id", &v) != -1)
      fail_msg("taken for an object: %s", bad[i]);
}

/* Values made without jansson's lexer equal jansson's; labels share their
 * short values through the table, which forgets what nothing holds. */
static void
test_values_and_labels(void **state)
{
  (void)state;
  const char *texts[] = {
      "\"plain\"",
      "\"\"",
      "\"esc\\n\"",
      "\"caf\u00e9\"",
      "true",
      "false",
      "null",
      "-12.5",
      "[1, \"a\"]",
      "{\"a\": \"1\", \"b\": \"2\", \"a\": \"3\"}",
      "{\"a\": 1}",
      "{}",
      "{\"k\\u0041\": \"v\"}",
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(texts); i++) {
    struct rp_json_slice v = {texts[i], strlen(texts[i])};
    cleanup_json json_t *want = json_loadb(v.p, v.n, JSON_DECODE_ANY, NULL);
    cleanup_json json_t *got = rp_json_value(v);
    assert_non_null(want);
    if (!got || !json_equal(got, want))
      fail_msg("rp_json_value(%s) differs from jansson's", texts[i]);
  }
  struct rp_json_slice bad = {"\"a", 2};
  assert_null(rp_json_value(bad));
  assert_true(rp_json_plain_string((struct rp_json_slice){"\"abc\"", 5}));
  assert_false(rp_json_plain_string((struct rp_json_slice){"\"a\\n\"", 5}));
  assert_false(
      rp_json_plain_string((struct rp_json_slice){"\"caf\xc3\xa9\"", 7}));

  cleanup_json json_t *interned = json_object();
  const char *a = "{\"project\": \"shop\", \"hash\": "
                  "\"0123456789012345678901234567890123456789012345678901\"}";
  const char *b = "{\"project\": \"shop\", \"n\": 1}";
  json_t *la = rp_json_labels((struct rp_json_slice){a, strlen(a)}, interned,
                              NULL, NULL);
  json_t *lb = rp_json_labels((struct rp_json_slice){b, strlen(b)}, interned,
                              NULL, NULL);
  cleanup_json json_t *wa = json_loads(a, 0, NULL);
  cleanup_json json_t *wb = json_loads(b, 0, NULL);
  assert_true(json_equal(la, wa));
  assert_true(json_equal(lb, wb)); /* not plain strings: jansson's */
  /* The short value is one string; the long one is not kept. */
  assert_int_equal(json_object_size(interned), 1);
  assert_ptr_equal(json_object_get(la, "project"),
                   json_object_get(interned, "shop"));
  json_decref(lb);
  rp_json_intern_prune(interned);
  assert_int_equal(json_object_size(interned), 1); /* la holds it */
  json_decref(la);
  rp_json_intern_prune(interned);
  assert_int_equal(json_object_size(interned), 0);
}

/* Keeps the members whose key starts with "k" (len bytes, as the text has
 * it: not terminated). */
static bool
keep_k(void *arg, const char *key, size_t len)
{
  int *calls = arg;
  (*calls)++;
  return len > 0 && key[0] == 'k';
}

/* Labels made with a filter: the members it refuses are not made at all,
 * whether the text is plain or needs jansson (an escape). */
static void
test_labels_kept(void **state)
{
  (void)state;
  cleanup_json json_t *interned = json_object();
  int calls = 0;
  const char *plain = "{\"keep\": \"a\", \"drop\": \"b\", \"k2\": \"c\"}";
  cleanup_json json_t *l = rp_json_labels(
      (struct rp_json_slice){plain, strlen(plain)}, interned, keep_k, &calls);
  assert_int_equal(calls, 3);
  assert_int_equal(json_object_size(l), 2);
  assert_string_equal(json_string_value(json_object_get(l, "keep")), "a");
  assert_string_equal(json_string_value(json_object_get(l, "k2")), "c");
  assert_null(json_object_get(l, "drop"));
  /* The refused value was never interned. */
  assert_null(json_object_get(interned, "b"));
  const char *escaped = "{\"keep\": \"a\\nb\", \"drop\": \"\\u00e9\"}";
  cleanup_json json_t *e =
      rp_json_labels((struct rp_json_slice){escaped, strlen(escaped)}, interned,
                     keep_k, &calls);
  assert_int_equal(json_object_size(e), 1);
  assert_string_equal(json_string_value(json_object_get(e, "keep")), "a\nb");
}

/* Members in order, duplicates included; what is not an object refused. */
static void
test_iter(void **state)
{
  (void)state;
  const char *doc = " {\"a\": 1, \"b\": {\"c\": [2]}, \"a\": \"x\"} ";
  struct rp_json_iter it;
  struct rp_json_slice name, value;
  const char *names[] = {"\"a\"", "\"b\"", "\"a\""};
  const char *values[] = {"1", "{\"c\": [2]}", "\"x\""};
  rp_json_iter_init(&it, doc, strlen(doc));
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(rp_json_iter_next(&it, &name, &value), 1);
    assert_int_equal(name.n, strlen(names[i]));
    assert_memory_equal(name.p, names[i], name.n);
    assert_int_equal(value.n, strlen(values[i]));
    assert_memory_equal(value.p, values[i], value.n);
  }
  assert_int_equal(rp_json_iter_next(&it, &name, &value), 0);
  const char *bad[] = {"[]", "{\"a\" 1}", "{\"a\": 1} x", "{\"a\": 1,}"};
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    rp_json_iter_init(&it, bad[i], strlen(bad[i]));
    int rc;
    while ((rc = rp_json_iter_next(&it, &name, &value)) == 1)
      ;
    assert_int_equal(rc, -1);
  }
}

struct got {
  json_t *elems; /* what the splitter handed over, parsed */
  size_t stop_after;
};

static int
elem_cb(void *arg, size_t index, const char *elem, size_t len)
{
  struct got *g = arg;
  assert_int_equal(index, json_array_size(g->elems));
  json_error_t e;
  json_t *v = json_loadb(elem, len, 0, &e);
  if (!v)
    fail_msg("element %zu does not parse: %s (%.*s)", index, e.text, (int)len,
             elem);
  json_array_append_new(g->elems, v);
  return json_array_size(g->elems) == g->stop_after;
}

/* Splits text fed in chunks of `chunk` bytes; returns the last feed's or
 * end's code, and what came out in *elems (owned by the caller). */
static int
split(const char *text, size_t chunk, size_t max_elem, size_t stop_after,
      json_t **elems, const char **why)
{
  struct rp_json_splitter sp;
  rp_json_splitter_init(&sp, max_elem);
  struct got g = {json_array(), stop_after};
  size_t len = strlen(text);
  int rc = 0;
  for (size_t i = 0; i < len && rc == 0; i += chunk) {
    size_t n = len - i < chunk ? len - i : chunk;
    rc = rp_json_splitter_feed(&sp, text + i, n, elem_cb, &g);
  }
  if (rc == 0)
    rc = rp_json_splitter_end(&sp);
  *why = sp.why;
  rp_json_splitter_clear(&sp);
  *elems = g.elems;
  return rc;
}

static void
test_splitter_matches_jansson(void **state)
{
  (void)state;
  const char *text =
      " [{\"Id\": \"a\", \"Labels\": {\"x\": \"}]\\\"[{\"}, \"N\": [1, [2]]},\n"
      "  {\"Id\": \"b\\u00e9\", \"Labels\": null}, {}  ,{\"deep\": {\"a\": "
      "{\"b\": [{}, {}]}}}] \n";
  cleanup_json json_t *want = json_loads(text, 0, NULL);
  assert_non_null(want);
  /* Chunks of every size from 1 byte to the whole. */
  for (size_t chunk = 1; chunk <= strlen(text); chunk++) {
    cleanup_json json_t *got = NULL;
    const char *why;
    assert_int_equal(split(text, chunk, 0, 0, &got, &why), 0);
    if (!json_equal(got, want))
      fail_msg("chunks of %zu: another list", chunk);
  }
  cleanup_json json_t *empty = NULL;
  const char *why;
  assert_int_equal(split("[ ]", 1, 0, 0, &empty, &why), 0);
  assert_int_equal(json_array_size(empty), 0);
  /* A consumer that stops gets nothing more. */
  cleanup_json json_t *two = NULL;
  assert_int_equal(split(text, 3, 0, 2, &two, &why), 1);
  assert_int_equal(json_array_size(two), 2);
}

static void
splits_badly(const char *text, size_t max_elem, const char *want_why,
             size_t want_elems)
{
  for (size_t chunk = 1; chunk <= strlen(text); chunk++) {
    cleanup_json json_t *got = NULL;
    const char *why = NULL;
    if (split(text, chunk, max_elem, 0, &got, &why) != -1)
      fail_msg("taken for a list: %s", text);
    if (!why || strcmp(why, want_why) != 0)
      fail_msg("%s: \"%s\", not \"%s\"", text, why ? why : "(none)", want_why);
    assert_int_equal(json_array_size(got), want_elems);
  }
}

static void
test_splitter_errors(void **state)
{
  (void)state;
  splits_badly("<html></html>", 0, "not an array", 0);
  splits_badly("{\"items\": []}", 0, "not an array", 0);
  splits_badly("", 0, "empty", 0);
  splits_badly("[{\"a\": 1}, 2]", 0, "an element is not an object", 1);
  splits_badly("[{\"a\": 1}, {\"b\": ", 0, "not JSON", 1); /* cut */
  splits_badly("[{\"a\": 1}", 0, "not JSON", 1);
  splits_badly("[{\"a\": 1}] x", 0, "not JSON", 1);
  splits_badly("[{\"a\": 1},]", 0, "not JSON", 1);
  splits_badly("[{\"a\": 1} {}]", 0, "not JSON", 1);
  splits_badly("[{\"a\": [1}]", 0, "not JSON", 0);
  splits_badly("[{\"a\": \"x\ny\"}]", 0, "not JSON", 0);
  splits_badly("[{\"a\": 1}, {\"b\": \"0123456789\"}]", 12,
               "an element is too long", 1);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_skip),
      cmocka_unit_test(test_member),
      cmocka_unit_test(test_labels_kept),
      cmocka_unit_test(test_iter),
      cmocka_unit_test(test_values_and_labels),
      cmocka_unit_test(test_splitter_matches_jansson),
      cmocka_unit_test(test_splitter_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
