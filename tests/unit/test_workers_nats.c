/*
 * The nats kind (workers/nats.c) without a NATS server: config refusals
 * from a table; start refusing credentials files that are missing, empty
 * or readable by every user (naming the file); and a bridge whose server
 * never answers: it keeps the newest queue_max exported events, counts the
 * rest dropped and `fleet.*` ignored, reports itself disconnected under its
 * host, and stops cleanly while libnats is still retrying (the loop closes
 * with nothing left). The bridge with a server is tested by
 * tests/integration/nats_*.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "workers/worker.h"

#define U "\"url\": \"nats://127.0.0.1:4222\""

static const struct {
    const char *cfg;
    const char *want; /* part of the message; NULL: accepted */
} cases[] = {
    {"{" U ", \"export\": [\">\"]}", NULL},
    {"{" U "}", NULL}, /* requests alone */
    {"{\"url\": [\"nats://a:1\", \"tls://b\", \"nats://[::1]:4222\"], \"ca_file\": \"/ca.pem\", "
     "\"token_file\": \"/t\", \"host\": \"edge-1\", \"export\": [\"a.*\", \"b.>\"], \"import\": "
     "[\"fleet.edge-1.>\", \"fleet.all.>\"], \"requests\": false, \"queue_max\": 10}",
     NULL},
    {"{" U ", \"user\": \"herd\", \"password_file\": \"/p\"}", NULL},
    {"{" U ", \"creds_file\": \"/c.creds\"}", NULL},
    {"{\"export\": [\">\"]}", "w.url: required"},
    {"{\"url\": \"http://h:1\"}", "w.url: \"http://h:1\": expected a nats:// or tls:// URL"},
    {"{\"url\": \"nats://user:pw@h:1\"}", "credentials in the URL are refused"},
    {"{\"url\": \"nats://h:0\"}", "bad port"},
    {"{\"url\": \"nats://h:99999\"}", "bad port"},
    {"{\"url\": \"nats://\"}", "no host"},
    {"{\"url\": \"nats://h/x\"}", "no path"},
    {"{\"url\": \"nats://a,b\"}", "commas"},
    {"{\"url\": []}", "w.url: expected a nats:// or tls:// URL or a list"},
    {"{\"url\": [\"nats://a\", 5]}", "w.url[1]: 5: expected"},
    {"{" U ", \"token_file\": \"\"}", "w.token_file: expected the path of a file"},
    {"{" U ", \"token\": \"secret\"}", "w.token: unknown key"},
    {"{" U ", \"password\": \"secret\"}", "w.password: unknown key"},
    {"{" U ", \"user\": \"u\"}", "w.password_file: required with user"},
    {"{" U ", \"password_file\": \"/p\"}", "w.user: required with password_file"},
    {"{" U ", \"token_file\": \"/t\", \"creds_file\": \"/c\"}", "not several"},
    {"{" U ", \"ca_file\": \"/ca.pem\"}", "w.ca_file: only used with a tls:// url"},
    {"{" U ", \"host\": \"a.b\"}", "w.host: expected one topic token"},
    {"{" U ", \"host\": \"all\"}", "not \"all\""},
    {"{" U ", \"export\": \">\"}", "w.export: expected an array"},
    {"{" U ", \"export\": [\"a..b\"]}", "w.export[0]: not a subject pattern"},
    {"{" U ", \"import\": [\">.a\"]}", "w.import[0]: not a subject pattern"},
    {"{" U ", \"requests\": 1}", "w.requests: expected true or false"},
    {"{" U ", \"queue_max\": 0}", "w.queue_max: expected an integer from 1"},
    {"{" U ", \"requests\": false}", "w: nothing to bridge"},
};

static void test_validate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *cfg = json_loads(cases[i].cfg, 0, &jerr);
        char err[512] = "";
        if (cfg == NULL)
            fail_msg("case %zu: %s", i, jerr.text);
        int rv = worker_nats_kind.validate(cfg, "w", err, sizeof(err));
        if (cases[i].want == NULL && rv != 0)
            fail_msg("case %zu refused: %s", i, err);
        if (cases[i].want != NULL && (rv != -EINVAL || strstr(err, cases[i].want) == NULL))
            fail_msg("case %zu: rv %d, message \"%s\", expected \"%s\"", i, rv, err, cases[i].want);
        json_decref(cfg);
    }
}

/* ---- a bridge on an in-process bus ---------------------------------------------- */

typedef struct rig {
    uv_loop_t loop;
    uv_timer_t tick;
    bus *b;
    worker *w;
    char dir[256];
    int stopped, ended;
} rig;

static void on_ended(worker *w, int code, const char *error, void *data)
{
    (void)w;
    (void)code;
    (void)error;
    ((rig *)data)->ended++;
}

static void on_stopped(worker *w, void *data)
{
    (void)w;
    ((rig *)data)->stopped++;
}

