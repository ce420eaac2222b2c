/* The resolver on the loop against a scripted registry: a tiny HTTP/1.1
 * server on 127.0.0.1, served by the same loop, whose answers each test
 * writes.  It stands in for registries only for what Debian's distribution
 * 2.8.2 never does (test_registry_resolve.sh runs the real one): a HEAD
 * without Docker-Content-Digest or Content-Type, bytes that are not their
 * digest, 429 and 5xx, a token refused after it was remembered, a realm on
 * plain HTTP elsewhere, answers that never come, bodies over the cap.  Each
 * test ends with the loop closing with nothing left open. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <uv.h>

#include "error.h"
#include "http_client.h"
#include "image_index.h"
#include "image_ref.h"
#include "registry.h"
#include "util.h"

#define DOCKER_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MANIFEST "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}"
#define DA                                                                     \
  "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB                                                                     \
  "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define INDEX                                                                  \
  "{\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+"    \
  "json\",\"digest\":\"" DA "\",\"platform\":{\"os\":\"linux\","               \
  "\"architecture\":\"arm64\"}},{\"mediaType\":\"application/vnd.oci.image."   \
  "manifest.v1+json\",\"digest\":\"" DB "\",\"platform\":{\"os\":\"linux\","   \
  "\"architecture\":\"amd64\"}}]}"

/* ---- the scripted registry ---- */

/* Route tables give the fields in order and stop at the last one they
 * need: the rest are zero, as intended. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct route {
  const char *method; /* "HEAD", "GET" */
  const char *path;   /* exact, or a prefix when it ends with '*' */
  int status;
  const char *headers;   /* extra lines, each ending in \r\n */
  const char *body;      /* NULL: empty */
  size_t body_len;       /* 0: strlen(body) */
  const char *want_auth; /* when set, another Authorization gets 401 with
                            headers401 */
  const char *headers401;
  int max_hits; /* 0: any; else skipped once used that often */
  bool hang;    /* never answer */
  int hits;
  char auth[512]; /* the last request's Authorization */
  char query[512];
};

struct peer {
  uv_loop_t *loop;
  uv_tcp_t server;
  int port;
  struct route *routes;
  size_t n_routes;
  struct pconn *conns;
  int requests;
};

struct pconn {
  uv_tcp_t tcp;
  struct peer *p;
  struct pconn *prev, *next;
  char buf[8192];
  size_t len;
  bool closing, answered;
};

static void
pconn_closed_cb(uv_handle_t *h)
{
  struct pconn *c = h->data;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->p->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
}

static void
pconn_close(struct pconn *c)
{
  if (c->closing)
    return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->tcp, pconn_closed_cb);
}

struct pwrite {
  uv_write_t req;
  struct pconn *c;
  char *data;
};

static void
pwrite_cb(uv_write_t *req, int status)
{
  struct pwrite *w = (struct pwrite *)req;
  pconn_close(w->c);
  free(w->data);
  free(w);
}

static void
respond(struct pconn *c, bool head, int status, const char *headers,
        const char *body, size_t body_len)
{
  char *head_text = NULL;
  int n = asprintf(&head_text,
                   "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: "
                   "close\r\n%s\r\n",
                   status, body_len, headers ? headers : "");
  assert_true(n > 0);
  size_t total = (size_t)n + (head ? 0 : body_len);
  struct pwrite *w = rp_xcalloc(1, sizeof(*w));
  w->c = c;
  w->data = rp_xmalloc(total);
  memcpy(w->data, head_text, (size_t)n);
  if (!head && body_len)
    memcpy(w->data + n, body, body_len);
  free(head_text);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)total);
  assert_int_equal(uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, pwrite_cb),
                   0);
}

static bool
path_matches(const char *pattern, const char *path)
{
  size_t n = strlen(pattern);
  if (n && pattern[n - 1] == '*')
    return strncmp(pattern, path, n - 1) == 0;
  return strcmp(pattern, path) == 0;
}

