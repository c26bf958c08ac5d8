/* herdctl catalog: build a catalog (no herdd needed) and query a catalog worker. */
#include "catalog/catalog.h"
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What `list` fetches per request when no --limit is given (it pages on). */
#define LIST_PAGE 1000

static const cli_cmd *self(void)
{
    return &cli_catalog_cmds[0];
}

static const char help_top[] =
    "Subcommands:\n"
    "  build [--spec F] INPUT OUTDIR   compile INPUT.json into OUTDIR (no herdd needed)\n"
    "  list W [--section S] [--category C] [--domain D] [--offset N] [--limit N]\n"
    "                                  entries of catalog worker W, one a line\n"
    "  get W [--section S] [--] ID     the full body of one entry\n"
    "  search W QUERY [--section S] [--limit N]\n"
    "                                  entries whose id, name or description contain\n"
    "                                  QUERY (case-insensitive)\n"
    "\n"
    "`herdctl catalog SUBCOMMAND --help` for one. With --json (before COMMAND),\n"
    "the reply's result is printed as JSON.\n";

static const char help_build[] =
    "Usage: herdctl catalog build [--spec SPEC.json] INPUT.json OUTDIR\n"
    "\n"
    "Compiles INPUT (an object whose array members are sections of entry objects)\n"
    "into OUTDIR/v-<hex> and flips OUTDIR/current to it atomically; a catalog\n"
    "worker watching OUTDIR swaps to it. A bad input is refused with the entry's\n"
    "section and position, and nothing is written. SPEC:\n"
    "  {\"id_field\": \"id\", \"index_fields\": [...], \"partition_field\": \"domain\",\n"
    "   \"max_slim_bytes\": 65536,\n"
    "   \"sections\": {\"<name>\": {\"index_fields\": [...], \"partition_field\": \"...\"}}}\n"
    "An entry whose slim fields (what the index keeps of it) take more than\n"
    "max_slim_bytes (default 65536, at most 16777216) is refused; bodies have no\n"
    "such limit. Prints the version and counts (with --json: an object).\n";

static const char help_list[] =
    "Usage: herdctl catalog list W [--section S] [--category C] [--domain D]\n"
    "                              [--offset N] [--limit N]\n"
    "\n"
    "Lists the slim entries of catalog worker W: \"id  name  category\" a line\n"
    "(\"section/id\" when W has several sections and no --section is given).\n"
    "--category and --domain match exactly. Without --limit every match is\n"
    "printed. With --json: {\"total\": N, \"entries\": [...]}.\n";

static const char help_get[] = "Usage: herdctl catalog get W [--section S] [--] ID\n"
                               "\n"
                               "Prints the full body of entry ID of catalog worker W (JSON).\n"
                               "--section is needed only when ID is in several sections;\n"
                               "an ID that starts with - goes after --.\n";

static const char help_search[] =
    "Usage: herdctl catalog search W QUERY [--section S] [--limit N]\n"
    "\n"
    "Entries of catalog worker W whose id, name or description contain QUERY,\n"
    "ignoring ASCII case: \"id  name  category\" a line (default limit 50 by the\n"
    "worker). With --json: {\"total\": N, \"entries\": [...]}.\n";

#define sub_usage(sub, ...) cli_sub_usage("catalog", (sub), NULL, __VA_ARGS__)

static int parse_count(const char *sub, const char *opt, const char *s, json_int_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 0) {
        fprintf(stderr, "herdctl catalog %s: %s: expected a non-negative integer, got \"%s\"\n",
                sub, opt, s);
        return -1;
    }
    *out = (json_int_t)v;
    return 0;
}

/* ---- build -------------------------------------------------------------------- */

