/*
 * herdctl catalog: build a catalog (no herdd needed) and query a catalog
 * worker (DESIGN.md sections 6 and 8).
 *
 * Design notes:
 *  - --where, --any and a JSON --order are parsed here, so a typo is a usage
 *    error (exit 2) with jansson's line and column; what they mean is the
 *    worker's to judge: an unknown field is its bad_request (exit 1).
 *  - list without --limit pages LIST_PAGE entries at a time; the facets are
 *    asked for on the first page only (they count every match, not a page),
 *    and what is printed is that page's reply with every page's entries.
 */
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
    "  list W [--section S] [--category C] [--domain D] [--where JSON] [--any JSON]\n"
    "         [--q TEXT] [--phrase] [--order ORDER] [--facets F,...] [--offset N]\n"
    "         [--limit N]\n"
    "                                  the entries of catalog worker W that match,\n"
    "                                  one a line, and facet counts on request\n"
    "  search W QUERY [--phrase] [the options of list but --q]\n"
    "                                  entries whose id, name or description contain\n"
    "                                  QUERY (ignoring case), best match first\n"
    "  get W [--section S] [--slim] [--] ID...\n"
    "                                  the full body of one entry, or of several\n"
    "\n"
    "`herdctl catalog SUBCOMMAND --help` for one, with every option and an\n"
    "example. With --json (before COMMAND), the reply's result is printed as JSON.\n";

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

/* What list and search share, in both help texts. */
#define HELP_QUERY_OPTIONS                                                                         \
    "  --section S      only section S (required with several sections when a\n"                   \
    "                   filter needs one):  --section triggers\n"                                  \
    "  --category C     shorthand for --where '{\"category\": \"C\"}':  --category sensor\n"       \
    "  --domain D       a clause on the section's partition field:  --domain light\n"              \
    "  --where JSON     an object of clauses that must all hold. A key is a field of\n"            \
    "                   the slim entry (dots descend: \"esphome.platform\"); a value is\n"         \
    "                   a scalar (equals, or an array field contains it), an array\n"              \
    "                   (any of them), {\"not\": V}, {\"empty_or\": V} (missing, null,\n"          \
    "                   [] or V) or {\"fold\": V} (case-folded):\n"                                \
    "                   --where '{\"category\": [\"sensor\", \"binary_sensor\"],\n"                \
    "                             \"supported_platforms\": {\"empty_or\": \"esp32\"}}'\n"          \
    "  --any JSON       an array of such objects, at least one of which must hold:\n"              \
    "                   --any '[{\"is_device_level\": true}, {\"applies_to\": \"light\"}]'\n"      \
    "  --phrase         the query is one phrase to find whole, not words to find\n"                \
    "                   each anywhere:  --phrase\n"                                                \
    "  --order ORDER    index (input order), relevance (the default with a query),\n"              \
    "                   FIELD[,FIELD...] where -FIELD sorts descending\n"                          \
    "                   (--order -stars,name), or a JSON array of sort keys\n"                     \
    "                   {\"field\", \"desc\"?, \"fold\"?, \"first\"?: [values]} (missing\n"        \
    "                   values last, ties in input order):\n"                                      \
    "                   --order '[{\"field\": \"domain\", \"first\": [\"core\"]}]'\n"              \
    "  --facets F,...   also count the values of these fields among the matches\n"                 \
    "                   (each field's own --where clause left out):\n"                             \
    "                   --facets category,dependencies\n"                                          \
    "  --offset N       skip the first N matches:  --offset 100\n"                                 \
    "  --limit N        at most N entries:  --limit 20\n"

static const char help_list[] =
    "Usage: herdctl catalog list W [--section S] [--category C] [--domain D]\n"
    "                              [--where JSON] [--any JSON] [--q TEXT] [--phrase]\n"
    "                              [--order ORDER] [--facets F[,F...]]\n"
    "                              [--offset N] [--limit N]\n"
    "\n"
    "Lists the slim entries of catalog worker W that match: \"id  name  category\"\n"
    "a line (\"section/id\" when W has several sections and no --section is\n"
    "given), then with --facets one block per field: \"FIELD:\" and \"  VALUE  COUNT\"\n"
    "lines. Without --limit every match is printed (fetched in pages; the facets\n"
    "are those of the first page). With --json: {\"total\": N, \"entries\": [...],\n"
    "\"facets\": {\"FIELD\": {\"VALUE\": COUNT}}}.\n"
    "\n"
    "  --q TEXT         only entries whose search fields (id, name, description)\n"
    "                   contain every word of TEXT, ignoring case; best match\n"
    "                   first unless --order:  --q 'wifi signal'\n" HELP_QUERY_OPTIONS "\n"
    "Example: herdctl catalog list comp --where '{\"category\": \"sensor\"}' \\\n"
    "             --order name --facets dependencies --limit 10\n";

