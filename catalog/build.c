/*
 * The catalog compiler: INPUT.json (+ optional spec) -> OUTDIR/v-<hex>.
 *
 * Design notes
 * - Memory: the input is mmap'ed and walked with the scanner (scan.c); only
 *   one entry at a time becomes a jansson tree (to read its id and build its
 *   slim form), and it is released before the next. What is kept per entry
 *   is its byte range in the mapping, its id, its body hash and its slim
 *   JSON, so peak memory is the mapping, the largest entry's tree, every
 *   slim entry twice at the end (the entries' copies and index.json's text)
 *   and about 250 bytes per entry (bench/catalog-build/run measures it).
 *   max_slim_bytes bounds each slim entry, so the index (and the worker that
 *   loads it) holds at most that much per entry whatever the input.
 * - Nothing is written before the whole input has been validated.
 * - Atomicity: the version is built in OUTDIR/.tmp-<random> (files inside a
 *   temp directory need no temp names of their own: the directory is the
 *   unit renamed into place), the filesystem is synced (one syncfs for
 *   the whole version), the directory is renamed to v-<hex>, OUTDIR is
 *   fsynced, and only then is
 *   `current` replaced by renaming a temp symlink over it (and OUTDIR
 *   fsynced again). Removal of other versions and of stale temp entries
 *   comes last. At any instant `current` names a complete version.
 * - The previous version (what `current` named before the flip) is kept
 *   until the next build that changes `current`: a worker serves it until it
 *   has validated the new one (hashing every body takes a while), and reads
 *   in flight on it must not find their files gone. Every other v-* goes.
 * - A v-<hex> directory only ever appears complete (it is renamed from its
 *   temp directory after everything is fsynced). Rebuilding a version that
 *   already exists but is not current (the previous one, or one left by a
 *   build killed before its flip) swaps the fresh copy in with
 *   renameat2(RENAME_EXCHANGE), so the path never disappears under a
 *   reader; where the file system cannot exchange, the old copy is moved
 *   aside first.
 * - Versions are content-addressed (manifest hash, spec included): an
 *   existing v-<hex> that `current` already names is left alone (a rebuild
 *   of the same input only flips, i.e. nothing changes); one that is not
 *   current is replaced by the fresh build.
 */
#include "catalog/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct section {
    char *name;
    size_t name_len;
    const json_t *index_fields;  /* borrowed from the spec, NULL: default rule */
    const char *partition;       /* borrowed from the spec, may be NULL */
    const json_t *search_fields; /* borrowed from the spec, NULL: the default */
    size_t first;
    size_t n;
};

struct entry {
    size_t section;
    char *id;
    size_t id_len;
    size_t off, len; /* body: range in the input */
    char hex[65];    /* sha256 of the body */
    char *slim;
    size_t slim_len;
};

struct build {
    const char *in;
    size_t in_len;
    char *err;
    size_t err_size;
    json_t *spec; /* the user's spec, or NULL */
    const char *id_field;
    size_t max_slim_bytes; /* per entry: spec.max_slim_bytes or the default */
    size_t index_bytes;    /* running total of the slim entries and their separators */
    const json_t *index_fields;
    const char *partition;
    const json_t *search_fields;
    struct section *sections;
    size_t n_sections, cap_sections;
    struct entry *entries;
    size_t n_entries, cap_entries;
    base_htab ids;      /* entries by (section, id) */
    catalog__raw *keys; /* check_dups' stack of member names */
    size_t n_keys, cap_keys;
};

#define errf(b, ...) base_errf((b)->err, (b)->err_size, __VA_ARGS__)

static int sys_err(struct build *b, const char *what, const char *path, int rc)
{
    errf(b, "%s: %s: %s", path, what, strerror(-rc));
    return rc;
}

/* ---- spec ---------------------------------------------------------------- */

static int check_fields(struct build *b, const char *where, const json_t *v)
{
    size_t i;
    json_t *f;
    if (!json_is_array(v))
        return errf(b, "%s: expected an array of member names", where);
    json_array_foreach(v, i, f)
    {
        if (!json_is_string(f) || json_string_length(f) == 0)
            return errf(b, "%s[%zu]: expected a non-empty string", where, i);
    }
    return 0;
}

static int check_partition(struct build *b, const char *where, const json_t *v)
{
    if (!json_is_null(v) && (!json_is_string(v) || json_string_length(v) == 0))
        return errf(b, "%s: expected a member name or null", where);
    return 0;
}

/* max_slim_bytes: a JSON integer from 1 to CATALOG_MAX_SLIM_BYTES_MAX (no
 * size strings, no reals: the value is a byte count compared as written). */
