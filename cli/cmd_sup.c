/* herdctl status and mem: the supervisor's view of herdd and its workers. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static json_int_t geti(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
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
    cli_format_uptime(up, sizeof(up), geti(s, "uptime_s"));
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
        cli_format_uptime(up, sizeof(up), geti(v, "uptime_s"));
        if (geti(v, "pid") > 0)
            snprintf(pid, sizeof(pid), "%lld", (long long)geti(v, "pid"));
        printf("%-20s %-10s %-9s %8s %7s %8lld %10s  %s\n",
               json_string_value(json_object_get(v, "worker")),
               json_string_value(json_object_get(v, "kind")),
               json_string_value(json_object_get(v, "state")), pid, up,
               (long long)geti(v, "restarts"), heap,
               json_is_string(err) ? json_string_value(err) : "");
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
    rv = cli_query(ctx, "supervisor", "status", NULL, &result);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, result);
    else
        print_status(result);
    json_decref(result);
    return CLI_OK;
}

/* A size for a table cell: "1.2 MiB", or "-" when absent (null). */
static void cell_bytes(char *buf, size_t size, const json_t *v)
{
    if (json_is_integer(v))
        cli_format_bytes(buf, size, (double)json_integer_value(v));
    else
        snprintf(buf, size, "-");
}

/* One line of the summary: a label, a size, an optional note. */
static void mem_line(const char *label, json_int_t bytes, const char *note)
{
    char size[32];

    cli_format_bytes(size, sizeof(size), (double)bytes);
    printf("  %-22s %10s%s%s\n", label, size, note != NULL ? "  " : "", note != NULL ? note : "");
}

static void print_mem(const json_t *r)
{
    const json_t *s = json_object_get(r, "supervisor"), *m = json_object_get(r, "malloc");
    const json_t *workers = json_object_get(r, "workers"), *v;
    char heap[32], child[32], high[32], max[32], note[64];
    int width = 4; /* "NAME" */
    size_t i;

    printf("herdd (pid %lld)\n", (long long)geti(r, "pid"));
    mem_line("resident (RSS)", geti(s, "rss_bytes"), NULL);
    mem_line("proportional (PSS)", geti(s, "pss_bytes"), NULL);
    mem_line("unique (USS)", geti(s, "uss_bytes"), NULL);
    printf("malloc\n");
    mem_line("arenas", geti(m, "arena_bytes"), NULL);
    mem_line("mmapped blocks", geti(m, "mmap_bytes"), NULL);
    mem_line("in use", geti(m, "in_use_bytes"), NULL);
    mem_line("free in the arenas", geti(m, "free_bytes"), NULL);
    snprintf(note, sizeof(note), "in %lld trims", (long long)geti(m, "trims"));
    mem_line("given back", geti(m, "trimmed_bytes"), note);
    printf("accounts\n");
    mem_line("workers (all accounts)", geti(s, "worker_accounts_bytes"), NULL);
    mem_line("unaccounted", geti(s, "unaccounted_heap_bytes"), NULL);

    json_array_foreach(workers, i, v)
    {
        int n = (int)strlen(json_string_value(json_object_get(v, "worker")));
        width = n > width ? n : width;
    }
    printf("\n%-*s %-10s %-9s %10s %10s %10s %10s %5s\n", width, "NAME", "KIND", "STATE", "HEAP",
           "CHILD RSS", "HIGH", "MAX", "USE");
    json_array_foreach(workers, i, v)
    {
        const json_t *limit = json_object_get(v, "memory_max");
        char use[16] = "-";
        cli_format_bytes(heap, sizeof(heap), (double)geti(v, "heap_bytes"));
        if (geti(v, "child_rss_bytes") > 0)
            cli_format_bytes(child, sizeof(child), (double)geti(v, "child_rss_bytes"));
        else
            snprintf(child, sizeof(child), "-");
        cell_bytes(high, sizeof(high), json_object_get(v, "memory_high"));
        cell_bytes(max, sizeof(max), limit);
        if (json_integer_value(limit) > 0)
            snprintf(use, sizeof(use), "%.0f%%",
                     100.0 * (double)geti(v, "memory_bytes") / (double)json_integer_value(limit));
        printf("%-*s %-10s %-9s %10s %10s %10s %10s %5s\n", width,
               json_string_value(json_object_get(v, "worker")),
               json_string_value(json_object_get(v, "kind")),
               json_string_value(json_object_get(v, "state")), heap, child, high, max, use);
    }
    if (json_array_size(workers) == 0)
        printf("(no workers)\n");
}

