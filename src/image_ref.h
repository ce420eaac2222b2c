/* Image references as the docker CLI and engine read them: "busybox",
 * "org/app:1.2", "ghcr.io/org/app@sha256:...", "127.0.0.1:5000/app:tag".
 *
 * The grammar is distribution's (github.com/distribution/reference) and the
 * normalization docker's ParseNormalizedNamed: a first component is a
 * registry host when it has a '.' or a ':', is "localhost", or has an
 * upper-case letter (a repository path cannot); otherwise the registry is
 * docker.io.  index.docker.io is docker.io, and a one-component name on
 * docker.io gets "library/".  A reference with neither tag nor digest means
 * the tag "latest".  Pure: nothing here does I/O. */
#ifndef RP_IMAGE_REF_H
#define RP_IMAGE_REF_H

#include <stdbool.h>

#include "error.h"

/* Distribution's limits: a name (domain/path) of at most 255 bytes, a tag
 * of at most 128. */
#define RP_IMAGE_NAME_MAX 255
#define RP_IMAGE_TAG_MAX 128

struct rp_image_ref {
  char *domain; /* owned: "docker.io", "127.0.0.1:5000", "[::1]:5000" */
  char *path;   /* owned: "library/busybox", "org/app" */
  char *tag;    /* owned: "latest" when neither tag nor digest was given;
                   NULL for a reference by digest alone */
  char *digest; /* owned: "sha256:<64 hex>", or NULL */
};

/* Parses s (NUL-terminated) into *out (overwritten; clear it with
 * rp_image_ref_clear).  Fails with RP_EPROTO and a message that says what
 * is wrong ("repository name must be lowercase", "invalid tag", ...) for
 * anything docker would refuse; *out is then left empty. */
int rp_image_ref_parse(const char *s, struct rp_image_ref *out,
                       struct rp_error **err);

/* Frees the members; accepts NULL and an empty (zeroed) reference. */
void rp_image_ref_clear(struct rp_image_ref *ref);

/* A deep copy of src into *dst. */
void rp_image_ref_copy(struct rp_image_ref *dst,
                       const struct rp_image_ref *src);

/* The canonical form, "docker.io/library/busybox:latest",
 * "host:5000/app@sha256:...", "host/app:1@sha256:..." (owned).  Parsing it
 * gives the same reference back. */
char *rp_image_ref_format(const struct rp_image_ref *ref);

/* The repository's full name without tag or digest,
 * "docker.io/library/busybox" (owned). */
char *rp_image_ref_name(const struct rp_image_ref *ref);

/* What a manifest request names: the digest when there is one (docker pulls
 * by digest then, whatever the tag says), else the tag.  Borrowed. */
const char *rp_image_ref_manifest_ref(const struct rp_image_ref *ref);

/* The host that serves the registry API for a domain: registry-1.docker.io
 * for docker.io, the domain itself otherwise.  Borrowed or static. */
const char *rp_image_ref_api_host(const char *domain);

/* Whether the registry at domain is spoken to in plain HTTP: a loopback host
 * (localhost, 127.0.0.0/8, [::1], any port), as the engine's default
 * insecure-registries (127.0.0.0/8) does.  Every other registry is HTTPS
 * with the peer verified. */
bool rp_image_ref_plain_http(const char *domain);

/* "http://127.0.0.1:5000" or "https://registry-1.docker.io" (owned). */
char *rp_image_ref_registry_url(const char *domain);

/* Whether s is a digest docker accepts: "sha256:" and 64 lower-case hex
 * digits (sha384: 96, sha512: 128). */
bool rp_image_digest_valid(const char *s);

#endif