static int check_max_slim(struct build *b, const json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) >= 1 &&
        json_integer_value(v) <= (json_int_t)CATALOG_MAX_SLIM_BYTES_MAX) {
        b->max_slim_bytes = (size_t)json_integer_value(v);
        return 0;
    }
    char *got = base_json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    errf(b, "spec.max_slim_bytes: expected an integer from 1 to %u (bytes), got %.40s%s",
         CATALOG_MAX_SLIM_BYTES_MAX, got != NULL ? got : "?",
         got != NULL && strlen(got) > 40 ? "..." : "");
    free(got);
    return -EINVAL;
}

static int load_spec(struct build *b, const char *spec_path)
{
    b->id_field = "id";
    b->max_slim_bytes = CATALOG_MAX_SLIM_BYTES_DEFAULT;
    if (spec_path == NULL)
        return 0;
    json_error_t je;
    b->spec = json_load_file(spec_path, JSON_REJECT_DUPLICATES, &je);
    if (b->spec == NULL)
        return errf(b, "spec: %s (line %d column %d)", je.text, je.line, je.column);
    if (!json_is_object(b->spec))
        return errf(b, "spec: expected an object");
    const char *key;
    json_t *v;
    json_object_foreach(b->spec, key, v)
    {
        if (strcmp(key, "id_field") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0)
                return errf(b, "spec.id_field: expected a non-empty string");
            b->id_field = json_string_value(v);
        } else if (strcmp(key, "index_fields") == 0) {
            if (check_fields(b, "spec.index_fields", v) < 0)
                return -EINVAL;
            b->index_fields = v;
        } else if (strcmp(key, "partition_field") == 0) {
            if (check_partition(b, "spec.partition_field", v) < 0)
                return -EINVAL;
            b->partition = json_string_value(v);
        } else if (strcmp(key, "search_fields") == 0) {
            if (check_fields(b, "spec.search_fields", v) < 0)
                return -EINVAL;
            b->search_fields = v;
        } else if (strcmp(key, "max_slim_bytes") == 0) {
            if (check_max_slim(b, v) < 0)
                return -EINVAL;
        } else if (strcmp(key, "sections") == 0) {
            if (!json_is_object(v))
                return errf(b, "spec.sections: expected an object");
            const char *name;
            json_t *sv;
            json_object_foreach(v, name, sv)
            {
                char where[300];
                if (!json_is_object(sv))
                    return errf(b, "spec.sections.%s: expected an object", name);
                const char *k2;
                json_t *v2;
                json_object_foreach(sv, k2, v2)
                {
                    snprintf(where, sizeof(where), "spec.sections.%s.%s", name, k2);
                    if (strcmp(k2, "index_fields") == 0) {
                        if (check_fields(b, where, v2) < 0)
                            return -EINVAL;
                    } else if (strcmp(k2, "partition_field") == 0) {
                        if (check_partition(b, where, v2) < 0)
                            return -EINVAL;
                    } else if (strcmp(k2, "search_fields") == 0) {
                        if (check_fields(b, where, v2) < 0)
                            return -EINVAL;
                    } else {
                        return errf(b, "%s: unknown key", where);
                    }
                }
            }
        } else {
            return errf(b, "spec.%s: unknown key", key);
        }
    }
    return 0;
}

/* Applies the spec to a new section: its own keys override the top-level ones. */
static void resolve_section(struct build *b, struct section *s)
{
    s->index_fields = b->index_fields;
    s->partition = b->partition;
    s->search_fields = b->search_fields;
    json_t *sv = json_object_get(json_object_get(b->spec, "sections"), s->name);
    if (sv == NULL)
        return;
    json_t *f = json_object_get(sv, "index_fields");
    if (f != NULL)
        s->index_fields = f;
    json_t *p = json_object_get(sv, "partition_field");
    if (p != NULL)
        s->partition = json_string_value(p); /* null: no partition */
    json_t *sf = json_object_get(sv, "search_fields");
    if (sf != NULL)
        s->search_fields = sf;
}

/* ---- scan pass ----------------------------------------------------------- */

static uint32_t entry_hash(uint32_t e, void *ctx)
{
    const struct entry *x = &((struct build *)ctx)->entries[e];
    return base_hash(x->id, x->id_len, (uint32_t)x->section);
}

static bool entry_is(uint32_t e, const void *key, void *ctx)
{
    const struct entry *x = &((struct build *)ctx)->entries[e], *k = key;
    return x->section == k->section && x->id_len == k->id_len &&
           memcmp(x->id, k->id, k->id_len) == 0;
}

