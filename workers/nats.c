/*
 * The `nats` kind (DESIGN.md sections 5 and 7b): the fleet bridge between
 * this herd's bus and a NATS server or cluster, through libnats driven by
 * the loop.
 *
 * Keys: url (one "nats://HOST[:PORT]" or "tls://HOST[:PORT]", or a list);
 * credentials from files only: token_file, creds_file, or user +
 * password_file; ca_file (tls:// only); host (default the config's
 * top-level host); export (patterns: local events published on NATS as
 * fleet.<host>.<topic>); import (NATS subjects delivered on the local bus:
 * fleet.<host>.<rest> and fleet.all.<rest> as <rest>, anything else as it
 * is); requests (default true: NATS requests on fleet.<host>.request and
 * fleet.all.request are bus requests, the bus reply's bytes sent back);
 * queue_max (exported events held while disconnected, drop-oldest).
 * Health, beyond the subscriber's counts (received, done, failed, dropped,
 * ignored, queue_depth): connected, server, exported, imported, dropped,
 * reconnects, requests, and the import refusals by reason.
 *
 * Design notes
 * - libnats is not linked. The first nats worker that starts opens
 *   libnats.so.3.4 with dlopen and reaches it through `api`, a table of
 *   dlsym'd pointers typed from the header (__typeof__), so a herdd
 *   without nats workers never maps libnats nor the OpenSSL it brings. It
 *   stays loaded (never dlclose): libnats keeps process-wide threads
 *   (timers, connection callbacks, garbage collection).
 * - Threads. libnats runs its own threads whatever one does: the three
 *   process-wide ones above, a reconnect thread while reconnecting, and,
 *   here, the pool thread that connects and the one that closes. What it
 *   never runs is our code with the bus: every bus call and every counter
 *   is on the loop thread.
 *   * Socket I/O: natsOptions_SetEventLoop with this file's own adapter
 *     (attach/read/write/detach) and sendAsap (no flusher thread). The
 *     adapter's callbacks come from whichever thread holds the
 *     connection's lock; they only record the wanted poll state (socket,
 *     read, write, detached) under `mu` and, off the loop thread, wake
 *     the loop with uv_async_send. The loop reconciles one uv_poll with
 *     it and calls natsConnection_ProcessReadEvent/ProcessWriteEvent.
 *   * Messages: synchronous subscriptions (natsConnection_SubscribeSync)
 *     only. libnats parses what ProcessReadEvent read on the loop thread
 *     and queues each message on its subscription; right after, the loop
 *     takes them with natsSubscription_NextMsg (never waiting: only the
 *     count GetPending reported). No message handler runs on a libnats
 *     thread, and no delivery thread exists.
 *   * Connection events (connected, reconnected, disconnected, closed)
 *     come on libnats' callback thread: they record the server URL, the
 *     last error and counts under `mu` and wake the loop.
 *   * Blocking calls go to the thread pool: natsConnection_Connect (a TCP
 *     connect and the handshake, up to the connect timeout per server)
 *     with the subscriptions, and at stop the flush and
 *     natsConnection_Close (which joins the reconnect thread). The loop calls only what does not
 * wait: Publish (buffered, written by the write event), NextMsg with a count in hand, the two
 *     Process*Event. While libnats' reconnect thread holds the
 *     connection's lock it may block a caller for one connect attempt, so
 *     the loop publishes only while the connection is up: it goes down in
 *     the adapter's read-remove (called synchronously when a read on the
 *     loop fails) and up again at attach.
 * - Stop, in steps, so that what was counted exported reaches the server
 *   and the worker state outlives libnats' use of it: (1) while connected,
 *   natsConnection_FlushTimeout on the pool (at most STOP_FLUSH_MS) with
 *   the loop still polling, so the buffer is written and the PONG read;
 *   (2) the loop closes its poll while the socket is still open (a poll
 *   never outlives its descriptor); (3) natsConnection_Close on the pool;
 *   (4) the destroys on the loop; worker_stopped once the closed callback
 *   ran too (libnats posts it before Close returns and calls nothing of
 *   ours after it), after the async handle is closed. Only a socket that
 *   libnats drops from another thread (a ping timeout on its timer
 *   thread) is closed before the loop stops polling it, as with libnats'
 *   own libuv adapter.
 * - Export: the subscriber queue (subscriber.h) holds events, drop-oldest,
 *   counted. subscriber_start reads `subscribe`, which this kind does not
 *   have, so the patterns of `export` are subscribed here with the same
 *   one-allocation copy. An event with nothing queued before it goes to
 *   libnats at once, without the copy; it is done (counted in `exported`)
 *   when libnats took it. While the connection is down the queue holds the
 *   newest queue_max. At most EXPORT_BATCH_BYTES are handed to
 *   libnats between two completed writes, so a slow server leaves events
 *   in the bounded queue rather than in libnats' growing buffer.
 * - No loops. A topic starting with `fleet.` is never exported (it came
 *   from another host). An imported event is never exported again: what
 *   the worker publishes locally comes back to its own export
 *   subscription, so each imported event that an export pattern matches
 *   is remembered in a bounded FIFO of (hash of topic and payload, time)
 *   and its copy is turned away (counted in `ignored`). NoEcho keeps the
 *   server from handing the worker its own exports back.
 * - Requests: a message on fleet.<host>.request or fleet.all.request with
 *   a reply subject is parsed as a bus request body ({"service","op",
 *   "args"}), routed with bus_request_local, and the reply's JSON bytes
 *   published unchanged on the reply subject; a body of the wrong shape
 *   gets {"ok":false,"error":{"code":"bad_request",...}}. At most
 *   REQUESTS_MAX wait at once (then `busy`). A reply that comes after the
 *   connection went down, or after stop, is dropped (the asker times out).
 * - Memory: libnats has no allocator hooks, so what it allocates (the
 *   connection, its read and write buffers, messages waiting in a
 *   subscription) is outside herd's accounts. What the worker holds itself
 *   (its queue, the echo FIFO, requests) is charged as usual, and
 *   worker_set_memory adds an estimate of libnats' per-connection cost
 *   plus the bytes waiting in its subscriptions.
 * - Credentials are read from files at start, never from the config:
 *   a missing, unreadable or world-accessible file fails the start naming
 *   it. A URL with user:password@ is refused at validate.
 */
#include <nats/nats.h>

#include "workers/subscriber.h"
#include "workers/worker.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NATS_LIB "libnats.so.3.4"
#define NATS_LIB_PACKAGE "libnats3.4"
#define FLEET_PREFIX "fleet."
#define URLS_MAX 16
#define URL_MAX 512
#define PATTERNS_MAX SUBSCRIBER_PATTERNS_MAX
#define HOST_MAX 64
#define SECRET_MAX 8192
#define SUBS_MAX (PATTERNS_MAX + 2)
#define REQUESTS_MAX 64
#define ECHO_MAX 1024
#define ECHO_TTL_MS 10000
#define EXPORT_BATCH_BYTES (256 * 1024)
#define IO_BUF_BYTES (32 * 1024)
#define CONNECT_TIMEOUT_MS 2000
#define RECONNECT_INITIAL_MS 100
#define RECONNECT_MAX_MS 2000
#define RECONNECT_BUF_BYTES (256 * 1024)
#define PING_INTERVAL_MS 20000
#define STOP_FLUSH_MS 2000
/* What libnats holds per idle connection that herd cannot see (its
 * connection, read and write buffers, parser, cloned options, server pool,
 * subscriptions): bench/fleet measured 33 KiB of owned memory (dirty and
 * anonymous pages) per further bridge, of which the worker's own account
 * is about 7 KiB. */
#define LIBNATS_CONN_ESTIMATE (28 * 1024)

/* ---- libnats, opened on first use ------------------------------------------------------- */

