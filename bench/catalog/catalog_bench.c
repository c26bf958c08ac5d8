/*
 * catalog-bench: the in-process figures of bench/catalog/run.
 *
 *   catalog-bench index OUTDIR...     resident and heap growth of holding the
 *                                     indexes of OUTDIR/current (LRU empty)
 *   catalog-bench jansson FILE...     resident growth of json_load_file of each
 *   catalog-bench latency COMP AUTO   get hot/cold, list of one section, search
 *
 * Each mode prints one JSON object. Resident figures come from VmRSS in
 * /proc/self/status, heap from mallinfo2 (in use), both after malloc_trim
 * (what herdd does after a large free).
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/catalog.h"

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

/* ---- latency --------------------------------------------------------------------- */

struct lat {
    uv_loop_t *loop;
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
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

static int mode_latency(const char *comp_dir, const char *auto_dir)
{
    uv_loop_t *loop = uv_default_loop();
    catalog_index *comp = load(comp_dir), *au = load(auto_dir);
    catalog_reader *r;
    if (catalog_reader_new(loop, CATALOG_LRU_ENTRIES_DEFAULT, CATALOG_LRU_BYTES_DEFAULT, &r) < 0)
        return 1;
    char **ids;
    size_t n = section_ids(comp, "components", &ids);
    enum { COLD = 2000, HOT = 20000, REPS = 200 };
    static double cold[COLD], hot[HOT], list[REPS], search[REPS];

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

    /* list every component; search a common word over both catalogs */
    size_t list_total = 0, search_total = 0, list_bytes = 0;
    for (size_t i = 0; i < REPS; i++) {
        catalog_query q = {.section = "components", .limit = 100000};
        base_buf b = {0};
        double t0 = now_us();
        catalog_index_list(comp, &q, &b, NULL, 0);
        list[i] = now_us() - t0;
        list_bytes = b.len;
        base_buf_free(&b);
        catalog_query s = {.q = "Temperature", .limit = 50};
        t0 = now_us();
        catalog_index_search(comp, &s, &b, NULL, 0);
        base_buf tmp = {0};
        catalog_index_search(au, &s, &tmp, NULL, 0);
        search[i] = now_us() - t0;
        if (i == 0) {
            json_t *j = json_loadb(b.data, b.len, 0, NULL);
            json_t *k = json_loadb(tmp.data, tmp.len, 0, NULL);
            search_total = (size_t)(json_integer_value(json_object_get(j, "total")) +
                                    json_integer_value(json_object_get(k, "total")));
            json_decref(j);
            json_decref(k);
            list_total = n;
        }
        base_buf_free(&b);
        base_buf_free(&tmp);
    }
    printf("{\"get_hot_p50_us\":%.1f,\"get_hot_p99_us\":%.1f,\"get_cold_p50_us\":%.1f,"
           "\"get_cold_p99_us\":%.1f,\"lru_hits\":%llu,\"list_entries\":%zu,\"list_bytes\":%zu,"
           "\"list_p50_us\":%.1f,\"search_hits\":%zu,\"search_p50_us\":%.1f}\n",
           pct(hot, HOT, 0.5), pct(hot, HOT, 0.99), pct(cold, COLD, 0.5), pct(cold, COLD, 0.99),
           (unsigned long long)st.hits, list_total, list_bytes, pct(list, REPS, 0.5), search_total,
           pct(search, REPS, 0.5));
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    catalog_reader_close(r, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    catalog_index_free(comp);
    catalog_index_free(au);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "index") == 0)
        return mode_index(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "jansson") == 0)
        return mode_jansson(argc - 2, argv + 2);
    if (argc == 4 && strcmp(argv[1], "latency") == 0)
        return mode_latency(argv[2], argv[3]);
    fprintf(stderr, "usage: catalog-bench index OUTDIR... | jansson FILE... | "
                    "latency COMP_OUTDIR AUTO_OUTDIR\n");
    return 2;
}
