/* One agent per cluster acts: the one that holds the lease.  The lease is
 * two labels of a service that never runs a task (RP_SWARM_LEASE_SERVICE:
 * replicated, 0 replicas, a placement no node satisfies), so it lives in
 * the swarm's own replicated state (Raft) and every agent can read it.
 * Writes are swarm's version-checked updates: of two agents that read the
 * same version, one update fails ("update out of sequence"), so at most
 * one takes a lease at a time.
 *
 * Each round (every third of the lease) reads the engine's clock (GET
 * /info SystemTime) and the service, then
 *   held by no one, or expired by the engine's clock -> take it
 *   held by this agent                              -> renew it
 *   held by another, unexpired                      -> follow
 * The holder acts only until its own monotonic clock says the lease it
 * wrote is about to run out (from before the round began, less a margin
 * for other managers' clocks), whatever happens to its renewals.
 *
 * An agent starts contending only when the core first asks whether it may
 * act (it has work due): `reaper plan` never takes the lease.  On stop the
 * holder gives the lease up, so that another agent takes over at its next
 * round instead of at the expiry. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "swarm/swarm.h"
#include "util.h"

#define ROUND_MS (RP_SWARM_LEASE_MS / 3)
#define RETRY_MS 1000
#define CALL_TIMEOUT_MS 10000
#define LEASE_IMAGE "reaper/lease:never"

struct rp_swarm_lease {
  struct rp_swarm *s; /* borrowed: owns this */
  uv_timer_t timer;
  bool timer_open;
  bool wanted;  /* the core has asked: contend */
  bool busy;    /* a round in flight */
  bool held;    /* the last write was ours */
  bool release; /* the round gives the lease up */
  bool stopping;
  int64_t held_until;  /* monotonic ms: act no later than this */
  int64_t round_start; /* monotonic ms when the round began */
  int64_t engine_now;  /* the engine's clock then (ms since the Epoch) */
  char *other;         /* owned: the other holder last logged, or NULL */
  int calls;
};

static void round_start(struct rp_swarm_lease *l);
static void round_end(struct rp_swarm_lease *l, int64_t next_ms);

static const char *
pname(const struct rp_swarm_lease *l)
{
  return l->s->p->name;
}

static bool
holding(const struct rp_swarm_lease *l)
{
  return l->held && rp_mono_ms() < l->held_until;
}

static int
lcall(struct rp_swarm_lease *l, const char *method, const char *path,
      const json_t *body, rp_dockerapi_cb cb, struct rp_error **err)
{
  if (rp_swarm_call(l->s, method, path, body, CALL_TIMEOUT_MS, cb, l, err) != 0)
    return -1;
  l->calls++;
  return 0;
}

static void
call_done(struct rp_swarm_lease *l)
{
  l->calls--;
}

/* --- outcomes ----------------------------------------------------------- */

static void
acquired(struct rp_swarm_lease *l)
{
  bool was = holding(l);
  l->held = true;
  l->held_until = l->round_start + RP_SWARM_LEASE_MS - RP_SWARM_LEASE_MARGIN_MS;
  free(l->other);
  l->other = NULL;
  if (was)
    return;
  rp_info("provider %s: this agent (%s) holds the cluster's lease: it acts",
          pname(l), l->s->holder);
  /* What a previous holder left half-done is put right first; then the
   * work held back while another agent acted may go (the sweep says so). */
  rp_swarm_sweep_marks(l->s);
}

static void
follows(struct rp_swarm_lease *l, const char *holder, int64_t expires)
{
  if (holding(l))
    rp_warn("provider %s: the cluster's lease went to %s: this agent no "
            "longer acts",
            pname(l), holder);
  l->held = false;
  if (!l->other || strcmp(l->other, holder) != 0) {
    char until[40];
    rp_format_time_ms(expires, until, sizeof(until));
    rp_info("provider %s: %s holds the cluster's lease (until %s): this "
            "agent tracks and plans, and takes over if it lapses",
            pname(l), holder, until);
    free(l->other);
    l->other = rp_xstrdup(holder);
  }
}

/* --- a round ------------------------------------------------------------ */

static json_t *
lease_labels(struct rp_swarm_lease *l, json_t *base)
{
  json_t *labels = json_is_object(base) ? json_deep_copy(base) : json_object();
  if (l->release) {
    json_object_del(labels, RP_SWARM_LABEL_HOLDER);
    json_object_del(labels, RP_SWARM_LABEL_EXPIRES);
    return labels;
  }
  char exp[40];
  rp_format_time_ms(l->engine_now + RP_SWARM_LEASE_MS, exp, sizeof(exp));
  json_object_set_new(labels, RP_SWARM_LABEL_HOLDER, json_string(l->s->holder));
  json_object_set_new(labels, RP_SWARM_LABEL_EXPIRES, json_string(exp));
  return labels;
}

