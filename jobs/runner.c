/*
 * Children: scheduling by lane, uv_spawn, output pipes, cancellation, the
 * end of a run, and the kill of leftovers after a crash.
 *
 * Design notes:
 *  - A child is spawned with UV_PROCESS_DETACHED, so libuv calls setsid()
 *    in it: its pid is its process group id, and cancellation signals the
 *    whole group (kill(-pgid, ...)). stdout and stderr are both the write end
 *    of one pipe2(O_CLOEXEC) pipe whose read end the loop reads; stdin is
 *    /dev/null. HERD_JOB_ID=<id> is set in its environment so that a later
 *    herdd can tell its process group from an unrelated one with a reused
 *    id (see jobs__kill_leftover).
 *  - A run ends when the leader has exited and the pipe reached EOF. If
 *    something in the group keeps the pipe open JOBS__LINGER_MS after the
 *    leader exited, the group gets SIGKILL and the pipe is closed: a job
 *    never outlives its leader.
 *  - The end is two steps: on the loop, output is published and written out
 *    and the handles are closed; then the thread pool fsyncs the sidecar and
 *    compacts it to retained_lines. Only then does the job turn terminal
 *    (and its lane slot free up), so the state event follows a durable log.
 *  - During jobs_close, a run that ends leaves its job `running`: the next
 *    jobs_start queues it again.
 *  - Scheduling walks jobs in creation order: FIFO per lane, a job waiting
 *    for a prerequisite does not block later jobs of its lane.
 */
#include "jobs/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define READ_BUF_BYTES 65536

static void run_close_cb(uv_handle_t *h);
static void run_end_done(uv_work_t *req, int status);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void linger_cb(uv_timer_t *t);
static void kill_cb(uv_timer_t *t);
static void exit_cb(uv_process_t *p, int64_t exit_status, int term_signal);
static void tick_cb(uv_timer_t *t);

typedef struct run_end {
    uv_work_t req;
    jobs *j;
    jobs_job *job;
    int fd;
    int status;
    char error[96];
    int err;
    const char *failed_step;
    int log_errno; /* the run's last sidecar write error */
    char path[];
} run_end;

/* end_error is the job's error at its end: why it failed, if it did, and
 * whether its log lost output (a full disk, a failed fsync): a job whose
 * log is incomplete must say so even when it completed. */
static const char *end_error(const jobs_job *job, const char *why, int log_errno, int fsync_err,
                             char *out, size_t size)
{
    const char *sep = why[0] != '\0' ? "; " : "";

    if (job->log_lost_bytes > 0)
        snprintf(out, size,
                 "%s%sits log is incomplete: %llu of %llu output bytes could not be written (%s)",
                 why, sep, (unsigned long long)job->log_lost_bytes,
                 (unsigned long long)job->output_bytes,
                 log_errno ? strerror(-log_errno) : "no log file");
    else if (fsync_err)
        snprintf(out, size, "%s%sits log may be incomplete: fsync failed (%s)", why, sep,
                 strerror(-fsync_err));
    else
        snprintf(out, size, "%s", why);
    return out[0] != '\0' ? out : NULL;
}

static void run_close_cb_body(uv_handle_t *h)
{
    jobs__run *run = h->data;
    if (--run->n_handles > 0)
        return;
    jobs *j = run->j;
    jobs__buf_free(j, &run->logbuf);
    jobs__buf_free(j, &run->pubbuf);
    jobs__buf_free(j, &run->inflight);
    jobs__free(j, run);
    j->n_runs--;
    jobs__kick(j);
}

/* Bracketed for jobs_hooks.enter/leave (the body may free what it was
 * handed, so the instance is looked up first). */
static void run_close_cb(uv_handle_t *h)
{
    jobs__bracket b = jobs__enter(((jobs__run *)h->data)->j);
    run_close_cb_body(h);
    jobs__leave(&b);
}

