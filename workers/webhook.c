/*
 * The `webhook` worker kind (DESIGN.md section 5): POSTs each matching
 * event as JSON, {"ts","topic","payload"}, to `url` (http or https),
 * through libcurl's multi-socket API on the loop.
 *
 * Keys: subscribe, queue_max (subscriber.h); url (required, http:// or
 * https://); headers ({"Name": "value"}, sent with every request after
 * Content-Type: application/json); timeout_s (10, 1..3600: one attempt,
 * connect included); max_in_flight (4, 1..64); max_retries (3, 0..100);
 * retry_backoff ({"initial_ms": 500, "max_ms": 30000}, doubling);
 * keepalive_s (30, 0..3600: how long connections stay open after the last
 * request); ca_file (PEM, https only; default the system's CAs). Health,
 * beyond the subscriber's counts: in_flight, retries, timeouts, http_4xx,
 * http_5xx, conn_errors (attempts, not events) and last_status (the last
 * HTTP status received, 0 before any).
 *
 * Design notes
 * - libcurl is not linked. The first webhook worker that starts opens
 *   libcurl.so.4 with dlopen and reaches every function through `api`, a
 *   table of dlsym'd pointers (CURL_DISABLE_TYPECHECK: the header's macros
 *   would hide the calls), so a herdd without webhook workers never maps
 *   libcurl and its TLS stack. It is opened at the start, not on the first
 *   event, so that a missing library fails the start (last_error and the
 *   restart policy show it) instead of every event. dlopen reads the
 *   library from disk on the loop, once per process. The library stays loaded for good (never
 *   dlclose): curl keeps global state, and a resolver thread detached at a
 *   stop (below) may still run its code.
 * - curl_global_init_mem runs once, with herd's accounted allocator, while
 *   the unaccounted slot is current: what curl and OpenSSL set up for the
 *   whole process belongs to herdd, not to the worker that happened to
 *   start first. From then on every allocation curl makes inside this
 *   kind's callbacks (each bracketed with worker_enter/worker_leave, or run
 *   by the runtime) is charged to the worker. OpenSSL allocates with its
 *   own malloc, not through curl's callbacks: a TLS connection's state is
 *   not in heap_bytes (replacing OpenSSL's allocator would hand OpenSSL
 *   blocks with herd's header to any library of the process that frees
 *   them with free(3)).
 * - One session per worker at a time: a multi handle, its sockets (one
 *   uv_poll each, from CURLMOPT_SOCKETFUNCTION), one uv_timer for curl's
 *   timeout (CURLMOPT_TIMERFUNCTION) and one `wake` timer (the next retry
 *   due, or the end of keepalive_s when idle), and the header list. The
 *   session is created on the first event and closed keepalive_s after the
 *   last request ended (its cached connections, DNS and CA caches go with
 *   it), so an idle worker holds its struct and its subscriptions only. A
 *   closing session is detached from the worker (a new event opens a new
 *   one) and frees itself once its handles are closed; a stop waits for
 *   every closing session before worker_stopped.
 * - curl is never called from inside one of its own callbacks: the socket
 *   callback only starts, stops or closes a poll, the timer callback only
 *   starts or stops a timer (a 0 ms timer runs curl on the next turn).
 *   Completions are read (curl_multi_info_read) after each
 *   curl_multi_socket_action, and the next events are started there.
 * - Nothing blocks the loop: no curl_easy_perform; CURLOPT_NOSIGNAL; names
 *   are resolved by curl's threaded resolver (getaddrinfo on a helper
 *   thread, its end signalled to the loop through a socket curl hands to
 *   the socket callback; numeric hosts need no lookup). CURLOPT_QUICK_EXIT
 *   lets a stop detach a lookup still running instead of joining it. A
 *   libcurl built without an asynchronous resolver is refused at start for
 *   a URL whose host is a name.
 * - A request holds one in-flight slot from the moment its event leaves the
 *   subscriber queue until it is done or failed, retries and their backoff
 *   included, so max_in_flight bounds what is held (events, bodies, easy
 *   handles) whatever the server does. A retry that gave its slot back would
 *   let a failing server's events pile up beyond the queue's bound, or,
 *   requeued, be dropped ahead of newer events. The price: while a server
 *   fails, the worker sends at most max_in_flight events per backoff, and
 *   the queue absorbs (and, full, drops) the rest. Events are not ordered
 *   beyond max_in_flight 1 (with 1, a retry holds back the next event).
 * - Outcomes, per attempt: 2xx done; 4xx (and 1xx or 3xx: redirects are
 *   never followed) failed at once; 5xx, a timeout (timeout_s, the whole
 *   attempt including connect) or any other curl error (refused, reset,
 *   TLS, DNS) retried after retry_backoff, doubling up to max_ms, at most
 *   max_retries times, then failed. Delivery is at least once: a server
 *   that took an event but whose answer was lost sees it again.
 * - Counts: received = done + failed + dropped + queue_depth + in_flight at
 *   every moment, in_flight being the requests alive. An event leaves the
 *   queue and becomes a request in one step; a request ends in
 *   subscriber_done. At a stop, requests are aborted and counted failed,
 *   and events still queued are counted dropped.
 * - Stop: no new requests; every transfer is removed from the multi (its
 *   connection closed), the multi freed, every poll and timer closed;
 *   worker_stopped follows the last close callback, whatever the server
 *   does. Nothing waits for the network.
 * - Secrets: URLs often carry a token (in the path, the query or as
 *   user:password) and headers an Authorization: log lines and last_error
 *   name the URL's scheme, host and port only, and never a header value.
 */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "workers/subscriber.h"
