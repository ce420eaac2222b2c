/* drain-replace, as operations for the core's recycle runner (src/runner.c
 * orders them: prepare, cordon, probe until drained, replace, probe until
 * gone, remove; uncordon to undo before the replace action succeeded).
 *   prepare   every node read; refused (nothing done) when it is the last
 *             active node, when a manager's loss would lose the Raft
 *             quorum, or when another drain of the policy is in flight
 *             (rp_swarm_drain_check: the cluster is the source of truth)
 *   cordon    the WHOLE NodeSpec sent back with its version, availability
 *             drain, its labels kept plus reaper's mark (what uncordon
 *             restores; what other agents and crash recovery see)
 *   probe     first: pending while a task of a service still runs there,
 *             for at most drain_timeout (past it the replacement goes
 *             ahead, and the audit line says so); after the replace action:
 *             pending until the node is down (the machine is gone), for at
 *             most 10 minutes
 *   replace   a manager is demoted first, so that it leaves the Raft group
 *             before its machine goes; then the replace action, an argv
 *             without a shell, with the node in its environment
 *             (src/child.c), only while this agent holds the cluster's
 *             lease; then the mark notes that it ran (replaced_at): nobody
 *             undoes this drain any more
 *   remove    DELETE /nodes/{id}, forced only because it is down
 *   uncordon  availability (and a demoted manager's role) as they were, the
 *             mark removed */
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
/* The runner's own bound on the waits, beyond the provider's. */
#define SETTLE_SLACK_MS 60000

struct node_plan {
  struct rp_swarm_plan base; /* first: the plan is found by its id */
  char *policy;              /* owned, or NULL */
  int64_t drain_timeout_ms;
  json_t *node;                     /* owned: the node as last read */
  char *old_avail;                  /* owned: availability before the drain */
  char *old_role;                   /* owned: role before */
  int64_t cordoned_at, replaced_at; /* monotonic ms, 0 before */
  bool counted;                     /* tasks_at_drain is said */
  bool demoted;                     /* its role is worker now, by reaper */
  bool replaced;                    /* the replace action succeeded */
  bool down; /* seen down (or gone) since: it may be removed */
};

static const char *
pname(const struct rp_swarm *s)
{
  return s->p->name;
}

static void
plan_free(struct rp_swarm *s, struct node_plan *v)
{
  rp_swarm_plan_remove(s, &v->base);
  free(v->policy);
  json_decref(v->node);
  free(v->old_avail);
  free(v->old_role);
  free(v);
}

void
rp_swarm_node_release(struct rp_swarm *s, struct rp_swarm_plan *pl)
{
  plan_free(s, (struct node_plan *)pl);
}

static const char *
node_str(json_t *node, const char *obj, const char *key)
{
  json_t *o = obj ? json_object_get(node, obj) : node;
  return json_string_value(json_object_get(o, key));
}

static char *
node_path(const char *id)
{
  cleanup_free char *esc = rp_url_escape(id);
  return rp_xasprintf("/nodes/%s", esc);
}

/* POST /nodes/{id}/update at the version last read. */
static char *
update_path(const struct node_plan *v)
{
  json_int_t version = json_integer_value(
      json_object_get(json_object_get(v->node, "Version"), "Index"));
  cleanup_free char *esc = rp_url_escape(v->base.id);
  return rp_xasprintf("/nodes/%s/update?version=%lld", esc, (long long)version);
}

static void
keep_node(struct node_plan *v, json_t *node)
{
  json_decref(v->node);
  v->node = json_incref(node);
}

static bool
out_of_sequence(const struct rp_error *err)
{
  return err && err->message && strstr(err->message, "out of sequence");
}

static struct node_plan *
plan_for(struct rp_swarm *s, const char *id, void *plan, struct rp_error **err)
{
  struct node_plan *v = plan;
  if (!v || v->base.kind != RP_KIND_NODE || strcmp(v->base.id, id) != 0) {
    rp_error_set(err, EINVAL, "provider %s: no drain of node %s was prepared",
                 pname(s), id);
    return NULL;
  }
  return v;
}

