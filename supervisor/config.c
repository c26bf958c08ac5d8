/*
 * herdd's configuration file.
 *
 * Design notes: validation walks the JSON once and refuses unknown keys,
 * so a typo is an error, not a silently ignored setting. Every message
 * starts with the JSON path of the bad value (`bus.queue_max: expected an
 * integer from 1 to 1048576`).
 */
#include "supervisor/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static void default_state_dir(char *buf, size_t size)
{
    const char *v;

    if ((v = getenv("HERD_STATE_DIR")) != NULL && *v)
        snprintf(buf, size, "%s", v);
    else if ((v = getenv("STATE_DIRECTORY")) != NULL && *v) /* systemd StateDirectory= */
        snprintf(buf, size, "%s", v);
    else if ((v = getenv("XDG_STATE_HOME")) != NULL && *v)
        snprintf(buf, size, "%s/herd", v);
    else if ((v = getenv("HOME")) != NULL && *v)
        snprintf(buf, size, "%s/.local/state/herd", v);
    else
        snprintf(buf, size, "/tmp/herd-state-%u", (unsigned)getuid());
}

/* The hostname up to its first dot, with what a topic token cannot hold
 * made '_': fleet topics carry it as one token (`fleet.<host>.`). */
static void default_host(char *buf, size_t size)
{
    char name[256] = "";
    size_t n = 0;

    if (gethostname(name, sizeof(name) - 1) < 0 || name[0] == '\0')
        snprintf(name, sizeof(name), "localhost");
    for (; name[n] != '\0' && name[n] != '.' && n + 1 < size && n < 64; n++)
        buf[n] = base_token_char((unsigned char)name[n]) ? name[n] : '_';
    buf[n] = '\0';
    if (n == 0)
        snprintf(buf, size, "localhost");
}

void sup_config_defaults(sup_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    bus_default_dir(cfg->runtime_dir, sizeof(cfg->runtime_dir));
    cfg->max_message_bytes = BUS_DEFAULT_MAX_MESSAGE_BYTES;
    cfg->max_reply_bytes = BUS_DEFAULT_MAX_REPLY_BYTES;
    cfg->max_connections = BUS_DEFAULT_MAX_CONNECTIONS;
    cfg->pending_reply_bytes = BUS_DEFAULT_PENDING_REPLY_BYTES;
    cfg->pending_reply_bytes_total = BUS_DEFAULT_PENDING_REPLY_BYTES_TOTAL;
    cfg->subscriber_buffer = BUS_DEFAULT_SUBSCRIBER_BUFFER;
    cfg->queue_max = BUS_DEFAULT_QUEUE_MAX;
    cfg->listener_check_ms = BUS_DEFAULT_LISTENER_CHECK_MS;
    default_host(cfg->host, sizeof(cfg->host));
    snprintf(cfg->http_listen, sizeof(cfg->http_listen), "%s", SUP_DEFAULT_HTTP_LISTEN);
    cfg->http_max_connections = SUP_HTTP_MAX_CONNECTIONS;
    cfg->http_max_streams = SUP_HTTP_MAX_STREAMS;
    cfg->http_idle_timeout_s = SUP_HTTP_IDLE_TIMEOUT_MS / 1000;
    default_state_dir(cfg->state_dir, sizeof(cfg->state_dir));
    cfg->health_interval_s = SUP_DEFAULT_HEALTH_INTERVAL_S;
}

#define FAIL(...) return base_errf(err, err_size, __VA_ARGS__)

static int get_int(const json_t *v, const char *path, long min, long max, int *out, char *err,
                   size_t err_size)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        FAIL("%s: expected an integer from %ld to %ld", path, min, max);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_path(const json_t *v, const char *path, char *out, size_t out_size, char *err,
                    size_t err_size)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        FAIL("%s: expected a non-empty path string", path);
    if (json_string_length(v) >= out_size)
        FAIL("%s: path longer than %zu bytes", path, out_size - 1);
    if (strlen(json_string_value(v)) != json_string_length(v))
        FAIL("%s: path contains a NUL byte", path);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* tcp_url_ok: tcp:// or tls+tcp://, a host (may be empty: every
 * address, or [v6]), a colon and a port from 1 to 65535, no path. */
