/* What a tag names now: an image reference resolved at its registry, on the
 * loop, through the OCI distribution API (any engine's images; a registry
 * is not an engine).
 *
 * One resolve is:
 *   HEAD /v2/NAME/manifests/REF, accepting OCI index, Docker manifest list,
 *     OCI manifest and Docker schema 2 manifest; its Docker-Content-Digest
 *     is the tag's digest (what `docker inspect` lists in RepoDigests after
 *     a pull by tag);
 *   when the registry answers 401 with a Bearer challenge: GET the token at
 *     its realm (service and scope from the challenge; Basic credentials
 *     from config.json when there are some, anonymous otherwise), then the
 *     request again, once, with the token; a Basic challenge: the request
 *     again with the credentials;
 *   when the HEAD has no digest (or no media type): GET the manifest and
 *     hash its body;
 *   when the tag names an index: GET the index by digest (its bytes checked
 *     against the digest) and choose the manifest for the engine's platform
 *     (image_index.h: attestation manifests skipped).  That manifest's
 *     digest is what decides "new content for this platform": an index that
 *     only gains another platform changes the tag's digest, not it.
 *
 * Cheap when nothing changed: a token is reused (per registry and
 * repository) until its expires_in, and the choice in an index is
 * remembered (per repository, index digest and platform), so a resolve of an
 * unchanged tag is one HEAD, which Docker Hub does not count as a pull.
 * Caching results per reference within a check interval is the caller's.
 *
 * Transport: loopback registries (localhost, 127.0.0.0/8, [::1]) in plain
 * HTTP, as the engine's default insecure-registries; every other one in
 * HTTPS with the peer verified.  Credentials are never sent over plain HTTP
 * to a host that is not loopback.  Every request has a timeout and a body
 * cap; nothing blocks.  Failures never retry by themselves and are not
 * logged here (debug lines aside): the caller logs them with its context. */
#ifndef RP_REGISTRY_H
#define RP_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "http_client.h"
#include "image_index.h"
#include "image_ref.h"
#include "registry_auth.h"

/* A manifest or an index is at most 4 MiB (distribution's own limit); a
 * token answer at most 1 MiB. */
#define RP_REGISTRY_MANIFEST_MAX ((size_t)4 << 20)
#define RP_REGISTRY_TOKEN_MAX ((size_t)1 << 20)

/* How a resolve ended, for metrics (rp_registry_outcome_name gives the
 * label).  The error's code tells the same: */
enum rp_registry_outcome {
  RP_REGISTRY_OK,
  RP_REGISTRY_UNREACHABLE,  /* connect/DNS/TLS/transport: errno (ECONNREFUSED,
                               EIO...) */
  RP_REGISTRY_TIMEOUT,      /* RP_ETIMEOUT */
  RP_REGISTRY_UNAUTHORIZED, /* 401 (no or wrong credentials, token refused):
                               EACCES */
  RP_REGISTRY_DENIED,       /* 403: EPERM */
  RP_REGISTRY_NOT_FOUND,    /* 404, unknown repository or tag: RP_ENOTFOUND */
  RP_REGISTRY_RATE_LIMITED, /* 429: EAGAIN */
  RP_REGISTRY_SERVER_ERROR, /* 5xx and other statuses: EREMOTEIO */
  RP_REGISTRY_BAD_ANSWER,   /* unreadable answer, digest mismatch, body over
                               its cap: RP_EPROTO */
  RP_REGISTRY_NO_PLATFORM,  /* an index without the engine's platform:
                               ENOEXEC */
  RP_REGISTRY_CANCELED,     /* RP_ECANCELED */
  RP_REGISTRY_OUTCOMES
};

/* "ok", "unreachable", "timeout", "unauthorized", "denied", "not_found",
 * "rate_limited", "server_error", "bad_answer", "no_platform", "canceled". */
const char *rp_registry_outcome_name(enum rp_registry_outcome o);

/* The outcome an error stands for (NULL: RP_REGISTRY_OK). */
enum rp_registry_outcome rp_registry_outcome_of(const struct rp_error *err);

/* Counters since rp_registry_new, for /metrics. */
struct rp_registry_stats {
  uint64_t resolves;                       /* started */
  uint64_t outcomes[RP_REGISTRY_OUTCOMES]; /* finished, by outcome */
  uint64_t requests;                       /* HTTP requests sent, tokens
                                              included */
  uint64_t token_requests;                 /* GETs at a token realm */
  uint64_t token_reused;                   /* a request sent with a token
                                              (or Basic) remembered */
  uint64_t index_cached;                   /* an index's choice remembered:
                                              one GET saved */
};

struct rp_registry_options {
  int64_t timeout_ms; /* per request; 0: 30 s */
};

/* The result of a resolve; strings borrowed, valid during the callback. */
struct rp_registry_result {
  const char *reference;  /* canonical: "docker.io/library/busybox:latest" */
  const char *digest;     /* the tag's manifest digest ("sha256:..."), or the
                             asked one for a reference by digest */
  const char *media_type; /* its media type */
  bool is_index;          /* it is an index (several platforms) */
  const char *platform;   /* "linux/amd64": the platform resolved for */
  const char *platform_digest; /* the image manifest for that platform:
                                  digest itself when not an index */
};

/* Called exactly once per resolve that rp_registry_resolve accepted: with
 * res on success (err NULL), or with err on failure (res NULL; its code as
 * in enum rp_registry_outcome, its message "registry HOST: REF: why", with
 * no secret).  The callback may start resolves or free the resolver. */
typedef void (*rp_registry_cb)(void *arg, const struct rp_registry_result *res,
                               const struct rp_error *err);

struct rp_registry;
struct rp_registry_op;

/* A resolver sending through http (borrowed: it must outlive the
 * resolver).  opt may be NULL.  Never fails. */
struct rp_registry *rp_registry_new(struct rp_http *http,
                                    const struct rp_registry_options *opt);

/* Uses auth's credentials from now on (owned: the old ones are freed; NULL
 * for none).  Remembered tokens are forgotten: they were got with the old
 * credentials. */
void rp_registry_set_auth(struct rp_registry *r, struct rp_registry_auth *auth);

/* The credentials in use (borrowed; NULL: none), for callers that pass
 * them on (an engine's pull). */
const struct rp_registry_auth *
rp_registry_get_auth(const struct rp_registry *r);

/* Starts resolving ref (copied) for platform p (copied; normalized here).
 * *op_out (may be NULL) names it for rp_registry_cancel until its callback
 * has run.  The callback never runs before this returns.  Returns -1 with
 * err when the request cannot even start (then cb never runs). */
int rp_registry_resolve(struct rp_registry *r, const struct rp_image_ref *ref,
                        const struct rp_platform *p, rp_registry_cb cb,
                        void *arg, struct rp_registry_op **op_out,
                        struct rp_error **err);

/* Cancels a resolve in flight: its callback runs (RP_ECANCELED) before this
 * returns. */
void rp_registry_cancel(struct rp_registry_op *op);

/* Resolves in flight. */
size_t rp_registry_active(const struct rp_registry *r);

const struct rp_registry_stats *rp_registry_stats(const struct rp_registry *r);

/* Cancels what is in flight (callbacks run) and frees r.  Accepts NULL. */
void rp_registry_free(struct rp_registry *r);

#endif
