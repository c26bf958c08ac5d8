/*
 * herdd: the herd supervisor. Loads the config, opens the bus on one libuv
 * loop, serves the `supervisor` service, and exits 0 on SIGTERM or SIGINT
 * after closing the sockets and removing their files.
 */
#include "supervisor/internal.h" /* the HTTP API: herdd's own part of the module */
#include "supervisor/supervisor.h"
#include "workers/worker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "Usage: herdd [-c FILE] [--check] [--log-level LEVEL]\n"
    "\n"
    "The herd supervisor: hosts many workers on one event loop, joined by a\n"
    "message bus in the runtime directory (events.ipc, publish.ipc, request.ipc).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE    configuration file (JSON); without it, built-in defaults\n"
    "      --check          validate the configuration and exit (0 valid, 1 not)\n"
    "      --log-level L    error, warn, info (default) or debug\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Environment: HERD_RUNTIME_DIR (bus directory when the config names none),\n"
    "HERD_STATE_DIR (state directory when the config names none); under systemd,\n"
    "NOTIFY_SOCKET and WATCHDOG_USEC (READY=1, STATUS=, WATCHDOG=1; not passed on\n"
    "to workers' children).\n"
    "Signals: SIGTERM and SIGINT stop every worker in reverse start order, then\n"
    "herdd (exit 0); SIGHUP reloads the configuration file.\n";

typedef struct herdd {
    uv_loop_t *loop;
    bus *bus;
    sup *sup;
    sup_http_api *http; /* NULL when http.listen is "" */
    uv_signal_t sig_term, sig_int, sig_hup;
    int stopping;
    int exit_code;
} herdd;

static void bus_log(enum base_log_level level, const char *msg, void *data)
{
    sup_log(level, "bus", "%s", msg);
}

/* The supervisor has stopped every worker: close the bus, then the loop
 * runs out of handles and main returns. */
static void on_sup_closed(int exit_code, void *data)
{
    herdd *h = data;

    if (exit_code > h->exit_code)
        h->exit_code = exit_code;
    sup__notify_close();
    /* The supervisor is gone: HTTP closes before the bus its streams use. */
    sup__http_api_close(h->http);
    h->http = NULL;
    bus_close(h->bus, NULL, NULL);
    uv_close((uv_handle_t *)&h->sig_term, NULL);
    uv_close((uv_handle_t *)&h->sig_int, NULL);
    uv_close((uv_handle_t *)&h->sig_hup, NULL);
}

static void stop(herdd *h, const char *why)
{
    if (h->stopping)
        return;
    h->stopping = 1;
    sup__notify_stopping();
    sup_log(BASE_LOG_INFO, "supervisor", "%s: stopping every worker, then herdd", why);
    sup_shutdown(h->sup, on_sup_closed, h);
}

static void on_give_up(void *data)
{
    herdd *h = data;
    h->exit_code = 1;
    stop(h, "a worker gave up and on_give_up is \"exit\"");
}