static void run_end_work(uv_work_t *req)
{
    run_end *e = req->data;
    if (e->fd >= 0) {
        if (fsync(e->fd) < 0) {
            e->err = -errno;
            e->failed_step = "fsync";
        }
        close(e->fd);
    }
    bool compacted = false;
    int rc =
        jobs__log_compact(e->path, e->j->cfg->retained_lines, e->j->cfg->log_max_bytes, &compacted);
    if (rc && !e->err) {
        e->err = rc;
        e->failed_step = "compaction";
    }
    /* The rename must survive a crash as well as the bytes. If it does
     * not, the log is whole, only uncompacted: no error to report.
     * logs_dir is immutable while j lives (safe on this thread). */
    if (compacted)
        base_fsync_dir(e->j->logs_dir);
}

static void run_end_done_body(uv_work_t *req, int status)
{
    run_end *e = req->data;
    jobs *j = e->j;
    jobs_job *job = e->job;
    j->n_work--;
    if (e->err) {
        char what[4200];
        snprintf(what, sizeof(what), "%s (%s)", e->path, e->failed_step);
        jobs__write_error(j, what, e->err);
    }
    j->lane_running[job->lane]--;
    job->finishing = false;
    if (j->closing) {
        /* Stays `running` on disk: the next start queues it again. */
        jobs__store_dirty(j);
        jobs__kick(j);
    } else {
        char error[512];
        int fsync_err = e->failed_step != NULL && strcmp(e->failed_step, "fsync") == 0 ? e->err : 0;
        jobs__terminal(j, job, e->status,
                       end_error(job, e->error, e->log_errno, fsync_err, error, sizeof(error)));
    }
    jobs__free(j, e);
}

static void run_end_done(uv_work_t *req, int status)
{
    jobs__bracket b = jobs__enter(((run_end *)req->data)->j);
    run_end_done_body(req, status);
    jobs__leave(&b);
}

