/* Children end to end: exact output, trimming, UTF-8, events, depends_on,
 * cancel, SIGKILL after kill_timeout_s, queue_full, refused submits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/jobs_support.h"

static const char *const CONFIG =
    "{\"allow_argv\": true, \"kill_timeout_s\": 0.3, \"max_queued\": 50,"
    " \"lanes\": {\"default\": 4, \"solo\": 1},"
    " \"types\": {\"compile\": {\"argv\": [\"printf\", \"%s\\n\", \"{configuration}\"],"
    "                         \"lane\": \"solo\"},"
    "             \"upload\": {\"argv\": [\"sh\", \"-c\", \"exit 3\", \"{port}\"]}}}";

static char *expected_mixed(size_t *len)
{
    char *buf = malloc(4096);
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(buf + n, "line %d%c", i, i % 3 == 0 ? '\r' : '\n');
    *len = n;
    return buf;
}

static void test_output_exact(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    ts_start(&t);
    t.check_durable = true;
    const char *id = ts_submit(
        &t, "{\"argv\": [\"sh\", \"-c\", \"i=0; while [ $i -lt 100 ]; do if [ $((i%3)) = 0 ];"
            " then printf 'line %d\\r' $i; else printf 'line %d\\n' $i; fi; i=$((i+1)); done\"]}");
    char idc[JOBS__ID_LEN + 1];
    strcpy(idc, id);
    json_t *m = ts_wait(&t, idc);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "completed");
    assert_int_equal(json_integer_value(json_object_get(m, "exit_code")), 0);
    assert_true(json_is_null(json_object_get(m, "signal")));
    assert_int_equal(json_integer_value(json_object_get(m, "output_lines")), 100);
    assert_string_equal(json_string_value(json_object_get(m, "type")), "argv");
    assert_string_equal(json_string_value(json_object_get(m, "lane")), "default");
    assert_non_null(json_string_value(json_object_get(m, "started_at")));
    size_t want_len;
    char *want = expected_mixed(&want_len);
    assert_int_equal(json_integer_value(json_object_get(m, "output_bytes")), want_len);
    json_decref(m);

    char path[4200];
    ts_log_path(&t, idc, path, sizeof(path));
    size_t len;
    char *log = ts_read_file(path, &len);
    assert_int_equal(len, want_len);
    assert_memory_equal(log, want, len);
    free(log);

    /* Paged in odd-sized pieces. */
    char *out = ts_output_all(&t, idc, 97, &len);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, len);
    free(out);

    /* The published batches join up to the same bytes at the right offsets. */
    char topic[128];
    snprintf(topic, sizeof(topic), "job.jw.%s.output", idc);
    size_t n = 0;
    char *pub = malloc(want_len + 1);
    int states = 0;
    const char *last_state = NULL;
    for (size_t i = 0; i < t.n_events; i++) {
        json_t *p = json_loads(t.events[i].payload, 0, NULL);
        assert_non_null(p);
        if (strcmp(t.events[i].topic, topic) == 0) {
            assert_int_equal(json_integer_value(json_object_get(p, "offset")), n);
            const json_t *d = json_object_get(p, "data");
            assert_true(n + json_string_length(d) <= want_len);
            memcpy(pub + n, json_string_value(d), json_string_length(d));
            n += json_string_length(d);
        } else if (strstr(t.events[i].topic, idc) != NULL &&
                   strstr(t.events[i].topic, ".state") != NULL) {
            states++;
            last_state = json_string_value(json_object_get(p, "status"));
            assert_string_equal(t.events[i].topic + strlen(t.events[i].topic) - 6, ".state");
            assert_string_equal(last_state, states == 1   ? "queued"
                                            : states == 2 ? "running"
                                                          : "completed");
        }
        json_decref(p);
    }
    assert_int_equal(states, 3);
    assert_int_equal(n, want_len);
    assert_memory_equal(pub, want, n);
    free(pub);
    free(want);
    assert_int_equal(t.durable_checked, 1);
    assert_int_equal(t.durable_failed, 0);
    ts_fini(&t);
}

