/* The one link every catalog OUTDIR has: `current`, naming its version. */
#include "catalog/internal.h"

#include <limits.h>
#include <stdio.h>
#include <unistd.h>

int catalog__read_current(const char *outdir, char *out, size_t out_size)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/current", outdir) >= sizeof(path))
        return -ENAMETOOLONG;
    ssize_t n = readlink(path, out, out_size - 1);
    if (n < 0)
        return -errno;
    if ((size_t)n >= out_size - 1)
        return -ENAMETOOLONG;
    out[n] = '\0';
    return 0;
}
