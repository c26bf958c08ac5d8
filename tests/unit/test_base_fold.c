/*
 * base/fold.c: base_fold_utf8 case by case (Greek, Latin-1, ß left alone
 * and ẞ to ß, the Kelvin sign to ASCII, a fold that grows from 2 bytes to
 * 3, a 4-byte fold, ASCII around the A-Z edges, invalid bytes copied,
 * code points without a folding, the empty string); base_fold_cp against
 * Python's str.casefold where it gives one code point; every scalar value
 * folded on its own (BASE_FOLD_MAX holds, base_fold_utf8 agrees with
 * base_fold_cp, folding twice changes nothing); and random mixes of ASCII,
 * multi-byte and invalid bytes against a byte-at-a-time reference, so the
 * eight-byte ASCII path is exercised at every alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

/* A string literal and its length, NULs inside included. */
#define S(lit) lit, sizeof(lit) - 1

/* Folds n bytes of s into a block of exactly BASE_FOLD_MAX(n) bytes, so a
 * write past the bound shows under AddressSanitizer; returns the block
 * (the caller frees it) and the length in *out_len. */
static char *fold_exact(const char *s, size_t n, size_t *out_len)
{
    size_t max = BASE_FOLD_MAX(n);
    char *in = malloc(n != 0 ? n : 1);
    char *out = malloc(max != 0 ? max : 1);

    assert_non_null(in);
    assert_non_null(out);
    memcpy(in, s, n);
    *out_len = base_fold_utf8(in, n, out);
    assert_true(*out_len <= max);
    free(in);
    return out;
}

/* One case a line: the input and its folding. */
static const struct {
    const char *name;
    const char *in;
    size_t in_len;
    const char *want;
    size_t want_len;
} cases[] = {
    {"empty", S(""), S("")},
    {"omega", S("\xce\xa9"), S("\xcf\x89")},               /* Ω U+03A9 -> ω U+03C9 */
    {"omega folded", S("\xcf\x89"), S("\xcf\x89")},        /* ω stays */
    {"e acute", S("\xc3\x89"), S("\xc3\xa9")},             /* É -> é */
    {"sharp s", S("GRO\xc3\x9f"), S("gro\xc3\x9f")},       /* ß stays: "ss" is F */
    {"capital sharp s", S("\xe1\xba\x9e"), S("\xc3\x9f")}, /* ẞ U+1E9E -> ß (S) */
    {"kelvin", S("\xe2\x84\xaa"), S("k")},                 /* U+212A -> k */
    {"long s", S("\xc5\xbf"), S("s")},                     /* ſ U+017F -> s */
    {"grows", S("\xc8\xba"), S("\xe2\xb1\xa5")},           /* U+023A -> U+2C65 */
    {"grows twice", S("\xc8\xba\xc8\xbe"), S("\xe2\xb1\xa5\xe2\xb1\xa6")},
    {"shrinks", S("\xea\x9f\x85"), S("\xca\x82")},                          /* U+A7C5 -> U+0282 */
    {"deseret", S("\xf0\x90\x90\x80"), S("\xf0\x90\x90\xa8")},              /* U+10400 -> U+10428 */
    {"adlam", S("\xf0\x9e\xa4\x80"), S("\xf0\x9e\xa4\xa2")},                /* U+1E900 -> U+1E922 */
    {"cherokee", S("\xea\xad\xb0"), S("\xe1\x8e\xa0")},                     /* U+AB70 -> U+13A0 */
    {"pair", S("\xc4\x80\xc4\x81\xc4\xae"), S("\xc4\x81\xc4\x81\xc4\xaf")}, /* U+0100, 0101, 012E */
    {"dotted I", S("\xc4\xb0"), S("\xc4\xb0")}, /* İ U+0130: F and T only */
    {"I is not Turkic", S("I"), S("i")},
    {"dotless i", S("\xc4\xb1"), S("\xc4\xb1")},        /* ı U+0131 has no folding */
    {"ligature", S("\xef\xac\x81"), S("\xef\xac\x81")}, /* ﬁ U+FB01: F only */
    {"n apostrophe", S("\xc5\x89"), S("\xc5\x89")},     /* ŉ U+0149: F only */
    {"combining", S("E\xcc\x81"), S("e\xcc\x81")},      /* not normalised */
    {"ascii", S("Hello, WORLD 0-9 @[`{ AZ az"), S("hello, world 0-9 @[`{ az az")},
    {"ascii long", S("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG, twice? THE QUICK BROWN FOX"),
     S("the quick brown fox jumps over the lazy dog, twice? the quick brown fox")},
    {"ascii NUL", S("A\0B"), S("a\0b")},
    {"ascii DEL", S("\x7f\x40\x5b\x60\x7b"), S("\x7f\x40\x5b\x60\x7b")},
    {"no folding", S("\xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80"),
     S("\xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80")}, /* € 中 😀 */
    {"mixed", S("\xce\x91\xce\x92\xce\x93 ABC \xd0\x96\xd0\xb6 XYZ!"),
     S("\xce\xb1\xce\xb2\xce\xb3 abc \xd0\xb6\xd0\xb6 xyz!")}, /* ΑΒΓ, Жж */
    {"invalid ff", S("A\xffZ"), S("a\xffz")},
    {"stray continuation", S("\x80\xbfZ"), S("\x80\xbfz")},
    {"overlong", S("\xc0\xafZ"), S("\xc0\xafz")},
    {"overlong A", S("\xc1\x81"), S("\xc1\x81")}, /* not a disguised A */
    {"surrogate", S("\xed\xa0\x80"), S("\xed\xa0\x80")},
    {"beyond U+10FFFF", S("\xf4\x90\x80\x80"), S("\xf4\x90\x80\x80")},
    {"lead then ASCII", S("\xc3Z"), S("\xc3z")},
    {"cut short", S("\xce\xa9\xce"), S("\xcf\x89\xce")},
    {"cut short 4", S("A\xf0\x90\x90"), S("a\xf0\x90\x90")},
    {"invalid in a long run", S("ABCDEFGH\xffIJKLMNOP\xce\xa9QRSTUVWX"),
     S("abcdefgh\xffijklmnop\xcf\x89qrstuvwx")},
};

