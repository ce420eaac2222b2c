/* The containerd provider's operations for the core's recycle runner
 * (src/runner.c orders them; nothing here decides a sequence).  Each is one
 * or a few gRPC calls on the loop, calling back once:
 *
 *   prepare         read only: the container (image, snapshotter, snapshot
 *                   key, spec, stop signal), its task (status, pid, the log
 *                   URI a new task keeps) and, for a recreate, the base a
 *                   fresh snapshot is prepared on and that it is a committed
 *                   snapshot.  A recreate that cannot be done fails here,
 *                   before anything is stopped.  recreate is in place: the
 *                   container keeps its id, spec, labels, image, snapshotter
 *                   and snapshot key, and only its rootfs is renewed.
 *   stop_workload   Kill with the container's stop signal, Wait up to the
 *                   grace period, Kill SIGKILL to every process, Wait; then
 *                   Delete the task (a container keeps one task at most)
 *   reset           no task; the container's active snapshot removed and
 *                   prepared again on the base: nothing written survives
 *   start_workload  Mounts of the snapshot, Create a task on them, Start it
 *   restart         stop_workload's calls, then start_workload's
 *   remove          stop_workload's calls, Delete the container, Remove its
 *                   snapshot
 *   drain           the hook exec'd in the task, as `ctr task exec` does
 *   probe           Tasks.Get (containerd has no health checks)
 *
 * The base of a fresh snapshot is the image's chain id (what ctr would
 * use), unless the old snapshot's parent differs: the image name then
 * points at other layers than the ones that ran, and the container is
 * recreated from those that ran (its spec was made for them).
 *
 * What prepare found (the plan) stays with the provider, by workload id,
 * until release: the operations the runner gives only an id find it there,
 * and add what they learn (killed, the exit status, the new task's pid) to
 * the details the runner writes in the audit line. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "containerd.h"
#include "log.h"
#include "util.h"

/* After SIGKILL, for the runtime's own work. */
#define KILL_WAIT_MS 30000
/* Drain output kept for the audit line. */
#define DRAIN_OUTPUT_MAX 2048
#define PROCESS_SPEC_URL                                                       \
  "types.containerd.io/opencontainers/runtime-spec/1/Process"

/* What prepare found; owned by the runner (through rp_prepared.plan) and
 * listed in c->plans until release. */
struct rp_ctrd_plan {
  struct rp_ctrd_plan *next; /* in c->plans */
  struct rp_ctrd *c;         /* borrowed */
  enum rp_strategy strategy;
  char ns[80];
  char *wid;          /* owned: "NS/ID" */
  char *cid;          /* owned */
  char *image;        /* owned */
  char *snapshotter;  /* owned */
  char *snapshot_key; /* owned */
  json_t *spec;       /* owned: the OCI spec, or NULL */
  int stop_signal;
  int task_status; /* RPCTRD__TASK_STATUS__*, UNKNOWN when no task */
  char *log_uri;   /* owned: the stdout/stderr a new task gets, or NULL */
  char *parent;    /* owned: the old snapshot's parent (the layers that ran) */
  char *base;      /* owned: recreate: what the fresh snapshot is on */
  json_t *details; /* owned: the runner holds a reference too */
};

static void
plan_free(struct rp_ctrd_plan *pl)
{
  if (!pl)
    return;
  free(pl->wid);
  free(pl->cid);
  free(pl->image);
  free(pl->snapshotter);
  free(pl->snapshot_key);
  json_decref(pl->spec);
  free(pl->log_uri);
  free(pl->parent);
  free(pl->base);
  json_decref(pl->details);
  free(pl);
}

static struct rp_ctrd_plan *
plan_find(struct rp_ctrd *c, const char *wid, struct rp_error **err)
{
  for (struct rp_ctrd_plan *pl = c->plans; pl; pl = pl->next)
    if (strcmp(pl->wid, wid) == 0)
      return pl;
  rp_error_set(err, EINVAL, "provider %s: no recycle of %s was prepared",
               c->p->name, wid);
  return NULL;
}

static bool
task_runs(int status)
{
  return status == RPCTRD__TASK_STATUS__RUNNING ||
         status == RPCTRD__TASK_STATUS__PAUSED ||
         status == RPCTRD__TASK_STATUS__PAUSING;
}

/* --- calls that count ---------------------------------------------------- */

/* Every operation's calls count as in flight for the provider's stop. */
struct call {
  struct rp_ctrd *c;
  rp_ctrd_call_cb then;
  void *ctx;
};

static void
call_cb(void *arg, const uint8_t *msg, size_t len, const struct rp_error *err)
{
  struct call k = *(struct call *)arg;
  free(arg);
  k.then(k.ctx, msg, len, err);
  k.c->recycles_in_flight--;
  rp_ctrd_check_stopped(k.c);
}

static int
call(struct rp_ctrd *c, const char *ns, const char *method,
     const ProtobufCMessage *req, int64_t timeout_ms, rp_ctrd_call_cb then,
     void *ctx, struct rp_error **err)
{
  struct call *k = rp_xcalloc(1, sizeof(*k));
  *k = (struct call){.c = c, .then = then, .ctx = ctx};
  if (rp_ctrd_call(c, ns, method, req, timeout_ms, call_cb, k, err) != 0) {
    free(k);
    return -1;
  }
  c->recycles_in_flight++;
  return 0;
}

/* --- one operation on a prepared container: a few phases of calls -------- */

struct job;
typedef void (*phase_fn)(struct job *j);

struct job {
  struct rp_ctrd_plan *pl; /* borrowed: the runner holds it */
  rp_op_cb cb;
  void *arg;
  int64_t grace_ms;
  phase_fn phases[4];
  size_t n, pc;
  /* Until the first call is on its way, a failure to start is the
   * operation's -1, not its callback. */
  bool starting;
  struct rp_error *start_err;     /* owned */
  bool escalated;                 /* SIGKILL was sent */
  Rpctrd__MountsResponse *mounts; /* owned: a new task's rootfs */
  struct rp_error *error;         /* owned: a failure being cleaned up */
};

