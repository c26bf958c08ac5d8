/*
 * base/buf.c: growable byte buffers (add, adds, addf and their growth, the
 * NUL terminator after every change, reserve, consume, free, the
 * allocation charged through base_realloc) and base_buf_json_string
 * (every control byte, '"' and '\\', plain text copied as it is, escapes
 * at every offset of runs longer than a word, and a seeded random mix),
 * checked byte for byte against a one-byte-at-a-time reference and parsed
 * back with jansson to exactly the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

/* The invariants every operation keeps. */
static void check_buf(const base_buf *b)
{
    if (b->data == NULL) {
        assert_int_equal(b->len, 0);
        assert_int_equal(b->cap, 0);
        return;
    }
    assert_true(b->len < b->cap);
    assert_int_equal(b->data[b->len], '\0');
    assert_int_equal(base_mem_size(b->data), b->cap);
}

static void test_add_growth(void **state)
{
    base_buf b = {0};
    char *want = malloc(10000);

    assert_non_null(want);
    for (size_t i = 0; i < 10000; i++) {
        char c = (char)('a' + i % 26);
        want[i] = c;
        assert_int_equal(base_buf_add(&b, &c, 1), 0);
        assert_int_equal(b.len, i + 1);
        check_buf(&b);
    }
    assert_memory_equal(b.data, want, 10000);
    /* a big add in one go on top */
    assert_int_equal(base_buf_add(&b, want, 10000), 0);
    assert_int_equal(b.len, 20000);
    check_buf(&b);
    assert_memory_equal(b.data + 10000, want, 10000);
    base_buf_free(&b);
    check_buf(&b);
    free(want);
}

static void test_add_bytes(void **state)
{
    base_buf b = {0};

    /* NUL bytes are data like any other */
    assert_int_equal(base_buf_add(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4);
    check_buf(&b);
    /* an empty add changes nothing but leaves the terminator */
    assert_int_equal(base_buf_add(&b, "", 0), 0);
    assert_int_equal(b.len, 3);
    check_buf(&b);
    base_buf_free(&b);

    /* an empty add to an empty buffer: still terminated if it allocated */
    assert_int_equal(base_buf_add(&b, "", 0), 0);
    assert_int_equal(b.len, 0);
    check_buf(&b);
    base_buf_free(&b);
}

static void test_adds(void **state)
{
    base_buf b = {0};

    assert_int_equal(base_buf_adds(&b, "hello"), 0);
    assert_int_equal(base_buf_adds(&b, ""), 0);
    assert_int_equal(base_buf_adds(&b, ", "), 0);
    assert_int_equal(base_buf_adds(&b, "world"), 0);
    assert_string_equal(b.data, "hello, world");
    assert_int_equal(b.len, 12);
    check_buf(&b);
    base_buf_free(&b);
}

static void test_addf(void **state)
{
    base_buf b = {0};

    assert_int_equal(base_buf_addf(&b, "%d-%s-%c", 42, "x", 'y'), 0);
    assert_string_equal(b.data, "42-x-y");
    assert_int_equal(b.len, 6);
    check_buf(&b);
    assert_int_equal(base_buf_addf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 6);
    check_buf(&b);
    /* one call far beyond the capacity: grows once, all of it there */
    assert_int_equal(base_buf_addf(&b, "[%05000d]", 7), 0);
    assert_int_equal(b.len, 6 + 5002);
    check_buf(&b);
    assert_int_equal(b.data[6], '[');
    for (size_t i = 7; i < 7 + 4999; i++)
        assert_int_equal(b.data[i], '0');
    assert_string_equal(b.data + 7 + 4999, "7]");
    /* many small ones after it */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(base_buf_addf(&b, "%03d", i), 0);
    assert_int_equal(b.len, 6 + 5002 + 3000);
    check_buf(&b);
    assert_memory_equal(b.data + 5008, "000001002", 9);
    assert_string_equal(b.data + b.len - 6, "998999");
    base_buf_free(&b);
}

static void test_reserve(void **state)
{
    base_buf b = {0};

    assert_int_equal(base_buf_reserve(&b, 1000), 0);
    assert_non_null(b.data);
    assert_int_equal(b.len, 0);
    assert_true(b.cap >= 1001);
    char *before = b.data;
    size_t cap = b.cap;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(base_buf_add(&b, "z", 1), 0);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.cap, cap);
    check_buf(&b);
    /* a reserve within the room is a no-op */
    assert_int_equal(base_buf_reserve(&b, 0), 0);
    assert_ptr_equal(b.data, before);
    /* an impossible size is refused and leaves the buffer as it was */
    assert_int_equal(base_buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_int_equal(base_buf_reserve(&b, SIZE_MAX - b.len), -ENOMEM);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.cap, cap);
    base_buf_free(&b);
}

