/*
 * herdctl job: submit, list, get, output, follow, cancel and clear jobs of a
 * `jobs` worker (DESIGN.md sections 7 and 8).
 *
 * Design notes (follow):
 *  - The output and state topics are subscribed before the existing output
 *    is fetched with the `output` op, so nothing written in between is lost;
 *    what arrives twice is dropped by byte offset (`printed`).
 *  - Events of one job come from one publisher in order, so once a live
 *    event has continued exactly where the printed bytes end, a later event
 *    starting below that point means the running log was compacted (offsets
 *    restart lower); it is printed, not dropped.
 *  - An event starting beyond `printed` means events were dropped (a slow
 *    terminal): the gap is fetched with the `output` op first.
 *  - When the job turns terminal, whatever the sidecar holds beyond
 *    `printed` is fetched before exiting. Without events for a second the
 *    job's state is polled, so a lost state event cannot hang follow.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MS 1000

static const cli_cmd job_cmd = {"job", "SUBCOMMAND W ...",
                                "submit, list, inspect, follow and cancel jobs of a jobs worker",
                                NULL};

typedef struct job_sub {
    const char *name;
    const char *args;
    const char *summary;
    const char *details;
    int (*run)(cli_ctx *ctx, const struct job_sub *sub, int argc, char **argv);
} job_sub;

#define sub_usage(sub, ...) cli_sub_usage("job", (sub)->name, (sub)->args, __VA_ARGS__)

static void sub_help(const job_sub *sub)
{
    printf("Usage: herdctl job %s %s\n\n%s\n", sub->name, sub->args, sub->summary);
    if (sub->details != NULL)
        printf("\n%s", sub->details);
}

static int parse_count(const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || end == s || v < 1 || v > max)
        return -1;
    *out = v;
    return 0;
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : dflt;
}

static int is_terminal(const char *status)
{
    return status != NULL && (strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
                              strcmp(status, "cancelled") == 0);
}

/* The exit status that stands for a job: its exit code, 128 + the signal
 * that killed it (as a shell reports it), else 1 (cancelled before it ran,
 * or it could not start). */
static int job_exit_status(const json_t *meta)
{
    const json_t *code = json_object_get(meta, "exit_code");
    const json_t *sig = json_object_get(meta, "signal");
    if (json_is_integer(code))
        return (int)(json_integer_value(code) & 0xff);
    if (json_is_integer(sig) && json_integer_value(sig) > 0)
        return 128 + (int)(json_integer_value(sig) & 0x7f);
    return 1;
}

static int write_data(const json_t *data)
{
    size_t n = json_string_length(data);
    if (n && fwrite(json_string_value(data), 1, n, stdout) != n)
        return -1;
    return fflush(stdout) == 0 ? 0 : -1;
}

static json_t *id_args(const char *id)
{
    return json_pack("{s:s}", "id", id);
}

/* ---- submit ------------------------------------------------------------ */

static int run_submit(cli_ctx *ctx, const job_sub *sub, int argc, char **argv)
{
    static const struct {
        const char *opt, *key;
    } params[] = {
        {"--type", "type"}, {"--configuration", "configuration"},
        {"--port", "port"}, {"--new-name", "new_name"},
        {"--lane", "lane"}, {"--depends-on", "depends_on"},
    };
    const char *w = NULL;
    json_t *args = json_object(), *env = NULL, *result = NULL;
    int rv = CLI_USAGE, i;

    if (args == NULL)
        return CLI_ERROR;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t p;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        for (p = 0; p < sizeof(params) / sizeof(params[0]); p++)
            if (strcmp(a, params[p].opt) == 0)
                break;
        if (p < sizeof(params) / sizeof(params[0])) {
            if (i + 1 >= argc) {
                sub_usage(sub, "%s needs a value", a);
                goto out;
            }
            if (json_object_get(args, params[p].key) != NULL) {
                sub_usage(sub, "%s given twice", a);
                goto out;
            }
            json_object_set_new(args, params[p].key, json_string(argv[++i]));
        } else if (strcmp(a, "--env") == 0) {
            const char *eq = i + 1 < argc ? strchr(argv[i + 1], '=') : NULL;
            if (eq == NULL || eq == argv[i + 1]) {
                sub_usage(sub, "--env needs KEY=VALUE");
                goto out;
            }
            if (env == NULL)
                env = json_object();
            char key[256];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i + 1]), argv[i + 1]);
            json_object_set_new(env, key, json_string(eq + 1));
            i++;
        } else if (w == NULL && a[0] != '-') {
            w = a;
        } else {
            sub_usage(sub, "unexpected argument \"%s\"", a);
            goto out;
        }
    }
    if (w == NULL) {
        sub_usage(sub, "expected a worker name");
        goto out;
    }
    if (!base_name_valid(w)) {
        sub_usage(sub, "invalid worker name \"%s\"", w);
        goto out;
    }
    if (i < argc) {
        json_t *av = json_array();
        for (; i < argc; i++)
            json_array_append_new(av, json_string(argv[i]));
        json_object_set_new(args, "argv", av);
    }
    if (env != NULL)
        json_object_set(args, "env", env);
    if (json_object_get(args, "type") == NULL && json_object_get(args, "argv") == NULL) {
        sub_usage(sub, "expected --type T or -- ARGV...");
        goto out;
    }
    rv = cli_request(ctx, w, "submit", args, &result);
    if (rv == CLI_OK) {
        if (ctx->json)
            cli_print_json(ctx, result);
        else
            printf("%s\n", str_or(result, "job_id", ""));
    }
