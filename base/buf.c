/* Growable byte buffers, and JSON string escaping into them. */
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define BUF_INITIAL 256

void base_buf_free(base_buf *b)
{
    if (b == NULL)
        return;
    base_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int base_buf_reserve(base_buf *b, size_t more)
{
    if (more > SIZE_MAX - b->len - 1)
        return -ENOMEM;
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap != 0 ? b->cap : BUF_INITIAL;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = base_realloc(b->data, cap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int base_buf_add(base_buf *b, const void *data, size_t len)
{
    if (base_buf_reserve(b, len) < 0)
        return -ENOMEM;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int base_buf_adds(base_buf *b, const char *s)
{
    return base_buf_add(b, s, strlen(s));
}

int base_buf_addf(base_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || base_buf_reserve(b, (size_t)n) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void base_buf_consume(base_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data != NULL)
        b->data[b->len] = '\0';
}

/* Word-at-a-time helpers: escaping touches every byte of a job's output, so
 * it looks at 8 of them per step. zero_mask sets the high bit of each zero
 * byte of x; escape_mask flags bytes below 0x20, '"' and '\\' (it may also
 * flag a byte just past a real hit, which only sends that word to the byte
 * loop). */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
#define LOWS 0x7f7f7f7f7f7f7f7full

static inline uint64_t zero_mask(uint64_t x)
{
    return ~(((x & LOWS) + LOWS) | x | LOWS);
}

static inline uint64_t escape_mask(uint64_t w)
{
    uint64_t below = (w - ONES * 0x20) & ~w & HIGHS;
    return below | zero_mask(w ^ (ONES * '"')) | zero_mask(w ^ (ONES * '\\'));
}

int base_buf_json_string(base_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0, i = 0; /* run: start of the bytes copied as they are */

    if (base_buf_reserve(b, len + 2) < 0 || base_buf_add(b, "\"", 1) < 0)
        return -ENOMEM;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (escape_mask(w) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        char esc[6] = {'\\', 0};
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
        if (base_buf_add(b, s + run, i - run) < 0 || base_buf_add(b, esc, n) < 0)
            return -ENOMEM;
        run = ++i;
    }
    if (base_buf_add(b, s + run, len - run) < 0 || base_buf_add(b, "\"", 1) < 0)
        return -ENOMEM;
    return 0;
}
