/* SPDX-License-Identifier: MIT */
/* Allocation wrappers: running out of memory is fatal, so callers never check
 * for NULL. Any thread. */
#pragma once

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
/* Duplicates at most @n bytes of @s and NUL-terminates the copy. */
char *xstrndup(const char *s, size_t n);
/* Like asprintf, aborting on failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
