/* Recycling one containerd container, step by step, each step one gRPC call
 * on the loop.  The plan of steps depends on the strategy:
 *
 *   recreate: container, task, stat snapshot, image chain, stat base,
 *             drain, stop task, delete task, remove snapshot, prepare
 *             snapshot, create task, start task, wait ready
 *   restart:  container, task, drain, stop task, delete task, mounts,
 *             create task, start task, wait ready
 *   stop:     container, task, drain, stop task, delete task
 *   remove:   container, task, drain, stop task, delete task, delete
 *             container, remove snapshot
 *
 * "Drain" runs the drain hook (the policy's drain or the reaper.drain
 * label), if any, as a process exec'd in the running task.
 *
 * "Stop task" is Kill with the container's stop signal (SIGTERM unless the
 * label or annotation io.containerd.image.config.stop-signal says another),
 * Wait for up to the grace period, then Kill SIGKILL to every process of
 * the task and Wait again.
 *
 * recreate keeps the container (same id, spec, labels, image, snapshotter,
 * snapshot key, runtime) and gives it a fresh rootfs: its active snapshot
 * is removed and prepared again on the committed snapshot of the image's
 * layers, so that nothing written into the container survives; then a new
 * task runs on it.  The base is the image's chain id (what ctr would use),
 * unless the old snapshot's parent differs: the image name then points at
 * other layers than the ones that ran, and the container is recreated from
 * those that ran (its spec was made for them).  Everything that can fail
 * without harm is checked before the old task is stopped: the container's
 * rootfs is a snapshot, the base snapshot exists, the spec asks for no
 * terminal.
 *
 * A failure is undone as far as it can be, and the error says how far:
 * before the old task is stopped nothing was done (rolled back); while the
 * old snapshot is still there, a task is started again on it (rolled back
 * when it runs); once the old snapshot is removed there is, by design,
 * nothing to go back to, and the error says the container is left without
 * a task.  Crash recovery (recover.c) finishes such a container. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "containerd.h"
#include "log.h"
#include "util.h"

/* A new task must stay up this long. */
#define SETTLE_MS 1500
#define POLL_MS 250
/* After SIGKILL, for the runtime's own work. */
#define KILL_WAIT_MS 30000
#define STEP_TIMEOUT_MS 30000
/* Crash recovery waits this long for a task it started to stay up. */
#define RESUME_READY_MS 60000

enum step {
  S_CONTAINER,
  S_TASK,
  S_STAT_OLD,
  S_IMAGE_CHAIN,
  S_STAT_BASE,
  S_DRAIN,
  S_STOP_TASK,
  S_DELETE_TASK,
  S_REMOVE_SNAPSHOT,
  S_PREPARE,
  S_MOUNTS,
  S_CREATE_TASK,
  S_START_TASK,
  S_WAIT_READY,
  S_DELETE_CONTAINER,
};

struct rc {
  struct rp_ctrd *c; /* borrowed */
  rp_recycle_cb cb;
  void *arg;
  enum rp_strategy strategy;
  int64_t grace_ms, health_timeout_ms;

  enum step plan[16];
  size_t n_plan, pc;

  char ns[80];
  char *wid; /* owned: "NS/ID" */
  char *cid; /* owned */

  /* the container, as read at the start */
  char *image;        /* owned */
  char *snapshotter;  /* owned */
  char *snapshot_key; /* owned */
  json_t *labels;     /* owned */
  json_t *spec;       /* owned: the OCI spec, or NULL */
  int stop_signal;

  /* its task */
  bool had_task;
  int task_status;
  uint32_t old_pid;
  char *log_uri; /* owned: the stdout/stderr a new task gets, or NULL */

  char *parent; /* owned: the old snapshot's parent (the layers that ran) */
  char *chain;  /* owned: the image's chain id now */
  char *base;   /* borrowed: parent or chain, what is prepared on */
  Rpctrd__Mount **mounts; /* owned (by mounts_msg): the new task's rootfs */
  size_t n_mounts;
  ProtobufCMessage *mounts_msg; /* owned: the answer holding them */

  bool escalated;        /* SIGKILL was sent */
  bool stopped;          /* the old task is stopped */
  bool task_deleted;     /* the old task is deleted */
  bool snapshot_removed; /* the old snapshot is gone */
  bool task_created;     /* a new task exists */
  uint32_t new_pid;

  uv_timer_t timer;
  int64_t ready_deadline, running_since;

  json_t *details;        /* owned: what goes to the audit line */
  struct rp_error *error; /* owned: the failure being reported */
  int rollback_step;
  bool rolled_back;
  bool resume; /* crash recovery: a running task means nothing to do */

  /* the drain hook, an exec'd process in the task */
  char **drain; /* owned argv or NULL */
  int64_t drain_timeout_ms;
  char exec_id[64];
  char *drain_dir; /* owned: where its output file is, removed after */
  char *drain_out; /* owned: the output file */
  bool drain_killed;
};

static void advance(struct rc *rc);
static void fail(struct rc *rc, const struct rp_error *err, const char *what);

/* --- finishing ----------------------------------------------------------- */

static void
rc_free(struct rc *rc)
{
  free(rc->wid);
  free(rc->cid);
  free(rc->image);
  free(rc->snapshotter);
  free(rc->snapshot_key);
  if (rc->labels)
    json_decref(rc->labels);
  if (rc->spec)
    json_decref(rc->spec);
  free(rc->log_uri);
  free(rc->parent);
  free(rc->chain);
  if (rc->mounts_msg)
    protobuf_c_message_free_unpacked(rc->mounts_msg, NULL);
  json_decref(rc->details);
  rp_error_free(rc->error);
  if (rc->drain)
    for (char **a = rc->drain; *a; a++)
      free(*a);
  free(rc->drain);
  if (rc->drain_out)
    unlink(rc->drain_out);
  if (rc->drain_dir)
    rmdir(rc->drain_dir);
  free(rc->drain_out);
  free(rc->drain_dir);
  free(rc);
}

