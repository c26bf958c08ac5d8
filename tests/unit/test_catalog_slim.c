/*
 * The slim cap: an entry whose slim JSON is over max_slim_bytes (spec key,
 * default CATALOG_MAX_SLIM_BYTES_DEFAULT) is refused with its place, id and
 * size, and nothing is written; bodies are not limited; the spec value is
 * validated; the loader refuses an index.json whose entries break the cap
 * its spec names (or the default), and an index.json too large to load
 * before reading it.
 */
#include "catalog/internal.h"

/* test paths are built in PATH_MAX buffers from a short temp root */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

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

/* `{"s":[{"id":"a"},{"id":"big","d":"xxx..."}]}` whose second slim entry
 * (`{"id":"big","d":"..."}`, the default rule keeps every scalar member) is
 * exactly slim_bytes long; with extra, the entry also carries `extra` (a
 * member the slim form leaves out). Caller frees. */
static char *input_with_slim(size_t slim_bytes, const char *extra)
{
    static const char head[] = "{\"s\":[{\"id\":\"a\"},{\"id\":\"big\",\"d\":\"";
    const size_t overhead = strlen("{\"id\":\"big\",\"d\":\"\"}");
    assert_true(slim_bytes >= overhead);
    size_t n = slim_bytes - overhead;
    size_t extra_len = extra != NULL ? strlen(extra) + 1 : 0;
    char *s = malloc(sizeof(head) + n + extra_len + 16);
    assert_non_null(s);
    memcpy(s, head, sizeof(head) - 1);
    memset(s + sizeof(head) - 1, 'x', n);
    char *p = s + sizeof(head) - 1 + n;
    *p++ = '"';
    if (extra != NULL) {
        *p++ = ',';
        memcpy(p, extra, extra_len - 1);
        p += extra_len - 1;
    }
    strcpy(p, "}]}");
    return s;
}

/* The slim bytes index.json holds for entry "big" (after its "\n"). */
static size_t stored_slim_len(const char *outdir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/current/index.json", outdir);
    char *text = read_text(path);
    const char *a = strstr(text, "{\"id\":\"big\"");
    assert_non_null(a);
    const char *z = strstr(a, "}]");
    assert_non_null(z);
    size_t n = (size_t)(z + 1 - a);
    free(text);
    return n;
}

static void build_ok(const char *in, const char *spec, const char *out)
{
    char err[512];
    catalog_build_result res;
    int rc = catalog_build(in, spec, out, &res, err, sizeof(err));
    if (rc != 0)
        fail_msg("build: rc %d: %s", rc, err);
}

/* The build is refused with exactly `want`, and OUTDIR is not created. */
static void build_refused(const char *in, const char *spec, const char *out, const char *want)
{
    char err[512] = "";
    catalog_build_result res;
    int rc = catalog_build(in, spec, out, &res, err, sizeof(err));
    if (rc != -EINVAL || strcmp(err, want) != 0)
        fail_msg("rc %d, message\n  got:  %s\n  want: %s", rc, err, want);
    assert_int_equal(access(out, F_OK), -1);
}

