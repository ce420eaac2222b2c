/* The docker provider's internals, shared by its files:
 *   docker.c    the ops table, DOCKER_HOST, version negotiation
 *   client.c    one API call on the loop (rp_docker_call)
 *   track.c     list, inspect, the /events stream, resync
 *   recycle.c   the strategies: recreate, restart, stop, remove; drain hooks
 *   create_body.c  inspect output -> create request (pure) */
#ifndef RP_DOCKER_H
#define RP_DOCKER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "error.h"
#include "http_client.h"
#include "provider.h"

/* Labels reaper puts on a replacement so that crash recovery can find its
 * own work: the id of the container it replaces. */
#define RP_DOCKER_LABEL_REPLACES "reaper.replaces"
/* Old containers are renamed NAME + this suffix while their replacement
 * starts (start-first). */
#define RP_DOCKER_OLD_SUFFIX "-reaper-old"

struct rp_docker_track; /* track.c's state */

struct rp_docker {
  struct rp_provider *p;      /* borrowed: the instance this ctx belongs to */
  struct rp_http_endpoint ep; /* owned */
  char api[16];               /* "/v1.41": negotiated with /_ping */
  bool negotiated;
  char *self_id;                 /* owned: reaper's own container id, or NULL */
  struct rp_docker_track *track; /* owned by track.c */
  int recycles_in_flight;
  bool stopping;
  void (*stop_cb)(void *arg); /* the provider's stop is done */
  void *stop_arg;
};

/* docker.c: runs the stop callback once nothing is in flight any more. */
void rp_docker_check_stopped(struct rp_docker *d);

/* The answer to one API call.  status is the HTTP status (0 on a transport
 * failure); body is the parsed JSON (borrowed for the callback; NULL when
 * empty or not JSON); raw is the body text.  err is set on a transport
 * failure and on any status >= 400, with the engine's message and a code:
 * RP_ENOTFOUND for 404, RP_ECONFLICT for 409, RP_EENGINE otherwise. */
struct rp_docker_reply {
  long status;
  json_t *body;
  const char *raw;
  size_t raw_len;
};
typedef void (*rp_docker_cb)(void *arg, const struct rp_docker_reply *r,
                             const struct rp_error *err);

/* Sends METHOD api+path (path starts with "/", e.g. "/containers/json")
 * with an optional JSON body (borrowed).  timeout_ms 0 means the default
 * (30 s).  Returns -1 (cb never runs) when it cannot start. */
int rp_docker_call(struct rp_docker *d, const char *method, const char *path,
                   const json_t *body, int64_t timeout_ms, rp_docker_cb cb,
                   void *arg, struct rp_error **err);

/* GET api+path with no timeout (e.g. "/events?filters=..."), whose body is
 * split into lines: on_line gets each line (without "\n" or "\r\n"; empty
 * lines skipped; line borrowed for the call), also one final line that had
 * no newline when the stream ends.  A non-zero return from on_line stops
 * the stream.  done_cb runs exactly once: err NULL when the engine ended the
 * stream cleanly; otherwise why (RP_ECANCELED when cancelled or stopped,
 * RP_EPROTO for a line over 1 MiB, the engine's message for a status >= 400,
 * transport errors).  *xfer (may be NULL) cancels it with rp_http_cancel
 * until done_cb has run.  Returns -1 (done_cb never runs) when it cannot
 * start. */
int rp_docker_stream(struct rp_docker *d, const char *path,
                     int (*on_line)(void *arg, const char *line, size_t len),
                     void (*done_cb)(void *arg, const struct rp_error *err),
                     void *arg, struct rp_http_xfer **xfer,
                     struct rp_error **err);

/* The line splitting of rp_docker_stream, on its own (client.c): a line
 * ends at "\n"; a "\r" before it is dropped; empty lines are skipped; a
 * line longer than max_line bytes (its "\r" included) is an error.  Chunks
 * may end anywhere, even between "\r" and "\n". */
