/* drain-replace: a node past its age is drained, replaced by the policy's
 * replace action, and removed from the swarm once it is down.
 *
 *   check     every node read; refused (nothing done) when it is the last
 *             active node, when a manager's loss would lose the Raft
 *             quorum, or when another drain of the policy is in flight
 *             (rp_swarm_drain_check: the cluster is the source of truth)
 *   drain     the WHOLE NodeSpec sent back with its version, availability
 *             drain, its labels kept plus reaper's mark (what a rollback
 *             restores; what other agents and crash recovery see)
 *   drained   until no task of a service runs there, within drain_timeout
 *             (past it the replacement goes ahead, and says so)
 *   demote    a manager leaves the Raft group before its machine goes
 *   replace   the replace action, an argv without a shell, with the node in
 *             its environment (src/child.c); only while this agent still holds
 *             the cluster's lease
 *   mark      the mark notes that the action ran (replaced_at): nobody
 *             undoes this drain any more
 *   down      until the node is down (the machine is gone)
 *   remove    DELETE /nodes/{id}, forced only because it is down
 *
 * When the replace action fails (or cannot run, or the lease was lost),
 * the drain is undone: availability and role as they were, the mark
 * removed; the recycle fails with rolled_back true.  Once the action has
 * succeeded nothing is undone: a node that does not go down stays drained
 * and the recycle fails saying so. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "log.h"
#include "swarm/swarm.h"
#include "util.h"

#define POLL_MS 1000
#define MAX_ATTEMPTS 3
#define REPLACE_TIMEOUT_MS (10 * 60 * 1000)
#define DOWN_TIMEOUT_MS (10 * 60 * 1000)
#define DEMOTE_TIMEOUT_MS 60000

enum step {
  S_CHECK, /* and the drain, written from its answer */
  S_DRAINED,
  S_DEMOTE,
  S_DEMOTED,
  S_REPLACE,
  S_MARK_REPLACED,
  S_DOWN,
  S_REMOVE,
  S_ROLLBACK,
};

struct nrc {
  struct rp_swarm *s; /* borrowed */
  rp_recycle_cb cb;
  void *arg;
  char *id;       /* owned */
  char *name;     /* owned */
  char *policy;   /* owned, or NULL */
  char **replace; /* owned argv */
  int64_t drain_timeout_ms;
  enum step step;
  int attempts;
  json_t *node;    /* owned: the node as last read */
  char *old_avail; /* owned: availability before the drain */
  char *old_role;  /* owned: role before */
  bool marked;     /* the drain and mark are written */
  bool demoted;
  int64_t deadline; /* monotonic ms, for the step waiting */
  int64_t step_started;
  json_t *details; /* owned: for the audit line */
  uv_timer_t timer;
  struct rp_error *error; /* owned: why it failed */
  bool rolled_back;
  bool after_action; /* the replace action succeeded: nothing is undone */
  struct rp_swarm_job job;
  bool cancelled;      /* the provider is stopping */
  bool cancel_handled; /* ...and this recycle is ending because of it */
};

static void step_run(struct nrc *v);
static void rollback(struct nrc *v);

static const char *
pname(const struct nrc *v)
{
  return v->s->p->name;
}

static void
nrc_free(struct nrc *v)
{
  free(v->id);
  free(v->name);
  free(v->policy);
  rp_swarm_strv_free(v->replace);
  json_decref(v->node);
  free(v->old_avail);
  free(v->old_role);
  json_decref(v->details);
  rp_error_free(v->error);
  free(v);
}

static void
closed_cb(uv_handle_t *h)
{
  struct nrc *v = h->data;
  struct rp_swarm *s = v->s;
  nrc_free(v);
  rp_swarm_recycle_ended(s);
}

static void
finish(struct nrc *v, int status)
{
  struct rp_recycle_result res = {
      .replacement_id = NULL, /* the new machine joins as a new node */
      .rolled_back = status != 0 && v->rolled_back,
      .details = v->details,
  };
  rp_swarm_job_remove(v->s, &v->job);
  v->cb(v->arg, status, &res, status == 0 ? NULL : v->error);
  uv_close((uv_handle_t *)&v->timer, closed_cb);
}

/* A failure: before the drain, nothing to undo; after the replace action,
 * nothing is undone; in between, the drain is undone. */
