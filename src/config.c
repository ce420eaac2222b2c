/* The configuration: SPEC.md's YAML file to struct rp_config.
 *
 * config_yaml.c turns the text into a tree with positions; this file walks
 * the tree section by section, checks every key and value, fills in the
 * defaults and points every error at the offending key or value
 * ("FILE:LINE:COL: policies[0].max_age: ...").  Value syntaxes (durations,
 * percentages, days, times, zones) live in config_values.c.
 *
 * Choices the SPEC leaves open, made here and in the example files:
 * - booleans are true/false (and True/TRUE/False/FALSE); YAML 1.1's yes/no/
 *   on/off are rejected with a hint rather than guessed at;
 * - jitter is a percentage ("10%", "2.5%") or 0; a bare number is rejected
 *   because `jitter: 1` could mean 1% or 100%;
 * - a null value (`key:` with nothing after it) for a section (agent,
 *   exclude, notify, labels) means "empty"; for a scalar setting it is an
 *   error, since it is almost always a value lost in editing;
 * - aliases and tags other than !!str are rejected. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "config_values.h"
#include "config_yaml.h"
#include "file_trust.h"
#include "image_ref.h"
#include "provider.h"
#include "strmap.h"
#include "strv.h"
#include "util.h"
#include "workload.h"

/* Configuration files are a few kilobytes; refuse to slurp a wrong path
 * that points at something huge. */
#define MAX_FILE_SIZE (4 * 1024 * 1024)

#define DEFAULT_LISTEN "127.0.0.1:9470"
#define DEFAULT_AUDIT_LOG "/var/lib/reaper/audit.jsonl"
#define DEFAULT_CHECKPOINT_EVERY 1000
#define DEFAULT_RESYNC_MS (60 * 1000)
#define DEFAULT_GRACE_MS (30 * 1000)
#define DEFAULT_HEALTH_TIMEOUT_MS (60 * 1000)
#define DEFAULT_SURVIVE_MS (2 * 1000)
#define MAX_SURVIVE_MS (10 * 60 * 1000)
#define DEFAULT_DRAIN_TIMEOUT_MS (30 * 1000)
#define DEFAULT_NOTIFY_TIMEOUT_MS (10 * 1000)
#define DEFAULT_NOTIFY_RETRIES 3
#define DEFAULT_VERIFY_TIMEOUT_MS (5 * 60 * 1000)

/* Positions the structs do not keep but cross-checks need after the
 * sections are parsed. */
struct walk {
  struct rp_config_parse ps;
  struct rp_config *c;                  /* borrowed: being filled */
  struct rp_mark *provider_name_marks;  /* owned, one per provider */
  struct rp_mark *policy_name_marks;    /* owned, one per policy */
  struct rp_mark *match_provider_marks; /* owned, one per policy */
  /* Names seen so far, to their index: duplicates and references found
   * in constant time (a scan of all earlier ones made a configuration of
   * many policies load in quadratic time).  They borrow the names in c. */
  struct rp_strmap provider_names; /* owned */
  struct rp_strmap policy_names;   /* owned */
};

/* HOST:PORT, the port 0..65535 (0: any free port, for tests); "" is off. */
static int
check_listen(struct rp_config_parse *ps, const struct rp_config_node *n,
             const char *path, const char *s)
{
  if (*s == '\0')
    return 0;
  const char *colon = strrchr(s, ':');
  long port;
  if (colon == NULL || colon == s ||
      rp_config_int_parse(colon + 1, &port) < 0 || port > 65535)
    return rp_config_fail(ps, n->mark, path,
                          "expected HOST:PORT like 127.0.0.1:9470 (or \"\" "
                          "to turn the listener off), got '%s'",
                          s);
  return 0;
}

/* agent.audit_rotate_size: "100MiB", "10MB", "4096" (bytes), at least
 * 1KiB: a smaller part would hold barely a line. */
static int
get_size(struct rp_config_parse *ps, const struct rp_config_node *n,
         const char *path, int64_t *out)
{
  static const struct {
    const char *unit;
    int64_t bytes;
  } units[] = {{"", 1},
               {"B", 1},
               {"KB", 1000},
               {"KiB", 1024},
               {"MB", 1000 * 1000},
               {"MiB", 1024 * 1024},
               {"GB", 1000 * 1000 * 1000},
               {"GiB", (int64_t)1024 * 1024 * 1024},
               {"TB", (int64_t)1000 * 1000 * 1000 * 1000},
               {"TiB", (int64_t)1024 * 1024 * 1024 * 1024}};
  if (rp_config_want_scalar(ps, n, path, "a size like 100MiB") < 0)
    return -1;
  const char *s = n->text;
  const char *u = s;
  while (*u >= '0' && *u <= '9')
    u++;
  char *end = NULL;
  errno = 0;
  unsigned long long v = u > s ? strtoull(s, &end, 10) : 0;
  for (size_t i = 0; u > s && end == u && errno == 0 && i < RP_ARRAY_LEN(units);
       i++) {
    if (strcmp(u, units[i].unit) != 0)
      continue;
    if (v > (unsigned long long)(INT64_MAX / units[i].bytes))
      break;
    int64_t bytes = (int64_t)v * units[i].bytes;
    if (bytes < 1024)
      return rp_config_fail(ps, n->mark, path, "%s is too small: at least 1KiB",
                            s);
    *out = bytes;
    return 0;
  }
  return rp_config_fail(ps, n->mark, path,
                        "expected a size like 100MiB (B, KB, KiB, MB, MiB, "
                        "GB, GiB, TB, TiB), got '%s'",
                        s);
}

/* agent.audit_rotate: daily, or never (the default). */
static int
get_rotate(struct rp_config_parse *ps, const struct rp_config_node *n,
           const char *path, bool *daily)
{
  if (rp_config_want_scalar(ps, n, path, "daily or never") < 0)
    return -1;
  if (strcmp(n->text, "daily") != 0 && strcmp(n->text, "never") != 0)
    return rp_config_fail(ps, n->mark, path,
                          "expected daily or never, got '%s'", n->text);
  *daily = strcmp(n->text, "daily") == 0;
  return 0;
}

/* A DNS name: dot-separated labels of letters, digits and inner hyphens. */
static bool
valid_host_name(const char *s)
{
  size_t len = strlen(s);
  if (len == 0 || len > 253)
    return false;
  for (const char *label = s;;) {
    size_t n = strcspn(label, ".");
    if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
      return false;
    for (size_t i = 0; i < n; i++)
      if (!isalnum((unsigned char)label[i]) && label[i] != '-')
        return false;
    if (label[n] == '\0')
      return true;
    label += n + 1;
  }
}

