/* SPDX-License-Identifier: MIT */
/* Apps that checked recently (docs/semantics.md#recent-apps), keyed "app/client" like the
 * original's /recent-apps. Loop thread only; time is passed in. An entry
 * lives until a sweep finds it more than RECENT_APPS_KEEP_MS old, or until
 * the cap makes room for a newer pair. */
#include "throttler/recent_apps.h"

#include <stdio.h>
#include <string.h>

#include "core/text.h"

void recent_apps_init(struct recent_apps *r, size_t cap)
{
    lru_init(&r->lru, cap, sizeof(uint64_t), NULL);
}

void recent_apps_deinit(struct recent_apps *r)
{
    lru_deinit(&r->lru);
}

void recent_apps_record(struct recent_apps *r, const char *app, const char *client, uint64_t now_ms)
{
    char raw[RECENT_APPS_KEY_MAX + 1], key[RECENT_APPS_KEY_MAX + 1];
    snprintf(raw, sizeof(raw), "%s/%s", app, client);
    text_printable(key, sizeof(key), raw);
    uint64_t *at = lru_touch(&r->lru, key, NULL);
    if (at != NULL)
        *at = now_ms;
}

uint64_t recent_apps_get(const struct recent_apps *r, const char *key)
{
    const uint64_t *at = lru_get(&r->lru, key);
    return at != NULL ? *at : 0;
}

/* Kept for exactly RECENT_APPS_KEEP_MS, gone after (the original's cache
 * expires an item strictly after its lifetime). A time ahead of @now_ms
 * (clock stepped back) is young, not ancient. */
static bool is_old(const char *key, void *value, void *arg)
{
    (void)key;
    uint64_t checked_at_ms = *(const uint64_t *)value, now_ms = *(const uint64_t *)arg;
    return now_ms > checked_at_ms && now_ms - checked_at_ms > RECENT_APPS_KEEP_MS;
}

size_t recent_apps_sweep(struct recent_apps *r, uint64_t now_ms)
{
    return lru_sweep(&r->lru, is_old, &now_ms);
}

size_t recent_apps_count(const struct recent_apps *r)
{
    return lru_len(&r->lru);
}

uint64_t recent_apps_evicted(const struct recent_apps *r)
{
    return r->lru.evicted;
}

void recent_apps_each(const struct recent_apps *r,
                      void (*fn)(const char *key, uint64_t checked_at_ms, void *arg), void *arg)
{
    for (struct lru_node *n = lru_first(&r->lru); n != NULL; n = lru_next(n))
        fn(lru_node_key(n), *(const uint64_t *)lru_node_value(n), arg);
}
