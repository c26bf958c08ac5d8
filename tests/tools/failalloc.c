/*
 * An LD_PRELOAD shim for herdd's tests: nng_msg_alloc fails (NNG_ENOMEM)
 * for every message larger than $HERD_FAIL_MSG_OVER bytes, so a test can
 * drive the reply path's allocation failures deterministically. Unset, it
 * changes nothing.
 */
#include <dlfcn.h>
#include <stdlib.h>

#include <nng/nng.h>

typedef int (*msg_alloc_fn)(nng_msg **, size_t);

int nng_msg_alloc(nng_msg **msg, size_t size)
{
    static msg_alloc_fn real;
    static long over = -2;

    if (real == NULL)
        real = (msg_alloc_fn)dlsym(RTLD_NEXT, "nng_msg_alloc");
    if (over == -2) {
        const char *v = getenv("HERD_FAIL_MSG_OVER");
        over = v != NULL ? atol(v) : -1;
    }
    if (over >= 0 && size > (size_t)over)
        return NNG_ENOMEM;
    return real(msg, size);
}
