/* `reaper report`: recycling figures over one or more audit logs, per
 * policy, per service and overall, and the auditor's question answered
 * directly: did anything live longer than its max age?
 *
 * The logs are streamed (rp_audit_read): what is kept per recycle is a few
 * floats in the arrays of the groups it belongs to, never the lines, so a
 * report over millions of lines runs in memory proportional to the number
 * of recycles (about 52 bytes each: four floats in each of three groups,
 * and a time), plus the workloads whose recycle has not ended (yet), the
 * overstayers it lists, and the new digests (a few hundred bytes each).
 * Measured: 1M lines (999k recycles, 1004 new digests) in 72 MiB.
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
 * rp_report_service_name.
 *
 * Fresh content (report_fresh.c; the lines are SPEC's "Fresh content"):
 * - content age at recycle: content_age_s of recycle.done (how old the
 *   content the old workload ran was), median and worst;
 * - why recycles were due: recycle.done lines by "reason" (max_age,
 *   hard_max_age, update, image_age, label, pull; any other word is
 *   "other", a line without one, written before reasons were recorded,
 *   "unstated");
 * - refusals by "refused_by" (verify, quarantine, provider; anything else
 *   or nothing: "other"), and image.quarantined lines per policy;
 * - patch latency: each image.seen with a previous_digest and new_content
 *   true is a new digest of its reference.  A recycle.done with that
 *   "image" and "image_digest" moved a workload to it, unless its
 *   previous_image_digest was already that content (a max-age recycle of
 *   a workload already running it).  Its window ends at the reference's
 *   next new digest: later recycles into it do not count.  A digest of the
 *   same content (an index that only gained a platform: new_content
 *   false) neither counts as new nor ends the window; recycles into it
 *   count for the digest whose content it carries.  The latency is from
 *   its image.seen to the last workload moved to it in the window;
 *   per policy and per service, to the last of that group's.  A digest
 *   no workload was moved to is pending while it is the newest, and
 *   superseded once a newer one was seen.  The groups a digest concerns
 *   are those whose recycle.* lines named the reference (before the
 *   window ended) and those that moved workloads to it.  A digest still
 *   the newest may still be rolling out: its latency is up to the last
 *   workload moved so far.
 *   With --since, a digest first seen before it is left out (its rollout
 *   began before the report); with --until, one whose workloads were
 *   moved after it is pending (the report is the log as it stood then). */
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
 * svg: a chart of the cadence per policy and of the ages at recycle, and
 * of the patch latency when the logs have fresh content (report_svg.c).
 * The text and the chart show fresh content only when the logs have
 * lines of it; the CSV columns and JSON members are always there. */
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

/* Why a recycle was due: recycle.done's "reason". */
enum rp_report_reason {
  RP_REPORT_REASON_MAX_AGE,
  RP_REPORT_REASON_HARD_MAX_AGE,
  RP_REPORT_REASON_UPDATE,
  RP_REPORT_REASON_IMAGE_AGE,
  RP_REPORT_REASON_LABEL,
  RP_REPORT_REASON_PULL,
  RP_REPORT_REASON_OTHER,    /* a word the report does not know */
  RP_REPORT_REASON_UNSTATED, /* no "reason": a line of an older reaper */
  RP_REPORT_N_REASONS
};

/* Who refused a recycle: recycle.refused's "refused_by". */
enum rp_report_refuser {
  RP_REPORT_REFUSED_VERIFY,
  RP_REPORT_REFUSED_QUARANTINE,
  RP_REPORT_REFUSED_PROVIDER,
  RP_REPORT_REFUSED_OTHER, /* another word, or none */
  RP_REPORT_N_REFUSERS
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
  /* Fresh content. */
  uint64_t by_reason[RP_REPORT_N_REASONS]; /* recycle.done lines */
  uint64_t refused_by[RP_REPORT_N_REFUSERS];
  uint64_t quarantined; /* image.quarantined lines; not kept for services */
  struct rp_report_samples content_age; /* content_age_s of recycle.done */
  /* Filled at the end (rp_report_fresh_finish): the latency of each new
   * digest rolled out to the group, and the digests it still waits for. */
  struct rp_report_samples latency;
  uint64_t digests_pending, digests_superseded;
  /* Filled when the report is complete (samples sorted). */
  struct rp_report_stats age_st, ratio_st, lateness_st, duration_st;
  struct rp_report_stats content_age_st, latency_st;
};

/* What a new digest became, overall or in one group. */
enum rp_report_digest_state {
  RP_REPORT_DIGEST_ROLLED_OUT, /* workloads were moved to it */
  RP_REPORT_DIGEST_PENDING,    /* none yet, and it is the newest */
  RP_REPORT_DIGEST_SUPERSEDED, /* none, and a newer digest was seen */
};

/* A new digest in one group (a policy or a service). */
struct rp_report_rollout {
  struct rp_report_group *group; /* borrowed */
  int64_t last_ms;   /* the last recycle.done moving a workload to it */
  uint32_t recycles; /* recycle.done lines moving a workload to it */
};

/* A new digest of a reference (an image.seen line). */
struct rp_report_digest {
  char *reference, *digest; /* owned */
  char **same;              /* owned: later digests of the same content */
  size_t n_same;
  size_t ref;            /* index into the references (report_fresh.c) */
  int64_t first_ms;      /* its image.seen */
  int64_t superseded_ms; /* the next new digest's image.seen; 0: none */
  int64_t last_ms;       /* overall, as in rp_report_rollout */
  uint32_t recycles;
  struct rp_report_rollout *rollouts; /* owned; sorted at the end: policies
                                         by name, then services */
  size_t n_rollouts;
};

struct rp_report_ref; /* report_fresh.c */

/* Patch latency over the logs. */
struct rp_report_fresh {
  struct rp_report_digest **digests; /* owned, in log order */
  size_t n_digests;
  struct rp_report_ref **refs; /* owned: every reference the lines named */
  size_t n_refs;
  json_t *ref_index; /* owned: reference -> index into refs */
  bool any;          /* the logs have lines of fresh content at all */
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
  struct rp_report_fresh fresh;
};

/* Percentile p (0..1) of n sorted samples, interpolated linearly. */
double rp_report_percentile(const float *sorted, size_t n, double p);

void rp_report_samples_push(struct rp_report_samples *s, double v);

/* report_fresh.c: the new digests and their rollouts. */
void rp_report_fresh_init(struct rp_report_fresh *f);
void rp_report_fresh_clear(struct rp_report_fresh *f);
/* An image.seen line written at ts_ms. */
void rp_report_fresh_seen(struct rp_report_fresh *f, const json_t *line,
                          int64_t ts_ms);
/* A recycle.* line (event without "recycle.") of the policy and service
 * groups pg and sg. */
void rp_report_fresh_recycle(struct rp_report_fresh *f, const json_t *line,
                             const char *event, int64_t ts_ms,
                             struct rp_report_group *pg,
                             struct rp_report_group *sg);
/* At the end, before the groups' samples are sorted: each group's latency
 * samples and pending and superseded counts, the overall ones in
 * overall. */
void rp_report_fresh_finish(struct rp_report_fresh *f,
                            struct rp_report_group *overall);
enum rp_report_digest_state
rp_report_digest_state(const struct rp_report_digest *d, uint32_t recycles);
/* The digests in detail, for --json (new reference). */
json_t *rp_report_fresh_digests_json(const struct rp_report_fresh *f);

#endif
