/* The HTTP client against a real peer: a tiny HTTP/1.1 server on a unix
 * socket in a temporary directory, served by the same uv loop.  It is a
 * plain HTTP peer with a few routes for transport behaviour (not a fake
 * Docker).  The docker provider's call layer (client.c) is tested over the
 * same peer for what it adds: API prefix, JSON, status -> error mapping,
 * line splitting, version negotiation.
 *
 * With REAPER_TEST_DOCKER_HOST set (e.g. unix:///tmp/rp-engine/docker.sock)
 * one more test pings a real engine and lists its containers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "dockerapi/dockerapi.h"
#include "error.h"
#include "http_client.h"
#include "util.h"

/* ---- the peer ---- */

struct peer;

struct conn {
  uv_pipe_t pipe;
  uv_timer_t timer; /* paces chunked replies */
  struct peer *p;
  struct conn *prev, *next;
  char *req;
  size_t len, cap;
  bool handled;
  bool closing;
  int open_handles;
  int step;
  const char *const *pieces; /* pieces_timer_cb's */
};

struct peer {
  uv_loop_t *loop;
  uv_pipe_t server;
  struct conn *conns;
  int requests;
  char last_path[256];
  const char *api_version; /* /_ping's header; NULL: none */
  /* /version's MinAPIVersion; with it, versioned paths below it get the
   * engine's 400 (Engine 29.0's floor is 1.44); NULL: /version is 404. */
  const char *min_api_version;
};

struct wreq {
  uv_write_t req;
  struct conn *c;
  bool close_after;
  size_t len;
  char data[];
};

static void
conn_handle_closed_cb(uv_handle_t *h)
{
  struct conn *c = h->data;
  if (--c->open_handles > 0)
    return;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->p->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c->req);
  free(c);
}

static void
conn_close(struct conn *c)
{
  if (c->closing)
    return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->pipe, conn_handle_closed_cb);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
}

static void
write_done_cb(uv_write_t *req, int status)
{
  struct wreq *w = (struct wreq *)req;
  if ((status < 0 || w->close_after) && !w->c->closing)
    conn_close(w->c);
  free(w);
}

static void
conn_write(struct conn *c, const void *data, size_t len, bool close_after)
{
  if (c->closing)
    return;
  struct wreq *w = rp_xmalloc(sizeof(*w) + len);
  w->c = c;
  w->close_after = close_after;
  w->len = len;
  memcpy(w->data, data, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, write_done_cb) != 0) {
    free(w);
    conn_close(c);
  }
}

