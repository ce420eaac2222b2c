/* The service manager's notification protocol (sd_notify(3)), for systemd's
 * Type=notify with WatchdogSec=: READY=1 once the agent's own machinery is
 * up, STATUS= lines, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a
 * reload, STOPPING=1 at the stop, and WATCHDOG=1 from the loop at half of
 * WATCHDOG_USEC, so that a stuck loop stops the pings and gets the agent
 * killed and restarted.  Without NOTIFY_SOCKET every call does nothing. */
#ifndef RP_SERVICE_H
#define RP_SERVICE_H

#include <uv.h>

struct rp_service;

/* Starts the watchdog's timer on loop when the manager asked for one
 * (WATCHDOG_USEC, and WATCHDOG_PID naming this process if set). */
struct rp_service *rp_service_new(uv_loop_t *loop);
/* READY=1 with STATUS=status (may be NULL). */
void rp_service_ready(struct rp_service *s, const char *status);
/* STATUS=status, sent only when it differs from the last one. */
void rp_service_status(struct rp_service *s, const char *status);
/* RELOADING=1 with MONOTONIC_USEC (systemd 253 wants it); READY=1 ends it. */
void rp_service_reloading(struct rp_service *s);
/* STOPPING=1 with STATUS=status (may be NULL). */
void rp_service_stopping(struct rp_service *s, const char *status);
/* Stops the watchdog's timer and frees s once its handle has closed (the
 * loop must run on).  NULL is a no-op. */
void rp_service_close(struct rp_service *s);

#endif
