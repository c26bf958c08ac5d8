/*
 * The compiler: bad inputs refused with their place and nothing written,
 * rebuilds, and both real ESPHome catalogs compiled and queried (expected
 * values computed independently from the input with jansson).
 */
#include "catalog/internal.h"

/* test paths are built in PATH_MAX buffers from a short temp root */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/catalog_support.h"

static void gunzip(const char *name, const char *dest)
{
    const char *shared = getenv("HERD_TEST_DATA");
    assert_non_null(shared);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd), "gzip -dc '%s/esphome/%s.gz' > '%s'", shared, name, dest);
    assert_int_equal(system(cmd), 0);
}

/* A sorted listing of every path under dir with its size and symlink target. */
static void snapshot(const char *dir, char *out, size_t size)
{
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof(cmd), "cd '%s' 2>/dev/null && find . -printf '%%p %%s %%l %%T@\\n' | sort",
             dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    pclose(p);
}

static void read_link(const char *outdir, char *out, size_t size)
{
    assert_int_equal(catalog__read_current(outdir, out, size), 0);
}

/* ---- bad inputs ---------------------------------------------------------- */

static const struct bad_case {
    const char *input;
    const char *spec; /* NULL: none */
    const char *message;
} bad_cases[] = {
    {"{\"components\":[{\"id\":\"a\"},{\"id\":\"a/b\"}]}", NULL,
     "components[1]: id \"a/b\" contains '/'"},
    {"{\"components\":[{\"id\":\"a..b\"}]}", NULL, "components[0]: id \"a..b\" contains '..'"},
    {"{\"components\":[{\"id\":\"..\"}]}", NULL, "components[0]: id \"..\" contains '..'"},
    {"{\"components\":[{\"id\":\".\"}]}", NULL, "components[0]: id \".\" is '.'"},
    {"{\"components\":[{\"id\":\"a\\u0000b\"}]}", NULL,
     "components[0]: id \"a\\u0000b\" contains a NUL byte"},
    {"{\"components\":[{\"id\":\"a\\nb\"}]}", NULL,
     "components[0]: id \"a\\u000ab\" contains a control byte"},
    {"{\"components\":[{\"id\":\"a\\u007f\"}]}", NULL,
     "components[0]: id \"a\\u007f\" contains a control byte"},
    {"{\"components\":[{\"id\":\"\"}]}", NULL, "components[0]: id \"\" is empty"},
    {"{\"components\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"a\"}]}", NULL,
     "components[2]: duplicate id \"a\""},
    {"{\"s\":[{\"id\":\"a\"}],\"t\":[{\"id\":\"b\"},{\"id\":\"b\"}]}", NULL,
     "t[1]: duplicate id \"b\""},
    {"{\"components\":[{\"id\":\"a\"},5]}", NULL, "components[1]: entry is not an object"},
    {"{\"components\":[[{\"id\":\"a\"}]]}", NULL, "components[0]: entry is not an object"},
    {"{\"components\":[{\"name\":\"a\"}]}", NULL, "components[0]: missing id member \"id\""},
    {"{\"components\":[{\"id\":7}]}", NULL, "components[0]: id \"id\" is not a string"},
    {"{\"components\":[{\"id\":\"a\",}]}", NULL,
     "components[0]: invalid JSON at line 1 column 26: expected a string key"},
    {"{\"components\":[{\"id\":\"a\"}\n,{\"id\":\"b\" \"x\":1}]}", NULL,
     "components[1]: invalid JSON at line 2 column 12: expected ',' or '}'"},
    {"{\"components\":[{\"id\":\"a\",\"id\":\"b\"}]}", NULL,
     "components[0]: duplicate member \"id\" at line 1 column 26"},
    {"{\"components\":[{\"id\":\"a\"} {\"id\":\"b\"}]}", NULL,
     "components[1]: invalid JSON at line 1 column 27: expected ',' or ']'"},
    {"{\"components\":[{\"id\":\"a\"}],\"x\":tru}", NULL,
     "input: invalid JSON at line 1 column 32: invalid literal"},
    {"{\"components\":[{\"id\":\"a\"}]} x", NULL,
     "input: invalid JSON at line 1 column 29: trailing data after the JSON value"},
    {"{\"components\":[{\"id\":\"a\"}]", NULL,
     "input: invalid JSON at line 1 column 27: unexpected end of input"},
    {"[{\"id\":\"a\"}]", NULL, "input: invalid JSON at line 1 column 1: expected '{'"},
    {"", NULL, "input: invalid JSON at line 1 column 1: unexpected end of input"},
    {"{\"version\":1}", NULL, "input: no sections (no member is an array)"},
    {"{\"a/b\":[]}", NULL, "section \"a/b\": name contains '/'"},
    {"{\"..\":[]}", NULL, "section \"..\": name contains '..'"},
    {"{\"s\":[],\"s\":[]}", NULL, "section \"s\": duplicate section"},
    {"{\"components\":[{\"id\":\"a\"}]}", "{\"idfield\":\"x\"}", "spec.idfield: unknown key"},
    {"{\"components\":[{\"id\":\"a\"}]}", "{\"sections\":{\"components\":{\"partition\":\"x\"}}}",
     "spec.sections.components.partition: unknown key"},
    {"{\"components\":[{\"id\":\"a\"}]}", "{\"sections\":{\"nope\":{}}}",
     "spec.sections.nope: no such section in the input"},
    {"{\"components\":[{\"id\":\"a\"}]}", "{\"index_fields\":\"name\"}",
     "spec.index_fields: expected an array of member names"},
    {"{\"components\":[{\"id\":\"a\"}]}", "{\"index_fields\":[\"name\",3]}",
     "spec.index_fields[1]: expected a non-empty string"},
    {"{\"components\":[{\"id\":\"a\"}]}", "{\"partition_field\":5}",
     "spec.partition_field: expected a member name or null"},
    {"{\"components\":[{\"id\":\"a\"}]}", "{\"id_field\":\"key\"}",
     "components[0]: missing id member \"key\""},
    {"{\"components\":[{\"id\":\"a\"}]}", "[]", "spec: expected an object"},
};

