/*
 * herd-nats-probe: a small NATS client for the nats kind's tests and
 * benchmark, linking libnats directly (herdd never does).
 *
 *   herd-nats-probe URL sub SUBJECT [COUNT [TIMEOUT_S]]
 *       prints "SUBJECT PAYLOAD" lines (flushed) until COUNT messages
 *       (0: no limit) or TIMEOUT_S seconds without one (default 30);
 *       prints "ready" on stderr once the server has the subscription.
 *       Reconnects every 10 ms for ever, so it rides over a server restart.
 *   herd-nats-probe URL pub SUBJECT PAYLOAD
 *   herd-nats-probe URL req SUBJECT PAYLOAD [COUNT [TIMEOUT_S]]
 *       publishes PAYLOAD with a reply inbox and prints each reply on its
 *       own line until COUNT replies (default 1) or TIMEOUT_S (default 5).
 *   herd-nats-probe URL count SUBJECT N [TIMEOUT_S]
 *       counts N messages and prints "N SECONDS RATE" (from the first
 *       message to the N-th), for benchmarks.
 *   herd-nats-probe URL flood SUBJECT N [PAD_BYTES]
 *       publishes N messages {"i":i,"pad":"x..."} as fast as libnats takes
 *       them (a plain publisher: the limit of the server and the client),
 *       prints "N SECONDS RATE".
 *
 * With HERD_NATS_PROBE_CA=FILE in the environment, it speaks TLS and trusts
 * the PEM certificate(s) of FILE.
 *
 * Exit codes: 0 done, 1 timeout or error (named on stderr), 2 usage.
 */
#include <nats/nats.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: herd-nats-probe URL sub SUBJECT [COUNT [TIMEOUT_S]]\n"
                    "       herd-nats-probe URL pub SUBJECT PAYLOAD\n"
                    "       herd-nats-probe URL req SUBJECT PAYLOAD [COUNT [TIMEOUT_S]]\n"
                    "       herd-nats-probe URL count SUBJECT N [TIMEOUT_S]\n"
                    "       herd-nats-probe URL flood SUBJECT N [PAD_BYTES]\n");
    return 2;
}

static int failed(const char *what, natsStatus s)
{
    const char *why = nats_GetLastError(NULL);
    fprintf(stderr, "herd-nats-probe: %s: %s\n", what,
            why != NULL && why[0] ? why : natsStatus_GetText(s));
    return 1;
}

