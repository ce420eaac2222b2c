/* Logs for people on stderr, one line per event with time and level, or one
 * JSON object per line for machines (--log-format json). */
#ifndef RP_LOG_H
#define RP_LOG_H

#include <stdbool.h>

#include <jansson.h>

enum rp_log_level { RP_LOG_DEBUG, RP_LOG_INFO, RP_LOG_WARN, RP_LOG_ERROR };

void rp_log_setup(bool json, enum rp_log_level min_level);
void rp_log(enum rp_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* With structured fields (borrowed, may be NULL): in text mode they follow
 * the message as key=value. */
void rp_log_fields(enum rp_log_level level, json_t *fields, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));

#define rp_debug(...) rp_log(RP_LOG_DEBUG, __VA_ARGS__)
#define rp_info(...) rp_log(RP_LOG_INFO, __VA_ARGS__)
#define rp_warn(...) rp_log(RP_LOG_WARN, __VA_ARGS__)
#define rp_err(...) rp_log(RP_LOG_ERROR, __VA_ARGS__)

#endif
