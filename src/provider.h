/* A provider knows one engine.  It gives the core workloads (a full list,
 * then changes) and carries out the operations the core asks for, each
 * ending in a callback.  It knows nothing of policies, deadlines or the
 * audit log.  A provider is a table of functions (struct rp_provider_ops);
 * an instance is { ops, ctx }. */
#ifndef RP_PROVIDER_H
#define RP_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "error.h"
#include "http_client.h"
#include "registry_auth.h"
#include "label_keys.h"
#include "workload.h"

struct rp_provider;

/* How the provider reports to the core.  All borrowed; called on the loop.
 * A reported workload's labels object is kept by reference: the provider
 * never changes it afterwards. */
struct rp_provider_hooks {
  void *core;
  /* A complete list: the tracker replaces what it had for this provider.
   * The array is borrowed for the call; the core takes the workloads it
   * keeps, leaving NULL in their place (the provider frees the rest): the
   * tracker's copies are then not made among what the list made, which
   * freed would leave the heap full of holes. */
  void (*listed)(void *core, struct rp_provider *p, struct rp_workload **items,
                 size_t n);
  /* One workload started, changed or restarted (borrowed). */
  void (*upsert)(void *core, struct rp_provider *p,
                 const struct rp_workload *w);
  /* One workload is gone or no longer running. */
  void (*removed)(void *core, struct rp_provider *p, const char *id);
  /* Connection state: up after a successful list; down with a reason. */
  void (*state)(void *core, struct rp_provider *p, bool up, const char *reason);
};

/* What the core asks of one recycle.  Borrowed for the call; the provider
 * copies what it keeps. */
struct rp_recycle_spec {
  enum rp_strategy strategy;
  enum rp_order order;
  int64_t grace_ms;
  int64_t health_timeout_ms;
  int64_t survive_ms; /* the survival window (0: one look once ready) */
  /* Fresh content: the replacement is made from this digest of the
   * workload's own reference (pulled first: the `pull` operation), or, when
   * image_digest is NULL, from what the workload runs. */
  const char *image_ref;    /* the reference as the workload was created */
  const char *image_digest; /* "sha256:...", the tag digest to run */
  const struct rp_registry_cred *image_cred; /* for the pull, or NULL */
  const char *const *drain_argv;             /* NULL-terminated or NULL */
  int64_t drain_timeout_ms;
  const char *const *replace_argv; /* NULL-terminated or NULL */
  bool dry_run; /* never set: dry runs never reach a provider */
  /* The policy's name, or NULL: a provider that marks its work in the
   * engine (a node drain, say) tells one policy's from another's. */
  const char *policy;
  /* Crash recovery's preparation (src/runner.c), with only strategy,
   * grace_ms and health_timeout_ms set: it only reads; it refuses nothing
   * for the state the unfinished recycle itself left (a stopped task, a
   * drained node, the host's marker) nor for any check of whether a recycle
   * may begin; it answers RP_ENOTFOUND when the workload itself is gone
   * (and for nothing else); and it says what the engine shows of the
   * recycle's own work (rp_prepared.cordoned, .acted). */
  bool recovery;
};

struct rp_recycle_result {
  char *replacement_id; /* borrowed in the callback; NULL when none */
  bool rolled_back;     /* the failure left the old workload in place */
  /* The step that failed ("pull", "start-new", "ready", "survive"...), or
   * NULL: a failure of the replacement itself (it did not start, or not
   * become healthy, or not stay up) is told from one of the way there. */
  const char *failed_step;
  json_t *details; /* borrowed, may be NULL: drain status, output... */
  /* borrowed, may be NULL: the acting steps announced (recycle.step), in
   * order, undoing ones included: what recovery goes by when a failure left
   * the recycle half undone. */
  const json_t *steps;
  /* When the replacement was seen running and ready (rp_mono_ms), 0 when
   * it never was: recycle.done's ready_s, the time to a serving
   * replacement, apart from the survival window that follows it. */
  int64_t ready_mono_ms;
};

/* status 0: done; negative: failed, err says why.  err and res borrowed. */
typedef void (*rp_recycle_cb)(void *arg, int status,
                              const struct rp_recycle_result *res,
                              const struct rp_error *err);

/* A recycle that the audit log says began and never ended (reaper died in
 * the middle of it, or a failure left it half undone), for the core's crash
 * recovery (src/runner.c).  Borrowed for the call. */
struct rp_unfinished {
  const char *id;   /* the workload's id in its recycle.begin line */
  const char *name; /* its name then */
  enum rp_kind kind;
  enum rp_strategy strategy;
  int64_t grace_ms;          /* for a stop that recovery must finish */
  int64_t health_timeout_ms; /* the policy's, for what recovery starts */
  bool start_first;          /* the recycle's order */
  /* The acting steps its recycle.step lines announced, in order (an array of
   * strings; NULL: not known, as for a recycle that failed in this run). */
  const json_t *steps;
  const char *replacement_id; /* the last one a step line named, or NULL */
};