static bool tcp_url_ok(const char *url)
{
    const char *rest = strncmp(url, "tcp://", 6) == 0        ? url + 6
                       : strncmp(url, "tls+tcp://", 10) == 0 ? url + 10
                                                             : NULL;
    const char *colon = rest != NULL ? strrchr(rest, ':') : NULL;
    char *end;

    if (colon == NULL || strchr(rest, '/') != NULL || colon[1] < '0' || colon[1] > '9')
        return false;
    long port = strtol(colon + 1, &end, 10);
    return *end == '\0' && port >= 1 && port <= 65535;
}

/* bus.tcp: the extra listeners, by socket (DESIGN.md section 3). */
static int parse_bus_tcp(const json_t *o, sup_config *cfg, char *err, size_t err_size)
{
    static const char *const names[3] = {"events", "publish", "request"};
    const char *key;
    json_t *v;

    if (!json_is_object(o))
        FAIL("bus.tcp: expected an object such as {\"publish\": \"tcp://0.0.0.0:7790\"}");
    json_object_foreach((json_t *)o, key, v)
    {
        int i = 0;
        while (i < 3 && strcmp(key, names[i]) != 0)
            i++;
        if (i == 3)
            FAIL("bus.tcp.%.64s: unknown key (expected events, publish, request)", key);
        const char *url = json_string_value(v);
        if (url == NULL || json_string_length(v) >= sizeof(cfg->tcp_url[i]) ||
            strlen(url) != json_string_length(v) || !tcp_url_ok(url))
            FAIL("bus.tcp.%s: expected \"tcp://HOST:PORT\" or \"tls+tcp://HOST:PORT\", got "
                 "%s%.80s%s",
                 key, url ? "\"" : "", url ? url : "not a string", url ? "\"" : "");
        snprintf(cfg->tcp_url[i], sizeof(cfg->tcp_url[i]), "%s", url);
    }
    return 0;
}

static int parse_bus_tls(const json_t *o, sup_config *cfg, char *err, size_t err_size)
{
    const char *key;
    json_t *v;

    if (!json_is_object(o))
        FAIL("bus.tls: expected an object {\"cert_file\": ..., \"key_file\": ...}");
    json_object_foreach((json_t *)o, key, v)
    {
        char path[64];
        int rv;
        snprintf(path, sizeof(path), "bus.tls.%.40s", key);
        if (strcmp(key, "cert_file") == 0)
            rv = get_path(v, path, cfg->tls_cert_file, sizeof(cfg->tls_cert_file), err, err_size);
        else if (strcmp(key, "key_file") == 0)
            rv = get_path(v, path, cfg->tls_key_file, sizeof(cfg->tls_key_file), err, err_size);
        else
            FAIL("%s: unknown key (expected cert_file, key_file)", path);
        if (rv < 0)
            return rv;
    }
    if (!cfg->tls_cert_file[0] || !cfg->tls_key_file[0])
        FAIL("bus.tls: cert_file and key_file are both required");
    return 0;
}

