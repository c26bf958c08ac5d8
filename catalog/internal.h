/*
 * catalog/internal.h: symbols shared between the files of the catalog
 * module (double underscore, as libuv's uv__). Not a public contract; tests
 * may use them through the static library.
 */
#ifndef HERD_CATALOG_INTERNAL_H
#define HERD_CATALOG_INTERNAL_H

#include "catalog/catalog.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* ---- sha256.c ---------------------------------------------------------- */

typedef struct catalog__sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    uint8_t buf[64];
    size_t n_buf;
} catalog__sha256;

void catalog__sha256_init(catalog__sha256 *c);
void catalog__sha256_update(catalog__sha256 *c, const void *data, size_t len);
void catalog__sha256_final(catalog__sha256 *c, uint8_t out[32]);
void catalog__sha256_hex(const uint8_t digest[32], char out[65]);
/* catalog__sha256_buf: hex digest of one buffer. */
void catalog__sha256_buf(const void *data, size_t len, char out_hex[65]);

/* ---- scan.c: validating pull scanner over in-memory JSON --------------- */

#define CATALOG__SCAN_DEPTH 2048

typedef struct catalog__scan {
    const char *buf;
    size_t len;
    size_t pos;
    const char *err; /* static reason, set on failure */
    size_t err_pos;  /* byte offset of the failure */
} catalog__scan;

void catalog__scan_init(catalog__scan *s, const void *buf, size_t len);
/* Skips whitespace; returns the next byte without consuming it, -1 at end. */
int catalog__scan_peek(catalog__scan *s);
/* Skips whitespace and consumes `c`, or fails with -EINVAL. */
int catalog__scan_expect(catalog__scan *s, char c);
/* Fails unless only whitespace remains. */
int catalog__scan_end(catalog__scan *s);
/* Validates one string; [*start, *end) is its raw range, quotes included. */
int catalog__scan_string(catalog__scan *s, size_t *start, size_t *end);
/* Validates one value of any type; [*start, *end) is its raw range. */
int catalog__scan_value(catalog__scan *s, size_t *start, size_t *end);
/*
 * catalog__scan_member: after '{' was consumed, with *first = 1 initially.
 * Returns 1 with the key's raw range when a member follows (its ':' is
 * consumed, the value is next), 0 when the closing '}' was consumed.
 */
int catalog__scan_member(catalog__scan *s, int *first, size_t *key_start, size_t *key_end);
/* Same for arrays: 1 when an element follows, 0 when ']' was consumed. */
int catalog__scan_element(catalog__scan *s, int *first);
/*
 * catalog__scan_decode: decodes a string validated by catalog__scan_string
 * (quotes included) into `out`, which needs raw_len bytes; returns the
 * decoded length. No terminating NUL is written.
 */
size_t catalog__scan_decode(const char *raw, size_t raw_len, char *out);
/* 1-based line and column of byte `pos`. */
void catalog__scan_where(const catalog__scan *s, size_t pos, size_t *line, size_t *col);

/* ---- names.c: ids and section names ------------------------------------ */

/*
 * catalog__check_name: 0 when `s` may be an id or section name (a safe path
 * component), else -EINVAL with the reason ("contains '/'") in why.
 */
int catalog__check_name(const char *s, size_t len, char *why, size_t why_size);
/* Writes `s` as a quoted, escaped, possibly shortened string for messages. */
void catalog__quote(const char *s, size_t len, char *out, size_t out_size);

/* ---- buf.c -------------------------------------------------------------- */

int catalog__buf_reserve(catalog_buf *b, size_t more);
int catalog__buf_add(catalog_buf *b, const void *data, size_t len);
int catalog__buf_adds(catalog_buf *b, const char *s);
int catalog__buf_addf(catalog_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `s` as a JSON string (quoted, escaped). */
int catalog__buf_json_string(catalog_buf *b, const char *s, size_t len);

/* ---- manifest.c --------------------------------------------------------- */

typedef struct catalog__manifest {
    catalog__sha256 ctx;
} catalog__manifest;

void catalog__manifest_init(catalog__manifest *m, const char *spec_sha256_hex);
void catalog__manifest_add(catalog__manifest *m, const char *section, size_t section_len,
                           const char *id, size_t id_len, const char *body_sha256_hex);
void catalog__manifest_final(catalog__manifest *m, char hex[65]);
/* catalog__spec_hash: hex sha256 of the canonical text of an effective spec. */
int catalog__spec_hash(const json_t *spec, char hex[65]);

/* ---- fsutil.c ----------------------------------------------------------- */

/* Reads a whole file into a malloc'd buffer (NUL-terminated, *len excludes it). */
int catalog__read_file(int dirfd, const char *path, char **data, size_t *len);
/* Removes `name` under dirfd, recursively. Missing is not an error. */
int catalog__rm_rf(int dirfd, const char *name);
/* Fills `out` (2n+1 bytes) with random hex. */
void catalog__random_hex(char *out, size_t n);
/* Reads the target of OUTDIR/current into `out`; -errno on failure. */
int catalog__read_current(const char *outdir, char *out, size_t out_size);

#endif
