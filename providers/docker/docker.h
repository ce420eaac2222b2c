/* The docker provider's internals, shared by its files:
 *   docker.c    the ops table
 *   track.c     list, inspect, the /events stream, resync
 *   ops.c       the recycle runner's operations (src/runner.c orders them)
 *   create_body.c  inspect output -> create request (pure) */
#ifndef RP_DOCKER_H
#define RP_DOCKER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "dockerapi/dockerapi.h"
#include "error.h"
#include "provider.h"

/* Labels reaper puts on a replacement so that crash recovery can find its
 * own work: the id of the container it replaces. */
#define RP_DOCKER_LABEL_REPLACES "reaper.replaces"

struct rp_docker_track; /* track.c's state */

struct rp_docker {
  struct rp_provider *p;   /* borrowed: the instance this ctx belongs to */
  struct rp_dockerapi api; /* owned: the engine, and the version spoken */
  char *self_id;           /* owned: reaper's own container id, or NULL */
  struct rp_docker_track *track; /* owned by track.c */
  int recycles_in_flight;
  bool stopping;
  void (*stop_cb)(void *arg); /* the provider's stop is done */
  void *stop_arg;
};

/* docker.c: runs the stop callback once nothing is in flight any more. */
void rp_docker_check_stopped(struct rp_docker *d);

/* track.c */
int rp_docker_track_start(struct rp_docker *d, struct rp_error **err);
void rp_docker_track_resync(struct rp_docker *d);
void rp_docker_track_stop(struct rp_docker *d);
/* Whether tracking has nothing in flight (after rp_docker_track_stop). */
bool rp_docker_track_idle(const struct rp_docker *d);
void rp_docker_track_free(struct rp_docker *d);
/* Builds a workload from `GET /containers/{id}/json` output; NULL when the
 * container is not running. */
struct rp_workload *rp_docker_workload_from_inspect(struct rp_docker *d,
                                                    const json_t *inspect);

/* What tracking reads of `GET /containers/{id}/json` output (its Id, Name,
 * Image, State's Running, Restarting and StartedAt, and Config.Labels), as
 * a small object, without parsing the rest of it (an inspect is about
 * 5 KiB, of which these are a tenth):
 * rp_docker_workload_from_inspect takes it as the whole.  NULL when the
 * text is not JSON; a value that is not an object when it is JSON but not
 * an object (as jansson would have it). */
json_t *rp_docker_inspect_digest(const char *text, size_t len);

/* ops.c: the recycle runner's operations (provider.h says what each
 * does). */
int rp_docker_op_prepare(struct rp_provider *p, const struct rp_workload *w,
                         const struct rp_recycle_spec *spec, rp_prepared_cb cb,
                         void *arg, struct rp_error **err);
void rp_docker_op_release(struct rp_provider *p, void *plan);
int rp_docker_op_rename(struct rp_provider *p, const char *id, const char *name,
                        rp_op_cb cb, void *arg, struct rp_error **err);
int rp_docker_op_create(struct rp_provider *p, void *plan, rp_created_cb cb,
                        void *arg, struct rp_error **err);
int rp_docker_op_start(struct rp_provider *p, const char *id, rp_op_cb cb,
                       void *arg, struct rp_error **err);
int rp_docker_op_stop(struct rp_provider *p, const char *id, int64_t grace_ms,
                      rp_op_cb cb, void *arg, struct rp_error **err);
int rp_docker_op_remove(struct rp_provider *p, const char *id, int64_t grace_ms,
                        rp_op_cb cb, void *arg, struct rp_error **err);
int rp_docker_op_restart(struct rp_provider *p, const char *id,
                         int64_t grace_ms, rp_op_cb cb, void *arg,
                         struct rp_error **err);
int rp_docker_op_drain(struct rp_provider *p, const char *id,
                       const char *const *argv, int64_t timeout_ms,
                       rp_drained_cb cb, void *arg, struct rp_error **err);
int rp_docker_op_pull(struct rp_provider *p, void *plan,
                      const struct rp_recycle_spec *spec, rp_pulled_cb cb,
                      void *arg, struct rp_error **err);
int rp_docker_op_probe(struct rp_provider *p, const char *id, rp_probe_cb cb,
                       void *arg, struct rp_error **err);
int rp_docker_op_find_replacement(struct rp_provider *p, const char *old_id,
                                  const char *name, rp_created_cb cb, void *arg,
                                  struct rp_error **err);
