/* The resolver: an image reference to its tag's digest and its platform's
 * manifest digest, through the distribution API on the loop (see
 * registry.h).  One resolve is a small state machine of HTTP requests,
 * each started from the previous one's callback:
 *
 *   HEAD manifest --200 with digest and media type--> done, or INDEX
 *        |  \--200 without them--> GET manifest --> done (index: chosen
 *        |                                          from its body)
 *        \--401--> TOKEN (Bearer) or Basic --> the same request again, once
 *   INDEX (GET the index by digest) --> the platform's entry --> done
 *
 * Only this file knows the protocol's statuses; everything it reports is
 * an rp_error whose code says the outcome (enum rp_registry_outcome). */
#include "registry.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 30000
/* Tokens and index choices remembered, each; the oldest go first. */
#define CACHE_MAX 512
/* A token is dropped this long before the registry would refuse it. */
#define TOKEN_MARGIN_MS 5000
/* Longest header value read (a challenge, a digest, a media type). */
#define HEADER_MAX 8192

/* A remembered Authorization line for one repository of one registry. */
struct cached_auth {
  struct cached_auth *next;
  char *key;            /* owned: "api-host/path" */
  char *header;         /* owned secret: "Authorization: ..." */
  int64_t expires_mono; /* INT64_MAX for Basic */
};

/* A remembered choice in an index: the same index bytes always give it. */
struct cached_choice {
  struct cached_choice *next;
  char *key;    /* owned: "api-host/path@index-digest linux/amd64" */
  char *digest; /* owned: the platform's manifest */
};

struct rp_registry {
  struct rp_http *http; /* borrowed */
  int64_t timeout_ms;
  struct rp_registry_auth *auth; /* owned or NULL */
  struct rp_registry_op *ops;    /* in flight */
  size_t active;
  struct cached_auth *auths;
  struct cached_choice *choices;
  struct rp_registry_stats stats;
};

enum step { STEP_HEAD, STEP_GET, STEP_INDEX, STEP_TOKEN };

struct rp_registry_op {
  struct rp_registry *r; /* borrowed */
  struct rp_registry_op *prev, *next;
  rp_registry_cb cb;
  void *arg;
  struct rp_image_ref ref; /* owned copy */
  char *canonical;         /* owned: for results and messages */
  char *cache_key;         /* owned: "api-host/path" */
  struct rp_platform platform;
  char platform_str[100];
  struct rp_http_endpoint ep;       /* the registry */
  struct rp_http_endpoint token_ep; /* the realm, once challenged */
  char *token_path;                 /* owned: realm path and query */
  char *auth_header;                /* owned secret or NULL */
  bool auth_from_cache; /* auth_header was remembered, not just got */
  bool answered;        /* a challenge was answered: a 401 now is final */
  enum step step;       /* the request in flight */
  enum step redo;       /* the request a token is for */
  struct rp_http_xfer *xfer;
  /* The answer's headers (the last response's: reset at a status line). */
  char *h_digest, *h_type;
  struct rp_registry_challenge challenge;
  /* What is known so far. */
  char *digest, *media_type, *platform_digest;
  enum rp_manifest_kind kind;
};

static const char *const outcome_names[RP_REGISTRY_OUTCOMES] = {
    [RP_REGISTRY_OK] = "ok",
    [RP_REGISTRY_UNREACHABLE] = "unreachable",
    [RP_REGISTRY_TIMEOUT] = "timeout",
    [RP_REGISTRY_UNAUTHORIZED] = "unauthorized",
    [RP_REGISTRY_DENIED] = "denied",
    [RP_REGISTRY_NOT_FOUND] = "not_found",
    [RP_REGISTRY_RATE_LIMITED] = "rate_limited",
    [RP_REGISTRY_SERVER_ERROR] = "server_error",
    [RP_REGISTRY_BAD_ANSWER] = "bad_answer",
    [RP_REGISTRY_NO_PLATFORM] = "no_platform",
    [RP_REGISTRY_CANCELED] = "canceled",
};

const char *
rp_registry_outcome_name(enum rp_registry_outcome o)
{
  return (unsigned)o < RP_REGISTRY_OUTCOMES ? outcome_names[o] : "unknown";
}

