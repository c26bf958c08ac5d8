/*
 * The `exec` kind: runs argv (never through a shell) once per matching
 * event, the event's JSON on the child's stdin (DESIGN.md section 5).
 *
 * Design notes
 * - Events wait in the shared subscriber queue (subscriber.h: bounded,
 *   drop-oldest, counted). At most max_concurrent children exist: a child
 *   holds its slot from uv_spawn until it was reaped and every handle of it
 *   closed, and only then is the next event taken. `running` counts slots.
 * - A child is started through the process kind's trampoline
 *   (worker_exec_main: `/proc/self/exe --worker-exec PPID -- argv...`), so it
 *   has PR_SET_PDEATHSIG(SIGTERM) and dies with herdd even on kill -9. It
 *   leads its own session and process group (UV_PROCESS_DETACHED), so a
 *   timeout or a stop signals everything it started.
 * - The kernel's death signal reaches the leader only: what the leader
 *   forked (`sh script` running `sleep`) outlives a kill -9 of herdd. Every
 *   child carries HERD_EXEC_OWNER=<herdd pid>.<its start time>:<worker>:<bus
 *   dir> in its environment, inherited by what it forks, and each start of
 *   an exec worker (the restarted herdd's) has the thread pool scan /proc
 *   and SIGKILL the process group of every process marked for this worker
 *   and bus dir by another herdd (sweep_* below). Under systemd,
 *   KillMode=control-group kills them at once. Killing the group at once
 *   would need a process in it that outlives the leader's death signal (the
 *   trampoline forking and waiting, as timeout(1) does); process.c owns the
 *   trampoline.
 * - The group is signalled only while a member may live (the leader not yet
 *   reaped, or an output pipe not at EOF), never after, so a recycled pid is
 *   never hit (as in the process kind). When the leader exits and its
 *   output is still open, its group gets SIGTERM: what it left running goes
 *   with it.
 * - stdin: the event JSON and a newline in one uv_write, then closed. A
 *   child that never reads keeps that write pending without blocking the
 *   loop; its exit (or the kill at timeout_s) ends the write.
 * - stdout and stderr are read and logged with the worker's name, line by
 *   line: lines over LINE_MAX_BYTES are split; beyond LINES_PER_EVENT lines
 *   of one child or LINES_PER_S lines a second of the worker, lines are
 *   counted (output_lines_dropped), not logged. What a child costs is fixed
 *   (its struct with two line buffers, and its event) whatever it writes,
 *   and reading never stops, so a child never blocks on a full pipe.
 * - Deadlines, on one timer per child: timeout_s, then SIGTERM to the
 *   group; `grace` (the worker's stop_timeout_s, else 5 s) later SIGKILL,
 *   and the output pipes are closed without waiting for EOF (something
 *   that left the group may hold them for ever). A child therefore ends by
 *   timeout_s + grace, and a stop by grace: within what the supervisor
 *   waits (stop_timeout_s + 2 s).
 * - Stop: no new children; SIGTERM to every running group, SIGKILL at the
 *   grace; worker_stopped once every child is finished and the /proc sweep
 *   is back. An event whose child was stopped counts as failed.
 * - Exit statuses are counted in a sorted table (codes 0..255 and one
 *   bucket per signal: at most 256 + 65 entries), allocated on the first
 *   exit. Idle, the worker holds its struct, that table and its
 *   subscriptions.
 */
#include "workers/subscriber.h"
#include "workers/worker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXEC_CONCURRENT_MAX 64
#define EXEC_TIMEOUT_DEFAULT_S 60
#define EXEC_TIMEOUT_MAX_S 86400
#define EXEC_GRACE_DEFAULT_S 5
#define EXEC_ARGV_MAX 1024
#define LINE_MAX_BYTES 1024
#define LINES_PER_EVENT 64
#define LINES_PER_S 200
/* exit_codes buckets: 0..255 exit statuses, SIGNAL_BASE + n killed by signal n */
#define SIGNAL_BASE 256
#define SIGNAL_MAX 64
#define OWNER_VAR "HERD_EXEC_OWNER"
#define OWNER_PREFIX OWNER_VAR "="
/* The longest environment entry the sweep compares: our marker's. */
#define SWEEP_ENTRY_MAX (sizeof(OWNER_PREFIX) + 48 + BASE_NAME_MAX + PATH_MAX)
#define SWEEP_GROUPS_MAX 256

