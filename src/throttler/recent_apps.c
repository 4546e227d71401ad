/* SPDX-License-Identifier: MIT */
/* Apps that checked recently (docs/semantics.md#recent-apps), keyed "app/client" like the
 * original's /recent-apps. Loop thread only; time is passed in. An entry
 * lives until a sweep finds it more than RECENT_APPS_KEEP_MS old. */
#include "throttler/recent_apps.h"

#include <stdlib.h>

#include "core/xalloc.h"

void recent_apps_init(struct recent_apps *r)
{
    strmap_init(&r->map);
}

void recent_apps_deinit(struct recent_apps *r)
{
    const char *key;
    void *value;
    for (size_t i = 0; strmap_next(&r->map, &i, &key, &value);)
        free(value);
    strmap_deinit(&r->map);
}

void recent_apps_record(struct recent_apps *r, const char *app, const char *client, uint64_t now_ms)
{
    char *key = xasprintf("%s/%s", app, client);
    uint64_t *at = strmap_get(&r->map, key);
    if (at == NULL) {
        at = xmalloc(sizeof(*at));
        strmap_put(&r->map, key, at);
    }
    *at = now_ms;
    free(key);
}

/* Kept for exactly RECENT_APPS_KEEP_MS, gone after (the original's cache
 * expires an item strictly after its lifetime). A time ahead of @now_ms
 * (clock stepped back) is young, not ancient. */
static bool is_old(uint64_t checked_at_ms, uint64_t now_ms)
{
    return now_ms > checked_at_ms && now_ms - checked_at_ms > RECENT_APPS_KEEP_MS;
}

size_t recent_apps_sweep(struct recent_apps *r, uint64_t now_ms)
{
    const char *key;
    void *value;
    char **doomed = NULL;
    size_t n = 0;

    /* The map must not change while we walk it, so collect first. */
    for (size_t i = 0; strmap_next(&r->map, &i, &key, &value);) {
        if (!is_old(*(const uint64_t *)value, now_ms))
            continue;
        if (doomed == NULL)
            doomed = xmalloc(r->map.len * sizeof(*doomed));
        doomed[n++] = xstrdup(key);
    }
    for (size_t i = 0; i < n; i++) {
        free(strmap_del(&r->map, doomed[i]));
        free(doomed[i]);
    }
    free(doomed);
    return n;
}

size_t recent_apps_count(const struct recent_apps *r)
{
    return r->map.len;
}