static void
timer_closed_cb(uv_handle_t *h)
{
  struct rc *rc = h->data;
  struct rp_ctrd *c = rc->c;
  rc_free(rc);
  c->recycles_in_flight--;
  rp_ctrd_check_stopped(c);
}

static void
finish(struct rc *rc, int status, bool rolled_back)
{
  bool replaced = status == 0 && (rc->strategy == RP_STRATEGY_RECREATE ||
                                  rc->strategy == RP_STRATEGY_RESTART);
  if (replaced && rc->new_pid)
    json_object_set_new(rc->details, "new_pid", json_integer(rc->new_pid));
  struct rp_recycle_result res = {
      /* The container keeps its id: the replacement is its new task. */
      .replacement_id = replaced ? rc->wid : NULL,
      .rolled_back = rolled_back,
      .details = json_object_size(rc->details) ? rc->details : NULL,
  };
  rc->cb(rc->arg, status, &res, status == 0 ? NULL : rc->error);
  uv_close((uv_handle_t *)&rc->timer, timer_closed_cb);
}

/* --- calls --------------------------------------------------------------- */

typedef void (*step_ok_fn)(struct rc *rc, const uint8_t *msg, size_t len);
typedef void (*then_fn)(struct rc *rc, const uint8_t *msg, size_t len,
                        const struct rp_error *err);

struct pending {
  struct rc *rc;
  step_ok_fn ok;    /* on success */
  then_fn then;     /* instead: always, with the error */
  const char *what; /* for errors: "kill task" */
};

static void
pending_cb(void *arg, const uint8_t *msg, size_t len,
           const struct rp_error *err)
{
  struct pending pd = *(struct pending *)arg;
  free(arg);
  if (pd.then) {
    pd.then(pd.rc, msg, len, err);
    return;
  }
  if (err) {
    fail(pd.rc, err, pd.what);
    return;
  }
  pd.ok(pd.rc, msg, len);
}

static void
call(struct rc *rc, const char *method, const ProtobufCMessage *req,
     int64_t timeout_ms, const char *what, step_ok_fn ok)
{
  struct pending *pd = rp_xcalloc(1, sizeof(*pd));
  *pd = (struct pending){.rc = rc, .ok = ok, .what = what};
  cleanup_error struct rp_error *err = NULL;
  if (rp_ctrd_call(rc->c, rc->ns, method, req,
                   timeout_ms ? timeout_ms : STEP_TIMEOUT_MS, pending_cb, pd,
                   &err) != 0) {
    free(pd);
    fail(rc, err, what);
  }
}

static void
call_then(struct rc *rc, const char *method, const ProtobufCMessage *req,
          int64_t timeout_ms, then_fn then)
{
  struct pending *pd = rp_xcalloc(1, sizeof(*pd));
  *pd = (struct pending){.rc = rc, .then = then};
  cleanup_error struct rp_error *err = NULL;
  if (rp_ctrd_call(rc->c, rc->ns, method, req,
                   timeout_ms ? timeout_ms : STEP_TIMEOUT_MS, pending_cb, pd,
                   &err) != 0) {
    free(pd);
    then(rc, NULL, 0, err);
  }
}

static void
fail_proto(struct rc *rc, const char *what, const char *why)
{
  struct rp_error *e = NULL;
  rp_error_set(&e, RP_EPROTO, "%s", why);
  fail(rc, e, what);
  rp_error_free(e);
}

static void fail_refused(struct rc *rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail_refused(struct rc *rc, const char *fmt, ...)
{
  struct rp_error *e = NULL;
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&e, RP_ECONFLICT, fmt, ap);
  va_end(ap);
  fail(rc, e, "refused");
  rp_error_free(e);
}

/* --- reading the container ----------------------------------------------- */

static void
container_read(struct rc *rc, const uint8_t *msg, size_t len)
{
  Rpctrd__GetContainerResponse *r =
      rpctrd__get_container_response__unpack(NULL, len, msg);
  if (!r || !r->container) {
    if (r)
      rpctrd__get_container_response__free_unpacked(r, NULL);
    fail_proto(rc, "read container", "the answer does not decode");
    return;
  }
  Rpctrd__Container *ct = r->container;
  rc->image = rp_xstrdup(ct->image ? ct->image : "");
  rc->snapshotter = rp_xstrdup(ct->snapshotter ? ct->snapshotter : "");
  rc->snapshot_key = rp_xstrdup(ct->snapshot_key ? ct->snapshot_key : "");
  rc->labels = json_object();
  for (size_t i = 0; i < ct->n_labels; i++)
    json_object_set_new(rc->labels, ct->labels[i]->key,
                        json_string(ct->labels[i]->value));
  if (ct->spec && ct->spec->value.len)
    rc->spec = json_loadb((const char *)ct->spec->value.data,
                          ct->spec->value.len, 0, NULL);
  rpctrd__get_container_response__free_unpacked(r, NULL);
  rc->stop_signal = rp_ctrd_stop_signal(rc->labels, rc->spec);
  const char *sname = sigabbrev_np(rc->stop_signal);
  cleanup_free char *sig = rp_xasprintf("SIG%s", sname ? sname : "?");
  json_object_set_new(rc->details, "stop_signal", json_string(sig));

  bool fresh = rc->strategy == RP_STRATEGY_RECREATE;
  bool new_task = fresh || rc->strategy == RP_STRATEGY_RESTART;
  if (fresh && (!rc->snapshot_key[0] || !rc->snapshotter[0])) {
    fail_refused(rc, "the container's rootfs is not a snapshot, so recreate "
                     "cannot give it a fresh one; use strategy restart for it");
    return;
  }
  if (fresh && !rc->image[0]) {
    fail_refused(rc, "the container names no image to recreate it from");
    return;
  }
  if (new_task && !rc->snapshot_key[0]) {
    fail_refused(rc, "the container's rootfs is not a snapshot that reaper "
                     "can mount for a new task");
    return;
  }
  if (new_task && json_is_true(json_object_get(
                      json_object_get(rc->spec, "process"), "terminal"))) {
    fail_refused(rc, "the container's process wants a terminal "
                     "(process.terminal), which a task that reaper creates "
                     "cannot have");
    return;
  }
  advance(rc);
}

