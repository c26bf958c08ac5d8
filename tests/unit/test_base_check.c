/*
 * base/check.c and base/err.c: names (base_name_valid: 1-64 bytes of
 * [a-z0-9_-]) and topic tokens (base_token_valid, which also takes
 * uppercase; base_token_char on every byte), byte sizes from config
 * (base_parse_size: integers, string sizes with K/M/G/T in either case and
 * "B"/"iB", overflow, junk), messages for a person (base_errf/base_verrf:
 * -EINVAL, formatting, truncation, a NULL buffer) and log level names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

/* One case a line: text, valid as a name, valid as a token. */
static const struct {
    const char *s;
    bool name, token;
} names[] = {
    /* both */
    {"a", true, true},
    {"w1", true, true},
    {"my-worker_2", true, true},
    {"0", true, true},
    {"-", true, true},
    {"_", true, true},
    {"--__--", true, true},
    {"abcdefghijklmnopqrstuvwxyz0123456789-_", true, true},
    /* uppercase: a token, not a name */
    {"A", false, true},
    {"Worker", false, true},
    {"wOrker", false, true},
    {"ABC-def_09", false, true},
    /* neither */
    {"", false, false},
    {"a.b", false, false},
    {".", false, false},
    {"a b", false, false},
    {" a", false, false},
    {"a ", false, false},
    {"a/b", false, false},
    {"a*", false, false},
    {"a>", false, false},
    {"a\tb", false, false},
    {"a\nb", false, false},
    {"a+b", false, false},
    {"a:b", false, false},
    {"a@b", false, false},
    {"\xc3\xa9", false, false},
    {"caf\xc3\xa9", false, false},
    {"a\x7f", false, false},
};

static void test_names(void **state)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        bool n = base_name_valid(names[i].s), t = base_token_valid(names[i].s);
        if (n != names[i].name || t != names[i].token)
            fail_msg("\"%s\": name %d (want %d), token %d (want %d)", names[i].s, n, names[i].name,
                     t, names[i].token);
    }
    assert_false(base_name_valid(NULL));
    assert_false(base_token_valid(NULL));
}

/* 64 bytes are fine, 65 are not; a bad byte at either end of 64 is bad. */
static void test_name_lengths(void **state)
{
    char s[BASE_NAME_MAX + 2];

    for (size_t n = 1; n <= BASE_NAME_MAX + 1; n++) {
        memset(s, 'a', n);
        s[n] = '\0';
        assert_int_equal(base_name_valid(s), n <= BASE_NAME_MAX);
        memset(s, 'A', n);
        assert_int_equal(base_token_valid(s), n <= BASE_NAME_MAX);
        assert_false(base_name_valid(s));
    }
    memset(s, 'x', BASE_NAME_MAX);
    s[BASE_NAME_MAX] = '\0';
    assert_true(base_name_valid(s));
    s[0] = '.';
    assert_false(base_name_valid(s));
    assert_false(base_token_valid(s));
    s[0] = 'x';
    s[BASE_NAME_MAX - 1] = '.';
    assert_false(base_name_valid(s));
    assert_false(base_token_valid(s));
}

static void test_token_char(void **state)
{
    for (int c = 0; c < 256; c++) {
        bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
        if (base_token_char((unsigned char)c) != want)
            fail_msg("byte 0x%02x: got %d, want %d", c, !want, want);
        /* a one-byte token agrees with it (NUL aside: that is the end) */
        if (c != 0) {
            char s[2] = {(char)c, '\0'};
            assert_int_equal(base_token_valid(s), want);
            assert_int_equal(base_name_valid(s), want && !(c >= 'A' && c <= 'Z'));
        }
    }
}

/* ---- sizes -------------------------------------------------------------- */

#define KI (1ull << 10)
#define MI (1ull << 20)
#define GI (1ull << 30)
#define TI (1ull << 40)

