/*
 * Validation of a `jobs` worker's config object (DESIGN.md section 7).
 *
 * Design notes: every message starts with the JSON path of the offending
 * value (`workers[3].types.compile.argv: ...`). lanes[0] is always the
 * implicit "default" lane (capacity 1 unless configured), used by raw-argv
 * jobs and types without a lane. A placeholder must be a whole argv element;
 * "x{port}" is refused rather than silently left unexpanded.
 */
#include "jobs/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const placeholders[] = {"{configuration}", "{port}", "{new_name}", NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static int get_uint(const json_t *v, const char *path, const char *key, unsigned min, unsigned max,
                    unsigned *out, char *err, size_t size)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return base_errf(err, size, "%s.%s: expected an integer from %u to %u", path, key, min,
                         max);
    *out = (unsigned)json_integer_value(v);
    return 0;
}

void jobs_config_free(jobs_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->state_dir);
    for (size_t i = 0; i < cfg->n_lanes; i++)
        free(cfg->lanes[i].name);
    free(cfg->lanes);
    for (size_t i = 0; i < cfg->n_types; i++) {
        free(cfg->types[i].name);
        for (size_t k = 0; k < cfg->types[i].n_argv; k++)
            free(cfg->types[i].argv[k]);
        free(cfg->types[i].argv);
    }
    free(cfg->types);
    free(cfg);
}

const char *jobs_config_state_dir(const jobs_config *cfg)
{
    return cfg != NULL ? cfg->state_dir : NULL;
}

const jobs__type *jobs__config_type(const jobs_config *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->n_types; i++)
        if (strcmp(cfg->types[i].name, name) == 0)
            return &cfg->types[i];
    return NULL;
}

long jobs__config_lane(const jobs_config *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->n_lanes; i++)
        if (strcmp(cfg->lanes[i].name, name) == 0)
            return (long)i;
    return -1;
}

static bool builtin_primary(const char *type)
{
    static const char *const builtin[] = {"compile", "upload", "install", NULL};
    return type != NULL && in_list(builtin, type);
}

bool jobs__config_primary(const jobs_config *cfg, const char *type)
{
    const jobs__type *t = jobs__config_type(cfg, type);
    return t != NULL ? t->primary : builtin_primary(type);
}

static int parse_lanes(jobs_config *cfg, const json_t *v, const char *path, char *err, size_t size)
{
    if (!json_is_object(v))
        return base_errf(err, size, "%s.lanes: expected an object of lane capacities", path);
    size_t n = json_object_size(v) + 1;
    jobs__lane *lanes = realloc(cfg->lanes, n * sizeof(*lanes));
    if (lanes == NULL)
        return -ENOMEM;
    cfg->lanes = lanes;
    const char *key;
    json_t *cap;
    json_object_foreach((json_t *)v, key, cap)
    {
        if (!base_name_valid(key))
            return base_errf(err, size, "%s.lanes.%s: lane names are 1-64 of [a-z0-9_-]", path,
                             key);
        unsigned c = 0;
        char sub[128];
        snprintf(sub, sizeof(sub), "lanes.%s", key);
        if (get_uint(cap, path, sub, 1, 1024, &c, err, size))
            return -EINVAL;
        if (strcmp(key, "default") == 0) {
            cfg->lanes[0].capacity = c;
            continue;
        }
        char *name = strdup(key);
        if (name == NULL)
            return -ENOMEM;
        cfg->lanes[cfg->n_lanes].name = name;
        cfg->lanes[cfg->n_lanes].capacity = c;
        cfg->n_lanes++;
    }
    return 0;
}

static int parse_type(jobs_config *cfg, jobs__type *t, const char *name, const json_t *v,
                      const char *path, char *err, size_t size)
{
    if (!base_name_valid(name))
        return base_errf(err, size, "%s.types.%s: type names are 1-64 of [a-z0-9_-]", path, name);
    if (!json_is_object(v))
        return base_errf(err, size, "%s.types.%s: expected an object with \"argv\"", path, name);
    t->name = strdup(name);
    if (t->name == NULL)
        return -ENOMEM;
    t->primary = builtin_primary(name);
    const json_t *argv = json_object_get(v, "argv");
    if (!json_is_array(argv) || json_array_size(argv) == 0 ||
        json_array_size(argv) > JOBS__ARGV_MAX)
        return base_errf(err, size, "%s.types.%s.argv: expected an array of strings", path, name);
    t->argv = calloc(json_array_size(argv), sizeof(*t->argv));
    if (t->argv == NULL)
        return -ENOMEM;
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a)
    {
        if (!json_is_string(a) || json_string_length(a) == 0 ||
            strlen(json_string_value(a)) != json_string_length(a))
            return base_errf(err, size, "%s.types.%s.argv: expected an array of strings", path,
                             name);
        const char *s = json_string_value(a);
        if (strchr(s, '{') != NULL && strchr(s, '}') != NULL && !in_list(placeholders, s)) {
            for (const char *const *p = placeholders; *p != NULL; p++)
                if (strstr(s, *p) != NULL)
                    return base_errf(err, size,
                                     "%s.types.%s.argv[%zu]: a placeholder must be a whole element",
                                     path, name, i);
        }
        if (i == 0 && in_list(placeholders, s))
            return base_errf(err, size, "%s.types.%s.argv[0]: the program cannot be a placeholder",
                             path, name);
        t->argv[i] = strdup(s);
        if (t->argv[i] == NULL)
            return -ENOMEM;
        t->n_argv++;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        if (strcmp(key, "argv") == 0)
            continue;
        if (strcmp(key, "lane") == 0) {
            long lane = json_is_string(val) ? jobs__config_lane(cfg, json_string_value(val)) : -1;
            if (lane < 0)
                return base_errf(err, size, "%s.types.%s.lane: expected the name of a lane", path,
                                 name);
            t->lane = (size_t)lane;
        } else if (strcmp(key, "primary") == 0) {
            if (!json_is_boolean(val))
                return base_errf(err, size, "%s.types.%s.primary: expected true or false", path,
                                 name);
            t->primary = json_is_true(val);
        } else {
            return base_errf(err, size, "%s.types.%s.%s: unknown key", path, name, key);
        }
    }
    return 0;
}

