/* SPDX-License-Identifier: MIT */
/* Unit tests for the bounds on tables keyed by client names: core/lru (a
 * capped map that forgets the least recently used entry) and
 * metrics/check_counters built on it (after any flood, a new app is
 * counted), plus core/text's printable names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/lru.h"
#include "core/text.h"
#include "metrics/check_counters.h"

static void test_lru_order_and_eviction(void **state)
{
    (void)state;
    struct lru l;
    lru_init(&l, 3, sizeof(int), NULL);
    bool created;
    *(int *)lru_touch(&l, "a", &created) = 1;
    assert_true(created);
    *(int *)lru_touch(&l, "b", NULL) = 2;
    *(int *)lru_touch(&l, "c", NULL) = 3;
    assert_int_equal(*(int *)lru_touch(&l, "a", &created), 1); /* a is young again */
    assert_false(created);
    int *d = lru_touch(&l, "d", &created); /* b, the least recently used, goes */
    assert_true(created);
    assert_int_equal(*d, 0); /* new values are zeroed */
    assert_int_equal(lru_len(&l), 3);
    assert_int_equal(l.evicted, 1);
    assert_null(lru_get(&l, "b"));
    /* Iteration runs from the most recently used. */
    const char *want[] = {"d", "a", "c"};
    size_t i = 0;
    for (struct lru_node *n = lru_first(&l); n != NULL; n = lru_next(n))
        assert_string_equal(lru_node_key(n), want[i++]);
    assert_int_equal(i, 3);
    /* lru_get does not refresh: c stays the oldest. */
    assert_non_null(lru_get(&l, "c"));
    lru_touch(&l, "e", NULL);
    assert_null(lru_get(&l, "c"));
    assert_true(lru_del(&l, "a"));
    assert_false(lru_del(&l, "a"));
    assert_int_equal(lru_len(&l), 2);
    lru_deinit(&l);
    assert_int_equal(lru_len(&l), 0);
}

static void test_lru_cap_zero(void **state)
{
    (void)state;
    struct lru l;
    lru_init(&l, 0, sizeof(int), NULL);
    bool created = true;
    assert_null(lru_touch(&l, "a", &created));
    assert_false(created);
    assert_int_equal(lru_len(&l), 0);
    lru_deinit(&l);
}

static int freed;

static void free_ptr(void *value)
{
    free(*(char **)value);
    freed++;
}

static bool starts_with_x(const char *key, void *value, void *arg)
{
    (void)value;
    (void)arg;
    return key[0] == 'x';
}

/* Values that own memory release it on eviction, deletion, sweep and deinit
 * (ASan would report a leak otherwise). */
static void test_lru_value_free(void **state)
{
    (void)state;
    struct lru l;
    freed = 0;
    lru_init(&l, 2, sizeof(char *), free_ptr);
    *(char **)lru_touch(&l, "x1", NULL) = strdup("one");
    *(char **)lru_touch(&l, "y2", NULL) = strdup("two");
    *(char **)lru_touch(&l, "x3", NULL) = strdup("three"); /* evicts x1 */
    assert_int_equal(freed, 1);
    assert_int_equal(lru_sweep(&l, starts_with_x, NULL), 1);
    assert_int_equal(freed, 2);
    assert_string_equal(*(char **)lru_get(&l, "y2"), "two");
    lru_deinit(&l);
    assert_int_equal(freed, 3);
}

/* A flood of distinct keys leaves exactly the cap's worth, the newest. */
static void test_lru_flood(void **state)
{
    (void)state;
    struct lru l;
    lru_init(&l, 1000, sizeof(uint64_t), NULL);
    char key[32];
    for (uint64_t i = 0; i < 200000; i++) {
        snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
        *(uint64_t *)lru_touch(&l, key, NULL) = i;
    }
    assert_int_equal(lru_len(&l), 1000);
    assert_int_equal(l.map.len, 1000);
    assert_int_equal(l.evicted, 199000);
    assert_null(lru_get(&l, "k198999"));
    assert_int_equal(*(uint64_t *)lru_get(&l, "k199000"), 199000);
    assert_int_equal(*(uint64_t *)lru_get(&l, "k199999"), 199999);
    lru_deinit(&l);
}

static void test_text_printable(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(text_printable(out, sizeof(out), "plain"), 5);
    assert_string_equal(out, "plain");
    text_printable(out, sizeof(out), "a\x01\n\x7f\xc2\x85z"); /* C0, DEL, C1 (U+0085) */
    assert_string_equal(out, "a????z");
    text_printable(out, sizeof(out), "\xff\xfe\xc3\xa9\xc3");
    assert_string_equal(out, "??\xc3\xa9?");
    text_printable(out, sizeof(out), "\xed\xa0\x80"); /* surrogate */
    assert_string_equal(out, "???");
    /* Cut on a character boundary. */
    assert_int_equal(text_printable(out, 6, "ab\xe6\x97\xa5\xe6\x97\xa5"), 5);
    assert_string_equal(out, "ab\xe6\x97\xa5");
    assert_int_equal(text_printable(out, 5, "ab\xe6\x97\xa5"), 2);
    assert_string_equal(out, "ab");
}

