/* SPDX-License-Identifier: MIT */
/* Unit tests for core/strbuf: appending bytes, strings and formatted text,
 * growth over many appends checked against a plain copy, bytes that are not
 * NUL-terminated, and take/deinit leaving the buffer empty and reusable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strbuf.h"

static void test_empty(void **state)
{
    (void)state;
    struct strbuf b = {0};
    char *s = strbuf_take(&b);
    assert_string_equal(s, "");
    free(s);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    strbuf_deinit(&b);

    /* Adding nothing still gives a NUL-terminated text. */
    strbuf_add(&b, "", 0);
    assert_non_null(b.p);
    assert_string_equal(b.p, "");
    strbuf_deinit(&b);
    assert_null(b.p);
    assert_int_equal(b.size, 0);
}

static void test_append(void **state)
{
    (void)state;
    struct strbuf b = {0};
    strbuf_add(&b, "abcdef", 3); /* only the first three bytes */
    strbuf_adds(&b, "-");
    strbuf_addf(&b, "%d:%s", 42, "x");
    assert_string_equal(b.p, "abc-42:x");
    assert_int_equal(b.len, strlen("abc-42:x"));
    assert_true(b.size > b.len);
    char *s = strbuf_take(&b);
    assert_string_equal(s, "abc-42:x");
    free(s);
    /* Reusable after take. */
    assert_null(b.p);
    strbuf_adds(&b, "again");
    assert_string_equal(b.p, "again");
    strbuf_deinit(&b);
}

static void test_growth(void **state)
{
    (void)state;
    struct strbuf b = {0};
    char *model = calloc(1, 100000);
    size_t len = 0;
    for (unsigned i = 0; len < 90000; i++) {
        char piece[32];
        int n = snprintf(piece, sizeof(piece), "<%u>", i * 7919u);
        if (i % 3 == 0)
            strbuf_addf(&b, "<%u>", i * 7919u);
        else
            strbuf_add(&b, piece, (size_t)n);
        memcpy(model + len, piece, (size_t)n);
        len += (size_t)n;
        assert_int_equal(b.len, len);
    }
    assert_memory_equal(b.p, model, len + 1);
    free(model);
    strbuf_deinit(&b);
}

static void test_long_format(void **state)
{
    (void)state;
    struct strbuf b = {0};
    char big[5000];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    strbuf_adds(&b, "x");
    strbuf_addf(&b, "%s|%s", big, big);
    assert_int_equal(b.len, 1 + 2 * (sizeof(big) - 1) + 1);
    assert_int_equal(b.p[0], 'x');
    assert_int_equal(b.p[sizeof(big)], '|');
    assert_int_equal(b.p[b.len], '\0');
    strbuf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_empty),
            cmocka_unit_test(test_append),
            cmocka_unit_test(test_growth),
            cmocka_unit_test(test_long_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
