/* SPDX-License-Identifier: MIT */
/* Check decision (docs/api.md#check-decision) over hand-built snapshots,
 * including a stalled loop and a passed lease on an injected clock, and the
 * JSON number and string formatting of the check body. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/jsonfmt.h"
#include "core/xalloc.h"
#include "snap_build.h"
#include "snapshot/check.h"
#include "snapshot/snapshot.h"

#define NOW 1700000000000ull

struct fixture {
    struct snapshot s;
};

static struct snap_metric metric(const char *cluster, bool has, bool ok, double v, double thr,
                                 const char *err)
{
    return snap_build_metric(cluster, FRENO_METRIC_DEFAULT, has, ok, v, thr, err);
}

/* The default metric of @cluster in @f's snapshot. */
static struct snap_metric *default_metric(struct fixture *f, const char *cluster)
{
    const struct snap_cluster *c = snapshot_find_cluster(&f->s, cluster);
    assert_non_null(c);
    return &c->metrics[0];
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
    f->s.clusters = snap_build_clusters(mv, 4);
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
    snap_clusters_unref(f->s.clusters);
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
    const struct snap_metric *m = default_metric(f, "low");
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
    struct snap_metric *m = default_metric(f, "low");
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

/* ---- liveness: a stalled loop or a passed lease never answers 200 ---- */

#define BOOT 1000000ull /* "now" on the boot clock */

static int live_decide(struct fixture *f, const char *app, const char *store, uint64_t now_boot,
                       uint64_t alive_boot, bool if_exists, struct check_result *res)
{
    struct check_request r = {.app = app,
                              .store_type = "mysql",
                              .store_name = store,
                              .ok_if_not_exists = if_exists,
                              .now_boot_ms = now_boot,
                              .loop_alive_boot_ms = alive_boot};
    check_decide(&f->s, &r, NOW, 0.5, res);
    return res->status;
}

static void test_stalled_loop(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    f->s.stale_after_ms = 2000;
    /* A heartbeat exactly at the bound still counts. */
    assert_int_equal(live_decide(f, "a", "low", BOOT, BOOT - 2000, false, &res), 200);
    assert_int_equal(live_decide(f, "a", "high", BOOT, BOOT - 2000, false, &res), 429);
    /* A heartbeat newer than the reader's clock (read in the other order). */
    assert_int_equal(live_decide(f, "a", "low", BOOT, BOOT + 5, false, &res), 200);
    /* One millisecond later every known metric is refused, whatever its state. */
    const char *stores[] = {"low", "high", "broken", "fresh"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(live_decide(f, "a", stores[i], BOOT, BOOT - 2001, false, &res), 500);
        assert_string_equal(res.message, CHECK_MSG_LOOP_STALLED);
        assert_true(res.known_store);
        /* /check-if-exists must not turn it into 200 */
        assert_int_equal(live_decide(f, "a", stores[i], BOOT, BOOT - 2001, true, &res), 500);
    }
    /* Facts that do not come from the loop's metrics keep their answers. */
    assert_int_equal(live_decide(f, "a", "nope", BOOT, BOOT - 60000, false, &res), 404);
    assert_int_equal(live_decide(f, "a", "nope", BOOT, BOOT - 60000, true, &res), 200);
    assert_int_equal(live_decide(f, "always", "low", BOOT, BOOT - 60000, false, &res), 417);
    /* The loop's own self checks skip the test. */
    assert_int_equal(live_decide(f, "freno", "low", 0, 0, false, &res), 200);
    /* A snapshot without a bound has no such test. */
    f->s.stale_after_ms = 0;
    assert_int_equal(live_decide(f, "a", "low", BOOT, 1, false, &res), 200);
}

static void test_expired_lease(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    struct snap_leader l = {.is_leader = true, .lease_until_boot_ms = BOOT};
    f->s.leader = snap_leaders_new(&l);
    assert_int_equal(live_decide(f, "a", "low", BOOT - 1, BOOT - 1, false, &res), 200);
    assert_int_equal(live_decide(f, "a", "low", BOOT, BOOT, false, &res), 500);
    assert_string_equal(res.message, CHECK_MSG_LEASE_EXPIRED);
    assert_int_equal(live_decide(f, "a", "high", BOOT + 1, BOOT + 1, true, &res), 500);
    assert_string_equal(res.message, CHECK_MSG_LEASE_EXPIRED);
    /* No lease (raft, --force-leadership) or not the leader: no lease test. */
    f->s.leader->l.lease_until_boot_ms = 0;
    assert_int_equal(live_decide(f, "a", "low", BOOT, BOOT, false, &res), 200);
    f->s.leader->l.lease_until_boot_ms = BOOT;
    f->s.leader->l.is_leader = false;
    assert_int_equal(live_decide(f, "a", "low", BOOT, BOOT, false, &res), 200);
    snap_leaders_unref(f->s.leader);
    f->s.leader = NULL;
}

static void stale_config_fails(const char *json, const char *want)
{
    struct config *c = NULL;
    struct config_diag d = {0};
    assert_int_equal(config_load_string(json, "t.json", &c, &d), -EINVAL);
    assert_null(c);
    assert_int_equal(d.errors_len, 1);
    if (strcmp(d.errors[0], want) != 0)
        fail_msg("got error %s, want %s", d.errors[0], want);
    config_diag_deinit(&d);
}

static void test_stale_bound_config(void **state)
{
    (void)state;
    struct config *c = NULL;
    struct config_diag d = {0};
    assert_int_equal(config_load_string("{\"RaftDataDir\": \"/tmp/r\"}", "t.json", &c, &d), 0);
    assert_int_equal(c->check_stale_after_ms, 2000);
    config_free(c);
    config_diag_deinit(&d);
    assert_int_equal(config_load_string("{\"RaftDataDir\": \"/tmp/r\", "
                                        "\"CheckStaleAfterMillis\": 500}",
                                        "t.json", &c, &d),
                     0);
    assert_int_equal(c->check_stale_after_ms, 500);
    config_free(c);
    config_diag_deinit(&d);
    stale_config_fails("{\"RaftDataDir\": \"/tmp/r\", \"CheckStaleAfterMillis\": 499}",
                       "config t.json: CheckStaleAfterMillis: expected 500..60000, got 499");
    stale_config_fails("{\"RaftDataDir\": \"/tmp/r\", \"CheckStaleAfterMillis\": 60001}",
                       "config t.json: CheckStaleAfterMillis: expected 500..60000, got 60001");
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
            cmocka_unit_test_setup_teardown(test_stalled_loop, setup, teardown),
            cmocka_unit_test_setup_teardown(test_expired_lease, setup, teardown),
            cmocka_unit_test(test_stale_bound_config),
            cmocka_unit_test(test_json_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