static int parse_bus(const json_t *o, sup_config *cfg, char *err, size_t err_size)
{
    const char *key;
    json_t *v;
    char path[128];

    if (!json_is_object(o))
        FAIL("bus: expected an object");
    json_object_foreach((json_t *)o, key, v)
    {
        snprintf(path, sizeof(path), "bus.%.64s", key);
        int rv = 0;
        if (strcmp(key, "dir") == 0) {
            rv = get_path(v, path, cfg->runtime_dir, sizeof(cfg->runtime_dir) - 16, err, err_size);
        } else if (strcmp(key, "max_message_bytes") == 0) {
            if (base_parse_size(v, &cfg->max_message_bytes) < 0 || cfg->max_message_bytes < 1024 ||
                cfg->max_message_bytes > (256u << 20))
                FAIL("%s: expected a size from 1K to 256M, such as \"1M\"", path);
        } else if (strcmp(key, "max_reply_bytes") == 0) {
            if (base_parse_size(v, &cfg->max_reply_bytes) < 0 ||
                cfg->max_reply_bytes < (64u << 10) ||
                cfg->max_reply_bytes > BUS_MAX_REPLY_BYTES_LIMIT)
                FAIL("%s: expected a size from 64K to 256M, such as \"64M\"", path);
        } else if (strcmp(key, "max_connections") == 0) {
            rv = get_int(v, path, 1, 65536, &cfg->max_connections, err, err_size);
        } else if (strcmp(key, "pending_reply_bytes") == 0) {
            if (base_parse_size(v, &cfg->pending_reply_bytes) < 0 ||
                cfg->pending_reply_bytes < (64u << 10) || cfg->pending_reply_bytes > (1ull << 32))
                FAIL("%s: expected a size from 64K to 4G, such as \"8M\"", path);
        } else if (strcmp(key, "pending_reply_bytes_total") == 0) {
            if (base_parse_size(v, &cfg->pending_reply_bytes_total) < 0 ||
                cfg->pending_reply_bytes_total < (64u << 10) ||
                cfg->pending_reply_bytes_total > (1ull << 36))
                FAIL("%s: expected a size from 64K to 64G, such as \"64M\"", path);
        } else if (strcmp(key, "subscriber_buffer") == 0) {
            rv = get_int(v, path, 1, 1 << 20, &cfg->subscriber_buffer, err, err_size);
        } else if (strcmp(key, "queue_max") == 0) {
            rv = get_int(v, path, 1, 1 << 20, &cfg->queue_max, err, err_size);
        } else if (strcmp(key, "listener_check_ms") == 0) {
            rv = get_int(v, path, 0, 3600000, &cfg->listener_check_ms, err, err_size);
            if (rv == 0 && cfg->listener_check_ms == 0)
                cfg->listener_check_ms = -1; /* 0 in the file means off */
        } else if (strcmp(key, "tcp") == 0) {
            rv = parse_bus_tcp(v, cfg, err, err_size);
        } else if (strcmp(key, "tls") == 0) {
            rv = parse_bus_tls(v, cfg, err, err_size);
        } else {
            FAIL("%s: unknown key (expected dir, max_message_bytes, max_reply_bytes, "
                 "max_connections, pending_reply_bytes, pending_reply_bytes_total, "
                 "subscriber_buffer, "
                 "queue_max, listener_check_ms, tcp, tls)",
                 path);
        }
        if (rv < 0)
            return rv;
    }
    for (int i = 0; i < 3; i++)
        if (strncmp(cfg->tcp_url[i], "tls+tcp://", 10) == 0 && !cfg->tls_cert_file[0])
            FAIL("bus.tcp: %s listens with TLS and needs bus.tls.cert_file and bus.tls.key_file",
                 cfg->tcp_url[i]);
    return 0;
}

static int parse_http(const json_t *o, sup_config *cfg, char *err, size_t err_size)
{
    static const char *const int_keys[] = {"max_connections", "max_streams", "idle_timeout_s",
                                           "fleet_max_hosts", NULL};
    static const long int_min[] = {1, 1, 1, 0}, int_max[] = {10000, 1000, 3600, 100000};
    int *const int_out[] = {&cfg->http_max_connections, &cfg->http_max_streams,
                            &cfg->http_idle_timeout_s, &cfg->http_fleet_max_hosts};
    const char *key;
    json_t *v;

    if (!json_is_object(o))
        FAIL("http: expected an object");
    json_object_foreach((json_t *)o, key, v)
    {
        size_t i;
        for (i = 0; int_keys[i] != NULL && strcmp(int_keys[i], key) != 0; i++)
            ;
        if (int_keys[i] != NULL) {
            if (!json_is_integer(v) || json_integer_value(v) < int_min[i] ||
                json_integer_value(v) > int_max[i])
                FAIL("http.%s: expected an integer from %ld to %ld", key, int_min[i], int_max[i]);
            *int_out[i] = (int)json_integer_value(v);
            /* The field's 0 is "not set" (the default): the file's 0 is -1. */
            if (int_out[i] == &cfg->http_fleet_max_hosts && *int_out[i] == 0)
                *int_out[i] = -1;
            continue;
        }
        if (strcmp(key, "listen") != 0)
            FAIL("http.%.64s: unknown key (expected listen, max_connections, max_streams, "
                 "idle_timeout_s, fleet_max_hosts)",
                 key);
        const char *s = json_string_value(v);
        const char *colon = s != NULL ? strrchr(s, ':') : NULL;
        char *end;
        if (s == NULL || json_string_length(v) >= sizeof(cfg->http_listen))
            FAIL("http.listen: expected \"HOST:PORT\" or \"\" to disable");
        if (*s != '\0') {
            long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
            if (colon == NULL || colon == s || colon[1] == '\0' || *end != '\0' || port < 1 ||
                port > 65535)
                FAIL("http.listen: expected \"HOST:PORT\" with a port from 1 to 65535, got "
                     "\"%.64s\"",
                     s);
        }
        snprintf(cfg->http_listen, sizeof(cfg->http_listen), "%s", s);
    }
    return 0;
}