static void
step_container(struct rc *rc)
{
  Rpctrd__GetContainerRequest req;
  rpctrd__get_container_request__init(&req);
  req.id = rc->cid;
  call(rc, RP_CTRD_CONTAINERS "Get", &req.base, 0, "read container",
       container_read);
}

/* A log URI outlives the client that set it; a FIFO path does not. */
static bool
is_log_uri(const char *s)
{
  return s &&
         (strncmp(s, "file://", 7) == 0 || strncmp(s, "binary://", 9) == 0);
}

static void
task_read(struct rc *rc, const uint8_t *msg, size_t len,
          const struct rp_error *err)
{
  if (err && err->code != RP_ENOTFOUND) {
    fail(rc, err, "read task");
    return;
  }
  Rpctrd__GetTaskResponse *r =
      err ? NULL : rpctrd__get_task_response__unpack(NULL, len, msg);
  if (r && r->process) {
    rc->had_task = true;
    rc->task_status = r->process->status;
    rc->old_pid = r->process->pid;
    if (is_log_uri(r->process->stdout))
      rc->log_uri = rp_xstrdup(r->process->stdout);
  }
  if (r)
    rpctrd__get_task_response__free_unpacked(r, NULL);
  /* The restart monitor's label for where a restarted task logs. */
  const char *label = json_string_value(
      json_object_get(rc->labels, "containerd.io/restart.loguri"));
  if (!rc->log_uri && is_log_uri(label))
    rc->log_uri = rp_xstrdup(label);
  if (rc->log_uri)
    json_object_set_new(rc->details, "log_uri", json_string(rc->log_uri));
  if (rc->old_pid)
    json_object_set_new(rc->details, "old_pid", json_integer(rc->old_pid));
  if (rc->resume && rc->had_task &&
      (rc->task_status == RPCTRD__TASK_STATUS__RUNNING ||
       rc->task_status == RPCTRD__TASK_STATUS__PAUSED ||
       rc->task_status == RPCTRD__TASK_STATUS__PAUSING)) {
    finish(rc, 1, false);
    return;
  }
  advance(rc);
}

static void
step_task(struct rc *rc)
{
  Rpctrd__GetTaskRequest req;
  rpctrd__get_task_request__init(&req);
  req.container_id = rc->cid;
  call_then(rc, RP_CTRD_TASKS "Get", &req.base, 0, task_read);
}

/* --- the base of the fresh snapshot -------------------------------------- */

static void
old_stat_read(struct rc *rc, const uint8_t *msg, size_t len,
              const struct rp_error *err)
{
  if (err && err->code != RP_ENOTFOUND) {
    fail(rc, err, "stat the container's snapshot");
    return;
  }
  Rpctrd__StatSnapshotResponse *r =
      err ? NULL : rpctrd__stat_snapshot_response__unpack(NULL, len, msg);
  if (r && r->info && r->info->parent && r->info->parent[0])
    rc->parent = rp_xstrdup(r->info->parent);
  if (r)
    rpctrd__stat_snapshot_response__free_unpacked(r, NULL);
  advance(rc);
}

static void
step_stat_old(struct rc *rc)
{
  Rpctrd__StatSnapshotRequest req;
  rpctrd__stat_snapshot_request__init(&req);
  req.snapshotter = rc->snapshotter;
  req.key = rc->snapshot_key;
  call_then(rc, RP_CTRD_SNAPSHOTS "Stat", &req.base, 0, old_stat_read);
}

static void
chain_cb(void *arg, const char *chain_id, const struct rp_error *err)
{
  struct rc *rc = arg;
  if (err && !rc->parent) {
    fail(rc, err, "find the image's layers");
    return;
  }
  if (err)
    rp_warn("provider %s: %s: %s; recreating from the layers that ran",
            rc->c->p->name, rc->wid, err->message);
  if (chain_id)
    rc->chain = rp_xstrdup(chain_id);
  rc->base = rc->parent ? rc->parent : rc->chain;
  if (rc->chain && rc->parent && strcmp(rc->chain, rc->parent) != 0) {
    rp_warn("provider %s: %s: image %s now names other layers than the ones "
            "that ran; recreating from those that ran",
            rc->c->p->name, rc->wid, rc->image);
    json_object_set_new(rc->details, "image_moved", json_true());
  }
  json_object_set_new(rc->details, "snapshot",
                      json_pack("{s:s, s:s, s:s}", "snapshotter",
                                rc->snapshotter, "key", rc->snapshot_key,
                                "parent", rc->base));
  advance(rc);
}

static void
step_image_chain(struct rc *rc)
{
  cleanup_error struct rp_error *err = NULL;
  if (rp_ctrd_image_chain(rc->c, rc->ns, rc->image, chain_cb, rc, &err) != 0)
    chain_cb(rc, NULL, err);
}

static void
base_stat_read(struct rc *rc, const uint8_t *msg, size_t len)
{
  Rpctrd__StatSnapshotResponse *r =
      rpctrd__stat_snapshot_response__unpack(NULL, len, msg);
  int kind = r && r->info ? r->info->kind : 0;
  if (r)
    rpctrd__stat_snapshot_response__free_unpacked(r, NULL);
  if (kind != 3) { /* committed */
    fail_refused(rc, "the image's snapshot %s is not a committed one",
                 rc->base);
    return;
  }
  advance(rc);
}

