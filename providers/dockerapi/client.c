/* The Engine API call layer: one call on the loop (rp_dockerapi_call),
 * the line-split /events stream (rp_dockerapi_stream) and a list read
 * element by element as it comes (rp_dockerapi_list).  This is the one
 * place where HTTP statuses and the engine's {"message": ...} bodies become
 * rp_errors. */
#include "dockerapi.h"

#include <openssl/evp.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "json_scan.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 30000
/* The version spoken before a negotiation has succeeded: the oldest, which
 * an engine in range takes, or refuses in words that say why. */
#define API_FALLBACK "/v1.41"
/* An event is a few KiB; a line this long is not an event. */
#define MAX_LINE ((size_t)1 << 20)
/* How much of an error body a stream keeps for the message. */
#define MAX_ERROR_BODY ((size_t)64 << 10)
/* A list's element (a container is a few KiB); longer is not one. */
#define MAX_ITEM ((size_t)1 << 20)
/* How much of a non-JSON error body goes into a message. */
#define MAX_RAW_IN_MESSAGE 512

static const char *
reason_phrase(long status)
{
  switch (status) {
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 406:
    return "Not Acceptable";
  case 409:
    return "Conflict";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return status < 500 ? "Client Error" : "Server Error";
  }
}

/* The engine's words when a path's version is outside what it accepts
 * (daemon/server/middleware/version.go, the same from Engine 25 to 29):
 * "client version 1.41 is too old. Minimum supported API version is
 * 1.44, ..." and "client version 1.53 is too new. Maximum supported API
 * version is 1.52". */
static bool
is_version_refusal(const char *msg)
{
  return msg && strncmp(msg, "client version ", 15) == 0 &&
         (strstr(msg, " is too old") || strstr(msg, " is too new"));
}

/* Podman's compat API answers 500 "container X does not exist in database:
 * no such container" for a container removed while it looked (a --rm one
 * that just exited): gone, as a 404 says. */
static bool
is_podman_not_found(long status, const char *msg)
{
  return status == 500 && msg && strstr(msg, "no such container");
}

/* "409 Conflict: <the engine's message>" with the code callers branch on.
 * body (borrowed, may be NULL) is the parsed reply; raw its text. */
static void
status_error(long status, json_t *body, const char *raw, size_t raw_len,
             struct rp_error **err)
{
  const char *msg = json_string_value(json_object_get(body, "message"));
  int code = status == 404 || is_podman_not_found(status, msg) ? RP_ENOTFOUND
             : status == 409                                   ? RP_ECONFLICT
             : status == 400 && is_version_refusal(msg)        ? RP_EVERSION
                                                               : RP_EENGINE;
  int msg_len = msg ? (int)strlen(msg) : 0;

  if (msg == NULL && raw && body == NULL) {
    /* Not JSON: proxies and old engines answer in text. */
    while (raw_len > 0 &&
           (raw[raw_len - 1] == '\n' || raw[raw_len - 1] == '\r'))
      raw_len--;
    msg = raw;
    msg_len =
        (int)(raw_len < MAX_RAW_IN_MESSAGE ? raw_len : MAX_RAW_IN_MESSAGE);
  }
  if (msg_len > 0)
    rp_error_set(err, code, "%ld %s: %.*s", status, reason_phrase(status),
                 msg_len, msg);
  else
    rp_error_set(err, code, "%ld %s", status, reason_phrase(status));
}

static json_t *
parse_body(const char *raw, size_t len)
{
  if (raw == NULL || len == 0)
    return NULL;
  return json_loadb(raw, len, JSON_DECODE_ANY, NULL);
}

/* Marks a call without a version prefix. */
static const struct rp_dockerapi_version unversioned;

static char *
versioned(const struct rp_dockerapi *api, const struct rp_dockerapi_version *at,
          const char *path)
{
  if (at == &unversioned)
    return rp_xstrdup(path);
  if (at)
    return rp_xasprintf("/v%s%s", at->name, path);
  return rp_xasprintf("%s%s", api->prefix[0] ? api->prefix : API_FALLBACK,
                      path);
}

