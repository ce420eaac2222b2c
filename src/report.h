/* `reaper report`: recycling figures over one or more audit logs, per
 * policy, per service and overall, and the auditor's question answered
 * directly: did anything live longer than its max age?
 *
 * The logs are streamed (rp_audit_read): what is kept per recycle is a few
 * floats in the arrays of the groups it belongs to, never the lines, so a
 * report over millions of lines runs in memory proportional to the number
 * of recycles (about 50 bytes each), plus the workloads whose recycle has
 * not ended (yet) and the overstayers it lists.
 *
 * What is counted, per group (a policy, a service, everything):
 * - recycles: recycle.done lines; failures: recycle.failed lines (and of
 *   those, rolled_back: true); planned: recycle.planned (dry run);
 *   refused: recycle.refused (nothing done, and why);
 *   recovered: recycle.recovered (a recycle found unfinished after a crash);
 * - age at recycle: age_s of recycle.done (the workload's age when its
 *   recycle began), in seconds and as a ratio of max_age_s; the longest is
 *   the longest any workload of the group lived before its recycle began;
 * - lateness: lateness_s of every recycle.begin (how long after its
 *   deadline the recycle began; each attempt counts);
 * - duration: duration_s of recycle.done;
 * - cadence: recycles per hour and per day over the span the report
 *   covers, from the first to the last line inside --since/--until.
 * Percentiles interpolate linearly between the closest ranks (as numpy's
 * default and R's type 7): the median of 1, 2, 3, 4 is 2.5.
 *
 * A workload overstayed when it lived longer than its max age plus the
 * tolerance.  It lived until its recycle ended, so what is compared is
 * age_s + duration_s of recycle.done, or for a recycle finished by crash
 * recovery, age_s + the time from its recycle.begin to the
 * recycle.recovered line.
 *
 * A workload is "not recycled" when the last line about it (by provider and
 * id) is a recycle.failed (other than "workload gone before the recycle"),
 * a recycle.begin that no line ended, or a recycle.recovered that rolled
 * the recycle back or found it had not begun: as far as the log knows it is
 * still running, past its deadline.
 *
 * Services group the replicas of one workload: the line's "service" when the
 * provider named one (rp_recycle_audit_fields), else
 * rp_report_service_name. */
#ifndef RP_REPORT_H
#define RP_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "error.h"

#define RP_REPORT_DEFAULT_TOLERANCE_MS (5 * 60 * 1000)

struct rp_report_options {
  int64_t since_ms;     /* lines before it are left out; INT64_MIN: none */
  int64_t until_ms;     /* lines at or after it are left out; INT64_MAX */
  int64_t tolerance_ms; /* how far past max age counts as overstaying */
};

/* No time bounds and the default tolerance. */
void rp_report_options_init(struct rp_report_options *o);

struct rp_report;

/* Reads the logs in order (the rotated parts of one log, oldest first),
 * then checks their hash chain.  Fails (-1, errno code, "read FILE: ...")
 * only when a log cannot be read; a chain that does not verify is not an
 * error: the report is built anyway and rp_report_chain_problem says what
 * is wrong.  *out is owned by the caller (rp_report_free). */
int rp_report_build(const char *const *paths, size_t n_paths,
                    const struct rp_report_options *opt, struct rp_report **out,
                    struct rp_error **err);

/* NULL when the chain verifies; otherwise "FILE:LINE: reason" naming the
 * first line that breaks it (borrowed from r). */
const char *rp_report_chain_problem(const struct rp_report *r);

/* Lines that did not parse as JSON objects (a torn fragment among them). */
uint64_t rp_report_bad_lines(const struct rp_report *r);

/* Writers.  Each returns 0, or -1 with EIO when out could not be written.
 * text: tables for people; csv: one row per (scope, name) with the figures
 * as columns, RFC 4180 quoting; json: one object with the same figures;
 * svg: a chart of the cadence per policy and of the ages at recycle
 * (report_svg.c). */
int rp_report_write_text(const struct rp_report *r, FILE *out,
                         struct rp_error **err);
int rp_report_write_csv(const struct rp_report *r, FILE *out,
                        struct rp_error **err);
int rp_report_write_json(const struct rp_report *r, FILE *out,
                         struct rp_error **err);
