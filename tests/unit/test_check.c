/* SPDX-License-Identifier: MIT */
/* Check decision (docs/api.md#check-decision) over hand-built snapshots, and the JSON number
 * and string formatting of the check body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/jsonfmt.h"
#include "core/xalloc.h"
#include "snapshot/check.h"
#include "snapshot/snapshot.h"

#define NOW 1700000000000ull

struct fixture {
    struct snapshot s;
};

static struct snap_metric metric(const char *cluster, bool has, bool ok, double v, double thr,
                                 const char *err)
{
    struct snap_metric m = {0};
    m.name = xasprintf("mysql/%s", cluster);
    m.cluster = m.name + 6;
    m.has_value = has;
    m.ok = ok;
    m.value = v;
    m.threshold = thr;
    m.err = err ? xstrdup(err) : NULL;
    m.live = metric_live_new();
    jsonfmt_number(m.value_json, sizeof(m.value_json), v);
    jsonfmt_number(m.threshold_json, sizeof(m.threshold_json), thr);
    return m;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct snap_metric *mv = calloc(4, sizeof(*mv));
    /* sorted by cluster name */
    mv[0] = metric("broken", true, false, 0, 1, "replication not running");
    mv[1] = metric("fresh", false, false, 0, 1, NULL);
    mv[2] = metric("high", true, true, 2.5, 1, NULL);
    mv[3] = metric("low", true, true, 0.2, 1, NULL);
    f->s.metrics = snap_metrics_new(mv, 4);
    struct snap_app *av = calloc(4, sizeof(*av));
    av[0] = (struct snap_app){xstrdup("always"), 0, 1};
    av[1] = (struct snap_app){xstrdup("expired"), NOW - 1, 1};
    av[2] = (struct snap_app){xstrdup("half"), NOW + 60000, 0.5};
    av[3] = (struct snap_app){xstrdup("scoped/low"), 0, 1};
    f->s.apps = snap_apps_new(av, 4);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    snap_metrics_unref(f->s.metrics);
    snap_apps_unref(f->s.apps);
    free(f);
    return 0;
}

static int decide(struct fixture *f, const char *app, const char *type, const char *store, bool low,
                  double rnd, struct check_result *res)
{
    struct check_request r = {
            .app = app, .store_type = type, .store_name = store, .low_priority = low};
    check_decide(&f->s, &r, NOW, rnd, res);
    return res->status;
}

static void test_basic_statuses(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    assert_int_equal(decide(f, "a", "mysql", "low", false, 0.5, &res), 200);
    assert_string_equal(res.message, "");
    assert_true(res.value == 0.2 && res.threshold == 1);
    assert_int_equal(decide(f, "a", "mysql", "high", false, 0.5, &res), 429);
    assert_string_equal(res.message, "Threshold exceeded");
    assert_string_equal(res.value_json, "2.5");
    assert_string_equal(res.threshold_json, "1");
    assert_int_equal(decide(f, "a", "mysql", "broken", false, 0.5, &res), 500);
    assert_string_equal(res.message, "replication not running");
    assert_int_equal(decide(f, "a", "mysql", "fresh", false, 0.5, &res), 404);
    assert_int_equal(decide(f, "a", "mysql", "nope", false, 0.5, &res), 404);
    assert_string_equal(res.message, "No such metric");
    assert_string_equal(res.value_json, "0");
    assert_string_equal(res.threshold_json, "0");
    assert_true(res.known_store);
    assert_int_equal(decide(f, "a", "redis", "low", false, 0.5, &res), 404);
    assert_false(res.known_store);
}

static void test_app_throttles(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    assert_int_equal(decide(f, "always", "mysql", "low", false, 0.99, &res), 417);
    assert_string_equal(res.message, "App denied");
    /* throttled even for an unknown cluster, as the original does */
    assert_int_equal(decide(f, "always", "mysql", "nope", false, 0.99, &res), 417);
    assert_int_equal(decide(f, "expired", "mysql", "low", false, 0.0, &res), 200);
    assert_int_equal(decide(f, "half", "mysql", "low", false, 0.49, &res), 417);
    assert_int_equal(decide(f, "half", "mysql", "low", false, 0.51, &res), 200);
    assert_int_equal(decide(f, "scoped", "mysql", "low", false, 0.5, &res), 417);
    assert_int_equal(decide(f, "scoped", "mysql", "high", false, 0.5, &res), 429);
}

