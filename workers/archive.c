/*
 * The `archive` worker kind (DESIGN.md section 5): appends the events it
 * subscribes to as JSON lines, {"ts","topic","payload"}, to `path`,
 * rotating at `max_bytes` into path.1 ... path.<keep>.
 *
 * Design notes
 * - Two owners, one at a time. Every file operation runs on libuv's thread
 *   pool as one job (uv_queue_work): the job owns `file` (the fd and the
 *   file's size), `job` and `buf` from uv_queue_work until its after-work
 *   callback, and the loop thread does not touch them meanwhile. The loop
 *   keeps its own copies of what health shows (bytes, counts), updated when
 *   a job completes. At most one job is in flight.
 * - Batching: a job takes everything queued in the subscriber (at most
 *   BATCH_EVENTS_MAX events, at most about BATCH_MAX_BYTES of lines; the
 *   rest waits for the next round) as one buffer, written with one write
 *   per file it lands in. Events arriving meanwhile wait in the
 *   subscriber's bounded queue; the next job starts when this one
 *   completes. The batch's events are held until then and counted done or
 *   failed by what reached the file; the buffer and the array are freed
 *   with the job, so an idle worker holds only this struct, its
 *   subscriptions and one fd.
 * - One event, one line: the payload is written as the bytes received,
 *   except that a raw CR or LF in it becomes a space. In JSON text these
 *   bytes can only be whitespace between tokens (never inside a string),
 *   so the value is the same and the line stays one line.
 * - Every line in the file is whole, whatever happens:
 *   . at start (the first job, before any write) a last line without its
 *     '\n' (herdd killed in the middle of a write) is cut off, counted in
 *     torn_lines_cut and logged;
 *   . a write that fails part way (a full disk) is truncated back to the
 *     last whole line it wrote; if that truncation fails too, the next job
 *     cuts the torn line before it writes.
 * - Rotation happens inside a job, between two lines, when the next line
 *   would take a non-empty file over max_bytes: fsync (unless `never`),
 *   path.<keep-1> -> path.<keep> ... path -> path.1 (the oldest is
 *   overwritten; keep 0 removes path), a new path, then an fsync of the
 *   directory (unless `never`). A rename that fails aborts the rotation
 *   and the lines go on into the current file: nothing is lost, the file
 *   grows past max_bytes until a later rotation works.
 * - fsync: `always` after every batch, `rotate` before each rotation and at
 *   stop, `never` never (not even the directory). A new file's directory
 *   entry, and a torn line's cut, are made durable unless `never`.
 * - Errors: failing to open the file or to check its tail at start is fatal
 *   (worker_fail: the supervisor's restart policy retries). Later errors
 *   are counted (write_errors), shown in last_error and logged (the first
 *   of a run of errors, then at most every ERROR_LOG_MS), the batch's
 *   events that did not reach the file counted failed, and the worker goes
 *   on; a later open is retried on the next batch. A batch that succeeds
 *   again clears last_error.
 * - Stop: the runtime has removed the subscriptions; what is queued is
 *   written in the last jobs, the last of which fsyncs (unless `never`) and
 *   closes the file; worker_stopped follows that job's completion, never
 *   while a job runs. Events still queued once stop_timeout_s has passed
 *   are dropped (counted), so that the stop ends before the supervisor
 *   gives up on it and starts another instance on the same file.
 * - Memory: nothing on the pool allocates (file names are built in stack
 *   buffers); the batch is built, and freed, on the loop thread inside
 *   worker_enter, so every byte is charged to the worker.
 */
#include "workers/subscriber.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_MAX_BYTES ((size_t)1 << 20)
#define BATCH_EVENTS_MAX 8192
#define KEEP_DEFAULT 5
#define KEEP_MAX 100
#define MAX_BYTES_DEFAULT ((uint64_t)64 << 20)
#define MAX_BYTES_MIN ((uint64_t)4 << 10)
#define MAX_BYTES_MAX ((uint64_t)1 << 40)
/* room after path for ".<keep>" */
#define PATH_LEN_MAX (PATH_MAX - 8)
/* an upper bound of a line's bytes beyond its topic and payload:
 * {"ts":"<24>","topic":"","payload":}\n */
