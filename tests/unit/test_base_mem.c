/*
 * base/mem.c: accounted allocation. base_malloc, base_calloc, base_realloc
 * and base_free charge and credit the current slot to the byte;
 * base_mem_size reads a block's size back; base_mem_switch returns the
 * previous slot; a block freed or grown while another slot is current (or
 * on another thread) still counts against its own slot; other threads
 * charge slot 0; base_strdup/base_strndup; overflowing sizes give NULL and
 * charge nothing; a released slot with blocks outstanding is not handed
 * out again until its balance is back to zero, and a full table hands out
 * slot 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

static void test_switch(void **state)
{
    uint32_t a = base_mem_slot_acquire(), b = base_mem_slot_acquire();

    assert_int_not_equal(a, 0);
    assert_int_not_equal(b, 0);
    assert_int_not_equal(a, b);
    assert_true(a < BASE_MEM_SLOTS);
    assert_true(b < BASE_MEM_SLOTS);
    assert_int_equal(base_mem_slot_bytes(a), 0);
    assert_int_equal(base_mem_slot_bytes(b), 0);
    /* a fresh thread (this one) starts on slot 0 */
    assert_int_equal(base_mem_switch(a), 0);
    assert_int_equal(base_mem_switch(b), a);
    assert_int_equal(base_mem_switch(b), b);
    assert_int_equal(base_mem_switch(0), b);
    assert_int_equal(base_mem_switch(0), 0);
    base_mem_slot_release(a);
    base_mem_slot_release(b);
    /* out of range reads as empty */
    assert_int_equal(base_mem_slot_bytes(BASE_MEM_SLOTS), 0);
    assert_int_equal(base_mem_slot_bytes(UINT32_MAX), 0);
    /* releasing slot 0, or beyond the table, does nothing */
    base_mem_slot_release(0);
    base_mem_slot_release(BASE_MEM_SLOTS);
}

static void test_charge(void **state)
{
    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);

    uint64_t accounts = base_mem_accounts_bytes();
    char *a = base_malloc(100);
    assert_non_null(a);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(100));
    assert_int_equal(base_mem_accounts_bytes(), accounts + base_mem_charge(100));
    assert_int_equal(base_mem_charge(100), 128); /* 100 + 16 + 8, rounded to 16 */
    assert_int_equal(base_mem_charge(0), 32);
    assert_int_equal(base_mem_charge(8), 32);
    assert_int_equal(base_mem_charge(9), 48);
    assert_int_equal(base_mem_size(a), 100);
    memset(a, 'a', 100); /* all of it is usable */

    char *b = base_calloc(10, 24);
    assert_non_null(b);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(100) + base_mem_charge(240));
    assert_int_equal(base_mem_size(b), 240);
    for (size_t i = 0; i < 240; i++)
        assert_int_equal(b[i], 0);

    void *z = base_malloc(0);
    assert_non_null(z);
    assert_int_equal(base_mem_size(z), 0);
    uint64_t bz = base_mem_charge(240) + base_mem_charge(0);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(100) + bz);

    /* realloc up, keeping the bytes */
    a = base_realloc(a, 5000);
    assert_non_null(a);
    assert_int_equal(base_mem_size(a), 5000);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(5000) + bz);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(a[i], 'a');
    memset(a, 'b', 5000);
    /* and down */
    a = base_realloc(a, 10);
    assert_non_null(a);
    assert_int_equal(base_mem_size(a), 10);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(10) + bz);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(a[i], 'b');
    /* to the same size */
    a = base_realloc(a, 10);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(10) + bz);
    /* realloc of NULL is malloc */
    char *c = base_realloc(NULL, 77);
    assert_non_null(c);
    assert_int_equal(base_mem_size(c), 77);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(10) + bz + base_mem_charge(77));
    /* realloc to 0 frees */
    assert_null(base_realloc(c, 0));
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(10) + bz);

    /* a block's alignment is max_align_t's */
    assert_int_equal((uintptr_t)a % _Alignof(max_align_t), 0);
    assert_int_equal((uintptr_t)b % _Alignof(max_align_t), 0);

    base_free(a);
    assert_int_equal(base_mem_slot_bytes(slot), bz);
    base_free(b);
    base_free(z);
    base_free(NULL);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    assert_int_equal(base_mem_size(NULL), 0);

    assert_int_equal(base_mem_switch(prev), slot);
    base_mem_slot_release(slot);
}

/* A block belongs to the slot current when it was allocated, whatever
 * slot is current when it is grown, shrunk or freed. */
