/* SPDX-License-Identifier: MIT */
/* Router: every documented path, parameters, methods, edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/router.h"

static void test_static_paths(void **state)
{
    (void)state;
    struct route r;
    static const struct {
        const char *path;
        enum route_id id;
    } cases[] = {
            {"/lb-check", ROUTE_LB_CHECK},
            {"/_ping", ROUTE_LB_CHECK},
            {"/status", ROUTE_LB_CHECK},
            {"/leader-check", ROUTE_LEADER_CHECK},
            {"/raft/leader", ROUTE_CONSENSUS_LEADER},
            {"/raft/state", ROUTE_CONSENSUS_STATE},
            {"/consensus/leader", ROUTE_CONSENSUS_LEADER},
            {"/consensus/state", ROUTE_CONSENSUS_STATE},
            {"/consensus/status", ROUTE_CONSENSUS_STATUS},
            {"/hostname", ROUTE_HOSTNAME},
            {"/aggregated-metrics", ROUTE_AGGREGATED_METRICS},
            {"/metrics-health", ROUTE_METRICS_HEALTH},
            {"/throttled-apps", ROUTE_THROTTLED_APPS},
            {"/recent-apps", ROUTE_RECENT_APPS},
            {"/skipped-hosts", ROUTE_SKIPPED_HOSTS},
            {"/debug/vars", ROUTE_DEBUG_VARS},
            {"/debug/metrics", ROUTE_DEBUG_VARS},
            {"/help", ROUTE_HELP},
            {"/metrics", ROUTE_PROMETHEUS},
            {"/config/memcache", ROUTE_CONFIG_MEMCACHE},
            {"/leader-check/", ROUTE_LEADER_CHECK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(router_match("GET", cases[i].path, &r), ROUTE_OK);
        assert_int_equal(r.id, cases[i].id);
    }
}

static void test_check_params(void **state)
{
    (void)state;
    struct route r;
    assert_int_equal(router_match("GET", "/check/archiver/mysql/main", &r), ROUTE_OK);
    assert_int_equal(r.id, ROUTE_CHECK);
    assert_string_equal(route_param(&r, "app"), "archiver");
    assert_string_equal(route_param(&r, "storeType"), "mysql");
    assert_string_equal(route_param(&r, "storeName"), "main");
    assert_null(route_param(&r, "threshold"));

    assert_int_equal(router_match("HEAD", "/check-read-if-exists/a/mysql/c/2.5", &r), ROUTE_OK);
    assert_int_equal(r.id, ROUTE_CHECK_READ_IF_EXISTS);
    assert_string_equal(route_param(&r, "threshold"), "2.5");
    assert_string_equal(route_param(&r, "storeName"), "c");

    assert_int_equal(router_match("GET", "/check-if-exists/a/mysql/c", &r), ROUTE_OK);
    assert_int_equal(r.id, ROUTE_CHECK_IF_EXISTS);
    assert_int_equal(router_match("GET", "/check-read/a/mysql/c/1", &r), ROUTE_OK);
    assert_int_equal(r.id, ROUTE_CHECK_READ);
}

static void test_throttle_variants(void **state)
{
    (void)state;
    struct route r;
    assert_int_equal(router_match("GET", "/throttle-app/x", &r), ROUTE_OK);
    assert_null(route_param(&r, "ttlMinutes"));
    assert_null(route_param(&r, "ratio"));
    assert_int_equal(router_match("GET", "/throttle-app/x/ratio/0.5", &r), ROUTE_OK);
    assert_string_equal(route_param(&r, "ratio"), "0.5");
    assert_null(route_param(&r, "ttlMinutes"));
    assert_int_equal(router_match("GET", "/throttle-app/x/ttl/30", &r), ROUTE_OK);
    assert_string_equal(route_param(&r, "ttlMinutes"), "30");
    assert_int_equal(router_match("GET", "/throttle-app/x/ttl/30/ratio/1", &r), ROUTE_OK);
    assert_string_equal(route_param(&r, "app"), "x");
    assert_string_equal(route_param(&r, "ttlMinutes"), "30");
    assert_string_equal(route_param(&r, "ratio"), "1");
    assert_int_equal(router_match("GET", "/skip-host/db7/ttl/5", &r), ROUTE_OK);
    assert_int_equal(r.id, ROUTE_SKIP_HOST);
    assert_string_equal(route_param(&r, "hostName"), "db7");
    assert_int_equal(router_match("GET", "/recent-apps/10", &r), ROUTE_OK);
    assert_string_equal(route_param(&r, "lastMinutes"), "10");
    assert_int_equal(router_match("GET", "/unthrottle-app/x", &r), ROUTE_OK);
    assert_int_equal(router_match("GET", "/recover-host/h", &r), ROUTE_OK);
}

static void test_not_found(void **state)
{
    (void)state;
    struct route r;
    const char *bad[] = {"/",
                         "",
                         "/nope",
                         "/check",
                         "/check/a",
                         "/check/a/mysql",
                         "/check/a/mysql/c/extra",
                         "/check//mysql/c",
                         "/throttle-app/x/ttl",
                         "/throttle-app/",
                         "/throttle-app/x/ratio/0.5/ttl/3",
                         "//lb-check",
                         "/lb-checkx",
                         "/debug"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(router_match("GET", bad[i], &r), ROUTE_NOT_FOUND);
}

static void test_methods_and_length(void **state)
{
    (void)state;
    struct route r;
    assert_int_equal(router_match("POST", "/lb-check", &r), ROUTE_METHOD_NOT_ALLOWED);
    assert_int_equal(router_match("HEAD", "/config/memcache", &r), ROUTE_METHOD_NOT_ALLOWED);
    assert_int_equal(router_match("GET", "/config/memcache", &r), ROUTE_OK);
    static char longpath[ROUTE_PATH_MAX + 100];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    assert_int_equal(router_match("GET", longpath, &r), ROUTE_TOO_LONG);
}

/* Names with control characters or bytes that are not UTF-8 (raw, or
 * percent-decoded by the server before routing) match no route, so a control
 * request cannot store them. */
