/* The manifest hash (its exact text is specified in catalog.h) and the
 * SHA-256 it is made of: mbedtls's, which libnng already links, so herdd's
 * map gains nothing. */
#include "catalog/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/version.h>

/* mbedtls 3 renamed the *_ret functions back to the plain names. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define sha256_starts mbedtls_sha256_starts
#define sha256_update mbedtls_sha256_update
#define sha256_finish mbedtls_sha256_finish
#else
#define sha256_starts mbedtls_sha256_starts_ret
#define sha256_update mbedtls_sha256_update_ret
#define sha256_finish mbedtls_sha256_finish_ret
#endif

/* The software SHA-256 of mbedtls cannot fail once started; its int
 * results only report bad parameters, which these wrappers never pass. */
void catalog__sha256_init(catalog__sha256 *c)
{
    mbedtls_sha256_init(c);
    sha256_starts(c, 0);
}

void catalog__sha256_update(catalog__sha256 *c, const void *data, size_t len)
{
    sha256_update(c, data, len);
}

void catalog__sha256_final(catalog__sha256 *c, uint8_t out[32])
{
    sha256_finish(c, out);
    mbedtls_sha256_free(c);
}

void catalog__sha256_hex(const uint8_t digest[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = '\0';
}

void catalog__sha256_buf(const void *data, size_t len, char out_hex[65])
{
    catalog__sha256 c;
    uint8_t d[32];

    catalog__sha256_init(&c);
    catalog__sha256_update(&c, data, len);
    catalog__sha256_final(&c, d);
    catalog__sha256_hex(d, out_hex);
}

void catalog__manifest_init(catalog__manifest *m, int format, const char *spec_sha256_hex)
{
    /* the header names the format: a format 2 build of an input gets
     * another version than its format 1 build had (the slim entries differ) */
    char head[48];
    int n = snprintf(head, sizeof(head), "herd-catalog-manifest %d\nspec ", format);
    catalog__sha256_init(&m->ctx);
    catalog__sha256_update(&m->ctx, head, (size_t)n);
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
    char *text = base_json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return -ENOMEM;
    catalog__sha256_buf(text, strlen(text), hex);
    free(text);
    return 0;
}
