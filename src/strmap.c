/* String to index, open addressing with linear probing (strmap.h). */
#include "strmap.h"

#include <stdint.h>
#include <string.h>

#include "util.h"

/* FNV-1a: short keys, no adversary that gains anything from collisions
 * but a slower load of its own file. */
static size_t
hash(const char *key, size_t len)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)key[i];
    h *= 0x100000001b3ULL;
  }
  return (size_t)(h ^ (h >> 32));
}

static struct rp_strmap_slot *
find(const struct rp_strmap *m, const char *key, size_t len)
{
  size_t mask = m->cap - 1;
  for (size_t i = hash(key, len) & mask;; i = (i + 1) & mask) {
    struct rp_strmap_slot *s = &m->slots[i];
    if (!s->key || (s->len == len && memcmp(s->key, key, len) == 0))
      return s;
  }
}

bool
rp_strmap_get(const struct rp_strmap *m, const char *key, size_t len,
              size_t *value)
{
  if (m->cap == 0)
    return false;
  const struct rp_strmap_slot *s = find(m, key, len);
  if (!s->key)
    return false;
  if (value)
    *value = s->value;
  return true;
}

static void
grow(struct rp_strmap *m)
{
  struct rp_strmap old = *m;
  m->cap = old.cap ? old.cap * 2 : 16;
  m->slots = rp_xcalloc(m->cap, sizeof(*m->slots));
  for (size_t i = 0; i < old.cap; i++)
    if (old.slots[i].key)
      *find(m, old.slots[i].key, old.slots[i].len) = old.slots[i];
  free(old.slots);
}

bool
rp_strmap_add(struct rp_strmap *m, const char *key, size_t len, size_t value,
              size_t *old)
{
  /* At most half full: probes stay short. */
  if (2 * (m->n + 1) > m->cap)
    grow(m);
  struct rp_strmap_slot *s = find(m, key, len);
  if (s->key) {
    if (old)
      *old = s->value;
    return false;
  }
  *s = (struct rp_strmap_slot){.key = key, .len = len, .value = value};
  m->n++;
  return true;
}

void
rp_strmap_clear(struct rp_strmap *m)
{
  free(m->slots);
  *m = (struct rp_strmap){0};
}