#define NATS_API(X)                                                                                \
    X(nats_Open)                                                                                   \
    X(nats_GetVersion)                                                                             \
    X(nats_GetLastError)                                                                           \
    X(natsStatus_GetText)                                                                          \
    X(natsOptions_Create)                                                                          \
    X(natsOptions_Destroy)                                                                         \
    X(natsOptions_SetServers)                                                                      \
    X(natsOptions_SetToken)                                                                        \
    X(natsOptions_SetUserInfo)                                                                     \
    X(natsOptions_SetUserCredentialsFromFiles)                                                     \
    X(natsOptions_SetSecure)                                                                       \
    X(natsOptions_LoadCATrustedCertificates)                                                       \
    X(natsOptions_SetName)                                                                         \
    X(natsOptions_SetTimeout)                                                                      \
    X(natsOptions_SetNoEcho)                                                                       \
    X(natsOptions_SetSendAsap)                                                                     \
    X(natsOptions_SetRetryOnFailedConnect)                                                         \
    X(natsOptions_SetMaxReconnect)                                                                 \
    X(natsOptions_SetCustomReconnectDelay)                                                         \
    X(natsOptions_SetReconnectBufSize)                                                             \
    X(natsOptions_SetClosedCB)                                                                     \
    X(natsOptions_SetDisconnectedCB)                                                               \
    X(natsOptions_SetReconnectedCB)                                                                \
    X(natsOptions_SetEventLoop)                                                                    \
    X(natsOptions_SetIOBufSize)                                                                    \
    X(natsOptions_SetPingInterval)                                                                 \
    X(natsOptions_SetMaxPingsOut)                                                                  \
    X(natsConnection_Connect)                                                                      \
    X(natsConnection_ProcessReadEvent)                                                             \
    X(natsConnection_ProcessWriteEvent)                                                            \
    X(natsConnection_Publish)                                                                      \
    X(natsConnection_FlushTimeout)                                                                 \
    X(natsConnection_SubscribeSync)                                                                \
    X(natsConnection_GetConnectedUrl)                                                              \
    X(natsConnection_GetLastError)                                                                 \
    X(natsConnection_Close)                                                                        \
    X(natsConnection_Destroy)                                                                      \
    X(natsSubscription_NextMsg)                                                                    \
    X(natsSubscription_GetPending)                                                                 \
    X(natsSubscription_Destroy)                                                                    \
    X(natsMsg_GetSubject)                                                                          \
    X(natsMsg_GetReply)                                                                            \
    X(natsMsg_GetData)                                                                             \
    X(natsMsg_GetDataLength)                                                                       \
    X(natsMsg_Destroy)

typedef struct nats_api {
#define API_FIELD(f) __typeof__(f) *f;
    NATS_API(API_FIELD)
#undef API_FIELD
} nats_api;

static const struct {
    const char *name;
    size_t offset;
} api_symbols[] = {
#define API_SYM(f) {#f, offsetof(nats_api, f)},
    NATS_API(API_SYM)
#undef API_SYM
};

/* Loop thread only, like every worker call. */
static nats_api api;
static bool api_ready;

/* api_load opens libnats and starts it, once per process; err says why not. */
static int api_load(worker *w, char *err, size_t err_size)
{
    nats_api loaded;
    void *lib;

    if (api_ready)
        return 0;
    lib = dlopen(NATS_LIB, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *why = dlerror();
        snprintf(err, err_size, "cannot load %s (install the Debian package %s): %s", NATS_LIB,
                 NATS_LIB_PACKAGE, why != NULL ? why : "dlopen failed");
        return -ENOENT;
    }
    for (size_t i = 0; i < sizeof(api_symbols) / sizeof(api_symbols[0]); i++) {
        void *sym = dlsym(lib, api_symbols[i].name);
        if (sym == NULL) {
            snprintf(err, err_size, "%s has no %s: not the libnats of the Debian package %s",
                     NATS_LIB, api_symbols[i].name, NATS_LIB_PACKAGE);
            dlclose(lib); /* nothing of it ran yet */
            return -ENOENT;
        }
        memcpy((char *)&loaded + api_symbols[i].offset, &sym, sizeof(sym));
    }
    /* Process-wide state and threads: charged to no worker. */
    uint32_t prev = base_mem_switch(0);
    natsStatus s = loaded.nats_Open(-1);
    base_mem_switch(prev);
    if (s != NATS_OK) {
        snprintf(err, err_size, "%s: nats_Open: %s", NATS_LIB, loaded.natsStatus_GetText(s));
        return -EIO;
    }
    api = loaded;
    api_ready = true;
    worker_log(w, BASE_LOG_INFO, "loaded %s: libnats %s", NATS_LIB, api.nats_GetVersion());
    return 0;
}

/* ---- state ------------------------------------------------------------------------------ */

typedef struct nats_bridge nats_bridge;

/* One uv_poll per attached socket: a reconnect brings a new socket, and a
 * closing poll frees itself. */
typedef struct nb_poll {
    uv_poll_t poll;
    nats_bridge *n;
} nb_poll;

/* A request waiting for its bus reply. */
typedef struct nb_request {
    base_list_node node; /* in nats_bridge.requests while n is set */
    nats_bridge *n;      /* NULL once the worker stopped: the reply is dropped */
    char reply[];        /* the NATS reply subject */
} nb_request;

typedef struct nb_echo {
    uint64_t hash;
    int64_t ts_ms;
} nb_echo;

/* What other threads tell the loop, under mu. */
typedef struct nb_shared {
    natsConnection *nc; /* from attach */
    int fd;
    unsigned gen; /* attaches so far */
    bool read, write, detached;
    bool up;             /* attached and not read-removed since */
    bool established;    /* libnats said connected (handshakes done) and not
                            disconnected since: a socket is attached before
                            a TLS handshake that may yet fail, and what was
                            handed to libnats then was counted exported but
                            lost (nats_tls.sh, a wrong CA, under ASan) */
    bool closed;         /* the closed callback ran */
    uint64_t reconnects; /* reconnected callbacks */
    char url[URL_MAX];   /* the server connected to, "" when none yet */
    char error[256];     /* why the connection closed by itself */
} nb_shared;

struct nats_bridge {
    worker *w;
    subscriber sub; /* the export queue */
    uv_loop_t *loop;
    pthread_t loop_thread;
    char host[HOST_MAX + 1];
    char prefix[HOST_MAX + sizeof(FLEET_PREFIX) + 1]; /* "fleet.<host>." */
    size_t prefix_len;
    char req_host[HOST_MAX + 32], req_all[32];
    bool requests;

    /* libnats */
    natsOptions *opts;
    natsConnection *nc; /* set by the connect work */
    natsSubscription *subs[SUBS_MAX];
    bool sub_request[SUBS_MAX];
    size_t n_subs;
    size_t n_urls;
    const char *urls[URLS_MAX];
    char status_text[256];

    /* threads */
    pthread_mutex_t mu;
    nb_shared shared;  /* under mu */
    uv_async_t *async; /* its own block: a failed start closes it after the state is gone */
    bool async_open;
    uv_work_t work;
    bool work_busy;
    int work_rc;          /* connect work: libnats' status */
    char work_error[256]; /* connect work: the message */
    uint32_t rng;         /* reconnect jitter, reconnect thread only */

    /* the loop's view */
    nb_poll *poll;
    int poll_fd, poll_events;
    unsigned poll_gen;
    unsigned open_polls; /* polls not yet closed */
    bool up, connected_once, ready, stopping, flushed, stop_closed, freeze_polls;
    size_t batch_bytes;
    uint64_t seen_reconnects;

    /* counts */
    uint64_t imported, import_bad_topic, import_bad_json, import_reserved, import_failed;
    uint64_t requests_n, requests_bad, requests_busy, replies_lost;
    uint64_t echoes;

    base_ring echo; /* nb_echo *, allocated with the first import */
    base_list pending;
};

static const char *const nats_keys[] = {"url",           "token_file", "creds_file", "user",
                                        "password_file", "ca_file",    "host",       "export",
                                        "import",        "requests",   NULL};

/* ---- config ----------------------------------------------------------------------------- */

