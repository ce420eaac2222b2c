/* The listener (http_server.h): uv_tcp, one request per connection, parsed
 * with http_parser, answered by the handler and closed.
 *
 * A connection lives from its accept to the close callbacks of its two
 * handles (the socket and its timer).  It is in one of two lists:
 *
 *   active   reading its request, or writing its answer: what
 *            max_connections bounds.  Oldest first, so that the one that
 *            has waited longest for its request is found first when a new
 *            connection needs its place.
 *   closing  answered (or refused): shut down for writing, reading and
 *            dropping until the client closes or the linger runs out.
 *            Bounded by max_connections too; past that, closed at once.
 *
 * The timer does all the waiting: the header deadline while reading, the
 * connection's deadline while writing, the linger while closing. */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <http_parser.h>

#include "log.h"
#include "strv.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_HEADER_TIMEOUT_MS 5000
#define DEFAULT_MAX_CONNECTIONS 256
#define DEFAULT_MAX_HEADER_BYTES 8192
#define DEFAULT_EVICT_AFTER_MS 1000
/* After the answer, how long a client may take to close its end. */
#define LINGER_MS 2000
#define URL_MAX 2048
#define AUTH_MAX 4160
#define HOST_MAX 300

enum state { S_READING, S_WRITING, S_CLOSING };

struct conn;

struct list {
  struct conn *head, *tail;
  size_t n;
};

struct rp_http_server {
  uv_loop_t *loop; /* borrowed */
  uv_tcp_t tcp;
  struct rp_http_server_ops ops;
  void *ctx; /* borrowed */
  struct rp_http_server_limits limits;
  char **names; /* owned strv: host names clients may use, beyond
                   localhost */
  int port;
  bool loopback;
  struct list active, closing; /* owned connections */
  size_t open_handles;         /* ours not yet closed: freed at 0 */
  bool stopped;                /* rp_http_server_close was called */
};

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  struct rp_http_server *s; /* borrowed */
  struct conn *prev, *next; /* in s->active or s->closing */
  struct list *in;          /* which of them */
  enum state state;
  int64_t accepted_ms;
  int open_handles;
  bool closed; /* uv_close called */
  http_parser parser;
  char rbuf[4096];
  size_t header_bytes;
  char url[URL_MAX + 1];
  size_t url_len;
  bool url_overflow;
  char field[16]; /* the header name being read; only short ones matter */
  size_t field_len;
  bool in_value;
  enum { F_OTHER, F_AUTH, F_HOST } field_is;
  char auth[AUTH_MAX + 1];
  size_t auth_len;
  bool auth_overflow;
  int n_auth;
  char host[HOST_MAX + 1];
  size_t host_len;
  bool host_overflow;
  int n_host;
  bool headers_done;
  bool peer_done; /* the client closed its end while we wrote */
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  char *response; /* owned while it is written */
};

static void answer_error(struct conn *c, int code, const char *text);

/* --- lists ---------------------------------------------------------------- */

static void
list_remove(struct conn *c)
{
  struct list *l = c->in;
  if (!l)
    return;
  if (c->prev)
    c->prev->next = c->next;
  else
    l->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    l->tail = c->prev;
  l->n--;
  c->prev = c->next = NULL;
  c->in = NULL;
}

static void
list_append(struct list *l, struct conn *c)
{
  c->prev = l->tail;
  c->next = NULL;
  if (l->tail)
    l->tail->next = c;
  else
    l->head = c;
  l->tail = c;
  l->n++;
  c->in = l;
}

/* --- the end of a connection and of the server ----------------------------
 */

static void
server_release(struct rp_http_server *s)
{
  if (--s->open_handles > 0 || !s->stopped)
    return;
  rp_strv_free(s->names);
  free(s);
}

static void
conn_handle_closed_cb(uv_handle_t *h)
{
  struct conn *c = h->data;
  if (--c->open_handles > 0)
    return;
  struct rp_http_server *s = c->s;
  list_remove(c);
  free(c->response);
  free(c);
  server_release(s);
}

static void
conn_close(struct conn *c)
{
  if (c->closed)
    return;
  c->closed = true;
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
}