static int
parse_agent(struct walk *w, const struct rp_config_node *n)
{
  static const char *const keys[] = {"listen",
                                     "listen_token_file",
                                     "listen_names",
                                     "audit_log",
                                     "audit_signing_key",
                                     "audit_checkpoint_every",
                                     "audit_rotate_size",
                                     "audit_rotate",
                                     "audit_syslog",
                                     "resync",
                                     "dry_run",
                                     NULL};
  struct rp_config_parse *ps = &w->ps;
  struct rp_config *c = w->c;
  const struct rp_config_node *v;
  char p[RP_CONFIG_PATH_LEN];
  if (rp_config_node_is_null(n))
    return 0;
  if (rp_config_want_map(ps, n, "agent") < 0 ||
      rp_config_check_keys(ps, n, "agent", keys, NULL) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "listen")) &&
      (rp_config_get_string(ps, v, rp_config_join(p, "agent", "listen"), true,
                            &c->listen) < 0 ||
       check_listen(ps, v, p, c->listen) < 0))
    return -1;
  if ((v = rp_config_node_get(n, "listen_token_file")) &&
      rp_config_get_string(ps, v,
                           rp_config_join(p, "agent", "listen_token_file"),
                           false, &c->listen_token_file) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "listen_names")) &&
      rp_config_get_strv(ps, v, rp_config_join(p, "agent", "listen_names"),
                         false, &c->listen_names) < 0)
    return -1;
  for (size_t i = 0; c->listen_names && c->listen_names[i]; i++)
    if (!valid_host_name(c->listen_names[i]))
      return rp_config_fail(ps, v->kids[i]->mark,
                            rp_config_join_index(p, "agent.listen_names", i),
                            "'%s' is not a host name", c->listen_names[i]);
  if ((v = rp_config_node_get(n, "audit_log")) &&
      rp_config_get_string(ps, v, rp_config_join(p, "agent", "audit_log"),
                           false, &c->audit_log) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "audit_signing_key")) &&
      rp_config_get_string(ps, v,
                           rp_config_join(p, "agent", "audit_signing_key"),
                           false, &c->audit_signing_key) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "audit_checkpoint_every")) &&
      rp_config_get_int(ps, v,
                        rp_config_join(p, "agent", "audit_checkpoint_every"), 1,
                        100000000, &c->audit_checkpoint_every) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "audit_rotate_size")) &&
      get_size(ps, v, rp_config_join(p, "agent", "audit_rotate_size"),
               &c->audit_rotate_size) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "audit_rotate")) &&
      get_rotate(ps, v, rp_config_join(p, "agent", "audit_rotate"),
                 &c->audit_rotate_daily) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "audit_syslog")) &&
      rp_config_get_bool(ps, v, rp_config_join(p, "agent", "audit_syslog"),
                         &c->audit_syslog) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "resync")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, "agent", "resync"), 1,
                             &c->resync_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "dry_run")) &&
      rp_config_get_bool(ps, v, rp_config_join(p, "agent", "dry_run"),
                         &c->dry_run) < 0)
    return -1;
  return 0;
}

/* The common keys, and those of the provider's type. */
static int
check_provider_keys(struct rp_config_parse *ps, const struct rp_config_node *n,
                    const char *at, const char *const *common,
                    const struct rp_provider_ops *ops)
{
  size_t nc = 0, no = 0;
  while (common[nc])
    nc++;
  while (ops && ops->options && ops->options[no].key)
    no++;
  cleanup_free const char **keys = rp_xcalloc(nc + no + 1, sizeof(*keys));
  memcpy(keys, common, nc * sizeof(*keys));
  for (size_t i = 0; i < no; i++)
    keys[nc + i] = ops->options[i].key;
  /* Another type's setting: say whose it is. */
  for (size_t i = 0; i < n->n_kids; i += 2) {
    const struct rp_config_node *k = n->kids[i];
    bool mine = false;
    for (size_t j = 0; keys[j] && !mine; j++)
      mine = strcmp(keys[j], k->text) == 0;
    char whose[128] = "";
    for (size_t t = 0; !mine && rp_provider_types[t]; t++) {
      const struct rp_provider_ops *other =
          rp_provider_lookup(rp_provider_types[t]);
      for (size_t j = 0; other && other->options && other->options[j].key; j++)
        if (strcmp(other->options[j].key, k->text) == 0) {
          size_t used = strlen(whose);
          snprintf(whose + used, sizeof(whose) - used, "%s%s",
                   used ? " and " : "", rp_provider_types[t]);
        }
    }
    if (whose[0])
      return rp_config_fail(ps, k->mark, at,
                            "'%s' applies to %s providers only, not %s",
                            k->text, whose, ops ? ops->type : "?");
  }
  return rp_config_check_keys(ps, n, at, keys, NULL);
}

/* The settings of the provider's own type, typed as it says, checked by
 * it. */
static int
parse_provider_options(struct rp_config_parse *ps,
                       const struct rp_config_node *n, const char *at,
                       const struct rp_provider_ops *ops,
                       struct rp_provider_config *pc)
{
  pc->options = json_object();
  for (size_t i = 0; ops && ops->options && ops->options[i].key; i++) {
    const struct rp_provider_option *o = &ops->options[i];
    const struct rp_config_node *v = rp_config_node_get(n, o->key);
    if (!v)
      continue;
    char p[RP_CONFIG_PATH_LEN], why[256];
    rp_config_join(p, at, o->key);
    cleanup_json json_t *value = NULL;
    if (o->type == RP_OPTION_BOOL) {
      bool b = false;
      if (rp_config_get_bool(ps, v, p, &b) < 0)
        return -1;
      value = json_boolean(b);
    } else if (o->type == RP_OPTION_STRINGS) {
      char **strv = NULL;
      if (rp_config_get_strv(ps, v, p, false, &strv) < 0)
        return -1;
      value = json_array();
      for (char **x = strv; x && *x; x++)
        json_array_append_new(value, json_string(*x));
      rp_strv_free(strv);
    } else {
      char *str = NULL;
      if (rp_config_get_string(ps, v, p, false, &str) < 0)
        return -1;
      value = json_string(str);
      free(str);
    }
    if (ops->option_valid &&
        !ops->option_valid(o->key, value, why, sizeof(why)))
      return rp_config_fail(ps, v->mark, p, "%s", why);
    json_object_set(pc->options, o->key, value);
  }
  return 0;
}