#define LINE_OVERHEAD 64
#define TAIL_CHUNK 8192
#define ERROR_LOG_MS 10000
#define STOP_TIMEOUT_S_DEFAULT 10

enum archive_fsync { FSYNC_ALWAYS, FSYNC_ROTATE, FSYNC_NEVER };

typedef struct archive_config {
    const char *path; /* borrowed from the worker's config */
    uint64_t max_bytes;
    int keep;
    enum archive_fsync fsync;
} archive_config;

/* The file, owned by the job in flight (or by the loop when none is). */
typedef struct archive_file {
    int fd;          /* -1: not open */
    uint64_t bytes;  /* its size */
    bool check_tail; /* cut a torn last line before the next write */
} archive_file;

/* Where an error happened: the file, path.N, or the file's directory. */
#define WHERE_DIR (-1)

/* One job: what it is asked to do, then what it did. */
typedef struct archive_job {
    const char *data; /* whole lines, each ending in '\n' (the loop's buf) */
    size_t len;
    bool prepare; /* the first job: open, cut a torn line */
    bool close;   /* the last job: fsync (unless never), close */
    /* results */
    size_t lines_ok; /* lines of data now in a file, from the first */
    uint64_t rotations, torn_cut, torn_bytes;
    unsigned n_errors;
    int err;          /* the first error: -errno, or 0 when step says it all */
    const char *step; /* what failed: "write", "rename", ... */
    int where;        /* on which file: 0 path, N path.N, WHERE_DIR */
} archive_job;

typedef struct archive {
    worker *w;
    subscriber sub;
    archive_config cfg;
    archive_file file;
    archive_job job;
    uv_work_t work;
    base_buf buf;      /* the job's lines */
    sub_event **batch; /* the job's events, in line order */
    size_t n_batch;
    bool busy;   /* a job is in flight */
    bool broken; /* the start job failed: nothing can be written */
    bool stopping, stopped;
    bool in_error; /* the last job with data had an error */
    uint64_t error_logged_ms;
    uint64_t stop_deadline_ms; /* loop time by which the stop gives up writing */
    /* the loop's copies, for health */
    uint64_t bytes, rotations, torn_lines_cut, write_errors;
} archive;

static const char *const archive_keys[] = {"subscribe", "path", "max_bytes", "keep", "fsync", NULL};

/* ---- config ---------------------------------------------------------------- */

static int parse_config(const json_t *cfg, const char *path, archive_config *out, char *err,
                        size_t err_size)
{
    const json_t *v;
    uint64_t n;

    out->path = NULL;
    out->max_bytes = MAX_BYTES_DEFAULT;
    out->keep = KEEP_DEFAULT;
    out->fsync = FSYNC_ROTATE;
    v = json_object_get(cfg, "path");
    if (v == NULL)
        return base_errf(err, err_size,
                         "%s.path: required, the archive file (such as "
                         "\"/var/lib/herd/events.jsonl\")",
                         path);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v) ||
        json_string_length(v) > PATH_LEN_MAX ||
        json_string_value(v)[json_string_length(v) - 1] == '/')
        return base_errf(err, err_size,
                         "%s.path: expected a file path (not a directory, at most %d bytes)", path,
                         PATH_LEN_MAX);
    out->path = json_string_value(v);
    if ((v = json_object_get(cfg, "max_bytes")) != NULL) {
        if (base_parse_size(v, &n) < 0 || n < MAX_BYTES_MIN || n > MAX_BYTES_MAX)
            return base_errf(err, err_size,
                             "%s.max_bytes: expected a size such as \"64M\" (4K to 1T)", path);
        out->max_bytes = n;
    }
    if ((v = json_object_get(cfg, "keep")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > KEEP_MAX)
            return base_errf(err, err_size, "%s.keep: expected an integer from 0 to %d", path,
                             KEEP_MAX);
        out->keep = (int)json_integer_value(v);
    }
    if ((v = json_object_get(cfg, "fsync")) != NULL) {
        const char *s = json_string_value(v);
        if (s != NULL && strcmp(s, "always") == 0)
            out->fsync = FSYNC_ALWAYS;
        else if (s != NULL && strcmp(s, "rotate") == 0)
            out->fsync = FSYNC_ROTATE;
        else if (s != NULL && strcmp(s, "never") == 0)
            out->fsync = FSYNC_NEVER;
        else
            return base_errf(err, err_size,
                             "%s.fsync: expected \"always\", \"rotate\" or \"never\"", path);
    }
    return 0;
}

