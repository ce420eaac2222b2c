/* The notifier's sinks (notify_sink.c) and the transports that make one
 * delivery attempt each (notify_webhook.c, notify_command.c).  Shared by
 * the notifier's files; not for other modules, which use notify.h.
 *
 * A sink is one entry of the configuration's `notify:` list at work: a
 * bounded queue of the events its filter took (the notifier fans them out,
 * notify.c) and their delivery, one at a time and in order, each attempt
 * made by the sink's transport and tried again after a backoff that
 * doubles, up to the entry's retries. */
#ifndef RP_NOTIFY_SINK_H
#define RP_NOTIFY_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "notify.h"

struct rp_http;
struct rp_notify_sink;

/* What happened to the events of one sink label ("webhook[0]"), kept by the
 * notifier for its whole life so that counters never go back after a
 * reload (rp_notify_stats). */
struct rp_notify_counts {
  char *label; /* owned */
  uint64_t sent, failed, dropped, retried;
};

/* One event waiting in a sink's queue, or being delivered. */
struct rp_notify_item {
  struct rp_notify_item *next;
  char *event; /* owned */
  char *body;  /* owned: the JSON text */
  size_t len;
  char *what; /* owned: "recycle.done of web-1", for logs */
};

/* What the notifier shares with its sinks; owned by the notifier. */
struct rp_notify_hub {
  uv_loop_t *loop; /* borrowed */
  struct rp_notify_limits limits;
  struct rp_http *http; /* owned: made at the first webhook, closed by the
                           notifier */
  bool http_failed;     /* rp_http_new failed: webhooks cannot work */
  struct rp_notify_sink *sinks;   /* owned, in the config's order */
  struct rp_notify_sink *retired; /* owned: each closes once its attempt in
                                     flight ends */
  bool closing;                   /* rp_notify_close was called */
  bool flush_expired; /* the flush bound ran out: nothing new starts */
  int open_handles;   /* the notifier's and the sinks'; it is freed at 0 */
  /* Runs whenever a sink ends an attempt or closes: while closing, the
   * notifier sees whether it is done. */
  void (*settled_cb)(struct rp_notify_hub *h);
};

/* One way of delivering an event, as a table of operations. */
struct rp_notify_transport {
  const char *type; /* "webhook", "command": the sink's label */
  /* How logs may show the entry's target (owned): never a secret. */
  char *(*describe)(const struct rp_notify *cfg);
  /* Starts one attempt to deliver s->current.  Its end, success or not,
   * is told with rp_notify_sink_attempt_done: later, or before send returns
   * when the attempt cannot start. */
  void (*send)(struct rp_notify_sink *s);
  /* Ends the attempt in flight (s->inflight) as soon as it can: the agent
   * stops and can wait no longer.  Its end is still told as above. */
  void (*cancel)(struct rp_notify_sink *s);
};

extern const struct rp_notify_transport rp_notify_webhook;
extern const struct rp_notify_transport rp_notify_command;

struct rp_notify_sink {
  struct rp_notify_hub *hub; /* borrowed */
  const struct rp_notify_transport *transport;
  struct rp_notify_sink *next; /* in hub->sinks or hub->retired */
  struct rp_notify cfg;        /* owned copies of the entry's strings */
  char *display;               /* owned: "notify webhook[0] (https://…)" */
  struct rp_notify_counts *counts;    /* borrowed from the notifier */
  uv_timer_t timer;                   /* the backoff, and a 0 ms step to the
                                         next event */
  struct rp_notify_item *head, *tail; /* owned queue, oldest first */
  size_t queued;
  struct rp_notify_item *current; /* owned: the event being delivered */
  int attempt;                    /* 0 for the first */
  bool busy;                      /* an attempt is in flight */
  bool retired;                   /* a reload removed it: closes once idle */
  bool closing;                   /* its timer is closing */
  void *inflight; /* the transport's attempt in flight: a webhook's
                     rp_http_xfer, a command's rp_child; NULL when none */
  uint64_t drops_unwarned;
  int64_t drop_warned_ms;
};

/* The transport of a notify: entry. */
const struct rp_notify_transport *
rp_notify_transport_of(const struct rp_notify *cfg);

/* A sink for cfg (copied), counted in counts, in no list yet. */
struct rp_notify_sink *rp_notify_sink_new(struct rp_notify_hub *h,
                                          const struct rp_notify *cfg,
                                          const char *label,
                                          struct rp_notify_counts *counts);
/* Whether s was made from an entry equal to cfg (a reload keeps it). */
bool rp_notify_sink_same(const struct rp_notify_sink *s,
                         const struct rp_notify *cfg);
/* Queues one event (strings copied).  When the queue is full the oldest
 * waiting event is dropped, counted and warned of (at most once a minute). */
void rp_notify_sink_enqueue(struct rp_notify_sink *s, const char *event,
                            const char *body, const char *what);
/* Whether s has nothing to deliver and no attempt in flight. */
bool rp_notify_sink_idle(const struct rp_notify_sink *s);
/* A reload removed s's entry (s is in no list): it goes to hub->retired,
 * its queue is dropped (counted), and it closes once its attempt in flight
 * (if any) ends. */
void rp_notify_sink_retire(struct rp_notify_sink *s);
/* The notifier is closing: an event waiting for its retry is tried now,
 * once, rather than after its backoff. */
void rp_notify_sink_hurry(struct rp_notify_sink *s);
/* The flush bound ran out: drops everything waiting and cancels the
 * attempt in flight. */
void rp_notify_sink_stop(struct rp_notify_sink *s);
/* Unlinks and closes an idle sink; it is freed in its timer's close
 * callback. */
void rp_notify_sink_close(struct rp_notify_sink *s);

/* For transports: the end of one attempt.  why (may be NULL when ok) says
 * what went wrong; retry says whether trying again may help. */
void rp_notify_sink_attempt_done(struct rp_notify_sink *s, bool ok, bool retry,
                                 const char *why);

#endif
