/* SPDX-License-Identifier: MIT */
/* Strict number parsing. Any thread. */
#include "core/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

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
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return -EINVAL;
    if (!isfinite(v))
        return -EINVAL;
    if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
        return -ERANGE;
    *out = v;
    return 0;
}
