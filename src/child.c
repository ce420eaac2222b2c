/* One runner for every program reaper starts (child.h).
 *
 * Why posix_spawn and not uv_spawn: uv_spawn leaves open in the child every
 * descriptor that is not close-on-exec, and some are not (libcurl's
 * sockets to the engines, its resolver's socket pairs).  glibc's
 * posix_spawn closes them all in the child
 * (posix_spawn_file_actions_addclosefrom_np), resets signals, starts a
 * session and changes directory before exec, and reports a failed exec as
 * its return value.  The loop then only watches: a SIGCHLD watcher reaps
 * this child by its pid (waitpid(pid), never -1: other children are not
 * ours to reap), a pipe carries its output, another its input, and one
 * timer does all the waiting (the timeout, SIGKILL after SIGTERM, the end
 * of the output after the exit).
 *
 * A child lives until the close callbacks of all its handles have run;
 * the last one calls back and frees it. */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

/* After the program exits, how long its output may still take to end:
 * something it left running in another session may hold the pipe. */
#define OUTPUT_WAIT_MS 1000

enum phase {
  P_RUNNING,     /* timer: the timeout */
  P_TERMINATING, /* SIGTERM sent; timer: SIGKILL */
  P_DRAINING,    /* exited; timer: give up on the output's end */
  P_DONE,        /* closing */
};

struct rp_child {
  uv_signal_t sigchld;
  uv_timer_t timer;
  uv_pipe_t out;
  uv_pipe_t in;
  uv_write_t write_req;
  int open_handles;
  bool out_open, in_open;
  enum phase phase;
  pid_t pid;
  bool exited;
  int64_t kill_after_ms;
  char *input; /* owned: what is written to stdin */
  size_t input_len;
  char *buf; /* owned: max + 1 bytes */
  size_t max;
  struct rp_child_result res;
  int64_t start_ms;
  rp_child_cb cb;
  void *arg;
};

/* --- the end ------------------------------------------------------------ */

static void
closed_cb(uv_handle_t *h)
{
  struct rp_child *c = h->data;
  if (--c->open_handles > 0)
    return;
  c->res.output = c->buf;
  c->res.duration_ms = rp_mono_ms() - c->start_ms;
  c->cb(c->arg, &c->res);
  free(c->buf);
  free(c->input);
  free(c);
}

static void
close_handle(uv_handle_t *h, bool *open)
{
  if (!*open)
    return;
  *open = false;
  uv_close(h, closed_cb);
}

/* Once the program has exited and its output has ended (or been given up
 * on), everything closes; the last close calls back. */
static void
maybe_finish(struct rp_child *c)
{
  if (!c->exited || c->out_open || c->phase == P_DONE)
    return;
  c->phase = P_DONE;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, closed_cb);
  uv_close((uv_handle_t *)&c->sigchld, closed_cb);
  close_handle((uv_handle_t *)&c->in, &c->in_open);
}

static void
close_output(struct rp_child *c)
{
  close_handle((uv_handle_t *)&c->out, &c->out_open);
  maybe_finish(c);
}

/* --- the process -------------------------------------------------------- */

static void
signal_group(struct rp_child *c, int sig)
{
  /* Its own session: the group's id is its pid; its children go too. */
  if (c->pid > 0)
    kill(-c->pid, sig);
}

static void
timer_cb(uv_timer_t *t)
{
  struct rp_child *c = t->data;
  switch (c->phase) {
  case P_RUNNING:
    c->res.timed_out = true;
    c->phase = P_TERMINATING;
    signal_group(c, SIGTERM);
    uv_timer_start(&c->timer, timer_cb, (uint64_t)c->kill_after_ms, 0);
    break;
  case P_TERMINATING:
    signal_group(c, SIGKILL);
    break;
  case P_DRAINING:
    close_output(c);
    break;
  case P_DONE:
    break;
  }
}

static void
sigchld_cb(uv_signal_t *s, int signum)
{
  (void)signum;
  struct rp_child *c = s->data;
  if (c->exited)
    return;
  int status;
  pid_t r;
  do
    r = waitpid(c->pid, &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r != c->pid)
    return; /* another child's SIGCHLD, or ours still runs */
  c->exited = true;
  uv_signal_stop(&c->sigchld);
  if (WIFSIGNALED(status))
    c->res.term_signal = WTERMSIG(status);
  else
    c->res.exit_code = WEXITSTATUS(status);
  /* Whatever it left behind in its group goes with it when it had to be
   * stopped. */
  if (c->res.timed_out || c->res.killed)
    signal_group(c, SIGKILL);
  uv_timer_stop(&c->timer);
  if (c->out_open && c->phase != P_DONE) {
    c->phase = P_DRAINING;
    uv_timer_start(&c->timer, timer_cb, OUTPUT_WAIT_MS, 0);
  }
  maybe_finish(c);
}