/* --- writing an answer, then lingering ------------------------------------
 */

static void
timeout_cb(uv_timer_t *t)
{
  struct conn *c = t->data;
  if (c->state == S_READING) {
    /* The header deadline (or the connection's, if sooner). */
    answer_error(c, 408, "request not received in time");
    return;
  }
  conn_close(c);
}

static void
shutdown_cb(uv_shutdown_t *req, int status)
{
  struct conn *c = req->data;
  if (status < 0 || c->closed || c->peer_done) {
    conn_close(c);
    return;
  }
  /* Linger, reading, until the client closes; never past the deadline. */
  uint64_t left = uv_timer_get_due_in(&c->timer);
  if (left > LINGER_MS || left == 0)
    uv_timer_start(&c->timer, timeout_cb, LINGER_MS, 0);
}

static void
write_cb(uv_write_t *req, int status)
{
  struct conn *c = req->data;
  free(c->response);
  c->response = NULL;
  if (status < 0 || c->closed) {
    conn_close(c);
    return;
  }
  struct rp_http_server *s = c->s;
  c->state = S_CLOSING;
  if (c->in != &s->closing) {
    /* Its place among those being served is free now. */
    list_remove(c);
    if (s->closing.n >= s->limits.max_connections) {
      conn_close(c);
      return;
    }
    list_append(&s->closing, c);
  }
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0)
    conn_close(c);
}

static const char *
reason_phrase(int code)
{
  switch (code) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 411:
    return "Length Required";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 421:
    return "Misdirected Request";
  case 431:
    return "Request Header Fields Too Large";
  case 503:
    return "Service Unavailable";
  default:
    return "Error";
  }
}

static void
send_answer(struct conn *c, struct rp_http_server_answer *a, bool head)
{
  cleanup_free char *body = a->body;
  a->body = NULL;
  if (c->closed)
    return;
  /* Reading goes on (read_cb drops what comes): the client's end of the
   * connection is noticed, and nothing is left unread at the close. */
  c->state = S_WRITING;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f)
    abort();
  fprintf(f,
          "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
          "Connection: close\r\nCache-Control: no-store\r\n"
          "X-Content-Type-Options: nosniff\r\n%s\r\n",
          a->code, reason_phrase(a->code),
          a->content_type ? a->content_type : "text/plain; charset=utf-8",
          a->len, a->extra_headers ? a->extra_headers : "");
  if (!head && a->len)
    fwrite(body, 1, a->len, f);
  if (fclose(f) != 0)
    abort();
  c->response = buf;
  c->write_req.data = c;
  /* From here on, only the connection's own deadline. */
  uint64_t spent = (uint64_t)(rp_mono_ms() - c->accepted_ms);
  uint64_t left =
      spent < c->s->limits.timeout_ms ? c->s->limits.timeout_ms - spent : 1;
  uv_timer_start(&c->timer, timeout_cb, left, 0);
  uv_buf_t b = uv_buf_init(buf, (unsigned)len);
  if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0)
    conn_close(c);
}

void
rp_http_server_text(struct rp_http_server_answer *a, int code, const char *fmt,
                    ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&a->body, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  a->len = (size_t)n;
  a->code = code;
  a->content_type = "text/plain; charset=utf-8";
}

static void
answer_error(struct conn *c, int code, const char *text)
{
  struct rp_http_server_answer a = {0};
  rp_http_server_text(&a, code, "%s\n", text);
  send_answer(c, &a, false);
}

/* --- the Host header ------------------------------------------------------
 */

bool
rp_http_server_host_ok(const char *host, char *const *names)
{
  char h[HOST_MAX + 1];
  size_t len = strlen(host);
  if (len == 0 || len > HOST_MAX)
    return false;
  memcpy(h, host, len + 1);
  /* [v6]:port or [v6]; name:port or name; a.b.c.d:port. */
  if (h[0] == '[') {
    char *end = strchr(h, ']');
    if (!end || (end[1] && end[1] != ':'))
      return false;
    *end = '\0';
    struct in6_addr a6;
    return inet_pton(AF_INET6, h + 1, &a6) == 1;
  }
  char *colon = strchr(h, ':');
  if (colon) {
    if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
      return false;
    *colon = '\0';
  }
  len = strlen(h);
  if (len && h[len - 1] == '.')
    h[--len] = '\0';
  struct in_addr a4;
  if (inet_pton(AF_INET, h, &a4) == 1)
    return true;
  if (strcasecmp(h, "localhost") == 0)
    return true;
  for (char *const *n = names; n && *n; n++)
    if (strcasecmp(h, *n) == 0)
      return true;
  return false;
}

