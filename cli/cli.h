/*
 * cli: herdctl, the command-line client. Reaches herdd only through the bus
 * client (bus/client.h), or a host's herdd through NATS (libnats). Exit codes (DESIGN.md section
 * 8): 0 success, 1 an error reply, 2 usage, 3 herdd not reachable within the timeout.
 */
#ifndef HERD_CLI_H
#define HERD_CLI_H

#include <jansson.h>

#include "base/base.h"
#include "bus/client.h"

enum { CLI_OK = 0, CLI_ERROR = 1, CLI_USAGE = 2, CLI_UNREACHABLE = 3 };

/*
 * A transport: how herdctl reaches one herdd. Every command is written once
 * against cli_request/cli_query/cli_call_raw, cli_publish, cli_subscribe and
 * cli_next; two implementations sit behind them:
 *  - local (cli/local.c): the bus client on the runtime directory's sockets;
 *  - NATS (cli/nats.c, --nats URL --host HOST): a request is a NATS request
 *    on fleet.<host>.request whose payload is the bus request body and whose
 *    reply is the bus reply; a topic T is the subject fleet.<host>.T (the
 *    host's nats worker imports and exports them, DESIGN.md section 7b).
 * Nothing is dialed or connected until first used, so usage errors and
 * --help never need a herdd. Calls block; errors are negative errnos:
 * -ECONNREFUSED and -ETIMEDOUT mean "not reachable" (exit 3), and the
 * transport's `unreachable` says which (the directory, the URL, the host).
 */
typedef struct cli_transport_ops {
    const char *name; /* "local", "nats" */
    /* call: sends {"service","op","args"} (args borrowed, NULL for {}) and
     * waits up to timeout_ms for the reply's bytes (NUL-terminated, caller
     * frees). resend: an op without effects may be sent again when a
     * connection drops (local: bus_client_query; NATS sends once). */
    int (*call)(void *t, const char *service, const char *op, const json_t *args, int timeout_ms,
                bool resend, char **reply, size_t *reply_len);
    /* publish: one event; topic and payload are checked by the caller. */
    int (*publish)(void *t, const char *topic, const char *payload, size_t len);
    /* subscribe, next: events matching the patterns, as the local bus names
     * them (a NATS transport strips its fleet.<host>. prefix); ev stays
     * valid until the next call. */
    int (*subscribe)(void *t, const char *pattern);
    int (*next)(void *t, int timeout_ms, bus_event *ev);
    /* unreachable: for rv -ECONNREFUSED or -ETIMEDOUT of the last call, a
     * sentence naming what could not be reached, without "herdctl: ". */
    void (*unreachable)(const void *t, int rv, char *buf, size_t size);
    /* why: what the last failed call said beyond its errno, or "". */
    const char *(*why)(const void *t);
    void (*free)(void *t);
} cli_transport_ops;

typedef struct cli_ctx {
    const char *runtime_dir; /* NULL: the bus default */
    const char *nats_url;    /* --nats: NULL for the local sockets */
    const char *host;        /* --host: the fleet host NATS requests go to */
    int timeout_ms;
    bool timeout_set; /* --timeout was given (fleet status gathers 2 s otherwise) */
    int json;         /* --json: print results as JSON */
    const cli_transport_ops *ops;
    void *transport; /* ops' state, owned */
} cli_ctx;

typedef struct cli_cmd {
    const char *name;
    const char *args;                                /* usage after the name */
    const char *summary;                             /* one line */
    int (*run)(cli_ctx *ctx, int argc, char **argv); /* argv[0] is the name */
} cli_cmd;

/* cli_local_new makes the local transport for runtime directory dir (NULL:
 * the default). cli_nats_new makes the NATS transport for host over the
 * server(s) url; connect_ms bounds the connection. Both return 0 or
 * -ENOMEM and connect nothing yet. cli_nats_url_check tells whether url
 * is a NATS URL list herdctl takes (nats:// or tls://, host, optional
 * port; comma-separated), writing why not into err. */
int cli_local_new(const char *dir, void **out);
int cli_nats_new(const char *url, const char *host, int connect_ms, void **out);
int cli_nats_url_check(const char *url, char *err, size_t err_size);
extern const cli_transport_ops cli_local_ops;
extern const cli_transport_ops cli_nats_ops;

/* cli_nats_gather publishes body on subject with a reply inbox and calls
 * on_reply with each reply's bytes (borrowed; NUL-terminated) until
 * window_ms has passed: a scatter-gather (fleet.all.request). t must be a
 * NATS transport. Returns the number of replies or a negative errno
 * (-ECONNREFUSED: no server; then cli_nats_ops.unreachable says why). */
