/* herdd's log: one line per message on stderr, which systemd's journal or a
 * terminal picks up. Only the loop thread logs, so no locking. */
#include "supervisor/supervisor.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum sup_log_level max_level = SUP_LOG_INFO;

void sup_log_set_level(enum sup_log_level level)
{
    max_level = level;
}

void sup_log(enum sup_log_level level, const char *component, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (level > max_level)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s %s: ", ts, now.tv_nsec / 1000000, names[level], component);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