/* What crash recovery (src/runner.c) found and did about one unfinished
 * recycle.  Borrowed for the callback. */
struct rp_recovery {
  const char *id;             /* the workload the recycle was about */
  const char *name;           /* its name (the original one) */
  const char *action;         /* "finished", "rolled-back", "none" */
  const char *replacement_id; /* the workload now running, or NULL */
  const char *detail;         /* what was found and done, in words */
  bool ok;                    /* false: it could not be put right */
  /* Nothing could even be looked at (the engine's answer was unreadable):
   * nothing was decided or written; it is tried again later. */
  bool retry;
};
typedef void (*rp_recover_item_cb)(void *arg, const struct rp_recovery *r);

/* Marks a string the recovery step uses. */
#define RP_RECOVERY_FINISHED "finished"
#define RP_RECOVERY_ROLLED_BACK "rolled-back"
#define RP_RECOVERY_NONE "none"

/* --- small operations, for the core's recycle runner (src/runner.c) ------
 * The runner alone decides their order; a provider only carries each out.
 * (start_workload and stop_workload: start and stop are the provider's own
 * lifecycle, below.)
 * Every one starts one action on the engine and calls back exactly once,
 * after the call that started it has returned; it returns -1 (and the
 * callback never runs) when it cannot even start. */

/* What a workload's preparation found: the facts the runner orders a
 * recycle by.  Borrowed for the callback but for `plan`, which the runner
 * owns from then on and hands back to ops->release. */
struct rp_prepared {
  void *plan;        /* the provider's: what create needs, or NULL */
  const char *name;  /* the workload's name now */
  bool running;      /* it runs now (a drain hook only runs in one that does) */
  const char *clash; /* why old and new cannot run at once (start-first then
                        falls back to stop-first), or NULL */
  /* recreate gives this very workload a fresh filesystem (reset) instead of
   * making a second one beside it: stop, reset, start (engines whose
   * container ids are its names). */
  bool in_place;
  /* May be NULL: what the audit lines should carry.  The runner keeps a
   * reference and reads it again when the recycle ends, so the provider may
   * add to it until release what its operations learn (a stop that had to
   * kill, the exit status, a new process's id). */
  json_t *details;
  /* How long the engine's own work may take (a service's update under its
   * update configuration, a replaced machine going away), when the provider
   * knows better than the policy; 0: health_timeout + drain_timeout. */
  int64_t settle_ms;
  /* drain-replace: a replace command that ran is final even when it failed
   * (the host's runs once per boot): nothing is undone after it. */
  bool replace_final;
  /* Crash recovery's preparation only (rp_recycle_spec.recovery): what the
   * engine shows of the recycle's own work, which the audit log can announce
   * but not say landed.  cordoned: it is out of service by a recycle's
   * cordon (a node drained under reaper's mark), which uncordon lifts.
   * acted: the act that is never undone was taken, in words saying how the
   * provider knows (a service's update under way or done; a replace command
   * that ran, by the node's mark or the host's once-per-boot marker), or
   * NULL. */
  bool cordoned;
  const char *acted;
};
typedef void (*rp_prepared_cb)(void *arg, const struct rp_prepared *pr,
                               const struct rp_error *err);

/* One look at a workload instance, for readiness and survival. */
enum rp_health {
  RP_HEALTH_NONE,     /* it has no health check */
  RP_HEALTH_STARTING, /* checked, no verdict yet */
  RP_HEALTH_HEALTHY,
  RP_HEALTH_UNHEALTHY,
};
struct rp_probe {
  bool exists;
  /* Not settled yet (an update or a drain under way): look again. */
  bool pending;
  /* The engine undid the change itself (a service update rolled back by
   * its failure action): a failure, rolled back. */
  bool reverted;
  bool running;  /* running, and not restarting */
  int exit_code; /* when not running; when gone, if exited */
  /* Gone (!exists), but the engine said first that it exited with
   * exit_code: a replacement made with --rm that failed is removed by the
   * engine at once, and why it failed is still worth saying. */
  bool exited;
  int restarts; /* restarts the engine made since it was created */
  enum rp_health health;
  const char *status; /* the engine's word for its state, for messages */
  const char *name;   /* its name now, when the engine says (else NULL) */
  /* May be NULL; also given with an error: what the audit line should carry
   * from this look (an update's outcome, a drain's tasks), merged into the
   * recycle's details. */
  json_t *details;
};
typedef void (*rp_probe_cb)(void *arg, const struct rp_probe *st,
                            const struct rp_error *err);
typedef void (*rp_op_cb)(void *arg, const struct rp_error *err);
typedef void (*rp_created_cb)(void *arg, const char *id,
                              const struct rp_error *err);
