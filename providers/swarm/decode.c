/* Pure functions of API objects: no I/O and no clock, so that the unit
 * tests feed them what real managers answered (tests/unit/test_swarm_*.c).
 * jansson takes no const: the objects are borrowed and never changed. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "swarm/swarm.h"
#include "strv.h"
#include "util.h"

static const char *
str(json_t *o, const char *key)
{
  return json_string_value(json_object_get(o, key));
}

static bool
str_is(json_t *o, const char *key, const char *want)
{
  const char *v = str(o, key);
  return v && strcmp(v, want) == 0;
}

/* --- services ----------------------------------------------------------- */

json_t *
rp_swarm_group_tasks(json_t *tasks)
{
  json_t *by_service = json_object();
  size_t i;
  json_t *t;
  json_array_foreach(tasks, i, t)
  {
    json_t *status = json_object_get(t, "Status");
    const char *svc = str(t, "ServiceID");
    const char *id = str(t, "ID");
    int64_t ms = 0;
    if (!svc || !id || !str_is(t, "DesiredState", "running") ||
        !str_is(status, "State", "running"))
      continue;
    if (rp_parse_time_ms(str(status, "Timestamp"), &ms) != 0 || ms <= 0)
      continue;
    json_t *g = json_object_get(by_service, svc);
    if (!g) {
      g = json_pack("{s:I, s:[]}", "oldest", (json_int_t)ms, "tasks");
      json_object_set_new(by_service, svc, g);
    } else if (ms < json_integer_value(json_object_get(g, "oldest"))) {
      json_object_set_new(g, "oldest", json_integer(ms));
    }
    json_array_append_new(json_object_get(g, "tasks"), json_string(id));
  }
  return by_service;
}

/* Copies the string members of a label object. */
static void
copy_labels(json_t *to, json_t *from)
{
  const char *k;
  json_t *v;
  json_object_foreach(from, k, v)
  {
    if (json_is_string(v))
      json_object_set(to, k, v);
  }
}

struct rp_workload *
rp_swarm_service_workload(const char *provider, json_t *service, json_t *group,
                          const char *self_service)
{
  const char *id = str(service, "ID");
  json_t *spec = json_object_get(service, "Spec");
  const char *name = str(spec, "Name");
  json_t *oldest = json_object_get(group, "oldest");
  if (!id || !json_is_object(spec) || !json_is_integer(oldest) ||
      json_integer_value(oldest) <= 0)
    return NULL;
  if (name && strcmp(name, RP_SWARM_LEASE_SERVICE) == 0)
    return NULL;
  struct rp_workload *w = rp_workload_new(provider, RP_KIND_SERVICE, id, name,
                                          json_integer_value(oldest));
  w->service = rp_xstrdup(name); /* the replicas' one name */
  copy_labels(w->labels, json_object_get(spec, "Labels"));
  /* What it runs: swarm pins the reference to the digest it resolved at
   * create ("nginx:1.25@sha256:..."); the reference as given is the part
   * before it, the digest its content (fresh content). */
  const char *image = str(
      json_object_get(json_object_get(spec, "TaskTemplate"), "ContainerSpec"),
      "Image");
  const char *at = image ? strchr(image, '@') : NULL;
  if (image && at) {
    w->image.ref = rp_xstrndup(image, (size_t)(at - image));
    /* NAME@DIGEST: the reference without its tag. */
    const char *slash = memrchr(image, '/', (size_t)(at - image));
    const char *colon = memchr(slash ? slash : image, ':',
                               (size_t)(at - (slash ? slash : image)));
    size_t name_len = (size_t)((colon ? colon : at) - image);
    char *rd = rp_xasprintf("%.*s%s", (int)name_len, image, at);
    rp_strv_push(&w->image.repo_digests, rd);
    free(rd);
  } else if (image) {
    /* Not pinned (--no-resolve-image): each node resolves the tag itself. */
    w->image.ref = rp_xstrdup(image);
  }
  json_t *mode = json_object_get(spec, "Mode");
  const char *why = NULL;
  if (self_service && strcmp(self_service, id) == 0)
    why = "reaper's own service";
  else if (json_object_get(mode, "ReplicatedJob") ||
           json_object_get(mode, "GlobalJob"))
    why = "a job-mode service: its tasks run to completion";
  if (why)
    w->protected_reason = rp_xstrdup(why);
  return w;
}

/* --- nodes -------------------------------------------------------------- */

