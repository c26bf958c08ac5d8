/*
 * Helpers for the jobs unit tests (tests/unit/test_jobs_*.c): a loop, a temp
 * state dir, synchronous wrappers around jobs_request, recorded events.
 * Header-only and test-only: nothing in the library includes it.
 */
#ifndef HERD_JOBS_TEST_SUPPORT_H
#define HERD_JOBS_TEST_SUPPORT_H

#include "jobs/internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct ts_event {
    char *topic;
    char *payload;
} ts_event;

typedef struct ts {
    uv_loop_t loop;
    char dir[4096];
    jobs_config *cfg;
    jobs *j;
    ts_event *events;
    size_t n_events, cap_events;
    int n_log_errors;
    char last_log[512];
    bool closed;
    bool check_durable; /* verify terminal state events against jobs.json */
    int durable_checked, durable_failed;
} ts;

static inline void ts_publish(const char *topic, const char *payload, size_t len, void *data)
{
    ts *t = data;
    if (t->n_events == t->cap_events) {
        t->cap_events = t->cap_events ? 2 * t->cap_events : 64;
        t->events = realloc(t->events, t->cap_events * sizeof(*t->events));
    }
    if (t->check_durable && strstr(topic, ".state") != NULL) {
        json_t *m = json_loadb(payload, len, 0, NULL);
        const char *st = json_string_value(json_object_get(m, "status"));
        if (st != NULL &&
            (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
            char path[4200];
            snprintf(path, sizeof(path), "%s/jobs.json", t->dir);
            json_t *root = json_load_file(path, 0, NULL);
            bool found = false;
            size_t i;
            json_t *o;
            json_array_foreach(json_object_get(root, "jobs"), i, o)
            {
                if (json_equal(json_object_get(o, "job_id"), json_object_get(m, "job_id")))
                    found = json_equal(json_object_get(o, "status"), json_object_get(m, "status"));
            }
            t->durable_checked++;
            t->durable_failed += !found;
            json_decref(root);
        }
        json_decref(m);
    }
    t->events[t->n_events].topic = strdup(topic);
    t->events[t->n_events].payload = strndup(payload, len);
    t->n_events++;
}

static inline void ts_log(enum base_log_level level, const char *msg, void *data)
{
    ts *t = data;
    if (level <= BASE_LOG_ERROR)
        t->n_log_errors++;
    snprintf(t->last_log, sizeof(t->last_log), "%s", msg);
    if (getenv("JOBS_TEST_VERBOSE") != NULL)
        fprintf(stderr, "[log %d] %s\n", level, msg);
}

static inline void ts_rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char sub[4096];
            if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) < (int)sizeof(sub))
                ts_rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* A fresh temp state dir under $HERD_TEST_TMP (or /tmp). */
static inline void ts_init(ts *t)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(uv_loop_init(&t->loop), 0);
    const char *base = getenv("HERD_TEST_TMP");
    snprintf(t->dir, sizeof(t->dir), "%s/jobs-XXXXXX", base != NULL ? base : "/tmp");
    mkdir(base != NULL ? base : "/tmp", 0755);
    assert_non_null(mkdtemp(t->dir));
}

static inline void ts_config(ts *t, const char *json)
{
    json_error_t jerr;
    json_t *o = json_loads(json, 0, &jerr);
    if (o == NULL)
        fail_msg("bad test config: %s", jerr.text);
    char err[256] = "";
    int rc = jobs_config_parse(o, "workers[0]", NULL, &t->cfg, err, sizeof(err));
    if (rc)
        fail_msg("config: %s", err);
    json_decref(o);
}

static inline void ts_new(ts *t)
{
    jobs_hooks hooks = {.publish = ts_publish, .log = ts_log, .data = t};
    char err[256] = "";
    int rc = jobs_new(&t->loop, t->cfg, "jw", t->dir, &hooks, &t->j, err, sizeof(err));
    if (rc)
        fail_msg("jobs_new: %s", err);
}

static inline void ts_start(ts *t)
{
    ts_new(t);
    assert_int_equal(jobs_start(t->j), 0);
}

static inline void ts_on_closed(jobs *j, void *data)
{
    ((ts *)data)->closed = true;
}