/* One case a line: a string size, 0 or -EINVAL, the bytes. */
static const struct {
    const char *s;
    int rc;
    uint64_t bytes;
} string_sizes[] = {
    {"0", 0, 0},
    {"1", 0, 1},
    {"12", 0, 12},
    {"12B", 0, 12},
    {"1K", 0, KI},
    {"1k", 0, KI},
    {"1KB", 0, KI},
    {"1KiB", 0, KI},
    {"1kiB", 0, KI},
    {"64M", 0, 64 * MI},
    {"64m", 0, 64 * MI},
    {"64MB", 0, 64 * MI},
    {"64MiB", 0, 64 * MI},
    {"3G", 0, 3 * GI},
    {"3g", 0, 3 * GI},
    {"3GiB", 0, 3 * GI},
    {"2T", 0, 2 * TI},
    {"2t", 0, 2 * TI},
    {"2TiB", 0, 2 * TI},
    {"0K", 0, 0},
    {"007", 0, 7},
    {"1024K", 0, MI},
    {"16777215T", 0, 16777215 * TI},
    {"18446744073709551615", 0, UINT64_MAX},
    {"18446744073709551615B", 0, UINT64_MAX},
    /* overflow */
    {"16777216T", -EINVAL, 0},
    {"99999999999T", -EINVAL, 0},
    {"17179869184G", -EINVAL, 0},
    {"18014398509481984K", -EINVAL, 0},
    {"18446744073709551616", -EINVAL, 0},
    {"99999999999999999999999", -EINVAL, 0},
    /* junk */
    {"", -EINVAL, 0},
    {"-1", -EINVAL, 0},
    {"+1", -EINVAL, 0},
    {" 1", -EINVAL, 0},
    {"1 ", -EINVAL, 0},
    {"1 K", -EINVAL, 0},
    {"1X", -EINVAL, 0},
    {"1P", -EINVAL, 0},
    {"K", -EINVAL, 0},
    {"KiB", -EINVAL, 0},
    {"B", -EINVAL, 0},
    {"1b", -EINVAL, 0},
    {"1Kb", -EINVAL, 0},
    {"1kib", -EINVAL, 0},
    {"1iB", -EINVAL, 0},
    {"1KK", -EINVAL, 0},
    {"1KiBB", -EINVAL, 0},
    {"1BB", -EINVAL, 0},
    {"1.5K", -EINVAL, 0},
    {"1e3", -EINVAL, 0},
    {"0x10", -EINVAL, 0},
    {"1,000", -EINVAL, 0},
    {"one", -EINVAL, 0},
};

static void test_parse_size_strings(void **state)
{
    for (size_t i = 0; i < sizeof(string_sizes) / sizeof(string_sizes[0]); i++) {
        json_t *v = json_string(string_sizes[i].s);
        uint64_t out = 12345;
        assert_non_null(v);
        int rc = base_parse_size(v, &out);
        json_decref(v);
        if (rc != string_sizes[i].rc)
            fail_msg("\"%s\": rc %d, want %d", string_sizes[i].s, rc, string_sizes[i].rc);
        if (rc == 0 && out != string_sizes[i].bytes)
            fail_msg("\"%s\": %llu, want %llu", string_sizes[i].s, (unsigned long long)out,
                     (unsigned long long)string_sizes[i].bytes);
        if (rc != 0)
            assert_int_equal(out, 12345); /* untouched */
    }
}

static void test_parse_size_values(void **state)
{
    /* One case a line: JSON text, 0 or -EINVAL, the bytes. */
    static const struct {
        const char *json;
        int rc;
        uint64_t bytes;
    } cases[] = {
        {"0", 0, 0},
        {"1", 0, 1},
        {"1048576", 0, MI},
        {"9223372036854775807", 0, INT64_MAX},
        {"-1", -EINVAL, 0},
        {"-9223372036854775808", -EINVAL, 0},
        {"1.0", -EINVAL, 0},
        {"1.5", -EINVAL, 0},
        {"true", -EINVAL, 0},
        {"false", -EINVAL, 0},
        {"null", -EINVAL, 0},
        {"[1]", -EINVAL, 0},
        {"{\"size\": 1}", -EINVAL, 0},
        {"\"64M\"", 0, 64 * MI},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, &jerr);
        if (v == NULL)
            fail_msg("bad test JSON %s: %s", cases[i].json, jerr.text);
        uint64_t out = 12345;
        int rc = base_parse_size(v, &out);
        json_decref(v);
        if (rc != cases[i].rc || (rc == 0 && out != cases[i].bytes))
            fail_msg("%s: rc %d (want %d), %llu (want %llu)", cases[i].json, rc, cases[i].rc,
                     (unsigned long long)out, (unsigned long long)cases[i].bytes);
    }
    uint64_t out = 12345;
    assert_int_equal(base_parse_size(NULL, &out), -EINVAL);
    assert_int_equal(out, 12345);
}