static void conn_printf(struct conn *c, bool close_after, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conn_printf(struct conn *c, bool close_after, const char *fmt, ...)
{
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  assert_true(n >= 0);
  conn_write(c, s, (size_t)n, close_after);
  free(s);
}

static void
reply(struct conn *c, int status, const char *reason, const char *ctype,
      const char *body, size_t len)
{
  conn_printf(c, false,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n",
              status, reason, ctype, len);
  conn_write(c, body, len, true);
}

/* Written one per 20 ms, so that curl reads them apart: lines are split
 * inside JSON, at "\r\n", and the last one has no newline. */
static const char *const chunk_pieces[] = {
    "{\"a\":", "1}\n{\"b\"", ":2}\r\n{\"c\"", ":3}\n", "{\"d\":4}", NULL};
static const char chunk_all[] = "{\"a\":1}\n{\"b\":2}\r\n{\"c\":3}\n{\"d\":4}";

/* A list, in pieces cut inside strings, escapes and objects. */
static const char *const list_pieces[] = {
    " [{\"Id\": \"a\", \"L\": {\"x\": \"}]\\", "\"\"}}, {\"Id\"", ": \"b\"}",
    ", {\"Id\": \"c\", \"N\": [1, {}]}]\n", NULL};
/* The same, cut short: the answer ends cleanly before the array does. */
static const char *const cut_pieces[] = {"[{\"Id\": \"a\"}, {\"Id\"", NULL};

static void
pieces_timer_cb(uv_timer_t *t)
{
  struct conn *c = t->data;
  const char *const *pieces = c->pieces;
  const char *piece = pieces[c->step++];
  if (piece) {
    conn_printf(c, false, "%zx\r\n%s\r\n", strlen(piece), piece);
    return;
  }
  uv_timer_stop(t);
  conn_printf(c, true, "0\r\n\r\n");
}

static void
chunk_timer_cb(uv_timer_t *t)
{
  struct conn *c = t->data;
  const char *piece = chunk_pieces[c->step++];
  if (piece) {
    conn_printf(c, false, "%zx\r\n%s\r\n", strlen(piece), piece);
    return;
  }
  uv_timer_stop(t);
  /* A trailer after the body, as gRPC sends its status. */
  conn_printf(c, true, "0\r\nX-Trailer: done\r\n\r\n");
}

static void
route(struct conn *c, const char *method, const char *path, const char *headers,
      const char *body, size_t body_len)
{
  struct peer *peer = c->p;
  char route_path[256];
  /* The query does not change the route either. */
  snprintf(route_path, sizeof(route_path), "%.*s", (int)strcspn(path, "?"),
           path);
  const char *p = route_path;

  snprintf(peer->last_path, sizeof(peer->last_path), "%s", path);
  peer->requests++;
  /* API prefixes ("/v1.41") do not change the route. */
  if (strncmp(p, "/v", 2) == 0 && p[2] >= '0' && p[2] <= '9') {
    const char *slash = strchr(p + 1, '/');
    int major, minor, fmajor, fminor;
    if (peer->min_api_version && sscanf(p, "/v%d.%d", &major, &minor) == 2 &&
        sscanf(peer->min_api_version, "%d.%d", &fmajor, &fminor) == 2 &&
        (major < fmajor || (major == fmajor && minor < fminor))) {
      char b[256];
      snprintf(b, sizeof(b),
               "{\"message\":\"client version %d.%d is too old. Minimum "
               "supported API version is %s, please upgrade your client to a "
               "newer version\"}",
               major, minor, peer->min_api_version);
      reply(c, 400, "Bad Request", "application/json", b, strlen(b));
      return;
    }
    p = slash ? slash : "/";
  }
  if (strcmp(p, "/ok") == 0) {
    reply(c, 200, "OK", "text/plain", "hello", 5);
  } else if (strcmp(p, "/json404") == 0) {
    static const char b[] = "{\"message\":\"No such container: x\"}\n";
    reply(c, 404, "Not Found", "application/json", b, strlen(b));
  } else if (strcmp(p, "/conflict") == 0) {
    static const char b[] = "{\"message\":\"Conflict. The container name "
                            "\\\"/web\\\" is already in use\"}";
    reply(c, 409, "Conflict", "application/json", b, strlen(b));
  } else if (strcmp(p, "/text500") == 0) {
    reply(c, 500, "Internal Server Error", "text/plain", "boom\n", 5);
  } else if (strcmp(p, "/echo") == 0) {
    const char *ct = strcasestr(headers, "\r\ncontent-type:");
    char ctype[128] = "";
    if (ct) {
      ct += strlen("\r\ncontent-type:");
      while (*ct == ' ')
        ct++;
      size_t n = strcspn(ct, "\r");
      snprintf(ctype, sizeof(ctype), "%.*s", (int)n, ct);
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:s%, s:I}", "method", method,
                          "path", path, "content_type", ctype, "body", body,
                          body_len, "body_len", (json_int_t)body_len);
    char *s = json_dumps(j, JSON_COMPACT);
    reply(c, 200, "OK", "application/json", s, strlen(s));
    free(s);
    json_decref(j);
  } else if (strcmp(p, "/chunked") == 0) {
    conn_printf(c, false,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n\r\n");
    uv_timer_start(&c->timer, chunk_timer_cb, 20, 20);
  } else if (strcmp(p, "/list") == 0 || strcmp(p, "/listcut") == 0) {
    conn_printf(c, false,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
    c->pieces = strcmp(p, "/list") == 0 ? list_pieces : cut_pieces;
    uv_timer_start(&c->timer, pieces_timer_cb, 10, 10);
  } else if (strcmp(p, "/listobj") == 0) {
    reply(c, 200, "OK", "application/json", "{\"items\": []}", 13);
  } else if (strcmp(p, "/listhtml") == 0) {
    reply(c, 200, "OK", "text/html", "<html></html>", 13);
  } else if (strcmp(p, "/listnum") == 0) {
    reply(c, 200, "OK", "application/json", "[{}, 2]", 7);
  } else if (strcmp(p, "/big") == 0) {
    size_t n = 100000;
    char *b = rp_xmalloc(n);
    memset(b, 'x', n);
    reply(c, 200, "OK", "text/plain", b, n);
    free(b);
  } else if (strcmp(p, "/longline") == 0) {
    size_t n = (1u << 20) + 100000;
    char *b = rp_xmalloc(n);
    memset(b, 'x', n);
    conn_printf(c, false,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n",
                n);
    conn_write(c, b, n, false);
    conn_printf(c, true, "\r\n0\r\n\r\n");
    free(b);
  } else if (strcmp(p, "/_ping") == 0) {
    if (peer->api_version)
      conn_printf(c, true,
                  "HTTP/1.1 200 OK\r\nApi-Version: %s\r\nContent-Length: 2\r\n"
                  "Connection: close\r\n\r\nOK",
                  peer->api_version);
    else
      reply(c, 200, "OK", "text/plain", "OK", 2);
  } else if (strcmp(p, "/version") == 0 && peer->min_api_version) {
    char b[256];
    snprintf(b, sizeof(b),
             "{\"Components\":[{\"Name\":\"Engine\",\"Version\":"
             "\"29.0.0\"}],\"Version\":\"29.0.0\",\"ApiVersion\":\"%s\","
             "\"MinAPIVersion\":\"%s\"}",
             peer->api_version ? peer->api_version : "", peer->min_api_version);
    reply(c, 200, "OK", "application/json", b, strlen(b));
  } else if (strcmp(p, "/slow") == 0) {
    /* Never answers: for timeouts and cancellation. */
  } else {
    reply(c, 404, "Not Found", "text/plain", "no route\n", 9);
  }
}

static void
conn_try_request(struct conn *c)
{
  char *end = memmem(c->req, c->len, "\r\n\r\n", 4);
  if (end == NULL)
    return;
  size_t head_len = (size_t)(end - c->req) + 4;
  size_t body_len = 0;
  const char *cl = strcasestr(c->req, "\r\ncontent-length:");
  if (cl && cl < end)
    body_len = strtoul(cl + strlen("\r\ncontent-length:"), NULL, 10);
  if (c->len < head_len + body_len)
    return;
  c->handled = true;

  char method[16] = "", path[256] = "";
  assert_int_equal(sscanf(c->req, "%15s %255s", method, path), 2);
  char *headers = rp_xstrndup(c->req, head_len);
  route(c, method, path, headers, c->req + head_len, body_len);
  free(headers);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  buf->base = rp_xmalloc(65536);
  buf->len = 65536;
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct conn *c = s->data;
  if (n < 0) {
    conn_close(c);
  } else if (n > 0 && !c->handled) {
    if (c->len + (size_t)n + 1 > c->cap) {
      c->cap = (c->len + (size_t)n + 1) * 2;
      c->req = rp_xrealloc(c->req, c->cap);
    }
    memcpy(c->req + c->len, buf->base, (size_t)n);
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    conn_try_request(c);
  }
  free(buf->base);
}

static void
accept_cb(uv_stream_t *server, int status)
{
  struct peer *p = server->data;
  if (status < 0)
    return;
  struct conn *c = rp_xcalloc(1, sizeof(*c));
  c->p = p;
  uv_pipe_init(p->loop, &c->pipe, 0);
  uv_timer_init(p->loop, &c->timer);
  c->pipe.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  c->next = p->conns;
  if (p->conns)
    p->conns->prev = c;
  p->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
    conn_close(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

static void
peer_start(struct peer *p, uv_loop_t *loop, const char *path)
{
  p->loop = loop;
  assert_int_equal(uv_pipe_init(loop, &p->server, 0), 0);
  p->server.data = p;
  assert_int_equal(uv_pipe_bind(&p->server, path), 0);
  /* Room for the 200 concurrent connections of one test. */
  assert_int_equal(uv_listen((uv_stream_t *)&p->server, 512, accept_cb), 0);
}

static void
peer_close(struct peer *p)
{
  uv_close((uv_handle_t *)&p->server, NULL);
  for (struct conn *c = p->conns; c; c = c->next)
    conn_close(c);
}

/* ---- fixture ---- */

struct fx {
  uv_loop_t loop;
  uv_timer_t guard; /* wakes run_until so that it can give up */
  uv_timer_t action;
  void (*action_fn)(struct fx *f);
  char dir[64];
  char sock[128];
  char base[32];
  struct peer peer;
  struct rp_http *h;
  struct rp_http_endpoint ep; /* borrowed strings: dir and sock */
  /* for docker tests */
  struct rp_provider prov;
  struct rp_dockerapi d;
};

static void
noop_cb(uv_timer_t *t)
{
}

static int
setup(void **state)
{
  struct fx *f = rp_xcalloc(1, sizeof(*f));
  struct rp_error *err = NULL;

  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->guard);
  uv_timer_init(&f->loop, &f->action);
  f->action.data = f;
  snprintf(f->dir, sizeof(f->dir), "/tmp/rp-http-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->sock, sizeof(f->sock), "%s/peer.sock", f->dir);
  peer_start(&f->peer, &f->loop, f->sock);
  assert_int_equal(rp_http_new(&f->loop, &f->h, &err), 0);
  snprintf(f->base, sizeof(f->base), "http://localhost");
  f->ep.base_url = f->base;
  f->ep.unix_socket = f->sock;

  f->prov.http = f->h;
  f->prov.loop = &f->loop;
  f->d.p = &f->prov;
  f->d.ep.base_url = rp_xstrdup("http://localhost");
  f->d.ep.unix_socket = rp_xstrdup(f->sock);
  *state = f;
  return 0;
}

/* Every test ends here: everything closed, the loop closes clean. */
static int
teardown(void **state)
{
  struct fx *f = *state;
  rp_http_close(f->h);
  peer_close(&f->peer);
  uv_close((uv_handle_t *)&f->guard, NULL);
  uv_close((uv_handle_t *)&f->action, NULL);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  rp_http_endpoint_clear(&f->d.ep);
  unlink(f->sock);
  char dead[160];
  snprintf(dead, sizeof(dead), "%s/dead.sock", f->dir);
  unlink(dead);
  rmdir(f->dir);
  free(f);
  return 0;
}

static void
run_until(struct fx *f, const int *count, int target)
{
  uint64_t deadline = uv_now(&f->loop) + 10000;
  uv_timer_start(&f->guard, noop_cb, 50, 50);
  while (*count < target && uv_now(&f->loop) < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->guard);
  assert_int_equal(*count, target);
}

static void
action_cb(uv_timer_t *t)
{
  struct fx *f = t->data;
  f->action_fn(f);
}

static void
after(struct fx *f, uint64_t ms, void (*fn)(struct fx *f))
{
  f->action_fn = fn;
  uv_timer_start(&f->action, action_cb, ms, 0);
}

/* ---- results ---- */

struct result {
  int calls;
  long status;
  char *body;
  size_t body_len;
  int code;
  char *message;
  /* streaming */
  char *data;
  size_t data_len;
  int data_calls;
  char headers[1024];
  bool trailer_after_data;
};

static void
result_clear(struct result *r)
{
  free(r->body);
  free(r->message);
  free(r->data);
  *r = (struct result){0};
}

static void
result_cb(void *arg, const struct rp_http_response *resp,
          const struct rp_error *err)
{
  struct result *r = arg;
  r->calls++;
  if (resp) {
    r->status = resp->status;
    assert_non_null(resp->body);
    assert_int_equal(resp->body[resp->body_len], '\0');
    r->body = rp_xstrndup(resp->body, resp->body_len);
    r->body_len = resp->body_len;
  }
  if (err) {
    assert_null(resp);
    r->code = err->code;
    r->message = rp_xstrdup(err->message);
  }
}

static int
data_cb(void *arg, const char *data, size_t len)
{
  struct result *r = arg;
  r->data = rp_xrealloc(r->data, r->data_len + len + 1);
  memcpy(r->data + r->data_len, data, len);
  r->data_len += len;
  r->data[r->data_len] = '\0';
  r->data_calls++;
  return 0;
}

static void
header_line_cb(void *arg, const char *line, size_t len)
{
  struct result *r = arg;
  size_t used = strlen(r->headers);
  assert_true(len > 0);
  assert_int_not_equal(line[len - 1], '\n');
  if (len >= 9 && strncasecmp(line, "X-Trailer", 9) == 0)
    r->trailer_after_data = r->data_len == strlen(chunk_all);
  snprintf(r->headers + used, sizeof(r->headers) - used, "%.*s|", (int)len,
           line);
}

static struct rp_http_xfer *
get(struct fx *f, const char *path, struct result *r)
{
  struct rp_http_request req = {
      .method = "GET", .path = path, .timeout_ms = 5000};
  struct rp_http_xfer *x = NULL;
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, result_cb, r, &x), 0);
  assert_non_null(x);
  return x;
}

/* ---- transport tests ---- */

static void
test_get_ok(void **state)
{
  struct fx *f = *state;
  struct result r = {0};
  get(f, "/ok", &r);
  assert_int_equal(rp_http_active(f->h), 1);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "hello");
  assert_int_equal(r.body_len, 5);
  assert_null(r.message);
  assert_int_equal(rp_http_active(f->h), 0);
  result_clear(&r);
}

static void
test_404_json_is_not_a_transport_error(void **state)
{
  struct fx *f = *state;
  struct result r = {0};
  get(f, "/json404", &r);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.status, 404);
  assert_null(r.message);
  assert_string_equal(r.body, "{\"message\":\"No such container: x\"}\n");
  result_clear(&r);
}