static void test_trim_10000_lines(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    ts_start(&t);
    char id[JOBS__ID_LEN + 1];
    strcpy(id, ts_submit(&t, "{\"argv\": [\"seq\", \"1\", \"10000\"]}"));
    json_t *m = ts_wait(&t, id);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "completed");
    assert_int_equal(json_integer_value(json_object_get(m, "output_lines")), 10000);
    json_decref(m);

    char *want = malloc(65536);
    size_t wn = 0;
    for (int i = 8001; i <= 10000; i++)
        wn += (size_t)sprintf(want + wn, "%d\n", i);
    char path[4200];
    ts_log_path(&t, id, path, sizeof(path));
    size_t len = 0;
    char *log = ts_read_file(path, &len);
    const char *nl = strchr(log, '\n');
    assert_non_null(nl);
    static const char notice[] = "[herd] output trimmed: ";
    assert_memory_equal(log, notice, sizeof(notice) - 1);
    size_t head = (size_t)(nl + 1 - log);
    assert_int_equal(len - head, wn);
    assert_memory_equal(log + head, want, wn);
    assert_int_equal(jobs__count_lines(log, len), 2001);
    free(log);
    free(want);

    char args[128];
    snprintf(args, sizeof(args), "{\"id\": \"%s\", \"tail_lines\": 3}", id);
    ts_reply r = ts_req(&t, "output", args);
    assert_non_null(r.result);
    assert_string_equal(json_string_value(json_object_get(r.result, "data")),
                        "9998\n9999\n10000\n");
    assert_true(json_is_true(json_object_get(r.result, "eof")));
    assert_int_equal(json_integer_value(json_object_get(r.result, "next_offset")), len);
    json_decref(r.result);
    ts_fini(&t);
}

static void test_invalid_utf8(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    ts_start(&t);
    char id[JOBS__ID_LEN + 1];
    strcpy(id, ts_submit(
                   &t, "{\"argv\": [\"printf\", \"\\\\377abc\\\\n\\\\303\\\\251\\\\n\\\\303\"]}"));
    json_decref(ts_wait(&t, id));
    static const char raw[] = "\377abc\n\303\251\n\303";
    char path[4200];
    ts_log_path(&t, id, path, sizeof(path));
    size_t len;
    char *log = ts_read_file(path, &len);
    assert_int_equal(len, sizeof(raw) - 1);
    assert_memory_equal(log, raw, len);
    free(log);
    char *out = ts_output_all(&t, id, 65536, &len);
    assert_string_equal(out, "\xef\xbf\xbd"
                             "abc\n\303\251\n\xef\xbf\xbd");
    free(out);
    /* A page boundary inside the two-byte character does not split it. */
    char args[128];
    snprintf(args, sizeof(args), "{\"id\": \"%s\", \"offset\": 4, \"limit_bytes\": 2}", id);
    ts_reply r = ts_req(&t, "output", args);
    assert_string_equal(json_string_value(json_object_get(r.result, "data")), "\n");
    assert_int_equal(json_integer_value(json_object_get(r.result, "next_offset")), 5);
    json_decref(r.result);
    ts_fini(&t);
}

static void test_types_and_exit_codes(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    ts_start(&t);
    /* {configuration} becomes one argv element, spaces and quotes included. */
    char id[JOBS__ID_LEN + 1];
    strcpy(id, ts_submit(&t, "{\"type\": \"compile\", \"configuration\": \"a b;'$(x)'.yaml\"}"));
    json_t *m = ts_wait(&t, id);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(m, "configuration")), "a b;'$(x)'.yaml");
    assert_string_equal(json_string_value(json_object_get(m, "lane")), "solo");
    json_decref(m);
    char args[128];
    snprintf(args, sizeof(args), "{\"id\": \"%s\"}", id);
    ts_reply r = ts_req(&t, "output", args);
    assert_string_equal(json_string_value(json_object_get(r.result, "data")), "a b;'$(x)'.yaml\n");
    json_decref(r.result);

    strcpy(id, ts_submit(&t, "{\"type\": \"upload\", \"port\": \"/dev/ttyUSB0\"}"));
    m = ts_wait(&t, id);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "failed");
    assert_int_equal(json_integer_value(json_object_get(m, "exit_code")), 3);
    assert_string_equal(json_string_value(json_object_get(m, "error")), "exited with code 3");
    json_decref(m);

    strcpy(id, ts_submit(&t, "{\"argv\": [\"/nonexistent/program\"]}"));
    m = ts_wait(&t, id);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(m, "error")), "cannot start"));
    assert_true(json_is_null(json_object_get(m, "exit_code")));
    json_decref(m);

    /* env reaches the child, next to HERD_JOB_ID. */
    strcpy(id, ts_submit(&t, "{\"argv\": [\"sh\", \"-c\", \"printf '%s %s' \\\"$GREETING\\\" "
                             "\\\"$HERD_JOB_ID\\\"\"], \"env\": {\"GREETING\": \"hi\"}}"));
    json_decref(ts_wait(&t, id));
    snprintf(args, sizeof(args), "{\"id\": \"%s\"}", id);
    r = ts_req(&t, "output", args);
    char want[64];
    snprintf(want, sizeof(want), "hi %s", id);
    assert_string_equal(json_string_value(json_object_get(r.result, "data")), want);
    json_decref(r.result);

    r = ts_req(&t, "list", "{\"status\": \"failed\"}");
    assert_int_equal(json_array_size(json_object_get(r.result, "jobs")), 2);
    json_decref(r.result);
    ts_fini(&t);
}

