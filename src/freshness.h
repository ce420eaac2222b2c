/* Fresh content, the pure decisions: how old a workload's content is, whether
 * a newer digest of its tag may be rolled out and when, and how that moves
 * the workload's deadline.  Pure functions of their arguments (now passed
 * in), so that the tests never sleep; what is known of digests comes from
 * content.c, which owns it.
 *
 * A workload's due time is the earliest of:
 *   max_age (or its label, or hard_max_age): policy.c's deadline;
 *   update:    first seen of the newer digest + update.settle, when the
 *              policy has update: and that digest is neither quarantined
 *              nor refused by the verify gate;
 *   image_age: content birth + max_image_age, but not before a newer
 *              digest may be rolled out (recycling into the same content
 *              would leave it as old as it was);
 * moved into the policy's window and never past hard_max_age, as policy.c
 * does.  Its reason is the one that came first. */
#ifndef RP_FRESHNESS_H
#define RP_FRESHNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "policy.h"

/* No due time. */
#define RP_FRESHNESS_NEVER INT64_MAX

/* What is known of a workload's content. */
enum rp_content_state {
  RP_CONTENT_NONE,    /* no policy follows it, or it has no image */
  RP_CONTENT_LOCAL,   /* built locally: no registry digest of its reference */
  RP_CONTENT_PINNED,  /* created by digest or image id: no tag to follow */
  RP_CONTENT_UNKNOWN, /* not known yet (not resolved, registry down) */
  RP_CONTENT_KNOWN,   /* its digest and what its tag names now */
};
/* "none", "local", "pinned", "unknown", "known". */
const char *rp_content_state_name(enum rp_content_state s);

/* Whether a newer digest waits, and why it is not rolled out yet. */
enum rp_newer_state {
  RP_NEWER_NONE,        /* it runs what its tag names (or nothing known) */
  RP_NEWER_SETTLING,    /* seen less than update.settle ago */
  RP_NEWER_READY,       /* may be rolled out */
  RP_NEWER_QUARANTINED, /* replacements into it failed */
  RP_NEWER_REFUSED,     /* the verify gate refused it */
};
/* "none", "settling", "ready", "quarantined", "refused". */
const char *rp_newer_state_name(enum rp_newer_state s);

/* The facts content.c knows of one workload's content. */
struct rp_content_facts {
  enum rp_content_state state;
  bool newer;             /* its tag names other content for its platform */
  bool newer_quarantined; /* and not allowed by update.allow */
  bool newer_refused;     /* by the policy's verify gate */
  int64_t first_seen_ms;  /* of the digest it runs; 0 when not known */
  int64_t created_ms;     /* its image's Created; 0 when not known */
  int64_t newer_seen_ms;  /* when that digest was first seen */
};

/* Created dates before this (2013-01-01, before any container image) are
 * not plausible: reproducible builds write 1970. */
#define RP_CONTENT_PLAUSIBLE_MS INT64_C(1356998400000)

/* When the content came to be, for its age: the earliest of when reaper
 * first saw the digest and the image's Created when that is plausible
 * (after 2013, not after now).  0 when neither is known. */
int64_t rp_content_birth_ms(int64_t first_seen_ms, int64_t created_ms,
                            int64_t now_ms);

struct rp_freshness {
  int64_t birth_ms;          /* 0 when not known */
  enum rp_newer_state newer; /* as of now */
  int64_t newer_ready_ms;    /* when a newer digest may be rolled out */
  int64_t update_ms;         /* due for update, or RP_FRESHNESS_NEVER */
  int64_t image_age_ms;      /* due for image_age, or RP_FRESHNESS_NEVER */
};

/* What a tracked workload's entry keeps of its content: for the recycler
 * and the views (plan, /status, the page, metrics).  content.c sets it at
 * each decision; owned strings, NULL when not known. */
struct rp_content_view {
  char *key;        /* content.c's key of its reference, NULL when none */
  int64_t check_ms; /* the check interval it is registered with */
  char *reference;  /* canonical: "docker.io/library/nginx:1.25" */
  char *digest;     /* the tag digest it runs (RepoDigests') */
  char *platform_digest;
  char *newer_digest; /* what its tag names now, when that is new content */
  char *newer_platform_digest;
  char *note; /* why its content is not known, in words */
  struct rp_content_facts facts;
  struct rp_freshness fr; /* as decided */
};
/* Frees the strings and zeroes v (key and check_ms included). */
void rp_content_view_clear(struct rp_content_view *v);

/* The decisions for a workload under policy p (NULL: none) given facts. */
void rp_freshness_decide(const struct rp_policy *p,
                         const struct rp_content_facts *f, int64_t now_ms,
                         struct rp_freshness *out);

/* Moves d's deadline (policy.c's) to the earliest of it and fr's due times,
 * with that one's reason; the window and hard_max_age apply as they do in
 * rp_policy_decide.  Nothing for an excluded or unmatched workload. */
void rp_freshness_apply(struct rp_decision *d, const struct rp_freshness *fr);

/* Whether a recycle for `reason` under policy p creates the replacement
 * from the newer digest (rather than from what the workload runs): when
 * that digest may be rolled out, and the policy follows its tag (update:),
 * pulls (pull: true), or the recycle is for the content's age. */
bool rp_freshness_moves(const struct rp_policy *p, enum rp_due_reason reason,
                        const struct rp_freshness *fr);

/* Whether `failures` failed rollouts of a digest quarantine it under a
 * policy with max_failures (allowed: update.allow lists the digest). */
bool rp_freshness_quarantines(int failures, int max_failures, bool allowed);

#endif
