/* reaper report's fresh content over hand-written audit logs (chained as the
 * audit module chains them, with chosen times): patch latency per new
 * digest, per policy, per service and overall; pending and superseded
 * digests; an index that only gained a platform; content age at recycle;
 * reasons; refusals by refused_by; quarantines; logs of a reaper before
 * these lines; --since and --until.  Checks the JSON keys, the CSV columns,
 * the text tables and that the SVG is well-formed XML with the latency
 * series. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "report.h"
#include "util.h"

#define REF "docker.io/library/nginx:1.25"
#define REF2 "ghcr.io/acme/api:2"
#define D0                                                                     \
  "sha256:0000000000000000000000000000000000000000000000000000000000000000"
#define D1                                                                     \
  "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D1B                                                                    \
  "sha256:1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b"
#define D2                                                                     \
  "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3                                                                     \
  "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define E0                                                                     \
  "sha256:e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0"
#define E1                                                                     \
  "sha256:e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1"

struct fx {
  char dir[64];
  char path[128];
};

static int
setup(void **state)
{
  struct fx *f = rp_xcalloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/test_report_fresh.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/audit.jsonl", f->dir);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fx *f = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

/* --- writing logs ----------------------------------------------------------
 */

/* Chains lines with chosen times, as the audit module would write them. */
struct chain {
  FILE *f;
  char prev[65];
  uint64_t seq;
};

static void
chain_open(struct chain *c, const char *path)
{
  c->f = fopen(path, "w");
  assert_non_null(c->f);
  memset(c->prev, '0', 64);
  c->prev[64] = '\0';
  c->seq = 0;
}

/* ts is "HH:MM" on 2026-11-30, or a whole RFC 3339 time. */
static void
chain_line(struct chain *c, const char *ts, const char *event, json_t *fields)
{
  char full[64];
  if (strlen(ts) == 5)
    snprintf(full, sizeof(full), "2026-11-30T%s:00.000000000Z", ts);
  else
    snprintf(full, sizeof(full), "%s", ts);
  json_t *o = json_pack("{s:s, s:I, s:s}", "ts", full, "seq",
                        (json_int_t)++c->seq, "event", event);
  const char *k;
  json_t *v;
  json_object_foreach(fields, k, v) json_object_set(o, k, v);
  json_object_set_new(o, "prev", json_string(c->prev));
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  size_t n = strlen(s);
  char hash[65];
  rp_audit_sha256_hex(s, n, hash);
  fprintf(c->f, "%.*s,\"hash\":\"%s\"}\n", (int)(n - 1), s, hash);
  memcpy(c->prev, hash, sizeof(hash));
  free(s);
  json_decref(o);
  json_decref(fields);
}

/* image.seen; previous NULL: the reference's first sighting. */
static void
seen(struct chain *c, const char *ts, const char *ref, const char *digest,
     const char *previous, bool new_content)
{
  json_t *f =
      json_pack("{s:s, s:s, s:s, s:s}", "reference", ref, "digest", digest,
                "platform", "linux/amd64", "platform_digest", digest);
  json_object_set_new(f, "previous_digest",
                      previous ? json_string(previous) : json_null());
  json_object_set_new(f, "new_content", json_boolean(new_content));
  json_object_set_new(f, "source", json_string("registry"));
  chain_line(c, ts, "image.seen", f);
}

/* The fields every recycle.* line has, and the image. */
static json_t *
wl(const char *policy, const char *service, const char *name, const char *id,
   const char *image)
{
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "provider",
                        "local", "kind", "container", "id", id, "name", name,
                        "policy", policy, "started_at", "2026-11-30T00:00:00Z",
                        "age_s", 3000, "max_age_s", 7200);
  if (service)
    json_object_set_new(o, "service", json_string(service));
  if (image)
    json_object_set_new(o, "image", json_string(image));
  return o;
}

/* recycle.done moving a workload from digest `from` to `to`. */
static void
done(struct chain *c, const char *ts, const char *policy, const char *service,
     const char *name, const char *id, const char *image, const char *to,
     const char *from, const char *reason, double content_age)
{
  json_t *f = wl(policy, service, name, id, image);
  json_object_set_new(f, "replacement_id", json_string("r"));
  json_object_set_new(f, "duration_s", json_real(2));
  if (reason)
    json_object_set_new(f, "reason", json_string(reason));
  json_object_set_new(f, "image_digest", to ? json_string(to) : json_null());
  json_object_set_new(f, "previous_image_digest",
                      from ? json_string(from) : json_null());
  if (!isnan(content_age))
    json_object_set_new(f, "content_age_s", json_real(content_age));
  chain_line(c, ts, "recycle.done", f);
}

