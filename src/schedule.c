#include "schedule.h"

#include "util.h"

_Static_assert(RP_NOT_QUEUED == RP_SCHEDULE_NONE,
               "a tracker entry's heap_index is a schedule place");

/* One item in the heap: its due time is kept here, next to its neighbours',
 * so that sifting reads no item. */
struct slot {
  int64_t due_ms;
  void *item;    /* borrowed */
  size_t *place; /* in the item: kept equal to this slot's index */
};

struct rp_schedule {
  uv_timer_t timer;         /* first member: freed in its close callback */
  rp_schedule_fire_cb fire; /* any item; or: */
  rp_schedule_due_cb due;   /* a tracker entry */
  void *arg;
  struct slot *heap; /* owned array */
  size_t n, cap;
  bool firing; /* inside the due loop: re-arm once, at its end */
};

static void
place(struct rp_schedule *s, size_t i, struct slot x)
{
  s->heap[i] = x;
  *x.place = i;
}

static void
sift_up(struct rp_schedule *s, size_t i)
{
  struct slot x = s->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (x.due_ms >= s->heap[parent].due_ms)
      break;
    place(s, i, s->heap[parent]);
    i = parent;
  }
  place(s, i, x);
}

static void
sift_down(struct rp_schedule *s, size_t i)
{
  struct slot x = s->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    int64_t best = x.due_ms;
    if (l < s->n && s->heap[l].due_ms < best) {
      m = l;
      best = s->heap[l].due_ms;
    }
    if (r < s->n && s->heap[r].due_ms < best)
      m = r;
    if (m == i)
      break;
    place(s, i, s->heap[m]);
    i = m;
  }
  place(s, i, x);
}

/* Whether *p is the place of an item in this schedule. */
static bool
holds(const struct rp_schedule *s, const size_t *p)
{
  return *p != RP_SCHEDULE_NONE && *p < s->n && s->heap[*p].place == p;
}

static void timer_cb(uv_timer_t *t);

static void
arm(struct rp_schedule *s)
{
  if (s->firing)
    return;
  if (s->n == 0) {
    uv_timer_stop(&s->timer);
    return;
  }
  int64_t wait = s->heap[0].due_ms - rp_wall_ms();
  if (wait < 0)
    wait = 0;
  if (wait > RP_SCHEDULE_MAX_SLEEP_MS)
    wait = RP_SCHEDULE_MAX_SLEEP_MS;
  /* The kernel may end a long sleep up to 0.1% late (timer slack: 28 ms
   * after a 28 s wait was seen): wake a little early and sleep the rest
   * again, so a deadline is met within a millisecond or two. */
  if (wait > 50)
    wait -= wait / 500 + 1;
  /* uv_now() is cached at the start of the loop iteration; update it so
   * the timeout counts from now, not from before a slow callback. */
  uv_update_time(s->timer.loop);
  uv_timer_start(&s->timer, timer_cb, (uint64_t)wait, 0);
}

void
rp_schedule_run(struct rp_schedule *s, int64_t now_ms)
{
  bool nested = s->firing;
  s->firing = true;
  while (s->n > 0 && s->heap[0].due_ms <= now_ms) {
    void *item = s->heap[0].item;
    rp_schedule_take(s, s->heap[0].place);
    if (s->due)
      s->due(s->arg, item, now_ms);
    else
      s->fire(s->arg, item, now_ms);
  }
  if (nested)
    return;
  s->firing = false;
  arm(s);
}

static void
timer_cb(uv_timer_t *t)
{
  rp_schedule_run((struct rp_schedule *)t, rp_wall_ms());
}

static struct rp_schedule *
schedule_new(uv_loop_t *loop, void *arg)
{
  struct rp_schedule *s = rp_xcalloc(1, sizeof(*s));
  uv_timer_init(loop, &s->timer);
  s->arg = arg;
  return s;
}

struct rp_schedule *
rp_schedule_new_items(uv_loop_t *loop, rp_schedule_fire_cb cb, void *arg)
{
  struct rp_schedule *s = schedule_new(loop, arg);
  s->fire = cb;
  return s;
}

void
rp_schedule_put(struct rp_schedule *s, void *item, size_t *p, int64_t due_ms)
{
  if (holds(s, p)) {
    size_t i = *p;
    s->heap[i].due_ms = due_ms;
    sift_up(s, i);
    sift_down(s, *p);
  } else {
    if (s->n == s->cap) {
      s->cap = s->cap ? s->cap * 2 : 64;
      s->heap = rp_xrealloc(s->heap, s->cap * sizeof(*s->heap));
    }
    place(s, s->n++, (struct slot){.due_ms = due_ms, .item = item, .place = p});
    sift_up(s, s->n - 1);
  }
  arm(s);
}

void
rp_schedule_take(struct rp_schedule *s, size_t *p)
{
  if (!holds(s, p))
    return;
  size_t i = *p;
  *p = RP_SCHEDULE_NONE;
  struct slot last = s->heap[--s->n];
  if (i < s->n) {
    place(s, i, last);
    sift_up(s, i);
    sift_down(s, *last.place);
  }
  arm(s);
}

size_t
rp_schedule_count(const struct rp_schedule *s)
{
  return s->n;
}

int64_t
rp_schedule_next_ms(const struct rp_schedule *s)
{
  return s->n ? s->heap[0].due_ms : INT64_MAX;
}

void
rp_schedule_kick(struct rp_schedule *s)
{
  if (s->firing)
    return;
  uv_timer_start(&s->timer, timer_cb, 0, 0);
}

static void
close_cb(uv_handle_t *h)
{
  struct rp_schedule *s = (struct rp_schedule *)h;
  free(s->heap);
  free(s);
}

void
rp_schedule_close(struct rp_schedule *s)
{
  if (!s)
    return;
  /* The items may be freed before the close callback runs: let go of them
   * now. */
  for (size_t i = 0; i < s->n; i++)
    *s->heap[i].place = RP_SCHEDULE_NONE;
  s->n = 0;
  uv_close((uv_handle_t *)&s->timer, close_cb);
}

/* --- workload deadlines ----------------------------------------------------
 */

struct rp_schedule *
rp_schedule_new(uv_loop_t *loop, rp_schedule_due_cb cb, void *arg)
{
  struct rp_schedule *s = schedule_new(loop, arg);
  s->due = cb;
  return s;
}

void
rp_schedule_set(struct rp_schedule *s, struct rp_entry *e)
{
  rp_schedule_put(s, e, &e->heap_index, e->due_ms);
}

void
rp_schedule_remove(struct rp_schedule *s, struct rp_entry *e)
{
  rp_schedule_take(s, &e->heap_index);
}
