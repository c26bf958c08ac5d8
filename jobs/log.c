/*
 * Sidecar logs: <state_dir>/logs/<job_id>.log, the exact bytes a job wrote.
 *
 * Design notes:
 *  - A line ends at each '\n' and each '\r' (so "\r\n" is two terminators);
 *    terminators are kept byte for byte. A trailing unterminated piece
 *    counts as a line for tails and compaction.
 *  - While a job runs, its output goes to three bounded buffers of its run:
 *    `logbuf` (written to the sidecar with write(2) on the loop when it
 *    reaches JOBS__LOG_BUF_BYTES or every 200 ms; appends land in the page
 *    cache, the fsync happens once at the end on the thread pool), `pubbuf`
 *    (published every 50 ms, whole lines, or at once at 64 KiB) and
 *    `inflight` (the last inflight_lines lines, trimmed to half when
 *    crossed, serving `tail_lines` while the job runs).
 *  - Offsets (published and in `output`) are byte offsets in the sidecar as
 *    it is now. Compaction rewrites the sidecar (temp file, rename) as a
 *    trim notice line plus the last lines, so offsets restart lower after
 *    it; readers that page by offset see `offset` jump back.
 *  - A sidecar write error is logged once per job, recorded as the
 *    instance's last_write_error, and the output is dropped from the
 *    sidecar; the job itself goes on and its counters stay exact. The
 *    bytes that did not reach the sidecar are counted in log_lost_bytes
 *    and the job's error says so at its end (runner.c).
 *  - `output` reads at most 1 MiB with pread on the loop thread. This is a
 *    deliberate bound: page-cache reads of that size cost well under a
 *    millisecond, and it keeps the request path free of thread-pool
 *    lifetime issues (a job may be pruned while a read is queued).
 */
#include "jobs/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline bool is_term(char c)
{
    return c == '\n' || c == '\r';
}

int jobs__log_path(const jobs *j, const char *id, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s.log", j->logs_dir, id);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Word-at-a-time helpers: the output path touches every byte a child
 * writes, so it looks at 8 of them per step. term_mask sets the high bit of
 * each byte of w that is '\n' or '\r' (exactly: no false positives). */
#define ONES 0x0101010101010101ull
#define LOWS 0x7f7f7f7f7f7f7f7full

static inline uint64_t zero_mask(uint64_t x)
{
    return ~(((x & LOWS) + LOWS) | x | LOWS);
}

static inline uint64_t term_mask(uint64_t w)
{
    return zero_mask(w ^ (ONES * '\n')) | zero_mask(w ^ (ONES * '\r'));
}

size_t jobs__count_lines(const char *data, size_t len)
{
    size_t n = 0, i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        n += (size_t)__builtin_popcountll(term_mask(w));
    }
    for (; i < len; i++)
        n += is_term(data[i]);
    return n;
}

size_t jobs__tail_start(const char *data, size_t len, size_t n_lines, size_t *n_found)
{
    size_t found = 0, i;
    if (len == 0 || n_lines == 0) {
        *n_found = 0;
        return len;
    }
    found = 1;
    i = is_term(data[len - 1]) ? len - 1 : len;
    while (i > 0) {
        /* Skip 8 bytes without a terminator at once. */
        if (i >= 8) {
            uint64_t w;
            memcpy(&w, data + i - 8, 8);
            if (term_mask(w) == 0) {
                i -= 8;
                continue;
            }
        }
        if (is_term(data[i - 1])) {
            if (found == n_lines) {
                *n_found = found;
                return i;
            }
            found++;
        }
        i--;
    }
    *n_found = found;
    return 0;
}

/* The offset where the last n_lines lines of an open file start (0 when it
 * holds fewer), found by reading backwards in blocks. */