out:
    json_decref(result);
    json_decref(env);
    json_decref(args);
    return rv;
}

/* ---- list, get, cancel, clear ------------------------------------------ */

static void print_job_line(const json_t *m)
{
    const json_t *code = json_object_get(m, "exit_code");
    const json_t *sig = json_object_get(m, "signal");
    char exit[24] = "-";

    if (json_is_integer(code))
        snprintf(exit, sizeof(exit), "%lld", (long long)json_integer_value(code));
    else if (json_is_integer(sig))
        snprintf(exit, sizeof(exit), "sig %lld", (long long)json_integer_value(sig));
    printf("%-32s  %-9s  %-12s  %-8s  %-20s  %6s  %s\n", str_or(m, "job_id", "?"),
           str_or(m, "status", "?"), str_or(m, "type", "-"), str_or(m, "lane", "-"),
           str_or(m, "created_at", "-"), exit, str_or(m, "configuration", "-"));
}

static int run_list(cli_ctx *ctx, const job_sub *sub, int argc, char **argv)
{
    const char *w = NULL, *status = NULL;
    json_t *args, *result;
    size_t i;
    json_t *m;
    int rv;

    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--status") == 0 && k + 1 < argc)
            status = argv[++k];
        else if (w == NULL && argv[k][0] != '-')
            w = argv[k];
        else
            return sub_usage(sub, "unexpected argument \"%s\"", argv[k]);
    }
    if (w == NULL || !base_name_valid(w))
        return sub_usage(sub, w != NULL ? "invalid worker name \"%s\"" : "expected a worker name%s",
                         w != NULL ? w : "");
    args = status != NULL ? json_pack("{s:s}", "status", status) : json_object();
    rv = cli_query(ctx, w, "list", args, &result);
    json_decref(args);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, result);
    } else {
        const json_t *jobs = json_object_get(result, "jobs");
        printf("%-32s  %-9s  %-12s  %-8s  %-20s  %6s  %s\n", "ID", "STATUS", "TYPE", "LANE",
               "CREATED", "EXIT", "CONFIGURATION");
        json_array_foreach(jobs, i, m) print_job_line(m);
        if (json_array_size(jobs) == 0)
            printf("(no jobs)\n");
    }
    json_decref(result);
    return CLI_OK;
}

/* W ID, nothing else. */
static int worker_and_id(const job_sub *sub, int argc, char **argv, const char **w, const char **id)
{
    *w = *id = NULL;
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-')
        return sub_usage(sub, "expected W ID");
    if (!base_name_valid(argv[1]))
        return sub_usage(sub, "invalid worker name \"%s\"", argv[1]);
    *w = argv[1];
    *id = argv[2];
    return CLI_OK;
}

/* id_request: the `W ID` commands send op {"id": ID} to worker W. */
static int id_request(cli_ctx *ctx, const job_sub *sub, int argc, char **argv, const char *op,
                      const char **id, json_t **result)
{
    const char *w;
    json_t *args;
    int rv = worker_and_id(sub, argc, argv, &w, id);

    *result = NULL;
    if (rv != CLI_OK)
        return rv;
    args = id_args(*id);
    /* get changes nothing and may be sent again; cancel goes out once */
    rv = strcmp(op, "get") == 0 ? cli_query(ctx, w, op, args, result)
                                : cli_request(ctx, w, op, args, result);
    json_decref(args);
    return rv;
}

