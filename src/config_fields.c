/* Typed getters over the configuration tree; see config_yaml.h. */
#include <stdio.h>
#include <string.h>

#include "config_values.h"
#include "config_yaml.h"
#include "strv.h"
#include "util.h"

/* Paths longer than RP_CONFIG_PATH_LEN are cut short: a message with a
 * truncated path still has its line and column. */
const char *
rp_config_join(char *buf, const char *prefix, const char *key)
{
  int n = prefix && *prefix
              ? snprintf(buf, RP_CONFIG_PATH_LEN, "%s.%s", prefix, key)
              : snprintf(buf, RP_CONFIG_PATH_LEN, "%s", key);
  if (n < 0)
    buf[0] = '\0';
  return buf;
}

const char *
rp_config_join_index(char *buf, const char *prefix, size_t i)
{
  if (snprintf(buf, RP_CONFIG_PATH_LEN, "%s[%zu]", prefix, i) < 0)
    buf[0] = '\0';
  return buf;
}

/* Every key of map must be one of known (NULL-terminated).  Unknown keys
 * get "did you mean" for near misses, or where they belong for keys put at
 * the wrong level. */
int
rp_config_check_keys(struct rp_config_parse *ps,
                     const struct rp_config_node *map, const char *path,
                     const char *const *known,
                     const struct rp_config_moved_key *moved)
{
  for (size_t i = 0; i < map->n_kids; i += 2) {
    const struct rp_config_node *k = map->kids[i];
    bool ok = false;
    for (size_t j = 0; known[j] && !ok; j++)
      ok = strcmp(k->text, known[j]) == 0;
    if (ok)
      continue;
    for (size_t j = 0; moved && moved[j].key; j++)
      if (strcmp(k->text, moved[j].key) == 0)
        return rp_config_fail(ps, k->mark, path,
                              "unknown key '%s'; it belongs under '%s:'",
                              k->text, moved[j].under);
    const char *near = rp_config_suggest(k->text, known);
    if (near)
      return rp_config_fail(ps, k->mark, path,
                            "unknown key '%s'; did you mean '%s'?", k->text,
                            near);
    cleanup_free char *list = rp_config_join_list(known);
    return rp_config_fail(ps, k->mark, path, "unknown key '%s' (known: %s)",
                          k->text, list);
  }
  return 0;
}

int
rp_config_want_map(struct rp_config_parse *ps, const struct rp_config_node *n,
                   const char *path)
{
  if (n->type == RP_CONFIG_MAP)
    return 0;
  return rp_config_fail(ps, n->mark, path, "expected a mapping, got %s",
                        rp_config_node_describe(n));
}

int
rp_config_want_scalar(struct rp_config_parse *ps,
                      const struct rp_config_node *n, const char *path,
                      const char *what)
{
  if (n->type == RP_CONFIG_SCALAR && !rp_config_node_is_null(n))
    return 0;
  return rp_config_fail(ps, n->mark, path, "expected %s, got %s", what,
                        rp_config_node_describe(n));
}

/* *out (owned, freed when replaced) becomes a copy of the scalar. */
int
rp_config_get_string(struct rp_config_parse *ps, const struct rp_config_node *n,
                     const char *path, bool allow_empty, char **out)
{
  if (rp_config_want_scalar(ps, n, path, "a string") < 0)
    return -1;
  if (!allow_empty && n->len == 0)
    return rp_config_fail(ps, n->mark, path, "must not be empty");
  free(*out);
  *out = rp_xstrdup(n->text);
  return 0;
}

int
rp_config_get_bool(struct rp_config_parse *ps, const struct rp_config_node *n,
                   const char *path, bool *out)
{
  if (rp_config_want_scalar(ps, n, path, "true or false") < 0)
    return -1;
  const char *why = NULL;
  if (rp_config_bool_parse(n->text, out, &why) < 0)
    return rp_config_fail(ps, n->mark, path,
                          "expected true or false, got "
                          "'%s'%s",
                          n->text, why);
  return 0;
}

int
rp_config_get_int(struct rp_config_parse *ps, const struct rp_config_node *n,
                  const char *path, int min, int max, int *out)
{
  if (rp_config_want_scalar(ps, n, path, "a whole number") < 0)
    return -1;
  long v;
  if (rp_config_int_parse(n->text, &v) < 0)
    return rp_config_fail(ps, n->mark, path,
                          "expected a whole number, got '%s'", n->text);
  if (v < min || v > max)
    return rp_config_fail(ps, n->mark, path, "%ld is out of range (%d..%d)", v,
                          min, max);
  *out = (int)v;
  return 0;
}