static void
job_end(struct job *j, const struct rp_error *err)
{
  j->cb(j->arg, err);
  if (j->mounts)
    rpctrd__mounts_response__free_unpacked(j->mounts, NULL);
  rp_error_free(j->error);
  free(j);
}

static void
job_fail(struct job *j, const struct rp_error *err, const char *what)
{
  struct rp_error *e = rp_error_dup(err);
  rp_error_prefix(&e, "%s", what);
  job_end(j, e);
  rp_error_free(e);
}

static void
job_next(struct job *j)
{
  if (j->pc < j->n) {
    j->phases[j->pc++](j);
    return;
  }
  job_end(j, NULL);
}

static void
jcall(struct job *j, const char *method, const ProtobufCMessage *req,
      int64_t timeout_ms, rp_ctrd_call_cb then, const char *what)
{
  cleanup_error struct rp_error *err = NULL;
  if (call(j->pl->c, j->pl->ns, method, req, timeout_ms, then, j, &err) == 0)
    return;
  if (j->starting) {
    rp_error_prefix(&err, "%s", what);
    j->start_err = err;
    err = NULL;
    return;
  }
  job_fail(j, err, what);
}

/* Starts an operation of phases on the prepared wid: -1 (cb never runs)
 * when its first call cannot start. */
static int
job_run(struct rp_provider *p, const char *wid, int64_t grace_ms,
        const phase_fn *phases, size_t n, rp_op_cb cb, void *arg,
        struct rp_error **err)
{
  struct rp_ctrd_plan *pl = plan_find(p->ctx, wid, err);
  if (!pl)
    return -1;
  struct job *j = rp_xcalloc(1, sizeof(*j));
  j->pl = pl;
  j->cb = cb;
  j->arg = arg;
  j->grace_ms = grace_ms;
  for (size_t i = 0; i < n && i < RP_ARRAY_LEN(j->phases); i++)
    j->phases[j->n++] = phases[i];
  j->starting = true;
  job_next(j); /* every phase begins with a call */
  j->starting = false;
  if (j->start_err) {
    if (err)
      *err = j->start_err;
    else
      rp_error_free(j->start_err);
    rp_error_free(j->error);
    free(j);
    return -1;
  }
  return 0;
}

/* --- stopping: no task left ---------------------------------------------- */

static void send_kill(struct job *j, int sig);

static void
task_deleted(void *arg, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  struct job *j = arg;
  (void)msg;
  (void)len;
  if (err && err->code != RP_ENOTFOUND) {
    job_fail(j, err, "delete the stopped task");
    return;
  }
  job_next(j);
}

static void
delete_task(struct job *j)
{
  Rpctrd__DeleteTaskRequest req;
  rpctrd__delete_task_request__init(&req);
  req.container_id = j->pl->cid;
  jcall(j, RP_CTRD_TASKS "Delete", &req.base, 0, task_deleted,
        "delete the stopped task");
}

static void
waited(void *arg, const uint8_t *msg, size_t len, const struct rp_error *err)
{
  struct job *j = arg;
  struct rp_ctrd_plan *pl = j->pl;
  if (err && err->code == RP_ETIMEOUT && !j->escalated) {
    rp_info("provider %s: %s did not stop within %llds: SIGKILL",
            pl->c->p->name, pl->wid, (long long)(j->grace_ms / 1000));
    json_object_set_new(pl->details, "killed", json_true());
    j->escalated = true;
    send_kill(j, SIGKILL);
    return;
  }
  if (err && err->code != RP_ENOTFOUND) {
    job_fail(j, err,
             j->escalated ? "wait for the task after SIGKILL"
                          : "wait for the task to stop");
    return;
  }
  Rpctrd__WaitResponse *r =
      err ? NULL : rpctrd__wait_response__unpack(NULL, len, msg);
  if (r) {
    json_object_set_new(pl->details, "exit_status",
                        json_integer(r->exit_status));
    rpctrd__wait_response__free_unpacked(r, NULL);
  }
  RP_CRASHPOINT("ctrd-after-stop");
  delete_task(j);
}

static void
killed(void *arg, const uint8_t *msg, size_t len, const struct rp_error *err)
{
  struct job *j = arg;
  (void)msg;
  (void)len;
  /* NotFound: the process is already gone; Wait says how it ended. */
  if (err && err->code != RP_ENOTFOUND) {
    job_fail(j, err,
             j->escalated ? "kill the task (SIGKILL)" : "kill the task");
    return;
  }
  Rpctrd__WaitRequest req;
  rpctrd__wait_request__init(&req);
  req.container_id = j->pl->cid;
  /* Wait's own timeout is the grace period: when it runs out, SIGKILL. */
  jcall(j, RP_CTRD_TASKS "Wait", &req.base,
        j->escalated ? KILL_WAIT_MS : (j->grace_ms > 0 ? j->grace_ms : 1),
        waited, "wait for the task to stop");
}

static void
send_kill(struct job *j, int sig)
{
  Rpctrd__KillRequest req;
  rpctrd__kill_request__init(&req);
  req.container_id = j->pl->cid;
  req.signal = (uint32_t)sig;
  req.all = sig == SIGKILL;
  jcall(j, RP_CTRD_TASKS "Kill", &req.base, 0, killed, "kill the task");
}

