/* SPDX-License-Identifier: MIT */
/* Configuration: JSON files -> one immutable struct config. Keys, types,
 * defaults and inheritance follow the Go original (docs/config.md); every key of the
 * original loads. Built once at start (or on reload) and then only read. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/token.h"

/* Where raft listens when RaftBind is not set (as the original). */
#define CONFIG_RAFT_BIND_DEFAULT "127.0.0.1:10008"
/* BackendElectionExpirySecs bounds: a leader renews every second and steps
 * down a second before its row expires, so the expiry must exceed 2 s; past
 * a minute a dead leader would block the service for too long. */
#define CONFIG_ELECTION_EXPIRY_MIN_SECS 3
#define CONFIG_ELECTION_EXPIRY_MAX_SECS 60

enum config_host_source {
    CONFIG_SOURCE_NONE = 0,
    CONFIG_SOURCE_STATIC,
    CONFIG_SOURCE_HAPROXY,
    CONFIG_SOURCE_PROXYSQL,
    CONFIG_SOURCE_VITESS,
};

struct config_strv {
    char **v;
    size_t len;
};

struct config_hostport {
    char *host; /* without brackets for IPv6 literals */
    uint16_t port;
};

/* ControlTokens (extension): name -> secret, in the order written, at most
 * CONFIG_TOKENS_MAX. Names are unique, 1..TOKEN_NAME_MAX bytes of
 * [A-Za-z0-9_-], and not TOKEN_DEFAULT_NAME, which names ControlToken in
 * the audit trail. */
struct config_tokens {
    char **names;
    char **secrets; /* never logged */
    size_t len;
};

#define CONFIG_TOKENS_MAX 64

/* One of a cluster's extra metrics (Stores.MySQL.Metrics and a cluster's
 * Metrics, docs/config.md#metrics), inheritance applied. */
struct config_metric {
    char *name;                    /* 1..FRENO_METRIC_NAME_MAX of [A-Za-z0-9_-], not "default" */
    char *query;                   /* "" means replication lag, as for MetricQuery */
    double threshold;              /* checks answer 429 above it */
    int64_t cache_millis;          /* 0: no cache */
    double ignore_hosts_threshold; /* in the metric's own unit; 0: any value may be left out */
    bool drop;                     /* while loading: a null entry, which drops the metric */
};

/* Sorted by name once loaded, at most FRENO_METRICS_MAX - 1 entries. */
struct config_metrics {
    struct config_metric *v;
    size_t len;
};

/* One cluster with inheritance from Stores.MySQL already applied. Every string
 * is non-NULL ("" when unset), whatever the host source. */
struct config_cluster {
    char *name;
    char *user;
    char *password;
    char *collation;    /* "" means the default charset (Stores.MySQL.Collation) */
    char *metric_query; /* "" means replication lag from SHOW SLAVE STATUS */
    int64_t cache_millis;
    double throttle_threshold;
    uint16_t port;
    int64_t ignore_hosts_count;
    double ignore_hosts_percent; /* extension: 0..100, see aggregate.h */
    double ignore_hosts_threshold;
    bool ignore_dial_tcp_errors;
    int64_t http_check_port; /* <= 0: disabled */
    char *http_check_path;
    struct config_strv ignore_hosts; /* substrings of "host:port" */
    struct config_metrics metrics;   /* extension: metrics besides MetricQuery's */

    enum config_host_source source;
    /* CONFIG_SOURCE_STATIC */
    struct config_hostport *static_hosts;
    size_t static_hosts_len;
    /* CONFIG_SOURCE_HAPROXY: full base URLs, e.g. "http://h:p/path" */
    struct config_strv haproxy_addresses;
    char *haproxy_pool;
    /* CONFIG_SOURCE_PROXYSQL: "host:port" addresses */
    struct config_strv proxysql_addresses;
    char *proxysql_user;
    char *proxysql_password;
    int64_t proxysql_hostgroup_id;
    int64_t proxysql_ignore_server_ttl_secs; /* default 10 */
    /* CONFIG_SOURCE_VITESS */
    char *vitess_api;
    char *vitess_keyspace;
    char *vitess_shard;
    struct config_strv vitess_cells;
    int64_t vitess_timeout_secs; /* default 5 */
};

