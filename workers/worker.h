/*
 * workers: the worker interface and its runtime.
 *
 * A worker kind is a const ops table (worker_kind). The supervisor allocates
 * `size` bytes of zeroed private state per worker instance and drives the
 * kind through start and stop; the kind reaches the rest of herd only through
 * the worker_* functions below (loop, bus, logging, failure, state dir).
 * A kind depends on workers/ and bus/, never on supervisor/.
 *
 * Threads: everything runs on the loop thread. Every kind callback may call
 * any worker_* function of its own worker.
 *
 * Lifecycle of one instance: validate (at config load) -> start -> running
 * ... -> stop -> the kind calls worker_stopped once every handle it owns is
 * closed -> the state memory is freed. An instance is started at most once;
 * a restart is a new instance. While running, the kind reports the end of
 * its work with worker_exit (a process that exited) or worker_fail (a fatal
 * error); the supervisor then stops it and applies the restart policy.
 *
 * Memory: allocations made while a worker's code runs through the runtime
 * (start, stop, health, request, bus deliveries, and callbacks the kind
 * brackets with worker_enter/worker_leave) are charged to that worker:
 * herd's allocator (base_malloc and friends), jansson and libuv all go
 * through base's accounts, and the runtime switches to the worker's.
 */
#ifndef HERD_WORKER_H
#define HERD_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "base/base.h"
#include "bus/bus.h"

typedef struct worker worker;

/* A file or directory a worker uses, as its config names it. */
typedef struct worker_path {
    const char *path; /* borrowed from the config */
    bool writes;      /* false: only read (a catalog's OUTDIR) */
} worker_path;

typedef struct worker_kind {
    const char *name;
    size_t size;         /* private state, zeroed, owned by the runtime */
    bool uses_state_dir; /* worker_state_dir is created (0750) before start; kinds that
                            keep nothing there leave it alone (a mkdir per worker was
                            most of the start of 1,000 archive workers) */

    /* validate checks cfg, the worker's whole config object (borrowed): the
     * kind's own keys, refusing unknown ones; the common keys
     * (worker_common_keys) are checked by the supervisor. path is the
     * object's JSON path ("workers[2]"); messages start with it. */
    int (*validate)(const json_t *cfg, const char *path, char *err, size_t err_size);

    /* start sets the worker up from worker_config(w). Returns 0 once running
     * (later failures go through worker_fail), or a negative errno after
     * worker_set_error explained why. */
    int (*start)(worker *w, void *state);

    /* stop begins closing everything the kind owns; the kind calls
     * worker_stopped(w) when done, possibly before stop returns. Called once
     * per started instance, also after worker_fail or worker_exit. */
    void (*stop)(worker *w, void *state);

    /* health adds kind-specific fields to obj (borrowed). Optional. */
    void (*health)(worker *w, void *state, json_t *obj);

    /* paths lists the files and directories a worker of config cfg
     * (borrowed) uses beyond its own state directory, at most max of them,
     * and returns how many: the supervisor refuses two workers whose paths
     * overlap where either writes. Optional. */
    size_t (*paths)(const json_t *cfg, worker_path *out, size_t max);

    /* request answers one request for the worker's service (exactly one
     * bus_reply_* now or later). Optional: without it every op is
     * unknown_op. Only called while running; requests not yet answered
     * when stop is called must still be answered by the kind. */
    void (*request)(worker *w, void *state, bus_request *req);
} worker_kind;

/* The keys every worker config may hold, checked by the supervisor; a NULL
 * terminated list. Kinds accept them without looking at them. */
extern const char *const worker_common_keys[];

/* worker_check_keys refuses any key of cfg that is neither common nor in
 * kind_keys (NULL terminated): `<path>.<key>: unknown key (expected ...)`. */
int worker_check_keys(const json_t *cfg, const char *path, const char *const *kind_keys, char *err,
                      size_t err_size);

/* ---- what a kind may call ---------------------------------------------- */

