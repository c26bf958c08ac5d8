/*
 * bench_jobs: the jobs benchmark (bench/jobs/run, docs/benchmarks.md "## Jobs").
 *
 *   bench_jobs restore DIR RUNS   start-up restore of 500 retained terminal
 *                                 jobs (each with a 2,000-line log) by the
 *                                 jobs library, against the old design's
 *                                 restore: one state file holding every job's
 *                                 last 2,000 lines, loaded into memory
 *   bench_jobs ingest DIR RUNS BYTES
 *                                 a child writing BYTES of short lines through
 *                                 a jobs instance (sidecar, in-memory tail,
 *                                 output batches), against the raw ceiling:
 *                                 the same child's pipe copied to a file
 *   bench_jobs write BYTES        the child: BYTES of short lines on stdout
 *
 * Each mode prints a table and one line `JSON {...}` with the medians; the
 * run script combines them into RESULT. Runs of a figure and its baseline
 * alternate. Heap figures: the library's own exact count (jobs_heap_bytes)
 * plus what jansson holds, counted by a wrapping allocator; RSS from
 * /proc/self/statm.
 */
#include "jobs/jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_JOBS 500
#define N_LINES 2000

/* ---- counting jansson allocator --------------------------------------- */

static size_t json_live, json_peak;

static void *count_malloc(size_t n)
{
    size_t *p = malloc(n + 16);
    if (p == NULL)
        return NULL;
    p[0] = n;
    json_live += n;
    if (json_live > json_peak)
        json_peak = json_live;
    return (char *)p + 16;
}

static void count_free(void *q)
{
    if (q == NULL)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    json_live -= p[0];
    free(p);
}

/* ---- helpers ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t rss_bytes(void)
{
    unsigned long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_jobs: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* One line of typical build output (about 70 bytes). */
static int build_line(char *buf, size_t size, unsigned job, unsigned n)
{
    return snprintf(buf, size,
                    "[%3u%%] Compiling .pioenvs/dev-%03u/src/esphome/component_%04u.cpp.o\n",
                    n * 100 / N_LINES, job, n);
}

static void format_time(long long ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char date[24];
    gmtime_r(&s, &tm);
    if (strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        date[0] = '\0';
    snprintf(out, 32, "%.23s.%03dZ", date, (int)(ms % 1000));
}

/* ---- restore ------------------------------------------------------------ */

static const char *restore_config =
    "{\"lanes\": {\"compile\": 1}, \"primary_max\": 500,"
    " \"types\": {\"compile\": {\"argv\": [\"esphome\", \"compile\", \"{configuration}\"],"
    " \"lane\": \"compile\", \"primary\": true}}}";

/* Writes DIR/state (jobs.json and 500 sidecars) and DIR/legacy.json, the
 * old design's state file: every job with its last 2,000 lines. */
static void make_restore_data(const char *dir, size_t *log_bytes)
{
    char path[4096], line[160];
    snprintf(path, sizeof(path), "%s/state", dir);
    mkdir(path, 0750);
    snprintf(path, sizeof(path), "%s/state/logs", dir);
    mkdir(path, 0750);
    json_t *metas = json_array(), *legacy = json_array();
    *log_bytes = 0;
    for (unsigned n = 1; n <= N_JOBS; n++) {
        char id[33], conf[64], created[32], done[32];
        snprintf(id, sizeof(id), "%032x", n * 2654435761u);
        snprintf(conf, sizeof(conf), "devices/living-room-sensor-%03u.yaml", n);
        format_time(1700000000000LL + n * 60000LL, created);
        format_time(1700000000000LL + n * 60000LL + 45000, done);
        int failed = n % 7 == 0;
        json_t *m =
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:n,s:o,s:n,s:I,s:I}", "job_id", id,
                      "type", "compile", "configuration", conf, "lane", "compile", "status",
                      failed ? "failed" : "completed", "created_at", created, "started_at", created,
                      "completed_at", done, "exit_code", failed, "signal", "error",
                      failed ? json_string("exited with code 1") : json_null(), "depends_on",
                      "output_bytes", (json_int_t)0, "output_lines", (json_int_t)N_LINES);
        json_t *lines = json_array();
        snprintf(path, sizeof(path), "%s/state/logs/%s.log", dir, id);
        FILE *f = fopen(path, "w");
        if (f == NULL)
            die(path);
        size_t bytes = 0;
        for (unsigned k = 0; k < N_LINES; k++) {
            int len = build_line(line, sizeof(line), n, k);
            fwrite(line, 1, (size_t)len, f);
            bytes += (size_t)len;
            json_array_append_new(lines, json_stringn(line, (size_t)len));
        }
        fclose(f);
        *log_bytes += bytes;
        json_object_set_new(m, "output_bytes", json_integer((json_int_t)bytes));
        json_t *old = json_deep_copy(m);
        json_object_set_new(old, "output", lines);
        json_array_append_new(legacy, old);
        json_array_append_new(metas, m);
    }
    json_t *root = json_pack("{s:i,s:o}", "format", 1, "jobs", metas);
    snprintf(path, sizeof(path), "%s/state/jobs.json", dir);
    if (json_dump_file(root, path, JSON_COMPACT) < 0)
        die(path);
    json_decref(root);
    root = json_pack("{s:o}", "jobs", legacy);
    snprintf(path, sizeof(path), "%s/legacy.json", dir);
    if (json_dump_file(root, path, JSON_COMPACT) < 0)
        die(path);
    json_decref(root);
}

