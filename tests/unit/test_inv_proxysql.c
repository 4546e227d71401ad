/* SPDX-License-Identifier: MIT */
/* Unit tests for inventory/inv_proxysql's row rules, fed rows shaped like
 * ProxySQL's stats_mysql_connection_pool: which statuses are probed, the
 * ignore list and its TTL, and malformed rows. Time is passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/strmap.h"
#include "inv_fixture.h"
#include "inventory/inv_proxysql.h"

#define T0  1700000000000ull
#define TTL 10000ull

static void apply(struct strmap *ign, const char *const *cells, size_t nrows, uint64_t now,
                  struct inv_hosts *out)
{
    inv_proxysql_apply_rows(ign, cells, nrows, 3, now, TTL, out);
}

static void test_statuses(void **state)
{
    (void)state;
    struct strmap ign;
    strmap_init(&ign);
    const char *rows[] = {
            "replica1", "3306",     "OFFLINE_SOFT", "replica2", "3306",
            "ONLINE",   "replica3", "3306",         "SHUNNED",  "replica4",
            "3306",     "ONLINE",   "replica5",     "3306",     "SHUNNED_REPLICATION_LAG",
            "replica6", "3306",     "OFFLINE_HARD",
    };
    struct inv_hosts l = {0};
    apply(&ign, rows, 6, T0, &l);
    const char *want[] = {"replica2:3306", "replica4:3306", "replica5:3306"};
    inv_expect_hosts(&l, want, 3);
    inv_hosts_deinit(&l);
    assert_int_equal(ign.len, 3);

    /* Back ONLINE within the TTL: still ignored; after it: probed again. */
    const char *online[] = {"replica1", "3306", "ONLINE", "replica3", "3306", "ONLINE"};
    apply(&ign, online, 2, T0 + TTL - 1, &l);
    assert_int_equal(l.len, 0);
    apply(&ign, online, 2, T0 + TTL, &l);
    const char *want2[] = {"replica1:3306", "replica3:3306"};
    inv_expect_hosts(&l, want2, 2);
    inv_hosts_deinit(&l);

    /* A bad status seen again extends the TTL. */
    const char *shunned[] = {"replica6", "3306", "SHUNNED"};
    apply(&ign, shunned, 1, T0 + 5000, &l);
    const char *online6[] = {"replica6", "3306", "ONLINE"};
    apply(&ign, online6, 1, T0 + TTL + 1000, &l);
    assert_int_equal(l.len, 0);
    apply(&ign, online6, 1, T0 + 5000 + TTL, &l);
    assert_int_equal(l.len, 1);
    inv_hosts_deinit(&l);
    inv_proxysql_ignore_deinit(&ign);
}

static void test_lag_clears_ignore(void **state)
{
    (void)state;
    struct strmap ign;
    strmap_init(&ign);
    struct inv_hosts l = {0};
    const char *shunned[] = {"r1", "3306", "SHUNNED"};
    apply(&ign, shunned, 1, T0, &l);
    assert_int_equal(ign.len, 1);
    /* Lagging (probed), then ONLINE within the old TTL: probed, not ignored. */
    const char *lag[] = {"r1", "3306", "SHUNNED_REPLICATION_LAG"};
    apply(&ign, lag, 1, T0 + 1000, &l);
    assert_int_equal(l.len, 1);
    assert_int_equal(ign.len, 0);
    inv_hosts_deinit(&l);
    const char *online[] = {"r1", "3306", "ONLINE"};
    apply(&ign, online, 1, T0 + 2000, &l);
    assert_int_equal(l.len, 1);
    inv_hosts_deinit(&l);
    inv_proxysql_ignore_deinit(&ign);
}

static void test_bad_rows(void **state)
{
    (void)state;
    struct strmap ign;
    strmap_init(&ign);
    struct inv_hosts l = {0};
    const char *rows[] = {
            NULL, "3306", "ONLINE", "",    "3306",  "ONLINE", "a", NULL,   "ONLINE",
            "b",  "0",    "ONLINE", "c",   "65536", "ONLINE", "d", "x",    "ONLINE",
            "e",  "3306", NULL,     "::1", "13307", "ONLINE", "f", "3307", "online",
    };
    apply(&ign, rows, 9, T0, &l);
    const char *want[] = {"::1:13307"};
    inv_expect_hosts(&l, want, 1);
    inv_hosts_deinit(&l);
    /* "online" is not a known status: ignored for the TTL, keyed with brackets for IPv6. */
    assert_non_null(strmap_get(&ign, "f:3307"));
    const char *v6[] = {"::1", "13307", "SHUNNED"};
    apply(&ign, v6, 1, T0, &l);
    assert_non_null(strmap_get(&ign, "[::1]:13307"));
    /* Fewer than three columns: nothing. */
    inv_proxysql_apply_rows(&ign, rows, 1, 2, T0, TTL, &l);
    assert_int_equal(l.len, 0);
    inv_proxysql_ignore_deinit(&ign);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_statuses),
            cmocka_unit_test(test_lag_clears_ignore),
            cmocka_unit_test(test_bad_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
