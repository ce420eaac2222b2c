/* Fresh content (content.h): references, their digests, quarantines and
 * verdicts.
 *
 * A reference is checked in rounds: its tag is resolved (one HEAD when
 * nothing changed), then each digest that workloads run and whose platform
 * manifest is not known yet is resolved by digest (once: the answer never
 * changes), then what was first seen is written down (image.seen: the
 * workloads' digests first, then the tag's), and the tag's digest becomes
 * the reference's current one.  A round that only has digests to learn
 * (a workload appeared running one) skips the tag. */
#include "content.h"

#include <string.h>

#include "freshness.h"
#include "image_index.h"
#include "image_ref.h"
#include "log.h"
#include "registry_auth.h"
#include "schedule.h"
#include "strv.h"
#include "util.h"

/* A digest of a reference. */
struct digest {
  char *digest;          /* owned: the tag's manifest digest */
  char *platform_digest; /* owned: the manifest for the platform; NULL when
                            not known yet */
  int64_t first_seen_ms; /* 0: not seen yet (not written down) */
  bool wanted;           /* a workload runs it: learn its platform manifest */
  bool tried;            /* its resolve failed in this round */
  bool from_workload;    /* first known from a workload (not the tag) */
  struct digest *next;
};

/* A digest's failed rollouts, by platform manifest. */
struct quarantine {
  char *platform_digest; /* owned */
  char *digest;          /* owned: the tag digest the failure moved to */
  char *policy;          /* owned: the policy of the last failure */
  char *error;           /* owned: the last failure */
  int failures;
  bool quarantined;
  struct quarantine *next;
};

/* Check intervals of the workloads that use a reference. */
struct use {
  int64_t check_ms;
  size_t n;
};

struct ref {
  struct rp_content *c;       /* borrowed */
  char *key;                  /* owned: "REFERENCE PLATFORM" */
  char *reference;            /* owned: canonical, with its tag */
  struct rp_image_ref parsed; /* owned */
  struct rp_platform platform;
  char platform_name[96];
  struct use *uses; /* owned array */
  size_t n_uses;
  size_t place; /* in c->schedule */
  int64_t next_ms;
  bool checking;  /* a round in flight */
  bool tag_round; /* this round resolves the tag */
  bool again;     /* digests became wanted during a round: one more */
  bool checked_once;
  struct rp_registry_op *op; /* the resolve in flight */
  /* The round's answer for the tag, until it is committed. */
  char *resolved, *resolved_platform;
  /* What the tag names (its last successful resolution), or NULL. */
  char *current, *current_platform;
  /* The digest the reference named last (the previous_digest of the next
   * image.seen), or NULL. */
  char *last_named;
  enum rp_registry_outcome outcome; /* of the last tag resolve */
  char *error;                      /* owned: its message, when failed */
  bool resolved_ever;
  struct digest *digests; /* owned list */
  /* owned: image id -> the digest of this reference it was seen with
   * ({"sha256:...": "sha256:..."}): an engine may drop an image's
   * RepoDigests entry when the tag moves to another image (some do),
   * and the content of a running container does not change with that */
  json_t *by_image;
  struct quarantine *q; /* owned list */
  struct ref *next;
};

struct verdict {
  char *key; /* owned: the gate's argv and the digest */
  bool passed;
  struct verdict *next;
};

struct rp_content {
  struct rp_content_env env;
  struct rp_registry *registry; /* owned: with the credentials */
  struct rp_schedule *schedule; /* owned until closed */
  struct ref *refs;             /* owned list */
  struct verdict *verdicts;     /* owned list */
  bool was_ready;
  bool closing;
};

/* --- references ------------------------------------------------------- */

static void
digest_free(struct digest *d)
{
  free(d->digest);
  free(d->platform_digest);
  free(d);
}

static void
quarantine_free(struct quarantine *q)
{
  free(q->platform_digest);
  free(q->digest);
  free(q->policy);
  free(q->error);
  free(q);
}