static void on_closed(jobs *j, void *data)
{
    (void)j;
    *(int *)data = 1;
}

/* One restore by the library: time of jobs_new + jobs_start (the blocking
 * restore; the loop is not run in between), then the steady heap once the
 * start-up settles. */
static void restore_once(const char *dir, const jobs_config *cfg, double *ms, double *heap,
                         double *peak)
{
    uv_loop_t loop;
    jobs *j;
    char err[256], state[4096];
    int closed = 0;

    snprintf(state, sizeof(state), "%s/state", dir);
    uv_loop_init(&loop);
    size_t base = json_live;
    json_peak = json_live;
    double t0 = now_s();
    if (jobs_new(&loop, cfg, "jobs", state, NULL, &j, err, sizeof(err)) < 0 || jobs_start(j) < 0) {
        fprintf(stderr, "bench_jobs: restore failed: %s\n", err);
        exit(1);
    }
    *ms = (now_s() - t0) * 1000;
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    *heap = (double)(jobs_heap_bytes(j) + (json_live - base));
    *peak = (double)(json_peak - base);
    jobs_close(j, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!closed || uv_loop_close(&loop) != 0) {
        fprintf(stderr, "bench_jobs: the instance did not close cleanly\n");
        exit(1);
    }
}

/* The old design: load the state file with every job's lines. It runs in
 * a child process so that freeing its 100 MiB of small blocks does not
 * leave work (glibc's fastbin consolidation) for the next measurement. */
static void legacy_once(const char *dir, double *ms, double *heap)
{
    char path[4096];
    double res[2];
    int fds[2];

    snprintf(path, sizeof(path), "%s/legacy.json", dir);
    if (pipe(fds) < 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        json_error_t jerr;
        size_t base = json_live;
        double t0 = now_s();
        json_t *root = json_load_file(path, 0, &jerr);
        if (root == NULL) {
            fprintf(stderr, "bench_jobs: %s: %s\n", path, jerr.text);
            _exit(1);
        }
        res[0] = (now_s() - t0) * 1000;
        res[1] = (double)(json_live - base);
        _exit(write(fds[1], res, sizeof(res)) == sizeof(res) ? 0 : 1);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], res, sizeof(res));
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    if (n != sizeof(res) || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_jobs: the baseline restore failed\n");
        exit(1);
    }
    *ms = res[0];
    *heap = res[1];
}