int
rp_swarm_parse_boot_time(const char *s, int64_t *out_ms)
{
  if (!s || !*s)
    return -1;
  bool digits = true;
  for (const char *c = s; *c; c++)
    if (!isdigit((unsigned char)*c))
      digits = false;
  if (digits) {
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    /* Seconds, and no later than year 9999. */
    if (errno || *end || v == 0 || v > 253402300799ULL)
      return -1;
    *out_ms = (int64_t)v * 1000;
    return 0;
  }
  int64_t ms = 0;
  if (rp_parse_time_ms(s, &ms) != 0 || ms <= 0)
    return -1;
  *out_ms = ms;
  return 0;
}

static json_t *
parse_mark(json_t *labels)
{
  const char *m = str(labels, RP_SWARM_LABEL_MARK);
  if (!m)
    return NULL;
  json_t *j = json_loads(m, 0, NULL);
  if (json_is_object(j))
    return j;
  json_decref(j);
  return json_object();
}

json_t *
rp_swarm_node_mark(json_t *node)
{
  return parse_mark(json_object_get(json_object_get(node, "Spec"), "Labels"));
}

json_t *
rp_swarm_node_undrained_spec(json_t *node, const char *avail, const char *role)
{
  json_t *spec = json_object_get(node, "Spec");
  if (!json_is_object(spec))
    return NULL;
  cleanup_json json_t *mark = rp_swarm_node_mark(node);
  if (!avail) {
    avail = str(mark, "availability");
    role = str(mark, "role");
  }
  json_t *out = json_deep_copy(spec);
  json_object_set_new(out, "Availability",
                      json_string(avail ? avail : "active"));
  if (role)
    json_object_set_new(out, "Role", json_string(role));
  json_object_del(json_object_get(out, "Labels"), RP_SWARM_LABEL_MARK);
  return out;
}

struct rp_workload *
rp_swarm_node_workload(const char *provider, json_t *node,
                       const char *self_node)
{
  const char *id = str(node, "ID");
  json_t *spec = json_object_get(node, "Spec");
  json_t *desc = json_object_get(node, "Description");
  json_t *status = json_object_get(node, "Status");
  if (!id || !json_is_object(spec) || !str_is(status, "State", "ready"))
    return NULL;
  json_t *labels = json_object_get(spec, "Labels");
  json_t *engine_labels =
      json_object_get(json_object_get(desc, "Engine"), "Labels");
  int64_t started = 0;
  if (rp_swarm_parse_boot_time(str(labels, RP_SWARM_LABEL_BOOT_TIME),
                               &started) != 0 &&
      rp_swarm_parse_boot_time(str(engine_labels, RP_SWARM_LABEL_BOOT_TIME),
                               &started) != 0 &&
      (rp_parse_time_ms(str(node, "CreatedAt"), &started) != 0 || started <= 0))
    return NULL;
  const char *name = str(spec, "Name");
  if (!name || !*name)
    name = str(desc, "Hostname");
  struct rp_workload *w =
      rp_workload_new(provider, RP_KIND_NODE, id, name, started);
  copy_labels(w->labels, labels);
  const char *avail = str(spec, "Availability");
  const char *why = NULL;
  cleanup_json json_t *mark = parse_mark(labels);
  if (self_node && strcmp(self_node, id) == 0)
    why = "the node this agent runs on: another agent replaces it";
  else if (str(mark, "replaced_at"))
    why = "its replace action has run: it is removed once it is down";
  else if (avail && strcmp(avail, "active") != 0 && !mark)
    why = strcmp(avail, "drain") == 0
              ? "drained by someone else (maintenance?): left alone"
              : "paused by someone else (maintenance?): left alone";
  if (why)
    w->protected_reason = rp_xstrdup(why);
  return w;
}

static bool
is_manager(json_t *node)
{
  return str_is(json_object_get(node, "Spec"), "Role", "manager") ||
         json_is_object(json_object_get(node, "ManagerStatus"));
}

static bool
reachable_manager(json_t *node)
{
  return is_manager(node) && str_is(json_object_get(node, "ManagerStatus"),
                                    "Reachability", "reachable");
}

