/* Registry credentials (docker's config.json) and the distribution
 * protocol's authentication messages (see registry_auth.h). */
#include "registry_auth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "log.h"
#include "util.h"

/* docker reads a token as good for at least a minute. */
#define MIN_TOKEN_LIFETIME_S 60

struct entry {
  char *key;  /* owned: as written in "auths" */
  char *host; /* owned: the key's host (docker's ConvertToHostname) */
  struct rp_registry_cred cred;
};

struct rp_registry_auth {
  struct entry *entries; /* owned */
  size_t n;
  char *creds_store;     /* owned or NULL: "desktop", "pass"... */
  char *helper_hosts;    /* owned or NULL: credHelpers' keys, ", "-joined */
  size_t identity_token; /* entries with an identitytoken (not used) */
};

void
rp_registry_secret_free(char *s)
{
  if (s == NULL)
    return;
  explicit_bzero(s, strlen(s));
  free(s);
}

void
rp_registry_auth_free(struct rp_registry_auth *a)
{
  if (a == NULL)
    return;
  for (size_t i = 0; i < a->n; i++) {
    free(a->entries[i].key);
    free(a->entries[i].host);
    rp_registry_secret_free(a->entries[i].cred.username);
    rp_registry_secret_free(a->entries[i].cred.password);
  }
  free(a->entries);
  free(a->creds_store);
  free(a->helper_hosts);
  free(a);
}

static void
auth_freep(struct rp_registry_auth **a)
{
  rp_registry_auth_free(*a);
}

static void
secret_freep(char **s)
{
  rp_registry_secret_free(*s);
}
#define cleanup_secret __attribute__((cleanup(secret_freep)))

char *
rp_registry_auth_default_path(void)
{
  const char *dir = getenv("DOCKER_CONFIG");
  if (dir && *dir)
    return rp_xasprintf("%s/config.json", dir);
  const char *home = getenv("HOME");
  if (home == NULL || *home == '\0') {
    struct passwd *pw = getpwuid(getuid());
    home = pw && pw->pw_dir ? pw->pw_dir : "/";
  }
  return rp_xasprintf("%s/.docker/config.json", home);
}

/* Go's base64.StdEncoding: padded, CR and LF ignored.  Owned result (NUL
 * added), or NULL when s is not base64. */
static char *
base64_decode(const char *s, size_t *out_len)
{
  size_t n = strlen(s);
  cleanup_secret char *clean = rp_xmalloc(n + 1);
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] != '\r' && s[i] != '\n')
      clean[m++] = s[i];
  clean[m] = '\0';
  if (m % 4 != 0)
    return NULL;
  for (size_t i = 0; i < m; i++) {
    char c = clean[i];
    bool pad_ok = c == '=' && i >= m - 2 && (i == m - 1 || clean[m - 1] == '=');
    if (!isalnum((unsigned char)c) && c != '+' && c != '/' && !pad_ok)
      return NULL;
  }
  char *out = rp_xmalloc(m / 4 * 3 + 1);
  int got = m ? EVP_DecodeBlock((unsigned char *)out,
                                (const unsigned char *)clean, (int)m)
              : 0;
  if (got < 0) {
    rp_registry_secret_free(out);
    return NULL;
  }
  /* EVP_DecodeBlock counts the padding as zero bytes. */
  size_t len = (size_t)got;
  if (m >= 1 && clean[m - 1] == '=')
    len--;
  if (m >= 2 && clean[m - 2] == '=')
    len--;
  out[len] = '\0';
  *out_len = len;
  return out;
}

/* docker's ConvertToHostname: "https://host/v2/" -> "host". */
static char *
key_host(const char *key)
{
  if (strncmp(key, "http://", 7) == 0)
    key += 7;
  else if (strncmp(key, "https://", 8) == 0)
    key += 8;
  return rp_xstrndup(key, strcspn(key, "/"));
}

static int
parse_entry(const char *key, json_t *v, const char *where, struct entry *out,
            struct rp_registry_auth *a, struct rp_error **err)
{
  *out = (struct entry){0};
  if (!json_is_object(v))
    return rp_error_set(err, RP_ECONFIG, "%s: auths[\"%s\"] is not an object",
                        where, key);
  if (json_string_length(json_object_get(v, "identitytoken")) > 0)
    a->identity_token++;
  const char *auth = json_string_value(json_object_get(v, "auth"));
  if (auth && *auth) {
    size_t len = 0;
    cleanup_secret char *plain = base64_decode(auth, &len);
    char *colon = plain ? memchr(plain, ':', len) : NULL;
    if (colon == NULL || memchr(plain, '\0', len))
      return rp_error_set(err, RP_ECONFIG,
                          "%s: auths[\"%s\"].auth is not base64 of "
                          "user:password",
                          where, key);
    out->cred.username = rp_xstrndup(plain, (size_t)(colon - plain));
    out->cred.password = rp_xstrdup(colon + 1);
  } else {
    const char *user = json_string_value(json_object_get(v, "username"));
    const char *pass = json_string_value(json_object_get(v, "password"));
    if ((user == NULL || *user == '\0') && (pass == NULL || *pass == '\0'))
      return 0; /* a helper's placeholder, or empty: anonymous */
    out->cred.username = rp_xstrdup(user ? user : "");
    out->cred.password = rp_xstrdup(pass ? pass : "");
  }
  out->key = rp_xstrdup(key);
  out->host = key_host(key);
  return 0;
}

