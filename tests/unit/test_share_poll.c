/* SPDX-License-Identifier: MIT */
/* Unit tests for the pure part of leader/share_poll: /metrics-health bodies
 * parse, and a bad body reports nothing at all. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "leader/share_poll.h"

struct seen {
    char metric[8][64];
    int64_t secs[8];
    int n;
};

static void on_metric(const char *metric, int64_t seconds, void *arg)
{
    struct seen *s = arg;
    snprintf(s->metric[s->n], sizeof(s->metric[0]), "%s", metric);
    s->secs[s->n++] = seconds;
}

static void test_share_parse(void **state)
{
    (void)state;
    struct seen s = {0};
    struct err err = {0};
    const char *body =
            "{\"mysql/a\":{\"LastHealthyAt\":\"2025-01-01T00:00:00Z\","
            "\"SecondsSinceLastHealthy\":3},\"mysql/b\":{\"SecondsSinceLastHealthy\":0.9}}";
    assert_int_equal(share_poll_parse(body, strlen(body), on_metric, &s, &err), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.metric[0], "mysql/a");
    assert_int_equal(s.secs[0], 3);
    assert_int_equal(s.secs[1], 0);
    const char *empty = "{}";
    s.n = 0;
    assert_int_equal(share_poll_parse(empty, 2, on_metric, &s, &err), 0);
    assert_int_equal(s.n, 0);
    const char *bad[] = {"",
                         "[1]",
                         "{\"mysql/a\":{}}",
                         "{\"mysql/a\":{\"SecondsSinceLastHealthy\":\"3\"}}",
                         "{\"mysql/a\":{\"SecondsSinceLastHealthy\":1},\"x\":2}",
                         "{"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s.n = 0;
        assert_int_equal(share_poll_parse(bad[i], strlen(bad[i]), on_metric, &s, &err), -EINVAL);
        assert_int_equal(s.n, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_share_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