#include "workers/worker.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEBHOOK_LIB "libcurl.so.4"
#define WEBHOOK_LIB_PACKAGE "libcurl4"
/* CURLOPT_PROTOCOLS_STR */
#define WEBHOOK_CURL_MIN 0x075500
#define WEBHOOK_CURL_MIN_TEXT "7.85.0"
#define URL_MAX_BYTES 8192
#define TIMEOUT_DEFAULT_S 10
#define TIMEOUT_MAX_S 3600
#define IN_FLIGHT_DEFAULT 4
#define IN_FLIGHT_MAX 64
#define RETRIES_DEFAULT 3
#define RETRIES_MAX 100
#define RETRY_INITIAL_DEFAULT_MS 500
#define RETRY_MAX_DEFAULT_MS 30000
#define RETRY_MS_MAX 3600000
#define KEEPALIVE_DEFAULT_S 30
#define KEEPALIVE_MAX_S 3600
#define HEADERS_MAX 64
#define HEADER_NAME_MAX 256
#define HEADER_VALUE_MAX 8192
/* The start of a response body kept for messages. */
#define REPLY_KEEP 120
#define ERROR_LOG_MS 10000
/* "scheme://host:port" of a URL, for messages */
#define ORIGIN_MAX 300

/* ---- libcurl, opened on first use --------------------------------------------- */

typedef struct curl_api {
    CURLcode (*global_init_mem)(long, curl_malloc_callback, curl_free_callback,
                                curl_realloc_callback, curl_strdup_callback, curl_calloc_callback);
    curl_version_info_data *(*version_info)(CURLversion);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
    CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    CURLMcode (*multi_cleanup)(CURLM *);
    const char *(*multi_strerror)(CURLMcode);
} curl_api;

static const struct {
    const char *name;
    size_t offset;
} api_symbols[] = {
    {"curl_global_init_mem", offsetof(curl_api, global_init_mem)},
    {"curl_version_info", offsetof(curl_api, version_info)},
    {"curl_easy_init", offsetof(curl_api, easy_init)},
    {"curl_easy_setopt", offsetof(curl_api, easy_setopt)},
    {"curl_easy_getinfo", offsetof(curl_api, easy_getinfo)},
    {"curl_easy_cleanup", offsetof(curl_api, easy_cleanup)},
    {"curl_easy_strerror", offsetof(curl_api, easy_strerror)},
    {"curl_slist_append", offsetof(curl_api, slist_append)},
    {"curl_slist_free_all", offsetof(curl_api, slist_free_all)},
    {"curl_multi_init", offsetof(curl_api, multi_init)},
    {"curl_multi_setopt", offsetof(curl_api, multi_setopt)},
    {"curl_multi_add_handle", offsetof(curl_api, multi_add_handle)},
    {"curl_multi_remove_handle", offsetof(curl_api, multi_remove_handle)},
    {"curl_multi_socket_action", offsetof(curl_api, multi_socket_action)},
    {"curl_multi_assign", offsetof(curl_api, multi_assign)},
    {"curl_multi_info_read", offsetof(curl_api, multi_info_read)},
    {"curl_multi_cleanup", offsetof(curl_api, multi_cleanup)},
    {"curl_multi_strerror", offsetof(curl_api, multi_strerror)},
};

/* Loop thread only, like every worker call. */
static curl_api api;
static bool api_ready;
static bool api_async_dns, api_tls;

/* api_load opens libcurl and initialises it, once per process; err says
 * why not (the library is left mapped only once curl was initialised). */
static int api_load(worker *w, char *err, size_t err_size)
{
    curl_api loaded;
    void *lib;

    if (api_ready)
        return 0;
    lib = dlopen(WEBHOOK_LIB, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *why = dlerror();
        snprintf(err, err_size, "cannot load %s (install the Debian package %s): %s", WEBHOOK_LIB,
                 WEBHOOK_LIB_PACKAGE, why != NULL ? why : "dlopen failed");
        return -ENOENT;
    }
    for (size_t i = 0; i < sizeof(api_symbols) / sizeof(api_symbols[0]); i++) {
        void *sym = dlsym(lib, api_symbols[i].name);
        if (sym == NULL) {
            snprintf(err, err_size, "%s has no %s: not the libcurl of the Debian package %s",
                     WEBHOOK_LIB, api_symbols[i].name, WEBHOOK_LIB_PACKAGE);
            dlclose(lib); /* nothing of it ran yet */
            return -ENOENT;
        }
        memcpy((char *)&loaded + api_symbols[i].offset, &sym, sizeof(sym));
    }
    curl_version_info_data *v = loaded.version_info(CURLVERSION_NOW);
    if (v == NULL || v->version_num < WEBHOOK_CURL_MIN) {
        snprintf(err, err_size, "%s is libcurl %s; the webhook kind needs %s or later", WEBHOOK_LIB,
                 v != NULL ? v->version : "of an unknown version", WEBHOOK_CURL_MIN_TEXT);
        dlclose(lib);
        return -ENOTSUP;
    }
    /* Process-wide state: charged to no worker. */
    uint32_t prev = base_mem_switch(0);
    CURLcode rc = loaded.global_init_mem(CURL_GLOBAL_DEFAULT, base_malloc, base_free, base_realloc,
                                         base_strdup, base_calloc);
    base_mem_switch(prev);
    if (rc != CURLE_OK) {
        /* curl_global_init may have started OpenSSL: keep the library. */
        snprintf(err, err_size, "%s: curl_global_init: %s", WEBHOOK_LIB, loaded.easy_strerror(rc));
        return -EIO;
    }
    api = loaded;
    api_ready = true;
    api_async_dns = (v->features & CURL_VERSION_ASYNCHDNS) != 0;
    api_tls = (v->features & CURL_VERSION_SSL) != 0;
    worker_log(w, BASE_LOG_INFO, "loaded %s: libcurl %s, %s", WEBHOOK_LIB, v->version,
               v->ssl_version != NULL ? v->ssl_version : "no TLS");
    return 0;
}

/* ---- state --------------------------------------------------------------------- */

typedef struct webhook webhook;
typedef struct wh_session wh_session;

typedef struct wh_socket {
    base_list_node node; /* in wh_session.sockets */
    wh_session *s;
    curl_socket_t fd;
    uv_poll_t poll;
} wh_socket;

