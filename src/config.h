/* The configuration: what SPEC.md describes, parsed from YAML with every
 * error naming FILE:LINE:COL. */
#ifndef RP_CONFIG_H
#define RP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

enum rp_strategy {
  RP_STRATEGY_RECREATE,
  RP_STRATEGY_RESTART,
  RP_STRATEGY_STOP,
  RP_STRATEGY_REMOVE,
  RP_STRATEGY_FORCE_UPDATE,  /* services */
  RP_STRATEGY_DRAIN_REPLACE, /* nodes and hosts */
  RP_STRATEGY__COUNT
};
const char *rp_strategy_name(enum rp_strategy s);
int rp_strategy_parse(const char *name); /* -1 when unknown */

enum rp_order { RP_ORDER_START_FIRST, RP_ORDER_STOP_FIRST };

/* Where a value came from in the file, for errors found after parsing. */
struct rp_mark {
  int line; /* 1-based; 0 when unknown */
  int col;  /* 1-based */
};

struct rp_label_match {
  char *key;   /* owned */
  char *value; /* owned; "*" means "label present" */
};

struct rp_window {
  bool set;
  uint8_t days;  /* bit 0 = Sunday ... bit 6 = Saturday, as struct tm */
  int start_min; /* minutes after local midnight */
  int end_min;   /* may be < start_min: the window crosses midnight */
  char *tz;      /* owned IANA name; NULL means UTC */
};

/* A count or a percentage of the matched workloads, as PodDisruptionBudgets
 * write it.  Percentages round up. */
struct rp_budget {
  int value;
  bool percent;
};

struct rp_policy {
  char *name; /* owned */
  struct rp_mark mark;

  /* match: every set field must match */
  char *match_provider;                /* owned, NULL = any */
  int match_kind;                      /* enum rp_kind, -1 = any */
  struct rp_label_match *match_labels; /* owned array */
  size_t n_match_labels;
  char *match_name; /* owned glob, NULL = any */

  int64_t max_age_ms;
  double jitter; /* fraction of max_age, 0..1 */
  int64_t grace_ms;
  enum rp_strategy strategy;
  bool strategy_set; /* false: the provider's default for the kind */
  enum rp_order order;
  struct rp_budget max_unavailable;
  int64_t health_timeout_ms;
  /* How long a replacement must stay up, once ready, before the old
   * workload (stopped, kept) is removed: a death within it rolls back. */
  int64_t survive_ms;
  bool pull;
  int64_t hard_max_age_ms; /* 0 = no ceiling */
  char **drain;            /* owned argv, NULL-terminated, or NULL */
  int64_t drain_timeout_ms;
  struct rp_window window;
  char **replace;           /* owned argv, NULL-terminated, or NULL */
  int64_t notify_before_ms; /* 0 = no advance notice */
  /* A workload's reaper.policy label may pick this policy even when its
   * match block does not accept the workload (default false). */
  bool selectable;

  /* Fresh content (SPEC.md "Fresh content"; content.h).  update: a newer
   * digest of the workload's own tag is rolled out before max_age. */
  bool update;
  int64_t update_check_ms;  /* how often a reference is resolved */
  int64_t update_settle_ms; /* a new digest waits this long (default 0) */
  int update_max_failures;  /* failed rollouts before a quarantine (1) */
  char **update_allow;      /* owned strv of digests never quarantined */
  int64_t max_image_age_ms; /* 0 = no limit on content age */
  char **verify;            /* owned argv: the gate before new content */
  int64_t verify_timeout_ms;
};

/* How often a reference that a policy of fresh content uses is resolved
 * when the policy has no update.check. */
#define RP_CONFIG_DEFAULT_CHECK_MS (5 * 60 * 1000)

/* Whether the policy makes reaper follow its workloads' image references at
 * their registries (update, max_image_age, pull or verify). */
bool rp_policy_follows_content(const struct rp_policy *p);
/* How often such a policy wants each reference resolved. */
int64_t rp_policy_check_ms(const struct rp_policy *p);

struct rp_provider_config {
  char *name;     /* owned */
  char *type;     /* owned: docker | swarm | containerd | host */
  char *endpoint; /* owned, NULL = the type's default ($DOCKER_HOST...) */
  /* Settings that only this provider's type takes (its ops->options), by
   * key: a string, true/false or an array of strings.  Owned; never NULL
   * once parsed. */
  json_t *options;
  struct rp_mark mark;
};

