/*
 * Request ops (DESIGN.md section 7): submit, list, get, output, cancel,
 * clear.
 *
 * Design notes:
 *  - Unknown argument names are refused: a misspelt "depends_on" must not
 *    silently run a job early.
 *  - Parameters become exactly one argv element each; they are checked for
 *    NUL and control bytes, and a configuration must be a relative path
 *    without ".." components. A raw argv, and `env` (LD_PRELOAD is as good
 *    as an argv), need allow_argv: true.
 *  - Every reply is delivered from the kick timer, after jobs_request has
 *    returned. A reply that shows a terminal state (get, list, cancel,
 *    output's eof) waits until that state is on disk (job->term_gen), so no
 *    client sees an end that a crash could take back.
 */
#include "jobs/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BAD(...) jobs__reply(j, 0, cb, data, NULL, "bad_request", __VA_ARGS__)

static bool only_keys(const json_t *args, const char *const *allowed, const char **bad)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)args, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            *bad = key;
            return false;
        }
    }
    return true;
}

/* Checks one parameter value; returns a reason or NULL. */
static const char *param_problem(const json_t *v, bool is_configuration)
{
    if (!json_is_string(v))
        return "expected a string";
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0)
        return "must not be empty";
    if (len > JOBS__PARAM_MAX)
        return "is too long";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0)
            return "must not contain NUL bytes";
        if (c < 0x20 || c == 0x7f)
            return "must not contain control characters";
    }
    if (!is_configuration)
        return NULL;
    if (s[0] == '/')
        return "must be a relative path, not an absolute one";
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "must be a relative path without \"..\" components";
        p += n;
        if (*p == '/')
            p++;
    }
    return NULL;
}

/* Which of {configuration}, {port}, {new_name} a template element is, or -1. */
static int placeholder_index(const char *a)
{
    static const char *const ph[] = {"{configuration}", "{port}", "{new_name}"};
    for (int i = 0; i < 3; i++)
        if (strcmp(a, ph[i]) == 0)
            return i;
    return -1;
}

static const char *get_id(const json_t *args)
{
    const char *id = json_string_value(json_object_get(args, "id"));
    return jobs__id_valid(id) ? id : NULL;
}

static char **strv_copy(jobs *j, const char *const *src, size_t n)
{
    char **v = jobs__calloc(j, (n + 1) * sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        if (!(v[i] = jobs__strdup(j, src[i]))) {
            for (size_t k = 0; k < i; k++)
                jobs__free(j, v[k]);
            jobs__free(j, v);
            return NULL;
        }
    }
    return v;
}

