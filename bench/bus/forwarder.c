/*
 * bench_bus_forwarder: the baseline for herdd's external path. A plain nng
 * pull0 -> pub0 forwarder, nothing else: no parsing, no validation, no
 * in-process dispatch, no loop. It listens where herdd would:
 * ipc://DIR/publish.ipc (pull0) and ipc://DIR/events.ipc (pub0), with the
 * same buffers herdd uses (pub0 SENDBUF 1024 per peer, pull0 RECVBUF 1024).
 *
 * With --poll it receives the way herdd must (DESIGN.md section 2): poll(2)
 * on pull0's NNG_OPT_RECVFD, then non-blocking receives until empty. That
 * variant tells the cost of the descriptor hand-off apart from herdd's own.
 *
 * Usage: bench_bus_forwarder [--poll] DIR   (runs until killed)
 */
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pubsub0/pub.h>

static void die(const char *what, int rv)
{
    fprintf(stderr, "bench_bus_forwarder: %s: %s\n", what, nng_strerror(rv));
    exit(1);
}

int main(int argc, char **argv)
{
    char url[PATH_MAX + 16], path[PATH_MAX];
    nng_socket pull, pub;
    int rv, use_poll = 0, fd = -1;
    const char *dir;

    if (argc == 3 && strcmp(argv[1], "--poll") == 0)
        use_poll = 1;
    else if (argc != 2) {
        fprintf(stderr, "usage: bench_bus_forwarder [--poll] DIR\n");
        return 2;
    }
    dir = argv[argc - 1];
    if ((rv = nng_pull0_open(&pull)) != 0)
        die("nng_pull0_open", rv);
    if ((rv = nng_pub0_open(&pub)) != 0)
        die("nng_pub0_open", rv);
    nng_socket_set_size(pull, NNG_OPT_RECVMAXSZ, 2u * 1024 * 1024);
    nng_socket_set_size(pub, NNG_OPT_RECVMAXSZ, 2u * 1024 * 1024);
    nng_socket_set_int(pull, NNG_OPT_RECVBUF, 1024);
    if ((rv = nng_socket_set_int(pub, NNG_OPT_SENDBUF, 1024)) != 0)
        die("NNG_OPT_SENDBUF", rv);

    snprintf(path, sizeof(path), "%s/events.ipc", dir);
    unlink(path);
    snprintf(url, sizeof(url), "ipc://%s", path);
    if ((rv = nng_listen(pub, url, NULL, 0)) != 0)
        die(url, rv);
    snprintf(path, sizeof(path), "%s/publish.ipc", dir);
    unlink(path);
    snprintf(url, sizeof(url), "ipc://%s", path);
    if ((rv = nng_listen(pull, url, NULL, 0)) != 0)
        die(url, rv);

    if (use_poll) {
        if ((rv = nng_socket_get_int(pull, NNG_OPT_RECVFD, &fd)) != 0)
            die("NNG_OPT_RECVFD", rv);
        for (;;) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, -1) < 0)
                continue;
            for (int i = 0; i < 1024; i++) {
                nng_msg *m;
                if (nng_recvmsg(pull, &m, NNG_FLAG_NONBLOCK) != 0)
                    break;
                if (nng_sendmsg(pub, m, NNG_FLAG_NONBLOCK) != 0)
                    nng_msg_free(m);
            }
        }
    }
    for (;;) {
        nng_msg *m;
        if ((rv = nng_recvmsg(pull, &m, 0)) != 0) {
            if (rv == NNG_ECLOSED)
                break;
            continue;
        }
        if (nng_sendmsg(pub, m, 0) != 0)
            nng_msg_free(m);
    }
    return 0;
}
