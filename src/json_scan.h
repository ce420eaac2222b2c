/* Reading large JSON answers without building them whole: a scanner that
 * steps over a value, finds one member of an object as a slice of the text,
 * and splits an array of objects arriving in chunks into its elements.
 *
 * Why: an engine with 10,000 containers answers a list of 20 MiB and 10,000
 * inspects of 5 KiB, of which tracking needs a few members each.  Parsing
 * all of it with jansson costs seconds of CPU and leaves the allocator
 * holding several times the text's size.  Here the text is only stepped
 * over (its structure checked: strings, escapes, numbers, literals,
 * brackets, nesting at most RP_JSON_MAX_DEPTH), and only the slices that
 * are needed are given to jansson, which checks them fully (UTF-8 too).
 *
 * Everything here accepts at least what jansson accepts (a text jansson
 * parses is never refused here); it may accept a little more in what it
 * steps over: invalid UTF-8, integers too large for jansson.  The fuzz
 * target json_scan checks both against jansson. */
#ifndef RP_JSON_SCAN_H
#define RP_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* As jansson's JSON_PARSER_MAX_DEPTH. */
#define RP_JSON_MAX_DEPTH 2048

/* A part of a text (borrowed from it). */
struct rp_json_slice {
  const char *p;
  size_t n;
};

/* Steps over white space and one JSON value from s[*pos]: 0 with *pos just
 * after the value, or -1 (*pos unchanged) when s does not hold one there
 * (it ends early, a token is malformed, or it nests too deep). */
int rp_json_skip(const char *s, size_t len, size_t *pos);

/* The value of member `key` of the JSON object that is the whole of s
 * (white space around it allowed): 1 with *out its text, 0 when the object
 * has no such member, -1 when s is not one JSON object.  As with jansson,
 * the last of members with the same name wins, and names are compared as
 * decoded ("\u0049d" is "Id"). */
int rp_json_member(const char *s, size_t len, const char *key,
                   struct rp_json_slice *out);
/* The same for n keys at once, in one pass: out[i] is the value of keys[i]
 * ({NULL, 0} when there is none).  Returns how many were found, or -1 when
 * s is not one JSON object. */
int rp_json_members(const char *s, size_t len, const char *const *keys,
                    size_t n, struct rp_json_slice *out);

/* Walks the members of one JSON object, in order: rp_json_iter_init, then
 * rp_json_iter_next until it returns 0 (the end: nothing but white space
 * after the object, checked) or -1 (s is not one JSON object). */
struct rp_json_iter {
  const char *s;
  size_t len, pos;
  bool started;
};
void rp_json_iter_init(struct rp_json_iter *it, const char *s, size_t len);
/* 1 with the next member: its name (the text, quotes included, escapes
 * not decoded) and its value. */
int rp_json_iter_next(struct rp_json_iter *it, struct rp_json_slice *name,
                      struct rp_json_slice *value);
/* A name or string value without escapes or bytes past ASCII (then its
 * text between the quotes is its value, and valid UTF-8): what a label or
 * an id nearly always is, and can be taken without decoding. */
bool rp_json_plain_string(struct rp_json_slice v);

/* The value a slice holds, as jansson would parse it (NULL when it is not
 * JSON).  Plain strings (rp_json_plain_string), true, false, null and
 * objects whose members are all plain strings (labels) are built at once,
 * without lexing the text a second time; anything else goes to jansson. */
json_t *rp_json_value(struct rp_json_slice v);

/* rp_json_value for a set of labels (an object of strings), with the
 * short values (up to RP_JSON_INTERN_MAX bytes) shared through `interned`,
 * an object from a value's text to the string it is made once: the labels
 * that thousands of containers have in common (a compose project's and
 * service's names, a version, "True") are then held once, not once per
 * container.  Anything but a flat object of plain strings is rp_json_value's
 * (nothing shared). */
#define RP_JSON_INTERN_MAX 48
/* keep (NULL: every member) says which members are made at all (by their
 * key, len bytes, as the text has it); the others are stepped over. */
typedef bool (*rp_json_keep_fn)(void *arg, const char *key, size_t len);
json_t *rp_json_labels(struct rp_json_slice v, json_t *interned,
                       rp_json_keep_fn keep, void *keep_arg);
/* Forgets the values of `interned` that nothing else holds any more. */
void rp_json_intern_prune(json_t *interned);

/* Splits a JSON array of objects that arrives in chunks (a list answer)
 * into its elements, each handed over whole, so that only one element at a
 * time is held.  The elements are checked for structure as far as the
 * splitter needs (brackets, strings); parse each to check it. */
struct rp_json_splitter {
  size_t max_elem;                     /* the longest element taken, in bytes */
  int state;                           /* where in the array (json_scan.c) */
  size_t index;                        /* elements handed over so far */
  int depth;                           /* inside the current element */
  bool in_string;                      /* inside a string of it */
  bool escaped;                        /* after a backslash in that string */
  char *buf;                           /* owned: the current element so far */
  size_t len, cap;                     /* of buf */
  uint8_t open[RP_JSON_MAX_DEPTH / 8]; /* a bit per level: 1 '{', 0 '[' */
  /* Once it has failed, why ("not JSON", "an element is not an object",
   * "an element is too long", "not an array", "empty"); static. */
  const char *why;
  /* The text began with something else than '[': a caller that tells "not
   * JSON" from "not a list" parses (what it kept of) the text. */
  bool not_array;
};

/* Starts empty; max_elem 0 means 1 MiB. */
void rp_json_splitter_init(struct rp_json_splitter *sp, size_t max_elem);
/* Feeds the next n bytes: elem_cb gets each element they complete (its text
 * borrowed for the call, with its index).  Returns 0; 1 as soon as elem_cb
 * returns non-zero; -1 when the text is not an array of objects or an
 * element is longer than max_elem (sp->why says which; nothing after it is
 * delivered).  Do not feed again after 1 or -1. */
int rp_json_splitter_feed(struct rp_json_splitter *sp, const char *data,
                          size_t n,
                          int (*elem_cb)(void *arg, size_t index,
                                         const char *elem, size_t len),
                          void *arg);
/* The text ended: 0 when it was a whole array (white space after it
 * allowed), -1 when not (sp->why says why). */
int rp_json_splitter_end(struct rp_json_splitter *sp);
/* Frees the buffer; the splitter may be initialized again. */
void rp_json_splitter_clear(struct rp_json_splitter *sp);

#endif