static void
step_stat_base(struct rc *rc)
{
  Rpctrd__StatSnapshotRequest req;
  rpctrd__stat_snapshot_request__init(&req);
  req.snapshotter = rc->snapshotter;
  req.key = rc->base;
  call(rc, RP_CTRD_SNAPSHOTS "Stat", &req.base, 0,
       "find the image's unpacked layers (is the image still unpacked for "
       "this snapshotter?)",
       base_stat_read);
}

/* --- the drain hook ------------------------------------------------------ */

/* As `ctr task exec` does it: the container's own process spec (user,
 * environment, working directory, capabilities) with the hook's argv, no
 * terminal; its output to a file:// log URI that the shim writes, read back
 * for the audit line.  A drain never fails the recycle: what happened is
 * recorded and the stop goes ahead, as for docker's drain hooks. */

#define DRAIN_OUTPUT_MAX 2048
#define PROCESS_SPEC_URL                                                       \
  "types.containerd.io/opencontainers/runtime-spec/1/Process"

static void
drain_record(struct rc *rc, const char *key, json_t *value)
{
  json_t *d = json_object_get(rc->details, "drain");
  if (!d) {
    json_t *argv = json_array();
    for (char **a = rc->drain; a && *a; a++)
      json_array_append_new(argv, json_string(*a));
    d = json_pack("{s:o}", "argv", argv);
    json_object_set_new(rc->details, "drain", d);
  }
  json_object_set_new(d, key, value ? value : json_null());
}

static void
drain_done(struct rc *rc)
{
  if (rc->drain_out) {
    cleanup_fclose FILE *f = fopen(rc->drain_out, "re");
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
      drain_record(rc, "output", json_stringn(buf, n));
  }
  advance(rc);
}

static void
drain_deleted(struct rc *rc, const uint8_t *msg, size_t len,
              const struct rp_error *err)
{
  (void)msg;
  (void)len;
  if (err)
    rp_warn("provider %s: %s: delete the drain process: %s", rc->c->p->name,
            rc->wid, err->message);
  drain_done(rc);
}

static void
drain_delete(struct rc *rc)
{
  Rpctrd__DeleteProcessRequest req;
  rpctrd__delete_process_request__init(&req);
  req.container_id = rc->cid;
  req.exec_id = rc->exec_id;
  call_then(rc, RP_CTRD_TASKS "DeleteProcess", &req.base, 0, drain_deleted);
}

static void drain_wait(struct rc *rc);

static void
drain_kill_sent(struct rc *rc, const uint8_t *msg, size_t len,
                const struct rp_error *err)
{
  (void)msg;
  (void)len;
  if (err) {
    drain_record(rc, "kill_error", json_string(err->message));
    drain_done(rc);
    return;
  }
  drain_wait(rc);
}

static void
drain_waited(struct rc *rc, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  if (err && err->code == RP_ETIMEOUT && !rc->drain_killed) {
    rc->drain_killed = true;
    drain_record(rc, "error",
                 json_sprintf("timed out after %llds (killed)",
                              (long long)(rc->drain_timeout_ms / 1000)));
    Rpctrd__KillRequest req;
    rpctrd__kill_request__init(&req);
    req.container_id = rc->cid;
    req.exec_id = rc->exec_id;
    req.signal = SIGKILL;
    call_then(rc, RP_CTRD_TASKS "Kill", &req.base, 0, drain_kill_sent);
    return;
  }
  if (err) {
    drain_record(rc, "error", json_string(err->message));
  } else {
    Rpctrd__WaitResponse *r = rpctrd__wait_response__unpack(NULL, len, msg);
    if (r) {
      if (!rc->drain_killed)
        drain_record(rc, "exit_code", json_integer(r->exit_status));
      rpctrd__wait_response__free_unpacked(r, NULL);
    }
  }
  drain_delete(rc);
}

static void
drain_wait(struct rc *rc)
{
  Rpctrd__WaitRequest req;
  rpctrd__wait_request__init(&req);
  req.container_id = rc->cid;
  req.exec_id = rc->exec_id;
  int64_t t = rc->drain_killed ? KILL_WAIT_MS : rc->drain_timeout_ms;
  call_then(rc, RP_CTRD_TASKS "Wait", &req.base, t > 0 ? t : 1, drain_waited);
}

static void
drain_started(struct rc *rc, const uint8_t *msg, size_t len,
              const struct rp_error *err)
{
  (void)msg;
  (void)len;
  if (err) {
    drain_record(rc, "error", json_string(err->message));
    drain_delete(rc);
    return;
  }
  drain_wait(rc);
}

static void
drain_execed(struct rc *rc, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  (void)msg;
  (void)len;
  if (err) {
    drain_record(rc, "error", json_string(err->message));
    advance(rc);
    return;
  }
  Rpctrd__StartTaskRequest req;
  rpctrd__start_task_request__init(&req);
  req.container_id = rc->cid;
  req.exec_id = rc->exec_id;
  call_then(rc, RP_CTRD_TASKS "Start", &req.base, 0, drain_started);
}