static void
task_read(void *arg, const uint8_t *msg, size_t len, const struct rp_error *err)
{
  struct job *j = arg;
  if (err && err->code == RP_ENOTFOUND) {
    job_next(j); /* no task: nothing runs */
    return;
  }
  if (err) {
    job_fail(j, err, "read the task");
    return;
  }
  Rpctrd__GetTaskResponse *r =
      rpctrd__get_task_response__unpack(NULL, len, msg);
  int status = r && r->process ? r->process->status : 0;
  uint32_t pid = r && r->process ? r->process->pid : 0;
  if (r)
    rpctrd__get_task_response__free_unpacked(r, NULL);
  if (!task_runs(status)) {
    delete_task(j); /* stopped (or never started): only deleted */
    return;
  }
  rp_info("provider %s: %s: stopping its task (pid %u)", j->pl->c->p->name,
          j->pl->wid, pid);
  send_kill(j, j->pl->stop_signal);
}

/* The task as it is now (not as prepare saw it: this also finishes what a
 * crash left), stopped and deleted. */
static void
phase_stop(struct job *j)
{
  Rpctrd__GetTaskRequest req;
  rpctrd__get_task_request__init(&req);
  req.container_id = j->pl->cid;
  jcall(j, RP_CTRD_TASKS "Get", &req.base, 0, task_read, "read the task");
}

/* --- starting: a task on the container's snapshot ------------------------- */

static void
new_task_deleted(void *arg, const uint8_t *msg, size_t len,
                 const struct rp_error *err)
{
  struct job *j = arg;
  (void)msg;
  (void)len;
  struct rp_error *e = j->error;
  j->error = NULL;
  if (err)
    rp_error_prefix(&e, "the task it created could not be deleted (%s)",
                    err->message);
  job_end(j, e);
  rp_error_free(e);
}

static void
task_started(void *arg, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  struct job *j = arg;
  if (err) {
    /* A task created and not started holds the snapshot: it goes. */
    j->error = rp_error_dup(err);
    rp_error_prefix(&j->error, "start the new task");
    Rpctrd__DeleteTaskRequest req;
    rpctrd__delete_task_request__init(&req);
    req.container_id = j->pl->cid;
    cleanup_error struct rp_error *e = NULL;
    if (call(j->pl->c, j->pl->ns, RP_CTRD_TASKS "Delete", &req.base, 0,
             new_task_deleted, j, &e) != 0)
      new_task_deleted(j, NULL, 0, e);
    return;
  }
  Rpctrd__StartTaskResponse *r =
      rpctrd__start_task_response__unpack(NULL, len, msg);
  if (r) {
    if (r->pid)
      json_object_set_new(j->pl->details, "new_pid", json_integer(r->pid));
    rpctrd__start_task_response__free_unpacked(r, NULL);
  }
  job_next(j);
}

static void
task_created(void *arg, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  struct job *j = arg;
  if (err) {
    job_fail(j, err, "create the new task");
    return;
  }
  Rpctrd__CreateTaskResponse *r =
      rpctrd__create_task_response__unpack(NULL, len, msg);
  if (r) {
    if (r->pid)
      json_object_set_new(j->pl->details, "new_pid", json_integer(r->pid));
    rpctrd__create_task_response__free_unpacked(r, NULL);
  }
  RP_CRASHPOINT("ctrd-after-create-task");
  Rpctrd__StartTaskRequest req;
  rpctrd__start_task_request__init(&req);
  req.container_id = j->pl->cid;
  jcall(j, RP_CTRD_TASKS "Start", &req.base, 0, task_started,
        "start the new task");
}

static void
mounts_read(void *arg, const uint8_t *msg, size_t len,
            const struct rp_error *err)
{
  struct job *j = arg;
  if (err) {
    job_fail(j, err, "mount the snapshot");
    return;
  }
  j->mounts = rpctrd__mounts_response__unpack(NULL, len, msg);
  if (!j->mounts) {
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EPROTO, "the answer does not decode");
    job_fail(j, e, "mount the snapshot");
    rp_error_free(e);
    return;
  }
  Rpctrd__CreateTaskRequest req;
  rpctrd__create_task_request__init(&req);
  req.container_id = j->pl->cid;
  req.rootfs = j->mounts->mounts;
  req.n_rootfs = j->mounts->n_mounts;
  /* No client holds FIFOs for this task: a log URI the container had, or
   * nothing (the shim gives the process /dev/null). */
  if (j->pl->log_uri) {
    req.stdout = j->pl->log_uri;
    req.stderr = j->pl->log_uri;
  }
  jcall(j, RP_CTRD_TASKS "Create", &req.base, 0, task_created,
        "create the new task");
}

static void
phase_start(struct job *j)
{
  Rpctrd__MountsRequest req;
  rpctrd__mounts_request__init(&req);
  req.snapshotter = j->pl->snapshotter;
  req.key = j->pl->snapshot_key;
  jcall(j, RP_CTRD_SNAPSHOTS "Mounts", &req.base, 0, mounts_read,
        "mount the snapshot");
}

/* --- reset: a fresh snapshot on the image's layers -------------------------
 */

static void
fresh_prepared(void *arg, const uint8_t *msg, size_t len,
               const struct rp_error *err)
{
  struct job *j = arg;
  (void)msg;
  (void)len;
  if (err) {
    job_fail(j, err,
             "the old snapshot is removed (nothing written in the container "
             "may survive) and a fresh one could not be prepared");
    return;
  }
  job_next(j);
}

static void
old_snapshot_removed(void *arg, const uint8_t *msg, size_t len,
                     const struct rp_error *err)
{
  struct job *j = arg;
  (void)msg;
  (void)len;
  if (err && err->code != RP_ENOTFOUND) {
    job_fail(j, err, "remove the old snapshot");
    return;
  }
  RP_CRASHPOINT("ctrd-after-remove-snapshot");
  Rpctrd__PrepareSnapshotRequest req;
  rpctrd__prepare_snapshot_request__init(&req);
  req.snapshotter = j->pl->snapshotter;
  req.key = j->pl->snapshot_key;
  req.parent = j->pl->base;
  jcall(j, RP_CTRD_SNAPSHOTS "Prepare", &req.base, 0, fresh_prepared,
        "prepare a fresh snapshot");
}

