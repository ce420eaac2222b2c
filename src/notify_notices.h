/* The advance notices of recycles (recycle.upcoming): which workload is
 * told of when, and what the notice says.  The notifier's part (notify.c
 * gives rp_notify_upcoming_* to the agent over it); not for other modules.
 *
 * Every workload whose policy has a notify_before is remembered by
 * (provider, id), with its due time; its notice waits in a schedule
 * (schedule.h) until due - before, then is handed to send_cb, once per life
 * of the workload (see rp_notify_upcoming_set in notify.h). */
#ifndef RP_NOTIFY_NOTICES_H
#define RP_NOTIFY_NOTICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "notify.h"

struct rp_notify_notices;

/* send_cb gets each notice's fields (borrowed for the call), to send as a
 * recycle.upcoming event.  dry_run marks them `"dry_run": true`. */
typedef void (*rp_notify_notices_send_cb)(void *arg, json_t *fields);

struct rp_notify_notices *rp_notify_notices_new(uv_loop_t *loop, bool dry_run,
                                                rp_notify_notices_send_cb cb,
                                                void *arg);
/* As rp_notify_upcoming_set, rp_notify_upcoming_remove,
 * rp_notify_upcoming_next_ms, rp_notify_upcoming_count and rp_notify_tick
 * (notify.h). */
void rp_notify_notices_set(struct rp_notify_notices *x,
                           const struct rp_notify_upcoming *u);
void rp_notify_notices_remove(struct rp_notify_notices *x, const char *provider,
                              const char *id);
int64_t rp_notify_notices_next_ms(const struct rp_notify_notices *x);
size_t rp_notify_notices_count(const struct rp_notify_notices *x);
void rp_notify_notices_tick(struct rp_notify_notices *x, int64_t now_ms);
/* Sends nothing from now on: the schedule closes (it frees itself once the
 * loop has closed its timer).  The notices stay remembered, and may still
 * be removed, until rp_notify_notices_free. */
void rp_notify_notices_stop(struct rp_notify_notices *x);
/* Frees x (stopped or not: stops it first).  Accepts NULL. */
void rp_notify_notices_free(struct rp_notify_notices *x);

#endif
