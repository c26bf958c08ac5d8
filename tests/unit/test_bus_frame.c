/* Frame parsing, the JSON syntax check, and request-body parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus/internal.h"

/* One case a line: JSON text, valid. */
static const struct {
    const char *s;
    int ok;
} json_cases[] = {
    {"{}", 1},
    {"[]", 1},
    {" {\"a\": [1, 2.5, -3e10, true, false, null, \"x\"]} ", 1},
    {"\"\\u00e9\\n\"", 1},
    {"0", 1},
    {"-0.0e+1", 1},
    {"\"caf\xc3\xa9\"", 1},
    {"", 0},
    {"   ", 0},
    {"{", 0},
    {"{\"a\"}", 0},
    {"{\"a\":}", 0},
    {"{\"a\":1,}", 0},
    {"[1,]", 0},
    {"[1 2]", 0},
    {"01", 0},
    {"1.", 0},
    {".5", 0},
    {"+1", 0},
    {"1e", 0},
    {"tru", 0},
    {"nul", 0},
    {"{} {}", 0},
    {"\"abc", 0},
    {"\"\\x\"", 0},
    {"\"\\u12\"", 0},
    {"\"a\tb\"", 0},
    {"\"\xff\"", 0},
    {"\"\xc3\"", 0},
    {"\"\xed\xa0\x80\"", 0}, /* UTF-16 surrogate encoded in UTF-8 */
    {"{'a':1}", 0},
    {"NaN", 0},
};

static void test_json_check(void **state)
{
    for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
        const char *s = json_cases[i].s;
        if (bus_json_check(s, strlen(s)) != json_cases[i].ok)
            fail_msg("case %zu \"%s\": want %d", i, s, json_cases[i].ok);
    }
}

static void test_json_depth(void **state)
{
    size_t n = 600;
    char *s = malloc(2 * n);
    memset(s, '[', n);
    memset(s + n, ']', n);
    assert_false(bus_json_check(s, 2 * n)); /* deeper than 512 */
    assert_true(bus_json_check(s + 100, 2 * n - 200));
    free(s);
}

static void test_frame(void **state)
{
    static const char good[] = "a.b\0{\"x\":1}";
    bus_event ev;
    enum bus_drop_reason why;

    assert_int_equal(bus_frame_parse(good, sizeof(good) - 1, 0, &ev, &why), 0);
    assert_int_equal(ev.topic_len, 3);
    assert_memory_equal(ev.topic, "a.b", 3);
    assert_int_equal(ev.payload_len, 7);
    assert_memory_equal(ev.payload, "{\"x\":1}", 7);

    assert_int_not_equal(bus_frame_parse("a.b{}", 5, 0, &ev, &why), 0);
    assert_int_equal(why, BUS_DROP_NO_NUL);
    assert_int_not_equal(bus_frame_parse("", 0, 0, &ev, &why), 0);
    assert_int_equal(why, BUS_DROP_NO_NUL);
    assert_int_not_equal(bus_frame_parse("a..b\0{}", 7, 0, &ev, &why), 0);
    assert_int_equal(why, BUS_DROP_BAD_TOPIC);
    assert_int_not_equal(bus_frame_parse("\0{}", 3, 0, &ev, &why), 0);
    assert_int_equal(why, BUS_DROP_BAD_TOPIC);
    assert_int_not_equal(bus_frame_parse("a.*\0{}", 6, 0, &ev, &why), 0);
    assert_int_equal(why, BUS_DROP_BAD_TOPIC);
    assert_int_not_equal(bus_frame_parse("a\0{x}", 5, 0, &ev, &why), 0);
    assert_int_equal(why, BUS_DROP_BAD_JSON);
    assert_int_not_equal(bus_frame_parse("a\0", 2, 0, &ev, &why), 0);
    assert_int_equal(why, BUS_DROP_BAD_JSON);
    assert_int_not_equal(bus_frame_parse(good, sizeof(good) - 1, 8, &ev, &why), 0);
    assert_int_equal(why, BUS_DROP_TOO_LARGE);
    /* A payload containing NUL is not one JSON value. */
    assert_int_not_equal(bus_frame_parse("a\0{}\0", 5, 0, &ev, &why), 0);
    assert_int_equal(why, BUS_DROP_BAD_JSON);
}

/* One case a line: request body, ok, reason when refused, message part. */
static const struct {
    const char *body;
    int ok;
    enum bus_drop_reason why;
    const char *msg;
} requests[] = {
    {"{\"service\":\"supervisor\",\"op\":\"status\"}", 1, 0, NULL},
    {"{\"service\":\"w\",\"op\":\"get\",\"args\":{\"id\":\"x\"}}", 1, 0, NULL},
    {"{\"service\":\"w\",\"op\":\"get\",\"args\":null}", 1, 0, NULL},
    {"", 0, BUS_DROP_BAD_JSON, "not valid JSON"},
    {"{", 0, BUS_DROP_BAD_JSON, "not valid JSON"},
    {"[]", 0, BUS_DROP_BAD_REQUEST, "must be a JSON object"},
    {"{\"op\":\"status\"}", 0, BUS_DROP_BAD_REQUEST, "request.service"},
    {"{\"service\":1,\"op\":\"status\"}", 0, BUS_DROP_BAD_REQUEST, "request.service"},
    {"{\"service\":\"\",\"op\":\"status\"}", 0, BUS_DROP_BAD_REQUEST, "request.service"},
    {"{\"service\":\"s\"}", 0, BUS_DROP_BAD_REQUEST, "request.op"},
    {"{\"service\":\"s\",\"op\":\"x\",\"args\":[1]}", 0, BUS_DROP_BAD_REQUEST, "request.args"},
    {"{\"service\":\"s\",\"op\":\"x\",\"extra\":1}", 0, BUS_DROP_BAD_REQUEST, "unknown key"},
    {"{\"service\":\"s\",\"service\":\"t\",\"op\":\"x\"}", 0, BUS_DROP_BAD_JSON, "duplicate"},
};

static void test_request_parse(void **state)
{
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        json_t *o = NULL;
        enum bus_drop_reason why = BUS_DROP_N;
        char msg[256] = "";
        int rv = bus__request_parse(requests[i].body, strlen(requests[i].body), &o, &why, msg,
                                    sizeof(msg));
        if ((rv == 0) != requests[i].ok)
            fail_msg("case %zu (%s): rv %d, msg %s", i, requests[i].body, rv, msg);
        if (rv == 0) {
            assert_non_null(o);
            json_decref(o);
            continue;
        }
        assert_int_equal(why, requests[i].why);
        if (strstr(msg, requests[i].msg) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, msg, requests[i].msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_check),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_request_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