static int cmd_build(cli_ctx *ctx, int argc, char **argv)
{
    const char *spec = NULL, *pos[2];
    int n_pos = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--spec") == 0 && i + 1 < argc)
            spec = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return sub_usage("build", "unknown option \"%s\"", argv[i]);
        else if (n_pos < 2)
            pos[n_pos++] = argv[i];
        else
            return sub_usage("build", "unexpected argument \"%s\"", argv[i]);
    }
    if (n_pos != 2)
        return sub_usage("build", "expected INPUT and OUTDIR");

    char err[1024];
    catalog_build_result res;
    int rc = catalog_build(pos[0], spec, pos[1], &res, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "herdctl catalog build: %s\n", err[0] ? err : strerror(-rc));
        return CLI_ERROR;
    }
    if (ctx->json) {
        json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:b}", "version", res.version, "manifest_sha256",
                              res.manifest_sha256, "sections", (json_int_t)res.n_sections,
                              "entries", (json_int_t)res.n_entries, "unchanged", res.unchanged);
        if (o != NULL)
            cli_print_json(ctx, o);
        json_decref(o);
    } else {
        printf("%s: %zu entries in %zu section%s%s\n", res.version, res.n_entries, res.n_sections,
               res.n_sections == 1 ? "" : "s",
               res.unchanged ? " (unchanged, already current)" : "");
    }
    return CLI_OK;
}

/* ---- list, search ------------------------------------------------------------- */

/* Prints s padded to `width` characters (UTF-8 code points, not bytes). */
static void print_col(const char *s, size_t width)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += ((unsigned char)*p & 0xc0) != 0x80;
    fputs(s, stdout);
    for (; n < width; n++)
        putchar(' ');
}

static void print_entries(const json_t *entries)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        const char *section = json_string_value(json_object_get(e, "section"));
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *category = json_string_value(json_object_get(e, "category"));
        if (category == NULL)
            category = json_string_value(json_object_get(e, "domain"));
        char full[512];
        snprintf(full, sizeof(full), "%s%s%s", section != NULL ? section : "",
                 section != NULL ? "/" : "", id != NULL ? id : "?");
        print_col(full, 32);
        fputs("  ", stdout);
        print_col(name != NULL ? name : "", 32);
        printf("  %s\n", category != NULL ? category : "");
    }
}

/*
 * Sends list/search with args; without an explicit limit (list only) pages
 * until every match is fetched. Prints the merged {"total","entries"}.
 */
static int query(cli_ctx *ctx, const char *sub, const char *w, json_t *args, int page)
{
    json_t *all = json_array(), *result = NULL;
    json_int_t total = 0, offset = json_integer_value(json_object_get(args, "offset"));
    int rv;

    if (all == NULL)
        return CLI_ERROR;
    for (;;) {
        if (page) {
            json_object_set_new(args, "offset", json_integer(offset));
            json_object_set_new(args, "limit", json_integer(LIST_PAGE));
        }
        rv = cli_query(ctx, w, sub, args, &result);
        if (rv != CLI_OK)
            goto out;
        json_t *entries = json_object_get(result, "entries");
        total = json_integer_value(json_object_get(result, "total"));
        if (!json_is_array(entries)) {
            fprintf(stderr, "herdctl catalog %s: the reply has no entries array\n", sub);
            rv = CLI_ERROR;
            goto out;
        }
        json_array_extend(all, entries);
        size_t got = json_array_size(entries);
        json_decref(result);
        result = NULL;
        offset += (json_int_t)got;
        if (!page || got == 0 || offset >= total)
            break;
    }
    if (ctx->json) {
        json_t *o = json_pack("{s:I,s:O}", "total", total, "entries", all);
        if (o != NULL)
            cli_print_json(ctx, o);
        json_decref(o);
    } else {
        print_entries(all);
        if ((json_int_t)json_array_size(all) < total)
            fprintf(stderr, "(%zu shown of %lld; see --offset and --limit)\n", json_array_size(all),
                    (long long)total);
    }
out:
    json_decref(result);
    json_decref(all);
    return rv;
}

