/* The syslog copy of the audit log (audit.h, "Syslog copy"): after a write
 * and its fsync, the writer sends every line it wrote, as it is, RFC 3164
 * style as syslog(3) does, to a datagram socket it alone uses, without ever
 * blocking for long; the chain never depends on it. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "audit_writer.h"

/* Syslog daemons cut long messages anyway (rsyslog at 8 KiB by default). */
#define SYSLOG_MAX 8192
#define SYSLOG_WAIT_MS 100

void
rp_audit_syslog_close(struct rp_audit_syslog *s)
{
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
}

static int
connect_socket(struct rp_audit_syslog *s)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(s->path) >= sizeof(sa.sun_path))
    return -1;
  memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
  s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s->fd < 0)
    return -1;
  if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    rp_audit_syslog_close(s);
    return -1;
  }
  return 0;
}

/* Sends one message; false when it cannot: no socket, or a full one that
 * does not drain within SYSLOG_WAIT_MS. */
static bool
send_message(struct rp_audit_syslog *s, const char *msg, size_t len)
{
  bool waited = false;
  for (int reconnects = 0; reconnects < 2;) {
    if (s->fd < 0 && connect_socket(s) != 0)
      return false;
    ssize_t n = send(s->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0)
      return true;
    if (errno == EINTR)
      continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && !waited) {
      struct pollfd p = {.fd = s->fd, .events = POLLOUT};
      waited = true;
      if (poll(&p, 1, SYSLOG_WAIT_MS) > 0)
        continue;
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return false;
    /* The daemon restarted or its socket went: connect once more. */
    rp_audit_syslog_close(s);
    reconnects++;
  }
  return false;
}

void
rp_audit_syslog_copy(struct rp_audit_syslog *s, const char *buf, size_t len)
{
  if (!s->path)
    return;
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  char date[32];
  strftime(date, sizeof(date), "%b %e %H:%M:%S", &tm);
  char head[96];
  int hn = snprintf(head, sizeof(head),
                    "<%d>%s reaper[%d]: ", LOG_AUTHPRIV | LOG_INFO, date,
                    (int)getpid());
  if (hn < 0 || (size_t)hn >= sizeof(head))
    return;
  for (const char *p = buf, *end = buf + len; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n > 0) {
      char msg[sizeof(head) + SYSLOG_MAX + 64];
      size_t take = n > SYSLOG_MAX ? SYSLOG_MAX : n;
      memcpy(msg, head, (size_t)hn);
      memcpy(msg + hn, p, take);
      size_t m = (size_t)hn + take;
      if (take < n)
        m += (size_t)snprintf(msg + m, sizeof(msg) - m,
                              " [cut: %zu bytes, whole in the audit log]", n);
      if (!send_message(s, msg, m))
        __atomic_fetch_add(&s->dropped, 1, __ATOMIC_RELAXED);
    }
    p += n + 1;
  }
}
