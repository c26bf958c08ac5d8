/*
 * Bounded FIFO queues of pointers.
 *
 * Design notes: slots are allocated on the first push and double up to
 * max, so the many idle queues of a herd cost only their struct. The queue
 * is a ring: head is the oldest item, count how many follow it.
 */
#include "base/base.h"

#include <errno.h>
#include <string.h>

#define RING_INITIAL 8

void base_ring_init(base_ring *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max > 0 ? max : 1;
}

static int ring_grow(base_ring *r, size_t want)
{
    size_t ncap = r->cap != 0 ? r->cap * 2 : RING_INITIAL;
    void **n;

    while (ncap < want)
        ncap *= 2;
    if (ncap > r->max)
        ncap = r->max;
    n = base_malloc(ncap * sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < r->count; i++)
        n[i] = r->slots[(r->head + i) % r->cap];
    base_free(r->slots);
    r->slots = n;
    r->cap = ncap;
    r->head = 0;
    return 0;
}

int base_ring_reserve(base_ring *r, size_t n)
{
    if (n > r->max)
        n = r->max;
    return n > r->cap ? ring_grow(r, n) : 0;
}

int base_ring_push(base_ring *r, void *item, void **dropped)
{
    HERD_ASSERT(dropped != NULL);
    HERD_ASSERT(r->count <= r->cap && r->cap <= r->max);
    *dropped = NULL;
    if (r->count == r->max) {
        *dropped = r->slots[r->head];
        r->head = (r->head + 1) % r->cap;
        r->count--;
    } else if (r->count == r->cap && ring_grow(r, r->count + 1) < 0) {
        return -ENOMEM;
    }
    r->slots[(r->head + r->count) % r->cap] = item;
    r->count++;
    return 0;
}

void *base_ring_pop(base_ring *r)
{
    void *item;

    if (r->count == 0)
        return NULL;
    item = r->slots[r->head];
    r->head = (r->head + 1) % r->cap;
    r->count--;
    return item;
}

void base_ring_free(base_ring *r)
{
    HERD_ASSERT(r->count == 0);
    base_free(r->slots);
    r->slots = NULL;
    r->cap = r->head = r->count = 0;
}
