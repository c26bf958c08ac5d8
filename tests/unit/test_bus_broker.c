/* The in-process broker: dispatch after the publisher returns, matching,
 * bounded queues with drop-oldest, unsubscribe from a callback, pause, and
 * local requests. Every test ends with the loop closing cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"

typedef struct seen {
    int n;
    char last_topic[64];
    char last_payload[64];
    int in_publish; /* set while the test is inside bus_publish */
    int reentered;
    bus_sub *self;
    int unsubscribe_after;
} seen;

static void on_event(const bus_event *ev, void *data)
{
    seen *s = data;
    s->n++;
    if (s->in_publish)
        s->reentered = 1;
    snprintf(s->last_topic, sizeof(s->last_topic), "%s", ev->topic);
    snprintf(s->last_payload, sizeof(s->last_payload), "%s", ev->payload);
    if (s->unsubscribe_after && s->n == s->unsubscribe_after)
        bus_unsubscribe(s->self);
}

static bus *open_bus(uv_loop_t *loop, int queue_max)
{
    bus_config cfg = {.no_sockets = 1, .queue_max = queue_max};
    char err[256];
    bus *b = NULL;
    assert_int_equal(bus_open(loop, &cfg, &b, err, sizeof(err)), 0);
    return b;
}

static void close_bus(uv_loop_t *loop, bus *b)
{
    bus_close(b, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_dispatch_later_and_match(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    bus *b = open_bus(&loop, 0);
    seen all = {0}, health = {0}, jobs = {0}, none = {0};

    assert_int_equal(bus_subscribe(b, ">", 0, on_event, &all, NULL), 0);
    assert_int_equal(bus_subscribe(b, "system.*.health", 0, on_event, &health, NULL), 0);
    assert_int_equal(bus_subscribe(b, "job.>", 0, on_event, &jobs, NULL), 0);
    assert_int_equal(bus_subscribe(b, "nothing.here", 0, on_event, &none, NULL), 0);
    assert_int_equal(bus_subscribe(b, "bad..pattern", 0, on_event, &none, NULL), -EINVAL);

    all.in_publish = health.in_publish = 1;
    assert_int_equal(bus_publish(b, "system.w1.health", "{\"a\":1}", 7), 0);
    assert_int_equal(bus_publish(b, "job.w.1.output", "{}", 2), 0);
    assert_int_equal(bus_publish(b, "job", "{}", 2), 0);
    assert_int_equal(bus_publish(b, "bad topic", "{}", 2), -EINVAL);
    assert_int_equal(all.n, 0); /* nothing delivered inside publish */
    all.in_publish = health.in_publish = 0;

    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(all.n, 3);
    assert_false(all.reentered);
    assert_int_equal(health.n, 1);
    assert_string_equal(health.last_payload, "{\"a\":1}");
    assert_int_equal(jobs.n, 1);
    assert_string_equal(jobs.last_topic, "job.w.1.output");
    assert_int_equal(none.n, 0);

    bus_stats st;
    bus_get_stats(b, &st);
    assert_int_equal(st.published, 3);
    assert_int_equal(st.delivered, 5);
    assert_int_equal(st.subscriptions, 4);
    close_bus(&loop, b);
}

/* The subscription index: exact patterns, literal-first patterns and
 * wildcard-first ones, many of each (the table grows several times), some
 * unsubscribed; every subscriber gets exactly what bus_topic_match says,
 * each event once. */
/* fill writes shape with its "%d", if any, replaced by v. */
static void fill(char *out, size_t size, const char *shape, int v)
{
    const char *d = strstr(shape, "%d");
    if (d == NULL)
        snprintf(out, size, "%s", shape);
    else
        snprintf(out, size, "%.*s%d%s", (int)(d - shape), shape, v, d + 2);
}

static void test_index_matches_like_a_scan(void **state)
{
    enum { N_PATTERNS = 600, N_TOPICS = 40 };
    static char patterns[N_PATTERNS][48];
    static seen got[N_PATTERNS];
    static bus_sub *subs[N_PATTERNS];
    const char *shapes[] = {"system.w%d.control",
                            "idle.%d.>",
                            "system.*.state",
                            "*.w%d.health",
                            ">",
                            "job.w%d.*.state",
                            "a",
                            "a.%d"};
    uv_loop_t loop;
    uv_loop_init(&loop);
    bus *b = open_bus(&loop, 4096);

    memset(got, 0, sizeof(got));
    for (int i = 0; i < N_PATTERNS; i++) {
        fill(patterns[i], sizeof(patterns[i]), shapes[i % 8], i % 50);
        assert_int_equal(bus_subscribe(b, patterns[i], 0, on_event, &got[i], &subs[i]), 0);
    }
    for (int i = 0; i < N_PATTERNS; i += 7) /* gone before anything is published */
        bus_unsubscribe(subs[i]);
    char topics[N_TOPICS][48];
    const char *tshapes[] = {"system.w%d.control",
                             "idle.%d.x",
                             "system.w%d.state",
                             "x.w%d.health",
                             "job.w%d.7.state",
                             "a",
                             "a.%d",
                             "b.%d.c"};
    for (int t = 0; t < N_TOPICS; t++) {
        fill(topics[t], sizeof(topics[t]), tshapes[t % 8], t % 50);
        assert_int_equal(bus_publish(b, topics[t], "{}", 2), 0);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 0; i < N_PATTERNS; i++) {
        int want = 0;
        for (int t = 0; i % 7 != 0 && t < N_TOPICS; t++)
            want += bus_topic_match(patterns[i], strlen(patterns[i]), topics[t], strlen(topics[t]));
        if (got[i].n != want)
            fail_msg("%s: %d events, want %d", patterns[i], got[i].n, want);
    }
    close_bus(&loop, b);
}

static void test_drop_oldest(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    bus *b = open_bus(&loop, 0);
    seen slow = {0};
    bus_sub *s;
    char payload[32];

    assert_int_equal(bus_subscribe(b, "t", 10, on_event, &slow, &s), 0);
    for (int i = 0; i < 25; i++) {
        int n = snprintf(payload, sizeof(payload), "%d", i);
        assert_int_equal(bus_publish(b, "t", payload, (size_t)n), 0);
    }
    assert_int_equal(bus_sub_queued(s), 10);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(slow.n, 10);
    assert_string_equal(slow.last_payload, "24");
    bus_stats st;
    bus_get_stats(b, &st);
    assert_int_equal(st.dropped[BUS_DROP_QUEUE_FULL], 15);
    close_bus(&loop, b);
}

static void test_unsubscribe_in_callback(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    bus *b = open_bus(&loop, 0);
    seen once = {0}, other = {0};

    assert_int_equal(bus_subscribe(b, "t", 0, on_event, &once, &once.self), 0);
    assert_int_equal(bus_subscribe(b, "t", 0, on_event, &other, NULL), 0);
    once.unsubscribe_after = 2;
    for (int i = 0; i < 5; i++)
        bus_publish(b, "t", "1", 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(once.n, 2);
    assert_int_equal(other.n, 5);
    bus_publish(b, "t", "1", 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(once.n, 2);
    assert_int_equal(other.n, 6);
    close_bus(&loop, b);
}

static void test_pause_resume(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    bus *b = open_bus(&loop, 0);
    seen p = {0};
    bus_sub *s;

    assert_int_equal(bus_subscribe(b, "t", 4, on_event, &p, &s), 0);
    bus_sub_pause(s);
    for (int i = 0; i < 6; i++)
        bus_publish(b, "t", "1", 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(p.n, 0);
    assert_int_equal(bus_sub_queued(s), 4);
    bus_sub_resume(s);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(p.n, 4);
    /* Queued events of a subscription dropped at close are freed. */
    bus_sub_pause(s);
    bus_publish(b, "t", "1", 1);
    close_bus(&loop, b);
}

typedef struct reply_seen {
    int n;
    char body[512];
} reply_seen;

static void on_reply(const char *reply, size_t len, void *data)
{
    reply_seen *r = data;
    r->n++;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)len, reply);
}

static void echo_service(bus_request *req, void *data)
{
    const char *op = bus_request_op(req);
    if (strcmp(op, "echo") == 0)
        bus_reply_ok(req, json_incref(bus_request_args(req)));
    else if (strcmp(op, "raw") == 0)
        bus_reply_raw(req, "[1,2]", 5);
    else
        bus_reply_error(req, "unknown_op", "no op \"%s\"", op);
}

static void test_local_requests(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    bus *b = open_bus(&loop, 0);
    reply_seen r = {0};
    json_t *args = json_pack("{s:i}", "x", 7);

    assert_int_equal(bus_service_register(b, "echo", echo_service, NULL), 0);
    assert_int_equal(bus_service_register(b, "echo", echo_service, NULL), -EEXIST);
    assert_int_equal(bus_request_local(b, "echo", "echo", args, on_reply, &r), 0);
    assert_string_equal(r.body, "{\"ok\":true,\"result\":{\"x\":7}}");
    assert_int_equal(bus_request_local(b, "echo", "raw", NULL, on_reply, &r), 0);
    assert_string_equal(r.body, "{\"ok\":true,\"result\":[1,2]}");
    assert_int_equal(bus_request_local(b, "echo", "nope", NULL, on_reply, &r), 0);
    assert_string_equal(r.body,
                        "{\"ok\":false,\"error\":{\"code\":\"unknown_op\",\"message\":\"no op "
                        "\\\"nope\\\"\"}}");
    assert_int_equal(bus_request_local(b, "ghost", "x", NULL, on_reply, &r), 0);
    assert_non_null(strstr(r.body, "\"unknown_service\""));
    bus_service_unregister(b, "echo");
    assert_int_equal(bus_request_local(b, "echo", "echo", NULL, on_reply, &r), 0);
    assert_non_null(strstr(r.body, "\"unknown_service\""));
    assert_int_equal(r.n, 5);
    json_decref(args);
    close_bus(&loop, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch_later_and_match),
        cmocka_unit_test(test_drop_oldest),
        cmocka_unit_test(test_unsubscribe_in_callback),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_local_requests),
        cmocka_unit_test(test_index_matches_like_a_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
