/* SPDX-License-Identifier: MIT */
/* A growable NUL-terminated string buffer for text built piece by piece.
 * Running out of memory is fatal (xalloc), so appending cannot fail. Not
 * thread-safe: one owner. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

/* Zero-initialize ({0}) before use; p is NULL until something is added. */
struct strbuf {
    char *p;     /* the text, NUL-terminated once anything was added */
    size_t len;  /* bytes used, without the NUL */
    size_t size; /* bytes allocated */
};

/* Appends @n bytes of @s (which need not be NUL-terminated). */
void strbuf_add(struct strbuf *b, const char *s, size_t n);
/* Appends the string @s. */
void strbuf_adds(struct strbuf *b, const char *s);
/* Appends printf-style text. */
void strbuf_addf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *b, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
/* Returns the text ("" if nothing was added), which the caller frees, and
 * leaves the buffer empty and reusable. */
char *strbuf_take(struct strbuf *b);
/* Frees the text and empties the buffer. */
void strbuf_deinit(struct strbuf *b);
