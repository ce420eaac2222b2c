/* The replace action: an argv run without a shell, on the loop (uv_spawn),
 * in its own process group so that a timeout ends whatever it started.
 * stdout and stderr share one pipe, read into a capped buffer for the
 * audit line.  A program's children may keep that pipe open after it has
 * exited: its end is awaited a short while, then given up. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "swarm/swarm.h"
#include "util.h"

#define KILL_AFTER_MS 5000
#define EOF_WAIT_MS 1000

enum phase {
  P_RUNNING,     /* timer: the timeout */
  P_TERMINATING, /* SIGTERM sent; timer: SIGKILL */
  P_DRAINING,    /* exited; timer: give up on the pipe's end */
  P_DONE,
};

struct spawn {
  uv_process_t proc;
  uv_pipe_t out;
  uv_timer_t timer;
  int open_handles;
  bool proc_open, pipe_open;
  enum phase phase;
  bool exited;
  int64_t exit_status;
  int term_signal;
  bool timed_out;
  int spawn_error; /* a uv error when the program could not start */
  char *buf;       /* owned: the output kept */
  size_t len, max;
  bool truncated;
  int64_t start_ms, timeout_ms;
  char *what; /* owned: argv[0], for messages */
  rp_swarm_spawn_cb cb;
  void *arg;
};

static void
spawn_free(struct spawn *sp)
{
  free(sp->buf);
  free(sp->what);
  free(sp);
}

static void
report(struct spawn *sp)
{
  struct rp_swarm_spawn_result r = {
      .exit_status = sp->exited && !sp->term_signal ? sp->exit_status : -1,
      .term_signal = sp->term_signal,
      .timed_out = sp->timed_out,
      .output = sp->buf ? sp->buf : "",
      .truncated = sp->truncated,
      .duration_ms = rp_mono_ms() - sp->start_ms,
  };
  cleanup_error struct rp_error *e = NULL;
  if (sp->spawn_error)
    rp_error_set(&e, sp->spawn_error == UV_ENOENT ? ENOENT : EIO,
                 "%s: cannot be run: %s", sp->what,
                 uv_strerror(sp->spawn_error));
  else if (sp->timed_out)
    rp_error_set(&e, RP_ETIMEOUT, "%s: still running after %llds: killed",
                 sp->what, (long long)(sp->timeout_ms / 1000));
  else if (sp->term_signal)
    rp_error_set(&e, EIO, "%s: killed by signal %d (%s)", sp->what,
                 sp->term_signal, strsignal(sp->term_signal));
  else if (sp->exit_status != 0)
    rp_error_set(&e, EIO, "%s: exit status %lld", sp->what,
                 (long long)sp->exit_status);
  sp->cb(sp->arg, &r, e);
}

static void
handle_closed_cb(uv_handle_t *h)
{
  struct spawn *sp = h->data;
  if (--sp->open_handles > 0)
    return;
  report(sp);
  spawn_free(sp);
}

static void
close_pipe(struct spawn *sp)
{
  if (!sp->pipe_open)
    return;
  sp->pipe_open = false;
  uv_close((uv_handle_t *)&sp->out, handle_closed_cb);
}

/* Once the program has exited and its output has ended (or been given
 * up), everything closes; the last close reports. */
static void
maybe_finish(struct spawn *sp)
{
  if (!sp->exited || sp->pipe_open || sp->phase == P_DONE)
    return;
  sp->phase = P_DONE;
  uv_timer_stop(&sp->timer);
  uv_close((uv_handle_t *)&sp->timer, handle_closed_cb);
  if (sp->proc_open) {
    sp->proc_open = false;
    uv_close((uv_handle_t *)&sp->proc, handle_closed_cb);
  }
}

