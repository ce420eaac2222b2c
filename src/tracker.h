/* The tracker: every live workload of every provider, keyed by (provider,
 * id), with the policy decision that goes with it.  Providers report
 * through the agent; the schedule and the recycler keep their own state in
 * the entry (heap position, in-flight recycle) but the tracker owns it. */
#ifndef RP_TRACKER_H
#define RP_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "freshness.h"
#include "policy.h"
#include "provider.h"
#include "workload.h"

enum rp_entry_state {
  RP_ENTRY_WAITING,   /* in the schedule until its due time */
  RP_ENTRY_DUE,       /* due, waiting for its policy's budget */
  RP_ENTRY_RECYCLING, /* a recycle is in flight */
  RP_ENTRY_PLANNED,   /* dry run: recycle.planned written, nothing to do */
  RP_ENTRY_IDLE,      /* excluded or unmatched: never scheduled */
};

/* One per workload (10,000 on a large engine): the small members are
 * together, so that padding does not add to every entry. */
struct rp_entry {
  struct rp_workload *w;        /* owned */
  struct rp_provider *provider; /* borrowed: lives as long as the agent */
  struct rp_decision d;         /* d.policy borrowed from the live config */
  enum rp_entry_state state;
  int failures;     /* consecutive failed recycles, for backoff */
  int64_t due_ms;   /* when to act: d.due_ms, or a retry after a failure */
  int64_t retry_ms; /* after a failure: not before this (0: none) */
  /* The start time this workload had when it was last recycled (or, in a
   * dry run, planned): it is not acted on again until it starts anew. */
  int64_t handled_start_ms;
  size_t heap_index; /* position in the schedule's heap, or RP_NOT_QUEUED */
  /* The reason it was due when it was offered to the recycler (its
   * decision may change while it waits for the budget). */
  enum rp_due_reason offered_for;
  bool gone; /* the provider removed it while it was recycling */
  /* The reason its last recycle was refused (recycle.refused said once per
   * reason), or NULL.  Owned. */
  char *refused;
  /* Its content (fresh content), as last decided. */
  struct rp_content_view content;
  struct rp_entry *hash_next; /* the tracker's chain */
};

#define RP_NOT_QUEUED ((size_t)-1)

struct rp_tracker;

struct rp_tracker *rp_tracker_new(void);
/* Frees every entry.  Accepts NULL. */
void rp_tracker_free(struct rp_tracker *t);

struct rp_entry *rp_tracker_find(const struct rp_tracker *t,
                                 const char *provider, const char *id);
/* Adds a workload that is not tracked yet; takes ownership of w. */
struct rp_entry *rp_tracker_add(struct rp_tracker *t,
                                struct rp_provider *provider,
                                struct rp_workload *w);
/* Unlinks e (the caller then owns it and frees it with rp_entry_free). */
void rp_tracker_unlink(struct rp_tracker *t, struct rp_entry *e);
void rp_entry_free(struct rp_entry *e);

size_t rp_tracker_count(const struct rp_tracker *t);

/* Calls cb for every entry; cb may unlink the entry it is given (and only
 * that one). */
void rp_tracker_foreach(struct rp_tracker *t,
                        void (*cb)(void *arg, struct rp_entry *e), void *arg);

/* Every entry in a new array (owned by the caller, entries borrowed), sorted
 * by cmp when it is not NULL. */
struct rp_entry **rp_tracker_snapshot(const struct rp_tracker *t,
                                      int (*cmp)(const void *, const void *),
                                      size_t *n_out);

#endif