static void
no_task_left(void *arg, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  struct job *j = arg;
  (void)msg;
  (void)len;
  /* A task that still runs refuses Delete: its snapshot is then kept. */
  if (err && err->code != RP_ENOTFOUND) {
    job_fail(j, err, "make sure no task holds the snapshot");
    return;
  }
  Rpctrd__RemoveSnapshotRequest req;
  rpctrd__remove_snapshot_request__init(&req);
  req.snapshotter = j->pl->snapshotter;
  req.key = j->pl->snapshot_key;
  jcall(j, RP_CTRD_SNAPSHOTS "Remove", &req.base, 0, old_snapshot_removed,
        "remove the old snapshot");
}

static void
phase_reset(struct job *j)
{
  Rpctrd__DeleteTaskRequest req;
  rpctrd__delete_task_request__init(&req);
  req.container_id = j->pl->cid;
  jcall(j, RP_CTRD_TASKS "Delete", &req.base, 0, no_task_left,
        "make sure no task holds the snapshot");
}

/* --- remove: the container and its snapshot --------------------------------
 */

static void
snapshot_removed(void *arg, const uint8_t *msg, size_t len,
                 const struct rp_error *err)
{
  struct job *j = arg;
  (void)msg;
  (void)len;
  /* The container is deleted: an unreferenced snapshot goes with
   * containerd's garbage collection, so this is only said. */
  if (err && err->code != RP_ENOTFOUND)
    json_object_set_new(j->pl->details, "snapshot_error",
                        json_string(err->message));
  job_next(j);
}

static void
container_deleted(void *arg, const uint8_t *msg, size_t len,
                  const struct rp_error *err)
{
  struct job *j = arg;
  (void)msg;
  (void)len;
  if (err && err->code != RP_ENOTFOUND) {
    job_fail(j, err, "delete the container");
    return;
  }
  RP_CRASHPOINT("ctrd-after-delete-container");
  if (!j->pl->snapshot_key[0] || !j->pl->snapshotter[0]) {
    job_next(j);
    return;
  }
  Rpctrd__RemoveSnapshotRequest req;
  rpctrd__remove_snapshot_request__init(&req);
  req.snapshotter = j->pl->snapshotter;
  req.key = j->pl->snapshot_key;
  jcall(j, RP_CTRD_SNAPSHOTS "Remove", &req.base, 0, snapshot_removed,
        "remove the snapshot");
}

static void
phase_delete_container(struct job *j)
{
  Rpctrd__DeleteContainerRequest req;
  rpctrd__delete_container_request__init(&req);
  req.id = j->pl->cid;
  jcall(j, RP_CTRD_CONTAINERS "Delete", &req.base, 0, container_deleted,
        "delete the container");
}

/* --- the operations of phases ----------------------------------------------*/

int
rp_ctrd_op_stop(struct rp_provider *p, const char *id, int64_t grace_ms,
                rp_op_cb cb, void *arg, struct rp_error **err)
{
  static const phase_fn phases[] = {phase_stop};
  return job_run(p, id, grace_ms, phases, RP_ARRAY_LEN(phases), cb, arg, err);
}

int
rp_ctrd_op_start(struct rp_provider *p, const char *id, rp_op_cb cb, void *arg,
                 struct rp_error **err)
{
  static const phase_fn phases[] = {phase_start};
  return job_run(p, id, 0, phases, RP_ARRAY_LEN(phases), cb, arg, err);
}

int
rp_ctrd_op_restart(struct rp_provider *p, const char *id, int64_t grace_ms,
                   rp_op_cb cb, void *arg, struct rp_error **err)
{
  /* A new task on the same snapshot: what was written stays. */
  static const phase_fn phases[] = {phase_stop, phase_start};
  return job_run(p, id, grace_ms, phases, RP_ARRAY_LEN(phases), cb, arg, err);
}

int
rp_ctrd_op_remove(struct rp_provider *p, const char *id, int64_t grace_ms,
                  rp_op_cb cb, void *arg, struct rp_error **err)
{
  /* Stopped again first should its task run again. */
  static const phase_fn phases[] = {phase_stop, phase_delete_container};
  return job_run(p, id, grace_ms, phases, RP_ARRAY_LEN(phases), cb, arg, err);
}

int
rp_ctrd_op_reset(struct rp_provider *p, const char *id, void *plan, rp_op_cb cb,
                 void *arg, struct rp_error **err)
{
  static const phase_fn phases[] = {phase_reset};
  struct rp_ctrd_plan *pl = plan;
  if (!pl || !pl->base)
    return rp_error_set(err, EINVAL,
                        "nothing was prepared to renew its snapshot on");
  return job_run(p, id, 0, phases, RP_ARRAY_LEN(phases), cb, arg, err);
}

/* --- probe -----------------------------------------------------------------*/

struct probe {
  rp_probe_cb cb;
  void *arg;
};

static const char *
status_word(int status)
{
  switch (status) {
  case RPCTRD__TASK_STATUS__CREATED:
    return "created";
  case RPCTRD__TASK_STATUS__RUNNING:
    return "running";
  case RPCTRD__TASK_STATUS__STOPPED:
    return "stopped";
  case RPCTRD__TASK_STATUS__PAUSED:
    return "paused";
  case RPCTRD__TASK_STATUS__PAUSING:
    return "pausing";
  default:
    return "unknown";
  }
}

