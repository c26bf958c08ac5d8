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
        for (const char *const *a = allowed; *a != NULL && !ok; a++)
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
    /* It becomes an argv element of its own: one that starts with '-'
     * would be read as an option of the configured command. */
    if (s[0] == '-')
        return "must not start with '-' (the command would read it as an option)";
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
    char **v = jobs__calloc(j, (n + 1) * sizeof(*v));
    for (size_t i = 0; v != NULL && i < n; i++) {
        if ((v[i] = jobs__strdup(j, src[i])) == NULL) {
            for (size_t k = 0; k < i; k++)
                jobs__free(j, v[k]);
            jobs__free(j, v);
            return NULL;
        }
    }
    return v;
}

/* A submit's arguments, checked; borrowed from args and the config. */
typedef struct submit_args {
    const jobs__type *t;   /* the configured type, or NULL for a raw argv */
    const char *type;      /* the type name given (NULL: a raw argv without one) */
    const json_t *argv;    /* raw argv, or NULL */
    const json_t *env;     /* or NULL */
    const char *params[3]; /* configuration, port, new_name (NULL: absent) */
    size_t lane;
    const char *depends_on; /* or NULL */
} submit_args;

static const char *const param_names[] = {"configuration", "port", "new_name"};

#define REFUSE(...) base_errf(msg, msg_size, __VA_ARGS__)

/* submit_parse checks a submit's args into *sa; -EINVAL with the message
 * for a bad_request otherwise. */
static int submit_parse(const jobs_config *cfg, const json_t *args, submit_args *sa, char *msg,
                        size_t msg_size)
{
    static const char *const allowed[] = {"type", "configuration", "port",       "new_name", "argv",
                                          "env",  "lane",          "depends_on", NULL};
    const char *badkey;
    memset(sa, 0, sizeof(*sa));
    if (!only_keys(args, allowed, &badkey))
        return REFUSE("%s: unknown argument of submit", badkey);
    const json_t *jtype = json_object_get(args, "type");
    sa->argv = json_object_get(args, "argv");
    sa->env = json_object_get(args, "env");
    if (jtype != NULL && !json_is_string(jtype))
        return REFUSE("type: expected a string");
    sa->type = json_string_value(jtype);
    sa->t = jobs__config_type(cfg, sa->type);
    if ((sa->argv != NULL || sa->env != NULL) && !cfg->allow_argv)
        return REFUSE("%s: not allowed by this worker (allow_argv is false)",
                      sa->argv != NULL ? "argv" : "env");
    if (sa->argv != NULL) {
        if (sa->t != NULL)
            return REFUSE("argv: type \"%s\" has a configured argv", sa->type);
        if (sa->type != NULL && !base_name_valid(sa->type))
            return REFUSE("type: expected 1-64 of [a-z0-9_-]");
        if (!json_is_array(sa->argv) || json_array_size(sa->argv) == 0 ||
            json_array_size(sa->argv) > JOBS__ARGV_MAX)
            return REFUSE("argv: expected a non-empty array of strings");
        size_t i;
        json_t *a;
        json_array_foreach(sa->argv, i, a)
        {
            if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a) ||
                (i == 0 && json_string_length(a) == 0))
                return REFUSE("argv[%zu]: expected a string without NUL bytes", i);
        }
    } else if (sa->type == NULL) {
        return REFUSE("type: required");
    } else if (sa->t == NULL) {
        return REFUSE("type: unknown job type \"%.64s\"", sa->type);
    }
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(args, param_names[i]);
        if (v == NULL)
            continue;
        const char *why = param_problem(v, i == 0);
        if (why != NULL)
            return REFUSE("%s: %s", param_names[i], why);
        sa->params[i] = json_string_value(v);
    }
    for (size_t k = 0; sa->t != NULL && k < sa->t->n_argv; k++) {
        int i = placeholder_index(sa->t->argv[k]);
        if (i >= 0 && sa->params[i] == NULL)
            return REFUSE("%s: required by type \"%s\"", param_names[i], sa->t->name);
    }
    if (sa->env != NULL) {
        if (!json_is_object(sa->env) || json_object_size(sa->env) > JOBS__ARGV_MAX)
            return REFUSE("env: expected an object of strings");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)sa->env, k, v)
        {
            bool ok = k[0] && !(k[0] >= '0' && k[0] <= '9');
            for (const char *p = k; *p && ok; p++)
                ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '_';
            if (!ok)
                return REFUSE("env.%.64s: expected a variable name of [A-Za-z0-9_]", k);
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                return REFUSE("env.%s: expected a string without NUL bytes", k);
        }
    }
    sa->lane = sa->t != NULL ? sa->t->lane : 0;
    const json_t *jlane = json_object_get(args, "lane");
    if (jlane != NULL) {
        long l = json_is_string(jlane) ? jobs__config_lane(cfg, json_string_value(jlane)) : -1;
        if (l < 0)
            return REFUSE("lane: expected the name of a configured lane");
        sa->lane = (size_t)l;
    }
    const json_t *jdep = json_object_get(args, "depends_on");
    if (jdep != NULL && !jobs__id_valid(json_string_value(jdep)))
        return REFUSE("depends_on: expected a job id (32 lowercase hex digits)");
    sa->depends_on = json_string_value(jdep);
    return 0;
}

