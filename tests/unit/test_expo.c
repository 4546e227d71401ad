/* SPDX-License-Identifier: MIT */
/* Unit tests for metrics/expo (the Prometheus text builder) and
 * metrics/render (the daemon's families): label values escaped as the format
 * requires, invalid UTF-8 replaced, HELP and TYPE once per family, values
 * printed exactly, and client names never turning into metric names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/check_counters.h"
#include "metrics/expo.h"
#include "metrics/render.h"

static char *take(struct expo *e)
{
    size_t len;
    char *t = expo_take(e, &len);
    assert_int_equal(strlen(t), len);
    return t;
}

static void test_family_and_samples(void **state)
{
    (void)state;
    struct expo *e = expo_new();
    expo_family(e, "x_requests_total", EXPO_COUNTER, "Requests.");
    expo_sample_u64(e, NULL, NULL, 0, 18446744073709551615ull);
    struct expo_label l[] = {{"app", "a"}, {"store", "b"}};
    expo_sample_u64(e, "", l, 2, 7);
    expo_family(e, "x_latency_seconds", EXPO_SUMMARY, "Latency.");
    expo_sample(e, "_sum", NULL, 0, 0.1);
    expo_sample_u64(e, "_count", NULL, 0, 3);
    expo_family(e, "x_value", EXPO_GAUGE, "Values.");
    expo_sample(e, NULL, NULL, 0, 1.0 / 3.0);
    expo_sample(e, NULL, l, 1, 0.0 / 0.0);
    expo_sample(e, NULL, l, 1, 1.0 / 0.0);
    expo_sample(e, NULL, l, 1, -1.0 / 0.0);
    expo_sample(e, NULL, l, 1, 1e300);
    char *t = take(e);
    assert_string_equal(t, "# HELP x_requests_total Requests.\n"
                           "# TYPE x_requests_total counter\n"
                           "x_requests_total 18446744073709551615\n"
                           "x_requests_total{app=\"a\",store=\"b\"} 7\n"
                           "# HELP x_latency_seconds Latency.\n"
                           "# TYPE x_latency_seconds summary\n"
                           "x_latency_seconds_sum 0.1\n"
                           "x_latency_seconds_count 3\n"
                           "# HELP x_value Values.\n"
                           "# TYPE x_value gauge\n"
                           "x_value 0.33333333333333331\n"
                           "x_value{app=\"a\"} NaN\n"
                           "x_value{app=\"a\"} +Inf\n"
                           "x_value{app=\"a\"} -Inf\n"
                           "x_value{app=\"a\"} 1e+300\n");
    free(t);
    /* After a take the builder starts over: the same family may come again. */
    expo_family(e, "x_requests_total", EXPO_COUNTER, "Again.");
    assert_true(expo_len(e) > 0);
    expo_free(e);
    expo_free(NULL);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct expo *e = expo_new();
    expo_family(e, "x_total", EXPO_COUNTER, "Help with \\ and\nnewline and \"quotes\".");
    const char *values[] = {
            "q\"uote",
            "back\\slash",
            "new\nline",
            "caf\xc3\xa9",
            "\xe6\x97\xa5\xf0\x9f\x98\x80",
            "bad\xff",
            "cut\xc3",
            "\xed\xa0\x80", /* a surrogate: not UTF-8 */
            "tab\there",
            "",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct expo_label l[] = {{"app", values[i]}};
        expo_sample_u64(e, NULL, l, 1, i);
    }
    char *t = take(e);
    assert_string_equal(t, "# HELP x_total Help with \\\\ and\\nnewline and \"quotes\".\n"
                           "# TYPE x_total counter\n"
                           "x_total{app=\"q\\\"uote\"} 0\n"
                           "x_total{app=\"back\\\\slash\"} 1\n"
                           "x_total{app=\"new\\nline\"} 2\n"
                           "x_total{app=\"caf\xc3\xa9\"} 3\n"
                           "x_total{app=\"\xe6\x97\xa5\xf0\x9f\x98\x80\"} 4\n"
                           "x_total{app=\"bad\xef\xbf\xbd\"} 5\n"
                           "x_total{app=\"cut\xef\xbf\xbd\"} 6\n"
                           "x_total{app=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 7\n"
                           "x_total{app=\"tab\there\"} 8\n"
                           "x_total{app=\"\"} 9\n");
    free(t);
    expo_free(e);
}

