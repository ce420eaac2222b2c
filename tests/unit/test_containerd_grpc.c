/* The containerd provider's pure parts: gRPC framing split anywhere, status
 * from trailers and trailers-only answers in words, configuration checks
 * (namespaces, endpoint), workload ids, process start times from
 * /proc/PID/stat, image chain ids and stop signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "containerd/containerd.h"
#include "error.h"
#include "util.h"

/* --- framing ------------------------------------------------------------- */

struct got {
  char msgs[8][64];
  size_t lens[8];
  int n;
  int stop_after; /* 0: never */
};

static int
collect_cb(void *arg, const uint8_t *msg, size_t len)
{
  struct got *g = arg;
  assert_true(g->n < 8);
  assert_true(len < sizeof(g->msgs[0]));
  memcpy(g->msgs[g->n], msg, len);
  g->lens[g->n] = len;
  g->n++;
  return g->stop_after && g->n >= g->stop_after;
}

static size_t
frame(uint8_t *out, const char *msg)
{
  size_t n = strlen(msg);
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  out[3] = (uint8_t)(n >> 8);
  out[4] = (uint8_t)n;
  memcpy(out + 5, msg, n);
  return n + 5;
}

/* Three messages (one empty) fed in two chunks split at every possible
 * offset: always the same three messages, whole and in order. */
static void
test_frames_split_anywhere(void **state)
{
  (void)state;
  uint8_t buf[128];
  size_t n = frame(buf, "hello");
  n += frame(buf + n, "");
  n += frame(buf + n, "a longer second message");
  for (size_t cut = 0; cut <= n; cut++) {
    struct rp_grpc_frames f;
    rp_grpc_frames_init(&f, 0);
    struct got g = {0};
    struct rp_error *err = NULL;
    assert_int_equal(rp_grpc_frames_feed(&f, buf, cut, collect_cb, &g, &err),
                     0);
    assert_int_equal(
        rp_grpc_frames_feed(&f, buf + cut, n - cut, collect_cb, &g, &err), 0);
    assert_null(err);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.lens[0], 5);
    assert_memory_equal(g.msgs[0], "hello", 5);
    assert_int_equal(g.lens[1], 0);
    assert_int_equal(g.lens[2], strlen("a longer second message"));
    assert_false(rp_grpc_frames_partial(&f));
    rp_grpc_frames_clear(&f);
  }
}

static void
test_frames_byte_by_byte_and_partial(void **state)
{
  (void)state;
  uint8_t buf[64];
  size_t n = frame(buf, "xyz");
  struct rp_grpc_frames f;
  rp_grpc_frames_init(&f, 0);
  struct got g = {0};
  struct rp_error *err = NULL;
  for (size_t i = 0; i + 1 < n; i++) {
    assert_int_equal(rp_grpc_frames_feed(&f, buf + i, 1, collect_cb, &g, &err),
                     0);
    assert_int_equal(g.n, 0);
    assert_true(rp_grpc_frames_partial(&f));
  }
  assert_int_equal(
      rp_grpc_frames_feed(&f, buf + n - 1, 1, collect_cb, &g, &err), 0);
  assert_int_equal(g.n, 1);
  assert_memory_equal(g.msgs[0], "xyz", 3);
  assert_false(rp_grpc_frames_partial(&f));
  rp_grpc_frames_clear(&f);
}

static void
test_frames_stop_compressed_and_oversized(void **state)
{
  (void)state;
  uint8_t buf[64];
  size_t n = frame(buf, "one");
  n += frame(buf + n, "two");
  struct rp_grpc_frames f;
  struct rp_error *err = NULL;

  /* The consumer stops after the first: the second is not delivered. */
  rp_grpc_frames_init(&f, 0);
  struct got g = {.stop_after = 1};
  assert_int_equal(rp_grpc_frames_feed(&f, buf, n, collect_cb, &g, &err), 1);
  assert_int_equal(g.n, 1);
  rp_grpc_frames_clear(&f);

  /* A compressed message (flag 1) is refused with a reason. */
  rp_grpc_frames_init(&f, 0);
  struct got g2 = {0};
  buf[0] = 1;
  assert_int_equal(rp_grpc_frames_feed(&f, buf, n, collect_cb, &g2, &err), -1);
  assert_non_null(err);
  assert_int_equal(err->code, RP_EPROTO);
  assert_non_null(strstr(err->message, "compressed"));
  assert_int_equal(g2.n, 0);
  rp_error_free(err);
  err = NULL;
  rp_grpc_frames_clear(&f);

  /* Over the cap: refused from the header alone, before the bytes. */
  rp_grpc_frames_init(&f, 8);
  struct got g3 = {0};
  uint8_t big[5] = {0, 0, 0, 0, 9};
  assert_int_equal(rp_grpc_frames_feed(&f, big, 5, collect_cb, &g3, &err), -1);
  assert_non_null(strstr(err->message, "over the limit"));
  rp_error_free(err);
  rp_grpc_frames_clear(&f);
}

