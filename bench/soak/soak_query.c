/*
 * soak-query: the soak benchmark's catalog load (bench/soak/run). Sends a
 * dashboard's queries to a catalog worker over the bus, in turn, at a fixed
 * rate, and checks every reply: ok, and the same `total` (or the same
 * number of bodies) as the first time that query was answered (the catalog
 * does not change during a soak).
 *
 *   soak-query DIR WORKER RATE [RECONNECT_EVERY]
 *
 * A new connection every RECONNECT_EVERY queries (default 50), as many
 * short-lived clients make. Runs until SIGTERM or SIGINT, then prints
 * "done {json}": queries, errors, per-query counts and latency p50/p99/max
 * (ms). Each error is printed on stderr as it happens (at most 20).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bus/client.h"

#define LAT_MAX 200000
#define TIMEOUT_MS 10000

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

typedef struct query {
    const char *name;
    const char *op;
    const char *args; /* JSON */
    long n, errors;
    json_int_t expect; /* -1: not known yet */
} query;

static query queries[] = {
    {"list where+facets+order", "list",
     "{\"where\": {\"category\": [\"sensor\", \"binary_sensor\"], \"supported_platforms\": "
     "{\"empty_or\": \"esp32\"}}, \"facets\": [\"category\", \"dependencies\"], \"order\": "
     "[{\"field\": \"name\", \"fold\": true}], \"limit\": 20}",
     0, 0, -1},
    {"search relevance", "search", "{\"q\": \"temperature sensor\", \"limit\": 10}", 0, 0, -1},
    {"list q+facets", "list",
     "{\"q\": \"wifi\", \"facets\": [\"category\"], \"order\": \"relevance\", \"limit\": 50}", 0, 0,
     -1},
    {"list all", "list", "{\"limit\": 100000}", 0, 0, -1},
    {"get ids", "get", "{\"ids\": [\"wifi\", \"api\", \"logger\", \"ota\", \"sensor\"]}", 0, 0, -1},
};
#define N_QUERIES (sizeof(queries) / sizeof(queries[0]))

/* what a reply is checked on: `total` of a list, the number of bodies of a get */
static json_int_t reply_size(const json_t *result)
{
    const json_t *total = json_object_get(result, "total");

    if (json_is_integer(total))
        return json_integer_value(total);
    return json_is_object(result) ? (json_int_t)json_object_size(result) : -1;
}

int main(int argc, char **argv)
{
    static double lat[LAT_MAX];
    struct sigaction sa = {0};
    json_t *args[N_QUERIES];
    bus_client *c = NULL;
    long n = 0, errors = 0, n_lat = 0, reconnect = 50;
    double rate, t0, t;
    char *end;
    int rv;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: soak-query DIR WORKER RATE [RECONNECT_EVERY]\n");
        return 2;
    }
    rate = strtod(argv[3], &end);
    if (*end != '\0' || !(rate > 0)) {
        fprintf(stderr, "soak-query: RATE: expected queries a second, got \"%s\"\n", argv[3]);
        return 2;
    }
    if (argc == 5 && ((reconnect = strtol(argv[4], &end, 10)) < 1 || *end != '\0')) {
        fprintf(stderr, "soak-query: RECONNECT_EVERY: expected a count, got \"%s\"\n", argv[4]);
        return 2;
    }
    for (size_t i = 0; i < N_QUERIES; i++) {
        json_error_t je;

        if ((args[i] = json_loads(queries[i].args, 0, &je)) == NULL) {
            fprintf(stderr, "soak-query: query %zu: %s\n", i, je.text);
            return 1;
        }
    }
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    t0 = now_s();
    while (!stopping) {
        query *q = &queries[n % N_QUERIES];
        json_t *reply = NULL;
        const char *why = NULL;
        double start;

        if (c == NULL || n % reconnect == 0) {
            bus_client_free(c);
            if ((rv = bus_client_new(argv[1], &c)) < 0) {
                fprintf(stderr, "soak-query: %s: %s\n", argv[1], strerror(-rv));
                return 1;
            }
        }
        start = now_s();
        rv = bus_client_query(c, argv[2], q->op, args[n % N_QUERIES], TIMEOUT_MS, &reply);
        t = now_s();
        if (rv < 0) {
            why = strerror(-rv);
        } else if (!json_is_true(json_object_get(reply, "ok"))) {
            why = json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
            if (why == NULL)
                why = "error reply";
        } else {
            json_int_t size = reply_size(json_object_get(reply, "result"));

            if (q->expect < 0)
                q->expect = size;
            else if (size != q->expect)
                why = "reply differs from the first answer";
        }
        if (why != NULL) {
            if (errors < 20)
                fprintf(stderr, "soak-query: %s (query %ld): %s\n", q->name, n, why);
            errors++;
            q->errors++;
        }
        json_decref(reply);
        q->n++;
        n++;
        if (n_lat < LAT_MAX)
            lat[n_lat++] = (t - start) * 1000.0;
        /* absolute schedule: query n is due at t0 + n / rate */
        double due = t0 + (double)n / rate;
        while (!stopping && (t = now_s()) < due) {
            double wait = due - t;
            struct timespec nap = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
            nanosleep(&nap, NULL);
        }
    }
    bus_client_free(c);
    qsort(lat, (size_t)n_lat, sizeof(lat[0]), cmp_double);
    printf("done {\"queries\": %ld, \"errors\": %ld, \"seconds\": %.3f", n, errors, now_s() - t0);
    if (n_lat > 0)
        printf(", \"latency_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}", lat[n_lat / 2],
               lat[(long)((double)n_lat * 0.99)], lat[n_lat - 1]);
    printf(", \"by_query\": {");
    for (size_t i = 0; i < N_QUERIES; i++) {
        printf("%s\"%s\": {\"n\": %ld, \"errors\": %ld, \"size\": %lld}", i ? ", " : "",
               queries[i].name, queries[i].n, queries[i].errors, (long long)queries[i].expect);
        json_decref(args[i]);
    }
    printf("}}\n");
    return 0;
}
