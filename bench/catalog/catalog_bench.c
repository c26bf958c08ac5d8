/*
 * catalog-bench: the in-process and bus figures of bench/catalog/run.
 *
 *   catalog-bench index OUTDIR...     resident and heap growth of holding the
 *                                     indexes of OUTDIR/current (LRU empty)
 *   catalog-bench jansson FILE...     resident growth of json_load_file of each
 *   catalog-bench latency COMP AUTO   get hot/cold, list of one section, search,
 *                                     and the dashboard queries (where, facets,
 *                                     relevance, sort keys, a partition): p50,
 *                                     p99, allocations and heap per query
 *   catalog-bench bus RUNDIR HOT COLD get {ids: [20 ids]}, 20 single gets,
 *                                     get {ids, slim} and a list through
 *                                     herdd's bus, from worker HOT (an LRU that
 *                                     holds every body) and COLD (an LRU that
 *                                     holds none); page cache warm for both
 *
 * COMP is an OUTDIR of the ESPHome components, AUTO of the automations
 * built with triggers partitioned by applies_to and actions and conditions
 * by domain. Each mode prints one JSON object. Resident figures come from
 * VmRSS in /proc/self/status, heap from mallinfo2 (in use), both after
 * malloc_trim (what herdd does after a large free).
 *
 * Allocation per query: malloc, calloc, realloc and free are replaced here
 * (glibc's documented way: the program's definitions win over libc's for
 * every library, and the replacements call glibc's own __libc_* functions),
 * counting, on the thread that asked for it, the calls and the usable bytes
 * of the blocks live since a mark, and their peak. So the peak extra heap of
 * one query is exact to the allocator's rounding, whatever code allocates
 * (catalog, base, jansson). Not under AddressSanitizer, which replaces them
 * itself: there the figures are -1.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/client.h"
#include "catalog/catalog.h"

/* ---- counting allocator ----------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNT_ALLOC 0
#endif
#endif
#if !defined(COUNT_ALLOC) && defined(__GLIBC__)
#define COUNT_ALLOC 1
#elif !defined(COUNT_ALLOC)
#define COUNT_ALLOC 0
#endif

struct count {
    int on;
    long long live; /* usable bytes allocated minus freed since the mark */
    long long peak;
    unsigned long long calls; /* malloc, calloc and realloc calls */
};

/* thread-local: only the measuring thread counts (libuv's pool threads
 * allocate too, for cold gets) */
static _Thread_local struct count counter;

#if COUNT_ALLOC
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

static void count_add(void *p)
{
    if (p != NULL) {
        counter.live += (long long)malloc_usable_size(p);
        if (counter.live > counter.peak)
            counter.peak = counter.live;
    }
    counter.calls++;
}

__attribute__((visibility("default"))) void *malloc(size_t size)
{
    void *p = __libc_malloc(size);
    if (counter.on)
        count_add(p);
    return p;
}

__attribute__((visibility("default"))) void *calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    if (counter.on)
        count_add(p);
    return p;
}

__attribute__((visibility("default"))) void *realloc(void *old, size_t size)
{
    if (!counter.on)
        return __libc_realloc(old, size);
    long long was = old != NULL ? (long long)malloc_usable_size(old) : 0;
    void *p = __libc_realloc(old, size);
    if (p != NULL || size == 0)
        counter.live -= was;
    count_add(p);
    return p;
}

__attribute__((visibility("default"))) void free(void *p)
{
    if (counter.on && p != NULL)
        counter.live -= (long long)malloc_usable_size(p);
    __libc_free(p);
}
#endif

static void count_start(void)
{
    counter = (struct count){.on = 1};
}

static struct count count_stop(void)
{
    struct count c = counter;
    counter.on = 0;
    return c;
}

/* ---- common ----------------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

static size_t heap_bytes(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd; /* small blocks and mmap'ed ones */
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* v sorted in place */
static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static json_t *parse_or_die(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (v == NULL) {
        fprintf(stderr, "catalog-bench: %s: %s\n", text, je.text);
        exit(1);
    }
    return v;
}

static catalog_index *load(const char *outdir)
{
    char path[4096], err[1024];
    catalog_index *idx = NULL;
    snprintf(path, sizeof(path), "%s/current", outdir);
    if (catalog_index_load(path, &idx, err, sizeof(err)) < 0) {
        fprintf(stderr, "catalog-bench: %s\n", err);
        exit(1);
    }
    return idx;
}

