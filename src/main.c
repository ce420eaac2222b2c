/* The command line: a table of commands, each a function.  The only place
 * that prints a final error and chooses the exit code. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "audit.h"
#include "config.h"
#include "http_client.h"
#include "image_index.h"
#include "image_ref.h"
#include "log.h"
#include "registry.h"
#include "report.h"
#include "strv.h"
#include "util.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

struct command {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *usage; /* the --help text */
};

static const struct command *find_command(const char *name);

static int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
usage_error(const char *cmd, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "reaper %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'reaper %s --help'.\n", cmd);
  return EXIT_USAGE;
}

static int
print_help(const char *cmd)
{
  fputs(find_command(cmd)->usage, stdout);
  return EXIT_OK;
}

/* Reports an error from the library: configuration errors exit 2. */
static int
fail(const char *cmd, const struct rp_error *err)
{
  fprintf(stderr, "reaper %s: %s\n", cmd,
          err && err->message ? err->message : "failed");
  return err && err->code == RP_ECONFIG ? EXIT_USAGE : EXIT_RUNTIME;
}

static int
load_config(const char *path, bool allow_insecure, struct rp_config **out,
            struct rp_error **err)
{
  if (path && !allow_insecure && rp_config_check_permissions(path, err) != 0)
    return -1;
  return path ? rp_config_load_file(path, out, err)
              : rp_config_load_default(out, err);
}

/* --- run and plan ------------------------------------------------------- */

static int
run_agent(const char *cmd, int argc, char **argv, enum rp_agent_mode mode)
{
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},
      {"dry-run", no_argument, NULL, 'n'},
      {"once", no_argument, NULL, 'o'},
      {"json", no_argument, NULL, 'j'},
      {"log-format", required_argument, NULL, 'l'},
      {"verbose", no_argument, NULL, 'v'},
      {"allow-insecure-config", no_argument, NULL, 'I'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  struct rp_agent_options opt = {.mode = mode};
  const char *config_path = NULL;
  bool json_logs = false, verbose = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:v", longopts, NULL)) != -1) {
    switch (c) {
    case 'c':
      config_path = optarg;
      break;
    case 'n':
      if (mode == RP_AGENT_PLAN)
        return usage_error(cmd, "unknown option '%s'", "--dry-run");
      opt.dry_run = true;
      break;
    case 'o':
      if (mode == RP_AGENT_PLAN)
        return usage_error(cmd, "unknown option '%s'", "--once");
      opt.mode = RP_AGENT_ONCE;
      break;
    case 'j':
      if (mode != RP_AGENT_PLAN)
        return usage_error(cmd, "unknown option '%s'", "--json");
      opt.json = true;
      break;
    case 'l':
      if (strcmp(optarg, "json") == 0)
        json_logs = true;
      else if (strcmp(optarg, "text") != 0)
        return usage_error(cmd, "--log-format must be text or json, not '%s'",
                           optarg);
      break;
    case 'v':
      verbose = true;
      break;
    case 'I':
      opt.allow_insecure_config = true;
      break;
    case 'h':
      return print_help(cmd);
    default:
      return usage_error(cmd, "%s", "invalid option");
    }
  }
  if (optind < argc)
    return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  /* plan's output is the table: its log says only what went wrong. */
  rp_log_setup(json_logs, verbose                 ? RP_LOG_DEBUG
                          : mode == RP_AGENT_PLAN ? RP_LOG_WARN
                                                  : RP_LOG_INFO);

  cleanup_error struct rp_error *err = NULL;
  struct rp_config *config = NULL;
  if (load_config(config_path, opt.allow_insecure_config, &config, &err) != 0)
    return fail(cmd, err);
  opt.config_path = config_path;
  int rc = rp_agent_run(config, &opt, &err);
  if (rc != 0 && err)
    return fail(cmd, err) == EXIT_USAGE ? EXIT_USAGE : rc;
  return rc;
}

static int
cmd_run(int argc, char **argv)
{
  return run_agent("run", argc, argv, RP_AGENT_RUN);
}

static int
cmd_plan(int argc, char **argv)
{
  return run_agent("plan", argc, argv, RP_AGENT_PLAN);
}

/* --- check-config ------------------------------------------------------- */

