/*
 * jobs internals shared between the files of the module (jobs__ prefix).
 * Tests reach these through the static library; nothing outside jobs/ and
 * tests/unit/test_jobs_*.c may include this header.
 *
 * Ownership: every allocation of a running instance goes through
 * jobs__malloc/jobs__free (base_malloc, counted) so that jobs_heap_bytes is
 * exact. The config is plain malloc (it belongs to the caller).
 */
#ifndef HERD_JOBS_INTERNAL_H
#define HERD_JOBS_INTERNAL_H

#include "jobs/jobs.h"

#include <stdarg.h>

#define JOBS__ID_LEN 32
#define JOBS__NAME_MAX 64
#define JOBS__PARAM_MAX 4096      /* bytes of one submit parameter */
#define JOBS__ARGV_MAX 256        /* elements of one argv */
#define JOBS__LOG_BUF_BYTES 65536 /* log write buffer of one running job */
#define JOBS__PUB_BYTES                                                                            \
    16384                               /* output batch published at once: bounds a remote         \
                                         * subscriber's nng queue (subscriber_buffer events) */
#define JOBS__INFLIGHT_BYTES (4u << 20) /* byte cap of the in-memory tail */
#define JOBS__TICK_MS 50                /* output publish period */
#define JOBS__FLUSH_TICKS 4             /* log flush every 4 ticks = 200 ms */
#define JOBS__STORE_MIN_MS 100          /* at most one jobs.json write per 100 ms */
#define JOBS__STORE_RETRY_MS 1000       /* after a failed jobs.json write */
#define JOBS__OUTPUT_DEFAULT_BYTES 65536
#define JOBS__OUTPUT_MAX_BYTES (1u << 20)
#define JOBS__LINGER_MS 500 /* wait for pipe EOF after the leader exits */

/* jobs.json holds the env of queued jobs (tokens): only the owner reads it.
 * Logs may be read by the owner's group (operators); directories too. */
#define JOBS__JSON_MODE 0600
#define JOBS__LOG_MODE 0640
#define JOBS__DIR_MODE 0750

#define JOBS__PREREQ_ERROR "prerequisite job did not complete successfully"
#define JOBS__RECOVERY_NOTICE "[herd] herdd restarted while this job ran; it was queued again\n"

enum jobs__status {
    JOBS__QUEUED = 0,
    JOBS__RUNNING,
    JOBS__COMPLETED,
    JOBS__FAILED,
    JOBS__CANCELLED,
    JOBS__N_STATUS
};

/* ---- config ----------------------------------------------------------- */

typedef struct jobs__lane {
    char *name;
    unsigned capacity;
} jobs__lane;

typedef struct jobs__type {
    char *name;
    char **argv; /* n_argv elements; placeholders kept verbatim */
    size_t n_argv;
    size_t lane; /* index into lanes */
    bool primary;
} jobs__type;

struct jobs_config {
    char *state_dir;
    jobs__lane *lanes; /* lanes[0] is always "default" */
    size_t n_lanes;
    jobs__type *types;
    size_t n_types;
    unsigned max_queued;
    bool allow_argv;
    double kill_timeout_s;
    unsigned inflight_lines;
    unsigned inflight_trim_lines;
    unsigned retained_lines;
    uint64_t log_max_bytes;
    unsigned primary_max;
    unsigned aux_max;
};

const jobs__type *jobs__config_type(const jobs_config *cfg, const char *name);
/* Index of a lane, or -1. */
long jobs__config_lane(const jobs_config *cfg, const char *name);
/* Whether a type name is primary: the configured flag, else the built-in
 * names compile, upload, install. */
bool jobs__config_primary(const jobs_config *cfg, const char *type);

/* ---- jobs --------------------------------------------------------------- */

/* What an active job needs to run; freed at its terminal transition. */
typedef struct jobs__spec {
    char **argv; /* NULL-terminated */
    char **env;  /* NULL-terminated "KEY=VALUE", may be NULL */
    char *port;
    char *new_name;
} jobs__spec;

struct jobs__run;

typedef struct jobs_job {
    base_list_node node; /* in jobs.jobs, creation order */
    char id[JOBS__ID_LEN + 1];
    char depends_on[JOBS__ID_LEN + 1]; /* "" when none */
    uint8_t status;
    bool own_type; /* `type` is a copy rather than the config's name */
    bool cancel_requested;
    bool finishing;    /* child gone, log being fsynced */
    int32_t exit_code; /* valid when has_exit_code */
    int32_t signal;    /* 0 when none */
    bool has_exit_code;
    int32_t pgid; /* 0 when none */
    size_t lane;
    uint64_t seq;
    uint64_t term_gen;   /* jobs.json generation holding its terminal state */
    uint64_t submit_gen; /* generation that first holds it; not run before it is on disk */
    int64_t created_ms, started_ms, completed_ms; /* 0 when unset */
    uint64_t output_bytes, output_lines;
    uint64_t log_lost_bytes; /* output that could not be written to the sidecar */
    const char *type;
    char *configuration;          /* NULL when none */
    char *error;                  /* NULL when none */
    jobs__spec *spec;             /* active jobs only */
    struct jobs__run *run;        /* running jobs only */
    struct jobs__report *waiters; /* cancel replies waiting for the end */
} jobs_job;