static const char *show(const json_t *v, char *buf, size_t size)
{
    char *s = v != NULL ? base_json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;

    if (v == NULL)
        snprintf(buf, size, "nothing");
    else
        snprintf(buf, size, "%.80s%s", s != NULL ? s : "?",
                 s != NULL && strlen(s) > 80 ? "..." : "");
    free(s);
    return buf;
}

/* url_check: NULL or why u is not a nats:// or tls:// server URL; *tls says
 * which scheme. */
static const char *url_check(const char *u, size_t len, bool *tls)
{
    size_t scheme, i, end;

    if (strlen(u) != len || len >= URL_MAX)
        return "longer than 511 bytes or with a NUL";
    if (strncmp(u, "nats://", 7) == 0)
        scheme = 7, *tls = false;
    else if (strncmp(u, "tls://", 6) == 0)
        scheme = 6, *tls = true;
    else
        return "expected a nats:// or tls:// URL";
    for (i = 0; i < len; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f || u[i] == ',')
            return "spaces, commas, control characters and non-ASCII bytes are not allowed";
    for (end = scheme; end < len && u[end] != '/' && u[end] != '?' && u[end] != '#'; end++)
        if (u[end] == '@')
            return "credentials in the URL are refused: use token_file, user and "
                   "password_file, or creds_file";
    if (end < len && !(end + 1 == len && u[end] == '/'))
        return "a server URL has no path, query or fragment";
    if (end == scheme || u[scheme] == ':')
        return "no host";
    const char *colon = NULL;
    if (u[scheme] == '[') {
        const char *close = memchr(u + scheme, ']', end - scheme);
        if (close == NULL)
            return "an IPv6 address without its closing ']'";
        if ((size_t)(close - u) + 1 < end)
            colon = close + 1;
        if (colon != NULL && *colon != ':')
            return "bad port (expected 1 to 65535)";
    } else {
        colon = memchr(u + scheme, ':', end - scheme);
    }
    if (colon != NULL) {
        unsigned long port = 0;
        const char *p = colon + 1;
        if (p == u + end || u + end - p > 5)
            return "bad port (expected 1 to 65535)";
        for (; p < u + end; p++) {
            if (*p < '0' || *p > '9')
                return "bad port (expected 1 to 65535)";
            port = port * 10 + (unsigned long)(*p - '0');
        }
        if (port < 1 || port > 65535)
            return "bad port (expected 1 to 65535)";
    }
    return NULL;
}

static int check_file_key(const json_t *cfg, const char *path, const char *key, char *err,
                          size_t err_size)
{
    const json_t *v = json_object_get(cfg, key);
    char got[100];

    if (v != NULL && (!json_is_string(v) || json_string_length(v) == 0 ||
                      strlen(json_string_value(v)) != json_string_length(v) ||
                      json_string_length(v) >= PATH_MAX))
        return base_errf(err, err_size, "%s.%s: expected the path of a file, got %s", path, key,
                         show(v, got, sizeof(got)));
    return 0;
}

static int check_patterns(const json_t *cfg, const char *path, const char *key, const char *what,
                          char *err, size_t err_size)
{
    const json_t *a = json_object_get(cfg, key), *p;
    size_t i;
    char got[100];

    if (a == NULL)
        return 0;
    if (!json_is_array(a) || json_array_size(a) > PATTERNS_MAX)
        return base_errf(err, err_size, "%s.%s: expected an array of at most %d %s, got %s", path,
                         key, PATTERNS_MAX, what, show(a, got, sizeof(got)));
    json_array_foreach(a, i, p)
    {
        if (!json_is_string(p) ||
            bus_pattern_check(json_string_value(p), json_string_length(p)) < 0)
            return base_errf(err, err_size,
                             "%s.%s[%zu]: not a subject pattern (dot-separated tokens of "
                             "[A-Za-z0-9_-], `*` for one token, a last `>` for the rest): %s",
                             path, key, i, show(p, got, sizeof(got)));
    }
    return 0;
}

static int nats_validate(const json_t *cfg, const char *path, char *err, size_t err_size)
{
    const json_t *url = json_object_get(cfg, "url"), *v;
    char got[100];
    bool any_tls = false, tls;
    size_t i;
    int rv;

    if ((rv = worker_check_keys(cfg, path, nats_keys, err, err_size)) < 0)
        return rv;
    if (url == NULL)
        return base_errf(err, err_size,
                         "%s.url: required, the NATS server: \"nats://HOST:4222\", "
                         "\"tls://HOST:4222\" or a list of them",
                         path);
    if (json_is_string(url)) {
        const char *why = url_check(json_string_value(url), json_string_length(url), &tls);
        if (why != NULL)
            return base_errf(err, err_size, "%s.url: %s: %s", path, show(url, got, sizeof(got)),
                             why);
        any_tls = tls;
    } else if (json_is_array(url) && json_array_size(url) > 0 && json_array_size(url) <= URLS_MAX) {
        json_array_foreach(url, i, v)
        {
            const char *why = !json_is_string(v)
                                  ? "expected a nats:// or tls:// URL"
                                  : url_check(json_string_value(v), json_string_length(v), &tls);
            if (why != NULL)
                return base_errf(err, err_size, "%s.url[%zu]: %s: %s", path, i,
                                 show(v, got, sizeof(got)), why);
            any_tls |= tls;
        }
    } else {
        return base_errf(err, err_size,
                         "%s.url: expected a nats:// or tls:// URL or a list of 1 to %d, got %s",
                         path, URLS_MAX, show(url, got, sizeof(got)));
    }
    static const char *const files[] = {"token_file", "creds_file", "password_file", "ca_file"};
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if ((rv = check_file_key(cfg, path, files[i], err, err_size)) < 0)
            return rv;
    v = json_object_get(cfg, "user");
    if (v != NULL &&
        (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 256 ||
         strlen(json_string_value(v)) != json_string_length(v)))
        return base_errf(err, err_size, "%s.user: expected a user name of 1 to 256 bytes, got %s",
                         path, show(v, got, sizeof(got)));
    bool has_user = v != NULL, has_pw = json_object_get(cfg, "password_file") != NULL;
    if (has_user != has_pw)
        return base_errf(err, err_size,
                         has_user ? "%s.password_file: required with user (the password is read "
                                    "from a file, never from the config)"
                                  : "%s.user: required with password_file",
                         path);
    int kinds = has_user + (json_object_get(cfg, "token_file") != NULL) +
                (json_object_get(cfg, "creds_file") != NULL);
    if (kinds > 1)
        return base_errf(err, err_size,
                         "%s: one of token_file, creds_file or user + password_file, not several",
                         path);
    if (json_object_get(cfg, "ca_file") != NULL && !any_tls)
        return base_errf(err, err_size, "%s.ca_file: only used with a tls:// url", path);
    if ((v = json_object_get(cfg, "host")) != NULL &&
        (!json_is_string(v) || !base_token_valid(json_string_value(v)) ||
         strcmp(json_string_value(v), "all") == 0))
        return base_errf(err, err_size,
                         "%s.host: expected one topic token of 1 to 64 bytes of [A-Za-z0-9_-], "
                         "not \"all\" (fleet.all is every host), got %s",
                         path, show(v, got, sizeof(got)));
    if ((rv = check_patterns(cfg, path, "export", "topic patterns", err, err_size)) < 0 ||
        (rv = check_patterns(cfg, path, "import", "NATS subjects", err, err_size)) < 0)
        return rv;
    v = json_object_get(cfg, "requests");
    if (v != NULL && !json_is_boolean(v))
        return base_errf(err, err_size, "%s.requests: expected true or false, got %s", path,
                         show(v, got, sizeof(got)));
    v = json_object_get(cfg, "queue_max");
    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1 ||
                      json_integer_value(v) > SUBSCRIBER_QUEUE_MAX))
        return base_errf(err, err_size, "%s.queue_max: expected an integer from 1 to %d, got %s",
                         path, SUBSCRIBER_QUEUE_MAX, show(v, got, sizeof(got)));
    if (json_array_size(json_object_get(cfg, "export")) == 0 &&
        json_array_size(json_object_get(cfg, "import")) == 0 &&
        json_is_false(json_object_get(cfg, "requests")))
        return base_errf(err, err_size,
                         "%s: nothing to bridge: give export, import, or leave requests on", path);
    return 0;
}

