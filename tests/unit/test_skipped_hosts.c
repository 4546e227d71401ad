/* SPDX-License-Identifier: MIT */
/* Unit tests for throttler/skipped_hosts: default and explicit TTLs in
 * minutes, re-skipping, rejected input, exact host matching and sweeping.
 * Time is driven through now_ms; nothing sleeps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "throttler/skipped_hosts.h"

#define MIN_MS (60ull * 1000)
#define T0     1700000000000ull

static int setup(void **state)
{
    static struct skipped_hosts s;
    skipped_hosts_init(&s);
    *state = &s;
    return 0;
}

static int teardown(void **state)
{
    skipped_hosts_deinit(*state);
    return 0;
}

static uint64_t add_ok(struct skipped_hosts *s, const char *host, bool has_ttl, int64_t ttl_min,
                       uint64_t now_ms)
{
    uint64_t at = 1;
    struct err err = {0};
    int rc = skipped_hosts_add(s, host, has_ttl, ttl_min, now_ms, &at, &err);
    if (rc != 0)
        fail_msg("skip %s: %d %s", host, rc, err.msg);
    assert_true(skipped_hosts_is_skipped(s, host, now_ms));
    return at;
}

static void add_fails(struct skipped_hosts *s, const char *host, bool has_ttl, int64_t ttl_min,
                      const char *msg)
{
    uint64_t at = 1;
    struct err err = {0};
    size_t count = skipped_hosts_count(s);
    bool was_skipped = skipped_hosts_is_skipped(s, host, T0);
    assert_int_equal(skipped_hosts_add(s, host, has_ttl, ttl_min, T0, &at, &err), -EINVAL);
    assert_int_equal(err.code, -EINVAL);
    assert_string_equal(err.msg, msg);
    assert_int_equal(at, 1);
    assert_int_equal(skipped_hosts_count(s), count);
    assert_int_equal(skipped_hosts_is_skipped(s, host, T0), was_skipped);
}

static void test_empty(void **state)
{
    struct skipped_hosts *s = *state;
    assert_int_equal(skipped_hosts_count(s), 0);
    assert_false(skipped_hosts_is_skipped(s, "db-1", T0));
    assert_int_equal(skipped_hosts_sweep(s, T0), 0);
    skipped_hosts_remove(s, "db-1");
}

static void test_default_ttl_is_60_minutes(void **state)
{
    struct skipped_hosts *s = *state;
    assert_int_equal(add_ok(s, "db-1", false, 0, T0), T0 + 60 * MIN_MS);
    /* TTL 0 means the default too. */
    assert_int_equal(add_ok(s, "db-2", true, 0, T0), T0 + 60 * MIN_MS);
    assert_true(skipped_hosts_is_skipped(s, "db-1", T0 + 60 * MIN_MS - 1));
    assert_false(skipped_hosts_is_skipped(s, "db-1", T0 + 60 * MIN_MS));
    assert_int_equal(skipped_hosts_count(s), 2);
}

static void test_explicit_ttl(void **state)
{
    struct skipped_hosts *s = *state;
    assert_int_equal(add_ok(s, "db-1", true, 5, T0), T0 + 5 * MIN_MS);
    assert_true(skipped_hosts_is_skipped(s, "db-1", T0 + 5 * MIN_MS - 1));
    assert_false(skipped_hosts_is_skipped(s, "db-1", T0 + 5 * MIN_MS));
    assert_int_equal(add_ok(s, "db-2", true, 1440, T0), T0 + 1440 * MIN_MS);
}

static void test_reskip_updates_ttl(void **state)
{
    struct skipped_hosts *s = *state;
    add_ok(s, "db-1", true, 5, T0);
    /* Longer. */
    assert_int_equal(add_ok(s, "db-1", true, 30, T0 + MIN_MS), T0 + 31 * MIN_MS);
    assert_true(skipped_hosts_is_skipped(s, "db-1", T0 + 30 * MIN_MS));
    /* Shorter. */
    assert_int_equal(add_ok(s, "db-1", true, 1, T0 + 2 * MIN_MS), T0 + 3 * MIN_MS);
    assert_false(skipped_hosts_is_skipped(s, "db-1", T0 + 3 * MIN_MS));
    /* Back to the default. */
    assert_int_equal(add_ok(s, "db-1", false, 0, T0 + 4 * MIN_MS), T0 + 64 * MIN_MS);
    assert_int_equal(skipped_hosts_count(s), 1);
    /* Re-skipping after expiry, before a sweep, works too. */
    assert_int_equal(add_ok(s, "db-1", true, 2, T0 + 100 * MIN_MS), T0 + 102 * MIN_MS);
    assert_int_equal(skipped_hosts_count(s), 1);
}

