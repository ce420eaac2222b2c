/* The configuration parser on any bytes: what `reaper check-config` and a
 * SIGHUP reload read.  Besides not crashing or leaking, it keeps its
 * promises (config.h, SPEC.md): a failure is RP_ECONFIG naming
 * "FILE:LINE:COL:" with 1-based positions and leaves *out alone; a success
 * holds only values the file format allows. */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "config.h"
#include "provider.h"
#include "util.h"

#define CONFIG_NAME "fuzz.yaml"

static bool
is_http_url(const char *s)
{
  return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static void
check_window(const struct rp_window *w)
{
  if (!w->set)
    return;
  RP_FUZZ_CHECK(w->days != 0 && w->days <= 0x7f);
  RP_FUZZ_CHECK(w->start_min >= 0 && w->start_min < 24 * 60);
  RP_FUZZ_CHECK(w->end_min >= 0 && w->end_min < 24 * 60);
  RP_FUZZ_CHECK(w->start_min != w->end_min);
}

static void
check_policy(const struct rp_config *c, const struct rp_policy *p)
{
  RP_FUZZ_CHECK(p->name && p->name[0]);
  /* Names are unique: a lookup finds this very policy. */
  RP_FUZZ_CHECK(rp_config_policy(c, p->name) == p);
  RP_FUZZ_CHECK(p->max_age_ms >= 1);
  RP_FUZZ_CHECK(p->jitter >= 0 && p->jitter <= 1);
  RP_FUZZ_CHECK(p->grace_ms >= 0);
  RP_FUZZ_CHECK(p->strategy >= 0 && p->strategy < RP_STRATEGY__COUNT);
  RP_FUZZ_CHECK(p->match_kind >= -1 && p->match_kind < RP_KIND__COUNT);
  RP_FUZZ_CHECK(p->max_unavailable.value >= 1);
  RP_FUZZ_CHECK(!p->max_unavailable.percent || p->max_unavailable.value <= 100);
  RP_FUZZ_CHECK(p->health_timeout_ms >= 1);
  RP_FUZZ_CHECK(p->hard_max_age_ms == 0 || p->hard_max_age_ms >= p->max_age_ms);
  RP_FUZZ_CHECK(p->drain_timeout_ms >= 1);
  RP_FUZZ_CHECK(p->notify_before_ms >= 0);
  RP_FUZZ_CHECK(p->drain == NULL || p->drain[0] != NULL);
  RP_FUZZ_CHECK(p->replace == NULL || p->replace[0] != NULL);
  for (size_t i = 0; i < p->n_match_labels; i++)
    RP_FUZZ_CHECK(p->match_labels[i].key && p->match_labels[i].value);
  if (p->match_provider) {
    bool found = false;
    for (size_t i = 0; i < c->n_providers && !found; i++)
      found = strcmp(c->providers[i].name, p->match_provider) == 0;
    RP_FUZZ_CHECK(found);
  }
  check_window(&p->window);
}

static void
check_config(const struct rp_config *c)
{
  RP_FUZZ_CHECK(strcmp(c->path, CONFIG_NAME) == 0);
  RP_FUZZ_CHECK(c->listen && c->audit_log);
  RP_FUZZ_CHECK(c->audit_checkpoint_every >= 1);
  RP_FUZZ_CHECK(c->resync_ms >= 1);
  RP_FUZZ_CHECK(c->n_providers >= 1 && c->n_policies >= 1);
  for (size_t i = 0; i < c->n_providers; i++) {
    const struct rp_provider_config *pc = &c->providers[i];
    RP_FUZZ_CHECK(pc->name && pc->name[0] && pc->type);
    bool known = false;
    for (size_t t = 0; rp_provider_types[t] && !known; t++)
      known = strcmp(rp_provider_types[t], pc->type) == 0;
    RP_FUZZ_CHECK(known);
    for (size_t j = 0; j < i; j++)
      RP_FUZZ_CHECK(strcmp(c->providers[j].name, pc->name) != 0);
  }
  for (size_t i = 0; i < c->n_policies; i++)
    check_policy(c, &c->policies[i]);
  for (size_t i = 0; i < c->n_exclude_labels; i++)
    RP_FUZZ_CHECK(c->exclude_labels[i].key && c->exclude_labels[i].value);
  for (size_t i = 0; i < c->n_notify; i++) {
    const struct rp_notify *n = &c->notify[i];
    RP_FUZZ_CHECK((n->webhook == NULL) != (n->command == NULL));
    RP_FUZZ_CHECK(n->webhook == NULL || is_http_url(n->webhook));
    RP_FUZZ_CHECK(n->command == NULL || n->command[0] != NULL);
    RP_FUZZ_CHECK(n->timeout_ms >= 1);
    RP_FUZZ_CHECK(n->retries >= 0 && n->retries <= 100);
  }
}

/* "fuzz.yaml:LINE:COL: ..." with LINE and COL from 1. */
static void
check_error(const struct rp_error *err)
{
  int line = 0, col = 0, end = 0;
  RP_FUZZ_CHECK(err != NULL && err->code == RP_ECONFIG && err->message);
  RP_FUZZ_CHECK(
      sscanf(err->message, CONFIG_NAME ":%d:%d: %n", &line, &col, &end) == 2 &&
      end > 0);
  RP_FUZZ_CHECK(line >= 1 && col >= 1);
}

int
rp_fuzz_config_run(const uint8_t *data, size_t size)
{
  /* Sentinel: a failed parse must leave *out as it was. */
  static struct rp_config untouched;
  struct rp_config *c = &untouched;
  cleanup_error struct rp_error *err = NULL;
  /* The text is not NUL-terminated: the parser must honour len. */
  int rc = rp_config_parse(CONFIG_NAME, (const char *)data, size, &c, &err);
  if (rc == 0) {
    RP_FUZZ_CHECK(err == NULL && c != NULL && c != &untouched);
    check_config(c);
    rp_config_free(c);
  } else {
    RP_FUZZ_CHECK(rc == -1 && c == &untouched);
    check_error(err);
  }
  return 0;
}

#ifndef RP_FUZZ_NO_MAIN
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return rp_fuzz_config_run(data, size);
}
#endif
