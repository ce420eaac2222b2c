/* The recycler: the only place that decides the order of a recycle's steps,
 * writes its audit lines and asks a provider to act.  It holds due workloads
 * until their policy's budget (max_unavailable) lets them go, hard-expired
 * ones first and then the most overdue, and retries failures with backoff.
 *
 * Every action is announced by an audit line that is on disk before the
 * provider is asked to act; when the log cannot be written nothing is done. */
#ifndef RP_RECYCLE_H
#define RP_RECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "audit.h"
#include "config.h"
#include "schedule.h"
#include "tracker.h"

struct rp_recycler;

struct rp_recycler_stats {
  uint64_t started, done, failed, rolled_back, planned, refused;
};

/* All borrowed; they must outlive the recycler. */
struct rp_recycler *rp_recycler_new(uv_loop_t *loop, struct rp_audit *audit,
                                    struct rp_tracker *tracker,
                                    struct rp_schedule *schedule, bool dry_run);
void rp_recycler_free(struct rp_recycler *r);

/* The live configuration, for budgets (borrowed; set again on reload). */
void rp_recycler_set_config(struct rp_recycler *r,
                            const struct rp_config *config);

/* e is due (its deadline passed or a retry is due): recycle it when its
 * policy's budget allows. */
void rp_recycler_offer(struct rp_recycler *r, struct rp_entry *e,
                       int64_t now_ms);

/* The provider no longer has e: the recycler forgets it, or, when e is being
 * recycled, frees it once the recycle ends.  Returns true when the recycler
 * took ownership of e (the caller must not free it). */
bool rp_recycler_forget(struct rp_recycler *r, struct rp_entry *e);

/* Starts whatever the budgets allow now (after a config reload, say). */
void rp_recycler_pump(struct rp_recycler *r);

/* No new recycles from now on; the due ones wait.  idle_cb runs (once) as
 * soon as nothing is in flight, possibly before this returns. */
void rp_recycler_drain(struct rp_recycler *r, void (*idle_cb)(void *arg),
                       void *arg);

/* Whether nothing is due and nothing in flight (for --once). */
bool rp_recycler_idle(const struct rp_recycler *r);
size_t rp_recycler_in_flight(const struct rp_recycler *r);
/* Whether a recycle of this workload is in flight (the workload may have
 * left the tracker meanwhile, e.g. renamed and removed by the recycle). */
bool rp_recycler_busy_with(const struct rp_recycler *r, const char *provider,
                           const char *id);

/* Recycles in flight on one provider. */
size_t rp_recycler_in_flight_on(const struct rp_recycler *r,
                                const struct rp_provider *p);
size_t rp_recycler_waiting(const struct rp_recycler *r);
const struct rp_recycler_stats *rp_recycler_stats(const struct rp_recycler *r);

/* Whether a due workload may be acted on now (its provider connected and
 * recovered, say); when gate says no, it stays due, and the next pump looks
 * again.  NULL: always. */
void rp_recycler_set_gate(struct rp_recycler *r,
                          bool (*gate)(void *arg, const struct rp_entry *e),
                          void *arg);

/* Called with every recycle.* line as it goes to the audit log (fields
 * borrowed for the call): for metrics and the status page. */
void rp_recycler_on_audit(struct rp_recycler *r,
                          void (*cb)(void *arg, const char *event,
                                     json_t *fields),
                          void *arg);

/* Called when a recycle failed and could not put the workload back as it
 * was (rolled_back false): the provider's recovery should look at it.
 * begin (borrowed) is what its recycle.begin line said of it. */
void rp_recycler_on_unsettled(struct rp_recycler *r,
                              void (*cb)(void *arg, struct rp_entry *e,
                                         json_t *begin),
                              void *arg);

/* Fresh content: what each reference has and may run (borrowed; NULL:
 * workloads are recycled into what they run), and the owner's way to
 * decide an entry again when what made it due went away (a digest
 * refused by the verify gate or quarantined since it was decided). */
struct rp_content;
void rp_recycler_set_content(struct rp_recycler *r, struct rp_content *c,
                             void (*redecide)(void *arg, struct rp_entry *e),
                             void *arg);

/* Called whenever a recycle ends or the recycler becomes idle. */
void rp_recycler_on_change(struct rp_recycler *r, void (*cb)(void *arg),
                           void *arg);

/* Recovers one unfinished recycle of p with the core's runner
 * (rp_runner_recovers(p)): its steps announced, recycle.recovered written
 * from begin (the recycle.begin line) and what was done; then done(arg,
 * begin, NULL).  When nothing could even be looked at, nothing is written
 * and done gets why (retry: it is to be tried again).  Counts as in flight
 * until then (rp_recycler_idle, drain).  Returns -1 (nothing runs) when it
 * cannot start. */
typedef void (*rp_recycler_recovered_cb)(void *arg, json_t *begin,
                                         const struct rp_error *retry);
int rp_recycler_recover(struct rp_recycler *r, struct rp_provider *p,
                        const struct rp_unfinished *item, json_t *begin,
                        rp_recycler_recovered_cb done, void *arg,
                        struct rp_error **err);

/* The strategy a policy means for a workload's kind on its provider. */
enum rp_strategy rp_recycle_strategy(const struct rp_policy *p,
                                     const struct rp_entry *e);

/* The audit members every recycle.* line carries (SPEC.md), new reference:
 * provider, kind, id, name, policy, started_at, age_s, max_age_s, reason
 * (why it was due), image (its reference, canonical, when it has one). */
json_t *rp_recycle_audit_fields(const struct rp_entry *e, int64_t now_ms);

#endif
