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

/* format: the index format the version is written in (its header line). */
void catalog__manifest_init(catalog__manifest *m, int format, const char *spec_sha256_hex);
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

/* ---- value.c: JSON values already validated ---------------------------- */

/* A value's raw bytes: p == NULL is a missing value. */
typedef struct catalog__raw {
    const char *p;
    size_t len;
} catalog__raw;

/* Type order of values that compare (missing sorts after everything). */
enum {
    CATALOG__T_NULL,
    CATALOG__T_BOOL,
    CATALOG__T_NUMBER,
    CATALOG__T_STRING,
    CATALOG__T_ARRAY,
    CATALOG__T_OBJECT,
    CATALOG__T_MISSING,
};

typedef struct catalog__iter {
    const char *p, *end;
    int first;
} catalog__iter;

const char *catalog__skip_ws(const char *p, const char *end);
/* catalog__skip_value: p at a value's first byte; returns the byte after it. */
const char *catalog__skip_value(const char *p, const char *end);
/* Iterates an object's members or an array's elements (v: the whole value). */
void catalog__iter_init(catalog__iter *it, const char *v, size_t len);
/* 1 with the next member's key (quotes included) and value, 0 at the end. */
int catalog__obj_next(catalog__iter *it, catalog__raw *key, catalog__raw *val);
int catalog__arr_next(catalog__iter *it, catalog__raw *val);
int catalog__type(catalog__raw v);
int catalog__is_empty_array(catalog__raw v);
/* Strings (raw, quotes included) by code point, escapes decoded, folded when asked. */
int catalog__str_cmp(catalog__raw a, catalog__raw b, int fold);
/* 1 when raw string a equals the UTF-8 text s (already folded when fold). */
int catalog__str_eq(catalog__raw a, const char *s, size_t n, int fold);
/* Decodes a raw string into out (a.len bytes of room); returns the length. */
size_t catalog__str_decode(catalog__raw a, char *out);
/* Exact comparison of two JSON number texts by value (-0 == 0). */
int catalog__num_cmp(const char *a, size_t alen, const char *b, size_t blen);
/* Orders values by type, then booleans, numbers, strings; arrays and
 * objects bytewise. */
int catalog__value_cmp(catalog__raw a, catalog__raw b, int fold);
/* Copies a JSON text without the whitespace outside strings; returns its length. */
size_t catalog__compact(const char *p, size_t len, char *out);
/* 1 when a raw key (quotes included) is `name` (n bytes) once decoded. */
int catalog__key_is(catalog__raw key, const char *name, size_t n);

/* ---- index.c: the loaded index, shared with query.c --------------------- */

#define CATALOG__TEXT_BIT 0x80000000u
#define CATALOG__NONE UINT32_MAX
#define CATALOG__SEARCH_FIELDS_MAX 16
_Static_assert(CATALOG__INDEX_MAX_BYTES < CATALOG__TEXT_BIT,
               "an index.json offset fits in 31 bits");

/* A string of the index: an offset into the slim arena, or into the text
 * arena when the top bit is set (decoded copies, interned names). */
typedef struct catalog__istr {
    uint32_t off; /* CATALOG__NONE: absent */
    uint32_t len;
} catalog__istr;

struct catalog__entry {
    uint32_t slim_off, slim_len;
    catalog__istr id, name; /* decoded (ids are looked up; both rank a search) */
    uint16_t section;
    uint16_t own_section; /* the slim entry has a top-level "section" member */
};

struct catalog__section {
    uint32_t name; /* intern number */
    uint32_t first, n;
    uint32_t partition;    /* intern number of the partition field's name, or NONE */
    uint32_t search_first; /* its search fields: search[search_first ...] */
    uint32_t n_search;
};

/* A field's value in every entry, kept once a query has named the field:
 * the query after it reads the value at once instead of walking the
 * entry's members. At most CATALOG__COLUMNS_MAX, the least recently used
 * replaced; 8 bytes an entry each. Touched only on the loop thread. */
#define CATALOG__COLUMNS_MAX 12

struct catalog__column {
    char *path; /* the field path (the partition field: "" with partition set) */
    size_t path_len;
    int partition;
    uint64_t used;     /* the query that last used it */
    uint32_t (*at)[2]; /* per entry: {offset in slim, length}; length 0: missing */
};

struct catalog_index {
    int refs;
    char *dir;
    char version[64];
    char manifest[65];
    char *slim;
    size_t slim_len;
    char *text;
    size_t text_len, text_cap;
    struct catalog__entry *entries;
    size_t n_entries;
    struct catalog__section *sections;
    size_t n_sections;
    catalog__istr *interns;
    size_t n_interns, cap_interns;
    uint32_t *search; /* intern numbers of every section's search fields */
    size_t n_search;
    base_htab ids; /* entries by (section, id) */
    size_t bytes;  /* what the load allocated */
    struct catalog__column columns[CATALOG__COLUMNS_MAX];
    size_t n_columns;
    uint64_t queries;
    size_t column_bytes;
};

static inline const char *catalog__sp(const catalog_index *idx, catalog__istr s)
{
    return (s.off & CATALOG__TEXT_BIT) ? idx->text + (s.off & ~CATALOG__TEXT_BIT)
                                       : idx->slim + s.off;
}

/* Section number range [*lo, *hi) for a section name (NULL: all); -ENOENT
 * with a message for an unknown one. */
int catalog__section_range(const catalog_index *idx, const char *section, size_t *lo, size_t *hi,
                           char *err, size_t err_size);

#endif