static void
refused(struct chain *c, const char *ts, const char *policy,
        const char *service, const char *name, const char *id,
        const char *image, const char *by, const char *digest)
{
  json_t *f = wl(policy, service, name, id, image);
  json_object_set_new(f, "reason", json_string("update"));
  if (by)
    json_object_set_new(f, "refused_by", json_string(by));
  if (digest)
    json_object_set_new(f, "digest", json_string(digest));
  chain_line(c, ts, "recycle.refused", f);
}

/* --- reading figures back ------------------------------------------------- */

static struct rp_report *
build(const char *path, const struct rp_report_options *opt)
{
  struct rp_report *r = NULL;
  struct rp_error *err = NULL;
  const char *paths[] = {path};
  if (rp_report_build(paths, 1, opt, &r, &err) != 0)
    fail_msg("report: %s", err->message);
  if (rp_report_chain_problem(r))
    fail_msg("chain: %s", rp_report_chain_problem(r));
  return r;
}

static json_t *
find_named(json_t *arr, const char *name)
{
  size_t i;
  json_t *g;
  json_array_foreach(arr, i, g)
  {
    if (strcmp(json_string_value(json_object_get(g, "name")), name) == 0)
      return g;
  }
  fail_msg("no %s", name);
  return NULL;
}

static json_t *
find_digest(json_t *j, const char *digest)
{
  size_t i;
  json_t *d;
  json_array_foreach(
      json_object_get(json_object_get(j, "patch_latency"), "digests"), i, d)
  {
    if (strcmp(json_string_value(json_object_get(d, "digest")), digest) == 0)
      return d;
  }
  return NULL;
}

static void
assert_num(json_t *o, const char *key, double want)
{
  json_t *v = json_object_get(o, key);
  if (!json_is_number(v))
    fail_msg("%s: not a number", key);
  if (fabs(json_number_value(v) - want) > 1e-9)
    fail_msg("%s: want %.6f, got %.6f", key, want, json_number_value(v));
}

static void
assert_null_member(json_t *o, const char *key)
{
  if (!json_is_null(json_object_get(o, key)))
    fail_msg("%s: want null", key);
}

static void
assert_str(json_t *o, const char *key, const char *want)
{
  const char *s = json_string_value(json_object_get(o, key));
  if (!s || strcmp(s, want) != 0)
    fail_msg("%s: want '%s', got '%s'", key, want, s ? s : "(none)");
}

/* The patch latency summary of a scope: digests, rolled out, pending,
 * superseded, median, worst (NAN: null). */
static void
assert_latency(json_t *o, int digests, int rolled_out, int pending,
               int superseded, double median, double worst)
{
  assert_num(o, "digests", digests);
  assert_num(o, "rolled_out", rolled_out);
  assert_num(o, "pending", pending);
  assert_num(o, "superseded", superseded);
  if (isnan(median))
    assert_null_member(o, "median_s");
  else
    assert_num(o, "median_s", median);
  if (isnan(worst))
    assert_null_member(o, "worst_s");
  else
    assert_num(o, "worst_s", worst);
}

static void
assert_rollout(json_t *o, const char *state, const char *rolled_out_at,
               double latency, int recycles)
{
  assert_str(o, "state", state);
  if (rolled_out_at)
    assert_str(o, "rolled_out_at", rolled_out_at);
  else
    assert_null_member(o, "rolled_out_at");
  if (isnan(latency))
    assert_null_member(o, "latency_s");
  else
    assert_num(o, "latency_s", latency);
  assert_num(o, "recycles", recycles);
}

static char *
output(int (*fn)(const struct rp_report *, FILE *, struct rp_error **),
       const struct rp_report *r)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  assert_int_equal(fn(r, m, NULL), 0);
  fclose(m);
  return buf;
}