static size_t nats_paths(const json_t *cfg, worker_path *out, size_t max)
{
    static const char *const files[] = {"token_file", "creds_file", "password_file", "ca_file"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && n < max; i++) {
        const char *f = json_string_value(json_object_get(cfg, files[i]));
        if (f != NULL)
            out[n++] = (worker_path){f, false};
    }
    return n;
}

/* secret_file checks a credentials file: a regular file of this process's
 * reach that other users cannot read or write. With out, reads it (at most
 * SECRET_MAX bytes, trailing white space cut). Blocks on a small read,
 * once per start. */
static int secret_file(const char *key, const char *file, char *out, size_t out_size, char *err,
                       size_t err_size)
{
    struct stat st;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        int e = errno;
        snprintf(err, err_size, "%s \"%.200s\": %s", key, file, strerror(e));
        return -e;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return base_errf(err, err_size, "%s \"%.200s\": not a regular file", key, file);
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        close(fd);
        snprintf(err, err_size,
                 "%s \"%.200s\": readable or writable by every user (mode %04o): a credential "
                 "must not be; chmod o-rwx it",
                 key, file, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    if (out == NULL) {
        close(fd);
        return 0;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, out + len, out_size - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return base_errf(err, err_size, "%s \"%.200s\": %s", key, file, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == out_size - 1) {
            close(fd);
            return base_errf(err, err_size, "%s \"%.200s\": longer than %zu bytes", key, file,
                             out_size - 1);
        }
    }
    close(fd);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' ' ||
                       out[len - 1] == '\t'))
        len--;
    out[len] = '\0';
    if (len == 0 || memchr(out, '\0', len) != NULL)
        return base_errf(err, err_size, "%s \"%.200s\": empty or not text", key, file);
    return 0;
}

/* ---- the adapter: libnats' event-loop callbacks (any thread) ---------------------------- */

static bool on_loop_thread(const nats_bridge *n)
{
    return pthread_equal(pthread_self(), n->loop_thread) != 0;
}

static void reconcile(nats_bridge *n);

/* kick, with mu held: the loop looks at the shared state soon. On the loop
 * thread the caller reconciles itself once mu is released. */
static void kick_locked(nats_bridge *n)
{
    if (!on_loop_thread(n))
        uv_async_send(n->async);
}

static void after_adapter_call(nats_bridge *n)
{
    /* On the loop, inside a libnats call holding the connection's lock:
     * only uv_poll is touched, never libnats. */
    if (on_loop_thread(n))
        reconcile(n);
}

static natsStatus ad_attach(void **user, void *loop, natsConnection *nc, natsSock fd)
{
    nats_bridge *n = loop;

    *user = n;
    pthread_mutex_lock(&n->mu);
    n->shared.nc = nc;
    n->shared.fd = fd;
    n->shared.gen++;
    n->shared.read = true;
    n->shared.write = false;
    n->shared.detached = false;
    n->shared.up = true;
    kick_locked(n);
    pthread_mutex_unlock(&n->mu);
    after_adapter_call(n);
    return NATS_OK;
}

static natsStatus ad_read(void *user, bool add)
{
    nats_bridge *n = user;

    pthread_mutex_lock(&n->mu);
    n->shared.read = add;
    /* libnats removes read only to stop polling a socket it gives up */
    if (!add)
        n->shared.up = false;
    kick_locked(n);
    pthread_mutex_unlock(&n->mu);
    after_adapter_call(n);
    return NATS_OK;
}

static natsStatus ad_write(void *user, bool add)
{
    nats_bridge *n = user;

    pthread_mutex_lock(&n->mu);
    n->shared.write = add;
    kick_locked(n);
    pthread_mutex_unlock(&n->mu);
    after_adapter_call(n);
    return NATS_OK;
}

static natsStatus ad_detach(void *user)
{
    nats_bridge *n = user;

    pthread_mutex_lock(&n->mu);
    n->shared.detached = true;
    n->shared.up = false;
    kick_locked(n);
    pthread_mutex_unlock(&n->mu);
    after_adapter_call(n);
    return NATS_OK;
}

/* ---- connection callbacks (libnats' callback thread) ------------------------------------ */

static void record_url(nats_bridge *n, natsConnection *nc)
{
    char url[URL_MAX];
    if (api.natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
        url[0] = '\0';
    pthread_mutex_lock(&n->mu);
    snprintf(n->shared.url, sizeof(n->shared.url), "%s", url);
    n->shared.established = true;
    kick_locked(n);
    pthread_mutex_unlock(&n->mu);
}

static void on_connected(natsConnection *nc, void *closure)
{
    record_url(closure, nc);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    nats_bridge *n = closure;
    pthread_mutex_lock(&n->mu);
    n->shared.reconnects++;
    pthread_mutex_unlock(&n->mu);
    record_url(n, nc);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    nats_bridge *n = closure;
    (void)nc;
    pthread_mutex_lock(&n->mu);
    n->shared.up = false;
    n->shared.established = false;
    kick_locked(n);
    pthread_mutex_unlock(&n->mu);
}

static void on_closed(natsConnection *nc, void *closure)
{
    nats_bridge *n = closure;
    const char *why = NULL;
    natsStatus s = api.natsConnection_GetLastError(nc, &why);

    pthread_mutex_lock(&n->mu);
    snprintf(n->shared.error, sizeof(n->shared.error), "%s",
             why != NULL && why[0] ? why : api.natsStatus_GetText(s));
    n->shared.closed = true;
    n->shared.up = false;
    /* the last thing libnats does with n: sent under mu, so the loop,
     * which takes mu before freeing, never frees under it */
    uv_async_send(n->async);
    pthread_mutex_unlock(&n->mu);
}

/* Reconnect thread: doubling from RECONNECT_INITIAL_MS to RECONNECT_MAX_MS,
 * with up to a quarter of jitter so a fleet does not reconnect in step. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    nats_bridge *n = closure;
    int64_t d = RECONNECT_INITIAL_MS;
    (void)nc;
    for (int i = 1; i < attempts && d < RECONNECT_MAX_MS; i++)
        d *= 2;
    if (d > RECONNECT_MAX_MS)
        d = RECONNECT_MAX_MS;
    n->rng = n->rng * 1103515245u + 12345u;
    return d - (int64_t)((n->rng >> 8) % (uint32_t)(d / 4 + 1));
}

/* ---- the loop's side of the socket ------------------------------------------------------ */

static void drain_subs(nats_bridge *n);
static void drain_export(nats_bridge *n);
static bool export_one(nats_bridge *n, const char *topic, size_t topic_len, const char *payload,
                       size_t len);
static void maybe_finish(nats_bridge *n);

static void on_poll_closed(uv_handle_t *h)
{
    nb_poll *p = h->data;
    nats_bridge *n = p->n;
    worker *prev = worker_enter(n->w);
    base_free(p);
    n->open_polls--;
    maybe_finish(n);
    worker_leave(prev);
}

static void poll_close(nats_bridge *n)
{
    if (n->poll == NULL)
        return;
    uv_close((uv_handle_t *)&n->poll->poll, on_poll_closed);
    n->poll = NULL;
    n->poll_events = 0;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    nb_poll *p = h->data;
    nats_bridge *n = p->n;
    natsConnection *nc;
    worker *prev = worker_enter(n->w);

    pthread_mutex_lock(&n->mu);
    nc = n->shared.nc;
    pthread_mutex_unlock(&n->mu);
    if (nc != NULL && (status < 0 || (events & UV_READABLE)))
        api.natsConnection_ProcessReadEvent(nc); /* an error: read, which reconnects */
    /* the read may have closed this poll (reconcile, through the adapter) */
    if (nc != NULL && status >= 0 && (events & UV_WRITABLE) && n->poll == p) {
        api.natsConnection_ProcessWriteEvent(nc);
        pthread_mutex_lock(&n->mu);
        bool flushed = !n->shared.write;
        pthread_mutex_unlock(&n->mu);
        if (flushed)
            n->batch_bytes = 0;
    }
    drain_subs(n);
    reconcile(n);
    drain_export(n);
    worker_leave(prev);
}

/* reconcile makes the uv_poll match what libnats asked for. Loop thread,
 * never with mu held. */
static void reconcile(nats_bridge *n)
{
    nb_shared s;

    pthread_mutex_lock(&n->mu);
    s = n->shared;
    pthread_mutex_unlock(&n->mu);
    n->up = s.up && s.established && !n->stopping;
    if (n->freeze_polls)
        return;
    if (n->poll != NULL && (s.detached || s.gen != n->poll_gen))
        poll_close(n); /* before a new poll on the same descriptor number */
    if (n->poll == NULL && !s.detached && s.gen != 0 && s.gen != n->poll_gen && s.fd >= 0) {
        nb_poll *p = base_calloc(1, sizeof(*p));
        if (p == NULL || uv_poll_init_socket(n->loop, &p->poll, s.fd) < 0) {
            base_free(p);
            worker_fail(n->w, "out of memory (or a bad socket) polling the NATS connection");
            return;
        }
        p->n = n;
        p->poll.data = p;
        n->poll = p;
        n->poll_fd = s.fd;
        n->poll_gen = s.gen;
        n->poll_events = 0;
        n->open_polls++;
        n->batch_bytes = 0;
        if (n->connected_once)
            worker_log(n->w, BASE_LOG_INFO, "reconnected to NATS");
        n->connected_once = true;
    }
    if (n->poll != NULL) {
        int ev = (s.read ? UV_READABLE : 0) | (s.write ? UV_WRITABLE : 0);
        if (ev != n->poll_events) {
            int rv =
                ev != 0 ? uv_poll_start(&n->poll->poll, ev, on_poll) : uv_poll_stop(&n->poll->poll);
            if (rv < 0)
                worker_fail(n->w, "polling the NATS socket: %s", uv_strerror(rv));
            n->poll_events = ev;
        }
    }
}

static void on_async(uv_async_t *h)
{
    nats_bridge *n = h->data;
    worker *prev = worker_enter(n->w);
    bool closed;
    char why[256];

    reconcile(n);
    pthread_mutex_lock(&n->mu);
    closed = n->shared.closed;
    snprintf(why, sizeof(why), "%s", n->shared.error);
    pthread_mutex_unlock(&n->mu);
    if (closed && !n->stopping) {
        /* libnats gave the connection up by itself (an authorization
         * refused twice, say): the restart policy decides */
        worker_fail(n->w, "the NATS connection closed: %s%s", why,
                    n->connected_once ? ""
                                      : " (never connected: check url, ca_file and the "
                                        "credentials; the server's log says what it refused)");
    }
    drain_subs(n);
    drain_export(n);
    maybe_finish(n);
    worker_leave(prev);
}

/* ---- export ----------------------------------------------------------------------------- */

static uint64_t event_hash(const char *topic, size_t topic_len, const char *payload, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < topic_len; i++)
        h = (h ^ (unsigned char)topic[i]) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)payload[i]) * 1099511628211ull;
    return h;
}

