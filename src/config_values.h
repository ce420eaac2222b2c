/* Internal to the configuration module: the syntaxes of single values
 * (booleans, numbers, percentages, days, times, time zones, event names)
 * and "did you mean" suggestions.  Pure functions of their text, except the
 * time zone check, which looks at the zoneinfo database.  The public
 * rp_duration_parse and rp_strategy_* are declared in config.h. */
#ifndef RP_CONFIG_VALUES_H
#define RP_CONFIG_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* true/True/TRUE/false/False/FALSE.  On -1, *why is a static suffix for
 * the message (may be ""). */
int rp_config_bool_parse(const char *s, bool *out, const char **why);
/* Decimal digits only, no sign, at most 9 digits. */
int rp_config_int_parse(const char *s, long *out);
/* "10%", "2.5%" or "0" to a fraction in [0, 1]. */
int rp_config_jitter_parse(const char *s, double *out, const char **why);
/* "2" (>= 1) or "25%" (1..100). */
int rp_config_budget_parse(const char *s, struct rp_budget *out,
                           const char **why);
/* "mon".."sun", "monday".."sunday", "weekdays", "weekend" (any case) to
 * bits as struct rp_window's days. */
int rp_config_day_parse(const char *s, uint8_t *bits);
extern const char *const rp_config_day_names[];
/* "H:MM" or "HH:MM", 00:00..23:59, to minutes after midnight. */
int rp_config_hhmm_parse(const char *s, int *out_min);
/* Whether s names a time zone: "UTC", or a TZif file under $TZDIR or
 * /usr/share/zoneinfo.  Names with "..", a leading "/" or characters
 * outside [A-Za-z0-9/_+-] are refused before touching the disk. */
int rp_config_zone_check(const char *s, const char **why);

/* Audit and notification event names a notifier may subscribe to. */
extern const char *const rp_config_events[];
/* A known event, "*", or "PREFIX.*" for a known prefix (recycle.*). */
bool rp_config_event_known(const char *s);

/* "a, b, c" (owned) from a NULL-terminated list. */
char *rp_config_join_list(const char *const *list);
/* Edit distance (optimal string alignment), case-insensitive. */
size_t rp_config_distance(const char *a, const char *b);
/* The entry of the NULL-terminated list closest to s when close enough to
 * be a likely typo, else NULL. */
const char *rp_config_suggest(const char *s, const char *const *known);

#endif
