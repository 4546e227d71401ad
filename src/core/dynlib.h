/* SPDX-License-Identifier: MIT */
/* Libraries only some configurations use (libcurl, libmemcached) are opened
 * on first use rather than linked, so a daemon that does not need them does
 * not map them. Each user keeps a table of function pointers whose types
 * come from the library's own header (`__typeof__(curl_easy_init) *`), so
 * every call is still checked against the library's declarations, and
 * resolves it here by symbol name. Libraries are never closed. Loop thread
 * (dlerror() is per thread; callers serialise their own tables). */
#pragma once

#include <stddef.h>

struct err;

/* One table entry: the symbol and where its pointer goes in the table. */
struct dynlib_sym {
    const char *name;
    size_t offset;
};

/* Opens @soname (RTLD_NOW | RTLD_LOCAL: every symbol it and its
 * dependencies need is bound now) and stores the address of each of the @n
 * symbols at @table + its offset. Returns 0, or -ENOENT with @err set to
 * "<soname>: <the loader's reason>" when the library or a symbol is
 * missing; the table is then left untouched. */
int dynlib_load(const char *soname, const struct dynlib_sym *syms, size_t n, void *table,
                struct err *err);
