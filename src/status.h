/* The HTTP status surface (agent.listen): health, readiness, Prometheus
 * metrics, the state as JSON and a page for people, served from the agent's
 * loop.  Read-only: no endpoint changes anything.
 *
 *   GET /healthz   200 "ok" when every provider is up and the audit log is
 *                  writable, else 503 with the reasons, one a line
 *   GET /readyz    200 once every provider listed its workloads and crash
 *                  recovery is done, else 503
 *   GET /metrics   Prometheus text format 0.0.4 (metrics.h)
 *   GET /status    JSON: {version, hostname, now, ready, workloads,
 *                  in_flight, recent, providers, audit, forecast}
 *                  (forecast: rp_plan_forecast_json)
 *   GET /          the same for people: HTML and inline CSS, no script
 * HEAD as GET without the body; other methods 405; other paths 404.  With a
 * token file every path but /healthz needs `Authorization: Bearer TOKEN`
 * (401 otherwise).  Workloads are shown as plan --json shows them
 * (rp_plan_entry_json): never their environment or inspect output.
 *
 * The listener itself, and how it stays available to the operator's probes
 * whatever other clients do (deadlines, a slow client giving way to a new
 * one, 503 when full, Host checked against DNS rebinding), is
 * http_server.h's; the token is bearer.h's. */
#ifndef RP_STATUS_H
#define RP_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

#include "audit.h"
#include "config.h"
#include "error.h"
#include "http_server.h"
#include "tracker.h"

/* What the status surface shows, filled by the agent.  Pointers borrowed:
 * they must stay valid until rp_status_close.  Callbacks run on the loop,
 * once per request that needs them; any of them may be NULL. */
struct rp_status_source {
  void *ctx;
  /* Every tracked workload: /status, the page and the gauges. */
  struct rp_tracker *tracker;
  /* The audit log, or NULL. */
  struct rp_audit *audit;
  /* Every provider, new reference: an array of objects
   * {name, type, up (bool), reason (string, when down)}; more members are
   * shown as they are in /status.  NULL callback: no provider. */
  json_t *(*providers)(void *ctx);
  /* Whether every provider listed once and crash recovery is done.  NULL
   * callback: always ready. */
  bool (*ready)(void *ctx);
  /* Requests sent to engine APIs so far (rp_http_sent). */
  uint64_t (*api_requests)(void *ctx);
  /* The live configuration (borrowed for the call), for the forecast's row
   * of every policy.  NULL callback: the tracked workloads' policies. */
  const struct rp_config *(*config)(void *ctx);
  /* Notifications by sink, new reference (rp_notify_stats).  NULL
   * callback: no notification series. */
  json_t *(*notifications)(void *ctx);
  /* Fresh content's figures, new reference (rp_content_stats).  NULL
   * callback: no such series. */
  json_t *(*content)(void *ctx);
};

struct rp_status;

/* Starts listening on `listen` ("127.0.0.1:9470", "[::1]:9470",
 * "0.0.0.0:9470", "localhost:9470"; port 0 picks a free port: see
 * rp_status_port).  names (may be NULL): host names clients may use in
 * Host besides addresses, localhost and the machine's name
 * (agent.listen_names).  token_file (may be NULL) holds the bearer token
 * (bearer.h).  A listener beyond loopback without a token is warned about.
 * src is copied.  Returns 0, or -1 with *err naming the address or file
 * and the cause. */
int rp_status_start(uv_loop_t *loop, const char *listen, char *const *names,
                    const char *token_file, const struct rp_status_source *src,
                    struct rp_status **out, struct rp_error **err);

/* Changes the bounds for connections accepted from now on. */
void rp_status_set_limits(struct rp_status *s,
                          const struct rp_http_server_limits *l);

/* The port listened on (the kernel's choice for port 0). */
int rp_status_port(const struct rp_status *s);

/* Feeds one recycle.* audit line (event and its fields, borrowed, as given
 * to rp_audit_append) to the metrics and to the list of recent recycles:
 * recycle.begin (lateness, and when an in-flight recycle began),
 * recycle.done, recycle.failed, recycle.planned, recycle.recovered.  Other
 * events are ignored.  Only the members that the audit log's recycle lines
 * share with plan are kept: drain output and other details are not shown.
 * Accepts a NULL s (the listener is off). */
void rp_status_record(struct rp_status *s, const char *event, json_t *fields);

/* The /status document, new reference. */
json_t *rp_status_json(struct rp_status *s);

/* Stops listening and frees s; the listener closes its connections and
 * frees itself once the loop has run their close callbacks.  s must not be
 * used after this call.  Accepts NULL. */
void rp_status_close(struct rp_status *s);

/* The page at /, from a /status document (page.c).  Every string from it is
 * escaped; the page loads nothing else and runs no script. */
void rp_page_write(FILE *out, json_t *status, int64_t now_ms);

#endif
