/* The swarm provider's pure functions, fed what a real manager (dockerd
 * 20.10, API 1.41) answered: GET /nodes, /tasks and /services of a
 * three-node swarm built by tests/lib/swarm.sh, trimmed to the members
 * that matter.  Fixtures are written with ' for " to stay readable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm/swarm.h"
#include "util.h"
#include "workload.h"

/* Parses a fixture written with single quotes. */
static json_t *
J(const char *text)
{
  char *s = rp_xstrdup(text);
  for (char *c = s; *c; c++)
    if (*c == '\'')
      *c = '"';
  json_error_t e;
  json_t *j = json_loads(s, 0, &e);
  if (!j)
    fail_msg("fixture does not parse: %s: %s", e.text, s);
  free(s);
  return j;
}

static int64_t
T(const char *rfc3339)
{
  int64_t ms = 0;
  assert_int_equal(rp_parse_time_ms(rfc3339, &ms), 0);
  return ms;
}

#define MANAGER                                                                \
  "{'ID':'4vm17mqbmut232yim1z81torh','Version':{'Index':9},"                   \
  "'CreatedAt':'2026-11-30T04:23:02.055963316Z',"                              \
  "'Spec':{'Labels':{},'Role':'manager','Availability':'active'},"             \
  "'Description':{'Hostname':'node0','Engine':{'EngineVersion':'20.10.24'}},"  \
  "'Status':{'State':'ready','Addr':'192.168.213.10'},"                        \
  "'ManagerStatus':{'Leader':true,'Reachability':'reachable',"                 \
  "'Addr':'192.168.213.10:2377'}}"
#define WORKER1                                                                \
  "{'ID':'lz3uitbll7myvujq5ytrqx7ag','Version':{'Index':14},"                  \
  "'CreatedAt':'2026-11-30T04:23:10.835179949Z',"                              \
  "'Spec':{'Labels':{},'Role':'worker','Availability':'active'},"              \
  "'Description':{'Hostname':'node1','Engine':{'EngineVersion':'20.10.24'}},"  \
  "'Status':{'State':'ready','Addr':'192.168.213.11'},'ManagerStatus':null}"
#define WORKER2                                                                \
  "{'ID':'p8g1jjsec6e94g7bni4wwnbae','Version':{'Index':57},"                  \
  "'CreatedAt':'2026-11-30T04:23:46.25749567Z',"                               \
  "'Spec':{'Labels':{'keep':'me','reaper.max-age':'2s'},'Role':'worker',"      \
  "'Availability':'active'},"                                                  \
  "'Description':{'Hostname':'node2','Engine':{'EngineVersion':'20.10.24'}},"  \
  "'Status':{'State':'ready','Addr':'192.168.213.12'}}"

#define SVC_ID "k3dhuqmues648xd5q18s8gc9t"
#define SERVICE                                                                \
  "{'ID':'" SVC_ID "','Version':{'Index':20},"                                 \
  "'Spec':{'Name':'web','Labels':{'reaper.max-age':'1h','tier':'web',"         \
  "'n':1},"                                                                    \
  "'TaskTemplate':{'ContainerSpec':{'Image':'reaper-test/sleeper:1'},"         \
  "'ForceUpdate':0},'Mode':{'Replicated':{'Replicas':4}},"                     \
  "'UpdateConfig':{'Parallelism':1,'FailureAction':'pause',"                   \
  "'Monitor':5000000000,'MaxFailureRatio':0,'Order':'start-first'}}}"

static json_t *
task(const char *id, const char *service, const char *state,
     const char *desired, const char *ts)
{
  return json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "ID", id, "ServiceID",
                   service, "NodeID", "lz3uitbll7myvujq5ytrqx7ag",
                   "DesiredState", desired, "Status", "State", state,
                   "Timestamp", ts);
}

/* --- services ----------------------------------------------------------- */

