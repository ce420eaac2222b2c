/* Internal to the configuration module (config.c, config_yaml.c,
 * config_fields.c, config_values.c): a YAML tree that keeps positions, the
 * error helper every check uses, and typed getters over the tree.  Nothing
 * outside src/config*.c includes this. */
#ifndef RP_CONFIG_YAML_H
#define RP_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

enum rp_config_node_type { RP_CONFIG_SCALAR, RP_CONFIG_SEQ, RP_CONFIG_MAP };

struct rp_config_node {
  enum rp_config_node_type type;
  struct rp_mark mark; /* where the node starts, 1-based */
  char *text;          /* owned; scalars only, NUL-free */
  size_t len;
  /* An unquoted, untagged scalar: only these can mean null.  `"true"` and
   * `!!str true` are text. */
  bool plain;
  struct rp_config_node **kids; /* owned; a mapping's alternate key, value */
  size_t n_kids;
  size_t kids_cap; /* room in kids */
};

struct rp_config_parse {
  const char *name;      /* borrowed: the file name in messages */
  struct rp_error **err; /* borrowed */
};

/* Sets *ps->err to "NAME:LINE:COL: PATH: message" (RP_ECONFIG); PATH may be
 * NULL or "".  Returns -1. */
int rp_config_fail(struct rp_config_parse *ps, struct rp_mark m,
                   const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parses one YAML document into *out (owned by the caller; NULL when the
 * stream holds no document).  Syntax errors, aliases, unsupported tags,
 * duplicate keys, non-scalar keys and several documents are errors. */
int rp_config_yaml_load(struct rp_config_parse *ps, const char *text,
                        size_t len, struct rp_config_node **out);
/* Accepts NULL. */
void rp_config_node_free(struct rp_config_node *n);

/* Whether n is absent or a plain "", "~", "null", "Null" or "NULL". */
bool rp_config_node_is_null(const struct rp_config_node *n);
/* "a mapping", "a list", "a string", "nothing (null)": for "got ..." */
const char *rp_config_node_describe(const struct rp_config_node *n);
/* The value (or key node) for key in a mapping, NULL when absent. */
const struct rp_config_node *
rp_config_node_get(const struct rp_config_node *map, const char *key);
const struct rp_config_node *
rp_config_node_key(const struct rp_config_node *map, const char *key);

/* The typed layer over the tree (config_fields.c): each getter checks one
 * value's type and syntax and names PATH and the value's position on
 * error.  Outputs are owned; a string output is freed when replaced, so
 * defaults can sit in it beforehand. */

/* Longest key path in messages: "policies[12].window.days[4]" and the
 * like.  Longer paths are cut, never overflowed. */
#define RP_CONFIG_PATH_LEN 192

/* A key that users put one level too high, and where it belongs. */
struct rp_config_moved_key {
  const char *key;
  const char *under;
};

/* buf (RP_CONFIG_PATH_LEN bytes) = "prefix.key" (or "key"); returns buf. */
const char *rp_config_join(char *buf, const char *prefix, const char *key);
/* buf = "prefix[i]"; returns buf. */
const char *rp_config_join_index(char *buf, const char *prefix, size_t i);

/* Every key of map must be in known (NULL-terminated); moved (may be NULL,
 * ends with {NULL, NULL}) says where misplaced keys belong. */
int rp_config_check_keys(struct rp_config_parse *ps,
                         const struct rp_config_node *map, const char *path,
                         const char *const *known,
                         const struct rp_config_moved_key *moved);
int rp_config_want_map(struct rp_config_parse *ps,
                       const struct rp_config_node *n, const char *path);
/* A non-null scalar; `what` completes "expected ..." */
int rp_config_want_scalar(struct rp_config_parse *ps,
                          const struct rp_config_node *n, const char *path,
                          const char *what);
int rp_config_get_string(struct rp_config_parse *ps,
                         const struct rp_config_node *n, const char *path,
                         bool allow_empty, char **out);
/* A non-empty string without spaces or control characters. */
int rp_config_get_name(struct rp_config_parse *ps,
                       const struct rp_config_node *n, const char *path,
                       char **out);
int rp_config_get_bool(struct rp_config_parse *ps,
                       const struct rp_config_node *n, const char *path,
                       bool *out);
int rp_config_get_int(struct rp_config_parse *ps,
                      const struct rp_config_node *n, const char *path, int min,
                      int max, int *out);
/* min_ms 0: zero allowed; 1: must be positive. */
int rp_config_get_duration(struct rp_config_parse *ps,
                           const struct rp_config_node *n, const char *path,
                           int64_t min_ms, int64_t *out);
/* A non-empty list of strings, as a strv (strv.h) that replaces *out;
 * argv lists also need a non-empty first element. */
int rp_config_get_strv(struct rp_config_parse *ps,
                       const struct rp_config_node *n, const char *path,
                       bool argv, char ***out);
/* A mapping of label key to value (text: `true` is "true"); null is no
 * labels. */
int rp_config_get_labels(struct rp_config_parse *ps,
                         const struct rp_config_node *n, const char *path,
                         struct rp_label_match **out, size_t *n_out);
/* buf (RP_CONFIG_PATH_LEN bytes) = "; did you mean 'NEAR'?", or "" when
 * near is NULL; returns buf.  For rp_config_suggest's answer. */
const char *rp_config_did_you_mean(char *buf, const char *near);
/* Accepts NULL. */
void rp_config_free_labels(struct rp_label_match *l, size_t n);

#endif
