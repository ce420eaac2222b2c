/* The watch loop (see watch.h): one state machine for every provider's
 * tracking.  States: connecting (ops->connect, then the stream, then the
 * first list), up (listed; resyncs list again), down (waiting on the
 * reconnect timer), stopping. */
#include "watch.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log.h"
#include "util.h"

struct rp_watch {
  struct rp_provider *p;          /* borrowed */
  const struct rp_watch_ops *ops; /* static */
  void *ctx;                      /* borrowed: the provider's tracking */
  uv_timer_t reconnect;           /* closed on stop */
  uv_timer_t trim;                /* after a list; closed on stop */
  int64_t backoff_ms;             /* the last delay; 0 after a good list */
  struct rp_http_xfer *stream;    /* the event stream, or NULL */
  int calls;                      /* the provider's calls in flight */
  json_t *touched; /* owned: id -> what, events during the list in flight */
  bool up;         /* connected and listed */
  bool connecting; /* connect, stream and first list in flight */
  bool listing;    /* a list in flight */
  bool delivering; /* a list's answer is being handed over (its hooks) */
  bool list_again; /* a resync was asked for during a list, or by those
                      it was handed to: it runs once the list is done */
  bool dropping_stream; /* the loop is cancelling the stream itself */
  bool stopping;
  int timers_open;
};

static void connect_engine(struct rp_watch *w);

static void
reconnect_cb(uv_timer_t *timer)
{
  connect_engine(timer->data);
}

/* Down, with the reason, and a reconnect after the next delay. */
static void
schedule_reconnect(struct rp_watch *w, const char *why)
{
  struct rp_provider *p = w->p;
  if (w->stopping)
    return;
  if (w->stream) {
    /* Its end is reported now: it must not be taken for the cause, nor
     * double the delay a second time. */
    w->dropping_stream = true;
    rp_http_cancel(w->stream);
    w->dropping_stream = false;
  }
  w->up = false;
  w->connecting = false;
  p->hooks.state(p->hooks.core, p, false, why);
  w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : RP_WATCH_BACKOFF_MIN_MS;
  if (w->backoff_ms > RP_WATCH_BACKOFF_MAX_MS)
    w->backoff_ms = RP_WATCH_BACKOFF_MAX_MS;
  if (!uv_is_active((uv_handle_t *)&w->reconnect))
    uv_timer_start(&w->reconnect, reconnect_cb, (uint64_t)w->backoff_ms, 0);
}

static void
list_now(struct rp_watch *w)
{
  if (w->listing || w->delivering) {
    w->list_again = true;
    return;
  }
  w->listing = true;
  w->ops->list(w->ctx);
}

static void
connect_engine(struct rp_watch *w)
{
  if (w->stopping || w->connecting)
    return;
  w->connecting = true;
  cleanup_error struct rp_error *err = NULL;
  if (w->ops->connect(w->ctx, &err) != 0) {
    w->connecting = false;
    schedule_reconnect(w, err ? err->message : "cannot connect");
  }
}

struct rp_watch *
rp_watch_new(struct rp_provider *p, const struct rp_watch_ops *ops, void *ctx)
{
  struct rp_watch *w = rp_xcalloc(1, sizeof(*w));
  w->p = p;
  w->ops = ops;
  w->ctx = ctx;
  w->touched = json_object();
  uv_timer_init(p->loop, &w->reconnect);
  w->reconnect.data = w;
  uv_timer_init(p->loop, &w->trim);
  w->trim.data = w;
  w->timers_open = 2;
  return w;
}

void
rp_watch_start(struct rp_watch *w)
{
  connect_engine(w);
}

void
rp_watch_resync(struct rp_watch *w)
{
  if (!w || w->stopping || !w->up)
    return; /* a reconnect lists anyway */
  list_now(w);
}

static void
timer_closed_cb(uv_handle_t *h)
{
  struct rp_watch *w = h->data;
  w->timers_open--;
  w->ops->check_stopped(w->ctx);
}

void
rp_watch_stop(struct rp_watch *w)
{
  if (!w || w->stopping)
    return;
  w->stopping = true;
  if (w->stream)
    rp_http_cancel(w->stream);
  uv_close((uv_handle_t *)&w->reconnect, timer_closed_cb);
  uv_close((uv_handle_t *)&w->trim, timer_closed_cb);
}