int main(int argc, char **argv)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    natsStatus s;
    int rc = 0;

    if (argc < 4)
        return usage();
    const char *url = argv[1], *cmd = argv[2], *subject = argv[3];
    bool waits = strcmp(cmd, "sub") == 0 || strcmp(cmd, "count") == 0;

    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, url);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 10);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(opts, 0, 0);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(opts, 64 * 1024 * 1024);
    if (s == NATS_OK && waits)
        s = natsOptions_SetRetryOnFailedConnect(opts, true, NULL, NULL);
    const char *ca = getenv("HERD_NATS_PROBE_CA");
    if (s == NATS_OK && ca != NULL && ca[0] != '\0') {
        s = natsOptions_SetSecure(opts, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCATrustedCertificates(opts, ca);
    }
    if (s != NATS_OK)
        return failed("options", s);
    s = natsConnection_Connect(&nc, opts);
    if (s != NATS_OK && !(waits && s == NATS_NOT_YET_CONNECTED))
        return failed("connect", s);

    if (strcmp(cmd, "sub") == 0 || strcmp(cmd, "count") == 0) {
        bool counting = cmd[0] == 'c';
        long want = argc > 4 ? strtol(argv[4], NULL, 10) : 0;
        double timeout = argc > 5 ? strtod(argv[5], NULL) : 30;
        long got = 0;
        double first = 0;
        if (counting && want <= 0)
            return usage();
        s = natsConnection_SubscribeSync(&sub, nc, subject);
        if (s == NATS_OK)
            s = natsSubscription_SetPendingLimits(sub, -1, -1);
        if (s != NATS_OK)
            return failed("subscribe", s);
        while (natsConnection_FlushTimeout(nc, 1000) != NATS_OK)
            ; /* the server has the subscription once a PING came back */
        fprintf(stderr, "ready\n");
        while (want == 0 || got < want) {
            natsMsg *m = NULL;
            s = natsSubscription_NextMsg(&m, sub, (int64_t)(timeout * 1000));
            if (s == NATS_TIMEOUT) {
                fprintf(stderr, "herd-nats-probe: %ld of %ld messages, then %g s of silence\n", got,
                        want, timeout);
                rc = want > 0 ? 1 : 0;
                break;
            }
            if (s == NATS_SLOW_CONSUMER)
                continue;
            if (s != NATS_OK) {
                rc = failed("next message", s);
                break;
            }
            if (got++ == 0)
                first = now_s();
            if (!counting) {
                printf("%s %.*s\n", natsMsg_GetSubject(m), natsMsg_GetDataLength(m),
                       natsMsg_GetData(m));
                fflush(stdout);
            }
            natsMsg_Destroy(m);
        }
        if (counting && rc == 0) {
            double t = now_s() - first;
            printf("%ld %.3f %.0f\n", got, t, t > 0 ? (double)(got - 1) / t : 0);
        }
    } else if (strcmp(cmd, "pub") == 0 && argc == 5) {
        s = natsConnection_PublishString(nc, subject, argv[4]);
        if (s == NATS_OK)
            s = natsConnection_FlushTimeout(nc, 5000);
        if (s != NATS_OK)
            rc = failed("publish", s);
    } else if (strcmp(cmd, "req") == 0 && argc >= 5) {
        long want = argc > 5 ? strtol(argv[5], NULL, 10) : 1, got = 0;
        double timeout = argc > 6 ? strtod(argv[6], NULL) : 5, end = now_s() + timeout;
        char inbox[128];
        snprintf(inbox, sizeof(inbox), "_INBOX.probe.%ld.%d", (long)time(NULL), rand());
        s = natsConnection_SubscribeSync(&sub, nc, inbox);
        if (s == NATS_OK)
            s = natsConnection_PublishRequestString(nc, subject, inbox, argv[4]);
        if (s == NATS_OK)
            s = natsConnection_FlushTimeout(nc, 5000);
        if (s != NATS_OK)
            return failed("request", s);
        while (got < want) {
            natsMsg *m = NULL;
            double left = end - now_s();
            if (left <= 0 || (s = natsSubscription_NextMsg(&m, sub, (int64_t)(left * 1000) + 1)) ==
                                 NATS_TIMEOUT) {
                fprintf(stderr, "herd-nats-probe: %ld of %ld replies in %g s\n", got, want,
                        timeout);
                rc = 1;
                break;
            }
            if (s != NATS_OK) {
                rc = failed("reply", s);
                break;
            }
            printf("%.*s\n", natsMsg_GetDataLength(m), natsMsg_GetData(m));
            fflush(stdout);
            natsMsg_Destroy(m);
            got++;
        }
    } else if (strcmp(cmd, "flood") == 0 && argc >= 5) {
        long n = strtol(argv[4], NULL, 10), pad = argc > 5 ? strtol(argv[5], NULL, 10) : 0;
        char *buf = malloc((size_t)pad + 64), *p;
        if (buf == NULL || n <= 0 || pad < 0)
            return usage();
        double t0 = now_s();
        for (long i = 0; i < n && s == NATS_OK; i++) {
            int len = snprintf(buf, 64, "{\"i\":%ld,\"pad\":\"", i);
            p = buf + len;
            memset(p, 'x', (size_t)pad);
            memcpy(p + pad, "\"}", 2);
            s = natsConnection_Publish(nc, subject, buf, len + (int)pad + 2);
        }
        if (s == NATS_OK)
            s = natsConnection_FlushTimeout(nc, 30000);
        double t = now_s() - t0;
        free(buf);
        if (s != NATS_OK)
            return failed("flood", s);
        printf("%ld %.3f %.0f\n", n, t, t > 0 ? (double)n / t : 0);
    } else {
        return usage();
    }
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return rc;
}
