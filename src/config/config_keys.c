/* SPDX-License-Identifier: MIT */
/* The source of truth for every configuration key. Names, defaults and
 * inheritance follow the Go original so that its configs keep loading; bounds
 * and the extensions (BackendElectionExpirySecs, ControlToken,
 * MaxThrottledApps, MaxSkippedHosts, plus cluster-level IgnoreDialTcpErrors
 * and Collation) are ours. Constant data. */
#include "config/config_keys.h"

#include <float.h>
#include <string.h>
#include <strings.h>

#define IN_CONFIG(field) .base = CONFIG_BASE_CONFIG, .offset = offsetof(struct config, field)
#define IN_CLUSTER(field)                                                                          \
    .base = CONFIG_BASE_CLUSTER, .offset = offsetof(struct config_cluster_raw, field)
#define OBJECT .type = CONFIG_KEY_OBJECT, .base = CONFIG_BASE_NONE

#define STRING         .type = CONFIG_KEY_STRING
#define STRV           .type = CONFIG_KEY_STRV
#define BOOL           .type = CONFIG_KEY_BOOL
#define INT(lo, hi)    .type = CONFIG_KEY_INT, .min = (lo), .max = (hi)
#define PORT(lo)       .type = CONFIG_KEY_PORT, .min = (lo), .max = 65535
#define DOUBLE_MIN(lo) .type = CONFIG_KEY_DOUBLE, .min = (lo), .max = DBL_MAX

#define CLUSTER  "Stores.MySQL.Clusters.*."
#define STATIC   CLUSTER "StaticHostsSettings"
#define HAPROXY  CLUSTER "HAProxySettings"
#define PROXYSQL CLUSTER "ProxySQLSettings"
#define VITESS   CLUSTER "VitessSettings"