void *rp_docker_op_watch(struct rp_provider *p, const char *id,
                         void (*cb)(void *arg), void *arg);
void rp_docker_op_unwatch(struct rp_provider *p, void *handle);

/* docker.c: a container's own name among the Names of a list item ("/web";
 * a legacy link adds "/app/db" to the linked container's), without its
 * "/"; NULL when there is none. */
const char *rp_docker_own_name(const json_t *names);

/* track.c: cb runs on every event the engine sends about container id,
 * until unwatched (the handle; never after unwatch). */
/* The exit code a watched container's die event said, if one came. */
bool rp_docker_track_exit_code(struct rp_docker *d, const char *id, int *code);
void *rp_docker_track_watch(struct rp_docker *d, const char *id,
                            void (*cb)(void *arg), void *arg);
void rp_docker_track_unwatch(struct rp_docker *d, void *handle);

/* create_body.c: what a replacement is made from, besides the old
 * container's inspect output. */
struct rp_docker_create_opts {
  /* borrowed: the image to create from; NULL means the old container's own
   * image ID ("sha256:..."), so the replacement runs exactly what ran. */
  const char *image;
  /* borrowed, may be NULL: container ID (full and 12-char) -> name, to
   * rewrite references to other containers (network, PID and IPC modes
   * "container:<id>", links, volumes-from) to names that outlive them. */
  json_t *id_names;
  /* borrowed, may be NULL: labels to add (e.g. reaper.replaces=<old id>);
   * they win over the old container's labels of the same key. */
  json_t *extra_labels;
  /* The API version the body is for (borrowed; NULL means 1.41): where a
   * MAC address goes, whether every network is created at once, which
   * endpoint members create takes. */
  const struct rp_dockerapi_version *version;
  /* The MAC address the user configured for the main network: NULL means
   * inspect's Config.MacAddress (which versions from 1.52 no longer show:
   * the caller then reads it at an older version, see recycle.c), "" none. */
  const char *configured_mac;
  /* The engine lists the container's hostname among a network's Aliases
   * though nobody set it (Engine 25 and newer, below API 1.45). */
  bool hostname_alias_added;
  /* The engine does not say which addresses were fixed (Podman): every
   * endpoint keeps the addresses it has (IPAMConfig from IPAddress and
   * GlobalIPv6Address), so that none that was fixed is lost. */
  bool keep_addresses_in_use;
  /* The MAC address goes in the endpoint whatever the version (Podman). */
  bool endpoint_mac_always;
};

/* The body of POST /containers/create (API 1.41) that recreates the
 * container described by `inspect` (GET /containers/{id}/json), given the
 * inspect output of the image it ran (GET /images/{inspect.Image}/json; may
 * be NULL): when opts->image is not that image's ID, what equals the OLD
 * image's defaults is left out so that the new image's show through; pass
 * the old image here even after a pull.  The name is not in the body: pass
 * it as ?name=.  opts may be NULL (all defaults).
 *
 * Carries over the whole user configuration (Config, HostConfig, every
 * network with its static IPs, aliases and links) and leaves the runtime
 * state behind; the rules are described in create_body.c.  Below API 1.44
 * create takes one network: *body_out holds the primary one and
 * *extra_networks (owned; an array, possibly empty, of {"name": NET,
 * "config": EndpointSettings}) the ones to connect afterwards with
 * POST /networks/NET/connect {"Container": ID, "EndpointConfig": config};
 * from 1.44 every network is in the body and *extra_networks is empty.
 * The replacement re-attaches the old container's anonymous volumes: remove
 * the old container without ?v=1.
 *
 * Returns 0, or -1 with RP_EPROTO when inspect lacks what a body needs. */
int rp_docker_create_body(const json_t *inspect, const json_t *image,
                          const struct rp_docker_create_opts *opts,
                          json_t **body_out, json_t **extra_networks,
                          struct rp_error **err);

/* The container's main network in inspect output: the one its NetworkMode
 * names ("default" is "bridge"), else the first by name; NULL without
 * networks.  Borrowed from inspect. */
const char *rp_docker_primary_network(const json_t *inspect);

/* Why a replacement made from this create body (and its extra networks)
 * cannot run beside the old container, or NULL when it can: a fixed host
 * port, a static IP address or a fixed MAC address would clash, so
 * start-first falls back to stop-first. */
const char *rp_docker_body_clashes(const json_t *body, const json_t *extra);

#endif
