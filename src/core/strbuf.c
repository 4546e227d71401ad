/* SPDX-License-Identifier: MIT */
/* Growable string buffer. The capacity at least doubles on growth, so n
 * appends cost O(total length). One owner thread. */
#include "core/strbuf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

/* Makes room for @n more bytes plus the NUL. */
static void reserve(struct strbuf *b, size_t n)
{
    assert(n < ((size_t)-1) / 2 - b->len);
    if (b->len + n + 1 <= b->size)
        return;
    b->size = (b->len + n + 1) * 2;
    b->p = xrealloc(b->p, b->size);
}

void strbuf_add(struct strbuf *b, const char *s, size_t n)
{
    reserve(b, n);
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void strbuf_adds(struct strbuf *b, const char *s)
{
    strbuf_add(b, s, strlen(s));
}

void strbuf_vaddf(struct strbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    assert(n >= 0);
    reserve(b, (size_t)n);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void strbuf_addf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vaddf(b, fmt, ap);
    va_end(ap);
}

char *strbuf_take(struct strbuf *b)
{
    char *s = b->p ? b->p : xstrdup("");
    *b = (struct strbuf){0};
    return s;
}

void strbuf_deinit(struct strbuf *b)
{
    free(b->p);
    *b = (struct strbuf){0};
}