static void fail(struct nrc *v, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct nrc *v, int code, const char *fmt, ...)
{
  if (!v->error) {
    va_list ap;
    va_start(ap, fmt);
    rp_error_setv(&v->error, code, fmt, ap);
    va_end(ap);
  }
  if (!v->marked) {
    v->rolled_back = true;
    finish(v, -1);
    return;
  }
  if (v->after_action) {
    v->rolled_back = false;
    finish(v, -1);
    return;
  }
  rp_warn("provider %s: node %s: %s: undoing the drain", pname(v), v->name,
          v->error->message);
  v->step = S_ROLLBACK;
  v->attempts = 0;
  rollback(v);
}

/* --- API calls ---------------------------------------------------------- */

typedef void (*step_fn)(struct nrc *v, const struct rp_dockerapi_reply *r,
                        const struct rp_error *err);

struct pending {
  struct nrc *v;
  step_fn fn;
};

static void
pending_cb(void *arg, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  struct pending pd = *(struct pending *)arg;
  free(arg);
  pd.fn(pd.v, r, err);
}

static void
api(struct nrc *v, const char *method, const char *path, const json_t *body,
    step_fn fn)
{
  struct pending *pd = rp_xcalloc(1, sizeof(*pd));
  *pd = (struct pending){.v = v, .fn = fn};
  cleanup_error struct rp_error *err = NULL;
  if (rp_swarm_call(v->s, method, path, body, 0, pending_cb, pd, &err) != 0) {
    free(pd);
    struct rp_dockerapi_reply none = {0};
    fn(v, &none, err);
  }
}

static void
get_node(struct nrc *v, step_fn fn)
{
  cleanup_free char *esc = rp_url_escape(v->id);
  cleanup_free char *path = rp_xasprintf("/nodes/%s", esc);
  api(v, "GET", path, NULL, fn);
}

/* POST /nodes/{id}/update with the whole spec at the version last read. */
static void
update_node(struct nrc *v, json_t *spec, step_fn fn)
{
  json_int_t version = json_integer_value(
      json_object_get(json_object_get(v->node, "Version"), "Index"));
  cleanup_free char *esc = rp_url_escape(v->id);
  cleanup_free char *path =
      rp_xasprintf("/nodes/%s/update?version=%lld", esc, (long long)version);
  api(v, "POST", path, spec, fn);
}

static void
keep_node(struct nrc *v, const struct rp_dockerapi_reply *r)
{
  json_decref(v->node);
  v->node = json_incref(r->body);
}

static bool
out_of_sequence(const struct rp_error *err)
{
  return err && err->message && strstr(err->message, "out of sequence");
}

static bool stop_here(struct nrc *v);

static void
timer_cb(uv_timer_t *t)
{
  struct nrc *v = t->data;
  if (stop_here(v))
    return;
  step_run(v);
}

/* The provider is stopping: before the drain, nothing is done; during it,
 * the drain is undone; after the replace action, the node is left drained
 * for the next agent to take the lease (rp_swarm_sweep_marks removes it
 * once it is down). */
static void
cancelled_now(struct nrc *v)
{
  v->cancel_handled = true;
  if (v->after_action)
    fail(v, RP_ECANCELED,
         "reaper stopped while waiting for the replaced node to go down; it "
         "stays drained, and the next agent to take the lease removes it "
         "once it is down");
  else
    fail(v, RP_ECANCELED, "reaper stopped %s",
         v->marked ? "during the drain" : "before the drain");
}

/* Between two steps, or before waiting: where a stop takes effect. */
static bool
stop_here(struct nrc *v)
{
  if (!v->cancelled || v->cancel_handled)
    return false;
  cancelled_now(v);
  return true;
}

static void
cancel_cb(struct rp_swarm_job *job)
{
  struct nrc *v = (struct nrc *)((char *)job - offsetof(struct nrc, job));
  v->cancelled = true;
  /* Waiting: the stop takes effect at once, but from the loop, not under
   * the caller (its callback must not run inside stop()).  Otherwise a
   * call or the replace action is in flight: it takes effect when that
   * ends. */
  if (uv_is_active((uv_handle_t *)&v->timer))
    uv_timer_start(&v->timer, timer_cb, 0, 0);
}

static void
again_later(struct nrc *v)
{
  if (stop_here(v))
    return;
  uv_timer_start(&v->timer, timer_cb, POLL_MS, 0);
}

static void
next(struct nrc *v, enum step s)
{
  if (stop_here(v))
    return;
  v->step = s;
  v->attempts = 0;
  v->step_started = rp_mono_ms();
  step_run(v);
}