/* 1 when (section, id) is already present, 0 after inserting entry `e`. */
static int id_seen(struct build *b, size_t e)
{
    const struct entry *n = &b->entries[e];
    uint32_t h = entry_hash((uint32_t)e, b);

    if (base_htab_find(&b->ids, h, entry_is, n, b) != BASE_HTAB_NONE)
        return 1;
    return base_htab_insert(&b->ids, h, (uint32_t)e, entry_hash, b);
}

/* A non-empty array whose every element is an object: kept in the body only. */
static int is_array_of_objects(catalog__raw v)
{
    if (catalog__type(v) != CATALOG__T_ARRAY)
        return 0;
    catalog__iter it;
    catalog__raw x;
    int n = 0;
    catalog__iter_init(&it, v.p, v.len);
    while (catalog__arr_next(&it, &x)) {
        if (x.p[0] != '{')
            return 0;
        n++;
    }
    return n > 0;
}

/* The value of the entry's member `name`, or a missing value. */
static catalog__raw member(catalog__raw entry, const char *name)
{
    catalog__iter it;
    catalog__raw k, v;
    size_t n = strlen(name);
    catalog__iter_init(&it, entry.p, entry.len);
    while (catalog__obj_next(&it, &k, &v))
        if (catalog__key_is(k, name, n))
            return v;
    return (catalog__raw){NULL, 0};
}

/* Appends "key":value with the value's insignificant whitespace dropped:
 * numbers and strings stay the input's bytes. */
static int add_member(base_buf *out, const char *key_raw, size_t key_len, catalog__raw v)
{
    if (base_buf_reserve(out, key_len + v.len + 2) < 0)
        return -ENOMEM;
    if (out->len > 1)
        out->data[out->len++] = ',';
    memcpy(out->data + out->len, key_raw, key_len);
    out->len += key_len;
    out->data[out->len++] = ':';
    out->len += catalog__compact(v.p, v.len, out->data + out->len);
    out->data[out->len] = '\0';
    return 0;
}

/* Appends a listed member: its key as the spec names it, escaped. */
static int add_named(base_buf *out, const char *name, catalog__raw v)
{
    base_buf key = {0};
    int rc = base_buf_json_string(&key, name, strlen(name));
    if (rc == 0)
        rc = add_member(out, key.data, key.len, v);
    base_buf_free(&key);
    return rc;
}

static int listed_before(const json_t *fields, size_t i, const char *name)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(json_string_value(json_array_get(fields, j)), name) == 0)
            return 1;
    return 0;
}

static int make_slim(struct build *b, const struct section *s, catalog__raw e, struct entry *out)
{
    base_buf slim = {0};
    int rc = base_buf_add(&slim, "{", 1);
    if (rc == 0 && s->index_fields != NULL) {
        rc = add_named(&slim, b->id_field, member(e, b->id_field));
        size_t i;
        json_t *f;
        json_array_foreach(s->index_fields, i, f)
        {
            const char *name = json_string_value(f);
            catalog__raw v = member(e, name);
            if (rc == 0 && v.p != NULL && strcmp(name, b->id_field) != 0 &&
                !listed_before(s->index_fields, i, name))
                rc = add_named(&slim, name, v);
        }
        if (rc == 0 && s->partition != NULL && strcmp(s->partition, b->id_field) != 0 &&
            !listed_before(s->index_fields, json_array_size(s->index_fields), s->partition)) {
            catalog__raw v = member(e, s->partition);
            if (v.p != NULL)
                rc = add_named(&slim, s->partition, v);
        }
    } else if (rc == 0) {
        catalog__iter it;
        catalog__raw k, v;
        catalog__iter_init(&it, e.p, e.len);
        while (rc == 0 && catalog__obj_next(&it, &k, &v))
            if (!is_array_of_objects(v))
                rc = add_member(&slim, k.p, k.len, v);
    }
    if (rc == 0)
        rc = base_buf_add(&slim, "}", 1);
    if (rc < 0) {
        base_buf_free(&slim);
        return -ENOMEM;
    }
    /* exact size: a million tiny entries must not each keep a buffer's
     * initial capacity */
    out->slim = malloc(slim.len + 1);
    if (out->slim != NULL)
        memcpy(out->slim, slim.data, slim.len + 1);
    out->slim_len = slim.len;
    base_buf_free(&slim);
    return out->slim != NULL ? 0 : -ENOMEM;
}

/* ---- duplicate member names, at every depth ------------------------------ */

