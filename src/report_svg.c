/* `reaper report --svg`: one plain SVG file, written by hand (no library,
 * no script, no external asset), with two charts, and a third when the
 * logs have fresh content:
 *  1. the cadence: recycles per hour (per day for spans over 3 days, per
 *     week over 400 days) as bars stacked by policy, one colour each;
 *  2. the age at recycle per policy as a fraction of max age: a box plot
 *     (box 25th-75th percentile, bar at the median, whiskers min to max, a
 *     diamond at the 95th percentile) against a red line at 1.0;
 *  3. patch latency: a dot per new digest and policy, at the time the
 *     digest was first seen (x) and its latency (y), in the policy's
 *     colour; the digests not rolled out (pending, superseded) as hollow
 *     marks in a band above the plot; a dashed line at the median.
 * Bars, boxes and dots carry class and data-* attributes (policy, bin
 * start, count, digest, latency), so that tests and scripts can read the
 * figures back. */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define WIDTH 960.0
#define FONT "DejaVu Sans, Helvetica, Arial, sans-serif"

/* Tableau 10, distinct and readable for the common colour blindnesses,
 * then lighter tones of Tableau 20 for an 11th to 20th policy. */
static const char *const palette[] = {
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#bab0ac", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
    "#9edae5", "#dbdb8d", "#c5b0d5", "#f7b6d2", "#c49c94", "#c7c7c7"};

static const char *
colour(size_t i)
{
  return palette[i % RP_ARRAY_LEN(palette)];
}

/* Text content and attribute values: the five XML specials escaped. */
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
      fputs("&apos;", out);
      break;
    default:
      /* Control characters are not allowed in XML 1.0. */
      fputc((unsigned char)*s < 0x20 ? ' ' : *s, out);
    }
  }
}

static void
text(FILE *out, double x, double y, const char *anchor, const char *style,
     const char *s)
{
  fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y,
          anchor, style ? " " : "", style ? style : "");
  esc(out, s);
  fputs("</text>\n", out);
}

/* A step of 1, 2 or 5 times a power of ten giving at most about `ticks`
 * ticks over range. */
static double
nice_step(double range, int ticks)
{
  if (range <= 0)
    return 1;
  double raw = range / ticks;
  double p = pow(10, floor(log10(raw)));
  double steps[] = {1, 2, 5, 10};
  for (size_t i = 0; i < RP_ARRAY_LEN(steps); i++)
    if (steps[i] * p >= raw)
      return steps[i] * p;
  return 10 * p;
}

/* --- the cadence ---------------------------------------------------------- */

enum bin_unit { BIN_HOUR, BIN_DAY, BIN_WEEK };

struct bins {
  enum bin_unit unit;
  int64_t secs;   /* length of a bin */
  int64_t offset; /* weeks start on Monday: the Epoch was a Thursday */
  int64_t first;  /* index of the first bin since the Epoch */
  size_t n;
};

static struct bins
bins_for(const struct rp_report *r)
{
  struct bins b = {.unit = BIN_HOUR, .secs = 3600};
  int64_t from = r->first_ms / 1000, to = r->last_ms / 1000;
  if (to - from > 3 * 86400) {
    b.unit = BIN_DAY;
    b.secs = 86400;
    if ((to - from) / 86400 > 400) {
      b.unit = BIN_WEEK;
      b.secs = 7 * 86400;
      b.offset = 3 * 86400;
    }
  }
  b.first = (from + b.offset) / b.secs;
  b.n = (size_t)((to + b.offset) / b.secs - b.first + 1);
  return b;
}

static int64_t
bin_start(const struct bins *b, size_t i)
{
  return (b->first + (int64_t)i) * b->secs - b->offset;
}