static int archive_validate(const json_t *cfg, const char *path, char *err, size_t err_size)
{
    archive_config ac;
    int rc = worker_check_keys(cfg, path, archive_keys, err, err_size);

    if (rc == 0)
        rc = subscriber_validate(cfg, path, err, err_size);
    if (rc == 0)
        rc = parse_config(cfg, path, &ac, err, err_size);
    return rc;
}

static size_t archive_paths(const json_t *cfg, worker_path *out, size_t max)
{
    const char *path = json_string_value(json_object_get(cfg, "path"));

    if (path == NULL || max == 0)
        return 0;
    out[0] = (worker_path){path, true};
    return 1;
}

/* ---- the job, on the thread pool --------------------------------------------- */

/* file_name writes the name of path.N (N 0: path itself) into out. */
static void file_name(const archive_config *c, int n, char out[PATH_MAX])
{
    if (n == 0)
        snprintf(out, PATH_MAX, "%s", c->path);
    else
        snprintf(out, PATH_MAX, "%s.%d", c->path, n);
}

/* dir_name writes the directory of path into out ("." when it has none). */
static void dir_name(const archive_config *c, char out[PATH_MAX])
{
    const char *slash = strrchr(c->path, '/');

    if (slash == NULL)
        snprintf(out, PATH_MAX, ".");
    else if (slash == c->path)
        snprintf(out, PATH_MAX, "/");
    else
        snprintf(out, PATH_MAX, "%.*s", (int)(slash - c->path), c->path);
}

/* job_error records an error (the first one is kept) and returns -1. */
static int job_error(archive_job *j, int err, const char *step, int where)
{
    if (j->n_errors++ == 0) {
        j->err = err;
        j->step = step;
        j->where = where;
    }
    return -1;
}

static int file_sync(archive *a)
{
    if (a->cfg.fsync == FSYNC_NEVER || a->file.fd < 0 || fsync(a->file.fd) == 0)
        return 0;
    return job_error(&a->job, -errno, "fsync", 0);
}

static void sync_dir(archive *a)
{
    char dir[PATH_MAX];
    int rc;

    if (a->cfg.fsync == FSYNC_NEVER)
        return;
    dir_name(&a->cfg, dir);
    if ((rc = base_fsync_dir(dir)) < 0)
        job_error(&a->job, rc, "fsync", WHERE_DIR);
}

/* open_file opens path, or creates it (and its directory). */
static int open_file(archive *a)
{
    /* O_NOFOLLOW: whoever can write in the archive's directory could
     * otherwise aim herdd's appends at any file herdd may write (another
     * worker's jobs.json) with a symlink in place of the file. */
    const int flags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
    char dir[PATH_MAX];
    struct stat st;
    bool created = false;
    int fd = open(a->cfg.path, flags), rc;

    if (fd < 0 && errno == ENOENT) {
        dir_name(&a->cfg, dir);
        if ((rc = base_mkdir_p(dir, 0750)) < 0)
            return job_error(&a->job, rc, "create", WHERE_DIR);
        fd = open(a->cfg.path, flags | O_CREAT, 0640);
        created = true;
    }
    if (fd < 0 && errno == ELOOP)
        return job_error(&a->job, 0, "is a symbolic link; refusing it (name the real file)", 0);
    if (fd < 0)
        return job_error(&a->job, -errno, "open", 0);
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return job_error(&a->job, rc, "stat", 0);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return job_error(&a->job, 0, "not a regular file", 0);
    }
    a->file.fd = fd;
    a->file.bytes = (uint64_t)st.st_size;
    if (created)
        sync_dir(a);
    return 0;
}

