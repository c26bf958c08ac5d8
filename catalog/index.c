/*
 * The loaded index of one catalog version: its load, lookups by id, and
 * stats (the queries over it are query.c's).
 *
 * Design notes
 * - Layout: every entry's slim JSON sits in one arena (`slim`), byte for
 *   byte as in index.json. Each entry's id and name point into that arena
 *   when their JSON form has no escapes, else into a second arena (`text`)
 *   holding decoded copies. Section names and each section's partition
 *   and search field names are interned once in `text`. Every other field
 *   is read from the slim bytes when a query needs it, so the index is a
 *   handful of allocations whatever the entry count, and
 *   catalog_index_get_info() sums exactly those.
 * - String references are offsets, never pointers, so arenas may move when
 *   they grow or shrink; the top bit of an offset selects the arena.
 * - No jansson tree survives the load: index.json is walked with the
 *   scanner; only the small "spec" member is parsed with jansson, and freed.
 * - Validation reads every body: the manifest is recomputed from the
 *   bytes on disk, which also proves every body is present.
 * - Nothing read from the file is trusted for a size: index.json is at most
 *   CATALOG__INDEX_MAX_BYTES (checked before it is read), every range comes
 *   from the scanner within it, and each slim entry is at most the
 *   max_slim_bytes its spec names (the default when absent), so the index
 *   holds at most that much per entry whatever wrote the file.
 * - The reference count is touched only on the loop thread; the load itself
 *   runs on the thread pool and touches nothing shared.
 */
#include "catalog/internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEXT_BIT CATALOG__TEXT_BIT
#define NONE CATALOG__NONE
typedef catalog__istr istr;
#define sp catalog__sp

/* ---- load ---------------------------------------------------------------- */

struct loader {
    catalog_index *idx;
    const char *text; /* index.json */
    size_t len;
    char *err;
    size_t err_size;
    base_htab itab; /* interns by value, during the load */
    size_t cap_entries;
    size_t max_slim_bytes; /* the spec's, or the default */
    int format;            /* index.json's, which the manifest's header names */
};

