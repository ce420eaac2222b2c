#include "plan.h"

#include <string.h>

#include "recycle.h"
#include "util.h"

static bool
actionable(const struct rp_entry *e)
{
  return e->d.policy && !e->d.excluded;
}

void
rp_plan_action(const struct rp_entry *e, int64_t now_ms, char *buf, size_t len)
{
  char when[40];
  if (e->d.excluded) {
    snprintf(buf, len, "excluded: %s", e->d.reason ? e->d.reason : "");
    return;
  }
  if (!e->d.policy) {
    snprintf(buf, len, "untouched: %s",
             e->d.reason ? e->d.reason : "no policy matches");
    return;
  }
  const char *strategy = rp_strategy_name(rp_recycle_strategy(e->d.policy, e));
  if (e->w->refusal || (e->refused && e->state != RP_ENTRY_RECYCLING)) {
    snprintf(buf, len, "refused: %s",
             e->w->refusal ? e->w->refusal : e->refused);
    return;
  }
  switch (e->state) {
  case RP_ENTRY_RECYCLING:
    snprintf(buf, len, "recycling (%s)", strategy);
    return;
  case RP_ENTRY_DUE:
    snprintf(buf, len, "%s now, waiting for the budget", strategy);
    return;
  case RP_ENTRY_PLANNED:
    snprintf(buf, len, "%s planned (dry run)", strategy);
    return;
  case RP_ENTRY_IDLE:
    if (e->handled_start_ms && e->handled_start_ms == e->w->started_ms) {
      snprintf(buf, len, "recycled, waiting for it to go");
      return;
    }
    break;
  case RP_ENTRY_WAITING:
    break;
  }
  int64_t due = e->state == RP_ENTRY_WAITING ? e->due_ms : e->d.due_ms;
  /* Why, when it is not its max age: its content, a label, the ceiling. */
  char why[40] = "";
  if (e->d.due_reason != RP_DUE_MAX_AGE)
    snprintf(why, sizeof(why), " (%s)", rp_due_reason_name(e->d.due_reason));
  if (due <= now_ms) {
    snprintf(buf, len, "%s now%s", strategy, why);
  } else {
    rp_format_time_ms(due, when, sizeof(when));
    snprintf(buf, len, "%s at %s%s%s", strategy, when, why,
             e->failures ? " (retry)" : "");
  }
}

/* The newer digest's state as of now: settling ends by itself. */
static enum rp_newer_state
newer_now(const struct rp_content_view *cv, int64_t now_ms)
{
  if (cv->fr.newer == RP_NEWER_SETTLING && now_ms >= cv->fr.newer_ready_ms)
    return RP_NEWER_READY;
  return cv->fr.newer;
}

static const char *
short_digest(const char *d, char *buf, size_t len)
{
  /* "sha256:" and 12 hex digits: as docker shows ids */
  snprintf(buf, len, "%.19s", d ? d : "?");
  return buf;
}

void
rp_plan_content_text(const struct rp_entry *e, int64_t now_ms, char *buf,
                     size_t len)
{
  const struct rp_content_view *cv = &e->content;
  char d[24], t[40], age[32];
  buf[0] = '\0';
  switch (cv->facts.state) {
  case RP_CONTENT_NONE:
    return;
  case RP_CONTENT_LOCAL:
  case RP_CONTENT_PINNED:
  case RP_CONTENT_UNKNOWN:
    snprintf(buf, len, "image: %s", cv->note ? cv->note : "not known");
    return;
  case RP_CONTENT_KNOWN:
    break;
  }
  size_t n = (size_t)snprintf(buf, len, "image %s",
                              short_digest(cv->digest, d, sizeof(d)));
  if (cv->fr.birth_ms > 0 && n < len) {
    rp_format_duration((now_ms - cv->fr.birth_ms) / 1000 * 1000, age,
                       sizeof(age));
    n += (size_t)snprintf(buf + n, len - n, " (%s old)", age);
  }
  if (n >= len || cv->fr.newer == RP_NEWER_NONE)
    return;
  short_digest(cv->newer_digest, d, sizeof(d));
  switch (newer_now(cv, now_ms)) {
  case RP_NEWER_SETTLING:
    rp_format_time_ms(cv->fr.newer_ready_ms, t, sizeof(t));
    snprintf(buf + n, len - n, ", newer %s settling until %s", d, t);
    break;
  case RP_NEWER_READY:
    snprintf(buf + n, len - n, ", newer %s waits", d);
    break;
  case RP_NEWER_QUARANTINED:
    snprintf(buf + n, len - n, ", newer %s quarantined", d);
    break;
  case RP_NEWER_REFUSED:
    snprintf(buf + n, len - n, ", newer %s refused by verify", d);
    break;
  case RP_NEWER_NONE:
    break;
  }
}

