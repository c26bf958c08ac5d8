/*
 * herdctl fleet status: every host of a fleet at once, through NATS
 * (DESIGN.md sections 7b and 8). A scatter-gather: the supervisor's status
 * request goes out on fleet.all.request with a reply inbox, every host's
 * nats worker routes it to its herdd, and each reply that comes back
 * within the window (--timeout, 2 s unless given) is one row.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATHER_MS 2000

static const char status_args[] = "--nats URL [--timeout SECONDS] [--json]";
static const char status_details[] =
    "Sends {\"service\":\"supervisor\",\"op\":\"status\"} to every host on fleet.all.request\n"
    "and prints one row per host that answered, sorted by host: its herdd's version,\n"
    "uptime, resident memory, and its workers (all, running, failed).\n"
    "  --nats URL          the NATS server (also before the command)\n"
    "  --timeout SECONDS   how long to gather replies (default 2)\n"
    "  --json              a JSON array of {\"host\",\"version\",\"pid\",\"uptime_s\",\n"
    "                      \"rss_bytes\",\"workers\" (count by state),\"n_workers\",\n"
    "                      \"running\",\"failed\"}\n"
    "Exit status 3 when no host answers; 1 when a host answered with an error.\n";

typedef struct gather {
    json_t *rows; /* array of row objects */
    int n_errors;
    int n_bad;
} gather;

static json_int_t geti(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static void on_reply(const char *reply, size_t len, void *data)
{
    gather *g = data;
    json_t *r = json_loadb(reply, len, JSON_ALLOW_NUL, NULL);
    if (r == NULL) /* a number beyond jansson's integers somewhere */
        r = json_loadb(reply, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
    const json_t *sup = json_object_get(json_object_get(r, "result"), "supervisor");
    const json_t *counts = json_object_get(sup, "workers"), *v;
    const char *host = json_string_value(json_object_get(sup, "host")), *key;

    if (json_is_true(json_object_get(r, "ok")) && json_is_object(sup) && host != NULL) {
        json_int_t all = 0;
        json_object_foreach((json_t *)counts, key, v) all += json_integer_value(v);
        const json_t *version = json_object_get(sup, "version");
        json_t *row = json_pack(
            "{s:s,s:o,s:I,s:I,s:I,s:o,s:I,s:I,s:I}", "host", host, "version",
            version != NULL ? json_deep_copy(version) : json_null(), "pid", geti(sup, "pid"),
            "uptime_s", geti(sup, "uptime_s"), "rss_bytes", geti(sup, "rss_bytes"), "workers",
            json_is_object(counts) ? json_deep_copy(counts) : json_object(), "n_workers", all,
            "running", geti(counts, "running"), "failed", geti(counts, "failed"));
        if (row == NULL || json_array_append_new(g->rows, row) < 0)
            g->n_bad++;
    } else if (json_is_false(json_object_get(r, "ok"))) {
        const json_t *e = json_object_get(r, "error");
        fprintf(stderr, "herdctl fleet status: a host answered %s: %s\n",
                json_string_value(json_object_get(e, "code")),
                json_string_value(json_object_get(e, "message")));
        g->n_errors++;
    } else {
        fprintf(stderr, "herdctl fleet status: a reply that is not a herdd's status: %.*s\n",
                len > 200 ? 200 : (int)len, reply);
        g->n_bad++;
    }
    json_decref(r);
}

static int by_host(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(x, "host")),
                   json_string_value(json_object_get(y, "host")));
    json_int_t px = geti(x, "pid"), py = geti(y, "pid");

    return c != 0 ? c : (px > py) - (px < py);
}

/* Rows sorted by host; one herdd that answered twice (two nats workers
 * importing fleet.all.>) is one row. */
static json_t *sorted_rows(json_t *rows)
{
    size_t n = json_array_size(rows), i;
    json_t **v = calloc(n + 1, sizeof(*v)), *out = json_array();

    if (v == NULL || out == NULL) {
        free(v);
        json_decref(out);
        return NULL;
    }
    for (i = 0; i < n; i++)
        v[i] = json_array_get(rows, i);
    qsort(v, n, sizeof(*v), by_host);
    for (i = 0; i < n; i++)
        if (i == 0 || by_host(&v[i - 1], &v[i]) != 0)
            json_array_append(out, v[i]);
    free(v);
    return out;
}

