/* The body reader: LRU bounds, hit/miss counting, oversize bodies, swaps, close. */
#include "catalog/internal.h"

#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char tmp_root[PATH_MAX];
static char vdir[PATH_MAX + 16];

#define BODY_PAD 1000
#define BIG_PAD 20000

/* Ten entries b0..b9 with ~1 KB bodies, and "big" with a ~20 KB body. */
static int setup(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 64], in[PATH_MAX], out[PATH_MAX], err[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", tmp_root, tmp_root);
    if (system(cmd) != 0)
        return -1;
    snprintf(in, sizeof(in), "%s/in.json", tmp_root);
    snprintf(out, sizeof(out), "%s/out", tmp_root);
    FILE *f = fopen(in, "w");
    if (f == NULL)
        return -1;
    fputs("{\"s\":[", f);
    for (int i = 0; i < 10; i++)
        fprintf(f, "%s{\"id\":\"b%d\",\"pad\":\"%0*d\"}", i ? "," : "", i, BODY_PAD, i);
    fprintf(f, ",{\"id\":\"big\",\"pad\":\"%0*d\"}]}", BIG_PAD, 7);
    fclose(f);
    catalog_build_result res;
    if (catalog_build(in, NULL, out, &res, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(vdir, sizeof(vdir), "%s/current", out);
    return 0;
}

struct result {
    int done;
    int status;
    char *body;
    size_t len;
};

static void on_body(int status, const char *body, size_t len, void *data)
{
    struct result *r = data;
    r->done++;
    r->status = status;
    free(r->body);
    r->body = NULL;
    r->len = len;
    if (body != NULL) {
        r->body = malloc(len + 1);
        memcpy(r->body, body, len);
        r->body[len] = '\0';
    }
}

static size_t body_size(const char *id)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/bodies/s/%s.json", vdir, id);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (size_t)st.st_size;
}

/* Gets one body and runs the loop until the callback ran; checks the bytes. */
static void get_one(uv_loop_t *loop, catalog_reader *r, catalog_index *idx, const char *id)
{
    struct result res = {0};
    assert_int_equal(catalog_get(r, idx, "s", id, on_body, &res), 0);
    assert_int_equal(res.done, 0); /* never from inside catalog_get */
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(res.done, 1);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.len, body_size(id));
    char want[64];
    snprintf(want, sizeof(want), "{\"id\":\"%s\",\"pad\":\"", id);
    assert_memory_equal(res.body, want, strlen(want));
    free(res.body);
}

static void on_closed_flag(void *data)
{
    *(int *)data = 1;
}

static void close_reader(uv_loop_t *loop, catalog_reader *r)
{
    int closed = 0;
    catalog_reader_close(r, on_closed_flag, &closed);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
}

