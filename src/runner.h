/* The recycle runner: the one place that orders the steps of a recycle.
 *
 * For a workload of a provider that offers the small operations of
 * provider.h (prepare, rename, create, start, stop, remove, restart, drain,
 * probe), the runner decides the order of the steps by strategy and order,
 * writes an audit line (recycle.step) that is on disk before each step that
 * acts, waits for readiness (running; healthy when there is a health
 * check), keeps the old workload stopped but not removed for a short
 * survival window, removes it, and on any failure undoes what was done, in
 * reverse, through the same operations (each undoing step announced too).
 *
 *   recreate, stop-first:  rename old, create, drain, stop old, start new,
 *                          ready, survive, remove old
 *   recreate, start-first: rename old, create, start new, ready, survive,
 *                          drain, stop old, remove old
 *   restart:               drain, restart, ready, survive
 *   stop:                  drain, stop
 *   remove:                drain, stop, remove
 *
 * Start-first falls back to stop-first when the provider says old and new
 * cannot run at once (a host port, a static address), and says why.  The
 * runner owns its timers and deadlines, and calls back once, always after
 * the call that started it has returned. */
#ifndef RP_RUNNER_H
#define RP_RUNNER_H

#include <stdbool.h>

#include <jansson.h>
#include <uv.h>

#include "audit.h"
#include "provider.h"

/* The old workload's name while its replacement takes the name. */
#define RP_RUNNER_OLD_SUFFIX "-reaper-old"
/* How long a replacement must stay up after it is ready before the old
 * workload (stopped meanwhile) is removed; a death within it rolls back.  It
 * costs no downtime: the replacement already serves.  A policy's `survive`
 * sets it (this is its default, and crash recovery's). */
#define RP_RUNNER_SURVIVE_MS 2000

/* What the runner needs of its owner. */
struct rp_runner_env {
  uv_loop_t *loop;
  /* Writes one audit line and shows it to whoever watches; cb runs once it
   * is on disk (err set when it could not be).  Returns -1 (cb never runs)
   * when it cannot even try. */
  int (*append)(void *ctx, const char *event, json_t *fields, rp_audit_cb cb,
                void *arg);
  void *ctx;
  /* For tests, which would otherwise wait seconds per recycle: the survival
   * window (over the spec's), how long a restored old workload must stay up,
   * and the wait before an undoing step's audit line is tried again.  0: the
   * defaults (RP_RUNNER_SURVIVE_MS, 1.5 s, 1 s). */
  int64_t survive_ms;
  int64_t restored_ms;
  int64_t audit_retry_ms;
};

/* Whether p's workloads are recycled by the runner (it offers prepare). */
bool rp_runner_handles(const struct rp_provider *p);

/* Recycles w (borrowed for the call) on p as spec says; base (borrowed) is
 * what every audit line of this recycle carries, begin (borrowed) what its
 * recycle.begin line says.  The provider's preparation comes first (it
 * only reads); a preparation that refuses (RP_EREFUSED) ends the recycle
 * before its recycle.begin, nothing done; otherwise recycle.begin is on disk
 * before the first step.  cb runs exactly once, as rp_recycle_cb says;
 * returns -1 (cb never runs) when it cannot start. */
int rp_runner_start(const struct rp_runner_env *env, struct rp_provider *p,
                    const struct rp_workload *w,
                    const struct rp_recycle_spec *spec, const json_t *base,
                    const json_t *begin, rp_recycle_cb cb, void *arg,
                    struct rp_error **err);

/* Whether the core recovers p's unfinished recycles (rp_runner_recover):
 * it offers the operations recovery needs, find_replacement among them. */
bool rp_runner_recovers(const struct rp_provider *p);

/* Puts right what an unfinished recycle (item, borrowed for the call) left
 * in p's engine: finished when the old workload's stop had been asked for,
 * undone before that, the workload running and staying up either way (a
 * stop asked for before is asked for again, and landed, before any start).
 * base (borrowed) is what its audit lines carry; each acting step is
 * announced (recycle.step with "recovery": true).  cb runs once, after this
 * returns; returns -1 (cb never runs) when it cannot start. */
int rp_runner_recover(const struct rp_runner_env *env, struct rp_provider *p,
                      const struct rp_unfinished *item, const json_t *base,
                      rp_recover_item_cb cb, void *arg, struct rp_error **err);

#endif