static void test_depends_on(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    ts_start(&t);
    char a[33], b[33], c[33], args[256];
    /* Success chain: each starts after its prerequisite completed. */
    strcpy(a, ts_submit(&t, "{\"argv\": [\"sh\", \"-c\", \"sleep 0.2\"]}"));
    snprintf(args, sizeof(args), "{\"argv\": [\"true\"], \"depends_on\": \"%s\"}", a);
    strcpy(b, ts_submit(&t, args));
    snprintf(args, sizeof(args), "{\"argv\": [\"true\"], \"depends_on\": \"%s\"}", b);
    strcpy(c, ts_submit(&t, args));
    assert_string_equal(ts_status(&t, b), "queued");
    json_t *ma = ts_wait(&t, a), *mb = ts_wait(&t, b), *mc = ts_wait(&t, c);
    assert_string_equal(json_string_value(json_object_get(mc, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(mb, "depends_on")), a);
    assert_true(strcmp(json_string_value(json_object_get(mb, "started_at")),
                       json_string_value(json_object_get(ma, "completed_at"))) >= 0);
    assert_true(strcmp(json_string_value(json_object_get(mc, "started_at")),
                       json_string_value(json_object_get(mb, "completed_at"))) >= 0);
    json_decref(ma);
    json_decref(mb);
    json_decref(mc);

    /* Failure: the dependent and its own dependent are cancelled. */
    strcpy(a, ts_submit(&t, "{\"argv\": [\"false\"]}"));
    snprintf(args, sizeof(args), "{\"argv\": [\"true\"], \"depends_on\": \"%s\"}", a);
    strcpy(b, ts_submit(&t, args));
    snprintf(args, sizeof(args), "{\"argv\": [\"true\"], \"depends_on\": \"%s\"}", b);
    strcpy(c, ts_submit(&t, args));
    const char *ids[] = {b, c};
    for (int i = 0; i < 2; i++) {
        json_t *m = ts_wait(&t, ids[i]);
        assert_string_equal(json_string_value(json_object_get(m, "status")), "cancelled");
        assert_string_equal(json_string_value(json_object_get(m, "error")),
                            "prerequisite job did not complete successfully");
        assert_true(json_is_null(json_object_get(m, "started_at")));
        json_decref(m);
    }
    /* Gone: a prerequisite that does not exist. */
    strcpy(b, ts_submit(&t, "{\"argv\": [\"true\"], \"depends_on\": "
                            "\"0123456789abcdef0123456789abcdef\"}"));
    json_t *m = ts_wait(&t, b);
    assert_string_equal(json_string_value(json_object_get(m, "error")),
                        "prerequisite job did not complete successfully");
    json_decref(m);
    ts_fini(&t);
}

static void test_cancel(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    ts_start(&t);
    t.check_durable = true;
    char run[33], queued[33], stubborn[33], args[256];
    /* The solo lane holds one job: the second waits. */
    strcpy(run, ts_submit(&t, "{\"argv\": [\"sleep\", \"30\"], \"lane\": \"solo\"}"));
    strcpy(queued, ts_submit(&t, "{\"argv\": [\"true\"], \"lane\": \"solo\"}"));
    ts_wait_status(&t, run, "running");
    assert_string_equal(ts_status(&t, queued), "queued");

    snprintf(args, sizeof(args), "{\"id\": \"%s\"}", queued);
    ts_reply r = ts_req(&t, "cancel", args);
    assert_non_null(r.result);
    assert_string_equal(json_string_value(json_object_get(r.result, "status")), "cancelled");
    assert_string_equal(json_string_value(json_object_get(r.result, "error")),
                        "cancelled by request");
    json_decref(r.result);

    /* Running: SIGTERM to the group; the reply waits for the end. */
    snprintf(args, sizeof(args), "{\"id\": \"%s\"}", run);
    r = ts_req(&t, "cancel", args);
    assert_non_null(r.result);
    assert_string_equal(json_string_value(json_object_get(r.result, "status")), "cancelled");
    assert_int_equal(json_integer_value(json_object_get(r.result, "signal")), SIGTERM);
    json_decref(r.result);
    /* Cancelling a finished job changes nothing. */
    r = ts_req(&t, "cancel", args);
    assert_string_equal(json_string_value(json_object_get(r.result, "status")), "cancelled");
    json_decref(r.result);

    /* A group that ignores SIGTERM gets SIGKILL after kill_timeout_s; the
     * grandchild (sleep) is in the group too, so nothing lingers. */
    strcpy(stubborn, ts_submit(&t, "{\"argv\": [\"sh\", \"-c\", \"trap '' TERM; echo ready;"
                                   " sleep 30; echo never\"]}"));
    for (;;) {
        snprintf(args, sizeof(args), "{\"id\": \"%s\"}", stubborn);
        r = ts_req(&t, "output", args);
        bool ready = strstr(json_string_value(json_object_get(r.result, "data")), "ready") != NULL;
        json_decref(r.result);
        if (ready)
            break;
        uv_run(&t.loop, UV_RUN_ONCE);
    }
    r = ts_req(&t, "cancel", args);
    assert_string_equal(json_string_value(json_object_get(r.result, "status")), "cancelled");
    assert_int_equal(json_integer_value(json_object_get(r.result, "signal")), SIGKILL);
    json_decref(r.result);
    assert_non_null(strstr(t.last_log, "SIGKILL"));
    assert_int_equal(t.durable_failed, 0);
    assert_int_equal(t.durable_checked, 3);
    ts_fini(&t);
}

static void test_queue_full(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, "{\"allow_argv\": true, \"max_queued\": 2, \"kill_timeout_s\": 0.2}");
    ts_start(&t);
    char blocker[33];
    strcpy(blocker, ts_submit(&t, "{\"argv\": [\"sleep\", \"30\"]}"));
    ts_wait_status(&t, blocker, "running");
    ts_submit(&t, "{\"argv\": [\"true\"]}");
    ts_submit(&t, "{\"argv\": [\"true\"]}");
    ts_reply r = ts_req(&t, "submit", "{\"argv\": [\"true\"]}");
    assert_null(r.result);
    assert_string_equal(r.code, "queue_full");
    assert_string_equal(r.message, "max_queued: 2 jobs are already queued");
    /* Closing kills the running job but keeps it `running` on disk. */
    ts_close_jobs(&t);
    char path[4200];
    snprintf(path, sizeof(path), "%s/jobs.json", t.dir);
    json_t *root = json_load_file(path, 0, NULL);
    size_t i;
    json_t *o;
    int running = 0, queued = 0;
    json_array_foreach(json_object_get(root, "jobs"), i, o)
    {
        const char *st = json_string_value(json_object_get(o, "status"));
        running += !strcmp(st, "running");
        queued += !strcmp(st, "queued");
    }
    json_decref(root);
    assert_int_equal(running, 1);
    assert_int_equal(queued, 2);
    ts_fini(&t);
}