static void
handle(struct pconn *c)
{
  struct peer *p = c->p;
  char method[16], target[1024];
  if (sscanf(c->buf, "%15s %1023s", method, target) != 2)
    return pconn_close(c);
  c->answered = true;
  p->requests++;
  char path[1024];
  snprintf(path, sizeof(path), "%.*s", (int)strcspn(target, "?"), target);
  char auth[512] = "";
  const char *a = strcasestr(c->buf, "\r\nAuthorization: ");
  if (a) {
    a += strlen("\r\nAuthorization: ");
    snprintf(auth, sizeof(auth), "%.*s", (int)strcspn(a, "\r\n"), a);
  }
  for (size_t i = 0; i < p->n_routes; i++) {
    struct route *r = &p->routes[i];
    if (strcmp(r->method, method) != 0 || !path_matches(r->path, path) ||
        (r->max_hits && r->hits >= r->max_hits))
      continue;
    r->hits++;
    snprintf(r->auth, sizeof(r->auth), "%s", auth);
    snprintf(r->query, sizeof(r->query), "%s",
             strchr(target, '?') ? strchr(target, '?') + 1 : "");
    if (r->hang)
      return;
    bool head = strcmp(method, "HEAD") == 0;
    if (r->want_auth && strcmp(auth, r->want_auth) != 0)
      return respond(c, head, 401, r->headers401, "", 0);
    size_t len = r->body ? (r->body_len ? r->body_len : strlen(r->body)) : 0;
    return respond(c, head, r->status, r->headers, r->body, len);
  }
  respond(c, strcmp(method, "HEAD") == 0, 404, NULL, "", 0);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  struct pconn *c = h->data;
  buf->base = c->buf + c->len;
  buf->len = sizeof(c->buf) - 1 - c->len;
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct pconn *c = s->data;
  if (n < 0)
    return pconn_close(c);
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  if (!c->answered && strstr(c->buf, "\r\n\r\n"))
    handle(c);
  else if (c->len >= sizeof(c->buf) - 1)
    pconn_close(c);
}