static json_t *
content_json(const struct rp_entry *e, int64_t now_ms)
{
  const struct rp_content_view *cv = &e->content;
  char t[40];
  json_t *o =
      json_pack("{s:s}", "state", rp_content_state_name(cv->facts.state));
  if (cv->reference)
    json_object_set_new(o, "reference", json_string(cv->reference));
  if (cv->digest)
    json_object_set_new(o, "digest", json_string(cv->digest));
  if (cv->platform_digest)
    json_object_set_new(o, "platform_digest", json_string(cv->platform_digest));
  if (cv->facts.first_seen_ms > 0)
    json_object_set_new(
        o, "first_seen",
        json_string(rp_format_time_ms(cv->facts.first_seen_ms, t, sizeof(t))));
  if (cv->fr.birth_ms > 0)
    json_object_set_new(
        o, "content_age_s",
        json_integer((json_int_t)((now_ms - cv->fr.birth_ms) / 1000)));
  if (cv->facts.state == RP_CONTENT_LOCAL)
    json_object_set_new(o, "local_build", json_true());
  if (cv->note)
    json_object_set_new(o, "note", json_string(cv->note));
  if (cv->fr.newer != RP_NEWER_NONE) {
    enum rp_newer_state st = newer_now(cv, now_ms);
    json_t *n = json_pack("{s:s?, s:s?, s:s}", "digest", cv->newer_digest,
                          "platform_digest", cv->newer_platform_digest, "state",
                          rp_newer_state_name(st));
    if (st == RP_NEWER_SETTLING)
      json_object_set_new(
          n, "until",
          json_string(rp_format_time_ms(cv->fr.newer_ready_ms, t, sizeof(t))));
    json_object_set_new(o, "newer", n);
  }
  return o;
}

json_t *
rp_plan_entry_json(const struct rp_entry *e, int64_t now_ms)
{
  char started[40], action[256];
  rp_format_time_ms(e->w->started_ms, started, sizeof(started));
  rp_plan_action(e, now_ms, action, sizeof(action));
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:s, s:s?, s:s, s:I}", "provider", e->w->provider,
      "kind", rp_kind_name(e->w->kind), "id", e->w->id, "name", e->w->name,
      "policy", e->d.policy && !e->d.excluded ? e->d.policy->name : NULL,
      "started_at", started, "age_s",
      (json_int_t)((now_ms - e->w->started_ms) / 1000));
  if (actionable(e)) {
    char t[40];
    json_object_set_new(o, "max_age_s",
                        json_integer((json_int_t)(e->d.max_age_ms / 1000)));
    rp_format_time_ms(e->d.deadline_ms, t, sizeof(t));
    json_object_set_new(o, "deadline", json_string(t));
    int64_t due = e->state == RP_ENTRY_WAITING ? e->due_ms : e->d.due_ms;
    rp_format_time_ms(due, t, sizeof(t));
    json_object_set_new(o, "due", json_string(t));
    if (e->d.hard_ms) {
      rp_format_time_ms(e->d.hard_ms, t, sizeof(t));
      json_object_set_new(o, "hard_deadline", json_string(t));
    }
    json_object_set_new(
        o, "strategy",
        json_string(rp_strategy_name(rp_recycle_strategy(e->d.policy, e))));
    if (e->failures)
      json_object_set_new(o, "failures", json_integer(e->failures));
    json_object_set_new(o, "due_reason",
                        json_string(rp_due_reason_name(e->d.due_reason)));
  }
  if (e->content.facts.state != RP_CONTENT_NONE)
    json_object_set_new(o, "image", content_json(e, now_ms));
  json_object_set_new(o, "excluded", json_boolean(e->d.excluded));
  if (e->d.reason)
    json_object_set_new(o, "reason", json_string(e->d.reason));
  if (e->d.warning)
    json_object_set_new(o, "warning", json_string(e->d.warning));
  if (e->w->note)
    json_object_set_new(o, "note", json_string(e->w->note));
  /* Why it is not recycled when due: the provider's reason now, or the one
   * its last recycle was refused for. */
  const char *refused = e->w->refusal ? e->w->refusal : e->refused;
  if (refused && !e->d.excluded)
    json_object_set_new(o, "refused", json_string(refused));
  json_object_set_new(o, "action", json_string(action));
  return o;
}