/* --- output and input --------------------------------------------------- */

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  (void)suggested;
  /* Reads go through a scratch buffer: what is over the cap is dropped but
   * still read.  The loop runs one read at a time, so one buffer serves. */
  static char scratch[4096];
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct rp_child *c = s->data;
  if (n < 0) {
    close_output(c);
    return;
  }
  size_t room = c->max - c->res.output_len;
  size_t take = (size_t)n < room ? (size_t)n : room;
  if (take < (size_t)n)
    c->res.truncated = true;
  char *to = c->buf + c->res.output_len;
  for (size_t i = 0; i < take; i++) {
    unsigned char ch = (unsigned char)buf->base[i];
    to[i] =
        (ch >= 0x20 && ch < 0x7f) || ch == '\n' || ch == '\t' ? (char)ch : '?';
  }
  c->res.output_len += take;
  c->buf[c->res.output_len] = '\0';
}

static void
write_cb(uv_write_t *req, int status)
{
  (void)status; /* EPIPE: it did not read its stdin, which is its right */
  struct rp_child *c = req->data;
  /* End of its input. */
  close_handle((uv_handle_t *)&c->in, &c->in_open);
}

/* --- start -------------------------------------------------------------- */

static bool
has_path(char *const *env)
{
  for (char *const *e = env; e && *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0)
      return true;
  return false;
}

/* The environment the child gets: env, plus the default PATH when env
 * names none.  The strings are borrowed; the array is owned. */
static char **
child_env(char *const *env)
{
  size_t n = 0;
  while (env && env[n])
    n++;
  char **v = rp_xcalloc(n + 2, sizeof(*v));
  for (size_t i = 0; i < n; i++)
    v[i] = env[i];
  if (!has_path(env))
    v[n] = (char *)(uintptr_t) "PATH=" RP_CHILD_DEFAULT_PATH;
  return v;
}

/* argv[0] as a path: as it is when it has a slash (if it is an executable
 * file), else the first executable regular file of that name in the
 * child's PATH (as execvp would find it, but in the child's PATH rather
 * than reaper's).  Returns 0 or a negative errno. */
static int
find_program(const char *name, char **env, char **out)
{
  struct stat st;
  if (strchr(name, '/')) {
    /* Said here rather than by a failed exec: the same answer whatever
     * runs reaper (valgrind turns posix_spawn's vfork into a fork, and a
     * failed exec then goes unreported). */
    if (stat(name, &st) != 0)
      return -errno;
    if (!S_ISREG(st.st_mode) || access(name, X_OK) != 0)
      return -EACCES;
    *out = rp_xstrdup(name);
    return 0;
  }
  const char *path = RP_CHILD_DEFAULT_PATH;
  for (char **e = env; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) {
      path = *e + 5;
      break;
    }
  int rc = -ENOENT;
  for (const char *p = path;; p++) {
    size_t len = strcspn(p, ":");
    /* An empty entry is the current directory, which is "/" for a child. */
    cleanup_free char *cand = len ? rp_xasprintf("%.*s/%s", (int)len, p, name)
                                  : rp_xasprintf("/%s", name);
    if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(cand, X_OK) == 0) {
        *out = RP_STEAL(cand);
        return 0;
      }
      rc = -EACCES;
    }
    p += len;
    if (*p == '\0')
      break;
  }
  return rc;
}

/* A descriptor the child gets as 0, 1 or 2 must not itself be one of them
 * (reaper started with one closed): dup2 onto itself would keep it
 * close-on-exec. */
static int
above_stdio(int fd)
{
  if (fd > 2)
    return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

static int
make_pipe(int fds[2])
{
  if (pipe2(fds, O_CLOEXEC) != 0)
    return -errno;
  fds[0] = above_stdio(fds[0]);
  fds[1] = above_stdio(fds[1]);
  if (fds[0] < 0 || fds[1] < 0) {
    int e = errno;
    if (fds[0] >= 0)
      close(fds[0]);
    if (fds[1] >= 0)
      close(fds[1]);
    return -e;
  }
  return 0;
}

/* posix_spawn with everything child.h promises.  Returns 0 or a negative
 * errno (the program could not be started). */
static int
spawn(const char *path, char *const *argv, char **env, int in_fd, int out_fd,
      pid_t *pid)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc != 0)
    return -rc;
  rc = posix_spawnattr_init(&at);
  if (rc != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if (in_fd >= 0)
    rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  else
    rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (rc == 0)
    rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  if (rc == 0)
    rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
  /* Everything else reaper holds, close-on-exec or not. */
  if (rc == 0)
    rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  /* Not wherever reaper happened to start. */
  if (rc == 0)
    rc = posix_spawn_file_actions_addchdir_np(&fa, "/");
  /* Its own session: a process group that a timeout can end whole.
   * Signals as a fresh process has them: reaper's handlers and mask (the
   * loop's) are not the child's business. */
  if (rc == 0)
    rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
                                           POSIX_SPAWN_SETSIGMASK |
                                           POSIX_SPAWN_SETSIGDEF);
  if (rc == 0)
    rc = posix_spawnattr_setsigmask(&at, &none);
  if (rc == 0)
    rc = posix_spawnattr_setsigdefault(&at, &all);
  if (rc == 0)
    rc = posix_spawn(pid, path, &fa, &at, argv, env);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  return -rc;
}

