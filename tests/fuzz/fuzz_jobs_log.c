/*
 * Fuzz target `jobs_log`: the jobs line splitter (jobs/log.c) and the
 * output path of a running job.
 *
 * Input: one byte of parameters, then the bytes a child writes.
 *  - jobs__count_lines and jobs__tail_start are checked against plain
 *    byte-at-a-time references written here (a line ends at each '\n' and
 *    each '\r'; a trailing unterminated piece is a line), for every tail
 *    length up to the number of lines plus one;
 *  - jobs__utf8_json (the JSON text of output) gives valid UTF-8, equal to
 *    the input when it is valid, and a partial one leaves out at most one
 *    incomplete sequence;
 *  - the output repeated (1 to 8 times, by the parameter byte) is fed in
 *    chunks (1 to 32 bytes) to jobs__run_output of a run with a real
 *    sidecar, small in-memory tail and a 4 KiB log_max_bytes (so it
 *    compacts), then published and flushed: every published payload is
 *    {"offset","data"} with valid UTF-8, the counters are exact, the
 *    in-memory tail is a suffix of what was written and within its
 *    bounds, and the `output` op's last line from memory equals the one
 *    read back from the sidecar.
 */
#include <string.h>

#include "jobs/internal.h"
#include "fuzz.h"

static uv_loop_t loop;
static jobs_config *cfg;
static jobs *inst;
static char logs_dir[PATH_MAX];
static int n_published;

static void on_publish(const char *topic, const char *payload, size_t len, void *data)
{
    (void)data;
    FUZZ_CHECK(strncmp(topic, "job.fz.", 7) == 0);
    json_t *o = json_loadb(payload, len, JSON_ALLOW_NUL, NULL);
    FUZZ_CHECK(json_is_object(o));
    FUZZ_CHECK(json_is_integer(json_object_get(o, "offset")));
    json_t *d = json_object_get(o, "data");
    FUZZ_CHECK(json_is_string(d));
    FUZZ_CHECK(base_utf8_valid(json_string_value(d), json_string_length(d)));
    json_decref(o);
    n_published++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512], conf[PATH_MAX + 256];

    (void)argc, (void)argv;
    FUZZ_CHECK(uv_loop_init(&loop) == 0);
    snprintf(conf, sizeof(conf),
             "{\"state_dir\":\"%s/jobs\",\"inflight_lines\":6,\"retained_lines\":3,"
             "\"log_max_bytes\":\"4K\"}",
             fuzz_tmp());
    json_t *o = json_loads(conf, 0, NULL);
    FUZZ_CHECK(o != NULL);
    if (jobs_config_parse(o, "fuzz", NULL, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_jobs_log: config: %s\n", err);
        abort();
    }
    json_decref(o);
    jobs_hooks hooks = {.publish = on_publish};
    if (jobs_new(&loop, cfg, "fz", NULL, &hooks, &inst, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_jobs_log: jobs_new: %s\n", err);
        abort();
    }
    snprintf(logs_dir, sizeof(logs_dir), "%s/jobs/logs", fuzz_tmp());
    FUZZ_CHECK(base_mkdir_p(logs_dir, 0700) == 0);
    return 0;
}

static bool term(char c)
{
    return c == '\n' || c == '\r';
}

static size_t ref_count(const char *d, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += term(d[i]);
    return n;
}

/* ref_tail: where the last n lines start, and how many lines there are
 * up to n; by walking the lines from the front. */
static size_t ref_tail(const char *d, size_t len, size_t n, size_t *found)
{
    size_t lines = ref_count(d, len) + (len > 0 && !term(d[len - 1]));
    if (len == 0 || n == 0) {
        *found = 0;
        return len;
    }
    if (n >= lines) {
        *found = lines;
        return 0;
    }
    *found = n;
    size_t skip = lines - n, i = 0;
    for (; i < len && skip > 0; i++)
        if (term(d[i]))
            skip--;
    return i;
}

static void check_splitter(const char *d, size_t len)
{
    size_t count = jobs__count_lines(d, len);
    FUZZ_CHECK(count == ref_count(d, len));
    size_t lines = count + (len > 0 && !term(d[len - 1]));
    /* a few short tails and the ones around the whole */
    size_t ns[] = {0, 1, 2, 3, 4, lines / 2, lines > 0 ? lines - 1 : 0, lines, lines + 1};
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        size_t n = ns[k];
        size_t f1 = SIZE_MAX, f2 = SIZE_MAX;
        size_t s1 = jobs__tail_start(d, len, n, &f1);
        size_t s2 = ref_tail(d, len, n, &f2);
        FUZZ_CHECK(s1 == s2 && f1 == f2);
    }
}

