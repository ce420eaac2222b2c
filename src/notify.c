/* The notifier (notify.h): the sinks of the configuration's notify: list
 * and which events each takes, what a sink receives, the counts, reloads,
 * and the notifier's life.  A sink's queue and delivery are notify_sink.c,
 * each transport's attempt notify_webhook.c and notify_command.c, the
 * advance notices notify_notices.c.
 *
 * The notifier is freed once its flush timer and every sink are closed
 * (the schedule of the notices and rp_http close and free themselves). */
#include "notify.h"

#include <string.h>

#include "http_client.h"
#include "notify_notices.h"
#include "notify_sink.h"
#include "util.h"

#define DEFAULT_QUEUE_MAX 1000
#define DEFAULT_BACKOFF_MS 1000
#define DEFAULT_FLUSH_MS 5000

/* --- filter and body ---------------------------------------------------- */

/* recycle.step lines (one before each acting step of a recycle) are for the
 * audit trail: a sink gets them only when it names them, never through "*",
 * "recycle.*" or the default, which would multiply its traffic by the steps
 * of every recycle. */
static bool
only_when_named(const char *event)
{
  return strcmp(event, "recycle.step") == 0;
}

bool
rp_notify_matches(char *const *events, const char *event)
{
  if (!event)
    return false;
  if (!events)
    return strncmp(event, "recycle.", 8) == 0 && !only_when_named(event);
  for (char *const *e = events; *e; e++) {
    size_t len = strlen(*e);
    if (strcmp(*e, event) == 0)
      return true;
    if (only_when_named(event))
      continue;
    if (strcmp(*e, "*") == 0)
      return true;
    /* "recycle.*": the prefix with its dot. */
    if (len >= 2 && strcmp(*e + len - 2, ".*") == 0 &&
        strncmp(event, *e, len - 1) == 0)
      return true;
  }
  return false;
}

json_t *
rp_notify_body(const char *event, json_t *fields, int64_t now_ms)
{
  char ts[40];
  json_t *o = json_pack("{s:s, s:s}", "event", event ? event : "", "ts",
                        rp_format_time_ms(now_ms, ts, sizeof(ts)));
  const char *k;
  json_t *v;
  json_object_foreach(fields, k, v)
  {
    if (strcmp(k, "event") != 0 && strcmp(k, "ts") != 0)
      json_object_set(o, k, v);
  }
  return o;
}

struct rp_notifier {
  struct rp_notify_hub hub; /* what the sinks share: first member */
  bool dry_run;
  struct rp_notify_counts **counts; /* owned array of owned counts: sinks
                                       point at them, so they never move */
  size_t n_counts;
  void (*tap)(void *arg, const char *event, json_t *body);
  void *tap_arg;
  struct rp_notify_notices *notices; /* owned */
  uv_timer_t flush_timer;
  bool finalized;
};

/* --- counts ------------------------------------------------------------- */

static struct rp_notify_counts *
counts_for(struct rp_notifier *n, const char *label)
{
  for (size_t i = 0; i < n->n_counts; i++)
    if (strcmp(n->counts[i]->label, label) == 0)
      return n->counts[i];
  n->counts = rp_xrealloc(n->counts, (n->n_counts + 1) * sizeof(*n->counts));
  struct rp_notify_counts *k = rp_xcalloc(1, sizeof(*k));
  k->label = rp_xstrdup(label);
  n->counts[n->n_counts++] = k;
  return k;
}

json_t *
rp_notify_stats(const struct rp_notifier *n)
{
  json_t *a = json_array();
  for (size_t i = 0; n && i < n->n_counts; i++) {
    const struct rp_notify_counts *k = n->counts[i];
    json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I, s:I}", "sink",
                                       k->label, "sent", (json_int_t)k->sent,
                                       "failed", (json_int_t)k->failed,
                                       "dropped", (json_int_t)k->dropped,
                                       "retried", (json_int_t)k->retried));
  }
  return a;
}

/* --- events --------------------------------------------------------------- */