enum rp_registry_outcome
rp_registry_outcome_of(const struct rp_error *err)
{
  if (err == NULL)
    return RP_REGISTRY_OK;
  switch (err->code) {
  case RP_ETIMEOUT:
    return RP_REGISTRY_TIMEOUT;
  case EACCES:
    return RP_REGISTRY_UNAUTHORIZED;
  case EPERM:
    return RP_REGISTRY_DENIED;
  case RP_ENOTFOUND:
    return RP_REGISTRY_NOT_FOUND;
  case EAGAIN:
    return RP_REGISTRY_RATE_LIMITED;
  case EREMOTEIO:
    return RP_REGISTRY_SERVER_ERROR;
  case RP_EPROTO:
  case EMSGSIZE:
    return RP_REGISTRY_BAD_ANSWER;
  case ENOEXEC:
    return RP_REGISTRY_NO_PLATFORM;
  case RP_ECANCELED:
    return RP_REGISTRY_CANCELED;
  default:
    return RP_REGISTRY_UNREACHABLE;
  }
}

/* ---- caches ---- */

static void
cached_auth_free(struct cached_auth *c)
{
  free(c->key);
  rp_registry_secret_free(c->header);
  free(c);
}

static void
auths_clear(struct rp_registry *r)
{
  while (r->auths) {
    struct cached_auth *c = r->auths;
    r->auths = c->next;
    cached_auth_free(c);
  }
}

/* Drops the entry for key, and every expired one. */
static void
auth_forget(struct rp_registry *r, const char *key)
{
  int64_t now = rp_mono_ms();
  for (struct cached_auth **pp = &r->auths; *pp;) {
    struct cached_auth *c = *pp;
    if ((key && strcmp(c->key, key) == 0) || c->expires_mono <= now) {
      *pp = c->next;
      cached_auth_free(c);
    } else {
      pp = &c->next;
    }
  }
}

static const char *
auth_lookup(struct rp_registry *r, const char *key)
{
  int64_t now = rp_mono_ms();
  for (struct cached_auth *c = r->auths; c; c = c->next)
    if (strcmp(c->key, key) == 0 && c->expires_mono > now)
      return c->header;
  return NULL;
}

/* Keeps at most CACHE_MAX - 1 entries of a list whose next member is
 * first, dropping from the tail (the oldest: entries go in at the head). */
#define TRIM(list, type, free_fn)                                              \
  do {                                                                         \
    size_t n_ = 0;                                                             \
    for (type **pp_ = &(list); *pp_; n_++) {                                   \
      if (n_ >= CACHE_MAX - 1) {                                               \
        type *dead_ = *pp_;                                                    \
        *pp_ = dead_->next;                                                    \
        free_fn(dead_);                                                        \
      } else {                                                                 \
        pp_ = &(*pp_)->next;                                                   \
      }                                                                        \
    }                                                                          \
  } while (0)

static void
auth_remember(struct rp_registry *r, const char *key, const char *header,
              int64_t expires_mono)
{
  auth_forget(r, key);
  TRIM(r->auths, struct cached_auth, cached_auth_free);
  struct cached_auth *c = rp_xcalloc(1, sizeof(*c));
  c->key = rp_xstrdup(key);
  c->header = rp_xstrdup(header);
  c->expires_mono = expires_mono;
  c->next = r->auths;
  r->auths = c;
}

static void
cached_choice_free(struct cached_choice *c)
{
  free(c->key);
  free(c->digest);
  free(c);
}

static char *
choice_key(const struct rp_registry_op *op)
{
  return rp_xasprintf("%s@%s %s", op->cache_key, op->digest, op->platform_str);
}

static const char *
choice_lookup(struct rp_registry *r, const char *key)
{
  for (struct cached_choice *c = r->choices; c; c = c->next)
    if (strcmp(c->key, key) == 0)
      return c->digest;
  return NULL;
}

static void
choice_remember(struct rp_registry *r, const char *key, const char *digest)
{
  if (choice_lookup(r, key))
    return;
  TRIM(r->choices, struct cached_choice, cached_choice_free);
  struct cached_choice *c = rp_xcalloc(1, sizeof(*c));
  c->key = rp_xstrdup(key);
  c->digest = rp_xstrdup(digest);
  c->next = r->choices;
  r->choices = c;
}

