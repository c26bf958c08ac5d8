/*
 * Body reader: full entry bodies from disk through libuv's thread pool, kept
 * in a bounded LRU of raw bytes.
 *
 * Design notes
 * - A cache node is keyed by (version directory, section, id): versions are
 *   content-addressed, so a node never goes stale; after a swap the old
 *   version's nodes just age out (or catalog_reader_clear drops them).
 * - A node may be in use by a callback while it is evicted: `refs` counts
 *   those uses, eviction only unlinks it, and the last user frees it.
 * - Hits are delivered from a uv_idle handle, never from inside
 *   catalog_get, so callers see one callback discipline for hits and misses.
 * - Each request holds a reference on its catalog_index until its callback
 *   has returned.
 * - Closing: gets are refused, queued work is cancelled (its callback gets
 *   -ECANCELED), work already running completes normally, pending hits are
 *   delivered; when nothing is left the idle handle is closed and the reader
 *   freed in its close callback.
 */
#include "catalog/internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct node {
    struct node *prev, *next; /* LRU, most recent first */
    struct node *hnext;
    uint32_t hash;
    int refs;
    int linked;
    char *key;
    size_t key_len;
    char *data;
    size_t len;
};

struct req {
    struct req *prev, *next; /* in-flight list, or pending-hit list (next only) */
    catalog_reader *r;
    catalog_index *idx;
    catalog_get_cb cb;
    void *data;
    struct node *hit;
    uv_work_t work;
    char *key;
    size_t key_len;
    char path[PATH_MAX];
    char *buf;
    size_t len;
    size_t max_body_bytes; /* copied: the work thread reads no reader field */
    int status;
};

struct catalog_reader {
    uv_loop_t *loop;
    uv_idle_t idle;
    size_t max_entries, max_bytes;
    size_t max_body_bytes; /* 0: no limit */
    struct node **buckets;
    size_t n_buckets;
    struct node lru; /* sentinel */
    size_t entries, bytes;
    uint64_t hits, misses;
    struct req *hits_head, *hits_tail;
    struct req *in_flight;
    size_t n_in_flight;
    int closing, idle_closing;
    void (*on_closed)(void *data);
    void *closed_data;
};

int catalog_reader_new(uv_loop_t *loop, size_t lru_entries, size_t lru_bytes, catalog_reader **out)
{
    *out = NULL;
    catalog_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->loop = loop;
    r->max_entries = lru_entries;
    r->max_bytes = lru_bytes;
    /* The table is allocated by the first body cached: an idle worker holds none. */
    r->n_buckets = 16;
    while (r->n_buckets < lru_entries * 2 && r->n_buckets < 4096)
        r->n_buckets *= 2;
    r->lru.prev = r->lru.next = &r->lru;
    int rc = uv_idle_init(loop, &r->idle);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->idle.data = r;
    *out = r;
    return 0;
}

uint64_t catalog_reader_heap_bytes(const catalog_reader *r)
{
    uint64_t n = base_mem_charge(sizeof(*r));
    if (r->buckets != NULL)
        n += base_mem_charge(r->n_buckets * sizeof(*r->buckets));
    for (const struct node *e = r->lru.next; e != &r->lru; e = e->next)
        n +=
            base_mem_charge(sizeof(*e)) + base_mem_charge(e->key_len + 1) + base_mem_charge(e->len);
    return n;
}

static void node_free(struct node *n)
{
    free(n->key);
    free(n->data);
    free(n);
}

static void node_release(struct node *n)
{
    if (--n->refs == 0 && !n->linked)
        node_free(n);
}

static void lru_unlink(catalog_reader *r, struct node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    struct node **p = &r->buckets[n->hash & (r->n_buckets - 1)];
    while (*p != n)
        p = &(*p)->hnext;
    *p = n->hnext;
    n->linked = 0;
    r->entries--;
    r->bytes -= n->len;
    if (n->refs == 0)
        node_free(n);
}

static void lru_front(catalog_reader *r, struct node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = r->lru.next;
    n->prev = &r->lru;
    r->lru.next->prev = n;
    r->lru.next = n;
}

static struct node *lru_find(catalog_reader *r, const char *key, size_t len, uint32_t h)
{
    if (r->buckets == NULL)
        return NULL;
    for (struct node *n = r->buckets[h & (r->n_buckets - 1)]; n != NULL; n = n->hnext)
        if (n->hash == h && n->key_len == len && memcmp(n->key, key, len) == 0)
            return n;
    return NULL;
}

static void lru_trim(catalog_reader *r)
{
    while (r->entries > 0 && (r->entries > r->max_entries || r->bytes > r->max_bytes))
        lru_unlink(r, r->lru.prev);
}

void catalog_reader_clear(catalog_reader *r)
{
    while (r->entries > 0)
        lru_unlink(r, r->lru.prev);
}

void catalog_reader_set_max_body(catalog_reader *r, size_t max_bytes)
{
    r->max_body_bytes = max_bytes;
}

void catalog_reader_stats(const catalog_reader *r, catalog_lru_stats *st)
{
    st->entries = r->entries;
    st->bytes = r->bytes;
    st->hits = r->hits;
    st->misses = r->misses;
}

static void req_free(struct req *q)
{
    catalog_index_free(q->idx);
    free(q->key);
    free(q->buf);
    free(q);
}

static void maybe_finish_close(catalog_reader *r);

static void on_idle(uv_idle_t *h)
{
    catalog_reader *r = h->data;
    struct req *q = r->hits_head;
    r->hits_head = r->hits_tail = NULL;
    uv_idle_stop(&r->idle);
    /* hits queued by these callbacks go to the fresh list, for the next turn */
    while (q != NULL) {
        struct req *next = q->next;
        q->cb(0, q->hit->data, q->hit->len, q->data);
        node_release(q->hit);
        req_free(q);
        q = next;
    }
    maybe_finish_close(r);
}

