/* Assertions, messages for a person, log levels. */
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void base__assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "herd: assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
}

int base_verrf(char *err, size_t err_size, const char *fmt, va_list ap)
{
    if (err != NULL && err_size > 0)
        vsnprintf(err, err_size, fmt, ap);
    return -EINVAL;
}

int base_errf(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    base_verrf(err, err_size, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *base_log_level_name(enum base_log_level level)
{
    return (unsigned)level <= BASE_LOG_DEBUG ? level_names[level] : "unknown";
}

int base_log_level_parse(const char *s, enum base_log_level *out)
{
    for (int i = BASE_LOG_ERROR; s != NULL && i <= BASE_LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum base_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}
