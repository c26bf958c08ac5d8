/*
 * Accounted allocation for a running jobs instance.
 *
 * Design notes: each block carries a 16-byte header holding its size, so
 * jobs__free can subtract exactly what jobs__malloc added and
 * jobs_heap_bytes is deterministic for a given state (it counts requested
 * bytes, not allocator overhead). The header keeps max_align_t alignment.
 *  - Blocks come from the hooks' realloc/free when set (herdd charges them
 *    to the worker whose callback runs), else from the C library.
 */
#include "jobs/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HDR 16

void *jobs__raw_alloc(const jobs_hooks *h, size_t n)
{
    return h && h->realloc && h->free ? h->realloc(NULL, n) : malloc(n);
}

void jobs__raw_free(const jobs_hooks *h, void *p)
{
    if (h && h->realloc && h->free)
        h->free(p);
    else
        free(p);
}

static void *raw_realloc(const jobs_hooks *h, void *p, size_t n)
{
    return h->realloc && h->free ? h->realloc(p, n) : realloc(p, n);
}

void *jobs__malloc(jobs *j, size_t n)
{
    if (n > SIZE_MAX - HDR)
        return NULL;
    unsigned char *p = jobs__raw_alloc(&j->hooks, n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    j->heap_bytes += n;
    return p + HDR;
}

void *jobs__calloc(jobs *j, size_t n)
{
    void *p = jobs__malloc(j, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *jobs__realloc(jobs *j, void *p, size_t n)
{
    if (!p)
        return jobs__malloc(j, n);
    if (n > SIZE_MAX - HDR)
        return NULL;
    unsigned char *b = (unsigned char *)p - HDR;
    size_t old;
    memcpy(&old, b, sizeof old);
    unsigned char *nb = raw_realloc(&j->hooks, b, n + HDR);
    if (!nb)
        return NULL;
    memcpy(nb, &n, sizeof n);
    j->heap_bytes = j->heap_bytes - old + n;
    return nb + HDR;
}

void jobs__free(jobs *j, void *p)
{
    if (!p)
        return;
    unsigned char *b = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, b, sizeof n);
    j->heap_bytes -= n;
    jobs__raw_free(&j->hooks, b);
}

char *jobs__strdup(jobs *j, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = jobs__malloc(j, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int jobs__buf_append(jobs *j, jobs__buf *b, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        char *d = jobs__realloc(j, b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void jobs__buf_consume(jobs__buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void jobs__buf_free(jobs *j, jobs__buf *b)
{
    jobs__free(j, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