static void
probed(void *ctx, const uint8_t *msg, size_t len, const struct rp_error *err)
{
  struct probe pr = *(struct probe *)ctx;
  free(ctx);
  /* No task (or no container): the workload, a container with a task, is
   * gone. */
  struct rp_probe st = {.health = RP_HEALTH_NONE};
  if (err && err->code == RP_ENOTFOUND) {
    pr.cb(pr.arg, &st, NULL);
    return;
  }
  if (err) {
    pr.cb(pr.arg, NULL, err);
    return;
  }
  Rpctrd__GetTaskResponse *r =
      rpctrd__get_task_response__unpack(NULL, len, msg);
  if (!r || !r->process) {
    if (r)
      rpctrd__get_task_response__free_unpacked(r, NULL);
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EPROTO, "Tasks.Get: the answer does not decode");
    pr.cb(pr.arg, NULL, e);
    rp_error_free(e);
    return;
  }
  st.exists = true;
  st.running = r->process->status == RPCTRD__TASK_STATUS__RUNNING;
  st.exit_code = (int)r->process->exit_status;
  st.status = status_word(r->process->status);
  rpctrd__get_task_response__free_unpacked(r, NULL);
  pr.cb(pr.arg, &st, NULL);
}

int
rp_ctrd_op_probe(struct rp_provider *p, const char *id, rp_probe_cb cb,
                 void *arg, struct rp_error **err)
{
  struct rp_ctrd *c = p->ctx;
  char ns[80];
  const char *cid;
  if (rp_ctrd_split_id(id, ns, sizeof(ns), &cid) != 0)
    return rp_error_set(err, EINVAL, "provider %s: %s is not NAMESPACE/ID",
                        c->p->name, id);
  Rpctrd__GetTaskRequest req;
  rpctrd__get_task_request__init(&req);
  req.container_id = rp_ctrd_str(cid);
  struct probe *pr = rp_xcalloc(1, sizeof(*pr));
  *pr = (struct probe){.cb = cb, .arg = arg};
  if (call(c, ns, RP_CTRD_TASKS "Get", &req.base, 0, probed, pr, err) != 0) {
    free(pr);
    return -1;
  }
  return 0;
}

/* --- drain: the hook exec'd in the task ------------------------------------*/

/* As `ctr task exec` does it: the container's own process spec (user,
 * environment, working directory, capabilities) with the hook's argv, no
 * terminal; its output to a file:// log URI that the shim writes, read back
 * for the audit line. */
struct drain {
  struct rp_ctrd_plan *pl; /* borrowed */
  rp_drained_cb cb;
  void *arg;
  int64_t timeout_ms;
  char exec_id[64];
  char *dir;       /* owned: where its output file is, removed after */
  char *out;       /* owned: the output file */
  bool killed;     /* past its timeout */
  json_t *outcome; /* owned */
};

static void
drain_end(struct drain *dr)
{
  if (dr->out) {
    cleanup_fclose FILE *f = fopen(dr->out, "re");
    char buf[DRAIN_OUTPUT_MAX + 1];
    size_t n = f ? fread(buf, 1, DRAIN_OUTPUT_MAX, f) : 0;
    /* Plain text for the audit line, as docker's drain output. */
    for (size_t i = 0; i < n; i++) {
      unsigned char ch = (unsigned char)buf[i];
      if (!((ch >= 0x20 && ch < 0x7f) || ch == '\n' || ch == '\t'))
        buf[i] = '?';
    }
    buf[n] = '\0';
    if (f)
      json_object_set_new(dr->outcome, "output", json_stringn(buf, n));
    unlink(dr->out);
  }
  if (dr->dir)
    rmdir(dr->dir);
  dr->cb(dr->arg, dr->outcome);
  json_decref(dr->outcome);
  free(dr->out);
  free(dr->dir);
  free(dr);
}

/* A call past the first: one that cannot start ends the drain, said. */
static void
dcall(struct drain *dr, const char *method, const ProtobufCMessage *req,
      int64_t timeout_ms, rp_ctrd_call_cb then)
{
  cleanup_error struct rp_error *err = NULL;
  if (call(dr->pl->c, dr->pl->ns, method, req, timeout_ms, then, dr, &err) == 0)
    return;
  json_object_set_new(dr->outcome, "error", json_string(err->message));
  drain_end(dr);
}

static void
drain_deleted(void *arg, const uint8_t *msg, size_t len,
              const struct rp_error *err)
{
  struct drain *dr = arg;
  (void)msg;
  (void)len;
  if (err)
    rp_warn("provider %s: %s: delete the drain process: %s", dr->pl->c->p->name,
            dr->pl->wid, err->message);
  drain_end(dr);
}

static void
drain_delete(struct drain *dr)
{
  Rpctrd__DeleteProcessRequest req;
  rpctrd__delete_process_request__init(&req);
  req.container_id = dr->pl->cid;
  req.exec_id = dr->exec_id;
  dcall(dr, RP_CTRD_TASKS "DeleteProcess", &req.base, 0, drain_deleted);
}

static void drain_wait(struct drain *dr);

static void
drain_kill_sent(void *arg, const uint8_t *msg, size_t len,
                const struct rp_error *err)
{
  struct drain *dr = arg;
  (void)msg;
  (void)len;
  if (err) {
    json_object_set_new(dr->outcome, "kill_error", json_string(err->message));
    drain_end(dr);
    return;
  }
  drain_wait(dr);
}

static void
drain_waited(void *arg, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  struct drain *dr = arg;
  if (err && err->code == RP_ETIMEOUT && !dr->killed) {
    dr->killed = true;
    json_object_set_new(dr->outcome, "timed_out", json_true());
    json_object_set_new(dr->outcome, "error",
                        json_sprintf("timed out after %llds (killed)",
                                     (long long)(dr->timeout_ms / 1000)));
    Rpctrd__KillRequest req;
    rpctrd__kill_request__init(&req);
    req.container_id = dr->pl->cid;
    req.exec_id = dr->exec_id;
    req.signal = SIGKILL;
    dcall(dr, RP_CTRD_TASKS "Kill", &req.base, 0, drain_kill_sent);
    return;
  }
  if (err) {
    json_object_set_new(dr->outcome, "error", json_string(err->message));
  } else {
    Rpctrd__WaitResponse *r = rpctrd__wait_response__unpack(NULL, len, msg);
    if (r) {
      if (!dr->killed)
        json_object_set_new(dr->outcome, "exit_code",
                            json_integer(r->exit_status));
      rpctrd__wait_response__free_unpacked(r, NULL);
    }
  }
  drain_delete(dr);
}