int
rp_plan_cmp(const void *a, const void *b)
{
  const struct rp_entry *x = *(struct rp_entry *const *)a;
  const struct rp_entry *y = *(struct rp_entry *const *)b;
  bool ax = actionable(x), ay = actionable(y);
  if (ax != ay)
    return ax ? -1 : 1;
  if (ax && x->d.due_ms != y->d.due_ms)
    return x->d.due_ms < y->d.due_ms ? -1 : 1;
  int c = strcmp(x->w->provider, y->w->provider);
  return c ? c : strcmp(x->w->name, y->w->name);
}

static void
format_age(int64_t ms, char *buf, size_t len)
{
  /* Whole seconds are enough for people. */
  rp_format_duration(ms / 1000 * 1000, buf, len);
}

void
rp_plan_print(FILE *out, struct rp_entry *const *entries, size_t n,
              int64_t now_ms, bool json)
{
  if (json) {
    cleanup_json json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(arr, rp_plan_entry_json(entries[i], now_ms));
    cleanup_free char *s =
        json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fprintf(out, "%s\n", s ? s : "[]");
    return;
  }
  fprintf(out, "%-10s %-9s %-28s %-12s %-20s %-10s %-20s %s\n", "PROVIDER",
          "KIND", "NAME", "POLICY", "STARTED", "AGE", "DEADLINE", "ACTION");
  for (size_t i = 0; i < n; i++) {
    const struct rp_entry *e = entries[i];
    char started[40], age[32], deadline[40] = "-", action[256];
    rp_format_time_ms(e->w->started_ms, started, sizeof(started));
    started[19] = '\0'; /* seconds are enough in a table */
    format_age(now_ms - e->w->started_ms, age, sizeof(age));
    if (actionable(e)) {
      rp_format_time_ms(e->d.due_ms, deadline, sizeof(deadline));
      deadline[19] = '\0';
    }
    rp_plan_action(e, now_ms, action, sizeof(action));
    char content[320];
    rp_plan_content_text(e, now_ms, content, sizeof(content));
    fprintf(out, "%-10s %-9s %-28s %-12s %-20s %-10s %-20s %s%s%s%s%s%s%s\n",
            e->w->provider, rp_kind_name(e->w->kind), e->w->name,
            actionable(e) ? e->d.policy->name : "-", started, age, deadline,
            action, content[0] ? "; " : "", content,
            e->w->note ? "; note: " : "", e->w->note ? e->w->note : "",
            e->d.warning ? "; warning: " : "",
            e->d.warning ? e->d.warning : "");
  }
  if (n == 0)
    fprintf(out, "(no workloads)\n");
}

static const char *
member(json_t *o, const char *key)
{
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "-";
}

void
rp_plan_print_providers(FILE *out, json_t *providers)
{
  fprintf(out, "%-10s %-10s %-30s %s\n", "PROVIDER", "TYPE", "ENGINE", "API");
  size_t i;
  json_t *p;
  json_array_foreach(providers, i, p)
  {
    const char *api = member(p, "api_version");
    const char *how = json_string_value(json_object_get(p, "api"));
    fprintf(out, "%-10s %-10s %-30s %s%s%s%s\n", member(p, "name"),
            member(p, "type"), member(p, "engine"), api, how ? " (" : "",
            how ? how : "", how ? ")" : "");
  }
  fputc('\n', out);
}

/* --- the forward-looking view ------------------------------------------- */

#define HOUR_MS INT64_C(3600000)
#define DAY_MS (24 * HOUR_MS)

