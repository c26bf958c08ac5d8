/*
 * Job metadata: the in-memory list, state events, deferred reports, and
 * <state_dir>/jobs.json.
 *
 * Design notes:
 *  - Every change bumps j->dirty_gen. Writes are coalesced: at most one per
 *    JOBS__STORE_MIN_MS and never two at once. A write serialises the whole
 *    list on the loop (a few hundred bytes a job), then the thread pool
 *    writes jobs.json.tmp, fsyncs it, renames it over jobs.json and fsyncs
 *    the directory. The previous jobs.json is never opened for writing, so a
 *    failed write (ENOSPC, EIO, EFBIG) leaves it whole.
 *  - Whatever must not be seen before it is durable (a terminal state event,
 *    a cancel reply) is a jobs__report tagged with the generation that
 *    contains it, and is delivered once a write of that generation has
 *    finished (j->done_gen). A failed write still releases its reports (the
 *    failure is in health and the log) and the write is retried after
 *    JOBS__STORE_RETRY_MS.
 *  - Reports are delivered from the `kick` timer, never from inside the call
 *    that caused them, so callbacks may call back into the module.
 */
#include "jobs/internal.h"
#include "bus/bus.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- list -------------------------------------------------------------- */

void jobs__job_link(jobs *j, jobs_job *job)
{
    job->prev = j->tail;
    job->next = NULL;
    if (j->tail)
        j->tail->next = job;
    else
        j->head = job;
    j->tail = job;
    j->n_jobs++;
    j->counts[job->status]++;
}

void jobs__job_unlink(jobs *j, jobs_job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        j->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        j->tail = job->prev;
    job->prev = job->next = NULL;
    j->n_jobs--;
    j->counts[job->status]--;
}

void jobs__spec_free(jobs *j, jobs__spec *spec)
{
    if (!spec)
        return;
    for (char **a = spec->argv; a && *a; a++)
        jobs__free(j, *a);
    jobs__free(j, spec->argv);
    for (char **e = spec->env; e && *e; e++)
        jobs__free(j, *e);
    jobs__free(j, spec->env);
    jobs__free(j, spec->port);
    jobs__free(j, spec->new_name);
    jobs__free(j, spec);
}

static void store_write_done(uv_work_t *req, int status);
static void kick_cb(uv_timer_t *t);

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
    if (!job)
        return;
    if (job->own_type)
        jobs__free(j, (char *)job->type);
    jobs__free(j, job->configuration);
    jobs__free(j, job->error);
    jobs__spec_free(j, job->spec);
    while (job->waiters) {
        jobs__report *r = job->waiters;
        job->waiters = r->next;
        report_free(j, r);
    }
    jobs__free(j, job);
}

