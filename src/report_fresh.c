/* `reaper report`: patch latency, from the image.seen lines of new digests
 * to the recycle.done lines that moved workloads to them (the contract is
 * in report.h).
 *
 * One pass: each reference the lines name has, at most, one digest whose
 * window is open (the newest new digest); a recycle.done into it adds to
 * it, overall and in its policy and service.  The references also remember
 * which groups ran them (any recycle.* line with that "image"), so that a
 * digest none of a group's workloads was moved to is counted as pending
 * (or superseded) there too. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A group that named a reference, and when it first did. */
struct ref_group {
  struct rp_report_group *group; /* borrowed */
  int64_t since_ms;
};

struct rp_report_ref {
  char *reference;               /* owned */
  struct rp_report_digest *open; /* borrowed: the newest new digest, whose
                                    window is open; NULL when none */
  struct ref_group *groups;      /* owned */
  size_t n_groups;
};

void
rp_report_fresh_init(struct rp_report_fresh *f)
{
  memset(f, 0, sizeof(*f));
  f->ref_index = json_object();
}

static void
digest_free(struct rp_report_digest *d)
{
  free(d->reference);
  free(d->digest);
  for (size_t i = 0; i < d->n_same; i++)
    free(d->same[i]);
  free(d->same);
  free(d->rollouts);
  free(d);
}

void
rp_report_fresh_clear(struct rp_report_fresh *f)
{
  for (size_t i = 0; i < f->n_digests; i++)
    digest_free(f->digests[i]);
  free(f->digests);
  for (size_t i = 0; i < f->n_refs; i++) {
    free(f->refs[i]->reference);
    free(f->refs[i]->groups);
    free(f->refs[i]);
  }
  free(f->refs);
  json_decref(f->ref_index);
  memset(f, 0, sizeof(*f));
}

static struct rp_report_ref *
ref_get(struct rp_report_fresh *f, const char *reference)
{
  json_t *idx = json_object_get(f->ref_index, reference);
  if (idx)
    return f->refs[json_integer_value(idx)];
  struct rp_report_ref *r = rp_xcalloc(1, sizeof(*r));
  r->reference = rp_xstrdup(reference);
  f->refs = rp_xrealloc(f->refs, (f->n_refs + 1) * sizeof(*f->refs));
  f->refs[f->n_refs] = r;
  json_object_set_new(f->ref_index, reference,
                      json_integer((json_int_t)f->n_refs));
  f->n_refs++;
  return r;
}

/* The digest itself: "sha256:..." whether the line wrote it alone or as
 * RepoDigests lists it ("name@sha256:..."). */
static const char *
bare_digest(const char *s)
{
  const char *at = strrchr(s, '@');
  return at ? at + 1 : s;
}

/* Whether digest s carries d's content: d's own, or one of the same
 * content seen after it. */
static bool
carries(const struct rp_report_digest *d, const char *s)
{
  s = bare_digest(s);
  if (strcmp(bare_digest(d->digest), s) == 0)
    return true;
  for (size_t i = 0; i < d->n_same; i++)
    if (strcmp(bare_digest(d->same[i]), s) == 0)
      return true;
  return false;
}

void
rp_report_fresh_seen(struct rp_report_fresh *f, const json_t *line,
                     int64_t ts_ms)
{
  const char *reference = json_string_value(json_object_get(line, "reference"));
  const char *digest = json_string_value(json_object_get(line, "digest"));
  if (!reference || !digest)
    return; /* not a line this report can use */
  const char *previous =
      json_string_value(json_object_get(line, "previous_digest"));
  json_t *new_content = json_object_get(line, "new_content");
  struct rp_report_ref *r = ref_get(f, reference);

  if (previous && json_is_false(new_content)) {
    /* The tag moved, the platform's content did not: the same rollout. */
    struct rp_report_digest *d = r->open;
    if (d) {
      d->same = rp_xrealloc(d->same, (d->n_same + 1) * sizeof(*d->same));
      d->same[d->n_same++] = rp_xstrdup(digest);
    }
    return;
  }
  /* Any other sighting ends the open digest's window. */
  if (r->open)
    r->open->superseded_ms = ts_ms;
  r->open = NULL;
  if (!previous || !json_is_true(new_content))
    return; /* the first sighting of the reference: nothing to patch */
  struct rp_report_digest *d = rp_xcalloc(1, sizeof(*d));
  d->reference = rp_xstrdup(reference);
  d->digest = rp_xstrdup(digest);
  d->ref = (size_t)json_integer_value(json_object_get(f->ref_index, reference));
  d->first_ms = ts_ms;
  f->digests =
      rp_xrealloc(f->digests, (f->n_digests + 1) * sizeof(*f->digests));
  f->digests[f->n_digests++] = d;
  r->open = d;
}