static int mode_index(int n, char **dirs)
{
    catalog_index *idx[8];
    size_t index_bytes = 0, entries = 0;
    if (n > 8)
        n = 8;
    malloc_trim(0);
    long rss0 = rss_kib();
    size_t heap0 = heap_bytes();
    for (int i = 0; i < n; i++) {
        idx[i] = load(dirs[i]);
        index_bytes += catalog_index_get_info(idx[i]).heap_bytes;
        entries += catalog_index_get_info(idx[i]).n_entries;
    }
    malloc_trim(0);
    long rss1 = rss_kib();
    size_t heap1 = heap_bytes();
    printf("{\"entries\":%zu,\"index_bytes\":%zu,\"heap_growth_bytes\":%zu,"
           "\"rss_growth_bytes\":%ld}\n",
           entries, index_bytes, heap1 - heap0, (rss1 - rss0) * 1024);
    for (int i = 0; i < n; i++)
        catalog_index_free(idx[i]);
    return 0;
}

static int mode_jansson(int n, char **files)
{
    json_t *v[8];
    if (n > 8)
        n = 8;
    long rss0 = rss_kib();
    for (int i = 0; i < n; i++) {
        json_error_t je;
        v[i] = json_load_file(files[i], 0, &je);
        if (v[i] == NULL) {
            fprintf(stderr, "catalog-bench: %s: %s\n", files[i], je.text);
            return 1;
        }
    }
    long rss1 = rss_kib();
    printf("{\"rss_growth_bytes\":%ld}\n", (rss1 - rss0) * 1024);
    for (int i = 0; i < n; i++)
        json_decref(v[i]);
    return 0;
}

/* ---- latency: get ----------------------------------------------------------- */

struct lat {
    int done, status;
};

static void on_body(int status, const char *body, size_t len, void *data)
{
    struct lat *l = data;
    l->done = 1;
    l->status = status;
}

static double one_get(catalog_reader *r, catalog_index *idx, const char *section, const char *id)
{
    struct lat l = {0};
    double t0 = now_us();
    if (catalog_get(r, idx, section, id, on_body, &l) < 0) {
        fprintf(stderr, "catalog-bench: get %s failed\n", id);
        exit(1);
    }
    while (!l.done)
        uv_run(uv_default_loop(), UV_RUN_ONCE);
    double t1 = now_us();
    if (l.status < 0) {
        fprintf(stderr, "catalog-bench: get %s: %s\n", id, strerror(-l.status));
        exit(1);
    }
    return t1 - t0;
}

/* the ids of a section, from a list reply (ids never need escaping here) */
static size_t section_ids(catalog_index *idx, const char *section, char ***out)
{
    catalog_query q = {.section = section, .limit = 100000};
    base_buf b = {0};
    char err[256];
    if (catalog_index_list(idx, &q, &b, err, sizeof(err)) < 0) {
        fprintf(stderr, "catalog-bench: %s\n", err);
        exit(1);
    }
    json_t *r = json_loadb(b.data, b.len, 0, NULL);
    base_buf_free(&b);
    json_t *entries = json_object_get(r, "entries");
    size_t n = json_array_size(entries);
    char **ids = calloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = strdup(json_string_value(json_object_get(json_array_get(entries, i), "id")));
    json_decref(r);
    *out = ids;
    return n;
}

/* ---- latency: queries ------------------------------------------------------- */

enum { Q_WARM = 200, Q_ITER = 2000, Q_COUNTED = 1000 };

/* One query of the table: over idx (and idx2 too, timed as one, when set). */
struct bq {
    const char *key; /* prefix of its figures' names */
    const catalog_index *idx, *idx2;
    catalog_query q;
    int search;
    double *t; /* Q_ITER timings */
    size_t total, bytes;
    double allocs;     /* calls per query, mean over Q_COUNTED */
    long long peak;    /* the largest peak extra heap of one query */
    long long growth;  /* mallinfo2 in use after Q_COUNTED queries minus before */
    long long balance; /* the counter's live bytes after them (0: all freed) */
};

