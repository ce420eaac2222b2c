/* A small HTTP/1.1 listener on the loop, for the agent's read-only surface
 * (status.c says what it serves).  One request per connection, no bodies,
 * answered from memory and closed.  It is built to stay available to the
 * operator's probes whatever other clients do:
 *
 *   - headers within header_timeout_ms of the accept (408 otherwise), the
 *     whole connection within timeout_ms (then cut), request line and
 *     headers up to max_header_bytes (431), the target up to 2 KiB (414),
 *     no body (411, 413), bad syntax 400;
 *   - at most max_connections being read or answered at once.  When full,
 *     a new connection takes the place of the one that has waited longest
 *     for its request, if that one has waited evict_after_ms or more (it
 *     gets a 408): a slow client cannot hold a place a quick one needs.
 *     Otherwise the new connection is refused with a 503;
 *   - every answer, a refusal included, is written, the socket shut down
 *     for writing, and what the client still sends is read and dropped
 *     until it closes (at most LINGER): closing a socket with unread bytes
 *     would send a reset, and the client could lose the answer.  Those
 *     closing connections are bounded too (max_connections more);
 *   - a Host header that names neither an IP address, nor localhost, nor
 *     one of the names given (the machine's own host name is added) is
 *     refused with 421: a page on another site that a DNS rebinding
 *     points at the listener can read nothing (browsers always send the
 *     name they resolved);
 *   - writes never block the loop.
 * Every answer has Connection: close, Cache-Control: no-store and
 * X-Content-Type-Options: nosniff. */
#ifndef RP_HTTP_SERVER_H
#define RP_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"

/* Bounds; 0 keeps the default. */
struct rp_http_server_limits {
  uint64_t timeout_ms;        /* per connection, from accept: 10 s */
  uint64_t header_timeout_ms; /* the request, from accept: 5 s */
  size_t max_connections;     /* read or answered at once: 256 */
  size_t max_header_bytes;    /* request line and headers: 8 KiB */
  uint64_t evict_after_ms;    /* a request awaited this long gives way: 1 s */
};

struct rp_http_server_request {
  const char *method; /* "GET", "HEAD", ... */
  bool head;          /* HEAD: the answer's body is not sent */
  const char *path;   /* the target without its query or fragment */
  /* The Authorization header's value when exactly one came (and it fit in
   * 4 KiB), else NULL. */
  const char *authorization;
};

struct rp_http_server_answer {
  int code;
  const char *content_type;  /* static */
  const char *extra_headers; /* static "Name: value\r\n"..., or NULL */
  char *body;                /* owned (malloc) */
  size_t len;
};

/* answer = code, text/plain, the formatted body. */
void rp_http_server_text(struct rp_http_server_answer *a, int code,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills the answer to a request that passed every check above.  Runs on
 * the loop, inside the read callback. */
typedef void (*rp_http_server_handler)(void *ctx,
                                       const struct rp_http_server_request *r,
                                       struct rp_http_server_answer *a);

struct rp_http_server_ops {
  rp_http_server_handler handle;
  /* A connection was refused (503) because the listener was full; may be
   * NULL. */
  void (*refused)(void *ctx);
};

struct rp_http_server;

/* Listens on `listen` ("127.0.0.1:9470", "[::1]:9470", "0.0.0.0:9470",
 * "localhost:9470"; port 0 picks a free one).  names (NULL-terminated, may
 * be NULL) are the host names, besides localhost and the machine's own,
 * that clients may use in Host.  ops and ctx are kept (borrowed) until
 * rp_http_server_close.  Returns 0, or -1 with *err naming the address. */
int rp_http_server_start(uv_loop_t *loop, const char *listen,
                         char *const *names,
                         const struct rp_http_server_ops *ops, void *ctx,
                         struct rp_http_server **out, struct rp_error **err);

/* For connections accepted from now on. */
void rp_http_server_set_limits(struct rp_http_server *s,
                               const struct rp_http_server_limits *l);

/* The port listened on (the kernel's choice for port 0). */
int rp_http_server_port(const struct rp_http_server *s);

/* Whether the listener is on a loopback address only (127.0.0.0/8, ::1,
 * localhost). */
bool rp_http_server_loopback(const struct rp_http_server *s);

/* Whether Host (a header's value) is one the listener answers to: an IP
 * address (v4, or v6 in brackets), localhost, or one of names; with or
 * without a port.  Case does not matter; a final dot neither. */
bool rp_http_server_host_ok(const char *host, char *const *names);

/* Stops listening and closes every connection; the handler and refused
 * callback are not called again, and s frees itself once the loop has run
 * the close callbacks.  Accepts NULL. */
void rp_http_server_close(struct rp_http_server *s);

#endif
