/*
 * JSON: a validating pull scanner, the check built on it, string decoding,
 * and jansson's dumps made safe for any allocator.
 *
 * Design notes
 * - The scanner never builds a tree: it walks bytes and reports byte ranges,
 *   so text of any size is validated in O(depth) memory. Callers parse one
 *   small range at a time (a catalog entry, a request) with jansson when they
 *   need values.
 * - It accepts exactly RFC 8259 JSON: strict number grammar, no control
 *   bytes in strings, well-formed UTF-8, \u escapes with paired surrogates
 *   (jansson refuses lone surrogates too, so both agree on what is valid).
 * - Nesting is tracked on an explicit stack bounded by max_depth (at most
 *   BASE_JSON_DEPTH_MAX), never by recursion.
 * - On failure s->err is a static reason and s->err_pos the offending byte.
 */
#include "base/base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void base_json_scan_init(base_json_scan *s, const void *buf, size_t len)
{
    s->buf = buf;
    s->len = len;
    s->pos = 0;
    s->max_depth = BASE_JSON_DEPTH_MAX;
    s->err = NULL;
    s->err_pos = 0;
}

static int fail(base_json_scan *s, size_t pos, const char *why)
{
    s->err = why;
    s->err_pos = pos;
    return -EINVAL;
}

static void skip_ws(base_json_scan *s)
{
    while (s->pos < s->len) {
        char c = s->buf[s->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        s->pos++;
    }
}

int base_json_scan_peek(base_json_scan *s)
{
    skip_ws(s);
    return s->pos < s->len ? (unsigned char)s->buf[s->pos] : -1;
}

int base_json_scan_expect(base_json_scan *s, char c)
{
    static const char *const msgs[] = {"expected '{'", "expected '}'", "expected '['",
                                       "expected ']'", "expected ':'", "expected ','"};
    static const char chars[] = "{}[]:,";
    if (base_json_scan_peek(s) == (unsigned char)c) {
        s->pos++;
        return 0;
    }
    const char *why = "unexpected character";
    const char *k = strchr(chars, c);
    if (k != NULL)
        why = msgs[k - chars];
    if (s->pos >= s->len)
        why = "unexpected end of input";
    return fail(s, s->pos, why);
}

int base_json_scan_end(base_json_scan *s)
{
    if (base_json_scan_peek(s) != -1)
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

int base_json_scan_string(base_json_scan *s, size_t *start, size_t *end)
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
            if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
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
        int n = base_utf8_len(b + p, s->len - p);
        if (n <= 0)
            return fail(s, p, "invalid UTF-8 in string");
        p += (size_t)n;
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

static int scan_number(base_json_scan *s)
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

static int scan_literal(base_json_scan *s, const char *word)
{
    size_t n = strlen(word);
    if (s->len - s->pos < n || memcmp(s->buf + s->pos, word, n) != 0)
        return fail(s, s->pos, "invalid literal");
    s->pos += n;
    return 0;
}

/* A scalar at s->pos (after whitespace): string, number or literal. */
static int scan_scalar(base_json_scan *s, int c)
{
    size_t a, b;
    switch (c) {
    case '"':
        return base_json_scan_string(s, &a, &b);
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

int base_json_scan_value(base_json_scan *s, size_t *start, size_t *end)
{
    /* stack[i] is '{' or '[' */
    char stack[BASE_JSON_DEPTH_MAX];
    int depth = 0;
    int c = base_json_scan_peek(s);
    *start = s->pos;
    if (c != '{' && c != '[') {
        int rc = scan_scalar(s, c);
        *end = s->pos;
        return rc;
    }
    /* `first` is true right after an opening bracket. */
    int first = 0;
    for (;;) {
        c = base_json_scan_peek(s);
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
            c = base_json_scan_peek(s);
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
            if (base_json_scan_string(s, &ka, &kb) < 0)
                return -EINVAL;
            if (base_json_scan_expect(s, ':') < 0)
                return -EINVAL;
            c = base_json_scan_peek(s);
        }
        if (c == '{' || c == '[') {
            if (depth >= s->max_depth || depth >= BASE_JSON_DEPTH_MAX)
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

int base_json_scan_member(base_json_scan *s, int *first, size_t *key_start, size_t *key_end)
{
    int c = base_json_scan_peek(s);
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
    if (base_json_scan_string(s, key_start, key_end) < 0)
        return -EINVAL;
    if (base_json_scan_expect(s, ':') < 0)
        return -EINVAL;
    return 1;
}

int base_json_scan_element(base_json_scan *s, int *first)
{
    int c = base_json_scan_peek(s);
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

size_t base_json_decode(const char *raw, size_t raw_len, char *out)
{
    /* raw is a string already validated by base_json_scan_string, quotes included */
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

void base_json_scan_where(const base_json_scan *s, size_t pos, size_t *line, size_t *col)
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

bool base_json_check(const char *buf, size_t len, int max_depth)
{
    base_json_scan s;
    size_t a, z;

    if (buf == NULL)
        return false;
    base_json_scan_init(&s, buf, len);
    if (max_depth < s.max_depth)
        s.max_depth = max_depth;
    return base_json_scan_value(&s, &a, &z) == 0 && base_json_scan_end(&s) == 0;
}

char *base_json_dumps(const json_t *v, size_t flags)
{
    json_malloc_t jmalloc;
    json_free_t jfree;
    char *s = json_dumps(v, flags), *copy;

    if (s == NULL)
        return NULL;
    json_get_alloc_funcs(&jmalloc, &jfree);
    if (jfree == free)
        return s;
    copy = strdup(s);
    jfree(s);
    return copy;
}