static void run_one(struct bq *b, base_buf *out)
{
    char err[512];
    int rc = b->search ? catalog_index_search(b->idx, &b->q, out, err, sizeof(err))
                       : catalog_index_list(b->idx, &b->q, out, err, sizeof(err));
    if (rc == 0 && b->idx2 != NULL)
        rc = b->search ? catalog_index_search(b->idx2, &b->q, out, err, sizeof(err))
                       : catalog_index_list(b->idx2, &b->q, out, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "catalog-bench: %s: %s\n", b->key, err);
        exit(1);
    }
}

/* total of each reply in out (one, or two back to back) */
static size_t totals(const base_buf *out)
{
    size_t t = 0;
    const char *p = out->data;
    while (p != NULL && (p = strstr(p, "{\"total\":")) != NULL) {
        t += strtoul(p + 9, NULL, 10);
        p += 9;
    }
    return t;
}

static void time_queries(struct bq *qs, size_t n)
{
    /* interleaved, so a burst of machine noise lands on every query alike */
    for (size_t i = 0; i < Q_WARM + Q_ITER; i++) {
        for (size_t k = 0; k < n; k++) {
            base_buf out = {0};
            double t0 = now_us();
            run_one(&qs[k], &out);
            double t = now_us() - t0;
            if (i >= Q_WARM)
                qs[k].t[i - Q_WARM] = t;
            if (i == 0) {
                qs[k].total = totals(&out);
                qs[k].bytes = out.len;
            }
            base_buf_free(&out);
        }
    }
    /* allocation: the reply's buffer is reserved first, so what is counted is
     * what the query itself needs (plan, page, facet counters, scratch) */
    for (size_t k = 0; k < n; k++) {
        base_buf out = {0};
        if (base_buf_reserve(&out, 2 * qs[k].bytes + 4096) < 0)
            exit(1);
        long long peak = 0;
        unsigned long long calls = 0;
        malloc_trim(0);
        size_t heap0 = heap_bytes();
        count_start();
        for (size_t i = 0; i < Q_COUNTED; i++) {
            out.len = 0;
            long long mark = counter.live;
            counter.peak = mark;
            run_one(&qs[k], &out);
            if (counter.peak - mark > peak)
                peak = counter.peak - mark;
        }
        struct count c = count_stop();
        calls = c.calls;
        size_t heap1 = heap_bytes();
        qs[k].allocs = COUNT_ALLOC ? (double)calls / Q_COUNTED : -1;
        qs[k].peak = COUNT_ALLOC ? peak : -1;
        qs[k].balance = COUNT_ALLOC ? c.live : -1;
        qs[k].growth = (long long)heap1 - (long long)heap0;
        base_buf_free(&out);
    }
}

