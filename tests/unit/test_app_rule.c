/* SPDX-License-Identifier: MIT */
/* Per-app rules: parsing and checking a rule from a control request and
 * from stored text, its canonical text, the snapshot lookup, and the check
 * decision a rule shapes (absolute threshold, factor, subset, exempt), with
 * the answer body that explains it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/xalloc.h"
#include "http/check_body.h"
#include "snapshot/app_rule.h"
#include "snapshot/check.h"
#include "snapshot/snapshot.h"

#include "snap_build.h"

#define NOW 1700000000000ull

static int from_query(struct app_rule *r, const char *exempt, const char *metrics,
                      const char *metric, const char *threshold, const char *factor, char *msg)
{
    struct err err = {0};
    int rc = app_rule_from_query(r, exempt, metrics, metric, threshold, factor, &err);
    if (msg != NULL)
        snprintf(msg, 256, "%s", err.msg);
    return rc;
}

static const char *text_of(const struct app_rule *r, char *buf)
{
    assert_true(app_rule_format(r, buf, APP_RULE_TEXT_MAX) > 0);
    return buf;
}

static void test_query_forms(void **state)
{
    (void)state;
    struct app_rule r;
    char t[APP_RULE_TEXT_MAX];
    /* One number for the default metric, or for the metric named. */
    assert_int_equal(from_query(&r, NULL, NULL, NULL, "2", NULL, NULL), 0);
    assert_string_equal(text_of(&r, t), "{\"Thresholds\":{\"default\":2}}");
    assert_int_equal(from_query(&r, NULL, NULL, "threads", NULL, "1.5", NULL), 0);
    assert_string_equal(text_of(&r, t), "{\"Factors\":{\"threads\":1.5}}");
    /* Lists, a subset, both kinds. */
    assert_int_equal(
            from_query(&r, NULL, "default,threads", NULL, "default:0.5", "threads:2", NULL), 0);
    assert_string_equal(text_of(&r, t), "{\"Metrics\":[\"default\",\"threads\"],\"Thresholds\":{"
                                        "\"default\":0.5},\"Factors\":{\"threads\":2}}");
    assert_true(app_rule_applies(&r, "threads"));
    assert_false(app_rule_applies(&r, "hll"));
    assert_non_null(app_rule_limit_of(&r, "default"));
    assert_null(app_rule_limit_of(&r, "hll"));
    /* Exempt. */
    assert_int_equal(from_query(&r, "1", NULL, NULL, NULL, NULL, NULL), 0);
    assert_string_equal(text_of(&r, t), "{\"Exempt\":true}");
    assert_false(app_rule_applies(&r, "default"));
    assert_int_equal(from_query(&r, "true", NULL, NULL, NULL, NULL, NULL), 0);
    assert_true(r.exempt);
}

