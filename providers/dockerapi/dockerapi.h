/* A Docker Engine API client, shared by the docker and swarm providers (and
 * by anything else that speaks the Engine API: Podman's compatible API).
 *   client.c     one call on the loop, the line-split /events stream; the one
 *                place where HTTP statuses and the engine's
 *                {"message": ...} bodies become rp_errors
 *   endpoint.c   DOCKER_HOST, as the docker CLI reads it
 *   negotiate.c  which API version to speak: /_ping, /version, a pin
 *   versions.c   what changes from one API version to the next, as a table
 * The providers say what to ask; this module says how, for the version the
 * engine and reaper agreed on. */
#ifndef RP_DOCKERAPI_H
#define RP_DOCKERAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "http_client.h"
#include "provider.h"
#include "registry_auth.h"

/* An API version as a number: 1.52 is 1052.  0 means unknown. */
#define RP_DOCKERAPI_V(major, minor) ((major)*1000 + (minor))
/* The oldest API version reaper speaks (dockerd 20.10), and the newest it
 * is written for: it speaks min(the engine's, this). */
#define RP_DOCKERAPI_OLDEST RP_DOCKERAPI_V(1, 41)
#define RP_DOCKERAPI_NEWEST RP_DOCKERAPI_V(1, 52)

/* What one API version means for the calls reaper makes: one row per
 * version in versions.c, each member citing where it comes from in
 * ENGINE-API-VERSIONS.md.  Code asks the row, never compares versions. */
struct rp_dockerapi_version {
  int number;       /* RP_DOCKERAPI_V(1, 44) */
  const char *name; /* "1.44" */
  /* POST /containers/create takes every network in
   * NetworkingConfig.EndpointsConfig (below: one, 400 "Container cannot be
   * created with multiple network endpoints"; connect the others after). */
  bool create_all_endpoints;
  /* A configured MAC address goes in the endpoint's
   * EndpointSettings.MacAddress; below, in Config.MacAddress (the endpoint's
   * is discarded).  From 1.52 Config.MacAddress is not read at all. */
  bool mac_in_endpoint;
  /* EndpointSettings.GwPriority is taken at create and connect (below,
   * create resets it to 0). */
  bool gw_priority;
  /* Inspect shows the MAC address the user configured for the main network
   * as Config.MacAddress (gone from 1.52: inspect then shows only the
   * address in use, generated or not). */
  bool inspect_configured_mac;
  /* Inspect lists the container's short ID (and, on Engine 25 and newer,
   * its hostname) among a user-defined network's Aliases, though nobody
   * set them. */
  bool inspect_aliases_add_short_id;
};

/* What one engine (rather than one API version) does differently, for the
 * engines that speak the Docker Engine API: one row per engine, in
 * negotiate.c, chosen by the name GET /version gives. */
struct rp_dockerapi_engine {
  const char *name; /* "Docker Engine", "Podman Engine" */
  /* Inspect tells which addresses the user fixed (IPAMConfig,
   * Config.MacAddress).  Podman 4 shows only the addresses in use: whether
   * one was fixed cannot be known, so a recreate keeps them all. */
  bool shows_fixed_addresses;
  /* Create takes a MAC address in EndpointSettings at every API version
   * (Podman), not only from 1.44. */
  bool endpoint_mac_always;
  /* It can be a swarm node, whose task containers the list's is-task
   * filter names (Podman has no swarm, and refuses that filter). */
  bool swarm;
  /* The list without all=1 leaves paused containers out (Podman): the
   * tracker asks for running and paused ones by a status filter, so that a
   * paused container is seen, and left alone with its reason in plan. */
  bool list_hides_paused;
};

/* The row for an API version, or NULL outside [OLDEST, NEWEST]. */
const struct rp_dockerapi_version *rp_dockerapi_version(int number);
/* "1.44" -> 1044.  Returns 0 on success, -1 when s is not MAJOR.MINOR. */
int rp_dockerapi_parse_version(const char *s, int *out);

