/* rp_docker_create_body(): the body that recreates a container, built from
 * inspect output captured from a real dockerd 20.10 (the JSON files under
 * data/docker/, made and proved on the engine by check-bodies.sh there).
 * One test per failure container updaters have shipped, plus a full round
 * trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker/docker.h"
#include "error.h"
#include "util.h"

/* IDs of the captured containers that others refer to. */
#define FULL_ID                                                                \
  "34228d9683e296177ae536be9096fc084abfe104333aced2e53570bbef64014f"
#define SLEEPER_ID                                                             \
  "sha256:9b9e706b42ad701d01f666179fe875a5c69eeaca81b880360a8129dfa625258a"
#define RICH_ID                                                                \
  "sha256:5be99fa6d4f93d699909cde804f8bb7c6f4ec56fe3f5131eeff3668de0d14a91"

static json_t *
load(const char *name)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/docker/%s.json", TEST_DATA_DIR, name);
  json_error_t jerr;
  json_t *j = json_load_file(path, 0, &jerr);
  if (!j)
    fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
  return j;
}

static json_t *
parse(const char *text)
{
  json_error_t jerr;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
  if (!j)
    fail_msg("bad expected JSON: %s: %s", jerr.text, text);
  return j;
}

/* Fails with both values printed unless actual equals the JSON text. */
static void
assert_json(const json_t *actual, const char *expected_text)
{
  cleanup_json json_t *expected = parse(expected_text);
  if (actual && json_equal(actual, expected))
    return;
  cleanup_free char *a =
      actual ? json_dumps(actual, JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
  cleanup_free char *e = json_dumps(expected, JSON_SORT_KEYS | JSON_ENCODE_ANY);
  fail_msg("expected %s\n     got %s", e, a ? a : "(missing)");
}

static json_t *
id_names(void)
{
  return parse("{\"" FULL_ID "\": \"/rpc-full\", \"34228d9683e2\": "
               "\"/rpc-full\"}");
}

/* The body and extra networks for `inspect`, which must succeed. */
static void
build(const json_t *inspect, const char *image_name,
      const struct rp_docker_create_opts *opts, json_t **body, json_t **extra)
{
  cleanup_json json_t *image = image_name ? load(image_name) : NULL;
  struct rp_error *err = NULL;
  int rc = rp_docker_create_body(inspect, image, opts, body, extra, &err);
  if (rc != 0)
    fail_msg("create body: %s", err ? err->message : "(no error)");
  assert_null(err);
  assert_non_null(*body);
  assert_non_null(*extra);
  assert_true(json_is_array(*extra));
}

static json_t *
endpoints(const json_t *body)
{
  return json_object_get(json_object_get(body, "NetworkingConfig"),
                         "EndpointsConfig");
}

static json_t *
hc(const json_t *body)
{
  return json_object_get(body, "HostConfig");
}

/* Every copied value is the inspected one, nothing runtime-only reaches
 * the body, and the body does not share memory with inspect. */
static void
test_full_round_trip(void **state)
{
  cleanup_json json_t *inspect = load("full");
  cleanup_json json_t *names = id_names();
  cleanup_json json_t *extra_labels =
      parse("{\"reaper.replaces\": \"" FULL_ID "\"}");
  struct rp_docker_create_opts opts = {.id_names = names,
                                       .extra_labels = extra_labels};
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(inspect, "image-sleeper", &opts, &body, &extra);

  /* Exactly these members: no Id, State, Created, Path, Args, Name,
   * *Path, Driver, MountLabel, ProcessLabel, AppArmorProfile, ExecIDs,
   * GraphDriver, SizeRw, Mounts, NetworkSettings, OnBuild, Config.Image. */
  static const char *const want[] = {
      "AttachStderr",     "AttachStdin", "AttachStdout", "Cmd",
      "Domainname",       "Env",         "ExposedPorts", "Healthcheck",
      "HostConfig",       "Hostname",    "Image",        "Labels",
      "NetworkingConfig", "OpenStdin",   "StdinOnce",    "StopSignal",
      "StopTimeout",      "Tty",         "User",         "Volumes",
      "WorkingDir",
  };
  assert_int_equal(json_object_size(body), RP_ARRAY_LEN(want));
  for (size_t i = 0; i < RP_ARRAY_LEN(want); i++)
    if (!json_object_get(body, want[i]))
      fail_msg("body lacks %s", want[i]);

  json_t *config = json_object_get(inspect, "Config");
  static const char *const same[] = {
      "AttachStderr", "AttachStdin",  "AttachStdout", "Cmd",      "Domainname",
      "Env",          "ExposedPorts", "Healthcheck",  "Hostname", "OpenStdin",
      "StdinOnce",    "StopSignal",   "StopTimeout",  "Tty",      "User",
      "Volumes",      "WorkingDir",
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(same); i++)
    if (!json_equal(json_object_get(body, same[i]),
                    json_object_get(config, same[i])))
      fail_msg("%s differs from the inspected one", same[i]);
  assert_json(json_object_get(body, "Image"), "\"" SLEEPER_ID "\"");
  assert_json(json_object_get(body, "Cmd"), "[\"/bin/sleep\", \"7200\"]");
  assert_json(json_object_get(body, "Env"),
              "[\"FOO=bar\", \"EMPTY=\", \"PATH=/usr/local/sbin:/usr/local/"
              "bin:/usr/sbin:/usr/bin:/sbin:/bin\"]");
  assert_json(json_object_get(body, "Healthcheck"),
              "{\"Test\": [\"CMD-SHELL\", \"/bin/true\"], \"Interval\": "
              "5000000000, \"Retries\": 3}");
  assert_json(json_object_get(body, "Labels"),
              "{\"com.docker.compose.project\": \"demo\", "
              "\"com.docker.compose.service\": \"web\", \"tier\": \"web\", "
              "\"reaper.replaces\": \"" FULL_ID "\"}");

  /* All of HostConfig: nothing in it needs rewriting. */
  assert_true(json_equal(hc(body), json_object_get(inspect, "HostConfig")));
  assert_json(json_object_get(hc(body), "RestartPolicy"),
              "{\"Name\": \"unless-stopped\", \"MaximumRetryCount\": 0}");
  assert_json(json_object_get(hc(body), "Ulimits"),
              "[{\"Name\": \"nofile\", \"Hard\": 2048, \"Soft\": 1024}]");
  assert_json(json_object_get(hc(body), "LogConfig"),
              "{\"Type\": \"json-file\", \"Config\": {\"max-file\": \"2\", "
              "\"max-size\": \"1m\"}}");

  assert_json(json_object_get(body, "NetworkingConfig"),
              "{\"EndpointsConfig\": {\"rpc-n1\": {"
              "\"IPAMConfig\": {\"IPv4Address\": \"10.231.1.10\", "
              "\"IPv6Address\": \"fd00:231:1::10\"}, "
              "\"Aliases\": [\"web\", \"www\", \"web01\"]}}}");
  assert_json(extra, "[{\"name\": \"rpc-n2\", \"config\": {"
                     "\"IPAMConfig\": {\"IPv4Address\": \"10.231.2.10\"}, "
                     "\"Aliases\": [\"web2\", \"web01\"]}}]");

  /* Owned copies: emptying inspect leaves the body whole. */
  cleanup_json json_t *fresh = load("full");
  json_object_clear(inspect);
  assert_true(json_equal(hc(body), json_object_get(fresh, "HostConfig")));
}

/* Regression 1: static IPs and extra networks dropped. */
static void
test_static_ips_and_extra_networks(void **state)
{
  cleanup_json json_t *inspect = load("full");
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;

  /* The primary network is the one NetworkMode names... */
  json_object_set_new(json_object_get(inspect, "HostConfig"), "NetworkMode",
                      json_string("rpc-n2"));
  build(inspect, "image-sleeper", NULL, &body, &extra);
  assert_json(endpoints(body),
              "{\"rpc-n2\": {\"IPAMConfig\": {\"IPv4Address\": "
              "\"10.231.2.10\"}, \"Aliases\": [\"web2\", \"web01\"]}}");
  assert_json(extra, "[{\"name\": \"rpc-n1\", \"config\": {"
                     "\"IPAMConfig\": {\"IPv4Address\": \"10.231.1.10\", "
                     "\"IPv6Address\": \"fd00:231:1::10\"}, "
                     "\"Aliases\": [\"web\", \"www\", \"web01\"]}}]");
  json_decref(body);
  json_decref(extra);

  /* ...else the first by name, whatever order inspect lists them in. */
  json_object_set_new(json_object_get(inspect, "HostConfig"), "NetworkMode",
                      json_string("default"));
  json_t *nets =
      json_object_get(json_object_get(inspect, "NetworkSettings"), "Networks");
  json_t *n1 = json_incref(json_object_get(nets, "rpc-n1"));
  json_object_del(nets, "rpc-n1");
  json_object_set_new(nets, "rpc-n1", n1);
  build(inspect, "image-sleeper", NULL, &body, &extra);
  assert_non_null(json_object_get(endpoints(body), "rpc-n1"));
  assert_int_equal(json_object_size(endpoints(body)), 1);
  assert_int_equal(json_array_size(extra), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(extra, 0), "name")),
      "rpc-n2");
  json_decref(body);
  json_decref(extra);

  /* An empty IPAMConfig ({} when connected without a static IP) is no
   * static address. */
  cleanup_json json_t *mac = load("mac");
  build(mac, "image-sleeper", NULL, &body, &extra);
  assert_json(extra, "[{\"name\": \"rpc-n2\", \"config\": {}}]");
}

