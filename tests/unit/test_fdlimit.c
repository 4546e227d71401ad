/* SPDX-License-Identifier: MIT */
/* Unit tests for core/fdlimit: raising the soft open-files limit to the hard
 * one, and the descriptor arithmetic that sizes the HTTP connection limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "core/fdlimit.h"

static void test_reserve(void **state)
{
    (void)state;
    assert_int_equal(fdlimit_reserve(128, 2, 0), 128);
    assert_int_equal(fdlimit_reserve(128, 2, 3), 134);
    assert_int_equal(fdlimit_reserve(0, 0, 1000), 0);
    /* Absurd host counts saturate instead of wrapping round to a small reserve. */
    assert_true(fdlimit_reserve(128, 2, UINT64_MAX / 2) == UINT64_MAX);
    assert_true(fdlimit_reserve(UINT64_MAX - 1, 2, 1) == UINT64_MAX);
}

static void test_http_connections(void **state)
{
    (void)state;
    /* The common soft limit: what is left after the reserve. */
    assert_int_equal(fdlimit_http_connections(1024, 137, 4096), 887);
    /* A large limit: the configured maximum. */
    assert_int_equal(fdlimit_http_connections(524288, 137, 4096), 4096);
    assert_int_equal(fdlimit_http_connections(UINT64_MAX, 137, 4096), 4096);
    /* One descriptor of room is one connection; none is none. */
    assert_int_equal(fdlimit_http_connections(138, 137, 4096), 1);
    assert_int_equal(fdlimit_http_connections(137, 137, 4096), 0);
    assert_int_equal(fdlimit_http_connections(64, 137, 4096), 0);
    assert_int_equal(fdlimit_http_connections(1024, UINT64_MAX, 4096), 0);
    /* Probed hosts take their share from HTTP. */
    assert_int_equal(fdlimit_http_connections(1024, fdlimit_reserve(137, 2, 400), 4096), 87);
}

static void test_raise(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max < 64)
        skip();
    rlim_t hard = rl.rlim_max;
    rl.rlim_cur = hard / 2;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);

    struct fdlimit_nofile n = {0};
    struct err err = {0};
    assert_int_equal(fdlimit_raise(&n, &err), 0);
    uint64_t want = hard > FDLIMIT_RAISE_CAP ? FDLIMIT_RAISE_CAP : hard;
    assert_true(n.soft_before == hard / 2);
    assert_true(n.hard == hard);
    assert_true(n.soft == want);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(rl.rlim_cur == want);

    /* Already there: nothing changes. */
    assert_int_equal(fdlimit_raise(&n, &err), 0);
    assert_true(n.soft_before == want && n.soft == want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_reserve),
            cmocka_unit_test(test_http_connections),
            cmocka_unit_test(test_raise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