void
rp_notify_event(struct rp_notifier *n, const char *event, json_t *fields)
{
  if (!n || n->hub.closing || !event)
    return;
  cleanup_json json_t *body = rp_notify_body(event, fields, rp_wall_ms());
  if (n->tap)
    n->tap(n->tap_arg, event, body);
  cleanup_free char *text = NULL;
  cleanup_free char *what = NULL;
  for (struct rp_notify_sink *s = n->hub.sinks; s; s = s->next) {
    if (!rp_notify_matches(s->cfg.events, event))
      continue;
    if (!text) {
      text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
      if (!text)
        return; /* only on exhaustion */
      const char *name = json_string_value(json_object_get(fields, "name"));
      what = name ? rp_xasprintf("%s of %s", event, name) : rp_xstrdup(event);
    }
    rp_notify_sink_enqueue(s, event, text, what);
  }
}

void
rp_notify_set_tap(struct rp_notifier *n,
                  void (*cb)(void *arg, const char *event, json_t *body),
                  void *arg)
{
  n->tap = cb;
  n->tap_arg = arg;
}

/* --- configuration ------------------------------------------------------ */

static struct rp_notify_sink *
sink_for(struct rp_notifier *n, const struct rp_notify *cfg, size_t idx)
{
  char label[48];
  snprintf(label, sizeof(label), "%s[%zu]", rp_notify_transport_of(cfg)->type,
           idx);
  return rp_notify_sink_new(&n->hub, cfg, label, counts_for(n, label));
}

void
rp_notify_set_config(struct rp_notifier *n, const struct rp_config *c)
{
  if (!n || n->hub.closing || !c)
    return;
  /* The old sinks by place in the list: each is kept when its entry is
   * the same, retired otherwise. */
  size_t n_old = 0;
  for (struct rp_notify_sink *s = n->hub.sinks; s; s = s->next)
    n_old++;
  cleanup_free struct rp_notify_sink **olds =
      rp_xcalloc(n_old + 1, sizeof(*olds));
  for (size_t i = 0; n->hub.sinks; i++) {
    olds[i] = n->hub.sinks;
    n->hub.sinks = olds[i]->next;
    olds[i]->next = NULL;
  }
  struct rp_notify_sink **tail = &n->hub.sinks;
  for (size_t i = 0; i < c->n_notify; i++) {
    struct rp_notify_sink *s;
    if (i < n_old && rp_notify_sink_same(olds[i], &c->notify[i]))
      s = RP_STEAL(olds[i]);
    else
      s = sink_for(n, &c->notify[i], i);
    *tail = s;
    tail = &s->next;
  }
  for (size_t i = 0; i < n_old; i++)
    if (olds[i])
      rp_notify_sink_retire(olds[i]);
}

void
rp_notify_set_limits(struct rp_notifier *n, const struct rp_notify_limits *l)
{
  if (!n || !l)
    return;
  if (l->queue_max)
    n->hub.limits.queue_max = l->queue_max;
  if (l->backoff_ms > 0)
    n->hub.limits.backoff_ms = l->backoff_ms;
  if (l->flush_ms > 0)
    n->hub.limits.flush_ms = l->flush_ms;
}

/* --- upcoming notices (notify_notices.c) ---------------------------------- */

static void
send_notice_cb(void *arg, json_t *fields)
{
  rp_notify_event(arg, "recycle.upcoming", fields);
}

void
rp_notify_upcoming_set(struct rp_notifier *n,
                       const struct rp_notify_upcoming *u)
{
  if (n && !n->hub.closing)
    rp_notify_notices_set(n->notices, u);
}

void
rp_notify_upcoming_remove(struct rp_notifier *n, const char *provider,
                          const char *id)
{
  if (n)
    rp_notify_notices_remove(n->notices, provider, id);
}

int64_t
rp_notify_upcoming_next_ms(const struct rp_notifier *n)
{
  return n ? rp_notify_notices_next_ms(n->notices) : INT64_MAX;
}

