/* SPDX-License-Identifier: MIT */
/* Unit tests for inventory/inv_vitess: the tablet list parser fed vtctld
 * answers (numeric tablet types as vtctld's JSON encoder writes them, type
 * names too), with and without realtime stats, cell filtering, malformed
 * input; and the URL built from the settings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/err.h"
#include "inv_fixture.h"
#include "inventory/inv_vitess.h"

static int parse_file(const char *name, char **cells, size_t ncells, struct inv_hosts *out)
{
    size_t len;
    char *json = inv_fixture_read(name, &len);
    struct config_strv cv = {.v = cells, .len = ncells};
    struct err err = {0};
    int rc = inv_vitess_parse(json, len, &cv, out, &err);
    free(json);
    return rc;
}

static void test_replicas_no_stats(void **state)
{
    (void)state;
    struct inv_hosts l = {0};
    assert_int_equal(parse_file("vtctld-tablets-commerce-0.json", NULL, 0, &l), 0);
    /* PRIMARY (1), RDONLY (3) and BACKUP (6) are left out. */
    const char *want[] = {"db-zone1-101.example.net:17101", "db-zone2-200.example.net:17200"};
    inv_expect_hosts(&l, want, 2);
    inv_hosts_deinit(&l);

    char *zone2[] = {"zone2"};
    assert_int_equal(parse_file("vtctld-tablets-commerce-0.json", zone2, 1, &l), 0);
    const char *want2[] = {"db-zone2-200.example.net:17200"};
    inv_expect_hosts(&l, want2, 1);
    inv_hosts_deinit(&l);

    /* Blank cell names filter nothing; spaces around a name are ignored. */
    char *blank[] = {"", "  "};
    assert_int_equal(parse_file("vtctld-tablets-commerce-0.json", blank, 2, &l), 0);
    assert_int_equal(l.len, 2);
    inv_hosts_deinit(&l);
    char *spaced[] = {" zone1 ", "zone9"};
    assert_int_equal(parse_file("vtctld-tablets-commerce-0.json", spaced, 2, &l), 0);
    const char *want3[] = {"db-zone1-101.example.net:17101"};
    inv_expect_hosts(&l, want3, 1);
    inv_hosts_deinit(&l);
}

static void test_replicas_with_stats(void **state)
{
    (void)state;
    struct inv_hosts l = {0};
    assert_int_equal(parse_file("vtctld-tablets-with-stats.json", NULL, 0, &l), 0);
    /* 102 has a last_error, 200 lacks realtime, 202 has realtime null. */
    const char *want[] = {"db-101:3306", "db-201:3307"};
    inv_expect_hosts(&l, want, 2);
    inv_hosts_deinit(&l);
}

static void test_type_names_and_odd_tablets(void **state)
{
    (void)state;
    const char *json = "[{\"alias\":{\"cell\":\"c1\",\"uid\":1},\"type\":\"REPLICA\","
                       "\"mysql_hostname\":\"a\",\"mysql_port\":3306},"
                       "{\"alias\":{\"cell\":\"c1\",\"uid\":2},\"type\":\"replica\","
                       "\"mysql_hostname\":\"b\",\"mysql_port\":3306},"
                       "{\"alias\":{\"cell\":\"c1\",\"uid\":3},\"type\":\"PRIMARY\","
                       "\"mysql_hostname\":\"c\",\"mysql_port\":3306},"
                       "{\"type\":2,\"mysql_hostname\":\"nocell\",\"mysql_port\":3306},"
                       "{\"type\":2,\"mysql_hostname\":\"\",\"mysql_port\":3306},"
                       "{\"type\":2,\"mysql_hostname\":\"_\",\"mysql_port\":3306},"
                       "{\"type\":2,\"mysql_hostname\":\"noport\"},"
                       "{\"type\":2,\"mysql_hostname\":\"bigport\",\"mysql_port\":65536},"
                       "{\"type\":2,\"mysql_hostname\":\"strport\",\"mysql_port\":\"3306\"},"
                       "{\"type\":2,\"mysql_hostname\":\"a\",\"mysql_port\":3306},"
                       "{\"type\":2,\"mysql_hostname\":\"badstats\",\"mysql_port\":1,\"stats\":5},"
                       "{\"type\":2,\"mysql_hostname\":\"errnull\",\"mysql_port\":1,"
                       "\"stats\":{\"last_error\":null,\"realtime\":{}}},"
                       "7, null, \"x\", []]";
    struct inv_hosts l = {0};
    struct err err = {0};
    assert_int_equal(inv_vitess_parse(json, strlen(json), NULL, &l, &err), 0);
    const char *want[] = {"a:3306", "b:3306", "nocell:3306", "errnull:1"};
    inv_expect_hosts(&l, want, 4);
    inv_hosts_deinit(&l);

    /* With a cell filter, a tablet without an alias cell is left out. */
    char *c1[] = {"c1"};
    struct config_strv cv = {.v = c1, .len = 1};
    assert_int_equal(inv_vitess_parse(json, strlen(json), &cv, &l, &err), 0);
    const char *want2[] = {"a:3306", "b:3306"};
    inv_expect_hosts(&l, want2, 2);
    inv_hosts_deinit(&l);
}

static void test_errors(void **state)
{
    (void)state;
    struct inv_hosts l = {0};
    struct err err = {0};
    assert_int_equal(inv_vitess_parse("", 0, NULL, &l, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "tablets: invalid JSON at line"));
    assert_int_equal(inv_vitess_parse("[{]", 3, NULL, &l, &err), -EINVAL);
    assert_int_equal(inv_vitess_parse("{\"a\":1}", 7, NULL, &l, &err), -EINVAL);
    assert_string_equal(err.msg, "tablets: expected a JSON array of tablets");
    assert_int_equal(inv_vitess_parse("null", 4, NULL, &l, &err), -EINVAL);
    assert_int_equal(inv_vitess_parse("[]", 2, NULL, &l, &err), 0);
    assert_int_equal(l.len, 0);
    /* A NUL inside the text is invalid JSON, not a truncation. */
    assert_int_equal(inv_vitess_parse("[]\0[", 4, NULL, &l, &err), -EINVAL);
}

static void test_url(void **state)
{
    (void)state;
    struct config_cluster cc = {
            .vitess_api = "http://vtctld:15000/",
            .vitess_keyspace = "commerce",
            .vitess_shard = "-80",
    };
    char *u = inv_vitess_url(&cc);
    assert_string_equal(u, "http://vtctld:15000/api/keyspace/commerce/tablets/-80");
    free(u);

    char *cells[] = {"zone1", " ", " zone 2"};
    cc.vitess_api = "https://vtctld.example.com/api//";
    cc.vitess_shard = "";
    cc.vitess_cells = (struct config_strv){.v = cells, .len = 3};
    u = inv_vitess_url(&cc);
    assert_string_equal(
            u, "https://vtctld.example.com/api/keyspace/commerce/tablets/?cells=zone1%2Czone%202");
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_replicas_no_stats),
            cmocka_unit_test(test_replicas_with_stats),
            cmocka_unit_test(test_type_names_and_odd_tablets),
            cmocka_unit_test(test_errors),
            cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