static int cmd_query(cli_ctx *ctx, int argc, char **argv, int search)
{
    const char *sub = search ? "search" : "list";
    const char *pos[2];
    int n_pos = 0, want = search ? 2 : 1, has_limit = 0;
    json_t *args = json_object();
    int rv = CLI_USAGE;

    if (args == NULL)
        return CLI_ERROR;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *key = NULL;
        int count = 0;
        if (strcmp(a, "--section") == 0)
            key = "section";
        else if (!search && strcmp(a, "--category") == 0)
            key = "category";
        else if (!search && strcmp(a, "--domain") == 0)
            key = "domain";
        else if (!search && strcmp(a, "--offset") == 0)
            key = "offset", count = 1;
        else if (strcmp(a, "--limit") == 0)
            key = "limit", count = 1;
        if (key != NULL) {
            if (i + 1 >= argc) {
                sub_usage(sub, "%s needs a value", a);
                goto out;
            }
            const char *v = argv[++i];
            json_int_t n;
            if (count && parse_count(sub, a, v, &n) < 0)
                goto out;
            json_object_set_new(args, key, count ? json_integer(n) : json_string(v));
            has_limit |= strcmp(key, "limit") == 0;
        } else if (a[0] == '-' && a[1] != '\0') {
            sub_usage(sub, "unknown option \"%s\"", a);
            goto out;
        } else if (n_pos < want) {
            pos[n_pos++] = a;
        } else {
            sub_usage(sub, "unexpected argument \"%s\"", a);
            goto out;
        }
    }
    if (n_pos != want) {
        sub_usage(sub, "%s", search ? "expected W and QUERY" : "expected W");
        goto out;
    }
    if (search)
        json_object_set_new(args, "q", json_string(pos[1]));
    rv = query(ctx, sub, pos[0], args, !search && !has_limit);
out:
    json_decref(args);
    return rv;
}

/* ---- get ---------------------------------------------------------------------- */

static int cmd_get(cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[2], *section = NULL;
    int n_pos = 0;
    bool options = true; /* until "--": an id may start with '-' after it */

    for (int i = 1; i < argc; i++) {
        if (options && strcmp(argv[i], "--") == 0)
            options = false;
        else if (options && strcmp(argv[i], "--section") == 0 && i + 1 < argc)
            section = argv[++i];
        else if (options && argv[i][0] == '-' && argv[i][1] != '\0')
            return sub_usage("get", "unknown option \"%s\" (an ID starting with '-' goes after --)",
                             argv[i]);
        else if (n_pos < 2)
            pos[n_pos++] = argv[i];
        else
            return sub_usage("get", "unexpected argument \"%s\"", argv[i]);
    }
    if (n_pos != 2)
        return sub_usage("get", "expected W and ID");
    json_t *args = section != NULL ? json_pack("{s:s,s:s}", "id", pos[1], "section", section)
                                   : json_pack("{s:s}", "id", pos[1]);
    json_t *result = NULL;
    if (args == NULL)
        return CLI_ERROR;
    int rv = cli_query(ctx, pos[0], "get", args, &result);
    json_decref(args);
    if (rv == CLI_OK)
        cli_print_json(ctx, result);
    json_decref(result);
    return rv;
}

/* ---- dispatch ----------------------------------------------------------------- */

static int cmd_catalog(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc < 2) {
            cli_usage_error(self(), "expected a subcommand");
            fputs(help_top, stderr);
            return CLI_USAGE;
        }
        cli_print_help(self(), help_top);
        return CLI_OK;
    }
    const char *sub = argv[1];
    const char *help = strcmp(sub, "build") == 0    ? help_build
                       : strcmp(sub, "list") == 0   ? help_list
                       : strcmp(sub, "get") == 0    ? help_get
                       : strcmp(sub, "search") == 0 ? help_search
                                                    : NULL;
    if (help == NULL)
        return cli_usage_error(self(), "unknown subcommand \"%s\" (build, list, get, search)", sub);
    if (cli_wants_help(argc - 1, argv + 1)) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (strcmp(sub, "build") == 0)
        return cmd_build(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "get") == 0)
        return cmd_get(ctx, argc - 1, argv + 1);
    return cmd_query(ctx, argc - 1, argv + 1, strcmp(sub, "search") == 0);
}

const cli_cmd cli_catalog_cmds[] = {
    {"catalog", "build|list|get|search ...",
     "build a catalog (no herdd needed), or query a catalog worker", cmd_catalog},
    {NULL, NULL, NULL, NULL},
};