static int
cmd_check_config(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},
      {"allow-insecure-config", no_argument, NULL, 'I'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  const char *path = NULL;
  bool allow_insecure = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
    switch (c) {
    case 'c':
      path = optarg;
      break;
    case 'I':
      allow_insecure = true;
      break;
    case 'h':
      return print_help("check-config");
    default:
      return usage_error("check-config", "%s", "invalid option");
    }
  }
  /* `reaper check-config FILE` is accepted too. */
  if (optind < argc && !path)
    path = argv[optind++];
  if (optind < argc)
    return usage_error("check-config", "unexpected argument '%s'",
                       argv[optind]);
  cleanup_error struct rp_error *err = NULL;
  struct rp_config *config = NULL;
  if (load_config(path, allow_insecure, &config, &err) != 0) {
    fprintf(stderr, "%s\n", err->message);
    return EXIT_USAGE;
  }
  printf("%s: ok (%zu providers, %zu policies)\n", config->path,
         config->n_providers, config->n_policies);
  rp_config_free(config);
  return EXIT_OK;
}

/* --- verify ------------------------------------------------------------- */

static void
print_notes(const char *notes)
{
  for (const char *p = notes; p && *p;) {
    size_t n = strcspn(p, "\n");
    fprintf(stderr, "reaper verify: note: %.*s\n", (int)n, p);
    p += n + (p[n] == '\n');
  }
}

static int
cmd_verify(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"key", required_argument, NULL, 'k'},
      {"allow-unsigned-tail", no_argument, NULL, 'u'},
      {"rotated", no_argument, NULL, 'r'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  cleanup_free const char **keys = rp_xcalloc((size_t)argc, sizeof(char *));
  struct rp_audit_verify_options opt = {.keys = keys};
  bool rotated = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "k:", longopts, NULL)) != -1) {
    switch (c) {
    case 'k':
      keys[opt.n_keys++] = optarg;
      break;
    case 'u':
      opt.allow_unsigned_tail = true;
      break;
    case 'r':
      rotated = true;
      break;
    case 'h':
      return print_help("verify");
    default:
      return usage_error("verify", "%s", "invalid option");
    }
  }
  if (optind >= argc)
    return usage_error("verify", "%s", "which log? (reaper verify LOG...)");
  if (opt.allow_unsigned_tail && opt.n_keys == 0)
    return usage_error("verify", "%s",
                       "--allow-unsigned-tail needs --key: without one there "
                       "is nothing signed to speak of");
  cleanup_error struct rp_error *err = NULL;
  /* --rotated: each LOG stands for its rotated parts and itself. */
  cleanup_strv char **files = NULL;
  for (int i = optind; rotated && i < argc; i++) {
    cleanup_strv char **parts = NULL;
    size_t n = 0;
    if (rp_audit_files(argv[i], &parts, &n, &err) != 0)
      return fail("verify", err);
    if (n == 0) {
      fprintf(stderr, "reaper verify: %s: no such log, nor rotated parts\n",
              argv[i]);
      return EXIT_RUNTIME;
    }
    for (size_t k = 0; k < n; k++)
      rp_strv_push(&files, parts[k]);
  }
  size_t n_files = rp_strv_len(files);
  const char *const *paths =
      rotated ? (const char *const *)files : (const char *const *)&argv[optind];
  size_t n_paths = rotated ? n_files : (size_t)(argc - optind);
  struct rp_audit_verify_result res;
  int rc = rp_audit_verify_with(paths, n_paths, &opt, &res, &err);
  print_notes(res.notes);
  if (rc != 0) {
    rp_audit_verify_result_clear(&res);
    if (err && err->code == RP_ETAMPER) {
      fprintf(stderr, "reaper verify: %s\n", err->message);
      return EXIT_RUNTIME;
    }
    return fail("verify", err);
  }
  printf("ok: %llu lines, chain intact", (unsigned long long)res.lines);
  if (opt.n_keys && res.sealed)
    printf(", %llu signed checkpoints, the last written at stop",
           (unsigned long long)res.checkpoints);
  else if (opt.n_keys)
    printf(", %llu signed checkpoints, %llu lines after the last one",
           (unsigned long long)res.checkpoints,
           (unsigned long long)res.unsigned_tail);
  printf("\n");
  rp_audit_verify_result_clear(&res);
  return EXIT_OK;
}

