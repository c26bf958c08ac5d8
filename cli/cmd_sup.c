/* herdctl status and mem: the supervisor's view of herdd and its workers. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static json_int_t geti(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static void format_uptime(char *buf, size_t size, json_int_t s)
{
    if (s < 120)
        snprintf(buf, size, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(buf, size, "%lldm", (long long)s / 60);
    else if (s < 172800)
        snprintf(buf, size, "%lldh", (long long)s / 3600);
    else
        snprintf(buf, size, "%lldd", (long long)s / 86400);
}

static void print_status(const json_t *r)
{
    const json_t *s = json_object_get(r, "supervisor");
    const json_t *b = json_object_get(s, "bus");
    const json_t *dropped = json_object_get(b, "dropped");
    const json_t *workers = json_object_get(r, "workers");
    char rss[32], pss[32], uss[32], up[32];
    json_int_t drops = 0;
    const char *key;
    json_t *v;
    size_t i;

    cli_format_bytes(rss, sizeof(rss), (double)geti(s, "rss_bytes"));
    cli_format_bytes(pss, sizeof(pss), (double)geti(s, "pss_bytes"));
    cli_format_bytes(uss, sizeof(uss), (double)geti(s, "uss_bytes"));
    format_uptime(up, sizeof(up), geti(s, "uptime_s"));
    printf("herdd %s  pid %lld  up %s  rss %s  pss %s  uss %s\n",
           json_string_value(json_object_get(s, "version")), (long long)geti(s, "pid"), up, rss,
           pss, uss);
    json_object_foreach((json_t *)dropped, key, v) drops += json_integer_value(v);
    printf("bus %s: %lld published, %lld delivered, %lld requests, %lld remote subscribers, "
           "%lld dropped\n",
           json_string_value(json_object_get(s, "runtime_dir")), (long long)geti(b, "published"),
           (long long)geti(b, "delivered"), (long long)geti(b, "requests"),
           (long long)geti(b, "remote_subscribers"), (long long)drops);
    if (drops > 0) {
        printf("  dropped:");
        json_object_foreach((json_t *)dropped, key, v) if (json_integer_value(v) > 0)
            printf(" %s %lld", key, (long long)json_integer_value(v));
        printf("\n");
    }
    printf("\n%-20s %-10s %-9s %8s %7s %8s %10s  %s\n", "NAME", "KIND", "STATE", "PID", "UPTIME",
           "RESTARTS", "HEAP", "LAST ERROR");
    json_array_foreach(workers, i, v)
    {
        char heap[32], pid[16] = "-";
        const json_t *err = json_object_get(v, "last_error");
        cli_format_bytes(heap, sizeof(heap), (double)geti(v, "heap_bytes"));
        format_uptime(up, sizeof(up), geti(v, "uptime_s"));
        if (geti(v, "pid") > 0)
            snprintf(pid, sizeof(pid), "%lld", (long long)geti(v, "pid"));
        printf("%-20s %-10s %-9s %8s %7s %8lld %10s  %s\n",
               json_string_value(json_object_get(v, "worker")),
               json_string_value(json_object_get(v, "kind")),
               json_string_value(json_object_get(v, "state")), pid, up,
               (long long)geti(v, "restarts"), heap, json_is_string(err) ? json_string_value(err)
                                                                           : "");
    }
    if (json_array_size(workers) == 0)
        printf("(no workers)\n");
}

static int cmd_status(cli_ctx *ctx, int argc, char **argv)
{
    json_t *result;
    int rv;

    if (cli_wants_help(argc, argv)) {
        cli_print_help(&cli_sup_cmds[0], "Shows herdd's pid, uptime, memory (RSS/PSS/USS), bus\n"
                                         "counters, and a table of workers.\n");
        return CLI_OK;
    }
    if (argc != 1)
        return cli_usage_error(&cli_sup_cmds[0], "unexpected argument \"%s\"", argv[1]);
    rv = cli_request(ctx, "supervisor", "status", NULL, &result);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, result);
    else
        print_status(result);
    json_decref(result);
    return CLI_OK;
}

static int cmd_mem(cli_ctx *ctx, int argc, char **argv)
{
    json_t *result;
    int rv;

    if (cli_wants_help(argc, argv)) {
        cli_print_help(&cli_sup_cmds[1], "Prints herdd's memory breakdown: RSS/PSS/USS, the "
                                         "malloc arena,\nand each worker's heap.\n");
        return CLI_OK;
    }
    if (argc != 1)
        return cli_usage_error(&cli_sup_cmds[1], "unexpected argument \"%s\"", argv[1]);
    rv = cli_request(ctx, "supervisor", "mem", NULL, &result);
    if (rv == CLI_OK) {
        cli_print_json(ctx, result);
        json_decref(result);
    }
    return rv;
}

const cli_cmd cli_sup_cmds[] = {
    {"status", "", "herdd and its workers: state, memory, bus counters", cmd_status},
    {"mem", "", "memory breakdown of herdd and each worker", cmd_mem},
    {NULL, NULL, NULL, NULL},
};
