/* YAML text to a small tree that keeps every node's FILE:LINE:COL.
 *
 * libyaml's document API would resolve aliases silently and drop the
 * distinction between `true` and "true", so the configuration reads events
 * and builds its own tree: each node knows its 1-based position and whether
 * it was a plain (untagged, unquoted) scalar.  Duplicate mapping keys,
 * aliases, tags other than !!str, several documents and very deep nesting
 * are rejected here, so the typed layer (config.c) only sees sane trees. */
#include "config_yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "strmap.h"
#include "util.h"

/* Configuration files nest four or five levels; anything this deep is a
 * mistake or an attack on the recursion in node_free. */
#define MAX_DEPTH 64

int
rp_config_fail(struct rp_config_parse *ps, struct rp_mark m, const char *path,
               const char *fmt, ...)
{
  cleanup_free char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  return rp_error_set(ps->err, RP_ECONFIG, "%s:%d:%d: %s%s%s", ps->name, m.line,
                      m.col, path && *path ? path : "",
                      path && *path ? ": " : "", msg ? msg : "(out of memory)");
}

void
rp_config_node_free(struct rp_config_node *n)
{
  if (n == NULL)
    return;
  for (size_t i = 0; i < n->n_kids; i++)
    rp_config_node_free(n->kids[i]);
  free(n->kids);
  free(n->text);
  free(n);
}

static struct rp_mark
mark_of(yaml_mark_t m)
{
  return (struct rp_mark){.line = (int)m.line + 1, .col = (int)m.column + 1};
}

/* libyaml's reader errors (bad UTF-8, control characters) carry a byte
 * offset instead of a mark. */
static struct rp_mark
mark_at_offset(const char *text, size_t len, size_t off)
{
  struct rp_mark m = {.line = 1, .col = 1};
  for (size_t i = 0; i < off && i < len; i++) {
    if (text[i] == '\n') {
      m.line++;
      m.col = 1;
    } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
      m.col++; /* count characters, not UTF-8 continuation bytes */
    }
  }
  return m;
}

static int
syntax_error(struct rp_config_parse *ps, const yaml_parser_t *p,
             const char *text, size_t len)
{
  const char *problem = p->problem ? p->problem : "unknown problem";
  /* The one syntax error everybody meets, in libyaml's words: "found
   * character that cannot start any token". */
  size_t at = p->problem_mark.index;
  const char *hint =
      p->error == YAML_SCANNER_ERROR && at < len && text[at] == '\t'
          ? "; YAML does not allow tabs for indentation"
          : "";
  if (p->error == YAML_READER_ERROR)
    return rp_config_fail(ps, mark_at_offset(text, len, p->problem_offset),
                          NULL, "YAML syntax error: %s", problem);
  if (p->context) {
    struct rp_mark cm = mark_of(p->context_mark);
    return rp_config_fail(ps, mark_of(p->problem_mark), NULL,
                          "YAML syntax error: %s (%s at line %d, column %d)%s",
                          problem, p->context, cm.line, cm.col, hint);
  }
  return rp_config_fail(ps, mark_of(p->problem_mark), NULL,
                        "YAML syntax error: %s%s", problem, hint);
}

bool
rp_config_node_is_null(const struct rp_config_node *n)
{
  if (n == NULL)
    return true;
  if (n->type != RP_CONFIG_SCALAR || !n->plain)
    return false;
  return n->len == 0 || strcmp(n->text, "~") == 0 ||
         strcmp(n->text, "null") == 0 || strcmp(n->text, "Null") == 0 ||
         strcmp(n->text, "NULL") == 0;
}

/* Only !!str is accepted: it is how YAML says "this is text" and costs
 * nothing to honour.  Other tags would need a meaning we do not give them. */
static int
check_tag(struct rp_config_parse *ps, const yaml_char_t *tag, yaml_mark_t m,
          bool scalar, bool *is_str)
{
  *is_str = false;
  if (tag == NULL)
    return 0;
  const char *t = (const char *)tag;
  if (scalar && (strcmp(t, YAML_STR_TAG) == 0 || strcmp(t, "!") == 0)) {
    *is_str = true;
    return 0;
  }
  if (!scalar && (strcmp(t, YAML_SEQ_TAG) == 0 || strcmp(t, YAML_MAP_TAG) == 0))
    return 0;
  return rp_config_fail(ps, mark_of(m), NULL,
                        "YAML tag '%s' is not supported (only !!str is)", t);
}

/* An open collection while its events come: its node, and for a mapping
 * the index of its keys so far (each key's position among its kids), which
 * finds a duplicate in constant time however many keys came before. */
struct frame {
  struct rp_config_node *node; /* borrowed: owned by the tree */
  struct rp_strmap keys;       /* owned; borrows the keys' text */
};

/* Appends n to the open collection f (or makes it the root).  A mapping's
 * kids alternate key, value; keys must be scalars and unique. */
