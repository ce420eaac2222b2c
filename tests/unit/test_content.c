/* content.c without a registry: what the audit log says of images (read
 * back at start: first sightings, what a tag named, quarantines) decides a
 * workload's content; failed rollouts quarantine at update.max_failures
 * (update.allow exempts); a verify refusal stops the update; locally built
 * and pinned images are said to be so.  The loop is never run but to close
 * what the module opened: nothing is resolved here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "content.h"
#include "strv.h"
#include "tracker.h"
#include "util.h"

#define REF "127.0.0.1:5000/rpt/app:1"
#define NAME "127.0.0.1:5000/rpt/app"
#define D1                                                                     \
  "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2                                                                     \
  "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define P2                                                                     \
  "sha256:2020202020202020202020202020202020202020202020202020202020202020"
#define HOUR_MS INT64_C(3600000)

struct fx {
  uv_loop_t loop;
  struct rp_http *http;
  struct rp_content *c;
  struct rp_tracker *t;
  json_t *lines;   /* what the module wrote */
  json_t *changed; /* the keys it said changed */
  struct rp_policy p;
  int64_t now;
};

static int
append_cb(void *ctx, const char *event, json_t *fields)
{
  struct fx *f = ctx;
  json_t *l = json_deep_copy(fields);
  json_object_set_new(l, "event", json_string(event));
  json_array_append_new(f->lines, l);
  return 0;
}

static void
changed_cb(void *ctx, const char *key)
{
  struct fx *f = ctx;
  json_array_append_new(f->changed, json_string(key));
}

static int
setup(void **state)
{
  struct fx *f = rp_xcalloc(1, sizeof(*f));
  uv_loop_init(&f->loop);
  assert_int_equal(rp_http_new(&f->loop, &f->http, NULL), 0);
  struct rp_content_env env = {.loop = &f->loop,
                               .http = f->http,
                               .append = append_cb,
                               .changed = changed_cb,
                               .ctx = f};
  f->c = rp_content_new(&env);
  f->t = rp_tracker_new();
  f->lines = json_array();
  f->changed = json_array();
  static char web[] = "web";
  f->p = (struct rp_policy){.name = web,
                            .match_kind = -1,
                            .max_age_ms = 24 * HOUR_MS,
                            .update = true,
                            .update_check_ms = 60000,
                            .update_max_failures = 1};
  f->now = rp_wall_ms();
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fx *f = *state;
  rp_tracker_free(f->t);
  rp_content_free(f->c);
  rp_http_close(f->http);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  json_decref(f->lines);
  json_decref(f->changed);
  rp_strv_free(f->p.update_allow);
  rp_strv_free(f->p.verify);
  free(f);
  return 0;
}

static void
load(struct fx *f, const char *event, const char *digest, const char *pd,
     const char *source, int64_t ts_ms)
{
  char ts[40];
  rp_format_time_ms(ts_ms, ts, sizeof(ts));
  cleanup_json json_t *l = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s}", "ts", ts, "event", event, "reference",
      REF, "digest", digest, "platform", "linux/amd64", "platform_digest", pd);
  if (source)
    json_object_set_new(l, "source", json_string(source));
  rp_content_load(f->c, l);
}

/* A workload created from ref, running an image with these RepoDigests
 * (NULL-terminated), judged under f->p. */
static struct rp_entry *
judged(struct fx *f, const char *id, const char *ref, ...)
{
  struct rp_workload *w =
      rp_workload_new("local", RP_KIND_CONTAINER, id, id, f->now - HOUR_MS);
  w->image.ref = rp_xstrdup(ref);
  w->image.platform = rp_xstrdup("linux/amd64");
  va_list ap;
  va_start(ap, ref);
  const char *rd;
  while ((rd = va_arg(ap, const char *)))
    rp_strv_push(&w->image.repo_digests, rd);
  va_end(ap);
  struct rp_entry *e = rp_tracker_add(f->t, NULL, w);
  e->d = (struct rp_decision){.policy = &f->p,
                              .max_age_ms = f->p.max_age_ms,
                              .deadline_ms = w->started_ms + f->p.max_age_ms,
                              .due_ms = w->started_ms + f->p.max_age_ms};
  rp_content_judge(f->c, e, f->now);
  return e;
}

static void
again(struct fx *f, struct rp_entry *e)
{
  e->d.deadline_ms = e->d.due_ms = e->w->started_ms + f->p.max_age_ms;
  e->d.due_reason = RP_DUE_MAX_AGE;
  rp_content_judge(f->c, e, f->now);
}

/* After a restart: the log says the workloads run D1 and the tag names D2,
 * each first seen when the log says. */