static void run_maybe_end(jobs__run *run)
{
    if (!run->exited || !run->eof || run->done)
        return;
    jobs *j = run->j;
    jobs_job *job = run->job;
    run->done = true;
    jobs__run_publish(run, true);
    jobs__run_flush_log(run);
    uv_timer_stop(&run->timer);

    char path[4096];
    jobs__log_path(j, job->id, path, sizeof(path));
    size_t plen = strlen(path) + 1;
    run_end *e = jobs__calloc(j, sizeof(*e) + plen);
    int fd = run->log_fd;
    run->log_fd = -1;
    if (run->term_signal) {
        job->signal = run->term_signal;
        job->has_exit_code = false;
    } else {
        job->signal = 0;
        job->has_exit_code = true;
        job->exit_code = (int32_t)run->exit_status;
    }
    int status;
    char error[96] = "";
    if (job->cancel_requested) {
        status = JOBS__CANCELLED;
        snprintf(error, sizeof(error), "cancelled by request");
    } else if (run->term_signal) {
        status = JOBS__FAILED;
        snprintf(error, sizeof(error), "killed by signal %d (%s)", run->term_signal,
                 strsignal(run->term_signal));
    } else if (run->exit_status != 0) {
        status = JOBS__FAILED;
        snprintf(error, sizeof(error), "exited with code %lld", (long long)run->exit_status);
    } else {
        status = JOBS__COMPLETED;
    }

    job->run = NULL;
    job->finishing = true;
    uv_close((uv_handle_t *)&run->proc, run_close_cb);
    uv_close((uv_handle_t *)&run->pipe, run_close_cb);
    uv_close((uv_handle_t *)&run->timer, run_close_cb);

    int rc = -ENOMEM;
    if (e != NULL) {
        e->j = j;
        e->job = job;
        e->fd = fd;
        e->status = status;
        e->log_errno = run->log_errno;
        memcpy(e->error, error, sizeof(error));
        memcpy(e->path, path, plen);
        e->req.data = e;
        rc = uv_queue_work(j->loop, &e->req, run_end_work, run_end_done);
    }
    if (rc == 0) {
        j->n_work++;
        return;
    }
    /* No thread pool request: end it here without the fsync. */
    if (fd >= 0)
        close(fd);
    jobs__write_error(j, path, rc);
    jobs__free(j, e);
    j->lane_running[job->lane]--;
    job->finishing = false;
    if (j->closing) {
        jobs__store_dirty(j);
    } else {
        char full[512];
        jobs__terminal(j, job, status,
                       end_error(job, error, run->log_errno, 0, full, sizeof(full)));
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    jobs__run *run = h->data;
    buf->base = run->j->readbuf;
    buf->len = READ_BUF_BYTES;
}

static void read_cb_body(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    jobs__run *run = s->data;
    if (nread > 0) {
        jobs__run_output(run, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    if (nread != UV_EOF)
        jobs__log(run->j, BASE_LOG_WARN, "job %s: reading output: %s", run->job->id,
                  uv_strerror((int)nread));
    uv_read_stop(s);
    run->eof = true;
    run_maybe_end(run);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    jobs__bracket b = jobs__enter(((jobs__run *)s->data)->j);
    read_cb_body(s, nread, buf);
    jobs__leave(&b);
}

static void group_signal(jobs__run *run, int sig)
{
    if (run->job->pgid > 0 && kill(-run->job->pgid, sig) < 0 && errno != ESRCH)
        jobs__log(run->j, BASE_LOG_WARN, "job %s: kill(-%d, %d): %s", run->job->id, run->job->pgid,
                  sig, strerror(errno));
}

static void linger_cb_body(uv_timer_t *t)
{
    jobs__run *run = t->data;
    group_signal(run, SIGKILL);
    uv_read_stop((uv_stream_t *)&run->pipe);
    run->eof = true;
    run_maybe_end(run);
}

static void linger_cb(uv_timer_t *t)
{
    jobs__bracket b = jobs__enter(((jobs__run *)t->data)->j);
    linger_cb_body(t);
    jobs__leave(&b);
}

static void kill_cb_body(uv_timer_t *t)
{
    jobs__run *run = t->data;
    run->kill_sent = true;
    jobs__log(run->j, BASE_LOG_WARN, "job %s: still running %.3gs after SIGTERM; SIGKILL",
              run->job->id, run->j->cfg->kill_timeout_s);
    group_signal(run, SIGKILL);
}

static void kill_cb(uv_timer_t *t)
{
    jobs__bracket b = jobs__enter(((jobs__run *)t->data)->j);
    kill_cb_body(t);
    jobs__leave(&b);
}

static void exit_cb_body(uv_process_t *p, int64_t exit_status, int term_signal)
{
    jobs__run *run = p->data;
    run->exited = true;
    run->exit_status = exit_status;
    run->term_signal = term_signal;
    if (!run->eof)
        uv_timer_start(&run->timer, linger_cb, JOBS__LINGER_MS, 0);
    run_maybe_end(run);
}

static void exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
    jobs__bracket b = jobs__enter(((jobs__run *)p->data)->j);
    exit_cb_body(p, exit_status, term_signal);
    jobs__leave(&b);
}

/* The child's environment: the job's own variables, HERD_JOB_ID, then
 * herdd's environment minus the names already set. */
static char **build_env(jobs *j, jobs_job *job, char *idvar)
{
    size_t n_env = 0, n_own = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++)
        n_env++;
    for (char **e = job->spec->env; e != NULL && *e != NULL; e++)
        n_own++;
    char **env = jobs__calloc(j, (n_env + n_own + 2) * sizeof(*env));
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (char **e = job->spec->env; e != NULL && *e != NULL; e++)
        env[k++] = *e;
    env[k++] = idvar;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        size_t len = strcspn(*e, "=");
        bool dup = false;
        for (size_t i = 0; i < k && !dup; i++)
            dup = strncmp(env[i], *e, len) == 0 && env[i][len] == '=';
        if (!dup)
            env[k++] = *e;
    }
    return env;
}