static int cmd_restore(const char *dir, int runs)
{
    double t[64], h[64], p[64], lt[64], lh[64];
    size_t log_bytes;
    char err[256];
    jobs_config *cfg;

    if (runs < 1 || runs > 64)
        runs = 5;
    make_restore_data(dir, &log_bytes);
    json_t *cj = json_loads(restore_config, 0, NULL);
    if (jobs_config_parse(cj, "bench", NULL, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_jobs: config: %s\n", err);
        return 1;
    }
    json_decref(cj);
    /* Warm the page cache for both sides alike. */
    double a, b, c;
    restore_once(dir, cfg, &a, &b, &c);
    legacy_once(dir, &a, &b);
    for (int r = 0; r < runs; r++) {
        restore_once(dir, cfg, &t[r], &h[r], &p[r]);
        legacy_once(dir, &lt[r], &lh[r]);
    }
    jobs_config_free(cfg);
    double mt = median(t, runs), mh = median(h, runs), mp = median(p, runs);
    double mlt = median(lt, runs), mlh = median(lh, runs);
    printf("restore of %d retained terminal jobs, %d-line logs (%.1f MiB on disk), median of "
           "%d runs\n",
           N_JOBS, N_LINES, (double)log_bytes / 1048576, runs);
    printf("  %-44s %10s %12s %14s\n", "", "time", "heap", "peak (parse)");
    printf("  %-44s %8.2f ms %8.1f KiB %10.1f KiB\n", "herd jobs: metadata only, logs on disk", mt,
           mh / 1024, mp / 1024);
    printf("  %-44s %8.2f ms %8.1f MiB %14s\n", "old design: last 2,000 lines of each in memory",
           mlt, mlh / 1048576, "-");
    printf("  %-44s %9.0fx %11.0fx\n", "ratio (old / herd)", mlt / mt, mlh / mh);
    printf("JSON {\"restore_jobs\": %d, \"restore_ms\": %.3f, \"restore_heap_bytes\": %.0f, "
           "\"restore_parse_peak_bytes\": %.0f, \"baseline_restore_ms\": %.3f, "
           "\"baseline_heap_bytes\": %.0f, \"time_ratio\": %.1f, \"heap_ratio\": %.1f}\n",
           N_JOBS, mt, mh, mp, mlt, mlh, mlt / mt, mlh / mh);
    return 0;
}

/* ---- ingest ------------------------------------------------------------- */

static int cmd_write(unsigned long long bytes)
{
    static char buf[65536];
    size_t n = 0;
    unsigned k = 0;
    char line[160];
    while (n + 80 < sizeof(buf)) {
        int len = build_line(line, sizeof(line), 1, k++ % N_LINES);
        memcpy(buf + n, line, (size_t)len);
        n += (size_t)len;
    }
    while (bytes > 0) {
        size_t chunk = bytes < n ? (size_t)bytes : n;
        ssize_t w = write(1, buf, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 1;
        bytes -= (unsigned long long)w;
    }
    return 0;
}

typedef struct ingest {
    uv_loop_t loop;
    jobs *j;
    uv_timer_t sample;
    int done, closed, replied;
    char status[32];
    size_t rss_max, heap_max;
    unsigned long long published;
} ingest;

static void ingest_publish(const char *topic, const char *payload, size_t len, void *data)
{
    ingest *in = data;
    size_t tl = strlen(topic);
    in->published += len;
    if (tl > 6 && strcmp(topic + tl - 6, ".state") == 0) {
        json_t *m = json_loadb(payload, len, 0, NULL);
        const char *s = json_string_value(json_object_get(m, "status"));
        if (s != NULL &&
            (!strcmp(s, "completed") || !strcmp(s, "failed") || !strcmp(s, "cancelled"))) {
            snprintf(in->status, sizeof(in->status), "%s", s);
            in->done = 1;
        }
        json_decref(m);
    }
}

static void ingest_log(enum base_log_level level, const char *msg, void *data)
{
    (void)data;
    if (level <= BASE_LOG_WARN)
        fprintf(stderr, "bench_jobs: [jobs] %s\n", msg);
}

static void ingest_sample(uv_timer_t *t)
{
    ingest *in = t->data;
    size_t r = rss_bytes(), h = jobs_heap_bytes(in->j);
    if (r > in->rss_max)
        in->rss_max = r;
    if (h > in->heap_max)
        in->heap_max = h;
    if (in->done)
        uv_timer_stop(t);
}

static void ingest_reply(json_t *result, const char *code, const char *message, void *data)
{
    ingest *in = data;
    (void)result;
    if (code != NULL) {
        fprintf(stderr, "bench_jobs: submit: %s: %s\n", code, message);
        exit(1);
    }
    in->replied = 1;
}

static void ingest_closed(jobs *j, void *data)
{
    (void)j;
    ((ingest *)data)->closed = 1;
}

static void ingest_once(const char *dir, const char *self, unsigned long long bytes, double *mbs,
                        double *rss_before, double *rss_after, double *rss_max, double *heap_max)
{
    static int n_run;
    char cfgtext[512], err[256], state[4096], size[32];
    ingest in;
    jobs_config *cfg;

    memset(&in, 0, sizeof(in));
    snprintf(state, sizeof(state), "%s/ingest-%d", dir, n_run++);
    snprintf(cfgtext, sizeof(cfgtext), "{\"allow_argv\": true, \"lanes\": {\"default\": 1}}");
    json_t *cj = json_loads(cfgtext, 0, NULL);
    if (jobs_config_parse(cj, "bench", NULL, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_jobs: config: %s\n", err);
        exit(1);
    }
    json_decref(cj);
    uv_loop_init(&in.loop);
    jobs_hooks hooks = {.publish = ingest_publish, .log = ingest_log, .data = &in};
    if (jobs_new(&in.loop, cfg, "jobs", state, &hooks, &in.j, err, sizeof(err)) < 0 ||
        jobs_start(in.j) < 0) {
        fprintf(stderr, "bench_jobs: jobs: %s\n", err);
        exit(1);
    }
    uv_timer_init(&in.loop, &in.sample);
    in.sample.data = &in;
    snprintf(size, sizeof(size), "%llu", bytes);
    json_t *args = json_pack("{s:[s,s,s]}", "argv", self, "write", size);
    *rss_before = (double)rss_bytes();
    double t0 = now_s();
    jobs_request(in.j, "submit", args, ingest_reply, &in);
    json_decref(args);
    uv_timer_start(&in.sample, ingest_sample, 0, 50);
    while (!in.done)
        uv_run(&in.loop, UV_RUN_ONCE);
    double dt = now_s() - t0;
    *rss_after = (double)rss_bytes();
    *rss_max = (double)in.rss_max;
    *heap_max = (double)in.heap_max;
    *mbs = (double)bytes / 1e6 / dt;
    if (strcmp(in.status, "completed") != 0) {
        fprintf(stderr, "bench_jobs: the writer job ended %s\n", in.status);
        exit(1);
    }
    uv_close((uv_handle_t *)&in.sample, NULL);
    jobs_close(in.j, ingest_closed, &in);
    uv_run(&in.loop, UV_RUN_DEFAULT);
    if (!in.closed || uv_loop_close(&in.loop) != 0) {
        fprintf(stderr, "bench_jobs: the ingest instance did not close cleanly\n");
        exit(1);
    }
    jobs_config_free(cfg);
}

/* The ceiling: the same child, its pipe copied to a file by a plain read /
 * write loop, fsynced at the end like a finished sidecar. */
static void raw_once(const char *dir, const char *self, unsigned long long bytes, double *mbs)
{
    static char buf[65536];
    char path[4096], size[32];
    int fds[2];

    snprintf(path, sizeof(path), "%s/raw.log", dir);
    snprintf(size, sizeof(size), "%llu", bytes);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0 || pipe2(fds, O_CLOEXEC) < 0)
        die(path);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        execl(self, self, "write", size, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (write(out, buf, (size_t)n) != n)
            die("write");
    }
    fsync(out);
    close(out);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    *mbs = (double)bytes / 1e6 / (now_s() - t0);
    unlink(path);
}

static int cmd_ingest(const char *dir, const char *self, int runs, unsigned long long bytes)
{
    double mbs[64], rb[64], ra[64], rm[64], hm[64], raw[64];

    if (runs < 1 || runs > 64)
        runs = 3;
    for (int r = 0; r < runs; r++) {
        ingest_once(dir, self, bytes, &mbs[r], &rb[r], &ra[r], &rm[r], &hm[r]);
        raw_once(dir, self, bytes, &raw[r]);
    }
    double m = median(mbs, runs), mraw = median(raw, runs);
    double mrb = median(rb, runs), mra = median(ra, runs), mrm = median(rm, runs);
    double mhm = median(hm, runs);
    printf("output ingest: a child writing %.0f MB of ~70-byte lines, median of %d runs\n",
           (double)bytes / 1e6, runs);
    printf("  %-44s %9.0f MB/s\n", "herd jobs: sidecar + tail + output batches", m);
    printf("  %-44s %9.0f MB/s\n", "ceiling: the pipe copied to a file", mraw);
    printf("  %-44s %9.2f\n", "ratio (herd / ceiling)", m / mraw);
    printf("  RSS of the process: before %.1f MiB, after %.1f MiB, max while running %.1f MiB\n",
           mrb / 1048576, mra / 1048576, mrm / 1048576);
    printf("  jobs heap (exact), max while running: %.1f KiB\n", mhm / 1024);
    printf("JSON {\"ingest_bytes\": %llu, \"ingest_mb_s\": %.1f, \"raw_pipe_mb_s\": %.1f, "
           "\"ingest_ratio\": %.3f, \"rss_before_bytes\": %.0f, \"rss_after_bytes\": %.0f, "
           "\"rss_max_bytes\": %.0f, \"jobs_heap_max_bytes\": %.0f}\n",
           bytes, m, mraw, m / mraw, mrb, mra, mrm, mhm);
    return 0;
}

int main(int argc, char **argv)
{
    json_set_alloc_funcs(count_malloc, count_free);
    if (argc == 3 && strcmp(argv[1], "write") == 0)
        return cmd_write(strtoull(argv[2], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "restore") == 0)
        return cmd_restore(argv[2], atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "ingest") == 0) {
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0)
            die("/proc/self/exe");
        self[n] = '\0';
        return cmd_ingest(argv[2], self, atoi(argv[3]), strtoull(argv[4], NULL, 10));
    }
    fprintf(stderr, "Usage: bench_jobs restore DIR RUNS | ingest DIR RUNS BYTES | write BYTES\n");
    return 2;
}
