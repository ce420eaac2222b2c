/* A map from strings (borrowed, with their length) to indexes: open
 * addressing, doubled when half full.  For the places that must look a
 * name up among many (a configuration's keys, policy and provider names)
 * in constant time rather than by a scan of every earlier one, which made
 * loading a large configuration quadratic. */
#ifndef RP_STRMAP_H
#define RP_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct rp_strmap_slot {
  const char *key; /* borrowed: must outlive the map; NULL when free */
  size_t len;
  size_t value;
};

struct rp_strmap {
  struct rp_strmap_slot *slots; /* owned */
  size_t cap;                   /* 0 or a power of two */
  size_t n;
};

/* A zeroed struct rp_strmap is an empty map. */

/* Whether key is in m; its value in *value (may be NULL) when it is. */
bool rp_strmap_get(const struct rp_strmap *m, const char *key, size_t len,
                   size_t *value);

/* Adds key (borrowed) with value, unless it is there already: returns
 * false then, and *old (may be NULL) is the value it has. */
bool rp_strmap_add(struct rp_strmap *m, const char *key, size_t len,
                   size_t value, size_t *old);

/* Frees the slots; m is empty again. */
void rp_strmap_clear(struct rp_strmap *m);

#endif
