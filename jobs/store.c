/*
 * <state_dir>/jobs.json: the metadata of every retained job, serialised,
 * written and restored.
 *
 * Design notes:
 *  - Every change bumps j->dirty_gen. Writes are coalesced: at most one per
 *    JOBS__STORE_MIN_MS and never two at once. A write serialises the whole
 *    list on the loop (a few hundred bytes a job), then the thread pool
 *    replaces jobs.json atomically (base_replace_file: temp file, fsync,
 *    rename, fsync of the directory). The previous jobs.json is never opened
 *    for writing, so a failed write (ENOSPC, EIO, EFBIG) leaves it whole.
 *  - A finished write moves done_gen on, which releases the reports waiting
 *    for that generation (jobs.c). A failed write still releases them (the
 *    failure is in health and the log) and is retried after
 *    JOBS__STORE_RETRY_MS, except a submit's: a job is answered and run
 *    only once a write holding it succeeded, and a failed one undoes the
 *    submit (`unavailable`). A submit waiting for its write skips the
 *    coalescing delay; submits that arrive during a write share the next
 *    one (group commit).
 */
#include "jobs/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- metadata JSON ----------------------------------------------------- */

static json_t *time_json(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[32];
    base_time_format(ms, buf);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

json_t *jobs__job_json(const jobs *j, const jobs_job *job, bool for_disk)
{
    json_t *o = json_object();
    if (o == NULL)
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
    rc |= json_object_set_new(o, "log_lost_bytes", json_integer((json_int_t)job->log_lost_bytes));
    if (for_disk) {
        if (job->pgid)
            rc |= json_object_set_new(o, "pgid", json_integer(job->pgid));
        if (job->spec != NULL) {
            json_t *argv = json_array();
            for (char **a = job->spec->argv; argv != NULL && a != NULL && *a != NULL; a++)
                rc |= json_array_append_new(argv, json_string(*a));
            rc |= json_object_set_new(o, "argv", argv);
            if (job->spec->env != NULL) {
                json_t *env = json_array();
                for (char **e = job->spec->env; env != NULL && *e != NULL; e++)
                    rc |= json_array_append_new(env, json_string(*e));
                rc |= json_object_set_new(o, "env", env);
            }
            if (job->spec->port != NULL)
                rc |= json_object_set_new(o, "port", json_string(job->spec->port));
            if (job->spec->new_name != NULL)
                rc |= json_object_set_new(o, "new_name", json_string(job->spec->new_name));
        }
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
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

    w->err = base_replace_file(j->json_path, j->tmp_path, w->data, w->len, JOBS__JSON_MODE,
                               &w->failed_step);
}

static void store_timer_cb(uv_timer_t *t);

static void store_arm(jobs *j)
{
    if (j->write_in_flight || j->dirty_gen <= j->disk_gen)
        return;
    if (j->store_timer_armed && j->submits_waiting == 0)
        return;
    uint64_t now = uv_now(j->loop);
    uint64_t gap = j->last_write_failed ? JOBS__STORE_RETRY_MS : JOBS__STORE_MIN_MS;
    uint64_t delay = 0;
    if (j->json_writes && j->last_write_ms + gap > now)
        delay = j->last_write_ms + gap - now;
    if (j->closing || j->submits_waiting > 0)
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
        snprintf(what, sizeof(what), "%s (%s of %s)", j->json_path, w->failed_step,
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
    /* The reports go out before the next write starts: a submit this write
     * failed to record is undone first, so no later write holds it. */
    jobs__reports_flush(j);
    /* A failed final write during close is not retried: close completes
     * with the error in the log. */
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
    if (root == NULL || arr == NULL || json_object_set_new(root, "format", json_integer(1)) ||
        json_object_set(root, "jobs", arr))
        goto out;
    for (jobs_job *job = jobs__first(j); job != NULL; job = jobs__next(j, job)) {
        json_t *o = jobs__job_json(j, job, true);
        if (o == NULL || json_array_append_new(arr, o))
            goto out;
    }
    store_write *w = jobs__calloc(j, sizeof(*w));
    if (w == NULL)
        goto out;
    w->j = j;
    w->gen = j->dirty_gen;
    w->data = base_json_dumps(root, JSON_COMPACT);
    if (w->data == NULL) {
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
        j->last_write_ms =
            uv_now(j->loop); /* Nothing reached the disk, but waiting reports must not hang. */
        j->done_gen = j->dirty_gen;
        jobs__reports_flush(j);
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

/* ---- restore ------------------------------------------------------------ */

static char **strv_from_json(jobs *j, const json_t *arr, bool *bad)
{
    if (arr == NULL)
        return NULL;
    if (!json_is_array(arr) || json_array_size(arr) > JOBS__ARGV_MAX) {
        *bad = true;
        return NULL;
    }
    char **v = jobs__calloc(j, (json_array_size(arr) + 1) * sizeof(*v));
    if (v == NULL) {
        *bad = true;
        return NULL;
    }
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        if (!json_is_string(a) || (v[i] = jobs__strdup(j, json_string_value(a))) == NULL) {
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
    if (s != NULL && base_time_parse(s, &ms))
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
    if (!jobs__id_valid(id) || type == NULL || status < 0) {
        jobs__log(j, BASE_LOG_WARN,
                  "%s: skipping an entry without a valid job_id, type "
                  "and status",
                  j->json_path);
        return NULL;
    }
    if (jobs__find(j, id) != NULL) {
        jobs__log(j, BASE_LOG_WARN, "%s: skipping a duplicate of job %s", j->json_path, id);
        return NULL;
    }
    jobs_job *job = jobs__calloc(j, sizeof(*job));
    if (job == NULL)
        goto oom;
    memcpy(job->id, id, JOBS__ID_LEN + 1);
    const char *dep = opt_str(o, "depends_on");
    if (jobs__id_valid(dep))
        memcpy(job->depends_on, dep, JOBS__ID_LEN + 1);
    job->status = (uint8_t)status;
    const jobs__type *t = jobs__config_type(j->cfg, type);
    if (t != NULL) {
        job->type = t->name;
    } else {
        job->own_type = true;
        if ((job->type = jobs__strdup(j, type)) == NULL)
            goto oom;
    }
    long lane = jobs__config_lane(j->cfg, opt_str(o, "lane"));
    job->lane = lane < 0 ? (t != NULL ? t->lane : 0) : (size_t)lane;
    const char *conf = opt_str(o, "configuration");
    if (conf != NULL && (job->configuration = jobs__strdup(j, conf)) == NULL)
        goto oom;
    const char *err = opt_str(o, "error");
    if (err != NULL && (job->error = jobs__strdup(j, err)) == NULL)
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
    json_int_t lost = json_integer_value(json_object_get(o, "log_lost_bytes"));
    job->log_lost_bytes = lost > 0 ? (uint64_t)lost : 0;
    if (!jobs__is_terminal(status)) {
        bool bad = false;
        job->spec = jobs__calloc(j, sizeof(*job->spec));
        if (job->spec == NULL)
            goto oom;
        job->spec->argv = strv_from_json(j, json_object_get(o, "argv"), &bad);
        job->spec->env = strv_from_json(j, json_object_get(o, "env"), &bad);
        const char *port = opt_str(o, "port"), *nn = opt_str(o, "new_name");
        if ((port != NULL && (job->spec->port = jobs__strdup(j, port)) == NULL) ||
            (nn != NULL && (job->spec->new_name = jobs__strdup(j, nn)) == NULL))
            bad = true;
        if (bad || job->spec->argv == NULL || job->spec->argv[0] == NULL) {
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

/* cancel_cycles: queued jobs whose prerequisites lead back to themselves
 * would wait for each other for ever (a hand-edited jobs.json): each one
 * of a ring is cancelled; their other dependents follow through the usual
 * rule (a cancelled prerequisite cancels its dependents). */
static void cancel_cycles(jobs *j)
{
    size_t n = 0;
    jobs_job **ring = jobs__calloc(j, (j->jobs.count + 1) * sizeof(*ring));

    if (ring == NULL)
        return; /* out of memory at start-up: the jobs stay queued, as before */
    /* First find every member, then cancel them: cancelling one would
     * hide the ring from the next. */
    for (jobs_job *job = jobs__first(j); job != NULL; job = jobs__next(j, job)) {
        if (jobs__is_terminal(job->status) || job->depends_on[0] == '\0')
            continue;
        const jobs_job *cur = job;
        bool in_ring = false;
        for (size_t steps = 0; steps <= j->jobs.count && cur->depends_on[0] != '\0'; steps++) {
            cur = jobs__find(j, cur->depends_on);
            if (cur == NULL || jobs__is_terminal(cur->status))
                break;
            if (cur == job) {
                in_ring = true;
                break;
            }
        }
        if (in_ring)
            ring[n++] = job;
    }
    for (size_t i = 0; i < n; i++) {
        jobs__log(j, BASE_LOG_WARN, "%s: job %s depends on itself through its prerequisites",
                  j->json_path, ring[i]->id);
        jobs__terminal(j, ring[i], JOBS__CANCELLED,
                       "dependency cycle in jobs.json: its prerequisites depend on it");
    }
    jobs__free(j, ring);
}

int jobs__store_restore(jobs *j)
{
    FILE *f = fopen(j->json_path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        int rc = -errno;
        jobs__log(j, BASE_LOG_ERROR, "%s: %s", j->json_path, strerror(errno));
        return rc;
    }
    /* One written by an older herd was readable by everyone, and it holds
     * the env of queued jobs. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0777 & ~JOBS__JSON_MODE) != 0) {
        if (fchmod(fileno(f), JOBS__JSON_MODE) == 0)
            jobs__log(j, BASE_LOG_WARN, "%s: was mode %04o; now %04o", j->json_path,
                      (unsigned)(st.st_mode & 0777), JOBS__JSON_MODE);
        else
            jobs__log(j, BASE_LOG_WARN, "%s: cannot narrow its mode: %s", j->json_path,
                      strerror(errno));
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    const json_t *arr = json_object_get(root, "jobs");
    if (root == NULL || !json_is_array(arr)) {
        jobs__log(j, BASE_LOG_ERROR, "%s: not a jobs file (%s); left untouched", j->json_path,
                  root != NULL ? "no \"jobs\" array" : jerr.text);
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
        if (job == NULL)
            continue;
        job->seq = j->next_seq++;
        jobs__job_link(j, job);
        if (!jobs__is_terminal(job->status) && job->spec == NULL) {
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
    if (rc == 0)
        cancel_cycles(j);
    return rc;
}