static int
attach(struct rp_config_parse *ps, struct frame *f,
       struct rp_config_node **root, struct rp_config_node *n)
{
  if (f == NULL) {
    *root = n;
    return 0;
  }
  struct rp_config_node *parent = f->node;
  bool is_key = parent->type == RP_CONFIG_MAP && parent->n_kids % 2 == 0;
  if (is_key && n->type != RP_CONFIG_SCALAR)
    return rp_config_fail(ps, n->mark, NULL,
                          "a mapping key must be a plain string, not %s",
                          rp_config_node_describe(n));
  size_t first;
  if (is_key &&
      !rp_strmap_add(&f->keys, n->text, n->len, parent->n_kids, &first))
    return rp_config_fail(ps, n->mark, NULL,
                          "duplicate key '%s' (first at line %d)", n->text,
                          parent->kids[first]->mark.line);
  if (parent->n_kids == parent->kids_cap) {
    parent->kids_cap = parent->kids_cap ? 2 * parent->kids_cap : 4;
    parent->kids =
        rp_xrealloc(parent->kids, parent->kids_cap * sizeof(*parent->kids));
  }
  parent->kids[parent->n_kids++] = n;
  return 0;
}

/* Turns one event into the tree.  Returns 1 at the end of the stream, 0 to
 * go on, -1 on error.  Nodes are owned by the tree as soon as they are
 * attached; a node that fails to attach is freed here. */
static int
on_event(struct rp_config_parse *ps, const yaml_event_t *ev,
         struct frame *stack, int *depth, struct rp_config_node **root,
         int *docs)
{
  struct frame *parent = *depth > 0 ? &stack[*depth - 1] : NULL;
  bool is_str = false;
  switch (ev->type) {
  case YAML_STREAM_END_EVENT:
    return 1;
  case YAML_DOCUMENT_START_EVENT:
    if (++*docs > 1)
      return rp_config_fail(ps, mark_of(ev->start_mark), NULL,
                            "only one YAML document is allowed in a "
                            "configuration file");
    return 0;
  case YAML_ALIAS_EVENT:
    return rp_config_fail(ps, mark_of(ev->start_mark), NULL,
                          "YAML aliases (*%s) are not supported: write the "
                          "value out",
                          (const char *)ev->data.alias.anchor);
  case YAML_SCALAR_EVENT: {
    if (check_tag(ps, ev->data.scalar.tag, ev->start_mark, true, &is_str) < 0)
      return -1;
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(v, '\0', len) != NULL)
      return rp_config_fail(ps, mark_of(ev->start_mark), NULL,
                            "a value contains a NUL character");
    struct rp_config_node *n = rp_xcalloc(1, sizeof(*n));
    n->type = RP_CONFIG_SCALAR;
    n->mark = mark_of(ev->start_mark);
    n->text = rp_xstrndup(v, len);
    n->len = len;
    n->plain = !is_str && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (attach(ps, parent, root, n) < 0) {
      rp_config_node_free(n);
      return -1;
    }
    return 0;
  }
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT: {
    bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
    const yaml_char_t *tag =
        seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;
    if (check_tag(ps, tag, ev->start_mark, false, &is_str) < 0)
      return -1;
    if (*depth >= MAX_DEPTH)
      return rp_config_fail(ps, mark_of(ev->start_mark), NULL,
                            "nesting deeper than %d levels", MAX_DEPTH);
    struct rp_config_node *n = rp_xcalloc(1, sizeof(*n));
    n->type = seq ? RP_CONFIG_SEQ : RP_CONFIG_MAP;
    n->mark = mark_of(ev->start_mark);
    if (attach(ps, parent, root, n) < 0) {
      rp_config_node_free(n);
      return -1;
    }
    stack[(*depth)++] = (struct frame){.node = n};
    return 0;
  }
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    if (*depth > 0)
      rp_strmap_clear(&stack[--*depth].keys);
    return 0;
  default:
    return 0;
  }
}

int
rp_config_yaml_load(struct rp_config_parse *ps, const char *text, size_t len,
                    struct rp_config_node **out)
{
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser))
    return rp_config_fail(ps, (struct rp_mark){1, 1}, NULL,
                          "cannot initialise the YAML parser");
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

  struct frame stack[MAX_DEPTH];
  int depth = 0, docs = 0, rc = -1;
  struct rp_config_node *root = NULL;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      syntax_error(ps, &parser, text, len);
      break;
    }
    int r = on_event(ps, &ev, stack, &depth, &root, &docs);
    yaml_event_delete(&ev);
    if (r < 0)
      break;
    if (r == 1) {
      rc = 0;
      break;
    }
  }
  yaml_parser_delete(&parser);
  while (depth > 0)
    rp_strmap_clear(&stack[--depth].keys);
  if (rc < 0) {
    rp_config_node_free(root);
    return -1;
  }
  *out = root;
  return 0;
}

const char *
rp_config_node_describe(const struct rp_config_node *n)
{
  if (n == NULL || rp_config_node_is_null(n))
    return "nothing (null)";
  switch (n->type) {
  case RP_CONFIG_MAP:
    return "a mapping";
  case RP_CONFIG_SEQ:
    return "a list";
  default:
    return "a string"; /* every scalar is text until a getter says more */
  }
}

const struct rp_config_node *
rp_config_node_get(const struct rp_config_node *map, const char *key)
{
  if (map == NULL || map->type != RP_CONFIG_MAP)
    return NULL;
  for (size_t i = 0; i + 1 < map->n_kids; i += 2)
    if (strcmp(map->kids[i]->text, key) == 0)
      return map->kids[i + 1];
  return NULL;
}

const struct rp_config_node *
rp_config_node_key(const struct rp_config_node *map, const char *key)
{
  if (map == NULL || map->type != RP_CONFIG_MAP)
    return NULL;
  for (size_t i = 0; i + 1 < map->n_kids; i += 2)
    if (strcmp(map->kids[i]->text, key) == 0)
      return map->kids[i];
  return NULL;
}