static void
test_frame_pack_roundtrip(void **state)
{
  (void)state;
  Rpctrd__KillRequest req;
  rpctrd__kill_request__init(&req);
  req.container_id = rp_ctrd_str("web-1");
  req.signal = SIGTERM;
  req.all = 1;
  size_t len;
  uint8_t *buf = rp_grpc_frame_pack(&req.base, &len);
  assert_int_equal(buf[0], 0);
  size_t body = (size_t)buf[1] << 24 | (size_t)buf[2] << 16 |
                (size_t)buf[3] << 8 | buf[4];
  assert_int_equal(body + 5, len);
  Rpctrd__KillRequest *back = rpctrd__kill_request__unpack(NULL, body, buf + 5);
  assert_non_null(back);
  assert_string_equal(back->container_id, "web-1");
  assert_int_equal(back->signal, SIGTERM);
  assert_true(back->all);
  rpctrd__kill_request__free_unpacked(back, NULL);
  free(buf);
}

/* --- status -------------------------------------------------------------- */

static void
feed_lines(struct rp_grpc_status *s, const char *const *lines)
{
  for (; *lines; lines++)
    rp_grpc_status_header(s, *lines, strlen(*lines));
}

static void
test_status_from_trailers(void **state)
{
  (void)state;
  static const char *const ok[] = {"HTTP/2 200",
                                   "content-type: application/grpc",
                                   "grpc-status: 0", "grpc-message: ", NULL};
  struct rp_grpc_status s = {0};
  struct rp_error *err = NULL;
  feed_lines(&s, ok);
  assert_int_equal(rp_grpc_status_check(
                       &s, "/containerd.services.tasks.v1.Tasks/Kill", &err),
                   0);
  assert_null(err);
  rp_grpc_status_clear(&s);

  /* An error in the trailers, its message percent-encoded. */
  static const char *const nf[] = {
      "HTTP/2 200", "content-type: application/grpc", "Grpc-Status: 5",
      "grpc-message: container %22x%22 not found%3A gone 100%", NULL};
  feed_lines(&s, nf);
  assert_int_equal(rp_grpc_status_check(
                       &s, "/containerd.services.tasks.v1.Tasks/Kill", &err),
                   -1);
  assert_int_equal(err->code, RP_ENOTFOUND);
  assert_string_equal(err->message, "containerd: Tasks.Kill: NotFound: "
                                    "container \"x\" not found: gone 100%");
  rp_error_free(err);
  err = NULL;
  rp_grpc_status_clear(&s);
}

static void
test_status_trailers_only_and_oddities(void **state)
{
  (void)state;
  struct rp_grpc_status s = {0};
  struct rp_error *err = NULL;
  /* Trailers-only: the status comes in the first (and only) header block. */
  static const char *const only[] = {
      "HTTP/2 200", "content-type: application/grpc", "grpc-status: 9",
      "grpc-message: namespace is required: failed precondition", NULL};
  feed_lines(&s, only);
  assert_int_equal(
      rp_grpc_status_check(
          &s, "/containerd.services.containers.v1.Containers/List", &err),
      -1);
  assert_int_equal(err->code, RP_EENGINE);
  assert_string_equal(err->message,
                      "containerd: Containers.List: FailedPrecondition: "
                      "namespace is required: failed precondition");
  rp_error_free(err);
  err = NULL;
  rp_grpc_status_clear(&s);

  static const char *const codes[] = {"HTTP/2 200", "grpc-status: 6", NULL};
  feed_lines(&s, codes);
  assert_int_equal(rp_grpc_status_check(&s, "/a.b.Snapshots/Prepare", &err),
                   -1);
  assert_int_equal(err->code, RP_ECONFLICT);
  assert_string_equal(err->message,
                      "containerd: Snapshots.Prepare: AlreadyExists");
  rp_error_free(err);
  err = NULL;
  rp_grpc_status_clear(&s);

  /* A code gRPC does not define is said as a number. */
  static const char *const odd[] = {"HTTP/2 200", "grpc-status: 77", NULL};
  feed_lines(&s, odd);
  assert_int_equal(rp_grpc_status_check(&s, "/x.y.Z/M", &err), -1);
  assert_string_equal(err->message, "containerd: Z.M: code 77");
  rp_error_free(err);
  err = NULL;
  rp_grpc_status_clear(&s);

  /* Not gRPC at all: an HTTP error, or 200 without a status. */
  static const char *const http[] = {"HTTP/2 404", NULL};
  feed_lines(&s, http);
  assert_int_equal(rp_grpc_status_check(&s, "/x.y.Z/M", &err), -1);
  assert_int_equal(err->code, RP_EPROTO);
  assert_non_null(strstr(err->message, "HTTP status 404"));
  rp_error_free(err);
  err = NULL;
  rp_grpc_status_clear(&s);
  static const char *const none[] = {"HTTP/2 200", NULL};
  feed_lines(&s, none);
  assert_int_equal(rp_grpc_status_check(&s, "/x.y.Z/M", &err), -1);
  assert_non_null(strstr(err->message, "no grpc-status"));
  rp_error_free(err);
  rp_grpc_status_clear(&s);
}

