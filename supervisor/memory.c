/* Resident, proportional and unique set sizes from /proc/PID/smaps_rollup:
 * the kernel's own sums, one small read, no walk over every mapping; and
 * the resident size alone from /proc/self/statm, the kernel's counters,
 * for measuring what a heap trim gave back. */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sup_memory_read(int pid, sup_memory *out)
{
    char path[64], line[256];
    FILE *f;
    unsigned long long kb, priv = 0;

    memset(out, 0, sizeof(*out));
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/smaps_rollup");
    f = fopen(path, "re");
    if (f == NULL)
        return -errno;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "Rss: %llu kB", &kb) == 1)
            out->rss_bytes = kb * 1024;
        else if (sscanf(line, "Pss: %llu kB", &kb) == 1)
            out->pss_bytes = kb * 1024;
        else if (sscanf(line, "Private_Clean: %llu kB", &kb) == 1 ||
                 sscanf(line, "Private_Dirty: %llu kB", &kb) == 1)
            priv += kb;
    }
    fclose(f);
    out->uss_bytes = priv * 1024;
    return 0;
}

int sup_memory_resident(uint64_t *rss_bytes)
{
    unsigned long long size, resident;
    FILE *f = fopen("/proc/self/statm", "re");
    int n;

    *rss_bytes = 0;
    if (f == NULL)
        return -errno;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2)
        return -EIO;
    *rss_bytes = resident * (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
}
