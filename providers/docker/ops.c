/* The docker provider's operations for the core's recycle runner
 * (src/runner.c orders them; nothing here decides a sequence):
 *   prepare   what the engine says now, read only: the container (still
 *             running the life found due?), for a recreate also every
 *             container's name (references are rewritten to names; one that
 *             shares this one's network namespace makes it a refusal), the
 *             MAC address its user configured, the image (by name while the
 *             name still means it; by the user's reference when the recycle
 *             moves to new content), and the create body (create_body.c)
 *   pull      fresh content: the digest fetched (once: by digest), named
 *             as the user named it; create then checks the image it runs
 *   rename, create (with the networks create does not take), start, stop,
 *   remove (never the volumes), restart, drain (an exec inside), probe (one
 *   inspect), watch (the event stream of track.c)
 * Each is one or a few API calls on the loop, calling back once. */
#include <stdio.h>
#include <string.h>

#include "docker.h"
#include "image_ref.h"
#include "log.h"
#include "runner.h"
#include "util.h"

/* Drain output kept for the audit line. */
#define DRAIN_OUTPUT_MAX 2048
/* A pull downloads the layers in one call. */
#define PULL_TIMEOUT_MS (10 * 60 * 1000)
/* On top of the grace period, for the engine's own work. */
#define STOP_SLACK_MS 30000

/* --- calls that count ---------------------------------------------------- */

/* Every operation's API calls count as in flight for the provider's stop. */
struct call {
  struct rp_docker *d;
  void (*then)(void *ctx, const struct rp_dockerapi_reply *r,
               const struct rp_error *err);
  void *ctx;
};

static void
call_cb(void *arg, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  struct call c = *(struct call *)arg;
  free(arg);
  c.then(c.ctx, r, err);
  c.d->recycles_in_flight--;
  rp_docker_check_stopped(c.d);
}

static int
call(struct rp_docker *d, const char *method, const char *path,
     const json_t *body, int64_t timeout_ms,
     void (*then)(void *ctx, const struct rp_dockerapi_reply *r,
                  const struct rp_error *err),
     void *ctx, struct rp_error **err)
{
  struct call *c = rp_xcalloc(1, sizeof(*c));
  *c = (struct call){.d = d, .then = then, .ctx = ctx};
  if (rp_dockerapi_call(&d->api, method, path, body, timeout_ms, call_cb, c,
                        err) != 0) {
    free(c);
    return -1;
  }
  d->recycles_in_flight++;
  return 0;
}

static int64_t
stop_timeout_ms(int64_t grace_ms)
{
  return grace_ms + STOP_SLACK_MS;
}

static char *
stop_path(const char *verb, const char *id, int64_t grace_ms)
{
  /* ?t= is whole seconds; round a sub-second grace up. */
  return rp_xasprintf("/containers/%s/%s?t=%lld", id, verb,
                      (long long)((grace_ms + 999) / 1000));
}

static int
refuse_when_stopping(struct rp_docker *d, struct rp_error **err)
{
  if (d->stopping)
    return rp_error_set(err, RP_ECANCELED, "provider %s is stopping",
                        d->p->name);
  return 0;
}

/* --- simple operations: one call, ok or not --------------------------------*/

struct simple {
  rp_op_cb cb;
  void *arg;
  bool ok_304; /* "already so" is done */
  const char *what;
};

static void
simple_cb(void *ctx, const struct rp_dockerapi_reply *r,
          const struct rp_error *err)
{
  struct simple s = *(struct simple *)ctx;
  free(ctx);
  if (err && !(s.ok_304 && r && r->status == 304)) {
    s.cb(s.arg, err);
    return;
  }
  s.cb(s.arg, NULL);
}

static int
simple(struct rp_docker *d, const char *method, const char *path,
       int64_t timeout_ms, bool ok_304, rp_op_cb cb, void *arg,
       struct rp_error **err)
{
  if (refuse_when_stopping(d, err) < 0)
    return -1;
  struct simple *s = rp_xcalloc(1, sizeof(*s));
  *s = (struct simple){.cb = cb, .arg = arg, .ok_304 = ok_304};
  if (call(d, method, path, NULL, timeout_ms, simple_cb, s, err) != 0) {
    free(s);
    return -1;
  }
  return 0;
}

int
rp_docker_op_rename(struct rp_provider *p, const char *id, const char *name,
                    rp_op_cb cb, void *arg, struct rp_error **err)
{
  cleanup_free char *esc = rp_url_escape(name);
  cleanup_free char *path =
      rp_xasprintf("/containers/%s/rename?name=%s", id, esc);
  return simple(p->ctx, "POST", path, 0, false, cb, arg, err);
}

int
rp_docker_op_start(struct rp_provider *p, const char *id, rp_op_cb cb,
                   void *arg, struct rp_error **err)
{
  cleanup_free char *path = rp_xasprintf("/containers/%s/start", id);
  return simple(p->ctx, "POST", path, 0, true, cb, arg, err);
}

int
rp_docker_op_stop(struct rp_provider *p, const char *id, int64_t grace_ms,
                  rp_op_cb cb, void *arg, struct rp_error **err)
{
  cleanup_free char *path = stop_path("stop", id, grace_ms);
  return simple(p->ctx, "POST", path, stop_timeout_ms(grace_ms), true, cb, arg,
                err);
}

int
rp_docker_op_restart(struct rp_provider *p, const char *id, int64_t grace_ms,
                     rp_op_cb cb, void *arg, struct rp_error **err)
{
  cleanup_free char *path = stop_path("restart", id, grace_ms);
  return simple(p->ctx, "POST", path, stop_timeout_ms(grace_ms), false, cb, arg,
                err);
}

/* --- remove: never the volumes; one that runs again is stopped again
 * --------*/

struct removal {
  struct rp_docker *d;
  char id[72];
  int64_t grace_ms;
  rp_op_cb cb;
  void *arg;
  bool stopped_again;
  /* The engine removes it already (auto-remove): its name is free only once
   * that removal ends, and what follows (a container made again under the
   * name) needs it free.  Looked at until gone. */
  uv_timer_t timer;
  int64_t gone_by_mono;
  struct rp_error *error; /* owned: the answer to give once the timer closed */
};

static void removal_delete(struct removal *m, bool force);

static void
removal_closed_cb(uv_handle_t *h)
{
  struct removal *m = h->data;
  m->cb(m->arg, m->error);
  rp_error_free(m->error);
  free(m);
}

static void
removal_end_waiting(struct removal *m, const struct rp_error *err)
{
  m->error = err ? rp_error_dup(err) : NULL;
  uv_close((uv_handle_t *)&m->timer, removal_closed_cb);
}

static void removal_look_cb(uv_timer_t *t);