/* The SVG is well-formed XML, as xmllint reads it. */
static void
assert_xml(const struct fx *f, const char *svg)
{
  if (system("command -v xmllint >/dev/null 2>&1") != 0)
    fail_msg("xmllint is not installed (contrib/install-deps.sh --test)");
  char path[160], cmd[400];
  snprintf(path, sizeof(path), "%s/r.svg", f->dir);
  FILE *o = fopen(path, "w");
  assert_non_null(o);
  fputs(svg, o);
  fclose(o);
  snprintf(cmd, sizeof(cmd), "xmllint --noout %s", path);
  if (system(cmd) != 0)
    fail_msg("the SVG is not well-formed XML");
}

static size_t
count(const char *hay, const char *needle)
{
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

/* The CSV row that begins with prefix, split at commas (no quoted field
 * in these tests); the number of fields. */
static size_t
csv_fields(const char *csv, const char *prefix, char fields[][64], size_t max)
{
  const char *row = csv;
  while (row && strncmp(row, prefix, strlen(prefix)) != 0) {
    row = strstr(row, "\r\n");
    if (row)
      row += 2;
  }
  if (!row)
    fail_msg("no CSV row %s", prefix);
  size_t n = 0;
  const char *p = row;
  for (;;) {
    size_t len = strcspn(p, ",\r");
    assert_true(n < max && len < 64);
    memcpy(fields[n], p, len);
    fields[n++][len] = '\0';
    if (p[len] != ',')
      break;
    p += len + 1;
  }
  return n;
}

static size_t
csv_column(const char *csv, const char *name)
{
  char head[64][64];
  size_t n = csv_fields(csv, "scope,", head, 64);
  for (size_t i = 0; i < n; i++)
    if (strcmp(head[i], name) == 0)
      return i;
  fail_msg("no CSV column %s", name);
  return 0;
}

/* --- the fixture --------------------------------------------------------- */

/* One reference, web (service web, 2 replicas) and api (service api) run
 * it; batch runs it and refuses the new digest (verify).
 *   09:00 first sighting, D0
 *   10:00 D1: web-1 10:30, web-2 11:00 (web: 1h), api-1 11:30 (api: 1h30m)
 *   10:45 D1B: the index gained a platform (same content): not a digest
 *   11:40 batch refuses D1 (verify); 11:50 image.quarantined for batch
 *   12:00 D2: web-1 moved to D1B at 12:10 (after D2: not D1's), web-1 12:20,
 *         api-1 12:30, web-2 14:00 (web: 2h, api: 30m, overall 2h);
 *         14:30 web-1 recycled for max_age, already on D2: not a move
 *   15:00 D3: nothing moved to it (pending)
 *   15:30 policy late names the reference for the first time (a dry
 *         run): D3 concerns it, D1 and D2 (whose windows ended) do not
 * A second reference, REF2, in policy api only, service api2:
 *   09:00 first sighting E0; 13:00 E1, api2-1 moved at 13:15 (15m). */
static void
write_fixture(const char *path)
{
  struct chain c;
  chain_open(&c, path);
  chain_line(&c, "08:59", "agent.start", json_object());
  seen(&c, "09:00", REF, D0, NULL, true);
  seen(&c, "09:00", REF2, E0, NULL, true);
  done(&c, "09:30", "batch", "batch", "batch-1", "b0", REF, D0, D0, "max_age",
       500);
  seen(&c, "10:00", REF, D1, D0, true);
  done(&c, "10:30", "web", "web", "web-1", "w1", REF, D1, D0, "update", 7200);
  seen(&c, "10:45", REF, D1B, D1, false);
  done(&c, "11:00", "web", "web", "web-2", "w2", REF, D1B, D0, "update", 9000);
  done(&c, "11:30", "api", "api", "api-1", "a1", REF, D1, D0, "image_age",
       10800);
  refused(&c, "11:40", "batch", "batch", "batch-1", "b1", REF, "verify", D1);
  chain_line(&c, "11:50", "image.quarantined",
             json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "reference", REF,
                       "digest", D1, "platform_digest", D1, "policy", "batch",
                       "failures", 1, "error", "health check timed out"));
  seen(&c, "12:00", REF, D2, D1B, true);
  done(&c, "12:10", "web", "web", "web-1", "w3", REF, D1B, D0, "update", 100);
  done(&c, "12:20", "web", "web", "web-1", "w4", REF, D2, D1, "update", 200);
  done(&c, "12:30", "api", "api", "api-1", "a2", REF,
       "docker.io/library/nginx@" D2, D1, "update", 300);
  seen(&c, "13:00", REF2, E1, E0, true);
  done(&c, "13:15", "api", "api2", "api2-1", "c1", REF2, E1, E0, "label", 50);
  done(&c, "14:00", "web", "web", "web-2", "w5", REF, D2, D1B, "update", 400);
  done(&c, "14:30", "web", "web", "web-1", "w6", REF, D2, D2, "max_age", 600);
  seen(&c, "15:00", REF, D3, D2, true);
  refused(&c, "15:10", "web", "web", "web-3", "w7", NULL, "provider", NULL);
  chain_line(&c, "15:30", "recycle.planned",
             wl("late", "late", "late-1", "l1", REF));
  chain_line(&c, "16:00", "agent.stop", json_object());
  fclose(c.f);
}