static void
test_log_read_back(void **state)
{
  struct fx *f = *state;
  load(f, "image.seen", D1, D1, "workload", f->now - 10 * HOUR_MS);
  load(f, "image.seen", D2, P2, "registry", f->now - 2 * HOUR_MS);
  struct rp_entry *e = judged(f, "a", REF, NAME "@" D1, NULL);
  const struct rp_content_view *v = &e->content;
  assert_int_equal(v->facts.state, RP_CONTENT_KNOWN);
  assert_string_equal(v->reference, REF);
  assert_string_equal(v->digest, D1);
  assert_string_equal(v->platform_digest, D1);
  assert_int_equal(v->facts.first_seen_ms / 1000,
                   (f->now - 10 * HOUR_MS) / 1000);
  assert_string_equal(v->newer_digest, D2);
  assert_string_equal(v->newer_platform_digest, P2);
  assert_int_equal(v->fr.newer, RP_NEWER_READY);
  /* Due for the update since the new digest was seen (no settle). */
  assert_int_equal(e->d.due_reason, RP_DUE_UPDATE);
  assert_int_equal(e->d.due_ms / 1000, (f->now - 2 * HOUR_MS) / 1000);
  assert_string_equal(v->key, REF " linux/amd64");
  /* Nothing new was written: the log knew it all. */
  assert_int_equal(json_array_size(f->lines), 0);

  /* One already running the tag's content (RepoDigests lists D2 too). */
  struct rp_entry *b = judged(f, "b", REF, NAME "@" D2, NULL);
  assert_string_equal(b->content.digest, D2);
  assert_int_equal(b->content.fr.newer, RP_NEWER_NONE);
  assert_int_equal(b->d.due_reason, RP_DUE_MAX_AGE);
}

/* Settle counts from the first sighting the log recorded. */
static void
test_settle_from_the_log(void **state)
{
  struct fx *f = *state;
  f->p.update_settle_ms = 3 * HOUR_MS;
  load(f, "image.seen", D1, D1, "workload", f->now - 10 * HOUR_MS);
  load(f, "image.seen", D2, P2, "registry", f->now - 2 * HOUR_MS);
  struct rp_entry *e = judged(f, "a", REF, NAME "@" D1, NULL);
  assert_int_equal(e->content.fr.newer, RP_NEWER_SETTLING);
  assert_int_equal(e->content.fr.newer_ready_ms / 1000,
                   (f->now + HOUR_MS) / 1000);
  assert_int_equal(e->d.due_reason, RP_DUE_UPDATE);
}

/* update.max_failures 2: the first failure counts, the second quarantines
 * (one image.quarantined line), and no workload is due for it any more. */
static void
test_quarantine_at_max_failures(void **state)
{
  struct fx *f = *state;
  f->p.update_max_failures = 2;
  load(f, "image.seen", D1, D1, "workload", f->now - 10 * HOUR_MS);
  load(f, "image.seen", D2, P2, "registry", f->now - 2 * HOUR_MS);
  struct rp_entry *e = judged(f, "a", REF, NAME "@" D1, NULL);
  const char *key = e->content.key;
  rp_content_rollout_failed(f->c, key, &f->p, D2, P2, "unhealthy");
  assert_int_equal(json_array_size(f->lines), 0);
  again(f, e);
  assert_int_equal(e->content.fr.newer, RP_NEWER_READY);
  rp_content_rollout_failed(f->c, key, &f->p, D2, P2, "unhealthy again");
  assert_int_equal(json_array_size(f->lines), 1);
  json_t *q = json_array_get(f->lines, 0);
  assert_string_equal(json_string_value(json_object_get(q, "event")),
                      "image.quarantined");
  assert_string_equal(json_string_value(json_object_get(q, "digest")), D2);
  assert_string_equal(json_string_value(json_object_get(q, "platform_digest")),
                      P2);
  assert_int_equal(json_integer_value(json_object_get(q, "failures")), 2);
  assert_string_equal(json_string_value(json_object_get(q, "error")),
                      "unhealthy again");
  assert_string_equal(json_string_value(json_array_get(f->changed, 0)), key);
  again(f, e);
  assert_int_equal(e->content.fr.newer, RP_NEWER_QUARANTINED);
  assert_int_equal(e->d.due_reason, RP_DUE_MAX_AGE);
  /* Said once: a third failure writes nothing more. */
  rp_content_rollout_failed(f->c, key, &f->p, D2, P2, "x");
  assert_int_equal(json_array_size(f->lines), 1);
  json_t *stats = rp_content_stats(f->c);
  assert_int_equal(json_array_size(json_object_get(stats, "quarantined")), 1);
  json_decref(stats);
}

/* A quarantine in the log stands after a restart; update.allow lifts it
 * (by the tag digest or by the platform's). */
