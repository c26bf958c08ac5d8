/*
 * base/ring.c: bounded FIFO queues of pointers. Init (and its max), FIFO
 * order, slots allocated only at the first push and grown up to max,
 * growth while the contents wrap, drop-oldest when full (the dropped item
 * handed back, the count staying at max), reserve, pop from empty,
 * wrap-around over many push/pop cycles, base_ring_count/base_ring_full,
 * and the slots' allocation charged to the current account.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

/* Items are addresses in this array, so each is a distinct pointer. */
static int items[4096];

#define ITEM(i) ((void *)&items[i])

static void check_ring(const base_ring *r)
{
    assert_true(r->count <= r->cap);
    assert_true(r->cap <= r->max);
    assert_true(r->cap == 0 || r->slots != NULL);
    assert_true(r->cap == 0 || r->head < r->cap);
    assert_int_equal(base_ring_count(r), r->count);
    assert_int_equal(base_ring_full(r), r->count == r->max);
}

static void test_init(void **state)
{
    base_ring r;

    memset(&r, 0xa5, sizeof(r));
    base_ring_init(&r, 10);
    assert_null(r.slots);
    assert_int_equal(r.cap, 0);
    assert_int_equal(r.max, 10);
    assert_int_equal(base_ring_count(&r), 0);
    assert_false(base_ring_full(&r));
    base_ring_free(&r);
    assert_null(r.slots);
}

static void test_fifo_order(void **state)
{
    base_ring r;
    void *dropped = ITEM(0);

    base_ring_init(&r, 1000);
    assert_null(base_ring_pop(&r)); /* empty, never allocated */
    assert_null(r.slots);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(base_ring_push(&r, ITEM(i), &dropped), 0);
        assert_null(dropped);
        assert_int_equal(base_ring_count(&r), (size_t)i + 1);
        check_ring(&r);
    }
    assert_true(base_ring_full(&r));
    assert_int_equal(r.cap, 1000);
    for (int i = 0; i < 1000; i++) {
        assert_ptr_equal(base_ring_pop(&r), ITEM(i));
        assert_int_equal(base_ring_count(&r), (size_t)(999 - i));
        check_ring(&r);
    }
    assert_null(base_ring_pop(&r));
    assert_null(base_ring_pop(&r));
    assert_int_equal(base_ring_count(&r), 0);
    base_ring_free(&r);
}

/* Slots appear at the first push, and grow by doubling, only when full,
 * up to max. */
static void test_growth(void **state)
{
    base_ring r;
    void *dropped;

    base_ring_init(&r, 100);
    assert_null(r.slots);
    assert_int_equal(base_ring_push(&r, ITEM(0), &dropped), 0);
    assert_non_null(r.slots);
    assert_true(r.cap >= 1);
    size_t prev_cap = r.cap;
    for (int i = 1; i < 100; i++) {
        size_t before = r.cap;
        assert_int_equal(base_ring_push(&r, ITEM(i), &dropped), 0);
        assert_null(dropped);
        check_ring(&r);
        if (r.cap != before) {
            assert_int_equal((size_t)i, before); /* grew only when it was full */
            assert_true(r.cap == before * 2 || r.cap == r.max);
            prev_cap = r.cap;
        }
    }
    assert_int_equal(prev_cap, 100);
    for (int i = 0; i < 100; i++)
        assert_ptr_equal(base_ring_pop(&r), ITEM(i));
    /* popping does not give the slots back */
    assert_int_equal(r.cap, 100);
    base_ring_free(&r);
    assert_null(r.slots);
    assert_int_equal(r.cap, 0);
}

/* Growing while the contents wrap around the end keeps their order. */
static void test_growth_wrapped(void **state)
{
    base_ring r;
    void *dropped;
    int next_in = 0, next_out = 0;

    base_ring_init(&r, 1024);
    assert_int_equal(base_ring_push(&r, ITEM(next_in++), &dropped), 0);
    size_t cap = r.cap;
    /* fill, take some out, refill to the brim, so head is not 0 */
    while (base_ring_count(&r) < cap)
        assert_int_equal(base_ring_push(&r, ITEM(next_in++), &dropped), 0);
    for (size_t i = 0; i < cap / 2 + 1; i++)
        assert_ptr_equal(base_ring_pop(&r), ITEM(next_out++));
    while (base_ring_count(&r) < cap)
        assert_int_equal(base_ring_push(&r, ITEM(next_in++), &dropped), 0);
    assert_int_equal(r.cap, cap);
    assert_int_not_equal(r.head, 0);
    /* now grow, several times */
    for (int i = 0; i < 300; i++) {
        assert_int_equal(base_ring_push(&r, ITEM(next_in++), &dropped), 0);
        assert_null(dropped);
        check_ring(&r);
    }
    assert_true(r.cap > cap);
    while (base_ring_count(&r) > 0)
        assert_ptr_equal(base_ring_pop(&r), ITEM(next_out++));
    assert_int_equal(next_out, next_in);
    base_ring_free(&r);
}

