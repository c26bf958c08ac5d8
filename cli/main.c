/* herdctl: global options, command dispatch, and the shared reply handling. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_cmd *const tables[] = {cli_sup_cmds, cli_bus_cmds, cli_job_cmds, cli_catalog_cmds,
                                        cli_fleet_cmds};

static void usage(FILE *f)
{
    fputs(
        "Usage: herdctl [--runtime-dir DIR | --nats URL --host HOST] [--timeout SECONDS] [--json]\n"
        "               COMMAND ...\n"
        "\n"
        "Talks to herdd over its bus sockets (events.ipc, publish.ipc, request.ipc),\n"
        "or with --nats to the herdd of one host of a fleet through a NATS server.\n"
        "\n"
        "Commands:\n",
        f);
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        for (const cli_cmd *c = tables[t]; c->name != NULL; c++) {
            char head[64];
            snprintf(head, sizeof(head), "%s %s", c->name, c->args);
            fprintf(f, "  %-30s %s\n", head, c->summary);
        }
    fputs("\n"
          "Options:\n"
          "  --runtime-dir DIR   herdd's runtime directory (default: $HERD_RUNTIME_DIR,\n"
          "                      else $XDG_RUNTIME_DIR/herd, else /tmp/herd-<uid>)\n"
          "  --nats URL          reach herdd through the NATS server URL (nats://HOST[:PORT],\n"
          "                      tls://...; several comma-separated) instead of the local\n"
          "                      sockets: requests on fleet.HOST.request, topics as\n"
          "                      fleet.HOST.TOPIC\n"
          "  --host HOST         the fleet host (its herdd's \"host\") --nats talks to\n"
          "  --timeout SECONDS   how long to wait for herdd (default 5; fleet status\n"
          "                      gathers replies for 2 unless given)\n"
          "  --json              print results as JSON\n"
          "  -h, --help          show this help (COMMAND --help for a command)\n"
          "  -V, --version       show the version\n"
          "\n"
          "Exit status: 0 success, 1 error reply, 2 usage, 3 herdd not reachable (or the\n"
          "NATS server, or the host, within the timeout).\n",
          f);
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

void cli_print_help(const cli_cmd *cmd, const char *details)
{
    printf("Usage: herdctl %s %s\n\n%s\n", cmd->name, cmd->args, cmd->summary);
    if (details != NULL)
        printf("\n%s", details);
}

static int vusage(const char *cmd, const char *sub, const char *args, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int vusage(const char *cmd, const char *sub, const char *args, const char *fmt, va_list ap)
{
    const char *sp = sub != NULL ? " " : "", *sb = sub != NULL ? sub : "";

    fprintf(stderr, "herdctl %s%s%s: ", cmd, sp, sb);
    vfprintf(stderr, fmt, ap);
    if (args != NULL)
        fprintf(stderr, "\nUsage: herdctl %s%s%s %s\n", cmd, sp, sb, args);
    else
        fprintf(stderr, "\n(see herdctl %s%s%s --help)\n", cmd, sp, sb);
    return CLI_USAGE;
}

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vusage(cmd->name, NULL, cmd->args, fmt, ap);
    va_end(ap);
    return CLI_USAGE;
}

int cli_sub_usage(const char *cmd, const char *sub, const char *args, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vusage(cmd, sub, args, fmt, ap);
    va_end(ap);
    return CLI_USAGE;
}

void cli_format_bytes(char *buf, size_t size, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;

    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f B", bytes);
    else
        snprintf(buf, size, "%.1f %s", bytes, units[u]);
}

void cli_format_uptime(char *buf, size_t size, long long s)
{
    if (s < 120)
        snprintf(buf, size, "%llds", s);
    else if (s < 7200)
        snprintf(buf, size, "%lldm", s / 60);
    else if (s < 172800)
        snprintf(buf, size, "%lldh", s / 3600);
    else
        snprintf(buf, size, "%lldd", s / 86400);
}

void cli_print_json(const cli_ctx *ctx, const json_t *v)
{
    char *s = base_json_dumps(v, JSON_ENCODE_ANY | (ctx->json ? JSON_COMPACT : JSON_INDENT(2)));
    if (s != NULL) {
        puts(s);
        free(s);
    }
}

int cli_publish(cli_ctx *ctx, const char *topic, const char *payload, size_t len)
{
    return ctx->ops->publish(ctx->transport, topic, payload, len);
}

int cli_subscribe(cli_ctx *ctx, const char *pattern)
{
    return ctx->ops->subscribe(ctx->transport, pattern);
}

int cli_next(cli_ctx *ctx, int timeout_ms, bus_event *ev)
{
    return ctx->ops->next(ctx->transport, timeout_ms, ev);
}

const char *cli_bus_error(const cli_ctx *ctx, int rv)
{
    const char *why = ctx->transport != NULL ? ctx->ops->why(ctx->transport) : "";

    return why[0] != '\0' ? why : strerror(-rv);
}

int cli_fail(const cli_ctx *ctx, const char *cmd, int rv, int otherwise)
{
    if (rv == -ECONNREFUSED || rv == -ETIMEDOUT) {
        char msg[512];
        ctx->ops->unreachable(ctx->transport, rv, msg, sizeof(msg));
        fprintf(stderr, "herdctl: %s\n", msg);
        return CLI_UNREACHABLE;
    }
    if (cmd != NULL)
        fprintf(stderr, "herdctl %s: %s\n", cmd, cli_bus_error(ctx, rv));
    else
        fprintf(stderr, "herdctl: request failed: %s\n", cli_bus_error(ctx, rv));
    return otherwise;
}

static int handle_reply(cli_ctx *ctx, int rv, json_t *reply, json_t **result);

/* The reply as JSON, as bus_client_request reads it: a result holding a
 * number beyond jansson's integers (a catalog entry's
 * 17008162028057714984) is read with numbers as doubles rather than fail;
 * cli_call_raw gives the exact bytes. */
