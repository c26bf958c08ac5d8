/*
 * herdd's configuration file.
 *
 * Design notes: validation walks the JSON once and refuses unknown keys,
 * so a typo is an error, not a silently ignored setting. Every message
 * starts with the JSON path of the bad value (`bus.queue_max: expected an
 * integer from 1 to 1048576`).
 */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sup_parse_size(const json_t *v, uint64_t *out)
{
    const char *s, *p;
    unsigned long long n;
    uint64_t mult = 1;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -EINVAL;
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -EINVAL;
    s = json_string_value(v);
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    n = strtoull(s, (char **)&p, 10);
    if (errno)
        return -EINVAL;
    switch (*p) {
    case 'K':
    case 'k':
        mult = 1ull << 10;
        p++;
        break;
    case 'M':
        mult = 1ull << 20;
        p++;
        break;
    case 'G':
        mult = 1ull << 30;
        p++;
        break;
    case 'T':
        mult = 1ull << 40;
        p++;
        break;
    default:
        break;
    }
    if (mult > 1 && p[0] == 'i' && p[1] == 'B')
        p += 2;
    else if (*p == 'B')
        p++;
    if (*p != '\0' || (mult > 1 && n > UINT64_MAX / mult))
        return -EINVAL;
    *out = n * mult;
    return 0;
}

static void default_state_dir(char *buf, size_t size)
{
    const char *v;

    if ((v = getenv("HERD_STATE_DIR")) && *v)
        snprintf(buf, size, "%s", v);
    else if ((v = getenv("STATE_DIRECTORY")) && *v) /* systemd StateDirectory= */
        snprintf(buf, size, "%s", v);
    else if ((v = getenv("XDG_STATE_HOME")) && *v)
        snprintf(buf, size, "%s/herd", v);
    else if ((v = getenv("HOME")) && *v)
        snprintf(buf, size, "%s/.local/state/herd", v);
    else
        snprintf(buf, size, "/tmp/herd-state-%u", (unsigned)getuid());
}

void sup_config_defaults(sup_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    bus_default_dir(cfg->runtime_dir, sizeof(cfg->runtime_dir));
    cfg->max_message_bytes = BUS_DEFAULT_MAX_MESSAGE_BYTES;
    cfg->subscriber_buffer = BUS_DEFAULT_SUBSCRIBER_BUFFER;
    cfg->queue_max = BUS_DEFAULT_QUEUE_MAX;
    cfg->listener_check_ms = 2000;
    snprintf(cfg->http_listen, sizeof(cfg->http_listen), "%s", SUP_DEFAULT_HTTP_LISTEN);
    default_state_dir(cfg->state_dir, sizeof(cfg->state_dir));
    cfg->health_interval_s = SUP_DEFAULT_HEALTH_INTERVAL_S;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, err_size, __VA_ARGS__);                                                      \
        return -EINVAL;                                                                            \
    } while (0)

