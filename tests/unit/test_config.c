/* The configuration parser: what users rely on is that a valid file gives
 * the values they wrote (and the documented defaults), and that every
 * mistake is an error pointing at FILE:LINE:COL with a message that says
 * what is wrong.  The error cases are a table; each runs as its own test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "util.h"
#include "workload.h"

#define DATA TEST_DATA_DIR "/config/"
#define EXAMPLES TEST_DATA_DIR "/../../../config/examples/"

/* A valid provider section (lines 1-3) and a policy head (lines 4-5), so
 * that a policy's own settings start on line 6, column 5. */
#define P "providers:\n  - name: local\n    type: docker\n"
#define W "policies:\n  - name: web\n"
/* A complete policy (lines 4-6); additions start on line 7, column 5. */
#define POLS W "    max_age: 2h\n"
/* A window whose start and end are fine (lines 7-9); tz goes on line 10. */
#define WIN "    window:\n      start: \"09:00\"\n      end: \"17:00\"\n"

struct err_case {
  const char *name;
  const char *yaml; /* inline text, parsed as "t.yaml"; or NULL and: */
  const char *file; /* a fixture under tests/unit/data/config/ */
  int line, col;
  const char *what; /* a part of the message after "FILE:LINE:COL: " */
};

static struct err_case err_cases[] = {
    /* YAML itself */
    {"syntax_mapping_in_value", "a: b: c\n", NULL, 1, 5,
     "YAML syntax error: mapping values are not allowed"},
    {"syntax_unclosed_flow", NULL, "unclosed-flow.yaml", 5, 1,
     "did not find expected ',' or ']' (while parsing a flow sequence at "
     "line 4, column 11)"},
    {"syntax_tab_indent", NULL, "tab-indent.yaml", 3, 1,
     "YAML does not allow tabs for indentation"},
    {"two_documents", NULL, "two-documents.yaml", 3, 1,
     "only one YAML document is allowed"},
    {"empty_file", NULL, "empty.yaml", 1, 1, "the configuration is empty"},
    {"comments_only", NULL, "comments-only.yaml", 1, 1,
     "the configuration is empty"},
    {"empty_text", "", NULL, 1, 1, "the configuration is empty"},
    {"top_level_list", "- a\n", NULL, 1, 1,
     "expected a mapping at the top (agent:, providers:, policies:...), got "
     "a list"},
    {"top_unknown_key_suggest", P "polices:\n  - name: web\n", NULL, 4, 1,
     "unknown key 'polices'; did you mean 'policies'?"},
    {"top_unknown_key_list", P POLS "logging: {}\n", NULL, 7, 1,
     "unknown key 'logging' (known: agent, providers, policies, exclude, "
     "notify)"},
    {"alias", P "policies:\n  - name: &n web\n    max_age: 2h\n  - name: *n\n",
     NULL, 7, 11, "YAML aliases (*n) are not supported"},
    {"duplicate_key", P POLS "    max_age: 3h\n", NULL, 7, 5,
     "duplicate key 'max_age' (first at line 6)"},
    {"tag_int", P W "    max_age: !!int 5\n", NULL, 6, 14,
     "YAML tag 'tag:yaml.org,2002:int' is not supported"},
    {"non_scalar_key", P "? [a]\n: b\n", NULL, 4, 3,
     "a mapping key must be a plain string, not a list"},
    {"nul_character", P "policies:\n  - name: \"a\\0b\"\n", NULL, 5, 11,
     "contains a NUL character"},

    /* agent */
    {"agent_list", "agent: [a]\n" P POLS, NULL, 1, 8,
     "agent: expected a mapping, got a list"},
    {"agent_unknown_key", "agent:\n  colour: blue\n" P POLS, NULL, 2, 3,
     "agent: unknown key 'colour' (known: listen, listen_token_file, "
     "listen_names, audit_log, audit_signing_key, audit_checkpoint_every, "
     "audit_rotate_size, audit_rotate, audit_syslog, resync, dry_run)"},
    {"agent_key_suggest", "agent:\n  dryrun: true\n" P POLS, NULL, 2, 3,
     "agent: unknown key 'dryrun'; did you mean 'dry_run'?"},
    {"agent_checkpoint_word", "agent:\n  audit_checkpoint_every: abc\n" P POLS,
     NULL, 2, 27,
     "agent.audit_checkpoint_every: expected a whole number, got 'abc'"},
    {"agent_checkpoint_zero", "agent:\n  audit_checkpoint_every: 0\n" P POLS,
     NULL, 2, 27, "agent.audit_checkpoint_every: 0 is out of range (1.."},
    {"agent_dry_run_yes", "agent:\n  dry_run: yes\n" P POLS, NULL, 2, 12,
     "agent.dry_run: expected true or false, got 'yes' (YAML 1.1's "
     "yes/no/on/off are not booleans here"},
    {"agent_listen_names_not_names",
     "agent:\n  listen_names: [reaper.internal, \"evil.example/x\"]\n" P POLS,
     NULL, 2, 35, "agent.listen_names[1]: 'evil.example/x' is not a host name"},
    {"agent_listen_names_not_a_list", "agent:\n  listen_names: reaper\n" P POLS,
     NULL, 2, 17, "agent.listen_names: expected a list of strings"},
    {"agent_listen_no_port", "agent:\n  listen: localhost\n" P POLS, NULL, 2,
     11, "agent.listen: expected HOST:PORT like 127.0.0.1:9470"},
    {"agent_listen_bad_port", "agent:\n  listen: 127.0.0.1:99999\n" P POLS,
     NULL, 2, 11, "agent.listen: expected HOST:PORT"},
    {"agent_resync_zero", "agent:\n  resync: 0s\n" P POLS, NULL, 2, 11,
     "agent.resync: must be greater than zero"},
    {"agent_audit_log_empty", "agent:\n  audit_log: \"\"\n" P POLS, NULL, 2, 14,
     "agent.audit_log: must not be empty"},

