/* SPDX-License-Identifier: MIT */
/* The throttler's app throttles as the rest of the daemon changes them:
 * operator commands, absolute values from a backend or a raft log, whole
 * reloads, and the plans a replicated command is built from. The rules live
 * in app_throttle.c; this file keeps the snapshot in step. Loop thread. */
#include "throttler/throttler_impl.h"

int throttler_throttle_app(struct throttler *t, const char *key, bool has_ttl, int64_t ttl_min,
                           bool has_ratio, double ratio, struct err *err)
{
    uint64_t now_ms = throttler_now_ms(t);
    int rc = app_throttle_set(&t->apps, key, has_ttl, ttl_min, has_ratio, ratio, now_ms, NULL, err);
    if (rc < 0)
        return rc;
    throttler_mark_apps(t);
    throttler_publish_at(t, now_ms);
    return 0;
}

void throttler_unthrottle_app(struct throttler *t, const char *key)
{
    app_throttle_remove(&t->apps, key);
    throttler_mark_apps(t);
    throttler_publish_at(t, throttler_now_ms(t));
}

void throttler_put_app(struct throttler *t, const char *key, uint64_t expire_at_ms, double ratio)
{
    app_throttle_put(&t->apps, key, expire_at_ms, ratio);
    throttler_mark_apps(t);
}

void throttler_remove_app(struct throttler *t, const char *key)
{
    app_throttle_remove(&t->apps, key);
    throttler_mark_apps(t);
}

void throttler_clear_apps(struct throttler *t)
{
    app_throttle_clear(&t->apps, throttler_now_ms(t));
    throttler_mark_apps(t);
}

void throttler_replace_apps(struct throttler *t, const struct throttler_app *v, size_t n)
{
    /* A reload every 10 s usually changes nothing: then nothing is rebuilt. */
    bool changed = false;
    app_throttle_sync_begin(&t->apps);
    for (size_t i = 0; i < n; i++)
        changed |= app_throttle_sync_put(&t->apps, v[i].key, v[i].expire_at_ms, v[i].ratio,
                                         THROTTLER_RELOAD_EXPIRY_SLACK_MS);
    changed |= app_throttle_sync_end(&t->apps);
    if (!changed)
        return;
    throttler_mark_apps(t);
    throttler_publish_at(t, throttler_now_ms(t));
}

int throttler_plan_throttle_app(struct throttler *t, const char *key, bool has_ttl, int64_t ttl_min,
                                bool has_ratio, double ratio, uint64_t now_ms,
                                uint64_t *expire_at_ms, double *ratio_out, struct err *err)
{
    int rc = app_throttle_check_room(&t->apps, key, 0, err);
    if (rc < 0)
        return rc;
    /* Run the real rules on a scratch set holding only the current entry. */
    struct app_throttle scratch;
    app_throttle_init_empty(&scratch);
    const struct app_throttle_entry *cur = app_throttle_get(&t->apps, key, now_ms);
    if (cur != NULL)
        app_throttle_put(&scratch, key, cur->expire_at_ms, cur->ratio);
    struct app_throttle_entry e;
    rc = app_throttle_set(&scratch, key, has_ttl, ttl_min, has_ratio, ratio, now_ms, &e, err);
    app_throttle_deinit(&scratch);
    if (rc < 0)
        return rc;
    *expire_at_ms = e.expire_at_ms;
    *ratio_out = e.ratio;
    return 0;
}

bool throttler_app_is_new(struct throttler *t, const char *key)
{
    return !app_throttle_has(&t->apps, key);
}

int throttler_room_for_app(struct throttler *t, const char *key, size_t pending, struct err *err)
{
    return app_throttle_check_room(&t->apps, key, pending, err);
}

void throttler_each_app(struct throttler *t,
                        void (*fn)(const char *key, uint64_t expire_at_ms, double ratio, void *arg),
                        void *arg)
{
    const char *key;
    const struct app_throttle_entry *e;
    for (size_t it = 0; app_throttle_next(&t->apps, &it, &key, &e);)
        fn(key, e->expire_at_ms, e->ratio, arg);
}