static struct rp_plan_forecast *
forecast_row(struct rp_plan_forecast **rows, size_t *n_rows, const char *policy)
{
  for (size_t i = 0; i < *n_rows; i++)
    if (strcmp((*rows)[i].policy, policy) == 0)
      return &(*rows)[i];
  *rows = rp_xrealloc(*rows, (*n_rows + 1) * sizeof(**rows));
  (*rows)[*n_rows] = (struct rp_plan_forecast){.policy = policy};
  return &(*rows)[(*n_rows)++];
}

static int
forecast_name_cmp(const void *a, const void *b)
{
  return strcmp(((const struct rp_plan_forecast *)a)->policy,
                ((const struct rp_plan_forecast *)b)->policy);
}

struct rp_plan_forecast *
rp_plan_forecast(const struct rp_config *c, struct rp_entry *const *entries,
                 size_t n, int64_t now_ms, size_t *n_out)
{
  struct rp_plan_forecast *rows = NULL;
  size_t n_rows = 0;
  for (size_t i = 0; c && i < c->n_policies; i++)
    forecast_row(&rows, &n_rows, c->policies[i].name);
  size_t from_config = n_rows;
  for (size_t i = 0; i < n; i++) {
    const struct rp_entry *e = entries[i];
    /* Recycled (waiting for it to go) and untouched ones are not coming. */
    if (!actionable(e) || e->state == RP_ENTRY_IDLE)
      continue;
    struct rp_plan_forecast *r =
        forecast_row(&rows, &n_rows, e->d.policy->name);
    r->workloads++;
    int64_t due = -1;
    if (e->state == RP_ENTRY_WAITING)
      due = e->due_ms; /* a retry's time when one is pending, as plan says */
    else if (e->state == RP_ENTRY_DUE)
      due = e->d.due_ms;
    if (due >= 0 && due <= now_ms + HOUR_MS)
      r->due_1h++;
    if (due >= 0 && due <= now_ms + DAY_MS)
      r->due_1d++;
    int64_t over = now_ms - e->w->started_ms - e->d.max_age_ms;
    if (over > r->most_overdue_ms) {
      r->most_overdue_ms = over;
      r->most_overdue = e;
    }
  }
  if (n_rows > from_config)
    qsort(rows + from_config, n_rows - from_config, sizeof(*rows),
          forecast_name_cmp);
  *n_out = n_rows;
  return rows;
}

json_t *
rp_plan_forecast_json(const struct rp_config *c,
                      struct rp_entry *const *entries, size_t n, int64_t now_ms)
{
  size_t n_rows;
  cleanup_free struct rp_plan_forecast *rows =
      rp_plan_forecast(c, entries, n, now_ms, &n_rows);
  json_t *arr = json_array();
  for (size_t i = 0; i < n_rows; i++) {
    const struct rp_plan_forecast *r = &rows[i];
    json_t *o =
        json_pack("{s:s, s:I, s:I, s:I, s:I}", "policy", r->policy, "workloads",
                  (json_int_t)r->workloads, "due_1h", (json_int_t)r->due_1h,
                  "due_1d", (json_int_t)r->due_1d, "most_overdue_s",
                  (json_int_t)(r->most_overdue_ms / 1000));
    if (r->most_overdue)
      json_object_set_new(o, "most_overdue_name",
                          json_string(r->most_overdue->w->name));
    json_array_append_new(arr, o);
  }
  return arr;
}

void
rp_plan_print_forecast(FILE *out, const struct rp_config *c,
                       struct rp_entry *const *entries, size_t n,
                       int64_t now_ms)
{
  size_t n_rows;
  cleanup_free struct rp_plan_forecast *rows =
      rp_plan_forecast(c, entries, n, now_ms, &n_rows);
  if (n_rows == 0)
    return;
  fprintf(out, "\n%-12s %9s %10s %10s  %s\n", "POLICY", "WORKLOADS",
          "DUE IN 1H", "DUE IN 1D", "MOST OVERDUE");
  for (size_t i = 0; i < n_rows; i++) {
    const struct rp_plan_forecast *r = &rows[i];
    char over[32] = "-";
    if (r->most_overdue)
      format_age(r->most_overdue_ms, over, sizeof(over));
    fprintf(out, "%-12s %9zu %10zu %10zu  %s", r->policy, r->workloads,
            r->due_1h, r->due_1d, over);
    if (r->most_overdue)
      fprintf(out, " (%s)", r->most_overdue->w->name);
    fputc('\n', out);
  }
}
