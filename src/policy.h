/* Policy decisions: pure functions of (workload, configuration, now).  No
 * clock reads, so tests never sleep, and no I/O except the first use of a
 * time zone, which reads its file once (see rp_window_check_tz). */
#ifndef RP_POLICY_H
#define RP_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "workload.h"

/* Why a workload is due: what made its deadline the earliest. */
enum rp_due_reason {
  RP_DUE_MAX_AGE,      /* the policy's max_age */
  RP_DUE_HARD_MAX_AGE, /* the policy's hard_max_age came first */
  RP_DUE_LABEL,        /* its reaper.max-age label set its max age */
  RP_DUE_UPDATE,       /* its tag names new content (update:) */
  RP_DUE_IMAGE_AGE,    /* its content is older than max_image_age */
  RP_DUE__COUNT
};
/* "max_age", "hard_max_age", "label", "update", "image_age". */
const char *rp_due_reason_name(enum rp_due_reason r);

/* The longest reason and warning a decision holds, with their NUL: longer
 * ones are cut. */
#define RP_DECISION_REASON_MAX 160
#define RP_DECISION_WARNING_MAX 320

/* A tracker keeps one per workload: the messages are owned strings, NULL
 * when there is none (nearly always), rather than fixed buffers, which would
 * cost 480 bytes a workload for text nearly none of them has. */
struct rp_decision {
  const struct rp_policy *policy; /* borrowed from the config; NULL when
                                     excluded or nothing matches */
  char *reason;        /* why excluded / unmatched, for plan and logs; owned,
                          NULL when none */
  char *warning;       /* bad or refused labels; owned, NULL when none */
  int64_t max_age_ms;  /* after the reaper.max-age label */
  int64_t jitter_ms;   /* subtracted from start + max_age */
  int64_t deadline_ms; /* start + max_age - jitter */
  int64_t due_ms;      /* deadline moved into the window (>= deadline) */
  int64_t hard_ms;     /* start + hard_max_age, 0 when none */
  enum rp_due_reason due_reason; /* what set deadline_ms */
  bool excluded;
};

/* Frees a decision's messages and zeroes it.  Accepts NULL. */
void rp_decision_clear(struct rp_decision *d);
/* A decision on the stack, cleared when it goes out of scope. */
#define cleanup_decision __attribute__((cleanup(rp_decision_clear)))

/* Matches and computes deadlines.  A workload is excluded when the provider
 * protects it, when any one of the configuration's exclude labels matches,
 * or when `reaper.exclude=true` and the operator lets workloads opt out
 * (exclude.workload_opt_out, default true; "false" is not excluded; any
 * other value is a warning and ignored).  `reaper.policy=NAME` picks a
 * policy by name among those whose match block accepts the workload or that
 * are `selectable` (else a warning, and matching instead); otherwise the
 * first policy whose match block accepts the workload.
 * `reaper.max-age=DURATION` shortens the policy's max_age freely and
 * lengthens it only up to hard_max_age (never without one; a bad or
 * refused value is a warning).  A workload's labels are what the provider
 * reports: its own, never its image's.  Then:
 *   deadline = started + max_age - rp_policy_jitter_ms(...)
 *   due      = rp_window_next_open(window, deadline)
 *   hard     = started + hard_max_age (0 without a ceiling)
 *   if hard: deadline = min(deadline, hard), due = min(due, hard)
 * Warnings name the workload, the label and its value.  Never fails.
 * `out` holds a decision or zeroes: what it held is released first. */
void rp_policy_decide(const struct rp_config *c, const struct rp_workload *w,
                      struct rp_decision *out);

/* Whether a policy's match block accepts a workload: provider name, kind,
 * labels and a name glob (fnmatch(3), where "*" also matches "/"), every set
 * field.  An empty match block accepts everything. */
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
 * when the window is unset).  DST-correct in the window's time zone (NULL =
 * UTC): a window opens at its local start time on each listed day (the day
 * it opens, when it crosses midnight); a start time that does not exist on a
 * spring-forward day opens at the first instant after it, and an ambiguous
 * one on a fall-back day at its first occurrence.  Looks at most nine days
 * ahead.  An unknown time zone is computed as UTC: the configuration loader
 * rejects those with rp_window_check_tz(). */
int64_t rp_window_next_open(const struct rp_window *w, int64_t t_ms);
/* Whether t_ms is inside the window (true when unset).  A window runs from
 * its start (inclusive) to its end (exclusive) in local time; an end at or
 * before the start crosses midnight into the next day.  No days at all
 * (days == 0) reads as every day. */
bool rp_window_contains(const struct rp_window *w, int64_t t_ms);

/* Checks that a window's time zone (NULL = UTC) can be used, and loads it:
 * zones are read once and cached for the life of the process, so later
 * window computations do no I/O.  Fails with RP_ECONFIG and a message naming
 * the zone and the cause ("time zone Europe/Berln: unknown time zone
 * (/usr/share/zoneinfo/Europe/Berln: No such file or directory)"). */
int rp_window_check_tz(const char *tz, struct rp_error **err);

/* The budget as a count of workloads in flight for a policy that matches
 * `matched` workloads: percentages round up, and at least 1. */
int rp_budget_limit(const struct rp_budget *b, int matched);

/* The drain hook for a workload, as an owned argv (a strv, strv.h: free
 * with rp_strv_free or rp_policy_argv_free), or NULL when there is none.  The
 * label `reaper.drain` wins: a JSON array of strings is the argv, any other
 * non-empty string runs with {"/bin/sh", "-c", value}.  An empty label, or a
 * JSON array that is empty or holds anything but strings, is a bad label:
 * a warning goes into `warning` and the policy's `drain` (p may be NULL)
 * applies.  `warning` is always set ("" when none). */
char **rp_policy_drain_argv(const struct rp_workload *w,
                            const struct rp_policy *p, char *warning,
                            size_t warning_len);
/* rp_strv_free.  Accepts NULL. */
void rp_policy_argv_free(char **argv);

#endif