static int parse_object_ints(const json_t *o, const char *path, const char *const *keys,
                             const long *min, const long *max, long *out, char *err,
                             size_t err_size)
{
    const char *key;
    json_t *v;

    if (!json_is_object(o))
        FAIL("%s: expected an object", path);
    json_object_foreach((json_t *)o, key, v)
    {
        size_t i;
        for (i = 0; keys[i] != NULL && strcmp(keys[i], key) != 0; i++)
            ;
        if (keys[i] == NULL)
            FAIL("%s.%.64s: unknown key (expected %s, %s)", path, key, keys[0], keys[1]);
        if (!json_is_integer(v) || json_integer_value(v) < min[i] || json_integer_value(v) > max[i])
            FAIL("%s.%s: expected an integer from %ld to %ld", path, key, min[i], max[i]);
        out[i] = (long)json_integer_value(v);
    }
    return 0;
}

static int parse_worker(const json_t *o, const char *path, const sup_config *cfg,
                        sup_worker_config *wc, char *err, size_t err_size)
{
    static const char *const backoff_keys[] = {"initial_ms", "max_ms", NULL};
    static const long backoff_min[] = {0, 0}, backoff_max[] = {3600000, 3600000};
    static const char *const intensity_keys[] = {"max_restarts", "period_s", NULL};
    static const long intensity_min[] = {0, 1}, intensity_max[] = {1000, 86400};
    json_t *v;
    const worker_kind *kind;
    char p[160];
    int rv;

    if (!json_is_object(o))
        FAIL("%s: expected an object with at least \"name\" and \"kind\"", path);
    memset(wc, 0, sizeof(*wc));
    wc->enabled = 1;
    wc->policy = (sup_policy){SUP_RESTART_PERMANENT, 1000, 30000, 5, 60};
    wc->health_interval_s = cfg->health_interval_s;
    wc->stop_timeout_s = 10;

    v = json_object_get(o, "name");
    if (!json_is_string(v) || !base_name_valid(json_string_value(v)) ||
        strcmp(json_string_value(v), "supervisor") == 0)
        FAIL("%s.name: expected 1-64 characters of [a-z0-9_-] (not \"supervisor\")", path);
    snprintf(wc->name, sizeof(wc->name), "%s", json_string_value(v));
    v = json_object_get(o, "kind");
    if (!json_is_string(v) || (kind = sup__kind_find(json_string_value(v))) == NULL) {
        char names[256];
        sup__kind_names(names, sizeof(names));
        FAIL("%s.kind: expected one of %s", path, names);
    }
    snprintf(wc->kind, sizeof(wc->kind), "%s", kind->name);
    wc->kind_ops = kind;
    if ((v = json_object_get(o, "enabled")) != NULL) {
        if (!json_is_boolean(v))
            FAIL("%s.enabled: expected true or false", path);
        wc->enabled = json_is_true(v);
    }
    if ((v = json_object_get(o, "restart")) != NULL) {
        const char *r = json_string_value(v);
        if (r != NULL && strcmp(r, "permanent") == 0)
            wc->policy.restart = SUP_RESTART_PERMANENT;
        else if (r != NULL && strcmp(r, "transient") == 0)
            wc->policy.restart = SUP_RESTART_TRANSIENT;
        else if (r != NULL && strcmp(r, "temporary") == 0)
            wc->policy.restart = SUP_RESTART_TEMPORARY;
        else
            FAIL("%s.restart: expected \"permanent\", \"transient\" or \"temporary\"", path);
    }
    if ((v = json_object_get(o, "backoff")) != NULL) {
        long vals[2] = {(long)wc->policy.backoff_initial_ms, (long)wc->policy.backoff_max_ms};
        snprintf(p, sizeof(p), "%s.backoff", path);
        if ((rv = parse_object_ints(v, p, backoff_keys, backoff_min, backoff_max, vals, err,
                                    err_size)) < 0)
            return rv;
        if (vals[0] > vals[1])
            FAIL("%s.backoff: initial_ms (%ld) must not exceed max_ms (%ld)", path, vals[0],
                 vals[1]);
        wc->policy.backoff_initial_ms = (uint64_t)vals[0];
        wc->policy.backoff_max_ms = (uint64_t)vals[1];
    }
    if ((v = json_object_get(o, "intensity")) != NULL) {
        long vals[2] = {wc->policy.max_restarts, wc->policy.period_s};
        snprintf(p, sizeof(p), "%s.intensity", path);
        if ((rv = parse_object_ints(v, p, intensity_keys, intensity_min, intensity_max, vals, err,
                                    err_size)) < 0)
            return rv;
        wc->policy.max_restarts = (int)vals[0];
        wc->policy.period_s = (int)vals[1];
    }
    if ((v = json_object_get(o, "memory_high")) != NULL &&
        (base_parse_size(v, &wc->memory_high) < 0 || wc->memory_high == 0))
        FAIL("%s.memory_high: expected a size such as \"64M\"", path);
    if ((v = json_object_get(o, "memory_max")) != NULL &&
        (base_parse_size(v, &wc->memory_max) < 0 || wc->memory_max == 0))
        FAIL("%s.memory_max: expected a size such as \"64M\"", path);
    if (wc->memory_high && wc->memory_max && wc->memory_high > wc->memory_max)
        FAIL("%s.memory_high: must not exceed memory_max", path);
    if ((v = json_object_get(o, "health_interval_s")) != NULL) {
        snprintf(p, sizeof(p), "%s.health_interval_s", path);
        if ((rv = get_int(v, p, 1, 86400, &wc->health_interval_s, err, err_size)) < 0)
            return rv;
    }
    if ((v = json_object_get(o, "stop_timeout_s")) != NULL) {
        snprintf(p, sizeof(p), "%s.stop_timeout_s", path);
        if ((rv = get_int(v, p, 1, 3600, &wc->stop_timeout_s, err, err_size)) < 0)
            return rv;
    }
    if ((v = json_object_get(o, "queue_max")) != NULL) {
        int q;
        snprintf(p, sizeof(p), "%s.queue_max", path);
        if ((rv = get_int(v, p, 1, 1 << 20, &q, err, err_size)) < 0)
            return rv;
    }
    /* The kind checks its own keys and refuses unknown ones. */
    if (kind->validate != NULL && (rv = kind->validate(o, path, err, err_size)) < 0)
        return rv;
    wc->json = json_incref((json_t *)o);
    return 0;
}