static void
ref_free(struct ref *r)
{
  free(r->key);
  free(r->reference);
  rp_image_ref_clear(&r->parsed);
  free(r->uses);
  free(r->resolved);
  free(r->resolved_platform);
  free(r->current);
  free(r->current_platform);
  free(r->last_named);
  free(r->error);
  json_decref(r->by_image);
  for (struct digest *d = r->digests, *n; d; d = n) {
    n = d->next;
    digest_free(d);
  }
  for (struct quarantine *q = r->q, *n; q; q = n) {
    n = q->next;
    quarantine_free(q);
  }
  free(r);
}

static size_t
ref_users(const struct ref *r)
{
  size_t n = 0;
  for (size_t i = 0; i < r->n_uses; i++)
    n += r->uses[i].n;
  return n;
}

static int64_t
ref_interval(const struct ref *r)
{
  int64_t best = 0;
  for (size_t i = 0; i < r->n_uses; i++)
    if (r->uses[i].n && (!best || r->uses[i].check_ms < best))
      best = r->uses[i].check_ms;
  return best;
}

static struct ref *
ref_find(const struct rp_content *c, const char *key)
{
  for (struct ref *r = c->refs; r; r = r->next)
    if (strcmp(r->key, key) == 0)
      return r;
  return NULL;
}

/* "docker.io/library/nginx:1.25 linux/amd64" */
static char *
make_key(const char *reference, const char *platform)
{
  return rp_xasprintf("%s %s", reference, platform);
}

/* The reference of key (parsed), created when it is new.  NULL when the
 * reference or platform cannot be read. */
static struct ref *
ref_get(struct rp_content *c, const char *reference, const char *platform)
{
  cleanup_free char *key = make_key(reference, platform);
  struct ref *r = ref_find(c, key);
  if (r)
    return r;
  struct rp_image_ref parsed = {0};
  struct rp_platform pf;
  cleanup_error struct rp_error *err = NULL;
  if (rp_image_ref_parse(reference, &parsed, &err) != 0)
    return NULL;
  if (rp_platform_parse(platform, &pf, &err) != 0) {
    rp_image_ref_clear(&parsed);
    return NULL;
  }
  r = rp_xcalloc(1, sizeof(*r));
  r->c = c;
  r->key = RP_STEAL(key);
  r->reference = rp_xstrdup(reference);
  r->parsed = parsed;
  r->platform = pf;
  rp_platform_format(&pf, r->platform_name, sizeof(r->platform_name));
  r->place = RP_SCHEDULE_NONE;
  r->by_image = json_object();
  r->next = c->refs;
  c->refs = r;
  return r;
}

static struct digest *
digest_find(const struct ref *r, const char *digest)
{
  for (struct digest *d = r->digests; d; d = d->next)
    if (strcmp(d->digest, digest) == 0)
      return d;
  return NULL;
}

static struct digest *
digest_get(struct ref *r, const char *digest)
{
  struct digest *d = digest_find(r, digest);
  if (d)
    return d;
  d = rp_xcalloc(1, sizeof(*d));
  d->digest = rp_xstrdup(digest);
  /* Appended: image.seen lines go out in the order digests came. */
  struct digest **pp = &r->digests;
  while (*pp)
    pp = &(*pp)->next;
  *pp = d;
  return d;
}

static struct quarantine *
quarantine_find(const struct ref *r, const char *platform_digest)
{
  for (struct quarantine *q = r->q; q; q = q->next)
    if (strcmp(q->platform_digest, platform_digest) == 0)
      return q;
  return NULL;
}

static struct quarantine *
quarantine_get(struct ref *r, const char *platform_digest)
{
  struct quarantine *q = quarantine_find(r, platform_digest);
  if (q)
    return q;
  q = rp_xcalloc(1, sizeof(*q));
  q->platform_digest = rp_xstrdup(platform_digest);
  q->next = r->q;
  r->q = q;
  return q;
}

static void
set_str(char **dst, const char *src)
{
  if (*dst == src)
    return;
  free(*dst);
  *dst = src ? rp_xstrdup(src) : NULL;
}

/* --- readiness ---------------------------------------------------------- */

bool
rp_content_ready(const struct rp_content *c)
{
  for (const struct ref *r = c->refs; r; r = r->next)
    if (ref_users(r) && !r->checked_once)
      return false;
  return true;
}

static void
tell_ready(struct rp_content *c)
{
  if (c->closing || c->was_ready || !rp_content_ready(c))
    return;
  c->was_ready = true;
  if (c->env.ready)
    c->env.ready(c->env.ctx);
}

