/* The label keys the core reads: the configuration's (its policies' match
 * labels and its exclude labels) and every `reaper.` label.  A provider
 * keeps only these of a workload's labels (and those it reads itself):
 * compose alone puts nine on every container, and at 10,000 containers the
 * rest would be megabytes held for nothing.  A reload that reads a new key
 * makes the agent list again before it acts (src/agent.c). */
#ifndef RP_LABEL_KEYS_H
#define RP_LABEL_KEYS_H

#include <stdbool.h>
#include <stddef.h>

struct rp_config;

/* A sorted set of keys, besides the `reaper.` prefix that is always read. */
struct rp_label_keys {
  char **keys; /* owned strv, sorted, each once */
  size_t n;
};

/* The keys c reads (owned; rp_label_keys_free). */
struct rp_label_keys *rp_label_keys_of(const struct rp_config *c);
void rp_label_keys_free(struct rp_label_keys *k);

/* Whether key (len bytes, not necessarily terminated) is read: NULL k reads
 * every key. */
bool rp_label_keys_want(const struct rp_label_keys *k, const char *key,
                        size_t len);

/* Whether b reads a key a does not (what a list made under a left out). */
bool rp_label_keys_adds(const struct rp_label_keys *a,
                        const struct rp_label_keys *b);

#endif
