/* Metadata persistence: restore, restart recovery, retention on restore,
 * orphans, a corrupt jobs.json, and the memory gate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/jobs_support.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

static const char *const CONFIG =
    "{\"allow_argv\": true, \"lanes\": {\"default\": 4},"
    " \"primary_max\": 100, \"aux_max\": 5,"
    " \"types\": {\"compile\": {\"argv\": [\"true\", \"{configuration}\"]},"
    "             \"upload\": {\"argv\": [\"true\", \"{configuration}\"]},"
    "             \"logs\": {\"argv\": [\"true\", \"{configuration}\"]},"
    "             \"clean\": {\"argv\": [\"true\", \"{configuration}\"]}}}";

static void make_id(unsigned n, char out[JOBS__ID_LEN + 1])
{
    snprintf(out, JOBS__ID_LEN + 1, "%032x", n);
}

static json_t *entry(unsigned n, const char *type, const char *conf, const char *status)
{
    char id[JOBS__ID_LEN + 1], when[32];
    make_id(n, id);
    base_time_format(1700000000000LL + n * 1000LL, when);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:n, s:I, s:I}", "job_id", id, "type", type,
                  "lane", "default", "status", status, "created_at", when, "exit_code", "error",
                  "output_bytes", (json_int_t)0, "output_lines", (json_int_t)0);
    if (conf != NULL)
        json_object_set_new(o, "configuration", json_string(conf));
    if (ts_terminal(status)) {
        json_object_set_new(o, "started_at", json_string(when));
        json_object_set_new(o, "completed_at", json_string(when));
        json_object_set_new(o, "exit_code", json_integer(strcmp(status, "completed") ? 1 : 0));
    }
    return o;
}

static void write_jobs_json(ts *t, json_t *arr /* stolen */)
{
    json_t *root = json_pack("{s:i, s:o}", "format", 1, "jobs", arr);
    char path[4200];
    snprintf(path, sizeof(path), "%s/jobs.json", t->dir);
    assert_int_equal(json_dump_file(root, path, JSON_COMPACT), 0);
    json_decref(root);
    snprintf(path, sizeof(path), "%s/logs", t->dir);
    mkdir(path, 0750);
}

static void write_log(ts *t, unsigned n, const char *text)
{
    char id[JOBS__ID_LEN + 1], path[4200];
    snprintf(path, sizeof(path), "%s/logs", t->dir);
    mkdir(path, 0750);
    make_id(n, id);
    ts_log_path(t, id, path, sizeof(path));
    ts_write_file(path, text, strlen(text));
}

static bool log_exists(ts *t, unsigned n)
{
    char id[JOBS__ID_LEN + 1], path[4200];
    make_id(n, id);
    ts_log_path(t, id, path, sizeof(path));
    return access(path, F_OK) == 0;
}

static json_t *load_jobs_json(ts *t)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/jobs.json", t->dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fail_msg("jobs.json does not parse: %s", jerr.text);
    return root;
}