static int
check_client(const struct rp_dockerapi *api, const char *method,
             const char *path, struct rp_error **err)
{
  if (api == NULL || api->p == NULL || api->p->http == NULL ||
      api->ep.base_url == NULL)
    return rp_error_set(err, EINVAL, "%s %s: the provider is not set up",
                        method, path);
  return 0;
}

/* ---- one call ---- */

struct call {
  rp_dockerapi_cb cb;
  void *arg;
  char *body; /* owned: the serialized request, sent until the callback */
  bool raw;   /* a good answer is not parsed (rp_dockerapi_get_raw) */
};

static void
call_done_cb(void *arg, const struct rp_http_response *resp,
             const struct rp_error *err)
{
  struct call *c = arg;
  struct rp_dockerapi_reply r = {0};
  cleanup_json json_t *body = NULL;
  cleanup_error struct rp_error *e = NULL;

  if (err == NULL) {
    if (!c->raw || resp->status >= 400)
      body = parse_body(resp->body, resp->body_len);
    r = (struct rp_dockerapi_reply){.status = resp->status,
                                    .body = body,
                                    .raw = resp->body,
                                    .raw_len = resp->body_len};
    if (resp->status >= 400)
      status_error(resp->status, body, resp->body, resp->body_len, &e);
  }
  /* Transport errors already read "GET /v1.41/...: why". */
  c->cb(c->arg, &r, err ? err : e);
  free(c->body);
  free(c);
}

static int
call_at(struct rp_dockerapi *api, const struct rp_dockerapi_version *at,
        const char *method, const char *path, const json_t *body,
        const char *const *headers, int64_t timeout_ms, bool raw,
        rp_dockerapi_cb cb, void *arg, struct rp_error **err)
{
  if (check_client(api, method, path, err) < 0)
    return -1;
  cleanup_free char *full = versioned(api, at, path);
  static const char *const json_headers[] = {"Content-Type: application/json",
                                             NULL};
  struct call *c = rp_xcalloc(1, sizeof(*c));
  c->cb = cb;
  c->arg = arg;
  c->raw = raw;
  if (body) {
    c->body = json_dumps(body, JSON_COMPACT);
    if (c->body == NULL) {
      free(c);
      return rp_error_set(err, EINVAL, "%s %s: cannot serialize the body",
                          method, full);
    }
  }
  struct rp_http_request req = {
      .method = method,
      .path = full,
      .headers = headers   ? headers
                 : c->body ? json_headers
                           : NULL,
      .body = c->body,
      .body_len = c->body ? strlen(c->body) : 0,
      .timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS,
  };
  if (rp_http_send(api->p->http, &api->ep, &req, call_done_cb, c, NULL) < 0) {
    free(c->body);
    free(c);
    return rp_error_set(err, EIO, "%s %s: cannot start the request", method,
                        full);
  }
  return 0;
}

int
rp_dockerapi_call_at(struct rp_dockerapi *api,
                     const struct rp_dockerapi_version *at, const char *method,
                     const char *path, const json_t *body, int64_t timeout_ms,
                     rp_dockerapi_cb cb, void *arg, struct rp_error **err)
{
  return call_at(api, at, method, path, body, NULL, timeout_ms, false, cb, arg,
                 err);
}

int
rp_dockerapi_call_headers(struct rp_dockerapi *api, const char *method,
                          const char *path, const json_t *body,
                          const char *const *headers, int64_t timeout_ms,
                          rp_dockerapi_cb cb, void *arg, struct rp_error **err)
{
  return call_at(api, NULL, method, path, body, headers, timeout_ms, false, cb,
                 arg, err);
}

