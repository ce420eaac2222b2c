/* HTTP client on the loop: libcurl's multi interface driven by libuv
 * (uv_poll per socket, one uv_timer), as curl's docs/examples/multi-uv.c.
 * Nothing here blocks.  One rp_http serves every provider. */
#ifndef RP_HTTP_CLIENT_H
#define RP_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"

/* How to reach an engine. */
struct rp_http_endpoint {
  char *base_url;    /* owned: "http://localhost", "https://h:2376" */
  char *unix_socket; /* owned or NULL */
  char *ca_file;     /* owned or NULL (TLS) */
  char *cert_file;   /* owned or NULL (TLS client certificate) */
  char *key_file;    /* owned or NULL */
  bool verify_peer;
  bool http2_prior_knowledge; /* gRPC */
  /* A connection of its own for every transfer, never reused or shared:
   * libcurl 7.88 (Debian 12) fails every HTTP/2 stream after the first on a
   * prior-knowledge connection ("Error in the HTTP2 framing layer"). */
  bool own_connection;
};
void rp_http_endpoint_clear(struct rp_http_endpoint *ep);

struct rp_http_request {
  const char *method;         /* "GET", "POST", "DELETE" */
  const char *path;           /* appended to base_url: "/v1.41/_ping" */
  const char *const *headers; /* NULL-terminated "Name: value", or NULL */
  const void *body;           /* borrowed until the callback */
  size_t body_len;
  int64_t timeout_ms; /* whole transfer; 0 = none (streams) */
  size_t max_body;    /* cap on a buffered body; 0 = 16 MiB */
  /* Streaming: each chunk goes to on_data instead of the buffer; a non-zero
   * return aborts the transfer (the callback then gets RP_ECANCELED). */
  int (*on_data)(void *arg, const char *data, size_t len);
  /* Every header line, trailers included (gRPC status), or NULL. */
  void (*on_header)(void *arg, const char *line, size_t len);
};

struct rp_http_response {
  long status;
  char *body; /* NUL-terminated, owned by the client, valid in the callback */
  size_t body_len;
};

/* Called exactly once per transfer that rp_http_send accepted.  On a
 * transport failure (refused, reset, timeout, body over the cap, cancelled)
 * resp is NULL and err says why; an HTTP error status is not a transport
 * failure.  err is borrowed. */
typedef void (*rp_http_cb)(void *arg, const struct rp_http_response *resp,
                           const struct rp_error *err);

struct rp_http;
struct rp_http_xfer;

int rp_http_new(uv_loop_t *loop, struct rp_http **out, struct rp_error **err);

/* Starts a transfer.  ep and req are copied as needed (the body is
 * borrowed).  *xfer_out (may be NULL) identifies it for rp_http_cancel until
 * its callback has run.  Returns -1 and never calls cb on failure. */
int rp_http_send(struct rp_http *h, const struct rp_http_endpoint *ep,
                 const struct rp_http_request *req, rp_http_cb cb, void *arg,
                 struct rp_http_xfer **xfer_out);

/* Cancels a transfer in flight: its callback runs (with RP_ECANCELED) before
 * this returns. */
void rp_http_cancel(struct rp_http_xfer *x);

/* Number of transfers started since rp_http_new (for the benchmark's
 * requests per workload and for metrics). */
uint64_t rp_http_sent(const struct rp_http *h);

/* Number of transfers in flight. */
size_t rp_http_active(const struct rp_http *h);

/* Cancels everything, closes the handles and frees h once the loop has
 * closed them.  Accepts NULL. */
void rp_http_close(struct rp_http *h);

#endif
