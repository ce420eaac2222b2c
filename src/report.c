/* `reaper report`: figures over audit logs (the contract is in report.h).
 *
 * One pass over the lines: each recycle.* line adds to three groups (its
 * policy, its service, overall) a count and, for recycle.done and
 * recycle.begin, a few float samples.  Workloads whose recycle has not
 * ended well are kept in `open` by provider and id until a later line
 * closes them; what is left at the end is the "not recycled" list. */
#include "report.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "config.h"
#include "util.h"

/* The error recycle.c writes when a workload went away between the
 * announcement of its recycle and the action: nothing is left running. */
#define GONE_ERROR "workload gone before the recycle"

void
rp_report_options_init(struct rp_report_options *o)
{
  o->since_ms = INT64_MIN;
  o->until_ms = INT64_MAX;
  o->tolerance_ms = RP_REPORT_DEFAULT_TOLERANCE_MS;
}

/* --- samples and groups -------------------------------------------------- */

void
rp_report_samples_push(struct rp_report_samples *s, double v)
{
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->v = rp_xrealloc(s->v, s->cap * sizeof(*s->v));
  }
  s->v[s->n++] = (float)v;
}

static int
float_cmp(const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

double
rp_report_percentile(const float *sorted, size_t n, double p)
{
  if (n == 0)
    return NAN;
  double h = (double)(n - 1) * p;
  size_t lo = (size_t)floor(h);
  if (lo + 1 >= n)
    return sorted[n - 1];
  return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

static struct rp_report_stats
samples_finish(struct rp_report_samples *s)
{
  struct rp_report_stats st = {.n = s->n};
  if (s->n == 0)
    return st;
  qsort(s->v, s->n, sizeof(*s->v), float_cmp);
  st.min = s->v[0];
  st.p25 = rp_report_percentile(s->v, s->n, 0.25);
  st.p50 = rp_report_percentile(s->v, s->n, 0.50);
  st.p75 = rp_report_percentile(s->v, s->n, 0.75);
  st.p95 = rp_report_percentile(s->v, s->n, 0.95);
  st.max = s->v[s->n - 1];
  return st;
}

static void
group_clear(struct rp_report_group *g)
{
  free(g->name);
  free(g->provider);
  free(g->longest_name);
  free(g->age.v);
  free(g->ratio.v);
  free(g->lateness.v);
  free(g->duration.v);
  free(g->content_age.v);
  free(g->latency.v);
  free(g->times);
}

static void
group_free(struct rp_report_group *g)
{
  if (!g)
    return;
  group_clear(g);
  free(g);
}

static void
group_finish(struct rp_report_group *g)
{
  g->age_st = samples_finish(&g->age);
  g->ratio_st = samples_finish(&g->ratio);
  g->lateness_st = samples_finish(&g->lateness);
  g->duration_st = samples_finish(&g->duration);
  g->content_age_st = samples_finish(&g->content_age);
  g->latency_st = samples_finish(&g->latency);
}

/* The group under key in r->group_index, made on first use. */
static struct rp_report_group *
group_get(struct rp_report *r, const char *key, struct rp_report_group ***arr,
          size_t *n, const char *name, const char *provider)
{
  json_t *idx = json_object_get(r->group_index, key);
  if (idx)
    return (*arr)[json_integer_value(idx)];
  struct rp_report_group *g = rp_xcalloc(1, sizeof(*g));
  g->name = rp_xstrdup(name);
  g->provider = provider ? rp_xstrdup(provider) : NULL;
  g->max_age_min_s = g->max_age_max_s = NAN;
  *arr = rp_xrealloc(*arr, (*n + 1) * sizeof(**arr));
  (*arr)[*n] = g;
  json_object_set_new(r->group_index, key, json_integer((json_int_t)*n));
  (*n)++;
  return g;
}

/* --- reading ------------------------------------------------------------- */

/* recycle.done's "reason", as SPEC lists them (the enum's order). */
static const char *const reason_words[] = {
    [RP_REPORT_REASON_MAX_AGE] = "max_age",
    [RP_REPORT_REASON_HARD_MAX_AGE] = "hard_max_age",
    [RP_REPORT_REASON_UPDATE] = "update",
    [RP_REPORT_REASON_IMAGE_AGE] = "image_age",
    [RP_REPORT_REASON_LABEL] = "label",
    [RP_REPORT_REASON_PULL] = "pull",
};

static enum rp_report_reason
reason_of(const char *s)
{
  if (!s)
    return RP_REPORT_REASON_UNSTATED;
  for (size_t i = 0; i < RP_ARRAY_LEN(reason_words); i++)
    if (strcmp(s, reason_words[i]) == 0)
      return (enum rp_report_reason)i;
  return RP_REPORT_REASON_OTHER;
}

/* recycle.refused's "refused_by" (the enum's order). */
static const char *const refuser_words[] = {
    [RP_REPORT_REFUSED_VERIFY] = "verify",
    [RP_REPORT_REFUSED_QUARANTINE] = "quarantine",
    [RP_REPORT_REFUSED_PROVIDER] = "provider",
};

static enum rp_report_refuser
refuser_of(const char *s)
{
  for (size_t i = 0; s && i < RP_ARRAY_LEN(refuser_words); i++)
    if (strcmp(s, refuser_words[i]) == 0)
      return (enum rp_report_refuser)i;
  return RP_REPORT_REFUSED_OTHER;
}

/* What a recycle.* line says about its workload. */
struct rec {
  const json_t *line; /* borrowed */
  const char *event, *ts, *provider, *kind, *id, *name, *policy;
  int64_t ts_ms;
  double age_s, max_age_s; /* NAN when absent */
};

static const char *
str_member(const json_t *o, const char *key)
{
  return json_string_value(json_object_get(o, key));
}

static double
num_member(const json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *
json_num_or_null(double v)
{
  return isnan(v) ? json_null() : json_real(v);
}

/* The workload's description, as both lists show it. */
static json_t *
workload_json(const struct rec *e)
{
  return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:o, s:o}", "provider",
                   e->provider, "kind", e->kind ? e->kind : "", "name",
                   e->name ? e->name : "", "id", e->id, "policy", e->policy,
                   "max_age_s", json_num_or_null(e->max_age_s), "age_s",
                   json_num_or_null(e->age_s));
}

static void
check_overstay(struct rp_report *r, const struct rec *e, double lived_s,
               const char *how)
{
  if (isnan(lived_s) || isnan(e->max_age_s) || e->max_age_s <= 0)
    return;
  double over = lived_s - e->max_age_s;
  if (over * 1000 <= (double)r->opt.tolerance_ms)
    return;
  json_t *o = workload_json(e);
  json_object_set_new(o, "lived_s", json_real(round(lived_s * 1000) / 1000));
  json_object_set_new(o, "overstay_s", json_real(round(over * 1000) / 1000));
  json_object_set_new(o, "ended", json_string(how));
  json_object_set_new(o, "ts", json_string(e->ts));
  json_array_append_new(r->overstayed, o);
}

/* The workload is running past its deadline as far as the log knows, for
 * the reason in state. */
static void
open_set(struct rp_report *r, const char *key, const struct rec *e,
         const char *state, const char *detail)
{
  json_t *o = workload_json(e);
  json_object_set_new(o, "state", json_string(state));
  json_object_set_new(o, "detail", detail ? json_string(detail) : json_null());
  json_object_set_new(o, "ts", json_string(e->ts));
  json_object_set_new(o, "ts_ms", json_integer(e->ts_ms));
  json_object_set_new(r->open, key, o);
}

static void
add_done(struct rp_report_group *g, const struct rec *e, double duration_s)
{
  g->done++;
  if (!isnan(e->age_s)) {
    rp_report_samples_push(&g->age, e->age_s);
    if (!isnan(e->max_age_s) && e->max_age_s > 0)
      rp_report_samples_push(&g->ratio, e->age_s / e->max_age_s);
    if (e->age_s > g->longest_s || !g->longest_name) {
      g->longest_s = e->age_s;
      free(g->longest_name);
      g->longest_name = rp_xstrdup(e->name && *e->name ? e->name : e->id);
    }
  }
  if (!isnan(e->max_age_s)) {
    if (isnan(g->max_age_min_s) || e->max_age_s < g->max_age_min_s)
      g->max_age_min_s = e->max_age_s;
    if (isnan(g->max_age_max_s) || e->max_age_s > g->max_age_max_s)
      g->max_age_max_s = e->max_age_s;
  }
  if (!isnan(duration_s))
    rp_report_samples_push(&g->duration, duration_s);
}

static void
add_time(struct rp_report *r, struct rp_report_group *g, int64_t ts_ms)
{
  if (g->n_times == g->cap_times) {
    g->cap_times = g->cap_times ? g->cap_times * 2 : 16;
    g->times = rp_xrealloc(g->times, g->cap_times * sizeof(*g->times));
  }
  int64_t off = (ts_ms - r->base_ms) / 1000;
  if (off > INT32_MAX)
    off = INT32_MAX;
  if (off < INT32_MIN)
    off = INT32_MIN;
  g->times[g->n_times++] = (int32_t)off;
}

static void
on_recycle(struct rp_report *r, const struct rec *e)
{
  const char *policy = e->policy ? e->policy : "(none)";
  cleanup_free char *pkey = rp_xasprintf("p\x1f%s", policy);
  struct rp_report_group *pg =
      group_get(r, pkey, &r->policies, &r->n_policies, policy, NULL);
  const char *named = str_member(e->line, "service");
  cleanup_free char *svc =
      named && *named ? rp_xstrdup(named)
                      : rp_report_service_name(e->kind, e->name, e->id);
  cleanup_free char *skey = rp_xasprintf("s\x1f%s\x1f%s", e->provider, svc);
  struct rp_report_group *sg =
      group_get(r, skey, &r->services, &r->n_services, svc, e->provider);
  struct rp_report_group *groups[] = {pg, sg, &r->overall};
  cleanup_free char *key = rp_xasprintf("%s\x1f%s", e->provider, e->id);
  const char *ev = e->event + strlen("recycle.");

  if (strcmp(ev, "begin") == 0) {
    double late = num_member(e->line, "lateness_s");
    for (size_t i = 0; !isnan(late) && i < RP_ARRAY_LEN(groups); i++)
      rp_report_samples_push(&groups[i]->lateness, late);
    open_set(r, key, e, "unfinished", "the recycle began and no line ended it");
  } else if (strcmp(ev, "done") == 0) {
    double dur = num_member(e->line, "duration_s");
    const char *reason = str_member(e->line, "reason");
    double content_age = num_member(e->line, "content_age_s");
    if (reason || !isnan(content_age) ||
        json_object_get(e->line, "image_digest"))
      r->fresh.any = true;
    for (size_t i = 0; i < RP_ARRAY_LEN(groups); i++) {
      add_done(groups[i], e, dur);
      groups[i]->by_reason[reason_of(reason)]++;
      if (!isnan(content_age))
        rp_report_samples_push(&groups[i]->content_age, content_age);
    }
    add_time(r, pg, e->ts_ms);
    check_overstay(r, e, e->age_s + (isnan(dur) ? 0 : dur), "recycled");
    json_object_del(r->open, key);
  } else if (strcmp(ev, "failed") == 0) {
    bool rolled_back = json_is_true(json_object_get(e->line, "rolled_back"));
    for (size_t i = 0; i < RP_ARRAY_LEN(groups); i++) {
      groups[i]->failed++;
      if (rolled_back)
        groups[i]->rolled_back++;
    }
    const char *error = str_member(e->line, "error");
    if (error && strcmp(error, GONE_ERROR) == 0)
      json_object_del(r->open, key);
    else
      open_set(r, key, e, "failed", error);
  } else if (strcmp(ev, "planned") == 0) {
    for (size_t i = 0; i < RP_ARRAY_LEN(groups); i++)
      groups[i]->planned++;
  } else if (strcmp(ev, "refused") == 0) {
    /* Nothing was done: neither a failure nor a recycle. */
    enum rp_report_refuser by = refuser_of(str_member(e->line, "refused_by"));
    if (by == RP_REPORT_REFUSED_VERIFY || by == RP_REPORT_REFUSED_QUARANTINE)
      r->fresh.any = true;
    for (size_t i = 0; i < RP_ARRAY_LEN(groups); i++) {
      groups[i]->refused++;
      groups[i]->refused_by[by]++;
    }
  } else if (strcmp(ev, "recovered") == 0) {
    for (size_t i = 0; i < RP_ARRAY_LEN(groups); i++)
      groups[i]->recovered++;
    const char *action = str_member(e->line, "action");
    const char *detail = str_member(e->line, "detail");
    bool ok = json_is_true(json_object_get(e->line, "ok"));
    if (ok && action && strcmp(action, "finished") == 0) {
      /* The workload lived until the recovery finished its recycle. */
      int64_t begun_ms;
      const char *begun = str_member(e->line, "begun_at");
      if (begun && rp_parse_time_ms(begun, &begun_ms) == 0 && begun_ms > 0)
        check_overstay(r, e, e->age_s + (double)(e->ts_ms - begun_ms) / 1000,
                       "recovered");
      json_object_del(r->open, key);
    } else if (ok) {
      /* Rolled back, or found not begun: the old workload still runs. */
      open_set(r, key, e,
               action && strcmp(action, "none") == 0
                   ? "not begun before a crash"
                   : "rolled back after a crash",
               detail);
    } else {
      open_set(r, key, e, "recovery failed", detail);
    }
  }
  rp_report_fresh_recycle(&r->fresh, e->line, ev, e->ts_ms, pg, sg);
}

/* image.quarantined: a digest no further workload of the policy is moved
 * to. */
static void
on_quarantined(struct rp_report *r, const json_t *line)
{
  const char *policy = str_member(line, "policy");
  if (!policy)
    policy = "(none)";
  cleanup_free char *pkey = rp_xasprintf("p\x1f%s", policy);
  group_get(r, pkey, &r->policies, &r->n_policies, policy, NULL)->quarantined++;
  r->overall.quarantined++;
}

static int
line_cb(void *arg, const json_t *line)
{
  struct rp_report *r = arg;
  struct rec e = {.line = line};
  e.ts = str_member(line, "ts");
  e.event = str_member(line, "event");
  if (!e.ts || !e.event || rp_parse_time_ms(e.ts, &e.ts_ms) != 0 ||
      e.ts_ms == 0) {
    r->bad_lines++; /* not an audit line */
    return 0;
  }
  if (e.ts_ms < r->opt.since_ms || e.ts_ms >= r->opt.until_ms)
    return 0;
  if (r->lines++ == 0) {
    r->base_ms = r->first_ms = r->last_ms = e.ts_ms;
  } else {
    if (e.ts_ms < r->first_ms)
      r->first_ms = e.ts_ms;
    if (e.ts_ms > r->last_ms)
      r->last_ms = e.ts_ms;
  }
  if (strcmp(e.event, "image.seen") == 0) {
    r->fresh.any = true;
    rp_report_fresh_seen(&r->fresh, line, e.ts_ms);
    return 0;
  }
  if (strcmp(e.event, "image.quarantined") == 0) {
    r->fresh.any = true;
    on_quarantined(r, line);
    return 0;
  }
  if (strncmp(e.event, "recycle.", 8) != 0)
    return 0;
  e.provider = str_member(line, "provider");
  e.id = str_member(line, "id");
  if (!e.provider || !e.id)
    return 0;
  e.kind = str_member(line, "kind");
  e.name = str_member(line, "name");
  e.policy = str_member(line, "policy");
  e.age_s = num_member(line, "age_s");
  e.max_age_s = num_member(line, "max_age_s");
  on_recycle(r, &e);
  return 0;
}

static int
group_cmp(const void *a, const void *b)
{
  const struct rp_report_group *x = *(struct rp_report_group *const *)a;
  const struct rp_report_group *y = *(struct rp_report_group *const *)b;
  int c = strcmp(x->name, y->name);
  if (c == 0 && x->provider && y->provider)
    c = strcmp(x->provider, y->provider);
  return c;
}

static int
open_cmp(const void *a, const void *b)
{
  json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  json_int_t tx = json_integer_value(json_object_get(x, "ts_ms"));
  json_int_t ty = json_integer_value(json_object_get(y, "ts_ms"));
  if (tx != ty)
    return tx < ty ? -1 : 1;
  return strcmp(json_string_value(json_object_get(x, "name")),
                json_string_value(json_object_get(y, "name")));
}

static void
finish(struct rp_report *r)
{
  rp_report_fresh_finish(&r->fresh, &r->overall);
  group_finish(&r->overall);
  for (size_t i = 0; i < r->n_policies; i++)
    group_finish(r->policies[i]);
  for (size_t i = 0; i < r->n_services; i++)
    group_finish(r->services[i]);
  if (r->n_policies)
    qsort(r->policies, r->n_policies, sizeof(*r->policies), group_cmp);
  if (r->n_services)
    qsort(r->services, r->n_services, sizeof(*r->services), group_cmp);
  json_object_clear(r->group_index); /* indexes are stale once sorted */

  /* What is still open is the not-recycled list, oldest first, with how
   * old each workload was at the end of the report at least. */
  size_t n = json_object_size(r->open), i = 0;
  json_t **items = rp_xcalloc(n ? n : 1, sizeof(*items));
  const char *key;
  json_t *o;
  json_object_foreach(r->open, key, o) items[i++] = o;
  if (n)
    qsort(items, n, sizeof(*items), open_cmp);
  for (i = 0; i < n; i++) {
    json_t *c = json_deep_copy(items[i]);
    json_int_t ts = json_integer_value(json_object_get(c, "ts_ms"));
    json_object_del(c, "ts_ms");
    double age = num_member(c, "age_s");
    json_object_set_new(
        c, "age_at_end_s",
        isnan(age)
            ? json_null()
            : json_real(round(age * 1000 + (double)(r->last_ms - ts)) / 1000));
    json_array_append_new(r->not_recycled, c);
  }
  free(items);
}

int
rp_report_build(const char *const *paths, size_t n_paths,
                const struct rp_report_options *opt, struct rp_report **out,
                struct rp_error **err)
{
  if (n_paths == 0)
    return rp_error_set(err, RP_ECONFIG, "report: no log to read");
  struct rp_report *r = rp_xcalloc(1, sizeof(*r));
  if (opt)
    r->opt = *opt;
  else
    rp_report_options_init(&r->opt);
  r->paths = rp_xcalloc(n_paths, sizeof(*r->paths));
  r->n_paths = n_paths;
  for (size_t i = 0; i < n_paths; i++)
    r->paths[i] = rp_xstrdup(paths[i]);
  r->overall.max_age_min_s = r->overall.max_age_max_s = NAN;
  r->group_index = json_object();
  r->open = json_object();
  r->overstayed = json_array();
  r->not_recycled = json_array();
  rp_report_fresh_init(&r->fresh);

  for (size_t i = 0; i < n_paths; i++) {
    uint64_t bad = 0;
    if (rp_audit_read(paths[i], line_cb, r, &bad, err) != 0) {
      rp_report_free(r);
      return rp_error_prefix(err, "report");
    }
    r->bad_lines += bad;
  }
  finish(r);

  cleanup_error struct rp_error *verr = NULL;
  if (rp_audit_verify(paths, n_paths, NULL, NULL, &verr) != 0)
    r->chain_problem =
        rp_xstrdup(verr && verr->message ? verr->message : "does not verify");
  *out = r;
  return 0;
}

const char *
rp_report_chain_problem(const struct rp_report *r)
{
  return r->chain_problem;
}

uint64_t
rp_report_bad_lines(const struct rp_report *r)
{
  return r->bad_lines;
}

void
rp_report_free(struct rp_report *r)
{
  if (!r)
    return;
  for (size_t i = 0; i < r->n_paths; i++)
    free(r->paths[i]);
  free(r->paths);
  free(r->chain_problem);
  group_clear(&r->overall);
  for (size_t i = 0; i < r->n_policies; i++)
    group_free(r->policies[i]);
  free(r->policies);
  for (size_t i = 0; i < r->n_services; i++)
    group_free(r->services[i]);
  free(r->services);
  json_decref(r->group_index);
  json_decref(r->open);
  json_decref(r->overstayed);
  json_decref(r->not_recycled);
  rp_report_fresh_clear(&r->fresh);
  free(r);
}

/* --- the figures, shared by every output ---------------------------------- */

enum fig_kind { FIG_COUNT, FIG_SECONDS, FIG_RATIO, FIG_RATE };

enum fig {
  F_RECYCLES,
  F_FAILURES,
  F_ROLLED_BACK,
  F_PLANNED,
  F_RECOVERED,
  F_REFUSED,
  F_MAX_AGE_MIN,
  F_MAX_AGE_MAX,
  F_AGE_P50,
  F_AGE_P95,
  F_RATIO_P50,
  F_RATIO_P95,
  F_LONGEST,
  F_LATE_P50,
  F_LATE_P95,
  F_LATE_WORST,
  F_DUR_P50,
  F_DUR_P95,
  F_PER_HOUR,
  F_PER_DAY,
  /* Fresh content: after longest_workload in the CSV, so that the columns
   * of reports before it keep their places. */
  F_CONTENT_AGE_P50,
  F_CONTENT_AGE_WORST,
  F_REASON_FIRST, /* one per enum rp_report_reason, in its order */
  F_REFUSED_FIRST = F_REASON_FIRST + RP_REPORT_N_REASONS,
  F_QUARANTINED = F_REFUSED_FIRST + RP_REPORT_N_REFUSERS,
  F_DIGESTS,
  F_DIGESTS_ROLLED_OUT,
  F_DIGESTS_PENDING,
  F_DIGESTS_SUPERSEDED,
  F_LATENCY_P50,
  F_LATENCY_WORST,
  N_FIGS
};

static const struct {
  const char *name; /* the CSV column and JSON member */
  enum fig_kind kind;
} figs[N_FIGS] = {
    [F_RECYCLES] = {"recycles", FIG_COUNT},
    [F_FAILURES] = {"failures", FIG_COUNT},
    [F_ROLLED_BACK] = {"rolled_back", FIG_COUNT},
    [F_PLANNED] = {"planned", FIG_COUNT},
    [F_RECOVERED] = {"recovered", FIG_COUNT},
    [F_REFUSED] = {"refused", FIG_COUNT},
    [F_MAX_AGE_MIN] = {"max_age_min_s", FIG_SECONDS},
    [F_MAX_AGE_MAX] = {"max_age_max_s", FIG_SECONDS},
    [F_AGE_P50] = {"age_p50_s", FIG_SECONDS},
    [F_AGE_P95] = {"age_p95_s", FIG_SECONDS},
    [F_RATIO_P50] = {"age_ratio_p50", FIG_RATIO},
    [F_RATIO_P95] = {"age_ratio_p95", FIG_RATIO},
    [F_LONGEST] = {"longest_s", FIG_SECONDS},
    [F_LATE_P50] = {"lateness_p50_s", FIG_SECONDS},
    [F_LATE_P95] = {"lateness_p95_s", FIG_SECONDS},
    [F_LATE_WORST] = {"lateness_worst_s", FIG_SECONDS},
    [F_DUR_P50] = {"duration_p50_s", FIG_SECONDS},
    [F_DUR_P95] = {"duration_p95_s", FIG_SECONDS},
    [F_PER_HOUR] = {"per_hour", FIG_RATE},
    [F_PER_DAY] = {"per_day", FIG_RATE},
    [F_CONTENT_AGE_P50] = {"content_age_p50_s", FIG_SECONDS},
    [F_CONTENT_AGE_WORST] = {"content_age_worst_s", FIG_SECONDS},
    [F_REASON_FIRST + RP_REPORT_REASON_MAX_AGE] = {"reason_max_age", FIG_COUNT},
    [F_REASON_FIRST +
        RP_REPORT_REASON_HARD_MAX_AGE] = {"reason_hard_max_age", FIG_COUNT},
    [F_REASON_FIRST + RP_REPORT_REASON_UPDATE] = {"reason_update", FIG_COUNT},
    [F_REASON_FIRST +
        RP_REPORT_REASON_IMAGE_AGE] = {"reason_image_age", FIG_COUNT},
    [F_REASON_FIRST + RP_REPORT_REASON_LABEL] = {"reason_label", FIG_COUNT},
    [F_REASON_FIRST + RP_REPORT_REASON_PULL] = {"reason_pull", FIG_COUNT},
    [F_REASON_FIRST + RP_REPORT_REASON_OTHER] = {"reason_other", FIG_COUNT},
    [F_REASON_FIRST +
        RP_REPORT_REASON_UNSTATED] = {"reason_unstated", FIG_COUNT},
    [F_REFUSED_FIRST +
        RP_REPORT_REFUSED_VERIFY] = {"refused_verify", FIG_COUNT},
    [F_REFUSED_FIRST +
        RP_REPORT_REFUSED_QUARANTINE] = {"refused_quarantine", FIG_COUNT},
    [F_REFUSED_FIRST +
        RP_REPORT_REFUSED_PROVIDER] = {"refused_provider", FIG_COUNT},
    [F_REFUSED_FIRST + RP_REPORT_REFUSED_OTHER] = {"refused_other", FIG_COUNT},
    [F_QUARANTINED] = {"quarantined", FIG_COUNT},
    [F_DIGESTS] = {"digests", FIG_COUNT},
    [F_DIGESTS_ROLLED_OUT] = {"digests_rolled_out", FIG_COUNT},
    [F_DIGESTS_PENDING] = {"digests_pending", FIG_COUNT},
    [F_DIGESTS_SUPERSEDED] = {"digests_superseded", FIG_COUNT},
    [F_LATENCY_P50] = {"patch_latency_p50_s", FIG_SECONDS},
    [F_LATENCY_WORST] = {"patch_latency_worst_s", FIG_SECONDS},
};

static double
span_s(const struct rp_report *r)
{
  return r->lines ? (double)(r->last_ms - r->first_ms) / 1000 : 0;
}

/* The figures of g, NAN where there is no sample; rounded as printed
 * (milliseconds, ratios to 4 decimals, rates to 3). */
static void
group_figures(const struct rp_report *r, const struct rp_report_group *g,
              double v[N_FIGS])
{
  double span = span_s(r);
#define STAT(st, field) ((st).n ? (st).field : NAN)
  v[F_RECYCLES] = (double)g->done;
  v[F_FAILURES] = (double)g->failed;
  v[F_ROLLED_BACK] = (double)g->rolled_back;
  v[F_PLANNED] = (double)g->planned;
  v[F_RECOVERED] = (double)g->recovered;
  v[F_REFUSED] = (double)g->refused;
  v[F_MAX_AGE_MIN] = g->done ? g->max_age_min_s : NAN;
  v[F_MAX_AGE_MAX] = g->done ? g->max_age_max_s : NAN;
  v[F_AGE_P50] = STAT(g->age_st, p50);
  v[F_AGE_P95] = STAT(g->age_st, p95);
  v[F_RATIO_P50] = STAT(g->ratio_st, p50);
  v[F_RATIO_P95] = STAT(g->ratio_st, p95);
  v[F_LONGEST] = STAT(g->age_st, max);
  v[F_LATE_P50] = STAT(g->lateness_st, p50);
  v[F_LATE_P95] = STAT(g->lateness_st, p95);
  v[F_LATE_WORST] = STAT(g->lateness_st, max);
  v[F_DUR_P50] = STAT(g->duration_st, p50);
  v[F_DUR_P95] = STAT(g->duration_st, p95);
  v[F_PER_HOUR] = span > 0 ? (double)g->done * 3600 / span : NAN;
  v[F_PER_DAY] = span > 0 ? (double)g->done * 86400 / span : NAN;
  v[F_CONTENT_AGE_P50] = STAT(g->content_age_st, p50);
  v[F_CONTENT_AGE_WORST] = STAT(g->content_age_st, max);
  for (size_t i = 0; i < RP_REPORT_N_REASONS; i++)
    v[F_REASON_FIRST + i] = (double)g->by_reason[i];
  for (size_t i = 0; i < RP_REPORT_N_REFUSERS; i++)
    v[F_REFUSED_FIRST + i] = (double)g->refused_by[i];
  /* A quarantine is a policy's: a service has none of its own. */
  v[F_QUARANTINED] = g->provider ? NAN : (double)g->quarantined;
  v[F_DIGESTS_ROLLED_OUT] = (double)g->latency_st.n;
  v[F_DIGESTS_PENDING] = (double)g->digests_pending;
  v[F_DIGESTS_SUPERSEDED] = (double)g->digests_superseded;
  v[F_DIGESTS] =
      v[F_DIGESTS_ROLLED_OUT] + v[F_DIGESTS_PENDING] + v[F_DIGESTS_SUPERSEDED];
  v[F_LATENCY_P50] = STAT(g->latency_st, p50);
  v[F_LATENCY_WORST] = STAT(g->latency_st, max);
#undef STAT
  for (size_t i = 0; i < N_FIGS; i++) {
    double scale = figs[i].kind == FIG_RATIO   ? 1e4
                   : figs[i].kind == FIG_COUNT ? 1
                                               : 1e3;
    if (!isnan(v[i]))
      v[i] = round(v[i] * scale) / scale;
  }
}

/* A number as the CSV writes it: the fewest digits that say it exactly
 * after rounding ("7200", "0.95", "12.5"); "" for none. */
static const char *
fmt_num(double v, char *buf, size_t len)
{
  if (isnan(v)) {
    buf[0] = '\0';
    return buf;
  }
  snprintf(buf, len, "%.4f", v);
  char *dot = strchr(buf, '.');
  if (dot) {
    char *end = buf + strlen(buf) - 1;
    while (end > dot && *end == '0')
      *end-- = '\0';
    if (end == dot)
      *end = '\0';
  }
  if (strcmp(buf, "-0") == 0)
    strcpy(buf, "0");
  return buf;
}

/* A duration for people: in tables two units at most ("1h59m", "5m3s",
 * "2.5s"); exact, down to the second ("1h2m20s"), in the lists an auditor
 * reads. */
static const char *
fmt_dur(double s, bool exact, char *buf, size_t len)
{
  if (isnan(s)) {
    snprintf(buf, len, "-");
    return buf;
  }
  const char *sign = s < 0 ? "-" : "";
  s = fabs(s);
  if (s < 60) {
    snprintf(buf, len, "%s%.1fs", sign, s);
    size_t n = strlen(buf);
    if (n > 3 && strcmp(buf + n - 3, ".0s") == 0)
      memmove(buf + n - 3, "s", 2);
    return buf;
  }
  static const struct {
    const char *unit;
    long secs;
  } units[] = {{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}};
  long t = lround(s);
  size_t off = (size_t)snprintf(buf, len, "%s", sign);
  int shown = 0; /* units since the first nonzero one, zeros included */
  for (size_t u = 0; u < RP_ARRAY_LEN(units) && off < len; u++) {
    long n = t / units[u].secs;
    t -= n * units[u].secs;
    if (shown == 0 && n == 0)
      continue;
    if (!exact && shown == 2)
      break;
    if (n)
      off += (size_t)snprintf(buf + off, len - off, "%ld%s", n, units[u].unit);
    shown++;
  }
  return buf;
}

static void
fmt_time(int64_t ms, char *buf, size_t len)
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
check_out(FILE *out, struct rp_error **err)
{
  if (fflush(out) != 0 || ferror(out))
    return rp_error_set(err, EIO, "report: write: %s", strerror(errno));
  return 0;
}

/* --- JSON ----------------------------------------------------------------- */

static json_t *
group_json(const struct rp_report *r, const struct rp_report_group *g)
{
  double v[N_FIGS];
  group_figures(r, g, v);
  json_t *o = json_object();
  if (g->name)
    json_object_set_new(o, "name", json_string(g->name));
  if (g->provider)
    json_object_set_new(o, "provider", json_string(g->provider));
  for (size_t i = 0; i < N_FIGS; i++) {
    if (i == F_CONTENT_AGE_P50)
      json_object_set_new(o, "longest_workload",
                          g->longest_name ? json_string(g->longest_name)
                                          : json_null());
    json_object_set_new(o, figs[i].name,
                        isnan(v[i]) ? json_null()
                        : figs[i].kind == FIG_COUNT
                            ? json_integer((json_int_t)v[i])
                            : json_real(v[i]));
  }
  return o;
}

/* A group's patch latency, as the patch_latency member lists it. */
static json_t *
latency_json(const struct rp_report *r, const struct rp_report_group *g)
{
  double v[N_FIGS];
  group_figures(r, g, v);
  json_t *o = json_object();
  if (g->name)
    json_object_set_new(o, "name", json_string(g->name));
  if (g->provider)
    json_object_set_new(o, "provider", json_string(g->provider));
  static const struct {
    const char *name;
    enum fig f;
  } m[] = {{"digests", F_DIGESTS},         {"rolled_out", F_DIGESTS_ROLLED_OUT},
           {"pending", F_DIGESTS_PENDING}, {"superseded", F_DIGESTS_SUPERSEDED},
           {"median_s", F_LATENCY_P50},    {"worst_s", F_LATENCY_WORST}};
  for (size_t i = 0; i < RP_ARRAY_LEN(m); i++)
    json_object_set_new(o, m[i].name,
                        isnan(v[m[i].f]) ? json_null()
                        : figs[m[i].f].kind == FIG_COUNT
                            ? json_integer((json_int_t)v[m[i].f])
                            : json_real(v[m[i].f]));
  return o;
}

/* Patch latency overall, per policy and service (those a new digest
 * concerned), and per digest. */
static json_t *
patch_latency_json(const struct rp_report *r)
{
  json_t *pol = json_array(), *svc = json_array();
  for (size_t i = 0; i < r->n_policies; i++)
    if (r->policies[i]->latency.n || r->policies[i]->digests_pending ||
        r->policies[i]->digests_superseded)
      json_array_append_new(pol, latency_json(r, r->policies[i]));
  for (size_t i = 0; i < r->n_services; i++)
    if (r->services[i]->latency.n || r->services[i]->digests_pending ||
        r->services[i]->digests_superseded)
      json_array_append_new(svc, latency_json(r, r->services[i]));
  return json_pack("{s:o, s:o, s:o, s:o}", "overall",
                   latency_json(r, &r->overall), "policies", pol, "services",
                   svc, "digests", rp_report_fresh_digests_json(&r->fresh));
}

json_t *
rp_report_json(const struct rp_report *r)
{
  json_t *o = json_object();
  json_t *logs = json_array();
  for (size_t i = 0; i < r->n_paths; i++)
    json_array_append_new(logs, json_string(r->paths[i]));
  json_object_set_new(o, "logs", logs);
  json_object_set_new(o, "chain",
                      json_pack("{s:b, s:o}", "intact",
                                r->chain_problem == NULL, "problem",
                                r->chain_problem ? json_string(r->chain_problem)
                                                 : json_null()));
  json_object_set_new(o, "lines", json_integer((json_int_t)r->lines));
  json_object_set_new(o, "bad_lines", json_integer((json_int_t)r->bad_lines));
  char a[40], b[40];
  json_object_set_new(
      o, "since",
      r->opt.since_ms == INT64_MIN
          ? json_null()
          : json_string(rp_format_time_ms(r->opt.since_ms, a, sizeof(a))));
  json_object_set_new(
      o, "until",
      r->opt.until_ms == INT64_MAX
          ? json_null()
          : json_string(rp_format_time_ms(r->opt.until_ms, a, sizeof(a))));
  json_object_set_new(
      o, "span",
      r->lines ? json_pack("{s:s, s:s, s:f}", "from",
                           rp_format_time_ms(r->first_ms, a, sizeof(a)), "to",
                           rp_format_time_ms(r->last_ms, b, sizeof(b)),
                           "seconds", span_s(r))
               : json_null());
  json_object_set_new(o, "tolerance_s",
                      json_real((double)r->opt.tolerance_ms / 1000));
  json_object_set_new(o, "overall", group_json(r, &r->overall));
  json_t *pol = json_array(), *svc = json_array();
  for (size_t i = 0; i < r->n_policies; i++)
    json_array_append_new(pol, group_json(r, r->policies[i]));
  for (size_t i = 0; i < r->n_services; i++)
    json_array_append_new(svc, group_json(r, r->services[i]));
  json_object_set_new(o, "policies", pol);
  json_object_set_new(o, "services", svc);
  json_object_set(o, "overstayed", r->overstayed);
  json_object_set(o, "not_recycled", r->not_recycled);
  json_object_set_new(o, "patch_latency", patch_latency_json(r));
  return o;
}

int
rp_report_write_json(const struct rp_report *r, FILE *out,
                     struct rp_error **err)
{
  cleanup_json json_t *o = rp_report_json(r);
  json_dumpf(o, out,
             JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
  fputc('\n', out);
  return check_out(out, err);
}

/* --- CSV ------------------------------------------------------------------ */

/* RFC 4180: a field with a comma, quote or line break is quoted, its quotes
 * doubled. */
static void
csv_field(FILE *out, const char *s)
{
  if (!s)
    return;
  if (strpbrk(s, ",\"\r\n") == NULL) {
    fputs(s, out);
    return;
  }
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', out);
    fputc(*s, out);
  }
  fputc('"', out);
}

static void
csv_row(FILE *out, const struct rp_report *r, const char *scope,
        const struct rp_report_group *g)
{
  double v[N_FIGS];
  group_figures(r, g, v);
  char buf[64];
  fputs(scope, out);
  fputc(',', out);
  csv_field(out, g->name);
  fputc(',', out);
  csv_field(out, g->provider);
  for (size_t i = 0; i < N_FIGS; i++) {
    fputc(',', out);
    if (i == F_CONTENT_AGE_P50) {
      csv_field(out, g->longest_name);
      fputc(',', out);
    }
    fputs(fmt_num(v[i], buf, sizeof(buf)), out);
  }
  fputs("\r\n", out);
}

int
rp_report_write_csv(const struct rp_report *r, FILE *out, struct rp_error **err)
{
  fputs("scope,name,provider", out);
  for (size_t i = 0; i < N_FIGS; i++)
    fprintf(out, "%s,%s", i == F_CONTENT_AGE_P50 ? ",longest_workload" : "",
            figs[i].name);
  fputs("\r\n", out);
  for (size_t i = 0; i < r->n_policies; i++)
    csv_row(out, r, "policy", r->policies[i]);
  for (size_t i = 0; i < r->n_services; i++)
    csv_row(out, r, "service", r->services[i]);
  csv_row(out, r, "overall", &r->overall);
  return check_out(out, err);
}

/* --- text ----------------------------------------------------------------- */

/* A table of strings printed with aligned columns: those in the `left`
 * bit mask (names) to the left, the others (figures) to the right. */
struct table {
  size_t ncols;
  uint32_t left;
  char **cells; /* owned, row-major; the first row is the heading */
  size_t n;
};

static void
table_add(struct table *t, const char *s)
{
  t->cells = rp_xrealloc(t->cells, (t->n + 1) * sizeof(*t->cells));
  t->cells[t->n++] = rp_xstrdup(s ? s : "");
}

static void
table_print(struct table *t, FILE *out)
{
  size_t *w = rp_xcalloc(t->ncols, sizeof(*w));
  for (size_t i = 0; i < t->n; i++) {
    size_t n = strlen(t->cells[i]);
    if (n > w[i % t->ncols])
      w[i % t->ncols] = n;
  }
  for (size_t i = 0; i < t->n; i++) {
    size_t c = i % t->ncols;
    bool last = c == t->ncols - 1;
    if (c > 0)
      fputs("  ", out);
    if (last && (t->left & (1u << c)))
      fputs(t->cells[i], out);
    else if (t->left & (1u << c))
      fprintf(out, "%-*s", (int)w[c], t->cells[i]);
    else
      fprintf(out, "%*s", (int)w[c], t->cells[i]);
    if (last)
      fputc('\n', out);
    free(t->cells[i]);
  }
  free(t->cells);
  free(w);
  t->cells = NULL;
  t->n = 0;
}

static void
table_heading(struct table *t, const char *const *head, size_t n, uint32_t left)
{
  t->ncols = n;
  t->left = left;
  for (size_t i = 0; i < n; i++)
    table_add(t, head[i]);
}

/* Services are named with their provider when the report has several. */
static bool
several_providers(const struct rp_report *r)
{
  for (size_t i = 1; i < r->n_services; i++)
    if (strcmp(r->services[i]->provider, r->services[0]->provider) != 0)
      return true;
  return false;
}

typedef void (*row_fn)(struct table *t, const double v[N_FIGS],
                       const struct rp_report_group *g);

typedef bool (*keep_fn)(const struct rp_report_group *g);

/* A row per policy, per service (those keep keeps, when keep is not NULL)
 * and overall. */
static void
group_rows_of(struct table *t, const struct rp_report *r, row_fn fn,
              keep_fn keep)
{
  bool prov = several_providers(r);
  double v[N_FIGS];
  for (size_t i = 0; i < r->n_policies; i++) {
    if (keep && !keep(r->policies[i]))
      continue;
    group_figures(r, r->policies[i], v);
    table_add(t, "policy");
    table_add(t, r->policies[i]->name);
    fn(t, v, r->policies[i]);
  }
  for (size_t i = 0; i < r->n_services; i++) {
    const struct rp_report_group *g = r->services[i];
    if (keep && !keep(g))
      continue;
    cleanup_free char *name =
        prov ? rp_xasprintf("%s/%s", g->provider, g->name) : NULL;
    group_figures(r, g, v);
    table_add(t, "service");
    table_add(t, name ? name : g->name);
    fn(t, v, g);
  }
  group_figures(r, &r->overall, v);
  table_add(t, "overall");
  table_add(t, "");
  fn(t, v, &r->overall);
}

static void
group_rows(struct table *t, const struct rp_report *r, row_fn fn)
{
  group_rows_of(t, r, fn, NULL);
}

static void
count_row(struct table *t, const double v[N_FIGS],
          const struct rp_report_group *g)
{
  char buf[64];
  for (int f = F_RECYCLES; f <= F_REFUSED; f++)
    table_add(t, fmt_num(v[f], buf, sizeof(buf)));
  for (int f = F_PER_HOUR; f <= F_PER_DAY; f++) {
    if (isnan(v[f]))
      table_add(t, "-");
    else {
      snprintf(buf, sizeof(buf), "%.2f", v[f]);
      table_add(t, buf);
    }
  }
}

static void
age_row(struct table *t, const double v[N_FIGS],
        const struct rp_report_group *g)
{
  char a[32], b[32];
  fmt_dur(v[F_MAX_AGE_MIN], false, a, sizeof(a));
  if (!isnan(v[F_MAX_AGE_MIN]) && v[F_MAX_AGE_MIN] != v[F_MAX_AGE_MAX]) {
    cleanup_free char *range = rp_xasprintf(
        "%s-%s", a, fmt_dur(v[F_MAX_AGE_MAX], false, b, sizeof(b)));
    table_add(t, range);
  } else {
    table_add(t, a);
  }
  table_add(t, fmt_dur(v[F_AGE_P50], false, a, sizeof(a)));
  table_add(t, fmt_dur(v[F_AGE_P95], false, a, sizeof(a)));
  for (int f = F_RATIO_P50; f <= F_RATIO_P95; f++) {
    if (isnan(v[f]))
      table_add(t, "-");
    else {
      snprintf(a, sizeof(a), "%.2f", v[f]);
      table_add(t, a);
    }
  }
  table_add(t, fmt_dur(v[F_LONGEST], false, a, sizeof(a)));
  table_add(t, g->longest_name ? g->longest_name : "-");
}

static void
timing_row(struct table *t, const double v[N_FIGS],
           const struct rp_report_group *g)
{
  char a[32];
  for (int f = F_LATE_P50; f <= F_DUR_P95; f++)
    table_add(t, fmt_dur(v[f], false, a, sizeof(a)));
}

static void
refused_row(struct table *t, const double v[N_FIGS],
            const struct rp_report_group *g)
{
  (void)g;
  char buf[64];
  table_add(t, fmt_num(v[F_REFUSED], buf, sizeof(buf)));
  for (size_t i = 0; i < RP_REPORT_N_REFUSERS; i++)
    table_add(t, fmt_num(v[F_REFUSED_FIRST + i], buf, sizeof(buf)));
  table_add(t, isnan(v[F_QUARANTINED])
                   ? "-"
                   : fmt_num(v[F_QUARANTINED], buf, sizeof(buf)));
}

static void
content_row(struct table *t, const double v[N_FIGS],
            const struct rp_report_group *g)
{
  (void)g;
  char buf[64];
  table_add(t, fmt_dur(v[F_CONTENT_AGE_P50], false, buf, sizeof(buf)));
  table_add(t, fmt_dur(v[F_CONTENT_AGE_WORST], false, buf, sizeof(buf)));
  for (size_t i = 0; i < RP_REPORT_N_REASONS; i++)
    table_add(t, fmt_num(v[F_REASON_FIRST + i], buf, sizeof(buf)));
}

static void
latency_row(struct table *t, const double v[N_FIGS],
            const struct rp_report_group *g)
{
  (void)g;
  char buf[64];
  for (int f = F_DIGESTS; f <= F_DIGESTS_SUPERSEDED; f++)
    table_add(t, fmt_num(v[f], buf, sizeof(buf)));
  table_add(t, fmt_dur(v[F_LATENCY_P50], false, buf, sizeof(buf)));
  table_add(t, fmt_dur(v[F_LATENCY_WORST], false, buf, sizeof(buf)));
}

static bool
has_digests(const struct rp_report_group *g)
{
  return g->latency.n || g->digests_pending || g->digests_superseded;
}

static const char *
short_id(const char *id, char *buf, size_t len)
{
  snprintf(buf, len, "%.12s", id ? id : "");
  return buf;
}

static void
list_heading(FILE *out, const char *title, size_t n)
{
  if (n == 0)
    fprintf(out, "%s: none\n", title);
  else
    fprintf(out, "%s: %zu\n", title, n);
}

static void
workload_cells(struct table *t, json_t *o)
{
  char buf[32];
  table_add(t, str_member(o, "provider"));
  table_add(t, str_member(o, "name"));
  table_add(t, short_id(str_member(o, "id"), buf, sizeof(buf)));
  const char *policy = str_member(o, "policy");
  table_add(t, policy ? policy : "(none)");
  table_add(t, fmt_dur(num_member(o, "max_age_s"), true, buf, sizeof(buf)));
  table_add(t, fmt_dur(num_member(o, "age_s"), true, buf, sizeof(buf)));
}

/* "sha256:0123456789ab": enough to tell digests apart in a table. */
static const char *
short_digest(const char *d, char *buf, size_t len)
{
  const char *at = strrchr(d, '@');
  snprintf(buf, len, "%.19s", at ? at + 1 : d);
  return buf;
}

static const char *const digest_states[] = {
    [RP_REPORT_DIGEST_ROLLED_OUT] = "rolled out",
    [RP_REPORT_DIGEST_PENDING] = "pending",
    [RP_REPORT_DIGEST_SUPERSEDED] = "superseded",
};

/* "web 1h30m, api pending": where a digest went, policy by policy. */
static char *
digest_policies(const struct rp_report_digest *d)
{
  char *s = rp_xstrdup("");
  for (size_t k = 0; k < d->n_rollouts; k++) {
    const struct rp_report_rollout *ro = &d->rollouts[k];
    if (ro->group->provider)
      continue; /* a service: the JSON has them */
    char buf[32];
    enum rp_report_digest_state st = rp_report_digest_state(d, ro->recycles);
    const char *what = st == RP_REPORT_DIGEST_ROLLED_OUT
                           ? fmt_dur((double)(ro->last_ms - d->first_ms) / 1000,
                                     false, buf, sizeof(buf))
                           : digest_states[st];
    char *next =
        rp_xasprintf("%s%s%s %s", s, *s ? ", " : "", ro->group->name, what);
    free(s);
    s = next;
  }
  return s;
}

/* Content age, reasons, patch latency per group, then each new digest. */
static void
write_fresh_text(const struct rp_report *r, struct table *t, FILE *out)
{
  static const char *const content[] = {"SCOPE",
                                        "NAME",
                                        "CONTENT AGE MEDIAN",
                                        "CONTENT AGE WORST",
                                        "MAX_AGE",
                                        "HARD_MAX_AGE",
                                        "UPDATE",
                                        "IMAGE_AGE",
                                        "LABEL",
                                        "PULL",
                                        "OTHER",
                                        "UNSTATED"};
  fputs("\nContent age at recycle (of the content replaced), and why the "
        "recycles were due\n",
        out);
  table_heading(t, content, RP_ARRAY_LEN(content), 0x3);
  group_rows(t, r, content_row);
  table_print(t, out);

  static const char *const latency[] = {
      "SCOPE",   "NAME",       "NEW DIGESTS",    "ROLLED OUT",
      "PENDING", "SUPERSEDED", "LATENCY MEDIAN", "LATENCY WORST"};
  fputs("\nPatch latency (a new digest of a reference: from first seen to "
        "the last workload moved to it)\n",
        out);
  table_heading(t, latency, RP_ARRAY_LEN(latency), 0x3);
  group_rows_of(t, r, latency_row, has_digests);
  table_print(t, out);

  const struct rp_report_fresh *f = &r->fresh;
  list_heading(out, "\nNew digests", f->n_digests);
  if (!f->n_digests)
    return;
  static const char *const head[] = {"REFERENCE",     "DIGEST",   "FIRST SEEN",
                                     "ROLLED OUT AT", "LATENCY",  "RECYCLES",
                                     "STATE",         "BY POLICY"};
  table_heading(t, head, RP_ARRAY_LEN(head), 0xf | 0x3u << 6);
  for (size_t i = 0; i < f->n_digests; i++) {
    const struct rp_report_digest *d = f->digests[i];
    enum rp_report_digest_state st = rp_report_digest_state(d, d->recycles);
    bool done = st == RP_REPORT_DIGEST_ROLLED_OUT;
    char buf[40];
    table_add(t, d->reference);
    table_add(t, short_digest(d->digest, buf, sizeof(buf)));
    fmt_time(d->first_ms, buf, sizeof(buf));
    table_add(t, buf);
    if (done)
      fmt_time(d->last_ms, buf, sizeof(buf));
    table_add(t, done ? buf : "-");
    table_add(t, done ? fmt_dur((double)(d->last_ms - d->first_ms) / 1000, true,
                                buf, sizeof(buf))
                      : "-");
    table_add(t, fmt_num(d->recycles, buf, sizeof(buf)));
    table_add(t, digest_states[st]);
    cleanup_free char *by = digest_policies(d);
    table_add(t, *by ? by : "-");
  }
  table_print(t, out);
}

int
rp_report_write_text(const struct rp_report *r, FILE *out,
                     struct rp_error **err)
{
  char a[40], b[40], d[32];
  fprintf(out, "Audit log%s:", r->n_paths > 1 ? "s" : "");
  for (size_t i = 0; i < r->n_paths; i++)
    fprintf(out, " %s", r->paths[i]);
  fputc('\n', out);
  if (r->lines) {
    fmt_time(r->first_ms, a, sizeof(a));
    fmt_time(r->last_ms, b, sizeof(b));
    fprintf(out, "Span: %s to %s (%s), %llu lines\n", a, b,
            fmt_dur(span_s(r), false, d, sizeof(d)),
            (unsigned long long)r->lines);
  } else {
    fprintf(out, "Span: no lines%s\n",
            r->opt.since_ms != INT64_MIN || r->opt.until_ms != INT64_MAX
                ? " between --since and --until"
                : "");
  }
  fprintf(out, "Chain: %s\n",
          r->chain_problem ? "DOES NOT VERIFY (see the warning)" : "intact");
  if (r->bad_lines)
    fprintf(out, "Lines that are not audit lines: %llu\n",
            (unsigned long long)r->bad_lines);

  struct table t = {0};
  static const char *const counts[] = {
      "SCOPE",   "NAME",      "RECYCLES", "FAILED",   "ROLLED BACK",
      "PLANNED", "RECOVERED", "REFUSED",  "PER HOUR", "PER DAY"};
  fputs("\nRecycles\n", out);
  table_heading(&t, counts, RP_ARRAY_LEN(counts), 0x3);
  group_rows(&t, r, count_row);
  table_print(&t, out);

  static const char *const ages[] = {
      "SCOPE",      "NAME",    "MAX AGE", "AGE MEDIAN",      "AGE P95",
      "MEDIAN/MAX", "P95/MAX", "LONGEST", "LONGEST WORKLOAD"};
  fputs("\nAge at recycle\n", out);
  table_heading(&t, ages, RP_ARRAY_LEN(ages), 0x3 | 1u << 8);
  group_rows(&t, r, age_row);
  table_print(&t, out);

  static const char *const timing[] = {"SCOPE",           "NAME",
                                       "LATENESS MEDIAN", "LATENESS P95",
                                       "LATENESS WORST",  "DURATION MEDIAN",
                                       "DURATION P95"};
  fputs("\nLateness (after the deadline) and duration of recycles\n", out);
  table_heading(&t, timing, RP_ARRAY_LEN(timing), 0x3);
  group_rows(&t, r, timing_row);
  table_print(&t, out);

  if (r->overall.refused || r->overall.quarantined) {
    static const char *const refusals[] = {
        "SCOPE",         "NAME",        "REFUSED",  "BY VERIFY",
        "BY QUARANTINE", "BY PROVIDER", "BY OTHER", "DIGESTS QUARANTINED"};
    fputs("\nRefused recycles, by whom, and digests quarantined\n", out);
    table_heading(&t, refusals, RP_ARRAY_LEN(refusals), 0x3);
    group_rows(&t, r, refused_row);
    table_print(&t, out);
  }
  if (r->fresh.any)
    write_fresh_text(r, &t, out);

  cleanup_free char *title = rp_xasprintf(
      "\nLived longer than max age + %s",
      fmt_dur((double)r->opt.tolerance_ms / 1000, true, d, sizeof(d)));
  size_t n = json_array_size(r->overstayed);
  list_heading(out, title, n);
  if (n) {
    static const char *const head[] = {"PROVIDER", "NAME",    "ID",
                                       "POLICY",   "MAX AGE", "AGE AT RECYCLE",
                                       "LIVED",    "OVER BY", "ENDED AT"};
    table_heading(&t, head, RP_ARRAY_LEN(head), 0xf | 1u << 8);
    size_t i;
    json_t *o;
    json_array_foreach(r->overstayed, i, o)
    {
      workload_cells(&t, o);
      table_add(&t, fmt_dur(num_member(o, "lived_s"), true, d, sizeof(d)));
      table_add(&t, fmt_dur(num_member(o, "overstay_s"), true, d, sizeof(d)));
      const char *ended = str_member(o, "ended");
      cleanup_free char *when =
          ended && strcmp(ended, "recycled") != 0
              ? rp_xasprintf("%s (%s)", str_member(o, "ts"), ended)
              : NULL;
      table_add(&t, when ? when : str_member(o, "ts"));
    }
    table_print(&t, out);
  }

  n = json_array_size(r->not_recycled);
  list_heading(
      out, "\nRecycle failed or unfinished, not recycled later in the log", n);
  if (n) {
    static const char *const head[] = {"PROVIDER",
                                       "NAME",
                                       "ID",
                                       "POLICY",
                                       "MAX AGE",
                                       "AGE THEN",
                                       "AGE AT END (AT LEAST)",
                                       "STATE",
                                       "SINCE",
                                       "DETAIL"};
    table_heading(&t, head, RP_ARRAY_LEN(head), 0xf | 0x7u << 7);
    size_t i;
    json_t *o;
    json_array_foreach(r->not_recycled, i, o)
    {
      workload_cells(&t, o);
      table_add(&t, fmt_dur(num_member(o, "age_at_end_s"), true, d, sizeof(d)));
      table_add(&t, str_member(o, "state"));
      table_add(&t, str_member(o, "ts"));
      table_add(&t, str_member(o, "detail"));
    }
    table_print(&t, out);
  }
  return check_out(out, err);
}

/* --- times and names ------------------------------------------------------ */

int
rp_report_parse_time(const char *s, int64_t now_ms, bool end_of_day,
                     int64_t *out_ms, struct rp_error **err)
{
  if (!s || !*s)
    return rp_error_set(err, RP_ECONFIG, "empty time");
  if (strcmp(s, "now") == 0) {
    *out_ms = now_ms;
    return 0;
  }
  if (s[0] == '-') {
    int64_t d;
    const char *why = NULL;
    if (rp_duration_parse(s + 1, &d, &why) != 0)
      return rp_error_set(err, RP_ECONFIG, "time '%s': %s", s,
                          why ? why : "not a duration");
    *out_ms = now_ms - d;
    return 0;
  }
  if (strlen(s) == 10) {
    cleanup_free char *full = rp_xasprintf("%sT00:00:00Z", s);
    int64_t ms;
    if (rp_parse_time_ms(full, &ms) == 0 && ms > 0) {
      *out_ms = end_of_day ? ms + 86400000 : ms;
      return 0;
    }
  } else {
    int64_t ms;
    if (rp_parse_time_ms(s, &ms) == 0 && ms > 0) {
      *out_ms = ms;
      return 0;
    }
  }
  return rp_error_set(err, RP_ECONFIG,
                      "time '%s': expected RFC 3339 (2026-11-30T12:00:00Z), a "
                      "date (2026-11-30), now, or a time before now (-24h, "
                      "-7d)",
                      s);
}

char *
rp_report_service_name(const char *kind, const char *name, const char *id)
{
  if (!name || !*name)
    return rp_xstrdup(id ? id : "");
  if (name[0] == '/' && name[1])
    name++;
  if (kind && (strcmp(kind, "service") == 0 || strcmp(kind, "node") == 0 ||
               strcmp(kind, "host") == 0))
    return rp_xstrdup(name);
  size_t n = strlen(name);
  /* NAME-DIGITS and NAME_DIGITS. */
  size_t end = n;
  while (end > 0 && isdigit((unsigned char)name[end - 1]))
    end--;
  if (end < n && end >= 2 && (name[end - 1] == '-' || name[end - 1] == '_'))
    return rp_xstrndup(name, end - 1);
  return rp_xstrdup(name);
}