/* Closes the instance and runs the loop dry. */
static inline void ts_close_jobs(ts *t)
{
    jobs_close(t->j, ts_on_closed, t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_true(t->closed);
    t->closed = false;
    t->j = NULL;
}

static inline void ts_fini(ts *t)
{
    if (t->j != NULL)
        ts_close_jobs(t);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    jobs_config_free(t->cfg);
    for (size_t i = 0; i < t->n_events; i++) {
        free(t->events[i].topic);
        free(t->events[i].payload);
    }
    free(t->events);
    if (getenv("JOBS_TEST_KEEP") == NULL)
        ts_rm_rf(t->dir);
}

typedef struct ts_reply {
    bool done;
    json_t *result;
    char code[32];
    char message[512];
} ts_reply;

static inline void ts_reply_cb(json_t *result, const char *code, const char *message, void *data)
{
    ts_reply *r = data;
    r->done = true;
    r->result = json_incref(result);
    if (code != NULL)
        snprintf(r->code, sizeof(r->code), "%s", code);
    if (message != NULL)
        snprintf(r->message, sizeof(r->message), "%s", message);
}

static inline void ts_noop_timer(uv_timer_t *h) {}

/* Runs the loop until *flag, with a 10 ms poll so a wait never hangs on a
 * loop with nothing active. */
static inline void ts_run_until(ts *t, bool *flag)
{
    uv_timer_t poll;
    uv_timer_init(&t->loop, &poll);
    uv_timer_start(&poll, ts_noop_timer, 10, 10);
    while (!*flag)
        uv_run(&t->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT);
}

/* Sends a request (args as JSON text, may be NULL) and waits for the
 * reply. The caller json_decrefs r->result. */
static inline ts_reply ts_req(ts *t, const char *op, const char *args_json)
{
    ts_reply r;
    memset(&r, 0, sizeof(r));
    json_t *args = NULL;
    if (args_json != NULL) {
        json_error_t jerr;
        args = json_loads(args_json, JSON_ALLOW_NUL, &jerr);
        if (args == NULL)
            fail_msg("bad test args %s: %s", args_json, jerr.text);
    }
    assert_int_equal(jobs_request(t->j, op, args, ts_reply_cb, &r), 0);
    assert_false(r.done); /* never before jobs_request returns */
    json_decref(args);
    ts_run_until(t, &r.done);
    return r;
}

static inline ts_reply ts_reqj(ts *t, const char *op, json_t *args /* stolen */)
{
    ts_reply r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(jobs_request(t->j, op, args, ts_reply_cb, &r), 0);
    json_decref(args);
    ts_run_until(t, &r.done);
    return r;
}

/* Submits and returns the job id (static storage rotated over 8 slots). */
static inline const char *ts_submit(ts *t, const char *args_json)
{
    static char ids[8][JOBS__ID_LEN + 1];
    static int slot;
    ts_reply r = ts_req(t, "submit", args_json);
    if (r.result == NULL)
        fail_msg("submit %s: %s %s", args_json, r.code, r.message);
    char *id = ids[slot++ % 8];
    snprintf(id, JOBS__ID_LEN + 1, "%s", json_string_value(json_object_get(r.result, "job_id")));
    json_decref(r.result);
    assert_true(jobs__id_valid(id));
    return id;
}

static inline json_t *ts_get(ts *t, const char *id)
{
    char args[128];
    snprintf(args, sizeof(args), "{\"id\": \"%s\"}", id);
    ts_reply r = ts_req(t, "get", args);
    if (r.result == NULL)
        fail_msg("get %s: %s %s", id, r.code, r.message);
    return r.result;
}

static inline const char *ts_status(ts *t, const char *id)
{
    static char status[32];
    json_t *m = ts_get(t, id);
    snprintf(status, sizeof(status), "%s", json_string_value(json_object_get(m, "status")));
    json_decref(m);
    return status;
}

static inline bool ts_terminal(const char *status)
{
    return !strcmp(status, "completed") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled");
}

/* Waits until a job is terminal; returns its metadata. */
static inline json_t *ts_wait(ts *t, const char *id)
{
    for (;;) {
        json_t *m = ts_get(t, id);
        if (ts_terminal(json_string_value(json_object_get(m, "status"))))
            return m;
        json_decref(m);
        uv_run(&t->loop, UV_RUN_ONCE);
    }
}

static inline void ts_wait_status(ts *t, const char *id, const char *status)
{
    while (strcmp(ts_status(t, id), status) != 0)
        uv_run(&t->loop, UV_RUN_ONCE);
}

/* Whole file into a malloc'd buffer; NULL when absent. */
static inline char *ts_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static inline void ts_write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static inline void ts_log_path(ts *t, const char *id, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/logs/%s.log", t->dir, id);
    assert_true(n > 0 && (size_t)n < size);
}

/* Pages through `output` from offset 0; returns the concatenated data. */
static inline char *ts_output_all(ts *t, const char *id, size_t limit, size_t *len)
{
    size_t cap = 1024, n = 0;
    char *buf = malloc(cap);
    uint64_t off = 0;
    for (;;) {
        char args[160];
        snprintf(args, sizeof(args), "{\"id\": \"%s\", \"offset\": %llu, \"limit_bytes\": %zu}", id,
                 (unsigned long long)off, limit);
        ts_reply r = ts_req(t, "output", args);
        if (r.result == NULL)
            fail_msg("output: %s %s", r.code, r.message);
        const json_t *d = json_object_get(r.result, "data");
        size_t dl = json_string_length(d);
        while (n + dl + 1 > cap)
            buf = realloc(buf, cap *= 2);
        memcpy(buf + n, json_string_value(d), dl);
        n += dl;
        assert_int_equal(json_integer_value(json_object_get(r.result, "offset")), off);
        off = (uint64_t)json_integer_value(json_object_get(r.result, "next_offset"));
        bool eof = json_is_true(json_object_get(r.result, "eof"));
        json_decref(r.result);
        if (eof)
            break;
        assert_true(dl > 0);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

#endif
