/* The status listener over real TCP: a real uv loop in the test's thread
 * serves, clients with plain blocking sockets in other threads ask.  The
 * source is the module's own input filled by the test: a real tracker with
 * workloads decided by a real configuration, a real audit log in a
 * temporary directory, and provider states set by the test.  Every test
 * ends by checking that the loop closes with nothing left open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "audit.h"
#include "config.h"
#include "plan.h"
#include "policy.h"
#include "provider.h"
#include "status.h"
#include "tracker.h"
#include "util.h"

#define HOUR_MS INT64_C(3600000)

static const char config_yaml[] = "agent:\n"
                                  "  listen: 127.0.0.1:0\n"
                                  "providers:\n"
                                  "  - name: local\n"
                                  "    type: docker\n"
                                  "    endpoint: unix:///nonexistent.sock\n"
                                  "policies:\n"
                                  "  - name: web\n"
                                  "    match: { labels: { tier: web } }\n"
                                  "    max_age: 2h\n"
                                  "    jitter: 0\n"
                                  "    strategy: recreate\n"
                                  "  - name: batch\n"
                                  "    match: { labels: { tier: batch } }\n"
                                  "    max_age: 1d\n"
                                  "    jitter: 0\n";

/* ---- the world the status surface shows ---- */

struct world {
  uv_loop_t loop;
  struct rp_config *config;
  struct rp_provider provider;
  struct rp_tracker *tracker;
  struct rp_audit *audit;
  char dir[64];
  bool up;
  char reason[128];
  bool ready;
  struct rp_status *status;
  uv_async_t done;
};

static json_t *
providers_cb(void *ctx)
{
  struct world *w = ctx;
  json_t *p = json_pack("{s:s, s:s, s:b}", "name", "local", "type", "docker",
                        "up", w->up);
  if (!w->up)
    json_object_set_new(p, "reason", json_string(w->reason));
  return json_pack("[o]", p);
}

static bool
ready_cb(void *ctx)
{
  return ((struct world *)ctx)->ready;
}

static uint64_t
api_requests_cb(void *ctx)
{
  (void)ctx;
  return 42;
}

/* A container of provider "local", started age_ms ago, with labels as
 * key, value pairs ending in NULL; decided by the configuration. */
static struct rp_entry *
add(struct world *w, const char *id, const char *name, int64_t age_ms, ...)
{
  struct rp_workload *wl = rp_workload_new("local", RP_KIND_CONTAINER, id, name,
                                           rp_wall_ms() - age_ms);
  va_list ap;
  va_start(ap, age_ms);
  const char *k;
  while ((k = va_arg(ap, const char *))) {
    const char *v = va_arg(ap, const char *);
    json_object_set_new(wl->labels, k, json_string(v));
  }
  va_end(ap);
  struct rp_entry *e = rp_tracker_add(w->tracker, &w->provider, wl);
  rp_policy_decide(w->config, e->w, &e->d);
  e->due_ms = e->d.due_ms;
  e->state = e->d.policy && !e->d.excluded ? RP_ENTRY_WAITING : RP_ENTRY_IDLE;
  return e;
}

static void
world_init(struct world *w)
{
  memset(w, 0, sizeof(*w));
  assert_int_equal(uv_loop_init(&w->loop), 0);
  struct rp_error *err = NULL;
  assert_int_equal(rp_config_parse("t.yaml", config_yaml, strlen(config_yaml),
                                   &w->config, &err),
                   0);
  w->provider.ops = rp_provider_lookup("docker");
  assert_non_null(w->provider.ops);
  w->provider.name = (char *)(uintptr_t) "local";
  w->provider.cfg = &w->config->providers[0];
  w->tracker = rp_tracker_new();
  snprintf(w->dir, sizeof(w->dir), "/tmp/rp-status.XXXXXX");
  assert_non_null(mkdtemp(w->dir));
  char path[128];
  snprintf(path, sizeof(path), "%s/audit.jsonl", w->dir);
  assert_int_equal(rp_audit_open(path, &w->audit, NULL, &err), 0);
  w->up = true;
  w->ready = true;
}

static struct rp_status_source
world_source(struct world *w)
{
  return (struct rp_status_source){
      .ctx = w,
      .tracker = w->tracker,
      .audit = w->audit,
      .providers = providers_cb,
      .ready = ready_cb,
      .api_requests = api_requests_cb,
  };
}

static void
world_start(struct world *w, const char *token_file)
{
  struct rp_status_source src = world_source(w);
  struct rp_error *err = NULL;
  int rc = rp_status_start(&w->loop, "127.0.0.1:0", NULL, token_file, &src,
                           &w->status, &err);
  if (rc != 0)
    fail_msg("rp_status_start: %s", err->message);
  assert_true(rp_status_port(w->status) > 0);
}

/* Some workloads: two web (one old, one recycling), a batch job, one with
 * a hostile name, one excluded. */
