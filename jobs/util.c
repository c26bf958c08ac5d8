/* Small helpers of the jobs module: status names, ids, output as JSON
 * strings, logging. */
#include "jobs/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[JOBS__N_STATUS] = {
    "queued", "running", "completed", "failed", "cancelled",
};

const char *jobs__status_name(int status)
{
    return status >= 0 && status < JOBS__N_STATUS ? status_names[status] : "unknown";
}

int jobs__status_parse(const char *s)
{
    for (int i = 0; s != NULL && i < JOBS__N_STATUS; i++)
        if (strcmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

bool jobs__is_terminal(int status)
{
    return status == JOBS__COMPLETED || status == JOBS__FAILED || status == JOBS__CANCELLED;
}

int jobs__new_id(char out[JOBS__ID_LEN + 1])
{
    return base_random_hex(out, JOBS__ID_LEN / 2);
}

bool jobs__id_valid(const char *s)
{
    if (s == NULL || strlen(s) != JOBS__ID_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
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
        int n = base_utf8_len(p + i, len - i);
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
        if (used != NULL)
            *used = len;
        return json_stringn_nocheck(data, len); /* checked above */
    }
    /* Slow path: copy, replacing each invalid byte by U+FFFD (EF BF BD). */
    size_t cap = len * 3 + 1;
    char *out = base_malloc(cap);
    if (out == NULL)
        return NULL;
    for (i = 0; i < len;) {
        int n = base_utf8_len(p + i, len - i);
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
    if (used != NULL)
        *used = i;
    json_t *s = json_stringn_nocheck(out, clean); /* valid by construction */
    base_free(out);
    return s;
}

void jobs__log(jobs *j, enum base_log_level level, const char *fmt, ...)
{
    if (j->hooks.log == NULL)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    j->hooks.log(level, msg, j->hooks.data);
}

void jobs__write_error(jobs *j, const char *what, int err)
{
    char msg[sizeof(j->last_write_error)];
    const char *why = strerror(err < 0 ? -err : err);
    /* Shorten the place, never the reason. */
    int room = (int)(sizeof(msg) - strlen(why) - 3);
    snprintf(msg, sizeof(msg), "%.*s: %s", room > 0 ? room : 0, what, why);
    /* Log a repeat of the same error once, not on every flush. */
    if (strcmp(msg, j->last_write_error) != 0)
        jobs__log(j, BASE_LOG_ERROR, "%s", msg);
    memcpy(j->last_write_error, msg, sizeof(msg));
    j->write_errors++;
}
