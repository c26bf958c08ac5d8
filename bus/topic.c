/*
 * Topic validation and NATS-style matching.
 *
 * A topic is dot-separated tokens of [A-Za-z0-9_-]; a pattern may also use
 * `*` as a whole token (exactly one token) and `>` as its last token (one or
 * more trailing tokens). Matching walks both strings token by token without
 * copying or allocating: it sits on the dispatch path of every event.
 */
#include "bus/internal.h"

#include <errno.h>
#include <string.h>

static int check(const char *s, size_t len, int wildcards)
{
    size_t tok_start = 0;

    if (s == NULL || len == 0 || len > BUS_TOPIC_MAX)
        return -EINVAL;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        size_t tok_len = i - tok_start;
        const char *tok = s + tok_start;
        if (tok_len == 0)
            return -EINVAL;
        if (wildcards && tok_len == 1 && tok[0] == '*') {
            /* fine anywhere */
        } else if (wildcards && tok_len == 1 && tok[0] == '>') {
            if (i != len)
                return -EINVAL; /* `>` only as the last token */
        } else {
            for (size_t k = 0; k < tok_len; k++)
                if (!base_token_char((unsigned char)tok[k]))
                    return -EINVAL;
        }
        tok_start = i + 1;
    }
    return 0;
}

int bus_topic_check(const char *topic, size_t len)
{
    return check(topic, len, 0);
}

int bus_pattern_check(const char *pattern, size_t len)
{
    return check(pattern, len, 1);
}

/* next_token returns the length of the token starting at s[pos]. */
static size_t token_len(const char *s, size_t len, size_t pos)
{
    const char *dot = memchr(s + pos, '.', len - pos);
    return dot != NULL ? (size_t)(dot - (s + pos)) : len - pos;
}

bool bus_topic_match(const char *pattern, size_t pattern_len, const char *topic, size_t topic_len)
{
    size_t p = 0, t = 0;

    for (;;) {
        int p_done = p >= pattern_len, t_done = t >= topic_len;
        if (p_done || t_done)
            return p_done && t_done;
        size_t pl = token_len(pattern, pattern_len, p);
        size_t tl = token_len(topic, topic_len, t);
        if (pl == 1 && pattern[p] == '>')
            return true; /* at least one topic token remains here */
        if (!(pl == 1 && pattern[p] == '*') &&
            (pl != tl || memcmp(pattern + p, topic + t, pl) != 0))
            return false;
        p += pl + 1;
        t += tl + 1;
    }
}

size_t bus_pattern_prefix_len(const char *pattern, size_t len)
{
    size_t tok_start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && pattern[i] != '.')
            continue;
        if (i - tok_start == 1 && (pattern[tok_start] == '*' || pattern[tok_start] == '>'))
            return tok_start;
        tok_start = i + 1;
    }
    return len;
}

bool bus_topic_reserved(const char *topic, size_t len)
{
    static const char *const owned[] = {
        "system.*.state",      "system.*.health", "system.*.warning",
        "system.supervisor.>", "job.>",           "catalog.>"};

    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        if (bus_topic_match(owned[i], strlen(owned[i]), topic, len))
            return true;
    return false;
}
