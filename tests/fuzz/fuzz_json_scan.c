/* Stepping over JSON (src/json_scan.c), the way tracking reads an engine's
 * large answers (the container list, inspects), against jansson on the same
 * text: whatever jansson parses is never refused; a value is stepped over
 * to its end; each member of an object is found, and its slice parses (and
 * is made, rp_json_value) to what jansson has for it, and the object made
 * as labels (rp_json_labels) is jansson's; an array of objects fed in chunks
 * that the input chooses is split into exactly jansson's elements, and one that
 * is not (not an array, an element that is not an object or too long) is
 * refused with that reason after exactly the elements before it.
 *
 * Input: byte 0 the seed of the chunk sizes, byte 1 the longest element
 * (0: the real 1 MiB, else 1..255 bytes), then the text, up to its first
 * NUL byte. */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "json_scan.h"
#include "util.h"

#define JS_HEADER_LEN 2

struct js_seen {
  json_t *elems; /* owned: what the splitter handed over, parsed */
  bool unparsed; /* an element jansson does not parse */
};

static int
js_elem_cb(void *arg, size_t index, const char *elem, size_t len)
{
  struct js_seen *s = arg;
  RP_FUZZ_CHECK(index == json_array_size(s->elems));
  RP_FUZZ_CHECK(len >= 2 && elem[0] == '{' && elem[len - 1] == '}');
  json_t *v = json_loadb(elem, len, 0, NULL);
  if (!v) {
    s->unparsed = true;
    v = json_null();
  }
  json_array_append_new(s->elems, v);
  return 0;
}

static void
js_check_skip(const char *text, size_t len)
{
  cleanup_json json_t *any = json_loadb(text, len, JSON_DECODE_ANY, NULL);
  size_t pos = 0;
  int rc = rp_json_skip(text, len, &pos);
  if (!any)
    return;
  /* jansson took the text as one value: so does the scanner, to its end
   * (white space after it). */
  RP_FUZZ_CHECK(rc == 0);
  for (size_t i = pos; i < len; i++)
    RP_FUZZ_CHECK(text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
                  text[i] == '\r');
}

static void
js_check_members(const char *text, size_t len)
{
  cleanup_json json_t *doc = json_loadb(text, len, 0, NULL);
  struct rp_json_slice v;
  int rc = rp_json_member(text, len, "Id", &v);
  if (!json_is_object(doc))
    return;
  RP_FUZZ_CHECK(rc == (json_object_get(doc, "Id") ? 1 : 0));
  const char *key;
  json_t *val;
  json_object_foreach(doc, key, val)
  {
    RP_FUZZ_CHECK(rp_json_member(text, len, key, &v) == 1);
    cleanup_json json_t *got = json_loadb(v.p, v.n, JSON_DECODE_ANY, NULL);
    RP_FUZZ_CHECK(got && json_equal(got, val));
    /* Made without the lexer where it is plain: the same value. */
    cleanup_json json_t *made = rp_json_value(v);
    RP_FUZZ_CHECK(made && json_equal(made, val));
  }
  /* As labels, with short values shared: the same object. */
  cleanup_json json_t *interned = json_object();
  cleanup_json json_t *labels =
      rp_json_labels((struct rp_json_slice){text, len}, interned, NULL, NULL);
  RP_FUZZ_CHECK(labels && json_equal(labels, doc));
  json_decref(labels);
  labels = NULL;
  rp_json_intern_prune(interned);
  RP_FUZZ_CHECK(json_object_size(interned) == 0);
}

static void
js_check_splitter(const char *text, size_t len, uint8_t seed, size_t max_elem)
{
  struct rp_json_splitter sp;
  rp_json_splitter_init(&sp, max_elem);
  struct js_seen s = {json_array(), false};
  unsigned r = seed * 2654435761u + 1;
  int rc = 0;
  for (size_t i = 0; i < len && rc == 0;) {
    r = r * 1103515245u + 12345u;
    size_t n = 1 + (r >> 16) % 97;
    if (n > len - i)
      n = len - i;
    rc = rp_json_splitter_feed(&sp, text + i, n, js_elem_cb, &s);
    i += n;
  }
  RP_FUZZ_CHECK(rc == 0 || rc == -1);
  if (rc == 0)
    rc = rp_json_splitter_end(&sp);
  RP_FUZZ_CHECK(rc == 0 || (rc == -1 && sp.why != NULL));

  cleanup_json json_t *doc = json_loadb(text, len, 0, NULL);
  if (json_is_array(doc)) {
    /* The elements before the first that is not an object or too long. */
    size_t k = 0;
    const char *why = NULL;
    for (; k < json_array_size(doc); k++) {
      json_t *e = json_array_get(doc, k);
      if (!json_is_object(e)) {
        why = "an element is not an object";
        break;
      }
    }
    /* Which element is too long depends on its text, not jansson's: the
     * splitter's count of them stands, checked below by content. */
    if (sp.why && strcmp(sp.why, "an element is too long") == 0) {
      RP_FUZZ_CHECK(max_elem < len);
      RP_FUZZ_CHECK(json_array_size(s.elems) <= k);
      k = json_array_size(s.elems);
      why = sp.why;
    }
    RP_FUZZ_CHECK(json_array_size(s.elems) == k);
    RP_FUZZ_CHECK(!s.unparsed);
    for (size_t i = 0; i < k; i++)
      RP_FUZZ_CHECK(
          json_equal(json_array_get(s.elems, i), json_array_get(doc, i)));
    if (why)
      RP_FUZZ_CHECK(rc == -1 && strcmp(sp.why, why) == 0);
    else
      RP_FUZZ_CHECK(rc == 0);
  } else if (doc) {
    /* JSON, but not a list. */
    RP_FUZZ_CHECK(rc == -1 && sp.not_array);
  }
  if (rc == 0) {
    /* A whole list: jansson agrees but for what the splitter leaves to
     * the parse of each element (which must then fail), or for what it
     * does not check between them (UTF-8, large integers). */
    RP_FUZZ_CHECK(json_is_array(doc) || s.unparsed || !doc);
  }
  json_decref(s.elems);
  rp_json_splitter_clear(&sp);
}

int
rp_fuzz_json_scan_run(const uint8_t *data, size_t size)
{
  if (size < JS_HEADER_LEN)
    return 0;
  const char *text = (const char *)data + JS_HEADER_LEN;
  size_t len = size - JS_HEADER_LEN;
  /* A NUL byte is never JSON here; jansson drops one that follows a
   * number ("[1\0]" parses).  Compared up to the first one. */
  const char *nul = memchr(text, '\0', len);
  if (nul)
    len = (size_t)(nul - text);
  js_check_skip(text, len);
  js_check_members(text, len);
  js_check_splitter(text, len, data[0], data[1]);
  return 0;
}

#ifndef RP_FUZZ_NO_MAIN
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return rp_fuzz_json_scan_run(data, size);
}
#endif