/* One engine, through one endpoint.  Embedded in a provider's context. */
struct rp_dockerapi {
  struct rp_provider *p;      /* borrowed: its name, loop and HTTP client */
  struct rp_http_endpoint ep; /* owned */
  /* A version the operator pinned (the provider's api_version, else
   * DOCKER_API_VERSION, as the docker CLI honours it): spoken without
   * negotiation.  0 when none. */
  int pinned;
  const char *pinned_by; /* static: "api_version" or "DOCKER_API_VERSION" */
  /* The version spoken: set by negotiation (NULL before, and after a
   * failed one: calls then use the oldest, which any engine in range
   * takes or refuses clearly). */
  const struct rp_dockerapi_version *v;
  char prefix[16]; /* "/v1.52": the path prefix of every versioned call */
  /* What the engine said of itself at the last negotiation (0 or "" when
   * it did not): the versions it accepts and its name and version. */
  int engine_min, engine_max;
  char engine[96]; /* "Docker Engine 29.0.0", "Podman Engine 4.3.1" */
  /* Which engine that is (static; Docker's until /version says else). */
  const struct rp_dockerapi_engine *kind;
};

/* Sets up api for provider p: endpoint (NULL or "" means $DOCKER_HOST, see
 * rp_dockerapi_endpoint_parse) and the pin (pin: the provider's
 * api_version, NULL when unset; then DOCKER_API_VERSION is read).  A pin
 * outside [OLDEST, NEWEST] or not MAJOR.MINOR is RP_ECONFIG.  Free with
 * rp_dockerapi_clear. */
int rp_dockerapi_init(struct rp_dockerapi *api, struct rp_provider *p,
                      const char *endpoint, const char *pin,
                      struct rp_error **err);
void rp_dockerapi_clear(struct rp_dockerapi *api);

/* Whether s is an api_version reaper can speak ("1.41" to "1.52"); why
 * (may be NULL) gets the reason when not. */
bool rp_dockerapi_pin_valid(const char *s, char *why, size_t why_len);

/* The settings of a provider that speaks the Engine API (its ops' options
 * and option_valid): api_version pins the version spoken. */
extern const struct rp_provider_option rp_dockerapi_options[];
bool rp_dockerapi_option_valid(const char *key, const json_t *value, char *why,
                               size_t why_len);

/* The answer to one API call.  status is the HTTP status (0 on a transport
 * failure); body is the parsed JSON (borrowed for the callback; NULL when
 * empty or not JSON); raw is the body text.  err is set on a transport
 * failure and on any status >= 400, with the engine's message and a code:
 * RP_ENOTFOUND for 404, RP_ECONFLICT for 409, RP_EVERSION when the engine
 * refuses the API version ("client version 1.41 is too old..."),
 * RP_EENGINE otherwise. */
struct rp_dockerapi_reply {
  long status;
  json_t *body;
  const char *raw;
  size_t raw_len;
};
typedef void (*rp_dockerapi_cb)(void *arg, const struct rp_dockerapi_reply *r,
                                const struct rp_error *err);

/* Sends METHOD /vX.Y + path (path starts with "/", e.g. "/containers/json")
 * at the negotiated version, with an optional JSON body (borrowed).
 * timeout_ms 0 means the default (30 s).  Returns -1 (cb never runs) when it
 * cannot start. */
int rp_dockerapi_call(struct rp_dockerapi *api, const char *method,
                      const char *path, const json_t *body, int64_t timeout_ms,
                      rp_dockerapi_cb cb, void *arg, struct rp_error **err);

/* The same at a version of the caller's choice (an older one, to read what
 * the negotiated one no longer shows): the caller checks that the engine
 * accepts it (engine_min). */
int rp_dockerapi_call_at(struct rp_dockerapi *api,
                         const struct rp_dockerapi_version *v,
                         const char *method, const char *path,
                         const json_t *body, int64_t timeout_ms,
                         rp_dockerapi_cb cb, void *arg, struct rp_error **err);

/* A call with request headers ("Name: value", NULL-terminated; borrowed
 * until this returns), and an optional JSON body: an image pull's or a
 * service update's X-Registry-Auth. */
