#include "workload.h"

#include <string.h>

#include "strv.h"
#include "util.h"

static const char *const kind_names[RP_KIND__COUNT] = {
    [RP_KIND_CONTAINER] = "container", [RP_KIND_SERVICE] = "service",
    [RP_KIND_NODE] = "node",           [RP_KIND_TASK] = "task",
    [RP_KIND_HOST] = "host",
};

const char *
rp_kind_name(enum rp_kind k)
{
  if ((int)k < 0 || k >= RP_KIND__COUNT)
    return NULL;
  return kind_names[k];
}

int
rp_kind_parse(const char *name)
{
  for (int i = 0; i < RP_KIND__COUNT; i++)
    if (name && strcmp(name, kind_names[i]) == 0)
      return i;
  return -1;
}

struct rp_workload *
rp_workload_new(const char *provider, enum rp_kind kind, const char *id,
                const char *name, int64_t started_ms)
{
  struct rp_workload *w = rp_xcalloc(1, sizeof(*w));
  w->provider = rp_xstrdup(provider);
  w->kind = kind;
  w->id = rp_xstrdup(id);
  w->name = rp_xstrdup(name ? name : id);
  w->labels = json_object();
  w->started_ms = started_ms;
  return w;
}

struct rp_workload *
rp_workload_dup(const struct rp_workload *w)
{
  struct rp_workload *c =
      rp_workload_new(w->provider, w->kind, w->id, w->name, w->started_ms);
  if (w->labels) {
    /* Shared, not copied: a workload's labels never change once it is
     * made (provider.h), and a provider's list of 10,000 workloads is then
     * not held twice while the tracker takes it in. */
    json_decref(c->labels);
    c->labels = json_incref(w->labels);
  }
  if (w->protected_reason)
    c->protected_reason = rp_xstrdup(w->protected_reason);
  if (w->note)
    c->note = rp_xstrdup(w->note);
  c->depends_on = w->depends_on ? rp_strv_dup(w->depends_on) : NULL;
  if (w->service)
    c->service = rp_xstrdup(w->service);
  if (w->refusal)
    c->refusal = rp_xstrdup(w->refusal);
  if (w->extra)
    c->extra = json_deep_copy(w->extra);
  rp_workload_image_copy(&c->image, &w->image);
  return c;
}

void
rp_workload_free(struct rp_workload *w)
{
  if (!w)
    return;
  free(w->provider);
  free(w->id);
  free(w->name);
  free(w->protected_reason);
  free(w->note);
  rp_strv_free(w->depends_on);
  free(w->service);
  free(w->refusal);
  if (w->labels)
    json_decref(w->labels);
  if (w->extra)
    json_decref(w->extra);
  rp_workload_image_clear(&w->image);
  free(w);
}

const char *
rp_workload_label(const struct rp_workload *w, const char *key)
{
  if (!w->labels)
    return NULL;
  return json_string_value(json_object_get(w->labels, key));
}

uint64_t
rp_workload_key_hash(const char *provider, const char *id)
{
  /* The NUL between the two: ("ab", "c") and ("a", "bc") differ. */
  uint64_t h = rp_hash_more(RP_HASH_INIT, provider) * 1099511628211ULL;
  return rp_hash_more(h, id);
}

static char *
dup_or_null(const char *s)
{
  return s ? rp_xstrdup(s) : NULL;
}

void
rp_workload_image_clear(struct rp_workload_image *img)
{
  free(img->ref);
  free(img->id);
  rp_strv_free(img->repo_digests);
  free(img->platform);
  *img = (struct rp_workload_image){0};
}

void
rp_workload_image_copy(struct rp_workload_image *dst,
                       const struct rp_workload_image *src)
{
  if (dst == src)
    return;
  rp_workload_image_clear(dst);
  dst->ref = dup_or_null(src->ref);
  dst->id = dup_or_null(src->id);
  dst->repo_digests = rp_strv_dup(src->repo_digests);
  dst->created_ms = src->created_ms;
  dst->platform = dup_or_null(src->platform);
}

static bool
same_string(const char *a, const char *b)
{
  return a == b || (a && b && strcmp(a, b) == 0);
}

bool
rp_workload_image_equal(const struct rp_workload_image *a,
                        const struct rp_workload_image *b)
{
  return same_string(a->ref, b->ref) && same_string(a->id, b->id) &&
         rp_strv_equal(a->repo_digests, b->repo_digests) &&
         a->created_ms == b->created_ms &&
         same_string(a->platform, b->platform);
}