/* read_at reads n bytes at off, all of them. */
static int read_at(int fd, char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* cut_torn truncates the file after its last '\n' when its last byte is
 * not one: what a write cut short (herdd killed, a full disk) left. */
static int cut_torn(archive *a)
{
    archive_file *f = &a->file;
    char chunk[TAIL_CHUNK];
    struct stat st;
    off_t end, keep = 0;
    int rc;

    if (fstat(f->fd, &st) < 0)
        return job_error(&a->job, -errno, "stat", 0);
    f->bytes = (uint64_t)st.st_size;
    if (st.st_size == 0)
        goto whole;
    if ((rc = read_at(f->fd, chunk, 1, st.st_size - 1)) < 0)
        return job_error(&a->job, rc, "read", 0);
    if (chunk[0] == '\n')
        goto whole;
    for (end = st.st_size - 1; end > 0;) {
        size_t n = end < TAIL_CHUNK ? (size_t)end : TAIL_CHUNK;
        const char *nl;
        if ((rc = read_at(f->fd, chunk, n, end - (off_t)n)) < 0)
            return job_error(&a->job, rc, "read", 0);
        if ((nl = memrchr(chunk, '\n', n)) != NULL) {
            keep = end - (off_t)n + (nl - chunk) + 1;
            break;
        }
        end -= (off_t)n;
    }
    if (ftruncate(f->fd, keep) < 0)
        return job_error(&a->job, -errno, "truncate", 0);
    a->job.torn_cut++;
    a->job.torn_bytes += (uint64_t)(st.st_size - keep);
    f->bytes = (uint64_t)keep;
    file_sync(a);
whole:
    f->check_tail = false;
    return 0;
}

/* rotate: path -> path.1 -> ... -> path.<keep>, then a new path. A rename
 * that fails leaves the current file open (its lines go on there). */
static int rotate(archive *a)
{
    archive_file *f = &a->file;
    char from[PATH_MAX], to[PATH_MAX];

    file_sync(a);
    if (a->cfg.keep == 0 && unlink(a->cfg.path) < 0 && errno != ENOENT)
        return job_error(&a->job, -errno, "remove", 0);
    for (int i = a->cfg.keep; i >= 1; i--) {
        file_name(&a->cfg, i - 1, from);
        file_name(&a->cfg, i, to);
        /* a missing name is a gap in the set (or path removed by hand) */
        if (rename(from, to) < 0 && errno != ENOENT)
            return job_error(&a->job, -errno, "rename", i - 1);
    }
    close(f->fd); /* path.1 now, or unlinked: everything in it is written */
    f->fd = -1;
    f->bytes = 0;
    a->job.rotations++;
    if (open_file(a) < 0)
        return -1;
    sync_dir(a);
    return 0;
}

/* count_lines is the number of '\n' in p[0..n). */
static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 0;
    const char *end = p + n;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        lines++;
        p++;
    }
    return lines;
}

/* write_lines appends n bytes of whole lines; a write cut short is
 * truncated back to its last whole line. */
static int write_lines(archive *a, const char *p, size_t n)
{
    archive_file *f = &a->file;
    size_t written, whole;
    int rc = base_write_counted(f->fd, p, n, &written);

    if (rc == 0) {
        f->bytes += n;
        a->job.lines_ok += count_lines(p, n);
        return 0;
    }
    for (whole = written; whole > 0 && p[whole - 1] != '\n'; whole--)
        ;
    if (whole < written && ftruncate(f->fd, (off_t)(f->bytes + whole)) < 0)
        f->check_tail = true; /* the next job cuts it */
    f->bytes += whole;
    a->job.lines_ok += count_lines(p, whole);
    return job_error(&a->job, rc, "write", 0);
}

