/* Notifications: events sent to the sinks of the configuration's `notify:`
 * list, so that people hear of recycles without reading the audit log.
 *
 * A sink is a webhook (a JSON POST) or a command (an argv run without a
 * shell by src/child.c, the JSON on its stdin, REAPER_EVENT and a default
 * PATH its whole environment, no descriptor of reaper's; at its timeout
 * SIGTERM, SIGKILL 5 s later).  The JSON
 * is the event's fields with `event` and `ts` first (rp_notify_body).  Each
 * sink takes the events its `events:` filter accepts (rp_notify_matches)
 * into a bounded queue of its own and delivers them one at a time, in
 * order, every attempt bounded by the sink's timeout; a failed attempt is
 * tried again after a backoff that doubles, up to the sink's retries, then
 * the event is given up.  When the queue is full (a receiver down for long)
 * the oldest waiting event is dropped.  Every outcome is counted per sink
 * (rp_notify_stats) and failures are logged; none is fatal, and nothing
 * here waits: a recycle never waits for a notification.
 *
 * recycle.upcoming is the advance notice of a recycle, `notify_before` (a
 * policy's) ahead of a workload's due time: the agent tells the notifier
 * each workload's due time whenever its decision changes
 * (rp_notify_upcoming_set), and the notices wait in a schedule (schedule.h,
 * the one timer the workloads' deadlines wait in too) until their time.  It
 * is a notification only, never an audit line.
 *
 * The process must ignore SIGPIPE (the agent does): a command that exits
 * without reading its stdin makes the write fail with EPIPE. */
#ifndef RP_NOTIFY_H
#define RP_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "workload.h"

/* A due time that moves by no more than this after its notice was sent
 * (a reload, a re-list) does not bring another notice. */
#define RP_NOTIFY_UPCOMING_SLACK_MS 60000

/* The most of a command's output (stdout and stderr together) kept for the
 * log; the rest is read and dropped. */
#define RP_NOTIFY_OUTPUT_MAX 512

struct rp_notifier;

/* Bounds of the notifier; 0 keeps the default. */
struct rp_notify_limits {
  size_t queue_max;   /* events waiting per sink: 1000 */
  int64_t backoff_ms; /* before the first retry, doubled for each next one
                         and capped at 60 s: 1 s */
  int64_t flush_ms;   /* at close, how long queued events may still take
                         before they are dropped: 5 s */
};

/* A notifier for the sinks of c (copied: c may go after this call).
 * dry_run marks recycle.upcoming notices `"dry_run": true` (nothing will
 * happen to the workload).  Never fails: a sink that cannot work (a webhook
 * when libcurl cannot start) fails its deliveries, counted and logged. */
struct rp_notifier *rp_notify_new(uv_loop_t *loop, const struct rp_config *c,
                                  bool dry_run);

/* Changes the bounds, for events queued from now on. */
void rp_notify_set_limits(struct rp_notifier *n,
                          const struct rp_notify_limits *l);

/* A reload: the sinks of c replace the old ones.  A sink whose entry is
 * the same as before (at the same place in the list) keeps its queue and
 * its delivery in flight; the others' queued events are dropped (counted)
 * and their delivery in flight ends on its own.  Notices already sent are
 * remembered across it. */
void rp_notify_set_config(struct rp_notifier *n, const struct rp_config *c);

/* Sends one event (fields borrowed for the call: an object, or NULL) to
 * every sink whose filter accepts it.  Accepts a NULL n (no notifier), and
 * does nothing once the notifier is closing. */
void rp_notify_event(struct rp_notifier *n, const char *event, json_t *fields);

/* Whether an `events:` list (NULL-terminated; NULL means the default: every
 * recycle.* event, recycle.upcoming included) accepts event.  Entries are
 * exact names, "PREFIX.*" (any event that starts with "PREFIX.") or "*". */
bool rp_notify_matches(char *const *events, const char *event);

/* The JSON that sinks receive for an event (new reference): `event`, `ts`
 * (now_ms, RFC 3339 UTC) and then the fields (borrowed; may be NULL) in
 * their order.  Fields named event or ts are ignored. */
json_t *rp_notify_body(const char *event, json_t *fields, int64_t now_ms);

/* A workload's due time, as the agent decides it (strings borrowed for the
 * call). */
struct rp_notify_upcoming {
  const char *provider;
  enum rp_kind kind;
  const char *id;
  const char *name;
  const char *policy;
  int64_t started_ms; /* the start of this life of the workload */
  int64_t due_ms;     /* the policy's due time (deadline moved into its
                         window), not a retry's */
  int64_t max_age_ms;
  int64_t before_ms; /* the policy's notify_before; 0: no notice */
};

/* Schedules the notice of a workload at due - before, or moves it.  One
 * notice per life of a workload: once sent, it is not sent again for the
 * same start time unless the due time moved by more than
 * RP_NOTIFY_UPCOMING_SLACK_MS; a new start time is a new life.  A notice
 * whose time has passed is sent at the next tick, if the due time has not
 * passed too (a workload already due gets none: its recycle begins now).
 * before 0 forgets the workload, as rp_notify_upcoming_remove.  Accepts a
 * NULL n. */
void rp_notify_upcoming_set(struct rp_notifier *n,
                            const struct rp_notify_upcoming *u);

/* Forgets a workload (it went, or no policy notifies of it any more).
 * Accepts a NULL n. */
void rp_notify_upcoming_remove(struct rp_notifier *n, const char *provider,
                               const char *id);

/* The earliest notice not sent yet (INT64_MAX when none), and the number of
 * workloads remembered (notices pending or sent). */
int64_t rp_notify_upcoming_next_ms(const struct rp_notifier *n);
size_t rp_notify_upcoming_count(const struct rp_notifier *n);

/* Sends every notice due by now_ms.  The schedule's timer sends them with
 * the wall clock; tests call this with their own time. */
void rp_notify_tick(struct rp_notifier *n, int64_t now_ms);

/* Called with every event the notifier is given (body borrowed for the
 * call), before any filter: for tests. */
void rp_notify_set_tap(struct rp_notifier *n,
                       void (*cb)(void *arg, const char *event, json_t *body),
                       void *arg);

/* Per sink, what happened to the events it took, new reference:
 * [{"sink": "webhook[0]", "sent": N, "failed": N, "dropped": N,
 *   "retried": N}, ...].  A sink is named by its type and its place in the
 * notify: list (never its URL, which may carry a secret); its counts
 * survive reloads.  sent: delivered (2xx, or exit 0); failed: given up
 * after the retries, or refused for good (an HTTP 4xx other than 408 and
 * 429); dropped: never tried, the queue being full or the agent stopping;
 * retried: attempts that failed and were tried again.  Accepts NULL (an
 * empty array). */
json_t *rp_notify_stats(const struct rp_notifier *n);

/* Stops taking events and notices, lets the queued ones be delivered for at
 * most the flush bound, then cancels what is left (dropped and counted),
 * closes every handle and frees n once the loop has closed them.  n must
 * not be used after this call.  Accepts NULL. */
void rp_notify_close(struct rp_notifier *n);

#endif
