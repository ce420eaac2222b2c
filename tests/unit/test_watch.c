/* The watch loop every provider's tracking runs (src/watch.c), with a
 * provider's operations that record what the loop asks and let the test
 * answer: the state reported to the core (up once after the first list,
 * down with the reason), the reconnect's delay (0.5 s, doubling, and from
 * the start again after a good list), a resync asked for during a list
 * (one more list after it), events during a list handed back after a
 * good one (once per workload) and dropped after a failed one, a list
 * that fails while connecting (a
 * reconnect) or in a resync (what was known stays), the loop's own cancel
 * of the stream (not taken for a failure), and a stop (idle once every
 * call has ended and the timer is closed; the loop closes clean).  The
 * event stream is a real HTTP transfer to a peer on a unix socket that
 * accepts and says nothing until the test hangs up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.h"
#include "log.h"
#include "util.h"
#include "watch.h"

/* A peer that accepts connections and never answers. */
struct silent {
  uv_pipe_t server;
  uv_pipe_t *conns[8];
  int n;
};

static void
silent_alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
  (void)h;
  static char scratch[4096];
  (void)size;
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void
silent_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  (void)s;
  (void)n;
  (void)buf; /* the request: read and ignored */
}

static void
silent_accept_cb(uv_stream_t *server, int status)
{
  struct silent *sp = server->data;
  assert_int_equal(status, 0);
  uv_pipe_t *c = rp_xcalloc(1, sizeof(*c));
  uv_pipe_init(server->loop, c, 0);
  assert_int_equal(uv_accept(server, (uv_stream_t *)c), 0);
  uv_read_start((uv_stream_t *)c, silent_alloc_cb, silent_read_cb);
  assert_true(sp->n < 8);
  sp->conns[sp->n++] = c;
}

static void
free_handle_cb(uv_handle_t *h)
{
  free(h);
}

/* Hangs up on every connection: the engine ends the stream. */
static void
silent_hang_up(struct silent *sp)
{
  for (int i = 0; i < sp->n; i++)
    uv_close((uv_handle_t *)sp->conns[i], free_handle_cb);
  sp->n = 0;
}

struct fake {
  struct rp_provider p;
  struct rp_watch *w;
  char dir[64], sock[96], base[32], name[8];
  struct rp_http_endpoint ep;
  struct silent peer;
  int stream_ends;
  char rechecked[256]; /* "id=what " for each recheck, in order */
  int connects, streams, lists, after_ok, after_failed, stop_checks;
  bool fail_connect; /* the next connect cannot start */
  int listed;        /* hooks.listed calls */
  size_t listed_n;
  int ups, downs;
  char down_reason[128];
};

static int
op_connect(void *ctx, struct rp_error **err)
{
  struct fake *f = ctx;
  f->connects++;
  if (f->fail_connect)
    return rp_error_set(err, RP_EENGINE, "connection refused");
  rp_watch_call_started(f->w);
  return 0;
}

static void
stream_done_cb(void *arg, const struct rp_http_response *resp,
               const struct rp_error *err)
{
  (void)resp;
  struct fake *f = arg;
  f->stream_ends++;
  rp_watch_stream_ended(f->w, err ? err->message : NULL);
}

static int
op_stream(void *ctx, struct rp_http_xfer **xfer, struct rp_error **err)
{
  struct fake *f = ctx;
  f->streams++;
  struct rp_http_request req = {.method = "GET", .path = "/events"};
  if (rp_http_send(f->p.http, &f->ep, &req, stream_done_cb, f, xfer) != 0)
    return rp_error_set(err, RP_EENGINE, "cannot start the stream");
  return 0;
}

static void
op_list(void *ctx)
{
  struct fake *f = ctx;
  f->lists++;
}

static void
op_recheck(void *ctx, const char *id, const char *what)
{
  struct fake *f = ctx;
  size_t n = strlen(f->rechecked);
  snprintf(f->rechecked + n, sizeof(f->rechecked) - n, "%s=%s ", id, what);
}

static void
op_after_list(void *ctx, bool ok)
{
  struct fake *f = ctx;
  if (ok)
    f->after_ok++;
  else
    f->after_failed++;
}

static void
op_check_stopped(void *ctx)
{
  struct fake *f = ctx;
  f->stop_checks++;
}

static const struct rp_watch_ops ops = {
    .connect = op_connect,
    .stream = op_stream,
    .list = op_list,
    .recheck = op_recheck,
    .after_list = op_after_list,
    .check_stopped = op_check_stopped,
};

static void
hook_listed(void *core, struct rp_provider *p, struct rp_workload **items,
            size_t n)
{
  (void)p;
  (void)items;
  struct fake *f = core;
  f->listed++;
  f->listed_n = n;
}