static const char *
node_str(struct nrc *v, const char *obj, const char *key)
{
  json_t *o = obj ? json_object_get(v->node, obj) : v->node;
  return json_string_value(json_object_get(o, key));
}

/* --- check and drain ---------------------------------------------------- */

static void
drained_written(struct nrc *v, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  (void)r;
  if (out_of_sequence(err) && ++v->attempts < MAX_ATTEMPTS) {
    v->step = S_CHECK; /* read everything again, check again */
    step_run(v);
    return;
  }
  if (err) {
    fail(v, err->code, "drain: %s", err->message);
    return;
  }
  v->marked = true;
  RP_CRASHPOINT("swarm-after-drain");
  rp_info("provider %s: node %s (%s) drained; waiting for its tasks to move "
          "(at most %llds)",
          pname(v), v->name, v->id, (long long)(v->drain_timeout_ms / 1000));
  v->deadline = rp_mono_ms() + v->drain_timeout_ms;
  next(v, S_DRAINED);
}

static void
checked(struct nrc *v, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  if (err) {
    fail(v, err->code, "list nodes: %s", err->message);
    return;
  }
  char why[400];
  if (rp_swarm_drain_check(r->body, v->id, v->policy, why, sizeof(why)) != 0) {
    fail(v, RP_ECONFLICT, "refused: %s", why);
    return;
  }
  size_t i;
  json_t *n;
  json_array_foreach(r->body, i, n)
  {
    const char *id = json_string_value(json_object_get(n, "ID"));
    if (id && strcmp(id, v->id) == 0) {
      json_decref(v->node);
      v->node = json_incref(n);
    }
  }
  json_t *spec = json_object_get(v->node, "Spec");
  if (!v->old_avail) {
    const char *avail =
        json_string_value(json_object_get(spec, "Availability"));
    const char *role = json_string_value(json_object_get(spec, "Role"));
    /* A node that an earlier attempt left drained (its rollback failed)
     * still says in reaper's mark what it was before. */
    cleanup_json json_t *old_mark = rp_swarm_node_mark(v->node);
    if (json_string_value(json_object_get(old_mark, "availability")))
      avail = json_string_value(json_object_get(old_mark, "availability"));
    if (json_string_value(json_object_get(old_mark, "role")))
      role = json_string_value(json_object_get(old_mark, "role"));
    v->old_avail = rp_xstrdup(avail ? avail : "active");
    v->old_role = rp_xstrdup(role ? role : "worker");
    json_object_set_new(v->details, "availability_before",
                        json_string(v->old_avail));
    json_object_set_new(v->details, "role", json_string(v->old_role));
    const char *host = node_str(v, "Description", "Hostname");
    const char *addr = node_str(v, "Status", "Addr");
    json_object_set_new(v->details, "hostname", json_string(host ? host : ""));
    json_object_set_new(v->details, "addr", json_string(addr ? addr : ""));
  }
  cleanup_json json_t *new_spec = json_deep_copy(spec);
  json_t *labels = json_object_get(new_spec, "Labels");
  if (!json_is_object(labels)) {
    labels = json_object();
    json_object_set_new(new_spec, "Labels", labels);
  }
  char since[40];
  rp_format_time_ms(rp_wall_ms(), since, sizeof(since));
  cleanup_json json_t *mark =
      json_pack("{s:s?, s:s, s:s, s:s, s:s}", "policy", v->policy,
                "availability", v->old_avail, "role", v->old_role, "holder",
                v->s->holder, "since", since);
  cleanup_free char *mark_s = json_dumps(mark, JSON_COMPACT);
  json_object_set_new(labels, RP_SWARM_LABEL_MARK, json_string(mark_s));
  json_object_set_new(new_spec, "Availability", json_string("drain"));
  update_node(v, new_spec, drained_written);
}

/* --- waiting for the tasks to leave -------------------------------------- */

