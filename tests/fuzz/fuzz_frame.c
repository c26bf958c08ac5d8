/*
 * Fuzz target `frame`: event frames, topics and patterns (bus/frame.c,
 * bus/topic.c) and the in-process broker's matching (bus/broker.c).
 *
 * The input is used three ways:
 *  - whole, as a wire frame `topic NUL payload` for bus_frame_parse (with no
 *    size limit and with a small one), whose views must stay inside it;
 *  - split at its first '\n' into a pattern and a topic (the topic ends at
 *    its first NUL, the rest is a payload), for bus_pattern_check,
 *    bus_topic_check, bus_topic_match, bus_pattern_prefix_len and
 *    bus_topic_reserved, checked against a token-by-token reference
 *    matcher written here from DESIGN.md section 3, and against the
 *    literal-prefix rule remote subscribers rely on;
 *  - the pattern subscribed on a socketless broker and the topic published
 *    to it: the event is delivered exactly when the two match.
 */
#include <stdbool.h>
#include <string.h>

#include "bus/bus.h"
#include "fuzz.h"

static uv_loop_t loop;
static bus *broker;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    bus_config cfg = {.no_sockets = true, .queue_max = 4};
    char err[256];

    (void)argc, (void)argv;
    FUZZ_CHECK(uv_loop_init(&loop) == 0);
    if (bus_open(&loop, &cfg, &broker, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_frame: bus_open: %s\n", err);
        abort();
    }
    return 0;
}

/* tok: the length of the token at s[pos] (up to the next '.' or len). */
static size_t tok(const char *s, size_t len, size_t pos)
{
    size_t n = 0;
    while (pos + n < len && s[pos + n] != '.')
        n++;
    return n;
}

/* ref_match: DESIGN.md's rule, written plainly (recursive, one token at a
 * time): `*` one token, `>` (last) one or more, anything else itself. */
static bool ref_match(const char *p, size_t pl, size_t pi, const char *t, size_t tl, size_t ti)
{
    size_t pn = tok(p, pl, pi), tn = tok(t, tl, ti);
    if (pn == 1 && p[pi] == '>')
        return true; /* the topic has a token here (checked by the caller) */
    if (!(pn == 1 && p[pi] == '*') && (pn != tn || memcmp(p + pi, t + ti, pn) != 0))
        return false;
    bool p_last = pi + pn == pl, t_last = ti + tn == tl;
    if (p_last || t_last)
        return p_last && t_last;
    return ref_match(p, pl, pi + pn + 1, t, tl, ti + tn + 1);
}

static bool literal(const char *p, size_t len)
{
    return bus_topic_check(p, len) == 0;
}

typedef struct seen {
    int n;
} seen;

static void on_event(const bus_event *ev, void *data)
{
    seen *s = data;
    FUZZ_CHECK(ev->topic != NULL && ev->payload != NULL);
    s->n++;
}

static void check_frame(const uint8_t *data, size_t size, size_t max)
{
    bus_event ev;
    enum bus_drop_reason why = BUS_DROP_N;

    if (bus_frame_parse(data, size, max, &ev, &why) == 0) {
        const char *f = (const char *)data;
        FUZZ_CHECK(ev.topic == f);
        FUZZ_CHECK(ev.topic_len >= 1 && ev.topic_len <= BUS_TOPIC_MAX);
        FUZZ_CHECK(ev.payload == f + ev.topic_len + 1);
        FUZZ_CHECK(ev.topic_len + 1 + ev.payload_len == size);
        FUZZ_CHECK(bus_topic_check(ev.topic, ev.topic_len) == 0);
        FUZZ_CHECK(bus_json_check(ev.payload, ev.payload_len));
        FUZZ_CHECK(max == 0 || size <= max);
    } else {
        FUZZ_CHECK((unsigned)why < BUS_DROP_N);
        FUZZ_CHECK(strcmp(bus_drop_reason_name(why), "unknown") != 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    const char *pat = in, *top;
    size_t pat_len, top_len, rest;

    check_frame(data, size, 0);
    check_frame(data, size, 64);

    if (nl != NULL) {
        pat_len = (size_t)(nl - in);
        top = nl + 1;
        rest = size - pat_len - 1;
    } else {
        pat_len = size;
        top = in;
        rest = size;
    }
    const char *nul = memchr(top, '\0', rest);
    top_len = nul != NULL ? (size_t)(nul - top) : rest;

    bool pat_ok = bus_pattern_check(pat, pat_len) == 0;
    bool top_ok = bus_topic_check(top, top_len) == 0;
    /* a topic is a pattern without wildcards */
    if (top_ok)
        FUZZ_CHECK(bus_pattern_check(top, top_len) == 0);

    size_t prefix = bus_pattern_prefix_len(pat, pat_len);
    FUZZ_CHECK(prefix <= pat_len);
    if (prefix < pat_len) {
        FUZZ_CHECK(pat[prefix] == '*' || pat[prefix] == '>');
        FUZZ_CHECK(prefix == 0 || pat[prefix - 1] == '.');
    }
    if (pat_ok && literal(pat, pat_len))
        FUZZ_CHECK(prefix == pat_len);

    if (top_ok) {
        (void)bus_topic_reserved(top, top_len);
        FUZZ_CHECK(bus_topic_match(top, top_len, top, top_len));
    }
    if (pat_ok && top_ok) {
        bool m = bus_topic_match(pat, pat_len, top, top_len);
        FUZZ_CHECK(m == ref_match(pat, pat_len, 0, top, top_len, 0));
        /* remote subscribers filter on the literal prefix (nng sub0) */
        if (m)
            FUZZ_CHECK(top_len >= prefix && memcmp(top, pat, prefix) == 0);
        if (literal(pat, pat_len))
            FUZZ_CHECK(m == (pat_len == top_len && memcmp(pat, top, pat_len) == 0));

        /* the broker agrees: delivered exactly when matched */
        char pbuf[BUS_TOPIC_MAX + 1], tbuf[BUS_TOPIC_MAX + 1];
        memcpy(pbuf, pat, pat_len);
        pbuf[pat_len] = '\0';
        memcpy(tbuf, top, top_len);
        tbuf[top_len] = '\0';
        seen s = {0};
        bus_sub *sub = NULL;
        FUZZ_CHECK(bus_subscribe(broker, pbuf, 0, on_event, &s, &sub) == 0);
        FUZZ_CHECK(bus_publish(broker, tbuf, "{}", 2) == 0);
        uv_run(&loop, UV_RUN_NOWAIT);
        bus_unsubscribe(sub);
        uv_run(&loop, UV_RUN_NOWAIT);
        FUZZ_CHECK(s.n == (m ? 1 : 0));
    }
    return 0;
}