struct wh_session {
    webhook *h; /* a stop waits for its closing sessions: h outlives s */
    worker *w;
    CURLM *multi;
    struct curl_slist *headers; /* shared by every easy handle */
    uv_timer_t curl_timer;      /* CURLMOPT_TIMERFUNCTION's */
    uv_timer_t wake;            /* the next retry due, or the keep-alive's end */
    base_list sockets;          /* wh_socket, polled for curl */
    unsigned open_handles;      /* not yet closed: freed at 0 once closing */
    bool closing;
};

typedef struct wh_request {
    base_list_node node; /* in webhook.requests */
    webhook *h;
    sub_event *ev; /* owned until subscriber_done */
    CURL *easy;
    base_buf body;
    unsigned retries; /* made so far */
    bool attached;    /* in the multi (not waiting for a retry) */
    uint64_t due_ms;  /* loop time of the retry, while not attached */
    size_t reply_len;
    char reply[REPLY_KEEP]; /* the start of the response body */
    char error[CURL_ERROR_SIZE];
} wh_request;

struct webhook {
    worker *w;
    subscriber sub;
    const char *url, *ca_file; /* borrowed from the config */
    const json_t *headers;
    uint64_t timeout_ms, keepalive_ms, retry_initial_ms, retry_max_ms;
    unsigned max_in_flight, max_retries;
    wh_session *session; /* NULL while idle */
    unsigned closing_sessions;
    base_list requests;
    uint64_t retries, timeouts, http_4xx, http_5xx, conn_errors;
    long last_status;
    uint64_t error_logged_ms, errors_unlogged;
    bool stopping, stopped, in_error;
};

/* ---- config ---------------------------------------------------------------------- */

static const char *const webhook_keys[] = {
    "subscribe",   "url",           "headers",     "timeout_s", "max_in_flight",
    "max_retries", "retry_backoff", "keepalive_s", "ca_file",   NULL};
static const char *const backoff_keys[] = {"initial_ms", "max_ms", NULL};
/* Headers the worker sets itself (or, for Expect, suppresses). */
static const char *const reserved_headers[] = {"Content-Type", "Content-Length",
                                               "Transfer-Encoding", "Expect", NULL};

/* show renders a config value for a message, cut at 80 bytes. */
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

/* A parsed URL: offsets into the string. */
typedef struct url_parts {
    bool https;
    size_t scheme_len;           /* "http://" or "https://" */
    size_t host_start, host_len; /* without brackets for IPv6 */
    size_t host_from;            /* the authority after any user:password@ */
    size_t authority_end;        /* the first '/', '?', '#' or the end */
    bool host_numeric;           /* an IPv4 or IPv6 literal */
} url_parts;

static bool host_char(unsigned char c)
{
    return base_token_char(c) || c == '.' || c == '~' || c == '%';
}