static json_t *
echo_of(const struct result *r)
{
  json_error_t e;
  json_t *j = json_loads(r->body, JSON_ALLOW_NUL, &e);
  if (j == NULL)
    fail_msg("not JSON (%s): %s", e.text, r->body ? r->body : "(null)");
  return j;
}

static void
test_methods_and_binary_body(void **state)
{
  struct fx *f = *state;
  struct result r1 = {0}, r2 = {0}, r3 = {0};
  static const char body[] = {'a', '\0', 'b'};
  const char *const headers[] = {"Content-Type: application/json", NULL};
  struct rp_http_request post = {.method = "POST",
                                 .path = "/echo",
                                 .headers = headers,
                                 .body = body,
                                 .body_len = sizeof(body),
                                 .timeout_ms = 5000};
  struct rp_http_request empty_post = {
      .method = "POST", .path = "/echo", .timeout_ms = 5000};
  struct rp_http_request del = {
      .method = "DELETE", .path = "/echo?force=1", .timeout_ms = 5000};

  assert_int_equal(rp_http_send(f->h, &f->ep, &post, result_cb, &r1, NULL), 0);
  assert_int_equal(
      rp_http_send(f->h, &f->ep, &empty_post, result_cb, &r2, NULL), 0);
  assert_int_equal(rp_http_send(f->h, &f->ep, &del, result_cb, &r3, NULL), 0);
  run_until(f, &r3.calls, 1);
  run_until(f, &r2.calls, 1);
  run_until(f, &r1.calls, 1);

  json_t *j = echo_of(&r1);
  assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
  assert_string_equal(json_string_value(json_object_get(j, "content_type")),
                      "application/json");
  assert_int_equal(json_integer_value(json_object_get(j, "body_len")), 3);
  assert_int_equal(json_string_length(json_object_get(j, "body")), 3);
  assert_memory_equal(json_string_value(json_object_get(j, "body")), body, 3);
  json_decref(j);

  /* A bodyless POST is not labelled as a form: engines reject that. */
  j = echo_of(&r2);
  assert_string_equal(json_string_value(json_object_get(j, "content_type")),
                      "");
  assert_int_equal(json_integer_value(json_object_get(j, "body_len")), 0);
  json_decref(j);

  j = echo_of(&r3);
  assert_string_equal(json_string_value(json_object_get(j, "method")),
                      "DELETE");
  assert_string_equal(json_string_value(json_object_get(j, "path")),
                      "/echo?force=1");
  json_decref(j);
  result_clear(&r1);
  result_clear(&r2);
  result_clear(&r3);
}

