/* The swarm provider's internals, shared by its files:
 *   swarm.c    the ops table, start and stop, may_act
 *   track.c    list (services, running tasks, nodes), /events, resync
 *   decode.c   pure functions: workloads from API objects, the safety
 *              checks for nodes, the lease, update progress and timeouts
 *   service.c  the operations of force-update (services) for the core's
 *              recycle runner: prepare, update, probe
 *   node.c     the operations of drain-replace (nodes): prepare, cordon,
 *              probe, replace, remove, uncordon
 *   lease.c    one agent per cluster acts: a lease in the swarm's own state
 *   sweep.c    drains that other agents left on nodes, put right
 *
 * Crash recovery of this agent's own unfinished recycles is the core's
 * (src/runner.c): it prepares a service or node again (spec.recovery) and
 * finishes or undoes the recycle with these operations.
 *
 * The provider talks to one swarm manager through the Engine API client it
 * shares with the docker provider (providers/dockerapi/).
 * contrib/docs/swarm.md describes the design for operators. */
#ifndef RP_SWARM_H
#define RP_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "dockerapi/dockerapi.h"
#include "error.h"
#include "provider.h"

/* The service whose labels hold the lease: replicated with 0 replicas, so
 * it never runs a task; it is never reported as a workload. */
#define RP_SWARM_LEASE_SERVICE "reaper-lease"
#define RP_SWARM_LABEL_HOLDER "reaper.lease.holder"
#define RP_SWARM_LABEL_EXPIRES "reaper.lease.expires"
/* How long a lease lasts; the holder renews it every third of that. */
#define RP_SWARM_LEASE_MS 15000
/* The holder stops acting this long before the lease runs out, for the
 * clocks of the managers that other agents read. */
#define RP_SWARM_LEASE_MARGIN_MS 3000

/* On a node that reaper drains: JSON {"policy", "availability", "role",
 * "holder", "since", and "replaced_at" once the replace action has run},
 * what a rollback restores and what crash recovery and other agents find.
 * Removed when the drain is undone. */
#define RP_SWARM_LABEL_MARK "reaper.recycle"
/* On a node (its own labels, or its engine's): the host's boot time, RFC
 * 3339 or seconds since the Epoch.  The node's age counts from it instead
 * of from when the node joined the swarm. */
#define RP_SWARM_LABEL_BOOT_TIME "reaper.boot-time"

/* The replace action's output kept for the audit line. */
#define RP_SWARM_OUTPUT_MAX 4096

struct rp_swarm_track;
struct rp_swarm_lease;

/* A recycle in flight, from prepare to release: what its operations share
 * (service.c's and node.c's plans begin with it).  Found by the workload's
 * id, since probe and remove are given only that. */
struct rp_swarm_plan {
  enum rp_kind kind;          /* RP_KIND_SERVICE or RP_KIND_NODE */
  char *id;                   /* owned */
  char *name;                 /* owned */
  struct rp_swarm_plan *next; /* borrowed: the list on struct rp_swarm */
};

struct rp_swarm {
  struct rp_dockerapi api; /* owned: the manager, and the version spoken */
  struct rp_provider *p;   /* borrowed: the instance this ctx belongs to */
  bool local;              /* the endpoint is a unix socket on this host */
  char *node_id;           /* owned: the manager's node (GET /info), or NULL */
  char *holder;            /* owned: this agent's name in the lease */
  char *self_container;    /* owned: reaper's own container id, or NULL */
  char *self_service;      /* owned: the service that container belongs to */
  int64_t clock_offset_ms; /* engine clock minus ours (GET /info) */
  struct rp_swarm_track *track; /* owned by track.c */
  struct rp_swarm_lease *lease; /* owned by lease.c */
  int recycles_in_flight;
  struct rp_swarm_plan *plans; /* borrowed: the recycles in flight */
  bool sweeping; /* rp_swarm_sweep_marks in flight: do not act yet */
  bool stopping;
  void (*stop_cb)(void *arg);
  void *stop_arg;
};

