/*
 * The query semantics of DESIGN.md section 6, one case a line on a small
 * catalog: where clauses of every form on scalar, array, nested and
 * missing fields, any, not on arrays, search terms and phrases with
 * relevance (ties in input order), sort keys (missing last, first, fold,
 * desc), facets leaving out their own field's clauses, bad clauses. Then
 * numbers and strings kept exactly as written, Unicode folding, batch and
 * slim lookups, and the real automations partitioned by applies_to and by
 * domain, recounted from the input.
 */
#include "catalog/internal.h"

#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "catalog_support.h"

/* Five entries covering: a string category (one null, one missing), an
 * array (empty in c, missing in d and e), a nested object, numbers of
 * several spellings (-0.0, 1e2 == 100, beyond int64), booleans, and names
 * that fold (Ω, É). */
static const char small_input[] =
    "{\"items\":["
    "{\"id\":\"a\",\"name\":\"Alpha\",\"category\":\"sensor\",\"tags\":[\"x\",\"y\"],"
    "\"esphome\":{\"platform\":\"ESP32\",\"variant\":\"s3\"},\"stars\":5,\"dl\":true,"
    "\"supported\":[]},"
    "{\"id\":\"b\",\"name\":\"beta\",\"category\":\"light\",\"tags\":[\"y\"],"
    "\"esphome\":{\"platform\":\"esp8266\"},\"stars\":17008162028057714984,\"dl\":false,"
    "\"supported\":[\"esp32\"]},"
    "{\"id\":\"c\",\"name\":\"Gamma \xcf\x89\",\"category\":\"sensor\",\"tags\":[],"
    "\"stars\":-0.0,\"supported\":[\"rp2040\"]},"
    "{\"id\":\"d\",\"name\":\"\xce\xa9mega\",\"category\":null,\"esphome\":{\"platform\":\"esp32\"}"
    ","
    "\"stars\":1e2,\"dl\":true},"
    "{\"id\":\"e\",\"name\":\"\xc3\x89\x63lair\",\"description\":\"the alpha in a description\","
    "\"category\":\"switch\",\"stars\":100}"
    "]}";

static catalog_index *small;

