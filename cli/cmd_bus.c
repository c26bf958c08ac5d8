/* herdctl pub, sub, req: the bus from the command line. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STDIN_MAX (256u << 20)

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);

    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            if (cap >= STDIN_MAX) {
                free(buf);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

static int cmd_pub(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *cmd = &cli_bus_cmds[0];
    char *payload;
    size_t len;
    int rv;

    if (cli_wants_help(argc, argv)) {
        cli_print_help(cmd, "Publishes one event: TOPIC is dot-separated tokens of\n"
                            "[A-Za-z0-9_-]; JSON is one JSON value (read from stdin when\n"
                            "omitted).\n");
        return CLI_OK;
    }
    if (argc < 2 || argc > 3)
        return cli_usage_error(cmd, "expected a topic and at most one JSON argument");
    if (bus_topic_check(argv[1], strlen(argv[1])) < 0)
        return cli_usage_error(cmd,
                               "invalid topic \"%s\" (dot-separated tokens of "
                               "[A-Za-z0-9_-], at most 255 bytes)",
                               argv[1]);
    if (bus_topic_reserved(argv[1], strlen(argv[1])))
        return cli_usage_error(cmd,
                               "\"%s\" is a topic herdd owns (system.<w>.state and .health, "
                               "system.supervisor.>, job.>, catalog.>): only herdd publishes it",
                               argv[1]);
    if (argc == 3) {
        payload = strdup(argv[2]);
        len = strlen(argv[2]);
    } else {
        payload = read_all(stdin, &len);
    }
    if (payload == NULL) {
        fprintf(stderr, "herdctl pub: cannot read the payload (over %u bytes?)\n", STDIN_MAX);
        return CLI_ERROR;
    }
    /* A trailing newline from a shell or file is not part of the value. */
    while (len > 0 && (payload[len - 1] == '\n' || payload[len - 1] == '\r'))
        len--;
    if (!bus_json_check(payload, len)) {
        free(payload);
        return cli_usage_error(cmd, "the payload is not one valid JSON value");
    }
    rv = cli_publish(ctx, argv[1], payload, len);
    free(payload);
    return rv < 0 ? cli_fail(ctx, "pub", rv, CLI_ERROR) : CLI_OK;
}

static int cmd_sub(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *cmd = &cli_bus_cmds[1];
    const char *pattern = NULL;
    long count = -1;
    bus_event ev;
    int rv;

    if (cli_wants_help(argc, argv)) {
        cli_print_help(cmd, "Prints matching events as they arrive, one \"TOPIC PAYLOAD\" line\n"
                            "each (with --json: {\"topic\":...,\"payload\":...} a line).\n"
                            "PATTERN: `*` matches one token, `>` one or more trailing ones.\n"
                            "  --count N   exit after N events\n");
        return CLI_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            char *end;
            count = strtol(argv[++i], &end, 10);
            if (*end != '\0' || count < 1)
                return cli_usage_error(cmd, "--count: expected a positive integer, got \"%s\"",
                                       argv[i]);
        } else if (pattern == NULL && argv[i][0] != '-') {
            pattern = argv[i];
        } else {
            return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[i]);
        }
    }
    if (pattern == NULL)
        return cli_usage_error(cmd, "expected a pattern");
    if (bus_pattern_check(pattern, strlen(pattern)) < 0)
        return cli_usage_error(cmd, "invalid pattern \"%s\"", pattern);
    rv = cli_subscribe(ctx, pattern);
    if (rv < 0)
        return cli_fail(ctx, "sub", rv, CLI_ERROR);
    for (long n = 0; count < 0 || n < count; n++) {
        rv = cli_next(ctx, -1, &ev);
        if (rv < 0) {
            fprintf(stderr, "herdctl sub: %s\n", cli_bus_error(ctx, rv));
            return CLI_ERROR;
        }
        if (ctx->json) {
            json_t *p =
                json_loadb(ev.payload, ev.payload_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            json_t *o = json_pack("{s:s%,s:o}", "topic", ev.topic, ev.topic_len, "payload",
                                  p != NULL ? p : json_null());
            char *s = o != NULL ? base_json_dumps(o, JSON_COMPACT) : NULL;
            if (s != NULL)
                puts(s);
            free(s);
            json_decref(o);
        } else {
            printf("%.*s %.*s\n", (int)ev.topic_len, ev.topic, (int)ev.payload_len, ev.payload);
        }
        fflush(stdout);
    }
    return CLI_OK;
}

static int cmd_req(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *cmd = &cli_bus_cmds[2];
    json_t *args = NULL;
    int rv;

    if (cli_wants_help(argc, argv)) {
        cli_print_help(cmd, "Sends {\"service\",\"op\",\"args\"} to request.ipc and prints the\n"
                            "reply's result as JSON. SERVICE is a worker name or supervisor.\n");
        return CLI_OK;
    }
    if (argc < 3 || argc > 4)
        return cli_usage_error(cmd, "expected SERVICE OP [ARGS_JSON]");
    if (argc == 4) {
        json_error_t jerr;
        args = json_loads(argv[3], 0, &jerr);
        if (!json_is_object(args)) {
            json_decref(args);
            return cli_usage_error(cmd, "ARGS_JSON must be a JSON object%s%s",
                                   args != NULL ? "" : ": ", args != NULL ? "" : jerr.text);
        }
    }
    cli_raw raw;
    rv = cli_call_raw(ctx, argv[1], argv[2], args, false, &raw);
    json_decref(args);
    if (rv == CLI_OK) {
        cli_print_raw(ctx, raw.result, raw.len);
        cli_raw_free(&raw);
    }
    return rv;
}

const cli_cmd cli_bus_cmds[] = {
    {"pub", "TOPIC [JSON]", "publish one event (JSON from stdin when omitted)", cmd_pub},
    {"sub", "PATTERN [--count N]", "print matching events as they arrive", cmd_sub},
    {"req", "SERVICE OP [ARGS_JSON]", "send a request and print its result", cmd_req},
    {NULL, NULL, NULL, NULL},
};
