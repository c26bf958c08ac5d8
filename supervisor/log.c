/* herdd's log: one line per message on stderr, which systemd's journal or a
 * terminal picks up. Only the loop thread logs, so no locking. */
#include "supervisor/supervisor.h"

#include <stdarg.h>
#include <stdio.h>

static enum base_log_level max_level = BASE_LOG_INFO;

void sup_log_set_level(enum base_log_level level)
{
    max_level = level;
}

void sup_log(enum base_log_level level, const char *component, const char *fmt, ...)
{
    char ts[BASE_TIME_ISO_MAX];
    va_list ap;

    if (level > max_level)
        return;
    base_time_format(base_now_ms(), ts);
    fprintf(stderr, "%s %s %s: ", ts, base_log_level_name(level), component);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
