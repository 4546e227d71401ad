/* SPDX-License-Identifier: MIT */
/* Operator throttles of apps (docs/semantics.md#app-throttles). Loop thread; time is passed in.
 * Invariant: every stored ratio is in [0,1] and every key is 1..128 bytes
 * when it came through app_throttle_set(); an expired entry may linger until
 * the next sweep but is never returned by app_throttle_get(). */
#include "throttler/app_throttle.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

#define MIN_MS             (60ull * 1000)
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
    strmap_init(&t->map);
    app_throttle_put(t, ABUSING_APP, now_ms + ABUSING_APP_TTL_MS, 1.0);
}

void app_throttle_deinit(struct app_throttle *t)
{
    const char *key;
    void *value;
    for (size_t i = 0; strmap_next(&t->map, &i, &key, &value);)
        free(value);
    strmap_deinit(&t->map);
}

int app_throttle_set(struct app_throttle *t, const char *key, bool has_ttl, int64_t ttl_min,
                     bool has_ratio, double ratio, uint64_t now_ms,
                     struct app_throttle_entry *result, struct err *err)
{
    char num[32];

    assert(key != NULL);
    size_t key_len = strlen(key);
    if (key_len == 0)
        return err_set(err, -EINVAL, "throttle-app: empty app name");
    if (key_len > APP_THROTTLE_NAME_MAX)
        return err_set(err, -EINVAL, "throttle-app: app name longer than %d bytes",
                       APP_THROTTLE_NAME_MAX);
    if (has_ttl && ttl_min < 0)
        return err_set(err, -EINVAL, "throttle-app: negative ttl %" PRId64, ttl_min);
    /* The backend adds the TTL to now() in MySQL; an expiry past what any
     * clock can show is a typo, not a wish. */
    if (has_ttl && (uint64_t)ttl_min > (UINT64_MAX - now_ms) / MIN_MS)
        return err_set(err, -EINVAL, "throttle-app: ttl %" PRId64 " minutes is too large", ttl_min);
    /* Written so that NaN fails too. */
    if (has_ratio && !(ratio >= 0 && ratio <= 1))
        return err_set(err, -EINVAL, "throttle-app: ratio must be in [0..1] range; got %s",
                       fmt_double(ratio, num, sizeof(num)));

    /* TTL 0 means "never expires", as in the original, both for a new entry
     * and as a new expiry for an existing one. */
    uint64_t expire_at_ms = has_ttl && ttl_min > 0 ? now_ms + (uint64_t)ttl_min * MIN_MS : 0;

    struct app_throttle_entry *e = strmap_get(&t->map, key);
    if (e != NULL && is_expired(e, now_ms)) {
        /* Not swept yet: to the caller it is gone, so it is replaced as new. */
        free(strmap_del(&t->map, key));
        e = NULL;
    }
    if (e == NULL) {
        e = xmalloc(sizeof(*e));
        e->expire_at_ms = expire_at_ms;
        e->ratio = has_ratio ? ratio : 1.0;
        strmap_put(&t->map, key, e);
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
    struct app_throttle_entry *e = strmap_get(&t->map, key);
    if (e == NULL) {
        e = xmalloc(sizeof(*e));
        strmap_put(&t->map, key, e);
    }
    e->expire_at_ms = expire_at_ms;
    e->ratio = ratio;
}

void app_throttle_remove(struct app_throttle *t, const char *key)
{
    free(strmap_del(&t->map, key));
}

size_t app_throttle_sweep(struct app_throttle *t, uint64_t now_ms)
{
    const char *key;
    void *value;
    char **doomed = NULL;
    size_t n = 0;

    /* The map must not change while we walk it, so collect first. */
    for (size_t i = 0; strmap_next(&t->map, &i, &key, &value);) {
        if (!is_expired(value, now_ms))
            continue;
        if (doomed == NULL)
            doomed = xmalloc(t->map.len * sizeof(*doomed));
        doomed[n++] = xstrdup(key);
    }
    for (size_t i = 0; i < n; i++) {
        free(strmap_del(&t->map, doomed[i]));
        free(doomed[i]);
    }
    free(doomed);
    return n;
}

const struct app_throttle_entry *app_throttle_get(const struct app_throttle *t, const char *key,
                                                  uint64_t now_ms)
{
    const struct app_throttle_entry *e = strmap_get(&t->map, key);
    if (e == NULL || is_expired(e, now_ms))
        return NULL;
    return e;
}

size_t app_throttle_count(const struct app_throttle *t)
{
    return t->map.len;
}
