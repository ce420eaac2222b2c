#include "idset.h"

#include <stdint.h>
#include <string.h>

#include "util.h"

static uint64_t
hash(const char *s)
{
  return rp_hash_more(RP_HASH_INIT, s);
}

/* The slot of id, or of the empty one where it would go. */
static size_t
find(const struct rp_idset *s, const char *id)
{
  size_t mask = s->cap - 1;
  size_t i = (size_t)hash(id) & mask;
  while (s->slots[i] && strcmp(s->text + s->slots[i] - 1, id) != 0)
    i = (i + 1) & mask;
  return i;
}

void
rp_idset_init(struct rp_idset *s, size_t expected)
{
  memset(s, 0, sizeof(*s));
  s->cap = 16;
  while (s->cap < expected * 2)
    s->cap *= 2;
  s->slots = rp_xcalloc(s->cap, sizeof(*s->slots));
  s->text_cap = expected * 65 + 64;
  s->text = rp_xmalloc(s->text_cap);
}

static void
grow(struct rp_idset *s)
{
  size_t *old = s->slots;
  size_t old_cap = s->cap;
  s->cap *= 2;
  s->slots = rp_xcalloc(s->cap, sizeof(*s->slots));
  for (size_t i = 0; i < old_cap; i++)
    if (old[i])
      s->slots[find(s, s->text + old[i] - 1)] = old[i];
  free(old);
}

void
rp_idset_add(struct rp_idset *s, const char *id)
{
  if ((s->count + 1) * 2 > s->cap)
    grow(s);
  size_t i = find(s, id);
  if (s->slots[i])
    return;
  size_t n = strlen(id) + 1;
  if (s->text_len + n > s->text_cap) {
    while (s->text_len + n > s->text_cap)
      s->text_cap *= 2;
    s->text = rp_xrealloc(s->text, s->text_cap);
  }
  memcpy(s->text + s->text_len, id, n);
  s->slots[i] = s->text_len + 1;
  s->text_len += n;
  s->count++;
}

bool
rp_idset_has(const struct rp_idset *s, const char *id)
{
  return s->slots && s->slots[find(s, id)] != 0;
}

void
rp_idset_clear(struct rp_idset *s)
{
  free(s->slots);
  free(s->text);
  memset(s, 0, sizeof(*s));
}
