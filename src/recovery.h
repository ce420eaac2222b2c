/* Crash recovery, the core's part: which recycles the audit log says began
 * and never ended.  The providers put the engines right (their `recover`
 * operation); the recycler writes what they did as recycle.recovered. */
#ifndef RP_RECOVERY_H
#define RP_RECOVERY_H

#include <jansson.h>

#include "error.h"

/* Reads the audit log at path and returns (new reference in *out) an object
 * mapping each provider name to an array of the recycle.begin lines (as
 * parsed objects) that no recycle.done, recycle.failed or
 * recycle.recovered line for the same workload followed, each with the
 * steps its recycle.step lines announced ("steps": their names, in order)
 * and the last replacement they named ("replacement_id").  A missing log
 * gives an empty object.  Lines that do not parse are skipped (verify is the
 * judge of the chain). */
int rp_recovery_scan(const char *path, json_t **out, struct rp_error **err);

/* The same read, which also gathers (when images is not NULL: a new array
 * in *images) the image.seen and image.quarantined lines in the log's order,
 * for content.c: one pass over the log for both. */
int rp_recovery_scan_images(const char *path, json_t **out, json_t **images,
                            struct rp_error **err);

#endif
