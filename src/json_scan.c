/* Stepping over JSON text (see json_scan.h).  The grammar is RFC 8259's;
 * what is not checked here is said there. */
#include "json_scan.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "util.h"

#define MAX_ELEM_DEFAULT ((size_t)1 << 20)

static size_t
skip_ws(const char *s, size_t len, size_t i)
{
  while (i < len &&
         (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    i++;
  return i;
}

static bool
is_hex(char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

/* The bytes that end a run of plain string content: '"', '\\' and the
 * control characters (which JSON does not allow raw in a string). */
static const bool string_special[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1,
    [0x06] = 1, [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1,
    [0x0c] = 1, [0x0d] = 1, [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1,
    [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
    [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1, [0x1d] = 1,
    [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1,
};

/* From s[i], the index of the first byte that ends plain string content,
 * or len.  Most of an inspect is string content (paths, ids, labels): with
 * SSE2 (every x86-64) sixteen bytes are looked at a step, which at 10,000
 * inspects of 5 KiB takes a tenth of the first list's CPU off. */
static size_t
plain_run(const char *s, size_t len, size_t i)
{
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                ctl = _mm_set1_epi8(0x1f);
  while (len - i >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    /* Unsigned v <= 0x1f: min(v, 0x1f) == v. */
    __m128i hit = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
        _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
    unsigned mask = (unsigned)_mm_movemask_epi8(hit);
    if (mask)
      return i + (size_t)__builtin_ctz(mask);
    i += 16;
  }
#endif
  while (i < len && !string_special[(unsigned char)s[i]])
    i++;
  return i;
}

/* s[i] is '"': the index after the closing quote, or 0 (never a valid end:
 * a string takes two bytes at least). */
static size_t
skip_string(const char *s, size_t len, size_t i)
{
  for (i++; i < len; i++) {
    i = plain_run(s, len, i);
    if (i >= len)
      return 0;
    unsigned char c = (unsigned char)s[i];
    if (c == '"')
      return i + 1;
    if (c < 0x20)
      return 0;
    if (++i >= len)
      return 0;
    switch (s[i]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
      break;
    case 'u':
      if (len - i <= 4 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]) ||
          !is_hex(s[i + 3]) || !is_hex(s[i + 4]))
        return 0;
      i += 4;
      break;
    default:
      return 0;
    }
  }
  return 0;
}

static size_t
skip_digits(const char *s, size_t len, size_t i)
{
  while (i < len && s[i] >= '0' && s[i] <= '9')
    i++;
  return i;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? from s[i]: the index after
 * it, or 0. */
static size_t
skip_number(const char *s, size_t len, size_t i)
{
  if (i < len && s[i] == '-')
    i++;
  if (i >= len || s[i] < '0' || s[i] > '9')
    return 0;
  i = s[i] == '0' ? i + 1 : skip_digits(s, len, i);
  if (i < len && s[i] >= '0' && s[i] <= '9')
    return 0; /* a leading zero */
  if (i < len && s[i] == '.') {
    size_t j = skip_digits(s, len, i + 1);
    if (j == i + 1)
      return 0;
    i = j;
  }
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < len && (s[i] == '+' || s[i] == '-'))
      i++;
    size_t j = skip_digits(s, len, i);
    if (j == i)
      return 0;
    i = j;
  }
  /* A number ends where something else begins: "1x" is not one. */
  if (i < len && ((s[i] >= 'a' && s[i] <= 'z') ||
                  (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '.' || s[i] == '_'))
    return 0;
  return i;
}

static size_t
skip_literal(const char *s, size_t len, size_t i, const char *word)
{
  size_t n = strlen(word);
  if (len - i < n || memcmp(s + i, word, n) != 0)
    return 0;
  i += n;
  if (i < len &&
      ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
       (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
    return 0;
  return i;
}

static void
bit_set(uint8_t *bits, int level, bool v)
{
  if (v)
    bits[level / 8] |= (uint8_t)(1u << (level % 8));
  else
    bits[level / 8] &= (uint8_t) ~(1u << (level % 8));
}

static bool
bit_get(const uint8_t *bits, int level)
{
  return (bits[level / 8] >> (level % 8)) & 1u;
}

/* A member name and its colon, from s[i] (after white space): the index
 * of the value (white space skipped), or 0. */
static size_t
skip_name(const char *s, size_t len, size_t i)
{
  if (i >= len || s[i] != '"')
    return 0;
  i = skip_string(s, len, i);
  if (!i)
    return 0;
  i = skip_ws(s, len, i);
  if (i >= len || s[i] != ':')
    return 0;
  return skip_ws(s, len, i + 1);
}

int
rp_json_skip(const char *s, size_t len, size_t *pos)
{
  uint8_t open[RP_JSON_MAX_DEPTH / 8]; /* 1: an object */
  int depth = 0;
  size_t i = skip_ws(s, len, *pos);
  for (;;) {
    /* A value begins at s[i]. */
    if (i >= len)
      return -1;
    char c = s[i];
    if (c == '{' || c == '[') {
      if (depth >= RP_JSON_MAX_DEPTH)
        return -1;
      bit_set(open, depth++, c == '{');
      i = skip_ws(s, len, i + 1);
      if (i < len && s[i] == (c == '{' ? '}' : ']')) {
        depth--;
        i++;
      } else {
        if (c == '{' && !(i = skip_name(s, len, i)))
          return -1;
        continue;
      }
    } else if (c == '"') {
      i = skip_string(s, len, i);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      i = skip_number(s, len, i);
    } else if (c == 't') {
      i = skip_literal(s, len, i, "true");
    } else if (c == 'f') {
      i = skip_literal(s, len, i, "false");
    } else if (c == 'n') {
      i = skip_literal(s, len, i, "null");
    } else {
      return -1;
    }
    if (!i)
      return -1;
    /* After a value: the end, or what follows it in its container. */
    for (;;) {
      if (depth == 0) {
        *pos = i;
        return 0;
      }
      i = skip_ws(s, len, i);
      if (i >= len)
        return -1;
      bool object = bit_get(open, depth - 1);
      if (s[i] == ',') {
        i = skip_ws(s, len, i + 1);
        if (object && !(i = skip_name(s, len, i)))
          return -1;
        break; /* the next value */
      }
      if (s[i] != (object ? '}' : ']'))
        return -1;
      depth--;
      i++;
    }
  }
}

/* Whether the name at s[a..b) (quotes included) is key, decoded. */
static bool
name_is(const char *s, size_t a, size_t b, const char *key)
{
  size_t n = b - a - 2;
  if (!memchr(s + a + 1, '\\', n))
    return n == strlen(key) && memcmp(s + a + 1, key, n) == 0;
  /* Escapes in a name: rare enough to let jansson decode it. */
  cleanup_json json_t *v = json_loadb(s + a, b - a, JSON_DECODE_ANY, NULL);
  return json_is_string(v) && strcmp(json_string_value(v), key) == 0 &&
         json_string_length(v) == strlen(key);
}

void
rp_json_iter_init(struct rp_json_iter *it, const char *s, size_t len)
{
  *it = (struct rp_json_iter){.s = s, .len = len};
}

int
rp_json_iter_next(struct rp_json_iter *it, struct rp_json_slice *name,
                  struct rp_json_slice *value)
{
  const char *s = it->s;
  size_t len = it->len, i = skip_ws(s, len, it->pos);
  if (!it->started) {
    if (i >= len || s[i] != '{')
      return -1;
    it->started = true;
    i = skip_ws(s, len, i + 1);
    if (i < len && s[i] == '}')
      goto end;
  } else {
    if (i < len && s[i] == '}')
      goto end;
    if (i >= len || s[i] != ',')
      return -1;
    i = skip_ws(s, len, i + 1);
  }
  if (i >= len || s[i] != '"')
    return -1;
  size_t a = i, b = skip_string(s, len, i);
  if (!b)
    return -1;
  i = skip_ws(s, len, b);
  if (i >= len || s[i] != ':')
    return -1;
  i = skip_ws(s, len, i + 1);
  size_t v = i;
  if (rp_json_skip(s, len, &i) != 0)
    return -1;
  *name = (struct rp_json_slice){s + a, b - a};
  *value = (struct rp_json_slice){s + v, i - v};
  it->pos = i;
  return 1;
end:
  it->pos = i + 1;
  return skip_ws(s, len, i + 1) == len ? 0 : -1;
}

bool
rp_json_plain_string(struct rp_json_slice v)
{
  if (v.n < 2 || v.p[0] != '"' || v.p[v.n - 1] != '"')
    return false;
  for (size_t i = 1; i + 1 < v.n; i++)
    if ((unsigned char)v.p[i] >= 0x80 || v.p[i] == '\\')
      return false;
  return true;
}

/* A plain string's value (rp_json_plain_string): no decoding, no UTF-8
 * check needed. */
static json_t *
plain_string(struct rp_json_slice v)
{
  return json_stringn_nocheck(v.p + 1, v.n - 2);
}

json_t *
rp_json_value(struct rp_json_slice v)
{
  if (v.n == 0)
    return NULL;
  if (rp_json_plain_string(v))
    return plain_string(v);
  if (v.n == 4 && memcmp(v.p, "true", 4) == 0)
    return json_true();
  if (v.n == 5 && memcmp(v.p, "false", 5) == 0)
    return json_false();
  if (v.n == 4 && memcmp(v.p, "null", 4) == 0)
    return json_null();
  if (v.p[0] == '{') {
    /* A flat object of plain strings is built member by member; at the
     * first member that is not, jansson takes the whole. */
    json_t *o = json_object();
    struct rp_json_iter it;
    struct rp_json_slice name, value;
    rp_json_iter_init(&it, v.p, v.n);
    int rc;
    while ((rc = rp_json_iter_next(&it, &name, &value)) == 1 &&
           rp_json_plain_string(name) && rp_json_plain_string(value))
      json_object_setn_new_nocheck(o, name.p + 1, name.n - 2,
                                   plain_string(value));
    if (rc == 0)
      return o;
    json_decref(o);
  }
  return json_loadb(v.p, v.n, JSON_DECODE_ANY, NULL);
}

static json_t *
intern(json_t *interned, struct rp_json_slice v)
{
  const char *text = v.p + 1;
  size_t n = v.n - 2;
  if (n > RP_JSON_INTERN_MAX)
    return plain_string(v);
  json_t *s = json_object_getn(interned, text, n);
  if (s)
    return json_incref(s);
  s = plain_string(v);
  json_object_setn_nocheck(interned, text, n, s);
  return s;
}

json_t *
rp_json_labels(struct rp_json_slice v, json_t *interned, rp_json_keep_fn keep,
               void *keep_arg)
{
  if (v.n == 0 || v.p[0] != '{')
    return rp_json_value(v);
  json_t *o = json_object();
  struct rp_json_iter it;
  struct rp_json_slice name, value;
  rp_json_iter_init(&it, v.p, v.n);
  int rc;
  while ((rc = rp_json_iter_next(&it, &name, &value)) == 1 &&
         rp_json_plain_string(name) && rp_json_plain_string(value))
    if (!keep || keep(keep_arg, name.p + 1, name.n - 2))
      json_object_setn_new_nocheck(o, name.p + 1, name.n - 2,
                                   intern(interned, value));
  if (rc == 0)
    return o;
  json_decref(o);
  /* Escapes, or bytes past ASCII: jansson reads them, then the members
   * not kept go. */
  o = rp_json_value(v);
  if (keep && json_is_object(o)) {
    void *tmp;
    const char *k;
    size_t len;
    json_t *m;
    json_object_keylen_foreach_safe(o, tmp, k, len, m)
    {
      (void)m;
      if (!keep(keep_arg, k, len))
        json_object_deln(o, k, len);
    }
  }
  return o;
}

void
rp_json_intern_prune(json_t *interned)
{
  void *tmp;
  const char *k;
  json_t *s;
  json_object_foreach_safe(interned, tmp, k, s)
  {
    if (s->refcount == 1)
      json_object_del(interned, k);
  }
}

int
rp_json_members(const char *s, size_t len, const char *const *keys, size_t n,
                struct rp_json_slice *out)
{
  for (size_t k = 0; k < n; k++)
    out[k] = (struct rp_json_slice){NULL, 0};
  struct rp_json_iter it;
  struct rp_json_slice name, value;
  rp_json_iter_init(&it, s, len);
  int rc;
  while ((rc = rp_json_iter_next(&it, &name, &value)) == 1)
    for (size_t k = 0; k < n; k++)
      if (name_is(name.p, 0, name.n, keys[k]))
        out[k] = value;
  if (rc < 0)
    return -1;
  int found = 0;
  for (size_t k = 0; k < n; k++)
    found += out[k].p != NULL;
  return found;
}

int
rp_json_member(const char *s, size_t len, const char *key,
               struct rp_json_slice *out)
{
  const char *keys[] = {key};
  struct rp_json_slice v;
  int rc = rp_json_members(s, len, keys, 1, &v);
  if (rc == 1)
    *out = v;
  return rc;
}

/* --- the splitter --------------------------------------------------------- */

enum {
  ST_BEFORE, /* white space, then '[' */
  ST_FIRST,  /* after '[': an element or ']' */
  ST_NEXT,   /* after ',': an element */
  ST_ELEM,   /* inside an element */
  ST_AFTER,  /* after an element: ',' or ']' */
  ST_DONE,   /* after ']': white space only */
  ST_FAILED,
};

void
rp_json_splitter_init(struct rp_json_splitter *sp, size_t max_elem)
{
  memset(sp, 0, sizeof(*sp));
  sp->max_elem = max_elem ? max_elem : MAX_ELEM_DEFAULT;
  sp->state = ST_BEFORE;
}

void
rp_json_splitter_clear(struct rp_json_splitter *sp)
{
  free(sp->buf);
  sp->buf = NULL;
  sp->len = sp->cap = 0;
}

static int
fail(struct rp_json_splitter *sp, const char *why)
{
  sp->state = ST_FAILED;
  sp->why = why;
  return -1;
}

static int
keep(struct rp_json_splitter *sp, const char *data, size_t n)
{
  if (n > sp->max_elem - sp->len)
    return fail(sp, "an element is too long");
  if (sp->len + n > sp->cap) {
    size_t c = sp->cap ? sp->cap : 4096;
    while (c < sp->len + n)
      c *= 2;
    sp->buf = rp_xrealloc(sp->buf, c);
    sp->cap = c;
  }
  memcpy(sp->buf + sp->len, data, n);
  sp->len += n;
  return 0;
}

/* Within an element from data[i]: the index just after it when it ends in
 * data (depth back to 0), n when it goes on, or (size_t)-1 on an error. */
static size_t
scan_elem(struct rp_json_splitter *sp, const char *data, size_t n, size_t i)
{
  for (; i < n; i++) {
    char c = data[i];
    if (sp->in_string) {
      if (sp->escaped)
        sp->escaped = false;
      else if (c == '\\')
        sp->escaped = true;
      else if (c == '"')
        sp->in_string = false;
      else if ((unsigned char)c < 0x20)
        return (size_t)-1;
      continue;
    }
    if (c == '"') {
      sp->in_string = true;
    } else if (c == '{' || c == '[') {
      if (sp->depth >= RP_JSON_MAX_DEPTH)
        return (size_t)-1;
      bit_set(sp->open, sp->depth++, c == '{');
    } else if (c == '}' || c == ']') {
      if (sp->depth == 0 || bit_get(sp->open, sp->depth - 1) != (c == '}'))
        return (size_t)-1;
      if (--sp->depth == 0)
        return i + 1;
    }
  }
  return n;
}

int
rp_json_splitter_feed(struct rp_json_splitter *sp, const char *data, size_t n,
                      int (*elem_cb)(void *arg, size_t index, const char *elem,
                                     size_t len),
                      void *arg)
{
  size_t i = 0;
  while (i < n) {
    if (sp->state == ST_FAILED)
      return -1;
    if (sp->state == ST_ELEM) {
      size_t start = i;
      size_t end = scan_elem(sp, data, n, i);
      if (end == (size_t)-1)
        return fail(sp, "not JSON");
      if (end == n && sp->depth > 0) {
        /* It goes on in the next chunk. */
        return keep(sp, data + start, n - start) < 0 ? -1 : 0;
      }
      const char *elem;
      size_t len;
      if (sp->len == 0) {
        elem = data + start; /* whole in this chunk: no copy */
        len = end - start;
        if (len > sp->max_elem)
          return fail(sp, "an element is too long");
      } else {
        if (keep(sp, data + start, end - start) < 0)
          return -1;
        elem = sp->buf;
        len = sp->len;
        sp->len = 0;
      }
      sp->state = ST_AFTER;
      i = end;
      if (elem_cb(arg, sp->index++, elem, len) != 0)
        return 1;
      continue;
    }
    i = skip_ws(data, n, i);
    if (i >= n)
      break;
    char c = data[i];
    switch (sp->state) {
    case ST_BEFORE:
      if (c != '[') {
        sp->not_array = true;
        return fail(sp, "not an array");
      }
      sp->state = ST_FIRST;
      i++;
      break;
    case ST_FIRST:
    case ST_NEXT:
      if (c == ']' && sp->state == ST_FIRST) {
        sp->state = ST_DONE;
        i++;
      } else if (c == '{') {
        sp->state = ST_ELEM; /* scan_elem counts the '{' */
      } else if (c == ']' || c == ',') {
        return fail(sp, "not JSON");
      } else {
        return fail(sp, "an element is not an object");
      }
      break;
    case ST_AFTER:
      if (c == ',')
        sp->state = ST_NEXT;
      else if (c == ']')
        sp->state = ST_DONE;
      else
        return fail(sp, "not JSON");
      i++;
      break;
    default: /* ST_DONE: only white space may follow */
      return fail(sp, "not JSON");
    }
  }
  return sp->state == ST_FAILED ? -1 : 0;
}

int
rp_json_splitter_end(struct rp_json_splitter *sp)
{
  if (sp->state == ST_DONE)
    return 0;
  if (sp->state != ST_FAILED)
    fail(sp, sp->state == ST_BEFORE ? "empty" : "not JSON");
  return -1;
}
