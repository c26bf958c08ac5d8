/*
 * The `process` kind: runs argv (no shell) as a child process, the
 * isolation fallback for a worker that needs its own address space.
 *
 * Design notes:
 * - The child is started through the host binary's exec trampoline
 *   (worker_exec_main: `/proc/self/exe --worker-exec PPID -- argv...`), which
 *   sets PR_SET_PDEATHSIG before exec: if herdd dies, even by SIGKILL, the
 *   kernel sends the child SIGTERM. libuv's spawn has no pre-exec hook.
 * - The child leads its own session and process group (pgid = its pid),
 *   so everything it forks is signalled with it: at stop, and as soon as the
 *   leader exits by itself (a background `sleep &` would otherwise outlive
 *   it, holding the output pipes open). The group is signalled only while
 *   some member may live (the leader, or a pipe not yet at EOF), never after,
 *   so a recycled pid is never hit.
 * - stdout and stderr are read line by line into fixed buffers and logged
 *   with the worker's name; lines over LINE_MAX_BYTES are split, and more
 *   than LINES_PER_S lines a second are counted, not logged: a flooding
 *   child costs neither memory nor an unbounded log.
 * - Stop: SIGTERM to the group, then at stop_timeout_s SIGKILL to it and the
 *   pipes closed without waiting for EOF: a stop always ends within
 *   stop_timeout_s (plus the reaping of the leader). worker_stopped once the
 *   process, both pipes and the timer are closed.
 * - The child's resident set (the leader's: what it forks is not counted) is
 *   read every MEM_CHECK_MS (1 s) and reported with worker_set_child_memory
 *   (child_rss_bytes, apart from heap_bytes); the supervisor's 1 s tick
 *   checks the two together against memory_high and memory_max. The two
 *   timers are not in phase, so a crossing is acted on within 2 s. Once
 *   the child has exited the figure is 0, and a pid that may be recycled is
 *   never read; during the stop it is not read either (the timer carries
 *   the SIGKILL deadline then).
 */
#include "workers/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024
#define LINES_PER_S 200
#define MEM_CHECK_MS 1000
#define DEFAULT_STOP_TIMEOUT_S 10

typedef struct out_stream {
    struct process *p;
    uv_pipe_t pipe;
    const char *label;
    char line[LINE_MAX_BYTES];
    size_t len;
    int open;
} out_stream;

typedef struct process {
    worker *w;
    uv_process_t proc;
    uv_timer_t timer; /* memory checks, then the SIGKILL deadline */
    out_stream out, err;
    int proc_open, timer_open, exited, stopping, killed;
    int pid;
    uint64_t window_ms;
    unsigned lines_in_window;
    uint64_t suppressed;
} process;

static const char *const process_keys[] = {"argv", "env", "cwd", NULL};

static int process_validate(const json_t *cfg, const char *path, char *err, size_t err_size)
{
    json_t *argv = json_object_get(cfg, "argv"), *env = json_object_get(cfg, "env"), *v;
    json_t *cwd = json_object_get(cfg, "cwd");
    const char *key;
    size_t i;
    int rv = worker_check_keys(cfg, path, process_keys, err, err_size);

    if (rv < 0)
        return rv;
    if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > 1024) {
        snprintf(err, err_size, "%s.argv: expected a non-empty array of strings", path);
        return -EINVAL;
    }
    json_array_foreach(argv, i, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            (i == 0 && json_string_length(v) == 0)) {
            snprintf(err, err_size, "%s.argv[%zu]: expected a string without NUL bytes", path, i);
            return -EINVAL;
        }
    }
    if (env != NULL) {
        if (!json_is_object(env)) {
            snprintf(err, err_size, "%s.env: expected an object of strings", path);
            return -EINVAL;
        }
        json_object_foreach(env, key, v)
        {
            if (!json_is_string(v) || *key == '\0' || strchr(key, '=') != NULL ||
                strlen(json_string_value(v)) != json_string_length(v)) {
                snprintf(err, err_size, "%s.env.%.64s: expected a string (names without '=')", path,
                         key);
                return -EINVAL;
            }
        }
    }
    if (cwd != NULL && (!json_is_string(cwd) || json_string_length(cwd) == 0)) {
        snprintf(err, err_size, "%s.cwd: expected a directory path", path);
        return -EINVAL;
    }
    struct stat st;
    if (cwd != NULL) {
        int why = stat(json_string_value(cwd), &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (why != 0) {
            snprintf(err, err_size, "%s.cwd: \"%.200s\": %s", path, json_string_value(cwd),
                     strerror(why));
            return -EINVAL;
        }
    }
    return 0;
}

static uint64_t now_ms(process *p)
{
    return uv_now(worker_loop(p->w));
}