static void test_bad_inputs(void **state)
{
    (void)state;
    char dir[PATH_MAX], out[PATH_MAX], in[PATH_MAX], spec[PATH_MAX], err[512];
    make_tmp("build-bad", dir, sizeof(dir));
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(in, sizeof(in), "%s/in.json", dir);
    snprintf(spec, sizeof(spec), "%s/spec.json", dir);
    /* an existing good version, which every refusal must leave alone */
    write_text(in, "{\"components\":[{\"id\":\"good\"}]}");
    catalog_build_result res;
    assert_int_equal(catalog_build(in, NULL, out, &res, err, sizeof(err)), 0);
    static char before[65536], after[65536];
    snapshot(out, before, sizeof(before));
    assert_non_null(strstr(before, "./current 18 v-"));

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        write_text(in, c->input);
        if (c->spec != NULL)
            write_text(spec, c->spec);
        err[0] = '\0';
        int rc = catalog_build(in, c->spec != NULL ? spec : NULL, out, &res, err, sizeof(err));
        if (rc != -EINVAL || strcmp(err, c->message) != 0)
            fail_msg("case %zu: rc %d, message\n  got:  %s\n  want: %s", i, rc, err, c->message);
        snapshot(out, after, sizeof(after));
        if (strcmp(before, after) != 0)
            fail_msg("case %zu: OUTDIR changed", i);
    }

    /* an over-long id: the message shows a shortened id and the length */
    char big[400] = "{\"components\":[{\"id\":\"";
    size_t n = strlen(big);
    memset(big + n, 'x', 201);
    strcpy(big + n + 201, "\"}]}");
    write_text(in, big);
    assert_int_equal(catalog_build(in, NULL, out, &res, err, sizeof(err)), -EINVAL);
    char want[256], xs[69];
    memset(xs, 'x', 68);
    xs[68] = '\0';
    snprintf(want, sizeof(want), "components[0]: id \"%s...\" is 201 bytes, over 200", xs);
    assert_string_equal(err, want);
    /* exactly 200 bytes is fine */
    memset(big + n, 'x', 200);
    strcpy(big + n + 200, "\"}]}");
    write_text(in, big);
    assert_int_equal(catalog_build(in, NULL, out, &res, err, sizeof(err)), 0);

    /* a refused build never creates a missing OUTDIR */
    char fresh[PATH_MAX];
    snprintf(fresh, sizeof(fresh), "%s/never", dir);
    write_text(in, bad_cases[0].input);
    assert_int_equal(catalog_build(in, NULL, fresh, &res, err, sizeof(err)), -EINVAL);
    assert_int_equal(access(fresh, F_OK), -1);
    /* a missing input is a system error, with the path */
    snprintf(in, sizeof(in), "%s/missing.json", dir);
    assert_int_equal(catalog_build(in, NULL, fresh, &res, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "missing.json: open: "));
}