    /* providers */
    {"providers_missing", POLS, NULL, 1, 1,
     "missing 'providers': at least one provider is required"},
    {"providers_mapping", "providers:\n  local: {type: docker}\n" POLS, NULL, 2,
     3, "providers: expected a list (each entry starts with '- name: "},
    {"providers_empty", "providers: []\n" POLS, NULL, 1, 12,
     "providers: at least one provider is required"},
    {"provider_scalar", "providers:\n  - local\n" POLS, NULL, 2, 5,
     "providers[0]: expected a mapping, got a string"},
    {"provider_type_typo",
     "providers:\n  - name: local\n    type: dokcer\n" POLS, NULL, 3, 11,
     "providers[0].type: unknown provider type 'dokcer'; did you mean "
     "'docker'? (known: docker, swarm, containerd, host)"},
    {"provider_type_unknown",
     "providers:\n  - name: k\n    type: kubernetes\n" POLS, NULL, 3, 11,
     "unknown provider type 'kubernetes' (known: docker, swarm, containerd, "
     "host)"},
    {"provider_missing_type", "providers:\n  - name: local\n" POLS, NULL, 2, 5,
     "providers[0]: missing required key 'type' (one of: docker, swarm, "
     "containerd, host)"},
    {"provider_missing_name", "providers:\n  - type: docker\n" POLS, NULL, 2, 5,
     "providers[0]: missing required key 'name'"},
    {"provider_duplicate_name",
     "providers:\n  - name: local\n    type: docker\n  - name: local\n"
     "    type: swarm\n" POLS,
     NULL, 4, 11,
     "providers[1].name: duplicate provider name 'local' (first at line 2)"},
    {"provider_name_with_space", "providers:\n  - name: my local\n" POLS, NULL,
     2, 11, "providers[0].name: 'my local' must not contain spaces"},
    {"provider_namespaces_not_containerd", P "    namespaces: [default]\n" POLS,
     NULL, 4, 5,
     "providers[0]: 'namespaces' applies to containerd providers only, not "
     "docker"},
    {"provider_api_version_unknown", P "    api_version: \"1.53\"\n" POLS, NULL,
     4, 18,
     "providers[0].api_version: API 1.53 is not one reaper speaks (1.41 to "
     "1.52)"},
    {"provider_api_version_not_a_version", P "    api_version: latest\n" POLS,
     NULL, 4, 18, "providers[0].api_version: 'latest' is not an API version"},
    {"provider_api_version_not_containerd",
     "providers:\n  - name: c\n    type: containerd\n    api_version: "
     "\"1.44\"\n" POLS,
     NULL, 4, 5,
     "providers[0]: 'api_version' applies to docker and swarm providers only, "
     "not containerd"},
    /* What a provider cannot do is an error where the policy asks it. */
    {"cap_strategy_docker_force_update",
     "providers: [ { name: d, type: docker } ]\n"
     "policies: [ { name: a, max_age: 1h, strategy: force-update } ]\n",
     NULL, 2, 47,
     "policies[0].strategy: provider d (docker) cannot apply strategy "
     "force-update to a container (it can: recreate, restart, stop, remove)"},
    {"cap_generic_policy_spans_providers",
     "providers: [ { name: d, type: docker }, { name: s, type: swarm } ]\n"
     "policies: [ { name: a, max_age: 1h, strategy: recreate } ]\n",
     NULL, 2, 47,
     "policies[0].strategy: provider s (swarm) cannot apply strategy "
     "recreate to a service"},
    {"cap_containerd_start_first",
     "providers: [ { name: c, type: containerd } ]\n"
     "policies: [ { name: a, max_age: 1h, order: start-first } ]\n",
     NULL, 2, 44,
     "policies[0].order: provider c (containerd) cannot start a container's "
     "replacement before stopping it"},
    {"cap_containerd_pull",
     "providers: [ { name: c, type: containerd } ]\n"
     "policies: [ { name: a, max_age: 1h, pull: true } ]\n",
     NULL, 2, 43, "policies[0].pull: provider c (containerd) cannot pull"},
    {"cap_containerd_update",
     "providers: [ { name: c, type: containerd } ]\n"
     "policies: [ { name: a, max_age: 1h, update: { check: 5m } } ]\n",
     NULL, 2, 37,
     "policies[0].update: provider c (containerd) cannot follow a "
     "container's image at its registry"},
    {"cap_host_max_image_age",
     "providers: [ { name: h, type: host } ]\n"
     "policies: [ { name: a, max_age: 1d, max_image_age: 30d } ]\n",
     NULL, 2, 37,
     "policies[0].max_image_age: provider h (host) cannot follow a host's "
     "image"},
    {"cap_docker_and_containerd_verify",
     "providers: [ { name: d, type: docker }, { name: c, type: containerd } "
     "]\n"
     "policies: [ { name: a, max_age: 1h, verify: [/bin/true] } ]\n",
     NULL, 2, 37, "policies[0].verify: provider c (containerd) cannot follow"},
    {"update_not_mapping",
     P "policies:\n  - name: a\n    max_age: 1h\n"
       "    update: 5m\n",
     NULL, 7, 13, "policies[0].update: expected a mapping"},
    {"update_unknown_key",
     P "policies:\n  - name: a\n    max_age: 1h\n"
       "    update: { chek: 5m }\n",
     NULL, 7, 15,
     "policies[0].update: unknown key 'chek'; did you mean 'check'?"},
    {"update_check_zero",
     P "policies:\n  - name: a\n    max_age: 1h\n"
       "    update: { check: 0s }\n",
     NULL, 7, 22, "policies[0].update.check: must be greater than zero"},
    {"update_max_failures_zero",
     P "policies:\n  - name: a\n    max_age: 1h\n"
       "    update: { max_failures: 0 }\n",
     NULL, 7, 29,
     "policies[0].update.max_failures: 0 is out of range (1..1000)"},
    {"update_allow_not_digest",
     P "policies:\n  - name: a\n    max_age: 1h\n"
       "    update: { allow: [nginx] }\n",
     NULL, 7, 23, "policies[0].update.allow[0]: 'nginx' is not a digest"},
    {"settle_outside_update",
     P "policies:\n  - name: a\n    max_age: 1h\n"
       "    settle: 1h\n",
     NULL, 7, 5,
     "policies[0]: unknown key 'settle'; it belongs under 'update:'"},
    {"update_with_restart",
     P "policies:\n  - name: a\n    max_age: 1h\n"
       "    strategy: restart\n    update: { check: 1m }\n",
     NULL, 7, 15,
     "policies[0].strategy: strategy restart cannot run new content"},
    {"max_image_age_zero",
     P "policies:\n  - name: a\n    max_age: 1h\n"
       "    max_image_age: 0s\n",
     NULL, 7, 20, "policies[0].max_image_age: must be greater than zero"},
    {"verify_string",
     P "policies:\n  - name: a\n    max_age: 1h\n"
       "    verify: cosign verify\n",
     NULL, 7, 13, "policies[0].verify: expected a list of strings (argv"},
    {"cap_swarm_service_drain",
     "providers: [ { name: s, type: swarm } ]\n"
     "policies: [ { name: a, max_age: 1h, match: { kind: service }, "
     "drain: [x] } ]\n",
     NULL, 2, 70,
     "policies[0].drain: provider s (swarm) runs no drain hook for a "
     "service"},
    {"cap_docker_replace",
     "providers: [ { name: d, type: docker } ]\n"
     "policies: [ { name: a, max_age: 1h, replace: [/bin/true] } ]\n",
     NULL, 2, 46,
     "policies[0].replace: provider d (docker) runs no replace command for "
     "a container"},
    {"policy_selectable_word",
     "providers: [ { name: d, type: docker } ]\n"
     "policies: [ { name: a, max_age: 1h, selectable: sure } ]\n",
     NULL, 2, 49, "policies[0].selectable: expected true or false"},
    {"exclude_opt_out_word",
     "providers: [ { name: d, type: docker } ]\n"
     "policies: [ { name: a, max_age: 1h } ]\nexclude: { workload_opt_out: 0 "
     "}\n",
     NULL, 3, 30, "exclude.workload_opt_out: expected true or false"},
    {"provider_namespaces_empty",
     "providers:\n  - name: c\n    type: containerd\n    namespaces: []\n" POLS,
     NULL, 4, 17, "providers[0].namespaces: must not be an empty list"},
    {"provider_allow_kubernetes_word",
     "providers:\n  - name: c\n    type: containerd\n"
     "    allow_kubernetes: maybe\n" POLS,
     NULL, 4, 23,
     "providers[0].allow_kubernetes: expected true or false, got 'maybe'"},
    {"provider_endpoint_list", P "    endpoint: [a]\n" POLS, NULL, 4, 15,
     "providers[0].endpoint: expected a string, got a list"},

    /* policies */
    {"policies_missing", P, NULL, 1, 1,
     "missing 'policies': at least one policy is required"},
    {"policies_null", P "policies:\n", NULL, 4, 10,
     "policies: at least one policy is required"},
    {"policies_mapping", P "policies:\n  web: {max_age: 2h}\n", NULL, 5, 3,
     "policies: expected a list"},
    {"policy_missing_name", P "policies:\n  - max_age: 2h\n", NULL, 5, 5,
     "policies[0]: missing required key 'name'"},
    {"policy_missing_max_age", P W "    jitter: 10%\n", NULL, 5, 5,
     "policies[0]: missing required key 'max_age'"},
    {"policy_duplicate_name", P POLS "  - name: web\n    max_age: 1h\n", NULL,
     7, 11, "policies[1].name: duplicate policy name 'web' (first at line 5)"},
    {"policy_key_typo", P W "    max-age: 2h\n", NULL, 6, 5,
     "policies[0]: unknown key 'max-age'; did you mean 'max_age'?"},
    {"policy_key_belongs_under_match", P POLS "    labels: {tier: web}\n", NULL,
     7, 5, "policies[0]: unknown key 'labels'; it belongs under 'match:'"},
    {"policy_key_belongs_under_window", P POLS "    tz: UTC\n", NULL, 7, 5,
     "policies[0]: unknown key 'tz'; it belongs under 'window:'"},
    {"policy_name_list", P "policies:\n  - name: [a]\n", NULL, 5, 11,
     "policies[0].name: expected a string, got a list"},
    {"policy_scalar", P "policies:\n  - web\n", NULL, 5, 5,
     "policies[0]: expected a mapping, got a string"},

