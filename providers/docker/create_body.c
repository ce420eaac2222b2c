/* inspect output -> the body of POST /containers/create that recreates the
 * container.  Pure: no I/O, so each rule below is unit-tested against
 * inspect output captured from a real dockerd 20.10
 * (tests/unit/data/docker/, where check-bodies.sh also proves the bodies on
 * a real engine).
 *
 * Every rule answers a failure that container updaters have shipped:
 *  - Config: the members a user can set are copied, Image (a name) and
 *    OnBuild are not; the top-level runtime state (Id, Created, State, Path,
 *    Args, the *Path files, Driver, MountLabel, ProcessLabel,
 *    AppArmorProfile, ExecIDs, GraphDriver, SizeRw, NetworkSettings,
 *    Mounts) never reaches the body.  A user's AppArmor profile is in
 *    HostConfig.SecurityOpt, which is copied.
 *  - Hostname: dockerd 20.10 fills an unset hostname with the container's
 *    short ID, so a hostname equal to the old short ID is left out and the
 *    replacement gets its own.  With network mode container:X or host the
 *    hostname is not the container's own (and the engine refuses one with
 *    container:X): left out.
 *  - MacAddress: only the one the user configured for the main network
 *    (inspect's per-network MacAddress is the one in use, generated or not:
 *    copying a generated one makes old and new clash); below API 1.44 as
 *    Config.MacAddress, from 1.44 in the main network's EndpointSettings
 *    (1.52 no longer reads Config.MacAddress at all).
 *  - HostConfig is copied whole (binds, mounts, tmpfs, port bindings with
 *    host IPs, restart policy, resources, ...), with references to other
 *    containers (network/PID/IPC mode container:<id>, Links, VolumesFrom)
 *    rewritten to names through opts->id_names.
 *  - Anonymous volumes (64-hex names, from the image's VOLUME, `-v /dir` or
 *    `--mount type=volume,target=/dir`) are re-attached by name, so the
 *    replacement keeps their data; a destination the user mounted something
 *    on (Binds, Mounts, Tmpfs) is never mounted twice.
 *  - Networks: every one keeps its static IPs (IPAMConfig), aliases, links,
 *    driver options and (from API 1.48) gateway priority; the aliases the
 *    engine adds itself to what inspect shows (the old short ID; the
 *    hostname on Engine 25+ below 1.45) are dropped, and all aliases on
 *    bridge/host/none, where the engine refuses them.  From API 1.44 every
 *    network goes in the body; below, the primary one (HostConfig.NetworkMode,
 *    else the first by name) does and the others are connected after
 *    create.
 *  - Labels are kept exactly (compose's included) plus opts->extra_labels.
 *  - Image defaults: see strip_image_defaults(). */
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "util.h"

/* Config members that describe what the user asked for and that
 * POST /containers/create accepts.  Hostname, MacAddress and Entrypoint
 * have rules of their own below. */
static const char *const config_keys[] = {
    "Domainname",   "User",         "AttachStdin", "AttachStdout",
    "AttachStderr", "ExposedPorts", "Tty",         "OpenStdin",
    "StdinOnce",    "Env",          "Cmd",         "Healthcheck",
    "ArgsEscaped",  "Volumes",      "WorkingDir",  "NetworkDisabled",
    "Labels",       "StopSignal",   "StopTimeout", "Shell",
};

#define SHORT_ID_LEN 12
#define FULL_ID_LEN 64
#define CONTAINER_PREFIX "container:"
#define CONTAINER_PREFIX_LEN (sizeof(CONTAINER_PREFIX) - 1)