static void
drain_wait(struct drain *dr)
{
  Rpctrd__WaitRequest req;
  rpctrd__wait_request__init(&req);
  req.container_id = dr->pl->cid;
  req.exec_id = dr->exec_id;
  int64_t t = dr->killed ? KILL_WAIT_MS : dr->timeout_ms;
  dcall(dr, RP_CTRD_TASKS "Wait", &req.base, t > 0 ? t : 1, drain_waited);
}

static void
drain_started(void *arg, const uint8_t *msg, size_t len,
              const struct rp_error *err)
{
  struct drain *dr = arg;
  (void)msg;
  (void)len;
  if (err) {
    json_object_set_new(dr->outcome, "error", json_string(err->message));
    drain_delete(dr);
    return;
  }
  drain_wait(dr);
}

static void
drain_execed(void *arg, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  struct drain *dr = arg;
  (void)msg;
  (void)len;
  if (err) {
    json_object_set_new(dr->outcome, "error", json_string(err->message));
    drain_end(dr);
    return;
  }
  Rpctrd__StartTaskRequest req;
  rpctrd__start_task_request__init(&req);
  req.container_id = dr->pl->cid;
  req.exec_id = dr->exec_id;
  dcall(dr, RP_CTRD_TASKS "Start", &req.base, 0, drain_started);
}

int
rp_ctrd_op_drain(struct rp_provider *p, const char *id, const char *const *argv,
                 int64_t timeout_ms, rp_drained_cb cb, void *arg,
                 struct rp_error **err)
{
  struct rp_ctrd_plan *pl = plan_find(p->ctx, id, err);
  if (!pl)
    return -1;
  if (!argv || !argv[0])
    return rp_error_set(err, EINVAL, "the drain hook is empty");
  if (pl->task_status != RPCTRD__TASK_STATUS__RUNNING)
    return rp_error_set(err, RP_ECONFLICT, "its task is %s, not running",
                        status_word(pl->task_status));
  json_t *process = json_object_get(pl->spec, "process");
  if (!json_is_object(process))
    return rp_error_set(err, RP_EPROTO,
                        "the container's spec has no process to model the "
                        "drain process on");
  cleanup_json json_t *ps = json_deep_copy(process);
  json_t *args = json_array();
  for (size_t i = 0; argv[i]; i++)
    json_array_append_new(args, json_string(argv[i]));
  json_object_set_new(ps, "args", args);
  json_object_set_new(ps, "terminal", json_false());
  json_object_del(ps, "consoleSize");
  cleanup_free char *ps_json = json_dumps(ps, JSON_COMPACT);

  struct drain *dr = rp_xcalloc(1, sizeof(*dr));
  dr->pl = pl;
  dr->cb = cb;
  dr->arg = arg;
  dr->timeout_ms = timeout_ms;
  dr->outcome = json_object();
  char tmpl[] = "/tmp/reaper-drain.XXXXXX";
  if (mkdtemp(tmpl)) {
    dr->dir = rp_xstrdup(tmpl);
    dr->out = rp_xasprintf("%s/output", tmpl);
  }
  snprintf(dr->exec_id, sizeof(dr->exec_id), "reaper-drain-%lld",
           (long long)rp_wall_ms());
  cleanup_free char *uri = dr->out ? rp_xasprintf("file://%s", dr->out) : NULL;
  Rpctrd__Any spec_any;
  rpctrd__any__init(&spec_any);
  spec_any.type_url = rp_ctrd_str(PROCESS_SPEC_URL);
  spec_any.value.data = (uint8_t *)ps_json;
  spec_any.value.len = strlen(ps_json);
  Rpctrd__ExecProcessRequest req;
  rpctrd__exec_process_request__init(&req);
  req.container_id = pl->cid;
  req.exec_id = dr->exec_id;
  req.spec = &spec_any;
  if (uri) {
    req.stdout = uri;
    req.stderr = uri;
  }
  rp_info("provider %s: %s: running the drain hook", pl->c->p->name, pl->wid);
  if (call(pl->c, pl->ns, RP_CTRD_TASKS "Exec", &req.base, 0, drain_execed, dr,
           err) != 0) {
    if (dr->dir)
      rmdir(dr->dir);
    json_decref(dr->outcome);
    free(dr->out);
    free(dr->dir);
    free(dr);
    return -1;
  }
  return 0;
}

/* --- prepare: read only ----------------------------------------------------*/

struct prep {
  struct rp_ctrd *c; /* borrowed */
  rp_prepared_cb cb;
  void *arg;
  struct rp_ctrd_plan *pl; /* owned until handed to the runner */
  json_t *labels;          /* owned: the container's */
};

static void
prep_free(struct prep *pp)
{
  json_decref(pp->labels);
  free(pp);
}

static void
prep_end(struct prep *pp, const struct rp_error *err)
{
  struct rp_ctrd_plan *pl = pp->pl;
  if (err) {
    pp->cb(pp->arg, NULL, err);
    plan_free(pl);
    prep_free(pp);
    return;
  }
  pl->next = pp->c->plans;
  pp->c->plans = pl;
  struct rp_prepared pr = {
      .plan = pl,
      .name = pl->cid,
      .running = task_runs(pl->task_status),
      /* The container keeps its id: a fresh snapshot for it, not a second
       * container beside it. */
      .in_place = pl->strategy == RP_STRATEGY_RECREATE,
      .details = pl->details,
  };
  pp->cb(pp->arg, &pr, NULL);
  prep_free(pp);
}

