/* What bus/ needs of nng beyond its API: its error codes as negative errno
 * values, and a walk over its statistics. */
#include "bus/internal.h"

#include <errno.h>
#include <string.h>

int bus__errno(int rv)
{
    if (rv == 0)
        return 0;
    if ((rv & NNG_ESYSERR) != 0)
        return -(rv & ~NNG_ESYSERR); /* nng carries the system's errno */
    switch (rv) {
    case NNG_EINTR:
        return -EINTR;
    case NNG_ENOMEM:
        return -ENOMEM;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOARG:
    case NNG_EAMBIGUOUS:
    case NNG_EBADTYPE:
        return -EINVAL;
    case NNG_EBUSY:
        return -EBUSY;
    case NNG_ETIMEDOUT:
        return -ETIMEDOUT;
    case NNG_ECONNREFUSED:
        return -ECONNREFUSED;
    case NNG_ECLOSED:
        return -EBADF;
    case NNG_EAGAIN:
        return -EAGAIN;
    case NNG_ENOTSUP:
        return -ENOTSUP;
    case NNG_EADDRINUSE:
        return -EADDRINUSE;
    case NNG_ESTATE:
    case NNG_EPROTO:
        return -EPROTO;
    case NNG_EUNREACHABLE:
        return -EHOSTUNREACH;
    case NNG_EPERM:
    case NNG_EPEERAUTH:
        return -EACCES;
    case NNG_EMSGSIZE:
        return -EMSGSIZE;
    case NNG_ECONNABORTED:
        return -ECONNABORTED;
    case NNG_ECONNRESET:
    case NNG_ECONNSHUT:
        return -ECONNRESET;
    case NNG_ECANCELED:
        return -ECANCELED;
    case NNG_ENOFILES:
        return -EMFILE;
    case NNG_ENOSPC:
        return -ENOSPC;
    case NNG_EEXIST:
        return -EEXIST;
    case NNG_EREADONLY:
        return -EROFS;
    case NNG_EWRITEONLY:
        return -EBADF;
    case NNG_ENOENT:
        return -ENOENT;
    default:
        return -EIO;
    }
}

void bus__stats_each(nng_stat *st, const char *scope, void (*fn)(nng_stat *s, void *data),
                     void *data)
{
    if (nng_stat_type(st) == NNG_STAT_SCOPE && strcmp(nng_stat_name(st), scope) == 0) {
        fn(st, data);
        return;
    }
    for (nng_stat *c = nng_stat_child(st); c != NULL; c = nng_stat_next(c))
        bus__stats_each(c, scope, fn, data);
}

uint64_t bus__stat_value(nng_stat *scope, const char *name)
{
    nng_stat *s = nng_stat_find(scope, name);
    return s != NULL ? nng_stat_value(s) : 0;
}
