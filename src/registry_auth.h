/* Registry credentials as the docker CLI reads them, and the pieces of the
 * distribution protocol's authentication: WWW-Authenticate challenges and
 * token answers.  Pure, but for rp_registry_auth_load which reads one small
 * file (call it where reading the configuration is allowed: at start and at
 * a reload, not on the loop's hot path).
 *
 * Credentials: $DOCKER_CONFIG/config.json, or ~/.docker/config.json, its
 * "auths" object: an entry per registry, keyed by host ("127.0.0.1:5000",
 * "ghcr.io"; a key written as a URL, "https://ghcr.io/v2/", matches its
 * host) and for Docker Hub by "https://index.docker.io/v1/".  An entry's
 * "auth" is base64 of "user:password"; without it, "username" and
 * "password".  Credential helpers ("credsStore", "credHelpers") and identity
 * tokens are NOT supported: registries whose credentials live only there
 * are asked anonymously, and loading says so once per process, naming the
 * helpers and hosts but never a secret.  No secret is ever logged or put in
 * an error message. */
#ifndef RP_REGISTRY_AUTH_H
#define RP_REGISTRY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Docker Hub's key in config.json. */
#define RP_DOCKER_HUB_AUTH_KEY "https://index.docker.io/v1/"

/* config.json is at most this big; a larger one is refused. */
#define RP_REGISTRY_AUTH_FILE_MAX ((size_t)1 << 20)

struct rp_registry_cred {
  char *username; /* owned */
  char *password; /* owned; wiped when freed */
};

/* The credentials of one config.json. */
struct rp_registry_auth;

/* The file docker reads: $DOCKER_CONFIG/config.json when DOCKER_CONFIG is
 * set, else $HOME/.docker/config.json (HOME from the password database when
 * unset).  Owned. */
char *rp_registry_auth_default_path(void);

/* Reads path (NULL: the default path).  A missing file is no credentials
 * (docker's behaviour), not an error; an unreadable or invalid one fails
 * with a message naming the file (and the key of a bad entry). */
int rp_registry_auth_load(const char *path, struct rp_registry_auth **out,
                          struct rp_error **err);

/* Parses config.json's bytes; `where` names them in errors (the path). */
int rp_registry_auth_parse(const char *json, size_t len, const char *where,
                           struct rp_registry_auth **out,
                           struct rp_error **err);

/* Accepts NULL.  Wipes the passwords. */
void rp_registry_auth_free(struct rp_registry_auth *a);

/* The credentials for a registry's domain as an image reference names it
 * ("docker.io" looks up Docker Hub's key), or NULL (anonymous).  Borrowed
 * from a; accepts a NULL a. */
const struct rp_registry_cred *
rp_registry_auth_find(const struct rp_registry_auth *a, const char *domain);

/* The number of entries with credentials, and whether the file names
 * credential helpers (which are not used). */
size_t rp_registry_auth_count(const struct rp_registry_auth *a);
bool rp_registry_auth_has_helpers(const struct rp_registry_auth *a);

/* "Basic <base64(user:password)>" (owned; wipe it with
 * rp_registry_secret_free). */
char *rp_registry_basic_credentials(const struct rp_registry_cred *c);

/* Wipes then frees a string that held a secret; accepts NULL. */
void rp_registry_secret_free(char *s);

/* ---- challenges ---- */

enum rp_registry_scheme {
  RP_REGISTRY_SCHEME_NONE,
  RP_REGISTRY_SCHEME_BASIC,
  RP_REGISTRY_SCHEME_BEARER,
};

struct rp_registry_challenge {
  enum rp_registry_scheme scheme;
  char *realm;   /* owned or NULL */
  char *service; /* owned or NULL */
  char *scope;   /* owned or NULL */
};

/* Parses one WWW-Authenticate value (len bytes, not NUL-terminated):
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",
 * scope="repository:library/busybox:pull"`, or `Basic realm="..."`.  Of
 * several challenges in one value, Bearer is preferred to Basic.  Parameters
 * are tokens or quoted strings (backslash escapes), names case-insensitive.
 * Returns 0 with *out filled, or -1 (out cleared) when there is no Basic or
 * Bearer challenge, or a Bearer one has no realm. */
int rp_registry_challenge_parse(const char *value, size_t len,
                                struct rp_registry_challenge *out);

/* Frees the members; accepts an empty challenge. */
void rp_registry_challenge_clear(struct rp_registry_challenge *c);

/* Parses a token endpoint's answer: "token" (or "access_token" when token
 * is absent or empty) and "expires_in" (seconds; less than 60 or absent
 * means 60, as docker reads it).  The token must be printable ASCII without
 * spaces (it goes into a header).  *token_out is owned (free it with
 * rp_registry_secret_free).  RP_EPROTO when the answer has no usable token;
 * the message never holds the token. */
int rp_registry_token_parse(const char *json, size_t len, char **token_out,
                            int64_t *expires_in_s, struct rp_error **err);

/* Splits an absolute http(s) URL ("https://auth.docker.io/token?x=1") into
 * its base ("https://auth.docker.io") and its path with query ("/token?x=1",
 * "/" when empty), both owned.  -1 for anything else (another scheme, no
 * host, spaces or control characters). */
int rp_registry_split_url(const char *url, char **base_out, char **path_out);

#endif