static void
tasks_read(struct nrc *v, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  bool late = rp_mono_ms() >= v->deadline;
  if (err) {
    if (late) {
      fail(v, err->code, "wait for the drain: %s", err->message);
      return;
    }
    rp_warn("provider %s: node %s: reading its tasks: %s", pname(v), v->name,
            err->message);
    again_later(v);
    return;
  }
  size_t left = rp_swarm_tasks_active(r->body);
  if (!json_object_get(v->details, "tasks_at_drain"))
    json_object_set_new(v->details, "tasks_at_drain", json_integer(left));
  if (left == 0 || late) {
    json_object_set_new(
        v->details, "drain_s",
        json_real((double)(rp_mono_ms() - v->step_started) / 1000.0));
    if (left) {
      json_object_set_new(v->details, "drain_timed_out", json_true());
      json_object_set_new(v->details, "tasks_left", json_integer(left));
      rp_warn("provider %s: node %s: %zu tasks still there after the drain "
              "timeout: replacing it anyway",
              pname(v), v->name, left);
    }
    bool manager = v->old_role && strcmp(v->old_role, "manager") == 0;
    next(v, manager ? S_DEMOTE : S_REPLACE);
    return;
  }
  again_later(v);
}

/* --- a manager leaves the Raft group first -------------------------------- */

static void
demote_written(struct nrc *v, const struct rp_dockerapi_reply *r,
               const struct rp_error *err)
{
  (void)r;
  if (out_of_sequence(err) && ++v->attempts < MAX_ATTEMPTS) {
    step_run(v);
    return;
  }
  if (err) {
    fail(v, err->code, "demote the manager: %s", err->message);
    return;
  }
  v->demoted = true;
  v->deadline = rp_mono_ms() + DEMOTE_TIMEOUT_MS;
  next(v, S_DEMOTED);
}

static void
demote_read(struct nrc *v, const struct rp_dockerapi_reply *r,
            const struct rp_error *err)
{
  if (err) {
    fail(v, err->code, "demote the manager: read it: %s", err->message);
    return;
  }
  keep_node(v, r);
  cleanup_json json_t *spec = json_deep_copy(json_object_get(v->node, "Spec"));
  json_object_set_new(spec, "Role", json_string("worker"));
  update_node(v, spec, demote_written);
}

static void
demoted_read(struct nrc *v, const struct rp_dockerapi_reply *r,
             const struct rp_error *err)
{
  if (!err)
    keep_node(v, r);
  if (!err && !json_is_object(json_object_get(v->node, "ManagerStatus"))) {
    next(v, S_REPLACE);
    return;
  }
  if (rp_mono_ms() >= v->deadline) {
    fail(v, err ? err->code : RP_ETIMEOUT,
         "the demoted manager is still in the Raft group after %ds",
         DEMOTE_TIMEOUT_MS / 1000);
    return;
  }
  again_later(v);
}

/* --- the replace action ----------------------------------------------------
 */

/* Why the action failed, in the words the audit line has always used;
 * NULL when it exited 0. */
static struct rp_error *
replace_error(const struct nrc *v, const struct rp_child_result *res)
{
  struct rp_error *e = NULL;
  const char *what = v->replace[0];
  if (res->spawn_error)
    rp_error_set(&e, res->spawn_error == -ENOENT ? ENOENT : EIO,
                 "%s: cannot be run: %s", what, uv_strerror(res->spawn_error));
  else if (res->timed_out)
    rp_error_set(&e, RP_ETIMEOUT, "%s: still running after %llds: killed", what,
                 (long long)(REPLACE_TIMEOUT_MS / 1000));
  else if (res->term_signal)
    rp_error_set(&e, EIO, "%s: killed by signal %d (%s)", what,
                 res->term_signal, strsignal(res->term_signal));
  else if (res->exit_code != 0)
    rp_error_set(&e, EIO, "%s: exit status %lld", what,
                 (long long)res->exit_code);
  return e;
}

static void
replaced_cb(void *arg, const struct rp_child_result *res)
{
  struct nrc *v = arg;
  cleanup_error struct rp_error *err = replace_error(v, res);
  /* -1 when it did not exit by itself. */
  int64_t exit_status =
      res->spawn_error || res->term_signal ? -1 : res->exit_code;
  json_t *argv = json_array();
  for (char **a = v->replace; a && *a; a++)
    json_array_append_new(argv, json_string(*a));
  json_t *rep = json_pack("{s:o, s:I, s:s, s:b, s:f}", "argv", argv,
                          "exit_status", (json_int_t)exit_status, "output",
                          res->output, "timed_out", res->timed_out,
                          "duration_s", (double)res->duration_ms / 1000.0);
  if (res->term_signal)
    json_object_set_new(rep, "signal", json_integer(res->term_signal));
  if (res->truncated)
    json_object_set_new(rep, "output_truncated", json_true());
  json_object_set_new(v->details, "replace", rep);
  if (err) {
    fail(v, err->code, "replace action: %s", err->message);
    return;
  }
  v->after_action = true;
  RP_CRASHPOINT("swarm-after-replace");
  rp_info("provider %s: node %s: replace action done; waiting for the node "
          "to go down",
          pname(v), v->name);
  v->deadline = rp_mono_ms() + DOWN_TIMEOUT_MS;
  next(v, S_MARK_REPLACED);
}