/* --- tests ------------------------------------------------------------------
 */

static void
test_digests(void **state)
{
  struct fx *f = *state;
  write_fixture(f->path);
  struct rp_report *r = build(f->path, NULL);
  json_t *j = rp_report_json(r);
  json_t *pl = json_object_get(j, "patch_latency");
  assert_non_null(pl);

  /* Four new digests (D1, D2, D3 and E1), not D0, E0 (first sightings)
   * nor D1B (the same content). */
  assert_int_equal(json_array_size(json_object_get(pl, "digests")), 4);
  assert_null(find_digest(j, D0));
  assert_null(find_digest(j, D1B));

  json_t *d1 = find_digest(j, D1);
  assert_non_null(d1);
  assert_str(d1, "reference", REF);
  assert_str(d1, "first_seen", "2026-11-30T10:00:00.000Z");
  /* The last move into it within its window: api-1 at 11:30 (web-1's
   * move to D1B at 12:10 came after D2). */
  assert_rollout(d1, "rolled_out", "2026-11-30T11:30:00.000Z", 5400, 3);
  assert_str(d1, "superseded_at", "2026-11-30T12:00:00.000Z");
  assert_int_equal(json_array_size(json_object_get(d1, "same_content")), 1);
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(d1, "same_content"), 0)),
      D1B);
  json_t *pol = json_object_get(d1, "policies");
  assert_int_equal(json_array_size(pol), 3);
  assert_rollout(find_named(pol, "api"), "rolled_out",
                 "2026-11-30T11:30:00.000Z", 5400, 1);
  /* batch ran the reference and refused D1: never moved before D2. */
  assert_rollout(find_named(pol, "batch"), "superseded", NULL, NAN, 0);
  assert_rollout(find_named(pol, "web"), "rolled_out",
                 "2026-11-30T11:00:00.000Z", 3600, 2);
  json_t *svc = json_object_get(d1, "services");
  assert_int_equal(json_array_size(svc), 3);
  assert_str(find_named(svc, "web"), "provider", "local");
  assert_rollout(find_named(svc, "web"), "rolled_out",
                 "2026-11-30T11:00:00.000Z", 3600, 2);

  /* D2: web-1 12:20, api-1 12:30 (written as RepoDigests lists it), web-2
   * 14:00; web-1's max-age recycle at 14:30 ran D2 already. */
  json_t *d2 = find_digest(j, D2);
  assert_rollout(d2, "rolled_out", "2026-11-30T14:00:00.000Z", 7200, 3);
  assert_str(d2, "superseded_at", "2026-11-30T15:00:00.000Z");
  pol = json_object_get(d2, "policies");
  assert_rollout(find_named(pol, "web"), "rolled_out",
                 "2026-11-30T14:00:00.000Z", 7200, 2);
  assert_rollout(find_named(pol, "api"), "rolled_out",
                 "2026-11-30T12:30:00.000Z", 1800, 1);
  assert_rollout(find_named(pol, "batch"), "superseded", NULL, NAN, 0);

  /* D3: the newest, nothing moved to it yet. */
  json_t *d3 = find_digest(j, D3);
  assert_rollout(d3, "pending", NULL, NAN, 0);
  assert_null_member(d3, "superseded_at");
  assert_int_equal(json_array_size(json_object_get(d3, "policies")), 4);
  assert_rollout(find_named(json_object_get(d3, "policies"), "late"), "pending",
                 NULL, NAN, 0);
  assert_rollout(find_named(json_object_get(d3, "policies"), "web"), "pending",
                 NULL, NAN, 0);

  /* E1: only policy api (service api2) ran REF2. */
  json_t *e1 = find_digest(j, E1);
  assert_rollout(e1, "rolled_out", "2026-11-30T13:15:00.000Z", 900, 1);
  assert_int_equal(json_array_size(json_object_get(e1, "policies")), 1);
  assert_rollout(find_named(json_object_get(e1, "services"), "api2"),
                 "rolled_out", "2026-11-30T13:15:00.000Z", 900, 1);

  /* Summaries: overall latencies 900 5400 7200. */
  assert_latency(json_object_get(pl, "overall"), 4, 3, 1, 0, 5400, 7200);
  json_t *lp = json_object_get(pl, "policies");
  assert_int_equal(json_array_size(lp), 4);
  assert_latency(find_named(lp, "late"), 1, 0, 1, 0, NAN, NAN);
  /* api: D1 5400, D2 1800, E1 900, D3 pending. */
  assert_latency(find_named(lp, "api"), 4, 3, 1, 0, 1800, 5400);
  assert_latency(find_named(lp, "web"), 3, 2, 1, 0, 5400, 7200);
  assert_latency(find_named(lp, "batch"), 3, 0, 1, 2, NAN, NAN);
  json_t *ls = json_object_get(pl, "services");
  assert_int_equal(json_array_size(ls), 5);
  assert_latency(find_named(ls, "api"), 3, 2, 1, 0, 3600, 5400);
  assert_latency(find_named(ls, "api2"), 1, 1, 0, 0, 900, 900);
  assert_latency(find_named(ls, "web"), 3, 2, 1, 0, 5400, 7200);

  /* The same figures in the groups, as CSV columns. */
  json_t *web = find_named(json_object_get(j, "policies"), "web");
  assert_num(web, "digests", 3);
  assert_num(web, "digests_rolled_out", 2);
  assert_num(web, "digests_pending", 1);
  assert_num(web, "digests_superseded", 0);
  assert_num(web, "patch_latency_p50_s", 5400);
  assert_num(web, "patch_latency_worst_s", 7200);
  json_decref(j);
  rp_report_free(r);
}