static catalog_index *build_load(const char *name, const char *input, const char *spec)
{
    char dir[PATH_MAX], in[PATH_MAX + 16], sp[PATH_MAX + 16], out[PATH_MAX + 16];
    char cur[PATH_MAX + 32], err[512];
    make_tmp(name, dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/in.json", dir);
    snprintf(sp, sizeof(sp), "%s/spec.json", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    write_text(in, input);
    if (spec != NULL)
        write_text(sp, spec);
    if (catalog_build(in, spec != NULL ? sp : NULL, out, NULL, err, sizeof(err)) < 0)
        fail_msg("build %s: %s", name, err);
    catalog_index *idx;
    snprintf(cur, sizeof(cur), "%s/current", out);
    if (catalog_index_load(cur, &idx, err, sizeof(err)) < 0)
        fail_msg("load %s: %s", name, err);
    return idx;
}

static json_t *parse(const char *text)
{
    if (text == NULL)
        return NULL;
    json_error_t je;
    /* jansson refuses 17008162028057714984 as an integer: such a reply is
     * read with numbers as doubles (these tests read ids and counts of it) */
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    if (v == NULL)
        v = json_loads(text, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
    if (v == NULL)
        fail_msg("test case JSON %s: %s", text, je.text);
    return v;
}

/* Runs a list; returns the reply (caller base_frees) or NULL with err set. */
static char *run_list(catalog_index *idx, const char *where, const char *any, const char *q,
                      int phrase, const char *order, const char *facets, int *rc, char *err,
                      size_t err_size)
{
    json_t *w = parse(where), *a = parse(any), *o = parse(order), *f = parse(facets);
    catalog_query qq = {
        .where = w, .any = a, .q = q, .phrase = phrase, .order = o, .facets = f, .limit = 1000};
    base_buf b = {0};
    *rc = catalog_index_list(idx, &qq, &b, err, err_size);
    json_decref(w);
    json_decref(a);
    json_decref(o);
    json_decref(f);
    if (*rc < 0) {
        base_buf_free(&b);
        return NULL;
    }
    base_buf_add(&b, "", 0);
    return b.data;
}

/* "a b c": the ids of a reply's entries, in order. */
static void ids_of(const char *reply, char *out, size_t size)
{
    json_t *r = parse(reply), *e;
    size_t i, n = 0;
    out[0] = '\0';
    json_array_foreach(json_object_get(r, "entries"), i, e) n += (size_t)snprintf(
        out + n, size - n, "%s%s", n ? " " : "", json_string_value(json_object_get(e, "id")));
    assert_int_equal((size_t)json_number_value(json_object_get(r, "total")),
                     json_array_size(json_object_get(r, "entries")));
    json_decref(r);
}

static const struct qcase {
    const char *where, *any, *q;
    int phrase;
    const char *order;
    const char *want; /* ids in order */
} cases[] = {
    /* scalar clauses on a string field, null and missing values */
    {"{\"category\":\"sensor\"}", NULL, NULL, 0, NULL, "a c"},
    {"{\"category\":null}", NULL, NULL, 0, NULL, "d"},
    {"{\"category\":[\"sensor\",\"light\"]}", NULL, NULL, 0, NULL, "a b c"},
    {"{\"category\":{\"not\":\"sensor\"}}", NULL, NULL, 0, NULL, "b d e"},
    {"{\"category\":{\"not\":[\"sensor\",\"switch\"]}}", NULL, NULL, 0, NULL, "b d"},
    {"{\"category\":{\"empty_or\":\"light\"}}", NULL, NULL, 0, NULL, "b d"},
    {"{\"category\":\"SENSOR\"}", NULL, NULL, 0, NULL, ""},
    {"{\"category\":{\"fold\":\"SENSOR\"}}", NULL, NULL, 0, NULL, "a c"},
    /* array fields: contains, any-of, not, empty_or */
    {"{\"tags\":\"y\"}", NULL, NULL, 0, NULL, "a b"},
    {"{\"tags\":[\"x\",\"nope\"]}", NULL, NULL, 0, NULL, "a"},
    {"{\"tags\":{\"not\":\"y\"}}", NULL, NULL, 0, NULL, "c d e"},
    {"{\"supported\":{\"empty_or\":\"esp32\"}}", NULL, NULL, 0, NULL, "a b d e"},
    {"{\"supported\":{\"empty_or\":{\"fold\":\"ESP32\"}}}", NULL, NULL, 0, NULL, "a b d e"},
    /* booleans, numbers by value */
    {"{\"dl\":true}", NULL, NULL, 0, NULL, "a d"},
    {"{\"dl\":false}", NULL, NULL, 0, NULL, "b"},
    {"{\"dl\":{\"not\":true}}", NULL, NULL, 0, NULL, "b c e"},
    {"{\"stars\":100}", NULL, NULL, 0, NULL, "d e"},
    {"{\"stars\":0}", NULL, NULL, 0, NULL, "c"},
    {"{\"stars\":[5,100.0]}", NULL, NULL, 0, NULL, "a d e"},
    {"{\"stars\":\"5\"}", NULL, NULL, 0, NULL, ""},
    /* nested fields */
    {"{\"esphome.platform\":\"esp32\"}", NULL, NULL, 0, NULL, "d"},
    {"{\"esphome.platform\":{\"fold\":\"esp32\"}}", NULL, NULL, 0, NULL, "a d"},
    {"{\"esphome.variant\":{\"not\":\"s3\"}}", NULL, NULL, 0, NULL, "b c d e"},
    {"{\"esphome.platform\":{\"fold\":\"esp32\"},\"dl\":true,\"tags\":{\"not\":\"x\"}}", NULL, NULL,
     0, NULL, "d"},
    /* any: one of the groups; with where: both */
    {NULL, "[{\"dl\":true},{\"category\":\"switch\"}]", NULL, 0, NULL, "a d e"},
    {"{\"category\":{\"not\":\"switch\"}}", "[{\"dl\":true},{\"category\":\"switch\"}]", NULL, 0,
     NULL, "a d"},
    {NULL, "[{\"dl\":true,\"category\":\"sensor\"},{\"stars\":0}]", NULL, 0, NULL, "a c"},
    /* search: terms, phrase, relevance (exact, prefix, name, id, other), folding */
    {NULL, NULL, "alpha", 0, NULL, "a e"},
    {NULL, NULL, "\xce\xa9", 0, NULL, "d c"},
    {NULL, NULL, "\xcf\x89", 0, NULL, "d c"},
    {NULL, NULL, "\xc3\xa9\x43LAIR", 0, NULL, "e"},
    {NULL, NULL, "a", 0, NULL, "a b c d e"},
    {NULL, NULL, "description alpha", 0, NULL, "e"},
    {NULL, NULL, "description alpha", 1, NULL, ""},
    {NULL, NULL, "alpha in", 1, NULL, "e"},
    {NULL, NULL, "alpha", 0, "\"index\"", "a e"},
    {"{\"dl\":{\"not\":true}}", NULL, "a", 0, NULL, "b c e"},
    /* sort keys: by type then value, ties in input order, missing last */
    {NULL, NULL, NULL, 0, "[{\"field\":\"stars\"}]", "c a d e b"},
    {NULL, NULL, NULL, 0, "[{\"field\":\"stars\",\"desc\":true}]", "b d e a c"},
    {NULL, NULL, NULL, 0, "[{\"field\":\"dl\"}]", "b a d c e"},
    {NULL, NULL, NULL, 0, "[{\"field\":\"dl\",\"desc\":true}]", "a d b c e"},
    {NULL, NULL, NULL, 0, "[{\"field\":\"esphome.variant\"}]", "a b c d e"},
    {NULL, NULL, NULL, 0, "[{\"field\":\"name\"}]", "a c b e d"},
    {NULL, NULL, NULL, 0, "[{\"field\":\"name\",\"fold\":true}]", "a b c e d"},
    {NULL, NULL, NULL, 0, "[{\"field\":\"category\",\"first\":[\"switch\",\"light\"]}]",
     "e b d a c"},
    {NULL, NULL, NULL, 0, "[{\"field\":\"dl\"},{\"field\":\"stars\",\"desc\":true}]", "b d a e c"},
    {NULL, NULL, NULL, 0,
     "[{\"field\":\"tags\",\"first\":[\"y\"]},{\"field\":\"id\",\"desc\":true}]", "a b c e d"},
    {"{\"category\":\"sensor\"}", NULL, NULL, 0, "[{\"field\":\"stars\",\"desc\":true}]", "a c"},
};

static void test_cases(void **state)
{
    (void)state;
    char err[512], got[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct qcase *c = &cases[i];
        int rc;
        char *r = run_list(small, c->where, c->any, c->q, c->phrase, c->order, NULL, &rc, err,
                           sizeof(err));
        if (r == NULL)
            fail_msg("case %zu (where %s, any %s, q %s, order %s): rc %d: %s", i, c->where, c->any,
                     c->q, c->order, rc, err);
        ids_of(r, got, sizeof(got));
        if (strcmp(got, c->want) != 0)
            fail_msg("case %zu (where %s, any %s, q %s%s, order %s): got \"%s\", want \"%s\"", i,
                     c->where, c->any, c->q, c->phrase ? " (phrase)" : "", c->order, got, c->want);
        base_free(r);
    }
}

/* facets: counts without the facet's own clauses, with any and q applied */
static const struct fcase {
    const char *where, *any, *q, *facets, *want;
} fcases[] = {
    {"{\"category\":\"sensor\"}", NULL, NULL, "[\"category\",\"tags\"]",
     "{\"category\":{\"light\":1,\"sensor\":2,\"switch\":1},\"tags\":{\"x\":1,\"y\":1}}"},
    {"{\"category\":\"sensor\",\"tags\":\"y\"}", NULL, NULL, "[\"category\",\"tags\"]",
     "{\"category\":{\"light\":1,\"sensor\":1},\"tags\":{\"x\":1,\"y\":1}}"},
    {NULL, "[{\"dl\":true}]", NULL, "[\"category\"]", "{\"category\":{\"sensor\":1}}"},
    {NULL, NULL, "a", "[\"dl\",\"stars\"]",
     "{\"dl\":{\"false\":1,\"true\":2},\"stars\":{\"-0.0\":1,\"100\":1,\"17008162028057714984\":1,"
     "\"1e2\":1,\"5\":1}}"},
    {"{\"esphome.platform\":{\"fold\":\"ESP32\"}}", NULL, NULL, "[\"esphome.platform\"]",
     "{\"esphome.platform\":{\"ESP32\":1,\"esp32\":1,\"esp8266\":1}}"},
};

static void test_facets(void **state)
{
    (void)state;
    char err[512];
    for (size_t i = 0; i < sizeof(fcases) / sizeof(fcases[0]); i++) {
        const struct fcase *c = &fcases[i];
        int rc;
        char *r =
            run_list(small, c->where, c->any, c->q, 0, NULL, c->facets, &rc, err, sizeof(err));
        if (r == NULL)
            fail_msg("facet case %zu: rc %d: %s", i, rc, err);
        /* both read with numbers as doubles, as the reply must be */
        json_t *reply = json_loads(r, JSON_DECODE_INT_AS_REAL, NULL);
        json_t *want = json_loads(c->want, JSON_DECODE_INT_AS_REAL, NULL);
        if (!json_equal(json_object_get(reply, "facets"), want))
            fail_msg("facet case %zu: got %s, want %s", i, r, c->want);
        base_free(r);
        json_decref(reply);
        json_decref(want);
    }
}

/* refused with -EINVAL and a message naming the bad part */
static const struct bcase {
    const char *where, *any, *order, *facets, *want;
} bcases[] = {
    {"{\"zzz\":1}", NULL, NULL, NULL, "where: no entry of section items has a field \"zzz\""},
    {"{\"esphome.zzz\":1}", NULL, NULL, NULL, "has a field \"esphome.zzz\""},
    {"{\"category\":{\"nope\":1}}", NULL, NULL, NULL, "where.category: an object is an operator"},
    {"{\"category\":{\"not\":1,\"fold\":2}}", NULL, NULL, NULL, "with one key"},
    {"{\"category\":[]}", NULL, NULL, NULL, "where.category: an empty array matches nothing"},
    {"{\"a..b\":1}", NULL, NULL, NULL, "is not a field path"},
    {NULL, "[]", NULL, NULL, "any: expected 1 to"},
    {NULL, "[{}]", NULL, NULL, "any[0]: an empty object"},
    {NULL, "[5]", NULL, NULL, "any: expected an object"},
    {NULL, NULL, "\"sideways\"", NULL, "order: \"sideways\": expected"},
    {NULL, NULL, "\"relevance\"", NULL, "needs a search text"},
    {NULL, NULL, "[{\"desc\":true}]", NULL, "order[0]: field: required"},
    {NULL, NULL, "[{\"field\":\"name\",\"up\":1}]", NULL, "order[0].up: expected"},
    {NULL, NULL, "[{\"field\":\"nope\"}]", NULL, "order: no entry"},
    {NULL, NULL, NULL, "[\"category\",\"category\"]", "listed twice"},
    {NULL, NULL, NULL, "[\"zzz\"]", "facets: no entry"},
    {NULL, NULL, NULL, "[3]", "facets[0]: expected a field name"},
};

static void test_bad(void **state)
{
    (void)state;
    char err[512];
    for (size_t i = 0; i < sizeof(bcases) / sizeof(bcases[0]); i++) {
        const struct bcase *c = &bcases[i];
        int rc;
        err[0] = '\0';
        char *r =
            run_list(small, c->where, c->any, NULL, 0, c->order, c->facets, &rc, err, sizeof(err));
        if (r != NULL || rc != -EINVAL || strstr(err, c->want) == NULL)
            fail_msg("bad case %zu: rc %d, message \"%s\", want -EINVAL and \"%s\"", i, rc, err,
                     c->want);
    }
}

/* offset and limit over an ordered list: pages of the same order */
static void test_paging(void **state)
{
    (void)state;
    char err[256], got[64];
    json_t *order = parse("[{\"field\":\"stars\",\"desc\":true}]");
    static const char *const want[] = {"b d", "e a", "c", ""};
    for (size_t page = 0; page < 4; page++) {
        catalog_query qq = {.order = order, .offset = page * 2, .limit = 2};
        base_buf b = {0};
        assert_int_equal(catalog_index_list(small, &qq, &b, err, sizeof(err)), 0);
        base_buf_add(&b, "", 0);
        json_t *r = parse(b.data), *e;
        size_t i, n = 0;
        got[0] = '\0';
        assert_int_equal((int)json_number_value(json_object_get(r, "total")), 5);
        json_array_foreach(json_object_get(r, "entries"), i, e) n +=
            (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", n ? " " : "",
                             json_string_value(json_object_get(e, "id")));
        assert_string_equal(got, want[page]);
        json_decref(r);
        base_buf_free(&b);
    }
    json_decref(order);
}

/* Numbers and strings as written: bodies and slim entries are the input's bytes. */
static void test_exact(void **state)
{
    (void)state;
    static const char entry[] =
        "{\"id\":\"x\",\"addr\":17008162028057714984,\"neg\":-0,\"e\":1.5E+300,"
        "\"tiny\":-2.5e-400,"
        "\"d\":0.1234567890123456789012345678901234567890,"
        "\"big\":-123456789012345678901234567890123456789012345678901234567890e-5,"
        "\"s\":\"\\u00e9\\/\\ud83d\\ude00\",\"arr\":[1.0,2E2,-0.0]}";
    char input[1024], spaced[1024], dir[PATH_MAX], path[PATH_MAX + 64], err[256];
    snprintf(input, sizeof(input), "{\"boards\":[%s]}", entry);
    catalog_index *idx = build_load("exact", input, NULL);
    size_t entry_no, len;
    assert_int_equal(catalog_index_find(idx, NULL, "x", &entry_no, err, sizeof(err)), 0);
    const char *slim = catalog_index_entry_slim(idx, entry_no, &len);
    assert_int_equal(len, strlen(entry));
    assert_memory_equal(slim, entry, len);
    assert_int_equal(catalog_index_body_path(idx, entry_no, path, sizeof(path)), 0);
    char *body = read_text(path);
    assert_string_equal(body, entry);
    free(body);
    /* numbers compare by value: 1.5E+300 == 15e299, -0 == 0 */
    static const char *const hits[] = {"{\"e\":15e299}", "{\"neg\":0}", "{\"arr\":200}",
                                       "{\"arr\":0}", "{\"s\":\"\xc3\xa9/\xf0\x9f\x98\x80\"}"};
    for (size_t i = 0; i < sizeof(hits) / sizeof(hits[0]); i++) {
        int rc;
        char *r = run_list(idx, hits[i], NULL, NULL, 0, NULL, NULL, &rc, err, sizeof(err));
        assert_non_null(r);
        char got[64];
        ids_of(r, got, sizeof(got));
        if (strcmp(got, "x") != 0)
            fail_msg("where %s: got \"%s\"", hits[i], got);
        base_free(r);
    }
    catalog_index_free(idx);

    /* pretty input: the slim entry drops only whitespace outside strings */
    snprintf(spaced, sizeof(spaced),
             "{\"boards\": [\n  {\"id\": \"x\",\n   \"n\" : 1.50E+2 ,\"t\": \"a  b\",\n"
             "   \"o\": { \"k\" : [ 1 , 2 ] } }\n]}\n");
    idx = build_load("exact-pretty", spaced, NULL);
    slim = catalog_index_entry_slim(idx, 0, &len);
    static const char want[] = "{\"id\":\"x\",\"n\":1.50E+2,\"t\":\"a  b\",\"o\":{\"k\":[1,2]}}";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(slim, want, len);
    catalog_index_free(idx);
    (void)dir;
}

/* Simple case folding: what it folds, and what it does not (full folding). */
static void test_folding(void **state)
{
    (void)state;
    static const char input[] = "{\"words\":["
                                "{\"id\":\"omega\",\"name\":\"\xce\xa9\"},"
                                "{\"id\":\"eacute\",\"name\":\"\xc3\x89T\xc3\x89\"},"
                                "{\"id\":\"capital\",\"name\":\"STRA\xe1\xba\x9e\x45\"},"
                                "{\"id\":\"sharp\",\"name\":\"stra\xc3\x9f\x65\"},"
                                "{\"id\":\"ss\",\"name\":\"strasse\"},"
                                "{\"id\":\"kelvin\",\"name\":\"\xe2\x84\xaa\"}"
                                "]}";
    static const struct {
        const char *q, *want;
    } s[] = {
        {"\xcf\x89", "omega"},                 /* ω finds Ω */
        {"\xc3\xa9t\xc3\xa9", "eacute"},       /* été finds ÉTÉ */
        {"stra\xc3\x9f\x65", "capital sharp"}, /* ß finds ẞ (simple folding) */
        {"strasse", "ss"},                     /* but not ss: that is full folding */
        {"k", "kelvin"},                       /* the Kelvin sign folds to k */
    };
    catalog_index *idx = build_load("fold", input, NULL);
    char err[256], got[128];
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        int rc;
        char *r = run_list(idx, NULL, NULL, s[i].q, 0, "\"index\"", NULL, &rc, err, sizeof(err));
        assert_non_null(r);
        ids_of(r, got, sizeof(got));
        if (strcmp(got, s[i].want) != 0)
            fail_msg("q %s: got \"%s\", want \"%s\"", s[i].q, got, s[i].want);
        base_free(r);
    }
    catalog_index_free(idx);
}

/* search_fields: a board catalog searches manufacturer and tags (array elements). */
static void test_search_fields(void **state)
{
    (void)state;
    static const char input[] = "{\"boards\":["
                                "{\"id\":\"b1\",\"name\":\"One\",\"manufacturer\":\"Espressif\"},"
                                "{\"id\":\"b2\",\"name\":\"Two\",\"tags\":[\"zigbee\",\"thread\"]},"
                                "{\"id\":\"b3\",\"name\":\"Espressif clone\"}]}";
    catalog_index *idx = build_load(
        "search-fields", input, "{\"search_fields\":[\"id\",\"name\",\"manufacturer\",\"tags\"]}");
    char err[256], got[64];
    int rc;
    char *r = run_list(idx, NULL, NULL, "espressif", 0, NULL, NULL, &rc, err, sizeof(err));
    assert_non_null(r);
    ids_of(r, got, sizeof(got));
    assert_string_equal(got, "b3 b1"); /* name prefix, then another field */
    base_free(r);
    r = run_list(idx, NULL, NULL, "THREAD", 0, NULL, NULL, &rc, err, sizeof(err));
    assert_non_null(r);
    ids_of(r, got, sizeof(got));
    assert_string_equal(got, "b2");
    base_free(r);
    catalog_index_free(idx);
}

/* The real automations: triggers partitioned by applies_to (an array),
 * actions by domain; domains and list-by-domain recounted from the input. */
static void test_automations(void **state)
{
    (void)state;
    char dir[PATH_MAX], in[PATH_MAX + 32], cmd[3 * PATH_MAX], err[512];
    const char *data = getenv("HERD_TEST_DATA");
    assert_non_null(data);
    make_tmp("auto-src", dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/automations.json", dir);
    snprintf(cmd, sizeof(cmd), "gzip -dc '%s/esphome/automations.json.gz' > '%s'", data, in);
    assert_int_equal(system(cmd), 0);
    char *text = read_text(in);
    catalog_index *idx =
        build_load("auto", text,
                   "{\"sections\":{\"triggers\":{\"partition_field\":\"applies_to\"},"
                   "\"actions\":{\"partition_field\":\"domain\"}}}");
    json_t *input = parse(text);
    free(text);
    static const char *const secs[] = {"triggers", "actions"};
    for (size_t s = 0; s < 2; s++) {
        /* recount: each element of applies_to, or the domain string */
        json_t *want = json_object(), *e;
        size_t i;
        json_array_foreach(json_object_get(input, secs[s]), i, e)
        {
            json_t *v = json_object_get(e, s == 0 ? "applies_to" : "domain"), *x;
            size_t j;
            if (json_is_string(v))
                v = json_pack("[O]", v);
            else
                json_incref(v);
            json_array_foreach(v, j, x)
            {
                json_t *n = json_object_get(want, json_string_value(x));
                json_object_set_new(want, json_string_value(x),
                                    json_integer(n != NULL ? json_integer_value(n) + 1 : 1));
            }
            json_decref(v);
        }
        assert_true(json_object_size(want) > 5);
        base_buf b = {0};
        assert_int_equal(catalog_index_domains(idx, secs[s], &b, err, sizeof(err)), 0);
        base_buf_add(&b, "", 0);
        json_t *got = parse(b.data);
        if (!json_equal(got, want))
            fail_msg("%s domains differ from the input's recount: %.300s", secs[s], b.data);
        base_buf_free(&b);
        /* and every domain lists exactly its count */
        const char *dom;
        json_t *n;
        json_object_foreach(want, dom, n)
        {
            catalog_query qq = {.section = secs[s], .domain = dom, .limit = 0};
            base_buf lb = {0};
            assert_int_equal(catalog_index_list(idx, &qq, &lb, err, sizeof(err)), 0);
            base_buf_add(&lb, "", 0);
            json_t *r = parse(lb.data);
            assert_int_equal(json_integer_value(json_object_get(r, "total")),
                             json_integer_value(n));
            json_decref(r);
            base_buf_free(&lb);
        }
        json_decref(got);
        json_decref(want);
    }
    /* binary_sensor: the 7 triggers that apply to it */
    catalog_query qq = {.section = "triggers", .domain = "binary_sensor", .limit = 0};
    base_buf b = {0};
    assert_int_equal(catalog_index_list(idx, &qq, &b, err, sizeof(err)), 0);
    base_buf_add(&b, "", 0);
    assert_string_equal(b.data, "{\"total\":7,\"entries\":[]}");
    base_buf_free(&b);
    json_decref(input);
    catalog_index_free(idx);
}

/* Field columns: kept per field named, counted in heap_bytes, at most
 * CATALOG__COLUMNS_MAX of them; a query naming more walks the rest and
 * answers the same. */
static void test_columns(void **state)
{
    (void)state;
    base_buf in = {0};
    base_buf_adds(&in, "{\"wide\":[");
    for (int e = 0; e < 3; e++) {
        base_buf_addf(&in, "%s{\"id\":\"e%d\"", e ? "," : "", e);
        for (int f = 0; f < 16; f++)
            base_buf_addf(&in, ",\"f%02d\":%d", f, e);
        base_buf_adds(&in, "}");
    }
    base_buf_adds(&in, "]}");
    catalog_index *idx = build_load("columns", in.data, NULL);
    base_buf_free(&in);
    size_t heap0 = catalog_index_get_info(idx).heap_bytes, column = 3 * 8 + 4; /* "f00" + NUL */
    char err[256], got[64];
    int rc;
    char *r = run_list(idx, "{\"f00\":1}", NULL, NULL, 0, NULL, NULL, &rc, err, sizeof(err));
    assert_non_null(r);
    ids_of(r, got, sizeof(got));
    assert_string_equal(got, "e1");
    base_free(r);
    assert_int_equal(catalog_index_get_info(idx).heap_bytes, heap0 + column);
    /* the same field again: no new column */
    r = run_list(idx, "{\"f00\":2}", NULL, NULL, 0, NULL, NULL, &rc, err, sizeof(err));
    base_free(r);
    assert_int_equal(catalog_index_get_info(idx).heap_bytes, heap0 + column);
    /* sixteen fields in one query: twelve columns, four walked, one answer */
    base_buf w = {0};
    base_buf_adds(&w, "{");
    for (int f = 0; f < 15; f++)
        base_buf_addf(&w, "\"f%02d\":{\"not\":99},", f);
    base_buf_adds(&w, "\"f15\":2}");
    for (int pass = 0; pass < 2; pass++) {
        r = run_list(idx, w.data, NULL, NULL, 0, "[{\"field\":\"f03\",\"desc\":true}]", NULL, &rc,
                     err, sizeof(err));
        if (r == NULL)
            fail_msg("wide query: %s", err);
        ids_of(r, got, sizeof(got));
        assert_string_equal(got, "e2");
        base_free(r);
        assert_int_equal(catalog_index_get_info(idx).heap_bytes,
                         heap0 + CATALOG__COLUMNS_MAX * column);
    }
    base_buf_free(&w);
    catalog_index_free(idx);
}

static int setup(void **state)
{
    (void)state;
    small = build_load("small", small_input, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    catalog_index_free(small);
    return 0;
}

int main(void)
{
    const char *t = getenv("HERD_TEST_TMP");
    snprintf(tmp_root, sizeof(tmp_root), "%s/catalog-query", t != NULL ? t : "/tmp");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),         cmocka_unit_test(test_facets),
        cmocka_unit_test(test_bad),           cmocka_unit_test(test_paging),
        cmocka_unit_test(test_exact),         cmocka_unit_test(test_folding),
        cmocka_unit_test(test_search_fields), cmocka_unit_test(test_automations),
        cmocka_unit_test(test_columns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