static void test_owner(void **state)
{
    uint32_t a = base_mem_slot_acquire(), b = base_mem_slot_acquire();
    assert_int_not_equal(a, 0);
    assert_int_not_equal(b, 0);
    uint32_t prev = base_mem_switch(a);
    uint64_t zero_before = base_mem_slot_bytes(0);

    void *pa = base_malloc(1000);
    void *pa2 = base_malloc(30);
    assert_non_null(pa);
    assert_non_null(pa2);
    assert_int_equal(base_mem_switch(b), a);
    void *pb = base_malloc(50);
    assert_non_null(pb);
    assert_int_equal(base_mem_slot_bytes(a), base_mem_charge(1000) + base_mem_charge(30));
    assert_int_equal(base_mem_slot_bytes(b), base_mem_charge(50));
    /* grown by b's code: still a's */
    pa = base_realloc(pa, 4000);
    assert_non_null(pa);
    assert_int_equal(base_mem_slot_bytes(a), base_mem_charge(4000) + base_mem_charge(30));
    assert_int_equal(base_mem_slot_bytes(b), base_mem_charge(50));
    pa = base_realloc(pa, 100);
    assert_int_equal(base_mem_slot_bytes(a), base_mem_charge(100) + base_mem_charge(30));
    /* freed by b's code: credits a */
    base_free(pa);
    assert_int_equal(base_mem_slot_bytes(a), base_mem_charge(30));
    assert_int_equal(base_mem_slot_bytes(b), base_mem_charge(50));
    /* freed on slot 0: credits b */
    assert_int_equal(base_mem_switch(0), b);
    base_free(pb);
    assert_int_equal(base_mem_slot_bytes(b), 0);
    base_free(pa2);
    assert_int_equal(base_mem_slot_bytes(a), 0);
    assert_int_equal(base_mem_slot_bytes(0), zero_before);

    base_mem_switch(prev);
    base_mem_slot_release(a);
    base_mem_slot_release(b);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct thread_job {
    void *free_this; /* freed on the thread */
    size_t alloc;    /* allocated on the thread, handed back */
    void *allocated;
    uint32_t slot_seen; /* the thread's current slot */
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *j = arg;

    base_free(j->free_this);
    j->allocated = base_malloc(j->alloc);
    j->slot_seen = base_mem_switch(0);
    return NULL;
}

/* A free on another thread credits the block's slot; another thread's
 * blocks go to slot 0, whatever this thread's slot is. */
static void test_threads(void **state)
{
    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);
    thread_job j = {.alloc = 333};
    pthread_t t;

    j.free_this = base_malloc(4096);
    assert_non_null(j.free_this);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(4096));
    uint64_t zero_before = base_mem_slot_bytes(0);
    assert_int_equal(pthread_create(&t, NULL, thread_main, &j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(j.slot_seen, 0);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    assert_non_null(j.allocated);
    assert_int_equal(base_mem_slot_bytes(0), zero_before + base_mem_charge(333));
    base_free(j.allocated); /* credited to 0, though slot is current here */
    assert_int_equal(base_mem_slot_bytes(0), zero_before);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    assert_int_equal(base_mem_switch(prev), slot);
    base_mem_slot_release(slot);
}

/* ---- strings ------------------------------------------------------------ */

static void test_strdup(void **state)
{
    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);

    char *s = base_strdup("hello");
    assert_non_null(s);
    assert_string_equal(s, "hello");
    assert_int_equal(base_mem_size(s), 6);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(6));
    char *e = base_strdup("");
    assert_string_equal(e, "");
    assert_int_equal(base_mem_size(e), 1);

    /* One case a line: n, the copy. */
    static const struct {
        size_t n;
        const char *want;
    } cases[] = {
        {0, ""},      {1, "h"},       {3, "hel"},          {5, "hello"},
        {6, "hello"}, {100, "hello"}, {SIZE_MAX, "hello"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *d = base_strndup("hello", cases[i].n);
        assert_non_null(d);
        assert_string_equal(d, cases[i].want);
        assert_int_equal(base_mem_size(d), strlen(cases[i].want) + 1);
        base_free(d);
    }
    /* strndup reads no further than n: a buffer with no NUL in it */
    char raw[4] = {'a', 'b', 'c', 'd'};
    char *d = base_strndup(raw, sizeof(raw));
    assert_string_equal(d, "abcd");
    base_free(d);
    assert_null(base_strdup(NULL));
    assert_null(base_strndup(NULL, 3));

    base_free(s);
    base_free(e);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    assert_int_equal(base_mem_switch(prev), slot);
    base_mem_slot_release(slot);
}

/* ---- sizes that cannot be ---------------------------------------------- */

