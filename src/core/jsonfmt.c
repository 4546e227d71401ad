/* SPDX-License-Identifier: MIT */
/* JSON scalar formatting compatible with Go's encoding/json, into caller
 * buffers with no allocation (the check path uses it). Any thread. */
#include "core/jsonfmt.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints @v in fixed ("%.*f") or shortest ("%.*g") notation at the lowest
 * precision from @lo to @hi that reads back as @v; returns the length, or 0
 * if it does not fit @size. */
static int shortest(char *buf, size_t size, bool fixed, int lo, int hi, double v)
{
    int n = 0;
    for (int prec = lo; prec <= hi; prec++) {
        n = fixed ? snprintf(buf, size, "%.*f", prec, v) : snprintf(buf, size, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= size)
            return 0;
        if (strtod(buf, NULL) == v)
            break;
    }
    return n;
}

size_t jsonfmt_number(char *buf, size_t size, double v)
{
    if (!isfinite(v))
        v = 0;
    int n = shortest(buf, size, false, 15, 17, v);
    double a = fabs(v);
    /* Go prints these without an exponent: use the shortest fixed notation. */
    if (n > 0 && strchr(buf, 'e') != NULL && a >= 1e-6 && a < 1e21)
        n = shortest(buf, size, true, 0, 30, v);
    return n > 0 ? (size_t)n : 0;
}

size_t jsonfmt_string(char *buf, size_t size, const char *s)
{
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
            el = jsonfmt_escape_byte(esc, c);
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

size_t jsonfmt_escape_byte(char out[6], unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'u';
    out[2] = '0';
    out[3] = '0';
    out[4] = hex[c >> 4];
    out[5] = hex[c & 15];
    return 6;
}
