/*
 * Wire frames and the JSON syntax check.
 *
 * Design notes: a frame from outside is checked before anything is copied
 * or allocated, so a storm of garbage costs the broker no memory. The JSON
 * check is base's scanner (RFC 8259 grammar, UTF-8 validated, depth capped),
 * which builds nothing; jansson is used only where a value must actually be
 * read (requests).
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
    [BUS_DROP_RESERVED] = "reserved",
    [BUS_DROP_BUSY] = "busy",
};

const char *bus_drop_reason_name(enum bus_drop_reason r)
{
    return (unsigned)r < BUS_DROP_N ? drop_names[r] : "unknown";
}

bool bus_json_check(const char *buf, size_t len)
{
    return base_json_check(buf, len, BUS_JSON_DEPTH_MAX);
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
    if (reason != NULL)
        *reason = r;
    return -EINVAL;
}