static void
hook_state(void *core, struct rp_provider *p, bool up, const char *reason)
{
  (void)p;
  struct fake *f = core;
  if (up) {
    f->ups++;
  } else {
    f->downs++;
    snprintf(f->down_reason, sizeof(f->down_reason), "%s", reason);
  }
}

static void
fake_init(struct fake *f, uv_loop_t *loop)
{
  memset(f, 0, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/rp-test-watch.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->sock, sizeof(f->sock), "%s/s.sock", f->dir);
  uv_pipe_init(loop, &f->peer.server, 0);
  f->peer.server.data = &f->peer;
  assert_int_equal(uv_pipe_bind(&f->peer.server, f->sock), 0);
  assert_int_equal(
      uv_listen((uv_stream_t *)&f->peer.server, 8, silent_accept_cb), 0);
  snprintf(f->base, sizeof(f->base), "http://localhost");
  f->ep.base_url = f->base;
  f->ep.unix_socket = f->sock;
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(rp_http_new(loop, &f->p.http, &err), 0);
  snprintf(f->name, sizeof(f->name), "fake");
  f->p.name = f->name;
  f->p.loop = loop;
  f->p.hooks = (struct rp_provider_hooks){
      .core = f, .listed = hook_listed, .state = hook_state};
  f->w = rp_watch_new(&f->p, &ops, f);
}

/* The provider's answer to its connect call. */
static void
answer_connect(struct fake *f, const char *why)
{
  rp_watch_call_ended(f->w);
  rp_watch_connected(f->w, why);
}

/* Every test ends here: the peer, the client and the loop close clean. */
static void
close_all(struct fake *f, uv_loop_t *loop)
{
  silent_hang_up(&f->peer);
  uv_close((uv_handle_t *)&f->peer.server, NULL);
  rp_http_close(f->p.http);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(loop), 0);
  rp_watch_free(f->w);
  unlink(f->sock);
  rmdir(f->dir);
}

/* Runs the loop until the peer has the stream's connection. */
static void
until_streaming(struct fake *f, uv_loop_t *loop)
{
  while (f->peer.n == 0)
    uv_run(loop, UV_RUN_ONCE);
}

static void
stop_and_close(struct fake *f, uv_loop_t *loop)
{
  rp_watch_stop(f->w);
  assert_false(rp_watch_idle(f->w)); /* the timer is closing */
  while (!rp_watch_idle(f->w))
    uv_run(loop, UV_RUN_ONCE);
  assert_true(f->stop_checks > 0);
  close_all(f, loop);
}

static void
test_up_once_and_resyncs(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_init(&f, &loop);
  rp_watch_start(f.w);
  assert_int_equal(f.connects, 1);
  assert_int_equal(f.streams, 0);
  /* Not up before the first list: a resync asks for nothing. */
  rp_watch_resync(f.w);
  answer_connect(&f, NULL);
  /* The stream first, then the list. */
  assert_int_equal(f.streams, 1);
  assert_int_equal(f.lists, 1);
  assert_true(rp_watch_listing(f.w));
  rp_watch_resync(f.w);
  assert_int_equal(f.lists, 1);
  /* Events during the list: handed back after it, once per workload. */
  assert_true(rp_watch_touch(f.w, "a", "start"));
  assert_true(rp_watch_touch(f.w, "b", "start"));
  assert_true(rp_watch_touch(f.w, "a", "die"));
  rp_watch_listed(f.w, NULL, 3);
  assert_string_equal(f.rechecked, "a=die b=start ");
  assert_int_equal(f.listed, 1);
  assert_int_equal(f.listed_n, 3);
  assert_int_equal(f.ups, 1);
  assert_int_equal(f.after_ok, 1);
  assert_true(rp_watch_up(f.w));
  assert_int_equal(f.lists, 1); /* the resync while not up was dropped */
  /* Resyncs during a list make one more list after it, not one each. */
  rp_watch_resync(f.w);
  assert_int_equal(f.lists, 2);
  rp_watch_resync(f.w);
  rp_watch_resync(f.w);
  assert_int_equal(f.lists, 2);
  rp_watch_listed(f.w, NULL, 2);
  assert_int_equal(f.lists, 3);
  assert_int_equal(f.ups, 1); /* up is said once */
  /* Outside a list an event is the provider's alone. */
  rp_watch_listed(f.w, NULL, 2);
  assert_false(rp_watch_touch(f.w, "c", "start"));
  /* A resync that fails keeps what was known: still up, nothing said; what
   * came during it is not looked at (the next list will). */
  rp_watch_resync(f.w);
  assert_true(rp_watch_touch(f.w, "d", "start"));
  rp_watch_list_failed(f.w, "list containers: the answer is not JSON");
  assert_string_equal(f.rechecked, "a=die b=start ");
  assert_int_equal(f.after_failed, 1);
  assert_true(rp_watch_up(f.w));
  assert_int_equal(f.downs, 0);
  assert_int_equal(rp_watch_retry_ms(f.w), 0);
  until_streaming(&f, &loop);
  stop_and_close(&f, &loop);
  assert_int_equal(f.stream_ends, 1); /* cancelled by the stop */
  assert_int_equal(f.downs, 0);       /* a stop is not a failure */
}

