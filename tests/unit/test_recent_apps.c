/* SPDX-License-Identifier: MIT */
/* Unit tests for throttler/recent_apps: "app/client" keys, refreshed on each
 * check, kept 24 hours, then swept; at most a cap of pairs, the least
 * recently seen making room; printable keys. Time is driven through now_ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "throttler/recent_apps.h"

#define T0 1700000000000ull

static int setup(void **state)
{
    static struct recent_apps r;
    recent_apps_init(&r, 10000);
    *state = &r;
    return 0;
}

static int teardown(void **state)
{
    recent_apps_deinit(*state);
    return 0;
}

/* The check time stored under @key, or 0 when absent. */
static uint64_t checked_at(const struct recent_apps *r, const char *key)
{
    return recent_apps_get(r, key);
}

static void test_empty(void **state)
{
    struct recent_apps *r = *state;
    assert_int_equal(recent_apps_count(r), 0);
    assert_int_equal(recent_apps_sweep(r, T0), 0);
}

static void test_record_keys(void **state)
{
    struct recent_apps *r = *state;
    recent_apps_record(r, "gh-ost", "10.0.0.7", T0);
    recent_apps_record(r, "gh-ost", "10.0.0.8", T0 + 1);
    recent_apps_record(r, "freno", "local", T0 + 2);
    recent_apps_record(r, "freno-share-domain", "local", T0 + 3);
    recent_apps_record(r, "archiver", "2001:db8::1", T0 + 4);
    assert_int_equal(recent_apps_count(r), 5);
    assert_int_equal(checked_at(r, "gh-ost/10.0.0.7"), T0);
    assert_int_equal(checked_at(r, "gh-ost/10.0.0.8"), T0 + 1);
    assert_int_equal(checked_at(r, "freno/local"), T0 + 2);
    assert_int_equal(checked_at(r, "freno-share-domain/local"), T0 + 3);
    assert_int_equal(checked_at(r, "archiver/2001:db8::1"), T0 + 4);
    assert_int_equal(checked_at(r, "gh-ost"), 0);
}

static void test_record_refreshes(void **state)
{
    struct recent_apps *r = *state;
    recent_apps_record(r, "app", "c", T0);
    recent_apps_record(r, "app", "c", T0 + 5000);
    assert_int_equal(recent_apps_count(r), 1);
    assert_int_equal(checked_at(r, "app/c"), T0 + 5000);
    /* A refreshed entry outlives the first check's 24 hours. */
    assert_int_equal(recent_apps_sweep(r, T0 + RECENT_APPS_KEEP_MS + 1), 0);
    assert_int_equal(recent_apps_sweep(r, T0 + 5000 + RECENT_APPS_KEEP_MS + 1), 1);
}

