/* What a fresh rootfs is made from, as ctr and the containerd client make
 * it (client/image.go RootFS, container_opts.go WithNewSnapshot): the
 * image's config lists its layers' diff ids; their chain id names the
 * committed snapshot of the unpacked image; a container's rootfs is an
 * active snapshot prepared on top of it.  Reading the config takes the
 * image's target (Images.Get), through an index to this machine's manifest
 * when the target is one, then the manifest, then the config, each from the
 * content store (Content.Read).  Also the stop signal a container asks for. */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include <openssl/evp.h>

#include "containerd.h"
#include "util.h"

/* Manifests and configs are a few KiB; an index of many platforms more. */
#define MAX_BLOB ((size_t)4 << 20)
#define READ_TIMEOUT_MS 30000
#define STOP_SIGNAL_KEY "io.containerd.image.config.stop-signal"

char *
rp_ctrd_chain_id(const char *const *diff_ids, size_t n)
{
  if (n == 0)
    return NULL;
  char *chain = rp_xstrdup(diff_ids[0]);
  for (size_t i = 1; i < n; i++) {
    cleanup_free char *input = rp_xasprintf("%s %s", chain, diff_ids[i]);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_Digest(input, strlen(input), md, &md_len, EVP_sha256(), NULL);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int k = 0; k < md_len; k++)
      snprintf(hex + 2 * k, 3, "%02x", md[k]);
    free(chain);
    chain = rp_xasprintf("sha256:%s", hex);
  }
  return chain;
}

const char *
rp_ctrd_index_pick(json_t *index, const char *os, const char *arch)
{
  json_t *manifests = json_object_get(index, "manifests");
  size_t i;
  json_t *m;
  json_array_foreach(manifests, i, m)
  {
    json_t *pf = json_object_get(m, "platform");
    const char *mos = json_string_value(json_object_get(pf, "os"));
    const char *march = json_string_value(json_object_get(pf, "architecture"));
    const char *digest = json_string_value(json_object_get(m, "digest"));
    if (digest && mos && march && strcmp(mos, os) == 0 &&
        strcmp(march, arch) == 0)
      return digest;
  }
  /* An index of one manifest without a platform (docker save's). */
  if (json_array_size(manifests) == 1 &&
      !json_object_get(json_array_get(manifests, 0), "platform"))
    return json_string_value(
        json_object_get(json_array_get(manifests, 0), "digest"));
  return NULL;
}

int
rp_ctrd_signal_parse(const char *s)
{
  if (!s || !*s)
    return -1;
  if (isdigit((unsigned char)s[0])) {
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v > 0 && v < NSIG ? (int)v : -1;
  }
  if (strncasecmp(s, "SIG", 3) == 0)
    s += 3;
  for (int sig = 1; sig < NSIG; sig++) {
    const char *name = sigabbrev_np(sig);
    if (name && strcasecmp(name, s) == 0)
      return sig;
  }
  return -1;
}

int
rp_ctrd_stop_signal(json_t *labels, json_t *spec)
{
  const char *v = json_string_value(json_object_get(labels, STOP_SIGNAL_KEY));
  if (!v)
    v = json_string_value(
        json_object_get(json_object_get(spec, "annotations"), STOP_SIGNAL_KEY));
  int sig = rp_ctrd_signal_parse(v);
  return sig > 0 ? sig : SIGTERM;
}

/* --- fetching ------------------------------------------------------------ */

struct chain {
  struct rp_ctrd *c; /* borrowed */
  char ns[80];
  char *image; /* owned */
  void (*cb)(void *arg, const char *chain_id, const struct rp_error *err);
  void *arg;
  struct rp_buf blob; /* the blob being read, at most MAX_BLOB bytes */
  bool too_big;
  int hops; /* blobs read: index, manifest, config */
};

static void
chain_free(struct chain *ch)
{
  free(ch->image);
  rp_buf_free(&ch->blob);
  free(ch);
}