static void
written_cb(void *arg, const struct rp_dockerapi_reply *r,
           const struct rp_error *err)
{
  struct rp_swarm_lease *l = arg;
  (void)r;
  call_done(l);
  if (l->release) {
    if (err)
      rp_warn("provider %s: could not give up the cluster's lease (it lapses "
              "by itself): %s",
              pname(l), err->message);
    else
      rp_info("provider %s: gave up the cluster's lease", pname(l));
    l->held = false;
    round_end(l, 0);
    return;
  }
  if (err) {
    /* Another agent wrote first (out of sequence, or the name was taken):
     * read again soon. */
    rp_debug("provider %s: lease write: %s", pname(l), err->message);
    round_end(l, RETRY_MS);
    return;
  }
  acquired(l);
  round_end(l, ROUND_MS);
}

static void
create_lease(struct rp_swarm_lease *l)
{
  cleanup_json json_t *labels = lease_labels(l, NULL);
  cleanup_json json_t *body = json_pack(
      "{s:s, s:O, s:{s:{s:s}, s:{s:[s]}}, s:{s:{s:i}}}", "Name",
      RP_SWARM_LEASE_SERVICE, "Labels", labels, "TaskTemplate", "ContainerSpec",
      "Image", LEASE_IMAGE, "Placement", "Constraints",
      "node.labels.reaper.lease==never", "Mode", "Replicated", "Replicas", 0);
  cleanup_error struct rp_error *err = NULL;
  if (lcall(l, "POST", "/services/create", body, written_cb, &err) != 0) {
    rp_warn("provider %s: lease: %s", pname(l), err->message);
    round_end(l, RETRY_MS);
  }
}

static void
read_cb(void *arg, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  struct rp_swarm_lease *l = arg;
  call_done(l);
  if (err && err->code == RP_ENOTFOUND) {
    if (l->release)
      round_end(l, 0);
    else
      create_lease(l);
    return;
  }
  json_t *id = json_object_get(r->body, "ID");
  json_t *version =
      json_object_get(json_object_get(r->body, "Version"), "Index");
  json_t *spec = json_object_get(r->body, "Spec");
  if (err || !json_is_string(id) || !json_is_integer(version) ||
      !json_is_object(spec)) {
    rp_warn("provider %s: lease: read %s: %s", pname(l), RP_SWARM_LEASE_SERVICE,
            err ? err->message : "not a service in the answer");
    round_end(l, RETRY_MS);
    return;
  }
  json_t *labels = json_object_get(spec, "Labels");
  const char *holder = NULL;
  int64_t expires = 0;
  enum rp_swarm_lease_state st = rp_swarm_lease_read(
      labels, l->s->holder, l->engine_now, &holder, &expires);
  if (l->release ? st != RP_SWARM_LEASE_MINE : st == RP_SWARM_LEASE_OTHER) {
    if (!l->release)
      follows(l, holder, expires);
    round_end(l, l->release ? 0 : ROUND_MS);
    return;
  }
  cleanup_json json_t *new_spec = json_deep_copy(spec);
  json_object_set_new(new_spec, "Labels", lease_labels(l, labels));
  cleanup_free char *path =
      rp_xasprintf("/services/%s/update?version=%lld", json_string_value(id),
                   (long long)json_integer_value(version));
  cleanup_error struct rp_error *werr = NULL;
  if (lcall(l, "POST", path, new_spec, written_cb, &werr) != 0) {
    rp_warn("provider %s: lease: %s", pname(l), werr->message);
    round_end(l, RETRY_MS);
  }
}

static void
info_cb(void *arg, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  struct rp_swarm_lease *l = arg;
  call_done(l);
  int64_t now = 0;
  if (err ||
      rp_parse_time_ms(
          json_string_value(json_object_get(r->body, "SystemTime")), &now) !=
          0 ||
      now <= 0) {
    rp_debug("provider %s: lease: GET /info: %s", pname(l),
             err ? err->message : "no SystemTime");
    round_end(l, RETRY_MS);
    return;
  }
  l->engine_now = now;
  cleanup_error struct rp_error *rerr = NULL;
  if (lcall(l, "GET", "/services/" RP_SWARM_LEASE_SERVICE, NULL, read_cb,
            &rerr) != 0) {
    rp_warn("provider %s: lease: %s", pname(l), rerr->message);
    round_end(l, RETRY_MS);
  }
}

