/*
 * Reading JSON values that the scanner has already validated: the compiler
 * after base_json_scan_value, the index on the slim entries it loaded.
 *
 * Design notes
 * - Nothing here validates: every function trusts that its input is one
 *   RFC 8259 value (the callers checked it), so skipping a value is a
 *   quote-and-bracket count, not a parse. That keeps a query's walk over
 *   every slim entry cheap and allocation-free.
 * - Numbers are never converted to a C type: they compare exactly, as
 *   decimal digit strings with an exponent, so 17008162028057714984,
 *   1e400 and 0.1000000000000000000000000000000000000001 keep their value.
 * - Strings compare by code point (the same order as UTF-8 bytes), with
 *   JSON escapes decoded on the fly and, on request, Unicode simple case
 *   folding (base_fold_cp), so no decoded or folded copy is built.
 */
#include "catalog/internal.h"

#include <string.h>

static inline int is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

const char *catalog__skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

/* p at the opening quote; returns just past the closing one. */
static const char *skip_string(const char *p, const char *end)
{
    p++;
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (q == NULL)
            return end;
        /* the quote ends the string unless an odd run of backslashes precedes it */
        size_t bs = 0;
        while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if ((bs & 1) == 0)
            return q + 1;
        p = q + 1;
    }
}

const char *catalog__skip_value(const char *p, const char *end)
{
    if (p >= end)
        return end;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                p = skip_string(p, end);
                continue;
            }
            p++;
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return p;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && !is_ws(*p))
        p++;
    return p;
}

void catalog__iter_init(catalog__iter *it, const char *v, size_t len)
{
    it->end = v + len;
    it->p = catalog__skip_ws(v, it->end);
    it->p += it->p < it->end; /* the '{' or '[' */
    it->first = 1;
}

/* Past the separator before the next item; 0 at the closing bracket. */
static int iter_step(catalog__iter *it)
{
    it->p = catalog__skip_ws(it->p, it->end);
    if (it->p >= it->end || *it->p == '}' || *it->p == ']')
        return 0;
    if (!it->first && *it->p == ',')
        it->p = catalog__skip_ws(it->p + 1, it->end);
    it->first = 0;
    return it->p < it->end;
}

int catalog__obj_next(catalog__iter *it, catalog__raw *key, catalog__raw *val)
{
    if (!iter_step(it))
        return 0;
    key->p = it->p;
    it->p = skip_string(it->p, it->end);
    key->len = (size_t)(it->p - key->p);
    it->p = catalog__skip_ws(it->p, it->end);
    it->p += it->p < it->end; /* ':' */
    it->p = catalog__skip_ws(it->p, it->end);
    val->p = it->p;
    it->p = catalog__skip_value(it->p, it->end);
    val->len = (size_t)(it->p - val->p);
    return 1;
}

int catalog__arr_next(catalog__iter *it, catalog__raw *val)
{
    if (!iter_step(it))
        return 0;
    val->p = it->p;
    it->p = catalog__skip_value(it->p, it->end);
    val->len = (size_t)(it->p - val->p);
    return 1;
}

int catalog__type(catalog__raw v)
{
    if (v.p == NULL)
        return CATALOG__T_MISSING;
    switch (v.p[0]) {
    case 'n':
        return CATALOG__T_NULL;
    case 'f':
    case 't':
        return CATALOG__T_BOOL;
    case '"':
        return CATALOG__T_STRING;
    case '[':
        return CATALOG__T_ARRAY;
    case '{':
        return CATALOG__T_OBJECT;
    default:
        return CATALOG__T_NUMBER;
    }
}

int catalog__is_empty_array(catalog__raw v)
{
    if (v.len < 2 || v.p[0] != '[')
        return 0;
    const char *p = catalog__skip_ws(v.p + 1, v.p + v.len);
    return p < v.p + v.len && *p == ']';
}

/* ---- strings ------------------------------------------------------------- */

static unsigned hexval(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static uint32_t hex4(const char *p)
{
    return hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]);
}

