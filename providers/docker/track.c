/* Tracking: one list at start, then the /events stream, plus a periodic
 * re-list (the engine drops events for a slow reader and replays only its
 * last 256).  A container's age comes from State.StartedAt, which only
 * inspect shows, so a container is inspected when it is first seen and when
 * an event says it (re)started; a re-list inspects only the containers it
 * did not know, or whose uptime in the list's Status contradicts what was
 * known (a restart whose event was lost).  At steady state that is no
 * request per container beyond the stream and the re-list.
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
#include "image_index.h"
#include "log.h"
#include "strv.h"
#include "util.h"

#define INSPECT_PARALLEL 8
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
/* Events the tracker acts on: everything else is noise here.  Podman says
 * "remove" where Docker says "destroy" (ENGINE-API-VERSIONS.md, section 5);
 * an engine ignores an event name it does not know. */
#define EVENT_FILTER                                                           \
  "{\"type\":[\"container\",\"image\"],\"event\":[\"start\",\"die\","          \
  "\"destroy\",\"remove\",\"rename\",\"health_status\",\"pause\","             \
  "\"unpause\",\"pull\",\"push\",\"tag\",\"untag\",\"delete\"]}"

struct rp_docker_track {
  struct rp_docker *d;  /* borrowed: owns this */
  uv_timer_t reconnect; /* closed on stop */
  int64_t backoff_ms;
  struct rp_http_xfer *stream; /* the /events transfer, or NULL */
  char since[40];              /* the last event's time, "sec.nanos" */
  json_t *started;             /* owned: id -> started_ms of running ones */
  bool up;                     /* connected and listed */
  bool connecting;             /* ping/list of a (re)connect in flight */
  bool listing;                /* a list (and its inspects) in flight */
  bool list_again;             /* a resync was asked for during a list */
  json_t *dirty;               /* owned: ids an event touched during a list */
  /* Answers race events: an inspect or list asked before a container's
   * die/destroy event may come back after it, saying it runs.  Every event
   * has a number; gone_at maps an id to the number of its last die or
   * destroy, and an answer asked for before that is not believed. */
  uint64_t event_seq;
  json_t *gone_at;      /* owned: id -> event number of its last die/destroy */
  json_t *recheck;      /* owned: ids whose event could not be followed (the
                           inspect failed): the next list inspects them */
  int calls;            /* API calls in flight */
  int queries;          /* of those, inspects and lists: answers gone_at
                           judges.  With none in flight (and no list under
                           way) gone_at has nothing left to judge and is
                           emptied, so that it stays small under churn. */
  bool dropping_stream; /* schedule_reconnect is cancelling the stream */
  bool stopping;
  bool timer_closed;
  bool self_seen; /* reaper's own container was in a list: said once */
  /* owned: image id -> what tracking needs of it: {"labels": its labels,
   * "repo_digests": [...], "created": ms, "platform": "os/arch"}, and
   * "stale": true once an image event may have changed its digests (an
   * image's labels never change; its RepoDigests do, with a pull or a
   * push) */
  json_t *image_facts;
  /* owned: container id -> the image reference it was created from
   * (Config.Image), for the containers a list does not inspect again */
  json_t *refs;
  struct watcher *watchers; /* owned list: who waits on a container's news */
  /* owned: id -> true (a swarm task, by the engine's word) or false, for
   * the containers that carry swarm's task label */
  json_t *tasks;
};

/* One list in progress. */
struct listing {
  struct rp_docker_track *t;
  uint64_t asked_at; /* t->event_seq when the list was asked for */
  json_t *items;     /* owned: id -> workload data from the list */
  json_t *queue;     /* owned: ids to inspect */
  size_t next;       /* next index in queue */
  json_t *images;    /* owned: image ids whose labels are not known yet */
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
  struct watcher *next;
};

static void connect_engine(struct rp_docker_track *t);
static void schedule_reconnect(struct rp_docker_track *t, const char *why);