jobs_job *jobs__find(jobs *j, const char *id)
{
    /* Linear: a few thousand jobs at most (retained + max_queued). */
    for (jobs_job *job = j->head; id && job; job = job->next)
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

/* ---- metadata JSON ----------------------------------------------------- */

static json_t *time_json(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[32];
    jobs__format_time(ms, buf);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *jobs__job_json(const jobs *j, const jobs_job *job, bool for_disk)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = 0;
    rc |= json_object_set_new(o, "job_id", json_string(job->id));
    rc |= json_object_set_new(o, "type", json_string(job->type));
    rc |= json_object_set_new(o, "configuration", str_or_null(job->configuration));
    rc |= json_object_set_new(o, "lane", json_string(j->cfg->lanes[job->lane].name));
    rc |= json_object_set_new(o, "status", json_string(jobs__status_name(job->status)));
    rc |= json_object_set_new(o, "created_at", time_json(job->created_ms));
    rc |= json_object_set_new(o, "started_at", time_json(job->started_ms));
    rc |= json_object_set_new(o, "completed_at", time_json(job->completed_ms));
    rc |= json_object_set_new(o, "exit_code",
                              job->has_exit_code ? json_integer(job->exit_code) : json_null());
    rc |= json_object_set_new(o, "signal", job->signal ? json_integer(job->signal) : json_null());
    rc |= json_object_set_new(o, "error", str_or_null(job->error));
    rc |= json_object_set_new(o, "depends_on",
                              job->depends_on[0] ? json_string(job->depends_on) : json_null());
    rc |= json_object_set_new(o, "output_bytes", json_integer((json_int_t)job->output_bytes));
    rc |= json_object_set_new(o, "output_lines", json_integer((json_int_t)job->output_lines));
    if (for_disk) {
        if (job->pgid)
            rc |= json_object_set_new(o, "pgid", json_integer(job->pgid));
        if (job->spec) {
            json_t *argv = json_array();
            for (char **a = job->spec->argv; argv && a && *a; a++)
                rc |= json_array_append_new(argv, json_string(*a));
            rc |= json_object_set_new(o, "argv", argv);
            if (job->spec->env) {
                json_t *env = json_array();
                for (char **e = job->spec->env; env && *e; e++)
                    rc |= json_array_append_new(env, json_string(*e));
                rc |= json_object_set_new(o, "env", env);
            }
            if (job->spec->port)
                rc |= json_object_set_new(o, "port", json_string(job->spec->port));
            if (job->spec->new_name)
                rc |= json_object_set_new(o, "new_name", json_string(job->spec->new_name));
        }
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- reports ----------------------------------------------------------- */

void jobs__report_queue(jobs *j, jobs__report *r)
{
    r->next = NULL;
    if (j->reports_tail)
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
    jobs__report *r = jobs__calloc(j, sizeof *r);
    if (!r) {
        json_decref(result);
        return -ENOMEM;
    }
    r->gen = gen;
    r->cb = cb;
    r->data = data;
    r->result = result;
    r->code = code;
    if (fmt) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        r->message = jobs__strdup(j, msg);
    }
    if (!result && !code)
        r->code = "internal";
    jobs__report_queue(j, r);
    return 0;
}

static void report_deliver(jobs *j, jobs__report *r)
{
    if (r->topic && j->hooks.publish && !j->closed)
        j->hooks.publish(r->topic, r->payload, r->len, j->hooks.data);
    if (r->cb) {
        if (r->result)
            r->cb(r->result, NULL, NULL, r->data);
        else
            r->cb(NULL, r->code, r->message ? r->message : "out of memory", r->data);
    }
}

/* Delivers every report whose generation is on disk, in order. */
void jobs__reports_flush(jobs *j)
{
    jobs__report *ready = NULL, **ready_tail = &ready;
    jobs__report **pp = &j->reports;
    j->reports_tail = NULL;
    while (*pp) {
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
    while (ready) {
        jobs__report *r = ready;
        ready = r->next;
        report_deliver(j, r);
        report_free(j, r);
    }
}

void jobs__publish_state(jobs *j, jobs_job *job, uint64_t gen)
{
    if (!j->hooks.publish)
        return;
    json_t *meta = jobs__job_json(j, job, false);
    char *payload = meta ? bus_json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    char topic[256];
    snprintf(topic, sizeof topic, "job.%s.%s.state", j->worker, job->id);
    jobs__report *r = payload ? jobs__calloc(j, sizeof *r) : NULL;
    if (r) {
        r->gen = gen;
        r->topic = jobs__strdup(j, topic);
        r->len = strlen(payload);
        r->payload = jobs__malloc(j, r->len + 1);
        if (r->topic && r->payload) {
            memcpy(r->payload, payload, r->len + 1);
            jobs__report_queue(j, r);
            r = NULL;
        }
    }
    if (r || !payload)
        jobs__log(j, JOBS_LOG_ERROR, "job %s: out of memory publishing its state", job->id);
    if (r)
        report_free(j, r);
    free(payload);
}

void jobs__terminal(jobs *j, jobs_job *job, int status, const char *error)
{
    jobs__set_status(j, job, status);
    job->completed_ms = jobs__now_ms();
    if (!job->started_ms && status != JOBS__CANCELLED)
        job->started_ms = job->completed_ms;
    jobs__free(j, job->error);
    job->error = error ? jobs__strdup(j, error) : NULL;
    jobs__spec_free(j, job->spec);
    job->spec = NULL;
    job->pgid = 0;
    job->cancel_requested = false;
    jobs__store_dirty(j);
    job->term_gen = j->dirty_gen;
    jobs__publish_state(j, job, j->dirty_gen);
    while (job->waiters) {
        jobs__report *r = job->waiters;
        job->waiters = r->next;
        r->gen = j->dirty_gen;
        r->result = jobs__job_json(j, job, false);
        if (!r->result)
            r->code = "internal";
        jobs__report_queue(j, r);
    }
    j->retention_due = true;
    jobs__kick(j);
}

/* ---- jobs.json writes ---------------------------------------------------- */

typedef struct store_write {
    uv_work_t req;
    jobs *j;
    char *data;
    size_t len;
    uint64_t gen;
    int err;
    const char *failed_step;
} store_write;


/* Runs on a thread-pool thread: touches only the request and j's paths,
 * which are immutable while j lives. */
static void store_write_work(uv_work_t *req)
{
    store_write *w = req->data;
    jobs *j = w->j;
    w->failed_step = "open";
    int fd = open(j->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        w->err = -errno;
        return;
    }
    w->failed_step = "write";
    w->err = jobs__write_all(fd, w->data, w->len);
    if (!w->err) {
        w->failed_step = "fsync";
        if (fsync(fd) < 0)
            w->err = -errno;
    }
    if (close(fd) < 0 && !w->err) {
        w->failed_step = "close";
        w->err = -errno;
    }
    if (!w->err && rename(j->tmp_path, j->json_path) < 0) {
        w->failed_step = "rename";
        w->err = -errno;
    }
    if (w->err) {
        unlink(j->tmp_path);
        return;
    }
    int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) < 0) {
            w->failed_step = "fsync of the directory";
            w->err = -errno;
        }
        close(dfd);
    }
}