static void test_cases(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got_len;
        char *got = fold_exact(cases[i].in, cases[i].in_len, &got_len);
        if (got_len != cases[i].want_len || memcmp(got, cases[i].want, got_len) != 0)
            fail_msg("case %s: got %zu bytes, want %zu", cases[i].name, got_len, cases[i].want_len);
        free(got);
    }
}

/* What Python 3.11 (Unicode 14.0.0, as the table) says: str.casefold() of
 * each, where it gives a single code point, so full and simple folding
 * agree. The last five have no folding. */
static const struct {
    uint32_t c, want;
} python_cases[] = {{0x0041, 0x0061},    {0x005a, 0x007a},   {0x00b5, 0x03bc},   {0x00c0, 0x00e0},
                    {0x00de, 0x00fe},    {0x0178, 0x00ff},   {0x0181, 0x0253},   {0x01c4, 0x01c6},
                    {0x01c5, 0x01c6},    {0x0345, 0x03b9},   {0x0386, 0x03ac},   {0x03a3, 0x03c3},
                    {0x03c2, 0x03c3},    {0x03f4, 0x03b8},   {0x0400, 0x0450},   {0x0531, 0x0561},
                    {0x10a0, 0x2d00},    {0x13f8, 0x13f0},   {0x1c80, 0x0432},   {0x1e60, 0x1e61},
                    {0x1e9b, 0x1e61},    {0x1f08, 0x1f00},   {0x2126, 0x03c9},   {0x212a, 0x006b},
                    {0x212b, 0x00e5},    {0x2160, 0x2170},   {0x24b6, 0x24d0},   {0x2c00, 0x2c30},
                    {0x2c62, 0x026b},    {0xa640, 0xa641},   {0xa77d, 0x1d79},   {0xa7ae, 0x026a},
                    {0xab70, 0x13a0},    {0xff21, 0xff41},   {0x104b0, 0x104d8}, {0x10c80, 0x10cc0},
                    {0x118a0, 0x118c0},  {0x16e40, 0x16e60}, {0x1e921, 0x1e943}, {0x0061, 0x0061},
                    {0x00e9, 0x00e9},    {0x0131, 0x0131},   {0x4e2d, 0x4e2d},   {0x1f600, 0x1f600},
                    {0x10ffff, 0x10ffff}};

static void test_python(void **state)
{
    for (size_t i = 0; i < sizeof(python_cases) / sizeof(python_cases[0]); i++) {
        uint32_t c = python_cases[i].c, want = python_cases[i].want, got = base_fold_cp(c);
        if (got != want)
            fail_msg("U+%04X: got U+%04X, want U+%04X", (unsigned)c, (unsigned)got, (unsigned)want);
    }
}

