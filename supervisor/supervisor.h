/*
 * supervisor: herdd's own parts: configuration, logging, the `supervisor`
 * bus service, and the memory figures of the process.
 *
 * Everything here runs on the loop thread. Config errors name the JSON path
 * of the bad value and the expected form, as an operator would want.
 */
#ifndef HERD_SUPERVISOR_H
#define HERD_SUPERVISOR_H

#include <limits.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "base/base.h"
#include "bus/bus.h"

#define SUP_DEFAULT_HTTP_LISTEN "127.0.0.1:9180"
#define SUP_DEFAULT_HEALTH_INTERVAL_S 10

/* ---- logging ----------------------------------------------------------- */

/* sup_log writes one line to stderr: level, component, message. */
void sup_log(enum base_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sup_log_set_level sets the most verbose level written (default info). */
void sup_log_set_level(enum base_log_level level);

/* ---- restart policy ---------------------------------------------------- */

enum sup_restart { SUP_RESTART_PERMANENT, SUP_RESTART_TRANSIENT, SUP_RESTART_TEMPORARY };

typedef struct sup_policy {
    enum sup_restart restart;
    uint64_t backoff_initial_ms, backoff_max_ms; /* doubling from initial to max */
    int max_restarts;                            /* intensity: restarts allowed ... */
    int period_s;                                /* ... within this many seconds */
} sup_policy;

/* What a worker's past restarts are, for the intensity window. */
typedef struct sup_history {
    uint64_t *at_ms; /* ring of the last max_restarts restart times */
    int n, cap, head;
    uint64_t next_backoff_ms;
} sup_history;

enum sup_decision {
    SUP_DECIDE_RESTART, /* restart after *delay_ms */
    SUP_DECIDE_STOP,    /* stay stopped: a clean exit, or temporary */
    SUP_DECIDE_GIVE_UP, /* too many restarts in the period: failed */
};

/* sup_policy_decide applies policy p to one end of a worker: clean says
 * whether it exited cleanly (exit 0, not a failure), uptime_ms how long it
 * ran. A restart is recorded in h. Pure arithmetic: now_ms is given. */
enum sup_decision sup_policy_decide(const sup_policy *p, sup_history *h, uint64_t now_ms, int clean,
                                    uint64_t uptime_ms, uint64_t *delay_ms);
void sup_history_free(sup_history *h);

/* ---- configuration ----------------------------------------------------- */

struct worker_kind;

/* One worker's settings: the common keys, parsed; the rest stays in json
 * for its kind. */
typedef struct sup_worker_config {
    char name[65];
    char kind[33];
    const struct worker_kind *kind_ops; /* the kind named by `kind` */
    json_t *json;                       /* the worker's whole config object (owned reference) */
    int enabled;
    sup_policy policy;
    uint64_t memory_high, memory_max; /* 0: none */
    int health_interval_s;
    int stop_timeout_s;
} sup_worker_config;

#define SUP_MAX_WORKERS 20000 /* workers in one config */

typedef struct sup_config {
    char runtime_dir[PATH_MAX];                              /* bus.dir, or the default */
    uint64_t max_message_bytes;                              /* bus.max_message_bytes */
    uint64_t max_reply_bytes;                                /* bus.max_reply_bytes */
    int max_connections;                                     /* bus.max_connections */
    uint64_t pending_reply_bytes, pending_reply_bytes_total; /* bus.pending_reply_bytes... */
    int subscriber_buffer;                                   /* bus.subscriber_buffer */
    int queue_max;                                           /* bus.queue_max */
    int listener_check_ms;                                   /* bus.listener_check_ms */
    char tcp_url[3][256]; /* bus.tcp.events, .publish, .request; "" none */
    char tls_cert_file[PATH_MAX], tls_key_file[PATH_MAX]; /* bus.tls, for tls+tcp:// */
    char host[65];              /* host: this host's name in fleet topics */
    char http_listen[128];      /* http.listen; "" disables */
    int http_max_connections;   /* http.max_connections (default 64) */
    int http_max_streams;       /* http.max_streams: /api/events clients (default 16) */
    int http_idle_timeout_s;    /* http.idle_timeout_s: keep-alive (default 30) */
    int http_fleet_max_hosts;   /* http.fleet_max_hosts: hosts in the fleet view; 0: not
                                   set (1000), -1: the file's 0, no fleet view */
    char state_dir[PATH_MAX];   /* state_dir, or the default */
    int health_interval_s;      /* health_interval_s (supervisor heartbeat) */
    int on_give_up_exit;        /* on_give_up: "exit" */
    sup_worker_config *workers; /* owned; sup_config_free releases */
    size_t n_workers;
} sup_config;

/* sup_config_free releases what a parsed config owns (not cfg itself). */
void sup_config_free(sup_config *cfg);

/* sup_config_default is the embedded default (no -c): valid, parsed. */
int sup_config_default(sup_config *cfg, char *err, size_t err_size);

/* sup_config_defaults fills cfg with the defaults (environment-derived
 * directories included). */
void sup_config_defaults(sup_config *cfg);

/* sup_config_parse validates root (borrowed) into cfg, which holds defaults
 * on entry. On error writes `path: what was expected` into err. */
int sup_config_parse(const json_t *root, sup_config *cfg, char *err, size_t err_size);

/* sup_config_load reads and parses a config file; err names the file. */
int sup_config_load(const char *file, sup_config *cfg, char *err, size_t err_size);

/* ---- process memory ---------------------------------------------------- */

typedef struct sup_memory {
    uint64_t rss_bytes, pss_bytes, uss_bytes;
} sup_memory;

/* sup_memory_read reads /proc/<pid>/smaps_rollup (pid 0: self).
 * USS is Private_Clean + Private_Dirty. Returns 0 or a negative errno. */
int sup_memory_read(int pid, sup_memory *out);

/* sup_memory_resident reads herdd's own resident size from /proc/self/statm
 * (kernel counters: cheaper than smaps_rollup, no USS or PSS). Returns 0 or
 * a negative errno (then *rss_bytes is 0). */
int sup_memory_resident(uint64_t *rss_bytes);

/* ---- the supervisor service -------------------------------------------- */

typedef struct sup sup;

/* sup_new creates the supervisor on loop, taking over cfg's contents (cfg is
 * left empty), with the bus it serves on (borrowed) and the config file to
 * re-read on reload (NULL: the embedded default). Registers the
 * `supervisor` service and every worker's service, starts the heartbeat on
 * system.supervisor.health and every enabled worker in config order. */
int sup_new(uv_loop_t *loop, sup_config *cfg, const char *config_file, bus *b, sup **out);

/* sup_reload re-reads the config file and applies it: new workers start,
 * removed ones stop, changed ones restart, the rest keep running. A bad
 * file changes nothing; err says why. *summary (caller owns) lists names. */
int sup_reload(sup *s, json_t **summary, char *err, size_t err_size);

/* sup_shutdown stops every worker in reverse start order, each within its
 * stop_timeout_s, then closes the supervisor; on_closed(exit_code) runs
 * once every handle is closed. */
void sup_shutdown(sup *s, void (*on_closed)(int exit_code, void *data), void *data);

/* sup_set_exit_handler: called when a worker gives up under
 * on_give_up: "exit" (herdd must exit non-zero). */
void sup_set_exit_handler(sup *s, void (*on_exit)(void *data), void *data);

/* sup_health builds the supervisor's health object (caller owns). */
json_t *sup_health(sup *s);

#endif