static void check_utf8(const char *d, size_t len)
{
    size_t used = SIZE_MAX;
    json_t *s = jobs__utf8_json(d, len, false, &used);
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(base_utf8_valid(json_string_value(s), json_string_length(s)));
    if (base_utf8_valid(d, len))
        FUZZ_CHECK(json_string_length(s) == len && memcmp(json_string_value(s), d, len) == 0);
    json_decref(s);
    used = SIZE_MAX;
    s = jobs__utf8_json(d, len, true, &used);
    FUZZ_CHECK(s != NULL && used <= len);
    FUZZ_CHECK(base_utf8_valid(json_string_value(s), json_string_length(s)));
    if (base_utf8_valid(d, used) && used < len)
        FUZZ_CHECK(len - used <= 3);
    json_decref(s);
}

/* last_line: the `output` op's {"tail_lines": 1} data, as a new string. */
static char *last_line(jobs_job *job, size_t *len)
{
    json_t *args = json_pack("{s:i}", "tail_lines", 1), *res = NULL;
    char msg[256];
    FUZZ_CHECK(jobs__output(inst, job, args, &res, msg, sizeof(msg)) == 0);
    json_t *d = json_object_get(res, "data");
    FUZZ_CHECK(json_is_string(d));
    *len = json_string_length(d);
    char *s = malloc(*len + 1);
    memcpy(s, json_string_value(d), *len + 1);
    json_decref(res);
    json_decref(args);
    return s;
}

static void check_run(const char *d, size_t len, unsigned repeat, unsigned chunk)
{
    static const char id[] = "0123456789abcdef0123456789abcdef";
    char path[PATH_MAX + 64];
    jobs_job job;
    jobs__run run;

    memset(&job, 0, sizeof(job));
    memset(&run, 0, sizeof(run));
    memcpy(job.id, id, sizeof(id));
    job.status = JOBS__RUNNING;
    job.type = "fuzz";
    run.j = inst;
    run.job = &job;
    job.run = &run;
    snprintf(path, sizeof(path), "%s/%s.log", logs_dir, id);
    run.log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    FUZZ_CHECK(run.log_fd >= 0);

    n_published = 0;
    for (unsigned r = 0; r < repeat; r++) {
        for (size_t off = 0; off < len;) {
            size_t n = len - off < chunk ? len - off : chunk;
            jobs__run_output(&run, d + off, n);
            FUZZ_CHECK(run.inflight_lines <= cfg->inflight_lines);
            off += n;
        }
        FUZZ_CHECK(run.inflight_lines == jobs__count_lines(run.inflight.data, run.inflight.len));
        jobs__run_publish(&run, false);
    }
    FUZZ_CHECK(job.output_bytes == (uint64_t)len * repeat);
    FUZZ_CHECK(job.output_lines == (uint64_t)jobs__count_lines(d, len) * repeat);
    /* the in-memory tail is the end of the output */
    size_t il = run.inflight.len;
    FUZZ_CHECK(il <= (size_t)len * repeat);
    for (size_t i = 0; i < il; i++)
        FUZZ_CHECK(run.inflight.data[il - 1 - i] == d[len - 1 - (i % len)]);

    /* the last line, from memory and from the sidecar (a line of the output
     * shorter than what compaction keeps) */
    size_t found, start = len > 0 ? jobs__tail_start(d, len, 1, &found) : 0;
    bool short_line = len - start < 1024 && len > 0 && repeat * len > 0;
    size_t mem_len = 0, file_len = 0;
    char *mem = NULL;
    if (run.inflight_lines >= 1)
        mem = last_line(&job, &mem_len);
    job.run = NULL;
    jobs__run_flush_log(&run);
    char *file = last_line(&job, &file_len);
    if (mem != NULL && short_line && job.log_lost_bytes == 0)
        FUZZ_CHECK(mem_len == file_len && memcmp(mem, file, mem_len) == 0);
    free(mem);
    free(file);

    jobs__run_publish(&run, true);
    FUZZ_CHECK(run.pubbuf.len == 0);
    close(run.log_fd);
    unlink(path);
    jobs__buf_free(inst, &run.logbuf);
    jobs__buf_free(inst, &run.pubbuf);
    jobs__buf_free(inst, &run.inflight);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned repeat = (data[0] & 7) + 1, chunk = (data[0] >> 3) + 1;
    const char *d = (const char *)data + 1;
    size_t len = size - 1;

    check_splitter(d, len);
    check_utf8(d, len);
    if (len > 0)
        check_run(d, len, repeat, chunk);
    return 0;
}
