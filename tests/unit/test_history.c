/* SPDX-License-Identifier: MIT */
/* Unit tests for snapshot/history: one point a second per cluster metric,
 * 900 kept, gaps as nulls, a clock going back, metrics coming and going,
 * clusters swept or removed, and the JSON (whole, one cluster, since). The
 * JSON is read back with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "snapshot/history.h"

#define T0 1700000000ull

static int setup(void **state)
{
    *state = history_new();
    return 0;
}

static int teardown(void **state)
{
    history_free(*state);
    return 0;
}

/* Records one metric ("default") of @cluster at @t: @v, or none when @has is
 * false. */
static void rec1(struct history *h, const char *cluster, uint64_t t, bool has, double v)
{
    char name[300];
    snprintf(name, sizeof(name), "mysql/%s", cluster);
    struct history_sample s = {
            .metric = "default", .name = name, .threshold = 1.5, .has_value = has, .value = v};
    history_record(h, cluster, &s, 1, t);
}

/* The history as JSON (all clusters when @cluster is NULL), parsed; the
 * caller decrefs. Fails the test on JSON that does not parse. */
static json_t *render(struct history *h, const char *cluster, uint64_t since, bool *found)
{
    size_t len;
    bool f;
    char *s = history_render_json(h, cluster, since, &len, &f);
    assert_non_null(s);
    assert_int_equal(len, strlen(s));
    assert_true(len > 0 && s[len - 1] == '\n');
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (j == NULL)
        fail_msg("history JSON does not parse: %s: %s", e.text, s);
    free(s);
    if (found != NULL)
        *found = f;
    return j;
}

static json_t *cluster_of(json_t *j, const char *name)
{
    return json_object_get(json_object_get(j, "Clusters"), name);
}

static json_t *values_of(json_t *j, const char *cluster, const char *metric)
{
    json_t *m = json_object_get(json_object_get(cluster_of(j, cluster), "Metrics"), metric);
    return json_object_get(m, "Values");
}

static json_int_t start_of(json_t *j, const char *cluster)
{
    return json_integer_value(json_object_get(cluster_of(j, cluster), "Start"));
}

static void test_empty(void **state)
{
    struct history *h = *state;
    bool found;
    json_t *j = render(h, NULL, 0, &found);
    assert_true(found);
    assert_int_equal(json_object_size(json_object_get(j, "Clusters")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "Points")), HISTORY_POINTS);
    assert_int_equal(json_integer_value(json_object_get(j, "IntervalSeconds")), 1);
    json_decref(j);
    j = render(h, "nosuch", 0, &found);
    assert_false(found);
    json_decref(j);
}

static void test_points_in_order_with_nulls(void **state)
{
    struct history *h = *state;
    rec1(h, "c1", T0, true, 0.25);
    rec1(h, "c1", T0 + 1, false, 0);  /* no aggregate: null */
    rec1(h, "c1", T0 + 4, true, 2.0); /* two seconds skipped: nulls */
    rec1(h, "c1", T0 + 4, true, 2.5); /* the same second again: replaced */
    json_t *j = render(h, "c1", 0, NULL);
    assert_int_equal(start_of(j, "c1"), T0);
    json_t *v = values_of(j, "c1", "default");
    assert_int_equal(json_array_size(v), 5);
    assert_true(json_real_value(json_array_get(v, 0)) == 0.25);
    for (size_t i = 1; i <= 3; i++)
        assert_true(json_is_null(json_array_get(v, i)));
    assert_true(json_number_value(json_array_get(v, 4)) == 2.5);
    json_t *m = json_object_get(json_object_get(cluster_of(j, "c1"), "Metrics"), "default");
    assert_string_equal(json_string_value(json_object_get(m, "Name")), "mysql/c1");
    assert_true(json_number_value(json_object_get(m, "Threshold")) == 1.5);
    json_decref(j);
}

static void test_ring_keeps_last_900(void **state)
{
    struct history *h = *state;
    for (uint64_t t = 0; t < 2000; t++)
        rec1(h, "c1", T0 + t, true, (double)t);
    json_t *j = render(h, NULL, 0, NULL);
    json_t *v = values_of(j, "c1", "default");
    assert_int_equal(json_array_size(v), HISTORY_POINTS);
    assert_int_equal(start_of(j, "c1"), T0 + 2000 - HISTORY_POINTS);
    assert_true(json_number_value(json_array_get(v, 0)) == 2000 - HISTORY_POINTS);
    assert_true(json_number_value(json_array_get(v, HISTORY_POINTS - 1)) == 1999);
    json_decref(j);
}

static void test_long_gap_leaves_only_nulls(void **state)
{
    struct history *h = *state;
    rec1(h, "c1", T0, true, 1);
    rec1(h, "c1", T0 + 5000, true, 3);
    json_t *j = render(h, "c1", 0, NULL);
    json_t *v = values_of(j, "c1", "default");
    assert_int_equal(json_array_size(v), HISTORY_POINTS);
    for (size_t i = 0; i < HISTORY_POINTS - 1; i++)
        assert_true(json_is_null(json_array_get(v, i)));
    assert_true(json_number_value(json_array_get(v, HISTORY_POINTS - 1)) == 3);
    json_decref(j);
}

static void test_clock_back_restarts(void **state)
{
    struct history *h = *state;
    rec1(h, "c1", T0, true, 1);
    rec1(h, "c1", T0 + 1, true, 2);
    rec1(h, "c1", T0 - 10, true, 7);
    json_t *j = render(h, "c1", 0, NULL);
    assert_int_equal(start_of(j, "c1"), T0 - 10);
    json_t *v = values_of(j, "c1", "default");
    assert_int_equal(json_array_size(v), 1);
    assert_true(json_number_value(json_array_get(v, 0)) == 7);
    json_decref(j);
}