typedef struct exec_worker exec_worker;
typedef struct exec_child exec_child;

typedef struct exec_stream {
    exec_child *c;
    uv_pipe_t pipe;
    const char *label;
    bool open; /* initialised and its close callback not yet run */
    size_t len;
    char line[LINE_MAX_BYTES];
} exec_stream;

struct exec_child {
    base_list_node node; /* in exec_worker.children */
    exec_worker *x;
    sub_event *ev; /* owned until subscriber_done */
    uv_process_t proc;
    uv_pipe_t in;
    uv_write_t write;
    uv_timer_t timer; /* timeout_s, then the SIGKILL deadline */
    base_buf input;   /* the event JSON and '\n', until written */
    exec_stream out, err;
    int pid;
    int spawn_error; /* uv_spawn's, 0 when it ran */
    bool proc_open, in_open, timer_open;
    bool exited, timed_out, killing, killed;
    int64_t status;
    int term_signal;
    unsigned lines;         /* logged for this child */
    uint64_t lines_dropped; /* not logged for this child */
};

typedef struct exit_count {
    unsigned code; /* < SIGNAL_BASE: exit status; else SIGNAL_BASE + signal */
    uint64_t n;
} exit_count;

typedef struct exec_sweep exec_sweep;

struct exec_worker {
    worker *w;
    subscriber sub;
    base_list children;
    const json_t *argv, *env; /* borrowed from the config */
    const char *cwd;
    size_t max_concurrent;
    uint64_t timeout_ms, grace_ms;
    uint64_t timeouts, spawn_errors, lines_dropped, leftovers_killed;
    exit_count *codes; /* sorted by code */
    size_t n_codes;
    uint64_t window_ms; /* the output rate limit's current second */
    unsigned lines_in_window;
    exec_sweep *sweep; /* the /proc scan in the thread pool; NULL when none */
    bool stopping, stopped;
};

static void pump(exec_worker *x);
static void maybe_stopped(exec_worker *x);

/* ---- config -------------------------------------------------------------- */

static const char *const exec_keys[] = {"subscribe", "argv", "max_concurrent", "timeout_s", "env",
                                        "cwd",       NULL};
/* Set by the kind for every child: refused in `env`. */
static const char *const reserved_env[] = {"HERD_TOPIC", "HERD_WORKER", "HERD_RUNTIME_DIR",
                                           OWNER_VAR, NULL};

/* show renders a config value for a message, cut at 60 bytes. */
static const char *show(const json_t *v, char *buf, size_t size)
{
    char *s = v != NULL ? base_json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;

    if (v == NULL)
        snprintf(buf, size, "nothing");
    else
        snprintf(buf, size, "%.60s%s", s != NULL ? s : "?",
                 s != NULL && strlen(s) > 60 ? "..." : "");
    free(s);
    return buf;
}

static bool reserved_name(const char *name, size_t len)
{
    for (const char *const *r = reserved_env; *r != NULL; r++)
        if (strlen(*r) == len && memcmp(*r, name, len) == 0)
            return true;
    return false;
}

