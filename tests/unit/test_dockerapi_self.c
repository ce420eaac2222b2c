/* rp_dockerapi_self_container_id(): reaper's own container is told by the
 * files the engine bind-mounts at /etc/hostname, /etc/hosts and
 * /etc/resolv.conf in reaper's own mount namespace; never by another
 * container's directory that a host's mount table also lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dockerapi/dockerapi.h"
#include "util.h"

#define ID_A "4f2b1c0e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
#define ID_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char *
self_from(const char *mountinfo)
{
  char path[] = "/tmp/rp-mountinfo-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs(mountinfo, f);
  fclose(f);
  char *id = rp_dockerapi_self_container_id(path);
  unlink(path);
  return id;
}

/* Inside a Docker container, cgroup v2 with a private cgroup namespace:
 * only the mounts say which container this is. */
static void
test_docker_container(void **state)
{
  (void)state;
  char *id = self_from(
      "602 540 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/x\n"
      "611 602 0:56 / /sys/fs/cgroup ro - cgroup2 cgroup rw\n"
      "620 602 253:1 /var/lib/docker/containers/" ID_A
      "/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw\n"
      "621 602 253:1 /var/lib/docker/containers/" ID_A
      "/hostname /etc/hostname rw - ext4 /dev/vda rw\n"
      "622 602 253:1 /var/lib/docker/containers/" ID_A
      "/hosts /etc/hosts rw - ext4 /dev/vda rw\n");
  assert_non_null(id);
  assert_string_equal(id, ID_A);
  free(id);
}

/* Inside a Podman container. */
static void
test_podman_container(void **state)
{
  (void)state;
  char *id =
      self_from("700 600 0:60 / / rw - overlay overlay rw\n"
                "710 700 0:22 /containers/storage/overlay-containers/" ID_B
                "/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n");
  assert_non_null(id);
  assert_string_equal(id, ID_B);
  free(id);
}

/* On the host: its table lists other containers' directories (their shm
 * mounts, a container's files mounted somewhere by hand): none is reaper's
 * own, so none is spared. */
static void
test_host_is_no_container(void **state)
{
  (void)state;
  char *id = self_from("22 1 253:1 / / rw - ext4 /dev/vda rw\n"
                       "300 22 0:70 / /var/lib/docker/containers/" ID_A
                       "/mounts/shm rw - tmpfs shm rw\n"
                       "301 22 253:1 /var/lib/docker/containers/" ID_B
                       "/hostname /srv/copy/hostname rw - ext4 /dev/vda rw\n"
                       "302 22 253:1 /var/lib/docker/containers/" ID_B
                       "/hostname-fake /etc/hostname rw - ext4 /dev/vda rw\n");
  assert_null(id);
  /* No file at all: no container. */
  assert_null(rp_dockerapi_self_container_id("/nonexistent/mountinfo"));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_docker_container),
      cmocka_unit_test(test_podman_container),
      cmocka_unit_test(test_host_is_no_container),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
