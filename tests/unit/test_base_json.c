/* The JSON scanner, string decoding, and the JSON string writer. */
#include "base/base.h"

#include <errno.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const struct {
    const char *text;
    int valid;
} values[] = {
    {"{}", 1},
    {"[]", 1},
    {" { \"a\" : [ 1 , 2.5e-3 , -0 , true , false , null ] } ", 1},
    {"\"a \\\"}]{[ string\"", 1},
    {"{\"k\\\"}\":\"v{[\\\\\"}", 1},
    {"[[[[[]]]],[{}],{\"a\":{\"b\":[]}}]", 1},
    {"\"\\u00e9\\ud83d\\ude00\\n\\t\\/\"", 1},
    {"\"caf\xc3\xa9\"", 1},
    {"\t\r\n 0 \n", 1},
    {"", 0},
    {"{", 0},
    {"{\"a\":1,}", 0},
    {"[1,]", 0},
    {"[1 2]", 0},
    {"{\"a\" 1}", 0},
    {"{a:1}", 0},
    {"01", 0},
    {"1.", 0},
    {"-", 0},
    {"1e", 0},
    {"+1", 0},
    {"tru", 0},
    {"nul", 0},
    {"\"abc", 0},
    {"\"a\x01\"", 0},
    {"\"\\x\"", 0},
    {"\"\\u12g4\"", 0},
    {"\"\\ud800\"", 0},
    {"\"\\udc00\"", 0},
    {"\"\xc3\x28\"", 0},
    {"\"\xc0\xaf\"", 0},
    {"\"\xed\xa0\x80\"", 0},
    {"[}", 0},
    {"{]", 0},
    {"[1]]", 0},
};

static void test_scan_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        base_json_scan s;
        size_t a, z;
        const char *t = values[i].text;
        base_json_scan_init(&s, t, strlen(t));
        int rc = base_json_scan_value(&s, &a, &z);
        if (rc == 0)
            rc = base_json_scan_end(&s);
        if ((rc == 0) != values[i].valid)
            fail_msg("case %zu <%s>: expected %s, got rc=%d (%s)", i, t,
                     values[i].valid ? "valid" : "invalid", rc, s.err != NULL ? s.err : "");
        /* jansson must agree on what is valid JSON */
        json_error_t je;
        json_t *j = json_loadb(t, strlen(t), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if ((j != NULL) != values[i].valid)
            fail_msg("case %zu <%s>: jansson disagrees", i, t);
        json_decref(j);
    }
}

static void test_scan_ranges_and_position(void **state)
{
    (void)state;
    const char *t = "{\"s\": [ {\"id\":\"a}\"} ,\n  {\"id\":\"b\\\"]\"}\n] , \"x\": 1}";
    base_json_scan s;
    base_json_scan_init(&s, t, strlen(t));
    assert_int_equal(base_json_scan_expect(&s, '{'), 0);
    int first = 1;
    size_t ka, kz, a, z;
    assert_int_equal(base_json_scan_member(&s, &first, &ka, &kz), 1);
    assert_int_equal(kz - ka, 3);
    assert_int_equal(base_json_scan_expect(&s, '['), 0);
    int ef = 1;
    assert_int_equal(base_json_scan_element(&s, &ef), 1);
    assert_int_equal(base_json_scan_value(&s, &a, &z), 0);
    assert_memory_equal(t + a, "{\"id\":\"a}\"}", z - a);
    assert_int_equal(base_json_scan_element(&s, &ef), 1);
    assert_int_equal(base_json_scan_value(&s, &a, &z), 0);
    assert_memory_equal(t + a, "{\"id\":\"b\\\"]\"}", z - a);
    assert_int_equal(base_json_scan_element(&s, &ef), 0);
    assert_int_equal(base_json_scan_member(&s, &first, &ka, &kz), 1);
    assert_int_equal(base_json_scan_value(&s, &a, &z), 0);
    assert_int_equal(base_json_scan_member(&s, &first, &ka, &kz), 0);
    assert_int_equal(base_json_scan_end(&s), 0);

    /* an error's position is reported as line and column */
    const char *bad = "{\n  \"a\": [1,\n    2,, 3]}";
    base_json_scan_init(&s, bad, strlen(bad));
    assert_int_not_equal(base_json_scan_value(&s, &a, &z), 0);
    size_t line, col;
    base_json_scan_where(&s, s.err_pos, &line, &col);
    assert_int_equal(line, 3);
    assert_int_equal(col, 7);
}

static void test_scan_depth_limit(void **state)
{
    (void)state;
    size_t n = BASE_JSON_DEPTH_MAX + 1;
    char *t = malloc(2 * n);
    assert_non_null(t);
    memset(t, '[', n);
    memset(t + n, ']', n);
    base_json_scan s;
    size_t a, z;
    base_json_scan_init(&s, t, 2 * n);
    assert_int_equal(base_json_scan_value(&s, &a, &z), -EINVAL);
    assert_string_equal(s.err, "nesting too deep");
    base_json_scan_init(&s, t + 1, 2 * n - 2);
    assert_int_equal(base_json_scan_value(&s, &a, &z), 0);
    free(t);
}

static void test_scan_decode(void **state)
{
    (void)state;
    const char *raw = "\"a\\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00\\u0000z\"";
    char out[64];
    size_t n = base_json_decode(raw, strlen(raw), out);
    const char want[] = "a\"b\\c/\n\xc3\xa9\xf0\x9f\x98\x80\0z";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
}

static void test_buf_json_string(void **state)
{
    (void)state;
    base_buf b = {0};
    const char s[] = "q\"b\\n\n\x01\xc3\xa9";
    assert_int_equal(base_buf_json_string(&b, s, sizeof(s) - 1), 0);
    assert_string_equal(b.data, "\"q\\\"b\\\\n\\n\\u0001\xc3\xa9\"");
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    assert_int_equal(json_string_length(j), sizeof(s) - 1);
    assert_memory_equal(json_string_value(j), s, sizeof(s) - 1);
    json_decref(j);
    base_buf_free(&b);
    base_buf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_values),      cmocka_unit_test(test_scan_ranges_and_position),
        cmocka_unit_test(test_scan_depth_limit), cmocka_unit_test(test_scan_decode),
        cmocka_unit_test(test_buf_json_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
