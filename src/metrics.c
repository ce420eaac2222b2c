#include "metrics.h"

#include <math.h>
#include <string.h>

#include "plan.h"
#include "util.h"

/* Recycles take seconds (a restart) to minutes (a drain, a health check). */
static const double duration_bounds[] = {1, 2.5, 5, 10, 30, 60, 120, 300, 600};
/* A recycle begins within a second of its due time unless a budget, a
 * closed provider or a stopped agent holds it back. */
static const double lateness_bounds[] = {0.1, 0.5, 1,   5,    15,
                                         60,  300, 900, 3600, 14400};
/* Max ages run from minutes (tests) to weeks (hosts). */
static const double age_bounds[] = {60,     300,    900,    1800,  3600,
                                    7200,   14400,  28800,  43200, 86400,
                                    172800, 604800, 2592000};

/* Policies come from the configuration, so their number is small; this cap
 * only guards against a bug feeding names without end.  Past it, series are
 * counted under policy "other". */
#define MAX_POLICY_SERIES 256

struct hist {
  uint64_t counts[16]; /* per bound, not cumulative; the last is +Inf */
  uint64_t count;
  double sum;
};
_Static_assert(RP_ARRAY_LEN(duration_bounds) < 16, "hist.counts too small");
_Static_assert(RP_ARRAY_LEN(lateness_bounds) < 16, "hist.counts too small");
_Static_assert(RP_ARRAY_LEN(age_bounds) < 16, "hist.counts too small");

struct policy_series {
  char *policy; /* owned */
  uint64_t outcomes[RP_METRICS_OUTCOME__COUNT];
  struct hist duration, lateness;
};

struct rp_metrics {
  struct policy_series *series; /* owned array, in order of appearance */
  size_t n_series;
  uint64_t rejected_connections;
  int64_t start_ms;
};

static const char *const outcome_names[RP_METRICS_OUTCOME__COUNT] = {
    [RP_METRICS_DONE] = "done",
    [RP_METRICS_FAILED] = "failed",
    [RP_METRICS_ROLLED_BACK] = "rolled_back",
    [RP_METRICS_PLANNED] = "planned",
    [RP_METRICS_RECOVERED] = "recovered",
    [RP_METRICS_REFUSED] = "refused",
};

const char *
rp_metrics_outcome_name(enum rp_metrics_outcome o)
{
  if ((int)o < 0 || o >= RP_METRICS_OUTCOME__COUNT)
    return NULL;
  return outcome_names[o];
}

struct rp_metrics *
rp_metrics_new(void)
{
  struct rp_metrics *m = rp_xcalloc(1, sizeof(*m));
  m->start_ms = rp_wall_ms();
  return m;
}

void
rp_metrics_free(struct rp_metrics *m)
{
  if (!m)
    return;
  for (size_t i = 0; i < m->n_series; i++)
    free(m->series[i].policy);
  free(m->series);
  free(m);
}

static struct policy_series *
series_for(struct rp_metrics *m, const char *policy)
{
  if (!policy)
    policy = "";
  if (m->n_series >= MAX_POLICY_SERIES)
    policy = "other";
  for (size_t i = 0; i < m->n_series; i++)
    if (strcmp(m->series[i].policy, policy) == 0)
      return &m->series[i];
  m->series = rp_xrealloc(m->series, (m->n_series + 1) * sizeof(*m->series));
  struct policy_series *s = &m->series[m->n_series++];
  memset(s, 0, sizeof(*s));
  s->policy = rp_xstrdup(policy);
  return s;
}

static void
hist_observe(struct hist *h, const double *bounds, size_t n, double v)
{
  if (!isfinite(v))
    return;
  size_t i = 0;
  while (i < n && v > bounds[i])
    i++;
  h->counts[i]++;
  h->count++;
  h->sum += v;
}

void
rp_metrics_recycle_ended(struct rp_metrics *m, const char *policy,
                         enum rp_metrics_outcome outcome, double duration_s)
{
  if (!m || (int)outcome < 0 || outcome >= RP_METRICS_OUTCOME__COUNT)
    return;
  struct policy_series *s = series_for(m, policy);
  s->outcomes[outcome]++;
  if (duration_s >= 0)
    hist_observe(&s->duration, duration_bounds, RP_ARRAY_LEN(duration_bounds),
                 duration_s);
}

