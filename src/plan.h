/* What reaper would do with every tracked workload: the `plan` command's
 * table and JSON, and the status page's data. */
#ifndef RP_PLAN_H
#define RP_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "tracker.h"

/* One workload as plan --json and /status show it (new reference).  Never
 * anything from inspect output beyond name, labels' reaper.* keys and
 * times: environment and other secrets never leave the agent. */
json_t *rp_plan_entry_json(const struct rp_entry *e, int64_t now_ms);

/* The action in words: "recycle now", "recycle at 2026-...", "excluded:
 * label reaper.exclude=true", "no policy matches", "recycling". */
void rp_plan_action(const struct rp_entry *e, int64_t now_ms, char *buf,
                    size_t len);

/* Sorts entries by due time (excluded and unmatched last). */
int rp_plan_cmp(const void *a, const void *b);

/* Prints entries (already sorted) as a table or a JSON array. */
void rp_plan_print(FILE *out, struct rp_entry *const *entries, size_t n,
                   int64_t now_ms, bool json);

#endif
