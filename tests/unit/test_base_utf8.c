/*
 * base/utf8.c: base_utf8_len on one sequence (valid 1-4 byte scalars,
 * overlongs, surrogates, beyond U+10FFFF, stray and missing continuation
 * bytes, and the -1 "valid but cut short" answer against 0 for a cut-short
 * prefix that is already invalid), checked case by case and then
 * exhaustively against the table of well-formed sequences of the Unicode
 * standard; base_utf8_valid on ASCII runs longer than a word with a bad or
 * multi-byte sequence at every offset, so its word-at-a-time path is
 * exercised on both sides of each hit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

/* A copy of n bytes in a block of exactly n bytes, so that a read past
 * the end shows under AddressSanitizer. */
static unsigned char *exact_copy(const void *p, size_t n)
{
    unsigned char *c = malloc(n != 0 ? n : 1);

    assert_non_null(c);
    memcpy(c, p, n);
    return c;
}

/* A string literal and its length, NULs inside included. */
#define S(lit) lit, sizeof(lit) - 1

/* One case a line: bytes, how many of them are available, the answer. */
static const struct {
    const char *s;
    size_t avail;
    int want;
} len_cases[] = {
    /* valid, 1 byte */
    {"A", 1, 1},
    {"\x00", 1, 1},
    {"\x7f", 1, 1},
    {"ab", 2, 1},
    /* valid, 2 bytes */
    {"\xc2\x80", 2, 2},
    {"\xc3\xa9", 2, 2},
    {"\xdf\xbf", 2, 2},
    {"\xc3\xa9"
     "abc",
     5, 2},
    /* valid, 3 bytes */
    {"\xe0\xa0\x80", 3, 3},
    {"\xe2\x82\xac", 3, 3},
    {"\xed\x9f\xbf", 3, 3},
    {"\xee\x80\x80", 3, 3},
    {"\xef\xbf\xbf", 3, 3},
    {"\xe2\x82\xac\xe2\x82\xac", 6, 3},
    /* valid, 4 bytes */
    {"\xf0\x90\x80\x80", 4, 4},
    {"\xf0\x9f\x98\x80", 4, 4},
    {"\xf3\xbf\xbf\xbf", 4, 4},
    {"\xf4\x8f\xbf\xbf", 4, 4},
    {"\xf0\x9f\x98\x80"
     "a",
     5, 4},
    /* overlongs */
    {"\xc0\x80", 2, 0},
    {"\xc0\xaf", 2, 0},
    {"\xc1\xbf", 2, 0},
    {"\xe0\x80\x80", 3, 0},
    {"\xe0\x9f\xbf", 3, 0},
    {"\xf0\x80\x80\x80", 4, 0},
    {"\xf0\x8f\xbf\xbf", 4, 0},
    /* surrogates */
    {"\xed\xa0\x80", 3, 0},
    {"\xed\xaf\xbf", 3, 0},
    {"\xed\xb0\x80", 3, 0},
    {"\xed\xbf\xbf", 3, 0},
    /* beyond U+10FFFF, and leads that no sequence starts with */
    {"\xf4\x90\x80\x80", 4, 0},
    {"\xf4\xbf\xbf\xbf", 4, 0},
    {"\xf5\x80\x80\x80", 4, 0},
    {"\xf7\xbf\xbf\xbf", 4, 0},
    {"\xf8\x88\x80\x80\x80", 5, 0},
    {"\xfc\x84\x80\x80\x80\x80", 6, 0},
    {"\xfe", 1, 0},
    {"\xff", 1, 0},
    /* stray continuation bytes */
    {"\x80", 1, 0},
    {"\xbf", 1, 0},
    {"\x80"
     "a",
     2, 0},
    {"\xbf\xbf\xbf", 3, 0},
    /* a lead whose continuation is missing */
    {"\xc3"
     "a",
     2, 0},
    {"\xc3\xc3", 2, 0},
    {"\xc3\x00", 2, 0},
    {"\xe2\x82"
     "a",
     3, 0},
    {"\xe2\x28\xa1", 3, 0},
    {"\xf0\x9f\x98"
     "a",
     4, 0},
    {"\xf0\x9f\x98\xc0", 4, 0},
    /* a valid prefix cut short by the end of the input */
    {"\xc3", 1, -1},
    {"\xdf", 1, -1},
    {"\xe0", 1, -1},
    {"\xe2", 1, -1},
    {"\xed", 1, -1},
    {"\xe2\x82", 2, -1},
    {"\xe0\xa0", 2, -1},
    {"\xed\x9f", 2, -1},
    {"\xf0", 1, -1},
    {"\xf4", 1, -1},
    {"\xf0\x9f", 2, -1},
    {"\xf0\x9f\x98", 3, -1},
    {"\xf4\x8f", 2, -1},
    {"\xf4\x8f\xbf", 3, -1},
    /* cut short, but already invalid */
    {"\xc0", 1, 0},
    {"\xc1", 1, 0},
    {"\xf5", 1, 0},
    {"\xe0\x80", 2, 0},
    {"\xe0\x9f", 2, 0},
    {"\xed\xa0", 2, 0},
    {"\xed\xbf", 2, 0},
    {"\xf0\x80", 2, 0},
    {"\xf0\x8f\xbf", 3, 0},
    {"\xf4\x90", 2, 0},
    {"\xf4\x90\x80", 3, 0},
    {"\xe2"
     "a",
     2, 0},
    {"\xf0\x9f"
     "a",
     3, 0},
};