void
rp_metrics_recycle_began(struct rp_metrics *m, const char *policy,
                         double lateness_s)
{
  if (!m)
    return;
  hist_observe(&series_for(m, policy)->lateness, lateness_bounds,
               RP_ARRAY_LEN(lateness_bounds), lateness_s);
}

void
rp_metrics_connection_rejected(struct rp_metrics *m)
{
  if (m)
    m->rejected_connections++;
}

/* --- rendering ---------------------------------------------------------- */

void
rp_metrics_write_label_value(FILE *out, const char *s)
{
  for (; s && *s; s++) {
    switch (*s) {
    case '\\':
      fputs("\\\\", out);
      break;
    case '"':
      fputs("\\\"", out);
      break;
    case '\n':
      fputs("\\n", out);
      break;
    default:
      fputc(*s, out);
    }
  }
}

static void
family(FILE *out, const char *name, const char *type, const char *help)
{
  fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Numbers as Prometheus reads them: integers without a fraction, the rest
 * with as few digits as read back exactly. */
static void
number(FILE *out, double v)
{
  if (isnan(v))
    fputs("NaN", out);
  else if (isinf(v))
    fputs(v > 0 ? "+Inf" : "-Inf", out);
  else if (v == floor(v) && fabs(v) < 1e15)
    fprintf(out, "%.0f", v);
  else {
    /* The shortest form that reads back as the same double. */
    char b[32];
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(b, sizeof(b), "%.*g", prec, v);
      if (strtod(b, NULL) == v)
        break;
    }
    fputs(b, out);
  }
}

/* One labelled histogram: name_bucket{label="value",le=...}, _sum, _count.
 * label may be NULL for a histogram without labels. */
static void
hist_write(FILE *out, const char *name, const char *label, const char *value,
           const struct hist *h, const double *bounds, size_t n)
{
  uint64_t cum = 0;
  for (size_t i = 0; i <= n; i++) {
    cum += h->counts[i];
    fprintf(out, "%s_bucket{", name);
    if (label) {
      fprintf(out, "%s=\"", label);
      rp_metrics_write_label_value(out, value);
      fputs("\",", out);
    }
    fputs("le=\"", out);
    if (i < n)
      number(out, bounds[i]);
    else
      fputs("+Inf", out);
    fprintf(out, "\"} %llu\n", (unsigned long long)cum);
  }
  const char *kinds[] = {"sum", "count"};
  for (size_t k = 0; k < 2; k++) {
    fprintf(out, "%s_%s", name, kinds[k]);
    if (label) {
      fprintf(out, "{%s=\"", label);
      rp_metrics_write_label_value(out, value);
      fputs("\"}", out);
    }
    fputc(' ', out);
    if (k == 0)
      number(out, h->sum);
    else
      fprintf(out, "%llu", (unsigned long long)h->count);
    fputc('\n', out);
  }
}

static const char *
entry_policy(const struct rp_entry *e)
{
  return e->d.policy && !e->d.excluded ? e->d.policy->name : "";
}

static int
group_cmp(const void *a, const void *b)
{
  const struct rp_entry *x = *(struct rp_entry *const *)a;
  const struct rp_entry *y = *(struct rp_entry *const *)b;
  int c = strcmp(x->w->provider, y->w->provider);
  if (c)
    return c;
  if (x->w->kind != y->w->kind)
    return x->w->kind < y->w->kind ? -1 : 1;
  return strcmp(entry_policy(x), entry_policy(y));
}

static void
write_workloads(FILE *out, const struct rp_metrics_view *v)
{
  family(out, "reaper_workloads", "gauge",
         "Tracked workloads by provider, kind and policy (policy \"\": "
         "excluded or matched by no policy).");
  if (v->n_entries == 0)
    return;
  cleanup_free struct rp_entry **sorted =
      rp_xcalloc(v->n_entries, sizeof(*sorted));
  memcpy(sorted, v->entries, v->n_entries * sizeof(*sorted));
  qsort(sorted, v->n_entries, sizeof(*sorted), group_cmp);
  for (size_t i = 0; i < v->n_entries;) {
    size_t j = i + 1;
    while (j < v->n_entries && group_cmp(&sorted[i], &sorted[j]) == 0)
      j++;
    const struct rp_entry *e = sorted[i];
    fputs("reaper_workloads{provider=\"", out);
    rp_metrics_write_label_value(out, e->w->provider);
    fprintf(out, "\",kind=\"%s\",policy=\"", rp_kind_name(e->w->kind));
    rp_metrics_write_label_value(out, entry_policy(e));
    fprintf(out, "\"} %zu\n", j - i);
    i = j;
  }
}

