/* SPDX-License-Identifier: MIT */
/* Apps that checked recently (docs/semantics.md#recent-apps): "app/client" -> last check time, kept
 * 24 hours. Loop thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/strmap.h"

#define RECENT_APPS_KEEP_MS (24ull * 3600 * 1000)

struct recent_apps {
    struct strmap map; /* "app/client" -> uint64_t * checked_at_ms */
};

void recent_apps_init(struct recent_apps *r);
void recent_apps_deinit(struct recent_apps *r);
/* Records a check by @app from @client at @now_ms. */
void recent_apps_record(struct recent_apps *r, const char *app, const char *client,
                        uint64_t now_ms);
/* Drops entries older than RECENT_APPS_KEEP_MS. Returns how many. */
size_t recent_apps_sweep(struct recent_apps *r, uint64_t now_ms);
size_t recent_apps_count(const struct recent_apps *r);
