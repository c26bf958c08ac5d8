/*
 * Queries over a loaded index: list and search with where/any clauses,
 * search text, order and facets, and the categories/domains counts.
 *
 * Design notes
 * - A query is compiled once from its request (the jansson values of the
 *   request itself, never of entries) into a plan: field paths, clause
 *   trees of value matchers, search terms, sort keys, facet fields. Then
 *   one pass over the entries of the sections asked for evaluates it.
 * - A field's values come from its column: the first query that names the
 *   field walks every slim entry once and keeps, per entry, the offset and
 *   length of its value (index.c's `columns`, at most CATALOG__COLUMNS_MAX
 *   fields, least recently used replaced, 8 bytes an entry, counted in
 *   heap_bytes). A walk of an entry's top-level members (value.c skips
 *   values without parsing them) stops once every field it looks for is
 *   settled; it serves a field without a column (a query naming more
 *   fields than there are columns). No tree is built, nothing is allocated
 *   per entry. Clauses compare the raw bytes: strings by code point with
 *   escapes decoded on the fly, numbers exactly by decimal value, so a
 *   20-digit integer stays itself.
 * - Search: an entry's search fields are folded end to end (NUL between
 *   them: no term holds one) and each term is looked for once, by its
 *   rarest byte; memmem's set-up cost more than the search on such texts.
 * - What a query allocates: the plan (about 14 KiB, bounded by the
 *   request), the page it returns (offset + limit entries: their numbers,
 *   or with an order their sort keys), the folded text of one entry's
 *   search fields (bounded by max_slim_bytes), and one counter per
 *   distinct facet value. Nothing is in proportion to the catalog, and
 *   all of it is freed before the call returns; a new column is the one
 *   thing a query leaves behind.
 * - Facets: per facet field, the entries that pass every clause except
 *   those on that field (and `any` and the search text) count each of the
 *   field's values: the sidebar counts of a faceted search. So with facets
 *   every clause is evaluated (a bit mask), without them evaluation stops
 *   at the first false clause.
 * - Paging keeps only offset + limit candidates: in index order the first
 *   ones that match, in another order a bounded max-heap of the best, with
 *   the entry number as the last key (ties in input order) so the order is
 *   total and a page never depends on the heap's history.
 */
#include "catalog/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATHS 48
#define MAX_SEGS 8
#define MAX_CLAUSES 64
#define MAX_GROUPS 16
#define MAX_NODES 1024
#define MAX_DEPTH 16
#define MAX_TERMS 32
#define MAX_SORT 4
#define MAX_FACETS 16
#define MAX_FIRST 64

#define qerr(err, err_size, rc, ...) (base_errf((err), (err_size), __VA_ARGS__), (rc))

typedef catalog__raw raw;

static const raw missing = {NULL, 0};

struct path {
    const char *text; /* as the request spells it (borrowed) */
    size_t len;
    const char *seg[MAX_SEGS];
    size_t seg_len[MAX_SEGS];
    int n_seg;
    int partition;      /* the section's partition field, whatever its name */
    const char *origin; /* "where", "order", ...: checked to exist; NULL: not */
    int seen;           /* some entry of the range has it */
};

enum node_kind { N_STR, N_NUM, N_LIT, N_ANY, N_NOT, N_EMPTY_OR };

struct node {
    uint8_t kind;
    uint8_t fold;
    uint16_t n_kids;
    uint32_t kid; /* first child; a node's children are contiguous */
    size_t off;   /* its text in plan->text: string (folded when fold), number, literal */
    size_t len;
};

struct clause {
    uint16_t path;
    uint16_t group; /* 0: where (must hold), g: any group g-1 */
    uint32_t node;
};

struct sort_key {
    uint16_t path;
    uint8_t desc, fold;
    uint32_t first; /* a N_ANY node of the `first` values, or NONE */
};

/* A candidate for the page: its entry, and what it sorts by. */
struct cand {
    uint32_t entry;
    uint8_t tier;
    uint8_t first[MAX_SORT];
    raw key[MAX_SORT];
};

struct fcount {
    const char *s; /* the value's text: a string decoded, other values as written */
    uint32_t len;
    uint32_t count;
    uint8_t owned; /* s was decoded into its own allocation */
};

struct facet {
    uint16_t path;
    uint64_t exclude; /* clauses on this facet's field */
    struct fcount *slots;
    size_t n, cap;
};

struct plan {
    const catalog_index *idx;
    size_t lo, hi; /* sections */
    struct path paths[MAX_PATHS];
    size_t n_paths;
    struct node *nodes;
    size_t n_nodes, cap_nodes;
    base_buf text; /* node texts, the folded search text */
    struct clause clauses[MAX_CLAUSES];
    size_t n_clauses;
    size_t n_groups;
    uint64_t where_mask, group_mask[MAX_GROUPS];
    /* search */
    int search;
    size_t q_off, q_len; /* the folded text, trimmed (ranking) */
    size_t term_off[MAX_TERMS], term_len[MAX_TERMS], term_anchor[MAX_TERMS];
    size_t q_anchor;
    size_t n_terms;
    int phrase;
    /* order */
    enum { ORDER_INDEX, ORDER_RELEVANCE, ORDER_KEYS } order;
    struct sort_key keys[MAX_SORT];
    size_t n_keys;
    /* facets */
    struct facet facets[MAX_FACETS];
    size_t n_facets;
    int strings_only; /* categories/domains: count string values only */
    /* evaluation scratch */
    uint16_t search_paths[CATALOG__SEARCH_FIELDS_MAX];
    size_t n_search_paths;
    int16_t col[MAX_PATHS]; /* each path's column in the index, -1: walked */
    uint64_t walk;          /* the paths walked */
    char *fold_buf, *decode_buf;
    size_t fold_cap, decode_cap;
    char err_field[80];
};

static const char *ptext(const struct plan *p, size_t off)
{
    return p->text.data + off;
}

/* ---- compiling the request ------------------------------------------------ */

static int add_text(struct plan *p, const char *s, size_t len, size_t *off)
{
    *off = p->text.len;
    if (base_buf_add(&p->text, s, len) < 0 || base_buf_add(&p->text, "", 1) < 0)
        return -ENOMEM;
    p->text.len--; /* the NUL is kept past len */
    return 0;
}

static int add_folded(struct plan *p, const char *s, size_t len, size_t *off, size_t *out_len)
{
    if (base_buf_reserve(&p->text, BASE_FOLD_MAX(len) + 1) < 0)
        return -ENOMEM;
    *off = p->text.len;
    *out_len = base_fold_utf8(s, len, p->text.data + p->text.len);
    p->text.len += *out_len;
    p->text.data[p->text.len] = '\0';
    return 0;
}