/* A crashed herdd left 3 running and 5 queued jobs. */
static void test_restart_recovery(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, "{\"allow_argv\": true, \"lanes\": {\"default\": 4}, \"aux_max\": 8}");
    json_t *arr = json_array();
    for (unsigned n = 1; n <= 8; n++) {
        bool running = n <= 3;
        json_t *o = entry(n, "argv", NULL, running ? "running" : "queued");
        json_object_set_new(o, "argv", json_pack("[s,s,s]", "printf", "%s", "ran\n"));
        if (running) {
            json_object_set_new(o, "started_at", json_string("2023-11-14T22:13:20.000Z"));
            json_object_set_new(o, "pgid", json_integer(999999)); /* long gone */
            write_log(&t, n, "partial output\n");
        }
        json_array_append_new(arr, o);
    }
    write_jobs_json(&t, arr);
    ts_start(&t);

    /* Before the loop runs: all 8 there, the running ones queued again. */
    assert_int_equal(t.j->jobs.count, 8);
    assert_int_equal(t.j->counts[JOBS__QUEUED], 8);
    for (unsigned n = 1; n <= 3; n++) {
        char id[JOBS__ID_LEN + 1], path[4200];
        make_id(n, id);
        jobs_job *job = jobs__find(t.j, id);
        assert_non_null(job);
        assert_int_equal(job->started_ms, 0);
        ts_log_path(&t, id, path, sizeof(path));
        size_t len;
        char *log = ts_read_file(path, &len);
        assert_non_null(log);
        assert_string_equal(log, "partial output\n" JOBS__RECOVERY_NOTICE);
        free(log);
    }

    /* They run again, appending to the same logs. */
    for (unsigned n = 1; n <= 8; n++) {
        char id[JOBS__ID_LEN + 1], path[4200];
        make_id(n, id);
        json_t *m = ts_wait(&t, id);
        assert_string_equal(json_string_value(json_object_get(m, "status")), "completed");
        assert_int_equal(json_integer_value(json_object_get(m, "output_bytes")), 4);
        json_decref(m);
        ts_log_path(&t, id, path, sizeof(path));
        size_t len;
        char *log = ts_read_file(path, &len);
        assert_string_equal(log,
                            n <= 3 ? "partial output\n" JOBS__RECOVERY_NOTICE "ran\n" : "ran\n");
        free(log);
    }
    ts_close_jobs(&t);

    json_t *root = load_jobs_json(&t);
    json_t *jobs_arr = json_object_get(root, "jobs");
    assert_int_equal(json_array_size(jobs_arr), 8);
    size_t i;
    json_t *o;
    json_array_foreach(jobs_arr, i, o)
    {
        assert_string_equal(json_string_value(json_object_get(o, "status")), "completed");
        assert_null(json_object_get(o, "argv")); /* terminal jobs drop their spec */
    }
    json_decref(root);
    ts_fini(&t);
}

/* A process group left by a crashed herdd is killed when it carries the
 * job's HERD_JOB_ID, and left alone when it does not. */
static pid_t spawn_group(const char *job_id)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        char var[64];
        snprintf(var, sizeof(var), "HERD_JOB_ID=%s", job_id);
        char *envp[] = {var, NULL};
        char *argv[] = {"sleep", "60", NULL};
        execve("/bin/sleep", argv, envp);
        _exit(127);
    }
    /* Wait until the exec happened (environ shows the variable). */
    for (int i = 0; i < 2000; i++) {
        char path[64], buf[256] = "";
        snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
        FILE *f = fopen(path, "r");
        size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f != NULL)
            fclose(f);
        if (n > 12 && memcmp(buf, "HERD_JOB_ID=", 12) == 0)
            break;
        usleep(1000);
    }
    return pid;
}

static void test_leftover_group_killed(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    char id1[JOBS__ID_LEN + 1], id2[JOBS__ID_LEN + 1];
    make_id(1, id1);
    make_id(2, id2);
    pid_t ours = spawn_group(id1);
    pid_t other = spawn_group("00000000000000000000000000000fff");
    json_t *arr = json_array();
    json_t *o = entry(1, "argv", NULL, "running");
    json_object_set_new(o, "argv", json_pack("[s]", "true"));
    json_object_set_new(o, "pgid", json_integer(ours));
    json_array_append_new(arr, o);
    o = entry(2, "argv", NULL, "running");
    json_object_set_new(o, "argv", json_pack("[s]", "true"));
    json_object_set_new(o, "pgid", json_integer(other)); /* reused by a stranger */
    json_array_append_new(arr, o);
    write_jobs_json(&t, arr);
    ts_start(&t);

    int status;
    assert_int_equal(waitpid(ours, &status, 0), ours);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_int_equal(waitpid(other, &status, WNOHANG), 0); /* still alive */
    kill(other, SIGKILL);
    waitpid(other, &status, 0);

    json_decref(ts_wait(&t, id1));
    json_decref(ts_wait(&t, id2));
    ts_fini(&t);
}