static void test_query_refusals(void **state)
{
    (void)state;
    struct app_rule r;
    char msg[256];
    struct {
        const char *exempt, *metrics, *metric, *threshold, *factor, *want;
    } bad[] = {
            {NULL, NULL, NULL, NULL, NULL, "an empty rule"},
            {"0", NULL, NULL, NULL, NULL, "an empty rule"},
            {"yes", NULL, NULL, NULL, NULL, "exempt \"yes\" is not 1, 0, true or false"},
            {"1", "a", NULL, NULL, NULL, "exempt excludes"},
            {"1", NULL, NULL, "2", NULL, "exempt excludes"},
            {NULL, NULL, "lag", NULL, NULL, "metric names the metric"},
            {NULL, NULL, NULL, "0x10", NULL, "\"0x10\" is not a decimal number"},
            {NULL, NULL, NULL, "1e3x", NULL, "is not a decimal number"},
            {NULL, NULL, NULL, "nan", NULL, "is not a decimal number"},
            {NULL, NULL, NULL, "-1", NULL, "threshold of default must be in [0, 1e+15]"},
            {NULL, NULL, NULL, NULL, "0", "factor of default must be above 0"},
            {NULL, NULL, NULL, NULL, "1000001", "factor of default must be above 0"},
            {NULL, NULL, "a b", "1", NULL, "metric name \"a b\" is not"},
            {NULL, NULL, NULL, "a:1,b", NULL, "a list needs metric:number items"},
            {NULL, NULL, NULL, "a:1,a:2", NULL, "metric a is given a threshold or factor twice"},
            {NULL, NULL, NULL, "a:1", "a:2", "metric a is given a threshold or factor twice"},
            {NULL, NULL, "a", "1", "2", "threshold and factor for the same metric"},
            {NULL, "a,a", NULL, NULL, NULL, "metrics: a is named twice"},
            {NULL, "a,,b", NULL, NULL, NULL, "metric name \"\" is not"},
            {NULL, "", NULL, NULL, NULL, "metric name \"\" is not"},
            {NULL, "a,b,c,d,e,f,g,h,i,j", NULL, NULL, NULL, "metrics: more than 9 names"},
            {NULL, "a", NULL, "b:1", NULL, "b has a threshold or factor but is not in the rule's"},
            {NULL, "a;drop", NULL, NULL, NULL, "is not 1 to 32 of [A-Za-z0-9_-]"},
            {NULL, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, NULL, NULL, "longer than 32 bytes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = from_query(&r, bad[i].exempt, bad[i].metrics, bad[i].metric, bad[i].threshold,
                            bad[i].factor, msg);
        if (rc != -EINVAL || strstr(msg, bad[i].want) == NULL || strncmp(msg, "app-rule: ", 10))
            fail_msg("case %zu: rc %d, message \"%s\", wanted \"%s\"", i, rc, msg, bad[i].want);
        assert_null(strchr(msg, '\n'));
    }
}

static void test_text_round_trip_and_hostile(void **state)
{
    (void)state;
    struct app_rule r, back;
    char t[APP_RULE_TEXT_MAX], t2[APP_RULE_TEXT_MAX];
    struct err err = {0};
    /* The largest rule fits its text and reads back the same. */
    assert_int_equal(from_query(&r, NULL,
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa5,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa6,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa7,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa8,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa9",
                                NULL,
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1:0.000123456789012345,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2:123456789012345,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3:1.5,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4:1.25e-7",
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa5:0.123456789012345,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa6:999999.99999999,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa7:3,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa8:4,"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa9:5",
                                NULL),
                     0);
    size_t n = app_rule_format(&r, t, sizeof(t));
    assert_true(n > 0 && n < APP_RULE_TEXT_MAX);
    assert_int_equal(app_rule_parse(t, n, &back, &err), 0);
    assert_string_equal(text_of(&back, t2), t);
    assert_int_equal(back.nlimits, 9);
    assert_true(app_rule_equal(&r, &back));
    back.limits[8].value = 6;
    assert_false(app_rule_equal(&r, &back));
    back.limits[8].value = 5;
    back.limits[8].factor = false;
    assert_false(app_rule_equal(&r, &back));
    assert_true(back.limits[0].value == 0.000123456789012345);

    /* Stored text is hostile: each of these is refused with a reason. */
    const char *bad[] = {
            "",
            "[]",
            "{\"Exempt\":1}",
            "{\"Exempt\":true,\"Metrics\":[\"a\"]}",
            "{}",
            "{\"Metrics\":\"a\"}",
            "{\"Metrics\":[1]}",
            "{\"Metrics\":[\"a\\u0000b\"]}",
            "{\"Thresholds\":{\"a\":\"1\"}}",
            "{\"Thresholds\":{\"a\":-1}}",
            "{\"Factors\":{\"a\":0}}",
            "{\"Thresholds\":{\"a\":1},\"Factors\":{\"a\":1}}",
            "{\"Thresholds\":{\"a\":1,\"a\":2}}",
            "{\"Thresholds\":{\"a b\":1}}",
            "{\"Ratio\":1}",
            "{\"Metrics\":[\"a\"],\"Thresholds\":{\"b\":1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&err);
        if (app_rule_parse(bad[i], strlen(bad[i]), &back, &err) != -EINVAL || err.msg[0] == 0)
            fail_msg("case %zu (%s) was not refused", i, bad[i]);
    }
    char big[APP_RULE_TEXT_MAX + 10];
    memset(big, ' ', sizeof(big));
    assert_int_equal(app_rule_parse(big, sizeof(big), &back, &err), -EINVAL);
}