/* lerr: base_errf with the version directory in front of the message. */
static int lerr(struct loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int lerr(struct loader *l, const char *fmt, ...)
{
    size_t n = 0;
    va_list ap;

    if (l->err != NULL && l->err_size > 0) {
        base_errf(l->err, l->err_size, "%s: ", l->idx->dir);
        n = strlen(l->err);
    }
    va_start(ap, fmt);
    base_verrf(l->err != NULL ? l->err + n : NULL, l->err_size - n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int text_add(catalog_index *idx, const char *s, size_t len, istr *out)
{
    if (idx->text_len + len > idx->text_cap) {
        size_t cap = idx->text_cap ? idx->text_cap * 2 : 4096;
        while (cap < idx->text_len + len)
            cap *= 2;
        if (cap >= TEXT_BIT)
            return -ENOMEM;
        char *t = realloc(idx->text, cap);
        if (t == NULL)
            return -ENOMEM;
        idx->text = t;
        idx->text_cap = cap;
    }
    memcpy(idx->text + idx->text_len, s, len);
    out->off = TEXT_BIT | (uint32_t)idx->text_len;
    out->len = (uint32_t)len;
    idx->text_len += len;
    return 0;
}

/* A string member's value: raw range [a, z) in the slim arena (quotes included). */
static int str_value(struct loader *l, size_t a, size_t z, istr *out)
{
    catalog_index *idx = l->idx;
    const char *raw = idx->slim + a;
    if (memchr(raw, '\\', z - a) == NULL) {
        out->off = (uint32_t)(a + 1);
        out->len = (uint32_t)(z - a - 2);
        return 0;
    }
    char *tmp = malloc(z - a);
    if (tmp == NULL)
        return -ENOMEM;
    size_t n = base_json_decode(raw, z - a, tmp);
    int rc = text_add(idx, tmp, n, out);
    free(tmp);
    return rc;
}

/* A string to look up: the bytes and their length. */
struct strkey {
    const char *s;
    size_t len;
};

static uint32_t intern_hash(uint32_t i, void *ctx)
{
    const catalog_index *idx = ctx;
    return base_hash(sp(idx, idx->interns[i]), idx->interns[i].len, 0);
}

static bool intern_is(uint32_t i, const void *key, void *ctx)
{
    const catalog_index *idx = ctx;
    const struct strkey *k = key;
    istr x = idx->interns[i];
    return x.len == k->len && memcmp(sp(idx, x), k->s, k->len) == 0;
}

static int intern(struct loader *l, const char *s, size_t len, uint32_t *out)
{
    catalog_index *idx = l->idx;
    struct strkey key = {s, len};
    uint32_t h = base_hash(s, len, 0);
    uint32_t found = base_htab_find(&l->itab, h, intern_is, &key, idx);
    if (found != BASE_HTAB_NONE) {
        *out = found;
        return 0;
    }
    if (idx->n_interns == idx->cap_interns) {
        size_t cap = idx->cap_interns ? idx->cap_interns * 2 : 32;
        istr *n = realloc(idx->interns, cap * sizeof(*n));
        if (n == NULL)
            return -ENOMEM;
        idx->interns = n;
        idx->cap_interns = cap;
    }
    /* interned strings are NUL-terminated so they can be handed out as C strings */
    istr x, nul;
    if (text_add(idx, s, len, &x) < 0 || text_add(idx, "", 1, &nul) < 0)
        return -ENOMEM;
    idx->interns[idx->n_interns] = x;
    if (base_htab_insert(&l->itab, h, (uint32_t)idx->n_interns, intern_hash, idx) < 0)
        return -ENOMEM;
    *out = (uint32_t)idx->n_interns++;
    return 0;
}

static int key_is(const char *raw, size_t raw_len, const char *name)
{
    size_t n = strlen(name);
    if (memchr(raw, '\\', raw_len) == NULL)
        return raw_len == n + 2 && memcmp(raw + 1, name, n) == 0;
    char tmp[256];
    if (raw_len > sizeof(tmp))
        return 0; /* decoded length <= raw length; longer keys are no filter field */
    size_t d = base_json_decode(raw, raw_len, tmp);
    return d == n && memcmp(tmp, name, n) == 0;
}

/* An id to look up in one section. */
struct idkey {
    size_t section;
    const char *id;
    size_t len;
};

static uint32_t entry_hash(uint32_t e, void *ctx)
{
    const catalog_index *idx = ctx;
    const struct catalog__entry *x = &idx->entries[e];
    return base_hash(sp(idx, x->id), x->id.len, x->section);
}

static bool entry_is(uint32_t e, const void *key, void *ctx)
{
    const catalog_index *idx = ctx;
    const struct idkey *k = key;
    const struct catalog__entry *x = &idx->entries[e];
    return x->section == k->section && x->id.len == k->len &&
           memcmp(sp(idx, x->id), k->id, k->len) == 0;
}

static size_t id_lookup(const catalog_index *idx, size_t section, const char *id, size_t len)
{
    struct idkey key = {section, id, len};
    uint32_t e = base_htab_find(&idx->ids, base_hash(id, len, (uint32_t)section), entry_is, &key,
                                (void *)idx);
    return e == BASE_HTAB_NONE ? SIZE_MAX : e;
}

/* 1 when entry e's (section, id) is already in, 0 after adding it. */
static int id_insert(catalog_index *idx, uint32_t e)
{
    struct catalog__entry *n = &idx->entries[e];
    if (id_lookup(idx, n->section, sp(idx, n->id), n->id.len) != SIZE_MAX)
        return 1;
    return base_htab_insert(&idx->ids, entry_hash(e, idx), e, entry_hash, idx);
}

struct sec_fields {
    const char *id_field;
};

static int load_entry(struct loader *l, base_json_scan *sc, size_t si, size_t pos,
                      const char *sname, const struct sec_fields *f)
{
    catalog_index *idx = l->idx;
    if (base_json_scan_peek(sc) != '{')
        return lerr(l, "index.json: %s[%zu]: entry is not an object", sname, pos);
    size_t a, z;
    if (base_json_scan_value(sc, &a, &z) < 0)
        return lerr(l, "index.json: %s[%zu]: invalid JSON: %s", sname, pos, sc->err);
    /* the bytes the arena will hold for it (the compiler's compact slim JSON) */
    if (z - a > l->max_slim_bytes)
        return lerr(l, "index.json: %s[%zu]: slim entry is %zu bytes, over max_slim_bytes %zu",
                    sname, pos, z - a, l->max_slim_bytes);
    if (idx->n_entries == l->cap_entries) {
        size_t cap = l->cap_entries ? l->cap_entries * 2 : 256;
        struct catalog__entry *n = realloc(idx->entries, cap * sizeof(*n));
        if (n == NULL)
            return -ENOMEM;
        idx->entries = n;
        l->cap_entries = cap;
    }
    struct catalog__entry *e = &idx->entries[idx->n_entries];
    memset(e, 0, sizeof(*e));
    e->id.off = e->name.off = NONE;
    e->section = (uint16_t)si;
    e->slim_off = (uint32_t)idx->slim_len;
    e->slim_len = (uint32_t)(z - a);
    memcpy(idx->slim + idx->slim_len, l->text + a, z - a);
    idx->slim_len += z - a;

    /* walk the copy's top-level members; offsets are relative to the arena */
    base_json_scan es;
    base_json_scan_init(&es, idx->slim, idx->slim_len);
    es.pos = e->slim_off + 1;
    int first = 1, rc;
    for (;;) {
        size_t ka, kz, va, vz;
        int more = base_json_scan_member(&es, &first, &ka, &kz);
        if (more <= 0)
            break; /* already validated: only the closing brace */
        if (base_json_scan_value(&es, &va, &vz) < 0)
            break;
        const char *kraw = idx->slim + ka;
        size_t klen = kz - ka;
        int is_str = idx->slim[va] == '"';
        if (key_is(kraw, klen, f->id_field)) {
            if (!is_str)
                return lerr(l, "index.json: %s[%zu]: id is not a string", sname, pos);
            if ((rc = str_value(l, va, vz, &e->id)) < 0)
                return rc;
        } else if (key_is(kraw, klen, "name") && is_str) {
            if ((rc = str_value(l, va, vz, &e->name)) < 0)
                return rc;
        }
        if (key_is(kraw, klen, "section"))
            e->own_section = 1;
    }
    if (e->id.off == NONE)
        return lerr(l, "index.json: %s[%zu]: missing id", sname, pos);
    char why[64], q[80];
    if (catalog__check_name(sp(idx, e->id), e->id.len, why, sizeof(why)) < 0) {
        catalog__quote(sp(idx, e->id), e->id.len, q, sizeof(q));
        return lerr(l, "index.json: %s[%zu]: id %s %s", sname, pos, q, why);
    }
    idx->n_entries++;
    return 0;
}

/* The section's partition field and search fields, as interned names. */
static int section_fields(struct loader *l, struct catalog__section *s, const json_t *ss,
                          const char *name)
{
    static const char *const defaults[] = {"id", "name", "description"};
    catalog_index *idx = l->idx;
    const json_t *pf = json_object_get(ss, "partition_field");
    const json_t *sf = json_object_get(ss, "search_fields");
    size_t n = sf != NULL ? json_array_size(sf) : 3;
    int rc;

    s->partition = NONE;
    if (pf != NULL && !json_is_null(pf)) {
        if (!json_is_string(pf) || json_string_length(pf) == 0)
            return lerr(l, "index.json: spec.sections.%s.partition_field: expected a name", name);
        if ((rc = intern(l, json_string_value(pf), json_string_length(pf), &s->partition)) < 0)
            return rc;
    }
    if (sf != NULL && (!json_is_array(sf) || n > CATALOG__SEARCH_FIELDS_MAX))
        return lerr(l, "index.json: spec.sections.%s.search_fields: expected at most %d names",
                    name, CATALOG__SEARCH_FIELDS_MAX);
    uint32_t *grown = realloc(idx->search, (idx->n_search + n) * sizeof(*grown));
    if (grown == NULL && n > 0)
        return -ENOMEM;
    if (grown != NULL)
        idx->search = grown;
    s->search_first = (uint32_t)idx->n_search;
    s->n_search = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const char *f = sf != NULL ? json_string_value(json_array_get(sf, i)) : defaults[i];
        if (f == NULL || !f[0])
            return lerr(l, "index.json: spec.sections.%s.search_fields[%zu]: expected a name", name,
                        i);
        if ((rc = intern(l, f, strlen(f), &idx->search[idx->n_search++])) < 0)
            return rc;
    }
    return 0;
}

static int load_sections(struct loader *l, size_t a, size_t z, const json_t *spec)
{
    catalog_index *idx = l->idx;
    const json_t *spec_secs = json_object_get(spec, "sections");
    const char *id_field = json_string_value(json_object_get(spec, "id_field"));
    if (!json_is_object(spec_secs) || id_field == NULL)
        return lerr(l, "index.json: spec: missing id_field or sections");
    /* absent: a default build (the compiler writes only another value) */
    const json_t *max = json_object_get(spec, "max_slim_bytes");
    l->max_slim_bytes = CATALOG_MAX_SLIM_BYTES_DEFAULT;
    if (max != NULL) {
        if (!json_is_integer(max) || json_integer_value(max) < 1 ||
            json_integer_value(max) > (json_int_t)CATALOG_MAX_SLIM_BYTES_MAX)
            return lerr(l, "index.json: spec.max_slim_bytes: expected an integer from 1 to %u",
                        CATALOG_MAX_SLIM_BYTES_MAX);
        l->max_slim_bytes = (size_t)json_integer_value(max);
    }
    base_json_scan sc;
    base_json_scan_init(&sc, l->text, z);
    sc.pos = a;
    if (base_json_scan_expect(&sc, '{') < 0)
        return lerr(l, "index.json: sections: expected an object");
    size_t cap_sections = 0;
    int first = 1;
    for (;;) {
        size_t ka, kz;
        int more = base_json_scan_member(&sc, &first, &ka, &kz);
        if (more < 0)
            return lerr(l, "index.json: sections: %s", sc.err);
        if (more == 0)
            break;
        char name[CATALOG_NAME_MAX * 6 + 8];
        if (kz - ka > sizeof(name))
            return lerr(l, "index.json: section name too long");
        size_t nlen = base_json_decode(l->text + ka, kz - ka, name);
        char why[64];
        if (catalog__check_name(name, nlen, why, sizeof(why)) < 0)
            return lerr(l, "index.json: section name %s", why);
        name[nlen] = '\0';
        const json_t *ss = json_object_get(spec_secs, name);
        if (!json_is_object(ss))
            return lerr(l, "index.json: section \"%s\" is not in the spec", name);
        struct sec_fields f = {.id_field = id_field};
        if (idx->n_sections == cap_sections) {
            cap_sections = cap_sections ? cap_sections * 2 : 8;
            struct catalog__section *n = realloc(idx->sections, cap_sections * sizeof(*n));
            if (n == NULL)
                return -ENOMEM;
            idx->sections = n;
        }
        if (idx->n_sections >= UINT16_MAX)
            return lerr(l, "index.json: too many sections");
        struct catalog__section *s = &idx->sections[idx->n_sections];
        s->first = (uint32_t)idx->n_entries;
        s->n = 0;
        int rc = intern(l, name, nlen, &s->name);
        if (rc < 0)
            return rc;
        if ((rc = section_fields(l, s, ss, name)) < 0)
            return rc;
        for (size_t i = 0; i < idx->n_sections; i++)
            if (idx->sections[i].name == s->name)
                return lerr(l, "index.json: duplicate section \"%s\"", name);
        size_t si = idx->n_sections++;
        if (base_json_scan_expect(&sc, '[') < 0)
            return lerr(l, "index.json: section \"%s\": expected an array", name);
        int ef = 1;
        for (size_t pos = 0;; pos++) {
            int el = base_json_scan_element(&sc, &ef);
            if (el < 0)
                return lerr(l, "index.json: %s[%zu]: %s", name, pos, sc.err);
            if (el == 0)
                break;
            if ((rc = load_entry(l, &sc, si, pos, name, &f)) < 0)
                return rc;
            idx->sections[si].n++;
        }
    }
    return 0;
}

static int build_ids(struct loader *l)
{
    catalog_index *idx = l->idx;
    /* Sized once: the table never grows after this. */
    if (base_htab_reserve(&idx->ids, idx->n_entries, entry_hash, idx) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < idx->n_entries; i++) {
        int rc = id_insert(idx, (uint32_t)i);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            struct catalog__entry *e = &idx->entries[i];
            char q[80];
            catalog__quote(sp(idx, e->id), e->id.len, q, sizeof(q));
            return lerr(l, "index.json: duplicate id %s in section \"%.*s\"", q,
                        (int)idx->interns[idx->sections[e->section].name].len,
                        sp(idx, idx->interns[idx->sections[e->section].name]));
        }
    }
    return 0;
}

static int hash_file(int dirfd, const char *name, char *buf, size_t buf_size, char hex[65])
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    catalog__sha256 c;
    catalog__sha256_init(&c);
    for (;;) {
        ssize_t n = read(fd, buf, buf_size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = -errno;
            close(fd);
            return rc;
        }
        if (n == 0)
            break;
        catalog__sha256_update(&c, buf, (size_t)n);
    }
    close(fd);
    uint8_t d[32];
    catalog__sha256_final(&c, d);
    catalog__sha256_hex(d, hex);
    return 0;
}