/* --- reading a request ----------------------------------------------------
 */

static int
on_url_cb(http_parser *p, const char *at, size_t len)
{
  struct conn *c = p->data;
  if (c->url_len + len > URL_MAX) {
    c->url_overflow = true;
    return 0;
  }
  memcpy(c->url + c->url_len, at, len);
  c->url_len += len;
  c->url[c->url_len] = '\0';
  return 0;
}

static int
on_header_field_cb(http_parser *p, const char *at, size_t len)
{
  struct conn *c = p->data;
  if (c->in_value) {
    c->in_value = false;
    c->field_len = 0;
  }
  for (size_t i = 0; i < len; i++) {
    if (c->field_len < sizeof(c->field) - 1)
      c->field[c->field_len] = at[i];
    c->field_len++;
  }
  if (c->field_len < sizeof(c->field))
    c->field[c->field_len] = '\0';
  return 0;
}

/* Appends to a bounded value; *overflow once it would not fit. */
static void
append(char *buf, size_t *len, size_t max, bool *overflow, const char *at,
       size_t n)
{
  if (*len + n > max) {
    *overflow = true;
    return;
  }
  memcpy(buf + *len, at, n);
  *len += n;
  buf[*len] = '\0';
}

static int
on_header_value_cb(http_parser *p, const char *at, size_t len)
{
  struct conn *c = p->data;
  if (!c->in_value) {
    c->in_value = true;
    bool known = c->field_len < sizeof(c->field);
    c->field_is = known && strcasecmp(c->field, "authorization") == 0 ? F_AUTH
                  : known && strcasecmp(c->field, "host") == 0        ? F_HOST
                                                                      : F_OTHER;
    if (c->field_is == F_AUTH)
      c->n_auth++;
    if (c->field_is == F_HOST)
      c->n_host++;
  }
  if (c->field_is == F_AUTH && c->n_auth == 1)
    append(c->auth, &c->auth_len, AUTH_MAX, &c->auth_overflow, at, len);
  else if (c->field_is == F_HOST && c->n_host == 1)
    append(c->host, &c->host_len, HOST_MAX, &c->host_overflow, at, len);
  return 0;
}

static int
on_headers_complete_cb(http_parser *p)
{
  struct conn *c = p->data;
  c->headers_done = true;
  /* Nothing after the headers is read: the answer comes now. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url_cb,
    .on_header_field = on_header_field_cb,
    .on_header_value = on_header_value_cb,
    .on_headers_complete = on_headers_complete_cb,
};

/* The checks every request passes, then the handler. */
static void
answer_request(struct conn *c)
{
  struct rp_http_server *s = c->s;
  http_parser *p = &c->parser;
  if (c->url_overflow) {
    answer_error(c, 414, "request target too long");
    return;
  }
  if (c->n_host > 1 || c->host_overflow ||
      (c->n_host == 1 && !rp_http_server_host_ok(c->host, s->names))) {
    /* Not a name this listener goes by: a page that a DNS rebinding
     * pointed here must read nothing. */
    answer_error(c, 421,
                 "this listener does not answer to that Host: use its "
                 "address, localhost, or a name in agent.listen_names");
    return;
  }
  if (p->flags & F_CHUNKED) {
    answer_error(c, 411, "no request body is accepted");
    return;
  }
  if (p->content_length > 0 && p->content_length != ULLONG_MAX) {
    answer_error(c, 413, "no request body is accepted");
    return;
  }
  c->url[strcspn(c->url, "?#")] = '\0';
  enum http_method m = (enum http_method)p->method;
  struct rp_http_server_request r = {
      .method = http_method_str(m),
      .head = m == HTTP_HEAD,
      .path = c->url,
      .authorization =
          c->n_auth == 1 && !c->auth_overflow ? c->auth : (const char *)NULL,
  };
  struct rp_http_server_answer a = {0};
  s->ops.handle(s->ctx, &r, &a);
  send_answer(c, &a, r.head);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)suggested;
  struct conn *c = h->data;
  *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void
read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
  struct conn *c = stream->data;
  if (nread == UV_EOF && c->state == S_WRITING) {
    /* A client may end its side once it has asked: the answer still goes
     * out, then the connection closes. */
    c->peer_done = true;
    uv_read_stop(stream);
    return;
  }
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0 || c->state != S_READING || c->closed)
    return; /* closing: what comes after the request is dropped */
  size_t max = c->s->limits.max_header_bytes;
  size_t n = (size_t)nread;
  if (n > max - c->header_bytes)
    n = max - c->header_bytes;
  http_parser_execute(&c->parser, &parser_settings, buf->base, n);
  c->header_bytes += n;
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (c->headers_done)
    answer_request(c);
  else if (e != HPE_OK)
    answer_error(c, 400, http_errno_description(e));
  else if (c->header_bytes >= max)
    answer_error(c, 431, "request headers too large");
}

