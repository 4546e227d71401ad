/* SPDX-License-Identifier: MIT */
/* Error reports without heap allocation. Any thread. */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

int err_vset(struct err *err, int code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    err->code = code;
    return code;
}

int err_set(struct err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void err_prefix(struct err *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char head[256];
    char old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", head, old);
}

void err_clear(struct err *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}