static void store_timer_cb(uv_timer_t *t);

static void store_arm(jobs *j)
{
    if (j->write_in_flight || j->store_timer_armed || j->dirty_gen <= j->disk_gen)
        return;
    uint64_t now = uv_now(j->loop);
    uint64_t gap = j->last_write_failed ? JOBS__STORE_RETRY_MS : JOBS__STORE_MIN_MS;
    uint64_t delay = 0;
    if (j->json_writes && j->last_write_ms + gap > now)
        delay = j->last_write_ms + gap - now;
    if (j->closing)
        delay = 0;
    j->store_timer_armed = true;
    uv_timer_start(&j->store_timer, store_timer_cb, delay, 0);
}

static void store_write_done_body(uv_work_t *req, int status)
{
    store_write *w = req->data;
    jobs *j = w->j;
    j->n_work--;
    j->write_in_flight = false;
    if (status == UV_ECANCELED && !w->err)
        w->err = -ECANCELED;
    if (w->err) {
        char what[8300];
        snprintf(what, sizeof what, "%s (%s of %s)", j->json_path, w->failed_step,
                 strcmp(w->failed_step, "fsync of the directory") ? j->tmp_path : j->dir);
        jobs__write_error(j, what, w->err);
        j->last_write_failed = true;
    } else {
        j->last_write_failed = false;
        if (w->gen > j->disk_gen)
            j->disk_gen = w->gen;
    }
    if (w->gen > j->done_gen)
        j->done_gen = w->gen;
    free(w->data);
    jobs__free(j, w);
    /* A failed final write during close is not retried: the reports go out
     * and close completes with the error in the log. */
    if (!(j->closing && j->last_write_failed))
        store_arm(j);
    jobs__kick(j);
}

/* Bracketed for jobs_hooks.enter/leave (the body may free what it was
 * handed, so the instance is looked up first). */
static void store_write_done(uv_work_t *req, int status)
{
    jobs__bracket b = jobs__enter(((store_write *)req->data)->j);
    store_write_done_body(req, status);
    jobs__leave(&b);
}

