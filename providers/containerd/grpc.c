/* gRPC over HTTP/2 on the loop, through the shared HTTP client (libcurl with
 * HTTP/2 prior knowledge on containerd's unix socket).  Requests are POSTs
 * of one length-prefixed protobuf message; answers are length-prefixed
 * messages, split across DATA frames anywhere, then trailers with
 * grpc-status and grpc-message (or, for an error, a "trailers-only" first
 * header block carrying them).  This file is the one place where gRPC
 * statuses become rp_errors, with the code's name in words. */
#include "containerd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define DEFAULT_TIMEOUT_MS 30000
#define FRAME_HEADER 5

static const char *const code_names[] = {
    [RP_GRPC_OK] = "OK",
    [RP_GRPC_CANCELLED] = "Canceled",
    [RP_GRPC_UNKNOWN] = "Unknown",
    [RP_GRPC_INVALID_ARGUMENT] = "InvalidArgument",
    [RP_GRPC_DEADLINE_EXCEEDED] = "DeadlineExceeded",
    [RP_GRPC_NOT_FOUND] = "NotFound",
    [RP_GRPC_ALREADY_EXISTS] = "AlreadyExists",
    [RP_GRPC_PERMISSION_DENIED] = "PermissionDenied",
    [RP_GRPC_RESOURCE_EXHAUSTED] = "ResourceExhausted",
    [RP_GRPC_FAILED_PRECONDITION] = "FailedPrecondition",
    [RP_GRPC_ABORTED] = "Aborted",
    [RP_GRPC_OUT_OF_RANGE] = "OutOfRange",
    [RP_GRPC_UNIMPLEMENTED] = "Unimplemented",
    [RP_GRPC_INTERNAL] = "Internal",
    [RP_GRPC_UNAVAILABLE] = "Unavailable",
    [RP_GRPC_DATA_LOSS] = "DataLoss",
    [RP_GRPC_UNAUTHENTICATED] = "Unauthenticated",
};

const char *
rp_grpc_code_name(int code)
{
  if (code < 0 || (size_t)code >= RP_ARRAY_LEN(code_names))
    return NULL;
  return code_names[code];
}

int
rp_grpc_code_error(int code)
{
  switch (code) {
  case RP_GRPC_NOT_FOUND:
    return RP_ENOTFOUND;
  case RP_GRPC_ALREADY_EXISTS:
    return RP_ECONFLICT;
  case RP_GRPC_DEADLINE_EXCEEDED:
    return RP_ETIMEOUT;
  case RP_GRPC_CANCELLED:
    return RP_ECANCELED;
  default:
    return RP_EENGINE;
  }
}

static int
hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