static void
step_drain(struct rc *rc)
{
  if (!rc->drain || !rc->drain[0] || !rc->had_task ||
      rc->task_status != RPCTRD__TASK_STATUS__RUNNING) {
    advance(rc);
    return;
  }
  json_t *process = json_object_get(rc->spec, "process");
  if (!json_is_object(process)) {
    drain_record(rc, "error",
                 json_string("the container's spec has no process to "
                             "model the drain process on"));
    advance(rc);
    return;
  }
  rp_info("provider %s: %s: running the drain hook", rc->c->p->name, rc->wid);
  cleanup_json json_t *ps = json_deep_copy(process);
  json_t *argv = json_array();
  for (char **a = rc->drain; *a; a++)
    json_array_append_new(argv, json_string(*a));
  json_object_set_new(ps, "args", argv);
  json_object_set_new(ps, "terminal", json_false());
  json_object_del(ps, "consoleSize");
  cleanup_free char *ps_json = json_dumps(ps, JSON_COMPACT);
  char tmpl[] = "/tmp/reaper-drain.XXXXXX";
  if (mkdtemp(tmpl)) {
    rc->drain_dir = rp_xstrdup(tmpl);
    rc->drain_out = rp_xasprintf("%s/output", tmpl);
  }
  snprintf(rc->exec_id, sizeof(rc->exec_id), "reaper-drain-%lld",
           (long long)rp_wall_ms());
  cleanup_free char *uri =
      rc->drain_out ? rp_xasprintf("file://%s", rc->drain_out) : NULL;
  Rpctrd__Any spec_any;
  rpctrd__any__init(&spec_any);
  spec_any.type_url = rp_ctrd_str(PROCESS_SPEC_URL);
  spec_any.value.data = (uint8_t *)ps_json;
  spec_any.value.len = strlen(ps_json);
  Rpctrd__ExecProcessRequest req;
  rpctrd__exec_process_request__init(&req);
  req.container_id = rc->cid;
  req.exec_id = rc->exec_id;
  req.spec = &spec_any;
  if (uri) {
    req.stdout = uri;
    req.stderr = uri;
  }
  call_then(rc, RP_CTRD_TASKS "Exec", &req.base, 0, drain_execed);
}

/* --- stopping the old task ----------------------------------------------- */

static void send_kill(struct rc *rc, int sig);

static void
waited(struct rc *rc, const uint8_t *msg, size_t len,
       const struct rp_error *err)
{
  if (err && err->code == RP_ETIMEOUT && !rc->escalated) {
    rp_info("provider %s: %s did not stop within %llds: SIGKILL",
            rc->c->p->name, rc->wid, (long long)(rc->grace_ms / 1000));
    json_object_set_new(rc->details, "killed", json_true());
    rc->escalated = true;
    send_kill(rc, SIGKILL);
    return;
  }
  if (err && err->code != RP_ENOTFOUND) {
    fail(rc, err,
         rc->escalated ? "wait for the task after SIGKILL"
                       : "wait for the task to stop");
    return;
  }
  Rpctrd__WaitResponse *r =
      err ? NULL : rpctrd__wait_response__unpack(NULL, len, msg);
  if (r) {
    json_object_set_new(rc->details, "exit_status",
                        json_integer(r->exit_status));
    rpctrd__wait_response__free_unpacked(r, NULL);
  }
  rc->stopped = true;
  RP_CRASHPOINT("ctrd-after-stop");
  advance(rc);
}

static void
send_wait(struct rc *rc)
{
  Rpctrd__WaitRequest req;
  rpctrd__wait_request__init(&req);
  req.container_id = rc->cid;
  /* Wait's own timeout is the grace period: when it runs out, SIGKILL. */
  call_then(rc, RP_CTRD_TASKS "Wait", &req.base,
            rc->escalated ? KILL_WAIT_MS
                          : (rc->grace_ms > 0 ? rc->grace_ms : 1),
            waited);
}

static void
killed(struct rc *rc, const uint8_t *msg, size_t len,
       const struct rp_error *err)
{
  (void)msg;
  (void)len;
  /* NotFound: the process is already gone; Wait says how it ended. */
  if (err && err->code != RP_ENOTFOUND) {
    fail(rc, err, rc->escalated ? "kill the task (SIGKILL)" : "kill the task");
    return;
  }
  send_wait(rc);
}

static void
send_kill(struct rc *rc, int sig)
{
  Rpctrd__KillRequest req;
  rpctrd__kill_request__init(&req);
  req.container_id = rc->cid;
  req.signal = (uint32_t)sig;
  req.all = sig == SIGKILL;
  call_then(rc, RP_CTRD_TASKS "Kill", &req.base, 0, killed);
}

static void
step_stop_task(struct rc *rc)
{
  if (!rc->had_task) {
    rc->stopped = true; /* nothing runs */
    advance(rc);
    return;
  }
  if (rc->task_status != RPCTRD__TASK_STATUS__RUNNING &&
      rc->task_status != RPCTRD__TASK_STATUS__PAUSED &&
      rc->task_status != RPCTRD__TASK_STATUS__PAUSING) {
    rc->stopped = true;
    advance(rc);
    return;
  }
  rp_info("provider %s: %s: stopping its task (pid %u)", rc->c->p->name,
          rc->wid, rc->old_pid);
  send_kill(rc, rc->stop_signal);
}

static void
task_deleted(struct rc *rc, const uint8_t *msg, size_t len,
             const struct rp_error *err)
{
  (void)msg;
  (void)len;
  if (err && err->code != RP_ENOTFOUND) {
    fail(rc, err, "delete the stopped task");
    return;
  }
  rc->task_deleted = true;
  RP_CRASHPOINT("ctrd-after-delete-task");
  advance(rc);
}

static void
step_delete_task(struct rc *rc)
{
  if (!rc->had_task) {
    rc->task_deleted = true;
    advance(rc);
    return;
  }
  Rpctrd__DeleteTaskRequest req;
  rpctrd__delete_task_request__init(&req);
  req.container_id = rc->cid;
  call_then(rc, RP_CTRD_TASKS "Delete", &req.base, 0, task_deleted);
}

/* --- the fresh snapshot and the new task --------------------------------- */

static void
snapshot_removed(struct rc *rc, const uint8_t *msg, size_t len,
                 const struct rp_error *err)
{
  (void)msg;
  (void)len;
  if (err && err->code != RP_ENOTFOUND) {
    if (rc->strategy == RP_STRATEGY_REMOVE) {
      /* The container is deleted: the unreferenced snapshot goes with
       * containerd's garbage collection. */
      json_object_set_new(rc->details, "snapshot_error",
                          json_string(err->message));
      advance(rc);
      return;
    }
    fail(rc, err, "remove the old snapshot");
    return;
  }
  rc->snapshot_removed = true;
  RP_CRASHPOINT("ctrd-after-remove-snapshot");
  advance(rc);
}