/* A child and its output while it runs. */
typedef struct jobs__run {
    jobs *j;
    jobs_job *job;
    uv_process_t proc;
    uv_pipe_t pipe;
    uv_timer_t timer; /* SIGKILL after kill_timeout_s, or pipe linger */
    int n_handles;    /* handles not yet closed */
    bool spawned, exited, eof, term_sent, kill_sent, done;
    int64_t exit_status;
    int term_signal;
    int log_fd;
    uint64_t log_size; /* sidecar bytes: on disk plus logbuf */
    base_buf logbuf;   /* not yet written to the sidecar */
    base_buf pubbuf;   /* not yet published; starts at pub_offset */
    uint64_t pub_offset;
    base_buf inflight; /* the last lines, for tail_lines while running */
    size_t inflight_lines;
    int log_errno; /* last sidecar write error, 0 when none */
} jobs__run;

/* Something to deliver once jobs.json generation `gen` is on disk (gen 0:
 * at the next kick): a publication, a reply, or both. A durable report
 * goes out only if that generation's write succeeded: otherwise its
 * publication is dropped and the submit of submit_id (when set) is undone
 * and refused. */
typedef struct jobs__report {
    struct jobs__report *next;
    uint64_t gen;
    bool durable;
    char submit_id[JOBS__ID_LEN + 1]; /* "" unless it answers a submit */
    char *topic;
    char *payload;
    size_t len;
    jobs_reply_cb cb;
    void *data;
    json_t *result;
    const char *code;
    char *message;
} jobs__report;

struct jobs {
    uv_loop_t *loop;
    const jobs_config *cfg;
    jobs_hooks hooks;
    char *worker;
    char *dir;
    char *logs_dir;
    char *json_path;
    char *tmp_path;

    base_list jobs; /* every retained job, creation order */
    size_t counts[JOBS__N_STATUS];
    unsigned *lane_running;
    uint64_t next_seq;

    uv_timer_t kick;        /* deliver reports, schedule */
    uv_timer_t tick;        /* publish output, flush logs */
    uv_timer_t store_timer; /* coalesced jobs.json writes */
    unsigned n_ticks;

    /* jobs.json writes */
    uint64_t dirty_gen; /* bumped on every change */
    uint64_t done_gen;  /* newest generation whose write has finished */
    bool write_in_flight;
    bool store_timer_armed;
    uint64_t last_write_ms; /* uv_now of the last write start */
    uint64_t json_writes;
    jobs__report *reports, *reports_tail;
    unsigned submits_waiting; /* submit replies waiting for their write */

    size_t heap_bytes;
    unsigned n_work;         /* thread-pool requests in flight */
    unsigned n_runs;         /* run structs not yet freed */
    unsigned n_handles_open; /* kick, tick, store_timer */
    bool started, closing, closed;
    bool retention_due;
    uint64_t close_gen_tried; /* dirty_gen of the last write tried in close */
    char *readbuf;            /* shared pipe read buffer (reads never overlap) */
    uint64_t disk_gen;        /* newest generation successfully on disk */
    bool last_write_failed;
    jobs_closed_cb on_closed;
    void *close_data;

    char last_write_error[256];
    uint64_t write_errors;
};

/* ---- callback brackets (jobs_hooks.enter/leave) ------------------------ */

/* A libuv callback starts with `jobs__bracket b = jobs__enter(j);` and ends
 * with `jobs__leave(&b);`: the hooks are copied, so leave works even when
 * the callback freed j. */
typedef struct jobs__bracket {
    void (*leave)(void *token, void *data);
    void *token;
    void *data;
} jobs__bracket;

static inline jobs__bracket jobs__enter(const jobs *j)
{
    jobs__bracket b = {j->hooks.leave, NULL, j->hooks.data};
    if (j->hooks.enter != NULL)
        b.token = j->hooks.enter(j->hooks.data);
    return b;
}

static inline void jobs__leave(const jobs__bracket *b)
{
    if (b->leave != NULL)
        b->leave(b->token, b->data);
}

/* ---- allocation (mem.c): base_malloc, counted in j->heap_bytes --------- */
void *jobs__malloc(jobs *j, size_t n);
void *jobs__calloc(jobs *j, size_t n);
void *jobs__realloc(jobs *j, void *p, size_t n);
void jobs__free(jobs *j, void *p);
char *jobs__strdup(jobs *j, const char *s);
/* Buffers of a run: base_buf, whose capacity is counted. */
int jobs__buf_append(jobs *j, base_buf *b, const char *data, size_t len);
/* jobs__buf_shrink gives back what is beyond cap (when cap > len). */
int jobs__buf_shrink(jobs *j, base_buf *b, size_t cap);
void jobs__buf_free(jobs *j, base_buf *b);

