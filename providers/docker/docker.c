/* The docker provider's table of functions.  Filled in as the provider
 * grows; see docker.h for how its files divide the work. */
#include "docker.h"

const struct rp_provider_ops rp_provider_docker = {
    .type = "docker",
};