/* ---- the resolver ---- */

struct rp_registry *
rp_registry_new(struct rp_http *http, const struct rp_registry_options *opt)
{
  struct rp_registry *r = rp_xcalloc(1, sizeof(*r));
  r->http = http;
  r->timeout_ms =
      opt && opt->timeout_ms > 0 ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
  return r;
}

void
rp_registry_set_auth(struct rp_registry *r, struct rp_registry_auth *auth)
{
  rp_registry_auth_free(r->auth);
  r->auth = auth;
  auths_clear(r);
}

const struct rp_registry_auth *
rp_registry_get_auth(const struct rp_registry *r)
{
  return r ? r->auth : NULL;
}

size_t
rp_registry_active(const struct rp_registry *r)
{
  return r ? r->active : 0;
}

const struct rp_registry_stats *
rp_registry_stats(const struct rp_registry *r)
{
  return &r->stats;
}

static void
reset_headers(struct rp_registry_op *op)
{
  free(op->h_digest);
  free(op->h_type);
  op->h_digest = op->h_type = NULL;
  rp_registry_challenge_clear(&op->challenge);
}

static void
op_free(struct rp_registry_op *op)
{
  rp_image_ref_clear(&op->ref);
  free(op->canonical);
  free(op->cache_key);
  rp_http_endpoint_clear(&op->ep);
  rp_http_endpoint_clear(&op->token_ep);
  free(op->token_path);
  rp_registry_secret_free(op->auth_header);
  reset_headers(op);
  free(op->digest);
  free(op->media_type);
  free(op->platform_digest);
  free(op);
}

/* Ends op: unlinked and counted before its callback runs (which may free
 * r), freed after; nothing touches r afterwards. */
static void
finish(struct rp_registry_op *op, const struct rp_registry_result *res,
       const struct rp_error *err)
{
  struct rp_registry *r = op->r;
  if (op->prev)
    op->prev->next = op->next;
  else
    r->ops = op->next;
  if (op->next)
    op->next->prev = op->prev;
  r->active--;
  r->stats.outcomes[rp_registry_outcome_of(err)]++;
  op->cb(op->arg, res, err);
  op_free(op);
}

static void fail(struct rp_registry_op *op, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct rp_registry_op *op, int code, const char *fmt, ...)
{
  cleanup_error struct rp_error *err = NULL;
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&err, code, fmt, ap);
  va_end(ap);
  rp_error_prefix(&err, "registry: %s", op->canonical);
  finish(op, NULL, err);
}

static void
succeed(struct rp_registry_op *op)
{
  struct rp_registry_result res = {
      .reference = op->canonical,
      .digest = op->digest,
      .media_type = op->media_type ? op->media_type : "",
      .is_index = op->kind == RP_MANIFEST_INDEX,
      .platform = op->platform_str,
      .platform_digest = op->platform_digest ? op->platform_digest : op->digest,
  };
  rp_debug("registry: %s is %s, for %s %s", op->canonical, op->digest,
           op->platform_str, res.platform_digest);
  finish(op, &res, NULL);
}

/* ---- requests ---- */

static void http_cb(void *arg, const struct rp_http_response *resp,
                    const struct rp_error *err);

static bool
header_is(const char *line, size_t len, const char *name, const char **value,
          size_t *vlen)
{
  size_t n = strlen(name);
  if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
    return false;
  const char *v = line + n + 1, *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  *value = v;
  *vlen = (size_t)(end - v);
  return true;
}

static void
header_cb(void *arg, const char *line, size_t len)
{
  struct rp_registry_op *op = arg;
  const char *v;
  size_t n;
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    reset_headers(op); /* a new response (after a 100 Continue, say) */
    return;
  }
  if (len > HEADER_MAX)
    return;
  if (header_is(line, len, "Docker-Content-Digest", &v, &n)) {
    free(op->h_digest);
    op->h_digest = rp_xstrndup(v, n);
  } else if (header_is(line, len, "Content-Type", &v, &n)) {
    free(op->h_type);
    op->h_type = rp_xstrndup(v, strcspn(v, ";") < n ? strcspn(v, ";") : n);
    for (size_t k = strlen(op->h_type); k > 0 && op->h_type[k - 1] == ' '; k--)
      op->h_type[k - 1] = '\0';
  } else if (header_is(line, len, "WWW-Authenticate", &v, &n)) {
    struct rp_registry_challenge c;
    if (rp_registry_challenge_parse(v, n, &c) != 0)
      return;
    /* Of several headers, Bearer wins over Basic. */
    if (op->challenge.scheme == RP_REGISTRY_SCHEME_NONE ||
        (op->challenge.scheme == RP_REGISTRY_SCHEME_BASIC &&
         c.scheme == RP_REGISTRY_SCHEME_BEARER)) {
      rp_registry_challenge_clear(&op->challenge);
      op->challenge = c;
    } else {
      rp_registry_challenge_clear(&c);
    }
  }
}

