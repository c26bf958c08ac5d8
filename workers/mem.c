/*
 * Accounted allocation: every block carries a 16-byte header naming the
 * account it is charged to, so a free on any thread credits the right one.
 *
 * Design notes:
 * - The current account is thread-local: the loop thread switches it around
 *   worker code (worker_enter/worker_leave); libuv's pool threads allocate
 *   to the unaccounted slot 0.
 * - Accounts are slots in a fixed table, not pointers, so a block that
 *   outlives its worker never points at freed memory. A slot is reused only
 *   when its worker is gone and its balance is back to zero, so the table is
 *   bounded by the number of live workers plus those with leftovers.
 * - Counters are atomics: frees may happen on pool threads.
 */
#include "workers/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MEM_MAGIC 0x68657264u /* "herd" */

typedef struct mem_header {
    uint64_t size;
    uint32_t slot;
    uint32_t magic;
} mem_header;

typedef struct mem_slot {
    uint64_t bytes; /* atomic */
    int live;       /* under slots_lock */
} mem_slot;

static mem_slot slots[WORKER_MEM_SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local uint32_t current_slot;

uint32_t worker__mem_slot_acquire(void)
{
    pthread_mutex_lock(&slots_lock);
    for (uint32_t i = 1; i < WORKER_MEM_SLOTS; i++) {
        if (!slots[i].live && __atomic_load_n(&slots[i].bytes, __ATOMIC_RELAXED) == 0) {
            slots[i].live = 1;
            pthread_mutex_unlock(&slots_lock);
            return i;
        }
    }
    pthread_mutex_unlock(&slots_lock);
    return 0; /* table full: charge to the unaccounted slot */
}

void worker__mem_slot_release(uint32_t slot)
{
    if (slot == 0)
        return;
    pthread_mutex_lock(&slots_lock);
    slots[slot].live = 0;
    pthread_mutex_unlock(&slots_lock);
}

uint64_t worker__mem_slot_bytes(uint32_t slot)
{
    return __atomic_load_n(&slots[slot].bytes, __ATOMIC_RELAXED);
}

uint32_t worker__mem_switch(uint32_t slot)
{
    uint32_t prev = current_slot;
    current_slot = slot;
    return prev;
}

uint64_t worker_mem_unaccounted_bytes(void)
{
    return worker__mem_slot_bytes(0);
}

static void *finish(mem_header *h, size_t size)
{
    if (h == NULL)
        return NULL;
    h->size = size;
    h->slot = current_slot;
    h->magic = MEM_MAGIC;
    __atomic_add_fetch(&slots[h->slot].bytes, size, __ATOMIC_RELAXED);
    return h + 1;
}

void *worker_mem_malloc(size_t size)
{
    if (size > SIZE_MAX - sizeof(mem_header))
        return NULL;
    return finish(malloc(sizeof(mem_header) + size), size);
}

void *worker_mem_calloc(size_t n, size_t size)
{
    if (size != 0 && n > (SIZE_MAX - sizeof(mem_header)) / size)
        return NULL;
    return finish(calloc(1, sizeof(mem_header) + n * size), n * size);
}

void worker_mem_free(void *p)
{
    if (p == NULL)
        return;
    mem_header *h = (mem_header *)p - 1;
    if (h->magic != MEM_MAGIC)
        abort(); /* not ours: a mixed-up allocator is a bug, never recoverable */
    __atomic_sub_fetch(&slots[h->slot].bytes, h->size, __ATOMIC_RELAXED);
    h->magic = 0;
    free(h);
}

void *worker_mem_realloc(void *p, size_t size)
{
    if (p == NULL)
        return worker_mem_malloc(size);
    if (size == 0) {
        worker_mem_free(p);
        return NULL;
    }
    if (size > SIZE_MAX - sizeof(mem_header))
        return NULL;
    mem_header *h = (mem_header *)p - 1;
    if (h->magic != MEM_MAGIC)
        abort();
    uint64_t old = h->size;
    uint32_t slot = h->slot;
    mem_header *n = realloc(h, sizeof(mem_header) + size);
    if (n == NULL)
        return NULL;
    /* The block stays charged to its owner, whoever grows it. */
    n->size = size;
    if (size >= old)
        __atomic_add_fetch(&slots[slot].bytes, size - old, __ATOMIC_RELAXED);
    else
        __atomic_sub_fetch(&slots[slot].bytes, old - size, __ATOMIC_RELAXED);
    return n + 1;
}

int worker_mem_install(void)
{
    int rv = uv_replace_allocator(worker_mem_malloc, worker_mem_realloc, worker_mem_calloc,
                                  worker_mem_free);
    if (rv < 0)
        return rv;
    json_set_alloc_funcs(worker_mem_malloc, worker_mem_free);
    return 0;
}
