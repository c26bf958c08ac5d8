/*
 * The catalog service: serves OUTDIR's `current` version and swaps to new
 * ones without a restart. This is what the catalog worker adapter wraps.
 *
 * Design notes
 * - All file work (readlink, loading and validating a version: hashing
 *   every body) runs on the thread pool; at most one check is in flight.
 *   A trigger that arrives meanwhile sets `again`, and one more check runs
 *   when the current one is done.
 * - Triggers: uv_fs_event on OUTDIR (any event) and a periodic timer that
 *   covers events an fs watcher can miss (symlink renames, network file
 *   systems). A check whose readlink names the version being served costs
 *   one readlink.
 * - A refused version is remembered by (link target, inode of the
 *   `current` symlink): it is not reloaded every tick, but a new flip (a new
 *   symlink, so a new inode) is looked at again even if it names the same
 *   directory.
 * - Swap: the new index replaces the old one; requests in flight hold
 *   their own reference to the old index and finish on it. The body cache
 *   is cleared (its nodes belong to the old version).
 * - Gets whose body file is gone (-ENOENT from the reader: the version was
 *   removed by a later build) are retried once on the version being served:
 *   at once when a newer one has been swapped in meanwhile, else after the
 *   next check has finished (a check queued after the failure, tracked by
 *   sequence numbers), which swaps in whatever `current` names now. The
 *   compiler keeps the previous version on disk, so this only happens to a
 *   service more than one version behind (builds faster than validation).
 * - Close: handles are closed, queued work is cancelled, parked gets are
 *   answered -ECANCELED, and the service is freed only when both handles,
 *   the reader and the check are done.
 */
#include "catalog/internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * One check, queued every poll_ms by every service: small, because a herd
 * of idle catalog workers queues one a second each and a large block freed
 * every second would keep its pages resident between heap trims. The pool
 * thread borrows what the loop does not change while a check is in flight
 * (path, refused: after_check alone writes them, after the work is done);
 * a result's strings are allocated only when there is something to say.
 */
struct check {
    uv_work_t work;
    catalog_service *svc;
    unsigned long seq;
    int initial;
    const char *path;    /* svc->path */
    const char *refused; /* svc->refused, "" none */
    ino_t refused_ino;
    char serving[64]; /* version being served ("" none) */
    /* results */
    char *target; /* the link, when it names a version to load */
    ino_t ino;
    catalog_index *idx; /* a new validated version, or NULL */
    int rc;
    char *err; /* when rc < 0 (NULL: out of memory for the message) */
};

static void check_free(struct check *c)
{
    free(c->target);
    free(c->err);
    free(c);
}

struct catalog_service {
    uv_loop_t *loop;
    catalog_service_options opts;
    char *path;
    catalog_reader *reader;
    uv_fs_event_t watch;
    uv_timer_t timer;
    catalog_index *idx;
    char *last_error;
    struct check *check;
    unsigned long check_seq; /* of the last check queued */
    struct sget *parked;     /* gets waiting for a check to retry */
    int again;
    char *refused; /* the link target last refused, NULL none */
    ino_t refused_ino;
    int started, handles, watching, closing;
    int pending; /* things to finish before the free: handles, reader, check */
    void (*on_closed)(void *data);
    void *closed_data;
};

int catalog_service_new(uv_loop_t *loop, const catalog_service_options *opts, catalog_service **out)
{
    *out = NULL;
    if (loop == NULL || opts == NULL || opts->path == NULL || !opts->path[0])
        return -EINVAL;
    catalog_service *svc = calloc(1, sizeof(*svc));
    if (svc == NULL)
        return -ENOMEM;
    int rc = -ENOMEM;
    svc->loop = loop;
    svc->opts = *opts;
    svc->path = strdup(opts->path);
    if (svc->path == NULL)
        goto fail_path;
    svc->opts.path = svc->path;
    if (!svc->opts.lru_entries)
        svc->opts.lru_entries = CATALOG_LRU_ENTRIES_DEFAULT;
    if (!svc->opts.lru_bytes)
        svc->opts.lru_bytes = CATALOG_LRU_BYTES_DEFAULT;
    if (!svc->opts.poll_ms)
        svc->opts.poll_ms = CATALOG_POLL_MS_DEFAULT;
    rc = catalog_reader_new(loop, svc->opts.lru_entries, svc->opts.lru_bytes, &svc->reader);
    if (rc < 0)
        goto fail_reader;
    catalog_reader_set_max_body(svc->reader, svc->opts.max_body_bytes);
    *out = svc;
    return 0;
fail_reader:
    free(svc->path);
fail_path:
    free(svc);
    return rc;
}