static void
step_remove_snapshot(struct rc *rc)
{
  if (!rc->snapshot_key[0] || !rc->snapshotter[0]) {
    advance(rc);
    return;
  }
  Rpctrd__RemoveSnapshotRequest req;
  rpctrd__remove_snapshot_request__init(&req);
  req.snapshotter = rc->snapshotter;
  req.key = rc->snapshot_key;
  call_then(rc, RP_CTRD_SNAPSHOTS "Remove", &req.base, 0, snapshot_removed);
}

static void
prepared(struct rc *rc, const uint8_t *msg, size_t len)
{
  Rpctrd__PrepareSnapshotResponse *r =
      rpctrd__prepare_snapshot_response__unpack(NULL, len, msg);
  if (!r) {
    fail_proto(rc, "prepare a fresh snapshot", "the answer does not decode");
    return;
  }
  rc->mounts_msg = &r->base;
  rc->mounts = r->mounts;
  rc->n_mounts = r->n_mounts;
  RP_CRASHPOINT("ctrd-after-prepare");
  advance(rc);
}

static void
step_prepare(struct rc *rc)
{
  Rpctrd__PrepareSnapshotRequest req;
  rpctrd__prepare_snapshot_request__init(&req);
  req.snapshotter = rc->snapshotter;
  req.key = rc->snapshot_key;
  req.parent = rc->base;
  call(rc, RP_CTRD_SNAPSHOTS "Prepare", &req.base, 0,
       "prepare a fresh snapshot", prepared);
}

static void
mounts_read(struct rc *rc, const uint8_t *msg, size_t len)
{
  Rpctrd__MountsResponse *r = rpctrd__mounts_response__unpack(NULL, len, msg);
  if (!r) {
    fail_proto(rc, "mount the snapshot", "the answer does not decode");
    return;
  }
  if (rc->mounts_msg)
    protobuf_c_message_free_unpacked(rc->mounts_msg, NULL);
  rc->mounts_msg = &r->base;
  rc->mounts = r->mounts;
  rc->n_mounts = r->n_mounts;
  advance(rc);
}

static void
step_mounts(struct rc *rc)
{
  Rpctrd__MountsRequest req;
  rpctrd__mounts_request__init(&req);
  req.snapshotter = rc->snapshotter;
  req.key = rc->snapshot_key;
  call(rc, RP_CTRD_SNAPSHOTS "Mounts", &req.base, 0, "mount the snapshot",
       mounts_read);
}

static void
task_created(struct rc *rc, const uint8_t *msg, size_t len)
{
  Rpctrd__CreateTaskResponse *r =
      rpctrd__create_task_response__unpack(NULL, len, msg);
  if (r) {
    rc->new_pid = r->pid;
    rpctrd__create_task_response__free_unpacked(r, NULL);
  }
  rc->task_created = true;
  RP_CRASHPOINT("ctrd-after-create-task");
  advance(rc);
}

static void
create_task(struct rc *rc, step_ok_fn ok, then_fn then)
{
  Rpctrd__CreateTaskRequest req;
  rpctrd__create_task_request__init(&req);
  req.container_id = rc->cid;
  req.rootfs = rc->mounts;
  req.n_rootfs = rc->n_mounts;
  /* No client holds FIFOs for this task: a log URI the container had, or
   * nothing (the shim gives the process /dev/null). */
  if (rc->log_uri) {
    req.stdout = rc->log_uri;
    req.stderr = rc->log_uri;
  }
  if (then)
    call_then(rc, RP_CTRD_TASKS "Create", &req.base, 0, then);
  else
    call(rc, RP_CTRD_TASKS "Create", &req.base, 0, "create the new task", ok);
}

static void
step_create_task(struct rc *rc)
{
  create_task(rc, task_created, NULL);
}

static void
task_started(struct rc *rc, const uint8_t *msg, size_t len)
{
  Rpctrd__StartTaskResponse *r =
      rpctrd__start_task_response__unpack(NULL, len, msg);
  if (r) {
    if (r->pid)
      rc->new_pid = r->pid;
    rpctrd__start_task_response__free_unpacked(r, NULL);
  }
  RP_CRASHPOINT("ctrd-after-start");
  advance(rc);
}

static void
step_start_task(struct rc *rc)
{
  Rpctrd__StartTaskRequest req;
  rpctrd__start_task_request__init(&req);
  req.container_id = rc->cid;
  call(rc, RP_CTRD_TASKS "Start", &req.base, 0, "start the new task",
       task_started);
}

/* Waiting: the new task must be running for SETTLE_MS within the health
 * timeout (containerd has no health checks). */
static void poll_ready(struct rc *rc);

static void
poll_timer_cb(uv_timer_t *t)
{
  poll_ready(t->data);
}

static void
ready_read(struct rc *rc, const uint8_t *msg, size_t len)
{
  Rpctrd__GetTaskResponse *r =
      rpctrd__get_task_response__unpack(NULL, len, msg);
  int status = r && r->process ? r->process->status : 0;
  uint32_t exit_status = r && r->process ? r->process->exit_status : 0;
  if (r)
    rpctrd__get_task_response__free_unpacked(r, NULL);
  int64_t now = rp_mono_ms();
  struct rp_error *e = NULL;
  if (status == RPCTRD__TASK_STATUS__STOPPED) {
    rp_error_set(&e, RP_EENGINE, "it exited with status %u", exit_status);
  } else if (status == RPCTRD__TASK_STATUS__RUNNING) {
    if (!rc->running_since)
      rc->running_since = now;
    if (now - rc->running_since >= SETTLE_MS) {
      advance(rc);
      return;
    }
  }
  if (!e && now >= rc->ready_deadline)
    rp_error_set(&e, RP_ETIMEOUT, "not running within %llds",
                 (long long)(rc->health_timeout_ms / 1000));
  if (e) {
    fail(rc, e, "the new task");
    rp_error_free(e);
    return;
  }
  uv_timer_start(&rc->timer, poll_timer_cb, POLL_MS, 0);
}

