/* The one runner of programs (src/child.c) on a real loop with real
 * programs: argv without a shell, only the environment given, no
 * descriptor of reaper's but 0-2 (close-on-exec or not), signals at their
 * defaults, stdin given or /dev/null, output captured and capped, exit
 * statuses, a program that cannot run, a timeout that ends the program and
 * what it started, and a kill.  Every test ends with a loop that closes
 * with nothing left open. */
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

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "child.h"
#include "util.h"

struct outcome {
  int calls;
  struct rp_child_result r;
  char output[8192];
};

static void
done_cb(void *arg, const struct rp_child_result *r)
{
  struct outcome *o = arg;
  o->calls++;
  o->r = *r;
  snprintf(o->output, sizeof(o->output), "%s", r->output);
  o->r.output = NULL;
  assert_int_equal(strlen(r->output), r->output_len);
}

/* Runs argv to its end on a fresh loop, then checks the loop closes. */
static void
run_opts(const struct rp_child_options *opt, struct outcome *o)
{
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(o, 0, sizeof(*o));
  struct rp_error *err = NULL;
  assert_int_equal(rp_child_run(&loop, opt, done_cb, o, NULL, &err), 0);
  assert_null(err);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(o->calls, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void
run(const char *const *argv, const char *const *env, int64_t timeout_ms,
    size_t max, struct outcome *o)
{
  /* The options take no const strings (exec does not either). */
  struct rp_child_options opt = {
      .argv = (char *const *)(uintptr_t)argv,
      .env = (char *const *)(uintptr_t)env,
      .timeout_ms = timeout_ms,
      .max_output = max,
  };
  run_opts(&opt, o);
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
  assert_int_equal(o.r.exit_code, 0);
  assert_int_equal(o.r.term_signal, 0);
  assert_string_equal(o.output, "[a b]\n[$HOME]\n[*]\n");

  /* The environment is exactly what was given; stderr is captured too;
   * the working directory is /. */
  const char *const sh[] = {"sh", "-c", "env | sort; pwd; echo oops >&2", NULL};
  run(sh, base_env, 10000, 4096, &o);
  assert_int_equal(o.r.exit_code, 0);
  assert_string_equal(o.output, "PATH=/usr/bin:/bin\n"
                                "PWD=/\n"
                                "REAPER_NODE_HOSTNAME=node1\n"
                                "REAPER_NODE_ID=n1\n"
                                "/\n"
                                "oops\n");
}

/* Without a PATH of its own a child gets the default one, and only that:
 * nothing of the test's (reaper's) environment goes through. */
static void
test_environment_is_only_what_is_given(void **state)
{
  (void)state;
  setenv("RP_CHILD_TEST_SECRET", "from-the-parent", 1);
  struct outcome o;
  const char *const env[] = {"REAPER_EVENT=recycle.done", NULL};
  const char *const argv[] = {"env", NULL}; /* found in the default PATH */
  run(argv, env, 10000, 4096, &o);
  assert_int_equal(o.r.spawn_error, 0);
  assert_int_equal(o.r.exit_code, 0);
  assert_string_equal(o.output, "REAPER_EVENT=recycle.done\n"
                                "PATH=" RP_CHILD_DEFAULT_PATH "\n");
  /* No environment at all: the default PATH alone. */
  run(argv, NULL, 10000, 4096, &o);
  assert_string_equal(o.output, "PATH=" RP_CHILD_DEFAULT_PATH "\n");
  unsetenv("RP_CHILD_TEST_SECRET");
}

/* Descriptors reaper holds, close-on-exec or not (libcurl's sockets are
 * not, unless told), never reach a child: it sees 0, 1 and 2 and nothing
 * else.  ls lists its own directory handle as 3, the lowest free number:
 * any descriptor of ours left open would take 3 and push it to 4. */
static void
test_no_descriptor_but_stdio(void **state)
{
  (void)state;
  int file = open("/proc/self/status", O_RDONLY); /* no O_CLOEXEC */
  int sock = socket(AF_INET, SOCK_STREAM, 0);     /* no SOCK_CLOEXEC */
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(sock, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(listen(sock, 1), 0);
  int p[2];
  assert_int_equal(pipe(p), 0);
  int high = dup2(file, 200);
  assert_true(file >= 0 && sock >= 0 && high == 200);
  assert_int_equal(fcntl(sock, F_GETFD) & FD_CLOEXEC, 0);

  struct outcome o;
  const char *const argv[] = {"/bin/ls", "/proc/self/fd", NULL};
  run(argv, base_env, 10000, 4096, &o);
  assert_int_equal(o.r.exit_code, 0);
  assert_string_equal(o.output, "0\n1\n2\n3\n");

  /* With input on stdin too: still only 0-2 of the child's own. */
  const char *const sh[] = {"/bin/sh", "-c", "cat >/dev/null; ls /proc/self/fd",
                            NULL};
  struct rp_child_options opt = {
      .argv = (char *const *)(uintptr_t)sh,
      .env = (char *const *)(uintptr_t)base_env,
      .input = "{}",
      .input_len = 2,
      .timeout_ms = 10000,
      .max_output = 4096,
  };
  run_opts(&opt, &o);
  assert_int_equal(o.r.exit_code, 0);
  assert_string_equal(o.output, "0\n1\n2\n3\n");

  /* And what stdin, stdout and stderr are: a pipe each for the input
   * and the output, /dev/null for no input. */
  const char *const links[] = {"/bin/sh", "-c",
                               "readlink /proc/self/fd/0 /proc/self/fd/1 "
                               "/proc/self/fd/2 | sed 's/:.*//'",
                               NULL};
  run(links, base_env, 10000, 4096, &o);
  assert_string_equal(o.output, "/dev/null\npipe\npipe\n");
  close(file);
  close(sock);
  close(p[0]);
  close(p[1]);
  close(high);
}

/* Signals as a new process has them, whatever reaper ignores or blocks.
 * Signals 32 and 33 are glibc's own (SIGRTMIN is 34 past them), which its
 * posix_spawn leaves ignored on purpose: no program may use them. */
static void
test_signals_at_their_defaults(void **state)
{
  (void)state;
  struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe, old_hup;
  sigaction(SIGPIPE, &ign, &old_pipe);
  sigaction(SIGHUP, &ign, &old_hup);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, &old_mask);
  struct outcome o;
  const char *const argv[] = {"/bin/sed", "-n", "s/^Sig\\(Blk\\|Ign\\):\\t//p",
                              "/proc/self/status", NULL};
  run(argv, base_env, 10000, 4096, &o);
  sigprocmask(SIG_SETMASK, &old_mask, NULL);
  sigaction(SIGPIPE, &old_pipe, NULL);
  sigaction(SIGHUP, &old_hup, NULL);
  unsigned long long blocked = 1, ignored = 1;
  assert_int_equal(sscanf(o.output, "%llx %llx", &blocked, &ignored), 2);
  assert_int_equal(blocked, 0);
  unsigned long long glibc_own = (1ULL << 31) | (1ULL << 32);
  assert_int_equal(ignored & ~glibc_own, 0);
}

static void
test_input(void **state)
{
  (void)state;
  struct outcome o;
  const char *const argv[] = {"/bin/cat", NULL};
  struct rp_child_options opt = {
      .argv = (char *const *)(uintptr_t)argv,
      .input = "{\"event\":\"recycle.done\"}\n",
      .input_len = strlen("{\"event\":\"recycle.done\"}\n"),
      .timeout_ms = 10000,
      .max_output = 4096,
  };
  run_opts(&opt, &o);
  assert_int_equal(o.r.exit_code, 0);
  assert_string_equal(o.output, "{\"event\":\"recycle.done\"}\n");

  /* A program that never reads its input is no failure. */
  const char *const ignores[] = {"/bin/true", NULL};
  opt.argv = (char *const *)(uintptr_t)ignores;
  run_opts(&opt, &o);
  assert_int_equal(o.r.exit_code, 0);
  assert_int_equal(o.r.term_signal, 0);
}

static void
test_failures(void **state)
{
  (void)state;
  struct outcome o;
  char what[128];
  const char *const fails[] = {"/bin/sh", "-c", "echo no; exit 3", NULL};
  run(fails, base_env, 10000, 4096, &o);
  assert_int_equal(o.r.exit_code, 3);
  assert_string_equal(rp_child_describe(&o.r, 10000, what, sizeof(what)),
                      "exit 3");
  assert_string_equal(o.output, "no\n");

  const char *const killed[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
  run(killed, base_env, 10000, 4096, &o);
  assert_int_equal(o.r.term_signal, SIGKILL);
  assert_string_equal(rp_child_describe(&o.r, 10000, what, sizeof(what)),
                      "killed by SIGKILL");

  /* A program that does not exist, by path or by name: said through the
   * callback. */
  const char *const missing[] = {"/nonexistent/replace-action", NULL};
  run(missing, base_env, 10000, 4096, &o);
  assert_int_equal(o.r.spawn_error, -ENOENT);
  assert_string_equal(rp_child_describe(&o.r, 10000, what, sizeof(what)),
                      "could not start: no such file or directory");
  const char *const unknown[] = {"rp-no-such-program", NULL};
  run(unknown, base_env, 10000, 4096, &o);
  assert_int_equal(o.r.spawn_error, -ENOENT);
  /* Not executable. */
  const char *const not_x[] = {"/etc/passwd", NULL};
  run(not_x, base_env, 10000, 4096, &o);
  assert_int_equal(o.r.spawn_error, -EACCES);

  /* Nothing to run at all: refused at once, no callback. */
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *empty[] = {NULL};
  struct rp_child_options opt = {.argv = empty, .max_output = 10};
  struct rp_error *err = NULL;
  memset(&o, 0, sizeof(o));
  assert_int_equal(rp_child_run(&loop, &opt, done_cb, &o, NULL, &err), -1);
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
  assert_int_equal(o.r.exit_code, 0);
  assert_true(o.r.truncated);
  assert_int_equal(strlen(o.output), 100);
  assert_int_equal(strncmp(o.output, "0123456789\n0123456789\n", 22), 0);

  /* Kept as text for a log or an audit line: control bytes and what is not
   * ASCII become '?'; newline and tab stay. */
  const char *const bin[] = {"/usr/bin/printf", "a\\tb\\001\\303\\251\\n",
                             NULL};
  run(bin, base_env, 10000, 100, &o);
  assert_false(o.r.truncated);
  assert_string_equal(o.output, "a\tb???\n");
}

/* rp_child_kill ends a child at once, and what it started with it. */
static void
kill_cb(uv_timer_t *t)
{
  rp_child_kill(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

static void
test_kill(void **state)
{
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct outcome o = {0};
  const char *const argv[] = {"/bin/sh", "-c", "trap '' TERM; sleep 30", NULL};
  struct rp_child_options opt = {
      .argv = (char *const *)(uintptr_t)argv,
      .timeout_ms = 60000,
      .max_output = 100,
  };
  struct rp_child *c = NULL;
  struct rp_error *err = NULL;
  assert_int_equal(rp_child_run(&loop, &opt, done_cb, &o, &c, &err), 0);
  assert_non_null(c);
  assert_true(rp_child_pid(c) > 0);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = c;
  uv_timer_start(&t, kill_cb, 100, 0);
  int64_t t0 = rp_mono_ms();
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(rp_mono_ms() - t0 < 3000);
  assert_int_equal(o.calls, 1);
  assert_true(o.r.killed);
  assert_false(o.r.timed_out);
  assert_int_equal(o.r.term_signal, SIGKILL);
  char what[64];
  assert_string_equal(rp_child_describe(&o.r, 0, what, sizeof(what)), "killed");
  assert_int_equal(uv_loop_close(&loop), 0);
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
  assert_true(o.r.timed_out);
  assert_string_equal(o.output, "started\n");
  assert_int_equal(o.r.term_signal, SIGKILL);
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
  assert_true(o.r.timed_out);
  assert_int_equal(o.r.term_signal, SIGTERM);
  char what[64];
  assert_string_equal(rp_child_describe(&o.r, 200, what, sizeof(what)),
                      "timed out after 200ms (killed)");
  assert_true(rp_mono_ms() - t0 < 3000);
}

/* --- as the host provider runs its drain and replace -------------------- */

struct ran {
  int calls;
  struct rp_child_result r;
  char output[8192];
};

static void
ran_cb(void *arg, const struct rp_child_result *r)
{
  struct ran *x = arg;
  x->calls++;
  x->r = *r;
  snprintf(x->output, sizeof(x->output), "%s", r->output ? r->output : "");
  x->r.output = x->output;
}

static void
run_one(char *const *argv, char *const *env, int64_t timeout_ms,
        size_t max_output, struct ran *x)
{
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct rp_error *err = NULL;
  struct rp_child_options o = {
      .argv = argv,
      .env = env,
      .timeout_ms = timeout_ms,
      .max_output = max_output,
  };
  assert_int_equal(rp_child_run(&loop, &o, ran_cb, x, NULL, &err), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(x->calls, 1);
  /* Nothing left open. */
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_run_output_exit_env(void **state)
{
  (void)state;
  char a0[] = "/bin/sh", a1[] = "-c",
       a2[] = "echo out; echo err >&2; echo \"id=$REAPER_HOST_ID\"; "
              "env | grep -c . ; exit 3";
  char *argv[] = {a0, a1, a2, NULL};
  char e0[] = "PATH=/usr/bin:/bin", e1[] = "REAPER_HOST_ID=abc";
  char *env[] = {e0, e1, NULL};
  struct ran x = {0};
  run_one(argv, env, 5000, 4096, &x);
  assert_int_equal(x.r.spawn_error, 0);
  assert_false(x.r.timed_out);
  assert_int_equal(x.r.exit_code, 3);
  assert_non_null(strstr(x.output, "out\n"));
  assert_non_null(strstr(x.output, "err\n"));
  assert_non_null(strstr(x.output, "id=abc\n"));
  /* Only what it was given (sh adds PWD, SHLVL and _ of its own). */
  assert_null(strstr(x.output, "HOME="));
  char buf[64];
  assert_string_equal(rp_child_describe(&x.r, 5000, buf, sizeof(buf)),
                      "exit 3");
}

static void
test_run_timeout_kills_group(void **state)
{
  (void)state;
  char a0[] = "/bin/sh", a1[] = "-c", a2[] = "sleep 30 & sleep 30; echo never";
  char *argv[] = {a0, a1, a2, NULL};
  char e0[] = "PATH=/usr/bin:/bin";
  char *env[] = {e0, NULL};
  struct ran x = {0};
  int64_t t0 = rp_mono_ms();
  run_one(argv, env, 300, 4096, &x);
  assert_true(rp_mono_ms() - t0 < 5000);
  assert_true(x.r.timed_out);
  assert_null(strstr(x.output, "never"));
  char buf[64];
  assert_non_null(
      strstr(rp_child_describe(&x.r, 300, buf, sizeof(buf)), "timed out"));
}

static void
test_run_missing_and_truncated(void **state)
{
  (void)state;
  char a0[] = "/nonexistent/replace-action";
  char *argv[] = {a0, NULL};
  char e0[] = "PATH=/usr/bin:/bin";
  char *env[] = {e0, NULL};
  struct ran x = {0};
  run_one(argv, env, 5000, 4096, &x);
  assert_int_equal(x.r.spawn_error, UV_ENOENT);
  char buf[128];
  assert_non_null(strstr(rp_child_describe(&x.r, 5000, buf, sizeof(buf)),
                         "could not start"));

  /* More output than the cap: kept up to it, said so, and the program is
   * never blocked on a full pipe. */
  char b0[] = "/bin/sh", b1[] = "-c",
       b2[] = "i=0; while [ $i -lt 5000 ]; do echo 0123456789; "
              "i=$((i+1)); done";
  char *argv2[] = {b0, b1, b2, NULL};
  struct ran y = {0};
  run_one(argv2, env, 10000, 100, &y);
  assert_int_equal(y.r.exit_code, 0);
  assert_true(y.r.truncated);
  assert_int_equal(strlen(y.output), 100);

  /* Whatever it writes, the output is plain text: no NUL cuts it short,
   * no invalid UTF-8 reaches the audit line. */
  char d0[] = "/bin/sh", d1[] = "-c", d2[] = "printf 'a\\000b\\377c\\033d\\n'";
  char *argv4[] = {d0, d1, d2, NULL};
  struct ran w = {0};
  run_one(argv4, env, 5000, 100, &w);
  assert_string_equal(w.output, "a?b?c?d\n");

  /* A signal that ends it is said. */
  char c0[] = "/bin/sh", c1[] = "-c", c2[] = "kill -TERM $$";
  char *argv3[] = {c0, c1, c2, NULL};
  struct ran z = {0};
  run_one(argv3, env, 5000, 100, &z);
  assert_int_equal(z.r.term_signal, 15);
  assert_string_equal(rp_child_describe(&z.r, 5000, buf, sizeof(buf)),
                      "killed by SIGTERM");
}

int
main(void)
{
  /* As the agent does: a program that does not read its input must not
   * kill us. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_argv_env_output),
      cmocka_unit_test(test_environment_is_only_what_is_given),
      cmocka_unit_test(test_no_descriptor_but_stdio),
      cmocka_unit_test(test_signals_at_their_defaults),
      cmocka_unit_test(test_input),
      cmocka_unit_test(test_failures),
      cmocka_unit_test(test_kill),
      cmocka_unit_test(test_output_cap),
      cmocka_unit_test(test_timeout_kills_the_group),
      cmocka_unit_test(test_timeout_term_is_enough),
      cmocka_unit_test(test_run_output_exit_env),
      cmocka_unit_test(test_run_timeout_kills_group),
      cmocka_unit_test(test_run_missing_and_truncated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
