/* Prometheus metrics: the counters and histograms of what happened (kept
 * here, fed as recycles end), and the gauges of what is (computed at scrape
 * time from the tracker, the providers and the audit log).  Rendered in the
 * text exposition format 0.0.4, which every Prometheus scrapes.
 *
 * Series (label values escaped as the format says):
 *   reaper_build_info{version}                      1
 *   reaper_start_time_seconds                       gauge
 *   reaper_ready                                    gauge 0/1
 *   reaper_workloads{provider,kind,policy}          gauge; policy "" for a
 *                                                   workload no policy acts on
 *   reaper_workload_age_seconds                     histogram of the ages of
 *                                                   every tracked workload
 *   reaper_next_deadline_timestamp_seconds          gauge; absent when
 *                                                   nothing is scheduled
 *   reaper_recycles_in_flight                       gauge
 *   reaper_recycles_waiting                         gauge: due, held back by
 *                                                   a budget or a provider
 *   reaper_recycles_total{policy,outcome}           counter; outcome one of
 *                                                   done, failed, rolled_back,
 *                                                   planned, recovered
 *   reaper_recycle_duration_seconds{policy}         histogram (done, failed)
 *   reaper_recycle_lateness_seconds{policy}         histogram: begin (or
 *                                                   dry-run plan) minus due
 *   reaper_provider_up{provider,type}               gauge 0/1
 *   reaper_audit_healthy                            gauge 0/1
 *   reaper_audit_write_errors_total                 counter
 *   reaper_api_requests_total                       counter: engine API calls
 *   reaper_http_rejected_connections_total          counter: over the
 *                                                   status listener's limit
 *   reaper_due_workloads{policy,within}             gauge: workloads due
 *                                                   within "1h" and "1d"
 *                                                   (rp_plan_forecast), those
 *                                                   already due included
 *   reaper_most_overdue_seconds{policy}             gauge: the longest any
 *                                                   workload of the policy
 *                                                   lives past its max age,
 *                                                   0 when none
 *   reaper_registry_resolves_total{outcome}         counter: references
 *                                                   resolved (fresh content)
 *   reaper_registry_requests_total                  counter
 *   reaper_quarantined_images                       gauge
 *   reaper_outdated_workloads{policy}               gauge: a newer digest
 *                                                   of their tag waits
 *   reaper_image_age_seconds{policy}                gauge: the oldest
 *                                                   content a workload runs
 *   reaper_notifications_total{sink,outcome}        counter; sink as
 *                                                   "webhook[0]", outcome one
 *                                                   of sent, failed, dropped,
 *                                                   retried (notify.h)
 * The forecast and the notifications have a series per policy and per sink
 * of the configuration: bounded, never one per workload.
 */
#ifndef RP_METRICS_H
#define RP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "audit.h"
#include "config.h"
#include "tracker.h"

struct rp_metrics;

struct rp_metrics *rp_metrics_new(void);
/* Accepts NULL. */
void rp_metrics_free(struct rp_metrics *m);

/* Outcomes of reaper_recycles_total.  A failed recycle that left the old
 * workload in place counts as rolled_back, not failed: the outcomes are
 * exclusive, so their sum is the number of recycles that ended. */
enum rp_metrics_outcome {
  RP_METRICS_DONE,
  RP_METRICS_FAILED,
  RP_METRICS_ROLLED_BACK,
  RP_METRICS_PLANNED,
  RP_METRICS_RECOVERED,
  RP_METRICS_REFUSED,
  RP_METRICS_OUTCOME__COUNT
};

/* "done", "failed"...; NULL out of range. */
const char *rp_metrics_outcome_name(enum rp_metrics_outcome o);

/* A recycle of `policy` (NULL counts as "") ended with outcome; duration_s
 * below 0 means unknown and is not observed. */
void rp_metrics_recycle_ended(struct rp_metrics *m, const char *policy,
                              enum rp_metrics_outcome outcome,
                              double duration_s);

/* A recycle of `policy` began (or, in a dry run, was planned) lateness_s
 * after its due time. */
void rp_metrics_recycle_began(struct rp_metrics *m, const char *policy,
                              double lateness_s);

/* A connection to the status listener was refused (over its limit). */
void rp_metrics_connection_rejected(struct rp_metrics *m);

/* What a scrape reads; everything borrowed for the call. */
struct rp_metrics_view {
  struct rp_entry *const *entries; /* every tracked workload */
  size_t n_entries;
  json_t *providers;            /* [{name, type, up}], may be NULL */
  const struct rp_audit *audit; /* may be NULL */
  bool ready;
  bool has_api_requests; /* whether api_requests is known */
  uint64_t api_requests;
  int64_t now_ms;
  /* The live configuration, for a forecast series of every policy even
   * before a workload matches it; may be NULL (only the entries' policies
   * then). */
  const struct rp_config *config;
  /* rp_notify_stats' array, or NULL: no notification series. */
  json_t *notifications;
  /* rp_content_stats' object, or NULL: no fresh-content series. */
  json_t *content;
};

/* Writes the whole exposition to out. */
void rp_metrics_write(const struct rp_metrics *m,
                      const struct rp_metrics_view *v, FILE *out);

/* The label value escaped for the exposition format (backslash, double
 * quote and newline), written to out. */
void rp_metrics_write_label_value(FILE *out, const char *s);

#endif