char *
rp_dockerapi_registry_auth(const struct rp_registry_cred *cred,
                           const char *domain)
{
  cleanup_json json_t *o =
      json_pack("{s:s, s:s, s:s}", "username", cred->username, "password",
                cred->password ? cred->password : "", "serveraddress", domain);
  char *text = json_dumps(o, JSON_COMPACT);
  if (!text)
    return NULL;
  size_t n = strlen(text);
  char *out = rp_xmalloc(4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)n);
  rp_registry_secret_free(text);
  for (char *c = out; *c; c++)
    *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
  return out;
}

int
rp_dockerapi_get_raw(struct rp_dockerapi *api, const char *path,
                     rp_dockerapi_cb cb, void *arg, struct rp_error **err)
{
  return call_at(api, NULL, "GET", path, NULL, NULL, 0, true, cb, arg, err);
}

int
rp_dockerapi_call_plain(struct rp_dockerapi *api, const char *method,
                        const char *path, int64_t timeout_ms,
                        rp_dockerapi_cb cb, void *arg, struct rp_error **err)
{
  return rp_dockerapi_call_at(api, &unversioned, method, path, NULL, timeout_ms,
                              cb, arg, err);
}

int
rp_dockerapi_call(struct rp_dockerapi *api, const char *method,
                  const char *path, const json_t *body, int64_t timeout_ms,
                  rp_dockerapi_cb cb, void *arg, struct rp_error **err)
{
  return rp_dockerapi_call_at(api, NULL, method, path, body, timeout_ms, cb,
                              arg, err);
}

/* ---- lines ---- */

void
rp_dockerapi_line_splitter_init(struct rp_dockerapi_line_splitter *ls,
                                size_t max_line)
{
  ls->max_line = max_line ? max_line : MAX_LINE;
  rp_buf_init(&ls->line, ls->max_line);
}

void
rp_dockerapi_line_splitter_clear(struct rp_dockerapi_line_splitter *ls)
{
  rp_buf_free(&ls->line);
}

/* Hands one line to the consumer: 1 when it asks to stop. */
static int
deliver(const char *line, size_t len, rp_dockerapi_line_cb line_cb, void *arg)
{
  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (len == 0)
    return 0;
  return line_cb(arg, line, len) != 0 ? 1 : 0;
}

int
rp_dockerapi_line_splitter_feed(struct rp_dockerapi_line_splitter *ls,
                                const char *data, size_t n,
                                rp_dockerapi_line_cb line_cb, void *arg)
{
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    if (nl == NULL)
      break;
    size_t seg = (size_t)(nl - data);
    if (ls->line.len > 0) {
      /* The end of a line that began in an earlier chunk: taken out of the
       * buffer, which is empty again before the consumer sees it. */
      if (rp_buf_add(&ls->line, data, seg) < 0)
        return -1;
      size_t len = ls->line.len;
      cleanup_free char *line = rp_buf_take(&ls->line);
      if (deliver(line, len, line_cb, arg))
        return 1;
    } else {
      if (seg > ls->max_line)
        return -1;
      if (deliver(data, seg, line_cb, arg))
        return 1;
    }
    data = nl + 1;
    n -= seg + 1;
  }
  if (n > 0 && rp_buf_add(&ls->line, data, n) < 0)
    return -1;
  return 0;
}

int
rp_dockerapi_line_splitter_end(struct rp_dockerapi_line_splitter *ls,
                               rp_dockerapi_line_cb line_cb, void *arg)
{
  size_t len = ls->line.len;
  cleanup_free char *line = rp_buf_take(&ls->line);
  return len > 0 ? deliver(line, len, line_cb, arg) : 0;
}

/* ---- a stream of lines ---- */

