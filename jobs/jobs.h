/*
 * jobs: the job runner behind the `jobs` worker kind (DESIGN.md section 7).
 *
 * A `jobs` instance runs configured command types as child processes on one
 * libuv loop, limits their concurrency per lane, keeps their metadata in
 * <state_dir>/jobs.json and their output in <state_dir>/logs/<job_id>.log,
 * and prunes history by the retention rules. It knows nothing of the bus or
 * the supervisor: events and log lines leave through a `jobs_hooks` table,
 * requests arrive through `jobs_request`.
 *
 * Invariants:
 *  - Every function and every callback runs on the loop thread.
 *  - jobs.json is only ever replaced atomically (temp file, fsync, rename,
 *    fsync of the directory); a failed write leaves the previous file whole.
 *  - A terminal transition is on disk (log fsynced, jobs.json renamed) before
 *    it is published or replied to. If the write fails, it is reported anyway
 *    once the failure is known, and `last_write_error` says why.
 *  - Jobs still running when `jobs_close` is called are killed but stay
 *    `running` on disk, so the next `jobs_start` queues them again (with a
 *    recovery notice in their log), exactly as after a crash.
 *  - Children run without a shell, each in its own session and process group
 *    (setsid), stdout and stderr merged into one pipe, with HERD_JOB_ID=<id>
 *    in their environment. A herdd that dies leaves its children running
 *    until the next `jobs_start`, which kills every process group recorded in
 *    jobs.json whose members still carry that job's HERD_JOB_ID.
 *
 * Errors are negative errno values; request errors are DESIGN.md codes.
 */
#ifndef HERD_JOBS_H
#define HERD_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "base/base.h"

typedef struct jobs_config jobs_config;
typedef struct jobs jobs;

/* How a jobs instance talks to the outside. Every hook may be NULL. The
 * hooks run on the loop thread and must not call back into this module
 * (queue the work instead: the bus broker dispatches after the callback
 * returns). */
typedef struct jobs_hooks {
    /* publish hands over one event: `topic` (NUL-terminated) and `payload`,
     * `len` bytes of compact UTF-8 JSON (also NUL-terminated). Both are
     * borrowed for the duration of the call. */
    void (*publish)(const char *topic, const char *payload, size_t len, void *data);
    /* log hands over one line for herdd's log, without a trailing newline. */
    void (*log)(enum base_log_level level, const char *msg, void *data);
    /* enter and leave bracket every libuv callback of the instance (timers,
     * pipe reads, child exits, thread-pool completions, handle closes):
     * enter's result goes to the matching leave. Every block the instance
     * owns comes from base_malloc, which charges the calling thread's
     * account, so a host that switches accounts here (herd's worker
     * runtime: worker_enter/worker_leave) is charged for all of it. */
    void *(*enter)(void *data);
    void (*leave)(void *token, void *data);
    void *data;
} jobs_hooks;

/* ---- configuration ------------------------------------------------------ */

/* jobs_config_parse validates the kind-specific keys of a `jobs` worker's
 * config object (`obj`, borrowed) and builds a config. `path` names the
 * object in messages ("workers[3]"). host_keys (NULL-terminated, may be
 * NULL) are keys the host checks itself (the worker runtime's common keys):
 * accepted and ignored; any other unknown key is an error. On failure
 * returns -EINVAL (or -ENOMEM) and writes a message naming the JSON path to
 * `err`, e.g. `workers[3].types.compile.argv: expected an array of strings`. */
int jobs_config_parse(const json_t *obj, const char *path, const char *const *host_keys,
                      jobs_config **out, char *err, size_t err_size);

/* jobs_config_free releases a config; NULL is accepted. */
void jobs_config_free(jobs_config *cfg);

/* jobs_config_state_dir is the configured `state_dir`, or NULL when the key
 * is absent (the adapter then uses <global state_dir>/<worker>). */
const char *jobs_config_state_dir(const jobs_config *cfg);

/* ---- runner ------------------------------------------------------------- */