static void test_default_cap(void **state)
{
    (void)state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], want[256];
    make_tmp("slim-default", dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/in.json", dir);
    assert_int_equal(CATALOG_MAX_SLIM_BYTES_DEFAULT, 65536);

    /* exactly at the cap: accepted, and the index holds those bytes */
    char *text = input_with_slim(CATALOG_MAX_SLIM_BYTES_DEFAULT, NULL);
    write_text(in, text);
    free(text);
    snprintf(out, sizeof(out), "%s/at", dir);
    build_ok(in, NULL, out);
    assert_int_equal(stored_slim_len(out), CATALOG_MAX_SLIM_BYTES_DEFAULT);
    /* the default is not written into the spec (so default versions are
     * what they were before the cap) */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/current/index.json", out);
    text = read_text(path);
    assert_null(strstr(text, "max_slim_bytes"));
    free(text);
    /* and the loader takes it */
    catalog_index *idx = NULL;
    char err[512];
    snprintf(path, sizeof(path), "%s/current", out);
    if (catalog_index_load(path, &idx, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    catalog_index_free(idx);

    /* one byte over: refused with the section, position, id and size */
    text = input_with_slim(CATALOG_MAX_SLIM_BYTES_DEFAULT + 1, NULL);
    write_text(in, text);
    free(text);
    snprintf(out, sizeof(out), "%s/over", dir);
    build_refused(in, NULL, out,
                  "s[1] (id \"big\"): slim fields take 65537 bytes, over max_slim_bytes 65536");

    /* the position is within the entry's own section */
    write_text(
        in, "{\"t\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"u\":[{\"id\":\"c\",\"d\":\"0123456789\"}]}");
    snprintf(want, sizeof(want), "%s/spec.json", dir);
    write_text(want, "{\"max_slim_bytes\": 20}");
    build_refused(in, want, out,
                  "u[0] (id \"c\"): slim fields take 27 bytes, over max_slim_bytes 20");
}

static void test_bodies_unlimited(void **state)
{
    (void)state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    make_tmp("slim-bodies", dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/in.json", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    /* a 1 MB array of objects: in the body, not in the slim entry */
    size_t n_items = 50000;
    size_t cap = n_items * 24 + 64;
    char *extra = malloc(cap);
    assert_non_null(extra);
    size_t o = (size_t)snprintf(extra, cap, "\"options\":[");
    for (size_t i = 0; i < n_items; i++)
        o += (size_t)snprintf(extra + o, cap - o, "%s{\"k\":\"v%06zu\"}", i ? "," : "", i);
    o += (size_t)snprintf(extra + o, cap - o, "]");
    char *text = input_with_slim(1000, extra);
    free(extra);
    write_text(in, text);
    size_t in_len = strlen(text);
    free(text);
    build_ok(in, NULL, out);
    assert_int_equal(stored_slim_len(out), 1000);
    struct stat st;
    snprintf(path, sizeof(path), "%s/current/bodies/s/big.json", out);
    assert_int_equal(stat(path, &st), 0);
    assert_true((size_t)st.st_size > CATALOG_MAX_SLIM_BYTES_DEFAULT * 10);
    assert_true((size_t)st.st_size < in_len);
}

static void test_spec_option(void **state)
{
    (void)state;
    char dir[PATH_MAX], in[PATH_MAX], spec[PATH_MAX], out[PATH_MAX], path[PATH_MAX], err[512];
    make_tmp("slim-spec", dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/in.json", dir);
    snprintf(spec, sizeof(spec), "%s/spec.json", dir);

    /* a smaller cap: at it accepted, over it refused naming the cap */
    write_text(spec, "{\"max_slim_bytes\": 100}");
    char *text = input_with_slim(100, NULL);
    write_text(in, text);
    free(text);
    snprintf(out, sizeof(out), "%s/small", dir);
    build_ok(in, spec, out);
    /* a non-default cap is part of the effective spec, so the loader knows it */
    snprintf(path, sizeof(path), "%s/current/index.json", out);
    text = read_text(path);
    assert_non_null(strstr(text, "\"spec\":{\"id_field\":\"id\",\"max_slim_bytes\":100,"));
    free(text);
    text = input_with_slim(101, NULL);
    write_text(in, text);
    free(text);
    snprintf(out, sizeof(out), "%s/small-over", dir);
    build_refused(in, spec, out,
                  "s[1] (id \"big\"): slim fields take 101 bytes, over max_slim_bytes 100");

    /* a larger cap lets a larger entry through */
    write_text(spec, "{\"max_slim_bytes\": 100000}");
    text = input_with_slim(70000, NULL);
    write_text(in, text);
    free(text);
    snprintf(out, sizeof(out), "%s/large", dir);
    build_ok(in, spec, out);
    catalog_index *idx = NULL;
    snprintf(path, sizeof(path), "%s/current", out);
    if (catalog_index_load(path, &idx, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    catalog_index_free(idx);

    /* the largest value is accepted */
    snprintf(path, sizeof(path), "{\"max_slim_bytes\": %u}", CATALOG_MAX_SLIM_BYTES_MAX);
    write_text(spec, path);
    snprintf(out, sizeof(out), "%s/max", dir);
    build_ok(in, spec, out);

    /* the default written out is the default: the same version as no spec */
    text = input_with_slim(500, NULL);
    write_text(in, text);
    free(text);
    catalog_build_result a, b;
    snprintf(out, sizeof(out), "%s/d1", dir);
    assert_int_equal(catalog_build(in, NULL, out, &a, err, sizeof(err)), 0);
    write_text(spec, "{\"max_slim_bytes\": 65536}");
    snprintf(out, sizeof(out), "%s/d2", dir);
    assert_int_equal(catalog_build(in, spec, out, &b, err, sizeof(err)), 0);
    assert_string_equal(a.version, b.version);
}

/* spec value | the message */
static const struct {
    const char *value;
    const char *message;
} bad_values[] = {
    {"0", "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got 0"},
    {"-1", "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got -1"},
    {"1.5", "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got 1.5"},
    {"65536.0", "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got 65536.0"},
    {"\"64K\"", "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got \"64K\""},
    {"true", "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got true"},
    {"null", "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got null"},
    {"[65536]", "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got [65536]"},
    {"16777217",
     "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got 16777217"},
    {"9007199254740993", "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), "
                         "got 9007199254740993"},
    {"\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
     "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got "
     "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."},
};

static void test_spec_validation(void **state)
{
    (void)state;
    char dir[PATH_MAX], in[PATH_MAX], spec[PATH_MAX], out[PATH_MAX], text[256];
    make_tmp("slim-values", dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/in.json", dir);
    snprintf(spec, sizeof(spec), "%s/spec.json", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    write_text(in, "{\"s\":[{\"id\":\"a\"}]}");
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        snprintf(text, sizeof(text), "{\"max_slim_bytes\": %s}", bad_values[i].value);
        write_text(spec, text);
        char err[512] = "";
        catalog_build_result res;
        int rc = catalog_build(in, spec, out, &res, err, sizeof(err));
        if (rc != -EINVAL || strcmp(err, bad_values[i].message) != 0)
            fail_msg("value %s: rc %d, message\n  got:  %s\n  want: %s", bad_values[i].value, rc,
                     err, bad_values[i].message);
        assert_int_equal(access(out, F_OK), -1);
    }
    /* it is a top-level key only */
    write_text(spec, "{\"sections\": {\"s\": {\"max_slim_bytes\": 100}}}");
    char err[512] = "";
    catalog_build_result res;
    assert_int_equal(catalog_build(in, spec, out, &res, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "spec.sections.s.max_slim_bytes: unknown key");
}

/* Replaces the first `from` in path's text by `to`. */
static void edit_file(const char *path, const char *from, const char *to)
{
    char *text = read_text(path);
    char *at = strstr(text, from);
    if (at == NULL)
        fail_msg("%s: no %s", path, from);
    size_t n = strlen(text), fl = strlen(from), tl = strlen(to);
    char *s = malloc(n - fl + tl + 1);
    assert_non_null(s);
    memcpy(s, text, (size_t)(at - text));
    memcpy(s + (at - text), to, tl);
    strcpy(s + (at - text) + tl, at + fl);
    write_text(path, s);
    free(s);
    free(text);
}

static void load_refused(const char *outdir, const char *want)
{
    char path[PATH_MAX], err[1024] = "";
    catalog_index *idx = NULL;
    snprintf(path, sizeof(path), "%s/current", outdir);
    int rc = catalog_index_load(path, &idx, err, sizeof(err));
    if (rc != -EINVAL || strstr(err, want) == NULL)
        fail_msg("load: rc %d, message\n  got:  %s\n  want: ...%s", rc, err, want);
    assert_null(idx);
}

static void test_loader(void **state)
{
    (void)state;
    char dir[PATH_MAX], in[PATH_MAX], spec[PATH_MAX], out[PATH_MAX], index[PATH_MAX];
    make_tmp("slim-loader", dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/in.json", dir);
    snprintf(spec, sizeof(spec), "%s/spec.json", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(index, sizeof(index), "%s/current/index.json", out);

    /* built with a cap of 100000 around a 70000-byte entry */
    write_text(spec, "{\"max_slim_bytes\": 100000}");
    char *text = input_with_slim(70000, NULL);
    write_text(in, text);
    free(text);
    build_ok(in, spec, out);

    /* an index.json that claims a smaller cap than its entries take (the
     * entry check comes before the manifest's, which would fail too) */
    edit_file(index, "\"max_slim_bytes\":100000", "\"max_slim_bytes\":69999");
    load_refused(out, "index.json: s[1]: slim entry is 70000 bytes, over max_slim_bytes 69999");
    /* without the key the default applies */
    edit_file(index, "\"max_slim_bytes\":69999,", "");
    load_refused(out, "index.json: s[1]: slim entry is 70000 bytes, over max_slim_bytes 65536");
    /* a cap no compiler writes */
    edit_file(index, "\"spec\":{", "\"spec\":{\"max_slim_bytes\":0,");
    load_refused(out, "index.json: spec.max_slim_bytes: expected an integer from 1 to 16777216");
    edit_file(index, "\"max_slim_bytes\":0", "\"max_slim_bytes\":\"1M\"");
    load_refused(out, "index.json: spec.max_slim_bytes: expected an integer from 1 to 16777216");

    /* an index.json over the most the loader takes is refused from its size,
     * before it is read (a sparse file: nothing is written) */
    int fd = open(index, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)CATALOG__INDEX_MAX_BYTES + 1), 0);
    close(fd);
    load_refused(out, "index.json: too large (2147483648 bytes, at most 2147483647)");
}

int main(void)
{
    const char *t = getenv("HERD_TEST_TMP");
    snprintf(tmp_root, sizeof(tmp_root), "%s/catalog-slim", t != NULL ? t : "/tmp");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_cap), cmocka_unit_test(test_bodies_unlimited),
        cmocka_unit_test(test_spec_option), cmocka_unit_test(test_spec_validation),
        cmocka_unit_test(test_loader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
