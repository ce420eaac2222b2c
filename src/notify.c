/* Notifications (notify.h): sinks with a bounded queue each, delivered one
 * event at a time on the loop, and the advance notices of recycles.
 *
 * A sink's life.  Its one timer does all its waiting: the backoff before a
 * retry, and a 0 ms step to the next event, so that a result never starts
 * the next attempt from inside the previous one's callback (no recursion
 * however many events fail at once).  A sink is freed in its timer's close
 * callback, once no attempt of it is in flight: a sink that a reload
 * retires while it delivers is closed when that attempt ends.
 *
 * The notifier is freed once its own timers and every sink are closed;
 * rp_http closes and frees itself. */
#include "notify.h"

#include <string.h>

#include "child.h"
#include "http_client.h"
#include "log.h"
#include "schedule.h"
#include "util.h"

#define DEFAULT_QUEUE_MAX 1000
#define DEFAULT_BACKOFF_MS 1000
#define DEFAULT_FLUSH_MS 5000
#define BACKOFF_CAP_MS 60000
/* Dropped events are warned of at most once in this long per sink. */
#define DROP_WARN_EVERY_MS 60000

/* --- filter and body ---------------------------------------------------- */

bool
rp_notify_matches(char *const *events, const char *event)
{
  if (!event)
    return false;
  if (!events)
    return strncmp(event, "recycle.", 8) == 0;
  for (char *const *e = events; *e; e++) {
    size_t len = strlen(*e);
    if (strcmp(*e, "*") == 0 || strcmp(*e, event) == 0)
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

/* --- counts ------------------------------------------------------------- */

/* Per sink label ("webhook[0]"); kept for the notifier's life so that
 * counters never go back after a reload. */
struct counts {
  char *label; /* owned */
  uint64_t sent, failed, dropped, retried;
};

/* --- sinks -------------------------------------------------------------- */

struct item {
  struct item *next;
  char *event; /* owned */
  char *body;  /* owned: the JSON text */
  size_t len;
  char *what; /* owned: "recycle.done of web-1", for logs */
};

struct sink {
  struct rp_notifier *n; /* borrowed */
  struct sink *next;     /* in n->sinks or n->retired */
  struct rp_notify cfg;  /* owned copies of the entry's strings */
  char *display;         /* owned: "webhook[0] (https://host/…)" */
  struct counts *counts; /* borrowed from n->counts */
  uv_timer_t timer;
  struct item *head, *tail; /* owned queue, oldest first */
  size_t queued;
  struct item *current;      /* owned: the event being delivered */
  int attempt;               /* 0 for the first */
  bool busy;                 /* an attempt is in flight */
  bool retired;              /* a reload removed it: closes once idle */
  bool closing;              /* its timer is closing */
  struct rp_http_xfer *xfer; /* the webhook's transfer in flight */
  struct rp_child *child;    /* the command in flight (frees itself) */
  uint64_t drops_unwarned;
  int64_t drop_warned_ms;
};

struct notice {
  char *provider; /* owned */
  char *id;       /* owned */
  char *name;     /* owned */
  char *policy;   /* owned */
  enum rp_kind kind;
  int64_t started_ms, due_ms, max_age_ms, before_ms;
  int64_t notice_ms;
  bool sent;
  int64_t sent_due_ms; /* the due time its notice announced */
  size_t place;        /* in n->upcoming, or RP_SCHEDULE_NONE once sent */
  struct notice *hash_next;
};

struct rp_notifier {
  uv_loop_t *loop;      /* borrowed */
  struct rp_http *http; /* owned, made at the first webhook */
  bool http_failed;     /* rp_http_new failed: webhooks cannot work */
  struct rp_notify_limits limits;
  bool dry_run;
  struct sink *sinks;     /* owned, in the config's order */
  struct sink *retired;   /* owned, each closes once its attempt ends */
  struct counts **counts; /* owned array of owned counts: sinks point at
                             them, so they never move */
  size_t n_counts;
  void (*tap)(void *arg, const char *event, json_t *body);
  void *tap_arg;

  struct notice **buckets; /* owned hash of every remembered workload */
  size_t n_buckets, n_notices;
  /* owned: the notices not sent yet (borrowed from the hash), at their
   * time; NULL once closing */
  struct rp_schedule *upcoming;

  uv_timer_t flush_timer;
  bool closing;       /* rp_notify_close was called */
  bool flush_expired; /* the flush bound ran out: nothing new starts */
  bool finalized;
  int open_handles; /* the flush timer and the sinks' timers; n is freed at
                       0 */
};

static void sink_step_cb(uv_timer_t *t);
static void check_done(struct rp_notifier *n);

static void
item_free(struct item *it)
{
  if (!it)
    return;
  free(it->event);
  free(it->body);
  free(it->what);
  free(it);
}

static struct counts *
counts_for(struct rp_notifier *n, const char *label)
{
  for (size_t i = 0; i < n->n_counts; i++)
    if (strcmp(n->counts[i]->label, label) == 0)
      return n->counts[i];
  n->counts = rp_xrealloc(n->counts, (n->n_counts + 1) * sizeof(*n->counts));
  struct counts *k = rp_xcalloc(1, sizeof(*k));
  k->label = rp_xstrdup(label);
  n->counts[n->n_counts++] = k;
  return k;
}

static char **
strv_dup(char *const *v)
{
  if (!v)
    return NULL;
  size_t k = 0;
  while (v[k])
    k++;
  char **out = rp_xcalloc(k + 1, sizeof(*out));
  for (size_t i = 0; i < k; i++)
    out[i] = rp_xstrdup(v[i]);
  return out;
}

static void
strv_free(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static bool
strv_equal(char *const *a, char *const *b)
{
  if (!a || !b)
    return a == b;
  size_t i = 0;
  for (; a[i] && b[i]; i++)
    if (strcmp(a[i], b[i]) != 0)
      return false;
  return a[i] == b[i];
}

static bool
same_entry(const struct rp_notify *a, const struct rp_notify *b)
{
  return (a->webhook == NULL) == (b->webhook == NULL) &&
         (!a->webhook || strcmp(a->webhook, b->webhook) == 0) &&
         strv_equal(a->command, b->command) &&
         strv_equal(a->events, b->events) && a->timeout_ms == b->timeout_ms &&
         a->retries == b->retries;
}

/* The URL as logs may show it: scheme and host only, since the path and
 * query of a webhook often carry its secret (and the user part a
 * password). */
static char *
redact_url(const char *url)
{
  const char *p = strstr(url, "://");
  if (!p)
    return rp_xstrdup("?");
  const char *host = p + 3;
  size_t alen = strcspn(host, "/?#");
  const char *at = memrchr(host, '@', alen);
  if (at) {
    alen -= (size_t)(at + 1 - host);
    host = at + 1;
  }
  bool more = host[alen] != '\0' && strcmp(host + alen, "/") != 0;
  return rp_xasprintf("%.*s%.*s%s", (int)(p + 3 - url), url, (int)alen, host,
                      more ? "/…" : "");
}

static struct sink *
sink_new(struct rp_notifier *n, const struct rp_notify *cfg, size_t idx)
{
  struct sink *s = rp_xcalloc(1, sizeof(*s));
  s->n = n;
  s->cfg.webhook = cfg->webhook ? rp_xstrdup(cfg->webhook) : NULL;
  s->cfg.command = strv_dup(cfg->command);
  s->cfg.events = strv_dup(cfg->events);
  s->cfg.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
  s->cfg.retries = cfg->retries >= 0 ? cfg->retries : 0;
  char label[48];
  snprintf(label, sizeof(label), "%s[%zu]",
           cfg->webhook ? "webhook" : "command", idx);
  if (cfg->webhook) {
    cleanup_free char *shown = redact_url(cfg->webhook);
    s->display = rp_xasprintf("notify %s (%s)", label, shown);
  } else {
    s->display =
        rp_xasprintf("notify %s (%s)", label,
                     cfg->command && cfg->command[0] ? cfg->command[0] : "?");
  }
  s->counts = counts_for(n, label);
  uv_timer_init(n->loop, &s->timer);
  s->timer.data = s;
  n->open_handles++;
  return s;
}

static void
sink_closed_cb(uv_handle_t *h)
{
  struct sink *s = h->data;
  struct rp_notifier *n = s->n;
  item_free(s->current);
  while (s->head) {
    struct item *it = s->head;
    s->head = it->next;
    item_free(it);
  }
  free(s->cfg.webhook);
  strv_free(s->cfg.command);
  strv_free(s->cfg.events);
  free(s->display);
  free(s);
  n->open_handles--;
  check_done(n);
}

static void
list_unlink(struct sink **head, struct sink *s)
{
  for (struct sink **p = head; *p; p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      s->next = NULL;
      return;
    }
  }
}

/* Closes an idle sink (no attempt in flight). */
static void
sink_close(struct sink *s)
{
  if (s->closing)
    return;
  s->closing = true;
  list_unlink(s->retired ? &s->n->retired : &s->n->sinks, s);
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, sink_closed_cb);
}

/* Drops everything waiting (not the attempt in flight), counted. */
static void
sink_drop_queue(struct sink *s, const char *why)
{
  uint64_t dropped = 0;
  while (s->head) {
    struct item *it = s->head;
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
kick(struct sink *s)
{
  if (s->busy || s->closing || s->n->flush_expired ||
      uv_is_active((uv_handle_t *)&s->timer))
    return;
  if (!s->current && !s->head)
    return;
  uv_timer_start(&s->timer, sink_step_cb, 0, 0);
}

static bool
notifier_idle(const struct rp_notifier *n)
{
  if (n->retired)
    return false;
  for (const struct sink *s = n->sinks; s; s = s->next)
    if (s->busy || s->current || s->head)
      return false;
  return true;
}

/* The end of one attempt.  why (may be NULL when ok) says what went wrong;
 * retry says whether trying again may help. */
static void
attempt_done(struct sink *s, bool ok, bool retry, const char *why)
{
  struct rp_notifier *n = s->n;
  struct item *it = s->current;
  s->busy = false;
  if (ok) {
    s->counts->sent++;
    rp_debug("%s: %s delivered", s->display, it->what);
  } else if (retry && s->attempt < s->cfg.retries && !n->closing &&
             !s->retired) {
    s->counts->retried++;
    s->attempt++;
    int64_t delay = n->limits.backoff_ms;
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
    uv_timer_start(&s->timer, sink_step_cb, (uint64_t)delay, 0);
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
    sink_close(s);
  } else {
    kick(s);
  }
  if (n->closing)
    check_done(n);
}

/* --- webhook ------------------------------------------------------------ */

static int
discard_cb(void *arg, const char *data, size_t len)
{
  (void)arg, (void)data, (void)len;
  return 0;
}

static void
webhook_done_cb(void *arg, const struct rp_http_response *resp,
                const struct rp_error *err)
{
  struct sink *s = arg;
  s->xfer = NULL;
  if (!resp) {
    const char *m = err && err->message ? err->message : "transport failure";
    /* The client names the request as "POST <path>": the path is "" here
     * (the URL, and its secret, are the endpoint's). */
    if (strncmp(m, "POST : ", 7) == 0)
      m += 7;
    attempt_done(s, false, true, m);
    return;
  }
  if (resp->status >= 200 && resp->status < 300) {
    attempt_done(s, true, false, NULL);
    return;
  }
  char why[64];
  snprintf(why, sizeof(why), "HTTP %ld", resp->status);
  /* A refusal (400, 401, 404...) will not change by asking again; a busy
   * or failing receiver (408, 429, 5xx) may recover. */
  bool retry =
      resp->status == 408 || resp->status == 429 || resp->status >= 500;
  attempt_done(s, false, retry, why);
}

static void
webhook_send(struct sink *s)
{
  struct rp_notifier *n = s->n;
  cleanup_error struct rp_error *err = NULL;
  if (!n->http && !n->http_failed &&
      rp_http_new(n->loop, &n->http, &err) != 0) {
    rp_err("notify: cannot start the HTTP client: %s", err->message);
    n->http_failed = true;
  }
  if (!n->http) {
    attempt_done(s, false, false, "no HTTP client");
    return;
  }
  cleanup_free char *hdr_event =
      rp_xasprintf("X-Reaper-Event: %s", s->current->event);
  const char *headers[] = {"Content-Type: application/json", hdr_event, NULL};
  struct rp_http_endpoint ep = {.base_url = s->cfg.webhook,
                                .verify_peer = true};
  struct rp_http_request req = {
      .method = "POST",
      .path = "",
      .headers = headers,
      .body = s->current->body,
      .body_len = s->current->len,
      .timeout_ms = s->cfg.timeout_ms,
      .on_data = discard_cb,
  };
  if (rp_http_send(n->http, &ep, &req, webhook_done_cb, s, &s->xfer) != 0)
    attempt_done(s, false, false, "the request could not be made");
}

/* --- command ------------------------------------------------------------ */

/* The command's result: the attempt ends here.  Its output, capped, goes
 * with a failure (and to debug logs otherwise), on one line. */
static void
command_done_cb(void *arg, const struct rp_child_result *r)
{
  struct sink *s = arg;
  s->child = NULL;
  char why[RP_NOTIFY_OUTPUT_MAX + 128];
  bool ok = !r->spawn_error && !r->killed && !r->timed_out && !r->term_signal &&
            r->exit_code == 0;
  if (r->killed)
    snprintf(why, sizeof(why), "killed: reaper is stopping");
  else if (!ok)
    rp_child_describe(r, s->cfg.timeout_ms, why, sizeof(why));
  else
    why[0] = '\0';
  if (r->output_len) {
    size_t off = strlen(why);
    snprintf(why + off, sizeof(why) - off, "%soutput: ", ok ? "" : "; ");
    off = strlen(why);
    size_t i = 0;
    for (; i < r->output_len && off + 1 < sizeof(why); i++)
      why[off++] = r->output[i] == '\n'   ? ' '
                   : r->output[i] == '\t' ? '?'
                                          : r->output[i];
    why[off] = '\0';
    if (r->truncated && off + strlen("…") < sizeof(why))
      strcat(why, "…");
  }
  if (ok && r->output_len)
    rp_debug("%s: %s", s->display, why);
  /* A program that cannot start (ENOENT) will not start on a retry;
   * anything else may pass. */
  attempt_done(s, ok, !r->spawn_error, ok ? NULL : why);
}

/* The event's JSON on its stdin, REAPER_EVENT (and a default PATH) its
 * whole environment, run as src/child.h runs every program. */
static void
command_run(struct sink *s)
{
  struct item *it = s->current;
  cleanup_free char *event = rp_xasprintf("REAPER_EVENT=%s", it->event);
  char *env[] = {event, NULL};
  struct rp_child_options o = {
      .argv = s->cfg.command,
      .env = env,
      .input = it->body,
      .input_len = it->len,
      .timeout_ms = s->cfg.timeout_ms,
      .max_output = RP_NOTIFY_OUTPUT_MAX,
  };
  cleanup_error struct rp_error *err = NULL;
  if (rp_child_run(s->n->loop, &o, command_done_cb, s, &s->child, &err) != 0)
    attempt_done(s, false, true, err->message);
}

/* --- delivery ----------------------------------------------------------- */

static void
sink_step_cb(uv_timer_t *t)
{
  struct sink *s = t->data;
  if (s->busy || s->closing || s->n->flush_expired)
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
  if (s->cfg.webhook)
    webhook_send(s);
  else
    command_run(s);
}

static void
sink_enqueue(struct sink *s, const char *event, const char *body,
             const char *what)
{
  struct rp_notifier *n = s->n;
  if (s->queued >= n->limits.queue_max && s->head) {
    /* The oldest waiting event goes: the newest say more about now. */
    struct item *old = s->head;
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
              s->display, n->limits.queue_max, old->what,
              (unsigned long long)s->drops_unwarned);
      s->drop_warned_ms = now;
      s->drops_unwarned = 0;
    }
    item_free(old);
  }
  struct item *it = rp_xcalloc(1, sizeof(*it));
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
rp_notify_event(struct rp_notifier *n, const char *event, json_t *fields)
{
  if (!n || n->closing || !event)
    return;
  cleanup_json json_t *body = rp_notify_body(event, fields, rp_wall_ms());
  if (n->tap)
    n->tap(n->tap_arg, event, body);
  cleanup_free char *text = NULL;
  cleanup_free char *what = NULL;
  for (struct sink *s = n->sinks; s; s = s->next) {
    if (!rp_notify_matches(s->cfg.events, event))
      continue;
    if (!text) {
      text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
      if (!text)
        return; /* only on exhaustion */
      const char *name = json_string_value(json_object_get(fields, "name"));
      what = name ? rp_xasprintf("%s of %s", event, name) : rp_xstrdup(event);
    }
    sink_enqueue(s, event, text, what);
  }
}

/* --- configuration ------------------------------------------------------ */

/* s is in no list: it goes to n->retired until its attempt in flight (if
 * any) ends. */
static void
sink_retire(struct sink *s)
{
  struct rp_notifier *n = s->n;
  s->retired = true;
  s->next = n->retired;
  n->retired = s;
  sink_drop_queue(s, "its notify entry changed at a reload");
  if (!s->busy)
    sink_close(s);
}

void
rp_notify_set_config(struct rp_notifier *n, const struct rp_config *c)
{
  if (!n || n->closing || !c)
    return;
  /* The old sinks by place in the list: each is kept when its entry is
   * the same, retired otherwise. */
  size_t n_old = 0;
  for (struct sink *s = n->sinks; s; s = s->next)
    n_old++;
  cleanup_free struct sink **olds = rp_xcalloc(n_old + 1, sizeof(*olds));
  for (size_t i = 0; n->sinks; i++) {
    olds[i] = n->sinks;
    n->sinks = olds[i]->next;
    olds[i]->next = NULL;
  }
  struct sink **tail = &n->sinks;
  for (size_t i = 0; i < c->n_notify; i++) {
    struct sink *s;
    if (i < n_old && same_entry(&olds[i]->cfg, &c->notify[i]))
      s = RP_STEAL(olds[i]);
    else
      s = sink_new(n, &c->notify[i], i);
    *tail = s;
    tail = &s->next;
  }
  for (size_t i = 0; i < n_old; i++)
    if (olds[i])
      sink_retire(olds[i]);
}

void
rp_notify_set_limits(struct rp_notifier *n, const struct rp_notify_limits *l)
{
  if (!n || !l)
    return;
  if (l->queue_max)
    n->limits.queue_max = l->queue_max;
  if (l->backoff_ms > 0)
    n->limits.backoff_ms = l->backoff_ms;
  if (l->flush_ms > 0)
    n->limits.flush_ms = l->flush_ms;
}

void
rp_notify_set_tap(struct rp_notifier *n,
                  void (*cb)(void *arg, const char *event, json_t *body),
                  void *arg)
{
  n->tap = cb;
  n->tap_arg = arg;
}

json_t *
rp_notify_stats(const struct rp_notifier *n)
{
  json_t *a = json_array();
  for (size_t i = 0; n && i < n->n_counts; i++) {
    const struct counts *k = n->counts[i];
    json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I, s:I}", "sink",
                                       k->label, "sent", (json_int_t)k->sent,
                                       "failed", (json_int_t)k->failed,
                                       "dropped", (json_int_t)k->dropped,
                                       "retried", (json_int_t)k->retried));
  }
  return a;
}