static int get_int(const json_t *v, const char *path, long min, long max, int *out, char *err,
                   size_t err_size)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        FAIL("%s: expected an integer from %ld to %ld", path, min, max);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_path(const json_t *v, const char *path, char *out, size_t out_size, char *err,
                    size_t err_size)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        FAIL("%s: expected a non-empty path string", path);
    if (json_string_length(v) >= out_size)
        FAIL("%s: path longer than %zu bytes", path, out_size - 1);
    if (strlen(json_string_value(v)) != json_string_length(v))
        FAIL("%s: path contains a NUL byte", path);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int parse_bus(const json_t *o, sup_config *cfg, char *err, size_t err_size)
{
    const char *key;
    json_t *v;
    char path[128];

    if (!json_is_object(o))
        FAIL("bus: expected an object");
    json_object_foreach((json_t *)o, key, v)
    {
        snprintf(path, sizeof(path), "bus.%.64s", key);
        int rv = 0;
        if (strcmp(key, "dir") == 0) {
            rv = get_path(v, path, cfg->runtime_dir, sizeof(cfg->runtime_dir) - 16, err,
                          err_size);
        } else if (strcmp(key, "max_message_bytes") == 0) {
            if (sup_parse_size(v, &cfg->max_message_bytes) < 0 || cfg->max_message_bytes < 1024 ||
                cfg->max_message_bytes > (256u << 20))
                FAIL("%s: expected a size from 1K to 256M, such as \"1M\"", path);
        } else if (strcmp(key, "subscriber_buffer") == 0) {
            rv = get_int(v, path, 1, 1 << 20, &cfg->subscriber_buffer, err, err_size);
        } else if (strcmp(key, "queue_max") == 0) {
            rv = get_int(v, path, 1, 1 << 20, &cfg->queue_max, err, err_size);
        } else if (strcmp(key, "listener_check_ms") == 0) {
            rv = get_int(v, path, 0, 3600000, &cfg->listener_check_ms, err, err_size);
            if (rv == 0 && cfg->listener_check_ms == 0)
                cfg->listener_check_ms = -1; /* 0 in the file means off */
        } else {
            FAIL("%s: unknown key (expected dir, max_message_bytes, subscriber_buffer, "
                 "queue_max, listener_check_ms)",
                 path);
        }
        if (rv < 0)
            return rv;
    }
    return 0;
}

static int parse_http(const json_t *o, sup_config *cfg, char *err, size_t err_size)
{
    const char *key;
    json_t *v;

    if (!json_is_object(o))
        FAIL("http: expected an object");
    json_object_foreach((json_t *)o, key, v)
    {
        if (strcmp(key, "listen") != 0)
            FAIL("http.%.64s: unknown key (expected listen)", key);
        const char *s = json_string_value(v);
        const char *colon = s ? strrchr(s, ':') : NULL;
        char *end;
        if (s == NULL || json_string_length(v) >= sizeof(cfg->http_listen))
            FAIL("http.listen: expected \"HOST:PORT\" or \"\" to disable");
        if (*s != '\0') {
            long port = colon ? strtol(colon + 1, &end, 10) : -1;
            if (colon == NULL || colon == s || colon[1] == '\0' || *end != '\0' || port < 1 ||
                port > 65535)
                FAIL("http.listen: expected \"HOST:PORT\" with a port from 1 to 65535, got "
                     "\"%.64s\"",
                     s);
        }
        snprintf(cfg->http_listen, sizeof(cfg->http_listen), "%s", s);
    }
    return 0;
}

int sup_config_parse(const json_t *root, sup_config *cfg, char *err, size_t err_size)
{
    const char *key;
    json_t *v;
    int rv = 0;

    if (!json_is_object(root))
        FAIL("(top level): expected an object");
    json_object_foreach((json_t *)root, key, v)
    {
        if (strcmp(key, "bus") == 0)
            rv = parse_bus(v, cfg, err, err_size);
        else if (strcmp(key, "http") == 0)
            rv = parse_http(v, cfg, err, err_size);
        else if (strcmp(key, "state_dir") == 0)
            rv = get_path(v, "state_dir", cfg->state_dir, sizeof(cfg->state_dir), err, err_size);
        else if (strcmp(key, "health_interval_s") == 0)
            rv = get_int(v, "health_interval_s", 1, 86400, &cfg->health_interval_s, err,
                         err_size);
        else
            FAIL("%.64s: unknown key (expected bus, http, state_dir, health_interval_s)", key);
        if (rv < 0)
            return rv;
    }
    return 0;
}

int sup_config_load(const char *file, sup_config *cfg, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    char inner[512];
    int rv;

    if (root == NULL) {
        if (jerr.line < 0 || jerr.position == 0)
            snprintf(err, err_size, "%s: %s", file, jerr.text);
        else
            snprintf(err, err_size, "%s:%d:%d: invalid JSON: %s", file, jerr.line, jerr.column,
                     jerr.text);
        return -EINVAL;
    }
    rv = sup_config_parse(root, cfg, inner, sizeof(inner));
    if (rv < 0)
        snprintf(err, err_size, "%s: %s", file, inner);
    json_decref(root);
    return rv;
}