static void test_consume(void **state)
{
    base_buf b = {0};

    /* on a buffer that never allocated */
    base_buf_consume(&b, 0);
    base_buf_consume(&b, 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    assert_int_equal(base_buf_adds(&b, "abcdef"), 0);
    base_buf_consume(&b, 0);
    assert_string_equal(b.data, "abcdef");
    base_buf_consume(&b, 2);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "cdef");
    check_buf(&b);
    base_buf_consume(&b, 4); /* all of it */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    check_buf(&b);
    assert_int_equal(base_buf_adds(&b, "ghij"), 0);
    assert_string_equal(b.data, "ghij");
    base_buf_consume(&b, 100); /* more than len */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    check_buf(&b);
    base_buf_consume(&b, SIZE_MAX);
    assert_int_equal(b.len, 0);
    check_buf(&b);

    /* a long one consumed in pieces, as a reader of a stream does */
    for (int i = 0; i < 500; i++)
        assert_int_equal(base_buf_addf(&b, "%04d", i), 0);
    for (int i = 0; i < 499; i++) {
        char want[8];
        snprintf(want, sizeof(want), "%04d", i);
        assert_memory_equal(b.data, want, 4);
        base_buf_consume(&b, 4);
        assert_int_equal(b.len, (size_t)(499 - i) * 4);
        check_buf(&b);
    }
    assert_string_equal(b.data, "0499");
    base_buf_free(&b);
}

static void test_buf_free(void **state)
{
    base_buf b = {0};

    base_buf_free(NULL);
    base_buf_free(&b); /* empty */
    check_buf(&b);
    assert_int_equal(base_buf_adds(&b, "x"), 0);
    base_buf_free(&b);
    check_buf(&b);
    base_buf_free(&b); /* twice */
    check_buf(&b);
}

/* The buffer's block is charged to the current account, to the byte. */
static void test_accounting(void **state)
{
    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);
    base_buf b = {0};

    for (int i = 0; i < 3000; i++) {
        assert_int_equal(base_buf_addf(&b, "%d,", i), 0);
        assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(b.cap));
    }
    base_buf_free(&b);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    assert_int_equal(base_mem_switch(prev), slot);
    base_mem_slot_release(slot);
}

/* ---- JSON strings ------------------------------------------------------ */

/* The escaping, one byte at a time, to compare against. */
static void ref_json_string(base_buf *out, const char *s, size_t len)
{
    assert_int_equal(base_buf_add(out, "\"", 1), 0);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        switch (c) {
        case '"':
            assert_int_equal(base_buf_adds(out, "\\\""), 0);
            break;
        case '\\':
            assert_int_equal(base_buf_adds(out, "\\\\"), 0);
            break;
        case '\b':
            assert_int_equal(base_buf_adds(out, "\\b"), 0);
            break;
        case '\f':
            assert_int_equal(base_buf_adds(out, "\\f"), 0);
            break;
        case '\n':
            assert_int_equal(base_buf_adds(out, "\\n"), 0);
            break;
        case '\r':
            assert_int_equal(base_buf_adds(out, "\\r"), 0);
            break;
        case '\t':
            assert_int_equal(base_buf_adds(out, "\\t"), 0);
            break;
        default:
            if (c < 0x20) {
                snprintf(e, sizeof(e), "\\u%04x", c);
                assert_int_equal(base_buf_adds(out, e), 0);
            } else {
                assert_int_equal(base_buf_add(out, &s[i], 1), 0);
            }
        }
    }
    assert_int_equal(base_buf_add(out, "\"", 1), 0);
}