static const char help_get[] =
    "Usage: herdctl catalog get W [--section S] [--slim] [--] ID...\n"
    "\n"
    "Prints the full body of entry ID of catalog worker W (JSON). With several\n"
    "IDs: an object {\"ID\": body, ...} (an unknown ID is left out, not an error).\n"
    "\n"
    "  --section S      needed only when an ID is in several sections:\n"
    "                   --section actions\n"
    "  --slim           the slim entry (what list shows), not the full body:\n"
    "                   herdctl catalog get comp --slim wifi api\n"
    "  --               an ID that starts with - goes after it:\n"
    "                   herdctl catalog get comp -- -odd-id\n";

static const char help_search[] =
    "Usage: herdctl catalog search W QUERY [--phrase] [--section S] [--category C]\n"
    "                              [--domain D] [--where JSON] [--any JSON]\n"
    "                              [--order ORDER] [--facets F[,F...]]\n"
    "                              [--offset N] [--limit N]\n"
    "\n"
    "Entries of catalog worker W that contain every word of QUERY in their search\n"
    "fields (id, name, description, unless the catalog's spec names others),\n"
    "ignoring ASCII case and beyond it Unicode case (ω finds Ω). Printed as\n"
    "\"id  name  category\" a line, best match first: exact id or name, then id or\n"
    "name prefix, then name substring, then id substring, then other fields (ties\n"
    "in input order). At most 50 unless --limit. With --json: {\"total\": N,\n"
    "\"entries\": [...], \"facets\"?: {...}}. A QUERY starting with - goes after --.\n"
    "\n" HELP_QUERY_OPTIONS "\n"
    "Example: herdctl catalog search comp 'temperature humidity' \\\n"
    "             --where '{\"category\": \"sensor\"}' --facets dependencies\n";

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
static size_t text_width(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += ((unsigned char)*p & 0xc0) != 0x80;
    return n;
}

static void print_col(const char *s, size_t width)
{
    fputs(s, stdout);
    for (size_t n = text_width(s); n < width; n++)
        putchar(' ');
}

/* The value range of a top-level member of a JSON object's text; 0 when absent. */
static int member_range(const char *p, size_t len, const char *name, size_t *a, size_t *z)
{
    base_json_scan sc;
    size_t ka, kz, n = strlen(name);
    int first = 1;
    base_json_scan_init(&sc, p, len);
    if (base_json_scan_expect(&sc, '{') < 0)
        return 0;
    while (base_json_scan_member(&sc, &first, &ka, &kz) > 0) {
        if (base_json_scan_value(&sc, a, z) < 0)
            return 0;
        if (kz - ka == n + 2 && memcmp(p + ka + 1, name, n) == 0)
            return 1;
    }
    return 0;
}

/* A top-level string member decoded into out (shortened to fit), "" when absent. */
static const char *member_string(const char *p, size_t len, const char *name, char *out,
                                 size_t size)
{
    size_t a, z;
    out[0] = '\0';
    if (!member_range(p, len, name, &a, &z) || p[a] != '"')
        return NULL;
    char *tmp = malloc(z - a);
    if (tmp == NULL)
        return NULL;
    size_t n = base_json_decode(p + a, z - a, tmp);
    snprintf(out, size, "%.*s", (int)n, tmp);
    free(tmp);
    return out;
}

/* The entries' text ("{...},{...}"): "id  name  category" a line. Entries
 * are read as text, never as jansson values, so a number jansson cannot
 * hold (17008162028057714984, 1e400) never stops the listing. */