/* outcome: {exit_code, output, timed_out, error} as far as known; never a
 * failure of the recycle (a drain hook that fails still ends in a stop). */
typedef void (*rp_drained_cb)(void *arg, json_t *outcome);
/* The same for a replace command, whose failure (err) is the recycle's. */
typedef void (*rp_replaced_cb)(void *arg, json_t *outcome,
                               const struct rp_error *err);
/* A pull: details (borrowed, may be NULL) for the audit line, e.g. the
 * image's id before and after. */
typedef void (*rp_pulled_cb)(void *arg, json_t *details,
                             const struct rp_error *err);

/* A setting that only one type of provider takes. */
enum rp_option_type {
  RP_OPTION_STRING,
  RP_OPTION_BOOL,
  RP_OPTION_STRINGS, /* a list of strings, not empty */
};
struct rp_provider_option {
  const char *key;
  enum rp_option_type type;
};

/* What a provider can do to the workloads of one kind: checked when the
 * configuration loads, so that a policy that asks for more is an error in
 * the file, not a failure at recycle time. */
struct rp_capability {
  enum rp_kind kind;
  unsigned strategies; /* 1u << enum rp_strategy, each it can apply */
  bool start_first;    /* order: start-first */
  bool pull;           /* pull: true */
  bool drain;          /* a drain hook (drain:) */
  bool replace;        /* a replace command (replace:) */
  /* Fresh content: the workload's image reference is followed at its
   * registry, and a replacement can be made from a given digest of it
   * (update:, max_image_age:, verify:; the `pull` operation). */
  bool fresh_content;
};
#define RP_STRATEGY_BIT(s) (1u << (unsigned)(s))

struct rp_provider_ops {
  const char *type; /* what the configuration's type: names it */
  /* The kinds of workload it reports, and what it can do to each. */
  const struct rp_capability *caps;
  size_t n_caps;
  /* The strategy used when a policy sets none, per kind. */
  enum rp_strategy (*default_strategy)(enum rp_kind kind);
  /* Optional: the settings this type takes beyond name, type and endpoint
   * (ended by a NULL key), which option_valid checks when the configuration
   * loads (value: a string, true/false or an array of strings, as the
   * option's type says; why gets the reason it is not). */
  const struct rp_provider_option *options;
  bool (*option_valid)(const char *key, const json_t *value, char *why,
                       size_t why_len);