static void
test_code_names_and_percent(void **state)
{
  (void)state;
  assert_string_equal(rp_grpc_code_name(5), "NotFound");
  assert_string_equal(rp_grpc_code_name(14), "Unavailable");
  assert_null(rp_grpc_code_name(17));
  assert_null(rp_grpc_code_name(-1));
  assert_int_equal(rp_grpc_code_error(4), RP_ETIMEOUT);
  assert_int_equal(rp_grpc_code_error(1), RP_ECANCELED);
  char *s = rp_grpc_percent_decode("a%20b%zz%4", 10);
  assert_string_equal(s, "a b%zz%4");
  free(s);
  char buf[64];
  assert_string_equal(
      rp_grpc_short_method("/containerd.services.events.v1.Events/Subscribe",
                           buf, sizeof(buf)),
      "Events.Subscribe");
}

/* --- configuration ------------------------------------------------------- */

static void
test_namespaces(void **state)
{
  (void)state;
  char **v = NULL;
  struct rp_error *err = NULL;
  assert_int_equal(rp_ctrd_namespaces(NULL, false, &v, &err), 0);
  assert_string_equal(v[0], "default");
  assert_null(v[1]);
  for (char **p = v; *p; p++)
    free(*p);
  free(v);

  char a[] = "default", b[] = "k8s.io";
  char *with_k8s[] = {a, b, NULL};
  assert_int_equal(rp_ctrd_namespaces(with_k8s, false, &v, &err), -1);
  assert_int_equal(err->code, RP_ECONFIG);
  assert_non_null(strstr(err->message, "k8s.io belongs to the kubelet"));
  assert_non_null(strstr(err->message, "allow_kubernetes: true"));
  rp_error_free(err);
  err = NULL;
  assert_int_equal(rp_ctrd_namespaces(with_k8s, true, &v, &err), 0);
  assert_string_equal(v[1], "k8s.io");
  for (char **p = v; *p; p++)
    free(*p);
  free(v);

  char bad[] = "no/slash";
  char *invalid[] = {bad, NULL};
  assert_int_equal(rp_ctrd_namespaces(invalid, false, &v, &err), -1);
  assert_non_null(strstr(err->message, "not a containerd namespace"));
  rp_error_free(err);
  err = NULL;
  char *twice[] = {a, a, NULL};
  assert_int_equal(rp_ctrd_namespaces(twice, false, &v, &err), -1);
  assert_non_null(strstr(err->message, "listed twice"));
  rp_error_free(err);
}