static void
prep_fail(struct prep *pp, const struct rp_error *err, const char *what)
{
  struct rp_error *e = rp_error_dup(err);
  rp_error_prefix(&e, "%s", what);
  prep_end(pp, e);
  rp_error_free(e);
}

static void prep_refuse(struct prep *pp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
prep_refuse(struct prep *pp, const char *fmt, ...)
{
  struct rp_error *e = NULL;
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&e, RP_ECONFLICT, fmt, ap);
  va_end(ap);
  prep_fail(pp, e, "refused");
  rp_error_free(e);
}

/* A call past the first: one that cannot start fails the preparation. */
static void
pcall(struct prep *pp, const char *method, const ProtobufCMessage *req,
      rp_ctrd_call_cb then, const char *what)
{
  cleanup_error struct rp_error *err = NULL;
  if (call(pp->c, pp->pl->ns, method, req, 0, then, pp, &err) != 0)
    prep_fail(pp, err, what);
}

static void
base_stat_read(void *arg, const uint8_t *msg, size_t len,
               const struct rp_error *err)
{
  struct prep *pp = arg;
  if (err) {
    prep_fail(pp, err,
              "find the image's unpacked layers (is the image still "
              "unpacked for this snapshotter?)");
    return;
  }
  Rpctrd__StatSnapshotResponse *r =
      rpctrd__stat_snapshot_response__unpack(NULL, len, msg);
  int kind = r && r->info ? r->info->kind : 0;
  if (r)
    rpctrd__stat_snapshot_response__free_unpacked(r, NULL);
  if (kind != 3) { /* committed */
    prep_refuse(pp, "the image's snapshot %s is not a committed one",
                pp->pl->base);
    return;
  }
  prep_end(pp, NULL);
}

static void
chain_cb(void *arg, const char *chain_id, const struct rp_error *err)
{
  struct prep *pp = arg;
  struct rp_ctrd_plan *pl = pp->pl;
  if (err && !pl->parent) {
    prep_fail(pp, err, "find the image's layers");
    return;
  }
  if (err)
    rp_warn("provider %s: %s: %s; recreating from the layers that ran",
            pp->c->p->name, pl->wid, err->message);
  if (chain_id && pl->parent && strcmp(chain_id, pl->parent) != 0) {
    rp_warn("provider %s: %s: image %s now names other layers than the ones "
            "that ran; recreating from those that ran",
            pp->c->p->name, pl->wid, pl->image);
    json_object_set_new(pl->details, "image_moved", json_true());
  }
  pl->base = rp_xstrdup(pl->parent ? pl->parent : chain_id);
  json_object_set_new(pl->details, "snapshot",
                      json_pack("{s:s, s:s, s:s}", "snapshotter",
                                pl->snapshotter, "key", pl->snapshot_key,
                                "parent", pl->base));
  Rpctrd__StatSnapshotRequest req;
  rpctrd__stat_snapshot_request__init(&req);
  req.snapshotter = pl->snapshotter;
  req.key = pl->base;
  pcall(pp, RP_CTRD_SNAPSHOTS "Stat", &req.base, base_stat_read,
        "find the image's unpacked layers");
}

static void
old_stat_read(void *arg, const uint8_t *msg, size_t len,
              const struct rp_error *err)
{
  struct prep *pp = arg;
  struct rp_ctrd_plan *pl = pp->pl;
  /* NotFound: a crash left it removed; the image's layers then say. */
  if (err && err->code != RP_ENOTFOUND) {
    prep_fail(pp, err, "stat the container's snapshot");
    return;
  }
  Rpctrd__StatSnapshotResponse *r =
      err ? NULL : rpctrd__stat_snapshot_response__unpack(NULL, len, msg);
  if (r && r->info && r->info->parent && r->info->parent[0])
    pl->parent = rp_xstrdup(r->info->parent);
  if (r)
    rpctrd__stat_snapshot_response__free_unpacked(r, NULL);
  cleanup_error struct rp_error *e = NULL;
  if (rp_ctrd_image_chain(pp->c, pl->ns, pl->image, chain_cb, pp, &e) != 0)
    chain_cb(pp, NULL, e);
}

/* A log URI outlives the client that set it; a FIFO path does not. */
static bool
is_log_uri(const char *s)
{
  return s &&
         (strncmp(s, "file://", 7) == 0 || strncmp(s, "binary://", 9) == 0);
}

static void
task_read_for_plan(void *arg, const uint8_t *msg, size_t len,
                   const struct rp_error *err)
{
  struct prep *pp = arg;
  struct rp_ctrd_plan *pl = pp->pl;
  if (err && err->code != RP_ENOTFOUND) {
    prep_fail(pp, err, "read the task");
    return;
  }
  Rpctrd__GetTaskResponse *r =
      err ? NULL : rpctrd__get_task_response__unpack(NULL, len, msg);
  uint32_t pid = 0;
  if (r && r->process) {
    pl->task_status = r->process->status;
    pid = r->process->pid;
    if (is_log_uri(r->process->stdout))
      pl->log_uri = rp_xstrdup(r->process->stdout);
  }
  if (r)
    rpctrd__get_task_response__free_unpacked(r, NULL);
  /* The restart monitor's label for where a restarted task logs. */
  const char *label = json_string_value(
      json_object_get(pp->labels, "containerd.io/restart.loguri"));
  if (!pl->log_uri && is_log_uri(label))
    pl->log_uri = rp_xstrdup(label);
  if (pl->log_uri)
    json_object_set_new(pl->details, "log_uri", json_string(pl->log_uri));
  if (pid)
    json_object_set_new(pl->details, "old_pid", json_integer(pid));
  if (pl->strategy != RP_STRATEGY_RECREATE) {
    prep_end(pp, NULL);
    return;
  }
  Rpctrd__StatSnapshotRequest req;
  rpctrd__stat_snapshot_request__init(&req);
  req.snapshotter = pl->snapshotter;
  req.key = pl->snapshot_key;
  pcall(pp, RP_CTRD_SNAPSHOTS "Stat", &req.base, old_stat_read,
        "stat the container's snapshot");
}