static void
removal_looked_cb(void *ctx, const struct rp_dockerapi_reply *r,
                  const struct rp_error *err)
{
  struct removal *m = ctx;
  (void)r;
  if (err && err->code == RP_ENOTFOUND) {
    removal_end_waiting(m, NULL);
    return;
  }
  if (err || rp_mono_ms() >= m->gone_by_mono) {
    struct rp_error *e = NULL;
    rp_error_set(&e, err ? err->code : RP_ETIMEOUT,
                 "the engine's own removal of %.12s did not end%s%s", m->id,
                 err ? ": " : " within 30s", err ? err->message : "");
    removal_end_waiting(m, e);
    rp_error_free(e);
    return;
  }
  uv_timer_start(&m->timer, removal_look_cb, 100, 0);
}

static void
removal_look_cb(uv_timer_t *t)
{
  struct removal *m = t->data;
  cleanup_free char *path = rp_xasprintf("/containers/%s/json", m->id);
  cleanup_error struct rp_error *e = NULL;
  if (call(m->d, "GET", path, NULL, 0, removal_looked_cb, m, &e) != 0)
    removal_end_waiting(m, e);
}

static void
removal_wait_gone(struct removal *m)
{
  uv_timer_init(m->d->p->loop, &m->timer);
  m->timer.data = m;
  m->gone_by_mono = rp_mono_ms() + 30000;
  removal_look_cb(&m->timer);
}

static void
removal_stopped_cb(void *ctx, const struct rp_dockerapi_reply *r,
                   const struct rp_error *err)
{
  struct removal *m = ctx;
  if (err && err->code == RP_ENOTFOUND) {
    m->cb(m->arg, NULL); /* gone meanwhile (auto-remove): done */
    free(m);
    return;
  }
  if (err && !(r && r->status == 304)) {
    m->cb(m->arg, err);
    free(m);
    return;
  }
  removal_delete(m, true);
}

static void
removal_cb(void *ctx, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  struct removal *m = ctx;
  (void)r;
  if (err && err->code == RP_ECONFLICT &&
      strstr(err->message, "already in progress")) {
    /* The engine is removing it already (auto-remove): done once it is
     * gone. */
    removal_wait_gone(m);
    return;
  }
  if (err && err->code == RP_ECONFLICT && !m->stopped_again) {
    /* It runs again (someone started it meanwhile): stopped again,
     * gracefully, before it goes. */
    rp_warn("provider %s: %.12s runs again; stopping it again", m->d->p->name,
            m->id);
    m->stopped_again = true;
    cleanup_free char *path = stop_path("stop", m->id, m->grace_ms);
    cleanup_error struct rp_error *e = NULL;
    if (call(m->d, "POST", path, NULL, stop_timeout_ms(m->grace_ms),
             removal_stopped_cb, m, &e) == 0)
      return;
    m->cb(m->arg, e);
    free(m);
    return;
  }
  m->cb(m->arg, err && err->code == RP_ENOTFOUND ? NULL : err);
  free(m);
}

static void
removal_delete(struct removal *m, bool force)
{
  /* Never ?v=1: the replacement uses the same volumes. */
  cleanup_free char *path =
      rp_xasprintf("/containers/%s%s", m->id, force ? "?force=1" : "");
  cleanup_error struct rp_error *e = NULL;
  if (call(m->d, "DELETE", path, NULL, stop_timeout_ms(m->grace_ms), removal_cb,
           m, &e) != 0) {
    m->cb(m->arg, e);
    free(m);
  }
}

int
rp_docker_op_remove(struct rp_provider *p, const char *id, int64_t grace_ms,
                    rp_op_cb cb, void *arg, struct rp_error **err)
{
  struct rp_docker *d = p->ctx;
  if (refuse_when_stopping(d, err) < 0)
    return -1;
  struct removal *m = rp_xcalloc(1, sizeof(*m));
  m->d = d;
  snprintf(m->id, sizeof(m->id), "%s", id);
  m->grace_ms = grace_ms;
  m->cb = cb;
  m->arg = arg;
  /* grace 0: a failed replacement, removed as it is. */
  bool force = grace_ms == 0;
  cleanup_free char *path =
      rp_xasprintf("/containers/%s%s", m->id, force ? "?force=1" : "");
  if (call(d, "DELETE", path, NULL, stop_timeout_ms(grace_ms), removal_cb, m,
           err) != 0) {
    free(m);
    return -1;
  }
  return 0;
}

/* --- probe: one inspect ----------------------------------------------------*/

struct probe {
  rp_probe_cb cb;
  void *arg;
  struct rp_docker *d;
  char id[72];
};

static void
probe_cb(void *ctx, const struct rp_dockerapi_reply *r,
         const struct rp_error *err)
{
  struct probe pr = *(struct probe *)ctx;
  free(ctx);
  struct rp_probe st = {0};
  if (err && err->code == RP_ENOTFOUND) {
    /* exists: false; how it ended, when its die event said */
    st.exited = rp_docker_track_exit_code(pr.d, pr.id, &st.exit_code);
    pr.cb(pr.arg, &st, NULL);
    return;
  }
  if (err) {
    pr.cb(pr.arg, NULL, err);
    return;
  }
  json_t *state = json_object_get(r->body, "State");
  if (!json_is_object(state)) {
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EPROTO, "inspect: the answer %s",
                 r->body ? "has no State" : "is not JSON");
    pr.cb(pr.arg, NULL, e);
    rp_error_free(e);
    return;
  }
  st.exists = true;
  st.running = json_is_true(json_object_get(state, "Running")) &&
               !json_is_true(json_object_get(state, "Restarting"));
  st.exit_code = (int)json_integer_value(json_object_get(state, "ExitCode"));
  st.restarts =
      (int)json_integer_value(json_object_get(r->body, "RestartCount"));
  st.status = json_string_value(json_object_get(state, "Status"));
  st.name = json_string_value(json_object_get(r->body, "Name"));
  if (st.name && st.name[0] == '/')
    st.name++;
  const char *hs = json_string_value(
      json_object_get(json_object_get(state, "Health"), "Status"));
  /* No Health, or an empty status (podman), means no health check. */
  st.health = !hs || !*hs                    ? RP_HEALTH_NONE
              : strcmp(hs, "healthy") == 0   ? RP_HEALTH_HEALTHY
              : strcmp(hs, "unhealthy") == 0 ? RP_HEALTH_UNHEALTHY
                                             : RP_HEALTH_STARTING;
  pr.cb(pr.arg, &st, NULL);
}

int
rp_docker_op_probe(struct rp_provider *p, const char *id, rp_probe_cb cb,
                   void *arg, struct rp_error **err)
{
  struct probe *pr = rp_xcalloc(1, sizeof(*pr));
  *pr = (struct probe){.cb = cb, .arg = arg, .d = p->ctx};
  snprintf(pr->id, sizeof(pr->id), "%s", id);
  cleanup_free char *path = rp_xasprintf("/containers/%s/json", id);
  if (call(p->ctx, "GET", path, NULL, 0, probe_cb, pr, err) != 0) {
    free(pr);
    return -1;
  }
  return 0;
}