static void
write_state(FILE *out, const struct rp_metrics_view *v)
{
  struct hist ages = {0};
  size_t in_flight = 0, waiting = 0;
  int64_t next = INT64_MAX;
  for (size_t i = 0; i < v->n_entries; i++) {
    const struct rp_entry *e = v->entries[i];
    hist_observe(&ages, age_bounds, RP_ARRAY_LEN(age_bounds),
                 (double)(v->now_ms - e->w->started_ms) / 1000.0);
    if (e->state == RP_ENTRY_RECYCLING)
      in_flight++;
    if (e->state == RP_ENTRY_DUE)
      waiting++;
    if (!e->d.policy || e->d.excluded)
      continue;
    /* As plan shows it: a waiting entry's due time carries its retry. */
    int64_t due = -1;
    if (e->state == RP_ENTRY_WAITING)
      due = e->due_ms;
    else if (e->state == RP_ENTRY_DUE)
      due = e->d.due_ms;
    if (due >= 0 && due < next)
      next = due;
  }
  family(out, "reaper_workload_age_seconds", "histogram",
         "Ages of the tracked workloads now (seconds since their last "
         "start).");
  hist_write(out, "reaper_workload_age_seconds", NULL, NULL, &ages, age_bounds,
             RP_ARRAY_LEN(age_bounds));
  family(out, "reaper_next_deadline_timestamp_seconds", "gauge",
         "When the next scheduled recycle is due (Unix time); absent when "
         "none is scheduled.");
  if (next != INT64_MAX) {
    fputs("reaper_next_deadline_timestamp_seconds ", out);
    number(out, (double)next / 1000.0);
    fputc('\n', out);
  }
  family(out, "reaper_recycles_in_flight", "gauge", "Recycles in flight now.");
  fprintf(out, "reaper_recycles_in_flight %zu\n", in_flight);
  family(out, "reaper_recycles_waiting", "gauge",
         "Workloads past their due time, held back by a budget "
         "(max_unavailable) or a provider that may not act now.");
  fprintf(out, "reaper_recycles_waiting %zu\n", waiting);
}

static void
write_recycles(FILE *out, const struct rp_metrics *m)
{
  family(out, "reaper_recycles_total", "counter",
         "Recycles that ended, by policy and outcome (done, failed, refused, "
         "rolled_back: failed with the old workload left in place, planned: "
         "dry run, recovered: finished after a crash).");
  for (size_t i = 0; i < m->n_series; i++) {
    const struct policy_series *s = &m->series[i];
    for (int o = 0; o < RP_METRICS_OUTCOME__COUNT; o++) {
      fputs("reaper_recycles_total{policy=\"", out);
      rp_metrics_write_label_value(out, s->policy);
      fprintf(out, "\",outcome=\"%s\"} %llu\n", outcome_names[o],
              (unsigned long long)s->outcomes[o]);
    }
  }
  family(out, "reaper_recycle_duration_seconds", "histogram",
         "How long recycles took, from the audited begin to done or "
         "failed.");
  for (size_t i = 0; i < m->n_series; i++)
    hist_write(out, "reaper_recycle_duration_seconds", "policy",
               m->series[i].policy, &m->series[i].duration, duration_bounds,
               RP_ARRAY_LEN(duration_bounds));
  family(out, "reaper_recycle_lateness_seconds", "histogram",
         "How long after its due time a recycle began (or, in a dry run, "
         "was planned).");
  for (size_t i = 0; i < m->n_series; i++)
    hist_write(out, "reaper_recycle_lateness_seconds", "policy",
               m->series[i].policy, &m->series[i].lateness, lateness_bounds,
               RP_ARRAY_LEN(lateness_bounds));
}

