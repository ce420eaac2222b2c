/* The docker provider's decoding of what the engine says about a container
 * (GET /containers/{id}/json): the workload it tracks (from the answer
 * parsed whole, and from the digest tracking reads instead, which must
 * agree with it), the body of the create request that recreates it, and
 * whether it publishes host ports.
 * An engine (or whatever answers on its socket) may say anything: none of
 * it may crash reaper, and what is built from it keeps its promises
 * (docker.h): a workload has the container's Id and a real start time, a
 * create body names the image it was asked to and carries the extra
 * labels, and a failure is RP_EPROTO. */
#include "fuzz.h"

#include <string.h>

#include "docker/docker.h"
#include "util.h"
#include "workload.h"

#define PROVIDER_NAME "fuzz"
/* The container the captured netcont.json shares its network and PID
 * namespaces with (tests/unit/data/docker/full.json). */
#define FULL_ID                                                                \
  "34228d9683e296177ae536be9096fc084abfe104333aced2e53570bbef64014f"
#define EXTRA_LABEL "reaper.replaces"

static void
check_workload(struct rp_docker *d, json_t *inspect)
{
  struct rp_workload *w = rp_docker_workload_from_inspect(d, inspect);
  if (!w)
    return;
  const char *id = json_string_value(json_object_get(inspect, "Id"));
  RP_FUZZ_CHECK(id && strcmp(w->id, id) == 0);
  RP_FUZZ_CHECK(strcmp(w->provider, PROVIDER_NAME) == 0);
  RP_FUZZ_CHECK(w->kind == RP_KIND_CONTAINER);
  RP_FUZZ_CHECK(w->started_ms > 0);
  RP_FUZZ_CHECK(json_is_object(w->labels));
  const char *k;
  json_t *v;
  json_object_foreach(w->labels, k, v)
  {
    RP_FUZZ_CHECK(json_is_string(v));
  }
  /* Only the container's own labels, never more. */
  json_t *given = json_object_get(json_object_get(inspect, "Config"), "Labels");
  json_object_foreach(w->labels, k, v)
  {
    RP_FUZZ_CHECK(json_equal(json_object_get(given, k), v));
  }
  /* Never touched (SPEC.md): reaper's own container.  Swarm tasks are too,
   * but only on the engine's word (track.c asks it): a label alone, as
   * here without a tracker, never protects. */
  RP_FUZZ_CHECK((w->protected_reason != NULL) ==
                (strcmp(w->id, d->self_id) == 0));
  rp_workload_free(w);
}

static void
check_create_body(json_t *inspect, json_t *image,
                  const struct rp_docker_create_opts *opts)
{
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  cleanup_error struct rp_error *err = NULL;
  if (rp_docker_create_body(inspect, image, opts, &body, &extra, &err) != 0) {
    RP_FUZZ_CHECK(err && err->code == RP_EPROTO && err->message);
    return;
  }
  RP_FUZZ_CHECK(err == NULL && json_is_object(body) && json_is_array(extra));
  const char *want = opts->image
                         ? opts->image
                         : json_string_value(json_object_get(inspect, "Image"));
  const char *got = json_string_value(json_object_get(body, "Image"));
  RP_FUZZ_CHECK(want && got && strcmp(want, got) == 0);
  json_t *labels = json_object_get(body, "Labels");
  RP_FUZZ_CHECK(json_equal(json_object_get(labels, EXTRA_LABEL),
                           json_object_get(opts->extra_labels, EXTRA_LABEL)));
  RP_FUZZ_CHECK(json_is_object(json_object_get(body, "HostConfig")));
  size_t i;
  json_t *net;
  json_array_foreach(extra, i, net)
  {
    RP_FUZZ_CHECK(json_is_string(json_object_get(net, "name")));
    RP_FUZZ_CHECK(json_is_object(json_object_get(net, "config")));
  }
  /* What is sent must serialize. */
  cleanup_free char *text = json_dumps(body, JSON_COMPACT);
  RP_FUZZ_CHECK(text != NULL);
  (void)rp_docker_body_clashes(body, extra);
}

/* The digest (what tracking parses of an inspect) says what the whole
 * does about everything tracking reads: the members, the workload. */
