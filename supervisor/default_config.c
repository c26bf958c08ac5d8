/* The embedded default configuration: what `herdd` without -c runs. */
#include "supervisor/internal.h"

#include <stdio.h>

static const char default_json[] = "{\"workers\": []}";

int sup_config_default(sup_config *cfg, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_loads(default_json, 0, &jerr);
    int rv;

    if (root == NULL) {
        snprintf(err, err_size, "built-in config: %s", jerr.text);
        return -1;
    }
    rv = sup_config_parse(root, cfg, err, err_size);
    json_decref(root);
    return rv;
}