static void
write_providers(FILE *out, const struct rp_metrics_view *v)
{
  family(out, "reaper_provider_up", "gauge",
         "Whether reaper is connected to the provider's engine (1) or not "
         "(0).");
  size_t i;
  json_t *p;
  json_array_foreach(v->providers, i, p)
  {
    fputs("reaper_provider_up{provider=\"", out);
    rp_metrics_write_label_value(out,
                                 json_string_value(json_object_get(p, "name")));
    fputs("\",type=\"", out);
    rp_metrics_write_label_value(out,
                                 json_string_value(json_object_get(p, "type")));
    fprintf(out, "\"} %d\n", json_is_true(json_object_get(p, "up")) ? 1 : 0);
  }
}

static void
write_forecast(FILE *out, const struct rp_metrics_view *v)
{
  size_t n_rows;
  cleanup_free struct rp_plan_forecast *rows =
      rp_plan_forecast(v->config, v->entries, v->n_entries, v->now_ms, &n_rows);
  family(out, "reaper_due_workloads", "gauge",
         "Workloads of the policy due within the next hour or day (those "
         "already due included; recycles in flight are not).");
  static const char *const within[] = {"1h", "1d"};
  for (size_t i = 0; i < n_rows; i++) {
    for (size_t k = 0; k < RP_ARRAY_LEN(within); k++) {
      fputs("reaper_due_workloads{policy=\"", out);
      rp_metrics_write_label_value(out, rows[i].policy);
      fprintf(out, "\",within=\"%s\"} %zu\n", within[k],
              k == 0 ? rows[i].due_1h : rows[i].due_1d);
    }
  }
  family(out, "reaper_most_overdue_seconds", "gauge",
         "How long the policy's longest-lived workload has lived past its "
         "max age (0 when none has).");
  for (size_t i = 0; i < n_rows; i++) {
    fputs("reaper_most_overdue_seconds{policy=\"", out);
    rp_metrics_write_label_value(out, rows[i].policy);
    fputs("\"} ", out);
    number(out, (double)rows[i].most_overdue_ms / 1000.0);
    fputc('\n', out);
  }
}

static void
write_notifications(FILE *out, const struct rp_metrics_view *v)
{
  if (!v->notifications)
    return;
  family(out, "reaper_notifications_total", "counter",
         "Notifications by sink (its type and place in notify:) and outcome "
         "(sent, failed: given up, dropped: never tried, the queue being "
         "full or reaper stopping, retried: attempts tried again).");
  static const char *const outcomes[] = {"sent", "failed", "dropped",
                                         "retried"};
  size_t i;
  json_t *s;
  json_array_foreach(v->notifications, i, s)
  {
    for (size_t k = 0; k < RP_ARRAY_LEN(outcomes); k++) {
      fputs("reaper_notifications_total{sink=\"", out);
      rp_metrics_write_label_value(
          out, json_string_value(json_object_get(s, "sink")));
      fprintf(out, "\",outcome=\"%s\"} %lld\n", outcomes[k],
              (long long)json_integer_value(json_object_get(s, outcomes[k])));
    }
  }
}

/* One row per policy: its workloads whose tag names newer content, and the
 * oldest content one of them runs. */
struct content_row {
  const char *policy;
  size_t outdated;
  int64_t oldest_ms; /* -1: none known */
};