/* Regression 2: the old short-ID alias copied, aliases where the engine
 * refuses them. */
static void
test_aliases(void **state)
{
  cleanup_json json_t *anon = load("anon");
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(anon, "image-sleeper", NULL, &body, &extra);
  /* Aliases was ["9e1301243087"], the old short ID alone. */
  assert_json(endpoints(body), "{\"rpc-n1\": {}}");
  json_decref(body);
  json_decref(extra);

  /* On the default bridge, none at all (20.10 shows none; newer engines
   * and hand-made inspect output may). */
  cleanup_json json_t *onbridge = load("onbridge");
  json_t *bridge = json_object_get(
      json_object_get(json_object_get(onbridge, "NetworkSettings"), "Networks"),
      "bridge");
  json_object_set_new(bridge, "Aliases",
                      parse("[\"db-alias\", \"6dbd1687869c\"]"));
  build(onbridge, "image-sleeper", NULL, &body, &extra);
  assert_json(endpoints(body), "{\"bridge\": {}}");
  assert_json(extra, "[{\"name\": \"rpc-n3\", \"config\": "
                     "{\"Aliases\": [\"extra\"]}}]");
  json_decref(body);
  json_decref(extra);

  cleanup_json json_t *hostnet = load("hostnet");
  json_object_set_new(
      json_object_get(
          json_object_get(json_object_get(hostnet, "NetworkSettings"),
                          "Networks"),
          "host"),
      "Aliases", parse("[\"h\"]"));
  build(hostnet, "image-sleeper", NULL, &body, &extra);
  assert_json(endpoints(body), "{\"host\": {}}");
  assert_json(extra, "[]");
}