static void print_entries(const char *p, size_t len)
{
    base_json_scan sc;
    size_t a, z;
    int first = 1;
    /* the text is the inside of an array: scan it as one */
    base_buf arr = {0};
    if (base_buf_add(&arr, "[", 1) < 0 || base_buf_add(&arr, p, len) < 0 ||
        base_buf_add(&arr, "]", 1) < 0) {
        base_buf_free(&arr);
        return;
    }
    base_json_scan_init(&sc, arr.data, arr.len);
    sc.pos = 1;
    while (base_json_scan_element(&sc, &first) > 0 && base_json_scan_value(&sc, &a, &z) == 0) {
        const char *e = arr.data + a;
        char section[256], id[256], name[256], category[256];
        int has_section = member_string(e, z - a, "section", section, sizeof(section)) != NULL;
        if (member_string(e, z - a, "id", id, sizeof(id)) == NULL)
            snprintf(id, sizeof(id), "?");
        member_string(e, z - a, "name", name, sizeof(name));
        if (member_string(e, z - a, "category", category, sizeof(category)) == NULL)
            member_string(e, z - a, "domain", category, sizeof(category));
        char full[520];
        snprintf(full, sizeof(full), "%s%s%s", has_section ? section : "", has_section ? "/" : "",
                 id);
        print_col(full, 32);
        fputs("  ", stdout);
        print_col(name, 32);
        printf("  %s\n", category);
    }
    base_buf_free(&arr);
}

/* Prints {"<field>": {"<value>": count}} as "field:" blocks of "  value  count"
 * lines, in the worker's order; a blank line before each block when
 * something was printed above it. */
static void print_facets(const json_t *facets, bool after_entries)
{
    const char *field, *value;
    json_t *counts, *n;
    json_object_foreach((json_t *)facets, field, counts)
    {
        size_t width = 0;
        json_object_foreach(counts, value, n)
        {
            size_t w = text_width(value);
            width = w > width ? w : width;
        }
        if (after_entries)
            putchar('\n');
        after_entries = true;
        printf("%s:\n", field);
        json_object_foreach(counts, value, n)
        {
            fputs("  ", stdout);
            print_col(value, width);
            printf("  %lld\n", (long long)json_integer_value(n));
        }
    }
}

/*
 * Sends list/search with args; without an explicit limit (list only) pages
 * until every match is fetched. Prints the merged result: every page's
 * entries, the last page's total and the first page's facets (later pages
 * do not ask for them again). The reply is handled as text (bus_client's
 * raw bytes), so each entry prints exactly as the catalog holds it.
 */
static int query(cli_ctx *ctx, const char *sub, const char *w, json_t *args, bool page)
{
    base_buf entries = {0}, out = {0};
    char *facets = NULL;
    size_t facets_len = 0, n_entries = 0;
    long long total = 0, offset = json_integer_value(json_object_get(args, "offset"));
    int rv;

    for (;;) {
        if (page) {
            json_object_set_new(args, "offset", json_integer(offset));
            json_object_set_new(args, "limit", json_integer(LIST_PAGE));
        }
        cli_raw r;
        rv = cli_call_raw(ctx, w, sub, args, true, &r);
        if (rv != CLI_OK)
            goto out;
        size_t ta, tz, ea, ez, fa, fz;
        if (!member_range(r.result, r.len, "total", &ta, &tz) ||
            !member_range(r.result, r.len, "entries", &ea, &ez) || r.result[ea] != '[') {
            fprintf(stderr, "herdctl catalog %s: the reply has no total or entries array\n", sub);
            cli_raw_free(&r);
            rv = CLI_ERROR;
            goto out;
        }
        total = strtoll(r.result + ta, NULL, 10);
        /* the array's inside, appended after the previous page's */
        size_t got = 0;
        base_json_scan sc;
        size_t a, z;
        int first = 1;
        base_json_scan_init(&sc, r.result + ea, ez - ea);
        sc.pos = 1;
        while (base_json_scan_element(&sc, &first) > 0 && base_json_scan_value(&sc, &a, &z) == 0) {
            if ((n_entries + got > 0 && base_buf_add(&entries, ",", 1) < 0) ||
                base_buf_add(&entries, r.result + ea + a, z - a) < 0)
                rv = CLI_ERROR;
            got++;
        }
        if (facets == NULL && member_range(r.result, r.len, "facets", &fa, &fz)) {
            facets_len = fz - fa;
            if ((facets = malloc(facets_len)) != NULL)
                memcpy(facets, r.result + fa, facets_len);
            json_object_del(args, "facets");
        }
        cli_raw_free(&r);
        if (rv != CLI_OK) {
            fprintf(stderr, "herdctl catalog %s: out of memory\n", sub);
            goto out;
        }
        n_entries += got;
        offset += (long long)got;
        if (!page || got == 0 || offset >= total)
            break;
    }
    if (ctx->json) {
        int e = base_buf_addf(&out, "{\"total\":%lld,\"entries\":[", total);
        e |= base_buf_add(&out, entries.data != NULL ? entries.data : "", entries.len);
        e |= base_buf_add(&out, "]", 1);
        if (facets != NULL) {
            e |= base_buf_add(&out, ",\"facets\":", 10);
            e |= base_buf_add(&out, facets, facets_len);
        }
        e |= base_buf_add(&out, "}", 1);
        if (e) {
            fprintf(stderr, "herdctl catalog %s: out of memory\n", sub);
            rv = CLI_ERROR;
            goto out;
        }
        cli_print_raw(ctx, out.data, out.len);
    } else {
        print_entries(entries.data != NULL ? entries.data : "", entries.len);
        /* facets are names and counts: jansson holds them */
        json_t *fj = facets != NULL ? json_loadb(facets, facets_len, 0, NULL) : NULL;
        if (json_is_object(fj))
            print_facets(fj, n_entries > 0);
        json_decref(fj);
        if ((long long)n_entries < total)
            fprintf(stderr, "(%zu shown of %lld; see --offset and --limit)\n", n_entries, total);
    }
out:
    base_buf_free(&entries);
    base_buf_free(&out);
    free(facets);
    return rv;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        break;
    }
    return "null";
}