static void
poll_ready(struct rc *rc)
{
  Rpctrd__GetTaskRequest req;
  rpctrd__get_task_request__init(&req);
  req.container_id = rc->cid;
  call(rc, RP_CTRD_TASKS "Get", &req.base, 0, "look at the new task",
       ready_read);
}

static void
step_wait_ready(struct rc *rc)
{
  rc->ready_deadline = rp_mono_ms() + rc->health_timeout_ms;
  rc->running_since = 0;
  uv_timer_start(&rc->timer, poll_timer_cb, POLL_MS, 0);
}

static void
container_deleted(struct rc *rc, const uint8_t *msg, size_t len)
{
  (void)msg;
  (void)len;
  RP_CRASHPOINT("ctrd-after-delete-container");
  advance(rc);
}

static void
step_delete_container(struct rc *rc)
{
  Rpctrd__DeleteContainerRequest req;
  rpctrd__delete_container_request__init(&req);
  req.id = rc->cid;
  call(rc, RP_CTRD_CONTAINERS "Delete", &req.base, 0, "delete the container",
       container_deleted);
}

static void
advance(struct rc *rc)
{
  if (rc->pc >= rc->n_plan) {
    finish(rc, 0, false);
    return;
  }
  switch (rc->plan[rc->pc++]) {
  case S_CONTAINER:
    step_container(rc);
    break;
  case S_TASK:
    step_task(rc);
    break;
  case S_STAT_OLD:
    step_stat_old(rc);
    break;
  case S_IMAGE_CHAIN:
    step_image_chain(rc);
    break;
  case S_STAT_BASE:
    step_stat_base(rc);
    break;
  case S_DRAIN:
    step_drain(rc);
    break;
  case S_STOP_TASK:
    step_stop_task(rc);
    break;
  case S_DELETE_TASK:
    step_delete_task(rc);
    break;
  case S_REMOVE_SNAPSHOT:
    step_remove_snapshot(rc);
    break;
  case S_PREPARE:
    step_prepare(rc);
    break;
  case S_MOUNTS:
    step_mounts(rc);
    break;
  case S_CREATE_TASK:
    step_create_task(rc);
    break;
  case S_START_TASK:
    step_start_task(rc);
    break;
  case S_WAIT_READY:
    step_wait_ready(rc);
    break;
  case S_DELETE_CONTAINER:
    step_delete_container(rc);
    break;
  }
}

/* --- failure and rollback ------------------------------------------------ */

static void rollback(struct rc *rc);

static void
rollback_then(struct rc *rc, const uint8_t *msg, size_t len,
              const struct rp_error *err)
{
  if (err) {
    rp_error_prefix(&rc->error, "rollback failed (%s)", err->message);
    rp_err("provider %s: %s: rollback step failed: %s", rc->c->p->name, rc->wid,
           err->message);
    rc->rollback_step = 99;
  } else if (rc->rollback_step == 1) {
    Rpctrd__MountsResponse *r = rpctrd__mounts_response__unpack(NULL, len, msg);
    if (rc->mounts_msg)
      protobuf_c_message_free_unpacked(rc->mounts_msg, NULL);
    rc->mounts_msg = r ? &r->base : NULL;
    rc->mounts = r ? r->mounts : NULL;
    rc->n_mounts = r ? r->n_mounts : 0;
  }
  rollback(rc);
}

/* Back to the old snapshot: a new task on it, as the old one ran. */
static void
rollback(struct rc *rc)
{
  switch (rc->rollback_step++) {
  case 0: {
    Rpctrd__MountsRequest req;
    rpctrd__mounts_request__init(&req);
    req.snapshotter = rc->snapshotter;
    req.key = rc->snapshot_key;
    call_then(rc, RP_CTRD_SNAPSHOTS "Mounts", &req.base, 0, rollback_then);
    return;
  }
  case 1:
    create_task(rc, NULL, rollback_then);
    return;
  case 2: {
    Rpctrd__StartTaskRequest req;
    rpctrd__start_task_request__init(&req);
    req.container_id = rc->cid;
    call_then(rc, RP_CTRD_TASKS "Start", &req.base, 0, rollback_then);
    return;
  }
  case 3:
    rp_error_prefix(&rc->error, "rolled back: a task runs again on the old "
                                "snapshot");
    finish(rc, -1, true);
    return;
  default:
    finish(rc, -1, false);
    return;
  }
}

static void
still_running(struct rc *rc, const uint8_t *msg, size_t len,
              const struct rp_error *err)
{
  Rpctrd__GetTaskResponse *r =
      err ? NULL : rpctrd__get_task_response__unpack(NULL, len, msg);
  bool running =
      r && r->process && r->process->status == RPCTRD__TASK_STATUS__RUNNING;
  if (r)
    rpctrd__get_task_response__free_unpacked(r, NULL);
  if (!running)
    rp_error_prefix(&rc->error, "the old task is no longer running");
  finish(rc, -1, running);
}

static void
new_task_deleted(struct rc *rc, const uint8_t *msg, size_t len,
                 const struct rp_error *err)
{
  (void)msg;
  (void)len;
  if (err)
    rp_error_prefix(&rc->error, "the new task could not be deleted (%s)",
                    err->message);
  finish(rc, -1, false);
}