/* swarm.c: runs the stop callback once nothing is in flight any more. */
void rp_swarm_check_stopped(struct rp_swarm *s);
/* A recycle's plan: listed from prepare on (and counted in flight), taken
 * off at release. */
void rp_swarm_plan_add(struct rp_swarm *s, struct rp_swarm_plan *pl,
                       enum rp_kind kind, const struct rp_workload *w);
void rp_swarm_plan_remove(struct rp_swarm *s, struct rp_swarm_plan *pl);
/* The plan of the recycle of `id` in flight, or NULL. */
struct rp_swarm_plan *rp_swarm_plan_find(struct rp_swarm *s, const char *id);
/* Calls fn(arg) from the loop after ms, once. */
void rp_swarm_later(struct rp_swarm *s, int64_t ms, void (*fn)(void *arg),
                    void *arg);
/* A recycle has ended (its callback has run): once the provider is
 * stopping and none is left, the lease is given up. */
void rp_swarm_recycle_ended(struct rp_swarm *s);
/* Whether tracking is connected and listed. */
bool rp_swarm_track_up(const struct rp_swarm *s);

/* One call, as rp_dockerapi_call, on the provider's client. */
int rp_swarm_call(struct rp_swarm *s, const char *method, const char *path,
                  const json_t *body, int64_t timeout_ms, rp_dockerapi_cb cb,
                  void *arg, struct rp_error **err);

/* --- decode.c: pure functions ------------------------------------------ */

/* Groups the tasks of `GET /tasks` by service: an object mapping each
 * service id to {"oldest": ms, "tasks": [task ids]} over the tasks that are
 * running and meant to be (Status.State and DesiredState "running"); the
 * age of a service is its oldest running task's Status.Timestamp.  New
 * reference; never NULL. */
json_t *rp_swarm_group_tasks(json_t *tasks);

/* The workload for one service of `GET /services` (or /services/{id}),
 * given its entry in rp_swarm_group_tasks (borrowed, may be NULL).  NULL
 * for a service without a running task (nothing to age) and for the lease
 * service.  Its labels are the service's own (Spec.Labels): reaper.max-age,
 * reaper.policy and reaper.exclude work as on containers.  self_service
 * (may be NULL) is reaper's own service: protected, as are job-mode
 * services (they run to completion; there is nothing to renew). */
struct rp_workload *rp_swarm_service_workload(const char *provider,
                                              json_t *service, json_t *group,
                                              const char *self_service);

/* A boot time as the reaper.boot-time label writes it: RFC 3339 or whole
 * seconds since the Epoch.  0 or -1. */
int rp_swarm_parse_boot_time(const char *s, int64_t *out_ms);

/* The workload for one node of `GET /nodes`.  NULL unless the node is ready
 * (a node that is down or unknown is not a workload: nothing to drain).
 * Started at its reaper.boot-time label (the node's own labels first, then
 * its engine's) when present and valid, else when it joined the swarm
 * (CreatedAt).  Its labels are the node's own (Spec.Labels).  Protected:
 * a node whose availability someone else set to drain or pause (an
 * operator's maintenance), one whose replace action has run (reaper's mark
 * says so: it waits to go down), and self_node (may be NULL: the node this
 * agent runs on, which it cannot replace under itself). */
struct rp_workload *rp_swarm_node_workload(const char *provider, json_t *node,
                                           const char *self_node);

/* reaper's mark on a node (`GET /nodes/{id}`): a new reference to the
 * parsed object, or NULL without one.  A mark that does not parse is still
 * a mark: an empty object. */
json_t *rp_swarm_node_mark(json_t *node);

/* The NodeSpec that undoes reaper's drain of `node` (`GET /nodes/{id}`):
 * its spec with availability and role as they were before the drain, and
 * reaper's mark removed.  "As they were": avail, and role unless NULL (the
 * recycle's own reading; role NULL when it was not changed); with avail
 * NULL, what the mark says (crash recovery, another agent's drain), else
 * "active" and the role unchanged.  New reference; NULL without a Spec. */