/* Regression 3: a runtime MAC address copied, so old and new clash. */
static void
test_mac_address(void **state)
{
  cleanup_json json_t *anon = load("anon");
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(anon, "image-sleeper", NULL, &body, &extra);
  assert_null(json_object_get(body, "MacAddress"));
  /* The endpoint had the runtime 02:42:0a:e7:01:02. */
  assert_json(endpoints(body), "{\"rpc-n1\": {}}");
  json_decref(body);
  json_decref(extra);

  /* A configured one: kept, for the primary network only, where API 1.41
   * takes it (Config.MacAddress: the endpoint's is discarded below 1.44). */
  cleanup_json json_t *mac = load("mac");
  build(mac, "image-sleeper", NULL, &body, &extra);
  assert_json(json_object_get(body, "MacAddress"), "\"02:00:00:aa:bb:cc\"");
  assert_json(endpoints(body), "{\"rpc-n1\": {\"Aliases\": [\"macalias\"]}}");
  assert_json(extra, "[{\"name\": \"rpc-n2\", \"config\": {}}]");
  json_decref(body);
  json_decref(extra);

  /* The engine refuses a MAC address with host networking. */
  cleanup_json json_t *hostnet = load("hostnet");
  json_object_set_new(json_object_get(hostnet, "Config"), "MacAddress",
                      json_string("02:00:00:aa:bb:cc"));
  build(hostnet, "image-sleeper", NULL, &body, &extra);
  assert_null(json_object_get(body, "MacAddress"));
}

static const struct rp_dockerapi_version *
api(int minor)
{
  const struct rp_dockerapi_version *v =
      rp_dockerapi_version(RP_DOCKERAPI_V(1, minor));
  assert_non_null(v);
  return v;
}

/* API 1.44, from Engine 25 (v1.44-mac.json: inspect in 1.44's shape, with
 * DNSNames, and the short ID and hostname among the aliases): every network
 * at create, the configured MAC in the main network's endpoint and not in
 * Config, the aliases the engine added dropped, DNSNames never sent. */
static void
test_version_1_44(void **state)
{
  cleanup_json json_t *inspect = load("v1.44-mac");
  struct rp_docker_create_opts opts = {.version = api(44),
                                       .hostname_alias_added = true};
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(inspect, "image-sleeper", &opts, &body, &extra);
  assert_null(json_object_get(body, "MacAddress"));
  assert_json(endpoints(body),
              "{\"rpc-n1\": {\"Aliases\": [\"macalias\"], "
              "\"MacAddress\": \"02:00:00:aa:bb:cc\"}, \"rpc-n2\": {}}");
  assert_json(extra, "[]");
  assert_json(json_object_get(body, "Hostname"), "\"mac-host\"");
}

/* API 1.48, from Engine 28: a network's gateway priority is kept (below
 * 1.48 create would reset it to 0, so it is not sent). */
static void
test_version_1_48(void **state)
{
  cleanup_json json_t *inspect = load("v1.48-mac");
  struct rp_docker_create_opts opts = {.version = api(48)};
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(inspect, "image-sleeper", &opts, &body, &extra);
  assert_json(endpoints(body), "{\"rpc-n1\": {\"Aliases\": [\"macalias\"], "
                               "\"MacAddress\": \"02:00:00:aa:bb:cc\"}, "
                               "\"rpc-n2\": {\"GwPriority\": 10}}");
  json_decref(body);
  json_decref(extra);
  opts.version = api(47);
  build(inspect, "image-sleeper", &opts, &body, &extra);
  assert_json(json_object_get(endpoints(body), "rpc-n2"), "{}");
}

/* API 1.52, from Engine 29: inspect no longer shows Config.MacAddress nor
 * the top-level NetworkSettings addresses; the configured MAC comes from
 * the caller (read at 1.51) and goes in the endpoint; Config.MacAddress,
 * which 1.52 no longer reads, is never sent. */