    /* durations */
    {"max_age_mapping", P W "    max_age: {h: 2}\n", NULL, 6, 14,
     "policies[0].max_age: expected a duration like 30s or 2h, got a "
     "mapping"},
    {"max_age_null", P W "    max_age:\n", NULL, 6, 13,
     "policies[0].max_age: expected a duration like 30s or 2h, got nothing "
     "(null)"},
    {"max_age_empty_string", P W "    max_age: \"\"\n", NULL, 6, 14,
     "policies[0].max_age: invalid duration '': empty"},
    {"max_age_no_unit", P W "    max_age: 10\n", NULL, 6, 14,
     "invalid duration '10': missing unit"},
    {"max_age_bad_unit", P W "    max_age: 5x\n", NULL, 6, 14,
     "invalid duration '5x': unknown unit: use ms, s, m, h or d"},
    {"max_age_repeated_unit", P W "    max_age: 1h1h\n", NULL, 6, 14,
     "invalid duration '1h1h': units must go from largest to smallest"},
    {"max_age_negative", P W "    max_age: -5m\n", NULL, 6, 14,
     "invalid duration '-5m': negative durations are not allowed"},
    {"max_age_overflow", P W "    max_age: 99999999999999999999d\n", NULL, 6,
     14, "invalid duration '99999999999999999999d': too large"},
    {"max_age_fraction", P W "    max_age: 1.5h\n", NULL, 6, 14,
     "fractions are not allowed: write 1h30m"},
    {"max_age_zero", P W "    max_age: 0s\n", NULL, 6, 14,
     "policies[0].max_age: must be greater than zero, got '0s'"},
    {"grace_space_in_duration", P POLS "    grace: 30 s\n", NULL, 7, 12,
     "policies[0].grace: invalid duration '30 s': unknown unit"},
    {"hard_max_age_shorter", P POLS "    hard_max_age: 1h\n", NULL, 7, 19,
     "policies[0].hard_max_age: 1h is shorter than max_age (2h)"},
    {"hard_max_age_zero", P POLS "    hard_max_age: 0\n", NULL, 7, 19,
     "policies[0].hard_max_age: must be greater than zero"},
    {"health_timeout_zero", P POLS "    health_timeout: 0s\n", NULL, 7, 21,
     "policies[0].health_timeout: must be greater than zero"},
    {"survive_too_long", P POLS "    survive: 11m\n", NULL, 7, 14,
     "policies[0].survive: 11m is longer than 10m"},
    {"survive_negative", P POLS "    survive: -2s\n", NULL, 7, 14,
     "policies[0].survive: invalid duration '-2s': negative"},
    {"drain_timeout_negative", P POLS "    drain_timeout: -1s\n", NULL, 7, 20,
     "policies[0].drain_timeout: invalid duration '-1s': negative"},
    {"notify_before_word", P POLS "    notify_before: soon\n", NULL, 7, 20,
     "policies[0].notify_before: invalid duration 'soon'"},

    /* jitter, strategy, order, max_unavailable, pull */
    {"jitter_over_100", P POLS "    jitter: 150%\n", NULL, 7, 13,
     "policies[0].jitter: invalid jitter '150%': cannot be over 100%"},
    {"jitter_bare_fraction", P POLS "    jitter: 0.1\n", NULL, 7, 13,
     "invalid jitter '0.1': write jitter as a percentage of max_age, e.g. "
     "10%"},
    {"jitter_negative", P POLS "    jitter: -5%\n", NULL, 7, 13,
     "invalid jitter '-5%': expected a percentage between 0% and 100%"},
    {"jitter_list", P POLS "    jitter: [10%]\n", NULL, 7, 13,
     "policies[0].jitter: expected a percentage like 10%, got a list"},
    {"strategy_typo", P POLS "    strategy: recreat\n", NULL, 7, 15,
     "policies[0].strategy: unknown strategy 'recreat'; did you mean "
     "'recreate'? (known: recreate, restart, stop, remove, force-update, "
     "drain-replace)"},
    {"strategy_unknown", P POLS "    strategy: kill\n", NULL, 7, 15,
     "unknown strategy 'kill' (known: recreate,"},
    {"order_unknown", P POLS "    order: first\n", NULL, 7, 12,
     "policies[0].order: unknown order 'first' (known: start-first, "
     "stop-first)"},
    {"order_typo", P POLS "    order: start_first\n", NULL, 7, 12,
     "unknown order 'start_first'; did you mean 'start-first'?"},
    {"max_unavailable_zero", P POLS "    max_unavailable: 0\n", NULL, 7, 22,
     "policies[0].max_unavailable: invalid value '0': must be at least 1"},
    {"max_unavailable_zero_percent", P POLS "    max_unavailable: 0%\n", NULL,
     7, 22, "invalid value '0%': a percentage must be between 1% and 100%"},
    {"max_unavailable_over_100", P POLS "    max_unavailable: 150%\n", NULL, 7,
     22, "invalid value '150%': a percentage must be between 1% and 100%"},
    {"max_unavailable_word", P POLS "    max_unavailable: all\n", NULL, 7, 22,
     "invalid value 'all': expected a whole number like 2 or a percentage "
     "like 25%"},
    {"max_unavailable_negative", P POLS "    max_unavailable: -1\n", NULL, 7,
     22, "invalid value '-1': expected a whole number"},
    {"pull_yes", P POLS "    pull: yes\n", NULL, 7, 11,
     "policies[0].pull: expected true or false, got 'yes' (YAML 1.1's"},
    {"pull_number", P POLS "    pull: 1\n", NULL, 7, 11,
     "policies[0].pull: expected true or false, got '1'"},

    /* match */
    {"match_list", P POLS "    match: [web]\n", NULL, 7, 12,
     "policies[0].match: expected a mapping, got a list"},
    {"match_key_typo", P POLS "    match: {label: {a: b}}\n", NULL, 7, 13,
     "policies[0].match: unknown key 'label'; did you mean 'labels'?"},
    {"match_unknown_provider", P POLS "    match: {provider: locl}\n", NULL, 7,
     23,
     "policies[0].match.provider: no provider is named 'locl'; did you mean "
     "'local'? (configured: local)"},
    {"match_unknown_kind", P POLS "    match: {kind: pod}\n", NULL, 7, 19,
     "policies[0].match.kind: unknown kind 'pod' (known: container, service, "
     "node, task, host)"},
    {"match_kind_typo", P POLS "    match: {kind: containers}\n", NULL, 7, 19,
     "unknown kind 'containers'; did you mean 'container'?"},
    {"match_labels_list", P POLS "    match: {labels: [tier]}\n", NULL, 7, 21,
     "policies[0].match.labels: expected a mapping, got a list"},
    {"match_label_without_value",
     P POLS "    match:\n      labels:\n        tier:\n", NULL, 9, 14,
     "policies[0].match.labels: label 'tier' has no value; write \"*\" to "
     "match any value"},
    {"match_label_list_value", P POLS "    match: {labels: {tier: [a]}}\n",
     NULL, 7, 28,
     "policies[0].match.labels: label 'tier': expected a string, got a "
     "list"},
    {"match_name_empty", P POLS "    match: {name: \"\"}\n", NULL, 7, 19,
     "policies[0].match.name: must not be empty"},