static void
test_endpoint(void **state)
{
  (void)state;
  struct rp_http_endpoint ep = {0};
  struct rp_error *err = NULL;
  assert_int_equal(rp_ctrd_endpoint_parse(NULL, &ep, &err), 0);
  assert_string_equal(ep.unix_socket, "/run/containerd/containerd.sock");
  assert_true(ep.http2_prior_knowledge);
  assert_true(ep.own_connection);
  /* Not docker's "localhost": libcurl must never mix their connections. */
  assert_string_equal(ep.base_url, "http://containerd");
  rp_http_endpoint_clear(&ep);
  assert_int_equal(rp_ctrd_endpoint_parse("/tmp/c.sock", &ep, &err), 0);
  assert_string_equal(ep.unix_socket, "/tmp/c.sock");
  rp_http_endpoint_clear(&ep);
  assert_int_equal(rp_ctrd_endpoint_parse("tcp://h:1", &ep, &err), -1);
  assert_int_equal(err->code, RP_ECONFIG);
  assert_non_null(strstr(err->message, "unix socket"));
  rp_error_free(err);
  err = NULL;
  assert_int_equal(rp_ctrd_endpoint_parse("unix://rel.sock", &ep, &err), -1);
  assert_non_null(strstr(err->message, "absolute"));
  rp_error_free(err);
}

static void
test_split_id(void **state)
{
  (void)state;
  char ns[16];
  const char *cid;
  assert_int_equal(rp_ctrd_split_id("default/web-1", ns, sizeof(ns), &cid), 0);
  assert_string_equal(ns, "default");
  assert_string_equal(cid, "web-1");
  assert_int_equal(rp_ctrd_split_id("web-1", ns, sizeof(ns), &cid), -1);
  assert_int_equal(rp_ctrd_split_id("/web", ns, sizeof(ns), &cid), -1);
  assert_int_equal(rp_ctrd_split_id("ns/", ns, sizeof(ns), &cid), -1);
  assert_int_equal(
      rp_ctrd_split_id("a-very-long-namespace/x", ns, sizeof(ns), &cid), -1);
}

/* --- start times --------------------------------------------------------- */

static void
test_stat_starttime(void **state)
{
  (void)state;
  /* Field 22 is 777; the command name holds spaces and a ") (". */
  const char *stat = "1234 (evil) (name x) S 1 1234 1234 0 -1 4194560 100 0 "
                     "0 0 5 6 0 0 20 0 1 0 777 1000000 200 18446744073709551"
                     "615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
  assert_int_equal(rp_ctrd_stat_starttime(stat, strlen(stat)), 777);
  const char *cut = "1 (sh) S 0 1 1 0 -1 4194560 100";
  assert_int_equal(rp_ctrd_stat_starttime(cut, strlen(cut)), -1);
  assert_int_equal(rp_ctrd_stat_starttime("garbage", 7), -1);
}

/* Our own process: its start time from /proc is in the past and not before
 * the machine booted; a pid that cannot exist gives -1; a fake /proc gives
 * exactly btime + ticks / HZ. */