json_t *rp_swarm_node_undrained_spec(json_t *node, const char *avail,
                                     const char *role);

/* Whether reaper may drain node `id`, given every node (`GET /nodes`).
 * Refuses (returns -1 with the reason in why) when the node is unknown or
 * not ready; when someone else drained or paused it; when another node carries
 * reaper's mark for the same policy (any mark when policy is NULL, or when the
 * mark names none): a drain in flight, perhaps another agent's; when no other
 * node would be active and ready (the last active node); and for a manager,
 * when the reachable managers other than it would be fewer than a quorum of the
 * managers (floor(M/2) + 1).  Returns 0 when it may. */
int rp_swarm_drain_check(json_t *nodes, const char *id, const char *policy,
                         char *why, size_t why_len);

/* Whether the task list (`GET /tasks?filters={"node":[id]}`) still has a
 * task that runs or is about to: any state before "complete" (new ...
 * running).  Returns the count. */
size_t rp_swarm_tasks_active(json_t *tasks);

/* The lease as the lease service's labels say: who holds it and until when
 * (engine time, ms).  RP_SWARM_LEASE_FREE when no one holds it, its labels
 * do not parse, or it has expired by engine_now_ms; MINE when `me` holds it
 * (expired or not: renewing is always allowed); OTHER otherwise. */
enum rp_swarm_lease_state {
  RP_SWARM_LEASE_FREE,
  RP_SWARM_LEASE_MINE,
  RP_SWARM_LEASE_OTHER
};
enum rp_swarm_lease_state rp_swarm_lease_read(json_t *labels, const char *me,
                                              int64_t engine_now_ms,
                                              const char **holder,
                                              int64_t *expires_ms);

/* The progress of a service update, from `GET /services/{id}`:
 * UpdateStatus.State, but only when UpdateStatus.StartedAt differs from
 * before_started_at (the StartedAt before reaper's update, or NULL): an
 * older update's "completed" is not ours. */
enum rp_swarm_update {
  RP_SWARM_UPDATE_PENDING, /* not started yet (no new UpdateStatus) */
  RP_SWARM_UPDATE_UPDATING,
  RP_SWARM_UPDATE_COMPLETED,
  RP_SWARM_UPDATE_PAUSED,
  RP_SWARM_UPDATE_ROLLBACK_STARTED,
  RP_SWARM_UPDATE_ROLLBACK_COMPLETED,
  RP_SWARM_UPDATE_ROLLBACK_PAUSED,
  RP_SWARM_UPDATE_UNKNOWN,
};
enum rp_swarm_update rp_swarm_update_progress(json_t *service,
                                              const char *before_started_at);
/* "completed", "rollback_paused"... */
const char *rp_swarm_update_name(enum rp_swarm_update u);

/* How long a forced update of `service` with n_tasks tasks may take under
 * its UpdateConfig: batches of Parallelism tasks (0: all at once), each
 * given the policy's health_timeout, the update's Monitor (default 5 s) and
 * Delay, twice over (a rollback under RollbackConfig takes as long), plus a
 * minute of slack. */
int64_t rp_swarm_update_timeout_ms(json_t *service, size_t n_tasks,
                                   int64_t health_timeout_ms);

/* The replace action's environment: PATH (path, or a default when NULL)
 * and REAPER_NODE_ID, REAPER_NODE_HOSTNAME, REAPER_NODE_ADDR and
 * REAPER_NODE_ROLE from the node (`GET /nodes/{id}`).  An owned strv
 * (strv.h); free with rp_strv_free. */
char **rp_swarm_replace_env(json_t *node, const char *path);
/* rp_strv_free and rp_strv_dup, kept for node.c until it calls those (the
 * recycle's rewrite, issue 14). */
void rp_swarm_strv_free(char **v);
char **rp_swarm_strv_dup(const char *const *v);

/* --- track.c ----------------------------------------------------------- */

