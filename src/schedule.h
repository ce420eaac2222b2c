/* The schedule: one uv timer for the earliest deadline of all tracked
 * workloads (a min-heap), not one timer per workload.  Deadlines are wall
 * time; the timer runs on the monotonic clock and is re-armed at least every
 * RP_SCHEDULE_MAX_SLEEP_MS, so a wall-clock jump is noticed within that. */
#ifndef RP_SCHEDULE_H
#define RP_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tracker.h"

#define RP_SCHEDULE_MAX_SLEEP_MS 30000

struct rp_schedule;

/* due_cb runs on the loop for each entry whose due_ms has come, after the
 * entry has left the schedule.  now_ms is the wall time of the check. */
typedef void (*rp_schedule_due_cb)(void *arg, struct rp_entry *e,
                                   int64_t now_ms);

struct rp_schedule *rp_schedule_new(uv_loop_t *loop, rp_schedule_due_cb cb,
                                    void *arg);
/* Puts e in the schedule at e->due_ms, or moves it there if it already is. */
void rp_schedule_set(struct rp_schedule *s, struct rp_entry *e);
/* Takes e out of the schedule (nothing when it is not in it). */
void rp_schedule_remove(struct rp_schedule *s, struct rp_entry *e);
size_t rp_schedule_count(const struct rp_schedule *s);
/* The earliest due time, or INT64_MAX when empty. */
int64_t rp_schedule_next_ms(const struct rp_schedule *s);
/* Checks now for due entries (e.g. after a resync or a clock jump). */
void rp_schedule_kick(struct rp_schedule *s);
/* Stops the timer; the schedule is freed in the timer's close callback.
 * Accepts NULL. */
void rp_schedule_close(struct rp_schedule *s);

#endif