static bool plain_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int exec_validate(const json_t *cfg, const char *path, char *err, size_t err_size)
{
    const json_t *argv = json_object_get(cfg, "argv"), *env = json_object_get(cfg, "env");
    const json_t *mc = json_object_get(cfg, "max_concurrent"),
                 *to = json_object_get(cfg, "timeout_s");
    const json_t *cwd = json_object_get(cfg, "cwd"), *v;
    const char *key;
    char got[80];
    size_t i;
    int rv;

    if ((rv = worker_check_keys(cfg, path, exec_keys, err, err_size)) < 0)
        return rv;
    if ((rv = subscriber_validate(cfg, path, err, err_size)) < 0)
        return rv;
    if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > EXEC_ARGV_MAX)
        return base_errf(err, err_size,
                         "%s.argv: required, an array of 1 to %d strings (the program and its "
                         "arguments, run without a shell), got %s",
                         path, EXEC_ARGV_MAX, show(argv, got, sizeof(got)));
    json_array_foreach(argv, i, v)
    {
        if (!plain_string(v) || (i == 0 && json_string_length(v) == 0))
            return base_errf(err, err_size, "%s.argv[%zu]: expected %s, got %s", path, i,
                             i == 0 ? "the program to run" : "a string without NUL bytes",
                             show(v, got, sizeof(got)));
    }
    if (mc != NULL && (!json_is_integer(mc) || json_integer_value(mc) < 1 ||
                       json_integer_value(mc) > EXEC_CONCURRENT_MAX))
        return base_errf(err, err_size,
                         "%s.max_concurrent: expected an integer from 1 to %d, got %s", path,
                         EXEC_CONCURRENT_MAX, show(mc, got, sizeof(got)));
    if (to != NULL && (!json_is_integer(to) || json_integer_value(to) < 0 ||
                       json_integer_value(to) > EXEC_TIMEOUT_MAX_S))
        return base_errf(err, err_size,
                         "%s.timeout_s: expected whole seconds from 0 (no timeout) to %d, got %s",
                         path, EXEC_TIMEOUT_MAX_S, show(to, got, sizeof(got)));
    if (env != NULL && !json_is_object(env))
        return base_errf(err, err_size, "%s.env: expected an object of strings, got %s", path,
                         show(env, got, sizeof(got)));
    json_object_foreach((json_t *)env, key, v)
    {
        if (*key == '\0' || strchr(key, '=') != NULL)
            return base_errf(err, err_size,
                             "%s.env: \"%.64s\" is not a variable name (empty or with '=')", path,
                             key);
        if (reserved_name(key, strlen(key)))
            return base_errf(err, err_size, "%s.env.%s: set by herd for every child", path, key);
        if (!plain_string(v))
            return base_errf(err, err_size,
                             "%s.env.%.64s: expected a string without NUL bytes, got %s", path, key,
                             show(v, got, sizeof(got)));
    }
    if (cwd != NULL) {
        struct stat st;
        if (!plain_string(cwd) || json_string_length(cwd) == 0)
            return base_errf(err, err_size, "%s.cwd: expected a directory path, got %s", path,
                             show(cwd, got, sizeof(got)));
        int why = stat(json_string_value(cwd), &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (why != 0)
            return base_errf(err, err_size, "%s.cwd: \"%.200s\": %s", path, json_string_value(cwd),
                             strerror(why));
    }
    return 0;
}

/* ---- the owner marker ------------------------------------------------------ */

/* owner_id is "<pid>.<start time>" of this herdd (the start time, in clock
 * ticks since boot, tells it from an earlier process with the same pid).
 * Computed once; loop thread (and the sweep, after the loop computed it). */
static const char *owner_id(void)
{
    static char id[48];
    unsigned long long start = 0;
    char buf[1024];
    int fd;

    if (id[0] != '\0')
        return id;
    fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        /* Field 22, counted from the state (field 3) after the last ')'. */
        const char *p = strrchr(buf, ')');
        for (int field = 2; p != NULL && field < 22; field++)
            p = strchr(p + 1, ' ');
        if (p != NULL)
            start = strtoull(p + 1, NULL, 10);
    }
    snprintf(id, sizeof(id), "%d.%llu", (int)getpid(), start);
    return id;
}

/* ---- the sweep of a previous herdd's leftovers (thread pool) --------------- */

struct exec_sweep {
    uv_work_t req;
    exec_worker *x;
    uint64_t killed;
    size_t n_groups;
    pid_t groups[SWEEP_GROUPS_MAX]; /* killed already: counted once */
    char self[48];                  /* owner_id() */
    char entry[SWEEP_ENTRY_MAX];
    char buf[16384];
    size_t tail_len;
    char tail[]; /* ":<worker>:<bus dir>", what a marker of ours ends with */
};

/* marked_elsewhere: entry (len bytes) is our marker, set by another herdd. */
static bool marked_elsewhere(const exec_sweep *sw, const char *entry, size_t len)
{
    size_t pre = sizeof(OWNER_PREFIX) - 1, self = strlen(sw->self);

    if (len < pre + sw->tail_len + 1 || memcmp(entry, OWNER_PREFIX, pre) != 0 ||
        memcmp(entry + len - sw->tail_len, sw->tail, sw->tail_len) != 0)
        return false;
    /* The id part may not contain ':', which the tail starts with. */
    const char *id = entry + pre;
    size_t id_len = len - pre - sw->tail_len;
    if (memchr(id, ':', id_len) != NULL)
        return false;
    return !(id_len == self && memcmp(id, sw->self, self) == 0);
}