/* write_batch writes the job's lines, rotating between two lines when the
 * next one would take a non-empty file over max_bytes. */
static void write_batch(archive *a)
{
    archive_file *f = &a->file;
    const char *p = a->job.data, *end = p + a->job.len, *seg = p;
    bool may_rotate = true;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        HERD_ASSERT(nl != NULL);
        uint64_t size = f->bytes + (uint64_t)(p - seg), line = (uint64_t)(nl + 1 - p);
        if (may_rotate && size > 0 && size + line > a->cfg.max_bytes) {
            if (p > seg && write_lines(a, seg, (size_t)(p - seg)) < 0)
                return;
            seg = p;
            if (rotate(a) < 0) {
                may_rotate = false; /* once a job: the next one tries again */
                if (f->fd < 0)
                    return;
            }
        }
        p = nl + 1;
    }
    if (p > seg)
        write_lines(a, seg, (size_t)(p - seg));
}

static void run_job(uv_work_t *req)
{
    archive *a = req->data;
    archive_job *j = &a->job;
    archive_file *f = &a->file;

    if (f->fd < 0 && (j->prepare || j->len > 0) && open_file(a) < 0)
        goto close;
    if (f->fd >= 0 && f->check_tail && cut_torn(a) < 0 && j->prepare) {
        close(f->fd); /* the worker fails: it writes nothing */
        f->fd = -1;
        goto close;
    }
    if (f->fd >= 0 && j->len > 0 && !f->check_tail) {
        write_batch(a);
        if (a->cfg.fsync == FSYNC_ALWAYS)
            file_sync(a);
    }
close:
    if (j->close && f->fd >= 0) {
        file_sync(a);
        close(f->fd);
        f->fd = -1;
    }
}

/* ---- the loop's side ------------------------------------------------------ */

static void after_job(uv_work_t *req, int status);

static void finish(archive *a)
{
    const subscriber *s = &a->sub;

    worker_log(a->w, BASE_LOG_INFO,
               "closed %s: %llu events received, %llu written, %llu failed, %llu dropped",
               a->cfg.path, (unsigned long long)s->received, (unsigned long long)s->done,
               (unsigned long long)s->failed, (unsigned long long)s->dropped);
    a->stopped = true;
    subscriber_stop(&a->sub);
    worker_stopped(a->w); /* the state may be freed from here on */
}

/* fail_queued counts every queued event failed (nothing can write them). */
static void fail_queued(archive *a)
{
    sub_event *e;

    while ((e = subscriber_pop(&a->sub)) != NULL)
        subscriber_done(&a->sub, e, false);
}

/* one_line turns a payload's raw CR and LF (whitespace, in JSON) into
 * spaces, so that an event is one line. */
static void one_line(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n' || p[i] == '\r')
            p[i] = ' ';
}

/* build_batch takes what is queued, within the bounds, into batch and buf. */
static int build_batch(archive *a)
{
    size_t depth = subscriber_depth(&a->sub);
    size_t max = depth < BATCH_EVENTS_MAX ? depth : BATCH_EVENTS_MAX;
    const sub_event *next;

    if (max == 0)
        return 0;
    a->batch = base_malloc(max * sizeof(*a->batch));
    if (a->batch == NULL)
        return -ENOMEM;
    while (a->n_batch < max && (next = subscriber_peek(&a->sub)) != NULL) {
        size_t line = next->topic_len + next->payload_len + LINE_OVERHEAD, start = a->buf.len;
        if (a->n_batch > 0 && a->buf.len + line > BATCH_MAX_BYTES)
            break; /* the next round's */
        if (base_buf_reserve(&a->buf, line) < 0)
            return a->n_batch > 0 ? 0 : -ENOMEM;
        sub_event *e = subscriber_pop(&a->sub);
        if (subscriber_event_json(e, &a->buf) < 0 || base_buf_add(&a->buf, "\n", 1) < 0) {
            a->buf.len = start;
            a->buf.data[start] = '\0';
            subscriber_done(&a->sub, e, false);
            return a->n_batch > 0 ? 0 : -ENOMEM;
        }
        one_line(a->buf.data + start, a->buf.len - 1 - start);
        a->batch[a->n_batch++] = e;
    }
    return 0;
}