/* A hand-edited jobs.json whose queued jobs depend on each other in a ring
 * would leave them queued for ever: the ring is cancelled at restore, and
 * a job that only depends on a member of the ring goes with it. */
static void test_restore_cycle(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    json_t *arr = json_array();
    char dep[JOBS__ID_LEN + 1];
    /* 1 -> 2 -> 3 -> 1, and 4 -> 3; 5 runs on its own */
    static const unsigned deps[] = {2, 3, 1, 3, 0};
    for (unsigned n = 1; n <= 5; n++) {
        json_t *o = entry(n, "argv", NULL, "queued");
        json_object_set_new(o, "argv", json_pack("[s]", "true"));
        if (deps[n - 1] != 0) {
            make_id(deps[n - 1], dep);
            json_object_set_new(o, "depends_on", json_string(dep));
        }
        json_array_append_new(arr, o);
    }
    write_jobs_json(&t, arr);
    ts_start(&t);
    static const char *const want[] = {"cancelled", "cancelled", "cancelled", "cancelled",
                                       "completed"};
    for (unsigned n = 1; n <= 5; n++) {
        char id[JOBS__ID_LEN + 1];
        make_id(n, id);
        json_t *m = ts_wait(&t, id);
        assert_string_equal(json_string_value(json_object_get(m, "status")), want[n - 1]);
        if (n <= 3)
            assert_non_null(strstr(json_string_value(json_object_get(m, "error")), "cycle"));
        json_decref(m);
    }
    ts_fini(&t);
}

/* Dependents of failed, cancelled or missing prerequisites are cancelled. */
static void test_restore_dependents(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    json_t *arr = json_array();
    json_array_append_new(arr, entry(1, "logs", "a.yaml", "failed"));
    json_array_append_new(arr, entry(2, "logs", "b.yaml", "cancelled"));
    json_array_append_new(arr, entry(3, "logs", "c.yaml", "completed"));
    char dep[JOBS__ID_LEN + 1];
    for (unsigned n = 4; n <= 7; n++) {
        json_t *o = entry(n, "argv", NULL, "queued");
        json_object_set_new(o, "argv", json_pack("[s]", "true"));
        make_id(n == 7 ? 99 : n - 3, dep); /* 7 depends on a job that is gone */
        json_object_set_new(o, "depends_on", json_string(dep));
        json_array_append_new(arr, o);
    }
    write_jobs_json(&t, arr);
    ts_start(&t);
    static const char *const want[] = {"cancelled", "cancelled", "completed", "cancelled"};
    for (unsigned n = 4; n <= 7; n++) {
        char id[JOBS__ID_LEN + 1];
        make_id(n, id);
        json_t *m = ts_wait(&t, id);
        assert_string_equal(json_string_value(json_object_get(m, "status")), want[n - 4]);
        if (strcmp(want[n - 4], "cancelled") == 0)
            assert_string_equal(json_string_value(json_object_get(m, "error")),
                                "prerequisite job did not complete successfully");
        json_decref(m);
    }
    ts_fini(&t);
}

/* 600 terminal jobs over 60 configurations and 4 types (2 primary, 2 aux),
 * plus active jobs and a prerequisite, restored at once. */