static void test_exact_host_match(void **state)
{
    struct skipped_hosts *s = *state;
    add_ok(s, "db-1.example.com", false, 0, T0);
    assert_true(skipped_hosts_is_skipped(s, "db-1.example.com", T0));
    assert_false(skipped_hosts_is_skipped(s, "db-1", T0));
    assert_false(skipped_hosts_is_skipped(s, "db-1.example.co", T0));
    assert_false(skipped_hosts_is_skipped(s, "db-1.example.com.", T0));
    assert_false(skipped_hosts_is_skipped(s, "DB-1.example.com", T0));
    assert_false(skipped_hosts_is_skipped(s, "db-1.example.com:3306", T0));
    add_ok(s, "2001:db8::1", false, 0, T0);
    assert_true(skipped_hosts_is_skipped(s, "2001:db8::1", T0));
    assert_false(skipped_hosts_is_skipped(s, "2001:db8::", T0));
}

static void test_rejects(void **state)
{
    struct skipped_hosts *s = *state;
    char long_name[SKIPPED_HOST_NAME_MAX + 2];
    memset(long_name, 'h', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';

    add_fails(s, "db-1", true, -5, "skip-host: negative ttl -5");
    add_fails(s, "db-1", true, INT64_MAX,
              "skip-host: ttl 9223372036854775807 minutes is too large");
    add_fails(s, "", false, 0, "skip-host: empty host name");
    add_fails(s, long_name, false, 0, "skip-host: host name longer than 128 bytes");
    assert_int_equal(skipped_hosts_count(s), 0);

    /* A bad re-skip leaves the existing skip as it was. */
    uint64_t at = add_ok(s, "db-1", true, 10, T0);
    add_fails(s, "db-1", true, -1, "skip-host: negative ttl -1");
    assert_true(skipped_hosts_is_skipped(s, "db-1", at - 1));
    assert_false(skipped_hosts_is_skipped(s, "db-1", at));

    long_name[SKIPPED_HOST_NAME_MAX] = '\0';
    add_ok(s, long_name, false, 0, T0);
    /* NULL out-pointers are allowed. */
    assert_int_equal(skipped_hosts_add(s, "db-2", false, 0, T0, NULL, NULL), 0);
    assert_int_equal(skipped_hosts_add(s, "", false, 0, T0, NULL, NULL), -EINVAL);
}

static void test_put_and_remove(void **state)
{
    struct skipped_hosts *s = *state;
    skipped_hosts_put(s, "db-1", T0 + 7 * MIN_MS);
    assert_true(skipped_hosts_is_skipped(s, "db-1", T0));
    assert_false(skipped_hosts_is_skipped(s, "db-1", T0 + 7 * MIN_MS));
    /* put replaces the expiry. */
    skipped_hosts_put(s, "db-1", T0 + 9 * MIN_MS);
    assert_true(skipped_hosts_is_skipped(s, "db-1", T0 + 8 * MIN_MS));
    assert_int_equal(skipped_hosts_count(s), 1);
    /* An already past expiry (a backend row since recovered) is not a skip. */
    skipped_hosts_put(s, "db-2", T0 - 1);
    assert_false(skipped_hosts_is_skipped(s, "db-2", T0));

    skipped_hosts_remove(s, "db-1");
    assert_false(skipped_hosts_is_skipped(s, "db-1", T0));
    skipped_hosts_remove(s, "db-1"); /* unknown: fine */
    skipped_hosts_remove(s, "db-2");
    assert_int_equal(skipped_hosts_count(s), 0);
}

static void test_sweep(void **state)
{
    struct skipped_hosts *s = *state;
    add_ok(s, "a", true, 1, T0);
    add_ok(s, "b", true, 2, T0);
    add_ok(s, "c", false, 0, T0);
    skipped_hosts_put(s, "old", T0 - MIN_MS);
    assert_int_equal(skipped_hosts_sweep(s, T0), 1);
    assert_int_equal(skipped_hosts_sweep(s, T0 + MIN_MS - 1), 0);
    assert_int_equal(skipped_hosts_sweep(s, T0 + MIN_MS), 1);
    assert_int_equal(skipped_hosts_count(s), 2);
    assert_true(skipped_hosts_is_skipped(s, "b", T0 + MIN_MS));
    assert_int_equal(skipped_hosts_sweep(s, T0 + 60 * MIN_MS), 2);
    assert_int_equal(skipped_hosts_count(s), 0);
    assert_int_equal(skipped_hosts_sweep(s, UINT64_MAX), 0);
}

static void test_sweep_many(void **state)
{
    struct skipped_hosts *s = *state;
    char host[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(host, sizeof(host), "db-%d", i);
        add_ok(s, host, true, i % 2 ? 1 : 10, T0);
    }
    assert_int_equal(skipped_hosts_sweep(s, T0 + MIN_MS), 1000);
    for (int i = 0; i < 2000; i++) {
        snprintf(host, sizeof(host), "db-%d", i);
        assert_int_equal(skipped_hosts_is_skipped(s, host, T0), i % 2 == 0);
    }
}

/* MaxSkippedHosts: a new host past the limit is refused with a message
 * naming it and changes nothing; a re-skip still works. */
static void test_limit(void **state)
{
    struct skipped_hosts *s = *state;
    skipped_hosts_set_max(s, 2);
    add_ok(s, "db-1", false, 0, T0);
    add_ok(s, "db-2", true, 1, T0);
    uint64_t at = 1;
    struct err err = {0};
    assert_int_equal(skipped_hosts_add(s, "db-3", false, 0, T0, &at, &err), -ENOSPC);
    assert_string_equal(err.msg, "skip-host: limit reached: 2 hosts are skipped "
                                 "(MaxSkippedHosts); recover some or raise the limit");
    assert_int_equal(at, 1);
    assert_false(skipped_hosts_is_skipped(s, "db-3", T0));
    assert_int_equal(skipped_hosts_count(s), 2);
    assert_int_equal(add_ok(s, "db-1", true, 5, T0), T0 + 5 * MIN_MS);
    assert_int_equal(skipped_hosts_check_room(s, "db-2", 5, &err), 0);
    skipped_hosts_remove(s, "db-1");
    assert_int_equal(skipped_hosts_check_room(s, "db-3", 0, &err), 0);
    assert_int_equal(skipped_hosts_check_room(s, "db-3", 1, &err), -ENOSPC);
    /* A sweep frees the slot of an expired skip. */
    add_ok(s, "db-3", false, 0, T0);
    assert_int_equal(skipped_hosts_sweep(s, T0 + 2 * MIN_MS), 1);
    add_ok(s, "db-4", false, 0, T0 + 2 * MIN_MS);
    skipped_hosts_clear(s);
    assert_int_equal(skipped_hosts_count(s), 0);
    assert_int_equal(s->max, 2);
}

static void test_sync_and_order(void **state)
{
    struct skipped_hosts *s = *state;
    skipped_hosts_put(s, "db-b", T0 + MIN_MS);
    skipped_hosts_put(s, "db-gone", T0 + MIN_MS);
    skipped_hosts_sync_begin(s);
    assert_false(skipped_hosts_sync_put(s, "db-b", T0 + MIN_MS - 1000, 1500));
    assert_true(skipped_hosts_sync_put(s, "db-a", T0 + MIN_MS, 1500));
    assert_true(skipped_hosts_sync_end(s));
    const char *want[] = {"db-a", "db-b"};
    const char *host;
    uint64_t at;
    size_t n = 0;
    for (size_t it = 0; skipped_hosts_next(s, &it, &host, &at); n++) {
        assert_true(n < 2);
        assert_string_equal(host, want[n]);
        assert_int_equal(at, T0 + MIN_MS);
    }
    assert_int_equal(n, 2);
    skipped_hosts_sync_begin(s);
    assert_true(skipped_hosts_sync_put(s, "db-a", T0 + 3 * MIN_MS, 1500));
    assert_true(skipped_hosts_sync_end(s));
    assert_int_equal(skipped_hosts_count(s), 1);
}

int main(void)
{
#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
            TEST(test_empty),
            TEST(test_default_ttl_is_60_minutes),
            TEST(test_explicit_ttl),
            TEST(test_reskip_updates_ttl),
            TEST(test_exact_host_match),
            TEST(test_rejects),
            TEST(test_put_and_remove),
            TEST(test_sweep),
            TEST(test_sweep_many),
            TEST(test_limit),
            TEST(test_sync_and_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
