/* SPDX-License-Identifier: MIT */
/* Strict number parsing. Any thread. */
#include "core/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int parse_i64(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (end == s || *end != '\0')
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

int parse_u32(const char *s, uint32_t *out)
{
    int64_t v;
    int rc = parse_i64(s, &v);
    if (rc < 0)
        return rc;
    if (v < 0 || v > UINT32_MAX)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

int parse_double(const char *s, double *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -EINVAL;
    /* Decimal notation only. strtod() also reads hexadecimal ("0x10" is 16),
     * "inf", "nan(...)" and "infinity"; a ratio or threshold written that
     * way is a typo or a probe, not a number an operator meant. */
    if (s[strspn(s, "0123456789+-.eE")] != '\0')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return -EINVAL;
    /* Overflow (1e309) and underflow (1e-400, denormals): the value is not
     * the one written. */
    if (errno == ERANGE || !isfinite(v))
        return -ERANGE;
    /* "-0" is zero; a sign on it would only show up in renderings. */
    *out = v == 0 ? 0.0 : v;
    return 0;
}
