/*
 * herd-clients: hostile clients for the chaos test of issue 15.
 *
 *   herd-clients DIR MODE N SECONDS [CATALOG_WORKER]
 *
 * MODE:
 *   req   N threads, each its own req0 socket on request.ipc, sending
 *         requests back to back for SECONDS: supervisor status, a worker's
 *         health (start of an unknown worker: not_found), a catalog list
 *         when CATALOG_WORKER is given, and malformed bodies (bad JSON,
 *         wrong shape, unknown service). Every request must be answered.
 *   die   N threads that, for SECONDS, open a req0 socket, send a request
 *         and close it before the reply; every 10th round forks a child
 *         (which execs this program in its internal "child" mode: nng
 *         does not survive fork) that opens 4 sockets, sends on each and
 *         _exit()s at once, holding them.
 *   sub   N sub0 sockets on events.ipc subscribed to everything, never
 *         read, held for SECONDS.
 * HERD_CLIENTS_INTERVAL_MS: each req client pauses that long between
 * requests (default 0: back to back).
 * Prints "MODE sent=S answered=A timeouts=T errors=E bad_reply=B" and
 * exits 1 when a req client saw a timeout, a transport error or a reply
 * of the wrong shape, 2 on usage errors.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

static char url_req[4200], url_events[4200];
static const char *catalog, *dir_arg;
static double deadline;
static useconds_t interval_us; /* HERD_CLIENTS_INTERVAL_MS: pause between requests */
static atomic_long n_sent, n_answered, n_timeouts, n_errors, n_bad;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_req(nng_socket *s)
{
    int rv = nng_req0_open(s);
    if (rv == 0) {
        nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, 10000);
        nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, 10000);
        /* resend rarely: a resend would count as a second request */
        nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, 60000);
        /* non-blocking: 500 dials at once overflow the listen backlog
         * (EAGAIN); nng then retries in the background */
        rv = nng_dial(*s, url_req, NULL, NNG_FLAG_NONBLOCK);
        if (rv != 0)
            nng_close(*s);
    }
    return rv;
}