/* proc_marked reads /proc/<pid>/environ entry by entry. */
static bool proc_marked(exec_sweep *sw, pid_t pid)
{
    char path[64];
    size_t len = 0;
    bool skip = false, found = false;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false; /* another user's, or gone */
    while (!found && (n = read(fd, sw->buf, sizeof(sw->buf))) > 0) {
        for (ssize_t i = 0; i < n && !found; i++) {
            char ch = sw->buf[i];
            if (ch == '\0') {
                found = !skip && marked_elsewhere(sw, sw->entry, len);
                len = 0;
                skip = false;
            } else if (!skip && len < sizeof(sw->entry)) {
                sw->entry[len++] = ch;
            } else {
                skip = true; /* longer than any marker of ours */
            }
        }
    }
    if (!found && !skip && len > 0)
        found = marked_elsewhere(sw, sw->entry, len);
    close(fd);
    return found;
}

static pid_t proc_pgrp(pid_t pid)
{
    char path[64], buf[512];
    int fd, pgrp = 0;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 1, " %*c %*d %d", &pgrp) != 1)
        return 0;
    return pgrp;
}

static void sweep_work(uv_work_t *req)
{
    exec_sweep *sw = req->data;
    pid_t own_group = getpgrp();
    struct dirent *de;
    DIR *d = opendir("/proc");

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 1 || pid == (long)getpid() || !proc_marked(sw, (pid_t)pid))
            continue;
        pid_t pgrp = proc_pgrp((pid_t)pid);
        bool seen = false;
        for (size_t i = 0; i < sw->n_groups && !seen; i++)
            seen = sw->groups[i] == pgrp;
        if (pgrp > 1 && pgrp != own_group)
            kill(-pgrp, SIGKILL);
        kill((pid_t)pid, SIGKILL); /* in case it left the group */
        if (!seen || pgrp <= 1) {
            sw->killed++;
            if (pgrp > 1 && sw->n_groups < SWEEP_GROUPS_MAX)
                sw->groups[sw->n_groups++] = pgrp;
        }
    }
    closedir(d);
}

static void sweep_done(uv_work_t *req, int status)
{
    exec_sweep *sw = req->data;
    exec_worker *x = sw->x;
    worker *prev = worker_enter(x->w);

    if (status == 0 && sw->killed > 0) {
        x->leftovers_killed += sw->killed;
        worker_log(x->w, BASE_LOG_WARN,
                   "killed %llu process group%s left running by a previous herdd of this bus "
                   "(what its children started outlives a kill -9 of herdd)",
                   (unsigned long long)sw->killed, sw->killed == 1 ? "" : "s");
    }
    x->sweep = NULL;
    base_free(sw);
    maybe_stopped(x);
    worker_leave(prev);
}

static void sweep_start(exec_worker *x)
{
    const char *name = worker_name(x->w), *dir = worker_runtime_dir(x->w);
    size_t tail_len = strlen(name) + strlen(dir) + 2;
    exec_sweep *sw = base_calloc(1, sizeof(*sw) + tail_len + 1);

    if (sw == NULL)
        return; /* a best effort: the next start tries again */
    sw->x = x;
    sw->req.data = sw;
    snprintf(sw->self, sizeof(sw->self), "%s", owner_id());
    sw->tail_len = tail_len;
    snprintf(sw->tail, tail_len + 1, ":%s:%s", name, dir);
    if (uv_queue_work(worker_loop(x->w), &sw->req, sweep_work, sweep_done) < 0) {
        base_free(sw);
        return;
    }
    x->sweep = sw;
}

/* ---- one child ------------------------------------------------------------- */

static const char *argv0(const exec_worker *x)
{
    return json_string_value(json_array_get(x->argv, 0));
}

static bool group_alive(const exec_child *c)
{
    return !c->exited || c->out.open || c->err.open;
}

static void signal_group(exec_child *c, int sig)
{
    if (c->pid <= 0 || !group_alive(c))
        return;
    kill(-c->pid, sig);
    if (!c->exited)
        kill(c->pid, sig); /* in case it left its group */
}

static void emit_line(exec_stream *s)
{
    exec_child *c = s->c;
    exec_worker *x = c->x;
    uint64_t now = uv_now(worker_loop(x->w));

    if (now - x->window_ms >= 1000) {
        x->window_ms = now;
        x->lines_in_window = 0;
    }
    if (c->lines >= LINES_PER_EVENT || x->lines_in_window >= LINES_PER_S) {
        c->lines_dropped++;
        x->lines_dropped++;
    } else {
        c->lines++;
        x->lines_in_window++;
        worker_log(x->w, BASE_LOG_INFO, "%d %s: %.*s", c->pid, s->label, (int)s->len, s->line);
    }
    s->len = 0;
}