int rp_swarm_track_start(struct rp_swarm *s, struct rp_error **err);
void rp_swarm_track_resync(struct rp_swarm *s);
void rp_swarm_track_stop(struct rp_swarm *s);
bool rp_swarm_track_idle(const struct rp_swarm *s);
void rp_swarm_track_free(struct rp_swarm *s);

/* --- lease.c ----------------------------------------------------------- */

void rp_swarm_lease_init(struct rp_swarm *s);
/* Whether this agent holds an unexpired lease now.  The first call starts
 * contending for it: agents that never need to act (plan) never take it. */
bool rp_swarm_lease_held(struct rp_swarm *s);
/* Whether this agent holds an unexpired lease now, without contending. */
bool rp_swarm_lease_holding(const struct rp_swarm *s);
/* Gives the lease up (when held) and closes the timer. */
void rp_swarm_lease_stop(struct rp_swarm *s);
bool rp_swarm_lease_idle(const struct rp_swarm *s);
void rp_swarm_lease_free(struct rp_swarm *s);
/* Reads the lease service (404 is fine): cb gets its labels (borrowed,
 * NULL when there is none) or an error. */
int rp_swarm_lease_peek(struct rp_swarm *s,
                        void (*cb)(void *arg, json_t *labels,
                                   const struct rp_error *err),
                        void *arg, struct rp_error **err);

/* --- service.c, node.c: operations for the runner (provider.h) ---------- */

int rp_swarm_service_prepare(struct rp_swarm *s, const struct rp_workload *w,
                             const struct rp_recycle_spec *spec,
                             rp_prepared_cb cb, void *arg,
                             struct rp_error **err);
void rp_swarm_service_release(struct rp_swarm *s, struct rp_swarm_plan *pl);
int rp_swarm_service_probe(struct rp_swarm *s, struct rp_swarm_plan *pl,
                           rp_probe_cb cb, void *arg, struct rp_error **err);
/* Fresh content: the service's next update runs spec->image_digest of its
 * reference (ContainerSpec.Image "REF@DIGEST", as swarm pins it at
 * create), with the registry's credentials for its nodes' pulls. */
int rp_swarm_op_pull(struct rp_provider *p, void *plan,
                     const struct rp_recycle_spec *spec, rp_pulled_cb cb,
                     void *arg, struct rp_error **err);
int rp_swarm_op_update(struct rp_provider *p, const char *id, void *plan,
                       rp_op_cb cb, void *arg, struct rp_error **err);

int rp_swarm_node_prepare(struct rp_swarm *s, const struct rp_workload *w,
                          const struct rp_recycle_spec *spec, rp_prepared_cb cb,
                          void *arg, struct rp_error **err);
void rp_swarm_node_release(struct rp_swarm *s, struct rp_swarm_plan *pl);
int rp_swarm_node_probe(struct rp_swarm *s, struct rp_swarm_plan *pl,
                        rp_probe_cb cb, void *arg, struct rp_error **err);
int rp_swarm_node_remove(struct rp_swarm *s, struct rp_swarm_plan *pl,
                         rp_op_cb cb, void *arg, struct rp_error **err);
int rp_swarm_op_cordon(struct rp_provider *p, const char *id, void *plan,
                       rp_op_cb cb, void *arg, struct rp_error **err);
int rp_swarm_op_uncordon(struct rp_provider *p, const char *id, void *plan,
                         rp_op_cb cb, void *arg, struct rp_error **err);
int rp_swarm_op_replace(struct rp_provider *p, const char *id, void *plan,
                        const char *const *argv, int64_t timeout_ms,
                        rp_replaced_cb cb, void *arg, struct rp_error **err);

/* --- sweep.c ------------------------------------------------------------ */
/* Puts right the nodes that another agent (or an earlier run of this one)
 * left with reaper's mark: removed when down, their availability restored
 * when up, unless the mark says their replace action ran.  Called by the
 * agent that has just taken the lease, and at every re-list while it holds
 * it; s->sweeping is set until it is done, and then hooks.state(up) lets
 * the work held back go. */
void rp_swarm_sweep_marks(struct rp_swarm *s);

#endif
