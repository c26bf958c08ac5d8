/*
 * systemd's notify protocol (sd_notify(3)), spoken by herdd itself rather
 * than through libsystemd (DESIGN.md section 1: a documented 10-line
 * protocol is cheaper than a library every deployment would map): one
 * datagram per message, to the AF_UNIX socket named by $NOTIFY_SOCKET (a
 * path, or "@name" for the abstract namespace).
 *
 * What herdd says, and when:
 * - READY=1 once start-up has settled: on the first loop turn after the
 *   supervisor is attached at which no worker is starting, and none is
 *   stopping in order to be started again or removed. Every enabled
 *   worker's start is attempted synchronously by sup_new, so a worker that
 *   failed to start (now in backoff or failed) or that crashed right after
 *   starting (stopping, then backoff) has settled and does not hold READY
 *   back; only a restart or a reload's change still in progress does, and
 *   that is bounded by the worker's stop_timeout_s.
 * - STATUS=<n> workers running, <m> failed whenever either count differs
 *   from the last one sent (and once before the first READY=1).
 * - WATCHDOG=1 every half of $WATCHDOG_USEC, from a timer on the loop,
 *   when $WATCHDOG_PID is unset or names herdd.
 * - RELOADING=1 with MONOTONIC_USEC= (systemd 253 and later want both in
 *   one message) when a reload begins, then READY=1 once it has settled by
 *   the rule above: the changed workers run their new config and the
 *   removed ones are gone. A refused reload settles at once.
 * - STOPPING=1 when shutdown begins; nothing but STATUS and WATCHDOG after.
 *
 * Design notes:
 * - One per process, so static state: $NOTIFY_SOCKET belongs to the
 *   process, and is removed from the environment when read so that no
 *   child (process and exec kinds, jobs) notifies systemd in herdd's name.
 *   $WATCHDOG_USEC and $WATCHDOG_PID go too, as sd_notify's
 *   unset_environment does.
 * - Without $NOTIFY_SOCKET nothing is opened or allocated, and every hook
 *   is one test of a static flag: herdd outside systemd pays nothing.
 * - The pings come from a loop timer, never from a thread: a worker
 *   callback that blocks the loop stops them, and systemd restarts the unit
 *   (the right answer to a hung in-process worker).
 * - The counts are looked at from a 0 ms timer after a state change, not in
 *   the transition itself: starting 1000 workers is one STATUS, not 1000,
 *   and READY=1 is sent from the same place, after the STATUS it follows.
 * - Each message is a sendto() of the stored address on a non-blocking
 *   socket, not a connected one: a systemd that re-executes itself
 *   (daemon-reexec) binds a new socket at the same path, which a connected
 *   datagram socket would never reach again. A message systemd cannot take
 *   now is dropped: the loop never waits for it.
 * - An error is logged once (the first), then counted: a socket that stays
 *   broken must not fill the journal every 15 s. Nothing here is fatal.
 * - Both timers are unreferenced: they never keep the loop alive alone.
 */
#include "supervisor/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct notify {
    bool enabled; /* $NOTIFY_SOCKET was usable: the socket is open */
    bool open;    /* sup__notify_open ran (and no close since) */
    int closing;  /* handles whose close callback has not run yet */
    int fd;       /* the datagram socket, CLOEXEC */
    struct sockaddr_un addr;
    socklen_t addr_len;
    char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; /* for messages */
    uv_timer_t watchdog;  /* WATCHDOG=1; both timers exist only when enabled */
    uv_timer_t check;     /* the 0 ms timer that looks at the counts */
    uint64_t watchdog_ms; /* 0: no watchdog */
    struct sup *sup;      /* attached supervisor, or NULL */
    bool ready_sent;      /* READY=1 has been sent for the current start or reload */
    bool stopping;        /* STOPPING=1 sent */
    bool status_sent;
    int running, failed; /* the counts last sent in STATUS */
    uint64_t n_sent, n_failed;
    bool error_logged;
} nt = {.fd = -1};

bool sup__notify_enabled(void)
{
    return nt.enabled;
}

uint64_t sup__notify_watchdog_ms(void)
{
    return nt.enabled ? nt.watchdog_ms : 0;
}

/* report_error logs the first failure to notify, once. */
static void report_error(const char *what, int err)
{
    nt.n_failed++;
    if (nt.error_logged)
        return;
    nt.error_logged = true;
    sup_log(BASE_LOG_WARN, "notify",
            "%s %s: %s (systemd will not hear from herdd; this is logged once, and herdd runs "
            "on)",
            what, nt.name, strerror(err));
}