/* --- find_replacement: by the mark create put on it
 * --------------------------*/

struct finding {
  rp_created_cb cb;
  void *arg;
  char *name;
};

/* The replacement of an old container is the one create made: labelled
 * reaper.replaces=<old id> and named as the old one was.  Both are asked
 * for: a label alone is anyone's to set, and the name was the old one's
 * until reaper renamed it. */
static void
found_cb(void *ctx, const struct rp_dockerapi_reply *r,
         const struct rp_error *err)
{
  struct finding *f = ctx;
  const char *found = NULL;
  if (!err && !json_is_array(r->body)) {
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EPROTO, "list containers: the answer is not a list");
    f->cb(f->arg, NULL, e);
    rp_error_free(e);
    free(f->name);
    free(f);
    return;
  }
  size_t i;
  json_t *c;
  json_array_foreach(err ? NULL : r->body, i, c)
  {
    const char *id = json_string_value(json_object_get(c, "Id"));
    const char *n = rp_docker_own_name(json_object_get(c, "Names"));
    if (id && n && strcmp(n, f->name) == 0)
      found = id;
  }
  f->cb(f->arg, found, err);
  free(f->name);
  free(f);
}

int
rp_docker_op_find_replacement(struct rp_provider *p, const char *old_id,
                              const char *name, rp_created_cb cb, void *arg,
                              struct rp_error **err)
{
  cleanup_free char *label =
      rp_xasprintf("%s=%s", RP_DOCKER_LABEL_REPLACES, old_id);
  cleanup_json json_t *filters = json_pack("{s:[s]}", "label", label);
  cleanup_free char *text = json_dumps(filters, JSON_COMPACT);
  cleanup_free char *esc = rp_url_escape(text);
  cleanup_free char *path =
      rp_xasprintf("/containers/json?all=1&filters=%s", esc);
  struct finding *f = rp_xcalloc(1, sizeof(*f));
  *f = (struct finding){.cb = cb, .arg = arg, .name = rp_xstrdup(name)};
  if (call(p->ctx, "GET", path, NULL, 0, found_cb, f, err) != 0) {
    free(f->name);
    free(f);
    return -1;
  }
  return 0;
}

/* --- drain: an exec inside the container ----------------------------------*/

struct drain {
  struct rp_docker *d;
  rp_drained_cb cb;
  void *arg;
  char id[72];
  char *exec_id; /* owned */
  int64_t timeout_ms;
  json_t *outcome; /* owned */
};

static void
drain_end(struct drain *dr)
{
  dr->cb(dr->arg, dr->outcome);
  json_decref(dr->outcome);
  free(dr->exec_id);
  free(dr);
}

/* The exec stream multiplexes stdout and stderr in frames of an 8-byte
 * header (stream, 0, 0, 0, big-endian length) and the bytes. */
static json_t *
demux_output(const char *raw, size_t len)
{
  char out[DRAIN_OUTPUT_MAX + 1];
  size_t n = 0, i = 0;
  while (i + 8 <= len && n < DRAIN_OUTPUT_MAX) {
    const unsigned char *h = (const unsigned char *)raw + i;
    size_t flen = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 |
                  (size_t)h[7];
    if (h[0] > 2 || h[1] || h[2] || h[3]) { /* not multiplexed: raw text */
      n = 0;
      i = 0;
      for (; i < len && n < DRAIN_OUTPUT_MAX; i++)
        out[n++] = raw[i];
      break;
    }
    i += 8;
    for (size_t k = 0; k < flen && i < len && n < DRAIN_OUTPUT_MAX; k++)
      out[n++] = raw[i++];
  }
  out[n] = '\0';
  /* Keep it valid UTF-8 for the audit line. */
  for (size_t k = 0; k < n; k++)
    if ((unsigned char)out[k] >= 0x80 ||
        (out[k] < 0x20 && out[k] != '\n' && out[k] != '\t'))
      out[k] = '?';
  return json_stringn(out, n);
}

static void
drain_inspected(void *ctx, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct drain *dr = ctx;
  if (err)
    json_object_set_new(dr->outcome, "error", json_string(err->message));
  else
    json_object_set(dr->outcome, "exit_code",
                    json_object_get(r->body, "ExitCode"));
  drain_end(dr);
}

static void
drain_started(void *ctx, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct drain *dr = ctx;
  if (err && err->code == RP_ETIMEOUT)
    json_object_set_new(dr->outcome, "timed_out", json_true());
  else if (err)
    json_object_set_new(dr->outcome, "error", json_string(err->message));
  else if (r->raw)
    json_object_set_new(dr->outcome, "output",
                        demux_output(r->raw, r->raw_len));
  cleanup_free char *path = rp_xasprintf("/exec/%s/json", dr->exec_id);
  cleanup_error struct rp_error *cerr = NULL;
  if (call(dr->d, "GET", path, NULL, 0, drain_inspected, dr, &cerr) != 0) {
    json_object_set_new(dr->outcome, "error", json_string(cerr->message));
    drain_end(dr);
  }
}

static void
drain_created(void *ctx, const struct rp_dockerapi_reply *r,
              const struct rp_error *err)
{
  struct drain *dr = ctx;
  const char *id =
      err ? NULL : json_string_value(json_object_get(r->body, "Id"));
  if (!id) {
    json_object_set_new(dr->outcome, "error",
                        json_string(err ? err->message : "exec create: no Id"));
    drain_end(dr);
    return;
  }
  dr->exec_id = rp_xstrdup(id);
  cleanup_free char *path = rp_xasprintf("/exec/%s/start", id);
  cleanup_json json_t *body = json_pack("{s:b, s:b}", "Detach", 0, "Tty", 0);
  cleanup_error struct rp_error *cerr = NULL;
  if (call(dr->d, "POST", path, body, dr->timeout_ms, drain_started, dr,
           &cerr) != 0) {
    json_object_set_new(dr->outcome, "error", json_string(cerr->message));
    drain_end(dr);
  }
}

