/*
 * The embedded default configuration: what `herdd` without -c runs, from
 * the build tree (`make run`). A catalog worker serves the demo catalog
 * that the build compiles from examples/demo-catalog.json into
 * HERD_DEMO_DIR/catalog, a jobs worker runs two harmless job types, and
 * an archive worker keeps every state change in HERD_DEMO_DIR/archive.
 * An installed herdd is meant to get a config file: outside the build tree
 * the demo catalog is missing and that worker fails (and says so).
 */
#include "supervisor/internal.h"

#include <stdio.h>

#ifndef HERD_DEMO_DIR
#define HERD_DEMO_DIR "demo"
#endif

int sup_config_default(sup_config *cfg, char *err, size_t err_size)
{
    json_t *root = json_pack(
        "{s:[{s:s,s:s,s:s,s:i},{s:s,s:s,s:{s:i,s:i},s:{s:{s:[s,s,s],s:s},s:{s:[s,s],s:s}}},"
        "{s:s,s:s,s:[s,s,s],s:s,s:s,s:i}]}",
        "workers",
        /* catalog */
        "name", "catalog", "kind", "catalog", "path", HERD_DEMO_DIR "/catalog", "lru_entries", 16,
        /* jobs */
        "name", "jobs", "kind", "jobs", "lanes", "default", 2, "build", 1, "types", "hello", "argv",
        "echo", "hello from herd, configuration:", "{configuration}", "lane", "default", "build",
        "argv", "sleep", "{configuration}", "lane", "build",
        /* archive: every state change, not the output or heartbeats */
        "name", "archive", "kind", "archive", "subscribe", "system.*.state", "job.*.*.state",
        "catalog.*.reloaded", "path", HERD_DEMO_DIR "/archive/events.jsonl", "max_bytes", "1M",
        "keep", 3);
    int rv;

    if (root == NULL) {
        snprintf(err, err_size, "built-in config: out of memory");
        return -1;
    }
    rv = sup_config_parse(root, cfg, err, err_size);
    json_decref(root);
    return rv;
}