static int send_msg(const char *msg, size_t len)
{
    ssize_t n;

    do
        n = sendto(nt.fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&nt.addr,
                   nt.addr_len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int e = errno;
        report_error("cannot send to NOTIFY_SOCKET", e);
        return -e;
    }
    nt.n_sent++;
    return 0;
}

int sup__notify_send(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int n;

    if (!nt.enabled)
        return 0;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    /* A STATUS= carrying a long error message is cut, not refused. */
    return send_msg(msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

/* ---- counts and readiness ------------------------------------------------ */

/* settled: no worker is starting, and none is stopping in order to be
 * started again or removed (a restart or a reload's change under way).
 * A worker stopping because it ended (crashed, or exited) has started. */
static bool count(struct sup *s, int *running, int *failed)
{
    bool settled = true;

    *running = *failed = 0;
    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next) {
        *running += sw->state == SUP_RUNNING;
        *failed += sw->state == SUP_FAILED;
        if (sw->state == SUP_STARTING)
            settled = false;
        else if (sw->state == SUP_STOPPING &&
                 (sw->stop_reason == SUP_STOP_RESTART || sw->stop_reason == SUP_STOP_CHANGE ||
                  sw->stop_reason == SUP_STOP_REMOVE))
            settled = false;
    }
    return settled;
}

static void on_check(uv_timer_t *t)
{
    int running, failed;

    if (nt.sup == NULL)
        return;
    /* At the end of shutdown the workers are released, not failing: the
     * last counts sent stay the truth. */
    if (nt.stopping && nt.sup->workers == NULL)
        return;
    bool settled = count(nt.sup, &running, &failed);
    if (!nt.status_sent || running != nt.running || failed != nt.failed) {
        nt.status_sent = true;
        nt.running = running;
        nt.failed = failed;
        sup__notify_send("STATUS=%d workers running, %d failed", running, failed);
    }
    if (settled && !nt.ready_sent && !nt.stopping) {
        nt.ready_sent = true;
        sup__notify_send("READY=1");
    }
}

static void check_soon(void)
{
    /* Restarting a pending 0 ms timer keeps it pending: the transitions of
     * one loop turn are looked at once, on the next. */
    uv_timer_start(&nt.check, on_check, 0, 0);
}

void sup__notify_attach(struct sup *s)
{
    if (!nt.enabled)
        return;
    nt.sup = s;
    if (s != NULL)
        check_soon();
}

void sup__notify_changed(struct sup *s)
{
    if (!nt.enabled || s != nt.sup)
        return;
    check_soon();
}

void sup__notify_reloading(void)
{
    struct timespec ts;

    /* Before the first READY=1 systemd is still waiting for start-up: the
     * READY=1 that ends it will come after this reload has settled too. */
    if (!nt.enabled || nt.stopping || !nt.ready_sent)
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    nt.ready_sent = false;
    sup__notify_send("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)ts.tv_sec * 1000000u +
                                                             (unsigned long long)ts.tv_nsec / 1000);
    /* A reload that changes nothing (or is refused) settles on the next
     * turn with no state change to look at the counts. */
    if (nt.sup != NULL)
        check_soon();
}

void sup__notify_stopping(void)
{
    if (!nt.enabled || nt.stopping)
        return;
    nt.stopping = true;
    sup__notify_send("STOPPING=1");
}

/* ---- the watchdog ------------------------------------------------------ */

static void on_watchdog(uv_timer_t *t)
{
    sup__notify_send("WATCHDOG=1");
}

/* watchdog_period reads $WATCHDOG_USEC and $WATCHDOG_PID: the ping period
 * in ms (half the timeout), or 0 for none. */
static uint64_t watchdog_period(const char *usec, const char *pid)
{
    char *end;
    unsigned long long v;

    if (usec == NULL || *usec == '\0')
        return 0;
    if (pid != NULL && *pid != '\0') {
        errno = 0;
        unsigned long long p = strtoull(pid, &end, 10);
        if (errno != 0 || *end != '\0' || p == 0) {
            sup_log(BASE_LOG_WARN, "notify",
                    "WATCHDOG_PID=\"%.32s\" is not a process id: no watchdog pings", pid);
            return 0;
        }
        if (p != (unsigned long long)getpid()) {
            sup_log(BASE_LOG_INFO, "notify",
                    "WATCHDOG_PID=%llu is not herdd (pid %d): no watchdog pings", p, (int)getpid());
            return 0;
        }
    }
    errno = 0;
    v = strtoull(usec, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || *usec == '-') {
        sup_log(BASE_LOG_WARN, "notify",
                "WATCHDOG_USEC=\"%.32s\" is not a positive number of microseconds: no watchdog "
                "pings",
                usec);
        return 0;
    }
    v /= 2000; /* half the timeout, in ms: systemd's advice */
    return v > 0 ? v : 1;
}

/* ---- open and close ---------------------------------------------------- */

/* set_address fills nt.addr from $NOTIFY_SOCKET: 0, or -EINVAL with a
 * message logged. */
static int set_address(const char *v)
{
    size_t len = strlen(v);

    memset(&nt.addr, 0, sizeof(nt.addr));
    nt.addr.sun_family = AF_UNIX;
    snprintf(nt.name, sizeof(nt.name), "%.*s", (int)sizeof(nt.name) - 1, v);
    if (v[0] != '/' && v[0] != '@') {
        sup_log(BASE_LOG_WARN, "notify",
                "NOTIFY_SOCKET=\"%.64s\": expected an absolute path or @abstract name; not "
                "notifying systemd",
                v);
        return -EINVAL;
    }
    if (len < 2 || len >= sizeof(nt.addr.sun_path)) {
        sup_log(BASE_LOG_WARN, "notify", "NOTIFY_SOCKET=\"%.64s\": %s; not notifying systemd", v,
                len < 2 ? "empty name" : "longer than a socket address holds");
        return -EINVAL;
    }
    memcpy(nt.addr.sun_path, v, len);
    if (v[0] == '@')
        nt.addr.sun_path[0] = '\0'; /* the abstract namespace: no terminating NUL counted */
    nt.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (v[0] == '/'));
    return 0;
}