static int check_manifest(struct loader *l, const json_t *spec)
{
    catalog_index *idx = l->idx;
    char spec_hex[65], hex[65], got[65];
    if (catalog__spec_hash(spec, spec_hex) < 0)
        return -ENOMEM;
    size_t buf_size = 64 * 1024;
    char *buf = malloc(buf_size);
    if (buf == NULL)
        return -ENOMEM;
    catalog__manifest m;
    catalog__manifest_init(&m, l->format, spec_hex);
    int rc = 0;
    int bfd = open(idx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0) {
        rc = lerr(l, "open: %s", strerror(errno));
        goto out;
    }
    for (size_t si = 0; si < idx->n_sections && rc == 0; si++) {
        struct catalog__section *s = &idx->sections[si];
        istr sn = idx->interns[s->name];
        char path[CATALOG_NAME_MAX + 16];
        snprintf(path, sizeof(path), "bodies/%.*s", (int)sn.len, sp(idx, sn));
        int sfd = openat(bfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sfd < 0) {
            rc = lerr(l, "%s: %s", path, strerror(errno));
            break;
        }
        for (uint32_t j = 0; j < s->n; j++) {
            struct catalog__entry *e = &idx->entries[s->first + j];
            char name[CATALOG_NAME_MAX + 8];
            snprintf(name, sizeof(name), "%.*s.json", (int)e->id.len, sp(idx, e->id));
            int r = hash_file(sfd, name, buf, buf_size, hex);
            if (r < 0) {
                rc = lerr(l, "%s/%s: %s", path, name, strerror(-r));
                break;
            }
            catalog__manifest_add(&m, sp(idx, sn), sn.len, sp(idx, e->id), e->id.len, hex);
        }
        close(sfd);
    }
    close(bfd);
    if (rc < 0)
        goto out;
    catalog__manifest_final(&m, got);
    if (strcmp(got, idx->manifest) != 0) {
        rc = lerr(l, "manifest mismatch: index.json says %.16s..., the bodies give %.16s...",
                  idx->manifest, got);
        goto out;
    }
    if (strncmp(idx->version, "v-", 2) == 0 &&
        (strlen(idx->version) != 18 || memcmp(idx->version + 2, got, 16) != 0))
        rc = lerr(l, "directory name does not match the manifest (v-%.16s)", got);
out:
    free(buf);
    return rc;
}