json_t *
rp_provider_config_value(const struct rp_provider_config *pc, const char *key)
{
  return pc ? json_object_get(pc->options, key) : NULL;
}

const char *
rp_provider_config_option(const struct rp_provider_config *pc, const char *key)
{
  return json_string_value(rp_provider_config_value(pc, key));
}

bool
rp_provider_config_flag(const struct rp_provider_config *pc, const char *key)
{
  return json_is_true(rp_provider_config_value(pc, key));
}

static int
parse_provider(struct walk *w, const struct rp_config_node *n, size_t idx)
{
  static const char *const common_keys[] = {"name", "type", "endpoint", NULL};
  struct rp_config_parse *ps = &w->ps;
  struct rp_provider_config *pc = &w->c->providers[idx];
  const struct rp_config_node *v;
  char at[RP_CONFIG_PATH_LEN], p[RP_CONFIG_PATH_LEN];
  rp_config_join_index(at, "providers", idx);
  if (rp_config_want_map(ps, n, at) < 0)
    return -1;
  pc->mark = n->mark;

  if (!(v = rp_config_node_get(n, "name")))
    return rp_config_fail(ps, n->mark, at, "missing required key 'name'");
  if (rp_config_get_name(ps, v, rp_config_join(p, at, "name"), &pc->name) < 0)
    return -1;
  w->provider_name_marks[idx] = v->mark;
  size_t first;
  if (!rp_strmap_add(&w->provider_names, pc->name, strlen(pc->name), idx,
                     &first))
    return rp_config_fail(ps, v->mark, p,
                          "duplicate provider name '%s' (first at line %d)",
                          pc->name, w->provider_name_marks[first].line);

  if (!(v = rp_config_node_get(n, "type"))) {
    cleanup_free char *list = rp_config_join_list(rp_provider_types);
    return rp_config_fail(ps, n->mark, at,
                          "missing required key 'type' (one of: %s)", list);
  }
  if (rp_config_get_string(ps, v, rp_config_join(p, at, "type"), false,
                           &pc->type) < 0)
    return -1;
  bool known = false;
  for (size_t i = 0; rp_provider_types[i] && !known; i++)
    known = strcmp(rp_provider_types[i], pc->type) == 0;
  if (!known) {
    cleanup_free char *list = rp_config_join_list(rp_provider_types);
    char hint[RP_CONFIG_PATH_LEN];
    const char *near = rp_config_suggest(pc->type, rp_provider_types);
    return rp_config_fail(ps, v->mark, p,
                          "unknown provider type '%s'%s (known: %s)", pc->type,
                          rp_config_did_you_mean(hint, near), list);
  }
  const struct rp_provider_ops *ops = rp_provider_lookup(pc->type);
  if (check_provider_keys(ps, n, at, common_keys, ops) < 0 ||
      parse_provider_options(ps, n, at, ops, pc) < 0)
    return -1;

  if ((v = rp_config_node_get(n, "endpoint")) &&
      rp_config_get_string(ps, v, rp_config_join(p, at, "endpoint"), false,
                           &pc->endpoint) < 0)
    return -1;
  return 0;
}

static int
parse_providers(struct walk *w, const struct rp_config_node *root)
{
  struct rp_config_parse *ps = &w->ps;
  const struct rp_config_node *n = rp_config_node_get(root, "providers");
  if (n == NULL)
    return rp_config_fail(ps, root->mark, NULL,
                          "missing 'providers': at least one provider is "
                          "required");
  if (n->type != RP_CONFIG_SEQ && !rp_config_node_is_null(n))
    return rp_config_fail(ps, n->mark, "providers",
                          "expected a list (each entry starts with "
                          "'- name: ...'), got %s",
                          rp_config_node_describe(n));
  if (rp_config_node_is_null(n) || n->n_kids == 0)
    return rp_config_fail(ps, n->mark, "providers",
                          "at least one provider is required");
  w->c->providers = rp_xcalloc(n->n_kids, sizeof(*w->c->providers));
  w->c->n_providers = n->n_kids;
  w->provider_name_marks = rp_xcalloc(n->n_kids, sizeof(struct rp_mark));
  for (size_t i = 0; i < n->n_kids; i++)
    if (parse_provider(w, n->kids[i], i) < 0)
      return -1;
  return 0;
}

static int
parse_match(struct walk *w, const struct rp_config_node *n, const char *at,
            size_t idx)
{
  static const char *const keys[] = {"provider", "kind", "labels", "name",
                                     NULL};
  static const char *const kinds[] = {"container", "service", "node",
                                      "task",      "host",    NULL};
  struct rp_config_parse *ps = &w->ps;
  struct rp_policy *pol = &w->c->policies[idx];
  const struct rp_config_node *v;
  char m[RP_CONFIG_PATH_LEN], p[RP_CONFIG_PATH_LEN];
  rp_config_join(m, at, "match");
  if (rp_config_node_is_null(n))
    return 0;
  if (rp_config_want_map(ps, n, m) < 0 ||
      rp_config_check_keys(ps, n, m, keys, NULL) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "provider"))) {
    if (rp_config_get_string(ps, v, rp_config_join(p, m, "provider"), false,
                             &pol->match_provider) < 0)
      return -1;
    w->match_provider_marks[idx] = v->mark;
  }
  if ((v = rp_config_node_get(n, "kind"))) {
    cleanup_free char *kind = NULL;
    if (rp_config_get_string(ps, v, rp_config_join(p, m, "kind"), false,
                             &kind) < 0)
      return -1;
    pol->match_kind = rp_kind_parse(kind);
    if (pol->match_kind < 0) {
      cleanup_free char *list = rp_config_join_list(kinds);
      char hint[RP_CONFIG_PATH_LEN];
      const char *near = rp_config_suggest(kind, kinds);
      return rp_config_fail(ps, v->mark, p, "unknown kind '%s'%s (known: %s)",
                            kind, rp_config_did_you_mean(hint, near), list);
    }
  }
  if ((v = rp_config_node_get(n, "labels")) &&
      rp_config_get_labels(ps, v, rp_config_join(p, m, "labels"),
                           &pol->match_labels, &pol->n_match_labels) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "name")) &&
      rp_config_get_string(ps, v, rp_config_join(p, m, "name"), false,
                           &pol->match_name) < 0)
    return -1;
  return 0;
}