int
rp_swarm_drain_check(json_t *nodes, const char *id, const char *policy,
                     char *why, size_t why_len)
{
  json_t *target = NULL;
  size_t i;
  json_t *n;
  json_array_foreach(nodes, i, n)
  {
    if (str_is(n, "ID", id))
      target = n;
  }
  if (!target) {
    snprintf(why, why_len, "node %s is no longer in the swarm", id);
    return -1;
  }
  if (!str_is(json_object_get(target, "Status"), "State", "ready")) {
    snprintf(why, why_len, "node %s is %s, not ready", id,
             str(json_object_get(target, "Status"), "State")
                 ? str(json_object_get(target, "Status"), "State")
                 : "in an unknown state");
    return -1;
  }
  json_t *tspec = json_object_get(target, "Spec");
  cleanup_json json_t *tmark = parse_mark(json_object_get(tspec, "Labels"));
  if (!str_is(tspec, "Availability", "active") && !tmark) {
    snprintf(why, why_len,
             "node %s was set to %s by someone else (maintenance?): left "
             "alone",
             id, str(tspec, "Availability") ? str(tspec, "Availability") : "?");
    return -1;
  }
  int managers = 0, reachable_others = 0, active_others = 0;
  json_array_foreach(nodes, i, n)
  {
    json_t *spec = json_object_get(n, "Spec");
    bool self = n == target;
    if (is_manager(n)) {
      managers++;
      if (!self && reachable_manager(n))
        reachable_others++;
    }
    if (self)
      continue;
    if (str_is(spec, "Availability", "active") &&
        str_is(json_object_get(n, "Status"), "State", "ready"))
      active_others++;
    cleanup_json json_t *m = parse_mark(json_object_get(spec, "Labels"));
    if (!m)
      continue;
    const char *mp = str(m, "policy");
    if (!policy || !mp || strcmp(policy, mp) == 0) {
      snprintf(why, why_len,
               "node %s (%s) is being drained by reaper%s%s%s since %s: one "
               "drain at a time",
               str(n, "ID") ? str(n, "ID") : "?",
               str(json_object_get(n, "Description"), "Hostname")
                   ? str(json_object_get(n, "Description"), "Hostname")
                   : "?",
               mp ? " (policy " : "", mp ? mp : "", mp ? ")" : "",
               str(m, "since") ? str(m, "since") : "an unknown time");
      return -1;
    }
  }
  if (active_others == 0) {
    snprintf(why, why_len,
             "node %s is the last active node: its tasks would have nowhere "
             "to go",
             id);
    return -1;
  }
  if (is_manager(target)) {
    int quorum = managers / 2 + 1;
    if (reachable_others < quorum) {
      snprintf(why, why_len,
               "node %s is a manager: without it %d of %d managers would be "
               "reachable, fewer than the quorum of %d",
               id, reachable_others, managers, quorum);
      return -1;
    }
  }
  return 0;
}

size_t
rp_swarm_tasks_active(json_t *tasks)
{
  /* swarmkit's task states in order; those before "complete" still hold
   * (or are about to hold) a container on the node. */
  static const char *const active[] = {
      "new",   "pending",   "assigned", "accepted",
      "ready", "preparing", "starting", "running",
  };
  size_t count = 0, i;
  json_t *t;
  json_array_foreach(tasks, i, t)
  {
    const char *st = str(json_object_get(t, "Status"), "State");
    for (size_t k = 0; st && k < RP_ARRAY_LEN(active); k++) {
      if (strcmp(st, active[k]) == 0) {
        count++;
        break;
      }
    }
  }
  return count;
}

/* --- the lease ---------------------------------------------------------- */

enum rp_swarm_lease_state
rp_swarm_lease_read(json_t *labels, const char *me, int64_t engine_now_ms,
                    const char **holder, int64_t *expires_ms)
{
  const char *h = str(labels, RP_SWARM_LABEL_HOLDER);
  int64_t exp = 0;
  *holder = NULL;
  *expires_ms = 0;
  if (!h || !*h ||
      rp_parse_time_ms(str(labels, RP_SWARM_LABEL_EXPIRES), &exp) != 0 ||
      exp <= 0)
    return RP_SWARM_LEASE_FREE;
  *holder = h;
  *expires_ms = exp;
  if (me && strcmp(h, me) == 0)
    return RP_SWARM_LEASE_MINE;
  return engine_now_ms >= exp ? RP_SWARM_LEASE_FREE : RP_SWARM_LEASE_OTHER;
}

/* --- updates ------------------------------------------------------------ */

static const char *const update_names[] = {
    [RP_SWARM_UPDATE_PENDING] = "pending",
    [RP_SWARM_UPDATE_UPDATING] = "updating",
    [RP_SWARM_UPDATE_COMPLETED] = "completed",
    [RP_SWARM_UPDATE_PAUSED] = "paused",
    [RP_SWARM_UPDATE_ROLLBACK_STARTED] = "rollback_started",
    [RP_SWARM_UPDATE_ROLLBACK_COMPLETED] = "rollback_completed",
    [RP_SWARM_UPDATE_ROLLBACK_PAUSED] = "rollback_paused",
    [RP_SWARM_UPDATE_UNKNOWN] = "unknown",
};