/* submit_build makes the queued job a checked submit describes: its id,
 * metadata and the argv and env it will run with. NULL when out of memory
 * or out of randomness (*why says which). */
static jobs_job *submit_build(jobs *j, const submit_args *sa, const char **why)
{
    *why = "out of memory";
    jobs_job *job = jobs__calloc(j, sizeof(*job));
    if (job == NULL)
        return NULL;
    if (jobs__new_id(job->id)) {
        *why = "getrandom failed";
        goto fail;
    }
    if (sa->depends_on != NULL)
        memcpy(job->depends_on, sa->depends_on, JOBS__ID_LEN + 1);
    job->lane = sa->lane;
    job->created_ms = base_now_ms();
    if (sa->t != NULL) {
        job->type = sa->t->name;
    } else {
        job->own_type = true;
        if ((job->type = jobs__strdup(j, sa->type != NULL ? sa->type : "argv")) == NULL)
            goto fail;
    }
    if (sa->params[0] != NULL && (job->configuration = jobs__strdup(j, sa->params[0])) == NULL)
        goto fail;
    if ((job->spec = jobs__calloc(j, sizeof(*job->spec))) == NULL)
        goto fail;
    if ((sa->params[1] != NULL && (job->spec->port = jobs__strdup(j, sa->params[1])) == NULL) ||
        (sa->params[2] != NULL && (job->spec->new_name = jobs__strdup(j, sa->params[2])) == NULL))
        goto fail;
    const char *argv[JOBS__ARGV_MAX];
    size_t n_argv = 0;
    if (sa->t != NULL) {
        for (size_t k = 0; k < sa->t->n_argv; k++) {
            int i = placeholder_index(sa->t->argv[k]);
            argv[n_argv++] = i >= 0 ? sa->params[i] : sa->t->argv[k];
        }
    } else {
        for (size_t k = 0; k < json_array_size(sa->argv); k++)
            argv[n_argv++] = json_string_value(json_array_get(sa->argv, k));
    }
    if ((job->spec->argv = strv_copy(j, argv, n_argv)) == NULL)
        goto fail;
    if (sa->env != NULL && json_object_size(sa->env)) {
        size_t n = json_object_size(sa->env), i = 0;
        if ((job->spec->env = jobs__calloc(j, (n + 1) * sizeof(char *))) == NULL)
            goto fail;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)sa->env, k, v)
        {
            size_t len = strlen(k) + json_string_length(v) + 2;
            char *e = jobs__malloc(j, len);
            if (e == NULL)
                goto fail;
            snprintf(e, len, "%s=%s", k, json_string_value(v));
            job->spec->env[i++] = e;
        }
    }
    job->status = JOBS__QUEUED;
    return job;
fail:
    jobs__job_free(j, job);
    return NULL;
}

