/*
 * Fuzz target `catalog_build`: the catalog compiler's input and spec checks
 * (catalog/build.c through catalog_build), and the loader on what it wrote
 * (catalog/index.c through catalog_index_load).
 *
 * Input: `[SPEC NUL] INPUT`: bytes before the first NUL (JSON holds none)
 * are the spec file, the rest the input file; without a NUL there is no
 * spec. Both are written to this process's temp directory and compiled
 * into one OUTDIR, reused by every run (so rebuilds of an existing version
 * and the removal of old ones are reached too). A refused input leaves
 * OUTDIR's `current` as it was and says why; an accepted one loads back
 * with the same sections and entries, and every entry's slim JSON is one
 * JSON value. HERD_FUZZ_VERBOSE=1 prints each outcome (the version made,
 * or the message of a refusal).
 */
#include <string.h>

#include "catalog/catalog.h"
#include "fuzz.h"

static char in_path[PATH_MAX], spec_path[PATH_MAX], out_dir[PATH_MAX], cur_path[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *t = fuzz_tmp();
    snprintf(in_path, sizeof(in_path), "%s/in.json", t);
    snprintf(spec_path, sizeof(spec_path), "%s/spec.json", t);
    snprintf(out_dir, sizeof(out_dir), "%s/out", t);
    snprintf(cur_path, sizeof(cur_path), "%s/out/current", t);
    return 0;
}

static void read_current(char *buf, size_t size)
{
    ssize_t n = readlink(cur_path, buf, size - 1);
    buf[n > 0 ? (size_t)n : 0] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    const uint8_t *in = data;
    size_t in_len = size;
    bool spec = nul != NULL;
    char before[PATH_MAX], after[PATH_MAX], err[1024];
    catalog_build_result res;

    if (spec) {
        fuzz_write_file(spec_path, data, (size_t)(nul - data));
        in = nul + 1;
        in_len = size - (size_t)(nul - data) - 1;
    }
    fuzz_write_file(in_path, in, in_len);
    read_current(before, sizeof(before));
    err[0] = '\0';
    int rv = catalog_build(in_path, spec ? spec_path : NULL, out_dir, &res, err, sizeof(err));
    read_current(after, sizeof(after));
    if (getenv("HERD_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "catalog_build: %d %s\n", rv, rv < 0 ? err : res.version);
    if (rv < 0) {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(strcmp(before, after) == 0);
        return 0;
    }
    FUZZ_CHECK(strcmp(after, res.version) == 0);
    FUZZ_CHECK(res.unchanged == (strcmp(before, after) == 0));

    catalog_index *idx = NULL;
    rv = catalog_index_load(cur_path, &idx, err, sizeof(err));
    if (rv < 0) {
        fprintf(stderr, "fuzz_catalog_build: built but does not load: %s\n", err);
        abort();
    }
    catalog_index_info info = catalog_index_get_info(idx);
    FUZZ_CHECK(info.n_entries == res.n_entries);
    FUZZ_CHECK(info.n_sections == res.n_sections);
    FUZZ_CHECK(strcmp(info.version, res.version) == 0);
    FUZZ_CHECK(strcmp(info.manifest, res.manifest_sha256) == 0);
    for (size_t i = 0; i < info.n_entries; i++) {
        size_t len;
        const char *slim = catalog_index_entry_slim(idx, i, &len);
        FUZZ_CHECK(slim != NULL && base_json_check(slim, len, 4096));
    }
    base_buf out = {0};
    catalog_query q = {.limit = 1000};
    FUZZ_CHECK(catalog_index_list(idx, &q, &out, err, sizeof(err)) == 0);
    FUZZ_CHECK(base_json_check(out.data, out.len, 4096));
    base_buf_free(&out);
    catalog_index_free(idx);
    return 0;
}
