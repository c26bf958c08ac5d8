/*
 * bench/floor/hbsub: a heartbeat listener for bench/floor. Dials herdd's
 * events.ipc with sub0, subscribes to the prefix "system." and prints each
 * event as "<CLOCK_MONOTONIC ns at arrival> <topic> <payload>", one line
 * each, until killed. Its receive buffer is nng's largest (8192 messages),
 * so a burst of heartbeats is not lost on this side while the reader is
 * descheduled: what it misses, herdd did not deliver. Blocking receives,
 * no receive timeout (DESIGN.md section 1: nng 1.5.2's sub0 faults).
 * Built by bench/floor/floor.py with cc -lnng, not by CMake.
 *
 *   hbsub ipc:///run/dir/events.ipc
 */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    nng_socket s;
    int rv;

    if (argc != 2) {
        fprintf(stderr, "usage: hbsub URL\n");
        return 2;
    }
    if ((rv = nng_sub0_open(&s)) != 0 || (rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, 8192)) != 0 ||
        (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 1 << 20)) != 0 ||
        (rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "system.", 7)) != 0 ||
        (rv = nng_dial(s, argv[1], NULL, 0)) != 0) {
        fprintf(stderr, "hbsub: %s: %s\n", argv[1], nng_strerror(rv));
        return 1;
    }
    printf("connected\n");
    fflush(stdout);
    for (;;) {
        nng_msg *m;
        struct timespec ts;
        if ((rv = nng_recvmsg(s, &m, 0)) != 0) {
            fprintf(stderr, "hbsub: %s\n", nng_strerror(rv));
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        const char *b = nng_msg_body(m);
        size_t len = nng_msg_len(m);
        const char *nul = memchr(b, '\0', len);
        if (nul != NULL) {
            size_t tl = (size_t)(nul - b);
            printf("%lld %.*s %.*s\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (int)tl, b,
                   (int)(len - tl - 1), nul + 1);
            fflush(stdout);
        }
        nng_msg_free(m);
    }
}