/* A command-line string as a JSON string; NULL (usage error printed) when it
 * is not UTF-8, which JSON cannot carry. */
static json_t *arg_string(const char *sub, const char *opt, const char *s)
{
    json_t *v = json_string(s);
    if (v == NULL)
        sub_usage(sub, "%s: \"%s\" is not valid UTF-8", opt, s);
    return v;
}

/* Parses the JSON value of option opt; NULL (usage error printed) when it is
 * not JSON, with jansson's message and place. Duplicate keys are refused:
 * in a --where they would silently drop a clause. */
static json_t *arg_json(const char *sub, const char *opt, const char *s)
{
    json_error_t jerr;
    json_t *v = json_loads(s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL)
        sub_usage(sub, "%s: invalid JSON: %s (line %d, column %d)", opt, jerr.text, jerr.line,
                  jerr.column);
    return v;
}

/* --where: an object of clauses. */
static json_t *arg_where(const char *sub, const char *s)
{
    json_t *v = arg_json(sub, "--where", s);
    if (v != NULL && !json_is_object(v)) {
        sub_usage(sub,
                  "--where: expected a JSON object of clauses such as "
                  "'{\"category\": \"sensor\"}', got %s",
                  json_kind(v));
        json_decref(v);
        return NULL;
    }
    return v;
}

/* --any: an array of objects of clauses. */
static json_t *arg_any(const char *sub, const char *s)
{
    json_t *v = arg_json(sub, "--any", s), *e;
    size_t i;
    if (v == NULL)
        return NULL;
    if (!json_is_array(v)) {
        sub_usage(sub,
                  "--any: expected a JSON array of objects of clauses such as "
                  "'[{\"category\": \"sensor\"}, {\"category\": \"light\"}]', got %s",
                  json_kind(v));
        json_decref(v);
        return NULL;
    }
    json_array_foreach(v, i, e)
    {
        if (!json_is_object(e)) {
            sub_usage(sub, "--any[%zu]: expected an object of clauses, got %s", i, json_kind(e));
            json_decref(v);
            return NULL;
        }
    }
    return v;
}

/* Splits a comma list ("a,b, c") and calls add for each trimmed item;
 * -1 (usage error printed) on an empty item. */