const char *
rp_swarm_update_name(enum rp_swarm_update u)
{
  if ((int)u < 0 || (size_t)u >= RP_ARRAY_LEN(update_names))
    return "unknown";
  return update_names[u];
}

enum rp_swarm_update
rp_swarm_update_progress(json_t *service, const char *before_started_at)
{
  json_t *us = json_object_get(service, "UpdateStatus");
  const char *state = str(us, "State");
  const char *started = str(us, "StartedAt");
  if (!json_is_object(us) || !state)
    return RP_SWARM_UPDATE_PENDING;
  if (before_started_at && started && strcmp(before_started_at, started) == 0)
    return RP_SWARM_UPDATE_PENDING;
  for (size_t i = RP_SWARM_UPDATE_UPDATING; i < RP_SWARM_UPDATE_UNKNOWN; i++)
    if (strcmp(state, update_names[i]) == 0)
      return (enum rp_swarm_update)i;
  return RP_SWARM_UPDATE_UNKNOWN;
}

int64_t
rp_swarm_update_timeout_ms(json_t *service, size_t n_tasks,
                           int64_t health_timeout_ms)
{
  json_t *uc =
      json_object_get(json_object_get(service, "Spec"), "UpdateConfig");
  /* Swarm's defaults where the spec says nothing: parallelism 1 (0, when
   * written, means all at once), monitor 5 s, no delay. */
  json_t *pj = json_object_get(uc, "Parallelism");
  json_int_t par = json_is_integer(pj) ? json_integer_value(pj) : 1;
  json_int_t delay_ns = json_integer_value(json_object_get(uc, "Delay"));
  json_t *mon = json_object_get(uc, "Monitor");
  json_int_t monitor_ns =
      json_is_integer(mon) ? json_integer_value(mon) : (json_int_t)5000000000LL;
  if (delay_ns < 0)
    delay_ns = 0;
  if (monitor_ns < 0)
    monitor_ns = 0;
  if (n_tasks == 0)
    n_tasks = 1;
  size_t batches = par <= 0 ? 1 : (n_tasks + (size_t)par - 1) / (size_t)par;
  int64_t per =
      health_timeout_ms + (int64_t)(monitor_ns / 1000000) + delay_ns / 1000000;
  /* Clamp rather than overflow on absurd configurations: a week. */
  const int64_t week = 7LL * 24 * 3600 * 1000;
  if (per > week / 2 || batches > (size_t)(week / 2 / (per ? per : 1)))
    return week;
  return 2 * (int64_t)batches * per + 60000;
}

/* --- the replace action's environment ----------------------------------- */

void
rp_swarm_strv_free(char **v)
{
  rp_strv_free(v);
}

char **
rp_swarm_strv_dup(const char *const *v)
{
  /* rp_strv_dup only reads the strings: v's const is kept. */
  return rp_strv_dup((char *const *)(uintptr_t)v);
}

char **
rp_swarm_replace_env(json_t *node, const char *path)
{
  json_t *spec = json_object_get(node, "Spec");
  const char *hostname = str(json_object_get(node, "Description"), "Hostname");
  const char *addr = str(json_object_get(node, "Status"), "Addr");
  const char *role = str(spec, "Role");
  /* Some engines report a manager's Status.Addr as 0.0.0.0: its raft
   * address ("host:2377") says where it is. */
  cleanup_free char *raft_host = NULL;
  const char *raft = str(json_object_get(node, "ManagerStatus"), "Addr");
  if ((!addr || !*addr || strcmp(addr, "0.0.0.0") == 0) && raft) {
    const char *colon = strrchr(raft, ':');
    raft_host =
        colon ? rp_xstrndup(raft, (size_t)(colon - raft)) : rp_xstrdup(raft);
    addr = raft_host;
  }
  const char *id = str(node, "ID");
  char **env = rp_xcalloc(6, sizeof(*env));
  env[0] = rp_xasprintf(
      "PATH=%s",
      path && *path ? path
                    : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
                      "/bin");
  env[1] = rp_xasprintf("REAPER_NODE_ID=%s", id ? id : "");
  env[2] = rp_xasprintf("REAPER_NODE_HOSTNAME=%s", hostname ? hostname : "");
  env[3] = rp_xasprintf("REAPER_NODE_ADDR=%s", addr ? addr : "");
  env[4] = rp_xasprintf("REAPER_NODE_ROLE=%s", role ? role : "worker");
  return env;
}