int rp_dockerapi_call_headers(struct rp_dockerapi *api, const char *method,
                              const char *path, const json_t *body,
                              const char *const *headers, int64_t timeout_ms,
                              rp_dockerapi_cb cb, void *arg,
                              struct rp_error **err);

/* The value of X-Registry-Auth for a registry's credentials, as the docker
 * CLI sends it: base64url of {"username", "password", "serveraddress"}
 * (owned secret: free it with rp_registry_secret_free). */
char *rp_dockerapi_registry_auth(const struct rp_registry_cred *cred,
                                 const char *domain);

/* A GET whose answer the caller reads in part (src/json_scan.h), rather
 * than parsed whole: as rp_dockerapi_call, but on success r->body is NULL
 * and r->raw the text (an error status is still parsed for its message). */
int rp_dockerapi_get_raw(struct rp_dockerapi *api, const char *path,
                         rp_dockerapi_cb cb, void *arg, struct rp_error **err);

/* A GET without a version prefix (/_ping, /version): served at the
 * engine's newest version and never refused. */
int rp_dockerapi_call_plain(struct rp_dockerapi *api, const char *method,
                            const char *path, int64_t timeout_ms,
                            rp_dockerapi_cb cb, void *arg,
                            struct rp_error **err);

/* GET /vX.Y + path with no timeout (e.g. "/events?filters=..."), whose body
 * is split into lines: on_line gets each line (without "\n" or "\r\n";
 * empty lines skipped; line borrowed for the call), also one final line
 * that had no newline when the stream ends.  A non-zero return from on_line
 * stops the stream.  done_cb runs exactly once: err NULL when the engine
 * ended the stream cleanly; otherwise why (RP_ECANCELED when cancelled or
 * stopped, RP_EPROTO for a line over 1 MiB, the engine's message for a
 * status >= 400, transport errors).  *xfer (may be NULL) cancels it with
 * rp_http_cancel until done_cb has run.  Returns -1 (done_cb never runs)
 * when it cannot start. */
int rp_dockerapi_stream(struct rp_dockerapi *api, const char *path,
                        int (*on_line)(void *arg, const char *line, size_t len),
                        void (*done_cb)(void *arg, const struct rp_error *err),
                        void *arg, struct rp_http_xfer **xfer,
                        struct rp_error **err);

/* GET /vX.Y + path whose answer is a JSON array of objects (a list, e.g.
 * "/containers/json"), read as it comes: on_item gets each element's text
 * (borrowed for the call; only its structure is checked: parse it), with
 * its index, so that a list of any length is never held whole.  A non-zero
 * return from on_item ends the list, with the error it set in *err (or
 * RP_ECANCELED).  done_cb runs exactly once: err NULL when the whole array
 * came; else why: transport errors and statuses >= 400 as for a call,
 * RP_EPROTO "the answer is not a list" (JSON, but no array), "the answer is
 * not JSON" (garbage, or cut short), "item N is not an object", "item N is
 * over 1048576 bytes".  The elements before a failure have been handed
 * over: a caller that needs the whole list drops them.  30 s timeout.
 * Returns -1 (done_cb never runs) when it cannot start. */
int rp_dockerapi_list(struct rp_dockerapi *api, const char *path,
                      int (*on_item)(void *arg, size_t index, const char *item,
                                     size_t len, struct rp_error **err),
                      void (*done_cb)(void *arg, const struct rp_error *err),
                      void *arg, struct rp_error **err);

/* Decides the version to speak, again on every (re)connect (engines are
 * upgraded in place): GET /_ping (unversioned: it is never refused) for the
 * engine's newest version, GET /version for its oldest, its name and
 * version; then the newest both speak, or the pin.  Fails, with one line
 * that names what the engine accepts and what reaper speaks, when they
 * share none (RP_EVERSION), and when the engine does not answer
 * (transport errors) or is not a Docker engine (RP_EPROTO).  A /version
 * that fails is not fatal: the range is then only the ping's.  cb runs
 * exactly once; returns -1 (cb never runs) when it cannot start. */
int rp_dockerapi_negotiate(struct rp_dockerapi *api,
                           void (*cb)(void *arg, const struct rp_error *err),
                           void *arg, struct rp_error **err);