/* Labels every `step` bins such that at most about 12 show. */
static size_t
label_step(const struct bins *b)
{
  static const size_t hour[] = {1, 2, 3, 6, 12, 24, 48, 72};
  static const size_t day[] = {1, 2, 7, 14, 28, 56, 91, 182, 364};
  static const size_t week[] = {1, 2, 4, 8, 13, 26, 52, 104};
  const size_t *c = b->unit == BIN_HOUR  ? hour
                    : b->unit == BIN_DAY ? day
                                         : week;
  size_t n = b->unit == BIN_HOUR  ? RP_ARRAY_LEN(hour)
             : b->unit == BIN_DAY ? RP_ARRAY_LEN(day)
                                  : RP_ARRAY_LEN(week);
  for (size_t i = 0; i < n; i++)
    if (b->n / c[i] <= 12)
      return c[i];
  return c[n - 1] * (b->n / (12 * c[n - 1]) + 1);
}

static struct tm
utc_tm(int64_t secs)
{
  time_t t = (time_t)secs;
  struct tm tm;
  gmtime_r(&t, &tm);
  return tm;
}

/* strftime with a literal format, on seconds since the Epoch in UTC. */
#define FMT_UTC(secs, fmt, buf)                                                \
  do {                                                                         \
    struct tm tm_ = utc_tm(secs);                                              \
    strftime((buf), sizeof(buf), (fmt), &tm_);                                 \
  } while (0)

static double
cadence(const struct rp_report *r, FILE *out, double top)
{
  const double left = 70, right = WIDTH - 30, height = 240;
  const double bottom = top + 30 + height;
  struct bins b = bins_for(r);
  static const char *const titles[] = {"Recycles per hour", "Recycles per day",
                                       "Recycles per week"};
  text(out, left, top + 14, "start", "class=\"h2\"", titles[b.unit]);

  /* counts[p * n + i]: recycles of policy p in bin i. */
  size_t np = r->n_policies;
  uint32_t *counts = rp_xcalloc(np * b.n + 1, sizeof(*counts));
  uint32_t *totals = rp_xcalloc(b.n + 1, sizeof(*totals));
  uint32_t max = 0;
  for (size_t p = 0; p < np; p++) {
    const struct rp_report_group *g = r->policies[p];
    for (size_t k = 0; k < g->n_times; k++) {
      int64_t t = r->base_ms / 1000 + g->times[k];
      int64_t i = (t + b.offset) / b.secs - b.first;
      if (i < 0 || (size_t)i >= b.n)
        continue;
      counts[p * b.n + (size_t)i]++;
      if (++totals[i] > max)
        max = totals[i];
    }
  }

  double step = fmax(1, nice_step(max, 5)); /* whole recycles */
  double ymax = max ? ceil(max / step) * step : 1;
  double scale = height / ymax;
  double plot_top = bottom - height;
  fprintf(out, "<g class=\"cadence\">\n");
  for (double v = 0; v <= ymax + 1e-9; v += step) {
    double y = bottom - v * scale;
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "class=\"grid\"/>\n",
            left, y, right, y);
    char lab[32];
    snprintf(lab, sizeof(lab), "%.0f", v);
    text(out, left - 8, y + 4, "end", "class=\"tick\"", lab);
  }
  fprintf(out,
          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"axis\" "
          "transform=\"rotate(-90 %.1f %.1f)\">recycles</text>\n",
          left - 46, plot_top + height / 2, left - 46, plot_top + height / 2);

  double bw = (right - left) / (double)b.n;
  /* A gap between bars when there is room; a few wide bins stay bars. */
  double barw = fmin(fmax(bw >= 4 ? bw * 0.85 : bw, 0.5), 60);
  static const char *const unit_names[] = {"hour", "day", "week"};
  for (size_t i = 0; i < b.n; i++) {
    double y = bottom;
    char when[40];
    FMT_UTC(bin_start(&b, i), "%Y-%m-%dT%H:%M:%SZ", when);
    for (size_t p = 0; p < np; p++) {
      uint32_t c = counts[p * b.n + i];
      if (!c)
        continue;
      double h = c * scale;
      y -= h;
      fputs("<rect class=\"bar\" data-policy=\"", out);
      esc(out, r->policies[p]->name);
      fprintf(out,
              "\" data-bin=\"%s\" data-count=\"%u\" x=\"%.2f\" y=\"%.2f\" "
              "width=\"%.2f\" height=\"%.2f\" fill=\"%s\"><title>",
              when, c, left + (double)i * bw + (bw - barw) / 2, y, barw, h,
              colour(p));
      esc(out, r->policies[p]->name);
      fprintf(out, ": %u recycle%s in the %s from %s</title></rect>\n", c,
              c == 1 ? "" : "s", unit_names[b.unit], when);
    }
  }
  fprintf(out,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "class=\"axisline\"/>\n",
          left, bottom, right, bottom);
  fprintf(out,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "class=\"axisline\"/>\n",
          left, plot_top, left, bottom);

  /* Hours are labelled on the clock's round hours (00:00, 06:00...), days
   * and weeks counting from the first; the first bin always has a label,
   * and an aligned one too close to it is left out. */
  size_t ls = label_step(&b);
  char year[32] = "";
  for (size_t i = 0; r->lines && i < b.n; i++) {
    size_t pos = b.unit == BIN_HOUR
                     ? (size_t)((b.first + (int64_t)i) % (int64_t)ls)
                     : i % ls;
    if (i != 0 && (pos != 0 || i < (ls + 1) / 2))
      continue;
    double x = left + ((double)i + 0.5) * bw;
    char l1[32], l2[32];
    int64_t s = bin_start(&b, i);
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "class=\"axisline\"/>\n",
            x, bottom, x, bottom + 4);
    if (b.unit == BIN_HOUR) {
      FMT_UTC(s, "%H:00", l1);
      text(out, x, bottom + 17, "middle", "class=\"tick\"", l1);
      if (i == 0 || s % 86400 == 0) {
        FMT_UTC(s, "%b %d", l2);
        text(out, x, bottom + 31, "middle", "class=\"tick\"", l2);
      }
    } else if ((int64_t)ls * b.secs >= 28 * 86400) {
      /* Labels a month or more apart: month and year say it all. */
      FMT_UTC(s, "%b %Y", l1);
      text(out, x, bottom + 17, "middle", "class=\"tick\"", l1);
    } else {
      FMT_UTC(s, "%b %d", l1);
      text(out, x, bottom + 17, "middle", "class=\"tick\"", l1);
      /* The year under the first label and where it changes. */
      FMT_UTC(s, "%Y", l2);
      if (strcmp(l2, year) != 0) {
        snprintf(year, sizeof(year), "%s", l2);
        text(out, x, bottom + 31, "middle", "class=\"tick\"", l2);
      }
    }
  }
  if (max == 0)
    text(out, (left + right) / 2, plot_top + height / 2, "middle",
         "class=\"note\"", "no recycles in this span");
  text(out, right, bottom + 46, "end", "class=\"note\"", "UTC");
  fprintf(out, "</g>\n");
  free(counts);
  free(totals);
  return bottom + 46;
}