/* url_parse checks an http or https URL; NULL or the reason it is not one. */
static const char *url_parse(const char *u, size_t len, url_parts *out)
{
    size_t i, at, end, host_end;

    memset(out, 0, sizeof(*out));
    if (len > URL_MAX_BYTES)
        return "longer than 8192 bytes";
    if (len >= 7 && strncasecmp(u, "http://", 7) == 0)
        out->scheme_len = 7;
    else if (len >= 8 && strncasecmp(u, "https://", 8) == 0)
        out->scheme_len = 8, out->https = true;
    else
        return "expected an http:// or https:// URL";
    for (i = 0; i < len; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
            return "spaces, control characters and non-ASCII bytes must be percent-encoded";
    for (end = out->scheme_len; end < len && u[end] != '/' && u[end] != '?' && u[end] != '#'; end++)
        ;
    out->authority_end = end;
    at = out->scheme_len;
    for (i = out->scheme_len; i < end; i++)
        if (u[i] == '@')
            at = i + 1; /* after user:password */
    out->host_from = at;
    if (at < end && u[at] == '[') {
        const char *close = memchr(u + at, ']', end - at);
        char addr[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (close == NULL)
            return "an IPv6 address without its closing ']'";
        out->host_start = at + 1;
        out->host_len = (size_t)(close - u) - at - 1;
        if (out->host_len == 0 || out->host_len >= sizeof(addr))
            return "not an IPv6 address in [...]";
        memcpy(addr, u + out->host_start, out->host_len);
        addr[out->host_len] = '\0';
        if (inet_pton(AF_INET6, addr, &a6) != 1)
            return "not an IPv6 address in [...]";
        out->host_numeric = true;
        host_end = (size_t)(close - u) + 1;
    } else {
        out->host_start = at;
        for (host_end = at; host_end < end && u[host_end] != ':'; host_end++)
            if (!host_char((unsigned char)u[host_end]))
                return "a character that cannot be in a host name";
        out->host_len = host_end - at;
        if (out->host_len == 0)
            return "no host";
        char addr[INET_ADDRSTRLEN + 1];
        struct in_addr a4;
        if (out->host_len < sizeof(addr)) {
            memcpy(addr, u + at, out->host_len);
            addr[out->host_len] = '\0';
            out->host_numeric = inet_pton(AF_INET, addr, &a4) == 1;
        }
    }
    if (host_end < end) {
        unsigned long port = 0;
        if (u[host_end] != ':' || host_end + 1 == end || end - host_end > 6)
            return "bad port (expected 1 to 65535)";
        for (i = host_end + 1; i < end; i++) {
            if (u[i] < '0' || u[i] > '9')
                return "bad port (expected 1 to 65535)";
            port = port * 10 + (unsigned long)(u[i] - '0');
        }
        if (port < 1 || port > 65535)
            return "bad port (expected 1 to 65535)";
    }
    return NULL;
}

/* url_origin writes "scheme://host:port" of url (no user, path or query:
 * they may hold secrets) for messages. */
static const char *url_origin(const char *url, char out[ORIGIN_MAX])
{
    url_parts p;

    if (url_parse(url, strlen(url), &p) != NULL) {
        snprintf(out, ORIGIN_MAX, "the url");
        return out;
    }
    size_t len = p.authority_end - p.host_from;
    snprintf(out, ORIGIN_MAX, "%.*s%.*s", (int)p.scheme_len, url, (int)(len > 200 ? 200 : len),
             url + p.host_from);
    return out;
}

static bool header_name_char(unsigned char c)
{
    return base_token_char(c) || (c != '\0' && strchr("!#$%&'*+.^`|~", c) != NULL);
}

static int check_headers(const json_t *hs, const char *path, char *err, size_t err_size)
{
    const char *key;
    const json_t *v;
    char got[100];

    if (!json_is_object(hs))
        return base_errf(err, err_size,
                         "%s.headers: expected an object of header names to string values, got %s",
                         path, show(hs, got, sizeof(got)));
    if (json_object_size(hs) > HEADERS_MAX)
        return base_errf(err, err_size, "%s.headers: at most %d headers, got %zu", path,
                         HEADERS_MAX, json_object_size(hs));
    json_object_foreach((json_t *)hs, key, v)
    {
        size_t n = strlen(key);
        bool ok = n > 0 && n <= HEADER_NAME_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = header_name_char((unsigned char)key[i]);
        if (!ok)
            return base_errf(err, err_size,
                             "%s.headers: \"%.64s%s\" is not a header name (1 to %d letters, "
                             "digits or !#$%%&'*+-.^_`|~; no spaces, ':', CR or LF)",
                             path, key, n > 64 ? "..." : "", HEADER_NAME_MAX);
        for (const char *const *r = reserved_headers; *r != NULL; r++)
            if (strcasecmp(*r, key) == 0)
                return base_errf(err, err_size,
                                 "%s.headers.%s: set by the worker (the body is always "
                                 "application/json, sent whole, without Expect: 100-continue)",
                                 path, key);
        if (!json_is_string(v))
            return base_errf(err, err_size, "%s.headers.%s: expected a string, got %s", path, key,
                             json_is_object(v) || json_is_array(v) ? "a structure"
                                                                   : show(v, got, sizeof(got)));
        /* The value itself is never shown: it may be a credential. */
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len > HEADER_VALUE_MAX)
            return base_errf(err, err_size, "%s.headers.%s: the value is longer than %d bytes",
                             path, key, HEADER_VALUE_MAX);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\r' || c == '\n')
                return base_errf(err, err_size,
                                 "%s.headers.%s: the value contains CR or LF (a header cannot "
                                 "span lines)",
                                 path, key);
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return base_errf(err, err_size,
                                 "%s.headers.%s: the value contains a control character (byte "
                                 "0x%02x)",
                                 path, key, c);
        }
        if (len > 0 && (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t'))
            return base_errf(err, err_size,
                             "%s.headers.%s: the value starts or ends with white space, which "
                             "HTTP drops",
                             path, key);
    }
    return 0;
}

static int check_int(const json_t *v, const char *path, const char *key, json_int_t min,
                     json_int_t max, const char *what, char *err, size_t err_size)
{
    char got[100];

    if (v != NULL &&
        (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max))
        return base_errf(err, err_size, "%s.%s: expected %s from %lld to %lld, got %s", path, key,
                         what, (long long)min, (long long)max, show(v, got, sizeof(got)));
    return 0;
}

static int check_backoff(const json_t *b, const char *path, char *err, size_t err_size)
{
    const char *key;
    const json_t *v;
    char got[100], p[200];
    int rv;

    if (!json_is_object(b))
        return base_errf(err, err_size,
                         "%s.retry_backoff: expected an object such as {\"initial_ms\": %d, "
                         "\"max_ms\": %d}, got %s",
                         path, RETRY_INITIAL_DEFAULT_MS, RETRY_MAX_DEFAULT_MS,
                         show(b, got, sizeof(got)));
    json_object_foreach((json_t *)b, key, v)
    {
        if (strcmp(key, backoff_keys[0]) != 0 && strcmp(key, backoff_keys[1]) != 0)
            return base_errf(err, err_size,
                             "%s.retry_backoff.%.64s: unknown key (expected initial_ms or max_ms)",
                             path, key);
    }
    snprintf(p, sizeof(p), "%s.retry_backoff", path);
    for (int i = 0; i < 2; i++)
        if ((rv = check_int(json_object_get(b, backoff_keys[i]), p, backoff_keys[i], 1,
                            RETRY_MS_MAX, "milliseconds", err, err_size)) < 0)
            return rv;
    json_int_t initial = RETRY_INITIAL_DEFAULT_MS, max = RETRY_MAX_DEFAULT_MS;
    if ((v = json_object_get(b, "initial_ms")) != NULL)
        initial = json_integer_value(v);
    if ((v = json_object_get(b, "max_ms")) != NULL)
        max = json_integer_value(v);
    if (initial > max)
        return base_errf(err, err_size,
                         "%s.retry_backoff: initial_ms (%lld) must not exceed max_ms (%lld)", path,
                         (long long)initial, (long long)max);
    return 0;
}

/* check_ca_file: a readable regular file (validate), and at start also one
 * holding a PEM certificate (blocks on a small read, once per start). */
static int check_ca_file(const char *file, bool read_it, char *err, size_t err_size,
                         const char *prefix)
{
    struct stat st;
    char line[256];
    FILE *f;
    bool pem = false;

    if (stat(file, &st) < 0)
        return base_errf(err, err_size, "%sca_file \"%.200s\": %s", prefix, file, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return base_errf(err, err_size, "%sca_file \"%.200s\": not a regular file", prefix, file);
    if (access(file, R_OK) < 0)
        return base_errf(err, err_size, "%sca_file \"%.200s\": %s", prefix, file, strerror(errno));
    if (!read_it)
        return 0;
    if ((f = fopen(file, "re")) == NULL)
        return base_errf(err, err_size, "%sca_file \"%.200s\": %s", prefix, file, strerror(errno));
    while (!pem && fgets(line, sizeof(line), f) != NULL)
        pem = strncmp(line, "-----BEGIN CERTIFICATE-----", 27) == 0;
    fclose(f);
    if (!pem)
        return base_errf(err, err_size,
                         "%sca_file \"%.200s\": no PEM certificate in it (no \"-----BEGIN "
                         "CERTIFICATE-----\" line)",
                         prefix, file);
    return 0;
}

static int webhook_validate(const json_t *cfg, const char *path, char *err, size_t err_size)
{
    const json_t *url = json_object_get(cfg, "url"), *v;
    url_parts up;
    char got[100], prefix[200];
    const char *why;
    int rv;

    if ((rv = worker_check_keys(cfg, path, webhook_keys, err, err_size)) < 0)
        return rv;
    if ((rv = subscriber_validate(cfg, path, err, err_size)) < 0)
        return rv;
    if (url == NULL)
        return base_errf(err, err_size,
                         "%s.url: required, the http:// or https:// URL to POST events to", path);
    if (!json_is_string(url) || strlen(json_string_value(url)) != json_string_length(url))
        return base_errf(err, err_size, "%s.url: expected an http:// or https:// URL, got %s", path,
                         show(url, got, sizeof(got)));
    if ((why = url_parse(json_string_value(url), json_string_length(url), &up)) != NULL)
        return base_errf(err, err_size, "%s.url: %s: %s", path, show(url, got, sizeof(got)), why);
    if ((v = json_object_get(cfg, "headers")) != NULL &&
        (rv = check_headers(v, path, err, err_size)) < 0)
        return rv;
    if ((rv = check_int(json_object_get(cfg, "timeout_s"), path, "timeout_s", 1, TIMEOUT_MAX_S,
                        "whole seconds", err, err_size)) < 0 ||
        (rv = check_int(json_object_get(cfg, "max_in_flight"), path, "max_in_flight", 1,
                        IN_FLIGHT_MAX, "an integer", err, err_size)) < 0 ||
        (rv = check_int(json_object_get(cfg, "max_retries"), path, "max_retries", 0, RETRIES_MAX,
                        "an integer", err, err_size)) < 0 ||
        (rv = check_int(json_object_get(cfg, "keepalive_s"), path, "keepalive_s", 0,
                        KEEPALIVE_MAX_S, "whole seconds", err, err_size)) < 0)
        return rv;
    if ((v = json_object_get(cfg, "retry_backoff")) != NULL &&
        (rv = check_backoff(v, path, err, err_size)) < 0)
        return rv;
    if ((v = json_object_get(cfg, "ca_file")) != NULL) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            strlen(json_string_value(v)) != json_string_length(v))
            return base_errf(err, err_size,
                             "%s.ca_file: expected the path of a PEM certificate file, got %s",
                             path, show(v, got, sizeof(got)));
        if (!up.https)
            return base_errf(err, err_size,
                             "%s.ca_file: only used with an https:// url (url is http://)", path);
        snprintf(prefix, sizeof(prefix), "%s.", path);
        if ((rv = check_ca_file(json_string_value(v), false, err, err_size, prefix)) < 0)
            return rv;
    }
    return 0;
}

static size_t webhook_paths(const json_t *cfg, worker_path *out, size_t max)
{
    const char *ca = json_string_value(json_object_get(cfg, "ca_file"));

    if (ca == NULL || max == 0)
        return 0;
    out[0] = (worker_path){ca, false};
    return 1;
}

/* ---- messages ---------------------------------------------------------------------- */

/* report_failure records an event's failure in last_error and logs it: the
 * first of a run, then at most every ERROR_LOG_MS with how many were not
 * logged in between. */
static void report_failure(webhook *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report_failure(webhook *h, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    uint64_t now = uv_now(worker_loop(h->w));

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    worker_set_error(h->w, "%s", msg);
    if (!h->in_error || now - h->error_logged_ms >= ERROR_LOG_MS) {
        if (h->errors_unlogged > 0)
            worker_log(h->w, BASE_LOG_WARN, "%s (and %llu more failed events since the last line)",
                       msg, (unsigned long long)h->errors_unlogged);
        else
            worker_log(h->w, BASE_LOG_WARN, "%s", msg);
        h->error_logged_ms = now;
        h->errors_unlogged = 0;
    } else {
        h->errors_unlogged++;
    }
    h->in_error = true;
}

/* printable copies len bytes of s into out (size bytes) with anything but
 * printable ASCII as '?'. */
static const char *printable(const char *s, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < size; i++)
        out[n++] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
    out[n] = '\0';
    return out;
}

/* ---- requests ---------------------------------------------------------------------- */

static void pump(webhook *h);
static void schedule_wake(webhook *h);

/* request_end hands the event back (done or failed) and frees the request
 * and its easy handle (detached from the multi already). */
static void request_end(wh_request *r, bool ok)
{
    webhook *h = r->h;

    HERD_ASSERT(!r->attached);
    base_list_remove(&h->requests, &r->node);
    if (r->easy != NULL)
        api.easy_cleanup(r->easy);
    base_buf_free(&r->body);
    subscriber_done(&h->sub, r->ev, ok);
    base_free(r);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    wh_request *r = arg;
    size_t len = size * n, room = sizeof(r->reply) - r->reply_len;

    memcpy(r->reply + r->reply_len, data, len < room ? len : room);
    r->reply_len += len < room ? len : room;
    return len;
}

static CURLcode easy_setup(webhook *h, wh_request *r)
{
    CURL *e = r->easy;
    CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = api.easy_setopt(e, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_URL, h->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, r->body.data);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
    SET(CURLOPT_HTTPHEADER, h->session->headers);
    SET(CURLOPT_USERAGENT, "herd-webhook/" HERD_VERSION);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_ERRORBUFFER, r->error);
    SET(CURLOPT_PRIVATE, r);
    if (h->ca_file != NULL)
        SET(CURLOPT_CAINFO, h->ca_file);
#undef SET
    /* Not joining a resolver thread at a stop; 7.87 and later. */
    if (rc == CURLE_OK)
        (void)api.easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
    return rc;
}