void sup_config_free(sup_config *cfg)
{
    for (size_t i = 0; i < cfg->n_workers; i++)
        json_decref(cfg->workers[i].json);
    free(cfg->workers);
    cfg->workers = NULL;
    cfg->n_workers = 0;
}

static int parse_workers(const json_t *a, sup_config *cfg, char *err, size_t err_size)
{
    size_t i;
    json_t *o;
    char path[32];

    if (!json_is_array(a))
        FAIL("workers: expected an array of worker objects");
    /* Each worker has an account of its own (BASE_MEM_SLOTS) and two fds
     * at most while idle; 20,000 leaves room for leftovers of removed ones. */
    if (json_array_size(a) > SUP_MAX_WORKERS)
        FAIL("workers: at most %d workers", SUP_MAX_WORKERS);
    cfg->workers = calloc(json_array_size(a) + 1, sizeof(*cfg->workers));
    if (cfg->workers == NULL)
        FAIL("workers: out of memory");
    json_array_foreach(a, i, o)
    {
        snprintf(path, sizeof(path), "workers[%zu]", i);
        int rv = parse_worker(o, path, cfg, &cfg->workers[i], err, err_size);
        if (rv < 0)
            return rv;
        cfg->n_workers++;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->workers[j].name, cfg->workers[i].name) == 0)
                FAIL("%s.name: \"%s\" is already the name of workers[%zu]", path,
                     cfg->workers[i].name, j);
    }
    return 0;
}