struct seen {
    int n;
    char app[64];
    char store[64];
    struct check_counts c;
};

static void on_first(const char *app, const char *store, const struct check_counts *c, void *arg)
{
    struct seen *s = arg;
    if (s->n++ == 0) {
        snprintf(s->app, sizeof(s->app), "%s", app ? app : "(null)");
        snprintf(s->store, sizeof(s->store), "%s", store ? store : "(null)");
        s->c = *c;
    }
}

static void test_check_counters_counts(void **state)
{
    (void)state;
    struct check_counters *cc = check_counters_new(10, 10);
    check_counters_add(cc, "app", "main", 200);
    check_counters_add(cc, "app", "main", 429);
    check_counters_add(cc, "app", "main", 500);
    check_counters_add(cc, "other", "line\nstore", 200);
    const struct check_counts *m = check_counters_store(cc, "main");
    assert_non_null(m);
    assert_int_equal(m->total, 3);
    assert_int_equal(m->error, 2);
    assert_int_equal(m->internal_error, 1);
    assert_null(check_counters_store(cc, "nosuch"));
    struct seen s = {0};
    check_counters_each_app_store(cc, on_first, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.app, "other");
    assert_string_equal(s.store, "line\nstore"); /* split at the app's end, not the store's */
    s = (struct seen){0};
    check_counters_each_app(cc, on_first, &s);
    assert_string_equal(s.app, "other");
    assert_string_equal(s.store, "(null)");
    s = (struct seen){0};
    check_counters_each_store(cc, on_first, &s);
    assert_string_equal(s.app, "(null)");
    assert_string_equal(s.store, "line\nstore");
    /* Apps are stored printable: these two are one app. */
    check_counters_add(cc, "x\xff", "main", 200);
    check_counters_add(cc, "x\n", "main", 200);
    s = (struct seen){0};
    check_counters_each_app(cc, on_first, &s);
    assert_string_equal(s.app, "x?");
    assert_int_equal(s.c.total, 2);
    check_counters_free(cc);
    check_counters_free(NULL);
}

/* The defect: after a flood of names, new apps were never counted. Now the
 * tables stay at their caps and the newest app is always counted. */
static void test_check_counters_flood(void **state)
{
    (void)state;
    struct check_counters *cc = check_counters_new(100, 50);
    check_counters_add(cc, "steady", "main", 200);
    char app[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(app, sizeof(app), "flood-%d", i);
        check_counters_add(cc, app, "main", 200);
    }
    check_counters_add(cc, "after-flood", "main", 429);
    struct check_counters_stats st;
    check_counters_get_stats(cc, &st);
    assert_int_equal(st.apps, 100);
    assert_int_equal(st.app_stores, 50);
    assert_int_equal(st.stores, 1);
    assert_int_equal(st.apps_evicted, 100002 - 100);
    assert_int_equal(st.app_stores_evicted, 100002 - 50);
    struct seen s = {0};
    check_counters_each_app(cc, on_first, &s);
    assert_string_equal(s.app, "after-flood");
    assert_int_equal(s.c.total, 1);
    assert_int_equal(s.c.error, 1);
    s = (struct seen){0};
    check_counters_each_app_store(cc, on_first, &s);
    assert_string_equal(s.app, "after-flood");
    assert_int_equal(check_counters_store(cc, "main")->total, 100002);
    check_counters_free(cc);
}

static void on_len(const char *app, const char *store, const struct check_counts *c, void *arg)
{
    (void)store;
    (void)c;
    *(size_t *)arg = strlen(app);
}

/* An over-long app name is cut and counted under the cut name. */
static void test_check_counters_long_app(void **state)
{
    (void)state;
    struct check_counters *cc = check_counters_new(10, 10);
    char app[1000];
    memset(app, 'x', sizeof(app) - 1);
    app[sizeof(app) - 1] = '\0';
    check_counters_add(cc, app, "main", 200);
    app[CHECK_COUNTERS_APP_MAX + 1] = '\0'; /* differs only past the cut: same app */
    check_counters_add(cc, app, "main", 200);
    size_t len = 0;
    check_counters_each_app(cc, on_len, &len);
    assert_int_equal(len, CHECK_COUNTERS_APP_MAX);
    struct check_counters_stats st;
    check_counters_get_stats(cc, &st);
    assert_int_equal(st.apps, 1);
    len = 0;
    check_counters_each_app_store(cc, on_len, &len);
    assert_int_equal(len, CHECK_COUNTERS_APP_MAX);
    check_counters_free(cc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_lru_order_and_eviction),
            cmocka_unit_test(test_lru_cap_zero),
            cmocka_unit_test(test_lru_value_free),
            cmocka_unit_test(test_lru_flood),
            cmocka_unit_test(test_text_printable),
            cmocka_unit_test(test_check_counters_counts),
            cmocka_unit_test(test_check_counters_flood),
            cmocka_unit_test(test_check_counters_long_app),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