bool
rp_watch_idle(const struct rp_watch *w)
{
  return !w || (w->stopping && w->timers_open == 0 && w->calls == 0);
}

void
rp_watch_free(struct rp_watch *w)
{
  if (!w)
    return;
  json_decref(w->touched);
  free(w);
}

bool
rp_watch_up(const struct rp_watch *w)
{
  return w && w->up && !w->stopping;
}

bool
rp_watch_listing(const struct rp_watch *w)
{
  return w->listing;
}

int64_t
rp_watch_retry_ms(const struct rp_watch *w)
{
  return uv_is_active((const uv_handle_t *)&w->reconnect) ? w->backoff_ms : 0;
}

bool
rp_watch_stopping(const struct rp_watch *w)
{
  return w->stopping;
}

void
rp_watch_call_started(struct rp_watch *w)
{
  w->calls++;
}

void
rp_watch_call_ended(struct rp_watch *w)
{
  w->calls--;
  if (w->stopping)
    w->ops->check_stopped(w->ctx);
}

void
rp_watch_connected(struct rp_watch *w, const char *why)
{
  if (w->stopping)
    return;
  if (why) {
    schedule_reconnect(w, why);
    return;
  }
  /* The stream first, then the list: an event that comes in during the
   * list is not lost (the provider looks at it again after the list). */
  cleanup_error struct rp_error *err = NULL;
  if (w->ops->stream(w->ctx, &w->stream, &err) != 0) {
    schedule_reconnect(w, err ? err->message : "cannot start the stream");
    return;
  }
  w->calls++;
  list_now(w);
}

void
rp_watch_stream_ended(struct rp_watch *w, const char *why)
{
  w->stream = NULL;
  rp_watch_call_ended(w);
  if (w->stopping || w->dropping_stream)
    return; /* the loop's own cancel */
  schedule_reconnect(w, why ? why : "the event stream ended");
}

bool
rp_watch_touch(struct rp_watch *w, const char *id, const char *what)
{
  if (!w->listing)
    return false;
  json_object_set_new(w->touched, id, json_string(what ? what : ""));
  return true;
}

/* Once the list and what was made of it are freed (the provider frees its
 * workloads after rp_watch_listed returns): a large list leaves glibc's
 * allocator holding the pages it parsed in, free but still resident, and
 * the agent's RSS at the list's peak until the next list reuses them. */
static void
trim_cb(uv_timer_t *timer)
{
  (void)timer;
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

static void
after_list(struct rp_watch *w, bool ok)
{
  /* Events that came in while the list was in flight may be older or
   * newer than its answer: the provider looks at those workloads again.
   * The set is emptied first, whatever a recheck does. */
  json_t *touched = w->touched;
  w->touched = json_object();
  const char *id;
  json_t *what;
  if (ok && w->ops->recheck)
    json_object_foreach(touched, id, what)
    {
      w->ops->recheck(w->ctx, id, json_string_value(what));
    }
  json_decref(touched);
  if (w->ops->after_list)
    w->ops->after_list(w->ctx, ok);
}

void
rp_watch_listed(struct rp_watch *w, struct rp_workload **items, size_t n)
{
  struct rp_provider *p = w->p;
  w->listing = false;
  if (w->stopping) {
    after_list(w, false);
    return;
  }
  bool was_up = w->up;
  w->up = true;
  w->connecting = false;
  w->backoff_ms = 0;
  w->delivering = true;
  p->hooks.listed(p->hooks.core, p, items, n);
  if (!was_up)
    p->hooks.state(p->hooks.core, p, true, NULL);
  /* The core may have stopped everything in between (plan's one list). */
  after_list(w, !w->stopping);
  w->delivering = false;
  if (!w->stopping)
    uv_timer_start(&w->trim, trim_cb, 0, 0);
  if (w->list_again) {
    w->list_again = false;
    rp_watch_resync(w);
  }
}

void
rp_watch_list_failed(struct rp_watch *w, const char *why)
{
  w->listing = false;
  after_list(w, false);
  if (w->stopping)
    return;
  if (!why)
    why = "list failed";
  if (w->connecting)
    schedule_reconnect(w, why);
  else
    rp_warn("provider %s: resync failed, keeping what was known: %s",
            w->p->name, why);
}