static bool
is_hex(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

/* A volume name dockerd generated for an anonymous volume. */
static bool
is_anonymous_volume_name(const char *name)
{
  return name && strlen(name) == FULL_ID_LEN && is_hex(name, FULL_ID_LEN);
}

static const char *
str_member(const json_t *obj, const char *key)
{
  const char *s = json_string_value(json_object_get(obj, key));
  return s ? s : "";
}

/* Unset and JSON null are the same to the engine. */
static bool
same_value(const json_t *a, const json_t *b)
{
  if (json_is_null(a))
    a = NULL;
  if (json_is_null(b))
    b = NULL;
  if (!a || !b)
    return a == b;
  return json_equal(a, b);
}

static bool
is_empty_value(const json_t *v)
{
  return !v || json_is_null(v) || (json_is_array(v) && !json_array_size(v)) ||
         (json_is_object(v) && !json_object_size(v)) ||
         (json_is_string(v) && !*json_string_value(v));
}

/* The name of the container `ref` (an ID, its 12-char prefix or a name)
 * through the id->name map, without the leading "/"; ref itself when the
 * map does not know it (it is then a name already, or an ID the engine will
 * report as missing, which is the truth). */
static char *
container_name(const json_t *id_names, const char *ref)
{
  const char *name = NULL;
  while (*ref == '/')
    ref++;
  if (id_names) {
    name = json_string_value(json_object_get(id_names, ref));
    if (!name && strlen(ref) > SHORT_ID_LEN && is_hex(ref, strlen(ref))) {
      char short_id[SHORT_ID_LEN + 1];
      memcpy(short_id, ref, SHORT_ID_LEN);
      short_id[SHORT_ID_LEN] = '\0';
      name = json_string_value(json_object_get(id_names, short_id));
    }
  }
  if (!name)
    name = ref;
  while (*name == '/')
    name++;
  return rp_xstrdup(name);
}

/* "container:<id>" -> "container:<name>" in HostConfig[key]. */
static void
rewrite_container_mode(json_t *host_config, const char *key,
                       const json_t *id_names)
{
  const char *mode = json_string_value(json_object_get(host_config, key));
  if (!mode || strncmp(mode, CONTAINER_PREFIX, CONTAINER_PREFIX_LEN) != 0)
    return;
  cleanup_free char *name =
      container_name(id_names, mode + CONTAINER_PREFIX_LEN);
  cleanup_free char *value = rp_xasprintf(CONTAINER_PREFIX "%s", name);
  json_object_set_new(host_config, key, json_string(value));
}

/* A legacy link as inspect shows it, "/other:/this/alias", or as create
 * takes it, "other:alias", becomes "other:alias" with other's name. */
static char *
rewrite_link(const char *link, const json_t *id_names)
{
  const char *colon = strchr(link, ':');
  if (!colon)
    return container_name(id_names, link);
  cleanup_free char *target = rp_xstrndup(link, (size_t)(colon - link));
  cleanup_free char *name = container_name(id_names, target);
  const char *alias = strrchr(colon + 1, '/');
  alias = alias ? alias + 1 : colon + 1;
  return rp_xasprintf("%s:%s", name, alias);
}

static json_t *
rewrite_links(const json_t *links, const json_t *id_names)
{
  json_t *out = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(links, i, v)
  {
    const char *link = json_string_value(v);
    if (!link || !*link)
      continue;
    cleanup_free char *rewritten = rewrite_link(link, id_names);
    json_array_append_new(out, json_string(rewritten));
  }
  return out;
}

/* VolumesFrom entries are "<container>[:ro|:rw]". */
static void
rewrite_volumes_from(json_t *host_config, const json_t *id_names)
{
  json_t *from = json_object_get(host_config, "VolumesFrom");
  size_t i;
  json_t *v;
  json_array_foreach(from, i, v)
  {
    const char *entry = json_string_value(v);
    if (!entry)
      continue;
    const char *colon = strchr(entry, ':');
    size_t len = colon ? (size_t)(colon - entry) : strlen(entry);
    cleanup_free char *ref = rp_xstrndup(entry, len);
    cleanup_free char *name = container_name(id_names, ref);
    cleanup_free char *value = rp_xasprintf("%s%s", name, colon ? colon : "");
    json_array_set_new(from, i, json_string(value));
  }
}

/* Mount destinations as the engine compares them: without a trailing "/". */
static char *
clean_destination(const char *d, size_t len)
{
  while (len > 1 && d[len - 1] == '/')
    len--;
  return rp_xstrndup(d, len);
}

/* The destination of a Binds entry "src:dst[:mode]" (or a bare "dst"). */
static char *
bind_destination(const char *bind)
{
  const char *start = strchr(bind, ':');
  start = start ? start + 1 : bind;
  const char *end = strchr(start, ':');
  return clean_destination(start, end ? (size_t)(end - start) : strlen(start));
}

static void
claim(json_t *claimed, const char *dest)
{
  cleanup_free char *d = clean_destination(dest, strlen(dest));
  json_object_set_new(claimed, d, json_true());
}

/* Every destination the user mounted something on, as the keys of an
 * object: binds, --mount mounts and tmpfs mounts. */
static json_t *
claimed_destinations(const json_t *host_config)
{
  json_t *claimed = json_object();
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(host_config, "Binds"), i, v)
  {
    const char *bind = json_string_value(v);
    if (!bind)
      continue;
    cleanup_free char *d = bind_destination(bind);
    json_object_set_new(claimed, d, json_true());
  }
  json_array_foreach(json_object_get(host_config, "Mounts"), i, v)
  {
    const char *target = json_string_value(json_object_get(v, "Target"));
    if (target)
      claim(claimed, target);
  }
  const char *key;
  json_object_foreach(json_object_get(host_config, "Tmpfs"), key, v)
  {
    claim(claimed, key);
  }
  return claimed;
}