static int file_tail_start(int fd, uint64_t size, size_t n_lines, uint64_t *start)
{
    char buf[65536];
    *start = size;
    if (size == 0 || n_lines == 0)
        return 0;
    size_t found = 1;
    uint64_t pos = size; /* bytes before pos are unscanned */
    bool first = true;
    while (pos > 0) {
        size_t blk = pos > sizeof(buf) ? sizeof(buf) : (size_t)pos;
        ssize_t n = pread(fd, buf, blk, (off_t)(pos - blk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if ((size_t)n != blk)
            return -EIO;
        size_t i = blk;
        if (first) {
            first = false;
            if (is_term(buf[blk - 1]))
                i--;
        }
        for (; i > 0; i--) {
            if (is_term(buf[i - 1])) {
                if (found == n_lines) {
                    *start = pos - blk + i;
                    return 0;
                }
                found++;
            }
        }
        pos -= blk;
    }
    *start = 0;
    return 0;
}

/* Copies [from, size) of fd to the end of out. */
static int copy_range(int fd, uint64_t from, uint64_t size, int out)
{
    char buf[65536];
    while (from < size) {
        size_t want = size - from > sizeof(buf) ? sizeof(buf) : (size_t)(size - from);
        ssize_t n = pread(fd, buf, want, (off_t)from);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        int rc = base_write_all(out, buf, (size_t)n);
        if (rc)
            return rc;
        from += (uint64_t)n;
    }
    return 0;
}

int jobs__log_compact(const char *path, unsigned keep_lines, uint64_t max_keep_bytes,
                      bool *compacted)
{
    *compacted = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    struct stat st;
    uint64_t start;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (!rc)
        rc = file_tail_start(fd, (uint64_t)st.st_size, keep_lines, &start);
    if (rc || (start == 0 && (uint64_t)st.st_size <= max_keep_bytes)) {
        close(fd);
        return rc;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size - start > max_keep_bytes) {
        /* Too many bytes even in the last lines: start at the first line
         * boundary inside the allowed tail, or mid-line if there is none. */
        char buf[65536];
        start = size - max_keep_bytes;
        ssize_t n = pread(fd, buf, sizeof(buf), (off_t)start);
        for (ssize_t i = 0; i < n - 1; i++) {
            if (is_term(buf[i])) {
                start += (uint64_t)i + 1;
                break;
            }
        }
    }
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, JOBS__LOG_MODE);
    if (out < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    char notice[128];
    int nn = snprintf(notice, sizeof(notice), "[herd] output trimmed: %llu earlier bytes removed\n",
                      (unsigned long long)start);
    rc = base_write_all(out, notice, (size_t)nn);
    if (!rc)
        rc = copy_range(fd, start, size, out);
    if (!rc && fsync(out) < 0)
        rc = -errno;
    if (close(out) < 0 && !rc)
        rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    else
        *compacted = true;
    return rc;
}

int jobs__log_append_notice(jobs *j, const char *id, const char *text)
{
    char path[4096];
    int rc = jobs__log_path(j, id, path, sizeof(path));
    if (rc)
        return rc;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, JOBS__LOG_MODE);
    if (fd < 0) {
        rc = -errno;
    } else {
        rc = base_write_all(fd, text, strlen(text));
        close(fd);
    }
    if (rc)
        jobs__write_error(j, path, rc);
    return rc;
}

/* ---- running output ------------------------------------------------------ */

static void run_log_error(jobs__run *run, int err)
{
    char path[4096];
    if (run->log_errno == err)
        return;
    run->log_errno = err;
    jobs__log_path(run->j, run->job->id, path, sizeof(path));
    jobs__write_error(run->j, path, err);
}

/* n bytes of output did not reach the sidecar: the job's record says so
 * at its end, and log_size stays what the file holds. */
static void run_log_lost(jobs__run *run, size_t n, int err)
{
    run->job->log_lost_bytes += n;
    run->log_size -= n;
    if (err)
        run_log_error(run, err);
}

/* Writes to the sidecar, counting what did not reach it. */
static void run_log_write(jobs__run *run, const char *data, size_t len)
{
    size_t written = 0;
    int rc = run->log_fd >= 0 ? base_write_counted(run->log_fd, data, len, &written) : 0;

    if (written < len)
        run_log_lost(run, len - written, rc);
}

/* Over log_max_bytes while running: compact what is on disk now, on the
 * loop (the job keeps writing, so this cannot move to another thread
 * without holding its output). Keeps at most half the limit so it does not
 * recur on every flush. log_size stays "on disk plus logbuf". */
static void run_compact(jobs__run *run)
{
    jobs *j = run->j;
    char path[4096];
    bool compacted = false;
    jobs__log_path(j, run->job->id, path, sizeof(path));
    int rc = jobs__log_compact(path, j->cfg->retained_lines, j->cfg->log_max_bytes / 2, &compacted);
    if (rc) {
        run_log_error(run, rc);
        return;
    }
    if (!compacted)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        run_log_error(run, -errno);
        close(run->log_fd);
        run->log_fd = -1;
        return;
    }
    close(run->log_fd);
    run->log_fd = fd;
    struct stat st;
    if (fstat(fd, &st) == 0)
        run->log_size = (uint64_t)st.st_size + run->logbuf.len;
    run->pub_offset = run->log_size >= run->pubbuf.len ? run->log_size - run->pubbuf.len : 0;
}