/* echo_take tells whether ev is the local copy of an imported event, and
 * forgets it. Expired entries at the head go first. */
static bool echo_take(nats_bridge *n, const bus_event *ev)
{
    int64_t now = uv_now(n->loop);
    nb_echo *e;

    while ((e = base_ring_peek(&n->echo)) != NULL && (e->hash == 0 || now - e->ts_ms > ECHO_TTL_MS))
        base_free(base_ring_pop(&n->echo));
    if (base_ring_count(&n->echo) == 0) {
        base_ring_free(&n->echo);
        return false;
    }
    uint64_t h = event_hash(ev->topic, ev->topic_len, ev->payload, ev->payload_len);
    if (h == 0)
        h = 1;
    for (size_t i = 0; i < base_ring_count(&n->echo); i++) {
        e = n->echo.slots[(n->echo.head + i) % n->echo.cap];
        if (e->hash == h) {
            e->hash = 0; /* a tombstone, popped when it reaches the head */
            while ((e = base_ring_peek(&n->echo)) != NULL && e->hash == 0)
                base_free(base_ring_pop(&n->echo));
            return true;
        }
    }
    return false;
}

static bool is_fleet(const char *topic, size_t len)
{
    return len >= strlen(FLEET_PREFIX) && memcmp(topic, FLEET_PREFIX, strlen(FLEET_PREFIX)) == 0;
}

/* on_export: the subscriber queue's on_event for the `export` patterns. */
static void on_export(const bus_event *ev, void *data)
{
    nats_bridge *n = data;
    subscriber *s = &n->sub;
    sub_event *e;
    void *old = NULL;

    if (is_fleet(ev->topic, ev->topic_len) || echo_take(n, ev)) {
        s->ignored++;
        return;
    }
    s->received++;
    /* Nothing waiting and room in the batch: straight to libnats, no copy. */
    if (subscriber_depth(s) == 0 && n->ready && n->up && !n->stopping &&
        n->batch_bytes < EXPORT_BATCH_BYTES) {
        if (export_one(n, ev->topic, ev->topic_len, ev->payload, ev->payload_len))
            s->done++;
        else
            s->failed++;
        return;
    }
    e = base_malloc(sizeof(*e) + ev->topic_len + 1 + ev->payload_len + 1);
    if (e == NULL) {
        s->dropped++;
        return;
    }
    e->ts_ms = base_now_ms();
    e->topic_len = ev->topic_len;
    e->payload_len = ev->payload_len;
    e->topic = e->data;
    e->payload = e->data + ev->topic_len + 1;
    memcpy(e->topic, ev->topic, ev->topic_len);
    e->topic[ev->topic_len] = '\0';
    memcpy(e->payload, ev->payload, ev->payload_len);
    e->payload[ev->payload_len] = '\0';
    if (base_ring_push(&s->queue, e, &old) < 0) {
        base_free(e);
        s->dropped++;
        return;
    }
    if (old != NULL) {
        base_free(old);
        s->dropped++;
    }
    drain_export(n);
}

/* export_one publishes one event as fleet.<host>.<topic> (buffered by
 * libnats, written by the write event); false when libnats refused it. */
static bool export_one(nats_bridge *n, const char *topic, size_t topic_len, const char *payload,
                       size_t len)
{
    char subject[sizeof(n->prefix) + BUS_TOPIC_MAX + 1];

    memcpy(subject, n->prefix, n->prefix_len);
    memcpy(subject + n->prefix_len, topic, topic_len);
    subject[n->prefix_len + topic_len] = '\0';
    natsStatus s = api.natsConnection_Publish(n->nc, subject, payload, (int)len);
    if (s != NATS_OK)
        worker_set_error(n->w, "export %.255s: %s", topic, api.natsStatus_GetText(s));
    n->batch_bytes += n->prefix_len + topic_len + len + 16;
    return s == NATS_OK;
}

/* drain_export hands queued events to libnats, oldest first, while the
 * connection is up and the current batch has room. */
static void drain_export(nats_bridge *n)
{
    sub_event *e;

    while (n->ready && n->up && !n->stopping && n->batch_bytes < EXPORT_BATCH_BYTES &&
           (e = subscriber_pop(&n->sub)) != NULL) {
        bool ok = export_one(n, e->topic, e->topic_len, e->payload, e->payload_len);
        subscriber_done(&n->sub, e, ok);
    }
}

/* ---- import and requests ---------------------------------------------------------------- */