/* The anonymous volume inspect's Mounts shows at `dest`, or NULL. */
static const char *
anonymous_volume_at(const json_t *mounts, const char *dest)
{
  size_t i;
  json_t *m;
  json_array_foreach(mounts, i, m)
  {
    const char *type = str_member(m, "Type");
    const char *name = json_string_value(json_object_get(m, "Name"));
    const char *mdest = str_member(m, "Destination");
    cleanup_free char *d = clean_destination(mdest, strlen(mdest));
    if (strcmp(type, "volume") == 0 && is_anonymous_volume_name(name) &&
        strcmp(d, dest) == 0)
      return name;
  }
  return NULL;
}

/* Whether `dest` is one of the volumes the container declared itself
 * (Config.Volumes: the image's VOLUME, or `-v /dir`). */
static bool
declares_volume(json_t *volumes, const char *dest)
{
  const char *key;
  json_t *v;
  json_object_foreach(volumes, key, v)
  {
    cleanup_free char *d = clean_destination(key, strlen(key));
    if (strcmp(d, dest) == 0)
      return true;
  }
  return false;
}

/* Re-attaches the old container's anonymous volumes by name: created again,
 * they would be new and empty, and the data would stay behind in volumes
 * nothing uses.
 *  - A --mount type=volume without a source gets the volume's name.
 *  - A volume the container declared itself becomes a HostConfig.Mounts
 *    entry, unless the user mounted something there: theirs is what ran,
 *    and mounting twice fails with "duplicate mount point".  Anonymous
 *    volumes at other destinations came with VolumesFrom, which brings
 *    them again. */
static void
reattach_anonymous_volumes(const json_t *inspect, json_t *host_config)
{
  json_t *mounts = json_object_get(inspect, "Mounts");
  json_t *volumes =
      json_object_get(json_object_get(inspect, "Config"), "Volumes");
  json_t *hc_mounts = json_object_get(host_config, "Mounts");
  size_t i;
  json_t *m;

  json_array_foreach(hc_mounts, i, m)
  {
    const char *target = str_member(m, "Target");
    if (strcmp(str_member(m, "Type"), "volume") != 0 ||
        *str_member(m, "Source"))
      continue;
    cleanup_free char *d = clean_destination(target, strlen(target));
    const char *name = anonymous_volume_at(mounts, d);
    if (name)
      json_object_set_new(m, "Source", json_string(name));
  }

  cleanup_json json_t *claimed = claimed_destinations(host_config);
  json_array_foreach(mounts, i, m)
  {
    const char *name = json_string_value(json_object_get(m, "Name"));
    const char *dest = str_member(m, "Destination");
    if (strcmp(str_member(m, "Type"), "volume") != 0 ||
        !is_anonymous_volume_name(name) || !*dest)
      continue;
    cleanup_free char *d = clean_destination(dest, strlen(dest));
    if (json_object_get(claimed, d) || !declares_volume(volumes, d))
      continue;
    json_t *mount = json_pack("{s:s, s:s, s:s}", "Type", "volume", "Source",
                              name, "Target", d);
    if (json_is_false(json_object_get(m, "RW")))
      json_object_set_new(mount, "ReadOnly", json_true());
    if (!json_is_array(hc_mounts)) {
      hc_mounts = json_array();
      json_object_set_new(host_config, "Mounts", hc_mounts);
    }
    json_array_append_new(hc_mounts, mount);
    json_object_set_new(claimed, d, json_true());
  }
}

/* Ulimit names as the docker CLI writes them ("nofile"): inspect shows
 * "RLIMIT_NOFILE" on engines that store the kernel's names (podman), and
 * create refuses those ("invalid ulimit type"). */