static void
test_group_tasks(void **state)
{
  (void)state;
  json_t *tasks = json_array();
  json_array_append_new(tasks, task("t1", SVC_ID, "running", "running",
                                    "2026-11-30T04:23:32.748252175Z"));
  json_array_append_new(tasks, task("t2", SVC_ID, "running", "running",
                                    "2026-11-30T04:20:00.5Z"));
  /* Starting, and running but on its way out: neither counts. */
  json_array_append_new(
      tasks, task("t3", SVC_ID, "starting", "running", "2026-11-30T03:00:00Z"));
  json_array_append_new(
      tasks, task("t4", SVC_ID, "running", "shutdown", "2026-11-30T02:00:00Z"));
  json_array_append_new(
      tasks, task("u1", "other", "running", "running", "2026-11-29T00:00:00Z"));
  json_t *g = rp_swarm_group_tasks(tasks);
  json_t *web = json_object_get(g, SVC_ID);
  assert_non_null(web);
  assert_int_equal(json_integer_value(json_object_get(web, "oldest")),
                   T("2026-11-30T04:20:00.5Z"));
  assert_int_equal(json_array_size(json_object_get(web, "tasks")), 2);
  assert_int_equal(json_object_size(g), 2);
  json_decref(g);
  json_decref(tasks);

  /* Not a list: nothing, never a crash. */
  g = rp_swarm_group_tasks(NULL);
  assert_int_equal(json_object_size(g), 0);
  json_decref(g);
}

static void
test_service_workload(void **state)
{
  (void)state;
  json_t *svc = J(SERVICE);
  json_t *group = J("{'oldest': 1796012400000, 'tasks': ['a','b']}");
  struct rp_workload *w =
      rp_swarm_service_workload("cluster", svc, group, NULL);
  assert_non_null(w);
  assert_int_equal(w->kind, RP_KIND_SERVICE);
  assert_string_equal(w->id, SVC_ID);
  assert_string_equal(w->name, "web");
  assert_string_equal(w->provider, "cluster");
  assert_int_equal(w->started_ms, 1796012400000LL);
  /* The service's own labels, as on containers (strings only). */
  assert_string_equal(rp_workload_label(w, "reaper.max-age"), "1h");
  assert_string_equal(rp_workload_label(w, "tier"), "web");
  assert_null(json_object_get(w->labels, "n"));
  assert_null(w->protected_reason);
  rp_workload_free(w);

  /* reaper's own service is never updated by itself. */
  w = rp_swarm_service_workload("cluster", svc, group, SVC_ID);
  assert_non_null(w->protected_reason);
  rp_workload_free(w);

  /* No running task: nothing to age. */
  assert_null(rp_swarm_service_workload("cluster", svc, NULL, NULL));

  /* The lease service never is a workload. */
  json_object_set_new(json_object_get(svc, "Spec"), "Name",
                      json_string(RP_SWARM_LEASE_SERVICE));
  assert_null(rp_swarm_service_workload("cluster", svc, group, NULL));

  /* Jobs run to completion: protected. */
  json_object_set_new(json_object_get(svc, "Spec"), "Name",
                      json_string("migrate"));
  json_object_set_new(json_object_get(svc, "Spec"), "Mode",
                      J("{'ReplicatedJob':{'MaxConcurrent':1}}"));
  w = rp_swarm_service_workload("cluster", svc, group, NULL);
  assert_non_null(w);
  assert_non_null(strstr(w->protected_reason, "job"));
  rp_workload_free(w);
  json_decref(group);
  json_decref(svc);
}

/* --- nodes -------------------------------------------------------------- */

static void
test_boot_time(void **state)
{
  (void)state;
  int64_t ms = 0;
  assert_int_equal(rp_swarm_parse_boot_time("1796012400", &ms), 0);
  assert_int_equal(ms, 1796012400000LL);
  assert_int_equal(rp_swarm_parse_boot_time("2026-11-30T04:00:00Z", &ms), 0);
  assert_int_equal(ms, T("2026-11-30T04:00:00Z"));
  assert_int_equal(rp_swarm_parse_boot_time("2026-11-30T05:00:00+01:00", &ms),
                   0);
  assert_int_equal(ms, T("2026-11-30T04:00:00Z"));
  assert_int_equal(rp_swarm_parse_boot_time("", &ms), -1);
  assert_int_equal(rp_swarm_parse_boot_time(NULL, &ms), -1);
  assert_int_equal(rp_swarm_parse_boot_time("0", &ms), -1);
  assert_int_equal(rp_swarm_parse_boot_time("-5", &ms), -1);
  assert_int_equal(rp_swarm_parse_boot_time("12abc", &ms), -1);
  assert_int_equal(rp_swarm_parse_boot_time("99999999999999999999", &ms), -1);
  assert_int_equal(rp_swarm_parse_boot_time("yesterday", &ms), -1);
}