static int split_list(const char *sub, const char *opt, const char *s,
                      int (*add)(const char *sub, const char *opt, const char *item, size_t len,
                                 json_t *to),
                      json_t *to)
{
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (b == e) {
            sub_usage(sub, "%s: empty field name in \"%s\"", opt, s);
            return -1;
        }
        if (add(sub, opt, b, (size_t)(e - b), to) < 0)
            return -1;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

static int add_field(const char *sub, const char *opt, const char *item, size_t len, json_t *to)
{
    json_t *f = json_stringn(item, len);
    if (f == NULL) {
        sub_usage(sub, "%s: \"%.*s\" is not valid UTF-8", opt, (int)len, item);
        return -1;
    }
    return json_array_append_new(to, f);
}

/* One "FIELD" or "-FIELD" of the --order shorthand as a sort key. */
static int add_sort_key(const char *sub, const char *opt, const char *item, size_t len, json_t *to)
{
    bool desc = item[0] == '-';
    if (desc && len == 1) {
        sub_usage(sub, "%s: \"-\" without a field name", opt);
        return -1;
    }
    json_t *field = json_stringn(item + desc, len - desc);
    if (field == NULL) {
        sub_usage(sub, "%s: \"%.*s\" is not valid UTF-8", opt, (int)len, item);
        return -1;
    }
    json_t *key = desc ? json_pack("{s:o,s:b}", "field", field, "desc", 1)
                       : json_pack("{s:o}", "field", field);
    return key != NULL ? json_array_append_new(to, key) : -1;
}

/* --order: "index", "relevance", a JSON array of sort key objects, or the
 * shorthand FIELD[,-FIELD...] turned into one. */
static json_t *arg_order(const char *sub, const char *s)
{
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strcmp(s, "index") == 0 || strcmp(s, "relevance") == 0)
        return json_string(s);
    if (*p == '[' || *p == '{') {
        json_t *v = arg_json(sub, "--order", s), *e;
        size_t i;
        if (v == NULL)
            return NULL;
        if (!json_is_array(v)) {
            sub_usage(sub,
                      "--order: expected a JSON array of sort keys such as "
                      "'[{\"field\": \"name\"}]', got %s",
                      json_kind(v));
            json_decref(v);
            return NULL;
        }
        json_array_foreach(v, i, e)
        {
            if (!json_is_object(e)) {
                sub_usage(sub,
                          "--order[%zu]: expected a sort key such as {\"field\": \"name\", "
                          "\"desc\": true}, got %s",
                          i, json_kind(e));
                json_decref(v);
                return NULL;
            }
        }
        return v;
    }
    json_t *keys = json_array();
    if (keys == NULL)
        return NULL;
    if (*p == '\0') {
        sub_usage(sub,
                  "--order: expected index, relevance, FIELD[,-FIELD...] or a JSON array "
                  "of sort keys, got \"%s\"",
                  s);
        goto fail;
    }
    if (split_list(sub, "--order", s, add_sort_key, keys) < 0)
        goto fail;
    return keys;
fail:
    json_decref(keys);
    return NULL;
}

/* The options of list and search: how each is given to the worker. */
enum qopt_kind { Q_STRING, Q_COUNT, Q_WHERE, Q_ANY, Q_ORDER, Q_FACETS, Q_PHRASE };

static const struct qopt {
    const char *name;
    const char *key; /* in the request's args */
    enum qopt_kind kind;
    bool list_only;
} qopts[] = {
    {"--section", "section", Q_STRING, false},
    {"--category", "category", Q_STRING, false},
    {"--domain", "domain", Q_STRING, false},
    {"--where", "where", Q_WHERE, false},
    {"--any", "any", Q_ANY, false},
    {"--q", "q", Q_STRING, true},
    {"--phrase", "match", Q_PHRASE, false},
    {"--order", "order", Q_ORDER, false},
    {"--facets", "facets", Q_FACETS, false},
    {"--offset", "offset", Q_COUNT, false},
    {"--limit", "limit", Q_COUNT, false},
};

static const struct qopt *find_qopt(const char *a, bool search)
{
    for (size_t i = 0; i < sizeof(qopts) / sizeof(qopts[0]); i++)
        if (strcmp(qopts[i].name, a) == 0 && !(search && qopts[i].list_only))
            return &qopts[i];
    return NULL;
}

/* Sets the value of option o (v, its command-line text) in args; -1 (usage
 * error printed) on a bad value. */
static int set_qopt(const char *sub, const struct qopt *o, const char *v, json_t *args)
{
    json_t *val = NULL;
    json_int_t n;

    switch (o->kind) {
    case Q_STRING:
        val = arg_string(sub, o->name, v);
        break;
    case Q_COUNT:
        if (parse_count(sub, o->name, v, &n) < 0)
            return -1;
        val = json_integer(n);
        break;
    case Q_WHERE:
        val = arg_where(sub, v);
        break;
    case Q_ANY:
        val = arg_any(sub, v);
        break;
    case Q_ORDER:
        val = arg_order(sub, v);
        break;
    case Q_FACETS: {
        /* repeated --facets add up */
        json_t *facets = json_object_get(args, "facets");
        if (facets == NULL) {
            val = facets = json_array();
            if (val == NULL)
                return -1;
        }
        if (split_list(sub, o->name, v, add_field, facets) < 0) {
            json_decref(val);
            return -1;
        }
        if (val == NULL)
            return 0;
        break;
    }
    case Q_PHRASE:
        val = json_string("phrase");
        break;
    }
    if (val == NULL)
        return -1;
    return json_object_set_new(args, o->key, val);
}

