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
 *   reports what the service holds (catalog_service_heap_bytes: the
 *   service, its reader and cached bodies, the index) with
 *   worker_set_memory after every load, swap and read, so heap_bytes and
 *   memory_max see them.
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
/* ids in one get: a page of a dashboard, not the catalog */
#define GET_IDS_MAX 1000

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
    worker_set_memory(c->w, catalog_service_heap_bytes(c->svc));
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

/* A JSON argument of a type the index checks further; absent or null: NULL. */
static int arg_json(bus_request *req, const json_t *args, const char *key, int type,
                    const char *what, const json_t **out)
{
    const json_t *v = json_object_get(args, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (type >= 0 && (int)json_typeof(v) != type) {
        bus_reply_error(req, "bad_request", "%s: expected %s", key, what);
        return -1;
    }
    *out = v;
    return 0;
}

static void op_query(struct catw *c, catalog_index *idx, bus_request *req, int search)
{
    static const char *const keys[] = {"section", "category", "domain", "where",  "any",   "q",
                                       "match",   "order",    "facets", "offset", "limit", NULL};
    const json_t *args = bus_request_args(req);
    catalog_query q = {0};
    base_buf out = {0};
    char err[512] = "";
    const char *match = NULL;
    const json_t *qv = json_object_get(args, "q");

    if (check_args(req, args, keys) < 0 || arg_string(req, args, "section", 0, &q.section) < 0 ||
        arg_string(req, args, "category", 0, &q.category) < 0 ||
        arg_string(req, args, "domain", 0, &q.domain) < 0 ||
        arg_json(req, args, "where", JSON_OBJECT, "an object of field: value clauses", &q.where) <
            0 ||
        arg_json(req, args, "any", JSON_ARRAY, "an array of where objects", &q.any) < 0 ||
        arg_json(req, args, "order", -1, "", &q.order) < 0 ||
        arg_json(req, args, "facets", JSON_ARRAY, "an array of field names", &q.facets) < 0 ||
        arg_string(req, args, "match", 0, &match) < 0 ||
        arg_count(req, args, "offset", 0, &q.offset) < 0 ||
        arg_count(req, args, "limit", search ? SEARCH_LIMIT_DEFAULT : LIST_LIMIT_DEFAULT,
                  &q.limit) < 0)
        return;
    /* search needs a text; list takes an empty one (an empty search box) as none */
    if (search && arg_string(req, args, "q", 1, &q.q) < 0)
        return;
    if (!search && qv != NULL && !json_is_null(qv)) {
        if (!json_is_string(qv) || strlen(json_string_value(qv)) != json_string_length(qv)) {
            bus_reply_error(req, "bad_request", "q: expected a string");
            return;
        }
        q.q = json_string_value(qv);
    }
    if (match != NULL && strcmp(match, "terms") != 0 && strcmp(match, "phrase") != 0) {
        bus_reply_error(req, "bad_request", "match: \"%.32s\": expected \"terms\" or \"phrase\"",
                        match);
        return;
    }
    q.phrase = match != NULL && strcmp(match, "phrase") == 0;
    q.max_bytes = bus_max_reply_bytes(worker_bus(c->w)) - REPLY_ENVELOPE_BYTES;
    int rc = search ? catalog_index_search(idx, &q, &out, err, sizeof(err))
                    : catalog_index_list(idx, &q, &out, err, sizeof(err));
    reply_buf(req, rc, &out, err);
    update_memory(c); /* a query may have kept a field's column */
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
    update_memory(c);
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

/* An entry's slim JSON from memory, or -ENOENT / -ENOTUNIQ with a message. */
static int find_slim(catalog_index *idx, const char *section, const char *id, const char **slim,
                     size_t *len, char *err, size_t err_size)
{
    size_t entry;
    int rc = catalog_index_find(idx, section, id, &entry, err, err_size);
    if (rc == 0)
        *slim = catalog_index_entry_slim(idx, entry, len);
    return rc;
}

static void reply_get_error(struct catw *c, bus_request *req, int rc, const char *err)
{
    if (rc == -ENOENT)
        bus_reply_error(req, "not_found", "%s", err[0] ? err : "no such entry");
    else if (rc == -ENOTUNIQ || rc == -EINVAL)
        bus_reply_error(req, "bad_request", "%s", err);
    else if (rc == -EAGAIN || rc == -ECANCELED)
        bus_reply_error(req, "unavailable", "%s has no catalog loaded", worker_name(c->w));
    else if (rc == -EFBIG)
        bus_reply_error(req, "too_large",
                        "the answer is over bus.max_reply_bytes (%zu): ask for fewer ids",
                        bus_max_reply_bytes(worker_bus(c->w)));
    else
        bus_reply_error(req, "internal", "get: %s", err[0] ? err : strerror(-rc));
}

static void get_one(struct catw *c, catalog_index *idx, bus_request *req, const char *section,
                    const char *id, int slim)
{
    char err[512] = "";
    if (slim) {
        const char *s;
        size_t len;
        int rc = find_slim(idx, section, id, &s, &len, err, sizeof(err));
        if (rc == 0)
            bus_reply_raw(req, s, len);
        else
            reply_get_error(c, req, rc, err);
        return;
    }
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
        catalog_index_find(idx, section, id, &entry, err, sizeof(err));
    }
    reply_get_error(c, req, rc, err);
}

/* ---- get {ids}: bodies read in parallel, answered as one object ---------- */

struct batch_item {
    struct batch *b;
    char *id;
    char *body; /* its copy, until the reply is built */
    size_t len;
    int found;
};

struct batch {
    struct catw *c;
    bus_request *req;
    size_t n, pending;
    size_t bytes, max_bytes;
    int status; /* the first failure */
    struct batch_item items[];
};

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i].id);
        free(b->items[i].body);
    }
    free(b);
}