bool
rp_content_checked(const struct rp_content *c, const struct rp_entry *e)
{
  if (!e->content.key)
    return true;
  const struct ref *r = ref_find(c, e->content.key);
  return !r || r->checked_once;
}

/* --- audit lines -------------------------------------------------------- */

static void
append(struct rp_content *c, const char *event, json_t *fields)
{
  if (c->env.append)
    c->env.append(c->env.ctx, event, fields);
}

/* image.seen for d (its platform manifest known), once ever. */
static void
write_seen(struct ref *r, struct digest *d, const char *source, int64_t now)
{
  if (d->first_seen_ms)
    return;
  d->first_seen_ms = now;
  d->from_workload = strcmp(source, "workload") == 0;
  /* A digest that a workload is found running is no new digest of the
   * tag: it has no previous one (the report counts patch latency from
   * digests the tag moved to). */
  const char *prev = d->from_workload ? NULL : r->last_named;
  if (prev && strcmp(prev, d->digest) == 0)
    prev = NULL;
  struct digest *pd = prev ? digest_find(r, prev) : NULL;
  bool new_content = !(pd && pd->platform_digest && d->platform_digest &&
                       strcmp(pd->platform_digest, d->platform_digest) == 0);
  cleanup_json json_t *f =
      json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:b, s:s}", "reference",
                r->reference, "digest", d->digest, "platform", r->platform_name,
                "platform_digest", d->platform_digest, "previous_digest", prev,
                "new_content", new_content, "source", source);
  if (!prev)
    json_object_set_new(f, "previous_digest", json_null());
  append(r->c, "image.seen", f);
  if (!r->last_named || !d->from_workload)
    set_str(&r->last_named, d->digest);
  rp_info("image %s: %s digest %.19s (%s%s)", r->reference,
          d->from_workload ? "running" : "new", d->digest,
          d->platform_digest ? d->platform_digest : "?",
          new_content ? "" : ", same content for this platform");
}

void
rp_content_load(struct rp_content *c, const json_t *line_const)
{
  json_t *line = (json_t *)(uintptr_t)line_const;
  const char *event = json_string_value(json_object_get(line, "event"));
  const char *reference = json_string_value(json_object_get(line, "reference"));
  const char *digest = json_string_value(json_object_get(line, "digest"));
  const char *platform = json_string_value(json_object_get(line, "platform"));
  const char *pd = json_string_value(json_object_get(line, "platform_digest"));
  char host[96];
  if (!platform) {
    /* A line without a platform (not written by this version): this
     * machine's. */
    struct rp_platform pf;
    rp_platform_host(&pf);
    platform = rp_platform_format(&pf, host, sizeof(host));
  }
  int64_t ts = 0;
  if (!event || !reference || !digest || !platform ||
      rp_parse_time_ms(json_string_value(json_object_get(line, "ts")), &ts) !=
          0)
    return;
  struct ref *r = ref_get(c, reference, platform);
  if (!r)
    return;
  if (strcmp(event, "image.seen") == 0) {
    struct digest *d = digest_get(r, digest);
    if (!d->first_seen_ms)
      d->first_seen_ms = ts;
    if (pd && !d->platform_digest)
      d->platform_digest = rp_xstrdup(pd);
    const char *source = json_string_value(json_object_get(line, "source"));
    d->from_workload = source && strcmp(source, "workload") == 0;
    if (!d->from_workload || !r->last_named)
      set_str(&r->last_named, digest);
    if (!d->from_workload && pd) {
      /* What the tag named when last seen: known until the registry says
       * more (a registry down at start changes nothing of it). */
      set_str(&r->current, digest);
      set_str(&r->current_platform, pd);
    }
  } else if (strcmp(event, "image.quarantined") == 0 && pd) {
    struct quarantine *q = quarantine_get(r, pd);
    q->quarantined = true;
    set_str(&q->digest, digest);
    set_str(&q->policy, json_string_value(json_object_get(line, "policy")));
    set_str(&q->error, json_string_value(json_object_get(line, "error")));
    json_t *n = json_object_get(line, "failures");
    q->failures = json_is_integer(n) ? (int)json_integer_value(n) : 1;
  }
}

