/*
 * base: what every module of herd shares, once: assertions, error messages,
 * log levels, accounted allocation, UTF-8, JSON scanning and escaping, byte
 * buffers, bounded queues, a hash table, file helpers, ISO-8601 time, name
 * and size checks, Unicode case folding. nng's src/core and skalibs' libstddjb are the models:
 * small, boring, shared.
 *
 * Nothing here knows of the bus, workers or the supervisor; base depends on
 * libc, libuv and jansson only. Functions return 0 or a negative errno;
 * functions taking `err, err_size` write a message for a person there.
 * Unless a function says otherwise it is thread-safe (touches only its
 * arguments) and never blocks.
 */
#ifndef HERD_BASE_H
#define HERD_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* ---- invariants --------------------------------------------------------- */

/* HERD_ASSERT(cond) aborts with the condition, file and line when cond is
 * false, in debug and sanitizer builds (HERD_ASSERTS defined); elsewhere it
 * compiles to nothing, so cond must have no side effects. */
#ifdef HERD_ASSERTS
#define HERD_ASSERT(cond) ((cond) ? (void)0 : base__assert_fail(#cond, __FILE__, __LINE__))
#else
#define HERD_ASSERT(cond) ((void)0)
#endif
_Noreturn void base__assert_fail(const char *cond, const char *file, int line);

/* ---- errors for a person ----------------------------------------------- */

/* base_errf writes a formatted message into err (when err and err_size are
 * non-zero) and returns -EINVAL, so `return base_errf(err, n, "x: ...")`
 * is the whole of a refusal. A caller with another code writes the message
 * and returns its own. base_verrf is the va_list form. */
