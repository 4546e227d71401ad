/* SPDX-License-Identifier: MIT */
/* UTF-8 checking with libunistring's decoder: a byte it rejects, or a whole
 * control character, becomes one '?', so the output never grows. Any
 * thread. */
#include "core/text.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <unistr.h>

#include "core/limits.h"

size_t text_printable(char *dst, size_t size, const char *src)
{
    const uint8_t *s = (const uint8_t *)src;
    size_t n = strlen(src), o = 0;
    while (n > 0) {
        ucs4_t uc;
        int len = u8_mbtoucr(&uc, s, n);
        bool invalid = len < 0;
        bool control = !invalid && (uc < 0x20 || (uc >= 0x7f && uc < 0xa0));
        size_t take = invalid ? 1 : (size_t)len;
        size_t out = invalid || control ? 1 : take;
        if (o + out >= size)
            break;
        if (invalid || control)
            dst[o] = '?';
        else
            memcpy(dst + o, s, take);
        o += out;
        s += take;
        n -= take;
    }
    dst[o] = '\0';
    return o;
}

bool text_is_metric_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > FRENO_METRIC_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}
