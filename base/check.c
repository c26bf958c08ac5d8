/* Names and sizes as configs and requests spell them. */
#include "base/base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool base_name_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > BASE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

bool base_token_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > BASE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!base_token_char((unsigned char)s[i]))
            return false;
    return true;
}

int base_parse_size(const json_t *v, uint64_t *out)
{
    const char *s;
    char *p;
    unsigned long long n;
    uint64_t mult = 1;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -EINVAL;
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -EINVAL;
    s = json_string_value(v);
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    n = strtoull(s, &p, 10);
    if (errno != 0)
        return -EINVAL;
    switch (*p) {
    case 'K':
    case 'k':
        mult = 1ull << 10;
        break;
    case 'M':
    case 'm':
        mult = 1ull << 20;
        break;
    case 'G':
    case 'g':
        mult = 1ull << 30;
        break;
    case 'T':
    case 't':
        mult = 1ull << 40;
        break;
    default:
        break;
    }
    if (mult > 1)
        p++;
    if (mult > 1 && p[0] == 'i' && p[1] == 'B')
        p += 2;
    else if (*p == 'B')
        p++;
    if (*p != '\0' || (mult > 1 && n > UINT64_MAX / mult))
        return -EINVAL;
    *out = n * mult;
    return 0;
}