static int
parse_window(struct walk *w, const struct rp_config_node *n, const char *at,
             struct rp_window *win)
{
  static const char *const keys[] = {"days", "start", "end", "tz", NULL};
  struct rp_config_parse *ps = &w->ps;
  const struct rp_config_node *v, *start, *end;
  char m[RP_CONFIG_PATH_LEN], p[RP_CONFIG_PATH_LEN];
  const char *why = NULL;
  rp_config_join(m, at, "window");
  if (rp_config_want_map(ps, n, m) < 0 ||
      rp_config_check_keys(ps, n, m, keys, NULL) < 0)
    return -1;
  win->set = true;
  win->days = 0x7f;
  if ((v = rp_config_node_get(n, "days"))) {
    rp_config_join(p, m, "days");
    if (v->type != RP_CONFIG_SEQ)
      return rp_config_fail(ps, v->mark, p,
                            "expected a list of days like [mon, tue], got %s",
                            rp_config_node_describe(v));
    if (v->n_kids == 0)
      return rp_config_fail(ps, v->mark, p,
                            "must not be empty: the window would never open");
    win->days = 0;
    for (size_t i = 0; i < v->n_kids; i++) {
      const struct rp_config_node *d = v->kids[i];
      char dp[RP_CONFIG_PATH_LEN];
      uint8_t bits;
      rp_config_join_index(dp, p, i);
      if (rp_config_want_scalar(ps, d, dp,
                                "a day (mon..sun, weekdays, weekend)") < 0)
        return -1;
      if (rp_config_day_parse(d->text, &bits) < 0) {
        char hint[RP_CONFIG_PATH_LEN];
        const char *near = rp_config_suggest(d->text, rp_config_day_names);
        return rp_config_fail(ps, d->mark, dp,
                              "unknown day '%s'%s (use mon, tue, wed, "
                              "thu, fri, sat, sun, weekdays or weekend)",
                              d->text, rp_config_did_you_mean(hint, near));
      }
      win->days |= bits;
    }
  }
  if (!(start = rp_config_node_get(n, "start")) ||
      !(end = rp_config_node_get(n, "end")))
    return rp_config_fail(ps, n->mark, m,
                          "a window needs both 'start' and 'end' (\"HH:MM\")");
  if (rp_config_want_scalar(ps, start, rp_config_join(p, m, "start"),
                            "a time \"HH:MM\"") < 0)
    return -1;
  if (rp_config_hhmm_parse(start->text, &win->start_min) < 0)
    return rp_config_fail(ps, start->mark, p,
                          "invalid time '%s': expected HH:MM from 00:00 to "
                          "23:59",
                          start->text);
  if (rp_config_want_scalar(ps, end, rp_config_join(p, m, "end"),
                            "a time \"HH:MM\"") < 0)
    return -1;
  if (rp_config_hhmm_parse(end->text, &win->end_min) < 0)
    return rp_config_fail(ps, end->mark, p,
                          "invalid time '%s': expected HH:MM from 00:00 to "
                          "23:59",
                          end->text);
  if (win->start_min == win->end_min)
    return rp_config_fail(ps, end->mark, p,
                          "the window's end equals its start (%s): it would "
                          "be empty",
                          end->text);
  if ((v = rp_config_node_get(n, "tz"))) {
    if (rp_config_get_string(ps, v, rp_config_join(p, m, "tz"), false,
                             &win->tz) < 0)
      return -1;
    if (rp_config_zone_check(win->tz, &why) < 0)
      return rp_config_fail(ps, v->mark, p, "unknown time zone '%s': %s",
                            win->tz, why);
  }
  return 0;
}

static int
get_strategy(struct rp_config_parse *ps, const struct rp_config_node *v,
             const char *path, struct rp_policy *pol)
{
  static const char *const names[] = {
      "recreate",     "restart",       "stop", "remove",
      "force-update", "drain-replace", NULL};
  cleanup_free char *s = NULL;
  if (rp_config_get_string(ps, v, path, false, &s) < 0)
    return -1;
  int st = rp_strategy_parse(s);
  if (st < 0) {
    cleanup_free char *list = rp_config_join_list(names);
    char hint[RP_CONFIG_PATH_LEN];
    const char *near = rp_config_suggest(s, names);
    return rp_config_fail(ps, v->mark, path,
                          "unknown strategy '%s'%s (known: %s)", s,
                          rp_config_did_you_mean(hint, near), list);
  }
  pol->strategy = (enum rp_strategy)st;
  pol->strategy_set = true;
  return 0;
}

static int
get_order(struct rp_config_parse *ps, const struct rp_config_node *v,
          const char *path, enum rp_order *out)
{
  static const char *const names[] = {"start-first", "stop-first", NULL};
  cleanup_free char *s = NULL;
  if (rp_config_get_string(ps, v, path, false, &s) < 0)
    return -1;
  if (strcmp(s, "start-first") == 0) {
    *out = RP_ORDER_START_FIRST;
  } else if (strcmp(s, "stop-first") == 0) {
    *out = RP_ORDER_STOP_FIRST;
  } else {
    char hint[RP_CONFIG_PATH_LEN];
    const char *near = rp_config_suggest(s, names);
    return rp_config_fail(ps, v->mark, path,
                          "unknown order '%s'%s (known: start-first, "
                          "stop-first)",
                          s, rp_config_did_you_mean(hint, near));
  }
  return 0;
}

static void
policy_defaults(struct rp_policy *pol)
{
  pol->match_kind = -1;
  pol->grace_ms = DEFAULT_GRACE_MS;
  pol->order = RP_ORDER_STOP_FIRST;
  pol->max_unavailable = (struct rp_budget){.value = 1, .percent = false};
  pol->health_timeout_ms = DEFAULT_HEALTH_TIMEOUT_MS;
  pol->survive_ms = DEFAULT_SURVIVE_MS;
  pol->drain_timeout_ms = DEFAULT_DRAIN_TIMEOUT_MS;
  pol->update_check_ms = RP_CONFIG_DEFAULT_CHECK_MS;
  pol->update_max_failures = 1;
  pol->verify_timeout_ms = DEFAULT_VERIFY_TIMEOUT_MS;
}

bool
rp_policy_follows_content(const struct rp_policy *p)
{
  return p && (p->update || p->max_image_age_ms > 0 || p->pull || p->verify);
}

int64_t
rp_policy_check_ms(const struct rp_policy *p)
{
  return p->update ? p->update_check_ms : RP_CONFIG_DEFAULT_CHECK_MS;
}