static void
call_done(struct rp_docker_track *t)
{
  t->calls--;
  if (t->stopping)
    rp_docker_check_stopped(t->d);
}

static int
call(struct rp_docker_track *t, const char *method, const char *path,
     rp_dockerapi_cb cb, void *arg, struct rp_error **err)
{
  if (rp_dockerapi_call(&t->d->api, method, path, NULL, 0, cb, arg, err) != 0)
    return -1;
  t->calls++;
  t->queries++;
  return 0;
}

/* The end of a call() (an inspect or a list). */
static void
query_done(struct rp_docker_track *t)
{
  t->queries--;
  if (t->queries == 0 && !t->listing)
    json_object_clear(t->gone_at);
  call_done(t);
}

/* --- workloads ---------------------------------------------------------- */

#define LABEL_SWARM_TASK "com.docker.swarm.task.id"

static bool
json_array_contains_string(json_t *a, const char *s)
{
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v)
  {
    if (strcmp(json_string_value(v), s) == 0)
      return true;
  }
  return false;
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
 * nothing known then). */
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

/* Whether an image's facts must be read (again). */
static bool
image_unknown(const struct rp_docker_track *t, const char *image)
{
  json_t *f = json_object_get(t->image_facts, image);
  return !f || json_is_true(json_object_get(f, "stale"));
}

/* After a list: what no listed container needs is forgotten, so that
 * neither map grows with churn. */
static void
forget_unused_facts(struct rp_docker_track *t, json_t *items)
{
  cleanup_json json_t *used = json_object();
  const char *id;
  json_t *item;
  json_object_foreach(items, id, item)
  {
    const char *image = json_string_value(json_object_get(item, "image"));
    if (image)
      json_object_set_new(used, image, json_true());
  }
  void *tmp;
  json_t *v;
  json_object_foreach_safe(t->image_facts, tmp, id, v)
  {
    if (!json_object_get(used, id))
      json_object_del(t->image_facts, id);
  }
  json_object_foreach_safe(t->refs, tmp, id, v)
  {
    if (!json_object_get(items, id))
      json_object_del(t->refs, id);
  }
  json_object_foreach_safe(t->tasks, tmp, id, v)
  {
    if (!json_object_get(items, id))
      json_object_del(t->tasks, id);
  }
}

/* Which of the listed containers with swarm's task label the engine calls
 * tasks (`answer`: the is-task=true list). */
static void
remember_tasks(struct rp_docker_track *t, json_t *items, json_t *answer)
{
  json_object_clear(t->tasks);
  const char *id;
  json_t *item;
  json_object_foreach(items, id, item)
  {
    if (json_object_get(json_object_get(item, "labels"), LABEL_SWARM_TASK))
      json_object_set_new(t->tasks, id, json_false());
  }
  size_t i;
  json_t *c;
  json_array_foreach(answer, i, c)
  {
    const char *cid = json_string_value(json_object_get(c, "Id"));
    if (cid)
      json_object_set_new(t->tasks, cid, json_true());
  }
}