int
rp_registry_auth_parse(const char *json, size_t len, const char *where,
                       struct rp_registry_auth **out, struct rp_error **err)
{
  json_error_t jerr;
  cleanup_json json_t *root = json_loadb(json, len, 0, &jerr);
  if (root == NULL)
    return rp_error_set(err, RP_ECONFIG, "%s:%d:%d: %s", where, jerr.line,
                        jerr.column, jerr.text);
  if (!json_is_object(root))
    return rp_error_set(err, RP_ECONFIG, "%s: not a JSON object", where);
  __attribute__((cleanup(auth_freep))) struct rp_registry_auth *a =
      rp_xcalloc(1, sizeof(*a));

  json_t *auths = json_object_get(root, "auths");
  if (auths && !json_is_object(auths))
    return rp_error_set(err, RP_ECONFIG, "%s: auths is not an object", where);
  a->entries = rp_xcalloc(json_object_size(auths) + 1, sizeof(struct entry));
  const char *key;
  json_t *v;
  json_object_foreach(auths, key, v)
  {
    struct entry e;
    if (parse_entry(key, v, where, &e, a, err) != 0)
      return -1;
    if (e.key)
      a->entries[a->n++] = e;
  }

  const char *store = json_string_value(json_object_get(root, "credsStore"));
  if (store && *store)
    a->creds_store = rp_xstrdup(store);
  json_t *helpers = json_object_get(root, "credHelpers");
  if (json_object_size(helpers) > 0) {
    size_t cap = 1;
    json_object_foreach(helpers, key, v) cap += strlen(key) + 2;
    a->helper_hosts = rp_xcalloc(1, cap);
    json_object_foreach(helpers, key, v)
    {
      if (a->helper_hosts[0])
        strcat(a->helper_hosts, ", ");
      strcat(a->helper_hosts, key);
    }
  }
  *out = RP_STEAL(a);
  return 0;
}

/* Says once per process what is not used: the log is read by people who
 * wonder why a private registry answers 401. */
static void
warn_unsupported_once(const struct rp_registry_auth *a, const char *path)
{
  static bool helpers_said, identity_said;
  if (!helpers_said && (a->creds_store || a->helper_hosts)) {
    helpers_said = true;
    rp_warn("registry: %s names credential helpers (%s%s%s%s%s), which "
            "reaper does not run: registries whose credentials are only "
            "there are asked anonymously; put them in \"auths\" (docker "
            "login without a helper) for reaper to use them",
            path, a->creds_store ? "credsStore " : "",
            a->creds_store ? a->creds_store : "",
            a->creds_store && a->helper_hosts ? "; " : "",
            a->helper_hosts ? "credHelpers for " : "",
            a->helper_hosts ? a->helper_hosts : "");
  }
  if (!identity_said && a->identity_token) {
    identity_said = true;
    rp_warn("registry: %s has %zu entries with an identity token, which "
            "reaper does not use (only user and password)",
            path, a->identity_token);
  }
}

int
rp_registry_auth_load(const char *path, struct rp_registry_auth **out,
                      struct rp_error **err)
{
  cleanup_free char *def = path ? NULL : rp_registry_auth_default_path();
  const char *p = path ? path : def;
  cleanup_close int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    *out = rp_xcalloc(1, sizeof(**out));
    return 0;
  }
  if (fd < 0)
    return rp_error_set(err, errno, "registry credentials: open %s: %s", p,
                        strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0)
    return rp_error_set(err, errno, "registry credentials: stat %s: %s", p,
                        strerror(errno));
  if (!S_ISREG(st.st_mode) || (size_t)st.st_size > RP_REGISTRY_AUTH_FILE_MAX)
    return rp_error_set(err, RP_ECONFIG,
                        "registry credentials: %s is not a regular file of "
                        "at most %zu bytes",
                        p, RP_REGISTRY_AUTH_FILE_MAX);
  size_t cap = (size_t)st.st_size + 1, len = 0;
  cleanup_secret char *buf = rp_xmalloc(cap + 1);
  for (;;) {
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return rp_error_set(err, errno, "registry credentials: read %s: %s", p,
                          strerror(errno));
    if (n == 0)
      break;
    len += (size_t)n;
    if (len == cap)
      return rp_error_set(err, RP_ECONFIG,
                          "registry credentials: %s grew while read", p);
  }
  buf[len] = '\0';
  if (rp_registry_auth_parse(buf, len, p, out, err) != 0)
    return rp_error_prefix(err, "registry credentials");
  warn_unsupported_once(*out, p);
  return 0;
}

