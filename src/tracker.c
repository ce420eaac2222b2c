#include "tracker.h"

#include <string.h>

#include "util.h"

/* A chained hash table that doubles when it is 3/4 full: thousands of
 * workloads, looked up on every event. */
struct rp_tracker {
  struct rp_entry **buckets; /* owned array of chains */
  size_t n_buckets;
  size_t count;
};

struct rp_tracker *
rp_tracker_new(void)
{
  struct rp_tracker *t = rp_xcalloc(1, sizeof(*t));
  t->n_buckets = 64;
  t->buckets = rp_xcalloc(t->n_buckets, sizeof(*t->buckets));
  return t;
}

void
rp_entry_free(struct rp_entry *e)
{
  if (!e)
    return;
  rp_workload_free(e->w);
  rp_decision_clear(&e->d);
  free(e->refused);
  rp_content_view_clear(&e->content);
  free(e);
}

void
rp_tracker_free(struct rp_tracker *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->n_buckets; i++) {
    struct rp_entry *e = t->buckets[i];
    while (e) {
      struct rp_entry *next = e->hash_next;
      rp_entry_free(e);
      e = next;
    }
  }
  free(t->buckets);
  free(t);
}

struct rp_entry *
rp_tracker_find(const struct rp_tracker *t, const char *provider,
                const char *id)
{
  size_t b = rp_workload_key_hash(provider, id) % t->n_buckets;
  for (struct rp_entry *e = t->buckets[b]; e; e = e->hash_next)
    if (strcmp(e->w->id, id) == 0 && strcmp(e->w->provider, provider) == 0)
      return e;
  return NULL;
}

static void
grow(struct rp_tracker *t)
{
  size_t n = t->n_buckets * 2;
  struct rp_entry **b = rp_xcalloc(n, sizeof(*b));
  for (size_t i = 0; i < t->n_buckets; i++) {
    struct rp_entry *e = t->buckets[i];
    while (e) {
      struct rp_entry *next = e->hash_next;
      size_t k = rp_workload_key_hash(e->w->provider, e->w->id) % n;
      e->hash_next = b[k];
      b[k] = e;
      e = next;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->n_buckets = n;
}

struct rp_entry *
rp_tracker_add(struct rp_tracker *t, struct rp_provider *provider,
               struct rp_workload *w)
{
  if (t->count + 1 > t->n_buckets / 4 * 3)
    grow(t);
  struct rp_entry *e = rp_xcalloc(1, sizeof(*e));
  e->w = w;
  e->provider = provider;
  e->heap_index = RP_NOT_QUEUED;
  e->state = RP_ENTRY_IDLE;
  size_t b = rp_workload_key_hash(w->provider, w->id) % t->n_buckets;
  e->hash_next = t->buckets[b];
  t->buckets[b] = e;
  t->count++;
  return e;
}

void
rp_tracker_unlink(struct rp_tracker *t, struct rp_entry *e)
{
  size_t b = rp_workload_key_hash(e->w->provider, e->w->id) % t->n_buckets;
  for (struct rp_entry **pp = &t->buckets[b]; *pp; pp = &(*pp)->hash_next) {
    if (*pp == e) {
      *pp = e->hash_next;
      e->hash_next = NULL;
      t->count--;
      return;
    }
  }
}

size_t
rp_tracker_count(const struct rp_tracker *t)
{
  return t->count;
}

void
rp_tracker_foreach(struct rp_tracker *t,
                   void (*cb)(void *arg, struct rp_entry *e), void *arg)
{
  for (size_t i = 0; i < t->n_buckets; i++) {
    struct rp_entry *e = t->buckets[i];
    while (e) {
      struct rp_entry *next = e->hash_next; /* cb may unlink e */
      cb(arg, e);
      e = next;
    }
  }
}

struct rp_entry **
rp_tracker_snapshot(const struct rp_tracker *t,
                    int (*cmp)(const void *, const void *), size_t *n_out)
{
  struct rp_entry **v = rp_xcalloc(t->count + 1, sizeof(*v));
  size_t n = 0;
  for (size_t i = 0; i < t->n_buckets; i++)
    for (struct rp_entry *e = t->buckets[i]; e; e = e->hash_next)
      v[n++] = e;
  if (cmp)
    qsort(v, n, sizeof(*v), cmp);
  *n_out = n;
  return v;
}
