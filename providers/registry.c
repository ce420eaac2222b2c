/* The provider registry: the one place that lists the engines by name.  The
 * core looks providers up here and never names an engine itself. */
#include <string.h>

#include "provider.h"

extern const struct rp_provider_ops rp_provider_docker;
extern const struct rp_provider_ops rp_provider_swarm;
extern const struct rp_provider_ops rp_provider_containerd;
extern const struct rp_provider_ops rp_provider_host;

static const struct rp_provider_ops *const registry[] = {
    &rp_provider_docker,
    &rp_provider_swarm,
    &rp_provider_containerd,
    &rp_provider_host,
};

/* Every type the configuration may name, including those whose provider is
 * not built yet (they fail at start with a clear message). */
const char *const rp_provider_types[] = {"docker", "swarm", "containerd",
                                         "host", NULL};

const struct rp_provider_ops *
rp_provider_lookup(const char *type)
{
  for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
    if (strcmp(registry[i]->type, type) == 0)
      return registry[i];
  return NULL;
}
