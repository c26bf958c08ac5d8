/* Growable byte buffer for replies built without jansson trees. */
#include "catalog/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void catalog_buf_free(catalog_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int catalog__buf_reserve(catalog_buf *b, size_t more)
{
    if (more > SIZE_MAX - b->len - 1)
        return -ENOMEM;
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int catalog__buf_add(catalog_buf *b, const void *data, size_t len)
{
    if (catalog__buf_reserve(b, len) < 0)
        return -ENOMEM;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int catalog__buf_adds(catalog_buf *b, const char *s)
{
    return catalog__buf_add(b, s, strlen(s));
}

int catalog__buf_addf(catalog_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || catalog__buf_reserve(b, (size_t)n) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int catalog__buf_json_string(catalog_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (catalog__buf_reserve(b, len + 2) < 0)
        return -ENOMEM;
    b->data[b->len++] = '"';
    size_t run = 0; /* start of the pending unescaped run */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (catalog__buf_add(b, s + run, i - run) < 0)
            return -ENOMEM;
        char esc[7] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (catalog__buf_add(b, esc, n) < 0)
            return -ENOMEM;
        run = i + 1;
    }
    if (catalog__buf_add(b, s + run, len - run) < 0)
        return -ENOMEM;
    return catalog__buf_add(b, "\"", 1);
}
