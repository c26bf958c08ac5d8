/*
 * Unicode simple case folding, for case-insensitive search (the catalog's).
 *
 * Design notes
 * - The mappings are Unicode's CaseFolding.txt lines of status C and S, in
 *   base/fold_table.h, which scripts/gen-fold-table generates from the
 *   Unicode Character Database (see its header for the version). Never edit
 *   the table by hand; rerun the script.
 * - Simple folding maps one code point to one code point. It does not
 *   cover:
 *   - full foldings (status F) that give several code points: ß (U+00DF)
 *     stays ß rather than becoming "ss", so "straße" does not match
 *     "strasse"; likewise ŉ (U+0149, "ʼn"), the ligatures ﬁ and ﬀ (U+FB01,
 *     U+FB00), and İ (U+0130, which keeps its dot: it has no simple folding);
 *   - the Turkic foldings (status T): I folds to i, never to dotless ı;
 *   - normalisation: é written as e + U+0301 COMBINING ACUTE ACCENT does not
 *     match precomposed é (U+00E9). Fold both sides of a comparison the same
 *     way, and normalise first where that matters.
 * - Folded text folds to itself (the generator checks that no target is a
 *   source), so one pass is enough and folding is idempotent.
 * - ASCII never goes near the table: only A-Z fold there (the generator
 *   checks that too), so runs of ASCII are folded eight bytes at a time.
 *   A non-ASCII code point first tests one bit of fold_blocks (does its
 *   block of 256 hold any folding?), then binary-searches the few ranges
 *   fold_start gives for its block (at most FOLD_SEARCH_MAX).
 * - Growth: a fold can lengthen a sequence (U+023A, 2 bytes, folds to
 *   U+2C65, 3 bytes); BASE_FOLD_MAX in base.h covers the worst ratio the
 *   generator found, and a compile-time check below keeps the two in step.
 */
#include "base/base.h"

#include <string.h>

#include "base/fold_table.h"

/* BASE_FOLD_MAX(len) >= len + floor(len * FOLD_GROW_NUM / FOLD_GROW_DEN),
 * at lengths around the denominator and far beyond it. */
#define FOLD_BOUND_OK(len)                                                                         \
    (BASE_FOLD_MAX((size_t)(len)) >=                                                               \
     (size_t)(len) + (size_t)(len) / FOLD_GROW_DEN * FOLD_GROW_NUM +                               \
         (size_t)(len) % FOLD_GROW_DEN * FOLD_GROW_NUM / FOLD_GROW_DEN)
_Static_assert(FOLD_BOUND_OK(0) && FOLD_BOUND_OK(1) && FOLD_BOUND_OK(2) && FOLD_BOUND_OK(3) &&
                   FOLD_BOUND_OK(4) && FOLD_BOUND_OK(5) && FOLD_BOUND_OK(6) && FOLD_BOUND_OK(7) &&
                   FOLD_BOUND_OK(8) && FOLD_BOUND_OK(12) && FOLD_BOUND_OK(999) &&
                   FOLD_BOUND_OK(1000) && FOLD_BOUND_OK(1u << 30),
               "BASE_FOLD_MAX in base/base.h is below the worst growth in base/fold_table.h");

#define ONES 0x0101010101010101ull

/* A-Z to a-z, other ASCII as it is, without a branch. */
static inline unsigned fold_ascii(unsigned c)
{
    return c | (unsigned)(c - 'A' < 26u) << 5;
}

/* The folding of c >= 0x80. */
static inline uint32_t fold_table(uint32_t c)
{
    if (c > FOLD_LAST || ((fold_blocks[c >> 11] >> (c >> 8 & 7)) & 1) == 0)
        return c;

    /* The last range starting at or before c, among those of its block:
     * its key is at most c's key with every low bit set. */
    uint32_t want = c << 11 | 0x7ffu;
    const uint32_t *k = fold_keys + fold_start[c >> 8];
    size_t n = (size_t)fold_start[(c >> 8) + 1] - fold_start[c >> 8] + 1;
    HERD_ASSERT(n <= FOLD_SEARCH_MAX);
    while (n > 1) {
        size_t half = n / 2;
        k = k[half] <= want ? k + half : k;
        n -= half;
    }
    HERD_ASSERT(*k <= want);

    uint32_t off = c - (*k >> 11);
    if (off > (*k >> 1 & 0x3ffu) || (*k & off & 1) != 0)
        return c; /* past the range's end, or between its pairs */
    /* The delta is modulo 2^16: every fold stays in its plane. */
    return (c & ~0xffffu) | ((c + fold_delta[k - fold_keys]) & 0xffffu);
}

uint32_t base_fold_cp(uint32_t c)
{
    if (c < 0x80)
        return fold_ascii(c);
    return fold_table(c);
}

/* The code point of a valid sequence of n (2-4) bytes. */
static inline uint32_t decode(const unsigned char *s, int n)
{
    if (n == 2)
        return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    if (n == 3)
        return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
           (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

/* Writes scalar value c (>= 0x80) as UTF-8; returns its length. */
static inline size_t encode(uint32_t c, unsigned char *o)
{
    if (c < 0x800) {
        o[0] = (unsigned char)(0xc0 | c >> 6);
        o[1] = (unsigned char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xe0 | c >> 12);
        o[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | c >> 18);
    o[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (c & 0x3f));
    return 4;
}

size_t base_fold_utf8(const char *s, size_t len, char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char *o = (unsigned char *)out;
    size_t i = 0;

    while (i < len) {
        if (p[i] < 0x80) {
            /* Eight ASCII bytes at a time: each is below 0x80, so adding to
             * it carries into no other; bit 7 of b + (0x80 - 'A') is b >=
             * 'A', of b + (0x80 - 'Z' - 1) is b > 'Z'. */
            while (i + 8 <= len) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if ((w & 0x80 * ONES) != 0)
                    break;
                uint64_t upper = (w + (0x80 - 'A') * ONES) & ~(w + (0x80 - 'Z' - 1) * ONES);
                w |= (upper & 0x80 * ONES) >> 2;
                memcpy(o, &w, 8);
                i += 8;
                o += 8;
            }
            while (i < len && p[i] < 0x80)
                *o++ = (unsigned char)fold_ascii(p[i++]);
            continue;
        }
        int n = base_utf8_len(p + i, len - i);
        if (n <= 0) {
            /* Invalid, or cut short by the end: this byte as it is, and the
             * next ones are looked at on their own. */
            *o++ = p[i++];
            continue;
        }
        uint32_t c = decode(p + i, n);
        uint32_t f = fold_table(c);
        if (f == c) {
            /* n is 2 to 4: no call to memcpy for so few */
            o[0] = p[i];
            o[1] = p[i + 1];
            if (n > 2)
                o[2] = p[i + 2];
            if (n > 3)
                o[3] = p[i + 3];
            o += n;
        } else if (f < 0x80) {
            *o++ = (unsigned char)f; /* U+212A KELVIN SIGN to k, U+017F to s */
        } else {
            o += encode(f, o);
        }
        i += (size_t)n;
    }
    return (size_t)(o - (unsigned char *)out);
}