struct rp_docker_line_splitter {
  size_t max_line;
  char *buf; /* owned: the start of a line whose end has not come yet */
  size_t len, cap;
};
typedef int (*rp_docker_line_cb)(void *arg, const char *line, size_t len);
/* Starts empty; max_line 0 means 1 MiB. */
void rp_docker_line_splitter_init(struct rp_docker_line_splitter *ls,
                                  size_t max_line);
/* Feeds the next n bytes: line_cb gets each line they complete (borrowed
 * for the call).  Returns 0; 1 as soon as line_cb returns non-zero (the
 * rest of data is dropped); -1 when a line is over max_line (nothing after
 * it is delivered).  Do not feed again after 1 or -1. */
int rp_docker_line_splitter_feed(struct rp_docker_line_splitter *ls,
                                 const char *data, size_t n,
                                 rp_docker_line_cb line_cb, void *arg);
/* The stream ended: line_cb gets the last line if it had no newline.
 * Returns 0, or 1 when line_cb returned non-zero. */
int rp_docker_line_splitter_end(struct rp_docker_line_splitter *ls,
                                rp_docker_line_cb line_cb, void *arg);
/* Frees the buffer; the splitter may be initialized again. */
void rp_docker_line_splitter_clear(struct rp_docker_line_splitter *ls);

/* GET /_ping (unversioned), then sets d->api to "/v" + min(1.43, the
 * engine's API-Version) and d->negotiated.  Engines older than API 1.41 are
 * refused (RP_EENGINE).  cb runs exactly once, err NULL on success.  Returns
 * -1 (cb never runs) when it cannot start. */
int rp_docker_ping(struct rp_docker *d,
                   void (*cb)(void *arg, const struct rp_error *err), void *arg,
                   struct rp_error **err);

/* Parses DOCKER_HOST-style endpoints (unix:///path, tcp://host:port) with
 * TLS from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, as the docker CLI does.
 * NULL or "" means $DOCKER_HOST, and unix:///var/run/docker.sock when that
 * is unset or empty.  tcp:// defaults to port 2375 (2376 with TLS).  On
 * success overwrites *ep (whose old contents are not freed; free with
 * rp_http_endpoint_clear); npipe://, ssh:// and anything else fail with
 * RP_ECONFIG and leave *ep alone. */
int rp_docker_endpoint_parse(const char *endpoint, struct rp_http_endpoint *ep,
                             struct rp_error **err);

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

/* recover.c: crash recovery (see the comment at its top). */
int rp_docker_recover(struct rp_docker *d, const struct rp_unfinished *items,
                      size_t n, rp_recover_item_cb item_cb,
                      void (*done_cb)(void *arg, const struct rp_error *err),
                      void *arg, struct rp_error **err);

/* recycle.c */
int rp_docker_recycle(struct rp_docker *d, const struct rp_workload *w,
                      const struct rp_recycle_spec *spec, rp_recycle_cb cb,
                      void *arg, struct rp_error **err);

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
 * state behind; the rules are described in create_body.c.  dockerd 20.10
 * takes one network at create: *body_out holds the primary one and
 * *extra_networks (owned; an array, possibly empty, of {"name": NET,
 * "config": EndpointSettings}) the ones to connect afterwards with
 * POST /networks/NET/connect {"Container": ID, "EndpointConfig": config}.
 * The replacement re-attaches the old container's anonymous volumes: remove
 * the old container without ?v=1.
 *
 * Returns 0, or -1 with RP_EPROTO when inspect lacks what a body needs. */
int rp_docker_create_body(const json_t *inspect, const json_t *image,
                          const struct rp_docker_create_opts *opts,
                          json_t **body_out, json_t **extra_networks,
                          struct rp_error **err);

/* True when the container publishes a fixed host port
 * (HostConfig.PortBindings with a HostPort): its replacement cannot start
 * while it runs, so start-first must fall back to stop-first. */
bool rp_docker_publishes_host_ports(const json_t *inspect);

#endif