size_t
rp_notify_upcoming_count(const struct rp_notifier *n)
{
  return n ? rp_notify_notices_count(n->notices) : 0;
}

void
rp_notify_tick(struct rp_notifier *n, int64_t now_ms)
{
  if (n && !n->hub.closing)
    rp_notify_notices_tick(n->notices, now_ms);
}

/* --- life --------------------------------------------------------------- */

static void settled_cb(struct rp_notify_hub *h);
static void flush_closed_cb(uv_handle_t *handle);

struct rp_notifier *
rp_notify_new(uv_loop_t *loop, const struct rp_config *c, bool dry_run)
{
  struct rp_notifier *n = rp_xcalloc(1, sizeof(*n));
  n->hub.loop = loop;
  n->hub.limits = (struct rp_notify_limits){.queue_max = DEFAULT_QUEUE_MAX,
                                            .backoff_ms = DEFAULT_BACKOFF_MS,
                                            .flush_ms = DEFAULT_FLUSH_MS};
  n->hub.settled_cb = settled_cb;
  n->dry_run = dry_run;
  n->notices = rp_notify_notices_new(loop, dry_run, send_notice_cb, n);
  uv_timer_init(loop, &n->flush_timer);
  n->flush_timer.data = n;
  n->hub.open_handles = 1;
  if (c)
    rp_notify_set_config(n, c);
  return n;
}

static bool
notifier_idle(const struct rp_notifier *n)
{
  if (n->hub.retired)
    return false;
  for (const struct rp_notify_sink *s = n->hub.sinks; s; s = s->next)
    if (!rp_notify_sink_idle(s))
      return false;
  return true;
}

static void
notifier_free(struct rp_notifier *n)
{
  rp_notify_notices_free(n->notices);
  for (size_t i = 0; i < n->n_counts; i++) {
    free(n->counts[i]->label);
    free(n->counts[i]);
  }
  free(n->counts);
  free(n);
}

/* While closing: once nothing is left to deliver, every handle closes, and
 * n goes with the last of them. */
static void
settled_cb(struct rp_notify_hub *h)
{
  struct rp_notifier *n = (struct rp_notifier *)h;
  if (!h->closing)
    return;
  if (!n->finalized) {
    if (!notifier_idle(n))
      return;
    n->finalized = true;
    uv_timer_stop(&n->flush_timer);
    uv_close((uv_handle_t *)&n->flush_timer, flush_closed_cb);
    while (h->sinks)
      rp_notify_sink_close(h->sinks); /* unlinks it */
    rp_http_close(h->http);
    h->http = NULL;
    return;
  }
  if (h->open_handles == 0)
    notifier_free(n);
}

static void
flush_closed_cb(uv_handle_t *handle)
{
  struct rp_notifier *n = handle->data;
  n->hub.open_handles--;
  settled_cb(&n->hub);
}

static void
flush_expired_cb(uv_timer_t *t)
{
  struct rp_notifier *n = t->data;
  n->hub.flush_expired = true;
  struct rp_notify_sink *lists[2] = {n->hub.sinks, n->hub.retired};
  for (size_t l = 0; l < 2; l++) {
    struct rp_notify_sink *s = lists[l];
    while (s) {
      struct rp_notify_sink *next = s->next;
      rp_notify_sink_stop(s);
      s = next;
    }
  }
  settled_cb(&n->hub);
}

void
rp_notify_close(struct rp_notifier *n)
{
  if (!n || n->hub.closing)
    return;
  n->hub.closing = true;
  /* No notice is sent from now on. */
  rp_notify_notices_stop(n->notices);
  /* A sink waiting to retry tries now, once: the stop will not wait for
   * its backoff. */
  for (struct rp_notify_sink *s = n->hub.sinks; s; s = s->next)
    rp_notify_sink_hurry(s);
  if (!notifier_idle(n))
    uv_timer_start(&n->flush_timer, flush_expired_cb,
                   (uint64_t)n->hub.limits.flush_ms, 0);
  settled_cb(&n->hub);
}