/* ---- utilities (util.c) ------------------------------------------------ */
int jobs__new_id(char out[JOBS__ID_LEN + 1]);
bool jobs__id_valid(const char *s);
const char *jobs__status_name(int status);
int jobs__status_parse(const char *s);
/* jobs__utf8_json makes a JSON string from arbitrary bytes: invalid UTF-8
 * becomes U+FFFD. When `partial` is set, a trailing incomplete sequence is
 * left out and *used says how many input bytes were taken. */
json_t *jobs__utf8_json(const char *data, size_t len, bool partial, size_t *used);
void jobs__log(jobs *j, enum base_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void jobs__write_error(jobs *j, const char *what, int err);
bool jobs__is_terminal(int status);

/* ---- metadata and jobs.json (store.c) ---------------------------------- */
json_t *jobs__job_json(const jobs *j, const jobs_job *job, bool for_disk);
void jobs__store_dirty(jobs *j);
int jobs__store_restore(jobs *j);
void jobs__job_link(jobs *j, jobs_job *job);
void jobs__job_unlink(jobs *j, jobs_job *job);
void jobs__job_free(jobs *j, jobs_job *job);
void jobs__spec_free(jobs *j, jobs__spec *spec);
jobs_job *jobs__find(jobs *j, const char *id);
/* jobs__first and jobs__next walk the jobs in creation order (NULL at the
 * end); a loop may unlink the job it stands on once it has its next. */
static inline jobs_job *jobs__first(const jobs *j)
{
    base_list_node *n = base_list_first(&j->jobs);
    return n != NULL ? base_container_of(n, jobs_job, node) : NULL;
}

static inline jobs_job *jobs__next(const jobs *j, const jobs_job *job)
{
    base_list_node *n = base_list_next(&j->jobs, &job->node);
    return n != NULL ? base_container_of(n, jobs_job, node) : NULL;
}
void jobs__set_status(jobs *j, jobs_job *job, int status);
/* Record a terminal transition and queue its state event (and an optional
 * reply) behind the next jobs.json write. */
void jobs__terminal(jobs *j, jobs_job *job, int status, const char *error);
/* A durable state event is dropped if generation gen failed to reach the
 * disk (a submit that is undone). */
void jobs__publish_state(jobs *j, jobs_job *job, uint64_t gen, bool durable);
/* jobs__reply_submit answers a submit with {"job_id"} once the job's
 * submit_gen is on disk, or with `unavailable` (the job removed) if that
 * write failed. */
int jobs__reply_submit(jobs *j, jobs_job *job, jobs_reply_cb cb, void *data);
void jobs__report_queue(jobs *j, jobs__report *r);
int jobs__reply(jobs *j, uint64_t gen, jobs_reply_cb cb, void *data, json_t *result,
                const char *code, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void jobs__kick(jobs *j);
void jobs__reports_flush(jobs *j);
void jobs__store_write_now(jobs *j);
void jobs__close_step(jobs *j);

/* ---- sidecar logs (log.c) ---------------------------------------------- */
int jobs__log_path(const jobs *j, const char *id, char *out, size_t size);
/* Blocking: keep the last `keep_lines` lines of a sidecar behind a trim
 * notice when it holds more. Safe on a worker thread. Returns 0 or -errno. */
int jobs__log_compact(const char *path, unsigned keep_lines, uint64_t max_keep_bytes,
                      bool *compacted);
int jobs__log_append_notice(jobs *j, const char *id, const char *text);
/* Bytes that end a line: '\n' and '\r', each on its own. */
size_t jobs__count_lines(const char *data, size_t len);
size_t jobs__tail_start(const char *data, size_t len, size_t n_lines, size_t *n_found);
void jobs__run_output(jobs__run *run, const char *data, size_t len);
void jobs__run_flush_log(jobs__run *run);
void jobs__run_publish(jobs__run *run, bool all);
int jobs__output(jobs *j, jobs_job *job, const json_t *args, json_t **result, char *msg,
                 size_t msg_size);

/* ---- children (runner.c) ----------------------------------------------- */
void jobs__schedule(jobs *j);
int jobs__run_start(jobs *j, jobs_job *job);
int jobs__run_cancel(jobs *j, jobs_job *job);
void jobs__runs_tick(jobs *j);
void jobs__runs_close(jobs *j);
void jobs__kill_leftover(jobs *j, jobs_job *job);

/* ---- retention (retention.c) ------------------------------------------- */
/* Prune terminal jobs beyond the retention rules (and their sidecars).
 * Returns the number pruned. */
size_t jobs__retention(jobs *j);
void jobs__remove_orphans(jobs *j);
bool jobs__is_prerequisite(jobs *j, const jobs_job *job);

/* ---- ops (ops.c) -------------------------------------------------------- */
void jobs__op(jobs *j, const char *op, const json_t *args, jobs_reply_cb cb, void *data);

#endif
