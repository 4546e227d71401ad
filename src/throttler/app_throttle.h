/* SPDX-License-Identifier: MIT */
/* Operator throttles of apps (docs/semantics.md#app-throttles): key "app" or
 * "app/store" -> (expiry, ratio), at most MaxThrottledApps of them. Owned by
 * the loop; time is passed in. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "throttler/opset.h"

#define APP_THROTTLE_NAME_MAX FRENO_NAME_MAX
/* Default of MaxThrottledApps: app throttles held at once, the built-in
 * "abusing-app" aside. */
#define APP_THROTTLE_DEFAULT_MAX 100000

struct app_throttle_entry {
    uint64_t expire_at_ms; /* 0: never expires */
    double ratio;          /* [0,1] */
};

struct app_throttle {
    struct opset set; /* key -> struct app_throttle_entry */
    size_t max;       /* most entries app_throttle_set() creates, the built-in aside */
};

/* Initializes the set with the built-in "abusing-app" (ten years, ratio 1)
 * and the default limit. */
void app_throttle_init(struct app_throttle *t, uint64_t now_ms);
/* Initializes an empty set, without the built-in entry (a scratch copy). */
void app_throttle_init_empty(struct app_throttle *t);
void app_throttle_deinit(struct app_throttle *t);
/* Sets the limit on entries (0: the default). Existing entries stay. */
void app_throttle_set_max(struct app_throttle *t, size_t max);
/* Drops every entry and adds the built-in one again; the limit stays. */
void app_throttle_clear(struct app_throttle *t, uint64_t now_ms);
/* Entries that count against the limit: all but the built-in one, expired
 * ones included until a sweep drops them. */
size_t app_throttle_used(const struct app_throttle *t);
/* True if @key has an entry, expired or not. */
bool app_throttle_has(const struct app_throttle *t, const char *key);
/* Whether throttling @key needs no room (it has an entry) or there is room
 * for it and @pending other new entries on their way. Returns 0, or -ENOSPC
 * with @err naming the limit and its config key. */
int app_throttle_check_room(const struct app_throttle *t, const char *key, size_t pending,
                            struct err *err);

/* Applies /throttle-app semantics to @key at @now_ms:
 * new entry: expiry now+ttl (no TTL or TTL 0: never), ratio given or 1;
 * existing: TTL given -> new expiry; ratio given -> new ratio; the other kept.
 * Rejects (-EINVAL, @err set, nothing changed) a key that is empty or longer
 * than APP_THROTTLE_NAME_MAX, a negative TTL, a ratio outside [0,1]; and
 * (-ENOSPC) a new key when the limit is reached.
 * On success fills *@result (may be NULL) with the entry as stored. */
int app_throttle_set(struct app_throttle *t, const char *key, bool has_ttl, int64_t ttl_min,
                     bool has_ratio, double ratio, uint64_t now_ms,
                     struct app_throttle_entry *result, struct err *err);
/* Stores an entry as given (e.g. loaded from a backend or replicated): not
 * limited here, the caller bounds what it loads. */
void app_throttle_put(struct app_throttle *t, const char *key, uint64_t expire_at_ms, double ratio);
/* Removes @key; unknown keys are fine. */
void app_throttle_remove(struct app_throttle *t, const char *key);
/* Drops entries whose expiry is <= @now_ms. Returns how many. */
size_t app_throttle_sweep(struct app_throttle *t, uint64_t now_ms);
/* Returns the entry for @key if present and not expired at @now_ms. */
const struct app_throttle_entry *app_throttle_get(const struct app_throttle *t, const char *key,
                                                  uint64_t now_ms);
/* Every entry, expired ones not swept yet included. */
size_t app_throttle_count(const struct app_throttle *t);
/* Iterates every entry in key order:
 * `for (size_t i = 0; app_throttle_next(t, &i, &key, &e);)`. No change to
 * @t during the iteration. */
bool app_throttle_next(struct app_throttle *t, size_t *i, const char **key,
                       const struct app_throttle_entry **e);

/* Replacing the whole set from a reload at a cost that follows what
 * changed: app_throttle_sync_begin(), app_throttle_sync_put() for every
 * entry loaded, then app_throttle_sync_end() drops every entry that was not
 * put (the built-in one stays). An expiry within @slack_ms of the stored one
 * counts as the same: a reload recomputes expiries from whole seconds. Each
 * returns whether it changed anything. */
void app_throttle_sync_begin(struct app_throttle *t);
bool app_throttle_sync_put(struct app_throttle *t, const char *key, uint64_t expire_at_ms,
                           double ratio, uint64_t slack_ms);
bool app_throttle_sync_end(struct app_throttle *t);