/* Finds or adds a path; `origin` marks it as one that must exist. */
static int add_path(struct plan *p, const char *text, size_t len, int partition, const char *origin,
                    uint16_t *out, char *err, size_t err_size)
{
    for (size_t i = 0; i < p->n_paths; i++) {
        struct path *x = &p->paths[i];
        if (x->partition == partition && x->len == len && memcmp(x->text, text, len) == 0) {
            if (x->origin == NULL)
                x->origin = origin;
            *out = (uint16_t)i;
            return 0;
        }
    }
    if (p->n_paths == MAX_PATHS)
        return qerr(err, err_size, -EINVAL, "%s: more than %d fields in one query", origin,
                    MAX_PATHS);
    struct path *x = &p->paths[p->n_paths];
    memset(x, 0, sizeof(*x));
    x->text = text;
    x->len = len;
    x->partition = partition;
    x->origin = origin;
    if (!partition) {
        const char *s = text, *end = text + len;
        while (s <= end) {
            const char *dot = memchr(s, '.', (size_t)(end - s));
            if (dot == NULL)
                dot = end;
            if (dot == s || x->n_seg == MAX_SEGS)
                return qerr(err, err_size, -EINVAL,
                            "%s: \"%.*s\" is not a field path (names joined by dots, at most %d)",
                            origin != NULL ? origin : "field", (int)(len > 64 ? 64 : len), text,
                            MAX_SEGS);
            x->seg[x->n_seg] = s;
            x->seg_len[x->n_seg++] = (size_t)(dot - s);
            s = dot + 1;
        }
    }
    *out = (uint16_t)p->n_paths++;
    return 0;
}

static int new_nodes(struct plan *p, size_t n, uint32_t *first, char *err, size_t err_size)
{
    if (p->n_nodes + n > MAX_NODES)
        return qerr(err, err_size, -EINVAL, "%s: more than %d values in one query", p->err_field,
                    MAX_NODES);
    if (p->n_nodes + n > p->cap_nodes) {
        size_t cap = p->cap_nodes ? p->cap_nodes * 2 : 32;
        while (cap < p->n_nodes + n)
            cap *= 2;
        struct node *g = realloc(p->nodes, cap * sizeof(*g));
        if (g == NULL)
            return -ENOMEM;
        p->nodes = g;
        p->cap_nodes = cap;
    }
    *first = (uint32_t)p->n_nodes;
    memset(p->nodes + p->n_nodes, 0, n * sizeof(*p->nodes));
    p->n_nodes += n;
    return 0;
}

static const char *const operators = "{\"not\": V}, {\"empty_or\": V} or {\"fold\": V}";

/* Compiles a matcher: a scalar, an array (any of), or an operator object. */
static int compile_value(struct plan *p, const json_t *v, int fold, int depth, uint32_t at,
                         char *err, size_t err_size)
{
    struct node *n = &p->nodes[at];
    int rc;
    if (depth > MAX_DEPTH)
        return qerr(err, err_size, -EINVAL, "%s: nested more than %d deep", p->err_field,
                    MAX_DEPTH);
    n->fold = (uint8_t)fold;
    switch (json_typeof(v)) {
    case JSON_STRING:
        n->kind = N_STR;
        if (fold)
            return add_folded(p, json_string_value(v), json_string_length(v), &p->nodes[at].off,
                              &p->nodes[at].len);
        p->nodes[at].len = json_string_length(v);
        return add_text(p, json_string_value(v), json_string_length(v), &p->nodes[at].off);
    case JSON_INTEGER:
    case JSON_REAL: {
        char num[64];
        int len = 0;
        if (json_is_integer(v)) {
            len = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        } else {
            /* the shortest text that reads back as the same double: 15e299
             * is 1.5e+300, not 1.5000000000000001e+300 */
            for (int prec = 1; prec <= 17; prec++) {
                len = snprintf(num, sizeof(num), "%.*g", prec, json_real_value(v));
                if (strtod(num, NULL) == json_real_value(v))
                    break;
            }
        }
        n->kind = N_NUM;
        n->len = (size_t)len;
        return add_text(p, num, (size_t)len, &p->nodes[at].off);
    }
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL: {
        const char *lit = json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null";
        n->kind = N_LIT;
        n->len = strlen(lit);
        return add_text(p, lit, n->len, &p->nodes[at].off);
    }
    case JSON_ARRAY: {
        size_t k = json_array_size(v);
        uint32_t first;
        if (k == 0)
            return qerr(err, err_size, -EINVAL, "%s: an empty array matches nothing", p->err_field);
        if ((rc = new_nodes(p, k, &first, err, err_size)) < 0)
            return rc;
        p->nodes[at].kind = N_ANY;
        p->nodes[at].kid = first;
        p->nodes[at].n_kids = (uint16_t)k;
        for (size_t i = 0; i < k; i++)
            if ((rc = compile_value(p, json_array_get(v, i), fold, depth + 1, first + (uint32_t)i,
                                    err, err_size)) < 0)
                return rc;
        return 0;
    }
    case JSON_OBJECT: {
        const char *op =
            json_object_size(v) == 1 ? json_object_iter_key(json_object_iter((json_t *)v)) : NULL;
        const json_t *arg = op != NULL ? json_object_get(v, op) : NULL;
        if (op != NULL && strcmp(op, "fold") == 0)
            return compile_value(p, arg, 1, depth + 1, at, err, err_size);
        if (op == NULL || (strcmp(op, "not") != 0 && strcmp(op, "empty_or") != 0))
            return qerr(err, err_size, -EINVAL,
                        "%s: an object is an operator: expected %s, with one key", p->err_field,
                        operators);
        uint32_t kid;
        if ((rc = new_nodes(p, 1, &kid, err, err_size)) < 0)
            return rc;
        p->nodes[at].kind = strcmp(op, "not") == 0 ? N_NOT : N_EMPTY_OR;
        p->nodes[at].kid = kid;
        p->nodes[at].n_kids = 1;
        return compile_value(p, arg, fold, depth + 1, kid, err, err_size);
    }
    }
    return qerr(err, err_size, -EINVAL, "%s: unexpected value", p->err_field);
}

