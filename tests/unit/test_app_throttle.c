/* SPDX-License-Identifier: MIT */
/* Unit tests for throttler/app_throttle: the built-in entry, /throttle-app
 * set semantics (docs/semantics.md#app-throttles), rejected input, expiry and sweeping. Time is
 * driven through now_ms; nothing sleeps. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "throttler/app_throttle.h"

#define MIN_MS  (60ull * 1000)
#define T0      1700000000000ull /* an arbitrary wall time */
#define TEN_YRS (10ull * 365 * 24 * 3600 * 1000)

static int setup(void **state)
{
    static struct app_throttle t;
    app_throttle_init(&t, T0);
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    app_throttle_deinit(*state);
    return 0;
}

/* Calls app_throttle_set() expecting success; returns the stored entry. */
static struct app_throttle_entry set_ok(struct app_throttle *t, const char *key, bool has_ttl,
                                        int64_t ttl_min, bool has_ratio, double ratio,
                                        uint64_t now_ms)
{
    struct app_throttle_entry e = {.expire_at_ms = 12345, .ratio = -1};
    struct err err = {0};
    int rc = app_throttle_set(t, key, has_ttl, ttl_min, has_ratio, ratio, now_ms, &e, &err);
    if (rc != 0)
        fail_msg("set %s: %d %s", key, rc, err.msg);
    const struct app_throttle_entry *got = app_throttle_get(t, key, now_ms);
    if (e.expire_at_ms == 0 || e.expire_at_ms > now_ms) {
        assert_non_null(got);
        assert_int_equal(got->expire_at_ms, e.expire_at_ms);
        assert_true(got->ratio == e.ratio);
    }
    return e;
}

/* Calls app_throttle_set() expecting -EINVAL with @msg and no change. */
static void set_fails(struct app_throttle *t, const char *key, bool has_ttl, int64_t ttl_min,
                      bool has_ratio, double ratio, const char *msg)
{
    struct app_throttle_entry e = {.expire_at_ms = 777, .ratio = 0.25};
    struct err err = {0};
    const struct app_throttle_entry *before = app_throttle_get(t, key, T0);
    struct app_throttle_entry saved = before ? *before : (struct app_throttle_entry){0};
    size_t count = app_throttle_count(t);

    int rc = app_throttle_set(t, key, has_ttl, ttl_min, has_ratio, ratio, T0, &e, &err);
    assert_int_equal(rc, -EINVAL);
    assert_int_equal(err.code, -EINVAL);
    assert_string_equal(err.msg, msg);
    assert_int_equal(app_throttle_count(t), count);
    /* The result is left alone on failure. */
    assert_int_equal(e.expire_at_ms, 777);
    assert_true(e.ratio == 0.25);
    const struct app_throttle_entry *after = app_throttle_get(t, key, T0);
    if (before == NULL) {
        assert_null(after);
    } else {
        assert_non_null(after);
        assert_int_equal(after->expire_at_ms, saved.expire_at_ms);
        assert_true(after->ratio == saved.ratio);
    }
}

static void test_abusing_app_built_in(void **state)
{
    struct app_throttle *t = *state;
    assert_int_equal(app_throttle_count(t), 1);
    const struct app_throttle_entry *e = app_throttle_get(t, "abusing-app", T0);
    assert_non_null(e);
    assert_int_equal(e->expire_at_ms, T0 + TEN_YRS);
    assert_true(e->ratio == 1.0);
    assert_non_null(app_throttle_get(t, "abusing-app", T0 + TEN_YRS - 1));
    assert_null(app_throttle_get(t, "abusing-app", T0 + TEN_YRS));
    assert_null(app_throttle_get(t, "nobody", T0));
}