static void on_log(worker *w, enum base_log_level level, const char *msg, void *data)
{
    (void)w;
    (void)level;
    (void)msg;
    (void)data;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void rig_init(rig *r)
{
    const char *tmp = getenv("HERD_TEST_TMP");
    bus_config bc = {.no_sockets = 1};
    char err[256];

    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "%s/nats.XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(r->dir));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(bus_open(&r->loop, &bc, &r->b, err, sizeof(err)), 0);
    uv_timer_init(&r->loop, &r->tick);
    uv_timer_start(&r->tick, on_tick, 5, 5);
}

/* rig_start starts a bridge of config text (JSON); 0 or the start's
 * error, its message in err. */
static int rig_start(rig *r, const char *text, char *err, size_t err_size)
{
    static const worker_host host_template = {on_ended, on_stopped, on_log, NULL};
    worker_host host = host_template;
    json_error_t jerr;
    json_t *cfg = json_loads(text, 0, &jerr);

    if (cfg == NULL)
        fail_msg("%s: %s", text, jerr.text);
    if (worker_nats_kind.validate(cfg, "w", err, err_size) != 0)
        fail_msg("%s refused: %s", text, err);
    host.data = r;
    worker_params p = {
        .kind = &worker_nats_kind,
        .name = "nb",
        .config = cfg,
        .loop = &r->loop,
        .bus = r->b,
        .state_dir = r->dir,
        .runtime_dir = r->dir,
        .host_name = "edge9",
        .host = &host,
    };
    assert_int_equal(worker_new(&p, &r->w), 0);
    json_decref(cfg);
    int rv = worker_start(r->w, err, err_size);
    if (rv < 0) {
        worker_free(r->w);
        r->w = NULL;
    }
    return rv;
}

static void rig_close(rig *r)
{
    char cmd[600];
    if (r->w != NULL) {
        worker_stop(r->w);
        uint64_t end = now_ms() + 10000;
        while (r->stopped == 0 && now_ms() < end)
            uv_run(&r->loop, UV_RUN_ONCE);
        assert_int_equal(r->stopped, 1);
        worker_free(r->w);
    }
    uv_close((uv_handle_t *)&r->tick, NULL);
    bus_close(r->b, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
}

static json_t *field(rig *r, const char *name)
{
    json_t *h = json_object(), *v;
    worker_health_fields(r->w, h);
    v = json_incref(json_object_get(h, name));
    json_decref(h);
    return v;
}

static json_int_t ifield(rig *r, const char *name)
{
    json_t *v = field(r, name);
    json_int_t n = json_is_integer(v)   ? json_integer_value(v)
                   : json_is_boolean(v) ? json_is_true(v)
                                        : -1;
    json_decref(v);
    return n;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_credentials(void **state)
{
    rig r;
    char text[1024], err[512], path[300];
    (void)state;

    rig_init(&r);
    snprintf(text, sizeof(text), "{" U ", \"token_file\": \"%s/missing\"}", r.dir);
    assert_true(rig_start(&r, text, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "token_file"));
    assert_non_null(strstr(err, "/missing\": No such file"));

    snprintf(path, sizeof(path), "%s/open", r.dir);
    write_file(path, "s3cret\n", 0644);
    snprintf(text, sizeof(text), "{" U ", \"user\": \"u\", \"password_file\": \"%s\"}", path);
    assert_true(rig_start(&r, text, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "readable or writable by every user (mode 0644)"));
    assert_non_null(strstr(err, path));
    assert_null(strstr(err, "s3cret"));

    snprintf(path, sizeof(path), "%s/empty", r.dir);
    write_file(path, "\n", 0600);
    snprintf(text, sizeof(text), "{" U ", \"token_file\": \"%s\"}", path);
    assert_true(rig_start(&r, text, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "empty or not text"));

    snprintf(path, sizeof(path), "%s/creds", r.dir);
    write_file(path, "x", 0666);
    snprintf(text, sizeof(text), "{" U ", \"creds_file\": \"%s\"}", path);
    assert_true(rig_start(&r, text, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "creds_file"));
    rig_close(&r);
}

/* A server that never answers (a port nobody listens on): events are held,
 * the newest queue_max of them, and stop does not wait for libnats. */
static void test_server_away(void **state)
{
    rig r;
    char err[512], path[300], text[1024], payload[32];
    (void)state;

    rig_init(&r);
    snprintf(path, sizeof(path), "%s/token", r.dir);
    write_file(path, "tok\n", 0600);
    snprintf(text, sizeof(text),
             "{\"url\": [\"nats://127.0.0.1:1\", \"nats://127.0.0.1:2\"], \"token_file\": \"%s\", "
             "\"export\": [\"s.>\", \"fleet.>\"], \"queue_max\": 5}",
             path);
    if (rig_start(&r, text, err, sizeof(err)) < 0)
        fail_msg("start: %s", err);
    for (int i = 0; i < 8; i++) {
        snprintf(payload, sizeof(payload), "{\"i\": %d}", i);
        assert_int_equal(bus_publish(r.b, "s.n", payload, strlen(payload)), 0);
    }
    assert_int_equal(bus_publish(r.b, "fleet.other.s.n", "{}", 2), 0);
    uint64_t end = now_ms() + 5000;
    while (ifield(&r, "queue_depth") != 5 && now_ms() < end)
        uv_run(&r.loop, UV_RUN_ONCE);
    end = now_ms() + 300;
    while (now_ms() < end)
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(ifield(&r, "queue_depth"), 5);
    assert_int_equal(ifield(&r, "received"), 8);
    assert_int_equal(ifield(&r, "dropped"), 3);
    assert_int_equal(ifield(&r, "ignored"), 1);
    assert_int_equal(ifield(&r, "exported"), 0);
    assert_int_equal(ifield(&r, "connected"), 0);
    json_t *host = field(&r, "host");
    assert_string_equal(json_string_value(host), "edge9");
    json_decref(host);
    assert_int_equal(r.ended, 0);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_server_away),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