static void test_long_names(void **state)
{
    struct recent_apps *r = *state;
    char app[600];
    char key[RECENT_APPS_KEY_MAX + 1];
    memset(app, 'a', sizeof(app) - 1);
    app[sizeof(app) - 1] = '\0';
    recent_apps_record(r, app, "client", T0);
    /* Cut to the longest key kept. */
    memset(key, 'a', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_int_equal(checked_at(r, key), T0);
    recent_apps_record(r, "short", "client", T0);
    assert_int_equal(checked_at(r, "short/client"), T0);
}

/* Invalid UTF-8 and control characters are stored as '?': the key is always
 * printable, and names that differ only there are one entry. */
static void test_printable_keys(void **state)
{
    struct recent_apps *r = *state;
    recent_apps_record(r, "bad\xff\xfe", "c", T0);
    recent_apps_record(r, "bad\x01\n", "c", T0 + 1);
    recent_apps_record(r, "caf\xc3\xa9", "10.0.0.1\r", T0 + 2);
    assert_int_equal(recent_apps_count(r), 2);
    assert_int_equal(checked_at(r, "bad?"
                                   "?/c"),
                     T0 + 1);
    assert_int_equal(checked_at(r, "caf\xc3\xa9/10.0.0.1?"), T0 + 2);
}

/* Past the cap, a new pair replaces the least recently seen one; a pair seen
 * again is young again. */
static void test_cap_evicts_least_recently_seen(void **state)
{
    (void)state;
    struct recent_apps r;
    recent_apps_init(&r, 3);
    recent_apps_record(&r, "a", "x", T0);
    recent_apps_record(&r, "b", "x", T0 + 1);
    recent_apps_record(&r, "c", "x", T0 + 2);
    recent_apps_record(&r, "a", "x", T0 + 3); /* a is now the most recent */
    recent_apps_record(&r, "d", "x", T0 + 4); /* b goes */
    assert_int_equal(recent_apps_count(&r), 3);
    assert_int_equal(recent_apps_evicted(&r), 1);
    assert_int_equal(checked_at(&r, "b/x"), 0);
    assert_int_equal(checked_at(&r, "a/x"), T0 + 3);
    assert_int_equal(checked_at(&r, "c/x"), T0 + 2);
    assert_int_equal(checked_at(&r, "d/x"), T0 + 4);
    /* A flood of new pairs leaves the cap's worth, the newest. */
    char app[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(app, sizeof(app), "flood-%d", i);
        recent_apps_record(&r, app, "10.9.8.7", T0 + 10 + (uint64_t)i);
    }
    assert_int_equal(recent_apps_count(&r), 3);
    assert_int_equal(recent_apps_evicted(&r), 100001);
    assert_int_equal(checked_at(&r, "flood-99999/10.9.8.7"), T0 + 10 + 99999);
    assert_int_equal(checked_at(&r, "flood-99997/10.9.8.7"), T0 + 10 + 99997);
    assert_int_equal(checked_at(&r, "flood-99996/10.9.8.7"), 0);
    /* An app that checks after the flood is listed. */
    recent_apps_record(&r, "after", "10.0.0.1", T0 + 200000);
    assert_int_equal(checked_at(&r, "after/10.0.0.1"), T0 + 200000);
    recent_apps_deinit(&r);
}

static void test_cap_zero_records_nothing(void **state)
{
    (void)state;
    struct recent_apps r;
    recent_apps_init(&r, 0);
    recent_apps_record(&r, "a", "x", T0);
    assert_int_equal(recent_apps_count(&r), 0);
    assert_int_equal(recent_apps_sweep(&r, T0 + RECENT_APPS_KEEP_MS * 2), 0);
    recent_apps_deinit(&r);
}

static void test_sweep_after_24_hours(void **state)
{
    struct recent_apps *r = *state;
    recent_apps_record(r, "a", "x", T0);
    recent_apps_record(r, "b", "x", T0 + 60000);
    /* Exactly 24 hours old is still kept; a millisecond more is not. */
    assert_int_equal(recent_apps_sweep(r, T0 + RECENT_APPS_KEEP_MS), 0);
    assert_int_equal(recent_apps_sweep(r, T0 + RECENT_APPS_KEEP_MS + 1), 1);
    assert_int_equal(checked_at(r, "a/x"), 0);
    assert_int_equal(checked_at(r, "b/x"), T0 + 60000);
    assert_int_equal(recent_apps_sweep(r, T0 + 60000 + RECENT_APPS_KEEP_MS + 1), 1);
    assert_int_equal(recent_apps_count(r), 0);
}

static void test_sweep_ignores_future(void **state)
{
    struct recent_apps *r = *state;
    /* Recorded after a clock step forward, swept after a step back. */
    recent_apps_record(r, "a", "x", T0 + RECENT_APPS_KEEP_MS * 3);
    assert_int_equal(recent_apps_sweep(r, T0), 0);
    assert_int_equal(recent_apps_count(r), 1);
}

static void test_sweep_many(void **state)
{
    struct recent_apps *r = *state;
    char client[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(client, sizeof(client), "10.0.%d.%d", i / 256, i % 256);
        recent_apps_record(r, "app", client, i % 2 ? T0 : T0 + 3600000);
    }
    assert_int_equal(recent_apps_sweep(r, T0 + RECENT_APPS_KEEP_MS + 1), 1500);
    assert_int_equal(recent_apps_count(r), 1500);
    assert_int_equal(recent_apps_sweep(r, T0 + 3600000 + RECENT_APPS_KEEP_MS + 1), 1500);
    assert_int_equal(recent_apps_count(r), 0);
}

int main(void)
{
#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
            TEST(test_empty),
            TEST(test_record_keys),
            TEST(test_record_refreshes),
            TEST(test_long_names),
            TEST(test_sweep_after_24_hours),
            TEST(test_sweep_ignores_future),
            TEST(test_sweep_many),
            TEST(test_printable_keys),
            cmocka_unit_test(test_cap_evicts_least_recently_seen),
            cmocka_unit_test(test_cap_zero_records_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