int
rp_docker_op_drain(struct rp_provider *p, const char *id,
                   const char *const *argv, int64_t timeout_ms,
                   rp_drained_cb cb, void *arg, struct rp_error **err)
{
  struct rp_docker *d = p->ctx;
  if (refuse_when_stopping(d, err) < 0)
    return -1;
  struct drain *dr = rp_xcalloc(1, sizeof(*dr));
  dr->d = d;
  dr->cb = cb;
  dr->arg = arg;
  snprintf(dr->id, sizeof(dr->id), "%s", id);
  dr->timeout_ms = timeout_ms;
  dr->outcome = json_object();
  json_t *cmd = json_array();
  for (size_t i = 0; argv && argv[i]; i++)
    json_array_append_new(cmd, json_string(argv[i]));
  cleanup_json json_t *body = json_pack("{s:b, s:b, s:o}", "AttachStdout", 1,
                                        "AttachStderr", 1, "Cmd", cmd);
  cleanup_free char *path = rp_xasprintf("/containers/%s/exec", dr->id);
  if (call(d, "POST", path, body, 0, drain_created, dr, err) != 0) {
    json_decref(dr->outcome);
    free(dr);
    return -1;
  }
  return 0;
}

/* --- create: the replacement, and the networks create does not take --------*/

/* What a recreate's preparation leaves for create. */
struct plan {
  char *name;      /* owned */
  json_t *body;    /* owned: the create request */
  json_t *extra;   /* owned: [{name, config}] to connect after create */
  char *old_image; /* owned: the image id the old container runs */
  /* owned: after a pull, the image id the replacement must run (create
   * checks it: the tag could have moved between the pull and the create),
   * or NULL */
  char *expect_image;
  /* Made by the name while it named the old image: it must run that image
   * (another recycle's pull may move the name meanwhile), else it is made
   * again from the image's id. */
  bool by_name;
  /* create made the replacement: a second create from this plan is the
   * undo making the old container again (it went with auto-remove), from
   * its own image. */
  bool made;
};

struct creation {
  struct rp_docker *d;
  struct plan *plan; /* borrowed: the runner holds it */
  rp_created_cb cb;
  void *arg;
  char *id; /* owned */
  size_t next_net;
  json_t *body;           /* owned: what create is asked */
  const char *expect;     /* borrowed from the plan: the image it must run,
                             or NULL */
  bool fallback;          /* on another image, made again from expect */
  bool checked;           /* the image it runs was checked */
  struct rp_error *error; /* owned: why it is being taken back */
};

static void creation_connect(struct creation *c);

static void
creation_end(struct creation *c, const struct rp_error *err)
{
  if (!err)
    c->plan->made = true;
  c->cb(c->arg, err ? NULL : c->id, err);
  free(c->id);
  json_decref(c->body);
  rp_error_free(c->error);
  free(c);
}

static int creation_post(struct creation *c, struct rp_error **err);

/* The name moved to another image between the preparation and the create:
 * the one made from it goes, and the replacement is made from the old
 * image's id, which is what this recycle runs. */
static void
creation_redo_cb(void *ctx, const struct rp_dockerapi_reply *r,
                 const struct rp_error *err)
{
  struct creation *c = ctx;
  (void)r;
  if (err && err->code != RP_ENOTFOUND) {
    struct rp_error *e = rp_error_dup(err);
    rp_error_prefix(&e, "remove the replacement made from a moved name");
    creation_end(c, e);
    rp_error_free(e);
    return;
  }
  free(c->id);
  c->id = NULL;
  c->next_net = 0;
  c->checked = false;
  c->fallback = false;
  json_object_set_new(c->body, "Image", json_string(c->expect));
  cleanup_error struct rp_error *e = NULL;
  if (creation_post(c, &e) != 0)
    creation_end(c, e);
}

static void
creation_removed_cb(void *ctx, const struct rp_dockerapi_reply *r,
                    const struct rp_error *err)
{
  struct creation *c = ctx;
  (void)r;
  if (err)
    rp_error_prefix(&c->error, "and it could not be removed (%s)",
                    err->message);
  creation_end(c, c->error);
}

/* A replacement that could not be connected everywhere is no replacement:
 * it goes, and create fails, as an engine that takes every network at
 * create fails whole. */
static void
creation_undo(struct creation *c, const struct rp_error *err)
{
  c->error = rp_error_dup(err);
  cleanup_free char *path = rp_xasprintf("/containers/%s?force=1", c->id);
  cleanup_error struct rp_error *e = NULL;
  if (call(c->d, "DELETE", path, NULL, 0, creation_removed_cb, c, &e) != 0)
    creation_removed_cb(c, NULL, e);
}

static void
creation_connected_cb(void *ctx, const struct rp_dockerapi_reply *r,
                      const struct rp_error *err)
{
  struct creation *c = ctx;
  (void)r;
  if (err) {
    struct rp_error *e = rp_error_dup(err);
    rp_error_prefix(&e, "connect network");
    creation_undo(c, e);
    rp_error_free(e);
    return;
  }
  c->next_net++;
  creation_connect(c);
}

static void creation_checked_cb(void *ctx, const struct rp_dockerapi_reply *r,
                                const struct rp_error *err);

static void
creation_connect(struct creation *c)
{
  json_t *net = json_array_get(c->plan->extra, c->next_net);
  if (!net && c->expect && !c->checked) {
    /* Made from a name: it must run the very content meant. */
    c->checked = true;
    cleanup_free char *path = rp_xasprintf("/containers/%s/json", c->id);
    cleanup_error struct rp_error *e = NULL;
    if (call(c->d, "GET", path, NULL, 0, creation_checked_cb, c, &e) != 0)
      creation_undo(c, e);
    return;
  }
  if (!net) {
    creation_end(c, NULL);
    return;
  }
  cleanup_free char *esc =
      rp_url_escape(json_string_value(json_object_get(net, "name")));
  cleanup_free char *path = rp_xasprintf("/networks/%s/connect", esc);
  json_t *config = json_object_get(net, "config");
  cleanup_json json_t *body =
      json_pack("{s:s, s:O}", "Container", c->id, "EndpointConfig",
                config ? config : json_object());
  cleanup_error struct rp_error *e = NULL;
  if (call(c->d, "POST", path, body, 0, creation_connected_cb, c, &e) != 0)
    creation_undo(c, e);
}

static void
creation_checked_cb(void *ctx, const struct rp_dockerapi_reply *r,
                    const struct rp_error *err)
{
  struct creation *c = ctx;
  if (err) {
    struct rp_error *e = rp_error_dup(err);
    rp_error_prefix(&e, "inspect the replacement");
    creation_undo(c, e);
    rp_error_free(e);
    return;
  }
  const char *runs = json_string_value(json_object_get(r->body, "Image"));
  if (runs && strcmp(runs, c->expect) != 0 && c->fallback) {
    rp_info("provider %s: %s names another image now: the replacement is "
            "made from image %.19s",
            c->d->p->name, c->plan->name, c->expect);
    cleanup_free char *path = rp_xasprintf("/containers/%s?force=1", c->id);
    cleanup_error struct rp_error *e = NULL;
    if (call(c->d, "DELETE", path, NULL, 0, creation_redo_cb, c, &e) != 0)
      creation_undo(c, e);
    return;
  }
  if (!runs || strcmp(runs, c->expect) != 0) {
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_ECONFLICT,
                 "the replacement runs image %.19s, not %.19s pulled for it "
                 "(its tag moved meanwhile)",
                 runs ? runs : "?", c->expect);
    creation_undo(c, e);
    rp_error_free(e);
    return;
  }
  creation_connect(c);
}