char *
rp_grpc_percent_decode(const char *s, size_t n)
{
  char *out = rp_xmalloc(n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
        (lo = hex_value(s[i + 2])) >= 0) {
      out[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
}

const char *
rp_grpc_short_method(const char *path, char *buf, size_t len)
{
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path) {
    snprintf(buf, len, "%s", path);
    return buf;
  }
  /* The service is the last dotted name before the slash. */
  const char *svc = slash;
  while (svc > path && svc[-1] != '.' && svc[-1] != '/')
    svc--;
  snprintf(buf, len, "%.*s.%s", (int)(slash - svc), svc, slash + 1);
  return buf;
}

/* --- frames -------------------------------------------------------------- */

void
rp_grpc_frames_init(struct rp_grpc_frames *f, size_t max_msg)
{
  f->max_msg = max_msg ? max_msg : RP_CTRD_MAX_MESSAGE;
  rp_buf_init(&f->msg, FRAME_HEADER + f->max_msg);
}

void
rp_grpc_frames_clear(struct rp_grpc_frames *f)
{
  rp_buf_free(&f->msg);
}

bool
rp_grpc_frames_partial(const struct rp_grpc_frames *f)
{
  return f->msg.len > 0;
}

static uint32_t
be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

/* Checks a complete 5-byte header: -1 with err when unusable. */
static int
check_header(const struct rp_grpc_frames *f, const uint8_t *h, size_t *msg_len,
             struct rp_error **err)
{
  if (h[0] != 0)
    return rp_error_set(err, RP_EPROTO,
                        "a compressed gRPC message (flag %u), which reaper "
                        "never asked for",
                        h[0]);
  uint32_t n = be32(h + 1);
  if (n > f->max_msg)
    return rp_error_set(err, RP_EPROTO,
                        "a gRPC message of %u bytes, over the limit of %zu", n,
                        f->max_msg);
  *msg_len = n;
  return 0;
}

/* Buffers part of a message: never past its cap, as the header was checked
 * against max_msg before any byte of the message is added. */
static void
buffer(struct rp_grpc_frames *f, const uint8_t *data, size_t n)
{
  rp_buf_add(&f->msg, data, n);
}

int
rp_grpc_frames_feed(struct rp_grpc_frames *f, const void *data, size_t n,
                    int (*msg_cb)(void *arg, const uint8_t *msg, size_t len),
                    void *arg, struct rp_error **err)
{
  const uint8_t *p = data;
  while (n > 0) {
    size_t msg_len;
    if (f->msg.len > 0 || n < FRAME_HEADER) {
      /* A message begun in an earlier chunk (or a header cut short): first
       * complete the header, then the message, in the buffer. */
      if (f->msg.len < FRAME_HEADER) {
        size_t take = FRAME_HEADER - f->msg.len;
        if (take > n)
          take = n;
        buffer(f, p, take);
        p += take;
        n -= take;
        if (f->msg.len < FRAME_HEADER)
          return 0;
      }
      if (check_header(f, (const uint8_t *)f->msg.p, &msg_len, err) < 0)
        return -1;
      size_t have = f->msg.len - FRAME_HEADER;
      size_t take = msg_len - have;
      if (take > n)
        take = n;
      buffer(f, p, take);
      p += take;
      n -= take;
      if (f->msg.len - FRAME_HEADER < msg_len)
        return 0;
      /* Taken out of the buffer, which is empty again before msg_cb. */
      cleanup_free uint8_t *whole = (uint8_t *)rp_buf_take(&f->msg);
      if (msg_cb(arg, whole + FRAME_HEADER, msg_len) != 0)
        return 1;
      continue;
    }
    /* The common case: a whole header in this chunk. */
    if (check_header(f, p, &msg_len, err) < 0)
      return -1;
    if (n - FRAME_HEADER < msg_len) {
      buffer(f, p, n);
      return 0;
    }
    if (msg_cb(arg, p + FRAME_HEADER, msg_len) != 0)
      return 1;
    p += FRAME_HEADER + msg_len;
    n -= FRAME_HEADER + msg_len;
  }
  return 0;
}

uint8_t *
rp_grpc_frame_pack(const ProtobufCMessage *m, size_t *len_out)
{
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = rp_xmalloc(FRAME_HEADER + n + 1);
  buf[0] = 0;
  buf[1] = (uint8_t)(n >> 24);
  buf[2] = (uint8_t)(n >> 16);
  buf[3] = (uint8_t)(n >> 8);
  buf[4] = (uint8_t)n;
  protobuf_c_message_pack(m, buf + FRAME_HEADER);
  *len_out = FRAME_HEADER + n;
  return buf;
}

/* --- status -------------------------------------------------------------- */

static bool
header_is(const char *line, size_t len, const char *name, const char **value,
          size_t *value_len)
{
  size_t n = strlen(name);
  if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
    return false;
  const char *v = line + n + 1;
  const char *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  *value = v;
  *value_len = (size_t)(end - v);
  return true;
}

void
rp_grpc_status_header(struct rp_grpc_status *s, const char *line, size_t len)
{
  const char *v;
  size_t vl;
  if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
    const char *sp = memchr(line, ' ', len);
    if (sp) {
      char num[8] = "";
      size_t k = (size_t)(line + len - sp - 1);
      memcpy(num, sp + 1, k < sizeof(num) - 1 ? k : sizeof(num) - 1);
      s->http = strtol(num, NULL, 10);
    }
    return;
  }
  if (header_is(line, len, "grpc-status", &v, &vl)) {
    char num[12] = "";
    memcpy(num, v, vl < sizeof(num) - 1 ? vl : sizeof(num) - 1);
    char *end;
    long code = strtol(num, &end, 10);
    s->has_grpc = end != num && *end == '\0' && code >= 0 && code < 1000;
    s->grpc = s->has_grpc ? (int)code : RP_GRPC_UNKNOWN;
    if (!s->has_grpc) {
      /* Say what came rather than guess. */
      free(s->message);
      s->message = rp_xasprintf("unreadable grpc-status \"%s\"", num);
      s->has_grpc = true;
    }
    return;
  }
  if (header_is(line, len, "grpc-message", &v, &vl)) {
    free(s->message);
    s->message = rp_grpc_percent_decode(v, vl);
  }
}

