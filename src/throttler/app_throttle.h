/* SPDX-License-Identifier: MIT */
/* Operator throttles of apps (docs/semantics.md#app-throttles): key "app" or "app/store" ->
 * (expiry, ratio). Owned by the loop; time is passed in. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/strmap.h"

#define APP_THROTTLE_NAME_MAX 128 /* the backend's varchar(128) */

struct app_throttle_entry {
    uint64_t expire_at_ms; /* 0: never expires */
    double ratio;          /* [0,1] */
};

struct app_throttle {
    struct strmap map; /* key -> struct app_throttle_entry * */
};

/* Initializes the set with the built-in "abusing-app" (ten years, ratio 1). */
void app_throttle_init(struct app_throttle *t, uint64_t now_ms);
void app_throttle_deinit(struct app_throttle *t);

/* Applies /throttle-app semantics to @key at @now_ms:
 * new entry: expiry now+ttl (no TTL or TTL 0: never), ratio given or 1;
 * existing: TTL given -> new expiry; ratio given -> new ratio; the other kept.
 * Rejects (-EINVAL, @err set, nothing changed) a key that is empty or longer
 * than APP_THROTTLE_NAME_MAX, a negative TTL, a ratio outside [0,1].
 * On success fills *@result (may be NULL) with the entry as stored. */
int app_throttle_set(struct app_throttle *t, const char *key, bool has_ttl, int64_t ttl_min,
                     bool has_ratio, double ratio, uint64_t now_ms,
                     struct app_throttle_entry *result, struct err *err);
/* Stores an entry as given (e.g. loaded from a backend). */
void app_throttle_put(struct app_throttle *t, const char *key, uint64_t expire_at_ms, double ratio);
/* Removes @key; unknown keys are fine. */
void app_throttle_remove(struct app_throttle *t, const char *key);
/* Drops entries whose expiry is <= @now_ms. Returns how many. */
size_t app_throttle_sweep(struct app_throttle *t, uint64_t now_ms);
/* Returns the entry for @key if present and not expired at @now_ms. */
const struct app_throttle_entry *app_throttle_get(const struct app_throttle *t, const char *key,
                                                  uint64_t now_ms);
size_t app_throttle_count(const struct app_throttle *t);
