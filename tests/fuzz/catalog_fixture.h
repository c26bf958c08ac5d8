/*
 * The small catalog the catalog_index and catalog_query fuzz targets start
 * from: two sections (one partitioned by "domain"), strings that fold,
 * arrays (empty too), nested objects, numbers of several spellings and
 * sizes, booleans, nulls and missing fields. Compiled once per process
 * into the fuzz temp directory with the real compiler.
 */
#ifndef HERD_TESTS_FUZZ_CATALOG_FIXTURE_H
#define HERD_TESTS_FUZZ_CATALOG_FIXTURE_H

#include "catalog/catalog.h"
#include "fuzz.h"

static const char fixture_input[] =
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
    "{\"id\":\"e\",\"name\":\"\xc3\x89\x63lair \\u00e9\",\"description\":\"the alpha in a "
    "description\",\"category\":\"switch\",\"stars\":100}"
    "],\"autos\":["
    "{\"id\":\"turn_on\",\"name\":\"Turn on\",\"domain\":\"light\",\"category\":\"action\","
    "\"applies_to\":[\"light\",\"switch\"],\"fields\":[{\"k\":1}]},"
    "{\"id\":\"delay\",\"name\":\"Delay\",\"domain\":\"core\",\"category\":\"action\","
    "\"applies_to\":[]},"
    "{\"id\":\"on_boot\",\"name\":\"On boot\",\"domain\":\"core\",\"category\":\"trigger\","
    "\"priority\":-1.5e-3},"
    "{\"id\":\"a\",\"name\":\"A \\\"quoted\\\" one\",\"domain\":\"component\","
    "\"category\":\"trigger\",\"applies_to\":null}"
    "],\"version\":\"2024.1\"}";

static const char fixture_spec[] =
    "{\"partition_field\":\"domain\",\"sections\":{\"autos\":{\"search_fields\":"
    "[\"id\",\"name\",\"applies_to\"]}}}";

/* fixture_build compiles the fixture under fuzz_tmp()/name and writes the
 * version directory it made into version_dir. Aborts on failure. */
static inline void fixture_build(const char *name, char *version_dir, size_t size)
{
    char dir[1200], in[1300], sp[1300], out[1300], err[512];
    catalog_build_result res;

    snprintf(dir, sizeof(dir), "%s/%s", fuzz_tmp(), name);
    if (base_mkdir_p(dir, 0700) < 0) {
        perror(dir);
        abort();
    }
    snprintf(in, sizeof(in), "%s/in.json", dir);
    snprintf(sp, sizeof(sp), "%s/spec.json", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    fuzz_write_file(in, fixture_input, sizeof(fixture_input) - 1);
    fuzz_write_file(sp, fixture_spec, sizeof(fixture_spec) - 1);
    if (catalog_build(in, sp, out, &res, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz: fixture catalog: %s\n", err);
        abort();
    }
    snprintf(version_dir, size, "%s/%s", out, res.version);
}

#endif