static void
world_populate(struct world *w)
{
  add(w, "aaaaaaaaaaaa0001", "web-1", HOUR_MS / 2, "tier", "web", NULL);
  struct rp_entry *r =
      add(w, "aaaaaaaaaaaa0002", "web-2", 2 * HOUR_MS, "tier", "web", NULL);
  r->state = RP_ENTRY_RECYCLING;
  add(w, "bbbbbbbbbbbb0001", "nightly", 3 * HOUR_MS, "tier", "batch", NULL);
  add(w, "cccccccccccc0001", "<script>alert(1)</script>\"'&", HOUR_MS, "tier",
      "web", "secret", "<img src=x onerror=alert(2)>", NULL);
  add(w, "dddddddddddd0001", "db", 5 * HOUR_MS, "reaper.exclude", "true", NULL);
}

static void
world_free(struct world *w)
{
  rp_tracker_free(w->tracker);
  rp_audit_close(w->audit);
  rp_config_free(w->config);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
  assert_int_equal(system(cmd), 0);
  /* Nothing of the status listener outlives its close. */
  assert_int_equal(uv_loop_close(&w->loop), 0);
}

/* ---- clients in threads ---- */

struct client {
  void (*fn)(struct world *w, void *arg);
  void *arg;
  struct world *w;
};

static void
done_cb(uv_async_t *a)
{
  struct world *w = a->data;
  rp_status_close(w->status);
  w->status = NULL;
  uv_close((uv_handle_t *)a, NULL);
}

static void *
client_thread(void *arg)
{
  struct client *c = arg;
  c->fn(c->w, c->arg);
  uv_async_send(&c->w->done);
  return NULL;
}

/* Runs fn in a thread while the loop serves; then closes the listener and
 * runs the loop until every handle is closed. */
static void
serve_while(struct world *w, void (*fn)(struct world *w, void *arg), void *arg)
{
  uv_async_init(&w->loop, &w->done, done_cb);
  w->done.data = w;
  struct client c = {fn, arg, w};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, client_thread, &c), 0);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  pthread_join(t, NULL);
}

static int
connect_to(int port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {.tv_sec = 20};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

struct response {
  int status; /* 0: no answer */
  char *raw;  /* owned: headers and body */
  size_t len;
  const char *body; /* into raw */
};

static void
response_clear(struct response *r)
{
  free(r->raw);
  memset(r, 0, sizeof(*r));
}

/* Reads until the peer closes; parses the status line. */
static void
read_response(int fd, struct response *r)
{
  size_t cap = 4096;
  r->raw = malloc(cap);
  r->len = 0;
  for (;;) {
    if (r->len + 1 >= cap)
      r->raw = realloc(r->raw, cap *= 2);
    ssize_t n = recv(fd, r->raw + r->len, cap - r->len - 1, 0);
    if (n <= 0)
      break;
    r->len += (size_t)n;
  }
  r->raw[r->len] = '\0';
  if (sscanf(r->raw, "HTTP/1.1 %d", &r->status) != 1)
    r->status = 0;
  char *b = strstr(r->raw, "\r\n\r\n");
  r->body = b ? b + 4 : r->raw + r->len;
}

/* Sends a raw request on a new connection and reads the answer. */
static void
ask(int port, const char *request, struct response *r)
{
  memset(r, 0, sizeof(*r));
  int fd = connect_to(port);
  if (fd < 0)
    return;
  size_t len = strlen(request);
  if (send(fd, request, len, MSG_NOSIGNAL) == (ssize_t)len)
    read_response(fd, r);
  close(fd);
}

static void
get(int port, const char *path, const char *extra_headers, struct response *r)
{
  char req[8192];
  snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n",
           path, extra_headers ? extra_headers : "");
  ask(port, req, r);
}

/* The value of a header in a raw response, or NULL. */
static char *
header(const struct response *r, const char *name, char *buf, size_t len)
{
  char pat[128];
  snprintf(pat, sizeof(pat), "\r\n%s: ", name);
  const char *p = strcasestr(r->raw ? r->raw : "", pat);
  if (!p || (r->body && p > r->body))
    return NULL;
  p += strlen(pat);
  size_t n = strcspn(p, "\r\n");
  snprintf(buf, len, "%.*s", (int)n, p);
  return buf;
}

/* ---- the endpoints ---- */

#define MAX_ASKS 16

struct asks {
  int n;
  const char *paths[MAX_ASKS];
  const char *headers[MAX_ASKS];
  const char *raw[MAX_ASKS]; /* a raw request instead of GET path */
  struct response resp[MAX_ASKS];
};

static void
ask_all_fn(struct world *w, void *arg)
{
  struct asks *a = arg;
  int port = rp_status_port(w->status);
  for (int i = 0; i < a->n; i++) {
    if (a->raw[i])
      ask(port, a->raw[i], &a->resp[i]);
    else
      get(port, a->paths[i], a->headers[i], &a->resp[i]);
  }
}

static void
asks_clear(struct asks *a)
{
  for (int i = 0; i < a->n; i++)
    response_clear(&a->resp[i]);
}

