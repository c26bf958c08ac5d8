/* The service: start errors, swaps, refusal of a corrupt version, close. */
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

#include "tests/unit/catalog_support.h"

struct events {
    int started, start_status;
    char start_error[1024];
    int reloaded;
    char version[64];
    size_t entries;
    int refused;
    char refused_version[64];
    int closed;
};

static void on_started(catalog_service *svc, int status, const char *error, void *data)
{
    struct events *ev = data;
    ev->started++;
    ev->start_status = status;
    snprintf(ev->start_error, sizeof(ev->start_error), "%s", error != NULL ? error : "");
}

static void on_reloaded(catalog_service *svc, const char *version, size_t entries, void *data)
{
    struct events *ev = data;
    ev->reloaded++;
    snprintf(ev->version, sizeof(ev->version), "%s", version);
    ev->entries = entries;
}

static void on_refused(catalog_service *svc, const char *version, const char *error, void *data)
{
    struct events *ev = data;
    ev->refused++;
    snprintf(ev->refused_version, sizeof(ev->refused_version), "%s", version);
}

static void on_closed(void *data)
{
    ((struct events *)data)->closed = 1;
}

static void run_until(uv_loop_t *loop, const int *flag, int want, uint64_t timeout_ms)
{
    uv_update_time(loop);
    uint64_t deadline = uv_now(loop) + timeout_ms;
    while (*flag < want && uv_now(loop) < deadline) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

static void build(const char *dir, const char *outdir, const char *text, catalog_build_result *res)
{
    char in[PATH_MAX], err[512];
    snprintf(in, sizeof(in), "%s/in.json", dir);
    write_text(in, text);
    int rc = catalog_build(in, NULL, outdir, res, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
}

static catalog_service *start(uv_loop_t *loop, const char *outdir, struct events *ev)
{
    catalog_service_options o = {
        .path = outdir,
        .poll_ms = 50,
        .on_started = on_started,
        .on_reloaded = on_reloaded,
        .on_refused = on_refused,
        .data = ev,
    };
    catalog_service *svc;
    assert_int_equal(catalog_service_new(loop, &o, &svc), 0);
    assert_int_equal(catalog_service_start(svc), 0);
    assert_int_equal(catalog_service_start(svc), 0); /* twice: harmless */
    run_until(loop, &ev->started, 1, 10000);
    assert_int_equal(ev->started, 1);
    return svc;
}

static void close_service(uv_loop_t *loop, catalog_service *svc, struct events *ev)
{
    catalog_service_close(svc, on_closed, ev);
    catalog_service_close(svc, on_closed, ev); /* twice: harmless */
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(ev->closed, 1);
}

static void test_start_errors(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char dir[PATH_MAX], out[PATH_MAX], want[PATH_MAX + 128];
    snprintf(dir, sizeof(dir), "%s/start-errors", tmp_root);
    sh("rm -rf '%s' && mkdir -p '%s'", dir, dir);

    /* missing OUTDIR */
    struct events ev = {0};
    snprintf(out, sizeof(out), "%s/missing", dir);
    catalog_service *svc = start(&loop, out, &ev);
    assert_int_equal(ev.start_status, -ENOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", out);
    assert_string_equal(ev.start_error, want);
    assert_string_equal(catalog_service_last_error(svc), want);
    assert_null(catalog_service_index(svc));
    assert_int_equal(catalog_service_get(svc, NULL, "x", NULL, NULL), -EAGAIN);
    close_service(&loop, svc, &ev);

    /* empty OUTDIR */
    memset(&ev, 0, sizeof(ev));
    snprintf(out, sizeof(out), "%s/empty", dir);
    sh("mkdir -p '%s'", out);
    svc = start(&loop, out, &ev);
    assert_int_equal(ev.start_status, -ENOENT);
    snprintf(want, sizeof(want), "%s/current: No such file or directory (no catalog built here?)",
             out);
    assert_string_equal(ev.start_error, want);
    json_t *h = json_object();
    assert_int_equal(catalog_service_health(svc, h), 0);
    assert_true(json_is_null(json_object_get(h, "version")));
    assert_string_equal(json_string_value(json_object_get(h, "last_error")), want);
    json_decref(h);
    close_service(&loop, svc, &ev);

    /* corrupt: a body missing from the current version */
    memset(&ev, 0, sizeof(ev));
    snprintf(out, sizeof(out), "%s/corrupt", dir);
    catalog_build_result res;
    build(dir, out, "{\"s\":[{\"id\":\"a\"},{\"id\":\"b\"}]}", &res);
    sh("rm '%s/%s/bodies/s/b.json'", out, res.version);
    svc = start(&loop, out, &ev);
    assert_int_equal(ev.start_status, -EINVAL);
    snprintf(want, sizeof(want), "%s/%s: bodies/s/b.json: No such file or directory", out,
             res.version);
    assert_string_equal(ev.start_error, want);
    close_service(&loop, svc, &ev);

    /* corrupt: index.json damaged */
    memset(&ev, 0, sizeof(ev));
    build(dir, out, "{\"s\":[{\"id\":\"a\"}]}", &res);
    sh("printf '{\"format\":1,' > '%s/%s/index.json'", out, res.version);
    svc = start(&loop, out, &ev);
    assert_int_equal(ev.start_status, -EINVAL);
    if (strstr(ev.start_error,
               "index.json: invalid JSON at line 1 column 13: unexpected end of input") == NULL)
        fail_msg("%s", ev.start_error);
    close_service(&loop, svc, &ev);

    /* a tampered body: the manifest no longer matches */
    memset(&ev, 0, sizeof(ev));
    build(dir, out, "{\"s\":[{\"id\":\"a\",\"v\":1}]}", &res);
    sh("printf '{\"id\":\"a\",\"v\":2}' > '%s/%s/bodies/s/a.json'", out, res.version);
    svc = start(&loop, out, &ev);
    assert_int_equal(ev.start_status, -EINVAL);
    assert_non_null(strstr(ev.start_error, "manifest mismatch"));
    close_service(&loop, svc, &ev);

    assert_int_equal(uv_loop_close(&loop), 0);
}

struct got {
    int done, status;
    char body[256];
};

static void on_body(int status, const char *body, size_t len, void *data)
{
    struct got *g = data;
    g->done++;
    g->status = status;
    snprintf(g->body, sizeof(g->body), "%.*s", (int)len, body != NULL ? body : "");
}

static void test_swap_and_refuse(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char dir[PATH_MAX], out[PATH_MAX], other[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/swap", tmp_root);
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(other, sizeof(other), "%s/other", dir);
    sh("rm -rf '%s' && mkdir -p '%s'", dir, dir);
    catalog_build_result a, b, c, d;
    build(dir, out, "{\"s\":[{\"id\":\"a\",\"v\":1}]}", &a);

    struct events ev = {0};
    catalog_service *svc = start(&loop, out, &ev);
    assert_int_equal(ev.start_status, 0);
    assert_string_equal(catalog_index_get_info(catalog_service_index(svc)).version, a.version);
    struct got g = {0};
    assert_int_equal(catalog_service_get(svc, "s", "a", on_body, &g), 0);
    run_until(&loop, &g.done, 1, 5000);
    assert_string_equal(g.body, "{\"id\":\"a\",\"v\":1}");

    /* a new version is picked up and swapped in */
    build(dir, out, "{\"s\":[{\"id\":\"a\",\"v\":2},{\"id\":\"b\"}]}", &b);
    run_until(&loop, &ev.reloaded, 1, 10000);
    assert_int_equal(ev.reloaded, 1);
    assert_string_equal(ev.version, b.version);
    assert_int_equal(ev.entries, 2);
    assert_string_equal(catalog_index_get_info(catalog_service_index(svc)).version, b.version);
    memset(&g, 0, sizeof(g));
    assert_int_equal(catalog_service_get(svc, NULL, "a", on_body, &g), 0);
    run_until(&loop, &g.done, 1, 5000);
    assert_string_equal(g.body, "{\"id\":\"a\",\"v\":2}");

    /* a fresh version dir with a body deleted, flipped in by hand: refused */
    build(dir, other, "{\"s\":[{\"id\":\"a\",\"v\":3},{\"id\":\"c\"}]}", &c);
    sh("cp -a '%s/%s' '%s/' && rm '%s/%s/bodies/s/c.json' && ln -s '%s' '%s/.tmp-l' && "
       "mv -T '%s/.tmp-l' '%s/current'",
       other, c.version, out, out, c.version, c.version, out, out, out);
    run_until(&loop, &ev.refused, 1, 10000);
    assert_int_equal(ev.refused, 1);
    assert_string_equal(ev.refused_version, c.version);
    assert_non_null(strstr(catalog_service_last_error(svc), "bodies/s/c.json: No such file"));
    assert_string_equal(catalog_index_get_info(catalog_service_index(svc)).version, b.version);
    /* the old version keeps serving */
    memset(&g, 0, sizeof(g));
    assert_int_equal(catalog_service_get(svc, "s", "b", on_body, &g), 0);
    run_until(&loop, &g.done, 1, 5000);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.body, "{\"id\":\"b\"}");
    json_t *h = json_object();
    assert_int_equal(catalog_service_health(svc, h), 0);
    assert_string_equal(json_string_value(json_object_get(h, "version")), b.version);
    assert_int_equal(json_integer_value(json_object_get(h, "entries")), 2);
    assert_true(json_integer_value(json_object_get(h, "index_bytes")) > 0);
    assert_non_null(strstr(json_string_value(json_object_get(h, "last_error")), "c.json"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "lru"), "hits")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "lru"), "misses")), 3);
    json_decref(h);
    /* not re-validated on every tick while the link stays put */
    int never = 0;
    run_until(&loop, &never, 1, 400);
    assert_int_equal(ev.refused, 1);

    /* the next good build is taken, and clears last_error */
    build(dir, out, "{\"s\":[{\"id\":\"d\"}]}", &d);
    run_until(&loop, &ev.reloaded, 2, 10000);
    assert_int_equal(ev.reloaded, 2);
    assert_string_equal(ev.version, d.version);
    assert_null(catalog_service_last_error(svc));

    close_service(&loop, svc, &ev);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/*
 * A get whose version was removed from disk under it (the service is more
 * than one version behind: the compiler keeps only the previous one) is
 * retried once on what `current` names after a check; a body gone for real
 * fails after that one retry instead of looping.
 */