/* --- the ages at recycle -------------------------------------------------- */

static double
ages(const struct rp_report *r, FILE *out, double top)
{
  const double row = 34, right = WIDTH - 30;
  /* Room for the longest "NAME (n=COUNT)" at about 8 pixels a character. */
  size_t longest = 8;
  for (size_t p = 0; p < r->n_policies; p++) {
    cleanup_free char *label = rp_xasprintf("%s (n=%zu)", r->policies[p]->name,
                                            r->policies[p]->ratio_st.n);
    if (strlen(label) > longest)
      longest = strlen(label);
  }
  double left = fmin(fmax(8 * (double)longest + 24, 110), 360);
  text(out, 70, top + 14, "start", "class=\"h2\"",
       "Age at recycle, as a fraction of max age");
  text(out, 70, top + 32, "start", "class=\"note\"",
       "box: 25th to 75th percentile, bar: median, whiskers: shortest to "
       "longest, diamond: 95th percentile");

  /* From a quarter below the shortest (ages cluster just under 1.0, where
   * the differences are) to a quarter past 1.0 or the longest. */
  double xmin = 1, xmax = 1.25;
  for (size_t p = 0; p < r->n_policies; p++) {
    const struct rp_report_stats *st = &r->policies[p]->ratio_st;
    if (st->n && st->max * 1.05 > xmax)
      xmax = ceil(st->max * 1.05 * 4) / 4;
    if (st->n && st->min < xmin)
      xmin = st->min;
  }
  xmin = fmax(0, floor((xmin - 0.05) * 4) / 4);
  if (xmax > 2)
    xmin = 0;
  double step = nice_step(xmax - xmin, 8);
  xmin = floor(xmin / step + 1e-9) * step; /* ticks on multiples of step */
  double plot_top = top + 52;
  size_t rows = r->n_policies ? r->n_policies : 1;
  double bottom = plot_top + row * (double)rows;
  double scale = (right - left) / (xmax - xmin);
#define X(v) (left + ((v)-xmin) * scale)

  fprintf(out, "<g class=\"ages\">\n");
  for (double v = xmin; v <= xmax + 1e-9; v += step) {
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "class=\"grid\"/>\n",
            X(v), plot_top, X(v), bottom);
    char lab[32];
    snprintf(lab, sizeof(lab), "%.2f", v);
    /* "0.50" reads as "0.5": drop the zeros a reader does not need. */
    size_t n = strlen(lab);
    while (n > 1 && lab[n - 1] == '0' && strchr(lab, '.'))
      lab[--n] = '\0';
    if (lab[n - 1] == '.')
      lab[--n] = '\0';
    text(out, X(v), bottom + 17, "middle", "class=\"tick\"", lab);
  }
  text(out, (left + right) / 2, bottom + 36, "middle", "class=\"axis\"",
       "age at recycle / max age");

  for (size_t p = 0; p < r->n_policies; p++) {
    const struct rp_report_group *g = r->policies[p];
    const struct rp_report_stats *st = &g->ratio_st;
    double cy = plot_top + row * ((double)p + 0.5);
    cleanup_free char *label = rp_xasprintf("%s (n=%zu)", g->name, st->n);
    text(out, left - 10, cy + 4, "end", "class=\"label\"", label);
    if (!st->n) {
      text(out, left + 8, cy + 4, "start", "class=\"note\"",
           "no recycles with a max age");
      continue;
    }
    const char *c = colour(p);
    fprintf(out, "<g class=\"box\" data-policy=\"");
    esc(out, g->name);
    fprintf(out,
            "\" data-n=\"%zu\" data-min=\"%.4f\" data-median=\"%.4f\" "
            "data-p95=\"%.4f\" data-max=\"%.4f\">\n",
            st->n, st->min, st->p50, st->p95, st->max);
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"%s\" stroke-width=\"1.5\"/>\n",
            X(st->min), cy, X(st->max), cy, c);
    for (int k = 0; k < 2; k++) {
      double v = k ? st->max : st->min;
      fprintf(out,
              "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
              "stroke=\"%s\" stroke-width=\"1.5\"/>\n",
              X(v), cy - 6, X(v), cy + 6, c);
    }
    fprintf(out,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"%s\" fill-opacity=\"0.35\" stroke=\"%s\" "
            "stroke-width=\"1.5\"/>\n",
            X(st->p25), cy - 10, fmax(X(st->p75) - X(st->p25), 1.5), 20.0, c,
            c);
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#222\" stroke-width=\"2.5\"/>\n",
            X(st->p50), cy - 10, X(st->p50), cy + 10);
    double px = X(st->p95);
    fprintf(out,
            "<path d=\"M%.1f %.1fl5 5l-5 5l-5 -5z\" fill=\"%s\" "
            "stroke=\"#222\"/>\n",
            px, cy - 5, c);
    fprintf(out,
            "<title>median %.2f, 95th percentile %.2f, longest %.2f of max "
            "age</title>\n</g>\n",
            st->p50, st->p95, st->max);
  }
  if (!r->n_policies)
    text(out, (left + right) / 2, plot_top + row / 2 + 4, "middle",
         "class=\"note\"", "no recycles in this span");
  if (r->n_policies) {
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "class=\"maxage\"/>\n",
            X(1.0), plot_top - 6, X(1.0), bottom);
    text(out, X(1.0) + 4, plot_top - 8, "start", "class=\"maxlabel\"",
         "max age");
  }
  fprintf(out,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "class=\"axisline\"/>\n",
          left, bottom, right, bottom);
  fprintf(out, "</g>\n");
