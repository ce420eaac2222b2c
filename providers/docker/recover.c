/* Crash recovery for the docker provider: what a recycle that reaper did not
 * live to finish left in the engine, put right.  reaper marks its own work
 * so that it can be found here: the old container is renamed
 * NAME-reaper-old while its replacement, created as NAME, carries the label
 * reaper.replaces=<old id>.
 *
 * For each unfinished recycle the audit log names (and nothing else: a
 * container named NAME-reaper-old that the log does not name is a name,
 * not a fact, and is left alone):
 *   old and a running replacement  -> finished: old stopped and removed
 *   old and a replacement not running -> rolled back: replacement removed,
 *                                       old renamed back and started
 *   old and no replacement         -> rolled back: old renamed back, started
 *   a replacement and no old       -> finished (the replacement started)
 *   neither                        -> said, not ok (never expected: the old
 *                                     one is only removed after its
 *                                     replacement runs)
 * Each step is one API call, in order; recovery of one item ends at its
 * first failed step, reports it, and goes on with the next. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "docker.h"
#include "runner.h"
#include "log.h"
#include "util.h"

struct recover {
  struct rp_docker *d; /* borrowed */
  rp_recover_item_cb item_cb;
  void (*done_cb)(void *arg, const struct rp_error *err);
  void *arg;
  json_t *items; /* owned: [{id, name, strategy, grace_ms}] from the log */
  json_t *work;  /* owned: what to do, one object per item */
  size_t next;   /* the work item in progress */
  size_t op;     /* its next operation */
};

static void work_next(struct recover *rv);