/* ---- messages and log levels ------------------------------------------- */

static int verrf_wrapper(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int verrf_wrapper(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int rc = base_verrf(err, n, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_errf(void **state)
{
    char err[64];

    memset(err, 'X', sizeof(err));
    assert_int_equal(
        base_errf(err, sizeof(err), "workers[%d].name: \"%s\" is not a name", 3, "Bad.Name"),
        -EINVAL);
    assert_string_equal(err, "workers[3].name: \"Bad.Name\" is not a name");
    /* the message is cut to the buffer, NUL-terminated */
    memset(err, 'X', sizeof(err));
    assert_int_equal(base_errf(err, 6, "%s", "truncated"), -EINVAL);
    assert_string_equal(err, "trunc");
    assert_int_equal(err[6], 'X');
    /* no buffer, or none of it: just the code */
    assert_int_equal(base_errf(NULL, 0, "x %d", 1), -EINVAL);
    assert_int_equal(base_errf(NULL, 64, "x %d", 1), -EINVAL);
    memset(err, 'X', sizeof(err));
    assert_int_equal(base_errf(err, 0, "x %d", 1), -EINVAL);
    assert_int_equal(err[0], 'X');
    /* the va_list form */
    assert_int_equal(verrf_wrapper(err, sizeof(err), "%s=%u", "k", 7u), -EINVAL);
    assert_string_equal(err, "k=7");
    assert_int_equal(verrf_wrapper(NULL, 0, "%s", "x"), -EINVAL);
}

static void test_log_levels(void **state)
{
    /* One case a line: level, name. */
    static const struct {
        enum base_log_level level;
        const char *name;
    } levels[] = {
        {BASE_LOG_ERROR, "error"},
        {BASE_LOG_WARN, "warn"},
        {BASE_LOG_INFO, "info"},
        {BASE_LOG_DEBUG, "debug"},
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        enum base_log_level got = (enum base_log_level)99;
        assert_string_equal(base_log_level_name(levels[i].level), levels[i].name);
        assert_int_equal(base_log_level_parse(levels[i].name, &got), 0);
        assert_int_equal(got, levels[i].level);
    }
    /* most severe first */
    assert_true(BASE_LOG_ERROR < BASE_LOG_WARN);
    assert_true(BASE_LOG_WARN < BASE_LOG_INFO);
    assert_true(BASE_LOG_INFO < BASE_LOG_DEBUG);
    assert_string_equal(base_log_level_name((enum base_log_level)4), "unknown");
    assert_string_equal(base_log_level_name((enum base_log_level) - 1), "unknown");

    static const char *const bad[] = {"verbose", "",      "Error", "INFO", "warning",
                                      "debug ",  " info", "err",   "trace"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum base_log_level got = BASE_LOG_INFO;
        if (base_log_level_parse(bad[i], &got) != -EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_int_equal(got, BASE_LOG_INFO); /* untouched */
    }
    enum base_log_level got = BASE_LOG_WARN;
    assert_int_equal(base_log_level_parse(NULL, &got), -EINVAL);
    assert_int_equal(got, BASE_LOG_WARN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_name_lengths),
        cmocka_unit_test(test_token_char),
        cmocka_unit_test(test_parse_size_strings),
        cmocka_unit_test(test_parse_size_values),
        cmocka_unit_test(test_errf),
        cmocka_unit_test(test_log_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