/* --- report ------------------------------------------------------------- */

static int
cmd_report(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"json", no_argument, NULL, 'j'},
      {"csv", no_argument, NULL, 'C'},
      {"svg", required_argument, NULL, 'g'},
      {"since", required_argument, NULL, 'S'},
      {"until", required_argument, NULL, 'U'},
      {"tolerance", required_argument, NULL, 't'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  struct rp_report_options opt;
  rp_report_options_init(&opt);
  int format = 0; /* 0 text, 'j' json, 'C' csv */
  const char *svg = NULL, *why = NULL;
  int64_t now = rp_wall_ms();
  cleanup_error struct rp_error *err = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'j':
    case 'C':
      if (format && format != c)
        return usage_error("report", "%s",
                           "--json and --csv exclude each other");
      format = c;
      break;
    case 'g':
      svg = optarg;
      break;
    case 'S':
    case 'U':
      if (rp_report_parse_time(optarg, now, c == 'U',
                               c == 'S' ? &opt.since_ms : &opt.until_ms,
                               &err) != 0)
        return usage_error("report", "--%s: %s", c == 'S' ? "since" : "until",
                           err->message);
      break;
    case 't':
      if (rp_duration_parse(optarg, &opt.tolerance_ms, &why) != 0)
        return usage_error("report", "--tolerance '%s': %s", optarg, why);
      break;
    case 'h':
      return print_help("report");
    default:
      return usage_error("report", "%s", "invalid option");
    }
  }
  if (optind >= argc)
    return usage_error("report", "%s", "which log? (reaper report LOG...)");
  if (opt.since_ms >= opt.until_ms)
    return usage_error("report", "%s", "--since is not before --until");
  bool svg_stdout = svg && strcmp(svg, "-") == 0;
  if (svg_stdout && format)
    return usage_error("report", "%s",
                       "--svg - and --json/--csv both want stdout");
  struct rp_report *r = NULL;
  if (rp_report_build((const char *const *)&argv[optind],
                      (size_t)(argc - optind), &opt, &r, &err) != 0)
    return fail("report", err);
  if (rp_report_chain_problem(r))
    fprintf(stderr,
            "reaper report: warning: the audit chain does not verify: %s "
            "(reporting anyway)\n",
            rp_report_chain_problem(r));
  if (rp_report_bad_lines(r))
    fprintf(stderr,
            "reaper report: warning: %llu lines are not audit lines and were "
            "skipped\n",
            (unsigned long long)rp_report_bad_lines(r));
  int rc = 0;
  if (svg_stdout)
    rc = rp_report_write_svg(r, stdout, &err);
  else if (svg)
    rc = rp_report_write_svg_file(r, svg, &err);
  if (rc == 0 && !svg_stdout)
    rc = format == 'j'   ? rp_report_write_json(r, stdout, &err)
         : format == 'C' ? rp_report_write_csv(r, stdout, &err)
                         : rp_report_write_text(r, stdout, &err);
  rp_report_free(r);
  return rc == 0 ? EXIT_OK : fail("report", err);
}

/* --- resolve-image ------------------------------------------------------ */

/* The references of one resolve-image, resolved one after the other on one
 * resolver (so that the second of a repository reuses the first's token). */
struct resolve_run {
  uv_loop_t *loop;
  struct rp_registry *reg;
  struct rp_image_ref *refs;
  size_t n, next;
  struct rp_platform platform;
  int failed;
};

static void resolve_next(struct resolve_run *run);

/* One line per reference on stdout, whatever happened; failures also on
 * stderr, for people. */
static void
resolve_print(struct resolve_run *run, const struct rp_image_ref *ref,
              const struct rp_registry_result *res, const struct rp_error *err)
{
  cleanup_json json_t *line = NULL;
  if (res) {
    line = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s}", "reference",
                     res->reference, "digest", res->digest, "media_type",
                     res->media_type, "index", res->is_index, "platform",
                     res->platform, "platform_digest", res->platform_digest);
  } else {
    cleanup_free char *name = rp_image_ref_format(ref);
    line = json_pack("{s:s, s:s, s:s}", "reference", name, "outcome",
                     rp_registry_outcome_name(rp_registry_outcome_of(err)),
                     "error", err->message);
    fprintf(stderr, "reaper resolve-image: %s\n", err->message);
    run->failed++;
  }
  cleanup_free char *text = json_dumps(line, JSON_COMPACT);
  printf("%s\n", text);
  fflush(stdout);
}