static int raw_cmp(const void *x, const void *y)
{
    const catalog__raw *a = x, *b = y;
    int c = catalog__str_cmp(*a, *b, 0);
    /* equal names: the later one in the input last, so it is the one named */
    return c ? c : (a->p > b->p) - (a->p < b->p);
}

/* The object's keys are checked in the build's key stack (no allocation
 * per object once it has grown), then its values are descended into. */
static int check_dups(struct build *b, catalog__raw v, const char *where)
{
    catalog__iter it;
    catalog__raw k, x;
    if (v.p[0] == '[') {
        catalog__iter_init(&it, v.p, v.len);
        while (catalog__arr_next(&it, &x))
            if ((x.p[0] == '{' || x.p[0] == '[') && check_dups(b, x, where) < 0)
                return -EINVAL;
        return 0;
    }
    size_t base = b->n_keys;
    catalog__iter_init(&it, v.p, v.len);
    while (catalog__obj_next(&it, &k, &x)) {
        if (b->n_keys == b->cap_keys) {
            size_t cap = b->cap_keys ? b->cap_keys * 2 : 64;
            catalog__raw *n = realloc(b->keys, cap * sizeof(*n));
            if (n == NULL)
                return errf(b, "%s: out of memory", where);
            b->keys = n;
            b->cap_keys = cap;
        }
        b->keys[b->n_keys++] = k;
    }
    size_t n = b->n_keys - base;
    if (n == 0)
        return 0; /* an empty object: nothing to compare, nothing below (and no
                     b->keys yet to offset: tests/fuzz found it) */
    catalog__raw *keys = b->keys + base;
    const catalog__raw *dup = NULL;
    if (n <= 16) {
        for (size_t i = 1; i < n && dup == NULL; i++)
            for (size_t j = 0; j < i && dup == NULL; j++)
                if (catalog__str_cmp(keys[i], keys[j], 0) == 0)
                    dup = &keys[i];
    } else {
        qsort(keys, n, sizeof(*keys), raw_cmp);
        for (size_t i = 1; i < n && dup == NULL; i++)
            if (catalog__str_cmp(keys[i], keys[i - 1], 0) == 0)
                dup = &keys[i];
    }
    if (dup != NULL) {
        char q[80], *name = malloc(dup->len);
        size_t line, col, nl = name != NULL ? catalog__str_decode(*dup, name) : 0;
        base_json_scan sc;
        base_json_scan_init(&sc, b->in, b->in_len);
        base_json_scan_where(&sc, (size_t)(dup->p - b->in), &line, &col);
        catalog__quote(name != NULL ? name : "?", name != NULL ? nl : 1, q, sizeof(q));
        free(name);
        b->n_keys = base;
        return errf(b, "%s: duplicate member %s at line %zu column %zu", where, q, line, col);
    }
    b->n_keys = base;
    catalog__iter_init(&it, v.p, v.len);
    while (catalog__obj_next(&it, &k, &x))
        if ((x.p[0] == '{' || x.p[0] == '[') && check_dups(b, x, where) < 0)
            return -EINVAL;
    return 0;
}

static int json_fail(struct build *b, base_json_scan *sc, const char *where)
{
    size_t line, col;
    base_json_scan_where(sc, sc->err_pos, &line, &col);
    return errf(b, "%s: invalid JSON at line %zu column %zu: %s", where, line, col, sc->err);
}