static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_rebuild(void **state)
{
    (void)state;
    char dir[PATH_MAX], out[PATH_MAX], in[PATH_MAX], spec[PATH_MAX], err[512], p[PATH_MAX + 64];
    make_tmp("build-rebuild", dir, sizeof(dir));
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(in, sizeof(in), "%s/in.json", dir);
    snprintf(spec, sizeof(spec), "%s/spec.json", dir);
    catalog_build_result a, b, c, d;
    char cur[64];

    write_text(in, "{\"s\":[{\"id\":\"x\",\"v\":1},{\"id\":\"y\",\"v\":2}]}");
    assert_int_equal(catalog_build(in, NULL, out, &a, err, sizeof(err)), 0);
    assert_int_equal(a.unchanged, 0);
    assert_int_equal(a.n_entries, 2);
    assert_int_equal(a.n_sections, 1);
    assert_int_equal(strlen(a.version), 18);
    assert_memory_equal(a.version + 2, a.manifest_sha256, 16);
    read_link(out, cur, sizeof(cur));
    assert_string_equal(cur, a.version);

    /* a stale temp directory of a killed build is swept by the next build */
    snprintf(p, sizeof(p), "%s/.tmp-deadbeef", out);
    assert_int_equal(mkdir(p, 0755), 0);

    write_text(in, "{\"s\":[{\"id\":\"x\",\"v\":1},{\"id\":\"y\",\"v\":3}]}");
    assert_int_equal(catalog_build(in, NULL, out, &b, err, sizeof(err)), 0);
    assert_string_not_equal(a.version, b.version);
    read_link(out, cur, sizeof(cur));
    assert_string_equal(cur, b.version);
    snprintf(p, sizeof(p), "%s/%s", out, a.version);
    assert_int_equal(access(p, F_OK), 0); /* the previous version is kept */
    assert_int_equal(count_entries(out, "v-"), 2);
    assert_int_equal(count_entries(out, ".tmp-"), 0);

    /* the same input again: nothing changes */
    static char before[65536], after[65536];
    snapshot(out, before, sizeof(before));
    assert_int_equal(catalog_build(in, NULL, out, &c, err, sizeof(err)), 0);
    assert_int_equal(c.unchanged, 1);
    assert_string_equal(c.version, b.version);
    snapshot(out, after, sizeof(after));
    assert_string_equal(before, after);

    /* the same input with another spec is another version (its index differs) */
    write_text(spec, "{\"index_fields\":[]}");
    assert_int_equal(catalog_build(in, spec, out, &d, err, sizeof(err)), 0);
    assert_string_not_equal(d.version, b.version);
    read_link(out, cur, sizeof(cur));
    assert_string_equal(cur, d.version);
    /* b is now the previous version, a (two builds back) is gone */
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/%s", out, b.version);
    assert_int_equal(access(p, F_OK), 0);
    assert_int_equal(count_entries(out, "v-"), 2);

    /* a copy that exists but is not current (here the previous version, with
     * a body a reader holds open) is replaced by the fresh build in one
     * exchange: the path never disappears, the open file stays readable,
     * and the version becomes current */
    write_text(in, "{\"s\":[{\"id\":\"x\",\"v\":1},{\"id\":\"y\",\"v\":3}]}");
    snprintf(p, sizeof(p), "%s/%s/bodies/s/y.json", out, b.version);
    int held = open(p, O_RDONLY);
    assert_true(held >= 0);
    snprintf(p, sizeof(p), "%s/%s/bodies/s/x.json", out, b.version);
    assert_int_equal(unlink(p), 0); /* damage the old copy: the rebuild repairs it */
    assert_int_equal(catalog_build(in, NULL, out, &c, err, sizeof(err)), 0);
    assert_int_equal(c.unchanged, 0);
    assert_string_equal(c.version, b.version);
    read_link(out, cur, sizeof(cur));
    assert_string_equal(cur, b.version);
    assert_int_equal(access(p, R_OK), 0);
    char held_buf[64];
    ssize_t n_held = pread(held, held_buf, sizeof(held_buf), 0);
    assert_int_equal(n_held, (ssize_t)strlen("{\"id\":\"y\",\"v\":3}"));
    close(held);
    assert_int_equal(count_entries(out, "v-"), 2); /* b current, d previous */
    assert_int_equal(count_entries(out, ".tmp-"), 0);

    /* the version directory holds what the layout promises */
    catalog_index *idx = NULL;
    snprintf(p, sizeof(p), "%s/current", out);
    assert_int_equal(catalog_index_load(p, &idx, err, sizeof(err)), 0);
    assert_int_equal(catalog_index_get_info(idx).n_entries, 2);
    catalog_index_free(idx);
    snprintf(p, sizeof(p), "%s/%s/bodies/s/y.json", out, b.version);
    char *body;
    size_t len;
    assert_int_equal(base_read_file(AT_FDCWD, p, &body, &len), 0);
    assert_string_equal(body, "{\"id\":\"y\",\"v\":3}");
    base_free(body);
}

