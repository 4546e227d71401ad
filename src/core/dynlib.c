/* SPDX-License-Identifier: MIT */
#include "core/dynlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/xalloc.h"

int dynlib_load(const char *soname, const struct dynlib_sym *syms, size_t n, void *table,
                struct err *err)
{
    dlerror();
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        return err_set(err, -ENOENT, "%s", why != NULL ? why : soname);
    }
    /* Resolved into a scratch copy first: a table is all or nothing. */
    void **addr = xcalloc(n ? n : 1, sizeof(*addr));
    for (size_t i = 0; i < n; i++) {
        dlerror();
        addr[i] = dlsym(h, syms[i].name);
        const char *why = dlerror();
        if (addr[i] == NULL) {
            if (why != NULL)
                err_set(err, -ENOENT, "%s", why);
            else
                err_set(err, -ENOENT, "%s: undefined symbol: %s", soname, syms[i].name);
            free(addr);
            dlclose(h);
            return -ENOENT;
        }
    }
    /* POSIX guarantees a function's address survives the trip through
     * void *; memcpy stores it without an object-to-function cast. */
    for (size_t i = 0; i < n; i++)
        memcpy((char *)table + syms[i].offset, &addr[i], sizeof(addr[i]));
    free(addr);
    return 0;
}
