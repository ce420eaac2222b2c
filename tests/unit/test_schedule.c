/* The schedule: one timer for the earliest deadline; entries come due in
 * deadline order, moved and removed entries behave, and the loop closes
 * clean.  The tracker: a hash table that finds, grows and unlinks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "schedule.h"
#include "tracker.h"
#include "util.h"

struct fired {
  struct rp_entry *order[64];
  int n;
};

static void
due_cb(void *arg, struct rp_entry *e, int64_t now_ms)
{
  struct fired *f = arg;
  assert_true(e->due_ms <= now_ms);
  assert_int_equal(e->heap_index, RP_NOT_QUEUED); /* left the schedule */
  f->order[f->n++] = e;
}

static struct rp_entry *
entry(struct rp_tracker *t, const char *id, int64_t due)
{
  struct rp_entry *e = rp_tracker_add(
      t, NULL, rp_workload_new("p", RP_KIND_CONTAINER, id, id, 0));
  e->due_ms = due;
  return e;
}

static void
test_due_in_deadline_order(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct rp_tracker *t = rp_tracker_new();
  struct fired f = {0};
  struct rp_schedule *s = rp_schedule_new(&loop, due_cb, &f);
  int64_t now = rp_wall_ms();
  /* Inserted out of order; one far in the future never fires. */
  struct rp_entry *c = entry(t, "c", now + 60);
  struct rp_entry *a = entry(t, "a", now - 1000);
  struct rp_entry *far = entry(t, "far", now + 3600 * 1000);
  struct rp_entry *b = entry(t, "b", now + 20);
  struct rp_entry *gone = entry(t, "gone", now + 10);
  rp_schedule_set(s, c);
  rp_schedule_set(s, a);
  rp_schedule_set(s, far);
  rp_schedule_set(s, b);
  rp_schedule_set(s, gone);
  assert_int_equal(rp_schedule_count(s), 5);
  assert_int_equal(rp_schedule_next_ms(s), now - 1000);
  rp_schedule_remove(s, gone);
  rp_schedule_remove(s, gone); /* twice: nothing */
  /* Moving an entry re-sorts it: c now comes before b. */
  c->due_ms = now + 5;
  rp_schedule_set(s, c);
  while (f.n < 3)
    uv_run(&loop, UV_RUN_ONCE);
  assert_ptr_equal(f.order[0], a);
  assert_ptr_equal(f.order[1], c);
  assert_ptr_equal(f.order[2], b);
  assert_int_equal(rp_schedule_count(s), 1);
  assert_int_equal(far->heap_index, 0);
  rp_schedule_close(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(far->heap_index, RP_NOT_QUEUED);
  assert_int_equal(uv_loop_close(&loop), 0);
  rp_tracker_free(t);
}

/* The heap stays a heap through many random sets and removes. */
static void
test_heap_order_at_scale(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct rp_tracker *t = rp_tracker_new();
  struct fired f = {0};
  struct rp_schedule *s = rp_schedule_new(&loop, due_cb, &f);
  enum { N = 2000 };
  struct rp_entry *v[N];
  uint32_t x = 12345;
  int64_t base = rp_wall_ms() + 3600 * 1000;
  for (int i = 0; i < N; i++) {
    char id[16];
    snprintf(id, sizeof(id), "w%d", i);
    x = x * 1103515245 + 12345;
    v[i] = entry(t, id, base + (x >> 8) % 100000);
    rp_schedule_set(s, v[i]);
  }
  for (int i = 0; i < N; i += 3)
    rp_schedule_remove(s, v[i]);
  for (int i = 1; i < N; i += 7) {
    x = x * 1103515245 + 12345;
    v[i]->due_ms = base + (x >> 8) % 100000;
    rp_schedule_set(s, v[i]);
  }
  /* Drain by repeatedly removing the earliest: never decreasing. */
  int64_t last = INT64_MIN;
  size_t count = rp_schedule_count(s);
  for (size_t k = 0; k < count; k++) {
    int64_t next = rp_schedule_next_ms(s);
    assert_true(next >= last);
    last = next;
    struct rp_entry *min = NULL;
    for (int i = 0; i < N; i++)
      if (v[i]->heap_index == 0)
        min = v[i];
    assert_non_null(min);
    assert_int_equal(min->due_ms, next);
    rp_schedule_remove(s, min);
  }
  assert_int_equal(rp_schedule_count(s), 0);
  assert_int_equal(rp_schedule_next_ms(s), INT64_MAX);
  rp_schedule_close(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  rp_tracker_free(t);
}

/* Any item, at a due time of its own: fired by a run at a given time in
 * due order, each after it left the schedule; moved and taken items
 * behave; a callback may put an item back; close lets go of the rest. */
struct item {
  int id;
  size_t place;
};

struct run_log {
  struct rp_schedule *s;
  int order[16];
  int n;
};

static void
fire_cb(void *arg, void *item, int64_t now_ms)
{
  struct run_log *r = arg;
  struct item *it = item;
  assert_int_equal(it->place, RP_SCHEDULE_NONE);
  r->order[r->n++] = it->id;
  /* Item 2 comes back once, later than this run looks. */
  if (it->id == 2 && r->n == 3)
    rp_schedule_put(r->s, it, &it->place, now_ms + 1000);
}

static void
test_any_item(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct run_log r = {0};
  r.s = rp_schedule_new_items(&loop, fire_cb, &r);
  const int64_t t0 = INT64_C(1000000);
  struct item it[5];
  for (int i = 0; i < 5; i++) {
    it[i] = (struct item){.id = i, .place = RP_SCHEDULE_NONE};
    rp_schedule_put(r.s, &it[i], &it[i].place, t0 + 100 * (5 - i));
  }
  assert_int_equal(rp_schedule_next_ms(r.s), t0 + 100);
  rp_schedule_take(r.s, &it[4].place);                 /* was first */
  rp_schedule_take(r.s, &it[4].place);                 /* twice: nothing */
  rp_schedule_put(r.s, &it[0], &it[0].place, t0 + 50); /* moved first */
  assert_int_equal(rp_schedule_count(r.s), 4);
  rp_schedule_run(r.s, t0 + 49);
  assert_int_equal(r.n, 0);
  rp_schedule_run(r.s, t0 + 300);
  assert_int_equal(r.n, 3);
  assert_int_equal(r.order[0], 0);
  assert_int_equal(r.order[1], 3);
  assert_int_equal(r.order[2], 2);
  assert_int_equal(rp_schedule_count(r.s), 2); /* 1, and 2 again */
  assert_int_equal(rp_schedule_next_ms(r.s), t0 + 400);
  rp_schedule_run(r.s, t0 + 1299); /* 1 only: 2 is back at t0 + 1300 */
  assert_int_equal(r.n, 4);
  assert_int_equal(r.order[3], 1);
  assert_int_equal(rp_schedule_next_ms(r.s), t0 + 1300);
  rp_schedule_close(r.s);
  assert_int_equal(it[1].place, RP_SCHEDULE_NONE);
  assert_int_equal(it[2].place, RP_SCHEDULE_NONE);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_tracker(void **state)
{
  (void)state;
  struct rp_tracker *t = rp_tracker_new();
  enum { N = 5000 };
  for (int i = 0; i < N; i++) {
    char id[16];
    snprintf(id, sizeof(id), "c%d", i);
    rp_tracker_add(
        t, NULL,
        rp_workload_new(i % 2 ? "a" : "b", RP_KIND_CONTAINER, id, id, i));
  }
  assert_int_equal(rp_tracker_count(t), N);
  struct rp_entry *e = rp_tracker_find(t, "a", "c4999");
  assert_non_null(e);
  assert_int_equal(e->w->started_ms, 4999);
  assert_null(rp_tracker_find(t, "b", "c4999")); /* provider is part of it */
  assert_null(rp_tracker_find(t, "a", "nope"));
  rp_tracker_unlink(t, e);
  rp_entry_free(e);
  assert_null(rp_tracker_find(t, "a", "c4999"));
  assert_int_equal(rp_tracker_count(t), N - 1);
  size_t n;
  struct rp_entry **v = rp_tracker_snapshot(t, NULL, &n);
  assert_int_equal(n, N - 1);
  free(v);
  rp_tracker_free(t);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_due_in_deadline_order),
      cmocka_unit_test(test_heap_order_at_scale),
      cmocka_unit_test(test_any_item),
      cmocka_unit_test(test_tracker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