static void test_new_entry_defaults(void **state)
{
    struct app_throttle *t = *state;
    /* No TTL: never expires; no ratio: 1. */
    struct app_throttle_entry e = set_ok(t, "gh-ost", false, 0, false, 0, T0);
    assert_int_equal(e.expire_at_ms, 0);
    assert_true(e.ratio == 1.0);
    assert_non_null(app_throttle_get(t, "gh-ost", UINT64_MAX));
    /* TTL 0 is "no TTL". */
    e = set_ok(t, "zero-ttl", true, 0, false, 0, T0);
    assert_int_equal(e.expire_at_ms, 0);
    /* TTL in minutes, ratio as given (0 is a legal ratio). */
    e = set_ok(t, "archiver", true, 30, true, 0.0, T0);
    assert_int_equal(e.expire_at_ms, T0 + 30 * MIN_MS);
    assert_true(e.ratio == 0.0);
    e = set_ok(t, "app/main", true, 1, true, 0.5, T0);
    assert_int_equal(e.expire_at_ms, T0 + MIN_MS);
    assert_true(e.ratio == 0.5);
    assert_int_equal(app_throttle_count(t), 5);
}

static void test_ttl_expires_in_minutes(void **state)
{
    struct app_throttle *t = *state;
    set_ok(t, "app", true, 5, false, 0, T0);
    assert_non_null(app_throttle_get(t, "app", T0 + 5 * MIN_MS - 1));
    /* Expiry at exactly now counts as expired. */
    assert_null(app_throttle_get(t, "app", T0 + 5 * MIN_MS));
    assert_null(app_throttle_get(t, "app", T0 + 6 * MIN_MS));
    /* Still stored until swept. */
    assert_int_equal(app_throttle_count(t), 2);
}

static void test_existing_ttl_only_keeps_ratio(void **state)
{
    struct app_throttle *t = *state;
    set_ok(t, "app", true, 10, true, 0.3, T0);
    struct app_throttle_entry e = set_ok(t, "app", true, 60, false, 0, T0 + MIN_MS);
    assert_int_equal(e.expire_at_ms, T0 + MIN_MS + 60 * MIN_MS);
    assert_true(e.ratio == 0.3);
    /* A TTL can also shorten the throttle. */
    e = set_ok(t, "app", true, 2, false, 0, T0 + 2 * MIN_MS);
    assert_int_equal(e.expire_at_ms, T0 + 4 * MIN_MS);
    assert_true(e.ratio == 0.3);
}

static void test_existing_ratio_only_keeps_expiry(void **state)
{
    struct app_throttle *t = *state;
    set_ok(t, "app", true, 10, false, 0, T0);
    /* docs/semantics.md#app-throttles: the expiry stays (the original made the entry permanent). */
    struct app_throttle_entry e = set_ok(t, "app", false, 0, true, 0.2, T0 + MIN_MS);
    assert_int_equal(e.expire_at_ms, T0 + 10 * MIN_MS);
    assert_true(e.ratio == 0.2);
    assert_null(app_throttle_get(t, "app", T0 + 10 * MIN_MS));
    /* A permanent entry stays permanent. */
    set_ok(t, "perm", false, 0, false, 0, T0);
    e = set_ok(t, "perm", false, 0, true, 0.7, T0 + MIN_MS);
    assert_int_equal(e.expire_at_ms, 0);
    assert_true(e.ratio == 0.7);
}

static void test_existing_both_and_neither(void **state)
{
    struct app_throttle *t = *state;
    set_ok(t, "app", true, 10, true, 0.4, T0);
    struct app_throttle_entry e = set_ok(t, "app", true, 20, true, 0.9, T0 + MIN_MS);
    assert_int_equal(e.expire_at_ms, T0 + 21 * MIN_MS);
    assert_true(e.ratio == 0.9);
    /* Neither given: nothing changes. */
    e = set_ok(t, "app", false, 0, false, 0, T0 + 2 * MIN_MS);
    assert_int_equal(e.expire_at_ms, T0 + 21 * MIN_MS);
    assert_true(e.ratio == 0.9);
    /* An explicit TTL 0 makes the entry permanent, as the original does. */
    e = set_ok(t, "app", true, 0, false, 0, T0 + 3 * MIN_MS);
    assert_int_equal(e.expire_at_ms, 0);
    assert_true(e.ratio == 0.9);
}