/* --- accepting ------------------------------------------------------------
 */

static struct conn *
conn_new(struct rp_http_server *s)
{
  struct conn *c = rp_xcalloc(1, sizeof(*c));
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  s->open_handles++;
  c->accepted_ms = rp_mono_ms();
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  return c;
}

/* The oldest connection still without its request, if it has waited long
 * enough to be called slow. */
static struct conn *
slowest(struct rp_http_server *s)
{
  int64_t now = rp_mono_ms();
  for (struct conn *c = s->active.head; c; c = c->next)
    if (c->state == S_READING)
      return now - c->accepted_ms >= (int64_t)s->limits.evict_after_ms ? c
                                                                       : NULL;
  return NULL;
}

/* No place for c: a 503, then closed as any answered connection is (no
 * reset).  When even the closing connections are at their bound, the
 * answer goes only if the socket takes it at once, and c is closed. */
static void
refuse(struct rp_http_server *s, struct conn *c)
{
  static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 28\r\nConnection: close\r\n"
                             "Cache-Control: no-store\r\n\r\n"
                             "too many connections: retry\n";
  if (s->ops.refused)
    s->ops.refused(s->ctx);
  if (s->closing.n >= s->limits.max_connections) {
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)busy, sizeof(busy) - 1);
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    conn_close(c);
    return;
  }
  list_append(&s->closing, c);
  c->state = S_WRITING;
  c->response = rp_xstrdup(busy);
  c->write_req.data = c;
  uv_timer_start(&c->timer, timeout_cb, LINGER_MS, 0);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  uv_buf_t b = uv_buf_init(c->response, sizeof(busy) - 1);
  if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0)
    conn_close(c);
}

static void
connection_cb(uv_stream_t *server, int status)
{
  struct rp_http_server *s = server->data;
  if (status < 0) {
    rp_warn("status listener: accept: %s", uv_strerror(status));
    return;
  }
  if (s->stopped)
    return;
  struct conn *c = conn_new(s);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  if (s->active.n >= s->limits.max_connections) {
    struct conn *victim = slowest(s);
    if (!victim) {
      refuse(s, c);
      return;
    }
    /* The slowest gives way: it has had its chance. */
    answer_error(victim, 408,
                 "request not received in time (the listener is full)");
    list_remove(victim);
    if (s->closing.n >= s->limits.max_connections)
      conn_close(victim);
    else
      list_append(&s->closing, victim);
  }
  list_append(&s->active, c);
  if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
    conn_close(c);
    return;
  }
  uint64_t t = s->limits.header_timeout_ms < s->limits.timeout_ms
                   ? s->limits.header_timeout_ms
                   : s->limits.timeout_ms;
  uv_timer_start(&c->timer, timeout_cb, t, 0);
}

/* --- start and close ------------------------------------------------------
 */

