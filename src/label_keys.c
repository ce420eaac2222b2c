/* The label keys the core reads (label_keys.h). */
#include "label_keys.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "strv.h"
#include "util.h"

#define ALWAYS_PREFIX "reaper."

static int
key_cmp(const void *x, const void *y)
{
  return strcmp(*(char *const *)x, *(char *const *)y);
}

static void
add_matches(char ***v, const struct rp_label_match *m, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (m[i].key && strncmp(m[i].key, ALWAYS_PREFIX, strlen(ALWAYS_PREFIX)))
      rp_strv_push(v, m[i].key);
}

struct rp_label_keys *
rp_label_keys_of(const struct rp_config *c)
{
  char **v = NULL;
  for (size_t i = 0; c && i < c->n_policies; i++)
    add_matches(&v, c->policies[i].match_labels, c->policies[i].n_match_labels);
  if (c)
    add_matches(&v, c->exclude_labels, c->n_exclude_labels);
  struct rp_label_keys *k = rp_xcalloc(1, sizeof(*k));
  size_t n = rp_strv_len(v);
  if (n > 1)
    qsort(v, n, sizeof(*v), key_cmp);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    if (kept && strcmp(v[kept - 1], v[i]) == 0) {
      free(v[i]);
      continue;
    }
    v[kept++] = v[i];
  }
  if (v)
    v[kept] = NULL;
  k->keys = v;
  k->n = kept;
  return k;
}

void
rp_label_keys_free(struct rp_label_keys *k)
{
  if (!k)
    return;
  rp_strv_free(k->keys);
  free(k);
}

/* strcmp of a (len bytes) against the terminated b. */
static int
cmp_n(const char *a, size_t len, const char *b)
{
  int c = strncmp(a, b, len);
  if (c)
    return c;
  return b[len] ? -1 : 0;
}

bool
rp_label_keys_want(const struct rp_label_keys *k, const char *key, size_t len)
{
  if (!k)
    return true;
  size_t pn = strlen(ALWAYS_PREFIX);
  if (len >= pn && memcmp(key, ALWAYS_PREFIX, pn) == 0)
    return true;
  if (memchr(key, '\0', len))
    return false; /* no key the configuration names holds a NUL */
  size_t lo = 0, hi = k->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp_n(key, len, k->keys[mid]);
    if (c == 0)
      return true;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return false;
}

bool
rp_label_keys_adds(const struct rp_label_keys *a, const struct rp_label_keys *b)
{
  if (!b)
    return a != NULL; /* b reads every key */
  for (size_t i = 0; i < b->n; i++)
    if (!rp_label_keys_want(a, b->keys[i], strlen(b->keys[i])))
      return true;
  return false;
}