/* request_start makes a request of e; whatever happens the event is
 * accounted for (in flight, or failed at once). */
static void request_start(webhook *h, sub_event *e)
{
    wh_request *r = base_calloc(1, sizeof(*r));
    char origin[ORIGIN_MAX];
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    CURLMcode mc;

    if (r == NULL) {
        report_failure(h, "event on %s failed: out of memory", e->topic);
        subscriber_done(&h->sub, e, false);
        return;
    }
    r->h = h;
    r->ev = e;
    base_list_append(&h->requests, &r->node);
    if (subscriber_event_json(e, &r->body) < 0 || (r->easy = api.easy_init()) == NULL ||
        (rc = easy_setup(h, r)) != CURLE_OK) {
        report_failure(h, "event on %s failed: setting up the request to %s: %s", e->topic,
                       url_origin(h->url, origin), api.easy_strerror(rc));
        request_end(r, false);
        return;
    }
    if ((mc = api.multi_add_handle(h->session->multi, r->easy)) != CURLM_OK) {
        report_failure(h, "event on %s failed: curl_multi_add_handle: %s", e->topic,
                       api.multi_strerror(mc));
        request_end(r, false);
        return;
    }
    r->attached = true;
}

/* backoff_ms is the wait before retry number n (1 for the first). */
static uint64_t backoff_ms(const webhook *h, unsigned n)
{
    uint64_t d = h->retry_initial_ms;
    for (unsigned i = 1; i < n && d < h->retry_max_ms; i++)
        d *= 2;
    return d < h->retry_max_ms ? d : h->retry_max_ms;
}