static int mode_latency(const char *comp_dir, const char *auto_dir)
{
    uv_loop_t *loop = uv_default_loop();
    catalog_index *comp = load(comp_dir), *au = load(auto_dir);
    catalog_reader *r;
    if (catalog_reader_new(loop, CATALOG_LRU_ENTRIES_DEFAULT, CATALOG_LRU_BYTES_DEFAULT, &r) < 0)
        return 1;
    char **ids;
    size_t n = section_ids(comp, "components", &ids);
    enum { COLD = 2000, HOT = 20000 };
    static double cold[COLD], hot[HOT];

    /* page cache warm: every body read once */
    for (size_t i = 0; i < n; i++)
        one_get(r, comp, "components", ids[i]);
    /* cold LRU: the cache is emptied before every get, so each goes through
     * the thread pool and read(2) */
    for (size_t i = 0; i < COLD; i++) {
        catalog_reader_clear(r);
        cold[i] = one_get(r, comp, "components", ids[(i * 7919) % n]);
    }
    /* hot LRU: 32 ids, all cached */
    catalog_reader_clear(r);
    for (size_t i = 0; i < 32; i++)
        one_get(r, comp, "components", ids[i]);
    for (size_t i = 0; i < HOT; i++)
        hot[i] = one_get(r, comp, "components", ids[i % 32]);
    catalog_lru_stats st;
    catalog_reader_stats(r, &st);

    json_t *where = parse_or_die("{\"category\": [\"sensor\", \"binary_sensor\"], "
                                 "\"supported_platforms\": {\"empty_or\": \"esp32\"}, "
                                 "\"multi_conf\": true}");
    json_t *facets = parse_or_die("[\"category\", \"dependencies\"]");
    json_t *by_index = json_string("index");
    json_t *by_name = parse_or_die("[{\"field\": \"name\", \"fold\": true}]");
    static double t[8][Q_ITER];
    struct bq qs[] = {
        /* the figures kept from before: every component, a word over both catalogs */
        {.key = "list", .idx = comp, .q = {.section = "components", .limit = 100000}},
        {.key = "search",
         .idx = comp,
         .idx2 = au,
         .q = {.q = "Temperature", .limit = 50},
         .search = 1},
        /* a dashboard page: three clauses and two sidebars */
        {.key = "where",
         .idx = comp,
         .q = {.section = "components", .where = where, .facets = facets, .limit = 50}},
        /* ranking (relevance, the default with q) against input order */
        {.key = "relevance",
         .idx = comp,
         .q = {.section = "components", .q = "temperature sensor", .limit = 50},
         .search = 1},
        {.key = "search_index",
         .idx = comp,
         .q = {.section = "components", .q = "temperature sensor", .order = by_index, .limit = 50},
         .search = 1},
        {.key = "sorted",
         .idx = comp,
         .q = {.section = "components", .order = by_name, .limit = 50}},
        /* the triggers of one component (applies_to is an array) */
        {.key = "triggers",
         .idx = au,
         .q = {.section = "triggers", .domain = "binary_sensor", .limit = 50}},
    };
    size_t nq = sizeof(qs) / sizeof(qs[0]);
    for (size_t k = 0; k < nq; k++)
        qs[k].t = t[k];
    time_queries(qs, nq);

    printf("{\"get_hot_p50_us\":%.1f,\"get_hot_p99_us\":%.1f,\"get_cold_p50_us\":%.1f,"
           "\"get_cold_p99_us\":%.1f,\"lru_hits\":%llu,\"list_entries\":%zu,\"list_bytes\":%zu,"
           "\"search_hits\":%zu,\"count_alloc\":%d",
           pct(hot, HOT, 0.5), pct(hot, HOT, 0.99), pct(cold, COLD, 0.5), pct(cold, COLD, 0.99),
           (unsigned long long)st.hits, qs[0].total, qs[0].bytes, qs[1].total, COUNT_ALLOC);
    for (size_t k = 0; k < nq; k++) {
        const struct bq *b = &qs[k];
        printf(",\"%s_p50_us\":%.1f,\"%s_p99_us\":%.1f,\"%s_total\":%zu,\"%s_reply_bytes\":%zu,"
               "\"%s_allocs\":%.1f,\"%s_peak_bytes\":%lld,\"%s_growth_bytes\":%lld,"
               "\"%s_balance_bytes\":%lld",
               b->key, pct(b->t, Q_ITER, 0.5), b->key, pct(b->t, Q_ITER, 0.99), b->key, b->total,
               b->key, b->bytes, b->key, b->allocs, b->key, b->peak, b->key, b->growth, b->key,
               b->balance);
    }
    printf("}\n");
    json_decref(where);
    json_decref(facets);
    json_decref(by_index);
    json_decref(by_name);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    catalog_reader_close(r, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    catalog_index_free(comp);
    catalog_index_free(au);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}

/* ---- bus: gets through herdd ------------------------------------------------ */

enum { B_WARM = 10, B_ITER = 200, B_PAGE = 20 };

/* One request; the reply's bytes stay in *reply (caller frees). Exits on a
 * failure or an error reply. */
static size_t bus_call(bus_client *c, const base_buf *body, char **reply)
{
    size_t len;
    int rc = bus_client_request_raw(c, body->data, body->len, 30000, reply, &len);
    if (rc < 0) {
        fprintf(stderr, "catalog-bench: request %.200s: %s %s\n", body->data, strerror(-rc),
                bus_client_why(c));
        exit(1);
    }
    if (strncmp(*reply, "{\"ok\":true", 10) != 0) {
        fprintf(stderr, "catalog-bench: request %.200s: %.500s\n", body->data, *reply);
        exit(1);
    }
    return len;
}

/* times one request; adds its reply's length to *bytes when bytes != NULL */
static double bus_timed(bus_client *c, const base_buf *body, size_t *bytes)
{
    char *reply;
    double t0 = now_us();
    size_t len = bus_call(c, body, &reply);
    double t = now_us() - t0;
    free(reply);
    if (bytes != NULL)
        *bytes += len;
    return t;
}

static void req_head(base_buf *b, const char *worker, const char *op)
{
    b->len = 0;
    base_buf_add(b, "{\"service\":", 11);
    base_buf_json_string(b, worker, strlen(worker));
    base_buf_addf(b, ",\"op\":\"%s\",\"args\":", op);
}

/* get {ids: ids[first..first+B_PAGE) (mod n), slim?} */
static void req_ids(base_buf *b, const char *worker, char **ids, size_t n, size_t first, int slim)
{
    req_head(b, worker, "get");
    base_buf_add(b, "{\"ids\":[", 8);
    for (size_t j = 0; j < B_PAGE; j++) {
        if (j)
            base_buf_add(b, ",", 1);
        base_buf_json_string(b, ids[(first + j) % n], strlen(ids[(first + j) % n]));
    }
    base_buf_addf(b, "]%s}}", slim ? ",\"slim\":true" : "");
}

static void req_one(base_buf *b, const char *worker, const char *id)
{
    req_head(b, worker, "get");
    base_buf_add(b, "{\"id\":", 6);
    base_buf_json_string(b, id, strlen(id));
    base_buf_add(b, "}}", 2);
}

/* the worker's `stats` lru member, parsed (caller decrefs) */
static json_t *bus_lru(bus_client *c, const char *worker)
{
    base_buf b = {0};
    char *reply;
    req_head(&b, worker, "stats");
    base_buf_add(&b, "{}}", 3);
    bus_call(c, &b, &reply);
    base_buf_free(&b);
    json_t *r = json_loads(reply, 0, NULL);
    free(reply);
    json_t *lru = json_incref(json_object_get(json_object_get(r, "result"), "lru"));
    json_decref(r);
    return lru;
}

static unsigned long long lru_count(const json_t *lru, const char *key)
{
    return (unsigned long long)json_integer_value(json_object_get(lru, key));
}

static int mode_bus(const char *dir, const char *hot_w, const char *cold_w)
{
    bus_client *c;
    base_buf b = {0};
    char *reply;
    if (bus_client_new(dir, &c) < 0)
        return 1;

    /* the ids, in index order: a page is B_PAGE consecutive ones */
    req_head(&b, hot_w, "list");
    base_buf_add(&b, "{\"limit\":100000}}", 17);
    bus_call(c, &b, &reply);
    json_t *r = json_loads(reply, 0, NULL);
    free(reply);
    json_t *entries = json_object_get(json_object_get(r, "result"), "entries");
    size_t n = json_array_size(entries);
    if (n < B_PAGE) {
        fprintf(stderr, "catalog-bench: %s lists %zu entries\n", hot_w, n);
        return 1;
    }
    char **ids = calloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = strdup(json_string_value(json_object_get(json_array_get(entries, i), "id")));
    json_decref(r);

    /* every body read once by both: page cache warm, HOT's LRU full */
    for (size_t i = 0; i < n; i += B_PAGE) {
        req_ids(&b, hot_w, ids, n, i, 0);
        bus_timed(c, &b, NULL);
        req_ids(&b, cold_w, ids, n, i, 0);
        bus_timed(c, &b, NULL);
    }
    json_t *hot0 = bus_lru(c, hot_w), *cold0 = bus_lru(c, cold_w);

    static double ids_hot[B_ITER], ids_cold[B_ITER], one_hot[B_ITER], one_cold[B_ITER],
        slim[B_ITER], where[B_ITER], single[B_ITER * B_PAGE];
    size_t ids_bytes = 0, slim_bytes = 0, where_bytes = 0;
    base_buf wb = {0};
    req_head(&wb, hot_w, "list");
    static const char where_args[] =
        "{\"where\":{\"category\":[\"sensor\",\"binary_sensor\"],"
        "\"supported_platforms\":{\"empty_or\":\"esp32\"},\"multi_conf\":true},"
        "\"facets\":[\"category\",\"dependencies\"],\"limit\":50}}";
    base_buf_add(&wb, where_args, sizeof(where_args) - 1);
    for (size_t k = 0; k < B_WARM + B_ITER; k++) {
        /* a different page each time: on COLD every body is a read */
        size_t first = (k * B_PAGE) % n, i = k - B_WARM;
        int keep = k >= B_WARM;
        req_ids(&b, hot_w, ids, n, first, 0);
        double t = bus_timed(c, &b, keep ? &ids_bytes : NULL);
        if (keep)
            ids_hot[i] = t;
        req_ids(&b, cold_w, ids, n, first, 0);
        t = bus_timed(c, &b, NULL);
        if (keep)
            ids_cold[i] = t;
        req_ids(&b, hot_w, ids, n, first, 1);
        t = bus_timed(c, &b, keep ? &slim_bytes : NULL);
        if (keep)
            slim[i] = t;
        double sum = 0;
        for (size_t j = 0; j < B_PAGE; j++) {
            req_one(&b, hot_w, ids[(first + j) % n]);
            t = bus_timed(c, &b, NULL);
            sum += t;
            if (keep)
                single[i * B_PAGE + j] = t;
        }
        if (keep)
            one_hot[i] = sum;
        sum = 0;
        for (size_t j = 0; j < B_PAGE; j++) {
            req_one(&b, cold_w, ids[(first + j) % n]);
            sum += bus_timed(c, &b, NULL);
        }
        if (keep)
            one_cold[i] = sum;
        t = bus_timed(c, &wb, keep ? &where_bytes : NULL);
        if (keep)
            where[i] = t;
    }
    json_t *hot1 = bus_lru(c, hot_w), *cold1 = bus_lru(c, cold_w);
    printf(
        "{\"bus_pages\":%d,\"bus_page_ids\":%d,\"bus_ids_hot_p50_us\":%.1f,"
        "\"bus_ids_hot_p99_us\":%.1f,\"bus_ids_cold_p50_us\":%.1f,\"bus_ids_cold_p99_us\":%.1f,"
        "\"bus_ids_reply_bytes\":%zu,\"bus_one20_hot_p50_us\":%.1f,\"bus_one20_hot_p99_us\":%.1f,"
        "\"bus_one20_cold_p50_us\":%.1f,\"bus_one20_cold_p99_us\":%.1f,"
        "\"bus_one_hot_p50_us\":%.1f,\"bus_one_hot_p99_us\":%.1f,"
        "\"bus_slim_p50_us\":%.1f,\"bus_slim_p99_us\":%.1f,\"bus_slim_reply_bytes\":%zu,"
        "\"bus_where_p50_us\":%.1f,\"bus_where_p99_us\":%.1f,\"bus_where_reply_bytes\":%zu,"
        "\"bus_hot_lru_hits\":%llu,\"bus_hot_lru_misses\":%llu,"
        "\"bus_cold_lru_hits\":%llu,\"bus_cold_lru_misses\":%llu}\n",
        B_ITER, B_PAGE, pct(ids_hot, B_ITER, 0.5), pct(ids_hot, B_ITER, 0.99),
        pct(ids_cold, B_ITER, 0.5), pct(ids_cold, B_ITER, 0.99), ids_bytes / B_ITER,
        pct(one_hot, B_ITER, 0.5), pct(one_hot, B_ITER, 0.99), pct(one_cold, B_ITER, 0.5),
        pct(one_cold, B_ITER, 0.99), pct(single, B_ITER * B_PAGE, 0.5),
        pct(single, B_ITER * B_PAGE, 0.99), pct(slim, B_ITER, 0.5), pct(slim, B_ITER, 0.99),
        slim_bytes / B_ITER, pct(where, B_ITER, 0.5), pct(where, B_ITER, 0.99),
        where_bytes / B_ITER, lru_count(hot1, "hits") - lru_count(hot0, "hits"),
        lru_count(hot1, "misses") - lru_count(hot0, "misses"),
        lru_count(cold1, "hits") - lru_count(cold0, "hits"),
        lru_count(cold1, "misses") - lru_count(cold0, "misses"));
    json_decref(hot0);
    json_decref(hot1);
    json_decref(cold0);
    json_decref(cold1);
    base_buf_free(&b);
    base_buf_free(&wb);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    bus_client_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "index") == 0)
        return mode_index(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "jansson") == 0)
        return mode_jansson(argc - 2, argv + 2);
    if (argc == 4 && strcmp(argv[1], "latency") == 0)
        return mode_latency(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "bus") == 0)
        return mode_bus(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: catalog-bench index OUTDIR... | jansson FILE... | "
                    "latency COMP_OUTDIR AUTO_OUTDIR | bus RUNDIR HOT_WORKER COLD_WORKER\n");
    return 2;
}