int
rp_child_run(uv_loop_t *loop, const struct rp_child_options *o, rp_child_cb cb,
             void *arg, struct rp_child **out, struct rp_error **err)
{
  if (out)
    *out = NULL;
  if (!o->argv || !o->argv[0] || !o->argv[0][0])
    return rp_error_set(err, EINVAL, "run: no program");
  int out_fds[2], in_fds[2] = {-1, -1};
  int rc = make_pipe(out_fds);
  if (rc == 0 && o->input && (rc = make_pipe(in_fds)) != 0) {
    close(out_fds[0]);
    close(out_fds[1]);
  }
  if (rc != 0)
    return rp_error_set(err, -rc, "run %s: pipe: %s", o->argv[0],
                        strerror(-rc));

  struct rp_child *c = rp_xcalloc(1, sizeof(*c));
  c->cb = cb;
  c->arg = arg;
  c->max = o->max_output;
  c->buf = rp_xcalloc(1, o->max_output + 1);
  c->kill_after_ms =
      o->kill_after_ms > 0 ? o->kill_after_ms : RP_CHILD_KILL_AFTER_MS;
  c->start_ms = rp_mono_ms();
  uv_signal_init(loop, &c->sigchld);
  uv_timer_init(loop, &c->timer);
  uv_pipe_init(loop, &c->out, 0);
  uv_pipe_init(loop, &c->in, 0);
  c->sigchld.data = c->timer.data = c->out.data = c->in.data = c;
  c->write_req.data = c;
  c->open_handles = 4;
  c->out_open = c->in_open = true;
  /* Watching before it starts: a child that exits at once is not missed. */
  uv_signal_start(&c->sigchld, sigchld_cb, SIGCHLD);

  cleanup_free char **env = child_env(o->env);
  cleanup_free char *path = NULL;
  rc = find_program(o->argv[0], env, &path);
  if (rc == 0)
    rc = spawn(path, o->argv, env, in_fds[0], out_fds[1], &c->pid);
  close(out_fds[1]);
  if (in_fds[0] >= 0)
    close(in_fds[0]);
  if (uv_pipe_open(&c->out, out_fds[0]) != 0) {
    close(out_fds[0]);
    close_output(c);
  } else if (uv_read_start((uv_stream_t *)&c->out, alloc_cb, read_cb) != 0) {
    close_output(c);
  }
  if (in_fds[1] >= 0 && uv_pipe_open(&c->in, in_fds[1]) != 0) {
    close(in_fds[1]);
    in_fds[1] = -1;
  }
  if (rc != 0) {
    /* Said through the callback, like any other way a program fails. */
    c->res.spawn_error = rc;
    c->pid = 0;
    c->exited = true;
    close_output(c);
    return 0;
  }
  if (in_fds[1] >= 0) {
    c->input = rp_xmalloc(o->input_len ? o->input_len : 1);
    memcpy(c->input, o->input, o->input_len);
    c->input_len = o->input_len;
    uv_buf_t b = uv_buf_init(c->input, (unsigned)c->input_len);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->in, &b, 1, write_cb) != 0)
      close_handle((uv_handle_t *)&c->in, &c->in_open);
  } else {
    close_handle((uv_handle_t *)&c->in, &c->in_open);
  }
  if (o->timeout_ms > 0)
    uv_timer_start(&c->timer, timer_cb, (uint64_t)o->timeout_ms, 0);
  if (out)
    *out = c;
  return 0;
}

void
rp_child_kill(struct rp_child *c)
{
  if (!c || c->phase == P_DONE)
    return;
  if (c->exited) {
    /* Its output is not waited for any longer. */
    close_output(c);
    return;
  }
  c->res.killed = true;
  signal_group(c, SIGKILL);
}

int
rp_child_pid(const struct rp_child *c)
{
  return c ? (int)c->pid : 0;
}

const char *
rp_child_describe(const struct rp_child_result *r, int64_t timeout_ms,
                  char *buf, size_t len)
{
  char d[32];
  if (r->spawn_error)
    snprintf(buf, len, "could not start: %s", uv_strerror(r->spawn_error));
  else if (r->killed)
    snprintf(buf, len, "killed");
  else if (r->timed_out)
    snprintf(buf, len, "timed out after %s (killed)",
             rp_format_duration(timeout_ms, d, sizeof(d)));
  else if (r->term_signal) {
    const char *name = sigabbrev_np(r->term_signal);
    snprintf(buf, len, "killed by SIG%s", name ? name : "?");
  } else
    snprintf(buf, len, "exit %lld", (long long)r->exit_code);
  return buf;
}