static void log_line(out_stream *s)
{
    process *p = s->p;
    uint64_t now = now_ms(p);

    if (now - p->window_ms >= 1000) {
        if (p->suppressed)
            worker_log(p->w, BASE_LOG_WARN, "%llu output lines not logged (over %d/s)",
                       (unsigned long long)p->suppressed, LINES_PER_S);
        p->window_ms = now;
        p->lines_in_window = 0;
        p->suppressed = 0;
    }
    if (++p->lines_in_window > LINES_PER_S)
        p->suppressed++;
    else
        worker_log(p->w, BASE_LOG_INFO, "%s: %.*s", s->label, (int)s->len, s->line);
    s->len = 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[16384]; /* loop thread only; consumed before the next read */
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void timer_closed(uv_handle_t *h);

/* maybe_done: once stopping and the process and both pipes are gone, the
 * timer is closed, then the stop is over. */
static void maybe_done(process *p)
{
    if (!p->stopping || p->proc_open || p->out.open || p->err.open)
        return;
    if (p->timer_open) {
        if (!uv_is_closing((uv_handle_t *)&p->timer))
            uv_close((uv_handle_t *)&p->timer, timer_closed);
        return;
    }
    worker_stopped(p->w);
}

/* group_alive: some member of the child's group may still run. */
static bool group_alive(const process *p)
{
    return !p->exited || p->out.open || p->err.open;
}

static void signal_group(process *p, int sig)
{
    if (p->pid <= 0 || !group_alive(p))
        return;
    kill(-p->pid, sig);
    if (!p->exited)
        kill(p->pid, sig); /* in case it left its group */
}

static void stream_close(out_stream *s);

static void stream_closed(uv_handle_t *h)
{
    out_stream *s = h->data;
    s->open = 0;
    maybe_done(s->p);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    out_stream *s = st->data;
    worker *prev = worker_enter(s->p->w);

    if (n < 0) {
        stream_close(s);
        worker_leave(prev);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            log_line(s);
            continue;
        }
        s->line[s->len++] = c;
        if (s->len == sizeof(s->line))
            log_line(s);
    }
    worker_leave(prev);
}

static void stream_close(out_stream *s)
{
    if (!s->open || uv_is_closing((uv_handle_t *)&s->pipe))
        return;
    if (s->len > 0)
        log_line(s);
    uv_close((uv_handle_t *)&s->pipe, stream_closed);
}

/* child_rss reads /proc/PID/statm with read(2) into the stack, not stdio:
 * every process worker polls once a second, and a FILE's 4 KiB buffer
 * allocated and freed each time by hundreds of them kept pages of holes
 * resident in the heap (tests/integration/mem_truth.sh). */
