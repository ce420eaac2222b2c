/* The page at /: what reaper tracks and does, for people.  Plain HTML with
 * its CSS inline, generated from the /status document: no script, nothing
 * loaded from elsewhere, every string escaped (names and labels come from
 * whoever starts containers).  It refreshes itself every 15 s. */
#include <math.h>
#include <string.h>

#include "status.h"
#include "util.h"

/* --- text --------------------------------------------------------------- */

/* HTML-escapes s for text and for attribute values in double quotes. */
static void
esc(FILE *out, const char *s)
{
  for (; s && *s; s++) {
    switch (*s) {
    case '&':
      fputs("&amp;", out);
      break;
    case '<':
      fputs("&lt;", out);
      break;
    case '>':
      fputs("&gt;", out);
      break;
    case '"':
      fputs("&quot;", out);
      break;
    case '\'':
      fputs("&#39;", out);
      break;
    default:
      fputc(*s, out);
    }
  }
}

static const char *
str(json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

static bool
has(json_t *o, const char *k)
{
  json_t *v = json_object_get(o, k);
  return v && !json_is_null(v);
}

/* A duration for people: the two largest units ("1h12m", "3d4h", "45s"). */
static char *
human(int64_t secs, char *buf, size_t len)
{
  static const struct {
    const char *unit;
    int64_t s;
  } units[] = {{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}};
  if (secs < 0)
    secs = -secs;
  if (secs == 0) {
    snprintf(buf, len, "0s");
    return buf;
  }
  size_t off = 0;
  int shown = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < RP_ARRAY_LEN(units) && shown < 2; i++) {
    if (secs >= units[i].s) {
      int64_t n = secs / units[i].s;
      secs -= n * units[i].s;
      off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%lld%s",
                              (long long)n, units[i].unit);
      shown++;
    } else if (shown) {
      shown++; /* "1h" and not "1h3s": the second unit is the next one */
    }
  }
  return buf;
}

/* "in 12m", "3m ago", "now" for an RFC 3339 time; "" when unreadable. */
static void
relative(FILE *out, const char *ts, int64_t now_ms)
{
  int64_t t;
  char b[32];
  if (!ts || rp_parse_time_ms(ts, &t) != 0)
    return;
  int64_t d = (t - now_ms) / 1000;
  if (d == 0)
    fputs("now", out);
  else if (d > 0)
    fprintf(out, "in %s", human(d, b, sizeof(b)));
  else
    fprintf(out, "%s ago", human(d, b, sizeof(b)));
}

/* A time as people read it: relative, with the exact time on hover. */
static void
when(FILE *out, const char *ts, int64_t now_ms)
{
  fputs("<time datetime=\"", out);
  esc(out, ts);
  fputs("\" title=\"", out);
  esc(out, ts);
  fputs("\">", out);
  relative(out, ts, now_ms);
  fputs("</time>", out);
}

/* --- sections ----------------------------------------------------------- */

