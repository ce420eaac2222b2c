/* What tracking knows of each container between lists: its start and the
 * labels last reported while it runs, the image reference it was created
 * from.  One table of small structs (open addressing) rather than three
 * jansson objects keyed by its 64-character id (about 420 bytes a
 * container at 10,000 containers; this is about 150, in one block). */
#ifndef RP_DOCKER_KNOWN_H
#define RP_DOCKER_KNOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct rp_docker_known {
  char id[65];  /* "": a free slot */
  bool gone;    /* a slot whose container was forgotten (probes go on) */
  bool running; /* started_ms and labels are what was reported */
  int64_t started_ms;
  json_t *labels; /* owned reference, or NULL: the labels last reported */
  json_t *ref;    /* owned reference (shared), or NULL: Config.Image */
};

struct rp_docker_known_table {
  struct rp_docker_known *slots; /* owned */
  size_t cap;                    /* 0 or a power of two */
  size_t used;                   /* slots holding a container or gone */
  size_t count;                  /* containers */
  json_t *refs;                  /* owned: reference text -> its string */
};

/* A zeroed table is empty. */

/* The container's slot, or NULL. */
struct rp_docker_known *
rp_docker_known_find(const struct rp_docker_known_table *t, const char *id);
/* Its slot, made empty when it had none; NULL for an id over 64 bytes
 * (never an engine's). */
struct rp_docker_known *rp_docker_known_add(struct rp_docker_known_table *t,
                                            const char *id);
/* The running one it was (true), forgotten as running; its reference
 * stays. */
bool rp_docker_known_stopped(struct rp_docker_known_table *t, const char *id);
/* Its reference, shared with the others of the same text (NULL: none). */
void rp_docker_known_set_ref(struct rp_docker_known_table *t,
                             struct rp_docker_known *k, const char *ref);
/* Forgets every container keep(arg, id) says no to. */
void rp_docker_known_keep_only(struct rp_docker_known_table *t,
                               bool (*keep)(void *arg, const char *id),
                               void *arg);
void rp_docker_known_clear(struct rp_docker_known_table *t);

#endif