static void
test_version_1_52(void **state)
{
  cleanup_json json_t *inspect = load("v1.52-mac");
  assert_null(
      json_object_get(json_object_get(inspect, "Config"), "MacAddress"));
  struct rp_docker_create_opts opts = {.version = api(52),
                                       .configured_mac = "02:00:00:aa:bb:cc"};
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(inspect, "image-sleeper", &opts, &body, &extra);
  assert_null(json_object_get(body, "MacAddress"));
  assert_json(endpoints(body), "{\"rpc-n1\": {\"Aliases\": [\"macalias\"], "
                               "\"MacAddress\": \"02:00:00:aa:bb:cc\"}, "
                               "\"rpc-n2\": {\"GwPriority\": 10}}");
  assert_json(extra, "[]");
  json_decref(body);
  json_decref(extra);

  /* None configured (""): the address in use is not copied. */
  opts.configured_mac = "";
  build(inspect, "image-sleeper", &opts, &body, &extra);
  assert_json(json_object_get(endpoints(body), "rpc-n1"),
              "{\"Aliases\": [\"macalias\"]}");
  json_decref(body);
  json_decref(extra);

  /* The same container at 1.41 (the captured original): one network at
   * create, the other to connect, the MAC as Config.MacAddress. */
  cleanup_json json_t *old = load("mac");
  opts = (struct rp_docker_create_opts){.version = api(41)};
  build(old, "image-sleeper", &opts, &body, &extra);
  assert_json(json_object_get(body, "MacAddress"), "\"02:00:00:aa:bb:cc\"");
  assert_int_equal(json_object_size(endpoints(body)), 1);
  assert_int_equal(json_array_size(extra), 1);
}

/* Podman's inspect: kernel names for ulimits (create wants the docker
 * CLI's), and the old container's hostname in its environment. */
static void
test_podman_quirks(void **state)
{
  cleanup_json json_t *inspect = load("anon");
  json_t *host_config = json_object_get(inspect, "HostConfig");
  json_object_set_new(host_config, "Ulimits",
                      parse("[{\"Name\": \"RLIMIT_NOFILE\", \"Hard\": 4096, "
                            "\"Soft\": 4096}, {\"Name\": \"nproc\", "
                            "\"Hard\": 10, \"Soft\": 5}]"));
  const char *id = json_string_value(json_object_get(inspect, "Id"));
  char hostname_env[32];
  snprintf(hostname_env, sizeof(hostname_env), "HOSTNAME=%.12s", id);
  json_t *env = json_object_get(json_object_get(inspect, "Config"), "Env");
  json_array_append_new(env, json_string(hostname_env));
  json_array_append_new(env, json_string("KEEP=1"));
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(inspect, "image-sleeper", NULL, &body, &extra);
  assert_json(json_object_get(hc(body), "Ulimits"),
              "[{\"Name\": \"nofile\", \"Hard\": 4096, \"Soft\": 4096}, "
              "{\"Name\": \"nproc\", \"Hard\": 10, \"Soft\": 5}]");
  json_t *benv = json_object_get(body, "Env");
  size_t i;
  json_t *v;
  bool keep = false;
  json_array_foreach(benv, i, v)
  {
    assert_string_not_equal(json_string_value(v), hostname_env);
    keep |= strcmp(json_string_value(v), "KEEP=1") == 0;
  }
  assert_true(keep);
}

/* Regression 4: port bindings lose their host IP. */
static void
test_port_bindings(void **state)
{
  cleanup_json json_t *full = load("full");
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(full, "image-sleeper", NULL, &body, &extra);
  assert_json(json_object_get(hc(body), "PortBindings"),
              "{\"8080/tcp\": [{\"HostIp\": \"127.0.0.1\", \"HostPort\": "
              "\"18080\"}], \"8081/udp\": [{\"HostIp\": \"127.0.0.1\", "
              "\"HostPort\": \"18081\"}]}");
  assert_json(json_object_get(body, "ExposedPorts"),
              "{\"8080/tcp\": {}, \"8081/udp\": {}, \"9000/tcp\": {}}");

  assert_string_equal(rp_docker_body_clashes(body, extra),
                      "it publishes host ports");
  json_decref(body);
  json_decref(extra);
  /* -p 8080: the engine picks a free host port, so nothing clashes; the
   * static addresses still do. */
  json_object_set_new(json_object_get(full, "HostConfig"), "PortBindings",
                      parse("{\"8080/tcp\": [{\"HostIp\": \"\", "
                            "\"HostPort\": \"\"}]}"));
  build(full, "image-sleeper", NULL, &body, &extra);
  assert_string_equal(rp_docker_body_clashes(body, extra),
                      "it has a static IP address");
  json_decref(body);
  json_decref(extra);
  cleanup_json json_t *anon = load("anon");
  build(anon, "image-sleeper", NULL, &body, &extra);
  assert_null(rp_docker_body_clashes(body, extra));
  json_decref(body);
  json_decref(extra);
  cleanup_json json_t *mac = load("mac");
  build(mac, "image-sleeper", NULL, &body, &extra);
  assert_string_equal(rp_docker_body_clashes(body, extra),
                      "it has a fixed MAC address");
}

/* An engine that does not tell fixed addresses from assigned ones
 * (Podman): every endpoint keeps the addresses it has, and the MAC goes in
 * the endpoint; start-first then falls back. */