/* One refused request a line: op, args, code, exact message. */
static const struct {
    const char *op, *args, *code, *message;
} refused[] = {
    {"submit", "{\"type\": \"compile\", \"configuration\": \"../x\"}", "bad_request",
     "configuration: must be a relative path without \"..\" components"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"a/../../x\"}", "bad_request",
     "configuration: must be a relative path without \"..\" components"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"/abs/x.yaml\"}", "bad_request",
     "configuration: must be a relative path, not an absolute one"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"a\\u0000b\"}", "bad_request",
     "configuration: must not contain NUL bytes"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"a\\nb\"}", "bad_request",
     "configuration: must not contain control characters"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"a\\u001bb\"}", "bad_request",
     "configuration: must not contain control characters"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"\"}", "bad_request",
     "configuration: must not be empty"},
    {"submit", "{\"type\": \"compile\", \"configuration\": 5}", "bad_request",
     "configuration: expected a string"},
    {"submit", "{\"type\": \"upload\", \"port\": \"a\\tb\"}", "bad_request",
     "port: must not contain control characters"},
    {"submit", "{\"type\": \"compile\"}", "bad_request",
     "configuration: required by type \"compile\""},
    {"submit", "{\"type\": \"nope\"}", "bad_request", "type: unknown job type \"nope\""},
    {"submit", "{}", "bad_request", "type: required"},
    {"submit", "{\"argv\": [\"true\"]}", "bad_request",
     "argv: not allowed by this worker (allow_argv is false)"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"x\", \"env\": {\"A\": \"b\"}}",
     "bad_request", "env: not allowed by this worker (allow_argv is false)"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"x\", \"colour\": 1}", "bad_request",
     "colour: unknown argument of submit"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"x\", \"lane\": \"fast\"}",
     "bad_request", "lane: expected the name of a configured lane"},
    {"submit", "{\"type\": \"compile\", \"configuration\": \"x\", \"depends_on\": \"abc\"}",
     "bad_request", "depends_on: expected a job id (32 lowercase hex digits)"},
    {"get", "{}", "bad_request", "id: expected a job id (32 lowercase hex digits)"},
    {"get", "{\"id\": \"0123456789abcdef0123456789abcdef\"}", "not_found",
     "id: no job 0123456789abcdef0123456789abcdef"},
    {"cancel", "{\"id\": \"0123456789abcdef0123456789abcdef\"}", "not_found",
     "id: no job 0123456789abcdef0123456789abcdef"},
    {"list", "{\"status\": \"done\"}", "bad_request",
     "status: expected queued, running, completed, failed or cancelled"},
    {"clear", "{\"all\": true}", "bad_request", "all: unknown argument of clear"},
    {"frobnicate", "{}", "unknown_op", "op: unknown op \"frobnicate\""},
};

