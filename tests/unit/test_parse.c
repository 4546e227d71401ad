/* SPDX-License-Identifier: MIT */
/* Strict number parsing: what clients write in TTLs, ratios and thresholds. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/parse.h"

static void test_double_accepts_decimal(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        double v;
    } ok[] = {
            {"0", 0},           {"1", 1},
            {"0.5", 0.5},       {".5", 0.5},
            {"5.", 5},          {"+0.25", 0.25},
            {"-3", -3},         {"1e3", 1000},
            {"1E-2", 0.01},     {"2.5e+1", 25},
            {"007", 7},         {"1e308", 1e308},
            {"-1e308", -1e308}, {"2.2250738585072014e-308", 2.2250738585072014e-308},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        double v = -42;
        assert_int_equal(parse_double(ok[i].s, &v), 0);
        assert_true(v == ok[i].v);
    }
}

static void test_double_negative_zero_is_zero(void **state)
{
    (void)state;
    const char *zeros[] = {"-0", "-0.0", "-0e5", "+0", "0.000"};
    for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++) {
        double v = -42;
        assert_int_equal(parse_double(zeros[i], &v), 0);
        assert_true(v == 0);
        assert_false(signbit(v));
    }
}

static void test_double_rejects_junk(void **state)
{
    (void)state;
    const char *bad[] = {
            NULL,     "",       " 1",    "1 ",    "\t1",          "1x",  "abc",  "nan",    "NaN",
            "-nan",   "nan(1)", "inf",   "-inf",  "Infinity",     "INF", "0x10", "0X1p-1", "0x1p-1",
            "0x.8p1", "1,5",    "1_000", "--1",   "+-1",          "1e",  "e5",   ".",      "-",
            "+",      "1.2.3",  "1e5e5", "0.5\n", "\xef\xbc\x91", /* fullwidth 1 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double v = 42;
        assert_int_equal(parse_double(bad[i], &v), -EINVAL);
        assert_true(v == 42); /* untouched */
    }
}

static void test_double_rejects_out_of_range(void **state)
{
    (void)state;
    const char *bad[] = {
            "1e309",
            "-1e309",
            "1e99999",
            "1e-400",
            "-1e-400",
            "4e-320",
            "17976931348623158079372897140530341507993413271003782693617377898044496829276475094664"
            "90179775872070963302864166928879109465555478519404026306574886715058206819089020007083"
            "83676273854845817711531764475730270069855571366959622842914819860834936475292719074168"
            "444365510704342711559699508093042880177904174497792"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double v = 42;
        assert_int_equal(parse_double(bad[i], &v), -ERANGE);
        assert_true(v == 42);
    }
}

static void test_i64(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(parse_i64("9223372036854775807", &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(parse_i64("-9223372036854775808", &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(parse_i64("-0", &v), 0);
    assert_true(v == 0);
    assert_int_equal(parse_i64("+5", &v), 0);
    assert_true(v == 5);
    v = 42;
    const char *bad[] = {NULL, "", " 5", "5 ", "0x10", "1e3", "5.0", "abc", "--5", "5-"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_i64(bad[i], &v), -EINVAL);
    assert_int_equal(parse_i64("9223372036854775808", &v), -ERANGE);
    assert_int_equal(parse_i64("-9223372036854775809", &v), -ERANGE);
    assert_int_equal(parse_i64("99999999999999999999", &v), -ERANGE);
    assert_true(v == 42);

    uint32_t u = 0;
    assert_int_equal(parse_u32("4294967295", &u), 0);
    assert_true(u == UINT32_MAX);
    assert_int_equal(parse_u32("4294967296", &u), -ERANGE);
    assert_int_equal(parse_u32("-1", &u), -ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_double_accepts_decimal),
            cmocka_unit_test(test_double_negative_zero_is_zero),
            cmocka_unit_test(test_double_rejects_junk),
            cmocka_unit_test(test_double_rejects_out_of_range),
            cmocka_unit_test(test_i64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
