/*
 * base/time.c: base_time_format of known instants (the epoch, millisecond
 * edges, leap days, the ends of centuries, 2038, year 9999), base_time_parse
 * of fractions of 1, 2, 3, 6 and more digits and of none, its refusal of
 * strings that are not base_time_format's (no "Z", an offset, garbage,
 * NULL), a round trip format -> parse -> format over many seeded instants,
 * and base_now_ms against time(2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/base.h"

/* One case a line: ms since the epoch, its ISO-8601 text. */
static const struct {
    int64_t ms;
    const char *iso;
} instants[] = {
    {-86400000, "1969-12-31T00:00:00.000Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {0, "1970-01-01T00:00:00.000Z"},
    {1, "1970-01-01T00:00:00.001Z"},
    {999, "1970-01-01T00:00:00.999Z"},
    {1000, "1970-01-01T00:00:01.000Z"},
    {86399999, "1970-01-01T23:59:59.999Z"},
    {86400000, "1970-01-02T00:00:00.000Z"},
    {946684799999, "1999-12-31T23:59:59.999Z"},
    {951782400000, "2000-02-29T00:00:00.000Z"},
    {1230768000000, "2009-01-01T00:00:00.000Z"},
    {1709164800000, "2024-02-29T00:00:00.000Z"},
    {1764640861123, "2025-12-02T02:01:01.123Z"},
    {2147483647999, "2038-01-19T03:14:07.999Z"},
    {2147483648000, "2038-01-19T03:14:08.000Z"},
    {4102444800000, "2100-01-01T00:00:00.000Z"},
    {253402300799999, "9999-12-31T23:59:59.999Z"},
};

static void test_format(void **state)
{
    for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++) {
        char out[BASE_TIME_ISO_MAX];
        memset(out, 'X', sizeof(out));
        base_time_format(instants[i].ms, out);
        if (strcmp(out, instants[i].iso) != 0)
            fail_msg("%lld: got %s, want %s", (long long)instants[i].ms, out, instants[i].iso);
    }
}

static void test_parse_instants(void **state)
{
    for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++) {
        int64_t ms = -12345;
        assert_int_equal(base_time_parse(instants[i].iso, &ms), 0);
        if (ms != instants[i].ms)
            fail_msg("%s: got %lld, want %lld", instants[i].iso, (long long)ms,
                     (long long)instants[i].ms);
    }
}

/* One case a line: text, ms (the fraction truncated to milliseconds). */
static const struct {
    const char *s;
    int64_t ms;
} fractions[] = {
    {"2025-12-02T02:01:01Z", 1764640861000},
    {"2025-12-02T02:01:01.1Z", 1764640861100},
    {"2025-12-02T02:01:01.12Z", 1764640861120},
    {"2025-12-02T02:01:01.123Z", 1764640861123},
    {"2025-12-02T02:01:01.000Z", 1764640861000},
    {"2025-12-02T02:01:01.001Z", 1764640861001},
    {"2025-12-02T02:01:01.010Z", 1764640861010},
    {"2025-12-02T02:01:01.123456Z", 1764640861123},
    {"2025-12-02T02:01:01.999999Z", 1764640861999},
    {"2025-12-02T02:01:01.000999Z", 1764640861000},
    {"2025-12-02T02:01:01.123456789123Z", 1764640861123},
    {"1970-01-01T00:00:00Z", 0},
    {"1970-01-01T00:00:00.5Z", 500},
    {"1970-01-01T00:00:00.05Z", 50},
};

static void test_parse_fractions(void **state)
{
    for (size_t i = 0; i < sizeof(fractions) / sizeof(fractions[0]); i++) {
        int64_t ms = -12345;
        int rc = base_time_parse(fractions[i].s, &ms);
        if (rc != 0 || ms != fractions[i].ms)
            fail_msg("%s: rc %d, got %lld, want %lld", fractions[i].s, rc, (long long)ms,
                     (long long)fractions[i].ms);
    }
}

/* One string a line, each refused with -EINVAL. */
static const char *const refused[] = {
    "",
    "garbage",
    "Z",
    "2025",
    "2025-12-02",
    "2025-12-02T02:01Z",
    "2025-12-02T02:01:01",
    "2025-12-02T02:01:01.123",
    "2025-12-02T02:01:01+01:00",
    "2025-12-02T02:01:01.123+01:00",
    "2025-12-02T02:01:01.123-05:00",
    "2025-12-02T02:01:01.123z",
    "2025-12-02T02:01:01.123ZZ",
    "2025-12-02T02:01:01.123Z ",
    "2025-12-02T02:01:01.12aZ",
    "2025-12-02T02:01:01,123Z",
    "2025-12-02 02:01:01.123Z",
    "2025/12/02T02:01:01.123Z",
    "2025-12-02T02:01:01.123 Z",
    "x2025-12-02T02:01:01.123Z",
    "2025-13-01T00:00:00Z",
    "2025-02-30T00:00:00Z",
    "2025-12-02T24:00:00Z",
    "2025-12-02T02:01:61Z",
    "2025-1-2T3:4:5Z",
    " 2025-12-02T02:01:01Z",
    "+025-12-02T02:01:01Z",
    "2025-12-02T02:01:01.Z",
};

static void test_parse_refused(void **state)
{
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int64_t ms = -12345;
        int rc = base_time_parse(refused[i], &ms);
        if (rc != -EINVAL)
            fail_msg("\"%s\": rc %d (ms %lld), want -EINVAL", refused[i], rc, (long long)ms);
        assert_int_equal(ms, -12345); /* untouched */
    }
    int64_t ms = -12345;
    assert_int_equal(base_time_parse(NULL, &ms), -EINVAL);
    assert_int_equal(ms, -12345);
}

/* format -> parse gives the instant back, and format again the same text,
 * for the edges of each millisecond, second, day and year, and for seeded
 * instants up to the end of year 9999. */
static void round_trip(int64_t ms)
{
    char a[BASE_TIME_ISO_MAX], b[BASE_TIME_ISO_MAX];
    int64_t back = -1;

    base_time_format(ms, a);
    assert_int_equal(strlen(a), 24);
    if (base_time_parse(a, &back) != 0 || back != ms)
        fail_msg("%lld -> %s -> %lld", (long long)ms, a, (long long)back);
    base_time_format(back, b);
    assert_string_equal(a, b);
}

static void test_round_trip(void **state)
{
    static const int64_t max = 253402300799999; /* 9999-12-31T23:59:59.999Z */
    uint64_t x = 42;

    for (int64_t ms = 0; ms < 3000; ms++)
        round_trip(ms);
    for (int64_t day = 0; day < 2932897; day += 97) /* every 97th day to 9999 */
        for (int64_t d = -1; d <= 1; d++)
            if (day * 86400000 + d >= 0)
                round_trip(day * 86400000 + d);
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        round_trip((int64_t)((x >> 11) % (uint64_t)(max + 1)));
    }
    round_trip(max);
}

/* The wall clock agrees with time(2): no duration is measured. */
static void test_now(void **state)
{
    time_t before = time(NULL);
    int64_t now = base_now_ms();
    time_t after = time(NULL);

    assert_true(now >= (int64_t)before * 1000);
    assert_true(now < ((int64_t)after + 1) * 1000);
    char iso[BASE_TIME_ISO_MAX];
    int64_t back;
    base_time_format(now, iso);
    assert_int_equal(base_time_parse(iso, &back), 0);
    assert_int_equal(back, now);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),          cmocka_unit_test(test_parse_instants),
        cmocka_unit_test(test_parse_fractions), cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