int cli_nats_gather(void *t, const char *subject, const char *body, size_t len, int window_ms,
                    void (*on_reply)(const char *reply, size_t len, void *data), void *data);

/* cli_open makes ctx's transport from its options (NATS with nats_url,
 * else local; any earlier one is freed), after checking they go together:
 * --host needs --nats; with --nats, --runtime-dir is refused, the URL and
 * the host are checked, and --host is required when need_host. Returns
 * CLI_OK, or CLI_USAGE / CLI_ERROR with the message printed. cli_close
 * frees the transport (harmless twice). */
int cli_open(cli_ctx *ctx, bool need_host);
void cli_close(cli_ctx *ctx);

/* cli_parse_timeout reads --timeout's SECONDS (more than 0, at most 86400,
 * fractions allowed) as ms; prints why and returns -1 when it is not. */
int cli_parse_timeout(const char *s);

/* cli_publish, cli_subscribe, cli_next: the transport's, for commands. */
int cli_publish(cli_ctx *ctx, const char *topic, const char *payload, size_t len);
int cli_subscribe(cli_ctx *ctx, const char *pattern);
int cli_next(cli_ctx *ctx, int timeout_ms, bus_event *ev);

/* cli_fail prints why a transport call failed and returns the exit status:
 * CLI_UNREACHABLE with the transport's account for -ECONNREFUSED and
 * -ETIMEDOUT, else "herdctl CMD: <why>" and `otherwise`. */
int cli_fail(const cli_ctx *ctx, const char *cmd, int rv, int otherwise);

/* cli_request sends a request and handles the reply the same way for every
 * command: on success *result gets the `result` value (caller owns) and 0
 * is returned; an error reply prints its message (or with --json the error
 * object) on stderr and returns CLI_ERROR; no herdd returns
 * CLI_UNREACHABLE. args is borrowed. */
int cli_request(cli_ctx *ctx, const char *service, const char *op, const json_t *args,
                json_t **result);

/* cli_query is cli_request for an op without effects (status, list, get,
 * output): it is sent again when a connection drops before the reply
 * (bus_client_query). */
int cli_query(cli_ctx *ctx, const char *service, const char *op, const json_t *args,
              json_t **result);

/* A reply kept as bytes: result points into frame (owned). */
typedef struct cli_raw {
    char *frame;
    size_t frame_len;
    const char *result;
    size_t len;
} cli_raw;

/* cli_call_raw is cli_request (query false) or cli_query (query true)
 * keeping the result's bytes as herdd sent them, so numbers of any size
 * and strings print exactly as the catalog holds them. On CLI_OK out
 * holds the result (cli_raw_free it); otherwise the error was printed as
 * cli_request does and out is empty. */
int cli_call_raw(cli_ctx *ctx, const char *service, const char *op, const json_t *args, bool query,
                 cli_raw *out);
void cli_raw_free(cli_raw *r);

/* cli_print_raw prints JSON text on stdout: as it is with --json, indented
 * else (the layout of cli_print_json). */
void cli_print_raw(const cli_ctx *ctx, const char *json, size_t len);

/* cli_bus_error is what to print for a failed transport call: its own
 * account when it has one (a refused runtime directory), else strerror. */
const char *cli_bus_error(const cli_ctx *ctx, int rv);

/* cli_print_json prints v on stdout: compact with --json, indented else. */
void cli_print_json(const cli_ctx *ctx, const json_t *v);

/* cli_wants_help tells whether argv asks for --help / -h. */
int cli_wants_help(int argc, char **argv);

/* cli_usage_error prints "herdctl CMD: message" and the command's usage. */
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_sub_usage is cli_usage_error for a subcommand ("herdctl job get:"):
 * with args it prints the usage line, without it points at --help.
 * Returns CLI_USAGE. */
int cli_sub_usage(const char *cmd, const char *sub, const char *args, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* cli_print_help prints the command's usage line and summary. */
void cli_print_help(const cli_cmd *cmd, const char *details);

/* cli_format_bytes writes a human size such as "4.2 MiB". */
void cli_format_bytes(char *buf, size_t size, double bytes);

/* cli_format_uptime writes seconds as "42s", "17m", "5h" or "3d". */
void cli_format_uptime(char *buf, size_t size, long long s);

/* The commands, one table per file. */
extern const cli_cmd cli_bus_cmds[];
extern const cli_cmd cli_sup_cmds[];
extern const cli_cmd cli_catalog_cmds[];
extern const cli_cmd cli_job_cmds[];
extern const cli_cmd cli_fleet_cmds[];

#endif