static void
test_node_workload(void **state)
{
  (void)state;
  json_t *n = J(WORKER2);
  struct rp_workload *w = rp_swarm_node_workload("cluster", n, NULL);
  assert_non_null(w);
  assert_int_equal(w->kind, RP_KIND_NODE);
  assert_string_equal(w->id, "p8g1jjsec6e94g7bni4wwnbae");
  assert_string_equal(w->name, "node2");
  /* Joined the swarm at CreatedAt. */
  assert_int_equal(w->started_ms, T("2026-11-30T04:23:46.25749567Z"));
  assert_string_equal(rp_workload_label(w, "keep"), "me");
  assert_string_equal(rp_workload_label(w, "reaper.max-age"), "2s");
  assert_null(w->protected_reason);
  rp_workload_free(w);

  /* The host's boot time, from the engine's labels... */
  json_object_set_new(
      json_object_get(json_object_get(n, "Description"), "Engine"), "Labels",
      J("{'reaper.boot-time':'1796000000'}"));
  w = rp_swarm_node_workload("cluster", n, NULL);
  assert_int_equal(w->started_ms, 1796000000000LL);
  rp_workload_free(w);
  /* ...the node's own labels first. */
  json_object_set_new(json_object_get(json_object_get(n, "Spec"), "Labels"),
                      "reaper.boot-time", json_string("2026-11-30T01:00:00Z"));
  w = rp_swarm_node_workload("cluster", n, NULL);
  assert_int_equal(w->started_ms, T("2026-11-30T01:00:00Z"));
  rp_workload_free(w);
  /* A bad one is not trusted: back to the engine's, then CreatedAt. */
  json_object_set_new(json_object_get(json_object_get(n, "Spec"), "Labels"),
                      "reaper.boot-time", json_string("soon"));
  w = rp_swarm_node_workload("cluster", n, NULL);
  assert_int_equal(w->started_ms, 1796000000000LL);
  rp_workload_free(w);

  /* An operator's drain is left alone; reaper's own drain is not. */
  json_object_set_new(json_object_get(n, "Spec"), "Availability",
                      json_string("drain"));
  w = rp_swarm_node_workload("cluster", n, NULL);
  assert_non_null(w->protected_reason);
  rp_workload_free(w);
  json_object_set_new(json_object_get(json_object_get(n, "Spec"), "Labels"),
                      RP_SWARM_LABEL_MARK,
                      json_string("{\"availability\":\"active\"}"));
  w = rp_swarm_node_workload("cluster", n, NULL);
  assert_null(w->protected_reason);
  rp_workload_free(w);

  /* A node whose replace action has run is never drained again. */
  json_object_set_new(json_object_get(json_object_get(n, "Spec"), "Labels"),
                      RP_SWARM_LABEL_MARK,
                      json_string("{\"availability\":\"active\","
                                  "\"replaced_at\":\"2026-11-30T04:00:00Z\"}"));
  w = rp_swarm_node_workload("cluster", n, NULL);
  assert_non_null(strstr(w->protected_reason, "replace action has run"));
  rp_workload_free(w);

  /* The node this agent runs on. */
  w = rp_swarm_node_workload("cluster", n, "p8g1jjsec6e94g7bni4wwnbae");
  assert_non_null(strstr(w->protected_reason, "runs on"));
  rp_workload_free(w);

  /* A node that is down is no workload. */
  json_object_set_new(json_object_get(n, "Status"), "State",
                      json_string("down"));
  assert_null(rp_swarm_node_workload("cluster", n, NULL));
  json_decref(n);
}

/* --- the safety checks -------------------------------------------------- */

static json_t *
cluster(void)
{
  return J("[" MANAGER "," WORKER1 "," WORKER2 "]");
}

static json_t *
node_at(json_t *nodes, size_t i)
{
  return json_array_get(nodes, i);
}

static void
set_spec(json_t *node, const char *key, const char *value)
{
  json_object_set_new(json_object_get(node, "Spec"), key, json_string(value));
}