/* Escapes s, checks the text against the reference and that jansson reads
 * it back as exactly s. */
static void check_json_string(const char *s, size_t len)
{
    base_buf got = {0}, want = {0};
    json_error_t jerr;

    assert_int_equal(base_buf_json_string(&got, s, len), 0);
    check_buf(&got);
    ref_json_string(&want, s, len);
    if (got.len != want.len || memcmp(got.data, want.data, want.len) != 0)
        fail_msg("escaped %zu bytes as %s, want %s", len, got.data, want.data);
    json_t *v = json_loadb(got.data, got.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v == NULL)
        fail_msg("jansson refused %s: %s", got.data, jerr.text);
    assert_true(json_is_string(v));
    assert_int_equal(json_string_length(v), len);
    assert_memory_equal(json_string_value(v), s, len);
    json_decref(v);
    base_buf_free(&got);
    base_buf_free(&want);
}

static void test_json_control_bytes(void **state)
{
    static const char *const expect[0x20] = {
        "\"\\u0000\"", "\"\\u0001\"", "\"\\u0002\"", "\"\\u0003\"", "\"\\u0004\"", "\"\\u0005\"",
        "\"\\u0006\"", "\"\\u0007\"", "\"\\b\"",     "\"\\t\"",     "\"\\n\"",     "\"\\u000b\"",
        "\"\\f\"",     "\"\\r\"",     "\"\\u000e\"", "\"\\u000f\"", "\"\\u0010\"", "\"\\u0011\"",
        "\"\\u0012\"", "\"\\u0013\"", "\"\\u0014\"", "\"\\u0015\"", "\"\\u0016\"", "\"\\u0017\"",
        "\"\\u0018\"", "\"\\u0019\"", "\"\\u001a\"", "\"\\u001b\"", "\"\\u001c\"", "\"\\u001d\"",
        "\"\\u001e\"", "\"\\u001f\"",
    };
    for (int c = 0; c < 0x20; c++) {
        char s = (char)c;
        base_buf b = {0};
        assert_int_equal(base_buf_json_string(&b, &s, 1), 0);
        if (strcmp(b.data, expect[c]) != 0)
            fail_msg("byte 0x%02x: got %s, want %s", c, b.data, expect[c]);
        base_buf_free(&b);
        check_json_string(&s, 1);
    }
    /* all of them in one string */
    char all[0x20];
    for (int c = 0; c < 0x20; c++)
        all[c] = (char)c;
    check_json_string(all, sizeof(all));
}

static void test_json_quote_backslash(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"\"", "\"\\\"\""},
        {"\\", "\"\\\\\""},
        {"a\"b", "\"a\\\"b\""},
        {"a\\b", "\"a\\\\b\""},
        {"\\\"\\\"", "\"\\\\\\\"\\\\\\\"\""},
        {"", "\"\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        base_buf b = {0};
        assert_int_equal(base_buf_json_string(&b, cases[i].in, strlen(cases[i].in)), 0);
        assert_string_equal(b.data, cases[i].out);
        assert_int_equal(b.len, strlen(cases[i].out));
        base_buf_free(&b);
        check_json_string(cases[i].in, strlen(cases[i].in));
    }
}

static void test_json_plain(void **state)
{
    static const char *const plain[] = {
        "a",
        "hello, world",
        ("every printable ASCII byte but the quote: !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMN"
         "OPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f"),
        "h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xf0\x9f\x98\x80 {not: json}",
        "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
        "slashes / are / not / escaped",
        "     spaces (0x20, the first byte not escaped)     ",
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        const char *s = plain[i];
        size_t n = strlen(s);
        base_buf b = {0};
        assert_int_equal(base_buf_json_string(&b, s, n), 0);
        assert_int_equal(b.len, n + 2);
        assert_int_equal(b.data[0], '"');
        assert_memory_equal(b.data + 1, s, n);
        assert_int_equal(b.data[n + 1], '"');
        check_buf(&b);
        base_buf_free(&b);
        check_json_string(s, n);
    }
}

