/* The status listener: uv_tcp, one request per connection, parsed with
 * http_parser, answered from the agent's state and closed.
 *
 * A connection lives from accept to the close callbacks of its two handles
 * (the socket and its deadline timer).  The timer bounds the whole life of
 * a connection, so a client that sends slowly, or never reads, is cut off.
 * After the answer is written the socket is shut down for writing and read
 * until the client closes (or a short linger runs out): closing with
 * unread bytes would reset the connection and could lose the answer. */
#include "status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "file_trust.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_MAX_HEADER_BYTES 8192
/* After the answer, how long a client may take to close its end. */
#define LINGER_MS 2000
/* Recycles the page and /status show. */
#define RECENT_MAX 50
/* Recycle begins remembered for in-flight recycles; ended ones are
 * dropped, so this only bounds what a lost end line could leave behind. */
#define BEGINS_MAX 1024
#define TOKEN_MAX 4096
#define URL_MAX 2048
#define AUTH_MAX (TOKEN_MAX + 64)

struct begin {
  char *key; /* owned: "provider\nid" */
  int64_t wall_ms;
};

struct conn;

struct rp_status {
  uv_loop_t *loop; /* borrowed */
  uv_tcp_t server;
  struct rp_status_source src;
  struct rp_status_limits limits;
  unsigned char token_sha[SHA256_DIGEST_LENGTH];
  bool has_token;
  int port;
  struct rp_metrics *metrics; /* owned */
  struct conn *conns;         /* owned list */
  size_t n_conns;
  size_t open_handles; /* ours not yet closed: s is freed at 0 */
  bool closing;
  json_t *recent;       /* owned array, newest first */
  struct begin *begins; /* owned array */
  size_t n_begins;
};

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  struct rp_status *s; /* borrowed */
  struct conn *prev, *next;
  http_parser parser;
  char rbuf[4096];
  size_t header_bytes;
  char url[URL_MAX + 1];
  size_t url_len;
  bool url_overflow;
  char field[16]; /* the header name being read; only short ones matter */
  size_t field_len;
  bool in_value;
  bool field_is_auth;
  char auth[AUTH_MAX + 1];
  size_t auth_len;
  bool auth_overflow;
  int n_auth;
  bool headers_done;
  bool answered;
  bool closing;
  int open_handles;
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  char *response; /* owned while it is written */
};

static void status_release(struct rp_status *s);

/* --- address and token -------------------------------------------------- */

static int
parse_listen(const char *listen, struct sockaddr_storage *ss,
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
  } else if (strcmp(host, "localhost") == 0) {
    rc = uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)ss);
  } else {
    rc = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
  }
  if (rc != 0)
    return rp_error_set(err, RP_ECONFIG,
                        "listen '%s': the host must be an IPv4 address, an "
                        "IPv6 address in brackets or localhost",
                        listen);
  return 0;
}

int
rp_status_read_token(const char *path, char **out, struct rp_error **err)
{
  /* Whoever can read the token can read the agent's state; whoever can
   * replace it can lock its operators out. */
  if (access(path, F_OK) == 0 &&
      rp_file_trust_check(path, "listen token file", RP_TRUST_SECRET, err) != 0)
    return -1;
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return rp_error_set(err, errno == ENOENT ? RP_ECONFIG : errno,
                        "listen token file %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0)
    return rp_error_set(err, errno, "listen token file %s: %s", path,
                        strerror(errno));
  if (!S_ISREG(st.st_mode))
    return rp_error_set(err, RP_ECONFIG,
                        "listen token file %s: not a regular file", path);
  char buf[TOKEN_MAX + 2];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return rp_error_set(err, errno, "listen token file %s: %s", path,
                          strerror(errno));
    if (r == 0)
      break;
    n += (size_t)r;
    if (n == sizeof(buf) - 1)
      break;
  }
  buf[n] = '\0';
  char *b = buf, *e = buf + n;
  while (b < e && strchr(" \t\r\n", *b))
    b++;
  while (e > b && strchr(" \t\r\n", e[-1]))
    e--;
  if (e - b > TOKEN_MAX)
    return rp_error_set(err, RP_ECONFIG,
                        "listen token file %s: longer than %d bytes", path,
                        TOKEN_MAX);
  if (e == b)
    return rp_error_set(err, RP_ECONFIG, "listen token file %s: empty", path);
  for (const char *p = b; p < e; p++)
    if (*p < 0x21 || *p > 0x7e)
      return rp_error_set(err, RP_ECONFIG,
                          "listen token file %s: the token must be one word "
                          "of printable ASCII",
                          path);
  *out = rp_xstrndup(b, (size_t)(e - b));
  explicit_bzero(buf, sizeof(buf));
  return 0;
}

