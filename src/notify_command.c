/* The command transport of notifications (notify_sink.h): the entry's argv
 * run as src/child.h runs every program, the event's JSON on its stdin,
 * REAPER_EVENT (and a default PATH) its whole environment. */
#include <string.h>

#include "child.h"
#include "log.h"
#include "notify_sink.h"
#include "util.h"

/* The program: argv[0] names no secret. */
static char *
command_describe(const struct rp_notify *cfg)
{
  return rp_xstrdup(cfg->command && cfg->command[0] ? cfg->command[0] : "?");
}

/* The command's result: the attempt ends here.  Its output, capped, goes
 * with a failure (and to debug logs otherwise), on one line. */
static void
command_done_cb(void *arg, const struct rp_child_result *r)
{
  struct rp_notify_sink *s = arg;
  s->inflight = NULL;
  char why[RP_NOTIFY_OUTPUT_MAX + 128];
  bool ok = !r->spawn_error && !r->killed && !r->timed_out && !r->term_signal &&
            r->exit_code == 0;
  if (r->killed)
    snprintf(why, sizeof(why), "killed: reaper is stopping");
  else if (!ok)
    rp_child_describe(r, s->cfg.timeout_ms, why, sizeof(why));
  else
    why[0] = '\0';
  if (r->output_len) {
    size_t off = strlen(why);
    snprintf(why + off, sizeof(why) - off, "%soutput: ", ok ? "" : "; ");
    off = strlen(why);
    size_t i = 0;
    for (; i < r->output_len && off + 1 < sizeof(why); i++)
      why[off++] = r->output[i] == '\n'   ? ' '
                   : r->output[i] == '\t' ? '?'
                                          : r->output[i];
    why[off] = '\0';
    if (r->truncated && off + strlen("…") < sizeof(why))
      strcat(why, "…");
  }
  if (ok && r->output_len)
    rp_debug("%s: %s", s->display, why);
  /* A program that cannot start (ENOENT) will not start on a retry;
   * anything else may pass. */
  rp_notify_sink_attempt_done(s, ok, !r->spawn_error, ok ? NULL : why);
}

static void
command_send(struct rp_notify_sink *s)
{
  struct rp_notify_item *it = s->current;
  cleanup_free char *event = rp_xasprintf("REAPER_EVENT=%s", it->event);
  char *env[] = {event, NULL};
  struct rp_child_options o = {
      .argv = s->cfg.command,
      .env = env,
      .input = it->body,
      .input_len = it->len,
      .timeout_ms = s->cfg.timeout_ms,
      .max_output = RP_NOTIFY_OUTPUT_MAX,
  };
  cleanup_error struct rp_error *err = NULL;
  struct rp_child *c = NULL;
  if (rp_child_run(s->hub->loop, &o, command_done_cb, s, &c, &err) != 0) {
    rp_notify_sink_attempt_done(s, false, true, err->message);
    return;
  }
  s->inflight = c;
}

/* Its callback runs once the program is gone. */
static void
command_cancel(struct rp_notify_sink *s)
{
  rp_child_kill(s->inflight);
}

const struct rp_notify_transport rp_notify_command = {
    .type = "command",
    .describe = command_describe,
    .send = command_send,
    .cancel = command_cancel,
};