static int shrink(void **p, size_t size)
{
    if (size == 0) {
        free(*p);
        *p = NULL;
        return 0;
    }
    void *n = realloc(*p, size);
    if (n == NULL)
        return -ENOMEM;
    *p = n;
    return 0;
}

int catalog_index_load(const char *version_dir, catalog_index **out, char *err, size_t err_size)
{
    *out = NULL;
    if (err != NULL && err_size)
        err[0] = '\0';
    catalog_index *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return -ENOMEM;
    idx->refs = 1;
    struct loader l = {.idx = idx, .err = err, .err_size = err_size};
    json_t *spec = NULL;
    char *text = NULL;
    int rc;
    /* resolved, so that a load through OUTDIR/current names the version and
     * keeps reading it after `current` flips */
    idx->dir = realpath(version_dir, NULL);
    if (idx->dir == NULL) {
        rc = -errno;
        if (rc != -ENOMEM && err != NULL && err_size)
            snprintf(err, err_size, "%s: %s", version_dir, strerror(errno));
        goto fail;
    }
    const char *base = strrchr(idx->dir, '/');
    snprintf(idx->version, sizeof(idx->version), "%s", base != NULL ? base + 1 : idx->dir);

    int dfd = open(idx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = -errno;
        lerr(&l, "%s", strerror(errno));
        goto fail;
    }
    /* the size is checked before the file is read whole: a huge index.json
     * is refused without being held (the check after the read still counts,
     * as the file may grow in between) */
    struct stat st;
    if (fstatat(dfd, "index.json", &st, 0) == 0 && st.st_size > CATALOG__INDEX_MAX_BYTES) {
        close(dfd);
        rc = lerr(&l, "index.json: too large (%lld bytes, at most %u)", (long long)st.st_size,
                  CATALOG__INDEX_MAX_BYTES);
        goto fail;
    }
    size_t len;
    rc = base_read_file(dfd, "index.json", &text, &len);
    close(dfd);
    if (rc < 0) {
        lerr(&l, "index.json: %s", strerror(-rc));
        goto fail;
    }
    if (len > CATALOG__INDEX_MAX_BYTES) {
        rc = lerr(&l, "index.json: too large (%zu bytes, at most %u)", len,
                  CATALOG__INDEX_MAX_BYTES);
        goto fail;
    }
    l.text = text;
    l.len = len;

    /* top level: record member ranges, then process spec before sections */
    base_json_scan sc;
    base_json_scan_init(&sc, text, len);
    size_t fa = 0, fz = 0, ma = 0, mz = 0, sa = 0, sz = 0, pa = 0, pz = 0;
    if (base_json_scan_expect(&sc, '{') < 0) {
        rc = lerr(&l, "index.json: not a JSON object");
        goto fail;
    }
    int first = 1;
    for (;;) {
        size_t ka, kz, va, vz;
        int more = base_json_scan_member(&sc, &first, &ka, &kz);
        if (more == 0)
            break;
        if (more < 0 || base_json_scan_value(&sc, &va, &vz) < 0) {
            size_t line, col;
            base_json_scan_where(&sc, sc.err_pos, &line, &col);
            rc = lerr(&l, "index.json: invalid JSON at line %zu column %zu: %s", line, col, sc.err);
            goto fail;
        }
        if (key_is(text + ka, kz - ka, "format"))
            fa = va, fz = vz;
        else if (key_is(text + ka, kz - ka, "manifest_sha256"))
            ma = va, mz = vz;
        else if (key_is(text + ka, kz - ka, "sections"))
            sa = va, sz = vz;
        else if (key_is(text + ka, kz - ka, "spec"))
            pa = va, pz = vz;
    }
    if (base_json_scan_end(&sc) < 0) {
        rc = lerr(&l, "index.json: %s", sc.err);
        goto fail;
    }
    if (fz - fa != 1 || text[fa] < '1' || text[fa] > '0' + CATALOG_FORMAT) {
        rc = lerr(&l, "index.json: format: expected 1 to %d", CATALOG_FORMAT);
        goto fail;
    }
    l.format = text[fa] - '0';
    if (mz - ma != 66 || text[ma] != '"' || strspn(text + ma + 1, "0123456789abcdef") < 64) {
        rc = lerr(&l, "index.json: manifest_sha256: expected 64 hex digits");
        goto fail;
    }
    memcpy(idx->manifest, text + ma + 1, 64);
    idx->manifest[64] = '\0';
    if (pz == pa || sz == sa) {
        rc = lerr(&l, "index.json: missing %s", pz == pa ? "spec" : "sections");
        goto fail;
    }
    json_error_t je;
    spec = json_loadb(text + pa, pz - pa, 0, &je);
    if (!json_is_object(spec)) {
        rc = lerr(&l, "index.json: spec: expected an object");
        goto fail;
    }
    idx->slim = malloc(sz - sa);
    if (idx->slim == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = load_sections(&l, sa, sz, spec)) < 0 || (rc = build_ids(&l)) < 0)
        goto fail;
    base_free(text);
    text = NULL;
    base_htab_free(&l.itab);
    if ((rc = check_manifest(&l, spec)) < 0)
        goto fail;
    json_decref(spec);
    spec = NULL;

    if (shrink((void **)&idx->slim, idx->slim_len) < 0 ||
        shrink((void **)&idx->text, idx->text_len) < 0 ||
        shrink((void **)&idx->entries, idx->n_entries * sizeof(*idx->entries)) < 0 ||
        shrink((void **)&idx->interns, idx->n_interns * sizeof(*idx->interns)) < 0) {
        rc = -ENOMEM;
        goto fail;
    }
    idx->text_cap = idx->text_len;
    idx->cap_interns = idx->n_interns;
    idx->bytes = sizeof(*idx) + strlen(idx->dir) + 1 + idx->slim_len + idx->text_len +
                 idx->n_entries * sizeof(*idx->entries) + idx->n_sections * sizeof(*idx->sections) +
                 idx->n_interns * sizeof(*idx->interns) + base_htab_bytes(&idx->ids) +
                 idx->n_search * sizeof(*idx->search);
    /* sections was grown by doubling: trim it too so bytes is exact */
    if (shrink((void **)&idx->sections, idx->n_sections * sizeof(*idx->sections)) < 0) {
        rc = -ENOMEM;
        goto fail;
    }
    *out = idx;
    return 0;