/* Whether `Authorization: Bearer TOKEN` carries the token.  The digests
 * are compared, in constant time, so that neither the token's bytes nor
 * its length leak through timing. */
static bool
authorized(const struct rp_status *s, const struct conn *c)
{
  if (!s->has_token)
    return true;
  if (c->n_auth != 1 || c->auth_overflow)
    return false;
  const char *v = c->auth;
  while (*v == ' ' || *v == '\t')
    v++;
  if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
    return false;
  v += 6;
  while (*v == ' ' || *v == '\t')
    v++;
  size_t n = strlen(v);
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  unsigned char sha[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)v, n, sha);
  return CRYPTO_memcmp(sha, s->token_sha, sizeof(sha)) == 0;
}

/* --- what is shown ------------------------------------------------------ */

static const char *
str_member(json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

static char *
begin_key(json_t *fields)
{
  const char *p = str_member(fields, "provider"),
             *id = str_member(fields, "id");
  if (!p || !id)
    return NULL;
  return rp_xasprintf("%s\n%s", p, id);
}

static void
begin_forget(struct rp_status *s, size_t i)
{
  free(s->begins[i].key);
  memmove(&s->begins[i], &s->begins[i + 1],
          (s->n_begins - i - 1) * sizeof(*s->begins));
  s->n_begins--;
}

static ssize_t
begin_find(const struct rp_status *s, const char *key)
{
  for (size_t i = 0; i < s->n_begins; i++)
    if (strcmp(s->begins[i].key, key) == 0)
      return (ssize_t)i;
  return -1;
}

static void
begin_note(struct rp_status *s, json_t *fields, bool begun)
{
  cleanup_free char *key = begin_key(fields);
  if (!key)
    return;
  ssize_t i = begin_find(s, key);
  if (i >= 0)
    begin_forget(s, (size_t)i);
  if (!begun)
    return;
  if (s->n_begins == BEGINS_MAX)
    begin_forget(s, 0);
  s->begins = rp_xrealloc(s->begins, (s->n_begins + 1) * sizeof(*s->begins));
  s->begins[s->n_begins++] =
      (struct begin){.key = RP_STEAL(key), .wall_ms = rp_wall_ms()};
}

static double
num_member(json_t *o, const char *k, double dflt)
{
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : dflt;
}

void
rp_status_record(struct rp_status *s, const char *event, json_t *fields)
{
  /* The members of a recycle line that are safe to show: those plan shows,
   * plus the outcome.  Drain output and provider details stay in the
   * audit log. */
  static const char *const keep[] = {
      "provider",  "kind",        "id",         "name",
      "policy",    "strategy",    "started_at", "age_s",
      "max_age_s", "deadline",    "duration_s", "replacement_id",
      "error",     "rolled_back", "action",     "detail",
      "ok",        "begun_at"};
  if (!s || !event || !json_is_object(fields) ||
      strncmp(event, "recycle.", 8) != 0)
    return;
  const char *what = event + 8;
  const char *policy = str_member(fields, "policy");
  enum rp_metrics_outcome outcome;
  if (strcmp(what, "begin") == 0) {
    rp_metrics_recycle_began(s->metrics, policy,
                             num_member(fields, "lateness_s", 0));
    begin_note(s, fields, true);
    return;
  } else if (strcmp(what, "done") == 0) {
    outcome = RP_METRICS_DONE;
  } else if (strcmp(what, "failed") == 0) {
    outcome = json_is_true(json_object_get(fields, "rolled_back"))
                  ? RP_METRICS_ROLLED_BACK
                  : RP_METRICS_FAILED;
  } else if (strcmp(what, "planned") == 0) {
    outcome = RP_METRICS_PLANNED;
    rp_metrics_recycle_began(s->metrics, policy,
                             num_member(fields, "lateness_s", 0));
  } else if (strcmp(what, "recovered") == 0) {
    outcome = RP_METRICS_RECOVERED;
  } else {
    return;
  }
  rp_metrics_recycle_ended(s->metrics, policy, outcome,
                           num_member(fields, "duration_s", -1));
  begin_note(s, fields, false);

  char ts[40];
  json_t *r = json_object();
  json_object_set_new(
      r, "ts", json_string(rp_format_time_ms(rp_wall_ms(), ts, sizeof(ts))));
  json_object_set_new(r, "event", json_string(event));
  json_object_set_new(r, "outcome",
                      json_string(rp_metrics_outcome_name(outcome)));
  for (size_t i = 0; i < RP_ARRAY_LEN(keep); i++) {
    json_t *v = json_object_get(fields, keep[i]);
    if (v)
      json_object_set(r, keep[i], v);
  }
  json_array_insert_new(s->recent, 0, r);
  while (json_array_size(s->recent) > RECENT_MAX)
    json_array_remove(s->recent, json_array_size(s->recent) - 1);
}

static json_t *
providers_json(struct rp_status *s)
{
  json_t *p = s->src.providers ? s->src.providers(s->src.ctx) : NULL;
  if (!json_is_array(p)) {
    if (p)
      json_decref(p);
    p = json_array();
  }
  return p;
}

static bool
is_ready(struct rp_status *s)
{
  return !s->src.ready || s->src.ready(s->src.ctx);
}

static const struct rp_config *
live_config(struct rp_status *s)
{
  return s->src.config ? s->src.config(s->src.ctx) : NULL;
}

static struct rp_entry **
snapshot(struct rp_status *s, size_t *n)
{
  *n = 0;
  if (!s->src.tracker)
    return NULL;
  return rp_tracker_snapshot(s->src.tracker, rp_plan_cmp, n);
}

json_t *
rp_status_json(struct rp_status *s)
{
  int64_t now = rp_wall_ms();
  char t[40];
  size_t n;
  cleanup_free struct rp_entry **v = snapshot(s, &n);
  json_t *workloads = json_array(), *in_flight = json_array();
  for (size_t i = 0; i < n; i++) {
    json_array_append_new(workloads, rp_plan_entry_json(v[i], now));
    if (v[i]->state != RP_ENTRY_RECYCLING)
      continue;
    json_t *f = rp_plan_entry_json(v[i], now);
    cleanup_free char *key =
        rp_xasprintf("%s\n%s", v[i]->w->provider, v[i]->w->id);
    ssize_t b = begin_find(s, key);
    if (b >= 0) {
      int64_t began = s->begins[b].wall_ms;
      json_object_set_new(f, "recycle_began_at",
                          json_string(rp_format_time_ms(began, t, sizeof(t))));
      json_object_set_new(f, "recycle_elapsed_s",
                          json_integer((json_int_t)((now - began) / 1000)));
    }
    json_array_append_new(in_flight, f);
  }
  json_t *audit = json_null();
  if (s->src.audit)
    audit =
        json_pack("{s:s, s:b, s:I, s:I}", "path", rp_audit_path(s->src.audit),
                  "healthy", rp_audit_healthy(s->src.audit), "write_errors",
                  (json_int_t)rp_audit_write_errors(s->src.audit), "next_seq",
                  (json_int_t)rp_audit_next_seq(s->src.audit));
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  json_t *forecast = rp_plan_forecast_json(live_config(s), v, n, now);
  return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:O, s:o, s:o, s:o}",
                   "version", REAPER_VERSION, "hostname", host, "now",
                   rp_format_time_ms(now, t, sizeof(t)), "ready", is_ready(s),
                   "workloads", workloads, "in_flight", in_flight, "recent",
                   s->recent, "providers", providers_json(s), "audit", audit,
                   "forecast", forecast);
}

