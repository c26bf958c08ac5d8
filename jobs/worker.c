/*
 * The `jobs` worker kind: a thin adapter from the worker runtime
 * (workers/worker.h) to the jobs library (jobs.h).
 *
 * Design notes:
 *  - The library knows nothing of the bus: its publish hook becomes
 *    worker_publish, its log hook worker_log, and each reply of
 *    jobs_request becomes one bus_reply_*.
 *  - The library's config must outlive the runner (jobs_new borrows it), so
 *    it is freed in the close callback, never in stop.
 *  - Memory: the runner allocates through base_malloc and brackets each of
 *    its libuv callbacks with worker_enter/worker_leave (jobs_hooks), so
 *    everything it holds, and what jansson, libuv and the bus allocate for
 *    it, is charged to this worker like any kind's memory (heap_bytes,
 *    memory_high, memory_max). heap_bytes_jobs in health is the runner's
 *    own exact count, part of that figure.
 *  - A start that fails after jobs_new still has to close the runner (it
 *    owns timers); the close then runs detached from the worker, whose state
 *    is freed as soon as start returns, and only frees the config.
 */
#include "jobs/jobs.h"
#include "workers/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jobs_worker {
    worker *w;
    jobs_config *cfg;
    jobs *j;
    bool stopping;
} jobs_worker;

/* The runtime checks the common keys (worker_common_keys) itself: the
 * library is told to accept and ignore them. */
static int parse_config(const json_t *cfg, const char *path, jobs_config **out, char *err,
                        size_t err_size)
{
    return jobs_config_parse(cfg, path, worker_common_keys, out, err, err_size);
}

static int jobs_worker_validate(const json_t *cfg, const char *path, char *err, size_t err_size)
{
    jobs_config *c = NULL;
    int rc = parse_config(cfg, path, &c, err, err_size);
    jobs_config_free(c);
    if (rc < 0)
        return rc;
    /* Stopping the worker cancels running jobs (SIGTERM, SIGKILL after
     * kill_timeout_s); the supervisor waits stop_timeout_s (+2 s) for that. */
    json_t *kill = json_object_get(cfg, "kill_timeout_s");
    json_t *stop = json_object_get(cfg, "stop_timeout_s");
    double kill_s = json_is_number(kill) ? json_number_value(kill) : 10;
    json_int_t stop_s = json_is_integer(stop) ? json_integer_value(stop) : 10;
    if (kill_s > (double)stop_s) {
        snprintf(err, err_size,
                 "%s.kill_timeout_s: %g s is longer than the worker's stop_timeout_s (%lld s): "
                 "raise stop_timeout_s or lower kill_timeout_s",
                 path, kill_s, (long long)stop_s);
        return -EINVAL;
    }
    return 0;
}

/* The hooks below run inside the runner's bracketed callbacks (or inside
 * the runtime's calls into the kind): already charged to this worker. */
static void on_publish(const char *topic, const char *payload, size_t len, void *data)
{
    jobs_worker *jw = data;
    int rc = worker_publish(jw->w, topic, payload, len);
    if (rc < 0)
        worker_log(jw->w, BASE_LOG_WARN, "cannot publish on %s: %s", topic, strerror(-rc));
}

static void on_log(enum base_log_level level, const char *msg, void *data)
{
    jobs_worker *jw = data;
    worker_log(jw->w, level, "%s", msg);
}

static void *on_enter(void *data)
{
    return worker_enter(((jobs_worker *)data)->w);
}

static void on_leave(void *token, void *data)
{
    (void)data;
    worker_leave(token);
}

/* A runner closed after a failed start: nothing of the worker is left. */
static void on_closed_detached(jobs *j, void *data)
{
    (void)j;
    jobs_config_free(data);
}

