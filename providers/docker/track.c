/* Tracking: one list at start, then the /events stream, plus a periodic
 * re-list (the engine drops events for a slow reader and replays only its
 * last 256).  A container's age comes from State.StartedAt, which only
 * inspect shows, so a container is inspected when it is first seen and when
 * an event says it (re)started; a re-list inspects only the containers it
 * did not know, or whose uptime in the list's Status contradicts what was
 * known (a restart whose event was lost).  At steady state that is no
 * request per container beyond the stream and the re-list.
 *
 * At scale (10,000 containers: a list of 20 MiB, as many inspects of 5 KiB)
 * neither answer is parsed whole: the list is read element by element as
 * it arrives, and of each element and each inspect only the members
 * tracking needs are parsed (src/json_scan.h); what a list keeps per
 * container until its inspects are in is its id, name, image and labels.
 *
 * A workload's labels are its creator's word, never its image's: a label
 * whose key and value the image declares too (LABEL in its Dockerfile) is
 * left out of what the core sees, so that an image cannot exempt itself or
 * live longer (SPEC, "Labels").  The image's labels are read once per image
 * id (an image never changes).  Whether a container is a swarm task is the
 * engine's fact, not its label's: the list's is-task filter, which answers
 * from a flag only swarm's executor sets.  Both are asked before a workload
 * is reported. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "docker.h"
#include "idset.h"
#include "image_index.h"
#include "json_scan.h"
#include "known.h"
#include "log.h"
#include "strv.h"
#include "util.h"
#include "watch.h"

/* Inspects in flight at once during a list: 16 rather than 8 took 7% off
 * the CPU of a first list of 10,000 (fewer wake-ups for the same answers,
 * tests/bench/bench_scale.sh); an engine serves that many without strain. */
#define INSPECT_PARALLEL 16
/* Events the tracker acts on: everything else is noise here.  Podman says
 * "remove" where Docker says "destroy" (ENGINE-API-VERSIONS.md, section 5);
 * an engine ignores an event name it does not know. */
#define EVENT_FILTER                                                           \
  "{\"type\":[\"container\",\"image\"],\"event\":[\"start\",\"die\","          \
  "\"destroy\",\"remove\",\"rename\",\"health_status\",\"pause\","             \
  "\"unpause\",\"pull\",\"push\",\"tag\",\"untag\",\"delete\"]}"

struct rp_docker_track {
  struct rp_docker *d;    /* borrowed: owns this */
  struct rp_watch *watch; /* owned: connect, stream, list, reconnect */
  char since[40];         /* the last event's time, "sec.nanos" */
  /* owned: per container, the start of a running one and the labels object
   * last reported for it (shared with the tracker, never changed, so that
   * a re-list whose labels are the same makes no new one: a resync of
   * 10,000 containers then parses and keeps nothing per container), and
   * the image reference it was created from (Config.Image), for the
   * containers a list does not inspect again */
  struct rp_docker_known_table known;
  json_t *values; /* owned: label values shared between containers
                     (rp_json_labels) */
  /* Answers race events: an inspect or list asked before a container's
   * die/destroy event may come back after it, saying it runs.  Every event
   * has a number; gone_at maps an id to the number of its last die or
   * destroy, and an answer asked for before that is not believed. */
  uint64_t event_seq;
  json_t *gone_at; /* owned: id -> event number of its last die/destroy */
  json_t *recheck; /* owned: ids whose event could not be followed (the
                      inspect failed): the next list inspects them */
  int queries;     /* inspects and lists in flight: answers gone_at
                      judges.  With none in flight (and no list under
                      way) gone_at has nothing left to judge and is
                      emptied, so that it stays small under churn. */
  bool self_seen;  /* reaper's own container was in a list: said once */
  /* owned: image id -> what tracking needs of it: {"labels": its labels,
   * "repo_digests": [...], "created": ms, "platform": "os/arch"}, and
   * "stale": true once an image event may have changed its digests (an
   * image's labels never change; its RepoDigests do, with a pull, a push or
   * a tag) */
  json_t *image_facts;
  struct watcher *watchers; /* owned list: who waits on a container's news */
  /* owned: id -> true (a swarm task, by the engine's word) or false, for
   * the containers that carry swarm's task label */
  json_t *tasks;
  /* owned: id -> what a running container depends on, for those that do
   * (network, pid, ipc: the id whose namespace it shares; links: the names
   * it links to; name: its own), from its inspect (fixed at create) */
  json_t *deps;
};

/* One container of a list in progress. */
struct list_item {
  char id[65];
  bool task_label; /* it carries swarm's task label */
  bool paused;     /* frozen (docker pause): tracked, refused */
  bool inspect;    /* its start time is not known: to inspect */
  bool gone;       /* not running by its inspect: left out */
  int64_t started; /* ms, once known */
  char *image;     /* owned: its image id, or NULL */
  /* owned, once known: its name, a NUL, then its labels' JSON text (from
   * the list or the inspect; labels_len 0: none), parsed only when the
   * list is complete: the workloads, which the tracker keeps, are then
   * made one after the other rather than scattered among what the list's
   * parsing freed (RSS stays near what is in use). */
  char *data;
  size_t labels_len;
  /* owned reference, or NULL: the labels reported for it before, when the
   * list's are the same (labels_unchanged) */
  json_t *same;
};

/* One list in progress. */
struct listing {
  struct rp_docker_track *t;
  uint64_t asked_at;       /* t->event_seq when the list was asked for */
  struct list_item *items; /* owned */
  size_t n, cap;
  bool complete;  /* the whole list answer is in */
  size_t next;    /* the next item to look at for an inspect */
  json_t *images; /* owned: image ids whose labels are not known yet */
  /* owned: the same as a set: no quadratic look-up when every container
   * has an image of its own */
  json_t *images_asked;
  size_t next_image;
  bool want_tasks; /* some item carries swarm's task label */
  int inspecting;  /* inspects (containers, images, tasks) in flight */
  bool failed;
  char *error; /* owned */
};

/* The recycle runner, waiting on a container (ready, staying up): told of
 * every event about it, so that it looks at once. */
struct watcher {
  char id[72];
  void (*cb)(void *arg);
  void *arg;
  /* Its die event's exit code, once one came (a container run with --rm
   * is gone before an inspect could read it). */
  bool died;
  int exit_code;
  struct watcher *next;
};

static bool
stopping(const struct rp_docker_track *t)
{
  return rp_watch_stopping(t->watch);
}

static void
query_started(struct rp_docker_track *t)
{
  rp_watch_call_started(t->watch);
  t->queries++;
}

static int
call(struct rp_docker_track *t, const char *method, const char *path,
     rp_dockerapi_cb cb, void *arg, struct rp_error **err)
{
  if (rp_dockerapi_call(&t->d->api, method, path, NULL, 0, cb, arg, err) != 0)
    return -1;
  query_started(t);
  return 0;
}

/* An inspect, whose answer is read in part (rp_docker_inspect_digest). */
static int
inspect(struct rp_docker_track *t, const char *id, rp_dockerapi_cb cb,
        void *arg, struct rp_error **err)
{
  cleanup_free char *path = rp_xasprintf("/containers/%s/json", id);
  if (rp_dockerapi_get_raw(&t->d->api, path, cb, arg, err) != 0)
    return -1;
  query_started(t);
  return 0;
}

/* The end of a call() (an inspect or a list). */
static void
query_done(struct rp_docker_track *t)
{
  t->queries--;
  if (t->queries == 0 && !rp_watch_listing(t->watch))
    json_object_clear(t->gone_at);
  rp_watch_call_ended(t->watch);
}

/* --- workloads ---------------------------------------------------------- */

#define LABEL_SWARM_TASK "com.docker.swarm.task.id"
/* Compose's project and service (the report's service name), and the unit
 * podman generated (a note): the labels this provider reads itself. */
#define LABEL_COMPOSE_PROJECT "com.docker.compose.project"
#define LABEL_COMPOSE_SERVICE "com.docker.compose.service"
#define LABEL_PODMAN_UNIT "PODMAN_SYSTEMD_UNIT"

/* Whether tracking keeps a label: one the core reads (its configuration's
 * keys and reaper.*), or one read here.  The rest (compose's config hash,
 * working directory, files...) would cost a megabyte per thousand
 * containers and decide nothing. */