uint64_t catalog_service_heap_bytes(const catalog_service *svc)
{
    uint64_t n = base_mem_charge(sizeof(*svc)) + base_mem_charge(strlen(svc->path) + 1) +
                 catalog_reader_heap_bytes(svc->reader);
    if (svc->last_error != NULL)
        n += base_mem_charge(strlen(svc->last_error) + 1);
    if (svc->refused != NULL)
        n += base_mem_charge(strlen(svc->refused) + 1);
    if (svc->idx != NULL)
        n += catalog_index_get_info(svc->idx).heap_bytes;
    return n;
}

static void set_error(catalog_service *svc, const char *msg)
{
    free(svc->last_error);
    svc->last_error = msg != NULL ? strdup(msg) : NULL;
}

/* ---- the check (thread pool) ---------------------------------------------- */

static void check_failed(struct check *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check_failed(struct check *c, int rc, const char *fmt, ...)
{
    char msg[2 * PATH_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->rc = rc;
    c->err = strdup(msg);
}

static void work_check(uv_work_t *w)
{
    struct check *c = w->data;
    char link[PATH_MAX + 16], target[PATH_MAX], dir[2 * PATH_MAX + 16];
    char err[2 * PATH_MAX + 256];
    struct stat st;
    if (stat(c->path, &st) < 0) {
        check_failed(c, -errno, "%s: %s", c->path, strerror(errno));
        return;
    }
    snprintf(link, sizeof(link), "%s/current", c->path);
    if (lstat(link, &st) < 0) {
        check_failed(c, -errno, "%s: %s (no catalog built here?)", link, strerror(errno));
        return;
    }
    if (!S_ISLNK(st.st_mode)) {
        check_failed(c, -EINVAL, "%s: not a symlink", link);
        return;
    }
    c->ino = st.st_ino;
    int rc = catalog__read_current(c->path, target, sizeof(target));
    if (rc < 0) {
        check_failed(c, rc, "%s: %s", link, strerror(-rc));
        return;
    }
    const char *base = strrchr(target, '/');
    base = base != NULL ? base + 1 : target;
    if (strcmp(base, c->serving) == 0)
        return; /* unchanged */
    if (strcmp(target, c->refused) == 0 && c->ino == c->refused_ino)
        return; /* already refused, and not flipped since */
    if ((c->target = strdup(target)) == NULL) {
        c->rc = -ENOMEM;
        return;
    }
    if (target[0] == '/')
        snprintf(dir, sizeof(dir), "%s", target);
    else
        snprintf(dir, sizeof(dir), "%s/%s", c->path, target);
    err[0] = '\0';
    c->rc = catalog_index_load(dir, &c->idx, err, sizeof(err));
    if (c->rc < 0)
        c->err = strdup(err);
}

static void schedule_check(catalog_service *svc);
static void release(catalog_service *svc);
static void retry_parked(catalog_service *svc, unsigned long done_seq);
static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status);
static void on_timer(uv_timer_t *t);

static void after_check(uv_work_t *w, int status)
{
    struct check *c = w->data;
    catalog_service *svc = c->svc;
    svc->check = NULL;
    if (svc->closing || status == UV_ECANCELED) {
        catalog_index_free(c->idx);
        check_free(c);
        if (svc->closing)
            release(svc);
        return;
    }
    if (c->initial) {
        if (c->rc < 0) {
            const char *err = c->err != NULL ? c->err : strerror(-c->rc);
            set_error(svc, err);
            if (svc->opts.on_started != NULL)
                svc->opts.on_started(svc, c->rc, err, svc->opts.data);
            check_free(c);
            return;
        }
        svc->idx = c->idx;
        set_error(svc, NULL);
        check_free(c);
        /* a file system without change events still has the timer */
        uv_fs_event_start(&svc->watch, on_fs_event, svc->path, 0);
        uv_timer_start(&svc->timer, on_timer, svc->opts.poll_ms, svc->opts.poll_ms);
        svc->watching = 1;
        if (svc->opts.on_started != NULL)
            svc->opts.on_started(svc, 0, NULL, svc->opts.data);
        return;
    }
    if (c->idx != NULL) {
        catalog_index *old = svc->idx;
        svc->idx = c->idx;
        catalog_index_free(old);
        catalog_reader_clear(svc->reader);
        set_error(svc, NULL);
        free(svc->refused);
        svc->refused = NULL;
        if (svc->opts.on_reloaded != NULL)
            svc->opts.on_reloaded(svc, catalog_index_get_info(svc->idx).version,
                                  catalog_index_get_info(svc->idx).n_entries, svc->opts.data);
    } else if (c->rc < 0) {
        const char *err = c->err != NULL ? c->err : strerror(-c->rc);
        const char *target = c->target != NULL ? c->target : "";
        set_error(svc, err);
        /* A version that could not be read is remembered so the next tick
         * does not load it again; without its name (out of memory before
         * the link was copied) the next tick simply tries again. */
        if (c->target != NULL) {
            free(svc->refused);
            svc->refused = c->target;
            c->target = NULL;
            svc->refused_ino = c->ino;
            target = svc->refused;
        }
        if (svc->opts.on_refused != NULL) {
            const char *base = strrchr(target, '/');
            svc->opts.on_refused(svc, base != NULL ? base + 1 : target, err, svc->opts.data);
        }
    }
    unsigned long done = c->seq;
    check_free(c);
    if (svc->again && !svc->closing) {
        svc->again = 0;
        schedule_check(svc);
    }
    retry_parked(svc, done);
}

static int queue_check(catalog_service *svc, int initial)
{
    struct check *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->svc = svc;
    c->seq = svc->check_seq + 1;
    c->initial = initial;
    c->work.data = c;
    c->path = svc->path;
    if (svc->idx != NULL)
        snprintf(c->serving, sizeof(c->serving), "%s", catalog_index_get_info(svc->idx).version);
    c->refused = svc->refused != NULL ? svc->refused : "";
    c->refused_ino = svc->refused_ino;
    int rc = uv_queue_work(svc->loop, &c->work, work_check, after_check);
    if (rc < 0) {
        free(c);
        return rc;
    }
    svc->check = c;
    svc->check_seq = c->seq;
    return 0;
}

static void schedule_check(catalog_service *svc)
{
    if (svc->closing || svc->idx == NULL)
        return;
    if (svc->check != NULL) {
        svc->again = 1;
        return;
    }
    if (queue_check(svc, 0) < 0)
        svc->again = 1; /* out of memory: the next tick tries again */
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    schedule_check(h->data);
}

static void on_timer(uv_timer_t *t)
{
    schedule_check(t->data);
}

int catalog_service_start(catalog_service *svc)
{
    if (svc->closing)
        return -ECANCELED;
    if (svc->started)
        return 0;
    int rc;
    if (svc->handles == 0) {
        /* both inits only fill in the struct (no allocation, no fd) */
        if ((rc = uv_timer_init(svc->loop, &svc->timer)) < 0)
            return rc;
        svc->timer.data = svc;
        svc->handles = 1;
        if ((rc = uv_fs_event_init(svc->loop, &svc->watch)) < 0)
            return rc;
        svc->watch.data = svc;
        svc->handles = 2;
    }
    if ((rc = queue_check(svc, 1)) < 0)
        return rc;
    svc->started = 1;
    return 0;
}

catalog_index *catalog_service_index(catalog_service *svc)
{
    return svc->idx;
}

catalog_reader *catalog_service_reader(catalog_service *svc)
{
    return svc->reader;
}

/* ---- gets, retried once when their version's files are gone ---------------- */

struct sget {
    struct sget *next; /* parked list */
    catalog_service *svc;
    catalog_index *idx; /* the version read (a reference: no ABA on the pointer) */
    catalog_get_cb cb;
    void *data;
    unsigned long wait_seq; /* parked: retry once this check has finished */
    int retried;
    const char *section; /* NULL or into name */
    const char *id;      /* into name */
    char name[];
};

static void sget_finish(struct sget *g, int status, const char *body, size_t len)
{
    g->cb(status, body, len, g->data);
    catalog_index_free(g->idx);
    free(g);
}

static void sget_done(int status, const char *body, size_t len, void *data);

/* Issues g on the version being served; on failure finishes it. */
static void sget_reissue(struct sget *g)
{
    catalog_service *svc = g->svc;
    catalog_index_free(g->idx);
    g->idx = catalog_index_ref(svc->idx);
    int rc = catalog_get(svc->reader, svc->idx, g->section, g->id, sget_done, g);
    if (rc < 0)
        sget_finish(g, rc, NULL, 0);
}

static void sget_done(int status, const char *body, size_t len, void *data)
{
    struct sget *g = data;
    catalog_service *svc = g->svc;
    if (status != -ENOENT || g->retried || svc->closing || svc->idx == NULL) {
        sget_finish(g, status, body, len);
        return;
    }
    g->retried = 1;
    if (svc->idx != g->idx) {
        sget_reissue(g);
        return;
    }
    /* wait for a check that starts after now */
    if (svc->check != NULL) {
        svc->again = 1;
        g->wait_seq = svc->check_seq + 1;
    } else if (queue_check(svc, 0) == 0) {
        g->wait_seq = svc->check_seq;
    } else {
        g->wait_seq = svc->check_seq + 1; /* the timer queues it */
    }
    g->next = svc->parked;
    svc->parked = g;
}

static void retry_parked(catalog_service *svc, unsigned long done_seq)
{
    struct sget **p = &svc->parked, *ready = NULL;
    while (*p != NULL) {
        struct sget *g = *p;
        if (g->wait_seq <= done_seq) {
            *p = g->next;
            g->next = ready;
            ready = g;
        } else {
            p = &g->next;
        }
    }
    while (ready != NULL) {
        struct sget *g = ready;
        ready = g->next;
        if (svc->closing)
            sget_finish(g, -ECANCELED, NULL, 0);
        else
            sget_reissue(g);
    }
}

int catalog_service_get(catalog_service *svc, const char *section, const char *id,
                        catalog_get_cb cb, void *data)
{
    if (svc->closing)
        return -ECANCELED;
    if (svc->idx == NULL)
        return -EAGAIN;
    size_t id_len = strlen(id), sec_len = section != NULL ? strlen(section) + 1 : 0;
    struct sget *g = malloc(sizeof(*g) + id_len + 1 + sec_len);
    if (g == NULL)
        return -ENOMEM;
    memset(g, 0, sizeof(*g));
    memcpy(g->name, id, id_len + 1);
    g->id = g->name;
    if (section != NULL) {
        memcpy(g->name + id_len + 1, section, sec_len);
        g->section = g->name + id_len + 1;
    }
    g->svc = svc;
    g->cb = cb;
    g->data = data;
    g->idx = catalog_index_ref(svc->idx);
    int rc = catalog_get(svc->reader, svc->idx, section, id, sget_done, g);
    if (rc < 0) {
        catalog_index_free(g->idx);
        free(g);
    }
    return rc;
}

const char *catalog_service_last_error(const catalog_service *svc)
{
    return svc->last_error;
}

int catalog_service_health(const catalog_service *svc, json_t *obj)
{
    catalog_lru_stats st;
    catalog_reader_stats(svc->reader, &st);
    json_t *lru = json_pack("{s:I,s:I,s:I,s:I}", "entries", (json_int_t)st.entries, "bytes",
                            (json_int_t)st.bytes, "hits", (json_int_t)st.hits, "misses",
                            (json_int_t)st.misses);
    int rc = 0;
    if (lru == NULL)
        return -ENOMEM;
    rc |= json_object_set_new(obj, "lru", lru);
    if (svc->idx != NULL) {
        rc |= json_object_set_new(obj, "version",
                                  json_string(catalog_index_get_info(svc->idx).version));
        rc |= json_object_set_new(
            obj, "entries", json_integer((json_int_t)catalog_index_get_info(svc->idx).n_entries));
        rc |= json_object_set_new(
            obj, "index_bytes",
            json_integer((json_int_t)catalog_index_get_info(svc->idx).heap_bytes));
    } else {
        rc |= json_object_set_new(obj, "version", json_null());
        rc |= json_object_set_new(obj, "entries", json_integer(0));
        rc |= json_object_set_new(obj, "index_bytes", json_integer(0));
    }
    rc |= json_object_set_new(obj, "last_error",
                              svc->last_error != NULL ? json_string(svc->last_error) : json_null());
    return rc ? -ENOMEM : 0;
}

/* One of the things close waits for is done; the last one frees. */
static void release(catalog_service *svc)
{
    if (--svc->pending > 0)
        return;
    void (*cb)(void *) = svc->on_closed;
    void *data = svc->closed_data;
    catalog_index_free(svc->idx);
    free(svc->last_error);
    free(svc->refused);
    free(svc->path);
    free(svc);
    if (cb != NULL)
        cb(data);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

static void on_reader_closed(void *data)
{
    release(data);
}

void catalog_service_close(catalog_service *svc, void (*on_closed)(void *data), void *data)
{
    if (svc == NULL || svc->closing)
        return;
    svc->closing = 1;
    svc->on_closed = on_closed;
    svc->closed_data = data;
    retry_parked(svc, (unsigned long)-1); /* each answered -ECANCELED */
    svc->pending = 1;                     /* held by this function until everything is started */
    if (svc->handles >= 1) {
        svc->pending++;
        uv_close((uv_handle_t *)&svc->timer, on_handle_closed);
    }
    if (svc->handles >= 2) {
        svc->pending++;
        uv_close((uv_handle_t *)&svc->watch, on_handle_closed);
    }
    if (svc->check != NULL) {
        svc->pending++;
        uv_cancel((uv_req_t *)&svc->check->work);
    }
    svc->pending++;
    catalog_reader_close(svc->reader, on_reader_closed, svc);
    release(svc);
}
