/*
 * soak-pub: the soak benchmark's event load (bench/soak/run). Publishes at
 * a fixed total rate to herdd's publish socket, one thread and one
 * connection per stream, each event carrying its stream's sequence number.
 *
 *   soak-pub DIR RATE SECONDS STREAMS [EXEC_EVERY [PAD_BYTES]]
 *
 * STREAMS is a comma-separated list of topic tokens ("a,b"); stream s sends
 * RATE / n_streams events a second on soak.<s>.ev, except that every
 * EXEC_EVERY-th event of a stream (default 0: none) goes on soak.<s>.exec
 * instead (the exec worker's sparse subset; the archive still gets it).
 * Payload: {"s":"<stream>","i":<seq from 0>,"pad":"xx..."} (PAD_BYTES x's,
 * default 40). The schedule is absolute (event k of a stream is due at
 * t0 + k / rate): a publisher that falls behind sends at once until it
 * catches up, so a stall shows as a burst, never as fewer events.
 *
 * Runs SECONDS (0: until SIGTERM or SIGINT, which also end a timed run
 * early). Every second it prints "progress ELAPSED_S SENT_TOTAL" on stdout;
 * at the end "done {json}": events sent per stream, exec events, elapsed
 * time, achieved rate, and the largest lag behind the schedule. Exits 1 on
 * any publish error, naming it. A blocked socket blocks the sender (push0
 * back-pressure): nothing is dropped here.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "bus/client.h"

#define STREAMS_MAX 16
#define TICK_NS 1000000L /* 1 ms: the pacing step */

typedef struct stream {
    pthread_t thread;
    const char *dir;
    char name[32];
    double rate; /* events a second */
    long exec_every;
    long pad;
    atomic_long sent;
    long exec_sent;
    double lag_max_s; /* largest lag of a send behind its due time */
    int err;          /* -errno of a failed publish, 0 */
    char why[256];
} stream;

static atomic_int stopping;
static struct timespec t0;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stopping, 1);
}

static double since_t0(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
}

static void *stream_main(void *arg)
{
    stream *st = arg;
    bus_client *c;
    base_buf payload = {0};
    char topic_ev[64], topic_exec[64];
    struct timespec due = t0;
    long seq = 0;
    int rv;

    snprintf(topic_ev, sizeof(topic_ev), "soak.%s.ev", st->name);
    snprintf(topic_exec, sizeof(topic_exec), "soak.%s.exec", st->name);
    if ((rv = bus_client_new(st->dir, &c)) < 0) {
        st->err = rv;
        snprintf(st->why, sizeof(st->why), "%s", st->dir);
        return NULL;
    }
    while (!atomic_load(&stopping)) {
        /* everything due by the next tick goes now */
        due.tv_nsec += TICK_NS;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000L;
        }
        double due_s = (double)(due.tv_sec - t0.tv_sec) + (double)(due.tv_nsec - t0.tv_nsec) / 1e9;
        long target = (long)(due_s * st->rate);
        while (seq < target && !atomic_load(&stopping)) {
            bool exec = st->exec_every > 0 && seq % st->exec_every == st->exec_every - 1;
            double lag = since_t0() - (double)seq / st->rate;

            if (lag > st->lag_max_s)
                st->lag_max_s = lag;
            payload.len = 0;
            rv = base_buf_addf(&payload, "{\"s\":\"%s\",\"i\":%ld,\"pad\":\"", st->name, seq);
            for (long k = 0; rv == 0 && k < st->pad; k++)
                rv = base_buf_add(&payload, "x", 1);
            if (rv == 0)
                rv = base_buf_add(&payload, "\"}", 2);
            if (rv == 0)
                rv = bus_client_publish(c, exec ? topic_exec : topic_ev, payload.data, payload.len);
            if (rv < 0) {
                st->err = rv;
                snprintf(st->why, sizeof(st->why), "event %ld: %s", seq, bus_client_why(c));
                atomic_store(&stopping, 1);
                break;
            }
            seq++;
            if (exec)
                st->exec_sent++;
            atomic_store(&st->sent, seq);
        }
        /* a sender behind its schedule does not sleep: it catches up */
        if (since_t0() < due_s)
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
    }
    if ((rv = bus_client_flush(c, 30000)) < 0 && st->err == 0) {
        st->err = rv;
        snprintf(st->why, sizeof(st->why), "flush");
    }
    bus_client_free(c);
    base_buf_free(&payload);
    return NULL;
}