static int
parse_listen(const char *listen, struct sockaddr_storage *ss, bool *loopback,
             struct rp_error **err)
{
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen)
    return rp_error_set(err, RP_ECONFIG,
                        "listen '%s': expected HOST:PORT, e.g. "
                        "127.0.0.1:9470",
                        listen);
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end || errno || port < 0 || port > 65535)
    return rp_error_set(err, RP_ECONFIG, "listen '%s': bad port '%s'", listen,
                        colon + 1);
  cleanup_free char *host = rp_xstrndup(listen, (size_t)(colon - listen));
  size_t hl = strlen(host);
  int rc;
  if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
    host[hl - 1] = '\0';
    rc = uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss);
    *loopback = rc == 0 &&
                IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ss)->sin6_addr);
  } else if (strcmp(host, "localhost") == 0) {
    rc = uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)ss);
    *loopback = true;
  } else {
    rc = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
    *loopback =
        rc == 0 &&
        (ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
  }
  if (rc != 0)
    return rp_error_set(err, RP_ECONFIG,
                        "listen '%s': the host must be an IPv4 address, an "
                        "IPv6 address in brackets or localhost",
                        listen);
  return 0;
}

static void
server_closed_cb(uv_handle_t *h)
{
  server_release(h->data);
}

void
rp_http_server_set_limits(struct rp_http_server *s,
                          const struct rp_http_server_limits *l)
{
  s->limits.timeout_ms = l->timeout_ms ? l->timeout_ms : DEFAULT_TIMEOUT_MS;
  s->limits.header_timeout_ms =
      l->header_timeout_ms ? l->header_timeout_ms : DEFAULT_HEADER_TIMEOUT_MS;
  s->limits.max_connections =
      l->max_connections ? l->max_connections : DEFAULT_MAX_CONNECTIONS;
  s->limits.max_header_bytes =
      l->max_header_bytes ? l->max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
  s->limits.evict_after_ms =
      l->evict_after_ms ? l->evict_after_ms : DEFAULT_EVICT_AFTER_MS;
}

int
rp_http_server_port(const struct rp_http_server *s)
{
  return s->port;
}

bool
rp_http_server_loopback(const struct rp_http_server *s)
{
  return s->loopback;
}

int
rp_http_server_start(uv_loop_t *loop, const char *listen, char *const *names,
                     const struct rp_http_server_ops *ops, void *ctx,
                     struct rp_http_server **out, struct rp_error **err)
{
  struct sockaddr_storage ss = {0};
  bool loopback = false;
  if (parse_listen(listen, &ss, &loopback, err) != 0)
    return -1;
  struct rp_http_server *s = rp_xcalloc(1, sizeof(*s));
  s->loop = loop;
  s->ops = *ops;
  s->ctx = ctx;
  s->loopback = loopback;
  rp_http_server_set_limits(s, &(struct rp_http_server_limits){0});
  /* The names clients may use: those given and the machine's own. */
  s->names = rp_strv_dup(names);
  char host[256] = "";
  if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
    rp_strv_push(&s->names, host);
  uv_tcp_init(loop, &s->tcp);
  s->tcp.data = s;
  s->open_handles = 1;
  int rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->tcp, 511, connection_cb);
  if (rc != 0) {
    rp_error_set(err, -rc, "listen %s: %s", listen, uv_strerror(rc));
    rp_http_server_close(s);
    return -1;
  }
  struct sockaddr_storage bound;
  int blen = sizeof(bound);
  uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&bound, &blen);
  s->port = ntohs(bound.ss_family == AF_INET6
                      ? ((struct sockaddr_in6 *)&bound)->sin6_port
                      : ((struct sockaddr_in *)&bound)->sin_port);
  *out = s;
  return 0;
}

void
rp_http_server_close(struct rp_http_server *s)
{
  if (!s || s->stopped)
    return;
  s->stopped = true;
  struct list *lists[] = {&s->active, &s->closing};
  for (size_t i = 0; i < RP_ARRAY_LEN(lists); i++)
    for (struct conn *c = lists[i]->head; c; c = c->next)
      conn_close(c);
  uv_close((uv_handle_t *)&s->tcp, server_closed_cb);
}