static void
mark(json_t *node, const char *policy)
{
  json_t *m = json_pack("{s:s?, s:s, s:s}", "policy", policy, "availability",
                        "active", "since", "2026-11-30T04:00:00.000Z");
  char *s = json_dumps(m, JSON_COMPACT);
  json_object_set_new(json_object_get(json_object_get(node, "Spec"), "Labels"),
                      RP_SWARM_LABEL_MARK, json_string(s));
  free(s);
  json_decref(m);
}

static void
test_drain_check(void **state)
{
  (void)state;
  char why[400];
  json_t *n = cluster();
  assert_int_equal(rp_swarm_drain_check(n, "p8g1jjsec6e94g7bni4wwnbae", "nodes",
                                        why, sizeof(why)),
                   0);
  assert_int_equal(
      rp_swarm_drain_check(n, "nosuchnode", "nodes", why, sizeof(why)), -1);
  assert_non_null(strstr(why, "no longer"));
  /* Someone else drained it since it was listed: left alone. */
  set_spec(node_at(n, 2), "Availability", "pause");
  assert_int_equal(rp_swarm_drain_check(n, "p8g1jjsec6e94g7bni4wwnbae", "nodes",
                                        why, sizeof(why)),
                   -1);
  assert_non_null(strstr(why, "someone else"));
  /* reaper's own drain of it (a retry after an earlier attempt) is not. */
  mark(node_at(n, 2), "nodes");
  assert_int_equal(rp_swarm_drain_check(n, "p8g1jjsec6e94g7bni4wwnbae", "nodes",
                                        why, sizeof(why)),
                   0);
  json_decref(n);
  n = cluster();

  /* Another drain of the same policy in flight: one at a time. */
  mark(node_at(n, 1), "nodes");
  assert_int_equal(rp_swarm_drain_check(n, "p8g1jjsec6e94g7bni4wwnbae", "nodes",
                                        why, sizeof(why)),
                   -1);
  assert_non_null(strstr(why, "being drained"));
  assert_non_null(strstr(why, "node1"));
  /* Another policy's drain does not hold this one back... */
  assert_int_equal(rp_swarm_drain_check(n, "p8g1jjsec6e94g7bni4wwnbae",
                                        "big-nodes", why, sizeof(why)),
                   0);
  /* ...unless the policy is unknown: then any drain does. */
  assert_int_equal(rp_swarm_drain_check(n, "p8g1jjsec6e94g7bni4wwnbae", NULL,
                                        why, sizeof(why)),
                   -1);
  json_decref(n);

  /* The last active node. */
  n = cluster();
  set_spec(node_at(n, 0), "Availability", "drain");
  set_spec(node_at(n, 1), "Availability", "pause");
  assert_int_equal(rp_swarm_drain_check(n, "p8g1jjsec6e94g7bni4wwnbae", "nodes",
                                        why, sizeof(why)),
                   -1);
  assert_non_null(strstr(why, "last active"));
  /* A node that is down takes nothing either. */
  set_spec(node_at(n, 1), "Availability", "active");
  json_object_set_new(json_object_get(node_at(n, 1), "Status"), "State",
                      json_string("down"));
  assert_int_equal(rp_swarm_drain_check(n, "p8g1jjsec6e94g7bni4wwnbae", "nodes",
                                        why, sizeof(why)),
                   -1);
  /* Nor may a node that is not ready be drained. */
  assert_int_equal(rp_swarm_drain_check(n, "lz3uitbll7myvujq5ytrqx7ag", "nodes",
                                        why, sizeof(why)),
                   -1);
  assert_non_null(strstr(why, "not ready"));
  json_decref(n);

  /* The only manager: its loss loses the quorum. */
  n = cluster();
  assert_int_equal(rp_swarm_drain_check(n, "4vm17mqbmut232yim1z81torh", "nodes",
                                        why, sizeof(why)),
                   -1);
  assert_non_null(strstr(why, "quorum"));
  /* Three reachable managers: one may go (2 of 3 is a quorum). */
  json_t *ms =
      json_pack("{s:b, s:s}", "Leader", 0, "Reachability", "reachable");
  set_spec(node_at(n, 1), "Role", "manager");
  json_object_set_new(node_at(n, 1), "ManagerStatus", json_deep_copy(ms));
  set_spec(node_at(n, 2), "Role", "manager");
  json_object_set_new(node_at(n, 2), "ManagerStatus", json_deep_copy(ms));
  assert_int_equal(rp_swarm_drain_check(n, "4vm17mqbmut232yim1z81torh", "nodes",
                                        why, sizeof(why)),
                   0);
  /* One of the three unreachable: taking another loses the quorum. */
  json_object_set_new(json_object_get(node_at(n, 2), "ManagerStatus"),
                      "Reachability", json_string("unreachable"));
  assert_int_equal(rp_swarm_drain_check(n, "4vm17mqbmut232yim1z81torh", "nodes",
                                        why, sizeof(why)),
                   -1);
  assert_non_null(strstr(why, "1 of 3"));
  json_decref(ms);
  json_decref(n);
}