/* Whether node v may be drained, given every node (`GET /nodes`); keeps it
 * as read, and what it was before (once). */
static int
check(struct node_plan *v, json_t *nodes, struct rp_error **err)
{
  char why[400];
  if (rp_swarm_drain_check(nodes, v->base.id, v->policy, why, sizeof(why)) != 0)
    return rp_error_set(err, RP_ECONFLICT, "refused: %s", why);
  size_t i;
  json_t *n;
  json_array_foreach(nodes, i, n)
  {
    const char *id = json_string_value(json_object_get(n, "ID"));
    if (id && strcmp(id, v->base.id) == 0)
      keep_node(v, n);
  }
  if (v->old_avail)
    return 0;
  json_t *spec = json_object_get(v->node, "Spec");
  const char *avail = json_string_value(json_object_get(spec, "Availability"));
  const char *role = json_string_value(json_object_get(spec, "Role"));
  /* A node that an earlier attempt left drained (its undoing failed) still
   * says in reaper's mark what it was before. */
  cleanup_json json_t *old_mark = rp_swarm_node_mark(v->node);
  if (json_string_value(json_object_get(old_mark, "availability")))
    avail = json_string_value(json_object_get(old_mark, "availability"));
  if (json_string_value(json_object_get(old_mark, "role")))
    role = json_string_value(json_object_get(old_mark, "role"));
  v->old_avail = rp_xstrdup(avail ? avail : "active");
  v->old_role = rp_xstrdup(role ? role : "worker");
  return 0;
}

/* --- one operation in flight: its calls and its end ------------------------
 */

struct op {
  struct rp_swarm *s;
  struct node_plan *v;
  rp_op_cb cb;        /* cordon, uncordon */
  rp_replaced_cb rcb; /* replace */
  void *arg;
  char **argv;     /* owned: replace's */
  json_t *outcome; /* owned: the replace action's, once it ran */
  int attempts;
  int64_t deadline; /* monotonic ms: the demoted manager's wait */
};

static struct op *
op_new(struct rp_swarm *s, struct node_plan *v, void *arg)
{
  struct op *o = rp_xcalloc(1, sizeof(*o));
  o->s = s;
  o->v = v;
  o->arg = arg;
  return o;
}

static void
op_end(struct op *o, const struct rp_error *err)
{
  if (o->rcb)
    o->rcb(o->arg, o->outcome, err);
  else
    o->cb(o->arg, err);
  rp_swarm_strv_free(o->argv);
  json_decref(o->outcome);
  free(o);
}

static void op_fail(struct op *o, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
op_fail(struct op *o, int code, const char *fmt, ...)
{
  cleanup_error struct rp_error *e = NULL;
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&e, code, fmt, ap);
  va_end(ap);
  op_end(o, e);
}

/* A call of the operation: the first one's failure to start is the
 * operation's (returned); a later one's ends it. */
static int
op_call(struct op *o, const char *method, const char *path, const json_t *body,
        rp_dockerapi_cb cb, struct rp_error **err)
{
  return rp_swarm_call(o->s, method, path, body, 0, cb, o, err);
}

static void
op_next(struct op *o, const char *method, const char *path, const json_t *body,
        rp_dockerapi_cb cb)
{
  cleanup_error struct rp_error *err = NULL;
  if (op_call(o, method, path, body, cb, &err) != 0)
    op_end(o, err);
}

/* --- prepare: the checks, read only ----------------------------------------*/

struct prep {
  struct rp_swarm *s;
  struct node_plan *v;
  rp_prepared_cb cb;
  void *arg;
};

