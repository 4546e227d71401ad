/* SPDX-License-Identifier: MIT */
/* Unit tests for config/: defaults, the original's sample configs, Stores.MySQL
 * inheritance, ${NAME} expansion, file merge order, every error and warning
 * with its text, and the key table itself. Single-threaded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/config_keys.h"
#include "core/xalloc.h"

/* ---- helpers ---- */

static bool has_msg(char *const *v, size_t n, const char *msg)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], msg) == 0)
            return true;
    }
    return false;
}

static void dump_diag(const struct config_diag *d)
{
    for (size_t i = 0; i < d->errors_len; i++)
        print_message("error: %s\n", d->errors[i]);
    for (size_t i = 0; i < d->warnings_len; i++)
        print_message("warning: %s\n", d->warnings[i]);
}

static void expect_error(const struct config_diag *d, const char *msg)
{
    if (!has_msg(d->errors, d->errors_len, msg)) {
        dump_diag(d);
        fail_msg("missing error: %s", msg);
    }
}

static void expect_warning(const struct config_diag *d, const char *msg)
{
    if (!has_msg(d->warnings, d->warnings_len, msg)) {
        dump_diag(d);
        fail_msg("missing warning: %s", msg);
    }
}

/* Loads @json that must succeed; returns the config. */
static struct config *load_ok(const char *json, struct config_diag *d)
{
    struct config *c = NULL;
    int rc = config_load_string(json, "t.json", &c, d);
    if (rc != 0) {
        dump_diag(d);
        fail_msg("load failed: %d", rc);
    }
    assert_non_null(c);
    return c;
}

/* Loads @json that must fail with exactly one error, @msg. */
static void load_fails_with(const char *json, const char *msg)
{
    struct config_diag d = {0};
    struct config *c = (struct config *)1;
    assert_int_equal(config_load_string(json, "t.json", &c, &d), -EINVAL);
    assert_null(c);
    expect_error(&d, msg);
    if (d.errors_len != 1) {
        dump_diag(&d);
        fail_msg("expected exactly one error");
    }
    config_diag_deinit(&d);
}

static char *fixture(const char *name)
{
    const char *slash = strrchr(__FILE__, '/');
    int dir_len = slash ? (int)(slash - __FILE__) : 1;
    return xasprintf("%.*s/data/config/%s", dir_len, slash ? __FILE__ : ".", name);
}

/* Wraps @body in a config that passes the top-level checks. */
#define RAFT           "\"RaftDataDir\": \"/tmp/r\""
#define CLUSTERS(body) "{" RAFT ", \"Stores\": {\"MySQL\": {\"Clusters\": {" body "}}}}"

/* ---- defaults and samples ---- */

static void test_defaults(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = load_ok("{" RAFT "}", &d);

    assert_int_equal(d.warnings_len, 0);
    assert_int_equal(c->listen_port, 8087);
    assert_string_equal(c->raft_bind, "127.0.0.1:10008");
    assert_string_equal(c->raft_data_dir, "/tmp/r");
    assert_int_equal(c->default_raft_port, 0);
    assert_int_equal(c->raft_nodes.len, 0);
    assert_string_equal(c->backend_host, "");
    assert_int_equal(c->backend_port, 3306);
    assert_string_equal(c->backend_schema, "");
    assert_string_equal(c->backend_password, "");
    assert_string_equal(c->backend_collation, "");
    assert_int_equal(c->memcache_servers.len, 0);
    assert_string_equal(c->memcache_path, "freno");
    assert_false(c->enable_profiling);
    assert_int_equal(c->backend_election_expiry_secs, 5);
    assert_null(c->control_token);
    assert_int_equal(c->max_throttled_apps, 100000);
    assert_int_equal(c->max_skipped_hosts, 100000);
    assert_string_equal(c->data_center, "");
    assert_string_equal(c->domain, ":");
    assert_string_equal(c->share_domain, "");
    assert_int_equal(c->mysql_defaults.port, 3306);
    assert_string_equal(c->mysql_defaults.user, "");
    assert_string_equal(c->mysql_defaults.metric_query, "");
    assert_string_equal(c->mysql_defaults.collation, "");
    assert_int_equal(c->clusters_len, 0);
    assert_null(config_find_cluster(c, "x"));
    config_free(c);
    config_diag_deinit(&d);
}

static void test_raft_sample(void **state)
{
    (void)state;
    char *path = fixture("raft-sample.json");
    const char *paths[] = {path};
    struct config_diag d = {0};
    struct config *c = NULL;

    setenv("FRENO_TEST_PROBE_USER", "env-user", 1);
    setenv("FRENO_TEST_PROBE_PASSWORD", "env-pass", 1);
    assert_int_equal(config_load_files(paths, 1, false, &c, &d), 0);
    assert_int_equal(d.warnings_len, 0);
    assert_int_equal(c->listen_port, 9100);
    assert_int_equal(c->default_raft_port, 9200);
    assert_string_equal(c->raft_bind, "192.0.2.10");
    assert_int_equal(c->raft_nodes.len, 3);
    assert_string_equal(c->raft_nodes.v[2], "192.0.2.12:9300");
    assert_string_equal(c->mysql_defaults.user, "env-user");
    assert_string_equal(c->mysql_defaults.password, "env-pass");
    assert_int_equal(c->clusters_len, 2);
    /* Sorted by name. */
    assert_string_equal(c->clusters[0].name, "sandbox");
    assert_string_equal(c->clusters[1].name, "web");

    const struct config_cluster *web = config_find_cluster(c, "web");
    assert_non_null(web);
    assert_int_equal(web->source, CONFIG_SOURCE_HAPROXY);
    assert_true(web->throttle_threshold == 0.5);
    assert_string_equal(web->user, "env-user");
    assert_string_equal(web->password, "env-pass");
    assert_string_equal(web->metric_query, "select max(lag) from meta.heartbeat_lag");
    assert_int_equal(web->port, 3306);
    assert_int_equal(web->haproxy_addresses.len, 1);
    assert_string_equal(web->haproxy_addresses.v[0], "http://lb.example.net:8404");
    assert_string_equal(web->haproxy_pool, "web_ro");
    assert_int_equal(web->static_hosts_len, 0);

    const struct config_cluster *sb = config_find_cluster(c, "sandbox");
    assert_non_null(sb);
    assert_int_equal(sb->source, CONFIG_SOURCE_STATIC);
    assert_true(sb->throttle_threshold == 1.5);
    assert_string_equal(sb->user, "sbuser");
    assert_string_equal(sb->password, "sbpass");
    assert_int_equal(sb->static_hosts_len, 3);
    assert_string_equal(sb->static_hosts[0].host, "127.0.0.1");
    assert_int_equal(sb->static_hosts[0].port, 23301);
    assert_int_equal(sb->static_hosts[1].port, 23302);
    assert_string_equal(sb->static_hosts[2].host, "db-c");
    assert_int_equal(sb->static_hosts[2].port, 3306);
    assert_string_equal(sb->haproxy_pool, "");

    unsetenv("FRENO_TEST_PROBE_USER");
    unsetenv("FRENO_TEST_PROBE_PASSWORD");
    config_free(c);
    config_diag_deinit(&d);
    free(path);
}

static void test_backend_sample(void **state)
{
    (void)state;
    char *path = fixture("backend-sample.json");
    const char *paths[] = {path};
    struct config_diag d = {0};
    struct config *c = NULL;

    assert_int_equal(config_load_files(paths, 1, false, &c, &d), 0);
    assert_int_equal(d.warnings_len, 0);
    assert_string_equal(c->raft_data_dir, "");
    assert_string_equal(c->backend_host, "backend.example.net");
    assert_int_equal(c->backend_port, 3307);
    assert_string_equal(c->backend_schema, "throttler_state");
    assert_string_equal(c->backend_user, "throttler");
    assert_string_equal(c->backend_password, "backend-secret");
    assert_string_equal(c->domain, "eu-west/staging");
    assert_string_equal(c->share_domain, "staging");
    assert_int_equal(c->memcache_servers.len, 2);
    assert_string_equal(c->memcache_path, "throttle");

    const struct config_cluster *o = config_find_cluster(c, "orders");
    assert_non_null(o);
    assert_true(o->throttle_threshold == 30);
    assert_string_equal(o->metric_query, "show global status like 'threads_running'");
    assert_int_equal(o->haproxy_addresses.len, 2);
    assert_string_equal(o->haproxy_addresses.v[0], "http://lb-1.example.net:8404");
    assert_string_equal(o->haproxy_addresses.v[1], "https://lb-2.example.net/haproxy/stats");
    config_free(c);
    config_diag_deinit(&d);
    free(path);
}

static void test_skeleton_and_dev(void **state)
{
    (void)state;
    char *skel = fixture("skeleton.json");
    char *dev = fixture("dev.json");
    const char *paths[] = {skel};
    struct config_diag d = {0};
    struct config *c = NULL;

    assert_int_equal(config_load_files(paths, 1, false, &c, &d), 0);
    assert_int_equal(c->listen_port, 9102);
    assert_int_equal(c->clusters_len, 0);
    assert_true(c->mysql_defaults.throttle_threshold == 2.0);
    assert_int_equal(c->raft_nodes.len, 3);
    config_free(c);

    paths[0] = dev;
    assert_int_equal(config_load_files(paths, 1, false, &c, &d), 0);
    assert_int_equal(c->listen_port, 9103);
    assert_string_equal(c->raft_bind, "127.0.0.1:19008");
    assert_int_equal(c->raft_nodes.len, 0);
    assert_int_equal(d.warnings_len, 0);
    assert_int_equal(d.errors_len, 0);
    config_free(c);
    config_diag_deinit(&d);
    free(skel);
    free(dev);
}