static void
test_healthz(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_populate(&w);
  world_start(&w, NULL);
  struct asks a = {.n = 1, .paths = {"/healthz"}};
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 200);
  assert_string_equal(a.resp[0].body, "ok\n");
  asks_clear(&a);

  /* A provider down: 503 with its reason. */
  w.up = false;
  snprintf(w.reason, sizeof(w.reason), "connect: no such file");
  world_start(&w, NULL);
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 503);
  assert_non_null(
      strstr(a.resp[0].body, "provider local (docker): connect: no such file"));
  asks_clear(&a);

  /* The audit log failing too: both reasons. */
  rp_audit_inject_fault(w.audit, EIO, 0, false);
  struct rp_error *err = NULL;
  assert_int_equal(rp_audit_append_sync(w.audit, "test", NULL, &err), -1);
  rp_error_free(err);
  world_start(&w, NULL);
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 503);
  assert_non_null(strstr(a.resp[0].body, "provider local"));
  assert_non_null(strstr(a.resp[0].body, "audit log "));
  assert_non_null(strstr(a.resp[0].body, "cannot be written"));
  asks_clear(&a);
  rp_audit_inject_fault(w.audit, 0, 0, false);
  world_free(&w);
}

static void
test_readyz(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  w.ready = false;
  world_start(&w, NULL);
  struct asks a = {.n = 1, .paths = {"/readyz"}};
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 503);
  assert_non_null(strstr(a.resp[0].body, "not ready"));
  asks_clear(&a);
  w.ready = true;
  world_start(&w, NULL);
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 200);
  asks_clear(&a);
  world_free(&w);
}

static void
test_status_json(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_populate(&w);
  world_start(&w, NULL);
  /* What the recycler feeds: web-2 began; an earlier recycle ended. */
  json_t *begin =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:f}", "provider", "local", "kind",
                "container", "id", "aaaaaaaaaaaa0002", "name", "web-2",
                "policy", "web", "lateness_s", 0.25);
  rp_status_record(w.status, "recycle.begin", begin);
  json_t *done = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:{s:s}}", "provider", "local",
      "kind", "container", "id", "eeeeeeeeeeee0001", "name", "api-old",
      "policy", "web", "replacement_id", "ffffffffffff0001", "duration_s", 3.5,
      "drain_output", "token=hunter2", "x", "y");
  rp_status_record(w.status, "recycle.done", done);

  struct asks a = {.n = 1, .paths = {"/status"}};
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 200);
  char h[128];
  assert_string_equal(header(&a.resp[0], "Content-Type", h, sizeof(h)),
                      "application/json");
  json_error_t je;
  json_t *doc = json_loads(a.resp[0].body, 0, &je);
  assert_non_null(doc);

  json_t *wl = json_object_get(doc, "workloads");
  assert_int_equal(json_array_size(wl), 5);
  /* Every workload as plan shows it, sorted by due time: excluded last. */
  size_t n;
  struct rp_entry **v = rp_tracker_snapshot(w.tracker, rp_plan_cmp, &n);
  for (size_t i = 0; i < n; i++) {
    json_t *want = rp_plan_entry_json(v[i], rp_wall_ms());
    json_t *got = json_array_get(wl, i);
    assert_string_equal(json_string_value(json_object_get(got, "id")),
                        v[i]->w->id);
    assert_string_equal(json_string_value(json_object_get(got, "action")),
                        json_string_value(json_object_get(want, "action")));
    json_decref(want);
  }
  free(v);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(wl, 4), "name")), "db");
  /* Never labels (they may hold secrets), let alone environment. */
  assert_null(strstr(a.resp[0].body, "onerror"));
  assert_null(strstr(a.resp[0].body, "\"labels\""));

  json_t *fl = json_object_get(doc, "in_flight");
  assert_int_equal(json_array_size(fl), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(fl, 0), "name")),
      "web-2");
  assert_non_null(json_object_get(json_array_get(fl, 0), "recycle_began_at"));

  json_t *rec = json_object_get(doc, "recent");
  assert_int_equal(json_array_size(rec), 1);
  json_t *r0 = json_array_get(rec, 0);
  assert_string_equal(json_string_value(json_object_get(r0, "outcome")),
                      "done");
  assert_string_equal(json_string_value(json_object_get(r0, "name")),
                      "api-old");
  assert_null(json_object_get(r0, "drain_output"));
  assert_null(strstr(a.resp[0].body, "hunter2"));

  json_t *pr = json_object_get(doc, "providers");
  assert_int_equal(json_array_size(pr), 1);
  assert_true(json_is_true(json_object_get(json_array_get(pr, 0), "up")));
  json_t *au = json_object_get(doc, "audit");
  assert_true(json_is_true(json_object_get(au, "healthy")));
  assert_int_equal(json_integer_value(json_object_get(au, "write_errors")), 0);
  assert_non_null(json_object_get(au, "path"));
  assert_non_null(json_object_get(au, "next_seq"));
  assert_true(json_is_true(json_object_get(doc, "ready")));
  json_decref(doc);
  json_decref(begin);
  json_decref(done);
  asks_clear(&a);
  world_free(&w);
}

static void
test_recent_is_bounded_newest_first(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_start(&w, NULL);
  for (int i = 0; i < 120; i++) {
    char id[32];
    snprintf(id, sizeof(id), "id-%03d", i);
    json_t *f =
        json_pack("{s:s, s:s, s:s, s:s, s:b}", "provider", "local", "id", id,
                  "name", id, "policy", "web", "rolled_back", i % 2);
    rp_status_record(w.status, "recycle.failed", f);
    json_decref(f);
  }
  json_t *doc = rp_status_json(w.status);
  json_t *rec = json_object_get(doc, "recent");
  assert_int_equal(json_array_size(rec), 50);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(rec, 0), "id")),
      "id-119");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(rec, 0), "outcome")),
      "rolled_back");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(rec, 1), "outcome")),
      "failed");
  json_decref(doc);
  rp_status_close(w.status);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  world_free(&w);
}