/* --- rounds -------------------------------------------------------------- */

static void round_next(struct ref *r);

static void
schedule_next(struct ref *r, int64_t at)
{
  r->next_ms = at;
  if (!r->c->closing && ref_users(r))
    rp_schedule_put(r->c->schedule, r, &r->place, at);
}

/* The round is over: what was learnt is written down, and the tag's answer
 * (if any) becomes what it names. */
static void
round_end(struct ref *r)
{
  struct rp_content *c = r->c;
  int64_t now = rp_wall_ms();
  bool changed = false;
  for (struct digest *d = r->digests; d; d = d->next) {
    d->tried = false;
    if (d->wanted && d->platform_digest && !d->first_seen_ms) {
      write_seen(r, d, "workload", now);
      changed = true;
    }
  }
  if (r->resolved) {
    struct digest *d = digest_get(r, r->resolved);
    if (!d->platform_digest)
      d->platform_digest = rp_xstrdup(r->resolved_platform);
    if (!d->first_seen_ms)
      write_seen(r, d, "registry", now);
    /* The tag names it (whoever saw it first). */
    d->from_workload = false;
    if (!r->current || strcmp(r->current, r->resolved) != 0 ||
        strcmp(r->current_platform, r->resolved_platform) != 0) {
      set_str(&r->current, r->resolved);
      set_str(&r->current_platform, r->resolved_platform);
      changed = true;
    }
    if (strcmp(r->last_named ? r->last_named : "", r->resolved) != 0)
      set_str(&r->last_named, r->resolved);
    free(r->resolved);
    free(r->resolved_platform);
    r->resolved = r->resolved_platform = NULL;
  }
  bool first = !r->checked_once && r->tag_round;
  if (r->tag_round) {
    r->checked_once = true;
    int64_t every = ref_interval(r);
    schedule_next(r, now + (every ? every : RP_CONFIG_DEFAULT_CHECK_MS));
  }
  r->checking = false;
  r->tag_round = false;
  if ((changed || first) && c->env.changed)
    c->env.changed(c->env.ctx, r->key);
  if (c->closing)
    return;
  if (r->again) {
    r->again = false;
    r->checking = true;
    round_next(r);
    return;
  }
  tell_ready(c);
}

/* A change of the tag's outcome is said once: a registry that stays down
 * is not logged at every check.  The outcome decides, not the words: a
 * failure's message carries what changes from one try to the next
 * (libcurl's "after 0 ms", "after 1 ms"), and the last one is kept for
 * plan and /status anyway. */
static void
tag_outcome(struct ref *r, const struct rp_error *err)
{
  enum rp_registry_outcome o = rp_registry_outcome_of(err);
  bool same = r->resolved_ever && r->outcome == o;
  r->resolved_ever = true;
  r->outcome = o;
  set_str(&r->error, err ? err->message : NULL);
  if (same)
    return;
  if (err)
    rp_warn("image %s: cannot learn what the tag names (%s): %s; workloads "
            "keep their content, and it is asked again at the next check",
            r->reference, rp_registry_outcome_name(o), err->message);
  else if (r->checked_once)
    rp_info("image %s: the registry answers again", r->reference);
}

static void
tag_resolved_cb(void *arg, const struct rp_registry_result *res,
                const struct rp_error *err)
{
  struct ref *r = arg;
  r->op = NULL;
  if (r->c->closing)
    return;
  tag_outcome(r, err);
  if (err) {
    /* The digests would fail as the tag did: the next round. */
    round_end(r);
    return;
  }
  set_str(&r->resolved, res->digest);
  set_str(&r->resolved_platform, res->platform_digest);
  round_next(r);
}

struct digest_ask {
  struct ref *r;
  char *digest; /* owned */
};

static void
digest_resolved_cb(void *arg, const struct rp_registry_result *res,
                   const struct rp_error *err)
{
  struct digest_ask *ask = arg;
  struct ref *r = ask->r;
  cleanup_free char *digest = ask->digest;
  free(ask);
  r->op = NULL;
  if (r->c->closing)
    return;
  struct digest *d = digest_find(r, digest);
  if (d && err) {
    d->tried = true;
    rp_debug("image %s@%.19s: %s", r->reference, digest, err->message);
  } else if (d && !d->platform_digest) {
    d->platform_digest = rp_xstrdup(res->platform_digest);
  }
  round_next(r);
}