/* ---- the check decision ---- */

struct fixture {
    struct snapshot s;
};

static struct snap_rule rule(const char *key, uint64_t expire_at_ms, const char *exempt,
                             const char *metrics, const char *metric, const char *threshold,
                             const char *factor)
{
    struct snap_rule r = {.key = xstrdup(key), .expire_at_ms = expire_at_ms};
    assert_int_equal(from_query(&r.rule, exempt, metrics, metric, threshold, factor, NULL), 0);
    return r;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct snap_metric *mv = calloc(3, sizeof(*mv));
    /* Lag 1.5 s against 1 s; threads 50 against 64. */
    mv[0] = snap_build_metric("main", FRENO_METRIC_DEFAULT, true, true, 1.5, 1, NULL);
    mv[1] = snap_build_metric("main", "threads", true, true, 50, 64, NULL);
    mv[2] = snap_build_metric("solo", FRENO_METRIC_DEFAULT, true, true, 1.5, 1, NULL);
    f->s.clusters = snap_build_clusters(mv, 3);
    struct snap_rule *rv = calloc(8, sizeof(*rv));
    /* Sorted by key. */
    rv[0] = rule("archiver", 0, NULL, NULL, NULL, NULL, "0.5");
    rv[1] = rule("expired", NOW - 1, "1", NULL, NULL, NULL, NULL);
    rv[2] = rule("gh-ost", 0, NULL, NULL, NULL, "2", NULL);
    rv[3] = rule("gh-ost/solo", NOW + 60000, NULL, NULL, NULL, "1.2", NULL);
    rv[4] = rule("lazy", 0, "1", NULL, NULL, NULL, NULL);
    rv[5] = rule("only-threads", 0, NULL, "threads", NULL, "threads:40", NULL);
    rv[6] = rule("throttled", 0, "1", NULL, NULL, NULL, NULL);
    rv[7] = rule("twice", 0, NULL, NULL, NULL, NULL, "default:2,threads:0.5");
    f->s.rules = snap_rules_new_packed(rv, 8, NULL);
    struct snap_app *av = calloc(1, sizeof(*av));
    av[0] = (struct snap_app){xstrdup("throttled"), 0, 1};
    f->s.apps = snap_apps_new(av, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    snapshot_parts_unref(&f->s);
    free(f);
    return 0;
}

static int decide(struct fixture *f, const char *app, const char *store, struct check_result *res)
{
    struct check_request r = {.app = app, .store_type = "mysql", .store_name = store};
    check_decide(&f->s, &r, NOW, 0.5, res);
    return res->status;
}

static const char *body(const char *app, const char *store, const struct check_result *res,
                        char *buf, size_t size)
{
    struct check_request r = {.app = app, .store_type = "mysql", .store_name = store};
    assert_true(check_body_render(buf, size, &r, res) > 0);
    return buf;
}

static void test_lookup(void **state)
{
    struct fixture *f = *state;
    assert_non_null(snapshot_find_rule(&f->s, "gh-ost"));
    assert_non_null(snapshot_find_rule(&f->s, "gh-ost/solo"));
    assert_null(snapshot_find_rule(&f->s, "gh"));
    assert_null(snapshot_find_rule(&f->s, "zzz"));
    assert_null(snapshot_find_rule(NULL, "gh-ost"));
}

static void test_absolute_and_factor(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    char b[CHECK_BODY_MAX];
    /* No rule: lag 1.5 is over 1, and the answer has no rule field. */
    assert_int_equal(decide(f, "other", "main", &res), 429);
    assert_null(res.rule);
    assert_null(strstr(body("other", "main", &res, b, sizeof(b)), "Rule"));
    assert_null(strstr(b, "ThresholdFrom"));
    /* gh-ost goes on up to 2 s. */
    assert_int_equal(decide(f, "gh-ost", "main", &res), 200);
    assert_non_null(res.rule);
    assert_string_equal(res.rule->key, "gh-ost");
    assert_true(res.threshold == 2);
    assert_int_equal(res.metrics[0].threshold_from, CHECK_THRESHOLD_RULE);
    assert_int_equal(res.metrics[1].threshold_from, CHECK_THRESHOLD_CLUSTER);
    body("gh-ost", "main", &res, b, sizeof(b));
    assert_non_null(
            strstr(b, "{\"StatusCode\":200,\"Value\":1.5,\"Threshold\":2,\"Message\":\"\""));
    assert_non_null(strstr(b, "\"Rule\":{\"Key\":\"gh-ost\",\"Exempt\":false}"));
    assert_non_null(strstr(b, "\"ThresholdFrom\":\"rule\""));
    assert_non_null(strstr(b, "\"ThresholdFrom\":\"cluster\""));
    /* A scoped rule wins on its store: 1.2 there. */
    assert_int_equal(decide(f, "gh-ost", "solo", &res), 429);
    assert_string_equal(res.rule->key, "gh-ost/solo");
    assert_true(res.threshold == 1.2);
    body("gh-ost", "solo", &res, b, sizeof(b));
    assert_non_null(strstr(b, "above the threshold 1.2 set by app rule gh-ost/solo"));
    /* The archiver stops at half the cluster's threshold. */
    assert_int_equal(decide(f, "archiver", "main", &res), 429);
    assert_true(res.threshold == 0.5);
    assert_int_equal(res.metrics[0].threshold_from, CHECK_THRESHOLD_RULE_FACTOR);
    assert_non_null(strstr(body("archiver", "main", &res, b, sizeof(b)), "\"Threshold\":0.5,"));
    assert_non_null(strstr(b, "\"ThresholdFrom\":\"rule-factor\""));
    /* Factors per metric: lag at 2 passes, threads at 32 refuses. */
    assert_int_equal(decide(f, "twice", "main", &res), 429);
    assert_string_equal(res.metrics[res.decided_by].m->metric, "threads");
    assert_true(res.metrics[0].threshold == 2 && res.metrics[1].threshold == 32);
}

static void test_subset_exempt_expired(void **state)
{
    struct fixture *f = *state;
    struct check_result res;
    char b[CHECK_BODY_MAX];
    /* Only threads applies, at 40: 50 refuses, lag is not judged. */
    assert_int_equal(decide(f, "only-threads", "main", &res), 429);
    assert_int_equal(res.nmetrics, 1);
    assert_string_equal(res.metrics[0].m->metric, "threads");
    assert_true(res.threshold == 40);
    /* On a cluster without threads no metric applies. */
    assert_int_equal(decide(f, "only-threads", "solo", &res), 200);
    assert_int_equal(res.nmetrics, 0);
    /* Exempt: passes whatever the metrics say... */
    assert_int_equal(decide(f, "lazy", "main", &res), 200);
    assert_int_equal(res.nmetrics, 0);
    assert_non_null(strstr(body("lazy", "main", &res, b, sizeof(b)), "\"Exempt\":true"));
    /* ...but still obeys /throttle-app. */
    assert_int_equal(decide(f, "throttled", "main", &res), 417);
    /* An expired rule is no rule. */
    assert_int_equal(decide(f, "expired", "main", &res), 429);
    assert_null(res.rule);
    /* A /check-read threshold is the client's own and wins over a rule. */
    struct check_request r = {.app = "gh-ost",
                              .store_type = "mysql",
                              .store_name = "main",
                              .read_check = true,
                              .override_threshold = 1.4};
    check_decide(&f->s, &r, NOW, 0.5, &res);
    assert_int_equal(res.status, 429);
    assert_int_equal(res.metrics[0].threshold_from, CHECK_THRESHOLD_READ);
    /* The daemon's own apps take no rule. */
    assert_int_equal(decide(f, CHECK_APP_FRENO, "main", &res), 429);
    assert_null(res.rule);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_query_forms),
            cmocka_unit_test(test_query_refusals),
            cmocka_unit_test(test_text_round_trip_and_hostile),
            cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
            cmocka_unit_test_setup_teardown(test_absolute_and_factor, setup, teardown),
            cmocka_unit_test_setup_teardown(test_subset_exempt_expired, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