static void batch_free(archive *a)
{
    base_free(a->batch);
    a->batch = NULL;
    a->n_batch = 0;
    base_buf_free(&a->buf);
}

static void queue_job(archive *a)
{
    int rc;

    a->work.data = a;
    a->busy = true;
    rc = uv_queue_work(worker_loop(a->w), &a->work, run_job, after_job);
    /* only a NULL work callback fails */
    HERD_ASSERT(rc == 0);
    (void)rc;
}

/* kick starts the next job when none is in flight: the next batch, the
 * closing job once stopping and drained, or the end of the stop. */
static void kick(archive *a)
{
    sub_event *e;
    bool close;

    if (a->busy || a->stopped)
        return;
    if (a->broken) {
        if (a->stopping) {
            fail_queued(a);
            finish(a);
        }
        return;
    }
    if (a->stopping && subscriber_depth(&a->sub) > 0 &&
        uv_now(worker_loop(a->w)) >= a->stop_deadline_ms) {
        worker_log(a->w, BASE_LOG_WARN,
                   "stopping: %zu events not written within stop_timeout_s: dropped",
                   subscriber_depth(&a->sub));
        while ((e = subscriber_pop(&a->sub)) != NULL)
            subscriber_drop(&a->sub, e);
    }
    if (build_batch(a) < 0) {
        batch_free(a);
        worker_log(a->w, BASE_LOG_ERROR, "out of memory building a batch of %zu events",
                   subscriber_depth(&a->sub));
        worker_fail(a->w, "out of memory building a batch");
        if (!a->stopping)
            return;
        fail_queued(a); /* the closing job allocates nothing */
    }
    close = a->stopping && subscriber_depth(&a->sub) == 0;
    if (a->n_batch == 0 && !close)
        return;
    if (a->n_batch == 0 && a->file.fd < 0) {
        finish(a);
        return;
    }
    memset(&a->job, 0, sizeof(a->job));
    a->job.data = a->buf.data;
    a->job.len = a->buf.len;
    a->job.close = close;
    queue_job(a);
}

static void on_ready(subscriber *s, void *data)
{
    kick(data);
}

/* report_error shows a job's errors in last_error and, the first of a run
 * and then at most every ERROR_LOG_MS, in the log. */
static void report_error(archive *a, const archive_job *j, size_t n_failed)
{
    char what[PATH_MAX + 32], more[96] = "";
    uint64_t now = uv_now(worker_loop(a->w));

    if (j->where == WHERE_DIR)
        snprintf(what, sizeof(what), "the directory of %s", a->cfg.path);
    else
        file_name(&a->cfg, j->where, what);
    if (n_failed > 0 || j->n_errors > 1)
        snprintf(more, sizeof(more), " (%u errors; %zu events not written)", j->n_errors, n_failed);
    if (j->err != 0)
        worker_set_error(a->w, "%s %s: %s%s", j->step, what, strerror(-j->err), more);
    else
        worker_set_error(a->w, "%s: %s%s", what, j->step, more);
    if (!a->in_error || now - a->error_logged_ms >= ERROR_LOG_MS) {
        worker_log(a->w, BASE_LOG_ERROR, "%s", worker_last_error(a->w));
        a->error_logged_ms = now;
    }
    a->in_error = true;
}