static void count_exit(exec_worker *x, unsigned code)
{
    size_t i = 0;

    while (i < x->n_codes && x->codes[i].code < code)
        i++;
    if (i < x->n_codes && x->codes[i].code == code) {
        x->codes[i].n++;
        return;
    }
    exit_count *t = base_realloc(x->codes, (x->n_codes + 1) * sizeof(*t));
    if (t == NULL)
        return; /* out of memory: this one exit goes uncounted */
    memmove(t + i + 1, t + i, (x->n_codes - i) * sizeof(*t));
    t[i].code = code;
    t[i].n = 1;
    x->codes = t;
    x->n_codes++;
}

/* child_finish: reaped, every handle closed. Frees c. */
static void child_finish(exec_child *c)
{
    exec_worker *x = c->x;
    const char *topic = c->ev->topic;
    bool ok = false;

    if (c->spawn_error == 0) {
        unsigned sig = c->term_signal > 0 && c->term_signal <= SIGNAL_MAX ? c->term_signal : 0;
        count_exit(x, c->term_signal != 0 ? SIGNAL_BASE + sig : (unsigned)(c->status & 0xff));
        ok = !c->timed_out && c->term_signal == 0 && c->status == 0;
        if (c->timed_out)
            worker_set_error(x->w, "%s (event on %s): killed after timeout_s %llu s", argv0(x),
                             topic, (unsigned long long)(x->timeout_ms / 1000));
        else if (c->term_signal != 0)
            worker_set_error(x->w, "%s (event on %s): killed by signal %d (%s)", argv0(x), topic,
                             c->term_signal, strsignal(c->term_signal));
        else if (c->status != 0)
            worker_set_error(x->w, "%s (event on %s): exited with status %lld", argv0(x), topic,
                             (long long)c->status);
        if (c->lines_dropped > 0 && x->lines_in_window < LINES_PER_S) {
            x->lines_in_window++;
            worker_log(x->w, BASE_LOG_WARN,
                       "%d: %llu output lines not logged (at most %d per event, %d a second)",
                       c->pid, (unsigned long long)c->lines_dropped, LINES_PER_EVENT, LINES_PER_S);
        }
    }
    base_list_remove(&x->children, &c->node);
    subscriber_done(&x->sub, c->ev, ok);
    base_buf_free(&c->input);
    base_free(c);
    if (x->stopping)
        maybe_stopped(x);
    else
        pump(x);
}

static void handle_closed(uv_handle_t *h);

/* child_check: once the process, stdin and both output pipes are closed, the
 * timer goes, then the child is finished. */
static void child_check(exec_child *c)
{
    if (c->proc_open || c->in_open || c->out.open || c->err.open)
        return;
    if (c->timer_open) {
        if (!uv_is_closing((uv_handle_t *)&c->timer))
            uv_close((uv_handle_t *)&c->timer, handle_closed);
        return;
    }
    child_finish(c);
}

/* handle_closed is every handle's close callback (each handle's data is
 * its child): the last one finishes (and frees) the child, after which
 * libuv no longer touches any of its handles. */
static void handle_closed(uv_handle_t *h)
{
    exec_child *c = h->data;
    worker *prev = worker_enter(c->x->w);

    if (h == (uv_handle_t *)&c->timer)
        c->timer_open = false;
    else if (h == (uv_handle_t *)&c->proc)
        c->proc_open = false;
    else if (h == (uv_handle_t *)&c->in)
        c->in_open = false;
    else if (h == (uv_handle_t *)&c->out.pipe)
        c->out.open = false;
    else
        c->err.open = false;
    child_check(c);
    worker_leave(prev);
}

static void stream_close(exec_stream *s)
{
    if (!s->open || uv_is_closing((uv_handle_t *)&s->pipe))
        return;
    if (s->len > 0)
        emit_line(s);
    uv_close((uv_handle_t *)&s->pipe, handle_closed);
}

