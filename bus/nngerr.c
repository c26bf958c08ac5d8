/* nng's error codes as negative errno values, for every file of bus/. */
#include "bus/internal.h"

#include <errno.h>

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