/* The next code point of a raw string's contents, escapes decoded; *p moves past it. */
static uint32_t str_next(const char **pp)
{
    const unsigned char *p = (const unsigned char *)*pp;
    uint32_t c = p[0];
    if (c == '\\') {
        char e = (char)p[1];
        *pp += 2;
        switch (e) {
        case 'b':
            return '\b';
        case 'f':
            return '\f';
        case 'n':
            return '\n';
        case 'r':
            return '\r';
        case 't':
            return '\t';
        case 'u': {
            uint32_t u = hex4(*pp);
            *pp += 4;
            if (u >= 0xd800 && u <= 0xdbff) { /* validated: a low surrogate follows */
                uint32_t lo = hex4(*pp + 2);
                *pp += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }
            return u;
        }
        default:
            return (uint32_t)(unsigned char)e;
        }
    }
    if (c < 0x80) {
        *pp += 1;
        return c;
    }
    if (c < 0xe0) {
        *pp += 2;
        return (c & 0x1f) << 6 | (p[1] & 0x3f);
    }
    if (c < 0xf0) {
        *pp += 3;
        return (c & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
    }
    *pp += 4;
    return (c & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 | (uint32_t)(p[2] & 0x3f) << 6 |
           (p[3] & 0x3f);
}

/* UTF-8 text (not JSON) code points: the same decoder without escapes. */
static uint32_t text_next(const char **pp)
{
    if (**pp == '\\') { /* a literal backslash in decoded text */
        *pp += 1;
        return '\\';
    }
    return str_next(pp);
}

int catalog__str_cmp(catalog__raw a, catalog__raw b, int fold)
{
    const char *p = a.p + 1, *pe = a.p + a.len - 1;
    const char *q = b.p + 1, *qe = b.p + b.len - 1;
    if (!fold && memchr(p, '\\', (size_t)(pe - p)) == NULL &&
        memchr(q, '\\', (size_t)(qe - q)) == NULL) {
        size_t n = (size_t)(pe - p) < (size_t)(qe - q) ? (size_t)(pe - p) : (size_t)(qe - q);
        int c = memcmp(p, q, n);
        if (c)
            return c;
        return ((pe - p) > (qe - q)) - ((pe - p) < (qe - q));
    }
    while (p < pe && q < qe) {
        uint32_t x = str_next(&p), y = str_next(&q);
        if (fold) {
            x = base_fold_cp(x);
            y = base_fold_cp(y);
        }
        if (x != y)
            return x < y ? -1 : 1;
    }
    return (p < pe) - (q < qe);
}

int catalog__str_eq(catalog__raw a, const char *s, size_t n, int fold)
{
    const char *p = a.p + 1, *pe = a.p + a.len - 1;
    if (!fold && memchr(p, '\\', (size_t)(pe - p)) == NULL)
        return (size_t)(pe - p) == n && memcmp(p, s, n) == 0;
    const char *q = s, *qe = s + n;
    while (p < pe && q < qe) {
        uint32_t x = str_next(&p), y = text_next(&q);
        if (fold)
            x = base_fold_cp(x); /* s is folded already */
        if (x != y)
            return 0;
    }
    return p == pe && q == qe;
}

size_t catalog__str_decode(catalog__raw a, char *out)
{
    return base_json_decode(a.p, a.len, out);
}

/* ---- numbers ------------------------------------------------------------- */

/* A number as sign, significant digits (as index ranges into the text, the
 * '.' skipped) and the decimal exponent of the first digit. */
struct dec {
    int neg, zero;
    const char *s;
    size_t int_a, int_z;   /* integer digits [a, z) */
    size_t frac_a, frac_z; /* fraction digits [a, z) */
    long long exp;         /* value = 0.d1d2d3... x 10^exp */
    size_t first;          /* index of the first significant digit in the virtual string */
    size_t ndig;           /* significant digits, trailing zeros dropped */
};

/* The i-th digit of int digits followed by fraction digits. */
static char dec_digit(const struct dec *d, size_t i)
{
    size_t ni = d->int_z - d->int_a;
    return i < ni ? d->s[d->int_a + i] : d->s[d->frac_a + (i - ni)];
}

static void dec_parse(const char *s, size_t len, struct dec *d)
{
    size_t i = 0;
    memset(d, 0, sizeof(*d));
    d->s = s;
    if (i < len && s[i] == '-')
        d->neg = 1, i++;
    d->int_a = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    d->int_z = i;
    d->frac_a = d->frac_z = i;
    if (i < len && s[i] == '.') {
        d->frac_a = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        d->frac_z = i;
    }
    long long e = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (e < 1000000000000000LL)
                e = e * 10 + (s[i] - '0'); /* saturates far beyond any digit count */
        if (eneg)
            e = -e;
    }
    size_t total = (d->int_z - d->int_a) + (d->frac_z - d->frac_a);
    size_t first = 0;
    while (first < total && dec_digit(d, first) == '0')
        first++;
    if (first == total) {
        d->zero = 1;
        d->neg = 0; /* -0 equals 0 */
        return;
    }
    size_t last = total;
    while (last > first && dec_digit(d, last - 1) == '0')
        last--;
    d->first = first;
    d->ndig = last - first;
    d->exp = e + (long long)(d->int_z - d->int_a) - (long long)first;
}

int catalog__num_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    struct dec x, y;
    dec_parse(a, alen, &x);
    dec_parse(b, blen, &y);
    int sx = x.zero ? 0 : x.neg ? -1 : 1, sy = y.zero ? 0 : y.neg ? -1 : 1;
    if (sx != sy)
        return sx < sy ? -1 : 1;
    if (sx == 0)
        return 0;
    int mag = 0; /* magnitude order of |x| against |y| */
    if (x.exp != y.exp) {
        mag = x.exp < y.exp ? -1 : 1;
    } else {
        size_t n = x.ndig > y.ndig ? x.ndig : y.ndig;
        for (size_t i = 0; i < n && mag == 0; i++) {
            char cx = i < x.ndig ? dec_digit(&x, x.first + i) : '0';
            char cy = i < y.ndig ? dec_digit(&y, y.first + i) : '0';
            if (cx != cy)
                mag = cx < cy ? -1 : 1;
        }
    }
    return sx > 0 ? mag : -mag;
}

