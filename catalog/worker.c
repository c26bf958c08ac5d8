/*
 * The `catalog` worker kind: a thin adapter from the worker interface to
 * catalog_service (load OUTDIR's `current`, watch, swap) and the index's
 * query functions.
 *
 * Design notes
 * - Start only queues the first load (thread pool); a load that fails
 *   (missing, empty or corrupt OUTDIR) becomes worker_fail, and the
 *   supervisor restarts the worker per its policy. Requests before the
 *   first load are answered `unavailable`.
 * - A new version that fails validation is refused by the service: the
 *   worker records it with worker_set_error (last_error in health) and the
 *   old version keeps serving; the next good swap clears it.
 * - Replies are written as JSON bytes by the index (list, search, ...) or
 *   are the body file's bytes (get), spliced with bus_reply_raw: no jansson
 *   tree is built for a reply.
 * - Memory: the index is built on a pool thread and lives in the catalog
 *   library's own allocations, which the runtime cannot charge; the worker
 *   reports index bytes + cached body bytes with worker_set_memory after
 *   every load, swap and read, so heap_bytes and memory_max see them.
 * - Stop closes the service; gets still in flight are answered (their body
 *   or `unavailable`) before its close callback, which calls
 *   worker_stopped. Nothing touches the state after that.
 */
#include "catalog/catalog.h"
#include "workers/worker.h"

#include <errno.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {"ok":true,"result": ... } around a reply's result, with room to spare. */
#define REPLY_ENVELOPE_BYTES 64
#define LIST_LIMIT_DEFAULT 1000
#define SEARCH_LIMIT_DEFAULT 50
#define LRU_ENTRIES_MAX 1000000
#define LRU_BYTES_MAX ((uint64_t)1 << 40)

struct catw {
    worker *w;
    catalog_service *svc;
    int closing;
};

struct get_ctx {
    struct catw *c;
    bus_request *req;
};

static const char *const catw_keys[] = {"path", "lru_entries", "lru_bytes", NULL};

/* ---- config --------------------------------------------------------------- */

struct catw_config {
    const char *path;
    size_t lru_entries;
    size_t lru_bytes;
};

static int parse_config(const json_t *cfg, const char *path, struct catw_config *out, char *err,
                        size_t err_size)
{
    const json_t *v;
    uint64_t n;

    out->path = NULL;
    out->lru_entries = CATALOG_LRU_ENTRIES_DEFAULT;
    out->lru_bytes = CATALOG_LRU_BYTES_DEFAULT;
    v = json_object_get(cfg, "path");
    if (v == NULL) {
        snprintf(err, err_size,
                 "%s.path: required (the catalog's OUTDIR, as given to "
                 "`herdctl catalog build`)",
                 path);
        return -EINVAL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) >= PATH_MAX - 256) {
        snprintf(err, err_size, "%s.path: expected a directory path", path);
        return -EINVAL;
    }
    out->path = json_string_value(v);
    if ((v = json_object_get(cfg, "lru_entries")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > LRU_ENTRIES_MAX) {
            snprintf(err, err_size, "%s.lru_entries: expected an integer from 1 to %d", path,
                     LRU_ENTRIES_MAX);
            return -EINVAL;
        }
        out->lru_entries = (size_t)json_integer_value(v);
    }
    if ((v = json_object_get(cfg, "lru_bytes")) != NULL) {
        if (base_parse_size(v, &n) < 0 || n < 1 || n > LRU_BYTES_MAX) {
            snprintf(err, err_size, "%s.lru_bytes: expected a size such as \"4M\" (1 byte to 1T)",
                     path);
            return -EINVAL;
        }
        out->lru_bytes = (size_t)n;
    }
    return 0;
}

static int catw_validate(const json_t *cfg, const char *path, char *err, size_t err_size)
{
    struct catw_config cc;
    int rc = worker_check_keys(cfg, path, catw_keys, err, err_size);
    if (rc < 0)
        return rc;
    return parse_config(cfg, path, &cc, err, err_size);
}

/* ---- service callbacks ---------------------------------------------------- */

static void update_memory(struct catw *c)
{
    if (c->svc == NULL || c->closing)
        return;
    catalog_lru_stats st;
    catalog_index *idx = catalog_service_index(c->svc);
    catalog_reader_stats(catalog_service_reader(c->svc), &st);
    worker_set_memory(c->w, (uint64_t)(idx != NULL ? catalog_index_get_info(idx).heap_bytes : 0) +
                                st.bytes);
}

