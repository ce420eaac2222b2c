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
#include "workload.h"

struct rp_provider;

/* How the provider reports to the core.  All borrowed; called on the loop.
 * A reported workload's labels object is kept by reference: the provider
 * never changes it afterwards. */
struct rp_provider_hooks {
  void *core;
  /* A complete list: the tracker replaces what it had for this provider.
   * The array and workloads are borrowed for the call. */
  void (*listed)(void *core, struct rp_provider *p,
                 struct rp_workload *const *items, size_t n);
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
  bool pull;
  const char *const *drain_argv; /* NULL-terminated or NULL */
  int64_t drain_timeout_ms;
  const char *const *replace_argv; /* NULL-terminated or NULL */
  bool dry_run; /* never set: dry runs never reach a provider */
  /* The policy's name, or NULL: a provider that marks its work in the
   * engine (swarm's node drains) tells one policy's from another's. */
  const char *policy;
};

struct rp_recycle_result {
  char *replacement_id; /* borrowed in the callback; NULL when none */
  bool rolled_back;     /* the failure left the old workload in place */
  json_t *details;      /* borrowed, may be NULL: drain status, output... */
};

/* status 0: done; negative: failed, err says why.  err and res borrowed. */
typedef void (*rp_recycle_cb)(void *arg, int status,
                              const struct rp_recycle_result *res,
                              const struct rp_error *err);

/* A recycle that the audit log says began and never ended (reaper died in
 * the middle of it).  Borrowed for the call. */
struct rp_unfinished {
  const char *id;   /* the workload's id in its recycle.begin line */
  const char *name; /* its name then */
  enum rp_strategy strategy;
  int64_t grace_ms; /* for a stop that recovery must finish */
};

/* What recovery found and did about one unfinished recycle, or about one
 * piece of unfinished work the provider found on its own (e.g. a renamed
 * old container).  Borrowed for the callback. */
struct rp_recovery {
  const char *id;             /* the workload the recycle was about */
  const char *name;           /* its name (the original one) */
  const char *action;         /* "finished", "rolled-back", "none" */
  const char *replacement_id; /* the workload now running, or NULL */
  const char *detail;         /* what was found and done, in words */
  bool ok;                    /* false: it could not be put right */
};
typedef void (*rp_recover_item_cb)(void *arg, const struct rp_recovery *r);

/* Marks a string the recovery step uses. */
#define RP_RECOVERY_FINISHED "finished"
#define RP_RECOVERY_ROLLED_BACK "rolled-back"
#define RP_RECOVERY_NONE "none"

struct rp_provider_ops {
  const char *type; /* "docker" */
  /* The strategy used when a policy sets none, per kind. */
  enum rp_strategy (*default_strategy)(enum rp_kind kind);
  /* Whether the provider can apply a strategy to a kind (config check). */
  bool (*supports)(enum rp_kind kind, enum rp_strategy s);
  /* Optional: the settings this type takes beyond name, type and endpoint
   * (NULL-terminated), each a string that option_valid checks when the
   * configuration loads (why gets the reason it is not). */
  const char *const *options;
  bool (*option_valid)(const char *key, const char *value, char *why,
                       size_t why_len);

  /* Sets p->ctx.  Validates the configuration (endpoint, options). */
  int (*init)(struct rp_provider *p, struct rp_error **err);
  /* Lists, then watches; reports through p->hooks.  Reconnects by itself. */
  int (*start)(struct rp_provider *p, struct rp_error **err);
  /* A full re-list now (periodic resync). */
  void (*resync)(struct rp_provider *p);
  /* Recycles one workload it reported.  Returns -1 (cb never runs) when it
   * cannot even start. */
  int (*recycle)(struct rp_provider *p, const struct rp_workload *w,
                 const struct rp_recycle_spec *spec, rp_recycle_cb cb,
                 void *arg, struct rp_error **err);
  /* Optional.  Whether this agent may act on the provider's workloads now
   * (e.g. false while another agent holds the cluster's lease: this one
   * tracks and plans but does not act).  NULL means always.  When it turns
   * true, the provider calls hooks.state(up) so that held work goes. */
  bool (*may_act)(struct rp_provider *p);
  /* Optional.  After reaper's own crash: puts right what unfinished
   * recycles left in the engine (finishes a replacement that runs, or
   * restores the old workload), for the items the audit log names and for
   * what the provider finds of its own work.  item_cb runs for each, then
   * done_cb once.  Returns -1 (no callback runs) when it cannot start.  The
   * core acts on none of this provider's workloads until done_cb. */
  int (*recover)(struct rp_provider *p, const struct rp_unfinished *items,
                 size_t n, rp_recover_item_cb item_cb,
                 void (*done_cb)(void *arg, const struct rp_error *err),
                 void *arg, struct rp_error **err);
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
  struct rp_provider_hooks hooks;
};

/* The registry (providers/registry.c): the ops for a type name, or NULL. */
const struct rp_provider_ops *rp_provider_lookup(const char *type);
/* NULL-terminated list of known type names, for errors and help. */
extern const char *const rp_provider_types[];

#endif
