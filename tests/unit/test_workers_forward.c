/*
 * The forward kind (workers/forward.c) and its transport (bus_link):
 * config refusals from a table, then a forward worker on an in-process
 * bus relaying to a second bus with real sockets in a temp dir, on the
 * same loop: the prefix (fleet.<host>. by default), the payload's bytes,
 * fleet.* ignored, a topic made too long failed, and the hub closed and
 * opened again: the queue holds the newest queue_max, the rest dropped,
 * and drains after the redial in order. Every test ends with the loop
 * closing cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "workers/worker.h"

static const struct {
    const char *cfg;
    const char *want; /* part of the message; NULL: accepted */
} cases[] = {
    {"{\"subscribe\": [\">\"], \"to\": \"tcp://hub:7790\"}", NULL},
    {"{\"subscribe\": [\"a.*\"], \"to\": \"ipc:///run/herd/publish.ipc\", \"prefix\": \"\", "
     "\"queue_max\": 10}",
     NULL},
    {"{\"subscribe\": [\">\"], \"to\": \"tls+tcp://hub:7790\", \"ca_file\": \"/ca.pem\", "
     "\"server_name\": \"hub\", \"prefix\": \"site.a-1.\"}",
     NULL},
    {"{\"to\": \"tcp://h:1\"}", "w.subscribe: required"},
    {"{\"subscribe\": [\">\"]}", "w.to: required, the other herd's publish socket"},
    {"{\"subscribe\": [\">\"], \"to\": \"http://h:1\"}", "(got \"http://h:1\")"},
    {"{\"subscribe\": [\">\"], \"to\": \"tcp://\"}", "w.to: required"},
    {"{\"subscribe\": [\">\"], \"to\": 5}", "w.to: required"},
    {"{\"subscribe\": [\">\"], \"to\": \"tcp://h:1\", \"prefix\": \"a\"}", "w.prefix: expected"},
    {"{\"subscribe\": [\">\"], \"to\": \"tcp://h:1\", \"prefix\": \".\"}", "w.prefix: expected"},
    {"{\"subscribe\": [\">\"], \"to\": \"tcp://h:1\", \"prefix\": \"a b.\"}", "w.prefix: expected"},
    {"{\"subscribe\": [\">\"], \"to\": \"tcp://h:1\", \"prefix\": \"*.\"}", "w.prefix: expected"},
    {"{\"subscribe\": [\">\"], \"to\": \"tls+tcp://h:1\"}", "w.ca_file: required with a tls+tcp"},
    {"{\"subscribe\": [\">\"], \"to\": \"tcp://h:1\", \"ca_file\": \"\"}",
     "w.ca_file: expected a non-empty string"},
    {"{\"subscribe\": [\">\"], \"to\": \"tcp://h:1\", \"url\": \"x\"}", "w.url: unknown key"},
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
        int rv = worker_forward_kind.validate(cfg, "w", err, sizeof(err));
        if (cases[i].want == NULL && rv != 0)
            fail_msg("case %zu refused: %s", i, err);
        if (cases[i].want != NULL && (rv != -EINVAL || strstr(err, cases[i].want) == NULL))
            fail_msg("case %zu: rv %d, message \"%s\", expected \"%s\"", i, rv, err, cases[i].want);
        json_decref(cfg);
    }
}

/* ---- a forward worker between two buses on one loop ------------------------- */

#define SEEN_MAX 64

typedef struct rig {
    uv_loop_t loop;
    uv_timer_t tick;
    bus *edge, *hub;
    bus_sub *hub_sub;
    worker *w;
    char dir[256];
    int stopped, hub_closed;
    size_t n_seen;
    char seen[SEEN_MAX][160]; /* "topic payload" as the hub got them */
} rig;

static void on_ended(worker *w, int code, const char *error, void *data)
{
    (void)w;
    (void)data;
    fail_msg("the forward worker ended (%d: %s)", code, error);
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
    (void)t; /* only wakes the loop up */
}

static void on_hub_event(const bus_event *ev, void *data)
{
    rig *r = data;
    if (r->n_seen < SEEN_MAX)
        snprintf(r->seen[r->n_seen], sizeof(r->seen[0]), "%s %s", ev->topic, ev->payload);
    r->n_seen++;
}

static void hub_open(rig *r)
{
    char err[256], dir[300];
    snprintf(dir, sizeof(dir), "%s/hub", r->dir);
    bus_config bc = {.dir = dir, .listener_check_ms = -1};
    assert_int_equal(bus_open(&r->loop, &bc, &r->hub, err, sizeof(err)), 0);
    assert_int_equal(bus_subscribe(r->hub, ">", 0, on_hub_event, r, &r->hub_sub), 0);
}