static void
test_chunked_streams_to_on_data_with_trailers(void **state)
{
  struct fx *f = *state;
  struct result r = {0};
  struct rp_http_request req = {.method = "GET",
                                .path = "/chunked",
                                .timeout_ms = 0,
                                .on_data = data_cb,
                                .on_header = header_line_cb};
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, result_cb, &r, NULL), 0);
  run_until(f, &r.calls, 1);
  assert_null(r.message);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.data, chunk_all);
  /* Paced pieces arrive apart: this really streamed. */
  assert_true(r.data_calls >= 4);
  assert_int_equal(r.body_len, 0);
  assert_non_null(strstr(r.headers, "HTTP/1.1 200 OK|"));
  assert_non_null(strstr(r.headers, "|X-Trailer: done|"));
  assert_true(r.trailer_after_data);
  result_clear(&r);
}

static void
test_body_over_cap_is_an_error(void **state)
{
  struct fx *f = *state;
  struct result r = {0};
  struct rp_http_request req = {
      .method = "GET", .path = "/big", .timeout_ms = 5000, .max_body = 1000};
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, result_cb, &r, NULL), 0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, EMSGSIZE);
  assert_string_equal(r.message, "GET /big: response body over 1000 bytes");
  assert_null(r.body);
  result_clear(&r);

  /* Exactly at the cap is fine. */
  req.max_body = 100000;
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, result_cb, &r, NULL), 0);
  run_until(f, &r.calls, 1);
  assert_null(r.message);
  assert_int_equal(r.body_len, 100000);
  result_clear(&r);
}

static void
test_timeout(void **state)
{
  struct fx *f = *state;
  struct result r = {0};
  struct rp_http_request req = {
      .method = "GET", .path = "/slow", .timeout_ms = 200};
  uint64_t t0 = uv_now(&f->loop);
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, result_cb, &r, NULL), 0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_ETIMEOUT);
  assert_non_null(strstr(r.message, "GET /slow: "));
  assert_true(uv_now(&f->loop) - t0 >= 190);
  assert_true(uv_now(&f->loop) - t0 < 3000);
  result_clear(&r);
}

static void
test_connect_errors_name_the_socket(void **state)
{
  struct fx *f = *state;
  struct result r = {0};
  char nope[160], dead[160];
  snprintf(nope, sizeof(nope), "%s/nope.sock", f->dir);
  snprintf(dead, sizeof(dead), "%s/dead.sock", f->dir);

  struct rp_http_endpoint ep = {.base_url = f->ep.base_url,
                                .unix_socket = nope};
  struct rp_http_request req = {
      .method = "GET", .path = "/v1.41/_ping", .timeout_ms = 5000};
  assert_int_equal(rp_http_send(f->h, &ep, &req, result_cb, &r, NULL), 0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, ENOENT);
  char want[400];
  snprintf(want, sizeof(want),
           "GET /v1.41/_ping: Couldn't connect to server: connect to %s: "
           "No such file or directory",
           nope);
  assert_string_equal(r.message, want);
  result_clear(&r);

  /* A socket file nobody listens on. */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  assert_true(strlen(dead) < sizeof(sa.sun_path));
  memcpy(sa.sun_path, dead, strlen(dead) + 1);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  close(fd);
  ep.unix_socket = dead;
  assert_int_equal(rp_http_send(f->h, &ep, &req, result_cb, &r, NULL), 0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, ECONNREFUSED);
  assert_non_null(strstr(r.message, dead));
  assert_non_null(strstr(r.message, "Connection refused"));
  result_clear(&r);
}

static struct rp_http_xfer *cancel_target;
static struct result *cancel_result;
static int calls_at_cancel_return;

static void
cancel_now(struct fx *f)
{
  rp_http_cancel(cancel_target);
  /* The callback ran before rp_http_cancel returned. */
  calls_at_cancel_return = cancel_result->calls;
}

static void
test_cancel_in_flight(void **state)
{
  struct fx *f = *state;
  struct result r = {0};
  cancel_target = get(f, "/slow", &r);
  cancel_result = &r;
  calls_at_cancel_return = -1;
  after(f, 50, cancel_now);
  run_until(f, &r.calls, 1);
  assert_int_equal(calls_at_cancel_return, 1);
  assert_int_equal(r.code, RP_ECANCELED);
  assert_string_equal(r.message, "GET /slow: cancelled");
  assert_int_equal(rp_http_active(f->h), 0);
  /* The peer saw the request: it was really in flight. */
  assert_int_equal(f->peer.requests, 1);
  result_clear(&r);
}

/* The sockets a transfer opens are close-on-exec while it is in flight
 * (libcurl makes them without SOCK_CLOEXEC unless told): a program that
 * reaper or a library execs never inherits a connection to an engine.
 * (curl's multi handle keeps a socket pair of its own, made without
 * SOCK_CLOEXEC and out of reach of any option: src/child.c closes every
 * descriptor in a child, which is what makes that one harmless too.) */