static int cmd_mem(cli_ctx *ctx, int argc, char **argv)
{
    json_t *result;
    int rv;

    if (cli_wants_help(argc, argv)) {
        cli_print_help(&cli_sup_cmds[1],
                       "Prints herdd's memory: its resident, proportional and unique sets\n"
                       "(RSS/PSS/USS), glibc's heap (mallinfo2: arenas, mmapped blocks, in use,\n"
                       "free, the trims that gave memory back), the accounts (every worker\n"
                       "account and the unaccounted one), then each worker: its heap (what it\n"
                       "costs herdd), its child's RSS (process workers), and USE, the two\n"
                       "together against memory_max. --json prints the reply's result.\n");
        return CLI_OK;
    }
    if (argc != 1)
        return cli_usage_error(&cli_sup_cmds[1], "unexpected argument \"%s\"", argv[1]);
    rv = cli_query(ctx, "supervisor", "mem", NULL, &result);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, result);
    else
        print_mem(result);
    json_decref(result);
    return CLI_OK;
}

static void print_worker_line(const json_t *h)
{
    const json_t *err = json_object_get(h, "last_error");
    printf("%s: %s", json_string_value(json_object_get(h, "worker")),
           json_string_value(json_object_get(h, "state")));
    if (geti(h, "pid") > 0)
        printf(" (pid %lld)", (long long)geti(h, "pid"));
    if (json_is_string(err))
        printf(": %s", json_string_value(err));
    printf("\n");
}

/* worker_action: start, stop, restart: the reply comes when the worker has
 * settled (running, stopped, failed or backoff) and is its health. */
static int worker_action(cli_ctx *ctx, const cli_cmd *cmd, int argc, char **argv,
                         const char *details)
{
    json_t *args, *result;
    int rv;

    if (cli_wants_help(argc, argv)) {
        cli_print_help(cmd, details);
        return CLI_OK;
    }
    if (argc != 2)
        return cli_usage_error(cmd, "expected one worker name");
    args = json_pack("{s:s}", "worker", argv[1]);
    rv = cli_request(ctx, "supervisor", cmd->name, args, &result);
    json_decref(args);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, result);
    else
        print_worker_line(result);
    /* Asked to run, it did not: say so in the exit status too. */
    const char *state = json_string_value(json_object_get(result, "state"));
    if (strcmp(cmd->name, "stop") != 0 && state != NULL && strcmp(state, "running") != 0)
        rv = CLI_ERROR;
    json_decref(result);
    return rv;
}

static int cmd_start(cli_ctx *ctx, int argc, char **argv)
{
    return worker_action(ctx, &cli_sup_cmds[2], argc, argv,
                         "Starts a stopped or failed worker (or ends its backoff now) and waits\n"
                         "until it runs. Exit status 1 when it does not.\n");
}

static int cmd_stop(cli_ctx *ctx, int argc, char **argv)
{
    return worker_action(ctx, &cli_sup_cmds[3], argc, argv,
                         "Stops a worker and waits until it has stopped; it stays stopped\n"
                         "until started again.\n");
}

static int cmd_restart(cli_ctx *ctx, int argc, char **argv)
{
    return worker_action(ctx, &cli_sup_cmds[4], argc, argv,
                         "Stops a worker and starts a new instance of it (a process worker\n"
                         "gets a new pid); waits until it runs.\n");
}

static int cmd_reload(cli_ctx *ctx, int argc, char **argv)
{
    json_t *result;
    int rv;

    if (cli_wants_help(argc, argv)) {
        cli_print_help(&cli_sup_cmds[5],
                       "Makes herdd re-read its configuration file: new workers start,\n"
                       "removed ones stop, changed ones restart, the rest keep running.\n"
                       "A bad file is refused and nothing changes (exit status 1).\n");
        return CLI_OK;
    }
    if (argc != 1)
        return cli_usage_error(&cli_sup_cmds[5], "unexpected argument \"%s\"", argv[1]);
    rv = cli_request(ctx, "supervisor", "reload", NULL, &result);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, result);
    } else {
        static const char *const lists[] = {"added", "removed", "changed", "unchanged"};
        for (int i = 0; i < 4; i++) {
            const json_t *a = json_object_get(result, lists[i]), *v;
            size_t k;
            printf("%-10s", lists[i]);
            json_array_foreach(a, k, v) printf(" %s", json_string_value(v));
            printf("\n");
        }
    }
    json_decref(result);
    return CLI_OK;
}

const cli_cmd cli_sup_cmds[] = {
    {"status", "", "herdd and its workers: state, memory, bus counters", cmd_status},
    {"mem", "", "memory breakdown of herdd and each worker", cmd_mem},
    {"start", "WORKER", "start a worker and wait until it runs", cmd_start},
    {"stop", "WORKER", "stop a worker and wait until it has stopped", cmd_stop},
    {"restart", "WORKER", "restart a worker (a new instance)", cmd_restart},
    {"reload", "", "re-read the config: add, remove, restart changed workers", cmd_reload},
    {NULL, NULL, NULL, NULL},
};