static bool
keeps_label(void *arg, const char *key, size_t len)
{
  static const char *const own[] = {LABEL_COMPOSE_PROJECT,
                                    LABEL_COMPOSE_SERVICE, LABEL_PODMAN_UNIT,
                                    LABEL_SWARM_TASK};
  const struct rp_docker *d = arg;
  for (size_t i = 0; i < sizeof(own) / sizeof(*own); i++)
    if (strlen(own[i]) == len && memcmp(own[i], key, len) == 0)
      return true;
  return rp_label_keys_want(d->p->label_keys, key, len);
}

static char *
image_path(const char *image)
{
  cleanup_free char *esc = rp_url_escape(image);
  return rp_xasprintf("/images/%s/json", esc);
}

/* The containers the engine says are swarm tasks (all of them, or `id`
 * alone): the is-task filter answers from the flag swarm's executor sets,
 * which no API caller can forge. */
static char *
tasks_path(const char *id)
{
  cleanup_json json_t *f =
      id ? json_pack("{s:[s], s:[s]}", "is-task", "true", "id", id)
         : json_pack("{s:[s]}", "is-task", "true");
  cleanup_free char *text = json_dumps(f, JSON_COMPACT);
  cleanup_free char *esc = rp_url_escape(text);
  return rp_xasprintf("/containers/json?all=1&filters=%s", esc);
}

/* What tracking needs of an image, from its inspect answer (NULL: gone;
 * nothing known then): its labels, and for fresh content its registry
 * digests, Created and platform. */
static void
remember_image(struct rp_docker_track *t, const char *image, json_t *body)
{
  json_t *labels = json_object_get(json_object_get(body, "Config"), "Labels");
  json_t *facts = json_pack("{s:o}", "labels",
                            json_is_object(labels) ? json_deep_copy(labels)
                                                   : json_object());
  json_t *digests = json_object_get(body, "RepoDigests");
  if (json_is_array(digests) && json_array_size(digests) > 0)
    json_object_set(facts, "repo_digests", digests);
  int64_t created = 0;
  if (rp_parse_time_ms(json_string_value(json_object_get(body, "Created")),
                       &created) == 0 &&
      created > 0)
    json_object_set_new(facts, "created", json_integer(created));
  const char *os = json_string_value(json_object_get(body, "Os"));
  const char *arch = json_string_value(json_object_get(body, "Architecture"));
  if (os && arch && *os && *arch) {
    struct rp_platform pf;
    char name[96];
    rp_platform_from_engine(
        os, arch, json_string_value(json_object_get(body, "Variant")), &pf);
    json_object_set_new(
        facts, "platform",
        json_string(rp_platform_format(&pf, name, sizeof(name))));
  }
  json_object_set_new(t->image_facts, image, facts);
}

/* An image's labels as known, or NULL. */
static json_t *
image_labels_of(const struct rp_docker_track *t, const char *image)
{
  return image
             ? json_object_get(json_object_get(t->image_facts, image), "labels")
             : NULL;
}

/* Whether an image's facts must be read (again). */
static bool
image_unknown(const struct rp_docker_track *t, const char *image)
{
  json_t *f = json_object_get(t->image_facts, image);
  return !f || json_is_true(json_object_get(f, "stale"));
}

static bool
is_listed(void *arg, const char *id)
{
  return rp_idset_has(arg, id);
}

/* After a list: what no listed container needs is forgotten, so that
 * nothing grows with churn.  listed: the ids of the running ones. */
static void
forget_unused_facts(struct rp_docker_track *t, const struct listing *l,
                    const struct rp_idset *listed)
{
  cleanup_json json_t *used = json_object();
  for (size_t i = 0; i < l->n; i++)
    if (l->items[i].image)
      json_object_set_new(used, l->items[i].image, json_true());
  void *tmp;
  const char *id;
  json_t *v;
  json_object_foreach_safe(t->image_facts, tmp, id, v)
  {
    if (!json_object_get(used, id))
      json_object_del(t->image_facts, id);
  }
  rp_docker_known_keep_only(&t->known, is_listed, (void *)(uintptr_t)listed);
  json_object_foreach_safe(t->tasks, tmp, id, v)
  {
    if (!rp_idset_has(listed, id))
      json_object_del(t->tasks, id);
  }
}

/* Which of the listed containers with swarm's task label the engine calls
 * tasks (`answer`: the is-task=true list). */
static void
remember_tasks(struct rp_docker_track *t, const struct listing *l,
               json_t *answer)
{
  json_object_clear(t->tasks);
  for (size_t i = 0; i < l->n; i++)
    if (l->items[i].task_label)
      json_object_set_new(t->tasks, l->items[i].id, json_false());
  size_t i;
  json_t *c;
  json_array_foreach(answer, i, c)
  {
    const char *cid = json_string_value(json_object_get(c, "Id"));
    if (cid)
      json_object_set_new(t->tasks, cid, json_true());
  }
}

/* --- what depends on what ------------------------------------------------
 * Recreating a container gives it new namespaces and a new address: another
 * container sharing its network namespace would be left without a network,
 * one sharing its PID namespace would have its processes killed, one on its
 * IPC namespace would keep a namespace no one else has, and one linked to it
 * (the legacy --link) would keep a link to a container that is gone.  Such a
 * container is refused (shown in plan, recycle.refused once) with the
 * dependents named; the dependents themselves are recreated with their
 * dependency by name.  --volumes-from needs nothing: volumes outlive a
 * recreate.  What a container depends on is fixed when it is created, so
 * its inspect tells it once. */

/* "container:<id>" -> the id, else NULL. */
static const char *
namespace_owner(const json_t *mode)
{
  const char *m = json_string_value(mode);
  return m && strncmp(m, "container:", 10) == 0 && m[10] ? m + 10 : NULL;
}

/* Notes what a running container (an inspect digest) depends on; true when
 * that changed. */
static bool
note_deps(struct rp_docker_track *t, const char *id, const char *name,
          const json_t *digest)
{
  json_t *hc = json_object_get((json_t *)(uintptr_t)digest, "HostConfig");
  cleanup_json json_t *deps = json_object();
  static const char *const modes[][2] = {
      {"network", "NetworkMode"}, {"pid", "PidMode"}, {"ipc", "IpcMode"}};
  for (size_t i = 0; i < RP_ARRAY_LEN(modes); i++) {
    const char *owner = namespace_owner(json_object_get(hc, modes[i][1]));
    if (owner && strcmp(owner, id) != 0)
      json_object_set_new(deps, modes[i][0], json_string(owner));
  }
  json_t *links = json_array();
  size_t i;
  json_t *l;
  json_array_foreach(json_object_get(hc, "Links"), i, l)
  {
    /* "/target:/this/alias" */
    const char *link = json_string_value(l);
    const char *colon = link ? strchr(link, ':') : NULL;
    if (!link || !colon)
      continue;
    const char *target = link[0] == '/' ? link + 1 : link;
    if (colon > target)
      json_array_append_new(links,
                            json_stringn(target, (size_t)(colon - target)));
  }
  if (json_array_size(links))
    json_object_set_new(deps, "links", links);
  else
    json_decref(links);
  /* "<container>[:ro|:rw]": its volumes are taken at create, and need it
   * to be there, under that name, when this one is recreated. */
  json_t *from = json_array();
  json_array_foreach(json_object_get(hc, "VolumesFrom"), i, l)
  {
    const char *entry = json_string_value(l);
    const char *colon = entry ? strchr(entry, ':') : NULL;
    size_t len = entry ? (colon ? (size_t)(colon - entry) : strlen(entry)) : 0;
    if (len)
      json_array_append_new(from, json_stringn(entry, len));
  }
  if (json_array_size(from))
    json_object_set_new(deps, "volumes_from", from);
  else
    json_decref(from);
  json_t *before = json_object_get(t->deps, id);
  if (json_object_size(deps) == 0) {
    if (!before)
      return false;
    json_object_del(t->deps, id);
    return true;
  }
  json_object_set_new(deps, "name", json_string(name ? name : id));
  if (before && json_equal(before, deps))
    return false;
  json_object_set(t->deps, id, deps);
  return true;
}

/* A running container is gone: what it depended on no longer holds.  True
 * when it depended on something. */
static bool
forget_deps(struct rp_docker_track *t, const char *id)
{
  if (!json_object_get(t->deps, id))
    return false;
  json_object_del(t->deps, id);
  return true;
}

static bool
member_is(const json_t *o, const char *key, const char *value)
{
  const char *v =
      json_string_value(json_object_get((json_t *)(uintptr_t)o, key));
  return v && value && strcmp(v, value) == 0;
}

