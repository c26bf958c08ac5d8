/* The config validator: every bad value is refused with its JSON path and
 * the expected form; sizes parse; defaults apply. One case a line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/supervisor.h"
#include "workers/worker.h"

static const struct {
    const char *json;
    const char *error; /* NULL: valid */
} cases[] = {
    {"{}", NULL},
    {"{\"workers\": []}", NULL},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"true\"]}]}", NULL},
    {"{\"workers\": {}}", "workers: expected an array"},
    {"{\"workers\": [1]}", "workers[0]: expected an object"},
    {"{\"workers\": [{\"kind\": \"process\", \"argv\": [\"x\"]}]}", "workers[0].name: expected"},
    {"{\"workers\": [{\"name\": \"Bad Name\", \"kind\": \"process\"}]}", "workers[0].name"},
    {"{\"workers\": [{\"name\": \"supervisor\", \"kind\": \"process\"}]}", "workers[0].name"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"nope\"}]}", "workers[0].kind: expected one of"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\"}]}", "workers[0].argv: expected"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": []}]}", "workers[0].argv"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [1]}]}",
     "workers[0].argv[0]"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"], \"colour\": 1}]}",
     "workers[0].colour: unknown key"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"], \"restart\": "
     "\"sometimes\"}]}",
     "workers[0].restart: expected"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"], \"memory_max\": "
     "\"lots\"}]}",
     "workers[0].memory_max: expected a size such as \"64M\""},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"], \"memory_high\": "
     "\"2G\", \"memory_max\": \"1G\"}]}",
     "workers[0].memory_high: must not exceed memory_max"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"], \"backoff\": "
     "{\"initial_ms\": 5000, \"max_ms\": 10}}]}",
     "workers[0].backoff: initial_ms (5000) must not exceed max_ms (10)"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"], \"backoff\": "
     "{\"start\": 1}}]}",
     "workers[0].backoff.start: unknown key"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"], \"intensity\": "
     "{\"max_restarts\": -1}}]}",
     "workers[0].intensity.max_restarts: expected an integer from 0 to 1000"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"], "
     "\"stop_timeout_s\": 0}]}",
     "workers[0].stop_timeout_s: expected an integer from 1"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"], \"env\": "
     "{\"A=B\": \"c\"}}]}",
     "workers[0].env.A=B"},
    {"{\"workers\": [{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"x\"]}, {\"name\": "
     "\"a\", \"kind\": \"process\", \"argv\": [\"y\"]}]}",
     "workers[1].name: \"a\" is already the name of workers[0]"},
    {"{\"on_give_up\": \"panic\"}", "on_give_up: expected \"exit\" or \"stay\""},
    {"{\"http\": {\"listen\": \"127.0.0.1:9\", \"max_connections\": 8, \"max_streams\": 2, "
     "\"idle_timeout_s\": 5}}",
     NULL},
    {"{\"http\": {\"max_connections\": 0}}", "http.max_connections: expected an integer from 1"},
    {"{\"http\": {\"max_streams\": \"4\"}}", "http.max_streams: expected an integer"},
    {"{\"http\": {\"idle_timeout_s\": 3601}}", "http.idle_timeout_s: expected an integer"},
    {"{\"http\": {\"listen\": \"nowhere\"}}", "http.listen: expected \"HOST:PORT\""},
    {"{\"http\": {\"port\": 1}}", "http.port: unknown key"},
    {"{\"http\": {\"fleet_max_hosts\": 0}}", NULL},
    {"{\"http\": {\"fleet_max_hosts\": 100000}}", NULL},
    {"{\"http\": {\"fleet_max_hosts\": -1}}",
     "http.fleet_max_hosts: expected an integer from 0 to 100000"},
    {"{\"http\": {\"fleet_max_hosts\": 100001}}", "http.fleet_max_hosts: expected an integer"},
    {"{\"http\": {\"fleet_max_hosts\": \"10\"}}", "http.fleet_max_hosts: expected an integer"},
    {"{\"http\": {\"fleet\": 1}}", "fleet_max_hosts)"},
};