/* update: {check, settle, max_failures, allow} */
static int
parse_update(struct walk *w, const struct rp_config_node *n, const char *at,
             struct rp_policy *pol)
{
  static const char *const keys[] = {"check", "settle", "max_failures", "allow",
                                     NULL};
  struct rp_config_parse *ps = &w->ps;
  char path[RP_CONFIG_PATH_LEN], p[RP_CONFIG_PATH_LEN];
  rp_config_join(path, at, "update");
  pol->update = true;
  if (rp_config_node_is_null(n))
    return 0; /* `update:` alone: every default */
  if (rp_config_want_map(ps, n, path) < 0 ||
      rp_config_check_keys(ps, n, path, keys, NULL) < 0)
    return -1;
  const struct rp_config_node *v;
  if ((v = rp_config_node_get(n, "check")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, path, "check"), 1,
                             &pol->update_check_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "settle")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, path, "settle"), 0,
                             &pol->update_settle_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "max_failures")) &&
      rp_config_get_int(ps, v, rp_config_join(p, path, "max_failures"), 1, 1000,
                        &pol->update_max_failures) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "allow"))) {
    rp_config_join(p, path, "allow");
    if (rp_config_get_strv(ps, v, p, false, &pol->update_allow) < 0)
      return -1;
    for (size_t i = 0; pol->update_allow[i]; i++)
      if (!rp_image_digest_valid(pol->update_allow[i])) {
        char q[RP_CONFIG_PATH_LEN];
        return rp_config_fail(ps, v->kids[i]->mark,
                              rp_config_join_index(q, p, i),
                              "'%s' is not a digest (sha256: and 64 "
                              "lower-case hex digits, as RepoDigests lists "
                              "it)",
                              pol->update_allow[i]);
      }
  }
  return 0;
}

static int
parse_policy(struct walk *w, const struct rp_config_node *n, size_t idx)
{
  static const char *const keys[] = {"name",
                                     "match",
                                     "max_age",
                                     "jitter",
                                     "grace",
                                     "strategy",
                                     "order",
                                     "max_unavailable",
                                     "health_timeout",
                                     "pull",
                                     "hard_max_age",
                                     "drain",
                                     "drain_timeout",
                                     "window",
                                     "replace",
                                     "notify_before",
                                     "selectable",
                                     "update",
                                     "max_image_age",
                                     "verify",
                                     "verify_timeout",
                                     "survive",
                                     NULL};
  static const struct rp_config_moved_key moved[] = {
      {"provider", "match"},      {"kind", "match"},   {"labels", "match"},
      {"days", "window"},         {"start", "window"}, {"end", "window"},
      {"tz", "window"},           {"check", "update"}, {"settle", "update"},
      {"max_failures", "update"}, {"allow", "update"}, {NULL, NULL}};
  struct rp_config_parse *ps = &w->ps;
  struct rp_policy *pol = &w->c->policies[idx];
  const struct rp_config_node *v;
  const char *why = NULL;
  char at[RP_CONFIG_PATH_LEN], p[RP_CONFIG_PATH_LEN];
  policy_defaults(pol);
  rp_config_join_index(at, "policies", idx);
  if (rp_config_want_map(ps, n, at) < 0 ||
      rp_config_check_keys(ps, n, at, keys, moved) < 0)
    return -1;
  pol->mark = n->mark;

  if (!(v = rp_config_node_get(n, "name")))
    return rp_config_fail(ps, n->mark, at, "missing required key 'name'");
  if (rp_config_get_name(ps, v, rp_config_join(p, at, "name"), &pol->name) < 0)
    return -1;
  w->policy_name_marks[idx] = v->mark;
  size_t first;
  if (!rp_strmap_add(&w->policy_names, pol->name, strlen(pol->name), idx,
                     &first))
    return rp_config_fail(ps, v->mark, p,
                          "duplicate policy name '%s' (first at line %d)",
                          pol->name, w->policy_name_marks[first].line);

  if ((v = rp_config_node_get(n, "match")) && parse_match(w, v, at, idx) < 0)
    return -1;
  if (!(v = rp_config_node_get(n, "max_age")))
    return rp_config_fail(ps, n->mark, at,
                          "missing required key 'max_age' (e.g. max_age: 2h)");
  if (rp_config_get_duration(ps, v, rp_config_join(p, at, "max_age"), 1,
                             &pol->max_age_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "jitter"))) {
    rp_config_join(p, at, "jitter");
    if (rp_config_want_scalar(ps, v, p, "a percentage like 10%") < 0)
      return -1;
    if (rp_config_jitter_parse(v->text, &pol->jitter, &why) < 0)
      return rp_config_fail(ps, v->mark, p, "invalid jitter '%s': %s", v->text,
                            why);
  }
  if ((v = rp_config_node_get(n, "grace")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, at, "grace"), 0,
                             &pol->grace_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "strategy")) &&
      get_strategy(ps, v, rp_config_join(p, at, "strategy"), pol) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "order")) &&
      get_order(ps, v, rp_config_join(p, at, "order"), &pol->order) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "max_unavailable"))) {
    rp_config_join(p, at, "max_unavailable");
    if (rp_config_want_scalar(ps, v, p, "a number or a percentage") < 0)
      return -1;
    if (rp_config_budget_parse(v->text, &pol->max_unavailable, &why) < 0)
      return rp_config_fail(ps, v->mark, p, "invalid value '%s': %s", v->text,
                            why);
  }
  if ((v = rp_config_node_get(n, "health_timeout")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, at, "health_timeout"), 1,
                             &pol->health_timeout_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "survive"))) {
    const char *at_survive = rp_config_join(p, at, "survive");
    if (rp_config_get_duration(ps, v, at_survive, 0, &pol->survive_ms) < 0)
      return -1;
    /* It holds a budget slot and the old workload's resources. */
    if (pol->survive_ms > MAX_SURVIVE_MS)
      return rp_config_fail(ps, v->mark, at_survive,
                            "%s is longer than 10m: the old workload and a "
                            "budget slot are held that long",
                            v->text);
  }
  if ((v = rp_config_node_get(n, "pull")) &&
      rp_config_get_bool(ps, v, rp_config_join(p, at, "pull"), &pol->pull) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "selectable")) &&
      rp_config_get_bool(ps, v, rp_config_join(p, at, "selectable"),
                         &pol->selectable) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "hard_max_age"))) {
    if (rp_config_get_duration(ps, v, rp_config_join(p, at, "hard_max_age"), 1,
                               &pol->hard_max_age_ms) < 0)
      return -1;
    if (pol->hard_max_age_ms < pol->max_age_ms) {
      char a[32], b[32];
      return rp_config_fail(
          ps, v->mark, p, "%s is shorter than max_age (%s)",
          rp_format_duration(pol->hard_max_age_ms, a, sizeof(a)),
          rp_format_duration(pol->max_age_ms, b, sizeof(b)));
    }
  }
  if ((v = rp_config_node_get(n, "drain")) &&
      rp_config_get_strv(ps, v, rp_config_join(p, at, "drain"), true,
                         &pol->drain) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "drain_timeout")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, at, "drain_timeout"), 1,
                             &pol->drain_timeout_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "window")) &&
      parse_window(w, v, at, &pol->window) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "replace")) &&
      rp_config_get_strv(ps, v, rp_config_join(p, at, "replace"), true,
                         &pol->replace) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "notify_before")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, at, "notify_before"), 0,
                             &pol->notify_before_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "update")) && parse_update(w, v, at, pol) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "max_image_age")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, at, "max_image_age"), 1,
                             &pol->max_image_age_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "verify")) &&
      rp_config_get_strv(ps, v, rp_config_join(p, at, "verify"), true,
                         &pol->verify) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "verify_timeout")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, at, "verify_timeout"), 1,
                             &pol->verify_timeout_ms) < 0)
    return -1;
  if ((pol->update || pol->max_image_age_ms > 0) && pol->strategy_set &&
      pol->strategy != RP_STRATEGY_RECREATE &&
      pol->strategy != RP_STRATEGY_FORCE_UPDATE) {
    v = rp_config_node_get(n, "strategy");
    return rp_config_fail(ps, v->mark, rp_config_join(p, at, "strategy"),
                          "strategy %s cannot run new content: update and "
                          "max_image_age need recreate (or force-update for "
                          "services)",
                          rp_strategy_name(pol->strategy));
  }
  return 0;
}