static void fail_start(jobs *j, jobs_job *job, const char *what, int err)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "cannot start %s: %s", what, uv_strerror(err));
    char line[300];
    snprintf(line, sizeof(line), "[herd] %s\n", msg);
    jobs__log_append_notice(j, job->id, line);
    jobs__log(j, BASE_LOG_WARN, "job %s: %s", job->id, msg);
    jobs__terminal(j, job, JOBS__FAILED, msg);
}

static void tick_cb_body(uv_timer_t *t)
{
    jobs__runs_tick(t->data);
}

static void tick_cb(uv_timer_t *t)
{
    jobs__bracket b = jobs__enter((jobs *)t->data);
    tick_cb_body(t);
    jobs__leave(&b);
}

int jobs__run_start(jobs *j, jobs_job *job)
{
    if (j->readbuf == NULL && (j->readbuf = jobs__malloc(j, READ_BUF_BYTES)) == NULL)
        return -ENOMEM;
    jobs__run *run = jobs__calloc(j, sizeof(*run));
    if (run == NULL)
        return -ENOMEM;
    run->j = j;
    run->job = job;
    char path[4096];
    jobs__log_path(j, job->id, path, sizeof(path));
    run->log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, JOBS__LOG_MODE);
    if (run->log_fd < 0) {
        run->log_errno = -errno;
        jobs__write_error(j, path, -errno);
    } else {
        struct stat st;
        if (fstat(run->log_fd, &st) == 0)
            run->log_size = (uint64_t)st.st_size;
    }
    run->pub_offset = run->log_size;

    int fds[2] = {-1, -1};
    int rc = pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
    char idvar[16 + JOBS__ID_LEN];
    snprintf(idvar, sizeof(idvar), "HERD_JOB_ID=%s", job->id);
    char **env = rc ? NULL : build_env(j, job, idvar);
    if (!rc && env == NULL) {
        rc = -ENOMEM;
        close(fds[0]);
        close(fds[1]);
    }
    if (rc)
        goto fail_pre;
    uv_pipe_init(j->loop, &run->pipe, 0);
    uv_timer_init(j->loop, &run->timer);
    run->pipe.data = run->timer.data = run->proc.data = run;
    run->n_handles = 2;
    j->n_runs++;
    rc = uv_pipe_open(&run->pipe, fds[0]);
    if (rc) {
        close(fds[0]);
        close(fds[1]);
        jobs__free(j, env);
        goto fail_handles;
    }
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
    };
    uv_process_options_t opts = {
        .exit_cb = exit_cb,
        .file = job->spec->argv[0],
        .args = job->spec->argv,
        .env = env,
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = stdio,
    };
    rc = uv_spawn(j->loop, &run->proc, &opts);
    close(fds[1]);
    jobs__free(j, env);
    run->n_handles = 3; /* uv_spawn initialises the process handle even on failure */
    if (rc)
        goto fail_handles;
    run->spawned = true;
    job->pgid = run->proc.pid;
    job->run = run;
    job->started_ms = base_now_ms();
    job->has_exit_code = false;
    job->signal = 0;
    jobs__set_status(j, job, JOBS__RUNNING);
    j->lane_running[job->lane]++;
    uv_read_start((uv_stream_t *)&run->pipe, alloc_cb, read_cb);
    if (!uv_is_active((uv_handle_t *)&j->tick))
        uv_timer_start(&j->tick, tick_cb, JOBS__TICK_MS, JOBS__TICK_MS);
    jobs__store_dirty(j);
    jobs__publish_state(j, job, 0, false);
    return 0;

fail_handles:
    if (run->log_fd >= 0)
        close(run->log_fd);
    run->log_fd = -1;
    uv_close((uv_handle_t *)&run->pipe, run_close_cb);
    uv_close((uv_handle_t *)&run->timer, run_close_cb);
    if (run->n_handles == 3)
        uv_close((uv_handle_t *)&run->proc, run_close_cb);
    fail_start(j, job, job->spec->argv[0], rc);
    return 0;
fail_pre:
    if (run->log_fd >= 0)
        close(run->log_fd);
    jobs__free(j, run);
    fail_start(j, job, job->spec->argv[0], rc);
    return 0;
}

