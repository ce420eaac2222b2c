/* A program run without a shell on the loop (uv_spawn), its stdout and
 * stderr read into one bounded buffer, killed with its whole process group
 * at a timeout.  The callback runs once the process has exited and every
 * handle is closed, so the caller may free anything at that point. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/host.h"
#include "util.h"

/* After the program exits, how long its output may still take to end. */
#define OUTPUT_WAIT_MS 1000

struct run {
  uv_process_t proc;
  uv_pipe_t out;
  uv_timer_t timer;
  int open_handles;
  bool proc_started;
  rp_host_run_cb cb;
  void *arg;
  char *buf; /* owned, max + 1 */
  size_t len, max;
  struct rp_host_run_result res;
  int64_t start_ms;
  bool exited, pipe_done;
};

static void
handle_closed_cb(uv_handle_t *h)
{
  struct run *r = h->data;
  if (--r->open_handles > 0)
    return;
  r->res.output = r->buf;
  r->res.duration_ms = rp_mono_ms() - r->start_ms;
  r->cb(r->arg, &r->res);
  free(r->buf);
  free(r);
}

static void
close_one(uv_handle_t *h)
{
  if (!uv_is_closing(h))
    uv_close(h, handle_closed_cb);
}

/* Once the process has exited and its output has ended (or the pipe
 * failed), everything closes. */
static void
maybe_finish(struct run *r)
{
  if (!r->exited || !r->pipe_done)
    return;
  uv_timer_stop(&r->timer);
  close_one((uv_handle_t *)&r->timer);
  close_one((uv_handle_t *)&r->out);
  close_one((uv_handle_t *)&r->proc);
}

static void
output_wait_cb(uv_timer_t *t)
{
  struct run *r = t->data;
  r->pipe_done = true;
  maybe_finish(r);
}

static void
exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
  struct run *r = p->data;
  r->exited = true;
  r->res.exit_code = status;
  r->res.term_signal = term_signal;
  /* Something it left running in another session may hold the pipe open:
   * wait a moment for the rest of the output, not for that. */
  if (!r->pipe_done)
    uv_timer_start(&r->timer, output_wait_cb, OUTPUT_WAIT_MS, 0);
  maybe_finish(r);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  static char scratch[4096];
  (void)suggested;
  /* Reads go through a scratch buffer: what is over the cap is dropped
   * but still read, so the program never blocks on a full pipe. */
  buf->base = scratch;
  buf->len = sizeof(scratch);
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct run *r = s->data;
  if (n < 0) {
    r->pipe_done = true;
    uv_read_stop(s);
    maybe_finish(r);
    return;
  }
  size_t room = r->max - r->len;
  size_t take = (size_t)n < room ? (size_t)n : room;
  if (take < (size_t)n)
    r->res.truncated = true;
  /* Kept as plain text for the audit line: bytes that are not printable
   * ASCII (or newline, tab) become '?', so the line stays valid UTF-8 and
   * no NUL cuts it short. */
  for (size_t i = 0; i < take; i++) {
    unsigned char ch = (unsigned char)buf->base[i];
    r->buf[r->len + i] =
        (ch >= 0x20 && ch < 0x7f) || ch == '\n' || ch == '\t' ? (char)ch : '?';
  }
  r->len += take;
  r->buf[r->len] = '\0';
}

static void
timer_cb(uv_timer_t *t)
{
  struct run *r = t->data;
  if (r->exited)
    return;
  r->res.timed_out = true;
  /* Its own session: the group id is its pid.  Children go too. */
  if (r->proc.pid > 0)
    kill(-r->proc.pid, SIGKILL);
}

int
rp_host_run(uv_loop_t *loop, char *const *argv, char *const *env,
            int64_t timeout_ms, size_t max_output, rp_host_run_cb cb, void *arg,
            struct rp_error **err)
{
  if (!argv || !argv[0] || !argv[0][0])
    return rp_error_set(err, EINVAL, "run: no program");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return rp_error_set(err, errno, "run %s: pipe: %s", argv[0],
                        strerror(errno));
  struct run *r = rp_xcalloc(1, sizeof(*r));
  r->cb = cb;
  r->arg = arg;
  r->max = max_output;
  r->buf = rp_xcalloc(1, max_output + 1);
  r->start_ms = rp_mono_ms();
  r->proc.data = r;
  uv_pipe_init(loop, &r->out, 0);
  r->out.data = r;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  r->open_handles = 3;

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
      .cwd = "/",
      .flags = UV_PROCESS_DETACHED, /* setsid: a process group to kill */
      .stdio_count = 3,
      .stdio = stdio,
  };
  int rc = uv_spawn(loop, &r->proc, &opt);
  close(fds[1]);
  if (uv_pipe_open(&r->out, fds[0]) != 0) {
    close(fds[0]);
    r->pipe_done = true;
  } else if (uv_read_start((uv_stream_t *)&r->out, alloc_cb, read_cb) != 0) {
    r->pipe_done = true;
  }
  if (rc != 0) {
    /* The handle was initialized all the same and must be closed. */
    r->res.spawn_error = rc;
    r->exited = true;
    r->pipe_done = true;
    maybe_finish(r);
    return 0;
  }
  if (timeout_ms > 0)
    uv_timer_start(&r->timer, timer_cb, (uint64_t)timeout_ms, 0);
  maybe_finish(r);
  return 0;
}

const char *
rp_host_run_describe(const struct rp_host_run_result *r, int64_t timeout_ms,
                     char *buf, size_t len)
{
  if (r->spawn_error)
    snprintf(buf, len, "could not start: %s", uv_strerror(r->spawn_error));
  else if (r->timed_out)
    snprintf(buf, len, "timed out after %llds (killed)",
             (long long)(timeout_ms / 1000));
  else if (r->term_signal) {
    const char *name = sigabbrev_np(r->term_signal);
    snprintf(buf, len, "killed by SIG%s", name ? name : "?");
  } else
    snprintf(buf, len, "exit %lld", (long long)r->exit_code);
  return buf;
}