/* Request bodies and whether the reply must be ok. */
static const struct {
    const char *body;
    int ok;
} kinds[] = {
    {"{\"service\":\"supervisor\",\"op\":\"status\"}", 1},
    {"{\"service\":\"supervisor\",\"op\":\"start\",\"args\":{\"worker\":\"no-such\"}}", 0},
    {"{not json", 0},
    {"[1,2,3]", 0},
    {"{\"service\":\"nobody\",\"op\":\"x\"}", 0},
    {"{\"service\":\"supervisor\",\"op\":\"mem\"}", 1},
    {NULL, 1}, /* catalog list, when a catalog worker is named */
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static void *req_thread(void *arg)
{
    unsigned k = (unsigned)(size_t)arg;
    char cat[512];
    nng_socket s;

    int orv = open_req(&s);
    if (orv != 0) {
        atomic_fetch_add(&n_errors, 1);
        fprintf(stderr, "herd-clients: dial: %s\n", nng_strerror(orv));
        return NULL;
    }
    snprintf(cat, sizeof(cat), "{\"service\":\"%s\",\"op\":\"list\",\"args\":{\"limit\":20}}",
             catalog != NULL ? catalog : "");
    while (now_s() < deadline) {
        unsigned i = k++ % N_KINDS;
        const char *body = kinds[i].body != NULL ? kinds[i].body : catalog != NULL ? cat : NULL;
        if (body == NULL)
            continue;
        char *reply;
        size_t len;
        atomic_fetch_add(&n_sent, 1);
        int rv = nng_send(s, (void *)body, strlen(body), 0);
        if (rv == 0)
            rv = nng_recv(s, &reply, &len, NNG_FLAG_ALLOC);
        if (rv == NNG_ETIMEDOUT) {
            atomic_fetch_add(&n_timeouts, 1);
            continue;
        }
        if (rv != 0) {
            atomic_fetch_add(&n_errors, 1);
            fprintf(stderr, "herd-clients: req: %s\n", nng_strerror(rv));
            continue;
        }
        atomic_fetch_add(&n_answered, 1);
        const char *want = kinds[i].ok ? "{\"ok\":true," : "{\"ok\":false,";
        if (len < strlen(want) || memcmp(reply, want, strlen(want)) != 0) {
            atomic_fetch_add(&n_bad, 1);
            fprintf(stderr, "herd-clients: request %u: unexpected reply %.200s\n", i, reply);
        }
        nng_free(reply, len);
        if (interval_us > 0)
            usleep(interval_us);
    }
    nng_close(s);
    return NULL;
}

/* send_and_drop sends a status request on a new socket and closes it at
 * once: the reply comes back to a pipe that is gone. */
static void send_and_drop(void)
{
    static const char body[] = "{\"service\":\"supervisor\",\"op\":\"status\"}";
    nng_socket s;

    if (open_req(&s) != 0) {
        atomic_fetch_add(&n_errors, 1);
        return;
    }
    if (nng_send(s, (void *)body, sizeof(body) - 1, 0) == 0)
        atomic_fetch_add(&n_sent, 1);
    nng_close(s);
}

static void die_child(void)
{
    static const char body[] = "{\"service\":\"supervisor\",\"op\":\"status\"}";
    nng_socket s[4];

    for (int i = 0; i < 4; i++)
        if (open_req(&s[i]) == 0)
            nng_send(s[i], (void *)body, sizeof(body) - 1, 0);
    usleep(2000); /* let the requests reach herdd, then vanish */
    _exit(0);
}

static void *die_thread(void *arg)
{
    unsigned round = (unsigned)(size_t)arg;

    while (now_s() < deadline) {
        if (++round % 10 == 0) {
            /* nng does not survive fork (it panics in the child): the
             * child execs this program afresh in its hidden "child"
             * mode, which dials 4 sockets, sends on each and _exit()s. */
            pid_t pid = fork();
            if (pid == 0) {
                execl("/proc/self/exe", "herd-clients", dir_arg, "child", "4", "1", (char *)NULL);
                _exit(127);
            }
            if (pid > 0) {
                atomic_fetch_add(&n_sent, 4);
                waitpid(pid, NULL, 0);
            } else {
                atomic_fetch_add(&n_errors, 1);
            }
        } else {
            send_and_drop();
        }
        /* 50 rounds a second a thread: with 1 ms, 8 threads churned ~5,000
         * connections/s and a new client's connect waited 0.8-2 s in the
         * accept queue behind them (measured) */
        usleep(20000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: herd-clients DIR req|die|sub N SECONDS [CATALOG_WORKER]\n");
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    const char *mode = argv[2];
    dir_arg = argv[1];
    if (getenv("HERD_CLIENTS_INTERVAL_MS") != NULL)
        interval_us = (useconds_t)atol(getenv("HERD_CLIENTS_INTERVAL_MS")) * 1000;
    long n = atol(argv[3]);
    double secs = atof(argv[4]);
    if (n <= 0 || secs <= 0 ||
        (strcmp(mode, "req") && strcmp(mode, "die") && strcmp(mode, "sub") &&
         strcmp(mode, "child"))) {
        fprintf(stderr, "usage: herd-clients DIR req|die|sub N SECONDS [CATALOG_WORKER]\n");
        return 2;
    }
    catalog = argc == 6 ? argv[5] : NULL;
    snprintf(url_req, sizeof(url_req), "ipc://%s/request.ipc", argv[1]);
    snprintf(url_events, sizeof(url_events), "ipc://%s/events.ipc", argv[1]);
    signal(SIGPIPE, SIG_IGN);
    deadline = now_s() + secs;

    if (strcmp(mode, "child") == 0)
        die_child();
    if (strcmp(mode, "sub") == 0) {
        nng_socket *subs = calloc((size_t)n, sizeof(*subs));
        long open = 0;
        for (long i = 0; subs != NULL && i < n; i++) {
            if (nng_sub0_open(&subs[i]) != 0)
                break;
            /* a small receive buffer: nng stops reading the pipe, and
             * herdd's pub0 queue for it fills */
            nng_socket_set_int(subs[i], NNG_OPT_RECVBUF, 1);
            nng_socket_set(subs[i], NNG_OPT_SUB_SUBSCRIBE, "", 0);
            if (nng_dial(subs[i], url_events, NULL, 0) != 0) {
                nng_close(subs[i]);
                atomic_fetch_add(&n_errors, 1);
                continue;
            }
            open++;
        }
        while (now_s() < deadline)
            usleep(50000);
        for (long i = 0; i < open; i++)
            nng_close(subs[i]);
        free(subs);
        printf("sub held=%ld errors=%ld\n", open, atomic_load(&n_errors));
        return open == n ? 0 : 1;
    }

    pthread_t *t = calloc((size_t)n, sizeof(*t));
    long started = 0;
    for (long i = 0; t != NULL && i < n; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        if (pthread_create(&t[i], &a, strcmp(mode, "req") == 0 ? req_thread : die_thread,
                           (void *)(size_t)i) == 0)
            started++;
        pthread_attr_destroy(&a);
    }
    for (long i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    printf("%s clients=%ld sent=%ld answered=%ld timeouts=%ld errors=%ld bad_reply=%ld\n", mode,
           started, atomic_load(&n_sent), atomic_load(&n_answered), atomic_load(&n_timeouts),
           atomic_load(&n_errors), atomic_load(&n_bad));
    if (started != n)
        return 1;
    if (strcmp(mode, "req") == 0)
        return atomic_load(&n_timeouts) || atomic_load(&n_errors) || atomic_load(&n_bad) ? 1 : 0;
    return atomic_load(&n_errors) ? 1 : 0;
}
