/* sha256 vectors, the JSON scanner, names, and the JSON string writer. */
#include "catalog/internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void hex_of(const char *msg, size_t len, char out[65])
{
    catalog__sha256_buf(msg, len, out);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        const char *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrl"
         "mnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        hex_of(v[i].msg, strlen(v[i].msg), hex);
        assert_string_equal(hex, v[i].hex);
    }
    /* one million 'a', fed in uneven pieces to cross block boundaries */
    catalog__sha256 c;
    uint8_t d[32];
    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    catalog__sha256_init(&c);
    size_t off = 0, step = 1;
    while (off < 1000000) {
        size_t n = step < 1000000 - off ? step : 1000000 - off;
        catalog__sha256_update(&c, a + off, n);
        off += n;
        step = step * 3 % 257 + 1;
    }
    catalog__sha256_final(&c, d);
    catalog__sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
    /* lengths around the padding boundary (55, 56, 63, 64 bytes) */
    static const struct {
        size_t n;
        const char *hex;
    } pad[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    };
    char buf[64];
    memset(buf, 'a', sizeof buf);
    for (size_t i = 0; i < sizeof pad / sizeof pad[0]; i++) {
        hex_of(buf, pad[i].n, hex);
        assert_string_equal(hex, pad[i].hex);
    }
}

/* One value: valid (1) or not (0). */
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
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        catalog__scan s;
        size_t a, z;
        const char *t = values[i].text;
        catalog__scan_init(&s, t, strlen(t));
        int rc = catalog__scan_value(&s, &a, &z);
        if (rc == 0)
            rc = catalog__scan_end(&s);
        if ((rc == 0) != values[i].valid)
            fail_msg("case %zu <%s>: expected %s, got rc=%d (%s)", i, t,
                     values[i].valid ? "valid" : "invalid", rc, s.err ? s.err : "");
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
    catalog__scan s;
    catalog__scan_init(&s, t, strlen(t));
    assert_int_equal(catalog__scan_expect(&s, '{'), 0);
    int first = 1;
    size_t ka, kz, a, z;
    assert_int_equal(catalog__scan_member(&s, &first, &ka, &kz), 1);
    assert_int_equal(kz - ka, 3);
    assert_int_equal(catalog__scan_expect(&s, '['), 0);
    int ef = 1;
    assert_int_equal(catalog__scan_element(&s, &ef), 1);
    assert_int_equal(catalog__scan_value(&s, &a, &z), 0);
    assert_memory_equal(t + a, "{\"id\":\"a}\"}", z - a);
    assert_int_equal(catalog__scan_element(&s, &ef), 1);
    assert_int_equal(catalog__scan_value(&s, &a, &z), 0);
    assert_memory_equal(t + a, "{\"id\":\"b\\\"]\"}", z - a);
    assert_int_equal(catalog__scan_element(&s, &ef), 0);
    assert_int_equal(catalog__scan_member(&s, &first, &ka, &kz), 1);
    assert_int_equal(catalog__scan_value(&s, &a, &z), 0);
    assert_int_equal(catalog__scan_member(&s, &first, &ka, &kz), 0);
    assert_int_equal(catalog__scan_end(&s), 0);

    /* an error's position is reported as line and column */
    const char *bad = "{\n  \"a\": [1,\n    2,, 3]}";
    catalog__scan_init(&s, bad, strlen(bad));
    assert_int_not_equal(catalog__scan_value(&s, &a, &z), 0);
    size_t line, col;
    catalog__scan_where(&s, s.err_pos, &line, &col);
    assert_int_equal(line, 3);
    assert_int_equal(col, 7);
}

static void test_scan_depth_limit(void **state)
{
    (void)state;
    size_t n = CATALOG__SCAN_DEPTH + 1;
    char *t = malloc(2 * n);
    assert_non_null(t);
    memset(t, '[', n);
    memset(t + n, ']', n);
    catalog__scan s;
    size_t a, z;
    catalog__scan_init(&s, t, 2 * n);
    assert_int_equal(catalog__scan_value(&s, &a, &z), -EINVAL);
    assert_string_equal(s.err, "nesting too deep");
    catalog__scan_init(&s, t + 1, 2 * n - 2);
    assert_int_equal(catalog__scan_value(&s, &a, &z), 0);
    free(t);
}

static void test_scan_decode(void **state)
{
    (void)state;
    const char *raw = "\"a\\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00\\u0000z\"";
    char out[64];
    size_t n = catalog__scan_decode(raw, strlen(raw), out);
    const char want[] = "a\"b\\c/\n\xc3\xa9\xf0\x9f\x98\x80\0z";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(out, want, n);
}

static void test_names(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        const char *why; /* NULL: accepted */
    } cases[] = {
        {"sensor.a01nyub", 14, NULL},
        {"a.b", 3, NULL},
        {".hidden", 7, NULL},
        {"", 0, "is empty"},
        {".", 1, "is '.'"},
        {"..", 2, "contains '..'"},
        {"a..b", 4, "contains '..'"},
        {"a/b", 3, "contains '/'"},
        {"a\0b", 3, "contains a NUL byte"},
        {"a\nb", 3, "contains a control byte"},
        {"a\x7f", 2, "contains a control byte"},
    };
    char why[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = catalog__check_name(cases[i].s, cases[i].len, why, sizeof why);
        if (!cases[i].why) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_string_equal(why, cases[i].why);
        }
    }
    char big[CATALOG_NAME_MAX + 1];
    memset(big, 'x', sizeof big);
    assert_int_equal(catalog__check_name(big, CATALOG_NAME_MAX, why, sizeof why), 0);
    assert_int_equal(catalog__check_name(big, CATALOG_NAME_MAX + 1, why, sizeof why), -EINVAL);
    assert_string_equal(why, "is 201 bytes, over 200");
}

static void test_buf_json_string(void **state)
{
    (void)state;
    catalog_buf b = {0};
    const char s[] = "q\"b\\n\n\x01\xc3\xa9";
    assert_int_equal(catalog__buf_json_string(&b, s, sizeof s - 1), 0);
    assert_string_equal(b.data, "\"q\\\"b\\\\n\\n\\u0001\xc3\xa9\"");
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    assert_int_equal(json_string_length(j), sizeof s - 1);
    assert_memory_equal(json_string_value(j), s, sizeof s - 1);
    json_decref(j);
    catalog_buf_free(&b);
    catalog_buf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_scan_values),
        cmocka_unit_test(test_scan_ranges_and_position),
        cmocka_unit_test(test_scan_depth_limit),
        cmocka_unit_test(test_scan_decode),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_buf_json_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