void jobs__runs_tick(jobs *j)
{
    bool any = false;
    bool flush = ++j->n_ticks % JOBS__FLUSH_TICKS == 0;
    for (jobs_job *job = jobs__first(j); job != NULL; job = jobs__next(j, job)) {
        if (job->run == NULL)
            continue;
        any = true;
        jobs__run_publish(job->run, false);
        if (flush)
            jobs__run_flush_log(job->run);
    }
    if (!any)
        uv_timer_stop(&j->tick);
}

static void run_terminate(jobs__run *run)
{
    if (run->term_sent || run->done)
        return;
    run->term_sent = true;
    group_signal(run, SIGTERM);
    if (!run->exited) {
        uint64_t ms = (uint64_t)(run->j->cfg->kill_timeout_s * 1000.0 + 0.5);
        uv_timer_start(&run->timer, kill_cb, ms ? ms : 1, 0);
    }
}

int jobs__run_cancel(jobs *j, jobs_job *job)
{
    if (job->status == JOBS__QUEUED) {
        jobs__terminal(j, job, JOBS__CANCELLED, "cancelled by request");
        return 0;
    }
    if (job->status != JOBS__RUNNING)
        return 0;
    job->cancel_requested = true;
    if (job->run != NULL)
        run_terminate(job->run);
    return 0;
}

void jobs__schedule(jobs *j)
{
    if (!j->started || j->closing)
        return;
    for (jobs_job *job = jobs__first(j); job != NULL; job = jobs__next(j, job)) {
        if (job->status != JOBS__QUEUED || job->submit_gen > j->disk_gen)
            continue;
        if (job->depends_on[0]) {
            jobs_job *pre = jobs__find(j, job->depends_on);
            if (pre == NULL || pre->status == JOBS__FAILED || pre->status == JOBS__CANCELLED) {
                jobs__terminal(j, job, JOBS__CANCELLED, JOBS__PREREQ_ERROR);
                continue;
            }
            if (pre->status != JOBS__COMPLETED)
                continue;
        }
        if (j->lane_running[job->lane] >= j->cfg->lanes[job->lane].capacity)
            continue;
        if (jobs__run_start(j, job) == -ENOMEM) {
            jobs__log(j, BASE_LOG_ERROR, "job %s: out of memory starting it", job->id);
            return;
        }
    }
}

void jobs__runs_close(jobs *j)
{
    for (jobs_job *job = jobs__first(j); job != NULL; job = jobs__next(j, job))
        if (job->run != NULL)
            run_terminate(job->run);
}

/* ---- leftovers of a crashed herdd -------------------------------------- */

static bool proc_has_job(pid_t pid, const char *idvar)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    size_t len = strlen(idvar);
    for (ssize_t i = 0; i < n;) {
        if (strncmp(buf + i, idvar, len + 1) == 0)
            return true;
        i += (ssize_t)strlen(buf + i) + 1;
    }
    return false;
}

static pid_t proc_pgrp(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields resume after the last ')'. */
    char *p = strrchr(buf, ')');
    int ppid, pgrp;
    char state;
    if (p == NULL || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
        return -1;
    return pgrp;
}

void jobs__kill_leftover(jobs *j, jobs_job *job)
{
    pid_t pgid = job->pgid;
    if (pgid <= 1 || kill(-pgid, 0) < 0)
        return;
    char idvar[16 + JOBS__ID_LEN];
    snprintf(idvar, sizeof(idvar), "HERD_JOB_ID=%s", job->id);
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    bool ours = false;
    struct dirent *de;
    while (!ours && (de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        if (proc_pgrp((pid_t)pid) == pgid && proc_has_job((pid_t)pid, idvar))
            ours = true;
    }
    closedir(d);
    if (!ours)
        return;
    jobs__log(j, BASE_LOG_WARN, "job %s: killing process group %d left by a previous herdd",
              job->id, (int)pgid);
    kill(-pgid, SIGKILL);
}