static void test_len_cases(void **state)
{
    for (size_t i = 0; i < sizeof(len_cases) / sizeof(len_cases[0]); i++) {
        unsigned char *c = exact_copy(len_cases[i].s, len_cases[i].avail);
        int got = base_utf8_len(c, len_cases[i].avail);
        if (got != len_cases[i].want)
            fail_msg("case %zu (first byte 0x%02x, avail %zu): got %d, want %d", i, c[0],
                     len_cases[i].avail, got, len_cases[i].want);
        free(c);
    }
}

/* The well-formed sequences of the Unicode standard (table 3-7), as a
 * reference: the length a lead byte announces and the range its second
 * byte must be in; later bytes are 80..BF. */
static int ref_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xbf;
    int n;

    if (c <= 0x7f)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= avail)
            return -1;
        unsigned b = s[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf))
            return 0;
    }
    return n;
}

/* Every first, second and third byte with 1-3 of them available, and the
 * four-byte leads with a few fourth bytes. */
static void test_len_exhaustive(void **state)
{
    static const unsigned char fourth[] = {0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xff};
    unsigned char s[4];
    size_t bad = 0;

    for (unsigned b0 = 0; b0 < 256; b0++) {
        for (unsigned b1 = 0; b1 < 256; b1++) {
            for (unsigned b2 = 0; b2 < 256; b2++) {
                s[0] = (unsigned char)b0;
                s[1] = (unsigned char)b1;
                s[2] = (unsigned char)b2;
                s[3] = 0x80;
                for (size_t avail = 1; avail <= 3; avail++) {
                    if (avail < 3 && b2 != 0)
                        continue; /* bytes past avail do not matter */
                    if (avail < 2 && b1 != 0)
                        continue;
                    int got = base_utf8_len(s, avail), want = ref_len(s, avail);
                    if (got != want && bad++ < 10)
                        print_error("%02x %02x %02x avail %zu: got %d, want %d\n", b0, b1, b2,
                                    avail, got, want);
                }
                if (b0 < 0xf0)
                    continue;
                for (size_t k = 0; k < sizeof(fourth); k++) {
                    s[3] = fourth[k];
                    int got = base_utf8_len(s, 4), want = ref_len(s, 4);
                    if (got != want && bad++ < 10)
                        print_error("%02x %02x %02x %02x: got %d, want %d\n", b0, b1, b2, s[3], got,
                                    want);
                }
            }
        }
    }
    assert_int_equal(bad, 0);
}