static void on_started(catalog_service *svc, int status, const char *error, void *data)
{
    struct catw *c = data;
    worker *prev = worker_enter(c->w);
    if (status < 0) {
        worker_fail(c->w, "catalog not loaded: %s", error != NULL ? error : strerror(-status));
    } else {
        catalog_index *idx = catalog_service_index(svc);
        worker_log(c->w, BASE_LOG_INFO, "serving %s (%zu entries, %zu index bytes)",
                   catalog_index_get_info(idx).version, catalog_index_get_info(idx).n_entries,
                   catalog_index_get_info(idx).heap_bytes);
        update_memory(c);
    }
    worker_leave(prev);
}

static void on_reloaded(catalog_service *svc, const char *version, size_t entries, void *data)
{
    struct catw *c = data;
    worker *prev = worker_enter(c->w);
    char topic[BUS_TOPIC_MAX + 1];
    worker_set_error(c->w, "%s", ""); /* a good version replaces a refused one */
    worker_log(c->w, BASE_LOG_INFO, "swapped to %s (%zu entries)", version, entries);
    update_memory(c);
    json_t *payload = json_pack("{s:s,s:I}", "version", version, "entries", (json_int_t)entries);
    snprintf(topic, sizeof(topic), "catalog.%s.reloaded", worker_name(c->w));
    if (payload == NULL || worker_publish_json(c->w, topic, payload) < 0)
        worker_log(c->w, BASE_LOG_WARN, "could not publish %s", topic);
    json_decref(payload);
    worker_leave(prev);
}

static void on_refused(catalog_service *svc, const char *version, const char *error, void *data)
{
    struct catw *c = data;
    worker *prev = worker_enter(c->w);
    catalog_index *idx = catalog_service_index(svc);
    worker_set_error(c->w, "refused %s, still serving %s: %s", version,
                     idx != NULL ? catalog_index_get_info(idx).version : "nothing", error);
    worker_log(c->w, BASE_LOG_WARN, "refused %s: %s", version, error);
    worker_leave(prev);
}

/* ---- start, stop, health -------------------------------------------------- */

static int catw_start(worker *w, void *state)
{
    struct catw *c = state;
    struct catw_config cc;
    char err[512];
    int rc;

    c->w = w;
    if ((rc = parse_config(worker_config(w), worker_name(w), &cc, err, sizeof(err))) < 0) {
        worker_set_error(w, "%s", err);
        return rc;
    }
    catalog_service_options o = {
        .path = cc.path,
        .lru_entries = cc.lru_entries,
        .lru_bytes = cc.lru_bytes,
        .max_body_bytes = bus_max_reply_bytes(worker_bus(w)) - REPLY_ENVELOPE_BYTES,
        .on_started = on_started,
        .on_reloaded = on_reloaded,
        .on_refused = on_refused,
        .data = c,
    };
    if ((rc = catalog_service_new(worker_loop(w), &o, &c->svc)) < 0) {
        worker_set_error(w, "catalog service: %s", strerror(-rc));
        return rc;
    }
    if ((rc = catalog_service_start(c->svc)) < 0) {
        worker_set_error(w, "catalog service start: %s", strerror(-rc));
        /* the service frees itself once its handles are closed; nothing
         * of it refers to this state */
        catalog_service_close(c->svc, NULL, NULL);
        c->svc = NULL;
        return rc;
    }
    return 0;
}

static void on_service_closed(void *data)
{
    struct catw *c = data;
    c->svc = NULL;
    worker_stopped(c->w); /* the state may be freed from here on */
}

static void catw_stop(worker *w, void *state)
{
    struct catw *c = state;
    if (c->closing)
        return;
    c->closing = 1;
    if (c->svc == NULL) {
        worker_stopped(w);
        return;
    }
    catalog_service_close(c->svc, on_service_closed, c);
}

static void catw_health(worker *w, void *state, json_t *obj)
{
    struct catw *c = state;
    if (c->svc == NULL || c->closing)
        return;
    /* the runtime's last_error (what worker_set_error/worker_fail said)
     * wins over the service's copy */
    json_t *mine = json_incref(json_object_get(obj, "last_error"));
    catalog_service_health(c->svc, obj);
    if (mine != NULL)
        json_object_set_new(obj, "last_error", mine);
    else
        json_object_del(obj, "last_error");
}

/* ---- requests -------------------------------------------------------------- */

/* Each arg_* answers bad_request itself and returns -1 on a bad value. */