const struct rp_registry_cred *
rp_registry_auth_find(const struct rp_registry_auth *a, const char *domain)
{
  if (a == NULL || domain == NULL)
    return NULL;
  const char *key =
      strcmp(domain, "docker.io") == 0 ? RP_DOCKER_HUB_AUTH_KEY : domain;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->entries[i].key, key) == 0)
      return &a->entries[i].cred;
  if (key != domain)
    return NULL; /* Docker Hub: its key only, as the CLI */
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->entries[i].host, domain) == 0)
      return &a->entries[i].cred;
  return NULL;
}

size_t
rp_registry_auth_count(const struct rp_registry_auth *a)
{
  return a ? a->n : 0;
}

bool
rp_registry_auth_has_helpers(const struct rp_registry_auth *a)
{
  return a && (a->creds_store || a->helper_hosts);
}

char *
rp_registry_basic_credentials(const struct rp_registry_cred *c)
{
  cleanup_secret char *plain = rp_xasprintf("%s:%s", c->username, c->password);
  size_t n = strlen(plain);
  char *out = rp_xmalloc(6 + 4 * ((n + 2) / 3) + 1);
  memcpy(out, "Basic ", 6);
  EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain,
                  (int)n);
  return out;
}

/* ---- WWW-Authenticate ---- */