static void test_lru_entries_bound(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    catalog_index *idx;
    char err[512];
    assert_int_equal(catalog_index_load(vdir, &idx, err, sizeof(err)), 0);
    catalog_reader *r;
    assert_int_equal(catalog_reader_new(&loop, 3, 1 << 20, &r), 0);
    catalog_lru_stats st;

    get_one(&loop, r, idx, "b0");
    get_one(&loop, r, idx, "b1");
    get_one(&loop, r, idx, "b2");
    catalog_reader_stats(r, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.misses, 3);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.bytes, body_size("b0") + body_size("b1") + body_size("b2"));

    get_one(&loop, r, idx, "b0"); /* hit: b0 becomes most recent */
    catalog_reader_stats(r, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 3);

    get_one(&loop, r, idx, "b3"); /* evicts b1, the least recent */
    catalog_reader_stats(r, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.misses, 4);
    get_one(&loop, r, idx, "b0");
    get_one(&loop, r, idx, "b2");
    get_one(&loop, r, idx, "b3");
    catalog_reader_stats(r, &st);
    assert_int_equal(st.hits, 4);
    assert_int_equal(st.misses, 4);
    get_one(&loop, r, idx, "b1");
    catalog_reader_stats(r, &st);
    assert_int_equal(st.misses, 5);
    assert_int_equal(st.entries, 3);

    catalog_reader_clear(r);
    catalog_reader_stats(r, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);

    int closed = 0;
    catalog_reader_close(r, on_closed_flag, &closed);
    catalog_reader_close(r, on_closed_flag, &closed); /* twice: harmless */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    catalog_index_free(idx);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_lru_bytes_bound_and_oversize(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    catalog_index *idx;
    char err[512];
    assert_int_equal(catalog_index_load(vdir, &idx, err, sizeof(err)), 0);
    size_t one = body_size("b0");
    catalog_reader *r;
    assert_int_equal(catalog_reader_new(&loop, 64, 2 * one + one / 2, &r), 0);
    catalog_lru_stats st;

    get_one(&loop, r, idx, "b0");
    get_one(&loop, r, idx, "b1");
    get_one(&loop, r, idx, "b2");
    catalog_reader_stats(r, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.bytes, 2 * one);
    get_one(&loop, r, idx, "b0"); /* evicted by the bytes bound */
    catalog_reader_stats(r, &st);
    assert_int_equal(st.misses, 4);
    assert_int_equal(st.hits, 0);

    /* larger than lru_bytes: served whole, not cached, nothing evicted */
    get_one(&loop, r, idx, "big");
    assert_true(body_size("big") > 2 * one + one / 2);
    get_one(&loop, r, idx, "big");
    catalog_reader_stats(r, &st);
    assert_int_equal(st.misses, 6);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.bytes, 2 * one);
    get_one(&loop, r, idx, "b0"); /* still cached */
    catalog_reader_stats(r, &st);
    assert_int_equal(st.hits, 1);

    close_reader(&loop, r);
    catalog_index_free(idx);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_errors_concurrency_and_swap(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    catalog_index *idx;
    char err[512];
    assert_int_equal(catalog_index_load(vdir, &idx, err, sizeof(err)), 0);
    catalog_reader *r;
    assert_int_equal(catalog_reader_new(&loop, 0, 0, &r), 0); /* no caching */

    struct result res[4] = {{0}};
    assert_int_equal(catalog_get(r, idx, "s", "nope", on_body, &res[0]), -ENOENT);
    assert_int_equal(catalog_get(r, idx, "t", "b0", on_body, &res[0]), -ENOENT);

    /* four concurrent gets of one body, and the index released mid-request:
     * each request holds its own reference, so all finish on that version */
    catalog_index *mine = catalog_index_ref(idx);
    for (int i = 0; i < 4; i++)
        assert_int_equal(catalog_get(r, mine, NULL, "b5", on_body, &res[i]), 0);
    catalog_index_free(mine);
    catalog_index_free(idx);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(res[i].done, 1);
        assert_int_equal(res[i].status, 0);
        assert_int_equal(res[i].len, body_size("b5"));
        free(res[i].body);
        res[i].body = NULL;
    }
    catalog_lru_stats st;
    catalog_reader_stats(r, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.misses, 4);

    /* a body file gone from disk: -ENOENT through the callback */
    assert_int_equal(catalog_index_load(vdir, &idx, err, sizeof(err)), 0);
    char p[PATH_MAX + 64], saved[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/bodies/s/b9.json", vdir);
    snprintf(saved, sizeof(saved), "%s/b9.saved", tmp_root);
    assert_int_equal(rename(p, saved), 0);
    struct result gone = {0};
    assert_int_equal(catalog_get(r, idx, "s", "b9", on_body, &gone), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(rename(saved, p), 0);
    assert_int_equal(gone.done, 1);
    assert_int_equal(gone.status, -ENOENT);

    /* close with gets in flight: each callback runs exactly once */
    struct result fl[8] = {{0}};
    for (int i = 0; i < 8; i++)
        assert_int_equal(catalog_get(r, idx, "s", "b1", on_body, &fl[i]), 0);
    int closed = 0;
    catalog_reader_close(r, on_closed_flag, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(fl[i].done, 1);
        assert_true(fl[i].status == 0 || fl[i].status == -ECANCELED);
        free(fl[i].body);
    }
    catalog_index_free(idx);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A callback may get again (the second is a hit) and may clear the cache. */
struct chain {
    catalog_reader *r;
    catalog_index *idx;
    int step;
    size_t first_len;
};

static void on_chain(int status, const char *body, size_t len, void *data)
{
    struct chain *c = data;
    assert_int_equal(status, 0);
    if (c->step++ == 0) {
        c->first_len = len;
        assert_int_equal(catalog_get(c->r, c->idx, "s", "b2", on_chain, c), 0);
    } else {
        catalog_reader_clear(c->r); /* drops the node being delivered */
        assert_int_equal(len, c->first_len);
        assert_memory_equal(body, "{\"id\":\"b2\"", 10); /* still readable */
    }
}

static void test_reentry(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    catalog_index *idx;
    char err[512];
    assert_int_equal(catalog_index_load(vdir, &idx, err, sizeof(err)), 0);
    catalog_reader *r;
    assert_int_equal(
        catalog_reader_new(&loop, CATALOG_LRU_ENTRIES_DEFAULT, CATALOG_LRU_BYTES_DEFAULT, &r), 0);
    struct chain c = {.r = r, .idx = idx};
    assert_int_equal(catalog_get(r, idx, "s", "b2", on_chain, &c), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.step, 2);
    catalog_lru_stats st;
    catalog_reader_stats(r, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.entries, 0);
    close_reader(&loop, r);
    catalog_index_free(idx);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const char *t = getenv("HERD_TEST_TMP");
    snprintf(tmp_root, sizeof(tmp_root), "%s/catalog-reader", t != NULL ? t : "/tmp");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru_entries_bound),
        cmocka_unit_test(test_lru_bytes_bound_and_oversize),
        cmocka_unit_test(test_errors_concurrency_and_swap),
        cmocka_unit_test(test_reentry),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
