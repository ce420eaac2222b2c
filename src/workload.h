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

/* The content a workload runs, as its provider knows it (engine-neutral
 * names; every member may be missing).  For fresh content (content.h). */
struct rp_workload_image {
  /* The image reference as the workload was created ("nginx:1.25", as its
   * creator wrote it), or NULL. */
  char *ref;
  /* The engine's id of the image it runs ("sha256:..."), or NULL. */
  char *id;
  /* The registry digests the engine knows for that image, as
   * "NAME@sha256:..." (RepoDigests): owned strv, NULL when it has none (a
   * local build, never pushed nor pulled). */
  char **repo_digests;
  /* The image's own Created time (wall ms), 0 when not known.  A build
   * may set anything here (reproducible builds write 1970). */
  int64_t created_ms;
  /* The image's platform, "linux/amd64", or NULL. */
  char *platform;
};

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
  /* What it runs (owned members). */
  struct rp_workload_image image;
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

/* Copies src into dst (dst's old members are freed first), and frees the
 * members of one; accept zeroed structs. */
void rp_workload_image_copy(struct rp_workload_image *dst,
                            const struct rp_workload_image *src);
void rp_workload_image_clear(struct rp_workload_image *img);
/* Whether two are the same facts. */
bool rp_workload_image_equal(const struct rp_workload_image *a,
                             const struct rp_workload_image *b);

/* The hash of a workload's key, (provider, id): FNV-1a over provider, a 0
 * byte and id.  For the tables that find a workload by its key (the
 * tracker, the advance notices). */
uint64_t rp_workload_key_hash(const char *provider, const char *id);

#endif
