/* JSON helpers shared by every module that links the bus. */
#include "bus/bus.h"

#include <stdlib.h>
#include <string.h>

char *bus_json_dumps(const json_t *v, size_t flags)
{
    json_malloc_t jmalloc;
    json_free_t jfree;
    char *s = json_dumps(v, flags), *copy;

    if (s == NULL)
        return NULL;
    json_get_alloc_funcs(&jmalloc, &jfree);
    if (jfree == free)
        return s;
    copy = strdup(s);
    jfree(s);
    return copy;
}
