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

#include "bus/bus.h"

#define SUP_DEFAULT_HTTP_LISTEN "127.0.0.1:9180"
#define SUP_DEFAULT_HEALTH_INTERVAL_S 10

/* ---- logging ----------------------------------------------------------- */

enum sup_log_level { SUP_LOG_ERROR, SUP_LOG_WARN, SUP_LOG_INFO, SUP_LOG_DEBUG };

/* sup_log writes one line to stderr: level, component, message. */
void sup_log(enum sup_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sup_log_set_level sets the most verbose level written (default info). */
void sup_log_set_level(enum sup_log_level level);

/* ---- configuration ----------------------------------------------------- */

typedef struct sup_config {
    char runtime_dir[PATH_MAX]; /* bus.dir, or the default */
    uint64_t max_message_bytes; /* bus.max_message_bytes */
    int subscriber_buffer;      /* bus.subscriber_buffer */
    int queue_max;              /* bus.queue_max */
    int listener_check_ms;      /* bus.listener_check_ms */
    char http_listen[128];      /* http.listen; "" disables */
    char state_dir[PATH_MAX];   /* state_dir, or the default */
    int health_interval_s;      /* health_interval_s (supervisor heartbeat) */
} sup_config;

/* sup_parse_size reads a byte size: a non-negative integer, or a string of
 * digits with an optional K, M, G or T suffix (powers of 1024, optional
 * trailing "B" or "iB"). Returns 0 or -EINVAL. */
int sup_parse_size(const json_t *v, uint64_t *out);

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

/* ---- the supervisor service -------------------------------------------- */

typedef struct sup sup;

/* sup_new creates the supervisor on loop with its config (copied) and the bus
 * it serves on (borrowed); registers the `supervisor` service and starts the
 * heartbeat on system.supervisor.health. */
int sup_new(uv_loop_t *loop, const sup_config *cfg, bus *b, sup **out);

/* sup_close stops the heartbeat and unregisters the service; on_closed runs
 * once every handle is closed. */
void sup_close(sup *s, void (*on_closed)(void *data), void *data);

/* sup_health builds the supervisor's health object (caller owns). */
json_t *sup_health(sup *s);

#endif
