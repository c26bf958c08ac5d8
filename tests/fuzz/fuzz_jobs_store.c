/*
 * Fuzz target `jobs_store`: restoring jobs.json (jobs/store.c through
 * jobs__store_restore, then retention and the orphan sweep). The input is a
 * jobs.json; each run restores it into a fresh, never-started instance
 * (nothing is ever spawned: jobs_start is not called, so queued jobs stay
 * queued), writes every restored job back as JSON (what the next jobs.json
 * would hold), checks the counts per status and that no job is left
 * `running`, and closes the instance through its loop.
 */
#include <dirent.h>
#include <string.h>

#include "jobs/internal.h"
#include "fuzz.h"

static uv_loop_t loop;
static jobs_config *cfg;
static char state_dir[PATH_MAX], json_path[PATH_MAX + 16], logs_dir[PATH_MAX + 16];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char conf[] =
        "{\"lanes\":{\"compile\":1,\"upload\":2},\"allow_argv\":true,\"primary_max\":3,"
        "\"aux_max\":2,\"types\":{\"compile\":{\"argv\":[\"true\",\"{configuration}\"],"
        "\"lane\":\"compile\",\"primary\":true},\"logs\":{\"argv\":[\"true\"]}}}";
    char err[512];

    (void)argc, (void)argv;
    FUZZ_CHECK(uv_loop_init(&loop) == 0);
    json_t *o = json_loads(conf, 0, NULL);
    FUZZ_CHECK(o != NULL);
    snprintf(state_dir, sizeof(state_dir), "%s/jobs", fuzz_tmp());
    FUZZ_CHECK(json_object_set_new(o, "state_dir", json_string(state_dir)) == 0);
    if (jobs_config_parse(o, "fuzz", NULL, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_jobs_store: config: %s\n", err);
        abort();
    }
    json_decref(o);
    snprintf(json_path, sizeof(json_path), "%s/jobs.json", state_dir);
    snprintf(logs_dir, sizeof(logs_dir), "%s/logs", state_dir);
    FUZZ_CHECK(base_mkdir_p(logs_dir, 0700) == 0);
    return 0;
}

static void on_publish(const char *topic, const char *payload, size_t len, void *data)
{
    (void)data;
    FUZZ_CHECK(strncmp(topic, "job.fz.", 7) == 0);
    FUZZ_CHECK(base_json_check(payload, len, 64));
}

static void on_log(enum base_log_level level, const char *msg, void *data)
{
    (void)level, (void)msg, (void)data;
}

static void on_closed(jobs *j, void *data)
{
    (void)j;
    *(bool *)data = true;
}

/* empty_logs removes the sidecars (recovery notices) a run left. */
static void empty_logs(void)
{
    DIR *d = opendir(logs_dir);
    struct dirent *de;
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jobs_hooks hooks = {.publish = on_publish, .log = on_log};
    char err[512];
    jobs *j = NULL;
    bool closed = false;

    fuzz_write_file(json_path, data, size);
    if (jobs_new(&loop, cfg, "fz", NULL, &hooks, &j, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_jobs_store: jobs_new: %s\n", err);
        abort();
    }
    if (jobs__store_restore(j) == 0) {
        size_t counts[JOBS__N_STATUS] = {0}, n = 0;
        jobs__remove_orphans(j);
        jobs__retention(j);
        for (jobs_job *job = jobs__first(j); job != NULL; job = jobs__next(j, job)) {
            FUZZ_CHECK(job->status < JOBS__N_STATUS);
            FUZZ_CHECK(job->status != JOBS__RUNNING);
            FUZZ_CHECK(jobs__id_valid(job->id));
            FUZZ_CHECK(jobs__find(j, job->id) == job);
            FUZZ_CHECK(jobs__is_terminal(job->status) || job->spec != NULL);
            counts[job->status]++;
            n++;
            json_t *o = jobs__job_json(j, job, true);
            FUZZ_CHECK(json_is_object(o));
            FUZZ_CHECK(json_is_string(json_object_get(o, "job_id")));
            char *s = base_json_dumps(o, JSON_COMPACT);
            FUZZ_CHECK(s != NULL);
            free(s);
            json_decref(o);
            o = jobs__job_json(j, job, false);
            FUZZ_CHECK(json_is_object(o));
            json_decref(o);
        }
        FUZZ_CHECK(n == j->jobs.count);
        for (int s = 0; s < JOBS__N_STATUS; s++)
            FUZZ_CHECK(counts[s] == j->counts[s]);
        json_t *health = json_object();
        jobs_health(j, health);
        json_decref(health);
    }
    jobs_close(j, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    empty_logs();
    return 0;
}
