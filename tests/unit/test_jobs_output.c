/* The output fast paths and the host hooks: word-at-a-time line counting
 * and tail search against byte-at-a-time references, published batches of
 * bytes that JSON must escape, and jobs_hooks enter/leave and
 * realloc/free (balanced, every block back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/jobs_support.h"

static const char *const CONFIG = "{\"allow_argv\": true, \"lanes\": {\"default\": 2}}";

static size_t naive_count(const char *d, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += d[i] == '\n' || d[i] == '\r';
    return n;
}

static size_t naive_tail(const char *d, size_t len, size_t n_lines, size_t *found)
{
    if (len == 0 || n_lines == 0) {
        *found = 0;
        return len;
    }
    size_t f = 1, i = (d[len - 1] == '\n' || d[len - 1] == '\r') ? len - 1 : len;
    for (; i > 0; i--) {
        if (d[i - 1] == '\n' || d[i - 1] == '\r') {
            if (f == n_lines) {
                *found = f;
                return i;
            }
            f++;
        }
    }
    *found = f;
    return 0;
}

/* Random buffers of bytes that sit next to the terminators in value
 * (0x0a-0x0d, 0x8a, 0x8d, ...), at every alignment and length up to 70. */
static void test_count_and_tail(void **state)
{
    static const unsigned char alphabet[] = {'\n', '\r', 0x0b, 0x0c, 0x09, 0x8a, 0x8d, 0x0a ^ 0x80,
                                             'a',  0xff, 0x00, 0x2a, 0x0e, 0x1a, 0x3a, 0x7f};
    char buf[96];
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t off = (size_t)round % 8, len = (size_t)(round / 8) % 71;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[off + i] = (char)alphabet[(seed >> 16) % sizeof(alphabet)];
        }
        const char *d = buf + off;
        assert_int_equal(jobs__count_lines(d, len), naive_count(d, len));
        for (size_t n = 0; n < 6; n++) {
            size_t f1, f2;
            size_t a = jobs__tail_start(d, len, n, &f1);
            size_t b = naive_tail(d, len, n, &f2);
            assert_int_equal(a, b);
            assert_int_equal(f1, f2);
        }
    }
}

/* Every byte from 0x01 to 0x7f (quotes, backslashes, control bytes), some
 * multi-byte UTF-8, an invalid byte: the published batches parse as JSON
 * and join up to the bytes (the invalid one as U+FFFD). */
static void test_escapes_published(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    ts_start(&t);
    char script[2048], want[1024];
    size_t n = 0, k = 0;
    k += (size_t)snprintf(script, sizeof(script), "printf '");
    for (int round = 0; round < 3; round++) {
        for (int c = 1; c < 0x80; c++) {
            k += (size_t)snprintf(script + k, sizeof(script) - k, "\\%03o", c);
            want[n++] = (char)c;
        }
    }
    k += (size_t)snprintf(script + k, sizeof(script) - k, "\\303\\251\\342\\202\\254\\377end'");
    memcpy(want + n,
           "\303\251\342\202\254\xef\xbf\xbd"
           "end",
           11);
    n += 11;
    json_t *args = json_pack("{s:[s,s,s]}", "argv", "sh", "-c", script);
    ts_reply r = ts_reqj(&t, "submit", args);
    assert_non_null(r.result);
    char id[JOBS__ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r.result, "job_id")));
    json_decref(r.result);
    json_t *m = ts_wait(&t, id);
    assert_int_equal(json_integer_value(json_object_get(m, "exit_code")), 0);
    json_decref(m);

    char topic[128], got[1024];
    size_t len = 0;
    snprintf(topic, sizeof(topic), "job.jw.%s.output", id);
    for (size_t i = 0; i < t.n_events; i++) {
        if (strcmp(t.events[i].topic, topic) != 0)
            continue;
        json_error_t jerr;
        json_t *p = json_loads(t.events[i].payload, JSON_ALLOW_NUL, &jerr);
        if (p == NULL)
            fail_msg("payload is not JSON: %s: %s", jerr.text, t.events[i].payload);
        assert_int_equal(json_object_size(p), 2);
        const json_t *d = json_object_get(p, "data");
        assert_true(len + json_string_length(d) <= sizeof(got));
        memcpy(got + len, json_string_value(d), json_string_length(d));
        len += json_string_length(d);
        json_decref(p);
    }
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
    ts_fini(&t);
}

/* ---- hooks ---------------------------------------------------------------- */

/* The host's side of the hooks: enter switches base's allocation account to
 * the host's slot (as the worker runtime does), leave switches back. */
typedef struct hook_counts {
    long enters, leaves, depth, max_depth;
    uint32_t slot;      /* the host's account */
    uint32_t outer[64]; /* what each enter switched away from */
} hook_counts;

static hook_counts counts;

static void *h_enter(void *data)
{
    hook_counts *c = data;
    c->enters++;
    if (++c->depth > c->max_depth)
        c->max_depth = c->depth;
    c->outer[c->depth] = base_mem_switch(c->slot);
    return (void *)(intptr_t)c->depth;
}

static void h_leave(void *token, void *data)
{
    hook_counts *c = data;
    assert_int_equal((intptr_t)token, c->depth); /* strictly nested */
    base_mem_switch(c->outer[c->depth]);
    c->leaves++;
    c->depth--;
}

static void hooks_closed(jobs *j, void *data)
{
    *(bool *)data = true;
}

static void test_hooks(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    memset(&counts, 0, sizeof(counts));
    counts.slot = base_mem_slot_acquire();
    assert_int_not_equal(counts.slot, 0);
    jobs_hooks hooks = {.enter = h_enter, .leave = h_leave, .data = &counts};
    char err[256];
    /* The instance is charged to whoever creates it: the host, here. */
    uint32_t prev = base_mem_switch(counts.slot);
    assert_int_equal(jobs_new(&t.loop, t.cfg, "jw", t.dir, &hooks, &t.j, err, sizeof(err)), 0);
    assert_int_equal(jobs_start(t.j), 0);
    base_mem_switch(prev);
    assert_true(base_mem_slot_bytes(counts.slot) >= jobs_heap_bytes(t.j));
    const char *id = ts_submit(&t, "{\"argv\": [\"sh\", \"-c\", \"seq 1 20000; sleep 0.2\"]}");
    char idc[JOBS__ID_LEN + 1];
    strcpy(idc, id);
    json_decref(ts_wait(&t, idc));
    assert_true(base_mem_slot_bytes(counts.slot) > 0);
    assert_true(counts.enters > 3); /* timers, reads, exit, fsync completion */
    bool closed = false;
    jobs_close(t.j, hooks_closed, &closed);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    t.j = NULL;
    assert_true(closed);
    assert_int_equal(counts.enters, counts.leaves);
    assert_int_equal(counts.depth, 0);
    assert_int_equal(counts.max_depth, 1);
    assert_int_equal(base_mem_slot_bytes(counts.slot), 0); /* the instance too */
    base_mem_slot_release(counts.slot);
    ts_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_and_tail),
        cmocka_unit_test(test_escapes_published),
        cmocka_unit_test(test_hooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