static void test_valid_simple(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        bool want;
    } cases[] = {
        {S(""), true},
        {S("a"), true},
        {S("plain ascii, longer than a word"), true},
        {S("h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xf0\x9f\x98\x80 and more text"), true},
        {S("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"), true},
        {S("with a NUL \x00 inside the text"), true},
        {S("ends cut short \xe2\x82"), false},
        {S("ends cut short \xf0\x9f\x98"), false},
        {S("an overlong \xc0\xaf slash"), false},
        {S("a surrogate \xed\xa0\x80 here"), false},
        {S("too high \xf4\x90\x80\x80 here"), false},
        {S("\x80 stray at the start"), false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char *c = exact_copy(cases[i].s, cases[i].len);
        bool got = base_utf8_valid(c, cases[i].len);
        if (got != cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, got, cases[i].want);
        free(c);
    }
}

/* One sequence put at every offset of an ASCII run: valid ones keep the
 * text valid, invalid ones make it invalid, wherever they fall against the
 * 8-byte words. */
static void test_valid_offsets(void **state)
{
    static const struct {
        const char *seq;
        size_t n;
        bool valid;
    } seqs[] = {
        {"\xc3\xa9", 2, true},
        {"\xe2\x82\xac", 3, true},
        {"\xf0\x9f\x98\x80", 4, true},
        {"\x7f", 1, true},
        {"\x80", 1, false},
        {"\xbf", 1, false},
        {"\xff", 1, false},
        {"\xc0\x80", 2, false},
        {"\xe0\x80\x80", 3, false},
        {"\xed\xa0\x80", 3, false},
        {"\xf4\x90\x80\x80", 4, false},
        {"\xc3", 1, false},
        {"\xe2\x82", 2, false},
    };
    for (size_t len = 1; len <= 40; len++) {
        unsigned char *buf = malloc(len);
        assert_non_null(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)('a' + i % 26);
        assert_true(base_utf8_valid(buf, len));
        for (size_t k = 0; k < sizeof(seqs) / sizeof(seqs[0]); k++) {
            for (size_t at = 0; at + seqs[k].n <= len; at++) {
                for (size_t i = 0; i < len; i++)
                    buf[i] = (unsigned char)('a' + i % 26);
                memcpy(buf + at, seqs[k].seq, seqs[k].n);
                bool got = base_utf8_valid(buf, len);
                if (got != seqs[k].valid)
                    fail_msg("sequence %zu at %zu of %zu: got %d, want %d", k, at, len, got,
                             seqs[k].valid);
            }
        }
        /* a lead at the very end, cut short by it */
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)('a' + i % 26);
        buf[len - 1] = 0xe2;
        assert_false(base_utf8_valid(buf, len));
        /* the same text is valid when the cut-off lead is not counted */
        assert_true(base_utf8_valid(buf, len - 1));
        free(buf);
    }
}

/* A long run of mixed text: two valid halves, then a bad byte in between. */
static void test_valid_long(void **state)
{
    const char *piece = "abcdefgh\xc3\xa9ijklmnop\xe2\x82\xacqrstuvw\xf0\x9f\x98\x80xyz0123456789";
    size_t plen = strlen(piece), reps = 200, len = plen * reps;
    unsigned char *buf = malloc(len);

    assert_non_null(buf);
    for (size_t r = 0; r < reps; r++)
        memcpy(buf + r * plen, piece, plen);
    assert_true(base_utf8_valid(buf, len));
    buf[len / 2 + 3] = 0xfe;
    assert_false(base_utf8_valid(buf, len));
    assert_true(base_utf8_valid(buf, (len / 2 / plen) * plen));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_len_cases),    cmocka_unit_test(test_len_exhaustive),
        cmocka_unit_test(test_valid_simple), cmocka_unit_test(test_valid_offsets),
        cmocka_unit_test(test_valid_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
