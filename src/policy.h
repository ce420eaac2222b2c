/* Policy decisions: pure functions of (workload, configuration, now).  No
 * I/O, no clock reads: tests never sleep. */
#ifndef RP_POLICY_H
#define RP_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "workload.h"

struct rp_decision {
  const struct rp_policy *policy; /* borrowed from the config; NULL when
                                     excluded or nothing matches */
  bool excluded;
  char reason[160];   /* why excluded / unmatched, for plan and logs */
  char warning[200];  /* a bad label that was ignored, "" when none */
  int64_t max_age_ms; /* after the reaper.max-age label */
  int64_t jitter_ms;  /* subtracted from start + max_age */
  int64_t deadline_ms; /* start + max_age - jitter */
  int64_t due_ms;      /* deadline moved into the window (>= deadline) */
  int64_t hard_ms;     /* start + hard_max_age, 0 when none */
};

/* Matches and computes deadlines.  A workload is excluded when the provider
 * protects it, when an exclude label matches, or when `reaper.exclude=true`.
 * `reaper.policy=NAME` picks a policy by name (an unknown name is a warning
 * and falls back to matching).  Never fails. */
void rp_policy_decide(const struct rp_config *c, const struct rp_workload *w,
                      struct rp_decision *out);

/* Whether a policy's match block accepts a workload. */
bool rp_policy_matches(const struct rp_policy *p, const struct rp_workload *w);

/* A label set matches when every key is present with the given value, or
 * present at all for "*". */
bool rp_labels_match(const struct rp_label_match *m, size_t n,
                     const json_t *labels);

/* Jitter in [0, jitter * max_age], uniform over workload ids and stable for
 * one (provider, id) across restarts: derived from a hash of both. */
int64_t rp_policy_jitter_ms(const char *provider, const char *id,
                            int64_t max_age_ms, double jitter);

/* The earliest time >= t_ms inside the window (t_ms itself when inside or
 * when the window is unset).  DST-correct in the window's time zone. */
int64_t rp_window_next_open(const struct rp_window *w, int64_t t_ms);
/* Whether t_ms is inside the window (true when unset). */
bool rp_window_contains(const struct rp_window *w, int64_t t_ms);

/* The budget as a count of workloads in flight for a policy that matches
 * `matched` workloads: percentages round up, and at least 1. */
int rp_budget_limit(const struct rp_budget *b, int matched);

#endif
