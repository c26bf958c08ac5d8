/*
 * Fuzz target `catalog_index`: the index loader (catalog/index.c through
 * catalog_index_load) on an index.json it did not write.
 *
 * The fixture catalog (catalog_fixture.h) is compiled once; each input
 * replaces its version's index.json and is loaded. Its bodies stay, so an
 * index that keeps the fixture's sections, ids and manifest but changes
 * anything else of the slim entries still passes the manifest check and
 * loads: those are queried (list, categories, domains, stats, every id
 * found again and its body path made). A refused index says why.
 */
#include <string.h>

#include "catalog/internal.h"
#include "catalog_fixture.h"

static char version_dir[PATH_MAX], index_path[PATH_MAX + 16];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fixture_build("index", version_dir, sizeof(version_dir));
    snprintf(index_path, sizeof(index_path), "%s/index.json", version_dir);
    return 0;
}

static void check_json(const base_buf *b)
{
    FUZZ_CHECK(b->len > 0 && base_json_check(b->data, b->len, 4096));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    catalog_index *idx = NULL;
    char err[1024] = "";

    fuzz_write_file(index_path, data, size);
    if (catalog_index_load(version_dir, &idx, err, sizeof(err)) < 0) {
        FUZZ_CHECK(idx == NULL);
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    catalog_index_info info = catalog_index_get_info(idx);
    FUZZ_CHECK(info.n_sections >= 1);
    FUZZ_CHECK(catalog_index_section_name(idx, info.n_sections) == NULL);

    base_buf out = {0};
    catalog_query q = {.limit = 1000};
    FUZZ_CHECK(catalog_index_list(idx, &q, &out, err, sizeof(err)) == 0);
    check_json(&out);
    base_buf_free(&out);
    FUZZ_CHECK(catalog_index_stats(idx, &out) == 0);
    check_json(&out);
    base_buf_free(&out);
    for (size_t s = 0; s <= info.n_sections; s++) {
        const char *name = s < info.n_sections ? catalog_index_section_name(idx, s) : NULL;
        if (catalog_index_categories(idx, name, &out, err, sizeof(err)) == 0)
            check_json(&out);
        base_buf_free(&out);
        if (catalog_index_domains(idx, name, &out, err, sizeof(err)) == 0)
            check_json(&out);
        base_buf_free(&out);
        q.section = name;
        q.q = "a";
        if (catalog_index_search(idx, &q, &out, err, sizeof(err)) == 0)
            check_json(&out);
        base_buf_free(&out);
    }
    /* every id is found again, in its section, and has a body path */
    for (size_t i = 0; i < idx->n_entries; i++) {
        const struct catalog__entry *e = &idx->entries[i];
        char id[CATALOG_NAME_MAX + 1], path[PATH_MAX];
        size_t found = SIZE_MAX;
        FUZZ_CHECK(e->id.len <= CATALOG_NAME_MAX);
        memcpy(id, catalog__sp(idx, e->id), e->id.len);
        id[e->id.len] = '\0';
        FUZZ_CHECK(strlen(id) == e->id.len);
        const char *section = catalog_index_section_name(idx, e->section);
        FUZZ_CHECK(section != NULL);
        FUZZ_CHECK(catalog_index_find(idx, section, id, &found, err, sizeof(err)) == 0);
        FUZZ_CHECK(found == i);
        FUZZ_CHECK(catalog_index_body_path(idx, i, path, sizeof(path)) == 0);
    }
    catalog_index_free(idx);
    return 0;
}
