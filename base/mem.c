/*
 * Accounted allocation: every block carries a 16-byte header naming the
 * account it is charged to and its size; the account is charged what the
 * block costs (base_mem_charge), not only the bytes asked for.
 *
 * Design notes:
 * - The current account is thread-local: the loop thread switches it
 *   around worker code (base_mem_switch); libuv's pool threads and nng's
 *   threads allocate to the unaccounted slot 0.
 * - Accounts are slots in a fixed table, not pointers, so a block that
 *   outlives its owner never points at freed memory. A slot is reused only
 *   when its owner is gone and its balance is back to zero, so the table is
 *   bounded by the number of live owners plus those with leftovers.
 * - Counters are atomics: frees may happen on any thread.
 * - The header keeps max_align_t alignment for what follows it.
 */
#include "base/base.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define MEM_MAGIC 0x68657264u /* "herd" */

typedef struct mem_header {
    uint64_t size;
    uint32_t slot;
    uint32_t magic;
} mem_header;

typedef struct mem_slot {
    uint64_t bytes; /* atomic */
    bool live;      /* under slots_lock */
} mem_slot;

static mem_slot slots[BASE_MEM_SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
/* Under slots_lock: where the search for a free slot starts, and one past
 * the highest slot ever handed out (the table's pages beyond it are never
 * touched, so its size costs nothing until it is used). */
static uint32_t slots_next = 1, slots_high = 1;
static _Thread_local uint32_t current_slot;

uint32_t base_mem_slot_acquire(void)
{
    pthread_mutex_lock(&slots_lock);
    for (uint32_t n = 1; n < BASE_MEM_SLOTS; n++) {
        uint32_t i = slots_next;
        slots_next = slots_next + 1 < BASE_MEM_SLOTS ? slots_next + 1 : 1;
        if (!slots[i].live && __atomic_load_n(&slots[i].bytes, __ATOMIC_RELAXED) == 0) {
            slots[i].live = true;
            if (i + 1 > slots_high)
                slots_high = i + 1;
            pthread_mutex_unlock(&slots_lock);
            return i;
        }
    }
    pthread_mutex_unlock(&slots_lock);
    return 0; /* table full: charge to the unaccounted slot */
}

void base_mem_slot_release(uint32_t slot)
{
    if (slot == 0 || slot >= BASE_MEM_SLOTS)
        return;
    pthread_mutex_lock(&slots_lock);
    HERD_ASSERT(slots[slot].live);
    slots[slot].live = false;
    pthread_mutex_unlock(&slots_lock);
}

uint64_t base_mem_slot_bytes(uint32_t slot)
{
    return slot < BASE_MEM_SLOTS ? __atomic_load_n(&slots[slot].bytes, __ATOMIC_RELAXED) : 0;
}

uint64_t base_mem_accounts_bytes(void)
{
    uint64_t sum = 0;
    pthread_mutex_lock(&slots_lock);
    uint32_t high = slots_high;
    pthread_mutex_unlock(&slots_lock);
    for (uint32_t i = 1; i < high; i++)
        sum += __atomic_load_n(&slots[i].bytes, __ATOMIC_RELAXED);
    return sum;
}

uint32_t base_mem_switch(uint32_t slot)
{
    uint32_t prev = current_slot;

    HERD_ASSERT(slot < BASE_MEM_SLOTS);
    current_slot = slot;
    return prev;
}

static mem_header *header_of(const void *p)
{
    mem_header *h = (mem_header *)p - 1;

    if (h->magic != MEM_MAGIC)
        abort(); /* not ours: a mixed-up allocator is a bug, never recoverable */
    return h;
}

static void *finish(mem_header *h, size_t size)
{
    if (h == NULL)
        return NULL;
    h->size = size;
    h->slot = current_slot;
    h->magic = MEM_MAGIC;
    __atomic_add_fetch(&slots[h->slot].bytes, base_mem_charge(size), __ATOMIC_RELAXED);
    return h + 1;
}

void *base_malloc(size_t size)
{
    if (size > SIZE_MAX - sizeof(mem_header))
        return NULL;
    return finish(malloc(sizeof(mem_header) + size), size);
}

void *base_calloc(size_t n, size_t size)
{
    if (size != 0 && n > (SIZE_MAX - sizeof(mem_header)) / size)
        return NULL;
    return finish(calloc(1, sizeof(mem_header) + n * size), n * size);
}

void base_free(void *p)
{
    if (p == NULL)
        return;
    mem_header *h = header_of(p);
    __atomic_sub_fetch(&slots[h->slot].bytes, base_mem_charge(h->size), __ATOMIC_RELAXED);
    h->magic = 0;
    free(h);
}

void *base_realloc(void *p, size_t size)
{
    if (p == NULL)
        return base_malloc(size);
    if (size == 0) {
        base_free(p);
        return NULL;
    }
    if (size > SIZE_MAX - sizeof(mem_header))
        return NULL;
    mem_header *h = header_of(p);
    uint64_t old = base_mem_charge(h->size), charge = base_mem_charge(size);
    uint32_t slot = h->slot;
    mem_header *n = realloc(h, sizeof(mem_header) + size);
    if (n == NULL)
        return NULL;
    n->size = size;
    if (charge >= old)
        __atomic_add_fetch(&slots[slot].bytes, charge - old, __ATOMIC_RELAXED);
    else
        __atomic_sub_fetch(&slots[slot].bytes, old - charge, __ATOMIC_RELAXED);
    return n + 1;
}

size_t base_mem_size(const void *p)
{
    return p != NULL ? (size_t)header_of(p)->size : 0;
}

char *base_strndup(const char *s, size_t n)
{
    char *d;

    if (s == NULL)
        return NULL;
    n = strnlen(s, n);
    d = base_malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *base_strdup(const char *s)
{
    return s != NULL ? base_strndup(s, strlen(s)) : NULL;
}

int base_mem_install(void)
{
    int rv = uv_replace_allocator(base_malloc, base_realloc, base_calloc, base_free);

    if (rv < 0)
        return rv;
    json_set_alloc_funcs(base_malloc, base_free);
    return 0;
}