fail:
    if (rc == -ENOMEM && err != NULL && err_size && !err[0])
        snprintf(err, err_size, "%s: out of memory", version_dir);
    base_htab_free(&l.itab);
    base_free(text);
    json_decref(spec);
    catalog_index_free(idx);
    return rc;
}

catalog_index *catalog_index_ref(catalog_index *idx)
{
    if (idx != NULL)
        idx->refs++;
    return idx;
}

void catalog_index_free(catalog_index *idx)
{
    if (idx == NULL || --idx->refs > 0)
        return;
    free(idx->dir);
    free(idx->slim);
    free(idx->text);
    free(idx->entries);
    free(idx->sections);
    free(idx->interns);
    free(idx->search);
    for (size_t i = 0; i < idx->n_columns; i++) {
        free(idx->columns[i].path);
        free(idx->columns[i].at);
    }
    base_htab_free(&idx->ids);
    free(idx);
}

catalog_index_info catalog_index_get_info(const catalog_index *idx)
{
    return (catalog_index_info){
        .version = idx->version,
        .dir = idx->dir,
        .manifest = idx->manifest,
        .n_entries = idx->n_entries,
        .n_sections = idx->n_sections,
        .heap_bytes = idx->bytes + idx->column_bytes,
    };
}

static istr section_name(const catalog_index *idx, size_t i)
{
    return idx->interns[idx->sections[i].name];
}