static int call_json(cli_ctx *ctx, const char *service, const char *op, const json_t *args,
                     bool resend, json_t **reply)
{
    char *raw;
    size_t raw_len;
    int rv =
        ctx->ops->call(ctx->transport, service, op, args, ctx->timeout_ms, resend, &raw, &raw_len);

    *reply = NULL;
    if (rv < 0)
        return rv;
    *reply = json_loadb(raw, raw_len, JSON_ALLOW_NUL, NULL);
    if (*reply == NULL)
        *reply = json_loadb(raw, raw_len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
    free(raw);
    return *reply != NULL ? 0 : -EPROTO;
}

int cli_request(cli_ctx *ctx, const char *service, const char *op, const json_t *args,
                json_t **result)
{
    json_t *reply = NULL;
    int rv = call_json(ctx, service, op, args, false, &reply);

    return handle_reply(ctx, rv, reply, result);
}

int cli_query(cli_ctx *ctx, const char *service, const char *op, const json_t *args,
              json_t **result)
{
    json_t *reply = NULL;
    int rv = call_json(ctx, service, op, args, true, &reply);

    return handle_reply(ctx, rv, reply, result);
}

static int handle_reply(cli_ctx *ctx, int rv, json_t *reply, json_t **result)
{
    *result = NULL;
    if (rv < 0)
        return cli_fail(ctx, NULL, rv, CLI_UNREACHABLE);
    if (json_is_true(json_object_get(reply, "ok"))) {
        *result = json_incref(json_object_get(reply, "result"));
        json_decref(reply);
        return CLI_OK;
    }
    json_t *e = json_object_get(reply, "error");
    if (ctx->json) {
        char *s = base_json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(stderr, "%s\n", s != NULL ? s : "null");
        free(s);
    } else {
        fprintf(stderr, "herdctl: %s: %s\n", json_string_value(json_object_get(e, "code")),
                json_string_value(json_object_get(e, "message")));
    }
    json_decref(reply);
    return CLI_ERROR;
}

int cli_call_raw(cli_ctx *ctx, const char *service, const char *op, const json_t *args, bool query,
                 cli_raw *out)
{
    memset(out, 0, sizeof(*out));
    int rv = ctx->ops->call(ctx->transport, service, op, args, ctx->timeout_ms, query, &out->frame,
                            &out->frame_len);
    if (rv == 0) {
        /* {"ok":true,"result":...}: the result's bytes, or the error path */
        base_json_scan sc;
        size_t ka, kz, va, vz, ra = 0, rz = 0;
        int first = 1, ok = 0, more;
        base_json_scan_init(&sc, out->frame, out->frame_len);
        if (base_json_scan_expect(&sc, '{') == 0) {
            while ((more = base_json_scan_member(&sc, &first, &ka, &kz)) > 0 &&
                   base_json_scan_value(&sc, &va, &vz) == 0) {
                if (kz - ka == 4 && memcmp(out->frame + ka, "\"ok\"", 4) == 0)
                    ok = vz - va == 4 && memcmp(out->frame + va, "true", 4) == 0;
                else if (kz - ka == 8 && memcmp(out->frame + ka, "\"result\"", 8) == 0)
                    ra = va, rz = vz;
            }
        }
        if (ok && rz > ra) {
            out->result = out->frame + ra;
            out->len = rz - ra;
            return CLI_OK;
        }
    }
    json_t *reply = NULL, *result = NULL;
    if (rv == 0) {
        reply =
            json_loadb(out->frame, out->frame_len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
        if (reply == NULL)
            rv = -EPROTO;
    }
    cli_raw_free(out);
    rv = handle_reply(ctx, rv, reply, &result);
    json_decref(result);
    return rv == CLI_OK ? CLI_ERROR : rv; /* ok without a result: not a reply */
}

void cli_raw_free(cli_raw *r)
{
    free(r->frame);
    memset(r, 0, sizeof(*r));
}

/* Indents JSON text two spaces a level, as jansson's JSON_INDENT(2) does,
 * copying every scalar byte for byte. */
static void print_indented(const char *p, size_t len)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < len && p[j] != '"')
                j += p[j] == '\\' ? 2 : 1;
            fwrite(p + i, 1, j + 1 - i, stdout);
            i = j;
        } else if (c == '{' || c == '[') {
            size_t j = i + 1;
            while (j < len && (p[j] == ' ' || p[j] == '\n' || p[j] == '\t' || p[j] == '\r'))
                j++;
            if (j < len && (p[j] == '}' || p[j] == ']')) {
                printf("%c%c", c, p[j]);
                i = j;
                continue;
            }
            printf("%c\n%*s", c, 2 * ++depth, "");
        } else if (c == '}' || c == ']') {
            printf("\n%*s%c", 2 * --depth, "", c);
        } else if (c == ',') {
            printf(",\n%*s", 2 * depth, "");
        } else if (c == ':') {
            fputs(": ", stdout);
        } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            putchar(c);
        }
    }
    putchar('\n');
}

