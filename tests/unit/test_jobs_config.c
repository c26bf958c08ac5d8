/* jobs_config_parse: accepted configs, defaults, and one error per line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "jobs/internal.h"

#include <string.h>

/* What the worker runtime checks itself (worker_common_keys): the host's
 * keys, which the library accepts and ignores. */
static const char *const host_keys[] = {
    "name",        "kind",       "enabled",           "restart",        "backoff",   "intensity",
    "memory_high", "memory_max", "health_interval_s", "stop_timeout_s", "queue_max", NULL,
};

static jobs_config *parse_ok(const char *text)
{
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    assert_non_null(o);
    jobs_config *cfg = NULL;
    char err[256] = "";
    int rc = jobs_config_parse(o, "workers[3]", host_keys, &cfg, err, sizeof(err));
    json_decref(o);
    if (rc)
        fail_msg("%s: %s", text, err);
    return cfg;
}

static void test_defaults(void **state)
{
    jobs_config *cfg = parse_ok("{\"name\": \"jobs\", \"kind\": \"jobs\"}");
    assert_int_equal(cfg->max_queued, 1000);
    assert_int_equal(cfg->inflight_lines, 4000);
    assert_int_equal(cfg->inflight_trim_lines, 2000);
    assert_int_equal(cfg->retained_lines, 2000);
    assert_int_equal(cfg->log_max_bytes, 64ull << 20);
    assert_int_equal(cfg->primary_max, 500);
    assert_int_equal(cfg->aux_max, 5);
    assert_false(cfg->allow_argv);
    assert_int_equal(cfg->n_lanes, 1);
    assert_string_equal(cfg->lanes[0].name, "default");
    assert_null(jobs_config_state_dir(cfg));
    /* Built-in primary names apply to types that are not configured. */
    assert_true(jobs__config_primary(cfg, "compile"));
    assert_true(jobs__config_primary(cfg, "upload"));
    assert_true(jobs__config_primary(cfg, "install"));
    assert_false(jobs__config_primary(cfg, "logs"));
    jobs_config_free(cfg);
    jobs_config_free(NULL);
}

static void test_full(void **state)
{
    jobs_config *cfg = parse_ok(
        "{\"name\": \"jobs\", \"kind\": \"jobs\", \"enabled\": true, \"restart\": \"permanent\","
        " \"backoff\": {}, \"intensity\": {}, \"memory_high\": \"1M\", \"memory_max\": \"2M\","
        " \"health_interval_s\": 5, \"stop_timeout_s\": 5,"
        " \"state_dir\": \"/var/lib/herd/jobs\", \"lanes\": {\"compile\": 1, \"upload\": 4,"
        " \"default\": 2}, \"max_queued\": 10, \"allow_argv\": true, \"kill_timeout_s\": 0.5,"
        " \"inflight_lines\": 100, \"retained_lines\": 50, \"log_max_bytes\": \"1MiB\","
        " \"primary_max\": 7, \"aux_max\": 0,"
        " \"types\": {\"compile\": {\"argv\": [\"esphome\", \"compile\", \"{configuration}\"],"
        " \"lane\": \"compile\"}, \"logs\": {\"argv\": [\"esphome\", \"logs\", \"{configuration}\","
        " \"--device\", \"{port}\"], \"primary\": true}, \"install\": {\"argv\": [\"x\"],"
        " \"primary\": false}}}");
    assert_string_equal(jobs_config_state_dir(cfg), "/var/lib/herd/jobs");
    assert_int_equal(cfg->n_lanes, 3);
    assert_int_equal(cfg->lanes[0].capacity, 2);
    assert_int_equal(jobs__config_lane(cfg, "upload"), 2);
    assert_int_equal(cfg->lanes[2].capacity, 4);
    assert_int_equal(cfg->max_queued, 10);
    assert_true(cfg->allow_argv);
    assert_true(cfg->kill_timeout_s == 0.5);
    assert_int_equal(cfg->inflight_trim_lines, 50);
    assert_int_equal(cfg->log_max_bytes, 1u << 20);
    assert_int_equal(cfg->aux_max, 0);
    const jobs__type *t = jobs__config_type(cfg, "compile");
    assert_non_null(t);
    assert_true(t->primary);
    assert_int_equal(t->lane, 1);
    assert_int_equal(t->n_argv, 3);
    assert_string_equal(t->argv[2], "{configuration}");
    assert_true(jobs__config_primary(cfg, "logs"));
    assert_false(jobs__config_primary(cfg, "install"));
    assert_int_equal(jobs__config_type(cfg, "logs")->lane, 0);
    jobs_config_free(cfg);
}