static void test_expired_unswept_entry_is_replaced(void **state)
{
    struct app_throttle *t = *state;
    set_ok(t, "app", true, 1, true, 0.3, T0);
    /* Past its expiry the old entry is gone to callers, so a ratio-only set
     * starts a new, permanent entry instead of reviving the old expiry. */
    struct app_throttle_entry e = set_ok(t, "app", false, 0, true, 0.6, T0 + 2 * MIN_MS);
    assert_int_equal(e.expire_at_ms, 0);
    assert_true(e.ratio == 0.6);
    /* And a TTL-only set gets the default ratio, not the stale one. */
    set_ok(t, "other", true, 1, true, 0.3, T0);
    e = set_ok(t, "other", true, 5, false, 0, T0 + MIN_MS);
    assert_int_equal(e.expire_at_ms, T0 + 6 * MIN_MS);
    assert_true(e.ratio == 1.0);
    assert_int_equal(app_throttle_count(t), 3);
}

static void test_result_may_be_null(void **state)
{
    struct app_throttle *t = *state;
    assert_int_equal(app_throttle_set(t, "app", true, 3, true, 1, T0, NULL, NULL), 0);
    assert_int_equal(app_throttle_get(t, "app", T0)->expire_at_ms, T0 + 3 * MIN_MS);
    /* A NULL err is allowed too. */
    assert_int_equal(app_throttle_set(t, "", false, 0, false, 0, T0, NULL, NULL), -EINVAL);
}

static void test_rejects(void **state)
{
    struct app_throttle *t = *state;
    char long_name[APP_THROTTLE_NAME_MAX + 2];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';

    set_ok(t, "app", true, 10, true, 0.5, T0);
    set_fails(t, "app", false, 0, true, 7, "throttle-app: ratio must be in [0..1] range; got 7");
    set_fails(t, "app", false, 0, true, -0.5,
              "throttle-app: ratio must be in [0..1] range; got -0.5");
    set_fails(t, "app", false, 0, true, 1.0000001,
              "throttle-app: ratio must be in [0..1] range; got 1.0000001");
    set_fails(t, "app", false, 0, true, NAN,
              "throttle-app: ratio must be in [0..1] range; got nan");
    set_fails(t, "app", true, -5, false, 0, "throttle-app: negative ttl -5");
    set_fails(t, "app", true, INT64_MAX, false, 0,
              "throttle-app: ttl 9223372036854775807 minutes is too large");
    set_fails(t, "new", true, -1, true, 0.5, "throttle-app: negative ttl -1");
    set_fails(t, "new", false, 0, true, 2, "throttle-app: ratio must be in [0..1] range; got 2");
    set_fails(t, "", false, 0, false, 0, "throttle-app: empty app name");
    set_fails(t, long_name, false, 0, false, 0, "throttle-app: app name longer than 128 bytes");
    /* Exactly the limit is fine. */
    long_name[APP_THROTTLE_NAME_MAX] = '\0';
    set_ok(t, long_name, false, 0, false, 0, T0);
    /* The bounds themselves are legal ratios. */
    set_ok(t, "app", false, 0, true, 1.0, T0);
    set_ok(t, "app", false, 0, true, 0.0, T0);
}

static void test_put_and_remove(void **state)
{
    struct app_throttle *t = *state;
    app_throttle_put(t, "loaded", T0 + 3 * MIN_MS, 0.25);
    const struct app_throttle_entry *e = app_throttle_get(t, "loaded", T0);
    assert_non_null(e);
    assert_int_equal(e->expire_at_ms, T0 + 3 * MIN_MS);
    assert_true(e->ratio == 0.25);
    /* put overwrites both fields. */
    app_throttle_put(t, "loaded", 0, 1);
    e = app_throttle_get(t, "loaded", UINT64_MAX);
    assert_non_null(e);
    assert_int_equal(e->expire_at_ms, 0);
    assert_int_equal(app_throttle_count(t), 2);

    app_throttle_remove(t, "loaded");
    assert_null(app_throttle_get(t, "loaded", T0));
    app_throttle_remove(t, "loaded"); /* unknown: fine */
    app_throttle_remove(t, "never-there");
    app_throttle_remove(t, "abusing-app");
    assert_int_equal(app_throttle_count(t), 0);
}