static void
test_process_start(void **state)
{
  (void)state;
  int64_t me = rp_ctrd_process_start_ms("/proc", (uint32_t)getpid());
  assert_true(me > 0);
  assert_true(me <= rp_wall_ms() + 1000);
  assert_int_equal(rp_ctrd_process_start_ms("/proc", 0), -1);
  assert_int_equal(rp_ctrd_process_start_ms("/nonexistent", 1), -1);

  char dir[] = "/tmp/rp-proc-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof(path), "%s/stat", dir);
  FILE *f = fopen(path, "w");
  fputs("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n", f);
  fclose(f);
  snprintf(path, sizeof(path), "%s/42", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/42/stat", dir);
  f = fopen(path, "w");
  long hz = sysconf(_SC_CLK_TCK);
  fprintf(f, "42 (sleep) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %ld 0 0\n",
          hz * 90);
  fclose(f);
  assert_int_equal(rp_ctrd_process_start_ms(dir, 42),
                   (int64_t)1700000000 * 1000 + 90000);
  unlink(path);
  snprintf(path, sizeof(path), "%s/42", dir);
  rmdir(path);
  snprintf(path, sizeof(path), "%s/stat", dir);
  unlink(path);
  rmdir(dir);
}

/* --- images and signals -------------------------------------------------- */

static void
test_chain_id(void **state)
{
  (void)state;
  /* reaper-test/sleeper:1's two layers and the chain id containerd gave
   * its unpacked snapshot. */
  const char *ids[] = {
      "sha256:8d5c9d6f9a7639dbf0af6a0e62e0d1ab41c5b175ff0b8d921ae9f1d3e841ad95",
      "sha256:"
      "6a46198cbb101cc8e6ad3c3f4294c699329e97cd49f36cedd0bccc5f20873a13"};
  char *c = rp_ctrd_chain_id(ids, 2);
  assert_string_equal(
      c, "sha256:"
         "a1490bbc75728207061a750d403164170a579b9297316827f1b752fdebd034f7");
  free(c);
  c = rp_ctrd_chain_id(ids, 1);
  assert_string_equal(c, ids[0]);
  free(c);
  assert_null(rp_ctrd_chain_id(ids, 0));
}

static void
test_index_pick(void **state)
{
  (void)state;
  json_t *idx =
      json_loads("{\"manifests\":["
                 "{\"digest\":\"sha256:arm\",\"platform\":{\"os\":\"linux\","
                 "\"architecture\":\"arm64\"}},"
                 "{\"digest\":\"sha256:amd\",\"platform\":{\"os\":\"linux\","
                 "\"architecture\":\"amd64\"}}]}",
                 0, NULL);
  assert_string_equal(rp_ctrd_index_pick(idx, "linux", "amd64"), "sha256:amd");
  assert_string_equal(rp_ctrd_index_pick(idx, "linux", "arm64"), "sha256:arm");
  assert_null(rp_ctrd_index_pick(idx, "linux", "s390x"));
  json_decref(idx);
  idx = json_loads("{\"manifests\":[{\"digest\":\"sha256:only\"}]}", 0, NULL);
  assert_string_equal(rp_ctrd_index_pick(idx, "linux", "amd64"), "sha256:only");
  json_decref(idx);
}

static void
test_stop_signal(void **state)
{
  (void)state;
  assert_int_equal(rp_ctrd_signal_parse("SIGQUIT"), SIGQUIT);
  assert_int_equal(rp_ctrd_signal_parse("usr1"), SIGUSR1);
  assert_int_equal(rp_ctrd_signal_parse("9"), 9);
  assert_int_equal(rp_ctrd_signal_parse("SIGNOPE"), -1);
  assert_int_equal(rp_ctrd_signal_parse("999"), -1);
  assert_int_equal(rp_ctrd_signal_parse(""), -1);

  json_t *labels =
      json_pack("{s:s}", "io.containerd.image.config.stop-signal", "SIGINT");
  json_t *spec = json_pack("{s:{s:s}}", "annotations",
                           "io.containerd.image.config.stop-signal", "SIGUSR2");
  assert_int_equal(rp_ctrd_stop_signal(labels, spec), SIGINT);
  assert_int_equal(rp_ctrd_stop_signal(NULL, spec), SIGUSR2);
  assert_int_equal(rp_ctrd_stop_signal(NULL, NULL), SIGTERM);
  json_object_set_new(labels, "io.containerd.image.config.stop-signal",
                      json_string("bogus"));
  assert_int_equal(rp_ctrd_stop_signal(labels, NULL), SIGTERM);
  json_decref(labels);
  json_decref(spec);
}

/* --- events -------------------------------------------------------------- */

/* Envelopes as containerd 1.6.20 sent them for `ctr run -d ... web`, `ctr
 * task exec --exec-id e1 web true`, `ctr task kill -s 9 web`, `ctr task rm
 * web`, `ctr c rm web` in namespace reaper-test. */
static const uint8_t ev_task_create[] = {
    0x0a, 0x0b, 0x08, 0x92, 0x81, 0xb4, 0xd8, 0x06, 0x10, 0xdd, 0xf5, 0xf8,
    0x09, 0x12, 0x0b, 0x72, 0x65, 0x61, 0x70, 0x65, 0x72, 0x2d, 0x74, 0x65,
    0x73, 0x74, 0x1a, 0x0d, 0x2f, 0x74, 0x61, 0x73, 0x6b, 0x73, 0x2f, 0x63,
    0x72, 0x65, 0x61, 0x74, 0x65, 0x22, 0xd3, 0x03, 0x0a, 0x1c, 0x63, 0x6f,
    0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x65, 0x76, 0x65,
    0x6e, 0x74, 0x73, 0x2e, 0x54, 0x61, 0x73, 0x6b, 0x43, 0x72, 0x65, 0x61,
    0x74, 0x65, 0x12, 0xb2, 0x03, 0x0a, 0x03, 0x77, 0x65, 0x62, 0x12, 0x41,
    0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x63, 0x74, 0x72, 0x64, 0x65, 0x76, 0x2f,
    0x63, 0x2f, 0x73, 0x74, 0x61, 0x74, 0x65, 0x2f, 0x69, 0x6f, 0x2e, 0x63,
    0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x72, 0x75,
    0x6e, 0x74, 0x69, 0x6d, 0x65, 0x2e, 0x76, 0x32, 0x2e, 0x74, 0x61, 0x73,
    0x6b, 0x2f, 0x72, 0x65, 0x61, 0x70, 0x65, 0x72, 0x2d, 0x74, 0x65, 0x73,
    0x74, 0x2f, 0x77, 0x65, 0x62, 0x1a, 0xe1, 0x02, 0x0a, 0x07, 0x6f, 0x76,
    0x65, 0x72, 0x6c, 0x61, 0x79, 0x12, 0x07, 0x6f, 0x76, 0x65, 0x72, 0x6c,
    0x61, 0x79, 0x22, 0x09, 0x69, 0x6e, 0x64, 0x65, 0x78, 0x3d, 0x6f, 0x66,
    0x66, 0x22, 0x52, 0x77, 0x6f, 0x72, 0x6b, 0x64, 0x69, 0x72, 0x3d, 0x2f,
    0x74, 0x6d, 0x70, 0x2f, 0x63, 0x74, 0x72, 0x64, 0x65, 0x76, 0x2f, 0x63,
    0x2f, 0x72, 0x6f, 0x6f, 0x74, 0x2f, 0x69, 0x6f, 0x2e, 0x63, 0x6f, 0x6e,
    0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x73, 0x6e, 0x61, 0x70,
    0x73, 0x68, 0x6f, 0x74, 0x74, 0x65, 0x72, 0x2e, 0x76, 0x31, 0x2e, 0x6f,
    0x76, 0x65, 0x72, 0x6c, 0x61, 0x79, 0x66, 0x73, 0x2f, 0x73, 0x6e, 0x61,
    0x70, 0x73, 0x68, 0x6f, 0x74, 0x73, 0x2f, 0x39, 0x2f, 0x77, 0x6f, 0x72,
    0x6b, 0x22, 0x51, 0x75, 0x70, 0x70, 0x65, 0x72, 0x64, 0x69, 0x72, 0x3d,
    0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x63, 0x74, 0x72, 0x64, 0x65, 0x76, 0x2f,
    0x63, 0x2f, 0x72, 0x6f, 0x6f, 0x74, 0x2f, 0x69, 0x6f, 0x2e, 0x63, 0x6f,
    0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x73, 0x6e, 0x61,
    0x70, 0x73, 0x68, 0x6f, 0x74, 0x74, 0x65, 0x72, 0x2e, 0x76, 0x31, 0x2e,
    0x6f, 0x76, 0x65, 0x72, 0x6c, 0x61, 0x79, 0x66, 0x73, 0x2f, 0x73, 0x6e,
    0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x73, 0x2f, 0x39, 0x2f, 0x66, 0x73,
    0x22, 0x9a, 0x01, 0x6c, 0x6f, 0x77, 0x65, 0x72, 0x64, 0x69, 0x72, 0x3d,
    0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x63, 0x74, 0x72, 0x64, 0x65, 0x76, 0x2f,
    0x63, 0x2f, 0x72, 0x6f, 0x6f, 0x74, 0x2f, 0x69, 0x6f, 0x2e, 0x63, 0x6f,
    0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x73, 0x6e, 0x61,
    0x70, 0x73, 0x68, 0x6f, 0x74, 0x74, 0x65, 0x72, 0x2e, 0x76, 0x31, 0x2e,
    0x6f, 0x76, 0x65, 0x72, 0x6c, 0x61, 0x79, 0x66, 0x73, 0x2f, 0x73, 0x6e,
    0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x73, 0x2f, 0x32, 0x2f, 0x66, 0x73,
    0x3a, 0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x63, 0x74, 0x72, 0x64, 0x65, 0x76,
    0x2f, 0x63, 0x2f, 0x72, 0x6f, 0x6f, 0x74, 0x2f, 0x69, 0x6f, 0x2e, 0x63,
    0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x73, 0x6e,
    0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x74, 0x65, 0x72, 0x2e, 0x76, 0x31,
    0x2e, 0x6f, 0x76, 0x65, 0x72, 0x6c, 0x61, 0x79, 0x66, 0x73, 0x2f, 0x73,
    0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x73, 0x2f, 0x31, 0x2f, 0x66,
    0x73, 0x22, 0x00, 0x30, 0x9b, 0xac, 0x01,
};
static const uint8_t ev_task_start[] = {
    0x0a, 0x0b, 0x08, 0x92, 0x81, 0xb4, 0xd8, 0x06, 0x10, 0xd6, 0xf5, 0xf0,
    0x26, 0x12, 0x0b, 0x72, 0x65, 0x61, 0x70, 0x65, 0x72, 0x2d, 0x74, 0x65,
    0x73, 0x74, 0x1a, 0x0c, 0x2f, 0x74, 0x61, 0x73, 0x6b, 0x73, 0x2f, 0x73,
    0x74, 0x61, 0x72, 0x74, 0x22, 0x28, 0x0a, 0x1b, 0x63, 0x6f, 0x6e, 0x74,
    0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x65, 0x76, 0x65, 0x6e, 0x74,
    0x73, 0x2e, 0x54, 0x61, 0x73, 0x6b, 0x53, 0x74, 0x61, 0x72, 0x74, 0x12,
    0x09, 0x0a, 0x03, 0x77, 0x65, 0x62, 0x10, 0x9b, 0xac, 0x01,
};
static const uint8_t ev_exit_a[] = {
    0x0a, 0x0b, 0x08, 0x93, 0x81, 0xb4, 0xd8, 0x06, 0x10, 0xa9, 0x9d,
    0x8a, 0x18, 0x12, 0x0b, 0x72, 0x65, 0x61, 0x70, 0x65, 0x72, 0x2d,
    0x74, 0x65, 0x73, 0x74, 0x1a, 0x0b, 0x2f, 0x74, 0x61, 0x73, 0x6b,
    0x73, 0x2f, 0x65, 0x78, 0x69, 0x74, 0x22, 0x38, 0x0a, 0x1a, 0x63,
    0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x65,
    0x76, 0x65, 0x6e, 0x74, 0x73, 0x2e, 0x54, 0x61, 0x73, 0x6b, 0x45,
    0x78, 0x69, 0x74, 0x12, 0x1a, 0x0a, 0x03, 0x77, 0x65, 0x62, 0x12,
    0x02, 0x65, 0x31, 0x18, 0xd7, 0xac, 0x01, 0x2a, 0x0b, 0x08, 0x93,
    0x81, 0xb4, 0xd8, 0x06, 0x10, 0xba, 0xf1, 0xc4, 0x17,
};
static const uint8_t ev_exit_b[] = {
    0x0a, 0x0c, 0x08, 0x93, 0x81, 0xb4, 0xd8, 0x06, 0x10, 0xc7, 0xc8, 0xeb,
    0x83, 0x03, 0x12, 0x0b, 0x72, 0x65, 0x61, 0x70, 0x65, 0x72, 0x2d, 0x74,
    0x65, 0x73, 0x74, 0x1a, 0x0b, 0x2f, 0x74, 0x61, 0x73, 0x6b, 0x73, 0x2f,
    0x65, 0x78, 0x69, 0x74, 0x22, 0x3d, 0x0a, 0x1a, 0x63, 0x6f, 0x6e, 0x74,
    0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x65, 0x76, 0x65, 0x6e, 0x74,
    0x73, 0x2e, 0x54, 0x61, 0x73, 0x6b, 0x45, 0x78, 0x69, 0x74, 0x12, 0x1f,
    0x0a, 0x03, 0x77, 0x65, 0x62, 0x12, 0x03, 0x77, 0x65, 0x62, 0x18, 0x9b,
    0xac, 0x01, 0x20, 0x89, 0x01, 0x2a, 0x0c, 0x08, 0x93, 0x81, 0xb4, 0xd8,
    0x06, 0x10, 0xb6, 0xed, 0xe4, 0x83, 0x03,
};
static const uint8_t ev_task_delete[] = {
    0x0a, 0x0b, 0x08, 0x95, 0x81, 0xb4, 0xd8, 0x06, 0x10, 0x86, 0xc9, 0x88,
    0x03, 0x12, 0x0b, 0x72, 0x65, 0x61, 0x70, 0x65, 0x72, 0x2d, 0x74, 0x65,
    0x73, 0x74, 0x1a, 0x0d, 0x2f, 0x74, 0x61, 0x73, 0x6b, 0x73, 0x2f, 0x64,
    0x65, 0x6c, 0x65, 0x74, 0x65, 0x22, 0x3a, 0x0a, 0x1c, 0x63, 0x6f, 0x6e,
    0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x65, 0x76, 0x65, 0x6e,
    0x74, 0x73, 0x2e, 0x54, 0x61, 0x73, 0x6b, 0x44, 0x65, 0x6c, 0x65, 0x74,
    0x65, 0x12, 0x1a, 0x0a, 0x03, 0x77, 0x65, 0x62, 0x10, 0x9b, 0xac, 0x01,
    0x18, 0x89, 0x01, 0x22, 0x0c, 0x08, 0x93, 0x81, 0xb4, 0xd8, 0x06, 0x10,
    0xb6, 0xed, 0xe4, 0x83, 0x03,
};
static const uint8_t ev_container_delete[] = {
    0x0a, 0x0c, 0x08, 0x95, 0x81, 0xb4, 0xd8, 0x06, 0x10, 0xb9, 0xd4, 0x98,
    0xbe, 0x01, 0x12, 0x0b, 0x72, 0x65, 0x61, 0x70, 0x65, 0x72, 0x2d, 0x74,
    0x65, 0x73, 0x74, 0x1a, 0x12, 0x2f, 0x63, 0x6f, 0x6e, 0x74, 0x61, 0x69,
    0x6e, 0x65, 0x72, 0x73, 0x2f, 0x64, 0x65, 0x6c, 0x65, 0x74, 0x65, 0x22,
    0x2a, 0x0a, 0x21, 0x63, 0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72,
    0x64, 0x2e, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x73, 0x2e, 0x43, 0x6f, 0x6e,
    0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x44, 0x65, 0x6c, 0x65, 0x74, 0x65,
    0x12, 0x05, 0x0a, 0x03, 0x77, 0x65, 0x62,
};

static void
test_event_decode(void **state)
{
  (void)state;
  struct rp_ctrd_event ev;
  assert_int_equal(
      rp_ctrd_event_decode(ev_task_start, sizeof(ev_task_start), &ev), 0);
  assert_int_equal(ev.kind, RP_CTRD_EVENT_START);
  assert_string_equal(ev.ns, "reaper-test");
  assert_string_equal(ev.container_id, "web");
  assert_string_equal(ev.topic, "/tasks/start");
  assert_true(ev.pid > 0);
  assert_true(ev.ts_ms > (int64_t)1700000000 * 1000);

  /* The exec'd process exiting changes nothing; the task's own does. */
  assert_int_equal(rp_ctrd_event_decode(ev_exit_a, sizeof(ev_exit_a), &ev), 0);
  assert_int_equal(ev.kind, RP_CTRD_EVENT_OTHER);
  assert_int_equal(rp_ctrd_event_decode(ev_exit_b, sizeof(ev_exit_b), &ev), 0);
  assert_int_equal(ev.kind, RP_CTRD_EVENT_GONE);
  assert_string_equal(ev.container_id, "web");

  assert_int_equal(
      rp_ctrd_event_decode(ev_task_delete, sizeof(ev_task_delete), &ev), 0);
  assert_int_equal(ev.kind, RP_CTRD_EVENT_GONE);
  assert_string_equal(ev.container_id, "web");
  assert_int_equal(rp_ctrd_event_decode(ev_container_delete,
                                        sizeof(ev_container_delete), &ev),
                   0);
  assert_int_equal(ev.kind, RP_CTRD_EVENT_GONE);
  assert_string_equal(ev.container_id, "web");
  assert_int_equal(
      rp_ctrd_event_decode(ev_task_create, sizeof(ev_task_create), &ev), 0);
  assert_int_equal(ev.kind, RP_CTRD_EVENT_OTHER);
  assert_string_equal(ev.topic, "/tasks/create");

  /* Not an envelope. */
  static const uint8_t junk[] = {0xff, 0xff, 0xff};
  assert_int_equal(rp_ctrd_event_decode(junk, sizeof(junk), &ev), -1);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frames_split_anywhere),
      cmocka_unit_test(test_frames_byte_by_byte_and_partial),
      cmocka_unit_test(test_frames_stop_compressed_and_oversized),
      cmocka_unit_test(test_frame_pack_roundtrip),
      cmocka_unit_test(test_status_from_trailers),
      cmocka_unit_test(test_status_trailers_only_and_oddities),
      cmocka_unit_test(test_code_names_and_percent),
      cmocka_unit_test(test_namespaces),
      cmocka_unit_test(test_endpoint),
      cmocka_unit_test(test_split_id),
      cmocka_unit_test(test_stat_starttime),
      cmocka_unit_test(test_process_start),
      cmocka_unit_test(test_chain_id),
      cmocka_unit_test(test_index_pick),
      cmocka_unit_test(test_stop_signal),
      cmocka_unit_test(test_event_decode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
