/* The watch loop every provider's tracking runs, written once: connect,
 * start the event stream, list everything, then follow the stream; when
 * anything fails, report the provider down with the reason and connect
 * again after a delay that doubles from 0.5 s to 30 s (and starts over
 * after a good list); a resync asked for during a list runs once after it;
 * an event that comes in during a list (whose answer may be older or
 * newer than the event) is handed back to the provider after the list; a
 * stop cancels the stream and closes the timer, and says when nothing is in
 * flight any more.
 *
 * It names no engine.  The provider gives it operations (how to connect,
 * how to start the stream, how to list) and reports back what they found
 * through the rp_watch_* calls below; what an event means and what a list
 * holds stay in the provider.  Everything runs on the loop. */
#ifndef RP_WATCH_H
#define RP_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "http_client.h"
#include "provider.h"

/* The first delay before a reconnect, and the longest. */
#define RP_WATCH_BACKOFF_MIN_MS 500
#define RP_WATCH_BACKOFF_MAX_MS 30000

struct rp_watch;

/* What the provider does for the loop.  ctx is the provider's tracking
 * state, given to rp_watch_new. */
struct rp_watch_ops {
  /* Asks the engine what it is (a ping, a version negotiation, whatever
   * the provider must learn before listing), and ends, on the loop, with
   * rp_watch_connected.  Returns -1 with err (rp_watch_connected is then
   * never called) when it cannot start. */
  int (*connect)(void *ctx, struct rp_error **err);
  /* Starts the event stream; *xfer is the transfer, which the loop
   * cancels on a reconnect and on stop.  Its end is reported with
   * rp_watch_stream_ended.  Returns -1 with err when it cannot start. */
  int (*stream)(void *ctx, struct rp_http_xfer **xfer, struct rp_error **err);
  /* Starts a full list, which ends (perhaps before this returns) with
   * rp_watch_listed or rp_watch_list_failed. */
  void (*list)(void *ctx);
  /* Optional: after a good list has been reported, once for each workload
   * an event touched during it (rp_watch_touch): the provider looks at it
   * again.  what is the provider's own word given with the touch. */
  void (*recheck)(void *ctx, const char *id, const char *what);
  /* Optional: runs after each list has ended (ok: listed, and its rechecks
   * started; false: failed or abandoned for a stop), before a resync asked
   * for during it starts. */
  void (*after_list)(void *ctx, bool ok);
  /* During a stop, when the loop may have become idle (a call ended, the
   * timer closed): the provider checks rp_watch_idle and its own work. */
  void (*check_stopped)(void *ctx);
};

/* A loop for provider p (borrowed: its name, loop and hooks); ops static,
 * ctx borrowed.  Nothing starts until rp_watch_start. */
struct rp_watch *rp_watch_new(struct rp_provider *p,
                              const struct rp_watch_ops *ops, void *ctx);
/* Connects, streams, lists; then reconnects by itself. */
void rp_watch_start(struct rp_watch *w);
/* A full re-list now (the core's periodic resync): nothing while not up (a
 * reconnect lists anyway), once after the list in flight if there is one. */
void rp_watch_resync(struct rp_watch *w);
/* Stops: cancels the stream, stops reconnecting.  Calls still in flight
 * end as they do; check_stopped runs as they and the timer go. */
void rp_watch_stop(struct rp_watch *w);
/* After rp_watch_stop: nothing of the loop's is in flight.  NULL: true. */
bool rp_watch_idle(const struct rp_watch *w);
/* Frees w once idle (or never started).  Accepts NULL. */
void rp_watch_free(struct rp_watch *w);

/* Connected and listed, and not stopping. */
bool rp_watch_up(const struct rp_watch *w);
/* A list is in flight. */
bool rp_watch_listing(const struct rp_watch *w);
/* The delay of the reconnect now pending, in ms; 0 when none is. */
int64_t rp_watch_retry_ms(const struct rp_watch *w);
bool rp_watch_stopping(const struct rp_watch *w);

/* --- what the provider reports ------------------------------------------ */

/* The end of ops->connect: why is NULL when the engine answered and is one
 * the provider can watch, else the reason it is not (reported as the
 * provider's state, then a reconnect). */
void rp_watch_connected(struct rp_watch *w, const char *why);
/* The event stream ended (why NULL: the engine ended it cleanly).  Its own
 * cancels (reconnect, stop) are known and ignored. */
void rp_watch_stream_ended(struct rp_watch *w, const char *why);
/* A list ended well: items go to the core as the complete list (hooks.listed:
 * it takes those it keeps, leaving NULL; the caller frees what is left), the
 * provider is up.  Not to be called while stopping. */
void rp_watch_listed(struct rp_watch *w, struct rp_workload **items, size_t n);
/* A list failed (or was abandoned for a stop): during a connect, a
 * reconnect; during a resync, a warning, and what was known stays. */
void rp_watch_list_failed(struct rp_watch *w, const char *why);

/* An event about workload id came in.  During a list, the loop keeps it
 * (with what, the provider's word about it, copied) for ops->recheck after
 * the list, once per id (the last what wins), and returns true; otherwise
 * it keeps nothing and returns false. */
bool rp_watch_touch(struct rp_watch *w, const char *id, const char *what);

/* Every call the provider makes for tracking is counted, so that a stop
 * knows when the last one has ended. */
void rp_watch_call_started(struct rp_watch *w);
void rp_watch_call_ended(struct rp_watch *w);

#endif