static int check_args(bus_request *req, const json_t *args, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)args, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            char expected[256] = "";
            size_t n = 0;
            for (const char *const *a = allowed; *a != NULL && n < sizeof(expected); a++)
                n +=
                    (size_t)snprintf(expected + n, sizeof(expected) - n, "%s%s", n ? ", " : "", *a);
            bus_reply_error(req, "bad_request", "%.64s: unknown argument of %s (expected %s)", key,
                            bus_request_op(req), n ? expected : "none");
            return -1;
        }
    }
    return 0;
}

static int arg_string(bus_request *req, const json_t *args, const char *key, int required,
                      const char **out)
{
    const json_t *v = json_object_get(args, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 0;
        bus_reply_error(req, "bad_request", "%s: required", key);
        return -1;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        bus_reply_error(req, "bad_request", "%s: expected a non-empty string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int arg_count(bus_request *req, const json_t *args, const char *key, size_t def, size_t *out)
{
    const json_t *v = json_object_get(args, key);
    *out = def;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        bus_reply_error(req, "bad_request", "%s: expected a non-negative integer", key);
        return -1;
    }
    *out = (size_t)json_integer_value(v);
    return 0;
}

/* Answers an index query's outcome: the bytes, or the error by class. */
static void reply_buf(bus_request *req, int rc, base_buf *out, const char *err)
{
    if (rc == 0)
        bus_reply_raw(req, out->data, out->len);
    else if (rc == -ENOENT)
        bus_reply_error(req, "not_found", "%s", err);
    else if (rc == -EINVAL || rc == -ENOTUNIQ)
        bus_reply_error(req, "bad_request", "%s", err);
    else if (rc == -EFBIG)
        bus_reply_error(req, "too_large", "%s", err);
    else
        bus_reply_error(req, "internal", "%s: %s", bus_request_op(req),
                        err[0] ? err : strerror(-rc));
    base_buf_free(out);
}

static void op_query(struct catw *c, catalog_index *idx, bus_request *req, int search)
{
    static const char *const list_keys[] = {"section", "category", "domain",
                                            "offset",  "limit",    NULL};
    static const char *const search_keys[] = {"q",      "section", "category", "domain",
                                              "offset", "limit",   NULL};
    const json_t *args = bus_request_args(req);
    catalog_query q = {0};
    base_buf out = {0};
    char err[512] = "";

    if (check_args(req, args, search ? search_keys : list_keys) < 0 ||
        arg_string(req, args, "section", 0, &q.section) < 0 ||
        arg_string(req, args, "category", 0, &q.category) < 0 ||
        arg_string(req, args, "domain", 0, &q.domain) < 0 ||
        (search && arg_string(req, args, "q", 1, &q.q) < 0) ||
        arg_count(req, args, "offset", 0, &q.offset) < 0 ||
        arg_count(req, args, "limit", search ? SEARCH_LIMIT_DEFAULT : LIST_LIMIT_DEFAULT,
                  &q.limit) < 0)
        return;
    q.max_bytes = bus_max_reply_bytes(worker_bus(c->w)) - REPLY_ENVELOPE_BYTES;
    int rc = search ? catalog_index_search(idx, &q, &out, err, sizeof(err))
                    : catalog_index_list(idx, &q, &out, err, sizeof(err));
    reply_buf(req, rc, &out, err);
}

static void op_counts(struct catw *c, catalog_index *idx, bus_request *req, int domains)
{
    static const char *const keys[] = {"section", NULL};
    const json_t *args = bus_request_args(req);
    const char *section;
    base_buf out = {0};
    char err[512] = "";

    if (check_args(req, args, keys) < 0 || arg_string(req, args, "section", 0, &section) < 0)
        return;
    int rc = domains ? catalog_index_domains(idx, section, &out, err, sizeof(err))
                     : catalog_index_categories(idx, section, &out, err, sizeof(err));
    reply_buf(req, rc, &out, err);
}

static void op_stats(struct catw *c, catalog_index *idx, bus_request *req)
{
    static const char *const keys[] = {NULL};
    base_buf out = {0};
    catalog_lru_stats st;

    if (check_args(req, bus_request_args(req), keys) < 0)
        return;
    catalog_reader_stats(catalog_service_reader(c->svc), &st);
    int rc = catalog_index_stats(idx, &out);
    /* splice "lru" in before the object's closing brace */
    if (rc == 0 && (out.len == 0 || out.data[out.len - 1] != '}'))
        rc = -EPROTO;
    if (rc == 0) {
        out.len--;
        rc = base_buf_addf(&out,
                           ",\"lru\":{\"entries\":%zu,\"bytes\":%zu,\"hits\":%llu,"
                           "\"misses\":%llu}}",
                           st.entries, st.bytes, (unsigned long long)st.hits,
                           (unsigned long long)st.misses);
    }
    reply_buf(req, rc, &out, "");
}

static void on_body(int status, const char *body, size_t len, void *data)
{
    struct get_ctx *g = data;
    struct catw *c = g->c;
    worker *prev = worker_enter(c->w);
    if (status == 0)
        bus_reply_raw(g->req, body, len);
    else if (status == -ECANCELED)
        bus_reply_error(g->req, "unavailable", "%s is stopping", worker_name(c->w));
    else if (status == -ENOENT)
        bus_reply_error(g->req, "not_found",
                        "the entry's body is gone from disk and from the current version");
    else if (status == -EFBIG)
        bus_reply_error(g->req, "too_large",
                        "the entry's body is over bus.max_reply_bytes (%zu): it cannot be sent",
                        bus_max_reply_bytes(worker_bus(c->w)));
    else
        bus_reply_error(g->req, "internal", "reading the body: %s", strerror(-status));
    free(g);
    update_memory(c);
    worker_leave(prev);
}

static void op_get(struct catw *c, bus_request *req)
{
    static const char *const keys[] = {"id", "section", NULL};
    const json_t *args = bus_request_args(req);
    const char *id, *section;
    char err[512] = "";

    if (check_args(req, args, keys) < 0 || arg_string(req, args, "id", 1, &id) < 0 ||
        arg_string(req, args, "section", 0, &section) < 0)
        return;
    struct get_ctx *g = malloc(sizeof(*g));
    if (g == NULL) {
        bus_reply_error(req, "internal", "out of memory");
        return;
    }
    g->c = c;
    g->req = req;
    int rc = catalog_service_get(c->svc, section, id, on_body, g);
    if (rc == 0)
        return;
    free(g);
    if (rc == -ENOENT || rc == -ENOTUNIQ) {
        /* the index says why (unknown section, unknown id, ambiguous id) */
        size_t entry;
        catalog_index_find(catalog_service_index(c->svc), section, id, &entry, err, sizeof(err));
        bus_reply_error(req, rc == -ENOENT ? "not_found" : "bad_request", "%s",
                        err[0] ? err : "no such entry");
    } else if (rc == -EAGAIN || rc == -ECANCELED) {
        bus_reply_error(req, "unavailable", "%s has no catalog loaded", worker_name(c->w));
    } else if (rc == -EFBIG) {
        bus_reply_error(req, "too_large",
                        "the entry's body is over bus.max_reply_bytes (%zu): it cannot be sent",
                        bus_max_reply_bytes(worker_bus(c->w)));
    } else {
        bus_reply_error(req, "internal", "get: %s", strerror(-rc));
    }
}

static void catw_request(worker *w, void *state, bus_request *req)
{
    struct catw *c = state;
    const char *op = bus_request_op(req);
    catalog_index *idx = c->svc != NULL && !c->closing ? catalog_service_index(c->svc) : NULL;

    if (strcmp(op, "list") != 0 && strcmp(op, "get") != 0 && strcmp(op, "search") != 0 &&
        strcmp(op, "categories") != 0 && strcmp(op, "domains") != 0 && strcmp(op, "stats") != 0) {
        bus_reply_error(req, "unknown_op",
                        "%s (kind catalog) has no op \"%.64s\" (expected list, get, search, "
                        "categories, domains or stats)",
                        worker_name(w), op);
        return;
    }
    if (idx == NULL) {
        bus_reply_error(req, "unavailable", "%s has not loaded its catalog yet", worker_name(w));
        return;
    }
    if (strcmp(op, "get") == 0)
        op_get(c, req);
    else if (strcmp(op, "list") == 0)
        op_query(c, idx, req, 0);
    else if (strcmp(op, "search") == 0)
        op_query(c, idx, req, 1);
    else if (strcmp(op, "categories") == 0)
        op_counts(c, idx, req, 0);
    else if (strcmp(op, "domains") == 0)
        op_counts(c, idx, req, 1);
    else
        op_stats(c, idx, req);
}

static size_t catw_paths(const json_t *cfg, worker_path *out, size_t max)
{
    const char *path = json_string_value(json_object_get(cfg, "path"));

    if (path == NULL || max == 0)
        return 0;
    out[0] = (worker_path){path, false}; /* the compiler writes it, the worker reads */
    return 1;
}

const worker_kind catalog_worker_kind = {
    .name = "catalog",
    .size = sizeof(struct catw),
    .validate = catw_validate,
    .start = catw_start,
    .stop = catw_stop,
    .health = catw_health,
    .paths = catw_paths,
    .request = catw_request,
};