  /* Sets p->ctx.  Validates the configuration (endpoint, options). */
  int (*init)(struct rp_provider *p, struct rp_error **err);
  /* Lists, then watches; reports through p->hooks.  Reconnects by itself. */
  int (*start)(struct rp_provider *p, struct rp_error **err);
  /* A full re-list now (periodic resync). */
  void (*resync)(struct rp_provider *p);
  /* The operations of the recycle runner (above): every provider's
   * workloads are recycled by the runner, step by step. */
  /* A recycle begins: its callback gives the facts.  Every prepare that
   * returned 0 is matched by one release (plan may be NULL) when that
   * recycle has ended, whatever happened: until then the provider's stop
   * waits, so that a stop never leaves a workload half-replaced. */
  int (*prepare)(struct rp_provider *p, const struct rp_workload *w,
                 const struct rp_recycle_spec *spec, rp_prepared_cb cb,
                 void *arg, struct rp_error **err);
  void (*release)(struct rp_provider *p, void *plan);
  int (*rename)(struct rp_provider *p, const char *id, const char *name,
                rp_op_cb cb, void *arg, struct rp_error **err);
  /* The replacement, made from the plan (named as the workload was), not
   * started. */
  int (*create)(struct rp_provider *p, void *plan, rp_created_cb cb, void *arg,
                struct rp_error **err);
  int (*start_workload)(struct rp_provider *p, const char *id, rp_op_cb cb,
                        void *arg, struct rp_error **err);
  int (*stop_workload)(struct rp_provider *p, const char *id, int64_t grace_ms,
                       rp_op_cb cb, void *arg, struct rp_error **err);
  /* Removes a stopped workload, never its volumes; one that runs again is
   * stopped again first (grace_ms). */
  int (*remove)(struct rp_provider *p, const char *id, int64_t grace_ms,
                rp_op_cb cb, void *arg, struct rp_error **err);
  int (*restart)(struct rp_provider *p, const char *id, int64_t grace_ms,
                 rp_op_cb cb, void *arg, struct rp_error **err);
  int (*drain)(struct rp_provider *p, const char *id, const char *const *argv,
               int64_t timeout_ms, rp_drained_cb cb, void *arg,
               struct rp_error **err);
  int (*probe)(struct rp_provider *p, const char *id, rp_probe_cb cb, void *arg,
               struct rp_error **err);
  /* Crash recovery of a recreate beside (src/runner.c): the replacement
   * this provider's create made for old_id under `name`, by what the
   * provider marked it with; cb gets its id, or NULL when there is none. */
  int (*find_replacement)(struct rp_provider *p, const char *old_id,
                          const char *name, rp_created_cb cb, void *arg,
                          struct rp_error **err);
  /* In-place recreate (rp_prepared.in_place): a fresh filesystem from the
   * workload's image, once it is stopped. */
  int (*reset)(struct rp_provider *p, const char *id, void *plan, rp_op_cb cb,
               void *arg, struct rp_error **err);
  /* force-update: the provider's update of a service (the engine replaces its
   * tasks under the service's own update configuration); probe then says
   * pending until it is done. */
  int (*update)(struct rp_provider *p, const char *id, void *plan, rp_op_cb cb,
                void *arg, struct rp_error **err);
  /* drain-replace: cordon takes the workload out of service (a node drained
   * of its tasks; probe says pending until it is empty), uncordon undoes it;
   * replace runs the policy's replace command (argv, no shell, with the
   * provider's facts in its environment: src/child.c); probe then says
   * pending until the replaced workload is gone, and remove forgets it. */
  int (*cordon)(struct rp_provider *p, const char *id, void *plan, rp_op_cb cb,
                void *arg, struct rp_error **err);
  int (*uncordon)(struct rp_provider *p, const char *id, void *plan,
                  rp_op_cb cb, void *arg, struct rp_error **err);
  int (*replace)(struct rp_provider *p, const char *id, void *plan,
                 const char *const *argv, int64_t timeout_ms, rp_replaced_cb cb,
                 void *arg, struct rp_error **err);
  /* Fresh content: fetches spec->image_digest of spec->image_ref (by digest,
   * once: content already there is not fetched again) with
   * spec->image_cred, makes spec->image_ref name it, and has the plan's
   * create make the replacement from spec->image_ref and check that it runs
   * exactly that content (a tag moved meanwhile fails the create). */
  int (*pull)(struct rp_provider *p, void *plan,
              const struct rp_recycle_spec *spec, rp_pulled_cb cb, void *arg,
              struct rp_error **err);
  /* Optional: cb runs whenever the engine says something of `id` (it
   * started, died, its health changed), so that the runner looks at once
   * instead of waiting for its next look.  Returns a handle for unwatch. */
  void *(*watch)(struct rp_provider *p, const char *id, void (*cb)(void *arg),
                 void *arg);
  void (*unwatch)(struct rp_provider *p, void *handle);

  /* How crash recovery (src/runner.c) first looks at what an unfinished
   * recycle left.  false: with probe (and find_replacement), for a provider
   * whose operations act on ids alone.  true: by preparing the workload
   * again (rp_recycle_spec.recovery), for a provider whose operations act
   * only on what a preparation read (its plan, found by the workload's id)
   * and whose preparation knows what a probe does not (a container whose
   * task was deleted, a node's drain mark, the host's once-per-boot
   * marker).  A fact of the provider the core cannot tell otherwise. */
  bool recover_by_prepare;

  /* Optional.  Whether this agent may act on the provider's workloads now
   * (e.g. false while another agent holds the cluster's lease: this one
   * tracks and plans but does not act).  NULL means always.  When it turns
   * true, the provider calls hooks.state(up) so that held work goes. */
  bool (*may_act)(struct rp_provider *p);
  /* Optional.  What the provider knows of its engine now, for plan and
   * /status: a new object with any of "engine" (its name and version),
   * "api_version" (the version of its API spoken) and "api" (how that
   * version was chosen), all strings; NULL when nothing is known yet. */
  json_t *(*describe)(struct rp_provider *p);
  /* Stops watching and cancels what it can; done_cb runs once every handle
   * is closed.  Recycles in flight are cancelled (their callbacks run). */
  void (*stop)(struct rp_provider *p, void (*done_cb)(void *arg), void *arg);
  /* Frees ctx. */
  void (*destroy)(struct rp_provider *p);
};

struct rp_provider {
  const struct rp_provider_ops *ops;    /* static */
  void *ctx;                            /* owned by the ops */
  const struct rp_provider_config *cfg; /* borrowed from the live config */
  char *name;                           /* owned copy of cfg->name */
  uv_loop_t *loop;                      /* borrowed */
  struct rp_http *http;                 /* borrowed, shared */
  /* The label keys the core reads (label_keys.h), borrowed from the agent
   * and replaced at a reload; NULL: every one.  A provider may leave the
   * others out of its workloads' labels. */
  const struct rp_label_keys *label_keys;
  struct rp_provider_hooks hooks;
};

/* The registry (providers/registry.c): the ops for a type name, or NULL. */
const struct rp_provider_ops *rp_provider_lookup(const char *type);
/* NULL-terminated list of known type names, for errors and help. */
extern const char *const rp_provider_types[];

#endif