static void
prep_nodes_cb(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct prep pp = *(struct prep *)arg;
  free(arg);
  struct node_plan *v = pp.v;
  cleanup_error struct rp_error *e = err ? rp_error_dup(err) : NULL;
  if (e)
    rp_error_prefix(&e, "list nodes");
  else
    check(v, r->body, &e);
  if (e) {
    plan_free(pp.s, v);
    pp.cb(pp.arg, NULL, e);
    return;
  }
  const char *host = node_str(v->node, "Description", "Hostname");
  const char *addr = node_str(v->node, "Status", "Addr");
  cleanup_json json_t *details = json_pack(
      "{s:s, s:s, s:s, s:s}", "availability_before", v->old_avail, "role",
      v->old_role, "hostname", host ? host : "", "addr", addr ? addr : "");
  /* The runner's bound on its waits; the drain's and the node's own are
   * this provider's (probe). */
  int64_t settle = v->drain_timeout_ms > DOWN_TIMEOUT_MS ? v->drain_timeout_ms
                                                         : DOWN_TIMEOUT_MS;
  struct rp_prepared pr = {
      .plan = v,
      .name = v->base.name,
      .running = true,
      .details = details,
      .settle_ms = settle + SETTLE_SLACK_MS,
  };
  pp.cb(pp.arg, &pr, NULL);
}

int
rp_swarm_node_prepare(struct rp_swarm *s, const struct rp_workload *w,
                      const struct rp_recycle_spec *spec, rp_prepared_cb cb,
                      void *arg, struct rp_error **err)
{
  if (!spec->replace_argv || !spec->replace_argv[0])
    return rp_error_set(err, RP_ECONFIG,
                        "provider %s: node %s: strategy drain-replace needs "
                        "the policy's replace action (an argv); nothing done",
                        pname(s), w->name);
  struct node_plan *v = rp_xcalloc(1, sizeof(*v));
  v->policy = spec->policy ? rp_xstrdup(spec->policy) : NULL;
  v->drain_timeout_ms = spec->drain_timeout_ms;
  rp_swarm_plan_add(s, &v->base, RP_KIND_NODE, w);
  struct prep *pp = rp_xcalloc(1, sizeof(*pp));
  *pp = (struct prep){.s = s, .v = v, .cb = cb, .arg = arg};
  if (rp_swarm_call(s, "GET", "/nodes", NULL, 0, prep_nodes_cb, pp, err) != 0) {
    free(pp);
    plan_free(s, v);
    s->recycles_in_flight--; /* no release will come */
    return -1;
  }
  return 0;
}

/* --- cordon: drained, with reaper's mark -----------------------------------*/

static int cordon_write(struct op *o, struct rp_error **err);

static void
cordon_reread_cb(void *arg, const struct rp_dockerapi_reply *r,
                 const struct rp_error *err)
{
  struct op *o = arg;
  cleanup_error struct rp_error *e = err ? rp_error_dup(err) : NULL;
  if (e)
    rp_error_prefix(&e, "list nodes");
  /* Read everything again, check again. */
  else if (check(o->v, r->body, &e) == 0 && cordon_write(o, &e) == 0)
    return;
  op_end(o, e);
}

static void
cordon_written_cb(void *arg, const struct rp_dockerapi_reply *r,
                  const struct rp_error *err)
{
  struct op *o = arg;
  struct node_plan *v = o->v;
  (void)r;
  if (out_of_sequence(err) && ++o->attempts < MAX_ATTEMPTS) {
    op_next(o, "GET", "/nodes", NULL, cordon_reread_cb);
    return;
  }
  if (!err) {
    v->cordoned_at = rp_mono_ms();
    rp_info("provider %s: node %s (%s) drained; waiting for its tasks to "
            "move (at most %llds)",
            pname(o->s), v->base.name, v->base.id,
            (long long)(v->drain_timeout_ms / 1000));
  }
  op_end(o, err);
}

