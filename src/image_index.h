/* Manifests as a registry serves them, and the choice an engine makes in a
 * multi-platform index: which manifest runs on its platform.  Pure: the
 * bytes come from registry.c (or a test's fixture).
 *
 * A tag names one manifest by digest.  It is either an image manifest
 * (OCI or Docker schema 2: one platform's content) or an index (OCI image
 * index or Docker manifest list: one entry per platform, and, from BuildKit,
 * attestation manifests that run nowhere).  "New content for this engine"
 * is a change of the manifest chosen for its platform: an index that gains
 * another platform has a new digest of its own but the same entry for ours.
 *
 * Platforms are normalized as containerd's platforms package does
 * (x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7, arm without variant
 * -> arm/v7, arm64/v8 -> arm64...), and chosen in its order of preference:
 * the exact platform first, then what it also runs (arm/v7 then arm/v6 and
 * arm/v5; amd64/v3 then v2 and amd64; amd64 then 386; arm64 then arm/v8 down
 * to arm/v5).  Among entries of equal preference the first in the index
 * wins, as in the engine. */
#ifndef RP_IMAGE_INDEX_H
#define RP_IMAGE_INDEX_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define RP_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define RP_MT_DOCKER_LIST                                                      \
  "application/vnd.docker.distribution.manifest.list.v2+json"
#define RP_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define RP_MT_DOCKER_MANIFEST                                                  \
  "application/vnd.docker.distribution.manifest.v2+json"

/* What a manifest request accepts, most wanted first. */
#define RP_MANIFEST_ACCEPT                                                     \
  RP_MT_OCI_INDEX ", " RP_MT_DOCKER_LIST ", " RP_MT_OCI_MANIFEST               \
                  ", " RP_MT_DOCKER_MANIFEST

/* "sha256:" and 64 hex digits, NUL included; sha512 digests are longer
 * and are read but never computed here. */
#define RP_DIGEST_SHA256_LEN (7 + 64 + 1)

enum rp_manifest_kind {
  RP_MANIFEST_UNKNOWN, /* a media type this module does not read */
  RP_MANIFEST_IMAGE,   /* OCI image manifest, Docker schema 2 */
  RP_MANIFEST_INDEX,   /* OCI image index, Docker manifest list */
};

/* The kind of a Content-Type or mediaType value (parameters after ';' and
 * case ignored); NULL is RP_MANIFEST_UNKNOWN. */
enum rp_manifest_kind rp_manifest_kind_of(const char *media_type);

/* The kind of a manifest's body when its media type is not known (an OCI
 * manifest may omit mediaType): an object with "manifests" is an index, one
 * with "layers" or "config" an image.  *media_type_out (may be NULL) gets
 * the body's mediaType (owned) or NULL. */
enum rp_manifest_kind rp_manifest_kind_of_body(const char *json, size_t len,
                                               char **media_type_out);

struct rp_platform {
  char os[32];      /* "linux" */
  char arch[32];    /* "amd64", "arm64", "arm", "386", "ppc64le"... */
  char variant[16]; /* "v7", "v3"... or "" */
};

/* Parses "OS/ARCH[/VARIANT]" ("linux/arm/v7", "linux/amd64") and
 * normalizes it.  RP_ECONFIG with a message when it is not of that shape. */
int rp_platform_parse(const char *s, struct rp_platform *out,
                      struct rp_error **err);

/* An engine's platform from what it reports: the OS ("linux") and its
 * architecture as Go names it (/version's Arch: "amd64", "arm") or as
 * uname does (/info's Architecture: "x86_64", "aarch64", "armv7l"); variant
 * may be NULL.  Normalized. */
void rp_platform_from_engine(const char *os, const char *arch,
                             const char *variant, struct rp_platform *out);

/* This machine's platform (uname), for commands run on the engine's host. */
void rp_platform_host(struct rp_platform *out);

/* Normalizes in place (containerd's platforms.Normalize). */
void rp_platform_normalize(struct rp_platform *p);

/* "linux/arm/v7" into buf (at least 96 bytes); returns buf. */
char *rp_platform_format(const struct rp_platform *p, char *buf, size_t len);

/* How the engine on `want` ranks a manifest for `have`: 0 for the exact
 * platform, higher for a fallback it also runs, -1 when it does not run it.
 * Both normalized. */
int rp_platform_rank(const struct rp_platform *want,
                     const struct rp_platform *have);

/* Chooses, in an index's JSON (an OCI image index or a Docker manifest
 * list), the manifest the engine on platform p would pull: the best ranked
 * entry that is an image manifest with a platform.  Attestation manifests
 * (annotation "vnd.docker.reference.type": "attestation-manifest") and
 * entries for "unknown" OS or architecture are skipped.  *digest_out
 * (owned) is the entry's digest.  Fails with RP_EPROTO when the JSON is not
 * an index or the chosen entry's digest is invalid, and with ENOEXEC when
 * no entry runs on p (the message lists the platforms there are). */
int rp_image_index_select(const char *json, size_t len,
                          const struct rp_platform *p, char **digest_out,
                          struct rp_error **err);

/* "sha256:<hex>" of the bytes into out. */
void rp_image_digest_sha256(const void *data, size_t len,
                            char out[RP_DIGEST_SHA256_LEN]);

/* Whether data's digest is `digest`: true only for a sha256 digest that
 * matches (other algorithms are not checked here: false). */
bool rp_image_digest_matches(const char *digest, const void *data, size_t len);

#endif