/* ---- paths two workers must not share ----------------------------------- */

/* normal_path writes path as an absolute path without ".", ".." or repeated
 * slashes (lexically: symlinks are not followed), for comparing. */
static int normal_path(const char *path, char *out, size_t size)
{
    char buf[2 * PATH_MAX], cwd[PATH_MAX] = "";
    size_t n = 0;

    if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
        return -errno;
    if (strlen(cwd) + 1 + strlen(path) >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, cwd, strlen(cwd));
    buf[strlen(cwd)] = '/';
    memcpy(buf + strlen(cwd) + 1, path, strlen(path) + 1);
    for (char *p = buf, *tok; (tok = strsep(&p, "/")) != NULL;) {
        if (*tok == '\0' || strcmp(tok, ".") == 0)
            continue;
        if (strcmp(tok, "..") == 0) {
            while (n > 0 && out[--n] != '/')
                ;
            continue;
        }
        size_t len = strlen(tok);
        if (n + 1 + len + 1 > size)
            return -ENAMETOOLONG;
        out[n++] = '/';
        memcpy(out + n, tok, len);
        n += len;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return 0;
}

/* paths_overlap: a and b (normal) are the same, or one holds the other. */
static bool paths_overlap(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > lb)
        return paths_overlap(b, a);
    if (la == 1) /* "/" holds everything */
        return true;
    return memcmp(a, b, la) == 0 && (b[la] == '\0' || b[la] == '/');
}

#define PATHS_PER_WORKER 8

typedef struct owned_path {
    size_t worker;
    bool writes;
    char path[PATH_MAX];
} owned_path;

/* check_paths refuses two workers that would write the same files: every
 * worker's own <state_dir>/<name>, and what its kind says it uses. */
static int check_paths(const sup_config *cfg, char *err, size_t err_size)
{
    owned_path *all = calloc(cfg->n_workers * (PATHS_PER_WORKER + 1) + 1, sizeof(*all));
    size_t n = 0;
    int rv = 0;

    if (all == NULL)
        FAIL("workers: out of memory");
    for (size_t i = 0; i < cfg->n_workers && rv == 0; i++) {
        const sup_worker_config *wc = &cfg->workers[i];
        worker_path kp[PATHS_PER_WORKER];
        char own[PATH_MAX + 80];
        size_t k = 0;

        snprintf(own, sizeof(own), "%s/%s", cfg->state_dir, wc->name);
        if (wc->kind_ops->paths != NULL)
            k = wc->kind_ops->paths(wc->json, kp, PATHS_PER_WORKER);
        for (size_t j = 0; j <= k && rv == 0; j++) {
            const char *p = j == k ? own : kp[j].path;
            owned_path *o = &all[n];
            o->worker = i;
            o->writes = j == k || kp[j].writes;
            if (normal_path(p, o->path, sizeof(o->path)) < 0) {
                rv = base_errf(err, err_size, "workers[%zu].%s: path \"%.200s\" is too long", i,
                               j == k ? "name" : "path", p);
                break;
            }
            for (size_t m = 0; m < n && rv == 0; m++) {
                const owned_path *q = &all[m];
                if (q->worker == i || !(q->writes || o->writes) || !paths_overlap(q->path, o->path))
                    continue;
                rv = base_errf(err, err_size,
                               "workers[%zu] (%s) would use %s, which overlaps %s of "
                               "workers[%zu] (%s): two workers must not share a directory "
                               "either of them writes",
                               i, wc->name, o->path, q->path, q->worker,
                               cfg->workers[q->worker].name);
            }
            n++;
        }
    }
    free(all);
    return rv;
}