struct stream {
  int (*on_line)(void *arg, const char *line, size_t len);
  /* A list (rp_dockerapi_list) rather than lines: its elements. */
  int (*on_item)(void *arg, size_t index, const char *item, size_t len,
                 struct rp_error **err);
  void (*done_cb)(void *arg, const struct rp_error *err);
  void *arg;
  char *what; /* owned: "GET /v1.43/events" */
  struct rp_dockerapi_line_splitter lines;
  struct rp_json_splitter items;
  struct rp_buf error_body; /* (the start of) the body of an error reply */
  long status;              /* from the last status line seen */
  struct rp_error *err;     /* owned: why we stopped the stream ourselves */
  bool in_data;             /* inside on_data: done_cb may run under us */
  bool finished;            /* done_cb has run */
};

static void
stream_free(struct stream *s)
{
  free(s->what);
  rp_dockerapi_line_splitter_clear(&s->lines);
  rp_json_splitter_clear(&s->items);
  rp_buf_free(&s->error_body);
  rp_error_free(s->err);
  free(s);
}

static void
stream_status_cb(void *arg, const char *line, size_t len)
{
  struct stream *s = arg;
  long status;
  /* "HTTP/1.1 200 OK"; the last block's status is the reply's. */
  if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
    const char *sp = memchr(line, ' ', len);
    if (sp && sscanf(sp, " %ld", &status) == 1)
      s->status = status;
  }
}

/* The consumer's on_line; non-zero when the stream must end (stopped, or
 * finished under us). */
static int
stream_line_cb(void *arg, const char *line, size_t len)
{
  struct stream *s = arg;
  int rc = s->on_line(s->arg, line, len);
  return s->finished || rc != 0;
}

/* The consumer's on_item; non-zero when the list must end. */
static int
stream_item_cb(void *arg, size_t index, const char *item, size_t len)
{
  struct stream *s = arg;
  int rc = s->on_item(s->arg, index, item, len, &s->err);
  if (rc != 0 && !s->err)
    rp_error_set(&s->err, RP_ECANCELED, "%s: stopped", s->what);
  return s->finished || rc != 0;
}

/* A list's chunk: 1 when the transfer must end. */
static int
list_data(struct stream *s, const char *data, size_t n)
{
  if (s->items.not_array) {
    /* Not a list: kept (its start) to tell JSON from garbage at the end. */
    size_t room = rp_buf_room(&s->error_body);
    rp_buf_add(&s->error_body, data, n < room ? n : room);
    return 0;
  }
  int rc = rp_json_splitter_feed(&s->items, data, n, stream_item_cb, s);
  if (rc < 0 && s->items.not_array)
    return list_data(s, data, n);
  if (rc < 0) {
    const char *why = s->items.why;
    if (strcmp(why, "an element is not an object") == 0)
      rp_error_set(&s->err, RP_EPROTO, "item %zu is not an object",
                   s->items.index);
    else if (strcmp(why, "an element is too long") == 0)
      rp_error_set(&s->err, RP_EPROTO, "item %zu is over %zu bytes",
                   s->items.index, s->items.max_elem);
    else
      rp_error_set(&s->err, RP_EPROTO, "the answer is not JSON");
  }
  return rc != 0;
}

static int
stream_data_cb(void *arg, const char *data, size_t n)
{
  struct stream *s = arg;
  int rc;

  if (s->status >= 400) {
    /* An error reply: keep (the start of) it for the message. */
    size_t room = rp_buf_room(&s->error_body);
    rp_buf_add(&s->error_body, data, n < room ? n : room);
    return 0;
  }
  s->in_data = true;
  if (s->on_item) {
    rc = list_data(s, data, n);
    s->in_data = false;
    if (s->finished) {
      stream_free(s);
      return 1;
    }
    return rc;
  }
  rc = rp_dockerapi_line_splitter_feed(&s->lines, data, n, stream_line_cb, s);
  s->in_data = false;
  if (rc < 0)
    rp_error_set(&s->err, RP_EPROTO, "%s: a line over %zu bytes", s->what,
                 s->lines.max_line);
  if (s->finished) {
    /* The consumer cancelled the stream from on_line: done_cb has run. */
    stream_free(s);
    return 1;
  }
  return rc != 0 ? 1 : 0;
}

