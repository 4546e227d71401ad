/* SPDX-License-Identifier: MIT */
/* struct config_strv, the string lists of a config: clear, append, copy, and
 * the one comma-separated list splitter (--raft-nodes, HAProxy Addresses).
 * Main thread, like every config change. */
#include "config/config_load.h"

#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

void config_strv_clear(struct config_strv *sv)
{
    while (sv->len > 0)
        free(sv->v[--sv->len]);
    free(sv->v);
    sv->v = NULL;
}

void config_strv_push(struct config_strv *sv, char *s)
{
    sv->v = xrealloc(sv->v, (sv->len + 1) * sizeof(*sv->v));
    sv->v[sv->len++] = s;
}

void config_strv_copy(struct config_strv *dst, const struct config_strv *src)
{
    config_strv_clear(dst);
    for (size_t i = 0; i < src->len; i++)
        config_strv_push(dst, xstrdup(src->v[i]));
}

void config_strv_set_csv(struct config_strv *sv, const char *csv)
{
    config_strv_clear(sv);
    for (const char *p = csv; *p;) {
        size_t n = strcspn(p, ",");
        if (n > 0)
            config_strv_push(sv, xstrndup(p, n));
        p += n + (p[n] == ',');
    }
}