static void op_submit(jobs *j, const json_t *args, jobs_reply_cb cb, void *data)
{
    static const char *const allowed[] = {"type", "configuration", "port",       "new_name", "argv",
                                          "env",  "lane",          "depends_on", NULL};
    const jobs_config *cfg = j->cfg;
    const char *badkey;
    if (!only_keys(args, allowed, &badkey)) {
        BAD("%s: unknown argument of submit", badkey);
        return;
    }
    const json_t *jtype = json_object_get(args, "type");
    const json_t *jargv = json_object_get(args, "argv");
    const json_t *jenv = json_object_get(args, "env");
    if (jtype && !json_is_string(jtype)) {
        BAD("type: expected a string");
        return;
    }
    const char *type = json_string_value(jtype);
    const jobs__type *t = jobs__config_type(cfg, type);
    if (jargv || jenv) {
        const char *key = jargv ? "argv" : "env";
        if (!cfg->allow_argv) {
            BAD("%s: not allowed by this worker (allow_argv is false)", key);
            return;
        }
    }
    if (jargv) {
        if (t) {
            BAD("argv: type \"%s\" has a configured argv", type);
            return;
        }
        if (type && !jobs__name_valid(type)) {
            BAD("type: expected 1-64 of [a-z0-9_-]");
            return;
        }
        if (!json_is_array(jargv) || json_array_size(jargv) == 0 ||
            json_array_size(jargv) > JOBS__ARGV_MAX) {
            BAD("argv: expected a non-empty array of strings");
            return;
        }
        size_t i;
        json_t *a;
        json_array_foreach(jargv, i, a)
        {
            if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a) ||
                (i == 0 && json_string_length(a) == 0)) {
                BAD("argv[%zu]: expected a string without NUL bytes", i);
                return;
            }
        }
    } else if (!type) {
        BAD("type: required");
        return;
    } else if (!t) {
        BAD("type: unknown job type \"%.64s\"", type);
        return;
    }

    static const char *const pnames[] = {"configuration", "port", "new_name"};
    const char *pvals[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(args, pnames[i]);
        if (!v)
            continue;
        const char *why = param_problem(v, i == 0);
        if (why) {
            BAD("%s: %s", pnames[i], why);
            return;
        }
        pvals[i] = json_string_value(v);
    }
    if (t) {
        for (size_t k = 0; k < t->n_argv; k++) {
            int i = placeholder_index(t->argv[k]);
            if (i >= 0 && !pvals[i]) {
                BAD("%s: required by type \"%s\"", pnames[i], t->name);
                return;
            }
        }
    }
    if (jenv) {
        if (!json_is_object(jenv) || json_object_size(jenv) > JOBS__ARGV_MAX) {
            BAD("env: expected an object of strings");
            return;
        }
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)jenv, k, v)
        {
            bool ok = k[0] && !(k[0] >= '0' && k[0] <= '9');
            for (const char *p = k; *p && ok; p++)
                ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '_';
            if (!ok) {
                BAD("env.%.64s: expected a variable name of [A-Za-z0-9_]", k);
                return;
            }
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
                BAD("env.%s: expected a string without NUL bytes", k);
                return;
            }
        }
    }
    size_t lane = t ? t->lane : 0;
    const json_t *jlane = json_object_get(args, "lane");
    if (jlane) {
        long l = json_is_string(jlane) ? jobs__config_lane(cfg, json_string_value(jlane)) : -1;
        if (l < 0) {
            BAD("lane: expected the name of a configured lane");
            return;
        }
        lane = (size_t)l;
    }
    const json_t *jdep = json_object_get(args, "depends_on");
    if (jdep && !jobs__id_valid(json_string_value(jdep))) {
        BAD("depends_on: expected a job id (32 lowercase hex digits)");
        return;
    }
    if (j->counts[JOBS__QUEUED] >= cfg->max_queued) {
        jobs__reply(j, 0, cb, data, NULL, "queue_full", "max_queued: %u jobs are already queued",
                    cfg->max_queued);
        return;
    }

    jobs_job *job = jobs__calloc(j, sizeof *job);
    if (!job)
        goto oom;
    if (jobs__new_id(job->id)) {
        jobs__free(j, job);
        jobs__reply(j, 0, cb, data, NULL, "internal", "getrandom failed");
        return;
    }
    if (jdep)
        memcpy(job->depends_on, json_string_value(jdep), JOBS__ID_LEN + 1);
    job->lane = lane;
    job->created_ms = jobs__now_ms();
    if (t) {
        job->type = t->name;
    } else {
        job->own_type = true;
        job->type = jobs__strdup(j, type ? type : "argv");
        if (!job->type)
            goto oom_job;
    }
    if (pvals[0] && !(job->configuration = jobs__strdup(j, pvals[0])))
        goto oom_job;
    if (!(job->spec = jobs__calloc(j, sizeof *job->spec)))
        goto oom_job;
    if ((pvals[1] && !(job->spec->port = jobs__strdup(j, pvals[1]))) ||
        (pvals[2] && !(job->spec->new_name = jobs__strdup(j, pvals[2]))))
        goto oom_job;
    const char *argv[JOBS__ARGV_MAX];
    size_t n_argv = 0;
    if (t) {
        for (size_t k = 0; k < t->n_argv; k++) {
            int i = placeholder_index(t->argv[k]);
            argv[n_argv++] = i >= 0 ? pvals[i] : t->argv[k];
        }
    } else {
        for (size_t k = 0; k < json_array_size(jargv); k++)
            argv[n_argv++] = json_string_value(json_array_get(jargv, k));
    }
    if (!(job->spec->argv = strv_copy(j, argv, n_argv)))
        goto oom_job;
    if (jenv && json_object_size(jenv)) {
        size_t n = json_object_size(jenv), i = 0;
        if (!(job->spec->env = jobs__calloc(j, (n + 1) * sizeof(char *))))
            goto oom_job;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)jenv, k, v)
        {
            size_t len = strlen(k) + json_string_length(v) + 2;
            char *e = jobs__malloc(j, len);
            if (!e)
                goto oom_job;
            snprintf(e, len, "%s=%s", k, json_string_value(v));
            job->spec->env[i++] = e;
        }
    }
    job->seq = j->next_seq++;
    job->status = JOBS__QUEUED;
    jobs__job_link(j, job);
    jobs__store_dirty(j);
    jobs__publish_state(j, job, 0);
    json_t *res = json_pack("{s:s}", "job_id", job->id);
    jobs__reply(j, 0, cb, data, res, res ? NULL : "internal", res ? NULL : "out of memory");
    jobs__kick(j);
    return;
oom_job:
    jobs__job_free(j, job);
oom:
    jobs__reply(j, 0, cb, data, NULL, "internal", "out of memory");
}

