/* SPDX-License-Identifier: MIT */
/* Operator throttles of apps (docs/semantics.md#app-throttles). Loop thread; time is passed in.
 * Invariant: every stored ratio is in [0,1] and every key is 1..128 bytes
 * when it came through app_throttle_set(); an expired entry may linger until
 * the next sweep but is never returned by app_throttle_get(). */
#include "throttler/app_throttle.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ABUSING_APP        "abusing-app"
#define ABUSING_APP_TTL_MS (10ull * 365 * 24 * 3600 * 1000) /* the original's ten years */

/* Formats @x with 15 significant digits, or 17 when 15 do not read back as
 * @x, so an error shows "7" or "1.0000001", never a misleading rounded "1". */
static const char *fmt_double(double x, char *buf, size_t size)
{
    snprintf(buf, size, "%.15g", x);
    if (strtod(buf, NULL) != x)
        snprintf(buf, size, "%.17g", x);
    return buf;
}

static bool is_expired(const struct app_throttle_entry *e, uint64_t now_ms)
{
    return e->expire_at_ms != 0 && e->expire_at_ms <= now_ms;
}

void app_throttle_init(struct app_throttle *t, uint64_t now_ms)
{
    app_throttle_init_empty(t);
    app_throttle_put(t, ABUSING_APP, now_ms + ABUSING_APP_TTL_MS, 1.0);
}

void app_throttle_init_empty(struct app_throttle *t)
{
    opset_init(&t->set, sizeof(struct app_throttle_entry));
    t->max = APP_THROTTLE_DEFAULT_MAX;
}

void app_throttle_deinit(struct app_throttle *t)
{
    opset_deinit(&t->set);
}

void app_throttle_set_max(struct app_throttle *t, size_t max)
{
    t->max = max ? max : APP_THROTTLE_DEFAULT_MAX;
}

void app_throttle_clear(struct app_throttle *t, uint64_t now_ms)
{
    opset_clear(&t->set);
    app_throttle_put(t, ABUSING_APP, now_ms + ABUSING_APP_TTL_MS, 1.0);
}

bool app_throttle_has(const struct app_throttle *t, const char *key)
{
    return opset_get(&t->set, key) != NULL;
}

size_t app_throttle_used(const struct app_throttle *t)
{
    return opset_len(&t->set) - (app_throttle_has(t, ABUSING_APP) ? 1 : 0);
}

int app_throttle_check_room(const struct app_throttle *t, const char *key, size_t pending,
                            struct err *err)
{
    /* An entry not swept yet still holds its slot, so replacing it is free;
     * the built-in one never counts. */
    if (strcmp(key, ABUSING_APP) == 0)
        return 0;
    return opset_check_room(&t->set, key, app_throttle_used(t), t->max, pending, "throttle-app",
                            "apps are throttled (MaxThrottledApps); unthrottle some", err);
}

int app_throttle_set(struct app_throttle *t, const char *key, bool has_ttl, int64_t ttl_min,
                     bool has_ratio, double ratio, uint64_t now_ms,
                     struct app_throttle_entry *result, struct err *err)
{
    char num[32];

    assert(key != NULL);
    int rc = opset_check_name("throttle-app", "app", key, APP_THROTTLE_NAME_MAX, err);
    if (rc == 0 && has_ttl)
        rc = opset_check_ttl("throttle-app", ttl_min, now_ms, err);
    if (rc < 0)
        return rc;
    /* Written so that NaN fails too. */
    if (has_ratio && !(ratio >= 0 && ratio <= 1))
        return err_set(err, -EINVAL, "throttle-app: ratio must be in [0..1] range; got %s",
                       fmt_double(ratio, num, sizeof(num)));
    rc = app_throttle_check_room(t, key, 0, err);
    if (rc < 0)
        return rc;

    /* TTL 0 means "never expires", as in the original, both for a new entry
     * and as a new expiry for an existing one. */
    uint64_t expire_at_ms = has_ttl && ttl_min > 0 ? now_ms + (uint64_t)ttl_min * OPSET_MIN_MS : 0;

    struct app_throttle_entry *e = opset_get(&t->set, key);
    if (e != NULL && is_expired(e, now_ms))
        e = NULL; /* not swept yet: to the caller it is gone, so it is replaced as new */
    if (e == NULL) {
        e = opset_put(&t->set, key, NULL);
        e->expire_at_ms = expire_at_ms;
        e->ratio = has_ratio ? ratio : 1.0;
    } else {
        /* docs/semantics.md#app-throttles: a ratio alone keeps the expiry (the original makes the
         * entry permanent); a TTL alone keeps the ratio. */
        if (has_ttl)
            e->expire_at_ms = expire_at_ms;
        if (has_ratio)
            e->ratio = ratio;
    }
    if (result != NULL)
        *result = *e;
    return 0;
}

void app_throttle_put(struct app_throttle *t, const char *key, uint64_t expire_at_ms, double ratio)
{
    struct app_throttle_entry *e = opset_put(&t->set, key, NULL);
    e->expire_at_ms = expire_at_ms;
    e->ratio = ratio;
}

void app_throttle_remove(struct app_throttle *t, const char *key)
{
    opset_del(&t->set, key);
}

size_t app_throttle_sweep(struct app_throttle *t, uint64_t now_ms)
{
    return opset_sweep_expired(&t->set, now_ms, true);
}

const struct app_throttle_entry *app_throttle_get(const struct app_throttle *t, const char *key,
                                                  uint64_t now_ms)
{
    const struct app_throttle_entry *e = opset_get(&t->set, key);
    if (e == NULL || is_expired(e, now_ms))
        return NULL;
    return e;
}

size_t app_throttle_count(const struct app_throttle *t)
{
    return opset_len(&t->set);
}

bool app_throttle_next(struct app_throttle *t, size_t *i, const char **key,
                       const struct app_throttle_entry **e)
{
    void *v = NULL;
    bool more = opset_next(&t->set, i, key, &v);
    *e = v;
    return more;
}

void app_throttle_sync_begin(struct app_throttle *t)
{
    opset_sync_begin(&t->set);
}

bool app_throttle_sync_put(struct app_throttle *t, const char *key, uint64_t expire_at_ms,
                           double ratio, uint64_t slack_ms)
{
    const struct app_throttle_entry *e = opset_get(&t->set, key);
    if (e != NULL && e->ratio == ratio && (e->expire_at_ms == 0) == (expire_at_ms == 0) &&
        opset_sync_keep(&t->set, key, e->expire_at_ms, expire_at_ms, slack_ms))
        return false;
    app_throttle_put(t, key, expire_at_ms, ratio);
    return true;
}

bool app_throttle_sync_end(struct app_throttle *t)
{
    return opset_remove_untouched(&t->set, ABUSING_APP) > 0;
}