/* What id needs as it is (rp_workload.depends_on), or NULL. */
static char **
depends_on(const struct rp_docker_track *t, const char *id)
{
  json_t *dep = json_object_get(t->deps, id);
  if (!dep)
    return NULL;
  char **v = NULL;
  static const char *const modes[] = {"network", "pid", "ipc"};
  for (size_t i = 0; i < RP_ARRAY_LEN(modes); i++)
    if (json_is_string(json_object_get(dep, modes[i])))
      rp_strv_push(&v, json_string_value(json_object_get(dep, modes[i])));
  static const char *const lists[] = {"links", "volumes_from"};
  for (size_t i = 0; i < RP_ARRAY_LEN(lists); i++) {
    size_t k;
    json_t *x;
    json_array_foreach(json_object_get(dep, lists[i]), k, x)
    {
      rp_strv_push(&v, json_string_value(x));
    }
  }
  return v;
}

static int
compare_strings(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Why id (named name) must not be recreated under the containers that
 * depend on it, or NULL: each dependent and how, in name order, so that
 * the reason is the same until they change. */
static char *
dependents_reason(const struct rp_docker_track *t, const char *id,
                  const char *name)
{
  char *what[16];
  size_t n = 0, more = 0;
  const char *dep_id;
  json_t *dep;
  json_object_foreach(t->deps, dep_id, dep)
  {
    const char *dep_name = json_string_value(json_object_get(dep, "name"));
    const char *how = NULL;
    if (member_is(dep, "network", id))
      how = "shares its network namespace (network container:)";
    else if (member_is(dep, "pid", id))
      how = "shares its PID namespace (pid container:), whose processes "
            "would be killed";
    else if (member_is(dep, "ipc", id))
      how = "shares its IPC namespace (ipc container:)";
    else {
      size_t i;
      json_t *l;
      json_array_foreach(json_object_get(dep, "links"), i, l)
      {
        if (name && strcmp(json_string_value(l), name) == 0)
          how = "links to it (--link), and would keep a link to a container "
                "that is gone";
      }
    }
    if (!how)
      continue;
    if (n == RP_ARRAY_LEN(what)) {
      more++;
      continue;
    }
    what[n++] = rp_xasprintf("%s %s", dep_name ? dep_name : dep_id, how);
  }
  if (n == 0)
    return NULL;
  qsort(what, n, sizeof(*what), compare_strings);
  struct rp_buf b;
  rp_buf_init(&b, 4096);
  for (size_t i = 0; i < n; i++) {
    rp_buf_addf(&b, "%s%s", i ? "; " : "", what[i]);
    free(what[i]);
  }
  if (more)
    rp_buf_addf(&b, "; and %zu more", more);
  rp_buf_addf(&b,
              ": recreating it would break %s; recycle %s with it, or "
              "exclude it",
              n + more > 1 ? "them" : "it", n + more > 1 ? "them" : "that one");
  return rp_buf_take(&b);
}

/* The image reference a container was created from, as known, or NULL. */
static const char *
known_ref(const struct rp_docker_track *t, const char *id)
{
  const struct rp_docker_known *k = rp_docker_known_find(&t->known, id);
  return k ? json_string_value(k->ref) : NULL;
}

/* labels: the container's (taken over: an object becomes the workload's,
 * less what is not its creator's word, unless that was done already:
 * filtered), or NULL.  task_label: the container's own labels have swarm's
 * task label. */
static struct rp_workload *
make_workload_as(struct rp_docker *d, const char *id, const char *name,
                 json_t *labels, bool filtered, bool task_label,
                 const char *image_id, const char *ref, bool paused,
                 int64_t started_ms)
{
  struct rp_docker_track *t = d->track;
  struct rp_workload *w =
      rp_workload_new(d->p->name, RP_KIND_CONTAINER, id, name, started_ms);
  json_t *facts =
      t && image_id ? json_object_get(t->image_facts, image_id) : NULL;
  json_t *from_image = json_object_get(facts, "labels");
  /* What it runs, for fresh content. */
  if (ref && *ref)
    w->image.ref = rp_xstrdup(ref);
  if (image_id && *image_id)
    w->image.id = rp_xstrdup(image_id);
  w->image.repo_digests =
      rp_strv_from_json(json_object_get(facts, "repo_digests"));
  w->image.created_ms = json_integer_value(json_object_get(facts, "created"));
  const char *platform = json_string_value(json_object_get(facts, "platform"));
  if (platform)
    w->image.platform = rp_xstrdup(platform);
  if (json_is_object(labels) && filtered) {
    json_decref(w->labels);
    w->labels = labels;
  } else if (json_is_object(labels)) {
    void *tmp;
    const char *k;
    json_t *v;
    size_t klen;
    json_object_keylen_foreach_safe(labels, tmp, k, klen, v)
    {
      /* Not a string, the image's word rather than the creator's, or
       * nothing anyone reads. */
      if (!json_is_string(v) || json_equal(json_object_get(from_image, k), v) ||
          !keeps_label(d, k, klen))
        json_object_deln(labels, k, klen);
    }
    json_decref(w->labels);
    w->labels = labels;
  } else if (labels) {
    json_decref(labels);
  }
  if (d->self_id && strcmp(d->self_id, id) == 0)
    w->protected_reason = rp_xstrdup("reaper's own container");
  if (paused)
    /* A pause is often an incident responder freezing evidence: a recycle
     * would destroy that state.  Left alone, and said, until unpaused. */
    w->refusal = rp_xstrdup("it is paused (its frozen state may be "
                            "evidence); unpause it to let it be recycled");
  else if (t && !w->protected_reason)
    w->refusal = dependents_reason(t, id, name);
  if (t)
    w->depends_on = depends_on(t, id);
  if (!w->protected_reason && task_label && t &&
      json_is_true(json_object_get(t->tasks, id)))
    w->protected_reason =
        rp_xstrdup("swarm task container: recycled through its service");
  else if (task_label)
    w->note = rp_xstrdup("carries swarm's task label, but the engine says "
                         "it is not a swarm task: a plain container");
  /* Compose's project and service: the replicas' one name, for the
   * report (labels are the workload's word: enough for grouping). */
  const char *project = rp_workload_label(w, LABEL_COMPOSE_PROJECT);
  const char *service = rp_workload_label(w, LABEL_COMPOSE_SERVICE);
  if (project && service)
    w->service = rp_xasprintf("%.100s-%.100s", project, service);
  /* A systemd unit that podman generated runs this container: said, never
   * obeyed (a label is the workload's word); operators who want it left to
   * systemd exclude it in their configuration (README, "Podman"). */
  const char *unit = rp_workload_label(w, LABEL_PODMAN_UNIT);
  if (unit && !w->note)
    w->note = rp_xasprintf("systemd unit %.200s runs it (podman generated "
                           "it); exclude it to leave it to systemd",
                           unit);
  return w;
}

static struct rp_workload *
make_workload(struct rp_docker *d, const char *id, const char *name,
              json_t *labels, const char *image_id, const char *ref,
              bool paused, int64_t started_ms)
{
  bool task_label = json_object_get(labels, LABEL_SWARM_TASK) != NULL;
  return make_workload_as(d, id, name, labels, false, task_label, image_id, ref,
                          paused, started_ms);
}

struct rp_workload *
rp_docker_workload_from_inspect(struct rp_docker *d, const json_t *inspect)
{
  json_t *in = (json_t *)(uintptr_t)inspect; /* jansson is not const-clean */
  const char *id = json_string_value(json_object_get(in, "Id"));
  const char *name = json_string_value(json_object_get(in, "Name"));
  json_t *state = json_object_get(in, "State");
  json_t *config = json_object_get(in, "Config");
  if (!id || !json_is_object(state))
    return NULL;
  if (!json_is_true(json_object_get(state, "Running")) ||
      json_is_true(json_object_get(state, "Restarting")))
    return NULL;
  int64_t started = 0;
  if (rp_parse_time_ms(json_string_value(json_object_get(state, "StartedAt")),
                       &started) != 0 ||
      started <= 0)
    return NULL;
  if (name && name[0] == '/')
    name++;
  json_t *labels = json_object_get(config, "Labels");
  const char *ref = json_string_value(json_object_get(config, "Image"));
  struct rp_docker_known *k =
      d->track && ref ? rp_docker_known_add(&d->track->known, id) : NULL;
  if (k)
    rp_docker_known_set_ref(&d->track->known, k, ref);
  return make_workload(d, id, name,
                       json_is_object(labels) ? json_copy(labels) : NULL,
                       json_string_value(json_object_get(in, "Image")), ref,
                       json_is_true(json_object_get(state, "Paused")), started);
}

/* The longest uptime a list item's Status can mean ("Up 5 minutes
 * (healthy)"), in ms, or -1 when it does not say.  The engine rounds as
 * go-units' HumanDuration does; these are the upper ends of its ranges. */
static int64_t
status_max_uptime_ms(const char *status)
{
  if (!status || strncmp(status, "Up ", 3) != 0)
    return -1;
  const char *s = status + 3;
  const int64_t sec = 1000, min = 60 * sec, hour = 60 * min, day = 24 * hour;
  if (strncmp(s, "Less than a second", 18) == 0)
    return sec;
  if (strncmp(s, "About a minute", 14) == 0)
    return 2 * min;
  if (strncmp(s, "About an hour", 13) == 0)
    return hour + hour / 2;
  char *end;
  long n = strtol(s, &end, 10);
  /* A hundred years is more than any answer means: past it, no bound. */
  if (end == s || n < 0 || n > 100L * 366 * 24 * 3600)
    return -1;
  while (*end == ' ')
    end++;
  if (strncmp(end, "second", 6) == 0)
    return (n + 1) * sec;
  if (strncmp(end, "minute", 6) == 0)
    return (n + 1) * min;
  if (strncmp(end, "hour", 4) == 0)
    return n * hour + hour / 2;
  if (strncmp(end, "day", 3) == 0)
    return (n + 1) * day;
  if (strncmp(end, "week", 4) == 0)
    return (n + 1) * 7 * day;
  if (strncmp(end, "month", 5) == 0)
    return (n + 1) * 30 * day;
  return -1; /* years: nothing to learn */
}

/* Why an inspect answer cannot be taken as a container's state, or NULL.
 * A truncated or garbled answer must never read as "not running": the
 * container would vanish from tracking and come back with its history
 * lost, or a restart would go unseen. */
static const char *
inspect_problem(json_t *body, const char *id)
{
  if (!body)
    return "the answer is not JSON";
  if (!json_is_object(body))
    return "the answer is not a container (not a JSON object)";
  const char *got = json_string_value(json_object_get(body, "Id"));
  if (!got || strlen(got) != 64)
    return "the answer has no container Id";
  if (strcmp(got, id) != 0)
    return "the answer is about another container";
  json_t *state = json_object_get(body, "State");
  json_t *running = json_object_get(state, "Running");
  if (!json_is_boolean(running))
    return "the answer has no State.Running";
  int64_t started = 0;
  if (json_is_true(running) &&
      (rp_parse_time_ms(json_string_value(json_object_get(state, "StartedAt")),
                        &started) != 0 ||
       started <= 0))
    return "State.StartedAt of a running container is not a time";
  return NULL;
}

/* A JSON string's value, from its text (a slice); NULL when it is not a
 * string. */
static char *
slice_string(struct rp_json_slice v)
{
  if (!v.p || v.n < 2 || v.p[0] != '"')
    return NULL;
  if (rp_json_plain_string(v))
    return rp_xstrndup(v.p + 1, v.n - 2);
  cleanup_json json_t *j = rp_json_value(v);
  return json_is_string(j) ? rp_xstrdup(json_string_value(j)) : NULL;
}

/* Of an object (a slice), the members named, parsed; the object whole when
 * it is not one (its reader says what is wrong). */
static json_t *
members_digest(struct rp_json_slice obj, const char *const *keys, size_t n)
{
  struct rp_json_slice v[8];
  if (n > RP_ARRAY_LEN(v) || rp_json_members(obj.p, obj.n, keys, n, v) < 0)
    return rp_json_value(obj); /* not an object: as it is */
  json_t *d = json_object();
  for (size_t k = 0; k < n; k++) {
    if (!v[k].p)
      continue;
    json_t *x = rp_json_value(v[k]);
    if (!x) {
      json_decref(d);
      return NULL;
    }
    json_object_set_new(d, keys[k], x);
  }
  return d;
}

/* Of a container's State, what tracking reads. */
static json_t *
state_digest(struct rp_json_slice state)
{
  static const char *const keys[] = {"Running", "Restarting", "Paused",
                                     "StartedAt"};
  return members_digest(state, keys, RP_ARRAY_LEN(keys));
}

/* Of its HostConfig, how it depends on other containers. */
static json_t *
host_config_digest(struct rp_json_slice hc)
{
  static const char *const keys[] = {"NetworkMode", "PidMode", "IpcMode",
                                     "Links", "VolumesFrom"};
  return members_digest(hc, keys, RP_ARRAY_LEN(keys));
}

/* rp_docker_inspect_digest; with labels_out, Config.Labels is not parsed
 * but handed out as text ({NULL, 0} when there is none, and the digest's
 * Config left empty). */
static json_t *
inspect_digest(const char *text, size_t len, struct rp_json_slice *labels_out)
{
  static const char *const keys[] = {"Id",    "Name",   "Image",
                                     "State", "Config", "HostConfig"};
  if (labels_out)
    *labels_out = (struct rp_json_slice){NULL, 0};
  struct rp_json_slice v[RP_ARRAY_LEN(keys)];
  if (rp_json_members(text, len, keys, RP_ARRAY_LEN(keys), v) < 0)
    /* Not an object: jansson says whether it is JSON at all. */
    return json_loadb(text, len, JSON_DECODE_ANY, NULL);
  json_t *d = json_object();
  for (size_t k = 0; k < RP_ARRAY_LEN(keys); k++) {
    if (!v[k].p)
      continue;
    json_t *x;
    struct rp_json_slice labels;
    if (strcmp(keys[k], "State") == 0) {
      x = state_digest(v[k]);
    } else if (strcmp(keys[k], "HostConfig") == 0) {
      x = host_config_digest(v[k]);
    } else if (strcmp(keys[k], "Config") != 0) {
      x = rp_json_value(v[k]);
    } else {
      /* Of Config, only its Labels (and Image: the reference it was
       * created from, for fresh content). */
      struct rp_json_slice image;
      int has_image = rp_json_member(v[k].p, v[k].n, "Image", &image);
      int found = rp_json_member(v[k].p, v[k].n, "Labels", &labels);
      if (found == 1 && labels_out) {
        *labels_out = labels;
        found = 0;
      }
      x = found < 0    ? rp_json_value(v[k])
          : found == 0 ? json_object()
                       : json_pack("{s:o*}", "Labels", rp_json_value(labels));
      if (found == 1 && !json_object_get(x, "Labels")) {
        json_decref(x);
        x = NULL;
      }
      if (x && has_image == 1 && !json_object_get(x, "Image")) {
        json_t *iv = rp_json_value(image);
        if (json_is_string(iv))
          json_object_set_new(x, "Image", iv);
        else
          json_decref(iv);
      }
    }
    if (!x) {
      json_decref(d);
      return NULL;
    }
    json_object_set_new(d, keys[k], x);
  }
  return d;
}

json_t *
rp_docker_inspect_digest(const char *text, size_t len)
{
  return inspect_digest(text, len, NULL);
}

/* Whether an inspect answer (that inspect_problem found sound) is of a
 * running container, and since when: as rp_docker_workload_from_inspect
 * decides. */
static bool
inspect_running(json_t *body, int64_t *started)
{
  json_t *state = json_object_get(body, "State");
  if (!json_is_true(json_object_get(state, "Running")) ||
      json_is_true(json_object_get(state, "Restarting")))
    return false;
  return rp_parse_time_ms(
             json_string_value(json_object_get(state, "StartedAt")), started) ==
             0 &&
         *started > 0;
}

/* What was reported of a running container: its start, its labels.  Only
 * what changed is stored again, so that a resync that finds nothing new
 * allocates nothing that outlives it (which would pin the pages its
 * parsing used, and RSS would climb with every resync). */
static void
remember(struct rp_docker_track *t, const struct rp_workload *w)
{
  struct rp_docker_known *k = rp_docker_known_add(&t->known, w->id);
  if (!k)
    return;
  k->running = true;
  k->started_ms = w->started_ms;
  if (k->labels != w->labels) {
    json_decref(k->labels);
    k->labels = json_incref(w->labels);
  }
}

/* --- inspect, for events ------------------------------------------------ */

struct inspect_one {
  struct rp_docker_track *t;
  uint64_t asked_at; /* t->event_seq when it was asked for */
  char id[72];
};

/* Whether a die/destroy of id came after an answer asked for at `asked_at`:
 * then an answer saying it runs is older than what is known. */
static bool
gone_since(const struct rp_docker_track *t, const char *id, uint64_t asked_at)
{
  json_t *g = json_object_get(t->gone_at, id);
  return g && (uint64_t)json_integer_value(g) > asked_at;
}

static void report_inspect(struct rp_docker_track *t, const char *id,
                           const json_t *body, uint64_t asked_at);

/* An inspected container waits for the engine's facts about it (its
 * image's labels, whether it is a swarm task) before it is reported. */
struct fact_wait {
  struct rp_docker_track *t;
  char id[72];
  uint64_t asked_at;
  json_t *body; /* owned: the inspect answer */
  int pending;
  bool failed;
};

static void
fact_wait_done(struct fact_wait *fw)
{
  struct rp_docker_track *t = fw->t;
  if (!stopping(t)) {
    if (fw->failed) {
      rp_warn("provider %s: %.12s: the engine's facts about it are not "
              "known: looked at again at the next resync",
              t->d->p->name, fw->id);
      json_object_set_new(t->recheck, fw->id, json_true());
    } else if (!gone_since(t, fw->id, fw->asked_at)) {
      report_inspect(t, fw->id, fw->body, fw->asked_at);
    }
  }
  json_decref(fw->body);
  free(fw);
}

static void
fact_image_cb(void *arg, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct fact_wait *fw = arg;
  const char *image = json_string_value(json_object_get(fw->body, "Image"));
  if (err && err->code != RP_ENOTFOUND)
    fw->failed = true;
  else if (image)
    remember_image(fw->t, image, err ? NULL : r->body);
  query_done(fw->t);
  if (--fw->pending == 0)
    fact_wait_done(fw);
}

static void
fact_task_cb(void *arg, const struct rp_dockerapi_reply *r,
             const struct rp_error *err)
{
  struct fact_wait *fw = arg;
  if (err || !json_is_array(r->body))
    fw->failed = true;
  else
    json_object_set_new(fw->t->tasks, fw->id,
                        json_boolean(json_array_size(r->body) > 0));
  query_done(fw->t);
  if (--fw->pending == 0)
    fact_wait_done(fw);
}

/* Asks for what is missing; false when nothing is (report now). */
static bool
wait_for_facts(struct rp_docker_track *t, const char *id, const json_t *body,
               uint64_t asked_at)
{
  json_t *in = (json_t *)(uintptr_t)body;
  const char *image = json_string_value(json_object_get(in, "Image"));
  json_t *labels = json_object_get(json_object_get(in, "Config"), "Labels");
  bool need_image = image && *image && image_unknown(t, image);
  bool need_task = json_object_get(labels, LABEL_SWARM_TASK) &&
                   t->d->api.kind->swarm && !json_object_get(t->tasks, id);
  if (!need_image && !need_task)
    return false;
  struct fact_wait *fw = rp_xcalloc(1, sizeof(*fw));
  fw->t = t;
  snprintf(fw->id, sizeof(fw->id), "%s", id);
  fw->asked_at = asked_at;
  fw->body = json_incref(in);
  fw->pending = 1; /* until both are asked */
  cleanup_error struct rp_error *err = NULL;
  if (need_image) {
    cleanup_free char *path = image_path(image);
    if (call(t, "GET", path, fact_image_cb, fw, &err) == 0)
      fw->pending++;
    else
      fw->failed = true;
  }
  if (need_task) {
    cleanup_free char *path = tasks_path(id);
    rp_error_free(err);
    err = NULL;
    if (call(t, "GET", path, fact_task_cb, fw, &err) == 0)
      fw->pending++;
    else
      fw->failed = true;
  }
  if (--fw->pending == 0)
    fact_wait_done(fw);
  return true;
}

/* Whether an inspect answer (or NULL: gone) is of a running container. */
static bool
inspect_running_now(const json_t *body)
{
  int64_t started;
  return body && inspect_running((json_t *)(uintptr_t)body, &started);
}

static void
report_inspect(struct rp_docker_track *t, const char *id, const json_t *body,
               uint64_t asked_at)
{
  struct rp_docker *d = t->d;
  if (body &&
      json_is_true(json_object_get(
          json_object_get((json_t *)(uintptr_t)body, "State"), "Running")) &&
      wait_for_facts(t, id, body, asked_at))
    return;
  /* What it depends on changed (it started, or went): the containers it
   * depends on are made again, their refusal with them.  Noted first: its
   * own workload says what it depends on. */
  bool running = inspect_running_now(body);
  const char *name =
      json_string_value(json_object_get((json_t *)(uintptr_t)body, "Name"));
  if (name && name[0] == '/')
    name++;
  bool deps_changed =
      running ? note_deps(t, id, name, body) : forget_deps(t, id);
  struct rp_workload *w =
      body ? rp_docker_workload_from_inspect(d, body) : NULL;
  if (w) {
    remember(t, w);
    d->p->hooks.upsert(d->p->hooks.core, d->p, w);
    rp_workload_free(w);
  } else if (rp_docker_known_stopped(&t->known, id)) {
    d->p->hooks.removed(d->p->hooks.core, d->p, id);
  }
  if (deps_changed)
    rp_watch_resync(t->watch);
}

static void
inspect_one_cb(void *arg, const struct rp_dockerapi_reply *r,
               const struct rp_error *err)
{
  struct inspect_one *io = arg;
  struct rp_docker_track *t = io->t;
  cleanup_json json_t *body =
      err ? NULL : rp_docker_inspect_digest(r->raw, r->raw_len);
  const char *bad = err ? NULL : inspect_problem(body, io->id);
  if (stopping(t)) {
    /* nothing to report to */
  } else if (err && err->code == RP_ENOTFOUND) {
    report_inspect(t, io->id, NULL, io->asked_at);
  } else if (err || bad) {
    /* What the event meant is unknown: what was known stays, and the next
     * list looks at this container again. */
    rp_warn("provider %s: inspect %.12s: %s: keeping what was known until "
            "the next resync",
            t->d->p->name, io->id, err ? err->message : bad);
    json_object_set_new(t->recheck, io->id, json_true());
  } else if (gone_since(t, io->id, io->asked_at) &&
             json_is_true(
                 json_object_get(json_object_get(body, "State"), "Running"))) {
    /* Asked before it died: the answer is stale; a later start event
     * brings it back. */
  } else {
    report_inspect(t, io->id, body, io->asked_at);
  }
  free(io);
  query_done(t);
}

static void
inspect_event(struct rp_docker_track *t, const char *id)
{
  struct inspect_one *io = rp_xcalloc(1, sizeof(*io));
  io->t = t;
  io->asked_at = t->event_seq;
  snprintf(io->id, sizeof(io->id), "%s", id);
  cleanup_error struct rp_error *err = NULL;
  if (inspect(t, io->id, inspect_one_cb, io, &err) != 0) {
    rp_warn("provider %s: inspect %.12s: %s", t->d->p->name, id, err->message);
    free(io);
  }
}

/* --- events ------------------------------------------------------------- */

/* Calls the watchers of id (of every container when id is NULL).  A
 * watcher may unwatch itself (or others) from its callback: the list is
 * walked by what is left of it after each call. */
static void
tell_watchers(struct rp_docker_track *t, const char *id)
{
  size_t n = 0;
  for (struct watcher *w = t->watchers; w; w = w->next)
    if (!id || strcmp(w->id, id) == 0)
      n++;
  if (n == 0)
    return;
  cleanup_free struct watcher **due = rp_xcalloc(n, sizeof(*due));
  size_t k = 0;
  for (struct watcher *w = t->watchers; w; w = w->next)
    if (!id || strcmp(w->id, id) == 0)
      due[k++] = w;
  for (size_t i = 0; i < k; i++) {
    bool still = false;
    for (struct watcher *w = t->watchers; w && !still; w = w->next)
      still = w == due[i];
    if (still)
      due[i]->cb(due[i]->arg);
  }
}

/* A die event's exit code (Actor.Attributes.exitCode, a string), kept by
 * the watchers of that container. */
static void
note_exit(struct rp_docker_track *t, const char *id, const json_t *ev)
{
  json_t *e = (json_t *)(uintptr_t)ev; /* jansson is not const-clean */
  const char *code = json_string_value(json_object_get(
      json_object_get(json_object_get(e, "Actor"), "Attributes"), "exitCode"));
  char *end = NULL;
  long v = code ? strtol(code, &end, 10) : 0;
  if (!code || !*code || *end || v < INT_MIN || v > INT_MAX)
    return;
  for (struct watcher *w = t->watchers; w; w = w->next)
    if (strcmp(w->id, id) == 0) {
      w->died = true;
      w->exit_code = (int)v;
    }
}

bool
rp_docker_track_exit_code(struct rp_docker *d, const char *id, int *code)
{
  for (struct watcher *w = d->track ? d->track->watchers : NULL; w; w = w->next)
    if (w->died && strcmp(w->id, id) == 0) {
      *code = w->exit_code;
      return true;
    }
  return false;
}

void *
rp_docker_track_watch(struct rp_docker *d, const char *id,
                      void (*cb)(void *arg), void *arg)
{
  struct rp_docker_track *t = d->track;
  if (!t)
    return NULL;
  struct watcher *w = rp_xcalloc(1, sizeof(*w));
  snprintf(w->id, sizeof(w->id), "%s", id);
  w->cb = cb;
  w->arg = arg;
  w->next = t->watchers;
  t->watchers = w;
  return w;
}

void
rp_docker_track_unwatch(struct rp_docker *d, void *handle)
{
  struct rp_docker_track *t = d->track;
  if (!t || !handle)
    return;
  for (struct watcher **pp = &t->watchers; *pp; pp = &(*pp)->next) {
    if (*pp == handle) {
      struct watcher *w = *pp;
      *pp = w->next;
      free(w);
      return;
    }
  }
}

static int
on_event_line(void *arg, const char *line, size_t len)
{
  struct rp_docker_track *t = arg;
  if (len == 0)
    return 0;
  json_error_t jerr;
  cleanup_json json_t *ev = json_loadb(line, len, 0, &jerr);
  if (!json_is_object(ev)) {
    rp_warn("provider %s: event stream: not JSON (%s), line ignored",
            t->d->p->name, jerr.text);
    return 0;
  }
  json_t *tn = json_object_get(ev, "timeNano");
  if (json_is_integer(tn)) {
    json_int_t ns = json_integer_value(tn);
    if (ns > 0) /* a negative time would make a malformed since= */
      snprintf(t->since, sizeof(t->since), "%lld.%09lld",
               (long long)(ns / 1000000000), (long long)(ns % 1000000000));
  }
  const char *type = json_string_value(json_object_get(ev, "Type"));
  const char *action = json_string_value(json_object_get(ev, "Action"));
  const char *id =
      json_string_value(json_object_get(json_object_get(ev, "Actor"), "ID"));
  if (type && strcmp(type, "image") == 0) {
    /* A pull, push or tag may give an image new registry digests, or take
     * one away (the workloads' content, for fresh content): what is known
     * of images is read again, by the next inspect of a container that
     * runs one and at the next re-list (not at once: a busy build host
     * sends these all day).  Their labels stay (they never change). */
    rp_debug("provider %s: image event %s", t->d->p->name,
             action ? action : "?");
    const char *k;
    json_t *f;
    json_object_foreach(t->image_facts, k, f)
    {
      json_object_set_new(f, "stale", json_true());
    }
    return 0;
  }
  if (!type || strcmp(type, "container") != 0 || !action || !id)
    return 0;
  if (strlen(id) != 64) {
    rp_warn("provider %s: event with a malformed container id ignored",
            t->d->p->name);
    return 0;
  }
  rp_debug("provider %s: event %s %.12s", t->d->p->name, action, id);
  if (strcmp(action, "die") == 0)
    note_exit(t, id, ev);
  tell_watchers(t, id);
  t->event_seq++;
  rp_watch_touch(t->watch, id, NULL); /* looked at again after a list */
  if (strcmp(action, "start") == 0 || strcmp(action, "rename") == 0 ||
      strcmp(action, "pause") == 0 || strcmp(action, "unpause") == 0) {
    inspect_event(t, id);
  } else if (strcmp(action, "die") == 0 || strcmp(action, "destroy") == 0 ||
             strcmp(action, "remove") == 0) {
    json_object_set_new(t->gone_at, id, json_integer((json_int_t)t->event_seq));
    if (rp_docker_known_stopped(&t->known, id))
      t->d->p->hooks.removed(t->d->p->hooks.core, t->d->p, id);
    if (forget_deps(t, id))
      rp_watch_resync(t->watch); /* what it depended on is free again */
  }
  return 0;
}

static void
stream_done_cb(void *arg, const struct rp_error *err)
{
  struct rp_docker_track *t = arg;
  /* Events may be lost until the stream is back: the watchers look. */
  tell_watchers(t, NULL);
  cleanup_free char *why = err ? rp_dockerapi_explain(&t->d->api, err) : NULL;
  rp_watch_stream_ended(t->watch, why);
}

/* The watch's stream op: from the last event seen, so that a reconnect
 * loses none the engine still has. */
static int
start_stream(void *ctx, struct rp_http_xfer **xfer, struct rp_error **err)
{
  struct rp_docker_track *t = ctx;
  cleanup_free char *filters = rp_url_escape(EVENT_FILTER);
  cleanup_free char *path =
      t->since[0]
          ? rp_xasprintf("/events?filters=%s&since=%s", filters, t->since)
          : rp_xasprintf("/events?filters=%s", filters);
  return rp_dockerapi_stream(&t->d->api, path, on_event_line, stream_done_cb, t,
                             xfer, err);
}

/* --- list --------------------------------------------------------------- */

static void list_pump(struct listing *l);

static void
listing_free(struct listing *l)
{
  for (size_t i = 0; i < l->n; i++) {
    free(l->items[i].data);
    free(l->items[i].image);
    if (l->items[i].same)
      json_decref(l->items[i].same);
  }
  free(l->items);
  json_decref(l->images);
  json_decref(l->images_asked);
  free(l->error);
  free(l);
}

static void
list_fail(struct listing *l, char *why)
{
  if (!l->failed) {
    l->failed = true;
    l->error = why;
  } else {
    free(why);
  }
}

static void
list_finish(struct listing *l)
{
  struct rp_docker_track *t = l->t;
  struct rp_docker *d = t->d;
  if (stopping(t) || l->failed) {
    cleanup_free char *why = l->error ? RP_STEAL(l->error) : NULL;
    listing_free(l);
    rp_watch_list_failed(t->watch, why);
    return;
  }
  /* Every item now has its start time: report the whole list.  Each item
   * gives its labels up as its workload is made, so that the list never
   * holds two copies of them. */
  cleanup_free struct rp_workload **v = rp_xcalloc(l->n + 1, sizeof(*v));
  struct rp_idset fresh; /* the running ones' ids */
  rp_idset_init(&fresh, l->n);
  size_t n = 0;
  /* A dependent the list no longer has holds nothing back any more: its
   * dependencies go before the list's workloads (their refusals) are
   * made. */
  {
    struct rp_idset listed;
    rp_idset_init(&listed, l->n);
    for (size_t i = 0; i < l->n; i++)
      if (!l->items[i].gone && !gone_since(t, l->items[i].id, l->asked_at))
        rp_idset_add(&listed, l->items[i].id);
    void *it_tmp;
    const char *dep_id;
    json_t *dep;
    json_object_foreach_safe(t->deps, it_tmp, dep_id, dep)
    {
      if (!rp_idset_has(&listed, dep_id))
        json_object_del(t->deps, dep_id);
    }
    rp_idset_clear(&listed);
  }
  for (size_t i = 0; i < l->n; i++) {
    struct list_item *it = &l->items[i];
    /* The containers whose events could not be followed have been looked
     * at. */
    if (it->inspect)
      json_object_del(t->recheck, it->id);
    if (it->gone)
      continue; /* stopped between list and inspect */
    if (gone_since(t, it->id, l->asked_at))
      continue; /* died after the list was made: the list is stale there */
    const char *name = it->data;
    if (it->same) {
      v[n++] = make_workload_as(d, it->id, name, RP_STEAL(it->same), true,
                                it->task_label, it->image, known_ref(t, it->id),
                                it->paused, it->started);
      remember(t, v[n - 1]);
      rp_idset_add(&fresh, it->id);
      continue;
    }
    struct rp_json_slice text = {name + strlen(name) + 1, it->labels_len};
    json_t *labels = text.n ? rp_json_labels(text, t->values, keeps_label, d)
                            : json_object();
    if (!labels) {
      /* Stepped over as JSON, but jansson finds it is not (UTF-8): the
       * answer was not JSON after all, and the list fails as it would
       * have had it been parsed whole. */
      for (size_t k = 0; k < n; k++)
        rp_workload_free(v[k]);
      rp_idset_clear(&fresh);
      cleanup_free char *why = rp_xasprintf(
          "list containers: %.12s: the answer is not JSON", it->id);
      listing_free(l);
      rp_watch_list_failed(t->watch, why);
      return;
    }
    v[n++] = make_workload(d, it->id, name, labels, it->image,
                           known_ref(t, it->id), it->paused, it->started);
    remember(t, v[n - 1]);
    rp_idset_add(&fresh, it->id);
    /* Its text is done with: the next ones' labels take its place. */
    free(it->data);
    it->data = NULL;
  }
  /* Forget what the list no longer has. */
  forget_unused_facts(t, l, &fresh);
  if (d->self_id && !t->self_seen && rp_idset_has(&fresh, d->self_id)) {
    t->self_seen = true;
    rp_info("provider %s: reaper runs in container %.12s, which it never "
            "touches",
            d->p->name, d->self_id);
  }
  rp_idset_clear(&fresh);
  listing_free(l);
  /* The core takes the workloads it keeps (the new and changed ones). */
  rp_watch_listed(t->watch, v, n);
  for (size_t k = 0; k < n; k++)
    rp_workload_free(v[k]);
  rp_json_intern_prune(t->values);
}

/* The watch's recheck op: an event came during the list. */
static void
recheck(void *ctx, const char *id, const char *what)
{
  (void)what;
  inspect_event(ctx, id);
}

/* The watch's after_list op. */
static void
after_list(void *ctx, bool ok)
{
  struct rp_docker_track *t = ctx;
  /* With no inspect in flight, no answer can be stale any more. */
  if (ok && t->queries == 0)
    json_object_clear(t->gone_at);
}

/* Whether the labels in text (a list element's Labels; {NULL, 0}: none)
 * make the labels object `before` reported for the container (NULL: none
 * was): the same members but for what make_workload leaves out (values
 * that are not strings, and what its image declares too).  Without making
 * anything: what is not plain (escapes, bytes past ASCII) says no, and is
 * then parsed. */
static bool
labels_unchanged(const struct rp_docker *d, struct rp_json_slice text,
                 json_t *before, json_t *from_image)
{
  if (!before)
    return false;
  size_t kept = 0;
  struct rp_json_iter iter;
  struct rp_json_slice name, value;
  rp_json_iter_init(&iter, text.p, text.n);
  int rc = 0;
  while (text.p && (rc = rp_json_iter_next(&iter, &name, &value)) == 1) {
    if (value.p[0] != '"')
      continue; /* not a string: left out */
    if (rp_json_plain_string(name) &&
        !keeps_label((void *)(uintptr_t)d, name.p + 1, name.n - 2))
      continue; /* read by no one: left out */
    if (!rp_json_plain_string(name) || !rp_json_plain_string(value))
      return false;
    const char *k = name.p + 1, *v = value.p + 1;
    size_t kn = name.n - 2, vn = value.n - 2;
    json_t *img = json_object_getn(from_image, k, kn);
    if (json_is_string(img) && json_string_length(img) == vn &&
        memcmp(json_string_value(img), v, vn) == 0)
      continue; /* the image's: left out */
    json_t *was = json_object_getn(before, k, kn);
    if (!json_is_string(was) || json_string_length(was) != vn ||
        memcmp(json_string_value(was), v, vn) != 0)
      return false;
    kept++;
  }
  return rc >= 0 && kept == json_object_size(before);
}

/* Keeps an item's name and labels' text. */
static void
item_keep(struct list_item *it, const char *name, struct rp_json_slice labels)
{
  size_t n = strlen(name);
  free(it->data);
  it->data = rp_xmalloc(n + 1 + labels.n);
  memcpy(it->data, name, n + 1);
  if (labels.n)
    memcpy(it->data + n + 1, labels.p, labels.n);
  it->labels_len = labels.n;
}

struct list_inspect {
  struct listing *l;
  size_t index; /* of the item */
};

static void
list_item_inspected_cb(void *arg, const struct rp_dockerapi_reply *r,
                       const struct rp_error *err)
{
  struct list_inspect *li = arg;
  struct listing *l = li->l;
  struct rp_docker_track *t = l->t;
  struct list_item *it = &l->items[li->index];
  l->inspecting--;
  struct rp_json_slice labels;
  cleanup_json json_t *body =
      err ? NULL : inspect_digest(r->raw, r->raw_len, &labels);
  const char *bad = err ? NULL : inspect_problem(body, it->id);
  if ((err && err->code != RP_ENOTFOUND) || bad) {
    /* A list is all or nothing: a container whose state is unknown must
     * not drop out of it. */
    list_fail(
        l, rp_xasprintf("inspect %.12s: %s", it->id, err ? err->message : bad));
  } else if (err || !inspect_running(body, &it->started)) {
    it->gone = true; /* no longer running */
  } else {
    it->paused =
        json_is_true(json_object_get(json_object_get(body, "State"), "Paused"));
    /* What rp_docker_workload_from_inspect would take, without making a
     * workload that the list's end makes anyway. */
    const char *name = json_string_value(json_object_get(body, "Name"));
    if (name && name[0] == '/')
      name++;
    if (labels.p && labels.p[0] != '{')
      labels.n = 0; /* not an object (null): none */
    /* The reference it was created from (fresh content). */
    const char *ref = json_string_value(
        json_object_get(json_object_get(body, "Config"), "Image"));
    struct rp_docker_known *k =
        ref ? rp_docker_known_add(&t->known, it->id) : NULL;
    if (k)
      rp_docker_known_set_ref(&t->known, k, ref);
    /* Noted before the list's workloads are made, at its end. */
    note_deps(t, it->id, name, body);
    item_keep(it, name ? name : it->id, labels);
  }
  free(li);
  query_done(t);
  list_pump(l);
}

/* One engine fact a list waits for: an image's labels, or which
 * containers are swarm tasks. */
struct list_fact {
  struct listing *l;
  char image[80]; /* "" for the task list */
};

static void
list_fact_cb(void *arg, const struct rp_dockerapi_reply *r,
             const struct rp_error *err)
{
  struct list_fact *lf = arg;
  struct listing *l = lf->l;
  struct rp_docker_track *t = l->t;
  l->inspecting--;
  if (lf->image[0]) {
    if (err && err->code != RP_ENOTFOUND)
      list_fail(
          l, rp_xasprintf("inspect image %.19s: %s", lf->image, err->message));
    else
      remember_image(t, lf->image, err ? NULL : r->body);
  } else if (err || !json_is_array(r->body)) {
    /* Without the engine's word, a container with the task label would
     * be either wrongly spared or recreated out of its service: all or
     * nothing, the list fails. */
    list_fail(l, rp_xasprintf("list swarm task containers: %s",
                              err ? err->message : "the answer is not a list"));
  } else {
    remember_tasks(t, l, r->body);
  }
  free(lf);
  query_done(t);
  list_pump(l);
}

static bool
list_fact_start(struct listing *l, const char *image)
{
  struct rp_docker_track *t = l->t;
  struct list_fact *lf = rp_xcalloc(1, sizeof(*lf));
  lf->l = l;
  snprintf(lf->image, sizeof(lf->image), "%s", image ? image : "");
  cleanup_free char *path = image ? image_path(image) : tasks_path(NULL);
  cleanup_error struct rp_error *err = NULL;
  if (call(t, "GET", path, list_fact_cb, lf, &err) != 0) {
    free(lf);
    list_fail(l, rp_xstrdup(err->message));
    return false;
  }
  l->inspecting++;
  return true;
}

/* Starts what the list waits for, at most INSPECT_PARALLEL at a time: the
 * task list, image inspects, container inspects; finishes it when nothing
 * is left. */
static void
list_pump(struct listing *l)
{
  struct rp_docker_track *t = l->t;
  if (!l->complete)
    return; /* the list answer is still coming */
  if (!l->failed && !stopping(t) && l->want_tasks) {
    l->want_tasks = false;
    list_fact_start(l, NULL);
  }
  while (!l->failed && !stopping(t) && l->inspecting < INSPECT_PARALLEL &&
         l->next_image < json_array_size(l->images)) {
    const char *image =
        json_string_value(json_array_get(l->images, l->next_image++));
    if (!list_fact_start(l, image))
      break;
  }
  while (!l->failed && !stopping(t) && l->inspecting < INSPECT_PARALLEL &&
         l->next < l->n) {
    size_t i = l->next++;
    if (!l->items[i].inspect)
      continue;
    struct list_inspect *li = rp_xcalloc(1, sizeof(*li));
    li->l = l;
    li->index = i;
    cleanup_error struct rp_error *err = NULL;
    if (inspect(t, l->items[i].id, list_item_inspected_cb, li, &err) != 0) {
      free(li);
      list_fail(l, rp_xstrdup(err->message));
      break;
    }
    l->inspecting++;
  }
  if (l->inspecting == 0 &&
      (l->failed || stopping(t) ||
       (l->next >= l->n && l->next_image >= json_array_size(l->images) &&
        !l->want_tasks)))
    list_finish(l);
}

/* One container of the list answer, as it arrives: what tracking needs of
 * it, checked.  All or nothing: one entry that is not a container makes
 * the whole answer suspect, and skipping it would make a tracked container
 * vanish (forgotten, then found again with its history lost). */
static int
list_item_cb(void *arg, size_t index, const char *text, size_t len,
             struct rp_error **err)
{
  struct listing *l = arg;
  struct rp_docker_track *t = l->t;
  static const char *const keys[] = {"Id",      "Names",  "Labels",
                                     "ImageID", "Status", "State"};
  struct rp_json_slice v[RP_ARRAY_LEN(keys)];
  if (rp_json_members(text, len, keys, RP_ARRAY_LEN(keys), v) < 0)
    return rp_error_set(err, RP_EPROTO, "the answer is not JSON");
  cleanup_free char *id = slice_string(v[0]);
  if (!id || strlen(id) != 64)
    return rp_error_set(err, RP_EPROTO, "item %zu has no container Id", index);
  struct rp_json_slice labels = v[2];
  if (labels.p && labels.p[0] == 'n')
    labels.p = NULL; /* null: none */
  if (labels.p && labels.p[0] != '{')
    return rp_error_set(err, RP_EPROTO,
                        "item %zu has Labels that are not an object", index);
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    l->items = rp_xrealloc(l->items, l->cap * sizeof(*l->items));
  }
  struct list_item *it = &l->items[l->n];
  memset(it, 0, sizeof(*it));
  memcpy(it->id, id, 65);
  cleanup_free char *lstate = slice_string(v[5]);
  it->paused = lstate && strcmp(lstate, "paused") == 0;
  it->image = slice_string(v[3]);
  if (it->image && !*it->image) {
    free(it->image);
    it->image = NULL;
  }
  /* Whether it carries swarm's task label: found without parsing them. */
  struct rp_json_slice task;
  it->task_label = labels.p && rp_json_member(labels.p, labels.n,
                                              LABEL_SWARM_TASK, &task) == 1;
  struct rp_docker_known *k = rp_docker_known_find(&t->known, id);
  bool known = k && k->running;
  cleanup_free char *status = slice_string(v[4]);
  int64_t max_up = status_max_uptime_ms(status);
  bool restarted =
      known && max_up >= 0 && rp_wall_ms() - k->started_ms > max_up + 5000;
  if (known && !restarted && !json_object_get(t->recheck, id)) {
    /* Its start time is known: the list's name and labels are what is
     * new.  (The others' come with their inspect.) */
    it->started = k->started_ms;
    cleanup_json json_t *names = v[1].p ? rp_json_value(v[1]) : NULL;
    const char *name = rp_docker_own_name(names);
    json_t *before = k->labels;
    json_t *from_image = image_labels_of(t, it->image);
    if (labels_unchanged(t->d, labels, before, from_image)) {
      it->same = json_incref(before);
      labels = (struct rp_json_slice){NULL, 0};
    }
    item_keep(it, name ? name : id,
              labels.p ? labels : (struct rp_json_slice){NULL, 0});
  } else {
    it->inspect = true;
  }
  l->n++;
  if (it->image && image_unknown(t, it->image) &&
      !json_object_get(l->images_asked, it->image)) {
    json_object_set_new(l->images_asked, it->image, json_true());
    json_array_append_new(l->images, json_string(it->image));
  }
  if (it->task_label && t->d->api.kind->swarm)
    l->want_tasks = true;
  return 0;
}

