/*
 * Levelled logging (see goim_uv_log.h).  Each line is formatted into one
 * buffer and written with a single write(2), so lines from concurrent
 * processes sharing a log file never interleave mid-line.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "goim_uv_log.h"


int  goim_log_level = GOIM_LOG_INFO;

static const char  *goim_log_names[] = { "debug", "info", "warn", "error" };


void
goim_log(int level, const char *fmt, ...)
{
    char            line[2048];
    size_t          n;
    int             rc;
    va_list         ap;
    struct tm       tm;
    struct timeval  tv;

    if (level < GOIM_LOG_DEBUG || level > GOIM_LOG_ERROR) {
        level = GOIM_LOG_ERROR;
    }

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);

    n = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S", &tm);
    rc = snprintf(line + n, sizeof(line) - n, ".%03d [%s] %d: ",
                  (int) (tv.tv_usec / 1000), goim_log_names[level],
                  (int) getpid());
    n += rc > 0 ? (size_t) rc : 0;

    va_start(ap, fmt);
    rc = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);

    if (rc > 0) {
        n += (size_t) rc;
    }

    if (n > sizeof(line) - 2) {
        n = sizeof(line) - 2;       /* truncated: still one whole line */
    }

    line[n++] = '\n';

    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report it */
    }
}


int
goim_log_level_parse(const char *name)
{
    int  i;

    if (strcasecmp(name, "warning") == 0) {
        return GOIM_LOG_WARN;
    }

    for (i = GOIM_LOG_DEBUG; i <= GOIM_LOG_ERROR; i++) {
        if (strcasecmp(name, goim_log_names[i]) == 0) {
            return i;
        }
    }

    return -1;
}


const char *
goim_log_level_name(int level)
{
    if (level < GOIM_LOG_DEBUG || level > GOIM_LOG_ERROR) {
        return "?";
    }

    return goim_log_names[level];
}