static void
test_content_reasons_refusals(void **state)
{
  struct fx *f = *state;
  write_fixture(f->path);
  struct rp_report *r = build(f->path, NULL);
  json_t *j = rp_report_json(r);
  json_t *pols = json_object_get(j, "policies");

  /* web: content ages 7200 9000 100 200 400 600; reasons update 5,
   * max_age 1. */
  json_t *web = find_named(pols, "web");
  assert_num(web, "content_age_p50_s", 500);
  assert_num(web, "content_age_worst_s", 9000);
  assert_num(web, "reason_update", 5);
  assert_num(web, "reason_max_age", 1);
  assert_num(web, "reason_image_age", 0);
  assert_num(web, "reason_unstated", 0);
  assert_num(web, "refused", 1);
  assert_num(web, "refused_provider", 1);
  assert_num(web, "refused_verify", 0);
  assert_num(web, "quarantined", 0);
  /* api: 10800 (image_age), 300 (update), 50 (label). */
  json_t *api = find_named(pols, "api");
  assert_num(api, "content_age_p50_s", 300);
  assert_num(api, "content_age_worst_s", 10800);
  assert_num(api, "reason_image_age", 1);
  assert_num(api, "reason_update", 1);
  assert_num(api, "reason_label", 1);
  /* batch: refused by verify, D1 quarantined. */
  json_t *batch = find_named(pols, "batch");
  assert_num(batch, "refused", 1);
  assert_num(batch, "refused_verify", 1);
  assert_num(batch, "quarantined", 1);
  assert_num(batch, "reason_max_age", 1);

  json_t *all = json_object_get(j, "overall");
  assert_num(all, "recycles", 10);
  assert_num(all, "content_age_p50_s", 450); /* 10 ages: 400 and 500 */
  assert_num(all, "content_age_worst_s", 10800);
  assert_num(all, "reason_update", 6);
  assert_num(all, "reason_max_age", 2);
  assert_num(all, "refused_verify", 1);
  assert_num(all, "refused_provider", 1);
  assert_num(all, "quarantined", 1);
  /* A quarantine is a policy's: null for a service. */
  assert_null_member(find_named(json_object_get(j, "services"), "batch"),
                     "quarantined");
  json_decref(j);
  rp_report_free(r);
}

