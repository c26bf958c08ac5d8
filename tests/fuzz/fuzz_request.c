/*
 * Fuzz target `request`: request bodies (bus/request.c) as they arrive on
 * request.ipc. The input is a body: bus__request_parse checks its shape
 * ({"service","op","args"?}, DESIGN.md section 3), then
 * bus__request_received parses and routes it on a socketless broker with a
 * few services registered (its replies have no socket to go to and are
 * counted as dropped), and a well-formed one is routed again through
 * bus_request_local, whose reply must be one JSON object of the reply
 * shape. Every request is answered: none is left pending.
 */
#include <stdbool.h>
#include <string.h>

#include "bus/internal.h"
#include "fuzz.h"

static uv_loop_t loop;
static bus *broker;

/* A service answering by op: ok (the args back), raw (stored bytes), null,
 * anything else unknown_op. */
static void service(bus_request *r, void *data)
{
    const char *op = bus_request_op(r);

    (void)data;
    FUZZ_CHECK(op != NULL && bus_request_service(r) != NULL);
    FUZZ_CHECK(json_is_object(bus_request_args(r)));
    if (strcmp(op, "ok") == 0)
        bus_reply_ok(r, json_deep_copy(bus_request_args(r)));
    else if (strcmp(op, "raw") == 0)
        bus_reply_raw(r, "[1,\"two\",{\"3\":null}]", 20);
    else if (strcmp(op, "null") == 0)
        bus_reply_ok(r, NULL);
    else
        bus_reply_error(r, "unknown_op", "no op \"%.64s\" here", op);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    bus_config cfg = {.no_sockets = true, .max_message_bytes = 1 << 20};
    char err[256];

    (void)argc, (void)argv;
    FUZZ_CHECK(uv_loop_init(&loop) == 0);
    if (bus_open(&loop, &cfg, &broker, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_request: bus_open: %s\n", err);
        abort();
    }
    FUZZ_CHECK(bus_service_register(broker, "supervisor", service, NULL) == 0);
    FUZZ_CHECK(bus_service_register(broker, "w1", service, NULL) == 0);
    FUZZ_CHECK(bus_service_register(broker, "catalog", service, NULL) == 0);
    return 0;
}

static void on_reply(const char *reply, size_t len, void *data)
{
    int *n = data;
    json_t *o = json_loadb(reply, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    FUZZ_CHECK(o != NULL && json_is_object(o));
    json_t *ok = json_object_get(o, "ok");
    FUZZ_CHECK(json_is_boolean(ok));
    if (json_is_true(ok)) {
        FUZZ_CHECK(json_object_get(o, "result") != NULL);
    } else {
        json_t *e = json_object_get(o, "error");
        FUZZ_CHECK(json_is_string(json_object_get(e, "code")));
        FUZZ_CHECK(json_is_string(json_object_get(e, "message")));
    }
    json_decref(o);
    (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    enum bus_drop_reason why = BUS_DROP_N;
    char msg[512] = "";
    json_t *o = NULL;
    bus_stats st;

    if (bus__request_parse(body, size, &o, &why, msg, sizeof(msg)) == 0) {
        FUZZ_CHECK(json_is_object(o));
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v)
        {
            FUZZ_CHECK(!strcmp(key, "service") || !strcmp(key, "op") || !strcmp(key, "args"));
        }
        json_t *s = json_object_get(o, "service"), *op = json_object_get(o, "op");
        json_t *args = json_object_get(o, "args");
        FUZZ_CHECK(json_is_string(s) && json_string_length(s) >= 1 && json_string_length(s) <= 64);
        FUZZ_CHECK(json_is_string(op) && json_string_length(op) >= 1 &&
                   json_string_length(op) <= 64);
        FUZZ_CHECK(args == NULL || json_is_object(args) || json_is_null(args));

        int replies = 0;
        int rv = bus_request_local(broker, json_string_value(s), json_string_value(op),
                                   json_is_object(args) ? args : NULL, on_reply, &replies);
        FUZZ_CHECK(rv == 0);
        FUZZ_CHECK(replies == 1);
        json_decref(o);
    } else {
        FUZZ_CHECK(o == NULL);
        FUZZ_CHECK(why == BUS_DROP_BAD_JSON || why == BUS_DROP_BAD_REQUEST);
        FUZZ_CHECK(msg[0] != '\0');
    }

    /* the path a request from a client takes: parse, route, answer */
    bus__request_received(broker, "", 0, body, size);
    uv_run(&loop, UV_RUN_NOWAIT);
    bus_get_stats(broker, &st);
    FUZZ_CHECK(st.requests_pending == 0);
    return 0;
}