static void
replace_ready(struct nrc *v, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  if (err) {
    fail(v, err->code, "read the node before its replacement: %s",
         err->message);
    return;
  }
  keep_node(v, r);
  /* The action is what cannot be undone: only the agent that holds the
   * lease runs it, even if it lost the lease in the middle of the drain. */
  if (!rp_swarm_lease_held(v->s)) {
    fail(v, RP_ECANCELED,
         "this agent no longer holds the cluster's lease: not replacing");
    return;
  }
  const char *path = getenv("PATH");
  char **env = rp_swarm_replace_env(v->node, path);
  rp_info("provider %s: node %s (%s): running the replace action %s", pname(v),
          v->name, v->id, v->replace[0]);
  cleanup_error struct rp_error *serr = NULL;
  /* As src/child.h runs every program: the node's environment alone, no
   * descriptor of reaper's, SIGTERM to its group at the timeout and
   * SIGKILL 5 s later. */
  struct rp_child_options o = {
      .argv = v->replace,
      .env = env,
      .timeout_ms = REPLACE_TIMEOUT_MS,
      .max_output = RP_SWARM_OUTPUT_MAX,
  };
  int rc = rp_child_run(v->s->p->loop, &o, replaced_cb, v, NULL, &serr);
  rp_swarm_strv_free(env);
  if (rc != 0)
    fail(v, serr->code, "replace action: %s", serr->message);
}

/* --- the mark says the machine is going ------------------------------- */

/* Whoever finds the mark next (another agent after a takeover, or crash
 * recovery) must not undo a drain whose machine is already going away: the
 * mark says when the action ran.  Not being able to say it is no reason to
 * stop here. */
static void
mark_written(struct nrc *v, const struct rp_dockerapi_reply *r,
             const struct rp_error *err)
{
  (void)r;
  if (err)
    rp_warn("provider %s: node %s: noting the replacement in reaper's mark: "
            "%s",
            pname(v), v->name, err->message);
  next(v, S_DOWN);
}

static void
mark_read(struct nrc *v, const struct rp_dockerapi_reply *r,
          const struct rp_error *err)
{
  if (err) {
    mark_written(v, r, err);
    return;
  }
  keep_node(v, r);
  cleanup_json json_t *spec = json_deep_copy(json_object_get(v->node, "Spec"));
  json_t *labels = json_object_get(spec, "Labels");
  cleanup_json json_t *mark = rp_swarm_node_mark(v->node);
  if (!mark) {
    next(v, S_DOWN);
    return;
  }
  char now[40];
  rp_format_time_ms(rp_wall_ms(), now, sizeof(now));
  json_object_set_new(mark, "replaced_at", json_string(now));
  cleanup_free char *mark_s = json_dumps(mark, JSON_COMPACT);
  json_object_set_new(labels, RP_SWARM_LABEL_MARK, json_string(mark_s));
  update_node(v, spec, mark_written);
}

/* --- down, then removed ------------------------------------------------- */

static void
removed(struct nrc *v, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  (void)r;
  if (err && err->code != RP_ENOTFOUND) {
    fail(v, err->code, "remove the node: %s", err->message);
    return;
  }
  json_object_set_new(v->details, "removed", json_true());
  rp_info("provider %s: node %s (%s) replaced and removed from the swarm",
          pname(v), v->name, v->id);
  finish(v, 0);
}

static void
down_read(struct nrc *v, const struct rp_dockerapi_reply *r,
          const struct rp_error *err)
{
  if (err && err->code == RP_ENOTFOUND) {
    /* Someone (the action itself?) removed it already. */
    json_object_set_new(v->details, "removed", json_true());
    finish(v, 0);
    return;
  }
  if (!err) {
    keep_node(v, r);
    const char *state = node_str(v, "Status", "State");
    if (state && strcmp(state, "down") == 0) {
      json_object_set_new(
          v->details, "down_s",
          json_real((double)(rp_mono_ms() - v->step_started) / 1000.0));
      next(v, S_REMOVE);
      return;
    }
  }
  if (rp_mono_ms() >= v->deadline) {
    fail(v, err ? err->code : RP_ETIMEOUT,
         "the replace action succeeded, but the node is still %s after %ds: "
         "it stays drained",
         err ? "unreadable" : node_str(v, "Status", "State"),
         DOWN_TIMEOUT_MS / 1000);
    return;
  }
  again_later(v);
}