static int add_clause(struct plan *p, const char *field, int partition, const json_t *v,
                      size_t group, const char *origin, char *err, size_t err_size)
{
    struct clause *c;
    int rc;
    if (p->n_clauses == MAX_CLAUSES)
        return qerr(err, err_size, -EINVAL, "%s: more than %d clauses in one query", origin,
                    MAX_CLAUSES);
    c = &p->clauses[p->n_clauses];
    c->group = (uint16_t)group;
    if ((rc = add_path(p, field, strlen(field), partition, partition ? NULL : origin, &c->path, err,
                       err_size)) < 0)
        return rc;
    snprintf(p->err_field, sizeof(p->err_field), "%s.%.60s", origin, field);
    if ((rc = new_nodes(p, 1, &c->node, err, err_size)) < 0 ||
        (rc = compile_value(p, v, 0, 0, c->node, err, err_size)) < 0)
        return rc;
    uint64_t bit = (uint64_t)1 << p->n_clauses++;
    if (group == 0)
        p->where_mask |= bit;
    else
        p->group_mask[group - 1] |= bit;
    return 0;
}

static int add_where(struct plan *p, const json_t *where, size_t group, const char *origin,
                     char *err, size_t err_size)
{
    const char *key;
    const json_t *v;
    if (!json_is_object(where))
        return qerr(err, err_size, -EINVAL, "%s: expected an object of field: value clauses",
                    origin);
    json_object_foreach((json_t *)where, key, v)
    {
        int rc = add_clause(p, key, 0, v, group, origin, err, err_size);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* How common a byte is in text (26 most common ... 0 rare): a term is
 * looked for by its rarest byte, so memchr stops at few false starts. */
static int commonness(unsigned char c)
{
    static const char order[] = "etaoinshrdlcumwfgypbvkjxqz";
    const char *x = c >= 'a' && c <= 'z' ? strchr(order, c) : NULL;
    return x != NULL ? 26 - (int)(x - order) : c == ' ' ? 27 : 0;
}

static size_t anchor_of(const char *t, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (commonness((unsigned char)t[i]) < commonness((unsigned char)t[best]))
            best = i;
    return best;
}

/* Whether h holds the term n (nn bytes), found through its byte at k. */
static int contains(const char *h, size_t hn, const char *n, size_t nn, size_t k)
{
    if (nn > hn)
        return 0;
    const char *p = h + k, *end = h + (hn - nn) + k + 1;
    while (p < end) {
        const char *c = memchr(p, n[k], (size_t)(end - p));
        if (c == NULL)
            return 0;
        if (memcmp(c - k, n, nn) == 0)
            return 1;
        p = c + 1;
    }
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int compile_search(struct plan *p, const catalog_query *q, int required, char *err,
                          size_t err_size)
{
    const char *s = q->q != NULL ? q->q : "";
    size_t len = strlen(s);
    while (len > 0 && is_space(s[len - 1]))
        len--;
    while (len > 0 && is_space(*s))
        s++, len--;
    if (len == 0) {
        if (required)
            return qerr(err, err_size, -EINVAL, "q: expected a non-empty search text");
        return 0; /* an empty search box lists everything */
    }
    int rc = add_folded(p, s, len, &p->q_off, &p->q_len);
    if (rc < 0)
        return rc;
    p->search = 1;
    p->phrase = q->phrase;
    p->q_anchor = anchor_of(ptext(p, p->q_off), p->q_len);
    if (p->phrase) {
        p->term_off[0] = p->q_off;
        p->term_len[0] = p->q_len;
        p->term_anchor[0] = p->q_anchor;
        p->n_terms = 1;
        return 0;
    }
    const char *t = ptext(p, p->q_off), *end = t + p->q_len;
    while (t < end) {
        while (t < end && is_space(*t))
            t++;
        const char *z = t;
        while (z < end && !is_space(*z))
            z++;
        if (z == t)
            break;
        if (p->n_terms == MAX_TERMS)
            return qerr(err, err_size, -EINVAL, "q: more than %d terms", MAX_TERMS);
        p->term_off[p->n_terms] = (size_t)(t - p->text.data);
        p->term_anchor[p->n_terms] = anchor_of(t, (size_t)(z - t));
        p->term_len[p->n_terms++] = (size_t)(z - t);
        t = z;
    }
    return 0;
}

static int compile_order(struct plan *p, const json_t *order, char *err, size_t err_size)
{
    p->order = p->search ? ORDER_RELEVANCE : ORDER_INDEX;
    if (order == NULL || json_is_null(order))
        return 0;
    if (json_is_string(order)) {
        const char *o = json_string_value(order);
        if (strcmp(o, "index") == 0) {
            p->order = ORDER_INDEX;
        } else if (strcmp(o, "relevance") == 0) {
            if (!p->search)
                return qerr(err, err_size, -EINVAL, "order: \"relevance\" needs a search text (q)");
            p->order = ORDER_RELEVANCE;
        } else {
            return qerr(err, err_size, -EINVAL,
                        "order: \"%.64s\": expected \"index\", \"relevance\" or an array of sort "
                        "keys",
                        o);
        }
        return 0;
    }
    if (!json_is_array(order) || json_array_size(order) == 0 || json_array_size(order) > MAX_SORT)
        return qerr(err, err_size, -EINVAL,
                    "order: expected \"index\", \"relevance\" or 1 to %d sort keys "
                    "[{\"field\": F, \"desc\"?: true, \"fold\"?: true, \"first\"?: [values]}]",
                    MAX_SORT);
    p->order = ORDER_KEYS;
    size_t i;
    const json_t *k;
    json_array_foreach(order, i, k)
    {
        struct sort_key *sk = &p->keys[p->n_keys];
        const char *name;
        const json_t *v;
        const char *field = NULL;
        sk->first = CATALOG__NONE;
        if (!json_is_object(k))
            return qerr(err, err_size, -EINVAL, "order[%zu]: expected {\"field\": F, ...}", i);
        json_object_foreach((json_t *)k, name, v)
        {
            if (strcmp(name, "field") == 0 && json_is_string(v) && json_string_length(v) > 0) {
                field = json_string_value(v);
            } else if (strcmp(name, "desc") == 0 && json_is_boolean(v)) {
                sk->desc = json_is_true(v);
            } else if (strcmp(name, "fold") == 0 && json_is_boolean(v)) {
                sk->fold = json_is_true(v);
            } else if (strcmp(name, "first") == 0 && json_is_array(v) && json_array_size(v) > 0 &&
                       json_array_size(v) <= MAX_FIRST) {
                int rc;
                snprintf(p->err_field, sizeof(p->err_field), "order[%zu].first", i);
                if ((rc = new_nodes(p, 1, &sk->first, err, err_size)) < 0 ||
                    (rc = compile_value(p, v, 0, 0, sk->first, err, err_size)) < 0)
                    return rc;
            } else {
                return qerr(err, err_size, -EINVAL,
                            "order[%zu].%.32s: expected field (a name), desc or fold (booleans) "
                            "or first (1 to %d values)",
                            i, name, MAX_FIRST);
            }
        }
        if (field == NULL)
            return qerr(err, err_size, -EINVAL, "order[%zu]: field: required", i);
        int rc = add_path(p, field, strlen(field), 0, "order", &sk->path, err, err_size);
        if (rc < 0)
            return rc;
        p->n_keys++;
    }
    return 0;
}

static int compile_facets(struct plan *p, const json_t *facets, char *err, size_t err_size)
{
    if (facets == NULL || json_is_null(facets))
        return 0;
    if (!json_is_array(facets) || json_array_size(facets) > MAX_FACETS)
        return qerr(err, err_size, -EINVAL, "facets: expected an array of at most %d field names",
                    MAX_FACETS);
    size_t i;
    const json_t *f;
    json_array_foreach(facets, i, f)
    {
        if (!json_is_string(f) || json_string_length(f) == 0)
            return qerr(err, err_size, -EINVAL, "facets[%zu]: expected a field name", i);
        struct facet *fc = &p->facets[p->n_facets];
        memset(fc, 0, sizeof(*fc));
        int rc = add_path(p, json_string_value(f), json_string_length(f), 0, "facets", &fc->path,
                          err, err_size);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < p->n_facets; j++)
            if (p->facets[j].path == fc->path)
                return qerr(err, err_size, -EINVAL, "facets[%zu]: \"%.64s\" is listed twice", i,
                            json_string_value(f));
        /* the facet's own clauses are left out of its counts (where only:
         * `any` always holds) */
        for (size_t c = 0; c < p->n_clauses; c++)
            if (p->clauses[c].group == 0 && p->clauses[c].path == fc->path)
                fc->exclude |= (uint64_t)1 << c;
        p->n_facets++;
    }
    return 0;
}

/* The partition field's name when every section of the range has the same one. */
static const catalog__istr *common_partition(const struct plan *p)
{
    const catalog_index *idx = p->idx;
    uint32_t name = CATALOG__NONE;
    for (size_t s = p->lo; s < p->hi; s++) {
        uint32_t n = idx->sections[s].partition;
        if (n == CATALOG__NONE || (name != CATALOG__NONE && n != name))
            return NULL;
        name = n;
    }
    return name == CATALOG__NONE ? NULL : &idx->interns[name];
}

static int compile(struct plan *p, const catalog_index *idx, const catalog_query *q, int search,
                   char *err, size_t err_size)
{
    int rc;
    p->idx = idx;
    if ((rc = catalog__section_range(idx, q->section, &p->lo, &p->hi, err, err_size)) < 0)
        return rc;
    if (q->category != NULL) {
        json_t *v = json_string(q->category);
        rc = v != NULL ? add_clause(p, "category", 0, v, 0, "category", err, err_size) : -ENOMEM;
        json_decref(v);
        if (rc < 0)
            return rc;
        p->paths[p->clauses[p->n_clauses - 1].path].origin = NULL; /* lenient, as ever */
    }
    if (q->domain != NULL) {
        json_t *v = json_string(q->domain);
        rc = v != NULL ? add_clause(p, "", 1, v, 0, "domain", err, err_size) : -ENOMEM;
        json_decref(v);
        if (rc < 0)
            return rc;
    }
    if (q->where != NULL && (rc = add_where(p, q->where, 0, "where", err, err_size)) < 0)
        return rc;
    if (q->any != NULL) {
        if (!json_is_array(q->any) || json_array_size(q->any) == 0 ||
            json_array_size(q->any) > MAX_GROUPS)
            return qerr(err, err_size, -EINVAL, "any: expected 1 to %d where objects", MAX_GROUPS);
        for (size_t g = 0; g < json_array_size(q->any); g++) {
            if ((rc = add_where(p, json_array_get(q->any, g), g + 1, "any", err, err_size)) < 0)
                return rc;
            if (p->group_mask[g] == 0)
                return qerr(err, err_size, -EINVAL, "any[%zu]: an empty object", g);
        }
        p->n_groups = json_array_size(q->any);
    }
    if ((rc = compile_search(p, q, search, err, err_size)) < 0)
        return rc;
    if (p->search) {
        /* every section's search fields, as paths (not checked: a section
         * may lack one) */
        for (size_t s = p->lo; s < p->hi; s++) {
            const struct catalog__section *sec = &idx->sections[s];
            for (uint32_t i = 0; i < sec->n_search; i++) {
                catalog__istr name = idx->interns[idx->search[sec->search_first + i]];
                uint16_t pi;
                if ((rc = add_path(p, catalog__sp(idx, name), name.len, 0, NULL, &pi, err,
                                   err_size)) < 0)
                    return rc;
            }
        }
    }
    if ((rc = compile_order(p, q->order, err, err_size)) < 0)
        return rc;
    if ((rc = compile_facets(p, q->facets, err, err_size)) < 0)
        return rc;
    /* a facet on the partition field's name leaves the domain shorthand out */
    const catalog__istr *pn = common_partition(p);
    for (size_t f = 0; f < p->n_facets && pn != NULL; f++) {
        const struct path *fp = &p->paths[p->facets[f].path];
        if (fp->len != pn->len || memcmp(fp->text, catalog__sp(idx, *pn), pn->len) != 0)
            continue;
        for (size_t c = 0; c < p->n_clauses; c++)
            if (p->clauses[c].group == 0 && p->paths[p->clauses[c].path].partition)
                p->facets[f].exclude |= (uint64_t)1 << c;
    }
    return 0;
}

/* ---- evaluation ------------------------------------------------------------ */

/* Descends from a member's value along the path's remaining segments. */
static raw descend(raw v, const struct path *x)
{
    for (int s = 1; s < x->n_seg; s++) {
        if (v.p[0] != '{')
            return missing;
        catalog__iter it;
        raw k, c;
        raw found = missing;
        catalog__iter_init(&it, v.p, v.len);
        while (catalog__obj_next(&it, &k, &c))
            if (catalog__key_is(k, x->seg[s], x->seg_len[s])) {
                found = c;
                break;
            }
        if (found.p == NULL)
            return missing;
        v = found;
    }
    return v;
}

/* Every path's value in entry e: one walk of its top-level members, which
 * stops once every path is settled (found, or its member was found and
 * the path descends to nothing). Member names are compared as raw bytes
 * unless the name has an escape. */
static void resolve(struct plan *p, const struct catalog__entry *e, const catalog__istr *partition,
                    uint64_t open, raw *vals)
{
    const catalog_index *idx = p->idx;
    for (size_t i = 0; i < p->n_paths; i++)
        if (open & ((uint64_t)1 << i))
            vals[i] = missing;
    if (open == 0)
        return;
    catalog__iter it;
    raw k, v;
    catalog__iter_init(&it, idx->slim + e->slim_off, e->slim_len);
    while (open != 0 && catalog__obj_next(&it, &k, &v)) {
        const char *kn = k.p + 1;
        size_t kl = k.len - 2;
        int esc = memchr(kn, '\\', kl) != NULL;
        for (size_t i = 0; i < p->n_paths; i++) {
            const struct path *x = &p->paths[i];
            const char *name = x->seg[0];
            size_t len = x->seg_len[0];
            if (!(open & ((uint64_t)1 << i)))
                continue;
            if (x->partition) {
                if (partition == NULL)
                    continue;
                name = catalog__sp(idx, *partition);
                len = partition->len;
            }
            if (esc ? !catalog__key_is(k, name, len) : kl != len || memcmp(kn, name, len) != 0)
                continue;
            vals[i] = x->partition || x->n_seg == 1 ? v : descend(v, x);
            open &= ~((uint64_t)1 << i);
        }
    }
}

static const catalog__istr *section_partition(const catalog_index *idx, size_t s)
{
    uint32_t n = idx->sections[s].partition;
    return n != CATALOG__NONE ? &idx->interns[n] : NULL;
}

static void drop_column(catalog_index *idx, struct catalog__column *c)
{
    if (c->path != NULL) /* not a slot a failed allocation left empty */
        idx->column_bytes -= idx->n_entries * sizeof(*c->at) + c->path_len + 1;
    free(c->path);
    free(c->at);
    memset(c, 0, sizeof(*c));
}

/*
 * Gives each path of the plan its column: one kept from an earlier query,
 * or one built now (every new one in a single walk of every entry). A path
 * that gets none (the columns are all in use by this query, or memory ran
 * out) is walked entry by entry as before: p->walk has its bit.
 */
static void prepare_columns(struct plan *p)
{
    catalog_index *idx = (catalog_index *)p->idx; /* the column cache only */
    uint64_t tick = ++idx->queries, build = 0;
    p->walk = 0;
    for (size_t i = 0; i < p->n_paths; i++) {
        const struct path *x = &p->paths[i];
        struct catalog__column *c = NULL;
        p->col[i] = -1;
        for (size_t k = 0; k < idx->n_columns && c == NULL; k++) {
            struct catalog__column *y = &idx->columns[k];
            if (y->partition == x->partition && y->path_len == x->len &&
                memcmp(y->path, x->text, x->len) == 0)
                c = y;
        }
        if (c == NULL) {
            if (idx->n_columns < CATALOG__COLUMNS_MAX) {
                c = &idx->columns[idx->n_columns++];
                memset(c, 0, sizeof(*c));
            } else {
                for (size_t k = 0; k < idx->n_columns; k++) {
                    struct catalog__column *y = &idx->columns[k];
                    if (y->used != tick && (c == NULL || y->used < c->used))
                        c = y;
                }
                if (c != NULL)
                    drop_column(idx, c);
            }
            if (c != NULL) {
                c->path = malloc(x->len + 1);
                c->at = idx->n_entries ? malloc(idx->n_entries * sizeof(*c->at)) : NULL;
                if (c->path == NULL || (c->at == NULL && idx->n_entries)) {
                    free(c->path);
                    free(c->at);
                    memset(c, 0, sizeof(*c));
                    c = NULL; /* walked; the empty slot is reused */
                } else {
                    memcpy(c->path, x->text, x->len);
                    c->path[x->len] = '\0';
                    c->path_len = x->len;
                    c->partition = x->partition;
                    idx->column_bytes += idx->n_entries * sizeof(*c->at) + x->len + 1;
                    build |= (uint64_t)1 << i;
                }
            }
        }
        if (c == NULL) {
            p->walk |= (uint64_t)1 << i;
            continue;
        }
        c->used = tick;
        p->col[i] = (int16_t)(c - idx->columns);
    }
    /* a slot left empty by a failed allocation is dropped from the end */
    while (idx->n_columns > 0 && idx->columns[idx->n_columns - 1].path == NULL)
        idx->n_columns--;
    if (build == 0)
        return;
    raw vals[MAX_PATHS];
    for (size_t s = 0; s < idx->n_sections; s++) {
        const catalog__istr *partition = section_partition(idx, s);
        for (uint32_t j = 0; j < idx->sections[s].n; j++) {
            uint32_t en = idx->sections[s].first + j;
            resolve(p, &idx->entries[en], partition, build, vals);
            for (size_t i = 0; i < p->n_paths; i++) {
                if (!(build & ((uint64_t)1 << i)))
                    continue;
                uint32_t(*at)[2] = &idx->columns[p->col[i]].at[en];
                (*at)[0] = vals[i].p != NULL ? (uint32_t)(vals[i].p - idx->slim) : 0;
                (*at)[1] = vals[i].p != NULL ? (uint32_t)vals[i].len : 0;
            }
        }
    }
}

/* Every path's value in entry en: from its column, or walked. */
static void values(struct plan *p, uint32_t en, const catalog__istr *partition, raw *vals)
{
    const catalog_index *idx = p->idx;
    if (p->walk)
        resolve(p, &idx->entries[en], partition, p->walk, vals);
    for (size_t i = 0; i < p->n_paths; i++) {
        if (p->col[i] >= 0) {
            const uint32_t *at = idx->columns[p->col[i]].at[en];
            vals[i] = at[1] ? (raw){idx->slim + at[0], at[1]} : missing;
        }
        if (vals[i].p != NULL)
            p->paths[i].seen = 1;
    }
}

/* A scalar node against one scalar value. */
static int scalar_eq(const struct plan *p, const struct node *n, raw v)
{
    const char *s = ptext(p, n->off);
    switch (n->kind) {
    case N_STR:
        return v.p[0] == '"' && catalog__str_eq(v, s, n->len, n->fold);
    case N_NUM:
        return catalog__type(v) == CATALOG__T_NUMBER &&
               catalog__num_cmp(v.p, v.len, s, n->len) == 0;
    default:
        return v.len == n->len && memcmp(v.p, s, n->len) == 0;
    }
}

static int match(const struct plan *p, uint32_t at, raw v)
{
    const struct node *n = &p->nodes[at];
    switch (n->kind) {
    case N_ANY:
        for (uint32_t i = 0; i < n->n_kids; i++)
            if (match(p, n->kid + i, v))
                return 1;
        return 0;
    case N_NOT:
        return !match(p, n->kid, v);
    case N_EMPTY_OR:
        if (v.p == NULL || v.p[0] == 'n' || catalog__is_empty_array(v))
            return 1;
        return match(p, n->kid, v);
    default:
        if (v.p == NULL)
            return 0;
        if (v.p[0] == '[') {
            catalog__iter it;
            raw x;
            catalog__iter_init(&it, v.p, v.len);
            while (catalog__arr_next(&it, &x))
                if (scalar_eq(p, n, x))
                    return 1;
            return 0;
        }
        return scalar_eq(p, n, v);
    }
}

/* Room for a scratch buffer of n bytes. */
static int scratch(char **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < n)
        c *= 2;
    char *g = realloc(*buf, c);
    if (g == NULL)
        return -ENOMEM;
    *buf = g;
    *cap = c;
    return 0;
}

/* Appends the folded text of a raw string to p->fold_buf at *n. */
static int fold_append(struct plan *p, raw v, size_t *n)
{
    const char *s = v.p + 1;
    size_t len = v.len - 2;
    if (memchr(s, '\\', len) != NULL) {
        if (scratch(&p->decode_buf, &p->decode_cap, v.len) < 0)
            return -ENOMEM;
        len = catalog__str_decode(v, p->decode_buf);
        s = p->decode_buf;
    }
    if (scratch(&p->fold_buf, &p->fold_cap, *n + BASE_FOLD_MAX(len) + 1) < 0)
        return -ENOMEM;
    *n += base_fold_utf8(s, len, p->fold_buf + *n);
    p->fold_buf[(*n)++] = '\0'; /* no term holds a NUL: texts never run together */
    return 0;
}

/* 1 when every term is in some search field of the entry (0, or -ENOMEM):
 * the fields' folded texts are laid end to end, then each term looked for once. */
static int search_match(struct plan *p, const raw *vals)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_search_paths; i++) {
        raw v = vals[p->search_paths[i]];
        int rc = 0;
        if (v.p == NULL)
            continue;
        if (v.p[0] == '"') {
            rc = fold_append(p, v, &n);
        } else if (v.p[0] == '[') {
            catalog__iter it;
            raw x;
            catalog__iter_init(&it, v.p, v.len);
            while (rc == 0 && catalog__arr_next(&it, &x))
                if (x.p[0] == '"')
                    rc = fold_append(p, x, &n);
        }
        if (rc < 0)
            return rc;
    }
    for (size_t t = 0; t < p->n_terms; t++)
        if (!contains(p->fold_buf, n, ptext(p, p->term_off[t]), p->term_len[t], p->term_anchor[t]))
            return 0;
    return 1;
}