/* --- answers ------------------------------------------------------------ */

struct answer {
  int code;
  const char *content_type;
  const char *extra_headers; /* "Name: value\r\n"..., or NULL */
  char *body;                /* owned */
  size_t len;
};

static void answer_text(struct answer *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
answer_text(struct answer *a, int code, const char *fmt, ...)
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

/* Runs writer into memory and makes it the answer's body. */
static void
answer_stream(struct answer *a, const char *content_type,
              void (*writer)(struct rp_status *s, FILE *out),
              struct rp_status *s)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f)
    abort();
  writer(s, f);
  if (fclose(f) != 0)
    abort();
  a->code = 200;
  a->content_type = content_type;
  a->body = buf;
  a->len = len;
}

static void
healthz(struct rp_status *s, struct answer *a)
{
  cleanup_json json_t *providers = providers_json(s);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f)
    abort();
  size_t i;
  json_t *p;
  json_array_foreach(providers, i, p)
  {
    if (json_is_true(json_object_get(p, "up")))
      continue;
    const char *name = str_member(p, "name"), *type = str_member(p, "type");
    const char *why = str_member(p, "reason");
    fprintf(f, "provider %s (%s): %s\n", name ? name : "?", type ? type : "?",
            why && *why ? why : "not connected yet");
  }
  if (s->src.audit && !rp_audit_healthy(s->src.audit))
    fprintf(f,
            "audit log %s: cannot be written (%llu failed writes): no "
            "recycle until it can\n",
            rp_audit_path(s->src.audit),
            (unsigned long long)rp_audit_write_errors(s->src.audit));
  if (fclose(f) != 0)
    abort();
  if (len == 0) {
    free(buf);
    answer_text(a, 200, "ok\n");
    return;
  }
  a->code = 503;
  a->content_type = "text/plain; charset=utf-8";
  a->body = buf;
  a->len = len;
}