static void
timer_cb(uv_timer_t *t)
{
  struct spawn *sp = t->data;
  switch (sp->phase) {
  case P_RUNNING:
    sp->timed_out = true;
    sp->phase = P_TERMINATING;
    kill(-sp->proc.pid, SIGTERM);
    uv_timer_start(&sp->timer, timer_cb, KILL_AFTER_MS, 0);
    break;
  case P_TERMINATING:
    kill(-sp->proc.pid, SIGKILL);
    break;
  case P_DRAINING:
    close_pipe(sp);
    maybe_finish(sp);
    break;
  case P_DONE:
    break;
  }
}

static void
exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
  struct spawn *sp = proc->data;
  sp->exited = true;
  sp->exit_status = exit_status;
  sp->term_signal = term_signal;
  /* Whatever it left behind in its group goes with it. */
  if (sp->timed_out)
    kill(-proc->pid, SIGKILL);
  if (sp->pipe_open) {
    sp->phase = P_DRAINING;
    uv_timer_start(&sp->timer, timer_cb, EOF_WAIT_MS, 0);
    return;
  }
  maybe_finish(sp);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  (void)suggested;
  static char scratch[4096];
  /* Read into a scratch buffer: the output is copied, capped, from it.  The
   * loop runs one read at a time, so one static buffer serves. */
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct spawn *sp = s->data;
  if (n < 0) {
    close_pipe(sp);
    maybe_finish(sp);
    return;
  }
  size_t room = sp->max - sp->len;
  size_t take = (size_t)n < room ? (size_t)n : room;
  if (take < (size_t)n)
    sp->truncated = true;
  if (take > 0) {
    memcpy(sp->buf + sp->len, buf->base, take);
    sp->len += take;
    sp->buf[sp->len] = '\0';
  }
}

int
rp_swarm_spawn(uv_loop_t *loop, char *const *argv, char *const *env,
               int64_t timeout_ms, size_t max_output, rp_swarm_spawn_cb cb,
               void *arg, struct rp_error **err)
{
  if (!argv || !argv[0] || !argv[0][0])
    return rp_error_set(err, EINVAL, "spawn: no program to run");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return rp_error_set(err, errno, "spawn %s: pipe: %s", argv[0],
                        strerror(errno));
  struct spawn *sp = rp_xcalloc(1, sizeof(*sp));
  sp->cb = cb;
  sp->arg = arg;
  sp->max = max_output;
  sp->buf = rp_xcalloc(1, max_output + 1);
  sp->what = rp_xstrdup(argv[0]);
  sp->start_ms = rp_mono_ms();
  sp->timeout_ms = timeout_ms;

  uv_pipe_init(loop, &sp->out, 0);
  sp->out.data = sp;
  uv_timer_init(loop, &sp->timer);
  sp->timer.data = sp;
  sp->open_handles = 3;
  sp->pipe_open = true;
  sp->proc_open = true;
  sp->proc.data = sp;

  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
      {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
  };
  uv_process_options_t opt = {
      .exit_cb = exit_cb,
      .file = argv[0],
      .args = (char **)(uintptr_t)argv, /* libuv takes no const */
      .env = (char **)(uintptr_t)env,
      .cwd = "/",                   /* not wherever reaper happened to start */
      .flags = UV_PROCESS_DETACHED, /* setsid: its own process group */
      .stdio_count = 3,
      .stdio = stdio,
  };
  int rc = uv_spawn(loop, &sp->proc, &opt);
  close(fds[1]);
  if (uv_pipe_open(&sp->out, fds[0]) != 0) {
    close(fds[0]);
    close_pipe(sp);
  } else if (uv_read_start((uv_stream_t *)&sp->out, alloc_cb, read_cb) != 0) {
    close_pipe(sp);
  }
  if (rc != 0) {
    /* libuv reports a failed exec here; the handles close and cb says why,
     * as for any other failure of the action. */
    sp->spawn_error = rc;
    sp->exited = true;
    sp->exit_status = -1;
    close_pipe(sp);
    maybe_finish(sp);
    return 0;
  }
  uv_timer_start(&sp->timer, timer_cb,
                 (uint64_t)(timeout_ms > 0 ? timeout_ms : 1), 0);
  return 0;
}
