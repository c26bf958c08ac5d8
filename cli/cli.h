/*
 * cli: herdctl, the command-line client. Reaches herdd only through the bus
 * client (bus/bus.h). Exit codes (DESIGN.md section 8): 0 success, 1 an
 * error reply, 2 usage, 3 herdd not reachable within the timeout.
 */
#ifndef HERD_CLI_H
#define HERD_CLI_H

#include <jansson.h>

#include "base/base.h"
#include "bus/client.h"

enum { CLI_OK = 0, CLI_ERROR = 1, CLI_USAGE = 2, CLI_UNREACHABLE = 3 };

typedef struct cli_ctx {
    const char *runtime_dir; /* NULL: the bus default */
    int timeout_ms;
    int json; /* --json: print results as JSON */
    bus_client *client;
} cli_ctx;

typedef struct cli_cmd {
    const char *name;
    const char *args;                                /* usage after the name */
    const char *summary;                             /* one line */
    int (*run)(cli_ctx *ctx, int argc, char **argv); /* argv[0] is the name */
} cli_cmd;

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

/* cli_bus_error is what to print for a failed bus call: the client's own
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

/* The commands, one table per file. */
extern const cli_cmd cli_bus_cmds[];
extern const cli_cmd cli_sup_cmds[];
extern const cli_cmd cli_catalog_cmds[];
extern const cli_cmd cli_job_cmds[];

#endif