static void
stream_done_cb(void *arg, const struct rp_http_response *resp,
               const struct rp_error *err)
{
  struct stream *s = arg;
  cleanup_error struct rp_error *e = NULL;

  s->finished = true;
  if (s->err) {
    s->done_cb(s->arg, s->err);
  } else if (err) {
    s->done_cb(s->arg, err);
  } else if (resp->status >= 400) {
    cleanup_json json_t *body = parse_body(s->error_body.p, s->error_body.len);
    status_error(resp->status, body, s->error_body.p, s->error_body.len, &e);
    s->done_cb(s->arg, e);
  } else if (s->on_item) {
    /* The whole list came, or the answer was no list at all. */
    if (s->items.not_array) {
      cleanup_json json_t *body =
          parse_body(s->error_body.p, s->error_body.len);
      rp_error_set(&e, RP_EPROTO, "the answer is not %s",
                   body ? "a list" : "JSON");
    } else if (rp_json_splitter_end(&s->items) != 0) {
      rp_error_set(&e, RP_EPROTO, "the answer is not JSON");
    }
    s->done_cb(s->arg, e);
  } else {
    /* A last line without its newline still counts.  finished is set, so
     * the consumer's return value no longer matters. */
    rp_dockerapi_line_splitter_end(&s->lines, stream_line_cb, s);
    s->done_cb(s->arg, NULL);
  }
  if (!s->in_data)
    stream_free(s);
}

int
rp_dockerapi_list(struct rp_dockerapi *api, const char *path,
                  int (*on_item)(void *arg, size_t index, const char *item,
                                 size_t len, struct rp_error **err),
                  void (*done_cb)(void *arg, const struct rp_error *err),
                  void *arg, struct rp_error **err)
{
  if (check_client(api, "GET", path, err) < 0)
    return -1;
  cleanup_free char *full = versioned(api, NULL, path);
  struct stream *s = rp_xcalloc(1, sizeof(*s));
  s->on_item = on_item;
  s->done_cb = done_cb;
  s->arg = arg;
  s->what = rp_xasprintf("GET %s", full);
  rp_json_splitter_init(&s->items, MAX_ITEM);
  rp_buf_init(&s->error_body, MAX_ERROR_BODY);
  struct rp_http_request req = {
      .method = "GET",
      .path = full,
      .timeout_ms = DEFAULT_TIMEOUT_MS,
      .on_data = stream_data_cb,
      .on_header = stream_status_cb,
  };
  if (rp_http_send(api->p->http, &api->ep, &req, stream_done_cb, s, NULL) < 0) {
    stream_free(s);
    return rp_error_set(err, EIO, "GET %s: cannot start the request", full);
  }
  return 0;
}

int
rp_dockerapi_stream(struct rp_dockerapi *api, const char *path,
                    int (*on_line)(void *arg, const char *line, size_t len),
                    void (*done_cb)(void *arg, const struct rp_error *err),
                    void *arg, struct rp_http_xfer **xfer,
                    struct rp_error **err)
{
  if (check_client(api, "GET", path, err) < 0)
    return -1;
  cleanup_free char *full = versioned(api, NULL, path);
  struct stream *s = rp_xcalloc(1, sizeof(*s));
  s->on_line = on_line;
  s->done_cb = done_cb;
  s->arg = arg;
  s->what = rp_xasprintf("GET %s", full);
  rp_dockerapi_line_splitter_init(&s->lines, MAX_LINE);
  rp_buf_init(&s->error_body, MAX_ERROR_BODY);
  struct rp_http_request req = {
      .method = "GET",
      .path = full,
      .timeout_ms = 0,
      .on_data = stream_data_cb,
      .on_header = stream_status_cb,
  };
  if (rp_http_send(api->p->http, &api->ep, &req, stream_done_cb, s, xfer) < 0) {
    stream_free(s);
    return rp_error_set(err, EIO, "GET %s: cannot start the request", full);
  }
  return 0;
}
