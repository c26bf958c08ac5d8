/* Internals shared by the files of the supervisor module (sup__ prefix). */
#ifndef HERD_SUPERVISOR_INTERNAL_H
#define HERD_SUPERVISOR_INTERNAL_H

#include "supervisor/supervisor.h"
#include "workers/worker.h"

enum sup_state {
    SUP_STOPPED,
    SUP_STARTING,
    SUP_RUNNING,
    SUP_STOPPING,
    SUP_BACKOFF,
    SUP_FAILED,
    SUP_N_STATES
};

/* Why an instance is being stopped: what follows its stop. */
enum sup_stop_reason {
    SUP_STOP_NONE,
    SUP_STOP_ENDED,   /* it failed or exited: apply the policy */
    SUP_STOP_USER,    /* stop requested: stay stopped */
    SUP_STOP_RESTART, /* restart requested: start again at once */
    SUP_STOP_CHANGE,  /* reload changed its config: start the new one */
    SUP_STOP_REMOVE,  /* reload removed it: forget it */
    SUP_STOP_SHUTDOWN /* herdd is stopping */
};

typedef struct sup_waiter {
    bus_request *req;
    struct sup_waiter *next;
} sup_waiter;

/* One configured worker, across all its instances. */
typedef struct sup_worker {
    struct sup *sup;
    sup_worker_config cfg;
    sup_worker_config next_cfg; /* reload: the config to start after a stop */
    worker *inst;
    enum sup_state state;
    enum sup_stop_reason stop_reason;
    uint64_t start_seq;  /* order of the last start, for reverse-order stop */
    uint64_t started_ms; /* loop time the instance began running */
    int restarts;
    sup_history history;
    char last_error[512];
    int ended, ended_code; /* reported by the instance, handled on the timer */
    int stopped;           /* instance finished stopping, handled on the timer */
    int memory_high_warned;
    uv_timer_t timer;  /* deferred handling and backoff delays */
    uv_timer_t health; /* heartbeat */
    bus_sub *control;
    sup_waiter *waiters; /* requests answered when the worker settles */
    int removed;
    int handles_open;
    struct sup_worker *next;
} sup_worker;

struct sup {
    uv_loop_t *loop;
    sup_config cfg;
    char config_file[PATH_MAX]; /* "" when running the embedded default */
    bus *bus;
    uint64_t started_ns;
    uv_timer_t heartbeat;
    uv_timer_t tick; /* memory checks and heap trims */
    sup_worker *workers;
    uint64_t start_seq;
    uint64_t control_unknown;      /* control messages refused */
    uint64_t malloc_trims;         /* malloc_trim calls (service.c, heap_trim) */
    uint64_t malloc_trimmed_bytes; /* resident bytes they gave back */
    uint64_t trim_quiet_until_ms;  /* loop time before which no threshold trim runs */
    bool trim_wanted;              /* a worker was freed: trim on the next tick */
    int shutting_down;
    int exit_code;
    int handles_open;
    void (*on_closed)(int exit_code, void *data);
    void *on_closed_data;
    void (*on_exit)(void *data);
    void *on_exit_data;
};

const char *sup__state_name(enum sup_state st);
json_t *sup__iso_now(void);

/* lifecycle.c: one worker */
/* sup__worker_create adds a worker in the stopped state (its timers, its
 * service and control subscription), taking over wc's json reference. */
sup_worker *sup__worker_create(struct sup *s, sup_worker_config *wc);
/* sup__worker_destroy unlinks a worker without an instance and closes its
 * handles; it is freed once they are closed. */
void sup__worker_destroy(sup_worker *sw);
sup_worker *sup__worker_find(struct sup *s, const char *name);
json_t *sup__worker_health(sup_worker *sw);
void sup__worker_publish_health(sup_worker *sw);
void sup__worker_set_health_period(sup_worker *sw, uint64_t period_ms);
void sup__worker_set_state(sup_worker *sw, enum sup_state to, const char *reason);
/* sup__worker_start creates and starts a new instance (starting ->
 * running, or the policy on failure). */
void sup__worker_start(sup_worker *sw, const char *reason);
/* sup__worker_begin_stop stops the instance; why decides what follows. */
void sup__worker_begin_stop(sup_worker *sw, enum sup_stop_reason why, const char *reason);
/* sup__worker_fail ends the running instance as a failure (memory_max). */
void sup__worker_fail(sup_worker *sw, const char *reason);
/* sup__worker_action: "start", "stop" or "restart"; req (may be NULL) is
 * answered with the worker's health when it settles. */
int sup__worker_action(sup_worker *sw, const char *action, bus_request *req);

/* service.c: every worker */
/* sup__shutdown_next stops the next worker in reverse start order, or
 * releases the supervisor once none is left. */
void sup__shutdown_next(struct sup *s);
void sup__handle_released(struct sup *s);
/* sup__heap_trim_soon: a worker's memory was freed; the next tick gives
 * the free heap back to the system (malloc_trim). */
void sup__heap_trim_soon(struct sup *s);

/* kinds.c */
const worker_kind *sup__kind_find(const char *name);
void sup__kind_names(char *buf, size_t size);

#endif
