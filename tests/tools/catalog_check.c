/*
 * herd-catalog-check: what the catalog integration tests need beyond herdctl.
 *
 *   herd-catalog-check verify OUTDIR
 *       loads OUTDIR/current with catalog_index_load (index parses, every
 *       body present, manifest recomputed from the bodies matches); prints
 *       "<version> <entries>"; exit 1 with the reason otherwise.
 *   herd-catalog-check bodies RUNDIR WORKER INPUT.json
 *       asks WORKER for every entry of INPUT (get {id, section}) and checks
 *       each reply's result is JSON-equal to the input's entry; prints the
 *       count; exit 1 at the first difference or error.
 *   herd-catalog-check hammer RUNDIR WORKER SECTION IDS STOPFILE
 *       gets pseudo-random ids of IDS (a file, one id a line) of SECTION,
 *       one after the other, until STOPFILE exists; each reply must be ok
 *       and carry the asked id. Prints "<ok> <failed>"; exit 1 if any
 *       failed or none was made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "catalog/catalog.h"

static int verify(const char *outdir)
{
    char path[4096], err[1024];
    catalog_index *idx = NULL;
    snprintf(path, sizeof(path), "%s/current", outdir);
    int rc = catalog_index_load(path, &idx, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "verify %s: %s\n", outdir, err);
        return 1;
    }
    printf("%s %zu\n", catalog_index_get_info(idx).version, catalog_index_get_info(idx).n_entries);
    catalog_index_free(idx);
    return 0;
}

static json_t *load_input(const char *path)
{
    json_error_t je;
    json_t *in = json_load_file(path, 0, &je);
    if (!json_is_object(in)) {
        fprintf(stderr, "%s: %s\n", path, in != NULL ? "not an object" : je.text);
        json_decref(in);
        return NULL;
    }
    return in;
}

/* get (section, id) from the worker; returns the result (caller owns) or NULL. */
static json_t *get(bus_client *c, const char *worker, const char *section, const char *id,
                   char *why, size_t why_size)
{
    json_t *args = json_pack("{s:s,s:s}", "id", id, "section", section), *reply = NULL;
    int rc = bus_client_request(c, worker, "get", args, 30000, &reply);
    json_decref(args);
    if (rc < 0) {
        snprintf(why, why_size, "request failed: %s", strerror(-rc));
        return NULL;
    }
    if (!json_is_true(json_object_get(reply, "ok"))) {
        char *s = base_json_dumps(reply, JSON_COMPACT);
        snprintf(why, why_size, "error reply: %s", s != NULL ? s : "?");
        free(s);
        json_decref(reply);
        return NULL;
    }
    json_t *r = json_incref(json_object_get(reply, "result"));
    json_decref(reply);
    return r;
}

static int bodies(const char *dir, const char *worker, const char *input)
{
    json_t *in = load_input(input);
    bus_client *c = NULL;
    size_t n = 0;
    int status = 1;
    char why[2048];

    if (in == NULL || bus_client_new(dir, &c) < 0)
        goto out;
    const char *section;
    json_t *arr;
    json_object_foreach(in, section, arr)
    {
        size_t i;
        json_t *e;
        if (!json_is_array(arr))
            continue;
        json_array_foreach(arr, i, e)
        {
            const char *id = json_string_value(json_object_get(e, "id"));
            json_t *r = get(c, worker, section, id, why, sizeof(why));
            if (r == NULL) {
                fprintf(stderr, "%s/%s: %s\n", section, id, why);
                goto out;
            }
            int same = json_equal(r, e);
            json_decref(r);
            if (!same) {
                fprintf(stderr, "%s/%s: the served body differs from the input's entry\n", section,
                        id);
                goto out;
            }
            n++;
        }
    }
    printf("%zu\n", n);
    status = 0;
out:
    bus_client_free(c);
    json_decref(in);
    return status;
}

static int hammer(const char *dir, const char *worker, const char *section, const char *ids_path,
                  const char *stop)
{
    FILE *f = fopen(ids_path, "r");
    char **ids = NULL, line[512], why[2048];
    size_t n = 0, cap = 0;
    unsigned long ok = 0, failed = 0;
    unsigned long long rng = 0x9e3779b97f4a7c15ull ^ (unsigned long long)getpid();
    bus_client *c = NULL;
    int status = 1;

    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", ids_path, strerror(errno));
        return 1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (!line[0])
            continue;
        if (n == cap) {
            char **nids = realloc(ids, (cap = cap ? 2 * cap : 256) * sizeof(*ids));
            if (nids == NULL)
                goto out;
            ids = nids;
        }
        if ((ids[n] = strdup(line)) == NULL)
            goto out;
        n++;
    }
    if (n == 0 || bus_client_new(dir, &c) < 0)
        goto out;
    while (access(stop, F_OK) != 0) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        const char *id = ids[rng % n];
        json_t *r = get(c, worker, section, id, why, sizeof(why));
        const char *got = json_string_value(json_object_get(r, "id"));
        if (r != NULL && got != NULL && strcmp(got, id) == 0) {
            ok++;
        } else {
            failed++;
            fprintf(stderr, "hammer %s/%s: %s\n", section, id, r != NULL ? "wrong body" : why);
        }
        json_decref(r);
    }
    printf("%lu %lu\n", ok, failed);
    status = failed || ok == 0 ? 1 : 0;
out:
    if (f != NULL)
        fclose(f);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    bus_client_free(c);
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "verify") == 0)
        return verify(argv[2]);
    if (argc == 5 && strcmp(argv[1], "bodies") == 0)
        return bodies(argv[2], argv[3], argv[4]);
    if (argc == 7 && strcmp(argv[1], "hammer") == 0)
        return hammer(argv[2], argv[3], argv[4], argv[5], argv[6]);
    fprintf(stderr, "usage: herd-catalog-check verify OUTDIR\n"
                    "       herd-catalog-check bodies RUNDIR WORKER INPUT.json\n"
                    "       herd-catalog-check hammer RUNDIR WORKER SECTION IDS STOPFILE\n");
    return 2;
}