static void test_escape_label_value_cuts_on_boundaries(void **state)
{
    (void)state;
    char buf[6];
    /* "a\"" is 3 bytes escaped; the next escape would not fit whole. */
    assert_int_equal(expo_escape_label_value(buf, sizeof(buf), "a\"\"\""), 5);
    assert_string_equal(buf, "a\\\"\\\"");
    assert_int_equal(expo_escape_label_value(buf, 4, "\xc3\xa9\xc3\xa9"), 2);
    assert_string_equal(buf, "\xc3\xa9");
    assert_int_equal(expo_escape_label_value(buf, 1, "abc"), 0);
    assert_string_equal(buf, "");
    assert_int_equal(expo_escape_label_value(buf, 0, "abc"), 0);
}

/* ---- the daemon's rendering ---- */

static int count_occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Every line is a comment or starts with one of our fixed family names, and
 * each family is declared exactly once. */
static void check_families(const char *text)
{
    char seen[64][80];
    int nseen = 0;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        if (strncmp(line, "# TYPE ", 7) == 0) {
            const char *name = line + 7;
            size_t n = strcspn(name, " ");
            assert_true(n < sizeof(seen[0]));
            for (int i = 0; i < nseen; i++)
                assert_false(strlen(seen[i]) == n && memcmp(seen[i], name, n) == 0);
            memcpy(seen[nseen], name, n);
            seen[nseen][n] = '\0';
            nseen++;
            assert_true(nseen < 64);
        } else if (line[0] != '#') {
            assert_memory_equal(line, "freno_", 6);
            size_t n = strcspn(line, "{ ");
            int found = 0;
            for (int i = 0; i < nseen; i++)
                found |= strncmp(line, seen[i], strlen(seen[i])) == 0 && n >= strlen(seen[i]);
            assert_true(found);
        }
        line = end + 1;
    }
}