int
rp_grpc_status_check(const struct rp_grpc_status *s, const char *method,
                     struct rp_error **err)
{
  char m[128];
  rp_grpc_short_method(method, m, sizeof(m));
  if (s->http != 200)
    return rp_error_set(err, RP_EPROTO,
                        "containerd: %s: HTTP status %ld, not a gRPC answer", m,
                        s->http);
  if (!s->has_grpc)
    return rp_error_set(err, RP_EPROTO,
                        "containerd: %s: the answer has no grpc-status", m);
  if (s->grpc == RP_GRPC_OK)
    return 0;
  const char *name = rp_grpc_code_name(s->grpc);
  char num[24];
  if (!name) {
    snprintf(num, sizeof(num), "code %d", s->grpc);
    name = num;
  }
  if (s->message && s->message[0])
    return rp_error_set(err, rp_grpc_code_error(s->grpc),
                        "containerd: %s: %s: %s", m, name, s->message);
  return rp_error_set(err, rp_grpc_code_error(s->grpc), "containerd: %s: %s", m,
                      name);
}

void
rp_grpc_status_clear(struct rp_grpc_status *s)
{
  free(s->message);
  memset(s, 0, sizeof(*s));
}

/* --- calls --------------------------------------------------------------- */

struct call {
  char *method;  /* owned: the full path */
  uint8_t *body; /* owned: the framed request, sent until the callback */
  size_t body_len;
  char *ns_header; /* owned */
  struct rp_grpc_status st;
  /* unary */
  rp_ctrd_call_cb cb;
  /* stream */
  struct rp_grpc_frames fr;
  int (*on_msg)(void *arg, const uint8_t *msg, size_t len);
  void (*done_cb)(void *arg, const struct rp_error *err);
  struct rp_error *stream_err; /* owned: why the stream was cut by us */
  bool consumer_stopped;
  void *arg;
};

static void
call_free(struct call *k)
{
  free(k->method);
  free(k->body);
  free(k->ns_header);
  rp_grpc_status_clear(&k->st);
  rp_grpc_frames_clear(&k->fr);
  rp_error_free(k->stream_err);
  free(k);
}

static void
on_header(void *arg, const char *line, size_t len)
{
  struct call *k = arg;
  rp_grpc_status_header(&k->st, line, len);
}

/* The transport error, in the same words as a gRPC one. */
static struct rp_error *
transport_error(const struct call *k, const struct rp_error *err)
{
  char m[128];
  struct rp_error *e = NULL;
  rp_error_set(&e, err->code, "containerd: %s: %s",
               rp_grpc_short_method(k->method, m, sizeof(m)), err->message);
  return e;
}

static void
unary_done_cb(void *arg, const struct rp_http_response *resp,
              const struct rp_error *err)
{
  struct call *k = arg;
  cleanup_error struct rp_error *e = NULL;
  const uint8_t *msg = NULL;
  size_t msg_len = 0;
  char m[128];
  if (err) {
    e = transport_error(k, err);
  } else if (rp_grpc_status_check(&k->st, k->method, &e) == 0) {
    const uint8_t *b = (const uint8_t *)resp->body;
    size_t n = resp->body_len;
    if (n < FRAME_HEADER || b[0] != 0 || be32(b + 1) > n - FRAME_HEADER) {
      rp_error_set(&e, RP_EPROTO,
                   "containerd: %s: the answer is not one gRPC message "
                   "(%zu bytes)",
                   rp_grpc_short_method(k->method, m, sizeof(m)), n);
    } else {
      msg = b + FRAME_HEADER;
      msg_len = be32(b + 1);
    }
  }
  k->cb(k->arg, e ? NULL : msg, e ? 0 : msg_len, e);
  call_free(k);
}

