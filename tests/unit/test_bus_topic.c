/* Topic and pattern validation, NATS-style matching, subscription prefixes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"

/* One case a line: text, valid as topic, valid as pattern. */
static const struct {
    const char *s;
    int topic_ok, pattern_ok;
} validity[] = {
    {"a", 1, 1},       {"system.w1.health", 1, 1},
    {"A-b_9.x", 1, 1}, {"", 0, 0},
    {".", 0, 0},       {"a.", 0, 0},
    {".a", 0, 0},      {"a..b", 0, 0},
    {"a b", 0, 0},     {"a/b", 0, 0},
    {"é", 0, 0},       {"*", 0, 1},
    {">", 0, 1},       {"a.*", 0, 1},
    {"*.b", 0, 1},     {"a.>", 0, 1},
    {"a.*.>", 0, 1},   {">.a", 0, 0},
    {"a.>.b", 0, 0},   {"a*", 0, 0},
    {"a.b*", 0, 0},    {"a.>>", 0, 0},
    {"**", 0, 0},      {"a.*b", 0, 0},
};

static void test_validity(void **state)
{
    for (size_t i = 0; i < sizeof(validity) / sizeof(validity[0]); i++) {
        const char *s = validity[i].s;
        int t = bus_topic_check(s, strlen(s)) == 0;
        int p = bus_pattern_check(s, strlen(s)) == 0;
        if (t != validity[i].topic_ok || p != validity[i].pattern_ok)
            fail_msg("case \"%s\": topic %d (want %d), pattern %d (want %d)", s, t,
                     validity[i].topic_ok, p, validity[i].pattern_ok);
    }
}

static void test_lengths(void **state)
{
    char buf[300];
    memset(buf, 'a', sizeof(buf));
    assert_int_equal(bus_topic_check(buf, 255), 0);
    assert_int_not_equal(bus_topic_check(buf, 256), 0);
    assert_int_not_equal(bus_pattern_check(buf, 256), 0);
    buf[253] = '.';
    buf[254] = '>';
    assert_int_equal(bus_pattern_check(buf, 255), 0);
    assert_int_not_equal(bus_topic_check(NULL, 0), 0);
}

/* One case a line: pattern, topic, match. */
static const struct {
    const char *pattern, *topic;
    int match;
} matching[] = {
    {"a", "a", 1},
    {"a", "b", 0},
    {"a", "a.b", 0},
    {"a.b", "a", 0},
    {"a.b", "a.bc", 0},
    {"a.bc", "a.b", 0},
    {"*", "a", 1},
    {"*", "a.b", 0},
    {"a.*", "a.b", 1},
    {"a.*", "a", 0},
    {"a.*", "a.b.c", 0},
    {"*.b", "a.b", 1},
    {"*.b", "a.c", 0},
    {"a.*.c", "a.x.c", 1},
    {"a.*.c", "a.x.d", 0},
    {">", "a", 1},
    {">", "a.b.c", 1},
    {"a.>", "a", 0},
    {"a.>", "a.b", 1},
    {"a.>", "a.b.c", 1},
    {"a.>", "ab.c", 0},
    {"a.*.>", "a.b", 0},
    {"a.*.>", "a.b.c", 1},
    {"system.*.health", "system.w1.health", 1},
    {"system.*.health", "system.w1.state", 0},
    {"jobs.>", "jobs", 0},
    {"jobs.>", "jobs.a.b", 1},
    {"*.*", "a.b", 1},
    {"*.*", "a", 0},
};

static void test_match(void **state)
{
    for (size_t i = 0; i < sizeof(matching) / sizeof(matching[0]); i++) {
        const char *p = matching[i].pattern, *t = matching[i].topic;
        int m = bus_topic_match(p, strlen(p), t, strlen(t));
        if (m != matching[i].match)
            fail_msg("pattern \"%s\" topic \"%s\": got %d want %d", p, t, m, matching[i].match);
    }
}

static void test_prefix(void **state)
{
    static const struct {
        const char *pattern;
        size_t prefix;
    } cases[] = {
        {"a.b", 3}, {"a.>", 2}, {">", 0}, {"*", 0}, {"a.*.c", 2}, {"abc.def.*", 8},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *p = cases[i].pattern;
        assert_int_equal(bus_pattern_prefix_len(p, strlen(p)), cases[i].prefix);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