/* Relevance tier of a match: 0 exact id or name, 1 id or name prefix, 2
 * name substring, 3 id substring, 4 found in another field. */
static int tier(struct plan *p, const struct catalog__entry *e)
{
    const catalog_index *idx = p->idx;
    const char *q = ptext(p, p->q_off);
    size_t ql = p->q_len;
    int best = 4;
    for (int which = 0; which < 2; which++) { /* 0: id, 1: name */
        catalog__istr s = which ? e->name : e->id;
        if (s.off == CATALOG__NONE)
            continue;
        if (scratch(&p->fold_buf, &p->fold_cap, BASE_FOLD_MAX(s.len) + 1) < 0)
            return 4;
        size_t n = base_fold_utf8(catalog__sp(idx, s), s.len, p->fold_buf);
        int t = 4;
        if (n == ql && memcmp(p->fold_buf, q, ql) == 0)
            t = 0;
        else if (n > ql && memcmp(p->fold_buf, q, ql) == 0)
            t = 1;
        else if (contains(p->fold_buf, n, q, ql, p->q_anchor))
            t = which ? 2 : 3;
        if (t < best)
            best = t;
    }
    return best;
}

/* ---- ordering ---------------------------------------------------------------- */

/* <0 when a comes before b. */
static int cand_cmp(const struct plan *p, const struct cand *a, const struct cand *b)
{
    if (p->order == ORDER_RELEVANCE && a->tier != b->tier)
        return a->tier < b->tier ? -1 : 1;
    if (p->order == ORDER_KEYS) {
        for (size_t i = 0; i < p->n_keys; i++) {
            if (a->first[i] != b->first[i])
                return a->first[i] < b->first[i] ? -1 : 1;
            int am = a->key[i].p == NULL, bm = b->key[i].p == NULL;
            if (am || bm) {
                if (am != bm)
                    return am ? 1 : -1; /* missing last, whatever the direction */
                continue;
            }
            int c = catalog__value_cmp(a->key[i], b->key[i], p->keys[i].fold);
            if (c)
                return p->keys[i].desc ? -c : c;
        }
    }
    return (a->entry > b->entry) - (a->entry < b->entry);
}

