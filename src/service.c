/* sd_notify(3) for the agent; see service.h.  libsystemd's sd_notify sends
 * one datagram on a socket of its own per call: no state here but the
 * watchdog's timer and the last STATUS= sent. */
#include "service.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "util.h"

struct rp_service {
  uv_timer_t watchdog;
  bool watchdog_on;
  char *status; /* owned: the last STATUS= sent */
};

/* The manager's socket is a local datagram socket that it drains at once;
 * a failure is logged at debug and otherwise ignored: the agent's work
 * never depends on the manager hearing it. */
static void
notify(const char *msg)
{
  int rc = sd_notify(0, msg);
  if (rc < 0)
    rp_debug("sd_notify: %s", strerror(-rc));
}

static void
watchdog_cb(uv_timer_t *t)
{
  (void)t;
  notify("WATCHDOG=1");
}

struct rp_service *
rp_service_new(uv_loop_t *loop)
{
  struct rp_service *s = rp_xcalloc(1, sizeof(*s));
  uv_timer_init(loop, &s->watchdog);
  s->watchdog.data = s;
  uint64_t usec = 0;
  if (getenv("NOTIFY_SOCKET") && sd_watchdog_enabled(0, &usec) > 0 &&
      usec > 0) {
    /* Half the interval, as sd_watchdog_enabled(3) advises: one late ping
     * is no kill. */
    uint64_t ms = usec / 2000;
    if (ms == 0)
      ms = 1;
    rp_info("systemd watchdog: %" PRIu64 " ms, pinged every %" PRIu64 " ms",
            usec / 1000, ms);
    uv_timer_start(&s->watchdog, watchdog_cb, ms, ms);
    s->watchdog_on = true;
  }
  /* The timer alone must not keep the loop running. */
  uv_unref((uv_handle_t *)&s->watchdog);
  return s;
}

static void
send_with_status(struct rp_service *s, const char *what, const char *status)
{
  if (!status) {
    notify(what);
    return;
  }
  free(s->status);
  s->status = rp_xstrdup(status);
  cleanup_free char *msg = rp_xasprintf("%s\nSTATUS=%s", what, status);
  notify(msg);
}

void
rp_service_ready(struct rp_service *s, const char *status)
{
  if (s)
    send_with_status(s, "READY=1", status);
}

void
rp_service_status(struct rp_service *s, const char *status)
{
  if (!s || !status || (s->status && strcmp(s->status, status) == 0))
    return;
  free(s->status);
  s->status = rp_xstrdup(status);
  cleanup_free char *msg = rp_xasprintf("STATUS=%s", status);
  notify(msg);
}

void
rp_service_reloading(struct rp_service *s)
{
  if (!s)
    return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
  char msg[64];
  snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec);
  notify(msg);
}

void
rp_service_stopping(struct rp_service *s, const char *status)
{
  if (s)
    send_with_status(s, "STOPPING=1", status);
}

static void
closed_cb(uv_handle_t *h)
{
  struct rp_service *s = h->data;
  free(s->status);
  free(s);
}

void
rp_service_close(struct rp_service *s)
{
  if (!s)
    return;
  uv_timer_stop(&s->watchdog);
  uv_close((uv_handle_t *)&s->watchdog, closed_cb);
}