static void print_rows(const json_t *rows)
{
    int width = 4, vwidth = 7; /* "HOST", "VERSION" */
    const json_t *r;
    size_t i;

    json_array_foreach(rows, i, r)
    {
        int n = (int)strlen(json_string_value(json_object_get(r, "host")));
        int v = (int)json_string_length(json_object_get(r, "version"));
        width = n > width ? n : width;
        vwidth = v > vwidth ? v : vwidth;
    }
    printf("%-*s %-*s %7s %10s %7s %7s %6s\n", width, "HOST", vwidth, "VERSION", "UPTIME", "RSS",
           "WORKERS", "RUNNING", "FAILED");
    json_array_foreach(rows, i, r)
    {
        char up[32], rss[32];
        const char *version = json_string_value(json_object_get(r, "version"));
        cli_format_uptime(up, sizeof(up), geti(r, "uptime_s"));
        cli_format_bytes(rss, sizeof(rss), (double)geti(r, "rss_bytes"));
        printf("%-*s %-*s %7s %10s %7lld %7lld %6lld\n", width,
               json_string_value(json_object_get(r, "host")), vwidth,
               version != NULL ? version : "-", up, rss, (long long)geti(r, "n_workers"),
               (long long)geti(r, "running"), (long long)geti(r, "failed"));
    }
}

static int run_status(cli_ctx *ctx, int argc, char **argv)
{
    static const char body[] = "{\"service\":\"supervisor\",\"op\":\"status\",\"args\":{}}";
    gather g = {0};
    int rv, n;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--nats") == 0 && i + 1 < argc) {
            ctx->nats_url = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            if ((ctx->timeout_ms = cli_parse_timeout(argv[++i])) < 0)
                return CLI_USAGE;
            ctx->timeout_set = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            ctx->json = 1;
        } else {
            return cli_sub_usage("fleet", "status", status_args, "unexpected argument \"%s\"",
                                 argv[i]);
        }
    }
    if (ctx->nats_url == NULL)
        return cli_sub_usage("fleet", "status", status_args,
                             "needs --nats URL (the NATS server the fleet's hosts are on)");
    if (ctx->host != NULL)
        return cli_sub_usage("fleet", "status", status_args,
                             "asks every host: --host does not go with it");
    if ((rv = cli_open(ctx, false)) != CLI_OK)
        return rv;
    int window_ms = ctx->timeout_set ? ctx->timeout_ms : GATHER_MS;
    if ((g.rows = json_array()) == NULL)
        return CLI_ERROR;
    n = cli_nats_gather(ctx->transport, "fleet.all.request", body, sizeof(body) - 1, window_ms,
                        on_reply, &g);
    if (n < 0) {
        json_decref(g.rows);
        return cli_fail(ctx, "fleet status", n, CLI_ERROR);
    }
    if (n == 0) {
        json_decref(g.rows);
        fprintf(stderr,
                "herdctl: no host answered on fleet.all.request through NATS %s within %g s\n",
                ctx->nats_url, window_ms / 1000.0);
        return CLI_UNREACHABLE;
    }
    json_t *rows = sorted_rows(g.rows);
    json_decref(g.rows);
    if (rows == NULL)
        return CLI_ERROR;
    if (ctx->json)
        cli_print_json(ctx, rows);
    else if (json_array_size(rows) > 0)
        print_rows(rows);
    json_decref(rows);
    return g.n_errors > 0 || g.n_bad > 0 ? CLI_ERROR : CLI_OK;
}

static void fleet_help(FILE *f)
{
    fprintf(f,
            "Usage: herdctl fleet SUBCOMMAND ...\n\n"
            "Every host of a fleet at once, through NATS.\n\n"
            "Subcommands:\n"
            "  status   %s\n\n"
            "herdctl fleet SUBCOMMAND --help shows the details.\n",
            status_args);
}

static int cmd_fleet(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fleet_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "status") == 0) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            printf("Usage: herdctl fleet status %s\n\n%s", status_args, status_details);
            return CLI_OK;
        }
        return run_status(ctx, argc - 1, argv + 1);
    }
    fprintf(stderr, "herdctl fleet: unknown subcommand \"%s\"\n", argv[1]);
    fleet_help(stderr);
    return CLI_USAGE;
}

const cli_cmd cli_fleet_cmds[] = {
    {"fleet", "status --nats URL", "every host of a fleet through NATS: one row per host",
     cmd_fleet},
    {NULL, NULL, NULL, NULL},
};