/* The next digest to learn, or the end of the round. */
static void
round_next(struct ref *r)
{
  struct rp_content *c = r->c;
  for (struct digest *d = r->digests; d; d = d->next) {
    if (!d->wanted || d->platform_digest || d->tried)
      continue;
    struct rp_image_ref by = {0};
    rp_image_ref_copy(&by, &r->parsed);
    free(by.tag);
    by.tag = NULL;
    free(by.digest);
    by.digest = rp_xstrdup(d->digest);
    struct digest_ask *ask = rp_xcalloc(1, sizeof(*ask));
    ask->r = r;
    ask->digest = rp_xstrdup(d->digest);
    cleanup_error struct rp_error *err = NULL;
    int rc = rp_registry_resolve(c->registry, &by, &r->platform,
                                 digest_resolved_cb, ask, &r->op, &err);
    rp_image_ref_clear(&by);
    if (rc == 0)
      return;
    free(ask->digest);
    free(ask);
    d->tried = true;
  }
  round_end(r);
}

static void
round_start(struct ref *r, bool tag)
{
  struct rp_content *c = r->c;
  if (c->closing)
    return;
  if (r->checking) {
    r->again = true;
    return;
  }
  r->checking = true;
  r->tag_round = tag;
  if (!tag) {
    round_next(r);
    return;
  }
  cleanup_error struct rp_error *err = NULL;
  if (rp_registry_resolve(c->registry, &r->parsed, &r->platform,
                          tag_resolved_cb, r, &r->op, &err) != 0) {
    tag_outcome(r, err);
    round_end(r);
  }
}

static void
check_due_cb(void *arg, void *item, int64_t now_ms)
{
  (void)arg;
  (void)now_ms;
  struct ref *r = item;
  if (!ref_users(r))
    return; /* nobody uses it any more: no more checks */
  round_start(r, true);
}

/* --- registration --------------------------------------------------------- */

static void
use_add(struct rp_content *c, struct ref *r, int64_t check_ms)
{
  bool was_used = ref_users(r) > 0;
  int64_t before = ref_interval(r);
  size_t i = 0;
  while (i < r->n_uses && r->uses[i].check_ms != check_ms)
    i++;
  if (i == r->n_uses) {
    r->uses = rp_xrealloc(r->uses, (r->n_uses + 1) * sizeof(*r->uses));
    r->uses[r->n_uses++] = (struct use){.check_ms = check_ms};
  }
  r->uses[i].n++;
  int64_t now = rp_wall_ms();
  if (!was_used) {
    /* In use (again): checked now, then at its interval. */
    if (!r->checking) {
      c->was_ready = c->was_ready && r->checked_once;
      schedule_next(r, now);
    }
  } else if (check_ms < before && !r->checking) {
    /* A shorter interval: the next check comes sooner. */
    int64_t at = r->next_ms - before + check_ms;
    schedule_next(r, at < now ? now : at);
  }
}

static void
use_drop(struct rp_content *c, struct ref *r, int64_t check_ms)
{
  for (size_t i = 0; i < r->n_uses; i++)
    if (r->uses[i].check_ms == check_ms && r->uses[i].n > 0) {
      r->uses[i].n--;
      break;
    }
  if (!ref_users(r)) {
    rp_schedule_take(c->schedule, &r->place);
    tell_ready(c);
  }
}

void
rp_content_release(struct rp_content *c, struct rp_entry *e)
{
  struct rp_content_view *v = &e->content;
  if (v->key) {
    struct ref *r = ref_find(c, v->key);
    if (r)
      use_drop(c, r, v->check_ms);
  }
  rp_content_view_clear(v);
}

/* --- judging a workload ------------------------------------------------ */

/* Whether digest (or its platform manifest) is in the policy's
 * update.allow. */
static bool
allowed(const struct rp_policy *p, const char *digest, const char *pd)
{
  return (digest && rp_strv_contains(p->update_allow, digest)) ||
         (pd && rp_strv_contains(p->update_allow, pd));
}

