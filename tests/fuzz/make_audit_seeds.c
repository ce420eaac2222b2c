/* Writes the seed corpus of fuzz_audit_verify with the real writer
 * (audit.c), so that the fuzzer starts from logs as reaper writes them:
 *   make_audit_seeds DIR
 * plain.jsonl        agent.start, a recycle, agent.stop
 * torn-tail.jsonl    a crash mid-line, then the reopen that records it
 *                    (audit.torn) and goes on
 * short-write.jsonl  a write that left 30 bytes and failed, then the retry
 *                    (audit.torn, audit.resumed)
 * fsync-failed.jsonl a complete line whose fsync failed, then the retry
 * unterminated.jsonl a torn tail not yet repaired (verify refuses it) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "util.h"

static struct rp_audit *
open_log(const char *dir, const char *name)
{
  cleanup_free char *path = rp_xasprintf("%s/%s", dir, name);
  cleanup_free char *warning = NULL;
  cleanup_error struct rp_error *err = NULL;
  struct rp_audit *a = NULL;
  if (rp_audit_open(path, &a, &warning, &err) != 0) {
    fprintf(stderr, "make_audit_seeds: %s\n", err->message);
    exit(1);
  }
  return a;
}

static void
append(struct rp_audit *a, const char *event, json_t *fields, bool must)
{
  cleanup_error struct rp_error *err = NULL;
  int rc = rp_audit_append_sync(a, event, fields, &err);
  if (must && rc != 0) {
    fprintf(stderr, "make_audit_seeds: %s: %s\n", event, err->message);
    exit(1);
  }
}

/* What SPEC.md puts on every recycle.* line. */
static json_t *
recycle_fields(void)
{
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "provider", "local", "kind",
      "container", "id",
      "34228d9683e296177ae536be9096fc084abfe104333aced2e53570bbef64014f",
      "name", "web-1", "policy", "web", "started_at",
      "2026-11-24T21:09:18.123456789Z", "age_s", 7261, "max_age_s", 7200);
}

static void
recycle(struct rp_audit *a)
{
  cleanup_json json_t *begin = recycle_fields();
  append(a, "recycle.begin", begin, true);
  cleanup_json json_t *done = json_deep_copy(begin);
  json_object_set_new(
      done, "replacement_id",
      json_string("6a31e10054af4b51bc42965561bf8c973b1072c376087959383b580fa2"
                  "5238fd"));
  json_object_set_new(done, "duration_s", json_real(2.25));
  append(a, "recycle.done", done, true);
}

static void
start(struct rp_audit *a)
{
  cleanup_json json_t *f =
      json_pack("{s:s, s:i}", "version", "0.1.0", "pid", 4242);
  append(a, "agent.start", f, true);
}

static void
plain(const char *dir, const char *name)
{
  struct rp_audit *a = open_log(dir, name);
  start(a);
  recycle(a);
  append(a, "agent.stop", NULL, true);
  rp_audit_close(a);
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: make_audit_seeds DIR\n");
    return 2;
  }
  const char *dir = argv[1];

  plain(dir, "plain.jsonl");

  /* A crash in the middle of a line, then the next start. */
  plain(dir, "torn-tail.jsonl");
  cleanup_free char *torn = rp_xasprintf("%s/torn-tail.jsonl", dir);
  FILE *f = fopen(torn, "a");
  fputs("{\"ts\":\"2026-11-24T23:10:00.000000000Z\",\"seq\":5,\"event\":\"rec",
        f);
  fclose(f);
  struct rp_audit *a = open_log(dir, "torn-tail.jsonl");
  start(a);
  rp_audit_close(a);

  /* 30 bytes of a line reach the disk, then ENOSPC; the retry. */
  a = open_log(dir, "short-write.jsonl");
  start(a);
  rp_audit_inject_fault(a, ENOSPC, 30, false);
  cleanup_json json_t *lost = recycle_fields();
  append(a, "recycle.begin", lost, false);
  rp_audit_inject_fault(a, 0, 0, false);
  cleanup_error struct rp_error *err = NULL;
  if (rp_audit_retry_sync(a, &err) != 0) {
    fprintf(stderr, "make_audit_seeds: retry: %s\n", err->message);
    return 1;
  }
  recycle(a);
  rp_audit_close(a);

  /* A complete line whose fsync failed; the retry. */
  a = open_log(dir, "fsync-failed.jsonl");
  start(a);
  rp_audit_inject_fault(a, EIO, 0, true);
  append(a, "agent.stop", NULL, false);
  rp_audit_inject_fault(a, 0, 0, false);
  if (rp_audit_retry_sync(a, &err) != 0) {
    fprintf(stderr, "make_audit_seeds: retry: %s\n", err->message);
    return 1;
  }
  append(a, "agent.stop", NULL, true);
  rp_audit_close(a);

  /* Cut in the middle of its last line, as a crash leaves it. */
  plain(dir, "unterminated.jsonl");
  cleanup_free char *cut = rp_xasprintf("%s/unterminated.jsonl", dir);
  {
    cleanup_close int fd = open(cut, O_RDWR);
    off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
    if (size < 40 || ftruncate(fd, size - 40) != 0) {
      fprintf(stderr, "make_audit_seeds: truncate %s\n", cut);
      return 1;
    }
  }
  return 0;
}