    /* window */
    {"window_start_equals_end",
     P POLS "    window:\n      start: \"09:00\"\n      end: \"09:00\"\n", NULL,
     9, 12,
     "policies[0].window.end: the window's end equals its start (09:00)"},
    {"window_unknown_day",
     P POLS "    window:\n      days: [mon, funday]\n      start: \"09:00\"\n"
            "      end: \"17:00\"\n",
     NULL, 8, 19,
     "policies[0].window.days[1]: unknown day 'funday'; did you mean "
     "'sunday'?"},
    {"window_day_typo", P POLS "    window:\n      days: [thurs]\n", NULL, 8,
     14, "unknown day 'thurs'; did you mean 'thu'?"},
    {"window_days_empty", P POLS "    window:\n      days: []\n", NULL, 8, 13,
     "policies[0].window.days: must not be empty: the window would never "
     "open"},
    {"window_days_scalar", P POLS "    window:\n      days: weekdays\n", NULL,
     8, 13,
     "policies[0].window.days: expected a list of days like [mon, tue], got "
     "a string"},
    {"window_bad_hour",
     P POLS "    window:\n      start: \"25:00\"\n      end: \"17:00\"\n", NULL,
     8, 14,
     "policies[0].window.start: invalid time '25:00': expected HH:MM from "
     "00:00 to 23:59"},
    {"window_bad_format",
     P POLS "    window:\n      start: \"09:00\"\n      end: 5pm\n", NULL, 9,
     12, "policies[0].window.end: invalid time '5pm'"},
    {"window_missing_end", P POLS "    window:\n      start: \"09:00\"\n", NULL,
     8, 7,
     "policies[0].window: a window needs both 'start' and 'end' "
     "(\"HH:MM\")"},
    {"window_unknown_key", P POLS "    window:\n      from: \"09:00\"\n", NULL,
     8, 7,
     "policies[0].window: unknown key 'from' (known: days, start, end, tz)"},
    {"window_list", P POLS "    window: [mon]\n", NULL, 7, 13,
     "policies[0].window: expected a mapping, got a list"},
    {"tz_unknown", P POLS WIN "      tz: Europe/Berln\n", NULL, 10, 11,
     "policies[0].window.tz: unknown time zone 'Europe/Berln': no such zone "
     "in the time zone database"},
    {"tz_dotdot", P POLS WIN "      tz: ../../etc/passwd\n", NULL, 10, 11,
     "unknown time zone '../../etc/passwd': expected an IANA name like "
     "Europe/Berlin or UTC"},
    {"tz_absolute", P POLS WIN "      tz: /etc/localtime\n", NULL, 10, 11,
     "unknown time zone '/etc/localtime': expected an IANA name"},
    {"tz_dot", P POLS WIN "      tz: zone.tab\n", NULL, 10, 11,
     "unknown time zone 'zone.tab': expected an IANA name"},
    {"tz_directory", P POLS WIN "      tz: Europe\n", NULL, 10, 11,
     "unknown time zone 'Europe': not a zone in the time zone database"},

    /* argv lists */
    {"drain_string", P POLS "    drain: kill -USR1 1\n", NULL, 7, 12,
     "policies[0].drain: expected a list of strings (argv, e.g. [/bin/sh, "
     "-c, \"...\"]), got a string"},
    {"drain_empty_list", P POLS "    drain: []\n", NULL, 7, 12,
     "policies[0].drain: must not be an empty list"},
    {"drain_empty_program", P POLS "    drain: [\"\"]\n", NULL, 7, 13,
     "policies[0].drain[0]: must not be empty"},
    {"drain_null_item", P POLS "    drain: [a, ~]\n", NULL, 7, 16,
     "policies[0].drain[1]: expected a string, got nothing (null)"},
    {"replace_nested_list", P POLS "    replace: [a, [b]]\n", NULL, 7, 18,
     "policies[0].replace[1]: expected a string, got a list"},

    /* exclude */
    {"exclude_list", P POLS "exclude: [a]\n", NULL, 7, 10,
     "exclude: expected a mapping, got a list"},
    {"exclude_unknown_key", P POLS "exclude:\n  names: [a]\n", NULL, 8, 3,
     "exclude: unknown key 'names' (known: labels, workload_opt_out)"},
    {"exclude_label_without_value",
     P POLS "exclude:\n  labels:\n    reaper.exclude:\n", NULL, 9, 20,
     "exclude.labels: label 'reaper.exclude' has no value"},

    /* notify */
    {"notify_mapping", P POLS "notify:\n  webhook: https://x.example\n", NULL,
     8, 3, "notify: expected a list"},
    {"notify_neither", P POLS "notify:\n  - events: [agent.start]\n", NULL, 8,
     5, "notify[0]: needs 'webhook' (a URL) or 'command' (an argv list)"},
    {"notify_both",
     P POLS "notify:\n  - webhook: https://x.example\n    command: [a]\n", NULL,
     9, 5, "notify[0]: has both 'webhook' and 'command'"},
    {"notify_webhook_not_url", P POLS "notify:\n  - webhook: hooks.example\n",
     NULL, 8, 14,
     "notify[0].webhook: expected an http:// or https:// URL, got "
     "'hooks.example'"},
    {"notify_event_typo",
     P POLS "notify:\n  - webhook: https://x.example\n"
            "    events: [recycle.fialed]\n",
     NULL, 9, 14,
     "notify[0].events[0]: unknown event 'recycle.fialed'; did you mean "
     "'recycle.failed'?"},
    {"notify_timeout_zero",
     P POLS "notify:\n  - webhook: https://x.example\n    timeout: 0s\n", NULL,
     9, 14, "notify[0].timeout: must be greater than zero"},
    {"notify_retries_negative",
     P POLS "notify:\n  - webhook: https://x.example\n    retries: -1\n", NULL,
     9, 14, "notify[0].retries: expected a whole number, got '-1'"},
    {"notify_retries_too_many",
     P POLS "notify:\n  - webhook: https://x.example\n    retries: 1000\n",
     NULL, 9, 14, "notify[0].retries: 1000 is out of range (0..100)"},
    {"notify_command_string", P POLS "notify:\n  - command: page-me\n", NULL, 8,
     14, "notify[0].command: expected a list of strings (argv"},

    /* SPEC.md's example as printed names the provider `cluster`, which it
     * shows commented out: a policy that can never match is refused. */
    {"spec_verbatim_unknown_provider", NULL, "spec-verbatim.yaml", 41, 24,
     "policies[1].match.provider: no provider is named 'cluster' "
     "(configured: local)"},
};

static void
run_err_case(void **state)
{
  const struct err_case *tc = *state;
  struct rp_config *c = NULL;
  struct rp_error *err = NULL;
  char path[512], where[600];
  const char *name = "t.yaml";
  int rc;
  if (tc->file) {
    snprintf(path, sizeof(path), "%s%s", DATA, tc->file);
    name = path;
    rc = rp_config_load_file(path, &c, &err);
  } else {
    rc = rp_config_parse(name, tc->yaml, strlen(tc->yaml), &c, &err);
  }
  if (rc == 0) {
    rp_config_free(c);
    fail_msg("%s: parsed, expected \"%s\"", tc->name, tc->what);
  }
  assert_int_equal(rc, -1);
  assert_null(c);
  assert_non_null(err);
  assert_int_equal(err->code, RP_ECONFIG);
  snprintf(where, sizeof(where), "%s:%d:%d: ", name, tc->line, tc->col);
  if (strncmp(err->message, where, strlen(where)) != 0 ||
      strstr(err->message + strlen(where), tc->what) == NULL) {
    char got[1024];
    snprintf(got, sizeof(got), "%s", err->message);
    rp_error_free(err);
    fail_msg("%s:\n  got:  %s\n  want: %s... %s", tc->name, got, where,
             tc->what);
  }
  rp_error_free(err);
}

static struct rp_config *
parse_ok(const char *yaml)
{
  struct rp_config *c = NULL;
  struct rp_error *err = NULL;
  if (rp_config_parse("t.yaml", yaml, strlen(yaml), &c, &err) != 0) {
    char got[1024];
    snprintf(got, sizeof(got), "%s", err ? err->message : "(no error)");
    rp_error_free(err);
    fail_msg("unexpected error: %s", got);
  }
  assert_null(err);
  assert_non_null(c);
  return c;
}

static struct rp_config *
load_ok(const char *path)
{
  struct rp_config *c = NULL;
  struct rp_error *err = NULL;
  if (rp_config_load_file(path, &c, &err) != 0) {
    char got[1024];
    snprintf(got, sizeof(got), "%s", err ? err->message : "(no error)");
    rp_error_free(err);
    fail_msg("unexpected error: %s", got);
  }
  assert_non_null(c);
  assert_string_equal(c->path, path);
  return c;
}

static void
assert_strv(char **got, const char *const *want)
{
  assert_non_null(got);
  size_t i = 0;
  for (; want[i]; i++) {
    assert_non_null(got[i]);
    assert_string_equal(got[i], want[i]);
  }
  assert_null(got[i]);
}