/* jobs_new creates a stopped runner. `cfg` is borrowed and must stay valid
 * until on_closed has run. `worker_name` is the worker's name (a topic
 * token); `state_dir` overrides the config's (one of them must be set); both
 * strings are copied. `hooks` is copied. The instance is charged to the
 * caller's current account (base_mem_switch). Nothing is read or written
 * until jobs_start. Returns 0, -EINVAL (message in err) or -ENOMEM. */
int jobs_new(uv_loop_t *loop, const jobs_config *cfg, const char *worker_name,
             const char *state_dir, const jobs_hooks *hooks, jobs **out, char *err,
             size_t err_size);

/* jobs_set_hooks replaces the hooks (copied; NULL: none). A host that goes
 * away before the runner has closed (a failed start) cuts it off this way. */
void jobs_set_hooks(jobs *j, const jobs_hooks *hooks);

/* jobs_start creates the state directory, restores jobs.json (metadata only;
 * `running` jobs are queued again with a recovery notice appended to their
 * log and their leftover process groups killed), cancels dependents of
 * failed, cancelled or missing prerequisites, applies retention, deletes
 * orphan logs and temp files, and starts queued jobs. Blocking: it reads
 * jobs.json on the loop thread (it is small: a few hundred bytes a job).
 * A jobs.json that does not parse is left untouched and start fails with
 * -EINVAL (logged). Starting twice is harmless (returns 0). */
int jobs_start(jobs *j);

typedef void (*jobs_closed_cb)(jobs *j, void *data);

/* jobs_close stops the runner asynchronously: new requests get
 * `unavailable`, running children's process groups get SIGTERM and SIGKILL
 * after kill_timeout_s, logs are flushed and fsynced, jobs.json is written
 * (killed jobs stay `running` there), every handle is closed, then
 * `on_closed` runs on the loop thread and `j` is freed right after it
 * returns. Replies still pending are delivered before on_closed.
 * Closing twice is harmless (the second call is ignored). NULL is accepted. */
void jobs_close(jobs *j, jobs_closed_cb on_closed, void *data);

/* A request's outcome. Exactly one of `result` (borrowed: valid during the
 * call, json_incref to keep it) and `code` is non-NULL; `code` is a DESIGN.md
 * error code (bad_request, not_found, queue_full, unavailable, internal) and
 * `message` names the offending field ("configuration: ..."). Runs on the
 * loop thread, always after jobs_request has returned; it may call
 * jobs_request again. */
typedef void (*jobs_reply_cb)(json_t *result, const char *code, const char *message, void *data);

/* jobs_request runs one op of DESIGN.md section 7 (submit, list, get, output,
 * cancel, clear) with `args` (borrowed; NULL means {}). The reply comes
 * through `cb` exactly once, never before this function returns; a cancel is
 * answered once the job's terminal state is on disk. Returns 0, or -EINVAL
 * when `cb` or `op` is NULL (then `cb` is never called). */
int jobs_request(jobs *j, const char *op, const json_t *args, jobs_reply_cb cb, void *data);

/* jobs_health adds the kind-specific health fields to `obj` (borrowed):
 * "jobs": {"queued","running","completed","failed","cancelled"},
 * "lanes": {"<lane>": {"running","capacity"}}, "last_write_error" (string or
 * null), "write_errors", "jobs_json_writes", "heap_bytes_jobs". */
void jobs_health(const jobs *j, json_t *obj);

/* jobs_heap_bytes is the number of bytes the runner currently holds through
 * its own allocations (metadata, buffers, handles), the sizes it asked
 * base_malloc for: deterministic for a given state. */
size_t jobs_heap_bytes(const jobs *j);

/* ---- worker kind -------------------------------------------------------- */

/* jobs_worker_kind is the `jobs` worker kind (jobs/worker.c, the target
 * herd_jobs_kind): the runner above behind the worker interface of
 * workers/worker.h. Its ops are the runner's; its health adds
 * jobs_health's fields. */
struct worker_kind;
extern const struct worker_kind jobs_worker_kind;

#endif