static int
cordon_write(struct op *o, struct rp_error **err)
{
  struct node_plan *v = o->v;
  cleanup_json json_t *spec = json_deep_copy(json_object_get(v->node, "Spec"));
  if (!json_is_object(spec))
    return rp_error_set(err, RP_EPROTO, "the node has no Spec");
  json_t *labels = json_object_get(spec, "Labels");
  if (!json_is_object(labels)) {
    labels = json_object();
    json_object_set_new(spec, "Labels", labels);
  }
  char since[40];
  rp_format_time_ms(rp_wall_ms(), since, sizeof(since));
  cleanup_json json_t *mark =
      json_pack("{s:s?, s:s, s:s, s:s, s:s}", "policy", v->policy,
                "availability", v->old_avail, "role", v->old_role, "holder",
                o->s->holder, "since", since);
  cleanup_free char *mark_s = json_dumps(mark, JSON_COMPACT);
  json_object_set_new(labels, RP_SWARM_LABEL_MARK, json_string(mark_s));
  json_object_set_new(spec, "Availability", json_string("drain"));
  cleanup_free char *path = update_path(v);
  return op_call(o, "POST", path, spec, cordon_written_cb, err);
}

int
rp_swarm_op_cordon(struct rp_provider *p, const char *id, void *plan,
                   rp_op_cb cb, void *arg, struct rp_error **err)
{
  struct rp_swarm *s = p->ctx;
  struct node_plan *v = plan_for(s, id, plan, err);
  if (!v)
    return -1;
  if (s->stopping)
    return rp_error_set(err, RP_ECANCELED, "reaper stopped before the drain");
  if (!rp_swarm_lease_holding(s))
    return rp_error_set(err, RP_ECANCELED,
                        "this agent no longer holds the cluster's lease: not "
                        "draining");
  struct op *o = op_new(s, v, arg);
  o->cb = cb;
  if (cordon_write(o, err) != 0) {
    free(o);
    return -1;
  }
  return 0;
}

/* --- uncordon: the drain undone --------------------------------------------*/

static void uncordon_read_cb(void *arg, const struct rp_dockerapi_reply *r,
                             const struct rp_error *err);

static void
uncordon_written_cb(void *arg, const struct rp_dockerapi_reply *r,
                    const struct rp_error *err)
{
  struct op *o = arg;
  (void)r;
  if (out_of_sequence(err) && ++o->attempts < MAX_ATTEMPTS) {
    cleanup_free char *path = node_path(o->v->base.id);
    op_next(o, "GET", path, NULL, uncordon_read_cb);
    return;
  }
  if (!err)
    rp_info("provider %s: node %s: drain undone (availability %s)", pname(o->s),
            o->v->base.name, o->v->old_avail);
  op_end(o, err);
}

static void
uncordon_read_cb(void *arg, const struct rp_dockerapi_reply *r,
                 const struct rp_error *err)
{
  struct op *o = arg;
  struct node_plan *v = o->v;
  if (err) {
    op_end(o, err);
    return;
  }
  keep_node(v, r->body);
  cleanup_json json_t *spec = rp_swarm_node_undrained_spec(
      v->node, v->old_avail, v->demoted ? v->old_role : NULL);
  if (!spec) {
    op_fail(o, RP_EPROTO, "the node has no Spec");
    return;
  }
  cleanup_free char *path = update_path(v);
  op_next(o, "POST", path, spec, uncordon_written_cb);
}

/* Never refused while stopping: a stop undoes a drain. */
int
rp_swarm_op_uncordon(struct rp_provider *p, const char *id, void *plan,
                     rp_op_cb cb, void *arg, struct rp_error **err)
{
  struct rp_swarm *s = p->ctx;
  struct node_plan *v = plan_for(s, id, plan, err);
  if (!v)
    return -1;
  struct op *o = op_new(s, v, arg);
  o->cb = cb;
  cleanup_free char *path = node_path(id);
  if (op_call(o, "GET", path, NULL, uncordon_read_cb, err) != 0) {
    free(o);
    return -1;
  }
  return 0;
}

