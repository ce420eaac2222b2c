#include "recovery.h"

#include <string.h>

#include "audit.h"
#include "util.h"

struct scan {
  json_t *open;   /* "provider\x1fid" -> the recycle.begin line */
  json_t *images; /* image.* lines, or NULL */
};

static int
scan_line_cb(void *arg, const json_t *line_const)
{
  struct scan *s = arg;
  json_t *line = (json_t *)(uintptr_t)line_const; /* jansson: not const */
  const char *event = json_string_value(json_object_get(line, "event"));
  const char *provider = json_string_value(json_object_get(line, "provider"));
  const char *id = json_string_value(json_object_get(line, "id"));
  if (s->images && event &&
      (strcmp(event, "image.seen") == 0 ||
       strcmp(event, "image.quarantined") == 0)) {
    json_array_append(s->images, line);
    return 0;
  }
  if (!event || !provider || !id || strncmp(event, "recycle.", 8) != 0)
    return 0;
  cleanup_free char *key = rp_xasprintf("%s\x1f%s", provider, id);
  if (strcmp(event, "recycle.begin") == 0) {
    json_t *begin = json_deep_copy(line);
    json_object_set_new(begin, "steps", json_array());
    json_object_set_new(s->open, key, begin);
  } else if (strcmp(event, "recycle.step") == 0) {
    /* What the recycle announced before it died: recovery finishes or
     * undoes by it (the step named may or may not have acted). */
    json_t *begin = json_object_get(s->open, key);
    const char *step = json_string_value(json_object_get(line, "step"));
    json_t *repl = json_object_get(line, "replacement_id");
    if (begin && step) {
      json_t *steps = json_object_get(begin, "steps");
      if (!json_is_array(steps)) {
        steps = json_array();
        json_object_set_new(begin, "steps", steps);
      }
      json_array_append_new(steps, json_string(step));
      if (json_is_string(repl))
        json_object_set(begin, "replacement_id", repl);
    }
  } else if (strcmp(event, "recycle.done") == 0 ||
             strcmp(event, "recycle.failed") == 0 ||
             strcmp(event, "recycle.recovered") == 0)
    json_object_del(s->open, key);
  return 0;
}

int
rp_recovery_scan(const char *path, json_t **out, struct rp_error **err)
{
  return rp_recovery_scan_images(path, out, NULL, err);
}

int
rp_recovery_scan_images(const char *path, json_t **out, json_t **images,
                        struct rp_error **err)
{
  cleanup_json json_t *by_provider = json_object();
  cleanup_json json_t *open = json_object();
  cleanup_json json_t *image_lines = images ? json_array() : NULL;
  struct scan s = {open, image_lines};
  /* A recycle may begin in a part that rotation closed since: read them
   * all, oldest first.  No file at all is a new log. */
  char **files = NULL;
  if (rp_audit_files(path, &files, NULL, err) != 0)
    return rp_error_prefix(err, "recovery: list %s", path);
  for (char **f = files; *f; f++) {
    if (rp_audit_read(*f, scan_line_cb, &s, NULL, err) != 0) {
      rp_error_prefix(err, "recovery: read %s", *f);
      rp_audit_files_free(files);
      return -1;
    }
  }
  rp_audit_files_free(files);
  const char *key;
  json_t *line;
  json_object_foreach(open, key, line)
  {
    const char *provider = json_string_value(json_object_get(line, "provider"));
    json_t *arr = json_object_get(by_provider, provider);
    if (!arr) {
      arr = json_array();
      json_object_set_new(by_provider, provider, arr);
    }
    json_array_append(arr, line);
  }
  *out = RP_STEAL(by_provider);
  if (images)
    *images = RP_STEAL(image_lines);
  return 0;
}