static void in_close(exec_child *c)
{
    if (c->in_open && !uv_is_closing((uv_handle_t *)&c->in))
        uv_close((uv_handle_t *)&c->in, handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[16384]; /* loop thread only; consumed before the next read */
    (void)h;
    (void)suggested;
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    exec_child *c = st->data;
    exec_stream *s = st == (uv_stream_t *)&c->out.pipe ? &c->out : &c->err;
    worker *prev = worker_enter(c->x->w);

    if (n < 0) {
        stream_close(s);
    } else {
        for (ssize_t i = 0; i < n; i++) {
            if (buf->base[i] == '\n') {
                emit_line(s);
                continue;
            }
            s->line[s->len++] = buf->base[i];
            if (s->len == sizeof(s->line))
                emit_line(s);
        }
    }
    worker_leave(prev);
}

static void on_written(uv_write_t *req, int status)
{
    exec_child *c = req->data;
    worker *prev = worker_enter(c->x->w);

    /* EPIPE: the child closed its stdin or exited without reading it all;
     * ECANCELED: the child exited while the write waited. Neither is the
     * event's failure: the exit status says how it went. */
    (void)status;
    base_buf_free(&c->input);
    in_close(c);
    worker_leave(prev);
}

static void on_kill_deadline(uv_timer_t *t)
{
    exec_child *c = t->data;
    worker *prev = worker_enter(c->x->w);

    if (group_alive(c) && !c->killed) {
        worker_log(c->x->w, BASE_LOG_WARN,
                   "%d (%s) or what it started still running %llu s after SIGTERM: SIGKILL", c->pid,
                   argv0(c->x), (unsigned long long)(c->x->grace_ms / 1000));
        signal_group(c, SIGKILL);
        c->killed = true;
    }
    stream_close(&c->out);
    stream_close(&c->err);
    child_check(c);
    worker_leave(prev);
}

/* arm_kill starts the grace period after a SIGTERM (once per child). */
static void arm_kill(exec_child *c)
{
    if (c->killing || !c->timer_open || uv_is_closing((uv_handle_t *)&c->timer))
        return;
    c->killing = true;
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_kill_deadline, c->x->grace_ms, 0);
}

static void on_timeout(uv_timer_t *t)
{
    exec_child *c = t->data;
    exec_worker *x = c->x;
    worker *prev = worker_enter(x->w);

    if (c->exited) { /* reaped, only its pipes left: not a timeout */
        worker_leave(prev);
        return;
    }
    c->timed_out = true;
    x->timeouts++;
    worker_log(x->w, BASE_LOG_WARN,
               "%d (%s, event on %s) still running after timeout_s %llu s: SIGTERM to its group",
               c->pid, argv0(x), c->ev->topic, (unsigned long long)(x->timeout_ms / 1000));
    signal_group(c, SIGTERM);
    arm_kill(c);
    worker_leave(prev);
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
    exec_child *c = proc->data;
    worker *prev = worker_enter(c->x->w);

    c->exited = true;
    c->status = status;
    c->term_signal = term_signal;
    uv_close((uv_handle_t *)&c->proc, handle_closed);
    in_close(c); /* cancels a write the child never read */
    if (c->out.open || c->err.open) {
        /* What the leader left running goes with it. */
        signal_group(c, SIGTERM);
        arm_kill(c);
    }
    worker_leave(prev);
}

/* child_start runs one event; whatever happens the event is accounted for
 * (at once, or when the child is finished). */