static void
test_node_mark(void **state)
{
  (void)state;
  json_t *n = J(WORKER2);
  assert_null(rp_swarm_node_mark(n));
  json_t *labels = json_object_get(json_object_get(n, "Spec"), "Labels");
  json_object_set_new(labels, RP_SWARM_LABEL_MARK,
                      json_string("{\"availability\":\"pause\"}"));
  json_t *m = rp_swarm_node_mark(n);
  assert_string_equal(json_string_value(json_object_get(m, "availability")),
                      "pause");
  json_decref(m);
  /* Garbage is still a mark (someone meant one): an empty object. */
  json_object_set_new(labels, RP_SWARM_LABEL_MARK, json_string("{oops"));
  m = rp_swarm_node_mark(n);
  assert_true(json_is_object(m));
  assert_int_equal(json_object_size(m), 0);
  json_decref(m);
  json_decref(n);
}

/* What undoes reaper's drain: the spec as it was, labels kept, the mark
 * gone; from the recycle's own reading, or from the mark (crash recovery,
 * another agent's drain). */
static void
test_node_undrained_spec(void **state)
{
  (void)state;
  json_t *n = J(WORKER2);
  json_t *spec = json_object_get(n, "Spec");
  json_object_set_new(spec, "Availability", json_string("drain"));
  json_object_set_new(spec, "Role", json_string("worker"));
  json_object_set_new(
      json_object_get(spec, "Labels"), RP_SWARM_LABEL_MARK,
      json_string("{\"availability\":\"pause\",\"role\":\"manager\"}"));

  /* From the mark: availability and role as it says. */
  json_t *u = rp_swarm_node_undrained_spec(n, NULL, NULL);
  assert_string_equal(json_string_value(json_object_get(u, "Availability")),
                      "pause");
  assert_string_equal(json_string_value(json_object_get(u, "Role")), "manager");
  json_t *want = J("{'keep':'me','reaper.max-age':'2s'}");
  assert_true(json_equal(json_object_get(u, "Labels"), want));
  json_decref(u);

  /* From the recycle's reading: its availability; the role left alone
   * when it did not change it (NULL), else as it was. */
  u = rp_swarm_node_undrained_spec(n, "active", NULL);
  assert_string_equal(json_string_value(json_object_get(u, "Availability")),
                      "active");
  assert_string_equal(json_string_value(json_object_get(u, "Role")), "worker");
  assert_true(json_equal(json_object_get(u, "Labels"), want));
  json_decref(u);
  u = rp_swarm_node_undrained_spec(n, "active", "manager");
  assert_string_equal(json_string_value(json_object_get(u, "Role")), "manager");
  json_decref(u);

  /* The node itself is not changed. */
  assert_string_equal(json_string_value(json_object_get(spec, "Availability")),
                      "drain");
  assert_non_null(
      json_object_get(json_object_get(spec, "Labels"), RP_SWARM_LABEL_MARK));

  /* No mark (someone removed it): active, role unchanged. */
  json_object_del(json_object_get(spec, "Labels"), RP_SWARM_LABEL_MARK);
  u = rp_swarm_node_undrained_spec(n, NULL, NULL);
  assert_string_equal(json_string_value(json_object_get(u, "Availability")),
                      "active");
  assert_string_equal(json_string_value(json_object_get(u, "Role")), "worker");
  json_decref(u);
  json_decref(want);

  /* No Spec: nothing to write back. */
  json_t *bare = J("{'ID':'x'}");
  assert_null(rp_swarm_node_undrained_spec(bare, "active", NULL));
  json_decref(bare);
  json_decref(n);
}

