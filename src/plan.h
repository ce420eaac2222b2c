/* What reaper would do with every tracked workload: the `plan` command's
 * table and JSON, and the status page's data. */
#ifndef RP_PLAN_H
#define RP_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "tracker.h"

/* One workload as plan --json and /status show it (new reference).  Never
 * anything from inspect output beyond name, labels' reaper.* keys and
 * times: environment and other secrets never leave the agent. */
json_t *rp_plan_entry_json(const struct rp_entry *e, int64_t now_ms);

/* The action in words: "recycle now", "recycle at 2026-...", "excluded:
 * label reaper.exclude=true", "no policy matches", "recycling". */
void rp_plan_action(const struct rp_entry *e, int64_t now_ms, char *buf,
                    size_t len);

/* What plan says of a workload's content, in words ("" when no policy
 * follows it): its digest and age, and whether a newer digest waits or why
 * not ("settling until T", "quarantined", "refused by verify"), or why it is
 * not known ("built locally..."). */
void rp_plan_content_text(const struct rp_entry *e, int64_t now_ms, char *buf,
                          size_t len);

/* Sorts entries by due time (excluded and unmatched last). */
int rp_plan_cmp(const void *a, const void *b);

/* Prints entries (already sorted) as a table or a JSON array. */
/* The providers and their engines, as /status lists them (an array of
 * {"name", "type", "engine"?, "api_version"?, "api"?}), as a table. */
void rp_plan_print_providers(FILE *out, json_t *providers);

void rp_plan_print(FILE *out, struct rp_entry *const *entries, size_t n,
                   int64_t now_ms, bool json);

/* The forward-looking view of one policy: what is coming, and what is late.
 * Counted over the workloads the policy acts on that are not recycled yet
 * (a recycle in flight is not "due": it is under way). */
struct rp_plan_forecast {
  const char *policy; /* borrowed from the configuration or an entry */
  size_t workloads;   /* under the policy, not recycled yet */
  size_t due_1h;      /* due by now + 1 h, those already due included */
  size_t due_1d;      /* due by now + 1 d (the 1 h ones included) */
  /* How long the longest-lived workload has lived past its max age (the
   * label's, when it has one): 0 when none has. */
  int64_t most_overdue_ms;
  const struct rp_entry *most_overdue; /* borrowed, NULL when none */
};

/* One row per policy of c, in file order (c may be NULL), then one per
 * policy an entry has that c does not name, by name.  Owned array of
 * *n_out rows (NULL when none). */
struct rp_plan_forecast *rp_plan_forecast(const struct rp_config *c,
                                          struct rp_entry *const *entries,
                                          size_t n, int64_t now_ms,
                                          size_t *n_out);

/* The same as JSON (new reference): an array of {policy, workloads, due_1h,
 * due_1d, most_overdue_s, most_overdue_name (when there is one)}. */
json_t *rp_plan_forecast_json(const struct rp_config *c,
                              struct rp_entry *const *entries, size_t n,
                              int64_t now_ms);

/* The same as a table for people: plan prints it after the workloads
 * (plan --json stays an array of workloads: the forecast is in /status
 * and /metrics for machines). */
void rp_plan_print_forecast(FILE *out, const struct rp_config *c,
                            struct rp_entry *const *entries, size_t n,
                            int64_t now_ms);

#endif