static void
test_keep_addresses_in_use(void **state)
{
  cleanup_json json_t *anon = load("anon");
  struct rp_docker_create_opts opts = {.keep_addresses_in_use = true,
                                       .endpoint_mac_always = true,
                                       .configured_mac = "02:42:0a:e7:01:02"};
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(anon, "image-sleeper", &opts, &body, &extra);
  json_t *es = json_object_get(endpoints(body), "rpc-n1");
  assert_non_null(json_string_value(
      json_object_get(json_object_get(es, "IPAMConfig"), "IPv4Address")));
  assert_string_equal(
      json_string_value(
          json_object_get(json_object_get(es, "IPAMConfig"), "IPv4Address")),
      json_string_value(json_object_get(
          json_object_get(
              json_object_get(json_object_get(anon, "NetworkSettings"),
                              "Networks"),
              "rpc-n1"),
          "IPAddress")));
  assert_json(json_object_get(es, "MacAddress"), "\"02:42:0a:e7:01:02\"");
  assert_null(json_object_get(body, "MacAddress"));
  assert_string_equal(rp_docker_body_clashes(body, extra),
                      "it has a static IP address");
}

/* Regression 5: anonymous volumes replaced by new empty ones. */
static void
test_anonymous_volumes(void **state)
{
  cleanup_json json_t *anon = load("anon");
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(anon, "image-sleeper", NULL, &body, &extra);
  assert_json(
      json_object_get(hc(body), "Mounts"),
      "[{\"Type\": \"volume\", \"Source\": "
      "\"342a094c8a36b0d46d1e25d35802c67ec1ff1618936fcc6d79ed90a87218e9b5"
      "\", \"Target\": \"/data\"}]");
  assert_json(json_object_get(hc(body), "Binds"), "null");
  json_decref(body);
  json_decref(extra);

  /* --mount type=volume,target=/scratch gets its volume's name; -v /extra
   * is re-attached; the named volume at the image's /data stays alone. */
  cleanup_json json_t *mountvol = load("mountvol");
  build(mountvol, "image-sleeper", NULL, &body, &extra);
  assert_json(
      json_object_get(hc(body), "Mounts"),
      "[{\"Type\": \"volume\", \"Source\": \"rpc-mvol\", \"Target\": "
      "\"/data\"}, {\"Type\": \"volume\", \"Source\": "
      "\"eab85973b4fdb73ff4dcc0b8c950dd3fd65ab4ea2edd12b71c863d98a90e2d42\", "
      "\"Target\": \"/scratch\"}, {\"Type\": \"volume\", \"Source\": "
      "\"1de6eda8eedd7c892750c71d2586b6829cb70574ea1a7895b8f4d8c186d13d02\", "
      "\"Target\": \"/extra\"}]");
  json_decref(body);
  json_decref(extra);

  /* A read-only one stays read-only. */
  json_object_set_new(json_array_get(json_object_get(anon, "Mounts"), 0), "RW",
                      json_false());
  build(anon, "image-sleeper", NULL, &body, &extra);
  assert_json(
      json_object_get(json_array_get(json_object_get(hc(body), "Mounts"), 0),
                      "ReadOnly"),
      "true");
  json_decref(body);
  json_decref(extra);

  /* An anonymous volume the container did not declare came from
   * VolumesFrom, which brings it again. */
  json_object_set_new(json_object_get(anon, "Config"), "Volumes",
                      json_object());
  build(anon, "image-sleeper", NULL, &body, &extra);
  assert_null(json_object_get(hc(body), "Mounts"));
}

/* The destinations every mount of the body claims, each once. */
static void
assert_destinations_unique(const json_t *body, const char *fixture)
{
  cleanup_json json_t *seen = json_object();
  size_t i;
  json_t *v;
  char dest[256];
  json_array_foreach(json_object_get(hc(body), "Binds"), i, v)
  {
    const char *bind = json_string_value(v);
    const char *start = strchr(bind, ':') + 1;
    const char *end = strchr(start, ':');
    snprintf(dest, sizeof(dest), "%.*s",
             (int)(end ? (size_t)(end - start) : strlen(start)), start);
    if (json_object_get(seen, dest))
      fail_msg("%s: %s mounted twice", fixture, dest);
    json_object_set_new(seen, dest, json_true());
  }
  json_array_foreach(json_object_get(hc(body), "Mounts"), i, v)
  {
    const char *target = json_string_value(json_object_get(v, "Target"));
    if (json_object_get(seen, target))
      fail_msg("%s: %s mounted twice", fixture, target);
    json_object_set_new(seen, target, json_true());
  }
  const char *key;
  json_object_foreach(json_object_get(hc(body), "Tmpfs"), key, v)
  {
    if (json_object_get(seen, key))
      fail_msg("%s: %s mounted twice", fixture, key);
    json_object_set_new(seen, key, json_true());
  }
}

/* Regression 6: "duplicate mount point" where a user's volume sits on one
 * the image declares. */