/* min_ms is 0 (zero allowed) or 1 (must be positive). */
int
rp_config_get_duration(struct rp_config_parse *ps,
                       const struct rp_config_node *n, const char *path,
                       int64_t min_ms, int64_t *out)
{
  if (rp_config_want_scalar(ps, n, path, "a duration like 30s or 2h") < 0)
    return -1;
  const char *why = NULL;
  int64_t ms;
  if (rp_duration_parse(n->text, &ms, &why) < 0)
    return rp_config_fail(ps, n->mark, path, "invalid duration '%s': %s",
                          n->text, why);
  if (ms < min_ms)
    return rp_config_fail(ps, n->mark, path,
                          "must be greater than zero, got '%s'", n->text);
  *out = ms;
  return 0;
}

/* A non-empty list of strings, as a NULL-terminated owned array.  argv
 * lists also need a non-empty first element (the program). */
int
rp_config_get_strv(struct rp_config_parse *ps, const struct rp_config_node *n,
                   const char *path, bool argv, char ***out)
{
  if (n->type != RP_CONFIG_SEQ)
    return rp_config_fail(ps, n->mark, path,
                          "expected a list of strings%s, got %s",
                          argv ? " (argv, e.g. [/bin/sh, -c, \"...\"])" : "",
                          rp_config_node_describe(n));
  if (n->n_kids == 0)
    return rp_config_fail(ps, n->mark, path, "must not be an empty list");
  char **v = rp_xcalloc(n->n_kids + 1, sizeof(*v));
  for (size_t i = 0; i < n->n_kids; i++) {
    char p[RP_CONFIG_PATH_LEN];
    if (rp_config_get_string(ps, n->kids[i], rp_config_join_index(p, path, i),
                             !(argv && i == 0), &v[i]) < 0) {
      rp_strv_free(v);
      return -1;
    }
  }
  rp_strv_free(*out);
  *out = v;
  return 0;
}

void
rp_config_free_labels(struct rp_label_match *l, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(l[i].key);
    free(l[i].value);
  }
  free(l);
}

/* A mapping of label key to value.  Values stay text: `true` is "true".
 * Null (`labels:` alone) is no labels. */
int
rp_config_get_labels(struct rp_config_parse *ps, const struct rp_config_node *n,
                     const char *path, struct rp_label_match **out,
                     size_t *n_out)
{
  if (rp_config_node_is_null(n))
    return 0;
  if (rp_config_want_map(ps, n, path) < 0)
    return -1;
  size_t count = n->n_kids / 2;
  struct rp_label_match *l = rp_xcalloc(count, sizeof(*l));
  for (size_t i = 0; i < count; i++) {
    const struct rp_config_node *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
    int rc = 0;
    if (k->len == 0)
      rc = rp_config_fail(ps, k->mark, path, "a label key must not be empty");
    else if (rp_config_node_is_null(v))
      rc = rp_config_fail(ps, v->mark, path,
                          "label '%s' has no value; write \"*\" to match any "
                          "value",
                          k->text);
    else if (v->type != RP_CONFIG_SCALAR)
      rc = rp_config_fail(ps, v->mark, path,
                          "label '%s': expected a string, got %s", k->text,
                          rp_config_node_describe(v));
    if (rc < 0) {
      rp_config_free_labels(l, i);
      return -1;
    }
    l[i].key = rp_xstrdup(k->text);
    l[i].value = rp_xstrdup(v->text);
  }
  rp_config_free_labels(*out, *n_out);
  *out = l;
  *n_out = count;
  return 0;
}

/* Names appear in the audit log, metrics and labels (reaper.policy=NAME):
 * keep them to one word. */
int
rp_config_get_name(struct rp_config_parse *ps, const struct rp_config_node *n,
                   const char *path, char **out)
{
  if (rp_config_get_string(ps, n, path, false, out) < 0)
    return -1;
  for (const char *p = *out; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return rp_config_fail(ps, n->mark, path,
                            "'%s' must not contain spaces or control "
                            "characters",
                            *out);
  return 0;
}

const char *
rp_config_did_you_mean(char *buf, const char *near)
{
  buf[0] = '\0';
  if (near &&
      snprintf(buf, RP_CONFIG_PATH_LEN, "; did you mean '%s'?", near) < 0)
    buf[0] = '\0';
  return buf;
}