static int run_get(cli_ctx *ctx, const job_sub *sub, int argc, char **argv)
{
    const char *id;
    json_t *result;
    int rv = id_request(ctx, sub, argc, argv, "get", &id, &result);

    if (rv == CLI_OK)
        cli_print_json(ctx, result);
    json_decref(result);
    return rv;
}

static int run_cancel(cli_ctx *ctx, const job_sub *sub, int argc, char **argv)
{
    const char *id;
    json_t *result;
    int rv = id_request(ctx, sub, argc, argv, "cancel", &id, &result);

    if (rv == CLI_OK) {
        if (ctx->json)
            cli_print_json(ctx, result);
        else
            printf("%s %s\n", str_or(result, "job_id", id), str_or(result, "status", "?"));
    }
    json_decref(result);
    return rv;
}

static int run_clear(cli_ctx *ctx, const job_sub *sub, int argc, char **argv)
{
    json_t *result;
    int rv;

    if (argc != 2 || argv[1][0] == '-')
        return sub_usage(sub, "expected W");
    if (!base_name_valid(argv[1]))
        return sub_usage(sub, "invalid worker name \"%s\"", argv[1]);
    rv = cli_request(ctx, argv[1], "clear", NULL, &result);
    if (rv == CLI_OK) {
        if (ctx->json)
            cli_print_json(ctx, result);
        else
            printf("removed %lld finished jobs\n",
                   (long long)json_integer_value(json_object_get(result, "removed")));
    }
    json_decref(result);
    return rv;
}

/* ---- output and follow ------------------------------------------------- */

/* Prints the sidecar from *offset until eof or (for a running job) its
 * current end, moving *offset along. *eof tells whether the job is over. */
static int print_from(cli_ctx *ctx, const char *w, const char *id, uint64_t *offset, int *eof)
{
    for (;;) {
        json_t *args = json_pack("{s:s,s:I,s:i}", "id", id, "offset", (json_int_t)*offset,
                                 "limit_bytes", 1 << 20);
        json_t *result;
        int rv = cli_query(ctx, w, "output", args, &result);
        json_decref(args);
        if (rv != CLI_OK)
            return rv;
        const json_t *data = json_object_get(result, "data");
        json_int_t next = json_integer_value(json_object_get(result, "next_offset"));
        *eof = json_is_true(json_object_get(result, "eof"));
        if (ctx->json)
            cli_print_json(ctx, result);
        else if (write_data(data) < 0)
            rv = CLI_ERROR;
        int more = !*eof && (uint64_t)next > *offset;
        if ((uint64_t)next > *offset || *eof)
            *offset = (uint64_t)next;
        json_decref(result);
        if (rv != CLI_OK || !more)
            return rv;
    }
}

static int run_output(cli_ctx *ctx, const job_sub *sub, int argc, char **argv)
{
    const char *w = NULL, *id = NULL;
    long tail = 0;
    int rv;

    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--tail") == 0 && k + 1 < argc) {
            if (parse_count(argv[++k], 1000000, &tail) < 0)
                return sub_usage(sub,
                                 "--tail: expected a line count from 1 to 1000000, got "
                                 "\"%s\"",
                                 argv[k]);
        } else if (argv[k][0] != '-' && w == NULL) {
            w = argv[k];
        } else if (argv[k][0] != '-' && id == NULL) {
            id = argv[k];
        } else {
            return sub_usage(sub, "unexpected argument \"%s\"", argv[k]);
        }
    }
    if (w == NULL || id == NULL)
        return sub_usage(sub, "expected W ID");
    if (!base_name_valid(w))
        return sub_usage(sub, "invalid worker name \"%s\"", w);
    if (tail > 0) {
        json_t *args = json_pack("{s:s,s:I}", "id", id, "tail_lines", (json_int_t)tail);
        json_t *result;
        rv = cli_query(ctx, w, "output", args, &result);
        json_decref(args);
        if (rv == CLI_OK) {
            if (ctx->json)
                cli_print_json(ctx, result);
            else if (write_data(json_object_get(result, "data")) < 0)
                rv = CLI_ERROR;
        }
        json_decref(result);
        return rv;
    }
    uint64_t offset = 0;
    int eof;
    return print_from(ctx, w, id, &offset, &eof);
}