static void test_retention_on_restore(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    static const char *const types[] = {"compile", "upload", "logs", "clean"};
    static const char *const statuses[] = {"completed", "failed", "cancelled"};
    json_t *arr = json_array();
    unsigned seed = 12345;
    struct {
        int type, conf;
    } made[601];
    for (unsigned n = 1; n <= 600; n++) {
        seed = seed * 1103515245u + 12345u;
        int ty = (int)((seed >> 16) % 4);
        int conf = (int)((seed >> 8) % 60);
        made[n].type = ty;
        made[n].conf = conf;
        char cname[32];
        snprintf(cname, sizeof(cname), "dev%02d.yaml", conf);
        json_array_append_new(arr, entry(n, types[ty], cname, statuses[n % 3]));
        write_log(&t, n, "x\n");
    }
    /* Job 1 is old and would be pruned, but queued job 601 depends on it. */
    json_t *o = entry(601, "logs", "dev00.yaml", "queued");
    json_object_set_new(o, "argv", json_pack("[s]", "true"));
    char dep[JOBS__ID_LEN + 1];
    make_id(1, dep);
    json_object_set_new(o, "depends_on", json_string(dep));
    json_array_append_new(arr, o);
    o = entry(602, "logs", "dev01.yaml", "queued");
    json_object_set_new(o, "argv", json_pack("[s]", "true"));
    json_array_append_new(arr, o);
    write_jobs_json(&t, arr);
    /* Orphans and temp files of a crash. */
    write_log(&t, 7777, "orphan\n");
    char path[4200];
    snprintf(path, sizeof(path), "%s/logs/%032x.log.tmp", t.dir, 5u);
    ts_write_file(path, "tmp", 3);
    snprintf(path, sizeof(path), "%s/jobs.json.tmp", t.dir);
    ts_write_file(path, "{", 1);
    snprintf(path, sizeof(path), "%s/logs/README", t.dir);
    ts_write_file(path, "not ours", 8);

    /* The expected retained set, computed the simple way: newest first. */
    bool keep[603] = {false};
    bool seen_key[4][60] = {{false}};
    unsigned n_primary = 0, n_aux[4] = {0};
    for (unsigned n = 600; n >= 1; n--) {
        int ty = made[n].type;
        if (ty < 2) {
            if (!seen_key[ty][made[n].conf]) {
                seen_key[ty][made[n].conf] = true;
                if (n_primary < 100) {
                    keep[n] = true;
                    n_primary++;
                }
            }
        } else if (n_aux[ty]++ < 5) {
            keep[n] = true;
        }
    }
    bool rule_keep_1 = keep[1];
    keep[1] = true; /* prerequisite of an active job */
    keep[601] = keep[602] = true;

    ts_start(&t);
    size_t want_n = 0;
    for (unsigned n = 1; n <= 602; n++) {
        char id[JOBS__ID_LEN + 1];
        make_id(n, id);
        want_n += keep[n];
        if ((jobs__find(t.j, id) != NULL) != keep[n])
            fail_msg("job %u (%s, conf %d): kept %d, want %d", n,
                     n <= 600 ? types[made[n].type] : "active", n <= 600 ? made[n].conf : -1,
                     jobs__find(t.j, id) != NULL, keep[n]);
        if (n <= 600 && log_exists(&t, n) != keep[n])
            fail_msg("job %u: sidecar present %d, want %d", n, log_exists(&t, n), keep[n]);
    }
    assert_int_equal(t.j->jobs.count, want_n);
    assert_int_equal(n_primary, 100); /* the cap was exercised */
    assert_false(log_exists(&t, 7777));
    snprintf(path, sizeof(path), "%s/logs/%032x.log.tmp", t.dir, 5u);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof(path), "%s/jobs.json.tmp", t.dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof(path), "%s/logs/README", t.dir);
    assert_int_equal(access(path, F_OK), 0);

    char id601[JOBS__ID_LEN + 1], id602[JOBS__ID_LEN + 1];
    make_id(601, id601);
    make_id(602, id602);
    json_t *m = ts_wait(&t, id601);
    /* Its prerequisite (job 1, status by n % 3 == 1) failed. */
    assert_string_equal(json_string_value(json_object_get(m, "status")), "cancelled");
    json_decref(m);
    json_decref(ts_wait(&t, id602));
    ts_close_jobs(&t);

    /* Now 601 and 602 are the newest "logs" jobs: the 5 kept are them and
     * the 3 newest before; job 1 is no longer a prerequisite. */
    keep[1] = rule_keep_1;
    unsigned logs_kept = 2;
    for (unsigned n = 600; n >= 1; n--) {
        if (keep[n] && made[n].type == 2 && logs_kept++ >= 5)
            keep[n] = false;
    }
    json_t *root = load_jobs_json(&t);
    size_t i;
    json_t *jo;
    size_t on_disk = 0;
    json_array_foreach(json_object_get(root, "jobs"), i, jo)
    {
        unsigned n;
        assert_int_equal(sscanf(json_string_value(json_object_get(jo, "job_id")), "%x", &n), 1);
        if (!keep[n])
            fail_msg("job %u still on disk", n);
        on_disk++;
    }
    json_decref(root);
    size_t want_final = 0;
    for (unsigned n = 1; n <= 602; n++) {
        want_final += keep[n];
        if (n <= 600 && log_exists(&t, n) != keep[n])
            fail_msg("job %u: sidecar present %d, want %d after close", n, log_exists(&t, n),
                     keep[n]);
    }
    assert_int_equal(on_disk, want_final);
    ts_fini(&t);
}

