#include "known.h"

#include <stdio.h>
#include <string.h>

#include "json_scan.h"
#include "util.h"

static uint64_t
hash(const char *s)
{
  return rp_hash_more(RP_HASH_INIT, s);
}

/* The slot of id, or NULL; *free_slot (may be NULL): the first slot it
 * could take. */
static struct rp_docker_known *
lookup(const struct rp_docker_known_table *t, const char *id,
       struct rp_docker_known **free_slot)
{
  if (free_slot)
    *free_slot = NULL;
  if (!t->cap)
    return NULL;
  size_t mask = t->cap - 1;
  for (size_t i = (size_t)hash(id) & mask;; i = (i + 1) & mask) {
    struct rp_docker_known *k = &t->slots[i];
    if (!k->id[0] && !k->gone) {
      if (free_slot && !*free_slot)
        *free_slot = k;
      return NULL;
    }
    if (k->gone) {
      if (free_slot && !*free_slot)
        *free_slot = k;
    } else if (strcmp(k->id, id) == 0) {
      return k;
    }
  }
}

struct rp_docker_known *
rp_docker_known_find(const struct rp_docker_known_table *t, const char *id)
{
  return lookup(t, id, NULL);
}

/* Made again with room for twice as many as it holds (gone slots left
 * out). */
static void
rehash(struct rp_docker_known_table *t)
{
  struct rp_docker_known *old = t->slots;
  size_t old_cap = t->cap;
  size_t cap = 64;
  while (cap < t->count * 2 + 2)
    cap *= 2;
  t->slots = rp_xcalloc(cap, sizeof(*t->slots));
  t->cap = cap;
  t->used = t->count;
  for (size_t i = 0; i < old_cap; i++) {
    if (!old[i].id[0])
      continue;
    struct rp_docker_known *slot;
    lookup(t, old[i].id, &slot);
    *slot = old[i];
  }
  free(old);
}

struct rp_docker_known *
rp_docker_known_add(struct rp_docker_known_table *t, const char *id)
{
  if (strlen(id) >= sizeof(((struct rp_docker_known *)0)->id))
    return NULL;
  struct rp_docker_known *slot;
  struct rp_docker_known *k = lookup(t, id, &slot);
  if (k)
    return k;
  if ((t->used + 1) * 4 > t->cap * 3) {
    rehash(t);
    lookup(t, id, &slot);
  }
  if (!slot->gone)
    t->used++;
  memset(slot, 0, sizeof(*slot));
  snprintf(slot->id, sizeof(slot->id), "%s", id);
  t->count++;
  return slot;
}

static void
forget(struct rp_docker_known_table *t, struct rp_docker_known *k)
{
  json_decref(k->labels);
  json_decref(k->ref);
  memset(k, 0, sizeof(*k));
  k->gone = true;
  t->count--;
}

bool
rp_docker_known_stopped(struct rp_docker_known_table *t, const char *id)
{
  struct rp_docker_known *k = lookup(t, id, NULL);
  if (!k || !k->running)
    return false;
  k->running = false;
  k->started_ms = 0;
  json_decref(k->labels);
  k->labels = NULL;
  if (!k->ref)
    forget(t, k);
  return true;
}

void
rp_docker_known_set_ref(struct rp_docker_known_table *t,
                        struct rp_docker_known *k, const char *ref)
{
  json_t *s = NULL;
  if (ref) {
    if (!t->refs)
      t->refs = json_object();
    s = json_object_get(t->refs, ref);
    if (!s) {
      s = json_string(ref);
      if (s)
        json_object_set_new(t->refs, ref, s);
    }
  }
  if (s == k->ref)
    return;
  json_decref(k->ref);
  k->ref = s ? json_incref(s) : NULL;
}

void
rp_docker_known_keep_only(struct rp_docker_known_table *t,
                          bool (*keep)(void *arg, const char *id), void *arg)
{
  for (size_t i = 0; i < t->cap; i++)
    if (t->slots[i].id[0] && !keep(arg, t->slots[i].id))
      forget(t, &t->slots[i]);
  if (t->refs)
    rp_json_intern_prune(t->refs);
  /* Shrinks, and sheds the gone slots, once few are in use. */
  if (t->cap > 64 && t->count * 8 < t->cap)
    rehash(t);
}

void
rp_docker_known_clear(struct rp_docker_known_table *t)
{
  for (size_t i = 0; i < t->cap; i++)
    if (t->slots[i].id[0]) {
      json_decref(t->slots[i].labels);
      json_decref(t->slots[i].ref);
    }
  free(t->slots);
  json_decref(t->refs);
  memset(t, 0, sizeof(*t));
}