static void
list_done_cb(void *arg, const struct rp_error *err)
{
  struct listing *l = arg;
  struct rp_docker_track *t = l->t;
  query_done(t);
  l->complete = true;
  if (err) {
    list_fail(l, err->code == RP_EVERSION
                     ? rp_dockerapi_explain(&t->d->api, err)
                     : rp_xasprintf("list containers: %s", err->message));
    list_finish(l);
    return;
  }
  list_pump(l);
}

/* The watch's list op: the list, then the inspects and facts it needs. */
static void
list_containers(void *ctx)
{
  struct rp_docker_track *t = ctx;
  struct listing *l = rp_xcalloc(1, sizeof(*l));
  l->t = t;
  l->images = json_array();
  l->images_asked = json_object();
  l->asked_at = t->event_seq;
  cleanup_error struct rp_error *err = NULL;
  /* Running containers, paused ones included: an engine whose list leaves
   * them out is asked for both by status. */
  const char *path =
      t->d->api.kind->list_hides_paused
          ? "/containers/json?filters=%7B%22status%22%3A%5B%22running%22%2C"
            "%22paused%22%5D%7D"
          : "/containers/json";
  if (rp_dockerapi_list(&t->d->api, path, list_item_cb, list_done_cb, l,
                        &err) != 0) {
    l->complete = true;
    list_fail(l, rp_xstrdup(err->message));
    list_finish(l);
    return;
  }
  query_started(t);
}

