/* Fresh content: what content each image reference has, and may run.
 *
 * For every reference that tracked workloads under a policy of fresh content
 * were created from ("nginx:1.25"; SPEC.md "Fresh content"), this module
 * keeps:
 *   - its last resolution at the registry (registry.h): the tag's digest and
 *     the manifest for the workloads' platform; resolved once per reference
 *     every min(update.check) of the policies using it, never per container,
 *     through one schedule (schedule.h); a registry that is down or refuses
 *     is logged once per change of outcome, counted, and blocks nothing;
 *   - when each digest of it was first seen (image.seen in the audit log,
 *     read back at start so that it survives restarts), and the manifest
 *     each digest that workloads run names for their platform (resolved by
 *     digest, once);
 *   - failed rollouts and quarantines per (reference, platform manifest)
 *     (image.quarantined, read back at start; update.allow lifts them);
 *   - the verify gate's verdicts per digest and gate (in memory: a restart
 *     runs the gate again).
 * A workload's content is the platform manifest of its RepoDigest for its
 * reference.  rp_content_judge turns all this into a workload's facts and
 * moves its deadline (freshness.h decides).  Nothing here acts on an
 * engine. */
#ifndef RP_CONTENT_H
#define RP_CONTENT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "http_client.h"
#include "registry.h"
#include "tracker.h"

struct rp_content;

/* What the module needs of its owner (the agent); all called on the loop. */
struct rp_content_env {
  uv_loop_t *loop;
  struct rp_http *http; /* borrowed: the registry client sends through it */
  /* Writes one audit line (image.seen, image.quarantined); NULL: none is
   * written (plan changes nothing). */
  int (*append)(void *ctx, const char *event, json_t *fields);
  /* What is known of a reference changed (what its tag names, a digest's
   * platform manifest, a quarantine, a verdict): the workloads whose
   * content.key is key should be decided again. */
  void (*changed)(void *ctx, const char *key);
  /* Every reference in use has been checked once (see rp_content_ready). */
  void (*ready)(void *ctx);
  void *ctx;
};

struct rp_content *rp_content_new(const struct rp_content_env *env);

/* Registry credentials from now on (owned; NULL: anonymous). */
void rp_content_set_auth(struct rp_content *c, struct rp_registry_auth *auth);

/* An image.seen or image.quarantined line of the audit log (borrowed), read
 * at start in the log's order; other lines are ignored. */
void rp_content_load(struct rp_content *c, const json_t *line);

/* After rp_policy_decide(e): registers e's reference with its policy's
 * check interval (or lets go of it), sets e->content, and moves e->d's
 * deadline to the earliest due reason (rp_freshness_apply). */
void rp_content_judge(struct rp_content *c, struct rp_entry *e, int64_t now_ms);

/* e is no longer tracked: its reference is let go of. */
void rp_content_release(struct rp_content *c, struct rp_entry *e);

/* Whether every reference in use has been checked once (resolved, or
 * failed to), so that a first decision knows what the tags name. */
bool rp_content_ready(const struct rp_content *c);
/* The same for e's reference alone (true when it has none). */
bool rp_content_checked(const struct rp_content *c, const struct rp_entry *e);

/* The verify gate's verdict on digest under argv. */
enum rp_verdict {
  RP_VERDICT_NONE, /* not run yet (since reaper started) */
  RP_VERDICT_PASSED,
  RP_VERDICT_REFUSED,
};
enum rp_verdict rp_content_verdict(const struct rp_content *c,
                                   char *const *argv, const char *digest);
/* Records a verdict; a refusal is a change for the workloads of key. */
void rp_content_set_verdict(struct rp_content *c, const char *key,
                            char *const *argv, const char *digest, bool passed);

/* A recycle of e into its content's newer digest failed to start or to
 * become healthy, and was rolled back: one failure of that digest; at the
 * policy's update.max_failures it is quarantined (image.quarantined), and
 * the workloads of its reference are decided again.  digest and
 * platform_digest are what the recycle moved to. */
void rp_content_rollout_failed(struct rp_content *c, const char *key,
                               const struct rp_policy *p, const char *digest,
                               const char *platform_digest, const char *error);

/* The registry credentials for a reference ("host/name:tag"), borrowed;
 * NULL: anonymous. */
const struct rp_registry_cred *rp_content_cred(const struct rp_content *c,
                                               const char *reference);

/* For /metrics and /status: {"resolves": {OUTCOME: n}, "requests": n,
 * "references": n, "quarantined": [{reference, digest, platform_digest,
 * policy, failures, error}]} (new reference). */
json_t *rp_content_stats(const struct rp_content *c);

/* Cancels the resolves in flight (no callback of env runs from then on) and
 * stops the schedule; then frees c.  Accepts NULL. */
void rp_content_free(struct rp_content *c);

#endif
