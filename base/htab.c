/*
 * FNV-1a hashing and an open-addressing table of item numbers.
 *
 * Design notes: the table holds item + 1 per slot (0 is empty) and nothing
 * else: keys stay in the caller's arrays, which the callbacks read. Linear
 * probing over a power-of-two table kept at most half full.
 */
#include "base/base.h"

#include <errno.h>

#define HTAB_MIN 16

uint32_t base_hash(const void *data, size_t len, uint32_t seed)
{
    const unsigned char *p = data;
    uint32_t h = 2166136261u ^ seed;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void place(uint32_t *slots, size_t cap, uint32_t hash, uint32_t item)
{
    size_t j = hash & (cap - 1);

    while (slots[j] != 0)
        j = (j + 1) & (cap - 1);
    slots[j] = item + 1;
}

int base_htab_reserve(base_htab *t, size_t n, base_htab_hash_fn hash, void *ctx)
{
    size_t cap = HTAB_MIN;
    uint32_t *slots;

    if (n > SIZE_MAX / 4)
        return -ENOMEM;
    while (cap < n * 2)
        cap *= 2;
    if (cap <= t->cap)
        return 0;
    slots = base_calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i] != 0)
            place(slots, cap, hash(t->slots[i] - 1, ctx), t->slots[i] - 1);
    base_free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

uint32_t base_htab_find(const base_htab *t, uint32_t hash, base_htab_match_fn match,
                        const void *key, void *ctx)
{
    if (t->cap == 0)
        return BASE_HTAB_NONE;
    for (size_t j = hash & (t->cap - 1); t->slots[j] != 0; j = (j + 1) & (t->cap - 1))
        if (match(t->slots[j] - 1, key, ctx))
            return t->slots[j] - 1;
    return BASE_HTAB_NONE;
}

int base_htab_insert(base_htab *t, uint32_t hash, uint32_t item, base_htab_hash_fn hash_of,
                     void *ctx)
{
    HERD_ASSERT(item != BASE_HTAB_NONE);
    if ((t->count + 1) * 2 > t->cap) {
        int rc = base_htab_reserve(t, t->cap != 0 ? t->cap : HTAB_MIN / 2, hash_of, ctx);
        if (rc < 0)
            return rc;
    }
    place(t->slots, t->cap, hash, item);
    t->count++;
    return 0;
}

void base_htab_free(base_htab *t)
{
    base_free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}