static void
resolve_done_cb(void *arg, const struct rp_registry_result *res,
                const struct rp_error *err)
{
  struct resolve_run *run = arg;
  resolve_print(run, &run->refs[run->next - 1], res, err);
  resolve_next(run);
}

static void
resolve_next(struct resolve_run *run)
{
  while (run->next < run->n) {
    cleanup_error struct rp_error *err = NULL;
    struct rp_image_ref *ref = &run->refs[run->next++];
    if (rp_registry_resolve(run->reg, ref, &run->platform, resolve_done_cb, run,
                            NULL, &err) == 0)
      return;
    resolve_print(run, ref, NULL, err);
  }
  uv_stop(run->loop);
}

static int
cmd_resolve_image(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"platform", required_argument, NULL, 'p'},
      {"timeout", required_argument, NULL, 't'},
      {"stats", no_argument, NULL, 's'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  struct rp_registry_options opt = {0};
  struct resolve_run run = {0};
  bool stats = false, verbose = false, platform_given = false;
  const char *why = NULL;
  cleanup_error struct rp_error *err = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (rp_platform_parse(optarg, &run.platform, &err) != 0)
        return usage_error("resolve-image", "--platform '%s': %s", optarg,
                           err->message);
      platform_given = true;
      break;
    case 't':
      if (rp_duration_parse(optarg, &opt.timeout_ms, &why) != 0 ||
          opt.timeout_ms <= 0)
        return usage_error("resolve-image", "--timeout '%s': %s", optarg,
                           why ? why : "must be more than 0");
      break;
    case 's':
      stats = true;
      break;
    case 'v':
      verbose = true;
      break;
    case 'h':
      return print_help("resolve-image");
    default:
      return usage_error("resolve-image", "%s", "invalid option");
    }
  }
  if (optind >= argc)
    return usage_error("resolve-image", "%s",
                       "which image? (reaper resolve-image REF...)");
  rp_log_setup(false, verbose ? RP_LOG_DEBUG : RP_LOG_WARN);
  if (!platform_given)
    rp_platform_host(&run.platform);
  run.n = (size_t)(argc - optind);
  cleanup_free struct rp_image_ref *refs =
      rp_xcalloc(run.n, sizeof(struct rp_image_ref));
  run.refs = refs;
  for (size_t i = 0; i < run.n; i++) {
    if (rp_image_ref_parse(argv[optind + (int)i], &refs[i], &err) != 0) {
      for (size_t k = 0; k < i; k++)
        rp_image_ref_clear(&refs[k]);
      return usage_error("resolve-image", "%s", err->message);
    }
  }
  struct rp_registry_auth *auth = NULL;
  int rc = rp_registry_auth_load(NULL, &auth, &err);
  uv_loop_t loop;
  struct rp_http *http = NULL;
  if (rc == 0) {
    uv_loop_init(&loop);
    run.loop = &loop;
    rc = rp_http_new(&loop, &http, &err);
  }
  if (rc == 0) {
    run.reg = rp_registry_new(http, &opt);
    rp_registry_set_auth(run.reg, RP_STEAL(auth));
    resolve_next(&run);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (stats) {
      const struct rp_registry_stats *st = rp_registry_stats(run.reg);
      cleanup_json json_t *outcomes = json_object();
      for (int o = 0; o < RP_REGISTRY_OUTCOMES; o++)
        if (st->outcomes[o])
          json_object_set_new(outcomes, rp_registry_outcome_name(o),
                              json_integer((json_int_t)st->outcomes[o]));
      cleanup_json json_t *line =
          json_pack("{s:{s:I, s:O, s:I, s:I, s:I, s:I}}", "stats", "resolves",
                    (json_int_t)st->resolves, "outcomes", outcomes, "requests",
                    (json_int_t)st->requests, "token_requests",
                    (json_int_t)st->token_requests, "token_reused",
                    (json_int_t)st->token_reused, "index_cached",
                    (json_int_t)st->index_cached);
      cleanup_free char *text = json_dumps(line, JSON_COMPACT);
      printf("%s\n", text);
    }
    rp_registry_free(run.reg);
    rp_http_close(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  } else if (run.loop) {
    uv_loop_close(&loop);
  }
  rp_registry_auth_free(auth);
  for (size_t i = 0; i < run.n; i++)
    rp_image_ref_clear(&refs[i]);
  if (rc != 0)
    return fail("resolve-image", err);
  return run.failed ? EXIT_RUNTIME : EXIT_OK;
}