static void
test_backoff_doubles_and_resets(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_init(&f, &loop);
  f.fail_connect = true;
  rp_watch_start(f.w);
  assert_int_equal(f.downs, 1);
  assert_string_equal(f.down_reason, "connection refused");
  assert_int_equal(rp_watch_retry_ms(f.w), RP_WATCH_BACKOFF_MIN_MS);
  /* The timer connects again; that fails too: twice the delay. */
  while (f.connects < 2)
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(f.downs, 2);
  assert_int_equal(rp_watch_retry_ms(f.w), 2 * RP_WATCH_BACKOFF_MIN_MS);
  /* The next connect answers, but the first list fails: a reconnect, and
   * the stream is dropped by the loop itself, which says so once, with the
   * list's reason (not "cancelled"), and doubles the delay once. */
  f.fail_connect = false;
  while (f.connects < 3)
    uv_run(&loop, UV_RUN_ONCE);
  answer_connect(&f, NULL);
  assert_int_equal(f.lists, 1);
  until_streaming(&f, &loop);
  rp_watch_list_failed(f.w, "list containers: 500 Internal Server Error");
  assert_int_equal(f.stream_ends, 1);
  assert_int_equal(f.after_failed, 1);
  assert_int_equal(f.downs, 3);
  assert_string_equal(f.down_reason,
                      "list containers: 500 Internal Server Error");
  assert_int_equal(rp_watch_retry_ms(f.w), 4 * RP_WATCH_BACKOFF_MIN_MS);
  silent_hang_up(&f.peer);
  /* The next connect lists well: up, and the next failure (the engine
   * hangs up the stream) waits the least again. */
  while (f.connects < 4)
    uv_run(&loop, UV_RUN_ONCE);
  answer_connect(&f, NULL);
  rp_watch_listed(f.w, NULL, 0);
  assert_int_equal(f.ups, 1);
  assert_true(rp_watch_up(f.w));
  assert_int_equal(rp_watch_retry_ms(f.w), 0);
  until_streaming(&f, &loop);
  silent_hang_up(&f.peer);
  while (f.stream_ends < 2)
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(f.downs, 4);
  assert_false(rp_watch_up(f.w));
  assert_int_equal(rp_watch_retry_ms(f.w), RP_WATCH_BACKOFF_MIN_MS);
  /* A connect that answers "not one I can watch": down with its reason. */
  while (f.connects < 5)
    uv_run(&loop, UV_RUN_ONCE);
  answer_connect(&f, "the engine is not part of a swarm");
  assert_int_equal(f.downs, 5);
  assert_string_equal(f.down_reason, "the engine is not part of a swarm");
  assert_int_equal(rp_watch_retry_ms(f.w), 2 * RP_WATCH_BACKOFF_MIN_MS);
  stop_and_close(&f, &loop);
  assert_int_equal(f.connects, 5); /* the pending reconnect never ran */
  assert_int_equal(f.streams, 2);
}

static void
test_stop_waits_for_calls(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct fake f;
  fake_init(&f, &loop);
  rp_watch_start(f.w);
  rp_watch_stop(f.w);
  uv_run(&loop, UV_RUN_NOWAIT); /* the timer closes */
  /* The connect call is still in flight. */
  assert_false(rp_watch_idle(f.w));
  int checks = f.stop_checks;
  answer_connect(&f, NULL);
  assert_true(f.stop_checks > checks);
  assert_true(rp_watch_idle(f.w));
  /* Its answer came after the stop: nothing more was asked or said. */
  assert_int_equal(f.streams, 0);
  assert_int_equal(f.downs, 0);
  rp_watch_resync(f.w);
  assert_int_equal(f.lists, 0);
  close_all(&f, &loop);
}

int
main(void)
{
  rp_log_setup(false, RP_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_up_once_and_resyncs),
      cmocka_unit_test(test_backoff_doubles_and_resets),
      cmocka_unit_test(test_stop_waits_for_calls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