#undef X
  return bottom + 40;
}

/* --- patch latency ----------------------------------------------------------
 */

/* The unit the latency axis counts in: minutes up to 2 hours, hours up to 3
 * days, days beyond. */
static void
latency_unit(double max_s, double *secs, const char **name)
{
  if (max_s <= 2 * 3600) {
    *secs = 60;
    *name = "minutes";
  } else if (max_s <= 3 * 86400) {
    *secs = 3600;
    *name = "hours";
  } else {
    *secs = 86400;
    *name = "days";
  }
}

/* A step between time ticks giving at most about 8 over span seconds. */
static int64_t
time_step(int64_t span)
{
  static const int64_t steps[] = {
      60,         300,        600,         1800,       3600,      3 * 3600,
      6 * 3600,   12 * 3600,  86400,       2 * 86400,  7 * 86400, 14 * 86400,
      28 * 86400, 91 * 86400, 182 * 86400, 364 * 86400};
  for (size_t i = 0; i < RP_ARRAY_LEN(steps); i++)
    if (span / steps[i] <= 8)
      return steps[i];
  return 364 * 86400 * (span / (8 * 364 * 86400) + 1);
}

static size_t
policy_index(const struct rp_report *r, const struct rp_report_group *g)
{
  for (size_t p = 0; p < r->n_policies; p++)
    if (r->policies[p] == g)
      return p;
  return 0;
}