static void
test_defaults(void **state)
{
  struct rp_config *c = parse_ok(P POLS);
  assert_string_equal(c->path, "t.yaml");
  assert_string_equal(c->listen, "127.0.0.1:9470");
  assert_null(c->listen_token_file);
  assert_null(c->listen_names);
  assert_string_equal(c->audit_log, "/var/lib/reaper/audit.jsonl");
  assert_null(c->audit_signing_key);
  assert_int_equal(c->audit_checkpoint_every, 1000);
  assert_int_equal(c->resync_ms, 60000);
  assert_false(c->dry_run);
  assert_int_equal(c->n_providers, 1);
  assert_string_equal(c->providers[0].name, "local");
  assert_string_equal(c->providers[0].type, "docker");
  assert_null(c->providers[0].endpoint);
  assert_int_equal(json_object_size(c->providers[0].options), 0);
  assert_int_equal(c->providers[0].mark.line, 2);
  assert_int_equal(c->providers[0].mark.col, 5);

  assert_int_equal(c->n_policies, 1);
  const struct rp_policy *p = &c->policies[0];
  assert_string_equal(p->name, "web");
  assert_int_equal(p->mark.line, 5);
  assert_int_equal(p->mark.col, 5);
  assert_null(p->match_provider);
  assert_int_equal(p->match_kind, -1);
  assert_int_equal(p->n_match_labels, 0);
  assert_null(p->match_name);
  assert_int_equal(p->max_age_ms, 2 * 3600 * 1000);
  assert_true(p->jitter == 0.0);
  assert_int_equal(p->grace_ms, 30000);
  assert_false(p->strategy_set);
  assert_int_equal(p->order, RP_ORDER_STOP_FIRST);
  assert_int_equal(p->max_unavailable.value, 1);
  assert_false(p->max_unavailable.percent);
  assert_int_equal(p->health_timeout_ms, 60000);
  assert_int_equal(p->survive_ms, 2000);
  assert_false(p->pull);
  assert_int_equal(p->hard_max_age_ms, 0);
  assert_null(p->drain);
  assert_int_equal(p->drain_timeout_ms, 30000);
  assert_false(p->window.set);
  assert_null(p->window.tz);
  assert_null(p->replace);
  assert_int_equal(p->notify_before_ms, 0);
  assert_int_equal(c->n_exclude_labels, 0);
  assert_int_equal(c->n_notify, 0);
  rp_config_free(c);
}

/* A policy narrowed by match passes where a generic one would not: only
 * the providers and kinds it can match are asked. */
static void
test_capabilities_by_match(void **state)
{
  struct rp_config *c = parse_ok(
      "providers: [ { name: d, type: docker }, { name: s, type: swarm } ]\n"
      "policies:\n"
      "  - { name: web, match: { provider: d }, max_age: 1h, order: "
      "start-first, pull: true, drain: [x] }\n"
      "  - { name: svc, match: { kind: service }, max_age: 1h, strategy: "
      "force-update }\n"
      "  - { name: nodes, match: { provider: s, kind: node }, max_age: 1d, "
      "replace: [/bin/true] }\n");
  assert_int_equal(c->n_policies, 3);
  rp_config_free(c);
}

/* Fresh content's settings, and their defaults. */
static void
test_fresh_content(void **state)
{
  (void)state;
  struct rp_config *c = parse_ok(
      P "policies:\n"
        "  - name: web\n"
        "    max_age: 2h\n"
        "    update: { check: 5m, settle: 1h, max_failures: 2, allow: "
        "[\"sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000"
        "\"] }\n"
        "    max_image_age: 30d\n"
        "    verify: [/usr/local/bin/verify-image, --strict]\n"
        "    verify_timeout: 2m\n"
        "  - name: plain\n"
        "    max_age: 2h\n"
        "  - name: defaults\n"
        "    max_age: 2h\n"
        "    update:\n"
        "  - name: pulls\n"
        "    max_age: 2h\n"
        "    pull: true\n");
  const struct rp_policy *p = &c->policies[0];
  assert_true(p->update);
  assert_int_equal(p->update_check_ms, 5 * 60 * 1000);
  assert_int_equal(p->update_settle_ms, 3600 * 1000);
  assert_int_equal(p->update_max_failures, 2);
  assert_string_equal(p->update_allow[0],
                      "sha256:0000000000000000000000000000"
                      "000000000000000000000000000000000000");
  assert_null(p->update_allow[1]);
  assert_int_equal(p->max_image_age_ms, (int64_t)30 * 86400 * 1000);
  assert_string_equal(p->verify[1], "--strict");
  assert_int_equal(p->verify_timeout_ms, 120 * 1000);
  assert_true(rp_policy_follows_content(p));
  assert_int_equal(rp_policy_check_ms(p), 5 * 60 * 1000);
  p = &c->policies[1];
  assert_false(p->update);
  assert_int_equal(p->max_image_age_ms, 0);
  assert_null(p->verify);
  assert_false(rp_policy_follows_content(p));
  p = &c->policies[2];
  assert_true(p->update);
  assert_int_equal(p->update_check_ms, 5 * 60 * 1000);
  assert_int_equal(p->update_settle_ms, 0);
  assert_int_equal(p->update_max_failures, 1);
  assert_int_equal(p->verify_timeout_ms, 5 * 60 * 1000);
  p = &c->policies[3];
  assert_true(rp_policy_follows_content(p)); /* pull: the same gate */
  assert_int_equal(rp_policy_check_ms(p), RP_CONFIG_DEFAULT_CHECK_MS);
  rp_config_free(c);
}

/* The trust settings: a policy a label may pick though its match refuses
 * the workload, and the workloads' own opt-out taken away; the defaults
 * (not selectable, opt-out allowed); a provider type's own setting,
 * checked by the provider (api_version). */
static void
test_trust_settings(void **state)
{
  struct rp_config *c = parse_ok(
      "providers: [ { name: d, type: docker, api_version: \"1.44\" } ]\n"
      "policies:\n"
      "  - { name: a, max_age: 1h }\n"
      "  - { name: b, max_age: 1h, selectable: true }\n"
      "exclude: { workload_opt_out: false }\n");
  assert_false(c->policies[0].selectable);
  assert_true(c->policies[1].selectable);
  assert_true(c->deny_workload_opt_out);
  assert_string_equal(
      rp_provider_config_option(&c->providers[0], "api_version"), "1.44");
  assert_null(rp_provider_config_option(&c->providers[0], "nope"));
  rp_config_free(c);
  c = parse_ok("providers: [ { name: d, type: docker } ]\n"
               "policies: [ { name: a, max_age: 1h } ]\n"
               "exclude: { labels: { x: y } }\n");
  assert_false(c->deny_workload_opt_out);
  assert_null(rp_provider_config_option(&c->providers[0], "api_version"));
  rp_config_free(c);
}