static void
container_read(void *arg, const uint8_t *msg, size_t len,
               const struct rp_error *err)
{
  struct prep *pp = arg;
  struct rp_ctrd_plan *pl = pp->pl;
  if (err) {
    prep_fail(pp, err, "read the container");
    return;
  }
  Rpctrd__GetContainerResponse *r =
      rpctrd__get_container_response__unpack(NULL, len, msg);
  if (!r || !r->container) {
    if (r)
      rpctrd__get_container_response__free_unpacked(r, NULL);
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EPROTO, "the answer does not decode");
    prep_fail(pp, e, "read the container");
    rp_error_free(e);
    return;
  }
  Rpctrd__Container *ct = r->container;
  pl->image = rp_xstrdup(ct->image ? ct->image : "");
  pl->snapshotter = rp_xstrdup(ct->snapshotter ? ct->snapshotter : "");
  pl->snapshot_key = rp_xstrdup(ct->snapshot_key ? ct->snapshot_key : "");
  pp->labels = json_object();
  for (size_t i = 0; i < ct->n_labels; i++)
    json_object_set_new(pp->labels, ct->labels[i]->key,
                        json_string(ct->labels[i]->value));
  if (ct->spec && ct->spec->value.len)
    pl->spec = json_loadb((const char *)ct->spec->value.data,
                          ct->spec->value.len, 0, NULL);
  rpctrd__get_container_response__free_unpacked(r, NULL);
  pl->stop_signal = rp_ctrd_stop_signal(pp->labels, pl->spec);
  const char *sname = sigabbrev_np(pl->stop_signal);
  cleanup_free char *sig = rp_xasprintf("SIG%s", sname ? sname : "?");
  json_object_set_new(pl->details, "stop_signal", json_string(sig));

  bool fresh = pl->strategy == RP_STRATEGY_RECREATE;
  bool new_task = fresh || pl->strategy == RP_STRATEGY_RESTART;
  if (fresh && (!pl->snapshot_key[0] || !pl->snapshotter[0])) {
    prep_refuse(pp, "the container's rootfs is not a snapshot, so recreate "
                    "cannot give it a fresh one; use strategy restart for it");
    return;
  }
  if (fresh && !pl->image[0]) {
    prep_refuse(pp, "the container names no image to recreate it from");
    return;
  }
  if (new_task && !pl->snapshot_key[0]) {
    prep_refuse(pp, "the container's rootfs is not a snapshot that reaper "
                    "can mount for a new task");
    return;
  }
  if (new_task && json_is_true(json_object_get(
                      json_object_get(pl->spec, "process"), "terminal"))) {
    prep_refuse(pp, "the container's process wants a terminal "
                    "(process.terminal), which a task that reaper creates "
                    "cannot have");
    return;
  }
  Rpctrd__GetTaskRequest req;
  rpctrd__get_task_request__init(&req);
  req.container_id = pl->cid;
  pcall(pp, RP_CTRD_TASKS "Get", &req.base, task_read_for_plan,
        "read the task");
}

int
rp_ctrd_op_prepare(struct rp_provider *p, const struct rp_workload *w,
                   const struct rp_recycle_spec *spec, rp_prepared_cb cb,
                   void *arg, struct rp_error **err)
{
  struct rp_ctrd *c = p->ctx;
  if (c->stopping)
    return rp_error_set(err, RP_ECANCELED, "provider %s is stopping",
                        c->p->name);
  if (spec->strategy != RP_STRATEGY_RECREATE &&
      spec->strategy != RP_STRATEGY_RESTART &&
      spec->strategy != RP_STRATEGY_STOP &&
      spec->strategy != RP_STRATEGY_REMOVE)
    return rp_error_set(err, RP_ECONFIG,
                        "provider %s: strategy %s does not apply to "
                        "containers",
                        c->p->name, rp_strategy_name(spec->strategy));
  char ns[80];
  const char *cid;
  if (rp_ctrd_split_id(w->id, ns, sizeof(ns), &cid) != 0)
    return rp_error_set(err, EINVAL, "provider %s: %s is not NAMESPACE/ID",
                        c->p->name, w->id);
  struct rp_ctrd_plan *pl = rp_xcalloc(1, sizeof(*pl));
  pl->c = c;
  pl->strategy = spec->strategy;
  snprintf(pl->ns, sizeof(pl->ns), "%s", ns);
  pl->wid = rp_xstrdup(w->id);
  pl->cid = rp_xstrdup(cid);
  pl->task_status = RPCTRD__TASK_STATUS__UNKNOWN;
  pl->details = json_object();
  struct prep *pp = rp_xcalloc(1, sizeof(*pp));
  pp->c = c;
  pp->cb = cb;
  pp->arg = arg;
  pp->pl = pl;
  Rpctrd__GetContainerRequest req;
  rpctrd__get_container_request__init(&req);
  req.id = pl->cid;
  if (call(c, pl->ns, RP_CTRD_CONTAINERS "Get", &req.base, 0, container_read,
           pp, err) != 0) {
    plan_free(pl);
    prep_free(pp);
    return -1;
  }
  /* Counted until release: the provider's stop waits for the recycle. */
  c->recycles_in_flight++;
  return 0;
}

void
rp_ctrd_op_release(struct rp_provider *p, void *plan)
{
  struct rp_ctrd *c = p->ctx;
  struct rp_ctrd_plan *pl = plan;
  if (pl) {
    for (struct rp_ctrd_plan **pp = &c->plans; *pp; pp = &(*pp)->next)
      if (*pp == pl) {
        *pp = pl->next;
        break;
      }
    plan_free(pl);
  }
  /* The recycle that prepare began has ended. */
  c->recycles_in_flight--;
  rp_ctrd_check_stopped(c);
}
