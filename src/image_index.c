/* Manifests, platforms and the choice in an index (see image_index.h).
 * The normalization and the order of preference follow containerd's
 * platforms package (database.go, compare.go), which the engines use. */
#include "image_index.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "image_ref.h"
#include "util.h"

/* Every fallback of a platform fits: amd64/vN gives N-1 more and 386, arm64
 * gives arm/v8 down to arm/v5. */
#define MAX_VECTOR 16
/* An index of more platforms than this is not one anybody builds. */
#define MAX_LISTED 8

static bool
media_type_is(const char *mt, const char *want)
{
  size_t n = strcspn(mt, "; \t");
  return strlen(want) == n && strncasecmp(mt, want, n) == 0;
}

enum rp_manifest_kind
rp_manifest_kind_of(const char *media_type)
{
  if (media_type == NULL)
    return RP_MANIFEST_UNKNOWN;
  while (*media_type == ' ' || *media_type == '\t')
    media_type++;
  if (media_type_is(media_type, RP_MT_OCI_INDEX) ||
      media_type_is(media_type, RP_MT_DOCKER_LIST))
    return RP_MANIFEST_INDEX;
  if (media_type_is(media_type, RP_MT_OCI_MANIFEST) ||
      media_type_is(media_type, RP_MT_DOCKER_MANIFEST))
    return RP_MANIFEST_IMAGE;
  return RP_MANIFEST_UNKNOWN;
}

enum rp_manifest_kind
rp_manifest_kind_of_body(const char *json, size_t len, char **media_type_out)
{
  if (media_type_out)
    *media_type_out = NULL;
  cleanup_json json_t *root = json_loadb(json, len, 0, NULL);
  if (!json_is_object(root))
    return RP_MANIFEST_UNKNOWN;
  const char *mt = json_string_value(json_object_get(root, "mediaType"));
  if (media_type_out && mt)
    *media_type_out = rp_xstrdup(mt);
  if (mt && rp_manifest_kind_of(mt) != RP_MANIFEST_UNKNOWN)
    return rp_manifest_kind_of(mt);
  if (mt)
    return RP_MANIFEST_UNKNOWN; /* a type of its own, say schema 1 */
  if (json_is_array(json_object_get(root, "manifests")))
    return RP_MANIFEST_INDEX;
  if (json_is_array(json_object_get(root, "layers")) ||
      json_is_object(json_object_get(root, "config")))
    return RP_MANIFEST_IMAGE;
  return RP_MANIFEST_UNKNOWN;
}

/* ---- platforms ---- */

static void
copy_lower(char *dst, size_t cap, const char *src)
{
  size_t i = 0;
  for (; src && src[i] && i + 1 < cap; i++)
    dst[i] = (char)tolower((unsigned char)src[i]);
  dst[i] = '\0';
}

static void
set(char *dst, size_t cap, const char *s)
{
  snprintf(dst, cap, "%s", s);
}