static int add_entry(struct build *b, base_json_scan *sc, size_t si, size_t pos)
{
    struct section *s = &b->sections[si];
    char where[CATALOG_NAME_MAX + 64];
    snprintf(where, sizeof(where), "%s[%zu]", s->name, pos);
    if (base_json_scan_peek(sc) != '{') {
        size_t a, z;
        if (base_json_scan_value(sc, &a, &z) < 0)
            return json_fail(b, sc, where);
        return errf(b, "%s: entry is not an object", where);
    }
    size_t a, z;
    if (base_json_scan_value(sc, &a, &z) < 0)
        return json_fail(b, sc, where);

    catalog__raw e = {b->in + a, z - a};
    int rc = check_dups(b, e, where);
    if (rc < 0)
        return rc;
    catalog__raw id = member(e, b->id_field);
    char why[64], q[80];
    if (id.p == NULL)
        return errf(b, "%s: missing id member \"%s\"", where, b->id_field);
    if (id.p[0] != '"')
        return errf(b, "%s: id \"%s\" is not a string", where, b->id_field);
    char *idv = malloc(id.len);
    if (idv == NULL)
        return errf(b, "%s: out of memory", where);
    size_t id_len = catalog__str_decode(id, idv);
    if (catalog__check_name(idv, id_len, why, sizeof(why)) < 0) {
        catalog__quote(idv, id_len, q, sizeof(q));
        rc = errf(b, "%s: id %s %s", where, q, why);
        goto out;
    }
    if (b->n_entries == b->cap_entries) {
        size_t cap = b->cap_entries ? b->cap_entries * 2 : 256;
        struct entry *n = realloc(b->entries, cap * sizeof(*n));
        if (n == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        b->entries = n;
        b->cap_entries = cap;
    }
    struct entry *en = &b->entries[b->n_entries];
    memset(en, 0, sizeof(*en));
    en->section = si;
    en->off = a;
    en->len = z - a;
    en->id_len = id_len;
    idv[id_len] = '\0'; /* id.len > id_len: the quotes */
    en->id = idv;
    idv = NULL;
    int seen = id_seen(b, b->n_entries);
    if (seen != 0) {
        idv = en->id;
        if (seen < 0) {
            rc = -ENOMEM;
            goto out;
        }
        catalog__quote(en->id, id_len, q, sizeof(q));
        rc = errf(b, "%s: duplicate id %s", where, q);
        goto out;
    }
    b->n_entries++;
    s->n++;
    catalog__sha256_buf(b->in + a, z - a, en->hex);
    if ((rc = make_slim(b, s, e, en)) < 0)
        goto out;
    /* The slim entry is what the worker keeps in memory for this entry: bound
     * it, so that the index stays small whatever the input holds (the body
     * stays on disk and has no such limit). */
    if (en->slim_len > b->max_slim_bytes) {
        catalog__quote(en->id, id_len, q, sizeof(q));
        rc = errf(b, "%s (id %s): slim fields take %zu bytes, over max_slim_bytes %zu", where, q,
                  en->slim_len, b->max_slim_bytes);
        goto out;
    }
    /* and the whole index must stay loadable (index.c's 31-bit offsets) */
    b->index_bytes += en->slim_len + 2;
    if (b->index_bytes > CATALOG__INDEX_MAX_BYTES) {
        rc = errf(b, "%s: the index would be over the %u bytes a catalog worker loads", where,
                  CATALOG__INDEX_MAX_BYTES);
        goto out;
    }
out:
    free(idv);
    if (rc == -ENOMEM)
        errf(b, "%s: out of memory", where);
    return rc;
}

static int add_section(struct build *b, const char *name, size_t len)
{
    char why[64], q[80];
    catalog__quote(name, len, q, sizeof(q));
    if (catalog__check_name(name, len, why, sizeof(why)) < 0)
        return errf(b, "section %s: name %s", q, why);
    for (size_t i = 0; i < b->n_sections; i++)
        if (b->sections[i].name_len == len && memcmp(b->sections[i].name, name, len) == 0)
            return errf(b, "section %s: duplicate section", q);
    if (b->n_sections == b->cap_sections) {
        size_t cap = b->cap_sections ? b->cap_sections * 2 : 8;
        struct section *n = realloc(b->sections, cap * sizeof(*n));
        if (n == NULL)
            return -ENOMEM;
        b->sections = n;
        b->cap_sections = cap;
    }
    struct section *s = &b->sections[b->n_sections];
    memset(s, 0, sizeof(*s));
    s->name = malloc(len + 1);
    if (s->name == NULL)
        return -ENOMEM;
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    s->name_len = len;
    s->first = b->n_entries;
    b->n_sections++;
    resolve_section(b, s);
    return 0;
}

static int scan_input(struct build *b)
{
    base_json_scan sc;
    base_json_scan_init(&sc, b->in, b->in_len);
    if (base_json_scan_peek(&sc) != '{') {
        if (base_json_scan_expect(&sc, '{') < 0)
            return json_fail(b, &sc, "input");
    }
    sc.pos++;
    int first = 1;
    for (;;) {
        size_t ka, kz;
        int more = base_json_scan_member(&sc, &first, &ka, &kz);
        if (more < 0)
            return json_fail(b, &sc, "input");
        if (more == 0)
            break;
        int c = base_json_scan_peek(&sc);
        if (c != '[') {
            size_t a, z;
            if (base_json_scan_value(&sc, &a, &z) < 0)
                return json_fail(b, &sc, "input");
            continue; /* not an array: not a section, ignored */
        }
        char *name = malloc(kz - ka);
        if (name == NULL)
            return errf(b, "input: out of memory");
        size_t name_len = base_json_decode(b->in + ka, kz - ka, name);
        int rc = add_section(b, name, name_len);
        free(name);
        if (rc < 0)
            return rc;
        size_t si = b->n_sections - 1;
        sc.pos++; /* '[' */
        int efirst = 1;
        for (size_t pos = 0;; pos++) {
            int el = base_json_scan_element(&sc, &efirst);
            if (el < 0) {
                char where[CATALOG_NAME_MAX + 64];
                snprintf(where, sizeof(where), "%s[%zu]", b->sections[si].name, pos);
                return json_fail(b, &sc, where);
            }
            if (el == 0)
                break;
            rc = add_entry(b, &sc, si, pos);
            if (rc < 0)
                return rc;
        }
    }
    if (base_json_scan_end(&sc) < 0)
        return json_fail(b, &sc, "input");
    if (b->n_sections == 0)
        return errf(b, "input: no sections (no member is an array)");
    /* spec sections that match nothing are most likely typos */
    const char *name;
    json_t *sv;
    json_object_foreach(json_object_get(b->spec, "sections"), name, sv)
    {
        size_t i;
        for (i = 0; i < b->n_sections; i++)
            if (strcmp(b->sections[i].name, name) == 0)
                break;
        if (i == b->n_sections)
            return errf(b, "spec.sections.%s: no such section in the input", name);
    }
    return 0;
}

/* ---- version ------------------------------------------------------------ */

static json_t *effective_spec(struct build *b)
{
    json_t *spec = json_object();
    json_t *secs = json_object();
    if (spec == NULL || secs == NULL)
        goto fail;
    if (json_object_set_new(spec, "id_field", json_string(b->id_field)) < 0 ||
        json_object_set(spec, "sections", secs) < 0)
        goto fail;
    /* only when not the default: a default build's spec, hence its version,
     * is what it was before the cap existed */
    if (b->max_slim_bytes != CATALOG_MAX_SLIM_BYTES_DEFAULT &&
        json_object_set_new(spec, "max_slim_bytes", json_integer((json_int_t)b->max_slim_bytes)) <
            0)
        goto fail;
    for (size_t i = 0; i < b->n_sections; i++) {
        struct section *s = &b->sections[i];
        json_t *o = json_object();
        if (o == NULL || json_object_set_new(secs, s->name, o) < 0)
            goto fail;
        if (s->index_fields != NULL &&
            json_object_set_new(o, "index_fields", json_deep_copy(s->index_fields)) < 0)
            goto fail;
        if (s->partition != NULL &&
            json_object_set_new(o, "partition_field", json_string(s->partition)) < 0)
            goto fail;
        if (s->search_fields != NULL &&
            json_object_set_new(o, "search_fields", json_deep_copy(s->search_fields)) < 0)
            goto fail;
    }
    json_decref(secs);
    return spec;
fail:
    json_decref(secs);
    json_decref(spec);
    return NULL;
}

static int index_text(struct build *b, const char *manifest, const json_t *spec, base_buf *out)
{
    int rc = base_buf_addf(out, "{\"format\":%d,\"manifest_sha256\":\"%s\",\"sections\":{",
                           CATALOG_FORMAT, manifest);
    for (size_t i = 0; i < b->n_sections && rc == 0; i++) {
        struct section *s = &b->sections[i];
        if (i)
            rc |= base_buf_add(out, ",", 1);
        rc |= base_buf_json_string(out, s->name, s->name_len);
        rc |= base_buf_add(out, ":[", 2);
        for (size_t j = 0; j < s->n && rc == 0; j++) {
            struct entry *e = &b->entries[s->first + j];
            if (j)
                rc |= base_buf_add(out, ",\n", 2);
            else
                rc |= base_buf_add(out, "\n", 1);
            rc |= base_buf_add(out, e->slim, e->slim_len);
        }
        rc |= base_buf_add(out, "]", 1);
    }
    char *st = base_json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    if (st == NULL)
        return -ENOMEM;
    rc |= base_buf_adds(out, "},\n\"spec\":");
    rc |= base_buf_adds(out, st);
    rc |= base_buf_adds(out, "}\n");
    free(st);
    return rc ? -ENOMEM : 0;
}

/* ---- output ------------------------------------------------------------- */

static int write_file_at(int dirfd, const char *name, const char *data, size_t len)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = base_write_all(fd, data, len);
    /* No fsync per file: write_version makes the whole version durable
     * with one syncfs before it is renamed into place. */
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

static int fsync_fd(int fd)
{
    return fsync(fd) < 0 ? -errno : 0;
}

static int write_version(struct build *b, int tfd, const base_buf *index)
{
    int rc;
    if (mkdirat(tfd, "bodies", 0755) < 0)
        return -errno;
    int bfd = openat(tfd, "bodies", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0)
        return -errno;
    for (size_t i = 0; i < b->n_sections; i++) {
        struct section *s = &b->sections[i];
        if (mkdirat(bfd, s->name, 0755) < 0) {
            rc = -errno;
            goto out;
        }
        int sfd = openat(bfd, s->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sfd < 0) {
            rc = -errno;
            goto out;
        }
        char name[CATALOG_NAME_MAX + 8];
        for (size_t j = 0; j < s->n; j++) {
            struct entry *e = &b->entries[s->first + j];
            snprintf(name, sizeof(name), "%s.json", e->id);
            rc = write_file_at(sfd, name, b->in + e->off, e->len);
            if (rc < 0) {
                close(sfd);
                goto out;
            }
        }
        close(sfd);
    }
    rc = write_file_at(tfd, "index.json", index->data, index->len);
    /* One syncfs flushes every body, index.json and directory entry of the
     * version to disk: the same guarantee as an fsync of each of the
     * thousand files, which made a build of the ESPHome catalog take
     * seconds. The version is renamed into place only after this. */
    if (rc == 0 && syncfs(tfd) < 0)
        rc = -errno;
out:
    close(bfd);
    return rc;
}

/* Removes every v-* other than `keep` and `prev` (either may be NULL: with
 * both NULL no v-* is touched) and every stale .tmp-* entry. */
static void remove_stale(int dfd, const char *keep, const char *prev, int versions)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    struct dirent *de;
    int removed = 0;
    while ((de = readdir(d)) != NULL) {
        int stale_version = versions && strncmp(de->d_name, "v-", 2) == 0 &&
                            (keep == NULL || strcmp(de->d_name, keep) != 0) &&
                            (prev == NULL || strcmp(de->d_name, prev) != 0);
        if (stale_version || strncmp(de->d_name, ".tmp-", 5) == 0) {
            base_rm_rf(dfd, de->d_name);
            removed = 1;
        }
    }
    closedir(d);
    if (removed)
        fsync(dfd);
}