static void op_list(jobs *j, const json_t *args, jobs_reply_cb cb, void *data)
{
    static const char *const allowed[] = {"status", NULL};
    const char *badkey;
    if (!only_keys(args, allowed, &badkey)) {
        BAD("%s: unknown argument of list", badkey);
        return;
    }
    int status = -1;
    const json_t *js = json_object_get(args, "status");
    if (js && (status = jobs__status_parse(json_string_value(js))) < 0) {
        BAD("status: expected queued, running, completed, failed or cancelled");
        return;
    }
    json_t *arr = json_array();
    uint64_t gen = 0;
    for (jobs_job *job = j->head; arr && job; job = job->next) {
        if (status >= 0 && job->status != status)
            continue;
        if (job->term_gen > gen)
            gen = job->term_gen;
        if (json_array_append_new(arr, jobs__job_json(j, job, false))) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_t *res = arr ? json_pack("{s:o}", "jobs", arr) : NULL;
    jobs__reply(j, gen, cb, data, res, res ? NULL : "internal", res ? NULL : "out of memory");
}

static jobs_job *find_arg(jobs *j, const json_t *args, const char *const *allowed, jobs_reply_cb cb,
                          void *data)
{
    const char *badkey;
    if (!only_keys(args, allowed, &badkey)) {
        BAD("%s: unknown argument", badkey);
        return NULL;
    }
    const char *id = get_id(args);
    if (!id) {
        BAD("id: expected a job id (32 lowercase hex digits)");
        return NULL;
    }
    jobs_job *job = jobs__find(j, id);
    if (!job)
        jobs__reply(j, 0, cb, data, NULL, "not_found", "id: no job %s", id);
    return job;
}

static void op_get(jobs *j, const json_t *args, jobs_reply_cb cb, void *data)
{
    static const char *const allowed[] = {"id", NULL};
    jobs_job *job = find_arg(j, args, allowed, cb, data);
    if (!job)
        return;
    json_t *res = jobs__job_json(j, job, false);
    jobs__reply(j, job->term_gen, cb, data, res, res ? NULL : "internal",
                res ? NULL : "out of memory");
}

static void op_output(jobs *j, const json_t *args, jobs_reply_cb cb, void *data)
{
    static const char *const allowed[] = {"id", "offset", "limit_bytes", "tail_lines", NULL};
    jobs_job *job = find_arg(j, args, allowed, cb, data);
    if (!job)
        return;
    json_t *res = NULL;
    char msg[256] = "out of memory";
    int rc = jobs__output(j, job, args, &res, msg, sizeof msg);
    if (rc == -EINVAL)
        BAD("%s", msg);
    else if (rc)
        jobs__reply(j, 0, cb, data, NULL, "internal", "%s", msg);
    else
        jobs__reply(j, job->term_gen, cb, data, res, NULL, NULL);
}

static void op_cancel(jobs *j, const json_t *args, jobs_reply_cb cb, void *data)
{
    static const char *const allowed[] = {"id", NULL};
    jobs_job *job = find_arg(j, args, allowed, cb, data);
    if (!job)
        return;
    if (jobs__is_terminal(job->status)) {
        json_t *res = jobs__job_json(j, job, false);
        jobs__reply(j, job->term_gen, cb, data, res, res ? NULL : "internal",
                    res ? NULL : "out of memory");
        return;
    }
    jobs__report *r = jobs__calloc(j, sizeof *r);
    if (!r) {
        jobs__reply(j, 0, cb, data, NULL, "internal", "out of memory");
        return;
    }
    r->cb = cb;
    r->data = data;
    r->next = job->waiters;
    job->waiters = r;
    jobs__run_cancel(j, job);
}

static void op_clear(jobs *j, const json_t *args, jobs_reply_cb cb, void *data)
{
    static const char *const allowed[] = {NULL};
    const char *badkey;
    if (!only_keys(args, allowed, &badkey)) {
        BAD("%s: unknown argument of clear", badkey);
        return;
    }
    size_t removed = 0;
    for (jobs_job *job = j->head, *next; job; job = next) {
        next = job->next;
        if (!jobs__is_terminal(job->status) || jobs__is_prerequisite(j, job))
            continue;
        char path[4096];
        if (!jobs__log_path(j, job->id, path, sizeof path))
            unlink(path);
        jobs__job_unlink(j, job);
        jobs__job_free(j, job);
        removed++;
    }
    if (removed)
        jobs__store_dirty(j);
    json_t *res = json_pack("{s:I}", "removed", (json_int_t)removed);
    jobs__reply(j, removed ? j->dirty_gen : 0, cb, data, res, res ? NULL : "internal",
                res ? NULL : "out of memory");
}

void jobs__op(jobs *j, const char *op, const json_t *args, jobs_reply_cb cb, void *data)
{
    json_t *empty = NULL;
    if (!args)
        args = empty = json_object();
    if (!json_is_object(args)) {
        BAD("args: expected an object");
    } else if (strcmp(op, "submit") == 0) {
        op_submit(j, args, cb, data);
    } else if (strcmp(op, "list") == 0) {
        op_list(j, args, cb, data);
    } else if (strcmp(op, "get") == 0) {
        op_get(j, args, cb, data);
    } else if (strcmp(op, "output") == 0) {
        op_output(j, args, cb, data);
    } else if (strcmp(op, "cancel") == 0) {
        op_cancel(j, args, cb, data);
    } else if (strcmp(op, "clear") == 0) {
        op_clear(j, args, cb, data);
    } else {
        jobs__reply(j, 0, cb, data, NULL, "unknown_op", "op: unknown op \"%.64s\"", op);
    }
    json_decref(empty);
}