static struct rp_report_rollout *
rollout_get(struct rp_report_digest *d, struct rp_report_group *g)
{
  for (size_t i = 0; i < d->n_rollouts; i++)
    if (d->rollouts[i].group == g)
      return &d->rollouts[i];
  d->rollouts =
      rp_xrealloc(d->rollouts, (d->n_rollouts + 1) * sizeof(*d->rollouts));
  struct rp_report_rollout *ro = &d->rollouts[d->n_rollouts++];
  *ro = (struct rp_report_rollout){.group = g};
  return ro;
}

static void
moved(int64_t *last_ms, uint32_t *recycles, int64_t ts_ms)
{
  if (ts_ms > *last_ms)
    *last_ms = ts_ms;
  (*recycles)++;
}

void
rp_report_fresh_recycle(struct rp_report_fresh *f, const json_t *line,
                        const char *event, int64_t ts_ms,
                        struct rp_report_group *pg, struct rp_report_group *sg)
{
  const char *image = json_string_value(json_object_get(line, "image"));
  if (!image)
    return;
  struct rp_report_ref *r = ref_get(f, image);
  struct rp_report_group *groups[] = {pg, sg};
  for (size_t k = 0; k < RP_ARRAY_LEN(groups); k++) {
    size_t i = 0;
    while (i < r->n_groups && r->groups[i].group != groups[k])
      i++;
    if (i == r->n_groups) {
      r->groups =
          rp_xrealloc(r->groups, (r->n_groups + 1) * sizeof(*r->groups));
      r->groups[r->n_groups++] =
          (struct ref_group){.group = groups[k], .since_ms = ts_ms};
    }
  }
  if (strcmp(event, "done") != 0 || !r->open)
    return;
  const char *now = json_string_value(json_object_get(line, "image_digest"));
  const char *before =
      json_string_value(json_object_get(line, "previous_image_digest"));
  struct rp_report_digest *d = r->open;
  if (!now || !carries(d, now) || (before && carries(d, before)))
    return; /* not moved to it: another digest, or ran it already */
  moved(&d->last_ms, &d->recycles, ts_ms);
  for (size_t k = 0; k < RP_ARRAY_LEN(groups); k++) {
    struct rp_report_rollout *ro = rollout_get(d, groups[k]);
    moved(&ro->last_ms, &ro->recycles, ts_ms);
  }
}

enum rp_report_digest_state
rp_report_digest_state(const struct rp_report_digest *d, uint32_t recycles)
{
  if (recycles)
    return RP_REPORT_DIGEST_ROLLED_OUT;
  return d->superseded_ms ? RP_REPORT_DIGEST_SUPERSEDED
                          : RP_REPORT_DIGEST_PENDING;
}

static void
count(struct rp_report_group *g, const struct rp_report_digest *d,
      int64_t last_ms, uint32_t recycles)
{
  switch (rp_report_digest_state(d, recycles)) {
  case RP_REPORT_DIGEST_ROLLED_OUT:
    rp_report_samples_push(&g->latency, (double)(last_ms - d->first_ms) / 1000);
    break;
  case RP_REPORT_DIGEST_PENDING:
    g->digests_pending++;
    break;
  case RP_REPORT_DIGEST_SUPERSEDED:
    g->digests_superseded++;
    break;
  }
}