static void
test_tasks_active(void **state)
{
  (void)state;
  json_t *tasks = json_array();
  assert_int_equal(rp_swarm_tasks_active(tasks), 0);
  json_array_append_new(tasks, task("a", "s", "shutdown", "shutdown", "x"));
  json_array_append_new(tasks, task("b", "s", "complete", "shutdown", "x"));
  json_array_append_new(tasks, task("c", "s", "failed", "shutdown", "x"));
  assert_int_equal(rp_swarm_tasks_active(tasks), 0);
  /* Still running though it is meant to stop: it still holds the node. */
  json_array_append_new(tasks, task("d", "s", "running", "shutdown", "x"));
  json_array_append_new(tasks, task("e", "s", "preparing", "running", "x"));
  assert_int_equal(rp_swarm_tasks_active(tasks), 2);
  json_decref(tasks);
}

/* --- the lease ---------------------------------------------------------- */

static void
test_lease_read(void **state)
{
  (void)state;
  const char *holder;
  int64_t exp;
  int64_t now = T("2026-11-30T04:00:00Z");
  json_t *l = J("{}");
  assert_int_equal(rp_swarm_lease_read(l, "me", now, &holder, &exp),
                   RP_SWARM_LEASE_FREE);
  assert_int_equal(rp_swarm_lease_read(NULL, "me", now, &holder, &exp),
                   RP_SWARM_LEASE_FREE);
  json_decref(l);

  l = J("{'reaper.lease.holder':'other/12/ab',"
        "'reaper.lease.expires':'2026-11-30T04:00:10.000Z'}");
  assert_int_equal(rp_swarm_lease_read(l, "me", now, &holder, &exp),
                   RP_SWARM_LEASE_OTHER);
  assert_string_equal(holder, "other/12/ab");
  assert_int_equal(exp, T("2026-11-30T04:00:10Z"));
  /* Expired by the engine's clock: free to take. */
  assert_int_equal(rp_swarm_lease_read(l, "me", now + 10000, &holder, &exp),
                   RP_SWARM_LEASE_FREE);
  /* Its holder may always renew it. */
  assert_int_equal(
      rp_swarm_lease_read(l, "other/12/ab", now + 60000, &holder, &exp),
      RP_SWARM_LEASE_MINE);
  json_decref(l);

  /* Garbage is no lease. */
  l = J("{'reaper.lease.holder':'other','reaper.lease.expires':'never'}");
  assert_int_equal(rp_swarm_lease_read(l, "me", now, &holder, &exp),
                   RP_SWARM_LEASE_FREE);
  json_decref(l);
}

/* --- updates ------------------------------------------------------------ */

static void
test_update_progress(void **state)
{
  (void)state;
  json_t *s = J(SERVICE);
  assert_int_equal(rp_swarm_update_progress(s, NULL), RP_SWARM_UPDATE_PENDING);
  json_object_set_new(
      s, "UpdateStatus",
      J("{'State':'completed','StartedAt':'2026-11-30T04:07:46.618620392Z',"
        "'CompletedAt':'2026-11-30T04:07:56.450930139Z',"
        "'Message':'update completed'}"));
  assert_int_equal(rp_swarm_update_progress(s, NULL),
                   RP_SWARM_UPDATE_COMPLETED);
  /* The previous update's end is not ours. */
  assert_int_equal(
      rp_swarm_update_progress(s, "2026-11-30T04:07:46.618620392Z"),
      RP_SWARM_UPDATE_PENDING);
  assert_int_equal(
      rp_swarm_update_progress(s, "2026-11-30T03:00:00.000000000Z"),
      RP_SWARM_UPDATE_COMPLETED);
  const char *states[] = {"updating",         "paused",
                          "rollback_started", "rollback_completed",
                          "rollback_paused",  "weird"};
  enum rp_swarm_update want[] = {
      RP_SWARM_UPDATE_UPDATING,         RP_SWARM_UPDATE_PAUSED,
      RP_SWARM_UPDATE_ROLLBACK_STARTED, RP_SWARM_UPDATE_ROLLBACK_COMPLETED,
      RP_SWARM_UPDATE_ROLLBACK_PAUSED,  RP_SWARM_UPDATE_UNKNOWN};
  for (size_t i = 0; i < RP_ARRAY_LEN(states); i++) {
    json_object_set_new(json_object_get(s, "UpdateStatus"), "State",
                        json_string(states[i]));
    assert_int_equal(rp_swarm_update_progress(s, NULL), want[i]);
    if (want[i] != RP_SWARM_UPDATE_UNKNOWN)
      assert_string_equal(rp_swarm_update_name(want[i]), states[i]);
  }
  json_decref(s);
}

