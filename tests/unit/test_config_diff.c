/* SPDX-License-Identifier: MIT */
/* Unit tests for what a reload compares (config/config_diff.c): clusters
 * added, removed and changed by name, every cluster setting and inherited
 * default counting as a change, top-level keys split into live ones and
 * ones that need a restart by the key table, and the running values those
 * keep. Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/config_keys.h"
#include "core/xalloc.h"

/* A config with clusters a, b and c; @top is spliced into the top level,
 * @mysql into Stores.MySQL and @b into cluster b (each "" or members with a
 * trailing comma). */
static struct config *load(const char *top, const char *mysql, const char *b)
{
    char *json = xasprintf(
            "{%s \"RaftDataDir\": \"/var/lib/freno\", \"Stores\": {\"MySQL\": {%s"
            " \"User\": \"u\", \"Password\": \"p\", \"ThrottleThreshold\": 1.0,"
            " \"Clusters\": {"
            "  \"a\": {\"StaticHostsSettings\": {\"Hosts\": [\"h1\"]}},"
            "  \"b\": {%s \"StaticHostsSettings\": {\"Hosts\": [\"h2\", \"h3\"]}},"
            "  \"c\": {\"HAProxySettings\": {\"Host\": \"lb\", \"Port\": 80, \"PoolName\": \"p\"}}"
            "}}}}",
            top, mysql, b);
    struct config *c = NULL;
    struct config_diag d = {0};
    int rc = config_load_string(json, "test", &c, &d);
    for (size_t i = 0; i < d.errors_len; i++)
        print_message("error: %s\n", d.errors[i]);
    assert_int_equal(rc, 0);
    config_diag_deinit(&d);
    free(json);
    return c;
}

static bool listed(const char *const *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], name) == 0)
            return true;
    return false;
}

static size_t total(const struct config_diff *d)
{
    return d->added_len + d->removed_len + d->changed_len + d->live_len + d->restart_len;
}

static void test_same_config_no_change(void **state)
{
    (void)state;
    struct config *a = load("\"ControlToken\": \"t\",", "", "");
    struct config *b = load("\"ControlToken\": \"t\",", "", "");
    struct config_diff d = {0};
    config_diff(a, b, &d);
    assert_int_equal(total(&d), 0);
    config_diff_deinit(&d);
    config_free(a);
    config_free(b);
}

static void test_clusters_added_removed_changed(void **state)
{
    (void)state;
    struct config *old = load("", "", "");
    struct config *next = NULL;
    struct config_diag diag = {0};
    /* a removed, b the same, c's pool changed, d added. */
    assert_int_equal(
            config_load_string(
                    "{\"RaftDataDir\": \"/var/lib/freno\", \"Stores\": {\"MySQL\": {"
                    " \"User\": \"u\", \"Password\": \"p\", \"ThrottleThreshold\": 1.0,"
                    " \"Clusters\": {"
                    "  \"b\": {\"StaticHostsSettings\": {\"Hosts\": [\"h2\", \"h3\"]}},"
                    "  \"c\": {\"HAProxySettings\": {\"Host\": \"lb\", \"Port\": 80, \"PoolName\": \"q\"}},"
                    "  \"d\": {\"StaticHostsSettings\": {\"Hosts\": [\"h4\"]}}"
                    "}}}}",
                    "test", &next, &diag),
            0);
    config_diag_deinit(&diag);
    struct config_diff d = {0};
    config_diff(old, next, &d);
    assert_int_equal(d.added_len, 1);
    assert_string_equal(d.added[0], "d");
    assert_int_equal(d.removed_len, 1);
    assert_string_equal(d.removed[0], "a");
    assert_int_equal(d.changed_len, 1);
    assert_string_equal(d.changed[0], "c");
    assert_int_equal(d.live_len + d.restart_len, 0);
    config_diff_deinit(&d);
    config_free(old);
    config_free(next);
}

/* Clusters at either end of the name order. */
static void test_clusters_at_the_ends(void **state)
{
    (void)state;
    struct config *three = load("", "", "");
    struct config *one = NULL;
    struct config_diag diag = {0};
    assert_int_equal(config_load_string("{\"RaftDataDir\": \"/r\", \"Stores\": {\"MySQL\": {"
                                        " \"User\": \"u\", \"Password\": \"p\","
                                        " \"ThrottleThreshold\": 1.0, \"Clusters\": {"
                                        "  \"b\": {\"StaticHostsSettings\": {\"Hosts\": [\"h2\"]}}"
                                        "}}}}",
                                        "test", &one, &diag),
                     0);
    config_diag_deinit(&diag);
    struct config_diff d = {0};
    config_diff(three, one, &d);
    assert_int_equal(d.removed_len, 2);
    assert_string_equal(d.removed[0], "a");
    assert_string_equal(d.removed[1], "c");
    assert_int_equal(d.changed_len, 1); /* b lost h3 */
    assert_int_equal(d.restart_len, 1); /* RaftDataDir */
    config_diff_deinit(&d);
    config_diff(one, three, &d);
    assert_int_equal(d.added_len, 2);
    assert_string_equal(d.added[0], "a");
    assert_string_equal(d.added[1], "c");
    config_diff_deinit(&d);
    config_free(three);
    config_free(one);
}