static void
fail(struct rc *rc, const struct rp_error *err, const char *what)
{
  if (!rc->error) {
    rc->error = rp_error_dup(err);
    rp_error_prefix(&rc->error, "%s", what);
  }
  if (!rc->stopped && !rc->escalated && rc->pc > 0 &&
      rc->plan[rc->pc - 1] != S_STOP_TASK) {
    /* Nothing was done yet. */
    finish(rc, -1, true);
    return;
  }
  if (!rc->stopped) {
    /* The stop itself failed: the old task may still run. */
    Rpctrd__GetTaskRequest req;
    rpctrd__get_task_request__init(&req);
    req.container_id = rc->cid;
    call_then(rc, RP_CTRD_TASKS "Get", &req.base, 0, still_running);
    return;
  }
  if (rc->strategy == RP_STRATEGY_STOP || rc->strategy == RP_STRATEGY_REMOVE) {
    /* Stopped is what was asked; the rest (deleting) is said. */
    finish(rc, -1, false);
    return;
  }
  if (!rc->task_deleted) {
    rp_error_prefix(&rc->error, "the old task is stopped but not deleted");
    finish(rc, -1, false);
    return;
  }
  if (rc->strategy == RP_STRATEGY_RECREATE && !rc->snapshot_removed) {
    rollback(rc);
    return;
  }
  if (rc->task_created) {
    /* Created but not started, or started and not staying up. */
    rp_error_prefix(&rc->error, "the container is left without a task");
    Rpctrd__DeleteTaskRequest req;
    rpctrd__delete_task_request__init(&req);
    req.container_id = rc->cid;
    call_then(rc, RP_CTRD_TASKS "Delete", &req.base, 0, new_task_deleted);
    return;
  }
  rp_error_prefix(&rc->error,
                  rc->strategy == RP_STRATEGY_RECREATE
                      ? "the old snapshot is removed (nothing written in the "
                        "container may survive) and the container is left "
                        "without a task"
                      : "the container is left without a task");
  finish(rc, -1, false);
}

/* --- entry --------------------------------------------------------------- */

static void
add_steps(struct rc *rc, const enum step *steps, size_t n)
{
  for (size_t i = 0; i < n && rc->n_plan < RP_ARRAY_LEN(rc->plan); i++)
    rc->plan[rc->n_plan++] = steps[i];
}

static int
start_rc(struct rp_ctrd *c, const char *wid, enum rp_strategy strategy,
         int64_t grace_ms, int64_t health_timeout_ms,
         const char *const *drain_argv, int64_t drain_timeout_ms, bool resume,
         rp_recycle_cb cb, void *arg, struct rp_error **err)
{
  static const enum step recreate[] = {
      S_CONTAINER,       S_TASK,    S_STAT_OLD,    S_IMAGE_CHAIN,
      S_STAT_BASE,       S_DRAIN,   S_STOP_TASK,   S_DELETE_TASK,
      S_REMOVE_SNAPSHOT, S_PREPARE, S_CREATE_TASK, S_START_TASK,
      S_WAIT_READY};
  static const enum step restart[] = {
      S_CONTAINER, S_TASK,        S_DRAIN,      S_STOP_TASK, S_DELETE_TASK,
      S_MOUNTS,    S_CREATE_TASK, S_START_TASK, S_WAIT_READY};
  static const enum step stop[] = {S_CONTAINER, S_TASK, S_DRAIN, S_STOP_TASK,
                                   S_DELETE_TASK};
  static const enum step remove[] = {
      S_CONTAINER,        S_TASK,           S_DRAIN, S_STOP_TASK, S_DELETE_TASK,
      S_DELETE_CONTAINER, S_REMOVE_SNAPSHOT};
  if (c->stopping)
    return rp_error_set(err, RP_ECANCELED, "provider %s is stopping",
                        c->p->name);
  char ns[80];
  const char *cid;
  if (rp_ctrd_split_id(wid, ns, sizeof(ns), &cid) != 0)
    return rp_error_set(err, EINVAL, "provider %s: %s is not NAMESPACE/ID",
                        c->p->name, wid);
  struct rc *rc = rp_xcalloc(1, sizeof(*rc));
  rc->c = c;
  rc->cb = cb;
  rc->arg = arg;
  rc->strategy = strategy;
  rc->grace_ms = grace_ms;
  rc->health_timeout_ms = health_timeout_ms;
  rc->resume = resume;
  snprintf(rc->ns, sizeof(rc->ns), "%s", ns);
  rc->cid = rp_xstrdup(cid);
  rc->wid = rp_xstrdup(wid);
  rc->details = json_object();
  switch (strategy) {
  case RP_STRATEGY_RECREATE:
    add_steps(rc, recreate, RP_ARRAY_LEN(recreate));
    break;
  case RP_STRATEGY_RESTART:
    add_steps(rc, restart, RP_ARRAY_LEN(restart));
    break;
  case RP_STRATEGY_STOP:
    add_steps(rc, stop, RP_ARRAY_LEN(stop));
    break;
  case RP_STRATEGY_REMOVE:
    add_steps(rc, remove, RP_ARRAY_LEN(remove));
    break;
  default:
    rc_free(rc);
    return rp_error_set(err, RP_ECONFIG,
                        "provider %s: strategy %s does not apply to "
                        "containers",
                        c->p->name, rp_strategy_name(strategy));
  }
  if (drain_argv && drain_argv[0]) {
    size_t n = 0;
    while (drain_argv[n])
      n++;
    rc->drain = rp_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
      rc->drain[i] = rp_xstrdup(drain_argv[i]);
    rc->drain_timeout_ms = drain_timeout_ms;
  }
  uv_timer_init(c->p->loop, &rc->timer);
  rc->timer.data = rc;
  c->recycles_in_flight++;
  advance(rc);
  return 0;
}

int
rp_ctrd_recycle(struct rp_ctrd *c, const struct rp_workload *w,
                const struct rp_recycle_spec *spec, rp_recycle_cb cb, void *arg,
                struct rp_error **err)
{
  return start_rc(c, w->id, spec->strategy, spec->grace_ms,
                  spec->health_timeout_ms, spec->drain_argv,
                  spec->drain_timeout_ms, false, cb, arg, err);
}

int
rp_ctrd_resume(struct rp_ctrd *c, const char *wid, enum rp_strategy strategy,
               int64_t grace_ms, rp_recycle_cb cb, void *arg,
               struct rp_error **err)
{
  return start_rc(c, wid, strategy, grace_ms, RESUME_READY_MS, NULL, 0, true,
                  cb, arg, err);
}
