/* NULL-terminated arrays of strings ("strv"): argv lists, the notify:
 * entries' events, a provider's namespaces, the status listener's host
 * names.  An owned strv owns the array and every string in it; NULL is an
 * empty list wherever a strv is read, and every function accepts it.
 *
 * The readers take char *const * (what owned arrays convert to without a
 * cast). */
#ifndef RP_STRV_H
#define RP_STRV_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The number of strings before the NULL (0 for NULL). */
size_t rp_strv_len(char *const *v);

/* A deep copy (owned), or NULL for NULL: a copy keeps the difference
 * between "no list" and an empty one. */
char **rp_strv_dup(char *const *v);

/* Frees v and its strings.  Accepts NULL. */
void rp_strv_free(char **v);

/* Appends a copy of s to *v (NULL: a new array holding s alone). */
void rp_strv_push(char ***v, const char *s);

/* Whether a and b hold the same strings in the same order; NULL equals
 * only NULL (a list left out is not an empty one). */
bool rp_strv_equal(char *const *a, char *const *b);

/* Whether s is one of v's strings (exact comparison). */
bool rp_strv_contains(char *const *v, const char *s);

/* The strings of a JSON array (owned), or NULL when a is not an array or
 * holds anything but strings.  An empty array gives an empty strv. */
char **rp_strv_from_json(const json_t *a);

/* A JSON array of v's strings (new reference; [] for NULL). */
json_t *rp_strv_to_json(char *const *v);

static inline void
rp_strv_freep(char ***v)
{
  rp_strv_free(*v);
}
#define cleanup_strv __attribute__((cleanup(rp_strv_freep)))

#endif
