/* HTTP client on the loop: libcurl's multi interface driven by libuv, in the
 * manner of curl's docs/examples/multi-uv.c.  curl tells us which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION: one uv_poll_t per socket) and when to call
 * it back (CURLMOPT_TIMERFUNCTION: one uv_timer_t); each readiness or timer
 * event goes to curl_multi_socket_action, and curl_multi_info_read then
 * tells which transfers are complete.
 *
 * Re-entrancy.  libcurl refuses to be called from inside its own callbacks
 * (the write and header callbacks run inside curl_multi_socket_action), yet
 * our callers may start, cancel or close from anywhere, completion callbacks
 * included.  So:
 *   - h->in_curl is true while curl_multi_socket_action runs.  A transfer
 *     started then is queued (not added to the multi handle) and added once
 *     curl has returned; a transfer finished then (cancelled) has its
 *     callback run at once, as promised, but its easy handle is parked on
 *     h->dead and removed once curl has returned.
 *   - h->depth counts our own frames that are running user callbacks.
 *     Closing the client (curl_multi_cleanup, closing the handles) waits
 *     until depth is back to zero, so no frame below ever sees h half torn
 *     down.
 *   - A finished transfer is marked done and unlinked before its callback
 *     runs: a cancel of it from inside its own callback is a no-op, and the
 *     write and header callbacks refuse data for it (which makes curl abort
 *     it). */
#include "http_client.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "buf.h"
#include "file_trust.h"
#include "util.h"

#ifndef REAPER_VERSION
#define REAPER_VERSION "dev"
#endif

#define DEFAULT_MAX_BODY ((size_t)16 << 20)
/* An engine that does not accept a connection in 5 s is down; waiting
 * longer only delays the error (and the reconnect). */
#define CONNECT_TIMEOUT_MS 5000L

/* One socket curl asked us to watch.  Freed in its close callback. */
struct sock_ctx {
  uv_poll_t poll; /* poll.data = this */
  curl_socket_t fd;
  struct rp_http *h;            /* borrowed */
  struct sock_ctx *prev, *next; /* h->socks, until the close callback */
  bool closing;
};

struct rp_http_xfer {
  struct rp_http *h;                /* borrowed */
  struct rp_http_xfer *prev, *next; /* h->live, then h->dead if parked */
  CURL *easy;                       /* owned */
  struct curl_slist *headers;       /* owned: curl does not copy it */
  char *what;        /* owned: "GET /v1.41/_ping", the context of errors */
  char *unix_socket; /* owned copy or NULL, named in connect errors */
  rp_http_cb cb;
  void *arg;
  int (*on_data)(void *arg, const char *data, size_t len);
  void (*on_header)(void *arg, const char *line, size_t len);
  struct rp_buf body; /* the buffered body, capped at the request's
                         max_body */
  bool added;         /* in the multi handle */
  bool done;          /* callback has run (or is running) */
  bool over_cap;      /* the body passed max_body: aborted */
  bool stopped;       /* on_data asked to stop: aborted */
  char *refused;      /* owned: why its TLS files are not to be used, or NULL */
  char errbuf[CURL_ERROR_SIZE];
};

struct rp_http {
  uv_loop_t *loop; /* borrowed */
  CURLM *multi;    /* owned; NULL once cleaned up */
  uv_timer_t timer;
  struct rp_http_xfer *live; /* callback not yet run */
  struct rp_http_xfer *dead; /* done inside curl; easy not yet removed */
  struct sock_ctx *socks;    /* every poll handle until its close callback */
  size_t active;             /* entries in live */
  uint64_t sent;             /* transfers started since rp_http_new */
  size_t unadded;            /* entries in live started inside curl */
  int depth;
  bool in_curl;
  bool closing;   /* rp_http_close was called: refuse new transfers */
  bool finalized; /* multi cleaned up, handles closing */
  bool timer_closed;
  char **trusted; /* owned: TLS files found trustworthy (file_trust.h) */
  size_t n_trusted;
};

