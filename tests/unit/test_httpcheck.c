/* SPDX-License-Identifier: MIT */
/* Unit tests for inventory/httpcheck: the URL checked for a host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "inventory/httpcheck.h"

static void expect_url(const char *host, int64_t port, const char *path, const char *want)
{
    char *u = httpcheck_url(host, port, path);
    assert_string_equal(u, want);
    free(u);
}

static void test_url(void **state)
{
    (void)state;
    expect_url("db-1", 1234, "health", "http://db-1:1234/health");
    /* A leading slash is not doubled; an empty or missing path is "/". */
    expect_url("db-1", 1234, "/health/x", "http://db-1:1234/health/x");
    expect_url("db-1", 9, "", "http://db-1:9/");
    expect_url("db-1", 9, NULL, "http://db-1:9/");
    /* IPv6 hosts get brackets. */
    expect_url("::1", 80, "", "http://[::1]:80/");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