static const char css[] =
    ":root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#667085;"
    "--line:#e4e7ec;--ok:#12b76a;--warn:#f79009;--bad:#f04438;"
    "--info:#2e90fa;--track:#eef0f3}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 "
    "system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
    "sans-serif}"
    "header{background:#101828;color:#fff;padding:18px 28px;display:flex;"
    "align-items:baseline;gap:14px;flex-wrap:wrap}"
    "header h1{margin:0;font-size:20px;letter-spacing:.5px}"
    "header .ver{color:#98a2b3;font-size:13px}"
    "header .gen{margin-left:auto;color:#98a2b3;font-size:12px}"
    "main{padding:20px 28px 40px;max-width:1400px;margin:0 auto}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,"
    "1fr));gap:12px;margin-bottom:22px}"
    ".card{background:var(--card);border:1px solid var(--line);"
    "border-radius:10px;padding:12px 16px}"
    ".card .k{color:var(--mute);font-size:12px;text-transform:uppercase;"
    "letter-spacing:.6px}"
    ".card .v{font-size:22px;font-weight:600;margin-top:2px;"
    "white-space:nowrap;overflow:hidden;text-overflow:ellipsis}"
    ".card .s{color:var(--mute);font-size:12px;white-space:nowrap;"
    "overflow:hidden;text-overflow:ellipsis}"
    ".card.good{border-left:4px solid var(--ok)}"
    ".card.alarm{border-left:4px solid var(--bad)}"
    "section{background:var(--card);border:1px solid var(--line);"
    "border-radius:10px;margin-bottom:22px;overflow:hidden}"
    "section h2{font-size:15px;margin:0;padding:12px 16px;"
    "border-bottom:1px solid var(--line);display:flex;gap:8px;"
    "align-items:baseline}"
    "section h2 .n{color:var(--mute);font-weight:400;font-size:13px}"
    "table{width:100%;border-collapse:collapse}"
    "th{font-size:12px;color:var(--mute);text-align:left;font-weight:500;"
    "padding:8px 16px;background:#fafbfc;border-bottom:1px solid var(--line)}"
    "td{padding:9px 16px;border-bottom:1px solid var(--line);"
    "vertical-align:middle}"
    "tr:last-child td{border-bottom:0}"
    ".empty{padding:14px 16px;color:var(--mute)}"
    ".name{font-weight:600;word-break:break-all}"
    ".sub{color:var(--mute);font-size:12px}"
    ".mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
    "font-size:12px}"
    ".bar{position:relative;height:10px;background:var(--track);"
    "border-radius:5px;overflow:hidden;min-width:160px}"
    ".bar i{position:absolute;left:0;top:0;bottom:0;border-radius:5px;"
    "background:var(--ok)}"
    ".bar.warn i{background:var(--warn)}.bar.over i{background:var(--bad)}"
    ".bar.off i{background:#d0d5dd}"
    ".agetxt{font-size:12px;color:var(--mute);margin-top:3px;"
    "white-space:nowrap}"
    ".pill{display:inline-block;padding:1px 9px;border-radius:999px;"
    "font-size:12px;font-weight:600;white-space:nowrap}"
    ".p-ok{background:#ecfdf3;color:#027a48}"
    ".p-bad{background:#fef3f2;color:#b42318}"
    ".p-warn{background:#fffaeb;color:#b54708}"
    ".p-info{background:#eff8ff;color:#175cd3}"
    ".p-mute{background:#f2f4f7;color:#475467}"
    ".dot{display:inline-block;width:9px;height:9px;border-radius:50%;"
    "margin-right:6px;vertical-align:0}"
    ".dot.up{background:var(--ok)}.dot.down{background:var(--bad)}"
    "tr.idle td{color:var(--mute)}"
    "td .sub,td.due{white-space:nowrap}"
    ".alert{background:#fef3f2;border:1px solid #fecdca;color:#912018;"
    "border-radius:10px;padding:12px 16px;margin-bottom:22px}"
    ".alert.info{background:#eff8ff;border-color:#b2ddff;color:#194185}"
    ".alert b{display:block;margin-bottom:4px}"
    ".alert div{font-size:13px;word-break:break-word}"
    ".err{color:#b42318;font-size:12px;word-break:break-word}"
    "footer{color:var(--mute);font-size:12px;text-align:center;"
    "padding:0 28px 28px}"
    "footer a{color:var(--mute)}";

static void
section_open(FILE *out, const char *title, size_t n, const char *note)
{
  fprintf(out, "<section><h2>%s <span class=\"n\">%zu%s%s</span></h2>", title,
          n, note ? " · " : "", note ? note : "");
}

static void
providers_table(FILE *out, json_t *providers)
{
  section_open(out, "Providers", json_array_size(providers), NULL);
  if (json_array_size(providers) == 0) {
    fputs("<div class=\"empty\">No provider.</div></section>", out);
    return;
  }
  fputs("<table><tr><th>Provider</th><th>Type</th><th>Engine</th><th>API</th>"
        "<th>State</th></tr>",
        out);
  size_t i;
  json_t *p;
  json_array_foreach(providers, i, p)
  {
    bool up = json_is_true(json_object_get(p, "up"));
    fputs("<tr><td class=\"name\">", out);
    esc(out, str(p, "name"));
    fputs("</td><td>", out);
    esc(out, str(p, "type"));
    fputs("</td><td>", out);
    esc(out, str(p, "engine"));
    fputs("</td><td>", out);
    esc(out, str(p, "api_version"));
    fprintf(out, "</td><td><span class=\"dot %s\"></span>%s",
            up ? "up" : "down", up ? "connected" : "unreachable");
    if (!up && *str(p, "reason")) {
      fputs(" <span class=\"err\">", out);
      esc(out, str(p, "reason"));
      fputs("</span>", out);
    }
    fputs("</td></tr>", out);
  }
  fputs("</table></section>", out);
}

