/* Image references: distribution's grammar with docker's normalization
 * (see image_ref.h).  Hand-written matchers rather than regular
 * expressions: each function below is one production of the grammar in
 * github.com/distribution/reference/regexp.go, named after it. */
#include "image_ref.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DEFAULT_DOMAIN "index.docker.io"
#define DEFAULT_API_HOST "registry-1.docker.io"
#define OFFICIAL_PREFIX "library/"

static bool
is_lower_alnum(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_alnum(char c)
{
  return isalnum((unsigned char)c) != 0;
}

static bool
is_word(char c)
{
  return is_alnum(c) || c == '_';
}

/* A part of an untrusted string fit for an error message: at most 64
 * bytes, anything unprintable as '?'. */
static char *
quote(const char *s, size_t n)
{
  size_t m = n > 64 ? 64 : n;
  char *q = rp_xmalloc(m + 4);
  for (size_t i = 0; i < m; i++)
    q[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
  strcpy(q + m, n > m ? "..." : "");
  return q;
}

static int
bad(struct rp_error **err, const char *what, const char *s, size_t n)
{
  cleanup_free char *q = quote(s, n);
  return rp_error_set(err, RP_EPROTO, "invalid reference format: %s '%s'", what,
                      q);
}

/* pathComponent: [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)* */
static bool
path_component_ok(const char *s, size_t n)
{
  size_t i = 0;
  for (;;) {
    if (i >= n || !is_lower_alnum(s[i]))
      return false;
    while (i < n && is_lower_alnum(s[i]))
      i++;
    if (i == n)
      return true;
    if (s[i] == '.') {
      i++;
    } else if (s[i] == '_') {
      i++;
      if (i < n && s[i] == '_')
        i++;
    } else if (s[i] == '-') {
      while (i < n && s[i] == '-')
        i++;
    } else {
      return false;
    }
  }
}

/* remoteName: pathComponent(/pathComponent)* */
static bool
path_ok(const char *s, size_t n)
{
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == '/') {
      if (!path_component_ok(s + start, i - start))
        return false;
      start = i + 1;
    }
  }
  return true;
}

/* domainNameComponent: [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool
domain_component_ok(const char *s, size_t n)
{
  if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_alnum(s[i]) && s[i] != '-')
      return false;
  return true;
}

/* domainAndPort: (domainName | \[[a-fA-F0-9:]+\]) (:[0-9]+)? */
static bool
domain_ok(const char *s, size_t n)
{
  size_t host_end;
  if (n > 0 && s[0] == '[') {
    size_t i = 1;
    while (i < n && (isxdigit((unsigned char)s[i]) || s[i] == ':'))
      i++;
    if (i == 1 || i >= n || s[i] != ']')
      return false;
    host_end = i + 1;
  } else {
    host_end = 0;
    while (host_end < n && s[host_end] != ':')
      host_end++;
    size_t start = 0;
    for (size_t i = 0; i <= host_end; i++) {
      if (i == host_end || s[i] == '.') {
        if (!domain_component_ok(s + start, i - start))
          return false;
        start = i + 1;
      }
    }
  }
  if (host_end == n)
    return true;
  if (s[host_end] != ':' || host_end + 1 == n)
    return false;
  for (size_t i = host_end + 1; i < n; i++)
    if (!isdigit((unsigned char)s[i]))
      return false;
  return true;
}

/* tag: [\w][\w.-]{0,127} */
static bool
tag_ok(const char *s, size_t n)
{
  if (n == 0 || n > RP_IMAGE_TAG_MAX || !is_word(s[0]))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!is_word(s[i]) && s[i] != '.' && s[i] != '-')
      return false;
  return true;
}

bool
rp_image_digest_valid(const char *s)
{
  static const struct {
    const char *alg;
    size_t hex;
  } algs[] = {{"sha256", 64}, {"sha384", 96}, {"sha512", 128}};
  if (s == NULL)
    return false;
  const char *colon = strchr(s, ':');
  if (colon == NULL)
    return false;
  size_t alg_len = (size_t)(colon - s);
  for (size_t k = 0; k < RP_ARRAY_LEN(algs); k++) {
    if (strlen(algs[k].alg) != alg_len || strncmp(s, algs[k].alg, alg_len))
      continue;
    const char *hex = colon + 1;
    size_t i = 0;
    for (; hex[i]; i++)
      if (!((hex[i] >= '0' && hex[i] <= '9') ||
            (hex[i] >= 'a' && hex[i] <= 'f')))
        return false;
    return i == algs[k].hex;
  }
  return false;
}