static bool
has_suffix(const char *s, const char *suffix)
{
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *
container_name(json_t *c)
{
  const char *n =
      json_string_value(json_array_get(json_object_get(c, "Names"), 0));
  return n && n[0] == '/' ? n + 1 : n;
}

static bool
is_running(json_t *c)
{
  const char *st = json_string_value(json_object_get(c, "State"));
  return st && strcmp(st, "running") == 0;
}

/* The replacement of old_id: a container labelled reaper.replaces=old_id,
 * preferably named `name`. */
static json_t *
find_replacement(json_t *all, const char *old_id, const char *name)
{
  size_t i;
  json_t *c, *any = NULL;
  json_array_foreach(all, i, c)
  {
    const char *r = json_string_value(json_object_get(
        json_object_get(c, "Labels"), RP_DOCKER_LABEL_REPLACES));
    if (!r || strcmp(r, old_id) != 0)
      continue;
    const char *n = container_name(c);
    if (name && n && strcmp(n, name) == 0)
      return c;
    any = c;
  }
  return any;
}

static json_t *
find_by_id(json_t *all, const char *id)
{
  size_t i;
  json_t *c;
  json_array_foreach(all, i, c)
  {
    const char *cid = json_string_value(json_object_get(c, "Id"));
    if (cid && strcmp(cid, id) == 0)
      return c;
  }
  return NULL;
}

static void add_op(json_t *ops, const char *method, int64_t timeout_ms,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
add_op(json_t *ops, const char *method, int64_t timeout_ms, const char *fmt,
       ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *path = NULL;
  if (vasprintf(&path, fmt, ap) < 0)
    path = NULL;
  va_end(ap);
  json_array_append_new(ops, json_pack("{s:s, s:s, s:I}", "method", method,
                                       "path", path ? path : "", "timeout",
                                       (json_int_t)timeout_ms));
  free(path);
}

/* Decides what to do for one old container id (and its name in the log). */
static json_t *
plan_item(json_t *all, const char *id, const char *log_name,
          enum rp_strategy strategy, int64_t grace_ms)
{
  json_t *old = find_by_id(all, id);
  const char *old_name = old ? container_name(old) : NULL;
  bool renamed = old_name && has_suffix(old_name, RP_RUNNER_OLD_SUFFIX);
  cleanup_free char *base =
      renamed    ? rp_xstrndup(old_name,
                               strlen(old_name) - strlen(RP_RUNNER_OLD_SUFFIX))
      : log_name ? rp_xstrdup(log_name)
      : old_name ? rp_xstrdup(old_name)
                 : rp_xstrdup(id);
  json_t *repl = find_replacement(all, id, base);
  const char *repl_id =
      repl ? json_string_value(json_object_get(repl, "Id")) : NULL;
  json_t *ops = json_array();
  const char *action = RP_RECOVERY_NONE;
  char detail[512];
  const char *now_running = NULL;
  bool ok = true;
  int64_t stop_ms = grace_ms + 30000;
  long long t = (long long)((grace_ms + 999) / 1000);
  cleanup_free char *esc_base = rp_url_escape(base);

  if (strategy != RP_STRATEGY_RECREATE) {
    if (!old) {
      action = RP_RECOVERY_FINISHED;
      snprintf(detail, sizeof(detail), "the container is gone");
    } else if (strategy == RP_STRATEGY_RESTART) {
      if (!is_running(old))
        add_op(ops, "POST", 0, "/containers/%s/start", id);
      action = RP_RECOVERY_FINISHED;
      now_running = id;
      snprintf(detail, sizeof(detail), "restart: the container %s",
               is_running(old) ? "runs" : "was stopped and is started");
    } else if (is_running(old)) {
      snprintf(detail, sizeof(detail),
               "%s had not happened: the container still runs and is due",
               rp_strategy_name(strategy));
    } else {
      action = RP_RECOVERY_FINISHED;
      if (strategy == RP_STRATEGY_REMOVE)
        add_op(ops, "DELETE", stop_ms, "/containers/%s", id);
      snprintf(detail, sizeof(detail), "%s: the container was stopped%s",
               rp_strategy_name(strategy),
               strategy == RP_STRATEGY_REMOVE ? " and is removed" : "");
    }
  } else if (old && repl && is_running(repl)) {
    action = RP_RECOVERY_FINISHED;
    now_running = repl_id;
    if (is_running(old))
      add_op(ops, "POST", stop_ms, "/containers/%s/stop?t=%lld", id, t);
    add_op(ops, "DELETE", stop_ms, "/containers/%s", id);
    snprintf(detail, sizeof(detail),
             "the replacement %.12s runs as %s: the old container %s was "
             "%sremoved",
             repl_id, base, old_name, is_running(old) ? "stopped and " : "");
  } else if (old) {
    action = RP_RECOVERY_ROLLED_BACK;
    now_running = id;
    if (repl)
      add_op(ops, "DELETE", stop_ms, "/containers/%s?force=1", repl_id);
    if (renamed)
      add_op(ops, "POST", 0, "/containers/%s/rename?name=%s", id, esc_base);
    if (!is_running(old))
      add_op(ops, "POST", 0, "/containers/%s/start", id);
    if (!repl && !renamed && is_running(old)) {
      action = RP_RECOVERY_NONE;
      snprintf(detail, sizeof(detail),
               "the recycle had not begun in the engine: %s runs untouched",
               base);
    } else {
      snprintf(detail, sizeof(detail), "%s%s%s%s", repl ? "replacement " : "",
               repl ? repl_id : "", repl ? " (not running) removed; " : "",
               renamed || !is_running(old)
                   ? "the old container is back under its name and running"
                   : "the old container runs");
    }
  } else if (repl) {
    action = RP_RECOVERY_FINISHED;
    now_running = repl_id;
    if (!is_running(repl))
      add_op(ops, "POST", 0, "/containers/%s/start", repl_id);
    snprintf(detail, sizeof(detail),
             "the old container is gone and its replacement %.12s %s", repl_id,
             is_running(repl) ? "runs" : "is started");
  } else {
    ok = false;
    snprintf(detail, sizeof(detail),
             "neither the container nor a replacement exists any more");
  }
  return json_pack("{s:s, s:s, s:s, s:s?, s:s, s:b, s:o}", "id", id, "name",
                   base, "action", action, "replacement_id", now_running,
                   "detail", detail, "ok", ok, "ops", ops);
}

static void
report(struct recover *rv, json_t *w, const char *error)
{
  cleanup_free char *detail =
      error
          ? rp_xasprintf("%s; then failed: %s",
                         json_string_value(json_object_get(w, "detail")), error)
          : NULL;
  struct rp_recovery r = {
      .id = json_string_value(json_object_get(w, "id")),
      .name = json_string_value(json_object_get(w, "name")),
      .action = json_string_value(json_object_get(w, "action")),
      .replacement_id = json_string_value(json_object_get(w, "replacement_id")),
      .detail =
          detail ? detail : json_string_value(json_object_get(w, "detail")),
      .ok = !error && json_is_true(json_object_get(w, "ok")),
  };
  rv->item_cb(rv->arg, &r);
}

static void
op_cb(void *arg, const struct rp_dockerapi_reply *reply,
      const struct rp_error *err)
{
  struct recover *rv = arg;
  (void)reply;
  json_t *w = json_array_get(rv->work, rv->next);
  if (err && err->code != RP_ENOTFOUND) {
    report(rv, w, err->message);
    rv->next++;
    rv->op = 0;
  }
  work_next(rv);
}

static void
finish(struct recover *rv, const struct rp_error *err)
{
  struct rp_docker *d = rv->d;
  rv->done_cb(rv->arg, err);
  json_decref(rv->items);
  json_decref(rv->work);
  free(rv);
  d->recycles_in_flight--;
  rp_docker_check_stopped(d);
}

static void
work_next(struct recover *rv)
{
  for (;;) {
    json_t *w = json_array_get(rv->work, rv->next);
    if (!w) {
      finish(rv, NULL);
      return;
    }
    json_t *op = json_array_get(json_object_get(w, "ops"), rv->op);
    if (!op) {
      report(rv, w, NULL);
      rv->next++;
      rv->op = 0;
      continue;
    }
    rv->op++;
    cleanup_error struct rp_error *err = NULL;
    if (rp_dockerapi_call(&rv->d->api,
                          json_string_value(json_object_get(op, "method")),
                          json_string_value(json_object_get(op, "path")), NULL,
                          json_integer_value(json_object_get(op, "timeout")),
                          op_cb, rv, &err) == 0)
      return;
    report(rv, w, err->message);
    rv->next++;
    rv->op = 0;
  }
}

static void
listed_cb(void *arg, const struct rp_dockerapi_reply *r,
          const struct rp_error *err)
{
  struct recover *rv = arg;
  if (err || !json_is_array(r->body)) {
    struct rp_error *e = NULL;
    rp_error_set(&e, err ? err->code : RP_EPROTO, "list containers: %s",
                 err       ? err->message
                 : r->body ? "the answer is not a list"
                           : "the answer is not JSON");
    finish(rv, e);
    rp_error_free(e);
    return;
  }
  json_t *all = r->body;
  size_t i;
  json_t *it;
  /* What recovery does depends on which containers exist: an entry that is
   * not a container (no Id, no name) would make an old container look gone
   * and its replacement be kept, or hide a renamed old one.  Refused whole:
   * the agent acts on nothing of this provider and tries again. */
  json_array_foreach(all, i, it)
  {
    const char *id = json_string_value(json_object_get(it, "Id"));
    json_t *labels = json_object_get(it, "Labels");
    const char *bad =
        !json_is_object(it)       ? "is not an object"
        : !id || strlen(id) != 64 ? "has no container Id"
        : !container_name(it)     ? "has no name"
        : labels && !json_is_object(labels) && !json_is_null(labels)
            ? "has Labels that are not an object"
            : NULL;
    if (bad) {
      struct rp_error *e = NULL;
      rp_error_set(&e, RP_EPROTO, "list containers: item %zu %s", i, bad);
      finish(rv, e);
      rp_error_free(e);
      return;
    }
  }
  json_array_foreach(rv->items, i, it)
  {
    const char *id = json_string_value(json_object_get(it, "id"));
    json_array_append_new(
        rv->work,
        plan_item(all, id, json_string_value(json_object_get(it, "name")),
                  (enum rp_strategy)json_integer_value(
                      json_object_get(it, "strategy")),
                  json_integer_value(json_object_get(it, "grace_ms"))));
  }
  if (json_array_size(rv->work))
    rp_info("provider %s: recovery: %zu unfinished recycles to put right",
            rv->d->p->name, json_array_size(rv->work));
  work_next(rv);
}

int
rp_docker_recover(struct rp_docker *d, const struct rp_unfinished *items,
                  size_t n, rp_recover_item_cb item_cb,
                  void (*done_cb)(void *arg, const struct rp_error *err),
                  void *arg, struct rp_error **err)
{
  struct recover *rv = rp_xcalloc(1, sizeof(*rv));
  rv->d = d;
  rv->item_cb = item_cb;
  rv->done_cb = done_cb;
  rv->arg = arg;
  rv->items = json_array();
  rv->work = json_array();
  for (size_t i = 0; i < n; i++)
    if (items[i].id)
      json_array_append_new(
          rv->items,
          json_pack("{s:s, s:s?, s:i, s:I}", "id", items[i].id, "name",
                    items[i].name, "strategy", (int)items[i].strategy,
                    "grace_ms", (json_int_t)items[i].grace_ms));
  if (rp_dockerapi_call(&d->api, "GET", "/containers/json?all=1", NULL, 0,
                        listed_cb, rv, err) != 0) {
    json_decref(rv->items);
    json_decref(rv->work);
    free(rv);
    return -1;
  }
  d->recycles_in_flight++;
  return 0;
}