/* The workload's name, with its id and where it runs beneath. */
static void
workload_cell(FILE *out, json_t *w)
{
  fputs("<td><div class=\"name\">", out);
  esc(out, str(w, "name"));
  fputs("</div><div class=\"sub\">", out);
  esc(out, str(w, "kind"));
  fputs(" on ", out);
  esc(out, str(w, "provider"));
  fputs(" · <span class=\"mono\" title=\"", out);
  esc(out, str(w, "id"));
  fputs("\">", out);
  char id[13];
  snprintf(id, sizeof(id), "%s", str(w, "id"));
  esc(out, id);
  fputs("</span></div></td>", out);
}

/* Age against max age: the bar fills as the workload ages and turns amber
 * in its last quarter and red once past its max age. */
static void
age_cell(FILE *out, json_t *w)
{
  double age = json_number_value(json_object_get(w, "age_s"));
  json_t *maxj = json_object_get(w, "max_age_s");
  char a[32], m[32];
  fputs("<td>", out);
  if (json_is_number(maxj) && json_number_value(maxj) > 0) {
    double max = json_number_value(maxj);
    double frac = age / max;
    double width = fmin(fmax(frac, 0), 1) * 100;
    fprintf(out,
            "<div class=\"bar%s\" title=\"%.0f%% of its max age\">"
            "<i style=\"width:%.1f%%\"></i></div>",
            frac >= 1     ? " over"
            : frac >= .75 ? " warn"
                          : "",
            frac * 100, width);
    fprintf(out, "<div class=\"agetxt\">%s of %s · %.0f%%</div>",
            human((int64_t)age, a, sizeof(a)),
            human((int64_t)max, m, sizeof(m)), floor(frac * 100));
  } else {
    fputs("<div class=\"bar off\"><i style=\"width:0\"></i></div>", out);
    fprintf(out, "<div class=\"agetxt\">%s old</div>",
            human((int64_t)age, a, sizeof(a)));
  }
  fputs("</td>", out);
}