/* ^[a-f0-9]{64}$: docker refuses it as a name (it is an image id). */
static bool
is_bare_id(const char *s)
{
  size_t i = 0;
  for (; s[i]; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return i == 64;
}

static bool
has_upper(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (isupper((unsigned char)s[i]))
      return true;
  return false;
}

void
rp_image_ref_clear(struct rp_image_ref *ref)
{
  if (ref == NULL)
    return;
  free(ref->domain);
  free(ref->path);
  free(ref->tag);
  free(ref->digest);
  *ref = (struct rp_image_ref){0};
}

void
rp_image_ref_copy(struct rp_image_ref *dst, const struct rp_image_ref *src)
{
  dst->domain = src->domain ? rp_xstrdup(src->domain) : NULL;
  dst->path = src->path ? rp_xstrdup(src->path) : NULL;
  dst->tag = src->tag ? rp_xstrdup(src->tag) : NULL;
  dst->digest = src->digest ? rp_xstrdup(src->digest) : NULL;
}

int
rp_image_ref_parse(const char *s, struct rp_image_ref *out,
                   struct rp_error **err)
{
  *out = (struct rp_image_ref){0};
  if (s == NULL || s[0] == '\0')
    return rp_error_set(err, RP_EPROTO, "invalid reference format: empty");
  if (is_bare_id(s))
    return rp_error_set(err, RP_EPROTO,
                        "invalid reference format: a 64-digit hexadecimal "
                        "string is an image id, not a name");

  /* splitDockerDomain: the first component is a host when it looks like
   * one; it is taken from the whole string, tag and digest included, as
   * docker does ("localhost:5000" alone is library/localhost, tag 5000). */
  size_t len = strlen(s);
  const char *slash = strchr(s, '/');
  const char *domain = DEFAULT_DOMAIN, *rest = s;
  size_t domain_len = strlen(DEFAULT_DOMAIN);
  if (slash) {
    size_t n = (size_t)(slash - s);
    bool host_like = memchr(s, '.', n) || memchr(s, ':', n) ||
                     (n == 9 && strncmp(s, "localhost", 9) == 0) ||
                     has_upper(s, n);
    if (host_like) {
      domain = s;
      domain_len = n;
      rest = slash + 1;
    }
  }
  if (domain_len == strlen(LEGACY_DEFAULT_DOMAIN) &&
      strncmp(domain, LEGACY_DEFAULT_DOMAIN, domain_len) == 0) {
    domain = DEFAULT_DOMAIN;
    domain_len = strlen(DEFAULT_DOMAIN);
  }
  size_t rest_len = len - (size_t)(rest - s);
  bool official = domain_len == strlen(DEFAULT_DOMAIN) &&
                  strncmp(domain, DEFAULT_DOMAIN, domain_len) == 0 &&
                  memchr(rest, '/', rest_len) == NULL;

  /* The repository name (up to the first ':') must be lower case. */
  size_t remote_len = strcspn(rest, ":");
  if (has_upper(rest, remote_len))
    return bad(err, "repository name must be lowercase:", rest, remote_len);

  /* name[:tag][@digest]: '@' and ':' appear in no path. */
  const char *at = memchr(rest, '@', rest_len);
  size_t name_part = at ? (size_t)(at - rest) : rest_len;
  const char *colon = memchr(rest, ':', name_part);
  size_t path_len = colon ? (size_t)(colon - rest) : name_part;
  if (!domain_ok(domain, domain_len))
    return bad(err, "registry host", domain, domain_len);
  if (!path_ok(rest, path_len))
    return bad(err, "repository path", rest, path_len);
  size_t full_name =
      domain_len + 1 + (official ? strlen(OFFICIAL_PREFIX) : 0) + path_len;
  if (full_name > RP_IMAGE_NAME_MAX)
    return rp_error_set(err, RP_EPROTO,
                        "invalid reference format: repository name longer "
                        "than %d bytes",
                        RP_IMAGE_NAME_MAX);
  const char *tag = colon ? colon + 1 : NULL;
  size_t tag_len = colon ? name_part - path_len - 1 : 0;
  if (tag && !tag_ok(tag, tag_len))
    return bad(err, "tag", tag, tag_len);
  cleanup_free char *digest = at ? rp_xstrdup(at + 1) : NULL;
  if (at && !rp_image_digest_valid(digest))
    return bad(err, "digest", at + 1, strlen(at + 1));

  out->domain = rp_xstrndup(domain, domain_len);
  out->path = official
                  ? rp_xasprintf(OFFICIAL_PREFIX "%.*s", (int)path_len, rest)
                  : rp_xstrndup(rest, path_len);
  out->tag =
      tag ? rp_xstrndup(tag, tag_len) : (digest ? NULL : rp_xstrdup("latest"));
  out->digest = RP_STEAL(digest);
  return 0;
}

char *
rp_image_ref_name(const struct rp_image_ref *ref)
{
  return rp_xasprintf("%s/%s", ref->domain, ref->path);
}

char *
rp_image_ref_format(const struct rp_image_ref *ref)
{
  return rp_xasprintf("%s/%s%s%s%s%s", ref->domain, ref->path,
                      ref->tag ? ":" : "", ref->tag ? ref->tag : "",
                      ref->digest ? "@" : "", ref->digest ? ref->digest : "");
}

const char *
rp_image_ref_manifest_ref(const struct rp_image_ref *ref)
{
  return ref->digest ? ref->digest : ref->tag;
}

const char *
rp_image_ref_api_host(const char *domain)
{
  return strcmp(domain, DEFAULT_DOMAIN) == 0 ? DEFAULT_API_HOST : domain;
}

bool
rp_image_ref_plain_http(const char *domain)
{
  char host[256];
  size_t n;
  if (domain[0] == '[') {
    const char *end = strchr(domain, ']');
    if (end == NULL)
      return false;
    n = (size_t)(end - domain) + 1;
  } else {
    n = strcspn(domain, ":");
  }
  if (n >= sizeof(host))
    return false;
  memcpy(host, domain, n);
  host[n] = '\0';
  if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
    return true;
  struct in_addr a;
  if (inet_pton(AF_INET, host, &a) == 1)
    return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

char *
rp_image_ref_registry_url(const char *domain)
{
  return rp_xasprintf("%s://%s",
                      rp_image_ref_plain_http(domain) ? "http" : "https",
                      rp_image_ref_api_host(domain));
}
