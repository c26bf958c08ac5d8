/* Retention with real children: 600 jobs over 60 configurations and 4 types
 * (compile and upload primary, logs and clean aux), run to the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/jobs_support.h"

#include <time.h>

#define N_JOBS 600

static void test_retention_600(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, "{\"lanes\": {\"default\": 8}, \"primary_max\": 100, \"aux_max\": 5,"
                  " \"types\": {\"compile\": {\"argv\": [\"true\", \"{configuration}\"]},"
                  "             \"upload\": {\"argv\": [\"false\", \"{configuration}\"]},"
                  "             \"logs\": {\"argv\": [\"true\", \"{configuration}\"]},"
                  "             \"clean\": {\"argv\": [\"false\", \"{configuration}\"]}}}");
    ts_start(&t);
    static const char *const types[] = {"compile", "upload", "logs", "clean"};
    static char ids[N_JOBS][JOBS__ID_LEN + 1];
    static int type_of[N_JOBS], conf_of[N_JOBS];
    unsigned seed = 4242;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int n = 0; n < N_JOBS; n++) {
        seed = seed * 1103515245u + 12345u;
        type_of[n] = (int)((seed >> 16) % 4);
        conf_of[n] = (int)((seed >> 8) % 60);
        char args[128];
        snprintf(args, sizeof(args), "{\"type\": \"%s\", \"configuration\": \"dev%02d.yaml\"}",
                 types[type_of[n]], conf_of[n]);
        strcpy(ids[n], ts_submit(&t, args));
    }
    while (t.j->counts[JOBS__QUEUED] || t.j->counts[JOBS__RUNNING] || t.j->reports != NULL ||
           t.j->write_in_flight || t.j->dirty_gen > t.j->disk_gen)
        uv_run(&t.loop, UV_RUN_ONCE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("600 jobs submitted, run and retained in %.2f s (%.0f jobs/s), %llu jobs.json "
           "writes\n",
           s, N_JOBS / s, (unsigned long long)t.j->json_writes);

    /* The model: newest first; primary newest per (type, configuration) up
     * to 100 keys; aux newest 5 per type. */
    bool keep[N_JOBS] = {false};
    bool seen[2][60] = {{false}};
    unsigned n_primary = 0, n_aux[4] = {0};
    for (int n = N_JOBS - 1; n >= 0; n--) {
        int ty = type_of[n];
        if (ty < 2) {
            if (!seen[ty][conf_of[n]]) {
                seen[ty][conf_of[n]] = true;
                keep[n] = n_primary++ < 100;
            }
        } else {
            keep[n] = n_aux[ty]++ < 5;
        }
    }
    assert_true(n_primary > 100); /* the cap is exercised */
    size_t want = 0;
    for (int n = 0; n < N_JOBS; n++) {
        want += keep[n];
        jobs_job *job = jobs__find(t.j, ids[n]);
        if ((job != NULL) != keep[n])
            fail_msg("job %d (%s dev%02d): kept %d, want %d", n, types[type_of[n]], conf_of[n],
                     job != NULL, keep[n]);
        if (job != NULL)
            assert_string_equal(jobs__status_name(job->status),
                                type_of[n] % 2 ? "failed" : "completed");
        char path[4200];
        ts_log_path(&t, ids[n], path, sizeof(path));
        if ((access(path, F_OK) == 0) != keep[n])
            fail_msg("job %d: sidecar present %d, want %d", n, access(path, F_OK) == 0, keep[n]);
    }
    assert_int_equal(t.j->jobs.count, want);
    assert_int_equal(want, 100 + 10);

    /* jobs.json holds exactly the same set. */
    char path[4200];
    snprintf(path, sizeof(path), "%s/jobs.json", t.dir);
    json_t *root = json_load_file(path, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_array_size(json_object_get(root, "jobs")), want);
    json_decref(root);
    ts_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_600),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