static bool
starts(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool
ends(const char *s, const char *suffix)
{
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* What is happening to a workload, as a word and a colour, from plan's
 * action; the action itself is on hover, and shown as it is when its
 * wording is not one of plan's. */
/* "sha256:" and 12 hex digits, as engines show ids. */
static void
short_digest(FILE *out, const char *d)
{
  fputs("<span class=\"mono\">", out);
  char b[20];
  snprintf(b, sizeof(b), "%.19s", d);
  esc(out, b);
  fputs("</span>", out);
}

/* What the workload runs (fresh content): its digest and content age, and
 * whether a newer digest waits, or why it is not known. */
static void
content_line(FILE *out, json_t *img, int64_t now_ms)
{
  if (!json_is_object(img))
    return;
  const char *state = str(img, "state");
  fputs("<div class=\"sub\">image ", out);
  if (strcmp(state, "known") != 0) {
    esc(out, *str(img, "note") ? str(img, "note") : state);
    fputs("</div>", out);
    return;
  }
  short_digest(out, str(img, "digest"));
  json_t *age = json_object_get(img, "content_age_s");
  if (json_is_integer(age)) {
    char b[32];
    fprintf(out, " · %s old",
            human((int64_t)json_integer_value(age), b, sizeof(b)));
  }
  json_t *n = json_object_get(img, "newer");
  if (json_is_object(n)) {
    const char *ns = str(n, "state");
    const char *pill =
        strcmp(ns, "quarantined") == 0 || strcmp(ns, "refused") == 0 ? "p-bad"
        : strcmp(ns, "ready") == 0                                   ? "p-warn"
                                                                     : "p-info";
    fputs(" · newer ", out);
    short_digest(out, str(n, "digest"));
    fprintf(out, " <span class=\"pill %s\">", pill);
    esc(out, strcmp(ns, "refused") == 0 ? "refused by verify" : ns);
    fputs("</span>", out);
    if (has(n, "until")) {
      fputs(" until ", out);
      when(out, str(n, "until"), now_ms);
    }
  }
  fputs("</div>", out);
}

/* The digests quarantined for their reference (fresh content). */
static void
quarantine_table(FILE *out, json_t *images)
{
  json_t *q = json_object_get(images, "quarantined");
  if (json_array_size(q) == 0)
    return;
  section_open(out, "Quarantined images", json_array_size(q),
               "rollouts into them failed: no workload moves to them");
  fputs("<table><tr><th>Reference</th><th>Digest</th><th>Policy</th>"
        "<th>Failures</th><th>Last failure</th></tr>",
        out);
  size_t i;
  json_t *r;
  json_array_foreach(q, i, r)
  {
    fputs("<tr><td class=\"name\">", out);
    esc(out, str(r, "reference"));
    fputs("</td><td>", out);
    short_digest(out, str(r, "digest"));
    fputs("</td><td>", out);
    esc(out, str(r, "policy"));
    fprintf(out, "</td><td>%lld</td><td class=\"err\">",
            (long long)json_integer_value(json_object_get(r, "failures")));
    esc(out, str(r, "error"));
    fputs("</td></tr>", out);
  }
  fputs("</table></section>", out);
}

static void
state_cell(FILE *out, json_t *w, int64_t now_ms)
{
  const char *action = str(w, "action");
  const char *pill = NULL, *word = NULL;
  if (starts(action, "recycling")) {
    pill = "p-info", word = "recycling";
  } else if (json_is_true(json_object_get(w, "excluded"))) {
    pill = "p-mute", word = "excluded";
  } else if (starts(action, "untouched")) {
    pill = "p-mute", word = "untouched";
  } else if (ends(action, "waiting for the budget")) {
    pill = "p-warn", word = "due: held by the budget";
  } else if (ends(action, "planned (dry run)")) {
    pill = "p-info", word = "planned (dry run)";
  } else if (starts(action, "recycled")) {
    pill = "p-ok", word = "recycled";
  } else if (ends(action, " now")) {
    pill = "p-warn", word = "due now";
  } else if (strstr(action, " at ")) {
    pill = "p-mute",
    word = ends(action, "(retry)") ? "retry scheduled" : "scheduled";
  }
  fputs("<td title=\"", out);
  esc(out, action);
  fputs("\">", out);
  if (pill)
    fprintf(out, "<span class=\"pill %s\">%s</span>", pill, word);
  else
    esc(out, action);
  json_int_t failures = json_integer_value(json_object_get(w, "failures"));
  if (failures > 0)
    fprintf(out, " <span class=\"pill p-bad\">%lld failed</span>",
            (long long)failures);
  if (*str(w, "reason")) {
    fputs("<div class=\"sub\">", out);
    esc(out, str(w, "reason"));
    fputs("</div>", out);
  }
  if (*str(w, "warning")) {
    fputs("<div class=\"err\">", out);
    esc(out, str(w, "warning"));
    fputs("</div>", out);
  }
  content_line(out, json_object_get(w, "image"), now_ms);
  fputs("</td>", out);
}

static void
workloads_table(FILE *out, json_t *workloads, int64_t now_ms)
{
  section_open(out, "Workloads", json_array_size(workloads),
               "soonest recycle first");
  if (json_array_size(workloads) == 0) {
    fputs("<div class=\"empty\">No workload tracked yet.</div></section>", out);
    return;
  }
  fputs("<table><tr><th>Workload</th><th>Policy</th><th style=\"width:24%\">"
        "Age</th><th>Due</th><th>State</th></tr>",
        out);
  size_t i;
  json_t *w;
  json_array_foreach(workloads, i, w)
  {
    bool acts =
        has(w, "policy") && !json_is_true(json_object_get(w, "excluded"));
    fprintf(out, "<tr%s>", acts ? "" : " class=\"idle\"");
    workload_cell(out, w);
    fputs("<td>", out);
    if (acts) {
      esc(out, str(w, "policy"));
      fputs("<div class=\"sub\">", out);
      esc(out, str(w, "strategy"));
      fputs("</div>", out);
    } else {
      fputs("—", out);
    }
    fputs("</td>", out);
    age_cell(out, w);
    fputs("<td class=\"due\">", out);
    if (acts && has(w, "due")) {
      when(out, str(w, "due"), now_ms);
      if (has(w, "hard_deadline")) {
        fputs("<div class=\"sub\">hard limit ", out);
        when(out, str(w, "hard_deadline"), now_ms);
        fputs("</div>", out);
      }
    } else {
      fputs("—", out);
    }
    fputs("</td>", out);
    state_cell(out, w, now_ms);
    fputs("</tr>", out);
  }
  fputs("</table></section>", out);
}

/* What is coming, per policy: recycles due within the hour and the day,
 * and how far past its max age the oldest workload is (rp_plan_forecast). */
static void
forecast_table(FILE *out, json_t *forecast)
{
  section_open(out, "Coming up", json_array_size(forecast),
               "per policy; due counts include what is due now");
  if (json_array_size(forecast) == 0) {
    fputs("<div class=\"empty\">No policy.</div></section>", out);
    return;
  }
  fputs("<table><tr><th>Policy</th><th>Workloads</th><th>Due within 1 h</th>"
        "<th>Due within 1 d</th><th>Most overdue</th></tr>",
        out);
  size_t i;
  json_t *r;
  json_array_foreach(forecast, i, r)
  {
    char b[32];
    fputs("<tr><td class=\"name\">", out);
    esc(out, str(r, "policy"));
    fprintf(out, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>",
            (long long)json_integer_value(json_object_get(r, "workloads")),
            (long long)json_integer_value(json_object_get(r, "due_1h")),
            (long long)json_integer_value(json_object_get(r, "due_1d")));
    json_int_t over = json_integer_value(json_object_get(r, "most_overdue_s"));
    if (has(r, "most_overdue_name")) {
      fprintf(out, "<span class=\"pill p-bad\">%s past max age</span> ",
              human((int64_t)over, b, sizeof(b)));
      fputs("<span class=\"sub\">", out);
      esc(out, str(r, "most_overdue_name"));
      fputs("</span>", out);
    } else {
      fputs("—", out);
    }
    fputs("</td></tr>", out);
  }
  fputs("</table></section>", out);
}

static void
in_flight_table(FILE *out, json_t *in_flight, int64_t now_ms)
{
  section_open(out, "Recycles in flight", json_array_size(in_flight), NULL);
  if (json_array_size(in_flight) == 0) {
    fputs("<div class=\"empty\">Nothing is being recycled now.</div>"
          "</section>",
          out);
    return;
  }
  fputs("<table><tr><th>Workload</th><th>Policy</th><th>Strategy</th>"
        "<th>Began</th></tr>",
        out);
  size_t i;
  json_t *w;
  json_array_foreach(in_flight, i, w)
  {
    fputs("<tr>", out);
    workload_cell(out, w);
    fputs("<td>", out);
    esc(out, str(w, "policy"));
    fputs("</td><td><span class=\"pill p-info\">", out);
    esc(out, str(w, "strategy"));
    fputs("</span></td><td>", out);
    if (has(w, "recycle_began_at"))
      when(out, str(w, "recycle_began_at"), now_ms);
    else
      fputs("—", out);
    fputs("</td></tr>", out);
  }
  fputs("</table></section>", out);
}

static const char *
outcome_pill(const char *outcome)
{
  if (strcmp(outcome, "done") == 0)
    return "p-ok";
  if (strcmp(outcome, "failed") == 0)
    return "p-bad";
  if (strcmp(outcome, "rolled_back") == 0)
    return "p-warn";
  if (strcmp(outcome, "planned") == 0)
    return "p-info";
  return "p-mute";
}

static void
recent_table(FILE *out, json_t *recent, int64_t now_ms)
{
  section_open(out, "Recent recycles", json_array_size(recent),
               "newest first, since the agent started");
  if (json_array_size(recent) == 0) {
    fputs("<div class=\"empty\">No recycle has ended since the agent "
          "started.</div></section>",
          out);
    return;
  }
  fputs("<table><tr><th>When</th><th>Workload</th><th>Policy</th>"
        "<th>Outcome</th><th>Took</th><th>Detail</th></tr>",
        out);
  size_t i;
  json_t *r;
  json_array_foreach(recent, i, r)
  {
    char d[32];
    const char *outcome = str(r, "outcome");
    fputs("<tr><td>", out);
    when(out, str(r, "ts"), now_ms);
    fputs("</td>", out);
    workload_cell(out, r);
    fputs("<td>", out);
    esc(out, str(r, "policy"));
    fprintf(out, "</td><td><span class=\"pill %s\">", outcome_pill(outcome));
    for (const char *c = outcome; *c; c++)
      fputc(*c == '_' ? ' ' : *c, out);
    fputs("</span></td><td>", out);
    json_t *dur = json_object_get(r, "duration_s");
    if (json_is_number(dur)) {
      double secs = json_number_value(dur);
      if (secs < 10)
        fprintf(out, "%.1fs", secs);
      else
        fputs(human((int64_t)secs, d, sizeof(d)), out);
    } else {
      fputs("—", out);
    }
    fputs("</td><td>", out);
    if (*str(r, "error")) {
      fputs("<div class=\"err\">", out);
      esc(out, str(r, "error"));
      fputs("</div>", out);
    } else if (*str(r, "detail")) {
      esc(out, str(r, "detail"));
    } else if (*str(r, "replacement_id")) {
      char id[13];
      snprintf(id, sizeof(id), "%s", str(r, "replacement_id"));
      fputs("replaced by <span class=\"mono\" title=\"", out);
      esc(out, str(r, "replacement_id"));
      fputs("\">", out);
      esc(out, id);
      fputs("</span>", out);
    }
    fputs("</td></tr>", out);
  }
  fputs("</table></section>", out);
}

/* --- the page ----------------------------------------------------------- */

static void
card(FILE *out, const char *cls, const char *key, const char *value,
     const char *sub)
{
  fprintf(out,
          "<div class=\"card%s%s\"><div class=\"k\">%s</div>"
          "<div class=\"v\">",
          cls ? " " : "", cls ? cls : "", key);
  esc(out, value);
  fputs("</div><div class=\"s\">", out);
  esc(out, sub);
  fputs("</div></div>", out);
}

static void
cards(FILE *out, json_t *st, int64_t now_ms)
{
  json_t *workloads = json_object_get(st, "workloads");
  json_t *providers = json_object_get(st, "providers");
  json_t *audit = json_object_get(st, "audit");
  char v[64], s[160], b[32];

  size_t acting = 0, i;
  json_t *w, *next = NULL;
  json_array_foreach(workloads, i, w)
  {
    if (!has(w, "policy") || json_is_true(json_object_get(w, "excluded")))
      continue;
    acting++;
    /* The list is sorted soonest first: the first one due and not being
     * recycled is the next recycle. */
    if (!next && has(w, "due") &&
        strncmp(str(w, "action"), "recycling", 9) != 0)
      next = w;
  }
  snprintf(v, sizeof(v), "%zu", json_array_size(workloads));
  snprintf(s, sizeof(s), "%zu under a policy", acting);
  card(out, NULL, "Workloads", v, s);

  if (next) {
    int64_t t;
    if (rp_parse_time_ms(str(next, "due"), &t) == 0 && t > now_ms)
      snprintf(v, sizeof(v), "in %s", human((t - now_ms) / 1000, b, sizeof(b)));
    else
      snprintf(v, sizeof(v), "now");
    card(out, NULL, "Next recycle", v, str(next, "name"));
  } else {
    card(out, NULL, "Next recycle", "—", "nothing scheduled");
  }

  snprintf(v, sizeof(v), "%zu",
           json_array_size(json_object_get(st, "in_flight")));
  card(out, NULL, "In flight", v, "recycles now");

  size_t down = 0;
  json_t *p;
  json_array_foreach(providers, i, p)
  {
    if (!json_is_true(json_object_get(p, "up")))
      down++;
  }
  bool audit_ok =
      !json_is_object(audit) || json_is_true(json_object_get(audit, "healthy"));
  bool ready = json_is_true(json_object_get(st, "ready"));
  if (down || !audit_ok) {
    snprintf(s, sizeof(s), "%s%s%s", down ? "a provider is unreachable" : "",
             down && !audit_ok ? "; " : "",
             audit_ok ? "" : "audit log cannot be written");
    card(out, "alarm", "Health", "degraded", s);
  } else {
    size_t n = json_array_size(providers);
    snprintf(s, sizeof(s), "%zu provider%s up, audit log writable%s", n,
             n == 1 ? "" : "s", ready ? "" : "; starting");
    card(out, "good", "Health", ready ? "ok" : "starting", s);
  }
}

/* What needs someone's attention, in words, above everything else. */
static void
alerts(FILE *out, json_t *st)
{
  json_t *audit = json_object_get(st, "audit");
  size_t i;
  json_t *p;
  bool open = false;
  json_array_foreach(json_object_get(st, "providers"), i, p)
  {
    if (json_is_true(json_object_get(p, "up")))
      continue;
    if (!open)
      fputs("<div class=\"alert\"><b>Needs attention</b>", out);
    open = true;
    fputs("<div>provider ", out);
    esc(out, str(p, "name"));
    fputs(" (", out);
    esc(out, str(p, "type"));
    fputs(") is unreachable: ", out);
    esc(out, *str(p, "reason") ? str(p, "reason") : "not connected yet");
    fputs("; its workloads are not recycled until it is back</div>", out);
  }
  if (json_is_object(audit) &&
      !json_is_true(json_object_get(audit, "healthy"))) {
    if (!open)
      fputs("<div class=\"alert\"><b>Needs attention</b>", out);
    open = true;
    fputs("<div>the audit log ", out);
    esc(out, str(audit, "path"));
    fprintf(
        out,
        " cannot be written (%lld failed writes): nothing is recycled "
        "until it can</div>",
        (long long)json_integer_value(json_object_get(audit, "write_errors")));
  }
  if (open)
    fputs("</div>", out);
  if (!json_is_true(json_object_get(st, "ready")))
    fputs("<div class=\"alert info\"><b>Starting</b><div>waiting for every "
          "provider's first full list and crash recovery; nothing is "
          "recycled before</div></div>",
          out);
}

void
rp_page_write(FILE *out, json_t *st, int64_t now_ms)
{
  json_t *workloads = json_object_get(st, "workloads");
  json_t *audit = json_object_get(st, "audit");
  fputs("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\"><meta http-equiv=\"refresh\" content=\"15\">"
        "<title>reaper · ",
        out);
  if (*str(st, "hostname")) {
    esc(out, str(st, "hostname"));
    fputs(" · ", out);
  }
  fprintf(out,
          "%zu workloads</title><style>%s</style></head>"
          "<body><header><h1>reaper</h1><span class=\"ver\">",
          json_array_size(workloads), css);
  if (*str(st, "hostname")) {
    fputs("on <b>", out);
    esc(out, str(st, "hostname"));
    fputs("</b> · ", out);
  }
  esc(out, str(st, "version"));
  fputs("</span><span class=\"gen\">as of ", out);
  esc(out, str(st, "now"));
  fputs(" · refreshes every 15 s</span></header><main><div class=\"cards\">",
        out);
  cards(out, st, now_ms);
  fputs("</div>", out);
  alerts(out, st);
  in_flight_table(out, json_object_get(st, "in_flight"), now_ms);
  if (json_is_array(json_object_get(st, "forecast")))
    forecast_table(out, json_object_get(st, "forecast"));
  workloads_table(out, workloads, now_ms);
  quarantine_table(out, json_object_get(st, "images"));
  recent_table(out, json_object_get(st, "recent"), now_ms);
  providers_table(out, json_object_get(st, "providers"));
  fputs("</main><footer>", out);
  if (json_is_object(audit)) {
    fputs("audit log <span class=\"mono\">", out);
    esc(out, str(audit, "path"));
    fprintf(out, "</span> · next seq %lld · %s · ",
            (long long)json_integer_value(json_object_get(audit, "next_seq")),
            json_is_true(json_object_get(audit, "healthy"))
                ? "writable"
                : "<b>cannot be written</b>");
  }
  fputs("<a href=\"/status\">/status</a> (JSON) · "
        "<a href=\"/metrics\">/metrics</a> (Prometheus)</footer></body>"
        "</html>\n",
        out);
}