static int get_meta(cli_ctx *ctx, const char *w, const char *id, json_t **meta)
{
    json_t *args = id_args(id);
    int rv = cli_query(ctx, w, "get", args, meta);
    json_decref(args);
    return rv;
}

/* The job is over: print what the sidecar holds beyond `printed`, then
 * exit with the job's status. */
static int follow_finish(cli_ctx *ctx, const char *w, const char *id, uint64_t printed,
                         const json_t *meta)
{
    int eof;
    int rv = print_from(ctx, w, id, &printed, &eof);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, meta);
    return job_exit_status(meta);
}

static int run_follow(cli_ctx *ctx, const job_sub *sub, int argc, char **argv)
{
    const char *w, *id;
    char pattern[BUS_TOPIC_MAX + 1];
    uint64_t printed = 0;
    int live = 0, eof = 0;
    json_t *meta = NULL;
    int rv = worker_and_id(sub, argc, argv, &w, &id);

    if (rv != CLI_OK)
        return rv;
    /* Subscribe first: what happens from here on reaches us as events. */
    const char *const suffixes[] = {"output", "state"};
    for (int k = 0; k < 2; k++) {
        int n = snprintf(pattern, sizeof(pattern), "job.%s.%s.%s", w, id, suffixes[k]);
        if (n < 0 || (size_t)n >= sizeof(pattern) || bus_pattern_check(pattern, (size_t)n) < 0)
            return sub_usage(sub, "invalid job id \"%s\"", id);
        rv = cli_subscribe(ctx, pattern);
        if (rv < 0)
            return cli_fail(ctx, "job follow", rv, CLI_ERROR);
    }
    if ((rv = get_meta(ctx, w, id, &meta)) != CLI_OK)
        return rv;
    if (is_terminal(str_or(meta, "status", NULL))) {
        rv = follow_finish(ctx, w, id, 0, meta);
        json_decref(meta);
        return rv;
    }
    json_decref(meta);
    meta = NULL;
    if ((rv = print_from(ctx, w, id, &printed, &eof)) != CLI_OK)
        return rv;
    if (eof) {
        /* It ended meanwhile: what was just printed is its whole stored
         * output, and the events still queued describe a log that may
         * since have been compacted. */
        if ((rv = get_meta(ctx, w, id, &meta)) != CLI_OK)
            return rv;
        rv = ctx->json ? (cli_print_json(ctx, meta), job_exit_status(meta)) : job_exit_status(meta);
        json_decref(meta);
        return rv;
    }

    for (;;) {
        bus_event ev;
        rv = cli_next(ctx, POLL_MS, &ev);
        if (rv < 0 && rv != -ETIMEDOUT) {
            fprintf(stderr, "herdctl job follow: %s\n", cli_bus_error(ctx, rv));
            return CLI_ERROR;
        }
        json_t *p = rv == 0 ? json_loadb(ev.payload, ev.payload_len, JSON_ALLOW_NUL, NULL) : NULL;
        size_t tl = rv == 0 ? ev.topic_len : 0;
        bool is_state = p != NULL && tl > 6 && memcmp(ev.topic + tl - 6, ".state", 6) == 0;
        /* A quiet poll, or a state event saying the job ended: ask herdd.
         * An event only says where to look: the end is what herdd's own
         * `get` says (a client cannot forge that). */
        if (rv == -ETIMEDOUT || (is_state && is_terminal(str_or(p, "status", NULL)))) {
            json_decref(p);
            if ((rv = get_meta(ctx, w, id, &meta)) != CLI_OK)
                return rv;
            if (is_terminal(str_or(meta, "status", NULL)))
                break;
            json_decref(meta);
            meta = NULL;
            continue;
        }
        if (!is_state && p != NULL && tl > 7 && memcmp(ev.topic + tl - 7, ".output", 7) == 0) {
            const json_t *data = json_object_get(p, "data");
            uint64_t off = (uint64_t)json_integer_value(json_object_get(p, "offset"));
            size_t len = json_string_length(data);
            const char *s = json_string_value(data);
            if (off > printed) {
                /* Events were dropped on the way: fetch the gap (and
                 * whatever follows it), then drop what repeats it. */
                if ((rv = print_from(ctx, w, id, &printed, &eof)) != CLI_OK) {
                    json_decref(p);
                    return rv;
                }
                live = 0;
            }
            size_t skip;
            if (off + len > printed && off <= printed) {
                skip = (size_t)(printed - off); /* continues or overlaps the end */
                live = 1;
            } else if (live || off > printed) {
                skip = 0; /* restarted lower after a compaction, or beyond a failed fetch */
            } else {
                skip = len; /* already printed by the catch-up */
            }
            if (s != NULL && skip < len) {
                if (ctx->json) {
                    cli_print_json(ctx, p);
                } else if (fwrite(s + skip, 1, len - skip, stdout) != len - skip) {
                    json_decref(p);
                    return CLI_ERROR;
                }
                fflush(stdout);
                printed = off + len;
            }
        }
        json_decref(p);
    }
    rv = follow_finish(ctx, w, id, printed, meta);
    json_decref(meta);
    return rv;
}