static void chain_fail(struct chain *ch, const struct rp_error *err,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
chain_fail(struct chain *ch, const struct rp_error *err, const char *fmt, ...)
{
  cleanup_error struct rp_error *e = NULL;
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  rp_error_set(&e, err ? err->code : RP_EPROTO, "image %s: %s%s%s", ch->image,
               what, err ? ": " : "", err ? err->message : "");
  ch->cb(ch->arg, NULL, e);
  chain_free(ch);
}

static const char *
go_arch(void)
{
  static struct utsname u;
  if (!u.machine[0] && uname(&u) != 0)
    return "amd64";
  static const char *const map[][2] = {
      {"x86_64", "amd64"},    {"aarch64", "arm64"}, {"armv7l", "arm"},
      {"armv6l", "arm"},      {"i686", "386"},      {"i386", "386"},
      {"ppc64le", "ppc64le"}, {"s390x", "s390x"},   {"riscv64", "riscv64"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(map); i++)
    if (strcmp(u.machine, map[i][0]) == 0)
      return map[i][1];
  return u.machine;
}

static void read_blob(struct chain *ch, const char *digest);

static int
blob_data(void *arg, const uint8_t *msg, size_t len)
{
  struct chain *ch = arg;
  Rpctrd__ReadContentResponse *r =
      rpctrd__read_content_response__unpack(NULL, len, msg);
  if (!r)
    return 1;
  int rc = rp_buf_add(&ch->blob, r->data.data, r->data.len);
  rpctrd__read_content_response__free_unpacked(r, NULL);
  if (rc != 0) {
    ch->too_big = true;
    return 1;
  }
  return 0;
}

static void
config_read(struct chain *ch, json_t *config)
{
  json_t *ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
  size_t n = json_array_size(ids);
  if (n == 0) {
    chain_fail(ch, NULL, "its config lists no layers (rootfs.diff_ids)");
    return;
  }
  cleanup_free const char **v = rp_xcalloc(n, sizeof(*v));
  for (size_t i = 0; i < n; i++) {
    v[i] = json_string_value(json_array_get(ids, i));
    if (!v[i] || strncmp(v[i], "sha256:", 7) != 0) {
      chain_fail(ch, NULL, "layer %zu of its config is not a sha256 digest", i);
      return;
    }
  }
  cleanup_free char *chain = rp_ctrd_chain_id(v, n);
  ch->cb(ch->arg, chain, NULL);
  chain_free(ch);
}

static void
blob_done_cb(void *arg, const struct rp_error *err)
{
  struct chain *ch = arg;
  if (ch->too_big) {
    chain_fail(ch, NULL, "a blob over %zu bytes", MAX_BLOB);
    return;
  }
  if (err) {
    chain_fail(ch, err, "read from the content store");
    return;
  }
  json_error_t jerr;
  cleanup_json json_t *j =
      json_loadb(rp_buf_str(&ch->blob), ch->blob.len, 0, &jerr);
  rp_buf_reset(&ch->blob);
  if (!json_is_object(j)) {
    chain_fail(ch, NULL, "a manifest or config that is not JSON (%s)",
               jerr.text);
    return;
  }
  if (json_object_get(j, "manifests")) {
    const char *d = rp_ctrd_index_pick(j, "linux", go_arch());
    if (!d) {
      chain_fail(ch, NULL, "its index has no manifest for linux/%s", go_arch());
      return;
    }
    cleanup_free char *digest = rp_xstrdup(d);
    read_blob(ch, digest);
    return;
  }
  json_t *config = json_object_get(j, "config");
  const char *cd = json_string_value(json_object_get(config, "digest"));
  if (json_object_get(j, "layers") && cd) {
    cleanup_free char *digest = rp_xstrdup(cd);
    read_blob(ch, digest);
    return;
  }
  if (json_object_get(j, "rootfs")) {
    config_read(ch, j);
    return;
  }
  chain_fail(ch, NULL, "neither an index, a manifest nor a config");
}

static void
read_blob(struct chain *ch, const char *digest)
{
  if (++ch->hops > 4) {
    chain_fail(ch, NULL, "indexes nested too deep");
    return;
  }
  Rpctrd__ReadContentRequest req;
  rpctrd__read_content_request__init(&req);
  req.digest = rp_ctrd_str(digest);
  cleanup_error struct rp_error *err = NULL;
  if (rp_ctrd_stream(ch->c, ch->ns, RP_CTRD_CONTENT "Read", &req.base,
                     READ_TIMEOUT_MS, blob_data, blob_done_cb, ch, NULL,
                     &err) != 0)
    chain_fail(ch, err, "read %s", digest);
}

static void
image_got_cb(void *arg, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  struct chain *ch = arg;
  if (err) {
    chain_fail(ch, err, "look up");
    return;
  }
  Rpctrd__GetImageResponse *r =
      rpctrd__get_image_response__unpack(NULL, len, msg);
  const char *digest =
      r && r->image && r->image->target ? r->image->target->digest : NULL;
  if (!digest || !*digest) {
    if (r)
      rpctrd__get_image_response__free_unpacked(r, NULL);
    chain_fail(ch, NULL, "the image has no target");
    return;
  }
  cleanup_free char *d = rp_xstrdup(digest);
  rpctrd__get_image_response__free_unpacked(r, NULL);
  read_blob(ch, d);
}

int
rp_ctrd_image_chain(struct rp_ctrd *c, const char *ns, const char *image,
                    void (*cb)(void *arg, const char *chain_id,
                               const struct rp_error *err),
                    void *arg, struct rp_error **err)
{
  struct chain *ch = rp_xcalloc(1, sizeof(*ch));
  ch->c = c;
  snprintf(ch->ns, sizeof(ch->ns), "%s", ns);
  ch->image = rp_xstrdup(image);
  ch->cb = cb;
  ch->arg = arg;
  rp_buf_init(&ch->blob, MAX_BLOB);
  Rpctrd__GetImageRequest req;
  rpctrd__get_image_request__init(&req);
  req.name = ch->image;
  if (rp_ctrd_call(c, ns, RP_CTRD_IMAGES "Get", &req.base, 0, image_got_cb, ch,
                   err) != 0) {
    chain_free(ch);
    return -1;
  }
  return 0;
}
