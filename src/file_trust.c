/* The file trust rules (file_trust.h).
 *
 * The path is resolved here component by component, as the kernel does,
 * rather than with realpath(): every directory that is traversed is
 * checked, including the ones that only hold a symbolic link on the way
 * (/home/bob/reaper.yaml -> /etc/reaper/config.yaml: bob can point his link
 * elsewhere whatever /etc says).  Only stat, lstat and readlink: no user
 * database lookups (no NSS), so it is safe on the thread pool too. */
#include "file_trust.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* As the kernel's own limit on links followed in one lookup. */
#define MAX_LINKS 40

static bool
trusted_owner(uid_t uid)
{
  return uid == 0 || uid == geteuid();
}

static int refuse(struct rp_error **err, const char *what, const char *path,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
refuse(struct rp_error **err, const char *what, const char *path,
       const char *fmt, ...)
{
  cleanup_free char *rule = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&rule, fmt, ap) < 0)
    rule = NULL;
  va_end(ap);
  return rp_error_set(err, RP_ECONFIG, "%s%s%s: %s", what ? what : "",
                      what ? " " : "", path, rule ? rule : "refused");
}

/* A directory on the way to the file: nobody but root and reaper's user may
 * add, rename or remove entries in it. */
static int
check_dir(const char *dir, const char *what, const char *path,
          struct rp_error **err)
{
  struct stat st;
  if (stat(dir, &st) != 0)
    return refuse(err, what, path, "cannot check its directory %s: %s", dir,
                  strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return refuse(err, what, path, "%s is not a directory", dir);
  if (!trusted_owner(st.st_uid))
    return refuse(err, what, path,
                  "its directory %s is owned by uid %u, neither root nor "
                  "reaper's user (uid %u), who could replace the file: "
                  "chown root %s",
                  dir, (unsigned)st.st_uid, (unsigned)geteuid(), dir);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    return refuse(err, what, path,
                  "its directory %s is writable by its group or others "
                  "(mode %04o) without the sticky bit, so another user could "
                  "replace the file: chmod go-w %s",
                  dir, (unsigned)(st.st_mode & 07777), dir);
  return 0;
}

static int
check_file(const struct stat *st, const char *what, const char *path,
           unsigned flags, struct rp_error **err)
{
  if (!S_ISREG(st->st_mode))
    return refuse(err, what, path, "not a regular file");
  if (!trusted_owner(st->st_uid))
    return refuse(err, what, path,
                  "owned by uid %u, neither root nor reaper's user (uid %u), "
                  "who could change it: chown root %s",
                  (unsigned)st->st_uid, (unsigned)geteuid(), path);
  if (st->st_mode & (S_IWGRP | S_IWOTH))
    return refuse(err, what, path,
                  "writable by its group or others (mode %04o), who could "
                  "change it: chmod go-w %s",
                  (unsigned)(st->st_mode & 07777), path);
  if ((flags & RP_TRUST_SECRET) && (st->st_mode & (S_IRGRP | S_IROTH)))
    return refuse(err, what, path,
                  "a secret readable by its group or others (mode %04o): "
                  "chmod 600 %s",
                  (unsigned)(st->st_mode & 07777), path);
  return 0;
}

/* dir + "/" + name, without doubling the slash of "/". */
static char *
join(const char *dir, const char *name, size_t len)
{
  return rp_xasprintf("%s%s%.*s", dir, strcmp(dir, "/") == 0 ? "" : "/",
                      (int)len, name);
}

int
rp_file_trust_check(const char *path, const char *what, unsigned flags,
                    struct rp_error **err)
{
  if (!path || !*path)
    return rp_error_set(err, RP_ECONFIG, "%s: no path", what ? what : "file");
  /* What is left to resolve, and the directory resolved so far. */
  cleanup_free char *todo = NULL;
  if (path[0] == '/') {
    todo = rp_xstrdup(path);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
      return refuse(err, what, path, "cannot tell the current directory: %s",
                    strerror(errno));
    todo = rp_xasprintf("%s/%s", cwd, path);
  }
  cleanup_free char *cur = rp_xstrdup("/");
  if (check_dir(cur, what, path, err) != 0)
    return -1;
  int links = 0;
  const char *p = todo;
  for (;;) {
    while (*p == '/')
      p++;
    if (*p == '\0') /* "/" or a path ending in "/": not a file */
      return refuse(err, what, path, "not a regular file");
    size_t len = strcspn(p, "/");
    const char *rest = p + len;
    while (*rest == '/')
      rest++;
    bool last = *rest == '\0';
    if (len == 1 && p[0] == '.') {
      p += len;
      continue;
    }
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      /* Up from a directory already checked, to one already checked. */
      char *slash = strrchr(cur, '/');
      if (slash == cur)
        cur[1] = '\0';
      else if (slash)
        *slash = '\0';
      p += len;
      continue;
    }
    cleanup_free char *next = join(cur, p, len);
    struct stat st;
    if (lstat(next, &st) != 0) {
      if (errno == ENOENT && last && (flags & RP_TRUST_ABSENT_OK))
        return 0;
      return refuse(err, what, path, "cannot check %s: %s", next,
                    strerror(errno));
    }
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = readlink(next, target, sizeof(target) - 1);
      if (n < 0)
        return refuse(err, what, path, "cannot read the link %s: %s", next,
                      strerror(errno));
      target[n] = '\0';
      if (last && (flags & RP_TRUST_NO_SYMLINK))
        return refuse(err, what, path,
                      "a symbolic link (to %s): refused, as reaper writes "
                      "only through the file's own name; name the file "
                      "itself",
                      target);
      if (++links > MAX_LINKS)
        return refuse(err, what, path, "too many symbolic links");
      /* The link lives in cur, checked; what it names is resolved next,
       * from "/" or from cur. */
      char *again = rp_xasprintf("%s/%s", target, rest);
      free(todo);
      todo = again;
      p = todo;
      if (target[0] == '/') {
        free(cur);
        cur = rp_xstrdup("/");
      }
      continue;
    }
    if (last)
      return check_file(&st, what, path, flags, err);
    if (check_dir(next, what, path, err) != 0)
      return -1;
    free(cur);
    cur = RP_STEAL(next);
    p = rest;
  }
}