static void
timer_cb(uv_timer_t *t)
{
  round_start(t->data);
}

static void
round_start(struct rp_swarm_lease *l)
{
  if (l->busy)
    return;
  if (l->stopping && !l->release)
    return;
  l->busy = true;
  l->round_start = rp_mono_ms();
  cleanup_error struct rp_error *err = NULL;
  if (lcall(l, "GET", "/info", NULL, info_cb, &err) != 0) {
    rp_warn("provider %s: lease: %s", pname(l), err->message);
    round_end(l, RETRY_MS);
  }
}

static void
timer_closed_cb(uv_handle_t *h)
{
  struct rp_swarm_lease *l = h->data;
  l->timer_open = false;
  rp_swarm_check_stopped(l->s);
}

static void
close_timer(struct rp_swarm_lease *l)
{
  if (!l->timer_open || uv_is_closing((uv_handle_t *)&l->timer))
    return;
  uv_close((uv_handle_t *)&l->timer, timer_closed_cb);
}

static void
round_end(struct rp_swarm_lease *l, int64_t next_ms)
{
  l->busy = false;
  if (l->stopping) {
    if (!l->release && holding(l)) {
      /* The stop came during a round: give the lease up now. */
      l->release = true;
      round_start(l);
      return;
    }
    close_timer(l);
    return;
  }
  uv_timer_start(&l->timer, timer_cb, (uint64_t)next_ms, 0);
}

/* --- interface ---------------------------------------------------------- */

void
rp_swarm_lease_init(struct rp_swarm *s)
{
  struct rp_swarm_lease *l = rp_xcalloc(1, sizeof(*l));
  l->s = s;
  uv_timer_init(s->p->loop, &l->timer);
  l->timer.data = l;
  l->timer_open = true;
  s->lease = l;
}

bool
rp_swarm_lease_held(struct rp_swarm *s)
{
  struct rp_swarm_lease *l = s->lease;
  if (!l || l->stopping)
    return false;
  if (!l->wanted) {
    l->wanted = true;
    rp_info("provider %s: work is due: contending for the cluster's lease "
            "(service %s)",
            pname(l), RP_SWARM_LEASE_SERVICE);
    uv_timer_start(&l->timer, timer_cb, 0, 0);
  }
  return holding(l) && !s->sweeping;
}

bool
rp_swarm_lease_holding(const struct rp_swarm *s)
{
  return s->lease && !s->lease->stopping && holding(s->lease);
}

void
rp_swarm_lease_stop(struct rp_swarm *s)
{
  struct rp_swarm_lease *l = s->lease;
  if (!l || l->stopping)
    return;
  l->stopping = true;
  if (l->busy)
    return; /* round_end goes on from there */
  uv_timer_stop(&l->timer);
  if (holding(l)) {
    l->release = true;
    round_start(l);
    return;
  }
  close_timer(l);
}

bool
rp_swarm_lease_idle(const struct rp_swarm *s)
{
  const struct rp_swarm_lease *l = s->lease;
  return !l || (!l->timer_open && l->calls == 0);
}

void
rp_swarm_lease_free(struct rp_swarm *s)
{
  struct rp_swarm_lease *l = s->lease;
  if (!l)
    return;
  free(l->other);
  free(l);
  s->lease = NULL;
}

/* --- a look for recovery ------------------------------------------------ */

struct peek {
  void (*cb)(void *arg, json_t *labels, const struct rp_error *err);
  void *arg;
};

static void
peek_cb(void *arg, const struct rp_dockerapi_reply *r,
        const struct rp_error *err)
{
  struct peek pk = *(struct peek *)arg;
  free(arg);
  if (err && err->code == RP_ENOTFOUND) {
    pk.cb(pk.arg, NULL, NULL);
    return;
  }
  pk.cb(pk.arg,
        err ? NULL
            : json_object_get(json_object_get(r->body, "Spec"), "Labels"),
        err);
}

int
rp_swarm_lease_peek(struct rp_swarm *s,
                    void (*cb)(void *arg, json_t *labels,
                               const struct rp_error *err),
                    void *arg, struct rp_error **err)
{
  struct peek *pk = rp_xcalloc(1, sizeof(*pk));
  pk->cb = cb;
  pk->arg = arg;
  if (rp_swarm_call(s, "GET", "/services/" RP_SWARM_LEASE_SERVICE, NULL,
                    CALL_TIMEOUT_MS, peek_cb, pk, err) != 0) {
    free(pk);
    return -1;
  }
  return 0;
}