static void
creation_cb(void *ctx, const struct rp_dockerapi_reply *r,
            const struct rp_error *err)
{
  struct creation *c = ctx;
  const char *id =
      err ? NULL : json_string_value(json_object_get(r->body, "Id"));
  if (!id) {
    struct rp_error *e = NULL;
    if (!err)
      rp_error_set(&e, RP_EPROTO, "the engine's answer has no Id");
    creation_end(c, err ? err : e);
    rp_error_free(e);
    return;
  }
  c->id = rp_xstrdup(id);
  creation_connect(c);
}

int
rp_docker_op_create(struct rp_provider *p, void *plan, rp_created_cb cb,
                    void *arg, struct rp_error **err)
{
  struct rp_docker *d = p->ctx;
  struct plan *pl = plan;
  if (refuse_when_stopping(d, err) < 0)
    return -1;
  if (!pl || !pl->body)
    return rp_error_set(err, EINVAL, "no replacement was prepared");
  struct creation *c = rp_xcalloc(1, sizeof(*c));
  c->d = d;
  c->plan = pl;
  c->cb = cb;
  c->arg = arg;
  c->body = json_deep_copy(pl->body);
  if (pl->made && pl->old_image) {
    /* The undo making the old container again: its own image. */
    json_object_set_new(c->body, "Image", json_string(pl->old_image));
  } else if (pl->expect_image) {
    c->expect = pl->expect_image;
  } else if (pl->by_name && pl->old_image) {
    c->expect = pl->old_image;
    c->fallback = true;
  }
  if (creation_post(c, err) != 0) {
    json_decref(c->body);
    free(c);
    return -1;
  }
  return 0;
}

static int
creation_post(struct creation *c, struct rp_error **err)
{
  cleanup_free char *esc = rp_url_escape(c->plan->name);
  cleanup_free char *path = rp_xasprintf("/containers/create?name=%s", esc);
  return call(c->d, "POST", path, c->body, 0, creation_cb, c, err);
}

void
rp_docker_op_release(struct rp_provider *p, void *plan)
{
  struct rp_docker *d = p->ctx;
  struct plan *pl = plan;
  if (pl) {
    free(pl->name);
    json_decref(pl->body);
    json_decref(pl->extra);
    free(pl->old_image);
    free(pl->expect_image);
    free(pl);
  }
  /* The recycle that prepare began has ended. */
  d->recycles_in_flight--;
  rp_docker_check_stopped(d);
}

/* --- prepare: read only ---------------------------------------------------*/

enum prep_step { P_INSPECT, P_LIST_ALL, P_MAC, P_IMAGE, P_BUILD, P_END };

struct prep {
  struct rp_docker *d;
  rp_prepared_cb cb;
  void *arg;
  enum rp_strategy strategy;
  char *new_content; /* owned: the reference to create from after a pull,
                        or NULL (the recycle keeps the content) */
  int64_t started_ms;
  enum prep_step step;
  char *id;             /* owned */
  char *name;           /* owned */
  json_t *inspect;      /* owned: the container, before anything */
  json_t *image;        /* owned: the image the old container ran */
  char *image_ref;      /* owned: what create is given, NULL = image ID */
  json_t *id_names;     /* owned: container id -> name */
  char *configured_mac; /* owned: "" none */
  json_t *details;      /* owned */
};

static void prep_next(struct prep *pp);

static void
prep_end(struct prep *pp, const struct rp_error *err, struct plan *plan,
         const char *clash)
{
  struct rp_prepared pr = {
      .plan = plan,
      .name = pp->name,
      .running = true,
      .clash = clash,
      .details = pp->details,
  };
  pp->cb(pp->arg, err ? NULL : &pr, err);
  free(pp->id);
  free(pp->name);
  json_decref(pp->inspect);
  json_decref(pp->image);
  free(pp->image_ref);
  free(pp->new_content);
  json_decref(pp->id_names);
  free(pp->configured_mac);
  json_decref(pp->details);
  free(pp);
}

static void
prep_fail(struct prep *pp, const struct rp_error *err, const char *what)
{
  struct rp_error *e = rp_error_dup(err);
  rp_error_prefix(&e, "%s", what);
  prep_end(pp, e, NULL, NULL);
  rp_error_free(e);
}

static void
prep_failf(struct prep *pp, int code, const char *what, const char *msg)
{
  struct rp_error *e = NULL;
  rp_error_set(&e, code, "%s: %s", what, msg);
  prep_end(pp, e, NULL, NULL);
  rp_error_free(e);
}

/* A read during preparation: err fails it, unless tolerant. */
struct prep_read {
  struct prep *pp;
  const char *what;
  bool tolerant;
  void (*then)(struct prep *pp, const struct rp_dockerapi_reply *r,
               const struct rp_error *err);
};

static void
prep_read_cb(void *ctx, const struct rp_dockerapi_reply *r,
             const struct rp_error *err)
{
  struct prep_read rd = *(struct prep_read *)ctx;
  free(ctx);
  if (err && !rd.tolerant) {
    prep_fail(rd.pp, err, rd.what);
    return;
  }
  rd.then(rd.pp, err ? NULL : r, err);
}

static void
prep_read(struct prep *pp, const char *path, const char *what, bool tolerant,
          void (*then)(struct prep *pp, const struct rp_dockerapi_reply *r,
                       const struct rp_error *err))
{
  struct prep_read *rd = rp_xcalloc(1, sizeof(*rd));
  *rd = (struct prep_read){
      .pp = pp, .what = what, .tolerant = tolerant, .then = then};
  cleanup_error struct rp_error *err = NULL;
  if (call(pp->d, "GET", path, NULL, 0, prep_read_cb, rd, &err) != 0) {
    free(rd);
    if (tolerant)
      then(pp, NULL, err);
    else
      prep_fail(pp, err, what);
  }
}