void jobs__run_flush_log(jobs__run *run)
{
    jobs *j = run->j;
    if (run->logbuf.len == 0)
        return;
    /* Compact before a write that would take the sidecar over the limit,
     * so that it never holds more than log_max_bytes (unless one buffer
     * alone is larger: then again after the write). */
    if (run->log_size > j->cfg->log_max_bytes && run->log_size > run->logbuf.len)
        run_compact(run);
    uint64_t lost = run->job->log_lost_bytes;
    run_log_write(run, run->logbuf.data, run->logbuf.len);
    base_buf_consume(&run->logbuf, run->logbuf.len);
    if (run->job->log_lost_bytes == lost && run->log_size > j->cfg->log_max_bytes)
        run_compact(run);
}

/* The output event's payload, {"offset":N,"data":"..."}, written directly
 * rather than through jansson: `data` (valid UTF-8) is escaped in runs, so
 * publishing costs about one pass over the bytes. */
static int output_payload(base_buf *out, uint64_t offset, const char *data, size_t len)
{
    if (base_buf_addf(out, "{\"offset\":%llu,\"data\":", (unsigned long long)offset) < 0 ||
        base_buf_json_string(out, data, len) < 0 || base_buf_add(out, "}", 1) < 0)
        return -ENOMEM;
    return 0;
}

void jobs__run_publish(jobs__run *run, bool all)
{
    jobs *j = run->j;
    while (run->pubbuf.len) {
        size_t n = run->pubbuf.len;
        if (!all) {
            while (n > 0 && !is_term(run->pubbuf.data[n - 1]))
                n--;
            if (n == 0)
                return;
        }
        if (n > JOBS__PUB_BYTES)
            n = JOBS__PUB_BYTES;
        size_t used = n;
        json_t *data = jobs__utf8_json(run->pubbuf.data, n, !all || n < run->pubbuf.len, &used);
        if (used == 0) { /* an incomplete sequence alone: send it as is */
            json_decref(data);
            data = jobs__utf8_json(run->pubbuf.data, n, false, &used);
        }
        if (data != NULL && j->hooks.publish != NULL) {
            base_buf payload = {0};
            char topic[256];
            snprintf(topic, sizeof(topic), "job.%s.%s.output", j->worker, run->job->id);
            if (output_payload(&payload, run->pub_offset, json_string_value(data),
                               json_string_length(data)) == 0)
                j->hooks.publish(topic, payload.data, payload.len, j->hooks.data);
            base_buf_free(&payload);
        }
        json_decref(data);
        run->pub_offset += used;
        base_buf_consume(&run->pubbuf, used);
        if (!all)
            return;
    }
}

static void inflight_add(jobs__run *run, const char *data, size_t len, size_t lines)
{
    jobs *j = run->j;
    if (jobs__buf_append(j, &run->inflight, data, len)) {
        base_buf_consume(&run->inflight, run->inflight.len);
        run->inflight_lines = 0;
        return;
    }
    run->inflight_lines += lines;
    if (run->inflight_lines > j->cfg->inflight_lines) {
        size_t found;
        size_t start = jobs__tail_start(run->inflight.data, run->inflight.len,
                                        j->cfg->inflight_trim_lines, &found);
        base_buf_consume(&run->inflight, start);
        run->inflight_lines = jobs__count_lines(run->inflight.data, run->inflight.len);
    }
    if (run->inflight.len > JOBS__INFLIGHT_BYTES) {
        size_t cut = run->inflight.len - JOBS__INFLIGHT_BYTES / 2;
        while (cut < run->inflight.len && !is_term(run->inflight.data[cut - 1]))
            cut++;
        base_buf_consume(&run->inflight, cut);
        run->inflight_lines = jobs__count_lines(run->inflight.data, run->inflight.len);
    }
    /* Keep the buffer from holding on to a large peak. */
    if (run->inflight.cap > 4 * run->inflight.len + 65536)
        jobs__buf_shrink(j, &run->inflight, run->inflight.len + 4096);
}

void jobs__run_output(jobs__run *run, const char *data, size_t len)
{
    jobs *j = run->j;
    size_t lines = jobs__count_lines(data, len);
    run->job->output_bytes += len;
    run->job->output_lines += lines;
    run->log_size += len;
    if (jobs__buf_append(j, &run->logbuf, data, len)) {
        jobs__run_flush_log(run);
        run_log_write(run, data, len);
    } else if (run->logbuf.len >= JOBS__LOG_BUF_BYTES) {
        jobs__run_flush_log(run);
    }
    if (jobs__buf_append(j, &run->pubbuf, data, len)) {
        jobs__run_publish(run, true);
        run->pub_offset += len; /* lost to subscribers; output still pages it */
    } else if (run->pubbuf.len >= JOBS__PUB_BYTES) {
        jobs__run_publish(run, true);
    }
    inflight_add(run, data, len, lines);
}

/* ---- the output op -------------------------------------------------------- */