/* The one line that explains a refusal of the version reaper speaks, from
 * what the last negotiation learned: "the engine (Docker Engine 29.0.0)
 * accepts API 1.44 to 1.52; reaper speaks 1.41 (pinned by api_version)".
 * Owned by the caller. */
char *rp_dockerapi_refusal(const struct rp_dockerapi *api);

/* For a provider's describe op: {"engine", "api_version", "api"}, or NULL
 * before any negotiation. */
json_t *rp_dockerapi_describe(const struct rp_dockerapi *api);

/* What to tell the operator of a failed call: err's message, except for a
 * version refusal (RP_EVERSION), which becomes the same one line wherever
 * it was met (so that a retry does not say it again): what the engine
 * accepts, what reaper speaks, and the engine's words.  Owned by the
 * caller. */
char *rp_dockerapi_explain(const struct rp_dockerapi *api,
                           const struct rp_error *err);

/* The id of the container reaper runs in, or NULL (owned).  Read from
 * /proc/self/mountinfo (path given for the tests; NULL: that file): the
 * files the engine bind-mounts into each container of its own, at mount
 * points /etc/hostname, /etc/hosts and /etc/resolv.conf, come from that
 * container's directory (Docker: .../containers/ID/hostname; Podman:
 * .../overlay-containers/ID/userdata/hostname).  Only the entries mounted
 * at those very mount points in reaper's own mount namespace count: a
 * host's table also lists other containers' directories (their shm, say),
 * which must never make reaper take another container for itself.  Works
 * with cgroup v2 and a private cgroup namespace, where /proc/self/cgroup
 * says only "0::/". */
char *rp_dockerapi_self_container_id(const char *mountinfo_path);

/* The line splitting of rp_dockerapi_stream, on its own (client.c): a line
 * ends at "\n"; a "\r" before it is dropped; empty lines are skipped; a
 * line longer than max_line bytes (its "\r" included) is an error.  Chunks
 * may end anywhere, even between "\r" and "\n". */
struct rp_dockerapi_line_splitter {
  size_t max_line;
  struct rp_buf line; /* the start of a line whose end has not come yet */
};
typedef int (*rp_dockerapi_line_cb)(void *arg, const char *line, size_t len);
/* Starts empty; max_line 0 means 1 MiB. */
void rp_dockerapi_line_splitter_init(struct rp_dockerapi_line_splitter *ls,
                                     size_t max_line);
/* Feeds the next n bytes: line_cb gets each line they complete (borrowed
 * for the call).  Returns 0; 1 as soon as line_cb returns non-zero (the
 * rest of data is dropped); -1 when a line is over max_line (nothing after
 * it is delivered).  Do not feed again after 1 or -1. */
int rp_dockerapi_line_splitter_feed(struct rp_dockerapi_line_splitter *ls,
                                    const char *data, size_t n,
                                    rp_dockerapi_line_cb line_cb, void *arg);
/* The stream ended: line_cb gets the last line if it had no newline.
 * Returns 0, or 1 when line_cb returned non-zero. */
int rp_dockerapi_line_splitter_end(struct rp_dockerapi_line_splitter *ls,
                                   rp_dockerapi_line_cb line_cb, void *arg);
/* Frees the buffer; the splitter may be initialized again. */
void rp_dockerapi_line_splitter_clear(struct rp_dockerapi_line_splitter *ls);

/* Parses DOCKER_HOST-style endpoints (unix:///path, tcp://host:port) with
 * TLS from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, as the docker CLI does.
 * NULL or "" means $DOCKER_HOST, and unix:///var/run/docker.sock when that
 * is unset or empty.  tcp:// defaults to port 2375 (2376 with TLS).  On
 * success overwrites *ep (whose old contents are not freed; free with
 * rp_http_endpoint_clear); npipe://, ssh:// and anything else fail with
 * RP_ECONFIG and leave *ep alone. */
int rp_dockerapi_endpoint_parse(const char *endpoint,
                                struct rp_http_endpoint *ep,
                                struct rp_error **err);

#endif