/* ---- real catalogs -------------------------------------------------------- */

static int is_array_of_objects(const json_t *v)
{
    size_t i;
    json_t *x;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return 0;
    json_array_foreach(v, i, x) if (!json_is_object(x)) return 0;
    return 1;
}

static json_t *read_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (j == NULL)
        fail_msg("%s: %s", path, je.text);
    return j;
}

/*
 * "section/id\n" lines of a list/search reply. Entries carry "section" only
 * when the query named none in a multi-section catalog; otherwise `section`
 * (the query's, or the only one) names it.
 */
static char *reply_ids(const base_buf *b, const char *section, size_t *total)
{
    json_error_t je;
    json_t *r = json_loadb(b->data, b->len, 0, &je);
    if (r == NULL)
        fail_msg("reply is not JSON: %s", je.text);
    *total = json_integer_value(json_object_get(r, "total"));
    base_buf ids = {0};
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r, "entries"), i, e)
    {
        const char *s = json_string_value(json_object_get(e, "section"));
        if (section != NULL) {
            assert_null(s);
            s = section;
        }
        assert_non_null(s);
        base_buf_addf(&ids, "%s/%s\n", s, json_string_value(json_object_get(e, "id")));
    }
    json_decref(r);
    base_buf_add(&ids, "", 0);
    return ids.data;
}

static int icontains(const char *h, const char *n)
{
    if (h == NULL)
        return 0;
    size_t hl = strlen(h), nl = strlen(n);
    for (size_t i = 0; i + nl <= hl; i++)
        if (strncasecmp(h + i, n, nl) == 0)
            return 1;
    return 0;
}