static void
write_metrics(struct rp_status *s, FILE *out)
{
  size_t n;
  cleanup_free struct rp_entry **v = snapshot(s, &n);
  cleanup_json json_t *providers = providers_json(s);
  cleanup_json json_t *notifications =
      s->src.notifications ? s->src.notifications(s->src.ctx) : NULL;
  struct rp_metrics_view view = {
      .entries = v,
      .n_entries = n,
      .providers = providers,
      .audit = s->src.audit,
      .ready = is_ready(s),
      .has_api_requests = s->src.api_requests != NULL,
      .api_requests = s->src.api_requests ? s->src.api_requests(s->src.ctx) : 0,
      .now_ms = rp_wall_ms(),
      .config = live_config(s),
      .notifications = notifications,
  };
  rp_metrics_write(s->metrics, &view, out);
}

static void
write_status(struct rp_status *s, FILE *out)
{
  cleanup_json json_t *doc = rp_status_json(s);
  json_dumpf(doc, out, JSON_INDENT(1));
  fputc('\n', out);
}

static void
write_page(struct rp_status *s, FILE *out)
{
  cleanup_json json_t *doc = rp_status_json(s);
  rp_page_write(out, doc, rp_wall_ms());
}

static void
route(struct rp_status *s, struct conn *c, struct answer *a)
{
  enum http_method m = (enum http_method)c->parser.method;
  char *path = c->url;
  path[strcspn(path, "?#")] = '\0';
  if (c->url_overflow) {
    answer_text(a, 414, "request target too long\n");
    return;
  }
  if (m != HTTP_GET && m != HTTP_HEAD) {
    answer_text(a, 405, "only GET and HEAD: this listener changes nothing\n");
    a->extra_headers = "Allow: GET, HEAD\r\n";
    return;
  }
  if (c->parser.flags & F_CHUNKED) {
    answer_text(a, 411, "no request body is accepted\n");
    return;
  }
  if (c->parser.content_length > 0 && c->parser.content_length != ULLONG_MAX) {
    answer_text(a, 413, "no request body is accepted\n");
    return;
  }
  if (strcmp(path, "/healthz") == 0) {
    healthz(s, a);
    return;
  }
  if (!authorized(s, c)) {
    answer_text(a, 401, "a bearer token is required\n");
    a->extra_headers = "WWW-Authenticate: Bearer realm=\"reaper\"\r\n";
    return;
  }
  if (strcmp(path, "/readyz") == 0) {
    if (is_ready(s))
      answer_text(a, 200, "ready\n");
    else
      answer_text(a, 503,
                  "not ready: waiting for every provider's first full list "
                  "and crash recovery\n");
  } else if (strcmp(path, "/metrics") == 0) {
    answer_stream(a, "text/plain; version=0.0.4; charset=utf-8", write_metrics,
                  s);
  } else if (strcmp(path, "/status") == 0) {
    answer_stream(a, "application/json", write_status, s);
  } else if (strcmp(path, "/") == 0) {
    answer_stream(a, "text/html; charset=utf-8", write_page, s);
    /* Defence in depth: even a string that escaped escaping could run no
     * script and load nothing. */
    a->extra_headers =
        "Content-Security-Policy: default-src 'none'; style-src "
        "'unsafe-inline'; img-src data:; frame-ancestors 'none'\r\n";
  } else {
    answer_text(a, 404,
                "not found: try /, /status, /metrics, /healthz or "
                "/readyz\n");
  }
}