static struct rp_workload *
make_workload(struct rp_docker *d, const char *id, const char *name,
              json_t *labels, const char *image_id, const char *ref,
              bool paused, int64_t started_ms)
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
  json_object_clear(w->labels);
  const char *k;
  json_t *v;
  size_t image_only = 0;
  json_object_foreach(json_is_object(labels) ? labels : NULL, k, v)
  {
    if (!json_is_string(v))
      continue;
    if (json_equal(json_object_get(from_image, k), v)) {
      image_only++; /* the image's word, not the creator's */
      continue;
    }
    json_object_set(w->labels, k, v);
  }
  if (d->self_id && strcmp(d->self_id, id) == 0)
    w->protected_reason = rp_xstrdup("reaper's own container");
  if (paused)
    /* A pause is often an incident responder freezing evidence: a recycle
     * would destroy that state.  Left alone, and said, until unpaused. */
    w->refusal = rp_xstrdup("it is paused (its frozen state may be "
                            "evidence); unpause it to let it be recycled");
  else if (!w->protected_reason && json_object_get(labels, LABEL_SWARM_TASK) &&
           t && json_is_true(json_object_get(t->tasks, id)))
    w->protected_reason =
        rp_xstrdup("swarm task container: recycled through its service");
  else if (json_object_get(labels, LABEL_SWARM_TASK))
    w->note = rp_xstrdup("carries swarm's task label, but the engine says "
                         "it is not a swarm task: a plain container");
  /* Compose's project and service: the replicas' one name, for the
   * report (labels are the workload's word: enough for grouping). */
  const char *project = rp_workload_label(w, "com.docker.compose.project");
  const char *service = rp_workload_label(w, "com.docker.compose.service");
  if (project && service)
    w->service = rp_xasprintf("%.100s-%.100s", project, service);
  /* A systemd unit that podman generated runs this container: said, never
   * obeyed (a label is the workload's word); operators who want it left to
   * systemd exclude it in their configuration (README, "Podman"). */
  const char *unit = rp_workload_label(w, "PODMAN_SYSTEMD_UNIT");
  if (unit && !w->note)
    w->note = rp_xasprintf("systemd unit %.200s runs it (podman generated "
                           "it); exclude it to leave it to systemd",
                           unit);
  return w;
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
  const char *ref = json_string_value(json_object_get(config, "Image"));
  if (d->track && ref)
    json_object_set_new(d->track->refs, id, json_string(ref));
  return make_workload(d, id, name, json_object_get(config, "Labels"),
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
  if (!t->stopping) {
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
  struct rp_workload *w =
      body ? rp_docker_workload_from_inspect(d, body) : NULL;
  if (w) {
    json_object_set_new(t->started, w->id, json_integer(w->started_ms));
    d->p->hooks.upsert(d->p->hooks.core, d->p, w);
    rp_workload_free(w);
  } else if (json_object_get(t->started, id)) {
    json_object_del(t->started, id);
    d->p->hooks.removed(d->p->hooks.core, d->p, id);
  }
}

static void
inspect_one_cb(void *arg, const struct rp_dockerapi_reply *r,
               const struct rp_error *err)
{
  struct inspect_one *io = arg;
  struct rp_docker_track *t = io->t;
  const char *bad = err ? NULL : inspect_problem(r->body, io->id);
  if (t->stopping) {
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
             json_is_true(json_object_get(json_object_get(r->body, "State"),
                                          "Running"))) {
    /* Asked before it died: the answer is stale; a later start event
     * brings it back. */
  } else {
    report_inspect(t, io->id, r->body, io->asked_at);
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
  cleanup_free char *path = rp_xasprintf("/containers/%s/json", io->id);
  cleanup_error struct rp_error *err = NULL;
  if (call(t, "GET", path, inspect_one_cb, io, &err) != 0) {
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
    /* A pull, push or tag may give an image new registry digests, or
     * take one away (the workloads' content, for fresh content): what is
     * known of images is read again, by the next inspect of a container
     * that runs one and at the next re-list (not at once: a busy build
     * host sends these all day).  Their labels stay (they never change). */
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
  tell_watchers(t, id);
  t->event_seq++;
  if (t->listing)
    json_object_set_new(t->dirty, id, json_true());
  if (strcmp(action, "start") == 0 || strcmp(action, "rename") == 0 ||
      strcmp(action, "pause") == 0 || strcmp(action, "unpause") == 0) {
    inspect_event(t, id);
  } else if (strcmp(action, "die") == 0 || strcmp(action, "destroy") == 0 ||
             strcmp(action, "remove") == 0) {
    json_object_set_new(t->gone_at, id, json_integer((json_int_t)t->event_seq));
    if (json_object_get(t->started, id)) {
      json_object_del(t->started, id);
      t->d->p->hooks.removed(t->d->p->hooks.core, t->d->p, id);
    }
  }
  return 0;
}

static void
stream_done_cb(void *arg, const struct rp_error *err)
{
  struct rp_docker_track *t = arg;
  /* Events may be lost until the stream is back: the watchers look. */
  tell_watchers(t, NULL);
  t->stream = NULL;
  call_done(t);
  if (t->stopping || t->dropping_stream)
    return; /* our own cancel: the reconnect is being scheduled */
  cleanup_free char *why = err ? rp_dockerapi_explain(&t->d->api, err)
                               : rp_xstrdup("the event stream ended");
  schedule_reconnect(t, why);
}

static int
start_stream(struct rp_docker_track *t, struct rp_error **err)
{
  cleanup_free char *filters = rp_url_escape(EVENT_FILTER);
  cleanup_free char *path =
      t->since[0]
          ? rp_xasprintf("/events?filters=%s&since=%s", filters, t->since)
          : rp_xasprintf("/events?filters=%s", filters);
  if (rp_dockerapi_stream(&t->d->api, path, on_event_line, stream_done_cb, t,
                          &t->stream, err) != 0)
    return -1;
  t->calls++;
  return 0;
}

/* --- list --------------------------------------------------------------- */

static void list_pump(struct listing *l);

static void
listing_free(struct listing *l)
{
  json_decref(l->items);
  json_decref(l->queue);
  json_decref(l->images);
  free(l->error);
  free(l);
}

static void
list_finish(struct listing *l)
{
  struct rp_docker_track *t = l->t;
  struct rp_docker *d = t->d;
  t->listing = false;
  if (t->stopping) {
    listing_free(l);
    json_object_clear(t->dirty);
    return;
  }
  if (l->failed) {
    cleanup_free char *why = rp_xstrdup(l->error ? l->error : "list failed");
    listing_free(l);
    json_object_clear(t->dirty);
    if (t->connecting)
      schedule_reconnect(t, why);
    else
      rp_warn("provider %s: resync failed, keeping what was known: %s",
              d->p->name, why);
    return;
  }
  /* The containers whose events could not be followed have been looked
   * at. */
  size_t qi;
  json_t *qid;
  json_array_foreach(l->queue, qi, qid)
  {
    json_object_del(t->recheck, json_string_value(qid));
  }
  /* Every item now has its start time: report the whole list. */
  size_t n = json_object_size(l->items), i = 0;
  cleanup_free struct rp_workload **v = rp_xcalloc(n + 1, sizeof(*v));
  cleanup_json json_t *fresh = json_object();
  const char *id;
  json_t *item;
  json_object_foreach(l->items, id, item)
  {
    json_t *st = json_object_get(item, "started");
    if (!json_is_integer(st))
      continue; /* stopped between list and inspect */
    if (gone_since(t, id, l->asked_at))
      continue; /* died after the list was made: the list is stale there */
    v[i++] = make_workload(
        d, id, json_string_value(json_object_get(item, "name")),
        json_object_get(item, "labels"),
        json_string_value(json_object_get(item, "image")),
        json_string_value(json_object_get(t->refs, id)),
        json_is_true(json_object_get(item, "paused")), json_integer_value(st));
    json_object_set(fresh, id, st);
  }
  json_object_update(t->started, fresh);
  forget_unused_facts(t, l->items);
  /* Forget what the list no longer has. */
  void *tmp;
  json_t *val;
  json_object_foreach_safe(t->started, tmp, id, val)
  {
    if (!json_object_get(fresh, id))
      json_object_del(t->started, id);
  }
  if (d->self_id && !t->self_seen && json_object_get(fresh, d->self_id)) {
    t->self_seen = true;
    rp_info("provider %s: reaper runs in container %.12s, which it never "
            "touches",
            d->p->name, d->self_id);
  }
  bool was_up = t->up;
  t->up = true;
  t->connecting = false;
  t->backoff_ms = 0;
  d->p->hooks.listed(d->p->hooks.core, d->p, v, i);
  if (!was_up)
    d->p->hooks.state(d->p->hooks.core, d->p, true, NULL);
  for (size_t k = 0; k < i; k++)
    rp_workload_free(v[k]);
  listing_free(l);
  /* Events that came in while the list was in flight may be older or newer
   * than it: look at those containers again. */
  json_object_foreach_safe(t->dirty, tmp, id, val)
  {
    inspect_event(t, id);
  }
  json_object_clear(t->dirty);
  /* With no inspect in flight, no answer can be stale any more. */
  if (t->queries == 0)
    json_object_clear(t->gone_at);
  if (t->list_again) {
    t->list_again = false;
    rp_docker_track_resync(d);
  }
}

struct list_inspect {
  struct listing *l;
  char id[72];
};

static void
list_item_inspected_cb(void *arg, const struct rp_dockerapi_reply *r,
                       const struct rp_error *err)
{
  struct list_inspect *li = arg;
  struct listing *l = li->l;
  struct rp_docker_track *t = l->t;
  l->inspecting--;
  json_t *item = json_object_get(l->items, li->id);
  const char *bad = err ? NULL : inspect_problem(r->body, li->id);
  if ((err && err->code != RP_ENOTFOUND) || bad) {
    /* A list is all or nothing: a container whose state is unknown must
     * not drop out of it. */
    l->failed = true;
    if (!l->error)
      l->error =
          rp_xasprintf("inspect %.12s: %s", li->id, err ? err->message : bad);
  } else if (item) {
    struct rp_workload *w =
        err ? NULL : rp_docker_workload_from_inspect(t->d, r->body);
    if (w) {
      json_object_set_new(item, "started", json_integer(w->started_ms));
      json_object_set_new(item, "name", json_string(w->name));
      rp_workload_free(w);
    } else {
      json_object_del(l->items, li->id); /* no longer running */
    }
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
    if (err && err->code != RP_ENOTFOUND) {
      l->failed = true;
      if (!l->error)
        l->error =
            rp_xasprintf("inspect image %.19s: %s", lf->image, err->message);
    } else {
      remember_image(t, lf->image, err ? NULL : r->body);
    }
  } else if (err || !json_is_array(r->body)) {
    /* Without the engine's word, a container with the task label would
     * be either wrongly spared or recreated out of its service: all or
     * nothing, the list fails. */
    l->failed = true;
    if (!l->error)
      l->error = rp_xasprintf("list swarm task containers: %s",
                              err ? err->message : "the answer is not a list");
  } else {
    remember_tasks(t, l->items, r->body);
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
    l->failed = true;
    l->error = rp_xstrdup(err->message);
    return false;
  }
  l->inspecting++;
  return true;
}

static void
list_pump(struct listing *l)
{
  struct rp_docker_track *t = l->t;
  if (!l->failed && !t->stopping && l->want_tasks) {
    l->want_tasks = false;
    list_fact_start(l, NULL);
  }
  while (!l->failed && !t->stopping && l->inspecting < INSPECT_PARALLEL &&
         l->next_image < json_array_size(l->images)) {
    const char *image =
        json_string_value(json_array_get(l->images, l->next_image++));
    if (!list_fact_start(l, image))
      break;
  }
  while (!l->failed && !t->stopping && l->inspecting < INSPECT_PARALLEL &&
         l->next < json_array_size(l->queue)) {
    const char *id = json_string_value(json_array_get(l->queue, l->next++));
    struct list_inspect *li = rp_xcalloc(1, sizeof(*li));
    li->l = l;
    snprintf(li->id, sizeof(li->id), "%s", id);
    cleanup_free char *path = rp_xasprintf("/containers/%s/json", li->id);
    cleanup_error struct rp_error *err = NULL;
    if (call(t, "GET", path, list_item_inspected_cb, li, &err) != 0) {
      free(li);
      l->failed = true;
      l->error = rp_xstrdup(err->message);
      break;
    }
    l->inspecting++;
  }
  if (l->inspecting == 0 &&
      (l->failed || t->stopping ||
       (l->next >= json_array_size(l->queue) &&
        l->next_image >= json_array_size(l->images) && !l->want_tasks)))
    list_finish(l);
}

static void
list_cb(void *arg, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  struct listing *l = arg;
  struct rp_docker_track *t = l->t;
  query_done(t);
  if (err && err->code == RP_EVERSION) {
    l->failed = true;
    l->error = rp_dockerapi_explain(&t->d->api, err);
    list_finish(l);
    return;
  }
  if (err || !json_is_array(r->body)) {
    l->failed = true;
    l->error = rp_xasprintf("list containers: %s",
                            err       ? err->message
                            : r->body ? "the answer is not a list"
                                      : "the answer is not JSON");
    list_finish(l);
    return;
  }
  /* All or nothing: one entry that is not a container makes the whole
   * answer suspect, and skipping it would make a tracked container vanish
   * (forgotten, then found again with its history lost). */
  size_t i;
  json_t *c;
  json_array_foreach(r->body, i, c)
  {
    const char *id = json_string_value(json_object_get(c, "Id"));
    json_t *labels = json_object_get(c, "Labels");
    const char *bad =
        !json_is_object(c)        ? "is not an object"
        : !id || strlen(id) != 64 ? "has no container Id"
        : labels && !json_is_object(labels) && !json_is_null(labels)
            ? "has Labels that are not an object"
            : NULL;
    if (bad) {
      l->failed = true;
      l->error = rp_xasprintf("list containers: item %zu %s", i, bad);
      list_finish(l);
      return;
    }
  }
  int64_t now = rp_wall_ms();
  json_array_foreach(r->body, i, c)
  {
    const char *id = json_string_value(json_object_get(c, "Id"));
    const char *name =
        json_string_value(json_array_get(json_object_get(c, "Names"), 0));
    if (name && name[0] == '/')
      name++;
    json_t *labels = json_object_get(c, "Labels");
    json_t *item = json_is_object(labels)
                       ? json_pack("{s:s, s:O}", "name", name ? name : id,
                                   "labels", labels)
                       : json_pack("{s:s, s:o}", "name", name ? name : id,
                                   "labels", json_object());
    const char *lstate = json_string_value(json_object_get(c, "State"));
    json_object_set_new(item, "paused",
                        json_boolean(lstate && strcmp(lstate, "paused") == 0));
    const char *image = json_string_value(json_object_get(c, "ImageID"));
    if (image && *image) {
      json_object_set_new(item, "image", json_string(image));
      if (image_unknown(t, image) &&
          !json_array_contains_string(l->images, image))
        json_array_append_new(l->images, json_string(image));
    }
    if (json_object_get(labels, LABEL_SWARM_TASK) && t->d->api.kind->swarm)
      l->want_tasks = true;
    json_t *known = json_object_get(t->started, id);
    int64_t max_up =
        status_max_uptime_ms(json_string_value(json_object_get(c, "Status")));
    bool restarted =
        known && max_up >= 0 && now - json_integer_value(known) > max_up + 5000;
    if (known && !restarted && !json_object_get(t->recheck, id))
      json_object_set(item, "started", known);
    else
      json_array_append_new(l->queue, json_string(id));
    json_object_set_new(l->items, id, item);
  }
  list_pump(l);
}

static void
list_containers(struct rp_docker_track *t)
{
  if (t->listing) {
    t->list_again = true;
    return;
  }
  struct listing *l = rp_xcalloc(1, sizeof(*l));
  l->t = t;
  l->items = json_object();
  l->queue = json_array();
  l->images = json_array();
  l->asked_at = t->event_seq;
  t->listing = true;
  cleanup_error struct rp_error *err = NULL;
  if (call(t, "GET", "/containers/json", list_cb, l, &err) != 0) {
    l->failed = true;
    l->error = rp_xstrdup(err->message);
    list_finish(l);
  }
}

/* --- connect ------------------------------------------------------------ */

static void
reconnect_cb(uv_timer_t *timer)
{
  connect_engine(timer->data);
}

static void
schedule_reconnect(struct rp_docker_track *t, const char *why)
{
  struct rp_docker *d = t->d;
  if (t->stopping)
    return;
  if (t->stream) {
    /* Its done callback runs now: it must not report "cancelled" as the
     * cause, nor double the backoff a second time. */
    t->dropping_stream = true;
    rp_http_cancel(t->stream);
    t->dropping_stream = false;
  }
  t->up = false;
  t->connecting = false;
  d->p->hooks.state(d->p->hooks.core, d->p, false, why);
  t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : BACKOFF_MIN_MS;
  if (t->backoff_ms > BACKOFF_MAX_MS)
    t->backoff_ms = BACKOFF_MAX_MS;
  if (!uv_is_active((uv_handle_t *)&t->reconnect))
    uv_timer_start(&t->reconnect, reconnect_cb, (uint64_t)t->backoff_ms, 0);
}

static void
ping_cb(void *arg, const struct rp_error *err)
{
  struct rp_docker_track *t = arg;
  call_done(t);
  if (t->stopping)
    return;
  if (err) {
    schedule_reconnect(t, err->message);
    return;
  }
  cleanup_error struct rp_error *serr = NULL;
  if (start_stream(t, &serr) != 0) {
    schedule_reconnect(t, serr->message);
    return;
  }
  list_containers(t);
}

static void
connect_engine(struct rp_docker_track *t)
{
  if (t->stopping || t->connecting)
    return;
  t->connecting = true;
  cleanup_error struct rp_error *err = NULL;
  if (rp_dockerapi_negotiate(&t->d->api, ping_cb, t, &err) != 0) {
    t->connecting = false;
    schedule_reconnect(t, err->message);
    return;
  }
  t->calls++;
}

int
rp_docker_track_start(struct rp_docker *d, struct rp_error **err)
{
  (void)err;
  struct rp_docker_track *t = rp_xcalloc(1, sizeof(*t));
  t->d = d;
  t->started = json_object();
  t->dirty = json_object();
  t->gone_at = json_object();
  t->recheck = json_object();
  t->image_facts = json_object();
  t->refs = json_object();
  t->tasks = json_object();
  uv_timer_init(d->p->loop, &t->reconnect);
  t->reconnect.data = t;
  d->track = t;
  connect_engine(t);
  return 0;
}

void
rp_docker_track_resync(struct rp_docker *d)
{
  struct rp_docker_track *t = d->track;
  if (!t || t->stopping || !t->up)
    return; /* a reconnect lists anyway */
  list_containers(t);
}

static void
timer_closed_cb(uv_handle_t *h)
{
  struct rp_docker_track *t = h->data;
  t->timer_closed = true;
  rp_docker_check_stopped(t->d);
}

void
rp_docker_track_stop(struct rp_docker *d)
{
  struct rp_docker_track *t = d->track;
  if (!t || t->stopping)
    return;
  t->stopping = true;
  if (t->stream)
    rp_http_cancel(t->stream);
  uv_close((uv_handle_t *)&t->reconnect, timer_closed_cb);
}

bool
rp_docker_track_idle(const struct rp_docker *d)
{
  const struct rp_docker_track *t = d->track;
  return !t || (t->stopping && t->timer_closed && t->calls == 0);
}

void
rp_docker_track_free(struct rp_docker *d)
{
  struct rp_docker_track *t = d->track;
  if (!t)
    return;
  json_decref(t->started);
  json_decref(t->dirty);
  json_decref(t->gone_at);
  json_decref(t->recheck);
  json_decref(t->image_facts);
  json_decref(t->refs);
  json_decref(t->tasks);
  while (t->watchers) {
    struct watcher *w = t->watchers;
    t->watchers = w->next;
    free(w);
  }
  free(t);
  d->track = NULL;
}