const char *catalog_index_section_name(const catalog_index *idx, size_t i)
{
    if (i >= idx->n_sections)
        return NULL;
    return sp(idx, section_name(idx, i)); /* interned: NUL-terminated */
}

const char *catalog_index_entry_slim(const catalog_index *idx, size_t entry, size_t *len)
{
    if (entry >= idx->n_entries)
        return NULL;
    *len = idx->entries[entry].slim_len;
    return idx->slim + idx->entries[entry].slim_off;
}

/* ---- queries ------------------------------------------------------------- */

/* qerr: the message for a person, and the query's own error code. */
#define qerr(err, err_size, rc, ...) (base_errf((err), (err_size), __VA_ARGS__), (rc))

/* Section number range [*lo, *hi) for a section name (NULL: all). */
int catalog__section_range(const catalog_index *idx, const char *section, size_t *lo, size_t *hi,
                           char *err, size_t err_size)
{
    if (section == NULL) {
        *lo = 0;
        *hi = idx->n_sections;
        return 0;
    }
    size_t n = strlen(section);
    for (size_t i = 0; i < idx->n_sections; i++) {
        istr s = section_name(idx, i);
        if (s.len == n && memcmp(sp(idx, s), section, n) == 0) {
            *lo = i;
            *hi = i + 1;
            return 0;
        }
    }
    char q[80];
    catalog__quote(section, n, q, sizeof(q));
    return qerr(err, err_size, -ENOENT, "no section %s", q);
}