static void
test_csv_text_svg(void **state)
{
  struct fx *f = *state;
  write_fixture(f->path);
  struct rp_report *r = build(f->path, NULL);

  char *csv = output(rp_report_write_csv, r);
  /* The columns of older reports keep their places; the new ones follow
   * longest_workload. */
  assert_int_equal(csv_column(csv, "longest_workload"), 23);
  assert_int_equal(csv_column(csv, "content_age_p50_s"), 24);
  static const char *const cols[] = {
      "content_age_worst_s", "reason_max_age",       "reason_hard_max_age",
      "reason_update",       "reason_image_age",     "reason_label",
      "reason_pull",         "reason_other",         "reason_unstated",
      "refused_verify",      "refused_quarantine",   "refused_provider",
      "refused_other",       "quarantined",          "digests",
      "digests_rolled_out",  "digests_pending",      "digests_superseded",
      "patch_latency_p50_s", "patch_latency_worst_s"};
  for (size_t i = 0; i < RP_ARRAY_LEN(cols); i++)
    assert_int_equal(csv_column(csv, cols[i]), 25 + i);
  char row[64][64];
  size_t n = csv_fields(csv, "policy,web,", row, 64);
  assert_int_equal(n, 45);
  assert_string_equal(row[csv_column(csv, "patch_latency_p50_s")], "5400");
  assert_string_equal(row[csv_column(csv, "patch_latency_worst_s")], "7200");
  assert_string_equal(row[csv_column(csv, "digests_pending")], "1");
  assert_string_equal(row[csv_column(csv, "content_age_p50_s")], "500");
  n = csv_fields(csv, "service,batch,local,", row, 64);
  assert_string_equal(row[csv_column(csv, "quarantined")], "");
  assert_string_equal(row[csv_column(csv, "digests_superseded")], "2");
  n = csv_fields(csv, "overall,", row, 64);
  assert_string_equal(row[csv_column(csv, "digests")], "4");
  assert_string_equal(row[csv_column(csv, "patch_latency_p50_s")], "5400");
  free(csv);

  char *t = output(rp_report_write_text, r);
  assert_non_null(strstr(t, "\nPatch latency (a new digest of a reference: "
                            "from first seen to the last workload moved to "
                            "it)\n"));
  assert_non_null(strstr(t, "\nContent age at recycle"));
  assert_non_null(strstr(t, "\nRefused recycles, by whom, and digests "
                            "quarantined\n"));
  assert_non_null(strstr(t, "\nNew digests: 4\n"));
  /* Rows as people read them (columns aligned: spaces vary). */
  static const char *const rows[][8] = {
      {"policy", "api", "4", "3", "1", "0", "30m", "1h30m"},
      {"policy", "web", "3", "2", "1", "0", "1h30m", "2h"},
      {"policy", "batch", "3", "0", "1", "2", "-", "-"},
      {"overall", "4", "3", "1", "0", "1h30m", "2h", NULL},
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(rows); i++) {
    const char *p = strstr(t, "\nPatch latency");
    bool found = false;
    while (!found && (p = strstr(p + 1, rows[i][0])) != NULL) {
      char line[256];
      size_t len = strcspn(p, "\n");
      snprintf(line, sizeof(line), "%.*s", (int)len, p);
      char *save = NULL, *tok = strtok_r(line, " ", &save);
      size_t k = 0;
      while (tok && k < 8 && rows[i][k] && strcmp(tok, rows[i][k]) == 0) {
        tok = strtok_r(NULL, " ", &save);
        k++;
      }
      found = (k == 8 || !rows[i][k]) && !tok;
    }
    if (!found)
      fail_msg("no text row %s %s", rows[i][0], rows[i][1]);
  }
  assert_non_null(strstr(t, "sha256:111111111111  2026-11-30T10:00:00Z  "
                            "2026-11-30T11:30:00Z"));
  assert_non_null(strstr(t, "api 1h30m, batch superseded, web 1h"));
  free(t);

  char *svg = output(rp_report_write_svg, r);
  assert_xml(f, svg);
  assert_non_null(strstr(svg, "<g class=\"patch-latency\">"));
  /* A dot per digest and policy rolled out: D1 api, web; D2 api, web; E1
   * api; a hollow mark per one not: D1 batch, D2 batch, D3 api, batch,
   * late, web. */
  assert_int_equal(count(svg, "<circle class=\"latency\""), 5);
  assert_int_equal(count(svg, "<circle class=\"pending\""), 6);
  assert_int_equal(count(svg, "data-state=\"superseded\""), 2);
  assert_non_null(strstr(svg, "data-digest=\"" D2 "\" data-policy=\"web\" "
                              "data-first-seen=\"2026-11-30T12:00:00Z\" "
                              "data-latency-s=\"7200.000\" "
                              "data-recycles=\"2\""));
  assert_non_null(strstr(svg, "data-digest=\"" E1 "\" data-policy=\"api\" "
                              "data-first-seen=\"2026-11-30T13:00:00Z\" "
                              "data-latency-s=\"900.000\""));
  assert_non_null(strstr(svg, "class=\"median\" data-median-s=\"5400.000\""));
  assert_non_null(strstr(svg, "4 new digests: 3 rolled out (patch latency "
                              "median 1h30m, worst 2h), 1 pending, 0 "
                              "superseded"));
  free(svg);
  rp_report_free(r);
}

