/* The docker provider's API call layer: one Engine API call on the loop
 * (rp_docker_call), the line-split /events stream (rp_docker_stream) and
 * version negotiation (rp_docker_ping).  This is the one place where HTTP
 * statuses and the engine's {"message": ...} bodies become rp_errors. */
#include "docker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define DEFAULT_TIMEOUT_MS 30000
#define PING_TIMEOUT_MS 10000
/* The oldest API reaper speaks, used until /_ping has negotiated; every
 * newer engine accepts it. */
#define API_FALLBACK "/v1.41"
#define API_MIN_MAJOR 1
#define API_MIN_MINOR 41
#define API_MAX_MAJOR 1
#define API_MAX_MINOR 43
/* An event is a few KiB; a line this long is not an event. */
#define MAX_LINE ((size_t)1 << 20)
/* How much of an error body a stream keeps for the message. */
#define MAX_ERROR_BODY ((size_t)64 << 10)
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

/* "409 Conflict: <the engine's message>" with the code callers branch on.
 * body (borrowed, may be NULL) is the parsed reply; raw its text. */
static void
status_error(long status, json_t *body, const char *raw, size_t raw_len,
             struct rp_error **err)
{
  int code = status == 404   ? RP_ENOTFOUND
             : status == 409 ? RP_ECONFLICT
                             : RP_EENGINE;
  const char *msg = json_string_value(json_object_get(body, "message"));
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

static char *
versioned(const struct rp_docker *d, const char *path)
{
  return rp_xasprintf("%s%s", d->api[0] ? d->api : API_FALLBACK, path);
}

static int
check_client(const struct rp_docker *d, const char *method, const char *path,
             struct rp_error **err)
{
  if (d == NULL || d->p == NULL || d->p->http == NULL || d->ep.base_url == NULL)
    return rp_error_set(err, EINVAL, "%s %s: the provider is not set up",
                        method, path);
  return 0;
}

/* ---- one call ---- */

struct call {
  rp_docker_cb cb;
  void *arg;
  char *body; /* owned: the serialized request, sent until the callback */
};

static void
call_done_cb(void *arg, const struct rp_http_response *resp,
             const struct rp_error *err)
{
  struct call *c = arg;
  struct rp_docker_reply r = {0};
  cleanup_json json_t *body = NULL;
  cleanup_error struct rp_error *e = NULL;

  if (err == NULL) {
    body = parse_body(resp->body, resp->body_len);
    r = (struct rp_docker_reply){.status = resp->status,
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

int
rp_docker_call(struct rp_docker *d, const char *method, const char *path,
               const json_t *body, int64_t timeout_ms, rp_docker_cb cb,
               void *arg, struct rp_error **err)
{
  if (check_client(d, method, path, err) < 0)
    return -1;
  cleanup_free char *full = versioned(d, path);
  static const char *const json_headers[] = {"Content-Type: application/json",
                                             NULL};
  struct call *c = rp_xcalloc(1, sizeof(*c));
  c->cb = cb;
  c->arg = arg;
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
      .headers = c->body ? json_headers : NULL,
      .body = c->body,
      .body_len = c->body ? strlen(c->body) : 0,
      .timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS,
  };
  if (rp_http_send(d->p->http, &d->ep, &req, call_done_cb, c, NULL) < 0) {
    free(c->body);
    free(c);
    return rp_error_set(err, EIO, "%s %s: cannot start the request", method,
                        full);
  }
  return 0;
}

/* ---- lines ---- */

/* Appends n bytes to a growable buffer, keeping it NUL-terminated; -1
 * (nothing appended) when it would hold more than max bytes. */
static int
buf_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n,
           size_t max)
{
  if (n > max - *len)
    return -1;
  if (*len + n + 1 > *cap) {
    size_t c = *cap ? *cap : 4096;
    while (c < *len + n + 1)
      c *= 2;
    *buf = rp_xrealloc(*buf, c);
    *cap = c;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
  return 0;
}

void
rp_docker_line_splitter_init(struct rp_docker_line_splitter *ls,
                             size_t max_line)
{
  memset(ls, 0, sizeof(*ls));
  ls->max_line = max_line ? max_line : MAX_LINE;
}

void
rp_docker_line_splitter_clear(struct rp_docker_line_splitter *ls)
{
  free(ls->buf);
  ls->buf = NULL;
  ls->len = ls->cap = 0;
}

/* Hands one line to the consumer: 1 when it asks to stop. */
static int
deliver(const char *line, size_t len, rp_docker_line_cb line_cb, void *arg)
{
  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (len == 0)
    return 0;
  return line_cb(arg, line, len) != 0 ? 1 : 0;
}

int
rp_docker_line_splitter_feed(struct rp_docker_line_splitter *ls,
                             const char *data, size_t n,
                             rp_docker_line_cb line_cb, void *arg)
{
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    if (nl == NULL)
      break;
    size_t seg = (size_t)(nl - data);
    if (ls->len > 0) {
      /* The end of a line that began in an earlier chunk. */
      if (buf_append(&ls->buf, &ls->len, &ls->cap, data, seg, ls->max_line) < 0)
        return -1;
      size_t len = ls->len;
      ls->len = 0;
      if (deliver(ls->buf, len, line_cb, arg))
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
  if (n > 0 &&
      buf_append(&ls->buf, &ls->len, &ls->cap, data, n, ls->max_line) < 0)
    return -1;
  return 0;
}

int
rp_docker_line_splitter_end(struct rp_docker_line_splitter *ls,
                            rp_docker_line_cb line_cb, void *arg)
{
  size_t len = ls->len;
  ls->len = 0;
  return len > 0 ? deliver(ls->buf, len, line_cb, arg) : 0;
}

/* ---- a stream of lines ---- */

struct stream {
  int (*on_line)(void *arg, const char *line, size_t len);
  void (*done_cb)(void *arg, const struct rp_error *err);
  void *arg;
  char *what; /* owned: "GET /v1.43/events" */
  struct rp_docker_line_splitter lines;
  char *error_body; /* owned: (the start of) the body of an error reply */
  size_t error_len, error_cap;
  long status;          /* from the last status line seen */
  struct rp_error *err; /* owned: why we stopped the stream ourselves */
  bool in_data;         /* inside on_data: done_cb may run under us */
  bool finished;        /* done_cb has run */
};

static void
stream_free(struct stream *s)
{
  free(s->what);
  rp_docker_line_splitter_clear(&s->lines);
  free(s->error_body);
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

static int
stream_data_cb(void *arg, const char *data, size_t n)
{
  struct stream *s = arg;
  int rc;

  if (s->status >= 400) {
    /* An error reply: keep (the start of) it for the message. */
    size_t room = MAX_ERROR_BODY - s->error_len;
    buf_append(&s->error_body, &s->error_len, &s->error_cap, data,
               n < room ? n : room, MAX_ERROR_BODY);
    return 0;
  }
  s->in_data = true;
  rc = rp_docker_line_splitter_feed(&s->lines, data, n, stream_line_cb, s);
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
    cleanup_json json_t *body = parse_body(s->error_body, s->error_len);
    status_error(resp->status, body, s->error_body, s->error_len, &e);
    s->done_cb(s->arg, e);
  } else {
    /* A last line without its newline still counts.  finished is set, so
     * the consumer's return value no longer matters. */
    rp_docker_line_splitter_end(&s->lines, stream_line_cb, s);
    s->done_cb(s->arg, NULL);
  }
  if (!s->in_data)
    stream_free(s);
}

int
rp_docker_stream(struct rp_docker *d, const char *path,
                 int (*on_line)(void *arg, const char *line, size_t len),
                 void (*done_cb)(void *arg, const struct rp_error *err),
                 void *arg, struct rp_http_xfer **xfer, struct rp_error **err)
{
  if (check_client(d, "GET", path, err) < 0)
    return -1;
  cleanup_free char *full = versioned(d, path);
  struct stream *s = rp_xcalloc(1, sizeof(*s));
  s->on_line = on_line;
  s->done_cb = done_cb;
  s->arg = arg;
  s->what = rp_xasprintf("GET %s", full);
  rp_docker_line_splitter_init(&s->lines, MAX_LINE);
  struct rp_http_request req = {
      .method = "GET",
      .path = full,
      .timeout_ms = 0,
      .on_data = stream_data_cb,
      .on_header = stream_status_cb,
  };
  if (rp_http_send(d->p->http, &d->ep, &req, stream_done_cb, s, xfer) < 0) {
    stream_free(s);
    return rp_error_set(err, EIO, "GET %s: cannot start the request", full);
  }
  return 0;
}

/* ---- version negotiation ---- */

struct ping {
  struct rp_docker *d; /* borrowed */
  void (*cb)(void *arg, const struct rp_error *err);
  void *arg;
  char version[32]; /* the API-Version header's value */
};

static void
ping_header_cb(void *arg, const char *line, size_t len)
{
  struct ping *p = arg;
  static const char name[] = "API-Version:";
  size_t n = sizeof(name) - 1;

  /* Header names are case-insensitive: podman sends "Api-Version". */
  if (len <= n || strncasecmp(line, name, n) != 0)
    return;
  line += n;
  len -= n;
  while (len > 0 && (*line == ' ' || *line == '\t')) {
    line++;
    len--;
  }
  while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
    len--;
  if (len >= sizeof(p->version))
    len = sizeof(p->version) - 1;
  memcpy(p->version, line, len);
  p->version[len] = '\0';
}

static int
negotiate(struct rp_docker *d, const char *version, struct rp_error **err)
{
  int major, minor, end = 0;

  if (version[0] == '\0')
    return rp_error_set(err, RP_EPROTO,
                        "GET /_ping: no API-Version header (not a Docker "
                        "engine?)");
  if (sscanf(version, "%d.%d%n", &major, &minor, &end) != 2 ||
      version[end] != '\0' || major < 0 || minor < 0)
    return rp_error_set(err, RP_EPROTO, "GET /_ping: API-Version \"%s\": %s",
                        version, "not MAJOR.MINOR");
  if (major < API_MIN_MAJOR ||
      (major == API_MIN_MAJOR && minor < API_MIN_MINOR))
    return rp_error_set(err, RP_EENGINE,
                        "the engine speaks API %d.%d, older than %d.%d, the "
                        "oldest reaper supports",
                        major, minor, API_MIN_MAJOR, API_MIN_MINOR);
  if (major > API_MAX_MAJOR ||
      (major == API_MAX_MAJOR && minor > API_MAX_MINOR)) {
    major = API_MAX_MAJOR;
    minor = API_MAX_MINOR;
  }
  snprintf(d->api, sizeof(d->api), "/v%d.%d", major, minor);
  d->negotiated = true;
  return 0;
}

static void
ping_done_cb(void *arg, const struct rp_http_response *resp,
             const struct rp_error *err)
{
  struct ping *p = arg;
  cleanup_error struct rp_error *e = NULL;

  if (err == NULL) {
    if (resp->status != 200) {
      cleanup_json json_t *body = parse_body(resp->body, resp->body_len);
      status_error(resp->status, body, resp->body, resp->body_len, &e);
      rp_error_prefix(&e, "GET /_ping");
    } else {
      negotiate(p->d, p->version, &e);
    }
  }
  p->cb(p->arg, err ? err : e);
  free(p);
}

int
rp_docker_ping(struct rp_docker *d,
               void (*cb)(void *arg, const struct rp_error *err), void *arg,
               struct rp_error **err)
{
  if (check_client(d, "GET", "/_ping", err) < 0)
    return -1;
  struct ping *p = rp_xcalloc(1, sizeof(*p));
  p->d = d;
  p->cb = cb;
  p->arg = arg;
  struct rp_http_request req = {
      .method = "GET",
      .path = "/_ping",
      .timeout_ms = PING_TIMEOUT_MS,
      .max_body = 4096,
      .on_header = ping_header_cb,
  };
  if (rp_http_send(d->p->http, &d->ep, &req, ping_done_cb, p, NULL) < 0) {
    free(p);
    return rp_error_set(err, EIO, "GET /_ping: cannot start the request");
  }
  return 0;
}