/* The string is appended: what the buffer held stays before it. */
static void test_json_appends(void **state)
{
    base_buf b = {0};

    assert_int_equal(base_buf_adds(&b, "{\"k\":"), 0);
    assert_int_equal(base_buf_json_string(&b, "v\n", 2), 0);
    assert_int_equal(base_buf_adds(&b, ",\"e\":"), 0);
    assert_int_equal(base_buf_json_string(&b, "", 0), 0);
    assert_int_equal(base_buf_adds(&b, "}"), 0);
    assert_string_equal(b.data, "{\"k\":\"v\\n\",\"e\":\"\"}");
    check_buf(&b);
    base_buf_free(&b);
}

/* n bytes of filler: ASCII bytes next to the thresholds of the word test
 * (0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f), or two-byte UTF-8 sequences (and
 * one ASCII byte when n is odd). */
static void fill(char *dst, size_t n, int kind)
{
    static const char ascii[] = "  !!##[[]]\x7f\x7f  !!##[[]]\x7f\x7f";

    for (size_t i = 0; i < n; i++)
        dst[i] = kind == 0 ? (char)('a' + i % 26) : ascii[i % (sizeof(ascii) - 1)];
    if (kind == 2)
        for (size_t i = 0; i + 1 < n; i += 2)
            memcpy(dst + i, "\xc3\xa9", 2);
}

/* One byte needing an escape at every offset 0..20 of a plain run of
 * 8-40 bytes, alone, with a second one right after it, and with a second
 * one 9 bytes on. */
static void test_json_escape_offsets(void **state)
{
    static const char escapes[] = {'\0', '\x01', '\b', '\n', '\x1f', '"', '\\'};
    char s[64];
    size_t checked = 0;

    for (int kind = 0; kind < 3; kind++) {
        for (size_t len = 8; len <= 40; len++) {
            for (size_t e = 0; e < sizeof(escapes); e++) {
                for (size_t at = 0; at <= 20 && at < len; at++) {
                    for (int second = 0; second < 3; second++) {
                        size_t at2 = second == 1 ? at + 1 : at + 9;
                        if (second != 0 && at2 >= len)
                            continue;
                        fill(s, at, kind);
                        s[at] = escapes[e];
                        fill(s + at + 1, len - at - 1, kind);
                        if (second != 0) {
                            fill(s + at + 1, at2 - at - 1, kind);
                            s[at2] = escapes[(e + 1) % sizeof(escapes)];
                            fill(s + at2 + 1, len - at2 - 1, kind);
                        }
                        assert_true(base_utf8_valid(s, len));
                        check_json_string(s, len);
                        checked++;
                    }
                }
            }
        }
    }
    assert_true(checked > 10000);
}

/* A seeded random mix of tokens, plain and escaped, of random lengths. */
static void test_json_random(void **state)
{
    static const char *const tokens[] = {
        /* plain ASCII, some next to the word test's thresholds */
        "a",
        "Z",
        " ",
        "!",
        "#",
        "[",
        "]",
        "~",
        "\x7f",
        "plain words",
        /* escaped */
        "\"",
        "\\",
        "\n",
        "\t",
        "\r",
        "\b",
        "\f",
        "\x01",
        "\x1f",
        /* multi-byte UTF-8 */
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
    };
    uint64_t x = 0x9e3779b97f4a7c15ull;
    base_buf s = {0};

    for (int round = 0; round < 3000; round++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = (size_t)(x >> 33) % 60;
        s.len = 0;
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            const char *t = tokens[(x >> 33) % (sizeof(tokens) / sizeof(tokens[0]))];
            assert_int_equal(base_buf_adds(&s, t), 0);
        }
        /* a NUL here and there too */
        if (round % 7 == 0)
            assert_int_equal(base_buf_add(&s, "\0tail", 5), 0);
        check_json_string(s.data != NULL ? s.data : "", s.len);
    }
    base_buf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_growth),
        cmocka_unit_test(test_add_bytes),
        cmocka_unit_test(test_adds),
        cmocka_unit_test(test_addf),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_buf_free),
        cmocka_unit_test(test_accounting),
        cmocka_unit_test(test_json_control_bytes),
        cmocka_unit_test(test_json_quote_backslash),
        cmocka_unit_test(test_json_plain),
        cmocka_unit_test(test_json_appends),
        cmocka_unit_test(test_json_escape_offsets),
        cmocka_unit_test(test_json_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