static void
test_metrics_endpoint(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_populate(&w);
  world_start(&w, NULL);
  json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:f, s:b}", "provider", "local",
                        "id", "x", "name", "x", "policy", "web", "duration_s",
                        12.0, "rolled_back", 1);
  rp_status_record(w.status, "recycle.failed", f);
  json_decref(f);
  struct asks a = {.n = 1, .paths = {"/metrics"}};
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 200);
  char h[128];
  assert_string_equal(header(&a.resp[0], "Content-Type", h, sizeof(h)),
                      "text/plain; version=0.0.4; charset=utf-8");
  const char *b = a.resp[0].body;
  assert_non_null(
      strstr(b, "reaper_workloads{provider=\"local\",kind=\"container\",policy="
                "\"web\"} 3\n"));
  assert_non_null(strstr(b, "reaper_workloads{provider=\"local\",kind="
                            "\"container\",policy=\"batch\"} 1\n"));
  assert_non_null(strstr(b, "reaper_workloads{provider=\"local\",kind="
                            "\"container\",policy=\"\"} 1\n"));
  assert_non_null(strstr(b, "reaper_recycles_in_flight 1\n"));
  assert_non_null(strstr(
      b, "reaper_recycles_total{policy=\"web\",outcome=\"rolled_back\"} 1\n"));
  assert_non_null(
      strstr(b, "reaper_recycle_duration_seconds_count{policy=\"web\"} 1\n"));
  assert_non_null(
      strstr(b, "reaper_provider_up{provider=\"local\",type=\"docker\"} 1\n"));
  assert_non_null(strstr(b, "reaper_api_requests_total 42\n"));
  assert_non_null(strstr(b, "reaper_audit_write_errors_total 0\n"));
  assert_non_null(strstr(b, "reaper_ready 1\n"));
  assert_non_null(strstr(b, "reaper_workload_age_seconds_count 5\n"));
  assert_non_null(strstr(b, "reaper_next_deadline_timestamp_seconds "));
  asks_clear(&a);
  world_free(&w);
}

static void
test_page(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_populate(&w);
  world_start(&w, NULL);
  json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s}", "provider", "local", "id",
                        "x1", "name", "<b>bold</b>", "policy", "web", "error",
                        "create: 409 \"<name>\" in use");
  rp_status_record(w.status, "recycle.failed", f);
  json_decref(f);
  struct asks a = {.n = 1, .paths = {"/"}};
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 200);
  char h[256];
  assert_string_equal(header(&a.resp[0], "Content-Type", h, sizeof(h)),
                      "text/html; charset=utf-8");
  assert_non_null(header(&a.resp[0], "Content-Security-Policy", h, sizeof(h)));
  assert_non_null(strstr(h, "default-src 'none'"));
  const char *b = a.resp[0].body;
  assert_non_null(strstr(b, "<!doctype html>"));
  assert_non_null(strstr(b, "web-1"));
  assert_non_null(strstr(b, "nightly"));
  /* Names come from users: escaped, never markup. */
  assert_null(strstr(b, "<script"));
  assert_non_null(strstr(b, "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;"
                            "&amp;"));
  assert_null(strstr(b, "<b>bold"));
  assert_non_null(strstr(b, "&lt;b&gt;bold"));
  assert_non_null(strstr(b, "409 &quot;&lt;name&gt;&quot; in use"));
  /* Labels are not shown at all. */
  assert_null(strstr(b, "onerror"));
  /* The bar of web-2 (2h of 2h) is full and red. */
  assert_non_null(strstr(b, "class=\"bar over\""));
  assert_null(strstr(b, "Needs attention"));
  asks_clear(&a);

  /* A provider down is said at the top, its reason escaped. */
  w.up = false;
  snprintf(w.reason, sizeof(w.reason), "dial <tcp>: refused");
  world_start(&w, NULL);
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 200);
  b = a.resp[0].body;
  assert_non_null(strstr(b, "Needs attention"));
  assert_non_null(strstr(b, "dial &lt;tcp&gt;: refused"));
  assert_non_null(strstr(b, ">degraded<"));
  asks_clear(&a);
  world_free(&w);
}

static void
test_methods_and_paths(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_start(&w, NULL);
  struct asks a = {
      .n = 6,
      .paths = {"/nope", NULL, NULL, NULL, "/status?pretty=1", NULL},
      .raw =
          {
              NULL,
              "POST /status HTTP/1.1\r\nHost: localhost\r\nContent-Length: "
              "0\r\n\r\n",
              "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
              "DELETE /healthz HTTP/1.0\r\n\r\n",
              NULL,
              "GET /healthz HTTP/1.0\r\n\r\n",
          },
  };
  serve_while(&w, ask_all_fn, &a);
  char h[128];
  assert_int_equal(a.resp[0].status, 404);
  assert_int_equal(a.resp[1].status, 405);
  assert_string_equal(header(&a.resp[1], "Allow", h, sizeof(h)), "GET, HEAD");
  /* HEAD: the headers of GET, no body. */
  assert_int_equal(a.resp[2].status, 200);
  assert_true(atoi(header(&a.resp[2], "Content-Length", h, sizeof(h))) > 100);
  assert_string_equal(a.resp[2].body, "");
  assert_int_equal(a.resp[3].status, 405);
  assert_int_equal(a.resp[4].status, 200);
  assert_int_equal(a.resp[5].status, 200);
  assert_string_equal(header(&a.resp[5], "Connection", h, sizeof(h)), "close");
  asks_clear(&a);
  world_free(&w);
}

