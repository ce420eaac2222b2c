/* The webhook transport of notifications (notify_sink.h): the event's JSON
 * POSTed to the entry's URL, through the notifier's one HTTP client, with
 * the certificate verified. */
#include <string.h>

#include "http_client.h"
#include "log.h"
#include "notify_sink.h"
#include "util.h"

/* The URL as logs may show it: scheme and host only, since the path and
 * query of a webhook often carry its secret (and the user part a
 * password). */
static char *
webhook_describe(const struct rp_notify *cfg)
{
  const char *url = cfg->webhook;
  const char *p = strstr(url, "://");
  if (!p)
    return rp_xstrdup("?");
  const char *host = p + 3;
  size_t alen = strcspn(host, "/?#");
  const char *at = memrchr(host, '@', alen);
  if (at) {
    alen -= (size_t)(at + 1 - host);
    host = at + 1;
  }
  bool more = host[alen] != '\0' && strcmp(host + alen, "/") != 0;
  return rp_xasprintf("%.*s%.*s%s", (int)(p + 3 - url), url, (int)alen, host,
                      more ? "/…" : "");
}

static int
discard_cb(void *arg, const char *data, size_t len)
{
  (void)arg, (void)data, (void)len;
  return 0;
}

static void
webhook_done_cb(void *arg, const struct rp_http_response *resp,
                const struct rp_error *err)
{
  struct rp_notify_sink *s = arg;
  s->inflight = NULL;
  if (!resp) {
    const char *m = err && err->message ? err->message : "transport failure";
    /* The client names the request as "POST <path>": the path is "" here
     * (the URL, and its secret, are the endpoint's). */
    if (strncmp(m, "POST : ", 7) == 0)
      m += 7;
    rp_notify_sink_attempt_done(s, false, true, m);
    return;
  }
  if (resp->status >= 200 && resp->status < 300) {
    rp_notify_sink_attempt_done(s, true, false, NULL);
    return;
  }
  char why[64];
  snprintf(why, sizeof(why), "HTTP %ld", resp->status);
  /* A refusal (400, 401, 404...) will not change by asking again; a busy
   * or failing receiver (408, 429, 5xx) may recover. */
  bool retry =
      resp->status == 408 || resp->status == 429 || resp->status >= 500;
  rp_notify_sink_attempt_done(s, false, retry, why);
}

static void
webhook_send(struct rp_notify_sink *s)
{
  struct rp_notify_hub *h = s->hub;
  cleanup_error struct rp_error *err = NULL;
  if (!h->http && !h->http_failed &&
      rp_http_new(h->loop, &h->http, &err) != 0) {
    rp_err("notify: cannot start the HTTP client: %s", err->message);
    h->http_failed = true;
  }
  if (!h->http) {
    rp_notify_sink_attempt_done(s, false, false, "no HTTP client");
    return;
  }
  cleanup_free char *hdr_event =
      rp_xasprintf("X-Reaper-Event: %s", s->current->event);
  const char *headers[] = {"Content-Type: application/json", hdr_event, NULL};
  struct rp_http_endpoint ep = {.base_url = s->cfg.webhook,
                                .verify_peer = true};
  struct rp_http_request req = {
      .method = "POST",
      .path = "",
      .headers = headers,
      .body = s->current->body,
      .body_len = s->current->len,
      .timeout_ms = s->cfg.timeout_ms,
      .on_data = discard_cb,
  };
  struct rp_http_xfer *x = NULL;
  if (rp_http_send(h->http, &ep, &req, webhook_done_cb, s, &x) != 0) {
    rp_notify_sink_attempt_done(s, false, false,
                                "the request could not be made");
    return;
  }
  s->inflight = x;
}

/* Its callback runs now, with RP_ECANCELED. */
static void
webhook_cancel(struct rp_notify_sink *s)
{
  rp_http_cancel(s->inflight);
}

const struct rp_notify_transport rp_notify_webhook = {
    .type = "webhook",
    .describe = webhook_describe,
    .send = webhook_send,
    .cancel = webhook_cancel,
};