/* The data-* attributes of a digest's mark in policy g (NULL: none). */
static void
digest_attrs(FILE *out, const struct rp_report_digest *d,
             const struct rp_report_group *g, const char *first)
{
  fputs(" data-reference=\"", out);
  esc(out, d->reference);
  fputs("\" data-digest=\"", out);
  esc(out, d->digest);
  fputs("\" data-policy=\"", out);
  esc(out, g ? g->name : "");
  fprintf(out, "\" data-first-seen=\"%s\"", first);
}

static double
latency_chart(const struct rp_report *r, FILE *out, double top)
{
  const double left = 70, right = WIDTH - 30, height = 220;
  const struct rp_report_fresh *f = &r->fresh;
  text(out, left, top + 14, "start", "class=\"h2\"",
       "Patch latency: from a new digest's first sighting to the last "
       "workload moved to it");
  text(out, left, top + 32, "start", "class=\"note\"",
       "a dot per new digest and policy (in its colour), at the time the "
       "digest was first seen");
  text(out, left, top + 48, "start", "class=\"note\"",
       "not moved: hollow, no workload moved to it yet; dashed, none before "
       "a newer digest was seen");
  double band = top + 74; /* the row of digests not rolled out */
  double plot_top = band + 24, bottom = plot_top + height;

  double max_s = 0;
  for (size_t i = 0; i < f->n_digests; i++)
    for (size_t k = 0; k < f->digests[i]->n_rollouts; k++) {
      const struct rp_report_rollout *ro = &f->digests[i]->rollouts[k];
      if (ro->recycles && !ro->group->provider)
        max_s =
            fmax(max_s, (double)(ro->last_ms - f->digests[i]->first_ms) / 1000);
    }
  double unit;
  const char *unit_name;
  latency_unit(max_s, &unit, &unit_name);
  double step = nice_step(max_s / unit, 5);
  /* Room above the highest dot, so that it does not sit on the edge. */
  double ymax = max_s > 0 ? ceil(max_s * 1.05 / unit / step) * step : 1;
  double scale = height / ymax;

  int64_t from = r->first_ms / 1000, to = r->last_ms / 1000;
  if (to - from < 3600)
    to = from + 3600;
  double xscale = (right - left - 20) / (double)(to - from);
#define X(secs) (left + 10 + (double)((secs)-from) * xscale)

  fprintf(out, "<g class=\"patch-latency\">\n");
  for (double v = 0; v <= ymax + 1e-9; v += step) {
    double y = bottom - v * scale;
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "class=\"grid\"/>\n",
            left, y, right, y);
    char lab[32];
    snprintf(lab, sizeof(lab), "%g", v);
    text(out, left - 8, y + 4, "end", "class=\"tick\"", lab);
  }
  fprintf(out,
          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"axis\" "
          "transform=\"rotate(-90 %.1f %.1f)\">latency, %s</text>\n",
          left - 46, plot_top + height / 2, left - 46, plot_top + height / 2,
          unit_name);
  text(out, 6, band + 4, "start", "class=\"tick\"", "not moved");
  fprintf(out,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "class=\"axisline\"/>\n",
          left, bottom, right, bottom);
  fprintf(out,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "class=\"axisline\"/>\n",
          left, plot_top, left, bottom);

  /* Time ticks on round multiples of the step (UTC), the date under the
   * first one and where it changes. */
  int64_t ts = time_step(to - from);
  char day[32] = "";
  for (int64_t t = (from + ts - 1) / ts * ts; t <= to; t += ts) {
    double x = X(t);
    char l1[32], l2[32];
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "class=\"axisline\"/>\n",
            x, bottom, x, bottom + 4);
    if (ts < 86400) {
      FMT_UTC(t, "%H:%M", l1);
      text(out, x, bottom + 17, "middle", "class=\"tick\"", l1);
      FMT_UTC(t, "%b %d", l2);
    } else {
      FMT_UTC(t, "%b %d", l1);
      text(out, x, bottom + 17, "middle", "class=\"tick\"", l1);
      FMT_UTC(t, "%Y", l2);
    }
    if (strcmp(l2, day) != 0) {
      snprintf(day, sizeof(day), "%s", l2);
      text(out, x, bottom + 31, "middle", "class=\"tick\"", l2);
    }
  }
  text(out, right, bottom + 46, "end", "class=\"note\"", "first seen (UTC)");

  size_t shown = 0;
  for (size_t i = 0; i < f->n_digests; i++) {
    const struct rp_report_digest *d = f->digests[i];
    char first[40], dur[32];
    FMT_UTC(d->first_ms / 1000, "%Y-%m-%dT%H:%M:%SZ", first);
    double x = X(d->first_ms / 1000);
    bool policy_mark = false;
    double bx = x; /* side by side in the band: one per policy */
    for (size_t k = 0; k < d->n_rollouts; k++) {
      const struct rp_report_rollout *ro = &d->rollouts[k];
      if (ro->group->provider)
        continue; /* per policy: services would repeat the same marks */
      policy_mark = true;
      const char *c = colour(policy_index(r, ro->group));
      enum rp_report_digest_state st = rp_report_digest_state(d, ro->recycles);
      if (st == RP_REPORT_DIGEST_ROLLED_OUT) {
        int64_t lat_ms = ro->last_ms - d->first_ms;
        double y = bottom - (double)lat_ms / 1000 / unit * scale;
        fputs("<circle class=\"latency\"", out);
        digest_attrs(out, d, ro->group, first);
        fprintf(out,
                " data-latency-s=\"%.3f\" data-recycles=\"%u\" cx=\"%.1f\" "
                "cy=\"%.1f\" r=\"5\" fill=\"%s\" stroke=\"#222\" "
                "stroke-width=\"0.5\"><title>",
                (double)lat_ms / 1000, ro->recycles, x, y, c);
        esc(out, d->reference);
        fputs(" ", out);
        esc(out, d->digest);
        fputs(" in ", out);
        esc(out, ro->group->name);
        rp_format_duration(lat_ms, dur, sizeof(dur));
        fprintf(out,
                ": first seen %s, %u workload%s moved to it, the last "
                "after %s</title></circle>\n",
                first, ro->recycles, ro->recycles == 1 ? "" : "s", dur);
      } else {
        fputs("<circle class=\"pending\"", out);
        digest_attrs(out, d, ro->group, first);
        fprintf(out,
                " data-state=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" "
                "fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s><title>",
                st == RP_REPORT_DIGEST_PENDING ? "pending" : "superseded", bx,
                band, c,
                st == RP_REPORT_DIGEST_SUPERSEDED ? " stroke-dasharray=\"2 2\""
                                                  : "");
        esc(out, d->reference);
        fputs(" ", out);
        esc(out, d->digest);
        fputs(" in ", out);
        esc(out, ro->group->name);
        fprintf(out,
                ": first seen %s, no workload moved to it%s</title>"
                "</circle>\n",
                first,
                st == RP_REPORT_DIGEST_PENDING ? " yet"
                                               : " before a newer digest");
        bx += 12;
      }
      shown++;
    }
    if (!policy_mark) {
      /* No policy named the reference in these lines. */
      fputs("<circle class=\"pending\"", out);
      digest_attrs(out, d, NULL, first);
      fprintf(out,
              " data-state=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" "
              "fill=\"none\" stroke=\"#777\" stroke-width=\"2\"><title>",
              d->superseded_ms ? "superseded" : "pending", x, band);
      esc(out, d->reference);
      fputs(" ", out);
      esc(out, d->digest);
      fprintf(out,
              ": first seen %s, no workload moved to it</title>"
              "</circle>\n",
              first);
      shown++;
    }
  }
  if (r->overall.latency_st.n) {
    double med = r->overall.latency_st.p50;
    double y = bottom - med / unit * scale;
    char dur[32];
    rp_format_duration((int64_t)llround(med * 1000), dur, sizeof(dur));
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "class=\"median\" data-median-s=\"%.3f\"/>\n",
            left, y, right, y, med);
    cleanup_free char *lab = rp_xasprintf("median %s", dur);
    text(out, right - 4, y - 5, "end", "class=\"medlabel\"", lab);
  }
  if (!shown)
    text(out, (left + right) / 2, plot_top + height / 2, "middle",
         "class=\"note\"", "no new digest in this span");
  fprintf(out, "</g>\n");