int rp_report_write_svg(const struct rp_report *r, FILE *out,
                        struct rp_error **err);

/* rp_report_write_svg to a file (created or truncated, mode 0666 less the
 * umask); -1 with the errno when it cannot be written. */
int rp_report_write_svg_file(const struct rp_report *r, const char *path,
                             struct rp_error **err);

/* The JSON object that rp_report_write_json writes (new reference). */
json_t *rp_report_json(const struct rp_report *r);

/* Accepts NULL. */
void rp_report_free(struct rp_report *r);

/* Parses a --since/--until TIME: RFC 3339 ("2026-11-30T12:00:00Z"), a
 * date ("2026-11-30", midnight UTC at its start; with end_of_day, the
 * midnight at its end, so that --until 2026-11-30 includes that day),
 * "now", or relative to now_ms ("-24h", "-7d", "-1h30m").  -1 with
 * RP_ECONFIG when s is none of these. */
int rp_report_parse_time(const char *s, int64_t now_ms, bool end_of_day,
                         int64_t *out_ms, struct rp_error **err);

/* The service a workload belongs to (owned) when its audit line names none
 * (the provider says which, when it knows: that is preferred): its name
 * without the suffix that tells its replicas or instances apart.
 * - a leading "/" is dropped;
 * - services, nodes and hosts are their own service: the name as it is;
 * - otherwise a trailing "-DIGITS" or "_DIGITS" is dropped: "project-web-1"
 *   and "project_web_1" belong to "project-web" and "project_web", "web-3"
 *   to "web";
 * - a name that would become empty, or no name, stays as it is (an empty
 *   name is the id).
 * kind may be NULL (as a container). */
char *rp_report_service_name(const char *kind, const char *name,
                             const char *id);

/* --- Shared by report.c and report_svg.c; not for other modules. --- */

/* A growable array of samples: floats, to keep a report over millions of
 * recycles small. */
struct rp_report_samples {
  float *v; /* owned */
  size_t n, cap;
};

/* Percentiles of sorted samples (valid when n > 0). */
struct rp_report_stats {
  size_t n;
  double min, p25, p50, p75, p95, max;
};

/* One policy, one service, or everything. */
struct rp_report_group {
  char *name;     /* owned: the policy ("(none)" when the line had none) or
                     service name; NULL for everything (overall) */
  char *provider; /* owned, services only (else NULL) */
  uint64_t done, failed, rolled_back, planned, recovered, refused;
  double max_age_min_s, max_age_max_s; /* over recycle.done lines */
  double longest_s;                    /* the largest age_s at recycle.done */
  char *longest_name;                  /* owned: the workload (NULL if none) */
  struct rp_report_samples age, ratio, lateness, duration;
  /* Policies only: when each recycle.done was written, in seconds after the
   * report's base_ms (the first line's time), for the cadence chart. */
  int32_t *times; /* owned */
  size_t n_times, cap_times;
  /* Filled when the report is complete (samples sorted). */
  struct rp_report_stats age_st, ratio_st, lateness_st, duration_st;
};

struct rp_report {
  struct rp_report_options opt;
  char **paths; /* owned */
  size_t n_paths;
  uint64_t lines;            /* lines inside the time bounds */
  uint64_t bad_lines;        /* lines that did not parse */
  int64_t base_ms;           /* the first line's time inside the bounds */
  int64_t first_ms, last_ms; /* the earliest and latest (0: no line) */
  char *chain_problem;       /* owned, NULL when the chain verifies */

  struct rp_report_group overall;
  struct rp_report_group **policies; /* owned, sorted by name when done */
  size_t n_policies;
  struct rp_report_group **services; /* owned, sorted by name, provider */
  size_t n_services;
  json_t *group_index;  /* owned: "p\x1fNAME" / "s\x1fPROVIDER\x1fNAME" ->
                           index into policies or services */
  json_t *open;         /* owned: "PROVIDER\x1fID" -> what the log last said
                           of a workload whose recycle has not ended well */
  json_t *overstayed;   /* owned: array, in log order */
  json_t *not_recycled; /* owned: array, filled when complete */
};

/* Percentile p (0..1) of n sorted samples, interpolated linearly. */
double rp_report_percentile(const float *sorted, size_t n, double p);

#endif