static void test_all_keys(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = load_ok(
            "{"
            "\"ListenPort\": 1, \"DataCenter\": \"dc\", \"Environment\": \"env\","
            "\"ShareDomain\": \"sd\", \"RaftBind\": \"rb\","
            "\"RaftDataDir\": \"rd\", \"DefaultRaftPort\": 65535,"
            "\"RaftNodes\": [\"n1\"], \"BackendMySQLHost\": \"bh\","
            "\"BackendMySQLPort\": 65535, \"BackendMySQLSchema\": \"bs\","
            "\"BackendMySQLUser\": \"bu\", \"BackendMySQLPassword\": \"bp\","
            "\"BackendMySQLCollation\": \"utf8mb4_bin\","
            "\"MemcacheServers\": [\"m\"], \"MemcachePath\": \"mp\","
            "\"EnableProfiling\": true, \"BackendElectionExpirySecs\": 60,"
            "\"ControlToken\": \"tok\", \"MaxThrottledApps\": 5, \"MaxSkippedHosts\": 1000000}",
            &d);
    assert_int_equal(d.warnings_len, 0);
    assert_int_equal(c->listen_port, 1);
    assert_string_equal(c->domain, "dc:env");
    assert_string_equal(c->share_domain, "sd");
    assert_string_equal(c->raft_bind, "rb");
    assert_int_equal(c->default_raft_port, 65535);
    assert_string_equal(c->raft_nodes.v[0], "n1");
    assert_string_equal(c->backend_host, "bh");
    assert_int_equal(c->backend_port, 65535);
    assert_string_equal(c->backend_schema, "bs");
    assert_string_equal(c->backend_user, "bu");
    assert_string_equal(c->backend_password, "bp");
    assert_string_equal(c->backend_collation, "utf8mb4_bin");
    assert_string_equal(c->memcache_servers.v[0], "m");
    assert_string_equal(c->memcache_path, "mp");
    assert_true(c->enable_profiling);
    assert_int_equal(c->backend_election_expiry_secs, 60);
    assert_string_equal(c->control_token, "tok");
    assert_int_equal(c->max_throttled_apps, 5);
    assert_int_equal(c->max_skipped_hosts, 1000000);
    config_free(c);
    config_diag_deinit(&d);
}

/* ---- inheritance ---- */

static void test_inheritance(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = load_ok(
            "{" RAFT ", \"Stores\": {\"MySQL\": {"
            "\"User\": \"u\", \"Password\": \"p\", \"MetricQuery\": \"select 1\","
            "\"CacheMillis\": 250, \"ThrottleThreshold\": 2.5, \"Port\": 3307,"
            "\"IgnoreDialTcpErrors\": true, \"IgnoreHostsCount\": 2,"
            "\"IgnoreHostsThreshold\": 10.5, \"HttpCheckPort\": 9000,"
            "\"HttpCheckPath\": \"health\", \"IgnoreHosts\": [\"bad\", \"worse\"],"
            "\"Collation\": \"utf8mb4_general_ci\","
            "\"Clusters\": {"
            "\"inherits\": {\"StaticHostsSettings\": {\"Hosts\": [\"h1\"]}},"
            "\"own\": {\"User\": \"u2\", \"Password\": \"p2\", \"MetricQuery\": \"select 2\","
            "  \"CacheMillis\": 100, \"ThrottleThreshold\": 0.25, \"Port\": 3308,"
            "  \"IgnoreHostsCount\": 1, \"IgnoreHostsThreshold\": 3, \"HttpCheckPort\": 9100,"
            "  \"HttpCheckPath\": \"ok\", \"IgnoreHosts\": [\"other\"],"
            "  \"Collation\": \"latin1_swedish_ci\","
            "  \"StaticHostsSettings\": {\"Hosts\": [\"h2\"]}},"
            "\"nocheck\": {\"HttpCheckPort\": -1, \"IgnoreHosts\": [],"
            "  \"StaticHostsSettings\": {\"Hosts\": [\"h3:1234\"]}}"
            "}}}}",
            &d);
    assert_int_equal(d.warnings_len, 0);

    const struct config_cluster *a = config_find_cluster(c, "inherits");
    assert_non_null(a);
    assert_string_equal(a->user, "u");
    assert_string_equal(a->password, "p");
    assert_string_equal(a->metric_query, "select 1");
    assert_int_equal(a->cache_millis, 250);
    assert_true(a->throttle_threshold == 2.5);
    assert_int_equal(a->port, 3307);
    assert_true(a->ignore_dial_tcp_errors);
    assert_int_equal(a->ignore_hosts_count, 2);
    assert_true(a->ignore_hosts_threshold == 10.5);
    assert_int_equal(a->http_check_port, 9000);
    assert_string_equal(a->http_check_path, "health");
    assert_int_equal(a->ignore_hosts.len, 2);
    assert_string_equal(a->ignore_hosts.v[1], "worse");
    assert_string_equal(a->collation, "utf8mb4_general_ci");
    assert_int_equal(a->static_hosts[0].port, 3307);

    const struct config_cluster *o = config_find_cluster(c, "own");
    assert_non_null(o);
    assert_string_equal(o->user, "u2");
    assert_string_equal(o->password, "p2");
    assert_string_equal(o->metric_query, "select 2");
    assert_int_equal(o->cache_millis, 100);
    assert_true(o->throttle_threshold == 0.25);
    assert_int_equal(o->port, 3308);
    assert_int_equal(o->ignore_hosts_count, 1);
    assert_true(o->ignore_hosts_threshold == 3);
    assert_int_equal(o->http_check_port, 9100);
    assert_string_equal(o->http_check_path, "ok");
    assert_int_equal(o->ignore_hosts.len, 1);
    assert_string_equal(o->ignore_hosts.v[0], "other");
    assert_string_equal(o->collation, "latin1_swedish_ci");
    assert_int_equal(o->static_hosts[0].port, 3308);

    /* -1 disables the inherited check; an empty list inherits. */
    const struct config_cluster *n = config_find_cluster(c, "nocheck");
    assert_non_null(n);
    assert_int_equal(n->http_check_port, -1);
    assert_int_equal(n->ignore_hosts.len, 2);
    assert_int_equal(n->static_hosts[0].port, 1234);

    assert_string_equal(c->mysql_defaults.user, "u");
    assert_int_equal(c->mysql_defaults.port, 3307);
    config_free(c);
    config_diag_deinit(&d);
}

static void test_proxysql(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = load_ok(
            "{" RAFT ", \"Stores\": {\"MySQL\": {"
            "\"ProxySQLAddresses\": [\"px1:6032\", \"px2\", \"[::1]:6033\"],"
            "\"ProxySQLUser\": \"stats\", \"ProxySQLPassword\": \"spw\","
            "\"Clusters\": {"
            "\"inherits\": {\"ProxySQLSettings\": {\"HostgroupID\": 20}},"
            "\"own\": {\"ProxySQLSettings\": {\"Addresses\": [\"mine:7032\"], \"User\": \"me\","
            "  \"Password\": \"mypw\", \"HostgroupID\": 30, \"IgnoreServerTTLSecs\": 60}},"
            "\"static\": {\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}"
            "}}}}",
            &d);
    const struct config_cluster *a = config_find_cluster(c, "inherits");
    assert_int_equal(a->source, CONFIG_SOURCE_PROXYSQL);
    assert_int_equal(a->proxysql_addresses.len, 3);
    assert_string_equal(a->proxysql_addresses.v[0], "px1:6032");
    assert_string_equal(a->proxysql_addresses.v[1], "px2:3306");
    assert_string_equal(a->proxysql_addresses.v[2], "[::1]:6033");
    assert_string_equal(a->proxysql_user, "stats");
    assert_string_equal(a->proxysql_password, "spw");
    assert_int_equal(a->proxysql_hostgroup_id, 20);
    assert_int_equal(a->proxysql_ignore_server_ttl_secs, 10);

    const struct config_cluster *o = config_find_cluster(c, "own");
    assert_int_equal(o->proxysql_addresses.len, 1);
    assert_string_equal(o->proxysql_addresses.v[0], "mine:7032");
    assert_string_equal(o->proxysql_user, "me");
    assert_string_equal(o->proxysql_password, "mypw");
    assert_int_equal(o->proxysql_hostgroup_id, 30);
    assert_int_equal(o->proxysql_ignore_server_ttl_secs, 60);

    /* ProxySQL defaults do not turn a static cluster into a ProxySQL one. */
    const struct config_cluster *s = config_find_cluster(c, "static");
    assert_int_equal(s->source, CONFIG_SOURCE_STATIC);
    assert_int_equal(s->proxysql_addresses.len, 0);
    assert_string_equal(s->proxysql_user, "");
    config_free(c);
    config_diag_deinit(&d);

    load_fails_with(
            CLUSTERS("\"c\": {\"ProxySQLSettings\": {\"User\": \"u\", \"HostgroupID\": 1}}"),
            "config t.json: Stores.MySQL.Clusters.c.ProxySQLSettings.Addresses: must be set here "
            "or in Stores.MySQL.ProxySQLAddresses");
    load_fails_with(
            CLUSTERS("\"c\": {\"ProxySQLSettings\": {\"Addresses\": [\"a\"], \"HostgroupID\": 1}}"),
            "config t.json: Stores.MySQL.Clusters.c.ProxySQLSettings.User: must be set here or in "
            "Stores.MySQL.ProxySQLUser");
    load_fails_with(
            CLUSTERS("\"c\": {\"ProxySQLSettings\": {\"Addresses\": [\"a\"], "
                     "\"User\": \"u\"}}"),
            "config t.json: Stores.MySQL.Clusters.c.ProxySQLSettings.HostgroupID: must be at "
            "least 1");
    load_fails_with(
            CLUSTERS("\"c\": {\"ProxySQLSettings\": {\"Addresses\": [\"a:b\"], "
                     "\"User\": \"u\", \"HostgroupID\": 1}}"),
            "config t.json: Stores.MySQL.Clusters.c.ProxySQLSettings.Addresses[0]: \"a:b\": "
            "invalid port");
    load_fails_with("{" RAFT ", \"Stores\": {\"MySQL\": {\"ProxySQLAddresses\": [\"x:0\"], "
                    "\"Clusters\": {\"c\": {\"ProxySQLSettings\": {\"User\": \"u\", "
                    "\"HostgroupID\": 1}}}}}}",
                    "config t.json: Stores.MySQL.Clusters.c.ProxySQLSettings.Addresses[0] (from "
                    "Stores.MySQL.ProxySQLAddresses): \"x:0\": invalid port");
}