/* A query run against the input tree itself: the expected "section/id" lines. */
static char *expect_ids(json_t *input, const char *section, const char *member, const char *value,
                        const char *q)
{
    base_buf ids = {0};
    const char *name;
    json_t *arr;
    json_object_foreach(input, name, arr)
    {
        if (section != NULL && strcmp(section, name) != 0)
            continue;
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e)
        {
            if (member != NULL) {
                const char *v = json_string_value(json_object_get(e, member));
                if (v == NULL || strcmp(v, value) != 0)
                    continue;
            }
            if (q != NULL && !icontains(json_string_value(json_object_get(e, "id")), q) &&
                !icontains(json_string_value(json_object_get(e, "name")), q) &&
                !icontains(json_string_value(json_object_get(e, "description")), q))
                continue;
            base_buf_addf(&ids, "%s/%s\n", name, json_string_value(json_object_get(e, "id")));
        }
    }
    base_buf_add(&ids, "", 0);
    return ids.data;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void check_query(catalog_index *idx, json_t *input, int search, const char *section,
                        const char *category, const char *domain, const char *q)
{
    /* input order and the whole text as one phrase: relevance and terms,
     * a search's defaults, are test_catalog_query's */
    json_t *index_order = json_string("index");
    catalog_query qq = {.section = section,
                        .category = category,
                        .domain = domain,
                        .q = q,
                        .phrase = 1,
                        .order = index_order,
                        .limit = SIZE_MAX};
    base_buf b = {0};
    char err[256];
    int rc = search ? catalog_index_search(idx, &qq, &b, err, sizeof(err))
                    : catalog_index_list(idx, &qq, &b, err, sizeof(err));
    assert_int_equal(rc, 0);
    size_t total;
    const char *only =
        catalog_index_get_info(idx).n_sections == 1 ? catalog_index_section_name(idx, 0) : NULL;
    char *got = reply_ids(&b, section != NULL ? section : only, &total);
    char *want = expect_ids(input, section,
                            category != NULL ? "category"
                            : domain != NULL ? "domain"
                                             : NULL,
                            category != NULL ? category : domain, q);
    if (strcmp(got, want) != 0)
        fail_msg("query section=%s category=%s domain=%s q=%s: got\n%.400s\nwant\n%.400s", section,
                 category, domain, q, got, want);
    assert_int_equal(total, count_lines(want));
    base_free(got);
    base_free(want);
    base_buf_free(&b);
    json_decref(index_order);
}

/* Every body equals its input entry; every slim entry follows the rule. */
static void check_bodies(const char *outdir, catalog_index *idx, json_t *input,
                         const json_t *fields_by_section)
{
    char path[PATH_MAX + 512], err[256];
    const char *name;
    json_t *arr;
    size_t n = 0;
    json_object_foreach(input, name, arr)
    {
        size_t i;
        json_t *e;
        const json_t *fields = json_object_get(fields_by_section, name);
        json_array_foreach(arr, i, e)
        {
            const char *id = json_string_value(json_object_get(e, "id"));
            snprintf(path, sizeof(path), "%s/current/bodies/%s/%s.json", outdir, name, id);
            json_t *body = read_json(path);
            if (!json_equal(body, e))
                fail_msg("%s[%zu] (%s): body differs from the input", name, i, id);
            json_decref(body);

            size_t entry, len;
            assert_int_equal(catalog_index_find(idx, name, id, &entry, err, sizeof(err)), 0);
            const char *slim = catalog_index_entry_slim(idx, entry, &len);
            json_t *sj = json_loadb(slim, len, 0, NULL);
            assert_non_null(sj);
            json_t *want = json_object();
            if (fields != NULL) {
                json_object_set(want, "id", json_object_get(e, "id"));
                size_t k;
                json_t *f;
                json_array_foreach(fields, k, f)
                {
                    json_t *v = json_object_get(e, json_string_value(f));
                    if (v != NULL)
                        json_object_set(want, json_string_value(f), v);
                }
            } else {
                const char *key;
                json_t *v;
                json_object_foreach(e, key, v) if (!is_array_of_objects(v))
                    json_object_set(want, key, v);
            }
            if (json_object_get(e, "domain") != NULL)
                json_object_set(want, "domain", json_object_get(e, "domain"));
            if (!json_equal(sj, want))
                fail_msg("%s[%zu] (%s): slim entry %.200s", name, i, id, slim);
            json_decref(sj);
            json_decref(want);
            n++;
        }
    }
    assert_int_equal(n, catalog_index_get_info(idx).n_entries);
}