static void
inspected(struct prep *pp, const struct rp_dockerapi_reply *r,
          const struct rp_error *err)
{
  (void)err;
  if (!json_is_object(r->body) ||
      !json_is_object(json_object_get(r->body, "Config"))) {
    prep_failf(pp, RP_EPROTO, "inspect",
               "the engine's answer is not a container");
    return;
  }
  json_t *state = json_object_get(r->body, "State");
  /* The core found this container due while it ran since started_ms; by
   * now (an answer that came late, an event not yet read) it may have
   * stopped or started again.  Recycling it then would start a container
   * someone stopped, or cut a new life short: do nothing, say why. */
  int64_t started = 0;
  const char *changed = NULL;
  if (!json_is_true(json_object_get(state, "Running")) ||
      json_is_true(json_object_get(state, "Restarting")))
    changed = "it is no longer running: nothing done";
  else if (pp->started_ms > 0 &&
           (rp_parse_time_ms(
                json_string_value(json_object_get(state, "StartedAt")),
                &started) != 0 ||
            started != pp->started_ms))
    changed = "it started again since it was found due: nothing done";
  if (changed) {
    prep_failf(pp, RP_ECONFLICT, "inspect", changed);
    return;
  }
  pp->inspect = json_incref(r->body);
  const char *name = json_string_value(json_object_get(r->body, "Name"));
  if (name) {
    free(pp->name);
    pp->name = rp_xstrdup(name[0] == '/' ? name + 1 : name);
  }
  prep_next(pp);
}

/* Every container's name by id (full and short), to rewrite references; and
 * a refusal when another container shares this one's network namespace. */
static void
listed_all(struct prep *pp, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  (void)err;
  pp->id_names = json_object();
  cleanup_json json_t *dependents = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(r->body, i, c)
  {
    const char *id = json_string_value(json_object_get(c, "Id"));
    const char *name = rp_docker_own_name(json_object_get(c, "Names"));
    if (!id || !name)
      continue;
    json_object_set_new(pp->id_names, id, json_string(name));
    if (strlen(id) >= 12) {
      char short_id[13];
      memcpy(short_id, id, 12);
      short_id[12] = '\0';
      json_object_set_new(pp->id_names, short_id, json_string(name));
    }
    const char *mode = json_string_value(
        json_object_get(json_object_get(c, "HostConfig"), "NetworkMode"));
    if (mode && strncmp(mode, "container:", 10) == 0 &&
        strcmp(id, pp->id) != 0) {
      const char *target = mode + 10;
      if (strcmp(target, pp->id) == 0 || strcmp(target, pp->name) == 0 ||
          (strlen(target) >= 12 &&
           strncmp(pp->id, target, strlen(target)) == 0))
        json_array_append_new(dependents, json_string(name));
    }
  }
  if (json_array_size(dependents) > 0) {
    cleanup_free char *names = json_dumps(dependents, JSON_COMPACT);
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EREFUSED,
                 "%s share this container's network namespace "
                 "(network_mode container:%s) and would lose their network; "
                 "recycle them together with it, or exclude it",
                 names, pp->name);
    prep_end(pp, e, NULL, NULL);
    rp_error_free(e);
    return;
  }
  prep_next(pp);
}

/* The MAC address the user configured for the main network.  Inspect shows
 * it as Config.MacAddress below API 1.52, and from 1.52 shows only the
 * address in use, generated or not: it is then read at 1.51, which every
 * engine that speaks 1.52 accepts (Engine 29: 1.44 and newer).  Should an
 * engine one day refuse 1.51 too, the address in use is kept: a generated
 * one copied costs only start-first (it falls back), a configured one lost
 * would lose the user's configuration. */
static const char *
main_network_mac(const json_t *inspect)
{
  json_t *nets = json_object_get(
      json_object_get((json_t *)(uintptr_t)inspect, "NetworkSettings"),
      "Networks");
  const char *primary = rp_docker_primary_network(inspect);
  const char *mac = json_string_value(json_object_get(
      json_object_get(nets, primary ? primary : ""), "MacAddress"));
  return mac ? mac : "";
}

static void
mac_read(struct prep *pp, const struct rp_dockerapi_reply *r,
         const struct rp_error *err)
{
  const char *mac = NULL;
  if (!err && r && json_is_object(r->body))
    mac = json_string_value(
        json_object_get(json_object_get(r->body, "Config"), "MacAddress"));
  if (!mac) {
    mac = main_network_mac(pp->inspect);
    json_object_set_new(pp->details, "mac_address",
                        json_string("not known at this API version: the "
                                    "address in use is kept"));
  }
  pp->configured_mac = rp_xstrdup(mac);
  prep_next(pp);
}

static void
read_mac(struct prep *pp)
{
  const struct rp_dockerapi *api = &pp->d->api;
  const struct rp_dockerapi_version *v =
      api->v ? api->v : rp_dockerapi_version(RP_DOCKERAPI_OLDEST);
  if (!api->kind->shows_fixed_addresses) {
    /* Whether it was fixed cannot be known: it is kept. */
    pp->configured_mac = rp_xstrdup(main_network_mac(pp->inspect));
    prep_next(pp);
    return;
  }
  if (v->inspect_configured_mac) {
    const char *mac = json_string_value(
        json_object_get(json_object_get(pp->inspect, "Config"), "MacAddress"));
    pp->configured_mac = rp_xstrdup(mac ? mac : "");
    prep_next(pp);
    return;
  }
  const struct rp_dockerapi_version *older =
      rp_dockerapi_version(RP_DOCKERAPI_V(1, 51));
  if (api->engine_min && api->engine_min > older->number) {
    mac_read(pp, NULL, NULL);
    return;
  }
  struct prep_read *rd = rp_xcalloc(1, sizeof(*rd));
  *rd = (struct prep_read){.pp = pp, .tolerant = true, .then = mac_read};
  cleanup_free char *path = rp_xasprintf("/containers/%s/json", pp->id);
  struct call *c = rp_xcalloc(1, sizeof(*c));
  *c = (struct call){.d = pp->d, .then = prep_read_cb, .ctx = rd};
  cleanup_error struct rp_error *err = NULL;
  if (rp_dockerapi_call_at(&pp->d->api, older, "GET", path, NULL, 0, call_cb, c,
                           &err) != 0) {
    free(c);
    free(rd);
    mac_read(pp, NULL, err);
    return;
  }
  pp->d->recycles_in_flight++;
}

/* pp->image is always the image the OLD container ran: the body builder
 * compares the old configuration with that image's defaults. */
static void
image_inspected(struct prep *pp, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  (void)err;
  pp->image = json_incref(r->body);
  prep_next(pp);
}

static void
inspect_image(struct prep *pp, const char *ref)
{
  cleanup_free char *esc = rp_url_escape(ref);
  cleanup_free char *path = rp_xasprintf("/images/%s/json", esc);
  prep_read(pp, path, "inspect image", false, image_inspected);
}

static void
by_name(struct prep *pp, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  const char *id = json_string_value(json_object_get(pp->inspect, "Image"));
  const char *ref = json_string_value(
      json_object_get(json_object_get(pp->inspect, "Config"), "Image"));
  if (!err && r && json_is_object(r->body) && id &&
      json_equal(json_object_get(r->body, "Id"),
                 json_object_get(pp->inspect, "Image"))) {
    pp->image = json_incref(r->body);
    free(pp->image_ref);
    pp->image_ref = rp_xstrdup(ref);
    prep_next(pp);
    return;
  }
  /* The name moved to another image (or is gone): keep the exact image. */
  inspect_image(pp, id ? id : ref);
}