/* --- connect ------------------------------------------------------------ */

static void
ping_cb(void *arg, const struct rp_error *err)
{
  struct rp_docker_track *t = arg;
  rp_watch_call_ended(t->watch);
  rp_watch_connected(t->watch, err ? err->message : NULL);
}

/* The watch's connect op: the version negotiation (GET /_ping and
 * /version), again on every reconnect (engines are upgraded in place). */
static int
connect_engine(void *ctx, struct rp_error **err)
{
  struct rp_docker_track *t = ctx;
  if (rp_dockerapi_negotiate(&t->d->api, ping_cb, t, err) != 0)
    return -1;
  rp_watch_call_started(t->watch);
  return 0;
}

static void
check_stopped(void *ctx)
{
  struct rp_docker_track *t = ctx;
  rp_docker_check_stopped(t->d);
}

static const struct rp_watch_ops watch_ops = {
    .connect = connect_engine,
    .stream = start_stream,
    .list = list_containers,
    .recheck = recheck,
    .after_list = after_list,
    .check_stopped = check_stopped,
};

int
rp_docker_track_start(struct rp_docker *d, struct rp_error **err)
{
  (void)err;
  struct rp_docker_track *t = rp_xcalloc(1, sizeof(*t));
  t->d = d;
  t->values = json_object();
  t->gone_at = json_object();
  t->recheck = json_object();
  t->image_facts = json_object();
  t->tasks = json_object();
  t->deps = json_object();
  t->watch = rp_watch_new(d->p, &watch_ops, t);
  d->track = t;
  rp_watch_start(t->watch);
  return 0;
}

void
rp_docker_track_resync(struct rp_docker *d)
{
  if (d->track)
    rp_watch_resync(d->track->watch);
}

void
rp_docker_track_stop(struct rp_docker *d)
{
  if (d->track)
    rp_watch_stop(d->track->watch);
}

bool
rp_docker_track_idle(const struct rp_docker *d)
{
  return !d->track || rp_watch_idle(d->track->watch);
}

void
rp_docker_track_free(struct rp_docker *d)
{
  struct rp_docker_track *t = d->track;
  if (!t)
    return;
  rp_docker_known_clear(&t->known);
  json_decref(t->values);
  json_decref(t->gone_at);
  json_decref(t->recheck);
  json_decref(t->image_facts);
  json_decref(t->tasks);
  json_decref(t->deps);
  while (t->watchers) {
    struct watcher *w = t->watchers;
    t->watchers = w->next;
    free(w);
  }
  rp_watch_free(t->watch);
  free(t);
  d->track = NULL;
}
