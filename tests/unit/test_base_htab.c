/*
 * base/htab.c: base_hash (32-bit FNV-1a against its published values, and
 * the seed), and the open-addressing table of item numbers whose keys live
 * with the caller: many inserts then a find of each, absent keys, items
 * that all share one hash (probing wraps around the end), reserve's
 * capacity and no growth while filling what was reserved, growth keeping
 * the load at most one half, base_htab_bytes against the allocation, free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

static void test_hash_values(void **state)
{
    /* One case a line: bytes, seed, FNV-1a 32. */
    static const struct {
        const char *s;
        uint32_t seed, want;
    } cases[] = {
        {"", 0, 0x811c9dc5u},
        {"a", 0, 0xe40c292cu},
        {"b", 0, 0xe70c2de5u},
        {"foobar", 0, 0xbf9cf968u},
        /* the seed is xored into the offset basis */
        {"", 1, 0x811c9dc4u},
        {"", 0xffffffffu, 0x7ee3623au},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t got = base_hash(cases[i].s, strlen(cases[i].s), cases[i].seed);
        if (got != cases[i].want)
            fail_msg("\"%s\" seed %u: got 0x%08x, want 0x%08x", cases[i].s, cases[i].seed, got,
                     cases[i].want);
    }
    /* len is what counts, not a NUL */
    assert_int_equal(base_hash("a\0b", 3, 0), base_hash("a\0b", 3, 0));
    assert_int_not_equal(base_hash("a\0b", 3, 0), base_hash("a", 1, 0));
    assert_int_equal(base_hash("abc", 1, 0), 0xe40c292cu);
    /* seeds tell the same key apart */
    assert_int_not_equal(base_hash("key", 3, 0), base_hash("key", 3, 1));
    assert_int_not_equal(base_hash("key", 3, 1), base_hash("key", 3, 2));
}

/* Keys are strings in a caller's array, as the callbacks expect. */
typedef struct keys {
    char **s;
    size_t n;
    uint32_t seed;
    size_t hash_calls;
} keys;

static uint32_t key_hash(uint32_t item, void *ctx)
{
    keys *k = ctx;

    assert_true(item < k->n);
    k->hash_calls++;
    return base_hash(k->s[item], strlen(k->s[item]), k->seed);
}

static bool key_match(uint32_t item, const void *key, void *ctx)
{
    keys *k = ctx;

    assert_true(item < k->n);
    return strcmp(k->s[item], key) == 0;
}

static void keys_make(keys *k, size_t n, const char *prefix)
{
    k->s = calloc(n != 0 ? n : 1, sizeof(*k->s));
    assert_non_null(k->s);
    k->n = n;
    k->seed = 0;
    k->hash_calls = 0;
    for (size_t i = 0; i < n; i++) {
        char tmp[64];
        snprintf(tmp, sizeof(tmp), "%s%zu", prefix, i);
        k->s[i] = strdup(tmp);
        assert_non_null(k->s[i]);
    }
}

static void keys_free(keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->s[i]);
    free(k->s);
}

static uint32_t find(const base_htab *t, keys *k, const char *key)
{
    return base_htab_find(t, base_hash(key, strlen(key), k->seed), key_match, key, k);
}

static bool is_pow2(size_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static void test_insert_find_many(void **state)
{
    keys k;
    base_htab t = {0};

    keys_make(&k, 10000, "item-");
    assert_int_equal(find(&t, &k, "item-0"), BASE_HTAB_NONE); /* empty table */
    for (uint32_t i = 0; i < 10000; i++) {
        uint32_t h = base_hash(k.s[i], strlen(k.s[i]), 0);
        assert_int_equal(base_htab_insert(&t, h, i, key_hash, &k), 0);
        assert_int_equal(t.count, (size_t)i + 1);
        assert_true(is_pow2(t.cap));
        assert_true(t.count * 2 <= t.cap); /* load at most one half */
        assert_int_equal(base_htab_bytes(&t), t.cap * sizeof(uint32_t));
    }
    assert_int_equal(t.cap, 32768);
    for (uint32_t i = 0; i < 10000; i++)
        if (find(&t, &k, k.s[i]) != i)
            fail_msg("%s: got %u, want %u", k.s[i], find(&t, &k, k.s[i]), i);
    /* absent keys, some of them prefixes or extensions of present ones */
    static const char *const absent[] = {"",        "item-",      "item-10000", "item-00",
                                         "item-1x", "item-99999", "Item-1",     "item-1 "};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        assert_int_equal(find(&t, &k, absent[i]), BASE_HTAB_NONE);
    base_htab_free(&t);
    assert_null(t.slots);
    assert_int_equal(t.cap, 0);
    assert_int_equal(t.count, 0);
    assert_int_equal(base_htab_bytes(&t), 0);
    assert_int_equal(find(&t, &k, "item-0"), BASE_HTAB_NONE); /* freed is empty again */
    keys_free(&k);
}

/* reserve(n): cap is the smallest power of two >= max(16, 2n), and
 * inserting n items then does not grow. */
static void test_reserve(void **state)
{
    static const struct {
        size_t n, cap;
    } cases[] = {
        {0, 16},  {1, 16},    {7, 16},     {8, 16},     {9, 32},       {16, 32},
        {17, 64}, {100, 256}, {512, 1024}, {513, 2048}, {5000, 16384},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = cases[c].n;
        keys k;
        base_htab t = {0};
        keys_make(&k, n, "k");
        assert_int_equal(base_htab_reserve(&t, n, key_hash, &k), 0);
        if (t.cap != cases[c].cap)
            fail_msg("reserve(%zu): cap %zu, want %zu", n, t.cap, cases[c].cap);
        uint32_t *slots = t.slots;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t h = base_hash(k.s[i], strlen(k.s[i]), 0);
            assert_int_equal(base_htab_insert(&t, h, i, key_hash, &k), 0);
        }
        assert_ptr_equal(t.slots, slots);
        assert_int_equal(t.cap, cases[c].cap);
        assert_int_equal(k.hash_calls, 0); /* nothing was rehashed */
        for (uint32_t i = 0; i < n; i++)
            assert_int_equal(find(&t, &k, k.s[i]), i);
        /* a smaller reserve is a no-op */
        assert_int_equal(base_htab_reserve(&t, n / 2, key_hash, &k), 0);
        assert_ptr_equal(t.slots, slots);
        base_htab_free(&t);
        keys_free(&k);
    }
}