static void
test_bounds(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_start(&w, NULL);
  /* Headers over 8 KiB, a body, a chunked body, garbage. */
  static char big[12000];
  int off = snprintf(big, sizeof(big), "GET /status HTTP/1.1\r\nX-Pad: ");
  memset(big + off, 'a', sizeof(big) - (size_t)off - 5);
  memcpy(big + sizeof(big) - 5, "\r\n\r\n", 5);
  struct asks a = {
      .n = 4,
      .raw =
          {
              big,
              "GET /status HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
              "GET /status HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n0\r\n\r\n",
              "\x01\x02 not http at all\r\n\r\n",
          },
  };
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 431);
  assert_int_equal(a.resp[1].status, 413);
  assert_int_equal(a.resp[2].status, 411);
  assert_int_equal(a.resp[3].status, 400);
  asks_clear(&a);
  world_free(&w);
}

/* ---- the token ---- */

static void
write_file(const char *path, const char *text, mode_t mode)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(path, mode), 0);
}

static void
test_token(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  char path[128];
  snprintf(path, sizeof(path), "%s/token", w.dir);

  /* Readable by others: refused, saying why. */
  write_file(path, "s3cr3t-t0ken\n", 0644);
  struct rp_status_source src = world_source(&w);
  struct rp_error *err = NULL;
  struct rp_status *s = NULL;
  assert_int_equal(
      rp_status_start(&w.loop, "127.0.0.1:0", NULL, path, &src, &s, &err), -1);
  assert_non_null(strstr(err->message, path));
  assert_non_null(strstr(err->message, "0644"));
  rp_error_free(err);
  err = NULL;
  snprintf(path + strlen(path), 8, "-none");
  assert_int_equal(
      rp_status_start(&w.loop, "127.0.0.1:0", NULL, path, &src, &s, &err), -1);
  assert_non_null(strstr(err->message, "No such file"));
  rp_error_free(err);
  err = NULL;
  snprintf(path, sizeof(path), "%s/token", w.dir);
  write_file(path, " \n", 0600);
  assert_int_equal(
      rp_status_start(&w.loop, "127.0.0.1:0", NULL, path, &src, &s, &err), -1);
  assert_non_null(strstr(err->message, "empty"));
  rp_error_free(err);
  err = NULL;

  write_file(path, "s3cr3t-t0ken\n", 0600);
  world_start(&w, path);
  struct asks a = {
      .n = 8,
      .paths = {"/status", "/status", "/status", "/healthz", "/metrics", "/",
                "/nope", "/status"},
      .headers =
          {
              NULL,
              "Authorization: Bearer wrong\r\n",
              "Authorization: Bearer s3cr3t-t0ken\r\n",
              NULL,
              "authorization: bearer s3cr3t-t0ken\r\n",
              "Authorization: Bearer s3cr3t-t0kenX\r\n",
              NULL,
              "Authorization: Bearer s3cr3t-t0ken\r\n"
              "Authorization: Bearer wrong\r\n",
          },
  };
  serve_while(&w, ask_all_fn, &a);
  char h[128];
  assert_int_equal(a.resp[0].status, 401);
  assert_string_equal(header(&a.resp[0], "WWW-Authenticate", h, sizeof(h)),
                      "Bearer realm=\"reaper\"");
  assert_int_equal(a.resp[1].status, 401);
  assert_int_equal(a.resp[2].status, 200);
  assert_int_equal(a.resp[3].status, 200); /* /healthz needs no token */
  assert_int_equal(a.resp[4].status, 200);
  assert_int_equal(a.resp[5].status, 401);
  assert_int_equal(a.resp[6].status, 401); /* no probing without it */
  assert_int_equal(a.resp[7].status, 401); /* two tokens: neither counts */
  asks_clear(&a);
  world_free(&w);
}

static void
test_listen_addresses(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  struct rp_status_source src = world_source(&w);
  static const char *const bad[] = {
      "9470",           ":9470",    "127.0.0.1:",   "127.0.0.1:99999",
      "example.com:80", "::1:9470", "127.0.0.1:12x"};
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    struct rp_error *err = NULL;
    struct rp_status *s = NULL;
    assert_int_equal(
        rp_status_start(&w.loop, bad[i], NULL, NULL, &src, &s, &err), -1);
    assert_non_null(strstr(err->message, bad[i]));
    rp_error_free(err);
  }
  /* A port in use is an error naming the address. */
  world_start(&w, NULL);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", rp_status_port(w.status));
  struct rp_error *err = NULL;
  struct rp_status *s2 = NULL;
  assert_int_equal(rp_status_start(&w.loop, addr, NULL, NULL, &src, &s2, &err),
                   -1);
  assert_non_null(strstr(err->message, addr));
  assert_non_null(strstr(err->message, "address already in use"));
  rp_error_free(err);
  rp_status_close(w.status);
  /* IPv6 loopback, where the machine has it; and localhost. */
  const char *more[] = {"[::1]:0", "localhost:0"};
  for (size_t i = 0; i < 2; i++) {
    err = NULL;
    struct rp_status *s = NULL;
    if (rp_status_start(&w.loop, more[i], NULL, NULL, &src, &s, &err) == 0) {
      assert_true(rp_status_port(s) > 0);
      rp_status_close(s);
    } else {
      assert_string_equal(more[i], "[::1]:0"); /* no IPv6 here */
      rp_error_free(err);
    }
  }
  uv_run(&w.loop, UV_RUN_DEFAULT);
  world_free(&w);
}