static void test_refused(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, "{\"types\": {\"compile\": {\"argv\": [\"true\", \"{configuration}\"]},"
                  " \"upload\": {\"argv\": [\"true\", \"{port}\"]}}}");
    ts_start(&t);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        ts_reply r = ts_req(&t, refused[i].op, refused[i].args);
        if (r.result != NULL)
            fail_msg("case %zu (%s %s) accepted", i, refused[i].op, refused[i].args);
        if (strcmp(r.code, refused[i].code) || strcmp(r.message, refused[i].message))
            fail_msg("case %zu (%s %s):\n  got  %s %s\n  want %s %s", i, refused[i].op,
                     refused[i].args, r.code, r.message, refused[i].code, refused[i].message);
    }
    assert_int_equal(t.j->jobs.count, 0);
    /* Names that merely contain dots are fine. */
    char id[33];
    strcpy(id, ts_submit(&t, "{\"type\": \"compile\", \"configuration\": \"dir/a..b/./x.yaml\"}"));
    {
        char args[160];
        snprintf(args, sizeof(args), "{\"id\": \"%s\", \"offset\": 0, \"tail_lines\": 2}", id);
        ts_reply r = ts_req(&t, "output", args);
        assert_string_equal(r.message, "tail_lines: cannot be combined with offset");
        snprintf(args, sizeof(args), "{\"id\": \"%s\", \"limit_bytes\": 0}", id);
        r = ts_req(&t, "output", args);
        assert_string_equal(r.code, "bad_request");
    }
    json_decref(ts_wait(&t, id));
    ts_reply r = ts_req(&t, "clear", NULL);
    assert_int_equal(json_integer_value(json_object_get(r.result, "removed")), 1);
    json_decref(r.result);
    assert_int_equal(t.j->jobs.count, 0);
    ts_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_exact), cmocka_unit_test(test_trim_10000_lines),
        cmocka_unit_test(test_invalid_utf8), cmocka_unit_test(test_types_and_exit_codes),
        cmocka_unit_test(test_depends_on),   cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_queue_full),   cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