/* Every string is non-NULL ("" when unset) except control_token. Clusters are
 * sorted by name. */
struct config {
    uint16_t listen_port; /* 8087 */
    char *data_center;
    char *environment;
    char *domain; /* defaults to "DataCenter:Environment" */
    char *share_domain;
    char *raft_bind; /* CONFIG_RAFT_BIND_DEFAULT when unset */
    char *raft_data_dir;
    int64_t default_raft_port;
    struct config_strv raft_nodes;
    char *backend_host;
    uint16_t backend_port; /* 3306 */
    char *backend_schema;
    char *backend_user;
    char *backend_password;
    char *backend_collation;
    struct config_strv memcache_servers;
    char *memcache_path; /* "freno" */
    bool enable_profiling;

    /* Extensions (not in the original). */
    int64_t backend_election_expiry_secs; /* BackendElectionExpirySecs, default 5 */
    char *control_token; /* ControlToken: required on control requests if set; NULL if unset */
    int64_t check_stale_after_ms; /* CheckStaleAfterMillis, default 2000 */
    bool check_details;           /* CheckDetails: every check answer explains itself */
    /* HTTP and control limits (extensions); defaults in config_keys.c. */
    int64_t http_max_connections;             /* HttpMaxConnections, 4096 */
    int64_t http_max_connections_per_address; /* HttpMaxConnectionsPerAddress, 256 */
    int64_t http_request_timeout_secs;        /* HttpRequestTimeoutSecs, 10 */
    int64_t http_idle_timeout_secs;           /* HttpIdleTimeoutSecs, 30 */
    int64_t http_reserved_descriptors;        /* HttpReservedDescriptors, 128 */
    int64_t control_queue_length;             /* ControlQueueLength, 32 */
    int64_t control_timeout_millis;           /* ControlTimeoutMillis, 5000 */
    /* Caps on tables keyed by client-chosen names (least recently used entries
     * make room for new ones). */
    int64_t max_counted_apps;       /* MaxCountedApps, default 2000 */
    int64_t max_counted_app_stores; /* MaxCountedAppStores, default 2000 */
    int64_t max_recent_apps;        /* MaxRecentApps, default 10000 */
    int64_t max_throttled_apps;     /* MaxThrottledApps, default 100000 */
    int64_t max_skipped_hosts;      /* MaxSkippedHosts, default 100000 */
    int64_t max_app_rules;          /* MaxAppRules, default 1000 */
    /* TLS, listener and who may do what (extensions). */
    char *listen_address;                /* ListenAddress: "" means every address */
    char *tls_cert_file;                 /* TLSCertFile: "" means plain HTTP */
    char *tls_key_file;                  /* TLSKeyFile: set with TLSCertFile */
    char *tls_client_ca_file;            /* TLSClientCAFile: "" means no client certificates */
    struct config_tokens control_tokens; /* ControlTokens */
    int64_t audit_log_max_days;          /* AuditLogMaxDays, default 90 */
    int64_t audit_log_max_rows;          /* AuditLogMaxRows, default 100000 */

    /* Stores.MySQL defaults are folded into each cluster; kept for reference. */
    struct config_cluster mysql_defaults;
    struct config_cluster *clusters;
    size_t clusters_len;
};

/* Diagnostics collected while loading: every error and warning, each one line
 * naming the file and the key path or line/column. */
struct config_diag {
    char **errors;
    size_t errors_len;
    char **warnings;
    size_t warnings_len;
};

void config_diag_deinit(struct config_diag *d);