/* Lines of a reaper before fresh content: no image.seen, no reason, no
 * digests; and fresh lines that are not what the contract says. */
static void
test_old_and_odd_lines(void **state)
{
  struct fx *f = *state;
  struct chain c;
  chain_open(&c, f->path);
  chain_line(&c, "10:00", "agent.start", json_object());
  json_t *w = wl("web", NULL, "web-1", "w1", NULL);
  json_object_set_new(w, "duration_s", json_real(1));
  chain_line(&c, "10:10", "recycle.done", w);
  w = wl("web", NULL, "web-2", "w2", NULL);
  json_object_set_new(w, "reason", json_string("paused"));
  chain_line(&c, "10:20", "recycle.refused", w);
  chain_line(&c, "11:00", "agent.stop", json_object());
  fclose(c.f);
  struct rp_report *r = build(f->path, NULL);
  json_t *j = rp_report_json(r);
  json_t *web = find_named(json_object_get(j, "policies"), "web");
  assert_num(web, "recycles", 1);
  assert_num(web, "reason_unstated", 1);
  assert_num(web, "reason_update", 0);
  assert_num(web, "refused_other", 1); /* no refused_by */
  assert_null_member(web, "content_age_p50_s");
  assert_null_member(web, "patch_latency_p50_s");
  assert_num(web, "digests", 0);
  json_t *pl = json_object_get(j, "patch_latency");
  assert_latency(json_object_get(pl, "overall"), 0, 0, 0, 0, NAN, NAN);
  assert_int_equal(json_array_size(json_object_get(pl, "policies")), 0);
  assert_int_equal(json_array_size(json_object_get(pl, "digests")), 0);
  json_decref(j);
  /* The text and the SVG are as before: no fresh content section. */
  char *t = output(rp_report_write_text, r);
  assert_null(strstr(t, "Patch latency"));
  assert_null(strstr(t, "Content age"));
  assert_null(strstr(t, "New digests"));
  free(t);
  char *svg = output(rp_report_write_svg, r);
  assert_xml(f, svg);
  assert_null(strstr(svg, "patch-latency"));
  assert_null(strstr(svg, "new digest"));
  free(svg);
  rp_report_free(r);

  /* Odd fresh lines: no digest, numbers where strings belong, a digest
   * seen with no previous and new_content absent, recycle.done into a
   * reference never seen, a non-number content age. */
  chain_open(&c, f->path);
  chain_line(&c, "10:00", "image.seen", json_pack("{s:s}", "reference", REF));
  chain_line(&c, "10:01", "image.seen",
             json_pack("{s:i, s:i, s:i}", "reference", 1, "digest", 2,
                       "previous_digest", 3));
  chain_line(&c, "10:02", "image.seen",
             json_pack("{s:s, s:s, s:s}", "reference", REF, "digest", D1,
                       "previous_digest", D0));
  seen(&c, "10:03", REF, D2, D1, true);
  seen(&c, "10:04", REF, D3, D2, false);
  done(&c, "10:05", "web", NULL, "web-1", "w1", REF2, E1, E0, "update", NAN);
  w = wl("web", NULL, "web-2", "w2", REF);
  json_object_set_new(w, "image_digest", json_integer(5));
  json_object_set_new(w, "content_age_s", json_string("old"));
  json_object_set_new(w, "reason", json_integer(1));
  chain_line(&c, "10:06", "recycle.done", w);
  chain_line(&c, "10:07", "image.quarantined", json_object());
  done(&c, "10:08", "web", NULL, "web-3", "w3", REF, D3, NULL, "pull", 60);
  fclose(c.f);
  r = build(f->path, NULL);
  j = rp_report_json(r);
  /* D1 (new_content absent) is not counted, D2 is, and D3 (same content)
   * carries it: web-3's move to D3 is D2's rollout, from an unknown
   * previous digest. */
  assert_int_equal(json_array_size(json_object_get(
                       json_object_get(j, "patch_latency"), "digests")),
                   1);
  assert_rollout(find_digest(j, D2), "rolled_out", "2026-11-30T10:08:00.000Z",
                 300, 1);
  web = find_named(json_object_get(j, "policies"), "web");
  assert_num(web, "recycles", 3);
  assert_num(web, "reason_other", 0);
  assert_num(web, "reason_unstated", 1); /* a number is no reason */
  assert_num(web, "reason_pull", 1);
  assert_num(web, "content_age_p50_s", 60);
  assert_num(find_named(json_object_get(j, "policies"), "(none)"),
             "quarantined", 1);
  json_decref(j);
  t = output(rp_report_write_text, r);
  assert_non_null(strstr(t, "\nNew digests: 1\n"));
  free(t);
  svg = output(rp_report_write_svg, r);
  assert_xml(f, svg);
  free(svg);
  rp_report_free(r);
}