static void test_unclean_paths(void **state)
{
    (void)state;
    struct route r;
    const char *bad[] = {
            "/throttle-app/a\rb",
            "/throttle-app/cr\r\ninjected",
            "/throttle-app/tab\tname",
            "/throttle-app/del\x7f",
            "/throttle-app/esc\x1b[31m",
            "/skip-host/h\nfake/ttl/5",
            "/check/a\x01/mysql/main",
            "/check/bad\xff\xfe"
            "app/mysql/main",
            "/throttle-app/\xc0\xaf",         /* overlong '/' */
            "/throttle-app/\xe0\x80\xaf",     /* overlong '/' */
            "/throttle-app/\xed\xa0\x80",     /* surrogate */
            "/throttle-app/\xf4\x90\x80\x80", /* above U+10FFFF */
            "/throttle-app/\xf5\x80\x80\x80",
            "/throttle-app/\x80",  /* lone continuation byte */
            "/throttle-app/a\xc3", /* cut short at the end */
            "/throttle-app/a\xe2\x82",
            "/throttle-app/a\xe2\x82x",
            "/throttle-app/\xc2\x85", /* C1 control (NEL) */
            "/lb-check\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(router_match("GET", bad[i], &r), ROUTE_NOT_FOUND);

    /* Well-formed UTF-8 of every length stays routable. */
    assert_int_equal(router_match("GET", "/throttle-app/caf\xc3\xa9", &r), ROUTE_OK);
    assert_string_equal(route_param(&r, "app"), "caf\xc3\xa9");
    assert_int_equal(router_match("GET", "/throttle-app/\xe2\x82\xac\xed\x9f\xbf", &r), ROUTE_OK);
    assert_int_equal(router_match("GET", "/check/\xf0\x9f\x98\x80/mysql/main", &r), ROUTE_OK);
    assert_string_equal(route_param(&r, "app"), "\xf0\x9f\x98\x80");
    assert_int_equal(router_match("GET", "/throttle-app/\xf4\x8f\xbf\xbf", &r), ROUTE_OK);
    assert_int_equal(router_match("GET", "/throttle-app/\xc2\xa0x y%~", &r), ROUTE_OK);
}

static void test_help_list(void **state)
{
    (void)state;
    const char *const *p = router_patterns();
    size_t n = 0;
    bool has_check = false;
    for (; p[n]; n++) {
        has_check = has_check || strcmp(p[n], "/check/:app/:storeType/:storeName") == 0;
        /* Every fixed path listed is one the router takes. */
        struct route r;
        if (strchr(p[n], ':') == NULL)
            assert_int_equal(router_match("GET", p[n], &r), ROUTE_OK);
    }
    assert_true(n > 25);
    assert_true(has_check);
    /* And our own endpoints are listed, the audit trail included. */
    const char *ours[] = {"/metrics",         "/app-rules",       "/dashboard",
                          "/metrics-history", "/cluster-metrics", "/audit-log"};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        bool listed = false;
        for (size_t k = 0; k < n; k++)
            listed = listed || strcmp(p[k], ours[i]) == 0;
        assert_true(listed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_static_paths),       cmocka_unit_test(test_check_params),
            cmocka_unit_test(test_throttle_variants),  cmocka_unit_test(test_not_found),
            cmocka_unit_test(test_methods_and_length), cmocka_unit_test(test_unclean_paths),
            cmocka_unit_test(test_help_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