/* A reserve on a filled table rehashes what it holds. */
static void test_reserve_rehash(void **state)
{
    keys k;
    base_htab t = {0};

    keys_make(&k, 300, "r");
    for (uint32_t i = 0; i < 300; i++)
        assert_int_equal(
            base_htab_insert(&t, base_hash(k.s[i], strlen(k.s[i]), 0), i, key_hash, &k), 0);
    assert_int_equal(t.cap, 1024);
    k.hash_calls = 0;
    assert_int_equal(base_htab_reserve(&t, 3000, key_hash, &k), 0);
    assert_int_equal(t.cap, 8192);
    assert_int_equal(t.count, 300);
    assert_int_equal(k.hash_calls, 300);
    for (uint32_t i = 0; i < 300; i++)
        assert_int_equal(find(&t, &k, k.s[i]), i);
    assert_int_equal(find(&t, &k, "r300"), BASE_HTAB_NONE);
    base_htab_free(&t);
    keys_free(&k);
}

/* Every item under one hash, the last slot's: each probe wraps around the
 * end of the table, and all are still found. */
static uint32_t same_hash(uint32_t item, void *ctx)
{
    return 0xffffffffu;
}

static void test_collisions(void **state)
{
    keys k;
    base_htab t = {0};

    keys_make(&k, 200, "c");
    for (uint32_t i = 0; i < 200; i++)
        assert_int_equal(base_htab_insert(&t, 0xffffffffu, i, same_hash, &k), 0);
    for (uint32_t i = 0; i < 200; i++)
        assert_int_equal(base_htab_find(&t, 0xffffffffu, key_match, k.s[i], &k), i);
    assert_int_equal(base_htab_find(&t, 0xffffffffu, key_match, "c200", &k), BASE_HTAB_NONE);
    base_htab_free(&t);
    keys_free(&k);
}

/* Item numbers need not be dense: the largest one allowed works. */
static bool num_match(uint32_t item, const void *key, void *ctx)
{
    return item == *(const uint32_t *)key;
}

static uint32_t num_hash(uint32_t item, void *ctx)
{
    return base_hash(&item, sizeof(item), 7);
}

static void test_item_numbers(void **state)
{
    static const uint32_t nums[] = {0,     1,           2,           1000,       65535,
                                    65536, 0x7fffffffu, 0xfffffffdu, 0xfffffffeu};
    base_htab t = {0};

    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        assert_int_equal(base_htab_insert(&t, num_hash(nums[i], NULL), nums[i], num_hash, NULL), 0);
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        assert_int_equal(base_htab_find(&t, num_hash(nums[i], NULL), num_match, &nums[i], NULL),
                         nums[i]);
    uint32_t absent = 3;
    assert_int_equal(base_htab_find(&t, num_hash(absent, NULL), num_match, &absent, NULL),
                     BASE_HTAB_NONE);
    base_htab_free(&t);
}

/* base_htab_bytes is the table's allocation, as the accounting sees it. */
static void test_bytes(void **state)
{
    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);
    keys k;
    base_htab t = {0};

    keys_make(&k, 1000, "b");
    assert_int_equal(base_htab_bytes(&t), 0);
    for (uint32_t i = 0; i < 1000; i++) {
        assert_int_equal(
            base_htab_insert(&t, base_hash(k.s[i], strlen(k.s[i]), 0), i, key_hash, &k), 0);
        assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(base_htab_bytes(&t)));
    }
    assert_int_equal(base_htab_bytes(&t), 2048 * sizeof(uint32_t));
    base_htab_free(&t);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    base_htab_free(&t); /* twice is fine */
    keys_free(&k);
    assert_int_equal(base_mem_switch(prev), slot);
    base_mem_slot_release(slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_values), cmocka_unit_test(test_insert_find_many),
        cmocka_unit_test(test_reserve),     cmocka_unit_test(test_reserve_rehash),
        cmocka_unit_test(test_collisions),  cmocka_unit_test(test_item_numbers),
        cmocka_unit_test(test_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
