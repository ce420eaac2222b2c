/* A set of short strings (workload ids) in two blocks: its table and its
 * text.  For the sets a list builds and drops at once (the ids listed):
 * 10,000 of them made as jansson objects would be 10,000 small allocations
 * among what the list keeps, and freed, holes in the heap that glibc
 * cannot hand back. */
#ifndef RP_IDSET_H
#define RP_IDSET_H

#include <stdbool.h>
#include <stddef.h>

struct rp_idset {
  size_t *slots; /* owned: offset + 1 into text of each member, 0: empty */
  size_t cap;    /* slots, a power of two */
  size_t count;
  char *text; /* owned: the members, each NUL-terminated */
  size_t text_len, text_cap;
};

/* An empty set; `expected`: how many members it will likely hold. */
void rp_idset_init(struct rp_idset *s, size_t expected);
/* Adds a copy of id (nothing when it is a member already). */
void rp_idset_add(struct rp_idset *s, const char *id);
bool rp_idset_has(const struct rp_idset *s, const char *id);
/* Frees what it holds; accepts a zeroed set. */
void rp_idset_clear(struct rp_idset *s);

#endif
