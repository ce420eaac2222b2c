/* Rotated parts of the audit log: their names, listing them in chain order,
 * and the rename that makes one.
 *
 * A part is named for the UTC time of its rotation, PATH.YYYYMMDDTHHMMSSZ,
 * so `ls` shows them in order and a name says when its file was closed.
 * Names are never reused or shifted (unlike logrotate's .1, .2, which
 * renames every part at every rotation: not crash-safe): a second rotation
 * within the same second gets PATH.YYYYMMDDTHHMMSSZ.1, .2, ...  Names sort
 * by time only while the clock does; the chain is ordered by seq, so
 * rp_audit_files orders parts by the seq of their first line. */
#include "audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strv.h"
#include "util.h"

/* More parts per second than this means something else is wrong. */
#define MAX_SAME_SECOND 1000

char *
rp_audit_dir_of(const char *path)
{
  const char *slash = strrchr(path, '/');
  if (!slash)
    return rp_xstrdup(".");
  if (slash == path)
    return rp_xstrdup("/");
  return rp_xstrndup(path, (size_t)(slash - path));
}

int
rp_audit_fsync_dir(const char *dir, struct rp_error **err)
{
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0)
    return rp_error_set(err, errno, "fsync directory %s: %s", dir,
                        strerror(errno));
  return 0;
}

static const char *
base_of(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static bool
digits(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

bool
rp_audit_is_part(const char *base, const char *name)
{
  size_t b = strlen(base);
  if (strncmp(name, base, b) != 0 || name[b] != '.')
    return false;
  const char *t = name + b + 1; /* YYYYMMDDTHHMMSSZ */
  if (strlen(t) < 16 || !digits(t, 8) || t[8] != 'T' || !digits(t + 9, 6) ||
      t[15] != 'Z')
    return false;
  const char *n = t + 16;
  if (*n == '\0')
    return true;
  return n[0] == '.' && n[1] != '\0' && digits(n + 1, strlen(n + 1));
}

static char *
part_name(const char *path, time_t t, unsigned n)
{
  struct tm tm;
  gmtime_r(&t, &tm);
  char stamp[32];
  strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
  return n ? rp_xasprintf("%s.%s.%u", path, stamp, n)
           : rp_xasprintf("%s.%s", path, stamp);
}

int
rp_audit_rename_part(const char *path, time_t t, char **part,
                     struct rp_error **err)
{
  *part = NULL;
  for (unsigned n = 0; n < MAX_SAME_SECOND; n++) {
    cleanup_free char *name = part_name(path, t, n);
    int rc = renameat2(AT_FDCWD, path, AT_FDCWD, name, RENAME_NOREPLACE);
    if (rc != 0 && errno == EINVAL) {
      /* A file system without RENAME_NOREPLACE: the log's lock keeps other
       * writers of this log out, so looking first is enough. */
      if (access(name, F_OK) == 0)
        continue;
      rc = rename(path, name);
    }
    if (rc != 0 && errno == EEXIST)
      continue;
    if (rc != 0)
      return rp_error_set(err, RP_EAUDIT, "rotate: rename %s to %s: %s", path,
                          name, strerror(errno));
    *part = RP_STEAL(name);
    cleanup_free char *dir = rp_audit_dir_of(path);
    if (rp_audit_fsync_dir(dir, err) != 0)
      return rp_error_prefix(err, "rotate");
    return 0;
  }
  return rp_error_set(err, RP_EAUDIT,
                      "rotate %s: %d parts already named for this second", path,
                      MAX_SAME_SECOND);
}

/* --- listing ------------------------------------------------------------ */

struct part {
  char *path; /* owned */
  uint64_t first_seq;
  bool known;
};

static int
first_seq_cb(void *arg, const json_t *line)
{
  struct part *p = arg;
  json_t *seq = json_object_get(line, "seq");
  if (!json_is_integer(seq) || json_integer_value(seq) < 1)
    return 0;
  p->first_seq = (uint64_t)json_integer_value(seq);
  p->known = true;
  return 1; /* enough */
}

static int
part_cmp(const void *x, const void *y)
{
  const struct part *a = x, *b = y;
  if (a->known != b->known)
    return a->known ? -1 : 1;
  if (a->known && a->first_seq != b->first_seq)
    return a->first_seq < b->first_seq ? -1 : 1;
  return strcmp(a->path, b->path);
}

void
rp_audit_files_free(char **files)
{
  rp_strv_free(files);
}

int
rp_audit_files(const char *path, char ***out, size_t *n_out,
               struct rp_error **err)
{
  *out = NULL;
  if (n_out)
    *n_out = 0;
  cleanup_free char *dir = rp_audit_dir_of(path);
  const char *base = base_of(path);
  struct part *parts = NULL;
  size_t n = 0;
  DIR *d = opendir(dir);
  if (!d && errno != ENOENT)
    return rp_error_set(err, errno, "list %s: %s", dir, strerror(errno));
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!rp_audit_is_part(base, e->d_name))
      continue;
    /* The directory as path wrote it ("" when path has none). */
    char *p = rp_xasprintf("%.*s%s", (int)(base - path), path, e->d_name);
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
      free(p);
      continue;
    }
    parts = rp_xrealloc(parts, (n + 1) * sizeof(*parts));
    parts[n] = (struct part){.path = p};
    /* Unreadable parts sort by name after the others; verify says why. */
    rp_audit_read(p, first_seq_cb, &parts[n], NULL, NULL);
    n++;
  }
  if (d)
    closedir(d);
  if (n > 1)
    qsort(parts, n, sizeof(*parts), part_cmp);
  struct stat st;
  bool live = stat(path, &st) == 0;
  char **v = rp_xcalloc(n + 2, sizeof(char *));
  for (size_t i = 0; i < n; i++)
    v[i] = parts[i].path;
  free(parts);
  if (live)
    v[n++] = rp_xstrdup(path);
  *out = v;
  if (n_out)
    *n_out = n;
  return 0;
}