static struct call *
call_new(const char *ns, const char *method, const ProtobufCMessage *req)
{
  struct call *k = rp_xcalloc(1, sizeof(*k));
  k->method = rp_xstrdup(method);
  k->body = rp_grpc_frame_pack(req, &k->body_len);
  if (ns)
    k->ns_header = rp_xasprintf("containerd-namespace: %s", ns);
  return k;
}

static int stream_data(void *arg, const char *data, size_t len);

static int
send_call(struct rp_ctrd *c, struct call *k, int64_t timeout_ms, bool stream,
          rp_http_cb done, struct rp_http_xfer **xfer, struct rp_error **err)
{
  const char *headers[] = {"Content-Type: application/grpc", "TE: trailers",
                           k->ns_header, NULL};
  struct rp_http_request req = {
      .method = "POST",
      .path = k->method,
      .headers = headers,
      .body = k->body,
      .body_len = k->body_len,
      .timeout_ms = timeout_ms,
      .max_body = RP_CTRD_MAX_MESSAGE + FRAME_HEADER,
      .on_data = NULL,
      .on_header = on_header,
  };
  if (stream)
    req.on_data = stream_data;
  if (!c || !c->p || !c->p->http ||
      rp_http_send(c->p->http, &c->ep, &req, done, k, xfer) < 0) {
    char m[128];
    return rp_error_set(err, EIO, "containerd: %s: cannot start the request",
                        rp_grpc_short_method(k->method, m, sizeof(m)));
  }
  return 0;
}

int
rp_ctrd_call(struct rp_ctrd *c, const char *ns, const char *method,
             const ProtobufCMessage *req, int64_t timeout_ms,
             rp_ctrd_call_cb cb, void *arg, struct rp_error **err)
{
  struct call *k = call_new(ns, method, req);
  k->cb = cb;
  k->arg = arg;
  if (send_call(c, k, timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS, false,
                unary_done_cb, NULL, err) < 0) {
    call_free(k);
    return -1;
  }
  return 0;
}

static int
stream_msg_cb(void *arg, const uint8_t *msg, size_t len)
{
  struct call *k = arg;
  if (k->on_msg(k->arg, msg, len) != 0) {
    k->consumer_stopped = true;
    return 1;
  }
  return 0;
}

/* The HTTP client's on_data for streams: whole messages to the consumer. */
static int
stream_data(void *arg, const char *data, size_t len)
{
  struct call *k = arg;
  int rc =
      rp_grpc_frames_feed(&k->fr, data, len, stream_msg_cb, k, &k->stream_err);
  return rc != 0;
}

static void
stream_done_cb(void *arg, const struct rp_http_response *resp,
               const struct rp_error *err)
{
  struct call *k = arg;
  cleanup_error struct rp_error *e = NULL;
  char m[128];
  rp_grpc_short_method(k->method, m, sizeof(m));
  if (k->stream_err) {
    rp_error_set(&e, k->stream_err->code, "containerd: %s: %s", m,
                 k->stream_err->message);
  } else if (k->consumer_stopped) {
    rp_error_set(&e, RP_ECANCELED, "containerd: %s: stopped by the receiver",
                 m);
  } else if (err) {
    e = transport_error(k, err);
  } else if (rp_grpc_status_check(&k->st, k->method, &e) == 0 &&
             rp_grpc_frames_partial(&k->fr)) {
    rp_error_set(&e, RP_EPROTO,
                 "containerd: %s: the stream ended inside a message", m);
  }
  (void)resp;
  k->done_cb(k->arg, e);
  call_free(k);
}

int
rp_ctrd_stream(struct rp_ctrd *c, const char *ns, const char *method,
               const ProtobufCMessage *req, int64_t timeout_ms,
               int (*on_msg)(void *arg, const uint8_t *msg, size_t len),
               void (*done_cb)(void *arg, const struct rp_error *err),
               void *arg, struct rp_http_xfer **xfer, struct rp_error **err)
{
  struct call *k = call_new(ns, method, req);
  k->on_msg = on_msg;
  k->done_cb = done_cb;
  k->arg = arg;
  rp_grpc_frames_init(&k->fr, 0);
  if (send_call(c, k, timeout_ms, true, stream_done_cb, xfer, err) < 0) {
    call_free(k);
    return -1;
  }
  return 0;
}
