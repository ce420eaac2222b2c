/* The replace action runner (providers/swarm/spawn.c) on a real loop with
 * real programs: argv without a shell, only the environment given, output
 * captured and capped, exit statuses, a program that cannot run, and a
 * timeout that ends the program and what it started.  Every test ends with
 * a loop that closes with nothing left open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swarm/swarm.h"
#include "util.h"

struct outcome {
  int calls;
  int64_t exit_status;
  int term_signal;
  bool timed_out;
  bool truncated;
  char output[8192];
  int err_code;
  char err[512];
  int64_t duration_ms;
};

static void
done_cb(void *arg, const struct rp_swarm_spawn_result *r,
        const struct rp_error *err)
{
  struct outcome *o = arg;
  o->calls++;
  o->exit_status = r->exit_status;
  o->term_signal = r->term_signal;
  o->timed_out = r->timed_out;
  o->truncated = r->truncated;
  o->duration_ms = r->duration_ms;
  snprintf(o->output, sizeof(o->output), "%s", r->output);
  o->err_code = err ? err->code : 0;
  snprintf(o->err, sizeof(o->err), "%s", err ? err->message : "");
}

/* Runs argv to its end on a fresh loop, then checks the loop closes. */
static void
run(const char *const *argv, const char *const *env, int64_t timeout_ms,
    size_t max, struct outcome *o)
{
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(o, 0, sizeof(*o));
  struct rp_error *err = NULL;
  char **a = rp_swarm_strv_dup(argv), **e = rp_swarm_strv_dup(env);
  assert_int_equal(
      rp_swarm_spawn(&loop, a, e, timeout_ms, max, done_cb, o, &err), 0);
  assert_null(err);
  rp_swarm_strv_free(a);
  rp_swarm_strv_free(e);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(o->calls, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static const char *const base_env[] = {"PATH=/usr/bin:/bin",
                                       "REAPER_NODE_ID=n1",
                                       "REAPER_NODE_HOSTNAME=node1", NULL};

static void
test_argv_env_output(void **state)
{
  (void)state;
  struct outcome o;
  /* printf gets each argument as it is: no shell splits or expands them. */
  const char *const argv[] = {"/usr/bin/printf", "[%s]\\n", "a b",
                              "$HOME",           "*",       NULL};
  run(argv, base_env, 10000, 4096, &o);
  assert_int_equal(o.exit_status, 0);
  assert_string_equal(o.err, "");
  assert_string_equal(o.output, "[a b]\n[$HOME]\n[*]\n");

  /* The environment is exactly what was given; stderr is captured too;
   * the working directory is /. */
  const char *const sh[] = {"sh", "-c", "env | sort; pwd; echo oops >&2", NULL};
  run(sh, base_env, 10000, 4096, &o);
  assert_int_equal(o.exit_status, 0);
  assert_string_equal(o.output, "PATH=/usr/bin:/bin\n"
                                "PWD=/\n"
                                "REAPER_NODE_HOSTNAME=node1\n"
                                "REAPER_NODE_ID=n1\n"
                                "/\n"
                                "oops\n");
}

static void
test_failures(void **state)
{
  (void)state;
  struct outcome o;
  const char *const fails[] = {"/bin/sh", "-c", "echo no; exit 3", NULL};
  run(fails, base_env, 10000, 4096, &o);
  assert_int_equal(o.exit_status, 3);
  assert_int_equal(o.err_code, EIO);
  assert_non_null(strstr(o.err, "exit status 3"));
  assert_string_equal(o.output, "no\n");

  const char *const killed[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
  run(killed, base_env, 10000, 4096, &o);
  assert_int_equal(o.exit_status, -1);
  assert_int_equal(o.term_signal, SIGKILL);
  assert_non_null(strstr(o.err, "signal 9"));

  /* A program that does not exist: said through the callback. */
  const char *const missing[] = {"/nonexistent/replace-action", NULL};
  run(missing, base_env, 10000, 4096, &o);
  assert_int_equal(o.err_code, ENOENT);
  assert_non_null(strstr(o.err, "/nonexistent/replace-action"));
  assert_int_equal(o.exit_status, -1);

  /* Nothing to run at all: refused at once, no callback. */
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *empty[] = {NULL};
  struct rp_error *err = NULL;
  memset(&o, 0, sizeof(o));
  assert_int_equal(
      rp_swarm_spawn(&loop, empty, empty, 1000, 10, done_cb, &o, &err), -1);
  assert_non_null(err);
  rp_error_free(err);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(o.calls, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_output_cap(void **state)
{
  (void)state;
  struct outcome o;
  const char *const argv[] = {"/bin/sh", "-c",
                              "i=0; while [ $i -lt 1000 ]; do echo "
                              "0123456789; i=$((i+1)); done",
                              NULL};
  run(argv, base_env, 10000, 100, &o);
  assert_int_equal(o.exit_status, 0);
  assert_true(o.truncated);
  assert_int_equal(strlen(o.output), 100);
  assert_int_equal(strncmp(o.output, "0123456789\n0123456789\n", 22), 0);
}

static void
test_timeout_kills_the_group(void **state)
{
  (void)state;
  struct outcome o;
  char pidfile[] = "/tmp/rp-spawn-XXXXXX";
  int fd = mkstemp(pidfile);
  assert_true(fd >= 0);
  close(fd);
  char script[256];
  /* It starts a child that would outlive it, then hangs (and ignores
   * SIGTERM, so that SIGKILL has to come). */
  snprintf(script, sizeof(script),
           "trap '' TERM; sleep 300 & echo $! > %s; echo started; wait",
           pidfile);
  const char *const argv[] = {"/bin/sh", "-c", script, NULL};
  int64_t t0 = rp_mono_ms();
  run(argv, base_env, 300, 4096, &o);
  int64_t took = rp_mono_ms() - t0;
  assert_true(o.timed_out);
  assert_int_equal(o.err_code, RP_ETIMEOUT);
  assert_string_equal(o.output, "started\n");
  assert_int_equal(o.term_signal, SIGKILL);
  /* 300 ms, then SIGTERM (ignored), then SIGKILL 5 s later. */
  assert_true(took >= 5000 && took < 9000);
  FILE *f = fopen(pidfile, "r");
  assert_non_null(f);
  int child = 0;
  assert_int_equal(fscanf(f, "%d", &child), 1);
  fclose(f);
  unlink(pidfile);
  /* The child it started went with it (its group was killed): gone, or a
   * zombie that init has yet to reap. */
  int gone = 0;
  for (int i = 0; i < 50 && !gone; i++) {
    char path[64], st[512] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", child);
    FILE *sf = fopen(path, "r");
    if (!sf) {
      gone = 1;
      break;
    }
    if (fgets(st, sizeof(st), sf) && strstr(st, ") Z "))
      gone = 1;
    fclose(sf);
    if (!gone)
      usleep(20000);
  }
  assert_true(gone);
}

static void
test_timeout_term_is_enough(void **state)
{
  (void)state;
  struct outcome o;
  const char *const argv[] = {"/bin/sleep", "30", NULL};
  int64_t t0 = rp_mono_ms();
  run(argv, base_env, 200, 4096, &o);
  assert_true(o.timed_out);
  assert_int_equal(o.term_signal, SIGTERM);
  assert_true(rp_mono_ms() - t0 < 3000);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_argv_env_output),
      cmocka_unit_test(test_failures),
      cmocka_unit_test(test_output_cap),
      cmocka_unit_test(test_timeout_kills_the_group),
      cmocka_unit_test(test_timeout_term_is_enough),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
