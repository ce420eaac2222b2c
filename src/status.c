/* The status surface (status.h): what the agent shows of itself, and which
 * request gets which view.  The listener (http_server.c) owns the
 * connections; the token is bearer.c's; the metrics' text is metrics.c's.
 * What is kept here is the little state the views need beyond the
 * tracker: the recent recycles and when those in flight began. */
#include "status.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "bearer.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "util.h"

/* Recycles the page and /status show. */
#define RECENT_MAX 50
/* Recycle begins remembered for in-flight recycles; ended ones are
 * dropped, so this only bounds what a lost end line could leave behind. */
#define BEGINS_MAX 1024

struct begin {
  char *key; /* owned: "provider\nid" */
  int64_t wall_ms;
};

struct rp_status {
  struct rp_http_server *server; /* owned; frees itself once closed */
  struct rp_status_source src;
  struct rp_bearer token;
  bool has_token;
  struct rp_metrics *metrics; /* owned */
  json_t *recent;             /* owned array, newest first */
  struct begin *begins;       /* owned array */
  size_t n_begins;
};

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
  static const char *const keep[] = {"provider",
                                     "kind",
                                     "id",
                                     "name",
                                     "policy",
                                     "strategy",
                                     "started_at",
                                     "age_s",
                                     "max_age_s",
                                     "deadline",
                                     "duration_s",
                                     "replacement_id",
                                     "error",
                                     "rolled_back",
                                     "action",
                                     "detail",
                                     "ok",
                                     "begun_at",
                                     "reason",
                                     "refused_by",
                                     "image",
                                     "image_digest",
                                     "previous_image_digest",
                                     "digest"};
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
  } else if (strcmp(what, "refused") == 0) {
    outcome = RP_METRICS_REFUSED;
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
  json_t *doc = json_pack(
      "{s:s, s:s, s:s, s:b, s:o, s:o, s:O, s:o, s:o, s:o}", "version",
      REAPER_VERSION, "hostname", host, "now",
      rp_format_time_ms(now, t, sizeof(t)), "ready", is_ready(s), "workloads",
      workloads, "in_flight", in_flight, "recent", s->recent, "providers",
      providers_json(s), "audit", audit, "forecast", forecast);
  /* Fresh content: the quarantined digests and the registries' figures. */
  json_t *content = s->src.content ? s->src.content(s->src.ctx) : NULL;
  if (content)
    json_object_set_new(doc, "images", content);
  return doc;
}

/* --- answers ------------------------------------------------------------ */

#define answer_text rp_http_server_text

/* Runs writer into memory and makes it the answer's body. */
static void
answer_stream(struct rp_http_server_answer *a, const char *content_type,
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
healthz(struct rp_status *s, struct rp_http_server_answer *a)
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
  cleanup_json json_t *content =
      s->src.content ? s->src.content(s->src.ctx) : NULL;
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
      .content = content,
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

/* The listener's handler: it has checked the request's size, Host and
 * that it has no body. */
static void
route(void *ctx, const struct rp_http_server_request *r,
      struct rp_http_server_answer *a)
{
  struct rp_status *s = ctx;
  const char *path = r->path;
  if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
    answer_text(a, 405, "only GET and HEAD: this listener changes nothing\n");
    a->extra_headers = "Allow: GET, HEAD\r\n";
    return;
  }
  if (strcmp(path, "/healthz") == 0) {
    healthz(s, a);
    return;
  }
  if (s->has_token && !rp_bearer_matches(&s->token, r->authorization)) {
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

/* --- start and close ---------------------------------------------------- */

static void
connection_refused_cb(void *ctx)
{
  struct rp_status *s = ctx;
  rp_metrics_connection_rejected(s->metrics);
}

static void
status_free(struct rp_status *s)
{
  for (size_t i = 0; i < s->n_begins; i++)
    free(s->begins[i].key);
  free(s->begins);
  if (s->recent)
    json_decref(s->recent);
  rp_metrics_free(s->metrics);
  rp_bearer_clear(&s->token);
  free(s);
}

void
rp_status_set_limits(struct rp_status *s, const struct rp_http_server_limits *l)
{
  rp_http_server_set_limits(s->server, l);
}

int
rp_status_port(const struct rp_status *s)
{
  return rp_http_server_port(s->server);
}

int
rp_status_start(uv_loop_t *loop, const char *listen, char *const *names,
                const char *token_file, const struct rp_status_source *src,
                struct rp_status **out, struct rp_error **err)
{
  struct rp_status *s = rp_xcalloc(1, sizeof(*s));
  s->src = *src;
  if (token_file) {
    if (rp_bearer_load(token_file, &s->token, err) != 0) {
      status_free(s);
      return -1;
    }
    s->has_token = true;
  }
  s->metrics = rp_metrics_new();
  s->recent = json_array();
  static const struct rp_http_server_ops ops = {
      .handle = route,
      .refused = connection_refused_cb,
  };
  if (rp_http_server_start(loop, listen, names, &ops, s, &s->server, err) !=
      0) {
    status_free(s);
    return -1;
  }
  /* Workload names, images and deadlines are for the operators: a
   * listener other machines can reach should ask for the token. */
  if (!s->has_token && !rp_http_server_loopback(s->server))
    rp_warn("the status listener on %s is reachable beyond this machine and "
            "has no token: anyone who reaches it reads every workload's name "
            "and deadline; set agent.listen_token_file, or listen on "
            "127.0.0.1",
            listen);
  *out = s;
  return 0;
}

void
rp_status_close(struct rp_status *s)
{
  if (!s)
    return;
  /* The listener calls nothing of ours after this; it frees itself once
   * its connections are closed. */
  rp_http_server_close(s->server);
  status_free(s);
}