static void
test_quarantine_read_back_and_allowed(void **state)
{
  struct fx *f = *state;
  load(f, "image.seen", D1, D1, "workload", f->now - 10 * HOUR_MS);
  load(f, "image.seen", D2, P2, "registry", f->now - 2 * HOUR_MS);
  load(f, "image.quarantined", D2, P2, NULL, f->now - HOUR_MS);
  struct rp_entry *e = judged(f, "a", REF, NAME "@" D1, NULL);
  assert_int_equal(e->content.fr.newer, RP_NEWER_QUARANTINED);
  assert_int_equal(e->d.due_reason, RP_DUE_MAX_AGE);
  rp_strv_push(&f->p.update_allow, P2);
  again(f, e);
  assert_int_equal(e->content.fr.newer, RP_NEWER_READY);
  assert_int_equal(e->d.due_reason, RP_DUE_UPDATE);
  /* And an allowed digest that fails is not quarantined. */
  rp_strv_free(f->p.update_allow);
  f->p.update_allow = NULL;
  rp_strv_push(&f->p.update_allow, D2);
  load(f, "image.seen", D1, D1, "workload", f->now); /* nothing new */
  rp_content_rollout_failed(f->c, e->content.key, &f->p, D2, P2, "x");
  assert_int_equal(json_array_size(f->lines), 0);
}

/* The gate refused the tag's digest: no update (a max-age recycle keeps the
 * content); a verdict is per gate. */
static void
test_verify_refusal(void **state)
{
  struct fx *f = *state;
  rp_strv_push(&f->p.verify, "/bin/gate");
  load(f, "image.seen", D1, D1, "workload", f->now - 10 * HOUR_MS);
  load(f, "image.seen", D2, P2, "registry", f->now - 2 * HOUR_MS);
  struct rp_entry *e = judged(f, "a", REF, NAME "@" D1, NULL);
  assert_int_equal(rp_content_verdict(f->c, f->p.verify, D2), RP_VERDICT_NONE);
  rp_content_set_verdict(f->c, e->content.key, f->p.verify, D2, false);
  assert_int_equal(rp_content_verdict(f->c, f->p.verify, D2),
                   RP_VERDICT_REFUSED);
  assert_int_equal(json_array_size(f->changed), 1);
  again(f, e);
  assert_int_equal(e->content.fr.newer, RP_NEWER_REFUSED);
  assert_int_equal(e->d.due_reason, RP_DUE_MAX_AGE);
  char **other = NULL;
  rp_strv_push(&other, "/bin/other-gate");
  assert_int_equal(rp_content_verdict(f->c, other, D2), RP_VERDICT_NONE);
  rp_strv_free(other);
}

/* What cannot be followed says why, and is never due for its content. */
static void
test_local_and_pinned(void **state)
{
  struct fx *f = *state;
  f->p.max_image_age_ms = 1;
  struct rp_entry *local = judged(f, "l", REF, NULL);
  assert_int_equal(local->content.facts.state, RP_CONTENT_LOCAL);
  assert_non_null(strstr(local->content.note, "built locally"));
  struct rp_entry *other =
      judged(f, "o", REF, "127.0.0.1:5000/other@" D1, NULL);
  assert_int_equal(other->content.facts.state, RP_CONTENT_LOCAL);
  struct rp_entry *pinned = judged(f, "p", NAME "@" D1, NAME "@" D1, NULL);
  assert_int_equal(pinned->content.facts.state, RP_CONTENT_PINNED);
  assert_null(pinned->content.key);
  struct rp_entry *by_id = judged(f, "i", D1, NULL);
  assert_int_equal(by_id->content.facts.state, RP_CONTENT_PINNED);
  assert_int_equal(local->d.due_reason, RP_DUE_MAX_AGE);
  assert_int_equal(pinned->d.due_reason, RP_DUE_MAX_AGE);
  /* A policy that does not follow content: nothing at all. */
  f->p.update = false;
  f->p.max_image_age_ms = 0;
  struct rp_entry *plain = judged(f, "x", REF, NAME "@" D1, NULL);
  assert_int_equal(plain->content.facts.state, RP_CONTENT_NONE);
  assert_null(plain->content.key);
}

/* A digest never resolved is not known: not due, and said so. */
static void
test_unknown_until_resolved(void **state)
{
  struct fx *f = *state;
  struct rp_entry *e = judged(f, "a", REF, NAME "@" D1, NULL);
  assert_int_equal(e->content.facts.state, RP_CONTENT_UNKNOWN);
  assert_string_equal(e->content.note, "not resolved yet");
  assert_false(rp_content_ready(f->c));
  assert_false(rp_content_checked(f->c, e));
  rp_content_release(f->c, e);
  assert_null(e->content.key);
  assert_true(rp_content_ready(f->c));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_log_read_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_settle_from_the_log, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_quarantine_at_max_failures, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_quarantine_read_back_and_allowed,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_refusal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_and_pinned, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_until_resolved, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