static void test_corrupt_jobs_json_untouched(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    char path[4200];
    snprintf(path, sizeof(path), "%s/jobs.json", t.dir);
    static const char bad[] = "{\"format\": 1, \"jobs\": [ {\"job_id\": ";
    ts_write_file(path, bad, sizeof(bad) - 1);
    ts_new(&t);
    assert_int_equal(jobs_start(t.j), -EINVAL);
    assert_int_equal(t.j->jobs.count, 0);
    ts_close_jobs(&t);
    size_t len;
    char *after = ts_read_file(path, &len);
    assert_int_equal(len, sizeof(bad) - 1);
    assert_memory_equal(after, bad, len);
    free(after);
    ts_fini(&t);
}

/* 500 retained terminal jobs: the steady-state heap of the instance. */
static void test_memory_gate(void **state)
{
    ts t;
    ts_init(&t);
    ts_config(&t, CONFIG);
    json_t *arr = json_array();
    for (unsigned n = 1; n <= 500; n++) {
        char conf[64];
        snprintf(conf, sizeof(conf), "devices/living-room-sensor-%03u.yaml", n);
        json_t *o = entry(n, "compile", conf, n % 7 ? "completed" : "failed");
        if (n % 7 == 0)
            json_object_set_new(o, "error", json_string("exited with code 1"));
        json_array_append_new(arr, o);
    }
    write_jobs_json(&t, arr);
    json_t *cfgj = json_loads(CONFIG, 0, NULL);
    json_object_set_new(cfgj, "primary_max", json_integer(500));
    jobs_config_free(t.cfg);
    char err[256];
    assert_int_equal(jobs_config_parse(cfgj, "w", NULL, &t.cfg, err, sizeof(err)), 0);
    json_decref(cfgj);
    ts_start(&t);
    assert_int_equal(t.j->jobs.count, 500);
    /* Let the start-up kick and write settle: transient buffers go away. */
    uv_run(&t.loop, UV_RUN_NOWAIT);
    while (t.j->write_in_flight || t.j->reports != NULL)
        uv_run(&t.loop, UV_RUN_ONCE);
    size_t heap = jobs_heap_bytes(t.j);
    printf("jobs_heap_bytes after restoring 500 jobs: %zu (%.1f KiB, %.0f B/job)\n", heap,
           heap / 1024.0, heap / 500.0);
    /* Measured 128,469 bytes (x86_64); ceiling = measured + ~10%. */
    assert_true(heap < 141000);
    assert_true(heap < 512 * 1024);
    json_t *h = json_object();
    jobs_health(t.j, h);
    assert_int_equal(json_integer_value(json_object_get(h, "heap_bytes_jobs")), heap);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "jobs"), "completed")),
                     500 - 500 / 7);
    json_decref(h);
    ts_close_jobs(&t);
    ts_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_recovery),
        cmocka_unit_test(test_leftover_group_killed),
        cmocka_unit_test(test_restore_dependents),
        cmocka_unit_test(test_restore_cycle),
        cmocka_unit_test(test_retention_on_restore),
        cmocka_unit_test(test_corrupt_jobs_json_untouched),
        cmocka_unit_test(test_memory_gate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
