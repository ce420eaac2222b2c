/* Fresh content's pure decisions (freshness.h). */
#include "freshness.h"

#include <stdlib.h>

#include "util.h"

void
rp_content_view_clear(struct rp_content_view *v)
{
  free(v->key);
  free(v->reference);
  free(v->digest);
  free(v->platform_digest);
  free(v->newer_digest);
  free(v->newer_platform_digest);
  free(v->note);
  *v = (struct rp_content_view){0};
}

const char *
rp_content_state_name(enum rp_content_state s)
{
  switch (s) {
  case RP_CONTENT_NONE:
    return "none";
  case RP_CONTENT_LOCAL:
    return "local";
  case RP_CONTENT_PINNED:
    return "pinned";
  case RP_CONTENT_UNKNOWN:
    return "unknown";
  case RP_CONTENT_KNOWN:
    return "known";
  }
  return "none";
}

const char *
rp_newer_state_name(enum rp_newer_state s)
{
  switch (s) {
  case RP_NEWER_NONE:
    return "none";
  case RP_NEWER_SETTLING:
    return "settling";
  case RP_NEWER_READY:
    return "ready";
  case RP_NEWER_QUARANTINED:
    return "quarantined";
  case RP_NEWER_REFUSED:
    return "refused";
  }
  return "none";
}

int64_t
rp_content_birth_ms(int64_t first_seen_ms, int64_t created_ms, int64_t now_ms)
{
  bool plausible = created_ms > RP_CONTENT_PLAUSIBLE_MS && created_ms <= now_ms;
  if (first_seen_ms > 0 && plausible)
    return created_ms < first_seen_ms ? created_ms : first_seen_ms;
  if (first_seen_ms > 0)
    return first_seen_ms;
  return plausible ? created_ms : 0;
}

void
rp_freshness_decide(const struct rp_policy *p, const struct rp_content_facts *f,
                    int64_t now_ms, struct rp_freshness *out)
{
  *out = (struct rp_freshness){
      .update_ms = RP_FRESHNESS_NEVER,
      .image_age_ms = RP_FRESHNESS_NEVER,
  };
  if (!p || f->state != RP_CONTENT_KNOWN)
    return;
  out->birth_ms = rp_content_birth_ms(f->first_seen_ms, f->created_ms, now_ms);
  if (!f->newer)
    return;
  /* A digest first seen at an unknown time (it cannot be: content.c writes
   * it down when it first sees it) would settle from now. */
  int64_t seen = f->newer_seen_ms > 0 ? f->newer_seen_ms : now_ms;
  out->newer_ready_ms = rp_add_sat(seen, p->update_settle_ms);
  if (f->newer_quarantined)
    out->newer = RP_NEWER_QUARANTINED;
  else if (f->newer_refused)
    out->newer = RP_NEWER_REFUSED;
  else if (now_ms < out->newer_ready_ms)
    out->newer = RP_NEWER_SETTLING;
  else
    out->newer = RP_NEWER_READY;
  if (out->newer != RP_NEWER_SETTLING && out->newer != RP_NEWER_READY)
    return;
  if (p->update)
    out->update_ms = out->newer_ready_ms;
  if (p->max_image_age_ms > 0 && out->birth_ms > 0) {
    int64_t old_at = rp_add_sat(out->birth_ms, p->max_image_age_ms);
    out->image_age_ms =
        old_at > out->newer_ready_ms ? old_at : out->newer_ready_ms;
  }
}

void
rp_freshness_apply(struct rp_decision *d, const struct rp_freshness *fr)
{
  const struct rp_policy *p = d->policy;
  if (!p || d->excluded)
    return;
  int64_t at = fr->update_ms;
  enum rp_due_reason why = RP_DUE_UPDATE;
  if (fr->image_age_ms < at) {
    at = fr->image_age_ms;
    why = RP_DUE_IMAGE_AGE;
  }
  /* The earliest wins; on a tie, the life's own deadline. */
  if (at >= d->deadline_ms)
    return;
  d->deadline_ms = at;
  d->due_reason = why;
  d->due_ms = rp_window_next_open(&p->window, at);
  if (d->hard_ms && d->due_ms > d->hard_ms) {
    d->due_ms = d->hard_ms;
    d->due_reason = RP_DUE_HARD_MAX_AGE;
  }
}

bool
rp_freshness_moves(const struct rp_policy *p, enum rp_due_reason reason,
                   const struct rp_freshness *fr)
{
  if (!p || fr->newer != RP_NEWER_READY)
    return false;
  return p->update || p->pull || reason == RP_DUE_IMAGE_AGE ||
         reason == RP_DUE_UPDATE;
}

bool
rp_freshness_quarantines(int failures, int max_failures, bool allowed)
{
  if (allowed)
    return false;
  return failures >= (max_failures > 0 ? max_failures : 1);
}