/* Policies first, then services; each by name (and provider). */
static int
rollout_cmp(const void *a, const void *b)
{
  const struct rp_report_group *x =
      ((const struct rp_report_rollout *)a)->group;
  const struct rp_report_group *y =
      ((const struct rp_report_rollout *)b)->group;
  if ((x->provider == NULL) != (y->provider == NULL))
    return x->provider ? 1 : -1;
  int c = strcmp(x->name, y->name);
  if (c == 0 && x->provider)
    c = strcmp(x->provider, y->provider);
  return c;
}

void
rp_report_fresh_finish(struct rp_report_fresh *f,
                       struct rp_report_group *overall)
{
  for (size_t i = 0; i < f->n_digests; i++) {
    struct rp_report_digest *d = f->digests[i];
    const struct rp_report_ref *r = f->refs[d->ref];
    /* The groups that ran the reference before this digest's window
     * ended wait for it, whether or not it reached them. */
    int64_t end = d->superseded_ms ? d->superseded_ms : INT64_MAX;
    for (size_t k = 0; k < r->n_groups; k++)
      if (r->groups[k].since_ms < end)
        rollout_get(d, r->groups[k].group);
    if (d->n_rollouts)
      qsort(d->rollouts, d->n_rollouts, sizeof(*d->rollouts), rollout_cmp);
    for (size_t k = 0; k < d->n_rollouts; k++)
      count(d->rollouts[k].group, d, d->rollouts[k].last_ms,
            d->rollouts[k].recycles);
    count(overall, d, d->last_ms, d->recycles);
  }
}

static const char *const state_names[] = {
    [RP_REPORT_DIGEST_ROLLED_OUT] = "rolled_out",
    [RP_REPORT_DIGEST_PENDING] = "pending",
    [RP_REPORT_DIGEST_SUPERSEDED] = "superseded",
};

static json_t *
time_or_null(int64_t ms)
{
  char buf[40];
  return ms ? json_string(rp_format_time_ms(ms, buf, sizeof(buf)))
            : json_null();
}

/* state, rolled_out_at, latency_s and recycles of a rollout into o. */
static void
rollout_json(json_t *o, const struct rp_report_digest *d, int64_t last_ms,
             uint32_t recycles)
{
  enum rp_report_digest_state st = rp_report_digest_state(d, recycles);
  json_object_set_new(o, "state", json_string(state_names[st]));
  bool out = st == RP_REPORT_DIGEST_ROLLED_OUT;
  json_object_set_new(o, "rolled_out_at", time_or_null(out ? last_ms : 0));
  json_object_set_new(o, "latency_s",
                      out ? json_real((double)(last_ms - d->first_ms) / 1000)
                          : json_null());
  json_object_set_new(o, "recycles", json_integer(recycles));
}

json_t *
rp_report_fresh_digests_json(const struct rp_report_fresh *f)
{
  json_t *arr = json_array();
  for (size_t i = 0; i < f->n_digests; i++) {
    const struct rp_report_digest *d = f->digests[i];
    json_t *o =
        json_pack("{s:s, s:s, s:o}", "reference", d->reference, "digest",
                  d->digest, "first_seen", time_or_null(d->first_ms));
    rollout_json(o, d, d->last_ms, d->recycles);
    json_object_set_new(o, "superseded_at", time_or_null(d->superseded_ms));
    json_t *same = json_array();
    for (size_t k = 0; k < d->n_same; k++)
      json_array_append_new(same, json_string(d->same[k]));
    json_object_set_new(o, "same_content", same);
    json_t *pol = json_array(), *svc = json_array();
    for (size_t k = 0; k < d->n_rollouts; k++) {
      const struct rp_report_rollout *ro = &d->rollouts[k];
      json_t *g = json_pack("{s:s}", "name", ro->group->name);
      if (ro->group->provider)
        json_object_set_new(g, "provider", json_string(ro->group->provider));
      rollout_json(g, d, ro->last_ms, ro->recycles);
      json_array_append_new(ro->group->provider ? svc : pol, g);
    }
    json_object_set_new(o, "policies", pol);
    json_object_set_new(o, "services", svc);
    json_array_append_new(arr, o);
  }
  return arr;
}
