/* Wall-clock time as herd writes it everywhere: ISO-8601 UTC with
 * milliseconds ("2026-12-02T02:01:01.123Z"). */
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t base_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void base_time_format(int64_t ms, char out[BASE_TIME_ISO_MAX])
{
    /* Floor division, so instants before the epoch come out right too. */
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    unsigned frac = (unsigned)(ms - s * 1000);
    time_t t = (time_t)s;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, BASE_TIME_ISO_MAX, "invalid");
        return;
    }
    /* The modulos bound every field for the compiler's truncation check;
     * years beyond 9999 are not herd's. */
    snprintf(out, BASE_TIME_ISO_MAX, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
             (unsigned)tm.tm_sec % 100u, frac % 1000u);
}

/* digits reads exactly n decimal digits at s. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int base_time_parse(const char *s, int64_t *ms)
{
    struct tm tm, back;
    int year, mon, mday, hour, min, sec, frac = 0;

    /* Exactly "YYYY-MM-DDTHH:MM:SS", then an optional fraction, then "Z". */
    if (s == NULL || strlen(s) < 20 || digits(s, 4, &year) < 0 || s[4] != '-' ||
        digits(s + 5, 2, &mon) < 0 || s[7] != '-' || digits(s + 8, 2, &mday) < 0 || s[10] != 'T' ||
        digits(s + 11, 2, &hour) < 0 || s[13] != ':' || digits(s + 14, 2, &min) < 0 ||
        s[16] != ':' || digits(s + 17, 2, &sec) < 0)
        return -EINVAL;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac = frac * 10 + (*p - '0');
        if (n == 0)
            return -EINVAL;
        for (; n < 3; n++)
            frac *= 10;
    }
    if (strcmp(p, "Z") != 0)
        return -EINVAL;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = mday;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    /* timegm rolls fields over (month 13, 24:00, Feb 30): a time that does
     * not come back as written is refused. */
    if (gmtime_r(&t, &back) == NULL || back.tm_year != year - 1900 || back.tm_mon != mon - 1 ||
        back.tm_mday != mday || back.tm_hour != hour || back.tm_min != min || back.tm_sec != sec)
        return -EINVAL;
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}