int sup__notify_open(uv_loop_t *loop)
{
    /* Copies: unsetenv frees or reuses the environment's strings. */
    char sock[sizeof(nt.addr.sun_path) + 64] = "", usec[32] = "", pid[32] = "";
    const char *v;
    bool have_usec = false, have_pid = false;

    if (nt.open || nt.closing > 0)
        return -EBUSY;
    if ((v = getenv("NOTIFY_SOCKET")) != NULL)
        snprintf(sock, sizeof(sock), "%s", v);
    if ((v = getenv("WATCHDOG_USEC")) != NULL) {
        snprintf(usec, sizeof(usec), "%s", v);
        have_usec = true;
    }
    if ((v = getenv("WATCHDOG_PID")) != NULL) {
        snprintf(pid, sizeof(pid), "%s", v);
        have_pid = true;
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");

    memset(&nt, 0, sizeof(nt));
    nt.fd = -1;
    nt.open = true;
    if (sock[0] == '\0' || set_address(sock) < 0)
        return 0;
    nt.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (nt.fd < 0) {
        sup_log(BASE_LOG_WARN, "notify", "cannot create a socket for NOTIFY_SOCKET %s: %s", nt.name,
                strerror(errno));
        return 0;
    }
    nt.enabled = true;
    uv_timer_init(loop, &nt.check);
    uv_unref((uv_handle_t *)&nt.check);
    nt.watchdog_ms = watchdog_period(have_usec ? usec : NULL, have_pid ? pid : NULL);
    uv_timer_init(loop, &nt.watchdog);
    uv_unref((uv_handle_t *)&nt.watchdog);
    if (nt.watchdog_ms > 0)
        uv_timer_start(&nt.watchdog, on_watchdog, nt.watchdog_ms, nt.watchdog_ms);
    sup_log(BASE_LOG_DEBUG, "notify", "notifying systemd at %s%s", nt.name,
            nt.watchdog_ms > 0 ? ", with watchdog pings" : "");
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    nt.closing--;
}

void sup__notify_close(void)
{
    if (!nt.open)
        return;
    nt.open = false;
    nt.sup = NULL;
    if (!nt.enabled)
        return;
    nt.enabled = false;
    if (nt.n_failed > 0)
        sup_log(BASE_LOG_WARN, "notify", "%llu of %llu messages to systemd were not delivered",
                (unsigned long long)nt.n_failed, (unsigned long long)(nt.n_failed + nt.n_sent));
    close(nt.fd);
    nt.fd = -1;
    nt.closing = 2;
    uv_close((uv_handle_t *)&nt.check, on_closed);
    uv_close((uv_handle_t *)&nt.watchdog, on_closed);
}
