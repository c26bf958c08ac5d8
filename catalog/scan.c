/*
 * A validating pull scanner over JSON text held in memory.
 *
 * Design notes
 * - The scanner never builds a tree: it walks bytes and reports byte ranges,
 *   so a catalog of any size is validated in O(depth) memory. Callers parse
 *   one small range at a time (an entry) with jansson if they need values.
 * - It accepts exactly RFC 8259 JSON: strict number grammar, no control
 *   bytes in strings, well-formed UTF-8, \u escapes with paired surrogates
 *   (jansson refuses lone surrogates too, so both agree on what is valid).
 * - Nesting is tracked on an explicit stack bounded by CATALOG__SCAN_DEPTH,
 *   never by recursion.
 * - On failure s->err is a static reason and s->err_pos the offending byte.
 */
#include "catalog/internal.h"

#include <string.h>

void catalog__scan_init(catalog__scan *s, const void *buf, size_t len)
{
    s->buf = buf;
    s->len = len;
    s->pos = 0;
    s->err = NULL;
    s->err_pos = 0;
}

static int fail(catalog__scan *s, size_t pos, const char *why)
{
    s->err = why;
    s->err_pos = pos;
    return -EINVAL;
}

static void skip_ws(catalog__scan *s)
{
    while (s->pos < s->len) {
        char c = s->buf[s->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        s->pos++;
    }
}

int catalog__scan_peek(catalog__scan *s)
{
    skip_ws(s);
    return s->pos < s->len ? (unsigned char)s->buf[s->pos] : -1;
}

int catalog__scan_expect(catalog__scan *s, char c)
{
    static const char *const msgs[] = {"expected '{'", "expected '}'", "expected '['",
                                       "expected ']'", "expected ':'", "expected ','"};
    static const char chars[] = "{}[]:,";
    if (catalog__scan_peek(s) == (unsigned char)c) {
        s->pos++;
        return 0;
    }
    const char *why = "unexpected character";
    const char *k = strchr(chars, c);
    if (k)
        why = msgs[k - chars];
    if (s->pos >= s->len)
        why = "unexpected end of input";
    return fail(s, s->pos, why);
}

int catalog__scan_end(catalog__scan *s)
{
    if (catalog__scan_peek(s) != -1)
        return fail(s, s->pos, "trailing data after the JSON value");
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (non-ASCII lead byte), or 0. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    size_t n;
    unsigned min, cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int catalog__scan_string(catalog__scan *s, size_t *start, size_t *end)
{
    skip_ws(s);
    if (s->pos >= s->len)
        return fail(s, s->pos, "unexpected end of input");
    if (s->buf[s->pos] != '"')
        return fail(s, s->pos, "expected a string");
    size_t p = s->pos + 1;
    const unsigned char *b = (const unsigned char *)s->buf;
    for (;;) {
        if (p >= s->len)
            return fail(s, p, "unterminated string");
        unsigned c = b[p];
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(s, p, "control character in string");
        if (c == '\\') {
            if (p + 1 >= s->len)
                return fail(s, p, "unterminated string");
            char e = (char)b[p + 1];
            if (strchr("\"\\/bfnrt", e) && e != '\0') {
                p += 2;
                continue;
            }
            if (e != 'u')
                return fail(s, p, "invalid escape in string");
            unsigned u, lo;
            if (p + 6 > s->len || hex4(s->buf + p + 2, &u) < 0)
                return fail(s, p, "invalid \\u escape");
            p += 6;
            if (u >= 0xdc00 && u <= 0xdfff)
                return fail(s, p - 6, "lone low surrogate in \\u escape");
            if (u >= 0xd800 && u <= 0xdbff) {
                if (p + 6 > s->len || b[p] != '\\' || b[p + 1] != 'u' ||
                    hex4(s->buf + p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                    return fail(s, p - 6, "lone high surrogate in \\u escape");
                p += 6;
            }
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n = utf8_len(b + p, s->len - p);
        if (n == 0)
            return fail(s, p, "invalid UTF-8 in string");
        p += n;
    }
    *start = s->pos;
    *end = p + 1;
    s->pos = p + 1;
    return 0;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int scan_number(catalog__scan *s)
{
    size_t p = s->pos;
    const char *b = s->buf;
    size_t n = s->len;
    if (p < n && b[p] == '-')
        p++;
    if (p >= n || !is_digit(b[p]))
        return fail(s, p, "invalid number");
    if (b[p] == '0')
        p++;
    else
        while (p < n && is_digit(b[p]))
            p++;
    if (p < n && b[p] == '.') {
        p++;
        if (p >= n || !is_digit(b[p]))
            return fail(s, p, "invalid number");
        while (p < n && is_digit(b[p]))
            p++;
    }
    if (p < n && (b[p] == 'e' || b[p] == 'E')) {
        p++;
        if (p < n && (b[p] == '+' || b[p] == '-'))
            p++;
        if (p >= n || !is_digit(b[p]))
            return fail(s, p, "invalid number");
        while (p < n && is_digit(b[p]))
            p++;
    }
    s->pos = p;
    return 0;
}

static int scan_literal(catalog__scan *s, const char *word)
{
    size_t n = strlen(word);
    if (s->len - s->pos < n || memcmp(s->buf + s->pos, word, n) != 0)
        return fail(s, s->pos, "invalid literal");
    s->pos += n;
    return 0;
}

/* A scalar at s->pos (after whitespace): string, number or literal. */
static int scan_scalar(catalog__scan *s, int c)
{
    size_t a, b;
    switch (c) {
    case '"':
        return catalog__scan_string(s, &a, &b);
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        if (c == '-' || is_digit(c))
            return scan_number(s);
        return fail(s, s->pos, c < 0 ? "unexpected end of input" : "expected a JSON value");
    }
}

int catalog__scan_value(catalog__scan *s, size_t *start, size_t *end)
{
    /* stack[i] is '{' or '['; `want` says what the top container expects next */
    char stack[CATALOG__SCAN_DEPTH];
    int depth = 0;
    int c = catalog__scan_peek(s);
    *start = s->pos;
    if (c != '{' && c != '[') {
        int rc = scan_scalar(s, c);
        *end = s->pos;
        return rc;
    }
    /* `first` is true right after an opening bracket. */
    int first = 0;
    for (;;) {
        c = catalog__scan_peek(s);
        if (depth > 0 && !first) {
            char close = stack[depth - 1] == '{' ? '}' : ']';
            if (c == close) {
                s->pos++;
                depth--;
                if (depth == 0)
                    break;
                continue;
            }
            if (c != ',')
                return fail(s, s->pos,
                            c < 0 ? "unexpected end of input"
                                  : (close == '}' ? "expected ',' or '}'" : "expected ',' or ']'"));
            s->pos++;
            c = catalog__scan_peek(s);
        } else if (depth > 0 && first) {
            char close = stack[depth - 1] == '{' ? '}' : ']';
            first = 0;
            if (c == close) {
                s->pos++;
                depth--;
                if (depth == 0)
                    break;
                continue;
            }
        }
        /* Now at a value (array element), or a member (object). */
        if (depth > 0 && stack[depth - 1] == '{') {
            size_t ka, kb;
            if (c != '"')
                return fail(s, s->pos, c < 0 ? "unexpected end of input" : "expected a string key");
            if (catalog__scan_string(s, &ka, &kb) < 0)
                return -EINVAL;
            if (catalog__scan_expect(s, ':') < 0)
                return -EINVAL;
            c = catalog__scan_peek(s);
        }
        if (c == '{' || c == '[') {
            if (depth == CATALOG__SCAN_DEPTH)
                return fail(s, s->pos, "nesting too deep");
            stack[depth++] = (char)c;
            s->pos++;
            first = 1;
            continue;
        }
        if (depth == 0)
            return fail(s, s->pos, "internal scanner state");
        if (scan_scalar(s, c) < 0)
            return -EINVAL;
    }
    *end = s->pos;
    return 0;
}

int catalog__scan_member(catalog__scan *s, int *first, size_t *key_start, size_t *key_end)
{
    int c = catalog__scan_peek(s);
    if (c == '}') {
        s->pos++;
        return 0;
    }
    if (!*first) {
        if (c != ',')
            return fail(s, s->pos, c < 0 ? "unexpected end of input" : "expected ',' or '}'");
        s->pos++;
    }
    *first = 0;
    if (catalog__scan_string(s, key_start, key_end) < 0)
        return -EINVAL;
    if (catalog__scan_expect(s, ':') < 0)
        return -EINVAL;
    return 1;
}

int catalog__scan_element(catalog__scan *s, int *first)
{
    int c = catalog__scan_peek(s);
    if (c == ']' && *first) {
        s->pos++;
        return 0;
    }
    if (!*first) {
        if (c == ']') {
            s->pos++;
            return 0;
        }
        if (c != ',')
            return fail(s, s->pos, c < 0 ? "unexpected end of input" : "expected ',' or ']'");
        s->pos++;
    }
    *first = 0;
    return 1;
}

size_t catalog__scan_decode(const char *raw, size_t raw_len, char *out)
{
    /* raw is a string already validated by catalog__scan_string, quotes included */
    size_t o = 0;
    for (size_t p = 1; p + 1 < raw_len;) {
        char c = raw[p];
        if (c != '\\') {
            out[o++] = c;
            p++;
            continue;
        }
        char e = raw[p + 1];
        p += 2;
        switch (e) {
        case 'b':
            out[o++] = '\b';
            continue;
        case 'f':
            out[o++] = '\f';
            continue;
        case 'n':
            out[o++] = '\n';
            continue;
        case 'r':
            out[o++] = '\r';
            continue;
        case 't':
            out[o++] = '\t';
            continue;
        case 'u':
            break;
        default:
            out[o++] = e;
            continue;
        }
        unsigned u, lo;
        hex4(raw + p, &u);
        p += 4;
        if (u >= 0xd800 && u <= 0xdbff) {
            hex4(raw + p + 2, &lo);
            p += 6;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (u < 0x80) {
            out[o++] = (char)u;
        } else if (u < 0x800) {
            out[o++] = (char)(0xc0 | (u >> 6));
            out[o++] = (char)(0x80 | (u & 0x3f));
        } else if (u < 0x10000) {
            out[o++] = (char)(0xe0 | (u >> 12));
            out[o++] = (char)(0x80 | ((u >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (u & 0x3f));
        } else {
            out[o++] = (char)(0xf0 | (u >> 18));
            out[o++] = (char)(0x80 | ((u >> 12) & 0x3f));
            out[o++] = (char)(0x80 | ((u >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (u & 0x3f));
        }
    }
    return o;
}

void catalog__scan_where(const catalog__scan *s, size_t pos, size_t *line, size_t *col)
{
    size_t l = 1, c = 1;
    if (pos > s->len)
        pos = s->len;
    for (size_t i = 0; i < pos; i++) {
        if (s->buf[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}