static void test_cases(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *root = json_loads(cases[i].json, 0, &jerr);
        sup_config cfg;
        char err[512] = "";
        if (root == NULL)
            fail_msg("case %zu is not JSON: %s", i, jerr.text);
        sup_config_defaults(&cfg);
        int rv = sup_config_parse(root, &cfg, err, sizeof(err));
        json_decref(root);
        sup_config_free(&cfg);
        if (cases[i].error == NULL && rv != 0)
            fail_msg("case %zu: refused: %s", i, err);
        if (cases[i].error != NULL && (rv == 0 || strstr(err, cases[i].error) == NULL))
            fail_msg("case %zu: want \"%s\", got rv %d \"%s\"", i, cases[i].error, rv, err);
    }
}

static void test_worker_defaults(void **state)
{
    json_t *root = json_loads("{\"health_interval_s\": 3, \"workers\": [{\"name\": \"w\", "
                              "\"kind\": \"process\", \"argv\": [\"true\"], \"memory_max\": "
                              "\"64M\"}]}",
                              0, NULL);
    sup_config cfg;
    char err[256];

    sup_config_defaults(&cfg);
    assert_int_equal(sup_config_parse(root, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_workers, 1);
    assert_string_equal(cfg.workers[0].name, "w");
    assert_int_equal(cfg.workers[0].enabled, 1);
    assert_int_equal(cfg.workers[0].policy.restart, SUP_RESTART_PERMANENT);
    assert_int_equal(cfg.workers[0].policy.backoff_initial_ms, 1000);
    assert_int_equal(cfg.workers[0].policy.backoff_max_ms, 30000);
    assert_int_equal(cfg.workers[0].policy.max_restarts, 5);
    assert_int_equal(cfg.workers[0].policy.period_s, 60);
    assert_int_equal(cfg.workers[0].health_interval_s, 3);
    assert_int_equal(cfg.workers[0].memory_max, 64u << 20);
    json_decref(root);
    sup_config_free(&cfg);
}

/* http.fleet_max_hosts: absent is the default (0 in the field, 1000 in
 * http_api.c); the file's 0 turns the fleet view off (-1 in the field). */
static void test_fleet_max_hosts(void **state)
{
    static const struct {
        const char *json;
        int want;
    } fm[] = {
        {"{}", 0},
        {"{\"http\": {\"listen\": \"\"}}", 0},
        {"{\"http\": {\"fleet_max_hosts\": 0}}", -1},
        {"{\"http\": {\"fleet_max_hosts\": 1}}", 1},
        {"{\"http\": {\"fleet_max_hosts\": 2500}}", 2500},
    };
    for (size_t i = 0; i < sizeof(fm) / sizeof(fm[0]); i++) {
        json_t *root = json_loads(fm[i].json, 0, NULL);
        sup_config cfg;
        char err[256];
        assert_non_null(root);
        sup_config_defaults(&cfg);
        assert_int_equal(sup_config_parse(root, &cfg, err, sizeof(err)), 0);
        assert_int_equal(cfg.http_fleet_max_hosts, fm[i].want);
        json_decref(root);
        sup_config_free(&cfg);
    }
}

static void test_sizes(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
        int ok;
    } sizes[] = {
        {"64M", 64ull << 20, 1},
        {"1G", 1ull << 30, 1},
        {"4KiB", 4096, 1},
        {"100", 100, 1},
        {"10B", 10, 1},
        {"2T", 2ull << 40, 1},
        {"", 0, 0},
        {"M", 0, 0},
        {"-1", 0, 0},
        {"12Q", 0, 0},
        {"1.5G", 0, 0},
        {"64 M", 0, 0},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        json_t *v = json_string(sizes[i].s);
        uint64_t out = 0;
        int rv = base_parse_size(v, &out);
        json_decref(v);
        if ((rv == 0) != sizes[i].ok || (rv == 0 && out != sizes[i].v))
            fail_msg("size \"%s\": rv %d value %llu", sizes[i].s, rv, (unsigned long long)out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_worker_defaults),
        cmocka_unit_test(test_fleet_max_hosts),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
