/* What the machine says about itself, and the once-per-boot marker. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/host.h"
#include "util.h"

static int
read_file(const char *path, char *buf, size_t len, struct rp_error **err)
{
  cleanup_fclose FILE *f = fopen(path, "re");
  if (!f)
    return rp_error_set(err, errno, "read %s: %s", path, strerror(errno));
  size_t n = fread(buf, 1, len - 1, f);
  if (ferror(f))
    return rp_error_set(err, EIO, "read %s: read error", path);
  buf[n] = '\0';
  return 0;
}

int
rp_host_boot_time_ms(const char *proc, int64_t *out, struct rp_error **err)
{
  char path[256];
  const size_t len = 1 << 20; /* /proc/stat grows with the CPUs */
  cleanup_free char *buf = rp_xmalloc(len);
  snprintf(path, sizeof(path), "%s/stat", proc);
  if (read_file(path, buf, len, err) < 0)
    return -1;
  const char *p =
      strncmp(buf, "btime ", 6) == 0 ? buf : strstr(buf, "\nbtime ");
  if (!p)
    return rp_error_set(err, RP_EPROTO, "%s: no btime line", path);
  p += p == buf ? 6 : 7;
  char *end;
  long long v = strtoll(p, &end, 10);
  if (end == p || v <= 0)
    return rp_error_set(err, RP_EPROTO, "%s: btime is not a time", path);
  *out = (int64_t)v * 1000;
  return 0;
}

int
rp_host_boot_id(const char *proc, char *buf, size_t len, struct rp_error **err)
{
  char path[256], raw[128];
  snprintf(path, sizeof(path), "%s/sys/kernel/random/boot_id", proc);
  if (read_file(path, raw, sizeof(raw), err) < 0)
    return -1;
  raw[strcspn(raw, "\n")] = '\0';
  /* A UUID: it names a file, so nothing else may pass. */
  bool ok = strlen(raw) == 36;
  for (size_t i = 0; ok && i < 36; i++)
    ok = (i == 8 || i == 13 || i == 18 || i == 23)
             ? raw[i] == '-'
             : isxdigit((unsigned char)raw[i]) != 0;
  if (!ok)
    return rp_error_set(err, RP_EPROTO, "%s: not a boot id: \"%s\"", path, raw);
  if (len < 37)
    return rp_error_set(err, EINVAL, "boot id: buffer too small");
  memcpy(buf, raw, 37);
  return 0;
}

int
rp_host_identity(const char *machine_id_path, char **id, char **name,
                 struct rp_error **err)
{
  char host[256] = "";
  if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
    return rp_error_set(err, errno ? errno : EIO, "gethostname: %s",
                        strerror(errno));
  char mid[128] = "";
  cleanup_error struct rp_error *ignored = NULL;
  if (machine_id_path &&
      read_file(machine_id_path, mid, sizeof(mid), &ignored) == 0) {
    mid[strcspn(mid, "\n")] = '\0';
    bool ok = strlen(mid) == 32;
    for (size_t i = 0; ok && i < 32; i++)
      ok = isxdigit((unsigned char)mid[i]) != 0;
    if (!ok)
      mid[0] = '\0';
  }
  *id = rp_xstrdup(mid[0] ? mid : host);
  *name = rp_xstrdup(host);
  return 0;
}

char *
rp_host_marker_path(const char *dir, const char *boot_id)
{
  return rp_xasprintf("%s/host-replace.%s", dir, boot_id);
}

bool
rp_host_marker_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

static int
fsync_dir(const char *dir)
{
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0)
    return -1;
  return 0;
}

int
rp_host_marker_create(const char *path, const char *content,
                      struct rp_error **err)
{
  cleanup_free char *copy = rp_xstrdup(path);
  const char *dir = dirname(copy);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return rp_error_set(err, errno, "create %s: %s", dir, strerror(errno));
  cleanup_close int fd =
      open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == EEXIST)
    return rp_error_set(err, RP_ECONFLICT,
                        "the marker %s exists: the replace action already "
                        "ran in this boot",
                        path);
  if (fd < 0)
    return rp_error_set(err, errno, "create %s: %s", path, strerror(errno));
  size_t n = strlen(content), done = 0;
  while (done < n) {
    ssize_t w = write(fd, content + done, n - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return rp_error_set(err, errno, "write %s: %s", path, strerror(errno));
    done += (size_t)w;
  }
  /* The marker must be on disk before the action: a reboot that follows
   * at once must not lose it (it would not matter after a reboot, whose
   * boot id differs, but a failed action must not be retried). */
  if (fsync(fd) != 0)
    return rp_error_set(err, errno, "fsync %s: %s", path, strerror(errno));
  if (fsync_dir(dir) != 0)
    return rp_error_set(err, errno, "fsync %s: %s", dir, strerror(errno));
  return 0;
}