/* Starts the request of `step` for op; -1 with err when it cannot start
 * (the caller ends op: next() from a callback, rp_registry_resolve
 * itself for the first request). */
static int
send_step(struct rp_registry_op *op, enum step step, struct rp_error **err)
{
  struct rp_registry *r = op->r;
  const char *headers[4] = {0};
  size_t nh = 0;
  cleanup_free char *path = NULL;
  char *basic = NULL; /* a secret: wiped below */
  const struct rp_http_endpoint *ep = &op->ep;
  const char *method = "GET";
  size_t cap = RP_REGISTRY_MANIFEST_MAX;

  if (step == STEP_TOKEN) {
    const struct rp_registry_cred *cred =
        rp_registry_auth_find(r->auth, op->ref.domain);
    /* The scope asked is always our own (pull of this repository), never
     * a wider one a registry might suggest in its challenge. */
    cleanup_free char *scope = rp_xasprintf("repository:%s:pull", op->ref.path);
    cleanup_free char *escaped_scope = rp_url_escape(scope);
    cleanup_free char *service =
        op->challenge.service && op->challenge.service[0]
            ? rp_url_escape(op->challenge.service)
            : NULL;
    path = rp_xasprintf("%s%s%s%s%sscope=%s", op->token_path,
                        strchr(op->token_path, '?') ? "&" : "?",
                        service ? "service=" : "", service ? service : "",
                        service ? "&" : "", escaped_scope);
    if (cred) {
      cleanup_free char *account = rp_url_escape(cred->username);
      char *with = rp_xasprintf("%s&account=%s", path, account);
      free(path);
      path = with;
      char *creds = rp_registry_basic_credentials(cred);
      basic = rp_xasprintf("Authorization: %s", creds);
      rp_registry_secret_free(creds);
    }
    ep = &op->token_ep;
    cap = RP_REGISTRY_TOKEN_MAX;
    r->stats.token_requests++;
  } else {
    const char *what = step == STEP_INDEX ? op->digest
                       : step == STEP_GET && op->digest
                           ? op->digest
                           : rp_image_ref_manifest_ref(&op->ref);
    path = rp_xasprintf("/v2/%s/manifests/%s", op->ref.path, what);
    headers[nh++] = "Accept: " RP_MANIFEST_ACCEPT;
    if (op->auth_header)
      headers[nh++] = op->auth_header;
    if (step == STEP_HEAD)
      method = "HEAD";
  }
  if (basic)
    headers[nh++] = basic;

  struct rp_http_request req = {
      .method = method,
      .path = path,
      .headers = headers,
      .timeout_ms = r->timeout_ms,
      .max_body = cap,
      .on_header = header_cb,
  };
  reset_headers(op);
  op->step = step;
  int rc = rp_http_send(r->http, ep, &req, http_cb, op, &op->xfer);
  rp_registry_secret_free(basic);
  r->stats.requests += rc == 0;
  if (rc != 0)
    return rp_error_set(err, EIO, "%s %s: cannot start the request", method,
                        step == STEP_TOKEN ? ep->base_url : path);
  rp_debug("registry: %s %s%s", method, ep->base_url,
           step == STEP_TOKEN ? " (token)" : path);
  return 0;
}

/* send_step from a callback: a failure to start ends op. */
static void
next(struct rp_registry_op *op, enum step step)
{
  cleanup_error struct rp_error *err = NULL;
  if (send_step(op, step, &err) != 0)
    fail(op, err->code, "%s", err->message);
}

/* The registry's own words from an error body ({"errors":[{"code":...,
 * "message":...}]}), printable and short, or "". */
