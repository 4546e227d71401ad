/* SPDX-License-Identifier: MIT */
/* Request target and body framing checks (http/target.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/target.h"

static void test_targets(void **state)
{
    (void)state;
    assert_int_equal(http_target_check("/check/app/mysql/main"), HTTP_TARGET_OK);
    assert_int_equal(http_target_check("/check/caf%C3%A9/mysql/main?p=low"), HTTP_TARGET_OK);
    assert_int_equal(http_target_check("/throttle-app/a%2Fb?store_name=x%0a"), HTTP_TARGET_OK);
    assert_int_equal(http_target_check("/throttle-app/a%00junk"), HTTP_TARGET_NUL);
    assert_int_equal(http_target_check("/throttle-app/a?store_name=s%00x"), HTTP_TARGET_NUL);
    assert_int_equal(http_target_check("/throttle-app/a%zz"), HTTP_TARGET_BAD_ESCAPE);
    assert_int_equal(http_target_check("/throttle-app/a%"), HTTP_TARGET_BAD_ESCAPE);
    assert_int_equal(http_target_check("/throttle-app/a%4"), HTTP_TARGET_BAD_ESCAPE);
    assert_int_equal(http_target_check("/x?a=%g1"), HTTP_TARGET_BAD_ESCAPE);
    /* '&' in the path is not an argument separator. */
    char path[400];
    memset(path, '&', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(http_target_check(path), HTTP_TARGET_OK);
}

static void test_argument_count(void **state)
{
    (void)state;
    char q[1024];
    size_t n = (size_t)snprintf(q, sizeof(q), "/lb-check?a=b");
    for (int i = 1; i < HTTP_TARGET_ARGS_MAX; i++)
        n += (size_t)snprintf(q + n, sizeof(q) - n, "&a=b");
    assert_int_equal(http_target_check(q), HTTP_TARGET_OK);
    snprintf(q + n, sizeof(q) - n, "&a=b");
    assert_int_equal(http_target_check(q), HTTP_TARGET_TOO_MANY_ARGS);
}

static int verdict(const char *const *headers, const char **why)
{
    struct http_framing f = {0};
    for (size_t i = 0; headers[i] != NULL; i += 2)
        http_framing_add(&f, headers[i], headers[i + 1]);
    return http_framing_verdict(&f, why);
}

static void test_framing(void **state)
{
    (void)state;
    const char *why = NULL;
    const char *none[] = {"Host", "x", NULL};
    assert_int_equal(verdict(none, &why), 0);
    const char *small[] = {"Content-Length", "3", NULL};
    assert_int_equal(verdict(small, &why), 0);
    const char *limit[] = {"content-length", "65536", NULL};
    assert_int_equal(verdict(limit, &why), 0);
    const char *big[] = {"Content-Length", "65537", NULL};
    assert_int_equal(verdict(big, &why), 413);
    const char *huge[] = {"Content-Length", "18446744073709551615", NULL};
    assert_int_equal(verdict(huge, &why), 413);
    const char *hex[] = {"Content-Length", "0x3", NULL};
    assert_int_equal(verdict(hex, &why), 413);
    const char *twice[] = {"Content-Length", "0", "Content-Length", "44", NULL};
    assert_int_equal(verdict(twice, &why), 400);
    assert_string_equal(why, "more than one Content-Length");
    const char *chunked[] = {"Transfer-Encoding", "Chunked", NULL};
    assert_int_equal(verdict(chunked, &why), 0);
    const char *gzip[] = {"Transfer-Encoding", "gzip", NULL};
    assert_int_equal(verdict(gzip, &why), 501);
    const char *list[] = {"Transfer-Encoding", "chunked, chunked", NULL};
    assert_int_equal(verdict(list, &why), 501);
    const char *both[] = {"Transfer-Encoding", "chunked", "Content-Length", "3", NULL};
    assert_int_equal(verdict(both, &why), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_targets),
            cmocka_unit_test(test_argument_count),
            cmocka_unit_test(test_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