static char *
verdict_key(char *const *argv, const char *digest)
{
  cleanup_json json_t *a = rp_strv_to_json(argv);
  cleanup_free char *text = json_dumps(a, JSON_COMPACT);
  return rp_xasprintf("%s\x1e%s", text ? text : "", digest);
}

enum rp_verdict
rp_content_verdict(const struct rp_content *c, char *const *argv,
                   const char *digest)
{
  if (!argv || !digest)
    return RP_VERDICT_NONE;
  cleanup_free char *k = verdict_key(argv, digest);
  for (const struct verdict *v = c->verdicts; v; v = v->next)
    if (strcmp(v->key, k) == 0)
      return v->passed ? RP_VERDICT_PASSED : RP_VERDICT_REFUSED;
  return RP_VERDICT_NONE;
}

void
rp_content_set_verdict(struct rp_content *c, const char *key, char *const *argv,
                       const char *digest, bool passed)
{
  if (!argv || !digest)
    return;
  char *k = verdict_key(argv, digest);
  struct verdict *v = c->verdicts;
  while (v && strcmp(v->key, k) != 0)
    v = v->next;
  if (!v) {
    v = rp_xcalloc(1, sizeof(*v));
    v->key = k;
    v->next = c->verdicts;
    c->verdicts = v;
  } else {
    free(k);
  }
  v->passed = passed;
  if (!passed && key && c->env.changed)
    c->env.changed(c->env.ctx, key);
}

/* The name part of "NAME@sha256:..." matches the reference's repository. */
static const char *
repo_digest_of(const char *repo_digest, const char *name)
{
  const char *at = strrchr(repo_digest, '@');
  if (!at || !rp_image_digest_valid(at + 1))
    return NULL;
  struct rp_image_ref parsed = {0};
  cleanup_error struct rp_error *err = NULL;
  if (rp_image_ref_parse(repo_digest, &parsed, &err) != 0)
    return NULL;
  cleanup_free char *n = rp_image_ref_name(&parsed);
  rp_image_ref_clear(&parsed);
  return strcmp(n, name) == 0 ? at + 1 : NULL;
}

/* Registers e under key with its policy's interval (and lets go of what it
 * had). */
static void
register_use(struct rp_content *c, struct rp_entry *e, struct ref *r,
             int64_t check_ms)
{
  struct rp_content_view *v = &e->content;
  if (v->key && r && strcmp(v->key, r->key) == 0 && v->check_ms == check_ms)
    return;
  if (v->key) {
    struct ref *old = ref_find(c, v->key);
    if (old)
      use_drop(c, old, v->check_ms);
    free(v->key);
    v->key = NULL;
  }
  if (r) {
    use_add(c, r, check_ms);
    v->key = rp_xstrdup(r->key);
    v->check_ms = check_ms;
  }
}

/* Clears everything but the registration. */
static void
view_reset(struct rp_content_view *v)
{
  char *key = v->key;
  int64_t check_ms = v->check_ms;
  v->key = NULL;
  rp_content_view_clear(v);
  v->key = key;
  v->check_ms = check_ms;
}

