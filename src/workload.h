/* A workload: anything with a start time that reaper may recycle.  Providers
 * produce them; the core tracks, plans and recycles them without knowing the
 * engine behind. */
#ifndef RP_WORKLOAD_H
#define RP_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

enum rp_kind {
  RP_KIND_CONTAINER,
  RP_KIND_SERVICE,
  RP_KIND_NODE,
  RP_KIND_TASK,
  RP_KIND_HOST,
  RP_KIND__COUNT
};

/* "container", "service"...; NULL for an out-of-range value. */
const char *rp_kind_name(enum rp_kind k);
/* Returns the kind or -1 for an unknown name. */
int rp_kind_parse(const char *name);

struct rp_workload {
  char *provider; /* owned: name of the provider instance ("local") */
  enum rp_kind kind;
  char *id;   /* owned: engine id, unique within the provider */
  char *name; /* owned: human name ("web-1"), may equal id */
  /* owned reference: object of string -> string; never changed once the
   * workload is made (copies share it) */
  json_t *labels;
  int64_t started_ms; /* wall ms since the Epoch of the last start */
  /* The provider's reason never to touch this workload ("reaper's own
   * container", "a task of a service"), or NULL.  Owned. */
  char *protected_reason;
  /* The provider's reason not to recycle this workload now, when it comes
   * due (a state that must not be destroyed, something that depends on
   * it), or NULL: plan shows it, and the recycle is refused, once, in the
   * audit log (recycle.refused).  Owned. */
  char *refusal;
  /* The service this workload is one replica of, as its provider knows it
   * (a compose project's service, a cluster's service), or NULL: audit lines
   * carry it, for the report.  Owned. */
  char *service;
  /* A fact about this workload the provider wants operators to see in
   * plan and /status (e.g. another supervisor restarts it), or NULL.  It
   * decides nothing.  Owned. */
  char *note;
  /* The workloads it needs as they are while it runs (a namespace it
   * shares, a link, the volumes it takes from another), as their ids or
   * names: the two are never recycled at the same time.  Owned,
   * NULL-terminated, or NULL. */
  char **depends_on;
  /* Opaque provider detail the core passes back untouched (e.g. the image
   * id), owned reference, may be NULL. */
  json_t *extra;
};

struct rp_workload *rp_workload_new(const char *provider, enum rp_kind kind,
                                    const char *id, const char *name,
                                    int64_t started_ms);
struct rp_workload *rp_workload_dup(const struct rp_workload *w);
/* Accepts NULL. */
void rp_workload_free(struct rp_workload *w);
/* A label's value, or NULL when absent or not a string. */
const char *rp_workload_label(const struct rp_workload *w, const char *key);

/* The hash of a workload's key, (provider, id): FNV-1a over provider, a 0
 * byte and id.  For the tables that find a workload by its key (the
 * tracker, the advance notices). */
uint64_t rp_workload_key_hash(const char *provider, const char *id);

#endif