/* One of a provider's own settings (options): a string (or NULL when
 * unset or not one), a boolean (false when unset), or the value as it is
 * (borrowed, NULL when unset). */
const char *rp_provider_config_option(const struct rp_provider_config *pc,
                                      const char *key);
bool rp_provider_config_flag(const struct rp_provider_config *pc,
                             const char *key);
json_t *rp_provider_config_value(const struct rp_provider_config *pc,
                                 const char *key);

/* Exactly one of webhook and command is set. */
struct rp_notify {
  char *webhook;  /* owned http(s) URL or NULL */
  char **command; /* owned argv, NULL-terminated, or NULL */
  /* owned, NULL-terminated; NULL = all events.  Each is an audit event name,
   * "recycle.upcoming" (a policy's notify_before), "PREFIX.*" or "*". */
  char **events;
  int64_t timeout_ms; /* per attempt; default 10s */
  int retries;        /* default 3 */
};

struct rp_config {
  char *path; /* owned: the file read, or "<embedded default>" */

  char *listen;            /* owned; "" = off */
  char *listen_token_file; /* owned or NULL */
  /* Host names the listener answers to besides its addresses, localhost
   * and the machine's name (a Host naming anything else is refused: DNS
   * rebinding).  Owned, NULL-terminated, or NULL. */
  char **listen_names;
  char *audit_log;            /* owned */
  char *audit_signing_key;    /* owned or NULL */
  int audit_checkpoint_every; /* lines between signed checkpoints */
  int64_t audit_rotate_size;  /* bytes; 0 = no rotation by size */
  bool audit_rotate_daily;    /* a new file at the first line of a UTC day */
  bool audit_syslog;          /* copy every audit line to syslog */
  int64_t resync_ms;
  bool dry_run;

  struct rp_provider_config *providers; /* owned array */
  size_t n_providers;
  struct rp_policy *policies; /* owned array, in file order */
  size_t n_policies;
  struct rp_label_match *exclude_labels; /* owned array */
  size_t n_exclude_labels;
  /* A workload's own reaper.exclude=true no longer leaves it alone
   * (exclude.workload_opt_out: false; by default workloads may opt out). */
  bool deny_workload_opt_out;
  struct rp_notify *notify; /* owned array */
  size_t n_notify;
};

/* Parses YAML text.  `name` is the file name used in error messages.  On
 * failure *err->message is "NAME:LINE:COL: PATH: message" (PATH as in
 * "policies[0].window.start", 0-based; LINE and COL 1-based) and code
 * RP_ECONFIG; *out is untouched.  SPEC.md's keys only; unknown keys, wrong
 * types, YAML aliases and tags other than !!str are errors.  Booleans are
 * true/false; jitter is "N%" or 0; max_unavailable is N >= 1 or "N%". */
int rp_config_parse(const char *name, const char *text, size_t len,
                    struct rp_config **out, struct rp_error **err);
/* Reads and parses a file; a missing or unreadable file is an error naming
 * it (RP_ECONFIG). */
int rp_config_load_file(const char *path, struct rp_config **out,
                        struct rp_error **err);
/* Refuses (RP_ECONFIG) a configuration file that a user other than root
 * and reaper's own could change or replace (file_trust.h's rules). */
int rp_config_check_permissions(const char *path, struct rp_error **err);

/* The embedded default (config/default.yaml compiled in). */
int rp_config_load_default(struct rp_config **out, struct rp_error **err);
extern const char rp_default_config_yaml[];

void rp_config_free(struct rp_config *c);

/* Durations: "500ms", "90s", "30m", "2h", "1h30m", "1d": numbers with
 * units d, h, m, s, ms, each unit at most once and from largest to
 * smallest; "0" alone needs no unit.  No sign, fraction, space or bare
 * number.  Returns 0 or -1 with a message in *why (static string; why may
 * be NULL). */
int rp_duration_parse(const char *s, int64_t *out_ms, const char **why);

/* Looks a policy up by name; NULL when there is none. */
const struct rp_policy *rp_config_policy(const struct rp_config *c,
                                         const char *name);

#endif