static int store_write_start(jobs *j)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    int rc = -ENOMEM;
    if (!root || !arr || json_object_set_new(root, "format", json_integer(1)) ||
        json_object_set(root, "jobs", arr))
        goto out;
    for (jobs_job *job = j->head; job; job = job->next) {
        json_t *o = jobs__job_json(j, job, true);
        if (!o || json_array_append_new(arr, o))
            goto out;
    }
    store_write *w = jobs__calloc(j, sizeof *w);
    if (!w)
        goto out;
    w->j = j;
    w->gen = j->dirty_gen;
    w->data = bus_json_dumps(root, JSON_COMPACT);
    if (!w->data) {
        jobs__free(j, w);
        goto out;
    }
    w->len = strlen(w->data);
    w->req.data = w;
    rc = uv_queue_work(j->loop, &w->req, store_write_work, store_write_done);
    if (rc) {
        free(w->data);
        jobs__free(j, w);
        goto out;
    }
    j->write_in_flight = true;
    j->n_work++;
    j->json_writes++;
    j->last_write_ms = uv_now(j->loop);
out:
    json_decref(arr);
    json_decref(root);
    return rc;
}

static void store_timer_cb_body(uv_timer_t *t)
{
    jobs *j = t->data;
    j->store_timer_armed = false;
    if (j->write_in_flight || j->dirty_gen <= j->disk_gen)
        return;
    int rc = store_write_start(j);
    if (rc) {
        jobs__write_error(j, j->json_path, rc);
        j->last_write_failed = true;
        j->last_write_ms = uv_now(j->loop);
        /* Nothing reached the disk, but waiting reports must not hang. */
        j->done_gen = j->dirty_gen;
        jobs__kick(j);
        if (!j->closing)
            store_arm(j);
    }
}

static void store_timer_cb(uv_timer_t *t)
{
    jobs__bracket b = jobs__enter((jobs *)t->data);
    store_timer_cb_body(t);
    jobs__leave(&b);
}

void jobs__store_write_now(jobs *j)
{
    if (j->write_in_flight || j->store_timer_armed)
        return;
    j->store_timer_armed = true;
    uv_timer_start(&j->store_timer, store_timer_cb, 0, 0);
}

void jobs__store_dirty(jobs *j)
{
    j->dirty_gen++;
    if (j->started)
        store_arm(j);
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

/* ---- restore ------------------------------------------------------------ */

static char **strv_from_json(jobs *j, const json_t *arr, bool *bad)
{
    if (!arr)
        return NULL;
    if (!json_is_array(arr) || json_array_size(arr) > JOBS__ARGV_MAX) {
        *bad = true;
        return NULL;
    }
    char **v = jobs__calloc(j, (json_array_size(arr) + 1) * sizeof *v);
    if (!v) {
        *bad = true;
        return NULL;
    }
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        if (!json_is_string(a) || !(v[i] = jobs__strdup(j, json_string_value(a)))) {
            *bad = true;
            break;
        }
    }
    return v;
}

static const char *opt_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t opt_time(const json_t *o, const char *key)
{
    int64_t ms = 0;
    const char *s = opt_str(o, key);
    if (s && jobs__parse_time(s, &ms))
        ms = 0;
    return ms;
}

/* Builds a job from one jobs.json entry; NULL when the entry is unusable
 * (logged) or memory ran out (*oom). */