static void
list_sockets(bool seen[1024], bool cloexec[1024])
{
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    int fd = atoi(e->d_name);
    char path[64], target[128];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = e->d_name[0] == '.' || fd == dirfd(d) || fd >= 1024
                    ? -1
                    : readlink(path, target, sizeof(target) - 1);
    if (n < 0)
      continue;
    target[n] = '\0';
    if (strncmp(target, "socket:", 7) != 0)
      continue;
    seen[fd] = true;
    cloexec[fd] = fcntl(fd, F_GETFD) & FD_CLOEXEC;
  }
  closedir(d);
}

static bool before_seen[1024], before_cloexec[1024];
static int new_sockets = -1, new_without_cloexec = -1;

static void
count_sockets_now(struct fx *f)
{
  (void)f;
  bool seen[1024] = {0}, cloexec[1024] = {0};
  list_sockets(seen, cloexec);
  new_sockets = new_without_cloexec = 0;
  for (int fd = 0; fd < 1024; fd++)
    if (seen[fd] && !before_seen[fd]) {
      new_sockets++;
      new_without_cloexec += !cloexec[fd];
    }
  rp_http_cancel(cancel_target);
}

static void
test_sockets_are_close_on_exec(void **state)
{
  struct fx *f = *state;
  memset(before_seen, 0, sizeof(before_seen));
  list_sockets(before_seen, before_cloexec);
  struct result r = {0};
  cancel_target = get(f, "/slow", &r);
  after(f, 100, count_sockets_now);
  run_until(f, &r.calls, 1);
  /* The client's socket and the one the peer accepted. */
  assert_int_equal(f->peer.requests, 1);
  assert_true(new_sockets >= 2);
  assert_int_equal(new_without_cloexec, 0);
  result_clear(&r);
}

#define MANY 200

static int many_ok;

static void
many_cb(void *arg, const struct rp_http_response *resp,
        const struct rp_error *err)
{
  if (resp && resp->status == 200 && strcmp(resp->body, "hello") == 0)
    many_ok++;
}

static void
test_200_concurrent(void **state)
{
  struct fx *f = *state;
  struct rp_http_request req = {
      .method = "GET", .path = "/ok", .timeout_ms = 10000};
  many_ok = 0;
  for (int i = 0; i < MANY; i++)
    assert_int_equal(rp_http_send(f->h, &f->ep, &req, many_cb, NULL, NULL), 0);
  assert_int_equal(rp_http_active(f->h), MANY);
  run_until(f, &many_ok, MANY);
  assert_int_equal(f->peer.requests, MANY);
  assert_int_equal(rp_http_active(f->h), 0);
}

static void
test_close_cancels_everything(void **state)
{
  struct fx *f = *state;
  struct result r[5] = {{0}};
  for (int i = 0; i < 5; i++)
    get(f, "/slow", &r[i]);
  /* Let them reach the peer. */
  run_until(f, &f->peer.requests, 5);
  rp_http_close(f->h);
  f->h = NULL;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].code, RP_ECANCELED);
    result_clear(&r[i]);
  }
}

/* Callbacks that start, cancel and close. */
struct chain {
  struct fx *f;
  struct result slow;
  struct rp_http_xfer *slow_x;
  struct result next;
  int done;
  int data_calls;
  bool sent_from_data;
};

static void
chain_first_cb(void *arg, const struct rp_http_response *resp,
               const struct rp_error *err)
{
  struct chain *c = arg;
  assert_non_null(resp);
  /* From a completion callback: cancel another transfer, start one. */
  rp_http_cancel(c->slow_x);
  assert_int_equal(c->slow.calls, 1);
  get(c->f, "/ok", &c->next);
  c->done++;
}

static void
test_callbacks_start_and_cancel(void **state)
{
  struct fx *f = *state;
  struct chain c = {.f = f};
  struct rp_http_request req = {
      .method = "GET", .path = "/ok", .timeout_ms = 5000};
  c.slow_x = get(f, "/slow", &c.slow);
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, chain_first_cb, &c, NULL),
                   0);
  run_until(f, &c.next.calls, 1);
  assert_int_equal(c.done, 1);
  assert_int_equal(c.slow.code, RP_ECANCELED);
  assert_int_equal(c.next.status, 200);
  result_clear(&c.slow);
  result_clear(&c.next);
}

/* on_data runs inside curl: starting and cancelling there is deferred. */
static int
chain_data_cb(void *arg, const char *data, size_t len)
{
  struct chain *c = arg;
  c->data_calls++;
  if (!c->sent_from_data) {
    c->sent_from_data = true;
    rp_http_cancel(c->slow_x);
    assert_int_equal(c->slow.calls, 1);
    get(c->f, "/ok", &c->next);
  }
  return 0;
}

static void
chain_stream_cb(void *arg, const struct rp_http_response *resp,
                const struct rp_error *err)
{
  struct chain *c = arg;
  assert_null(err);
  c->done++;
}

static void
test_on_data_starts_and_cancels(void **state)
{
  struct fx *f = *state;
  struct chain c = {.f = f};
  struct rp_http_request req = {.method = "GET",
                                .path = "/chunked",
                                .timeout_ms = 5000,
                                .on_data = chain_data_cb};
  c.slow_x = get(f, "/slow", &c.slow);
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, chain_stream_cb, &c, NULL),
                   0);
  run_until(f, &c.done, 1);
  run_until(f, &c.next.calls, 1);
  assert_int_equal(c.slow.code, RP_ECANCELED);
  assert_int_equal(c.next.status, 200);
  assert_true(c.data_calls >= 4);
  result_clear(&c.slow);
  result_clear(&c.next);
}

static struct rp_http_xfer *self_x;

static int
cancel_self_data_cb(void *arg, const char *data, size_t len)
{
  struct result *r = arg;
  r->data_calls++;
  rp_http_cancel(self_x);
  assert_int_equal(r->calls, 1);
  return 0;
}

static int
stop_data_cb(void *arg, const char *data, size_t len)
{
  return 1;
}

static void
test_on_data_cancels_itself_or_stops(void **state)
{
  struct fx *f = *state;
  struct result r = {0};
  struct rp_http_request req = {
      .method = "GET", .path = "/chunked", .on_data = cancel_self_data_cb};
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, result_cb, &r, &self_x), 0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_ECANCELED);
  assert_int_equal(r.data_calls, 1);
  /* Let curl see the abort and the client drop the handle. */
  for (int i = 0; i < 5; i++)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  result_clear(&r);

  req.on_data = stop_data_cb;
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, result_cb, &r, NULL), 0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_ECANCELED);
  assert_string_equal(r.message, "GET /chunked: stopped by the receiver");
  result_clear(&r);
}

static struct rp_http **close_from_cb_h;
static int close_from_cb_calls;