int base_errf(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int base_verrf(char *err, size_t err_size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* ---- log levels --------------------------------------------------------- */

/* One set of levels for every module's log hook, most severe first. */
enum base_log_level { BASE_LOG_ERROR, BASE_LOG_WARN, BASE_LOG_INFO, BASE_LOG_DEBUG };

/* base_log_level_name is "error", "warn", "info" or "debug". */
const char *base_log_level_name(enum base_log_level level);
/* base_log_level_parse reads one of those names; -EINVAL otherwise. */
int base_log_level_parse(const char *s, enum base_log_level *out);

/* ---- accounted allocation (mem.c) --------------------------------------- */

/*
 * Every block carries a 16-byte header naming the account (a slot) it is
 * charged to and its size, so a free on any thread credits the right
 * account and a block's size can be read back. The current account is
 * thread-local: the loop thread switches it around a worker's code; other
 * threads charge slot 0, the unaccounted one. Slots are numbers in a fixed
 * table, never pointers, so a block that outlives its owner never points at
 * freed memory; a slot is reused only once its owner is gone and its
 * balance is back to zero.
 */
#define BASE_MEM_SLOTS 65536 /* one a worker: 10,000 workers and their leftovers fit */

void *base_malloc(size_t size);
void *base_calloc(size_t n, size_t size);
/* base_realloc keeps a block charged to its owner, whoever grows it. */
void *base_realloc(void *p, size_t size);
void base_free(void *p);
char *base_strdup(const char *s);
char *base_strndup(const char *s, size_t n);
/* base_mem_size is the size a block of base_malloc was asked for. */
size_t base_mem_size(const void *p);
/* base_mem_charge is what a block of size costs, and what its account is
 * charged: the block with base's header, in the chunk glibc's malloc
 * carves for it (an 8-byte size field, rounded up to 16, at least 32).
 * Counting requested bytes alone left a third of an idle worker's heap
 * uncharged (small blocks). Deterministic: the same in every build. */
static inline uint64_t base_mem_charge(size_t size)
{
    uint64_t chunk = ((uint64_t)size + 16 + 8 + 15) & ~(uint64_t)15;
    return chunk < 32 ? 32 : chunk;
}

/* base_mem_slot_acquire takes a free account (0 when the table is full:
 * then blocks go to the unaccounted slot). */
uint32_t base_mem_slot_acquire(void);
/* base_mem_slot_release gives the account up; its number is reused only
 * once its balance is zero. Slot 0 is never released. */
void base_mem_slot_release(uint32_t slot);
/* base_mem_slot_bytes is what slot holds now. */
uint64_t base_mem_slot_bytes(uint32_t slot);
/* base_mem_accounts_bytes is what every slot but 0 holds now, live owners'
 * and leftovers alike. */
uint64_t base_mem_accounts_bytes(void);
/* base_mem_switch makes slot the calling thread's account and returns the
 * previous one, for the caller to switch back to. */
uint32_t base_mem_switch(uint32_t slot);
/* base_mem_install routes jansson (json_set_alloc_funcs) and libuv
 * (uv_replace_allocator) through base_malloc and friends; call it before
 * their first allocation. */
int base_mem_install(void);

/* ---- UTF-8 -------------------------------------------------------------- */

/* base_utf8_len looks at the sequence starting at p (avail >= 1 bytes):
 * its length 1-4 when it is one valid UTF-8 scalar (no overlongs, no
 * surrogates, at most U+10FFFF), 0 when invalid, -1 when it is a valid
 * prefix cut short by the end of the input. */
int base_utf8_len(const void *p, size_t avail);
/* base_utf8_valid tells whether all len bytes are valid UTF-8. */
bool base_utf8_valid(const void *p, size_t len);

/* ---- byte buffers (buf.c) ----------------------------------------------- */

/* A growable byte buffer; zero-initialise, release with base_buf_free.
 * data is NUL-terminated whenever non-NULL (len excludes the NUL). Blocks
 * come from base_realloc. */
typedef struct base_buf {
    char *data;
    size_t len;
    size_t cap;
} base_buf;

void base_buf_free(base_buf *b);
/* base_buf_reserve makes room for `more` bytes beyond len (and the NUL). */
int base_buf_reserve(base_buf *b, size_t more);
int base_buf_add(base_buf *b, const void *data, size_t len);
int base_buf_adds(base_buf *b, const char *s);
int base_buf_addf(base_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* base_buf_json_string appends s (len bytes, valid UTF-8) as a quoted JSON
 * string: '"', '\\' and control bytes escaped, everything else as it is. */
int base_buf_json_string(base_buf *b, const char *s, size_t len);
/* base_buf_consume drops the first n bytes (all of them when n >= len). */
void base_buf_consume(base_buf *b, size_t n);

/* ---- JSON (json.c) ------------------------------------------------------ */

/* The deepest nesting the scanner accepts by default: jansson's own limit,
 * so whatever passes the scanner jansson can parse. */
#define BASE_JSON_DEPTH_MAX 2048

/*
 * A validating pull scanner over JSON text held in memory: it builds
 * nothing and reports byte ranges, so text of any size is validated in
 * O(depth) memory with an explicit stack (no recursion). It accepts exactly
 * RFC 8259 JSON: strict number grammar, no control bytes in strings,
 * well-formed UTF-8, \u escapes with paired surrogates (as jansson, so both
 * agree on what is valid). On failure err is a static reason and err_pos
 * the offending byte.
 */
typedef struct base_json_scan {
    const char *buf;
    size_t len;
    size_t pos;
    int max_depth;   /* BASE_JSON_DEPTH_MAX after init; at most that */
    const char *err; /* static reason, set on failure */
    size_t err_pos;  /* byte offset of the failure */
} base_json_scan;

void base_json_scan_init(base_json_scan *s, const void *buf, size_t len);
/* Skips whitespace; returns the next byte without consuming it, -1 at end. */
int base_json_scan_peek(base_json_scan *s);
/* Skips whitespace and consumes `c`, or fails with -EINVAL. */
int base_json_scan_expect(base_json_scan *s, char c);
/* Fails unless only whitespace remains. */
int base_json_scan_end(base_json_scan *s);
/* Validates one string; [*start, *end) is its raw range, quotes included. */
int base_json_scan_string(base_json_scan *s, size_t *start, size_t *end);
/* Validates one value of any type; [*start, *end) is its raw range. */
int base_json_scan_value(base_json_scan *s, size_t *start, size_t *end);
/* base_json_scan_member: after '{' was consumed, with *first = 1 initially.
 * Returns 1 with the key's raw range when a member follows (its ':' is
 * consumed, the value is next), 0 when the closing '}' was consumed. */
int base_json_scan_member(base_json_scan *s, int *first, size_t *key_start, size_t *key_end);
/* Same for arrays: 1 when an element follows, 0 when ']' was consumed. */
int base_json_scan_element(base_json_scan *s, int *first);
/* 1-based line and column of byte `pos`. */
void base_json_scan_where(const base_json_scan *s, size_t pos, size_t *line, size_t *col);

/* base_json_check tells whether buf holds exactly one JSON value
 * (surrounding whitespace allowed), nested at most max_depth deep. It
 * allocates nothing, so validating a pass-through payload costs no memory. */
bool base_json_check(const char *buf, size_t len, int max_depth);

/* base_json_decode decodes a string validated by the scanner (quotes
 * included) into out, which needs raw_len bytes; returns the decoded
 * length. No terminating NUL is written. */
size_t base_json_decode(const char *raw, size_t raw_len, char *out);

/* base_json_dumps is json_dumps whose result the caller frees with free(3),
 * whatever allocator jansson was given. */
char *base_json_dumps(const json_t *v, size_t flags);

/* ---- bounded queues (ring.c) -------------------------------------------- */

/*
 * A FIFO of pointers holding at most `max` items. Its slots are allocated
 * when the first item arrives and grow by doubling up to max, so an idle
 * queue costs only this struct. On overflow the oldest item is handed back
 * to the caller (who drops and counts it): a slow consumer never grows
 * memory. Not thread-safe: the caller locks where threads share one.
 */
typedef struct base_ring {
    void **slots;
    size_t cap, max, head, count;
} base_ring;

/* base_ring_init sets up an empty queue of at most max (>= 1) items. */
void base_ring_init(base_ring *r, size_t max);
/* base_ring_push appends item. When the queue already holds max items the
 * oldest is removed first and stored in *dropped (else *dropped is NULL).
 * -ENOMEM when the slots could not grow (nothing changed). */
int base_ring_push(base_ring *r, void *item, void **dropped);
/* base_ring_reserve allocates room for n items now (at most max), for a
 * queue that must never allocate when pushed (an nng thread's inbox). */
int base_ring_reserve(base_ring *r, size_t n);
/* base_ring_pop removes and returns the oldest item, NULL when empty. */
void *base_ring_pop(base_ring *r);
/* base_ring_free releases the slots (not the items: pop them first). */
void base_ring_free(base_ring *r);

static inline size_t base_ring_count(const base_ring *r)
{
    return r->count;
}

static inline bool base_ring_full(const base_ring *r)
{
    return r->count == r->max;
}

/* base_ring_peek is the oldest item, left in place; NULL when empty. */
static inline void *base_ring_peek(const base_ring *r)
{
    return r->count > 0 ? r->slots[r->head] : NULL;
}

/* ---- intrusive lists ----------------------------------------------------- */

/*
 * A doubly-linked list threaded through a node embedded in each item (as
 * nng's nni_list): linking allocates nothing, an item can unlink itself in
 * O(1), and a node knows whether it is linked. Not thread-safe.
 */
typedef struct base_list_node {
    struct base_list_node *prev, *next; /* NULL, NULL: not linked */
} base_list_node;

typedef struct base_list {
    base_list_node head; /* sentinel: head.next is the first item */
    size_t count;
} base_list;

/* base_container_of turns a pointer to a member back into its struct. */
#define base_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* BASE_LIST_FOREACH(list, type, member, var) visits every item in order;
 * the body may unlink var itself (the next item is read first). */
#define BASE_LIST_FOREACH(list, type, member, var)                                                 \
    for (base_list_node *var##_n = (list)->head.next, *var##_next = var##_n->next;                 \
         var##_n != &(list)->head &&                                                               \
         ((var) = base_container_of(var##_n, type, member), var##_next = var##_n->next, 1);        \
         var##_n = var##_next)

static inline void base_list_init(base_list *l)
{
    l->head.prev = l->head.next = &l->head;
    l->count = 0;
}

static inline bool base_list_linked(const base_list_node *n)
{
    return n->next != NULL;
}

static inline void base_list__insert(base_list *l, base_list_node *n, base_list_node *before)
{
    HERD_ASSERT(!base_list_linked(n));
    n->next = before;
    n->prev = before->prev;
    before->prev->next = n;
    before->prev = n;
    l->count++;
}

static inline void base_list_append(base_list *l, base_list_node *n)
{
    base_list__insert(l, n, &l->head);
}

static inline void base_list_prepend(base_list *l, base_list_node *n)
{
    base_list__insert(l, n, l->head.next);
}

/* base_list_remove unlinks n from l (n must be in l). */
static inline void base_list_remove(base_list *l, base_list_node *n)
{
    HERD_ASSERT(base_list_linked(n) && l->count > 0);
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    l->count--;
}

/* base_list_first is the first node, NULL when the list is empty. */
static inline base_list_node *base_list_first(const base_list *l)
{
    return l->head.next != &l->head ? l->head.next : NULL;
}

/* base_list_last is the last node, NULL when the list is empty. */
static inline base_list_node *base_list_last(const base_list *l)
{
    return l->head.prev != &l->head ? l->head.prev : NULL;
}

/* base_list_next is the node after n, NULL at the end. */
static inline base_list_node *base_list_next(const base_list *l, const base_list_node *n)
{
    return n->next != &l->head ? n->next : NULL;
}

/* base_list_prev is the node before n, NULL at the start. */
static inline base_list_node *base_list_prev(const base_list *l, const base_list_node *n)
{
    return n->prev != &l->head ? n->prev : NULL;
}

/* ---- hash table (htab.c) ------------------------------------------------ */

/* base_hash is 32-bit FNV-1a over len bytes, starting from seed (0 for a
 * plain hash; a number such as a section index to tell keys apart). */
uint32_t base_hash(const void *data, size_t len, uint32_t seed);

/*
 * An open-addressing set of item numbers (0 .. UINT32_MAX - 1) whose keys
 * live with the caller: the table stores only the numbers, and asks the
 * caller for an item's hash when it grows and whether an item matches a key
 * when it probes. Load stays at most one half. Items are never removed (the
 * tables built here index loaded data). Zero-initialise; base_htab_free.
 */
typedef struct base_htab {
    uint32_t *slots; /* item + 1; 0 empty */
    size_t cap, count;
} base_htab;

#define BASE_HTAB_NONE UINT32_MAX

typedef uint32_t (*base_htab_hash_fn)(uint32_t item, void *ctx);
typedef bool (*base_htab_match_fn)(uint32_t item, const void *key, void *ctx);

/* base_htab_reserve sizes the table for n items (a power of two of at
 * least 16 and 2n slots), rehashing what it holds. */
int base_htab_reserve(base_htab *t, size_t n, base_htab_hash_fn hash, void *ctx);
/* base_htab_find returns the item with this hash that match accepts for
 * key, or BASE_HTAB_NONE. */
uint32_t base_htab_find(const base_htab *t, uint32_t hash, base_htab_match_fn match,
                        const void *key, void *ctx);
/* base_htab_insert adds item under hash, growing as needed (hash_of gives
 * the hash of items already in). The caller has checked it is not in. */
int base_htab_insert(base_htab *t, uint32_t hash, uint32_t item, base_htab_hash_fn hash_of,
                     void *ctx);
/* base_htab_bytes is the table's own allocation. */
static inline size_t base_htab_bytes(const base_htab *t)
{
    return t->cap * sizeof(*t->slots);
}
void base_htab_free(base_htab *t);

/* ---- files (fs.c); these block ------------------------------------------ */

/* base_write_all writes all n bytes, retrying short writes and EINTR.
 * base_write_counted does the same and says in *written how many reached
 * the file before an error (a full disk takes part of a write). */
int base_write_all(int fd, const void *p, size_t n);
int base_write_counted(int fd, const void *p, size_t n, size_t *written);
/* base_fsync_dir fsyncs a directory, so a rename or a new entry in it is
 * durable. */
int base_fsync_dir(const char *dir);
/* base_mkdir_p creates dir and its missing parents; the last gets mode,
 * the parents 0755 (less the umask). An existing directory is fine; an
 * existing file in the way is -ENOTDIR. */
int base_mkdir_p(const char *dir, mode_t mode);
/* base_private_dir makes sure dir is a directory of the calling user that
 * no other user can write to: created with mode when missing (when create
 * is set; mode applied exactly, whatever the umask), refused when it is a
 * symlink, not a directory, owned by another user, or writable by group or
 * others. With tighten, an existing directory of the user that grants more
 * than mode is chmod'ed to mode instead and *tightened (may be NULL) says
 * so; without it such a directory is accepted when no one else can write.
 * The message names the directory and what is wrong. */
int base_private_dir(const char *dir, mode_t mode, bool create, bool tighten, bool *tightened,
                     char *err, size_t err_size);
/* base_replace_file replaces path atomically with len bytes: written to
 * tmp_path (mode), fsynced, renamed over path, then the directory fsynced.
 * A failure leaves the previous file whole and removes tmp_path; *step
 * (may be NULL) names what failed ("open", "write", "fsync", "close",
 * "rename", "fsync of the directory"). */
int base_replace_file(const char *path, const char *tmp_path, const void *data, size_t len,
                      mode_t mode, const char **step);
/* base_read_file reads a whole file (relative to dirfd, or AT_FDCWD) into a
 * base_malloc'd buffer, NUL-terminated; *len excludes the NUL. */
int base_read_file(int dirfd, const char *path, char **data, size_t *len);
/* base_rm_rf removes name under dirfd, recursively. Missing is not an
 * error. */
int base_rm_rf(int dirfd, const char *name);
/* base_random_hex fills out (2n+1 bytes, n <= 32) with n random bytes as
 * lowercase hex. */
int base_random_hex(char *out, size_t n);

/* ---- time (time.c) ------------------------------------------------------ */

#define BASE_TIME_ISO_MAX 32

/* base_now_ms is the wall clock in ms since the epoch. */
int64_t base_now_ms(void);
/* base_time_format writes ms since the epoch as ISO-8601 UTC with
 * milliseconds: "2026-12-02T02:01:01.123Z". */
void base_time_format(int64_t ms, char out[BASE_TIME_ISO_MAX]);
/* base_time_parse reads what base_time_format writes: exactly
 * "YYYY-MM-DDTHH:MM:SS", an optional fraction of one or more digits (the
 * first three count), "Z", every field in range. -EINVAL on anything else. */
int base_time_parse(const char *s, int64_t *ms);

/* ---- names and sizes (check.c) ------------------------------------------ */

#define BASE_NAME_MAX 64

/* base_name_valid: 1-64 bytes of [a-z0-9_-] (worker, lane and type
 * names: each is also a topic token). */
bool base_name_valid(const char *s);
/* base_token_char tells whether c may be in a topic token: [A-Za-z0-9_-]. */
static inline bool base_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}
/* base_token_valid: 1-64 bytes, each a base_token_char. */
bool base_token_valid(const char *s);

/* base_parse_size reads a byte size from config: a non-negative integer,
 * or a string of digits with an optional K, M, G or T suffix (either case;
 * powers of 1024; an optional trailing "B" or "iB"): "64M". -EINVAL
 * otherwise. */
int base_parse_size(const json_t *v, uint64_t *out);

/* ---- Unicode case folding (fold.c) -------------------------------------- */

/* base_fold_cp: the simple case folding of code point c (Unicode
 * CaseFolding.txt statuses C and S), c itself when it has none. Simple
 * folding maps one code point to one: ß stays ß (its full folding "ss" is
 * not applied), ẞ U+1E9E folds to ß, I to i (never Turkic ı), and text is
 * not normalised (e + U+0301 is not é). The Unicode version is that of
 * base/fold_table.h, generated by scripts/gen-fold-table. */
uint32_t base_fold_cp(uint32_t c);
/* BASE_FOLD_MAX(len): the most bytes folding len bytes of UTF-8 can write.
 * The worst a fold does is lengthen 2 bytes to 3 (U+023A to U+2C65), as
 * scripts/gen-fold-table computes; fold.c checks this bound against the
 * generated table when it compiles. */
#define BASE_FOLD_MAX(len) ((len) + (len) / 2)
/* base_fold_utf8 writes the simple case folding of s (len bytes) to out, which
 * has room for BASE_FOLD_MAX(len) bytes, and returns the length written.
 * Bytes that are not valid UTF-8 are copied as they are. No NUL is written.
 * s and out must not overlap. Folding folded text changes nothing. */
size_t base_fold_utf8(const char *s, size_t len, char *out);

#endif