static void
test_no_duplicate_mount(void **state)
{
  cleanup_json json_t *full = load("full");
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  /* rpc-fulldata:/data in Binds on the image's VOLUME /data: only the
   * user's bind mount joins it, no volume at /data. */
  build(full, "image-sleeper", NULL, &body, &extra);
  assert_json(json_object_get(hc(body), "Binds"), "[\"rpc-fulldata:/data\"]");
  assert_int_equal(json_array_size(json_object_get(hc(body), "Mounts")), 1);
  assert_json(
      json_object_get(json_array_get(json_object_get(hc(body), "Mounts"), 0),
                      "Target"),
      "\"/bind\"");
  json_decref(body);
  json_decref(extra);

  static const char *const fixtures[] = {
      "full",    "anon",  "mac",     "linked",   "netcont", "mountvol",
      "hostnet", "nonet", "richdef", "richover", "noentry", "onbridge",
  };
  for (size_t i = 0; i < RP_ARRAY_LEN(fixtures); i++) {
    cleanup_json json_t *inspect = load(fixtures[i]);
    build(inspect, NULL, NULL, &body, &extra);
    assert_destinations_unique(body, fixtures[i]);
    json_decref(body);
    json_decref(extra);
  }

  /* A tmpfs, or a bind written with a trailing slash, on the anonymous
   * volume's destination: the user's wins. */
  cleanup_json json_t *anon = load("anon");
  json_object_set_new(json_object_get(anon, "HostConfig"), "Tmpfs",
                      parse("{\"/data\": \"\"}"));
  build(anon, "image-sleeper", NULL, &body, &extra);
  assert_null(json_object_get(hc(body), "Mounts"));
  json_decref(body);
  json_decref(extra);
  json_object_del(json_object_get(anon, "HostConfig"), "Tmpfs");
  json_object_set_new(json_object_get(anon, "HostConfig"), "Binds",
                      parse("[\"/srv/x:/data/:ro\"]"));
  build(anon, "image-sleeper", NULL, &body, &extra);
  assert_null(json_object_get(hc(body), "Mounts"));
}

/* Regression 7: network mode container:<id> and links by ID or old name. */
static void
test_container_references(void **state)
{
  cleanup_json json_t *names = id_names();
  struct rp_docker_create_opts opts = {.id_names = names};
  cleanup_json json_t *netcont = load("netcont");
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(netcont, "image-sleeper", &opts, &body, &extra);
  assert_json(json_object_get(hc(body), "NetworkMode"),
              "\"container:rpc-full\"");
  assert_json(json_object_get(hc(body), "PidMode"), "\"container:rpc-full\"");
  /* rpc-full's hostname and domain: the engine refuses them here. */
  assert_null(json_object_get(body, "Hostname"));
  assert_null(json_object_get(body, "Domainname"));
  assert_null(json_object_get(body, "NetworkingConfig"));
  assert_json(extra, "[]");
  json_decref(body);
  json_decref(extra);

  /* A short ID resolves too; an ID the map does not know stays. */
  json_object_set_new(json_object_get(netcont, "HostConfig"), "NetworkMode",
                      json_string("container:34228d9683e2"));
  json_object_set_new(json_object_get(netcont, "HostConfig"), "IpcMode",
                      json_string("container:0123456789ab"));
  build(netcont, "image-sleeper", &opts, &body, &extra);
  assert_json(json_object_get(hc(body), "NetworkMode"),
              "\"container:rpc-full\"");
  assert_json(json_object_get(hc(body), "IpcMode"),
              "\"container:0123456789ab\"");
  json_decref(body);
  json_decref(extra);

  /* Legacy links: "/rpc-db:/rpc-onbridge/database" -> "rpc-db:database". */
  cleanup_json json_t *onbridge = load("onbridge");
  build(onbridge, "image-sleeper", &opts, &body, &extra);
  assert_json(json_object_get(hc(body), "Links"), "[\"rpc-db:database\"]");
  json_decref(body);
  json_decref(extra);

  /* Links on a user network, by name or by ID; VolumesFrom by ID. */
  cleanup_json json_t *linked = load("linked");
  build(linked, "image-sleeper", &opts, &body, &extra);
  assert_json(endpoints(body), "{\"rpc-n1\": {\"Links\": [\"rpc-full:db\"]}}");
  json_decref(body);
  json_decref(extra);
  json_t *linked_hc = json_object_get(linked, "HostConfig");
  json_object_set_new(linked_hc, "Links",
                      parse("[\"/" FULL_ID ":/rpc-linked/other\"]"));
  json_object_set_new(linked_hc, "VolumesFrom",
                      parse("[\"" FULL_ID ":ro\", \"keep\"]"));
  json_object_set_new(
      json_object_get(
          json_object_get(json_object_get(linked, "NetworkSettings"),
                          "Networks"),
          "rpc-n1"),
      "Links", parse("[\"" FULL_ID ":db\"]"));
  build(linked, "image-sleeper", &opts, &body, &extra);
  assert_json(json_object_get(hc(body), "Links"), "[\"rpc-full:other\"]");
  assert_json(json_object_get(hc(body), "VolumesFrom"),
              "[\"rpc-full:ro\", \"keep\"]");
  assert_json(endpoints(body), "{\"rpc-n1\": {\"Links\": [\"rpc-full:db\"]}}");
  json_decref(body);
  json_decref(extra);

  /* Without a map, references stay as they were. */
  build(netcont, "image-sleeper", NULL, &body, &extra);
  assert_json(json_object_get(hc(body), "NetworkMode"),
              "\"container:34228d9683e2\"");
}