/* Each setting of cluster b, changed alone, makes b (and only b) changed. */
static void test_every_cluster_setting_counts(void **state)
{
    (void)state;
    static const char *const changes[] = {
            "\"User\": \"other\",",
            "\"Password\": \"other\",",
            "\"Collation\": \"utf8mb4_bin\",",
            "\"MetricQuery\": \"select 1\",",
            "\"CacheMillis\": 500,",
            "\"ThrottleThreshold\": 2.5,",
            "\"Port\": 3307,",
            "\"IgnoreHostsCount\": 1,",
            "\"IgnoreHostsPercent\": 50,",
            "\"IgnoreHostsThreshold\": 3,",
            "\"IgnoreDialTcpErrors\": true,",
            "\"HttpCheckPort\": 8080,",
            "\"HttpCheckPath\": \"/x\",",
            "\"IgnoreHosts\": [\"h2\"],",
            "\"Metrics\": {\"threads\": {\"Query\": \"select 2\", \"Threshold\": 9}},",
    };
    struct config *old = load("", "", "");
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        struct config *next = load("", "", changes[i]);
        struct config_diff d = {0};
        config_diff(old, next, &d);
        if (d.changed_len != 1)
            fail_msg("%s: %zu clusters changed", changes[i], d.changed_len);
        assert_string_equal(d.changed[0], "b");
        assert_int_equal(total(&d), 1);
        config_diff_deinit(&d);
        config_free(next);
    }
    config_free(old);
}

/* A cluster's static hosts and a metric's own threshold count too. */
static void test_hosts_and_metric_settings_count(void **state)
{
    (void)state;
    struct config *old =
            load("", "\"Metrics\": {\"m\": {\"Query\": \"select 1\", \"Threshold\": 5}},", "");
    struct config *next =
            load("", "\"Metrics\": {\"m\": {\"Query\": \"select 1\", \"Threshold\": 6}},", "");
    struct config_diff d = {0};
    config_diff(old, next, &d);
    /* Every cluster inherits the metric; Stores.MySQL itself is no key. */
    assert_int_equal(d.changed_len, 3);
    assert_int_equal(d.live_len + d.restart_len, 0);
    config_diff_deinit(&d);
    config_free(next);

    char *json = xasprintf(
            "{\"RaftDataDir\": \"/var/lib/freno\", \"Stores\": {\"MySQL\": {"
            " \"User\": \"u\", \"Password\": \"p\", \"ThrottleThreshold\": 1.0,"
            " \"Metrics\": {\"m\": {\"Query\": \"select 1\", \"Threshold\": 5}},"
            " \"Clusters\": {"
            "  \"a\": {\"StaticHostsSettings\": {\"Hosts\": [\"h1\"]}},"
            "  \"b\": {\"StaticHostsSettings\": {\"Hosts\": [\"h2\", \"h9\"]}},"
            "  \"c\": {\"HAProxySettings\": {\"Host\": \"lb\", \"Port\": 80, \"PoolName\": \"p\"}}"
            "}}}}");
    struct config_diag diag = {0};
    assert_int_equal(config_load_string(json, "test", &next, &diag), 0);
    config_diag_deinit(&diag);
    free(json);
    config_diff(old, next, &d);
    assert_int_equal(d.changed_len, 1);
    assert_string_equal(d.changed[0], "b");
    config_diff_deinit(&d);
    config_free(next);
    config_free(old);
}

static void test_top_level_keys_live_or_restart(void **state)
{
    (void)state;
    struct config *old = load("\"ListenPort\": 8087, \"ControlToken\": \"a\",", "", "");
    struct config *next =
            load("\"ListenPort\": 9000, \"ControlToken\": \"b\", \"CheckDetails\": true,"
                 " \"BackendElectionExpirySecs\": 7, \"RaftNodes\": [\"n1\", \"n2\"],"
                 " \"MaxThrottledApps\": 5, \"HttpReservedDescriptors\": 200,",
                 "", "");
    struct config_diff d = {0};
    config_diff(old, next, &d);
    assert_int_equal(d.added_len + d.removed_len + d.changed_len, 0);
    assert_int_equal(d.live_len, 3);
    assert_true(listed(d.live, d.live_len, "ControlToken"));
    assert_true(listed(d.live, d.live_len, "CheckDetails"));
    assert_true(listed(d.live, d.live_len, "HttpReservedDescriptors"));
    assert_int_equal(d.restart_len, 4);
    assert_true(listed(d.restart, d.restart_len, "ListenPort"));
    assert_true(listed(d.restart, d.restart_len, "BackendElectionExpirySecs"));
    assert_true(listed(d.restart, d.restart_len, "RaftNodes"));
    assert_true(listed(d.restart, d.restart_len, "MaxThrottledApps"));
    config_diff_deinit(&d);

    /* The keys that need a restart take the running values; the live ones
     * keep the new ones. */
    config_keep_restart_keys(old, next);
    assert_int_equal(next->listen_port, 8087);
    assert_int_equal(next->backend_election_expiry_secs, old->backend_election_expiry_secs);
    assert_int_equal(next->raft_nodes.len, 0);
    assert_int_equal(next->max_throttled_apps, old->max_throttled_apps);
    assert_string_equal(next->control_token, "b");
    assert_true(next->check_details);
    assert_int_equal(next->http_reserved_descriptors, 200);
    config_diff(old, next, &d);
    assert_int_equal(d.restart_len, 0);
    assert_int_equal(d.live_len, 3);
    config_diff_deinit(&d);
    config_free(old);
    config_free(next);
}