/* --- connections -------------------------------------------------------- */

static void
conn_handle_closed_cb(uv_handle_t *h)
{
  struct conn *c = h->data;
  struct rp_status *s = c->s;
  if (--c->open_handles > 0)
    return;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->n_conns--;
  free(c->response);
  free(c);
  status_release(s);
}

static void
conn_close(struct conn *c)
{
  if (c->closing)
    return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
}

static void
timeout_cb(uv_timer_t *t)
{
  conn_close(t->data);
}

static void
shutdown_cb(uv_shutdown_t *req, int status)
{
  struct conn *c = req->data;
  if (status < 0 || c->closing) {
    conn_close(c);
    return;
  }
  /* Linger, reading, until the client closes; never past the deadline. */
  uint64_t left = uv_timer_get_due_in(&c->timer);
  if (left > LINGER_MS)
    uv_timer_start(&c->timer, timeout_cb, LINGER_MS, 0);
}

static void
write_cb(uv_write_t *req, int status)
{
  struct conn *c = req->data;
  free(c->response);
  c->response = NULL;
  if (status < 0 || c->closing) {
    conn_close(c);
    return;
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
  case 411:
    return "Length Required";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 431:
    return "Request Header Fields Too Large";
  case 503:
    return "Service Unavailable";
  default:
    return "Error";
  }
}

static void
send_answer(struct conn *c, struct answer *a, bool head)
{
  c->answered = true;
  cleanup_free char *body = a->body;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f)
    abort();
  fprintf(f,
          "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
          "Connection: close\r\nCache-Control: no-store\r\n"
          "X-Content-Type-Options: nosniff\r\n%s\r\n",
          a->code, reason_phrase(a->code), a->content_type, a->len,
          a->extra_headers ? a->extra_headers : "");
  if (!head && a->len)
    fwrite(body, 1, a->len, f);
  if (fclose(f) != 0)
    abort();
  c->response = buf;
  c->write_req.data = c;
  uv_buf_t b = uv_buf_init(buf, (unsigned)len);
  if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0)
    conn_close(c);
}

static void
answer_error(struct conn *c, int code, const char *text)
{
  struct answer a = {0};
  answer_text(&a, code, "%s\n", text);
  send_answer(c, &a, false);
}

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

static int
on_header_value_cb(http_parser *p, const char *at, size_t len)
{
  struct conn *c = p->data;
  if (!c->in_value) {
    c->in_value = true;
    c->field_is_auth = c->field_len < sizeof(c->field) &&
                       strcasecmp(c->field, "authorization") == 0;
    if (c->field_is_auth)
      c->n_auth++;
  }
  if (!c->field_is_auth || c->n_auth > 1)
    return 0;
  if (c->auth_len + len > AUTH_MAX) {
    c->auth_overflow = true;
    return 0;
  }
  memcpy(c->auth + c->auth_len, at, len);
  c->auth_len += len;
  c->auth[c->auth_len] = '\0';
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
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0 || c->answered || c->closing)
    return; /* lingering: what comes after the request is dropped */
  size_t max = c->s->limits.max_header_bytes;
  size_t n = (size_t)nread;
  if (n > max - c->header_bytes)
    n = max - c->header_bytes;
  http_parser_execute(&c->parser, &parser_settings, buf->base, n);
  c->header_bytes += n;
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (c->headers_done) {
    struct answer a = {0};
    route(c->s, c, &a);
    send_answer(c, &a, c->parser.method == HTTP_HEAD);
  } else if (e != HPE_OK) {
    answer_error(c, 400, http_errno_description(e));
  } else if (c->header_bytes >= max) {
    answer_error(c, 431, "request headers too large");
  }
}

/* Over the limit: a short answer if the socket takes it at once, and
 * closed.  Nothing of this connection outlives this call but its close
 * callback. */
static void
reject_closed_cb(uv_handle_t *h)
{
  struct rp_status *s = h->data;
  free(h);
  status_release(s);
}