void
rp_platform_normalize(struct rp_platform *p)
{
  char *a = p->arch, *v = p->variant;
  for (char *c = p->os; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  for (char *c = a; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  for (char *c = v; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  if (strcmp(p->os, "macos") == 0)
    set(p->os, sizeof(p->os), "darwin");
  if (strcmp(a, "i386") == 0) {
    set(a, sizeof(p->arch), "386");
    v[0] = '\0';
  } else if (strcmp(a, "x86_64") == 0 || strcmp(a, "x86-64") == 0 ||
             strcmp(a, "amd64") == 0) {
    set(a, sizeof(p->arch), "amd64");
    if (strcmp(v, "v1") == 0)
      v[0] = '\0';
  } else if (strcmp(a, "aarch64") == 0 || strcmp(a, "arm64") == 0) {
    set(a, sizeof(p->arch), "arm64");
    if (strcmp(v, "8") == 0 || strcmp(v, "v8") == 0 || strcmp(v, "v8.0") == 0)
      v[0] = '\0';
    else if (strcmp(v, "9") == 0 || strcmp(v, "9.0") == 0 ||
             strcmp(v, "v9.0") == 0)
      set(v, sizeof(p->variant), "v9");
  } else if (strcmp(a, "armhf") == 0) {
    set(a, sizeof(p->arch), "arm");
    set(v, sizeof(p->variant), "v7");
  } else if (strcmp(a, "armel") == 0) {
    set(a, sizeof(p->arch), "arm");
    set(v, sizeof(p->variant), "v6");
  } else if (strcmp(a, "arm") == 0) {
    if (v[0] == '\0' || strcmp(v, "7") == 0)
      set(v, sizeof(p->variant), "v7");
    else if (strcmp(v, "5") == 0 || strcmp(v, "6") == 0 || strcmp(v, "8") == 0)
      set(v, sizeof(p->variant),
          v[0] == '5'   ? "v5"
          : v[0] == '6' ? "v6"
                        : "v8");
  }
}

int
rp_platform_parse(const char *s, struct rp_platform *out, struct rp_error **err)
{
  *out = (struct rp_platform){0};
  const char *parts[3] = {0};
  size_t lens[3] = {0}, n = 0;
  for (const char *p = s;;) {
    size_t l = strcspn(p, "/");
    if (n == 3)
      goto bad;
    parts[n] = p;
    lens[n++] = l;
    if (p[l] == '\0')
      break;
    p += l + 1;
  }
  if (n < 2)
    goto bad;
  size_t caps[3] = {sizeof(out->os), sizeof(out->arch), sizeof(out->variant)};
  char *dst[3] = {out->os, out->arch, out->variant};
  for (size_t i = 0; i < n; i++) {
    if (lens[i] == 0 || lens[i] >= caps[i])
      goto bad;
    for (size_t k = 0; k < lens[i]; k++)
      if (!isalnum((unsigned char)parts[i][k]) && !strchr("._-", parts[i][k]))
        goto bad;
    memcpy(dst[i], parts[i], lens[i]);
    dst[i][lens[i]] = '\0';
  }
  rp_platform_normalize(out);
  return 0;
bad:
  *out = (struct rp_platform){0};
  return rp_error_set(err, RP_ECONFIG,
                      "platform must be OS/ARCH or OS/ARCH/VARIANT "
                      "(linux/amd64, linux/arm/v7)");
}

void
rp_platform_from_engine(const char *os, const char *arch, const char *variant,
                        struct rp_platform *out)
{
  *out = (struct rp_platform){0};
  copy_lower(out->os, sizeof(out->os), os && *os ? os : "linux");
  copy_lower(out->arch, sizeof(out->arch), arch ? arch : "");
  copy_lower(out->variant, sizeof(out->variant), variant ? variant : "");
  /* uname's names that Go's do not share. */
  static const struct {
    const char *uname, *arch, *variant;
  } names[] = {
      {"armv7l", "arm", "v7"}, {"armv7", "arm", "v7"},
      {"armv6l", "arm", "v6"}, {"armv6", "arm", "v6"},
      {"armv5l", "arm", "v5"}, {"armv5tel", "arm", "v5"},
      {"armv8l", "arm", "v8"}, {"i686", "386", ""},
      {"i586", "386", ""},     {"i486", "386", ""},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(names); i++) {
    if (strcmp(out->arch, names[i].uname) == 0) {
      set(out->arch, sizeof(out->arch), names[i].arch);
      if (out->variant[0] == '\0')
        set(out->variant, sizeof(out->variant), names[i].variant);
      break;
    }
  }
  rp_platform_normalize(out);
}

void
rp_platform_host(struct rp_platform *out)
{
  struct utsname u;
  if (uname(&u) != 0)
    set(u.machine, sizeof(u.machine), "");
  rp_platform_from_engine("linux", u.machine, NULL, out);
}

char *
rp_platform_format(const struct rp_platform *p, char *buf, size_t len)
{
  snprintf(buf, len, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "",
           p->variant);
  return buf;
}

static int
version_of(const char *variant)
{
  if (variant[0] != 'v' || !isdigit((unsigned char)variant[1]))
    return -1;
  char *end;
  long n = strtol(variant + 1, &end, 10);
  return *end == '\0' && n < 100 ? (int)n : -1;
}

static void
push(struct rp_platform *v, size_t *n, const char *os, const char *arch,
     const char *variant)
{
  if (*n >= MAX_VECTOR)
    return;
  struct rp_platform *p = &v[(*n)++];
  *p = (struct rp_platform){0};
  set(p->os, sizeof(p->os), os);
  set(p->arch, sizeof(p->arch), arch);
  set(p->variant, sizeof(p->variant), variant);
  rp_platform_normalize(p);
}

static void
push_arm(struct rp_platform *v, size_t *n, const char *os, int version)
{
  char var[16];
  for (; version >= 5; version--) {
    snprintf(var, sizeof(var), "v%d", version);
    push(v, n, os, "arm", var);
  }
}

/* containerd's platformVector: the platform, then what it also runs, in
 * order.  (Its arm64/v8.x and v9.x minor versions are left out: engines
 * report none.) */
static size_t
vector_of(const struct rp_platform *want, struct rp_platform *v)
{
  size_t n = 0;
  char var[16];
  push(v, &n, want->os, want->arch, want->variant);
  int version = version_of(want->variant);
  if (strcmp(want->arch, "amd64") == 0) {
    for (int k = version - 1; version > 1 && k >= 1; k--) {
      snprintf(var, sizeof(var), "v%d", k);
      push(v, &n, want->os, "amd64", var);
    }
    push(v, &n, want->os, "386", "");
  } else if (strcmp(want->arch, "arm") == 0) {
    if (version > 5)
      push_arm(v, &n, want->os, version - 1);
  } else if (strcmp(want->arch, "arm64") == 0) {
    if (version == 9)
      push(v, &n, want->os, "arm64", "");
    push_arm(v, &n, want->os, 8);
  }
  return n;
}

static bool
same(const struct rp_platform *a, const struct rp_platform *b)
{
  return strcmp(a->os, b->os) == 0 && strcmp(a->arch, b->arch) == 0 &&
         strcmp(a->variant, b->variant) == 0;
}

int
rp_platform_rank(const struct rp_platform *want, const struct rp_platform *have)
{
  struct rp_platform v[MAX_VECTOR];
  size_t n = vector_of(want, v);
  for (size_t i = 0; i < n; i++)
    if (same(&v[i], have))
      return (int)i;
  return -1;
}

/* ---- the index ---- */

static bool
is_attestation(json_t *entry)
{
  json_t *ann = json_object_get(entry, "annotations");
  const char *type =
      json_string_value(json_object_get(ann, "vnd.docker.reference.type"));
  return type && strcmp(type, "attestation-manifest") == 0;
}

/* The entry's platform, normalized; false when it has none worth a look
 * (no os or architecture, or BuildKit's unknown/unknown). */
static bool
entry_platform(json_t *entry, struct rp_platform *out)
{
  json_t *pl = json_object_get(entry, "platform");
  const char *os = json_string_value(json_object_get(pl, "os"));
  const char *arch = json_string_value(json_object_get(pl, "architecture"));
  const char *variant = json_string_value(json_object_get(pl, "variant"));
  if (os == NULL || arch == NULL || os[0] == '\0' || arch[0] == '\0' ||
      strcmp(os, "unknown") == 0 || strcmp(arch, "unknown") == 0)
    return false;
  *out = (struct rp_platform){0};
  copy_lower(out->os, sizeof(out->os), os);
  copy_lower(out->arch, sizeof(out->arch), arch);
  copy_lower(out->variant, sizeof(out->variant), variant ? variant : "");
  rp_platform_normalize(out);
  return true;
}

int
rp_image_index_select(const char *json, size_t len, const struct rp_platform *p,
                      char **digest_out, struct rp_error **err)
{
  *digest_out = NULL;
  cleanup_json json_t *root = json_loadb(json, len, 0, NULL);
  json_t *list = json_object_get(root, "manifests");
  if (!json_is_array(list))
    return rp_error_set(err, RP_EPROTO,
                        "the index is not JSON with a manifests list");
  struct rp_platform want = *p;
  rp_platform_normalize(&want);

  int best_rank = -1;
  size_t best = 0, seen = 0;
  char listed[MAX_LISTED * 100] = "";
  size_t listed_len = 0;
  for (size_t i = 0; i < json_array_size(list); i++) {
    json_t *e = json_array_get(list, i);
    struct rp_platform have;
    const char *mt = json_string_value(json_object_get(e, "mediaType"));
    if (is_attestation(e) || !entry_platform(e, &have) ||
        rp_manifest_kind_of(mt) != RP_MANIFEST_IMAGE)
      continue;
    if (seen++ < MAX_LISTED) {
      char buf[100];
      listed_len += (size_t)snprintf(
          listed + listed_len, sizeof(listed) - listed_len, "%s%s",
          listed_len ? ", " : "", rp_platform_format(&have, buf, sizeof(buf)));
    }
    int rank = rp_platform_rank(&want, &have);
    if (rank >= 0 && (best_rank < 0 || rank < best_rank)) {
      best_rank = rank;
      best = i;
    }
  }
  char wbuf[100];
  if (best_rank < 0)
    return rp_error_set(err, ENOEXEC, "no manifest for %s in the index (%s%s)",
                        rp_platform_format(&want, wbuf, sizeof(wbuf)),
                        seen ? listed : "no platforms",
                        seen > MAX_LISTED ? ", ..." : "");
  const char *digest =
      json_string_value(json_object_get(json_array_get(list, best), "digest"));
  if (!rp_image_digest_valid(digest))
    return rp_error_set(err, RP_EPROTO,
                        "the index's entry %zu for %s has no valid digest",
                        best, rp_platform_format(&want, wbuf, sizeof(wbuf)));
  *digest_out = rp_xstrdup(digest);
  return 0;
}

/* ---- digests ---- */

void
rp_image_digest_sha256(const void *data, size_t len,
                       char out[RP_DIGEST_SHA256_LEN])
{
  static const char hex[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
      mdlen != 32) {
    fprintf(stderr, "reaper: libcrypto cannot compute SHA-256\n");
    abort();
  }
  memcpy(out, "sha256:", 7);
  for (unsigned int i = 0; i < mdlen; i++) {
    out[7 + 2 * i] = hex[md[i] >> 4];
    out[7 + 2 * i + 1] = hex[md[i] & 15];
  }
  out[7 + 64] = '\0';
}

bool
rp_image_digest_matches(const char *digest, const void *data, size_t len)
{
  if (digest == NULL || strncmp(digest, "sha256:", 7) != 0)
    return false;
  char got[RP_DIGEST_SHA256_LEN];
  rp_image_digest_sha256(data, len, got);
  return strcmp(got, digest) == 0;
}