/* --- probe: drained, then gone ---------------------------------------------*/

struct look {
  struct rp_swarm *s;
  struct node_plan *v;
  rp_probe_cb cb;
  void *arg;
  json_t *details; /* owned */
};

static void
look_end(struct look *l, struct rp_probe *st, const struct rp_error *err)
{
  st->details = l->details;
  l->cb(l->arg, st, err);
  json_decref(l->details);
  free(l);
}

static void look_failed(struct look *l, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
look_failed(struct look *l, int code, const char *fmt, ...)
{
  cleanup_error struct rp_error *e = NULL;
  va_list ap;
  va_start(ap, fmt);
  rp_error_setv(&e, code, fmt, ap);
  va_end(ap);
  struct rp_probe st = {.exists = true, .running = true};
  look_end(l, &st, e);
}

static void
drained_look_cb(void *arg, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct look *l = arg;
  struct node_plan *v = l->v;
  int64_t now = rp_mono_ms();
  bool late = now >= v->cordoned_at + v->drain_timeout_ms;
  struct rp_probe st = {.exists = true, .running = true, .status = "draining"};
  if (err) {
    if (late) {
      look_failed(l, err->code, "wait for the drain: %s", err->message);
      return;
    }
    rp_warn("provider %s: node %s: reading its tasks: %s", pname(l->s),
            v->base.name, err->message);
    st.pending = true;
    look_end(l, &st, NULL);
    return;
  }
  size_t left = rp_swarm_tasks_active(r->body);
  if (!v->counted) {
    v->counted = true;
    json_object_set_new(l->details, "tasks_at_drain", json_integer(left));
  }
  if (left && !late) {
    st.pending = true;
    look_end(l, &st, NULL);
    return;
  }
  json_object_set_new(l->details, "drain_s",
                      json_real((double)(now - v->cordoned_at) / 1000.0));
  if (left) {
    json_object_set_new(l->details, "drain_timed_out", json_true());
    json_object_set_new(l->details, "tasks_left", json_integer(left));
    rp_warn("provider %s: node %s: %zu tasks still there after the drain "
            "timeout: replacing it anyway",
            pname(l->s), v->base.name, left);
  }
  st.status = "drained";
  look_end(l, &st, NULL);
}

static void
gone_look_cb(void *arg, const struct rp_dockerapi_reply *r,
             const struct rp_error *err)
{
  struct look *l = arg;
  struct node_plan *v = l->v;
  int64_t now = rp_mono_ms();
  if (err && err->code == RP_ENOTFOUND) {
    /* Someone (the action itself?) removed it already. */
    v->down = true;
    struct rp_probe st = {.exists = false, .status = "removed"};
    look_end(l, &st, NULL);
    return;
  }
  const char *state = err ? NULL : node_str(r->body, "Status", "State");
  if (state && strcmp(state, "down") == 0) {
    v->down = true;
    json_object_set_new(l->details, "down_s",
                        json_real((double)(now - v->replaced_at) / 1000.0));
    struct rp_probe st = {.exists = true, .status = "down"};
    look_end(l, &st, NULL);
    return;
  }
  if (now >= v->replaced_at + DOWN_TIMEOUT_MS) {
    look_failed(l, err ? err->code : RP_ETIMEOUT,
                "the replace action succeeded, but the node is still %s after "
                "%ds: it stays drained",
                err     ? "unreadable"
                : state ? state
                        : "up",
                DOWN_TIMEOUT_MS / 1000);
    return;
  }
  struct rp_probe st = {
      .exists = true, .running = true, .pending = true, .status = state};
  look_end(l, &st, NULL);
}

/* The provider is stopping: before the replace action, the drain is undone
 * (the runner's uncordon); after it, the node is left drained for the next
 * agent to take the lease (rp_swarm_sweep_marks removes it once it is
 * down). */
static void
look_stopping(void *arg)
{
  struct look *l = arg;
  if (l->v->replaced)
    look_failed(l, RP_ECANCELED,
                "reaper stopped while waiting for the replaced node to go "
                "down; it stays drained, and the next agent to take the "
                "lease removes it once it is down");
  else
    look_failed(l, RP_ECANCELED, "reaper stopped during the drain");
}

int
rp_swarm_node_probe(struct rp_swarm *s, struct rp_swarm_plan *pl,
                    rp_probe_cb cb, void *arg, struct rp_error **err)
{
  struct node_plan *v = (struct node_plan *)pl;
  struct look *l = rp_xcalloc(1, sizeof(*l));
  *l = (struct look){
      .s = s, .v = v, .cb = cb, .arg = arg, .details = json_object()};
  int rc;
  if (s->stopping) {
    rp_swarm_later(s, 0, look_stopping, l);
    return 0;
  }
  if (v->replaced) {
    cleanup_free char *path = node_path(v->base.id);
    rc = rp_swarm_call(s, "GET", path, NULL, 0, gone_look_cb, l, err);
  } else {
    cleanup_json json_t *f = json_pack("{s:[s]}", "node", v->base.id);
    cleanup_free char *fs = json_dumps(f, JSON_COMPACT);
    cleanup_free char *esc = rp_url_escape(fs);
    cleanup_free char *path = rp_xasprintf("/tasks?filters=%s", esc);
    rc = rp_swarm_call(s, "GET", path, NULL, 0, drained_look_cb, l, err);
  }
  if (rc != 0) {
    json_decref(l->details);
    free(l);
  }
  return rc;
}

/* --- replace: a manager demoted, the action, the mark ----------------------*/

static void replace_run(struct op *o);

static void
mark_written_cb(void *arg, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct op *o = arg;
  (void)r;
  /* Not being able to say it is no reason to stop here. */
  if (err)
    rp_warn("provider %s: node %s: noting the replacement in reaper's mark: "
            "%s",
            pname(o->s), o->v->base.name, err->message);
  op_end(o, NULL);
}

/* Whoever finds the mark next (another agent after a takeover, or crash
 * recovery) must not undo a drain whose machine is already going away: the
 * mark says when the action ran. */
static void
mark_read_cb(void *arg, const struct rp_dockerapi_reply *r,
             const struct rp_error *err)
{
  struct op *o = arg;
  struct node_plan *v = o->v;
  if (err) {
    mark_written_cb(o, r, err);
    return;
  }
  keep_node(v, r->body);
  cleanup_json json_t *mark = rp_swarm_node_mark(v->node);
  cleanup_json json_t *spec = json_deep_copy(json_object_get(v->node, "Spec"));
  json_t *labels = json_object_get(spec, "Labels");
  if (!mark || !json_is_object(labels)) {
    op_end(o, NULL);
    return;
  }
  char now[40];
  rp_format_time_ms(rp_wall_ms(), now, sizeof(now));
  json_object_set_new(mark, "replaced_at", json_string(now));
  cleanup_free char *mark_s = json_dumps(mark, JSON_COMPACT);
  json_object_set_new(labels, RP_SWARM_LABEL_MARK, json_string(mark_s));
  cleanup_free char *path = update_path(v);
  cleanup_error struct rp_error *e = NULL;
  if (op_call(o, "POST", path, spec, mark_written_cb, &e) != 0)
    mark_written_cb(o, NULL, e);
}

/* Why the action failed, in the words the audit line has always used;
 * NULL when it exited 0. */
static struct rp_error *
replace_error(const char *what, const struct rp_child_result *res)
{
  struct rp_error *e = NULL;
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
  struct op *o = arg;
  struct node_plan *v = o->v;
  cleanup_error struct rp_error *err = replace_error(o->argv[0], res);
  /* -1 when it did not exit by itself. */
  int64_t exit_status =
      res->spawn_error || res->term_signal ? -1 : res->exit_code;
  o->outcome =
      json_pack("{s:I, s:s, s:b, s:f}", "exit_status", (json_int_t)exit_status,
                "output", res->output, "timed_out", res->timed_out,
                "duration_s", (double)res->duration_ms / 1000.0);
  if (res->term_signal)
    json_object_set_new(o->outcome, "signal", json_integer(res->term_signal));
  if (res->truncated)
    json_object_set_new(o->outcome, "output_truncated", json_true());
  if (err) {
    op_end(o, err);
    return;
  }
  v->replaced = true;
  v->replaced_at = rp_mono_ms();
  rp_info("provider %s: node %s: replace action done; waiting for the node "
          "to go down",
          pname(o->s), v->base.name);
  cleanup_free char *path = node_path(v->base.id);
  cleanup_error struct rp_error *e = NULL;
  if (op_call(o, "GET", path, NULL, mark_read_cb, &e) != 0)
    mark_written_cb(o, NULL, e);
}

static void
replace_ready_cb(void *arg, const struct rp_dockerapi_reply *r,
                 const struct rp_error *err)
{
  struct op *o = arg;
  struct node_plan *v = o->v;
  if (err) {
    op_fail(o, err->code, "read the node before its replacement: %s",
            err->message);
    return;
  }
  keep_node(v, r->body);
  if (o->s->stopping) {
    op_fail(o, RP_ECANCELED, "reaper stopped during the drain");
    return;
  }
  /* The action is what cannot be undone: only the agent that holds the
   * lease runs it, even if it lost the lease in the middle of the drain. */
  if (!rp_swarm_lease_holding(o->s)) {
    op_fail(o, RP_ECANCELED,
            "this agent no longer holds the cluster's lease: not replacing");
    return;
  }
  char **env = rp_swarm_replace_env(v->node, getenv("PATH"));
  rp_info("provider %s: node %s (%s): running the replace action %s",
          pname(o->s), v->base.name, v->base.id, o->argv[0]);
  cleanup_error struct rp_error *serr = NULL;
  /* As src/child.h runs every program: the node's environment alone, no
   * descriptor of reaper's, SIGTERM to its group at the timeout and
   * SIGKILL 5 s later.  Its timeout is its own (10 minutes, swarm.md), not
   * the policy's drain_timeout. */
  struct rp_child_options co = {
      .argv = o->argv,
      .env = env,
      .timeout_ms = REPLACE_TIMEOUT_MS,
      .max_output = RP_SWARM_OUTPUT_MAX,
  };
  int rc = rp_child_run(o->s->p->loop, &co, replaced_cb, o, NULL, &serr);
  rp_swarm_strv_free(env);
  if (rc != 0)
    op_end(o, serr);
}

static void
replace_run(struct op *o)
{
  cleanup_free char *path = node_path(o->v->base.id);
  op_next(o, "GET", path, NULL, replace_ready_cb);
}

static void demoted_read_cb(void *arg, const struct rp_dockerapi_reply *r,
                            const struct rp_error *err);

static void
demoted_look(void *arg)
{
  struct op *o = arg;
  cleanup_free char *path = node_path(o->v->base.id);
  op_next(o, "GET", path, NULL, demoted_read_cb);
}

static void
demoted_read_cb(void *arg, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct op *o = arg;
  if (!err)
    keep_node(o->v, r->body);
  if (!err && !json_is_object(json_object_get(o->v->node, "ManagerStatus"))) {
    replace_run(o);
    return;
  }
  if (o->s->stopping) {
    op_fail(o, RP_ECANCELED, "reaper stopped during the drain");
    return;
  }
  if (rp_mono_ms() >= o->deadline) {
    op_fail(o, err ? err->code : RP_ETIMEOUT,
            "the demoted manager is still in the Raft group after %ds",
            DEMOTE_TIMEOUT_MS / 1000);
    return;
  }
  rp_swarm_later(o->s, POLL_MS, demoted_look, o);
}

static void demote_read_cb(void *arg, const struct rp_dockerapi_reply *r,
                           const struct rp_error *err);

static void
demote_written_cb(void *arg, const struct rp_dockerapi_reply *r,
                  const struct rp_error *err)
{
  struct op *o = arg;
  (void)r;
  if (out_of_sequence(err) && ++o->attempts < MAX_ATTEMPTS) {
    cleanup_free char *path = node_path(o->v->base.id);
    op_next(o, "GET", path, NULL, demote_read_cb);
    return;
  }
  if (err) {
    op_fail(o, err->code, "demote the manager: %s", err->message);
    return;
  }
  o->v->demoted = true;
  o->deadline = rp_mono_ms() + DEMOTE_TIMEOUT_MS;
  demoted_look(o);
}

static void
demote_read_cb(void *arg, const struct rp_dockerapi_reply *r,
               const struct rp_error *err)
{
  struct op *o = arg;
  if (err) {
    op_fail(o, err->code, "demote the manager: read it: %s", err->message);
    return;
  }
  keep_node(o->v, r->body);
  cleanup_json json_t *spec =
      json_deep_copy(json_object_get(o->v->node, "Spec"));
  json_object_set_new(spec, "Role", json_string("worker"));
  cleanup_free char *path = update_path(o->v);
  op_next(o, "POST", path, spec, demote_written_cb);
}

int
rp_swarm_op_replace(struct rp_provider *p, const char *id, void *plan,
                    const char *const *argv, int64_t timeout_ms,
                    rp_replaced_cb cb, void *arg, struct rp_error **err)
{
  (void)timeout_ms; /* the action's own bound: REPLACE_TIMEOUT_MS */
  struct rp_swarm *s = p->ctx;
  struct node_plan *v = plan_for(s, id, plan, err);
  if (!v)
    return -1;
  if (!argv || !argv[0])
    return rp_error_set(err, RP_ECONFIG, "no replace action");
  if (s->stopping)
    return rp_error_set(err, RP_ECANCELED, "reaper stopped during the drain");
  struct op *o = op_new(s, v, arg);
  o->rcb = cb;
  o->argv = rp_swarm_strv_dup(argv);
  bool manager = strcmp(v->old_role, "manager") == 0;
  cleanup_free char *path = node_path(id);
  if (op_call(o, "GET", path, NULL, manager ? demote_read_cb : replace_ready_cb,
              err) != 0) {
    rp_swarm_strv_free(o->argv);
    free(o);
    return -1;
  }
  return 0;
}

/* --- remove: once down
 * ------------------------------------------------------*/

static void
removed_cb(void *arg, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  struct op *o = arg;
  (void)r;
  if (err && err->code != RP_ENOTFOUND) {
    op_end(o, err);
    return;
  }
  rp_info("provider %s: node %s (%s) replaced and removed from the swarm",
          pname(o->s), o->v->base.name, o->v->base.id);
  op_end(o, NULL);
}

int
rp_swarm_node_remove(struct rp_swarm *s, struct rp_swarm_plan *pl, rp_op_cb cb,
                     void *arg, struct rp_error **err)
{
  struct node_plan *v = (struct node_plan *)pl;
  /* Forced only because it is down: never a node that still runs. */
  if (!v->down)
    return rp_error_set(err, RP_ECONFLICT,
                        "node %s is not down: it is not removed", v->base.name);
  struct op *o = op_new(s, v, arg);
  o->cb = cb;
  cleanup_free char *esc = rp_url_escape(v->base.id);
  cleanup_free char *path = rp_xasprintf("/nodes/%s?force=1", esc);
  if (op_call(o, "DELETE", path, NULL, removed_cb, err) != 0) {
    free(o);
    return -1;
  }
  return 0;
}
