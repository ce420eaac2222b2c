/* A scripted provider for the unit tests of the core's recycle (the runner
 * and the recycler): a double of reaper's own provider interface (the small
 * operations of provider.h), not of any engine.  It keeps no containers; it
 * records every call (which operation, on which id, with what) together
 * with the number of lines the audit log held on disk at that moment, and
 * answers each call as the test scripted it: success, an error, "cannot
 * start" (the operation returns -1), or, for probe, a sequence of states
 * per workload.  Answers come from a uv timer, never under the caller, as
 * provider.h demands of a real provider.  It keeps only what crash recovery
 * looks at: each workload's name as probe says it (set by the test, changed
 * by a rename that succeeds), and the replacement find_replacement finds.
 *
 * Not a file matching tests/unit/test_*.c: CMake links it into the tests
 * that use it (see CMakeLists.txt). */
#ifndef TP_SCRIPTED_PROVIDER_H
#define TP_SCRIPTED_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "provider.h"

enum tp_op {
  TP_PREPARE,
  TP_RELEASE,
  TP_RENAME,
  TP_CREATE,
  TP_START,
  TP_STOP,
  TP_REMOVE,
  TP_RESTART,
  TP_DRAIN,
  TP_PROBE,
  TP_RESET,
  TP_UPDATE,
  TP_CORDON,
  TP_UNCORDON,
  TP_REPLACE,
  TP_WATCH,
  TP_UNWATCH,
  TP_FIND, /* find_replacement (crash recovery) */
  TP__COUNT
};

/* One call as the core made it. */
struct tp_call {
  enum tp_op op;
  char id[64];  /* the workload acted on (create, find: the one it replaces) */
  char arg[64]; /* rename: the new name; create: the id it made; find: the
                   name; prepare: "recovery" for crash recovery's */
  int64_t grace_ms;
  /* Lines in the audit log file (on disk, counted at the call). */
  size_t audit_lines;
  /* Answers to earlier calls not delivered yet: 0 when every operation
   * asked for before this one had ended. */
  int pending;
  bool refused; /* scripted "cannot start": the call returned -1 */
};

#define TP_MAX_CALLS 512
#define TP_MAX_PROBED 16
#define TP_MAX_STATES 16

/* States for probe scripts. */
#define TP_RUNNING                                                             \
  ((struct rp_probe){.exists = true, .running = true, .status = "running"})
#define TP_STARTING                                                            \
  ((struct rp_probe){.exists = true,                                           \
                     .running = true,                                          \
                     .health = RP_HEALTH_STARTING,                             \
                     .status = "running"})
#define TP_HEALTHY                                                             \
  ((struct rp_probe){.exists = true,                                           \
                     .running = true,                                          \
                     .health = RP_HEALTH_HEALTHY,                              \
                     .status = "running"})
#define TP_UNHEALTHY                                                           \
  ((struct rp_probe){.exists = true,                                           \
                     .running = true,                                          \
                     .health = RP_HEALTH_UNHEALTHY,                            \
                     .status = "running"})
#define TP_EXITED                                                              \
  ((struct rp_probe){.exists = true, .exit_code = 137, .status = "exited"})
#define TP_PENDING                                                             \
  ((struct rp_probe){                                                          \
      .exists = true, .running = true, .pending = true, .status = "updating"})
#define TP_REVERTED                                                            \
  ((struct rp_probe){.exists = true,                                           \
                     .running = true,                                          \
                     .reverted = true,                                         \
                     .status = "rollback_completed"})
#define TP_GONE ((struct rp_probe){.exists = false, .status = "gone"})

struct tp_answer; /* one answer on its way (scripted_provider.c) */
struct tp_watch;

struct tp {
  uv_loop_t *loop;       /* borrowed */
  const char *audit_log; /* borrowed: the file counted at each call */
  struct rp_provider p;  /* p.ctx is this struct, p.ops is ops below */
  /* The table of operations, a copy the test may change (an operation
   * set to NULL, recover_by_prepare set). */
  struct rp_provider_ops ops;

