/* The fuzz targets' entry points.  Each fuzz_<target>.c defines
 * rp_fuzz_<target>_run() and, unless RP_FUZZ_NO_MAIN is defined, the
 * libFuzzer entry point that calls it; test_fuzz_regressions.c includes
 * them all with RP_FUZZ_NO_MAIN to run saved inputs under ctest.
 *
 * A run returns 0 and aborts on a violated property: libFuzzer and the
 * sanitizers report crashes, so a broken promise must be one too. */
#ifndef RP_FUZZ_H
#define RP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* rp_config_parse on the bytes. */
int rp_fuzz_config_run(const uint8_t *data, size_t size);
/* rp_audit_line_parse on the bytes; rp_audit_verify and rp_audit_read on a
 * file holding them, as they are and with their hashes made consistent;
 * rp_audit_open reopening the consistent file and appending to it. */
int rp_fuzz_audit_verify_run(const uint8_t *data, size_t size);
/* The docker provider's decoding of inspect output. */
int rp_fuzz_docker_inspect_run(const uint8_t *data, size_t size);
/* Stepping over JSON (json_scan.h) against jansson: skip, members, the
 * list splitter fed in chunks the input chooses. */
int rp_fuzz_json_scan_run(const uint8_t *data, size_t size);
/* The /events line splitter, fed in chunks the input chooses. */
int rp_fuzz_event_lines_run(const uint8_t *data, size_t size);
/* rp_parse_time_ms and rp_duration_parse. */
int rp_fuzz_time_run(const uint8_t *data, size_t size);
/* rp_image_ref_parse and the canonical form's round trip. */
int rp_fuzz_image_ref_run(const uint8_t *data, size_t size);
/* A registry's answers and config.json: challenges, tokens, realm URLs,
 * indexes, manifests, credentials. */
int rp_fuzz_registry_answers_run(const uint8_t *data, size_t size);

#define RP_FUZZ_CHECK(cond)                                                    \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__,    \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#endif
