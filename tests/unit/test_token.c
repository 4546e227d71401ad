/* SPDX-License-Identifier: MIT */
/* Control tokens: a presented secret matches exactly one token by name;
 * prefixes, extensions, case changes, names and empty strings do not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/token.h"

static void test_match(void **state)
{
    (void)state;
    struct token_set *s = token_set_new();
    assert_int_equal(token_set_len(s), 0);
    assert_null(token_set_match(s, "x"));
    token_set_add(s, TOKEN_DEFAULT_NAME, "legacy-secret");
    token_set_add(s, "ops", "0ps");
    token_set_add(s, "deploy", "d3ploy-a-much-longer-secret-than-the-others");
    assert_int_equal(token_set_len(s), 3);
    assert_string_equal(token_set_match(s, "legacy-secret"), TOKEN_DEFAULT_NAME);
    assert_string_equal(token_set_match(s, "0ps"), "ops");
    assert_string_equal(token_set_match(s, "d3ploy-a-much-longer-secret-than-the-others"),
                        "deploy");
    assert_null(token_set_match(s, NULL));
    assert_null(token_set_match(s, ""));
    assert_null(token_set_match(s, "0p"));
    assert_null(token_set_match(s, "0ps "));
    assert_null(token_set_match(s, "0PS"));
    assert_null(token_set_match(s, "ops"));
    assert_null(token_set_match(s, "legacy-secre"));
    token_set_free(s);
    assert_int_equal(token_set_len(NULL), 0);
    assert_null(token_set_match(NULL, "x"));
    token_set_free(NULL);
}

/* Two sets with the same secrets keep different digests (a key per set),
 * and a name is cut at TOKEN_NAME_MAX bytes. */
static void test_names(void **state)
{
    (void)state;
    struct token_set *s = token_set_new();
    char name[64];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    token_set_add(s, name, "s");
    const char *got = token_set_match(s, "s");
    assert_non_null(got);
    assert_int_equal(strlen(got), TOKEN_NAME_MAX);
    token_set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_match),
            cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