void
rp_content_judge(struct rp_content *c, struct rp_entry *e, int64_t now_ms)
{
  struct rp_content_view *v = &e->content;
  const struct rp_policy *p = e->d.policy;
  const struct rp_workload_image *img = &e->w->image;
  view_reset(v);
  if (!p || e->d.excluded || !rp_policy_follows_content(p) || !img->ref) {
    register_use(c, e, NULL, 0);
    return;
  }
  v->facts.created_ms = img->created_ms;
  struct rp_image_ref parsed = {0};
  cleanup_error struct rp_error *err = NULL;
  if (strncmp(img->ref, "sha256:", 7) == 0 ||
      rp_image_ref_parse(img->ref, &parsed, &err) != 0) {
    register_use(c, e, NULL, 0);
    v->facts.state = RP_CONTENT_PINNED;
    v->note = rp_xasprintf("created from image %.19s, not from a tag: "
                           "nothing to follow",
                           img->ref);
    return;
  }
  cleanup_free char *reference = rp_image_ref_format(&parsed);
  cleanup_free char *name = rp_image_ref_name(&parsed);
  bool by_digest = parsed.digest != NULL;
  rp_image_ref_clear(&parsed);
  v->reference = rp_xstrdup(reference);
  if (by_digest) {
    register_use(c, e, NULL, 0);
    v->facts.state = RP_CONTENT_PINNED;
    v->note = rp_xstrdup("created by digest: nothing to follow");
    return;
  }
  struct rp_platform pf;
  char pname[96];
  if (!img->platform || rp_platform_parse(img->platform, &pf, &err) != 0)
    rp_platform_host(&pf);
  rp_platform_format(&pf, pname, sizeof(pname));
  struct ref *r = ref_get(c, reference, pname);
  register_use(c, e, r, rp_policy_check_ms(p));
  if (!r) {
    v->facts.state = RP_CONTENT_UNKNOWN;
    v->note = rp_xstrdup("the reference cannot be read");
    return;
  }

  /* Its digests for this reference, and the one it runs: the one whose
   * platform manifest is what the tag names, else one known; among those,
   * one the tag itself named (an image pulled by its index lists the index
   * and the platform's manifest: the same content), else the first. */
  struct digest *running = NULL;
  int best = 0;
  bool any = false, want_round = false;
  size_t n_rd = rp_strv_len(img->repo_digests);
  /* The digest this image was seen with before, should its RepoDigests
   * no longer say it. */
  const char *remembered =
      img->id ? json_string_value(json_object_get(r->by_image, img->id)) : NULL;
  for (size_t i = 0; i <= n_rd; i++) {
    const char *dg = NULL;
    if (i < n_rd)
      dg = repo_digest_of(img->repo_digests[i], name);
    else if (!any)
      dg = remembered;
    if (!dg)
      continue;
    any = true;
    struct digest *d = digest_get(r, dg);
    if (!d->platform_digest || !d->first_seen_ms) {
      want_round =
          want_round || !d->wanted || (d->platform_digest && !d->first_seen_ms);
      d->wanted = true;
    }
    if (!d->platform_digest)
      continue;
    int score = 1 + !d->from_workload +
                2 * (r->current_platform &&
                     strcmp(d->platform_digest, r->current_platform) == 0);
    if (score > best) {
      running = d;
      best = score;
    }
  }
  if (want_round && r->checked_once && !r->checking)
    round_start(r, false);
  else if (want_round && r->checking)
    r->again = true;
  if (!any) {
    v->facts.state = RP_CONTENT_LOCAL;
    v->note = rp_xstrdup(img->repo_digests
                             ? "no registry digest of this reference: built "
                               "or tagged locally"
                             : "built locally: no registry digest");
    return;
  }
  if (!running) {
    v->facts.state = RP_CONTENT_UNKNOWN;
    v->note = rp_xstrdup(r->error ? r->error : "not resolved yet");
    return;
  }
  v->facts.state = RP_CONTENT_KNOWN;
  if (img->id)
    json_object_set_new(r->by_image, img->id, json_string(running->digest));
  v->digest = rp_xstrdup(running->digest);
  v->platform_digest = rp_xstrdup(running->platform_digest);
  v->facts.first_seen_ms = running->first_seen_ms;
  if (r->error)
    v->note = rp_xstrdup(r->error);
  if (r->current &&
      strcmp(r->current_platform, running->platform_digest) != 0) {
    struct digest *cur = digest_find(r, r->current);
    struct quarantine *q = quarantine_find(r, r->current_platform);
    v->facts.newer = true;
    v->facts.newer_seen_ms = cur ? cur->first_seen_ms : 0;
    v->facts.newer_quarantined =
        q && q->quarantined && !allowed(p, r->current, r->current_platform);
    v->facts.newer_refused =
        p->verify &&
        rp_content_verdict(c, p->verify, r->current) == RP_VERDICT_REFUSED;
    v->newer_digest = rp_xstrdup(r->current);
    v->newer_platform_digest = rp_xstrdup(r->current_platform);
  }
  rp_freshness_decide(p, &v->facts, now_ms, &v->fr);
  rp_freshness_apply(&e->d, &v->fr);
}

/* --- failures and quarantines -------------------------------------------- */

