/* Ids and section names double as path components; see catalog.h. */
#include "catalog/internal.h"

#include <stdio.h>
#include <string.h>

int catalog__check_name(const char *s, size_t len, char *why, size_t why_size)
{
    const char *reason = NULL;
    char tmp[64];
    if (len == 0) {
        reason = "is empty";
    } else if (len > CATALOG_NAME_MAX) {
        snprintf(tmp, sizeof(tmp), "is %zu bytes, over %d", len, CATALOG_NAME_MAX);
        reason = tmp;
    } else if (len == 1 && s[0] == '.') {
        reason = "is '.'";
    } else {
        for (size_t i = 0; i < len && reason == NULL; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == 0)
                reason = "contains a NUL byte";
            else if (c < 0x20 || c == 0x7f)
                reason = "contains a control byte";
            else if (c == '/')
                reason = "contains '/'";
            else if (c == '.' && i + 1 < len && s[i + 1] == '.')
                reason = "contains '..'";
        }
    }
    if (reason == NULL)
        return 0;
    snprintf(why, why_size, "%s", reason);
    return -EINVAL;
}

void catalog__quote(const char *s, size_t len, char *out, size_t out_size)
{
    /* room for the worst escape (\u00XX), the closing quote, "..." and NUL */
    size_t o = 0;
    if (out_size < 16) {
        if (out_size)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 12 > out_size) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, out_size - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}