/* The page's candidates: a max-heap (the worst kept on top) once full. */
struct page {
    struct cand *c;
    size_t n, cap, k;
};

static void sift_down(const struct plan *p, struct page *pg, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < pg->n && cand_cmp(p, &pg->c[l], &pg->c[m]) > 0)
            m = l;
        if (r < pg->n && cand_cmp(p, &pg->c[r], &pg->c[m]) > 0)
            m = r;
        if (m == i)
            return;
        struct cand t = pg->c[i];
        pg->c[i] = pg->c[m];
        pg->c[m] = t;
        i = m;
    }
}

static void sift_up(const struct plan *p, struct page *pg, size_t i)
{
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (cand_cmp(p, &pg->c[i], &pg->c[up]) <= 0)
            return;
        struct cand t = pg->c[i];
        pg->c[i] = pg->c[up];
        pg->c[up] = t;
        i = up;
    }
}

static int page_offer(const struct plan *p, struct page *pg, const struct cand *x)
{
    if (pg->k == 0)
        return 0;
    if (pg->n < pg->k) {
        if (pg->n == pg->cap) {
            size_t cap = pg->cap ? pg->cap * 2 : 32;
            if (cap > pg->k)
                cap = pg->k;
            struct cand *g = realloc(pg->c, cap * sizeof(*g));
            if (g == NULL)
                return -ENOMEM;
            pg->c = g;
            pg->cap = cap;
        }
        pg->c[pg->n++] = *x;
        if (p->order != ORDER_INDEX)
            sift_up(p, pg, pg->n - 1);
        return 0;
    }
    if (p->order == ORDER_INDEX || cand_cmp(p, x, &pg->c[0]) >= 0)
        return 0; /* in index order the first k are the page */
    pg->c[0] = *x;
    sift_down(p, pg, 0);
    return 0;
}