void cli_print_raw(const cli_ctx *ctx, const char *json, size_t len)
{
    if (ctx->json) {
        fwrite(json, 1, len, stdout);
        putchar('\n');
    } else {
        print_indented(json, len);
    }
}

static const cli_cmd *find(const char *name)
{
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        for (const cli_cmd *c = tables[t]; c->name != NULL; c++)
            if (strcmp(c->name, name) == 0)
                return c;
    return NULL;
}

void cli_close(cli_ctx *ctx)
{
    if (ctx->ops != NULL)
        ctx->ops->free(ctx->transport);
    ctx->ops = NULL;
    ctx->transport = NULL;
}

int cli_open(cli_ctx *ctx, bool need_host)
{
    char err[256];
    int rv;

    cli_close(ctx);
    if (ctx->nats_url == NULL) {
        if (ctx->host != NULL) {
            fprintf(stderr, "herdctl: --host needs --nats URL (the NATS server the host is on)\n");
            return CLI_USAGE;
        }
        ctx->ops = &cli_local_ops;
        rv = cli_local_new(ctx->runtime_dir, &ctx->transport);
    } else {
        if (ctx->runtime_dir != NULL) {
            fprintf(stderr, "herdctl: --runtime-dir and --nats exclude each other: --nats reaches "
                            "a host's herdd through NATS, not a runtime directory\n");
            return CLI_USAGE;
        }
        if (cli_nats_url_check(ctx->nats_url, err, sizeof(err)) < 0) {
            fprintf(stderr, "herdctl: --nats: %s\n", err);
            return CLI_USAGE;
        }
        if (need_host && ctx->host == NULL) {
            fprintf(stderr, "herdctl: --nats needs --host HOST, the host to send the command to "
                            "(only fleet status asks every host)\n");
            return CLI_USAGE;
        }
        if (ctx->host != NULL &&
            (strchr(ctx->host, '.') != NULL || bus_topic_check(ctx->host, strlen(ctx->host)) < 0)) {
            fprintf(stderr,
                    "herdctl: --host: \"%s\" is not a host name of a fleet (one topic token "
                    "of [A-Za-z0-9_-])\n",
                    ctx->host);
            return CLI_USAGE;
        }
        if (ctx->host != NULL && strcmp(ctx->host, "all") == 0) {
            fprintf(stderr, "herdctl: --host all would ask every host and print one answer; "
                            "herdctl fleet status asks them all\n");
            return CLI_USAGE;
        }
        ctx->ops = &cli_nats_ops;
        rv = cli_nats_new(ctx->nats_url, ctx->host, ctx->timeout_ms, &ctx->transport);
    }
    if (rv < 0) {
        ctx->ops = NULL;
        fprintf(stderr, "herdctl: out of memory\n");
        return CLI_ERROR;
    }
    return CLI_OK;
}

