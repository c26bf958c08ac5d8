/*
 * The jobs instance: creation, start (restore), close, requests, health;
 * its job list and status changes; the reports that wait for jobs.json;
 * and the kick step that delivers them and schedules jobs.
 *
 * Design notes:
 *  - Whatever must not be seen before it is durable (a terminal state event,
 *    a cancel reply) is a jobs__report tagged with the generation of
 *    jobs.json that contains it, and is delivered once a write of that
 *    generation has finished (j->done_gen; store.c).
 *  - Reports are delivered from the `kick` timer, never from inside the call
 *    that caused them, so callbacks may call back into the module.
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

static void report_free(jobs *j, jobs__report *r);

/* fail: the message for a person, and the given error code. */
#define fail(err, size, rc, ...) (base_errf((err), (size), __VA_ARGS__), (rc))

static char *join(jobs *j, const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = jobs__malloc(j, n);
    if (s != NULL)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

static void free_jobs(jobs *j)
{
    jobs_job *job;
    while ((job = jobs__first(j)) != NULL) {
        jobs__job_unlink(j, job);
        jobs__job_free(j, job);
    }
}

static void free_all(jobs *j)
{
    free_jobs(j);
    jobs__free(j, j->readbuf);
    jobs__free(j, j->lane_running);
    jobs__free(j, j->worker);
    jobs__free(j, j->dir);
    jobs__free(j, j->logs_dir);
    jobs__free(j, j->json_path);
    jobs__free(j, j->tmp_path);
    base_free(j);
}

int jobs_new(uv_loop_t *loop, const jobs_config *cfg, const char *worker_name,
             const char *state_dir, const jobs_hooks *hooks, jobs **out, char *err, size_t err_size)
{
    if (loop == NULL || cfg == NULL || out == NULL)
        return fail(err, err_size, -EINVAL, "jobs_new: missing loop, config or out");
    if (!base_token_valid(worker_name))
        return fail(err, err_size, -EINVAL, "worker name \"%s\" is not a topic token",
                    worker_name != NULL ? worker_name : "");
    if (state_dir == NULL)
        state_dir = cfg->state_dir;
    if (state_dir == NULL || !*state_dir || strlen(state_dir) > 3000)
        return fail(err, err_size, -EINVAL, "%s: no usable state_dir", worker_name);
    jobs *j = base_calloc(1, sizeof(*j));
    if (j == NULL)
        return fail(err, err_size, -ENOMEM, "out of memory");
    j->heap_bytes = sizeof(*j);
    base_list_init(&j->jobs);
    j->loop = loop;
    j->cfg = cfg;
    if (hooks != NULL)
        j->hooks = *hooks;
    j->worker = jobs__strdup(j, worker_name);
    j->dir = jobs__strdup(j, state_dir);
    j->lane_running = jobs__calloc(j, cfg->n_lanes * sizeof(*j->lane_running));
    if (j->dir != NULL) {
        j->logs_dir = join(j, j->dir, "logs");
        j->json_path = join(j, j->dir, "jobs.json");
        j->tmp_path = join(j, j->dir, "jobs.json.tmp");
    }
    if (j->worker == NULL || j->dir == NULL || j->lane_running == NULL || j->logs_dir == NULL ||
        j->json_path == NULL || j->tmp_path == NULL) {
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

void jobs_set_hooks(jobs *j, const jobs_hooks *hooks)
{
    if (hooks != NULL)
        j->hooks = *hooks;
    else
        memset(&j->hooks, 0, sizeof(j->hooks));
}

int jobs_start(jobs *j)
{
    if (j == NULL || j->closing)
        return -EINVAL;
    if (j->started)
        return 0; /* The state directory and its logs: the user's own, no wider than
                   * JOBS__DIR_MODE (an existing wider one is narrowed, and the log says
                   * so), never another user's. */
    char err[512];
    bool tightened;
    int rc = base_mkdir_p(j->dir, JOBS__DIR_MODE);
    const char *dirs[] = {j->dir, j->logs_dir};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        rc = base_private_dir(dirs[i], JOBS__DIR_MODE, true, true, &tightened, err, sizeof(err));
        if (rc < 0)
            jobs__log(j, BASE_LOG_ERROR, "%s", err);
        else if (tightened)
            jobs__log(j, BASE_LOG_WARN, "%s: was open to other users; now mode %04o", dirs[i],
                      JOBS__DIR_MODE);
    }
    if (rc < 0) {
        if (err[0] == '\0')
            jobs__log(j, BASE_LOG_ERROR, "%s: %s", j->dir, strerror(-rc));
        return rc;
    }
    rc = jobs__store_restore(j);
    if (rc) {
        free_jobs(j);
        /* Reports queued by the partial restore refer to nothing durable. */
        while (j->reports != NULL) {
            jobs__report *r = j->reports;
            j->reports = r->next;
            report_free(j, r);
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
    if (j->on_closed != NULL)
        j->on_closed(j, j->close_data);
    free_all(j);
    jobs__leave(&b);
}

void jobs__close_step(jobs *j)
{
    jobs__runs_close(j);
    if (j->n_runs || j->n_work || j->write_in_flight || j->store_timer_armed)
        return;
    for (jobs_job *job = jobs__first(j); job != NULL; job = jobs__next(j, job))
        if (job->run != NULL || job->finishing)
            return;
    if (j->started && j->dirty_gen > j->disk_gen && j->close_gen_tried < j->dirty_gen) {
        j->close_gen_tried = j->dirty_gen;
        jobs__store_write_now(j);
        return;
    }
    if (j->done_gen < j->dirty_gen)
        j->done_gen = j->dirty_gen;
    jobs__reports_flush(j);
    if (j->reports != NULL) /* a reply callback asked for more: come back */
        return;
    j->closed = true;
    uv_close((uv_handle_t *)&j->kick, handle_closed);
    uv_close((uv_handle_t *)&j->tick, handle_closed);
    uv_close((uv_handle_t *)&j->store_timer, handle_closed);
}

void jobs_close(jobs *j, jobs_closed_cb on_closed, void *data)
{
    if (j == NULL || j->closing)
        return;
    j->closing = true;
    j->on_closed = on_closed;
    j->close_data = data;
    jobs__runs_close(j);
    jobs__kick(j);
}

int jobs_request(jobs *j, const char *op, const json_t *args, jobs_reply_cb cb, void *data)
{
    if (j == NULL || op == NULL || cb == NULL)
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
    if (j == NULL || obj == NULL)
        return;
    json_t *counts = json_object();
    for (int s = 0; counts != NULL && s < JOBS__N_STATUS; s++)
        json_object_set_new(counts, jobs__status_name(s), json_integer((json_int_t)j->counts[s]));
    json_object_set_new(obj, "jobs", counts);
    json_t *lanes = json_object();
    for (size_t i = 0; lanes != NULL && i < j->cfg->n_lanes; i++)
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
    return j != NULL ? j->heap_bytes : 0;
}

/* ---- list -------------------------------------------------------------- */

void jobs__job_link(jobs *j, jobs_job *job)
{
    base_list_append(&j->jobs, &job->node);
    j->counts[job->status]++;
}

void jobs__job_unlink(jobs *j, jobs_job *job)
{
    base_list_remove(&j->jobs, &job->node);
    j->counts[job->status]--;
}

void jobs__spec_free(jobs *j, jobs__spec *spec)
{
    if (spec == NULL)
        return;
    for (char **a = spec->argv; a != NULL && *a != NULL; a++)
        jobs__free(j, *a);
    jobs__free(j, spec->argv);
    for (char **e = spec->env; e != NULL && *e != NULL; e++)
        jobs__free(j, *e);
    jobs__free(j, spec->env);
    jobs__free(j, spec->port);
    jobs__free(j, spec->new_name);
    jobs__free(j, spec);
}

static void report_free(jobs *j, jobs__report *r)
{
    jobs__free(j, r->topic);
    jobs__free(j, r->payload);
    jobs__free(j, r->message);
    json_decref(r->result);
    jobs__free(j, r);
}

void jobs__job_free(jobs *j, jobs_job *job)
{
    if (job == NULL)
        return;
    if (job->own_type)
        jobs__free(j, (char *)job->type);
    jobs__free(j, job->configuration);
    jobs__free(j, job->error);
    jobs__spec_free(j, job->spec);
    while (job->waiters != NULL) {
        jobs__report *r = job->waiters;
        job->waiters = r->next;
        report_free(j, r);
    }
    jobs__free(j, job);
}

jobs_job *jobs__find(jobs *j, const char *id)
{
    /* Linear: a few thousand jobs at most (retained + max_queued). */
    for (jobs_job *job = jobs__first(j); id != NULL && job != NULL; job = jobs__next(j, job))
        if (strcmp(job->id, id) == 0)
            return job;
    return NULL;
}

void jobs__set_status(jobs *j, jobs_job *job, int status)
{
    j->counts[job->status]--;
    job->status = (uint8_t)status;
    j->counts[status]++;
}

/* ---- reports ----------------------------------------------------------- */

void jobs__report_queue(jobs *j, jobs__report *r)
{
    r->next = NULL;
    if (j->reports_tail != NULL)
        j->reports_tail->next = r;
    else
        j->reports = r;
    j->reports_tail = r;
    if (r->gen <= j->done_gen)
        jobs__kick(j);
}

int jobs__reply(jobs *j, uint64_t gen, jobs_reply_cb cb, void *data, json_t *result,
                const char *code, const char *fmt, ...)
{
    jobs__report *r = jobs__calloc(j, sizeof(*r));
    if (r == NULL) {
        json_decref(result);
        return -ENOMEM;
    }
    r->gen = gen;
    r->cb = cb;
    r->data = data;
    r->result = result;
    r->code = code;
    if (fmt != NULL) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        r->message = jobs__strdup(j, msg);
    }
    if (result == NULL && code == NULL)
        r->code = "internal";
    jobs__report_queue(j, r);
    return 0;
}

/* A submit whose jobs.json write failed is undone: the job never reached
 * the disk, so it must not run, and its client hears why. */
static void submit_undo(jobs *j, jobs__report *r)
{
    jobs_job *job = jobs__find(j, r->submit_id);

    if (job != NULL) {
        jobs__job_unlink(j, job);
        jobs__job_free(j, job);
    }
    json_decref(r->result);
    r->result = NULL;
    r->code = "unavailable";
    jobs__free(j, r->message);
    char msg[sizeof(j->last_write_error) + 64];
    snprintf(msg, sizeof(msg), "the job could not be recorded: %s",
             j->last_write_error[0] ? j->last_write_error : "jobs.json was not written");
    r->message = jobs__strdup(j, msg);
}

static void report_deliver(jobs *j, jobs__report *r)
{
    bool lost = r->durable && r->gen > j->disk_gen;

    if (r->submit_id[0] != '\0')
        j->submits_waiting--;
    if (lost && r->submit_id[0] != '\0')
        submit_undo(j, r);
    if (r->topic != NULL && !lost && j->hooks.publish != NULL && !j->closed)
        j->hooks.publish(r->topic, r->payload, r->len, j->hooks.data);
    if (r->cb != NULL) {
        if (r->result != NULL)
            r->cb(r->result, NULL, NULL, r->data);
        else
            r->cb(NULL, r->code, r->message != NULL ? r->message : "out of memory", r->data);
    }
}

/* Delivers every report whose generation is on disk, in order. */
void jobs__reports_flush(jobs *j)
{
    jobs__report *ready = NULL, **ready_tail = &ready;
    jobs__report **pp = &j->reports;
    j->reports_tail = NULL;
    while (*pp != NULL) {
        jobs__report *r = *pp;
        if (r->gen <= j->done_gen) {
            *pp = r->next;
            r->next = NULL;
            *ready_tail = r;
            ready_tail = &r->next;
        } else {
            j->reports_tail = r;
            pp = &r->next;
        }
    }
    while (ready != NULL) {
        jobs__report *r = ready;
        ready = r->next;
        report_deliver(j, r);
        report_free(j, r);
    }
}

int jobs__reply_submit(jobs *j, jobs_job *job, jobs_reply_cb cb, void *data)
{
    jobs__report *r = jobs__calloc(j, sizeof(*r));

    if (r == NULL)
        return -ENOMEM;
    if ((r->result = json_pack("{s:s}", "job_id", job->id)) == NULL) {
        jobs__free(j, r);
        return -ENOMEM;
    }
    r->gen = job->submit_gen;
    r->durable = true;
    memcpy(r->submit_id, job->id, sizeof(r->submit_id));
    r->cb = cb;
    r->data = data;
    j->submits_waiting++;
    jobs__report_queue(j, r);
    return 0;
}

void jobs__publish_state(jobs *j, jobs_job *job, uint64_t gen, bool durable)
{
    if (j->hooks.publish == NULL)
        return;
    json_t *meta = jobs__job_json(j, job, false);
    char *payload = meta != NULL ? base_json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    char topic[256];
    snprintf(topic, sizeof(topic), "job.%s.%s.state", j->worker, job->id);
    jobs__report *r = payload != NULL ? jobs__calloc(j, sizeof(*r)) : NULL;
    if (r != NULL) {
        r->gen = gen;
        r->durable = durable;
        r->topic = jobs__strdup(j, topic);
        r->len = strlen(payload);
        r->payload = jobs__malloc(j, r->len + 1);
        if (r->topic != NULL && r->payload != NULL) {
            memcpy(r->payload, payload, r->len + 1);
            jobs__report_queue(j, r);
            r = NULL;
        }
    }
    if (r != NULL || payload == NULL)
        jobs__log(j, BASE_LOG_ERROR, "job %s: out of memory publishing its state", job->id);
    if (r != NULL)
        report_free(j, r);
    free(payload);
}

void jobs__terminal(jobs *j, jobs_job *job, int status, const char *error)
{
    jobs__set_status(j, job, status);
    job->completed_ms = base_now_ms();
    if (!job->started_ms && status != JOBS__CANCELLED)
        job->started_ms = job->completed_ms;
    jobs__free(j, job->error);
    job->error = error != NULL ? jobs__strdup(j, error) : NULL;
    jobs__spec_free(j, job->spec);
    job->spec = NULL;
    job->pgid = 0;
    job->cancel_requested = false;
    jobs__store_dirty(j);
    job->term_gen = j->dirty_gen;
    jobs__publish_state(j, job, j->dirty_gen, false);
    while (job->waiters != NULL) {
        jobs__report *r = job->waiters;
        job->waiters = r->next;
        r->gen = j->dirty_gen;
        r->result = jobs__job_json(j, job, false);
        if (r->result == NULL)
            r->code = "internal";
        jobs__report_queue(j, r);
    }
    j->retention_due = true;
    jobs__kick(j);
}

/* ---- kick ------------------------------------------------------------- */

static void kick_cb_body(uv_timer_t *t)
{
    jobs *j = t->data;
    jobs__reports_flush(j);
    if (j->closing) {
        jobs__close_step(j);
        return;
    }
    if (j->retention_due) {
        j->retention_due = false;
        jobs__retention(j);
    }
    jobs__schedule(j);
    jobs__reports_flush(j);
}

static void kick_cb(uv_timer_t *t)
{
    jobs__bracket b = jobs__enter((jobs *)t->data);
    kick_cb_body(t);
    jobs__leave(&b);
}

void jobs__kick(jobs *j)
{
    if (j->closed)
        return;
    if (!uv_is_active((uv_handle_t *)&j->kick))
        uv_timer_start(&j->kick, kick_cb, 0, 0);
}