static char empty_body[1];

/* Intrusive lists, so that a transfer costs one allocation of our own. */
static void
xfer_link(struct rp_http_xfer **head, struct rp_http_xfer *x)
{
  x->prev = NULL;
  x->next = *head;
  if (*head)
    (*head)->prev = x;
  *head = x;
}

static void
xfer_unlink(struct rp_http_xfer **head, struct rp_http_xfer *x)
{
  if (x->prev)
    x->prev->next = x->next;
  else
    *head = x->next;
  if (x->next)
    x->next->prev = x->prev;
  x->prev = x->next = NULL;
}

void
rp_http_endpoint_clear(struct rp_http_endpoint *ep)
{
  if (ep == NULL)
    return;
  free(ep->base_url);
  free(ep->unix_socket);
  free(ep->ca_file);
  free(ep->cert_file);
  free(ep->key_file);
  *ep = (struct rp_http_endpoint){0};
}

static void
xfer_free(struct rp_http_xfer *x)
{
  if (x == NULL)
    return;
  if (x->easy)
    curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->headers);
  free(x->what);
  free(x->unix_socket);
  rp_buf_free(&x->body);
  free(x->refused);
  free(x);
}

/* ---- libuv side: sockets and the timer ---- */

static void
maybe_free(struct rp_http *h)
{
  if (!h->finalized || !h->timer_closed || h->socks != NULL)
    return;
  for (size_t i = 0; i < h->n_trusted; i++)
    free(h->trusted[i]);
  free(h->trusted);
  free(h);
}

static void
sock_close_cb(uv_handle_t *handle)
{
  struct sock_ctx *s = handle->data;
  struct rp_http *h = s->h;
  if (s->prev)
    s->prev->next = s->next;
  else
    h->socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
  free(s);
  maybe_free(h);
}

static void
sock_close(struct sock_ctx *s)
{
  if (s->closing)
    return;
  s->closing = true;
  uv_close((uv_handle_t *)&s->poll, sock_close_cb);
}

static void settle(struct rp_http *h);
static void dispatch(struct rp_http *h);

/* One call into curl for an event, then the completions it produced. */
static void
drive(struct rp_http *h, curl_socket_t fd, int flags)
{
  int running = 0;
  h->depth++;
  h->in_curl = true;
  curl_multi_socket_action(h->multi, fd, flags, &running);
  h->in_curl = false;
  dispatch(h);
  h->depth--;
  settle(h);
}

static void
poll_cb(uv_poll_t *poll, int status, int events)
{
  struct sock_ctx *s = poll->data;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  drive(s->h, s->fd, flags);
}

