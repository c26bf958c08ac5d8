/* The manifest hash; its exact text is specified in catalog.h. */
#include "catalog/internal.h"
#include "bus/bus.h"

#include <stdlib.h>
#include <string.h>

void catalog__manifest_init(catalog__manifest *m, const char *spec_sha256_hex)
{
    catalog__sha256_init(&m->ctx);
    catalog__sha256_update(&m->ctx, "herd-catalog-manifest 1\nspec ", 29);
    catalog__sha256_update(&m->ctx, spec_sha256_hex, 64);
    catalog__sha256_update(&m->ctx, "\n", 1);
}

void catalog__manifest_add(catalog__manifest *m, const char *section, size_t section_len,
                           const char *id, size_t id_len, const char *body_sha256_hex)
{
    catalog__sha256_update(&m->ctx, section, section_len);
    catalog__sha256_update(&m->ctx, "\t", 1);
    catalog__sha256_update(&m->ctx, id, id_len);
    catalog__sha256_update(&m->ctx, "\t", 1);
    catalog__sha256_update(&m->ctx, body_sha256_hex, 64);
    catalog__sha256_update(&m->ctx, "\n", 1);
}

void catalog__manifest_final(catalog__manifest *m, char hex[65])
{
    uint8_t d[32];
    catalog__sha256_final(&m->ctx, d);
    catalog__sha256_hex(d, hex);
}

int catalog__spec_hash(const json_t *spec, char hex[65])
{
    char *text = bus_json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return -ENOMEM;
    catalog__sha256_buf(text, strlen(text), hex);
    free(text);
    return 0;
}