static void
test_update_timeout(void **state)
{
  (void)state;
  json_t *s = J(SERVICE);
  /* Parallelism 1, 3 tasks: 3 batches of 60 s health + 5 s monitor, twice
   * (an update and its rollback), plus a minute. */
  assert_int_equal(rp_swarm_update_timeout_ms(s, 3, 60000),
                   2 * 3 * 65000 + 60000);
  json_t *uc = json_object_get(json_object_get(s, "Spec"), "UpdateConfig");
  json_object_set_new(uc, "Parallelism", json_integer(2));
  json_object_set_new(uc, "Delay", json_integer(10000000000LL));
  assert_int_equal(rp_swarm_update_timeout_ms(s, 3, 60000),
                   2 * 2 * 75000 + 60000);
  /* Parallelism 0: all at once. */
  json_object_set_new(uc, "Parallelism", json_integer(0));
  assert_int_equal(rp_swarm_update_timeout_ms(s, 50, 60000), 2 * 75000 + 60000);
  /* No UpdateConfig at all: swarm's defaults (parallelism 1, monitor 5 s). */
  json_object_del(json_object_get(s, "Spec"), "UpdateConfig");
  assert_int_equal(rp_swarm_update_timeout_ms(s, 2, 1000),
                   2 * 2 * 6000 + 60000);
  /* Absurd figures are clamped, not overflowed. */
  json_object_set_new(json_object_get(s, "Spec"), "UpdateConfig",
                      J("{'Parallelism':1,'Delay':9000000000000000000}"));
  assert_int_equal(rp_swarm_update_timeout_ms(s, 1000000, 1000),
                   7LL * 24 * 3600 * 1000);
  json_decref(s);
}

/* --- the replace action's environment ----------------------------------- */

static void
test_replace_env(void **state)
{
  (void)state;
  json_t *n = J(WORKER2);
  char **env = rp_swarm_replace_env(n, "/usr/bin:/bin");
  const char *want[] = {
      "PATH=/usr/bin:/bin",         "REAPER_NODE_ID=p8g1jjsec6e94g7bni4wwnbae",
      "REAPER_NODE_HOSTNAME=node2", "REAPER_NODE_ADDR=192.168.213.12",
      "REAPER_NODE_ROLE=worker",    NULL};
  for (size_t i = 0; i < RP_ARRAY_LEN(want); i++) {
    if (!want[i])
      assert_null(env[i]);
    else
      assert_string_equal(env[i], want[i]);
  }
  rp_swarm_strv_free(env);
  json_decref(n);

  /* A manager whose Status.Addr says 0.0.0.0: its raft address does. */
  n = J(MANAGER);
  json_object_set_new(json_object_get(n, "Status"), "Addr",
                      json_string("0.0.0.0"));
  env = rp_swarm_replace_env(n, NULL);
  assert_non_null(strstr(env[0], "/usr/bin"));
  assert_string_equal(env[3], "REAPER_NODE_ADDR=192.168.213.10");
  assert_string_equal(env[4], "REAPER_NODE_ROLE=manager");
  rp_swarm_strv_free(env);
  json_decref(n);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_group_tasks),
      cmocka_unit_test(test_service_workload),
      cmocka_unit_test(test_boot_time),
      cmocka_unit_test(test_node_workload),
      cmocka_unit_test(test_drain_check),
      cmocka_unit_test(test_node_mark),
      cmocka_unit_test(test_node_undrained_spec),
      cmocka_unit_test(test_tasks_active),
      cmocka_unit_test(test_lease_read),
      cmocka_unit_test(test_update_progress),
      cmocka_unit_test(test_update_timeout),
      cmocka_unit_test(test_replace_env),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
