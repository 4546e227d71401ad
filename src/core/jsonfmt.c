/* SPDX-License-Identifier: MIT */
/* JSON scalar formatting compatible with Go's encoding/json, into caller
 * buffers with no allocation (the check path uses it). Any thread. */
#include "core/jsonfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t jsonfmt_number(char *buf, size_t size, double v)
{
    if (!isfinite(v))
        v = 0;
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= size)
            return 0;
        if (strtod(buf, NULL) == v)
            break;
    }
    double a = fabs(v);
    if (strchr(buf, 'e') != NULL && a >= 1e-6 && a < 1e21) {
        /* Go prints these without an exponent: widen to fixed notation and
         * trim the zeros the fixed format adds. */
        for (int prec = 0; prec <= 30; prec++) {
            n = snprintf(buf, size, "%.*f", prec, v);
            if (n < 0 || (size_t)n >= size)
                return 0;
            if (strtod(buf, NULL) == v)
                break;
        }
    }
    return (size_t)n;
}

size_t jsonfmt_string(char *buf, size_t size, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (size < 3)
        return 0;
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[7];
        size_t el = 0;
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            el = 2;
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            /* Go escapes <, > and & as well; keep bodies byte-identical. */
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        } else {
            esc[0] = (char)c;
            el = 1;
        }
        if (o + el + 2 > size)
            return 0;
        memcpy(buf + o, esc, el);
        o += el;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return o;
}