/* Loads @paths in order (later files override earlier keys) into a new config.
 * If @skip_missing, files that do not exist are skipped (the default search
 * list); otherwise a missing file is an error. ${VAR} expansion is applied as
 * docs/config.md#environment-variables says, reading the environment.
 * Validation (host sources, backend vs raft) is done too (docs/config.md#validation).
 * Returns 0 and sets *@out, or -EINVAL with every problem
 * in @diag and *@out set to NULL (warnings are filled in both cases). Messages
 * are appended to @diag, which the caller zero-initializes and later releases
 * with config_diag_deinit(). Main thread. */
int config_load_files(const char *const *paths, size_t n, bool skip_missing, struct config **out,
                      struct config_diag *diag);

/* Same, from a NUL-terminated JSON text; @name labels messages. For tests and
 * the fuzzer. */
int config_load_string(const char *json, const char *name, struct config **out,
                       struct config_diag *diag);

/* Frees @c and everything it owns; NULL is fine. */
void config_free(struct config *c);

/* Returns the cluster named @name or NULL. */
const struct config_cluster *config_find_cluster(const struct config *c, const char *name);

/* The settings object that selects host source @s in a cluster
 * ("HAProxySettings"; "none" for CONFIG_SOURCE_NONE). Any thread. */
const char *config_source_key(enum config_host_source s);
/* The short name of host source @s that log lines use ("haproxy"). Any
 * thread. */
const char *config_source_name(enum config_host_source s);

/* Tells whether @s has the form of a ListenAddress: an IPv4 or IPv6
 * literal or a host name. Any thread. */
bool config_listen_address_ok(const char *s);

/* Replaces the items of @sv with the non-empty items of the comma-separated
 * list @csv, each as written (blanks are kept). Main thread. */
void config_strv_set_csv(struct config_strv *sv, const char *csv);

/* ---- reload (config_diff.c, config_run.c) ---- */

/* What a reload changes between the running config and a new one. Names
 * point into the two configs and the key table: valid while both live. */
struct config_diff {
    const char **added; /* clusters only in the new config, by name */
    size_t added_len;
    const char **removed; /* clusters only in the running config */
    size_t removed_len;
    const char **changed; /* clusters in both with some setting changed */
    size_t changed_len;
    const char **live; /* top-level keys changed that apply live */
    size_t live_len;
    const char **restart; /* top-level keys changed that need a restart */
    size_t restart_len;
};

/* Compares the running config @old with @next: clusters by name (every
 * setting, inheritance applied) and top-level keys by the key table, where
 * CONFIG_KEY_RESTART tells which cannot change live. Stores.MySQL's own
 * keys count through the clusters that inherit them. Fills @d, which the
 * caller zero-initializes and releases with config_diff_deinit(). Pure. */
void config_diff(const struct config *old, const struct config *next, struct config_diff *d);
void config_diff_deinit(struct config_diff *d);
/* Whether every setting of @a and @b is the same. Pure. */
bool config_cluster_equal(const struct config_cluster *a, const struct config_cluster *b);
/* Gives @next the running value (@old's) of every top-level key that needs a
 * restart, so that the config applied live never differs from what runs. */
void config_keep_restart_keys(const struct config *old, struct config *next);

/* Where the running config comes from: the files and the command-line flags
 * that override keys. */
struct config_origin {
    const char *path;         /* --config; NULL: the default search list */
    int64_t http_port;        /* --http-port; 0: none */
    const char *raft_datadir; /* --raft-datadir; NULL: none */
    const char *raft_bind;    /* --raft-bind */
    const char *raft_nodes;   /* --raft-nodes, comma-separated */
    bool enable_profiling;    /* --enable-profiling */
};

/* Loads the config @o describes, logging every warning and error as they
 * are (the same lines at start and on reload), and applies the flags.
 * Returns 0 and sets *@out, or -EINVAL with *@out NULL. Main thread (the
 * loop thread on reload: the same thread). */
int config_load_origin(const struct config_origin *o, struct config **out);