void
rp_content_rollout_failed(struct rp_content *c, const char *key,
                          const struct rp_policy *p, const char *digest,
                          const char *platform_digest, const char *error)
{
  struct ref *r = key ? ref_find(c, key) : NULL;
  if (!r || !platform_digest || !p)
    return;
  struct quarantine *q = quarantine_get(r, platform_digest);
  q->failures++;
  set_str(&q->digest, digest);
  set_str(&q->policy, p->name);
  set_str(&q->error, error);
  bool allow = allowed(p, digest, platform_digest);
  if (q->quarantined ||
      !rp_freshness_quarantines(q->failures, p->update_max_failures, allow)) {
    if (allow)
      rp_warn("image %s@%.19s: a rollout failed; update.allow of policy %s "
              "lists it, so it is not quarantined",
              r->reference, digest ? digest : "?", p->name);
    return;
  }
  q->quarantined = true;
  rp_err("image %s@%.19s quarantined after %d failed rollout%s (policy %s): "
         "no further workload moves to it; workloads keep their content",
         r->reference, digest ? digest : "?", q->failures,
         q->failures == 1 ? "" : "s", p->name);
  cleanup_json json_t *f =
      json_pack("{s:s, s:s?, s:s, s:s, s:i, s:s}", "reference", r->reference,
                "digest", digest, "platform_digest", platform_digest, "policy",
                p->name, "failures", q->failures, "error", error ? error : "");
  append(c, "image.quarantined", f);
  if (c->env.changed)
    c->env.changed(c->env.ctx, r->key);
}

const struct rp_registry_cred *
rp_content_cred(const struct rp_content *c, const char *reference)
{
  struct rp_image_ref parsed = {0};
  cleanup_error struct rp_error *err = NULL;
  const struct rp_registry_auth *auth = rp_registry_get_auth(c->registry);
  if (!auth || !reference || rp_image_ref_parse(reference, &parsed, &err) != 0)
    return NULL;
  const struct rp_registry_cred *cred =
      rp_registry_auth_find(auth, parsed.domain);
  rp_image_ref_clear(&parsed);
  return cred;
}

json_t *
rp_content_stats(const struct rp_content *c)
{
  const struct rp_registry_stats *st = rp_registry_stats(c->registry);
  json_t *outcomes = json_object();
  for (int o = 0; o < RP_REGISTRY_OUTCOMES; o++)
    json_object_set_new(outcomes,
                        rp_registry_outcome_name((enum rp_registry_outcome)o),
                        json_integer((json_int_t)st->outcomes[o]));
  json_t *q = json_array();
  size_t refs = 0;
  for (const struct ref *r = c->refs; r; r = r->next) {
    if (ref_users(r))
      refs++;
    for (const struct quarantine *x = r->q; x; x = x->next)
      if (x->quarantined)
        json_array_append_new(
            q, json_pack("{s:s, s:s?, s:s, s:s?, s:i, s:s?}", "reference",
                         r->reference, "digest", x->digest, "platform_digest",
                         x->platform_digest, "policy", x->policy, "failures",
                         x->failures, "error", x->error));
  }
  return json_pack("{s:o, s:I, s:I, s:o}", "resolves", outcomes, "requests",
                   (json_int_t)st->requests, "references", (json_int_t)refs,
                   "quarantined", q);
}

/* --- life --------------------------------------------------------------- */

struct rp_content *
rp_content_new(const struct rp_content_env *env)
{
  struct rp_content *c = rp_xcalloc(1, sizeof(*c));
  c->env = *env;
  c->registry = rp_registry_new(env->http, NULL);
  c->schedule = rp_schedule_new_items(env->loop, check_due_cb, c);
  return c;
}

void
rp_content_set_auth(struct rp_content *c, struct rp_registry_auth *auth)
{
  rp_registry_set_auth(c->registry, auth);
}

void
rp_content_free(struct rp_content *c)
{
  if (!c)
    return;
  c->closing = true;
  rp_schedule_close(c->schedule);
  /* Callbacks of cancelled resolves run now, and see closing. */
  rp_registry_free(c->registry);
  for (struct ref *r = c->refs, *n; r; r = n) {
    n = r->next;
    ref_free(r);
  }
  for (struct verdict *v = c->verdicts, *n; v; v = n) {
    n = v->next;
    free(v->key);
    free(v);
  }
  free(c);
}