static void echo_remember(nats_bridge *n, const char *topic, size_t topic_len, const char *payload,
                          size_t len)
{
    const json_t *pats = json_object_get(worker_config(n->w), "export"), *p;
    size_t i;
    bool match = false;

    json_array_foreach(pats, i, p)
    {
        if (bus_topic_match(json_string_value(p), json_string_length(p), topic, topic_len)) {
            match = true;
            break;
        }
    }
    if (!match || is_fleet(topic, topic_len))
        return;
    if (n->echo.max == 0)
        base_ring_init(&n->echo, ECHO_MAX);
    nb_echo *e = base_malloc(sizeof(*e)), *old = NULL;
    if (e == NULL)
        return; /* the copy will be exported: a duplicate, not a loop */
    e->hash = event_hash(topic, topic_len, payload, len);
    if (e->hash == 0)
        e->hash = 1;
    e->ts_ms = (int64_t)uv_now(n->loop);
    if (base_ring_push(&n->echo, e, (void **)&old) < 0)
        base_free(e);
    base_free(old);
}

static void import_msg(nats_bridge *n, const char *subj, const char *data, size_t len)
{
    size_t subj_len = strlen(subj);
    const char *topic = subj;

    if (strncmp(subj, n->prefix, n->prefix_len) == 0)
        topic = subj + n->prefix_len;
    else if (strncmp(subj, FLEET_PREFIX "all.", strlen(FLEET_PREFIX "all.")) == 0)
        topic = subj + strlen(FLEET_PREFIX "all.");
    size_t topic_len = subj_len - (size_t)(topic - subj);
    if (bus_topic_check(topic, topic_len) < 0) {
        n->import_bad_topic++;
        return;
    }
    if (bus_topic_reserved(topic, topic_len)) {
        n->import_reserved++;
        return;
    }
    if (!bus_json_check(data, len)) {
        n->import_bad_json++;
        return;
    }
    int rv = worker_publish(n->w, topic, data, len);
    if (rv < 0) {
        n->import_failed++;
        worker_set_error(n->w, "import %.200s: %s", subj, strerror(-rv));
        return;
    }
    n->imported++;
    echo_remember(n, topic, topic_len, data, len);
}

static void reply_raw(nats_bridge *n, const char *reply, const char *body, size_t len)
{
    if (!n->up || n->stopping || n->nc == NULL) {
        n->replies_lost++;
        return;
    }
    natsStatus s = api.natsConnection_Publish(n->nc, reply, body, (int)len);
    if (s != NATS_OK)
        n->replies_lost++;
}

static void reply_error(nats_bridge *n, const char *reply, const char *code, const char *msg)
{
    json_t *o = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", code, "message", msg);
    char *s = o != NULL ? base_json_dumps(o, JSON_COMPACT) : NULL;
    if (s != NULL)
        reply_raw(n, reply, s, strlen(s));
    else
        n->replies_lost++;
    free(s);
    json_decref(o);
}

static void on_bus_reply(const char *reply, size_t len, void *data)
{
    nb_request *r = data;
    nats_bridge *n = r->n;

    if (n != NULL) {
        worker *prev = worker_enter(n->w);
        base_list_remove(&n->pending, &r->node);
        reply_raw(n, r->reply, reply, len);
        worker_leave(prev);
    }
    base_free(r);
}

/* request_msg routes one NATS request as a bus request. The body must be
 * exactly {"service": string, "op": string, "args"?: object}, as on
 * request.ipc. */
static void request_msg(nats_bridge *n, const char *reply, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *o;
    const char *key, *service = NULL, *op = NULL;
    json_t *v, *args = NULL;
    char msg[300];

    n->requests_n++;
    if (reply == NULL || reply[0] == '\0') {
        n->requests_bad++; /* nobody to answer */
        return;
    }
    o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        n->requests_bad++;
        snprintf(msg, sizeof(msg), "the request is not a JSON object%s%s", o == NULL ? ": " : "",
                 o == NULL ? jerr.text : "");
        reply_error(n, reply, "bad_request", msg);
        json_decref(o);
        return;
    }
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "service") == 0 && json_is_string(v))
            service = json_string_value(v);
        else if (strcmp(key, "op") == 0 && json_is_string(v))
            op = json_string_value(v);
        else if (strcmp(key, "args") == 0 && json_is_object(v))
            args = v;
        else {
            snprintf(msg, sizeof(msg),
                     "request member \"%.64s\": expected {\"service\": string, \"op\": string, "
                     "\"args\": object}",
                     key);
            goto bad;
        }
    }
    if (service == NULL || op == NULL) {
        snprintf(msg, sizeof(msg), "the request needs \"service\" and \"op\" strings");
        goto bad;
    }
    if (n->pending.count >= REQUESTS_MAX) {
        n->requests_busy++;
        snprintf(msg, sizeof(msg), "%d requests of this NATS bridge are waiting already",
                 REQUESTS_MAX);
        reply_error(n, reply, "busy", msg);
        json_decref(o);
        return;
    }
    size_t rlen = strlen(reply);
    nb_request *r = base_malloc(sizeof(*r) + rlen + 1);
    if (r == NULL) {
        reply_error(n, reply, "internal", "out of memory");
        json_decref(o);
        return;
    }
    memset(r, 0, sizeof(*r));
    memcpy(r->reply, reply, rlen + 1);
    r->n = n;
    base_list_append(&n->pending, &r->node);
    /* the reply may come at once, inside this call */
    int rv = bus_request_local(worker_bus(n->w), service, op, args, on_bus_reply, r);
    if (rv < 0) {
        base_list_remove(&n->pending, &r->node);
        base_free(r);
        snprintf(msg, sizeof(msg), "the bus refused the request: %s", strerror(-rv));
        reply_error(n, reply, rv == -ENOMEM ? "internal" : "unavailable", msg);
    }
    json_decref(o);
    return;
bad:
    n->requests_bad++;
    reply_error(n, reply, "bad_request", msg);
    json_decref(o);
}

/* drain_subs takes every message libnats queued on the subscriptions. */
static void drain_subs(nats_bridge *n)
{
    if (!n->ready || n->stopping)
        return;
    for (size_t i = 0; i < n->n_subs; i++) {
        int pending = 0;
        if (api.natsSubscription_GetPending(n->subs[i], &pending, NULL) != NATS_OK)
            continue;
        while (pending-- > 0 && !n->stopping) {
            natsMsg *m = NULL;
            natsStatus s = api.natsSubscription_NextMsg(&m, n->subs[i], 0);
            if (s == NATS_SLOW_CONSUMER) {
                n->import_failed++; /* libnats dropped some: counted once per run */
                continue;
            }
            if (s != NATS_OK || m == NULL)
                break;
            const char *subj = api.natsMsg_GetSubject(m);
            const char *data = api.natsMsg_GetData(m);
            size_t len = (size_t)api.natsMsg_GetDataLength(m);
            if (n->sub_request[i])
                request_msg(n, api.natsMsg_GetReply(m), data != NULL ? data : "", len);
            else if (!(n->requests &&
                       (strcmp(subj, n->req_host) == 0 || strcmp(subj, n->req_all) == 0)))
                import_msg(n, subj, data != NULL ? data : "", len);
            api.natsMsg_Destroy(m);
        }
    }
}

/* ---- connect (thread pool) -------------------------------------------------------------- */

static void connect_work(uv_work_t *req)
{
    nats_bridge *n = req->data;
    natsConnection *nc = NULL;
    const json_t *imp = json_object_get(worker_config(n->w), "import"), *p;
    size_t i;

    natsStatus s = api.natsConnection_Connect(&nc, n->opts);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
        const char *why = api.nats_GetLastError(NULL);
        n->work_rc = (int)s;
        snprintf(n->work_error, sizeof(n->work_error), "connecting to NATS: %s",
                 why != NULL && why[0] ? why : api.natsStatus_GetText(s));
        return;
    }
    n->nc = nc;
    if (s == NATS_OK)
        record_url(n, nc);
    /* Subscribing takes the connection's lock, which a reconnect thread
     * may hold for a connect attempt: here, not on the loop. */
    json_array_foreach(imp, i, p)
    {
        if (n->n_subs >= SUBS_MAX)
            break;
        s = api.natsConnection_SubscribeSync(&n->subs[n->n_subs], nc, json_string_value(p));
        if (s != NATS_OK)
            goto fail_sub;
        n->sub_request[n->n_subs++] = false;
    }
    if (n->requests) {
        const char *rs[2] = {n->req_host, n->req_all};
        for (i = 0; i < 2 && n->n_subs < SUBS_MAX; i++) {
            s = api.natsConnection_SubscribeSync(&n->subs[n->n_subs], nc, rs[i]);
            if (s != NATS_OK)
                goto fail_sub;
            n->sub_request[n->n_subs++] = true;
        }
    }
    n->work_rc = NATS_OK;
    return;