/* Setting and unsetting ControlToken (NULL when unset) are changes. */
static void test_control_token_set_and_unset(void **state)
{
    (void)state;
    struct config *none = load("", "", "");
    struct config *set = load("\"ControlToken\": \"s\",", "", "");
    assert_null(none->control_token);
    struct config_diff d = {0};
    config_diff(none, set, &d);
    assert_int_equal(d.live_len, 1);
    assert_string_equal(d.live[0], "ControlToken");
    config_diff_deinit(&d);
    config_diff(set, none, &d);
    assert_int_equal(d.live_len, 1);
    config_diff_deinit(&d);
    config_free(none);
    config_free(set);
}

/* A string key that needs a restart and a list one keep their running
 * values, secrets included. */
static void test_keep_strings_and_lists(void **state)
{
    (void)state;
    struct config *old = load("\"BackendMySQLPassword\": \"old\", \"RaftNodes\": [\"a\", \"b\"],"
                              " \"MemcachePath\": \"x\",",
                              "", "");
    struct config *next =
            load("\"BackendMySQLPassword\": \"new\", \"MemcachePath\": \"y\",", "", "");
    config_keep_restart_keys(old, next);
    assert_string_equal(next->backend_password, "old");
    assert_string_equal(next->memcache_path, "x");
    assert_int_equal(next->raft_nodes.len, 2);
    assert_string_equal(next->raft_nodes.v[1], "b");
    config_free(old);
    config_free(next);
}

/* The classification is the key table's: the settings the process builds
 * its listener, backend, raft node, memcache client and caps from at start
 * need a restart; the rest, every cluster and Stores.MySQL key included,
 * apply live. */
static void test_restart_flags_in_table(void **state)
{
    (void)state;
    static const char *const restart[] = {
            "ListenPort",
            "DataCenter",
            "Environment",
            "Domain",
            "ShareDomain",
            "RaftBind",
            "RaftDataDir",
            "DefaultRaftPort",
            "RaftNodes",
            "BackendMySQLHost",
            "BackendMySQLPort",
            "BackendMySQLSchema",
            "BackendMySQLUser",
            "BackendMySQLPassword",
            "BackendMySQLCollation",
            "MemcacheServers",
            "MemcachePath",
            "BackendElectionExpirySecs",
            "HttpMaxConnections",
            "HttpMaxConnectionsPerAddress",
            "HttpRequestTimeoutSecs",
            "HttpIdleTimeoutSecs",
            "ControlQueueLength",
            "ControlTimeoutMillis",
            "MaxCountedApps",
            "MaxCountedAppStores",
            "MaxRecentApps",
            "MaxThrottledApps",
            "MaxSkippedHosts",
    };
    static const char *const live[] = {
            "ControlToken",
            "CheckStaleAfterMillis",
            "CheckDetails",
            "HttpReservedDescriptors",
            "EnableProfiling",
            "Stores.MySQL.ThrottleThreshold",
            "Stores.MySQL.Metrics",
            "Stores.MySQL.Clusters.*.ThrottleThreshold",
            "Stores.MySQL.Clusters.*.HAProxySettings.PoolName",
    };
    for (size_t i = 0; i < sizeof(restart) / sizeof(restart[0]); i++) {
        const struct config_key *k = config_key_by_name(restart[i]);
        assert_non_null(k);
        if (!(k->flags & CONFIG_KEY_RESTART))
            fail_msg("%s should need a restart", restart[i]);
    }
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        const struct config_key *k = config_key_by_name(live[i]);
        assert_non_null(k);
        if (k->flags & CONFIG_KEY_RESTART)
            fail_msg("%s should apply live", live[i]);
    }
    size_t len;
    const struct config_key *keys = config_keys_table(&len);
    for (size_t i = 0; i < len; i++) {
        if ((keys[i].flags & CONFIG_KEY_RESTART) && strncmp(keys[i].name, "Stores.", 7) == 0)
            fail_msg("%s: a store key applies live", keys[i].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_same_config_no_change),
            cmocka_unit_test(test_clusters_added_removed_changed),
            cmocka_unit_test(test_clusters_at_the_ends),
            cmocka_unit_test(test_every_cluster_setting_counts),
            cmocka_unit_test(test_hosts_and_metric_settings_count),
            cmocka_unit_test(test_top_level_keys_live_or_restart),
            cmocka_unit_test(test_control_token_set_and_unset),
            cmocka_unit_test(test_keep_strings_and_lists),
            cmocka_unit_test(test_restart_flags_in_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