static void test_overflow(void **state)
{
    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);

    /* n * size overflows */
    assert_null(base_calloc(SIZE_MAX, 2));
    assert_null(base_calloc(2, SIZE_MAX));
    assert_null(base_calloc(SIZE_MAX / 2 + 1, 2));
    assert_null(base_calloc((SIZE_MAX >> 4) + 1, 16));
    assert_null(base_calloc(SIZE_MAX, SIZE_MAX));
    assert_null(base_calloc((size_t)1 << (sizeof(size_t) * 4), (size_t)1 << (sizeof(size_t) * 4)));
    /* the header would not fit */
    assert_null(base_malloc(SIZE_MAX));
    assert_null(base_malloc(SIZE_MAX - 8));
    assert_null(base_calloc(1, SIZE_MAX));
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    /* zero of something is fine */
    void *p = base_calloc(0, SIZE_MAX);
    assert_non_null(p);
    assert_int_equal(base_mem_size(p), 0);
    base_free(p);
    p = base_calloc(SIZE_MAX, 0);
    assert_non_null(p);
    base_free(p);
    /* a realloc that cannot be leaves the block and its charge alone */
    char *q = base_malloc(64);
    assert_non_null(q);
    memcpy(q, "still here", 11);
    assert_null(base_realloc(q, SIZE_MAX));
    assert_int_equal(base_mem_size(q), 64);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(64));
    assert_string_equal(q, "still here");
    base_free(q);
    assert_int_equal(base_mem_slot_bytes(slot), 0);

    assert_int_equal(base_mem_switch(prev), slot);
    base_mem_slot_release(slot);
}

/* ---- slot reuse --------------------------------------------------------- */

/* Takes every free slot; returns how many, and whether `which` was one. */
static size_t acquire_all(uint32_t *got, bool *saw, uint32_t which)
{
    size_t n = 0;
    uint32_t s;

    *saw = false;
    while ((s = base_mem_slot_acquire()) != 0) {
        assert_true(n < BASE_MEM_SLOTS - 1);
        got[n++] = s;
        if (s == which)
            *saw = true;
    }
    return n;
}

static void test_slot_reuse(void **state)
{
    static uint32_t got[BASE_MEM_SLOTS];
    bool saw;

    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);
    void *left = base_malloc(123);
    assert_non_null(left);
    base_mem_switch(prev);
    base_mem_slot_release(slot);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(123));

    /* its owner is gone but a block is out: never handed out, even when
     * every other slot is taken (then slot 0 comes back) */
    size_t n = acquire_all(got, &saw, slot);
    assert_false(saw);
    assert_true(n >= 1);
    assert_int_equal(base_mem_slot_acquire(), 0);
    /* a full table charges slot 0 */
    uint32_t none = base_mem_slot_acquire();
    assert_int_equal(none, 0);
    for (size_t i = 0; i < n; i++)
        base_mem_slot_release(got[i]);
    size_t again = acquire_all(got, &saw, slot);
    assert_int_equal(again, n);
    assert_false(saw);
    for (size_t i = 0; i < again; i++)
        base_mem_slot_release(got[i]);

    /* a realloc of the leftover block still counts against it */
    left = base_realloc(left, 23);
    assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(23));
    n = acquire_all(got, &saw, slot);
    assert_false(saw);
    for (size_t i = 0; i < n; i++)
        base_mem_slot_release(got[i]);

    /* back to zero: the slot is free again */
    base_free(left);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    size_t after = acquire_all(got, &saw, slot);
    assert_true(saw);
    assert_int_equal(after, n + 1);
    for (size_t i = 0; i < after; i++)
        base_mem_slot_release(got[i]);

    /* a slot released with a zero balance is reusable at once */
    uint32_t s1 = base_mem_slot_acquire();
    assert_int_not_equal(s1, 0);
    base_mem_slot_release(s1);
    n = acquire_all(got, &saw, s1);
    assert_true(saw);
    for (size_t i = 0; i < n; i++)
        base_mem_slot_release(got[i]);
}

/* base_mem_install routes jansson through base_malloc: its values are
 * charged to the current slot, and given back. Last, as it stays on. */
static void test_install(void **state)
{
    assert_int_equal(base_mem_install(), 0);
    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);

    json_t *v = json_pack("{s:s, s:[i,i,i]}", "name", "a string of some length", "n", 1, 2, 3);
    assert_non_null(v);
    assert_true(base_mem_slot_bytes(slot) > 0);
    json_decref(v);
    assert_int_equal(base_mem_slot_bytes(slot), 0);

    assert_int_equal(base_mem_switch(prev), slot);
    base_mem_slot_release(slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch),     cmocka_unit_test(test_charge),
        cmocka_unit_test(test_owner),      cmocka_unit_test(test_threads),
        cmocka_unit_test(test_strdup),     cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_slot_reuse), cmocka_unit_test(test_install),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