fail_sub:
    n->work_rc = (int)s;
    snprintf(n->work_error, sizeof(n->work_error), "subscribing on NATS: %s",
             api.natsStatus_GetText(s));
}

/* Stop, step 1 (while connected): the server has everything handed to
 * libnats once a PING sent after it comes back. The loop keeps polling
 * meanwhile: it writes the buffer and reads the PONG. */
static void flush_work(uv_work_t *req)
{
    nats_bridge *n = req->data;
    n->work_rc = (int)api.natsConnection_FlushTimeout(n->nc, STOP_FLUSH_MS);
}

/* Stop, step 2, after the loop closed its poll (the socket is still
 * open): Close joins libnats' threads and closes the socket. */
static void close_work(uv_work_t *req)
{
    nats_bridge *n = req->data;
    api.natsConnection_Close(n->nc);
}

static void begin_close(nats_bridge *n);

static void after_connect(uv_work_t *req, int status)
{
    nats_bridge *n = req->data;
    worker *prev = worker_enter(n->w);

    n->work_busy = false;
    (void)status;
    if (n->work_rc != NATS_OK && !n->stopping) {
        worker_fail(n->w, "%s", n->work_error);
    } else if (n->work_rc == NATS_OK) {
        n->ready = true;
        reconcile(n);
        drain_subs(n);
        drain_export(n);
    }
    if (n->stopping)
        begin_close(n);
    worker_leave(prev);
}

static void after_flush(uv_work_t *req, int status)
{
    nats_bridge *n = req->data;
    worker *prev = worker_enter(n->w);

    (void)status;
    n->work_busy = false;
    if (n->work_rc != NATS_OK)
        worker_log(n->w, BASE_LOG_WARN, "NATS flush at stop: %s",
                   api.natsStatus_GetText((natsStatus)n->work_rc));
    begin_close(n);
    worker_leave(prev);
}

/* Stop, step 3: nothing of libnats waits any more; the rest is frees. */
static void after_close(uv_work_t *req, int status)
{
    nats_bridge *n = req->data;
    worker *prev = worker_enter(n->w);

    (void)status;
    n->work_busy = false;
    for (size_t i = 0; i < n->n_subs; i++)
        api.natsSubscription_Destroy(n->subs[i]);
    n->n_subs = 0;
    api.natsConnection_Destroy(n->nc);
    api.natsOptions_Destroy(n->opts);
    n->opts = NULL;
    n->stop_closed = true;
    maybe_finish(n);
    worker_leave(prev);
}

/* ---- start and stop --------------------------------------------------------------------- */

