#include "schedule.h"

#include "util.h"

struct rp_schedule {
  uv_timer_t timer; /* first member: freed in its close callback */
  rp_schedule_due_cb cb;
  void *arg;
  struct rp_entry **heap; /* owned array; entries borrowed */
  size_t n, cap;
  bool firing; /* inside the due loop: re-arm once, at its end */
};

static bool
earlier(const struct rp_entry *a, const struct rp_entry *b)
{
  return a->due_ms < b->due_ms;
}

static void
place(struct rp_schedule *s, size_t i, struct rp_entry *e)
{
  s->heap[i] = e;
  e->heap_index = i;
}

static void
sift_up(struct rp_schedule *s, size_t i)
{
  struct rp_entry *e = s->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(e, s->heap[parent]))
      break;
    place(s, i, s->heap[parent]);
    i = parent;
  }
  place(s, i, e);
}

static void
sift_down(struct rp_schedule *s, size_t i)
{
  struct rp_entry *e = s->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    struct rp_entry *best = e;
    if (l < s->n && earlier(s->heap[l], best)) {
      m = l;
      best = s->heap[l];
    }
    if (r < s->n && earlier(s->heap[r], best))
      m = r;
    if (m == i)
      break;
    place(s, i, s->heap[m]);
    i = m;
  }
  place(s, i, e);
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
  int64_t wait = s->heap[0]->due_ms - rp_wall_ms();
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

static void
timer_cb(uv_timer_t *t)
{
  struct rp_schedule *s = (struct rp_schedule *)t;
  int64_t now = rp_wall_ms();
  s->firing = true;
  while (s->n > 0 && s->heap[0]->due_ms <= now) {
    struct rp_entry *e = s->heap[0];
    rp_schedule_remove(s, e);
    s->cb(s->arg, e, now);
  }
  s->firing = false;
  arm(s);
}

struct rp_schedule *
rp_schedule_new(uv_loop_t *loop, rp_schedule_due_cb cb, void *arg)
{
  struct rp_schedule *s = rp_xcalloc(1, sizeof(*s));
  uv_timer_init(loop, &s->timer);
  s->cb = cb;
  s->arg = arg;
  return s;
}

void
rp_schedule_set(struct rp_schedule *s, struct rp_entry *e)
{
  if (e->heap_index != RP_NOT_QUEUED) {
    size_t i = e->heap_index;
    sift_up(s, i);
    sift_down(s, e->heap_index);
  } else {
    if (s->n == s->cap) {
      s->cap = s->cap ? s->cap * 2 : 64;
      s->heap = rp_xrealloc(s->heap, s->cap * sizeof(*s->heap));
    }
    place(s, s->n++, e);
    sift_up(s, s->n - 1);
  }
  arm(s);
}

void
rp_schedule_remove(struct rp_schedule *s, struct rp_entry *e)
{
  size_t i = e->heap_index;
  if (i == RP_NOT_QUEUED || i >= s->n || s->heap[i] != e)
    return;
  e->heap_index = RP_NOT_QUEUED;
  struct rp_entry *last = s->heap[--s->n];
  if (i < s->n) {
    place(s, i, last);
    sift_up(s, i);
    sift_down(s, last->heap_index);
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
  return s->n ? s->heap[0]->due_ms : INT64_MAX;
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
  /* The entries may be freed before the close callback runs: let go of
   * them now. */
  for (size_t i = 0; i < s->n; i++)
    s->heap[i]->heap_index = RP_NOT_QUEUED;
  s->n = 0;
  uv_close((uv_handle_t *)&s->timer, close_cb);
}
