/*
 * Levelled logging for the daemons: one line per event on stderr,
 *
 *   2024/11/25 01:02:03.456 [info] 1234: listening on 0.0.0.0:3139
 *
 * The level is process-wide (goim_log_level) so SIGHUP can change it; the
 * macros test it before formatting, so a debug line costs one comparison
 * when debug logging is off.
 */

#ifndef GOIM_UV_LOG_H
#define GOIM_UV_LOG_H

#pragma GCC visibility push(hidden)

typedef enum {
    GOIM_LOG_DEBUG = 0,
    GOIM_LOG_INFO = 1,
    GOIM_LOG_WARN = 2,
    GOIM_LOG_ERROR = 3
} goim_log_level_t;

extern int  goim_log_level;

void goim_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "debug", "info", "warn" (or "warning"), "error" -> level, or -1. */
int goim_log_level_parse(const char *name);
const char *goim_log_level_name(int level);

#define goim_log_at(level, ...)                                               \
    do {                                                                      \
        if ((level) >= goim_log_level) {                                      \
            goim_log(level, __VA_ARGS__);                                     \
        }                                                                     \
    } while (0)

#define goim_log_debug(...)  goim_log_at(GOIM_LOG_DEBUG, __VA_ARGS__)
#define goim_log_info(...)   goim_log_at(GOIM_LOG_INFO, __VA_ARGS__)
#define goim_log_warn(...)   goim_log_at(GOIM_LOG_WARN, __VA_ARGS__)
#define goim_log_error(...)  goim_log_at(GOIM_LOG_ERROR, __VA_ARGS__)

#pragma GCC visibility pop

#endif /* GOIM_UV_LOG_H */