/* --- upcoming notices --------------------------------------------------- */

static size_t
notice_hash(const char *provider, const char *id)
{
  /* FNV-1a over "provider\nid". */
  uint64_t h = 1469598103934665603ULL;
  for (const char *p = provider; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  h = (h ^ '\n') * 1099511628211ULL;
  for (const char *p = id; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  return (size_t)h;
}

static struct notice **
notice_slot(const struct rp_notifier *n, const char *provider, const char *id)
{
  if (!n->n_buckets)
    return NULL;
  struct notice **p =
      &n->buckets[notice_hash(provider, id) & (n->n_buckets - 1)];
  while (*p &&
         (strcmp((*p)->provider, provider) != 0 || strcmp((*p)->id, id) != 0))
    p = &(*p)->hash_next;
  return p;
}

static void
notice_grow(struct rp_notifier *n)
{
  size_t nb = n->n_buckets ? n->n_buckets * 2 : 64;
  struct notice **b = rp_xcalloc(nb, sizeof(*b));
  for (size_t i = 0; i < n->n_buckets; i++) {
    struct notice *x = n->buckets[i];
    while (x) {
      struct notice *next = x->hash_next;
      size_t k = notice_hash(x->provider, x->id) & (nb - 1);
      x->hash_next = b[k];
      b[k] = x;
      x = next;
    }
  }
  free(n->buckets);
  n->buckets = b;
  n->n_buckets = nb;
}

static void
notice_free(struct notice *x)
{
  free(x->provider);
  free(x->id);
  free(x->name);
  free(x->policy);
  free(x);
}

static void
set_str(char **dst, const char *src)
{
  if (*dst && src && strcmp(*dst, src) == 0)
    return;
  free(*dst);
  *dst = src ? rp_xstrdup(src) : NULL;
}

void
rp_notify_upcoming_set(struct rp_notifier *n,
                       const struct rp_notify_upcoming *u)
{
  if (!n || n->closing || !u || !u->provider || !u->id)
    return;
  if (u->before_ms <= 0) {
    rp_notify_upcoming_remove(n, u->provider, u->id);
    return;
  }
  struct notice **slot = notice_slot(n, u->provider, u->id);
  struct notice *x = slot ? *slot : NULL;
  if (!x) {
    if (n->n_notices >= n->n_buckets)
      notice_grow(n);
    slot = notice_slot(n, u->provider, u->id);
    x = rp_xcalloc(1, sizeof(*x));
    x->provider = rp_xstrdup(u->provider);
    x->id = rp_xstrdup(u->id);
    x->place = RP_SCHEDULE_NONE;
    x->started_ms = u->started_ms;
    *slot = x;
    n->n_notices++;
  }
  if (x->started_ms != u->started_ms)
    x->sent = false; /* a new life: a new notice */
  x->started_ms = u->started_ms;
  x->kind = u->kind;
  set_str(&x->name, u->name ? u->name : u->id);
  set_str(&x->policy, u->policy);
  x->due_ms = u->due_ms;
  x->max_age_ms = u->max_age_ms;
  x->before_ms = u->before_ms;
  if (x->sent) {
    int64_t moved = u->due_ms - x->sent_due_ms;
    if (moved >= -RP_NOTIFY_UPCOMING_SLACK_MS &&
        moved <= RP_NOTIFY_UPCOMING_SLACK_MS) {
      rp_schedule_take(n->upcoming, &x->place);
      return;
    }
    x->sent = false; /* the recycle moved: the last notice is wrong */
  }
  x->notice_ms = u->due_ms - u->before_ms;
  rp_schedule_put(n->upcoming, x, &x->place, x->notice_ms);
}

void
rp_notify_upcoming_remove(struct rp_notifier *n, const char *provider,
                          const char *id)
{
  if (!n || !provider || !id)
    return;
  struct notice **slot = notice_slot(n, provider, id);
  if (!slot || !*slot)
    return;
  struct notice *x = *slot;
  *slot = x->hash_next;
  n->n_notices--;
  if (n->upcoming)
    rp_schedule_take(n->upcoming, &x->place);
  notice_free(x);
}

int64_t
rp_notify_upcoming_next_ms(const struct rp_notifier *n)
{
  return n && n->upcoming ? rp_schedule_next_ms(n->upcoming) : INT64_MAX;
}

size_t
rp_notify_upcoming_count(const struct rp_notifier *n)
{
  return n ? n->n_notices : 0;
}

static void
send_notice(struct rp_notifier *n, const struct notice *x, int64_t now_ms)
{
  char started[40], due[40];
  rp_format_time_ms(x->started_ms, started, sizeof(started));
  rp_format_time_ms(x->due_ms, due, sizeof(due));
  cleanup_json json_t *f = json_pack(
      "{s:s, s:s, s:s, s:s, s:s?, s:s, s:s, s:I, s:I, s:I, s:I}", "provider",
      x->provider, "kind", rp_kind_name(x->kind), "id", x->id, "name", x->name,
      "policy", x->policy, "started_at", started, "due", due, "due_in_s",
      (json_int_t)((x->due_ms - now_ms + 999) / 1000), "age_s",
      (json_int_t)((now_ms - x->started_ms) / 1000), "max_age_s",
      (json_int_t)(x->max_age_ms / 1000), "notify_before_s",
      (json_int_t)(x->before_ms / 1000));
  if (n->dry_run)
    json_object_set_new(f, "dry_run", json_true());
  rp_info("notify: recycle.upcoming of %s %s (policy %s) due at %s",
          rp_kind_name(x->kind), x->name, x->policy ? x->policy : "-", due);
  rp_notify_event(n, "recycle.upcoming", f);
}

/* A notice's time has come: it has left the schedule. */
static void
notice_due_cb(void *arg, void *item, int64_t now_ms)
{
  struct notice *x = item;
  x->sent = true;
  x->sent_due_ms = x->due_ms;
  /* Too late for an advance notice: its recycle begins now. */
  if (now_ms < x->due_ms)
    send_notice(arg, x, now_ms);
}

void
rp_notify_tick(struct rp_notifier *n, int64_t now_ms)
{
  if (!n || n->closing)
    return;
  rp_schedule_run(n->upcoming, now_ms);
}

/* --- life --------------------------------------------------------------- */

struct rp_notifier *
rp_notify_new(uv_loop_t *loop, const struct rp_config *c, bool dry_run)
{
  struct rp_notifier *n = rp_xcalloc(1, sizeof(*n));
  n->loop = loop;
  n->dry_run = dry_run;
  n->limits = (struct rp_notify_limits){.queue_max = DEFAULT_QUEUE_MAX,
                                        .backoff_ms = DEFAULT_BACKOFF_MS,
                                        .flush_ms = DEFAULT_FLUSH_MS};
  n->upcoming = rp_schedule_new_items(loop, notice_due_cb, n);
  uv_timer_init(loop, &n->flush_timer);
  n->flush_timer.data = n;
  n->open_handles = 1;
  if (c)
    rp_notify_set_config(n, c);
  return n;
}

static void
notifier_handle_closed_cb(uv_handle_t *h)
{
  struct rp_notifier *n = h->data;
  n->open_handles--;
  check_done(n);
}

static void
notifier_free(struct rp_notifier *n)
{
  for (size_t i = 0; i < n->n_buckets; i++) {
    struct notice *x = n->buckets[i];
    while (x) {
      struct notice *next = x->hash_next;
      notice_free(x);
      x = next;
    }
  }
  free(n->buckets);
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
check_done(struct rp_notifier *n)
{
  if (!n->closing)
    return;
  if (!n->finalized) {
    if (!notifier_idle(n))
      return;
    n->finalized = true;
    uv_timer_stop(&n->flush_timer);
    uv_close((uv_handle_t *)&n->flush_timer, notifier_handle_closed_cb);
    while (n->sinks)
      sink_close(n->sinks); /* unlinks it */
    rp_http_close(n->http);
    n->http = NULL;
    return;
  }
  if (n->open_handles == 0)
    notifier_free(n);
}

static void
flush_expired_cb(uv_timer_t *t)
{
  struct rp_notifier *n = t->data;
  n->flush_expired = true;
  struct sink *lists[2] = {n->sinks, n->retired};
  for (size_t l = 0; l < 2; l++) {
    struct sink *s = lists[l];
    while (s) {
      struct sink *next = s->next;
      sink_drop_queue(s, "reaper is stopping");
      if (s->busy && s->xfer) {
        rp_http_cancel(s->xfer); /* its callback runs now */
      } else if (s->busy && s->child) {
        rp_child_kill(s->child); /* its callback runs once it is gone */
      }
      s = next;
    }
  }
  check_done(n);
}

void
rp_notify_close(struct rp_notifier *n)
{
  if (!n || n->closing)
    return;
  n->closing = true;
  /* No notice is sent from now on; the schedule frees itself. */
  rp_schedule_close(n->upcoming);
  n->upcoming = NULL;
  /* A sink waiting to retry tries now, once: the stop will not wait for
   * its backoff. */
  for (struct sink *s = n->sinks; s; s = s->next)
    if (s->current && !s->busy) {
      uv_timer_stop(&s->timer);
      kick(s);
    }
  if (!notifier_idle(n))
    uv_timer_start(&n->flush_timer, flush_expired_cb,
                   (uint64_t)n->limits.flush_ms, 0);
  check_done(n);
}