static void
registry_words(const struct rp_http_response *resp, char *buf, size_t len)
{
  buf[0] = '\0';
  if (resp->body_len == 0)
    return;
  cleanup_json json_t *root = json_loadb(resp->body, resp->body_len, 0, NULL);
  json_t *e = json_array_get(json_object_get(root, "errors"), 0);
  const char *code = json_string_value(json_object_get(e, "code"));
  const char *msg = json_string_value(json_object_get(e, "message"));
  if (code == NULL && msg == NULL)
    return;
  snprintf(buf, len, " (%s%s%.120s)", code ? code : "", code && msg ? ": " : "",
           msg ? msg : "");
  for (char *c = buf; *c; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
      *c = '?';
}

static const char *
step_name(enum step s)
{
  return s == STEP_HEAD    ? "HEAD manifest"
         : s == STEP_TOKEN ? "token"
                           : "GET manifest";
}

/* A status other than 200 or 401 from the registry or the realm. */
static void
fail_status(struct rp_registry_op *op, const struct rp_http_response *resp)
{
  char words[200];
  registry_words(resp, words, sizeof(words));
  long st = resp->status;
  const char *what = step_name(op->step);
  if (st == 403)
    fail(op, EPERM, "%s: 403 denied%s", what, words);
  else if (st == 404)
    fail(op, RP_ENOTFOUND, "%s: 404 unknown repository or tag%s", what, words);
  else if (st == 429)
    fail(op, EAGAIN, "%s: 429 too many requests (rate limited)%s", what, words);
  else
    fail(op, EREMOTEIO, "%s: the registry answered %ld%s", what, st, words);
}

/* 401 from the registry: answer its challenge, once. */
static void
challenged(struct rp_registry_op *op)
{
  struct rp_registry *r = op->r;
  const struct rp_registry_cred *cred =
      rp_registry_auth_find(r->auth, op->ref.domain);
  if (op->auth_from_cache) {
    /* The remembered token expired early or was revoked: get another. */
    auth_forget(r, op->cache_key);
    op->auth_from_cache = false;
  } else if (op->answered) {
    if (op->challenge.scheme == RP_REGISTRY_SCHEME_BASIC)
      fail(op, EACCES,
           "%s: 401 unauthorized with the credentials config.json has for "
           "%s",
           step_name(op->step), op->ref.domain);
    else
      fail(op, EACCES, "%s: 401 unauthorized with the token just obtained",
           step_name(op->step));
    return;
  }
  rp_registry_secret_free(op->auth_header);
  op->auth_header = NULL;
  op->redo = op->step;
  if (op->challenge.scheme == RP_REGISTRY_SCHEME_BEARER) {
    cleanup_free char *base = NULL;
    cleanup_free char *path = NULL;
    if (rp_registry_split_url(op->challenge.realm, &base, &path) != 0)
      return fail(op, RP_EPROTO,
                  "401 with a token realm that is not an "
                  "http(s) URL");
    rp_http_endpoint_clear(&op->token_ep);
    op->token_ep.base_url = RP_STEAL(base);
    op->token_ep.verify_peer = true;
    free(op->token_path);
    op->token_path = RP_STEAL(path);
    /* Credentials go over TLS, or to a realm on this machine. */
    if (cred && strncasecmp(op->token_ep.base_url, "https://", 8) != 0 &&
        !rp_image_ref_plain_http(op->token_ep.base_url + 7))
      return fail(op, EACCES,
                  "the token realm %s is plain HTTP on another host: "
                  "credentials not sent",
                  op->token_ep.base_url);
    next(op, STEP_TOKEN);
    return;
  }
  if (op->challenge.scheme == RP_REGISTRY_SCHEME_BASIC) {
    if (cred == NULL)
      return fail(op, EACCES,
                  "401: the registry wants a user and password, and "
                  "config.json has none for %s",
                  op->ref.domain);
    cleanup_free char *basic = rp_registry_basic_credentials(cred);
    op->auth_header = rp_xasprintf("Authorization: %s", basic);
    explicit_bzero(basic, strlen(basic));
    auth_remember(r, op->cache_key, op->auth_header, INT64_MAX);
    op->answered = true;
    next(op, op->redo);
    return;
  }
  fail(op, EACCES,
       "%s: 401 unauthorized, without a challenge reaper can "
       "answer",
       step_name(op->step));
}

static void
token_answer(struct rp_registry_op *op, const struct rp_http_response *resp)
{
  struct rp_registry *r = op->r;
  if (resp->status == 401 || resp->status == 403) {
    bool cred = rp_registry_auth_find(r->auth, op->ref.domain) != NULL;
    fail(op, EACCES, "token: %s refused %s (%ld)", op->token_ep.base_url,
         cred ? "the credentials config.json has for this registry"
              : "an anonymous request (config.json has no credentials for "
                "this registry)",
         resp->status);
    return;
  }
  if (resp->status != 200)
    return fail_status(op, resp);
  cleanup_error struct rp_error *err = NULL;
  char *token = NULL;
  int64_t expires_in = 0;
  if (rp_registry_token_parse(resp->body, resp->body_len, &token, &expires_in,
                              &err) != 0)
    return fail(op, RP_EPROTO, "token: %s", err->message);
  op->auth_header = rp_xasprintf("Authorization: Bearer %s", token);
  rp_registry_secret_free(token);
  auth_remember(r, op->cache_key, op->auth_header,
                rp_mono_ms() + expires_in * 1000 - TOKEN_MARGIN_MS);
  op->answered = true;
  next(op, op->redo);
}

/* The platform's entry of the index in body (whose digest is op->digest). */
static void
choose(struct rp_registry_op *op, const char *body, size_t len)
{
  cleanup_error struct rp_error *err = NULL;
  char *chosen = NULL;
  if (rp_image_index_select(body, len, &op->platform, &chosen, &err) != 0)
    return fail(op, err->code, "%s", err->message);
  op->platform_digest = chosen;
  cleanup_free char *key = choice_key(op);
  choice_remember(op->r, key, chosen);
  succeed(op);
}

/* The tag's digest and kind are known: done, or the index to read. */
static void
known(struct rp_registry_op *op)
{
  if (op->kind == RP_MANIFEST_IMAGE)
    return succeed(op);
  cleanup_free char *key = choice_key(op);
  const char *cached = choice_lookup(op->r, key);
  if (cached) {
    op->r->stats.index_cached++;
    op->platform_digest = rp_xstrdup(cached);
    return succeed(op);
  }
  next(op, STEP_INDEX);
}

static void
manifest_answer(struct rp_registry_op *op, const struct rp_http_response *resp)
{
  if (resp->status == 401)
    return challenged(op);
  if (resp->status != 200)
    return fail_status(op, resp);
  const char *hd = rp_image_digest_valid(op->h_digest) ? op->h_digest : NULL;
  if (op->ref.digest && hd && strcmp(hd, op->ref.digest) != 0)
    return fail(op, RP_EPROTO, "asked for %s, the registry answered %s",
                op->ref.digest, hd);

  if (op->step == STEP_HEAD) {
    if (hd == NULL)
      hd = op->ref.digest;
    enum rp_manifest_kind kind = rp_manifest_kind_of(op->h_type);
    /* A digest without a known type: GET by that digest (the bytes cannot
     * change under us), and let the body tell. */
    if (hd)
      op->digest = rp_xstrdup(hd);
    if (hd == NULL || kind == RP_MANIFEST_UNKNOWN)
      return next(op, STEP_GET);
    op->media_type = rp_xstrdup(op->h_type);
    op->kind = kind;
    return known(op);
  }

  /* A body: its bytes are what the digest names. */
  if (op->digest && hd && strcmp(op->digest, hd) != 0)
    return fail(op, RP_EPROTO, "%s: the registry answered %s for %s",
                step_name(op->step), hd, op->digest);
  char computed[RP_DIGEST_SHA256_LEN];
  rp_image_digest_sha256(resp->body, resp->body_len, computed);
  const char *expect = op->digest ? op->digest : hd ? hd : op->ref.digest;
  if (expect && strncmp(expect, "sha256:", 7) == 0 &&
      strcmp(expect, computed) != 0)
    return fail(op, RP_EPROTO,
                "%s: the body's digest is %s, not the %s it should have",
                step_name(op->step), computed, expect);
  cleanup_free char *body_type = NULL;
  enum rp_manifest_kind kind =
      rp_manifest_kind_of_body(resp->body, resp->body_len, &body_type);
  if (rp_manifest_kind_of(op->h_type) != RP_MANIFEST_UNKNOWN)
    kind = rp_manifest_kind_of(op->h_type);
  if (op->step == STEP_INDEX) {
    if (kind != RP_MANIFEST_INDEX)
      return fail(op, RP_EPROTO, "the index %s is not an index", op->digest);
    return choose(op, resp->body, resp->body_len);
  }
  if (kind == RP_MANIFEST_UNKNOWN)
    return fail(op, RP_EPROTO,
                "the manifest's media type (%.100s) is not an OCI or Docker "
                "schema 2 manifest or index",
                op->h_type  ? op->h_type
                : body_type ? body_type
                            : "none");
  if (op->digest == NULL)
    op->digest = rp_xstrdup(expect ? expect : computed);
  free(op->media_type);
  op->media_type = rp_xstrdup(
      rp_manifest_kind_of(op->h_type) != RP_MANIFEST_UNKNOWN ? op->h_type
      : body_type                                            ? body_type
      : kind == RP_MANIFEST_INDEX                            ? RP_MT_OCI_INDEX
                                  : RP_MT_OCI_MANIFEST);
  op->kind = kind;
  if (kind == RP_MANIFEST_INDEX)
    return choose(op, resp->body, resp->body_len);
  succeed(op);
}

static void
http_cb(void *arg, const struct rp_http_response *resp,
        const struct rp_error *err)
{
  struct rp_registry_op *op = arg;
  op->xfer = NULL;
  if (err) {
    int code = err->code == EMSGSIZE ? RP_EPROTO : err->code;
    return fail(op, code, "%s", err->message);
  }
  if (op->step == STEP_TOKEN)
    return token_answer(op, resp);
  manifest_answer(op, resp);
}

int
rp_registry_resolve(struct rp_registry *r, const struct rp_image_ref *ref,
                    const struct rp_platform *p, rp_registry_cb cb, void *arg,
                    struct rp_registry_op **op_out, struct rp_error **err)
{
  if (ref == NULL || ref->domain == NULL || ref->path == NULL ||
      (ref->tag == NULL && ref->digest == NULL) || p == NULL || cb == NULL)
    return rp_error_set(err, EINVAL, "registry: incomplete request");
  struct rp_registry_op *op = rp_xcalloc(1, sizeof(*op));
  op->r = r;
  op->cb = cb;
  op->arg = arg;
  rp_image_ref_copy(&op->ref, ref);
  op->canonical = rp_image_ref_format(ref);
  op->cache_key =
      rp_xasprintf("%s/%s", rp_image_ref_api_host(ref->domain), ref->path);
  op->platform = *p;
  rp_platform_normalize(&op->platform);
  rp_platform_format(&op->platform, op->platform_str, sizeof(op->platform_str));
  op->ep.base_url = rp_image_ref_registry_url(ref->domain);
  op->ep.verify_peer = true;
  const char *cached = auth_lookup(r, op->cache_key);
  if (cached) {
    op->auth_header = rp_xstrdup(cached);
    op->auth_from_cache = true;
    r->stats.token_reused++;
  }
  if (send_step(op, STEP_HEAD, err) != 0) {
    rp_error_prefix(err, "registry: %s", op->canonical);
    op_free(op);
    return -1;
  }
  op->next = r->ops;
  if (r->ops)
    r->ops->prev = op;
  r->ops = op;
  r->active++;
  r->stats.resolves++;
  if (op_out)
    *op_out = op;
  return 0;
}

void
rp_registry_cancel(struct rp_registry_op *op)
{
  if (op == NULL)
    return;
  if (op->xfer)
    rp_http_cancel(op->xfer); /* its callback ends op */
  else
    fail(op, RP_ECANCELED, "cancelled");
}

void
rp_registry_free(struct rp_registry *r)
{
  if (r == NULL)
    return;
  while (r->ops)
    rp_registry_cancel(r->ops);
  auths_clear(r);
  while (r->choices) {
    struct cached_choice *c = r->choices;
    r->choices = c->next;
    cached_choice_free(c);
  }
  rp_registry_auth_free(r->auth);
  free(r);
}