static int set_options(nats_bridge *n, char *err, size_t err_size)
{
    const json_t *cfg = worker_config(n->w), *url = json_object_get(cfg, "url"), *v;
    char secret[SECRET_MAX], name[160];
    const char *f;
    bool tls = false;
    size_t i;
    int rv;
    natsStatus s;

    if (json_is_string(url))
        n->urls[n->n_urls++] = json_string_value(url);
    else
        json_array_foreach(url, i, v) n->urls[n->n_urls++] = json_string_value(v);
    for (i = 0; i < n->n_urls; i++)
        tls |= strncmp(n->urls[i], "tls://", 6) == 0;

    if ((s = api.natsOptions_Create(&n->opts)) != NATS_OK)
        return base_errf(err, err_size, "natsOptions_Create: %s", api.natsStatus_GetText(s));
    snprintf(name, sizeof(name), "herd %s/%s", n->host, worker_name(n->w));
    s = api.natsOptions_SetServers(n->opts, n->urls, (int)n->n_urls);
    if (s == NATS_OK)
        s = api.natsOptions_SetName(n->opts, name);
    if (s == NATS_OK)
        s = api.natsOptions_SetEventLoop(n->opts, n, ad_attach, ad_read, ad_write, ad_detach);
    if (s == NATS_OK)
        s = api.natsOptions_SetSendAsap(n->opts, true);
    if (s == NATS_OK)
        s = api.natsOptions_SetNoEcho(n->opts, true);
    if (s == NATS_OK)
        s = api.natsOptions_SetTimeout(n->opts, CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = api.natsOptions_SetRetryOnFailedConnect(n->opts, true, on_connected, n);
    if (s == NATS_OK)
        s = api.natsOptions_SetMaxReconnect(n->opts, -1);
    if (s == NATS_OK)
        s = api.natsOptions_SetCustomReconnectDelay(n->opts, reconnect_delay, n);
    if (s == NATS_OK)
        s = api.natsOptions_SetReconnectBufSize(n->opts, RECONNECT_BUF_BYTES);
    if (s == NATS_OK)
        s = api.natsOptions_SetIOBufSize(n->opts, IO_BUF_BYTES);
    if (s == NATS_OK)
        s = api.natsOptions_SetPingInterval(n->opts, PING_INTERVAL_MS);
    if (s == NATS_OK)
        s = api.natsOptions_SetMaxPingsOut(n->opts, 3);
    if (s == NATS_OK)
        s = api.natsOptions_SetClosedCB(n->opts, on_closed, n);
    if (s == NATS_OK)
        s = api.natsOptions_SetDisconnectedCB(n->opts, on_disconnected, n);
    if (s == NATS_OK)
        s = api.natsOptions_SetReconnectedCB(n->opts, on_reconnected, n);
    if (s != NATS_OK)
        return base_errf(err, err_size, "NATS options: %s", api.natsStatus_GetText(s));

    if ((f = json_string_value(json_object_get(cfg, "token_file"))) != NULL) {
        if ((rv = secret_file("token_file", f, secret, sizeof(secret), err, err_size)) < 0)
            return rv;
        s = api.natsOptions_SetToken(n->opts, secret);
    } else if ((f = json_string_value(json_object_get(cfg, "password_file"))) != NULL) {
        if ((rv = secret_file("password_file", f, secret, sizeof(secret), err, err_size)) < 0)
            return rv;
        s = api.natsOptions_SetUserInfo(n->opts, json_string_value(json_object_get(cfg, "user")),
                                        secret);
    } else if ((f = json_string_value(json_object_get(cfg, "creds_file"))) != NULL) {
        if ((rv = secret_file("creds_file", f, NULL, 0, err, err_size)) < 0)
            return rv;
        /* libnats reads the file at every connect (the JWT and the seed) */
        s = api.natsOptions_SetUserCredentialsFromFiles(n->opts, f, NULL);
    }
    memset(secret, 0, sizeof(secret));
    if (s != NATS_OK)
        return base_errf(err, err_size, "NATS credentials: %s", api.natsStatus_GetText(s));
    if (tls) {
        s = api.natsOptions_SetSecure(n->opts, true);
        if (s == NATS_OK && (f = json_string_value(json_object_get(cfg, "ca_file"))) != NULL) {
            struct stat st;
            if (stat(f, &st) < 0 || access(f, R_OK) < 0)
                return base_errf(err, err_size, "ca_file \"%.200s\": %s", f, strerror(errno));
            s = api.natsOptions_LoadCATrustedCertificates(n->opts, f);
        }
        if (s != NATS_OK) {
            const char *why = api.nats_GetLastError(NULL);
            return base_errf(err, err_size, "NATS TLS: %s",
                             why != NULL && why[0] ? why : api.natsStatus_GetText(s));
        }
    }
    return 0;
}

static void on_async_freed(uv_handle_t *h)
{
    base_free(h);
}

static int nats_start(worker *w, void *state)
{
    nats_bridge *n = state;
    const json_t *cfg = worker_config(w), *v, *p;
    char err[512];
    size_t i;
    int rv;

    n->w = w;
    n->loop = worker_loop(w);
    n->loop_thread = pthread_self();
    n->poll_fd = -1;
    base_list_init(&n->pending);
    n->rng = (uint32_t)getpid() ^ (uint32_t)(uintptr_t)n;
    v = json_object_get(cfg, "host");
    snprintf(n->host, sizeof(n->host), "%s",
             json_is_string(v) ? json_string_value(v) : worker_host_name(w));
    snprintf(n->prefix, sizeof(n->prefix), FLEET_PREFIX "%s.", n->host);
    n->prefix_len = strlen(n->prefix);
    snprintf(n->req_host, sizeof(n->req_host), FLEET_PREFIX "%s.request", n->host);
    snprintf(n->req_all, sizeof(n->req_all), FLEET_PREFIX "all.request");
    v = json_object_get(cfg, "requests");
    n->requests = !json_is_false(v);

    if ((rv = api_load(w, err, sizeof(err))) < 0) {
        worker_set_error(w, "%s", err);
        return rv;
    }
    if ((rv = set_options(n, err, sizeof(err))) < 0) {
        worker_set_error(w, "%s", err);
        api.natsOptions_Destroy(n->opts);
        return rv;
    }
    /* An empty `subscribe` list: the queue only (its size from queue_max). */
    if ((rv = subscriber_start(&n->sub, w, NULL, NULL)) < 0)
        goto fail_opts;
    if (pthread_mutex_init(&n->mu, NULL) != 0) {
        worker_set_error(w, "pthread_mutex_init failed");
        rv = -ENOMEM;
        goto fail_opts;
    }
    n->async = base_calloc(1, sizeof(*n->async));
    rv = n->async != NULL ? uv_async_init(n->loop, n->async, on_async) : -ENOMEM;
    if (rv < 0) {
        base_free(n->async);
        n->async = NULL;
        pthread_mutex_destroy(&n->mu);
        worker_set_error(w, "uv_async_init: %s", uv_strerror(rv));
        goto fail_opts;
    }
    n->async->data = n;
    n->async_open = true;
    size_t bus_queue =
        n->sub.queue.max > SUBSCRIBER_QUEUE_DEFAULT ? n->sub.queue.max : SUBSCRIBER_QUEUE_DEFAULT;
    json_array_foreach(json_object_get(cfg, "export"), i, p)
    {
        rv = worker_subscribe(w, json_string_value(p), bus_queue, on_export, n, NULL);
        if (rv < 0) {
            worker_set_error(w, "subscribe %s: %s", json_string_value(p), strerror(-rv));
            goto fail;
        }
    }
    n->sub.accept = NULL; /* the filter is on_export's own; `ignored` shown below */
    n->work.data = n;
    n->work_busy = true;
    if ((rv = uv_queue_work(n->loop, &n->work, connect_work, after_connect)) < 0) {
        n->work_busy = false;
        worker_set_error(w, "uv_queue_work: %s", uv_strerror(rv));
        goto fail;
    }
    return 0;
fail:
    /* Nothing of libnats ran yet with n. The async handle closes after the
     * state is freed: its close callback frees only the handle. */
    uv_close((uv_handle_t *)n->async, on_async_freed);
    n->async_open = false;
    pthread_mutex_destroy(&n->mu);
fail_opts:
    subscriber_stop(&n->sub);
    api.natsOptions_Destroy(n->opts);
    n->opts = NULL;
    return rv;
}

static void on_async_closed(uv_handle_t *h)
{
    nats_bridge *n = h->data;
    worker *w = n->w;
    base_free(n->async);
    n->async = NULL;
    pthread_mutex_destroy(&n->mu);
    void *e;
    while ((e = base_ring_pop(&n->echo)) != NULL)
        base_free(e);
    base_ring_free(&n->echo);
    worker_stopped(w);
}

/* maybe_finish ends a stop once libnats is done with n. */
static void maybe_finish(nats_bridge *n)
{
    bool closed;

    if (!n->stopping || !n->stop_closed || n->open_polls > 0 || !n->async_open)
        return;
    pthread_mutex_lock(&n->mu);
    closed = n->shared.closed || n->nc == NULL;
    pthread_mutex_unlock(&n->mu);
    if (!closed)
        return;
    n->async_open = false;
    uv_close((uv_handle_t *)n->async, on_async_closed);
}

/* begin_close: the poll goes (libnats closes the socket itself, on the
 * pool thread: a poll must not outlive its descriptor), then Close and
 * Destroy on the pool. */
static void begin_close(nats_bridge *n)
{
    bool up;

    if (n->work_busy)
        return; /* after_connect or after_flush comes back here */
    pthread_mutex_lock(&n->mu);
    up = n->shared.up;
    pthread_mutex_unlock(&n->mu);
    n->up = false;
    if (n->nc != NULL && up && !n->flushed && n->poll != NULL) {
        n->flushed = true;
        n->work_busy = true;
        if (uv_queue_work(n->loop, &n->work, flush_work, after_flush) == 0)
            return;
        n->work_busy = false;
    }
    n->freeze_polls = true;
    poll_close(n);
    n->work_busy = true;
    if (n->nc == NULL || uv_queue_work(n->loop, &n->work, close_work, after_close) < 0) {
        /* nothing to close, or no pool: here (blocking at most for
         * libnats' own 500 ms flush) */
        if (n->nc != NULL)
            close_work(&n->work);
        after_close(&n->work, 0);
    }
}

static void nats_stop(worker *w, void *state)
{
    nats_bridge *n = state;
    nb_request *r;
    (void)w;

    if (n->stopping)
        return;
    n->stopping = true;
    n->up = false;
    subscriber_stop(&n->sub);
    BASE_LIST_FOREACH(&n->pending, nb_request, node, r)
    {
        base_list_remove(&n->pending, &r->node);
        r->n = NULL; /* its reply is dropped; on_bus_reply frees it */
    }
    begin_close(n);
}

static void nats_health(worker *w, void *state, json_t *obj)
{
    nats_bridge *n = state;
    nb_shared s;
    uint64_t held = LIBNATS_CONN_ESTIMATE;

    pthread_mutex_lock(&n->mu);
    s = n->shared;
    pthread_mutex_unlock(&n->mu);
    for (size_t i = 0; n->ready && !n->stopping && i < n->n_subs; i++) {
        int bytes = 0;
        if (api.natsSubscription_GetPending(n->subs[i], NULL, &bytes) == NATS_OK && bytes > 0)
            held += (uint64_t)bytes;
    }
    worker_set_memory(w, held);
    subscriber_health(&n->sub, obj);
    json_object_set_new(obj, "ignored", json_integer((json_int_t)n->sub.ignored));
    json_object_set_new(obj, "connected", json_boolean(n->up));
    json_object_set_new(obj, "server", json_string(s.url));
    json_object_set_new(obj, "host", json_string(n->host));
    json_object_set_new(obj, "exported", json_integer((json_int_t)n->sub.done));
    json_object_set_new(obj, "imported", json_integer((json_int_t)n->imported));
    json_object_set_new(obj, "reconnects", json_integer((json_int_t)s.reconnects));
    json_object_set_new(obj, "requests", json_integer((json_int_t)n->requests_n));
    json_object_set_new(obj, "requests_refused",
                        json_integer((json_int_t)(n->requests_bad + n->requests_busy)));
    json_object_set_new(obj, "replies_lost", json_integer((json_int_t)n->replies_lost));
    json_object_set_new(obj, "import_refused",
                        json_pack("{s:I,s:I,s:I,s:I}", "bad_topic", (json_int_t)n->import_bad_topic,
                                  "bad_json", (json_int_t)n->import_bad_json, "reserved",
                                  (json_int_t)n->import_reserved, "failed",
                                  (json_int_t)n->import_failed));
}

const worker_kind worker_nats_kind = {
    .name = "nats",
    .size = sizeof(nats_bridge),
    .validate = nats_validate,
    .start = nats_start,
    .stop = nats_stop,
    .health = nats_health,
    .paths = nats_paths,
};