/* `{"<id>":<body>,...}` in the order asked, or the first failure. */
static void batch_finish(struct batch *b)
{
    base_buf out = {0};
    int rc = b->status;
    if (b->req == NULL) { /* answered already */
        struct catw *c = b->c;
        batch_free(b);
        update_memory(c);
        return;
    }
    if (rc == 0)
        rc = base_buf_add(&out, "{", 1);
    for (size_t i = 0, k = 0; i < b->n && rc == 0; i++) {
        struct batch_item *it = &b->items[i];
        if (!it->found)
            continue;
        if (k++)
            rc |= base_buf_add(&out, ",", 1);
        rc |= base_buf_json_string(&out, it->id, strlen(it->id));
        rc |= base_buf_add(&out, ":", 1);
        rc |= base_buf_add(&out, it->body, it->len);
        free(it->body);
        it->body = NULL;
    }
    if (rc == 0)
        rc = base_buf_add(&out, "}", 1);
    if (rc == 0)
        bus_reply_raw(b->req, out.data, out.len);
    else
        reply_get_error(b->c, b->req, rc < 0 ? rc : -ENOMEM, "");
    base_buf_free(&out);
    struct catw *c = b->c;
    batch_free(b);
    update_memory(c);
}

static void batch_done_one(struct batch *b)
{
    if (--b->pending == 0)
        batch_finish(b);
}

static void on_batch_body(int status, const char *body, size_t len, void *data)
{
    struct batch_item *it = data;
    struct batch *b = it->b;
    worker *prev = worker_enter(b->c->w);
    if (status == 0 && b->status == 0) {
        /* the reply's bytes are bounded as the bodies arrive */
        if (b->bytes + len + strlen(it->id) * 6 + 8 > b->max_bytes) {
            b->status = -EFBIG;
        } else if ((it->body = malloc(len ? len : 1)) == NULL) {
            b->status = -ENOMEM;
        } else {
            memcpy(it->body, body, len);
            it->len = len;
            it->found = 1;
            b->bytes += len + strlen(it->id) * 6 + 8;
        }
    } else if (status == -ENOENT) {
        /* gone from disk and from the current version too: left out */
    } else if (status < 0 && b->status == 0) {
        b->status = status;
    }
    batch_done_one(b);
    worker_leave(prev);
}

