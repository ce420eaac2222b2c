/* A sink (notify_sink.h): its bounded queue and the delivery of its events
 * one at a time, with retries.
 *
 * Its one timer does all its waiting: the backoff before a retry, and a
 * 0 ms step to the next event, so that a result never starts the next
 * attempt from inside the previous one's callback (no recursion however
 * many events fail at once).  A sink is freed in its timer's close
 * callback, once no attempt of it is in flight: a sink that a reload
 * retires while it delivers is closed when that attempt ends. */
#include "notify_sink.h"

#include <string.h>

#include "log.h"
#include "strv.h"
#include "util.h"

#define BACKOFF_CAP_MS 60000
/* Dropped events are warned of at most once in this long per sink. */
#define DROP_WARN_EVERY_MS 60000

static void step_cb(uv_timer_t *t);

const struct rp_notify_transport *
rp_notify_transport_of(const struct rp_notify *cfg)
{
  return cfg->webhook ? &rp_notify_webhook : &rp_notify_command;
}

static void
item_free(struct rp_notify_item *it)
{
  if (!it)
    return;
  free(it->event);
  free(it->body);
  free(it->what);
  free(it);
}

struct rp_notify_sink *
rp_notify_sink_new(struct rp_notify_hub *h, const struct rp_notify *cfg,
                   const char *label, struct rp_notify_counts *counts)
{
  struct rp_notify_sink *s = rp_xcalloc(1, sizeof(*s));
  s->hub = h;
  s->transport = rp_notify_transport_of(cfg);
  s->cfg.webhook = cfg->webhook ? rp_xstrdup(cfg->webhook) : NULL;
  s->cfg.command = rp_strv_dup(cfg->command);
  s->cfg.events = rp_strv_dup(cfg->events);
  s->cfg.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
  s->cfg.retries = cfg->retries >= 0 ? cfg->retries : 0;
  cleanup_free char *shown = s->transport->describe(cfg);
  s->display = rp_xasprintf("notify %s (%s)", label, shown);
  s->counts = counts;
  uv_timer_init(h->loop, &s->timer);
  s->timer.data = s;
  h->open_handles++;
  return s;
}

bool
rp_notify_sink_same(const struct rp_notify_sink *s, const struct rp_notify *b)
{
  const struct rp_notify *a = &s->cfg;
  return (a->webhook == NULL) == (b->webhook == NULL) &&
         (!a->webhook || strcmp(a->webhook, b->webhook) == 0) &&
         rp_strv_equal(a->command, b->command) &&
         rp_strv_equal(a->events, b->events) &&
         a->timeout_ms == b->timeout_ms && a->retries == b->retries;
}

static void
closed_cb(uv_handle_t *handle)
{
  struct rp_notify_sink *s = handle->data;
  struct rp_notify_hub *h = s->hub;
  item_free(s->current);
  while (s->head) {
    struct rp_notify_item *it = s->head;
    s->head = it->next;
    item_free(it);
  }
  free(s->cfg.webhook);
  rp_strv_free(s->cfg.command);
  rp_strv_free(s->cfg.events);
  free(s->display);
  free(s);
  h->open_handles--;
  h->settled_cb(h);
}

static void
list_unlink(struct rp_notify_sink **head, struct rp_notify_sink *s)
{
  for (struct rp_notify_sink **p = head; *p; p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      s->next = NULL;
      return;
    }
  }
}

void
rp_notify_sink_close(struct rp_notify_sink *s)
{
  if (s->closing)
    return;
  s->closing = true;
  list_unlink(s->retired ? &s->hub->retired : &s->hub->sinks, s);
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, closed_cb);
}

/* Drops everything waiting (not the attempt in flight), counted. */
static void
drop_queue(struct rp_notify_sink *s, const char *why)
{
  uint64_t dropped = 0;
  while (s->head) {
    struct rp_notify_item *it = s->head;
    s->head = it->next;
    item_free(it);
    dropped++;
  }
  s->tail = NULL;
  s->queued = 0;
  if (s->current && !s->busy) {
    /* Waiting for its retry: never tried again. */
    item_free(s->current);
    s->current = NULL;
    uv_timer_stop(&s->timer);
    dropped++;
  }
  s->counts->dropped += dropped;
  if (dropped)
    rp_warn("%s: %llu events not delivered: %s", s->display,
            (unsigned long long)dropped, why);
}

static void
kick(struct rp_notify_sink *s)
{
  if (s->busy || s->closing || s->hub->flush_expired ||
      uv_is_active((uv_handle_t *)&s->timer))
    return;
  if (!s->current && !s->head)
    return;
  uv_timer_start(&s->timer, step_cb, 0, 0);
}