static int get_uint_arg(const json_t *args, const char *key, uint64_t max, uint64_t *out,
                        bool *present, char *msg, size_t msg_size)
{
    const json_t *v = json_object_get(args, key);
    *present = v != NULL;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        snprintf(msg, msg_size, "%s: expected an integer from 0 to %llu", key,
                 (unsigned long long)max);
        return -EINVAL;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static json_t *output_result(uint64_t offset, uint64_t next, bool eof, json_t *data)
{
    json_t *o = json_object();
    if (o == NULL || data == NULL) {
        json_decref(o);
        json_decref(data);
        return NULL;
    }
    json_object_set_new(o, "offset", json_integer((json_int_t)offset));
    json_object_set_new(o, "next_offset", json_integer((json_int_t)next));
    json_object_set_new(o, "eof", json_boolean(eof));
    json_object_set_new(o, "data", data);
    return o;
}

int jobs__output(jobs *j, jobs_job *job, const json_t *args, json_t **result, char *msg,
                 size_t msg_size)
{
    uint64_t offset = 0, limit = JOBS__OUTPUT_DEFAULT_BYTES, tail = 0;
    bool has_off, has_limit, has_tail;
    if (get_uint_arg(args, "offset", INT64_MAX, &offset, &has_off, msg, msg_size) ||
        get_uint_arg(args, "limit_bytes", JOBS__OUTPUT_MAX_BYTES, &limit, &has_limit, msg,
                     msg_size) ||
        get_uint_arg(args, "tail_lines", 1000000, &tail, &has_tail, msg, msg_size))
        return -EINVAL;
    if (has_limit && limit == 0) {
        snprintf(msg, msg_size, "limit_bytes: expected an integer from 1 to %u",
                 JOBS__OUTPUT_MAX_BYTES);
        return -EINVAL;
    }
    if (has_tail && has_off) {
        snprintf(msg, msg_size, "tail_lines: cannot be combined with offset");
        return -EINVAL;
    }
    if (has_tail && tail == 0) {
        snprintf(msg, msg_size, "tail_lines: expected an integer from 1 to 1000000");
        return -EINVAL;
    }
    bool terminal = jobs__is_terminal(job->status);
    jobs__run *run = job->run;
    if (run != NULL)
        jobs__run_flush_log(run);

    /* A running job's tail is usually all in memory. */
    if (has_tail && run != NULL && run->inflight_lines >= tail) {
        size_t found;
        size_t start = jobs__tail_start(run->inflight.data, run->inflight.len, tail, &found);
        size_t n = run->inflight.len - start;
        if (n <= JOBS__OUTPUT_MAX_BYTES && n <= run->log_size) {
            *result = output_result(run->log_size - n, run->log_size, false,
                                    jobs__utf8_json(run->inflight.data + start, n, false, NULL));
            return *result != NULL ? 0 : -ENOMEM;
        }
    }

    char path[4096];
    jobs__log_path(j, job->id, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            snprintf(msg, msg_size, "id: cannot read the log: %s", strerror(errno));
            return -EIO;
        }
        *result = output_result(0, 0, terminal, json_string(""));
        return *result != NULL ? 0 : -ENOMEM;
    }
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    uint64_t size = rc ? 0 : (uint64_t)st.st_size;
    if (!rc && has_tail) {
        rc = file_tail_start(fd, size, (size_t)tail, &offset);
        if (size - offset > JOBS__OUTPUT_MAX_BYTES)
            offset = size - JOBS__OUTPUT_MAX_BYTES;
        limit = size - offset;
    }
    if (offset > size)
        offset = size;
    if (limit > size - offset)
        limit = size - offset;
    char *buf = rc ? NULL : malloc(limit ? limit : 1);
    ssize_t got = 0;
    if (!rc && buf == NULL)
        rc = -ENOMEM;
    while (!rc && (uint64_t)got < limit) {
        ssize_t n = pread(fd, buf + got, limit - (uint64_t)got, (off_t)(offset + (uint64_t)got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        got += n;
    }
    close(fd);
    if (rc) {
        free(buf);
        snprintf(msg, msg_size, "id: cannot read the log: %s", strerror(-rc));
        return rc;
    }
    bool at_end = offset + (uint64_t)got >= size;
    size_t used = (size_t)got;
    json_t *data = jobs__utf8_json(buf, (size_t)got, !at_end, &used);
    if (data != NULL && used == 0 && got > 0) {
        json_decref(data);
        data = jobs__utf8_json(buf, (size_t)got, false, &used);
    }
    free(buf);
    uint64_t next = offset + used;
    *result = output_result(offset, next, terminal && next >= size, data);
    return *result != NULL ? 0 : -ENOMEM;
}