/* ---- slow and many clients ---- */

static int64_t
mono_ms(void)
{
  return rp_mono_ms();
}

struct slow {
  int64_t slow_answer_after_ms; /* when the slow client got its answer */
  int slow_status;              /* and what it was */
  int slow_bytes_sent;
  int64_t fast_ms; /* how long the other client waited */
  int fast_status;
};

struct slow_arg {
  struct world *w;
  struct slow *r;
};

static void *
slow_client(void *arg)
{
  struct slow_arg *sa = arg;
  const char *req = "GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n";
  int fd = connect_to(rp_status_port(sa->w->status));
  int64_t t0 = mono_ms();
  /* One byte a second: the request would take over 30 s. */
  for (size_t i = 0; fd >= 0 && i < strlen(req); i++) {
    if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1)
      break;
    sa->r->slow_bytes_sent++;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 1000) > 0) {
      sa->r->slow_answer_after_ms = mono_ms() - t0;
      struct response resp;
      read_response(fd, &resp);
      sa->r->slow_status = resp.status;
      response_clear(&resp);
      break;
    }
  }
  if (fd >= 0)
    close(fd);
  return NULL;
}

static void
slowloris_fn(struct world *w, void *arg)
{
  struct slow *r = arg;
  struct slow_arg sa = {w, r};
  pthread_t t;
  pthread_create(&t, NULL, slow_client, &sa);
  usleep(1200 * 1000);
  int64_t t0 = mono_ms();
  struct response resp;
  get(rp_status_port(w->status), "/healthz", NULL, &resp);
  r->fast_ms = mono_ms() - t0;
  r->fast_status = resp.status;
  response_clear(&resp);
  pthread_join(t, NULL);
}

static void
test_slow_client_blocks_nobody(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_start(&w, NULL);
  rp_status_set_limits(
      w.status, &(struct rp_http_server_limits){.header_timeout_ms = 3000,
                                                .timeout_ms = 6000});
  struct slow r = {0};
  serve_while(&w, slowloris_fn, &r);
  /* Served at once: were it held behind the slow client, it would wait
   * for that one's deadline, 1.8 s later. */
  assert_int_equal(r.fast_status, 200);
  assert_true(r.fast_ms < 1500);
  /* Told 408 at its header deadline, long before its request was
   * complete (and before the connection's own deadline). */
  assert_int_equal(r.slow_status, 408);
  assert_true(r.slow_answer_after_ms >= 2500);
  assert_true(r.slow_answer_after_ms < 5500);
  assert_true(r.slow_bytes_sent < 8);
  world_free(&w);
}

#define N_CLIENTS 100

struct many {
  int rejected_at_once; /* answered 503 without asking */
  int ok;               /* 200 after asking */
  int other;
  int after_ok;        /* a new client once they are gone */
  int rejected_metric; /* what /metrics counted for the first 100 */
};

static void
many_fn(struct world *w, void *arg)
{
  struct many *m = arg;
  int port = rp_status_port(w->status);
  int fds[N_CLIENTS];
  for (int i = 0; i < N_CLIENTS; i++)
    fds[i] = connect_to(port);
  /* Those over the limit are answered and closed without asking; wait
   * (boundedly: the machine may be busy) until the server has seen all. */
  int64_t end = mono_ms() + 10000;
  while (m->rejected_at_once + m->other < N_CLIENTS - 64 && mono_ms() < end) {
    for (int i = 0; i < N_CLIENTS; i++) {
      struct pollfd p = {.fd = fds[i], .events = POLLIN};
      if (fds[i] < 0 || poll(&p, 1, 0) <= 0)
        continue;
      struct response r;
      read_response(fds[i], &r);
      if (r.status == 503)
        m->rejected_at_once++;
      else
        m->other++;
      response_clear(&r);
      close(fds[i]);
      fds[i] = -1;
    }
    usleep(20 * 1000);
  }
  /* The others, open all at once, are all served. */
  bool asked[N_CLIENTS] = {0};
  const char *req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
  for (int i = 0; i < N_CLIENTS; i++)
    if (fds[i] >= 0)
      asked[i] = send(fds[i], req, strlen(req), MSG_NOSIGNAL) > 0;
  for (int i = 0; i < N_CLIENTS; i++) {
    if (fds[i] < 0)
      continue;
    struct response r = {0};
    if (asked[i])
      read_response(fds[i], &r);
    if (r.status == 200)
      m->ok++;
    else
      m->other++;
    response_clear(&r);
    close(fds[i]);
  }
  /* Once their connections are gone, a new client is served again.  Until
   * the server has seen them close it may still be full: each such try is
   * one more rejected connection. */
  int retried = 0;
  end = mono_ms() + 10000;
  for (;;) {
    struct response r;
    get(port, "/metrics", NULL, &r);
    if (r.status == 200) {
      static const char key[] = "\nreaper_http_rejected_connections_total ";
      const char *l = strstr(r.body, key);
      if (l)
        m->rejected_metric = atoi(l + strlen(key)) - retried;
      m->after_ok = 1;
      response_clear(&r);
      break;
    }
    response_clear(&r);
    if (mono_ms() > end)
      break;
    retried++;
    usleep(50 * 1000);
  }
}