/* attempt_done judges one finished attempt: done, retried or failed. */
static void attempt_done(webhook *h, wh_request *r, CURLcode rc)
{
    char why[ORIGIN_MAX + CURL_ERROR_SIZE + REPLY_KEEP + 128], reply[REPLY_KEEP + 1],
        origin[ORIGIN_MAX];
    const char *after = "";
    bool retry = true;
    long status = 0;

    url_origin(h->url, origin);
    if (rc == CURLE_OK) {
        api.easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        h->last_status = status;
        if (status >= 200 && status < 300) {
            if (h->in_error) {
                worker_set_error(h->w, "%s", "");
                h->in_error = false;
            }
            request_end(r, true);
            return;
        }
        if (status >= 500) {
            h->http_5xx++;
        } else {
            retry = false;
            if (status >= 400)
                h->http_4xx++;
            after = status >= 300 && status < 400 ? " (redirects are not followed; not retried)"
                                                  : " (not retried)";
        }
        printable(r->reply, r->reply_len, reply, sizeof(reply));
        snprintf(why, sizeof(why), "HTTP %ld from %s%s%s%s", status, origin, after,
                 reply[0] != '\0' ? ": " : "", reply);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        h->timeouts++;
        snprintf(why, sizeof(why), "no answer from %s within timeout_s %llu s", origin,
                 (unsigned long long)(h->timeout_ms / 1000));
    } else {
        h->conn_errors++;
        snprintf(why, sizeof(why), "%s: %s", origin,
                 r->error[0] != '\0' ? r->error : api.easy_strerror(rc));
    }
    if (retry && r->retries < h->max_retries && !h->stopping) {
        uint64_t wait = backoff_ms(h, ++r->retries);
        h->retries++;
        r->due_ms = uv_now(worker_loop(h->w)) + wait;
        r->error[0] = '\0';
        r->reply_len = 0;
        worker_log(h->w, BASE_LOG_DEBUG, "event on %s: %s; retry %u of %u in %llu ms", r->ev->topic,
                   why, r->retries, h->max_retries, (unsigned long long)wait);
        return;
    }
    if (retry && r->retries > 0)
        report_failure(h, "event on %s failed after %u retries: %s", r->ev->topic, r->retries, why);
    else
        report_failure(h, "event on %s failed: %s", r->ev->topic, why);
    request_end(r, false);
}

/* ---- the session: curl's multi handle on the loop ------------------------------------ */

static void session_free_if_closed(wh_session *s)
{
    if (!s->closing || s->open_handles > 0)
        return;
    webhook *h = s->h;
    base_free(s);
    if (h != NULL) {
        HERD_ASSERT(h->closing_sessions > 0);
        h->closing_sessions--;
        if (h->stopping && h->closing_sessions == 0 && h->session == NULL && !h->stopped) {
            h->stopped = true;
            worker_stopped(h->w); /* h is freed after this */
        }
    }
}

static void on_handle_closed(uv_handle_t *handle)
{
    wh_session *s = handle->data;
    worker *prev = worker_enter(s->w);

    if (handle->type == UV_POLL)
        base_free(base_container_of((uv_poll_t *)handle, wh_socket, poll));
    s->open_handles--;
    session_free_if_closed(s);
    worker_leave(prev);
}

static void socket_close(wh_session *s, wh_socket *k)
{
    base_list_remove(&s->sockets, &k->node);
    uv_poll_stop(&k->poll);
    k->poll.data = s; /* on_handle_closed's */
    uv_close((uv_handle_t *)&k->poll, on_handle_closed);
}