static void
timer_cb(uv_timer_t *timer)
{
  drive(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

static void
timer_close_cb(uv_handle_t *handle)
{
  struct rp_http *h = handle->data;
  h->timer_closed = true;
  maybe_free(h);
}

/* CURLMOPT_SOCKETFUNCTION: only (re)arms uv handles, never calls back into
 * curl or the user. */
static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  struct rp_http *h = userp;
  struct sock_ctx *s = socketp;

  if (what == CURL_POLL_REMOVE) {
    /* curl forgets the socket's pointer itself after this call. */
    if (s)
      sock_close(s);
    return 0;
  }
  if (s == NULL) {
    s = rp_xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->h = h;
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    s->next = h->socks;
    if (h->socks)
      h->socks->prev = s;
    h->socks = s;
    curl_multi_assign(h->multi, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  if (uv_poll_start(&s->poll, events, poll_cb) != 0)
    return -1;
  return 0;
}

/* CURLMOPT_TIMERFUNCTION */
static int
timerfn_cb(CURLM *multi, long timeout_ms, void *userp)
{
  struct rp_http *h = userp;
  if (h->finalized)
    return 0;
  if (timeout_ms < 0)
    uv_timer_stop(&h->timer);
  else
    /* 0 means "now": a 0 ms uv timer re-armed from its own callback would
     * run again in the same loop iteration without polling, so wait 1 ms as
     * multi-uv.c does. */
    uv_timer_start(&h->timer, timer_cb, timeout_ms ? (uint64_t)timeout_ms : 1,
                   0);
  return 0;
}

/* ---- curl's data callbacks (run inside curl_multi_socket_action) ---- */

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
  struct rp_http_xfer *x = userp;
  size_t n = size * nmemb;

  if (x->done)
    return 0; /* cancelled: make curl abort it */
  if (x->on_data) {
    int rc = x->on_data(x->arg, data, n);
    if (x->done)
      return 0;
    if (rc != 0) {
      x->stopped = true;
      return 0;
    }
    return n;
  }
  if (rp_buf_add(&x->body, data, n) != 0) {
    x->over_cap = true;
    return 0;
  }
  return n;
}

static size_t
header_cb(char *line, size_t size, size_t nitems, void *userp)
{
  struct rp_http_xfer *x = userp;
  size_t n = size * nitems;

  if (x->done)
    return 0;
  if (x->on_header) {
    size_t len = n;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      len--;
    /* The blank line that ends a header block carries nothing. */
    if (len > 0)
      x->on_header(x->arg, line, len);
    if (x->done)
      return 0;
  }
  return n;
}

/* ---- completion ---- */

/* Marks x done and runs its callback.  Inside curl the easy handle cannot
 * be removed, so x is parked on h->dead and freed by settle(). */
static void
finish(struct rp_http_xfer *x, const struct rp_http_response *resp,
       const struct rp_error *err)
{
  struct rp_http *h = x->h;
  bool park = h->in_curl && x->added;

  x->done = true;
  xfer_unlink(&h->live, x);
  h->active--;
  if (!x->added)
    h->unadded--;
  if (x->added && !park) {
    curl_multi_remove_handle(h->multi, x->easy);
    x->added = false;
  }
  if (park)
    xfer_link(&h->dead, x);

  h->depth++;
  x->cb(x->arg, resp, err);
  h->depth--;

  if (!park)
    xfer_free(x);
}

static void fail(struct rp_http_xfer *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct rp_http_xfer *x, int code, const char *fmt, ...)
{
  cleanup_error struct rp_error *err = NULL;
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&err, code, fmt, ap);
  va_end(ap);
  finish(x, NULL, err);
}

static void
complete(struct rp_http_xfer *x, CURLcode rc)
{
  const char *detail = x->errbuf;
  const char *sep = x->errbuf[0] ? ": " : "";
  long os_errno = 0;

  if (rc == CURLE_OK) {
    struct rp_http_response resp = {.body = x->body.p ? x->body.p : empty_body,
                                    .body_len = x->body.len};
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &resp.status);
    finish(x, &resp, NULL);
    return;
  }
  if (x->refused) {
    fail(x, RP_ECONFIG, "%s: %s", x->what, x->refused);
  } else if (x->over_cap) {
    fail(x, EMSGSIZE, "%s: response body over %zu bytes", x->what, x->body.max);
  } else if (x->stopped) {
    fail(x, RP_ECANCELED, "%s: stopped by the receiver", x->what);
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    fail(x, RP_ETIMEOUT, "%s: %s%s%s", x->what, curl_easy_strerror(rc), sep,
         detail);
  } else {
    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
    int code = EIO;
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
      code = os_errno > 0 ? (int)os_errno : ECONNREFUSED;
    if (rc == CURLE_COULDNT_CONNECT && x->unix_socket)
      /* curl's own text names "localhost port 80", which is no help when
       * the transport is a socket file. */
      fail(x, code, "%s: %s: connect to %s: %s", x->what,
           curl_easy_strerror(rc), x->unix_socket, strerror(code));
    else
      fail(x, code, "%s: %s%s%s", x->what, curl_easy_strerror(rc), sep, detail);
  }
}