static void test_vitess(void **state)
{
    (void)state;
    struct config_diag d = {0};
    setenv("FRENO_TEST_CELL", "cell-b", 1);
    struct config *c = load_ok(
            "{" RAFT ", \"Stores\": {\"MySQL\": {"
            "\"VitessCells\": [\"cell-a\", \"${FRENO_TEST_CELL}\"],"
            "\"Clusters\": {"
            "\"inherits\": {\"VitessSettings\": {\"API\": \"http://vtctld:15000/\","
            "  \"Keyspace\": \"ks\", \"Shard\": \"-80\"}},"
            "\"own\": {\"VitessSettings\": {\"API\": \"https://vt/api\", \"Keyspace\": \"ks2\","
            "  \"Cells\": [\" c1 \", \"\", \"c2\"], \"TimeoutSecs\": 9}}"
            "}}}}",
            &d);
    unsetenv("FRENO_TEST_CELL");
    assert_int_equal(d.warnings_len, 0);
    const struct config_cluster *a = config_find_cluster(c, "inherits");
    assert_int_equal(a->source, CONFIG_SOURCE_VITESS);
    assert_string_equal(a->vitess_api, "http://vtctld:15000/");
    assert_string_equal(a->vitess_keyspace, "ks");
    assert_string_equal(a->vitess_shard, "-80");
    assert_int_equal(a->vitess_cells.len, 2);
    assert_string_equal(a->vitess_cells.v[0], "cell-a");
    assert_string_equal(a->vitess_cells.v[1], "cell-b");
    assert_int_equal(a->vitess_timeout_secs, 5);

    const struct config_cluster *o = config_find_cluster(c, "own");
    assert_string_equal(o->vitess_shard, "");
    assert_int_equal(o->vitess_cells.len, 2);
    assert_string_equal(o->vitess_cells.v[0], "c1");
    assert_string_equal(o->vitess_cells.v[1], "c2");
    assert_int_equal(o->vitess_timeout_secs, 9);
    config_free(c);
    config_diag_deinit(&d);

    load_fails_with(CLUSTERS("\"v\": {\"VitessSettings\": {\"API\": \"http://x\"}}"),
                    "config t.json: Stores.MySQL.Clusters.v.VitessSettings.Keyspace: must be set");
    load_fails_with(CLUSTERS("\"v\": {\"VitessSettings\": {\"Keyspace\": \"k\"}}"),
                    "config t.json: Stores.MySQL.Clusters.v.VitessSettings.API: must be set");
    load_fails_with(
            CLUSTERS("\"v\": {\"VitessSettings\": {\"API\": \"vt:15000\", "
                     "\"Keyspace\": \"k\"}}"),
            "config t.json: Stores.MySQL.Clusters.v.VitessSettings.API: expected an http:// or "
            "https:// URL, got \"vt:15000\"");
}

/* ---- host sources ---- */