/* parse_timeout: --timeout's value, in ms; -1 when it is not one. */
int cli_parse_timeout(const char *s)
{
    char *end;
    double v = strtod(s, &end);

    if (*end != '\0' || end == s || !(v > 0) || v > 86400) {
        fprintf(stderr, "herdctl: --timeout: expected seconds from 0 to 86400, got \"%s\"\n", s);
        return -1;
    }
    return v * 1000 < 1 ? 1 : (int)(v * 1000);
}

int main(int argc, char **argv)
{
    cli_ctx ctx = {.timeout_ms = 5000};
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("herdctl %s\n", HERD_VERSION);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            ctx.json = 1;
        } else if (strcmp(a, "--runtime-dir") == 0 && i + 1 < argc) {
            ctx.runtime_dir = argv[++i];
        } else if (strcmp(a, "--nats") == 0 && i + 1 < argc) {
            ctx.nats_url = argv[++i];
        } else if (strcmp(a, "--host") == 0 && i + 1 < argc) {
            ctx.host = argv[++i];
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            if ((ctx.timeout_ms = cli_parse_timeout(argv[++i])) < 0)
                return CLI_USAGE;
            ctx.timeout_set = true;
        } else {
            fprintf(stderr, "herdctl: unknown option \"%s\"\n", a);
            usage(stderr);
            return CLI_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    const cli_cmd *cmd = find(argv[i]);
    if (cmd == NULL) {
        fprintf(stderr, "herdctl: unknown command \"%s\" (see herdctl --help)\n", argv[i]);
        return CLI_USAGE;
    }
    /* fleet checks its own options (it takes --nats after its name too) */
    int rv = cmd->run == cli_fleet_cmds[0].run ? CLI_OK : cli_open(&ctx, true);
    if (rv == CLI_OK)
        rv = cmd->run(&ctx, argc - i, argv + i);
    cli_close(&ctx);
    return rv;
}
