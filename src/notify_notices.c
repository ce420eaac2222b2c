/* The advance notices of recycles (notify_notices.h). */
#include "notify_notices.h"

#include <string.h>

#include "log.h"
#include "schedule.h"
#include "util.h"
#include "workload.h"

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
  size_t place;        /* in x->schedule, or RP_SCHEDULE_NONE */
  struct notice *hash_next;
};

struct rp_notify_notices {
  bool dry_run;
  rp_notify_notices_send_cb send_cb;
  void *arg;
  struct notice **buckets; /* owned hash of every remembered workload */
  size_t n_buckets, n_notices;
  /* owned: the notices not sent yet (borrowed from the hash), at their
   * time; NULL once stopped */
  struct rp_schedule *schedule;
};

static struct notice **
slot_of(const struct rp_notify_notices *x, const char *provider, const char *id)
{
  if (!x->n_buckets)
    return NULL;
  struct notice **p =
      &x->buckets[rp_workload_key_hash(provider, id) & (x->n_buckets - 1)];
  while (*p &&
         (strcmp((*p)->provider, provider) != 0 || strcmp((*p)->id, id) != 0))
    p = &(*p)->hash_next;
  return p;
}

static void
grow(struct rp_notify_notices *x)
{
  size_t nb = x->n_buckets ? x->n_buckets * 2 : 64;
  struct notice **b = rp_xcalloc(nb, sizeof(*b));
  for (size_t i = 0; i < x->n_buckets; i++) {
    struct notice *o = x->buckets[i];
    while (o) {
      struct notice *next = o->hash_next;
      size_t k = rp_workload_key_hash(o->provider, o->id) & (nb - 1);
      o->hash_next = b[k];
      b[k] = o;
      o = next;
    }
  }
  free(x->buckets);
  x->buckets = b;
  x->n_buckets = nb;
}

static void
notice_free(struct notice *o)
{
  free(o->provider);
  free(o->id);
  free(o->name);
  free(o->policy);
  free(o);
}

static void
set_str(char **dst, const char *src)
{
  if (*dst && src && strcmp(*dst, src) == 0)
    return;
  free(*dst);
  *dst = src ? rp_xstrdup(src) : NULL;
}

static void
send_notice(struct rp_notify_notices *x, const struct notice *o, int64_t now_ms)
{
  char started[40], due[40];
  rp_format_time_ms(o->started_ms, started, sizeof(started));
  rp_format_time_ms(o->due_ms, due, sizeof(due));
  cleanup_json json_t *f = json_pack(
      "{s:s, s:s, s:s, s:s, s:s?, s:s, s:s, s:I, s:I, s:I, s:I}", "provider",
      o->provider, "kind", rp_kind_name(o->kind), "id", o->id, "name", o->name,
      "policy", o->policy, "started_at", started, "due", due, "due_in_s",
      (json_int_t)((o->due_ms - now_ms + 999) / 1000), "age_s",
      (json_int_t)((now_ms - o->started_ms) / 1000), "max_age_s",
      (json_int_t)(o->max_age_ms / 1000), "notify_before_s",
      (json_int_t)(o->before_ms / 1000));
  if (x->dry_run)
    json_object_set_new(f, "dry_run", json_true());
  rp_info("notify: recycle.upcoming of %s %s (policy %s) due at %s",
          rp_kind_name(o->kind), o->name, o->policy ? o->policy : "-", due);
  x->send_cb(x->arg, f);
}

/* A notice's time has come: it has left the schedule. */
static void
due_cb(void *arg, void *item, int64_t now_ms)
{
  struct notice *o = item;
  o->sent = true;
  o->sent_due_ms = o->due_ms;
  /* Too late for an advance notice: its recycle begins now. */
  if (now_ms < o->due_ms)
    send_notice(arg, o, now_ms);
}

struct rp_notify_notices *
rp_notify_notices_new(uv_loop_t *loop, bool dry_run,
                      rp_notify_notices_send_cb cb, void *arg)
{
  struct rp_notify_notices *x = rp_xcalloc(1, sizeof(*x));
  x->dry_run = dry_run;
  x->send_cb = cb;
  x->arg = arg;
  x->schedule = rp_schedule_new_items(loop, due_cb, x);
  return x;
}

void
rp_notify_notices_set(struct rp_notify_notices *x,
                      const struct rp_notify_upcoming *u)
{
  if (!x->schedule || !u || !u->provider || !u->id)
    return;
  if (u->before_ms <= 0) {
    rp_notify_notices_remove(x, u->provider, u->id);
    return;
  }
  struct notice **slot = slot_of(x, u->provider, u->id);
  struct notice *o = slot ? *slot : NULL;
  if (!o) {
    if (x->n_notices >= x->n_buckets)
      grow(x);
    slot = slot_of(x, u->provider, u->id);
    o = rp_xcalloc(1, sizeof(*o));
    o->provider = rp_xstrdup(u->provider);
    o->id = rp_xstrdup(u->id);
    o->place = RP_SCHEDULE_NONE;
    o->started_ms = u->started_ms;
    *slot = o;
    x->n_notices++;
  }
  if (o->started_ms != u->started_ms)
    o->sent = false; /* a new life: a new notice */
  o->started_ms = u->started_ms;
  o->kind = u->kind;
  set_str(&o->name, u->name ? u->name : u->id);
  set_str(&o->policy, u->policy);
  o->due_ms = u->due_ms;
  o->max_age_ms = u->max_age_ms;
  o->before_ms = u->before_ms;
  if (o->sent) {
    int64_t moved = u->due_ms - o->sent_due_ms;
    if (moved >= -RP_NOTIFY_UPCOMING_SLACK_MS &&
        moved <= RP_NOTIFY_UPCOMING_SLACK_MS) {
      rp_schedule_take(x->schedule, &o->place);
      return;
    }
    o->sent = false; /* the recycle moved: the last notice is wrong */
  }
  o->notice_ms = u->due_ms - u->before_ms;
  rp_schedule_put(x->schedule, o, &o->place, o->notice_ms);
}

void
rp_notify_notices_remove(struct rp_notify_notices *x, const char *provider,
                         const char *id)
{
  if (!provider || !id)
    return;
  struct notice **slot = slot_of(x, provider, id);
  if (!slot || !*slot)
    return;
  struct notice *o = *slot;
  *slot = o->hash_next;
  x->n_notices--;
  if (x->schedule)
    rp_schedule_take(x->schedule, &o->place);
  notice_free(o);
}

int64_t
rp_notify_notices_next_ms(const struct rp_notify_notices *x)
{
  return x->schedule ? rp_schedule_next_ms(x->schedule) : INT64_MAX;
}

size_t
rp_notify_notices_count(const struct rp_notify_notices *x)
{
  return x->n_notices;
}

void
rp_notify_notices_tick(struct rp_notify_notices *x, int64_t now_ms)
{
  if (x->schedule)
    rp_schedule_run(x->schedule, now_ms);
}

void
rp_notify_notices_stop(struct rp_notify_notices *x)
{
  rp_schedule_close(x->schedule);
  x->schedule = NULL;
}

void
rp_notify_notices_free(struct rp_notify_notices *x)
{
  if (!x)
    return;
  rp_notify_notices_stop(x);
  for (size_t i = 0; i < x->n_buckets; i++) {
    struct notice *o = x->buckets[i];
    while (o) {
      struct notice *next = o->hash_next;
      notice_free(o);
      o = next;
    }
  }
  free(x->buckets);
  free(x);
}
