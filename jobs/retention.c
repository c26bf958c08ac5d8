/*
 * Retention (DESIGN.md section 7).
 *
 * Design notes:
 *  - Only terminal jobs are ever pruned, and never one that an active job
 *    names in depends_on (its dependent would otherwise be cancelled as
 *    "gone" merely because a lane was busy).
 *  - "Newest" is creation order (seq), which is stable and deterministic;
 *    completion times can tie or run backwards across clock changes.
 *  - Primary types keep the newest terminal job per (configuration, type),
 *    and at most primary_max of those overall. Every other type keeps its
 *    newest aux_max terminal jobs (per type).
 *  - Scratch arrays are plain malloc: they live for one call and are not
 *    part of the instance's steady-state heap.
 */
#include "jobs/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *conf_of(const jobs_job *job)
{
    return job->configuration != NULL ? job->configuration : "";
}

static int cmp_group(const void *a, const void *b)
{
    const jobs_job *x = *(jobs_job *const *)a, *y = *(jobs_job *const *)b;
    int c = strcmp(x->type, y->type);
    if (!c)
        c = strcmp(conf_of(x), conf_of(y));
    if (!c)
        c = x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
    return c;
}

static int cmp_type(const void *a, const void *b)
{
    const jobs_job *x = *(jobs_job *const *)a, *y = *(jobs_job *const *)b;
    int c = strcmp(x->type, y->type);
    if (!c)
        c = x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
    return c;
}

static int cmp_seq_desc(const void *a, const void *b)
{
    const jobs_job *x = *(jobs_job *const *)a, *y = *(jobs_job *const *)b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool jobs__is_prerequisite(jobs *j, const jobs_job *job)
{
    for (jobs_job *o = jobs__first(j); o != NULL; o = jobs__next(j, o))
        if (!jobs__is_terminal(o->status) && strcmp(o->depends_on, job->id) == 0)
            return true;
    return false;
}

static void prune(jobs *j, jobs_job *job)
{
    char path[4096];
    if (!jobs__log_path(j, job->id, path, sizeof(path)) && unlink(path) < 0 && errno != ENOENT)
        jobs__log(j, BASE_LOG_WARN, "%s: %s", path, strerror(errno));
    jobs__job_unlink(j, job);
    jobs__job_free(j, job);
}

size_t jobs__retention(jobs *j)
{
    size_t n_term = 0, n_deps = 0;
    for (jobs_job *job = jobs__first(j); job != NULL; job = jobs__next(j, job)) {
        if (jobs__is_terminal(job->status))
            n_term++;
        else if (job->depends_on[0])
            n_deps++;
    }
    if (n_term == 0)
        return 0;
    jobs_job **prim = malloc(n_term * sizeof(*prim));
    jobs_job **aux = malloc(n_term * sizeof(*aux));
    const char **deps = malloc((n_deps + 1) * sizeof(*deps));
    unsigned char *keep = calloc(n_term, 1);
    jobs_job **all = malloc(n_term * sizeof(*all));
    size_t n_prim = 0, n_aux = 0, n_all = 0, pruned = 0;
    if (prim == NULL || aux == NULL || deps == NULL || keep == NULL || all == NULL) {
        jobs__log(j, BASE_LOG_ERROR, "retention: out of memory; nothing pruned this time");
        goto out;
    }
    n_deps = 0;
    for (jobs_job *job = jobs__first(j); job != NULL; job = jobs__next(j, job)) {
        if (!jobs__is_terminal(job->status)) {
            if (job->depends_on[0])
                deps[n_deps++] = job->depends_on;
            continue;
        }
        all[n_all++] = job;
        /* seq is unique and dense enough to stand for the job in `keep`:
         * mark through a sorted copy instead, see below. */
        if (jobs__config_primary(j->cfg, job->type))
            prim[n_prim++] = job;
        else
            aux[n_aux++] = job;
    }
    qsort(deps, n_deps, sizeof(*deps), cmp_str);

    /* `all` is in creation order (seq ascending): find a job's slot by
     * binary search on seq. */
#define MARK(job)                                                                                  \
    do {                                                                                           \
        size_t lo = 0, hi = n_all;                                                                 \
        while (lo < hi) {                                                                          \
            size_t mid = (lo + hi) / 2;                                                            \
            if (all[mid]->seq < (job)->seq)                                                        \
                lo = mid + 1;                                                                      \
            else                                                                                   \
                hi = mid;                                                                          \
        }                                                                                          \
        keep[lo] = 1;                                                                              \
    } while (0)

    /* Primary: newest per (type, configuration), then the newest
     * primary_max of those. */
    qsort(prim, n_prim, sizeof(*prim), cmp_group);
    size_t n_cand = 0;
    for (size_t i = 0; i < n_prim; i++) {
        if (i > 0 && strcmp(prim[i]->type, prim[i - 1]->type) == 0 &&
            strcmp(conf_of(prim[i]), conf_of(prim[i - 1])) == 0)
            continue;
        prim[n_cand++] = prim[i];
    }
    qsort(prim, n_cand, sizeof(*prim), cmp_seq_desc);
    for (size_t i = 0; i < n_cand && i < j->cfg->primary_max; i++)
        MARK(prim[i]);

    /* Other types: the newest aux_max of each. */
    qsort(aux, n_aux, sizeof(*aux), cmp_type);
    size_t run = 0;
    for (size_t i = 0; i < n_aux; i++) {
        run = (i > 0 && strcmp(aux[i]->type, aux[i - 1]->type) == 0) ? run + 1 : 0;
        if (run < j->cfg->aux_max)
            MARK(aux[i]);
    }
#undef MARK

    for (size_t i = 0; i < n_all; i++) {
        if (keep[i])
            continue;
        const char *id = all[i]->id;
        if (n_deps && bsearch(&id, deps, n_deps, sizeof(*deps), cmp_str) != NULL)
            continue;
        prune(j, all[i]);
        pruned++;
    }
    if (pruned)
        jobs__store_dirty(j);
out:
    free(prim);
    free(aux);
    free(deps);
    free(keep);
    free(all);
    return pruned;
}

void jobs__remove_orphans(jobs *j)
{
    unlink(j->tmp_path);
    DIR *d = opendir(j->logs_dir);
    unsigned tightened = 0;
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        bool orphan = false;
        if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
            orphan = true;
        } else if (len == JOBS__ID_LEN + 4 && strcmp(name + JOBS__ID_LEN, ".log") == 0) {
            char id[JOBS__ID_LEN + 1];
            memcpy(id, name, JOBS__ID_LEN);
            id[JOBS__ID_LEN] = '\0';
            orphan = jobs__id_valid(id) && jobs__find(j, id) == NULL;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", j->logs_dir, name);
        if (orphan) {
            if (unlink(path) < 0)
                jobs__log(j, BASE_LOG_WARN, "%s: %s", path, strerror(errno));
            continue;
        }
        /* Logs written by an older herd were readable by everyone. */
        struct stat st;
        if (len > 4 && strcmp(name + len - 4, ".log") == 0 &&
            fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            (st.st_mode & 0777 & ~JOBS__LOG_MODE) != 0) {
            if (fchmodat(dirfd(d), name, JOBS__LOG_MODE, 0) == 0)
                tightened++;
            else
                jobs__log(j, BASE_LOG_WARN, "%s: cannot narrow its mode: %s", path,
                          strerror(errno));
        }
    }
    closedir(d);
    if (tightened > 0)
        jobs__log(j, BASE_LOG_WARN, "%s: %u logs were readable by other users; now mode %04o",
                  j->logs_dir, tightened, JOBS__LOG_MODE);
}