/* ---- values -------------------------------------------------------------- */

int catalog__value_cmp(catalog__raw a, catalog__raw b, int fold)
{
    int ta = catalog__type(a), tb = catalog__type(b);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    switch (ta) {
    case CATALOG__T_MISSING:
    case CATALOG__T_NULL:
        return 0;
    case CATALOG__T_BOOL:
        return (a.p[0] == 't') - (b.p[0] == 't');
    case CATALOG__T_NUMBER:
        return catalog__num_cmp(a.p, a.len, b.p, b.len);
    case CATALOG__T_STRING:
        return catalog__str_cmp(a, b, fold);
    default: {
        size_t n = a.len < b.len ? a.len : b.len;
        int c = memcmp(a.p, b.p, n);
        return c ? c : (a.len > b.len) - (a.len < b.len);
    }
    }
}

size_t catalog__compact(const char *p, size_t len, char *out)
{
    const char *end = p + len;
    size_t o = 0;
    while (p < end) {
        const char *ws = p;
        while (ws < end && *ws != '"' && !is_ws(*ws))
            ws++;
        memcpy(out + o, p, (size_t)(ws - p));
        o += (size_t)(ws - p);
        p = ws;
        if (p >= end)
            break;
        if (*p == '"') {
            const char *z = skip_string(p, end);
            memcpy(out + o, p, (size_t)(z - p));
            o += (size_t)(z - p);
            p = z;
        } else {
            p++;
        }
    }
    return o;
}

int catalog__key_is(catalog__raw key, const char *name, size_t n)
{
    const char *p = key.p + 1;
    size_t raw = key.len - 2;
    if (memchr(p, '\\', raw) == NULL)
        return raw == n && memcmp(p, name, n) == 0;
    return catalog__str_eq(key, name, n, 0);
}