static void
test_many_clients(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_start(&w, NULL);
  /* 64 places, and no connection here is slow enough to give its place
   * up (test_slow_clients_give_way): those over are refused. */
  rp_status_set_limits(
      w.status, &(struct rp_http_server_limits){.max_connections = 64,
                                                .evict_after_ms = 600000});
  struct many m = {0};
  serve_while(&w, many_fn, &m);
  assert_int_equal(m.other, 0);
  assert_int_equal(m.ok, 64);
  assert_int_equal(m.rejected_at_once, N_CLIENTS - 64);
  assert_int_equal(m.after_ok, 1);
  assert_int_equal(m.rejected_metric, N_CLIENTS - 64);
  world_free(&w);
}

/* A full listener: a new client takes the place of the one that has
 * waited longest for its request, once that one has waited evict_after;
 * the one that gives way is told 408. */
struct give_way {
  int idle_status[8]; /* what each quiet client was told, in order */
  int64_t fast_ms;
  int fast_status;
};

static void
give_way_fn(struct world *w, void *arg)
{
  struct give_way *g = arg;
  int port = rp_status_port(w->status);
  int fds[8];
  for (int i = 0; i < 8; i++) {
    fds[i] = connect_to(port);
    /* A request begun and never finished. */
    send(fds[i], "GET /he", 7, MSG_NOSIGNAL);
    usleep(20 * 1000); /* in order: the first is the oldest */
  }
  usleep(700 * 1000);
  int64_t t0 = mono_ms();
  struct response r;
  get(port, "/healthz", NULL, &r);
  g->fast_ms = mono_ms() - t0;
  g->fast_status = r.status;
  response_clear(&r);
  for (int i = 0; i < 8; i++) {
    struct pollfd p = {.fd = fds[i], .events = POLLIN};
    if (poll(&p, 1, 0) > 0) {
      read_response(fds[i], &r);
      g->idle_status[i] = r.status;
      response_clear(&r);
    }
    close(fds[i]);
  }
}

static void
test_slow_clients_give_way(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_start(&w, NULL);
  rp_status_set_limits(w.status,
                       &(struct rp_http_server_limits){.max_connections = 8,
                                                       .evict_after_ms = 500});
  struct give_way g = {0};
  serve_while(&w, give_way_fn, &g);
  assert_int_equal(g.fast_status, 200);
  assert_true(g.fast_ms < 1000);
  assert_int_equal(g.idle_status[0], 408); /* the oldest gave way */
  for (int i = 1; i < 8; i++)
    assert_int_equal(g.idle_status[i], 0); /* the others still wait */
  world_free(&w);
}

/* Refused for want of room: a 503 the client reads whole, then the end of
 * the connection (not a reset, which would lose the answer), although it
 * had sent its request already. */
struct refused {
  int status;
  int last_recv;  /* 0: a clean end */
  int last_errno; /* when last_recv < 0 */
  int metric;     /* reaper_http_rejected_connections_total */
};

static void
refused_fn(struct world *w, void *arg)
{
  struct refused *x = arg;
  int port = rp_status_port(w->status);
  int quiet[2] = {connect_to(port), connect_to(port)};
  usleep(100 * 1000);
  int fd = connect_to(port);
  const char *req = "GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n";
  send(fd, req, strlen(req), MSG_NOSIGNAL);
  char buf[4096];
  size_t len = 0;
  for (;;) {
    ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
    if (n <= 0) {
      x->last_recv = (int)n;
      x->last_errno = n < 0 ? errno : 0;
      break;
    }
    len += (size_t)n;
  }
  buf[len] = '\0';
  if (sscanf(buf, "HTTP/1.1 %d", &x->status) != 1)
    x->status = 0;
  close(fd);
  close(quiet[0]);
  close(quiet[1]);
  /* Counted. */
  usleep(100 * 1000);
  struct response r;
  get(port, "/metrics", NULL, &r);
  const char *key = "\nreaper_http_rejected_connections_total ";
  const char *l = r.body ? strstr(r.body, key) : NULL;
  x->metric = l ? atoi(l + strlen(key)) : -1;
  response_clear(&r);
}

static void
test_refused_is_a_503_not_a_reset(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  world_start(&w, NULL);
  rp_status_set_limits(
      w.status, &(struct rp_http_server_limits){.max_connections = 2,
                                                .evict_after_ms = 600000});
  struct refused x = {0};
  serve_while(&w, refused_fn, &x);
  assert_int_equal(x.status, 503);
  if (x.last_recv != 0)
    fail_msg("the refused connection ended with %s, not a clean close",
             strerror(x.last_errno));
  assert_int_equal(x.metric, 1);
  world_free(&w);
}