static void test_render_hostile_names(void **state)
{
    (void)state;
    struct check_counters *cc = check_counters_new(100, 100);
    const char *apps[] = {"a-b",         "a_b",       "a.b",         "q\"uote",
                          "back\\slash", "new\nline", "bad\xff\xfe", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++) {
        check_counters_add(cc, apps[i], "we\"ird\\store\n", 200);
        check_counters_add(cc, apps[i], "main", 500);
    }
    struct metrics_host hosts[] = {{.key = "db-1:3306", .ok = true, .value = 0.5},
                                   {.key = "db-2:3306", .probe_errors = 4}};
    struct metrics_store stores[] = {
            {.name = "main",
             .threshold = 1,
             .has_value = true,
             .ok = true,
             .value = 0.5,
             .hosts = hosts,
             .nhosts = 2},
            {.name = "we\"ird\\store\n", .threshold = 2},
    };
    struct metrics_throttle thr[] = {{"x\"y/main\xff", 1}, {"x\"y/main\x01", 0.5}, {"a-b", 0.25}};
    struct metrics_state st = {
            .is_leader = true,
            .stores = stores,
            .nstores = 2,
            .throttled = thr,
            .nthrottled = 3,
            .throttled_apps = 2,
            .checks = cc,
    };
    size_t len;
    char *t = metrics_render_prometheus(&st, &len);
    assert_int_equal(strlen(t), len);
    check_families(t);
    /* Twins stay apart, hostile bytes are escaped or replaced. */
    assert_non_null(strstr(t, "freno_app_checks_total{app=\"a-b\"} 2\n"));
    assert_non_null(strstr(t, "freno_app_checks_total{app=\"a_b\"} 2\n"));
    assert_non_null(strstr(t, "freno_app_checks_total{app=\"a.b\"} 2\n"));
    assert_non_null(strstr(t, "freno_app_checks_total{app=\"q\\\"uote\"} 2\n"));
    assert_non_null(strstr(t, "freno_app_checks_total{app=\"back\\\\slash\"} 2\n"));
    assert_non_null(strstr(t, "freno_app_checks_total{app=\"new?line\"} 2\n"));
    assert_non_null(strstr(t, "freno_app_checks_total{app=\"bad??\"} 2\n"));
    assert_non_null(strstr(t, "freno_app_check_internal_errors_total{app=\"a-b\"} 1\n"));
    assert_non_null(strstr(t, "freno_app_store_checks_total{app=\"a-b\",store=\"main\"} 1\n"));
    assert_non_null(strstr(t, "freno_store_checks_total{store=\"we\\\"ird\\\\store\\n\"} 8\n"));
    assert_non_null(strstr(t, "freno_store_check_errors_total{store=\"main\"} 8\n"));
    assert_non_null(strstr(t, "freno_store_value{store=\"main\"} 0.5\n"));
    assert_null(strstr(t, "freno_store_value{store=\"we"));
    assert_non_null(strstr(t, "freno_host_up{store=\"main\",host=\"db-2:3306\"} 0\n"));
    assert_non_null(strstr(t, "freno_host_value{store=\"main\",host=\"db-1:3306\"} 0.5\n"));
    assert_non_null(
            strstr(t, "freno_host_probe_errors_total{store=\"main\",host=\"db-2:3306\"} 4\n"));
    assert_non_null(strstr(t, "freno_leader 1\n"));
    /* Two throttle keys that print alike are one series with the larger ratio. */
    assert_non_null(strstr(t, "freno_throttled_apps 2\n"));
    assert_int_equal(count_occurrences(t, "freno_throttled_app_ratio{app=\"x\\\"y\""), 1);
    assert_non_null(strstr(t, "freno_throttled_app_ratio{app=\"x\\\"y\",store=\"main?\"} 1\n"));
    assert_non_null(strstr(t, "freno_throttled_app_ratio{app=\"a-b\",store=\"\"} 0.25\n"));
    free(t);

    char *j = metrics_render_debug_vars(&st, &len);
    assert_int_equal(strlen(j), len);
    assert_non_null(strstr(j, "\"check.a-b.total\":2"));
    assert_non_null(strstr(j, "\"check.q\\\"uote.mysql.main.internal-error\":1"));
    assert_non_null(strstr(j, "\"check.any.mysql.we\\\"ird\\\\store\\n.total\":8"));
    assert_non_null(strstr(j, "\"check.bad??.total\":2"));
    assert_non_null(strstr(j, "\"aggregated.mysql.main\":0.5"));
    assert_non_null(strstr(j, "\"consensus.is_leader\":1"));
    assert_null(strstr(j, "backend.mysql"));
    assert_int_equal(j[len - 1], '\n');
    free(j);
    check_counters_free(cc);
}

/* A client naming an app after a fixed key does not change that key. */
/* A store's Metrics get families of their own (labelled store and metric);
 * the store families keep showing MetricQuery's metric alone. */