static const job_sub subs[] = {
    {"submit",
     "W --type T [--configuration C] [--port P] [--new-name N] [--lane L]\n"
     "       [--depends-on ID] [--env KEY=VALUE]... [-- ARGV...]",
     "Queues a job on worker W and prints its id alone on a line.",
     "  --type T            a job type configured for W (its argv template)\n"
     "  --configuration C   the {configuration} parameter: a relative path without \"..\"\n"
     "  --port P            the {port} parameter\n"
     "  --new-name N        the {new_name} parameter\n"
     "  --lane L            run in lane L instead of the type's\n"
     "  --depends-on ID     start only after job ID completed successfully\n"
     "  --env KEY=VALUE     extra environment (needs allow_argv on the worker)\n"
     "  -- ARGV...          a raw command line (needs allow_argv on the worker)\n",
     run_submit},
    {"list", "W [--status S]", "Lists W's jobs, oldest first.",
     "  --status S   only jobs in state S: queued, running, completed, failed, cancelled\n",
     run_list},
    {"get", "W ID", "Prints the metadata of job ID as JSON.", NULL, run_get},
    {"output", "W ID [--tail N]", "Prints the output of job ID as it is stored (so far).",
     "  --tail N   only the last N lines (a line ends at \\n or \\r)\n", run_output},
    {"follow", "W ID", "Prints the output of job ID, then new output live until the job ends.",
     "Exits with the job's exit code (128 + the signal when a signal ended it, 1 when\n"
     "it never ran). With --json, prints each output batch {\"offset\",\"data\"} and at\n"
     "the end the job's metadata, one JSON object a line.\n",
     run_follow},
    {"cancel", "W ID",
     "Cancels job ID: a queued job never runs; a running one gets SIGTERM, then\n"
     "SIGKILL after the worker's kill_timeout_s. Prints the job's final status.",
     NULL, run_cancel},
    {"clear", "W",
     "Removes W's finished jobs and their logs (except prerequisites of active "
     "jobs).",
     NULL, run_clear},
    {NULL, NULL, NULL, NULL, NULL},
};

static void job_help(FILE *f)
{
    fprintf(f, "Usage: herdctl job SUBCOMMAND W ...\n\n%s\n\nSubcommands:\n", job_cmd.summary);
    for (const job_sub *s = subs; s->name != NULL; s++) {
        const char *nl = strchr(s->args, '\n');
        fprintf(f, "  %-8s %.*s\n", s->name,
                nl != NULL ? (int)(nl - s->args) : (int)strlen(s->args), s->args);
    }
    fputs("\nherdctl job SUBCOMMAND --help shows the details.\n", f);
}

static int cmd_job(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        job_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    for (const job_sub *s = subs; s->name != NULL; s++) {
        if (strcmp(s->name, argv[1]) != 0)
            continue;
        if (cli_wants_help(argc - 1, argv + 1)) {
            sub_help(s);
            return CLI_OK;
        }
        return s->run(ctx, s, argc - 1, argv + 1);
    }
    fprintf(stderr, "herdctl job: unknown subcommand \"%s\"\n", argv[1]);
    job_help(stderr);
    return CLI_USAGE;
}

const cli_cmd cli_job_cmds[] = {
    {"job", "SUBCOMMAND W ...", "submit, list, get, output, follow, cancel, clear jobs", cmd_job},
    {NULL, NULL, NULL, NULL},
};