static void
close_from_cb(void *arg, const struct rp_http_response *resp,
              const struct rp_error *err)
{
  close_from_cb_calls++;
  rp_http_close(*close_from_cb_h);
  *close_from_cb_h = NULL;
}

static void
test_close_from_a_callback(void **state)
{
  struct fx *f = *state;
  struct result slow = {0};
  struct rp_http_request req = {
      .method = "GET", .path = "/ok", .timeout_ms = 5000};
  get(f, "/slow", &slow);
  close_from_cb_h = &f->h;
  close_from_cb_calls = 0;
  assert_int_equal(rp_http_send(f->h, &f->ep, &req, close_from_cb, NULL, NULL),
                   0);
  run_until(f, &close_from_cb_calls, 1);
  assert_int_equal(slow.calls, 1);
  assert_int_equal(slow.code, RP_ECANCELED);
  assert_null(f->h);
  result_clear(&slow);
}

/* ---- the docker call layer over the same peer ---- */

struct dres {
  int calls;
  long status;
  json_t *body;
  char *raw;
  int code;
  char *message;
  char **lines;
  int nlines;
  int stop_after; /* on_line: cancel after this many lines (0: never) */
  struct rp_http_xfer *x;
};

static void
dres_clear(struct dres *r)
{
  json_decref(r->body);
  free(r->raw);
  free(r->message);
  for (int i = 0; i < r->nlines; i++)
    free(r->lines[i]);
  free(r->lines);
  *r = (struct dres){0};
}

static void
dres_cb(void *arg, const struct rp_dockerapi_reply *rep,
        const struct rp_error *err)
{
  struct dres *r = arg;
  r->calls++;
  assert_non_null(rep);
  r->status = rep->status;
  r->body = rep->body ? json_incref(rep->body) : NULL;
  r->raw = rep->raw ? rp_xstrndup(rep->raw, rep->raw_len) : NULL;
  if (err) {
    r->code = err->code;
    r->message = rp_xstrdup(err->message);
  }
}

static void
dres_done_cb(void *arg, const struct rp_error *err)
{
  struct dres *r = arg;
  r->calls++;
  if (err) {
    r->code = err->code;
    r->message = rp_xstrdup(err->message);
  }
}

static int
dres_line_cb(void *arg, const char *line, size_t len)
{
  struct dres *r = arg;
  assert_int_equal(memchr(line, '\n', len), NULL);
  r->lines = rp_xrealloc(r->lines, sizeof(char *) * (size_t)(r->nlines + 1));
  r->lines[r->nlines++] = rp_xstrndup(line, len);
  if (r->stop_after && r->nlines == r->stop_after)
    rp_http_cancel(r->x);
  return 0;
}

static void
test_docker_call_json(void **state)
{
  struct fx *f = *state;
  struct dres r = {0};
  struct rp_error *err = NULL;
  json_t *body = json_pack("{s:s}", "Image", "busybox");
  assert_int_equal(
      rp_dockerapi_call(&f->d, "POST", "/echo", body, 0, dres_cb, &r, &err), 0);
  json_decref(body);
  run_until(f, &r.calls, 1);
  assert_null(r.message);
  assert_int_equal(r.status, 200);
  assert_non_null(r.body);
  assert_string_equal(json_string_value(json_object_get(r.body, "path")),
                      "/v1.41/echo");
  assert_string_equal(
      json_string_value(json_object_get(r.body, "content_type")),
      "application/json");
  assert_string_equal(json_string_value(json_object_get(r.body, "body")),
                      "{\"Image\":\"busybox\"}");
  dres_clear(&r);

  /* A body that is not JSON: body NULL, raw kept. */
  assert_int_equal(
      rp_dockerapi_call(&f->d, "GET", "/ok", NULL, 0, dres_cb, &r, &err), 0);
  run_until(f, &r.calls, 1);
  assert_null(r.body);
  assert_string_equal(r.raw, "hello");
  dres_clear(&r);
}

static void
test_docker_call_status_errors(void **state)
{
  struct fx *f = *state;
  struct dres r = {0};
  struct rp_error *err = NULL;

  assert_int_equal(
      rp_dockerapi_call(&f->d, "POST", "/conflict", NULL, 0, dres_cb, &r, &err),
      0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_ECONFLICT);
  assert_int_equal(r.status, 409);
  assert_non_null(r.body);
  assert_string_equal(r.message, "409 Conflict: Conflict. The container name "
                                 "\"/web\" is already in use");
  dres_clear(&r);

  assert_int_equal(
      rp_dockerapi_call(&f->d, "GET", "/json404", NULL, 0, dres_cb, &r, &err),
      0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_ENOTFOUND);
  assert_string_equal(r.message, "404 Not Found: No such container: x");
  dres_clear(&r);

  assert_int_equal(
      rp_dockerapi_call(&f->d, "GET", "/text500", NULL, 0, dres_cb, &r, &err),
      0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_EENGINE);
  assert_string_equal(r.message, "500 Internal Server Error: boom");
  dres_clear(&r);

  /* Transport errors keep the method and the versioned path. */
  free(f->d.ep.unix_socket);
  f->d.ep.unix_socket = rp_xasprintf("%s/nope.sock", f->dir);
  assert_int_equal(rp_dockerapi_call(&f->d, "GET", "/containers/json", NULL, 0,
                                     dres_cb, &r, &err),
                   0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.code, ENOENT);
  assert_non_null(strstr(r.message, "GET /v1.41/containers/json: "));
  assert_non_null(strstr(r.message, f->d.ep.unix_socket));
  dres_clear(&r);
}

static void
test_docker_stream_lines(void **state)
{
  struct fx *f = *state;
  struct dres r = {0};
  struct rp_error *err = NULL;
  assert_int_equal(rp_dockerapi_stream(&f->d, "/chunked", dres_line_cb,
                                       dres_done_cb, &r, &r.x, &err),
                   0);
  run_until(f, &r.calls, 1);
  assert_null(r.message);
  assert_int_equal(r.nlines, 4);
  assert_string_equal(r.lines[0], "{\"a\":1}");
  assert_string_equal(r.lines[1], "{\"b\":2}");
  assert_string_equal(r.lines[2], "{\"c\":3}");
  assert_string_equal(r.lines[3], "{\"d\":4}");
  assert_string_equal(f->peer.last_path, "/v1.41/chunked");
  dres_clear(&r);
}