static void test_render_store_metrics(void **state)
{
    (void)state;
    struct metrics_host hosts[] = {{.key = "db-1:3306", .ok = true, .value = 0.5},
                                   {.key = "db-2:3306", .ok = true, .value = 0.25},
                                   {.key = "db-1:3306", .ok = true, .value = 70},
                                   {.key = "db-2:3306", .probe_errors = 3}};
    struct metrics_metric metrics[] = {{.metric = "threads",
                                        .threshold = 64,
                                        .has_value = true,
                                        .ok = true,
                                        .value = 70,
                                        .hosts = &hosts[2]},
                                       {.metric = "hll",
                                        .threshold = 1e6,
                                        .has_value = true,
                                        .ever_healthy = true,
                                        .seconds_since_healthy = 12,
                                        .hosts = &hosts[2]}};
    struct metrics_store stores[] = {{.name = "main",
                                      .threshold = 1,
                                      .has_value = true,
                                      .ok = true,
                                      .value = 0.5,
                                      .hosts = hosts,
                                      .nhosts = 2,
                                      .metrics = metrics,
                                      .nmetrics = 2}};
    struct metrics_state st = {.stores = stores, .nstores = 1};
    size_t len;
    char *t = metrics_render_prometheus(&st, &len);
    check_families(t);
    assert_int_equal(count_occurrences(t, "freno_store_value{"), 1);
    assert_non_null(strstr(t, "freno_store_value{store=\"main\"} 0.5\n"));
    assert_int_equal(count_occurrences(t, "freno_host_value{"), 2);
    assert_non_null(
            strstr(t, "freno_store_metric_threshold{store=\"main\",metric=\"threads\"} 64\n"));
    assert_non_null(
            strstr(t, "freno_store_metric_threshold{store=\"main\",metric=\"hll\"} 1000000\n"));
    assert_non_null(strstr(t, "freno_store_metric_value{store=\"main\",metric=\"threads\"} 70\n"));
    assert_null(strstr(t, "freno_store_metric_value{store=\"main\",metric=\"hll\"}"));
    assert_non_null(strstr(t, "freno_store_metric_healthy{store=\"main\",metric=\"hll\"} 0\n"));
    assert_non_null(strstr(
            t, "freno_store_metric_seconds_since_healthy{store=\"main\",metric=\"hll\"} 12\n"));
    assert_non_null(strstr(
            t,
            "freno_host_metric_value{store=\"main\",metric=\"threads\",host=\"db-1:3306\"} 70\n"));
    assert_non_null(strstr(
            t, "freno_host_metric_up{store=\"main\",metric=\"threads\",host=\"db-2:3306\"} 0\n"));
    assert_non_null(strstr(t, "freno_host_metric_probe_errors_total{store=\"main\",metric=\"hll\","
                              "host=\"db-2:3306\"} 3\n"));
    free(t);
    char *j = metrics_render_debug_vars(&st, &len);
    assert_non_null(strstr(j, "\"aggregated.mysql.main\":0.5,"));
    assert_non_null(strstr(j, "\"aggregated.mysql.main/threads\":70.0"));
    assert_null(strstr(j, "aggregated.mysql.main/hll"));
    assert_non_null(strstr(j, "\"check.mysql.main/hll.seconds_since_healthy\":12"));
    free(j);

    /* Without Metrics the new families are declared and empty. */
    stores[0].nmetrics = 0;
    t = metrics_render_prometheus(&st, &len);
    check_families(t);
    assert_null(strstr(t, "metric=\""));
    assert_non_null(strstr(t, "# TYPE freno_store_metric_value gauge\n"));
    free(t);
}

static void test_debug_vars_fixed_keys_win(void **state)
{
    (void)state;
    struct check_counters *cc = check_counters_new(10, 10);
    for (int i = 0; i < 5; i++)
        check_counters_add(cc, "any", "main", 200);
    struct metrics_state st = {.checks = cc};
    size_t len;
    char *j = metrics_render_debug_vars(&st, &len);
    assert_non_null(strstr(j, "\"check.any.total\":0")); /* the process counter, not 5 */
    free(j);
    check_counters_free(cc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_family_and_samples),
            cmocka_unit_test(test_label_escaping),
            cmocka_unit_test(test_escape_label_value_cuts_on_boundaries),
            cmocka_unit_test(test_render_hostile_names),
            cmocka_unit_test(test_render_store_metrics),
            cmocka_unit_test(test_debug_vars_fixed_keys_win),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