/* --- version ------------------------------------------------------------ */

static int
cmd_version(int argc, char **argv)
{
  if (argc > 1 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
    return print_help("version");
  if (argc > 1)
    return usage_error("version", "unexpected argument '%s'", argv[1]);
  printf("reaper %s\n", REAPER_VERSION);
  return EXIT_OK;
}

static const struct command commands[] = {
    {"run", cmd_run,
     "Usage: reaper run [-c FILE] [--dry-run] [--once] [--log-format "
     "text|json] [-v]\n"
     "Runs the agent in the foreground: tracks every workload's age and "
     "recycles\n"
     "each one past its policy's max age.  Logs go to stderr.\n\n"
     "  -c, --config FILE   configuration (default: the embedded one)\n"
     "      --dry-run       decide and audit as recycle.planned, change "
     "nothing\n"
     "      --once          one pass: recycle what is due, wait, exit (0 if "
     "all\n"
     "                      succeeded)\n"
     "      --log-format F  text (default) or json\n"
     "  -v, --verbose       debug logs\n"
     "      --allow-insecure-config  accept a configuration file that others "
     "may\n"
     "                      write (refused otherwise)\n\n"
     "Signals: SIGTERM/SIGINT finish recycles in flight and exit 0; SIGHUP\n"
     "reloads the configuration (an invalid file is rejected, the old one "
     "kept).\n"
     "Exit codes: 0 success, 1 runtime failure, 2 usage or configuration "
     "error.\n"},
    {"plan", cmd_plan,
     "Usage: reaper plan [-c FILE] [--json] [--log-format text|json] [-v]\n"
     "Lists every workload the providers report with its policy, start, age, "
     "deadline\n"
     "and what would happen to it, then exits.  Changes nothing.\n\n"
     "  -c, --config FILE   configuration (default: the embedded one)\n"
     "      --json          a JSON array instead of a table\n"
     "      --log-format F  text (default) or json, for what goes wrong\n"
     "  -v, --verbose       debug logs\n"
     "      --allow-insecure-config  accept a configuration file that others "
     "may\n"
     "                      write (refused otherwise)\n"},
    {"check-config", cmd_check_config,
     "Usage: reaper check-config [-c FILE]\n"
     "Checks a configuration: exit 0 when valid, exit 2 with "
     "FILE:LINE:COL: message\n"
     "when not.  Without -c, checks the embedded default.\n\n"
     "  -c, --config FILE   the file to check (or as the only argument)\n"
     "      --allow-insecure-config  accept a file that others may write\n"},
    {"verify", cmd_verify,
     "Usage: reaper verify [--key PUB]... [--allow-unsigned-tail] "
     "[--rotated] LOG...\n"
     "Checks an audit log's hash chain (several files: rotated parts in "
     "order,\n"
     "oldest first).\n\n"
     "  -k, --key PUB       also check the signed checkpoints with this "
     "Ed25519\n"
     "                      public key (PEM; repeat for keys used in turn), "
     "and that\n"
     "                      the log ends with the checkpoint written at "
     "stop\n"
     "      --allow-unsigned-tail  a live log (or one whose agent crashed): "
     "accept\n"
     "                      lines after the last checkpoint, counting them\n"
     "      --rotated       each LOG is a log's path: check its rotated "
     "parts\n"
     "                      (LOG.YYYYMMDDTHHMMSSZ) and it, in chain order\n\n"
     "Exit 0 when intact; exit 1 naming the first line that breaks it; 2 "
     "usage\n"
     "error or a key that cannot be read.\n"},
    {"report", cmd_report,
     "Usage: reaper report [--json | --csv] [--svg OUT] [--since TIME] "
     "[--until TIME]\n"
     "                     [--tolerance DURATION] LOG...\n"
     "Recycling figures from audit logs (rotated parts in order, oldest "
     "first), per\n"
     "policy, per service and overall: recycles, failures, rollbacks, dry-run "
     "plans,\n"
     "crash recoveries; age at recycle against max age; lateness after the "
     "deadline;\n"
     "duration; cadence per hour and per day.  Then the auditor's questions: "
     "which\n"
     "workloads lived longer than max age + tolerance, and which failed to "
     "recycle and\n"
     "were not recycled later in the log (\"none\" when none).\n\n"
     "      --json          one JSON object instead of tables\n"
     "      --csv           one row per policy, service and overall (RFC "
     "4180)\n"
     "      --svg OUT       also write a chart to OUT: recycles over time by "
     "policy,\n"
     "                      age at recycle / max age; \"-\": the chart alone "
     "on stdout\n"
     "      --since TIME    only lines at or after TIME\n"
     "      --until TIME    only lines before TIME\n"
     "      --tolerance D   how far past max age counts as overstaying "
     "(default 5m)\n\n"
     "TIME: RFC 3339 (2026-11-30T12:00:00Z), a date (2026-11-30, UTC; for "
     "--until\n"
     "the end of that day), now, or relative to now (-24h, -7d, -1h30m).\n"
     "A service is a workload's name without its replica suffix: "
     "svc.N.TASKID -> svc,\n"
     "project-web-1 -> project-web, web_2 -> web.\n"
     "A chain that does not verify is reported on stderr, naming the first "
     "bad line,\n"
     "and the report is made anyway.  Exit codes: 0 done, 1 a log cannot be "
     "read,\n"
     "2 usage error.\n"},
    {"resolve-image", cmd_resolve_image,
     "Usage: reaper resolve-image [--platform OS/ARCH[/VARIANT]] [--timeout "
     "D] [--stats]\n"
     "                            [-v] REF...\n"
     "Asks each image's registry what its tag names now, as reaper's update "
     "checks do,\n"
     "and prints one JSON object per line: the reference (normalized as "
     "docker does),\n"
     "the tag's digest (what `docker inspect` lists in RepoDigests after a "
     "pull), its\n"
     "media type, whether it is a multi-platform index, and the digest of "
     "the manifest\n"
     "for the platform (what decides whether the engine would run new "
     "content).\n"
     "Credentials come from $DOCKER_CONFIG/config.json (default "
     "~/.docker/config.json),\n"
     "\"auths\" entries only (credential helpers are not run).  Loopback "
     "registries\n"
     "are spoken to in plain HTTP, every other one in HTTPS.\n\n"
     "      --platform P    the engine's platform (default: this machine's, "
     "linux/ARCH)\n"
     "      --timeout D     per request (default 30s)\n"
     "      --stats         a last line with the resolver's counters\n"
     "  -v, --verbose       each request on stderr\n\n"
     "A failure prints {\"reference\", \"outcome\", \"error\"} (outcome: "
     "unreachable,\n"
     "timeout, unauthorized, denied, not_found, rate_limited, server_error, "
     "bad_answer,\n"
     "no_platform).  Exit codes: 0 all resolved, 1 one failed, 2 usage "
     "error.\n"},
    {"version", cmd_version, "Usage: reaper version\nPrints the version.\n"},
};

static const struct command *
find_command(const char *name)
{
  for (size_t i = 0; i < RP_ARRAY_LEN(commands); i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static void
main_usage(FILE *out)
{
  fprintf(out,
          "Usage: reaper COMMAND [OPTIONS]\n"
          "Recycles containers, services, nodes and hosts past their maximum "
          "age.\n\nCommands:\n");
  for (size_t i = 0; i < RP_ARRAY_LEN(commands); i++)
    fprintf(out, "  %s\n", commands[i].name);
  fprintf(out, "\n'reaper COMMAND --help' tells more.\n");
}

int
main(int argc, char **argv)
{
  if (argc < 2) {
    main_usage(stderr);
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    main_usage(stdout);
    return EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0)
    return cmd_version(1, argv);
  const struct command *cmd = find_command(argv[1]);
  if (!cmd) {
    fprintf(stderr, "reaper: unknown command '%s'\n", argv[1]);
    main_usage(stderr);
    return EXIT_USAGE;
  }
  return cmd->fn(argc - 1, argv + 1);
}
