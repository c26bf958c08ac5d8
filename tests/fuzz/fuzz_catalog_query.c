/*
 * Fuzz target `catalog_query`: query evaluation (catalog/query.c and
 * catalog/value.c through catalog_index_list and catalog_index_search) on
 * the fixture catalog (catalog_fixture.h), compiled and loaded once.
 *
 * The input is a `list` request's args as JSON: section, category, domain,
 * where, any, q, match, order, facets, offset, limit, mapped to a
 * catalog_query as the catalog worker maps them (the same type checks;
 * anything else is ignored). Each query runs as list, again (the second
 * run may read the field columns the first kept: it must answer the same
 * bytes), with limit 0 (the same total), under a small reply bound (the
 * same answer or -EFBIG), and as search when it has a text. An answer is
 * one JSON object whose total is at least its entries; a refusal says why.
 */
#include <string.h>

#include "catalog_fixture.h"

static catalog_index *idx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char version_dir[PATH_MAX], err[512];

    (void)argc, (void)argv;
    fixture_build("query", version_dir, sizeof(version_dir));
    if (catalog_index_load(version_dir, &idx, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_catalog_query: %s\n", err);
        abort();
    }
    return 0;
}

static const char *str_arg(const json_t *args, const char *key)
{
    const json_t *v = json_object_get(args, key);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

static const json_t *json_arg(const json_t *args, const char *key, int type)
{
    const json_t *v = json_object_get(args, key);
    if (v == NULL || json_is_null(v) || (type >= 0 && (int)json_typeof(v) != type))
        return NULL;
    return v;
}

static size_t count_arg(const json_t *args, const char *key, size_t def)
{
    const json_t *v = json_object_get(args, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return def;
    return (size_t)json_integer_value(v);
}

/* total_of reads "total" from an answer. */
static long long total_of(const base_buf *b)
{
    json_t *o = json_loadb(b->data, b->len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    FUZZ_CHECK(json_is_object(o));
    json_t *t = json_object_get(o, "total"), *e = json_object_get(o, "entries");
    FUZZ_CHECK(json_is_number(t) && json_is_array(e));
    long long total = (long long)json_number_value(t);
    FUZZ_CHECK(total >= (long long)json_array_size(e));
    json_decref(o);
    return total;
}

typedef int (*query_fn)(const catalog_index *, const catalog_query *, base_buf *, char *, size_t);

static void run(query_fn fn, catalog_query *q)
{
    base_buf a = {0}, b = {0};
    char err[1024] = "";

    int rc = fn(idx, q, &a, err, sizeof(err));
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOENT || rc == -EFBIG);
        FUZZ_CHECK(err[0] != '\0');
        base_buf_free(&a);
        return;
    }
    FUZZ_CHECK(a.len > 0 && base_json_check(a.data, a.len, 4096));
    long long total = total_of(&a);

    /* the same query again: the same bytes */
    FUZZ_CHECK(fn(idx, q, &b, err, sizeof(err)) == 0);
    FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    base_buf_free(&b);

    /* only the count */
    catalog_query q0 = *q;
    q0.limit = 0;
    FUZZ_CHECK(fn(idx, &q0, &b, err, sizeof(err)) == 0);
    FUZZ_CHECK(total_of(&b) == total);
    base_buf_free(&b);

    /* a bound on the reply: the same answer when it fits, else -EFBIG */
    catalog_query qb = *q;
    qb.max_bytes = 256;
    rc = fn(idx, &qb, &b, err, sizeof(err));
    if (rc == 0)
        FUZZ_CHECK(b.len <= 256 && b.len == a.len && memcmp(a.data, b.data, a.len) == 0);
    else
        FUZZ_CHECK(rc == -EFBIG && a.len > 256);
    base_buf_free(&b);
    base_buf_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *args = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(args)) {
        json_decref(args);
        return 0;
    }
    const char *match = str_arg(args, "match");
    catalog_query q = {
        .section = str_arg(args, "section"),
        .category = str_arg(args, "category"),
        .domain = str_arg(args, "domain"),
        .where = json_arg(args, "where", JSON_OBJECT),
        .any = json_arg(args, "any", JSON_ARRAY),
        .order = json_arg(args, "order", -1),
        .facets = json_arg(args, "facets", JSON_ARRAY),
        .q = str_arg(args, "q"),
        .phrase = match != NULL && strcmp(match, "phrase") == 0,
        .offset = count_arg(args, "offset", 0),
        .limit = count_arg(args, "limit", 1000),
    };
    run(catalog_index_list, &q);
    if (q.q != NULL) {
        q.limit = count_arg(args, "limit", 50);
        run(catalog_index_search, &q);
    }
    json_decref(args);
    return 0;
}
