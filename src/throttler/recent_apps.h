/* SPDX-License-Identifier: MIT */
/* Apps that checked recently (docs/semantics.md#recent-apps): "app/client" ->
 * last check time, kept 24 hours and at most a configured number of pairs
 * (MaxRecentApps): a new pair past the cap replaces the least recently seen
 * one. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/lru.h"

#define RECENT_APPS_KEEP_MS (24ull * 3600 * 1000)
/* Longest "app/client" key kept, in bytes; longer keys are cut on a UTF-8
 * character boundary. */
#define RECENT_APPS_KEY_MAX 320

struct recent_apps {
    struct lru lru; /* printable "app/client" -> uint64_t checked_at_ms */
};

/* Initializes an empty table of at most @cap pairs (0: records nothing). */
void recent_apps_init(struct recent_apps *r, size_t cap);
void recent_apps_deinit(struct recent_apps *r);
/* Records a check by @app from @client at @now_ms. The key is stored
 * printable (see text_printable()). */
void recent_apps_record(struct recent_apps *r, const char *app, const char *client,
                        uint64_t now_ms);
/* The time recorded under the printable key @key, or 0 when absent. */
uint64_t recent_apps_get(const struct recent_apps *r, const char *key);
/* Drops entries older than RECENT_APPS_KEEP_MS. Returns how many. */
size_t recent_apps_sweep(struct recent_apps *r, uint64_t now_ms);
size_t recent_apps_count(const struct recent_apps *r);
/* Pairs dropped to stay within the cap since init. */
uint64_t recent_apps_evicted(const struct recent_apps *r);
/* Calls @fn for every entry, most recently seen first. */
void recent_apps_each(const struct recent_apps *r,
                      void (*fn)(const char *key, uint64_t checked_at_ms, void *arg), void *arg);