static void
write_content(FILE *out, const struct rp_metrics_view *v)
{
  if (!v->content)
    return;
  json_t *resolves = json_object_get(v->content, "resolves");
  family(out, "reaper_registry_resolves_total", "counter",
         "Image references resolved at their registries (fresh content), by "
         "outcome (ok, unreachable, timeout, unauthorized, denied, "
         "not_found, rate_limited, server_error, bad_answer, no_platform, "
         "canceled).");
  const char *k;
  json_t *n;
  json_object_foreach(resolves, k, n)
  {
    fprintf(out, "reaper_registry_resolves_total{outcome=\"%s\"} %lld\n", k,
            (long long)json_integer_value(n));
  }
  family(out, "reaper_registry_requests_total", "counter",
         "HTTP requests sent to registries (tokens included).");
  fprintf(
      out, "reaper_registry_requests_total %lld\n",
      (long long)json_integer_value(json_object_get(v->content, "requests")));
  family(out, "reaper_quarantined_images", "gauge",
         "Digests quarantined for their reference: rollouts into them failed "
         "update.max_failures times.");
  fprintf(out, "reaper_quarantined_images %zu\n",
          json_array_size(json_object_get(v->content, "quarantined")));

  cleanup_free struct content_row *rows = NULL;
  size_t n_rows = 0;
  for (size_t i = 0; i < v->n_entries; i++) {
    const struct rp_entry *e = v->entries[i];
    const struct rp_content_view *cv = &e->content;
    if (!e->d.policy || e->d.excluded || cv->facts.state == RP_CONTENT_NONE)
      continue;
    struct content_row *r = NULL;
    for (size_t j = 0; j < n_rows && !r; j++)
      if (strcmp(rows[j].policy, e->d.policy->name) == 0)
        r = &rows[j];
    if (!r) {
      rows = rp_xrealloc(rows, (n_rows + 1) * sizeof(*rows));
      r = &rows[n_rows++];
      *r = (struct content_row){.policy = e->d.policy->name, .oldest_ms = -1};
    }
    if (cv->fr.newer != RP_NEWER_NONE)
      r->outdated++;
    if (cv->fr.birth_ms > 0 && v->now_ms - cv->fr.birth_ms > r->oldest_ms)
      r->oldest_ms = v->now_ms - cv->fr.birth_ms;
  }
  family(out, "reaper_outdated_workloads", "gauge",
         "Workloads whose tag names newer content than they run (rolled out, "
         "settling, quarantined or refused), by policy.");
  for (size_t i = 0; i < n_rows; i++) {
    fputs("reaper_outdated_workloads{policy=\"", out);
    rp_metrics_write_label_value(out, rows[i].policy);
    fprintf(out, "\"} %zu\n", rows[i].outdated);
  }
  family(out, "reaper_image_age_seconds", "gauge",
         "The age of the oldest content a workload of the policy runs "
         "(from when its digest was first seen, or its image's Created when "
         "plausible).");
  for (size_t i = 0; i < n_rows; i++) {
    if (rows[i].oldest_ms < 0)
      continue;
    fputs("reaper_image_age_seconds{policy=\"", out);
    rp_metrics_write_label_value(out, rows[i].policy);
    fputs("\"} ", out);
    number(out, (double)(rows[i].oldest_ms / 1000));
    fputc('\n', out);
  }
}

void
rp_metrics_write(const struct rp_metrics *m, const struct rp_metrics_view *v,
                 FILE *out)
{
  family(out, "reaper_build_info", "gauge",
         "The running reaper's version, as a label.");
  fprintf(out, "reaper_build_info{version=\"");
  rp_metrics_write_label_value(out, REAPER_VERSION);
  fputs("\"} 1\n", out);
  family(out, "reaper_start_time_seconds", "gauge",
         "When the agent started (Unix time).");
  fputs("reaper_start_time_seconds ", out);
  number(out, (double)m->start_ms / 1000.0);
  fputc('\n', out);
  family(out, "reaper_ready", "gauge",
         "Whether every provider listed its workloads once and crash "
         "recovery is done.");
  fprintf(out, "reaper_ready %d\n", v->ready ? 1 : 0);

  write_workloads(out, v);
  write_state(out, v);
  write_forecast(out, v);
  write_recycles(out, m);
  write_notifications(out, v);
  write_content(out, v);
  write_providers(out, v);

  family(out, "reaper_audit_healthy", "gauge",
         "Whether the last audit log write succeeded (0: no recycle until it "
         "does).");
  fprintf(out, "reaper_audit_healthy %d\n",
          !v->audit || rp_audit_healthy(v->audit) ? 1 : 0);
  family(out, "reaper_audit_write_errors_total", "counter",
         "Failed audit log writes since the start.");
  fprintf(out, "reaper_audit_write_errors_total %llu\n",
          (unsigned long long)(v->audit ? rp_audit_write_errors(v->audit) : 0));
  if (v->has_api_requests) {
    family(out, "reaper_api_requests_total", "counter",
           "Requests sent to engine APIs since the start.");
    fprintf(out, "reaper_api_requests_total %llu\n",
            (unsigned long long)v->api_requests);
  }
  family(out, "reaper_http_rejected_connections_total", "counter",
         "Connections to this listener closed at once because it had too "
         "many open.");
  fprintf(out, "reaper_http_rejected_connections_total %llu\n",
          (unsigned long long)m->rejected_connections);
}
