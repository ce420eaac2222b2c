/* Policy decisions: which policy a workload falls under, whether it is left
 * alone, and when it is due.  Pure functions of their arguments; the
 * maintenance-window arithmetic lives in window.c. */
#include "policy.h"

#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "strv.h"
#include "util.h"

#define LABEL_EXCLUDE "reaper.exclude"
#define LABEL_POLICY "reaper.policy"
#define LABEL_MAX_AGE "reaper.max-age"
#define LABEL_DRAIN "reaper.drain"

/* How much of a label's value a warning quotes: enough to recognise it,
 * short enough to leave room for the rest of the message. */
#define QUOTE_MAX 40

/* A label value fit to quote in a warning: cut to QUOTE_MAX bytes, control
 * characters shown as '?', so that a hostile label cannot forge log lines. */
static const char *
quote_value(const char *v, char *buf, size_t len)
{
  size_t i = 0;
  for (; v[i] && i < QUOTE_MAX && i + 4 < len; i++)
    buf[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
  if (v[i] && i + 4 <= len) {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

/* Appends to a warning buffer, "; " between warnings; truncates. */
static void __attribute__((format(printf, 3, 4)))
warn_append(char *buf, size_t len, const char *fmt, ...)
{
  if (len == 0)
    return;
  size_t used = strnlen(buf, len - 1);
  if (used > 0 && used + 2 < len) {
    memcpy(buf + used, "; ", 3);
    used += 2;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + used, len - used, fmt, ap);
  va_end(ap);
}

/* "container local/web-1": how warnings name a workload. */
static void __attribute__((format(printf, 4, 5)))
warn_label(char *buf, size_t len, const struct rp_workload *w, const char *fmt,
           ...)
{
  char what[240];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  const char *kind = rp_kind_name(w->kind);
  warn_append(buf, len, "%s %s/%s: %s", kind ? kind : "workload",
              w->provider ? w->provider : "?", w->name ? w->name : "?", what);
}

bool
rp_labels_match(const struct rp_label_match *m, size_t n, const json_t *labels)
{
  for (size_t i = 0; i < n; i++) {
    const char *v = json_string_value(json_object_get(labels, m[i].key));
    if (!v)
      return false;
    if (m[i].value && strcmp(m[i].value, "*") != 0 &&
        strcmp(m[i].value, v) != 0)
      return false;
  }
  return true;
}

bool
rp_policy_matches(const struct rp_policy *p, const struct rp_workload *w)
{
  if (p->match_provider &&
      (!w->provider || strcmp(p->match_provider, w->provider) != 0))
    return false;
  if (p->match_kind >= 0 && p->match_kind != (int)w->kind)
    return false;
  if (!rp_labels_match(p->match_labels, p->n_match_labels, w->labels))
    return false;
  /* No FNM_PATHNAME: names are not paths, and "*" should match "a/b". */
  if (p->match_name && (!w->name || fnmatch(p->match_name, w->name, 0) != 0))
    return false;
  return true;
}

int64_t
rp_policy_jitter_ms(const char *provider, const char *id, int64_t max_age_ms,
                    double jitter)
{
  if (max_age_ms <= 0 || !(jitter > 0))
    return 0;
  if (jitter > 1)
    jitter = 1;
  provider = provider ? provider : "";
  id = id ? id : "";

  /* The hash input keeps the boundary between the two names, so that
   * ("ab", "c") and ("a", "bc") draw independently. */
  size_t plen = strlen(provider), ilen = strlen(id);
  cleanup_free unsigned char *in = rp_xmalloc(plen + 1 + ilen);
  memcpy(in, provider, plen + 1);
  memcpy(in + plen + 1, id, ilen);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(in, plen + 1 + ilen, md, &md_len, EVP_sha256(), NULL) != 1 ||
      md_len < 8)
    return 0; /* no SHA-256 (a broken libcrypto): no jitter, still safe */

  uint64_t h = 0;
  for (int i = 0; i < 8; i++)
    h = h << 8 | md[i];
  /* The top 53 bits fill a double's mantissa exactly: u is in [0, 1). */
  double u = (double)(h >> 11) * 0x1p-53;
  int64_t j = (int64_t)floor(u * jitter * (double)max_age_ms);
  return j < 0 ? 0 : j;
}

int
rp_budget_limit(const struct rp_budget *b, int matched)
{
  if (!b)
    return 1;
  int64_t n = b->value;
  if (b->percent) {
    int64_t m = matched > 0 ? matched : 0;
    int64_t v = b->value > 0 ? b->value : 0;
    n = (v * m + 99) / 100; /* rounds up, as PodDisruptionBudgets do */
  }
  if (n < 1)
    return 1;
  return n > INT_MAX ? INT_MAX : (int)n;
}

/* A decision's messages as they are written, in buffers of the caps
 * (policy.h); the decision keeps copies of the ones that are not empty. */
struct notes {
  char reason[RP_DECISION_REASON_MAX];
  char warning[RP_DECISION_WARNING_MAX];
};

/* Whether the configuration's exclude labels leave w alone: any one of them
 * matching is enough (an operator lists the kinds of things never to touch).
 * Writes the reason. */
static bool
excluded_by_config(const struct rp_config *c, const struct rp_workload *w,
                   struct notes *out)
{
  for (size_t i = 0; c && i < c->n_exclude_labels; i++) {
    const struct rp_label_match *m = &c->exclude_labels[i];
    if (rp_labels_match(m, 1, w->labels)) {
      snprintf(out->reason, sizeof(out->reason), "exclude.labels %s=%s", m->key,
               m->value ? m->value : "*");
      return true;
    }
  }
  return false;
}

static bool
excluded(const struct rp_config *c, const struct rp_workload *w,
         struct notes *out)
{
  char q[QUOTE_MAX + 4];
  if (w->protected_reason) {
    snprintf(out->reason, sizeof(out->reason), "%s", w->protected_reason);
    return true;
  }
  if (excluded_by_config(c, w, out))
    return true;
  const char *v = rp_workload_label(w, LABEL_EXCLUDE);
  if (v && strcmp(v, "true") == 0) {
    if (c && c->deny_workload_opt_out) {
      warn_label(out->warning, sizeof(out->warning), w,
                 "label %s=true refused: workloads may not opt out "
                 "(exclude.workload_opt_out: false)",
                 LABEL_EXCLUDE);
      return false;
    }
    snprintf(out->reason, sizeof(out->reason), "label %s=true", LABEL_EXCLUDE);
    return true;
  }
  if (v && strcmp(v, "false") != 0)
    warn_label(out->warning, sizeof(out->warning), w,
               "label %s=\"%s\" is neither true nor false; ignored",
               LABEL_EXCLUDE, quote_value(v, q, sizeof(q)));
  return false;
}

static const struct rp_policy *
select_policy(const struct rp_config *c, const struct rp_workload *w,
              struct notes *out)
{
  if (!c)
    return NULL;
  const char *name = rp_workload_label(w, LABEL_POLICY);
  if (name) {
    /* A workload may pick among the policies that would take it anyway,
     * and those the operator made selectable: never one written for
     * others (a longer life, another provider's strategy). */
    const struct rp_policy *p = rp_config_policy(c, name);
    if (p && (p->selectable || rp_policy_matches(p, w)))
      return p;
    char q[QUOTE_MAX + 4];
    warn_label(out->warning, sizeof(out->warning), w,
               p ? "label %s=\"%s\" refused: that policy's match does not "
                   "accept this workload and it is not selectable; matching "
                   "instead"
                 : "label %s=\"%s\" names no policy; matching instead",
               LABEL_POLICY, quote_value(name, q, sizeof(q)));
  }
  for (size_t i = 0; i < c->n_policies; i++)
    if (rp_policy_matches(&c->policies[i], w))
      return &c->policies[i];
  return NULL;
}

static int64_t
effective_max_age(const struct rp_policy *p, const struct rp_workload *w,
                  struct notes *out)
{
  const char *v = rp_workload_label(w, LABEL_MAX_AGE);
  if (!v)
    return p->max_age_ms;
  int64_t ms = 0;
  const char *why = NULL;
  char q[QUOTE_MAX + 4];
  int rc = rp_duration_parse(v, &ms, &why);
  if (rc == 0 && ms > 0 && ms <= p->max_age_ms)
    return ms; /* shortening: always the workload's right */
  if (rc == 0 && ms > 0) {
    /* Lengthening: only up to the operator's ceiling. */
    char limit[32];
    if (p->hard_max_age_ms <= 0) {
      warn_label(out->warning, sizeof(out->warning), w,
                 "label %s=\"%s\" refused: a label may lengthen max_age only "
                 "up to hard_max_age, which policy %s does not set",
                 LABEL_MAX_AGE, quote_value(v, q, sizeof(q)), p->name);
      return p->max_age_ms;
    }
    if (ms > p->hard_max_age_ms) {
      rp_format_duration(p->hard_max_age_ms, limit, sizeof(limit));
      warn_label(out->warning, sizeof(out->warning), w,
                 "label %s=\"%s\" cut to hard_max_age %s", LABEL_MAX_AGE,
                 quote_value(v, q, sizeof(q)), limit);
      return p->hard_max_age_ms;
    }
    return ms;
  }
  if (rc == 0)
    why = "not a positive duration";
  warn_label(out->warning, sizeof(out->warning), w,
             "label %s=\"%s\": %s; ignored", LABEL_MAX_AGE,
             quote_value(v, q, sizeof(q)), why ? why : "not a duration");
  return p->max_age_ms;
}

const char *
rp_due_reason_name(enum rp_due_reason r)
{
  static const char *const names[RP_DUE__COUNT] = {
      [RP_DUE_MAX_AGE] = "max_age",     [RP_DUE_HARD_MAX_AGE] = "hard_max_age",
      [RP_DUE_LABEL] = "label",         [RP_DUE_UPDATE] = "update",
      [RP_DUE_IMAGE_AGE] = "image_age",
  };
  return (int)r >= 0 && r < RP_DUE__COUNT ? names[r] : "max_age";
}

void
rp_decision_clear(struct rp_decision *d)
{
  if (!d)
    return;
  free(d->reason);
  free(d->warning);
  memset(d, 0, sizeof(*d));
}

/* The decision's deadlines for policy p (after its messages). */
static void
decide_deadlines(const struct rp_policy *p, const struct rp_workload *w,
                 struct notes *n, struct rp_decision *out)
{
  out->policy = p;
  out->max_age_ms = effective_max_age(p, w, n);
  out->due_reason =
      out->max_age_ms != p->max_age_ms ? RP_DUE_LABEL : RP_DUE_MAX_AGE;
  out->jitter_ms =
      rp_policy_jitter_ms(w->provider, w->id, out->max_age_ms, p->jitter);
  out->deadline_ms =
      rp_add_sat(rp_add_sat(w->started_ms, out->max_age_ms), -out->jitter_ms);
  out->due_ms = rp_window_next_open(&p->window, out->deadline_ms);
  if (p->hard_max_age_ms > 0) {
    /* The latest a workload may live, whatever else says (labels, windows,
     * the policy's own max_age): no deadline lies past it. */
    out->hard_ms = rp_add_sat(w->started_ms, p->hard_max_age_ms);
    if (out->deadline_ms > out->hard_ms) {
      out->deadline_ms = out->hard_ms;
      out->due_reason = RP_DUE_HARD_MAX_AGE;
    }
    if (out->due_ms > out->hard_ms) {
      /* The window would hold it past its ceiling. */
      out->due_ms = out->hard_ms;
      out->due_reason = RP_DUE_HARD_MAX_AGE;
    }
  }
}

void
rp_policy_decide(const struct rp_config *c, const struct rp_workload *w,
                 struct rp_decision *out)
{
  rp_decision_clear(out);
  struct notes n = {0};
  const struct rp_policy *p = NULL;
  if (excluded(c, w, &n))
    out->excluded = true;
  else if ((p = select_policy(c, w, &n)) != NULL)
    decide_deadlines(p, w, &n, out);
  else
    snprintf(n.reason, sizeof(n.reason), "no policy matches");
  if (n.reason[0])
    out->reason = rp_xstrdup(n.reason);
  if (n.warning[0])
    out->warning = rp_xstrdup(n.warning);
}

/* A JSON array of strings as an argv; NULL when `text` is not a JSON array
 * (it is then a shell command).  *bad is set for an array that cannot be an
 * argv: empty, holding anything but strings, or naming no program. */
static char **
argv_from_json(const char *text, bool *bad)
{
  *bad = false;
  cleanup_json json_t *a = json_loads(text, 0, NULL);
  if (!json_is_array(a))
    return NULL;
  char **argv = rp_strv_from_json(a);
  if (!argv || !argv[0] || !*argv[0]) {
    rp_strv_free(argv);
    *bad = true;
    return NULL;
  }
  return argv;
}

char **
rp_policy_drain_argv(const struct rp_workload *w, const struct rp_policy *p,
                     char *warning, size_t warning_len)
{
  if (warning_len > 0)
    warning[0] = '\0';
  const char *v = rp_workload_label(w, LABEL_DRAIN);
  if (v && !*v) {
    warn_label(warning, warning_len, w, "label %s is empty; ignored",
               LABEL_DRAIN);
  } else if (v) {
    bool bad;
    char **argv = argv_from_json(v, &bad);
    if (argv)
      return argv;
    if (!bad) {
      char **sh = rp_xcalloc(4, sizeof(*sh));
      sh[0] = rp_xstrdup("/bin/sh");
      sh[1] = rp_xstrdup("-c");
      sh[2] = rp_xstrdup(v);
      return sh;
    }
    char q[QUOTE_MAX + 4];
    warn_label(warning, warning_len, w,
               "label %s=\"%s\" is not a JSON array of strings naming a "
               "program; ignored",
               LABEL_DRAIN, quote_value(v, q, sizeof(q)));
  }
  return p ? rp_strv_dup(p->drain) : NULL;
}

void
rp_policy_argv_free(char **argv)
{
  rp_strv_free(argv);
}
