/*
 * herd-pub: publishes N events as fast as the publish socket takes them,
 * for tests that need more events than one herdctl per event can send.
 *
 *   herd-pub DIR TOPIC N [PAD_BYTES]
 *
 * Event i (from 0) goes on TOPIC with the payload {"i":i,"pad":"xx..."}
 * (PAD_BYTES x's, default 0, so "pad" is ""). Prints the number sent; exits
 * 1 on any error, naming it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "bus/client.h"

int main(int argc, char **argv)
{
    bus_client *c;
    char *end;
    long n, pad = 0;
    base_buf payload = {0};
    int rv;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: herd-pub DIR TOPIC N [PAD_BYTES]\n");
        return 2;
    }
    n = strtol(argv[3], &end, 10);
    if (*end != '\0' || n < 0) {
        fprintf(stderr, "herd-pub: N: expected a count, got \"%s\"\n", argv[3]);
        return 2;
    }
    if (argc == 5 && ((pad = strtol(argv[4], &end, 10)) < 0 || *end != '\0' || pad > (1 << 20))) {
        fprintf(stderr, "herd-pub: PAD_BYTES: expected 0 to 1048576, got \"%s\"\n", argv[4]);
        return 2;
    }
    if ((rv = bus_client_new(argv[1], &c)) < 0) {
        fprintf(stderr, "herd-pub: %s: %s\n", argv[1], strerror(-rv));
        return 1;
    }
    for (long i = 0; i < n; i++) {
        payload.len = 0;
        rv = base_buf_addf(&payload, "{\"i\":%ld,\"pad\":\"", i);
        for (long k = 0; rv == 0 && k < pad; k++)
            rv = base_buf_add(&payload, "x", 1);
        if (rv == 0)
            rv = base_buf_add(&payload, "\"}", 2);
        if (rv == 0)
            rv = bus_client_publish(c, argv[2], payload.data, payload.len);
        if (rv < 0) {
            fprintf(stderr, "herd-pub: event %ld: %s%s%s\n", i, strerror(-rv),
                    bus_client_why(c)[0] ? ": " : "", bus_client_why(c));
            bus_client_free(c);
            base_buf_free(&payload);
            return 1;
        }
    }
    rv = bus_client_flush(c, 30000);
    bus_client_free(c);
    base_buf_free(&payload);
    if (rv < 0) {
        fprintf(stderr, "herd-pub: flush: %s\n", strerror(-rv));
        return 1;
    }
    printf("%ld\n", n);
    return 0;
}