static void
read_image(struct prep *pp)
{
  const char *ref = json_string_value(
      json_object_get(json_object_get(pp->inspect, "Config"), "Image"));
  const char *id = json_string_value(json_object_get(pp->inspect, "Image"));
  if (pp->new_content) {
    /* Fresh content: the replacement is made from the reference the user
     * gave, which the pull step makes name the new digest; what equals the
     * old image's defaults is left out so that the new image's show
     * through (create_body.c). */
    free(pp->image_ref);
    pp->image_ref = rp_xstrdup(pp->new_content);
    inspect_image(pp, id ? id : ref ? ref : "");
    return;
  }
  /* Otherwise the replacement runs the very image the old one ran.  It is
   * created by name (so `docker ps` and a later pull still know the name)
   * only while the name still points at that image. */
  if (ref && id && strncmp(ref, "sha256:", 7) != 0) {
    cleanup_free char *esc = rp_url_escape(ref);
    cleanup_free char *path = rp_xasprintf("/images/%s/json", esc);
    prep_read(pp, path, "inspect image", true, by_name);
    return;
  }
  inspect_image(pp, id ? id : ref ? ref : "");
}

static void
build(struct prep *pp)
{
  cleanup_json json_t *labels =
      json_pack("{s:s}", RP_DOCKER_LABEL_REPLACES, pp->id);
  const struct rp_dockerapi *api = &pp->d->api;
  const struct rp_dockerapi_version *v =
      api->v ? api->v : rp_dockerapi_version(RP_DOCKERAPI_OLDEST);
  struct rp_docker_create_opts opts = {
      .image = pp->image_ref,
      .id_names = pp->id_names,
      .extra_labels = labels,
      .version = v,
      .configured_mac = pp->configured_mac,
      /* Engine 25 (API 1.44) and newer, when spoken to below 1.45. */
      .hostname_alias_added = v->inspect_aliases_add_short_id &&
                              api->engine_max >= RP_DOCKERAPI_V(1, 44),
      .keep_addresses_in_use = !api->kind->shows_fixed_addresses,
      .endpoint_mac_always = api->kind->endpoint_mac_always,
  };
  struct plan *pl = rp_xcalloc(1, sizeof(*pl));
  cleanup_error struct rp_error *err = NULL;
  if (rp_docker_create_body(pp->inspect, pp->image, &opts, &pl->body,
                            &pl->extra, &err) != 0) {
    free(pl);
    prep_fail(pp, err, "build the replacement's configuration");
    return;
  }
  pl->name = rp_xstrdup(pp->name);
  const char *old = json_string_value(json_object_get(pp->inspect, "Image"));
  pl->old_image = old ? rp_xstrdup(old) : NULL;
  pl->by_name = !pp->new_content && pp->image_ref &&
                strncmp(pp->image_ref, "sha256:", 7) != 0;
  /* Old and new cannot hold a host port, a static address or a fixed MAC
   * address at once: start-first falls back. */
  const char *clash = rp_docker_body_clashes(pl->body, pl->extra);
  prep_end(pp, NULL, pl, clash);
}

static void
prep_next(struct prep *pp)
{
  if (pp->step != P_INSPECT && pp->strategy != RP_STRATEGY_RECREATE) {
    prep_end(pp, NULL, NULL, NULL);
    return;
  }
  switch (pp->step++) {
  case P_INSPECT: {
    cleanup_free char *path = rp_xasprintf("/containers/%s/json", pp->id);
    prep_read(pp, path, "inspect", false, inspected);
    return;
  }
  case P_LIST_ALL:
    prep_read(pp, "/containers/json?all=1", "list containers", false,
              listed_all);
    return;
  case P_MAC:
    read_mac(pp);
    return;
  case P_IMAGE:
    read_image(pp);
    return;
  case P_BUILD:
    build(pp);
    return;
  case P_END:
    break;
  }
}

int
rp_docker_op_prepare(struct rp_provider *p, const struct rp_workload *w,
                     const struct rp_recycle_spec *spec, rp_prepared_cb cb,
                     void *arg, struct rp_error **err)
{
  struct rp_docker *d = p->ctx;
  if (refuse_when_stopping(d, err) < 0)
    return -1;
  if (spec->strategy != RP_STRATEGY_RECREATE &&
      spec->strategy != RP_STRATEGY_RESTART &&
      spec->strategy != RP_STRATEGY_STOP &&
      spec->strategy != RP_STRATEGY_REMOVE)
    return rp_error_set(err, ENOTSUP, "strategy %s is not one for containers",
                        rp_strategy_name(spec->strategy));
  struct prep *pp = rp_xcalloc(1, sizeof(*pp));
  pp->d = d;
  pp->cb = cb;
  pp->arg = arg;
  pp->strategy = spec->strategy;
  if (spec->image_digest && spec->image_ref)
    pp->new_content = rp_xstrdup(spec->image_ref);
  pp->started_ms = w->started_ms;
  pp->id = rp_xstrdup(w->id);
  pp->name = rp_xstrdup(w->name);
  pp->details = json_object();
  pp->step = P_INSPECT;
  /* Counted until release: the provider's stop waits for the recycle. */
  d->recycles_in_flight++;
  prep_next(pp);
  return 0;
}

/* --- pull: new content by digest, named as the user named it ------------*/

/* Steps: the content is looked up by digest (already here: no pull), else
 * pulled by digest (name@digest: exactly that content, whatever the tag
 * says by then); then the user's name:tag is made to name it, so that the
 * replacement is created from the name (`docker ps` shows it) and create
 * checks that it runs that image. */
struct pull {
  struct rp_docker *d;
  struct plan *plan; /* borrowed: the runner holds it */
  rp_pulled_cb cb;
  void *arg;
  char *by_digest; /* owned: "NAME@sha256:..." */
  char *repo;      /* owned: the name as the user wrote it */
  char *tag;       /* owned */
  char *auth;      /* owned secret: the X-Registry-Auth header, or NULL */
  bool pulled;     /* the engine fetched it (it was not here) */
  char *id;        /* owned: the image id */
};

static void
pull_end(struct pull *pl, const struct rp_error *err)
{
  cleanup_json json_t *details = NULL;
  if (!err) {
    details = json_pack("{s:s, s:b}", "image_id", pl->id, "pulled", pl->pulled);
    if (pl->plan->old_image && strcmp(pl->plan->old_image, pl->id) != 0)
      json_object_set_new(details, "previous_image_id",
                          json_string(pl->plan->old_image));
    free(pl->plan->expect_image);
    pl->plan->expect_image = rp_xstrdup(pl->id);
  }
  pl->cb(pl->arg, details, err);
  free(pl->by_digest);
  free(pl->repo);
  free(pl->tag);
  rp_registry_secret_free(pl->auth);
  free(pl->id);
  free(pl);
}