/* Heap sort in place: ascending by cand_cmp. */
static void page_sort(const struct plan *p, struct page *pg)
{
    if (p->order == ORDER_INDEX)
        return;
    size_t n = pg->n;
    while (pg->n > 1) {
        struct cand t = pg->c[0];
        pg->c[0] = pg->c[pg->n - 1];
        pg->c[pg->n - 1] = t;
        pg->n--;
        sift_down(p, pg, 0);
    }
    pg->n = n;
}

/* ---- facets ------------------------------------------------------------------ */

static uint32_t fhash(const char *s, size_t n)
{
    return base_hash(s, n, 0);
}

static int facet_add(struct plan *p, struct facet *f, raw v)
{
    const char *s = v.p;
    size_t len = v.len;
    int t = catalog__type(v);
    char *owned = NULL;
    if (t == CATALOG__T_NULL || t == CATALOG__T_ARRAY || t == CATALOG__T_OBJECT)
        return 0;
    if (t == CATALOG__T_STRING) {
        s = v.p + 1;
        len = v.len - 2;
        if (memchr(s, '\\', len) != NULL) {
            if (scratch(&p->decode_buf, &p->decode_cap, v.len) < 0)
                return -ENOMEM;
            len = catalog__str_decode(v, p->decode_buf);
            s = p->decode_buf;
            owned = (char *)s; /* copied below if it is a new value */
        }
    } else if (p->strings_only) {
        return 0;
    }
    if ((f->n + 1) * 4 > f->cap * 3) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct fcount *g = calloc(cap, sizeof(*g));
        if (g == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < f->cap; i++) {
            if (f->slots[i].s == NULL)
                continue;
            size_t j = fhash(f->slots[i].s, f->slots[i].len) & (cap - 1);
            while (g[j].s != NULL)
                j = (j + 1) & (cap - 1);
            g[j] = f->slots[i];
        }
        free(f->slots);
        f->slots = g;
        f->cap = cap;
    }
    size_t j = fhash(s, len) & (f->cap - 1);
    while (f->slots[j].s != NULL) {
        if (f->slots[j].len == len && memcmp(f->slots[j].s, s, len) == 0) {
            f->slots[j].count++;
            return 0;
        }
        j = (j + 1) & (f->cap - 1);
    }
    if (owned != NULL) {
        char *copy = malloc(len ? len : 1);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, s, len);
        s = copy;
    }
    f->slots[j] = (struct fcount){s, (uint32_t)len, 1, owned != NULL};
    f->n++;
    return 0;
}

