/* The schedule: one uv timer for the earliest due time of many items (a
 * min-heap), not one timer per item.  Its items are the agent's workload
 * deadlines (the tracker's entries, below) and the notifier's advance
 * notices (notify_upcoming.c): both wait here, so both wake as precisely.
 * Due times are wall time; the timer runs on the monotonic clock and is
 * re-armed at least every RP_SCHEDULE_MAX_SLEEP_MS, so a wall-clock jump is
 * noticed within that.  It wakes a little before a long sleep's end (the
 * kernel's timer slack makes it late) and sleeps the rest again, so an item
 * fires within a millisecond or two of its due time. */
#ifndef RP_SCHEDULE_H
#define RP_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tracker.h"

#define RP_SCHEDULE_MAX_SLEEP_MS 30000

/* The place of an item that is in no schedule (RP_NOT_QUEUED for the
 * tracker's entries). */
#define RP_SCHEDULE_NONE ((size_t)-1)

struct rp_schedule;

/* --- any item ------------------------------------------------------------
 *
 * An item is a pointer the schedule borrows, with a place (a size_t in the
 * item, RP_SCHEDULE_NONE while it is in no schedule) that the schedule keeps
 * up to date so that it can move or take the item without a search. */

/* fire_cb runs on the loop for each item whose due time has come, after it
 * has left the schedule (its place is RP_SCHEDULE_NONE).  now_ms is the
 * time of the check. */
typedef void (*rp_schedule_fire_cb)(void *arg, void *item, int64_t now_ms);

struct rp_schedule *rp_schedule_new_items(uv_loop_t *loop,
                                          rp_schedule_fire_cb cb, void *arg);
/* Puts item in the schedule at due_ms, or moves it there if it already is
 * (*place not RP_SCHEDULE_NONE). */
void rp_schedule_put(struct rp_schedule *s, void *item, size_t *place,
                     int64_t due_ms);
/* Takes the item at *place out of the schedule (nothing when it is in
 * none, or in another). */
void rp_schedule_take(struct rp_schedule *s, size_t *place);
/* Fires every item due by now_ms, earliest first, then re-arms the timer.
 * The timer calls it with the wall clock; tests with their own time.  A
 * callback may put and take items (a re-arm waits for the end). */
void rp_schedule_run(struct rp_schedule *s, int64_t now_ms);

size_t rp_schedule_count(const struct rp_schedule *s);
/* The earliest due time, or INT64_MAX when empty. */
int64_t rp_schedule_next_ms(const struct rp_schedule *s);
/* Checks now for due items (e.g. after a resync or a clock jump). */
void rp_schedule_kick(struct rp_schedule *s);
/* Lets go of every item (their places become RP_SCHEDULE_NONE) and stops
 * the timer; the schedule is freed in the timer's close callback.  Accepts
 * NULL. */
void rp_schedule_close(struct rp_schedule *s);

/* --- workload deadlines ----------------------------------------------------
 *
 * The tracker's entries, due at e->due_ms, their place in e->heap_index. */

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

#endif