/* When full, a push hands back the oldest item and the count stays max. */
static void test_drop_oldest(void **state)
{
    base_ring r;
    void *dropped = NULL;

    base_ring_init(&r, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(base_ring_push(&r, ITEM(i), &dropped), 0);
    assert_true(base_ring_full(&r));
    void **slots = r.slots;
    for (int i = 4; i < 100; i++) {
        assert_int_equal(base_ring_push(&r, ITEM(i), &dropped), 0);
        assert_ptr_equal(dropped, ITEM(i - 4));
        assert_int_equal(base_ring_count(&r), 4);
        assert_true(base_ring_full(&r));
        check_ring(&r);
    }
    /* a slow consumer never grows memory */
    assert_ptr_equal(r.slots, slots);
    assert_int_equal(r.cap, 4);
    for (int i = 96; i < 100; i++)
        assert_ptr_equal(base_ring_pop(&r), ITEM(i));
    assert_null(base_ring_pop(&r));
    assert_false(base_ring_full(&r));
    base_ring_free(&r);

    /* a queue of one keeps only the newest */
    base_ring_init(&r, 1);
    assert_int_equal(base_ring_push(&r, ITEM(1), &dropped), 0);
    assert_null(dropped);
    assert_true(base_ring_full(&r));
    assert_int_equal(base_ring_push(&r, ITEM(2), &dropped), 0);
    assert_ptr_equal(dropped, ITEM(1));
    assert_int_equal(base_ring_count(&r), 1);
    assert_ptr_equal(base_ring_pop(&r), ITEM(2));
    assert_null(base_ring_pop(&r));
    base_ring_free(&r);

    /* NULL items are items too: a dropped NULL comes back as NULL */
    base_ring_init(&r, 2);
    assert_int_equal(base_ring_push(&r, NULL, &dropped), 0);
    assert_int_equal(base_ring_push(&r, ITEM(5), &dropped), 0);
    assert_int_equal(base_ring_push(&r, ITEM(6), &dropped), 0);
    assert_null(dropped);
    assert_int_equal(base_ring_count(&r), 2);
    assert_ptr_equal(base_ring_pop(&r), ITEM(5));
    assert_ptr_equal(base_ring_pop(&r), ITEM(6));
    base_ring_free(&r);
}

/* After reserve(n), n pushes allocate nothing. */
static void test_reserve(void **state)
{
    base_ring r;
    void *dropped;

    base_ring_init(&r, 500);
    assert_int_equal(base_ring_reserve(&r, 300), 0);
    assert_non_null(r.slots);
    assert_true(r.cap >= 300);
    assert_true(r.cap <= 500);
    assert_int_equal(base_ring_count(&r), 0);
    void **slots = r.slots;
    size_t cap = r.cap;
    for (int i = 0; i < 300; i++)
        assert_int_equal(base_ring_push(&r, ITEM(i), &dropped), 0);
    assert_ptr_equal(r.slots, slots);
    assert_int_equal(r.cap, cap);
    /* a smaller reserve changes nothing */
    assert_int_equal(base_ring_reserve(&r, 10), 0);
    assert_ptr_equal(r.slots, slots);
    /* a reserve beyond max stops at max, and keeps the items in order */
    assert_int_equal(base_ring_reserve(&r, 100000), 0);
    assert_int_equal(r.cap, 500);
    for (int i = 300; i < 500; i++)
        assert_int_equal(base_ring_push(&r, ITEM(i), &dropped), 0);
    assert_true(base_ring_full(&r));
    assert_int_equal(r.cap, 500);
    for (int i = 0; i < 500; i++)
        assert_ptr_equal(base_ring_pop(&r), ITEM(i));
    base_ring_free(&r);

    /* reserve(0) on a fresh queue allocates nothing */
    base_ring_init(&r, 8);
    assert_int_equal(base_ring_reserve(&r, 0), 0);
    assert_null(r.slots);
    base_ring_free(&r);
}

/* Many push/pop cycles at a few depths: head wraps around again and
 * again, order holds. */
static void test_wrap_around(void **state)
{
    for (size_t max = 1; max <= 17; max += 4) {
        for (size_t depth = 1; depth <= max; depth++) {
            base_ring r;
            void *dropped;
            size_t in = 0, out = 0;
            base_ring_init(&r, max);
            for (size_t i = 0; i < depth; i++)
                assert_int_equal(base_ring_push(&r, ITEM(in++ % 4096), &dropped), 0);
            for (int cycle = 0; cycle < 5000; cycle++) {
                assert_int_equal(base_ring_push(&r, ITEM(in++ % 4096), &dropped), 0);
                if (depth == max) {
                    assert_ptr_equal(dropped, ITEM(out++ % 4096));
                } else {
                    assert_null(dropped);
                    assert_ptr_equal(base_ring_pop(&r), ITEM(out++ % 4096));
                }
                assert_int_equal(base_ring_count(&r), depth);
                check_ring(&r);
            }
            while (base_ring_count(&r) > 0)
                assert_ptr_equal(base_ring_pop(&r), ITEM(out++ % 4096));
            assert_int_equal(in, out);
            assert_null(base_ring_pop(&r));
            base_ring_free(&r);
        }
    }
}

/* The slots are charged to the current account, and given back by free. */
static void test_accounting(void **state)
{
    uint32_t slot = base_mem_slot_acquire();
    assert_int_not_equal(slot, 0);
    uint32_t prev = base_mem_switch(slot);
    base_ring r;
    void *dropped;

    base_ring_init(&r, 64);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(base_ring_push(&r, ITEM(i), &dropped), 0);
        assert_int_equal(base_mem_slot_bytes(slot), base_mem_charge(r.cap * sizeof(void *)));
    }
    while (base_ring_pop(&r) != NULL)
        ;
    base_ring_free(&r);
    assert_int_equal(base_mem_slot_bytes(slot), 0);
    assert_int_equal(base_mem_switch(prev), slot);
    base_mem_slot_release(slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_growth),      cmocka_unit_test(test_growth_wrapped),
        cmocka_unit_test(test_drop_oldest), cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_wrap_around), cmocka_unit_test(test_accounting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