static void
test_full_example(void **state)
{
  struct rp_config *c = load_ok(EXAMPLES "full.yaml");
  assert_string_equal(c->listen, "127.0.0.1:9470");
  assert_string_equal(c->audit_log, "/var/lib/reaper/audit.jsonl");
  assert_int_equal(c->resync_ms, 60000);
  assert_false(c->dry_run);

  assert_int_equal(c->n_providers, 2);
  assert_string_equal(c->providers[0].name, "local");
  assert_string_equal(c->providers[0].type, "docker");
  assert_string_equal(c->providers[0].endpoint, "unix:///var/run/docker.sock");
  assert_int_equal(c->providers[0].mark.line, 57);
  assert_string_equal(c->providers[1].name, "cluster");
  assert_string_equal(c->providers[1].type, "swarm");
  assert_int_equal(c->providers[1].mark.line, 64);

  assert_int_equal(c->n_policies, 2);
  const struct rp_policy *web = &c->policies[0];
  assert_string_equal(web->name, "web");
  assert_int_equal(web->mark.line, 84);
  assert_string_equal(web->match_provider, "local");
  assert_int_equal(web->match_kind, RP_KIND_CONTAINER);
  assert_int_equal(web->n_match_labels, 1);
  assert_string_equal(web->match_labels[0].key, "tier");
  assert_string_equal(web->match_labels[0].value, "web");
  assert_string_equal(web->match_name, "web-*");
  assert_int_equal(web->max_age_ms, 2 * 3600 * 1000);
  assert_true(web->jitter > 0.0999 && web->jitter < 0.1001);
  assert_int_equal(web->grace_ms, 30000);
  assert_true(web->strategy_set);
  assert_int_equal(web->strategy, RP_STRATEGY_RECREATE);
  assert_int_equal(web->order, RP_ORDER_START_FIRST);
  assert_int_equal(web->max_unavailable.value, 1);
  assert_false(web->max_unavailable.percent);
  assert_int_equal(web->health_timeout_ms, 60000);
  assert_false(web->pull);
  assert_int_equal(web->hard_max_age_ms, 6 * 3600 * 1000);
  assert_strv(web->drain,
              (const char *const[]){"/bin/sh", "-c", "kill -USR1 1", NULL});
  assert_int_equal(web->drain_timeout_ms, 30000);
  assert_true(web->window.set);
  assert_int_equal(web->window.days, 0x3e); /* Monday..Friday */
  assert_int_equal(web->window.start_min, 9 * 60);
  assert_int_equal(web->window.end_min, 17 * 60);
  assert_string_equal(web->window.tz, "Europe/Berlin");
  assert_null(web->replace);
  assert_true(web->update);
  assert_int_equal(web->update_check_ms, 5 * 60 * 1000);
  assert_int_equal(web->update_settle_ms, 60 * 60 * 1000);
  assert_int_equal(web->update_max_failures, 1);
  assert_int_equal(web->max_image_age_ms, (int64_t)30 * 86400 * 1000);
  assert_strv(web->verify, (const char *const[]){"/usr/local/bin/verify-image",
                                                 "--strict", NULL});
  assert_int_equal(web->verify_timeout_ms, 5 * 60 * 1000);
  assert_int_equal(web->survive_ms, 2000);

  const struct rp_policy *nodes = &c->policies[1];
  assert_string_equal(nodes->name, "nodes");
  assert_int_equal(nodes->mark.line, 155);
  assert_string_equal(nodes->match_provider, "cluster");
  assert_int_equal(nodes->match_kind, RP_KIND_NODE);
  assert_int_equal(nodes->max_age_ms, 86400000);
  assert_true(nodes->strategy_set);
  assert_int_equal(nodes->strategy, RP_STRATEGY_DRAIN_REPLACE);
  assert_int_equal(nodes->drain_timeout_ms, 10 * 60 * 1000);
  assert_strv(nodes->replace,
              (const char *const[]){"/usr/local/lib/reaper/terminate-instance",
                                    "--region", "eu-central-1", NULL});
  assert_false(nodes->window.set);
  assert_int_equal(nodes->order, RP_ORDER_STOP_FIRST);

  assert_int_equal(c->n_exclude_labels, 1);
  assert_string_equal(c->exclude_labels[0].key, "reaper.exclude");
  assert_string_equal(c->exclude_labels[0].value, "true");

  assert_int_equal(c->n_notify, 1);
  assert_string_equal(c->notify[0].webhook, "https://hooks.example.com/reaper");
  assert_null(c->notify[0].command);
  assert_strv(c->notify[0].events,
              (const char *const[]){"recycle.failed", NULL});
  assert_int_equal(c->notify[0].timeout_ms, 10000);
  assert_int_equal(c->notify[0].retries, 3);

  assert_ptr_equal(rp_config_policy(c, "nodes"), nodes);
  assert_ptr_equal(rp_config_policy(c, "web"), web);
  assert_null(rp_config_policy(c, "Web"));
  assert_null(rp_config_policy(c, NULL));
  rp_config_free(c);
}

static void
test_minimal_example(void **state)
{
  struct rp_config *c = load_ok(EXAMPLES "minimal.yaml");
  assert_int_equal(c->n_providers, 1);
  assert_string_equal(c->providers[0].type, "docker");
  assert_int_equal(c->n_policies, 1);
  assert_string_equal(c->policies[0].name, "everything");
  assert_int_equal(c->policies[0].max_age_ms, 86400000);
  assert_int_equal(c->policies[0].match_kind, -1);
  assert_int_equal(c->n_exclude_labels, 1);
  rp_config_free(c);
}

static void
test_web_and_workers_example(void **state)
{
  struct rp_config *c = load_ok(EXAMPLES "web-and-workers.yaml");
  assert_int_equal(c->resync_ms, 120000);
  assert_int_equal(c->n_policies, 3);

  const struct rp_policy *web = rp_config_policy(c, "web");
  assert_non_null(web);
  assert_int_equal(web->n_match_labels, 2);
  assert_string_equal(web->match_labels[0].key, "app");
  assert_string_equal(web->match_labels[0].value, "shop");
  assert_string_equal(web->match_labels[1].key, "tier");
  assert_string_equal(web->match_labels[1].value, "web");
  assert_int_equal(web->max_age_ms, 6 * 3600 * 1000);
  assert_true(web->jitter > 0.1999 && web->jitter < 0.2001);
  assert_int_equal(web->order, RP_ORDER_START_FIRST);
  assert_int_equal(web->max_unavailable.value, 25);
  assert_true(web->max_unavailable.percent);
  assert_int_equal(web->health_timeout_ms, 120000);
  assert_true(web->pull);
  assert_false(web->strategy_set);

  const struct rp_policy *wk = rp_config_policy(c, "workers");
  assert_non_null(wk);
  assert_string_equal(wk->match_name, "shop-worker-*");
  assert_int_equal(wk->grace_ms, 120000);
  assert_int_equal(wk->hard_max_age_ms, 2 * 86400000LL);
  assert_int_equal(wk->drain_timeout_ms, 60000);
  assert_true(wk->window.set);
  assert_int_equal(wk->window.days, 0x3e);
  assert_int_equal(wk->window.start_min, 22 * 60);
  assert_int_equal(wk->window.end_min, 5 * 60 + 30); /* crosses midnight */
  assert_string_equal(wk->window.tz, "Europe/Berlin");
  assert_int_equal(wk->notify_before_ms, 30 * 60000);

  const struct rp_policy *batch = rp_config_policy(c, "batch");
  assert_non_null(batch);
  assert_int_equal(batch->strategy, RP_STRATEGY_REMOVE);

  assert_int_equal(c->n_exclude_labels, 2);
  assert_string_equal(c->exclude_labels[1].key, "tier");
  assert_string_equal(c->exclude_labels[1].value, "database");

  assert_int_equal(c->n_notify, 2);
  assert_int_equal(c->notify[0].timeout_ms, 5000);
  assert_int_equal(c->notify[0].retries, 5);
  assert_strv(
      c->notify[0].events,
      (const char *const[]){"recycle.failed", "recycle.recovered", NULL});
  assert_null(c->notify[1].webhook);
  assert_strv(c->notify[1].command,
              (const char *const[]){"/usr/local/bin/page-oncall", "--team",
                                    "shop", NULL});
  rp_config_free(c);
}

static void
test_embedded_default(void **state)
{
  struct rp_config *c = NULL;
  struct rp_error *err = NULL;
  assert_int_equal(rp_config_load_default(&c, &err), 0);
  assert_null(err);
  assert_string_equal(c->path, "<embedded default>");
  assert_int_equal(c->n_providers, 1);
  assert_string_equal(c->providers[0].type, "docker");
  assert_null(c->providers[0].endpoint); /* $DOCKER_HOST or the socket */
  const struct rp_policy *p = rp_config_policy(c, "default");
  assert_non_null(p);
  assert_int_equal(p->max_age_ms, 2 * 3600 * 1000);
  assert_true(p->jitter > 0.0999 && p->jitter < 0.1001);
  assert_int_equal(p->grace_ms, 30000);
  assert_true(p->strategy_set);
  assert_int_equal(p->strategy, RP_STRATEGY_RECREATE);
  assert_int_equal(p->max_unavailable.value, 1);
  assert_int_equal(c->n_exclude_labels, 1);
  assert_string_equal(c->exclude_labels[0].key, "reaper.exclude");
  assert_string_equal(c->exclude_labels[0].value, "true");
  rp_config_free(c);
}