static void
pull_fail(struct pull *pl, const struct rp_error *err, const char *what)
{
  struct rp_error *e = rp_error_dup(err);
  rp_error_prefix(&e, "%s", what);
  pull_end(pl, e);
  rp_error_free(e);
}

static void
pull_tagged_cb(void *ctx, const struct rp_dockerapi_reply *r,
               const struct rp_error *err)
{
  struct pull *pl = ctx;
  (void)r;
  if (err) {
    pull_fail(pl, err, "tag the pulled image");
    return;
  }
  pull_end(pl, NULL);
}

static void
pull_tag(struct pull *pl)
{
  cleanup_free char *esc = rp_url_escape(pl->by_digest);
  cleanup_free char *repo = rp_url_escape(pl->repo);
  cleanup_free char *tag = rp_url_escape(pl->tag);
  cleanup_free char *path =
      rp_xasprintf("/images/%s/tag?repo=%s&tag=%s", esc, repo, tag);
  cleanup_error struct rp_error *err = NULL;
  if (call(pl->d, "POST", path, NULL, 0, pull_tagged_cb, pl, &err) != 0)
    pull_fail(pl, err, "tag the pulled image");
}

static void pull_fetch(struct pull *pl);

static void
pull_inspected_cb(void *ctx, const struct rp_dockerapi_reply *r,
                  const struct rp_error *err)
{
  struct pull *pl = ctx;
  if (err && err->code == RP_ENOTFOUND && !pl->pulled) {
    pull_fetch(pl);
    return;
  }
  if (err) {
    pull_fail(pl, err, "inspect the pulled image");
    return;
  }
  const char *id = json_string_value(json_object_get(r->body, "Id"));
  if (!id) {
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EPROTO, "inspect %s: the answer has no Id",
                 pl->by_digest);
    pull_end(pl, e);
    rp_error_free(e);
    return;
  }
  pl->id = rp_xstrdup(id);
  pull_tag(pl);
}

static void
pull_inspect(struct pull *pl)
{
  cleanup_free char *esc = rp_url_escape(pl->by_digest);
  cleanup_free char *path = rp_xasprintf("/images/%s/json", esc);
  cleanup_error struct rp_error *err = NULL;
  if (call(pl->d, "GET", path, NULL, 0, pull_inspected_cb, pl, &err) != 0)
    pull_fail(pl, err, "inspect image");
}

static void
pull_fetched_cb(void *ctx, const struct rp_dockerapi_reply *r,
                const struct rp_error *err)
{
  struct pull *pl = ctx;
  if (err) {
    pull_fail(pl, err, "pull image");
    return;
  }
  /* The pull answers 200 and reports failure in its progress stream:
   * "error" and (from API 1.48 the only one not deprecated) "errorDetail";
   * Engine 29 still sends both. */
  const char *p = r->raw ? strstr(r->raw, "\"error\"") : NULL;
  if (!p && r->raw)
    p = strstr(r->raw, "\"errorDetail\"");
  if (p) {
    cleanup_free char *msg = rp_xstrndup(p, strcspn(p, "\n"));
    struct rp_error *e = NULL;
    rp_error_set(&e, RP_EENGINE, "pull image %s: %s", pl->by_digest, msg);
    pull_end(pl, e);
    rp_error_free(e);
    return;
  }
  pl->pulled = true;
  pull_inspect(pl);
}

static void
pull_fetch(struct pull *pl)
{
  cleanup_free char *esc = rp_url_escape(pl->by_digest);
  cleanup_free char *path = rp_xasprintf("/images/create?fromImage=%s", esc);
  cleanup_free char *header =
      pl->auth ? rp_xasprintf("X-Registry-Auth: %s", pl->auth) : NULL;
  const char *headers[] = {header, NULL};
  cleanup_error struct rp_error *err = NULL;
  struct call *c = rp_xcalloc(1, sizeof(*c));
  *c = (struct call){.d = pl->d, .then = pull_fetched_cb, .ctx = pl};
  /* A pull may take long: layers are downloaded in this call. */
  int rc = rp_dockerapi_call_headers(&pl->d->api, "POST", path, NULL,
                                     header ? headers : NULL, PULL_TIMEOUT_MS,
                                     call_cb, c, &err);
  rp_registry_secret_free(RP_STEAL(header));
  if (rc != 0) {
    free(c);
    pull_fail(pl, err, "pull image");
    return;
  }
  pl->d->recycles_in_flight++;
}

int
rp_docker_op_pull(struct rp_provider *p, void *plan,
                  const struct rp_recycle_spec *spec, rp_pulled_cb cb,
                  void *arg, struct rp_error **err)
{
  struct rp_docker *d = p->ctx;
  if (refuse_when_stopping(d, err) < 0)
    return -1;
  if (!plan || !spec->image_ref || !spec->image_digest)
    return rp_error_set(err, EINVAL, "nothing to pull");
  struct rp_image_ref parsed = {0};
  if (rp_image_ref_parse(spec->image_ref, &parsed, err) != 0)
    return rp_error_prefix(err, "pull %s", spec->image_ref);
  if (parsed.digest) {
    rp_image_ref_clear(&parsed);
    return rp_error_set(err, EINVAL, "%s names a digest: nothing to pull",
                        spec->image_ref);
  }
  struct pull *pl = rp_xcalloc(1, sizeof(*pl));
  pl->d = d;
  pl->plan = plan;
  pl->cb = cb;
  pl->arg = arg;
  cleanup_free char *name = rp_image_ref_name(&parsed);
  pl->by_digest = rp_xasprintf("%s@%s", name, spec->image_digest);
  /* The name as the user wrote it (the engine normalizes it as it did at
   * create), without its tag. */
  const char *slash = strrchr(spec->image_ref, '/');
  const char *colon = strrchr(slash ? slash : spec->image_ref, ':');
  pl->repo =
      colon ? rp_xstrndup(spec->image_ref, (size_t)(colon - spec->image_ref))
            : rp_xstrdup(spec->image_ref);
  pl->tag = rp_xstrdup(parsed.tag ? parsed.tag : "latest");
  if (spec->image_cred && spec->image_cred->username)
    pl->auth = rp_dockerapi_registry_auth(spec->image_cred, parsed.domain);
  rp_image_ref_clear(&parsed);
  pull_inspect(pl);
  return 0;
}

/* --- watch ---------------------------------------------------------------*/

void *
rp_docker_op_watch(struct rp_provider *p, const char *id, void (*cb)(void *arg),
                   void *arg)
{
  return rp_docker_track_watch(p->ctx, id, cb, arg);
}

void
rp_docker_op_unwatch(struct rp_provider *p, void *handle)
{
  rp_docker_track_unwatch(p->ctx, handle);
}