/* --since leaves out a digest first seen before it; --until makes one
 * whose workloads moved after it pending. */
static void
test_since_until(void **state)
{
  struct fx *f = *state;
  write_fixture(f->path);
  struct rp_report_options opt;
  rp_report_options_init(&opt);
  assert_int_equal(rp_report_parse_time("2026-11-30T11:45:00Z", 0, false,
                                        &opt.since_ms, NULL),
                   0);
  struct rp_report *r = build(f->path, &opt);
  json_t *j = rp_report_json(r);
  json_t *pl = json_object_get(j, "patch_latency");
  /* D1 (10:00) is left out, and so are the moves to it after --since;
   * D2, E1 and D3 are counted as before. */
  assert_null(find_digest(j, D1));
  assert_int_equal(json_array_size(json_object_get(pl, "digests")), 3);
  assert_rollout(find_digest(j, D2), "rolled_out", "2026-11-30T14:00:00.000Z",
                 7200, 3);
  assert_latency(json_object_get(pl, "overall"), 3, 2, 1, 0, 4050, 7200);
  json_decref(j);
  rp_report_free(r);

  /* Until 13:00: D2's rollout stands at web-1 and api-1; web-2 (14:00) is
   * after the report.  D1's window ended at 12:00, inside. */
  rp_report_options_init(&opt);
  assert_int_equal(rp_report_parse_time("2026-11-30T13:00:00Z", 0, false,
                                        &opt.until_ms, NULL),
                   0);
  r = build(f->path, &opt);
  j = rp_report_json(r);
  pl = json_object_get(j, "patch_latency");
  assert_int_equal(json_array_size(json_object_get(pl, "digests")), 2);
  assert_rollout(find_digest(j, D1), "rolled_out", "2026-11-30T11:30:00.000Z",
                 5400, 3);
  json_t *d2 = find_digest(j, D2);
  assert_rollout(d2, "rolled_out", "2026-11-30T12:30:00.000Z", 1800, 2);
  assert_null_member(d2, "superseded_at");
  assert_latency(json_object_get(pl, "overall"), 2, 2, 0, 0, 3600, 5400);
  json_decref(j);
  rp_report_free(r);

  /* Until 12:15: D2 has no move yet: pending. */
  rp_report_options_init(&opt);
  assert_int_equal(rp_report_parse_time("2026-11-30T12:15:00Z", 0, false,
                                        &opt.until_ms, NULL),
                   0);
  r = build(f->path, &opt);
  j = rp_report_json(r);
  assert_rollout(find_digest(j, D2), "pending", NULL, NAN, 0);
  assert_latency(
      json_object_get(json_object_get(j, "patch_latency"), "overall"), 2, 1, 1,
      0, 5400, 5400);
  json_decref(j);
  rp_report_free(r);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_digests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_content_reasons_refusals, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_csv_text_svg, setup, teardown),
      cmocka_unit_test_setup_teardown(test_old_and_odd_lines, setup, teardown),
      cmocka_unit_test_setup_teardown(test_since_until, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