static void test_since(void **state)
{
    struct history *h = *state;
    for (uint64_t t = 0; t < 10; t++)
        rec1(h, "c1", T0 + t, true, (double)t);
    json_t *j = render(h, "c1", T0 + 6, NULL);
    assert_int_equal(start_of(j, "c1"), T0 + 7);
    json_t *v = values_of(j, "c1", "default");
    assert_int_equal(json_array_size(v), 3);
    assert_true(json_number_value(json_array_get(v, 0)) == 7);
    json_decref(j);
    j = render(h, "c1", T0 + 9, NULL); /* nothing newer */
    assert_int_equal(start_of(j, "c1"), 0);
    assert_int_equal(json_array_size(values_of(j, "c1", "default")), 0);
    json_decref(j);
    j = render(h, "c1", 1, NULL); /* older than the ring: all of it */
    assert_int_equal(json_array_size(values_of(j, "c1", "default")), 10);
    json_decref(j);
}

static void test_metrics_come_and_go(void **state)
{
    struct history *h = *state;
    struct history_sample two[] = {
            {.metric = "default", .name = "mysql/c", .threshold = 1, .has_value = true, .value = 1},
            {.metric = "threads",
             .name = "mysql/c/threads",
             .threshold = 64,
             .has_value = true,
             .value = 10},
    };
    history_record(h, "c", two, 1, T0);     /* only the default metric */
    history_record(h, "c", two, 2, T0 + 1); /* threads appears: nulls before */
    assert_int_equal(history_series_count(h), 2);
    json_t *j = render(h, "c", 0, NULL);
    json_t *v = values_of(j, "c", "threads");
    assert_int_equal(json_array_size(v), 2);
    assert_true(json_is_null(json_array_get(v, 0)));
    assert_true(json_number_value(json_array_get(v, 1)) == 10);
    assert_int_equal(json_array_size(values_of(j, "c", "default")), 2);
    json_decref(j);
    history_record(h, "c", &two[1], 1, T0 + 2); /* default gone */
    assert_int_equal(history_series_count(h), 1);
    j = render(h, "c", 0, NULL);
    assert_null(values_of(j, "c", "default"));
    assert_int_equal(json_array_size(values_of(j, "c", "threads")), 3);
    json_decref(j);
}

static void test_sweep_and_remove(void **state)
{
    struct history *h = *state;
    rec1(h, "a", T0, true, 1);
    rec1(h, "b", T0, true, 1);
    rec1(h, "c", T0, true, 1);
    history_sweep(h);
    assert_int_equal(history_series_count(h), 3);
    rec1(h, "a", T0 + 1, true, 1); /* b and c left the config */
    rec1(h, "c", T0 + 1, true, 1);
    history_sweep(h);
    assert_int_equal(history_series_count(h), 2);
    bool found;
    json_decref(render(h, "b", 0, &found));
    assert_false(found);
    history_remove_cluster(h, "a");
    history_remove_cluster(h, "nosuch");
    assert_int_equal(history_series_count(h), 1);
    json_t *j = render(h, NULL, 0, NULL);
    assert_null(cluster_of(j, "a"));
    assert_non_null(cluster_of(j, "c"));
    json_decref(j);
}

/* Names from the config are escaped; a non-finite value is a null. */
static void test_names_escaped(void **state)
{
    struct history *h = *state;
    const char *evil = "c\"</script><b>\\";
    rec1(h, evil, T0, true, 1.0 / 0.0);
    json_t *j = render(h, NULL, 0, NULL);
    json_t *v = values_of(j, evil, "default");
    assert_int_equal(json_array_size(v), 1);
    assert_true(json_is_null(json_array_get(v, 0)));
    json_decref(j);
}

/* Points keep six significant digits. */
static void test_point_precision(void **state)
{
    struct history *h = *state;
    rec1(h, "c1", T0, true, 0.06076407432556152);
    rec1(h, "c1", T0 + 1, true, 1234567.0);
    rec1(h, "c1", T0 + 2, true, -0.5);
    size_t len;
    bool found;
    char *s = history_render_json(h, "c1", 0, &len, &found);
    assert_non_null(strstr(s, "\"Values\":[0.0607641,1.23457e+06,-0.5]"));
    free(s);
}

static void test_many_clusters_sorted(void **state)
{
    struct history *h = *state;
    for (int i = 99; i >= 0; i--) {
        char n[16];
        snprintf(n, sizeof(n), "c%03d", i);
        rec1(h, n, T0, true, i);
    }
    assert_int_equal(history_series_count(h), 100);
    size_t len;
    bool found;
    char *s = history_render_json(h, NULL, 0, &len, &found);
    assert_non_null(strstr(s, "\"c000\""));
    assert_true(strstr(s, "\"c000\"") < strstr(s, "\"c099\""));
    free(s);
    json_t *j = render(h, "c042", 0, NULL);
    assert_int_equal(json_object_size(json_object_get(j, "Clusters")), 1);
    assert_true(json_number_value(json_array_get(values_of(j, "c042", "default"), 0)) == 42);
    json_decref(j);
}

int main(void)
{
#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
            TEST(test_empty),
            TEST(test_points_in_order_with_nulls),
            TEST(test_ring_keeps_last_900),
            TEST(test_long_gap_leaves_only_nulls),
            TEST(test_clock_back_restarts),
            TEST(test_since),
            TEST(test_metrics_come_and_go),
            TEST(test_sweep_and_remove),
            TEST(test_names_escaped),
            TEST(test_point_precision),
            TEST(test_many_clusters_sorted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
