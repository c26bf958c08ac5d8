/* SHA-256 vectors (the manifest's hash) and the id and section name rules. */
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
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
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
    memset(buf, 'a', sizeof(buf));
    for (size_t i = 0; i < sizeof(pad) / sizeof(pad[0]); i++) {
        hex_of(buf, pad[i].n, hex);
        assert_string_equal(hex, pad[i].hex);
    }
}

/* One value: valid (1) or not (0). */
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
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = catalog__check_name(cases[i].s, cases[i].len, why, sizeof(why));
        if (cases[i].why == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_string_equal(why, cases[i].why);
        }
    }
    char big[CATALOG_NAME_MAX + 1];
    memset(big, 'x', sizeof(big));
    assert_int_equal(catalog__check_name(big, CATALOG_NAME_MAX, why, sizeof(why)), 0);
    assert_int_equal(catalog__check_name(big, CATALOG_NAME_MAX + 1, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "is 201 bytes, over 200");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
