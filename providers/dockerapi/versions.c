/* What each Engine API version from 1.41 to 1.52 changes in the calls
 * reaper makes, one row per version.  Sources: ../shared/ENGINE-API-
 * VERSIONS.md, section 1 (line numbers of that file in brackets), read from
 * moby's api/docs/v1.NN.yaml and the routers of the Engine release named.
 * Changes that do not touch reaper's calls are not columns: 1.42's ?signal=
 * on stop (reaper relies on the container's own StopSignal), 1.52's Health
 * in the list and the events' dropped status/id/from (reaper reads Action
 * and Actor.ID, which every version has), 1.50's image Config trimming
 * (reaper compares only the members both shapes have). */
#include "dockerapi.h"

#include <stdio.h>
#include <string.h>

/* clang-format off */
static const struct rp_dockerapi_version versions[] = {
  /*                          all_endpoints mac_in_endpoint gw_priority
   *                                      configured_mac  short_id_alias */
  /* 1.41 (20.10) */
  {RP_DOCKERAPI_V(1, 41), "1.41", false, false, false, true,  true},
  /* 1.42 (23.0): ?signal= on stop, KernelMemory removed [10-12] */
  {RP_DOCKERAPI_V(1, 42), "1.42", false, false, false, true,  true},
  /* 1.43 (24.0): HostConfig.Annotations [17] */
  {RP_DOCKERAPI_V(1, 43), "1.43", false, false, false, true,  true},
  /* 1.44 (25.0): EndpointSettings.MacAddress, several endpoints at
   * create [20-24] */
  {RP_DOCKERAPI_V(1, 44), "1.44", true,  true,  false, true,  true},
  /* 1.45 (26.0): no short-ID alias in inspect [34] */
  {RP_DOCKERAPI_V(1, 45), "1.45", true,  true,  false, true,  false},
  /* 1.46 (27.0), 1.47 (27.2): nothing for these calls [38-42] */
  {RP_DOCKERAPI_V(1, 46), "1.46", true,  true,  false, true,  false},
  {RP_DOCKERAPI_V(1, 47), "1.47", true,  true,  false, true,  false},
  /* 1.48 (28.0): GwPriority at create [46] */
  {RP_DOCKERAPI_V(1, 48), "1.48", true,  true,  true,  true,  false},
  /* 1.49 (28.1), 1.50 (28.2), 1.51 (28.3) [50-56] */
  {RP_DOCKERAPI_V(1, 49), "1.49", true,  true,  true,  true,  false},
  {RP_DOCKERAPI_V(1, 50), "1.50", true,  true,  true,  true,  false},
  {RP_DOCKERAPI_V(1, 51), "1.51", true,  true,  true,  true,  false},
  /* 1.52 (29.0): Config.MacAddress neither read at create nor shown by
   * inspect [60, 65] */
  {RP_DOCKERAPI_V(1, 52), "1.52", true,  true,  true,  false, false},
};
/* clang-format on */

const struct rp_dockerapi_version *
rp_dockerapi_version(int number)
{
  for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
    if (versions[i].number == number)
      return &versions[i];
  return NULL;
}

int
rp_dockerapi_parse_version(const char *s, int *out)
{
  int major, minor, end = 0;
  if (!s || sscanf(s, "%d.%d%n", &major, &minor, &end) != 2 || s[end] != '\0' ||
      major < 0 || minor < 0 || minor > 999 || major > 99)
    return -1;
  *out = RP_DOCKERAPI_V(major, minor);
  return 0;
}

bool
rp_dockerapi_pin_valid(const char *s, char *why, size_t why_len)
{
  int v;
  if (rp_dockerapi_parse_version(s, &v) < 0) {
    if (why)
      snprintf(why, why_len,
               "'%s' is not an API version (MAJOR.MINOR, e.g. "
               "1.44)",
               s ? s : "");
    return false;
  }
  if (!rp_dockerapi_version(v)) {
    if (why)
      snprintf(why, why_len, "API %s is not one reaper speaks (1.41 to 1.52)",
               s);
    return false;
  }
  return true;
}

const struct rp_provider_option rp_dockerapi_options[] = {
    {.key = "api_version", .type = RP_OPTION_STRING},
    {.key = NULL},
};

bool
rp_dockerapi_option_valid(const char *key, const json_t *value, char *why,
                          size_t why_len)
{
  if (strcmp(key, "api_version") == 0)
    return rp_dockerapi_pin_valid(json_string_value(value), why, why_len);
  return true;
}