static size_t encode(uint32_t c, char *o)
{
    unsigned char *u = (unsigned char *)o;

    if (c < 0x80) {
        u[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        u[0] = (unsigned char)(0xc0 | c >> 6);
        u[1] = (unsigned char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        u[0] = (unsigned char)(0xe0 | c >> 12);
        u[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
        u[2] = (unsigned char)(0x80 | (c & 0x3f));
        return 3;
    }
    u[0] = (unsigned char)(0xf0 | c >> 18);
    u[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f));
    u[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
    u[3] = (unsigned char)(0x80 | (c & 0x3f));
    return 4;
}

/* Every scalar value, alone: folded into a block of exactly
 * BASE_FOLD_MAX(n) bytes, matching base_fold_cp, idempotent. */
static void test_every_code_point(void **state)
{
    char *out[5] = {NULL};
    size_t bad = 0, n_folds = 0, grew = 0;

    for (size_t n = 1; n <= 4; n++) {
        out[n] = malloc(BASE_FOLD_MAX(n));
        assert_non_null(out[n]);
    }
    for (uint32_t c = 0; c <= 0x10ffff; c++) {
        if (c >= 0xd800 && c <= 0xdfff)
            continue;
        char in[4], want[4], again[6];
        size_t n = encode(c, in);
        uint32_t f = base_fold_cp(c);
        size_t want_len = encode(f, want);
        size_t got_len = base_fold_utf8(in, n, out[n]);
        size_t again_len = base_fold_utf8(out[n], got_len, again);

        n_folds += f != c;
        grew += got_len > n;
        if ((got_len > BASE_FOLD_MAX(n) || got_len != want_len ||
             memcmp(out[n], want, want_len) != 0 || base_fold_cp(f) != f || again_len != got_len ||
             memcmp(again, out[n], got_len) != 0) &&
            bad++ < 10)
            print_error("U+%04X: folds to U+%04X, %zu bytes (bound %zu), fold of that U+%04X\n",
                        (unsigned)c, (unsigned)f, got_len, (size_t)BASE_FOLD_MAX(n),
                        (unsigned)base_fold_cp(f));
    }
    for (size_t n = 1; n <= 4; n++)
        free(out[n]);
    assert_int_equal(bad, 0);
    /* Unicode 14.0 has 1454 simple foldings; a newer one only adds. */
    assert_true(n_folds >= 1454);
    assert_true(grew > 0); /* U+023A and U+023E */
    /* Beyond the scalar values: nothing to fold. */
    assert_int_equal(base_fold_cp(0x110000), 0x110000);
    assert_int_equal(base_fold_cp(0xd800), 0xd800);
    assert_int_equal(base_fold_cp(UINT32_MAX), UINT32_MAX);
}

/* A byte-at-a-time reference built on base_fold_cp. */
static size_t ref_fold(const unsigned char *s, size_t len, char *out)
{
    size_t i = 0, o = 0;

    while (i < len) {
        int n = base_utf8_len(s + i, len - i);
        if (n <= 0) {
            out[o++] = (char)s[i++];
            continue;
        }
        uint32_t c = s[i];
        if (n > 1) {
            c &= 0x7fu >> n;
            for (int k = 1; k < n; k++)
                c = c << 6 | (s[i + k] & 0x3f);
        }
        o += encode(base_fold_cp(c), out + o);
        i += (size_t)n;
    }
    return o;
}

/* Random texts of ASCII (mostly), multi-byte sequences that fold or not,
 * and bytes that are not UTF-8, at every length up to 80. */
static void test_random(void **state)
{
    static const struct {
        const char *s;
        size_t len;
    } pieces[] = {
        /* ASCII: the first ten */
        {S("A")},
        {S("z")},
        {S("Z")},
        {S("@")},
        {S("[")},
        {S("`")},
        {S("{")},
        {S(" ")},
        {S("\x7f")},
        {S("\0")},
        {S("\xce\xa9")},         /* Ω */
        {S("\xc3\x89")},         /* É */
        {S("\xc3\x9f")},         /* ß */
        {S("\xe1\xba\x9e")},     /* ẞ */
        {S("\xe2\x84\xaa")},     /* Kelvin sign */
        {S("\xc8\xba")},         /* U+023A, grows */
        {S("\xf0\x90\x90\x80")}, /* U+10400 */
        {S("\xe4\xb8\xad")},     /* 中, no folding */
        {S("\xf0\x9f\x98\x80")}, /* 😀, no folding */
        {S("\xff")},             /* invalid */
        {S("\x80")},             /* stray continuation */
        {S("\xc3")},             /* lead without its continuation */
        {S("\xe2\x82")},         /* a 3-byte lead and one continuation */
    };
    const size_t n_pieces = sizeof(pieces) / sizeof(pieces[0]);
    unsigned seed = 12345;

    for (int round = 0; round < 20000; round++) {
        unsigned char in[96];
        size_t len = 0, limit = (size_t)round % 81;
        while (len < limit) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            /* ASCII four times in five: long runs for the word path */
            size_t k = r % 5 != 0 ? r / 5 % 10 : 10 + r / 5 % (n_pieces - 10);
            if (len + pieces[k].len > limit)
                k = 0;
            memcpy(in + len, pieces[k].s, pieces[k].len);
            len += pieces[k].len;
        }
        size_t got_len;
        char *got = fold_exact((const char *)in, len, &got_len);
        char want[BASE_FOLD_MAX(96)];
        size_t want_len = ref_fold(in, len, want);
        if (got_len != want_len || memcmp(got, want, got_len) != 0)
            fail_msg("round %d (%zu bytes): got %zu bytes, want %zu", round, len, got_len,
                     want_len);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_python),
        cmocka_unit_test(test_every_code_point),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