/* DNS rebinding: a page on another site whose name was pointed at the
 * listener sends that name in Host, and is told nothing. */
static void
test_host_header(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  struct rp_status_source src = world_source(&w);
  struct rp_error *err = NULL;
  char *names[] = {(char *)(uintptr_t) "reaper.example.internal", NULL};
  assert_int_equal(rp_status_start(&w.loop, "127.0.0.1:0", names, NULL, &src,
                                   &w.status, &err),
                   0);
  char host[256] = "", mine[300];
  gethostname(host, sizeof(host) - 1);
  snprintf(mine, sizeof(mine), "GET /status HTTP/1.1\r\nHost: %s\r\n\r\n",
           host);
  struct asks a = {
      .n = 10,
      .raw =
          {
              "GET /status HTTP/1.1\r\nHost: attacker.example:9470\r\n\r\n",
              "GET /healthz HTTP/1.1\r\nHost: rebind.attacker.example\r\n\r\n",
              "GET /status HTTP/1.1\r\nHost: 127.0.0.1:9470\r\n\r\n",
              "GET /status HTTP/1.1\r\nHost: [::1]:9470\r\n\r\n",
              "GET /status HTTP/1.1\r\nHost: LocalHost.\r\n\r\n",
              "GET /status HTTP/1.1\r\nHost: "
              "reaper.example.internal:80\r\n\r\n",
              mine,
              "GET /status HTTP/1.1\r\nHost: localhost\r\nHost: "
              "attacker.example\r\n\r\n",
              "GET /status HTTP/1.0\r\n\r\n", /* no Host: no browser */
              "GET /status HTTP/1.1\r\nHost: "
              "localhost.attacker.example\r\n\r\n",
          },
  };
  serve_while(&w, ask_all_fn, &a);
  int want[] = {421, 421, 200, 200, 200, 200, 200, 421, 200, 421};
  for (int i = 0; i < a.n; i++)
    if (a.resp[i].status != want[i])
      fail_msg("request %d: %d, expected %d: %s", i, a.resp[i].status, want[i],
               a.raw[i]);
  assert_non_null(strstr(a.resp[0].body, "agent.listen_names"));
  assert_null(strstr(a.resp[0].body, "workloads"));
  asks_clear(&a);
  world_free(&w);

  /* The rule alone. */
  assert_true(rp_http_server_host_ok("10.1.2.3", NULL));
  assert_true(rp_http_server_host_ok("10.1.2.3:9470", NULL));
  assert_true(rp_http_server_host_ok("[fd00::1]", NULL));
  assert_false(rp_http_server_host_ok("[fd00::1", NULL));
  assert_false(rp_http_server_host_ok("[fd00::1]x", NULL));
  assert_false(rp_http_server_host_ok("10.1.2.3.nip.io", NULL));
  assert_false(rp_http_server_host_ok("localhost:", NULL));
  assert_false(rp_http_server_host_ok("localhost:80x", NULL));
  assert_false(rp_http_server_host_ok("", NULL));
  assert_false(rp_http_server_host_ok("reaper.example.internal", NULL));
  assert_true(rp_http_server_host_ok("REAPER.example.internal.", names));
}

/* A large answer (thousands of workloads) is written in pieces without
 * blocking the loop, and arrives whole. */
static void
test_large_answer(void **state)
{
  (void)state;
  struct world w;
  world_init(&w);
  for (int i = 0; i < 3000; i++) {
    char id[32], name[32];
    snprintf(id, sizeof(id), "%016d", i);
    snprintf(name, sizeof(name), "worker-%d", i);
    add(&w, id, name, (i % 200) * 60000, "tier", i % 2 ? "web" : "batch", NULL);
  }
  world_start(&w, NULL);
  struct asks a = {.n = 2, .paths = {"/status", "/"}};
  serve_while(&w, ask_all_fn, &a);
  assert_int_equal(a.resp[0].status, 200);
  json_error_t je;
  json_t *doc = json_loads(a.resp[0].body, 0, &je);
  assert_non_null(doc);
  assert_int_equal(json_array_size(json_object_get(doc, "workloads")), 3000);
  json_decref(doc);
  assert_int_equal(a.resp[1].status, 200);
  assert_non_null(strstr(a.resp[1].body, "worker-2999"));
  assert_non_null(strstr(a.resp[1].body, "</html>"));
  asks_clear(&a);
  world_free(&w);
}

int
main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_healthz),
      cmocka_unit_test(test_readyz),
      cmocka_unit_test(test_status_json),
      cmocka_unit_test(test_recent_is_bounded_newest_first),
      cmocka_unit_test(test_metrics_endpoint),
      cmocka_unit_test(test_page),
      cmocka_unit_test(test_methods_and_paths),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_token),
      cmocka_unit_test(test_listen_addresses),
      cmocka_unit_test(test_slow_client_blocks_nobody),
      cmocka_unit_test(test_many_clients),
      cmocka_unit_test(test_slow_clients_give_way),
      cmocka_unit_test(test_refused_is_a_503_not_a_reset),
      cmocka_unit_test(test_host_header),
      cmocka_unit_test(test_large_answer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
