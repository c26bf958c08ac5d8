/*
 * catalog/internal.h: symbols shared between the files of the catalog
 * module (double underscore, as libuv's uv__). Not a public contract; tests
 * may use them through the static library. What is not catalog-specific
 * (JSON scanning, buffers, files, hashing of keys) is base's.
 */
#ifndef HERD_CATALOG_INTERNAL_H
#define HERD_CATALOG_INTERNAL_H

#include "catalog/catalog.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/sha256.h>

/* index.json is shorter than this (index.c keeps offsets in 31 bits): the
 * compiler refuses an input whose index would not be, the loader a file
 * that is not. */
#define CATALOG__INDEX_MAX_BYTES 0x7fffffffu

/* ---- manifest.c: SHA-256 (mbedtls, which nng already links) ------------ */

typedef mbedtls_sha256_context catalog__sha256;

void catalog__sha256_init(catalog__sha256 *c);
void catalog__sha256_update(catalog__sha256 *c, const void *data, size_t len);
/* catalog__sha256_final writes the digest and releases the context. */
void catalog__sha256_final(catalog__sha256 *c, uint8_t out[32]);
void catalog__sha256_hex(const uint8_t digest[32], char out[65]);
/* catalog__sha256_buf: hex digest of one buffer. */
void catalog__sha256_buf(const void *data, size_t len, char out_hex[65]);

typedef struct catalog__manifest {
    catalog__sha256 ctx;
} catalog__manifest;

void catalog__manifest_init(catalog__manifest *m, const char *spec_sha256_hex);
void catalog__manifest_add(catalog__manifest *m, const char *section, size_t section_len,
                           const char *id, size_t id_len, const char *body_sha256_hex);
void catalog__manifest_final(catalog__manifest *m, char hex[65]);
/* catalog__spec_hash: hex sha256 of the canonical text of an effective spec. */
int catalog__spec_hash(const json_t *spec, char hex[65]);

/* ---- names.c: ids and section names ------------------------------------ */

/*
 * catalog__check_name: 0 when `s` may be an id or section name (a safe path
 * component), else -EINVAL with the reason ("contains '/'") in why.
 */
int catalog__check_name(const char *s, size_t len, char *why, size_t why_size);
/* Writes `s` as a quoted, escaped, possibly shortened string for messages. */
void catalog__quote(const char *s, size_t len, char *out, size_t out_size);

/* ---- current.c ---------------------------------------------------------- */

/* catalog__read_current reads the target of OUTDIR/current into out. */
int catalog__read_current(const char *outdir, char *out, size_t out_size);

#endif