static void work_read(uv_work_t *w)
{
    struct req *q = w->data;
    int fd = open(q->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        q->status = -errno;
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        q->status = -errno;
        close(fd);
        return;
    }
    size_t size = (size_t)st.st_size;
    if (q->max_body_bytes != 0 && size > q->max_body_bytes) {
        q->status = -EFBIG;
        close(fd);
        return;
    }
    q->buf = malloc(size ? size : 1);
    if (q->buf == NULL) {
        q->status = -ENOMEM;
        close(fd);
        return;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, q->buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            q->status = n < 0 ? -errno : -EIO; /* bodies never change size */
            close(fd);
            return;
        }
        got += (size_t)n;
    }
    close(fd);
    q->len = got;
    q->status = 0;
}

static void after_read(uv_work_t *w, int status)
{
    struct req *q = w->data;
    catalog_reader *r = q->r;
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        r->in_flight = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    r->n_in_flight--;
    if (status == UV_ECANCELED) {
        q->cb(-ECANCELED, NULL, 0, q->data);
        req_free(q);
        maybe_finish_close(r);
        return;
    }
    if (q->status < 0) {
        q->cb(q->status, NULL, 0, q->data);
        req_free(q);
        maybe_finish_close(r);
        return;
    }
    struct node *n = NULL;
    uint32_t h = base_hash(q->key, q->key_len, 0);
    if (!r->closing && r->max_entries > 0 && q->len <= r->max_bytes &&
        lru_find(r, q->key, q->key_len, h) == NULL) {
        if (r->buckets == NULL)
            r->buckets = calloc(r->n_buckets, sizeof(*r->buckets));
        n = r->buckets != NULL ? calloc(1, sizeof(*n)) : NULL;
        if (n != NULL) {
            n->hash = h;
            n->key = q->key;
            n->key_len = q->key_len;
            n->data = q->buf;
            n->len = q->len;
            q->key = NULL;
            q->buf = NULL;
            n->linked = 1;
            n->prev = &r->lru;
            n->next = r->lru.next;
            r->lru.next->prev = n;
            r->lru.next = n;
            n->hnext = r->buckets[h & (r->n_buckets - 1)];
            r->buckets[h & (r->n_buckets - 1)] = n;
            r->entries++;
            r->bytes += n->len;
            n->refs = 1; /* held across the callback: it may clear the cache */
            lru_trim(r);
        }
    }
    if (n != NULL) {
        q->cb(0, n->data, n->len, q->data);
        node_release(n);
    } else {
        q->cb(0, q->buf, q->len, q->data);
    }
    req_free(q);
    maybe_finish_close(r);
}

int catalog_get(catalog_reader *r, catalog_index *idx, const char *section, const char *id,
                catalog_get_cb cb, void *data)
{
    if (r->closing)
        return -ECANCELED;
    size_t entry;
    int rc = catalog_index_find(idx, section, id, &entry, NULL, 0);
    if (rc < 0)
        return rc;
    struct req *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    rc = catalog_index_body_path(idx, entry, q->path, sizeof(q->path));
    if (rc < 0) {
        free(q);
        return rc;
    }
    /* key: "<version dir>\0<path tail>", i.e. the body path itself is unique */
    q->key_len = strlen(q->path);
    q->key = malloc(q->key_len);
    if (q->key == NULL) {
        free(q);
        return -ENOMEM;
    }
    memcpy(q->key, q->path, q->key_len);
    q->r = r;
    q->cb = cb;
    q->data = data;
    q->max_body_bytes = r->max_body_bytes;

    uint32_t h = base_hash(q->key, q->key_len, 0);
    struct node *n = lru_find(r, q->key, q->key_len, h);
    if (n != NULL && r->max_body_bytes != 0 && n->len > r->max_body_bytes) {
        req_free(q);
        return -EFBIG;
    }
    if (n != NULL) {
        if (uv_idle_start(&r->idle, on_idle) < 0) {
            req_free(q);
            return -ENOMEM;
        }
        r->hits++;
        lru_front(r, n);
        n->refs++;
        q->hit = n;
        q->idx = catalog_index_ref(idx);
        if (r->hits_tail != NULL)
            r->hits_tail->next = q;
        else
            r->hits_head = q;
        r->hits_tail = q;
        return 0;
    }
    q->work.data = q;
    rc = uv_queue_work(r->loop, &q->work, work_read, after_read);
    if (rc < 0) {
        req_free(q);
        return rc;
    }
    r->misses++;
    q->idx = catalog_index_ref(idx);
    q->next = r->in_flight;
    if (q->next != NULL)
        q->next->prev = q;
    r->in_flight = q;
    r->n_in_flight++;
    return 0;
}

static void on_idle_closed(uv_handle_t *h)
{
    catalog_reader *r = h->data;
    void (*cb)(void *) = r->on_closed;
    void *data = r->closed_data;
    catalog_reader_clear(r);
    free(r->buckets);
    free(r);
    if (cb != NULL)
        cb(data);
}

static void maybe_finish_close(catalog_reader *r)
{
    if (!r->closing || r->idle_closing || r->n_in_flight > 0 || r->hits_head != NULL)
        return;
    r->idle_closing = 1;
    uv_close((uv_handle_t *)&r->idle, on_idle_closed);
}

void catalog_reader_close(catalog_reader *r, void (*on_closed)(void *data), void *data)
{
    if (r == NULL || r->closing)
        return;
    r->closing = 1;
    r->on_closed = on_closed;
    r->closed_data = data;
    for (struct req *q = r->in_flight; q != NULL; q = q->next)
        uv_cancel((uv_req_t *)&q->work);
    maybe_finish_close(r);
}