int sup_config_parse(const json_t *root, sup_config *cfg, char *err, size_t err_size)
{
    const char *key;
    json_t *v;
    int rv = 0;

    if (!json_is_object(root))
        FAIL("(top level): expected an object");
    /* health_interval_s first: it is every worker's default. */
    if ((v = json_object_get(root, "health_interval_s")) != NULL &&
        (rv = get_int(v, "health_interval_s", 1, 86400, &cfg->health_interval_s, err, err_size)) <
            0)
        return rv;
    json_object_foreach((json_t *)root, key, v)
    {
        if (strcmp(key, "workers") == 0) {
            if ((rv = parse_workers(v, cfg, err, err_size)) < 0)
                return rv;
            continue;
        }
        if (strcmp(key, "on_give_up") == 0) {
            const char *g = json_string_value(v);
            if (g != NULL && strcmp(g, "exit") == 0)
                cfg->on_give_up_exit = 1;
            else if (g != NULL && strcmp(g, "stay") == 0)
                cfg->on_give_up_exit = 0;
            else
                FAIL("on_give_up: expected \"exit\" or \"stay\"");
            continue;
        }
        if (strcmp(key, "bus") == 0)
            rv = parse_bus(v, cfg, err, err_size);
        else if (strcmp(key, "http") == 0)
            rv = parse_http(v, cfg, err, err_size);
        else if (strcmp(key, "state_dir") == 0)
            rv = get_path(v, "state_dir", cfg->state_dir, sizeof(cfg->state_dir), err, err_size);
        else if (strcmp(key, "health_interval_s") == 0)
            rv = 0; /* read above */
        else if (strcmp(key, "host") == 0) {
            const char *h = json_string_value(v);
            if (h == NULL || strlen(h) != json_string_length(v) || !base_token_valid(h))
                FAIL("host: expected 1 to 64 of [A-Za-z0-9_-] (one topic token), got %s%.80s%s",
                     h ? "\"" : "", h ? h : "not a string", h ? "\"" : "");
            snprintf(cfg->host, sizeof(cfg->host), "%s", h);
        } else
            FAIL("%.64s: unknown key (expected bus, http, state_dir, health_interval_s, "
                 "on_give_up, host, workers)",
                 key);
        if (rv < 0)
            return rv;
    }
    /* The longest socket path must fit a sockaddr_un (108 bytes on Linux),
     * or herdd would only find out when it listens. */
    if (strlen(cfg->runtime_dir) + sizeof("/publish.ipc") >
        sizeof(((struct sockaddr_un *)0)->sun_path))
        FAIL("bus.dir: \"%.80s...\" is %zu bytes; a socket path in it must fit in %zu, so at "
             "most %zu",
             cfg->runtime_dir, strlen(cfg->runtime_dir),
             sizeof(((struct sockaddr_un *)0)->sun_path) - 1,
             sizeof(((struct sockaddr_un *)0)->sun_path) - sizeof("/publish.ipc"));
    return check_paths(cfg, err, err_size);
}

int sup_config_load(const char *file, sup_config *cfg, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    char inner[512];
    int rv;

    if (root == NULL) {
        if (jerr.line < 0 || jerr.position == 0)
            snprintf(err, err_size, "%s: %s", file, jerr.text);
        else
            snprintf(err, err_size, "%s:%d:%d: invalid JSON: %s", file, jerr.line, jerr.column,
                     jerr.text);
        return -EINVAL;
    }
    rv = sup_config_parse(root, cfg, inner, sizeof(inner));
    if (rv < 0) {
        snprintf(err, err_size, "%s: %s", file, inner);
        sup_config_free(cfg);
    }
    json_decref(root);
    return rv;
}