static void test_get_retried_after_removal(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char dir[PATH_MAX], out[PATH_MAX], p[2 * PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/retry", tmp_root);
    snprintf(out, sizeof(out), "%s/out", dir);
    sh("rm -rf '%s' && mkdir -p '%s'", dir, dir);
    catalog_build_result a, b, c;
    build(dir, out, "{\"s\":[{\"id\":\"x\",\"v\":1}]}", &a);
    struct events ev = {0};
    catalog_service *svc = start(&loop, out, &ev);
    assert_string_equal(catalog_index_get_info(catalog_service_index(svc)).version, a.version);

    /* one build: the served version stays on disk, reads need no retry */
    build(dir, out, "{\"s\":[{\"id\":\"x\",\"v\":2}]}", &b);
    snprintf(p, sizeof(p), "%s/%s/bodies/s/x.json", out, a.version);
    assert_int_equal(access(p, R_OK), 0);
    /* a second one before the service looked: a's files are gone */
    build(dir, out, "{\"s\":[{\"id\":\"x\",\"v\":3}]}", &c);
    assert_int_equal(access(p, F_OK), -1);
    assert_string_equal(catalog_index_get_info(catalog_service_index(svc)).version, a.version);
    struct got g = {0};
    assert_int_equal(catalog_service_get(svc, "s", "x", on_body, &g), 0);
    run_until(&loop, &g.done, 1, 10000);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.body, "{\"id\":\"x\",\"v\":3}");
    assert_string_equal(catalog_index_get_info(catalog_service_index(svc)).version, c.version);

    /* a body deleted from the version being served: one retry, then -ENOENT */
    snprintf(p, sizeof(p), "%s/%s/bodies/s/x.json", out, c.version);
    assert_int_equal(unlink(p), 0);
    catalog_reader_clear(catalog_service_reader(svc)); /* not from the cache */
    memset(&g, 0, sizeof(g));
    assert_int_equal(catalog_service_get(svc, "s", "x", on_body, &g), 0);
    run_until(&loop, &g.done, 1, 10000);
    assert_int_equal(g.done, 1);
    assert_int_equal(g.status, -ENOENT);

    close_service(&loop, svc, &ev);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Closing while the first load is still on the thread pool. */
static void test_close_during_load(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char dir[PATH_MAX], out[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/close-early", tmp_root);
    snprintf(out, sizeof(out), "%s/out", dir);
    sh("rm -rf '%s' && mkdir -p '%s'", dir, dir);
    catalog_build_result a;
    build(dir, out, "{\"s\":[{\"id\":\"a\"}]}", &a);
    struct events ev = {0};
    catalog_service_options o = {.path = out, .on_started = on_started, .data = &ev};
    catalog_service *svc;
    assert_int_equal(catalog_service_new(&loop, &o, &svc), 0);
    assert_int_equal(catalog_service_start(svc), 0);
    catalog_service_close(svc, on_closed, &ev);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ev.closed, 1);
    assert_int_equal(ev.started, 0); /* no callback after close */
    /* never started: close only */
    memset(&ev, 0, sizeof(ev));
    assert_int_equal(catalog_service_new(&loop, &o, &svc), 0);
    catalog_service_close(svc, on_closed, &ev);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ev.closed, 1);
    catalog_service_close(NULL, NULL, NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const char *t = getenv("HERD_TEST_TMP");
    snprintf(tmp_root, sizeof(tmp_root), "%s/catalog-service", t != NULL ? t : "/tmp");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_swap_and_refuse),
        cmocka_unit_test(test_close_during_load),
        cmocka_unit_test(test_get_retried_after_removal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
