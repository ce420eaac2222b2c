/* The listener's bearer token (agent.listen_token_file): read from a file
 * that only reaper's user may read or change, kept as its SHA-256, and
 * compared with an Authorization header in constant time. */
#ifndef RP_BEARER_H
#define RP_BEARER_H

#include <stdbool.h>

#include <openssl/sha.h>

#include "error.h"

struct rp_bearer {
  unsigned char sha[SHA256_DIGEST_LENGTH]; /* of the token */
};

/* Reads path: a secret by file_trust.h's rules, a regular file holding one
 * token of printable ASCII up to 4 KiB (surrounding whitespace trimmed).
 * Only the token's digest is kept; the bytes read are wiped.  Returns 0,
 * or -1 with *err naming the file and the cause. */
int rp_bearer_load(const char *path, struct rp_bearer *out,
                   struct rp_error **err);

/* Whether authorization (an Authorization header's value, or NULL) is
 * "Bearer TOKEN" with this token.  The digests are compared, in constant
 * time, so that neither the token's bytes nor its length leak through
 * timing. */
bool rp_bearer_matches(const struct rp_bearer *b, const char *authorization);

/* Wipes b. */
void rp_bearer_clear(struct rp_bearer *b);

#endif
