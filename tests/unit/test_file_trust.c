/* The file trust rules (src/file_trust.c) on real files in a temporary
 * directory: modes, owners (another uid, when the tests run as root),
 * directories on the path (writable, sticky, owned by another user),
 * symbolic links (to a file, in an untrusted directory, on the way), and
 * the files that use the rules: the configuration, the audit log (never
 * through a link), the signing key and the listener's token (secrets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "bearer.h"
#include "config.h"
#include "file_trust.h"
#include "util.h"

/* A uid that owns nothing here: "another user". */
#define OTHER_UID 54321

static char dir[64];

static int
setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/rp-trust-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int
teardown(void **state)
{
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

/* DIR/name, owned. */
static char *
at(const char *name)
{
  return rp_xasprintf("%s/%s", dir, name);
}

static char *
file(const char *name, mode_t mode, const char *content)
{
  char *p = at(name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
  assert_int_equal(chmod(p, mode), 0);
  return p;
}

static void
ok(const char *path, unsigned flags)
{
  struct rp_error *err = NULL;
  int rc = rp_file_trust_check(path, "test file", flags, &err);
  if (rc != 0) {
    char got[512];
    snprintf(got, sizeof(got), "%s", err->message);
    rp_error_free(err);
    fail_msg("%s refused: %s", path, got);
  }
}

/* Refused, and the message is exactly want (with %s for the path, twice at
 * most) or contains it. */
static void
refused(const char *path, unsigned flags, const char *want)
{
  struct rp_error *err = NULL;
  assert_int_equal(rp_file_trust_check(path, "test file", flags, &err), -1);
  assert_int_equal(err->code, RP_ECONFIG);
  char *prefix = rp_xasprintf("test file %s: ", path);
  bool good = strncmp(err->message, prefix, strlen(prefix)) == 0 &&
              strstr(err->message, want) != NULL;
  char got[512];
  snprintf(got, sizeof(got), "%s", err->message);
  free(prefix);
  rp_error_free(err);
  if (!good)
    fail_msg("%s:\n  got:  %s\n  want: test file %s: ...%s...", path, got, path,
             want);
}

static bool
root(void)
{
  return geteuid() == 0;
}

static void
test_modes(void **state)
{
  (void)state;
  cleanup_free char *p = file("conf", 0644, "x");
  ok(p, 0);
  refused(p, RP_TRUST_SECRET,
          "a secret readable by its group or others (mode 0644): chmod 600");
  assert_int_equal(chmod(p, 0600), 0);
  ok(p, RP_TRUST_SECRET);
  assert_int_equal(chmod(p, 0400), 0);
  ok(p, RP_TRUST_SECRET);
  assert_int_equal(chmod(p, 0640), 0);
  refused(p, RP_TRUST_SECRET, "readable by its group or others (mode 0640)");
  assert_int_equal(chmod(p, 0664), 0);
  refused(p, 0,
          "writable by its group or others (mode 0664), who could change "
          "it: chmod go-w");
  assert_int_equal(chmod(p, 0602), 0);
  refused(p, 0, "writable by its group or others (mode 0602)");
  /* Not a file at all. */
  cleanup_free char *d = at("sub");
  assert_int_equal(mkdir(d, 0700), 0);
  refused(d, 0, "not a regular file");
  refused("/", 0, "not a regular file");
}

static void
test_owners(void **state)
{
  (void)state;
  if (!root())
    skip();
  cleanup_free char *p = file("conf", 0644, "x");
  assert_int_equal(chown(p, OTHER_UID, 0), 0);
  refused(p, 0,
          "owned by uid 54321, neither root nor reaper's user (uid 0), who "
          "could change it: chown root");
  /* Another user's group, with no group write, changes nothing. */
  assert_int_equal(chown(p, 0, OTHER_UID), 0);
  ok(p, 0);

  /* A directory on the way owned by another user: they could replace the
   * file, whatever its own mode. */
  cleanup_free char *sub = at("theirs");
  assert_int_equal(mkdir(sub, 0755), 0);
  cleanup_free char *in = at("theirs/conf");
  FILE *f = fopen(in, "w");
  fclose(f);
  chmod(in, 0600);
  ok(in, RP_TRUST_SECRET);
  assert_int_equal(chown(sub, OTHER_UID, 0), 0);
  cleanup_free char *want = rp_xasprintf(
      "its directory %s is owned by uid 54321, neither root nor reaper's "
      "user (uid 0), who could replace the file: chown root %s",
      sub, sub);
  refused(in, 0, want);
}

static void
test_directories(void **state)
{
  (void)state;
  cleanup_free char *sub = at("d");
  assert_int_equal(mkdir(sub, 0755), 0);
  cleanup_free char *p = at("d/conf");
  FILE *f = fopen(p, "w");
  fclose(f);
  chmod(p, 0644);
  ok(p, 0);
  /* Writable by others without the sticky bit: anyone could rename the
   * file away and put theirs in its place. */
  assert_int_equal(chmod(sub, 0777), 0);
  cleanup_free char *want =
      rp_xasprintf("its directory %s is writable by its group or others "
                   "(mode 0777) without the sticky bit, so another user "
                   "could replace the file: chmod go-w %s",
                   sub, sub);
  refused(p, 0, want);
  assert_int_equal(chmod(sub, 0775), 0);
  refused(p, 0, "(mode 0775) without the sticky bit");
  /* Sticky, as /tmp: nobody else may rename or remove it there. */
  assert_int_equal(chmod(sub, 01777), 0);
  ok(p, 0);
  /* A directory higher up counts as much as the nearest one. */
  assert_int_equal(chmod(sub, 0755), 0);
  assert_int_equal(chmod(dir, 0777), 0);
  cleanup_free char *high = rp_xasprintf("its directory %s is writable", dir);
  refused(p, 0, high);
  assert_int_equal(chmod(dir, 0700), 0);
  /* Relative paths and dots resolve as the kernel does. */
  char cwd[512];
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  assert_int_equal(chdir(dir), 0);
  ok("d/conf", 0);
  ok("./d/../d/./conf", 0);
  assert_int_equal(chmod(sub, 0777), 0);
  refused("d/conf", 0, "without the sticky bit");
  assert_int_equal(chmod(sub, 0755), 0);
  assert_int_equal(chdir(cwd), 0);
  /* Missing: an error, unless the caller will create it. */
  cleanup_free char *absent = at("d/absent");
  refused(absent, 0, "cannot check");
  ok(absent, RP_TRUST_ABSENT_OK);
  /* ...but even then its directory must be sound. */
  assert_int_equal(chmod(sub, 0777), 0);
  refused(absent, RP_TRUST_ABSENT_OK, "without the sticky bit");
  assert_int_equal(chmod(sub, 0755), 0);
}

static void
test_symlinks(void **state)
{
  (void)state;
  cleanup_free char *real = file("real.yaml", 0644, "x");
  cleanup_free char *link = at("link.yaml");
  assert_int_equal(symlink("real.yaml", link), 0);
  /* A link in a sound directory to a sound file is fine, as is the file
   * it names... */
  ok(link, 0);
  /* ...unless the caller writes only through the file's own name. */
  refused(link, RP_TRUST_NO_SYMLINK,
          "a symbolic link (to real.yaml): refused, as reaper writes only "
          "through the file's own name");
  /* The target's rules apply. */
  assert_int_equal(chmod(real, 0666), 0);
  refused(link, 0, "writable by its group or others (mode 0666)");
  assert_int_equal(chmod(real, 0644), 0);

  /* A link kept in a directory others may write: they can point it
   * elsewhere, however sound the target. */
  cleanup_free char *open_dir = at("open");
  assert_int_equal(mkdir(open_dir, 0777), 0);
  assert_int_equal(chmod(open_dir, 0777), 0);
  cleanup_free char *link2 = at("open/link.yaml");
  assert_int_equal(symlink(real, link2), 0);
  cleanup_free char *want =
      rp_xasprintf("its directory %s is writable by its group", open_dir);
  refused(link2, 0, want);

  /* A link on the way (a directory that is a link) is followed, and the
   * directory it names is checked. */
  cleanup_free char *sub = at("sub");
  assert_int_equal(mkdir(sub, 0755), 0);
  cleanup_free char *inner = file("sub/conf", 0600, "x");
  cleanup_free char *via = at("via");
  assert_int_equal(symlink(sub, via), 0);
  cleanup_free char *through = at("via/conf");
  ok(through, RP_TRUST_SECRET | RP_TRUST_NO_SYMLINK);
  assert_int_equal(chmod(sub, 0777), 0);
  cleanup_free char *want2 =
      rp_xasprintf("its directory %s is writable by its group", sub);
  refused(through, 0, want2);
  assert_int_equal(chmod(sub, 0755), 0);

  /* Loops end. */
  cleanup_free char *a = at("loop-a"), *b = at("loop-b");
  assert_int_equal(symlink(b, a), 0);
  assert_int_equal(symlink(a, b), 0);
  refused(a, 0, "too many symbolic links");
}

/* The files that use the rules say so in their own words. */
static void
test_callers(void **state)
{
  (void)state;
  struct rp_error *err = NULL;
  /* The configuration: writable by others, refused with the way out. */
  cleanup_free char *conf = file("config.yaml", 0666, "providers: []\n");
  assert_int_equal(rp_config_check_permissions(conf, &err), -1);
  cleanup_free char *want = rp_xasprintf(
      "configuration %s: writable by its group or others (mode 0666), who "
      "could change it: chmod go-w %s (or pass --allow-insecure-config)",
      conf, conf);
  assert_string_equal(err->message, want);
  rp_error_free(err);
  err = NULL;
  chmod(conf, 0644);
  assert_int_equal(rp_config_check_permissions(conf, &err), 0);

  /* The token: a secret. */
  cleanup_free char *token = file("token", 0640, "secret-token\n");
  struct rp_bearer tok;
  assert_int_equal(rp_bearer_load(token, &tok, &err), -1);
  assert_non_null(strstr(err->message, "listen token file"));
  assert_non_null(strstr(err->message, "a secret readable by its group"));
  rp_error_free(err);
  err = NULL;
  chmod(token, 0600);
  assert_int_equal(rp_bearer_load(token, &tok, &err), 0);
  assert_true(rp_bearer_matches(&tok, "Bearer secret-token"));

  /* The signing key: a secret, checked before it is even read. */
  cleanup_free char *key = file("audit.key", 0644, "not read\n");
  struct rp_audit_key *k = NULL;
  assert_int_equal(rp_audit_key_load(key, true, &k, &err), -1);
  assert_non_null(strstr(err->message, "a secret readable by its group"));
  rp_error_free(err);
  err = NULL;
  /* A public key, for verify, is no secret. */
  assert_int_equal(rp_audit_key_load(key, false, &k, &err), -1);
  assert_null(strstr(err->message, "secret"));
  rp_error_free(err);
  err = NULL;

  /* The audit log: never through a symbolic link, whatever it names. */
  cleanup_free char *real = file("real.jsonl", 0600, "");
  cleanup_free char *log = at("audit.jsonl");
  assert_int_equal(symlink(real, log), 0);
  struct rp_audit *a = NULL;
  assert_int_equal(rp_audit_open(log, &a, NULL, &err), -1);
  cleanup_free char *want_log = rp_xasprintf(
      "audit log %s: a symbolic link (to %s): refused, as reaper writes "
      "only through the file's own name; name the file itself",
      log, real);
  assert_string_equal(err->message, want_log);
  rp_error_free(err);
  err = NULL;
  struct stat st;
  assert_int_equal(stat(real, &st), 0);
  assert_int_equal(st.st_size, 0); /* nothing written through it */
  /* In a directory others may write: refused. */
  cleanup_free char *open_dir = at("logs");
  assert_int_equal(mkdir(open_dir, 0777), 0);
  chmod(open_dir, 0777);
  cleanup_free char *log2 = at("logs/audit.jsonl");
  assert_int_equal(rp_audit_open(log2, &a, NULL, &err), -1);
  assert_non_null(strstr(err->message, "audit log"));
  assert_non_null(strstr(err->message, "without the sticky bit"));
  rp_error_free(err);
  err = NULL;
  assert_int_equal(access(log2, F_OK), -1); /* not created */
  /* A rotated part that is a link is not read either. */
  cleanup_free char *parts = at("parts");
  assert_int_equal(mkdir(parts, 0700), 0);
  cleanup_free char *part = at("parts/audit.jsonl.20260101T000000Z");
  assert_int_equal(symlink(real, part), 0);
  cleanup_free char *log3 = at("parts/audit.jsonl");
  assert_int_equal(rp_audit_open(log3, &a, NULL, &err), -1);
  assert_non_null(strstr(err->message, part));
  assert_non_null(strstr(err->message, "a symbolic link"));
  rp_error_free(err);
  err = NULL;
  /* A sound place: opened and created 0600. */
  chmod(open_dir, 0700);
  assert_int_equal(rp_audit_open(log2, &a, NULL, &err), 0);
  rp_audit_close(a);
  assert_int_equal(stat(log2, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_owners, setup, teardown),
      cmocka_unit_test_setup_teardown(test_directories, setup, teardown),
      cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_callers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