static void
reject(struct rp_status *s)
{
  static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 28\r\nConnection: close\r\n\r\n"
                             "too many connections: retry\n";
  uv_tcp_t *t = rp_xmalloc(sizeof(*t));
  uv_tcp_init(s->loop, t);
  t->data = s;
  s->open_handles++;
  if (uv_accept((uv_stream_t *)&s->server, (uv_stream_t *)t) == 0) {
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)busy, sizeof(busy) - 1);
    (void)uv_try_write((uv_stream_t *)t, &b, 1);
  }
  rp_metrics_connection_rejected(s->metrics);
  uv_close((uv_handle_t *)t, reject_closed_cb);
}

static void
connection_cb(uv_stream_t *server, int status)
{
  struct rp_status *s = server->data;
  if (status < 0) {
    rp_warn("status listener: accept: %s", uv_strerror(status));
    return;
  }
  if (s->closing)
    return;
  if (s->n_conns >= s->limits.max_connections) {
    reject(s);
    return;
  }
  struct conn *c = rp_xcalloc(1, sizeof(*c));
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  s->open_handles++;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, timeout_cb, s->limits.timeout_ms, 0);
}

/* --- start and close ---------------------------------------------------- */

static void
status_free(struct rp_status *s)
{
  for (size_t i = 0; i < s->n_begins; i++)
    free(s->begins[i].key);
  free(s->begins);
  if (s->recent)
    json_decref(s->recent);
  rp_metrics_free(s->metrics);
  explicit_bzero(s->token_sha, sizeof(s->token_sha));
  free(s);
}

/* One of our handles is closed; the last one frees s once it is closing. */
static void
status_release(struct rp_status *s)
{
  if (--s->open_handles == 0 && s->closing)
    status_free(s);
}

static void
server_closed_cb(uv_handle_t *h)
{
  status_release(h->data);
}

void
rp_status_set_limits(struct rp_status *s, const struct rp_status_limits *l)
{
  s->limits.timeout_ms = l->timeout_ms ? l->timeout_ms : DEFAULT_TIMEOUT_MS;
  s->limits.max_connections =
      l->max_connections ? l->max_connections : DEFAULT_MAX_CONNECTIONS;
  s->limits.max_header_bytes =
      l->max_header_bytes ? l->max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
}

int
rp_status_port(const struct rp_status *s)
{
  return s->port;
}

int
rp_status_start(uv_loop_t *loop, const char *listen, const char *token_file,
                const struct rp_status_source *src, struct rp_status **out,
                struct rp_error **err)
{
  struct sockaddr_storage ss = {0};
  if (parse_listen(listen, &ss, err) != 0)
    return -1;
  cleanup_free char *token = NULL;
  if (token_file && rp_status_read_token(token_file, &token, err) != 0)
    return -1;

  struct rp_status *s = rp_xcalloc(1, sizeof(*s));
  s->loop = loop;
  s->src = *src;
  rp_status_set_limits(s, &(struct rp_status_limits){0});
  if (token) {
    SHA256((const unsigned char *)token, strlen(token), s->token_sha);
    explicit_bzero(token, strlen(token));
    s->has_token = true;
  }
  s->metrics = rp_metrics_new();
  s->recent = json_array();
  uv_tcp_init(loop, &s->server);
  s->server.data = s;
  s->open_handles = 1;
  int rc = uv_tcp_bind(&s->server, (const struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->server, 128, connection_cb);
  if (rc != 0) {
    rp_error_set(err, -rc, "listen %s: %s", listen, uv_strerror(rc));
    rp_status_close(s);
    return -1;
  }
  struct sockaddr_storage bound;
  int blen = sizeof(bound);
  uv_tcp_getsockname(&s->server, (struct sockaddr *)&bound, &blen);
  s->port = ntohs(bound.ss_family == AF_INET6
                      ? ((struct sockaddr_in6 *)&bound)->sin6_port
                      : ((struct sockaddr_in *)&bound)->sin_port);
  *out = s;
  return 0;
}

void
rp_status_close(struct rp_status *s)
{
  if (!s || s->closing)
    return;
  s->closing = true;
  for (struct conn *c = s->conns; c; c = c->next)
    conn_close(c);
  uv_close((uv_handle_t *)&s->server, server_closed_cb);
}