static int facet_count(struct plan *p, struct facet *f, raw v)
{
    if (v.p == NULL)
        return 0;
    if (v.p[0] != '[')
        return facet_add(p, f, v);
    catalog__iter it;
    raw x;
    catalog__iter_init(&it, v.p, v.len);
    while (catalog__arr_next(&it, &x)) {
        int rc = facet_add(p, f, x);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int fcount_cmp(const void *x, const void *y)
{
    const struct fcount *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* {"<value>":count,...} sorted by value, bytewise. */
static int facet_emit(struct facet *f, base_buf *out)
{
    size_t n = 0;
    for (size_t i = 0; i < f->cap; i++)
        if (f->slots[i].s != NULL)
            f->slots[n++] = f->slots[i]; /* compacts in place: n <= i */
    for (size_t i = n; i < f->cap; i++)
        f->slots[i].s = NULL;
    if (n > 1)
        qsort(f->slots, n, sizeof(*f->slots), fcount_cmp);
    int rc = base_buf_add(out, "{", 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i)
            rc |= base_buf_add(out, ",", 1);
        rc |= base_buf_json_string(out, f->slots[i].s, f->slots[i].len);
        rc |= base_buf_addf(out, ":%u", f->slots[i].count);
    }
    if (rc == 0)
        rc = base_buf_add(out, "}", 1);
    return rc ? -ENOMEM : 0;
}

static void plan_free(struct plan *p)
{
    for (size_t f = 0; f < p->n_facets; f++) {
        for (size_t i = 0; i < p->facets[f].cap; i++)
            if (p->facets[f].slots[i].owned)
                free((void *)p->facets[f].slots[i].s);
        free(p->facets[f].slots);
    }
    free(p->nodes);
    base_buf_free(&p->text);
    free(p->fold_buf);
    free(p->decode_buf);
    free(p);
}

/* ---- the pass ------------------------------------------------------------------ */

static int check_seen(const struct plan *p, char *err, size_t err_size)
{
    const catalog_index *idx = p->idx;
    size_t n = 0;
    for (size_t s = p->lo; s < p->hi; s++)
        n += idx->sections[s].n;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < p->n_paths; i++) {
        const struct path *x = &p->paths[i];
        if (x->origin != NULL && !x->seen)
            return qerr(err, err_size, -EINVAL, "%s: no entry%s%s has a field \"%.*s\"", x->origin,
                        p->hi - p->lo == 1 ? " of section " : "",
                        p->hi - p->lo == 1 ? catalog_index_section_name(idx, p->lo) : "",
                        (int)(x->len > 64 ? 64 : x->len), x->text);
    }
    return 0;
}

/* Evaluates every entry of the range: total, page candidates, facets. */
static int run(struct plan *p, struct page *pg, size_t *total)
{
    const catalog_index *idx = p->idx;
    raw vals[MAX_PATHS];
    *total = 0;
    prepare_columns(p);
    for (size_t s = p->lo; s < p->hi; s++) {
        const struct catalog__section *sec = &idx->sections[s];
        const catalog__istr *partition = section_partition(idx, s);
        p->n_search_paths = 0;
        if (p->search) {
            for (uint32_t i = 0; i < sec->n_search; i++) {
                catalog__istr name = idx->interns[idx->search[sec->search_first + i]];
                for (size_t j = 0; j < p->n_paths; j++)
                    if (!p->paths[j].partition && p->paths[j].len == name.len &&
                        memcmp(p->paths[j].text, catalog__sp(idx, name), name.len) == 0)
                        p->search_paths[p->n_search_paths++] = (uint16_t)j;
            }
        }
        for (uint32_t j = 0; j < sec->n; j++) {
            const uint32_t en = sec->first + j;
            const struct catalog__entry *e = &idx->entries[en];
            values(p, en, partition, vals);
            /* clauses: all of them with facets, else until one fails */
            uint64_t ok = 0;
            int all = 1;
            for (size_t c = 0; c < p->n_clauses; c++) {
                const struct clause *cl = &p->clauses[c];
                if (match(p, cl->node, vals[cl->path]))
                    ok |= (uint64_t)1 << c;
                else if (cl->group == 0 && p->n_facets == 0) {
                    all = 0;
                    break;
                }
            }
            if (!all)
                continue;
            int any_ok = p->n_groups == 0;
            for (size_t g = 0; g < p->n_groups && !any_ok; g++)
                any_ok = (ok & p->group_mask[g]) == p->group_mask[g];
            if (!any_ok)
                continue;
            if (p->search) {
                int m = search_match(p, vals);
                if (m < 0)
                    return m;
                if (!m)
                    continue;
            }
            for (size_t f = 0; f < p->n_facets; f++) {
                uint64_t need = p->where_mask & ~p->facets[f].exclude;
                if ((ok & need) == need) {
                    int rc = facet_count(p, &p->facets[f], vals[p->facets[f].path]);
                    if (rc < 0)
                        return rc;
                }
            }
            if ((ok & p->where_mask) != p->where_mask)
                continue;
            (*total)++;
            struct cand c;
            c.entry = en;
            c.tier = p->order == ORDER_RELEVANCE ? (uint8_t)tier(p, e) : 0;
            for (size_t k = 0; k < p->n_keys; k++) {
                c.key[k] = vals[p->keys[k].path];
                c.first[k] = 0;
                if (p->keys[k].first != CATALOG__NONE) {
                    const struct node *fn = &p->nodes[p->keys[k].first];
                    uint32_t r = 0, nk = fn->kind == N_ANY ? fn->n_kids : 1;
                    uint32_t base = fn->kind == N_ANY ? fn->kid : p->keys[k].first;
                    while (r < nk && !match(p, base + r, c.key[k]))
                        r++;
                    c.first[k] = (uint8_t)r;
                }
            }
            int rc = page_offer(p, pg, &c);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int emit_entry(const catalog_index *idx, const struct catalog__entry *e, int with_section,
                      base_buf *out)
{
    const char *slim = idx->slim + e->slim_off;
    if (!with_section || e->own_section)
        return base_buf_add(out, slim, e->slim_len);
    catalog__istr sn = idx->interns[idx->sections[e->section].name];
    int rc = base_buf_add(out, "{\"section\":", 11);
    rc |= base_buf_json_string(out, catalog__sp(idx, sn), sn.len);
    /* slim is "{...}" compact; "{}" needs no comma */
    if (e->slim_len > 2)
        rc |= base_buf_add(out, ",", 1);
    rc |= base_buf_add(out, slim + 1, e->slim_len - 1);
    return rc ? -ENOMEM : 0;
}

static int query(const catalog_index *idx, const catalog_query *q, int search, base_buf *out,
                 char *err, size_t err_size)
{
    struct plan *p = calloc(1, sizeof(*p));
    struct page pg = {0};
    size_t total = 0;
    if (p == NULL)
        return qerr(err, err_size, -ENOMEM, "out of memory");
    int rc = compile(p, idx, q, search, err, err_size);
    if (rc == 0) {
        size_t in_range = 0;
        for (size_t s = p->lo; s < p->hi; s++)
            in_range += idx->sections[s].n;
        pg.k = q->offset < in_range ? q->offset + (q->limit < in_range ? q->limit : in_range) : 0;
        if (pg.k > in_range)
            pg.k = in_range;
        rc = run(p, &pg, &total);
    }
    if (rc == 0)
        rc = check_seen(p, err, err_size);
    if (rc == 0) {
        page_sort(p, &pg);
        int with_section = q->section == NULL && idx->n_sections > 1;
        rc = base_buf_addf(out, "{\"total\":%zu,\"entries\":[", total);
        for (size_t i = q->offset; i < pg.n && rc == 0; i++) {
            if (i > q->offset)
                rc = base_buf_add(out, ",", 1);
            if (rc == 0)
                rc = emit_entry(idx, &idx->entries[pg.c[i].entry], with_section, out);
            if (rc == 0 && q->max_bytes != 0 && out->len > q->max_bytes) {
                rc = qerr(err, err_size, -EFBIG,
                          "the answer is over %zu bytes after %zu of %zu entries: ask for fewer "
                          "(limit, offset)",
                          q->max_bytes, i - q->offset + 1, total);
                break;
            }
        }
        if (rc == 0)
            rc = base_buf_add(out, "]", 1);
        if (rc == 0 && p->n_facets > 0) {
            rc = base_buf_add(out, ",\"facets\":{", 11);
            for (size_t f = 0; f < p->n_facets && rc == 0; f++) {
                const struct path *x = &p->paths[p->facets[f].path];
                if (f)
                    rc = base_buf_add(out, ",", 1);
                if (rc == 0)
                    rc = base_buf_json_string(out, x->text, x->len);
                if (rc == 0)
                    rc = base_buf_add(out, ":", 1);
                if (rc == 0)
                    rc = facet_emit(&p->facets[f], out);
            }
            if (rc == 0)
                rc = base_buf_add(out, "}", 1);
        }
        if (rc == 0)
            rc = base_buf_add(out, "}", 1);
        if (rc == 0 && q->max_bytes != 0 && out->len > q->max_bytes)
            rc = qerr(err, err_size, -EFBIG, "the answer is over %zu bytes: ask for fewer facets",
                      q->max_bytes);
    }
    free(pg.c);
    plan_free(p);
    if (rc == -ENOMEM)
        base_errf(err, err_size, "out of memory");
    return rc;
}

int catalog_index_list(const catalog_index *idx, const catalog_query *q, base_buf *out, char *err,
                       size_t err_size)
{
    return query(idx, q, 0, out, err, err_size);
}

int catalog_index_search(const catalog_index *idx, const catalog_query *q, base_buf *out, char *err,
                         size_t err_size)
{
    return query(idx, q, 1, out, err, err_size);
}

/* categories/domains: one facet, no clause, string values only. */
static int counts(const catalog_index *idx, const char *section, int partition, base_buf *out,
                  char *err, size_t err_size)
{
    struct plan *p = calloc(1, sizeof(*p));
    struct page pg = {0};
    size_t total;
    if (p == NULL)
        return qerr(err, err_size, -ENOMEM, "out of memory");
    p->idx = idx;
    p->strings_only = 1;
    int rc = catalog__section_range(idx, section, &p->lo, &p->hi, err, err_size);
    if (rc == 0)
        rc = add_path(p, partition ? "" : "category", partition ? 0 : 8, partition, NULL,
                      &p->facets[0].path, err, err_size);
    if (rc == 0) {
        p->n_facets = 1;
        rc = run(p, &pg, &total);
    }
    if (rc == 0)
        rc = facet_emit(&p->facets[0], out);
    free(pg.c);
    plan_free(p);
    if (rc == -ENOMEM)
        base_errf(err, err_size, "out of memory");
    return rc;
}

int catalog_index_categories(const catalog_index *idx, const char *section, base_buf *out,
                             char *err, size_t err_size)
{
    return counts(idx, section, 0, out, err, err_size);
}

int catalog_index_domains(const catalog_index *idx, const char *section, base_buf *out, char *err,
                          size_t err_size)
{
    return counts(idx, section, 1, out, err, err_size);
}