static void
normalize_ulimits(json_t *host_config)
{
  static const char prefix[] = "RLIMIT_";
  size_t i;
  json_t *u;
  json_array_foreach(json_object_get(host_config, "Ulimits"), i, u)
  {
    const char *name = json_string_value(json_object_get(u, "Name"));
    if (!name || strncmp(name, prefix, sizeof(prefix) - 1) != 0)
      continue;
    cleanup_free char *lower = rp_xstrdup(name + sizeof(prefix) - 1);
    for (char *c = lower; *c; c++)
      *c = (char)((*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c);
    json_object_set_new(u, "Name", json_string(lower));
  }
}

/* HOSTNAME=<the old container's generated hostname> in Config.Env: engines
 * that write the hostname into the environment (podman) would hand the old
 * container's name to the replacement, which gets a hostname of its own.
 * A HOSTNAME the user chose (any other value) stays. */
static void
drop_generated_hostname_env(json_t *body, const char *short_id)
{
  json_t *env = json_object_get(body, "Env");
  cleanup_free char *entry = rp_xasprintf("HOSTNAME=%s", short_id);
  size_t i;
  json_t *v;
  json_array_foreach(env, i, v)
  {
    const char *e = json_string_value(v);
    if (e && strcmp(e, entry) == 0) {
      json_array_remove(env, i);
      return;
    }
  }
}

/* Networks on which the engine refuses user aliases. */
static bool
is_builtin_network(const char *name)
{
  return strcmp(name, "bridge") == 0 || strcmp(name, "host") == 0 ||
         strcmp(name, "none") == 0;
}

/* The EndpointSettings to create or connect with, from the old container's
 * endpoint `es` on network `net`.  mac: the MAC address the user configured
 * for this endpoint (to set here), or NULL; hostname: an alias the engine
 * added itself, or NULL. */
static json_t *
endpoint_config(const char *net, json_t *es, const char *short_id,
                const char *hostname, const char *mac,
                const struct rp_dockerapi_version *api, bool keep_in_use,
                const json_t *id_names)
{
  json_t *out = json_object();

  /* Static addresses: only what the user pinned, never the runtime ones
   * (unless the engine cannot tell them apart: then all are kept). */
  json_t *ipam = json_object_get(es, "IPAMConfig");
  json_t *ipam_out = json_object();
  const char *key;
  json_t *v;
  json_object_foreach(ipam, key, v)
  {
    if (!is_empty_value(v))
      json_object_set_new(ipam_out, key, json_deep_copy(v));
  }
  if (keep_in_use) {
    const char *ip4 = str_member(es, "IPAddress");
    const char *ip6 = str_member(es, "GlobalIPv6Address");
    if (*ip4 && !json_object_get(ipam_out, "IPv4Address"))
      json_object_set_new(ipam_out, "IPv4Address", json_string(ip4));
    if (*ip6 && !json_object_get(ipam_out, "IPv6Address"))
      json_object_set_new(ipam_out, "IPv6Address", json_string(ip6));
  }
  if (json_object_size(ipam_out))
    json_object_set(out, "IPAMConfig", ipam_out);
  json_decref(ipam_out);

  if (!is_builtin_network(net)) {
    json_t *aliases = json_array();
    size_t i;
    json_array_foreach(json_object_get(es, "Aliases"), i, v)
    {
      const char *alias = json_string_value(v);
      /* The engine adds the short ID of whichever container it creates:
       * the old one's would resolve to the replacement under a stale
       * name. */
      if (alias && *alias && strcmp(alias, short_id) != 0 &&
          (!hostname || strcmp(alias, hostname) != 0))
        json_array_append(aliases, v);
    }
    if (json_array_size(aliases))
      json_object_set(out, "Aliases", aliases);
    json_decref(aliases);
  }

  json_t *links = json_object_get(es, "Links");
  if (json_array_size(links)) {
    json_t *rewritten = rewrite_links(links, id_names);
    if (json_array_size(rewritten))
      json_object_set(out, "Links", rewritten);
    json_decref(rewritten);
  }

  json_t *driver_opts = json_object_get(es, "DriverOpts");
  if (json_object_size(driver_opts))
    json_object_set_new(out, "DriverOpts", json_deep_copy(driver_opts));

  json_t *prio = json_object_get(es, "GwPriority");
  if (api->gw_priority && json_integer_value(prio) != 0)
    json_object_set(out, "GwPriority", prio);

  if (mac && *mac)
    json_object_set_new(out, "MacAddress", json_string(mac));
  return out;
}

static json_t *
endpoints_of(const json_t *body)
{
  return json_object_get(
      json_object_get((json_t *)(uintptr_t)body, "NetworkingConfig"),
      "EndpointsConfig");
}

static int
compare_names_cb(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *
rp_docker_primary_network(const json_t *inspect)
{
  json_t *in = (json_t *)(uintptr_t)inspect;
  json_t *nets =
      json_object_get(json_object_get(in, "NetworkSettings"), "Networks");
  const char *mode =
      str_member(json_object_get(in, "HostConfig"), "NetworkMode");
  if (strcmp(mode, "default") == 0 && json_object_get(nets, "bridge"))
    return "bridge";
  if (json_object_get(nets, mode))
    return json_object_iter_key(json_object_iter_at(nets, mode));
  /* The first by name (podman says "bridge" for a user network). */
  const char *first = NULL;
  const char *key;
  json_t *v;
  json_object_foreach(nets, key, v)
  {
    if (!first || strcmp(key, first) < 0)
      first = key;
  }
  return first;
}

/* Fills body.NetworkingConfig with the primary network, and with the others
 * where the version takes them all at create (else *extra gets them),
 * sorted by name so that the order is the same on every run.  mac: the
 * configured MAC of the primary network, set on its endpoint where the
 * version wants it there. */
static void
build_networks(const json_t *inspect, json_t *body, const char *short_id,
               const char *hostname, const char *mac, bool mac_in_endpoint,
               const struct rp_dockerapi_version *api, bool keep_in_use,
               const json_t *id_names, json_t *extra)
{
  json_t *nets =
      json_object_get(json_object_get(inspect, "NetworkSettings"), "Networks");
  const char *mode =
      str_member(json_object_get(inspect, "HostConfig"), "NetworkMode");
  size_t n = json_object_size(nets);
  /* container:X shares X's network stack: it has no endpoints of its own. */
  if (!n || strncmp(mode, CONTAINER_PREFIX, CONTAINER_PREFIX_LEN) == 0)
    return;

  cleanup_free const char **names = rp_xcalloc(n, sizeof(*names));
  size_t count = 0;
  const char *key;
  json_t *v;
  json_object_foreach(nets, key, v)
  {
    names[count++] = key;
  }
  qsort(names, count, sizeof(*names), compare_names_cb);

  const char *primary = rp_docker_primary_network(inspect);

  json_t *endpoints = json_object();
  for (size_t i = 0; i < count; i++) {
    bool is_primary = strcmp(names[i], primary) == 0;
    const char *endpoint_mac = is_primary && mac_in_endpoint ? mac : NULL;
    json_t *cfg =
        endpoint_config(names[i], json_object_get(nets, names[i]), short_id,
                        hostname, endpoint_mac, api, keep_in_use, id_names);
    if (is_primary || api->create_all_endpoints)
      json_object_set_new(endpoints, names[i], cfg);
    else
      json_array_append_new(
          extra, json_pack("{s:s, s:o}", "name", names[i], "config", cfg));
  }
  json_object_set_new(body, "NetworkingConfig",
                      json_pack("{s:o}", "EndpointsConfig", endpoints));
}

/* Leaves out of config[member] (an array or an object) the entries that
 * image_values has too (equal entries, or the same keys), but not keys that
 * `keep` has; drops the member once empty. */
static void
subtract_member(json_t *config, const char *member, const json_t *image_values,
                const json_t *keep)
{
  json_t *v = json_object_get(config, member);
  if (json_is_array(v)) {
    json_t *out = json_array();
    size_t i, j;
    json_t *e, *ie;
    json_array_foreach(v, i, e)
    {
      bool in_image = false;
      json_array_foreach(image_values, j, ie)
      {
        if (json_equal(e, ie))
          in_image = true;
      }
      if (!in_image)
        json_array_append(out, e);
    }
    json_object_set_new(config, member, out);
  } else if (json_is_object(v)) {
    const char *key;
    json_t *e;
    void *tmp;
    json_object_foreach_safe(v, tmp, key, e)
    {
      if (json_object_get(image_values, key) && !json_object_get(keep, key))
        json_object_del(v, key);
    }
  }
  if (is_empty_value(json_object_get(config, member)))
    json_object_del(config, member);
}

/* When the replacement may run another image (opts->image is not the old
 * image ID: a freshly pulled one), the values that merely repeat the OLD
 * image's defaults (image_config: the image the old container ran) are left
 * out, so that the new image's own defaults show through: Entrypoint, then
 * Cmd (only
 * when Entrypoint was left out too: a Cmd is an argument list for its own
 * Entrypoint), WorkingDir, User, Healthcheck, and the Env entries, Volumes
 * and ExposedPorts the image declares (a port the user publishes stays
 * exposed).  Labels are never left out: reaper keeps the old container's
 * labels exactly.  With the same image ID nothing is left out: the values
 * are then the image's own and keeping them is harmless, and exact. */
static void
strip_image_defaults(json_t *body, const json_t *image_config,
                     const json_t *port_bindings)
{
  if (same_value(json_object_get(body, "Entrypoint"),
                 json_object_get(image_config, "Entrypoint"))) {
    json_object_del(body, "Entrypoint");
    if (same_value(json_object_get(body, "Cmd"),
                   json_object_get(image_config, "Cmd")))
      json_object_del(body, "Cmd");
  }
  static const char *const whole[] = {"WorkingDir", "User", "Healthcheck"};
  for (size_t i = 0; i < RP_ARRAY_LEN(whole); i++) {
    if (same_value(json_object_get(body, whole[i]),
                   json_object_get(image_config, whole[i])))
      json_object_del(body, whole[i]);
  }
  subtract_member(body, "Env", json_object_get(image_config, "Env"), NULL);
  subtract_member(body, "Volumes", json_object_get(image_config, "Volumes"),
                  NULL);
  subtract_member(body, "ExposedPorts",
                  json_object_get(image_config, "ExposedPorts"), port_bindings);
}

int
rp_docker_create_body(const json_t *inspect, const json_t *image,
                      const struct rp_docker_create_opts *opts,
                      json_t **body_out, json_t **extra_networks,
                      struct rp_error **err)
{
  static const struct rp_docker_create_opts no_opts;
  if (!opts)
    opts = &no_opts;
  const struct rp_dockerapi_version *api =
      opts->version ? opts->version : rp_dockerapi_version(RP_DOCKERAPI_OLDEST);

  const char *id = json_string_value(json_object_get(inspect, "Id"));
  json_t *config = json_object_get(inspect, "Config");
  json_t *host_config = json_object_get(inspect, "HostConfig");
  const char *image_id = json_string_value(json_object_get(inspect, "Image"));
  if (!id || strlen(id) < SHORT_ID_LEN || !is_hex(id, SHORT_ID_LEN))
    return rp_error_set(err, RP_EPROTO,
                        "create body: inspect has no container Id");
  if (!json_is_object(config) || !json_is_object(host_config))
    return rp_error_set(err, RP_EPROTO,
                        "create body: inspect of %.12s has no %s", id,
                        json_is_object(config) ? "HostConfig" : "Config");
  const char *create_image = opts->image ? opts->image : image_id;
  if (!create_image || !*create_image)
    return rp_error_set(err, RP_EPROTO,
                        "create body: inspect of %.12s has no Image", id);

  char short_id[SHORT_ID_LEN + 1];
  memcpy(short_id, id, SHORT_ID_LEN);
  short_id[SHORT_ID_LEN] = '\0';
  const char *mode = str_member(host_config, "NetworkMode");
  bool shares_net = strncmp(mode, CONTAINER_PREFIX, CONTAINER_PREFIX_LEN) == 0;
  bool host_net = strcmp(mode, "host") == 0;

  cleanup_json json_t *body = json_object();
  json_object_set_new(body, "Image", json_string(create_image));
  for (size_t i = 0; i < RP_ARRAY_LEN(config_keys); i++) {
    json_t *v = json_object_get(config, config_keys[i]);
    if (v && !json_is_null(v))
      json_object_set_new(body, config_keys[i], json_deep_copy(v));
  }

  const char *hostname = str_member(config, "Hostname");
  if (*hostname && strcmp(hostname, short_id) != 0 && !shares_net && !host_net)
    json_object_set_new(body, "Hostname", json_string(hostname));
  if (shares_net) {
    /* The engine refuses these with container:X, whose they are. */
    json_object_del(body, "Domainname");
    json_object_del(body, "ExposedPorts");
  }
  const char *mac = opts->configured_mac ? opts->configured_mac
                                         : str_member(config, "MacAddress");
  bool mac_in_endpoint = api->mac_in_endpoint || opts->endpoint_mac_always;
  if (!*mac || shares_net || host_net)
    mac = NULL;
  else if (!mac_in_endpoint)
    /* Below 1.44 the engine takes it here, for the primary network. */
    json_object_set_new(body, "MacAddress", json_string(mac));

  json_t *image_config = json_object_get(image, "Config");
  json_t *entrypoint = json_object_get(config, "Entrypoint");
  if (!is_empty_value(entrypoint))
    json_object_set_new(body, "Entrypoint", json_deep_copy(entrypoint));
  else if (!image_config ||
           !is_empty_value(json_object_get(image_config, "Entrypoint")))
    /* Inspect shows the entrypoint the container runs with, the image's
     * merged in: null means none, e.g. the user cleared the image's with
     * --entrypoint "", and create would fill it with the image's again.
     * [""] is what the docker CLI sends for it, and what inspect shows as
     * null.  Unneeded (and left out) when the image is known to have
     * none. */
    json_object_set_new(body, "Entrypoint", json_pack("[s]", ""));

  json_t *labels = json_object_get(body, "Labels");
  if (json_object_size(opts->extra_labels)) {
    if (!json_is_object(labels)) {
      labels = json_object();
      json_object_set_new(body, "Labels", labels);
    }
    json_object_update(labels, opts->extra_labels);
  }

  json_t *hc = json_deep_copy(host_config);
  json_object_set_new(body, "HostConfig", hc);
  rewrite_container_mode(hc, "NetworkMode", opts->id_names);
  rewrite_container_mode(hc, "PidMode", opts->id_names);
  rewrite_container_mode(hc, "IpcMode", opts->id_names);
  json_t *links = json_object_get(hc, "Links");
  if (json_is_array(links))
    json_object_set_new(hc, "Links", rewrite_links(links, opts->id_names));
  rewrite_volumes_from(hc, opts->id_names);
  reattach_anonymous_volumes(inspect, hc);
  normalize_ulimits(hc);
  drop_generated_hostname_env(body, short_id);

  /* A reference by name may or may not resolve to the old image: leaving
   * out what equals its defaults is harmless then, and needed otherwise. */
  bool other_image =
      opts->image && (!image_id || strcmp(opts->image, image_id) != 0);
  if (other_image && json_is_object(image_config))
    strip_image_defaults(body, image_config,
                         json_object_get(hc, "PortBindings"));

  cleanup_json json_t *extra = json_array();
  build_networks(inspect, body, short_id,
                 opts->hostname_alias_added ? hostname : NULL, mac,
                 mac_in_endpoint, api, opts->keep_addresses_in_use,
                 opts->id_names, extra);

  *body_out = RP_STEAL(body);
  *extra_networks = RP_STEAL(extra);
  return 0;
}

static bool
endpoint_clashes(json_t *es, const char **why)
{
  json_t *ipam = json_object_get(es, "IPAMConfig");
  if (json_string_length(json_object_get(ipam, "IPv4Address")) ||
      json_string_length(json_object_get(ipam, "IPv6Address"))) {
    *why = "it has a static IP address";
    return true;
  }
  if (json_string_length(json_object_get(es, "MacAddress"))) {
    *why = "it has a fixed MAC address";
    return true;
  }
  return false;
}

const char *
rp_docker_body_clashes(const json_t *body, const json_t *extra)
{
  json_t *bindings =
      json_object_get(json_object_get(body, "HostConfig"), "PortBindings");
  const char *port;
  json_t *list;
  json_object_foreach(bindings, port, list)
  {
    size_t i;
    json_t *b;
    json_array_foreach(list, i, b)
    {
      if (*str_member(b, "HostPort"))
        return "it publishes host ports";
    }
  }
  const char *why = NULL;
  const char *net;
  json_t *es;
  json_object_foreach(endpoints_of(body), net, es)
  {
    if (endpoint_clashes(es, &why))
      return why;
  }
  size_t i;
  json_t *x;
  json_array_foreach(extra, i, x)
  {
    if (endpoint_clashes(json_object_get(x, "config"), &why))
      return why;
  }
  if (json_string_length(json_object_get(body, "MacAddress")))
    return "it has a fixed MAC address";
  return NULL;
}