static int cmd_query(cli_ctx *ctx, int argc, char **argv, bool search)
{
    const char *sub = search ? "search" : "list";
    const char *pos[2];
    int n_pos = 0, want = search ? 2 : 1;
    bool options = true; /* until "--": a QUERY may start with '-' after it */
    json_t *args = json_object();
    int rv = CLI_USAGE;

    if (args == NULL)
        return CLI_ERROR;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const struct qopt *o = options ? find_qopt(a, search) : NULL;
        if (options && strcmp(a, "--") == 0) {
            options = false;
        } else if (o != NULL) {
            /* a second --where or --any would replace the first: clauses
             * lost without a word */
            if ((o->kind == Q_WHERE || o->kind == Q_ANY || o->kind == Q_ORDER) &&
                json_object_get(args, o->key) != NULL) {
                sub_usage(sub, "%s given twice%s", a,
                          o->kind == Q_ORDER ? "" : " (put every clause in one)");
                goto out;
            }
            if (o->kind == Q_PHRASE) {
                if (set_qopt(sub, o, NULL, args) < 0)
                    goto out;
                continue;
            }
            if (i + 1 >= argc) {
                sub_usage(sub, "%s needs a value", a);
                goto out;
            }
            if (set_qopt(sub, o, argv[++i], args) < 0)
                goto out;
        } else if (options && search && strcmp(a, "--q") == 0) {
            sub_usage(sub, "--q: search takes its text as QUERY (or use list --q)");
            goto out;
        } else if (options && a[0] == '-' && a[1] != '\0') {
            sub_usage(sub, "unknown option \"%s\"%s", a,
                      search ? " (a QUERY starting with '-' goes after --)" : "");
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
    if (search) {
        json_t *q = arg_string(sub, "QUERY", pos[1]);
        if (q == NULL || json_object_set_new(args, "q", q) < 0)
            goto out;
    } else if (json_object_get(args, "match") != NULL && json_object_get(args, "q") == NULL) {
        sub_usage(sub, "--phrase needs --q TEXT");
        goto out;
    }
    rv = query(ctx, sub, pos[0], args, !search && json_object_get(args, "limit") == NULL);
out:
    json_decref(args);
    return rv;
}

/* ---- get ---------------------------------------------------------------------- */

static int cmd_get(cli_ctx *ctx, int argc, char **argv)
{
    const char *w = NULL;
    bool options = true; /* until "--": an id may start with '-' after it */
    json_t *args = json_object(), *ids = json_array();
    int rv = CLI_USAGE;

    if (args == NULL || ids == NULL) {
        rv = CLI_ERROR;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = false;
        } else if (options && strcmp(a, "--section") == 0) {
            if (i + 1 >= argc) {
                sub_usage("get", "--section needs a value");
                goto out;
            }
            json_t *s = arg_string("get", a, argv[++i]);
            if (s == NULL || json_object_set_new(args, "section", s) < 0)
                goto out;
        } else if (options && strcmp(a, "--slim") == 0) {
            json_object_set_new(args, "slim", json_true());
        } else if (options && a[0] == '-' && a[1] != '\0') {
            sub_usage("get", "unknown option \"%s\" (an ID starting with '-' goes after --)", a);
            goto out;
        } else if (w == NULL) {
            w = a;
        } else {
            json_t *id = arg_string("get", "ID", a);
            if (id == NULL || json_array_append_new(ids, id) < 0)
                goto out;
        }
    }
    if (w == NULL || json_array_size(ids) == 0) {
        sub_usage("get", "expected W and ID");
        goto out;
    }
    /* one id asks for the body itself, several for an object of bodies */
    if (json_array_size(ids) == 1 ? json_object_set(args, "id", json_array_get(ids, 0)) < 0
                                  : json_object_set(args, "ids", ids) < 0) {
        rv = CLI_ERROR;
        goto out;
    }
    cli_raw r;
    rv = cli_call_raw(ctx, w, "get", args, true, &r); /* the bytes as the catalog holds them */
    if (rv == CLI_OK) {
        cli_print_raw(ctx, r.result, r.len);
        cli_raw_free(&r);
    }
out:
    json_decref(ids);
    json_decref(args);
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