static void op_submit(jobs *j, const json_t *args, jobs_reply_cb cb, void *data)
{
    submit_args sa;
    char msg[256];
    const char *why;

    if (submit_parse(j->cfg, args, &sa, msg, sizeof(msg)) < 0) {
        BAD("%s", msg);
        return;
    }
    if (j->counts[JOBS__QUEUED] >= j->cfg->max_queued) {
        jobs__reply(j, 0, cb, data, NULL, "queue_full", "max_queued: %u jobs are already queued",
                    j->cfg->max_queued);
        return;
    }
    jobs_job *job = submit_build(j, &sa, &why);
    if (job == NULL) {
        jobs__reply(j, 0, cb, data, NULL, "internal", "%s", why);
        return;
    }
    job->seq = j->next_seq++;
    /* Durable before it is answered or run: the reply and the queued event
     * wait for the jobs.json write that first holds the job (a write asked
     * for by a waiting submit starts without the coalescing delay). */
    job->submit_gen = j->dirty_gen + 1;
    if (jobs__reply_submit(j, job, cb, data) < 0) {
        jobs__job_free(j, job);
        jobs__reply(j, 0, cb, data, NULL, "internal", "out of memory");
        return;
    }
    jobs__job_link(j, job);
    jobs__store_dirty(j);
    jobs__publish_state(j, job, job->submit_gen, true);
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
    if (js != NULL && (status = jobs__status_parse(json_string_value(js))) < 0) {
        BAD("status: expected queued, running, completed, failed or cancelled");
        return;
    }
    json_t *arr = json_array();
    uint64_t gen = 0;
    for (jobs_job *job = jobs__first(j); arr != NULL && job != NULL; job = jobs__next(j, job)) {
        if (status >= 0 && job->status != status)
            continue;
        if (job->term_gen > gen)
            gen = job->term_gen;
        if (json_array_append_new(arr, jobs__job_json(j, job, false))) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_t *res = arr != NULL ? json_pack("{s:o}", "jobs", arr) : NULL;
    jobs__reply(j, gen, cb, data, res, res != NULL ? NULL : "internal",
                res != NULL ? NULL : "out of memory");
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
    if (id == NULL) {
        BAD("id: expected a job id (32 lowercase hex digits)");
        return NULL;
    }
    jobs_job *job = jobs__find(j, id);
    if (job == NULL)
        jobs__reply(j, 0, cb, data, NULL, "not_found", "id: no job %s", id);
    return job;
}

static void op_get(jobs *j, const json_t *args, jobs_reply_cb cb, void *data)
{
    static const char *const allowed[] = {"id", NULL};
    jobs_job *job = find_arg(j, args, allowed, cb, data);
    if (job == NULL)
        return;
    json_t *res = jobs__job_json(j, job, false);
    jobs__reply(j, job->term_gen, cb, data, res, res != NULL ? NULL : "internal",
                res != NULL ? NULL : "out of memory");
}

static void op_output(jobs *j, const json_t *args, jobs_reply_cb cb, void *data)
{
    static const char *const allowed[] = {"id", "offset", "limit_bytes", "tail_lines", NULL};
    jobs_job *job = find_arg(j, args, allowed, cb, data);
    if (job == NULL)
        return;
    json_t *res = NULL;
    char msg[256] = "out of memory";
    int rc = jobs__output(j, job, args, &res, msg, sizeof(msg));
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
    if (job == NULL)
        return;
    if (jobs__is_terminal(job->status)) {
        json_t *res = jobs__job_json(j, job, false);
        jobs__reply(j, job->term_gen, cb, data, res, res != NULL ? NULL : "internal",
                    res != NULL ? NULL : "out of memory");
        return;
    }
    jobs__report *r = jobs__calloc(j, sizeof(*r));
    if (r == NULL) {
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
    for (jobs_job *job = jobs__first(j), *next; job != NULL; job = next) {
        next = jobs__next(j, job);
        if (!jobs__is_terminal(job->status) || jobs__is_prerequisite(j, job))
            continue;
        char path[4096];
        if (!jobs__log_path(j, job->id, path, sizeof(path)))
            unlink(path);
        jobs__job_unlink(j, job);
        jobs__job_free(j, job);
        removed++;
    }
    if (removed)
        jobs__store_dirty(j);
    json_t *res = json_pack("{s:I}", "removed", (json_int_t)removed);
    jobs__reply(j, removed ? j->dirty_gen : 0, cb, data, res, res != NULL ? NULL : "internal",
                res != NULL ? NULL : "out of memory");
}

void jobs__op(jobs *j, const char *op, const json_t *args, jobs_reply_cb cb, void *data)
{
    json_t *empty = NULL;
    if (args == NULL)
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
