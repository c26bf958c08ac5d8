/*
 * herd-storm: sends malformed frames to publish.ipc and malformed requests to
 * request.ipc of a running herdd, for the storm integration test.
 *
 *   herd-storm DIR N_FRAMES N_REQUESTS MAX_MESSAGE_BYTES
 *
 * Frames cycle through: random bytes, no NUL, bad topic, invalid JSON,
 * oversize (between max and twice max, which nng still delivers). Random
 * frames are classified with the same parser herdd uses, so the expected
 * per-reason counts are exact. Every request must be answered with ok:false
 * and the expected code. Prints the expected drop counters as JSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"

static unsigned long long rng = 88172645463325252ull;
static unsigned rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)rng;
}

static void fill_random(char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)rnd();
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: herd-storm DIR N_FRAMES N_REQUESTS MAX_MESSAGE_BYTES\n");
        return 2;
    }
    const char *dir = argv[1];
    long n_frames = atol(argv[2]), n_requests = atol(argv[3]);
    size_t max = (size_t)atol(argv[4]);
    unsigned long long expect[BUS_DROP_N] = {0};
    char *buf = malloc(2 * max);
    bus_client *c;
    int rv;

    if (buf == NULL || bus_client_new(dir, &c) < 0)
        return 1;
    for (long i = 0; i < n_frames; i++) {
        size_t len;
        switch (i % 5) {
        case 0: /* random bytes, classified below */
            len = 1 + rnd() % 200;
            fill_random(buf, len);
            break;
        case 1:
            len = (size_t)snprintf(buf, 2 * max, "no.terminator.%ld {\"i\":%ld}", i, i);
            break;
        case 2:
            len = (size_t)snprintf(buf, 2 * max, "bad..topic.%ld", i) + 1;
            len += (size_t)sprintf(buf + len, "{}");
            break;
        case 3:
            len = (size_t)snprintf(buf, 2 * max, "ok.topic") + 1;
            len += (size_t)sprintf(buf + len, "{\"unterminated\": %ld", i);
            break;
        default:
            len = max + 1 + rnd() % (max / 2);
            memset(buf, 'x', len);
            memcpy(buf, "big\0\"", 5);
            buf[len - 1] = '"';
            break;
        }
        bus_event ev;
        enum bus_drop_reason why;
        if (bus_frame_parse(buf, len, max, &ev, &why) < 0)
            expect[why]++; /* a valid random frame is delivered, not counted */
        if ((rv = bus_client_publish_raw(c, buf, len)) < 0) {
            fprintf(stderr, "herd-storm: publish: %s\n", strerror(-rv));
            return 1;
        }
    }
    if (bus_client_flush(c, 10000) < 0) {
        fprintf(stderr, "herd-storm: frames not written within 10 s\n");
        return 1;
    }
    static const struct {
        const char *body;
        const char *code;
        enum bus_drop_reason why;
    } kinds[] = {
        {"{not json", "bad_request", BUS_DROP_BAD_JSON},
        {"[1,2,3]", "bad_request", BUS_DROP_BAD_REQUEST},
        {"{\"service\":\"supervisor\"}", "bad_request", BUS_DROP_BAD_REQUEST},
        {"{\"service\":7,\"op\":\"status\"}", "bad_request", BUS_DROP_BAD_REQUEST},
        {"{\"service\":\"nobody\",\"op\":\"x\"}", "unknown_service", BUS_DROP_N},
        {"{\"service\":\"supervisor\",\"op\":\"no-such-op\"}", "unknown_op", BUS_DROP_N},
        {NULL, "bad_request", BUS_DROP_BAD_JSON}, /* random bytes */
        {NULL, "too_large", BUS_DROP_TOO_LARGE},  /* oversize */
    };
    size_t n_kinds = sizeof(kinds) / sizeof(kinds[0]);
    for (long i = 0; i < n_requests; i++) {
        size_t k = (size_t)i % n_kinds, len;
        const char *body = kinds[k].body;
        if (body != NULL) {
            len = strlen(body);
        } else if (strcmp(kinds[k].code, "too_large") == 0) {
            len = max + 1 + rnd() % (max / 2);
            memset(buf, ' ', len);
            body = buf;
        } else {
            len = 1 + rnd() % 100;
            fill_random(buf, len);
            buf[0] = '#'; /* never valid JSON */
            body = buf;
        }
        char *reply;
        size_t reply_len;
        rv = bus_client_request_raw(c, body, len, 5000, &reply, &reply_len);
        if (rv < 0) {
            fprintf(stderr, "herd-storm: request %ld: %s\n", i, strerror(-rv));
            return 1;
        }
        json_t *r = json_loadb(reply, reply_len, 0, NULL);
        const char *code = json_string_value(json_object_get(json_object_get(r, "error"), "code"));
        if (!json_is_false(json_object_get(r, "ok")) || code == NULL ||
            strcmp(code, kinds[k].code) != 0) {
            fprintf(stderr, "herd-storm: request %ld kind %zu: unexpected reply %s\n", i, k, reply);
            return 1;
        }
        json_decref(r);
        free(reply);
        if (kinds[k].why != BUS_DROP_N)
            expect[kinds[k].why]++;
    }
    bus_client_free(c);
    free(buf);

    printf("{");
    for (int i = 0; i < BUS_DROP_N; i++)
        printf("%s\"%s\": %llu", i ? ", " : "", bus_drop_reason_name(i), expect[i]);
    printf("}\n");
    return 0;
}