/* "recreate, restart, stop, remove" */
static void
strategy_list(unsigned bits, char *buf, size_t len)
{
  buf[0] = '\0';
  for (int s = 0; s < RP_STRATEGY__COUNT; s++)
    if (bits & RP_STRATEGY_BIT(s)) {
      size_t used = strlen(buf);
      snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
               rp_strategy_name((enum rp_strategy)s));
    }
}

/* A policy asks each provider it can match only for what that provider can
 * do to the kinds it can match there (the providers' declared
 * capabilities); a generic policy is checked against every provider. */
static int
check_policy_capabilities(struct walk *w, const struct rp_config_node *n,
                          const struct rp_policy *pol, const char *at)
{
  struct rp_config_parse *ps = &w->ps;
  const struct rp_config *c = w->c;
  const struct rp_config_node *order = rp_config_node_get(n, "order");
  const struct rp_config_node *pull = rp_config_node_get(n, "pull");
  const struct rp_config_node *drain = rp_config_node_get(n, "drain");
  const struct rp_config_node *replace = rp_config_node_get(n, "replace");
  /* The settings of fresh content, the first given (for its place). */
  const struct rp_config_node *fresh = NULL;
  const char *fresh_key = NULL;
  static const char *const fresh_settings[] = {"update", "max_image_age",
                                               "verify", NULL};
  for (size_t i = 0; !fresh && fresh_settings[i]; i++)
    if ((fresh = rp_config_node_get(n, fresh_settings[i])))
      fresh_key = fresh_settings[i];
  char path[RP_CONFIG_PATH_LEN];
  for (size_t i = 0; i < c->n_providers; i++) {
    const struct rp_provider_config *pc = &c->providers[i];
    if (pol->match_provider && strcmp(pol->match_provider, pc->name) != 0)
      continue;
    const struct rp_provider_ops *ops = rp_provider_lookup(pc->type);
    for (size_t k = 0; ops && k < ops->n_caps; k++) {
      const struct rp_capability *cap = &ops->caps[k];
      if (pol->match_kind >= 0 && (int)cap->kind != pol->match_kind)
        continue;
      const char *kind = rp_kind_name(cap->kind);
      char can[128];
      strategy_list(cap->strategies, can, sizeof(can));
      if (pol->strategy_set &&
          !(cap->strategies & RP_STRATEGY_BIT(pol->strategy)))
        return rp_config_fail(
            ps, rp_config_node_get(n, "strategy")->mark,
            rp_config_join(path, at, "strategy"),
            "provider %s (%s) cannot apply strategy %s to a %s (it can: "
            "%s); narrow the policy's match (provider:, kind:)",
            pc->name, pc->type, rp_strategy_name(pol->strategy), kind, can);
      if (order && pol->order == RP_ORDER_START_FIRST && !cap->start_first)
        return rp_config_fail(ps, order->mark,
                              rp_config_join(path, at, "order"),
                              "provider %s (%s) cannot start a %s's "
                              "replacement before stopping it; use "
                              "stop-first, or narrow the policy's match",
                              pc->name, pc->type, kind);
      if (pull && pol->pull && !cap->pull)
        return rp_config_fail(ps, pull->mark, rp_config_join(path, at, "pull"),
                              "provider %s (%s) cannot pull a %s's image; "
                              "narrow the policy's match",
                              pc->name, pc->type, kind);
      if (fresh && !cap->fresh_content) {
        /* The key itself, for its place. */
        const struct rp_config_node *key = NULL;
        for (size_t j = 0; j < n->n_kids; j += 2)
          if (strcmp(n->kids[j]->text, fresh_key) == 0)
            key = n->kids[j];
        return rp_config_fail(ps, key ? key->mark : fresh->mark,
                              rp_config_join(path, at, fresh_key),
                              "provider %s (%s) cannot follow a %s's image "
                              "at its registry (fresh content: update, "
                              "max_image_age, verify); narrow the policy's "
                              "match (provider:, kind:)",
                              pc->name, pc->type, kind);
      }
      if (drain && pol->drain && !cap->drain)
        return rp_config_fail(ps, drain->mark,
                              rp_config_join(path, at, "drain"),
                              "provider %s (%s) runs no drain hook for a %s; "
                              "narrow the policy's match",
                              pc->name, pc->type, kind);
      if (replace && pol->replace && !cap->replace)
        return rp_config_fail(ps, replace->mark,
                              rp_config_join(path, at, "replace"),
                              "provider %s (%s) runs no replace command for "
                              "a %s; narrow the policy's match",
                              pc->name, pc->type, kind);
    }
  }
  return 0;
}