static void test_sizes(void **state)
{
    static const struct {
        const char *json;
        uint64_t want; /* 0: refused */
    } cases[] = {
        {"4096", 4096},
        {"\"64M\"", 64ull << 20},
        {"\"64MiB\"", 64ull << 20},
        {"\"1G\"", 1ull << 30},
        {"\"512K\"", 512 << 10},
        {"\"100B\"", 100},
        {"\"12\"", 12},
        {"\"64X\"", 0},
        {"\"-1M\"", 0},
        {"\"M\"", 0},
        {"0", 0},
        {"-5", 0},
        {"true", 0},
        {"\"0M\"", 0},
        {"\"64 M\"", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        uint64_t got = 0;
        int rc = base_parse_size(v, &got);
        if (rc == 0 && got == 0)
            rc = -EINVAL; /* a jobs size must be positive (log_max_bytes >= 4096) */
        json_decref(v);
        if (cases[i].want) {
            assert_int_equal(rc, 0);
            assert_int_equal(got, cases[i].want);
        } else if (rc == 0) {
            fail_msg("size %s accepted as %llu", cases[i].json, (unsigned long long)got);
        }
    }
}

/* One bad config a line: the object's text and the exact message. */
static const struct {
    const char *json;
    const char *error;
} bad[] = {
    {"[]", "workers[3]: expected an object"},
    {"{\"colour\": 1}", "workers[3].colour: unknown key"},
    {"{\"state_dir\": 5}", "workers[3].state_dir: expected a directory path"},
    {"{\"state_dir\": \"\"}", "workers[3].state_dir: expected a directory path"},
    {"{\"lanes\": []}", "workers[3].lanes: expected an object of lane capacities"},
    {"{\"lanes\": {\"a\": 0}}", "workers[3].lanes.a: expected an integer from 1 to 1024"},
    {"{\"lanes\": {\"A B\": 1}}", "workers[3].lanes.A B: lane names are 1-64 of [a-z0-9_-]"},
    {"{\"max_queued\": 0}", "workers[3].max_queued: expected an integer from 1 to 1000000"},
    {"{\"max_queued\": \"5\"}", "workers[3].max_queued: expected an integer from 1 to 1000000"},
    {"{\"types\": []}", "workers[3].types: expected an object of job types"},
    {"{\"types\": {\"compile\": 1}}", "workers[3].types.compile: expected an object with \"argv\""},
    {"{\"types\": {\"compile\": {}}}",
     "workers[3].types.compile.argv: expected an array of strings"},
    {"{\"types\": {\"compile\": {\"argv\": \"esphome\"}}}",
     "workers[3].types.compile.argv: expected an array of strings"},
    {"{\"types\": {\"compile\": {\"argv\": []}}}",
     "workers[3].types.compile.argv: expected an array of strings"},
    {"{\"types\": {\"compile\": {\"argv\": [\"a\", 1]}}}",
     "workers[3].types.compile.argv: expected an array of strings"},
    {"{\"types\": {\"compile\": {\"argv\": [\"a\", \"--c={configuration}\"]}}}",
     "workers[3].types.compile.argv[1]: a placeholder must be a whole element"},
    {"{\"types\": {\"compile\": {\"argv\": [\"{port}\"]}}}",
     "workers[3].types.compile.argv[0]: the program cannot be a placeholder"},
    {"{\"types\": {\"compile\": {\"argv\": [\"a\"], \"lane\": \"nope\"}}}",
     "workers[3].types.compile.lane: expected the name of a lane"},
    {"{\"types\": {\"compile\": {\"argv\": [\"a\"], \"primary\": 1}}}",
     "workers[3].types.compile.primary: expected true or false"},
    {"{\"types\": {\"compile\": {\"argv\": [\"a\"], \"shell\": true}}}",
     "workers[3].types.compile.shell: unknown key"},
    {"{\"types\": {\"Bad\": {\"argv\": [\"a\"]}}}",
     "workers[3].types.Bad: type names are 1-64 of [a-z0-9_-]"},
    {"{\"allow_argv\": \"yes\"}", "workers[3].allow_argv: expected true or false"},
    {"{\"kill_timeout_s\": 0}", "workers[3].kill_timeout_s: expected seconds over 0, at most 3600"},
    {"{\"inflight_lines\": 1}", "workers[3].inflight_lines: expected an integer from 2 to 1000000"},
    {"{\"retained_lines\": 0}", "workers[3].retained_lines: expected an integer from 1 to 1000000"},
    {"{\"log_max_bytes\": \"64Q\"}",
     "workers[3].log_max_bytes: expected a size such as \"64M\" (at least 4096)"},
    {"{\"log_max_bytes\": 100}",
     "workers[3].log_max_bytes: expected a size such as \"64M\" (at least 4096)"},
    {"{\"primary_max\": 0}", "workers[3].primary_max: expected an integer from 1 to 1000000"},
    {"{\"aux_max\": -1}", "workers[3].aux_max: expected an integer from 0 to 1000000"},
};

static void test_errors(void **state)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_error_t jerr;
        json_t *o = json_loads(bad[i].json, JSON_DECODE_ANY, &jerr);
        if (o == NULL)
            fail_msg("case %zu does not parse: %s", i, jerr.text);
        jobs_config *cfg = (jobs_config *)1;
        char err[256] = "";
        int rc = jobs_config_parse(o, "workers[3]", host_keys, &cfg, err, sizeof(err));
        json_decref(o);
        if (rc != -EINVAL)
            fail_msg("case %zu (%s) accepted", i, bad[i].json);
        assert_ptr_equal(cfg, (jobs_config *)1); /* untouched on failure */
        if (strcmp(err, bad[i].error) != 0)
            fail_msg("case %zu (%s):\n  got  %s\n  want %s", i, bad[i].json, err, bad[i].error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