/* check_done reads finished transfers, then starts what the queue holds. */
static void check_done(wh_session *s)
{
    webhook *h = s->h;
    CURLMsg *m;
    int left;

    while ((m = api.multi_info_read(s->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result; /* m is not valid after the removal */
        char *p = NULL;
        api.easy_getinfo(easy, CURLINFO_PRIVATE, &p);
        api.multi_remove_handle(s->multi, easy);
        wh_request *r = (wh_request *)p;
        r->attached = false;
        attempt_done(h, r, rc);
    }
    pump(h);
    schedule_wake(h);
}

static void session_action(wh_session *s, curl_socket_t fd, int flags)
{
    int running;
    CURLMcode mc = api.multi_socket_action(s->multi, fd, flags, &running);

    /* CURLM_BAD_SOCKET: an event for a socket curl closed meanwhile. */
    if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
        worker_log(s->w, BASE_LOG_ERROR, "curl_multi_socket_action: %s", api.multi_strerror(mc));
    check_done(s);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    wh_socket *k = p->data;
    wh_session *s = k->s;
    worker *prev = worker_enter(s->w);
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    session_action(s, k->fd, flags);
    worker_leave(prev);
}

static void on_curl_timeout(uv_timer_t *t)
{
    wh_session *s = t->data;
    worker *prev = worker_enter(s->w);

    session_action(s, CURL_SOCKET_TIMEOUT, 0);
    worker_leave(prev);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl wants, or stop. Runs
 * inside a curl call; calls nothing of curl but curl_multi_assign. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    wh_session *s = userp;
    wh_socket *k = socketp;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (k != NULL) {
            socket_close(s, k);
            if (!s->closing)
                api.multi_assign(s->multi, fd, NULL);
        }
        return 0;
    }
    if (k == NULL) {
        /* Returning -1 would kill the whole multi handle: on failure the
         * socket is not watched, and its transfer ends at timeout_s (a
         * timeout, retried); the next call for fd tries again. */
        k = base_calloc(1, sizeof(*k));
        int rv = k != NULL ? uv_poll_init_socket(worker_loop(s->w), &k->poll, fd) : UV_ENOMEM;
        if (rv < 0) {
            worker_log(s->w, BASE_LOG_ERROR, "cannot watch a connection's socket %d: %s", (int)fd,
                       uv_strerror(rv));
            base_free(k);
            return 0;
        }
        k->s = s;
        k->fd = fd;
        k->poll.data = k;
        s->open_handles++;
        base_list_append(&s->sockets, &k->node);
        api.multi_assign(s->multi, fd, k);
    }
    uv_poll_start(&k->poll,
                  ((what & CURL_POLL_IN) ? UV_READABLE : 0) |
                      ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0),
                  on_poll);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer; 0 ms runs curl on the next turn. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    wh_session *s = userp;

    (void)multi;
    if (s->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&s->curl_timer);
    else
        uv_timer_start(&s->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* session_close ends the session (no request may be attached): the multi
 * goes now, the handles close, the memory goes with the last of them. */
static void session_close(webhook *h)
{
    wh_session *s = h->session;
    wh_socket *k;

    if (s == NULL)
        return;
    h->session = NULL;
    h->closing_sessions++;
    s->closing = true;
    /* Closes every connection; REMOVE for each socket still watched. */
    api.multi_cleanup(s->multi);
    s->multi = NULL;
    api.slist_free_all(s->headers);
    s->headers = NULL;
    BASE_LIST_FOREACH(&s->sockets, wh_socket, node, k)
    {
        socket_close(s, k);
    }
    uv_close((uv_handle_t *)&s->curl_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->wake, on_handle_closed);
}

/* on_wake: retries that are due go back into the multi; with nothing in
 * flight or queued, keepalive_s has passed and the session closes. */
static void on_wake(uv_timer_t *t)
{
    wh_session *s = t->data;
    webhook *h = s->h;
    worker *prev = worker_enter(s->w);
    uint64_t now = uv_now(worker_loop(s->w));
    wh_request *r;

    if (h->requests.count == 0 && subscriber_depth(&h->sub) == 0) {
        session_close(h);
        worker_leave(prev);
        return;
    }
    BASE_LIST_FOREACH(&h->requests, wh_request, node, r)
    {
        if (r->attached || r->due_ms > now)
            continue;
        CURLMcode mc = api.multi_add_handle(s->multi, r->easy);
        if (mc != CURLM_OK) {
            report_failure(h, "event on %s failed: retry %u: curl_multi_add_handle: %s",
                           r->ev->topic, r->retries, api.multi_strerror(mc));
            request_end(r, false);
            continue;
        }
        r->attached = true;
    }
    pump(h);
    schedule_wake(h);
    worker_leave(prev);
}

/* schedule_wake sets the wake timer: the next retry due, the keep-alive's
 * end when nothing is in flight, or nothing. */
static void schedule_wake(webhook *h)
{
    wh_session *s = h->session;
    uint64_t now, due = UINT64_MAX;
    wh_request *r;

    if (s == NULL || s->closing)
        return;
    if (h->requests.count == 0) {
        uv_timer_start(&s->wake, on_wake, h->keepalive_ms, 0);
        return;
    }
    BASE_LIST_FOREACH(&h->requests, wh_request, node, r)
    {
        if (!r->attached && r->due_ms < due)
            due = r->due_ms;
    }
    if (due == UINT64_MAX) {
        uv_timer_stop(&s->wake);
        return;
    }
    now = uv_now(worker_loop(h->w));
    uv_timer_start(&s->wake, on_wake, due > now ? due - now : 0, 0);
}

/* header_line adds "Name: value" to the list ("Name;" for an empty value:
 * "Name:" would tell curl to drop the header). */
static int header_line(struct curl_slist **list, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = base_malloc(len);
    struct curl_slist *n;

    if (line == NULL)
        return -ENOMEM;
    if (value[0] == '\0')
        snprintf(line, len, "%s;", name);
    else
        snprintf(line, len, "%s: %s", name, value);
    n = api.slist_append(*list, line); /* copies line */
    base_free(line);
    if (n == NULL)
        return -ENOMEM;
    *list = n;
    return 0;
}

/* session_open creates the session on the first event after idle. */
static int session_open(webhook *h)
{
    uv_loop_t *loop = worker_loop(h->w);
    wh_session *s = base_calloc(1, sizeof(*s));
    const char *key;
    json_t *v;
    int rv = -ENOMEM;

    if (s == NULL)
        return -ENOMEM;
    s->h = h;
    s->w = h->w;
    base_list_init(&s->sockets);
    if ((s->multi = api.multi_init()) == NULL)
        goto fail_multi;
    if (api.multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        api.multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s) != CURLM_OK ||
        api.multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        api.multi_setopt(s->multi, CURLMOPT_TIMERDATA, s) != CURLM_OK) {
        rv = -EINVAL;
        goto fail_headers;
    }
    if (header_line(&s->headers, "Content-Type", "application/json") < 0)
        goto fail_headers;
    /* Bodies over 1 MiB would wait for 100-continue: never. */
    struct curl_slist *n = api.slist_append(s->headers, "Expect:");
    if (n == NULL)
        goto fail_headers;
    s->headers = n;
    json_object_foreach((json_t *)h->headers, key, v)
    {
        if (header_line(&s->headers, key, json_string_value(v)) < 0)
            goto fail_headers;
    }
    uv_timer_init(loop, &s->curl_timer);
    uv_timer_init(loop, &s->wake);
    s->curl_timer.data = s->wake.data = s;
    s->open_handles = 2;
    h->session = s;
    return 0;

fail_headers:
    api.slist_free_all(s->headers);
    api.multi_cleanup(s->multi);
fail_multi:
    base_free(s);
    return rv;
}

/* pump starts requests for queued events while slots are free. */
static void pump(webhook *h)
{
    sub_event *e;

    while (!h->stopping && h->requests.count < h->max_in_flight &&
           (e = subscriber_pop(&h->sub)) != NULL) {
        if (h->session == NULL) {
            int rv = session_open(h);
            if (rv < 0) {
                report_failure(h, "event on %s failed: cannot set up curl: %s", e->topic,
                               strerror(-rv));
                subscriber_done(&h->sub, e, false);
                continue;
            }
        }
        request_start(h, e);
    }
}

static void on_ready(subscriber *s, void *data)
{
    webhook *h = data;

    (void)s;
    pump(h);
    schedule_wake(h);
}

/* ---- the kind ------------------------------------------------------------------------ */

static int webhook_start(worker *w, void *state)
{
    webhook *h = state;
    const json_t *cfg = worker_config(w), *b;
    char err[512];
    url_parts up;
    int rv;

    h->w = w;
    base_list_init(&h->requests);
    h->url = json_string_value(json_object_get(cfg, "url"));
    h->ca_file = json_string_value(json_object_get(cfg, "ca_file"));
    h->headers = json_object_get(cfg, "headers");
    h->timeout_ms = (uint64_t)worker_config_int(w, "timeout_s", TIMEOUT_DEFAULT_S) * 1000;
    h->keepalive_ms = (uint64_t)worker_config_int(w, "keepalive_s", KEEPALIVE_DEFAULT_S) * 1000;
    h->max_in_flight = (unsigned)worker_config_int(w, "max_in_flight", IN_FLIGHT_DEFAULT);
    h->max_retries = (unsigned)worker_config_int(w, "max_retries", RETRIES_DEFAULT);
    b = json_object_get(cfg, "retry_backoff");
    h->retry_initial_ms = json_is_integer(json_object_get(b, "initial_ms"))
                              ? (uint64_t)json_integer_value(json_object_get(b, "initial_ms"))
                              : RETRY_INITIAL_DEFAULT_MS;
    h->retry_max_ms = json_is_integer(json_object_get(b, "max_ms"))
                          ? (uint64_t)json_integer_value(json_object_get(b, "max_ms"))
                          : RETRY_MAX_DEFAULT_MS;
    if (h->url == NULL || url_parse(h->url, strlen(h->url), &up) != NULL) {
        worker_set_error(w, "url: not an http:// or https:// URL (the config was not validated)");
        return -EINVAL;
    }
    /* The file may have changed since the config was checked. */
    if (h->ca_file != NULL && (rv = check_ca_file(h->ca_file, true, err, sizeof(err), "")) < 0) {
        worker_set_error(w, "%s", err);
        return rv;
    }
    if ((rv = api_load(w, err, sizeof(err))) < 0) {
        worker_set_error(w, "%s", err);
        return rv;
    }
    if (up.https && !api_tls) {
        worker_set_error(w, "url: https, and this libcurl has no TLS support");
        return -ENOTSUP;
    }
    if (!up.host_numeric && !api_async_dns) {
        worker_set_error(w,
                         "url: the host is a name, and this libcurl resolves names synchronously "
                         "(no asynchronous DNS), which would block herd's loop: use an IP address");
        return -ENOTSUP;
    }
    /* Last: nothing after it may fail, a failed start must own nothing. */
    return subscriber_start(&h->sub, w, on_ready, h);
}

static void webhook_stop(worker *w, void *state)
{
    webhook *h = state;
    size_t queued = subscriber_depth(&h->sub), aborted = h->requests.count;
    wh_request *r;
    sub_event *e;

    (void)w;
    if (h->stopping)
        return;
    h->stopping = true;
    while ((e = subscriber_pop(&h->sub)) != NULL)
        subscriber_drop(&h->sub, e);
    subscriber_stop(&h->sub);
    if (aborted > 0 || queued > 0)
        worker_log(h->w, BASE_LOG_INFO,
                   "stopping: %zu requests aborted (counted failed), %zu queued events dropped",
                   aborted, queued);
    BASE_LIST_FOREACH(&h->requests, wh_request, node, r)
    {
        if (r->attached) {
            api.multi_remove_handle(h->session->multi, r->easy);
            r->attached = false;
        }
        request_end(r, false);
    }
    session_close(h);
    if (h->closing_sessions == 0 && !h->stopped) {
        h->stopped = true;
        worker_stopped(h->w);
    }
}

static void webhook_health(worker *w, void *state, json_t *obj)
{
    webhook *h = state;

    (void)w;
    subscriber_health(&h->sub, obj);
    json_object_set_new(obj, "in_flight", json_integer((json_int_t)h->requests.count));
    json_object_set_new(obj, "retries", json_integer((json_int_t)h->retries));
    json_object_set_new(obj, "timeouts", json_integer((json_int_t)h->timeouts));
    json_object_set_new(obj, "http_4xx", json_integer((json_int_t)h->http_4xx));
    json_object_set_new(obj, "http_5xx", json_integer((json_int_t)h->http_5xx));
    json_object_set_new(obj, "conn_errors", json_integer((json_int_t)h->conn_errors));
    json_object_set_new(obj, "last_status", json_integer((json_int_t)h->last_status));
}

const worker_kind worker_webhook_kind = {
    .name = "webhook",
    .size = sizeof(webhook),
    .validate = webhook_validate,
    .start = webhook_start,
    .stop = webhook_stop,
    .health = webhook_health,
    .paths = webhook_paths,
};
