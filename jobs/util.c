/* Small helpers of the jobs module: time, ids, names, UTF-8, logging. */
#include "jobs/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char *const status_names[JOBS__N_STATUS] = {
    "queued", "running", "completed", "failed", "cancelled",
};

const char *jobs__status_name(int status)
{
    return status >= 0 && status < JOBS__N_STATUS ? status_names[status] : "unknown";
}

int jobs__status_parse(const char *s)
{
    for (int i = 0; s && i < JOBS__N_STATUS; i++)
        if (strcmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

bool jobs__is_terminal(int status)
{
    return status == JOBS__COMPLETED || status == JOBS__FAILED || status == JOBS__CANCELLED;
}

int64_t jobs__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void jobs__format_time(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    /* strftime keeps the compiler's format-truncation analysis quiet about
     * years it cannot bound. */
    char date[24];
    if (strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        date[0] = '\0';
    snprintf(out, 32, "%.23s.%03dZ", date, (int)(ms % 1000));
}

int jobs__parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int frac = 0, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -EINVAL;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (strcmp(p, "Z") != 0)
        return -EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}

int jobs__new_id(char out[JOBS__ID_LEN + 1])
{
    unsigned char r[JOBS__ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof r; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[JOBS__ID_LEN] = '\0';
    return 0;
}

bool jobs__id_valid(const char *s)
{
    if (!s || strlen(s) != JOBS__ID_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

bool jobs__name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > JOBS__NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Length of the valid UTF-8 sequence at p (1-4), 0 when invalid, or -1 when
 * it is a valid but incomplete prefix cut by the end of the input. */
static int utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    int n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= avail)
            return -1;
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
        /* Reject overlongs, surrogates and > U+10FFFF as early as we can. */
        if (i == 1 && n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f)))
            return 0;
        if (i == 1 && n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f)))
            return 0;
    }
    if (cp < min)
        return 0;
    return n;
}

json_t *jobs__utf8_json(const char *data, size_t len, bool partial, size_t *used)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t i = 0, clean = 0;
    bool ok = true;
    /* Fast path: most output is valid UTF-8 and goes through as is; ASCII
     * is skipped a word at a time. */
    while (i < len) {
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int n = utf8_seq(p + i, len - i);
        if (n <= 0) {
            if (n < 0 && partial) {
                len = i;
                break;
            }
            ok = false;
            break;
        }
        i += (size_t)n;
    }
    if (ok) {
        if (used)
            *used = len;
        return json_stringn_nocheck(data, len); /* checked above */
    }
    /* Slow path: copy, replacing each invalid byte by U+FFFD (EF BF BD). */
    size_t cap = len * 3 + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (i = 0; i < len;) {
        int n = utf8_seq(p + i, len - i);
        if (n < 0 && partial)
            break;
        if (n <= 0) {
            memcpy(out + clean, "\xef\xbf\xbd", 3);
            clean += 3;
            i++;
            continue;
        }
        memcpy(out + clean, p + i, (size_t)n);
        clean += (size_t)n;
        i += (size_t)n;
    }
    if (used)
        *used = i;
    json_t *s = json_stringn_nocheck(out, clean); /* valid by construction */
    free(out);
    return s;
}

void jobs__log(jobs *j, int level, const char *fmt, ...)
{
    if (!j->hooks.log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    j->hooks.log(level, msg, j->hooks.data);
}

void jobs__write_error(jobs *j, const char *what, int err)
{
    char msg[sizeof j->last_write_error];
    const char *why = strerror(err < 0 ? -err : err);
    /* Shorten the place, never the reason. */
    int room = (int)(sizeof msg - strlen(why) - 3);
    snprintf(msg, sizeof msg, "%.*s: %s", room > 0 ? room : 0, what, why);
    /* Log a repeat of the same error once, not on every flush. */
    if (strcmp(msg, j->last_write_error) != 0)
        jobs__log(j, JOBS_LOG_ERROR, "%s", msg);
    memcpy(j->last_write_error, msg, sizeof msg);
    j->write_errors++;
}

/* jobs__write_all writes all n bytes, retrying short writes and EINTR. */
int jobs__write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}