/* Label values are text whatever YAML would make of them. */
static void
test_label_values_are_strings(void **state)
{
  struct rp_config *c = parse_ok(
      P POLS "    match:\n      labels: {a: true, b: 1, c: \"*\", d: yes, "
             "e: 1.5}\nexclude:\n  labels: {keep: on}\n");
  const struct rp_policy *p = &c->policies[0];
  assert_int_equal(p->n_match_labels, 5);
  static const char *const want[][2] = {
      {"a", "true"}, {"b", "1"}, {"c", "*"}, {"d", "yes"}, {"e", "1.5"}};
  for (size_t i = 0; i < 5; i++) {
    assert_string_equal(p->match_labels[i].key, want[i][0]);
    assert_string_equal(p->match_labels[i].value, want[i][1]);
  }
  assert_string_equal(c->exclude_labels[0].value, "on");
  rp_config_free(c);
}

static void
test_values_accepted(void **state)
{
  struct rp_config *c = parse_ok(
      "agent:\n  listen: \"\"\n  dry_run: True\n  resync: 1m30s\n"
      "  audit_checkpoint_every: 50\n  listen_token_file: /etc/t\n"
      "  listen_names: [reaper.example.internal, node-1]\n"
      "  audit_signing_key: /etc/k\n"
      "providers:\n  - name: c\n    type: containerd\n"
      "    namespaces: [default, moby]\n    allow_kubernetes: FALSE\n"
      "policies:\n  - name: p1\n    max_age: !!str 90m\n    jitter: 2.5%\n"
      "    grace: 0\n    max_unavailable: 3\n    pull: true\n"
      "    match: {provider: c, kind: task}\n"
      "    window: {days: [weekend], start: \"23:00\", end: \"1:15\", tz: "
      "UTC}\n"
      "  - name: p2\n    max_age: 500ms\n    jitter: 0\n"
      "    hard_max_age: 500ms\n    window: {days: [Monday, sun], start: "
      "\"00:00\", end: \"23:59\"}\n"
      "    strategy: restart\n    notify_before: 0s\n"
      "notify:\n  - command: [/bin/notify]\n    events: [recycle.*, "
      "agent.start]\n  - webhook: http://localhost:8080/x\n    events: "
      "[\"*\"]\n");
  assert_string_equal(c->listen, "");
  assert_true(c->dry_run);
  assert_int_equal(c->resync_ms, 90000);
  assert_int_equal(c->audit_checkpoint_every, 50);
  assert_string_equal(c->listen_token_file, "/etc/t");
  assert_strv(c->listen_names,
              (const char *const[]){"reaper.example.internal", "node-1", NULL});
  assert_string_equal(c->audit_signing_key, "/etc/k");
  /* containerd's own settings, typed as it declares them. */
  json_t *ns = rp_provider_config_value(&c->providers[0], "namespaces");
  assert_int_equal(json_array_size(ns), 2);
  assert_string_equal(json_string_value(json_array_get(ns, 0)), "default");
  assert_string_equal(json_string_value(json_array_get(ns, 1)), "moby");
  assert_false(rp_provider_config_flag(&c->providers[0], "allow_kubernetes"));
  assert_true(json_is_false(
      rp_provider_config_value(&c->providers[0], "allow_kubernetes")));

  const struct rp_policy *p1 = &c->policies[0];
  assert_int_equal(p1->max_age_ms, 90 * 60000);
  assert_true(p1->jitter > 0.02499 && p1->jitter < 0.02501);
  assert_int_equal(p1->grace_ms, 0);
  assert_int_equal(p1->max_unavailable.value, 3);
  assert_false(p1->max_unavailable.percent);
  assert_true(p1->pull);
  assert_string_equal(p1->match_provider, "c");
  assert_int_equal(p1->match_kind, RP_KIND_TASK);
  assert_int_equal(p1->window.days, 0x41); /* Saturday and Sunday */
  assert_int_equal(p1->window.start_min, 23 * 60);
  assert_int_equal(p1->window.end_min, 75);
  assert_string_equal(p1->window.tz, "UTC");

  const struct rp_policy *p2 = &c->policies[1];
  assert_int_equal(p2->max_age_ms, 500);
  assert_true(p2->jitter == 0.0);
  assert_int_equal(p2->hard_max_age_ms, 500); /* equal to max_age is fine */
  assert_int_equal(p2->window.days, 0x03);    /* Sunday and Monday */
  assert_null(p2->window.tz);                 /* UTC */
  assert_int_equal(p2->window.end_min, 23 * 60 + 59);
  assert_int_equal(p2->strategy, RP_STRATEGY_RESTART);
  assert_int_equal(c->n_notify, 2);
  rp_config_free(c);
}

/* Empty sections mean "nothing there", so commenting out every entry of
 * an optional section keeps the file valid. */
static void
test_null_sections(void **state)
{
  struct rp_config *c =
      parse_ok("agent:\n" P POLS "    match:\nexclude:\n  labels:\nnotify:\n");
  assert_string_equal(c->listen, "127.0.0.1:9470");
  assert_int_equal(c->policies[0].match_kind, -1);
  assert_int_equal(c->n_exclude_labels, 0);
  assert_int_equal(c->n_notify, 0);
  rp_config_free(c);
}

static void
test_missing_file(void **state)
{
  struct rp_config *c = NULL;
  struct rp_error *err = NULL;
  assert_int_equal(rp_config_load_file(DATA "no-such-file.yaml", &c, &err), -1);
  assert_null(c);
  assert_int_equal(err->code, RP_ECONFIG);
  assert_string_equal(err->message,
                      DATA "no-such-file.yaml: cannot read: No such file or "
                           "directory");
  rp_error_free(err);
  err = NULL;
  assert_int_equal(rp_config_load_file(DATA, &c, &err), -1);
  assert_int_equal(err->code, RP_ECONFIG);
  assert_string_equal(err->message, DATA ": cannot read: Is a directory");
  rp_error_free(err);
}

static void
test_error_without_err_pointer(void **state)
{
  struct rp_config *c = NULL;
  assert_int_equal(rp_config_parse("t.yaml", "x: [", 4, &c, NULL), -1);
  assert_null(c);
  rp_config_free(NULL);
}

/* The zone must be a TZif file, not just any file in the database
 * directory; $TZDIR moves the database, as it does for glibc. */
static void
test_zone_must_be_tzif(void **state)
{
  static const char yaml[] = P POLS WIN "      tz: Fake/Text\n";
  struct rp_config *c = NULL;
  struct rp_error *err = NULL;
  assert_int_equal(setenv("TZDIR", DATA "zoneinfo", 1), 0);
  int rc = rp_config_parse("t.yaml", yaml, strlen(yaml), &c, &err);
  unsetenv("TZDIR");
  assert_int_equal(rc, -1);
  assert_string_equal(err->message,
                      "t.yaml:10:11: policies[0].window.tz: unknown time zone "
                      "'Fake/Text': not a zone in the time zone database");
  rp_error_free(err);
  err = NULL;

  static const char good[] = P POLS WIN "      tz: Fake/Zone\n";
  assert_int_equal(setenv("TZDIR", DATA "zoneinfo", 1), 0);
  rc = rp_config_parse("t.yaml", good, strlen(good), &c, &err);
  unsetenv("TZDIR");
  assert_int_equal(rc, 0);
  assert_string_equal(c->policies[0].window.tz, "Fake/Zone");
  rp_config_free(c);
}