const char *worker_name(const worker *w);
const char *worker_kind_name(const worker *w);
/* worker_config is the worker's config object (borrowed, read-only). */
const json_t *worker_config(const worker *w);
uv_loop_t *worker_loop(const worker *w);
bus *worker_bus(const worker *w);
/* worker_state_dir is <state_dir>/<name>, created (0750) before start when
 * the kind's uses_state_dir is set. */
const char *worker_state_dir(const worker *w);
/* worker_runtime_dir is the bus directory (for HERD_RUNTIME_DIR). */
const char *worker_runtime_dir(const worker *w);
/* worker_host_name is this host's name in fleet topics (the config's
 * `host`, else the short hostname): one topic token. */
const char *worker_host_name(const worker *w);

/* worker_subscribe subscribes on behalf of w; deliveries are charged to w
 * and every subscription is removed when w stops. queue_max 0: the
 * worker's `queue_max` config key, else the bus default. */
int worker_subscribe(worker *w, const char *pattern, size_t queue_max, bus_event_cb cb, void *data,
                     bus_sub **out);
int worker_publish(worker *w, const char *topic, const char *payload, size_t len);
int worker_publish_json(worker *w, const char *topic, const json_t *payload);

/* worker_log writes a line tagged with the worker's name. */
void worker_log(worker *w, enum base_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* worker_set_error records last_error without failing (shown in health). */
void worker_set_error(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* worker_fail reports a fatal error: the supervisor stops the worker and
 * applies its restart policy. Safe from any callback of w; only the first
 * report of an instance counts. */
void worker_fail(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* worker_exit reports that the worker's work ended by itself (a process
 * exited): code 0 is a clean exit (not restarted under `transient`). */
void worker_exit(worker *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* worker_stopped tells the runtime that stop has finished: every handle of
 * the kind is closed. The state memory is freed after this returns. */
void worker_stopped(worker *w);

/* worker_set_pid records the pid of the worker's own process (process
 * kind), 0 when none; shown in health. */
void worker_set_pid(worker *w, int pid);

/* worker_set_memory reports what the kind holds in herdd outside its
 * account (a library's own allocations, such as a catalog index): added to
 * heap_bytes. worker_set_child_memory reports the resident set of the
 * worker's own process (process kind): not herdd's memory, so apart from
 * heap_bytes, but counted with it against memory_high and memory_max. */
void worker_set_memory(worker *w, uint64_t bytes);
void worker_set_child_memory(worker *w, uint64_t bytes);

/* worker_config_int is the integer `key` of the worker's config (checked
 * by validate), def when it is absent. */
json_int_t worker_config_int(const worker *w, const char *key, json_int_t def);

/* A child's argv and environment, for kinds that run programs (process,
 * exec). args runs argv through herdd's trampoline (`--worker-exec PPID --
 * ARGV...`, see worker_exec_main: the child dies with herdd), borrowing
 * argv's strings. envp is the inherited environment without the names the
 * child is given, then `set` ("KEY", "VALUE" pairs ending with NULL), then
 * `env` (an object of strings, may be NULL): what the config sets wins
 * over what herdd inherited. */
typedef struct worker_child_args {
    char **args, **envp;
    size_t n_owned_from; /* envp[n_owned_from ...] are allocated here */
    char ppid[24];
} worker_child_args;

int worker_child_args_make(const json_t *argv, const char *const *set, const json_t *env,
                           worker_child_args *out);
void worker_child_args_free(worker_child_args *c);

/* worker_enter/worker_leave bracket a libuv callback of the kind so that
 * what it allocates is charged to w: `worker *prev = worker_enter(w); ...
 * worker_leave(prev);`. The runtime does this for every call it makes. */
worker *worker_enter(worker *w);
void worker_leave(worker *prev);

/* ---- the host's side (the supervisor) ---------------------------------- */

/* What the runtime tells its host; every callback runs on the loop thread,
 * never inside the kind's start. */
typedef struct worker_host {
    /* ended: the instance failed (exit_code < 0) or its work exited by
     * itself (exit_code >= 0); error says why. The host calls worker_stop. */
    void (*ended)(worker *w, int exit_code, const char *error, void *data);
    /* stopped: worker_stop finished; the host may now worker_free. */
    void (*stopped)(worker *w, void *data);
    /* log: a line from the worker (already tagged). */
    void (*log)(worker *w, enum base_log_level level, const char *msg, void *data);
    void *data;
} worker_host;

typedef struct worker_params {
    const worker_kind *kind;
    const char *name;
    const json_t *config; /* borrowed; the runtime takes a reference */
    uv_loop_t *loop;
    bus *bus;
    const char *state_dir;   /* the herd state dir; the worker's is below */
    const char *runtime_dir; /* the bus dir */
    const char *host_name;   /* this host in fleet topics (config `host`), borrowed for the
                                instance's life; NULL: "localhost" */
    const worker_host *host;
    uint32_t mem_slot; /* the account to charge (base_mem), the host's record for the
                          worker already in it; 0: the instance takes one of its own */
} worker_params;

/* worker_new creates an instance (not started). */
int worker_new(const worker_params *p, worker **out);
/* worker_start creates the state dir and calls the kind's start; on failure
 * err gets the reason and the instance can only be freed. */
int worker_start(worker *w, char *err, size_t err_size);
/* worker_stop unsubscribes everything and calls the kind's stop; the host's
 * stopped callback follows. Harmless twice or before start. */
void worker_stop(worker *w);
/* worker_detach cuts an instance off from its host: no host callback runs
 * for it any more (an instance the host gave up waiting for). */
void worker_detach(worker *w);
/* worker_free frees a stopped (or never started) instance. */
void worker_free(worker *w);
/* worker_health_fields adds the kind's health fields to obj. */
void worker_health_fields(worker *w, json_t *obj);
/* worker_handle_request gives req to the kind (or answers unknown_op). */
void worker_handle_request(worker *w, bus_request *req);

int worker_pid(const worker *w);
/* worker_heap_bytes is what w costs herdd: its account (every block
 * allocated for it, its record included) plus what the kind reported with
 * worker_set_memory. worker_child_memory_bytes is its process's resident
 * set; worker_memory_bytes the two together, what the limits check. */
uint64_t worker_heap_bytes(const worker *w);
uint64_t worker_child_memory_bytes(const worker *w);
uint64_t worker_memory_bytes(const worker *w);
const char *worker_last_error(const worker *w);

/* ---- kinds built into workers/ ------------------------------------------ */

/* process: runs `argv` (no shell) as a child; keys argv, env, cwd. */
extern const worker_kind worker_process_kind;

/* archive: appends matching events as JSON lines to `path`, rotating
 * (workers/archive.c, DESIGN.md section 5). */
extern const worker_kind worker_archive_kind;

/* exec: runs `argv` (no shell) per matching event, the event on stdin
 * (workers/exec.c, DESIGN.md section 5). */
extern const worker_kind worker_exec_kind;

/* webhook: POSTs matching events as JSON to `url` through libcurl, opened
 * with dlopen by the first one that starts (workers/webhook.c, DESIGN.md
 * section 5). */
extern const worker_kind worker_webhook_kind;

/* forward: relays matching events to another herd's publish socket under
 * a prefix (workers/forward.c, DESIGN.md section 5). */
extern const worker_kind worker_forward_kind;

/* nats: the fleet bridge to a NATS server, libnats opened with dlopen by
 * the first one that starts (workers/nats.c, DESIGN.md sections 5, 7b). */
extern const worker_kind worker_nats_kind;

/* worker_exec_main is the exec trampoline of the process kind: a host binary
 * (herdd) calls it first thing in main(). When argv is
 * `--worker-exec PPID -- PROG ARGS...` it sets PR_SET_PDEATHSIG and execs
 * PROG (never returning); otherwise it returns -1 and main goes on. */
int worker_exec_main(int argc, char **argv);

#endif