static void child_start(exec_worker *x, sub_event *e)
{
    uv_loop_t *loop = worker_loop(x->w);
    uv_process_options_t opts = {0};
    uv_stdio_container_t stdio[3];
    worker_child_args child;
    char owner[sizeof(OWNER_PREFIX) + 48 + BASE_NAME_MAX + PATH_MAX];
    exec_child *c = base_calloc(1, sizeof(*c));
    int rv;

    snprintf(owner, sizeof(owner), "%s:%s:%s", owner_id(), worker_name(x->w),
             worker_runtime_dir(x->w));
    const char *const set[] = {"HERD_TOPIC",
                               e->topic,
                               "HERD_WORKER",
                               worker_name(x->w),
                               "HERD_RUNTIME_DIR",
                               worker_runtime_dir(x->w),
                               OWNER_VAR,
                               owner,
                               NULL};
    if (c == NULL || subscriber_event_json(e, &c->input) < 0 ||
        base_buf_add(&c->input, "\n", 1) < 0 ||
        worker_child_args_make(x->argv, set, x->env, &child) < 0) {
        worker_set_error(x->w, "out of memory running %s for an event on %s", argv0(x), e->topic);
        if (c != NULL)
            base_buf_free(&c->input);
        base_free(c);
        subscriber_done(&x->sub, e, false);
        return;
    }
    c->x = x;
    c->ev = e;
    c->out.c = c->err.c = c;
    c->out.label = "stdout";
    c->err.label = "stderr";
    base_list_append(&x->children, &c->node);

    uv_pipe_init(loop, &c->in, 0);
    uv_pipe_init(loop, &c->out.pipe, 0);
    uv_pipe_init(loop, &c->err.pipe, 0);
    uv_timer_init(loop, &c->timer);
    c->in.data = c->timer.data = c->proc.data = c->write.data = c;
    c->out.pipe.data = c->err.pipe.data = c;
    c->in_open = c->out.open = c->err.open = c->timer_open = true;

    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&c->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&c->out.pipe;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&c->err.pipe;
    /* The host binary as the kernel knows it: still the right one after a
     * package upgrade replaced the file. */
    opts.file = "/proc/self/exe";
    opts.args = child.args;
    opts.env = child.envp;
    opts.cwd = x->cwd;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.exit_cb = on_exit_cb;
    /* Its own session and process group: a timeout reaches grandchildren. */
    opts.flags = UV_PROCESS_DETACHED;
    rv = uv_spawn(loop, &c->proc, &opts);
    c->proc_open = true; /* uv_spawn initialises the handle even when it fails */
    worker_child_args_free(&child);

    if (rv < 0) {
        c->spawn_error = rv;
        x->spawn_errors++;
        worker_set_error(x->w, "cannot run %s (event on %s): %s", argv0(x), e->topic,
                         uv_strerror(rv));
        uv_close((uv_handle_t *)&c->proc, handle_closed);
        in_close(c);
        stream_close(&c->out);
        stream_close(&c->err);
        return;
    }
    c->pid = c->proc.pid;
    if (uv_read_start((uv_stream_t *)&c->out.pipe, on_alloc, on_read) < 0)
        stream_close(&c->out);
    if (uv_read_start((uv_stream_t *)&c->err.pipe, on_alloc, on_read) < 0)
        stream_close(&c->err);
    uv_buf_t b = uv_buf_init(c->input.data, (unsigned)c->input.len);
    if (uv_write(&c->write, (uv_stream_t *)&c->in, &b, 1, on_written) < 0)
        in_close(c);
    if (x->timeout_ms > 0)
        uv_timer_start(&c->timer, on_timeout, x->timeout_ms, 0);
}

/* pump starts children for queued events while slots are free. */
static void pump(exec_worker *x)
{
    while (!x->stopping && x->children.count < x->max_concurrent) {
        sub_event *e = subscriber_pop(&x->sub);
        if (e == NULL)
            break;
        child_start(x, e);
    }
}

static void on_ready(subscriber *s, void *data)
{
    (void)s;
    pump(data);
}

/* ---- the kind ---------------------------------------------------------------- */

/* find_program tells whether execvp, in the child's environment and cwd,
 * would find prog: a refusal at start names the problem, where the child
 * could only exit 127. Blocks on a few stats, once per start. */
static int find_program(const char *prog, const char *path_env, const char *cwd)
{
    char full[PATH_MAX];
    struct stat st;
    int best = -ENOENT;

    if (strchr(prog, '/') != NULL) {
        if (prog[0] != '/' && cwd != NULL)
            snprintf(full, sizeof(full), "%s/%s", cwd, prog);
        else
            snprintf(full, sizeof(full), "%s", prog);
        if (stat(full, &st) < 0)
            return -errno;
        if (!S_ISREG(st.st_mode))
            return -EACCES;
        return access(full, X_OK) == 0 ? 0 : -errno;
    }
    if (path_env == NULL)
        path_env = "/bin:/usr/bin"; /* glibc's execvp default */
    for (const char *p = path_env;; p++) {
        const char *end = strchr(p, ':');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        snprintf(full, sizeof(full), "%.*s/%s", (int)(len ? len : 1), len ? p : ".", prog);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(full, X_OK) == 0)
                return 0;
            best = -EACCES;
        }
        if (end == NULL)
            break;
        p = end;
    }
    return best;
}

