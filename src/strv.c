/* NULL-terminated arrays of strings (strv.h). */
#include "strv.h"

#include <string.h>

#include "util.h"

size_t
rp_strv_len(char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

char **
rp_strv_dup(char *const *v)
{
  if (!v)
    return NULL;
  size_t n = rp_strv_len(v);
  char **c = rp_xcalloc(n + 1, sizeof(*c));
  for (size_t i = 0; i < n; i++)
    c[i] = rp_xstrdup(v[i]);
  return c;
}

void
rp_strv_free(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

void
rp_strv_push(char ***v, const char *s)
{
  size_t n = rp_strv_len(*v);
  *v = rp_xrealloc(*v, (n + 2) * sizeof(**v));
  (*v)[n] = rp_xstrdup(s);
  (*v)[n + 1] = NULL;
}

bool
rp_strv_equal(char *const *a, char *const *b)
{
  if (!a || !b)
    return a == b;
  size_t i = 0;
  for (; a[i] && b[i]; i++)
    if (strcmp(a[i], b[i]) != 0)
      return false;
  return a[i] == b[i];
}

bool
rp_strv_contains(char *const *v, const char *s)
{
  for (size_t i = 0; v && s && v[i]; i++)
    if (strcmp(v[i], s) == 0)
      return true;
  return false;
}

char **
rp_strv_from_json(const json_t *a)
{
  if (!json_is_array(a))
    return NULL;
  size_t n = json_array_size(a);
  char **v = rp_xcalloc(n + 1, sizeof(*v));
  for (size_t i = 0; i < n; i++) {
    const char *s = json_string_value(json_array_get(a, i));
    if (!s) {
      rp_strv_free(v);
      return NULL;
    }
    v[i] = rp_xstrdup(s);
  }
  return v;
}

json_t *
rp_strv_to_json(char *const *v)
{
  json_t *a = json_array();
  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}