static void on_hub_closed(void *data)
{
    ((rig *)data)->hub_closed++;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void hub_close(rig *r)
{
    int before = r->hub_closed;
    bus_unsubscribe(r->hub_sub);
    bus_close(r->hub, on_hub_closed, r);
    uint64_t end = now_ms() + 5000;
    while (r->hub_closed == before && now_ms() < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(r->hub_closed, before + 1);
}

static json_t *health(rig *r)
{
    json_t *h = json_object();
    worker_health_fields(r->w, h);
    return h;
}

static json_int_t field(rig *r, const char *name)
{
    json_t *h = health(r), *v = json_object_get(h, name);
    json_int_t n = json_is_integer(v)   ? json_integer_value(v)
                   : json_is_boolean(v) ? json_is_true(v)
                                        : -1;
    json_decref(h);
    return n;
}

/* run_until runs the loop until field name is want, at most 5 s. */
static bool run_until(rig *r, const char *name, json_int_t want)
{
    uint64_t end = now_ms() + 5000;
    while (now_ms() < end) {
        uv_run(&r->loop, UV_RUN_ONCE);
        if (field(r, name) == want)
            return true;
    }
    return false;
}

static bool run_until_seen(rig *r, size_t n)
{
    uint64_t end = now_ms() + 5000;
    while (r->n_seen < n && now_ms() < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    return r->n_seen == n;
}

/* rig_open starts a forward to the hub's publish.ipc; keys: the rest of
 * its config (JSON members). */
static void rig_open(rig *r, const char *keys)
{
    static const worker_host host_template = {on_ended, on_stopped, on_log, NULL};
    worker_host host = host_template;
    const char *tmp = getenv("HERD_TEST_TMP");
    bus_config bc = {.no_sockets = 1};
    char err[512], text[1024];
    json_error_t jerr;

    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "%s/fwd.XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(r->dir));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(bus_open(&r->loop, &bc, &r->edge, err, sizeof(err)), 0);
    hub_open(r);
    uv_timer_init(&r->loop, &r->tick);
    uv_timer_start(&r->tick, on_tick, 5, 5);

    snprintf(text, sizeof(text), "{\"to\": \"ipc://%s/hub/publish.ipc\", %s}", r->dir, keys);
    json_t *cfg = json_loads(text, 0, &jerr);
    if (cfg == NULL)
        fail_msg("%s: %s", text, jerr.text);
    if (worker_forward_kind.validate(cfg, "w", err, sizeof(err)) != 0)
        fail_msg("%s refused: %s", text, err);
    host.data = r;
    worker_params p = {
        .kind = &worker_forward_kind,
        .name = "fw",
        .config = cfg,
        .loop = &r->loop,
        .bus = r->edge,
        .state_dir = r->dir,
        .runtime_dir = r->dir,
        .host_name = "edge9",
        .host = &host,
    };
    assert_int_equal(worker_new(&p, &r->w), 0);
    json_decref(cfg);
    if (worker_start(r->w, err, sizeof(err)) != 0)
        fail_msg("start: %s", err);
    assert_true(run_until(r, "connected", 1));
}

static void rig_close(rig *r)
{
    char cmd[600];
    worker_stop(r->w);
    uint64_t end = now_ms() + 5000;
    while (r->stopped == 0 && now_ms() < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(r->stopped, 1);
    worker_free(r->w);
    hub_close(r);
    uv_close((uv_handle_t *)&r->tick, NULL);
    bus_close(r->edge, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
}

static void publish(rig *r, const char *topic, const char *payload)
{
    assert_int_equal(bus_publish(r->edge, topic, payload, strlen(payload)), 0);
}

static void test_relay(void **state)
{
    rig r;
    char topic[300];
    (void)state;

    rig_open(&r, "\"subscribe\": [\">\"]");
    publish(&r, "s.t1", "{ \"a\" : [1, 2.50] }");
    publish(&r, "fleet.other.s.t2", "{}");
    /* 255 bytes: fits alone, not under the 13-byte prefix */
    memset(topic, 'x', 255);
    topic[255] = '\0';
    publish(&r, topic, "1");
    publish(&r, "s.t3", "\"\\u00e9\"");
    assert_true(run_until_seen(&r, 2));
    assert_string_equal(r.seen[0], "fleet.edge9.s.t1 { \"a\" : [1, 2.50] }");
    assert_string_equal(r.seen[1], "fleet.edge9.s.t3 \"\\u00e9\"");
    assert_int_equal(field(&r, "received"), 3);
    assert_int_equal(field(&r, "ignored"), 1);
    assert_int_equal(field(&r, "done"), 2);
    assert_int_equal(field(&r, "failed"), 1);
    assert_int_equal(field(&r, "topics_too_long"), 1);
    rig_close(&r);
}

static void test_hub_away(void **state)
{
    rig r;
    char payload[32];
    (void)state;

    rig_open(&r, "\"subscribe\": [\"s.>\"], \"prefix\": \"site.\", \"queue_max\": 5");
    hub_close(&r);
    assert_true(run_until(&r, "connected", 0));
    for (int i = 0; i < 8; i++) {
        snprintf(payload, sizeof(payload), "%d", i);
        publish(&r, "s.n", payload);
    }
    assert_true(run_until(&r, "queue_depth", 5));
    assert_int_equal(field(&r, "dropped"), 3);
    assert_int_equal(field(&r, "done"), 0);
    hub_open(&r);
    assert_true(run_until_seen(&r, 5));
    for (int i = 0; i < 5; i++) {
        snprintf(payload, sizeof(payload), "site.s.n %d", i + 3);
        assert_string_equal(r.seen[i], payload);
    }
    assert_int_equal(field(&r, "done"), 5);
    assert_int_equal(field(&r, "reconnects"), 1);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_relay),
        cmocka_unit_test(test_hub_away),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
