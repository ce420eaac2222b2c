/* The agent: the loop, the providers, signals, start and stop.  `run`,
 * `run --once` and `plan` are three ways of running it. */
#ifndef RP_AGENT_H
#define RP_AGENT_H

#include <stdbool.h>

#include "config.h"
#include "error.h"

enum rp_agent_mode {
  RP_AGENT_RUN,  /* until SIGTERM/SIGINT */
  RP_AGENT_ONCE, /* one pass: recycle what is due, wait, exit */
  RP_AGENT_PLAN, /* list, print the plan, exit; acts on nothing */
};

struct rp_agent_options {
  enum rp_agent_mode mode;
  bool dry_run;
  bool json; /* plan: --json */
  /* The file to reload on SIGHUP; NULL for the embedded default. */
  const char *config_path;
  /* Accept a configuration file that others may write (refused otherwise,
   * at start and on reload). */
  bool allow_insecure_config;
};

/* Runs the agent with config (ownership passes to the agent).  Returns the
 * process exit code: 0 success, 1 runtime failure (with *err saying why, or
 * NULL when it was already logged), 2 configuration error. */
int rp_agent_run(struct rp_config *config, const struct rp_agent_options *opt,
                 struct rp_error **err);

#endif