static void test_low_priority(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    assert_int_equal(decide(f, "a", "mysql", "low", true, 0.5, &res), 200);
    /* low priority on its own does not mark */
    assert_int_equal(decide(f, "a", "mysql", "high", true, 0.5, &res), 429);
    assert_int_equal(decide(f, "a", "mysql", "high", true, 0.5, &res), 429);
    /* freno itself does not mark */
    assert_int_equal(decide(f, "freno", "mysql", "high", false, 0.5, &res), 429);
    assert_int_equal(decide(f, "a", "mysql", "high", true, 0.5, &res), 429);
    /* a normal app marks; low priority is then denied for a second */
    assert_int_equal(decide(f, "normal", "mysql", "high", false, 0.5, &res), 429);
    assert_int_equal(decide(f, "a", "mysql", "high", true, 0.5, &res), 417);
    struct check_request r = {
            .app = "a", .store_type = "mysql", .store_name = "high", .low_priority = true};
    check_decide(&f->s, &r, NOW + 999, 0.5, &res);
    assert_int_equal(res.status, 417);
    check_decide(&f->s, &r, NOW + 1000, 0.5, &res);
    assert_int_equal(res.status, 429);
    /* read checks never mark */
    const struct snap_metric *m = snapshot_find_metric(&f->s, "low");
    struct check_request rr = {.app = "x",
                               .store_type = "mysql",
                               .store_name = "low",
                               .read_check = true,
                               .override_threshold = 0.1};
    check_decide(&f->s, &rr, NOW, 0.5, &res);
    assert_int_equal(res.status, 429);
    assert_true(res.threshold == 0.1);
    assert_null(res.threshold_json); /* the caller formats an override */
    assert_int_equal(atomic_load(&m->live->normal_throttled_at_ms), 0);
}

static void test_if_exists_and_share(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    struct check_request r = {
            .app = "a", .store_type = "mysql", .store_name = "nope", .ok_if_not_exists = true};
    check_decide(&f->s, &r, NOW, 0.5, &res);
    assert_int_equal(res.status, 200);
    r.store_name = "high";
    check_decide(&f->s, &r, NOW, 0.5, &res);
    assert_int_equal(res.status, 429);
    struct snap_metric *m = &f->s.metrics->v[3]; /* "low" */
    m->share_known = true;
    m->share_seconds_since_healthy = 3;
    assert_int_equal(decide(f, "a", "mysql", "low", false, 0.5, &res), 429);
    assert_int_equal(decide(f, "freno", "mysql", "low", false, 0.5, &res), 200);
    m->share_seconds_since_healthy = 0;
    assert_int_equal(decide(f, "a", "mysql", "low", false, 0.5, &res), 200);
    struct check_request none = {.app = "a", .store_type = "mysql", .store_name = "low"};
    check_decide(NULL, &none, NOW, 0.5, &res);
    assert_int_equal(res.status, 404);
}

static void test_json_format(void **state)
{
    (void)state;
    char b[64];
    struct {
        double v;
        const char *want;
    } cases[] = {{0, "0"},
                 {1, "1"},
                 {1.53, "1.53"},
                 {0.1, "0.1"},
                 {-2.5, "-2.5"},
                 {1e-7, "1e-07"},
                 {123456789.25, "123456789.25"},
                 {1e20, "100000000000000000000"},
                 {0.000001, "0.000001"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jsonfmt_number(b, sizeof(b), cases[i].v);
        assert_string_equal(b, cases[i].want);
    }
    jsonfmt_string(b, sizeof(b), "a\"b\\c\n<&>");
    assert_string_equal(b, "\"a\\\"b\\\\c\\u000a\\u003c\\u0026\\u003e\"");
    assert_int_equal(jsonfmt_string(b, 4, "abcdef"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_basic_statuses, setup, teardown),
            cmocka_unit_test_setup_teardown(test_app_throttles, setup, teardown),
            cmocka_unit_test_setup_teardown(test_low_priority, setup, teardown),
            cmocka_unit_test_setup_teardown(test_if_exists_and_share, setup, teardown),
            cmocka_unit_test(test_json_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
