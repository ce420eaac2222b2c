/* Prints what rp_docker_create_body() builds for one container, for
 * check-bodies.sh: {"body": ..., "extra_networks": [...]}.
 * Usage: emit-body INSPECT.json IMAGE.json ID_NAMES.json [IMAGE_REF] */
#include <stdio.h>

#include "docker/docker.h"
#include "util.h"

static json_t *
load(const char *path)
{
  json_error_t jerr;
  json_t *j = json_load_file(path, 0, &jerr);
  if (!j)
    fprintf(stderr, "emit-body: %s:%d: %s\n", path, jerr.line, jerr.text);
  return j;
}

int
main(int argc, char **argv)
{
  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: emit-body INSPECT.json IMAGE.json ID_NAMES.json "
                    "[IMAGE_REF]\n");
    return 2;
  }
  cleanup_json json_t *inspect = load(argv[1]);
  cleanup_json json_t *image = load(argv[2]);
  cleanup_json json_t *id_names = load(argv[3]);
  if (!inspect || !image || !id_names)
    return 1;
  cleanup_json json_t *labels = json_pack("{s:O}", RP_DOCKER_LABEL_REPLACES,
                                          json_object_get(inspect, "Id"));
  struct rp_docker_create_opts opts = {
      .image = argc == 5 ? argv[4] : NULL,
      .id_names = id_names,
      .extra_labels = labels,
  };
  cleanup_json json_t *body = NULL;
  cleanup_json json_t *extra = NULL;
  struct rp_error *err = NULL;
  if (rp_docker_create_body(inspect, image, &opts, &body, &extra, &err) < 0) {
    fprintf(stderr, "emit-body: %s\n", err->message);
    rp_error_free(err);
    return 1;
  }
  cleanup_json json_t *out =
      json_pack("{s:O, s:O}", "body", body, "extra_networks", extra);
  json_dumpf(out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
  fputc('\n', stdout);
  return 0;
}