int catalog_index_stats(const catalog_index *idx, base_buf *out)
{
    int rc = base_buf_add(out, "{\"version\":", 11);
    rc |= base_buf_json_string(out, idx->version, strlen(idx->version));
    rc |= base_buf_addf(out, ",\"entries\":%zu,\"index_bytes\":%zu,\"sections\":{", idx->n_entries,
                        idx->bytes + idx->column_bytes);
    for (size_t i = 0; i < idx->n_sections && rc == 0; i++) {
        istr s = section_name(idx, i);
        if (i)
            rc |= base_buf_add(out, ",", 1);
        rc |= base_buf_json_string(out, sp(idx, s), s.len);
        rc |= base_buf_addf(out, ":%u", idx->sections[i].n);
    }
    if (rc == 0)
        rc = base_buf_add(out, "}}", 2);
    return rc ? -ENOMEM : 0;
}

int catalog_index_find(const catalog_index *idx, const char *section, const char *id, size_t *entry,
                       char *err, size_t err_size)
{
    size_t lo, hi;
    int rc = catalog__section_range(idx, section, &lo, &hi, err, err_size);
    if (rc < 0)
        return rc;
    size_t len = strlen(id), found = SIZE_MAX, n_found = 0;
    char names[256] = "";
    for (size_t si = lo; si < hi; si++) {
        size_t e = id_lookup(idx, si, id, len);
        if (e == SIZE_MAX)
            continue;
        if (n_found++ == 0)
            found = e;
        istr s = section_name(idx, si);
        size_t used = strlen(names);
        snprintf(names + used, sizeof(names) - used, "%s%.*s", used ? ", " : "", (int)s.len,
                 sp(idx, s));
    }
    char q[80];
    catalog__quote(id, len, q, sizeof(q));
    if (n_found == 0)
        return qerr(err, err_size, -ENOENT, "no entry with id %s", q);
    if (n_found > 1)
        return qerr(err, err_size, -ENOTUNIQ, "id %s is in several sections (%s): give a section",
                    q, names);
    *entry = found;
    return 0;
}

int catalog_index_body_path(const catalog_index *idx, size_t entry, char *out, size_t out_size)
{
    if (entry >= idx->n_entries)
        return -ERANGE;
    const struct catalog__entry *e = &idx->entries[entry];
    istr s = section_name(idx, e->section);
    int n = snprintf(out, out_size, "%s/bodies/%.*s/%.*s.json", idx->dir, (int)s.len, sp(idx, s),
                     (int)e->id.len, sp(idx, e->id));
    if (n < 0 || (size_t)n >= out_size)
        return -ENAMETOOLONG;
    return 0;
}