static int parse_types(jobs_config *cfg, const json_t *v, const char *path, char *err, size_t size)
{
    if (!json_is_object(v))
        return base_errf(err, size, "%s.types: expected an object of job types", path);
    cfg->types = calloc(json_object_size(v) ? json_object_size(v) : 1, sizeof(*cfg->types));
    if (cfg->types == NULL)
        return -ENOMEM;
    const char *key;
    json_t *t;
    json_object_foreach((json_t *)v, key, t)
    {
        jobs__type *type = &cfg->types[cfg->n_types++];
        int rc = parse_type(cfg, type, key, t, path, err, size);
        if (rc)
            return rc;
    }
    return 0;
}

int jobs_config_parse(const json_t *obj, const char *path, const char *const *host_keys,
                      jobs_config **out, char *err, size_t err_size)
{
    if (path == NULL)
        path = "jobs";
    if (!json_is_object(obj))
        return base_errf(err, err_size, "%s: expected an object", path);
    jobs_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return -ENOMEM;
    int rc = -ENOMEM;
    cfg->lanes = calloc(1, sizeof(*cfg->lanes));
    if (cfg->lanes == NULL || (cfg->lanes[0].name = strdup("default")) == NULL)
        goto fail;
    cfg->lanes[0].capacity = 1;
    cfg->n_lanes = 1;
    cfg->max_queued = 1000;
    cfg->kill_timeout_s = 10;
    cfg->inflight_lines = 4000;
    cfg->retained_lines = 2000;
    cfg->log_max_bytes = 64ull << 20;
    cfg->primary_max = 500;
    cfg->aux_max = 5;

    /* Lanes first: types refer to them. */
    const json_t *lanes = json_object_get(obj, "lanes");
    if (lanes != NULL && (rc = parse_lanes(cfg, lanes, path, err, err_size)))
        goto fail;

    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        rc = -EINVAL;
        if (in_list(host_keys, key) || strcmp(key, "lanes") == 0) {
            continue;
        } else if (strcmp(key, "state_dir") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0 ||
                strlen(json_string_value(v)) != json_string_length(v)) {
                base_errf(err, err_size, "%s.state_dir: expected a directory path", path);
                goto fail;
            }
            free(cfg->state_dir);
            if ((cfg->state_dir = strdup(json_string_value(v))) == NULL) {
                rc = -ENOMEM;
                goto fail;
            }
        } else if (strcmp(key, "max_queued") == 0) {
            if (get_uint(v, path, key, 1, 1000000, &cfg->max_queued, err, err_size))
                goto fail;
        } else if (strcmp(key, "types") == 0) {
            if ((rc = parse_types(cfg, v, path, err, err_size)))
                goto fail;
        } else if (strcmp(key, "allow_argv") == 0) {
            if (!json_is_boolean(v)) {
                base_errf(err, err_size, "%s.allow_argv: expected true or false", path);
                goto fail;
            }
            cfg->allow_argv = json_is_true(v);
        } else if (strcmp(key, "kill_timeout_s") == 0) {
            if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 3600) {
                base_errf(err, err_size, "%s.kill_timeout_s: expected seconds over 0, at most 3600",
                          path);
                goto fail;
            }
            cfg->kill_timeout_s = json_number_value(v);
        } else if (strcmp(key, "inflight_lines") == 0) {
            if (get_uint(v, path, key, 2, 1000000, &cfg->inflight_lines, err, err_size))
                goto fail;
        } else if (strcmp(key, "retained_lines") == 0) {
            if (get_uint(v, path, key, 1, 1000000, &cfg->retained_lines, err, err_size))
                goto fail;
        } else if (strcmp(key, "log_max_bytes") == 0) {
            if (base_parse_size(v, &cfg->log_max_bytes) < 0 || cfg->log_max_bytes < 4096) {
                base_errf(err, err_size,
                          "%s.log_max_bytes: expected a size such as \"64M\" (at "
                          "least 4096)",
                          path);
                goto fail;
            }
        } else if (strcmp(key, "primary_max") == 0) {
            if (get_uint(v, path, key, 1, 1000000, &cfg->primary_max, err, err_size))
                goto fail;
        } else if (strcmp(key, "aux_max") == 0) {
            if (get_uint(v, path, key, 0, 1000000, &cfg->aux_max, err, err_size))
                goto fail;
        } else {
            base_errf(err, err_size, "%s.%s: unknown key", path, key);
            goto fail;
        }
    }
    cfg->inflight_trim_lines = cfg->inflight_lines / 2;
    *out = cfg;
    return 0;
fail:
    if (rc == -ENOMEM)
        base_errf(err, err_size, "%s: out of memory", path);
    jobs_config_free(cfg);
    return rc;
}