#undef X
  return bottom + 46;
}

/* --- the whole picture ---------------------------------------------------- */

/* Swatches and names, wrapped to the width; returns the y below them. */
static double
legend(const struct rp_report *r, FILE *out, double y)
{
  double x = 70;
  fprintf(out, "<g class=\"legend\">\n");
  for (size_t p = 0; p < r->n_policies; p++) {
    const char *name = r->policies[p]->name;
    double w = 22 + 7.5 * (double)strlen(name) + 18;
    if (x + w > WIDTH - 30 && x > 70) {
      x = 70;
      y += 20;
    }
    fprintf(out,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" "
            "fill=\"%s\"/>\n",
            x, y - 11, colour(p));
    text(out, x + 20, y + 1, "start", "class=\"label\"", name);
    x += w;
  }
  fprintf(out, "</g>\n");
  return y + 14;
}

int
rp_report_write_svg(const struct rp_report *r, FILE *out, struct rp_error **err)
{
  /* Written into memory first: the height is known only at the end. */
  char *body = NULL;
  size_t body_len = 0;
  FILE *b = open_memstream(&body, &body_len);
  if (!b)
    return rp_error_set(err, errno, "report: svg: %s", strerror(errno));

  char from[40], to[40], sub[256];
  FMT_UTC(r->first_ms / 1000, "%Y-%m-%d %H:%M", from);
  FMT_UTC(r->last_ms / 1000, "%Y-%m-%d %H:%M", to);
  text(b, 30, 36, "start", "class=\"h1\"", "reaper: recycles by policy");
  if (r->lines)
    snprintf(sub, sizeof(sub), "%s to %s UTC  ·  %llu recycled, %llu failed",
             from, to, (unsigned long long)r->overall.done,
             (unsigned long long)r->overall.failed);
  else
    snprintf(sub, sizeof(sub), "no audit lines in this span");
  text(b, 30, 60, "start", "class=\"sub\"", sub);
  double y = 60;
  char tol[32];
  rp_format_duration(r->opt.tolerance_ms, tol, sizeof(tol));
  size_t over = json_array_size(r->overstayed);
  size_t open = json_array_size(r->not_recycled);
  if (over)
    snprintf(sub, sizeof(sub), "%zu lived longer than max age + %s", over, tol);
  else
    snprintf(sub, sizeof(sub), "none lived longer than max age + %s", tol);
  if (open) {
    size_t n = strlen(sub);
    snprintf(sub + n, sizeof(sub) - n,
             "  ·  %zu not recycled after a failed or unfinished recycle",
             open);
  }
  y += 20;
  text(b, 30, y, "start", over || open ? "class=\"alert\"" : "class=\"ok\"",
       sub);
  if (r->fresh.any) {
    const struct rp_report_group *g = &r->overall;
    size_t n = g->latency_st.n + g->digests_pending + g->digests_superseded;
    snprintf(sub, sizeof(sub), "%zu new digest%s: %zu rolled out", n,
             n == 1 ? "" : "s", g->latency_st.n);
    if (g->latency_st.n) {
      char med[32], worst[32];
      rp_format_duration((int64_t)llround(g->latency_st.p50 * 1000), med,
                         sizeof(med));
      rp_format_duration((int64_t)llround(g->latency_st.max * 1000), worst,
                         sizeof(worst));
      size_t len = strlen(sub);
      snprintf(sub + len, sizeof(sub) - len,
               " (patch latency median %s, worst %s)", med, worst);
    }
    size_t len = strlen(sub);
    snprintf(sub + len, sizeof(sub) - len, ", %llu pending, %llu superseded",
             (unsigned long long)g->digests_pending,
             (unsigned long long)g->digests_superseded);
    y += 20;
    text(b, 30, y, "start", "class=\"sub\"", sub);
  }
  if (r->chain_problem) {
    y += 20;
    text(b, 30, y, "start", "class=\"alert\"",
         "warning: the audit chain does not verify");
  }

  y = legend(r, b, y + 30);
  y = cadence(r, b, y + 14);
  y = ages(r, b, y + 20);
  if (r->fresh.any)
    y = latency_chart(r, b, y + 10);
  if (fclose(b) != 0) {
    free(body);
    return rp_error_set(err, EIO, "report: svg: %s", strerror(errno));
  }

  double height = ceil(y + 10);
  fprintf(out,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
          "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\">\n",
          WIDTH, height, WIDTH, height, FONT);
  fputs("<style>\n"
        ".h1{font-size:22px;font-weight:bold;fill:#222}\n"
        ".h2{font-size:16px;font-weight:bold;fill:#222}\n"
        ".sub{font-size:13px;fill:#555}\n"
        ".alert{font-size:13px;fill:#c0392b;font-weight:bold}\n"
        ".ok{font-size:13px;fill:#2e7d32}\n"
        ".label{font-size:13px;fill:#222}\n"
        ".tick{font-size:12px;fill:#444}\n"
        ".axis{font-size:12px;fill:#444}\n"
        ".note{font-size:12px;fill:#777;font-style:italic}\n"
        ".grid{stroke:#e3e3e3;stroke-width:1}\n"
        ".axisline{stroke:#555;stroke-width:1}\n"
        ".maxage{stroke:#d62728;stroke-width:2;stroke-dasharray:6 4}\n"
        ".maxlabel{font-size:12px;fill:#d62728;font-weight:bold}\n"
        ".median{stroke:#222;stroke-width:1.5;stroke-dasharray:6 4}\n"
        ".medlabel{font-size:12px;fill:#222}\n"
        "</style>\n",
        out);
  fprintf(out, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
  fwrite(body, 1, body_len, out);
  fputs("</svg>\n", out);
  free(body);
  if (fflush(out) != 0 || ferror(out))
    return rp_error_set(err, EIO, "report: svg: write: %s", strerror(errno));
  return 0;
}

int
rp_report_write_svg_file(const struct rp_report *r, const char *path,
                         struct rp_error **err)
{
  FILE *f = fopen(path, "w");
  if (!f)
    return rp_error_set(err, errno, "report: open %s: %s", path,
                        strerror(errno));
  errno = 0;
  int rc = rp_report_write_svg(r, f, NULL);
  if (fclose(f) != 0 || rc != 0) {
    int e = errno ? errno : EIO;
    return rp_error_set(err, e, "report: write %s: %s", path, strerror(e));
  }
  return 0;
}