bool
rp_notify_sink_idle(const struct rp_notify_sink *s)
{
  return !s->busy && !s->current && !s->head;
}

void
rp_notify_sink_attempt_done(struct rp_notify_sink *s, bool ok, bool retry,
                            const char *why)
{
  struct rp_notify_hub *h = s->hub;
  struct rp_notify_item *it = s->current;
  s->busy = false;
  s->inflight = NULL;
  if (ok) {
    s->counts->sent++;
    rp_debug("%s: %s delivered", s->display, it->what);
  } else if (retry && s->attempt < s->cfg.retries && !h->closing &&
             !s->retired) {
    s->counts->retried++;
    s->attempt++;
    int64_t delay = h->limits.backoff_ms;
    for (int i = 1; i < s->attempt && delay < BACKOFF_CAP_MS; i++)
      delay *= 2;
    if (delay > BACKOFF_CAP_MS)
      delay = BACKOFF_CAP_MS;
    /* Debug: a receiver that is down would say so at every attempt; the
     * event given up is the warning. */
    char d[32];
    rp_debug("%s: %s: %s; trying again in %s (attempt %d of %d)", s->display,
             it->what, why ? why : "failed",
             rp_format_duration(delay, d, sizeof(d)), s->attempt + 1,
             s->cfg.retries + 1);
    uv_timer_start(&s->timer, step_cb, (uint64_t)delay, 0);
    return;
  } else {
    s->counts->failed++;
    rp_warn("%s: %s not delivered: %s%s", s->display, it->what,
            why ? why : "failed",
            retry && s->attempt > 0 ? " (no retry left)" : "");
  }
  item_free(it);
  s->current = NULL;
  if (s->retired) {
    rp_notify_sink_close(s);
  } else {
    kick(s);
  }
  h->settled_cb(h);
}

static void
step_cb(uv_timer_t *t)
{
  struct rp_notify_sink *s = t->data;
  if (s->busy || s->closing || s->hub->flush_expired)
    return;
  if (!s->current) {
    s->current = s->head;
    if (!s->current)
      return;
    s->head = s->current->next;
    if (!s->head)
      s->tail = NULL;
    s->queued--;
    s->current->next = NULL;
    s->attempt = 0;
  }
  s->busy = true;
  s->transport->send(s);
}

void
rp_notify_sink_enqueue(struct rp_notify_sink *s, const char *event,
                       const char *body, const char *what)
{
  struct rp_notify_hub *h = s->hub;
  if (s->queued >= h->limits.queue_max && s->head) {
    /* The oldest waiting event goes: the newest say more about now. */
    struct rp_notify_item *old = s->head;
    s->head = old->next;
    if (!s->head)
      s->tail = NULL;
    s->queued--;
    s->counts->dropped++;
    s->drops_unwarned++;
    int64_t now = rp_mono_ms();
    if (s->drop_warned_ms == 0 ||
        now - s->drop_warned_ms >= DROP_WARN_EVERY_MS) {
      rp_warn("%s: queue full (%zu events waiting): dropped the oldest (%s); "
              "%llu dropped since the last warning",
              s->display, h->limits.queue_max, old->what,
              (unsigned long long)s->drops_unwarned);
      s->drop_warned_ms = now;
      s->drops_unwarned = 0;
    }
    item_free(old);
  }
  struct rp_notify_item *it = rp_xcalloc(1, sizeof(*it));
  it->event = rp_xstrdup(event);
  it->body = rp_xstrdup(body);
  it->len = strlen(body);
  it->what = rp_xstrdup(what);
  if (s->tail)
    s->tail->next = it;
  else
    s->head = it;
  s->tail = it;
  s->queued++;
  kick(s);
}

void
rp_notify_sink_retire(struct rp_notify_sink *s)
{
  struct rp_notify_hub *h = s->hub;
  s->retired = true;
  s->next = h->retired;
  h->retired = s;
  drop_queue(s, "its notify entry changed at a reload");
  if (!s->busy)
    rp_notify_sink_close(s);
}

void
rp_notify_sink_hurry(struct rp_notify_sink *s)
{
  if (s->current && !s->busy) {
    uv_timer_stop(&s->timer);
    kick(s);
  }
}

void
rp_notify_sink_stop(struct rp_notify_sink *s)
{
  drop_queue(s, "reaper is stopping");
  /* Its end is told (and s may be closed) once the transport stops. */
  if (s->busy && s->inflight)
    s->transport->cancel(s);
}