static int
parse_policies(struct walk *w, const struct rp_config_node *root)
{
  struct rp_config_parse *ps = &w->ps;
  const struct rp_config_node *n = rp_config_node_get(root, "policies");
  if (n == NULL)
    return rp_config_fail(ps, root->mark, NULL,
                          "missing 'policies': at least one policy is "
                          "required");
  if (n->type != RP_CONFIG_SEQ && !rp_config_node_is_null(n))
    return rp_config_fail(ps, n->mark, "policies",
                          "expected a list (each entry starts with "
                          "'- name: ...'), got %s",
                          rp_config_node_describe(n));
  if (rp_config_node_is_null(n) || n->n_kids == 0)
    return rp_config_fail(ps, n->mark, "policies",
                          "at least one policy is required");
  w->c->policies = rp_xcalloc(n->n_kids, sizeof(*w->c->policies));
  w->c->n_policies = n->n_kids;
  w->policy_name_marks = rp_xcalloc(n->n_kids, sizeof(struct rp_mark));
  w->match_provider_marks = rp_xcalloc(n->n_kids, sizeof(struct rp_mark));
  for (size_t i = 0; i < n->n_kids; i++)
    if (parse_policy(w, n->kids[i], i) < 0)
      return -1;
  for (size_t i = 0; i < n->n_kids; i++) {
    char at[RP_CONFIG_PATH_LEN];
    rp_config_join_index(at, "policies", i);
    if (check_policy_capabilities(w, n->kids[i], &w->c->policies[i], at) < 0)
      return -1;
  }
  return 0;
}

static int
parse_exclude(struct walk *w, const struct rp_config_node *n)
{
  static const char *const keys[] = {"labels", "workload_opt_out", NULL};
  struct rp_config_parse *ps = &w->ps;
  const struct rp_config_node *v;
  if (rp_config_node_is_null(n))
    return 0;
  if (rp_config_want_map(ps, n, "exclude") < 0 ||
      rp_config_check_keys(ps, n, "exclude", keys, NULL) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "labels")) &&
      rp_config_get_labels(ps, v, "exclude.labels", &w->c->exclude_labels,
                           &w->c->n_exclude_labels) < 0)
    return -1;
  bool opt_out = true;
  if ((v = rp_config_node_get(n, "workload_opt_out")) &&
      rp_config_get_bool(ps, v, "exclude.workload_opt_out", &opt_out) < 0)
    return -1;
  w->c->deny_workload_opt_out = !opt_out;
  return 0;
}

static int
parse_notifier(struct walk *w, const struct rp_config_node *n, size_t idx)
{
  static const char *const keys[] = {"webhook", "command", "events",
                                     "timeout", "retries", NULL};
  struct rp_config_parse *ps = &w->ps;
  struct rp_notify *nt = &w->c->notify[idx];
  const struct rp_config_node *v;
  char at[RP_CONFIG_PATH_LEN], p[RP_CONFIG_PATH_LEN];
  nt->timeout_ms = DEFAULT_NOTIFY_TIMEOUT_MS;
  nt->retries = DEFAULT_NOTIFY_RETRIES;
  rp_config_join_index(at, "notify", idx);
  if (rp_config_want_map(ps, n, at) < 0 ||
      rp_config_check_keys(ps, n, at, keys, NULL) < 0)
    return -1;
  const struct rp_config_node *hook = rp_config_node_get(n, "webhook");
  const struct rp_config_node *cmd = rp_config_node_get(n, "command");
  if (hook == NULL && cmd == NULL)
    return rp_config_fail(ps, n->mark, at,
                          "needs 'webhook' (a URL) or 'command' (an argv "
                          "list)");
  if (hook && cmd)
    return rp_config_fail(ps, rp_config_node_key(n, "command")->mark, at,
                          "has both 'webhook' and 'command'; use one entry "
                          "for each");
  if (hook) {
    if (rp_config_get_string(ps, hook, rp_config_join(p, at, "webhook"), false,
                             &nt->webhook) < 0)
      return -1;
    if (strncmp(nt->webhook, "http://", 7) != 0 &&
        strncmp(nt->webhook, "https://", 8) != 0)
      return rp_config_fail(ps, hook->mark, p,
                            "expected an http:// or https:// URL, got '%s'",
                            nt->webhook);
  }
  if (cmd && rp_config_get_strv(ps, cmd, rp_config_join(p, at, "command"), true,
                                &nt->command) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "events"))) {
    if (rp_config_get_strv(ps, v, rp_config_join(p, at, "events"), false,
                           &nt->events) < 0)
      return -1;
    for (size_t i = 0; nt->events[i]; i++) {
      if (rp_config_event_known(nt->events[i]))
        continue;
      char hint[RP_CONFIG_PATH_LEN];
      const char *near = rp_config_suggest(nt->events[i], rp_config_events);
      cleanup_free char *list = rp_config_join_list(rp_config_events);
      char ep[RP_CONFIG_PATH_LEN];
      return rp_config_fail(
          ps, v->kids[i]->mark, rp_config_join_index(ep, p, i),
          "unknown event '%s'%s (known: %s, or a "
          "prefix like recycle.*)",
          nt->events[i], rp_config_did_you_mean(hint, near), list);
    }
  }
  if ((v = rp_config_node_get(n, "timeout")) &&
      rp_config_get_duration(ps, v, rp_config_join(p, at, "timeout"), 1,
                             &nt->timeout_ms) < 0)
    return -1;
  if ((v = rp_config_node_get(n, "retries")) &&
      rp_config_get_int(ps, v, rp_config_join(p, at, "retries"), 0, 100,
                        &nt->retries) < 0)
    return -1;
  return 0;
}

static int
parse_notify(struct walk *w, const struct rp_config_node *n)
{
  if (rp_config_node_is_null(n))
    return 0;
  if (n->type != RP_CONFIG_SEQ)
    return rp_config_fail(&w->ps, n->mark, "notify",
                          "expected a list (each entry starts with "
                          "'- webhook: ...' or '- command: ...'), got %s",
                          rp_config_node_describe(n));
  w->c->notify = rp_xcalloc(n->n_kids, sizeof(*w->c->notify));
  w->c->n_notify = n->n_kids;
  for (size_t i = 0; i < n->n_kids; i++)
    if (parse_notifier(w, n->kids[i], i) < 0)
      return -1;
  return 0;
}

/* Checks that need every section: a policy's match.provider must name a
 * configured provider. */