static int exec_start(worker *w, void *state)
{
    exec_worker *x = state;
    const json_t *cfg = worker_config(w), *v;
    const char *path_env;
    int rv;

    x->w = w;
    base_list_init(&x->children);
    x->argv = json_object_get(cfg, "argv");
    x->env = json_object_get(cfg, "env");
    v = json_object_get(cfg, "cwd");
    x->cwd = json_is_string(v) ? json_string_value(v) : NULL;
    v = json_object_get(cfg, "max_concurrent");
    x->max_concurrent = json_is_integer(v) ? (size_t)json_integer_value(v) : 1;
    v = json_object_get(cfg, "timeout_s");
    x->timeout_ms =
        (uint64_t)(json_is_integer(v) ? json_integer_value(v) : EXEC_TIMEOUT_DEFAULT_S) * 1000;
    x->grace_ms = (uint64_t)worker_config_int(w, "stop_timeout_s", EXEC_GRACE_DEFAULT_S) * 1000;

    v = json_object_get(x->env, "PATH");
    path_env = json_is_string(v) ? json_string_value(v) : getenv("PATH");
    if ((rv = find_program(argv0(x), path_env, x->cwd)) < 0) {
        worker_set_error(w, "cannot run argv[0] \"%s\": %s", argv0(x),
                         rv == -ENOENT && strchr(argv0(x), '/') == NULL ? "not found in PATH"
                                                                        : strerror(-rv));
        return rv;
    }
    (void)owner_id(); /* computed on the loop, before the sweep reads it */
    if ((rv = subscriber_start(&x->sub, w, on_ready, x)) < 0)
        return rv;
    /* Last: nothing after it may fail, a failed start must own nothing. */
    sweep_start(x);
    return 0;
}

static void maybe_stopped(exec_worker *x)
{
    if (!x->stopping || x->stopped || x->children.count > 0 || x->sweep != NULL)
        return;
    x->stopped = true;
    base_free(x->codes);
    x->codes = NULL;
    x->n_codes = 0;
    worker_stopped(x->w); /* x is freed after this */
}

static void exec_stop(worker *w, void *state)
{
    exec_worker *x = state;
    exec_child *c;

    (void)w;
    if (x->stopping)
        return;
    x->stopping = true;
    subscriber_stop(&x->sub);
    if (x->children.count > 0)
        worker_log(x->w, BASE_LOG_INFO, "stopping: SIGTERM to %zu running children",
                   x->children.count);
    BASE_LIST_FOREACH(&x->children, exec_child, node, c)
    {
        if (c->pid > 0 && !c->exited) {
            signal_group(c, SIGTERM);
            arm_kill(c);
        }
    }
    if (x->sweep != NULL)
        uv_cancel((uv_req_t *)&x->sweep->req); /* sweep_done follows, either way */
    maybe_stopped(x);
}

static const char *signal_name(int sig, char *buf, size_t size)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {
        {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
        {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
        {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGXCPU, "SIGXCPU"},
        {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].sig == sig)
            return names[i].name;
    if (sig == 0)
        return "signal"; /* beyond SIGNAL_MAX */
    snprintf(buf, size, "SIG%d", sig);
    return buf;
}

static void exec_health(worker *w, void *state, json_t *obj)
{
    exec_worker *x = state;
    json_t *codes = json_object();
    char key[32];

    (void)w;
    subscriber_health(&x->sub, obj);
    json_object_set_new(obj, "running", json_integer((json_int_t)x->children.count));
    json_object_set_new(obj, "timeouts", json_integer((json_int_t)x->timeouts));
    json_object_set_new(obj, "spawn_errors", json_integer((json_int_t)x->spawn_errors));
    json_object_set_new(obj, "output_lines_dropped", json_integer((json_int_t)x->lines_dropped));
    json_object_set_new(obj, "leftovers_killed", json_integer((json_int_t)x->leftovers_killed));
    for (size_t i = 0; codes != NULL && i < x->n_codes; i++) {
        const char *k = key;
        if (x->codes[i].code < SIGNAL_BASE)
            snprintf(key, sizeof(key), "%u", x->codes[i].code);
        else
            k = signal_name((int)(x->codes[i].code - SIGNAL_BASE), key, sizeof(key));
        json_object_set_new(codes, k, json_integer((json_int_t)x->codes[i].n));
    }
    if (codes != NULL)
        json_object_set_new(obj, "exit_codes", codes);
}

const worker_kind worker_exec_kind = {
    .name = "exec",
    .size = sizeof(exec_worker),
    .validate = exec_validate,
    .start = exec_start,
    .stop = exec_stop,
    .health = exec_health,
};