static void test_components(void **state)
{
    (void)state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], vdir[PATH_MAX + 64], err[512];
    make_tmp("build-components", dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/components.json", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    gunzip("components.json", in);

    catalog_build_result res;
    int rc = catalog_build(in, NULL, out, &res, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(res.n_entries, 961);
    assert_int_equal(res.n_sections, 1);
    snprintf(vdir, sizeof(vdir), "%s/%s", out, res.version);
    catalog_index *idx;
    rc = catalog_index_load(vdir, &idx, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    assert_string_equal(catalog_index_get_info(idx).version, res.version);
    assert_string_equal(catalog_index_get_info(idx).manifest, res.manifest_sha256);
    assert_string_equal(catalog_index_section_name(idx, 0), "components");
    assert_null(catalog_index_section_name(idx, 1));

    json_t *input = read_json(in);
    check_bodies(out, idx, input, NULL);

    /* every category, plus one that does not exist */
    base_buf b = {0};
    assert_int_equal(catalog_index_categories(idx, NULL, &b, err, sizeof(err)), 0);
    json_t *cats = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(cats);
    assert_int_equal(json_integer_value(json_object_get(cats, "sensor")), 287);
    assert_int_equal(json_integer_value(json_object_get(cats, "misc")), 206);
    const char *cat, *prev = "";
    json_t *cnt;
    size_t sum = 0;
    json_object_foreach(cats, cat, cnt)
    {
        assert_true(strcmp(prev, cat) < 0); /* sorted */
        prev = cat;
        sum += (size_t)json_integer_value(cnt);
        check_query(idx, input, 0, "components", cat, NULL, NULL);
        check_query(idx, input, 0, NULL, cat, NULL, NULL);
    }
    assert_int_equal(sum, 961);
    json_decref(cats);
    base_buf_free(&b);
    check_query(idx, input, 0, NULL, "no-such-category", NULL, NULL);
    check_query(idx, input, 0, NULL, NULL, NULL, NULL);
    /* no partition field: a domain filter matches nothing, domains is empty */
    check_query(idx, input, 0, NULL, NULL, "sensor", NULL);
    assert_int_equal(catalog_index_domains(idx, NULL, &b, err, sizeof(err)), 0);
    assert_string_equal(b.data, "{}");
    base_buf_free(&b);

    /* search: id, name and description, any case */
    static const char *const queries[] = {"SENSOR.A01NYUB", "ultrasonic", "TEMPERATURE",  "i2C",
                                          "Waterproof",     "dfrobot",    "zzzz-nothing", "é"};
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
        check_query(idx, input, 1, NULL, NULL, NULL, queries[i]);
    check_query(idx, input, 1, NULL, "sensor", NULL, "temp");

    /* single section: slim entries come back byte for byte */
    catalog_query q = {.category = "sensor", .offset = 5, .limit = 2};
    assert_int_equal(catalog_index_list(idx, &q, &b, err, sizeof(err)), 0);
    size_t e5, len;
    q.offset = 0;
    q.limit = SIZE_MAX;
    base_buf all = {0};
    assert_int_equal(catalog_index_list(idx, &q, &all, err, sizeof(err)), 0);
    json_t *jall = json_loadb(all.data, all.len, 0, NULL);
    const char *id5 = json_string_value(
        json_object_get(json_array_get(json_object_get(jall, "entries"), 5), "id"));
    assert_int_equal(catalog_index_find(idx, NULL, id5, &e5, err, sizeof(err)), 0);
    const char *slim = catalog_index_entry_slim(idx, e5, &len);
    assert_memory_equal(b.data, "{\"total\":287,\"entries\":[", 24);
    assert_memory_equal(b.data + 24, slim, len);
    assert_int_equal(b.data[24 + len], ',');
    json_decref(jall);
    base_buf_free(&all);
    base_buf_free(&b);

    /* errors */
    assert_int_equal(
        catalog_index_list(idx, &(catalog_query){.section = "nope"}, &b, err, sizeof(err)),
        -ENOENT);
    assert_string_equal(err, "no section \"nope\"");
    assert_int_equal(catalog_index_search(idx, &(catalog_query){.q = ""}, &b, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(catalog_index_find(idx, NULL, "nope", &e5, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "no entry with id \"nope\"");
    base_buf_free(&b);

    assert_int_equal(catalog_index_stats(idx, &b), 0);
    json_t *st = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(st);
    assert_string_equal(json_string_value(json_object_get(st, "version")), res.version);
    assert_int_equal(json_integer_value(json_object_get(st, "entries")), 961);
    assert_int_equal(json_integer_value(json_object_get(st, "index_bytes")),
                     catalog_index_get_info(idx).heap_bytes);
    json_decref(st);
    base_buf_free(&b);

    json_decref(input);
    catalog_index_free(idx);
}

static void test_automations(void **state)
{
    (void)state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], spec[PATH_MAX], err[512];
    make_tmp("build-automations", dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/automations.json", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(spec, sizeof(spec), "%s/spec.json", dir);
    gunzip("automations.json", in);
    write_text(spec, "{\"partition_field\":\"domain\",\"sections\":{\"light_effects\":"
                     "{\"index_fields\":[\"name\",\"applies_to\"]}}}");

    catalog_build_result res;
    int rc = catalog_build(in, spec, out, &res, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(res.n_entries, 1127);
    assert_int_equal(res.n_sections, 5);
    char vdir[PATH_MAX + 8];
    snprintf(vdir, sizeof(vdir), "%s/current", out);
    catalog_index *idx;
    rc = catalog_index_load(vdir, &idx, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);

    assert_string_equal(catalog_index_get_info(idx).version, res.version);
    json_t *input = read_json(in);
    json_t *fields = json_pack("{s:[s,s]}", "light_effects", "name", "applies_to");
    check_bodies(out, idx, input, fields);
    json_decref(fields);

    /* the effective spec is recorded in index.json */
    char ipath[PATH_MAX + 32];
    snprintf(ipath, sizeof(ipath), "%s/index.json", vdir);
    json_t *ij = read_json(ipath);
    json_t *want_spec = json_pack(
        "{s:s,s:{s:{s:s},s:{s:s},s:{s:s},s:{s:[s,s],s:s},s:{s:s}}}", "id_field", "id", "sections",
        "triggers", "partition_field", "domain", "actions", "partition_field", "domain",
        "conditions", "partition_field", "domain", "light_effects", "index_fields", "name",
        "applies_to", "partition_field", "domain", "filters", "partition_field", "domain");
    assert_true(json_equal(json_object_get(ij, "spec"), want_spec));
    assert_int_equal(json_integer_value(json_object_get(ij, "format")), CATALOG_FORMAT);
    json_decref(want_spec);
    json_decref(ij);

    /* domains per section and overall, each checked with a list filter */
    static const char *const sections[] = {NULL,         "triggers",      "actions",
                                           "conditions", "light_effects", "filters"};
    size_t total_domains = 0;
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        base_buf b = {0};
        assert_int_equal(catalog_index_domains(idx, sections[s], &b, err, sizeof(err)), 0);
        json_t *doms = json_loadb(b.data, b.len, 0, NULL);
        assert_non_null(doms);
        const char *d;
        json_t *cnt;
        size_t sum = 0;
        json_object_foreach(doms, d, cnt)
        {
            char *want = expect_ids(input, sections[s], "domain", d, NULL);
            assert_int_equal(count_lines(want), json_integer_value(cnt));
            base_free(want);
            sum += (size_t)json_integer_value(cnt);
            check_query(idx, input, 0, sections[s], NULL, d, NULL);
        }
        if (sections[s] == NULL) {
            total_domains = sum;
            assert_int_equal(json_integer_value(json_object_get(doms, "lvgl")), 67);
        }
        json_decref(doms);
        base_buf_free(&b);
        check_query(idx, input, 0, sections[s], NULL, NULL, NULL);
    }
    assert_int_equal(total_domains, 575 + 69); /* only actions and conditions have a domain */
    base_buf b = {0};
    assert_int_equal(catalog_index_categories(idx, NULL, &b, err, sizeof(err)), 0);
    assert_string_equal(b.data, "{}");
    base_buf_free(&b);

    static const char *const queries[] = {"LVGL", "on_press", "Turn ON", "uart", "Append"};
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        check_query(idx, input, 1, NULL, NULL, NULL, queries[i]);
        check_query(idx, input, 1, "actions", NULL, NULL, queries[i]);
    }

    /* several sections, none named: "section" is spliced in first */
    catalog_query q = {.q = "adalight", .limit = 1};
    assert_int_equal(catalog_index_search(idx, &q, &b, err, sizeof(err)), 0);
    assert_string_equal(b.data,
                        "{\"total\":1,\"entries\":[{\"section\":\"light_effects\","
                        "\"id\":\"adalight\",\"name\":\"Light \xe2\x86\x92 Adalight\","
                        "\"applies_to\":[\"light.beken_spi_led_strip\","
                        "\"light.esp32_rmt_led_strip\",\"light.fastled_clockless\","
                        "\"light.fastled_spi\",\"light.m5stack_8angle\",\"light.neopixelbus\","
                        "\"light.partition\",\"light.rp2040_pio_led_strip\","
                        "\"light.spi_led_strip\"]}]}");
    base_buf_free(&b);
    /* paging */
    q = (catalog_query){.section = "actions", .offset = 570, .limit = 10};
    assert_int_equal(catalog_index_list(idx, &q, &b, err, sizeof(err)), 0);
    size_t total;
    char *ids = reply_ids(&b, "actions", &total);
    assert_int_equal(total, 575);
    assert_int_equal(count_lines(ids), 5);
    base_free(ids);
    base_buf_free(&b);
    q.limit = 0;
    q.offset = 0;
    assert_int_equal(catalog_index_list(idx, &q, &b, err, sizeof(err)), 0);
    assert_string_equal(b.data, "{\"total\":575,\"entries\":[]}");
    base_buf_free(&b);

    json_decref(input);
    catalog_index_free(idx);
}

/* An id present in two sections: ambiguous without a section. */
static void test_ambiguous_id(void **state)
{
    (void)state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], err[512], vdir[PATH_MAX + 8], p[PATH_MAX + 64];
    make_tmp("build-ambiguous", dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/in.json", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    write_text(in, "{\"a\":[{\"id\":\"x\",\"section\":\"own\"},{\"id\":\"q\\\"uote\"}],"
                   "\"b\":[{\"id\":\"x\"},{}]}");
    catalog_build_result res;
    assert_int_equal(catalog_build(in, NULL, out, &res, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "b[1]: missing id member \"id\"");
    write_text(in, "{\"a\":[{\"id\":\"x\",\"section\":\"own\"},{\"id\":\"q\\\"uote\"}],"
                   "\"b\":[{\"id\":\"x\"}]}");
    assert_int_equal(catalog_build(in, NULL, out, &res, err, sizeof(err)), 0);
    snprintf(vdir, sizeof(vdir), "%s/current", out);
    catalog_index *idx;
    assert_int_equal(catalog_index_load(vdir, &idx, err, sizeof(err)), 0);
    size_t e;
    assert_int_equal(catalog_index_find(idx, NULL, "x", &e, err, sizeof(err)), -ENOTUNIQ);
    assert_string_equal(err, "id \"x\" is in several sections (a, b): give a section");
    assert_int_equal(catalog_index_find(idx, "b", "x", &e, err, sizeof(err)), 0);
    assert_int_equal(catalog_index_body_path(idx, e, p, sizeof(p)), 0);
    char want[PATH_MAX + 64], real[PATH_MAX];
    assert_non_null(realpath(vdir, real));
    snprintf(want, sizeof(want), "%s/bodies/b/x.json", real);
    assert_string_equal(catalog_index_get_info(idx).dir, real);
    assert_string_equal(catalog_index_get_info(idx).version, res.version);
    assert_string_equal(p, want);
    assert_int_equal(catalog_index_find(idx, NULL, "q\"uote", &e, err, sizeof(err)), 0);
    base_buf b = {0};
    catalog_query q = {.limit = 10};
    assert_int_equal(catalog_index_list(idx, &q, &b, err, sizeof(err)), 0);
    /* an entry with its own "section" member is not given a second one */
    assert_string_equal(b.data, "{\"total\":3,\"entries\":[{\"id\":\"x\",\"section\":\"own\"},"
                                "{\"section\":\"a\",\"id\":\"q\\\"uote\"},"
                                "{\"section\":\"b\",\"id\":\"x\"}]}");
    base_buf_free(&b);
    catalog_index_free(idx);
}

int main(void)
{
    const char *t = getenv("HERD_TEST_TMP");
    snprintf(tmp_root, sizeof(tmp_root), "%s/catalog-build", t != NULL ? t : "/tmp");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs),   cmocka_unit_test(test_rebuild),
        cmocka_unit_test(test_ambiguous_id), cmocka_unit_test(test_components),
        cmocka_unit_test(test_automations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