static bool
is_tchar(char c)
{
  return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

struct scanner {
  const char *p, *end;
};

static void
skip_ows(struct scanner *s)
{
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
    s->p++;
}

/* A token, or NULL (nothing there). */
static char *
scan_token(struct scanner *s)
{
  const char *start = s->p;
  while (s->p < s->end && is_tchar(*s->p))
    s->p++;
  return s->p > start ? rp_xstrndup(start, (size_t)(s->p - start)) : NULL;
}

/* A parameter's value: a quoted string (with \ escapes), or anything up to
 * the next comma or space (servers write URLs unquoted). */
static char *
scan_value(struct scanner *s)
{
  if (s->p < s->end && *s->p == '"') {
    s->p++;
    char *v = rp_xmalloc((size_t)(s->end - s->p) + 1);
    size_t n = 0;
    while (s->p < s->end && *s->p != '"') {
      if (*s->p == '\\' && s->p + 1 < s->end)
        s->p++;
      v[n++] = *s->p++;
    }
    if (s->p < s->end)
      s->p++; /* the closing quote */
    v[n] = '\0';
    return v;
  }
  const char *start = s->p;
  while (s->p < s->end && *s->p != ',' && *s->p != ' ' && *s->p != '\t')
    s->p++;
  return rp_xstrndup(start, (size_t)(s->p - start));
}

void
rp_registry_challenge_clear(struct rp_registry_challenge *c)
{
  free(c->realm);
  free(c->service);
  free(c->scope);
  *c = (struct rp_registry_challenge){0};
}

static bool
has_control(const char *s)
{
  for (; s && *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

/* The first Bearer and the first Basic challenge are kept; cur is handed
 * to one of them, or cleared, and is empty again. */
static void
keep_challenge(struct rp_registry_challenge *cur,
               struct rp_registry_challenge *bearer,
               struct rp_registry_challenge *basic)
{
  if (cur->scheme == RP_REGISTRY_SCHEME_BEARER && bearer->scheme == 0)
    *bearer = *cur;
  else if (cur->scheme == RP_REGISTRY_SCHEME_BASIC && basic->scheme == 0)
    *basic = *cur;
  else
    rp_registry_challenge_clear(cur);
  *cur = (struct rp_registry_challenge){0};
}

int
rp_registry_challenge_parse(const char *value, size_t len,
                            struct rp_registry_challenge *out)
{
  struct scanner s = {value, value + len};
  struct rp_registry_challenge cur = {0}, basic = {0}, bearer = {0};
  *out = (struct rp_registry_challenge){0};

  for (;;) {
    while (s.p < s.end && (*s.p == ',' || *s.p == ' ' || *s.p == '\t'))
      s.p++;
    if (s.p >= s.end)
      break;
    cleanup_free char *tok = scan_token(&s);
    if (tok == NULL) {
      s.p++; /* a stray byte: step over it */
      continue;
    }
    skip_ows(&s);
    if (s.p < s.end && *s.p == '=' && cur.scheme != RP_REGISTRY_SCHEME_NONE) {
      s.p++;
      skip_ows(&s);
      char *v = scan_value(&s);
      char **slot = strcasecmp(tok, "realm") == 0     ? &cur.realm
                    : strcasecmp(tok, "service") == 0 ? &cur.service
                    : strcasecmp(tok, "scope") == 0   ? &cur.scope
                                                      : NULL;
      if (slot && *slot == NULL)
        *slot = v;
      else
        free(v);
      continue;
    }
    if (s.p < s.end && *s.p == '=') {
      /* A parameter of a scheme we skip (or a token68): its value too. */
      s.p++;
      skip_ows(&s);
      free(scan_value(&s));
      continue;
    }
    /* A new challenge: keep the one it ends if it is one we speak. */
    keep_challenge(&cur, &bearer, &basic);
    cur.scheme = strcasecmp(tok, "bearer") == 0  ? RP_REGISTRY_SCHEME_BEARER
                 : strcasecmp(tok, "basic") == 0 ? RP_REGISTRY_SCHEME_BASIC
                                                 : RP_REGISTRY_SCHEME_NONE;
    /* An unknown scheme's parameters are read and dropped below. */
    if (cur.scheme == RP_REGISTRY_SCHEME_NONE)
      cur.scheme = (enum rp_registry_scheme) - 1;
  }
  keep_challenge(&cur, &bearer, &basic);

  bool bearer_ok = bearer.scheme == RP_REGISTRY_SCHEME_BEARER && bearer.realm &&
                   bearer.realm[0] && !has_control(bearer.realm) &&
                   !has_control(bearer.service) && !has_control(bearer.scope);
  if (bearer_ok) {
    *out = bearer;
    rp_registry_challenge_clear(&basic);
    return 0;
  }
  rp_registry_challenge_clear(&bearer);
  if (basic.scheme == RP_REGISTRY_SCHEME_BASIC) {
    *out = basic;
    return 0;
  }
  rp_registry_challenge_clear(&basic);
  return -1;
}

/* ---- token answers ---- */

static bool
token_ok(const char *t)
{
  if (t == NULL || *t == '\0')
    return false;
  for (; *t; t++)
    if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
      return false;
  return true;
}

int
rp_registry_token_parse(const char *json, size_t len, char **token_out,
                        int64_t *expires_in_s, struct rp_error **err)
{
  *token_out = NULL;
  cleanup_json json_t *root = json_loadb(json, len, 0, NULL);
  if (!json_is_object(root))
    return rp_error_set(err, RP_EPROTO,
                        "the token answer is not a JSON "
                        "object");
  const char *tok = json_string_value(json_object_get(root, "token"));
  if (tok == NULL || *tok == '\0')
    tok = json_string_value(json_object_get(root, "access_token"));
  if (tok == NULL || *tok == '\0')
    return rp_error_set(err, RP_EPROTO, "the token answer has no token");
  if (!token_ok(tok))
    return rp_error_set(err, RP_EPROTO,
                        "the token answer's token has characters a header "
                        "cannot carry");
  json_t *exp = json_object_get(root, "expires_in");
  double secs = json_is_number(exp) ? json_number_value(exp) : 0;
  if (!(secs >= MIN_TOKEN_LIFETIME_S))
    secs = MIN_TOKEN_LIFETIME_S;
  if (secs > 365.0 * 86400)
    secs = 365.0 * 86400;
  *expires_in_s = (int64_t)secs;
  *token_out = rp_xstrdup(tok);
  return 0;
}

int
rp_registry_split_url(const char *url, char **base_out, char **path_out)
{
  *base_out = *path_out = NULL;
  size_t skip;
  if (strncasecmp(url, "http://", 7) == 0)
    skip = 7;
  else if (strncasecmp(url, "https://", 8) == 0)
    skip = 8;
  else
    return -1;
  for (const char *c = url; *c; c++)
    if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
      return -1;
  size_t host = strcspn(url + skip, "/?#");
  /* No user:password@ in a URL a server gave us. */
  if (host == 0 || memchr(url + skip, '@', host))
    return -1;
  const char *rest = url + skip + host;
  size_t rest_len = strcspn(rest, "#");
  *base_out = rp_xstrndup(url, skip + host);
  if (rest_len == 0)
    *path_out = rp_xstrdup("/");
  else if (rest[0] == '?')
    *path_out = rp_xasprintf("/%.*s", (int)rest_len, rest);
  else
    *path_out = rp_xstrndup(rest, rest_len);
  return 0;
}
