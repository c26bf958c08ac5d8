/* UTF-8 validation: one definition of a valid sequence for every module. */
#include "base/base.h"

#include <string.h>

int base_utf8_len(const void *p, size_t avail)
{
    const unsigned char *s = p;
    unsigned c = s[0], cp;
    int n;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0; /* a continuation byte, an overlong lead, or beyond U+10FFFF */
    cp = c & (0x7fu >> n);
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= avail)
            return -1;
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        /* Overlongs, surrogates and > U+10FFFF show in the second byte, so
         * a cut-off prefix of one is invalid, not incomplete. */
        if (i == 1 && n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f)))
            return 0;
        if (i == 1 && n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f)))
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    return n;
}

bool base_utf8_valid(const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i = 0;

    while (i < len) {
        /* Most text is ASCII: skip it a word at a time. */
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        int n = base_utf8_len(s + i, len - i);
        if (n <= 0)
            return false;
        i += (size_t)n;
    }
    return true;
}