static void
test_docker_stream_ends(void **state)
{
  struct fx *f = *state;
  struct dres r = {0};
  struct rp_error *err = NULL;

  /* A line over 1 MiB ends the stream with an error. */
  assert_int_equal(rp_dockerapi_stream(&f->d, "/longline", dres_line_cb,
                                       dres_done_cb, &r, &r.x, &err),
                   0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_EPROTO);
  assert_string_equal(r.message,
                      "GET /v1.41/longline: a line over 1048576 bytes");
  assert_int_equal(r.nlines, 0);
  dres_clear(&r);

  /* The consumer cancels from inside on_line. */
  r.stop_after = 1;
  assert_int_equal(rp_dockerapi_stream(&f->d, "/chunked", dres_line_cb,
                                       dres_done_cb, &r, &r.x, &err),
                   0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_ECANCELED);
  assert_int_equal(r.nlines, 1);
  dres_clear(&r);

  /* An error status: the engine's message, not lines. */
  assert_int_equal(rp_dockerapi_stream(&f->d, "/json404", dres_line_cb,
                                       dres_done_cb, &r, &r.x, &err),
                   0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_ENOTFOUND);
  assert_string_equal(r.message, "404 Not Found: No such container: x");
  assert_int_equal(r.nlines, 0);
  dres_clear(&r);
}

static int
dres_item_cb(void *arg, size_t index, const char *item, size_t len,
             struct rp_error **err)
{
  struct dres *r = arg;
  assert_int_equal(index, (size_t)r->nlines);
  r->lines = rp_xrealloc(r->lines, sizeof(char *) * (size_t)(r->nlines + 1));
  r->lines[r->nlines++] = rp_xstrndup(item, len);
  if (r->stop_after && r->nlines == r->stop_after)
    return rp_error_set(err, RP_EPROTO, "item %zu is not wanted", index);
  return 0;
}

/* A list read element by element: each whole, wherever the chunks were
 * cut; what is not a list, not JSON or cut short said in words; a consumer
 * that refuses an element ends it with its own error. */
