/* The table of worker kinds herdd knows. Adding a kind touches its own file
 * and one line here. */
#include "supervisor/internal.h"
#include "catalog/catalog.h"
#include "jobs/jobs.h"

#include <string.h>

static const worker_kind *const kinds[] = {
    &worker_process_kind, &jobs_worker_kind,    &catalog_worker_kind,
    &worker_webhook_kind, &worker_archive_kind, &worker_exec_kind,
    &worker_forward_kind, &worker_nats_kind,    NULL,
};

const worker_kind *sup__kind_find(const char *name)
{
    for (size_t i = 0; kinds[i] != NULL; i++)
        if (strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

void sup__kind_names(char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; kinds[i] != NULL && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", kinds[i]->name);
}