static int section_known(catalog_index *idx, const char *section)
{
    for (size_t i = 0; section != NULL && catalog_index_section_name(idx, i) != NULL; i++)
        if (strcmp(catalog_index_section_name(idx, i), section) == 0)
            return 1;
    return section == NULL;
}

static void get_many(struct catw *c, catalog_index *idx, bus_request *req, const char *section,
                     const json_t *ids, int slim)
{
    char err[512] = "";
    size_t n = json_array_size(ids);
    if (!json_is_array(ids) || n == 0 || n > GET_IDS_MAX) {
        bus_reply_error(req, "bad_request", "ids: expected an array of 1 to %d ids", GET_IDS_MAX);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(ids, i);
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            bus_reply_error(req, "bad_request", "ids[%zu]: expected a non-empty string", i);
            return;
        }
    }
    if (!section_known(idx, section)) {
        bus_reply_error(req, "not_found", "no section \"%.200s\"", section);
        return;
    }
    struct batch *b = calloc(1, sizeof(*b) + n * sizeof(b->items[0]));
    if (b == NULL) {
        bus_reply_error(req, "internal", "out of memory");
        return;
    }
    b->c = c;
    b->req = req;
    b->max_bytes = bus_max_reply_bytes(worker_bus(c->w)) - REPLY_ENVELOPE_BYTES;
    b->pending = 1; /* held until every read is asked for */
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        size_t entry;
        int dup = 0;
        for (size_t j = 0; j < b->n && !dup; j++)
            dup = strcmp(b->items[j].id, id) == 0;
        if (dup)
            continue; /* once */
        int rc = catalog_index_find(idx, section, id, &entry, err, sizeof(err));
        if (rc == -ENOENT)
            continue; /* unknown ids are left out */
        if (rc < 0 || (b->items[b->n].id = strdup(id)) == NULL) {
            b->status = rc < 0 ? rc : -ENOMEM;
            break;
        }
        struct batch_item *it = &b->items[b->n++];
        it->b = b;
        if (slim) {
            it->body = NULL;
            const char *s = catalog_index_entry_slim(idx, entry, &it->len);
            if (b->bytes + it->len + strlen(id) * 6 + 8 > b->max_bytes) {
                b->status = -EFBIG;
                break;
            }
            if ((it->body = malloc(it->len ? it->len : 1)) == NULL) {
                b->status = -ENOMEM;
                break;
            }
            memcpy(it->body, s, it->len);
            it->found = 1;
            b->bytes += it->len + strlen(id) * 6 + 8;
            continue;
        }
        b->pending++;
        rc = catalog_service_get(c->svc, section, id, on_batch_body, it);
        if (rc < 0) {
            b->pending--;
            if (rc != -ENOENT) {
                b->status = rc;
                break;
            }
        }
    }
    if (b->status == -ENOTUNIQ) {
        /* the message names the sections: answer it now, the reads still
         * in flight complete into the batch, which is then only freed */
        bus_reply_error(req, "bad_request", "%s", err);
        b->req = NULL;
    }
    batch_done_one(b);
}

static void op_get(struct catw *c, catalog_index *idx, bus_request *req)
{
    static const char *const keys[] = {"id", "ids", "section", "slim", NULL};
    const json_t *args = bus_request_args(req);
    const json_t *ids = json_object_get(args, "ids"), *slim = json_object_get(args, "slim");
    const char *id, *section;

    if (check_args(req, args, keys) < 0 || arg_string(req, args, "section", 0, &section) < 0)
        return;
    if (slim != NULL && !json_is_boolean(slim)) {
        bus_reply_error(req, "bad_request", "slim: expected true or false");
        return;
    }
    if (ids != NULL && json_object_get(args, "id") != NULL) {
        bus_reply_error(req, "bad_request", "id and ids: give one of them");
        return;
    }
    if (ids != NULL) {
        get_many(c, idx, req, section, ids, json_is_true(slim));
        return;
    }
    if (arg_string(req, args, "id", 1, &id) < 0)
        return;
    get_one(c, idx, req, section, id, json_is_true(slim));
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
        op_get(c, idx, req);
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