static void after_job(uv_work_t *req, int status)
{
    archive *a = req->data;
    archive_job *j = &a->job;
    worker *prev = worker_enter(a->w);
    size_t n_failed = 0;

    a->busy = false;
    a->bytes = a->file.bytes;
    a->rotations += j->rotations;
    a->torn_lines_cut += j->torn_cut;
    a->write_errors += j->n_errors;
    if (j->torn_cut > 0)
        worker_log(a->w, BASE_LOG_WARN,
                   "cut a torn last line (%llu bytes) off %s: a write was cut short "
                   "(herdd killed, or the disk full)",
                   (unsigned long long)j->torn_bytes, a->cfg.path);
    for (size_t i = 0; i < a->n_batch; i++) {
        n_failed += i >= j->lines_ok;
        subscriber_done(&a->sub, a->batch[i], i < j->lines_ok);
    }
    if (j->n_errors > 0) {
        report_error(a, j, n_failed);
    } else if (a->in_error && a->n_batch > 0) {
        a->in_error = false;
        worker_set_error(a->w, "%s", "");
        worker_log(a->w, BASE_LOG_INFO, "writing to %s again", a->cfg.path);
    }
    batch_free(a);
    if (j->prepare) {
        if (a->file.fd < 0) {
            /* a copy: worker_fail writes last_error, which is what says why */
            char why[512];
            snprintf(why, sizeof(why), "%s",
                     worker_last_error(a->w) != NULL ? worker_last_error(a->w)
                                                     : "cannot open the archive file");
            a->broken = true;
            worker_fail(a->w, "%s", why);
        } else {
            worker_log(a->w, BASE_LOG_INFO, "appending to %s (%llu bytes)", a->cfg.path,
                       (unsigned long long)a->bytes);
        }
    }
    kick(a); /* may finish the stop: a is not touched after it */
    worker_leave(prev);
}

/* ---- start, stop, health ----------------------------------------------------- */

static int archive_start(worker *w, void *state)
{
    archive *a = state;
    char err[512];
    int rc;

    a->w = w;
    a->file.fd = -1;
    a->file.check_tail = true;
    if ((rc = parse_config(worker_config(w), worker_name(w), &a->cfg, err, sizeof(err))) < 0) {
        worker_set_error(w, "%s", err);
        return rc;
    }
    if ((rc = subscriber_start(&a->sub, w, on_ready, a)) < 0)
        return rc;
    /* the file is opened and its tail checked before anything is written;
     * events that come meanwhile wait in the queue */
    memset(&a->job, 0, sizeof(a->job));
    a->job.prepare = true;
    queue_job(a);
    return 0;
}

/* stop_timeout_ms is the worker's stop_timeout_s (checked by the
 * supervisor), in ms. */
static uint64_t stop_timeout_ms(const worker *w)
{
    return (uint64_t)worker_config_int(w, "stop_timeout_s", STOP_TIMEOUT_S_DEFAULT) * 1000;
}

static void archive_stop(worker *w, void *state)
{
    archive *a = state;

    if (a->stopping)
        return;
    a->stopping = true;
    /* the supervisor abandons a stop that outlasts stop_timeout_s (plus a
     * grace): what is not written by then is dropped, and the file closed */
    a->stop_deadline_ms = uv_now(worker_loop(w)) + stop_timeout_ms(w);
    if (subscriber_depth(&a->sub) > 0 || a->n_batch > 0)
        worker_log(w, BASE_LOG_INFO, "stopping: writing the %zu events queued and %zu in flight",
                   subscriber_depth(&a->sub), a->n_batch);
    kick(a);
}

static void archive_health(worker *w, void *state, json_t *obj)
{
    archive *a = state;

    subscriber_health(&a->sub, obj);
    json_object_set_new(obj, "in_flight", json_integer((json_int_t)a->n_batch));
    json_object_set_new(obj, "path", json_string(a->cfg.path));
    json_object_set_new(obj, "bytes", json_integer((json_int_t)a->bytes));
    json_object_set_new(obj, "rotations", json_integer((json_int_t)a->rotations));
    json_object_set_new(obj, "torn_lines_cut", json_integer((json_int_t)a->torn_lines_cut));
    json_object_set_new(obj, "write_errors", json_integer((json_int_t)a->write_errors));
}

const worker_kind worker_archive_kind = {
    .name = "archive",
    .size = sizeof(archive),
    .validate = archive_validate,
    .start = archive_start,
    .stop = archive_stop,
    .health = archive_health,
    .paths = archive_paths,
};