/* Regression 8: compose labels lost. */
static void
test_labels(void **state)
{
  cleanup_json json_t *full = load("full");
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(full, "image-sleeper", NULL, &body, &extra);
  assert_json(json_object_get(body, "Labels"),
              "{\"com.docker.compose.project\": \"demo\", "
              "\"com.docker.compose.service\": \"web\", \"tier\": \"web\"}");
  json_decref(body);
  json_decref(extra);

  /* Even from a pulled image, labels equal to the image's stay; extra
   * labels join them and win. */
  cleanup_json json_t *labels =
      parse("{\"reaper.replaces\": \"x\", \"org.example.from\": \"reaper\"}");
  struct rp_docker_create_opts opts = {.image = "reaper-test/rich:2",
                                       .extra_labels = labels};
  cleanup_json json_t *richdef = load("richdef");
  build(richdef, "image-rich", &opts, &body, &extra);
  assert_json(json_object_get(body, "Labels"),
              "{\"org.example.from\": \"reaper\", \"reaper.replaces\": "
              "\"x\"}");
  json_decref(body);
  json_decref(extra);
  opts.extra_labels = NULL;
  build(richdef, "image-rich", &opts, &body, &extra);
  assert_json(json_object_get(body, "Labels"),
              "{\"org.example.from\": \"image\"}");
}

/* Regression 9: the old short ID kept as the new container's hostname. */
static void
test_hostname(void **state)
{
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  cleanup_json json_t *anon = load("anon");
  build(anon, "image-sleeper", NULL, &body, &extra);
  assert_null(json_object_get(body, "Hostname"));
  json_decref(body);
  json_decref(extra);

  cleanup_json json_t *full = load("full");
  build(full, "image-sleeper", NULL, &body, &extra);
  assert_json(json_object_get(body, "Hostname"), "\"web01\"");
  assert_json(json_object_get(body, "Domainname"), "\"example.test\"");
  json_decref(body);
  json_decref(extra);

  /* With host networking the hostname is the host's ("vm"), not the
   * container's. */
  cleanup_json json_t *hostnet = load("hostnet");
  build(hostnet, "image-sleeper", NULL, &body, &extra);
  assert_null(json_object_get(body, "Hostname"));
}

/* Regression 10: image defaults.  Same image: kept, exactly.  Another
 * image: left out so the new image's show through, but Cmd stays when
 * the Entrypoint is the user's. */
static void
test_image_defaults(void **state)
{
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  cleanup_json json_t *richdef = load("richdef");
  static const char *const defaults[] = {
      "Entrypoint", "Cmd",     "WorkingDir",   "User",
      "Env",        "Volumes", "ExposedPorts", "Healthcheck",
  };

  struct rp_docker_create_opts same = {.image = RICH_ID};
  build(richdef, "image-rich", &same, &body, &extra);
  assert_json(json_object_get(body, "Image"), "\"" RICH_ID "\"");
  assert_json(json_object_get(body, "Entrypoint"), "[\"/bin/sleep\"]");
  assert_json(json_object_get(body, "Cmd"), "[\"3600\"]");
  assert_json(json_object_get(body, "WorkingDir"), "\"/srv\"");
  assert_json(json_object_get(body, "User"), "\"1000\"");
  assert_json(json_object_get(body, "Volumes"),
              "{\"/cache\": {}, \"/data\": {}}");
  assert_json(json_object_get(body, "ExposedPorts"), "{\"8080/tcp\": {}}");
  for (size_t i = 0; i < RP_ARRAY_LEN(defaults); i++)
    if (!json_object_get(body, defaults[i]))
      fail_msg("same image: %s left out", defaults[i]);
  json_decref(body);
  json_decref(extra);

  struct rp_docker_create_opts pull = {.image = "reaper-test/rich:2"};
  build(richdef, "image-rich", &pull, &body, &extra);
  assert_json(json_object_get(body, "Image"), "\"reaper-test/rich:2\"");
  for (size_t i = 0; i < RP_ARRAY_LEN(defaults); i++)
    if (json_object_get(body, defaults[i]))
      fail_msg("pulled image: %s kept", defaults[i]);
  /* The anonymous volumes' data still follows. */
  assert_int_equal(json_array_size(json_object_get(hc(body), "Mounts")), 2);
  json_decref(body);
  json_decref(extra);

  /* Without the image's inspect output nothing can be compared: all
   * kept. */
  build(richdef, NULL, &pull, &body, &extra);
  for (size_t i = 0; i < RP_ARRAY_LEN(defaults); i++)
    if (!json_object_get(body, defaults[i]))
      fail_msg("no image: %s left out", defaults[i]);
  json_decref(body);
  json_decref(extra);

  /* A published port stays exposed even where the image exposes it. */
  json_object_set_new(json_object_get(richdef, "HostConfig"), "PortBindings",
                      parse("{\"8080/tcp\": [{\"HostIp\": \"\", "
                            "\"HostPort\": \"18085\"}]}"));
  build(richdef, "image-rich", &pull, &body, &extra);
  assert_json(json_object_get(body, "ExposedPorts"), "{\"8080/tcp\": {}}");
  json_decref(body);
  json_decref(extra);

  /* The user's own Entrypoint keeps Cmd ["3600"] although it is the
   * image's; what the user set stays, the image's Env entries go. */
  cleanup_json json_t *richover = load("richover");
  build(richover, "image-rich", &pull, &body, &extra);
  assert_json(json_object_get(body, "Entrypoint"),
              "[\"/bin/busybox\", \"sleep\"]");
  assert_json(json_object_get(body, "Cmd"), "[\"3600\"]");
  assert_json(json_object_get(body, "Env"), "[\"A=9\"]");
  assert_json(json_object_get(body, "WorkingDir"), "\"/tmp\"");
  assert_json(json_object_get(body, "User"), "\"0\"");
  assert_null(json_object_get(body, "Healthcheck"));
}