static void test_sweep(void **state)
{
    struct app_throttle *t = *state;
    set_ok(t, "forever", false, 0, false, 0, T0);
    set_ok(t, "one", true, 1, false, 0, T0);
    set_ok(t, "two", true, 2, false, 0, T0);
    set_ok(t, "one/store", true, 1, true, 0.5, T0);
    assert_int_equal(app_throttle_count(t), 5);

    assert_int_equal(app_throttle_sweep(t, T0), 0);
    assert_int_equal(app_throttle_sweep(t, T0 + MIN_MS - 1), 0);
    assert_int_equal(app_throttle_sweep(t, T0 + MIN_MS), 2);
    assert_int_equal(app_throttle_count(t), 3);
    assert_null(app_throttle_get(t, "one", 0));
    assert_null(app_throttle_get(t, "one/store", 0));
    assert_non_null(app_throttle_get(t, "two", T0));
    assert_int_equal(app_throttle_sweep(t, T0 + 90 * MIN_MS), 1);
    assert_int_equal(app_throttle_sweep(t, T0 + TEN_YRS), 1); /* abusing-app */
    assert_int_equal(app_throttle_count(t), 1);
    assert_non_null(app_throttle_get(t, "forever", UINT64_MAX));
    assert_int_equal(app_throttle_sweep(t, UINT64_MAX), 0);
}

static void test_sweep_many(void **state)
{
    struct app_throttle *t = *state;
    char key[32];
    /* Enough entries to grow the map a few times; every third expires. */
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "app-%d", i);
        set_ok(t, key, i % 3 == 0, 1, false, 0, T0);
    }
    assert_int_equal(app_throttle_sweep(t, T0 + MIN_MS), 1000);
    assert_int_equal(app_throttle_count(t), 2001);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "app-%d", i);
        if (i % 3 == 0)
            assert_null(app_throttle_get(t, key, T0));
        else
            assert_non_null(app_throttle_get(t, key, T0 + MIN_MS));
    }
}

/* MaxThrottledApps: a new key past the limit is refused with a message
 * naming it and changes nothing; existing keys still change, the built-in
 * entry never counts, and a removed or swept entry frees its slot. */
static void test_limit(void **state)
{
    struct app_throttle *t = *state;
    app_throttle_set_max(t, 3);
    set_ok(t, "a", true, 1, false, 0, T0);
    set_ok(t, "b", false, 0, false, 0, T0);
    set_ok(t, "c", false, 0, false, 0, T0);
    assert_int_equal(app_throttle_used(t), 3);
    assert_int_equal(app_throttle_count(t), 4); /* abusing-app */

    struct app_throttle_entry e = {.expire_at_ms = 777};
    struct err err = {0};
    assert_int_equal(app_throttle_set(t, "d", false, 0, false, 0, T0, &e, &err), -ENOSPC);
    assert_string_equal(err.msg, "throttle-app: limit reached: 3 apps are throttled "
                                 "(MaxThrottledApps); unthrottle some or raise the limit");
    assert_int_equal(e.expire_at_ms, 777);
    assert_null(app_throttle_get(t, "d", T0));
    assert_int_equal(app_throttle_count(t), 4);
    assert_int_equal(app_throttle_check_room(t, "d", 0, &err), -ENOSPC);

    /* Existing entries and the built-in one can still change. */
    assert_true(set_ok(t, "b", false, 0, true, 0.5, T0).ratio == 0.5);
    set_ok(t, "abusing-app", true, 60, false, 0, T0);
    /* An expired entry not swept yet holds its slot and can be renewed. */
    assert_null(app_throttle_get(t, "a", T0 + 2 * MIN_MS));
    set_ok(t, "a", true, 10, false, 0, T0 + 2 * MIN_MS);
    /* Removing one makes room for exactly one. */
    app_throttle_remove(t, "c");
    assert_int_equal(app_throttle_check_room(t, "d", 0, &err), 0);
    assert_int_equal(app_throttle_check_room(t, "d", 1, &err), -ENOSPC);
    set_ok(t, "d", false, 0, false, 0, T0);
    assert_int_equal(app_throttle_set(t, "e", false, 0, false, 0, T0, NULL, &err), -ENOSPC);
    /* Loads and replication are not limited here (their callers bound them). */
    app_throttle_put(t, "loaded", 0, 1);
    assert_int_equal(app_throttle_used(t), 4);
    /* A sweep frees the slots of expired entries. */
    app_throttle_set_max(t, 4);
    assert_int_equal(app_throttle_sweep(t, T0 + 20 * MIN_MS), 1); /* "a" */
    set_ok(t, "e", false, 0, false, 0, T0);
    /* 0 restores the default. */
    app_throttle_set_max(t, 0);
    assert_int_equal(t->max, APP_THROTTLE_DEFAULT_MAX);
}