static int publish(struct build *b, const char *outdir, const char *version, const base_buf *index,
                   int *unchanged)
{
    int rc;
    if (mkdir(outdir, 0755) < 0 && errno != EEXIST)
        return sys_err(b, "mkdir", outdir, -errno);
    int dfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return sys_err(b, "open", outdir, -errno);
    if (flock(dfd, LOCK_EX) < 0) {
        rc = sys_err(b, "flock", outdir, -errno);
        close(dfd);
        return rc;
    }
    char cur[64];
    ssize_t n = readlinkat(dfd, "current", cur, sizeof(cur) - 1);
    struct stat st;
    if (n > 0) {
        cur[n] = '\0';
        if (strcmp(cur, version) == 0 && fstatat(dfd, version, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode)) {
            *unchanged = 1;
            /* which other version was the previous one is not known here:
             * keep them all, sweep only temp entries */
            remove_stale(dfd, NULL, NULL, 0);
            close(dfd);
            return 0;
        }
    }

    /* One random suffix names this build's temp directory, link and the
     * moved-aside old copy: their prefixes tell them apart. */
    char tmp[48], rnd[17];
    if ((rc = base_random_hex(rnd, 8)) < 0) {
        sys_err(b, "getrandom", outdir, rc);
        close(dfd);
        return rc;
    }
    snprintf(tmp, sizeof(tmp), ".tmp-%s", rnd);
    if (mkdirat(dfd, tmp, 0755) < 0) {
        rc = sys_err(b, "mkdir temp directory", outdir, -errno);
        close(dfd);
        return rc;
    }
    int tfd = openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd < 0) {
        rc = sys_err(b, "open temp directory", outdir, -errno);
        goto fail_tmp;
    }
    rc = write_version(b, tfd, index);
    close(tfd);
    if (rc < 0) {
        sys_err(b, "write version", outdir, rc);
        goto fail_tmp;
    }
    int exists = fstatat(dfd, version, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && renameat2(dfd, tmp, dfd, version, RENAME_EXCHANGE) == 0) {
        /* the fresh copy is in place; the old one, now under the temp
         * name, is removed with the other stale entries */
    } else {
        if (exists) {
            /* a file system that cannot exchange: move the old copy aside
             * (removed with the stale entries), then rename */
            char old[48];
            snprintf(old, sizeof(old), ".tmp-old-%s", rnd);
            if (renameat(dfd, version, dfd, old) < 0) {
                rc = sys_err(b, "rename old copy", outdir, -errno);
                goto fail_tmp;
            }
        }
        if (renameat(dfd, tmp, dfd, version) < 0) {
            rc = sys_err(b, "rename version", outdir, -errno);
            goto fail_tmp;
        }
    }
    if ((rc = fsync_fd(dfd)) < 0) {
        sys_err(b, "fsync", outdir, rc);
        goto fail;
    }
    char link[48];
    snprintf(link, sizeof(link), ".tmp-link-%s", rnd);
    if (symlinkat(version, dfd, link) < 0) {
        rc = sys_err(b, "symlink", outdir, -errno);
        goto fail;
    }
    if (renameat(dfd, link, dfd, "current") < 0) {
        rc = sys_err(b, "rename current", outdir, -errno);
        unlinkat(dfd, link, 0);
        goto fail;
    }
    if ((rc = fsync_fd(dfd)) < 0) {
        sys_err(b, "fsync", outdir, rc);
        goto fail;
    }
    remove_stale(dfd, version, n > 0 ? cur : NULL, 1);
    close(dfd);
    return 0;