static const struct config_key keys[] = {
        /* Top level. */
        {.name = "ListenPort",
         PORT(1),
         IN_CONFIG(listen_port),
         .def_num = 8087,
         .desc = "HTTP port (--http-port overrides it)"},
        {.name = "DataCenter",
         STRING,
         IN_CONFIG(data_center),
         .flags = CONFIG_KEY_ENV,
         .desc = "data center name, part of the default Domain"},
        {.name = "Environment",
         STRING,
         IN_CONFIG(environment),
         .flags = CONFIG_KEY_ENV,
         .desc = "environment name, part of the default Domain"},
        {.name = "Domain",
         STRING,
         IN_CONFIG(domain),
         .flags = CONFIG_KEY_ENV,
         .desc = "election domain of the MySQL backend; defaults to DataCenter:Environment"},
        {.name = "ShareDomain",
         STRING,
         IN_CONFIG(share_domain),
         .flags = CONFIG_KEY_ENV,
         .desc = "leaders of this share domain exchange metric health"},
        {.name = "RaftBind",
         STRING,
         IN_CONFIG(raft_bind),
         .def_str = "127.0.0.1:10008",
         .desc = "address raft listens on"},
        {.name = "RaftDataDir",
         STRING,
         IN_CONFIG(raft_data_dir),
         .desc = "raft state directory; set it or BackendMySQLHost"},
        {.name = "DefaultRaftPort",
         INT(0, 65535),
         IN_CONFIG(default_raft_port),
         .desc = "port for RaftNodes entries that have none"},
        {.name = "RaftNodes",
         STRV,
         IN_CONFIG(raft_nodes),
         .desc = "raft peers as host[:port]; empty means single-node mode"},
        {.name = "BackendMySQLHost",
         STRING,
         IN_CONFIG(backend_host),
         .flags = CONFIG_KEY_ENV,
         .desc = "MySQL backend host for leader election; set it or RaftDataDir"},
        {.name = "BackendMySQLPort",
         PORT(1),
         IN_CONFIG(backend_port),
         .def_num = 3306,
         .desc = "MySQL backend port"},
        {.name = "BackendMySQLSchema",
         STRING,
         IN_CONFIG(backend_schema),
         .flags = CONFIG_KEY_ENV,
         .desc = "MySQL backend schema; required with BackendMySQLHost"},
        {.name = "BackendMySQLUser",
         STRING,
         IN_CONFIG(backend_user),
         .flags = CONFIG_KEY_ENV,
         .desc = "MySQL backend user"},
        {.name = "BackendMySQLPassword",
         STRING,
         IN_CONFIG(backend_password),
         .flags = CONFIG_KEY_ENV | CONFIG_KEY_SECRET,
         .desc = "MySQL backend password"},
        {.name = "BackendMySQLCollation",
         STRING,
         IN_CONFIG(backend_collation),
         .desc = "collation for backend connections instead of the utf8mb4 charset"},
        {.name = "MemcacheServers",
         STRV,
         IN_CONFIG(memcache_servers),
         .desc = "memcached servers that receive aggregated values"},
        {.name = "MemcachePath",
         STRING,
         IN_CONFIG(memcache_path),
         .def_str = "freno",
         .desc = "prefix of memcache keys: <MemcachePath>/mysql/<cluster>"},
        {.name = "EnableProfiling",
         BOOL,
         IN_CONFIG(enable_profiling),
         .desc = "accepted for compatibility; there is no Go profiler here"},
        {.name = "BackendElectionExpirySecs",
         INT(3, 60),
         IN_CONFIG(backend_election_expiry_secs),
         .def_num = 5,
         .desc = "seconds without renewal after which a backend leader is replaced"},
        {.name = "ControlToken",
         STRING,
         IN_CONFIG(control_token),
         .flags = CONFIG_KEY_ENV | CONFIG_KEY_SECRET,
         .desc = "if set, control requests must present this token"},
        {.name = "MaxThrottledApps",
         INT(1, 1000000),
         IN_CONFIG(max_throttled_apps),
         .def_num = 100000,
         .desc = "most app throttles held at once; a new one past it is refused"},
        {.name = "MaxSkippedHosts",
         INT(1, 1000000),
         IN_CONFIG(max_skipped_hosts),
         .def_num = 100000,
         .desc = "most skipped hosts held at once; a new one past it is refused"},
        {.name = "Stores", OBJECT, .desc = "stores to probe"},
        {.name = "Stores.MySQL", OBJECT, .desc = "MySQL clusters and the defaults they inherit"},

        /* Stores.MySQL: defaults for every cluster. */
        {.name = "Stores.MySQL.User",
         STRING,
         IN_CONFIG(mysql_defaults.user),
         .flags = CONFIG_KEY_ENV,
         .desc = "user for probes"},
        {.name = "Stores.MySQL.Password",
         STRING,
         IN_CONFIG(mysql_defaults.password),
         .flags = CONFIG_KEY_ENV | CONFIG_KEY_SECRET,
         .desc = "password for probes"},
        {.name = "Stores.MySQL.MetricQuery",
         STRING,
         IN_CONFIG(mysql_defaults.metric_query),
         .desc = "probe query; empty means replication lag from SHOW SLAVE STATUS"},
        {.name = "Stores.MySQL.CacheMillis",
         INT(0, 86400000),
         IN_CONFIG(mysql_defaults.cache_millis),
         .desc = "reuse a probe result for this many ms (0: no cache)"},
        {.name = "Stores.MySQL.ThrottleThreshold",
         DOUBLE_MIN(0),
         IN_CONFIG(mysql_defaults.throttle_threshold),
         .desc = "checks are throttled when the metric exceeds this"},
        {.name = "Stores.MySQL.Port",
         PORT(0),
         IN_CONFIG(mysql_defaults.port),
         .def_num = 3306,
         .flags = CONFIG_KEY_ZERO_DEFAULT,
         .desc = "MySQL port of probed hosts"},
        {.name = "Stores.MySQL.IgnoreDialTcpErrors",
         BOOL,
         IN_CONFIG(mysql_defaults.ignore_dial_tcp_errors),
         .desc = "leave out hosts that cannot be connected to"},
        {.name = "Stores.MySQL.IgnoreHostsCount",
         INT(0, 1000000),
         IN_CONFIG(mysql_defaults.ignore_hosts_count),
         .desc = "number of failing or worst hosts a cluster may ignore"},
        {.name = "Stores.MySQL.IgnoreHostsThreshold",
         DOUBLE_MIN(0),
         IN_CONFIG(mysql_defaults.ignore_hosts_threshold),
         .desc = "only values above this may be ignored (0: any)"},
        {.name = "Stores.MySQL.HttpCheckPort",
         INT(-1, 65535),
         IN_CONFIG(mysql_defaults.http_check_port),
         .desc = "port of the per-host HTTP check (0 or -1: none)"},
        {.name = "Stores.MySQL.HttpCheckPath",
         STRING,
         IN_CONFIG(mysql_defaults.http_check_path),
         .desc = "path of the per-host HTTP check"},
        {.name = "Stores.MySQL.IgnoreHosts",
         STRV,
         IN_CONFIG(mysql_defaults.ignore_hosts),
         .desc = "hosts whose host:port contains one of these are not probed"},
        {.name = "Stores.MySQL.ProxySQLAddresses",
         STRV,
         IN_CONFIG(mysql_defaults.proxysql_addresses),
         .desc = "default ProxySQL admin addresses"},
        {.name = "Stores.MySQL.ProxySQLUser",
         STRING,
         IN_CONFIG(mysql_defaults.proxysql_user),
         .desc = "default ProxySQL stats user"},
        {.name = "Stores.MySQL.ProxySQLPassword",
         STRING,
         IN_CONFIG(mysql_defaults.proxysql_password),
         .flags = CONFIG_KEY_SECRET,
         .desc = "default ProxySQL stats password"},
        {.name = "Stores.MySQL.VitessCells",
         STRV,
         IN_CONFIG(mysql_defaults.vitess_cells),
         .flags = CONFIG_KEY_ENV,
         .desc = "default Vitess cells to take tablets from"},
        {.name = "Stores.MySQL.Collation",
         STRING,
         IN_CONFIG(mysql_defaults.collation),
         .desc = "collation for probe connections instead of the default charset"},
        {.name = "Stores.MySQL.Clusters",
         .type = CONFIG_KEY_CLUSTERS,
         .base = CONFIG_BASE_NONE,
         .desc = "cluster name -> cluster settings"},

        /* One cluster. Empty or zero values inherit from Stores.MySQL. */
        {.name = CLUSTER "User",
         STRING,
         IN_CLUSTER(c.user),
         .flags = CONFIG_KEY_ENV,
         .inherit = "Stores.MySQL.User",
         .desc = "user for probes"},
        {.name = CLUSTER "Password",
         STRING,
         IN_CLUSTER(c.password),
         .flags = CONFIG_KEY_ENV | CONFIG_KEY_SECRET,
         .inherit = "Stores.MySQL.Password",
         .desc = "password for probes"},
        {.name = CLUSTER "MetricQuery",
         STRING,
         IN_CLUSTER(c.metric_query),
         .inherit = "Stores.MySQL.MetricQuery",
         .desc = "probe query"},
        {.name = CLUSTER "CacheMillis",
         INT(0, 86400000),
         IN_CLUSTER(c.cache_millis),
         .inherit = "Stores.MySQL.CacheMillis",
         .desc = "probe result cache in ms"},
        {.name = CLUSTER "ThrottleThreshold",
         DOUBLE_MIN(0),
         IN_CLUSTER(c.throttle_threshold),
         .inherit = "Stores.MySQL.ThrottleThreshold",
         .desc = "throttling threshold"},
        {.name = CLUSTER "Port",
         PORT(0),
         IN_CLUSTER(c.port),
         .inherit = "Stores.MySQL.Port",
         .desc = "MySQL port of the cluster's hosts"},
        {.name = CLUSTER "IgnoreHostsCount",
         INT(0, 1000000),
         IN_CLUSTER(c.ignore_hosts_count),
         .inherit = "Stores.MySQL.IgnoreHostsCount",
         .desc = "hosts the cluster may ignore"},
        {.name = CLUSTER "IgnoreHostsThreshold",
         DOUBLE_MIN(0),
         IN_CLUSTER(c.ignore_hosts_threshold),
         .inherit = "Stores.MySQL.IgnoreHostsThreshold",
         .desc = "only values above this may be ignored"},
        {.name = CLUSTER "IgnoreDialTcpErrors",
         BOOL,
         IN_CLUSTER(c.ignore_dial_tcp_errors),
         .inherit = "Stores.MySQL.IgnoreDialTcpErrors",
         .desc = "leave out unreachable hosts (extension: only global in the original)"},
        {.name = CLUSTER "HttpCheckPort",
         INT(-1, 65535),
         IN_CLUSTER(c.http_check_port),
         .inherit = "Stores.MySQL.HttpCheckPort",
         .desc = "HTTP check port; -1 disables the inherited one"},
        {.name = CLUSTER "HttpCheckPath",
         STRING,
         IN_CLUSTER(c.http_check_path),
         .inherit = "Stores.MySQL.HttpCheckPath",
         .desc = "HTTP check path"},
        {.name = CLUSTER "IgnoreHosts",
         STRV,
         IN_CLUSTER(c.ignore_hosts),
         .inherit = "Stores.MySQL.IgnoreHosts",
         .desc = "host:port substrings not to probe; replaces the inherited list"},
        {.name = CLUSTER "Collation",
         STRING,
         IN_CLUSTER(c.collation),
         .inherit = "Stores.MySQL.Collation",
         .desc = "collation for probe connections (extension)"},

        {.name = STATIC, OBJECT, .desc = "host source: a fixed list of hosts"},
        {.name = STATIC ".Hosts",
         STRV,
         IN_CLUSTER(static_hosts),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_STATIC,
         .desc = "\"host\", \"host:port\", \"[v6]:port\"; the port defaults to Port"},

        {.name = HAPROXY, OBJECT, .desc = "host source: an HAProxy backend pool"},
        {.name = HAPROXY ".Host",
         STRING,
         IN_CLUSTER(haproxy_host),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_HAPROXY,
         .desc = "HAProxy stats host (with Port)"},
        {.name = HAPROXY ".Port",
         PORT(0),
         IN_CLUSTER(haproxy_port),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_HAPROXY,
         .desc = "HAProxy stats port (with Host)"},
        {.name = HAPROXY ".Addresses",
         STRING,
         IN_CLUSTER(haproxy_addresses),
         .flags = CONFIG_KEY_SELECTS | CONFIG_KEY_ENV_STRICT,
         .source = CONFIG_SOURCE_HAPROXY,
         .desc = "comma-separated host:port or http(s)://host:port/path, used without Host"},
        {.name = HAPROXY ".PoolName",
         STRING,
         IN_CLUSTER(c.haproxy_pool),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_HAPROXY,
         .desc = "backend (pxname) whose servers are probed"},

        {.name = PROXYSQL, OBJECT, .desc = "host source: a ProxySQL hostgroup"},
        {.name = PROXYSQL ".Addresses",
         STRV,
         IN_CLUSTER(c.proxysql_addresses),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_PROXYSQL,
         .inherit = "Stores.MySQL.ProxySQLAddresses",
         .desc = "ProxySQL admin host:port list"},
        {.name = PROXYSQL ".User",
         STRING,
         IN_CLUSTER(c.proxysql_user),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_PROXYSQL,
         .inherit = "Stores.MySQL.ProxySQLUser",
         .desc = "ProxySQL stats user"},
        {.name = PROXYSQL ".Password",
         STRING,
         IN_CLUSTER(c.proxysql_password),
         .flags = CONFIG_KEY_SELECTS | CONFIG_KEY_SECRET,
         .source = CONFIG_SOURCE_PROXYSQL,
         .inherit = "Stores.MySQL.ProxySQLPassword",
         .desc = "ProxySQL stats password"},
        {.name = PROXYSQL ".HostgroupID",
         INT(0, 4294967295.0),
         IN_CLUSTER(c.proxysql_hostgroup_id),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_PROXYSQL,
         .desc = "hostgroup whose servers are probed (at least 1)"},
        {.name = PROXYSQL ".IgnoreServerTTLSecs",
         INT(0, 86400),
         IN_CLUSTER(c.proxysql_ignore_server_ttl_secs),
         .flags = CONFIG_KEY_ZERO_DEFAULT,
         .def_num = 10,
         .source = CONFIG_SOURCE_PROXYSQL,
         .desc = "seconds a server in a bad state stays ignored"},

        {.name = VITESS, OBJECT, .desc = "host source: Vitess tablets of a keyspace/shard"},
        {.name = VITESS ".API",
         STRING,
         IN_CLUSTER(c.vitess_api),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_VITESS,
         .desc = "vtctld API base URL"},
        {.name = VITESS ".Keyspace",
         STRING,
         IN_CLUSTER(c.vitess_keyspace),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_VITESS,
         .desc = "keyspace"},
        {.name = VITESS ".Shard",
         STRING,
         IN_CLUSTER(c.vitess_shard),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_VITESS,
         .desc = "shard"},
        {.name = VITESS ".Cells",
         STRV,
         IN_CLUSTER(c.vitess_cells),
         .flags = CONFIG_KEY_SELECTS,
         .source = CONFIG_SOURCE_VITESS,
         .inherit = "Stores.MySQL.VitessCells",
         .desc = "cells to take tablets from (empty: all)"},
        {.name = VITESS ".TimeoutSecs",
         INT(0, 3600),
         IN_CLUSTER(c.vitess_timeout_secs),
         .flags = CONFIG_KEY_ZERO_DEFAULT,
         .def_num = 5,
         .source = CONFIG_SOURCE_VITESS,
         .desc = "API request timeout in seconds"},
};

const struct config_key *config_keys_table(size_t *len)
{
    *len = sizeof(keys) / sizeof(keys[0]);
    return keys;
}

const char *config_key_leaf(const struct config_key *k)
{
    const char *dot = strrchr(k->name, '.');
    return dot ? dot + 1 : k->name;
}

/* Tells whether @k sits directly under the object at path @parent. */
static bool key_is_child(const struct config_key *k, const char *parent)
{
    size_t plen = strlen(parent);
    const char *leaf = config_key_leaf(k);

    if (plen == 0)
        return leaf == k->name;
    return strncmp(k->name, parent, plen) == 0 && k->name + plen + 1 == leaf &&
           k->name[plen] == '.';
}

const struct config_key *config_key_find(const char *parent, const char *name, bool *exact)
{
    const struct config_key *folded = NULL;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!key_is_child(&keys[i], parent))
            continue;
        const char *leaf = config_key_leaf(&keys[i]);
        if (strcmp(leaf, name) == 0) {
            *exact = true;
            return &keys[i];
        }
        if (folded == NULL && strcasecmp(leaf, name) == 0)
            folded = &keys[i];
    }
    *exact = false;
    return folded;
}

const struct config_key *config_key_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}