/* The image's Entrypoint cleared by the user (inspect: null) must not come
 * back from the image. */
static void
test_entrypoint_cleared(void **state)
{
  cleanup_json json_t *noentry = load("noentry");
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  build(noentry, "image-rich", NULL, &body, &extra);
  assert_json(json_object_get(body, "Entrypoint"), "[\"\"]");
  assert_json(json_object_get(body, "Cmd"), "[\"/bin/sleep\", \"3600\"]");
  json_decref(body);
  json_decref(extra);

  struct rp_docker_create_opts pull = {.image = "reaper-test/rich:2"};
  build(noentry, "image-rich", &pull, &body, &extra);
  assert_json(json_object_get(body, "Entrypoint"), "[\"\"]");
  assert_json(json_object_get(body, "Cmd"), "[\"/bin/sleep\", \"3600\"]");
  json_decref(body);
  json_decref(extra);

  /* An image without an Entrypoint needs nothing cleared. */
  cleanup_json json_t *anon = load("anon");
  build(anon, "image-sleeper", NULL, &body, &extra);
  assert_null(json_object_get(body, "Entrypoint"));
  json_decref(body);
  json_decref(extra);

  /* Without the image's inspect output, clearing is the safe side: null in
   * inspect means the container ran without one. */
  build(anon, NULL, NULL, &body, &extra);
  assert_json(json_object_get(body, "Entrypoint"), "[\"\"]");
}

/* Networks that need no endpoint of their own still name themselves. */
static void
test_host_and_none(void **state)
{
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  cleanup_json json_t *nonet = load("nonet");
  build(nonet, "image-sleeper", NULL, &body, &extra);
  assert_json(json_object_get(hc(body), "NetworkMode"), "\"none\"");
  assert_json(endpoints(body), "{\"none\": {}}");
  assert_json(extra, "[]");
}

static void
expect_error(const json_t *inspect, const char *fragment)
{
  json_t *body = NULL;
  json_t *extra = NULL;
  cleanup_error struct rp_error *err = NULL;
  assert_int_equal(
      rp_docker_create_body(inspect, NULL, NULL, &body, &extra, &err), -1);
  assert_null(body);
  assert_null(extra);
  assert_non_null(err);
  assert_int_equal(err->code, RP_EPROTO);
  if (!strstr(err->message, fragment))
    fail_msg("error \"%s\" does not say \"%s\"", err->message, fragment);
}

static void
test_errors(void **state)
{
  cleanup_json json_t *anon = load("anon");
  json_object_del(anon, "Config");
  expect_error(anon, "inspect of 9e1301243087 has no Config");
  json_decref(anon);
  anon = load("anon");
  json_object_del(anon, "HostConfig");
  expect_error(anon, "has no HostConfig");
  json_decref(anon);
  anon = load("anon");
  json_object_del(anon, "Image");
  expect_error(anon, "has no Image");
  json_decref(anon);
  anon = load("anon");
  json_object_set_new(anon, "Id", json_string("xyz"));
  expect_error(anon, "no container Id");
  cleanup_json json_t *empty = json_object();
  expect_error(empty, "create body:");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_round_trip),
      cmocka_unit_test(test_static_ips_and_extra_networks),
      cmocka_unit_test(test_aliases),
      cmocka_unit_test(test_mac_address),
      cmocka_unit_test(test_version_1_44),
      cmocka_unit_test(test_version_1_48),
      cmocka_unit_test(test_version_1_52),
      cmocka_unit_test(test_podman_quirks),
      cmocka_unit_test(test_keep_addresses_in_use),
      cmocka_unit_test(test_port_bindings),
      cmocka_unit_test(test_anonymous_volumes),
      cmocka_unit_test(test_no_duplicate_mount),
      cmocka_unit_test(test_container_references),
      cmocka_unit_test(test_labels),
      cmocka_unit_test(test_hostname),
      cmocka_unit_test(test_image_defaults),
      cmocka_unit_test(test_entrypoint_cleared),
      cmocka_unit_test(test_host_and_none),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