fail_tmp:
    base_rm_rf(dfd, tmp);
fail:
    close(dfd);
    return rc;
}

int catalog_build(const char *input_path, const char *spec_path, const char *outdir,
                  catalog_build_result *res, char *err, size_t err_size)
{
    struct build b;
    memset(&b, 0, sizeof(b));
    b.err = err;
    b.err_size = err_size;
    if (err != NULL && err_size)
        err[0] = '\0';
    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (input_path == NULL || outdir == NULL) {
        errf(&b, "catalog build: input and output paths are required");
        return -EINVAL;
    }
    int rc;
    void *map = MAP_FAILED;
    json_t *spec = NULL;
    base_buf index = {0};

    int fd = open(input_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(&b, "open", input_path, -errno);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = sys_err(&b, "stat", input_path, -errno);
        close(fd);
        return rc;
    }
    if (st.st_size == 0) {
        close(fd);
        return errf(&b, "input: invalid JSON at line 1 column 1: unexpected end of input");
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return sys_err(&b, "mmap", input_path, -errno);
    madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
    b.in = map;
    b.in_len = (size_t)st.st_size;

    if ((rc = load_spec(&b, spec_path)) < 0)
        goto out;
    if ((rc = scan_input(&b)) < 0)
        goto out;

    spec = effective_spec(&b);
    char spec_hex[65], manifest[65];
    if (spec == NULL || catalog__spec_hash(spec, spec_hex) < 0) {
        errf(&b, "catalog build: out of memory");
        rc = -ENOMEM;
        goto out;
    }
    catalog__manifest m;
    catalog__manifest_init(&m, CATALOG_FORMAT, spec_hex);
    for (size_t i = 0; i < b.n_entries; i++) {
        struct entry *e = &b.entries[i];
        struct section *s = &b.sections[e->section];
        catalog__manifest_add(&m, s->name, s->name_len, e->id, e->id_len, e->hex);
    }
    catalog__manifest_final(&m, manifest);
    char version[20];
    snprintf(version, sizeof(version), "v-%.16s", manifest);
    if ((rc = index_text(&b, manifest, spec, &index)) < 0) {
        errf(&b, "catalog build: out of memory");
        goto out;
    }
    if (index.len > CATALOG__INDEX_MAX_BYTES) {
        rc = errf(&b,
                  "input: the index would be %zu bytes, over the %u bytes a catalog worker loads",
                  index.len, CATALOG__INDEX_MAX_BYTES);
        goto out;
    }
    int unchanged = 0;
    if ((rc = publish(&b, outdir, version, &index, &unchanged)) < 0)
        goto out;
    if (res != NULL) {
        memcpy(res->version, version, sizeof(version));
        memcpy(res->manifest_sha256, manifest, sizeof(manifest));
        res->n_sections = b.n_sections;
        res->n_entries = b.n_entries;
        res->unchanged = unchanged;
    }
out:
    base_buf_free(&index);
    json_decref(spec);
    for (size_t i = 0; i < b.n_entries; i++) {
        free(b.entries[i].id);
        free(b.entries[i].slim);
    }
    free(b.entries);
    for (size_t i = 0; i < b.n_sections; i++)
        free(b.sections[i].name);
    free(b.sections);
    base_htab_free(&b.ids);
    free(b.keys);
    json_decref(b.spec);
    if (map != MAP_FAILED)
        munmap(map, b.in_len);
    return rc;
}