/* --- rollback ---------------------------------------------------------------
 */

static void
restored(struct nrc *v, const struct rp_dockerapi_reply *r,
         const struct rp_error *err)
{
  (void)r;
  if (out_of_sequence(err) && ++v->attempts < MAX_ATTEMPTS) {
    rollback(v);
    return;
  }
  if (err) {
    rp_error_prefix(&v->error, "the drain could not be undone (%s)",
                    err->message);
    v->rolled_back = false;
  } else {
    rp_info("provider %s: node %s: drain undone (availability %s)", pname(v),
            v->name, v->old_avail);
    v->rolled_back = true;
  }
  finish(v, -1);
}

static void
rollback_read(struct nrc *v, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  if (err) {
    rp_error_prefix(&v->error, "the drain could not be undone (%s)",
                    err->message);
    v->rolled_back = false;
    finish(v, -1);
    return;
  }
  keep_node(v, r);
  cleanup_json json_t *spec = json_deep_copy(json_object_get(v->node, "Spec"));
  json_object_set_new(spec, "Availability", json_string(v->old_avail));
  if (v->demoted)
    json_object_set_new(spec, "Role", json_string(v->old_role));
  json_object_del(json_object_get(spec, "Labels"), RP_SWARM_LABEL_MARK);
  update_node(v, spec, restored);
}

static void
rollback(struct nrc *v)
{
  get_node(v, rollback_read);
}

/* --- the steps
 * ---------------------------------------------------------------- */

static void
step_run(struct nrc *v)
{
  switch (v->step) {
  case S_CHECK:
    api(v, "GET", "/nodes", NULL, checked);
    break;
  case S_DRAINED: {
    cleanup_json json_t *f = json_pack("{s:[s]}", "node", v->id);
    cleanup_free char *fs = json_dumps(f, JSON_COMPACT);
    cleanup_free char *esc = rp_url_escape(fs);
    cleanup_free char *path = rp_xasprintf("/tasks?filters=%s", esc);
    api(v, "GET", path, NULL, tasks_read);
    break;
  }
  case S_DEMOTE:
    get_node(v, demote_read);
    break;
  case S_DEMOTED:
    get_node(v, demoted_read);
    break;
  case S_REPLACE:
    get_node(v, replace_ready);
    break;
  case S_MARK_REPLACED:
    get_node(v, mark_read);
    break;
  case S_DOWN:
    get_node(v, down_read);
    break;
  case S_REMOVE: {
    cleanup_free char *esc = rp_url_escape(v->id);
    /* Forced only now that it is down: never a node that still runs. */
    cleanup_free char *path = rp_xasprintf("/nodes/%s?force=1", esc);
    api(v, "DELETE", path, NULL, removed);
    break;
  }
  case S_ROLLBACK:
    rollback(v);
    break;
  }
}

int
rp_swarm_recycle_node(struct rp_swarm *s, const struct rp_workload *w,
                      const struct rp_recycle_spec *spec, rp_recycle_cb cb,
                      void *arg, struct rp_error **err)
{
  if (!spec->replace_argv || !spec->replace_argv[0])
    return rp_error_set(err, RP_ECONFIG,
                        "provider %s: node %s: strategy drain-replace needs "
                        "the policy's replace action (an argv); nothing done",
                        s->p->name, w->name);
  struct nrc *v = rp_xcalloc(1, sizeof(*v));
  v->s = s;
  v->cb = cb;
  v->arg = arg;
  v->id = rp_xstrdup(w->id);
  v->name = rp_xstrdup(w->name);
  v->policy = spec->policy ? rp_xstrdup(spec->policy) : NULL;
  v->replace = rp_swarm_strv_dup(spec->replace_argv);
  v->drain_timeout_ms = spec->drain_timeout_ms;
  v->details = json_object();
  uv_timer_init(s->p->loop, &v->timer);
  v->timer.data = v;
  v->job.cancel = cancel_cb;
  rp_swarm_job_add(s, &v->job);
  s->recycles_in_flight++;
  next(v, S_CHECK);
  return 0;
}