static int
cross_check(struct walk *w)
{
  struct rp_config *c = w->c;
  for (size_t i = 0; i < c->n_policies; i++) {
    const char *want = c->policies[i].match_provider;
    if (!want || rp_strmap_get(&w->provider_names, want, strlen(want), NULL))
      continue;
    cleanup_free const char **names =
        rp_xcalloc(c->n_providers + 1, sizeof(*names));
    for (size_t j = 0; j < c->n_providers; j++)
      names[j] = c->providers[j].name;
    char at[RP_CONFIG_PATH_LEN];
    snprintf(at, sizeof(at), "policies[%zu].match.provider", i);
    char hint[RP_CONFIG_PATH_LEN];
    const char *near = rp_config_suggest(want, names);
    cleanup_free char *list = rp_config_join_list(names);
    return rp_config_fail(&w->ps, w->match_provider_marks[i], at,
                          "no provider is named '%s'%s (configured: %s)", want,
                          rp_config_did_you_mean(hint, near), list);
  }
  return 0;
}

static int
parse_root(struct walk *w, const struct rp_config_node *root)
{
  static const char *const keys[] = {"agent",   "providers", "policies",
                                     "exclude", "notify",    NULL};
  struct rp_config_parse *ps = &w->ps;
  const struct rp_config_node *v;
  if (root == NULL || rp_config_node_is_null(root))
    return rp_config_fail(ps, root ? root->mark : (struct rp_mark){1, 1}, NULL,
                          "the configuration is empty: it needs at least "
                          "'providers' and 'policies'");
  if (root->type != RP_CONFIG_MAP)
    return rp_config_fail(ps, root->mark, NULL,
                          "expected a mapping at the top (agent:, "
                          "providers:, policies:...), got %s",
                          rp_config_node_describe(root));
  if (rp_config_check_keys(ps, root, NULL, keys, NULL) < 0)
    return -1;
  if ((v = rp_config_node_get(root, "agent")) && parse_agent(w, v) < 0)
    return -1;
  if (parse_providers(w, root) < 0 || parse_policies(w, root) < 0)
    return -1;
  if ((v = rp_config_node_get(root, "exclude")) && parse_exclude(w, v) < 0)
    return -1;
  if ((v = rp_config_node_get(root, "notify")) && parse_notify(w, v) < 0)
    return -1;
  return cross_check(w);
}

int
rp_config_parse(const char *name, const char *text, size_t len,
                struct rp_config **out, struct rp_error **err)
{
  struct walk w = {.ps = {.name = name ? name : "<config>", .err = err}};
  struct rp_config_node *root = NULL;
  if (rp_config_yaml_load(&w.ps, text ? text : "", text ? len : 0, &root) < 0)
    return -1;

  struct rp_config *c = rp_xcalloc(1, sizeof(*c));
  c->path = rp_xstrdup(w.ps.name);
  c->listen = rp_xstrdup(DEFAULT_LISTEN);
  c->audit_log = rp_xstrdup(DEFAULT_AUDIT_LOG);
  c->audit_checkpoint_every = DEFAULT_CHECKPOINT_EVERY;
  c->resync_ms = DEFAULT_RESYNC_MS;
  w.c = c;
  int rc = parse_root(&w, root);
  rp_config_node_free(root);
  free(w.provider_name_marks);
  free(w.policy_name_marks);
  free(w.match_provider_marks);
  rp_strmap_clear(&w.provider_names);
  rp_strmap_clear(&w.policy_names);
  if (rc < 0) {
    rp_config_free(c);
    return -1;
  }
  *out = c;
  return 0;
}

int
rp_config_load_file(const char *path, struct rp_config **out,
                    struct rp_error **err)
{
  cleanup_fclose FILE *f = fopen(path, "re");
  if (f == NULL)
    return rp_error_set(err, RP_ECONFIG, "%s: cannot read: %s", path,
                        strerror(errno));
  /* A file of MAX_FILE_SIZE bytes or more is refused. */
  cleanup_buf struct rp_buf buf = {.max = MAX_FILE_SIZE - 1};
  char chunk[8192];
  for (;;) {
    size_t n = fread(chunk, 1, sizeof(chunk), f);
    if (n == 0) {
      if (ferror(f))
        return rp_error_set(err, RP_ECONFIG, "%s: cannot read: %s", path,
                            strerror(errno ? errno : EIO));
      break;
    }
    if (rp_buf_add(&buf, chunk, n) != 0)
      return rp_error_set(err, RP_ECONFIG,
                          "%s: cannot read: larger than %d bytes", path,
                          MAX_FILE_SIZE);
  }
  return rp_config_parse(path, rp_buf_str(&buf), buf.len, out, err);
}

int
rp_config_load_default(struct rp_config **out, struct rp_error **err)
{
  return rp_config_parse("<embedded default>", rp_default_config_yaml,
                         strlen(rp_default_config_yaml), out, err);
}

static void
free_policy(struct rp_policy *p)
{
  free(p->name);
  free(p->match_provider);
  rp_config_free_labels(p->match_labels, p->n_match_labels);
  free(p->match_name);
  rp_strv_free(p->drain);
  free(p->window.tz);
  rp_strv_free(p->replace);
  rp_strv_free(p->update_allow);
  rp_strv_free(p->verify);
}

void
rp_config_free(struct rp_config *c)
{
  if (c == NULL)
    return;
  free(c->path);
  free(c->listen);
  free(c->listen_token_file);
  rp_strv_free(c->listen_names);
  free(c->audit_log);
  free(c->audit_signing_key);
  for (size_t i = 0; i < c->n_providers; i++) {
    free(c->providers[i].name);
    free(c->providers[i].type);
    free(c->providers[i].endpoint);
    json_decref(c->providers[i].options);
  }
  free(c->providers);
  for (size_t i = 0; i < c->n_policies; i++)
    free_policy(&c->policies[i]);
  free(c->policies);
  rp_config_free_labels(c->exclude_labels, c->n_exclude_labels);
  for (size_t i = 0; i < c->n_notify; i++) {
    free(c->notify[i].webhook);
    rp_strv_free(c->notify[i].command);
    rp_strv_free(c->notify[i].events);
  }
  free(c->notify);
  free(c);
}

const struct rp_policy *
rp_config_policy(const struct rp_config *c, const char *name)
{
  for (size_t i = 0; c && name && i < c->n_policies; i++)
    if (c->policies[i].name && strcmp(c->policies[i].name, name) == 0)
      return &c->policies[i];
  return NULL;
}

int
rp_config_check_permissions(const char *path, struct rp_error **err)
{
  /* Whoever can change the configuration decides what reaper stops.  A
   * missing file is for the load to report ("cannot read"). */
  cleanup_error struct rp_error *e = NULL;
  if (rp_file_trust_check(path, "configuration", RP_TRUST_ABSENT_OK, &e) == 0)
    return 0;
  return rp_error_set(err, e->code, "%s (or pass --allow-insecure-config)",
                      e->message);
}
