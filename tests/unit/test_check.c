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

/* One of the Metrics of @cluster, asking for Retry-After @retry_s. */
static struct snap_metric extra(const char *cluster, const char *name, bool has, bool ok, double v,
                                double thr, const char *err, unsigned retry_s)
{
    struct snap_metric m = snap_build_metric(cluster, name, has, ok, v, thr, err);
    m.retry_after_s = retry_s;
    return m;
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
    struct snap_metric *mv = calloc(18, sizeof(*mv));
    /* sorted by cluster name, each cluster's default metric first */
    mv[0] = metric("broken", true, false, 0, 1, "replication not running");
    mv[1] = metric("fresh", false, false, 0, 1, NULL);
    mv[2] = metric("high", true, true, 2.5, 1, NULL);
    mv[3] = metric("low", true, true, 0.2, 1, NULL);
    /* Clusters with Metrics: each name says the answer. */
    mv[4] = metric("m200", true, true, 0.5, 1, NULL);
    mv[5] = extra("m200", "threads", true, true, 10, 64, NULL, 1);
    mv[6] = metric("m404", true, true, 0.5, 1, NULL);
    mv[7] = extra("m404", "a", false, false, 0, 5, NULL, 1);
    mv[8] = metric("m429", true, true, 0.5, 1, NULL);
    mv[9] = extra("m429", "a", true, true, 70, 64, NULL, 2);
    mv[10] = extra("m429", "b", true, true, 80, 64, NULL, 3);
    mv[11] = extra("m429", "c", true, true, 8, 64, NULL, 9);
    mv[12] = metric("m500", true, true, 2, 1, NULL);
    mv[13] = extra("m500", "a", true, false, 0, 5, "boom", 4);
    mv[14] = extra("m500", "b", false, false, 0, 5, NULL, 1);
    mv[15] = metric("m501", true, true, 2, 1, NULL);
    mv[16] = extra("m501", "a", false, false, 0, 5, NULL, 1);
    mv[17] = extra("m501", "b", true, true, 1, 5, NULL, 1);
    f->s.clusters = snap_build_clusters(mv, 18);
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

/* ---- several metrics (docs/api.md#several-metrics) ---- */

static int decide_metric(struct fixture *f, const char *app, const char *store, const char *metric,
                         struct check_result *res)
{
    struct check_request r = {
            .app = app, .store_type = "mysql", .store_name = store, .metric = metric};
    check_decide(&f->s, &r, NOW, 0.5, res);
    return res->status;
}

/* The metric of @res that decided, by name. */
static const char *decided_name(const struct check_result *res)
{
    return res->decided_by < 0 ? "" : res->metrics[res->decided_by].m->metric;
}

static void test_worst_metric_decides(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    /* Every metric within its threshold: 200, the original fields show the
     * default metric. */
    assert_int_equal(decide(f, "a", "mysql", "m200", false, 0.5, &res), 200);
    assert_true(res.details);
    assert_int_equal(res.reason, CHECK_REASON_NONE);
    assert_string_equal(decided_name(&res), FRENO_METRIC_DEFAULT);
    assert_string_equal(res.value_json, "0.5");
    assert_string_equal(res.threshold_json, "1");
    assert_string_equal(res.message, "");
    assert_int_equal(res.retry_after_s, 0);
    assert_int_equal(res.nmetrics, 2);
    assert_int_equal(res.metrics[1].status, 200);
    assert_true(res.metrics[1].threshold == 64);

    /* Two over their threshold: the first in the cluster's order decides,
     * Retry-After is the longest any refusing metric asks. */
    assert_int_equal(decide(f, "a", "mysql", "m429", false, 0.5, &res), 429);
    assert_int_equal(res.reason, CHECK_REASON_METRIC);
    assert_string_equal(decided_name(&res), "a");
    assert_string_equal(res.value_json, "70");
    assert_string_equal(res.threshold_json, "64");
    assert_string_equal(res.message, "Threshold exceeded");
    assert_int_equal(res.retry_after_s, 3);
    assert_int_equal(res.metrics[0].status, 200);
    assert_true(res.metrics[1].over && res.metrics[2].over && !res.metrics[3].over);
    assert_int_equal(res.metrics[3].status, 200);

    /* An error beats a 429 and a missing value. */
    assert_int_equal(decide(f, "a", "mysql", "m500", false, 0.5, &res), 500);
    assert_string_equal(decided_name(&res), "a");
    assert_string_equal(res.message, "boom");
    assert_string_equal(res.value_json, "0");
    assert_string_equal(res.threshold_json, "5");
    assert_int_equal(res.metrics[0].status, 429);
    assert_int_equal(res.metrics[2].status, 404);
    assert_int_equal(res.retry_after_s, 4);

    /* A 429 beats a missing value... */
    assert_int_equal(decide(f, "a", "mysql", "m501", false, 0.5, &res), 429);
    assert_string_equal(decided_name(&res), FRENO_METRIC_DEFAULT);
    assert_int_equal(res.metrics[1].status, 404);
    /* ...which beats 200: the cluster is not all there. */
    assert_int_equal(decide(f, "a", "mysql", "m404", false, 0.5, &res), 404);
    assert_string_equal(decided_name(&res), "a");
    assert_string_equal(res.message, "No such metric");
    assert_string_equal(res.value_json, "0");
    assert_string_equal(res.threshold_json, "0");
    assert_int_equal(res.retry_after_s, 0);
    struct check_request r = {
            .app = "a", .store_type = "mysql", .store_name = "m404", .ok_if_not_exists = true};
    check_decide(&f->s, &r, NOW, 0.5, &res);
    assert_int_equal(res.status, 200);
}

static void test_one_metric_alone(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    assert_int_equal(decide_metric(f, "a", "m429", FRENO_METRIC_DEFAULT, &res), 200);
    assert_int_equal(res.nmetrics, 1);
    assert_string_equal(res.value_json, "0.5");
    assert_int_equal(decide_metric(f, "a", "m429", "c", &res), 200);
    assert_string_equal(res.value_json, "8");
    assert_int_equal(decide_metric(f, "a", "m429", "b", &res), 429);
    assert_int_equal(res.retry_after_s, 3);
    assert_int_equal(decide_metric(f, "a", "m500", "b", &res), 404);
    assert_int_equal(res.reason, CHECK_REASON_METRIC);
    /* A name the cluster does not have. */
    assert_int_equal(decide_metric(f, "a", "m429", "nope", &res), 404);
    assert_int_equal(res.reason, CHECK_REASON_NO_METRIC);
    assert_int_equal(res.nmetrics, 0);
    assert_int_equal(decide_metric(f, "a", "m429", "", &res), 404);
    /* Asking for a metric makes the answer explain itself, even on a cluster
     * of one metric. */
    assert_int_equal(decide(f, "a", "mysql", "low", false, 0.5, &res), 200);
    assert_false(res.details);
    assert_int_equal(decide_metric(f, "a", "low", FRENO_METRIC_DEFAULT, &res), 200);
    assert_true(res.details);
    assert_int_equal(decide_metric(f, "a", "nope", "x", &res), 404);
    assert_int_equal(res.reason, CHECK_REASON_NO_CLUSTER);
    assert_true(res.details);

    /* /check-read's threshold replaces the metric read: the one asked for,
     * else the default one. */
    struct check_request r = {.app = "a",
                              .store_type = "mysql",
                              .store_name = "m429",
                              .read_check = true,
                              .override_threshold = 0.25};
    check_decide(&f->s, &r, NOW, 0.5, &res);
    assert_int_equal(res.status, 429);
    assert_int_equal(res.metrics[0].status, 429);
    assert_null(res.metrics[0].threshold_json);
    assert_true(res.metrics[1].threshold == 64);
    r.override_threshold = 100;
    check_decide(&f->s, &r, NOW, 0.5, &res);
    assert_int_equal(res.status, 429); /* a and b still over 64 */
    r.metric = "b";
    check_decide(&f->s, &r, NOW, 0.5, &res);
    assert_int_equal(res.status, 200);
    assert_true(res.threshold == 100);
    assert_null(res.threshold_json);
}

static void test_low_priority_per_metric(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    /* A normal 429 marks every metric over its threshold, not the others. */
    assert_int_equal(decide(f, "app", "mysql", "m429", false, 0.5, &res), 429);
    const struct snap_cluster *c = snapshot_find_cluster(&f->s, "m429");
    assert_int_equal(atomic_load(&c->metrics[0].live->normal_throttled_at_ms), 0);
    assert_int_equal(atomic_load(&c->metrics[1].live->normal_throttled_at_ms), NOW);
    assert_int_equal(atomic_load(&c->metrics[2].live->normal_throttled_at_ms), NOW);
    assert_int_equal(atomic_load(&c->metrics[3].live->normal_throttled_at_ms), 0);
    /* Low priority is refused while a metric that applies is marked; the
     * window's end is the Retry-After. */
    struct check_request r = {
            .app = "x", .store_type = "mysql", .store_name = "m429", .low_priority = true};
    check_decide(&f->s, &r, NOW + 400, 0.5, &res);
    assert_int_equal(res.status, 417);
    assert_int_equal(res.reason, CHECK_REASON_LOW_PRIORITY);
    assert_string_equal(decided_name(&res), "a");
    assert_int_equal(res.retry_after_s, 1);
    r.metric = "c";
    check_decide(&f->s, &r, NOW + 400, 0.5, &res);
    assert_int_equal(res.status, 200);
    r.metric = "b";
    check_decide(&f->s, &r, NOW + 400, 0.5, &res);
    assert_int_equal(res.status, 417);
    assert_string_equal(decided_name(&res), "b");
    /* A 500 answer marks nothing, though a metric is over. */
    assert_int_equal(decide(f, "app", "mysql", "m500", false, 0.5, &res), 500);
    c = snapshot_find_cluster(&f->s, "m500");
    assert_int_equal(atomic_load(&c->metrics[0].live->normal_throttled_at_ms), 0);
}

static void test_retry_after(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    /* A throttle that always denies: the time it has left, rounded up. */
    assert_int_equal(decide(f, "always", "mysql", "low", false, 0.99, &res), 417);
    assert_int_equal(res.reason, CHECK_REASON_THROTTLED);
    assert_string_equal(res.throttle->key, "always");
    assert_int_equal(res.retry_after_s, CHECK_RETRY_UNTIL_UNTHROTTLED_S);
    assert_int_equal(decide(f, "scoped", "mysql", "low", false, 0.5, &res), 417);
    assert_string_equal(res.throttle->key, "scoped/low");
    /* A ratio below 1: the next check may pass. */
    assert_int_equal(decide(f, "half", "mysql", "low", false, 0.1, &res), 417);
    assert_int_equal(res.retry_after_s, 1);
    /* Metrics: their own interval, at least a second. */
    assert_int_equal(decide(f, "a", "mysql", "high", false, 0.5, &res), 429);
    assert_int_equal(res.retry_after_s, 1);
    assert_int_equal(decide(f, "a", "mysql", "broken", false, 0.5, &res), 500);
    assert_int_equal(res.retry_after_s, 1);
    assert_int_equal(decide(f, "a", "mysql", "fresh", false, 0.5, &res), 404);
    assert_int_equal(res.retry_after_s, 0);
    assert_int_equal(decide(f, "a", "mysql", "low", false, 0.5, &res), 200);
    assert_int_equal(res.retry_after_s, 0);
    /* Stale state: a second. */
    f->s.stale_after_ms = 2000;
    struct check_request r = {.app = "a",
                              .store_type = "mysql",
                              .store_name = "low",
                              .now_boot_ms = 100000,
                              .loop_alive_boot_ms = 1};
    check_decide(&f->s, &r, NOW, 0.5, &res);
    assert_int_equal(res.status, 500);
    assert_int_equal(res.reason, CHECK_REASON_STALE);
    assert_int_equal(res.retry_after_s, 1);
}

/* Throttles with an expiry: seconds left, rounded up. */
static void test_retry_after_ttl(void **state)
{
    (void)state;
    struct snapshot s = {0};
    struct snap_app *av = calloc(3, sizeof(*av));
    av[0] = (struct snap_app){xstrdup("a1"), NOW + 1, 1};
    av[1] = (struct snap_app){xstrdup("a2"), NOW + 1500, 1};
    av[2] = (struct snap_app){xstrdup("a3"), NOW + 600000, 1};
    s.apps = snap_apps_new(av, 3);
    static const struct {
        const char *app;
        unsigned want;
    } cases[] = {{"a1", 1}, {"a2", 2}, {"a3", 600}};
    for (size_t i = 0; i < 3; i++) {
        struct check_request r = {.app = cases[i].app, .store_type = "mysql", .store_name = "x"};
        struct check_result res;
        check_decide(&s, &r, NOW, 0.5, &res);
        assert_int_equal(res.status, 417);
        assert_int_equal(res.retry_after_s, cases[i].want);
        assert_false(res.details); /* no key asks for it: the answer is the original's */
    }
    s.check_details = true;
    struct check_request r = {.app = "a3", .store_type = "mysql", .store_name = "x"};
    struct check_result res;
    check_decide(&s, &r, NOW, 0.5, &res);
    assert_true(res.details);
    snap_apps_unref(s.apps);
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
            cmocka_unit_test_setup_teardown(test_worst_metric_decides, setup, teardown),
            cmocka_unit_test_setup_teardown(test_one_metric_alone, setup, teardown),
            cmocka_unit_test_setup_teardown(test_low_priority_per_metric, setup, teardown),
            cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
            cmocka_unit_test(test_retry_after_ttl),
            cmocka_unit_test(test_stale_bound_config),
            cmocka_unit_test(test_json_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