static void test_static_hosts(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = load_ok(CLUSTERS("\"s\": {\"Port\": 3310, \"StaticHostsSettings\": "
                                        "{\"Hosts\": [\"h\", \"h:3307\", \"[::1]:3308\", "
                                        "\"::1\", \"[fe80::1%eth0]\", \"10.0.0.1:65535\"]}}"),
                               &d);
    const struct config_cluster *s = config_find_cluster(c, "s");
    assert_int_equal(s->static_hosts_len, 6);
    assert_string_equal(s->static_hosts[0].host, "h");
    assert_int_equal(s->static_hosts[0].port, 3310);
    assert_string_equal(s->static_hosts[1].host, "h");
    assert_int_equal(s->static_hosts[1].port, 3307);
    assert_string_equal(s->static_hosts[2].host, "::1");
    assert_int_equal(s->static_hosts[2].port, 3308);
    assert_string_equal(s->static_hosts[3].host, "::1");
    assert_int_equal(s->static_hosts[3].port, 3310);
    assert_string_equal(s->static_hosts[4].host, "fe80::1%eth0");
    assert_int_equal(s->static_hosts[4].port, 3310);
    assert_string_equal(s->static_hosts[5].host, "10.0.0.1");
    assert_int_equal(s->static_hosts[5].port, 65535);
    config_free(c);
    config_diag_deinit(&d);

    struct {
        const char *host;
        const char *why;
    } bad[] = {
            {"h:abc", "invalid port"},
            {"h:", "invalid port"},
            {"h:0", "invalid port"},
            {"h:65536", "invalid port"},
            {"h:+80", "invalid port"},
            {":3306", "empty host"},
            {"", "empty host"},
            {"a b", "invalid host name"},
            {"h:1:2", "invalid port or IPv6 address"},
            {"[::1", "missing ']'"},
            {"[::1]x", "unexpected text after ']'"},
            {"[nothex]:1", "invalid IPv6 address"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *json = xasprintf(CLUSTERS("\"s\": {\"StaticHostsSettings\": {\"Hosts\": [\"%s\"]}}"),
                               bad[i].host);
        char *msg =
                xasprintf("config t.json: Stores.MySQL.Clusters.s.StaticHostsSettings.Hosts[0]: "
                          "\"%s\": %s",
                          bad[i].host, bad[i].why);
        load_fails_with(json, msg);
        free(json);
        free(msg);
    }
}

static void test_haproxy(void **state)
{
    (void)state;
    struct config_diag d = {0};
    setenv("FRENO_TEST_LB", "lb-9.example.net", 1);
    setenv("FRENO_TEST_LB_PORT", "8404", 1);
    struct config *c = load_ok(
            CLUSTERS("\"h\": {\"HAProxySettings\": {\"PoolName\": \"p\", \"Addresses\": "
                     "\",, localhost:1234 , otherhost, http://x:1/stats/pool/,"
                     "HTTPS://secure:443//, http://[::1]:8080/a, [::2]:99, https://user:pw@auth:1,"
                     "${FRENO_TEST_LB}:${FRENO_TEST_LB_PORT}, http://${FRENO_TEST_LB}/s/\"}},"
                     "\"hp\": {\"HAProxySettings\": {\"PoolName\": \"p\", \"Host\": \"lb\", "
                     "\"Port\": 81, \"Addresses\": \"ignored:1\"}},"
                     "\"v6\": {\"HAProxySettings\": {\"PoolName\": \"p\", \"Host\": \"::1\", "
                     "\"Port\": 82}}"),
            &d);
    const struct config_cluster *h = config_find_cluster(c, "h");
    const char *want[] = {
            "http://localhost:1234",  "http://otherhost:80",          "http://x:1/stats/pool",
            "https://secure:443",     "http://[::1]:8080/a",          "http://[::2]:99",
            "https://user:pw@auth:1", "http://lb-9.example.net:8404", "http://lb-9.example.net/s"};
    assert_int_equal(h->haproxy_addresses.len, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(h->haproxy_addresses.v[i], want[i]);
    assert_string_equal(h->haproxy_pool, "p");

    const struct config_cluster *hp = config_find_cluster(c, "hp");
    assert_int_equal(hp->haproxy_addresses.len, 1);
    assert_string_equal(hp->haproxy_addresses.v[0], "http://lb:81");
    expect_warning(&d, "config t.json: Stores.MySQL.Clusters.hp.HAProxySettings.Addresses: "
                       "ignored because Host and Port are set");
    assert_string_equal(config_find_cluster(c, "v6")->haproxy_addresses.v[0], "http://[::1]:82");
    config_free(c);
    config_diag_deinit(&d);

    load_fails_with(CLUSTERS("\"h\": {\"HAProxySettings\": {\"Addresses\": \"a:1\"}}"),
                    "config t.json: Stores.MySQL.Clusters.h.HAProxySettings.PoolName: must be set");
    load_fails_with(CLUSTERS("\"h\": {\"HAProxySettings\": {\"PoolName\": \"p\"}}"),
                    "config t.json: Stores.MySQL.Clusters.h.HAProxySettings: set Host and Port, or "
                    "Addresses");
    load_fails_with(
            CLUSTERS("\"h\": {\"HAProxySettings\": {\"PoolName\": \"p\", "
                     "\"Host\": \"lb\"}}"),
            "config t.json: Stores.MySQL.Clusters.h.HAProxySettings: Host and Port must be set "
            "together");
    load_fails_with(CLUSTERS("\"h\": {\"HAProxySettings\": {\"PoolName\": \"p\", "
                             "\"Addresses\": \" , ,\"}}"),
                    "config t.json: Stores.MySQL.Clusters.h.HAProxySettings: set Host and Port, or "
                    "Addresses");
    load_fails_with(
            CLUSTERS("\"h\": {\"HAProxySettings\": {\"PoolName\": \"p\", "
                     "\"Host\": \"a/b\", \"Port\": 1}}"),
            "config t.json: Stores.MySQL.Clusters.h.HAProxySettings.Host: invalid host name "
            "\"a/b\"");

    struct {
        const char *addr;
        const char *why;
    } bad[] = {
            {"localhost:", "invalid port"},
            {"localhost:abcd", "invalid port"},
            {"localhost:abcd:1234", "invalid port or IPv6 address"},
            {"ftp://x:1", "the scheme must be http or https"},
            {"http://x:1/a?b", "a query or fragment is not supported"},
            {"http://:1", "empty host"},
            {"http://::1:80", "an IPv6 address needs brackets in a URL"},
            {"http://x:99999", "invalid port"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *json = xasprintf(CLUSTERS("\"h\": {\"HAProxySettings\": {\"PoolName\": \"p\", "
                                        "\"Addresses\": \"ok:1,%s\"}}"),
                               bad[i].addr);
        char *msg = xasprintf("config t.json: Stores.MySQL.Clusters.h.HAProxySettings.Addresses: "
                              "\"%s\": %s",
                              bad[i].addr, bad[i].why);
        load_fails_with(json, msg);
        free(json);
        free(msg);
    }
    /* user:password@ is never echoed. */
    load_fails_with(CLUSTERS("\"h\": {\"HAProxySettings\": {\"PoolName\": \"p\", "
                             "\"Addresses\": \"ok:1, http://u:hunter2@x:0\"}}"),
                    "config t.json: Stores.MySQL.Clusters.h.HAProxySettings.Addresses: address 2: "
                    "invalid port");
    /* In Addresses an unset (or empty) variable is an error, as in the original. */
    unsetenv("FRENO_TEST_UNSET");
    load_fails_with(CLUSTERS("\"h\": {\"HAProxySettings\": {\"PoolName\": \"p\", "
                             "\"Addresses\": \"${FRENO_TEST_UNSET}:80\"}}"),
                    "config t.json: Stores.MySQL.Clusters.h.HAProxySettings.Addresses: environment "
                    "variable FRENO_TEST_UNSET is not set");
    setenv("FRENO_TEST_EMPTY", "", 1);
    load_fails_with(CLUSTERS("\"h\": {\"HAProxySettings\": {\"PoolName\": \"p\", \"Host\": \"a\","
                             "\"Port\": 1, \"Addresses\": \"${FRENO_TEST_EMPTY}\"}}"),
                    "config t.json: Stores.MySQL.Clusters.h.HAProxySettings.Addresses: environment "
                    "variable FRENO_TEST_EMPTY is empty");
    unsetenv("FRENO_TEST_EMPTY");
    unsetenv("FRENO_TEST_LB");
    unsetenv("FRENO_TEST_LB_PORT");
}

static void test_host_source_errors(void **state)
{
    (void)state;
    load_fails_with(CLUSTERS("\"empty\": {\"User\": \"u\"}"),
                    "config t.json: Stores.MySQL.Clusters.empty: no host source; set one of "
                    "StaticHostsSettings, HAProxySettings, ProxySQLSettings or VitessSettings");
    /* Empty settings objects select nothing. */
    load_fails_with(CLUSTERS("\"empty\": {\"StaticHostsSettings\": {\"Hosts\": []}, "
                             "\"HAProxySettings\": {}, \"VitessSettings\": {\"TimeoutSecs\": 3}}"),
                    "config t.json: Stores.MySQL.Clusters.empty: no host source; set one of "
                    "StaticHostsSettings, HAProxySettings, ProxySQLSettings or VitessSettings");
    load_fails_with(CLUSTERS("\"two\": {\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}, "
                             "\"HAProxySettings\": {\"Host\": \"lb\", \"Port\": 1, "
                             "\"PoolName\": \"p\"}}"),
                    "config t.json: Stores.MySQL.Clusters.two: more than one host source: "
                    "StaticHostsSettings and HAProxySettings");
    load_fails_with(CLUSTERS("\"three\": {\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}, "
                             "\"ProxySQLSettings\": {\"HostgroupID\": 1}, "
                             "\"VitessSettings\": {\"API\": \"http://v\"}}"),
                    "config t.json: Stores.MySQL.Clusters.three: more than one host source: "
                    "StaticHostsSettings, ProxySQLSettings and VitessSettings");
}

/* ---- environment ---- */

static void test_env_expansion(void **state)
{
    (void)state;
    struct config_diag d = {0};
    setenv("FRENO_TEST_HOST", "db.example.net", 1);
    setenv("FRENO_TEST_SCHEMA", "fr", 1);
    setenv("FRENO_TEST_USER", "fu", 1);
    setenv("FRENO_TEST_PASS", "s3cr3t-value", 1);
    setenv("FRENO_TEST_DC", "dc7", 1);
    setenv("FRENO_TEST_ENV", "prod", 1);
    setenv("FRENO_TEST_SD", "share", 1);
    setenv("FRENO_TEST_TOKEN", "tok-value", 1);
    unsetenv("FRENO_TEST_UNSET");
    struct config *c = load_ok(
            "{\"BackendMySQLHost\": \"${FRENO_TEST_HOST}\","
            "\"BackendMySQLSchema\": \"${FRENO_TEST_SCHEMA}\","
            "\"BackendMySQLUser\": \"${FRENO_TEST_USER}\","
            "\"BackendMySQLPassword\": \"${FRENO_TEST_PASS}\","
            "\"DataCenter\": \"${FRENO_TEST_DC}\", \"Environment\": \"${FRENO_TEST_ENV}\","
            "\"ShareDomain\": \"${FRENO_TEST_SD}\", \"ControlToken\": \"${FRENO_TEST_TOKEN}\","
            "\"RaftBind\": \"${FRENO_TEST_HOST}\","
            "\"Stores\": {\"MySQL\": {\"User\": \"pre-${FRENO_TEST_USER}-post\","
            "  \"Password\": \"${FRENO_TEST_UNSET}\", \"MetricQuery\": \"${FRENO_TEST_USER}\","
            "  \"Clusters\": {\"c\": {\"User\": \"${FRENO_TEST_DC}\","
            "    \"Password\": \"${FRENO_TEST_PASS}\", \"HttpCheckPath\": \"${x\","
            "    \"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}}}}}",
            &d);
    assert_string_equal(c->backend_host, "db.example.net");
    assert_string_equal(c->backend_schema, "fr");
    assert_string_equal(c->backend_user, "fu");
    assert_string_equal(c->backend_password, "s3cr3t-value");
    assert_string_equal(c->data_center, "dc7");
    assert_string_equal(c->environment, "prod");
    assert_string_equal(c->domain, "dc7:prod");
    assert_string_equal(c->share_domain, "share");
    assert_string_equal(c->control_token, "tok-value");
    /* Only the keys docs/config.md#environment-variables lists are expanded. */
    assert_string_equal(c->raft_bind, "${FRENO_TEST_HOST}");
    assert_string_equal(c->mysql_defaults.metric_query, "${FRENO_TEST_USER}");
    /* Substituted in place (the original would drop "pre-" and "-post"). */
    assert_string_equal(c->mysql_defaults.user, "pre-fu-post");
    /* Unset: empty, with a warning naming the variable. */
    assert_string_equal(c->mysql_defaults.password, "");
    expect_warning(&d, "config t.json: Stores.MySQL.Password: environment variable "
                       "FRENO_TEST_UNSET is not set; it expands to nothing");
    const struct config_cluster *cl = config_find_cluster(c, "c");
    assert_string_equal(cl->user, "dc7");
    assert_string_equal(cl->password, "s3cr3t-value");
    assert_string_equal(cl->http_check_path, "${x");
    assert_int_equal(d.warnings_len, 1);
    config_free(c);
    config_diag_deinit(&d);

    /* An explicit Domain wins over DataCenter:Environment. */
    c = load_ok("{" RAFT ", \"DataCenter\": \"a\", \"Environment\": \"b\", \"Domain\": \"d\"}", &d);
    assert_string_equal(c->domain, "d");
    config_free(c);
    /* A ControlToken taken from an unset or empty variable would open control
     * requests to everyone without a word: it stops the start instead. An
     * explicit "" still means no token. */
    load_fails_with(
            "{" RAFT ", \"ControlToken\": \"${FRENO_TEST_UNSET}\"}",
            "config t.json: ControlToken: environment variable FRENO_TEST_UNSET is not set");
    setenv("FRENO_TEST_EMPTY", "", 1);
    load_fails_with("{" RAFT ", \"ControlToken\": \"${FRENO_TEST_EMPTY}\"}",
                    "config t.json: ControlToken: environment variable FRENO_TEST_EMPTY is empty");
    unsetenv("FRENO_TEST_EMPTY");
    c = load_ok("{" RAFT ", \"ControlToken\": \"\"}", &d);
    assert_null(c->control_token);
    config_free(c);
    config_diag_deinit(&d);

    const char *vars[] = {"FRENO_TEST_HOST", "FRENO_TEST_SCHEMA", "FRENO_TEST_USER",
                          "FRENO_TEST_PASS", "FRENO_TEST_DC",     "FRENO_TEST_ENV",
                          "FRENO_TEST_SD",   "FRENO_TEST_TOKEN"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

/* ---- several files ---- */

static void test_merge_order(void **state)
{
    (void)state;
    char *base = fixture("merge-base.json");
    char *over = fixture("merge-override.json");
    const char *paths[] = {base, over};
    struct config_diag d = {0};
    struct config *c = NULL;

    assert_int_equal(config_load_files(paths, 2, false, &c, &d), 0);
    assert_int_equal(d.warnings_len, 0);
    assert_int_equal(c->listen_port, 1002);
    assert_string_equal(c->domain, "dc1:prod");
    assert_int_equal(c->memcache_servers.len, 2);
    assert_string_equal(c->memcache_servers.v[0], "m2:11211");
    /* Stores.MySQL merges key by key. */
    assert_string_equal(c->mysql_defaults.user, "base-user");
    assert_true(c->mysql_defaults.throttle_threshold == 2);
    assert_int_equal(c->clusters_len, 3);
    const struct config_cluster *a = config_find_cluster(c, "alpha");
    assert_int_equal(a->source, CONFIG_SOURCE_STATIC);
    assert_int_equal(a->static_hosts[1].port, 3310);
    assert_true(a->throttle_threshold == 2);
    /* A cluster named again is replaced as a whole, as in Go's map decoding:
     * beta loses its Port, threshold and static hosts from the first file. */
    const struct config_cluster *b = config_find_cluster(c, "beta");
    assert_int_equal(b->source, CONFIG_SOURCE_HAPROXY);
    assert_int_equal(b->port, 3310);
    assert_true(b->throttle_threshold == 2);
    assert_int_equal(b->static_hosts_len, 0);
    assert_string_equal(b->haproxy_addresses.v[0], "http://lb:8080");
    assert_non_null(config_find_cluster(c, "gamma"));
    config_free(c);

    /* Reverse order. */
    paths[0] = over;
    paths[1] = base;
    assert_int_equal(config_load_files(paths, 2, false, &c, &d), 0);
    assert_int_equal(c->listen_port, 1001);
    assert_int_equal(c->memcache_servers.len, 1);
    assert_true(c->mysql_defaults.throttle_threshold == 1);
    b = config_find_cluster(c, "beta");
    assert_int_equal(b->source, CONFIG_SOURCE_STATIC);
    assert_int_equal(b->port, 3320);
    assert_true(b->throttle_threshold == 7);
    assert_int_equal(c->clusters_len, 3);
    config_free(c);
    config_diag_deinit(&d);

    /* Missing files: skipped in search mode, an error otherwise. */
    const char *with_missing[] = {"/nonexistent/freno.conf.json", base};
    assert_int_equal(config_load_files(with_missing, 2, true, &c, &d), 0);
    assert_int_equal(c->listen_port, 1001);
    config_free(c);
    assert_int_equal(config_load_files(with_missing, 2, false, &c, &d), -EINVAL);
    assert_null(c);
    expect_error(&d, "config /nonexistent/freno.conf.json: open: No such file or directory");
    assert_int_equal(d.errors_len, 1);
    config_diag_deinit(&d);

    /* No file at all: only defaults, which are not enough. */
    assert_int_equal(config_load_files(with_missing, 1, true, &c, &d), -EINVAL);
    expect_error(&d, "config: one of BackendMySQLHost or RaftDataDir must be set");
    config_diag_deinit(&d);

    /* Clusters: null in a later file drops the earlier clusters. */
    char dir[] = "/tmp/test_config.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *nul = xasprintf("%s/null.json", dir);
    FILE *f = fopen(nul, "w");
    assert_non_null(f);
    fputs("{\"Stores\": {\"MySQL\": {\"Clusters\": null, \"User\": null}}}", f);
    fclose(f);
    paths[0] = base;
    paths[1] = nul;
    assert_int_equal(config_load_files(paths, 2, false, &c, &d), 0);
    assert_int_equal(c->clusters_len, 0);
    assert_string_equal(c->mysql_defaults.user, "base-user");
    config_free(c);
    config_diag_deinit(&d);

    /* A directory cannot be read. */
    const char *dirs[] = {dir};
    assert_int_equal(config_load_files(dirs, 1, true, &c, &d), -EINVAL);
    char *msg = xasprintf("config %s: read: Is a directory", dir);
    expect_error(&d, msg);
    assert_int_equal(d.errors_len, 1);
    config_diag_deinit(&d);

    unlink(nul);
    rmdir(dir);
    free(msg);
    free(nul);
    free(base);
    free(over);
}

/* ---- errors ---- */

static void test_syntax_errors(void **state)
{
    (void)state;
    load_fails_with("{\"ListenPort\": 1,\n  \"RaftDataDir\": }",
                    "config t.json: line 2 column 18: unexpected token");
    load_fails_with("", "config t.json: line 1 column 0: '[' or '{' expected near end of file");
    load_fails_with("[1, 2]",
                    "config t.json: expected a JSON object at the top level, got an array");
    /* A syntax error on a password line does not quote the text. */
    load_fails_with("{\"RaftDataDir\": \"x\",\n \"BackendMySQLPassword\": hunter2}",
                    "config t.json: line 2 column 31: invalid token");
    load_fails_with("{\"RaftDataDir\": \"x\",\n \"ControlToken\": \"abc\\q\"}",
                    "config t.json: line 2 column 23: invalid escape");
    /* Nor when the secret is on a line of its own: no text of the file is
     * ever quoted, only the position. */
    load_fails_with("{\"RaftDataDir\": \"x\",\n \"BackendMySQLPassword\":\n   \"hunter2\n}",
                    "config t.json: line 3 column 11: unexpected newline");
    load_fails_with("{\"RaftDataDir\": \"x\",\n \"ControlToken\": [\n   hunter2\n ]}",
                    "config t.json: line 3 column 9: invalid token");
}

/* Values echoed in errors lose their credentials; values of secret keys are
 * never echoed. */
static void test_errors_mask_credentials(void **state)
{
    (void)state;
    load_fails_with("{" RAFT ", \"ControlToken\": 12345}",
                    "config t.json: ControlToken: expected a string, got a number");
    load_fails_with(
            CLUSTERS("\"v\": {\"VitessSettings\": {\"API\": \"ftp://u:hunter2@vt/\", "
                     "\"Keyspace\": \"k\"}}"),
            "config t.json: Stores.MySQL.Clusters.v.VitessSettings.API: expected an http:// "
            "or https:// URL, got \"ftp://***@vt/\"");
    load_fails_with(CLUSTERS("\"s\": {\"StaticHostsSettings\": {\"Hosts\": [\"u:hunter2@db:x\"]}}"),
                    "config t.json: Stores.MySQL.Clusters.s.StaticHostsSettings.Hosts[0]: "
                    "\"***@db:x\": invalid port or IPv6 address");
    load_fails_with("{" RAFT ", \"MemcachePath\": \"http://u:hunter2@x/\", \"ListenPort\": "
                    "\"http://u:hunter2@x/\"}",
                    "config t.json: ListenPort: expected an integer, got \"http://***@x/\"");
}

static void test_type_errors(void **state)
{
    (void)state;
    load_fails_with(
            CLUSTERS("\"main\": {\"ThrottleThreshold\": \"abc\", "
                     "\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}"),
            "config t.json: Stores.MySQL.Clusters.main.ThrottleThreshold: expected a number, got "
            "\"abc\"");
    load_fails_with("{" RAFT ", \"ListenPort\": 3.5}",
                    "config t.json: ListenPort: expected an integer, got 3.5");
    load_fails_with("{" RAFT ", \"ListenPort\": \"8080\"}",
                    "config t.json: ListenPort: expected an integer, got \"8080\"");
    load_fails_with("{" RAFT ", \"ListenPort\": 70000}",
                    "config t.json: ListenPort: expected 1..65535, got 70000");
    load_fails_with("{" RAFT ", \"ListenPort\": 0}",
                    "config t.json: ListenPort: expected 1..65535, got 0");
    load_fails_with("{" RAFT ", \"BackendElectionExpirySecs\": 1}",
                    "config t.json: BackendElectionExpirySecs: expected 3..60, got 1");
    load_fails_with("{" RAFT ", \"BackendElectionExpirySecs\": 61}",
                    "config t.json: BackendElectionExpirySecs: expected 3..60, got 61");
    load_fails_with("{" RAFT ", \"MaxThrottledApps\": 0}",
                    "config t.json: MaxThrottledApps: expected 1..1000000, got 0");
    load_fails_with("{" RAFT ", \"MaxSkippedHosts\": 1000001}",
                    "config t.json: MaxSkippedHosts: expected 1..1000000, got 1000001");
    load_fails_with(
            "{" RAFT ", \"Stores\": {\"MySQL\": {\"ThrottleThreshold\": -1}}}",
            "config t.json: Stores.MySQL.ThrottleThreshold: expected a number >= 0, got -1");
    load_fails_with("{" RAFT ", \"Stores\": {\"MySQL\": {\"HttpCheckPort\": -2}}}",
                    "config t.json: Stores.MySQL.HttpCheckPort: expected -1..65535, got -2");
    load_fails_with("{" RAFT ", \"EnableProfiling\": \"yes\"}",
                    "config t.json: EnableProfiling: expected true or false, got \"yes\"");
    load_fails_with("{" RAFT ", \"RaftNodes\": \"a,b\"}",
                    "config t.json: RaftNodes: expected an array of strings, got \"a,b\"");
    load_fails_with("{" RAFT ", \"RaftNodes\": [\"a\", 2]}",
                    "config t.json: RaftNodes[1]: expected a string, got 2");
    load_fails_with("{" RAFT ", \"DataCenter\": {}}",
                    "config t.json: DataCenter: expected a string, got an object");
    load_fails_with("{" RAFT ", \"Stores\": []}",
                    "config t.json: Stores: expected an object, got an array");
    load_fails_with("{" RAFT ", \"Stores\": {\"MySQL\": {\"Clusters\": 1}}}",
                    "config t.json: Stores.MySQL.Clusters: expected an object, got 1");
    load_fails_with(CLUSTERS("\"c\": null"),
                    "config t.json: Stores.MySQL.Clusters.c: expected an object, got null");
    load_fails_with(CLUSTERS("\"c\": {\"ProxySQLSettings\": {\"HostgroupID\": -1}, "
                             "\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}"),
                    "config t.json: Stores.MySQL.Clusters.c.ProxySQLSettings.HostgroupID: expected "
                    "0..4294967295, got -1");
    /* Secrets are described, never shown. */
    load_fails_with("{" RAFT ", \"BackendMySQLPassword\": 123456}",
                    "config t.json: BackendMySQLPassword: expected a string, got a number");
    load_fails_with(
            CLUSTERS("\"c\": {\"Password\": [\"x\"], "
                     "\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}"),
            "config t.json: Stores.MySQL.Clusters.c.Password: expected a string, got an array");
    /* Long values are cut. */
    load_fails_with("{" RAFT ", \"ListenPort\": \""
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                    "config t.json: ListenPort: expected an integer, got "
                    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
}

static void test_validation_errors(void **state)
{
    (void)state;
    load_fails_with("{}", "config: one of BackendMySQLHost or RaftDataDir must be set");
    load_fails_with("{\"BackendMySQLHost\": \"db\"}",
                    "config: BackendMySQLSchema must be set when BackendMySQLHost is set");

    struct config_diag d = {0};
    struct config *c = load_ok("{\"BackendMySQLHost\": \"db\", \"BackendMySQLSchema\": \"s\"}", &d);
    config_free(c);
    c = load_ok("{\"RaftDataDir\": \"/d\", \"RaftNodes\": []}", &d);
    config_free(c);
    config_diag_deinit(&d);
}

static void test_every_error_reported(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = NULL;
    int rc = config_load_string("{\"ListenPort\": \"x\", \"BackendMySQLPort\": 0,"
                                "\"Stores\": {\"MySQL\": {\"Port\": 1.5, \"Clusters\": {"
                                "\"a\": {}, \"b\": {\"CacheMillis\": -1, "
                                "\"StaticHostsSettings\": {\"Hosts\": [\"x:y\"]}}}}},"
                                "\"Unknown\": 1}",
                                "t.json", &c, &d);
    assert_int_equal(rc, -EINVAL);
    assert_null(c);
    expect_error(&d, "config t.json: ListenPort: expected an integer, got \"x\"");
    expect_error(&d, "config t.json: BackendMySQLPort: expected 1..65535, got 0");
    expect_error(&d, "config t.json: Stores.MySQL.Port: expected an integer, got 1.5");
    expect_error(&d, "config t.json: Stores.MySQL.Clusters.b.CacheMillis: expected 0..86400000, "
                     "got -1");
    expect_error(&d, "config: one of BackendMySQLHost or RaftDataDir must be set");
    expect_error(&d, "config t.json: Stores.MySQL.Clusters.a: no host source; set one of "
                     "StaticHostsSettings, HAProxySettings, ProxySQLSettings or VitessSettings");
    expect_error(&d, "config t.json: Stores.MySQL.Clusters.b.StaticHostsSettings.Hosts[0]: "
                     "\"x:y\": invalid port");
    assert_int_equal(d.errors_len, 7);
    expect_warning(&d, "config t.json: Unknown: unknown key");
    config_diag_deinit(&d);
}

static void test_warnings(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c =
            load_ok("{" RAFT ", \"Typo\": 1, \"listenport\": 1234, \"Stores\": {\"Redis\": {},"
                    "\"MySQL\": {\"Bogus\": [], \"Clusters\": {"
                    "\"c\": {\"Extra\": {\"Deep\": 1}, \"HAProxySettings\": {\"PoolName\": \"p\", "
                    "  \"Host\": \"h\", \"Port\": 1, \"Weird\": true},"
                    "  \"IgnoreHosts\": [\"\"]},"
                    "\"bad/name\": {\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}},"
                    "\"ctl\\u0001\": {\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}"
                    "}}}} trailing",
                    &d);
    assert_int_equal(c->listen_port, 1234);
    expect_warning(&d, "config t.json: Typo: unknown key");
    expect_warning(&d, "config t.json: ListenPort: written as \"listenport\"; matched ignoring "
                       "case");
    expect_warning(&d, "config t.json: Stores.Redis: unknown key");
    expect_warning(&d, "config t.json: Stores.MySQL.Bogus: unknown key");
    expect_warning(&d, "config t.json: Stores.MySQL.Clusters.c.Extra: unknown key");
    expect_warning(&d, "config t.json: Stores.MySQL.Clusters.c.HAProxySettings.Weird: unknown "
                       "key");
    expect_warning(&d, "config t.json: Stores.MySQL.Clusters.c.IgnoreHosts[0]: an empty string "
                       "matches every host, so none is probed");
    expect_warning(&d, "config t.json: Stores.MySQL.Clusters.bad/name: this cluster name cannot "
                       "be used in /check/<app>/mysql/<name>");
    expect_warning(&d, "config t.json: Stores.MySQL.Clusters.ctl?: this cluster name cannot be "
                       "used in /check/<app>/mysql/<name>");
    expect_warning(&d, "config t.json: line 1 column 359: ignoring text after the JSON object");
    assert_int_equal(d.warnings_len, 10);
    assert_non_null(config_find_cluster(c, "ctl\001"));
    config_free(c);
    config_diag_deinit(&d);
}

static void test_null_and_numbers(void **state)
{
    (void)state;
    struct config_diag d = {0};
    /* null keeps scalars, empties arrays; 3.0 is an integer; duplicates: last wins. */
    struct config *c = load_ok("{" RAFT ", \"ListenPort\": null, \"MemcachePath\": null,"
                               "\"RaftNodes\": null, \"Stores\": null,"
                               "\"DefaultRaftPort\": 3.0, \"BackendMySQLPort\": 1e3,"
                               "\"DataCenter\": \"a\", \"DataCenter\": \"b\"}",
                               &d);
    assert_int_equal(c->listen_port, 8087);
    assert_string_equal(c->memcache_path, "freno");
    assert_int_equal(c->raft_nodes.len, 0);
    assert_int_equal(c->default_raft_port, 3);
    assert_int_equal(c->backend_port, 1000);
    assert_string_equal(c->data_center, "b");
    config_free(c);
    config_diag_deinit(&d);
}

static void test_secrets_never_shown(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = NULL;
    setenv("FRENO_TEST_SECRET", "hunter2", 1);
    config_load_string("{\"BackendMySQLPassword\": 999, \"ControlToken\": [\"hunter2\"],"
                       "\"Stores\": {\"MySQL\": {\"Password\": \"${FRENO_TEST_SECRET}\","
                       "\"ProxySQLPassword\": {\"hunter2\": 1}, \"Clusters\": {"
                       "\"c\": {\"Password\": \"hunter2\", \"User\": 5,"
                       "\"ProxySQLSettings\": {\"Password\": 1}}}}}}",
                       "t.json", &c, &d);
    unsetenv("FRENO_TEST_SECRET");
    assert_null(c);
    assert_true(d.errors_len > 0);
    for (size_t i = 0; i < d.errors_len; i++) {
        assert_null(strstr(d.errors[i], "hunter2"));
        assert_null(strstr(d.errors[i], "999"));
    }
    for (size_t i = 0; i < d.warnings_len; i++)
        assert_null(strstr(d.warnings[i], "hunter2"));
    expect_error(&d, "config t.json: Stores.MySQL.ProxySQLPassword: expected a string, got an "
                     "object");
    expect_error(&d, "config t.json: Stores.MySQL.Clusters.c.User: expected a string, got 5");
    config_diag_deinit(&d);
}

static void test_diag_appends(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = NULL;
    assert_int_equal(config_load_string("{}", "one", &c, &d), -EINVAL);
    assert_int_equal(d.errors_len, 1);
    /* Earlier errors in @diag do not make a good load fail. */
    assert_int_equal(config_load_string("{" RAFT "}", "two", &c, &d), 0);
    assert_int_equal(d.errors_len, 1);
    config_free(c);
    config_free(NULL);
    config_diag_deinit(&d);
    config_diag_deinit(&d);
}

/* ---- the key table ---- */

static void test_key_table(void **state)
{
    (void)state;
    size_t n;
    const struct config_key *keys = config_keys_table(&n);

    assert_true(n > 60);
    for (size_t i = 0; i < n; i++) {
        const struct config_key *k = &keys[i];
        assert_non_null(k->desc);
        assert_true(k->desc[0] != '\0');
        assert_ptr_equal(config_key_by_name(k->name), k);
        bool in_cluster = strncmp(k->name, "Stores.MySQL.Clusters.*.", 24) == 0;
        bool in_metric = strncmp(k->name, "Stores.MySQL.Metrics.*.", 23) == 0;
        if (k->type == CONFIG_KEY_OBJECT || k->type == CONFIG_KEY_CLUSTERS)
            assert_int_equal(k->base, CONFIG_BASE_NONE);
        else if (in_metric)
            assert_int_equal(k->base, CONFIG_BASE_METRIC);
        else
            assert_int_equal(k->base, in_cluster ? CONFIG_BASE_CLUSTER : CONFIG_BASE_CONFIG);
        if (k->type == CONFIG_KEY_INT || k->type == CONFIG_KEY_PORT ||
            k->type == CONFIG_KEY_DOUBLE) {
            assert_true(k->min <= k->def_num || (k->flags & CONFIG_KEY_ZERO_DEFAULT));
            assert_true(k->def_num <= k->max);
        }
        if (k->inherit != NULL) {
            assert_true(in_cluster);
            const struct config_key *from = config_key_by_name(k->inherit);
            assert_non_null(from);
            assert_int_equal(from->type, k->type);
            assert_int_equal(from->base, CONFIG_BASE_CONFIG);
        }
        if (k->flags & CONFIG_KEY_SELECTS)
            assert_int_not_equal(k->source, CONFIG_SOURCE_NONE);
        /* Every parent object is in the table too. */
        const char *dot = strrchr(k->name, '.');
        if (dot != NULL) {
            char *parent = xstrndup(k->name, (size_t)(dot - k->name));
            size_t plen = strlen(parent);
            if (plen >= 2 && strcmp(parent + plen - 2, ".*") == 0)
                parent[plen - 2] = '\0';
            assert_non_null(config_key_by_name(parent));
            free(parent);
        }
    }
    bool exact;
    assert_ptr_equal(config_key_find("", "ListenPort", &exact), config_key_by_name("ListenPort"));
    assert_true(exact);
    assert_ptr_equal(config_key_find("Stores.MySQL", "port", &exact),
                     config_key_by_name("Stores.MySQL.Port"));
    assert_false(exact);
    assert_null(config_key_find("", "Port", &exact));
    assert_null(config_key_find("Stores", "MySQL.Port", &exact));
}

/* The caps on tables of client-chosen names: defaults, values, bounds. */
static void test_name_caps(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = load_ok("{" RAFT "}", &d);
    assert_int_equal(c->max_counted_apps, 2000);
    assert_int_equal(c->max_counted_app_stores, 2000);
    assert_int_equal(c->max_recent_apps, 10000);
    config_free(c);
    config_diag_deinit(&d);
    c = load_ok("{" RAFT ", \"MaxCountedApps\": 0, \"MaxCountedAppStores\": 7, "
                "\"MaxRecentApps\": 1000000}",
                &d);
    assert_int_equal(d.warnings_len, 0);
    assert_int_equal(c->max_counted_apps, 0);
    assert_int_equal(c->max_counted_app_stores, 7);
    assert_int_equal(c->max_recent_apps, 1000000);
    config_free(c);
    config_diag_deinit(&d);
    load_fails_with("{" RAFT ", \"MaxRecentApps\": -1}",
                    "config t.json: MaxRecentApps: expected 0..1000000, got -1");
    load_fails_with("{" RAFT ", \"MaxCountedApps\": 1000001}",
                    "config t.json: MaxCountedApps: expected 0..1000000, got 1000001");
}

/* One table of host source names serves the config's messages and the
 * inventory's log lines. */
static void test_source_names(void **state)
{
    (void)state;
    static const struct {
        enum config_host_source s;
        const char *key, *name;
    } want[] = {
            {CONFIG_SOURCE_NONE, "none", "none"},
            {CONFIG_SOURCE_STATIC, "StaticHostsSettings", "static"},
            {CONFIG_SOURCE_HAPROXY, "HAProxySettings", "haproxy"},
            {CONFIG_SOURCE_PROXYSQL, "ProxySQLSettings", "proxysql"},
            {CONFIG_SOURCE_VITESS, "VitessSettings", "vitess"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_string_equal(config_source_key(want[i].s), want[i].key);
        assert_string_equal(config_source_name(want[i].s), want[i].name);
        /* The key is the settings object of the table. */
        if (want[i].s != CONFIG_SOURCE_NONE) {
            char *path = xasprintf("Stores.MySQL.Clusters.*.%s", want[i].key);
            const struct config_key *k = config_key_by_name(path);
            assert_non_null(k);
            assert_int_equal(k->type, CONFIG_KEY_OBJECT);
            free(path);
        }
    }
    assert_string_equal(config_source_name((enum config_host_source)99), "none");
}

/* The comma-separated list splitter of --raft-nodes and HAProxy Addresses. */
static void test_strv_set_csv(void **state)
{
    (void)state;
    struct config_strv sv = {0};
    config_strv_set_csv(&sv, "a,,b, c,");
    assert_int_equal(sv.len, 3);
    assert_string_equal(sv.v[0], "a");
    assert_string_equal(sv.v[1], "b");
    assert_string_equal(sv.v[2], " c"); /* blanks are the caller's to judge */
    config_strv_set_csv(&sv, ",,,");
    assert_int_equal(sv.len, 0);
    config_strv_set_csv(&sv, "10.0.0.1:9888");
    assert_int_equal(sv.len, 1);
    assert_string_equal(sv.v[0], "10.0.0.1:9888");
    config_strv_set_csv(&sv, "");
    assert_int_equal(sv.len, 0);
    free(sv.v);
}

/* Freeing and filling walk the table, so no two value keys may share a
 * field (that would free it twice). */
static void test_key_fields_distinct(void **state)
{
    (void)state;
    size_t n;
    const struct config_key *keys = config_keys_table(&n);
    for (size_t i = 0; i < n; i++) {
        if (keys[i].base == CONFIG_BASE_NONE)
            continue;
        for (size_t j = i + 1; j < n; j++) {
            if (keys[j].base == keys[i].base && keys[j].offset == keys[i].offset)
                fail_msg("%s and %s share a field", keys[i].name, keys[j].name);
        }
    }
}

/* Host names are bounded (core/hostport): 255 bytes are taken, 256 are not. */
static void test_host_name_bound(void **state)
{
    (void)state;
    char name[300];
    memset(name, 'h', 255);
    name[255] = '\0';
    char *json =
            xasprintf(CLUSTERS("\"s\": {\"StaticHostsSettings\": {\"Hosts\": [\"%s:1\"]}}"), name);
    struct config_diag d = {0};
    struct config *c = load_ok(json, &d);
    assert_int_equal(strlen(config_find_cluster(c, "s")->static_hosts[0].host), 255);
    config_free(c);
    config_diag_deinit(&d);
    free(json);

    name[255] = 'h';
    name[256] = '\0';
    json = xasprintf(CLUSTERS("\"s\": {\"StaticHostsSettings\": {\"Hosts\": [\"%s\"]}}"), name);
    load_fails_with(json, "config t.json: Stores.MySQL.Clusters.s.StaticHostsSettings.Hosts[0]: "
                          "\"hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh...\": "
                          "host name longer than 255 bytes");
    free(json);
}

/* ---- Metrics and IgnoreHostsPercent (extensions) ---- */

#define THREADS_Q "show global status like 'threads_running'"

static void test_metrics(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = load_ok("{" RAFT ", \"CheckDetails\": true, \"Stores\": {\"MySQL\": {"
                               "\"MetricQuery\": \"select lag\", \"ThrottleThreshold\": 1,"
                               "\"IgnoreHostsPercent\": 12.5,"
                               "\"Metrics\": {"
                               "  \"threads\": {\"Query\": \"" THREADS_Q
                               "\", \"Threshold\": 64, \"CacheMillis\": 100},"
                               "  \"hll\": {\"Query\": \"select h\", \"Threshold\": 1000000,"
                               "           \"IgnoreHostsThreshold\": 5000}},"
                               "\"Clusters\": {"
                               "\"inherits\": {\"StaticHostsSettings\": {\"Hosts\": [\"h1\"]}},"
                               "\"own\": {\"IgnoreHostsPercent\": 50, \"Metrics\": {"
                               "    \"threads\": {\"Threshold\": 128},"
                               "    \"hll\": null,"
                               "    \"Z-9_x\": {\"Query\": \"select z\"}},"
                               "  \"StaticHostsSettings\": {\"Hosts\": [\"h2\"]}},"
                               "\"none\": {\"Metrics\": {\"threads\": null, \"hll\": null},"
                               "  \"StaticHostsSettings\": {\"Hosts\": [\"h3\"]}}"
                               "}}}}",
                               &d);
    assert_int_equal(d.warnings_len, 0);
    assert_true(c->check_details);
    assert_true(c->mysql_defaults.ignore_hosts_percent == 12.5);

    /* Every Stores.MySQL metric, sorted by name. */
    const struct config_cluster *a = config_find_cluster(c, "inherits");
    assert_true(a->ignore_hosts_percent == 12.5);
    assert_int_equal(a->metrics.len, 2);
    assert_string_equal(a->metrics.v[0].name, "hll");
    assert_string_equal(a->metrics.v[0].query, "select h");
    assert_true(a->metrics.v[0].threshold == 1000000);
    assert_int_equal(a->metrics.v[0].cache_millis, 0);
    assert_true(a->metrics.v[0].ignore_hosts_threshold == 5000);
    assert_string_equal(a->metrics.v[1].name, "threads");
    assert_string_equal(a->metrics.v[1].query, THREADS_Q);
    assert_true(a->metrics.v[1].threshold == 64);
    assert_int_equal(a->metrics.v[1].cache_millis, 100);
    assert_string_equal(a->metric_query, "select lag");

    /* A cluster's entry is merged member by member with the inherited one;
     * null drops an inherited metric; names are case-sensitive and sorted
     * bytewise. */
    const struct config_cluster *o = config_find_cluster(c, "own");
    assert_true(o->ignore_hosts_percent == 50);
    assert_int_equal(o->metrics.len, 2);
    assert_string_equal(o->metrics.v[0].name, "Z-9_x");
    assert_string_equal(o->metrics.v[0].query, "select z");
    assert_true(o->metrics.v[0].threshold == 0);
    assert_string_equal(o->metrics.v[1].name, "threads");
    assert_string_equal(o->metrics.v[1].query, THREADS_Q);
    assert_true(o->metrics.v[1].threshold == 128);
    assert_int_equal(o->metrics.v[1].cache_millis, 100);

    assert_int_equal(config_find_cluster(c, "none")->metrics.len, 0);
    assert_int_equal(c->mysql_defaults.metrics.len, 2);
    config_free(c);
    config_diag_deinit(&d);

    /* Without the keys: nothing extra. */
    c = load_ok(CLUSTERS("\"s\": {\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}"), &d);
    assert_false(c->check_details);
    assert_int_equal(config_find_cluster(c, "s")->metrics.len, 0);
    assert_true(config_find_cluster(c, "s")->ignore_hosts_percent == 0);
    config_free(c);
    config_diag_deinit(&d);

    /* A metric without a query is replication lag, which is said. */
    c = load_ok(CLUSTERS("\"s\": {\"Metrics\": {\"lag\": {\"Threshold\": 2}},"
                         "\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}"),
                &d);
    expect_warning(&d, "config t.json: Stores.MySQL.Clusters.s.Metrics.lag.Query: empty, so the "
                       "metric is replication lag");
    assert_string_equal(config_find_cluster(c, "s")->metrics.v[0].query, "");
    config_free(c);
    config_diag_deinit(&d);

    /* Unknown members warn, as everywhere. */
    c = load_ok(CLUSTERS("\"s\": {\"Metrics\": {\"m\": {\"Query\": \"select 1\", "
                         "\"Treshold\": 2}}, \"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}"),
                &d);
    expect_warning(&d, "config t.json: Stores.MySQL.Clusters.s.Metrics.m.Treshold: unknown key");
    config_free(c);
    config_diag_deinit(&d);
}

static void test_metrics_merge_files(void **state)
{
    (void)state;
    char *base = fixture("metrics-base.json");
    char *over = fixture("metrics-override.json");
    const char *paths[] = {base, over};
    struct config_diag d = {0};
    struct config *c = NULL;
    assert_int_equal(config_load_files(paths, 2, false, &c, &d), 0);
    /* A later file's entry replaces the entry of its name whole, null drops
     * one, the others stay. */
    const struct config_metrics *ms = &config_find_cluster(c, "main")->metrics;
    assert_int_equal(ms->len, 2);
    assert_string_equal(ms->v[0].name, "hll");
    assert_int_equal(ms->v[0].cache_millis, 1000);
    assert_string_equal(ms->v[1].name, "threads");
    assert_string_equal(ms->v[1].query, "show global status like 'threads_connected'");
    assert_true(ms->v[1].threshold == 500);
    config_free(c);
    config_diag_deinit(&d);
    free(base);
    free(over);
}

static void test_metrics_errors(void **state)
{
    (void)state;
#define ONE_CLUSTER(metrics)                                                                       \
    CLUSTERS("\"s\": {\"Metrics\": " metrics ", \"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}")
    load_fails_with(ONE_CLUSTER("{\"default\": {\"Query\": \"select 1\"}}"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics.default: a metric name is 1 "
                    "to 32 letters, digits, '_' or '-', and not \"default\"");
    load_fails_with(ONE_CLUSTER("{\"Default\": {\"Query\": \"select 1\"}}"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics.Default: a metric name is 1 "
                    "to 32 letters, digits, '_' or '-', and not \"default\"");
    load_fails_with(ONE_CLUSTER("{\"a/b\": {\"Query\": \"select 1\"}}"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics.a/b: a metric name is 1 to "
                    "32 letters, digits, '_' or '-', and not \"default\"");
    load_fails_with(ONE_CLUSTER("{\"\": {\"Query\": \"select 1\"}}"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics.: a metric name is 1 to 32 "
                    "letters, digits, '_' or '-', and not \"default\"");
    load_fails_with(
            ONE_CLUSTER("{\"abcdefghijklmnopqrstuvwxyz0123456\": {\"Query\": \"select 1\"}}"),
            "config t.json: Stores.MySQL.Clusters.s.Metrics.abcdefghijklmnopqrstuvwxyz0123456: a "
            "metric name is 1 to 32 letters, digits, '_' or '-', and not \"default\"");
    struct config_diag d = {0};
    struct config *c = load_ok(
            ONE_CLUSTER("{\"abcdefghijklmnopqrstuvwxyz012345\": {\"Query\": \"select 1\"}}"), &d);
    config_free(c);
    config_diag_deinit(&d);
    load_fails_with(ONE_CLUSTER("[]"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics: expected an object, got an "
                    "array");
    load_fails_with(ONE_CLUSTER("{\"m\": 3}"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics.m: expected an object or null, "
                    "got 3");
    load_fails_with(ONE_CLUSTER("{\"m\": {\"Threshold\": -1}}"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics.m.Threshold: expected a number "
                    ">= 0, got -1");
    load_fails_with(ONE_CLUSTER("{\"m\": {\"Query\": 5}}"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics.m.Query: expected a string, "
                    "got 5");
    load_fails_with(ONE_CLUSTER("{\"m\": {\"Query\": \"select 1\", \"CacheMillis\": 1.5}}"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics.m.CacheMillis: expected an "
                    "integer, got 1.5");
    load_fails_with(
            ONE_CLUSTER("{\"m\": {\"Query\": \"select 1\", \"CacheMillis\": 86400001}}"),
            "config t.json: Stores.MySQL.Clusters.s.Metrics.m.CacheMillis: expected 0..86400000, "
            "got 86400001");
    /* Nine metrics besides MetricQuery's are one too many, counted after
     * inheritance; too many in Stores.MySQL is said once, there. */
#define EIGHT                                                                                      \
    "\"m1\": {}, \"m2\": {}, \"m3\": {}, \"m4\": {}, \"m5\": {}, \"m6\": {}, \"m7\": {}, \"m8\": {}"
    c = load_ok(ONE_CLUSTER("{" EIGHT "}"), &d);
    assert_int_equal(config_find_cluster(c, "s")->metrics.len, 8);
    config_free(c);
    config_diag_deinit(&d);
    load_fails_with(ONE_CLUSTER("{" EIGHT ", \"m9\": {}}"),
                    "config t.json: Stores.MySQL.Clusters.s.Metrics: 9 metrics; at most 8 besides "
                    "MetricQuery's");
    load_fails_with("{" RAFT ", \"Stores\": {\"MySQL\": {\"Metrics\": {\"m0\": {}}, "
                    "\"Clusters\": {\"s\": {\"Metrics\": {" EIGHT "}, "
                    "\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}}}}}",
                    "config t.json: Stores.MySQL.Clusters.s.Metrics: 9 metrics; at most 8 besides "
                    "MetricQuery's");
    load_fails_with("{" RAFT ", \"Stores\": {\"MySQL\": {\"Metrics\": {" EIGHT ", \"m9\": {}}, "
                    "\"Clusters\": {\"s\": {\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}, "
                    "\"t\": {\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}}}}}",
                    "config t.json: Stores.MySQL.Metrics: 9 metrics; at most 8 besides "
                    "MetricQuery's");
    /* A cluster may bring the count back under the bound by dropping some. */
    c = load_ok("{" RAFT ", \"Stores\": {\"MySQL\": {\"Metrics\": {\"m0\": {}}, "
                "\"Clusters\": {\"s\": {\"Metrics\": {" EIGHT ", \"m0\": null}, "
                "\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}}}}}",
                &d);
    assert_int_equal(config_find_cluster(c, "s")->metrics.len, 8);
    config_free(c);
    config_diag_deinit(&d);
    /* Decoding stops at 64 entries an object. */
    char big[4096];
    size_t o = 0;
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"n%d\": null", i ? ", " : "", i);
    char *json = xasprintf("{" RAFT ", \"Stores\": {\"MySQL\": {\"Metrics\": {%s}}}}", big);
    load_fails_with(json, "config t.json: Stores.MySQL.Metrics: 65 entries; at most 64 are read");
    free(json);
#undef EIGHT
#undef ONE_CLUSTER
}

static void test_ignore_hosts_percent_bounds(void **state)
{
    (void)state;
    load_fails_with("{" RAFT ", \"Stores\": {\"MySQL\": {\"IgnoreHostsPercent\": 100.5}}}",
                    "config t.json: Stores.MySQL.IgnoreHostsPercent: expected 0..100, got 100.5");
    load_fails_with(CLUSTERS("\"s\": {\"IgnoreHostsPercent\": -1, "
                             "\"StaticHostsSettings\": {\"Hosts\": [\"h\"]}}"),
                    "config t.json: Stores.MySQL.Clusters.s.IgnoreHostsPercent: expected 0..100, "
                    "got -1");
    load_fails_with("{" RAFT ", \"CheckDetails\": 1}",
                    "config t.json: CheckDetails: expected true or false, got 1");
}

/* ---- TLS, ListenAddress, ControlTokens ---- */

static void test_security_keys(void **state)
{
    (void)state;
    struct config_diag d = {0};
    struct config *c = load_ok("{" RAFT "}", &d);
    assert_string_equal(c->listen_address, "");
    assert_string_equal(c->tls_cert_file, "");
    assert_string_equal(c->tls_key_file, "");
    assert_string_equal(c->tls_client_ca_file, "");
    assert_int_equal(c->control_tokens.len, 0);
    assert_int_equal(c->audit_log_max_days, 90);
    assert_int_equal(c->audit_log_max_rows, 100000);
    config_free(c);
    config_diag_deinit(&d);

    setenv("FRENO_TEST_OPS_TOKEN", "0ps-from-env", 1);
    c = load_ok("{" RAFT ", \"ListenAddress\": \"::1\", \"TLSCertFile\": \"/c.pem\","
                " \"TLSKeyFile\": \"/k.pem\", \"TLSClientCAFile\": \"/ca.pem\","
                " \"ControlTokens\": {\"ops\": \"${FRENO_TEST_OPS_TOKEN}\", \"ci_bot-2\": \"x\"},"
                " \"AuditLogMaxDays\": 7, \"AuditLogMaxRows\": 500}",
                &d);
    assert_string_equal(c->listen_address, "::1");
    assert_string_equal(c->tls_cert_file, "/c.pem");
    assert_string_equal(c->tls_client_ca_file, "/ca.pem");
    assert_int_equal(c->control_tokens.len, 2);
    assert_string_equal(c->control_tokens.names[0], "ops");
    assert_string_equal(c->control_tokens.secrets[0], "0ps-from-env");
    assert_string_equal(c->control_tokens.names[1], "ci_bot-2");
    assert_int_equal(c->audit_log_max_days, 7);
    assert_int_equal(c->audit_log_max_rows, 500);
    config_free(c);
    config_diag_deinit(&d);
    unsetenv("FRENO_TEST_OPS_TOKEN");

    static const char *const good[] = {
            "127.0.0.2",        "0.0.0.0",          "::", "fe80::1", "localhost",
            "db-1.example.net", "db-1.example.net."};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(config_listen_address_ok(good[i]));
    static const char *const bad[] = {"[::1]", "127.0.0.1:80", "a b", "-x.example",
                                      "x..y",  "http://h",     "h_1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(config_listen_address_ok(bad[i]));
}

static void test_security_errors(void **state)
{
    (void)state;
    load_fails_with(
            "{" RAFT ", \"TLSCertFile\": \"/c.pem\"}",
            "config: TLSCertFile and TLSKeyFile must be set together (TLSKeyFile is empty)");
    load_fails_with(
            "{" RAFT ", \"TLSKeyFile\": \"/k.pem\"}",
            "config: TLSCertFile and TLSKeyFile must be set together (TLSCertFile is empty)");
    load_fails_with("{" RAFT ", \"TLSClientCAFile\": \"/ca.pem\"}",
                    "config: TLSClientCAFile needs TLSCertFile and TLSKeyFile");
    load_fails_with(
            "{" RAFT ", \"ListenAddress\": \"127.0.0.1:8080\"}",
            "config: ListenAddress: \"127.0.0.1:8080\" is not an IPv4 or IPv6 address or a host name");
    load_fails_with("{" RAFT ", \"ControlTokens\": {\"ops\": \"\"}}",
                    "config: ControlTokens.ops: empty secret");
    load_fails_with(
            "{" RAFT ", \"ControlTokens\": {\"bad name\": \"x\"}}",
            "config: ControlTokens: name \"bad name\" must be 1..32 bytes of A-Z a-z 0-9 _ -");
    load_fails_with("{" RAFT ", \"ControlTokens\": {\"default\": \"x\"}}",
                    "config: ControlTokens: the name \"default\" is reserved for ControlToken");
    load_fails_with(
            "{" RAFT ", \"ControlTokens\": [\"x\"]}",
            "config t.json: ControlTokens: expected an object of token name -> secret, got an array");
    /* A secret's value is never echoed. */
    load_fails_with("{" RAFT ", \"ControlTokens\": {\"ops\": 12345}}",
                    "config t.json: ControlTokens: expected a string secret, got a number");
    load_fails_with(
            "{" RAFT ", \"ControlTokens\": {\"ops\": \"${FRENO_TEST_UNSET}\"}}",
            "config t.json: ControlTokens.ops: environment variable FRENO_TEST_UNSET is not set");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_raft_sample),
            cmocka_unit_test(test_backend_sample),
            cmocka_unit_test(test_skeleton_and_dev),
            cmocka_unit_test(test_all_keys),
            cmocka_unit_test(test_inheritance),
            cmocka_unit_test(test_proxysql),
            cmocka_unit_test(test_vitess),
            cmocka_unit_test(test_static_hosts),
            cmocka_unit_test(test_haproxy),
            cmocka_unit_test(test_host_source_errors),
            cmocka_unit_test(test_env_expansion),
            cmocka_unit_test(test_merge_order),
            cmocka_unit_test(test_syntax_errors),
            cmocka_unit_test(test_errors_mask_credentials),
            cmocka_unit_test(test_type_errors),
            cmocka_unit_test(test_validation_errors),
            cmocka_unit_test(test_every_error_reported),
            cmocka_unit_test(test_warnings),
            cmocka_unit_test(test_null_and_numbers),
            cmocka_unit_test(test_secrets_never_shown),
            cmocka_unit_test(test_diag_appends),
            cmocka_unit_test(test_key_table),
            cmocka_unit_test(test_name_caps),
            cmocka_unit_test(test_source_names),
            cmocka_unit_test(test_strv_set_csv),
            cmocka_unit_test(test_key_fields_distinct),
            cmocka_unit_test(test_host_name_bound),
            cmocka_unit_test(test_metrics),
            cmocka_unit_test(test_metrics_merge_files),
            cmocka_unit_test(test_metrics_errors),
            cmocka_unit_test(test_ignore_hosts_percent_bounds),
            cmocka_unit_test(test_security_keys),
            cmocka_unit_test(test_security_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