static void
dispatch(struct rp_http *h)
{
  CURLMsg *msg;
  int left;

  while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    /* msg dies with curl_multi_remove_handle: copy what we need. */
    CURL *easy = msg->easy_handle;
    CURLcode rc = msg->data.result;
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    struct rp_http_xfer *x = (struct rp_http_xfer *)(void *)priv;
    if (x == NULL || x->done)
      continue; /* parked: settle() removes it */
    complete(x, rc);
  }
}

static void
finalize(struct rp_http *h)
{
  h->finalized = true;
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  /* Sockets curl did not hand back while cleaning up (its connection
   * cache) are closed here; the close callbacks free them, then h. */
  for (struct sock_ctx *s = h->socks; s; s = s->next)
    sock_close(s);
  uv_close((uv_handle_t *)&h->timer, timer_close_cb);
}

/* Work that must wait until no frame of ours is inside curl or a user
 * callback: removing parked handles, adding queued ones, closing. */
static void
settle(struct rp_http *h)
{
  if (h->depth > 0 || h->finalized)
    return;
  h->depth++;
  while (h->dead) {
    struct rp_http_xfer *x = h->dead;
    xfer_unlink(&h->dead, x);
    if (x->added)
      curl_multi_remove_handle(h->multi, x->easy);
    xfer_free(x);
  }
  /* A failed add runs a callback that may change the list: rescan. */
  while (h->unadded > 0 && !h->closing) {
    struct rp_http_xfer *x = h->live;
    while (x && x->added)
      x = x->next;
    if (x == NULL)
      break;
    if (curl_multi_add_handle(h->multi, x->easy) == CURLM_OK) {
      x->added = true;
      h->unadded--;
    } else {
      fail(x, EIO, "%s: cannot start the transfer", x->what);
    }
  }
  h->depth--;
  if (h->closing)
    finalize(h);
}

/* ---- public ---- */

int
rp_http_new(uv_loop_t *loop, struct rp_http **out, struct rp_error **err)
{
  static bool curl_ready;

  if (!curl_ready) {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
      return rp_error_set(err, EIO, "http: curl_global_init: %s",
                          curl_easy_strerror(rc));
    curl_ready = true;
  }
  struct rp_http *h = rp_xcalloc(1, sizeof(*h));
  h->loop = loop;
  h->multi = curl_multi_init();
  if (h->multi == NULL) {
    free(h);
    return rp_error_set(err, EIO, "http: curl_multi_init failed");
  }
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timerfn_cb);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  *out = h;
  return 0;
}

static bool
has_header(const char *const *headers, const char *name)
{
  size_t n = strlen(name);
  for (; headers && *headers; headers++)
    if (strncasecmp(*headers, name, n) == 0 && (*headers)[n] == ':')
      return true;
  return false;
}

static int
add_header(struct rp_http_xfer *x, const char *line)
{
  struct curl_slist *l = curl_slist_append(x->headers, line);
  if (l == NULL)
    return -1;
  x->headers = l;
  return 0;
}

/* Every socket to an engine is close-on-exec from its first instant: a
 * program reaper runs (src/child.c closes them all anyway) or that a library
 * might exec must never inherit a connection to an engine's socket, which is
 * root on the machine.  curl makes them without SOCK_CLOEXEC otherwise. */
static curl_socket_t
open_socket_cb(void *clientp, curlsocktype purpose,
               struct curl_sockaddr *address)
{
  struct rp_http_xfer *x = clientp;
  (void)purpose;
  /* Refused TLS files: no connection at all, and complete() says why. */
  if (x->refused)
    return CURL_SOCKET_BAD;
  return socket(address->family, address->socktype | SOCK_CLOEXEC,
                address->protocol);
}

