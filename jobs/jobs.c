/*
 * The jobs instance: creation, start (restore), close, requests, health.
 *
 * Design notes:
 *  - jobs_new initialises three timers (kick, tick, store_timer), so every
 *    instance, started or not, ends with jobs_close.
 *  - Close is a state machine driven by the kick timer (jobs__close_step):
 *    terminate runs -> wait for every run's handles and thread-pool request
 *    -> one last jobs.json write of the newest generation -> deliver every
 *    pending report -> close the timers -> on_closed -> free.
 */
#include "jobs/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int fail(char *err, size_t size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t size, int rc, const char *fmt, ...)
{
    if (err && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static bool token_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

static char *join(jobs *j, const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = jobs__malloc(j, n);
    if (s)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

static void free_all(jobs *j)
{
    while (j->head) {
        jobs_job *job = j->head;
        jobs__job_unlink(j, job);
        jobs__job_free(j, job);
    }
    jobs__free(j, j->readbuf);
    jobs__free(j, j->lane_running);
    jobs__free(j, j->worker);
    jobs__free(j, j->dir);
    jobs__free(j, j->logs_dir);
    jobs__free(j, j->json_path);
    jobs__free(j, j->tmp_path);
    jobs_hooks hooks = j->hooks;
    jobs__raw_free(&hooks, j);
}

int jobs_new(uv_loop_t *loop, const jobs_config *cfg, const char *worker_name,
             const char *state_dir, const jobs_hooks *hooks, jobs **out, char *err, size_t err_size)
{
    if (!loop || !cfg || !out)
        return fail(err, err_size, -EINVAL, "jobs_new: missing loop, config or out");
    if (!token_valid(worker_name))
        return fail(err, err_size, -EINVAL, "worker name \"%s\" is not a topic token",
                    worker_name ? worker_name : "");
    if (!state_dir)
        state_dir = cfg->state_dir;
    if (!state_dir || !*state_dir || strlen(state_dir) > 3000)
        return fail(err, err_size, -EINVAL, "%s: no usable state_dir", worker_name);
    if (hooks && (!hooks->realloc) != (!hooks->free))
        return fail(err, err_size, -EINVAL, "jobs_new: hooks.realloc and hooks.free go together");
    jobs *j = jobs__raw_alloc(hooks, sizeof *j);
    if (!j)
        return fail(err, err_size, -ENOMEM, "out of memory");
    memset(j, 0, sizeof *j);
    j->heap_bytes = sizeof *j;
    j->loop = loop;
    j->cfg = cfg;
    if (hooks)
        j->hooks = *hooks;
    j->worker = jobs__strdup(j, worker_name);
    j->dir = jobs__strdup(j, state_dir);
    j->lane_running = jobs__calloc(j, cfg->n_lanes * sizeof *j->lane_running);
    if (j->dir) {
        j->logs_dir = join(j, j->dir, "logs");
        j->json_path = join(j, j->dir, "jobs.json");
        j->tmp_path = join(j, j->dir, "jobs.json.tmp");
    }
    if (!j->worker || !j->dir || !j->lane_running || !j->logs_dir || !j->json_path ||
        !j->tmp_path) {
        free_all(j);
        return fail(err, err_size, -ENOMEM, "out of memory");
    }
    uv_timer_init(loop, &j->kick);
    uv_timer_init(loop, &j->tick);
    uv_timer_init(loop, &j->store_timer);
    j->kick.data = j->tick.data = j->store_timer.data = j;
    j->n_handles_open = 3;
    *out = j;
    return 0;
}

/* mkdir -p with mode 0750 for what it creates. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0750) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int jobs_start(jobs *j)
{
    if (!j || j->closing)
        return -EINVAL;
    if (j->started)
        return 0;
    int rc = make_dirs(j->logs_dir);
    if (rc) {
        jobs__log(j, JOBS_LOG_ERROR, "%s: %s", j->logs_dir, strerror(-rc));
        return rc;
    }
    rc = jobs__store_restore(j);
    if (rc) {
        while (j->head) {
            jobs_job *job = j->head;
            jobs__job_unlink(j, job);
            jobs__job_free(j, job);
        }
        /* Reports queued by the partial restore refer to nothing durable. */
        while (j->reports) {
            jobs__report *r = j->reports;
            j->reports = r->next;
            jobs__free(j, r->topic);
            jobs__free(j, r->payload);
            jobs__free(j, r->message);
            jobs__free(j, r);
        }
        j->reports_tail = NULL;
        j->dirty_gen = j->disk_gen;
        return rc;
    }
    jobs__remove_orphans(j);
    jobs__retention(j);
    j->started = true;
    if (j->dirty_gen > j->disk_gen)
        jobs__store_dirty(j);
    jobs__kick(j);
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    jobs *j = h->data;
    if (--j->n_handles_open > 0)
        return;
    jobs__bracket b = jobs__enter(j);
    if (j->on_closed)
        j->on_closed(j, j->close_data);
    free_all(j);
    jobs__leave(&b);
}

void jobs__close_step(jobs *j)
{
    jobs__runs_close(j);
    if (j->n_runs || j->n_work || j->write_in_flight || j->store_timer_armed)
        return;
    for (jobs_job *job = j->head; job; job = job->next)
        if (job->run || job->finishing)
            return;
    if (j->started && j->dirty_gen > j->disk_gen && j->close_gen_tried < j->dirty_gen) {
        j->close_gen_tried = j->dirty_gen;
        jobs__store_write_now(j);
        return;
    }
    if (j->done_gen < j->dirty_gen)
        j->done_gen = j->dirty_gen;
    jobs__reports_flush(j);
    if (j->reports) /* a reply callback asked for more: come back */
        return;
    j->closed = true;
    uv_close((uv_handle_t *)&j->kick, handle_closed);
    uv_close((uv_handle_t *)&j->tick, handle_closed);
    uv_close((uv_handle_t *)&j->store_timer, handle_closed);
}

void jobs_close(jobs *j, jobs_closed_cb on_closed, void *data)
{
    if (!j || j->closing)
        return;
    j->closing = true;
    j->on_closed = on_closed;
    j->close_data = data;
    jobs__runs_close(j);
    jobs__kick(j);
}

int jobs_request(jobs *j, const char *op, const json_t *args, jobs_reply_cb cb, void *data)
{
    if (!j || !op || !cb)
        return -EINVAL;
    if (j->closed)
        return -ESHUTDOWN;
    if (j->closing || !j->started) {
        jobs__reply(j, 0, cb, data, NULL, "unavailable", "the jobs worker is %s",
                    j->closing ? "stopping" : "not started");
        return 0;
    }
    jobs__op(j, op, args, cb, data);
    return 0;
}

void jobs_health(const jobs *j, json_t *obj)
{
    if (!j || !obj)
        return;
    json_t *counts = json_object();
    for (int s = 0; counts && s < JOBS__N_STATUS; s++)
        json_object_set_new(counts, jobs__status_name(s), json_integer((json_int_t)j->counts[s]));
    json_object_set_new(obj, "jobs", counts);
    json_t *lanes = json_object();
    for (size_t i = 0; lanes && i < j->cfg->n_lanes; i++)
        json_object_set_new(lanes, j->cfg->lanes[i].name,
                            json_pack("{s:I,s:I}", "running", (json_int_t)j->lane_running[i],
                                      "capacity", (json_int_t)j->cfg->lanes[i].capacity));
    json_object_set_new(obj, "lanes", lanes);
    json_object_set_new(obj, "last_write_error",
                        j->last_write_error[0] ? json_string(j->last_write_error) : json_null());
    json_object_set_new(obj, "write_errors", json_integer((json_int_t)j->write_errors));
    json_object_set_new(obj, "jobs_json_writes", json_integer((json_int_t)j->json_writes));
    json_object_set_new(obj, "heap_bytes_jobs", json_integer((json_int_t)j->heap_bytes));
}

size_t jobs_heap_bytes(const jobs *j)
{
    return j ? j->heap_bytes : 0;
}