  /* What prepare finds (rp_prepared), set by the test. */
  const char *name; /* NULL: the workload's own */
  bool running;     /* default true */
  const char *clash;
  bool in_place;
  /* What prepare hands over as its details (borrowed: the test keeps its
   * reference and may add to it later, as a provider's operations do). */
  json_t *details;
  /* What a preparation for crash recovery says of the recycle's own work
   * (rp_prepared.cordoned, .acted), and the wait it gives the engine's
   * work (settle_ms, 0: the runner's own). */
  bool cordoned;
  const char *acted;
  int64_t settle_ms;

  /* The script: which call of each operation fails or cannot start (bit
   * n-1 for the nth call), with what, and how long each answer takes. */
  unsigned fail_mask[TP__COUNT];
  unsigned refuse_mask[TP__COUNT];
  int fail_code[TP__COUNT];
  const char *fail_msg[TP__COUNT];
  int delay_ms[TP__COUNT];

  /* Probe scripts: per id, states in order; the last one repeats.  An id
   * without a script is running, without a health check. */
  struct {
    char id[64];
    struct rp_probe v[TP_MAX_STATES];
    size_t n, at;
  } probes[TP_MAX_PROBED];
  size_t n_probes;

  /* The names probe says (when a probe script's state has none): per id,
   * set by tp_name and by a rename that succeeds. */
  struct {
    char id[64];
    char name[64];
  } names[TP_MAX_PROBED];
  size_t n_names;
  /* What find_replacement answers: the replacement's id, or NULL (none). */
  const char *found;

  /* What happened. */
  struct tp_call calls[TP_MAX_CALLS];
  size_t n_calls;
  bool overflow;
  int count[TP__COUNT];
  int created;       /* replacements made: new-1, new-2... */
  int plans;         /* plans handed out and not released */
  int prepared;      /* prepares that returned 0 */
  int pending;       /* answers not delivered yet */
  int watching;      /* watch handles not unwatched */
  bool stopping;     /* tp_stop: new calls are refused, answers cancelled */
  const char *first; /* the first failed assertion of the protocol, or NULL */

  /* Called at every call, after it is recorded (may be NULL): for a test
   * that does something at a given point of a recycle. */
  void (*on_call)(struct tp *t, const struct tp_call *c, void *arg);
  void *on_call_arg;

  struct tp_answer *answers; /* pending, owned */
  struct tp_watch *watches;  /* open, owned */
};

/* A provider named "local" on loop; audit_log is counted at every call. */
void tp_init(struct tp *t, uv_loop_t *loop, const char *audit_log);
/* Frees what the calls left (call after the loop ran dry). */
void tp_clear(struct tp *t);

/* The nth call (1-based; 0: every call) of op answers with an error. */
void tp_fail(struct tp *t, enum tp_op op, int nth, int code, const char *msg);
/* The nth call (1-based; 0: every call) of op returns -1: cannot start. */
void tp_refuse(struct tp *t, enum tp_op op, int nth, const char *msg);
/* What probe says of id, call after call (the last state repeats). */
void tp_probes(struct tp *t, const char *id, const struct rp_probe *states,
               size_t n);
/* The name probe says of id from now on (until a rename). */
void tp_name(struct tp *t, const char *id, const char *name);
/* The name of id as the provider knows it now, or NULL. */
const char *tp_name_of(const struct tp *t, const char *id);
/* As a provider's stop: answers on their way are delivered at once with
 * RP_ECANCELED, and later calls return -1 with RP_ECANCELED, as the docker
 * provider's do once it stops. */
void tp_stop(struct tp *t);
/* As the engine telling of id (an event): runs the watchers of id. */
void tp_poke(struct tp *t, const char *id);

const char *tp_op_name(enum tp_op op);
/* The calls that act, in order, as "rename(old-1,web-reaper-old)
 * create(old-1,new-1) stop(old-1)" (owned).  Prepare, release, watch and
 * unwatch are left out, and the looks (probe, find) too unless
 * with_probes. */
char *tp_trace(const struct tp *t, bool with_probes);
/* The index in t->calls of the nth (1-based) call of op, or -1. */
int tp_find(const struct tp *t, enum tp_op op, int nth);

/* The lines of an audit log file, parsed, as a JSON array (owned). */
json_t *tp_audit_lines(const char *path);
/* The step names of its recycle.step lines, joined by spaces (owned). */
char *tp_audit_steps(const char *path);

#endif