static void
check_digest(struct rp_docker *d, const uint8_t *data, size_t size)
{
  /* A NUL byte is never JSON; jansson drops one that follows a number
   * ("[1\0]" parses): compared up to the first one. */
  const char *nul = memchr(data, '\0', size);
  size_t len = nul ? (size_t)(nul - (const char *)data) : size;
  cleanup_json json_t *digest =
      rp_docker_inspect_digest((const char *)data, len);
  cleanup_json json_t *inspect =
      json_loadb((const char *)data, len, JSON_DECODE_ANY, NULL);
  if (!inspect)
    return; /* the digest may step over what jansson refuses (UTF-8) */
  RP_FUZZ_CHECK(digest != NULL);
  RP_FUZZ_CHECK(json_is_object(digest) == json_is_object(inspect));
  if (!json_is_object(inspect)) {
    RP_FUZZ_CHECK(json_equal(digest, inspect));
    return;
  }
  static const char *const keys[] = {"Id", "Name", "Image"};
  for (size_t i = 0; i < RP_ARRAY_LEN(keys); i++)
    RP_FUZZ_CHECK(json_equal(json_object_get(digest, keys[i]),
                             json_object_get(inspect, keys[i])) ||
                  (!json_object_get(digest, keys[i]) &&
                   !json_object_get(inspect, keys[i])));
  /* Of State, what tracking reads (all of it when it is no object). */
  json_t *state = json_object_get(inspect, "State");
  json_t *dstate = json_object_get(digest, "State");
  RP_FUZZ_CHECK((state == NULL) == (dstate == NULL));
  RP_FUZZ_CHECK(json_is_object(state) ? json_is_object(dstate)
                                      : !state || json_equal(state, dstate));
  static const char *const skeys[] = {"Running", "Restarting", "Paused",
                                      "StartedAt"};
  for (size_t i = 0; json_is_object(state) && i < RP_ARRAY_LEN(skeys); i++) {
    json_t *a = json_object_get(state, skeys[i]);
    json_t *b = json_object_get(dstate, skeys[i]);
    RP_FUZZ_CHECK(a ? b && json_equal(a, b) : !b);
  }
  /* Of HostConfig, how it depends on other containers. */
  json_t *hc = json_object_get(inspect, "HostConfig");
  json_t *dhc = json_object_get(digest, "HostConfig");
  RP_FUZZ_CHECK((hc == NULL) == (dhc == NULL));
  RP_FUZZ_CHECK(json_is_object(hc) ? json_is_object(dhc)
                                   : !hc || json_equal(hc, dhc));
  static const char *const hkeys[] = {"NetworkMode", "PidMode", "IpcMode",
                                      "Links"};
  for (size_t i = 0; json_is_object(hc) && i < RP_ARRAY_LEN(hkeys); i++) {
    json_t *a = json_object_get(hc, hkeys[i]);
    json_t *b = json_object_get(dhc, hkeys[i]);
    RP_FUZZ_CHECK(a ? b && json_equal(a, b) : !b);
  }
  json_t *config = json_object_get(inspect, "Config");
  json_t *dconfig = json_object_get(digest, "Config");
  RP_FUZZ_CHECK((config == NULL) == (dconfig == NULL));
  RP_FUZZ_CHECK(json_is_object(config) == json_is_object(dconfig));
  json_t *labels = json_object_get(config, "Labels");
  json_t *dlabels = json_object_get(dconfig, "Labels");
  RP_FUZZ_CHECK((labels == NULL) == (dlabels == NULL));
  RP_FUZZ_CHECK(!labels || json_equal(labels, dlabels));
  struct rp_workload *a = rp_docker_workload_from_inspect(d, inspect);
  struct rp_workload *b = rp_docker_workload_from_inspect(d, digest);
  RP_FUZZ_CHECK((a == NULL) == (b == NULL));
  if (a) {
    RP_FUZZ_CHECK(strcmp(a->id, b->id) == 0 && strcmp(a->name, b->name) == 0);
    RP_FUZZ_CHECK(a->started_ms == b->started_ms);
    RP_FUZZ_CHECK(json_equal(a->labels, b->labels));
  }
  rp_workload_free(a);
  rp_workload_free(b);
}

int
rp_fuzz_docker_inspect_run(const uint8_t *data, size_t size)
{
  cleanup_json json_t *inspect =
      json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);

  /* What track.c's decoding reads of its provider: the name and, to tell
   * reaper's own container, self_id. */
  static char provider_name[] = PROVIDER_NAME, self_id[] = FULL_ID;
  struct rp_provider p = {.name = provider_name};
  struct rp_docker d = {.p = &p, .self_id = self_id};
  check_digest(&d, data, size);
  if (!inspect)
    return 0;
  check_workload(&d, inspect);

  /* References to other containers are rewritten through this map: the
   * captured one, and the container itself when it names an Id. */
  cleanup_json json_t *id_names =
      json_pack("{s:s, s:s}", FULL_ID, "rpc-full", "34228d9683e2", "rpc-full");
  const char *id = json_string_value(json_object_get(inspect, "Id"));
  if (id) {
    json_object_set_new(id_names, id, json_string("self"));
    if (strlen(id) >= 12) {
      char short_id[13];
      memcpy(short_id, id, 12);
      short_id[12] = '\0';
      json_object_set_new(id_names, short_id, json_string("self"));
    }
  }
  cleanup_json json_t *extra_labels = json_pack("{s:s}", EXTRA_LABEL, FULL_ID);
  struct rp_docker_create_opts opts = {.id_names = id_names,
                                       .extra_labels = extra_labels};
  check_create_body(inspect, NULL, &opts);
  /* The same object as the image's inspect output: its Config is then the
   * image's defaults, all of which the container has. */
  check_create_body(inspect, inspect, &opts);
  opts.image = "reaper-test/sleeper:1";
  check_create_body(inspect, inspect, &opts);

  return 0;
}

#ifndef RP_FUZZ_NO_MAIN
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return rp_fuzz_docker_inspect_run(data, size);
}
#endif