static void on_signal(uv_signal_t *s, int signum)
{
    herdd *h = s->data;

    if (signum == SIGHUP) {
        char err[1024];
        json_t *summary = NULL;
        /* Workers are being stopped for good: a reload would start some
         * again, and systemd has been told STOPPING=1. */
        if (h->stopping) {
            sup_log(BASE_LOG_WARN, "supervisor", "SIGHUP ignored: herdd is stopping");
            return;
        }
        sup__notify_reloading();
        if (sup_reload(h->sup, &summary, err, sizeof(err)) < 0)
            sup_log(BASE_LOG_ERROR, "supervisor", "SIGHUP: reload refused, nothing changed: %s",
                    err);
        json_decref(summary);
        return;
    }
    stop(h, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"check", no_argument, NULL, 'k'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL;
    int check = 0, c, rv;
    enum base_log_level level = BASE_LOG_INFO;
    sup_config cfg;
    char err[1024];
    herdd h = {0};

    /* The process kind's exec trampoline: herdd re-executed as a child. */
    if (argc > 1 && strcmp(argv[1], "--worker-exec") == 0)
        return worker_exec_main(argc, argv) < 0 ? 2 : 127;
    /* Before anything allocates through jansson or libuv. */
    if (base_mem_install() < 0) {
        fprintf(stderr, "herdd: cannot install the accounting allocator\n");
        return 1;
    }

    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_file = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'l':
            if (base_log_level_parse(optarg, &level) < 0) {
                fprintf(stderr,
                        "herdd: --log-level: expected error, warn, info or debug, got "
                        "\"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            printf("herdd %s\n", HERD_VERSION);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "herdd: unexpected argument \"%s\"\n%s", argv[optind], usage);
        return 2;
    }
    sup_log_set_level(level);
    sup_config_defaults(&cfg);
    rv = config_file != NULL ? sup_config_load(config_file, &cfg, err, sizeof(err))
                             : sup_config_default(&cfg, err, sizeof(err));
    if (rv < 0) {
        fprintf(stderr, "herdd: %s\n", err);
        return 1;
    }
    if (check) {
        printf("herdd: %s: configuration is valid (%zu workers)\n",
               config_file != NULL ? config_file : "(built-in)", cfg.n_workers);
        sup_config_free(&cfg);
        return 0;
    }

    signal(SIGPIPE, SIG_IGN);
    bool tightened;
    err[0] = '\0';
    if ((rv = base_mkdir_p(cfg.state_dir, 0750)) < 0 ||
        (rv = base_private_dir(cfg.state_dir, 0750, false, true, &tightened, err, sizeof(err))) <
            0) {
        if (err[0] != '\0')
            fprintf(stderr, "herdd: state_dir %s\n", err);
        else
            fprintf(stderr, "herdd: state_dir %s: %s\n", cfg.state_dir, strerror(-rv));
        sup_config_free(&cfg);
        return 1;
    }
    if (tightened)
        sup_log(BASE_LOG_WARN, "supervisor", "state_dir %s was open to other users; now mode 0750",
                cfg.state_dir);
    h.loop = uv_default_loop();
    /* Before the bus starts nng's threads and before any child: it takes
     * NOTIFY_SOCKET out of the environment they would inherit. */
    sup__notify_open(h.loop);
    bus_config bc = {
        .dir = cfg.runtime_dir,
        .max_message_bytes = cfg.max_message_bytes,
        .max_reply_bytes = cfg.max_reply_bytes,
        .max_connections = (size_t)cfg.max_connections,
        .pending_reply_bytes = cfg.pending_reply_bytes,
        .pending_reply_bytes_total = cfg.pending_reply_bytes_total,
        .subscriber_buffer = cfg.subscriber_buffer,
        .queue_max = cfg.queue_max,
        .listener_check_ms = cfg.listener_check_ms,
        .tcp_events = cfg.tcp_url[0],
        .tcp_publish = cfg.tcp_url[1],
        .tcp_request = cfg.tcp_url[2],
        .tls_cert_file = cfg.tls_cert_file,
        .tls_key_file = cfg.tls_key_file,
        .log = bus_log,
    };
    if ((rv = bus_open(h.loop, &bc, &h.bus, err, sizeof(err))) < 0) {
        fprintf(stderr, "herdd: %s\n", err);
        sup__notify_send("STATUS=cannot open the bus: %s", err);
        sup__notify_close();
        sup_config_free(&cfg);
        uv_run(h.loop, UV_RUN_DEFAULT);
        uv_loop_close(h.loop);
        return 1;
    }
    /* HTTP next, before any worker starts: a bad or busy address stops
     * herdd as a busy bus directory does. */
    sup_http_limits http_limits = {
        .max_connections = cfg.http_max_connections,
        .max_streams = cfg.http_max_streams,
        .idle_timeout_ms = (uint64_t)cfg.http_idle_timeout_s * 1000,
        .fleet_max_hosts = cfg.http_fleet_max_hosts,
    };
    if (cfg.http_listen[0] != '\0' &&
        sup__http_api_open(h.loop, h.bus, cfg.http_listen, &http_limits, &h.http, err,
                           sizeof(err)) < 0) {
        fprintf(stderr, "herdd: %s\n", err);
        sup__notify_send("STATUS=cannot listen for HTTP: %s", err);
        sup__notify_close();
        sup_config_free(&cfg);
        bus_close(h.bus, NULL, NULL);
        uv_run(h.loop, UV_RUN_DEFAULT);
        uv_loop_close(h.loop);
        return 1;
    }
    if (h.http != NULL) {
        char where[INET6_ADDRSTRLEN + 16];
        sup__http_api_address(h.http, where, sizeof(where));
        sup_log(BASE_LOG_INFO, "http",
                "listening on http://%s/ (/healthz, /metrics, /api/status, "
                "/api/events, /api/fleet)",
                where);
    }
    uv_signal_init(h.loop, &h.sig_term);
    uv_signal_init(h.loop, &h.sig_int);
    uv_signal_init(h.loop, &h.sig_hup);
    h.sig_term.data = h.sig_int.data = h.sig_hup.data = &h;
    uv_signal_start(&h.sig_term, on_signal, SIGTERM);
    uv_signal_start(&h.sig_int, on_signal, SIGINT);
    uv_signal_start(&h.sig_hup, on_signal, SIGHUP);
    sup_log(BASE_LOG_INFO, "supervisor", "herdd %s listening in %s (state in %s, %zu workers)",
            HERD_VERSION, cfg.runtime_dir, cfg.state_dir, cfg.n_workers);
    rv = sup_new(h.loop, &cfg, config_file, h.bus, &h.sup);
    sup__http_api_attach(h.http, h.sup);
    if (h.sup == NULL) {
        fprintf(stderr, "herdd: cannot start the supervisor: %s\n", strerror(-rv));
        sup_config_free(&cfg);
        on_sup_closed(1, &h);
    } else {
        sup_set_exit_handler(h.sup, on_give_up, &h);
        /* Every enabled worker's start has been attempted: READY=1 follows
         * on the next loop turn at which none is still starting. */
        sup__notify_attach(h.sup);
        if (rv < 0) {
            sup_log(BASE_LOG_ERROR, "supervisor", "cannot start the workers: %s", strerror(-rv));
            h.exit_code = 1;
            stop(&h, "start-up failure");
        }
    }

    uv_run(h.loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(h.loop);
    if (rv != 0)
        sup_log(BASE_LOG_WARN, "supervisor", "loop closed with handles open: %s", uv_strerror(rv));
    sup_log(BASE_LOG_INFO, "supervisor", "stopped (exit %d)", h.exit_code);
    return h.exit_code;
}