static int jobs_worker_start(worker *w, void *state)
{
    jobs_worker *jw = state;
    char err[512] = "";
    int rc;

    jw->w = w;
    rc = parse_config(worker_config(w), worker_name(w), &jw->cfg, err, sizeof(err));
    if (rc < 0) {
        worker_set_error(w, "%s", err);
        return rc;
    }
    const char *dir = jobs_config_state_dir(jw->cfg);
    if (dir == NULL)
        dir = worker_state_dir(w);
    jobs_hooks hooks = {
        .publish = on_publish,
        .log = on_log,
        .enter = on_enter,
        .leave = on_leave,
        .data = jw,
    };
    rc = jobs_new(worker_loop(w), jw->cfg, worker_name(w), dir, &hooks, &jw->j, err, sizeof(err));
    if (rc < 0) {
        worker_set_error(w, "%s", err);
        goto fail_new;
    }
    rc = jobs_start(jw->j);
    if (rc < 0) {
        worker_set_error(w, "cannot start the job runner in %s: %s (details in the log)", dir,
                         strerror(-rc));
        goto fail_start;
    }
    return 0;

fail_start:
    /* The runner's hooks point at jw, which goes with this failed instance:
     * the close runs without them (its blocks stay charged to the worker's
     * account, which the runtime keeps until they are freed). */
    jobs_set_hooks(jw->j, NULL);
    jobs_close(jw->j, on_closed_detached, jw->cfg);
    jw->j = NULL;
    jw->cfg = NULL;
    return rc;
fail_new:
    jobs_config_free(jw->cfg);
    jw->cfg = NULL;
    return rc;
}

static void on_closed(jobs *j, void *data)
{
    jobs_worker *jw = data;
    (void)j;
    jobs_config_free(jw->cfg);
    jw->cfg = NULL;
    jw->j = NULL;
    /* The runner is freed right after this returns, still bracketed: its
     * blocks are credited back to this worker's account. */
    worker_stopped(jw->w);
}

static void jobs_worker_stop(worker *w, void *state)
{
    jobs_worker *jw = state;

    if (jw->stopping)
        return;
    jw->stopping = true;
    if (jw->j == NULL) {
        worker_stopped(w);
        return;
    }
    jobs_close(jw->j, on_closed, jw);
}

static void jobs_worker_health(worker *w, void *state, json_t *obj)
{
    jobs_worker *jw = state;

    if (jw->j == NULL)
        return;
    (void)w;
    jobs_health(jw->j, obj);
}

/* Runs inside the runner's bracketed kick timer. */
static void on_reply(json_t *result, const char *code, const char *message, void *data)
{
    bus_request *req = data;
    if (code != NULL)
        bus_reply_error(req, code, "%s", message != NULL ? message : code);
    else
        bus_reply_ok(req, json_incref(result));
}

static void jobs_worker_request(worker *w, void *state, bus_request *req)
{
    jobs_worker *jw = state;

    if (jw->j == NULL || jw->stopping) {
        bus_reply_error(req, "unavailable", "worker %s is stopping", worker_name(w));
        return;
    }
    int rc = jobs_request(jw->j, bus_request_op(req), bus_request_args(req), on_reply, req);
    if (rc < 0)
        bus_reply_error(req, rc == -ESHUTDOWN ? "unavailable" : "internal", "%s",
                        rc == -ESHUTDOWN ? "the job runner is closed" : strerror(-rc));
}

static size_t jobs_worker_paths(const json_t *cfg, worker_path *out, size_t max)
{
    const char *dir = json_string_value(json_object_get(cfg, "state_dir"));

    if (dir == NULL || max == 0)
        return 0;
    out[0] = (worker_path){dir, true};
    return 1;
}

const worker_kind jobs_worker_kind = {
    .name = "jobs",
    .size = sizeof(jobs_worker),
    .uses_state_dir = true,
    .validate = jobs_worker_validate,
    .start = jobs_worker_start,
    .stop = jobs_worker_stop,
    .health = jobs_worker_health,
    .paths = jobs_worker_paths,
    .request = jobs_worker_request,
};