static void
test_docker_list(void **state)
{
  struct fx *f = *state;
  struct dres r = {0};
  struct rp_error *err = NULL;
  assert_int_equal(
      rp_dockerapi_list(&f->d, "/list", dres_item_cb, dres_done_cb, &r, &err),
      0);
  run_until(f, &r.calls, 1);
  assert_null(r.message);
  assert_int_equal(r.nlines, 3);
  assert_string_equal(r.lines[0],
                      "{\"Id\": \"a\", \"L\": {\"x\": \"}]\\\"\"}}");
  assert_string_equal(r.lines[1], "{\"Id\": \"b\"}");
  assert_string_equal(r.lines[2], "{\"Id\": \"c\", \"N\": [1, {}]}");
  assert_string_equal(f->peer.last_path, "/v1.41/list");
  dres_clear(&r);

  const struct {
    const char *path;
    int items;
    const char *message;
  } bad[] = {
      {"/listcut", 1, "the answer is not JSON"},
      {"/listobj", 0, "the answer is not a list"},
      {"/listhtml", 0, "the answer is not JSON"},
      {"/listnum", 1, "item 1 is not an object"},
      {"/json404", 0, "404 Not Found: No such container: x"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    assert_int_equal(rp_dockerapi_list(&f->d, bad[i].path, dres_item_cb,
                                       dres_done_cb, &r, &err),
                     0);
    run_until(f, &r.calls, 1);
    assert_non_null(r.message);
    assert_string_equal(r.message, bad[i].message);
    assert_int_equal(r.nlines, bad[i].items);
    dres_clear(&r);
  }

  r.stop_after = 2;
  assert_int_equal(
      rp_dockerapi_list(&f->d, "/list", dres_item_cb, dres_done_cb, &r, &err),
      0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_EPROTO);
  assert_string_equal(r.message, "item 1 is not wanted");
  assert_int_equal(r.nlines, 2);
  dres_clear(&r);
}

static void
negotiate(struct fx *f, const char *version, const char *min, int pinned,
          struct dres *r)
{
  struct rp_error *err = NULL;
  f->peer.api_version = version;
  f->peer.min_api_version = min;
  f->d.v = NULL;
  f->d.prefix[0] = '\0';
  f->d.pinned = pinned;
  f->d.pinned_by = "api_version";
  assert_int_equal(rp_dockerapi_negotiate(&f->d, dres_done_cb, r, &err), 0);
  run_until(f, &r->calls, 1);
}

/* min(the engine's newest, reaper's newest); the engine's oldest read from
 * /version; a pin spoken as it is; refusals in one line naming both. */
static void
test_dockerapi_negotiates(void **state)
{
  struct fx *f = *state;
  struct dres r = {0};

  /* Newer than reaper: reaper's newest. */
  negotiate(f, "1.55", "1.40", 0, &r);
  assert_null(r.message);
  assert_string_equal(f->d.prefix, "/v1.52");
  assert_int_equal(f->d.v->number, RP_DOCKERAPI_V(1, 52));
  assert_string_equal(f->d.engine, "Docker Engine 29.0.0");
  assert_int_equal(f->d.engine_min, RP_DOCKERAPI_V(1, 40));
  dres_clear(&r);

  /* Older: the engine's, and what it means. */
  negotiate(f, "1.44", NULL, 0, &r);
  assert_null(r.message);
  assert_string_equal(f->d.prefix, "/v1.44");
  assert_true(f->d.v->create_all_endpoints);
  assert_false(f->d.v->gw_priority);
  assert_int_equal(f->d.engine_min, 0); /* no /version: not fatal */
  dres_clear(&r);

  negotiate(f, "1.41", "1.12", 0, &r);
  assert_null(r.message);
  assert_string_equal(f->d.prefix, "/v1.41");
  assert_false(f->d.v->create_all_endpoints);
  dres_clear(&r);

  /* Too old for reaper. */
  negotiate(f, "1.40", "1.12", 0, &r);
  assert_int_equal(r.code, RP_EVERSION);
  assert_non_null(strstr(r.message, "1.40"));
  assert_null(f->d.v);
  dres_clear(&r);

  /* A pin below the engine's floor: refused at once, in one line that
   * names what the engine accepts and what reaper speaks. */
  negotiate(f, "1.52", "1.44", RP_DOCKERAPI_V(1, 41), &r);
  assert_int_equal(r.code, RP_EVERSION);
  assert_string_equal(r.message,
                      "API version refused: Docker Engine 29.0.0 accepts API "
                      "1.44 to 1.52; reaper speaks 1.41 (pinned by "
                      "api_version)");
  assert_null(f->d.v);
  dres_clear(&r);

  /* A pin within range is spoken even where the engine has newer. */
  negotiate(f, "1.52", "1.44", RP_DOCKERAPI_V(1, 48), &r);
  assert_null(r.message);
  assert_string_equal(f->d.prefix, "/v1.48");
  dres_clear(&r);

  /* Not a Docker engine. */
  negotiate(f, NULL, NULL, 0, &r);
  assert_int_equal(r.code, RP_EPROTO);
  assert_null(f->d.v);
  dres_clear(&r);
}

/* A versioned call the engine refuses as too old is RP_EVERSION, so that
 * the provider backs off as from an engine that is away. */
static void
test_dockerapi_version_refused(void **state)
{
  struct fx *f = *state;
  struct dres r = {0};
  struct rp_error *err = NULL;
  f->peer.api_version = "1.52";
  f->peer.min_api_version = "1.44";
  snprintf(f->d.prefix, sizeof(f->d.prefix), "/v1.41");
  assert_int_equal(rp_dockerapi_call(&f->d, "GET", "/containers/json", NULL, 0,
                                     dres_cb, &r, &err),
                   0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.status, 400);
  assert_int_equal(r.code, RP_EVERSION);
  assert_non_null(strstr(r.message, "client version 1.41 is too old"));
  dres_clear(&r);
}

/* The version table: one row per version, the columns as the changelog
 * says (ENGINE-API-VERSIONS.md). */
static void
test_dockerapi_versions(void **state)
{
  (void)state;
  assert_null(rp_dockerapi_version(RP_DOCKERAPI_V(1, 40)));
  assert_null(rp_dockerapi_version(RP_DOCKERAPI_V(1, 53)));
  for (int m = 41; m <= 52; m++) {
    const struct rp_dockerapi_version *v =
        rp_dockerapi_version(RP_DOCKERAPI_V(1, m));
    assert_non_null(v);
    char name[8];
    snprintf(name, sizeof(name), "1.%d", m);
    assert_string_equal(v->name, name);
    assert_int_equal(v->create_all_endpoints, m >= 44);
    assert_int_equal(v->mac_in_endpoint, m >= 44);
    assert_int_equal(v->inspect_aliases_add_short_id, m < 45);
    assert_int_equal(v->gw_priority, m >= 48);
    assert_int_equal(v->inspect_configured_mac, m < 52);
  }
  char why[128];
  assert_true(rp_dockerapi_pin_valid("1.44", why, sizeof(why)));
  assert_false(rp_dockerapi_pin_valid("1.40", why, sizeof(why)));
  assert_non_null(strstr(why, "1.41 to 1.52"));
  assert_false(rp_dockerapi_pin_valid("1.x", why, sizeof(why)));
  assert_false(rp_dockerapi_pin_valid("1.44 ", why, sizeof(why)));
  int v = 0;
  assert_int_equal(rp_dockerapi_parse_version("1.52", &v), 0);
  assert_int_equal(v, 1052);
}

/* ---- a real engine, when one is given ---- */

static void
test_real_engine(void **state)
{
  struct fx *f = *state;
  const char *host = getenv("REAPER_TEST_DOCKER_HOST");
  struct rp_error *err = NULL;
  struct dres r = {0};

  if (host == NULL || *host == '\0')
    skip();
  rp_http_endpoint_clear(&f->d.ep);
  if (rp_dockerapi_endpoint_parse(host, &f->d.ep, &err) < 0)
    fail_msg("%s", err->message);
  f->d.prefix[0] = '\0';
  assert_int_equal(rp_dockerapi_negotiate(&f->d, dres_done_cb, &r, &err), 0);
  run_until(f, &r.calls, 1);
  if (r.message)
    fail_msg("%s", r.message);
  assert_non_null(f->d.v);
  print_message("engine %s, API %s\n", f->d.engine, f->d.prefix);
  dres_clear(&r);

  assert_int_equal(rp_dockerapi_call(&f->d, "GET", "/containers/json?all=1",
                                     NULL, 0, dres_cb, &r, &err),
                   0);
  run_until(f, &r.calls, 1);
  if (r.message)
    fail_msg("%s", r.message);
  assert_int_equal(r.status, 200);
  assert_true(json_is_array(r.body));
  print_message("%zu containers\n", json_array_size(r.body));
  dres_clear(&r);

  assert_int_equal(rp_dockerapi_call(&f->d, "GET",
                                     "/containers/nope-reaper/json", NULL, 0,
                                     dres_cb, &r, &err),
                   0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.code, RP_ENOTFOUND);
  print_message("%s\n", r.message);
  dres_clear(&r);

  /* The replayed events up to now, one JSON object a line; the engine ends
   * the stream at "until". */
  char path[96];
  snprintf(path, sizeof(path), "/events?since=0&until=%lld",
           (long long)(rp_wall_ms() / 1000));
  assert_int_equal(rp_dockerapi_stream(&f->d, path, dres_line_cb, dres_done_cb,
                                       &r, &r.x, &err),
                   0);
  run_until(f, &r.calls, 1);
  if (r.message)
    fail_msg("%s", r.message);
  for (int i = 0; i < r.nlines; i++) {
    json_t *ev = json_loads(r.lines[i], 0, NULL);
    assert_non_null(ev);
    assert_non_null(json_object_get(ev, "Action"));
    json_decref(ev);
  }
  print_message("%d events\n", r.nlines);
  dres_clear(&r);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
  const struct CMUnitTest tests[] = {
      T(test_get_ok),
      T(test_404_json_is_not_a_transport_error),
      T(test_methods_and_binary_body),
      T(test_chunked_streams_to_on_data_with_trailers),
      T(test_body_over_cap_is_an_error),
      T(test_timeout),
      T(test_connect_errors_name_the_socket),
      T(test_cancel_in_flight),
      T(test_sockets_are_close_on_exec),
      T(test_200_concurrent),
      T(test_close_cancels_everything),
      T(test_callbacks_start_and_cancel),
      T(test_on_data_starts_and_cancels),
      T(test_on_data_cancels_itself_or_stops),
      T(test_close_from_a_callback),
      T(test_docker_call_json),
      T(test_docker_call_status_errors),
      T(test_docker_stream_lines),
      T(test_docker_stream_ends),
      T(test_docker_list),
      T(test_dockerapi_negotiates),
      T(test_dockerapi_version_refused),
      T(test_dockerapi_versions),
      T(test_real_engine),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