/* The TLS files of an endpoint speak for reaper to an engine that is root
 * on its machine: a key that another user can read, or a CA or certificate
 * that another user can replace, is refused (file_trust.h).  Each file is
 * checked until it passes once; a refused one again at each transfer, so
 * that fixing it needs no restart. */
static void
check_tls_files(struct rp_http_xfer *x, const struct rp_http_endpoint *ep)
{
  struct rp_http *h = x->h;
  const struct {
    const char *path, *what;
    unsigned flags;
  } files[] = {
      {ep->ca_file, "TLS CA certificate", 0},
      {ep->cert_file, "TLS client certificate", 0},
      {ep->key_file, "TLS client key", RP_TRUST_SECRET},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(files) && !x->refused; i++) {
    if (!files[i].path)
      continue;
    bool known = false;
    for (size_t j = 0; j < h->n_trusted && !known; j++)
      known = strcmp(h->trusted[j], files[i].path) == 0;
    if (known)
      continue;
    cleanup_error struct rp_error *err = NULL;
    if (rp_file_trust_check(files[i].path, files[i].what, files[i].flags,
                            &err) != 0) {
      x->refused = RP_STEAL(err->message);
      continue;
    }
    h->trusted =
        rp_xrealloc(h->trusted, (h->n_trusted + 1) * sizeof(*h->trusted));
    h->trusted[h->n_trusted++] = rp_xstrdup(files[i].path);
  }
}

#define SETOPT(easy, opt, val)                                                 \
  do {                                                                         \
    if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK)                    \
      goto fail;                                                               \
  } while (0)