/* A reload replaces the set: unchanged entries stay as they are (an expiry
 * within the slack counts as unchanged), new and changed ones are put,
 * entries not named go, the built-in one stays. */
static void test_sync(void **state)
{
    struct app_throttle *t = *state;
    app_throttle_put(t, "keep", T0 + 10 * MIN_MS, 1);
    app_throttle_put(t, "gone", 0, 1);
    app_throttle_put(t, "ratio", 0, 0.5);

    app_throttle_sync_begin(t);
    assert_false(app_throttle_sync_put(t, "keep", T0 + 10 * MIN_MS + 900, 1, 1500));
    assert_true(app_throttle_sync_put(t, "ratio", 0, 0.25, 1500));
    assert_true(app_throttle_sync_put(t, "new", T0 + MIN_MS, 1, 1500));
    assert_true(app_throttle_sync_end(t));
    assert_int_equal(app_throttle_get(t, "keep", T0)->expire_at_ms, T0 + 10 * MIN_MS);
    assert_true(app_throttle_get(t, "ratio", T0)->ratio == 0.25);
    assert_non_null(app_throttle_get(t, "new", T0));
    assert_null(app_throttle_get(t, "gone", T0));
    assert_non_null(app_throttle_get(t, "abusing-app", T0));
    assert_int_equal(app_throttle_count(t), 4);

    /* The same rows again change nothing; an expiry past the slack, or
     * "never" against a time, is a change. */
    app_throttle_sync_begin(t);
    assert_false(app_throttle_sync_put(t, "keep", T0 + 10 * MIN_MS - 1500, 1, 1500));
    assert_false(app_throttle_sync_put(t, "ratio", 0, 0.25, 1500));
    assert_false(app_throttle_sync_put(t, "new", T0 + MIN_MS, 1, 1500));
    assert_false(app_throttle_sync_end(t));
    app_throttle_sync_begin(t);
    assert_true(app_throttle_sync_put(t, "keep", T0 + 10 * MIN_MS + 1501, 1, 1500));
    assert_true(app_throttle_sync_put(t, "ratio", T0 + MIN_MS, 0.25, 1500));
    assert_true(app_throttle_sync_put(t, "new", 0, 1, 1500));
    assert_false(app_throttle_sync_end(t));
    /* An empty reload leaves only the built-in entry. */
    app_throttle_sync_begin(t);
    assert_true(app_throttle_sync_end(t));
    assert_int_equal(app_throttle_count(t), 1);
}

static void test_next_in_key_order(void **state)
{
    struct app_throttle *t = *state;
    const char *keys[] = {"zeta", "alpha", "mid/store", "beta"};
    for (size_t i = 0; i < 4; i++)
        set_ok(t, keys[i], false, 0, false, 0, T0);
    const char *want[] = {"abusing-app", "alpha", "beta", "mid/store", "zeta"};
    const char *key;
    const struct app_throttle_entry *e;
    size_t n = 0;
    for (size_t it = 0; app_throttle_next(t, &it, &key, &e); n++) {
        assert_true(n < 5);
        assert_string_equal(key, want[n]);
        assert_ptr_equal(e, app_throttle_get(t, key, T0));
    }
    assert_int_equal(n, 5);
    /* clear keeps the limit and the built-in entry. */
    app_throttle_set_max(t, 2);
    app_throttle_clear(t, T0);
    assert_int_equal(app_throttle_count(t), 1);
    assert_int_equal(t->max, 2);
}

int main(void)
{
#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
            TEST(test_abusing_app_built_in),
            TEST(test_new_entry_defaults),
            TEST(test_ttl_expires_in_minutes),
            TEST(test_existing_ttl_only_keeps_ratio),
            TEST(test_existing_ratio_only_keeps_expiry),
            TEST(test_existing_both_and_neither),
            TEST(test_expired_unswept_entry_is_replaced),
            TEST(test_result_may_be_null),
            TEST(test_rejects),
            TEST(test_put_and_remove),
            TEST(test_sweep),
            TEST(test_sweep_many),
            TEST(test_limit),
            TEST(test_sync),
            TEST(test_next_in_key_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