static void
connection_cb(uv_stream_t *server, int status)
{
  struct peer *p = server->data;
  assert_int_equal(status, 0);
  struct pconn *c = rp_xcalloc(1, sizeof(*c));
  c->p = p;
  uv_tcp_init(p->loop, &c->tcp);
  c->tcp.data = c;
  c->next = p->conns;
  if (p->conns)
    p->conns->prev = c;
  p->conns = c;
  assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void
peer_start(struct peer *p, uv_loop_t *loop, struct route *routes, size_t n)
{
  *p = (struct peer){.loop = loop, .routes = routes, .n_routes = n};
  uv_tcp_init(loop, &p->server);
  p->server.data = p;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  assert_int_equal(uv_tcp_bind(&p->server, (struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&p->server, 16, connection_cb), 0);
  struct sockaddr_storage got;
  int len = sizeof(got);
  uv_tcp_getsockname(&p->server, (struct sockaddr *)&got, &len);
  p->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void
peer_stop(struct peer *p)
{
  for (struct pconn *c = p->conns; c; c = c->next)
    pconn_close(c);
  uv_close((uv_handle_t *)&p->server, NULL);
}

/* ---- the resolver's side ---- */

struct outcome {
  bool done;
  int code;
  char message[512];
  char digest[160], platform_digest[160], media_type[128];
  bool is_index;
};

static void
resolved_cb(void *arg, const struct rp_registry_result *res,
            const struct rp_error *err)
{
  struct outcome *o = arg;
  assert_false(o->done);
  o->done = true;
  if (err) {
    o->code = err->code;
    snprintf(o->message, sizeof(o->message), "%s", err->message);
    assert_null(res);
    return;
  }
  snprintf(o->digest, sizeof(o->digest), "%s", res->digest);
  snprintf(o->platform_digest, sizeof(o->platform_digest), "%s",
           res->platform_digest);
  snprintf(o->media_type, sizeof(o->media_type), "%s", res->media_type);
  o->is_index = res->is_index;
}

struct fixture {
  uv_loop_t loop;
  struct peer peer;
  struct rp_http *http;
  struct rp_registry *reg;
};

static void
setup(struct fixture *f, struct route *routes, size_t n)
{
  assert_int_equal(uv_loop_init(&f->loop), 0);
  peer_start(&f->peer, &f->loop, routes, n);
  assert_int_equal(rp_http_new(&f->loop, &f->http, NULL), 0);
  struct rp_registry_options opt = {.timeout_ms = 2000};
  f->reg = rp_registry_new(f->http, &opt);
}

static void
teardown(struct fixture *f)
{
  rp_registry_free(f->reg);
  rp_http_close(f->http);
  peer_stop(&f->peer);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void
start(struct fixture *f, const char *repo_ref, struct outcome *o,
      struct rp_registry_op **op)
{
  cleanup_free char *s =
      rp_xasprintf("127.0.0.1:%d/%s", f->peer.port, repo_ref);
  struct rp_image_ref ref;
  assert_int_equal(rp_image_ref_parse(s, &ref, NULL), 0);
  struct rp_platform p;
  assert_int_equal(rp_platform_parse("linux/amd64", &p, NULL), 0);
  *o = (struct outcome){0};
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(
      rp_registry_resolve(f->reg, &ref, &p, resolved_cb, o, op, &err), 0);
  rp_image_ref_clear(&ref);
  assert_false(o->done); /* never before rp_registry_resolve returns */
}

static void
wait_done(struct fixture *f, struct outcome *o)
{
  int64_t end = rp_mono_ms() + 10000;
  while (!o->done) {
    assert_true(rp_mono_ms() < end);
    uv_run(&f->loop, UV_RUN_ONCE);
  }
}

static void
resolve(struct fixture *f, const char *repo_ref, struct outcome *o)
{
  start(f, repo_ref, o, NULL);
  wait_done(f, o);
}

static char *
digest_of(const char *s)
{
  char d[RP_DIGEST_SHA256_LEN];
  rp_image_digest_sha256(s, strlen(s), d);
  return rp_xstrdup(d);
}

/* ---- tests ---- */

static void
test_head_without_digest(void **state)
{
  (void)state;
  /* No Docker-Content-Digest on HEAD: the GET's bytes give it. */
  struct route routes[] = {
      {"HEAD", "/v2/app/manifests/1", 200, "Content-Type: " DOCKER_V2 "\r\n",
       MANIFEST},
      {"GET", "/v2/app/manifests/1", 200, "Content-Type: " DOCKER_V2 "\r\n",
       MANIFEST},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  struct outcome o;
  resolve(&f, "app:1", &o);
  assert_int_equal(o.code, 0);
  cleanup_free char *want = digest_of(MANIFEST);
  assert_string_equal(o.digest, want);
  assert_string_equal(o.platform_digest, want);
  assert_string_equal(o.media_type, DOCKER_V2);
  assert_int_equal(routes[1].hits, 1);
  assert_int_equal(rp_registry_stats(f.reg)->outcomes[RP_REGISTRY_OK], 1);
  assert_int_equal(rp_registry_stats(f.reg)->requests, 2);
  teardown(&f);
}

static void
test_index_without_media_types(void **state)
{
  (void)state;
  /* A digest but no Content-Type: the body says it is an index (an OCI
   * index may leave mediaType out), chosen from at once. */
  cleanup_free char *di = digest_of(INDEX);
  cleanup_free char *hdr = rp_xasprintf("Docker-Content-Digest: %s\r\n", di);
  cleanup_free char *by_digest = rp_xasprintf("/v2/app/manifests/%s", di);
  struct route routes[] = {
      {"HEAD", "/v2/app/manifests/multi", 200, hdr, INDEX},
      {"GET", by_digest, 200, NULL, INDEX},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  struct outcome o;
  resolve(&f, "app:multi", &o);
  assert_int_equal(o.code, 0);
  assert_string_equal(o.digest, di);
  assert_true(o.is_index);
  assert_string_equal(o.platform_digest, DB);
  assert_string_equal(o.media_type, OCI_INDEX);
  teardown(&f);
}

static void
test_bytes_not_their_digest(void **state)
{
  (void)state;
  /* The index fetched by digest is other bytes: refused. */
  cleanup_free char *hdr = rp_xasprintf(
      "Docker-Content-Digest: %s\r\nContent-Type: " OCI_INDEX "\r\n", DA);
  struct route routes[] = {
      {"HEAD", "/v2/app/manifests/multi", 200, hdr, NULL},
      {"GET", "/v2/app/manifests/" DA, 200, "Content-Type: " OCI_INDEX "\r\n",
       INDEX},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  struct outcome o;
  resolve(&f, "app:multi", &o);
  assert_int_equal(o.code, RP_EPROTO);
  assert_non_null(strstr(o.message, "not the " DA));
  assert_int_equal(rp_registry_stats(f.reg)->outcomes[RP_REGISTRY_BAD_ANSWER],
                   1);
  /* A digest header that disagrees with the asked digest, too. */
  routes[0].path = "/v2/app/manifests/" DB;
  resolve(&f, "app@" DB, &o);
  assert_int_equal(o.code, RP_EPROTO);
  assert_non_null(strstr(o.message, "asked for " DB));
  teardown(&f);
}

#define S1_BODY "{\"schemaVersion\":1}"
#define S1_TYPE                                                                \
  "Content-Type: "                                                             \
  "application/vnd.docker.distribution.manifest.v1+prettyjws\r\n"

static void
test_statuses(void **state)
{
  (void)state;
  cleanup_free char *s1 = digest_of(S1_BODY);
  cleanup_free char *s1_head =
      rp_xasprintf("Docker-Content-Digest: %s\r\n" S1_TYPE, s1);
  cleanup_free char *s1_path = rp_xasprintf("/v2/schema1/manifests/%s", s1);
  struct route routes[] = {
      {"HEAD", "/v2/limited/manifests/1", 429, NULL, NULL},
      {"HEAD", "/v2/broken/manifests/1", 503, NULL, NULL},
      {"HEAD", "/v2/denied/manifests/1", 403, NULL, NULL},
      {"HEAD", "/v2/nochallenge/manifests/1", 401, NULL, NULL},
      {"HEAD", "/v2/schema1/manifests/1", 200, s1_head, NULL},
      {"GET", s1_path, 200, S1_TYPE, S1_BODY},
      {"HEAD", "/v2/errors/manifests/1", 200, "Content-Type: " DOCKER_V2 "\r\n",
       NULL},
      {"GET", "/v2/errors/manifests/1", 404, NULL,
       "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest "
       "unknown\\n\\u0007\"}]}"},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  struct {
    const char *ref;
    int code;
    enum rp_registry_outcome outcome;
    const char *says;
  } cases[] = {
      {"limited:1", EAGAIN, RP_REGISTRY_RATE_LIMITED, "429"},
      {"broken:1", EREMOTEIO, RP_REGISTRY_SERVER_ERROR, "answered 503"},
      {"denied:1", EPERM, RP_REGISTRY_DENIED, "403"},
      {"nochallenge:1", EACCES, RP_REGISTRY_UNAUTHORIZED,
       "without a challenge"},
      {"missing:1", RP_ENOTFOUND, RP_REGISTRY_NOT_FOUND, "404"},
      /* The registry's own words, printable only. */
      {"errors:1", RP_ENOTFOUND, RP_REGISTRY_NOT_FOUND,
       "404 unknown repository or tag (MANIFEST_UNKNOWN: manifest unknown?"
       "?)"},
      /* A schema 1 manifest (or any other type) is not read. */
      {"schema1:1", RP_EPROTO, RP_REGISTRY_BAD_ANSWER, "v1+prettyjws"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(cases); i++) {
    struct outcome o;
    resolve(&f, cases[i].ref, &o);
    assert_int_equal(o.code, cases[i].code);
    if (strstr(o.message, cases[i].says) == NULL)
      fail_msg("%s: '%s' does not say '%s'", cases[i].ref, o.message,
               cases[i].says);
    assert_int_equal(rp_registry_outcome_of(&(struct rp_error){.code = o.code}),
                     cases[i].outcome);
    /* The reference names the failure. */
    assert_non_null(strstr(o.message, "/"));
  }
  const struct rp_registry_stats *st = rp_registry_stats(f.reg);
  assert_int_equal(st->resolves, RP_ARRAY_LEN(cases));
  assert_int_equal(st->outcomes[RP_REGISTRY_RATE_LIMITED], 1);
  assert_int_equal(st->outcomes[RP_REGISTRY_SERVER_ERROR], 1);
  assert_int_equal(st->outcomes[RP_REGISTRY_DENIED], 1);
  assert_int_equal(st->outcomes[RP_REGISTRY_UNAUTHORIZED], 1);
  assert_int_equal(st->outcomes[RP_REGISTRY_NOT_FOUND], 2);
  assert_int_equal(st->outcomes[RP_REGISTRY_BAD_ANSWER], 1);
  assert_int_equal(st->outcomes[RP_REGISTRY_OK], 0);
  teardown(&f);
}

static void
test_remembered_token_refused(void **state)
{
  (void)state;
  /* A token that the registry stops taking (revoked, or expired early) is
   * dropped and a new one got, within the same resolve. */
  char challenge[256], realm[128];
  struct route routes[] = {
      {"GET", "/token", 200, "Content-Type: application/json\r\n",
       "{\"token\":\"t1\",\"expires_in\":300}", 0, NULL, NULL, 1},
      {"GET", "/token", 200, "Content-Type: application/json\r\n",
       "{\"access_token\":\"t2\"}"},
      {"HEAD", "/v2/app/manifests/1", 200,
       "Docker-Content-Digest: " DA "\r\nContent-Type: " DOCKER_V2 "\r\n", NULL,
       0, "Bearer t1", challenge, 2},
      {"HEAD", "/v2/app/manifests/1", 200,
       "Docker-Content-Digest: " DB "\r\nContent-Type: " DOCKER_V2 "\r\n", NULL,
       0, "Bearer t2", challenge},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  snprintf(realm, sizeof(realm), "http://127.0.0.1:%d/token", f.peer.port);
  snprintf(challenge, sizeof(challenge),
           "WWW-Authenticate: Bearer realm=\"%s\",service=\"svc one\","
           "scope=\"repository:app:push,pull\"\r\n",
           realm);
  struct outcome o;
  resolve(&f, "app:1", &o); /* 401, t1, 200 */
  assert_int_equal(o.code, 0);
  assert_string_equal(o.digest, DA);
  /* Our own scope, whatever the challenge suggests; no credentials here. */
  assert_string_equal(routes[0].query,
                      "service=svc%20one&scope=repository%3Aapp%3Apull");
  assert_string_equal(routes[0].auth, "");
  resolve(&f, "app:1", &o); /* t1 remembered: 401 (max hits), t2, 200 */
  assert_int_equal(o.code, 0);
  assert_string_equal(o.digest, DB);
  const struct rp_registry_stats *st = rp_registry_stats(f.reg);
  assert_int_equal(st->token_requests, 2);
  assert_int_equal(st->token_reused, 1);
  resolve(&f, "app:1", &o); /* t2 remembered: one request */
  assert_int_equal(o.code, 0);
  assert_int_equal(st->token_requests, 2);
  assert_int_equal(st->token_reused, 2);
  assert_int_equal(routes[3].hits, 3);

  /* A token the registry refuses at once: one retry, then unauthorized. */
  routes[3].want_auth = "Bearer never";
  rp_registry_set_auth(f.reg, NULL); /* forgets t2 */
  resolve(&f, "app:1", &o);
  assert_int_equal(o.code, EACCES);
  assert_non_null(strstr(o.message, "with the token just obtained"));
  assert_int_equal(st->token_requests, 3);
  teardown(&f);
}

static void
test_token_with_credentials(void **state)
{
  (void)state;
  /* A challenge without service: none asked; credentials as Basic at the
   * realm, with account, and the realm's own query kept. */
  char challenge[256];
  struct route routes[] = {
      {"GET", "/auth", 200, NULL, "{\"token\":\"tk\"}"},
      {"HEAD", "/v2/org/app/manifests/1", 200,
       "Docker-Content-Digest: " DA "\r\nContent-Type: " DOCKER_V2 "\r\n", NULL,
       0, "Bearer tk", challenge},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  snprintf(
      challenge, sizeof(challenge),
      "WWW-Authenticate: Bearer realm=\"http://localhost:%d/auth?x=1\"\r\n",
      f.peer.port);
  cleanup_free char *json =
      rp_xasprintf("{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"YWxpY2U6cHc=\"}}}",
                   f.peer.port);
  struct rp_registry_auth *auth = NULL;
  assert_int_equal(rp_registry_auth_parse(json, strlen(json), "t", &auth, NULL),
                   0);
  rp_registry_set_auth(f.reg, auth);
  struct outcome o;
  resolve(&f, "org/app:1", &o);
  assert_int_equal(o.code, 0);
  assert_string_equal(routes[0].query,
                      "x=1&scope=repository%3Aorg%2Fapp%3Apull&account=alice");
  assert_string_equal(routes[0].auth, "Basic YWxpY2U6cHc=");
  assert_string_equal(routes[1].auth, "Bearer tk");
  teardown(&f);
}

static void
test_credentials_stay_off_plain_http(void **state)
{
  (void)state;
  /* A registry on loopback pointing at a plain-HTTP realm elsewhere gets
   * no credentials sent there; without credentials, anonymous is fine. */
  struct route routes[] = {
      {"HEAD", "/v2/app/manifests/1", 401,
       "WWW-Authenticate: Bearer realm=\"http://192.0.2.1:9/token\"\r\n"},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  cleanup_free char *json =
      rp_xasprintf("{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"YWxpY2U6cHc=\"}}}",
                   f.peer.port);
  struct rp_registry_auth *auth = NULL;
  assert_int_equal(rp_registry_auth_parse(json, strlen(json), "t", &auth, NULL),
                   0);
  rp_registry_set_auth(f.reg, auth);
  struct outcome o;
  resolve(&f, "app:1", &o);
  assert_int_equal(o.code, EACCES);
  assert_non_null(strstr(o.message, "plain HTTP on another host"));
  assert_int_equal(rp_registry_stats(f.reg)->token_requests, 0);
  /* A realm that is no URL at all. */
  routes[0].headers = "WWW-Authenticate: Bearer realm=\"Registry Realm\"\r\n";
  resolve(&f, "app:1", &o);
  assert_int_equal(o.code, RP_EPROTO);
  teardown(&f);
}

static void
test_basic_challenge_remembered(void **state)
{
  (void)state;
  struct route routes[] = {
      {"HEAD", "/v2/app/manifests/1", 200,
       "Docker-Content-Digest: " DA "\r\nContent-Type: " DOCKER_V2 "\r\n", NULL,
       0, "Basic YWxpY2U6cHc=",
       "WWW-Authenticate: Basic realm=\"Registry Realm\"\r\n"},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  struct outcome o;
  /* No credentials: said so. */
  resolve(&f, "app:1", &o);
  assert_int_equal(o.code, EACCES);
  assert_non_null(strstr(o.message, "config.json has none for 127.0.0.1:"));
  cleanup_free char *json =
      rp_xasprintf("{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"YWxpY2U6cHc=\"}}}",
                   f.peer.port);
  struct rp_registry_auth *auth = NULL;
  assert_int_equal(rp_registry_auth_parse(json, strlen(json), "t", &auth, NULL),
                   0);
  rp_registry_set_auth(f.reg, auth);
  resolve(&f, "app:1", &o);
  assert_int_equal(o.code, 0);
  assert_string_equal(o.digest, DA);
  int before = f.peer.requests;
  resolve(&f, "app:1", &o); /* Basic remembered: no 401 first */
  assert_int_equal(o.code, 0);
  assert_int_equal(f.peer.requests - before, 1);
  teardown(&f);
}

static void
test_cancel_and_free_in_flight(void **state)
{
  (void)state;
  struct route routes[] = {
      {"HEAD", "/v2/*", 0, NULL, NULL, 0, NULL, NULL, 0, true},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  struct outcome a, b;
  struct rp_registry_op *op = NULL;
  start(&f, "app:1", &a, &op);
  start(&f, "app:2", &b, NULL);
  while (routes[0].hits < 2)
    uv_run(&f.loop, UV_RUN_ONCE);
  assert_int_equal(rp_registry_active(f.reg), 2);
  rp_registry_cancel(op);
  assert_true(a.done);
  assert_int_equal(a.code, RP_ECANCELED);
  assert_false(b.done);
  rp_registry_free(f.reg); /* b's callback runs, cancelled */
  f.reg = NULL;
  assert_true(b.done);
  assert_int_equal(b.code, RP_ECANCELED);
  teardown(&f);
}

static void
test_timeout(void **state)
{
  (void)state;
  struct route routes[] = {
      {"HEAD", "/v2/*", 0, NULL, NULL, 0, NULL, NULL, 0, true},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  rp_registry_free(f.reg);
  struct rp_registry_options opt = {.timeout_ms = 300};
  f.reg = rp_registry_new(f.http, &opt);
  struct outcome o;
  int64_t t0 = rp_mono_ms();
  resolve(&f, "app:1", &o);
  assert_int_equal(o.code, RP_ETIMEOUT);
  assert_true(rp_mono_ms() - t0 < 3000);
  assert_int_equal(rp_registry_stats(f.reg)->outcomes[RP_REGISTRY_TIMEOUT], 1);
  teardown(&f);
}

static void
test_body_over_cap(void **state)
{
  (void)state;
  size_t n = RP_REGISTRY_MANIFEST_MAX + 1;
  cleanup_free char *big = rp_xmalloc(n + 1);
  memset(big, ' ', n);
  big[n] = '\0';
  struct route routes[] = {
      {"HEAD", "/v2/app/manifests/1", 200, "Content-Type: " DOCKER_V2 "\r\n"},
      {"GET", "/v2/app/manifests/1", 200, "Content-Type: " DOCKER_V2 "\r\n",
       big, n},
  };
  struct fixture f;
  setup(&f, routes, RP_ARRAY_LEN(routes));
  struct outcome o;
  resolve(&f, "app:1", &o);
  assert_int_equal(o.code, RP_EPROTO);
  assert_non_null(strstr(o.message, "over"));
  teardown(&f);
}

int
main(void)
{
  /* The scripted registry writes to connections curl may have closed. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_head_without_digest),
      cmocka_unit_test(test_index_without_media_types),
      cmocka_unit_test(test_bytes_not_their_digest),
      cmocka_unit_test(test_statuses),
      cmocka_unit_test(test_remembered_token_refused),
      cmocka_unit_test(test_token_with_credentials),
      cmocka_unit_test(test_credentials_stay_off_plain_http),
      cmocka_unit_test(test_basic_challenge_remembered),
      cmocka_unit_test(test_cancel_and_free_in_flight),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_body_over_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