/* Builds the easy handle; -1 when curl refuses an option. */
static int
xfer_setup(struct rp_http_xfer *x, const struct rp_http_endpoint *ep,
           const struct rp_http_request *req)
{
  CURL *e = x->easy;
  cleanup_free char *url = rp_xasprintf("%s%s", ep->base_url, req->path);
  bool is_get = strcmp(req->method, "GET") == 0;
  bool is_head = strcmp(req->method, "HEAD") == 0;
  bool is_post = strcmp(req->method, "POST") == 0;

  SETOPT(e, CURLOPT_URL, url);
  SETOPT(e, CURLOPT_PRIVATE, (void *)x);
  SETOPT(e, CURLOPT_ERRORBUFFER, x->errbuf);
  /* Signals would interrupt the loop's own handling; timeouts are ours. */
  SETOPT(e, CURLOPT_NOSIGNAL, 1L);
  SETOPT(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
  SETOPT(e, CURLOPT_OPENSOCKETDATA, (void *)x);
  SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
  if (req->timeout_ms > 0)
    SETOPT(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
  /* A stream waits for events for hours: notice a peer that vanished. */
  SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT(e, CURLOPT_USERAGENT, "reaper/" REAPER_VERSION);
  SETOPT(e, CURLOPT_WRITEFUNCTION, write_cb);
  SETOPT(e, CURLOPT_WRITEDATA, (void *)x);
  SETOPT(e, CURLOPT_HEADERFUNCTION, header_cb);
  SETOPT(e, CURLOPT_HEADERDATA, (void *)x);
  if (ep->unix_socket)
    SETOPT(e, CURLOPT_UNIX_SOCKET_PATH, ep->unix_socket);
  if (ep->http2_prior_knowledge)
    SETOPT(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
  if (ep->own_connection) {
    SETOPT(e, CURLOPT_FRESH_CONNECT, 1L);
    SETOPT(e, CURLOPT_FORBID_REUSE, 1L);
  }
  if (ep->ca_file)
    SETOPT(e, CURLOPT_CAINFO, ep->ca_file);
  if (ep->cert_file)
    SETOPT(e, CURLOPT_SSLCERT, ep->cert_file);
  if (ep->key_file)
    SETOPT(e, CURLOPT_SSLKEY, ep->key_file);
  SETOPT(e, CURLOPT_SSL_VERIFYPEER, ep->verify_peer ? 1L : 0L);
  SETOPT(e, CURLOPT_SSL_VERIFYHOST, ep->verify_peer ? 2L : 0L);

  if (is_get && req->body == NULL) {
    SETOPT(e, CURLOPT_HTTPGET, 1L);
  } else if (is_head) {
    SETOPT(e, CURLOPT_NOBODY, 1L);
  } else if (req->body != NULL || is_post) {
    /* Binary-safe: the length is given, never strlen'd.  A POST without a
     * body still sends Content-Length: 0, which engines expect. */
    SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    SETOPT(e, CURLOPT_POSTFIELDS, req->body ? req->body : (const void *)"");
    if (!is_post)
      SETOPT(e, CURLOPT_CUSTOMREQUEST, req->method);
  } else {
    SETOPT(e, CURLOPT_CUSTOMREQUEST, req->method);
  }

  for (const char *const *hl = req->headers; hl && *hl; hl++)
    if (add_header(x, *hl) < 0)
      goto fail;
  /* No "100-continue" round trip for large bodies. */
  if (add_header(x, "Expect:") < 0)
    goto fail;
  /* curl would label a POST body application/x-www-form-urlencoded, which
   * an engine rejects on its JSON endpoints: say nothing instead. */
  if (!has_header(req->headers, "Content-Type") &&
      add_header(x, "Content-Type:") < 0)
    goto fail;
  SETOPT(e, CURLOPT_HTTPHEADER, x->headers);
  return 0;
fail:
  return -1;
}

int
rp_http_send(struct rp_http *h, const struct rp_http_endpoint *ep,
             const struct rp_http_request *req, rp_http_cb cb, void *arg,
             struct rp_http_xfer **xfer_out)
{
  if (h == NULL || h->closing || ep == NULL || ep->base_url == NULL ||
      req == NULL || req->method == NULL || req->path == NULL || cb == NULL)
    return -1;

  struct rp_http_xfer *x = rp_xcalloc(1, sizeof(*x));
  x->h = h;
  x->cb = cb;
  x->arg = arg;
  x->on_data = req->on_data;
  x->on_header = req->on_header;
  rp_buf_init(&x->body, req->max_body ? req->max_body : DEFAULT_MAX_BODY);
  x->what = rp_xasprintf("%s %s", req->method, req->path);
  x->unix_socket = ep->unix_socket ? rp_xstrdup(ep->unix_socket) : NULL;
  x->easy = curl_easy_init();
  check_tls_files(x, ep);
  if (x->easy == NULL || xfer_setup(x, ep, req) < 0) {
    xfer_free(x);
    return -1;
  }
  if (!h->in_curl) {
    if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
      xfer_free(x);
      return -1;
    }
    x->added = true;
  } else {
    h->unadded++;
  }
  xfer_link(&h->live, x);
  h->active++;
  h->sent++;
  if (xfer_out)
    *xfer_out = x;
  return 0;
}

void
rp_http_cancel(struct rp_http_xfer *x)
{
  if (x == NULL || x->done)
    return;
  struct rp_http *h = x->h;
  h->depth++;
  fail(x, RP_ECANCELED, "%s: cancelled", x->what);
  h->depth--;
  settle(h);
}

size_t
rp_http_active(const struct rp_http *h)
{
  return h ? h->active : 0;
}

uint64_t
rp_http_sent(const struct rp_http *h)
{
  return h ? h->sent : 0;
}

void
rp_http_close(struct rp_http *h)
{
  if (h == NULL || h->closing)
    return;
  h->closing = true;
  h->depth++;
  /* Callbacks run here may cancel other transfers or try to start new
   * ones (refused): always take the head again. */
  while (h->live)
    fail(h->live, RP_ECANCELED, "%s: cancelled", h->live->what);
  h->depth--;
  settle(h);
}
