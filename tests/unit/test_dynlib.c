/* SPDX-License-Identifier: MIT */
/* core/dynlib against a real library (zlib, which every build has through
 * its dependencies): a table is filled all at once, and a missing library
 * or symbol is an error naming it that leaves the table as it was. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/dynlib.h"
#include "core/err.h"

struct zfn {
    const char *(*zlibVersion)(void);
    unsigned long (*crc32)(unsigned long crc, const unsigned char *buf, unsigned len);
};

static void test_loads_a_table(void **unused)
{
    (void)unused;
    static const struct dynlib_sym syms[] = {
            {"zlibVersion", offsetof(struct zfn, zlibVersion)},
            {"crc32", offsetof(struct zfn, crc32)},
    };
    struct zfn z = {0};
    struct err err = {0};
    assert_int_equal(dynlib_load("libz.so.1", syms, 2, &z, &err), 0);
    assert_non_null(z.zlibVersion);
    assert_int_equal(z.zlibVersion()[0], '1');
    assert_int_equal(z.crc32(0, (const unsigned char *)"123456789", 9), 0xcbf43926ul);
    /* Again: the same library, the same addresses. */
    struct zfn again = {0};
    assert_int_equal(dynlib_load("libz.so.1", syms, 2, &again, &err), 0);
    assert_ptr_equal(again.crc32, z.crc32);
}

static void test_missing_library(void **unused)
{
    (void)unused;
    static const struct dynlib_sym syms[] = {{"zlibVersion", offsetof(struct zfn, zlibVersion)}};
    struct zfn z = {0};
    struct err err = {0};
    assert_int_equal(dynlib_load("libfreno-none.so.9", syms, 1, &z, &err), -ENOENT);
    assert_int_equal(err.code, -ENOENT);
    assert_non_null(strstr(err.msg, "libfreno-none.so.9"));
    assert_null(z.zlibVersion);
}

static void test_missing_symbol_leaves_the_table(void **unused)
{
    (void)unused;
    static const struct dynlib_sym syms[] = {
            {"zlibVersion", offsetof(struct zfn, zlibVersion)},
            {"curl_easy_init", offsetof(struct zfn, crc32)},
    };
    struct zfn z = {0};
    struct err err = {0};
    assert_int_equal(dynlib_load("libz.so.1", syms, 2, &z, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "curl_easy_init"));
    /* All or nothing: the symbol that was found is not stored either. */
    assert_null(z.zlibVersion);
    assert_null(z.crc32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_loads_a_table),
            cmocka_unit_test(test_missing_library),
            cmocka_unit_test(test_missing_symbol_leaves_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
