/*
 * What a running jobs instance holds, counted exactly.
 *
 * Design notes: every block comes from base_malloc, whose header records
 * the size asked for (base_mem_size), so jobs__free subtracts exactly what
 * jobs__malloc added and jobs_heap_bytes is deterministic for a given state
 * (requested bytes, not allocator overhead). The account the blocks are
 * charged to is base's current one: the host's, switched in the enter hook.
 * A buffer counts as its capacity, the size of its block.
 */
#include "jobs/internal.h"

#include <errno.h>
#include <string.h>

void *jobs__malloc(jobs *j, size_t n)
{
    void *p = base_malloc(n);

    if (p != NULL)
        j->heap_bytes += n;
    return p;
}

void *jobs__calloc(jobs *j, size_t n)
{
    void *p = base_calloc(1, n);

    if (p != NULL)
        j->heap_bytes += n;
    return p;
}

void *jobs__realloc(jobs *j, void *p, size_t n)
{
    size_t old = base_mem_size(p);
    void *q = base_realloc(p, n);

    if (q != NULL || n == 0)
        j->heap_bytes = j->heap_bytes - old + (q != NULL ? n : 0);
    return q;
}

void jobs__free(jobs *j, void *p)
{
    j->heap_bytes -= base_mem_size(p);
    base_free(p);
}

char *jobs__strdup(jobs *j, const char *s)
{
    char *d = base_strdup(s);

    if (d != NULL)
        j->heap_bytes += base_mem_size(d);
    return d;
}

int jobs__buf_append(jobs *j, base_buf *b, const char *data, size_t len)
{
    size_t cap = b->cap;
    int rc = len > 0 ? base_buf_add(b, data, len) : 0;

    j->heap_bytes += b->cap - cap;
    return rc;
}

int jobs__buf_shrink(jobs *j, base_buf *b, size_t cap)
{
    if (cap <= b->len + 1 || cap >= b->cap)
        return 0;
    char *d = jobs__realloc(j, b->data, cap);
    if (d == NULL)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

void jobs__buf_free(jobs *j, base_buf *b)
{
    j->heap_bytes -= b->cap;
    base_buf_free(b);
}