static jobs_job *job_restore(jobs *j, const json_t *o, bool *oom)
{
    const char *id = opt_str(o, "job_id");
    const char *type = opt_str(o, "type");
    int status = jobs__status_parse(opt_str(o, "status"));
    if (!jobs__id_valid(id) || !type || status < 0) {
        jobs__log(j, JOBS_LOG_WARNING,
                  "%s: skipping an entry without a valid job_id, type "
                  "and status",
                  j->json_path);
        return NULL;
    }
    if (jobs__find(j, id)) {
        jobs__log(j, JOBS_LOG_WARNING, "%s: skipping a duplicate of job %s", j->json_path, id);
        return NULL;
    }
    jobs_job *job = jobs__calloc(j, sizeof *job);
    if (!job)
        goto oom;
    memcpy(job->id, id, JOBS__ID_LEN + 1);
    const char *dep = opt_str(o, "depends_on");
    if (jobs__id_valid(dep))
        memcpy(job->depends_on, dep, JOBS__ID_LEN + 1);
    job->status = (uint8_t)status;
    const jobs__type *t = jobs__config_type(j->cfg, type);
    if (t) {
        job->type = t->name;
    } else {
        job->own_type = true;
        if (!(job->type = jobs__strdup(j, type)))
            goto oom;
    }
    long lane = jobs__config_lane(j->cfg, opt_str(o, "lane"));
    job->lane = lane < 0 ? (t ? t->lane : 0) : (size_t)lane;
    const char *conf = opt_str(o, "configuration");
    if (conf && !(job->configuration = jobs__strdup(j, conf)))
        goto oom;
    const char *err = opt_str(o, "error");
    if (err && !(job->error = jobs__strdup(j, err)))
        goto oom;
    job->created_ms = opt_time(o, "created_at");
    job->started_ms = opt_time(o, "started_at");
    job->completed_ms = opt_time(o, "completed_at");
    const json_t *ec = json_object_get(o, "exit_code");
    if (json_is_integer(ec)) {
        job->has_exit_code = true;
        job->exit_code = (int32_t)json_integer_value(ec);
    }
    job->signal = (int32_t)json_integer_value(json_object_get(o, "signal"));
    job->pgid = (int32_t)json_integer_value(json_object_get(o, "pgid"));
    json_int_t ob = json_integer_value(json_object_get(o, "output_bytes"));
    json_int_t ol = json_integer_value(json_object_get(o, "output_lines"));
    job->output_bytes = ob > 0 ? (uint64_t)ob : 0;
    job->output_lines = ol > 0 ? (uint64_t)ol : 0;
    if (!jobs__is_terminal(status)) {
        bool bad = false;
        job->spec = jobs__calloc(j, sizeof *job->spec);
        if (!job->spec)
            goto oom;
        job->spec->argv = strv_from_json(j, json_object_get(o, "argv"), &bad);
        job->spec->env = strv_from_json(j, json_object_get(o, "env"), &bad);
        const char *port = opt_str(o, "port"), *nn = opt_str(o, "new_name");
        if ((port && !(job->spec->port = jobs__strdup(j, port))) ||
            (nn && !(job->spec->new_name = jobs__strdup(j, nn))))
            bad = true;
        if (bad || !job->spec->argv || !job->spec->argv[0]) {
            /* Marked failed once linked, so counts stay right. */
            jobs__spec_free(j, job->spec);
            job->spec = NULL;
        }
    }
    return job;
oom:
    *oom = true;
    jobs__job_free(j, job);
    return NULL;
}

int jobs__store_restore(jobs *j)
{
    FILE *f = fopen(j->json_path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        int rc = -errno;
        jobs__log(j, JOBS_LOG_ERROR, "%s: %s", j->json_path, strerror(errno));
        return rc;
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    const json_t *arr = json_object_get(root, "jobs");
    if (!root || !json_is_array(arr)) {
        jobs__log(j, JOBS_LOG_ERROR, "%s: not a jobs file (%s); left untouched", j->json_path,
                  root ? "no \"jobs\" array" : jerr.text);
        json_decref(root);
        return -EINVAL;
    }
    size_t i;
    json_t *o;
    int rc = 0;
    json_array_foreach(arr, i, o)
    {
        bool oom = false;
        jobs_job *job = job_restore(j, o, &oom);
        if (oom) {
            rc = -ENOMEM;
            break;
        }
        if (!job)
            continue;
        job->seq = j->next_seq++;
        jobs__job_link(j, job);
        if (!jobs__is_terminal(job->status) && !job->spec) {
            jobs__terminal(j, job, JOBS__FAILED, "cannot be restored: no argv in jobs.json");
            continue;
        }
        if (job->status == JOBS__RUNNING) {
            jobs__kill_leftover(j, job);
            job->pgid = 0;
            job->started_ms = 0;
            jobs__set_status(j, job, JOBS__QUEUED);
            jobs__log_append_notice(j, job->id, JOBS__RECOVERY_NOTICE);
            jobs__store_dirty(j);
        }
    }
    json_decref(root);
    return rc;
}