int main(int argc, char **argv)
{
    static stream streams[STREAMS_MAX];
    struct sigaction sa = {0};
    char *end, *names, *tok, *save = NULL;
    double rate, seconds, next_progress = 1.0;
    long exec_every = 0, pad = 40, total, exec_total = 0;
    int n = 0, failed = 0;

    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: soak-pub DIR RATE SECONDS STREAMS [EXEC_EVERY [PAD_BYTES]]\n");
        return 2;
    }
    rate = strtod(argv[2], &end);
    if (*end != '\0' || !(rate > 0)) {
        fprintf(stderr, "soak-pub: RATE: expected events a second, got \"%s\"\n", argv[2]);
        return 2;
    }
    seconds = strtod(argv[3], &end);
    if (*end != '\0' || seconds < 0) {
        fprintf(stderr, "soak-pub: SECONDS: expected a duration, got \"%s\"\n", argv[3]);
        return 2;
    }
    if (argc >= 6 && ((exec_every = strtol(argv[5], &end, 10)) < 0 || *end != '\0')) {
        fprintf(stderr, "soak-pub: EXEC_EVERY: expected a count, got \"%s\"\n", argv[5]);
        return 2;
    }
    if (argc == 7 && ((pad = strtol(argv[6], &end, 10)) < 0 || *end != '\0' || pad > 65536)) {
        fprintf(stderr, "soak-pub: PAD_BYTES: expected 0 to 65536, got \"%s\"\n", argv[6]);
        return 2;
    }
    names = strdup(argv[4]);
    if (names == NULL)
        return 1;
    for (tok = strtok_r(names, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (n == STREAMS_MAX || strlen(tok) >= sizeof(streams[0].name) ||
            bus_topic_check(tok, strlen(tok)) < 0 || strchr(tok, '.') != NULL) {
            fprintf(stderr, "soak-pub: STREAMS: at most %d topic tokens, got \"%s\"\n", STREAMS_MAX,
                    argv[4]);
            return 2;
        }
        snprintf(streams[n].name, sizeof(streams[n].name), "%s", tok);
        n++;
    }
    free(names);
    if (n == 0) {
        fprintf(stderr, "soak-pub: STREAMS: empty\n");
        return 2;
    }
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        streams[i].dir = argv[1];
        streams[i].rate = rate / n;
        streams[i].exec_every = exec_every;
        streams[i].pad = pad;
        if (pthread_create(&streams[i].thread, NULL, stream_main, &streams[i]) != 0) {
            fprintf(stderr, "soak-pub: pthread_create failed\n");
            atomic_store(&stopping, 1);
            n = i;
            failed = 1;
            break;
        }
    }
    while (!atomic_load(&stopping)) {
        double now = since_t0();

        if (seconds > 0 && now >= seconds)
            break;
        if (now >= next_progress) {
            total = 0;
            for (int i = 0; i < n; i++)
                total += atomic_load(&streams[i].sent);
            printf("progress %.3f %ld\n", now, total);
            fflush(stdout);
            next_progress += 1.0;
        }
        struct timespec nap = {0, 50 * 1000000L};
        nanosleep(&nap, NULL);
    }
    atomic_store(&stopping, 1);
    double elapsed = since_t0();
    total = 0;
    printf("done {\"streams\": {");
    for (int i = 0; i < n; i++) {
        pthread_join(streams[i].thread, NULL);
        long sent = atomic_load(&streams[i].sent);
        total += sent;
        exec_total += streams[i].exec_sent;
        printf("%s\"%s\": {\"sent\": %ld, \"exec\": %ld, \"lag_max_s\": %.3f}", i ? ", " : "",
               streams[i].name, sent, streams[i].exec_sent, streams[i].lag_max_s);
        if (streams[i].err < 0) {
            fprintf(stderr, "soak-pub: stream %s: %s: %s\n", streams[i].name, streams[i].why,
                    strerror(-streams[i].err));
            failed = 1;
        }
    }
    printf("}, \"sent\": %ld, \"exec\": %ld, \"seconds\": %.3f, \"rate\": %.1f}\n", total,
           exec_total, elapsed, elapsed > 0 ? (double)total / elapsed : 0.0);
    return failed;
}