static uint64_t child_rss(int pid)
{
    char path[64], buf[128];
    unsigned long long pages_total, pages_resident;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/statm", pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &pages_total, &pages_resident) != 2)
        return 0;
    return pages_resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void on_mem_check(uv_timer_t *t)
{
    process *p = t->data;
    if (!p->exited)
        worker_set_child_memory(p->w, child_rss(p->pid));
}

static void timer_closed(uv_handle_t *h)
{
    process *p = h->data;
    p->timer_open = 0;
    maybe_done(p);
}

static void proc_closed(uv_handle_t *h)
{
    process *p = h->data;
    p->proc_open = 0;
    maybe_done(p);
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
    process *p = proc->data;

    p->exited = 1;
    worker_set_pid(p->w, 0);
    worker_set_child_memory(p->w, 0); /* its pages are gone with it */
    uv_close((uv_handle_t *)&p->proc, proc_closed);
    /* What the leader left running goes with it (the stop's deadline, or
     * the one the stop that follows sets, sends SIGKILL). */
    signal_group(p, SIGTERM);
    if (p->stopping)
        return;
    if (term_signal)
        worker_exit(p->w, 128 + term_signal, "process %d killed by signal %d (%s)", p->pid,
                    term_signal, strsignal(term_signal));
    else if (status != 0)
        worker_exit(p->w, (int)status, "process %d exited with status %lld", p->pid,
                    (long long)status);
    else
        worker_exit(p->w, 0, "process %d exited cleanly", p->pid);
}

static int stop_timeout_s(const worker *w)
{
    return (int)worker_config_int(w, "stop_timeout_s", DEFAULT_STOP_TIMEOUT_S);
}

static int process_start(worker *w, void *state)
{
    process *p = state;
    const json_t *cfg = worker_config(w);
    json_t *cwd = json_object_get(cfg, "cwd");
    uv_process_options_t opts = {0};
    uv_stdio_container_t stdio[3];
    char exe[PATH_MAX];
    worker_child_args child;
    ssize_t n;
    int rv;

    p->w = w;
    p->out.p = p->err.p = p;
    p->out.label = "stdout";
    p->err.label = "stderr";
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0) {
        worker_set_error(w, "cannot find the host binary: %s", strerror(errno));
        return -errno;
    }
    exe[n] = '\0';
    const char *const set[] = {"HERD_RUNTIME_DIR", worker_runtime_dir(w), "HERD_WORKER",
                               worker_name(w), NULL};
    if ((rv = worker_child_args_make(json_object_get(cfg, "argv"), set, json_object_get(cfg, "env"),
                                     &child)) < 0) {
        worker_set_error(w, "out of memory");
        return rv;
    }
    uv_pipe_init(worker_loop(w), &p->out.pipe, 0);
    uv_pipe_init(worker_loop(w), &p->err.pipe, 0);
    p->out.pipe.data = &p->out;
    p->err.pipe.data = &p->err;
    p->out.open = p->err.open = 1;
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&p->out.pipe;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&p->err.pipe;
    opts.file = exe;
    opts.args = child.args;
    opts.env = child.envp;
    opts.cwd = json_is_string(cwd) ? json_string_value(cwd) : NULL;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.exit_cb = on_exit_cb;
    /* Its own process group (setsid), so stop reaches grandchildren too. */
    opts.flags = UV_PROCESS_DETACHED;
    p->proc.data = p;
    rv = uv_spawn(worker_loop(w), &p->proc, &opts);

    worker_child_args_free(&child);

    if (rv < 0) {
        worker_set_error(w, "cannot start %s: %s",
                         json_string_value(json_array_get(json_object_get(cfg, "argv"), 0)),
                         uv_strerror(rv));
        uv_close((uv_handle_t *)&p->out.pipe, NULL);
        uv_close((uv_handle_t *)&p->err.pipe, NULL);
        /* uv_spawn initialized the process handle even on failure. */
        uv_close((uv_handle_t *)&p->proc, NULL);
        p->out.open = p->err.open = 0;
        return rv;
    }
    p->proc_open = 1;
    p->pid = p->proc.pid;
    worker_set_pid(w, p->pid);
    uv_read_start((uv_stream_t *)&p->out.pipe, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&p->err.pipe, on_alloc, on_read);
    uv_timer_init(worker_loop(w), &p->timer);
    p->timer.data = p;
    p->timer_open = 1;
    uv_timer_start(&p->timer, on_mem_check, MEM_CHECK_MS, MEM_CHECK_MS);
    p->window_ms = now_ms(p);
    worker_log(w, BASE_LOG_INFO, "started process %d", p->pid);
    return 0;
}

static void on_kill_deadline(uv_timer_t *t)
{
    process *p = t->data;

    if (group_alive(p) && !p->killed) {
        worker_log(p->w, BASE_LOG_WARN,
                   "process %d or what it started still running %d s after SIGTERM: SIGKILL",
                   p->pid, stop_timeout_s(p->w));
        signal_group(p, SIGKILL);
        p->killed = 1;
    }
    /* A process that left the group may hold the pipes open for ever: the
     * stop does not wait for their EOF. */
    stream_close(&p->out);
    stream_close(&p->err);
    maybe_done(p);
}

static void process_stop(worker *w, void *state)
{
    process *p = state;

    p->stopping = 1;
    if (p->timer_open && group_alive(p)) {
        signal_group(p, SIGTERM);
        uv_timer_stop(&p->timer);
        uv_timer_start(&p->timer, on_kill_deadline, (uint64_t)stop_timeout_s(w) * 1000, 0);
    }
    maybe_done(p);
}

static void process_health(worker *w, void *state, json_t *obj)
{
    process *p = state;
    json_object_set_new(obj, "rss_bytes",
                        json_integer(p->exited ? 0 : (json_int_t)child_rss(p->pid)));
}

const worker_kind worker_process_kind = {
    .name = "process",
    .size = sizeof(process),
    .validate = process_validate,
    .start = process_start,
    .stop = process_stop,
    .health = process_health,
};

int worker_exec_main(int argc, char **argv)
{
    char *end;
    long ppid;

    if (argc < 5 || strcmp(argv[1], "--worker-exec") != 0 || strcmp(argv[3], "--") != 0)
        return -1;
    ppid = strtol(argv[2], &end, 10);
    if (*end != '\0' || ppid <= 1)
        _exit(127);
    /* If herdd dies, even by SIGKILL, the kernel sends us SIGTERM. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != (pid_t)ppid)
        _exit(127); /* herdd already gone between fork and here */
    execvp(argv[4], argv + 4);
    fprintf(stderr, "herdd: cannot run %s: %s\n", argv[4], strerror(errno));
    _exit(127);
}