static void
test_durations(void **state)
{
  static const struct {
    const char *s;
    int64_t ms;
  } ok[] = {
      {"500ms", 500},
      {"90s", 90000},
      {"30m", 1800000},
      {"2h", 7200000},
      {"1h30m", 5400000},
      {"1d", 86400000},
      {"0", 0},
      {"0s", 0},
      {"1d2h3m4s5ms", 93784005},
      {"1m1ms", 60001},
      {"36500d", 36500LL * 86400000},
      {"106751991167d7h", 106751991167LL * 86400000 + 7 * 3600000LL},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(ok); i++) {
    int64_t ms = -1;
    const char *why = NULL;
    if (rp_duration_parse(ok[i].s, &ms, &why) != 0)
      fail_msg("'%s' rejected: %s", ok[i].s, why);
    assert_int_equal(ms, ok[i].ms);
  }
  static const struct {
    const char *s;
    const char *why;
  } bad[] = {
      {"", "empty"},
      {"10", "missing unit"},
      {"5x", "unknown unit"},
      {"1h1h", "largest to smallest"},
      {"30m1h", "largest to smallest"},
      {"1ms1s", "largest to smallest"},
      {"-5m", "negative"},
      {"1.5h", "fractions"},
      {"h", "expected a number"},
      {"2H", "unknown unit"},
      {" 2h", "expected a number"},
      {"2h ", "expected a number"},
      {"+2h", "expected a number"},
      {"9223372036854775807ms1ms", "largest to smallest"},
      {"9223372036854775808ms", "too large"},
      {"106751991168d", "too large"},   /* INT64_MAX ms is 106751991167.3d */
      {"106751991167d8h", "too large"}, /* ... and 7.2h */
      {"99999999999999999999s", "too large"},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(bad); i++) {
    int64_t ms = 12345;
    const char *why = NULL;
    if (rp_duration_parse(bad[i].s, &ms, &why) != -1)
      fail_msg("'%s' accepted as %lld ms", bad[i].s, (long long)ms);
    assert_int_equal(ms, 12345);
    assert_non_null(why);
    if (strstr(why, bad[i].why) == NULL)
      fail_msg("'%s': got \"%s\", want \"%s\"", bad[i].s, why, bad[i].why);
  }
  int64_t ms;
  assert_int_equal(rp_duration_parse(NULL, &ms, NULL), -1);
  /* The largest representable duration still parses. */
  assert_int_equal(rp_duration_parse("9223372036854775807ms", &ms, NULL), 0);
  assert_true(ms == INT64_MAX);
}

static void
test_strategy_names(void **state)
{
  static const char *const names[] = {
      "recreate", "restart", "stop", "remove", "force-update", "drain-replace"};
  assert_int_equal(RP_ARRAY_LEN(names), RP_STRATEGY__COUNT);
  for (int i = 0; i < RP_STRATEGY__COUNT; i++) {
    assert_string_equal(rp_strategy_name((enum rp_strategy)i), names[i]);
    assert_int_equal(rp_strategy_parse(names[i]), i);
  }
  assert_int_equal(rp_strategy_parse("Recreate"), -1);
  assert_int_equal(rp_strategy_parse(""), -1);
  assert_int_equal(rp_strategy_parse(NULL), -1);
  assert_null(rp_strategy_name(RP_STRATEGY__COUNT));
}

/* Timestamps from the engines (State.StartedAt) and the audit log: what
 * reaper writes back must read back as the same instant. */
static void
test_timestamps(void **state)
{
  (void)state;
  int64_t ms = -1;
  assert_int_equal(rp_parse_time_ms("2026-11-30T06:00:00.123456789Z", &ms), 0);
  assert_int_equal(ms, INT64_C(1796018400123));
  assert_int_equal(rp_parse_time_ms("2026-11-30T07:30:00+01:30", &ms), 0);
  assert_int_equal(ms, INT64_C(1796018400000));
  /* Go's zero time and anything before the epoch: never started. */
  assert_int_equal(rp_parse_time_ms("0001-01-01T00:00:00Z", &ms), 0);
  assert_int_equal(ms, 0);
  assert_int_equal(rp_parse_time_ms("1970-01-01T00:30:00+01:00", &ms), 0);
  assert_int_equal(ms, 0);
  /* An offset that moves the instant back into 1970 (found by the fuzzer:
   * the year alone once decided "zero time" and the UTC form read back as
   * 0). */
  assert_int_equal(rp_parse_time_ms("1971-01-01T00:00:00+23:59", &ms), 0);
  assert_int_equal(ms, INT64_C(31449660000));
  char buf[64];
  int64_t again = -1;
  rp_format_time_ms(ms, buf, sizeof(buf));
  assert_string_equal(buf, "1970-12-31T00:01:00.000Z");
  assert_int_equal(rp_parse_time_ms(buf, &again), 0);
  assert_int_equal(again, ms);
  assert_int_not_equal(rp_parse_time_ms("2026-11-30T06:00:00", &ms), 0);
  assert_int_not_equal(rp_parse_time_ms("2026-11-30T06:00:00+1:00", &ms), 0);
}

/* A configuration of many keys: text with N labels under exclude.labels
 * (lines 7 on), then `extra` appended.  Owned. */
static char *
many_labels(size_t n, const char *extra)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  fputs(P POLS "exclude:\n  labels:\n", f);
  for (size_t i = 0; i < n; i++)
    fprintf(f, "    key-%zu: v\n", i);
  fputs(extra, f);
  fclose(f);
  return buf;
}

static void
expect_error(const char *yaml, const char *want)
{
  struct rp_config *c = NULL;
  struct rp_error *err = NULL;
  assert_int_equal(rp_config_parse("t.yaml", yaml, strlen(yaml), &c, &err), -1);
  assert_null(c);
  if (!strstr(err->message, want)) {
    char got[1024];
    snprintf(got, sizeof(got), "%s", err->message);
    rp_error_free(err);
    fail_msg("got: %s\nwant: ...%s", got, want);
  }
  rp_error_free(err);
}

/* Duplicates are found wherever they are among many keys (the index that
 * makes a large file load in linear time must not lose one), and the same
 * key in different mappings is no duplicate. */
static void
test_duplicates_among_many(void **state)
{
  (void)state;
  /* 5,000 labels, then the first one again: line 7 + 5,000. */
  char *yaml = many_labels(5000, "    key-0: again\n");
  expect_error(yaml, "t.yaml:5009:5: duplicate key 'key-0' (first at line 9)");
  free(yaml);
  yaml = many_labels(5000, "    key-4999: again\n");
  expect_error(yaml, "duplicate key 'key-4999' (first at line 5008)");
  free(yaml);
  /* A key that differs only past a common prefix, or in length, is not
   * the same key. */
  yaml = many_labels(5000, "    key-49999: v\n    key-: v\n    key: v\n");
  struct rp_config *c = parse_ok(yaml);
  assert_int_equal(c->n_exclude_labels, 5003);
  rp_config_free(c);
  free(yaml);

  /* The same keys in sibling and nested mappings are fine... */
  c = parse_ok(P "policies:\n"
                 "  - name: a\n    max_age: 1h\n"
                 "    match: { labels: { name: x, max_age: y } }\n"
                 "  - name: b\n    max_age: 1h\n"
                 "    match: { labels: { name: x, max_age: y } }\n");
  assert_int_equal(c->n_policies, 2);
  rp_config_free(c);
  /* ...and one after a nested mapping closes is still its parent's. */
  expect_error(P "policies:\n"
                 "  - name: a\n    match: { labels: { max_age: y } }\n"
                 "    max_age: 1h\n    max_age: 2h\n",
               "t.yaml:8:5: duplicate key 'max_age' (first at line 7)");

  /* Policy names among thousands. */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  fputs(P "policies:\n", f);
  for (int i = 0; i < 3000; i++)
    fprintf(f, "  - name: p%d\n    max_age: 1h\n", i);
  fputs("  - name: p1234\n    max_age: 1h\n", f);
  fclose(f);
  expect_error(buf, "duplicate policy name 'p1234' (first at line 2473)");
  free(buf);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_timestamps),
      cmocka_unit_test(test_full_example),
      cmocka_unit_test(test_trust_settings),
      cmocka_unit_test(test_capabilities_by_match),
      cmocka_unit_test(test_fresh_content),
      cmocka_unit_test(test_minimal_example),
      cmocka_unit_test(test_web_and_workers_example),
      cmocka_unit_test(test_embedded_default),
      cmocka_unit_test(test_label_values_are_strings),
      cmocka_unit_test(test_values_accepted),
      cmocka_unit_test(test_null_sections),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_error_without_err_pointer),
      cmocka_unit_test(test_zone_must_be_tzif),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_strategy_names),
      cmocka_unit_test(test_duplicates_among_many),
  };
  size_t n = RP_ARRAY_LEN(err_cases);
  struct CMUnitTest *errs = rp_xcalloc(n, sizeof(*errs));
  for (size_t i = 0; i < n; i++)
    errs[i] = (struct CMUnitTest){.name = err_cases[i].name,
                                  .test_func = run_err_case,
                                  .initial_state = &err_cases[i]};
  int failed = cmocka_run_group_tests_name("config", tests, NULL, NULL);
  failed += _cmocka_run_group_tests("config_errors", errs, n, NULL, NULL);
  free(errs);
  return failed ? 1 : 0;
}
