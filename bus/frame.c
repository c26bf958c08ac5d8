/*
 * Wire frames and the JSON syntax check.
 *
 * Design notes: a frame from outside is checked before anything is copied
 * or allocated, so a storm of garbage costs the broker no memory. The JSON
 * check is a recursive-descent recognizer over the bytes (RFC 8259 grammar,
 * UTF-8 validated, depth capped) that builds nothing; jansson is used only
 * where a value must actually be read (requests).
 */
#include "bus/bus.h"

#include <errno.h>
#include <string.h>

static const char *const drop_names[BUS_DROP_N] = {
    [BUS_DROP_NO_NUL] = "no_nul",
    [BUS_DROP_BAD_TOPIC] = "bad_topic",
    [BUS_DROP_BAD_JSON] = "bad_json",
    [BUS_DROP_TOO_LARGE] = "too_large",
    [BUS_DROP_QUEUE_FULL] = "queue_full",
    [BUS_DROP_BAD_REQUEST] = "bad_request",
    [BUS_DROP_SEND_FAILED] = "send_failed",
};

const char *bus_drop_reason_name(enum bus_drop_reason r)
{
    return (unsigned)r < BUS_DROP_N ? drop_names[r] : "unknown";
}

#define JSON_MAX_DEPTH 512

typedef struct json_scan {
    const unsigned char *p;
    const unsigned char *end;
    int depth;
} json_scan;

static void skip_ws(json_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* utf8_seq returns the length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static int scan_string(json_scan *s)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (++s->p >= s->end)
                return -1;
            c = *s->p;
            if (c == 'u') {
                if (s->end - s->p < 5)
                    return -1;
                for (int i = 1; i <= 4; i++)
                    if (hexval(s->p[i]) < 0)
                        return -1;
                s->p += 5;
            } else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
                s->p++;
            } else {
                return -1;
            }
            continue;
        }
        size_t n = utf8_seq(s->p, s->end);
        if (n == 0)
            return -1;
        s->p += n;
    }
    return -1;
}

static int scan_digits(json_scan *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : -1;
}

static int scan_number(json_scan *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return -1;
    if (*s->p == '0')
        s->p++;
    else if (scan_digits(s) < 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (scan_digits(s) < 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (scan_digits(s) < 0)
            return -1;
    }
    return 0;
}

static int scan_literal(json_scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_value(json_scan *s);

static int scan_container(json_scan *s, unsigned char close, int is_object)
{
    if (++s->depth > JSON_MAX_DEPTH)
        return -1;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        if (is_object) {
            skip_ws(s);
            if (s->p >= s->end || *s->p != '"' || scan_string(s) < 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
        }
        if (scan_value(s) < 0)
            return -1;
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p != close)
            return -1;
        s->p++;
        s->depth--;
        return 0;
    }
}

static int scan_value(json_scan *s)
{
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        return scan_container(s, '}', 1);
    case '[':
        return scan_container(s, ']', 0);
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s);
        return -1;
    }
}

bool bus_json_check(const char *buf, size_t len)
{
    json_scan s = {(const unsigned char *)buf, (const unsigned char *)buf + len, 0};

    if (buf == NULL || scan_value(&s) < 0)
        return false;
    skip_ws(&s);
    return s.p == s.end;
}

int bus_frame_parse(const void *frame, size_t len, size_t max_bytes, bus_event *out,
                    enum bus_drop_reason *reason)
{
    const char *f = frame;
    const char *nul;
    enum bus_drop_reason r;

    if (max_bytes != 0 && len > max_bytes) {
        r = BUS_DROP_TOO_LARGE;
        goto bad;
    }
    nul = len ? memchr(f, '\0', len) : NULL;
    if (nul == NULL) {
        r = BUS_DROP_NO_NUL;
        goto bad;
    }
    out->topic = f;
    out->topic_len = (size_t)(nul - f);
    out->payload = nul + 1;
    out->payload_len = len - out->topic_len - 1;
    if (bus_topic_check(out->topic, out->topic_len) < 0) {
        r = BUS_DROP_BAD_TOPIC;
        goto bad;
    }
    if (!bus_json_check(out->payload, out->payload_len)) {
        r = BUS_DROP_BAD_JSON;
        goto bad;
    }
    return 0;
bad:
    if (reason)
        *reason = r;
    return -EINVAL;
}
